"""Metrics exactly as the study: on denormalised RGB in [0,1], 224x224, mean and std over test images.

Scoring in ImageNet-normalised space is impossible by construction: every metric takes `Pixels`, which
can only be made by reversing the normalisation and clamping (`Pixels.from_normalised`) or from uint8
images (`Pixels.from_uint8`); a raw tensor is refused with a TypeError.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from .data import imagenet_mean_std

_PRIVATE = object()


class Pixels:
    """A batch of RGB images, N x 3 x H x W float in [0, 1]: the only thing metrics accept."""

    def __init__(self, values: torch.Tensor, _token=None):
        if _token is not _PRIVATE:
            raise TypeError("make Pixels with Pixels.from_normalised(...) or Pixels.from_uint8(...)")
        self.values = values

    @classmethod
    def from_normalised(cls, x: torch.Tensor) -> "Pixels":
        """Reverse the ImageNet normalisation, then clamp to [0, 1]."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected N x 3 x H x W, got {tuple(x.shape)}")
        mean, std = imagenet_mean_std(x.device)
        return cls((x.detach().float() * std + mean).clamp(0, 1).cpu(), _PRIVATE)

    @classmethod
    def from_uint8(cls, images: np.ndarray) -> "Pixels":
        """uint8 N x H x W x 3 -> Pixels."""
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 N x H x W x 3, got {images.dtype} {images.shape}")
        return cls(torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255, _PRIVATE)

    def __len__(self):
        return self.values.shape[0]

    def numpy_hwc(self) -> np.ndarray:
        return self.values.permute(0, 2, 3, 1).numpy()

    def to_uint8(self) -> np.ndarray:
        return (self.numpy_hwc() * 255 + 0.5).astype(np.uint8)


def _pair(a, b) -> tuple[torch.Tensor, torch.Tensor]:
    for x in (a, b):
        if not isinstance(x, Pixels):
            raise TypeError(
                f"metrics take Pixels (denormalised, clamped RGB in [0,1]), got {type(x).__name__}; "
                "wrap decoder outputs with Pixels.from_normalised"
            )
    if a.values.shape != b.values.shape:
        raise ValueError(f"shape mismatch: {tuple(a.values.shape)} vs {tuple(b.values.shape)}")
    return a.values.double(), b.values.double()


def mse(a: Pixels, b: Pixels) -> np.ndarray:
    x, y = _pair(a, b)
    return ((x - y) ** 2).mean(dim=(1, 2, 3)).numpy()


def psnr(a: Pixels, b: Pixels) -> np.ndarray:
    """10 log10(1 / MSE), data range 1; identical images give inf."""
    with np.errstate(divide="ignore"):
        return 10 * np.log10(1.0 / mse(a, b))


def ssim(a: Pixels, b: Pixels) -> np.ndarray:
    """scikit-image SSIM, channels last, data_range 1 (its default 7x7 window)."""
    _pair(a, b)
    return np.array(
        [structural_similarity(x, y, channel_axis=-1, data_range=1.0) for x, y in zip(a.numpy_hwc(), b.numpy_hwc())]
    )


class LPIPSScorer:
    """LPIPS (AlexNet) with inputs in [-1, 1]. Built only from real AlexNet weights: never a random trunk."""

    def __init__(self, alexnet_state: dict):
        """`alexnet_state`: torchvision's AlexNet state dict (alexnet-owt-7be5be79.pth)."""
        import lpips

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False).eval()
        state = alexnet_state
        with torch.no_grad():
            for name, parameter in self.model.net.named_parameters():
                _, index, kind = name.split(".")  # slice1.0.weight <- features.0.weight
                parameter.copy_(state[f"features.{index}.{kind}"])

    @torch.no_grad()
    def __call__(self, a: Pixels, b: Pixels, batch: int = 16) -> np.ndarray:
        x, y = _pair(a, b)
        out = []
        for start in range(0, len(x), batch):
            d = self.model(x[start : start + batch].float() * 2 - 1, y[start : start + batch].float() * 2 - 1)
            out.append(d.flatten().numpy())
        return np.concatenate(out).astype(np.float64)


def mean_colour_baseline(target: Pixels) -> Pixels:
    """Every pixel set to the image's own mean colour: what a decoder that learnt nothing spatial gets."""
    return Pixels(target.values.mean(dim=(2, 3), keepdim=True).expand_as(target.values).clone(), _PRIVATE)


def mean_image_baseline(mean_image: torch.Tensor, count: int) -> Pixels:
    """The no-information baseline: the training images' mean image (3 x H x W in [0, 1]) for every one of `count`
    images, what a decoder that learnt nothing from the features outputs at best under MSE."""
    if mean_image.ndim != 3 or mean_image.shape[0] != 3:
        raise ValueError(f"expected a 3 x H x W mean image, got {tuple(mean_image.shape)}")
    return Pixels(mean_image.float().clamp(0, 1)[None].expand(count, -1, -1, -1).clone(), _PRIVATE)


