"""A benchmark row is the study's computation: bench-quality at a profile's settings, on that profile's split
exported as image folders, gives the numbers the study's own train and evaluate steps give for the layer.

The frozen encoders here give each image the same features whatever else shares its batch (the study encodes all
its images together, the benchmark each folder apart), so the two are the same arithmetic; every score is then
compared to float64 rounding.
"""
import json
import os
import shutil
import subprocess

import pandas as pd
import pytest
import torch

from lib import PARAMETERS_DIR, ROOT
from lib.bench import folders, quality

ARCH, LAYER = "efficientnet_lite0", "stage4"  # tiny's learned encoder: one run, a feedback stage, no capacity run
SAME = 1e-12  # float64 rounding of means over the same per-image scores (see test_end_to_end.SAME)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench_pipeline")
    profile = work / "tiny.yaml"
    shutil.copy(PARAMETERS_DIR / "tiny.yaml", profile)
    done = subprocess.run(["make", "--no-print-directory", "evaluate", f"PROFILE={profile}", f"REPORTS={work / 'reports'}",
                           f"ARCH={ARCH}", f"LAYERS={LAYER}"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "MAKEFLAGS": ""})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    layer_dir = work / "reports" / "tiny" / ARCH / LAYER
    counts = folders.export_split(work / "folders", str(profile))
    bench = quality.quality(str(profile), ARCH, LAYER, work / "folders" / "train", work / "folders" / "test",
                            val_dir=work / "folders" / "val", progress=False)
    return {"summary": json.loads((layer_dir / "summary.json").read_text()),
            "metrics": pd.read_csv(layer_dir / "metrics.csv"),
            "checkpoint": torch.load(layer_dir / "decoder.pt", weights_only=False), "bench": bench, "counts": counts}


def test_the_benchmark_trains_with_the_profiles_settings_on_the_same_images(both):
    bench, checkpoint, summary = both["bench"], both["checkpoint"], both["summary"]
    assert bench["profile"] == "tiny" and bench["settings"] == checkpoint["settings"]
    assert (bench["train_images"], bench["validation_images"], bench["test_images"]) == (
        summary["train_images"], both["counts"]["val"], summary["test_images"])
    for key in ("epochs", "steps", "images_seen", "best_epoch", "feedback", "feedback_epochs", "decoder_params",
                "match_steps", "weights"):
        assert bench[key] == summary[key], key


def test_a_bench_row_and_a_pipeline_row_are_the_same_computation(both):
    bench, summary = both["bench"], both["summary"]
    for key in ("start_val_loss", "best_val_loss", "psnr_mean", "ssim_mean", "mse_mean", "decoder_psnr_mean",
                "feature_error_mean", "baseline_mean_image_psnr", "baseline_mean_colour_psnr", "baseline_thumbnail_psnr",
                "baseline_mean_image_feature_error"):
        assert bench[key] == pytest.approx(summary[key], rel=0, abs=SAME), key
    # image by image: the exported file is the study's image, named after its place in the store
    pipeline = both["metrics"].set_index("image")["psnr"]
    exported = {name.split("-", 1)[1].rsplit(".", 1)[0]: value for name, value in bench["per_image"]["psnr"].items()}
    assert sorted(exported) == sorted(pipeline.index)
    for name, value in exported.items():
        assert value == pytest.approx(pipeline[name], rel=0, abs=SAME), name
