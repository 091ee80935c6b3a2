"""offline: the benchmark sweeps. `quality` at a profile's settings (default demo) on every layer of the study
(random-init encoders) and on EfficientNet-Lite0's stages with its ImageNet weights and with random ones, on the
demo's views split by source; one JSON per row (the quality record), then table.json, table.md and table.png: each
row's decoder against the three baselines, with each target met or missed.
Layers whose JSON already holds these settings are kept, not retrained:

    python -m lib.bench.offline --out-dir reports/bench/offline --train-dir DIR --val-dir DIR --test-dir DIR \
        [--profile demo] [--set EPOCHS=20] [--minutes 10]

`--sweep learned` is the learned-features sweep instead: EfficientNet-Lite0's stages alone, both weights, on natural
photo folders the demo never saw (`make bench-photos`).

The table's rows carry the records' own field names, plus what the report shows as it is: the targets, whether
they are met, and the labels of the margins (with intervals), feature errors and feature matching.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import data as datamod
from ..baselines import BASELINE_NAMES, BASELINE_SHORT, at_or_above
from ..figures import offline_benchmark
from ..io import write_json, write_text
from ..provenance import record
from ..stats import margins_label
from .folders import BenchError, image_files, image_sources
from .quality import quality

# The targets, each a minimum margin (dB) over a baseline: every layer reaches the no-information baseline (the
# training images' mean image); EfficientNet-Lite0, the learned encoder, and its random twin are held to the same bars
# per stage: above the thumbnail at 112x112 and 56x56, within 1 dB of it at 28x28, and the no-information baseline at
# 14x14 and 7x7.
LITE0_TARGETS = {"stage0": {"thumbnail": 0.0}, "stage1": {"thumbnail": 0.0}, "stage2": {"thumbnail": -1.0},
                 "stage3": {"mean_image": 0.0}, "stage4": {"mean_image": 0.0}}
# the quality record's fields each row of the table carries, under the same names
TABLE_FIELDS = (
    "arch", "layer", "weights", "profile", "psnr_mean", "psnr_std", "ssim_mean", "psnr_ci_low", "psnr_ci_high",
    *(f"baseline_{b}_psnr" for b in BASELINE_NAMES),
    *(f"psnr_minus_{b}{end}" for b in BASELINE_NAMES for end in ("", "_ci_low", "_ci_high")), "test_sources",
    "feature_error_mean", *(f"baseline_{b}_feature_error" for b in BASELINE_NAMES),
    "closed_form_paths", "feedback", "match_steps", "decoder_psnr_mean", "epochs", "images_seen", "still_falling",
    "train_seconds", "minutes", "schema_version",
)
# the names of the sweeps: `offline` (the study's 14 layers and Lite0's 10 rows on the demo's views) and `learned`
# (Lite0's 10 rows on natural photos the demo never saw)
SWEEPS = ("offline", "learned")


def sweep(name: str = "offline") -> list[tuple[str, str, str]]:
    """Every (arch, layer, weights) row: the study's 14 layers with random weights (offline sweep only), then
    EfficientNet-Lite0's stages with its ImageNet weights and with random ones."""
    from ..registry import all_layers

    lite0 = [("efficientnet_lite0", layer, weights) for weights in ("imagenet", "random") for layer in LITE0_TARGETS]
    return lite0 if name == "learned" else [(arch, layer, "random") for arch, layer in all_layers()] + lite0


def row_name(arch: str, layer: str, weights: str) -> str:
    """A row's name (its JSON file stem, and ONLY's word with / for -): arch-layer, with -imagenet for learned rows."""
    return f"{arch}-{layer}" + ("" if weights == "random" else f"-{weights}")


def targets_of(arch: str, layer: str) -> dict[str, float]:
    """The baselines a layer is held to, each with the margin (dB) it must exceed."""
    if arch == "efficientnet_lite0":
        return dict(LITE0_TARGETS[layer])
    return {"mean_image": 0.0}


