import math

import numpy as np
import pytest
import torch

from lib import data, metrics
from lib.metrics import Pixels


def constant(value, n=1, size=32):
    return Pixels.from_uint8(np.full((n, size, size, 3), value, dtype=np.uint8))


def test_psnr_and_mse_on_hand_computed_values():
    a = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    b = np.full((1, 8, 8, 3), 51, dtype=np.uint8)  # 51/255 = 0.2 everywhere
    mse = metrics.mse(Pixels.from_uint8(a), Pixels.from_uint8(b))
    np.testing.assert_allclose(mse, [0.04], rtol=1e-6)
    np.testing.assert_allclose(metrics.psnr(Pixels.from_uint8(a), Pixels.from_uint8(b)), [10 * math.log10(1 / 0.04)], rtol=1e-6)
    # Half the pixels off by 1.0 (0 vs 255): MSE 0.5, PSNR 3.0103 dB.
    c = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    d = c.copy()
    d[0, 0, :, :] = 255
    np.testing.assert_allclose(metrics.psnr(Pixels.from_uint8(c), Pixels.from_uint8(d)), [10 * math.log10(2)], rtol=1e-9)


def test_ssim_on_hand_computed_value():
    # Constant images: every window has zero variance, so SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1).
    a, b = constant(255), constant(0)
    c1 = (0.01 * 1.0) ** 2
    mu_a, mu_b = 1.0, 0.0
    expected = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
    np.testing.assert_allclose(metrics.ssim(a, b), [expected], rtol=1e-6)
    np.testing.assert_allclose(metrics.ssim(a, a), [1.0])


def test_scoring_in_normalised_space_is_impossible():
    x = torch.zeros(2, 3, 16, 16)
    with pytest.raises(TypeError, match="metrics take Pixels"):
        metrics.psnr(x, x)
    with pytest.raises(TypeError):
        Pixels(x)  # only the named constructors make Pixels


def test_from_normalised_reverses_normalisation_and_clamps():
    images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    pixels = Pixels.from_normalised(data.normalise(images))
    np.testing.assert_allclose(pixels.values.numpy(), Pixels.from_uint8(images).values.numpy(), atol=1e-6)
    extreme = Pixels.from_normalised(torch.full((1, 3, 4, 4), 100.0))
    assert extreme.values.max() == 1.0
    assert Pixels.from_normalised(torch.full((1, 3, 4, 4), -100.0)).values.min() == 0.0


def test_identical_images_score_perfectly():
    images = Pixels.from_uint8(np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8))
    scores = metrics.score(images, images)
    assert np.isinf(scores["psnr"]).all() and np.allclose(scores["ssim"], 1) and np.allclose(scores["mse"], 0)
    assert np.isnan(scores["lpips"]).all()  # no scorer given: left empty, never invented


def test_baselines():
    rng = np.random.default_rng(2)
    images = Pixels.from_uint8(rng.integers(0, 256, (2, 224, 224, 3), dtype=np.uint8))
    mean = metrics.mean_colour_baseline(images)
    np.testing.assert_allclose(mean.values[:, :, 5, 7], images.values.mean(dim=(2, 3)), rtol=1e-6)
    flat = constant(77, size=224)
    assert (metrics.psnr(metrics.thumbnail_baseline(flat, 14), flat) > 100).all()  # float rounding only
    # A finer grid keeps more: the thumbnail at 56x56 beats the one at 7x7 on a smooth image.
    yy, xx = np.mgrid[0:224, 0:224]
    smooth = np.stack([np.sin(xx / 9.0), np.cos(yy / 13.0), np.sin((xx + yy) / 17.0)], -1) * 120 + 128
    smooth = Pixels.from_uint8(smooth[None].astype(np.uint8))
    assert metrics.psnr(metrics.thumbnail_baseline(smooth, 56), smooth) > metrics.psnr(metrics.thumbnail_baseline(smooth, 7), smooth) + 3


def test_lpips_builds_from_a_cached_alexnet_file(torch_home, monkeypatch):
    import torchvision
    from test_weights import accept_fake_weights

    from lib import encoders
    from lib.registry import ALEXNET_WEIGHTS_FILE
    from lib.steps.evaluate import lpips_scorer

    scorer, note = lpips_scorer("auto")
    assert scorer is None and "LPIPS left empty" in note and ALEXNET_WEIGHTS_FILE in note
    with pytest.raises(encoders.WeightsError, match=f"ImageNet weights required: {ALEXNET_WEIGHTS_FILE} not in {torch_home}"):
        lpips_scorer("required")  # the paper profile: never silently without LPIPS
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), torch_home / ALEXNET_WEIGHTS_FILE)
    accept_fake_weights(monkeypatch, torch_home / ALEXNET_WEIGHTS_FILE)  # random weights under the real name
    scorer, note = lpips_scorer("auto")
    assert scorer is not None and str(torch_home) in note
    state = torch.load(torch_home / ALEXNET_WEIGHTS_FILE)
    torch.testing.assert_close(getattr(scorer.model.net.slice2, "3").weight, state["features.3.weight"])
    rng = np.random.default_rng(3)
    a = Pixels.from_uint8(rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8))
    b = Pixels.from_uint8(rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8))
    assert np.allclose(scorer(a, a), 0, atol=1e-6)
    assert (scorer(a, b) > 0).all()


