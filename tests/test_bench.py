import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from lib import ROOT, bench


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
         f"TEST_DIR={tmp_path / 'test'}", "WEIGHTS=random", "MINUTES=0.05", f"OUT={out}"],
        cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(out.read_text())
    for key in ("arch", "layer", "weights", "train_images", "test_images", "seconds", "epochs", "psnr_mean", "psnr_std",
                "ssim_mean", "baseline_mean_colour_psnr", "baseline_thumbnail_psnr"):
        assert key in result, key
    assert (result["arch"], result["layer"], result["weights"]) == ("vgg16", "block5", "random")
    assert (result["train_images"], result["test_images"]) == (6, 3) and result["epochs"] >= 1
    assert 2.5 <= result["seconds"] < 30 and 3 < result["psnr_mean"] < 60
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


def test_speed_benchmark_measures_both_loops(tmp_path):
    import torch

    from lib import bench_speed

    files = bench_speed.synthetic_pngs(tmp_path, 2, size=(300, 280))
    row = bench_speed.measure("resnet34", "layer4", files, batch_size=2, steps=1, device=torch.device("cpu"), width=32)
    assert set(row) >= {"arch", "layer", "pipeline_img_s", "naive_img_s", "ratio", "peak_mem_mb"}
    assert row["pipeline_img_s"] > 0 and row["naive_img_s"] > 0 and row["peak_mem_mb"] > 0
    assert row["ratio"] == pytest.approx(row["pipeline_img_s"] / row["naive_img_s"], rel=0.02)