def targets_label(targets: dict[str, float]) -> str:
    """What a row of the offline table is held to, as written in table.md and the report: "mean colour + thumbnail",
    with a margin where it is not zero ("thumbnail +1 dB")."""
    return " + ".join(BASELINE_SHORT[name] + (f" {margin:+g} dB" if margin else "")
                      for name, margin in targets.items())


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
    # met: the 95% interval of the margin over each target lies above its bar (the thumbnail of a fine grid), or the
    # mean does (a bar that is a concession, e.g. within 1 dB; and the no-information floor, where a decoder that kept
    # its mean-image start sits at the bar up to rounding: `baselines.at_or_above`)
    row.update(targets=targets, met=all(at_or_above(result[f"psnr_minus_{t}_ci_low"] if t == "thumbnail" and margin >= 0
                                                    else result[f"psnr_minus_{t}"], margin)
                                        for t, margin in targets.items()),
               git_commit=result["provenance"]["git_commit"],
               targets_label=targets_label(targets), margins_label=margins_label(result, list(targets)),
               feature_errors_label=feature_errors_label(result), matching_label=matching_label(result))
    return row


def offline_table(results: list[dict]) -> dict:
    """Decoder vs the three baselines per layer, the targets each layer has to meet and whether it does."""
    rows = [table_row(r) for r in results]
    return {"rows": rows, "met": sum(r["met"] for r in rows), "layers": len(rows)}


