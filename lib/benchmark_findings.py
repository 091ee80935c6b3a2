"""The benchmarks' results as the report shows them: tables and sentences read from the files `make bench-offline`
and `make bench-colour` write. It imports nothing from lib.bench (nor torch through it): the report reads files.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .findings import label, pm
from .baselines import BASELINE_LABELS


def photos_clause(settings: dict, named: int = 6) -> str:
    """" from the photos a, b, c" when the table names its test photos (" from 50 photos" beyond `named`)."""
    photos = settings.get("test_photos")
    if not photos:
        return ""
    return f" from the photos {', '.join(photos)}" if len(photos) <= named else f" from {len(photos)} photos"


def row_label(row: dict) -> str:
    """A row of the offline table as the report names it: "ResNet34 layer1", "EfficientNet-Lite0 (ImageNet) stage0"."""
    weights = " (ImageNet)" if row.get("weights") == "imagenet" else ""
    return f"{label(row['arch'])}{weights} {row['layer']}"


def offline_benchmark(table_file: Path, command: str = "make bench-offline") -> tuple[pd.DataFrame | None, list[str]]:
    """`make bench-offline`'s table.json (the study's layers with random-init encoders, EfficientNet-Lite0 with
    ImageNet and random weights, at a profile's settings) as a table and sentences read from
    it; (None, [why not]) when it has not been run under this reports root. Its rows carry the quality records'
    fields and the labels shown here (`lib/bench/offline.py` writes both); each target is a baseline and the margin
    (dB) the decoder must exceed over it. `make bench-learned`'s table (`command`) reads the same way."""
    table_file = Path(table_file)
    if not table_file.is_file():
        return None, [f"Not run under this reports root (no `{table_file}`): `{command}` measures it."]
    table = json.loads(table_file.read_text())
    stale = [r for r in table["rows"] if "profile" not in r or "baseline_mean_image_psnr" not in r]
    if stale or "profile" not in table.get("settings", {}):
        return None, [f"`{table_file}` was measured before the benchmarks trained at a profile's settings and scored "
                      f"the no-information baseline: `{command}` measures it again."]
    if not table["rows"]:
        return None, [f"No layer measured yet at these settings (`{table_file}`); not measured: {', '.join(table['missing'])}."]
    rows = pd.DataFrame(table["rows"])
    names = [row_label(r) for r in table["rows"]]
    frame = pd.DataFrame(
        {
            "layer": names,
            "PSNR (dB)": [pm(m, s, 2) for m, s in zip(rows["psnr_mean"], rows["psnr_std"])],
            "no-information PSNR": rows["baseline_mean_image_psnr"].round(2),
            "mean-colour PSNR": rows["baseline_mean_colour_psnr"].round(2),
            "thumbnail PSNR": rows["baseline_thumbnail_psnr"].round(2),
            "held to": rows["targets_label"],
            "margin (dB) [95% interval]": rows["margins_label"],
            "met": rows["met"].map({True: "yes", False: "no"}),
            "ε decoder / thumbnail / colour": rows["feature_errors_label"],
            "feedback stages": rows["feedback"],
            "matching steps (decoder alone)": rows["matching_label"],
            "images seen": rows["images_seen"],
            "still learning": rows["still_falling"].map({True: "yes", False: "no"}),
            "commit": rows["git_commit"].str[:10],
        }
    ).set_index("layer")
    settings = table["settings"]
    budget = (f"{settings['minutes']:g} minutes of training per layer" if settings.get("minutes") else
              f"profile `{settings['profile']}`'s settings and epochs"
              + (f" with {', '.join(f'{k} {v}' for k, v in settings['overrides'].items())}" if settings["overrides"] else ""))
    lines = [f"{table['met']} of {table['layers']} layers measured meet their targets "
             f"({budget}, {settings['train_images']} training, {settings['validation_images']} validation "
             f"and {settings['test_images']} test images{photos_clause(settings)}; weights as each row says)."]
    for r in table["rows"]:
        if r["met"]:
            continue
        missed = [t for t, margin in r["targets"].items() if r[f"psnr_minus_{t}"] < margin
                  or (t == "thumbnail" and margin >= 0 and r[f"psnr_minus_{t}_ci_low"] < margin)]
        short = [f"its {BASELINE_LABELS[t]}{f' {m:+g} dB' if (m := r['targets'][t]) else ''} (margin "
                 f"{r[f'psnr_minus_{t}']:+.2f} dB, 95% interval from {r[f'psnr_minus_{t}_ci_low']:+.2f})" for t in missed]
        line = f"{row_label(r)} misses {' and '.join(short)}"
        if r["feature_error_mean"] is not None:  # what the layer itself says of the reconstruction and the baseline
            ours = r["feature_error_mean"]
            views = [f"{'closer to' if ours < r[f'baseline_{t}_feature_error'] else 'farther from'} the original than "
                     f"the {BASELINE_LABELS[t]} ({ours:.3f} vs {r[f'baseline_{t}_feature_error']:.3f})" for t in missed]
            line += f"; in the layer's own features its reconstruction lies {' and '.join(views)}"
        lines.append(line + ".")
    margin = rows["psnr_minus_mean_image"]
    if len(rows) > 1:
        low, high = rows.loc[margin.idxmin()], rows.loc[margin.idxmax()]
        lines.append(f"Margin over no information (the training images' mean image): from {margin.min():+.2f} dB "
                     f"({names[low.name]}) to {margin.max():+.2f} dB ({names[high.name]}).")
    from .stats import verdict

    # each margin's interval against its target: above it, below it, or not clear
    intervals = [(r, t, (r[f"psnr_minus_{t}_ci_low"] - m, r[f"psnr_minus_{t}_ci_high"] - m)) for r in table["rows"]
                 for t, m in r["targets"].items()]
    clear = sum(verdict(*i) == "above" for _, _, i in intervals)
    sources = sorted({int(r["test_sources"]) for r in table["rows"]})
    unclear = [f"{row_label(r)} vs its {BASELINE_LABELS[t]}" for r, t, i in intervals if verdict(*i) == "unclear"]
    not_clear = f"; not clear: {', '.join(unclear)}." if unclear else "."
    lines.append(f"{clear} of {len(intervals)} margins have a 95% interval above their target (bootstrap over the "
                 f"{'/'.join(map(str, sources))} test photos){not_clear}")
    if table["missing"]:  # a long list (rows measured elsewhere) is counted; table.json names them
        missing = table["missing"]
        lines.append(f"Not measured at these settings: {', '.join(missing)}." if len(missing) <= 3 else
                     f"Not measured at these settings: {len(missing)} rows ({missing[0]}, ...; table.json lists them).")
    return frame, lines


