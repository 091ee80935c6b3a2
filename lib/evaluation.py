"""The one evaluation and the one result schema.

`evaluate_decoder` scores a trained decoder on a set of images: its reconstructions (after the test-time feature
matching the settings ask for), per image PSNR, SSIM, MSE and LPIPS, the three baselines (no information: the
training images' mean image; each image's mean colour; its thumbnail at the layer's grid) and every candidate's
distance to the original in the layer's own features. `result_record` turns a
fit and an evaluation into the record the evaluate step writes (`summary.json`) and `make bench-quality` writes
(its JSON): the same fields, under `SCHEMA_VERSION`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .baselines import BASELINE_NAMES
from .decoders import FeedbackDecoder
from .encoders import layer_encoder
from .matching import levels_record, match_features, steps_at
from .metrics import (Pixels, baseline_feature_errors, feature_error, mean_colour_baseline, mean_image_baseline, psnr,
                      score, ssim, thumbnail_baseline)
from .training import pick_device, reconstruct

SCHEMA_VERSION = 3
# per-image columns summarised by mean and std; the baselines' by their mean alone
METRICS = ("psnr", "ssim", "lpips", "mse", "feature_error", "decoder_psnr", "decoder_ssim")
BASELINES = tuple(f"baseline_{name}_{metric}" for name in BASELINE_NAMES for metric in ("psnr", "ssim", "feature_error"))
FEATURE_ERROR_BASELINES = tuple(f"baseline_{name}_feature_error" for name in BASELINE_NAMES)


def metric_summary(per_image: pd.DataFrame) -> dict:
    """<metric>_mean and <metric>_std over images of each of METRICS (None where a metric is unmeasured)."""
    out = {}
    for metric in METRICS:
        values = per_image[metric].to_numpy(dtype=float)
        empty = np.isnan(values).all()
        out[f"{metric}_mean"] = None if empty else float(np.mean(values))
        out[f"{metric}_std"] = None if empty else float(np.std(values))
    return out


def scores_summary(per_image: pd.DataFrame) -> dict:
    """`metric_summary` and each of BASELINES' mean: every per-image mean a record carries."""
    return {**metric_summary(per_image), **{name: float(np.mean(per_image[name].to_numpy(dtype=float)))
                                            for name in BASELINES}}


@dataclass
class Evaluation:
    per_image: pd.DataFrame  # one row per image: image, the METRICS and the BASELINES
    reconstructions: Pixels
    target: Pixels
    match_steps: int
    match_seconds: float

    def summary(self) -> dict:
        out = scores_summary(self.per_image)
        out.update(test_images=len(self.per_image), match_steps=self.match_steps,
                   match_seconds=round(self.match_seconds, 2), match_levels=levels_record(self.match_steps))
        return out


def evaluate_decoder(decoder, extractor, layer: str, features: torch.Tensor, images: np.ndarray, names: list[str], *,
                     mean_image: torch.Tensor, match_steps: int, lpips=None, device: str = "auto",
                     baseline_errors: dict[str, np.ndarray] | None = None, progress: bool = True) -> Evaluation:
    """Score `decoder` on `images` (uint8 N x 224 x 224 x 3) from their `features` at `layer` of `extractor`.
    `mean_image`: the decoder's training images' mean (3 x 224 x 224 in [0, 1], `data.training_mean_image`), the
    no-information baseline.
    `match_steps`: test-time feature-matching steps asked for (run only on grids where matching applies).
    `lpips`: a `metrics.LPIPSScorer`, or None to leave LPIPS empty.
    `baseline_errors`: the baselines' feature errors on these images (`metrics.baseline_feature_errors`, as the
    baselines step stores them), or None to compute them here."""
    target = Pixels.from_uint8(images)
    decoded = reconstruct(decoder, features)
    grid = features.shape[-1]
    steps = steps_at(grid, match_steps)
    started = time.perf_counter()
    base = decoder.base if isinstance(decoder, FeedbackDecoder) else decoder
    recon = Pixels.from_normalised(match_features(layer_encoder(extractor, layer, differentiable=True),
                                                  getattr(base, "feature_statistics", None), features, decoded, steps,
                                                  device=pick_device(device), progress=progress))
    match_seconds = time.perf_counter() - started
    extractor.to("cpu")
    per_image = pd.DataFrame({"image": list(names), **score(recon, target, lpips)})
    before = Pixels.from_normalised(decoded)
    per_image["decoder_psnr"] = psnr(before, target)  # the decoder's own, before feature matching
    per_image["decoder_ssim"] = ssim(before, target)
    baselines = {"mean_image": mean_image_baseline(mean_image, len(target)), "mean_colour": mean_colour_baseline(target),
                 "thumbnail": thumbnail_baseline(target, grid)}
    for name, candidate in baselines.items():
        per_image[f"baseline_{name}_psnr"] = psnr(candidate, target)
        per_image[f"baseline_{name}_ssim"] = ssim(candidate, target)
    # The layer's own view: distance of each image to the original in its features (a control PSNR lacks). The
    # baselines' are the same for every run of the layer: the baselines step computes them once for all of an
    # architecture's layers (`baseline_errors`), else they are computed here, the same way.
    if baseline_errors is None:
        baseline_errors = baseline_feature_errors(lambda layers: extractor, {layer: features}, target, mean_image)[layer]
    per_image = per_image.assign(feature_error=feature_error(extractor, layer, recon, features),
                                 **{name: baseline_errors[name] for name in FEATURE_ERROR_BASELINES})
    return Evaluation(per_image, recon, target, steps, match_seconds)


