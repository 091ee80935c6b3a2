"""A training run killed with SIGKILL continues from its last completed epoch and ends bit-identical."""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import torch

from lib import ROOT, config, data
from lib.steps import data as data_step, encode, fetch, train

EPOCHS = 12


def prepare(root, **layer_settings):
    """The tiny profile's resnet34 layer1 planned (with `layer_settings`), fetched, split and encoded under `root`."""
    study = config.resolve("tiny", config.parse_overrides({"ARCH": "resnet34", "LAYERS": "layer1"}))
    study["architectures"]["resnet34"]["layers"]["layer1"].update(layer_settings)
    config.write_plan(study, root)
    fetch.run(root), data_step.run(root, progress=False), encode.run(root, "resnet34", progress=False)
    return root


def train_command(root):
    return [sys.executable, "-c", "from lib.steps import train; train.run(%r, 'resnet34', 'layer1', progress=False)" % str(root)]


def test_killed_training_resumes_bit_identical(tmp_path):
    # With the study's augmentation: random crops and flips drawn from a generator that is checkpointed too.
    reference = prepare(tmp_path / "reference" / "tiny", epochs=EPOCHS, augment=True)
    resumed = tmp_path / "resumed" / "tiny"
    shutil.copytree(reference, resumed)
    train.run(reference, "resnet34", "layer1", progress=False)

    state = resumed / "resnet34" / "layer1" / "training_state.pt"
    process = subprocess.Popen(train_command(resumed), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    while process.poll() is None:  # until the kill below, or the run's own end (then the assertion says so)
        if state.exists() and 2 <= torch.load(state, weights_only=False)["result"].epochs < EPOCHS - 2:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = torch.load(state, weights_only=False)["result"].epochs
    assert not (state.parent / "decoder.pt").exists()

    done = subprocess.run(train_command(resumed), cwd=ROOT, capture_output=True, text=True, check=True)
    assert f"resuming after epoch {killed_at}" in done.stdout
    assert not state.exists()  # finished runs leave only their results
    a = torch.load(reference / "resnet34" / "layer1" / "decoder.pt", weights_only=False)
    b = torch.load(resumed / "resnet34" / "layer1" / "decoder.pt", weights_only=False)
    assert a["best_epoch"] == b["best_epoch"] and a["best_val_loss"] == b["best_val_loss"]
    assert a["start_val_loss"] == b["start_val_loss"] > 0  # the start, measured before the kill, survives it
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    columns = ["epoch", "train_loss", "val_loss", "lr"]
    history = lambda root: pd.read_csv(root / "resnet34" / "layer1" / "history.csv")[columns]
    pd.testing.assert_frame_equal(history(reference), history(resumed))


def test_a_saved_state_is_ignored_when_settings_change(tmp_path):
    root = prepare(tmp_path / "tiny")
    folder = root / "resnet34" / "layer1"
    folder.mkdir(parents=True)
    torch.save({"key": ({"epochs": 99}, None)}, folder / "training_state.pt")
    result = train.run(root, "resnet34", "layer1", progress=False)
    assert list(result["history"]["epoch"]) == [1]


def test_online_augmentation_crops_flips_and_encodes():
    from lib.encoders import build_extractor
    from lib.training import OnlineAugmentation

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (256, 300, 3), dtype=np.uint8) for _ in range(4)]
    extractor = build_extractor("resnet34", ["layer2"], weights="random")
    augmentation = OnlineAugmentation(extractor, "layer2", images, 224)
    index = torch.arange(4)
    x, y = augmentation.batch(index, torch.Generator().manual_seed(1), torch.device("cpu"))
    assert x.shape == (4, 128, 28, 28) and y.shape == (4, 3, 224, 224)
    x2, y2 = augmentation.batch(index, torch.Generator().manual_seed(1), torch.device("cpu"))
    assert torch.equal(y, y2) and torch.equal(x, x2)  # same generator state, same views
    _, y3 = augmentation.batch(index, torch.Generator().manual_seed(2), torch.device("cpu"))
    assert not torch.equal(y, y3)
    # Every view is a 224 crop of its image, possibly mirrored.
    crop = y[0].numpy()
    full = data.normalise(images[0][None])[0].numpy()
    found = any(np.allclose(crop, view[:, t:t + 224, l:l + 224])
                for view in (full, full[:, :, ::-1]) for t in range(33) for l in range(77))
    assert found
