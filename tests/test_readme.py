"""The README is a front door: short, every local link resolves, and no measured scores (they go stale; the report
and docs/ hold them). The docs' own local links are held to the same standard, so moving a file breaks a test."""
import re

import pytest

from lib import ROOT

README = ROOT / "README.md"
DOCS = [README, ROOT / "docs" / "method.md", ROOT / "docs" / "benchmarks.md"]
MAX_README_LINES = 150

# [text](target) and ![alt](target), text allowed to wrap lines; an optional "title" after the target
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
# a decibel figure: "27.4 dB", "+1 dB", "−0.62dB"
DECIBELS = re.compile(r"[-+−]?\d+(?:[.,]\d+)?\s*dB\b")


def prose(text: str) -> str:
    """Markdown without code: fenced blocks and inline code spans (which may wrap lines) hold shell, not links."""
    text = re.sub(r"(?ms)^\s*```.*?^\s*```", "", text)
    return re.sub(r"`[^`]*`", "", text)


def local_links(path) -> list[tuple[str, str]]:
    """(file part, anchor) of every link in `path` that points inside the repository."""
    text = prose(path.read_text(encoding="utf-8"))
    links = []
    for target in INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        links.append((file_part, anchor))
    return links


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path) -> set[str]:
    text = re.sub(r"(?ms)^\s*```.*?^\s*```", "", path.read_text(encoding="utf-8"))
    return {slug(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.MULTILINE)}


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; at most {MAX_README_LINES}: move detail to docs/"


def test_readme_quotes_no_decibels():
    found = DECIBELS.findall(README.read_text(encoding="utf-8"))
    assert not found, f"README.md quotes measured scores {found}: they belong in docs/ or the report"


def test_readme_has_links_to_check():
    # guards the link test below against a parser that silently finds nothing
    assert {"docs/method.md", "docs/benchmarks.md"} <= {file for file, _ in local_links(README)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_local_links_resolve(doc):
    missing = []
    for file_part, anchor in local_links(doc):
        target = (doc.parent / file_part).resolve() if file_part else doc
        if not target.exists():
            missing.append(file_part)
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            missing.append(f"{file_part}#{anchor}")
    assert not missing, f"{doc.relative_to(ROOT)} links to what does not exist: {missing}"