def layout_control(folder: Path) -> tuple[pd.DataFrame | None, list[str]]:
    """`make bench-colour`'s results in `folder` (one JSON per run) as a table of what each layer tells of colour
    and layout, and sentences read from it; (None, [why not]) when none holds a layout measurement."""
    from .registry import all_layers  # network order

    runs = [json.loads(f.read_text()) for f in sorted(Path(folder).glob("*.json"))] if Path(folder).is_dir() else []
    # `make bench-quality TRAIN_ON_TEST_COPIES=k` runs kept beside them: the decoder trained in-domain
    decoders = {(r["arch"], r["layer"], r["weights"]): r["psnr_mean"] for r in runs
                if r.get("train_on_test_copies") and "profile" in r}  # at a profile's settings only
    runs = [r for r in runs if "layout_test_r2" in r]
    if not runs:
        return None, [f"Not measured under this reports root (no `make bench-colour` results in `{folder}`)."]
    order = {key: i for i, key in enumerate(all_layers())}
    merged: dict = {}  # one row per arch, layer and weights: the layout is the same with or without copies
    for run in sorted(runs, key=lambda r: (order.get((r["arch"], r["layer"]), len(order)), r["weights"], r["copies"])):
        row = merged.setdefault((run["arch"], run["layer"], run["weights"]),
                                dict(run, copies_scores=[], best_colour=run["flips_psnr"]))
        for key in ("indomain_psnr", "linear_inverse_psnr", "baseline_thumbnail_psnr"):
            if key in run:  # the same for every copy count (the test images' own recolourings; the cells' linear read)
                row[key] = run[key]
        if run["copies"]:  # every count measured, so a plateau shows
            row["copies_scores"].append(f"{run['copies_psnr']:.2f} ({run['copies']})")
            row["best_colour"] = max(row["best_colour"], run["copies_psnr"])
    rows = list(merged.values())
    for row in rows:
        if (row["arch"], row["layer"], row["weights"]) in decoders:
            row["indomain_decoder_psnr"] = decoders[row["arch"], row["layer"], row["weights"]]
    table = pd.DataFrame(
        {
            "layer": [f"{label(r['arch'])} {r['layer']}" for r in rows],
            "weights": [r["weights"] for r in rows],
            "grid": [f"{r['layout_grid']}×{r['layout_grid']}" for r in rows],
            "layout R² training photos": [round(r["layout_train_r2"], 2) for r in rows],
            "layout R² test photos": [round(r["layout_test_r2"], 2) for r in rows],
            "predicted colour (dB)": [round(r["flips_psnr"], 2) for r in rows],
            "with colour copies (dB, copies)": [" · ".join(r["copies_scores"]) or "—" for r in rows],
            "fitted on the test photos recoloured (dB)": [f"{r['indomain_psnr']:.2f}" if "indomain_psnr" in r else "—"
                                                          for r in rows],
            "decoder trained on them (dB)": [f"{r['indomain_decoder_psnr']:.2f}" if "indomain_decoder_psnr" in r
                                             else "—" for r in rows],
            "mean-colour baseline (dB)": [round(r["baseline_mean_colour_psnr"], 2) for r in rows],
        }
    ).set_index("layer")
    if any("linear_inverse_psnr" in r for r in rows):  # runs before the linear read have no such column
        table["linear read (dB)"] = [f"{r['linear_inverse_psnr']:.2f}" if "linear_inverse_psnr" in r else "—"
                                     for r in rows]
        table["thumbnail (dB)"] = [f"{r['baseline_thumbnail_psnr']:.2f}" if "linear_inverse_psnr" in r else "—"
                                   for r in rows]
    lines = []
    for (arch, weights), group in pd.DataFrame(rows).groupby(["arch", "weights"], sort=False):
        first, last = group.iloc[0], group.iloc[-1]
        line = (f"{label(arch)} ({weights} weights): layout R² on the test photos "
                + (f"{first['layout_test_r2']:.2f} at {first['layer']} to {last['layout_test_r2']:.2f} at {last['layer']}"
                   if len(group) > 1 else f"{last['layout_test_r2']:.2f} at {last['layer']}"))
        lost = group[group["layout_test_r2"] <= 0]
        if len(lost):
            line += (f"; at {', '.join(lost['layer'])} the cells' layout, learnt from the training photos (R² "
                     f"{', '.join(f'{v:.2f}' for v in lost['layout_train_r2'])} across them), predicts the test photos "
                     f"worse than none, so a decoder can pass the mean colour there only through colour")
            short = lost["best_colour"][lost["best_colour"] < lost["baseline_mean_colour_psnr"]]
            if len(short):
                line += (f", which the pooled features predict below the image's own mean, colour copies or not "
                         f"(at best {', '.join(f'{v:.2f}' for v in short)} vs "
                         f"{lost['baseline_mean_colour_psnr'].iloc[0]:.2f} dB)")
                line += indomain_clause(lost.loc[short.index])
        lines.append(line + ".")
    read = [r for r in rows if "linear_inverse_psnr" in r]
    if read:  # the closed-form linear inverse: what a linear read of the cells recovers, against the thumbnail
        lines.append("A closed-form linear read of the cells (as the default decoder's closed-form start: the "
                     "training images' mean image plus ridge fits, here on the photos and their flips) scores "
                     + "; ".join(f"{r['linear_inverse_psnr']:.2f} dB at {label(r['arch'])} {r['layer']} ({r['weights']}), "
                                 f"{r['linear_inverse_psnr'] - r['baseline_thumbnail_psnr']:+.2f} dB against its "
                                 f"{r['layout_grid']}×{r['layout_grid']} thumbnail" for r in read) + ".")
    return table, lines


