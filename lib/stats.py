"""Statistics the study lacked: paired differences with confidence intervals that respect the split.

Test images are not independent draws when several views come from one photo (the demo cuts 8 views from each
photo). Every interval here is a percentile bootstrap over *source photos*: a resample draws whole photos with
replacement, so views of one photo stay together. With DIV2K each test image is its own source. With few sources
(the demo's 3 test photos) the intervals are wide and coarse, as they should be.

Differences are paired by image: decoder minus baseline on the same image, a layer minus the next deeper layer
on the same image, which removes the between-image variation that both share.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .baselines import BASELINE_NAMES

DRAWS = 10_000
LEVEL = 0.95


def cluster_bootstrap(values, clusters, draws: int = DRAWS, level: float = LEVEL, seed: int = 0) -> dict:
    """Mean of `values` and its percentile interval, resampling whole clusters with replacement.

    Returns {mean, low, high, clusters}; with one cluster the interval is the point itself (nothing to resample).
    """
    values = np.asarray(values, dtype=float)
    labels = np.asarray(clusters)
    if values.ndim != 1 or len(values) != len(labels) or len(values) == 0:
        raise ValueError(f"need one cluster label per value, got {len(values)} values and {len(labels)} labels")
    keep = ~np.isnan(values)
    values, labels = values[keep], labels[keep]
    names, index = np.unique(labels, return_inverse=True)
    sums, counts = np.bincount(index, weights=values), np.bincount(index).astype(float)
    mean = float(values.mean())
    if len(names) < 2:
        return {"mean": mean, "low": mean, "high": mean, "clusters": len(names)}
    # how often each cluster is drawn in each resample: multinomial over clusters, so one matrix product suffices
    taken = np.random.default_rng(seed).multinomial(len(names), np.full(len(names), 1 / len(names)), size=draws)
    means = (taken @ sums) / (taken @ counts)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return {"mean": mean, "low": float(low), "high": float(high), "clusters": len(names)}


def verdict(low: float, high: float) -> str:
    """'above' / 'below' zero when the interval [low, high] excludes it, else 'unclear'."""
    if low > 0:
        return "above"
    if high < 0:
        return "below"
    return "unclear"


def interval_label(mean: float, low: float, high: float) -> str:
    """A signed difference and its interval, as tables and sentences print it: "+1.07 [-0.27, +2.79]"."""
    return f"{mean:+.2f} [{low:+.2f}, {high:+.2f}]"


def margins_label(row: dict, targets: list[str]) -> str:
    """A record's margin over each of `targets` (psnr_minus_<target> and its _ci_low/_ci_high) in dB, in target
    order, each with its 95% interval, joined by " / "."""
    return " / ".join(interval_label(row[f"psnr_minus_{t}"], row[f"psnr_minus_{t}_ci_low"],
                                     row[f"psnr_minus_{t}_ci_high"]) for t in targets)


def baseline_comparisons(per_image: pd.DataFrame, sources, seed: int = 0) -> dict:
    """Decoder PSNR with its interval, and decoder minus each baseline (paired by image) with intervals and the
    share of images where the decoder wins. Keys follow summary.csv's columns."""
    row = {}
    psnr = cluster_bootstrap(per_image["psnr"], sources, seed=seed)
    row["psnr_ci_low"], row["psnr_ci_high"], row["test_sources"] = psnr["low"], psnr["high"], psnr["clusters"]
    for baseline in BASELINE_NAMES:
        diff = per_image["psnr"].to_numpy(float) - per_image[f"baseline_{baseline}_psnr"].to_numpy(float)
        interval = cluster_bootstrap(diff, sources, seed=seed)
        row[f"psnr_minus_{baseline}"] = interval["mean"]
        row[f"psnr_minus_{baseline}_ci_low"] = interval["low"]
        row[f"psnr_minus_{baseline}_ci_high"] = interval["high"]
        row[f"wins_vs_{baseline}"] = float(np.mean(diff > 0))
    return row


def depth_comparisons(per_image: dict[tuple[str, str], pd.DataFrame], layers: dict[str, list[str]], sources: dict,
                      seed: int = 0) -> pd.DataFrame:
    """For each architecture, each layer against the next deeper one: PSNR lost with depth (shallower minus
    deeper, paired by image) with its interval and the share of images that lose. `sources` maps image -> photo."""
    rows = []
    for arch, names in layers.items():
        for shallow, deep in zip(names, names[1:]):
            a = per_image[(arch, shallow)].set_index("image")["psnr"]
            b = per_image[(arch, deep)].set_index("image")["psnr"]
            common = a.index.intersection(b.index)
            diff = (a[common] - b[common]).to_numpy(float)
            interval = cluster_bootstrap(diff, [sources[i] for i in common], seed=seed)
            rows.append({"arch": arch, "shallower": shallow, "deeper": deep, "psnr_drop": interval["mean"],
                         "ci_low": interval["low"], "ci_high": interval["high"],
                         "images_losing": float(np.mean(diff > 0)), "test_sources": interval["clusters"]})
    return pd.DataFrame(rows, columns=["arch", "shallower", "deeper", "psnr_drop", "ci_low", "ci_high",
                                       "images_losing", "test_sources"])


