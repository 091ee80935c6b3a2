"""Feature inversion study: how much of an image survives at each layer of a vision network.

Paths are computed from this package's location, never from the working directory, so notebooks
run from `notebooks/` (Jupyter), from the repository root (papermill via make) or from Colab alike.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARAMETERS_DIR = ROOT / "parameters"
NOTEBOOKS_DIR = ROOT / "notebooks"
REPORTS_DIR = ROOT / "reports"

__all__ = ["ROOT", "PARAMETERS_DIR", "NOTEBOOKS_DIR", "REPORTS_DIR"]
