"""Feature inversion study: how much of an image survives at each layer of a vision network.

Paths are computed from this package's location, never from the working directory, so notebooks
run from `notebooks/` (Jupyter), from the repository root (papermill via make) or from Colab alike.

The project (Makefile, bench.mk, notebooks/, parameters/, requirements.txt) is ROOT:
- a checkout (or an editable install): the folder holding lib/, beside Makefile and parameters/;
- an installed copy (`pip install .`): the wheel ships those files as data files, installed under
  `<prefix>/share/feature-inversion/` (found through this package's own RECORD, so a --user or --prefix install
  finds its own copy), and lib is imported from site-packages. The `feature-inversion` command (lib/cli.py)
  runs make there, with the outputs under ./reports of the caller's working directory (REPORTS=).
Standard library only: make imports lib before any environment exists.
"""
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DISTRIBUTION = "feature-inversion"


def _is_project(folder: Path) -> bool:
    return (folder / "Makefile").is_file() and (folder / "parameters").is_dir()


def _installed_root() -> Path:
    """The share folder the wheel installed beside this package (the first that holds a Makefile)."""
    import sys
    import sysconfig
    from importlib import metadata

    candidates = []
    try:  # the RECORD of the distribution installed in the same site-packages as this package
        for dist in metadata.distributions(path=[str(PACKAGE_DIR.parent)]):
            if (dist.metadata["Name"] or "").lower().replace("_", "-") == DISTRIBUTION:
                candidates += [Path(dist.locate_file(f)).resolve().parent for f in dist.files or ()
                               if f.name == "Makefile" and f.parent.name == DISTRIBUTION]
    except Exception:  # an unreadable RECORD: fall back on the standard locations
        pass
    candidates += [Path(sysconfig.get_path("data")) / "share" / DISTRIBUTION, Path(sys.prefix) / "share" / DISTRIBUTION]
    return next((folder for folder in candidates if _is_project(folder)), candidates[-1])


CHECKOUT = _is_project(PACKAGE_DIR.parent)
ROOT = PACKAGE_DIR.parent if CHECKOUT else _installed_root()
PARAMETERS_DIR = ROOT / "parameters"
NOTEBOOKS_DIR = ROOT / "notebooks"
# a checkout keeps its outputs in reports/; an installed copy's share folder is no place for them (shared, perhaps
# read-only): ./reports of the working directory, as the `feature-inversion` command does
REPORTS_DIR = ROOT / "reports" if CHECKOUT else Path.cwd() / "reports"
# where DIV2K is downloaded unless a profile says (download_dir): data/ of a checkout (git-ignored), else a per-user
# cache, as torch's weights are: never the installed copy's share folder
DATA_DIR = ROOT / "data" if CHECKOUT else Path.home() / ".cache" / DISTRIBUTION

__all__ = ["ROOT", "PARAMETERS_DIR", "NOTEBOOKS_DIR", "REPORTS_DIR", "DATA_DIR", "CHECKOUT", "PACKAGE_DIR"]
