import json
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from lib import ROOT, benchmark_findings, data, decoders, matching
from lib.bench import colour, folders, offline, quality, speed
from lib.registry import check_layer

# a one-epoch tiny decoder: what every test that trains here runs (the tiny profile's settings, made explicit)
SMALL = {"epochs": 1, "width": 32, "batch_size": 4, "feedback": 1}


def write_images(folder, n, seed=0, size=(300, 260)):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")


def mean_image_psnr(train_dir, test_dir) -> float:
    """The no-information baseline computed here: the training folder's mean image against each test image."""
    from lib import metrics

    target = metrics.Pixels.from_uint8(folders.load_folder(test_dir)[1])
    mean = data.training_mean_image(folders.load_folder(train_dir)[1])
    return float(metrics.psnr(metrics.mean_image_baseline(mean, len(target.values)), target).mean())


def test_quality_benchmark_writes_the_promised_json(tmp_path):
    write_images(tmp_path / "train", 6)
    write_images(tmp_path / "val", 2, seed=2)
    write_images(tmp_path / "test", 3, seed=1)
    out = tmp_path / "q.json"
    done = subprocess.run(
        ["make", "--no-print-directory", "bench-quality", "PROFILE=tiny", "ARCH=vgg16", "LAYER=block5",
         f"TRAIN_DIR={tmp_path / 'train'}", f"VAL_DIR={tmp_path / 'val'}", f"TEST_DIR={tmp_path / 'test'}",
         "WEIGHTS=random", "EPOCHS=1", "WIDTH=32", "BATCH_SIZE=4", "FEEDBACK=1", f"OUT={out}"],
        cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    for key in ("schema_version", "arch", "layer", "weights", "profile", "settings", "train_images",
                "validation_images", "test_images", "train_seconds", "epochs", "images_seen", "improved_on_start",
                "still_falling", "psnr_mean", "psnr_std", "ssim_mean", "baseline_mean_image_psnr",
                "baseline_mean_colour_psnr", "baseline_thumbnail_psnr"):
        assert key in result, key
    assert "colour_copies" not in result  # no colour copies of the training photos any more
    assert (result["arch"], result["layer"], result["weights"], result["profile"]) == ("vgg16", "block5", "random", "tiny")
    # the settings trained with: the tiny profile's for vgg16 block5, the make variables applied, as the study resolves them
    assert result["settings"] == quality.layer_settings("tiny", "vgg16", "block5", SMALL, "random")[0]
    assert (result["settings"]["epochs"], result["settings"]["width"], result["settings"]["batch_size"]) == (1, 32, 4)
    assert (result["train_images"], result["validation_images"], result["test_images"]) == (6, 2, 3)
    # an epoch budget: one epoch over the 6 training photos, and one of the feedback stage
    assert (result["epochs"], result["minutes"], result["images_seen"]) == (1, None, 6)
    assert result["batch_size"] == 4 and result["width"] == 32
    # the feedback stage trained; it is kept only where it left validation no worse than the decoder before it
    assert result["feedback_requested"] == 1 and result["feedback"] in (0, 1)
    assert result["feedback_epochs"] == [1] * result["feedback"]
    # a validation folder: the checkpoint is checked against the untrained start, and the trend recorded
    assert isinstance(result["improved_on_start"], bool) and isinstance(result["still_falling"], bool)
    # a closed-form start, kept where it beat the mean image alone on validation (random images: it may not)
    assert result["closed_form_paths"] in ("fixed", "zero") and 3 < result["psnr_mean"] < 60
    assert "vgg16 block5 (random weights, profile tiny): PSNR" in done.stdout
    assert "(95% intervals over 3 test photos)" in done.stdout and "6 train / 2 validation / 3 test images" in done.stdout
    # the layer's own view: the mean-colour image lies farther from the original in its features than the thumbnail
    assert 0 < result["baseline_thumbnail_feature_error"] < result["baseline_mean_colour_feature_error"]
    assert result["feature_error_mean"] > 0 and result["baseline_mean_image_feature_error"] > 0
    assert len(result["provenance"]["git_commit"]) >= 7
    # the no-information baseline is the training photos' mean image, never the test images'
    assert result["baseline_mean_image_psnr"] == pytest.approx(mean_image_psnr(tmp_path / "train", tmp_path / "test"),
                                                                abs=1e-4)
    assert result["baseline_mean_image_psnr"] != pytest.approx(mean_image_psnr(tmp_path / "test", tmp_path / "test"),
                                                                abs=1e-2)
    # no sources.csv: each test image is its own photo; margins over the three baselines paired by image, with intervals
    assert result["test_sources"] == 3
    for baseline in ("mean_image", "mean_colour", "thumbnail"):
        assert result[f"psnr_minus_{baseline}"] == pytest.approx(result["psnr_mean"] - result[f"baseline_{baseline}_psnr"])
        assert result[f"psnr_minus_{baseline}_ci_low"] <= result[f"psnr_minus_{baseline}"] <= result[f"psnr_minus_{baseline}_ci_high"]
        assert result[f"wins_vs_{baseline}"] * 3 == pytest.approx(round(result[f"wins_vs_{baseline}"] * 3))  # of 3 images
    # every image's scores, by column: the evaluation's per-image table
    names = {p.name for p in folders.image_files(tmp_path / "test")}
    per_image = result["per_image"]
    assert {"psnr", "ssim", "decoder_psnr", "baseline_mean_image_psnr", "baseline_mean_colour_psnr",
            "baseline_thumbnail_psnr"} <= set(per_image)
    assert all(set(column) == names for column in per_image.values())
    assert np.mean(list(per_image["psnr"].values())) == pytest.approx(result["psnr_mean"])
    assert np.mean(list(per_image["baseline_mean_image_psnr"].values())) == pytest.approx(result["baseline_mean_image_psnr"])
    assert set(per_image["lpips"].values()) == {None}  # not computed: null, never NaN


def _evaluation_record_fields() -> set:
    """The fields `lib.evaluation.result_record` writes, from a stand-in fit and evaluation."""
    import pandas as pd

    from lib.evaluation import BASELINES, METRICS, Evaluation, result_record

    per_image = pd.DataFrame({"image": ["a.png"], **{name: [1.0] for name in METRICS + BASELINES}})
    fit = {"feature_shape": [512, 7, 7], "decoder_params": 1, "closed_form_paths": "fixed", "train_images": 2,
           "batch_size": 2, "epochs": 1, "steps": 1, "feedback": 0, "feedback_epochs": [], "best_epoch": 0,
           "images_seen": 2, "improved_on_start": None, "still_falling": None,
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
        return quality.quality("tiny", "resnet34", "layer4", tmp_path / "train", tmp_path / "test", overrides=SMALL,
                               weights="random", progress=False)

    first, second = run(), run()
    assert first["psnr_mean"] == second["psnr_mean"] and first["per_image"] == second["per_image"]
    assert (first["epochs"], first["feedback_epochs"], first["minutes"], first["images_seen"]) == (1, [1], None, 4)
    assert (first["profile"], first["validation_images"], first["views"]) == ("tiny", 0, 1)
    # no validation folder: the last epoch is kept, and nothing is known of the start or the trend
    assert first["improved_on_start"] is None and first["still_falling"] is None
    assert first["settings"] == quality.layer_settings("tiny", "resnet34", "layer4", SMALL, "random")[0]
    # the study's record (the evaluate step's summary.json), plus the benchmark's own fields
    assert first["schema_version"] == SCHEMA_VERSION == 3
    assert _evaluation_record_fields() <= set(first), _evaluation_record_fields() - set(first)
    assert {"train_on_test_copies", "test_sources", "psnr_ci_low", "psnr_minus_mean_colour_ci_high",
            "psnr_minus_mean_image", "psnr_minus_mean_image_ci_low", "psnr_minus_mean_image_ci_high",
            "wins_vs_thumbnail", "wins_vs_mean_image", "baseline_mean_image_ssim", "per_image"} <= set(first)
    # the CLI: the same run from the profile and --set overrides, printed and written
    out = tmp_path / "q.json"
    assert quality.main(["--profile", "tiny", "--arch", "resnet34", "--layer", "layer4", "--train-dir",
                         str(tmp_path / "train"), "--test-dir", str(tmp_path / "test"), "--weights", "random",
                         "--set", "EPOCHS=1", "--set", "WIDTH=32", "--set", "BATCH_SIZE=4", "--set", "FEEDBACK=1",
                         "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["psnr_mean"] == pytest.approx(first["psnr_mean"], abs=1e-4) and written["settings"] == first["settings"]


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
    # the benchmark trains on every view, no flips, cut with the profile's seed, and counts photos; the folds are the
    # study's (groups None: contiguous quarters of the views in photo order)
    from lib import training

    seen, original = {}, training.fit_decoder

    def fit_decoder(settings, features, images, *args, **kwargs):
        seen.update(groups=kwargs["groups"], images=images.copy(), features=len(features))
        return original(settings, features, images, *args, **kwargs)

    monkeypatch.setattr(training, "fit_decoder", fit_decoder)
    result = quality.quality("tiny", "resnet34", "layer4", tmp_path / "train", tmp_path / "test", weights="random",
                             overrides={**SMALL, "feedback": 0}, progress=False, views=3)
    assert (result["train_images"], result["views"], result["test_images"]) == (3, 3, 2)
    # 3 photos x 3 views, each once (no flips), in the order load_folder cuts them with the profile's seed
    seed = quality.layer_settings("tiny", "resnet34", "layer4")[0]["seed"]
    assert len(seen["images"]) == seen["features"] == 9 and seen["groups"] is None
    assert np.array_equal(seen["images"], folders.load_folder(tmp_path / "train", views=3, seed=seed)[1])
    assert result["images_seen"] == 8  # one epoch over the views in batches of 4 (BatchNorm: the last single one skipped)
    assert "3 train (3 views each) / 0 validation / 2 test images" in quality.summary_line(result, "q.json")


def test_quality_benchmark_input_errors(tmp_path, monkeypatch, capsys):
    write_images(tmp_path / "ok", 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(folders.BenchError, match="no images .* in '.*empty'"):
        folders.load_folder(tmp_path / "empty")
    with pytest.raises(folders.BenchError, match="does not exist"):
        folders.load_folder(tmp_path / "nope")
    (tmp_path / "ok" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(Exception, match="cannot read image '.*broken.jpg'"):
        folders.load_folder(tmp_path / "ok")
    (tmp_path / "ok" / "broken.jpg").unlink()
    ok = tmp_path / "ok"
    # every check comes before any image is encoded or any decoder trained
    from lib import encoders, training

    def never(*args, **kwargs):
        raise AssertionError("encoded or trained before the input was checked")

    monkeypatch.setattr(encoders, "encode_images", never)
    monkeypatch.setattr(encoders, "plan_extractor", never)
    monkeypatch.setattr(training, "fit_decoder", never)

    def refused(match, *args, **kwargs):
        kwargs = {"weights": "random", "overrides": {"epochs": 1}, **kwargs}
        with pytest.raises(folders.BenchError, match=match):
            quality.quality(*args, progress=False, **kwargs)

    refused("unknown layer 'layer7' for resnet34", "tiny", "resnet34", "layer7", ok, ok)
    refused("unknown architecture 'resnet99'", "tiny", "resnet99", "layer1", ok, ok)
    refused("unknown profile 'nope'", "nope", "resnet34", "layer4", ok, ok)
    refused("WEIGHTS must be imagenet or random, got 'imagnet'", "tiny", "resnet34", "layer4", ok, ok, weights="imagnet")
    for minutes in (0, -1):
        refused(f"MINUTES must be positive, got {minutes}", "tiny", "resnet34", "layer4", ok, ok, minutes=minutes)
    refused("VIEWS must be at least 1, got 0", "tiny", "resnet34", "layer4", ok, ok, views=0)
    refused("VIEWS cuts the training photos", "tiny", "resnet34", "layer4", None, ok, views=2, train_on_test_copies=2)
    refused("BATCH_SIZE must be at least 2.*got 1", "tiny", "resnet34", "layer4", ok, ok,
            overrides={"epochs": 1, "batch_size": 1})
    refused("TRAIN_ON_TEST_COPIES must be 0 or more, got -1", "tiny", "resnet34", "layer4", None, ok,
            train_on_test_copies=-1)
    for train_dir, copies in ((ok, 2), (None, 0)):  # both, or neither
        refused("either TRAIN_DIR or TRAIN_ON_TEST_COPIES", "tiny", "resnet34", "layer4", train_dir, ok,
                train_on_test_copies=copies)
    # a profile that trains on augmented crops encoded on the fly is not what the benchmark can run
    refused("augment: true", "paper", "resnet34", "layer4", ok, ok)
    # --set: the study's knobs by make name, typed and checked as the study checks them
    assert quality.parse_overrides(["EPOCHS=2", "WIDTH=16", "MATCH=0", "DECODER=simple"]) == {
        "epochs": 2, "width": 16, "match_steps": 0, "decoder": "simple"}
    for words, match in ((["COLOUR_COPIES=1"], "COLOUR_COPIES: not a setting bench-quality overrides. Valid: EPOCHS"),
                         (["SEEDS=2"], "SEEDS: not a setting"), (["WIDTH=x"], "WIDTH must be an integer, got 'x'"),
                         (["EPOCHS=0"], "EPOCHS must be a positive integer, got 0"),
                         (["DECODER=unet"], "DECODER is 'unet'")):
        with pytest.raises(folders.BenchError, match=match):
            quality.parse_overrides(words)
    # the CLI: each is one clear error (exit 2) and nothing written
    out = tmp_path / "q.json"
    base = ["--profile", "tiny", "--arch", "resnet34", "--layer", "layer4", "--train-dir", str(ok), "--test-dir", str(ok),
            "--out", str(out)]
    for extra, match in ((["--set", "COLOUR_COPIES=1"], "COLOUR_COPIES: not a setting"),
                         (["--set", "BATCH_SIZE=1"], "BATCH_SIZE must be at least 2"),
                         (["--minutes", "0"], "MINUTES must be positive"), (["--views", "0"], "VIEWS must be at least 1"),
                         (["--train-on-test-copies", "2"], "either TRAIN_DIR or TRAIN_ON_TEST_COPIES"),
                         (["--layer", "layer7"], "unknown layer 'layer7'")):
        capsys.readouterr()
        assert quality.main(base + extra) == 2, extra
        assert match in capsys.readouterr().err and not out.exists(), extra
    with pytest.raises(SystemExit):  # argparse: weights are one of two names
        quality.main(base + ["--weights", "imagnet"])
    # make: a variable bench-quality does not take is refused before anything runs
    done = subprocess.run(["make", "--no-print-directory", "bench-quality", "ARCH=resnet34", "LAYER=layer4",
                           "COLOUR_COPIES=1", f"REPORTS={tmp_path}", f"OUT={out}"], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode != 0 and "COLOUR_COPIES" in done.stdout + done.stderr and not out.exists()


def test_in_domain_control_trains_on_recoloured_copies_of_the_test_images(tmp_path):
    write_images(tmp_path / "test", 3, seed=1)
    out = tmp_path / "q.json"
    done = subprocess.run(
        ["make", "--no-print-directory", "bench-quality", "PROFILE=tiny", "ARCH=resnet34", "LAYER=layer4",
         "TRAIN_ON_TEST_COPIES=2", f"TEST_DIR={tmp_path / 'test'}", "WEIGHTS=random", "EPOCHS=1", "WIDTH=32",
         "BATCH_SIZE=2", "FEEDBACK=0", f"REPORTS={tmp_path}", f"OUT={out}"],
        cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    # 2 copies of each of the 3 test images, never the originals; the default folders (the demo's exported split, its
    # training and validation photos) are neither read nor exported
    assert (result["train_on_test_copies"], result["train_images"], result["test_images"]) == (2, 6, 3), result
    assert result["validation_images"] == 0 and not (tmp_path / "bench" / "skimage").exists()
    assert (result["epochs"], result["minutes"], result["images_seen"], result["profile"]) == (1, None, 6, "tiny")
    assert (result["settings"]["batch_size"], result["feedback"]) == (2, 0) and 3 < result["psnr_mean"] < 60
    # its no-information baseline is the copies' mean image: recoloured, so not the test images' own mean
    assert result["baseline_mean_image_psnr"] != pytest.approx(mean_image_psnr(tmp_path / "test", tmp_path / "test"),
                                                                abs=1e-3)
    assert "6 train (in-domain control: 2 recoloured copies of each test image) / 0 validation / 3 test images" in done.stdout


# the offline sweep's stand-in scores: baselines fixed, the decoder's PSNR by row (20 dB where not named)
FAKE_BASELINES = {"mean_image": 12.0, "mean_colour": 17.87, "thumbnail": 28.39}
FAKE_PSNR = {("resnet34", "layer1"): 29.0, ("resnet34", "layer4"): 11.5, ("vgg16", "block1"): 12.5,
             ("vgg16", "block2"): 27.0, ("efficientnet_lite0", "stage0"): 29.0, ("efficientnet_lite0", "stage1"): 30.0,
             ("efficientnet_lite0", "stage2"): 27.5, ("efficientnet_lite0", "stage4"): 11.5}


def _fake_quality(calls):
    """Stands in for `quality` in the offline sweep, called as the sweep calls it: a complete record at the profile's
    settings for the row (resolved as `quality` resolves them), whose score differs by layer, baselines fixed, each
    margin with a 95% interval of +-1 dB."""
    from lib.evaluation import SCHEMA_VERSION

    def run(profile, arch, layer, train_dir, test_dir, *, val_dir=None, overrides=None, weights=None, minutes=None):
        calls.append({"profile": profile, "arch": arch, "layer": layer, "weights": weights, "minutes": minutes,
                      "overrides": overrides, "val_dir": val_dir})
        settings, encoder, study = quality.layer_settings(profile, arch, layer, overrides, weights)
        psnr = FAKE_PSNR.get((arch, layer), 20.0)
        grid = check_layer(arch, layer)[1]
        match = matching.steps_at(grid, study["match_steps"])  # feature matching where the grid is fine enough
        names = [f.name for f in folders.image_files(test_dir)]
        train = len(folders.image_files(train_dir))
        return {
            "schema_version": SCHEMA_VERSION, "arch": arch, "layer": layer, "weights": weights, "profile": profile,
            "settings": settings, "minutes": minutes, "views": 1, "train_images": train, "test_images": len(names),
            "match_requested": study["match_steps"], "normalisation_policy": encoder["normalisation"],
            "validation_images": len(folders.image_files(val_dir)) if val_dir is not None else 0,
            "psnr_mean": psnr, "psnr_std": 1.0, "ssim_mean": 0.5, "psnr_ci_low": psnr - 1, "psnr_ci_high": psnr + 1,
            "test_sources": len(names),
            **{f"baseline_{b}_psnr": value for b, value in FAKE_BASELINES.items()},
            # intervals over the test photos, as `quality` writes them
            **{f"psnr_minus_{b}{end}": psnr - value + shift for b, value in FAKE_BASELINES.items()
               for end, shift in (("", 0), ("_ci_low", -1), ("_ci_high", 1))},
            **{f"wins_vs_{b}": float(psnr > value) for b, value in FAKE_BASELINES.items()},
            "feature_error_mean": 0.2, "baseline_thumbnail_feature_error": 0.25,
            "baseline_mean_colour_feature_error": 0.1 if layer == "layer4" else 0.5,
            "baseline_mean_image_feature_error": 0.15 if layer == "layer4" else 0.6,
            "closed_form_paths": "fixed" if grid <= 28 else "none", "feedback": settings["feedback"],
            "match_steps": match, "match_levels": matching.levels_record(match),
            "decoder_psnr_mean": psnr - 0.5 if match else psnr, "epochs": settings["epochs"],
            "images_seen": settings["epochs"] * train, "improved_on_start": None if val_dir is None else True,
            "still_falling": None if val_dir is None else layer == "stage1", "train_seconds": 60.0,
            "normalisation": "native" if arch == "efficientnet_lite0" else "imagenet",
            "per_image": {"psnr": {name: psnr for name in names}},
        }
    return run


def _rows(calls):
    return [(c["arch"], c["layer"], c["weights"]) for c in calls]


def test_offline_sweep_measures_each_layer_once_and_judges_its_targets(tmp_path):
    write_images(tmp_path / "train", 2)
    write_images(tmp_path / "test", 1, seed=1)
    out, calls = tmp_path / "offline", []
    fake = _fake_quality(calls)
    table = offline.offline(out, tmp_path / "train", tmp_path / "test", minutes=10, run=fake)
    # the study's 14 layers with random weights, then EfficientNet-Lite0's 5 stages with ImageNet and random weights,
    # each at the demo profile's settings
    assert len(calls) == 24 and all(c["minutes"] == 10 and c["profile"] == "demo" for c in calls)
    assert all(c["overrides"] == {} and c["val_dir"] is None for c in calls)
    assert [c["weights"] for c in calls] == ["random"] * 14 + ["imagenet"] * 5 + ["random"] * 5
    assert _rows(calls)[14:19] == [("efficientnet_lite0", f"stage{i}", "imagenet") for i in range(5)]
    rows = {(r["arch"], r["layer"], r["weights"]): r for r in table["rows"]}
    row = rows[("resnet34", "layer1", "random")]
    # the rows carry the records' own field names (TABLE_FIELDS), and nothing the sweep no longer measures
    assert set(offline.TABLE_FIELDS) <= set(row) and "psnr" not in row and "colour_copies" not in row
    assert row["psnr_mean"] == 29.0 and row["profile"] == "demo" and row["baseline_mean_image_psnr"] == 12.0
    # every study layer is held to the no-information baseline on average: layer4 (-0.50) misses it, vgg16 block1
    # meets it (+0.50) though its interval reaches below, and block2 meets it far below its thumbnail
    assert all(rows[(a, l, "random")]["targets"] == {"mean_image": 0.0} for a, l, _ in _rows(calls)[:14])
    assert not rows[("resnet34", "layer4", "random")]["met"] and rows[("vgg16", "block1", "random")]["met"]
    assert rows[("vgg16", "block2", "random")]["met"] and rows[("resnet34", "layer1", "random")]["met"]
    # Lite0 (both weights) to its stage's bar: stage0 (+0.61 over the thumbnail, interval from -0.39) misses it, as
    # a margin of 0 or more needs the interval above it; stage1 (+1.61, from +0.61) meets it; stage2 (-0.89) is within
    # the 1 dB its bar concedes; stage3 (+8) and stage4 (-0.50) against the no-information baseline
    for weights in ("imagenet", "random"):
        lite0 = {layer: rows[("efficientnet_lite0", layer, weights)] for layer in offline.LITE0_TARGETS}
        assert {layer: r["targets"] for layer, r in lite0.items()} == offline.LITE0_TARGETS
        assert {layer: r["met"] for layer, r in lite0.items()} == {
            "stage0": False, "stage1": True, "stage2": True, "stage3": True, "stage4": False}
        assert lite0["stage0"]["psnr_minus_thumbnail"] == pytest.approx(0.61)
    assert offline.LITE0_TARGETS == {"stage0": {"thumbnail": 0.0}, "stage1": {"thumbnail": 0.0},
                                     "stage2": {"thumbnail": -1.0}, "stage3": {"mean_image": 0.0},
                                     "stage4": {"mean_image": 0.0}}
    assert table["met"] == 19 and table["layers"] == 24 and table["missing"] == []
    assert table["settings"] == {"train_images": 2, "test_images": 1, "validation_images": 0, "profile": "demo",
                                 "overrides": {}, "minutes": 10, "test_photos": ["000.png"], "sweep": "offline"}
    assert json.loads((out / "table.json").read_text()) == json.loads(json.dumps(table))
    markdown = (out / "table.md").read_text()
    assert (out / "resnet34-layer1.json").exists() and "19 of 24 layers measured meet their targets." in markdown
    assert (out / "efficientnet_lite0-stage0-imagenet.json").exists() and (out / "efficientnet_lite0-stage0.json").exists()
    assert "| efficientnet_lite0 (imagenet) | stage0 |" in markdown
    assert "| no information |" in markdown.splitlines()[0] and "| images seen | still learning |" in markdown.splitlines()[0]
    assert "| vgg16 | block2 | 27.00 ± 1.00 | 12.00 | 17.87 | 28.39 | no information | +15.00 [+14.00, +16.00] | yes |" in markdown
    assert "| efficientnet_lite0 (imagenet) | stage2 | 27.50 ± 1.00 | 12.00 | 17.87 | 28.39 | thumbnail -1 dB " \
           "| -0.89 [-1.89, +0.11] | yes |" in markdown
    assert json.loads((out / "vgg16-block3.json").read_text())["provenance"]["git_commit"]
    assert (out / "table.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the labels the report shows are stored with the rows
    assert rows[("vgg16", "block2", "random")]["targets_label"] == "no information"
    assert rows[("efficientnet_lite0", "stage2", "imagenet")]["targets_label"] == "thumbnail -1 dB"
    assert rows[("efficientnet_lite0", "stage0", "imagenet")]["margins_label"] == "+0.61 [-0.39, +1.61]"
    assert rows[("vgg16", "block2", "random")]["margins_label"] == "+15.00 [+14.00, +16.00]"
    assert rows[("vgg16", "block2", "random")]["feature_errors_label"] == "0.200 / 0.250 / 0.500"
    assert rows[("vgg16", "block1", "random")]["matching_label"] == "0"  # the demo profile matches no features
    # the report reads the same table: every number from table.json
    frame, lines = benchmark_findings.offline_benchmark(out / "table.json")
    assert len(frame) == 24 and frame.loc["VGG16 block2", "met"] == "yes" and frame.loc["ResNet34 layer4", "met"] == "no"
    assert frame.loc["VGG16 block2", "margin (dB) [95% interval]"] == "+15.00 [+14.00, +16.00]"
    assert frame.loc["EfficientNet-Lite0 (ImageNet) stage0", "margin (dB) [95% interval]"] == "+0.61 [-0.39, +1.61]"
    assert frame.loc["EfficientNet-Lite0 (ImageNet) stage2", "held to"] == "thumbnail -1 dB"
    assert frame.loc["EfficientNet-Lite0 stage0", "met"] == "no"  # the random twin, held to the same bar
    assert frame.loc["VGG16 block2", "ε decoder / thumbnail / colour"] == "0.200 / 0.250 / 0.500"
    assert lines[0].startswith("19 of 24 layers measured meet their targets (10 minutes of training per layer")
    # one sentence per row missed: resnet34 layer4 and Lite0 stage0 and stage4 with both weights
    missed = [line for line in lines if " misses " in line]
    assert [line.split(" misses ")[0] for line in missed] == [
        "ResNet34 layer4", "EfficientNet-Lite0 (ImageNet) stage0", "EfficientNet-Lite0 (ImageNet) stage4",
        "EfficientNet-Lite0 stage0", "EfficientNet-Lite0 stage4"]
    assert "its thumbnail" in missed[1] and "farther from the original" in missed[0] and "(0.200 vs 0.150)" in missed[0]
    # 24 margins, one per row: 12 study layers and Lite0's stage1 and stage3 (both weights) clear their target
    assert any(line.startswith("16 of 24 margins have a 95% interval above their target") for line in lines), lines
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"rows": [], "met": 0, "layers": 0, "missing": ["vgg16/block1"],
                                 "settings": table["settings"]}))
    assert benchmark_findings.offline_benchmark(empty)[1][0].endswith("not measured: vgg16/block1.")
    assert benchmark_findings.offline_benchmark(tmp_path / "nowhere.json") == (None, [
        f"Not run under this reports root (no `{tmp_path / 'nowhere.json'}`): `make bench-offline` measures it."])
    # a table measured before the no-information baseline is not read as if it were current
    stale = json.loads((out / "table.json").read_text())
    for r in stale["rows"]:
        del r["baseline_mean_image_psnr"], r["profile"]
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    frame, lines = benchmark_findings.offline_benchmark(tmp_path / "stale.json")
    assert frame is None and "make bench-offline" in lines[0]

    # a second sweep at the same settings keeps every layer
    offline.offline(out, tmp_path / "train", tmp_path / "test", minutes=10, run=fake)
    assert len(calls) == 24
    # another budget reruns only the layer asked for; the others are missing at these settings
    table = offline.offline(out, tmp_path / "train", tmp_path / "test", minutes=5, layers=["vgg16/block2"], run=fake)
    assert _rows(calls[24:]) == [("vgg16", "block2", "random")] and calls[24]["minutes"] == 5
    assert table["layers"] == 1 and len(table["missing"]) == 23 and "Not measured at these settings" in (out / "table.md").read_text()
    assert "efficientnet_lite0/stage0/imagenet" in table["missing"] and "efficientnet_lite0/stage0" in table["missing"]
    # an override of the profile's settings (its epochs) is a budget of its own: passed on, and the row rerun
    table = offline.offline(out, tmp_path / "train", tmp_path / "test", overrides={"epochs": 2},
                            layers=["resnet34/layer1"], run=fake)
    assert _rows(calls[25:]) == [("resnet34", "layer1", "random")]
    assert (calls[25]["overrides"], calls[25]["minutes"]) == ({"epochs": 2}, None)
    assert table["layers"] == 1 and table["rows"][0]["epochs"] == 2 and table["settings"]["overrides"] == {"epochs": 2}
    # a row of another result schema, or measured at another profile, is rerun (and vgg16 block2 and resnet34
    # layer1 again too: the sweeps before measured them at other budgets)
    for name, field, value in (("resnet34-layer2", "schema_version", 2), ("vgg16-block4", "profile", "tiny")):
        row = json.loads((out / f"{name}.json").read_text())
        row[field] = value
        (out / f"{name}.json").write_text(json.dumps(row))
    offline.offline(out, tmp_path / "train", tmp_path / "test", minutes=10, run=fake)
    assert _rows(calls[26:]) == [("resnet34", "layer1", "random"), ("resnet34", "layer2", "random"),
                                 ("vgg16", "block2", "random"), ("vgg16", "block4", "random")]
    # a learned row by name
    offline.offline(out, tmp_path / "train", tmp_path / "test", minutes=5, layers=["efficientnet_lite0/stage2/imagenet"],
                    run=fake)
    assert _rows(calls[30:]) == [("efficientnet_lite0", "stage2", "imagenet")]
    # a row tested on other images (an earlier split), or whose resolved settings differ (a profile edited since), is
    # rerun
    row = json.loads((out / "vgg16-block3.json").read_text())
    row["per_image"] = {"psnr": {"hubble_deep_field_00.png": 20.0}}
    (out / "vgg16-block3.json").write_text(json.dumps(row))
    row = json.loads((out / "efficientnet_lite0-stage1-imagenet.json").read_text())
    row["settings"]["width"] = 64
    (out / "efficientnet_lite0-stage1-imagenet.json").write_text(json.dumps(row))
    # ... but not one measured when the profile trained another number of seeds at the layer: a row trains one
    row = json.loads((out / "resnet34-layer3.json").read_text())
    row["settings"]["seeds"] = 3
    (out / "resnet34-layer3.json").write_text(json.dumps(row))
    table = offline.offline(out, tmp_path / "train", tmp_path / "test", minutes=10, run=fake)
    # (and Lite0 stage2 again: the call before measured it at 5 minutes)
    assert _rows(calls[31:]) == [("vgg16", "block3", "random"), ("efficientnet_lite0", "stage1", "imagenet"),
                                 ("efficientnet_lite0", "stage2", "imagenet")]
    assert table["layers"] == 24 and table["met"] == 19
    assert table["settings"]["test_photos"] == [f.name for f in folders.image_files(tmp_path / "test")]  # no sources.csv: each image its own photo
    with pytest.raises(folders.BenchError, match="unknown layer.*vgg16/block9.*arch/layer"):
        offline.offline(out, tmp_path / "train", tmp_path / "test", minutes=5, layers=["vgg16/block9"], run=fake)


def test_learned_sweep_measures_lite0_alone(tmp_path):
    write_images(tmp_path / "train", 2)
    write_images(tmp_path / "val", 1, seed=2)
    write_images(tmp_path / "test", 1, seed=1)
    out, calls = tmp_path / "learned", []
    fake = _fake_quality(calls)
    table = offline.offline(out, tmp_path / "train", tmp_path / "test", minutes=10, run=fake, name="learned")
    assert _rows(calls) == [("efficientnet_lite0", f"stage{i}", w) for w in ("imagenet", "random") for i in range(5)]
    assert table["settings"]["sweep"] == "learned" and table["settings"]["profile"] == "demo"
    assert table["layers"] == 10 and not table["missing"] and table["met"] == 6
    assert all(r["matching_label"] == "0" for r in table["rows"])  # the demo profile matches no features
    # kept on a second sweep; a validation folder is other settings: every row reruns, choosing its checkpoint there
    offline.offline(out, tmp_path / "train", tmp_path / "test", minutes=10, run=fake, name="learned")
    assert len(calls) == 10
    table = offline.offline(out, tmp_path / "train", tmp_path / "test", val_dir=tmp_path / "val", minutes=10, run=fake,
                            name="learned")
    assert len(calls) == 20 and all(c["val_dir"] == tmp_path / "val" for c in calls[10:])
    assert table["settings"]["validation_images"] == 1 and not table["missing"]
    # the rows say whether each decoder was still learning when its budget ended
    assert "| 20 | yes |" in (out / "table.md").read_text() and "| 20 | no |" in (out / "table.md").read_text()
    offline.offline(out, tmp_path / "train", tmp_path / "test", val_dir=tmp_path / "val", minutes=10, run=fake,
                    name="learned")
    assert len(calls) == 20
    # the study's layers are not rows of this sweep; a bench-colour run under a row's name is never overwritten
    with pytest.raises(folders.BenchError, match="resnet34/layer1 for the learned sweep.*efficientnet_lite0/stage0"):
        offline.offline(out, tmp_path / "train", tmp_path / "test", minutes=10, layers=["resnet34/layer1"], run=fake,
                        name="learned")
    (out / "efficientnet_lite0-stage4.json").write_text(json.dumps({"arch": "efficientnet_lite0", "flips_psnr": 13.0}))
    with pytest.raises(folders.BenchError, match="not a bench-quality record.*-colour.json"):
        offline.offline(out, tmp_path / "train", tmp_path / "test", minutes=10, run=fake, name="learned")


def test_offline_sweep_runs_from_make(tmp_path):
    from lib import config, metrics
    from lib.evaluation import SCHEMA_VERSION

    done = subprocess.run(
        ["make", "--no-print-directory", "bench-offline", f"REPORTS={tmp_path}", "ONLY=resnet34/layer4", "MINUTES=0.01"],
        cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    row = json.loads((tmp_path / "bench" / "offline" / "resnet34-layer4.json").read_text())
    demo = config.resolve("demo")
    counts = data.split_counts(data.make_split(demo["data"], demo["seed"]))  # the demo's split: train, val, test
    assert (row["weights"], row["profile"], row["train_images"], row["validation_images"], row["test_images"]) == (
        "random", "demo", counts["train"], counts["val"], counts["test"])
    assert row["settings"] == quality.layer_settings("demo", "resnet34", "layer4", {}, "random")[0]
    # its baselines: the mean colour is the test folder's own, the mean image the training folder's
    skimage = tmp_path / "bench" / "skimage"
    _, test_images = folders.load_folder(skimage / "test")
    target = metrics.Pixels.from_uint8(test_images)
    expected = float(metrics.psnr(metrics.mean_colour_baseline(target), target).mean())
    assert row["baseline_mean_colour_psnr"] == pytest.approx(expected, abs=1e-6) and 5 < row["psnr_mean"] < 40
    assert row["baseline_mean_image_psnr"] == pytest.approx(mean_image_psnr(skimage / "train", skimage / "test"), abs=1e-4)
    assert row["schema_version"] == SCHEMA_VERSION and row["minutes"] == 0.01
    # a validation folder (the demo's val split) is passed on: the checkpoint is checked against the start
    assert isinstance(row["improved_on_start"], bool)
    assert "| resnet34 | layer4 |" in done.stdout and "Not measured at these settings" in done.stdout


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


def test_linear_inverse_reads_the_thumbnail_from_cells_that_encode_it(monkeypatch):
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
    # where the decoder standardises (28x28; here this 4x4 grid), the read goes through that standardisation, as the
    # train step fits it: it does not depend on the channels' scales (a ridge on raw features would: its penalty weighs
    # each channel by its scale)
    monkeypatch.setattr(decoders, "STANDARDISED_GRIDS", (4,))
    assert decoders.ResShuffleDecoder(16, 4, width=16, out_size=32).standardise
    read = colour.linear_inverse(features, images, groups, test_features, test_images)
    scales = torch.logspace(-3, 3, features.shape[1]).view(1, -1, 1, 1)
    scaled = colour.linear_inverse(features * scales, images, groups, test_features * scales, test_images)
    # float32 features and sums: equal to a few thousandths of a dB
    assert scaled["linear_inverse_psnr"] == pytest.approx(read["linear_inverse_psnr"], abs=0.01), (scaled, read)
    assert scaled["linear_inverse_penalty"] == read["linear_inverse_penalty"]


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


def test_exported_split_names_each_views_photo_in_store_order(tmp_path):
    from lib import config

    counts = folders.export_split(tmp_path, profile="tiny")
    tiny = config.resolve("tiny")
    entries = data.make_split(tiny["data"], tiny["seed"])
    assert counts == data.split_counts(entries) and set(counts) == {"train", "val", "test"}
    assert all(counts.values())
    photos = {}
    for split in ("train", "val", "test"):
        # each view named by its place in the study's store, so the folder read in name order is the split in order
        expected = [f"{index:05d}-{entry.image}.png" for index, entry in enumerate(entries) if entry.split == split]
        assert [p.name for p in folders.image_files(tmp_path / split)] == expected and len(expected) == counts[split]
        sources = (tmp_path / split / "sources.csv").read_text().splitlines()
        assert sources[0] == "image,source" and [line.split(",")[0] for line in sources[1:]] == expected
        assert [line.split(",")[1] for line in sources[1:]] == [e.source for e in entries if e.split == split]
        photos[split] = {line.split(",")[1] for line in sources[1:]}
        # the study's image: the view as the data step resizes it
        first = next(e for e in entries if e.split == split)
        assert np.array_equal(np.asarray(Image.open(tmp_path / split / expected[0]).convert("RGB")),
                              data.load_view(first, tiny["data"]["resize"]))
    assert len(photos["test"]) == tiny["data"]["test_photos"] and len(photos["val"]) == tiny["data"]["val_photos"]
    assert not photos["test"] & photos["train"] and not photos["val"] & photos["train"] and not photos["val"] & photos["test"]
    assert not list(tmp_path.rglob("*.tmp.png"))
    # a second export keeps the views already there and removes any the split no longer puts in a folder
    index = next(i for i, e in enumerate(entries) if e.split == "test")
    kept = tmp_path / "test" / f"{index:05d}-{entries[index].image}.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(kept)  # stands in for a view written before: not rewritten
    Image.new("RGB", (8, 8)).save(tmp_path / "train" / "99999-stale_00.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "val" / "stale.jpg")
    (tmp_path / "train" / "notes.txt").write_text("not an image")
    assert folders.export_split(tmp_path, profile="tiny") == counts
    assert not (tmp_path / "train" / "99999-stale_00.png").exists() and not (tmp_path / "val" / "stale.jpg").exists()
    assert (tmp_path / "train" / "notes.txt").exists()  # only images are removed
    assert Image.open(kept).size == (8, 8)
    assert len(folders.image_files(tmp_path / "train")) == counts["train"]