def weights_comparisons(per_image: dict[tuple[str, str], pd.DataFrame], networks: dict[str, str],
                        weights: dict[str, str], normalisations: dict[str, str], sources: dict,
                        seed: int = 0) -> pd.DataFrame:
    """What ImageNet training changes: for every layer that a run has with ImageNet weights and, under another
    name, with random weights of the same network fed the same input normalisation (`networks`, `weights`,
    `normalisations`: run name -> network, weights kind, normalisation), learned minus random PSNR and SSIM, paired
    by image, with intervals over source photos; one row per (learned, random) pair and layer."""
    rows = []
    for learned, network in networks.items():
        if weights[learned] != "imagenet":
            continue
        twins = [r for r, n in networks.items()
                 if n == network and weights[r] == "random" and normalisations[r] == normalisations[learned]]
        for twin in twins:
            for (arch, layer), a in per_image.items():
                if arch != learned or (twin, layer) not in per_image:
                    continue
                a, b = a.set_index("image"), per_image[(twin, layer)].set_index("image")
                common = a.index.intersection(b.index)
                row = {"network": network, "layer": layer, "learned": learned, "random": twin}
                for metric in ("psnr", "ssim"):
                    diff = (a.loc[common, metric] - b.loc[common, metric]).to_numpy(float)
                    interval = cluster_bootstrap(diff, [sources[i] for i in common], seed=seed)
                    row.update({f"{metric}_learned": float(a.loc[common, metric].mean()),
                                f"{metric}_random": float(b.loc[common, metric].mean()),
                                f"{metric}_gain": interval["mean"], f"{metric}_gain_ci_low": interval["low"],
                                f"{metric}_gain_ci_high": interval["high"]})
                row["images_better"] = float(np.mean(a.loc[common, "psnr"].to_numpy(float) > b.loc[common, "psnr"].to_numpy(float)))
                row["test_sources"] = interval["clusters"]
                rows.append(row)
    columns = ["network", "layer", "learned", "random", "psnr_learned", "psnr_random", "psnr_gain", "psnr_gain_ci_low",
               "psnr_gain_ci_high", "ssim_learned", "ssim_random", "ssim_gain", "ssim_gain_ci_low", "ssim_gain_ci_high",
               "images_better", "test_sources"]
    return pd.DataFrame(rows, columns=columns)


def capacity_comparisons(default: dict, matched: dict, pairs: list[tuple], sources: dict, seed: int = 0) -> pd.DataFrame:
    """Does a cross-architecture difference survive equal decoder capacity? For each pair of layers at one grid
    ((arch, layer), (arch, layer)), the first minus the second in PSNR, paired by image, with its interval over
    source photos: with each layer's default decoder (`default`: (arch, layer) -> per-image metrics) and with both
    decoders scaled to the same parameter count (`matched`)."""
    rows = []
    for a, b in pairs:
        row = {"arch_a": a[0], "layer_a": a[1], "arch_b": b[0], "layer_b": b[1]}
        for name, tables in (("default", default), ("matched", matched)):
            x, y = tables[a].set_index("image")["psnr"], tables[b].set_index("image")["psnr"]
            common = x.index.intersection(y.index)
            interval = cluster_bootstrap((x[common] - y[common]).to_numpy(float), [sources[i] for i in common], seed=seed)
            row.update({f"{name}_diff": interval["mean"], f"{name}_ci_low": interval["low"],
                        f"{name}_ci_high": interval["high"]})
        row["test_sources"] = interval["clusters"]
        rows.append(row)
    return pd.DataFrame(rows, columns=["arch_a", "layer_a", "arch_b", "layer_b", "default_diff", "default_ci_low",
                                       "default_ci_high", "matched_diff", "matched_ci_low", "matched_ci_high",
                                       "test_sources"])


def seed_noise(sd_a: float, sd_b: float, seeds_a: int, seeds_b: int) -> float:
    """The seed-to-seed sd of a difference between two layers' results, each the mean over its seeds: sd_a and sd_b
    are single runs' sds over the seeds, so each mean's is sd / sqrt(seeds)."""
    return float(np.hypot(sd_a / np.sqrt(seeds_a), sd_b / np.sqrt(seeds_b)))


def exceeds_seed_spread(difference: float, noise: float, factor: float = 2.0) -> bool:
    """Whether a difference is larger than retraining alone moves it: |difference| > `factor` x its seed noise
    (`seed_noise`). With 2 or 3 seeds an sd is a rough estimate, hence the factor: a screen, not a test."""
    return bool(abs(difference) > factor * noise)
