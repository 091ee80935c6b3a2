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


def test_16_bit_grey_png_keeps_its_gradient(tmp_path):
    # Pillow's convert("RGB") clips 16-bit grey to 255: the image read as blank white.
    gradient = np.tile(np.linspace(0, 65535, 256).round().astype(np.uint16), (8, 1))
    path = tmp_path / "gradient16.png"
    Image.fromarray(gradient).save(path)
    with Image.open(path) as saved:
        assert saved.mode.startswith("I")  # 16-bit PNG: "I;16" (or "I" on older Pillow)
    rgb = np.asarray(data.read_rgb(path))
    assert rgb.shape == (8, 256, 3) and rgb.dtype == np.uint8
    expected = (gradient >> 8).astype(np.uint8)  # the high byte, as Pillow decodes 16-bit colour PNGs
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], expected)
    assert rgb.min() == 0 and rgb.max() == 255 and len(np.unique(rgb)) == 256


def test_32_bit_int_and_float_grey_are_scaled_or_refused(tmp_path):
    values = np.array([[0, 255, 256, 32768, 65535]], dtype=np.int32)
    Image.fromarray(values).save(tmp_path / "int.tif")  # mode "I": 16-bit data in a 32-bit container
    np.testing.assert_array_equal(np.asarray(data.read_rgb(tmp_path / "int.tif"))[..., 1], [[0, 0, 1, 128, 255]])
    Image.fromarray(values * 2).save(tmp_path / "wide.tif")
    with pytest.raises(DataError, match=r"wide.tif.*does not fit 16 bits"):
        data.read_rgb(tmp_path / "wide.tif")

    unit = np.array([[0.0, 0.25, 0.5, 1.0]], dtype=np.float32)
    Image.fromarray(unit).save(tmp_path / "float.tif")  # mode "F"
    np.testing.assert_array_equal(np.asarray(data.read_rgb(tmp_path / "float.tif"))[..., 2], [[0, 64, 128, 255]])
    Image.fromarray(unit * 4).save(tmp_path / "hdr.tif")
    with pytest.raises(DataError, match=r"hdr.tif.*not in \[0, 1\]"):
        data.read_rgb(tmp_path / "hdr.tif")


def test_other_modes_read_as_8_bit_rgb(tmp_path):
    def read(image, name):
        image.save(tmp_path / name)
        with Image.open(tmp_path / name) as saved:
            assert saved.mode == image.mode
        rgb = np.asarray(data.read_rgb(tmp_path / name))
        assert rgb.dtype == np.uint8 and rgb.shape[2] == 3
        return rgb[0].tolist()

    grey = np.array([[0, 100, 255]], dtype=np.uint8)
    assert read(Image.fromarray(grey), "l.png") == [[0, 0, 0], [100, 100, 100], [255, 255, 255]]
    assert read(Image.fromarray(grey > 50), "one.png") == [[0, 0, 0], [255, 255, 255], [255, 255, 255]]
    # Alpha is dropped: the colour stored under each pixel is kept, however transparent.
    rgba = np.array([[[200, 100, 50, 255], [200, 100, 50, 128], [200, 100, 50, 0]]], dtype=np.uint8)
    assert read(Image.fromarray(rgba), "rgba.png") == [[200, 100, 50]] * 3
    la = np.array([[[200, 255], [40, 51], [0, 0]]], dtype=np.uint8)
    assert read(Image.fromarray(la, "LA"), "la.png") == [[200] * 3, [40] * 3, [0] * 3]
    palette = Image.fromarray(np.array([[0, 1, 2]], dtype=np.uint8), "P")
    palette.putpalette([255, 0, 0, 0, 255, 0, 10, 20, 30])
    palette.info["transparency"] = 2  # the third colour is transparent
    assert read(palette, "p.png") == [[255, 0, 0], [0, 255, 0], [10, 20, 30]]
    cmyk = Image.fromarray(np.array([[[0, 0, 0, 0], [0, 0, 0, 255], [255, 0, 0, 0]]], dtype=np.uint8), "CMYK")
    assert read(cmyk, "cmyk.tif") == [[255, 255, 255], [0, 0, 0], [0, 255, 255]]


def fake_div2k(folder, train, test):
    for name, numbers in ((data.DIV2K_TRAIN, range(1, train + 1)), (data.DIV2K_VALID, range(801, 801 + test))):
        (folder / name).mkdir(parents=True)
        for n in numbers:
            Image.new("RGB", (300, 260), (n % 256, 0, 0)).save(folder / name / f"{n:04d}.png")
    return folder


def planned(root, profile, **overrides):
    """`profile` planned under `root` (LPIPS off: nothing to download) and fetched, ready for the data step."""
    from lib.steps import fetch

    study = config.resolve(profile, config.parse_overrides(overrides))
    study["lpips"] = "off"
    config.write_plan(study, root)
    fetch.run(root)
    return root


def test_too_few_div2k_images_are_refused_before_anything_is_written(tmp_path):
    from lib.paths import StudyPaths
    from lib.steps import data as data_step

    div2k = fake_div2k(tmp_path / "div2k", train=5, test=2)
    root = planned(tmp_path / "study", "paper", DIV2K_DIR=str(div2k))
    with pytest.raises(DataError) as error:
        data_step.run(root, progress=False)
    message = str(error.value)
    assert "5 PNG images in" in message and data.DIV2K_TRAIN in message
    assert "val_images (160) + at least 1 for training = 161" in message
    assert "DIV2K_DIR" in message and "lower val_images" in message
    paths = StudyPaths(root)
    assert not paths.manifest.exists() and not paths.store.exists()


def test_an_empty_div2k_test_folder_is_refused(tmp_path):
    settings = {**config.resolve("paper")["data"], "div2k_dir": str(fake_div2k(tmp_path, train=6, test=0)),
                "val_images": 2}
    with pytest.raises(DataError, match=r"0 PNG images in .*DIV2K_valid_HR.*at least 1 test image"):
        data.make_split(settings, 42)


def test_too_many_held_out_photos_are_refused_before_anything_is_written(tmp_path):
    from lib.paths import StudyPaths
    from lib.steps import data as data_step

    root = planned(tmp_path / "study", "tiny")
    plan = json.loads((root / "plan.json").read_text())
    plan["data"].update(test_photos=4, val_photos=2)  # all 6 natural photos held out: none left to train on
    (root / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(DataError, match=r"test_photos \(4\) \+ val_photos \(2\) = 6 .* 6 available .* = 7\. "
                                        r"Lower test_photos or val_photos"):
        data_step.run(root, progress=False)
    paths = StudyPaths(root)
    assert not paths.manifest.exists() and not paths.store.exists()


def test_32_bit_ints_holding_8_bit_values_read_as_themselves(tmp_path):
    """Mode I is 16-bit data when its values need 16 bits, else 8-bit data as Pillow reads it: never shifted to black."""
    values = np.array([[0, 100, 255]], dtype=np.int32)
    Image.fromarray(values).save(tmp_path / "i8.tif")
    with Image.open(tmp_path / "i8.tif") as saved:
        assert saved.mode == "I"
    assert np.asarray(data.read_rgb(tmp_path / "i8.tif"))[0, :, 0].tolist() == [0, 100, 255]
