"""The write-up's computed parts (tables, findings, provenance) and its rendering to HTML and PDF.

Every sentence of findings is computed from summary.csv; nothing here states a result in advance.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .figures import ARCH_LABELS
from .io import atomic_path, write_text

# The study being reproduced: PSNR, SSIM, LPIPS (mean, std), train minutes, decoder params.
PUBLISHED = pd.DataFrame(
    [
        ("resnet34", "layer1", 14.32, 0.94, 0.474, 0.045, 0.455, 0.031, 69.8, "250K"),
        ("resnet34", "layer2", 14.04, 0.86, 0.390, 0.042, 0.555, 0.029, 30.0, "975K"),
        ("resnet34", "layer3", 13.12, 0.71, 0.283, 0.045, 0.782, 0.025, 29.9, "3.9M"),
        ("resnet34", "layer4", 12.72, 0.63, 0.272, 0.046, 0.867, 0.023, 30.0, "15.4M"),
        ("vgg16", "block1", 14.45, 2.27, 0.530, 0.121, 0.398, 0.109, 162.8, "~200K"),
        ("vgg16", "block2", 14.34, 0.94, 0.495, 0.045, 0.432, 0.031, 12.9, "~500K"),
        ("vgg16", "block3", 14.01, 0.85, 0.405, 0.044, 0.536, 0.031, 11.4, "~1M"),
        ("vgg16", "block4", 13.40, 0.69, 0.305, 0.048, 0.709, 0.038, 11.5, "~2M"),
        ("vgg16", "block5", 12.68, 0.59, 0.273, 0.047, 0.880, 0.030, 11.5, "~4M"),
        ("vit_base_patch16_224", "block0", 14.29, 0.93, 0.454, 0.045, 0.509, 0.033, 32.2, "34.6M"),
        ("vit_base_patch16_224", "block1", 14.01, 0.87, 0.377, 0.043, 0.611, 0.027, 32.5, "34.6M"),
        ("vit_base_patch16_224", "block5", 13.89, 0.82, 0.346, 0.044, 0.654, 0.027, 33.1, "34.6M"),
        ("vit_base_patch16_224", "block8", 13.33, 0.71, 0.289, 0.047, 0.790, 0.031, 33.7, "34.6M"),
        ("vit_base_patch16_224", "block11", 12.85, 0.65, 0.278, 0.046, 0.861, 0.026, 34.2, "34.6M"),
    ],
    columns=["arch", "layer", "psnr_mean", "psnr_std", "ssim_mean", "ssim_std", "lpips_mean", "lpips_std",
             "train_minutes", "decoder_params"],
)


def pm(mean, std, digits: int) -> str:
    if mean is None or (isinstance(mean, float) and np.isnan(mean)):
        return "—"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def label(arch: str) -> str:
    return ARCH_LABELS.get(arch, arch)


def weights_statement(summary: pd.DataFrame) -> str:
    """One line per architecture: which weights its encoder really had."""
    lines = []
    for arch, rows in summary.groupby("arch", sort=False):
        row = rows.iloc[0]
        kind = "**ImageNet weights**" if row["weights"] == "imagenet" else "**random initialisation** (not ImageNet)"
        lines.append(f"- {label(arch)}: {kind} — {row['weights_detail']}")
    if (summary["weights"] == "random").any():
        lines.append(
            "\nRandom-initialised encoders are a control, not the study: they show how much of the image an "
            "untrained network of the same shape passes on, not what ImageNet training keeps."
        )
    return "\n".join(lines)


def results_table(summary: pd.DataFrame, arch: str) -> pd.DataFrame:
    rows = summary[summary["arch"] == arch]
    return pd.DataFrame(
        {
            "layer": rows["layer"],
            "features": rows["feature_shape"],
            "PSNR (dB)": [pm(m, s, 2) for m, s in zip(rows["psnr_mean"], rows["psnr_std"])],
            **_matching_column(rows),
            "SSIM": [pm(m, s, 3) for m, s in zip(rows["ssim_mean"], rows["ssim_std"])],
            "LPIPS": [pm(m, s, 3) for m, s in zip(rows["lpips_mean"], rows["lpips_std"])],
            "MSE": [pm(m, s, 4) for m, s in zip(rows["mse_mean"], rows["mse_std"])],
            "mean-colour PSNR": rows["baseline_mean_colour_psnr"].round(2),
            "thumbnail PSNR": rows["baseline_thumbnail_psnr"].round(2),
            **_feature_error_columns(rows),
            "decoder params": rows["decoder_params"].map(lambda n: f"{n / 1e6:.2f}M"),
            "train (s)": rows["train_seconds"].round(0).astype(int),
        }
    ).set_index("layer")


def training_findings(summary: pd.DataFrame) -> list[str]:
    """Whether the gradient steps beat the decoder's untrained start on validation (start_val_loss vs the kept
    decoder's best_val_loss); nothing for a summary without them."""
    if not {"start_val_loss", "best_val_loss"} <= set(summary) or summary["start_val_loss"].isna().all():
        return []
    rows = summary.dropna(subset=["start_val_loss", "best_val_loss"])
    worse = rows[rows["best_val_loss"] >= rows["start_val_loss"]]
    line = (f"Gradient steps brought the validation MSE of the kept decoder under that of its untrained start at "
            f"{len(rows) - len(worse)} of {len(rows)} layers")
    if len(worse):
        line += "; not at " + ", ".join(f"{label(r['arch'])} {r['layer']} (start {r['start_val_loss']:.3f}, kept "
                                        f"{r['best_val_loss']:.3f})" for _, r in worse.iterrows())
    return [line + "."]


