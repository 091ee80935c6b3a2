import json
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from lib import ROOT, benchmark_findings, data, matching
from lib.bench import colour, folders, offline, quality, speed
from lib.registry import check_layer


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
         f"TEST_DIR={tmp_path / 'test'}", "WEIGHTS=random", "MINUTES=1", "BATCH_SIZE=4", "COLOUR_COPIES=1", "FEEDBACK=1", f"OUT={out}"],
        cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    for key in ("schema_version", "arch", "layer", "weights", "train_images", "test_images", "train_seconds", "epochs",
                "psnr_mean", "psnr_std", "ssim_mean", "baseline_mean_colour_psnr", "baseline_thumbnail_psnr"):
        assert key in result, key
    assert (result["arch"], result["layer"], result["weights"]) == ("vgg16", "block5", "random")
    assert (result["train_images"], result["test_images"]) == (6, 3) and result["epochs"] >= 1
    assert result["batch_size"] == 4 and result["colour_copies"] == 1
    # the budget is shared by the decoder and its feedback stage, and both train
    assert result["feedback"] == 1 and len(result["feedback_epochs"]) == 1 and result["feedback_epochs"][0] >= 1
    # the budget is recorded and covers the closed-form start (vgg16 block5 is 7x7: it has one), whose paths stay as
    # fitted
    assert result["closed_form_paths"] == "fixed" and result["minutes"] == 1
    assert 0 < result["fit_seconds"] <= result["train_seconds"] and 3 < result["psnr_mean"] < 60
    assert "vgg16 block5 (random weights): PSNR" in done.stdout and "(95% intervals over 3 test photos)" in done.stdout
    # the layer's own view: the mean-colour image lies farther from the original in its features than the thumbnail
    assert 0 < result["baseline_thumbnail_feature_error"] < result["baseline_mean_colour_feature_error"]
    assert result["feature_error_mean"] > 0
    assert len(result["provenance"]["git_commit"]) >= 7
    # no sources.csv: each test image is its own photo; margins paired by image, with intervals around them
    assert result["test_sources"] == 3
    for baseline in ("mean_colour", "thumbnail"):
        assert result[f"psnr_minus_{baseline}"] == pytest.approx(result["psnr_mean"] - result[f"baseline_{baseline}_psnr"])
        assert result[f"psnr_minus_{baseline}_ci_low"] <= result[f"psnr_minus_{baseline}"] <= result[f"psnr_minus_{baseline}_ci_high"]
    # every image's scores, by column: the evaluation's per-image table
    names = {p.name for p in folders.image_files(tmp_path / "test")}
    per_image = result["per_image"]
    assert {"psnr", "ssim", "decoder_psnr", "baseline_mean_colour_psnr", "baseline_thumbnail_psnr"} <= set(per_image)
    assert all(set(column) == names for column in per_image.values())
    assert np.mean(list(per_image["psnr"].values())) == pytest.approx(result["psnr_mean"])
    assert set(per_image["lpips"].values()) == {None}  # not computed: null, never NaN


def _evaluation_record_fields() -> set:
    """The fields `lib.evaluation.result_record` writes, from a stand-in fit and evaluation."""
    import pandas as pd

    from lib.evaluation import BASELINES, METRICS, Evaluation, result_record

    per_image = pd.DataFrame({"image": ["a.png"], **{name: [1.0] for name in METRICS + BASELINES}})
    fit = {"feature_shape": [512, 7, 7], "decoder_params": 1, "closed_form_paths": "fixed", "train_images": 2,
           "batch_size": 2, "epochs": 1, "steps": 1, "feedback": 0, "feedback_epochs": [], "best_epoch": 0,
           "start_val_loss": float("nan"), "best_val_loss": float("nan"), "train_seconds": 1.0, "fit_seconds": 0.5,
           "device": "cpu"}
    encoder = {"weights": "random", "weights_detail": "", "encode_seconds": 1.0, "normalisation": "imagenet"}
    return set(result_record("resnet34", "layer4", {"decoder": "resshuffle", "width": 8}, fit, encoder,
                             Evaluation(per_image, None, None, 0, 0.0)))


