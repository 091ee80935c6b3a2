"""The one loader of a study's resolved settings, `reports/<profile>/plan.json`, which the plan step
(`python -m lib.config plan`) writes and every other step reads."""
from __future__ import annotations

import json
from pathlib import Path

from .paths import StudyPaths


class MissingInputError(FileNotFoundError):
    """A step's input is not there: the message names the file and the make target that builds it."""


def require(path: Path, target: str) -> Path:
    """`path`, or one clear error naming the make target that builds it (only make builds upstream)."""
    if not Path(path).exists():
        raise MissingInputError(f"{path} is missing: build it with `make {target}` (with the same PROFILE= and "
                                f"REPORTS=), or run the whole study with `make report`.")
    return Path(path)


class Plan:
    def __init__(self, root: str | Path, study: dict | None = None):
        """The plan a study under `root` wrote, or `study` itself: settings `config.resolve` returned, read the
        same way (the benchmarks)."""
        self.paths = StudyPaths(root)
        self.study = study if study is not None else json.loads(require(self.paths.plan, "plan").read_text())

    @property
    def profile(self) -> str:
        return self.study["profile"]

    @property
    def data(self) -> dict:
        return {"profile": self.study["profile"], "seed": self.study["seed"], **self.study["data"]}

    @property
    def architectures(self) -> dict:
        return self.study["architectures"]

    def layers(self) -> list[tuple[str, str]]:
        return [(arch, layer) for arch, s in self.architectures.items() for layer in s["layers"]]

    def encoder(self, arch: str) -> dict:
        """How to build one encoder of this run: its network (`arch`, the registry's name; the run's name for it
        is `name`), weights, weights_file, normalisation and seed."""
        if arch not in self.architectures:
            raise ValueError(f"architecture '{arch}' is not in this run of profile '{self.profile}' "
                             f"(its architectures: {', '.join(self.architectures)}).")
        settings = self.architectures[arch]
        return {"name": arch, "arch": settings["arch"], "weights": settings["weights"],
                "weights_file": settings["weights_file"], "normalisation": settings["normalisation"],
                "seed": self.study["seed"]}

    def layer(self, arch: str, layer: str, run: str = "") -> dict:
        """The training settings of one layer's run ("" its main run; `runs`), with arch, layer and seed."""
        self.encoder(arch)  # one error for an architecture not in this run
        layers = self.architectures[arch]["layers"]
        if layer not in layers:
            raise ValueError(f"layer '{layer}' of {arch} is not in this run of profile '{self.profile}' "
                             f"(its layers: {', '.join(layers)}).")
        runs = self.runs(arch, layer)
        if run and run not in runs:
            raise ValueError(f"run '{run}' of {arch} {layer} is not in this run of profile '{self.profile}' "
                             f"(its runs: {', '.join(runs) or 'none beyond the main one'}).")
        return {"arch": arch, "layer": layer, "seed": self.study["seed"], **(runs[run] if run else layers[layer])}

    def runs(self, arch: str, layer: str) -> dict:
        """A layer's runs beyond its main one (seed repeats, a capacity-matched decoder): name -> settings."""
        return self.architectures[arch].get("runs", {}).get(layer, {})


def load(root: str | Path) -> Plan:
    return Plan(root)
