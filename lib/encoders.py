"""Frozen ImageNet encoders and the registry that maps (architecture, layer) to a feature extractor.

`build_extractor(arch, layers, weights=...)` returns a module whose forward gives {layer: NCHW features}
for every requested layer in one pass, stopping after the deepest one. Encoders are always frozen: eval
mode, no gradients, and `.train()` cannot switch them back.

Weights policies: `imagenet` (required: cache or download, else one clear error), `random` (seeded
random initialisation), `auto` (ImageNet when cached or downloadable, otherwise random, and says so).
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .registry import TORCHVISION_WEIGHTS_URL, VIT_HF_REPO, check_layer, get_architecture

VGG16_POOL_INDEX = {"block1": 4, "block2": 9, "block3": 16, "block4": 23, "block5": 30}


class WeightsError(RuntimeError):
    """ImageNet weights required but neither cached nor downloadable."""


@dataclass(frozen=True)
class WeightsInfo:
    kind: str  # "imagenet" | "random"
    detail: str  # where they came from, or why random


def torch_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time (HF_HUB_CACHE, else HF_HOME/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"


def _download(url: str, target: Path, timeout: float = 15.0) -> None:
    """Download to a .partial file, check torchvision's sha256 prefix in the name, then move into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
        for chunk in iter(lambda: response.read(1 << 20), b""):
            digest.update(chunk)
            out.write(chunk)
    prefix = target.stem.rsplit("-", 1)[-1]
    if not digest.hexdigest().startswith(prefix):
        partial.rename(target.with_name(target.name + ".bad"))
        raise WeightsError(f"{url} downloaded with the wrong sha256 (expected prefix {prefix}); set aside as .bad.")
    partial.replace(target)


def torchvision_weights(file: str, policy: str) -> tuple[dict | None, WeightsInfo]:
    """State dict from the torch cache (or a download), or None with the reason, by policy."""
    path = torch_checkpoint_dir() / file
    if policy == "random":
        return None, WeightsInfo("random", "random initialisation (weights policy: random)")
    if not path.is_file() and os.environ.get("FEATINV_OFFLINE") != "1":
        try:
            _download(TORCHVISION_WEIGHTS_URL.format(file=file), path)
        except (OSError, WeightsError) as error:
            reason = f"{file} not in {path.parent} and not downloadable ({error})"
            if policy == "imagenet":
                raise WeightsError(
                    f"ImageNet weights required: {reason}. Put the file at {path} "
                    f"(download {TORCHVISION_WEIGHTS_URL.format(file=file)}) or set TORCH_HOME to a cache holding it."
                ) from None
            return None, WeightsInfo("random", f"random initialisation: {reason}")
    if not path.is_file():
        if policy == "imagenet":
            raise WeightsError(f"ImageNet weights required: {file} not in {path.parent} (offline).")
        return None, WeightsInfo("random", f"random initialisation: {file} not in {path.parent} (offline)")
    return torch.load(path, map_location="cpu", weights_only=True), WeightsInfo("imagenet", str(path))