def matching_findings(summary: pd.DataFrame) -> list[str]:
    """What test-time feature matching changed, layer by layer, from the summary (nothing where none ran)."""
    if "match_steps" not in summary:
        return []
    ran = summary[summary["match_steps"] > 0]
    changes = [f"{label(r['arch'])} {r['layer']} {r['decoder_psnr_mean']:.2f} → {r['psnr_mean']:.2f} dB "
               f"({r['psnr_mean'] - r['decoder_psnr_mean']:+.2f}, {int(r['match_steps'])} steps)" for _, r in ran.iterrows()]
    return [f"Test-time feature matching (56×56 grids): {'; '.join(changes)}."] if changes else []


def _matching_column(rows: pd.DataFrame) -> dict:
    """The decoder's own PSNR before test-time feature matching, where any layer ran it ("—" where none did)."""
    if "match_steps" not in rows or not (rows["match_steps"] > 0).any():
        return {}
    return {"decoder alone (dB)": [f"{p:.2f}" if n > 0 else "—" for p, n in zip(rows["decoder_psnr_mean"], rows["match_steps"])]}


def _has_feature_errors(summary: pd.DataFrame) -> bool:
    return "feature_error_mean" in summary and summary["feature_error_mean"].notna().all()


def _feature_error_columns(rows: pd.DataFrame) -> dict:
    """Distance to the original in the layer's own features: the decoder's, then the two baselines' (runs evaluated
    before this control existed have none)."""
    if not _has_feature_errors(rows):
        return {}
    return {
        "ε": [pm(m, s, 3) for m, s in zip(rows["feature_error_mean"], rows["feature_error_std"])],
        "ε thumbnail / colour": [
            f"{t:.3f} / {c:.3f}" for t, c in zip(rows["baseline_thumbnail_feature_error"], rows["baseline_mean_colour_feature_error"])
        ],
    }


def feature_consistency(summary: pd.DataFrame) -> list[str]:
    """What the layer itself says about each reconstruction, read from the summary: its relative distance to the
    original in the layer's features, against the baselines'. A decoder below a baseline in PSNR but closer in the
    layer's features is missing pixels the layer hardly encodes; one farther in both has not learnt what it does."""
    if not _has_feature_errors(summary):
        return []
    n, out = len(summary), []
    names = summary["arch"].map(label) + " " + summary["layer"]
    closer = {b: summary["feature_error_mean"] < summary[f"baseline_{b}_feature_error"] for b in ("thumbnail", "mean_colour")}
    out.append(
        f"In the layer's own features (relative distance to the original, 0 = identical features), the reconstruction "
        f"is closer than the thumbnail at {int(closer['thumbnail'].sum())} of {n} layers and closer than the mean colour "
        f"at {int(closer['mean_colour'].sum())} of {n}."
    )
    below_thumb = summary["psnr_mean"] <= summary["baseline_thumbnail_psnr"]
    hidden = names[below_thumb & closer["thumbnail"]].tolist()
    if below_thumb.any():
        out.append(
            f"Of the {int(below_thumb.sum())} layers below their thumbnail in PSNR, {len(hidden)} are nonetheless closer "
            f"to the original than the thumbnail in the layer's features" + (f" ({', '.join(hidden)}): there the thumbnail's "
            "extra PSNR is detail the layer hardly encodes." if hidden else ".")
        )
    below_colour = summary["psnr_mean"] <= summary["baseline_mean_colour_psnr"]
    for (_, row), name, nearer in zip(summary[below_colour].iterrows(), names[below_colour], closer["mean_colour"][below_colour]):
        gap = row["baseline_mean_colour_psnr"] - row["psnr_mean"]
        values = f"{row['feature_error_mean']:.3f} vs {row['baseline_mean_colour_feature_error']:.3f}"
        out.append(
            f"{name} trails the mean colour by {gap:.2f} dB in PSNR "
            + (f"yet lies closer to the original in the layer's features ({values}): what it misses, the layer "
               "hardly encodes." if nearer else
               f"and lies farther from the original in the layer's features too ({values}): the decoder has not learnt "
               "all that the layer encodes.")
        )
    return out


