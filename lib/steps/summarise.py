"""Step summarise: the rows of every evaluated layer and run, in network order, with 95% intervals (`lib.stats`),
written to summary.csv; the PSNR lost from each layer to the next deeper one to depth_comparisons.csv; where a network runs
with ImageNet and with random weights, learned minus random per layer to weights_comparisons.csv; and where the
profile has a capacity sweep, the study's networks compared at each shared grid at their default and at equal
decoder capacity to capacity_comparisons.csv. Cheap: reads the evaluate step's files, never trains or evaluates.

summary.csv's `row` column says what a row is:
- `layer`: the layer's result, the row every table and figure reads. With several seeds (`seeds` > 1) it is their
  aggregate: each test image's metrics averaged over the seeds, intervals over test photos from those, and the
  seed-to-seed spread of the mean (`psnr_seed_sd`, min, max) beside the image-to-image one (`psnr_std`);
- `seed`: one seed's own result (only when `seeds` > 1), next to its layer's row;
- `capacity`: the layer with its decoder scaled to the sweep's parameter count (`decoder_params_target`).
"""
from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pandas as pd

from .. import data as datamod
from .. import plan as planmod
from ..evaluation import scores_summary
from ..io import write_bytes
from ..registry import STUDY
from ..baselines import BASELINE_NAMES
from ..stats import baseline_comparisons, capacity_comparisons, depth_comparisons, weights_comparisons

SUMMARY_COLUMNS = [
    "row", "arch", "network", "layer", "run", "seed", "seeds", "feature_shape", "spatial_locations", "decoder",
    "width", "depth", "decoder_params", "decoder_params_target", "weights", "normalisation", "epochs", "steps",
    "images_seen", "batch_size", "checkpoint", "feedback", "match_steps", "best_epoch",
    "start_val_loss", "best_val_loss", "improved_on_start", "still_falling",
    "train_seconds", "encode_seconds",
    "eval_seconds", "test_images", "psnr_mean", "psnr_std", "decoder_psnr_mean", "ssim_mean", "ssim_std", "lpips_mean", "lpips_std", "mse_mean", "mse_std",
    "feature_error_mean", "feature_error_std",
    "psnr_seed_sd", "psnr_seed_min", "psnr_seed_max", "ssim_seed_sd",
    *(f"baseline_{name}_{metric}" for name in BASELINE_NAMES for metric in ("psnr", "ssim")),
    *(f"baseline_{name}_feature_error" for name in BASELINE_NAMES),
    # lib.stats: 95% intervals by bootstrap over test source photos; differences paired by image
    "test_sources", "psnr_ci_low", "psnr_ci_high",
    *(f"{column}{name}{suffix}" for name in BASELINE_NAMES
      for column, suffix in (("psnr_minus_", ""), ("psnr_minus_", "_ci_low"), ("psnr_minus_", "_ci_high"), ("wins_vs_", ""))),
    "device", "weights_detail", "lpips_note",
]


# columns that only some rows carry: the seed spread (aggregates), the target (capacity rows), depth (matched decoders)
OPTIONAL_COLUMNS = ["psnr_seed_sd", "psnr_seed_min", "psnr_seed_max", "ssim_seed_sd", "depth", "decoder_params_target"]


