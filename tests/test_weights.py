"""Cached torchvision-style checkpoints (resnet34-b627a593.pth, vgg16-397923af.pth, alexnet-owt-7be5be79.pth) are
checked against the sha256 prefix in their names before torch.load sees them: an empty, truncated or substituted
file is one error naming it and the fix, under every weights policy; the digest is hashed once per version of the
file (a sidecar keyed by size and mtime). Every file here is small: a real-sized one is never needed."""
import hashlib
import json
import os
import re
from pathlib import Path

import pytest
import torch

from lib import encoders
from lib.registry import ALEXNET_WEIGHTS_FILE

RESNET34 = "resnet34-b627a593.pth"
DELETE = "Delete it; it will be downloaded again on the next run"


def accept_fake_weights(monkeypatch, path) -> None:
    """Tests stand random weights in for the real ones under the real file names; such a file's sha256 is its own,
    not the one its name carries. Register its digest as the one expected for that name, for this test only (the
    check itself runs unchanged)."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    real = encoders.expected_sha256_prefix
    monkeypatch.setattr(encoders, "expected_sha256_prefix",
                        lambda file: digest.hexdigest()[:8] if Path(file).name == path.name else real(file))


def small_checkpoint(path: Path, value: float = 1.0) -> Path:
    torch.save({"weight": torch.full((3, 2), value)}, path)
    return path


def named_by_digest(path: Path, stem: str = "tiny") -> Path:
    """`path` renamed to carry its own sha256 prefix, as torchvision names its files."""
    target = path.with_name(f"{stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:8]}.pth")
    path.rename(target)
    return target


def count_hashing(monkeypatch) -> list:
    calls = []
    real = encoders.sha256_of
    monkeypatch.setattr(encoders, "sha256_of", lambda path: calls.append(Path(path)) or real(path))
    return calls


@pytest.mark.parametrize("policy", ["imagenet", "auto"])
def test_an_empty_cached_file_is_one_error_naming_it(torch_home, policy):
    path = torch_home / RESNET34
    path.write_bytes(b"")
    with pytest.raises(encoders.WeightsError, match=f"{re.escape(str(path))} .*it is empty \\(0 bytes\\).*{DELETE}"):
        encoders.build_extractor("resnet34", ["layer1"], weights=policy)


@pytest.mark.parametrize("policy", ["imagenet", "auto"])
def test_a_truncated_cached_file_is_one_error_naming_it(torch_home, policy):
    path = small_checkpoint(torch_home / RESNET34)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(encoders.WeightsError,
                       match=f"{re.escape(str(path))} .*its sha256 does not start with b627a593.*{DELETE}"):
        encoders.build_extractor("resnet34", ["layer1"], weights=policy)


def test_a_loadable_file_with_other_contents_is_refused_not_labelled_imagenet(torch_home, monkeypatch):
    """Random weights saved under the real name load fine with torch; `auto` must not take them for ImageNet's, nor
    for absent weights (random), nor may LPIPS under `auto` use or skip past a substituted AlexNet."""
    from lib.steps.evaluate import lpips_scorer

    path = small_checkpoint(torch_home / RESNET34)
    torch.load(path, weights_only=True)  # loadable
    for policy in ("auto", "imagenet"):
        with pytest.raises(encoders.WeightsError, match=f"{re.escape(str(path))} .*does not start with b627a593"):
            encoders.build_extractor("resnet34", ["layer1"], weights=policy)
    small_checkpoint(torch_home / ALEXNET_WEIGHTS_FILE)
    with pytest.raises(encoders.WeightsError, match=f"{ALEXNET_WEIGHTS_FILE} .*does not start with 7be5be79.*{DELETE}"):
        lpips_scorer("auto")
    assert encoders.build_extractor("resnet34", ["layer1"], weights="random").weights.kind == "random"


def test_a_file_that_fits_its_name_loads_and_is_hashed_once_per_version(torch_home, monkeypatch):
    path = named_by_digest(small_checkpoint(torch_home / "tiny.pth", 2.0))
    calls = count_hashing(monkeypatch)
    state, info = encoders.torchvision_weights(path.name, "imagenet")
    assert info == encoders.WeightsInfo("imagenet", str(path)) and torch.equal(state["weight"], torch.full((3, 2), 2.0))
    sidecar = torch_home / f".{path.name}.sha256.json"
    recorded = json.loads(sidecar.read_text())
    assert recorded["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and recorded["size"] == path.stat().st_size
    assert calls == [path]
    encoders.torchvision_weights(path.name, "auto")
    assert calls == [path]  # the second load trusts the sidecar: no re-hash
    # the same bytes with another mtime (a copy over it): hashed again, still fine
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert encoders.torchvision_weights(path.name, "imagenet")[1].kind == "imagenet"
    assert len(calls) == 2
    # other contents under the name, same size: the new mtime means a new hash, which finds the mismatch
    data = path.read_bytes()
    path.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 9_000_000_000))
    assert path.stat().st_size == stat.st_size
    with pytest.raises(encoders.WeightsError, match=f"{re.escape(str(path))} .*does not start with {path.stem[-8:]}"):
        encoders.torchvision_weights(path.name, "auto")
    assert len(calls) == 3


def test_a_read_only_cache_keeps_no_sidecar_and_still_loads(torch_home, monkeypatch):
    from lib import io

    def read_only(path, obj):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(io, "write_json", read_only)
    path = named_by_digest(small_checkpoint(torch_home / "tiny.pth"))
    calls = count_hashing(monkeypatch)
    for _ in range(2):
        assert encoders.torchvision_weights(path.name, "imagenet")[1].kind == "imagenet"
    assert len(calls) == 2 and not (torch_home / f".{path.name}.sha256.json").exists()


def test_a_file_that_fits_its_name_but_does_not_load_names_the_file(torch_home):
    path = torch_home / "junk.pth"
    path.write_bytes(b"not a checkpoint at all")
    path = named_by_digest(path, "junk")
    with pytest.raises(encoders.WeightsError, match=f"{re.escape(str(path))} could not be loaded \\(.*\\). {DELETE}"):
        encoders.torchvision_weights(path.name, "auto")


def test_downloads_go_through_the_same_check_and_leave_their_digest(tmp_path, torch_home, monkeypatch):
    good = named_by_digest(small_checkpoint(tmp_path / "tiny.pth"))
    encoders._download(good.as_uri(), torch_home / good.name)
    calls = count_hashing(monkeypatch)
    assert encoders.torchvision_weights(good.name, "imagenet")[1].kind == "imagenet"
    assert calls == []  # hashed while downloading
    bad = torch_home / f"other-{'0' * 8}.pth"
    with pytest.raises(encoders.WeightsError, match=f"downloaded wrong: its sha256 does not start with 00000000.*"
                                                    f"set aside as {re.escape(str(bad))}.bad"):
        encoders._download(good.as_uri(), bad)
    assert not bad.exists() and bad.with_name(bad.name + ".bad").exists()


def test_cached_torchvision_weights_are_loaded(torch_home, monkeypatch):
    """Random ResNet34 weights standing in for the real file (their digest registered): loaded and labelled."""
    import torchvision

    torch.manual_seed(123)
    state = torchvision.models.resnet34(weights=None).state_dict()
    torch.save(state, torch_home / RESNET34)
    accept_fake_weights(monkeypatch, torch_home / RESNET34)
    extractor = encoders.build_extractor("resnet34", ["layer1"], weights="auto", seed=0)
    assert extractor.weights.kind == "imagenet"
    torch.testing.assert_close(extractor.backbone.conv1.weight, state["conv1.weight"])
