"""Train a decoder on cached features: MSE in normalised image space; the decoder kept is the one with the lowest
validation loss (the study's), or with `checkpoint: last` the last epoch's."""
from __future__ import annotations

import copy
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from .data import atomic_save, clamp_to_images, normalise
from .decoders import FeatureStandardise, FeedbackDecoder, build_decoder, count_parameters

# Feedback stages learn at this fraction of the decoder's learning rate (measured at half: random ResNet34 layer1).
FEEDBACK_LR = 0.5


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


def mean_colours(images: np.ndarray, chunk: int = 64) -> torch.Tensor:
    """Each uint8 NHWC image's mean colour in the decoders' (ImageNet-normalised) space, N x 3."""
    return torch.cat([normalise(images[s : s + chunk]).mean(dim=(2, 3)) for s in range(0, len(images), chunk)])


def contiguous_groups(count: int, folds: int = 4) -> torch.Tensor:
    """Fold of each of `count` images in store order, where one photo's views sit next to each other."""
    return torch.arange(count) * folds // max(count, 1)


def fit_to_training_data(decoder: nn.Module, features: torch.Tensor, images: np.ndarray, groups: torch.Tensor) -> None:
    """What a decoder takes from its training set before any gradient step: per-channel feature statistics,
    and for resshuffle at coarse grids the closed-form colour and linear paths (cross-validated over `groups`)."""
    for module in decoder.modules():
        if isinstance(module, FeatureStandardise):
            module.fit(features)
    if getattr(decoder, "closed_form_start", False):
        decoder.fit_linear_start(features, images, groups)


def _fingerprint(features: torch.Tensor, images: np.ndarray) -> tuple:
    """Cheap identity of the training data, so a saved state is only resumed on the same data."""
    return tuple(features.shape), float(features.flatten(1)[:, :64].double().sum()), int(images[:, ::7, ::7].sum())


@torch.no_grad()
def evaluate_loss(decoder: nn.Module, features: torch.Tensor, images: np.ndarray, device, batch_size: int) -> float:
    """Validation MSE (normalised space) of the reconstructions as evaluation scores them: clamped to the image range."""
    decoder.eval()
    total = 0.0
    for start in range(0, len(features), batch_size):
        x = features[start : start + batch_size].to(device)
        y = normalise(images[start : start + batch_size]).to(device)
        total += nn.functional.mse_loss(clamp_to_images(decoder(x)), y, reduction="sum").item() / y[0].numel()
    return total / len(features)


