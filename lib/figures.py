"""Figures: reconstruction grids, metrics against depth, training curves. Saved as PNG, returned for display."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files first; notebooks display the saved figures
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .io import atomic_path

ARCH_LABELS = {"resnet34": "ResNet34", "vgg16": "VGG16", "vit_base_patch16_224": "ViT-B/16",
               "efficientnet_lite0": "EfficientNet-Lite0"}


def arch_label(name: str) -> str:
    """A run's encoder as people read it: "ResNet34"; the random-weights twin of a network, named <network>_random
    (the profiles' convention), "EfficientNet-Lite0 (random)"; any other name as it is."""
    if name in ARCH_LABELS:
        return ARCH_LABELS[name]
    network = name.removesuffix("_random")
    return f"{ARCH_LABELS[network]} (random)" if name.endswith("_random") and network in ARCH_LABELS else name


def _chart_style() -> None:
    """Seaborn's theme for charts; imported on first use (it costs ~1.5 s, and image grids don't need it)."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")


def save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def reconstruction_figure(samples: dict, title: str, path: Path, psnrs=None) -> Path:
    """Originals above reconstructions, the same fixed test images for every layer."""
    n = len(samples["original"])
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 4.1), squeeze=False)
    for j in range(n):
        axes[0, j].imshow(samples["original"][j])
        axes[1, j].imshow(samples["reconstruction"][j])
        axes[0, j].set_title(str(samples["names"][j]), fontsize=8)
        if psnrs is not None:
            axes[1, j].set_title(f"{psnrs[j]:.1f} dB", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("reconstruction")
    fig.suptitle(title)
    return save(fig, path)


def image_grid(images: list[np.ndarray], titles: list[str], path: Path, columns: int = 8, title: str = "") -> Path:
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.75 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images, titles):
        ax.imshow(image)
        ax.set_title(label, fontsize=7)
    if title:
        fig.suptitle(title)
    return save(fig, path)


def depth_grid(samples_by_layer: dict[str, dict], arch: str, path: Path, images: int = 4) -> Path:
    """Rows: the original, then every layer from shallow to deep; columns: fixed test images."""
    layers = list(samples_by_layer)
    first = samples_by_layer[layers[0]]
    n = min(images, len(first["original"]))
    fig, axes = plt.subplots(len(layers) + 1, n, figsize=(1.8 * n, 1.8 * (len(layers) + 1)), squeeze=False)
    for j in range(n):
        axes[0, j].imshow(first["original"][j])
        for i, layer in enumerate(layers, start=1):
            axes[i, j].imshow(samples_by_layer[layer]["reconstruction"][j])
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    for i, label in enumerate(["original"] + layers):
        axes[i, 0].set_ylabel(label)
    fig.suptitle(f"{arch_label(arch)}: reconstructions from shallow to deep")
    return save(fig, path)


def metrics_by_depth(summary: pd.DataFrame, path: Path) -> Path:
    """PSNR / SSIM / LPIPS against depth, one panel per metric, one line per architecture, with baselines."""
    _chart_style()
    metrics = [("psnr", "PSNR (dB) ↑"), ("ssim", "SSIM ↑")]
    if summary["lpips_mean"].notna().any():
        metrics.append(("lpips", "LPIPS ↓"))
    fig, axes = plt.subplots(len(metrics), len(summary["arch"].unique()), figsize=(4.2 * summary["arch"].nunique(), 3.2 * len(metrics)), squeeze=False)
    for col, (arch, rows) in enumerate(summary.groupby("arch", sort=False)):
        x = np.arange(len(rows))
        for row, (metric, label) in enumerate(metrics):
            ax = axes[row, col]
            ax.errorbar(x, rows[f"{metric}_mean"], yerr=rows[f"{metric}_std"], marker="o", capsize=3, label="decoder")
            if metric in ("psnr", "ssim"):
                ax.plot(x, rows[f"baseline_thumbnail_{metric}"], "s--", color="tab:green", label="thumbnail at grid")
                ax.plot(x, rows[f"baseline_mean_colour_{metric}"], "^:", color="tab:red", label="mean colour")
            ax.set_xticks(x, rows["layer"])
            ax.set_ylabel(label)
            if row == 0:
                ax.set_title(arch_label(arch))
    axes[0, -1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return save(fig, path)


def baseline_margins(summary: pd.DataFrame, path: Path) -> Path:
    """Decoder minus each baseline in PSNR, per layer, with 95% intervals (bootstrap over test photos): a bar whose
    interval clears zero is a margin these test photos support."""
    _chart_style()
    archs = summary["arch"].unique()
    fig, axes = plt.subplots(1, len(archs), figsize=(4.2 * len(archs), 3.4), squeeze=False, sharey=True)
    for ax, arch in zip(axes[0], archs):
        rows = summary[summary["arch"] == arch]
        x = np.arange(len(rows))
        for offset, (baseline, colour, name) in zip((-0.18, 0.18), (("mean_colour", "tab:red", "− mean colour"),
                                                                      ("thumbnail", "tab:green", "− thumbnail"))):
            mid = rows[f"psnr_minus_{baseline}"].to_numpy(float)
            err = np.stack([mid - rows[f"psnr_minus_{baseline}_ci_low"], rows[f"psnr_minus_{baseline}_ci_high"] - mid])
            ax.bar(x + offset, mid, width=0.34, color=colour, alpha=0.55, label=f"decoder {name}")
            ax.errorbar(x + offset, mid, yerr=err, fmt="none", ecolor="black", capsize=3, linewidth=1)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, rows["layer"])
        ax.set_title(arch_label(arch))
    axes[0, 0].set_ylabel("PSNR difference (dB), 95% interval")
    axes[0, -1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return save(fig, path)


def cross_architecture(summary: pd.DataFrame, path: Path) -> Path:
    """PSNR against relative depth for all architectures on one axis."""
    _chart_style()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for arch, rows in summary.groupby("arch", sort=False):
        depth = np.linspace(0, 1, len(rows)) if len(rows) > 1 else np.zeros(1)
        ax.errorbar(depth, rows["psnr_mean"], yerr=rows["psnr_std"], marker="o", capsize=3, label=arch_label(arch))
        for d, (_, r) in zip(depth, rows.iterrows()):
            ax.annotate(r["layer"], (d, r["psnr_mean"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("relative depth of the layer (0 = shallowest studied, 1 = deepest)")
    ax.set_ylabel("PSNR (dB) ↑")
    ax.legend()
    ax.set_title("Reconstructability across depth and architecture")
    return save(fig, path)


def training_curves(histories: dict[str, pd.DataFrame], path: Path, starts: dict[str, float] | None = None) -> Path:
    """Train and validation MSE per epoch, one panel per architecture, one colour per layer; `starts` (same keys):
    the validation MSE before any gradient step, drawn hollow at epoch 0."""
    _chart_style()
    archs = list(dict.fromkeys(key.split("/")[0] for key in histories))  # the run's order
    fig, axes = plt.subplots(1, len(archs), figsize=(4.2 * len(archs), 3.2), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        for key, history in histories.items():
            if key.split("/")[0] != arch:
                continue
            line = ax.plot(history["epoch"], history["val_loss"], marker=".", label=key.split("/")[1])[0]
            ax.plot(history["epoch"], history["train_loss"], ls=":", color=line.get_color())
            start = (starts or {}).get(key)
            if start is not None and np.isfinite(start) and len(history):
                ax.plot([0, history["epoch"].iloc[0]], [start, history["val_loss"].iloc[0]], ls="--", lw=0.8,
                        marker="o", markevery=[0], mfc="white", color=line.get_color())
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("MSE (normalised space)")
        ax.set_title(f"{arch_label(arch)} (solid: val, dotted: train, hollow: before training)",
                     fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path)


def offline_benchmark(table: dict, path: Path) -> Path:
    """`make bench-offline`'s table.png: each measured layer's decoder PSNR (± std over test images) beside its mean-colour and thumbnail
    baselines, the decoder's marker filled where the layer meets its target(s) and hollow where it misses."""
    _chart_style()
    rows = table["rows"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.62 * len(rows) + 1.5), 4.2))
    x = np.arange(len(rows))
    ax.plot(x, [r["baseline_thumbnail_psnr"] for r in rows], "s", color="tab:green",
            label="thumbnail at the layer's grid")
    ax.plot(x, [r["baseline_mean_colour_psnr"] for r in rows], "_", color="tab:red", markersize=16, mew=2,
            label="mean colour")
    for met in (True, False):
        chosen = [i for i, r in enumerate(rows) if r["met"] == met]
        if chosen:
            ax.errorbar(x[chosen], [rows[i]["psnr_mean"] for i in chosen], yerr=[rows[i]["psnr_std"] for i in chosen],
                        fmt="o", capsize=3, color="tab:blue", mfc="tab:blue" if met else "white",
                        label="decoder, target met" if met else "decoder, target missed")
    for i in [i for i, r in enumerate(rows) if "thumbnail" in r["targets"]]:  # held to their thumbnail as well
        ax.annotate("thumbnail target", (x[i], rows[i]["baseline_thumbnail_psnr"]), textcoords="offset points",
                    xytext=(0, 8), ha="center", fontsize=6, color="tab:green")
    one_network = len({r["arch"] for r in rows}) == 1  # then the ticks name the weights, the title the network
    ax.set_xticks(x, [(("ImageNet" if r.get("weights") == "imagenet" else "random") if one_network else
                       f"{arch_label(r['arch'])}{' IN' if r.get('weights') == 'imagenet' else ''}") + f"\n{r['layer']}"
                      for r in rows], fontsize=7)
    ax.set_ylabel("PSNR (dB) ↑")
    title = "Learned-features benchmark" if table.get("settings", {}).get("sweep") == "learned" else "Offline benchmark"
    title += f", {arch_label(rows[0]['arch'])}" if one_network else " (IN: ImageNet weights, else random)"
    ax.set_title(f"{title}: {table['met']} of {table['layers']} layers "
                 f"meet their targets", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4, frameon=False)
    fig.tight_layout()
    return save(fig, path)


