"""Step baselines: each layer's baselines (no information, mean colour, thumbnail) scored in the layer's own
features on the test images, once per architecture (`metrics.baseline_feature_errors`: one encoder for every layer,
narrowed per grid), for every run's evaluation to read. A step of its own, after encode: what evaluation alone
scores never re-encodes, and so never retrains."""
from __future__ import annotations

import sys
import time

from .. import data as datamod
from .. import plan as planmod
from ..encoders import WeightsError, plan_extractor
from ..io import save_torch
from ..metrics import Pixels, baseline_feature_errors
from . import step_main
from .data import load_store, split_indices
from .encode import load_features


def run(root, arch: str) -> dict:
    plan = planmod.load(root)
    layers = plan.architectures[arch]["encode_layers"]  # the profile's, as encode wrote them
    store = load_store(plan.paths)
    started = time.perf_counter()
    test_i, train_i = split_indices(store, "test"), split_indices(store, "train")
    errors = {}
    if len(test_i) and len(train_i):
        extractor = plan_extractor(plan.encoder(arch), layers)
        crop = store["crop"]
        targets = {layer: load_features(plan.paths, arch, layer)[0]["features"][test_i] for layer in layers}
        errors = baseline_feature_errors(extractor.narrowed, targets,
                                         Pixels.from_uint8(datamod.centre_crops(store, crop, test_i)),
                                         datamod.training_mean_image(datamod.centre_crops(store, crop, train_i)))
    save_torch({"errors": errors, "test_images": len(test_i)}, plan.paths.baselines(arch))
    return {"arch": arch, "layers": layers, "seconds": time.perf_counter() - started}


def load(paths, arch: str, layer: str) -> dict | None:
    """One layer's baselines' feature errors (name -> per test image), or None where the test or training split is
    empty; one error naming the make target where the step has not run."""
    import torch

    return torch.load(planmod.require(paths.baselines(arch), "baselines"), weights_only=False)["errors"].get(layer)


def main(argv=None) -> int:
    return step_main(argv, "baselines", __doc__, run,
                     lambda done: f"{done['arch']}: baselines' feature errors for {', '.join(done['layers'])} "
                                  f"in {done['seconds']:.0f}s",
                     (planmod.MissingInputError, datamod.DataError, WeightsError, RuntimeError, ValueError))

if __name__ == "__main__":
    sys.exit(main())
