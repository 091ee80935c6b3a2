"""Where the notebooks' Colab badges and clone cells point: `make colab REPO=owner/name [BRANCH=main]` rewrites both
in every notebook, so a fork opens its own code in Colab. Standard library only (make runs it before a venv may
exist), and each notebook is rewritten atomically."""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from . import NOTEBOOKS_DIR, ROOT
from .io import write_text

# The repository the committed notebooks point at until `make colab` is run (a placeholder, not a real project).
PLACEHOLDER = "feature-inversion/feature-inversion"
REPO_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
BRANCH_PATTERN = re.compile(r"^(?!/|.*//|.*\.\.|.*\.lock$|.*/$)[A-Za-z0-9._/-]{1,200}$")
BADGE = re.compile(r"https://colab\.research\.google\.com/github/(?P<repo>[^/\s)]+/[^/\s)]+)/blob/(?P<branch>.+?)/"
                   r"notebooks/(?P<notebook>[^/\s)]+\.ipynb)")
CLONE = re.compile(r"!git clone --depth 1 (?:--branch (?P<branch>\S+) )?https://github\.com/(?P<repo>\S+?) "
                   r"(?P<folder>/content/\S+)")


class ColabError(ValueError):
    """A repository or branch that cannot be written into the notebooks, or a notebook without its Colab cells."""


def github_repo(url: str) -> str | None:
    """owner/name from a GitHub remote URL (https or ssh, with or without .git); None for any other host."""
    match = re.match(r"^(?:https://(?:[^@/]+@)?github\.com/|git@github\.com:|ssh://git@github\.com/)"
                     r"([^/]+/[^/]+?)(?:\.git)?/?$", url.strip())
    return match.group(1) if match else None


def default_repo(root: Path = ROOT) -> str | None:
    """The origin remote's owner/name when it is on GitHub, else None."""
    done = subprocess.run(["git", "remote", "get-url", "origin"], cwd=root, capture_output=True, text=True)
    return github_repo(done.stdout) if done.returncode == 0 else None


def pointed_at(path: Path, cells: list | None = None) -> dict:
    """What one notebook's badge and clone cell point at: {'badge': (repo, branch), 'clone': (repo, branch)}
    (`cells`: the notebook's cells when already read)."""
    path = Path(path)
    cells = json.loads(path.read_text())["cells"] if cells is None else cells
    badge = BADGE.search("".join(cells[0]["source"])) if cells else None
    clone = CLONE.search("".join(cells[1]["source"])) if len(cells) > 1 else None
    if not badge or not clone:
        raise ColabError(f"{path.name}: its first two cells are not a Colab badge and a clone cell; "
                         "restore them from git (`git checkout -- notebooks/`)")
    return {"badge": (badge["repo"], badge["branch"]), "clone": (clone["repo"], clone["branch"] or "main")}


def point(path: Path, repo: str, branch: str) -> bool:
    """Point one notebook's badge and clone cell at repo and branch; True when the file changed."""
    path = Path(path)
    text = path.read_text()
    book = json.loads(text)
    pointed_at(path, book["cells"])  # both cells must be there before anything is rewritten
    folder = repo.split("/")[1]
    badge_url = f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{path.name}"
    clone = f"!git clone --depth 1 --branch {branch} https://github.com/{repo} /content/{folder}"

    def rewrite(cell, pattern, new, old_folder=None):
        source = "".join(cell["source"])
        found = pattern.search(source)
        source = source[:found.start()] + new + source[found.end():]
        if old_folder:  # the install and cd lines name the clone's folder too
            source = re.sub(re.escape(old_folder) + r"(?=\s|$)", f"/content/{folder}", source)
        cell["source"] = source.splitlines(keepends=True)

    rewrite(book["cells"][0], BADGE, badge_url)
    rewrite(book["cells"][1], CLONE, clone, CLONE.search("".join(book["cells"][1]["source"]))["folder"])
    new_text = json.dumps(book, indent=1, ensure_ascii=False) + "\n"
    if new_text == text:
        return False
    stat = path.stat()
    write_text(path, new_text)
    # Only the Colab cells changed, which no step runs (the report hides them): keeping the timestamp keeps make
    # from re-running every step that reads the notebook.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return True


def check(repo: str | None, branch: str) -> str:
    if not repo:
        raise ColabError("no repository given and `git remote get-url origin` is not a GitHub URL: "
                         "run `make colab REPO=owner/name [BRANCH=main]`")
    if not REPO_PATTERN.match(repo):
        raise ColabError(f"REPO={repo!r} is not a GitHub owner/name (e.g. REPO=alice/feature-inversion)")
    if not BRANCH_PATTERN.match(branch):
        raise ColabError(f"BRANCH={branch!r} is not a valid branch name (e.g. BRANCH=main)")
    return repo


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", default="", help="owner/name on GitHub (default: the origin remote's)")
    parser.add_argument("--branch", default="main")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS_DIR, help="the folder of notebooks to rewrite")
    args = parser.parse_args(argv)
    notebooks = sorted(args.notebooks.glob("*.ipynb"))
    try:
        if not notebooks:
            raise ColabError(f"no notebooks in {args.notebooks}")
        repo = check(args.repo or default_repo(), args.branch)
        for path in notebooks:  # every notebook is checked before any is rewritten
            pointed_at(path)
        changed = [path.name for path in notebooks if point(path, repo, args.branch)]
    except ColabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(notebooks)} notebooks point at github.com/{repo} ({args.branch})"
          + (f"; rewritten: {', '.join(changed)}" if changed else "; none changed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