def indomain_clause(short: pd.DataFrame) -> str:
    """Where the colour read from the training photos falls short: whether the layer holds the colour at all, from the
    same readout fitted on recoloured copies of the test photos themselves."""
    if "indomain_psnr" not in short or short["indomain_psnr"].isna().all():
        return ""
    known = short.dropna(subset=["indomain_psnr"])
    held = known["indomain_psnr"] > known["best_colour"]
    clause = ""
    if held.any():
        rows = known[held]
        clause += (f"; yet the colour is in the features: fitted on recoloured copies of the test photos themselves, the "
                   f"same readout scores {', '.join(f'{v:.2f}' for v in rows['indomain_psnr'])} dB at "
                   f"{', '.join(rows['layer'])}")
        trained = rows.dropna(subset=["indomain_decoder_psnr"]) if "indomain_decoder_psnr" in rows else rows[:0]
        if len(trained):
            clause += (f", and the default decoder trained on such copies scores "
                       f"{', '.join(f'{v:.2f}' for v in trained['indomain_decoder_psnr'])} dB at "
                       f"{', '.join(trained['layer'])}")
        clause += ", so what falls short is what the training photos teach about reading it from photos like the test ones"
    if (~held).any():
        rows = known[~held]
        clause += (f"; fitted on recoloured copies of the test photos themselves it does no better "
                   f"({', '.join(f'{v:.2f}' for v in rows['indomain_psnr'])} dB at {', '.join(rows['layer'])}): "
                   f"the layer does not hold the colour")
    return clause
