"""offline: the issue's offline targets as one sweep. `quality` on every layer of the study (random-init encoders,
the demo's scikit-image views split by source, MINUTES per layer), one JSON per layer (the quality record), then
table.json, table.md and table.png: each layer's decoder against both baselines, with each target met or missed.
Layers whose JSON already holds these settings are kept, not retrained:

    python -m lib.bench.offline --out-dir reports/bench/offline --train-dir DIR --test-dir DIR --minutes 10

The table's rows carry the records' own field names, plus what the report shows as it is: the targets, whether
they are met, and the labels of the margins (with intervals), feature errors and feature matching.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import data as datamod
from ..figures import offline_benchmark
from ..io import write_json, write_text
from ..provenance import record
from ..stats import margins_label
from .folders import BenchError, image_files
from .quality import MATCH_STEPS, quality

# The offline targets: every layer beats the mean-colour baseline; these three also the thumbnail of their grid.
THUMBNAIL_TARGETS = (("resnet34", "layer1"), ("vgg16", "block2"), ("vit_base_patch16_224", "block0"))
# Colour-jittered copies of the training images, for the layers where the flipped photos alone teach the decoder
# too few colours.
OFFLINE_COLOUR_COPIES = {("resnet34", "layer3"): 8, ("resnet34", "layer4"): 8}
BASELINES = ("mean_colour", "thumbnail")
# the quality record's fields each row of the table carries, under the same names
TABLE_FIELDS = (
    "arch", "layer", "weights", "psnr_mean", "psnr_std", "ssim_mean", "psnr_ci_low", "psnr_ci_high",
    "baseline_mean_colour_psnr", "baseline_thumbnail_psnr",
    *(f"psnr_minus_{b}{end}" for b in BASELINES for end in ("", "_ci_low", "_ci_high")), "test_sources",
    "feature_error_mean", "baseline_thumbnail_feature_error", "baseline_mean_colour_feature_error",
    "colour_copies", "closed_form_paths", "feedback", "match_steps", "decoder_psnr_mean", "epochs", "train_seconds",
    "minutes",
)


def targets_of(arch: str, layer: str) -> list[str]:
    """The baselines a layer is held to: the mean colour, and for THUMBNAIL_TARGETS the thumbnail too."""
    return ["mean_colour"] + (["thumbnail"] if (arch, layer) in THUMBNAIL_TARGETS else [])


def targets_label(targets: list[str]) -> str:
    """What a row of the offline table is held to, as written in table.md and the report: "mean colour + thumbnail"."""
    return " + ".join(targets).replace("_", " ")


def feature_errors_label(row: dict) -> str:
    """A record's feature errors, decoder / thumbnail / mean colour, 3 decimals each ("—" if not measured)."""
    keys = ("feature_error_mean", "baseline_thumbnail_feature_error", "baseline_mean_colour_feature_error")
    if any(row[k] is None for k in keys):
        return "—"
    return " / ".join(f"{row[k]:.3f}" for k in keys)


def matching_label(row: dict) -> str:
    """A record's feature-matching steps and the decoder's own PSNR before them ("<steps> (<dB>)"); "0" where none
    ran."""
    steps = int(row["match_steps"])
    return f"{steps} ({row['decoder_psnr_mean']:.2f})" if steps else "0"


def table_row(result: dict) -> dict:
    """One layer's row of the table: its record's TABLE_FIELDS, its targets, whether it meets them, the commit it
    was measured at, and the labels the report shows."""
    targets = targets_of(result["arch"], result["layer"])
    row = {key: result[key] for key in TABLE_FIELDS}
    row.update(targets=targets, met=all(result[f"psnr_minus_{t}"] > 0 for t in targets),
               git_commit=result["provenance"]["git_commit"],
               targets_label=targets_label(targets), margins_label=margins_label(result, targets),
               feature_errors_label=feature_errors_label(result), matching_label=matching_label(result))
    return row


def offline_table(results: list[dict]) -> dict:
    """Decoder vs both baselines per layer, the targets each layer has to meet and whether it does."""
    rows = [table_row(r) for r in results]
    return {"rows": rows, "met": sum(r["met"] for r in rows), "layers": len(rows)}


