"""The installed package (`pip install .`, not editable): every lib module and data file in the wheel, the study's
Makefile, notebooks and profiles beside it in share/feature-inversion/, and the `feature-inversion` command running a
study from outside any checkout with its outputs where the user says.

Offline throughout: the wheel is built with .venv's setuptools (no build isolation, no index), and the fresh venv it
is installed into sees .venv's packages through a .pth file instead of downloading them. Its helpers (a copy of the
working tree, a fresh venv over .venv's packages, a one-layer profile) serve tests/test_colab.py too.
"""
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

from lib import PARAMETERS_DIR, ROOT, cli, deps

VENV_PURELIB = Path(sysconfig.get_path("purelib"))  # .venv's packages: torch, timm, papermill ...
# the data files of .venv's packages (nbconvert's templates, ipykernel's kernel spec), which a .pth cannot carry
VENV_JUPYTER = Path(sys.prefix) / "share" / "jupyter"
SHARE = Path("share") / "feature-inversion"
PROJECT_FILES = ["Makefile", "bench.mk", "requirements.txt"]


def clean_env(**extra) -> dict:
    """The environment without make's variables (the suite may run under `make test`) or an active venv's."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", JUPYTER_PATH=str(VENV_JUPYTER))
    env.update(extra)
    return env


def run(command, **kwargs):
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} failed ({done.returncode}):\n"
                             f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}")
    return done


def source_files() -> list[str]:
    """What a clone of the working tree holds: tracked files and untracked ones git does not ignore."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    return sorted(name for name in listed.split("\0") if name and (ROOT / name).is_file())


def copy_tree(destination: Path) -> Path:
    """The working tree (uncommitted changes included) copied without its build outputs, .venv or .git."""
    for name in source_files():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / name).read_bytes())
        target.chmod((ROOT / name).stat().st_mode)
    return destination


def fresh_venv(path: Path, trace: bool = False) -> Path:
    """A new venv that sees .venv's packages after its own (as --system-site-packages sees the system's); with
    `trace`, every interpreter it starts appends its command line to $INTERPRETER_TRACE. Returns its python."""
    run([sys.executable, "-m", "venv", "--without-pip", path])
    python = path / "bin" / "python"
    purelib = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    (purelib / "zz_outer_environment.pth").write_text(f"{VENV_PURELIB}\n")
    if trace:
        # once per process: site reads the venv's site-packages twice, through lib/ and its lib64/ link
        (purelib / "aa_trace.pth").write_text(
            'import os, sys; p = os.environ.get("INTERPRETER_TRACE"); '
            'p and not hasattr(sys, "_traced") and (setattr(sys, "_traced", 1) or '
            'open(p, "a").write(repr(sys.orig_argv) + "\\n"))\n')
    return python


