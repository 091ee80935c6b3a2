"""Step summarise: one row per evaluated layer, in network order, with 95% intervals (`lib.stats`), written to
summary.csv; the PSNR lost from each layer to the next deeper one to depth_comparisons.csv; and where a network
runs with ImageNet and with random weights, learned minus random per layer to weights_comparisons.csv. Cheap:
reads the evaluate step's files, never trains or evaluates."""
from __future__ import annotations

import json

import pandas as pd

from .. import data as datamod
from .. import plan as planmod
from ..io import write_bytes
from ..stats import baseline_comparisons, depth_comparisons, weights_comparisons

SUMMARY_COLUMNS = [
    "arch", "network", "layer", "feature_shape", "spatial_locations", "decoder", "loss", "decoder_params", "weights",
    "normalisation", "epochs",
    "batch_size", "checkpoint", "colour_copies", "feedback", "match_steps", "best_epoch", "start_val_loss", "best_val_loss",
    "train_seconds", "encode_seconds",
    "eval_seconds", "test_images", "psnr_mean", "psnr_std", "decoder_psnr_mean", "ssim_mean", "ssim_std", "lpips_mean", "lpips_std", "mse_mean", "mse_std",
    "feature_error_mean", "feature_error_std",
    "baseline_mean_colour_psnr", "baseline_mean_colour_ssim", "baseline_thumbnail_psnr", "baseline_thumbnail_ssim",
    "baseline_mean_colour_feature_error", "baseline_thumbnail_feature_error",
    # lib.stats: 95% intervals by bootstrap over test source photos; differences paired by image
    "test_sources", "psnr_ci_low", "psnr_ci_high",
    "psnr_minus_mean_colour", "psnr_minus_mean_colour_ci_low", "psnr_minus_mean_colour_ci_high", "wins_vs_mean_colour",
    "psnr_minus_thumbnail", "psnr_minus_thumbnail_ci_low", "psnr_minus_thumbnail_ci_high", "wins_vs_thumbnail",
    "device", "weights_detail", "lpips_note",
]


def run(root) -> pd.DataFrame:
    plan = planmod.load(root)
    paths = plan.paths
    sources = {e.image: e.source for e in datamod.read_manifest(planmod.require(paths.manifest, "data"))}
    rows, per_image = [], {}
    for arch, layer in plan.layers():
        folder = paths.layer_dir(arch, layer)
        images = pd.read_csv(planmod.require(folder / "metrics.csv", "evaluate"))
        per_image[(arch, layer)] = images
        row = json.loads(planmod.require(folder / "summary.json", "evaluate").read_text())
        row.update(baseline_comparisons(images, [sources[i] for i in images["image"]], seed=plan.study["seed"]))
        rows.append(row)
    table = pd.DataFrame(rows)[SUMMARY_COLUMNS]
    write_bytes(paths.summary, table.to_csv(index=False).encode())
    layers = {arch: list(settings["layers"]) for arch, settings in plan.architectures.items()}
    depth = depth_comparisons(per_image, layers, sources, seed=plan.study["seed"])
    write_bytes(paths.depth_comparisons, depth.to_csv(index=False).encode())
    networks = {arch: settings["arch"] for arch, settings in plan.architectures.items()}
    kinds = dict(zip(table["arch"], table["weights"]))  # what each encoder really had (auto may have fallen back)
    fed = dict(zip(table["arch"], table["normalisation"]))  # and the input normalisation it was fed
    versus = weights_comparisons(per_image, networks, kinds, fed, sources, seed=plan.study["seed"])
    write_bytes(paths.weights_comparisons, versus.to_csv(index=False).encode())
    return table
