"""The public names of the study: architectures, their layers and feature shapes, and weight files.

Torch-free on purpose: the Makefile's planning step validates names with it on every `make` call.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    name: str
    layers: dict[str, tuple[int, int, int]]  # layer -> (channels, height, width) at 224x224 input
    family: str  # which builder in lib.encoders makes it
    weights: str  # human-readable name of the ImageNet weights
    weights_file: str  # file name in the torch / HF cache

    @property
    def layer_names(self) -> list[str]:
        return list(self.layers)


ARCHITECTURES: dict[str, Architecture] = {
    "resnet34": Architecture(
        name="resnet34",
        layers={"layer1": (64, 56, 56), "layer2": (128, 28, 28), "layer3": (256, 14, 14), "layer4": (512, 7, 7)},
        family="torchvision",
        weights="torchvision ResNet34_Weights.IMAGENET1K_V1",
        weights_file="resnet34-b627a593.pth",
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
    ),
    "vit_base_patch16_224": Architecture(
        name="vit_base_patch16_224",
        # Output of transformer block N, class token dropped, 196 tokens as a 14x14 grid.
        layers={f"block{n}": (768, 14, 14) for n in (0, 1, 5, 8, 11)},
        family="timm",
        weights="timm vit_base_patch16_224.augreg2_in21k_ft_in1k",
        weights_file="model.safetensors",
    ),
}

# LPIPS's AlexNet trunk comes from torchvision's cache; its linear heads ship inside the lpips wheel.
ALEXNET_WEIGHTS_FILE = "alexnet-owt-7be5be79.pth"
TORCHVISION_WEIGHTS_URL = "https://download.pytorch.org/models/{file}"
VIT_HF_REPO = "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k"


class UnknownNameError(ValueError):
    """An architecture, layer, profile or parameter name that does not exist."""


def all_layers() -> list[tuple[str, str]]:
    """Every (architecture, layer) of the study, in network order."""
    return [(arch, layer) for arch, spec in ARCHITECTURES.items() for layer in spec.layer_names]


def did_you_mean(name: str, valid) -> str:
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def get_architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise UnknownNameError(
            f"unknown architecture '{name}'.{did_you_mean(name, ARCHITECTURES)} "
            f"Valid architectures: {', '.join(ARCHITECTURES)}."
        )
    return ARCHITECTURES[name]


def check_layer(arch: str, layer: str) -> tuple[int, int, int]:
    spec = get_architecture(arch)
    if layer not in spec.layers:
        raise UnknownNameError(
            f"unknown layer '{layer}' for architecture '{arch}'.{did_you_mean(layer, spec.layers)} "
            f"Valid layers of {arch}: {', '.join(spec.layers)}."
        )
    return spec.layers[layer]
