"""The one training loop, and the decoder fit the study steps and the benchmarks both train through.

`train_loop` runs AdamW on MSE until a stop condition: a number of epochs, or a wall-clock deadline. It owns the
learning-rate schedule, per-epoch validation, checkpoint choice and resume. `fit_decoder` builds a decoder, fits
what it takes from its training data in closed form, trains it through `train_loop`, then trains its feedback stages
through the same loop. Its budget is `epochs` (the study: settings
`epochs` and `feedback_epochs`) or `seconds` of wall clock shared equally by the base decoder and each feedback
stage (`make bench-quality MINUTES=`: not deterministic, so never what a profile runs).
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from .data import clamp_to_images, normalise
from .decoders import FeedbackDecoder, build_decoder, count_parameters
from .io import save_torch

# Feedback stages learn at this fraction of the decoder's learning rate.
FEEDBACK_LR = 0.5
SCHEDULES = ("cosine", "plateau", "anneal")


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


def cosine_factor(step: int, total_steps: int) -> float:
    """`cosine`: linear warm-up over the first 5% of the steps, then a cosine to zero at the last."""
    warmup = max(1, total_steps // 20)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def anneal_factor(fraction: float) -> float:
    """`anneal`: a cosine over the fraction of the budget spent (steps, or seconds when the stop is a deadline and
    the step count is unknown), a 3% warm-up, and a floor of 1e-3 so late steps still move."""
    return max(min(1.0, fraction / 0.03) * 0.5 * (1 + math.cos(math.pi * fraction)), 1e-3)


@dataclass
class LoopResult:
    history: list[dict] = field(default_factory=list)  # one row per epoch: epoch, train_loss, val_loss, lr, seconds
    best_epoch: int = 0  # the epoch whose weights were kept (0: the start)
    best_val_loss: float = float("nan")
    start_val_loss: float = float("nan")  # validation loss before any gradient step
    steps: int = 0
    images: int = 0  # training images seen over all steps
    epochs: int = 0
    seconds: float = 0.0


def train_loop(module: nn.Module, batch: Callable, count: int, *, lr: float, batch_size: int,
               generator: torch.Generator, epochs: int | None = None, deadline: float | None = None,
               schedule: str = "anneal", weight_decay: float = 1e-4,
               validate: Callable[[nn.Module], float] | None = None, checkpoint: str = "last",
               resume_file: Path | None = None, resume_key=None, rngs: dict[str, torch.Generator] | None = None,
               on_step: Callable[[float], None] | None = None, on_epoch: Callable[[dict], None] | None = None,
               warn_cpu: bool = False) -> LoopResult:
    """Train `module` with AdamW on the MSE between `module(*inputs)` and the target, `batch(index)` giving
    (inputs tuple, target) for those of the `count` samples, in shuffled batches drawn with `generator`.

    Stop: after `epochs`, or when the wall clock (`time.perf_counter()`) reaches `deadline`; exactly one.
    Schedule: `cosine` (per step; needs epochs), `plateau` (the study's ReduceLROnPlateau on the validation loss) or
    `anneal` (`anneal_factor`; the one schedule a deadline allows).
    `validate(module)` -> loss, after every epoch and once before the first: with `checkpoint` "best" the module ends
    with the weights of the lowest validation loss (the start included), with "last" as training left it unless its
    start scored lower on validation: then the start (no decoder is kept that is worse than where it began).
    `resume_file`: the whole state (module, optimiser, schedule, the generators in `rngs`, history, best) is saved
    atomically after every epoch, and a run with the same `resume_key` continues after the last completed epoch:
    on CPU bit-identical to an uninterrupted run.
    """
    if (epochs is None) == (deadline is None):
        raise ValueError("train_loop needs a number of epochs or a deadline, not both.")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule '{schedule}'; choose one of {', '.join(SCHEDULES)}.")
    if deadline is not None and schedule != "anneal":
        raise ValueError(f"a wall-clock deadline needs the anneal schedule, not '{schedule}' (its steps are unknown).")
    if (checkpoint == "best" or schedule == "plateau") and validate is None:
        raise ValueError(f"checkpoint '{checkpoint}' with schedule '{schedule}' needs a validation loss.")
    rngs = {"order": generator, **(rngs or {})}
    optimiser = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5, patience=3) if schedule == "plateau" else None
    batch_size = min(batch_size, count)
    total_steps = None if epochs is None else epochs * math.ceil(count / batch_size)
    result, best_state, start_state, first_epoch, spent = LoopResult(), None, None, 1, 0.0
    if resume_file is not None and Path(resume_file).is_file():
        state = torch.load(resume_file, map_location=next(module.parameters()).device, weights_only=False)
        if state["key"] == resume_key:
            module.load_state_dict(state["module"])
            optimiser.load_state_dict(state["optimiser"])
            if plateau is not None:
                plateau.load_state_dict(state["plateau"])
            for name, rng in rngs.items():
                rng.set_state(state["rngs"][name])
            result, best_state, spent = state["result"], state["best_state"], state["seconds"]
            start_state = state.get("start_state")  # None in a state saved before starts were kept
            first_epoch = result.epochs + 1
            print(f"resuming after epoch {result.epochs}")
    if first_epoch == 1 and validate is not None:  # the starting point is a candidate too
        result.start_val_loss = result.best_val_loss = validate(module)
        best_state = copy.deepcopy(module.state_dict())
        start_state = best_state
    started = time.perf_counter() - spent
    span = None if deadline is None else max(deadline - time.perf_counter(), 1e-9)

    def fraction() -> float:
        """The share of the budget spent: steps, or seconds when the stop is a deadline."""
        return result.steps / total_steps if deadline is None else (time.perf_counter() - started) / span

    def lr_factor(spent: float) -> float:
        return cosine_factor(result.steps, total_steps) if schedule == "cosine" else anneal_factor(spent)

    def more() -> bool:
        return result.epochs < epochs if deadline is None else time.perf_counter() < deadline

    while more():
        result.epochs += 1
        module.train()
        running, seen = 0.0, 0
        for index in torch.randperm(count, generator=generator).split(batch_size):
            spent = fraction()
            if schedule == "anneal" and spent >= 1:
                break
            if len(index) < 2 and count >= 2:
                continue  # BatchNorm needs two samples; the last singleton batch is skipped
            if plateau is None:
                for group in optimiser.param_groups:
                    group["lr"] = lr * lr_factor(spent)
            inputs, target = batch(index)
            output = module(*inputs)
            loss = nn.functional.mse_loss(output, target)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            result.steps += 1
            result.images += len(index)
            running += loss.item() * len(index)
            seen += len(index)
            if on_step is not None:
                on_step(loss.item())
        if validate is None:
            continue
        val_loss = validate(module)
        if plateau is not None:
            plateau.step(val_loss)
        row = {"epoch": result.epochs, "train_loss": running / max(1, seen), "val_loss": val_loss,
               "lr": optimiser.param_groups[0]["lr"] if plateau is not None else lr * lr_factor(fraction()),
               "seconds": time.perf_counter() - started}
        result.history.append(row)
        if val_loss < result.best_val_loss:
            result.best_val_loss, result.best_epoch, best_state = val_loss, result.epochs, copy.deepcopy(module.state_dict())
        if on_epoch is not None:
            on_epoch(row)
        if warn_cpu and result.epochs == first_epoch and epochs is not None and epochs > result.epochs:
            remaining = (time.perf_counter() - started - spent) * (epochs - result.epochs)
            if remaining > 600:
                warnings.warn(f"training on CPU: about {remaining / 60:.0f} more minutes for this layer "
                              f"({epochs - result.epochs} epochs left); a CUDA GPU makes it minutes.")
        if resume_file is not None:
            save_torch({"key": resume_key, "module": module.state_dict(), "optimiser": optimiser.state_dict(),
                        "plateau": plateau.state_dict() if plateau is not None else None,
                        "rngs": {name: rng.get_state() for name, rng in rngs.items()}, "result": result,
                        "best_state": best_state, "start_state": start_state,
                        "seconds": time.perf_counter() - started}, resume_file)
    last = result.history[-1]["val_loss"] if result.history else None
    if checkpoint == "last" and last is not None and start_state is not None and not last <= result.start_val_loss:
        # training ended worse than its start on validation (or diverged): the start is kept
        result.best_epoch, result.best_val_loss = 0, result.start_val_loss
        module.load_state_dict(start_state)
    elif checkpoint == "last":  # the module as training left it
        result.best_epoch = result.epochs
        if last is not None:
            result.best_val_loss = last
    elif checkpoint == "best" and best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    result.seconds = time.perf_counter() - started
    return result


# A decoder's budget ended while it was still learning when the best validation loss of its last quarter of epochs
# is more than this fraction below the best before them (the start included): more steps would likely have helped.
STILL_FALLING = 0.01


def still_falling(start_val_loss: float, val_losses: list[float]) -> bool | None:
    """Whether validation loss was still falling when training stopped (`STILL_FALLING`); None without validation."""
    if not val_losses or math.isnan(start_val_loss):
        return None
    if any(math.isnan(loss) for loss in val_losses):  # diverged: not settled, whatever the order of the NaNs
        return True
    tail = max(1, math.ceil(len(val_losses) / 4))
    before = min([start_val_loss, *val_losses[:-tail]])
    return bool(min(val_losses[-tail:]) < (1 - STILL_FALLING) * before)


def closed_form_paths(decoder) -> str:
    """A decoder's closed-form colour and linear paths: "fixed" (fitted, and they stay as fitted), "zero" (fitted,
    then dropped: the mean image alone did better on validation, `choose_start`), or "none" (a decoder without
    them: the study's)."""
    base = decoder.base if isinstance(decoder, FeedbackDecoder) else decoder
    if not hasattr(base, "closed_form_start"):
        return "none"
    return "fixed" if base.closed_form_start else "zero"


def mean_colours(images: np.ndarray, chunk: int = 64) -> torch.Tensor:
    """Each uint8 NHWC image's mean colour in the decoders' (ImageNet-normalised) space, N x 3."""
    return torch.cat([normalise(images[s : s + chunk]).mean(dim=(2, 3)) for s in range(0, len(images), chunk)])


def contiguous_groups(count: int, folds: int = 4) -> torch.Tensor:
    """Fold of each of `count` images in store order, where one photo's views sit next to each other."""
    return torch.arange(count) * folds // max(count, 1)


def fit_to_training_data(decoder: nn.Module, features: torch.Tensor, images: np.ndarray,
                         groups: torch.Tensor) -> dict | None:
    """What a decoder takes from its training set before any gradient step, in this order: for resshuffle, the
    features' per-channel statistics (its input standardisation at `decoders.STANDARDISED_GRIDS`, feature matching's weights), its
    mean image, then the closed-form colour and linear paths on the inputs so standardised (cross-validated over
    `groups`; their fit's record is returned, None where there is none)."""
    if hasattr(decoder, "fit_statistics"):
        decoder.fit_statistics(features)
    if hasattr(decoder, "fit_mean_image"):
        decoder.fit_mean_image(images)
    if getattr(decoder, "closed_form_start", False):
        return decoder.fit_linear_start(features, images, groups)
    return None


@torch.no_grad()
def choose_start(decoder, validate: Callable[[nn.Module], float]) -> None:
    """Keep a resshuffle decoder's closed-form colour and linear paths only where they beat its mean image alone on
    validation: a fit that does not carry over to new photos (the deepest layers, few training photos) would start
    the decoder below the no-information baseline. Otherwise the paths are zeroed, and the start is the mean image."""
    fitted = validate(decoder)
    paths = (decoder.linear.conv, decoder.colour)
    kept = [copy.deepcopy(path.state_dict()) for path in paths]
    for path in paths:
        path.weight.zero_(), path.bias.zero_()
    if validate(decoder) >= fitted:
        for path, state in zip(paths, kept):
            path.load_state_dict(state)
    else:
        decoder.closed_form_start = False  # what `closed_form_paths` reports: the mean image, no fitted paths


def _layout(module: nn.Module) -> tuple:
    """Each tensor of a module's state, by name and shape: a saved state of another decoder layout (an older
    version's) is not resumed from."""
    return tuple((name, tuple(value.shape)) for name, value in module.state_dict().items())


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


@dataclass
class FitResult:
    decoder: nn.Module  # on CPU, in eval mode
    history: pd.DataFrame
    info: dict


def fit_decoder(settings: dict, train_features: torch.Tensor, train_images: np.ndarray,
                val_features: torch.Tensor | None = None, val_images: np.ndarray | None = None, *,
                seconds: float | None = None, encode=None, groups: torch.Tensor | None = None,
                augmentation: OnlineAugmentation | None = None,
                resume_file: Path | None = None, progress: bool = True) -> FitResult:
    """Build the decoder `settings` name (decoder, width, seed, lr, weight_decay, batch_size, schedule, checkpoint,
    device, feedback, and with an epoch budget epochs and feedback_epochs), fit its closed-form
    start, and train it through `train_loop`, then each of its `feedback` stages on what the stages before leave.

    Budget: `seconds` of wall clock from the call, shared equally by the base decoder (closed-form start included)
    and each feedback stage (its inputs included; a stage with no time left is dropped); else the settings' epochs.
    Validation (`val_features`, `val_images`) scores the base decoder every epoch and the model after each stage.
    `encode` (normalised images -> the layer's features) is the frozen encoder the feedback stages query.
    `groups`: cross-validation fold of each training image for the closed-form start (default: contiguous quarters,
    as one photo's views sit together); the in-domain control's copies of one test image share a fold.
    `augmentation`: training batches are augmented views encoded on the fly (the cached centre-crop features still
    fix the closed-form start).
    `resume_file`: the base decoder's training resumes after its last completed epoch (feedback stages redo).
    """
    from tqdm import tqdm  # text bars: readable in logs and in executed notebooks

    started = time.perf_counter()
    deadline = (lambda stage: started + seconds * (stage + 1) / (settings["feedback"] + 1)) if seconds else None  # noqa: E731
    device = pick_device(settings["device"])
    seed_everything(settings["seed"])
    channels, grid = train_features.shape[1], train_features.shape[2]
    base = build_decoder(settings["decoder"], channels, grid, settings["width"], settings.get("depth"))
    fit_to_training_data(base, train_features, train_images,
                         contiguous_groups(len(train_features)) if groups is None else groups)
    fit_seconds = time.perf_counter() - started
    base.to(device)
    batch_size = min(settings["batch_size"], len(train_features))
    validate = None
    if val_features is not None:
        validate = lambda module: evaluate_loss(module, val_features, val_images, device, batch_size)  # noqa: E731
        if getattr(base, "closed_form_start", False):
            choose_start(base, validate)
    order = torch.Generator().manual_seed(settings["seed"])
    augment_rng = torch.Generator().manual_seed(settings["seed"] + 1)
    def base_batch(index):
        if augmentation is not None:
            x, y = augmentation.batch(index, augment_rng, device)
            return (x,), y
        return (train_features[index].to(device),), normalise(train_images[index.numpy()]).to(device)
    name = f"{settings.get('arch', '')} {settings.get('layer', '')}".strip()
    budget = dict(deadline=deadline(0), schedule="anneal") if seconds else dict(epochs=settings["epochs"],
                                                                               schedule=settings["schedule"])
    bar = tqdm(total=int(seconds) if seconds else settings["epochs"], unit="s" if seconds else "epoch",
               desc=f"train {name}".strip(), mininterval=5 if seconds else 0.1, disable=not progress)
    on_step = on_epoch = None
    if seconds:
        def on_step(loss):
            bar.update(int(time.perf_counter() - started) - bar.n)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
    else:
        def on_epoch(row):
            bar.update(1)
            bar.set_postfix(train=f"{row['train_loss']:.4f}", val=f"{row['val_loss']:.4f}")
    loop = train_loop(base, base_batch, len(train_features), lr=settings["lr"], batch_size=batch_size, generator=order,
                      weight_decay=settings["weight_decay"], validate=validate,
                      checkpoint=settings.get("checkpoint", "last") if validate is not None else "last",
                      resume_file=resume_file, resume_key=(settings, _fingerprint(train_features, train_images), _layout(base)),
                      rngs={"augment": augment_rng}, on_step=on_step, on_epoch=on_epoch,
                      warn_cpu=device.type == "cpu", **budget)
    if not seconds:
        bar.close()  # feedback stages show their own bars; a wall-clock bar spans them too
    decoder, stage_losses, stage_epochs, built = base, [], [], count_parameters(base)
    if settings.get("feedback", 0):
        decoder, stage_losses, stage_epochs, built = _fit_feedback(base, settings, train_features, train_images, encode, device,
                                                            batch_size, validate, deadline, on_step, progress, name,
                                                            loop.best_val_loss)
    if seconds:
        bar.close()
    decoder.to("cpu").eval()
    info = {
        "train_seconds": time.perf_counter() - started,
        "fit_seconds": fit_seconds,  # the closed-form start
        "epochs": loop.epochs,
        "steps": loop.steps,
        "batch_size": batch_size,  # as trained: at most the training set
        "images_seen": loop.images,  # the budget, in images
        "best_epoch": loop.best_epoch,
        "best_val_loss": loop.best_val_loss,
        # whether any epoch beat the untrained start on validation, and whether the budget ended while it still fell
        "improved_on_start": None if math.isnan(loop.start_val_loss) else any(
            row["val_loss"] < loop.start_val_loss for row in loop.history),
        "still_falling": still_falling(loop.start_val_loss, [row["val_loss"] for row in loop.history]),
        "start_val_loss": loop.start_val_loss,  # the untrained start's (resshuffle: mean image + closed-form fit)
        # as built: every feedback stage asked for counted, kept or dropped (what `decoder_params` matching sizes)
        "decoder_params": built,
        "feature_shape": list(train_features.shape[1:]),
        "closed_form_paths": closed_form_paths(decoder),
        "device": str(device),
        "feedback": len(decoder.refiners) if isinstance(decoder, FeedbackDecoder) else 0,
        "feedback_epochs": stage_epochs,  # epochs each feedback stage trained
        "feedback_val_loss": stage_losses,  # validation MSE after each feedback stage
    }
    return FitResult(decoder, pd.DataFrame(loop.history), info)


def _fit_feedback(base: nn.Module, settings: dict, features: torch.Tensor, images: np.ndarray, encode, device,
                  batch_size: int, validate, deadline, on_step, progress: bool, name: str, base_val_loss: float):
    """Wrap `base` in a FeedbackDecoder with `settings["feedback"]` stages and train them one after another through
    `train_loop`, each on what the stages before it leave. A stage that leaves the validation loss above what the
    decoder before it scored (`base_val_loss` for the first) is dropped with those after it, as a decoder is never kept
    worse than its start. Returns (decoder, validation losses of the stages kept, epochs per stage kept, parameters
    of the decoder as built with every stage)."""
    from tqdm import tqdm

    if encode is None:
        raise ValueError("feedback stages need the layer's encoder (encode=...).")
    channels, grid = features.shape[1], features.shape[2]
    decoder = FeedbackDecoder(base, channels, grid, settings["feedback"]).attach(encode).to(device)
    built = count_parameters(decoder)
    order = torch.Generator().manual_seed(settings["seed"] + 2)
    losses, epochs, inputs, input_seconds = [], [], None, 0.0
    for stage in range(1, settings["feedback"] + 1):
        if deadline is not None and time.perf_counter() + input_seconds >= deadline(stage):
            del decoder.refiners[stage - 1 :]  # its inputs would take its whole share: the budget holds
            break
        started_inputs = time.perf_counter()
        inputs = feedback_inputs(decoder, stage - 1, features, device, previous=inputs)
        input_seconds = time.perf_counter() - started_inputs
        current, residuals = inputs
        refiner = decoder.refiners[stage - 1]
        refiner.features.fit(features), refiner.residual.fit(residuals)
        batch = lambda index: (tuple(t[index].to(device) for t in (features, residuals, current)),  # noqa: E731
                               normalise(images[index.numpy()]).to(device))
        if deadline is not None:
            budget, step_bar = dict(deadline=deadline(stage)), None
        else:
            budget = dict(epochs=settings["feedback_epochs"])
            step_bar = tqdm(total=settings["feedback_epochs"] * math.ceil(len(features) / batch_size),
                            desc=f"feedback {stage}/{settings['feedback']} {name}".strip(), disable=not progress)
        loop = train_loop(refiner, batch, len(features), lr=settings["lr"] * FEEDBACK_LR, batch_size=batch_size,
                          generator=order, weight_decay=settings["weight_decay"], schedule="anneal",
                          on_step=on_step if step_bar is None else (lambda loss: step_bar.update(1)), **budget)
        if step_bar is not None:
            step_bar.close()
        if loop.steps == 0 and deadline is not None:  # no time was left for it: an untrained stage is dropped
            del decoder.refiners[stage - 1 :]
            break
        if validate is not None:
            loss = validate(decoder)
            if not loss <= (losses[-1] if losses else base_val_loss):
                del decoder.refiners[stage - 1 :]
                break
            losses.append(loss)
        epochs.append(loop.epochs)
    if not len(decoder.refiners):  # every stage dropped: the decoder is its base, saved and loaded as one
        return base, losses, epochs, built
    return decoder, losses, epochs, built


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