def layer_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The per-layer rows of summary.csv (what every table and figure reads), one per layer, in network order."""
    return table[table["row"] == "layer"].reset_index(drop=True)


def _aggregate(records: list[dict], images: list[pd.DataFrame]) -> tuple[dict, pd.DataFrame]:
    """Several seeds of one layer as one row: each image's metrics averaged over the seeds, the first seed's record
    for everything else (its start and kept epoch), training time summed, the seed-to-seed spread of the means, and
    still learning if any seed was."""
    mean_images = pd.concat(images).groupby("image", sort=False).mean(numeric_only=True).reset_index()
    row = {**records[0], **scores_summary(mean_images)}
    psnr = np.array([r["psnr_mean"] for r in records])
    row.update(seed=None, run="", train_seconds=sum(r["train_seconds"] for r in records),
               eval_seconds=sum(r["eval_seconds"] for r in records), psnr_seed_sd=float(psnr.std(ddof=1)),
               psnr_seed_min=float(psnr.min()), psnr_seed_max=float(psnr.max()),
               ssim_seed_sd=float(np.std([r["ssim_mean"] for r in records], ddof=1)))
    if any(r.get("still_falling") is not None for r in records):
        row["still_falling"] = any(bool(r.get("still_falling")) for r in records)
    return row, mean_images


def _read(folder):
    """A run's record and per-image scores. The record's means are taken again from metrics.csv: summary.json's were
    computed before the scores were written out as text and differ from them in the last digits, and every mean,
    margin and comparison in the summary must come from one stored copy of the scores."""
    images = pd.read_csv(planmod.require(folder / "metrics.csv", "evaluate"))
    record = json.loads(planmod.require(folder / "summary.json", "evaluate").read_text())
    return {**record, **scores_summary(images)}, images


def capacity_pairs(sweep_layers: list[tuple[str, str]], networks: dict[str, str], shapes: dict) -> list[tuple]:
    """The study's networks against each other at every grid they share in the sweep, each by its shallowest
    layer there: ((arch, layer), (arch, layer)) pairs, as the study compared its networks."""
    first = {}
    for arch, layer in sweep_layers:
        if networks[arch] in STUDY:
            first.setdefault((shapes[(arch, layer)][1], arch), (arch, layer))
    grids = sorted({grid for grid, _ in first}, reverse=True)
    return [(a, b) for grid in grids for a, b in combinations([v for (g, _), v in first.items() if g == grid], 2)]


def run(root) -> pd.DataFrame:
    plan = planmod.load(root)
    paths = plan.paths
    seed = plan.study["seed"]
    sources = {e.image: e.source for e in datamod.read_manifest(planmod.require(paths.manifest, "data"))}
    rows, per_image, main_images = [], {}, {}

    def compared(images: pd.DataFrame) -> dict:  # intervals over test photos, margins over the three baselines
        return baseline_comparisons(images, [sources[i] for i in images["image"]], seed=seed)

    for arch, layer in plan.layers():
        seed_runs = [""] + [run for run in plan.runs(arch, layer) if run.startswith("seed")]
        records, images = zip(*(_read(paths.layer_dir(arch, layer, run)) for run in seed_runs))
        main_images[(arch, layer)] = images[0]
        if len(seed_runs) > 1:
            row, per_image[(arch, layer)] = _aggregate(records, images)
        else:
            row, per_image[(arch, layer)] = dict(records[0]), images[0]
        rows.append({**row, "row": "layer", "seeds": len(seed_runs), **compared(per_image[(arch, layer)])})
        if len(seed_runs) > 1:  # each seed's own row beside the aggregate
            rows += [{**record, "row": "seed", "run": run, "seeds": len(seed_runs), **compared(table)}
                     for run, record, table in zip(seed_runs, records, images)]
    networks = {arch: settings["arch"] for arch, settings in plan.architectures.items()}
    sweep = plan.study.get("capacity_sweep")
    capacity = capacity_comparisons({}, {}, [], sources)  # no sweep: the file holds its columns and no row
    if sweep:
        matched_images, shapes = {}, {}
        for arch, layers in sweep["runs"].items():
            for layer, run in layers.items():
                record, images = _read(paths.layer_dir(arch, layer, run))
                matched_images[(arch, layer)] = images
                shapes[(arch, layer)] = tuple(int(v) for v in record["feature_shape"].split("x"))
                rows.append({**record, "row": "capacity", "run": run, "seeds": 1,
                             "decoder_params_target": sweep["decoder_params"], **compared(images)})
        pairs = capacity_pairs(list(matched_images), networks, shapes)
        capacity = capacity_comparisons(main_images, matched_images, pairs, sources, seed=seed)
    table = pd.DataFrame(rows)
    for column in OPTIONAL_COLUMNS:  # set on some rows only (aggregates, capacity runs, runs of this schema)
        if column not in table:
            table[column] = np.nan
    table = table[SUMMARY_COLUMNS]
    write_bytes(paths.summary, table.to_csv(index=False).encode())
    write_bytes(paths.capacity_comparisons, capacity.to_csv(index=False).encode())
    layers = {arch: list(settings["layers"]) for arch, settings in plan.architectures.items()}
    depth = depth_comparisons(per_image, layers, sources, seed=seed)
    write_bytes(paths.depth_comparisons, depth.to_csv(index=False).encode())
    main = layer_rows(table)
    kinds = dict(zip(main["arch"], main["weights"]))  # what each encoder really had (auto may have fallen back)
    fed = dict(zip(main["arch"], main["normalisation"]))  # and the input normalisation it was fed
    versus = weights_comparisons(per_image, networks, kinds, fed, sources, seed=seed)
    write_bytes(paths.weights_comparisons, versus.to_csv(index=False).encode())
    return table