def offline_markdown(table: dict) -> str:
    lines = ["| arch | layer | PSNR | mean colour | thumbnail | target | margin (dB) [95% interval] | met "
             "| feature error: decoder / thumbnail / mean colour | copies | closed-form paths | feedback "
             "| matching (decoder alone) | epochs | commit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table["rows"]:
        lines.append(f"| {r['arch']} | {r['layer']} | {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} "
                     f"| {r['baseline_mean_colour_psnr']:.2f} | {r['baseline_thumbnail_psnr']:.2f} "
                     f"| {r['targets_label']} | {r['margins_label']} | {'yes' if r['met'] else 'no'} "
                     f"| {r['feature_errors_label']} | {r['colour_copies']} | {r['closed_form_paths']} "
                     f"| {r['feedback']} | {r['matching_label']} | {r['epochs']} | {r['git_commit'][:10]} |")
    lines.append(f"\n{table['met']} of {table['layers']} layers measured meet their targets.")
    if table.get("missing"):
        lines.append(f"Not measured at these settings: {', '.join(table['missing'])}.")
    return "\n".join(lines) + "\n"


def kept_settings(arch: str, layer: str, settings: dict) -> dict:
    """What a layer's record must hold for the sweep to keep it: the sweep's settings, the layer's colour copies and
    feature-matching steps and levels, and the current schema."""
    from ..evaluation import SCHEMA_VERSION
    from ..matching import levels_record, steps_at
    from ..registry import check_layer

    match = steps_at(check_layer(arch, layer)[1], MATCH_STEPS)
    return dict(settings, schema_version=SCHEMA_VERSION, colour_copies=OFFLINE_COLOUR_COPIES.get((arch, layer), 0),
                match_steps=match, match_levels=levels_record(match))


def offline(out_dir: Path, train_dir, test_dir, minutes: float, layers=None, run=None) -> dict:
    """`quality` with random weights on every layer (or only `layers`, "arch/layer" names) whose JSON in `out_dir`
    does not already hold these settings, each written as soon as it is done; then table.json and table.md from
    every layer measured at these settings (the others are listed as missing), and table.png, their plot."""
    from ..registry import all_layers

    run = run or quality
    everything = all_layers()
    selected = everything
    if layers:
        selected = [tuple(name.split("/", 1)) for name in layers]
        unknown = ["/".join(pair) for pair in selected if pair not in everything]
        if unknown:
            raise BenchError(f"unknown layer(s) {', '.join(unknown)}: name them arch/layer, e.g. resnet34/layer1.")
    settings = {"weights": "random", "minutes": minutes, "train_images": len(image_files(train_dir)),
                "test_images": len(image_files(test_dir))}
    out_dir = Path(out_dir)
    results, missing = [], []
    for arch, layer in everything:
        path = out_dir / f"{arch}-{layer}.json"
        wanted = kept_settings(arch, layer, settings)
        result = json.loads(path.read_text()) if path.exists() else {}
        kept = bool(result) and all(result.get(k) == v for k, v in wanted.items())
        if kept and (arch, layer) in selected:
            print(f"{arch} {layer}: kept (same settings; delete {path} to rerun)")
        elif (arch, layer) in selected:
            result = run(arch, layer, train_dir, test_dir, "random", minutes, colour_copies=wanted["colour_copies"])
            result["provenance"] = record()
            write_json(path, result)
            print(f"{arch} {layer}: {result['psnr_mean']:.2f} dB (mean colour {result['baseline_mean_colour_psnr']:.2f}, "
                  f"thumbnail {result['baseline_thumbnail_psnr']:.2f}) -> {path}")
            kept = True
        if kept:
            results.append(result)
        else:
            missing.append(f"{arch}/{layer}")
    table = dict(offline_table(results), missing=missing, settings=settings)
    write_json(out_dir / "table.json", table)
    write_text(out_dir / "table.md", offline_markdown(table))
    if results:
        offline_benchmark(table, out_dir / "table.png")
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.bench.offline", description=__doc__.splitlines()[0])
    for name in ("--out-dir", "--train-dir", "--test-dir"):
        parser.add_argument(name, required=True)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--layers", nargs="*", help="arch/layer names (default: all 14)")
    args = parser.parse_args(argv)
    try:
        table = offline(Path(args.out_dir), args.train_dir, args.test_dir, args.minutes, args.layers)
    except (BenchError, datamod.DataError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(offline_markdown(table), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
