"""`make ... VENV=system`: the study on an existing Python (Colab's, a conda environment's, an installed copy's)
instead of a .venv of its own. `python -m lib.environment requirements.txt` checks each requirement's
distribution in this interpreter's environment (importlib.metadata) and pip-installs only the absent ones, at their
pinned version. A present distribution counts whatever its version: Colab's torch, torchvision and timm are never
reinstalled or upgraded, and a constraints file pins every present requirement at its installed version so that
nothing pip installs may replace one. Lines marked `# venv only` (the Jupyter front end) are left out: the
environment running the notebooks has its own. make keeps a stamp per interpreter (outside any .venv), so this runs
again only when requirements.txt changes.

Standard library only: make runs it on the chosen interpreter before anything is installed.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?P<spec>(?:==|>=|<=|~=|!=|>|<).*)?$")
VENV_ONLY = "venv only"


def requirements(text: str) -> list[tuple[str, str]]:
    """(distribution name, requirement as written) for each line this path installs, in file order."""
    found = []
    for line in text.splitlines():
        requirement, _, comment = line.partition("#")
        requirement = requirement.strip()
        if not requirement or VENV_ONLY in comment:
            continue
        match = REQUIREMENT.match(requirement)
        if not match:
            raise ValueError(f"cannot read requirement {requirement!r} (expected name==version)")
        found.append((match["name"], requirement.replace(" ", "")))
    return found


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def plan(text: str, version=installed_version) -> tuple[list[str], dict[str, str]]:
    """(requirements to install, {present name: its installed version})."""
    missing, present = [], {}
    for name, requirement in requirements(text):
        found = version(name)
        if found is None:
            missing.append(requirement)
        else:
            present[name] = found
    return missing, present


def pip_command(missing: list[str], constraints: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "install", "--quiet", "--constraint", str(constraints), *missing]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("requirements", type=Path)
    args = parser.parse_args(argv)
    missing, present = plan(args.requirements.read_text())
    pinned = dict(requirements(args.requirements.read_text()))
    other = [f"{name} {version}" for name, version in present.items() if pinned[name] != f"{name}=={version}"
             and "==" in pinned[name]]
    print(f"VENV=system: {sys.executable} has {len(present)} of {len(present) + len(missing)} requirements"
          + (f" (kept as they are: {', '.join(other)})" if other else "")
          + (f"; installing {' '.join(missing)}" if missing else ""), flush=True)
    if not missing:
        return 0
    with tempfile.TemporaryDirectory() as folder:
        constraints = Path(folder) / "present.txt"
        constraints.write_text("".join(f"{name}=={version}\n" for name, version in present.items()))
        done = subprocess.run(pip_command(missing, constraints))
    if done.returncode != 0:
        print(f"error: pip could not install {' '.join(missing)} into {sys.executable}'s environment (its message is "
              "above). Install them yourself (pip install NAME==VERSION), or, outside Colab and installed copies, leave "
              "VENV= out: make then builds .venv/ from requirements.txt",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
