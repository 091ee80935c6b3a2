"""Which decoder training keeps: the one with the lowest validation loss (`best`), or the last epoch's (`last`)."""
import numpy as np
import pandas as pd
import pytest
import torch

from lib import training


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
