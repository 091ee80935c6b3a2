"""Test-time feature matching: nudge a decoder's reconstruction until the frozen encoder's features of it match
the features it was decoded from.

The encoder is known, so after decoding one can still ask it where the reconstruction disagrees with the layer.
Optimising the full 224 x 224 image on that disagreement alone lowers it without helping the image: a random stem
is most sensitive to fine patterns, so the steps go there. A coarse correction, upsampled, changes what the eye
calls colour and shape instead.
The features must be fine enough to constrain the correction: at 7 x 7 (random ResNet34 layer4) matching lowered
the PSNR. On EfficientNet-Lite0's ImageNet features 30 steps added 5.5 dB at 112 x 112, 0.7 at 28 x 28 and 0.1 at
14 x 14 (`make bench-ablation ... MECHANISM=matching_grids`). So it runs where the grid is at least `MIN_GRID`,
28 x 28: 14 x 14, where its gain was a tenth of a dB and every ViT-B/16 block lies, is left out until measured
on more learned layers.

The correction is a pyramid (`LEVELS`): maps at 112, 56 and 28 (each bicubic-upsampled) and one at full
resolution scaled by 1/4. Adam moves each parameter by about lr per step, so a coarse cell, which spreads over many
pixels, moves colour and shape quickly, and the damped full-resolution level can redraw fine detail (point-like
stars, which a coarse correction smears) slowly without taking over.
The measurements behind these choices: docs/method.md, "Feature matching".
"""
from __future__ import annotations

import torch
from torch import nn

MIN_GRID = 28  # coarsest feature grid at which matching runs
GRIDS = f"{MIN_GRID}×{MIN_GRID} grids and finer"  # where it runs, as the report and docs say it
# (fraction of the image's side, scale) of each level of the correction
LEVELS = ((1, 0.25), (1 / 2, 1.0), (1 / 4, 1.0), (1 / 8, 1.0))


def applies(grid: int) -> bool:
    """Whether feature matching runs for a layer whose features lie on a grid x grid map: fine enough to constrain
    the correction."""
    return grid >= MIN_GRID


def steps_at(grid: int, requested: int) -> int:
    """The feature-matching steps a layer on a grid x grid map runs when `requested` are asked for."""
    return requested if applies(grid) else 0


def levels_record(steps: int) -> list[list[float]]:
    """The correction's levels as results record them: [[fraction, scale], ...] when matching ran, else []."""
    return [list(level) for level in LEVELS] if steps else []


def match_features(encode, standardise: nn.Module | None, features: torch.Tensor, images: torch.Tensor, steps: int,
                   lr: float = 0.01, levels=LEVELS, batch_size: int = 16, device=None,
                   progress: bool = False) -> torch.Tensor:
    """`images` (normalised N x 3 x H x W reconstructions of `features`) after `steps` Adam steps on the squared
    distance between standardise(encode(image)) and standardise(features), over a correction that sums the
    `levels`: for each (fraction, scale), a map at fraction x the image's side, bicubic-upsampled, times scale.
    `standardise`: a per-channel standardisation fitted on the decoder's training features
    (`ResShuffleDecoder.feature_statistics`), so that every channel counts alike whatever its scale; or None (the
    study's decoders, which keep none) to fit one on `features` themselves. `encode` must be differentiable (normalised images -> features, on the images' device).
    Each image's correction is its own: batches only share the encoder's passes. Returns new tensors on CPU."""
    import copy

    from tqdm import tqdm

    if steps < 0:
        raise ValueError(f"feature-matching steps must be 0 or more, got {steps}.")
    if steps == 0:
        return images.clone()
    size = images.shape[-1]
    if standardise is None:
        from .decoders import FeatureStandardise

        standardise = FeatureStandardise(features.shape[1])
        standardise.fit(features)
    device = torch.device(device or "cpu")
    standardise = copy.deepcopy(standardise).to(device)
    out = []
    bar = tqdm(total=steps * ((len(images) + batch_size - 1) // batch_size), desc="feature matching", unit="step",
               mininterval=5, disable=not progress)
    for start in range(0, len(images), batch_size):
        base = images[start : start + batch_size].to(device)
        target = standardise(features[start : start + batch_size].to(device)).detach()
        deltas = [torch.zeros(len(base), 3, round(size * fraction), round(size * fraction), device=device,
                              requires_grad=True) for fraction, _ in levels]
        optimiser = torch.optim.Adam(deltas, lr=lr)

        def corrected():
            return base + sum(scale * upsample(delta, size) for delta, (_, scale) in zip(deltas, levels))

        for _ in range(steps):
            # sum over images, mean within each: an image's steps do not depend on which others share its batch
            loss = ((standardise(encode(corrected())) - target) ** 2).flatten(1).mean(1).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            bar.update()
        with torch.no_grad():
            out.append(corrected().cpu())
    bar.close()
    return torch.cat(out)


def upsample(delta: torch.Tensor, size: int) -> torch.Tensor:
    """A correction level at the image's size (bicubic; a full-resolution level as it is)."""
    if delta.shape[-1] == size:
        return delta
    return nn.functional.interpolate(delta, size=(size, size), mode="bicubic", align_corners=False)