def layout_control(table: pd.DataFrame, path: Path) -> Path:
    """`benchmark_findings.layout_control`'s table: per layer, the R² of the cells' layout readout across the training photos
    (hollow) and on the test photos (filled); below zero the readout predicts the test photos worse than no layout."""
    _chart_style()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.62 * len(table) + 1.5), 3.8))
    x = np.arange(len(table))
    architectures = [f"{name.rsplit(' ', 1)[0]} ({weights})" for name, weights in zip(table.index, table["weights"])]
    for colour, arch in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], dict.fromkeys(architectures)):
        chosen = [i for i, a in enumerate(architectures) if a == arch]
        ax.plot(x[chosen], table["layout R² training photos"].iloc[chosen], "o--", mfc="white", color=colour,
                label=f"{arch}: training photos (cross-validated)")
        ax.plot(x[chosen], table["layout R² test photos"].iloc[chosen], "o-", color=colour, label=f"{arch}: test photos")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, [name.replace(" ", "\n", 1) for name in table.index], fontsize=7)
    ax.set_ylabel("layout R² (thumbnail less mean colour)")
    ax.set_title("How much layout each layer's cells tell, by ridge regression", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.tight_layout()
    return save(fig, path)


def learned_vs_random(comparisons: pd.DataFrame, path: Path) -> Path:
    """What ImageNet training changes: learned minus random PSNR and SSIM per layer, paired by image, with 95%
    intervals over test photos (`weights_comparisons.csv`); one group of bars per learned-random pair."""
    _chart_style()
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.2), squeeze=False)
    for ax, (metric, label) in zip(axes[0], (("psnr", "PSNR (dB)"), ("ssim", "SSIM"))):
        positions, names, start = [], [], 0
        for (learned, random), rows in comparisons.groupby(["learned", "random"], sort=False):
            x = np.arange(start, start + len(rows))
            mid = rows[f"{metric}_gain"].to_numpy(float)
            err = np.stack([mid - rows[f"{metric}_gain_ci_low"], rows[f"{metric}_gain_ci_high"] - mid])
            ax.bar(x, mid, width=0.6, alpha=0.7, label=f"{arch_label(learned)} − {arch_label(random)}")
            ax.errorbar(x, mid, yerr=err, fmt="none", ecolor="black", capsize=3, linewidth=1)
            positions += list(x)
            names += list(rows["layer"])
            start += len(rows) + 1
        ax.set_xticks(positions, names, fontsize=8)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylabel(f"learned − random {label}", fontsize=9)
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle("What ImageNet training changes (95% intervals over test photos)", fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def weights_grid(learned: dict[str, dict], random: dict[str, dict], network: str, path: Path, images: int = 3) -> Path:
    """The same test images through the learned and the random encoder, layer by layer: columns are layers,
    rows the original and each weights' reconstruction, one block of rows per image."""
    layers = list(learned)
    n = min(images, len(learned[layers[0]]["original"]))
    fig, axes = plt.subplots(3 * n, len(layers), figsize=(1.55 * len(layers), 1.6 * 3 * n), squeeze=False)
    for j, layer in enumerate(layers):
        axes[0, j].set_title(layer, fontsize=9)
        for i in range(n):
            for k, (image, label) in enumerate(((learned[layer]["original"][i], "original"),
                                                (learned[layer]["reconstruction"][i], "ImageNet"),
                                                (random[layer]["reconstruction"][i], "random"))):
                ax = axes[3 * i + k, j]
                ax.imshow(image)
                ax.set_xticks([]), ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(label, fontsize=8)
    fig.suptitle(f"{arch_label(network)}: the same test images, ImageNet vs random weights", fontsize=10)
    fig.tight_layout()
    return save(fig, path)
