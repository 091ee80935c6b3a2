import pytest
import torch
from torch import nn

from lib import matching
from lib.decoders import FeatureStandardise
from lib.encoders import build_extractor, layer_encoder

HALF = ((1 / 2, 1.0),)  # one level at half resolution


@pytest.fixture(scope="module")
def layer1():
    """Random ResNet34 layer1 (56x56 at 224; 16x16 at the 64x64 images used here) and its standardisation."""
    extractor = build_extractor("resnet34", ["layer1"], "random", 0)
    images = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    features = extractor(images)["layer1"]
    standardise = FeatureStandardise(features.shape[1])
    standardise.fit(features)
    return layer_encoder(extractor, "layer1", differentiable=True), standardise, images, features


def test_matching_pulls_a_perturbed_image_back_towards_its_features(layer1):
    encode, standardise, images, features = layer1
    # a smooth error, as a decoder's cell colours are wrong: what a half-resolution level alone can undo
    error = nn.functional.interpolate(torch.randn(3, 3, 4, 4, generator=torch.Generator().manual_seed(1)), size=64,
                                      mode="bicubic", align_corners=False) * 0.5
    start = images + error

    def feature_distance(x):
        with torch.no_grad():
            return float(((standardise(encode(x)) - standardise(features)) ** 2).mean())

    matched = matching.match_features(encode, standardise, features, start, steps=30, lr=0.02, levels=HALF)
    assert matched.shape == start.shape and not matched.requires_grad
    assert feature_distance(matched) < 0.5 * feature_distance(start)
    assert ((matched - images) ** 2).mean() < 0.8 * ((start - images) ** 2).mean()
    # the correction lives on the 32x32 grid: upsampling its own downsampling leaves it nearly unchanged
    correction = matched - start
    smooth = nn.functional.interpolate(nn.functional.avg_pool2d(correction, 2), size=64, mode="bicubic", align_corners=False)
    assert ((correction - smooth) ** 2).mean() < 0.1 * (correction ** 2).mean()
    # each image's correction is its own: matched alone or in a batch, the same result
    alone = matching.match_features(encode, standardise, features[1:2], start[1:2], steps=30, lr=0.02, levels=HALF)
    assert torch.allclose(alone, matched[1:2], atol=2e-3)  # float sums differ by batch


def test_the_default_pyramid_undoes_smooth_and_fine_errors_alike(layer1):
    encode, standardise, images, features = layer1
    generator = torch.Generator().manual_seed(2)
    smooth = nn.functional.interpolate(torch.randn(3, 3, 4, 4, generator=generator), size=64, mode="bicubic", align_corners=False)
    start = images + 0.3 * smooth + 0.1 * torch.randn(3, 3, 64, 64, generator=generator)
    matched = matching.match_features(encode, standardise, features, start, steps=30, lr=0.02)
    assert ((matched - images) ** 2).mean() < 0.8 * ((start - images) ** 2).mean()


def test_each_level_moves_by_its_scale():
    # Adam's first step moves every parameter by lr (times the sign of its gradient): a full-resolution level at
    # scale 1/4 moves each pixel by a quarter of that, so it redraws fine detail slowly
    images = torch.zeros(1, 3, 16, 16)
    encode = lambda x: x  # noqa: E731  (features = the image: every pixel has a gradient)
    target = torch.ones(1, 3, 16, 16)
    moved = matching.match_features(encode, nn.Identity(), target, images, steps=1, lr=0.1, levels=((1, 0.25),))
    assert torch.allclose(moved, torch.full_like(moved, 0.025), atol=1e-6)
    both = matching.match_features(encode, nn.Identity(), target, images, steps=1, lr=0.1, levels=((1, 0.25), (1 / 2, 1.0)))
    assert float(both.mean()) == pytest.approx(0.125, abs=0.01)  # 0.025 + a bicubic-upsampled 0.1


def test_zero_steps_change_nothing_and_negative_ones_are_an_error(layer1):
    encode, standardise, images, features = layer1
    same = matching.match_features(encode, standardise, features, images, steps=0)
    assert torch.equal(same, images) and same is not images
    with pytest.raises(ValueError, match="feature-matching steps must be 0 or more, got -1"):
        matching.match_features(encode, standardise, features, images, steps=-1)


def test_matching_runs_only_where_the_grid_constrains_it():
    # where it added PSNR on learned features (Lite0 ImageNet, docs/method.md); not at 7x7, where it lowered it
    assert matching.applies(112) and matching.applies(56) and matching.applies(28)
    assert not matching.applies(14) and not matching.applies(7)
    assert matching.steps_at(112, 30) == 30 and matching.steps_at(14, 30) == 0
