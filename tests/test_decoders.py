"""The decoders (lib/decoders.py) and the closed-form ridge helpers behind their start (lib/ridge.py)."""
import numpy as np
import pytest
import torch
from PIL import Image

from lib import decoders, ridge


def _sums(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Z^T Z, Z^T Y, sum of Y^2) with an intercept column of ones put first in Z."""
    z = torch.cat([torch.ones(len(z), 1, dtype=z.dtype), z], 1)
    return z.T @ z, z.T @ y, (y**2).sum()


def test_ridge_from_sums_recovers_a_linear_map_and_its_intercept():
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    weight = torch.tensor([[2.0, -1.0], [0.5, 3.0], [-1.0, 0.0]], dtype=torch.float64)
    intercept = torch.tensor([1.5, -2.0], dtype=torch.float64)
    gram, cross, _ = _sums(x, x @ weight + intercept)
    fitted, fitted_intercept = ridge.ridge_from_sums(gram, cross, 0.0)
    torch.testing.assert_close(fitted, weight, atol=1e-9, rtol=0)
    torch.testing.assert_close(fitted_intercept, intercept, atol=1e-9, rtol=0)
    # the intercept is never penalised: a huge penalty leaves the mean target and (nearly) no slope
    shrunk, mean = ridge.ridge_from_sums(gram, cross, 1e9)
    assert shrunk.abs().max() < 1e-6
    torch.testing.assert_close(mean, (x @ weight + intercept).mean(0), atol=1e-6, rtol=0)


def test_squared_error_from_sums_is_the_residual_sum_of_squares():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(50, 4, generator=generator, dtype=torch.float64)
    y = torch.randn(50, 2, generator=generator, dtype=torch.float64)
    w = torch.randn(5, 2, generator=generator, dtype=torch.float64)  # intercept row first
    direct = float(((torch.cat([torch.ones(50, 1, dtype=x.dtype), x], 1) @ w - y) ** 2).sum())
    assert ridge.squared_error(w, *_sums(x, y)) == pytest.approx(direct, rel=1e-10)


def _fit(gram, cross, lam):
    weight, intercept = ridge.ridge_from_sums(gram, cross, lam)
    return torch.cat([intercept[None], weight])


@pytest.mark.parametrize("signal, expected", [(1.0, (1e-5,)), (0.0, (10.0, 100.0))])
def test_cross_validated_penalty_picks_from_its_candidates(signal, expected):
    """Noise-free targets: the smallest penalty wins; targets unrelated to the inputs: one of the heaviest (at 10 and
    100 times the row count the weights are all but zero either way, so which of the two wins is the noise's)."""
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(80, 6, generator=generator, dtype=torch.float64)
    y = signal * (x @ torch.randn(6, 3, generator=generator, dtype=torch.float64)) \
        + (1 - signal) * torch.randn(80, 3, generator=generator, dtype=torch.float64)
    groups = torch.arange(80) // 20
    stats = {g: _sums(x[groups == g], y[groups == g]) for g in range(4)}
    penalty, errors = ridge.cross_validated_penalty(stats, _fit, ridge.PENALTIES)
    assert penalty in expected
    assert set(errors) == set(ridge.PENALTIES) and errors[penalty] == min(errors.values())
    # one group cannot be cross-validated: the middle candidate, no errors
    assert ridge.cross_validated_penalty({0: stats[0]}, _fit, (1e-3, 1e-2, 1e-1)) == (1e-2, {})


@pytest.mark.parametrize("name", ["resshuffle", "simple", "attention"])
@pytest.mark.parametrize("shape", [(64, 56, 56), (64, 112, 112), (512, 7, 7), (768, 14, 14)])
def test_decoders_output_the_image_shape(name, shape):
    decoder = decoders.build_decoder(name, shape[0], shape[1], width=32)
    out = decoder(torch.randn(2, *shape))
    assert out.shape == (2, 3, 224, 224)
    assert decoders.count_parameters(decoder) > 0


def test_feature_standardisation_uses_training_statistics():
    features = torch.randn(10, 4, 7, 7) * torch.tensor([1.0, 10.0, 100.0, 0.1]).view(1, 4, 1, 1) + 5
    layer = decoders.FeatureStandardise(4)
    layer.fit(features)
    out = layer(features)
    torch.testing.assert_close(out.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std(dim=(0, 2, 3)), torch.ones(4), atol=1e-2, rtol=0)


@pytest.mark.parametrize("grid, standardised", [(112, False), (56, False), (28, True), (14, False), (7, False)])
def test_28x28_grids_read_standardised_features_and_the_others_raw_ones(grid, standardised):
    """The grid rule (STANDARDISED_GRIDS): at 28x28 the paths read per-channel standardised features and the colour
    path pooled features standardised between images; other grids read them as given."""
    from lib import training

    torch.manual_seed(0)
    scales = torch.tensor([1.0, 100.0, 0.01]).view(1, 3, 1, 1)
    features = (torch.randn(8, 3, grid, grid) + torch.randn(8, 3, 1, 1)) * scales + 50
    images = np.random.default_rng(0).integers(0, 256, (8, 224, 224, 3), dtype=np.uint8)
    decoder = decoders.build_decoder("resshuffle", 3, grid, width=16)
    assert decoder.standardise is standardised
    training.fit_to_training_data(decoder, features, images, training.contiguous_groups(8))
    x, pooled = decoder.inputs(features)
    assert x.shape == features.shape and pooled.shape == (8, 3, 1, 1)
    if standardised:
        torch.testing.assert_close(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-3, rtol=0)
        torch.testing.assert_close(x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-2, rtol=0)  # unbiased std, n >= 392
        # float32 pooling of values near 50 resolves ~3e-6, 3e-4 of the 0.01-scale channel's spread between images
        torch.testing.assert_close(pooled.std(dim=0, unbiased=False).flatten(), torch.ones(3), atol=1e-3, rtol=0)
    else:
        assert torch.equal(x, features) and torch.equal(pooled, features.mean(dim=(2, 3), keepdim=True))


@pytest.mark.parametrize("grid", [28, 14, 7])  # 5x5, 3x3 and 1x1 neighbourhoods: zero padding included
def test_a_standardised_start_does_not_depend_on_channel_scale_or_offset(grid, monkeypatch):
    """Where it standardises (28x28; here also 14x14 and 7x7, for their smaller neighbourhoods), the fitted untrained
    decoder gives the same output for features s * f + o (per channel, s > 0) as for f: one ridge penalty grid fits
    every layer whatever its channels' scales."""
    from lib import training

    monkeypatch.setattr(decoders, "STANDARDISED_GRIDS", (28, 14, 7))
    torch.manual_seed(0)
    features = torch.randn(8, 6, grid, grid) + torch.randn(8, 6, 1, 1)
    scale, offset = torch.logspace(-1, 1, 6).view(1, 6, 1, 1), torch.linspace(-5, 5, 6).view(1, 6, 1, 1)
    images = np.random.default_rng(0).integers(0, 256, (8, 224, 224, 3), dtype=np.uint8)
    outputs = []
    for f in (features, features * scale + offset):
        decoder = decoders.build_decoder("resshuffle", 6, grid, width=16)
        training.fit_to_training_data(decoder, f, images, training.contiguous_groups(8))
        with torch.no_grad():
            outputs.append(decoder.eval()(f) - decoder.mean_image)
    plain, moved = outputs
    assert float(plain.abs().max()) > 0  # the closed-form paths were kept: there is something to compare
    # float32 features scaled by up to 10 and moved by up to 5: standardised values agree to ~1e-6 of their spread
    assert float((moved - plain).abs().max()) < 1e-4 * float(plain.abs().max())


def test_a_channel_constant_in_training_is_not_blown_up_at_test_time():
    """A channel dead on every training image (a ReLU unit of a random network) has no spread to divide by: it takes
    the median channel's spread, so a value it takes at test time is scaled like any channel's, not by 1e6."""
    features = torch.randn(10, 4, 7, 7) * torch.tensor([1.0, 2.0, 3.0, 0.0]).view(1, 4, 1, 1)
    layer = decoders.FeatureStandardise(4)
    layer.fit(features)
    spreads = features.double().std(dim=(0, 2, 3), unbiased=False)  # 0 for the dead channel
    # float32 buffers: the median spread to float32 rounding
    assert layer.fitted and float(layer.std[0, 3]) == pytest.approx(float(spreads.median()), rel=1e-6)
    woken = torch.zeros(1, 4, 7, 7)
    woken[:, 3] = 1.0
    # 1 / the median spread (about 1), where a 1e-6 floor would give 1e6
    assert float(layer(woken)[:, 3].abs().max()) == pytest.approx(1 / float(spreads.median()), rel=1e-5)


def test_colour_readout_is_a_closed_form_ridge_on_pooled_features_of_any_scale():
    torch.manual_seed(0)
    # channel scales four orders apart: the readout standardises its own design, so one penalty grid fits them all
    pooled = torch.rand(24, 16) * torch.logspace(-2, 2, 16)
    colours = pooled @ torch.randn(16, 3) + torch.tensor([0.5, -0.2, 0.1])  # each image's colour: linear in its features
    weight, bias, penalty = ridge.fit_colour(pooled, colours, torch.arange(24) // 6)
    assert penalty <= 0.01  # noise-free data: cross-validation picks (nearly) no penalty
    predicted = (pooled.double() @ weight + bias).float()
    torch.testing.assert_close(predicted, colours, atol=0.05 * colours.std().item(), rtol=0)


def test_the_untrained_coarse_decoder_outputs_its_closed_form_colour_everywhere():
    from lib.training import contiguous_groups

    torch.manual_seed(0)
    features = torch.rand(24, 16, 7, 7)
    # flat images whose colour is linear in the pooled features: the colour path alone can hold them
    colours = (features.mean(dim=(2, 3)) - 0.5) @ torch.randn(16, 3) * 0.3 + 0.5
    images = (colours.clamp(0, 1)[:, None, None, :] * 255).round().to(torch.uint8).expand(-1, 224, 224, -1).numpy()
    decoder = decoders.build_decoder("resshuffle", 16, 7, width=32)
    decoder.fit_statistics(features)
    decoder.fit_mean_image(images)
    decoder.fit_linear_start(features, images, contiguous_groups(24))
    with torch.no_grad():
        out = decoder.eval()(features)
    # the deep path starts at zero and every image is flat: each output is flat too, at its image's colour
    from lib.data import normalise

    target = normalise(images)
    assert float((out - target).pow(2).mean()) < 0.05 * float((target - target.mean(0)).pow(2).mean())
    assert float(out.std(dim=(2, 3)).max()) < 0.05


@pytest.mark.parametrize("max_dims", [6144, 200])  # 3x3 neighbourhood, or only its centre when that is too wide
def test_linear_start_is_a_closed_form_inverse_of_features_that_hold_the_image(max_dims):
    """Features holding each cell's 4x4 sub-block means (plus noise channels): the fitted, untrained decoder
    outputs those block means, bilinearly upsampled, up to rounding and the cross-validated penalty."""
    from lib.data import normalise
    from lib.training import contiguous_groups

    rng = np.random.default_rng(0)
    coarse = rng.uniform(0, 255, (16, 28, 28, 3)).astype(np.float32)
    images = np.stack([np.asarray(Image.fromarray(c.astype(np.uint8)).resize((224, 224), Image.BICUBIC)) for c in coarse])
    block_means = torch.nn.functional.adaptive_avg_pool2d(normalise(images), 56)
    held = torch.nn.functional.pixel_unshuffle(block_means, 4)  # 48 channels at 14x14
    torch.manual_seed(0)
    features = torch.cat([held, torch.randn(16, 16, 14, 14)], 1)
    decoder = decoders.build_decoder("resshuffle", 64, 14, width=32)
    decoder.fit_statistics(features)
    info = decoder.fit_linear_start(features, images, contiguous_groups(16), max_dims=max_dims)
    assert info["kernel"] == (3 if max_dims > 1000 else 1) and info["rows"] == 16 * 14 * 14
    assert info["penalty"] <= 1e-3  # noise-free data: cross-validation picks (nearly) no penalty
    with torch.no_grad():
        out = decoder.eval()(features)
    expected = torch.nn.functional.interpolate(block_means, size=224, mode="bilinear", align_corners=False)
    error = (out - expected).pow(2).mean() / expected.var()
    assert error < 1e-3, error


def test_linear_start_on_features_far_from_zero_fits_as_on_centred_ones():
    """Raw features (a 56x56 grid reads them unstandardised) can sit far from zero against their spread: the fit's
    float32 sums are taken on each column less its channel's mean, so an offset of 1,000 (spread 1) changes nothing
    beyond rounding."""
    from lib.training import contiguous_groups

    torch.manual_seed(0)
    features = torch.randn(16, 8, 56, 56)
    images = np.random.default_rng(1).integers(0, 256, (16, 224, 224, 3), dtype=np.uint8)
    outputs = []
    for offset in (0.0, 1000.0):
        decoder = decoders.build_decoder("resshuffle", 8, 56, width=32)
        assert not decoder.standardise
        decoder.fit_mean_image(images)
        # a 1x1 neighbourhood: no zero padding, which an offset would make unlike the features themselves
        decoder.fit_linear_start(features + offset, images, contiguous_groups(16), max_dims=16)
        with torch.no_grad():
            outputs.append(decoder.eval()(features + offset) - decoder.mean_image)
    centred, offset = outputs
    # float32 features of 1,000 resolve ~6e-5 of their spread: the two fits agree to that, relative to the paths' size
    assert float((offset - centred).abs().max()) < 1e-2 * float(centred.abs().max())


def test_a_standardised_linear_start_refuses_unfitted_statistics():
    """At 28x28 the closed-form fit reads standardised features: without their statistics it would read them raw
    through an identity (how bench-colour's linear read went wrong until 28fea20), so it refuses instead."""
    decoder = decoders.build_decoder("resshuffle", 4, 28, width=16)
    images = np.zeros((4, 224, 224, 3), dtype=np.uint8)
    with pytest.raises(RuntimeError, match="fit_statistics"):
        decoder.fit_linear_start(torch.randn(4, 4, 28, 28), images, torch.arange(4) // 2)


def test_linear_start_survives_fewer_cells_than_design_columns():
    """196 grid cells against a 513-column design, as in the tiny profile: no error, finite paths."""
    from lib.training import contiguous_groups, fit_to_training_data

    torch.manual_seed(0)
    features = torch.rand(4, 256, 7, 7) ** 3  # post-ReLU-like, non-negative
    images = np.random.default_rng(0).integers(0, 256, (4, 224, 224, 3), dtype=np.uint8)
    decoder = decoders.build_decoder("resshuffle", 256, 7, width=32)
    fit_to_training_data(decoder, features, images, contiguous_groups(4))
    assert all(torch.isfinite(p).all() for p in decoder.parameters())
    assert torch.isfinite(decoder.eval()(features)).all()


def _linear_encoder(channels: int, grid: int, seed: int = 0):
    """A stand-in for a frozen layer: cell means of the image, mixed into `channels` by a fixed random matrix."""
    mix = torch.randn(channels, 3, generator=torch.Generator().manual_seed(seed))
    return lambda image: torch.einsum("ck,nkhw->nchw", mix, torch.nn.functional.adaptive_avg_pool2d(image, grid))


@pytest.mark.parametrize("shape", [(64, 56, 56), (64, 112, 112), (512, 7, 7), (768, 14, 14)])
def test_feedback_decoder_starts_as_its_base_and_feeds_back_the_encoders_residual(shape):
    from lib.training import feedback_inputs

    torch.manual_seed(0)
    channels, grid = shape[0], shape[1]
    base = decoders.build_decoder("resshuffle", channels, grid, width=32).eval()
    decoder = decoders.FeedbackDecoder(base, channels, grid, stages=2).eval()
    features = torch.randn(2, *shape)
    with pytest.raises(RuntimeError, match="needs its encoder: call attach"):
        decoder(features)
    encode = _linear_encoder(channels, grid)
    decoder.attach(encode)
    with torch.no_grad():
        torch.testing.assert_close(decoder(features), base(features))  # refiners start as the identity
        images, residuals = feedback_inputs(decoder, 0, features)
        torch.testing.assert_close(images, base(features))
        torch.testing.assert_close(residuals, encode(images) - features)
        # once the first refiner has learnt something, the next stage's inputs follow from the last ones alone
        torch.nn.init.normal_(decoder.refiners[0].body[-2].weight, std=0.01)
        again = feedback_inputs(decoder, 1, features)
        onward = feedback_inputs(decoder, 1, features, previous=(images, residuals))
        torch.testing.assert_close(onward, again)
        assert not torch.allclose(again[0], images)
    # the encoder is attached, not owned: the checkpoint holds the decoder's weights only
    assert all(key.startswith(("base.", "refiners.")) for key in decoder.state_dict())


def test_a_feedback_stage_learns_to_correct_its_base():
    from lib.training import feedback_inputs, train_loop

    torch.manual_seed(0)
    channels, grid = 16, 56
    encode = _linear_encoder(channels, grid)
    smooth = torch.nn.functional.interpolate(torch.randn(16, 3, 14, 14), size=224, mode="bilinear", align_corners=False)
    features = encode(smooth)
    decoder = decoders.FeedbackDecoder(decoders.build_decoder("resshuffle", channels, grid, width=16), channels, grid, 1)
    decoder.attach(encode).eval()
    current, residuals = feedback_inputs(decoder, 0, features)
    refiner = decoder.refiners[0]
    refiner.features.fit(features), refiner.residual.fit(residuals)
    before = float(torch.nn.functional.mse_loss(current, smooth))
    loop = train_loop(refiner, lambda index: ((features[index], residuals[index], current[index]), smooth[index]),
                      len(features), lr=2e-3, batch_size=4, generator=torch.Generator().manual_seed(0),
                      epochs=5)  # a step count, not a clock: load-proof
    with torch.no_grad():
        after = float(torch.nn.functional.mse_loss(decoder(features), smooth))
    assert loop.steps == 20 and loop.epochs == 5 and not refiner.training
    assert after < 0.5 * before, (before, after)


def test_default_depth_builds_the_decoder_as_before():
    """`depth` left at its default builds the same decoder: the demo's recorded counts (resnet34 layer1 and layer4,
    EfficientNet-Lite0 stage0 at width 128) still hold, and a deeper decoder has more parameters."""
    assert decoders.decoder_size("resshuffle", 64, 56, 128) == 125_411
    assert decoders.decoder_size("resshuffle", 512, 7, 128) == 2_020_598
    assert decoders.decoder_size("resshuffle", 16, 112, 128) == 8_939
    for channels, grid in [(64, 56), (512, 7)]:
        assert decoders.decoder_size("resshuffle", channels, grid, 128, 3) > decoders.decoder_size("resshuffle", channels, grid, 128)
    deeper = decoders.build_decoder("attention", 512, 7, 32, depth=2)
    assert len(deeper.transformer.layers) == 2


@pytest.mark.parametrize("name", ["resshuffle", "simple", "attention"])
@pytest.mark.parametrize("target", [300_000, 3_000_000])
def test_match_capacity_meets_the_count_within_ten_percent(name, target):
    for channels, grid in [(64, 56), (128, 28), (512, 7), (768, 14), (16, 112)]:
        try:
            width, depth, count = decoders.match_capacity(name, channels, grid, target, width=64)
        except decoders.CapacityError as error:  # a fixed part larger than the budget: the nearest is above it
            assert error.nearest > 1.1 * target and name == "resshuffle", (channels, grid)
            continue
        assert abs(count - target) <= 0.1 * target
        assert count == decoders.count_parameters(decoders.build_decoder(name, channels, grid, width, depth))
        assert name != "attention" or width % 4 == 0


def test_match_capacity_keeps_a_default_already_within_the_tolerance():
    assert decoders.match_capacity("resshuffle", 128, 56, 240_000, width=128) == (128, None, 239_267)
    with pytest.raises(decoders.CapacityError, match="the nearest is") as error:
        decoders.match_capacity("resshuffle", 768, 14, 50_000, width=128)
    assert error.value.nearest > 300_000  # the linear path alone: 768 channels x 3x3 -> 4x4 RGB blocks
