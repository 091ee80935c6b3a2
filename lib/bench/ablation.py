"""ablation: one mechanism of the default (resshuffle) decoder switched off on one layer, against the decoder as the
profile runs it, in one run: `quality` twice on the same images, settings and budget, the second time with the
mechanism replaced by its plain alternative. The record holds both runs and the paired difference in PSNR (off minus
on) with its 95% interval over the test photos. It is how each mechanism the decoder keeps is shown to help on
learned features (docs/method.md, "Mechanisms on learned features").

    python -m lib.bench.ablation --arch efficientnet_lite0 --layer stage1 --mechanism pointwise \\
        --train-dir DIR --val-dir DIR --test-dir DIR [--profile demo] [--set MATCH=30 ...] --out result.json

Mechanisms (what "off" runs instead):
    closed_form_start  the colour and linear paths fitted in closed form before any gradient step, on top of the
                    training mean image (off: they start at zero and are learnt with the deep path)
    fixed_paths     those fitted paths held fixed while the deep path trains (off: trained on from the fit)
    standardise     per-channel standardisation of the features at 28x28 grids (off: the features as the encoder
                    gives them, as the other grids read them); 28x28 grids only
    pointwise       the pointwise MLP after one 3x3 convolution at 56x56 and 112x112 grids (off: its hidden layers
                    3x3 convolutions too); fine grids only
    x4_step         one x4 sub-pixel step from 56x56 to 224 at coarse grids (off: a 112x112 stage between, two x2
                    steps); coarse grids only
    matching_grids  feature matching where `matching.applies` (off: on the layer's grid whatever it is); needs MATCH > 0
"""
from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager, nullcontext
from unittest import mock

from torch import nn

from .. import decoders, evaluation, matching, training
from ..stats import cluster_bootstrap
from . import run_cli
from .folders import BenchError, image_sources
from .quality import OVERRIDES, parse_overrides, quality

MECHANISMS = {
    "closed_form_start": "the closed-form start of the colour and linear paths",
    "fixed_paths": "the closed-form paths held fixed while the deep path trains",
    "standardise": "per-channel feature standardisation at "
                   + ", ".join(f"{g}x{g}" for g in decoders.STANDARDISED_GRIDS) + " grids",
    "pointwise": "the pointwise MLP at 56x56 and 112x112 grids",
    "x4_step": "one x4 sub-pixel step from 56x56 to 224",
    "matching_grids": f"feature matching on {matching.GRIDS} only",
}


def _no_closed_form_start(decoder) -> None:
    decoder.closed_form_start = False  # the colour and linear paths start at zero and train with the deep path


def _paths_trained(decoder) -> None:
    fit = decoder.fit_linear_start

    def fit_then_free(*args, **kwargs):
        out = fit(*args, **kwargs)
        decoder.linear.requires_grad_(True), decoder.colour.requires_grad_(True)  # trained on from the fit
        return out
    decoder.fit_linear_start = fit_then_free


def _coarse(decoder) -> bool:
    """Whether a resshuffle decoder has the coarse-grid body (residual blocks, sub-pixel steps), not the MLP."""
    return any(isinstance(m, decoders.ResBlock) for m in decoder.body)


def _no_standardise(decoder) -> None:
    if not decoder.standardise:
        raise BenchError("standardise: the layer's decoder reads its features unstandardised already (only "
                         + ", ".join(f"{g}x{g}" for g in decoders.STANDARDISED_GRIDS) + " grids standardise).")
    decoder.standardise = False  # the features as the encoder gives them; the statistics stay for feature matching


def _no_pointwise(decoder) -> None:
    body = decoder.body
    if _coarse(decoder):
        raise BenchError("pointwise: the layer's decoder has no pointwise MLP (only 56x56 and 112x112 grids have one).")
    # its hidden layers: every 1x1 convolution but the last, which maps to the pixel blocks
    hidden = [i for i, m in enumerate(body) if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)][:-1]
    for i in hidden:
        body[i] = nn.Conv2d(body[i].in_channels, body[i].out_channels, 3, padding=1)


