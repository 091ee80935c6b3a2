"""Which decoder training keeps: the one with the lowest validation loss (`best`), or the last epoch's (`last`)."""
import numpy as np
import pandas as pd
import pytest
import torch

from lib import data, training


def _scripted_loop(checkpoint: str, losses: list[float]):
    """train_loop on a linear module whose validation losses are `losses` (the start's first, then each epoch's):
    (result, the module's weights at the start, the module after training)."""
    module = torch.nn.Linear(3, 2)
    start = {k: v.clone() for k, v in module.state_dict().items()}
    scores = iter(losses)
    result = training.train_loop(module, lambda index: ((torch.randn(len(index), 3),), torch.randn(len(index), 2)), 8,
                                 lr=0.1, batch_size=4, generator=torch.Generator().manual_seed(0),
                                 epochs=len(losses) - 1, schedule="cosine", validate=lambda m: next(scores),
                                 checkpoint=checkpoint)
    return result, start, module


@pytest.mark.parametrize("checkpoint", ["best", "last"])
def test_no_decoder_is_kept_that_ends_worse_than_its_start(checkpoint):
    """`best` keeps the lowest validation loss, the start included; `last` the last epoch's unless the start scored
    lower: then the start, weights and all."""
    result, start, module = _scripted_loop(checkpoint, [1.0, 0.9, 0.8, 0.85])
    kept = {"best": (2, 0.8), "last": (3, 0.85)}[checkpoint]
    assert (result.best_epoch, result.best_val_loss, result.start_val_loss) == (*kept, 1.0)
    assert not torch.equal(module.weight, start["weight"])
    result, start, module = _scripted_loop(checkpoint, [0.5, 0.9, 0.8, 0.85])  # no epoch beat the start
    assert (result.best_epoch, result.best_val_loss) == (0, 0.5)
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, start[key], rtol=0, atol=0)


def test_still_falling_compares_the_last_quarter_of_epochs_with_the_best_before():
    assert training.still_falling(1.0, [0.8, 0.6, 0.5, 0.4]) is True  # the last epoch: 20% below 0.5
    assert training.still_falling(1.0, [0.8, 0.6, 0.5, 0.498]) is False  # 0.4%: within the 1% rule
    assert training.still_falling(1.0, [0.8, 0.6, 0.5, 0.55]) is False
    assert training.still_falling(1.0, [0.95]) is True  # one epoch: the start is what it is compared with
    assert training.still_falling(float("nan"), [0.5]) is None and training.still_falling(1.0, []) is None


def test_a_decoder_starts_at_its_training_images_mean_image():
    """Before any gradient step the default decoder outputs the training images' mean image plus its closed-form
    linear fit of what that mean leaves: on features that carry nothing, the mean image itself, near enough."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 224, 224, 3), dtype=np.uint8)
    decoder = training.build_decoder("resshuffle", 8, 56, 16)
    training.fit_to_training_data(decoder, torch.zeros(8, 8, 56, 56), images, training.contiguous_groups(8))
    mean = data.normalise(images).mean(0, keepdim=True)
    torch.testing.assert_close(decoder.mean_image, mean, rtol=0, atol=1e-5)  # float32 sums of 8 images
    output = decoder.eval()(torch.zeros(2, 8, 56, 56))
    torch.testing.assert_close(output, mean.expand(2, -1, -1, -1), rtol=0, atol=1e-4)


def test_closed_form_paths_stay_as_fitted_and_gradient_steps_train_the_deep_path():
    """The colour and linear paths are ridge fits: training moves only the deep path."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (8, 224, 224, 3), dtype=np.uint8)
    features = torch.randn(8, 8, 7, 7)
    settings = {"decoder": "resshuffle", "epochs": 2, "batch_size": 2, "lr": 1e-2, "weight_decay": 1e-2, "width": 16,
                "schedule": "cosine", "device": "cpu", "seed": 0, "checkpoint": "last", "feedback": 0}
    # no validation: on random features no epoch would beat the start, and the start would be kept
    fit = training.fit_decoder(settings, features[:6], images[:6], progress=False)
    trained, info = fit.decoder, fit.info
    fitted = training.build_decoder("resshuffle", 8, 7, 16)
    training.fit_to_training_data(fitted, features[:6], images[:6], training.contiguous_groups(6))
    for name in ("linear", "colour"):
        for (key, before), after in zip(getattr(fitted, name).state_dict().items(), getattr(trained, name).state_dict().values()):
            torch.testing.assert_close(after, before, rtol=0, atol=0, msg=f"{name}.{key} moved")
    assert any(p.abs().sum() > 0 for p in trained.body[-2].parameters())  # the deep path's zero start was trained
    assert info["decoder_params"] == sum(p.numel() for p in trained.parameters())  # fitted weights are counted too


