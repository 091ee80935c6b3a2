import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from lib import ROOT, bench, data


def write_images(folder, n, seed=0, size=(300, 260)):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")


def test_quality_benchmark_writes_the_promised_json(tmp_path):
    write_images(tmp_path / "train", 6)
    write_images(tmp_path / "test", 3, seed=1)
    out = tmp_path / "q.json"
    done = subprocess.run(
        ["make", "--no-print-directory", "bench-quality", "ARCH=vgg16", "LAYER=block5", f"TRAIN_DIR={tmp_path / 'train'}",
         f"TEST_DIR={tmp_path / 'test'}", "WEIGHTS=random", "MINUTES=0.05", "BATCH_SIZE=4", "COLOUR_COPIES=1", f"OUT={out}"],
        cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(out.read_text())
    for key in ("arch", "layer", "weights", "train_images", "test_images", "seconds", "epochs", "psnr_mean", "psnr_std",
                "ssim_mean", "baseline_mean_colour_psnr", "baseline_thumbnail_psnr"):
        assert key in result, key
    assert (result["arch"], result["layer"], result["weights"]) == ("vgg16", "block5", "random")
    assert (result["train_images"], result["test_images"]) == (6, 3) and result["epochs"] >= 1
    assert result["batch_size"] == 4 and result["colour_copies"] == 1
    # the budget covers the closed-form start (vgg16 block5 is 14x14: it has one)
    assert 0 < result["fit_seconds"] <= result["seconds"] and 2.5 <= result["seconds"] < 30 and 3 < result["psnr_mean"] < 60
    assert "vgg16 block5 (random weights): PSNR" in done.stdout


def test_quality_benchmark_input_errors(tmp_path):
    write_images(tmp_path / "ok", 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(bench.BenchError, match="no images .* in '.*empty'"):
        bench.load_folder(tmp_path / "empty")
    with pytest.raises(bench.BenchError, match="does not exist"):
        bench.load_folder(tmp_path / "nope")
    (tmp_path / "ok" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(Exception, match="cannot read image '.*broken.jpg'"):
        bench.load_folder(tmp_path / "ok")
    with pytest.raises(bench.BenchError, match="unknown layer 'layer7' for architecture 'resnet34'"):
        bench.quality("resnet34", "layer7", tmp_path / "ok", tmp_path / "ok", "random", 1)
    with pytest.raises(bench.BenchError, match="WEIGHTS must be imagenet or random"):
        bench.quality("resnet34", "layer1", tmp_path / "ok", tmp_path / "ok", "imagnet", 1)
    with pytest.raises(bench.BenchError, match="BATCH_SIZE must be at least 2"):
        bench.quality("resnet34", "layer1", tmp_path / "ok", tmp_path / "ok", "random", 1, batch_size=1)
    with pytest.raises(bench.BenchError, match="COLOUR_COPIES must be 0 or more"):
        bench.quality("resnet34", "layer1", tmp_path / "ok", tmp_path / "ok", "random", 1, colour_copies=-1)


def test_speed_benchmark_measures_both_loops(tmp_path):
    import torch

    from lib import bench_speed

    files = bench_speed.synthetic_pngs(tmp_path, 2, size=(300, 280))
    row = bench_speed.measure("resnet34", "layer4", files, batch_size=2, steps=1, device=torch.device("cpu"), width=32)
    assert set(row) >= {"arch", "layer", "pipeline_img_s", "naive_img_s", "ratio", "peak_mem_mb"}
    assert row["pipeline_img_s"] > 0 and row["naive_img_s"] > 0 and row["peak_mem_mb"] > 0
    assert row["ratio"] == pytest.approx(row["pipeline_img_s"] / row["naive_img_s"], rel=0.02)


def flat_colour_images(folder, n, seed):
    """Flat random colours with mild noise: the mean colour is all there is to recover."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = rng.integers(20, 236, 3) + rng.normal(0, 4, (240, 240, 3))
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")


def test_colour_benchmark_bounds_and_recovers_flat_colours(tmp_path):
    flat_colour_images(tmp_path / "train", 16, seed=0)
    flat_colour_images(tmp_path / "test", 4, seed=1)
    out = tmp_path / "c.json"
    done = subprocess.run(
        ["make", "--no-print-directory", "bench-colour", "ARCH=resnet34", "LAYER=layer2", f"TRAIN_DIR={tmp_path / 'train'}",
         f"TEST_DIR={tmp_path / 'test'}", "WEIGHTS=random", "COPIES=1", f"OUT={out}"],
        cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(out.read_text())
    assert (result["arch"], result["layer"], result["copies"], result["train_images"]) == ("resnet34", "layer2", 1, 16)
    ceiling = result["baseline_mean_colour_psnr"]
    # a single colour per image can at best equal the image's own mean colour
    for key in ("flips_psnr", "flips_psnr_bound", "copies_psnr", "copies_psnr_bound"):
        assert 5 < result[key] <= ceiling + 1e-6, key
    assert result["flips_psnr_bound"] >= result["flips_psnr"] - 1e-6
    # flat colours through a random network are largely recoverable (one colour for all would score ~12 dB), and
    # with 16 training images, jittered copies of them help the regression (measured: 25.9 -> 27.6 dB)
    assert result["flips_psnr"] > 22 and result["copies_psnr"] > result["flips_psnr"] + 0.5, result
    assert "predicted mean colour from pooled features" in done.stdout


def test_colour_jitter_changes_colour_not_layout():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    jittered = data.colour_jitter(images, np.random.default_rng(1))
    assert jittered.shape == images.shape and jittered.dtype == np.uint8
    assert np.abs(jittered.astype(float).mean((1, 2)) - images.mean((1, 2))).max() > 5
    for a, b in zip(images.astype(float), jittered.astype(float)):  # same picture: channels stay correlated
        assert np.corrcoef(a[..., 0].ravel(), b[..., 0].ravel())[0, 1] > 0.8
    with pytest.raises(bench.BenchError, match="COPIES must be 0 or more"):
        bench.colour("resnet34", "layer4", "x", "x", "random", copies=-1)