class OnlineAugmentation:
    """The study's train-time augmentation: random `crop` + horizontal flip (p=0.5) of each resized image,
    encoded by the frozen encoder on the fly (features of augmented views cannot be cached exactly)."""

    def __init__(self, extractor, layer: str, images: list[np.ndarray], crop: int):
        self.extractor, self.layer, self.images, self.crop = extractor, layer, images, crop

    def batch(self, index: torch.Tensor, generator: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
        crops = []
        for i in index.tolist():
            image = self.images[i]
            top = int(torch.randint(0, image.shape[0] - self.crop + 1, (1,), generator=generator))
            left = int(torch.randint(0, image.shape[1] - self.crop + 1, (1,), generator=generator))
            view = image[top : top + self.crop, left : left + self.crop]
            crops.append(view[:, ::-1] if torch.rand((), generator=generator) < 0.5 else view)
        y = normalise(np.stack(crops)).to(device)
        self.extractor.to(device)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            x = self.extractor(y)[self.layer].float()
        return x, y


def train_decoder(
    settings: dict,
    train_features: torch.Tensor,
    train_images: np.ndarray,
    val_features: torch.Tensor,
    val_images: np.ndarray,
    progress: bool = True,
    resume_file: Path | None = None,
    augmentation: OnlineAugmentation | None = None,
    perceptual: nn.Module | None = None,
    groups: torch.Tensor | None = None,
    encode=None,
):
    """Returns (best decoder on CPU, history DataFrame, info dict).

    `settings` holds decoder, epochs, batch_size, lr, weight_decay, width, schedule, device and seed, and optionally
    checkpoint ("best", the default, or "last").
    Images are uint8 N x 224 x 224 x 3 centre crops; the target is their ImageNet-normalised tensor.
    With `augmentation`, training batches are augmented views encoded on the fly instead (the cached
    centre-crop features still fix the feature standardisation and the data fingerprint).
    With `settings["perceptual_weight"]` w > 0, the loss is MSE + w x `perceptual(output, target)` (an LPIPS
    module); validation loss and checkpoint selection stay MSE, so runs remain comparable.

    With `settings["feedback"]` k > 0, k feedback stages follow the decoder kept (`FeedbackDecoder`), each trained
    `feedback_epochs` on the cached training features; `encode` (normalised images -> the layer's features, on the
    training device) is the frozen encoder they query. They are not resumed: a killed run redoes them.

    `groups`: cross-validation fold of each training image for the closed-form start (default: contiguous
    quarters, as one photo's views sit together); colour copies of an image belong in its fold.

    With `resume_file`, the complete training state (decoder, optimiser, scheduler, batch-order RNG, history,
    best checkpoint) is saved atomically after every epoch, and a run started with the same settings
    continues after the last completed epoch: on CPU the result is bit-identical to an uninterrupted run.
    """
    from tqdm import tqdm  # text bars: readable in logs and in executed notebooks

    device = pick_device(settings["device"])
    seed_everything(settings["seed"])
    channels, grid = train_features.shape[1], train_features.shape[2]
    decoder = build_decoder(settings["decoder"], channels, grid, settings["width"])
    groups = contiguous_groups(len(train_features)) if groups is None else groups
    fit_to_training_data(decoder, train_features, train_images, groups)
    decoder.to(device)
    weight = settings.get("perceptual_weight", 0.0)
    if weight > 0:
        if perceptual is None:
            raise ValueError("perceptual_weight > 0 needs a perceptual loss module (LPIPS with real AlexNet weights).")
        perceptual.to(device)
    optimiser = torch.optim.AdamW(decoder.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    batch_size = min(settings["batch_size"], len(train_features))
    steps_per_epoch = math.ceil(len(train_features) / batch_size)
    total_steps = settings["epochs"] * steps_per_epoch
    if settings["schedule"] == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, _lr_lambda(total_steps, max(1, total_steps // 20)))
    else:  # the study's: Adam + ReduceLROnPlateau on validation loss
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5, patience=3)
    order_rng = torch.Generator().manual_seed(settings["seed"])
    augment_rng = torch.Generator().manual_seed(settings["seed"] + 1)
    history, best, first_epoch, spent = [], (float("inf"), None, 0), 1, 0.0
    fingerprint = _fingerprint(train_features, train_images) if resume_file is not None else None
    if resume_file is not None and Path(resume_file).is_file():
        state = torch.load(resume_file, map_location=device, weights_only=False)
        if state["settings"] == settings and state["data"] == fingerprint:
            decoder.load_state_dict(state["decoder"])
            optimiser.load_state_dict(state["optimiser"])
            scheduler.load_state_dict(state["scheduler"])
            order_rng.set_state(state["order_rng"])
            augment_rng.set_state(state["augment_rng"])
            history, best, spent = state["history"], state["best"], state["seconds"]
            start_loss = state.get("start_val_loss", float("nan"))
            first_epoch = state["epoch"] + 1
            print(f"resuming {settings.get('arch', '')} {settings.get('layer', '')} after epoch {state['epoch']}")
    if first_epoch == 1:  # the starting point is a candidate too (for resshuffle: its closed-form colour path)
        start_loss = evaluate_loss(decoder, val_features, val_images, device, batch_size)
        best = (start_loss, copy.deepcopy(decoder.state_dict()), 0)
    started = time.perf_counter() - spent
    bar = tqdm(range(first_epoch, settings["epochs"] + 1), initial=first_epoch - 1, total=settings["epochs"],
               desc=f"train {settings.get('arch', '')} {settings.get('layer', '')}".strip(), disable=not progress)
    for epoch in bar:
        decoder.train()
        running, seen = 0.0, 0
        for index in torch.randperm(len(train_features), generator=order_rng).split(batch_size):
            if len(index) < 2 and len(train_features) >= 2:
                continue  # BatchNorm needs two samples; the last singleton batch is skipped
            if augmentation is not None:
                x, y = augmentation.batch(index, augment_rng, device)
            else:
                x = train_features[index].to(device)
                y = normalise(train_images[index.numpy()]).to(device)
            output = decoder(x)
            loss = nn.functional.mse_loss(output, y)
            if weight > 0:
                loss = loss + weight * perceptual(output, y)
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
        if device.type == "cpu" and epoch == first_epoch and settings["epochs"] > epoch:
            remaining = (time.perf_counter() - started - spent) * (settings["epochs"] - epoch)
            if remaining > 600:
                warnings.warn(f"training on CPU: about {remaining / 60:.0f} more minutes for this layer "
                              f"({settings['epochs'] - epoch} epochs left); a CUDA GPU makes it minutes.")
        if resume_file is not None:
            atomic_save(
                {"settings": settings, "data": fingerprint, "epoch": epoch, "decoder": decoder.state_dict(), "optimiser": optimiser.state_dict(),
                 "scheduler": scheduler.state_dict(), "order_rng": order_rng.get_state(), "augment_rng": augment_rng.get_state(), "history": history,
                 "best": best, "seconds": time.perf_counter() - started, "start_val_loss": start_loss},
                resume_file,
            )
    if settings.get("checkpoint", "best") == "last" and history:
        best = (history[-1]["val_loss"], decoder.state_dict(), history[-1]["epoch"])  # the decoder as training left it
    decoder.load_state_dict(best[1])
    feedback_losses = []
    if settings.get("feedback", 0):
        decoder, feedback_losses = fit_feedback(decoder, settings, train_features, train_images, val_features, val_images,
                                                encode, device, progress)
    decoder.to("cpu").eval()
    info = {
        "train_seconds": time.perf_counter() - started,
        "best_epoch": best[2],
        "best_val_loss": best[0],
        "start_val_loss": start_loss,  # the untrained start's (closed-form for coarse resshuffle): did training help?
        "decoder_params": count_parameters(decoder),
        "device": str(device),
        "feedback_val_loss": feedback_losses,  # validation MSE after each feedback stage
    }
    return decoder, pd.DataFrame(history), info


def fit_feedback(base: nn.Module, settings: dict, train_features: torch.Tensor, train_images: np.ndarray,
                 val_features: torch.Tensor, val_images: np.ndarray, encode, device, progress: bool = True):
    """Wrap `base` in a FeedbackDecoder with `settings["feedback"]` stages and train them one after another, each
    for `feedback_epochs` on what the stages before it leave. Returns (decoder, validation MSE after each stage)."""
    from tqdm import tqdm

    if encode is None:
        raise ValueError("feedback stages need the layer's encoder (encode=...).")
    channels, grid = train_features.shape[1], train_features.shape[2]
    decoder = FeedbackDecoder(base, channels, grid, settings["feedback"]).attach(encode).to(device)
    order = torch.Generator().manual_seed(settings["seed"] + 2)
    batch_size = min(settings["batch_size"], len(train_features))
    losses = []
    name = f"{settings.get('arch', '')} {settings.get('layer', '')}".strip()
    inputs = None
    for stage in range(1, settings["feedback"] + 1):
        steps = settings["feedback_epochs"] * math.ceil(len(train_features) / batch_size)
        with tqdm(total=steps, desc=f"feedback {stage}/{settings['feedback']} {name}".strip(), disable=not progress) as bar:
            inputs = feedback_inputs(decoder, stage - 1, train_features, device, previous=inputs)
            train_feedback_stage(decoder, stage, train_features, train_images, inputs, settings["lr"], batch_size, order,
                                 device, epochs=settings["feedback_epochs"], weight_decay=settings["weight_decay"],
                                 on_step=lambda loss: bar.update(1))
        losses.append(evaluate_loss(decoder, val_features, val_images, device, batch_size))
    return decoder, losses


def train_feedback_stage(decoder, stage: int, features: torch.Tensor, images: np.ndarray, inputs, lr: float,
                         batch_size: int, generator: torch.Generator, device, **budget) -> tuple[int, int]:
    """Train refiner `stage` (1-based) of a FeedbackDecoder on its `inputs` (`feedback_inputs`): its feature
    standardisation, then `train_until` at FEEDBACK_LR x `lr` with `budget` (deadline or epochs, and its other
    keywords). Returns (steps, epochs)."""
    current, residuals = inputs
    refiner = decoder.refiners[stage - 1]
    refiner.features.fit(features), refiner.residual.fit(residuals)
    return train_until(refiner, lambda index: (tuple(t[index].to(device) for t in (features, residuals, current)),
                                               normalise(images[index.numpy()]).to(device)),
                       len(features), lr * FEEDBACK_LR, batch_size, generator, **budget)


def train_until(module: nn.Module, batch, count: int, lr: float, batch_size: int, generator: torch.Generator,
                deadline: float | None = None, epochs: int | None = None, weight_decay: float = 1e-4,
                on_step=None) -> tuple[int, int]:
    """AdamW on MSE until the wall clock (`time.perf_counter()`) reaches `deadline`, or for `epochs`, with a cosine
    schedule (and a short warm-up) spanning the time left at the call or the steps, so any budget converges.
    `batch(index)` gives (inputs tuple, target) for those of the `count` samples. Returns (steps, epochs)."""
    if (deadline is None) == (epochs is None):
        raise ValueError("train_until needs a deadline or a number of epochs, not both.")
    optimiser = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    batch_size = min(batch_size, count)
    start = time.perf_counter()
    total_steps = None if epochs is None else epochs * math.ceil(count / batch_size)
    span = None if deadline is None else max(deadline - start, 1e-9)
    steps, done_epochs = 0, 0
    while (time.perf_counter() < deadline) if epochs is None else done_epochs < epochs:
        done_epochs += 1
        module.train()
        for index in torch.randperm(count, generator=generator).split(batch_size):
            fraction = (time.perf_counter() - start) / span if epochs is None else steps / total_steps
            if fraction >= 1:
                break
            if len(index) < 2:
                continue  # BatchNorm needs two samples
            factor = min(1.0, fraction / 0.03) * 0.5 * (1 + math.cos(math.pi * fraction))
            for group in optimiser.param_groups:
                group["lr"] = lr * max(factor, 1e-3)
            inputs, target = batch(index)
            loss = nn.functional.mse_loss(module(*inputs), target)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            steps += 1
            if on_step is not None:
                on_step(loss.item())
    module.eval()
    return steps, done_epochs


@torch.no_grad()
def feedback_inputs(decoder, stage: int, features: torch.Tensor, device=None, previous=None,
                    batch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """What refiner `stage` (0-based count of the stages before it) of a FeedbackDecoder sees for each sample: the
    reconstruction the stages before it leave, and its residual in the layer's features, computed once (those
    stages are frozen by then). With `previous`, the (images, residuals) the stage before saw, only that stage
    runs: one refiner pass and one encoder pass per sample instead of all of them again."""
    decoder.eval()
    images, residuals = [], []
    for s in range(0, len(features), batch_size):
        f = features[s : s + batch_size].to(device)
        if previous is None:
            image = decoder(f, stages=stage)
        else:
            image = decoder.refiners[stage - 1](f, previous[1][s : s + batch_size].to(device),
                                                previous[0][s : s + batch_size].to(device))
        images.append(image.cpu())
        residuals.append(decoder.residual(f, image).cpu())
    return torch.cat(images), torch.cat(residuals)


@torch.no_grad()
def reconstruct(decoder: nn.Module, features: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """Decoder outputs (normalised space) for all features, on CPU."""
    decoder.eval()
    return torch.cat([decoder(features[s : s + batch_size]) for s in range(0, len(features), batch_size)])