def test_validation_loss_scores_reconstructions_clamped_to_the_image_range():
    """A decoder that overshoots white where the image is white loses nothing, as in the PSNR."""
    images = np.full((2, 224, 224, 3), 255, dtype=np.uint8)

    class Overshoot(torch.nn.Module):
        def forward(self, features):
            return torch.full((len(features), 3, 224, 224), 50.0)

    loss = training.evaluate_loss(Overshoot(), torch.zeros(2, 1, 7, 7), images, torch.device("cpu"), 2)
    assert loss == pytest.approx(0.0, abs=1e-10)
    black = data.clamp_to_images(torch.full((1, 3, 1, 1), -50.0)).flatten()
    torch.testing.assert_close(black, data.normalise(np.zeros((1, 1, 1, 3), np.uint8)).flatten())


def _regression(count=6, features=8):
    """A tiny learnable problem: a linear map of random inputs."""
    generator = torch.Generator().manual_seed(0)
    x, w = torch.randn(count * 4, features, generator=generator), torch.randn(features, 3, generator=generator)
    return x, x @ w


@pytest.mark.parametrize("schedule", ["cosine", "anneal"])
def test_the_one_loop_stops_after_its_epochs_and_learns(schedule):
    x, y = _regression()
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 3)
    before = torch.nn.functional.mse_loss(model(x), y).item()
    result = training.train_loop(model, lambda index: ((x[index],), y[index]), len(x), lr=0.1, batch_size=4,
                                 generator=torch.Generator().manual_seed(0), epochs=20, schedule=schedule)
    assert (result.epochs, result.steps) == (20, 120)
    assert torch.nn.functional.mse_loss(model(x), y).item() < before / 4


class TickingClock:
    """The training module's clock, advancing `tick` seconds each time it is read: a wall-clock budget's logic (when
    to stop, how the budget is shared) then does the same work on any machine, loaded or not."""

    def __init__(self, tick: float):
        self.now, self.tick = 0.0, tick

    def perf_counter(self) -> float:
        self.now += self.tick
        return self.now


def test_the_one_loop_stops_at_its_deadline(monkeypatch):
    clock = TickingClock(0.01)
    monkeypatch.setattr(training, "time", clock)
    x, y = _regression()
    model = torch.nn.Linear(8, 3)
    deadline = clock.perf_counter() + 0.3
    result = training.train_loop(model, lambda index: ((x[index],), y[index]), len(x), lr=0.01, batch_size=4,
                                 generator=torch.Generator().manual_seed(0), deadline=deadline)
    assert clock.now >= deadline and result.steps > 0 and result.epochs >= 1
    steps = result.steps  # the same budget, read the same number of times: the same work
    clock = TickingClock(0.01)
    monkeypatch.setattr(training, "time", clock)
    again = training.train_loop(torch.nn.Linear(8, 3), lambda index: ((x[index],), y[index]), len(x), lr=0.01,
                                batch_size=4, generator=torch.Generator().manual_seed(0),
                                deadline=clock.perf_counter() + 0.3)
    assert again.steps == steps


def test_the_one_loop_refuses_ambiguous_stops_and_schedules():
    model, batch = torch.nn.Linear(2, 1), lambda index: None
    for kwargs, message in (({}, "epochs or a deadline"), ({"epochs": 1, "deadline": 1.0}, "epochs or a deadline"),
                            ({"deadline": 1.0, "schedule": "cosine"}, "needs the anneal schedule"),
                            ({"epochs": 1, "checkpoint": "best"}, "needs a validation loss")):
        with pytest.raises(ValueError, match=message):
            training.train_loop(model, batch, 4, lr=0.1, batch_size=2, generator=torch.Generator(), **kwargs)


def test_a_wall_clock_budget_trains_the_decoder_and_its_feedback_stages(monkeypatch):
    """The benchmarks' budget: seconds shared by the base decoder and each feedback stage, through the same loop.
    On a ticking clock (a loaded machine once spent the 4 s before the first step, and the test failed)."""
    from lib.encoders import build_extractor, encode_images, layer_encoder

    monkeypatch.setattr(training, "time", TickingClock(0.05))

    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (6, 224, 224, 3), dtype=np.uint8)
    extractor = build_extractor("resnet34", ["layer4"], weights="random")
    features = encode_images(extractor, "layer4", images)
    settings = {"decoder": "resshuffle", "batch_size": 2, "lr": 2e-3, "weight_decay": 1e-4, "width": 16, "seed": 0,
                "device": "cpu", "feedback": 1, "schedule": "anneal", "checkpoint": "last"}
    fit = training.fit_decoder(settings, features, images, seconds=4, encode=layer_encoder(extractor, "layer4"),
                               progress=False)
    assert fit.info["steps"] > 0 and fit.info["epochs"] >= 1 and fit.info["feedback"] == 1
    assert len(fit.info["feedback_epochs"]) == 1 and fit.info["feedback_epochs"][0] >= 1
    assert fit.history.empty  # no validation set: nothing to choose an epoch by, the last is kept