def _spearman(x, y) -> float:
    rx, ry = pd.Series(x).rank(), pd.Series(y).rank()
    return float(np.corrcoef(rx, ry)[0, 1]) if len(rx) > 2 else float("nan")


def findings(summary: pd.DataFrame) -> list[str]:
    """Findings as sentences, every number read from the summary."""
    out = []
    for arch, rows in summary.groupby("arch", sort=False):
        first, last = rows.iloc[0], rows.iloc[-1]
        if len(rows) > 1:
            change = last["psnr_mean"] - first["psnr_mean"]
            verb = "falls" if change < 0 else "rises"
            out.append(
                f"{label(arch)}: PSNR {verb} from {first['psnr_mean']:.2f} dB at {first['layer']} "
                f"({first['feature_shape']}) to {last['psnr_mean']:.2f} dB at {last['layer']} "
                f"({last['feature_shape']}), {change:+.2f} dB; SSIM {first['ssim_mean']:.3f} → {last['ssim_mean']:.3f}."
            )
        else:
            out.append(f"{label(arch)}: {first['layer']} reaches {first['psnr_mean']:.2f} dB PSNR.")
    above_colour = summary["psnr_mean"] > summary["baseline_mean_colour_psnr"]
    above_thumb = summary["psnr_mean"] > summary["baseline_thumbnail_psnr"]
    n = len(summary)
    below = [f"{label(a)} {l}" for a, l, ok in zip(summary["arch"], summary["layer"], above_colour) if not ok]
    out.append(
        f"{int(above_colour.sum())} of {n} layers beat the per-image mean-colour baseline"
        + (f"; not: {', '.join(below)}." if below else ".")
    )
    beat_thumb = [f"{label(a)} {l}" for a, l, ok in zip(summary["arch"], summary["layer"], above_thumb) if ok]
    out.append(
        f"{int(above_thumb.sum())} of {n} layers beat the thumbnail at their own grid"
        + (f": {', '.join(beat_thumb)}." if beat_thumb else " — the decoders recover less than a thumbnail of the layer's resolution would.")
    )
    margin = summary["psnr_mean"] - summary["baseline_thumbnail_psnr"]
    best = summary.loc[summary["psnr_mean"].idxmax()]
    out.append(
        f"Best layer: {label(best['arch'])} {best['layer']} at {best['psnr_mean']:.2f} dB; "
        f"decoder minus thumbnail ranges from {margin.min():+.2f} to {margin.max():+.2f} dB."
    )
    if n > 2:
        rho = _spearman(summary["spatial_locations"], summary["psnr_mean"])
        out.append(f"Spearman correlation between spatial locations of a layer and its PSNR: {rho:+.2f} over {n} layers.")
    at14 = summary[summary["spatial_locations"] == 196]
    if at14["arch"].nunique() > 1:
        best14 = at14.loc[at14["psnr_mean"].idxmax()]
        worst14 = at14.loc[at14["psnr_mean"].idxmin()]
        out.append(
            f"At the same 14×14 grid, {label(best14['arch'])} {best14['layer']} keeps the most "
            f"({best14['psnr_mean']:.2f} dB) and {label(worst14['arch'])} {worst14['layer']} the least "
            f"({worst14['psnr_mean']:.2f} dB)."
        )
    out += training_findings(summary)
    out += matching_findings(summary)
    out += random_control_findings(summary)
    out += feature_consistency(summary)
    comparison = published_comparison(summary)
    if len(comparison):
        delta = comparison["Δ PSNR"]
        out.append(
            f"Against the study's published decoders on the same layers: {delta.mean():+.2f} dB on average "
            f"({delta.min():+.2f} to {delta.max():+.2f})."
        )
    perceptual = summary[summary["loss"] != "MSE"]
    if len(perceptual):
        out.append(
            f"{len(perceptual)} of {n} decoders were trained with a perceptual loss ({perceptual['loss'].iloc[0]}): "
            "their LPIPS measures the training objective itself, and their PSNR is not comparable to MSE-only runs."
        )
    if summary["lpips_mean"].isna().all():
        out.append(f"LPIPS not computed: {summary['lpips_note'].iloc[0]}")
    return out