def offline_markdown(table: dict) -> str:
    lines = ["| arch | layer | PSNR | no information | mean colour | thumbnail | target | margin (dB) [95% interval] "
             "| met | feature error: decoder / thumbnail / mean colour | closed-form paths | feedback "
             "| matching (decoder alone) | images seen | still learning | commit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table["rows"]:
        lines.append(f"| {r['arch']}{'' if r['weights'] == 'random' else ' (' + r['weights'] + ')'} | {r['layer']} "
                     f"| {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} | {r['baseline_mean_image_psnr']:.2f} "
                     f"| {r['baseline_mean_colour_psnr']:.2f} | {r['baseline_thumbnail_psnr']:.2f} "
                     f"| {r['targets_label']} | {r['margins_label']} | {'yes' if r['met'] else 'no'} "
                     f"| {r['feature_errors_label']} | {r['closed_form_paths']} "
                     f"| {r['feedback']} | {r['matching_label']} | {r['images_seen']:,} "
                     f"| {'yes' if r['still_falling'] else 'no'} | {r['git_commit'][:10]} |")
    lines.append(f"\n{table['met']} of {table['layers']} layers measured meet their targets.")
    if table.get("missing"):
        lines.append(f"Not measured at these settings: {', '.join(table['missing'])}.")
    return "\n".join(lines) + "\n"


def kept_settings(profile: str, arch: str, layer: str, weights: str, overrides: dict, minutes, images: dict) -> dict:
    """What a row's record must hold for the sweep to keep it: the profile and the layer's resolved settings (the
    weights, the budget), the same training, validation and test image counts, and the current schema (and, checked
    apart, the very test images of this sweep)."""
    from ..evaluation import SCHEMA_VERSION
    from .quality import layer_settings

    settings, encoder, study = layer_settings(profile, arch, layer, overrides, weights)
    return dict(images, schema_version=SCHEMA_VERSION, profile=study["profile"], settings=row_settings(settings), weights=weights,
                match_requested=study["match_steps"], normalisation_policy=encoder["normalisation"], minutes=minutes,
                views=1)


def row_settings(settings: dict) -> dict:
    """A layer's settings as a row's computation uses them: without `seeds`, how many decoders the study trains for
    the layer, as a row trains one (the main run's seed)."""
    return {key: value for key, value in settings.items() if key != "seeds"}


def offline(out_dir: Path, train_dir, test_dir, *, val_dir=None, profile: str = "demo", overrides: dict | None = None,
            minutes: float | None = None, layers=None, run=None, name: str = "offline") -> dict:
    """`quality` at profile `profile`'s settings (with `overrides`; `minutes`: a wall-clock budget instead of its
    epochs) on every row of the sweep `name` (or only `layers`: "arch/layer" names, "arch/layer/imagenet" for a
    learned row) whose JSON in `out_dir` does not already hold these settings, each written as soon as it is done;
    then table.json and table.md from every row measured at these settings (the others are listed as missing), and
    table.png, their plot."""
    run = run or quality
    overrides = dict(overrides or {})
    everything = sweep(name)
    names = {"/".join((arch, layer) + (() if weights == "random" else (weights,))): (arch, layer, weights)
             for arch, layer, weights in everything}
    selected = everything
    if layers:
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise BenchError(f"unknown layer(s) {', '.join(unknown)} for the {name} sweep: name them arch/layer, "
                             f"e.g. {next(iter(names))}, with /imagenet for a row with ImageNet weights "
                             f"(this sweep's rows: {', '.join(names)}).")
        selected = [names[name] for name in layers]
    test_names = [f.name for f in image_files(test_dir)]
    images = {"train_images": len(image_files(train_dir)), "test_images": len(test_names),
              "validation_images": len(image_files(val_dir)) if val_dir is not None else 0}
    out_dir = Path(out_dir)
    results, missing = [], []
    for arch, layer, weights in everything:
        path = out_dir / f"{row_name(arch, layer, weights)}.json"
        wanted = kept_settings(profile, arch, layer, weights, overrides, minutes, images)
        result = json.loads(path.read_text()) if path.exists() else {}
        if result and "psnr_mean" not in result:  # e.g. a bench-colour run saved under a row's name
            raise BenchError(f"'{path}' is not a bench-quality record, and the sweep would overwrite it: move it "
                             f"(bench-colour runs beside the sweep are named <row>-colour.json).")
        got = {**result, "settings": row_settings(result["settings"])} if result.get("settings") else result
        kept = bool(result) and all(got.get(k) == v for k, v in wanted.items()) \
            and sorted(result["per_image"]["psnr"]) == test_names  # tested on these very images
        if kept and (arch, layer, weights) in selected:
            print(f"{arch} {layer} ({weights}): kept (same settings; delete {path} to rerun)")
        elif (arch, layer, weights) in selected:
            result = run(profile, arch, layer, train_dir, test_dir, val_dir=val_dir, overrides=overrides,
                         weights=weights, minutes=minutes)
            result["provenance"] = record()
            write_json(path, result)
            print(f"{arch} {layer} ({weights}): {result['psnr_mean']:.2f} dB (no information "
                  f"{result['baseline_mean_image_psnr']:.2f}, mean colour {result['baseline_mean_colour_psnr']:.2f}, "
                  f"thumbnail {result['baseline_thumbnail_psnr']:.2f}) -> {path}")
            kept = True
        if kept:
            results.append(result)
        else:
            missing.append(row_name(arch, layer, weights).replace("-", "/"))
    photos = sorted(set(image_sources(test_dir, test_names)))  # every kept row was tested on these photos
    table = dict(offline_table(results), missing=missing,
                 settings=dict(images, profile=profile, overrides=overrides, minutes=minutes, test_photos=photos,
                               sweep=name))
    write_json(out_dir / "table.json", table)
    write_text(out_dir / "table.md", offline_markdown(table))
    if results:
        offline_benchmark(table, out_dir / "table.png")
    return table


def main(argv=None) -> int:
    from .quality import parse_overrides

    parser = argparse.ArgumentParser(prog="python -m lib.bench.offline", description=__doc__.splitlines()[0])
    for name in ("--out-dir", "--train-dir", "--test-dir"):
        parser.add_argument(name, required=True)
    parser.add_argument("--val-dir", help="validation images: each checkpoint is chosen on them (default: none)")
    parser.add_argument("--profile", default="demo", help="whose settings every row trains with (default demo)")
    parser.add_argument("--minutes", type=float, help="a wall-clock budget per row instead of the profile's epochs")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=value", help="override a setting (EPOCHS=...)")
    parser.add_argument("--sweep", choices=SWEEPS, default="offline",
                        help="offline: the study's 14 layers and Lite0's 10 rows; learned: Lite0's 10 rows")
    parser.add_argument("--layers", nargs="*", help="arch/layer names, arch/layer/imagenet for a learned row "
                                                     "(default: every row)")
    args = parser.parse_args(argv)
    try:
        table = offline(Path(args.out_dir), args.train_dir, args.test_dir, val_dir=args.val_dir, profile=args.profile,
                        overrides=parse_overrides(args.set), minutes=args.minutes, layers=args.layers, name=args.sweep)
    except (BenchError, datamod.DataError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(offline_markdown(table), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
