"""`make colab`: the notebooks' Colab badges and clone cells point wherever the user's fork lives. Colab on its own
Python: make runs every step on the running interpreter and the packages Colab has (VENV=system), no second torch."""
import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lib import NOTEBOOKS_DIR, ROOT, colab, environment
from lib.steps import upstream_command
from test_package import clean_env, copy_tree, fresh_venv, one_layer_profile, run


@pytest.fixture
def notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS_DIR, folder)
    return folder


def setup_source(path):
    return "".join(json.loads(path.read_text())["cells"][1]["source"])


def test_rewrites_badge_and_clone_cell_of_every_notebook_and_keeps_timestamps(notebooks):
    before = {p.name: p.stat().st_mtime_ns for p in notebooks.glob("*.ipynb")}
    assert colab.main(["--repo", "alice/inversion-fork", "--branch", "dev", "--notebooks", str(notebooks)]) == 0
    for path in sorted(notebooks.glob("*.ipynb")):
        assert colab.pointed_at(path) == {"badge": ("alice/inversion-fork", "dev"),
                                          "clone": ("alice/inversion-fork", "dev")}
        badge = "".join(json.loads(path.read_text())["cells"][0]["source"])
        assert f"colab.research.google.com/github/alice/inversion-fork/blob/dev/notebooks/{path.name}" in badge
        setup = setup_source(path)
        # the install and cd lines follow the clone into its folder; nothing else in the cell changes
        assert "-e /content/inversion-fork " in setup and setup.rstrip().endswith("%cd /content/inversion-fork")
        assert "feature-inversion/feature-inversion" not in setup and "/content/feature-inversion" not in setup
        assert path.stat().st_mtime_ns == before[path.name]  # make does not re-run steps for a Colab URL
    # the rest of each notebook is untouched
    for path in notebooks.glob("*.ipynb"):
        old, new = (json.loads(p.read_text())["cells"][2:] for p in (NOTEBOOKS_DIR / path.name, path))
        assert old == new


def test_a_second_run_changes_nothing_and_the_placeholder_round_trips(notebooks, capsys):
    args = ["--notebooks", str(notebooks)]
    colab.main(["--repo", "alice/fork", *args])
    assert colab.main(["--repo", "alice/fork", *args]) == 0 and "none changed" in capsys.readouterr().out
    repo, branch = colab.pointed_at(NOTEBOOKS_DIR / "01_data.ipynb")["badge"]
    colab.main(["--repo", repo, "--branch", branch, *args])
    for path in notebooks.glob("*.ipynb"):
        assert path.read_text() == (NOTEBOOKS_DIR / path.name).read_text()


@pytest.mark.parametrize("url, repo", [
    ("https://github.com/alice/fork.git\n", "alice/fork"), ("git@github.com:alice/fork.git", "alice/fork"),
    ("https://github.com/alice/fork", "alice/fork"), ("ssh://git@github.com/alice/fork.git", "alice/fork"),
    ("https://gitlab.com/alice/fork.git", None), ("/srv/git/fork", None)])
def test_github_remotes_are_recognised(url, repo):
    assert colab.github_repo(url) == repo


