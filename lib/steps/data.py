"""Step data: split by source photo, write the manifest, decode + resize every image once into the store."""
from __future__ import annotations

import numpy as np
import torch

from .. import data as datamod
from .. import plan as planmod
from ..io import save_torch


def run(root, progress: bool = True) -> dict:
    plan = planmod.load(root)
    planmod.require(plan.paths.source, "fetch")
    data = plan.data
    entries = datamod.make_split(data, data["seed"])
    store = datamod.build_store(entries, data["resize"], progress)
    store["crop"] = data["crop"]
    store["settings"] = data
    datamod.write_manifest(entries, plan.paths.manifest)
    save_torch(store, plan.paths.store)
    return {"entries": entries, "counts": datamod.split_counts(entries), "store": store}


def load_store(paths) -> dict:
    return torch.load(planmod.require(paths.store, "data"), weights_only=False)


def split_indices(store: dict, split: str) -> np.ndarray:
    return np.array([i for i, s in enumerate(store["splits"]) if s == split], dtype=np.int64)