def test_quality_with_an_epoch_budget_is_deterministic_and_writes_the_result_schema(tmp_path):
    from lib.evaluation import SCHEMA_VERSION

    write_images(tmp_path / "train", 4)
    write_images(tmp_path / "test", 2, seed=1)

    def run():
        return quality.quality("resnet34", "layer4", tmp_path / "train", tmp_path / "test", "random", epochs=1,
                               width=32, batch_size=4, feedback=1, progress=False)

    first, second = run(), run()
    assert first["psnr_mean"] == second["psnr_mean"] and first["per_image"] == second["per_image"]
    assert (first["epochs"], first["feedback_epochs"], first["minutes"]) == (1, [1], None)
    # the study's record (the evaluate step's summary.json), plus the benchmark's own fields
    assert first["schema_version"] == SCHEMA_VERSION
    assert _evaluation_record_fields() <= set(first), _evaluation_record_fields() - set(first)
    assert {"match_requested", "train_on_test_copies", "test_sources", "psnr_ci_low", "psnr_minus_mean_colour_ci_high",
            "wins_vs_thumbnail", "per_image"} <= set(first)
    # the CLI: an epoch budget, printed and written; a budget of both kinds is refused
    out = tmp_path / "q.json"
    assert quality.main(["--arch", "resnet34", "--layer", "layer4", "--train-dir", str(tmp_path / "train"),
                         "--test-dir", str(tmp_path / "test"), "--weights", "random", "--epochs", "1", "--width", "32",
                         "--batch-size", "4", "--feedback", "1", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["psnr_mean"] == pytest.approx(first["psnr_mean"], abs=1e-4)
    with pytest.raises(SystemExit):
        quality.main(["--arch", "resnet34", "--layer", "layer4", "--test-dir", "x", "--out", "y", "--epochs", "1",
                      "--minutes", "1"])


def test_views_cut_each_training_photo_as_the_study_cuts_its_photos(tmp_path, monkeypatch):
    (tmp_path / "train").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # smooth photos: a view and the centre crop are compared after different resampling
        coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
        coarse.resize((400, 300), Image.BICUBIC).save(tmp_path / "train" / f"{i}.png")
    write_images(tmp_path / "test", 2, seed=1)
    names, one = folders.load_folder(tmp_path / "train")
    _, cut = folders.load_folder(tmp_path / "train", views=3, seed=0)
    assert len(names) == 3 and one.shape == (3, 224, 224, 3) and cut.shape == (9, 224, 224, 3)
    # photo by photo: views of one photo sit together, the first its centred square, the others closer crops
    for photo in range(3):
        views = cut[3 * photo : 3 * photo + 3]
        assert np.abs(views[0].astype(int) - one[photo].astype(int)).mean() < 8  # same region, resampled in another order
        assert all(np.abs(views[0].astype(int) - v.astype(int)).mean() > 20 for v in views[1:])
    assert np.array_equal(cut, folders.load_folder(tmp_path / "train", views=3, seed=0)[1])  # seeded
    assert not np.array_equal(cut, folders.load_folder(tmp_path / "train", views=3, seed=1)[1])
    # the benchmark trains on every view (and its flip) and counts photos; folds stay whole photos
    from lib import training

    seen, original = {}, training.fit_decoder

    def fit_decoder(settings, features, images, **kwargs):
        seen.update(groups=kwargs["groups"].tolist(), images=len(images))
        return original(settings, features, images, **kwargs)

    monkeypatch.setattr(training, "fit_decoder", fit_decoder)
    result = quality.quality("resnet34", "layer4", tmp_path / "train", tmp_path / "test", "random", epochs=1,
                             width=32, batch_size=4, feedback=0, progress=False, views=3)
    assert (result["train_images"], result["views"], result["test_images"]) == (3, 3, 2)
    # 3 photos x 3 views, then their flips: a photo's views and flips share its fold
    assert seen["images"] == 18 and seen["groups"] == [0, 0, 0, 1, 1, 1, 2, 2, 2] * 2
    assert "3 train (3 views each) / 2 test images" in quality.summary_line(result, "q.json")
    with pytest.raises(folders.BenchError, match="VIEWS must be at least 1, got 0"):
        quality.quality("resnet34", "layer4", tmp_path / "train", tmp_path / "test", "random", epochs=1, views=0)
    with pytest.raises(folders.BenchError, match="VIEWS cuts the training photos"):
        quality.quality("resnet34", "layer4", None, tmp_path / "test", "random", epochs=1, views=2,
                        train_on_test_copies=2)


def _fake_quality(calls):
    """Stands in for `quality` in the offline sweep: a complete record whose score differs by layer, baselines fixed."""
    from lib.evaluation import SCHEMA_VERSION

    def run(arch, layer, train_dir, test_dir, weights, minutes, colour_copies=0, match=quality.MATCH_STEPS):
        calls.append((arch, layer, weights, minutes, colour_copies))
        psnr = {"layer1": 29.0, "layer4": 17.0, "block2": 27.0}.get(layer, 20.0)
        grid = check_layer(arch, layer)[1]
        match = matching.steps_at(grid, match)  # feature matching where the grid is fine enough
        baselines = {"mean_colour": 17.87, "thumbnail": 28.39}
        return {
            "schema_version": SCHEMA_VERSION, "arch": arch, "layer": layer, "weights": weights, "minutes": minutes,
            "colour_copies": colour_copies, "train_images": 2, "test_images": 1, "psnr_mean": psnr, "psnr_std": 1.0,
            "ssim_mean": 0.5, "psnr_ci_low": psnr - 1, "psnr_ci_high": psnr + 1, "test_sources": 1,
            **{f"baseline_{b}_psnr": value for b, value in baselines.items()},
            # intervals over the test photos, as `quality` writes them
            **{f"psnr_minus_{b}{end}": psnr - value + shift for b, value in baselines.items()
               for end, shift in (("", 0), ("_ci_low", -1), ("_ci_high", 1))},
            "feature_error_mean": 0.2, "baseline_thumbnail_feature_error": 0.25,
            "baseline_mean_colour_feature_error": 0.1 if layer == "layer4" else 0.5,
            "closed_form_paths": "fixed" if grid <= 28 else "none", "feedback": quality.FEEDBACK_STAGES,
            "match_steps": match, "match_levels": matching.levels_record(match),
            "decoder_psnr_mean": psnr - 0.5 if match else psnr, "epochs": 3, "train_seconds": 60.0,
            "normalisation": "native" if arch == "efficientnet_lite0" else "imagenet",
            "per_image": {"psnr": {f.name: psnr for f in folders.image_files(test_dir)}},
        }
    return run


def test_offline_sweep_measures_each_layer_once_and_judges_its_targets(tmp_path):
    write_images(tmp_path / "train", 2)
    write_images(tmp_path / "test", 1, seed=1)
    out, calls = tmp_path / "offline", []
    table = offline.offline(out, tmp_path / "train", tmp_path / "test", 10, run=_fake_quality(calls))
    # the study's 14 layers with random weights, then EfficientNet-Lite0's 5 stages with ImageNet and random weights
    assert len(calls) == 24 and all(c[3] == 10 for c in calls)
    assert [c[2] for c in calls] == ["random"] * 14 + ["imagenet"] * 5 + ["random"] * 5
    assert [c[:2] for c in calls[14:19]] == [("efficientnet_lite0", f"stage{i}") for i in range(5)]
    copies = {(a, layer): c for a, layer, _, _, c in calls}
    assert copies[("resnet34", "layer3")] == copies[("resnet34", "layer4")] == 8 and copies[("vgg16", "block1")] == 0
    rows = {(r["arch"], r["layer"]): r for r in table["rows"]}
    # the rows carry the records' own field names
    assert rows[("resnet34", "layer1")]["psnr_mean"] == 29.0 and "psnr" not in rows[("resnet34", "layer1")]
    # layer1 beats both baselines; vgg16 block2 beats the mean colour but not the thumbnail it is held to;
    # layer4 misses the mean colour; vgg16 block1 (20 dB) is held to the mean colour alone
    assert rows[("resnet34", "layer1")]["met"] and rows[("resnet34", "layer1")]["psnr_minus_thumbnail"] == pytest.approx(0.61)
    assert not rows[("vgg16", "block2")]["met"] and rows[("vgg16", "block2")]["targets"] == {"mean_colour": 0.0, "thumbnail": 0.0}
    assert not rows[("resnet34", "layer4")]["met"] and rows[("vgg16", "block1")]["met"]
    assert not rows[("vit_base_patch16_224", "block0")]["met"]  # 20 dB, held to the thumbnail too
    # Lite0 (20 dB here) is held to its stage's bar: the thumbnail +1 dB at stage0 (missed), the mean colour +1 dB at
    # stage4 (met, by 2.13)
    learned = {r["layer"]: r for r in table["rows"] if r["weights"] == "imagenet"}
    assert learned["stage0"]["targets"] == {"thumbnail": 1.0} and not learned["stage0"]["met"]
    assert learned["stage4"]["targets"] == {"mean_colour": 1.0} and learned["stage4"]["met"]
    assert learned["stage3"]["targets_label"] == "thumbnail -1 dB"
    assert table["met"] == 13 and table["layers"] == 24 and table["missing"] == []
    assert (out / "resnet34-layer1.json").exists() and "13 of 24 layers measured meet" in (out / "table.md").read_text()
    assert (out / "efficientnet_lite0-stage0-imagenet.json").exists() and (out / "efficientnet_lite0-stage0.json").exists()
    assert "| efficientnet_lite0 (imagenet) | stage0 |" in (out / "table.md").read_text()
    assert json.loads((out / "vgg16-block3.json").read_text())["provenance"]["git_commit"]
    assert (out / "table.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the labels the report shows are stored with the rows
    assert rows[("vgg16", "block2")]["targets_label"] == "mean colour + thumbnail"
    assert rows[("vgg16", "block2")]["margins_label"] == "+9.13 [+8.13, +10.13] / -1.39 [-2.39, -0.39]"
    assert rows[("vgg16", "block2")]["feature_errors_label"] == "0.200 / 0.250 / 0.500"
    assert rows[("resnet34", "layer1")]["matching_label"] == f"{quality.MATCH_STEPS} (28.50)"
    assert rows[("vgg16", "block1")]["matching_label"] == "0"
    # the report reads the same table: every number from table.json
    frame, lines = benchmark_findings.offline_benchmark(out / "table.json")
    assert len(frame) == 24 and frame.loc["VGG16 block2", "met"] == "no" and frame.loc["VGG16 block2", "margin (dB) [95% interval]"] == "+9.13 [+8.13, +10.13] / -1.39 [-2.39, -0.39]"
    assert frame.loc["VGG16 block1", "margin (dB) [95% interval]"] == "+2.13 [+1.13, +3.13]"
    assert "| +9.13 [+8.13, +10.13] / -1.39 [-2.39, -0.39] | no |" in (out / "table.md").read_text()
    # 27 margins (three study layers held to two, Lite0's ten rows to one), two of them with an interval around target
    assert lines[-1] == ("15 of 27 margins have a 95% interval above their target (bootstrap over the 1 test photos); "
                         "not clear: ResNet34 layer1 vs its thumbnail, ResNet34 layer4 vs its mean colour.")
    assert lines[0].startswith("13 of 24 layers measured meet their targets (10 minutes of training per layer, 2 training and 1 test")
    assert frame.loc["EfficientNet-Lite0 (ImageNet) stage0", "held to"] == "thumbnail +1 dB"
    assert frame.loc["EfficientNet-Lite0 stage0", "met"] == "no"  # the random twin, held to the same bar
    assert ("EfficientNet-Lite0 (ImageNet) stage0 misses its thumbnail +1 dB by 9.39 dB; in the layer's own features its "
            "reconstruction lies closer to the original than the thumbnail (0.200 vs 0.250).") in lines
    assert ("VGG16 block2 misses its thumbnail by 1.39 dB; in the layer's own features its reconstruction lies closer to "
            "the original than the thumbnail (0.200 vs 0.250).") in lines
    assert ("ResNet34 layer4 misses its mean colour by 0.87 dB; in the layer's own features its reconstruction lies "
            "farther from the original than the mean colour (0.200 vs 0.100).") in lines
    assert frame.loc["VGG16 block2", "ε decoder / thumbnail / colour"] == "0.200 / 0.250 / 0.500"
    assert frame.loc["VGG16 block2", "feedback stages"] == quality.FEEDBACK_STAGES
    assert f"| 0.200 / 0.250 / 0.500 | 0 | fixed | {quality.FEEDBACK_STAGES} | 0 | 3 |" in (out / "table.md").read_text()
    assert frame.loc["ResNet34 layer4", "closed-form paths"] == "fixed" and frame.loc["VGG16 block2", "closed-form paths"] == "none"
    # resnet34 layer1 (56x56) ran feature matching: its steps and the decoder's own PSNR before them are shown
    assert f"| {quality.FEEDBACK_STAGES} | {quality.MATCH_STEPS} (28.50) | 3 |" in (out / "table.md").read_text()
    assert frame.loc["ResNet34 layer1", "matching steps (decoder alone)"] == f"{quality.MATCH_STEPS} (28.50)"
    assert frame.loc["VGG16 block1", "matching steps (decoder alone)"] == "0"
    assert "from -0.87 dB (ResNet34 layer4) to +11.13 dB (ResNet34 layer1)" in lines[-2]
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"rows": [], "met": 0, "layers": 0, "missing": ["vgg16/block1"]}))
    assert benchmark_findings.offline_benchmark(empty)[1][0].endswith("not measured: vgg16/block1.")
    assert benchmark_findings.offline_benchmark(tmp_path / "nowhere.json") == (None, [
        f"Not run under this reports root (no `{tmp_path / 'nowhere.json'}`): `make bench-offline` measures it."])
    # a second sweep at the same settings keeps every layer; another budget reruns only the layer asked for
    offline.offline(out, tmp_path / "train", tmp_path / "test", 10, run=_fake_quality(calls))
    assert len(calls) == 24
    table = offline.offline(out, tmp_path / "train", tmp_path / "test", 5, ["vgg16/block2"], run=_fake_quality(calls))
    assert calls[24:] == [("vgg16", "block2", "random", 5, 0)]
    assert table["layers"] == 1 and len(table["missing"]) == 23 and "Not measured at these settings" in (out / "table.md").read_text()
    assert "efficientnet_lite0/stage0/imagenet" in table["missing"] and "efficientnet_lite0/stage0" in table["missing"]
    # a row of another result schema is rerun
    row = json.loads((out / "resnet34-layer2.json").read_text())
    del row["schema_version"]
    (out / "resnet34-layer2.json").write_text(json.dumps(row))
    offline.offline(out, tmp_path / "train", tmp_path / "test", 10, run=_fake_quality(calls))
    # (vgg16 block2 again too: the sweep before measured it at 5 minutes)
    assert calls[25:] == [("resnet34", "layer2", "random", 10, 0), ("vgg16", "block2", "random", 10, 0)]
    # a matched row whose correction had other levels (the half-resolution map alone, before the pyramid) is rerun
    row = json.loads((out / "resnet34-layer1.json").read_text())
    row["match_levels"] = [[0.5, 1.0]]
    (out / "resnet34-layer1.json").write_text(json.dumps(row))
    offline.offline(out, tmp_path / "train", tmp_path / "test", 10, run=_fake_quality(calls))
    assert calls[27:] == [("resnet34", "layer1", "random", 10, 0)]
    # a learned row by name
    offline.offline(out, tmp_path / "train", tmp_path / "test", 5, ["efficientnet_lite0/stage2/imagenet"], run=_fake_quality(calls))
    assert calls[28:] == [("efficientnet_lite0", "stage2", "imagenet", 5, 0)]
    # a row tested on other images (an earlier split), or fed another normalisation, is rerun
    row = json.loads((out / "vgg16-block3.json").read_text())
    row["per_image"] = {"psnr": {"hubble_deep_field_00.png": 20.0}}
    (out / "vgg16-block3.json").write_text(json.dumps(row))
    row = json.loads((out / "efficientnet_lite0-stage1-imagenet.json").read_text())
    row["normalisation"] = "imagenet"
    (out / "efficientnet_lite0-stage1-imagenet.json").write_text(json.dumps(row))
    table = offline.offline(out, tmp_path / "train", tmp_path / "test", 10, run=_fake_quality(calls))
    # (and Lite0 stage2 again: the call before measured it at 5 minutes)
    assert calls[29:] == [("vgg16", "block3", "random", 10, 0), ("efficientnet_lite0", "stage1", "imagenet", 10, 0),
                          ("efficientnet_lite0", "stage2", "imagenet", 10, 0)]
    assert table["settings"]["test_photos"] == [f.name for f in folders.image_files(tmp_path / "test")]  # no sources.csv: each image its own photo
    with pytest.raises(folders.BenchError, match="unknown layer.*vgg16/block9.*arch/layer"):
        offline.offline(out, tmp_path / "train", tmp_path / "test", 5, ["vgg16/block9"], run=_fake_quality(calls))