def test_the_closed_form_fit_is_kept_only_where_it_beats_the_mean_image_on_validation():
    """Flat-coloured images whose features tell their colour: the fitted colour path carries over to validation
    images told the same way, and is kept; validation images whose features tell the opposite colour make it worse
    than the mean image alone, and the start falls back to the mean image."""
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (16, 3))
    images = np.broadcast_to(colours[:, None, None, :], (16, 224, 224, 3)).astype(np.uint8)
    features = torch.from_numpy(colours / 255.0).float()[:, :, None, None].expand(-1, -1, 7, 7).contiguous()
    settings = {"decoder": "resshuffle", "epochs": 1, "batch_size": 4, "lr": 1e-3, "weight_decay": 0.0, "width": 16,
                "schedule": "cosine", "device": "cpu", "seed": 0, "checkpoint": "last", "feedback": 0}
    told = training.fit_decoder(settings, features[:12], images[:12], features[12:], images[12:], progress=False)
    assert told.info["closed_form_paths"] == "fixed"
    mismatched = 1 - features[12:]  # each tells the opposite of its own colour
    misled = training.fit_decoder(settings, features[:12], images[:12], mismatched, images[12:], progress=False)
    assert misled.info["closed_form_paths"] == "zero"
    assert misled.decoder.linear.conv.weight.abs().sum() == 0 and misled.decoder.colour.weight.abs().sum() == 0
    # the start is the mean image, and so scores what the mean image scores on validation
    mean_only = training.build_decoder("resshuffle", 3, 7, 16)
    mean_only.fit_mean_image(images[:12])
    expected = training.evaluate_loss(mean_only, mismatched, images[12:], torch.device("cpu"), 4)
    assert misled.info["start_val_loss"] == pytest.approx(expected, rel=1e-6)


def test_a_feedback_stage_that_leaves_validation_worse_is_dropped(monkeypatch, tmp_path):
    """The feedback stage's start is the decoder before it: a stage scoring worse on validation is not kept."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 224, 224, 3), dtype=np.uint8)
    features = torch.randn(8, 4, 7, 7)
    settings = {"decoder": "resshuffle", "epochs": 1, "batch_size": 4, "lr": 1e-3, "weight_decay": 0.0, "width": 16,
                "schedule": "cosine", "device": "cpu", "seed": 0, "checkpoint": "last", "feedback": 1,
                "feedback_epochs": 1}
    encode = lambda image: torch.nn.functional.adaptive_avg_pool2d(image, 7)[:, :1].expand(-1, 4, -1, -1)  # noqa: E731
    original = training.evaluate_loss

    def evaluate_loss(decoder, *args):  # the stage's validation pass scores worse than anything before it
        if isinstance(decoder, training.FeedbackDecoder) and len(decoder.refiners):
            return 1e9
        return original(decoder, *args)

    monkeypatch.setattr(training, "evaluate_loss", evaluate_loss)
    fit = training.fit_decoder(settings, features[:6], images[:6], features[6:], images[6:], encode=encode,
                               progress=False)
    assert fit.info["feedback"] == 0 and fit.info["feedback_val_loss"] == [] and fit.info["feedback_epochs"] == []
    # every stage dropped: the decoder is its base, saved and loaded as one
    assert not isinstance(fit.decoder, training.FeedbackDecoder)
    from lib.steps.evaluate import load_decoder

    path = tmp_path / "decoder.pt"
    torch.save({"state_dict": fit.decoder.state_dict(), "settings": settings, **fit.info}, path)
    loaded, _ = load_decoder(path)
    torch.testing.assert_close(loaded(features[6:]), fit.decoder(features[6:]), rtol=0, atol=0)

    def better(decoder, *args):  # the stage's validation pass scores better than anything before it
        if isinstance(decoder, training.FeedbackDecoder) and len(decoder.refiners):
            return 1e-9
        return original(decoder, *args)

    monkeypatch.setattr(training, "evaluate_loss", better)
    kept = training.fit_decoder(settings, features[:6], images[:6], features[6:], images[6:], encode=encode,
                                progress=False)
    assert (kept.info["feedback"], kept.info["feedback_val_loss"], kept.info["feedback_epochs"]) == (1, [1e-9], [1])
    assert isinstance(kept.decoder, training.FeedbackDecoder) and len(kept.decoder.refiners) == 1
