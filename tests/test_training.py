"""Which decoder training keeps: the one with the lowest validation loss (`best`), or the last epoch's (`last`)."""
import numpy as np
import pandas as pd
import pytest
import torch

from lib import data, training


def test_checkpoint_best_keeps_lowest_validation_loss_and_last_keeps_the_last_epoch():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 224, 224, 3), dtype=np.uint8)
    features = torch.randn(6, 8, 7, 7)
    # a high learning rate on 4 random images: the validation loss on the other 2 goes up and down
    settings = {"decoder": "resshuffle", "epochs": 5, "batch_size": 2, "lr": 5e-2, "weight_decay": 0.0, "width": 16,
                "schedule": "cosine", "device": "cpu", "seed": 0}
    runs = {}
    for keep in ("best", "last"):
        runs[keep] = training.train_decoder({**settings, "checkpoint": keep}, features[:4], images[:4], features[4:], images[4:],
                                            progress=False)
    (best, history, info), (last, history_last, info_last) = runs["best"], runs["last"]
    columns = ["epoch", "train_loss", "val_loss"]
    pd.testing.assert_frame_equal(history[columns], history_last[columns])  # same run, only the decoder kept differs

    val_loss = lambda decoder: training.evaluate_loss(decoder, features[4:], images[4:], torch.device("cpu"), 2)
    assert info_last["best_epoch"] == 5 and val_loss(last) == pytest.approx(history["val_loss"].iloc[-1], rel=1e-5)
    assert info["best_epoch"] < 5 and info["best_val_loss"] < history["val_loss"].iloc[-1]
    assert info["best_val_loss"] <= history["val_loss"].min()  # epoch 0, the untrained start, is a candidate too
    assert val_loss(best) == pytest.approx(info["best_val_loss"], rel=1e-5)
    # the untrained start's validation loss is recorded, and `best` keeps it only if no epoch did better
    assert info["start_val_loss"] == info_last["start_val_loss"] >= info["best_val_loss"]
    assert (info["best_epoch"] == 0) == (info["start_val_loss"] <= history["val_loss"].min())


def test_closed_form_paths_stay_as_fitted_and_gradient_steps_train_the_deep_path():
    """At coarse grids the colour and linear paths are ridge fits: training moves only the deep path."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (8, 224, 224, 3), dtype=np.uint8)
    features = torch.randn(8, 8, 7, 7)
    settings = {"decoder": "resshuffle", "epochs": 2, "batch_size": 2, "lr": 1e-2, "weight_decay": 1e-2, "width": 16,
                "schedule": "cosine", "device": "cpu", "seed": 0, "checkpoint": "last"}
    trained, _, info = training.train_decoder(settings, features[:6], images[:6], features[6:], images[6:], progress=False)
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
