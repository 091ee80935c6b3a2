import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from lib import ROOT, config, data
from lib.data import DataError

DEMO = config.resolve("demo")["data"]


def test_demo_split_is_by_source_photo_with_enough_distinct_views():
    entries = data.make_split(DEMO, 42)
    splits_of_source = {}
    for e in entries:
        splits_of_source.setdefault(e.source, set()).add(e.split)
    assert all(len(s) == 1 for s in splits_of_source.values()), "a source photo appears in two splits"
    keys = {(e.file, e.box) for e in entries}
    assert len(keys) == len(entries) >= 64, "views must be distinct"
    counts = data.split_counts(entries)
    assert counts["train"] > counts["test"] > 0 and counts["val"] > 0
    # Test and validation photos are natural colour photos (scientific and grey images train only); the stereo
    # pair stays together.
    natural = {s for s, _, kind in data.SKIMAGE_PHOTOS if kind == "natural"}
    assert {e.source for e in entries if e.split != "train"} <= natural == set(data.NATURAL_SOURCES)
    assert {"chelsea", "coffee", "astronaut", "rocket", "motorcycle", "grace_hopper"} == natural
    assert {e.source for e in entries if e.split == "train"} >= {"hubble_deep_field", "ihc", "retina", "camera"}
    assert len({e.split for e in entries if e.source == "motorcycle"}) == 1


def test_split_is_deterministic_for_a_seed_and_changes_with_it():
    first = data.make_split(DEMO, 42)
    assert first == data.make_split(DEMO, 42)
    test_sources = lambda entries: {e.source for e in entries if e.split == "test"}
    assert any(test_sources(data.make_split(DEMO, seed)) != test_sources(first) for seed in range(5))


def test_limit_caps_each_split():
    entries = data.make_split({**DEMO, "limit": 3}, 42)
    assert data.split_counts(entries) == {"train": 3, "val": 3, "test": 3}


def test_views_are_resized_to_the_protocol_size():
    entry = data.make_split(DEMO, 42)[0]
    view = data.load_view(entry, 256)
    assert view.shape == (256, 256, 3) and view.dtype == np.uint8
    crop = data.center_crop(view, 224)
    assert crop.shape == (224, 224, 3)
    np.testing.assert_array_equal(crop, view[16:240, 16:240])


def test_resize_keeps_aspect_and_sets_the_shorter_side():
    image = Image.new("RGB", (600, 400))
    assert data.resize_shorter(image, 256).size == (384, 256)


def test_manifest_round_trip(tmp_path):
    entries = data.make_split(DEMO, 42)
    data.write_manifest(entries, tmp_path / "split.csv")
    assert data.read_manifest(tmp_path / "split.csv") == entries
    assert not list(tmp_path.glob(".*tmp"))


def test_unreadable_image_is_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DataError, match="cannot read image '.*broken.png'"):
        data.read_rgb(bad)


def test_truncated_image_is_named(tmp_path):
    good = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    good.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataError, match="cut.png"):
        data.read_rgb(good)


def test_a_div2k_dir_without_div2k_is_refused(tmp_path):
    with pytest.raises(DataError, match="no DIV2K_train_HR or DIV2K_valid_HR folder in .*DIV2K_DIR"):
        data.make_split({**config.resolve("paper")["data"], "div2k_dir": str(tmp_path)}, 42)


def test_div2k_split_sizes_from_a_local_folder(tmp_path):
    for folder, names in ((data.DIV2K_TRAIN, range(1, 21)), (data.DIV2K_VALID, range(21, 26))):
        (tmp_path / folder).mkdir()
        for n in names:
            Image.new("RGB", (300, 260), (n, 0, 0)).save(tmp_path / folder / f"{n:04d}.png")
    settings = {**config.resolve("paper")["data"], "div2k_dir": str(tmp_path), "val_images": 4}
    entries = data.make_split(settings, 42)
    assert data.split_counts(entries) == {"train": 16, "val": 4, "test": 5}
    assert entries == data.make_split(settings, 42)
    assert {e.image for e in entries if e.split == "test"} == {f"{n:04d}" for n in range(21, 26)}
    # The same manifest in another process (no dependence on hash seeds or process state).
    code = ("import json, sys; from lib import data; "
            "print(json.dumps([(e.image, e.split) for e in data.make_split(json.loads(sys.argv[1]), 42)]))")
    other = subprocess.run([sys.executable, "-c", code, json.dumps(settings)], cwd=ROOT, capture_output=True,
                           text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "123"})
    assert json.loads(other.stdout) == [[e.image, e.split] for e in entries]


def test_normalise_is_imagenet_normalisation():
    batch = np.full((1, 4, 4, 3), 255, dtype=np.uint8)
    x = data.normalise(batch)
    assert x.shape == (1, 3, 4, 4)
    expected = [(1 - m) / s for m, s in zip(data.IMAGENET_MEAN, data.IMAGENET_STD)]
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), expected, rtol=1e-6)