def result_record(arch: str, layer: str, settings: dict, fit: dict, encoder: dict, evaluation: Evaluation,
                  **extra) -> dict:
    """One trained and evaluated layer, as the evaluate step and `make bench-quality` both write it.

    `settings`: the decoder's settings (decoder, width, batch_size, checkpoint, feedback); `fit`: the training record (`fit_decoder`'s info, plus train_images: the
    training images); `encoder`: weights, weights_detail, encode_seconds,
    normalisation (the encoder's input mean/std: imagenet | native), network (the registry's name, if `arch` is the
    run's name for it); `extra`: fields of the run (lpips_note,
    eval_seconds, minutes for a wall-clock budget, ...)."""
    c, h, w = fit["feature_shape"]
    record = {
        "schema_version": SCHEMA_VERSION,
        "arch": arch, "layer": layer, "feature_shape": f"{c}x{h}x{w}", "spatial_locations": h * w,
        "network": encoder.get("network", arch), "weights": encoder["weights"], "weights_detail": encoder["weights_detail"],
        "normalisation": encoder["normalisation"],
        "decoder": settings["decoder"], "width": settings["width"], "depth": settings.get("depth"),
        "decoder_params": fit["decoder_params"],
        "decoder_params_target": settings.get("decoder_params", 0),  # 0: the decoder at `width`, not matched
        "seed": settings.get("seed"), "closed_form_paths": fit["closed_form_paths"],
        "train_images": fit["train_images"],
        "batch_size": fit["batch_size"],
        "checkpoint": settings.get("checkpoint", "last"),
        "epochs": fit["epochs"], "steps": fit["steps"],
        "feedback": fit["feedback"], "feedback_requested": settings.get("feedback", 0),
        "feedback_epochs": fit["feedback_epochs"],
        "images_seen": fit["images_seen"],  # the budget: training images over all the base decoder's steps
        "best_epoch": fit["best_epoch"],  # the epoch of the decoder kept (0: the untrained start)
        "improved_on_start": fit["improved_on_start"],  # did any epoch beat the untrained start on validation
        "still_falling": fit["still_falling"],  # was validation loss still falling when the budget ended (training.still_falling)
        "start_val_loss": fit["start_val_loss"],  # validation MSE before any gradient step (NaN: no validation)
        "best_val_loss": fit["best_val_loss"],  # ... and of the decoder kept
        "train_seconds": round(fit["train_seconds"], 2), "fit_seconds": round(fit["fit_seconds"], 2),
        "encode_seconds": round(encoder["encode_seconds"], 2), "device": fit["device"],
        "minutes": None,  # the wall-clock budget, where training had one instead of epochs
        **evaluation.summary(),
        **extra,
    }
    for key in ("start_val_loss", "best_val_loss"):  # JSON has no NaN
        if record[key] is not None and np.isnan(record[key]):
            record[key] = None
    return record