def baseline_statistics(summary: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Decoder minus each baseline per layer with 95% intervals (bootstrap over test photos, `lib.stats`), and
    sentences counting where the interval clears zero. Empty where summary.csv predates the intervals."""
    from .stats import DRAWS, interval_label, verdict

    if "psnr_minus_mean_colour" not in summary or summary["psnr_minus_mean_colour"].isna().all():
        return pd.DataFrame(), []
    table = pd.DataFrame({
        "arch": summary["arch"].map(label), "layer": summary["layer"],
        "PSNR [95% interval]": [f"{m:.2f} [{lo:.2f}, {hi:.2f}]" for m, lo, hi in
                                zip(summary["psnr_mean"], summary["psnr_ci_low"], summary["psnr_ci_high"])],
    })
    lines = []
    names = [f"{label(a)} {l}" for a, l in zip(summary["arch"], summary["layer"])]
    sources = sorted(set(summary["test_sources"].astype(int)))
    few = " With so few photos they are coarse and wide." if max(sources) < 10 else ""
    lines.append(f"Intervals are 95% percentile bootstraps ({DRAWS:,} resamples) over the "
                 f"{'/'.join(map(str, sources))} test source photos (whole photos resampled, so views of one photo "
                 f"move together), paired by image.{few}")
    for baseline, name in (("mean_colour", "mean colour"), ("thumbnail", "thumbnail")):
        cols = [f"psnr_minus_{baseline}", f"psnr_minus_{baseline}_ci_low", f"psnr_minus_{baseline}_ci_high"]
        table[f"− {name} (dB)"] = [interval_label(*v) for v in summary[cols].itertuples(index=False)]
        table[f"images above {name}"] = summary[f"wins_vs_{baseline}"].map(lambda w: f"{w:.0%}")
        verdicts = [verdict(lo, hi) for lo, hi in zip(summary[cols[1]], summary[cols[2]])]
        counts = {v: [n for n, w in zip(names, verdicts) if w == v] for v in ("above", "unclear", "below")}
        parts = [f"above it at {len(counts['above'])} of {len(names)} layers"]
        if counts["unclear"]:
            parts.append(f"not separable from it at {', '.join(counts['unclear'])}")
        if counts["below"]:
            parts.append(f"below it at {', '.join(counts['below'])}")
        lines.append(f"Decoder against the {name}: interval " + "; ".join(parts) + ".")
    return table.set_index(["arch", "layer"]), lines


def depth_statistics(depth: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """PSNR lost from each layer to the next deeper one (depth_comparisons.csv), with intervals and sentences."""
    from .stats import interval_label, verdict

    if depth is None or not len(depth):
        return pd.DataFrame(), []
    table = pd.DataFrame({
        "arch": depth["arch"].map(label), "step": depth["shallower"] + " → " + depth["deeper"],
        "PSNR lost (dB) [95% interval]": [interval_label(*v) for v in
                                          depth[["psnr_drop", "ci_low", "ci_high"]].itertuples(index=False)],
        "images losing": depth["images_losing"].map(lambda w: f"{w:.0%}"),
    }).set_index(["arch", "step"])
    verdicts = [verdict(lo, hi) for lo, hi in zip(depth["ci_low"], depth["ci_high"])]
    steps = [f"{label(a)} {s} → {d}" for a, s, d in zip(depth["arch"], depth["shallower"], depth["deeper"])]
    lost = sum(v == "above" for v in verdicts)
    line = f"Going one layer deeper loses PSNR with an interval above zero at {lost} of {len(steps)} steps"
    unclear = [n for n, v in zip(steps, verdicts) if v == "unclear"]
    gained = [n for n, v in zip(steps, verdicts) if v == "below"]
    if unclear:
        line += f"; no clear change at {', '.join(unclear)}"
    if gained:
        line += f"; a clear gain at {', '.join(gained)}"
    biggest = depth.loc[depth["psnr_drop"].idxmax()]
    lines = [line + ".", f"Largest step: {label(biggest['arch'])} {biggest['shallower']} → {biggest['deeper']}, "
                         f"{biggest['psnr_drop']:.2f} dB [{biggest['ci_low']:.2f}, {biggest['ci_high']:.2f}]."]
    return table, lines


def random_control_findings(summary: pd.DataFrame) -> list[str]:
    """What the random-weight control shows, per architecture, read from its rows."""
    out = []
    for arch, rows in summary[summary["weights"] == "random"].groupby("arch", sort=False):
        margin = rows["psnr_mean"] - rows["baseline_mean_colour_psnr"]
        deepest = rows.iloc[-1]
        if len(rows) > 1 and margin.iloc[-1] < margin.iloc[0]:
            shape = (f"its margin over the mean colour shrinks with depth, from {margin.iloc[0]:+.2f} dB at "
                     f"{rows.iloc[0]['layer']} to {margin.iloc[-1]:+.2f} dB at {deepest['layer']}")
        else:
            shape = f"its margin over the mean colour is {margin.iloc[-1]:+.2f} dB at {deepest['layer']}"
        below = rows[margin <= 0]["layer"].tolist()
        out.append(
            f"Random-weight control, {label(arch)}: {shape}"
            + (f"; at {', '.join(below)} the decoder recovers less from the untrained network than the image's mean colour "
               f"(`make bench-colour ARCH={arch} LAYER={below[-1]} WEIGHTS=random` measures how much of that colour the "
               f"layer's pooled features hold, and how much of the layout its cells tell that carries over to the test "
               f"photos)." if below else ".")
        )
    return out


def offline_benchmark(table_file: Path) -> tuple[pd.DataFrame | None, list[str]]:
    """`make bench-offline`'s table.json (random-init encoders on the demo's views, a fixed CPU budget per layer) as a
    table and sentences read from it; (None, [why not]) when it has not been run under this reports root. Its rows
    carry the quality records' fields and the labels shown here (`lib/bench/offline.py` writes both)."""
    table_file = Path(table_file)
    if not table_file.is_file():
        return None, [f"Not run under this reports root (no `{table_file}`): `make bench-offline` measures it."]
    table = json.loads(table_file.read_text())
    if not table["rows"]:
        return None, [f"No layer measured yet at these settings (`{table_file}`); not measured: {', '.join(table['missing'])}."]
    rows = pd.DataFrame(table["rows"])
    frame = pd.DataFrame(
        {
            "layer": rows["arch"].map(label) + " " + rows["layer"],
            "PSNR (dB)": [pm(m, s, 2) for m, s in zip(rows["psnr_mean"], rows["psnr_std"])],
            "mean-colour PSNR": rows["baseline_mean_colour_psnr"].round(2),
            "thumbnail PSNR": rows["baseline_thumbnail_psnr"].round(2),
            "held to": rows["targets_label"],
            "margin (dB) [95% interval]": rows["margins_label"],
            "met": rows["met"].map({True: "yes", False: "no"}),
            "ε decoder / thumbnail / colour": rows["feature_errors_label"],
            "colour copies": rows["colour_copies"],
            "closed-form paths": rows["closed_form_paths"],
            "feedback stages": rows["feedback"],
            "matching steps (decoder alone)": rows["matching_label"],
            "epochs": rows["epochs"],
            "commit": rows["git_commit"].str[:10],
        }
    ).set_index("layer")
    settings = table["settings"]
    lines = [f"{table['met']} of {table['layers']} layers measured meet their targets "
             f"({settings['minutes']:g} minutes of training per layer, {settings['train_images']} training "
             f"and {settings['test_images']} test images, random-init encoders)."]
    for r in table["rows"]:
        if r["met"]:
            continue
        missed = [t for t in r["targets"] if r[f"psnr_minus_{t}"] <= 0]
        short = [f"its {t.replace('_', ' ')} by {-r[f'psnr_minus_{t}']:.2f} dB" for t in missed]
        line = f"{label(r['arch'])} {r['layer']} misses {' and '.join(short)}"
        if r["feature_error_mean"] is not None:  # what the layer itself says of the reconstruction and the baseline
            ours = r["feature_error_mean"]
            views = [f"{'closer to' if ours < r[f'baseline_{t}_feature_error'] else 'farther from'} the original than "
                     f"the {t.replace('_', ' ')} ({ours:.3f} vs {r[f'baseline_{t}_feature_error']:.3f})" for t in missed]
            line += f"; in the layer's own features its reconstruction lies {' and '.join(views)}"
        lines.append(line + ".")
    margin = rows["psnr_minus_mean_colour"]
    if len(rows) > 1:
        low, high = rows.loc[margin.idxmin()], rows.loc[margin.idxmax()]
        lines.append(f"Margin over the mean colour: from {margin.min():+.2f} dB ({label(low['arch'])} {low['layer']}) "
                     f"to {margin.max():+.2f} dB ({label(high['arch'])} {high['layer']}).")
    from .stats import verdict

    intervals = [(r, t, (r[f"psnr_minus_{t}_ci_low"], r[f"psnr_minus_{t}_ci_high"])) for r in table["rows"]
                 for t in r["targets"]]
    clear = sum(verdict(*i) == "above" for _, _, i in intervals)
    sources = sorted({int(r["test_sources"]) for r in table["rows"]})
    unclear = [f"{label(r['arch'])} {r['layer']} vs its {t.replace('_', ' ')}" for r, t, i in intervals
               if verdict(*i) == "unclear"]
    not_clear = f"; not clear: {', '.join(unclear)}." if unclear else "."
    lines.append(f"{clear} of {len(intervals)} margins have a 95% interval above zero (bootstrap over the "
                 f"{'/'.join(map(str, sources))} test photos){not_clear}")
    if table["missing"]:
        lines.append(f"Not measured at these settings: {', '.join(table['missing'])}.")
    return frame, lines