def test_learned_sweep_measures_lite0_alone_without_matching(tmp_path):
    write_images(tmp_path / "train", 2)
    write_images(tmp_path / "test", 1, seed=1)
    out, calls, seen = tmp_path / "learned", [], []
    fake = _fake_quality(calls)

    def run(*args, **kwargs):
        seen.append(kwargs["match"])
        return fake(*args, **kwargs)

    table = offline.offline(out, tmp_path / "train", tmp_path / "test", 10, run=run, name="learned")
    assert [c[:3] for c in calls] == [("efficientnet_lite0", f"stage{i}", w) for w in ("imagenet", "random")
                                      for i in range(5)]
    assert set(seen) == {0} and table["settings"]["match"] == 0 and table["settings"]["sweep"] == "learned"
    assert table["layers"] == 10 and not table["missing"]
    assert all(r["matching_label"] == "0" for r in table["rows"])
    # kept on a second sweep; a row measured with feature matching (the offline sweep's) is rerun
    offline.offline(out, tmp_path / "train", tmp_path / "test", 10, run=run, name="learned")
    assert len(calls) == 10
    row = json.loads((out / "efficientnet_lite0-stage1-imagenet.json").read_text())
    row["match_steps"] = quality.MATCH_STEPS
    (out / "efficientnet_lite0-stage1-imagenet.json").write_text(json.dumps(row))
    offline.offline(out, tmp_path / "train", tmp_path / "test", 10, run=run, name="learned")
    assert calls[10:] == [("efficientnet_lite0", "stage1", "imagenet", 10, 0)]
    # the study's layers are not rows of this sweep; a bench-colour run under a row's name is never overwritten
    with pytest.raises(folders.BenchError, match="resnet34/layer1 for the learned sweep.*efficientnet_lite0/stage0"):
        offline.offline(out, tmp_path / "train", tmp_path / "test", 10, ["resnet34/layer1"], run=run, name="learned")
    (out / "efficientnet_lite0-stage4.json").write_text(json.dumps({"arch": "efficientnet_lite0", "flips_psnr": 13.0}))
    with pytest.raises(folders.BenchError, match="not a bench-quality record.*-colour.json"):
        offline.offline(out, tmp_path / "train", tmp_path / "test", 10, run=run, name="learned")