def one_layer_profile(path: Path) -> Path:
    """parameters/tiny.yaml cut to one architecture and one layer (ResNet34's layer1: the notebooks' defaults)."""
    raw = yaml.safe_load((PARAMETERS_DIR / "tiny.yaml").read_text())
    raw.pop("capacity_sweep", None)
    raw["architectures"] = {"resnet34": {"layers": ["layer1"]}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built from a copy of the working tree (a build writes build/ and *.egg-info beside its sources)."""
    work = tmp_path_factory.mktemp("wheel")
    source = copy_tree(work / "source")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "-w", work / "dist", source], env=clean_env())
    (built,) = (work / "dist").glob("feature_inversion-*.whl")
    return built


def test_the_wheel_holds_every_lib_module_and_data_file_and_the_project_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    lib_files = {name for name in source_files() if name.startswith("lib/")}
    assert {"lib/steps/train.py", "lib/bench/quality.py", "lib/bench/natural_photos.tsv"} <= lib_files
    assert lib_files <= names, f"missing from the wheel: {sorted(lib_files - names)}"
    assert {n for n in names if n.startswith("lib/")} == lib_files, "the wheel's lib/ holds files lib/ does not"
    data = next(n.split("/")[0] for n in names if ".data/" in n)
    project = {name for name in source_files() if name in PROJECT_FILES
               or name.startswith(("notebooks/", "parameters/")) and name.endswith((".ipynb", ".yaml"))}
    assert {f"{data}/data/{SHARE}/{name}" for name in project} <= names
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """The wheel installed (not editable) into a fresh venv."""
    venv = tmp_path_factory.mktemp("installed") / "venv"
    python = fresh_venv(venv)
    # --ignore-installed: .venv's editable feature-inversion, visible through the .pth, is left alone
    run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "--quiet", wheel],
        env=clean_env())
    return venv


def test_the_installed_package_imports_outside_the_checkout(installed, tmp_path):
    python = installed / "bin" / "python"
    done = run([python, "-c", "import lib.steps.train, lib.bench.quality, lib\n"
                "print(lib.__file__); print(lib.ROOT); print(lib.CHECKOUT)"], cwd=tmp_path, env=clean_env())
    module, root, checkout = done.stdout.split()
    assert Path(module).is_relative_to(installed) and checkout == "False"
    assert Path(root) == (installed / SHARE).resolve()
    for name in [*PROJECT_FILES, "notebooks/02_train.ipynb", "parameters/tiny.yaml"]:
        assert (Path(root) / name).is_file(), name


def named_in_checkout(word: str) -> list[str]:
    """Paths in the checkout (outside .git and .venv) whose name holds `word`."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if d not in (".git", ".venv")]
        found += [os.path.join(folder, name) for name in subfolders + files if word in name]
    return found


def tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_the_command_runs_a_study_from_outside_the_checkout_into_reports_of_the_users_choice(installed, tmp_path):
    """`feature-inversion report` from a working directory of the user's, relative PROFILE and REPORTS: the outputs
    land there, nothing is written into the installed copy or the checkout, and every step ran on the installed
    copy's interpreter and its lib (deps.mk names site-packages' sources)."""
    python, share = installed / "bin" / "python", installed / SHARE
    work = tmp_path / "work"
    work.mkdir()
    profile = one_layer_profile(work / "pkgstudy.yaml")
    before = tree(share)
    done = run([installed / "bin" / "feature-inversion", "report", f"PROFILE={profile.name}", "REPORTS=out"],
               cwd=work, env=clean_env())
    study = work / "out" / "pkgstudy"
    for name in ["summary.csv", "depth_comparisons.csv", "figures", "resnet34/layer1/metrics.csv", "report.html",
                 "report.pdf"]:
        assert (study / name).exists(), name
    assert tree(share) == before  # make's state went beside the outputs: out/.make/
    assert f"{python} -m lib.steps.fetch" in done.stdout and "VENV=system" in done.stdout
    assert " -m venv " not in done.stdout and ".venv/bin/python" not in done.stdout
    assert not (work / ".venv").exists() and not (share / ".venv").exists()
    generated = (work / "out" / ".make" / "deps.mk").read_text()
    assert "/site-packages/lib/config.py" in generated and str(ROOT) not in generated  # the installed sources
    # nothing under the checkout names this study (reports/pkgstudy, a plan, a stamp)
    assert not named_in_checkout("pkgstudy")
    # a finished study is up to date for make -q, asked through the same command
    assert subprocess.run([installed / "bin" / "feature-inversion", "-q", "report", f"PROFILE={profile.name}",
                           "REPORTS=out"], cwd=work, env=clean_env()).returncode == 0


def test_the_command_makes_the_callers_relative_paths_absolute_and_keeps_make_arguments(tmp_path):
    command = cli.make_command(["-j2", "figures", "PROFILE=my.yaml", "OUT=x.json", "EPOCHS=2", "PROFILE=tiny"],
                               cwd=tmp_path)
    assert command[:4] == ["make", "--no-print-directory", "-C", str(ROOT)]
    assert command[4:] == ["-j2", "figures", f"PROFILE={tmp_path}/my.yaml", f"OUT={tmp_path}/x.json", "EPOCHS=2",
                           "PROFILE=tiny", f"REPORTS={tmp_path}/reports", "VENV=system", f"PYTHON={sys.executable}"]
    given = cli.make_command(["REPORTS=/abs/out", "VENV=.venv", "PYTHON=python3"], cwd=tmp_path)
    assert given[4:] == ["REPORTS=/abs/out", "VENV=.venv", "PYTHON=python3"]


def test_in_a_checkout_lib_sources_are_named_relative_to_it():
    assert deps.written(ROOT / "lib" / "config.py") == "lib/config.py"
    assert deps.written(Path("/elsewhere/site-packages/lib/config.py")) == "/elsewhere/site-packages/lib/config.py"
