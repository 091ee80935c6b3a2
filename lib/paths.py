"""Where a study's files live: reports/<profile>/..., computed from the package location (or a given root).

    plan.json                the resolved settings (written by `python -m lib.config plan`); config/ its slices
    data/source.json         where the source images are (fetch)
    split.csv, data/images.pt   split manifest, decoded + resized uint8 images (data)
    features/<arch>/<layer>.pt, done.json   frozen-encoder features (encode, once per architecture)
    features/<arch>/baselines.pt            the baselines' feature errors on the test images (baselines, once per arch)
    <arch>/<layer>/          decoder.pt, history.csv (train); metrics.csv, summary.json, samples.npz (evaluate)
    <arch>/<layer>/<run>/    the same for a layer's seed repeat (seed<k>) or capacity-matched run (params<n>)
    summary.csv, depth_, weights_ and capacity_comparisons.csv, figures/ (figures); report.html, report.pdf (report)
"""
from __future__ import annotations

from pathlib import Path

from . import REPORTS_DIR


def study_root(profile: str, reports_root: str | Path | None = None) -> Path:
    """reports/<profile name>: a profile is a name in parameters/ or a path to a YAML file (its stem names it)."""
    return Path(reports_root or REPORTS_DIR) / Path(profile).stem


class StudyPaths:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.plan = self.root / "plan.json"
        self.source = self.root / "data" / "source.json"
        self.manifest = self.root / "split.csv"
        self.store = self.root / "data" / "images.pt"
        self.summary = self.root / "summary.csv"
        self.depth_comparisons = self.root / "depth_comparisons.csv"
        self.weights_comparisons = self.root / "weights_comparisons.csv"
        self.capacity_comparisons = self.root / "capacity_comparisons.csv"
        self.figures = self.root / "figures"

    def features(self, arch: str, layer: str) -> Path:
        return self.root / "features" / arch / f"{layer}.pt"

    def features_done(self, arch: str) -> Path:
        return self.root / "features" / arch / "done.json"

    def baselines(self, arch: str) -> Path:
        return self.root / "features" / arch / "baselines.pt"

    def layer_dir(self, arch: str, layer: str, run: str = "") -> Path:
        """A layer's main run; a named run (seed repeat `seed<k>`, capacity-matched `params<n>`) in a folder inside."""
        return self.root / arch / layer / run if run else self.root / arch / layer