def test_offline_sweep_runs_from_make(tmp_path):
    from lib.evaluation import SCHEMA_VERSION

    done = subprocess.run(
        ["make", "--no-print-directory", "bench-offline", f"REPORTS={tmp_path}", "ONLY=resnet34/layer4", "MINUTES=0.01"],
        cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    row = json.loads((tmp_path / "bench" / "offline" / "resnet34-layer4.json").read_text())
    from lib import config, metrics

    demo = config.resolve("demo")
    counts = data.split_counts(data.make_split(demo["data"], demo["seed"]))  # the demo's split, train + val vs test
    assert (row["weights"], row["colour_copies"], row["train_images"], row["test_images"]) == (
        "random", 8, counts["train"] + counts["val"], counts["test"])
    # its mean-colour baseline is the test folder's own
    _, test_images = folders.load_folder(tmp_path / "bench" / "skimage" / "test")
    target = metrics.Pixels.from_uint8(test_images)
    expected = float(metrics.psnr(metrics.mean_colour_baseline(target), target).mean())
    assert row["baseline_mean_colour_psnr"] == pytest.approx(expected, abs=1e-6) and 5 < row["psnr_mean"] < 40
    assert row["schema_version"] == SCHEMA_VERSION and row["minutes"] == 0.01
    assert "| resnet34 | layer4 |" in done.stdout and "Not measured at these settings" in done.stdout


def test_quality_benchmark_input_errors(tmp_path):
    write_images(tmp_path / "ok", 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(folders.BenchError, match="no images .* in '.*empty'"):
        folders.load_folder(tmp_path / "empty")
    with pytest.raises(folders.BenchError, match="does not exist"):
        folders.load_folder(tmp_path / "nope")
    (tmp_path / "ok" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(Exception, match="cannot read image '.*broken.jpg'"):
        folders.load_folder(tmp_path / "ok")
    ok = tmp_path / "ok"
    with pytest.raises(folders.BenchError, match="unknown layer 'layer7' for architecture 'resnet34'"):
        quality.quality("resnet34", "layer7", ok, ok, "random", 1)
    with pytest.raises(folders.BenchError, match="WEIGHTS must be imagenet or random"):
        quality.quality("resnet34", "layer1", ok, ok, "imagnet", 1)
    for budget in ({}, {"minutes": 1, "epochs": 1}):  # neither, or both
        with pytest.raises(folders.BenchError, match="either MINUTES .* or EPOCHS"):
            quality.quality("resnet34", "layer1", ok, ok, "random", **budget)
    with pytest.raises(folders.BenchError, match="MINUTES must be positive"):
        quality.quality("resnet34", "layer1", ok, ok, "random", 0)
    with pytest.raises(folders.BenchError, match="EPOCHS must be at least 1, got 0"):
        quality.quality("resnet34", "layer1", ok, ok, "random", epochs=0)
    with pytest.raises(folders.BenchError, match="BATCH_SIZE must be at least 2"):
        quality.quality("resnet34", "layer1", ok, ok, "random", 1, batch_size=1)
    with pytest.raises(folders.BenchError, match="COLOUR_COPIES must be 0 or more"):
        quality.quality("resnet34", "layer1", ok, ok, "random", 1, colour_copies=-1)
    with pytest.raises(folders.BenchError, match="FEEDBACK must be 0 or more"):
        quality.quality("resnet34", "layer1", ok, ok, "random", 1, feedback=-1)
    with pytest.raises(folders.BenchError, match="TRAIN_ON_TEST_COPIES must be 0 or more, got -1"):
        quality.quality("resnet34", "layer1", None, ok, "random", 1, train_on_test_copies=-1)
    for train_dir, copies in ((ok, 2), (None, 0)):  # both, or neither
        with pytest.raises(folders.BenchError, match="either TRAIN_DIR or TRAIN_ON_TEST_COPIES"):
            quality.quality("resnet34", "layer1", train_dir, ok, "random", 1, train_on_test_copies=copies)


def test_in_domain_control_trains_on_recoloured_copies_of_the_test_images(tmp_path):
    write_images(tmp_path / "test", 3, seed=1)
    out = tmp_path / "q.json"
    done = subprocess.run(
        ["make", "--no-print-directory", "bench-quality", "ARCH=resnet34", "LAYER=layer4", "TRAIN_ON_TEST_COPIES=2",
         f"TEST_DIR={tmp_path / 'test'}", "WEIGHTS=random", "EPOCHS=1", "BATCH_SIZE=2", "FEEDBACK=0", f"OUT={out}"],
        cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    # 2 copies of each of the 3 test images, never the originals (TRAIN_DIR's default folder is not read)
    assert (result["train_on_test_copies"], result["train_images"], result["test_images"]) == (2, 6, 3), result
    assert (result["epochs"], result["minutes"]) == (1, None) and 3 < result["psnr_mean"] < 60  # make's EPOCHS=
    assert "6 train (in-domain control: 2 recoloured copies of each test image) / 3 test images" in done.stdout


def test_speed_benchmark_measures_both_loops(tmp_path):
    files = speed.synthetic_pngs(tmp_path, 2, size=(1020, 680))
    row = speed.measure("resnet34", "layer4", files, batch_size=2, steps=2, device=torch.device("cpu"), width=32)
    assert set(row) >= {"arch", "layer", "pipeline_img_s", "naive_img_s", "ratio", "peak_mem_mb"}
    assert row["peak_mem_mb"] > 0 and row["ratio"] == pytest.approx(row["pipeline_img_s"] / row["naive_img_s"], rel=0.02)
    # a step on cached features skips the decoding, resizing and encoder pass every naive step makes
    assert row["pipeline_img_s"] > row["naive_img_s"] > 0, row


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
        cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert (result["arch"], result["layer"], result["copies"], result["train_images"]) == ("resnet34", "layer2", 1, 16)
    ceiling = result["baseline_mean_colour_psnr"]
    # a single colour per image can at best equal the image's own mean colour
    for key in ("flips_psnr", "flips_psnr_bound", "copies_psnr", "copies_psnr_bound", "indomain_psnr"):
        assert 5 < result[key] <= ceiling + 1e-6, key
    assert result["flips_psnr_bound"] >= result["flips_psnr"] - 1e-6
    # flat colours through a random network are largely recoverable (one colour for all would score ~12 dB), and
    # with 16 training images, jittered copies of them help the regression (measured: 25.9 -> 27.6 dB)
    assert result["flips_psnr"] > 22 and result["copies_psnr"] > result["flips_psnr"] + 0.5, result
    # fitted on recoloured copies of the test colours themselves, the readout sits between them: nearer still
    assert result["indomain_copies"] == 8 and result["indomain_psnr"] > result["copies_psnr"], result
    assert "predicted mean colour from pooled features" in done.stdout
    # flat colours have no layout: their cells' noise is not something features of other images teach
    assert result["layout_grid"] == 28 and result["layout_train_r2"] < 0.2 and result["layout_test_r2"] < 0.2, result
    assert "across training photos" in done.stdout
    # the closed-form linear inverse of 28x28 cells, beside the thumbnail of that grid
    assert 5 < result["linear_inverse_psnr"] < 60 and result["baseline_thumbnail_psnr"] > 30 and "linear inverse" in done.stdout


def layout_case(n, mixing, seed):
    """Images whose 4x4 thumbnails are random, and 'features' at that grid that are a fixed linear mix of each
    cell's colour (plus mild noise): layout a readout can learn, from `mixing` (C x 3)."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0.2, 0.8, (n, 4, 4, 3))
    images = (np.kron(small, np.ones((1, 8, 8, 1))) * 255).round().astype(np.uint8)  # 32 x 32, 8x8 blocks
    cells = torch.from_numpy(small).permute(0, 3, 1, 2)  # n x 3 x 4 x 4
    features = torch.einsum("ck,nkhw->nchw", torch.from_numpy(mixing), cells) + 0.01 * torch.randn(n, len(mixing), 4, 4)
    return features.float(), images


def test_layout_readout_tells_layout_that_carries_over_from_layout_that_does_not():
    mixing = np.random.default_rng(0).normal(size=(16, 3))
    features, images = layout_case(24, mixing, seed=1)
    groups = torch.arange(24) * 4 // 24
    lambdas = (1e-4, 1e-2, 1.0)
    test_features, test_images = layout_case(8, mixing, seed=2)
    same = colour.layout_readout(features, images, groups, test_features, test_images, lambdas)
    assert same["layout_grid"] == 4 and same["layout_train_r2"] > 0.95 and same["layout_test_r2"] > 0.95, same
    # test photos whose layer encodes colour another way: what the training photos taught predicts worse than nothing
    other, _ = layout_case(8, -mixing, seed=2)
    shifted = colour.layout_readout(features, images, groups, other, test_images, lambdas)
    assert shifted["layout_train_r2"] == pytest.approx(same["layout_train_r2"]) and shifted["layout_test_r2"] < -0.5, shifted


def test_linear_inverse_reads_the_thumbnail_from_cells_that_encode_it():
    mixing = np.random.default_rng(0).normal(size=(16, 3))
    torch.manual_seed(0)  # layout_case's feature noise
    features, images = layout_case(48, mixing, seed=1)
    groups = torch.arange(48) * 4 // 48
    test_features, test_images = layout_case(8, mixing, seed=2)
    read = colour.linear_inverse(features, images, groups, test_features, test_images)
    # cells that are a linear mix of their colour: the closed-form start recovers about the thumbnail of the grid
    # (bilinear where the thumbnail is bicubic), far above what features unrelated to the image give
    assert read["linear_inverse_kernel"] == 1 and read["baseline_thumbnail_psnr"] > 20, read
    assert read["linear_inverse_psnr"] > read["baseline_thumbnail_psnr"] - 1.5, read
    noise = colour.linear_inverse(torch.randn_like(features), images, groups, torch.randn_like(test_features),
                                  test_images)
    assert noise["linear_inverse_psnr"] < read["linear_inverse_psnr"] - 5, (noise, read)


def test_colour_jitter_changes_colour_not_layout():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    jittered = data.colour_jitter(images, np.random.default_rng(1))
    assert jittered.shape == images.shape and jittered.dtype == np.uint8
    assert np.abs(jittered.astype(float).mean((1, 2)) - images.mean((1, 2))).max() > 5
    for a, b in zip(images.astype(float), jittered.astype(float)):  # same picture: channels stay correlated
        assert np.corrcoef(a[..., 0].ravel(), b[..., 0].ravel())[0, 1] > 0.8
    with pytest.raises(folders.BenchError, match="^COPIES must be 0 or more, got -1"):
        colour.colour("resnet34", "layer4", "x", "x", "random", copies=-1)
    with pytest.raises(folders.BenchError, match="^INDOMAIN_COPIES must be 0 or more, got -2"):
        colour.colour("resnet34", "layer4", "x", "x", "random", indomain_copies=-2)


def test_colour_benchmark_needs_two_training_photos(tmp_path):
    flat_colour_images(tmp_path / "train", 1, seed=0)
    flat_colour_images(tmp_path / "test", 2, seed=1)
    with pytest.raises(folders.BenchError, match="needs at least 2 training images .* found 1"):
        colour.colour("resnet34", "layer1", tmp_path / "train", tmp_path / "test", "random", copies=0)


def test_test_photos_come_from_sources_csv(tmp_path):
    write_images(tmp_path / "test", 4)
    names = [p.name for p in folders.image_files(tmp_path / "test")]
    assert folders.image_sources(tmp_path / "test", names) == names  # no file: each image its own photo
    (tmp_path / "test" / "sources.csv").write_text("image,source\n000.png,a\n001.png,a\n002.png,b\n003.png,b\n")
    assert folders.image_sources(tmp_path / "test", names) == ["a", "a", "b", "b"]
    (tmp_path / "test" / "sources.csv").write_text("image,source\n000.png,a\n")
    with pytest.raises(folders.BenchError, match="does not list 3 image"):
        folders.image_sources(tmp_path / "test", names)
    (tmp_path / "test" / "sources.csv").write_text("file,photo\n000.png,a\n")
    with pytest.raises(folders.BenchError, match="needs the columns image and source"):
        folders.image_sources(tmp_path / "test", names)


def test_exported_demo_folders_name_each_views_photo(tmp_path):
    counts = folders.export_demo(tmp_path)
    for split in ("train", "test"):
        sources = (tmp_path / split / "sources.csv").read_text().splitlines()
        assert sources[0] == "image,source" and len(sources) == counts[split] + 1
        files = {p.name for p in folders.image_files(tmp_path / split)}
        assert {line.split(",")[0] for line in sources[1:]} == files
    test_photos = {line.split(",")[1] for line in (tmp_path / "test" / "sources.csv").read_text().splitlines()[1:]}
    train_photos = {line.split(",")[1] for line in (tmp_path / "train" / "sources.csv").read_text().splitlines()[1:]}
    assert len(test_photos) == 3 and not test_photos & train_photos  # split by photo
    assert not list(tmp_path.rglob("*.tmp.png"))