def layout_control(folder: Path) -> tuple[pd.DataFrame | None, list[str]]:
    """`make bench-colour`'s results in `folder` (one JSON per run) as a table of what each layer tells of colour
    and layout, and sentences read from it; (None, [why not]) when none holds a layout measurement."""
    from .registry import all_layers  # network order

    runs = [json.loads(f.read_text()) for f in sorted(Path(folder).glob("*.json"))] if Path(folder).is_dir() else []
    # `make bench-quality TRAIN_ON_TEST_COPIES=k` runs kept beside them: the decoder trained in-domain
    decoders = {(r["arch"], r["layer"], r["weights"]): r["psnr_mean"] for r in runs if r.get("train_on_test_copies")}
    runs = [r for r in runs if "layout_test_r2" in r]
    if not runs:
        return None, [f"Not measured under this reports root (no `make bench-colour` results in `{folder}`)."]
    order = {key: i for i, key in enumerate(all_layers())}
    merged: dict = {}  # one row per arch, layer and weights: the layout is the same with or without copies
    for run in sorted(runs, key=lambda r: (order.get((r["arch"], r["layer"]), len(order)), r["weights"], r["copies"])):
        row = merged.setdefault((run["arch"], run["layer"], run["weights"]),
                                dict(run, copies_scores=[], best_colour=run["flips_psnr"]))
        if "indomain_psnr" in run:  # the same for every copy count: the test images' own recolourings
            row["indomain_psnr"] = run["indomain_psnr"]
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