def _reachable(url: str, timeout: float = 5.0) -> bool:
    """One quick request, so an offline machine is not held up by the hub client's retries."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
        return True
    except urllib.error.HTTPError:  # the host answered
        return True
    except OSError:
        return False


def _vit_weights_file(policy: str) -> tuple[str | None, WeightsInfo]:
    from huggingface_hub import try_to_load_from_cache

    if policy == "random":
        return None, WeightsInfo("random", "random initialisation (weights policy: random)")
    cached = try_to_load_from_cache(VIT_HF_REPO, "model.safetensors", cache_dir=hf_cache_dir())
    if isinstance(cached, str):
        return cached, WeightsInfo("imagenet", f"{VIT_HF_REPO} from {cached}")
    reason = f"{VIT_HF_REPO} not in {hf_cache_dir()}"
    if os.environ.get("FEATINV_OFFLINE") != "1" and _reachable("https://huggingface.co"):
        try:
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(VIT_HF_REPO, "model.safetensors", cache_dir=hf_cache_dir())
            return path, WeightsInfo("imagenet", f"{VIT_HF_REPO} from {path}")
        except Exception as error:  # any hub failure means: not downloadable from here
            reason += f" and the download failed ({type(error).__name__})"
    else:
        reason += " and the hub is not reachable"
    if policy == "imagenet":
        raise WeightsError(
            f"ImageNet weights required: {reason}. Run once with internet, or set HF_HOME to a cache holding "
            f"models--{VIT_HF_REPO.replace('/', '--')}."
        )
    return None, WeightsInfo("random", f"random initialisation: {reason}")


class FrozenExtractor(nn.Module):
    """Base: frozen backbone; subclasses implement `features(x) -> {layer: NCHW}`."""

    def __init__(self, backbone: nn.Module, layers: list[str], weights: WeightsInfo):
        super().__init__()
        self.backbone = backbone
        self.layers = list(layers)
        self.weights = weights
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True):  # the encoder is frozen: never leave eval mode
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.features(x)


class ResNetExtractor(FrozenExtractor):
    def features(self, x):
        net, out = self.backbone, {}
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(net, name)(x)
            if name in self.layers:
                out[name] = x
                if len(out) == len(self.layers):
                    break
        return out


class VGGExtractor(FrozenExtractor):
    def features(self, x):
        stop = {VGG16_POOL_INDEX[layer]: layer for layer in self.layers}
        out = {}
        for index, module in enumerate(self.backbone.features):
            x = module(x)
            if index in stop:
                out[stop[index]] = x
                if len(out) == len(self.layers):
                    break
        return out


class ViTExtractor(FrozenExtractor):
    def features(self, x):
        indices = [int(layer.removeprefix("block")) for layer in self.layers]
        # Output of block N before the final norm, class token dropped, 196 tokens as 768x14x14.
        maps = self.backbone.forward_intermediates(
            x, indices=indices, norm=False, stop_early=True, output_fmt="NCHW", intermediates_only=True
        )
        return dict(zip(self.layers, maps))


TORCHVISION_EXTRACTORS = {"resnet34": ResNetExtractor, "vgg16": VGGExtractor}


def _local_weights(path: str, arch: str):
    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsError(f"weights_file for {arch}: '{file}' does not exist.")
    info = WeightsInfo("imagenet", f"local file {file}")
    if arch == "vit_base_patch16_224":
        return str(file), info
    return torch.load(file, map_location="cpu", weights_only=True), info


def build_extractor(arch: str, layers: list[str], weights: str = "auto", seed: int = 0,
                    weights_file: str = "") -> FrozenExtractor:
    """The registry: one frozen extractor giving every requested layer of `arch` in one forward pass.

    `weights_file` points at a local checkpoint (torchvision state dict, or timm safetensors for the ViT)
    and takes precedence over the caches.
    """
    spec = get_architecture(arch)
    for layer in layers:
        check_layer(arch, layer)
    layers = [l for l in spec.layer_names if l in layers]  # network order
    torch.manual_seed(seed)  # random initialisation is part of the experiment: make it repeatable
    if spec.family == "torchvision":
        import torchvision

        state, info = _local_weights(weights_file, arch) if weights_file else torchvision_weights(spec.weights_file, weights)
        net = getattr(torchvision.models, arch)(weights=None)
        if state is not None:
            net.load_state_dict(state)
        return TORCHVISION_EXTRACTORS[arch](net, layers, info)
    if arch == "vit_base_patch16_224":
        import timm

        file, info = _local_weights(weights_file, arch) if weights_file else _vit_weights_file(weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if file is None:
                net = timm.create_model(arch, pretrained=False)
            else:
                net = timm.create_model(arch, pretrained=True, pretrained_cfg_overlay=dict(file=file))
        return ViTExtractor(net, layers, info)
    raise AssertionError(f"registry has no builder for {arch}")  # registry and builders out of sync


def layer_encoder(extractor, layer: str, differentiable: bool = False):
    """Normalised images -> the layer's features, on the images' device: what feedback stages query. With
    `differentiable`, gradients flow back to the images (the encoder's own weights stay frozen): feature matching."""
    def encode(image: torch.Tensor) -> torch.Tensor:
        extractor.to(image.device)
        return (extractor.features(image) if differentiable else extractor(image))[layer].float()
    return encode


@torch.no_grad()
def encode_images(extractor, layer: str, images: np.ndarray, batch_size: int = 16, pooled: bool = False) -> torch.Tensor:
    """uint8 N x H x W x 3 images -> the layer's features (N x C x g x g), or with `pooled` their per-image means
    (N x C x 1 x 1), pooled batch by batch so that many images of a fine layer never sit in memory at full size."""
    from .data import normalise

    batches = (extractor(normalise(images[s : s + batch_size]))[layer].float() for s in range(0, len(images), batch_size))
    return torch.cat([x.mean(dim=(2, 3), keepdim=True) if pooled else x for x in batches])
