"""A benchmark row is the study's computation: bench-quality at a profile's settings, on that profile's split
exported as image folders, gives the numbers the study's own train and evaluate steps give for the layer.

Both run on one thread here, and the images meet the encoder in the study's batches (`quality.encode_together`): a
CPU kernel sums in another order on another thread count or batch, and a feature then rounds differently in its last
bit. What remains between two processes is below float32 resolution: the training trajectory (validation losses)
agrees to float64 rounding, and each score, computed from float32 pixels, to float32 resolution.
"""
import json
import os
import shutil
import subprocess

import pandas as pd
import pytest
import torch

from lib import PARAMETERS_DIR, ROOT
from lib.bench import folders

ARCH, LAYER = "efficientnet_lite0", "stage4"  # tiny's learned encoder: one run, a feedback stage, no capacity run
SAME = 1e-12  # float64 rounding of means over the same values (see test_end_to_end.SAME)
FLOAT32 = 1e-6  # relative: a score computed from float32 pixels resolves about 1e-7 of itself


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench_pipeline")
    profile = work / "tiny.yaml"
    shutil.copy(PARAMETERS_DIR / "tiny.yaml", profile)
    one_thread = {**os.environ, "MAKEFLAGS": "", "OMP_NUM_THREADS": "1"}
    # JOBS = the cores: each step of the study gets one thread (the Makefile's THREADS)
    done = subprocess.run(["make", "--no-print-directory", "evaluate", f"PROFILE={profile}", f"REPORTS={work / 'reports'}",
                           f"ARCH={ARCH}", f"LAYERS={LAYER}", f"JOBS={os.cpu_count()}"], cwd=ROOT, capture_output=True,
                          text=True, env=one_thread)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    layer_dir = work / "reports" / "tiny" / ARCH / LAYER
    counts = folders.export_split(work / "folders", str(profile))
    out = work / "bench.json"
    done = subprocess.run(["make", "--no-print-directory", "bench-quality", f"PROFILE={profile}", f"ARCH={ARCH}",
                           f"LAYER={LAYER}", f"TRAIN_DIR={work / 'folders' / 'train'}", f"VAL_DIR={work / 'folders' / 'val'}",
                           f"TEST_DIR={work / 'folders' / 'test'}", f"OUT={out}", f"REPORTS={work / 'reports'}"],
                          cwd=ROOT, capture_output=True, text=True, env=one_thread)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    bench = json.loads(out.read_text())
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
    # the same training, step by step, on features that agree to float32 rounding: the pipeline encodes its whole
    # store in batches of 16, the bench each folder, and the encoder's float32 convolutions round by batch
    # composition. (Stage4's standardised start was the mean image alone, blind to that rounding; read raw since
    # dc2ded6, its closed-form start is kept and carries it.)
    for key in ("start_val_loss", "best_val_loss"):
        assert bench[key] == pytest.approx(summary[key], rel=FLOAT32), key
    # the reconstruction's feature error passes those rounding differences through the decoder and the encoder again
    # and then takes a difference of feature maps, which magnifies them: a few parts in a million
    assert bench["feature_error_mean"] == pytest.approx(summary["feature_error_mean"], rel=10 * FLOAT32)
    for key in ("psnr_mean", "ssim_mean", "mse_mean", "decoder_psnr_mean",
                "baseline_mean_image_psnr", "baseline_mean_colour_psnr", "baseline_thumbnail_psnr",
                "baseline_mean_image_feature_error", "baseline_mean_colour_feature_error",
                "baseline_thumbnail_feature_error"):  # the pipeline's baselines scored at encoding, the bench's here
        assert bench[key] == pytest.approx(summary[key], rel=FLOAT32), key
    # image by image: the exported file is the study's image, named after its place in the store
    pipeline = both["metrics"].set_index("image")["psnr"]
    exported = {name.split("-", 1)[1].rsplit(".", 1)[0]: value for name, value in bench["per_image"]["psnr"].items()}
    assert sorted(exported) == sorted(pipeline.index)
    for name, value in exported.items():
        assert value == pytest.approx(pipeline[name], rel=FLOAT32), name