def published_comparison(summary: pd.DataFrame) -> pd.DataFrame:
    merged = summary.merge(PUBLISHED, on=["arch", "layer"], suffixes=("", "_study"))
    return pd.DataFrame(
        {
            "layer": merged["arch"].map(label) + " " + merged["layer"],
            "study PSNR": [pm(m, s, 2) for m, s in zip(merged["psnr_mean_study"], merged["psnr_std_study"])],
            "ours PSNR": [pm(m, s, 2) for m, s in zip(merged["psnr_mean"], merged["psnr_std"])],
            "Δ PSNR": (merged["psnr_mean"] - merged["psnr_mean_study"]).round(2),
            "study SSIM": merged["ssim_mean_study"].round(3),
            "ours SSIM": merged["ssim_mean"].round(3),
            "study LPIPS": merged["lpips_mean_study"].round(3),
            "ours LPIPS": merged["lpips_mean"].round(3),
            "study min": merged["train_minutes"],
            "ours min": (merged["train_seconds"] / 60).round(2),
        }
    ).set_index("layer")


def step_kind(step: str) -> str:
    name = Path(step).name
    return {"train.ipynb": "train (per layer)", "evaluate.ipynb": "evaluate (per layer)"}.get(name, name.removesuffix(".ipynb"))


def step_durations(profile_dir: Path) -> pd.DataFrame:
    """Wall time of every executed pipeline notebook, read from papermill's own metadata."""
    rows = []
    for path in sorted(Path(profile_dir).rglob("*.ipynb")):
        if path.name.endswith((".tmp.ipynb", ".failed.ipynb")):
            continue
        meta = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
        if meta.get("duration") is not None:
            rows.append({"step": str(path.relative_to(profile_dir)), "seconds": round(meta["duration"], 1),
                         "finished": meta.get("end_time", "")})
    return pd.DataFrame(rows, columns=["step", "seconds", "finished"])


