"""`make colab`: the notebooks' Colab badges and clone cells point wherever the user's fork lives."""
import json
import os
import shutil
import subprocess

import pytest

from lib import NOTEBOOKS_DIR, ROOT, colab


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
