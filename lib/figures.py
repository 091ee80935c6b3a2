"""Figures: the headline curve, reconstruction and error-map grids, metrics against depth, training curves. Saved as
PNG, returned for display.

Every figure is drawn to be read on the printed page: one colour per encoder network (its random-weights twin in
the same colour, dashed and hollow), one marker per baseline, and `save` refuses a figure whose smallest text would
print under 8 pt once the report fits it to an A4 page."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files first; notebooks display the saved figures
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .baselines import BASELINE_NAMES
from .io import atomic_path

ARCH_LABELS = {"resnet34": "ResNet34", "vgg16": "VGG16", "vit_base_patch16_224": "ViT-B/16",
               "efficientnet_lite0": "EfficientNet-Lite0"}
# one colour per encoder network, in every figure (other timm encoders take the next free colours)
ENCODER_COLOURS = {"efficientnet_lite0": "#7b3294", "resnet34": "#1f77b4", "vgg16": "#e66101",
                   "vit_base_patch16_224": "#1b9e77"}
SPARE_COLOURS = ["#a6761d", "#e7298a", "#666666", "#66a61e", "#d95f02"]
# one marker per baseline (and for the study's published decoders), in every figure
BASELINE_STYLE = {"thumbnail": dict(marker="s", ls="--", color="0.35", label="thumbnail at the layer's grid"),
                  "mean_colour": dict(marker="v", ls=":", color="0.55", label="mean colour"),
                  "mean_image": dict(marker="D", ls="-.", color="#b2182b", markersize=4,
                                     label="no information (training mean image)"),
                  "study": dict(marker="x", ls="-", color="black", label="the study's decoders (published)")}
DPI = 110
PRINT_WIDTH_IN, PRINT_HEIGHT_IN = 7.32, 9.45  # the report's A4 page less margins, and its image height cap
MIN_PRINT_PT = 8.0


def arch_label(name: str) -> str:
    """A run's encoder as people read it: "ResNet34"; the random-weights twin of a network, named <network>_random
    (the profiles' convention), "EfficientNet-Lite0 (random)"; any other name as it is."""
    if name in ARCH_LABELS:
        return ARCH_LABELS[name]
    network = name.removesuffix("_random")
    return f"{ARCH_LABELS[network]} (random)" if name.endswith("_random") and network in ARCH_LABELS else name


def networks_of(archs) -> list[str]:
    """The networks behind a run's encoders, in order (a `_random` twin is its network's)."""
    return list(dict.fromkeys(str(a).removesuffix("_random") for a in archs))


def encoder_style(arch: str, networks: list[str] | None = None, random: bool | None = None) -> dict:
    """Line and marker style of one encoder: its network's colour (`networks`: every network of the figure, so that
    encoders without a colour of their own get distinct ones); random weights (a `_random` twin, or `random=True`
    for an encoder that fell back to them) dashed with hollow markers."""
    network = arch.removesuffix("_random")
    colour = ENCODER_COLOURS.get(network)
    if colour is None:
        others = [n for n in (networks or [network]) if n not in ENCODER_COLOURS]
        colour = SPARE_COLOURS[others.index(network) % len(SPARE_COLOURS)] if network in others else SPARE_COLOURS[0]
    random = arch.endswith("_random") if random is None else random
    return dict(color=colour, ls="--" if random else "-", marker="o", mfc="white" if random else colour)


def series_label(arch: str, weights: str = "imagenet", random: str = "random") -> str:
    """An encoder's name, saying so (`random`: the words, "random" in a legend) where a network that is not a
    `_random` control ran with random weights."""
    name = arch_label(arch)
    return f"{name} ({random})" if weights == "random" and not arch.endswith("_random") else name


def _chart_style() -> None:
    """Seaborn's theme for charts at paper size; imported on first use (it costs ~1.5 s, image grids don't need it)."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")


def print_scale(width_px: int, height_px: int) -> float:
    """How much a saved figure's points grow or shrink on the printed report: shown at 96 px per inch, at most the
    page's width and the image height cap."""
    return min(DPI / 96, PRINT_WIDTH_IN * DPI / width_px, PRINT_HEIGHT_IN * DPI / height_px)


def _smallest_text(fig) -> tuple[float, str]:
    fig.canvas.draw()
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    if not texts:
        return float("inf"), ""
    small = min(texts, key=lambda t: t.get_fontsize())
    return small.get_fontsize(), small.get_text()


def save(fig, path: Path, page: bool = True) -> Path:
    """Write `fig` atomically, refusing text under 8 pt as printed: fitted to the report's A4 page, or (`page=False`,
    a figure for the screen, such as `make invert`'s grid, that no page holds) at its own size."""
    from PIL import Image

    size, text = _smallest_text(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight")
        with Image.open(tmp) as png:
            printed = size * (print_scale(*png.size) if page else 1.0)
        if printed < MIN_PRINT_PT:  # raised before the rename: no illegible figure is left behind
            plt.close(fig)
            raise ValueError(f"{Path(path).name}: the text {text!r} would print at {printed:.1f} pt (under "
                             f"{MIN_PRINT_PT:g}): draw the figure narrower or its text larger")
    plt.close(fig)
    return path


def _blank(ax) -> None:
    ax.set_xticks([]), ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def reconstruction_figure(samples: dict, title: str, path: Path, psnrs=None) -> Path:
    """One layer: originals above reconstructions, the same fixed test images for every layer."""
    n = len(samples["original"])
    cell = min(1.6, 7.0 / n)
    fig, axes = plt.subplots(2, n, figsize=(cell * n, 2 * cell + 0.8), squeeze=False)
    for j in range(n):
        axes[0, j].imshow(samples["original"][j])
        axes[1, j].imshow(samples["reconstruction"][j])
        axes[0, j].set_title(str(samples["names"][j]), fontsize=8)
        if psnrs is not None:
            axes[1, j].set_title(f"{psnrs[j]:.1f} dB", fontsize=8)
    for ax in axes.flat:
        _blank(ax)
    axes[0, 0].set_ylabel("original", fontsize=8)
    axes[1, 0].set_ylabel("decoded", fontsize=8)
    fig.suptitle(title, fontsize=9)
    return save(fig, path)


def _encoder_grid(samples: dict[str, dict[str, dict]], images: list[int], width: float, height: float,
                  extra: float = 0.0):
    """The layout `reconstruction_overview`, `error_maps` and `inversion_grid` share: for each of `images`, a row per
    encoder (named on the left), the original first, then one cell per layer; yields each layer's (axes, layer,
    sample, image, original) to draw in."""
    encoders, columns = len(samples), max(len(layers) for layers in samples.values()) + 1
    rows = encoders * len(images)
    cell = min(1.0, width / columns, height / rows)
    fig, axes = plt.subplots(rows, columns, figsize=(cell * columns + extra, cell * rows + 0.5), squeeze=False)

    def cells():
        for k, image in enumerate(images):
            for i, (arch, layers) in enumerate(samples.items()):
                row = axes[k * encoders + i]
                original = next(iter(layers.values()))["original"][image]
                row[0].imshow(original)
                row[0].set_ylabel(arch_label(arch).replace(" (", "\n("), fontsize=8)
                for j, (layer, sample) in enumerate(layers.items(), start=1):
                    yield row[j], layer, sample, image, original
                for ax in row:
                    _blank(ax)
        axes[0, 0].set_title("original", fontsize=8)

    return fig, axes, cells()


def reconstruction_overview(samples: dict[str, dict[str, dict]], path: Path, image: int = 0) -> Path:
    """One test image through every encoder: a row per encoder, the original and then each layer from shallow to
    deep, titled with the layer and its PSNR on this image. `samples[arch][layer]` is a layer's samples.npz."""
    fig, _, cells = _encoder_grid(samples, [image], width=7.0, height=8.6)
    for ax, layer, sample, _, _ in cells:
        ax.imshow(sample["reconstruction"][image])
        ax.set_title(f"{layer} {float(sample['psnr'][image]):.1f} dB", fontsize=8)
    name = str(next(iter(next(iter(samples.values())).values()))["names"][image])
    fig.suptitle(f"Test image {name}, decoded from each layer (shallow to deep)", fontsize=9)
    fig.tight_layout(pad=0.3, rect=(0, 0, 1, 0.96))
    return save(fig, path)


def inversion_grid(samples: dict[str, dict[str, dict]], path: Path, longest_name: int = 14) -> Path:
    """Your own images through every layer (`make invert`): for each image a row per encoder, the image (titled with
    its file name, cut to `longest_name` characters) and then each layer from shallow to deep, titled with the layer
    and its PSNR on that image. `samples[arch][layer]` holds every image's original, reconstruction, names and psnr,
    as a layer's samples.npz does for its test images. A screen figure: cells keep their size (about 1.2 in) and
    the grid grows with the images, rather than shrinking to a page."""
    names = [str(name) for name in next(iter(next(iter(samples.values())).values()))["names"]]
    rows = len(samples) * len(names)
    fig, axes, cells = _encoder_grid(samples, list(range(len(names))), width=7.0, height=1.25 * rows)
    for ax, layer, sample, image, _ in cells:
        ax.imshow(sample["reconstruction"][image])
        ax.set_title(f"{layer}\n{float(sample['psnr'][image]):.1f} dB", fontsize=8)
    for k, name in enumerate(names):
        cut = name if len(name) <= longest_name else name[:longest_name - 1] + "…"
        axes[k * len(samples), 0].set_title(cut, fontsize=8)
    fig.suptitle("Your images (left), decoded from each layer (shallow to deep)", fontsize=9)
    fig.tight_layout(pad=0.3, rect=(0, 0, 1, 1 - 0.25 / fig.get_figheight()))  # a quarter inch for the title
    return save(fig, path, page=False)


def _unit(image) -> np.ndarray:
    """An image as float in [0, 1], whether stored as uint8 (samples.npz) or float."""
    image = np.asarray(image)
    return image.astype(np.float32) / 255 if image.dtype == np.uint8 else image.astype(np.float32)


def error_maps(samples: dict[str, dict[str, dict]], path: Path, image: int = 0) -> Path:
    """Where each layer loses the image: |reconstruction - original|, averaged over RGB, one shared colour scale;
    laid out as `reconstruction_overview`."""
    fig, axes, cells = _encoder_grid(samples, [image], width=6.6, height=8.4, extra=0.6)
    shown = None
    for ax, layer, sample, _, original in cells:
        error = np.abs(_unit(sample["reconstruction"][image]) - _unit(original)).mean(axis=-1)
        shown = ax.imshow(error, cmap="magma", vmin=0, vmax=0.5)
        ax.set_title(f"{layer} {error.mean():.3f}", fontsize=8)
    fig.suptitle("Absolute error |decoded - original| per pixel (titles: its mean), same image", fontsize=9)
    fig.tight_layout(pad=0.3, rect=(0, 0, 0.92, 0.96))
    if shown is not None:
        bar = fig.colorbar(shown, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02)
        bar.ax.tick_params(labelsize=8)
    return save(fig, path)


def _panels(count: int, columns: int = 2, height: float = 2.6):
    rows = int(np.ceil(count / columns))
    fig, axes = plt.subplots(rows, min(columns, count), figsize=(7.2, height * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, axes.flat[:count]


def headline(summary: pd.DataFrame, published: pd.DataFrame, path: Path) -> Path:
    """The result at a glance: PSNR against depth, one panel per network (its random twin beside it), with 95%
    intervals over test photos, the three baselines, and the study's published decoders where it measured the layer."""
    _chart_style()
    networks = networks_of(summary["arch"])
    fig, axes = _panels(len(networks))
    handles = {}
    for ax, network in zip(axes, networks):
        rows = summary[summary["arch"].str.removesuffix("_random") == network]
        layers = list(dict.fromkeys(rows["layer"]))
        x = {layer: i for i, layer in enumerate(layers)}
        for arch, own in rows.groupby("arch", sort=False):
            xs = own["layer"].map(x).to_numpy()
            low = own["psnr_ci_low"] if "psnr_ci_low" in own else own["psnr_mean"] - own["psnr_std"]
            high = own["psnr_ci_high"] if "psnr_ci_high" in own else own["psnr_mean"] + own["psnr_std"]
            err = np.stack([own["psnr_mean"] - low, high - own["psnr_mean"]]).clip(0)
            random = own["weights"].iloc[0] == "random"
            handles[series_label(arch, own["weights"].iloc[0])] = ax.errorbar(
                xs, own["psnr_mean"], yerr=err, capsize=2, **encoder_style(arch, networks, random))
        grid = rows.drop_duplicates("layer")
        for baseline in reversed(BASELINE_NAMES):
            style = BASELINE_STYLE[baseline]
            handles[style["label"]] = ax.plot(grid["layer"].map(x), grid[f"baseline_{baseline}_psnr"], **style)[0]
        study = published[published["arch"] == network]
        study = study[study["layer"].isin(x)]
        if len(study):
            handles[BASELINE_STYLE["study"]["label"]] = ax.plot(study["layer"].map(x), study["psnr_mean"],
                                                                **BASELINE_STYLE["study"])[0]
        ax.set_xticks(range(len(layers)), [f"{l}\n{s.split('x', 1)[1]}" for l, s in zip(grid["layer"], grid["feature_shape"])],
                      fontsize=8)
        ax.set_title(ARCH_LABELS.get(network, network), fontsize=9)
        ax.set_ylabel("PSNR (dB)", fontsize=8)
    fig.suptitle("How much survives with depth: decoder PSNR (95% interval over test photos) against the baselines",
                 fontsize=9)
    rows_of_legend = int(np.ceil(len(handles) / 3))
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.045 * rows_of_legend + 0.02, 1, 1))
    return save(fig, path)


def cross_architecture(summary: pd.DataFrame, path: Path) -> Path:
    """Every encoder at matched grids: PSNR against the layer's grid side, with the thumbnail at each grid (the
    same for every encoder) and the mean colour."""
    _chart_style()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    networks = networks_of(summary["arch"])
    side = summary["spatial_locations"].astype(float) ** 0.5
    for arch, rows in summary.assign(side=side).groupby("arch", sort=False):
        best = rows.groupby("side")["psnr_mean"].max()  # ViT: its best block at 14x14
        weights = rows["weights"].iloc[0]
        ax.plot(best.index, best.values, label=series_label(arch, weights),
                **encoder_style(arch, networks, weights == "random"))
    grids = summary.assign(side=side).drop_duplicates("side").sort_values("side")
    for baseline in reversed(BASELINE_NAMES):
        ax.plot(grids["side"], grids[f"baseline_{baseline}_psnr"], **BASELINE_STYLE[baseline])
    ax.set_xscale("log", base=2)
    ax.set_xticks(grids["side"], [f"{int(s)}×{int(s)}" for s in grids["side"]])
    ax.set_xlabel("the layer's grid (spatial cells per side)", fontsize=9)
    ax.set_ylabel("PSNR (dB)", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("Across architectures at matched grids (the best layer of each encoder per grid)", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def baseline_margins(summary: pd.DataFrame, path: Path) -> Path:
    """Decoder minus each baseline in PSNR, per layer, with 95% intervals (bootstrap over test photos): a bar whose
    interval clears zero is a margin these test photos support."""
    _chart_style()
    archs = summary["arch"].unique()
    networks = networks_of(archs)
    fig, axes = _panels(len(archs), columns=3, height=2.2)
    for ax, arch in zip(axes, archs):
        rows = summary[summary["arch"] == arch]
        x = np.arange(len(rows))
        for offset, baseline in zip((-0.26, 0.0, 0.26), BASELINE_NAMES):
            mid = rows[f"psnr_minus_{baseline}"].to_numpy(float)
            err = np.stack([mid - rows[f"psnr_minus_{baseline}_ci_low"], rows[f"psnr_minus_{baseline}_ci_high"] - mid])
            style = BASELINE_STYLE[baseline]
            ax.bar(x + offset, mid, width=0.25, color=style["color"], alpha=0.7, label=f"− {style['label']}")
            ax.errorbar(x + offset, mid, yerr=err, fmt="none", ecolor="black", capsize=2, linewidth=0.8)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, rows["layer"], fontsize=8)
        ax.set_title(series_label(arch, rows["weights"].iloc[0]), fontsize=9, color=encoder_style(arch, networks)["color"])
    axes[0].set_ylabel("decoder − baseline (dB)", fontsize=8)
    axes[0].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return save(fig, path)


def training_curves(histories: dict[str, pd.DataFrame], path: Path, starts: dict[str, float] | None = None) -> Path:
    """Train and validation MSE per epoch, one panel per architecture, one colour per layer; `starts` (same keys):
    the validation MSE before any gradient step, drawn hollow at epoch 0."""
    _chart_style()
    archs = list(dict.fromkeys(key.split("/")[0] for key in histories))  # the run's order
    fig, axes = _panels(len(archs), columns=3, height=2.3)
    for ax, arch in zip(axes, archs):
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
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_title(arch_label(arch), fontsize=9)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("MSE (normalised space)", fontsize=8)
    fig.suptitle("Validation (solid) and training (dotted) loss; hollow: before any gradient step", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def pipeline_diagram(path: Path) -> Path:
    """The method in one picture: image -> frozen encoder up to layer l -> features -> trained decoder ->
    reconstruction, scored against the original beside the baselines."""
    fig, ax = plt.subplots(figsize=(7.2, 1.7))
    ax.set_xlim(0, 100), ax.set_ylim(0, 24), ax.axis("off")
    boxes = [(1, "image u\n224×224 RGB", "0.92"), (21, "frozen encoder\nup to layer ℓ", "#d9d2e9"),
             (41, "features f\nC × h × w", "0.92"), (61, "decoder D\n(trained, MSE)", "#cfe2f3"),
             (81, "reconstruction\nû = D(f)", "0.92")]
    for x, text, colour in boxes:
        ax.add_patch(matplotlib.patches.FancyBboxPatch((x, 12), 16, 10, boxstyle="round,pad=0.6", fc=colour, ec="0.3"))
        ax.text(x + 8, 17, text, ha="center", va="center", fontsize=8)
    for x in (17.6, 37.6, 57.6, 77.6):
        ax.annotate("", (x + 3.2, 17), (x, 17), arrowprops=dict(arrowstyle="->", color="0.2"))
    ax.text(50, 4.5, "scored on held-out images in [0, 1] RGB: PSNR, SSIM, LPIPS, MSE of û against u, beside\n"
                     "the training images' mean image, each image's mean colour and its thumbnail at the layer's grid",
                     ha="center", va="center", fontsize=8)
    return save(fig, path)


def learned_vs_random(comparisons: pd.DataFrame, path: Path) -> Path:
    """What ImageNet training changes: learned minus random PSNR and SSIM per layer, paired by image, with 95%
    intervals over test photos (`weights_comparisons.csv`); one group of bars per learned-random pair."""
    _chart_style()
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 2.8), squeeze=False)
    networks = networks_of(comparisons["learned"])
    for ax, (metric, label) in zip(axes[0], (("psnr", "PSNR (dB)"), ("ssim", "SSIM"))):
        positions, names, start = [], [], 0
        for (learned, random), rows in comparisons.groupby(["learned", "random"], sort=False):
            x = np.arange(start, start + len(rows))
            mid = rows[f"{metric}_gain"].to_numpy(float)
            err = np.stack([mid - rows[f"{metric}_gain_ci_low"], rows[f"{metric}_gain_ci_high"] - mid])
            ax.bar(x, mid, width=0.6, alpha=0.75, color=encoder_style(learned, networks)["color"],
                   label=f"{arch_label(learned)} − random")
            ax.errorbar(x, mid, yerr=err, fmt="none", ecolor="black", capsize=2, linewidth=0.8)
            positions += list(x)
            names += list(rows["layer"])
            start += len(rows) + 1
        ax.set_xticks(positions, names, fontsize=8)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylabel(f"learned − random {label}", fontsize=8)
    axes[0, 0].legend(fontsize=8, loc="best")
    fig.suptitle("What ImageNet training changes (95% intervals over test photos)", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def weights_grid(learned: dict[str, dict], random: dict[str, dict], network: str, path: Path, images: int = 1) -> Path:
    """The same test images through the learned and the random encoder, layer by layer: columns are layers,
    rows the original and each weights' reconstruction, one block of rows per image."""
    layers = list(learned)
    n = min(images, len(learned[layers[0]]["original"]))
    cell = min(1.3, 7.0 / len(layers), 8.4 / (3 * n))
    fig, axes = plt.subplots(3 * n, len(layers), figsize=(cell * len(layers), cell * 3 * n + 0.4), squeeze=False)
    for j, layer in enumerate(layers):
        axes[0, j].set_title(layer, fontsize=9)
        for i in range(n):
            for k, (image, label) in enumerate(((learned[layer]["original"][i], "original"),
                                                (learned[layer]["reconstruction"][i], "ImageNet"),
                                                (random[layer]["reconstruction"][i], "random"))):
                ax = axes[3 * i + k, j]
                ax.imshow(image)
                _blank(ax)
                if j == 0:
                    ax.set_ylabel(label, fontsize=8)
    fig.suptitle(f"{arch_label(network)}: the same test images, ImageNet vs random weights", fontsize=9)
    fig.tight_layout(pad=0.3)
    return save(fig, path)


def offline_benchmark(table: dict, path: Path) -> Path:
    """`make bench-offline`'s table.png: each measured layer's decoder PSNR (± std over test images) beside its mean-colour and thumbnail
    baselines, the decoder's marker filled where the layer meets its target(s) and hollow where it misses."""
    _chart_style()
    rows = table["rows"]
    fig, ax = plt.subplots(figsize=(min(7.2, max(5.0, 0.3 * len(rows) + 1.5)), 3.6))
    x = np.arange(len(rows))
    for baseline in reversed(BASELINE_NAMES):
        ax.plot(x, [r[f"baseline_{baseline}_psnr"] for r in rows], ls="none",
                **{k: v for k, v in BASELINE_STYLE[baseline].items() if k != "ls"})
    networks = networks_of(r["arch"] for r in rows)
    for i, r in enumerate(rows):  # each decoder in its network's colour, filled where it meets its target(s)
        colour = encoder_style(r["arch"], networks)["color"]
        ax.errorbar(x[i], r["psnr_mean"], yerr=r["psnr_std"], fmt="o", capsize=2, color=colour,
                    mfc=colour if r["met"] else "white")
    for met in (True, False):  # the legend's two decoder entries
        ax.errorbar([], [], fmt="o", color="0.2", mfc="0.2" if met else "white",
                    label="decoder, target met" if met else "decoder, target missed")
    for i in [i for i, r in enumerate(rows) if "thumbnail" in r["targets"]]:  # held to their thumbnail as well
        ax.annotate("T", (x[i], rows[i]["baseline_thumbnail_psnr"]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=8, color="0.35")
    one_network = len({r["arch"] for r in rows}) == 1  # then the ticks name the weights, the title the network
    rotate = len(rows) > 10  # many rows: upright names would overlap
    ax.set_xticks(x, [(("ImageNet" if r.get("weights") == "imagenet" else "random") if one_network else
                       f"{arch_label(r['arch'])}{' IN' if r.get('weights') == 'imagenet' else ''}")
                      + (" " if rotate else "\n") + r["layer"] for r in rows], fontsize=8, rotation=90 if rotate else 0)
    ax.set_ylabel("PSNR (dB)", fontsize=9)
    title = "Learned-features benchmark" if table.get("settings", {}).get("sweep") == "learned" else "Offline benchmark"
    title += f", {arch_label(rows[0]['arch'])}" if one_network else " (IN: ImageNet weights, else random)"
    note = " (T: held to its thumbnail too)" if any("thumbnail" in r["targets"] for r in rows) else ""
    ax.set_title(f"{title}\n{table['met']} of {table['layers']} layers meet their targets{note}", fontsize=9)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.32 if len(rows) > 10 else -0.2), ncol=2,
              frameon=False)
    fig.tight_layout()
    return save(fig, path)
