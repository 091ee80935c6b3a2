"""The notebook contract: what papermill, Colab and the report rely on."""
import ast
import json
import re

import pytest

from lib import NOTEBOOKS_DIR

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = ["01_data.ipynb", "02_train.ipynb", "03_evaluate.ipynb", "04_figures.ipynb", "05_report.ipynb", "06_invert.ipynb"]


def load(path):
    return json.loads(path.read_text())


def test_the_pipeline_notebooks_are_numbered_by_step():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_kernel_is_python3_and_no_outputs(path):
    book = load(path)
    assert book["metadata"]["kernelspec"]["name"] == "python3"
    for cell in book["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, "outputs must be stripped"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exactly_one_flat_typed_commented_parameters_cell(path):
    cells = [c for c in load(path)["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1
    source = "".join(cells[0]["source"])
    lines = [l for l in source.splitlines() if l.strip()]
    assert lines
    for line in lines:
        node = ast.parse(line).body[0]
        assert isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Constant), f"not flat and typed: {line}"
        assert isinstance(node.value.value, eval(ast.unparse(node.annotation))), f"default does not match its type: {line}"
        assert "#" in line.split("=", 1)[1], f"no comment: {line}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_badge_and_guarded_setup(path):
    cells = load(path)["cells"]
    badge = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown"
    assert re.search(r"colab\.research\.google\.com/github/[^/]+/[^/]+/blob/[^)]+/notebooks/" + re.escape(path.name), badge)
    assert "colab-badge.svg" in badge
    setup = "".join(cells[1]["source"])
    assert cells[1]["cell_type"] == "code" and 'if "google.colab" in sys.modules:' in setup
    assert "pip install" in setup
    for cell in cells[:2]:  # the report hides both
        assert "colab" in cell["metadata"]["tags"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_computation_lives_in_lib(path):
    code = "\n".join("".join(c["source"]) for c in load(path)["cells"] if c["cell_type"] == "code")
    assert "from lib" in code
    assert not re.search(r"^\s*(def|class) ", code, re.M), "functions belong in lib/"
    assert "torch.optim" not in code and "backward()" not in code


def test_the_notebook_runner_skips_only_the_iri_grammar_and_still_validates(tmp_path):
    """make runs papermill through lib.notebook: nbformat must still validate, without compiling RFC 3987."""
    import subprocess
    import sys

    from lib import ROOT

    code = (
        "import sys\n"
        "from lib.notebook import skip_unused_iri_checker\n"
        "skip_unused_iri_checker()\n"
        "import nbformat\n"
        "book = nbformat.read('notebooks/02_train.ipynb', as_version=4)\n"
        "nbformat.validate(book)\n"
        "book.cells[0]['cell_type'] = 'nonsense'\n"
        "try:\n"
        "    nbformat.validate(book)\n"
        "except nbformat.ValidationError:\n"
        "    print('invalid notebook rejected')\n"
        "print('grammar loaded' if sys.modules.get('rfc3987_syntax') is not None else 'grammar skipped')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["invalid notebook rejected", "grammar skipped"]


def test_every_notebook_points_at_the_same_repository_and_branch():
    """Badge and clone cell alike (`make colab` rewrites them together): a fork never opens half its notebooks
    from someone else's repository."""
    from lib.colab import pointed_at

    targets = {target for path in NOTEBOOKS for target in pointed_at(path).values()}
    assert len(targets) == 1, targets
