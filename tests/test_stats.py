"""Intervals that respect the split: resample source photos, pair by image."""
import numpy as np
import pandas as pd
import pytest

from lib import stats


def test_views_of_one_photo_count_as_one_draw():
    rng = np.random.default_rng(0)
    photo_means = rng.normal(20, 3, size=6)
    # 8 identical views per photo: the interval is the one from the 6 photo means alone
    views = np.repeat(photo_means, 8)
    by_view = stats.cluster_bootstrap(views, np.repeat(np.arange(6), 8))
    by_photo = stats.cluster_bootstrap(photo_means, np.arange(6))
    assert by_view == pytest.approx(by_photo)
    assert by_view["clusters"] == 6
    # treating the 48 views as independent would give a much narrower, wrong interval
    naive = stats.cluster_bootstrap(views, np.arange(48))
    assert (naive["high"] - naive["low"]) < 0.5 * (by_view["high"] - by_view["low"])


def test_interval_covers_the_mean_and_shrinks_with_more_photos():
    rng = np.random.default_rng(1)
    widths = []
    for photos in (5, 80):
        values = rng.normal(2.0, 1.0, size=photos)
        interval = stats.cluster_bootstrap(values, np.arange(photos))
        assert interval["low"] < interval["mean"] < interval["high"]
        assert interval["mean"] == pytest.approx(values.mean())
        widths.append(interval["high"] - interval["low"])
    assert widths[1] < widths[0] / 2
    assert stats.cluster_bootstrap(rng.normal(2.0, 1.0, 200), np.arange(200))["low"] > 1.5


def test_one_photo_gives_the_point_and_bad_labels_fail():
    assert stats.cluster_bootstrap([1.0, 3.0], ["a", "a"]) == {"mean": 2.0, "low": 2.0, "high": 2.0, "clusters": 1}
    with pytest.raises(ValueError, match="one cluster label per value"):
        stats.cluster_bootstrap([1.0, 2.0], ["a"])


def test_verdict():
    assert stats.verdict(0.1, 2) == "above"
    assert stats.verdict(-2, -0.1) == "below"
    assert stats.verdict(-0.1, 2) == "unclear"
    assert stats.interval_label(1.071, -0.266, 2.79) == "+1.07 [-0.27, +2.79]"


def test_baseline_comparisons_pair_each_image_with_its_baselines():
    base = np.linspace(14, 20, 12)
    per_image = pd.DataFrame({"psnr": base + 1.5, "baseline_mean_colour_psnr": base,
                              "baseline_thumbnail_psnr": base + np.tile([2.0, -1.0], 6),
                              "baseline_mean_image_psnr": np.full(12, 12.0)})
    row = stats.baseline_comparisons(per_image, np.repeat(["a", "b", "c", "d"], 3))
    # a constant paired gain has a zero-width interval, however much the images differ
    assert row["psnr_minus_mean_colour"] == pytest.approx(1.5)
    assert row["psnr_minus_mean_colour_ci_low"] == pytest.approx(1.5)
    assert row["psnr_minus_mean_colour_ci_high"] == pytest.approx(1.5)
    assert row["wins_vs_mean_colour"] == 1.0
    assert row["wins_vs_thumbnail"] == 0.5 and row["psnr_minus_thumbnail"] == pytest.approx(1.0)
    assert row["test_sources"] == 4 and row["psnr_ci_low"] < per_image["psnr"].mean() < row["psnr_ci_high"]
    # the no-information baseline is the same image for all: the margin is the decoder's PSNR less 12 dB
    assert row["psnr_minus_mean_image"] == pytest.approx(per_image["psnr"].mean() - 12.0)
    assert row["wins_vs_mean_image"] == 1.0


def test_depth_comparisons_pair_by_image_name_not_row_order():
    names = [f"img{i}" for i in range(6)]
    shallow = pd.DataFrame({"image": names, "psnr": [30.0, 28, 26, 24, 22, 20]})
    deep = pd.DataFrame({"image": names[::-1], "psnr": [18.0, 20, 22, 24, 26, 28]})  # img5 first; each 2 dB lower
    table = stats.depth_comparisons({("a", "l1"): shallow, ("a", "l2"): deep}, {"a": ["l1", "l2"]},
                                    dict(zip(names, "xxyyzz")))
    row = table.iloc[0]
    assert (row["arch"], row["shallower"], row["deeper"]) == ("a", "l1", "l2")
    assert row["psnr_drop"] == pytest.approx(2.0) and row["ci_low"] == pytest.approx(2.0)
    assert row["images_losing"] == 1.0 and row["test_sources"] == 3


