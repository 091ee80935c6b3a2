"""`feature-inversion [make arguments]`: the installed copy's one entry point (pip install .).

It runs the study's Makefile where the wheel installed it (lib.ROOT, `<prefix>/share/feature-inversion/`) on this
Python and its packages (VENV=system PYTHON=<this interpreter>: no .venv is created; what requirements.txt lists and
this environment lacks is installed once), with the outputs under ./reports of the working directory unless
REPORTS= says otherwise. Every other argument goes to make as it is: goals, variables, -j2, -n, -q ...

    feature-inversion report PROFILE=tiny                  # -> ./reports/tiny/report.html, report.pdf
    feature-inversion figures PROFILE=my.yaml REPORTS=out  # a profile of your own -> out/my/summary.csv ...
    feature-inversion help

make runs in the share folder, so a relative path given for a variable that names a file or folder is made
absolute from the caller's working directory first. In a checkout the same command runs the checkout's Makefile.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from . import ROOT

# make variables whose value is a file or folder of the caller's (PROFILE too when it names a YAML file)
PATH_VARIABLES = {"REPORTS", "OUT", "IMAGES", "DIV2K_DIR", "TRAIN_DIR", "TEST_DIR"}


def make_command(args: list[str], cwd: Path | None = None) -> list[str]:
    """The make call for `feature-inversion ARGS` run from `cwd` (default: the working directory)."""
    cwd = Path.cwd() if cwd is None else Path(cwd)
    words, given = [], set()
    for word in args:
        name, equals, value = word.partition("=")
        if equals and name.isidentifier() and not word.startswith("-"):
            given.add(name)
            path_like = name in PATH_VARIABLES or (name == "PROFILE" and ("/" in value or value.endswith((".yaml", ".yml"))))
            if path_like and value and not os.path.isabs(os.path.expanduser(value)):
                word = f"{name}={cwd / os.path.expanduser(value)}"
        words.append(word)
    defaults = [f"{name}={value}" for name, value in
                (("REPORTS", cwd / "reports"), ("VENV", "system"), ("PYTHON", sys.executable)) if name not in given]
    return ["make", "--no-print-directory", "-C", str(ROOT), *words, *defaults]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__)
        args = ["help"]
    if not (ROOT / "Makefile").is_file():
        print(f"error: the study's Makefile is not at {ROOT}: reinstall feature-inversion (pip install .)", file=sys.stderr)
        return 2
    if shutil.which("make") is None:
        print("error: GNU make is not installed (Debian/Ubuntu: apt-get install make)", file=sys.stderr)
        return 2
    return subprocess.call(make_command(args))


if __name__ == "__main__":
    sys.exit(main())