def test_default_is_the_origin_remote_when_it_is_on_github(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert colab.default_repo(tmp_path) is None  # no origin at all
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", "git@github.com:bob/inv.git"], check=True)
    assert colab.default_repo(tmp_path) == "bob/inv"


@pytest.mark.parametrize("args, message", [
    (["--repo", "not-a-repo"], "is not a GitHub owner/name"),
    (["--repo", "a/b", "--branch", "x..y"], "is not a valid branch name"),
    (["--repo", "a/b c"], "is not a GitHub owner/name")])
def test_bad_repository_or_branch_is_one_error_and_nothing_is_written(notebooks, args, message, capsys):
    before = {p.name: p.read_text() for p in notebooks.glob("*.ipynb")}
    assert colab.main([*args, "--notebooks", str(notebooks)]) == 2
    assert message in capsys.readouterr().err
    assert {p.name: p.read_text() for p in notebooks.glob("*.ipynb")} == before


def test_a_notebook_without_its_colab_cells_stops_the_run_before_any_rewrite(notebooks, capsys):
    broken = notebooks / "03_evaluate.ipynb"
    book = json.loads(broken.read_text())
    book["cells"] = book["cells"][2:]
    broken.write_text(json.dumps(book, indent=1))
    before = {p.name: p.read_text() for p in notebooks.glob("*.ipynb")}
    assert colab.main(["--repo", "alice/fork", "--notebooks", str(notebooks)]) == 2
    assert "03_evaluate.ipynb" in capsys.readouterr().err
    assert {p.name: p.read_text() for p in notebooks.glob("*.ipynb")} == before


def test_make_colab_takes_repo_and_branch_and_refuses_other_variables():
    env = {**os.environ, "MAKEFLAGS": ""}
    done = subprocess.run(["make", "--no-print-directory", "colab", "REPO=a/b", "COPIES=2"], cwd=ROOT,
                          capture_output=True, text=True, env=env)
    assert done.returncode != 0 and "COPIES does not apply to `make colab`" in done.stdout + done.stderr
    done = subprocess.run(["make", "-n", "--no-print-directory", "colab", "REPO=a/b", "BRANCH=dev"], cwd=ROOT,
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0 and "lib.colab --repo a/b --branch dev" in done.stdout


# ---- Colab on its own Python (emulated) ----------------------------------------------------------------------------
# Colab's Python already has torch, torchvision and timm; a notebook opened from its badge runs its guarded install
# cell (git clone, pip install -e) and then asks make for what it reads (lib.steps.build_upstream). Emulated here
# offline: a fresh venv seeing .venv's packages after its own (a .pth file), a stand-in google.colab module on
# PYTHONPATH imported by the kernel as Colab's kernel imports the real one, the clone cell pointed at a local
# repository holding the working tree, and the notebooks 01..05 run in order, each in a fresh kernel started in
# /content's stand-in, every cell executed.
COLAB_NOTEBOOKS = ["01_data.ipynb", "02_train.ipynb", "03_evaluate.ipynb", "04_figures.ipynb", "05_report.ipynb"]


def colab_repository(folder):
    """A git repository (branch main) holding the working tree, uncommitted changes included: what the badge clones."""
    copy_tree(folder)
    git = ["git", "-C", folder, "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    run(["git", "init", "-q", "-b", "main", folder])
    run([*git, "add", "-A"])
    run([*git, "commit", "-q", "-m", "working tree"])
    return folder


def colab_notebook(source, repository, content, destination):
    """The notebook as the badge opens it, its clone cell pointed at `repository` and /content at `content`."""
    book = json.loads(Path(source).read_text())
    setup = "".join(book["cells"][1]["source"])
    setup = re.sub(r"https://github\.com/\S+", f"file://{repository}", setup).replace("/content/", f"{content}/")
    book["cells"][1]["source"] = setup
    destination.write_text(json.dumps(book))
    return destination


@pytest.fixture(scope="module")
def colab_session(tmp_path_factory):
    work = tmp_path_factory.mktemp("colab")
    repository = colab_repository(work / "repository")
    python = fresh_venv(work / "colab-python", trace=True)
    stub = work / "stub" / "google" / "colab"  # a namespace portion: google.* packages stay importable
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('"""Stand-in for Colab\'s module: its presence is what the notebooks check."""\n')
    kernel = work / "jupyter" / "kernels" / "colab"  # Colab's kernel: its Python, google.colab already imported
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({"display_name": "Colab (emulated)", "language": "python", "argv": [
        str(python), "-c", "import google.colab; from ipykernel.kernelapp import launch_new_instance; "
        "launch_new_instance()", "-f", "{connection_file}"]}))
    content = work / "content"
    content.mkdir()
    profile = one_layer_profile(work / "colabstudy.yaml")
    trace = work / "interpreters.log"
    env = clean_env(PYTHONPATH=str(work / "stub"), INTERPRETER_TRACE=str(trace),
                    JUPYTER_PATH=f"{work / 'jupyter'}{os.pathsep}{clean_env()['JUPYTER_PATH']}")
    executed = {}
    for name in COLAB_NOTEBOOKS:
        book = colab_notebook(NOTEBOOKS_DIR / name, repository, content, work / name)
        out = work / "executed" / name
        out.parent.mkdir(exist_ok=True)
        run([sys.executable, "-m", "papermill", book, out, "-k", "colab", "-p", "profile", profile,
             "--cwd", content], env=env, cwd=work)
        executed[name] = json.loads(out.read_text())
    setup = "".join(json.loads((NOTEBOOKS_DIR / COLAB_NOTEBOOKS[0]).read_text())["cells"][1]["source"])
    clone = content / Path(colab.CLONE.search(setup)["folder"]).name
    return {"python": python, "clone": clone, "content": content, "trace": trace,
            "executed": executed, "venv": work / "colab-python"}


def printed(book) -> str:
    return "".join("".join(output.get("text", "")) for cell in book["cells"] if cell["cell_type"] == "code"
                   for output in cell.get("outputs", []) if output.get("output_type") == "stream")


def test_colab_runs_every_notebook_on_its_own_python_without_a_second_environment(colab_session):
    python, clone = colab_session["python"], colab_session["clone"]
    assert (clone / "Makefile").is_file()  # the clone cell ran
    assert not list(colab_session["content"].rglob(".venv")), "make created a .venv under Colab"
    # nothing but the project itself was installed into Colab's environment: no second torch
    purelib = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    installed = {p.name for p in purelib.iterdir()} - {"__pycache__", "aa_trace.pth", "zz_outer_environment.pth"}
    assert installed and all("feature_inversion" in name for name in installed), installed
    # make ran on Colab's interpreter: asked to by build_upstream, and every recipe line ran it
    logs = {name: printed(book) for name, book in colab_session["executed"].items()}
    for name in COLAB_NOTEBOOKS[:4]:
        assert f"VENV=system PYTHON={python}" in logs[name], name
    made = "\n".join(logs.values())
    assert f"{python} -m lib.steps.fetch" in made and f"{python} -m lib.steps.encode" in made
    lib_lines = [line for line in made.splitlines() if re.search(r"\s-m lib\.", line) and not line.startswith("$")]
    assert lib_lines and all(str(python) in line for line in lib_lines), lib_lines
    # every interpreter started in that environment, kernels included, logged its command line: the step modules
    # and each kernel papermill started under make ran on it (no other Python has the trace)
    started = [ast.literal_eval(line) for line in colab_session["trace"].read_text().splitlines()]
    assert {argv[0] for argv in started} == {str(python)}
    modules = [argv[argv.index("-m") + 1] for argv in started if "-m" in argv]
    papermill_runs = len(re.findall(r"^papermill \S+ -> ", made, re.M))
    assert papermill_runs >= 3 and modules.count("ipykernel_launcher") == papermill_runs  # 01, 02, 03 under make
    assert {"lib.steps.fetch", "lib.steps.encode", "lib.notebook", "lib.config"} <= set(modules)
    # what is missing was checked once, not at every make call: the stamp is in the clone's .make/, not in a .venv
    assert modules.count("lib.environment") == 1
    assert len(list((clone / ".make").glob("system*.installed"))) == 1
    assert (clone / "reports" / "colabstudy" / "summary.csv").is_file()


def test_build_upstream_asks_for_this_python_in_colab_and_the_checkouts_venv_elsewhere(monkeypatch, tmp_path):
    monkeypatch.delenv("VENV", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    local = upstream_command("fetch", "tiny")
    assert "VENV=system" not in local and f"REPORTS={ROOT / 'reports'}" in local
    monkeypatch.setitem(sys.modules, "google.colab", object())
    profile = tmp_path / "mine.yaml"
    profile.write_text("x: 1\n")
    monkeypatch.chdir(tmp_path)
    command = upstream_command("encode", "mine.yaml", "out")
    assert command[-2:] == ["VENV=system", f"PYTHON={sys.executable}"]
    assert f"PROFILE={profile}" in command and f"REPORTS={tmp_path / 'out'}" in command


def test_system_python_installs_only_what_is_missing_and_pins_what_is_present():
    text = ("# comment\ntorch==2.14.1\nlpips==0.1.4  # a note\njupyter==1.1.1  # venv only: the front end\n"
            "nothing-installed-here==1.0\n")
    versions = {"torch": "2.5.1+cu121", "lpips": "0.1.4"}
    missing, present = environment.plan(text, version=versions.get)
    assert missing == ["nothing-installed-here==1.0"] and present == versions  # jupyter left out
    command = environment.pip_command(missing, Path("c.txt"))
    assert command[:4] == [sys.executable, "-m", "pip", "install"] and "--upgrade" not in command
    assert command[-3:] == ["--constraint", "c.txt", "nothing-installed-here==1.0"]
    assert ("jupyter", "jupyter==1.1.1") not in environment.requirements(text)


def test_make_on_a_system_python_keeps_no_venv_and_lists_the_choice_in_help():
    env = {**os.environ, "MAKEFLAGS": ""}
    # -W: as if requirements.txt had changed, so the check is planned even where its stamp exists
    done = subprocess.run(["make", "-n", "-W", "requirements.txt", "--no-print-directory", "venv", "VENV=system",
                           f"PYTHON={sys.executable}"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert f"{sys.executable} -m lib.environment requirements.txt" in done.stdout
    assert " -m venv" not in done.stdout and "pip install" not in done.stdout
    clean = subprocess.run(["make", "-n", "--no-print-directory", "clean-all", "VENV=system", "PROFILE=tiny"],
                           cwd=ROOT, capture_output=True, text=True, env=env).stdout
    assert "rm -rf system" not in clean and "rm -f .make/system" in clean
    assert "VENV=.venv|system" in subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT,
                                                 capture_output=True, text=True, env=env).stdout
