"""Your own images (`make invert IMAGES=dir`, lib/invert.py, 06_invert.ipynb): every file checked before anything is
computed or trained, then each planned layer's decoder scored on the images by the one evaluation."""
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFile

from lib import ROOT, data, invert
from lib.plan import MissingInputError


def make(*args):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "MAKEFLAGS": ""})


def smooth_images(folder):
    """Three images of different sizes and formats: a colour gradient (PNG), a yellow rectangle on blue (JPEG) and a
    greyscale ramp (PNG, mode L)."""
    folder.mkdir(parents=True)
    y, x = np.mgrid[0:300, 0:400]
    Image.fromarray(np.stack([x * 255 // 399, y * 255 // 299, (x + y) * 255 // 698], -1).astype(np.uint8)).save(
        folder / "gradient.png")
    shapes = np.full((480, 640, 3), (30, 90, 160), np.uint8)
    shapes[100:380, 200:440] = (240, 200, 40)
    Image.fromarray(shapes).save(folder / "shapes.jpg", quality=95)
    y, x = np.mgrid[0:250, 0:260]
    Image.fromarray(((x + y) * 255 // 508).astype(np.uint8), "L").save(folder / "ramp_grey.png")
    return folder


def truncated(path, source):
    """`source` (an image file) cut to half its bytes at `path`."""
    payload = source.read_bytes()
    path.write_bytes(payload[: len(payload) // 2])


# ---- reading a folder (fast) ------------------------------------------------------------------------------------

def test_a_folder_is_prepared_as_the_study_prepares_its_images(tmp_path):
    folder = smooth_images(tmp_path / "mine")
    Image.new("RGBA", (120, 90), (200, 30, 30, 0)).save(folder / "rgba.png")
    Image.new("P", (64, 64), 3).save(folder / "palette.gif")
    (folder / ".DS_Store").write_bytes(b"\x00 not an image")  # hidden: skipped
    (folder / "drafts").mkdir()  # a subfolder: skipped
    names, images = invert.read_folder(folder)
    assert names == ["gradient.png", "palette.gif", "ramp_grey.png", "rgba.png", "shapes.jpg"]
    assert images.dtype == np.uint8 and images.shape == (5, 224, 224, 3)
    for name, image in zip(names, images):  # the data step's own preprocessing, shorter side 256 then centre 224
        np.testing.assert_array_equal(image, data.load_centre_crop(folder / name, 256, 224))
    grey = images[names.index("ramp_grey.png")].astype(int)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert grey[0, 0, 0] < 100 < 150 < grey[-1, -1, 0]  # the ramp runs dark to light, top left to bottom right
    assert (images[names.index("rgba.png")] == (200, 30, 30)).all()  # colour kept, transparency dropped
    # the rectangle covers the centre crop's middle; the blue its corners
    shapes = images[names.index("shapes.jpg")].astype(int)
    assert np.abs(shapes[112, 112] - (240, 200, 40)).max() < 8 and np.abs(shapes[2, 2] - (30, 90, 160)).max() < 8
    # the profile's own sizes are honoured
    assert invert.read_folder(folder, resize=128, crop=96)[1].shape == (5, 96, 96, 3)


def test_a_16_bit_grey_image_is_read_as_its_gradient_not_blank(tmp_path):
    """16-bit grey PNGs (mode I;16 or I) once read as solid white: scored against a blank image, drawn blank."""
    folder = tmp_path / "deep"
    folder.mkdir()
    y, x = np.mgrid[0:256, 0:300]
    ramp = ((x + y) * 65535 // 554).astype(np.uint16)
    Image.fromarray(ramp).save(folder / "ramp16.png")
    (_,), images = invert.read_folder(folder)
    eight = tmp_path / "ramp8.png"  # the same ramp at 8 bits (its high byte), read by the same pipeline
    Image.fromarray((ramp >> 8).astype(np.uint8), "L").save(eight)
    np.testing.assert_array_equal(images[0], data.load_centre_crop(eight, 256, 224))
    assert images[0].min() < 60 and images[0].max() > 200


def test_pixels_with_no_known_white_are_refused_with_the_folder_check(tmp_path):
    """A float image outside [0, 1] has no 8-bit reading: named by the check that runs before any training, not
    by the invert notebook after it."""
    folder = smooth_images(tmp_path / "mine")
    Image.fromarray(np.linspace(0, 4, 300 * 300, dtype=np.float32).reshape(300, 300)).save(folder / "hdr.tif")
    with pytest.raises(invert.ImageFolderError, match=r"hdr.tif: float greyscale .* not in \[0, 1\].*rescale it"):
        invert.read_folder(folder)


def test_every_bad_file_is_named_with_its_fix_in_one_error(tmp_path, monkeypatch):
    folder = smooth_images(tmp_path / "mixed")
    (folder / "notes.txt").write_text("my holiday photos\n")
    truncated(folder / "cut.jpg", folder / "shapes.jpg")
    truncated(folder / "cut.png", folder / "gradient.png")
    Image.new("RGB", (300, 20), (10, 200, 10)).save(folder / "strip.png")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # another library may have switched it on
    with pytest.raises(invert.ImageFolderError) as raised:
        invert.read_folder(folder)
    message = str(raised.value)
    assert message.startswith(f"4 of 7 files in '{folder}' cannot be used; fix or remove them and run again:")
    lines = message.splitlines()[1:]
    assert [line.split(":")[0] for line in lines] == ["  - cut.jpg", "  - cut.png", "  - notes.txt", "  - strip.png"]
    assert "cut.jpg: truncated or corrupt (" in message and "download or save it again, or remove it" in message
    assert "cut.png: truncated or corrupt (" in message
    assert "notes.txt: not an image (PIL cannot identify it); remove it from the folder" in message
    assert f"strip.png: 300x20 px is too small: at least {invert.MIN_SIDE} px on the shorter side" in message
    assert "gradient.png" not in message and "shapes.jpg:" not in message
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # put back as it was


@pytest.mark.parametrize("case,message", [
    ("missing", "does not exist: give a folder of image files"),
    ("file", "is not a folder: give a folder of image files"),
    ("empty", "holds no image files: put your images (PNG, JPEG, ...) in it"),
])
def test_a_folder_that_is_not_one_of_images_is_one_error(tmp_path, case, message):
    folder = tmp_path / "mine"
    if case == "file":
        folder.write_text("")
    elif case == "empty":
        folder.mkdir()
        (folder / ".hidden.png").write_bytes(b"")
    with pytest.raises(invert.ImageFolderError, match=f"'{folder}' " + message.replace("(", r"\(").replace(")", r"\)")):
        invert.read_folder(folder)


def test_the_check_make_runs_before_training(tmp_path, capsys):
    folder = smooth_images(tmp_path / "mine")
    assert invert.main([str(folder)]) == 0 and "3 images, each readable" in capsys.readouterr().out
    (folder / "notes.txt").write_text("")
    assert invert.main([str(folder)]) == 2
    assert "error: 1 of 4 files" in capsys.readouterr().err


def test_the_notebooks_images_parameter(tmp_path, monkeypatch):
    assert invert.images_folder(str(tmp_path)) == tmp_path
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    with pytest.raises(invert.ImageFolderError, match=r"set `images` in the parameters cell .* `make invert IMAGES="):
        invert.images_folder("")
    # in Colab, "" opens the upload dialog: this upload's files, and only these, land in UPLOAD_DIR
    colab = types.ModuleType("google.colab")
    colab.files = types.SimpleNamespace(upload=lambda: {"cat.png": b"png bytes", "dog.jpg": b"jpeg bytes"})
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(invert, "UPLOAD_DIR", tmp_path / "my_images")
    (tmp_path / "my_images").mkdir()
    (tmp_path / "my_images" / "earlier.png").write_bytes(b"")
    assert invert.images_folder("") == tmp_path / "my_images"
    assert {p.name: p.read_bytes() for p in (tmp_path / "my_images").iterdir()} == {"cat.png": b"png bytes",
                                                                                   "dog.jpg": b"jpeg bytes"}


# ---- through make, as a new user runs it ------------------------------------------------------------------------

LAYERS = ["layer1", "layer4"]


@pytest.fixture(scope="module")
def inverted(tmp_path_factory):
    """`make invert` into an empty reports root: it trains the two layers' decoders, then inverts three images."""
    work = tmp_path_factory.mktemp("invert")
    images = smooth_images(work / "holiday")
    reports = work / "reports"
    args = ["PROFILE=tiny", f"REPORTS={reports}", "ARCH=resnet34", f"LAYERS={','.join(LAYERS)}"]
    done = make("invert", f"IMAGES={images}", *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    root = reports / "tiny"
    return {"images": images, "root": root, "out": root / "invert" / "holiday", "args": args, "stdout": done.stdout}


def test_make_invert_trains_what_is_missing_then_scores_each_image_at_each_layer(inverted):
    root, out = inverted["root"], inverted["out"]
    ran = [line.split(" -> ")[1] for line in inverted["stdout"].splitlines() if line.startswith("papermill ")]
    # the layers' own decoders, nothing more (no seed repeats), then the notebook
    assert sorted(r for r in ran if r.endswith("train.ipynb")) == [str(root / "resnet34" / l / "train.ipynb") for l in LAYERS]
    assert ran[-1] == str(out / "06_invert.ipynb") and "holiday: 3 images, each readable" in inverted["stdout"]
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns) == invert.COLUMNS
    images = ["gradient.png", "ramp_grey.png", "shapes.jpg"]
    assert list(zip(metrics["layer"], metrics["image"])) == [(layer, image) for layer in LAYERS for image in images]
    assert (metrics["arch"] == "resnet34").all()
    assert metrics["psnr"].between(3, 60).all() and metrics["ssim"].between(-1, 1).all()
    np.testing.assert_allclose(metrics["psnr"], 10 * np.log10(1 / metrics["mse"]), rtol=1e-9)
    assert metrics["lpips"].isna().all()  # offline: no AlexNet weights, and never a random one
    baselines = metrics.filter(like="baseline_")
    assert baselines.notna().all().all() and baselines.shape[1] == 6
    by_layer = metrics.set_index(["layer", "image"])
    # no information: the study's training images' mean image, the same for every layer of one run
    np.testing.assert_allclose(by_layer.loc["layer1", "baseline_mean_image_psnr"],
                               by_layer.loc["layer4", "baseline_mean_image_psnr"])
    # the mean colour is the image's own, whatever the layer; the thumbnail keeps more at layer1's 56x56 than at 7x7
    np.testing.assert_allclose(by_layer.loc["layer1", "baseline_mean_colour_psnr"],
                               by_layer.loc["layer4", "baseline_mean_colour_psnr"])
    assert (by_layer.loc["layer1", "baseline_thumbnail_psnr"] > by_layer.loc["layer4", "baseline_thumbnail_psnr"]).all()
    assert by_layer.loc[("layer1", "gradient.png"), "baseline_thumbnail_psnr"] > 35  # a smooth gradient: nearly all kept
    with Image.open(out / "grid.png") as grid:
        width, height = grid.size
    assert 0.8 < height / width < 1.5  # three rows (one per image) of three cells: the image and both layers


def test_invert_scores_the_studys_own_test_images_as_the_evaluate_step_does(inverted, tmp_path):
    """The study's test images saved as files (the data step's stored images, lossless) come out of lib.invert with
    the evaluate step's per-image scores: the same preprocessing, encoder, decoder and evaluation. layer1 runs the
    whole path: feedback stage, feature matching, the three baselines."""
    from lib.plan import load
    from lib.steps import data as data_step
    from lib.steps import evaluate

    root = inverted["root"]
    store = data_step.load_store(load(root).paths)
    folder = tmp_path / "test_images"
    folder.mkdir()
    test = data_step.split_indices(store, "test")
    for i in test[::2]:  # one view of each test photo keeps this quick
        Image.fromarray(store["images"][i]).save(folder / f"{store['names'][i]}.png")
    metrics, _ = invert.run(root, folder, out_dir=tmp_path / "out", progress=False)
    mine = metrics[metrics["layer"] == "layer1"].assign(image=lambda m: m["image"].str.removesuffix(".png"))
    mine = mine.set_index("image")
    done = make("baselines", *inverted["args"])  # what the evaluate step reads besides the decoder (make invert evaluates nothing)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    expected = evaluate.run(root, "resnet34", "layer1", progress=False)["per_image"].set_index("image").loc[mine.index]
    assert len(mine) == len(test[::2]) >= 2
    for column in invert.COLUMNS[7:]:  # the baselines: the images alone
        np.testing.assert_allclose(mine[column], expected[column], rtol=1e-6, err_msg=column)
    # the decoder's scores: the same up to the features' fp16 cache, which the evaluate step reads
    np.testing.assert_allclose(mine["psnr"], expected["psnr"], atol=0.05)
    np.testing.assert_allclose(mine["ssim"], expected["ssim"], atol=0.005)


def test_a_run_that_fails_midway_leaves_no_result(inverted, tmp_path, monkeypatch):
    from lib import evaluation

    real, calls = evaluation.evaluate_decoder, []

    def second_layer_fails(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate_decoder", second_layer_fails)
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(inverted["images"] / "gradient.png", folder)
    out = tmp_path / "out"
    out.mkdir()
    for name in ("metrics.csv", "grid.png"):  # an earlier run's result
        (out / name).write_text("earlier")
    with pytest.raises(RuntimeError, match="out of memory"):
        invert.run(inverted["root"], folder, out_dir=out, progress=False)
    assert calls == LAYERS and list(out.iterdir()) == []


def test_the_notebook_never_trains_a_missing_decoder(tmp_path, inverted):
    from lib import config

    root = tmp_path / "tiny"
    assert config.main(["plan", "--profile", "tiny", "--root", str(root), "--overrides", "ARCH=vgg16"]) == 0
    with pytest.raises(MissingInputError, match=r"vgg16/block5/decoder.pt is missing: build it with `make train`.* "
                                                r"`make invert IMAGES=.*holiday` trains what is missing"):
        invert.run(root, inverted["images"], progress=False)
    assert not list(root.rglob("*.pt")) and not (root / "invert").exists()


def test_make_invert_checks_the_folder_before_training(tmp_path):
    folder = smooth_images(tmp_path / "mine")
    truncated(folder / "cut.jpg", folder / "shapes.jpg")
    done = make("invert", f"IMAGES={folder}", "PROFILE=tiny", f"REPORTS={tmp_path / 'reports'}", "ARCH=resnet34",
                "LAYERS=layer4")
    assert done.returncode != 0 and done.stderr.count("cut.jpg: truncated or corrupt") == 1, done.stderr
    assert "1 of 4 files" in done.stderr and "02_train" not in done.stdout
    assert not list(tmp_path.rglob("decoder.pt")) and not list(tmp_path.rglob("grid.png"))
    assert not list(tmp_path.rglob("metrics.csv"))


@pytest.mark.parametrize("images,message", [
    (None, "make invert needs a folder of your images: make invert IMAGES=path/to/folder"),
    ("no/such/folder", "IMAGES=no/such/folder is not a folder: make invert IMAGES=path/to/folder"),
])
def test_make_invert_without_a_folder_is_one_error_at_once(tmp_path, images, message):
    done = make("invert", "PROFILE=tiny", f"REPORTS={tmp_path}", *([f"IMAGES={images}"] if images else []))
    assert done.returncode != 0 and message in done.stderr and done.stderr.count("***") == 1
    assert list(tmp_path.iterdir()) == []  # refused before anything ran: not even the plan was written
