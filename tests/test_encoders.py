import numpy as np
import pytest
import torch
from PIL import Image

from lib import decoders, encoders
from lib.registry import ARCHITECTURES, UnknownNameError, check_layer, get_architecture


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_feature_shapes_of_every_layer(arch):
    spec = ARCHITECTURES[arch]
    extractor = encoders.build_extractor(arch, spec.layer_names, weights="random")
    features = extractor(torch.randn(2, 3, 224, 224))
    assert list(features) == spec.layer_names
    for layer, shape in spec.layers.items():
        assert tuple(features[layer].shape) == (2, *shape), f"{arch} {layer}"


def test_fourteen_layers_in_the_registry():
    assert sum(len(a.layers) for a in ARCHITECTURES.values()) == 14


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_encoders_are_frozen(arch):
    extractor = encoders.build_extractor(arch, ARCHITECTURES[arch].layer_names[:1], weights="random")
    extractor.train()  # asking for train mode must not unfreeze anything
    assert not extractor.training and not any(m.training for m in extractor.modules())
    assert not any(p.requires_grad for p in extractor.parameters())
    out = next(iter(extractor(torch.randn(1, 3, 224, 224, requires_grad=True)).values()))
    assert out.grad_fn is None


def test_vit_block_is_the_block_output_without_class_token():
    extractor = encoders.build_extractor("vit_base_patch16_224", ["block1"], weights="random")
    x = torch.randn(1, 3, 224, 224)
    net = extractor.backbone
    with torch.no_grad():
        tokens = net._pos_embed(net.patch_embed(x))
        tokens = net.norm_pre(tokens)
        for block in net.blocks[:2]:
            tokens = block(tokens)
    expected = tokens[:, 1:].transpose(1, 2).reshape(1, 768, 14, 14)
    torch.testing.assert_close(extractor(x)["block1"], expected)


def test_vgg_blocks_are_the_maxpool_outputs():
    extractor = encoders.build_extractor("vgg16", ["block2"], weights="random")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = extractor.backbone.features[:10](x)
    assert isinstance(extractor.backbone.features[9], torch.nn.MaxPool2d)
    torch.testing.assert_close(extractor(x)["block2"], expected)


def test_random_initialisation_is_seeded():
    a = encoders.build_extractor("resnet34", ["layer1"], weights="random", seed=3)
    b = encoders.build_extractor("resnet34", ["layer1"], weights="random", seed=3)
    torch.testing.assert_close(a.backbone.conv1.weight, b.backbone.conv1.weight)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(UnknownNameError, match="unknown architecture 'vgg19'.*Valid architectures: resnet34, vgg16, vit_base_patch16_224"):
        get_architecture("vgg19")
    with pytest.raises(UnknownNameError, match="unknown layer 'layer5' for architecture 'resnet34'.*layer1, layer2, layer3, layer4"):
        check_layer("resnet34", "layer5")
    with pytest.raises(UnknownNameError):
        encoders.build_extractor("resnet34", ["block1"], weights="random")


def test_auto_weights_fall_back_to_random_and_say_why(torch_home):
    extractor = encoders.build_extractor("resnet34", ["layer1"], weights="auto")
    assert extractor.weights.kind == "random"
    assert "resnet34-b627a593.pth" in extractor.weights.detail and str(torch_home) in extractor.weights.detail


def test_imagenet_policy_never_falls_back(torch_home):
    with pytest.raises(encoders.WeightsError, match="vgg16-397923af.pth"):
        encoders.build_extractor("vgg16", ["block1"], weights="imagenet")


def test_cached_torchvision_weights_are_loaded(torch_home):
    import torchvision

    torch.manual_seed(123)
    state = torchvision.models.resnet34(weights=None).state_dict()
    torch.save(state, torch_home / "resnet34-b627a593.pth")
    extractor = encoders.build_extractor("resnet34", ["layer1"], weights="auto", seed=0)
    assert extractor.weights.kind == "imagenet"
    torch.testing.assert_close(extractor.backbone.conv1.weight, state["conv1.weight"])


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