def test_weights_comparisons_pair_learned_and_random_twins_of_one_network_and_normalisation():
    from lib import findings
    from lib.stats import weights_comparisons

    images = [f"{photo}_{i}" for photo in "abc" for i in range(2)]
    sources = {name: name[0] for name in images}
    frame = lambda psnr, ssim: pd.DataFrame({"image": images, "psnr": psnr, "ssim": ssim})
    per_image = {("lite", "stage0"): frame([22.0, 23, 24, 25, 26, 27], [0.6] * 6),
                 ("lite_random", "stage0"): frame([20.0, 20, 21, 21, 22, 22], [0.5] * 6),
                 ("lite_native", "stage0"): frame([10.0] * 6, [0.1] * 6),  # another normalisation: never paired
                 ("resnet", "layer1"): frame([15.0] * 6, [0.3] * 6)}
    networks = {"lite": "lite0", "lite_random": "lite0", "lite_native": "lite0", "resnet": "resnet34"}
    weights = {"lite": "imagenet", "lite_random": "random", "lite_native": "random", "resnet": "random"}
    fed = {"lite": "native", "lite_random": "native", "lite_native": "imagenet", "resnet": "imagenet"}
    table = weights_comparisons(per_image, networks, weights, fed, sources)
    assert list(zip(table["learned"], table["random"], table["layer"])) == [("lite", "lite_random", "stage0")]
    row = table.iloc[0]
    assert row["psnr_gain"] == pytest.approx(24.5 - 21.0) and row["ssim_gain"] == pytest.approx(0.1)
    assert row["psnr_gain_ci_low"] <= row["psnr_gain"] <= row["psnr_gain_ci_high"] and row["images_better"] == 1.0
    assert row["test_sources"] == 3
    frame_, lines = findings.learned_vs_random(table)
    assert lines == ["lite0: ImageNet weights make stage0 easier to invert than random ones (95% intervals over 3 test "
                     "photos). PSNR gain from +3.50 dB at stage0 to +3.50 dB at stage0; SSIM gain from +0.100 to +0.100."]
    # a run without such a pair: a header-only table, and the report section says nothing
    empty = weights_comparisons({("resnet", "layer1"): per_image[("resnet", "layer1")]}, {"resnet": "resnet34"},
                                {"resnet": "random"}, {"resnet": "imagenet"}, sources)
    assert empty.empty and "psnr_gain" in empty.columns
    assert findings.learned_vs_random(empty) == (None, [])


def test_seed_noise_is_the_sd_of_a_difference_of_seed_means():
    from lib.stats import exceeds_seed_spread, seed_noise

    # two layers of 2 seeds each, sd 0.4 and 0.3 over single runs: their means' sds are 0.4/sqrt2 and 0.3/sqrt2
    noise = seed_noise(0.4, 0.3, 2, 2)
    assert noise == pytest.approx(0.5 / np.sqrt(2))
    assert exceeds_seed_spread(0.8, noise) and not exceeds_seed_spread(-0.7, noise)  # 2 x 0.354 = 0.707
    assert seed_noise(0.4, 0.3, 1, 1) == pytest.approx(0.5)


def test_capacity_pairs_compare_the_studys_networks_at_each_shared_grid():
    from lib.steps.summarise import capacity_pairs

    layers = [("resnet34", "layer1"), ("resnet34", "layer4"), ("vgg16", "block2"), ("vgg16", "block5"),
              ("vit_base_patch16_224", "block0"), ("vit_base_patch16_224", "block5"), ("resnet34", "layer3"),
              ("efficientnet_lite0", "stage1")]
    networks = {"resnet34": "resnet34", "vgg16": "vgg16", "vit_base_patch16_224": "vit_base_patch16_224",
                "efficientnet_lite0": "efficientnet_lite0"}
    shapes = {("resnet34", "layer1"): (64, 56, 56), ("resnet34", "layer4"): (512, 7, 7), ("vgg16", "block2"): (128, 56, 56),
              ("vgg16", "block5"): (512, 7, 7), ("vit_base_patch16_224", "block0"): (768, 14, 14),
              ("vit_base_patch16_224", "block5"): (768, 14, 14), ("resnet34", "layer3"): (256, 14, 14),
              ("efficientnet_lite0", "stage1"): (24, 56, 56)}
    # finest grid first; each network by its shallowest layer at a grid (ViT block0, not block5); Lite0 is not the study's
    assert capacity_pairs(layers, networks, shapes) == [
        (("resnet34", "layer1"), ("vgg16", "block2")), (("vit_base_patch16_224", "block0"), ("resnet34", "layer3")),
        (("resnet34", "layer4"), ("vgg16", "block5"))]