def test_feature_error_is_relative_distance_in_the_layers_features():
    from lib.encoders import build_extractor, encode_images

    extractor = build_extractor("resnet34", ["layer1"], weights="random")
    rng = np.random.default_rng(3)
    originals = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    target = Pixels.from_uint8(originals)
    features = encode_images(extractor, "layer1", originals)
    # the original itself: zero; the mean-colour image: a real distance, computed by hand below
    assert np.allclose(metrics.feature_error(extractor, "layer1", target, features, batch=2), 0, atol=1e-6)
    flat = metrics.mean_colour_baseline(target)
    flat_features = encode_images(extractor, "layer1", flat.to_uint8())
    expected = ((flat_features - features).flatten(1).norm(dim=1) / features.flatten(1).norm(dim=1)).numpy()
    got = metrics.feature_error(extractor, "layer1", flat, features, batch=2)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert (got > 0.05).all()
    # one image for all the originals (the mean image) is encoded once and scores as the same image repeated
    one = metrics.mean_image_baseline(flat.values[0], 1)
    repeated = metrics.mean_image_baseline(flat.values[0], 3)
    # float32 features: a batch of one may round differently in the last bit from a batch of two
    np.testing.assert_allclose(metrics.feature_error(extractor, "layer1", one, features, batch=2),
                               metrics.feature_error(extractor, "layer1", repeated, features, batch=2), rtol=1e-5)
    with pytest.raises(ValueError, match="one per original or one for all"):
        metrics.feature_error(extractor, "layer1", metrics.mean_image_baseline(flat.values[0], 2), features)


def _baselines_of(arch: str, layers: list[str], size: int, seed: int):
    """`baseline_feature_errors` of random images at `layers` of a random `arch`, with the encoders it built (by
    layers), and what it was given: (errors, built, features by layer, images as Pixels, the mean image)."""
    from lib.encoders import build_extractor, encode_images

    rng = np.random.default_rng(seed)
    originals = rng.integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    target = Pixels.from_uint8(originals)
    mean_image = torch.from_numpy(rng.random((3, size, size))).float()
    built = []

    def extractor_for(some):
        built.append(tuple(some))
        return build_extractor(arch, list(some), weights="random", seed=0)

    everything = build_extractor(arch, layers, weights="random", seed=0)
    targets = {layer: encode_images(everything, layer, originals) for layer in layers}
    return metrics.baseline_feature_errors(extractor_for, targets, target, mean_image), built, targets, target, mean_image


def test_baseline_feature_errors_share_passes_and_equal_each_layer_scored_alone():
    """The encode step scores the baselines for all of an architecture's layers at once; each layer's numbers are
    what its evaluation would compute for it alone."""
    from lib.encoders import build_extractor

    layers = ["layer1", "layer2", "layer3"]  # 16, 8 and 4 cells at 64x64: three thumbnails
    together, built, targets, target, mean_image = _baselines_of("resnet34", layers, 64, seed=4)
    assert sorted(built) == sorted([tuple(layers), ("layer1",), ("layer2",), ("layer3",)])  # each encoder built once
    for layer in layers:
        alone = build_extractor("resnet34", [layer], weights="random", seed=0)
        expected = metrics.baseline_feature_errors(lambda _: alone, {layer: targets[layer]}, target, mean_image)[layer]
        assert set(together[layer]) == {f"baseline_{n}_feature_error" for n in ("mean_image", "mean_colour", "thumbnail")}
        for name, errors in expected.items():
            np.testing.assert_allclose(together[layer][name], errors, rtol=1e-5)  # float32 features, as above
        thumbnail = metrics.thumbnail_baseline(target, targets[layer].shape[-1])
        np.testing.assert_allclose(together[layer]["baseline_thumbnail_feature_error"],
                                   metrics.feature_error(alone, layer, thumbnail, targets[layer]), rtol=1e-5)


def test_an_evaluation_given_the_baselines_feature_errors_encodes_only_the_reconstruction():
    """The evaluate step reads the baselines' feature errors that encoding stored: the encoder then sees only the
    reconstructions, one pass, and the rows carry the numbers given."""
    from lib import decoders
    from lib.baselines import BASELINE_NAMES
    from lib.encoders import build_extractor, encode_images
    from lib.evaluation import evaluate_decoder

    extractor = build_extractor("resnet34", ["layer1"], weights="random")
    images = np.random.default_rng(5).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    features = encode_images(extractor, "layer1", images)
    seen = []

    class Counting:
        def to(self, device):
            return self

        def __call__(self, x):
            seen.append(len(x))
            return extractor(x)

    given = {f"baseline_{name}_feature_error": np.array([7.0, 8.0]) for name in BASELINE_NAMES}
    evaluation = evaluate_decoder(decoders.build_decoder("resshuffle", 64, 56, width=16).eval(), Counting(), "layer1",
                                  features, images, ["a", "b"], mean_image=torch.full((3, 224, 224), 0.5),
                                  match_steps=0, baseline_errors=given, device="cpu", progress=False)
    assert seen == [2]
    for name, values in given.items():
        assert list(evaluation.per_image[name]) == list(values)


def test_baseline_feature_errors_on_layers_sharing_a_grid_use_one_encoder():
    """ViT-B/16's blocks all lie on 14x14: one encoder serves the mean image, the mean colours and the one thumbnail."""
    from lib.encoders import build_extractor

    layers = ["block0", "block1"]
    together, built, targets, target, _ = _baselines_of("vit_base_patch16_224", layers, 224, seed=6)
    assert built == [tuple(layers)]
    both = build_extractor("vit_base_patch16_224", layers, weights="random", seed=0)
    thumbnail = metrics.thumbnail_baseline(target, 14)
    for layer in layers:
        np.testing.assert_allclose(together[layer]["baseline_thumbnail_feature_error"],
                                   metrics.feature_error(both, layer, thumbnail, targets[layer]), rtol=1e-5)
        assert (together[layer]["baseline_mean_colour_feature_error"] > 0).all()
