"""Step encode: one frozen-encoder pass over every image gives all of an architecture's layers; fp16 on disk."""
from __future__ import annotations

import json
import sys
import time

import torch

from .. import data as datamod
from .. import plan as planmod
from ..encoders import WeightsError, plan_extractor, storable
from ..io import save_torch, write_json
from . import step_main
from .data import load_store


def run(root, arch: str, batch_size: int = 16, progress: bool = True) -> dict:
    from tqdm import tqdm  # text bars: readable in logs and in executed notebooks

    plan = planmod.load(root)
    encoder = plan.encoder(arch)
    layers = plan.architectures[arch]["encode_layers"]  # the profile's, not narrowed by LAYERS=
    store = load_store(plan.paths)
    extractor = plan_extractor(encoder, layers)
    crop = store["crop"]
    chunks: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    started = time.perf_counter()
    count = len(store["images"])
    for start in tqdm(range(0, count, batch_size), desc=f"encode {arch}", disable=not progress):
        batch = datamod.centre_crops(store, crop, range(start, min(count, start + batch_size)))
        for layer, value in extractor(datamod.normalise(batch)).items():
            chunks[layer].append(value)
    for layer in layers:
        save_torch({"features": storable(torch.cat(chunks.pop(layer))), "names": store["names"], "splits": store["splits"]},
                   plan.paths.features(arch, layer))  # each layer's float32 chunks freed as it is saved
    done = {"arch": arch, "network": encoder["arch"], "layers": layers, "weights": extractor.weights.kind,
            "weights_detail": extractor.weights.detail, "normalisation": extractor.normalisation,
            "input_mean": list(extractor.input_mean), "input_std": list(extractor.input_std),
            "images": count, "seconds": time.perf_counter() - started}
    write_json(plan.paths.features_done(arch), done)
    return done


def load_features(paths, arch: str, layer: str) -> tuple[dict, dict]:
    """(features file, encoder record) of one layer, or one error naming the make target."""
    done = json.loads(planmod.require(paths.features_done(arch), "encode").read_text())
    if layer not in done["layers"]:  # the layer joined the profile after the architecture was encoded
        raise planmod.MissingInputError(
            f"{arch} was encoded for {', '.join(done['layers'])}, not {layer}: delete {paths.features_done(arch)} and "
            f"run make again (this re-encodes {arch}, and so retrains its layers).")
    return torch.load(planmod.require(paths.features(arch, layer), "encode"), weights_only=False), done


def main(argv=None) -> int:
    return step_main(argv, "encode", __doc__, run,
                     lambda done: f"{done['arch']}: encoded {done['images']} images for {', '.join(done['layers'])} "
                                  f"in {done['seconds']:.0f}s ({done['weights']} weights)",
                     (planmod.MissingInputError, datamod.DataError, WeightsError, RuntimeError, ValueError))

if __name__ == "__main__":
    sys.exit(main())
