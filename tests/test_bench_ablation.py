"""bench-ablation: one mechanism of the default decoder switched off, against the decoder as the profile runs it."""
import json
import subprocess

import numpy as np
import pytest
import torch

from lib import PARAMETERS_DIR, ROOT, training
from lib.bench import ablation, folders
from lib.bench.folders import BenchError
from lib.decoders import ResShuffleDecoder


def _pointwise_kernels(decoder):
    return [m.kernel_size for m in decoder.body if isinstance(m, torch.nn.Conv2d)]


def test_pointwise_off_gives_the_fine_grid_mlp_3x3_hidden_layers_and_keeps_its_zero_start():
    decoder = ResShuffleDecoder(8, 56, width=32)
    assert _pointwise_kernels(decoder) == [(3, 3), (1, 1), (1, 1), (1, 1)]
    ablation._no_pointwise(decoder)
    assert _pointwise_kernels(decoder) == [(3, 3), (3, 3), (3, 3), (1, 1)]  # the output layer stays 1x1
    with torch.no_grad():
        assert decoder.body(torch.randn(2, 8, 56, 56)).abs().max() == 0  # the deep path still starts at zero
    with pytest.raises(BenchError, match="no pointwise MLP"):
        ablation._no_pointwise(ResShuffleDecoder(8, 14, width=32))


def test_x4_step_off_inserts_a_112_stage_and_keeps_the_output_size_and_zero_start():
    decoder = ResShuffleDecoder(8, 14, width=64)
    assert decoder.body[-1].upscale_factor == 4
    ablation._no_x4_step(decoder)
    assert [m.upscale_factor for m in decoder.body if isinstance(m, torch.nn.PixelShuffle)][-2:] == [2, 2]
    with torch.no_grad():
        out = decoder.body(torch.randn(2, 8, 14, 14))
    assert out.shape == (2, 3, 224, 224) and out.abs().max() == 0
    with pytest.raises(BenchError, match="no x4 step"):
        ablation._no_x4_step(ResShuffleDecoder(8, 56, width=32))


def test_standardise_off_reads_28x28_features_as_the_encoder_gives_them():
    features = torch.randn(6, 4, 28, 28) * 50 + 7
    images = np.random.default_rng(0).integers(0, 256, (6, 224, 224, 3), np.uint8)
    on, off = ResShuffleDecoder(4, 28, width=32), ResShuffleDecoder(4, 28, width=32)
    ablation._no_standardise(off)
    for decoder in (on, off):
        training.fit_to_training_data(decoder, features, images, training.contiguous_groups(6))
    assert torch.equal(off.inputs(features)[0], features)
    assert not torch.allclose(on.inputs(features)[0], features)
    # matching's channel weights stay fitted either way
    assert torch.equal(on.feature_statistics.std, off.feature_statistics.std)
    for grid in (56, 14):
        with pytest.raises(BenchError, match="unstandardised already"):
            ablation._no_standardise(ResShuffleDecoder(4, grid, width=32))


def test_closed_form_paths_off_start_at_zero_or_train_on_from_the_fit():
    features, images = torch.randn(8, 4, 14, 14), np.random.default_rng(0).integers(0, 256, (8, 224, 224, 3), np.uint8)
    groups = training.contiguous_groups(8)
    fixed, trained, zero = (ResShuffleDecoder(4, 14, width=32) for _ in range(3))
    ablation._paths_trained(trained), ablation._no_closed_form_start(zero)
    for decoder in (fixed, trained, zero):
        training.fit_to_training_data(decoder, features, images, groups)
    assert fixed.linear.conv.weight.abs().sum() > 0 and not fixed.linear.conv.weight.requires_grad
    assert torch.equal(trained.linear.conv.weight, fixed.linear.conv.weight) and trained.linear.conv.weight.requires_grad
    assert trained.colour.weight.requires_grad
    assert zero.linear.conv.weight.abs().sum() == 0 and zero.linear.conv.weight.requires_grad
    assert training.closed_form_paths(zero) == "zero"


def test_the_switch_is_undone_after_the_block():
    original = training.build_decoder
    with ablation.switched_off("pointwise"):
        assert training.build_decoder is not original
        assert _pointwise_kernels(training.build_decoder("resshuffle", 8, 56, 32))[1] == (3, 3)
    assert training.build_decoder is original


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    work = tmp_path_factory.mktemp("ablation")
    folders.export_split(work, str(PARAMETERS_DIR / "tiny.yaml"))
    return work


def test_an_ablation_runs_both_decoders_on_the_same_images_and_pairs_them(split):
    result = ablation.ablation("pointwise", "tiny", "resnet34", "layer1", split / "train", split / "val", split / "test",
                               progress=False)
    on, off = result["runs"]["on"], result["runs"]["off"]
    assert on["settings"] == off["settings"] and on["images_seen"] == off["images_seen"] > 0
    assert off["decoder_params"] > on["decoder_params"]  # the 3x3 hidden layers were trained, not the MLP
    assert result["psnr_on"] == on["psnr_mean"] and result["psnr_off"] == off["psnr_mean"]
    diff = [off["per_image"]["psnr"][n] - on["per_image"]["psnr"][n] for n in on["per_image"]["psnr"]]
    assert result["psnr_off_minus_on"] == pytest.approx(np.mean(diff), rel=1e-12)
    assert result["psnr_off_minus_on_ci_low"] <= result["psnr_off_minus_on"] <= result["psnr_off_minus_on_ci_high"]


@pytest.mark.parametrize("variables, message", [
    (["MECHANISM=colour_copies"], "unknown mechanism 'colour_copies'"),
    (["MECHANISM=matching_grids", "MATCH=0"], "give MATCH= steps"),
    (["MECHANISM=matching_grids", "MATCH=2"], "is matched already"),  # layer1, 56x56: on and off would be one run
    (["MECHANISM=x4_step"], "no x4 step"),  # layer1 is a 56x56 grid: its decoder is the pointwise MLP
    (["MECHANISM=standardise"], "unstandardised already"),  # 56x56: read as the encoder gives them
    (["MECHANISM=pointwise", "DECODER=simple"], "not of 'simple'"),
])
def test_bad_input_is_refused_before_any_model_is_built(split, tmp_path, variables, message):
    out = tmp_path / "a.json"
    done = subprocess.run(["make", "--no-print-directory", "bench-ablation", "PROFILE=tiny", "ARCH=resnet34",
                           "LAYER=layer1", f"TRAIN_DIR={split / 'train'}", f"VAL_DIR={split / 'val'}",
                           f"TEST_DIR={split / 'test'}", f"OUT={out}", *variables], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode != 0 and message in done.stderr, done.stderr[-2000:]
    assert "train resnet34" not in done.stderr and not out.exists()
    assert not list(tmp_path.iterdir())


def test_the_record_is_written_with_its_line(split, tmp_path):
    out = tmp_path / "a.json"
    done = subprocess.run(["make", "--no-print-directory", "bench-ablation", "PROFILE=tiny", "ARCH=resnet34",
                           "LAYER=layer4", "MECHANISM=x4_step", f"TRAIN_DIR={split / 'train'}",
                           f"VAL_DIR={split / 'val'}", f"TEST_DIR={split / 'test'}", f"OUT={out}", "FEEDBACK=0"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(out.read_text())
    assert record["mechanism"] == "x4_step" and record["runs"]["on"]["feedback"] == 0 and "provenance" in record
    assert "one x4 sub-pixel step" in done.stdout and "off - on" in done.stdout