def thumbnail_baseline(target: Pixels, grid: int) -> Pixels:
    """Area-downsample to the layer's grid, bicubic back up: the information a grid x grid colour map holds."""
    size = target.values.shape[-1]
    small = F.interpolate(target.values, size=(grid, grid), mode="area")
    return Pixels(F.interpolate(small, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1), _PRIVATE)


@torch.no_grad()
def feature_error(extractor, layer: str, candidate: Pixels, target_features: torch.Tensor, batch: int = 16) -> np.ndarray:
    """Per image, how far `candidate` lies from the original in the layer's own features: ||f(candidate) - f(original)||
    / ||f(original)||, with `target_features` = f(original) (N x C x g x g). `candidate`: one image per original, or
    one image for all of them (the mean image), encoded once. A control for what PSNR cannot say: where a
    reconstruction trails a baseline in PSNR yet is closer in the layer's features, the pixels it misses are ones the
    layer hardly encodes, and no decoder of these features alone can be told them.
    """
    return feature_errors_at(extractor, candidate, {layer: target_features}, batch)[layer]


def feature_errors_at(extractor, candidate: Pixels, targets: dict[str, torch.Tensor], batch: int = 16) -> dict[str, np.ndarray]:
    """`feature_error` of `candidate` at each of several layers of one encoder in one pass (`targets`: layer -> the
    originals' features there), per layer."""
    from .data import normalise

    images = candidate.to_uint8()  # as the original was encoded: from uint8 pixels
    count = len(next(iter(targets.values())))
    if len(images) not in (1, count):
        raise ValueError(f"{len(images)} candidate images for {count} originals: give one per original or one for all")
    one = extractor(normalise(images)) if len(images) == 1 else None
    out: dict[str, list] = {layer: [] for layer in targets}
    for start in range(0, count, batch):
        features = one if one is not None else extractor(normalise(images[start : start + batch]))
        for layer, target in targets.items():
            original = target[start : start + batch].double().flatten(1)
            distance = (features[layer].double().flatten(1) - original).norm(dim=1)
            out[layer].append((distance / original.norm(dim=1).clamp_min(1e-12)).numpy())
    return {layer: np.concatenate(parts) for layer, parts in out.items()}


def baseline_feature_errors(extractor_for, targets: dict[str, torch.Tensor], target: Pixels,
                            mean_image: torch.Tensor) -> dict[str, dict[str, np.ndarray]]:
    """`feature_error` of each baseline of images `target` at each layer (`targets`: layer -> the images' features
    there), sharing the encoder's passes between layers: the mean image (one image) and the images' mean colours go
    through one encoder for every layer, each thumbnail through one for the layers on its grid.
    `extractor_for(layers)`: a frozen encoder giving those layers (`FrozenExtractor.narrowed`: a pass then runs no
    deeper than its layers, where the network allows it).
    Returns layer -> {baseline_<name>_feature_error: per-image errors}. What the evaluate step scores, whether the
    baselines step computed it for all of an architecture's layers or the evaluation for one."""
    extractors: dict[tuple, object] = {}

    def encoder(layers: list[str]):
        key = tuple(sorted(layers))
        if key not in extractors:
            extractors[key] = extractor_for(list(layers))
        return extractors[key]

    out: dict[str, dict[str, np.ndarray]] = {layer: {} for layer in targets}
    shared = {"mean_image": mean_image_baseline(mean_image, 1), "mean_colour": mean_colour_baseline(target)}
    for name, candidate in shared.items():
        for layer, errors in feature_errors_at(encoder(list(targets)), candidate, targets).items():
            out[layer][f"baseline_{name}_feature_error"] = errors
    by_grid: dict[int, list[str]] = {}
    for layer, features in targets.items():
        by_grid.setdefault(features.shape[-1], []).append(layer)
    for grid, layers in by_grid.items():
        # one grid (ViT-B/16): `layers` are all of them, and the encoder above serves again
        errors = feature_errors_at(encoder(layers), thumbnail_baseline(target, grid),
                                   {layer: targets[layer] for layer in layers})
        for layer in layers:
            out[layer]["baseline_thumbnail_feature_error"] = errors[layer]
    return out


def score(recon: Pixels, target: Pixels, lpips_scorer: LPIPSScorer | None = None) -> dict[str, np.ndarray]:
    """Per-image PSNR, SSIM, MSE and LPIPS (NaN where LPIPS is unavailable)."""
    n = len(target)
    return {
        "psnr": psnr(recon, target),
        "ssim": ssim(recon, target),
        "mse": mse(recon, target),
        "lpips": lpips_scorer(recon, target) if lpips_scorer is not None else np.full(n, np.nan),
    }
