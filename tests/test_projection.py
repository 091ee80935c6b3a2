"""The GPU projection: FLOPs and memory counted from the real modules, work counted from the profile."""
import json

import pytest

from lib import ROOT
from lib.bench import projection


def test_encoder_flops_match_the_convolution_arithmetic():
    cost = projection.layer_cost("resnet34", "layer1", {"batch_size": 2, "width": 32, "decoder": "resshuffle"})
    stem = 2 * (7 * 7 * 3) * 64 * 112 * 112  # multiply-adds x 2
    layer1 = 6 * 2 * (3 * 3 * 64) * 64 * 56 * 56  # three basic blocks, two 3x3 convolutions each
    assert cost["encoder_gflop_per_image"] == pytest.approx((stem + layer1) / 1e9, rel=1e-3)
    # a decoder update is its forward pass plus a backward pass of about twice the cost
    assert 2.0 < cost["decoder_update_gflop_per_image"] / cost["decoder_forward_gflop_per_image"] < 3.5


def test_memory_grows_with_batch_and_depth_costs_more_encoder():
    settings = {"width": 64, "decoder": "resshuffle"}
    small = projection.layer_cost("vgg16", "block2", {**settings, "batch_size": 2})
    large = projection.layer_cost("vgg16", "block2", {**settings, "batch_size": 8})
    deep = projection.layer_cost("vgg16", "block5", {**settings, "batch_size": 2})
    assert large["train_memory_mb"] > small["train_memory_mb"] > 0
    assert deep["encoder_gflop_per_image"] > 3 * small["encoder_gflop_per_image"]


def test_projection_counts_the_profiles_work(tmp_path):
    result = projection.project("tiny", [10.0, 40.0], step_ms=5.0)
    # every run is projected: tiny's second seeds and capacity-matched decoders as well as each layer's main run
    runs = {(r["arch"], r["layer"], r["run"]): r for r in result["layers"]}
    assert {k for k in runs if k[2]} == {("resnet34", "layer1", "seed43"), ("resnet34", "layer4", "seed43"),
                                         ("resnet34", "layer4", "params900000"), ("vgg16", "block5", "params900000")}
    assert runs["resnet34", "layer4", "seed43"]["total_pflop"] == runs["resnet34", "layer4", ""]["total_pflop"]
    assert runs["vgg16", "block5", "params900000"]["width"] > runs["vgg16", "block5", ""]["width"]
    rows = {(a, l): r for (a, l, run), r in runs.items() if not run}
    assert set(rows) == {("efficientnet_lite0", "stage4"), ("efficientnet_lite0_random", "stage4"), ("resnet34", "layer1"),
                         ("resnet34", "layer4"), ("vgg16", "block5"), ("vit_base_patch16_224", "block0")}
    images = sum(result["images"].values())
    # without augmentation one encoder pass per architecture serves all its layers
    assert rows["resnet34", "layer1"]["encoder_images"] == images and rows["resnet34", "layer4"]["encoder_images"] == 0
    assert rows["vgg16", "block5"]["encoder_images"] == images
    # tiny: 1 epoch at batch 4, then one feedback stage of 1 epoch, then 2 feature-matching steps per batch of 16
    # test images at layer1 (56x56), each an encoder forward and backward; none at layer4 (7x7)
    test = result["images"]["test"]
    assert rows["resnet34", "layer1"]["steps"] == 2 * -(-result["images"]["train"] // 4) + 2 * -(-test // 16)
    assert rows["resnet34", "layer1"]["match_encoder_images"] == 3 * 2 * test and rows["resnet34", "layer1"]["match_steps"] == 2
    assert rows["resnet34", "layer4"]["match_encoder_images"] == 0
    assert result["total_seconds"]["10.0"] > result["total_seconds"]["40.0"] > 0
    longer = projection.project("tiny", [10.0], 5.0, overrides={"epochs": 3})
    assert longer["total_pflop"] > result["total_pflop"]
    # with the study's augmentation every training view is encoded, every epoch, for every layer
    augmenting = tmp_path / "augmenting.yaml"
    augmenting.write_text((ROOT / "parameters" / "tiny.yaml").read_text().replace("augment: false", "augment: true"))
    rows = {(r["arch"], r["layer"]): r for r in projection.project(str(augmenting), [10.0], 5.0, {"epochs": 3})["layers"]
            if not r["run"]}
    assert rows["resnet34", "layer4"]["encoder_images"] == 3 * result["images"]["train"] + result["images"]["val"] + result["images"]["test"]


def test_cli_writes_json_and_rejects_unknown_profiles(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert projection.main(["--profile", "tiny", "--out", str(out), "--tflops", "20"]) == 0
    assert json.loads(out.read_text())["total_seconds"]["20.0"] > 0
    assert "PFLOP in all" in capsys.readouterr().out
    assert projection.main(["--profile", "nope", "--out", str(tmp_path / "x.json")]) == 2
    assert "nope" in capsys.readouterr().err and not (tmp_path / "x.json").exists()


def test_feedback_stages_are_counted_with_their_encoder_passes(tmp_path):
    tiny = (ROOT / "parameters" / "tiny.yaml").read_text()
    assert "feedback: 1 " in tiny and "feedback_epochs: 1\n" in tiny  # tiny runs one stage of one epoch

    def project(feedback, epochs):
        path = tmp_path / f"feedback{feedback}.yaml"
        # (without tiny's capacity sweep, whose budget two fixed-size feedback stages would exceed)
        sweep = tiny[tiny.index("capacity_sweep:"):tiny.index("architectures:")]
        path.write_text(tiny.replace(sweep, "").replace("feedback: 1 ", f"feedback: {feedback} ")
                        .replace("feedback_epochs: 1\n", f"feedback_epochs: {epochs}\n"))
        result = projection.project(str(path), [10.0], 5.0)
        return result, {(r["arch"], r["layer"]): r for r in result["layers"] if not r["run"]}["resnet34", "layer1"]

    (plain, plain_row), (one, row), (two, row2) = project(0, 1), project(1, 1), project(2, 3)
    train, val, test = (one["images"][k] for k in ("train", "val", "test"))
    assert plain_row["feedback"] == 0 and plain_row["feedback_encoder_images"] == 0
    assert row["feedback"] == 1 and row["feedback_encoder_images"] == train + val + test
    assert row["feedback_update_gflop_per_image"] > row["feedback_forward_gflop_per_image"] > 0
    # inputs: one encoder pass per stage and training image (each from the last); validation: stage j encodes j times
    assert row2["feedback_encoder_images"] == 2 * train + 3 * val + 2 * test
    assert row2["steps"] - plain_row["steps"] == 2 * 3 * -(-train // 4)
    assert plain["total_pflop"] < one["total_pflop"] < two["total_pflop"]
    # the work split by the step that does it: the feedback stages are the train step's (gpu_check divides
    # train_pflop by train_seconds), their test passes the evaluate step's; tiny caches features: one encode pass
    for r in (plain_row, row, row2):
        assert r["encode_pflop"] + r["train_pflop"] + r["evaluate_pflop"] == pytest.approx(r["total_pflop"], abs=1e-5)
    assert plain_row["encode_pflop"] == row2["encode_pflop"] > 0
    assert plain_row["train_pflop"] < row["train_pflop"] < row2["train_pflop"]
    assert plain_row["evaluate_pflop"] < row["evaluate_pflop"] < row2["evaluate_pflop"]
