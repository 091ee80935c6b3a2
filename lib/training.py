"""Train a decoder on cached features: MSE in normalised image space, best checkpoint by validation loss."""
from __future__ import annotations

import copy
import math
import time
import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn

from .data import normalise
from .decoders import FeatureStandardise, build_decoder, count_parameters


def pick_device(choice: str = "auto") -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA GPU is visible; use device: auto or cpu.")
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _lr_lambda(total_steps: int, warmup: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


@torch.no_grad()
def evaluate_loss(decoder: nn.Module, features: torch.Tensor, images: np.ndarray, device, batch_size: int) -> float:
    decoder.eval()
    total = 0.0
    for start in range(0, len(features), batch_size):
        x = features[start : start + batch_size].to(device)
        y = normalise(images[start : start + batch_size]).to(device)
        total += nn.functional.mse_loss(decoder(x), y, reduction="sum").item() / y[0].numel()
    return total / len(features)


def train_decoder(
    settings: dict,
    train_features: torch.Tensor,
    train_images: np.ndarray,
    val_features: torch.Tensor,
    val_images: np.ndarray,
    progress: bool = True,
    log=print,
):
    """Returns (best decoder on CPU, history DataFrame, info dict).

    `settings` holds decoder, epochs, batch_size, lr, weight_decay, width, schedule, device and seed.
    Images are uint8 N x 224 x 224 x 3 centre crops; the target is their ImageNet-normalised tensor.
    """
    from tqdm import tqdm  # text bars: readable in logs and in executed notebooks

    device = pick_device(settings["device"])
    if device.type == "cpu" and settings["epochs"] * len(train_features) > 50_000:
        warnings.warn("training on CPU: expect hours for this profile; a CUDA GPU makes it minutes.")
    seed_everything(settings["seed"])
    channels, grid = train_features.shape[1], train_features.shape[2]
    decoder = build_decoder(settings["decoder"], channels, grid, settings["width"])
    for module in decoder.modules():
        if isinstance(module, FeatureStandardise):
            module.fit(train_features)
    decoder.to(device)
    optimiser = torch.optim.AdamW(decoder.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    batch_size = min(settings["batch_size"], len(train_features))
    steps_per_epoch = math.ceil(len(train_features) / batch_size)
    total_steps = settings["epochs"] * steps_per_epoch
    if settings["schedule"] == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, _lr_lambda(total_steps, max(1, total_steps // 20)))
    else:  # the study's: Adam + ReduceLROnPlateau on validation loss
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5, patience=3)
    order_rng = torch.Generator().manual_seed(settings["seed"])
    history, best = [], (float("inf"), None, 0)
    started = time.perf_counter()
    bar = tqdm(range(1, settings["epochs"] + 1), desc=f"train {settings.get('arch', '')} {settings.get('layer', '')}".strip(), disable=not progress)
    for epoch in bar:
        decoder.train()
        running, seen = 0.0, 0
        for index in torch.randperm(len(train_features), generator=order_rng).split(batch_size):
            if len(index) < 2 and len(train_features) >= 2:
                continue  # BatchNorm needs two samples; the last singleton batch is skipped
            x = train_features[index].to(device)
            y = normalise(train_images[index.numpy()]).to(device)
            loss = nn.functional.mse_loss(decoder(x), y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if settings["schedule"] == "cosine":
                scheduler.step()
            running += loss.item() * len(index)
            seen += len(index)
        val_loss = evaluate_loss(decoder, val_features, val_images, device, batch_size)
        if settings["schedule"] != "cosine":
            scheduler.step(val_loss)
        train_loss = running / max(1, seen)
        history.append(
            {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": optimiser.param_groups[0]["lr"],
             "seconds": time.perf_counter() - started}
        )
        if val_loss < best[0]:
            best = (val_loss, copy.deepcopy(decoder.state_dict()), epoch)
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
    decoder.load_state_dict(best[1])
    decoder.to("cpu").eval()
    info = {
        "train_seconds": time.perf_counter() - started,
        "best_epoch": best[2],
        "best_val_loss": best[0],
        "decoder_params": count_parameters(decoder),
        "device": str(device),
    }
    return decoder, pd.DataFrame(history), info


@torch.no_grad()
def reconstruct(decoder: nn.Module, features: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """Decoder outputs (normalised space) for all features, on CPU."""
    decoder.eval()
    return torch.cat([decoder(features[s : s + batch_size]) for s in range(0, len(features), batch_size)])