# ---------------------------------------------------------------- rendering
REPORT_CSS = """
<style>
pre, code { white-space: pre-wrap !important; word-break: break-word; }
.jp-RenderedImage img, .output_png img { max-width: 100%; max-height: 240mm; height: auto; object-fit: contain; }
.jp-RenderedHTMLCommon table { font-size: 0.72em; }
.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { white-space: nowrap; padding: 0.2em 0.45em; }
.jp-RenderedHTMLCommon thead th { white-space: normal; }  /* long headers wrap, so wide tables fit the page */
.jp-OutputArea-output { overflow-x: visible !important; }
h1, h2, h3 { break-after: avoid; page-break-after: avoid; }
img, table, .jp-OutputArea-output { break-inside: avoid; page-break-inside: avoid; }
@page { size: A4; margin: 12mm; }
@media print { * { overflow: visible !important; } }
</style>
"""


def mathjax_url(html_path: Path) -> str:
    """MathJax 2 shipped by the jupyter-server-mathjax wheel, relative to the HTML: equations render offline."""
    import os

    import jupyter_server_mathjax

    script = Path(jupyter_server_mathjax.__file__).parent / "static" / "MathJax.js"
    relative = os.path.relpath(script, Path(html_path).resolve().parent)
    return f"{relative}?config=TeX-AMS-MML_HTMLorMML-full"


def render_html(notebook: Path, html: Path) -> Path:
    """Executed report notebook -> HTML without code, without the Colab cells, with local MathJax."""
    from .notebook import skip_unused_iri_checker

    skip_unused_iri_checker()  # before nbformat: ~2 s of import for a checker it never uses
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    book = nbformat.read(str(notebook), as_version=4)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            mathjax_url=mathjax_url(html))
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"colab", "parameters", "injected-parameters"}), enabled=True)
    body, _ = exporter.from_notebook_node(book)
    body = body.replace("</head>", REPORT_CSS + "</head>", 1)
    return write_text(html, body)


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(
        "no Chromium found for the PDF. Install it (Debian/Ubuntu: `sudo apt-get install chromium`; "
        "`make system-deps` does this) or open report.html in a browser and print it."
    )


def render_pdf(html: Path, pdf: Path, timeout: int = 180) -> Path:
    """HTML -> PDF with a system Chromium, headless, offline; MathJax gets time to typeset first."""
    html, pdf = Path(html).resolve(), Path(pdf).resolve()
    with atomic_path(pdf) as tmp, tempfile.TemporaryDirectory() as profile_dir:
        command = [
            find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={profile_dir}", "--no-pdf-header-footer", "--virtual-time-budget=20000",
            f"--print-to-pdf={tmp}", html.as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
            raise RuntimeError(f"Chromium could not print {html} (exit {done.returncode}): {done.stderr[-2000:]}")
    return pdf


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.report", description="Render the executed report notebook.")
    sub = parser.add_subparsers(dest="command", required=True)
    h = sub.add_parser("html")
    h.add_argument("notebook", type=Path)
    h.add_argument("html", type=Path)
    p = sub.add_parser("pdf")
    p.add_argument("html", type=Path)
    p.add_argument("pdf", type=Path)
    args = parser.parse_args(argv)
    try:
        out = render_html(args.notebook, args.html) if args.command == "html" else render_pdf(args.html, args.pdf)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