def test_colour_path_is_fitted_in_closed_form_and_is_the_untrained_coarse_decoder():
    torch.manual_seed(0)
    features = torch.rand(24, 16, 7, 7)
    mixing = torch.randn(16, 3)
    colours = features.mean(dim=(2, 3)) @ mixing  # each image's colour: linear in its pooled features
    decoder = decoders.build_decoder("resshuffle", 16, 7, width=32)
    for module in decoder.modules():
        if isinstance(module, decoders.FeatureStandardise):
            module.fit(features)
    penalty = decoder.fit_colour(features, colours, torch.arange(24) // 6)
    assert penalty <= 0.01  # noise-free data: cross-validation picks (nearly) no penalty
    out = decoder.eval()(features)
    # spatial paths start at zero: the output is each image's predicted colour, everywhere
    torch.testing.assert_close(out, colours.view(24, 3, 1, 1).expand_as(out), atol=0.05 * colours.std().item(), rtol=0)


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
    for module in decoder.modules():
        if isinstance(module, decoders.FeatureStandardise):
            module.fit(features)
    info = decoder.fit_linear_start(features, images, contiguous_groups(16), max_dims=max_dims)
    assert info["kernel"] == (3 if max_dims > 1000 else 1) and info["rows"] == 16 * 14 * 14
    assert info["penalty"] <= 1e-3  # noise-free data: cross-validation picks (nearly) no penalty
    with torch.no_grad():
        out = decoder.eval()(features)
    expected = torch.nn.functional.interpolate(block_means, size=224, mode="bilinear", align_corners=False)
    error = (out - expected).pow(2).mean() / expected.var()
    assert error < 1e-3, error



def test_linear_start_survives_fewer_cells_than_design_columns():
    """196 grid cells against a 513-column design, as in the tiny profile: no error, finite paths."""
    from lib.training import contiguous_groups

    torch.manual_seed(0)
    features = torch.rand(4, 256, 7, 7) ** 3  # post-ReLU-like, non-negative
    images = np.random.default_rng(0).integers(0, 256, (4, 224, 224, 3), dtype=np.uint8)
    decoder = decoders.build_decoder("resshuffle", 256, 7, width=32)
    for module in decoder.modules():
        if isinstance(module, decoders.FeatureStandardise):
            module.fit(features)
    decoder.fit_linear_start(features, images, contiguous_groups(4))
    assert all(torch.isfinite(p).all() for p in decoder.parameters())
    assert torch.isfinite(decoder.eval()(features)).all()


def fake_vit_cache(hf_home):
    """A random ViT-B/16 saved as safetensors in the hub cache layout under its real name."""
    import timm
    from safetensors.torch import save_file

    from lib.registry import VIT_HF_REPO

    torch.manual_seed(7)
    state = timm.create_model("vit_base_patch16_224", pretrained=False).state_dict()
    repo = hf_home / "hub" / f"models--{VIT_HF_REPO.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, repo / "snapshots" / commit / "model.safetensors")
    return state


def test_vit_weights_load_from_the_hf_cache_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.raises(encoders.WeightsError, match="vit_base_patch16_224.augreg2_in21k_ft_in1k not in .*hf/hub"):
        encoders.build_extractor("vit_base_patch16_224", ["block11"], weights="imagenet")
    state = fake_vit_cache(tmp_path / "hf")
    extractor = encoders.build_extractor("vit_base_patch16_224", ["block11"], weights="imagenet")
    assert extractor.weights.kind == "imagenet" and "augreg2_in21k_ft_in1k" in extractor.weights.detail
    torch.testing.assert_close(extractor.backbone.blocks[3].attn.qkv.weight, state["blocks.3.attn.qkv.weight"])
    assert tuple(extractor(torch.randn(1, 3, 224, 224))["block11"].shape) == (1, 768, 14, 14)


def test_a_local_weights_file_takes_precedence(tmp_path, torch_home):
    import torchvision

    torch.manual_seed(5)
    state = torchvision.models.vgg16(weights=None).state_dict()
    torch.save(state, tmp_path / "my_vgg16.pth")
    extractor = encoders.build_extractor("vgg16", ["block3"], weights="imagenet", weights_file=str(tmp_path / "my_vgg16.pth"))
    assert extractor.weights.detail == f"local file {tmp_path / 'my_vgg16.pth'}"
    torch.testing.assert_close(extractor.backbone.features[0].weight, state["features.0.weight"])
    with pytest.raises(encoders.WeightsError, match="weights_file for vgg16: '.*missing.pth' does not exist"):
        encoders.build_extractor("vgg16", ["block3"], weights="imagenet", weights_file=str(tmp_path / "missing.pth"))


def test_paper_profile_with_empty_caches_names_files_and_folders(tmp_path, torch_home, monkeypatch):
    from lib import pipeline

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    study = pipeline.cfg.resolve("paper")
    for arch, settings in study["architectures"].items():
        assert settings["weights"] == "imagenet"
        with pytest.raises(encoders.WeightsError, match="ImageNet weights required: .*(pth|augreg2).* not in " + str(tmp_path)):
            encoders.build_extractor(arch, list(settings["layers"])[:1], weights=settings["weights"])


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
    from lib.training import feedback_inputs, train_until

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
    steps, epochs = train_until(refiner, lambda i: ((features[i], residuals[i], current[i]), smooth[i]), len(features),
                                2e-3, 4, torch.Generator().manual_seed(0), epochs=5)  # a step count, not a clock: load-proof
    with torch.no_grad():
        after = float(torch.nn.functional.mse_loss(decoder(features), smooth))
    assert steps == 20 and epochs == 5 and not refiner.training
    assert after < 0.5 * before, (before, after)