def _no_x4_step(decoder) -> None:
    body = decoder.body
    last, shuffle = body[-2], body[-1]
    if not _coarse(decoder) or shuffle.upscale_factor != 4:
        raise BenchError("x4_step: the layer's decoder has no x4 step (only grids of 28x28 and coarser have one).")
    width, half = last.in_channels, max(16, last.in_channels // 2)  # width_at halves per doubling, min_width 16
    final = nn.Conv2d(half, 3 * 4, 3, padding=1)
    nn.init.zeros_(final.weight), nn.init.zeros_(final.bias)  # the deep path starts at zero, as the x4 step's does
    decoder.body = nn.Sequential(*body[:-2], nn.Conv2d(width, 4 * half, 3, padding=1, bias=False), nn.PixelShuffle(2),
                                 nn.BatchNorm2d(half), nn.GELU(), decoders.ResBlock(half), final, nn.PixelShuffle(2))


DECODER_CHANGES = {"closed_form_start": _no_closed_form_start, "fixed_paths": _paths_trained,
                   "standardise": _no_standardise, "pointwise": _no_pointwise, "x4_step": _no_x4_step}


@contextmanager
def switched_off(mechanism: str):
    """Within the block, `training.fit_decoder` builds its resshuffle decoder with `mechanism` replaced (or, for
    matching_grids, the evaluation matches on every grid)."""
    if mechanism == "matching_grids":
        with mock.patch.object(evaluation, "steps_at", lambda grid, requested: requested):
            yield
        return
    change, build = DECODER_CHANGES[mechanism], training.build_decoder

    def build_changed(name, *args, **kwargs):
        decoder = build(name, *args, **kwargs)
        change(decoder)  # `check` has made sure it applies
        return decoder

    with mock.patch.object(training, "build_decoder", build_changed):
        yield


def check(mechanism: str, profile: str, arch: str, layer: str, overrides: dict | None, weights: str | None) -> None:
    """One clear error, before any model is trained, where `mechanism` is unknown or the layer's decoder at the
    profile's settings has no such mechanism (the change is tried on the decoder built on the meta device)."""
    import torch

    from ..registry import check_layer
    from .quality import layer_settings

    if mechanism not in MECHANISMS:
        raise BenchError(f"unknown mechanism '{mechanism}'. Valid: {', '.join(MECHANISMS)}.")
    settings, encoder, study = layer_settings(profile, arch, layer, overrides, weights)
    if mechanism == "matching_grids":
        if not study["match_steps"]:
            raise BenchError(f"matching_grids compares feature matching on the layer's grid with {matching.GRIDS} only; "
                             f"profile '{study['profile']}' runs none: give MATCH= steps.")
        grid = check_layer(encoder["arch"], layer)[1]
        if matching.applies(grid):
            raise BenchError(f"matching_grids: {arch} {layer} ({grid}x{grid}) is matched already ({matching.GRIDS}), so "
                             "both runs would be the same; it compares only layers on coarser grids.")
        return
    if settings["decoder"] != "resshuffle":
        raise BenchError(f"{mechanism} is a mechanism of the resshuffle decoder, not of '{settings['decoder']}'.")
    channels, grid, _ = check_layer(encoder["arch"], layer)
    with torch.device("meta"):
        DECODER_CHANGES[mechanism](training.build_decoder("resshuffle", channels, grid, settings["width"],
                                                          settings.get("depth")))


def ablation(mechanism: str, profile: str, arch: str, layer: str, train_dir, val_dir, test_dir, *,
             overrides: dict | None = None, weights: str | None = None, progress: bool = True) -> dict:
    """`quality` of `arch` `layer` as `profile` runs it, then with `mechanism` off; both records and the paired
    difference (off minus on) in PSNR with its 95% interval over the test photos."""
    check(mechanism, profile, arch, layer, overrides, weights)
    runs = {}
    for state in ("on", "off"):
        with switched_off(mechanism) if state == "off" else nullcontext():
            runs[state] = quality(profile, arch, layer, train_dir, test_dir, val_dir=val_dir, overrides=overrides,
                                  weights=weights, progress=progress)
    names = list(runs["on"]["per_image"]["psnr"])
    diff = [runs["off"]["per_image"]["psnr"][n] - runs["on"]["per_image"]["psnr"][n] for n in names]
    interval = cluster_bootstrap(diff, image_sources(test_dir, names))
    return {"mechanism": mechanism, "description": MECHANISMS[mechanism], "arch": arch, "layer": layer,
            "profile": runs["on"]["profile"], "weights": runs["on"]["weights"],
            "psnr_on": runs["on"]["psnr_mean"], "psnr_off": runs["off"]["psnr_mean"],
            "psnr_off_minus_on": interval["mean"], "psnr_off_minus_on_ci_low": interval["low"],
            "psnr_off_minus_on_ci_high": interval["high"], "test_sources": interval["clusters"],
            "train_seconds_on": runs["on"]["train_seconds"], "train_seconds_off": runs["off"]["train_seconds"],
            "runs": runs}


def summary_line(result: dict, out) -> str:
    return (f"{result['arch']} {result['layer']} ({result['weights']} weights, profile {result['profile']}), "
            f"{result['description']}: on {result['psnr_on']:.2f} dB, off {result['psnr_off']:.2f} dB, off - on "
            f"{result['psnr_off_minus_on']:+.2f} [{result['psnr_off_minus_on_ci_low']:+.2f}, "
            f"{result['psnr_off_minus_on_ci_high']:+.2f}] (95% interval over {result['test_sources']} test photos); "
            f"training {result['train_seconds_on']:.0f}s on, {result['train_seconds_off']:.0f}s off -> {out}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.bench.ablation", description=__doc__.splitlines()[0])
    for name in ("--arch", "--layer", "--mechanism", "--train-dir", "--test-dir", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--val-dir", help="validation images: the checkpoint is chosen on them (default: none)")
    parser.add_argument("--profile", default="demo", help="whose settings train and score the layer (default demo)")
    parser.add_argument("--weights", choices=("imagenet", "random"), help="the encoder's weights (default: the profile's)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=value",
                        help=f"override a setting: {', '.join(OVERRIDES)}")
    args = parser.parse_args(argv)

    def compute():
        return ablation(args.mechanism, args.profile, args.arch, args.layer, args.train_dir, args.val_dir,
                        args.test_dir, overrides=parse_overrides(args.set), weights=args.weights)
    return run_cli(compute, args.out, summary_line)


if __name__ == "__main__":
    sys.exit(main())
