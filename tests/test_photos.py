"""Natural photo folders from Debian packages, offline: a .deb and a Qt resource bundle built here, read back."""
import hashlib
import io
import struct
import tarfile

import numpy as np
import pytest
from PIL import Image

from lib.bench import folders, photos


def png(width, height, seed):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def rotated_jpeg(width, height):
    """A camera photo stored sideways, with the EXIF orientation (6: rotate 90 degrees) that sets it upright."""
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def rcc(files: dict[str, bytes]) -> bytes:
    """A format-1 Qt resource bundle holding `files` in one folder 'img' (what GCompris ships, uncompressed)."""
    names, name_offsets = b"", {}
    for name in ["img", *files]:
        name_offsets[name] = len(names)
        names += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
    data, data_offsets = b"", {}
    for name, content in files.items():
        data_offsets[name] = len(data)
        data += struct.pack(">I", len(content)) + content
    tree = struct.pack(">IHII", 0, 2, 1, 1) + struct.pack(">IHII", name_offsets["img"], 2, len(files), 2)
    for name in files:
        tree += struct.pack(">IHHHI", name_offsets[name], 0, 0, 0, data_offsets[name])
    start = 20
    return b"qres" + struct.pack(">IIII", 1, start, start + len(tree), start + len(tree) + len(data)) + tree + data + names


def deb(files: dict[str, bytes]) -> bytes:
    """An ar archive with debian-binary, an empty control.tar.gz and data.tar.xz holding `files`."""
    def tar(entries, mode):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode=mode) as archive:
            for path, content in entries.items():
                info = tarfile.TarInfo("." + path)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
        return buffer.getvalue()

    out = b"!<arch>\n"
    for name, content in (("debian-binary", b"2.0\n"), ("control.tar.gz", tar({}, "w:gz")), ("data.tar.xz", tar(files, "w:xz"))):
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(content):<10}`\n".encode() + content + (b"\n" if len(content) % 2 else b"")
    return out


@pytest.fixture
def packages(tmp_path):
    """Two fake packages in a debs folder and a manifest listing five photos in them (two inside a .rcc)."""
    debs = tmp_path / "debs"
    debs.mkdir()
    walls = deb({**{f"/usr/share/backgrounds/wall{i}.png": png(900 + i, 600, i) for i in range(2)},
                 "/usr/share/backgrounds/wall2.png": rotated_jpeg(800, 600)})
    game = deb({"/usr/share/game/rcc/animals.rcc": rcc({"cat.png": png(700, 400, 10), "owl.png": png(300, 500, 11)})})
    (debs / "walls_1.0-1_all.deb").write_bytes(walls)
    (debs / "game-data_2%3a3.1-2_all.deb").write_bytes(game)
    rows = [("walls", "1.0-1", hashlib.sha256(walls).hexdigest(), f"/usr/share/backgrounds/wall{i}.png", "CC0")
            for i in range(3)]
    rows += [("game-data", "2:3.1-2", hashlib.sha256(game).hexdigest(), f"/usr/share/game/rcc/animals.rcc:/img/{n}.png",
              "CC-BY-4.0") for n in ("cat", "owl")]
    manifest = tmp_path / "photos.tsv"
    manifest.write_text("# a comment line\npackage\tversion\tsha256\tpath\tsize\tlicence\n"
                        + "".join("\t".join([p, v, s, path, "0x0", lic]) + "\n" for p, v, s, path, lic in rows))
    return {"debs": debs, "manifest": manifest, "tmp": tmp_path}


def test_photos_are_read_from_debs_and_qt_bundles_and_split_by_photo(packages):
    out = packages["tmp"] / "photos"
    counts = photos.build(out, packages["debs"], test=2, val=1, seed=0, manifest=packages["manifest"], progress=False)
    assert counts == {"train": 2, "val": 1, "test": 2}
    train_names, train = folders.load_folder(out / "train")
    val_names, _ = folders.load_folder(out / "val")
    test_names, _ = folders.load_folder(out / "test")
    assert (len(train_names), len(val_names), len(test_names)) == (2, 1, 2)
    assert not set(train_names) & set(test_names) and not set(val_names) & (set(train_names) | set(test_names))
    assert set(train_names) | set(val_names) | set(test_names) == {
        "walls--wall0.png", "walls--wall1.png", "walls--wall2.png", "game-data--cat.png", "game-data--owl.png"}
    # stored at 512 px on the shorter side (downscaled only), the pixels of the packaged file
    find = lambda name: next(out / s / name for s in ("train", "val", "test") if (out / s / name).exists())
    with Image.open(find("game-data--owl.png")) as owl:
        assert owl.size == (300, 500)
        np.testing.assert_array_equal(np.asarray(owl), np.asarray(Image.open(io.BytesIO(png(300, 500, 11)))))
    with Image.open(find("walls--wall0.png")) as wall:
        assert min(wall.size) == 512
    with Image.open(find("walls--wall2.png")) as upright:  # EXIF orientation applied: portrait, 512 wide
        assert upright.size == (512, 683)
    assert folders.image_sources(out / "test", test_names) == [n.removesuffix(".png") for n in test_names]
    licences = (out / "licences.csv").read_text()
    assert "game-data--cat.png" in licences and "CC-BY-4.0" in licences and "2:3.1-2" in licences
    # the same seed again keeps every photo; another seed moves them and leaves no stale copy behind
    assert photos.build(out, packages["debs"], test=2, val=1, seed=0, manifest=packages["manifest"],
                        progress=False) == counts
    photos.build(out, packages["debs"], test=2, val=1, seed=5, manifest=packages["manifest"], progress=False)
    assert [len(folders.image_files(out / s)) for s in ("train", "val", "test")] == [2, 1, 2]
    with pytest.raises(folders.BenchError, match="--val must be between 0 and 2"):
        photos.build(out, packages["debs"], test=2, val=3, manifest=packages["manifest"], progress=False)


def test_a_damaged_or_missing_package_is_one_clear_error(packages, monkeypatch):
    out = packages["tmp"] / "photos"
    with pytest.raises(folders.BenchError, match="--test must be between 1 and 4"):
        photos.build(out, packages["debs"], test=5, manifest=packages["manifest"], progress=False)
    walls = packages["debs"] / "walls_1.0-1_all.deb"
    walls.write_bytes(walls.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(folders.BenchError, match=r"walls_1.0-1_all.deb has sha256 .*expected .*set aside as walls_1.0-1_all.deb.bad"):
        photos.build(out, packages["debs"], test=2, val=1, manifest=packages["manifest"], progress=False)
    assert not walls.exists() and not (out / "train").exists()  # nothing half-built
    monkeypatch.setenv("PATH", str(packages["tmp"] / "no-such-bin"))  # no apt-get: the missing package is named
    with pytest.raises(folders.BenchError, match="walls 1.0-1 is not in .*debs and apt-get is missing"):
        photos.build(out, packages["debs"], test=2, val=1, manifest=packages["manifest"], progress=False)
    with pytest.raises(folders.BenchError, match="not a .deb"):
        photos.ar_members(b"PK\x03\x04 a zip")
    with pytest.raises(folders.BenchError, match="not a Qt resource bundle"):
        photos.rcc_files(b"\x89PNG")


def test_the_committed_manifest_lists_distinct_natural_photos_apart_from_the_demos():
    rows = photos.read_manifest()
    assert len(rows) >= 250 and len({photos.photo_name(r) for r in rows}) == len(rows)
    assert all(len(r["sha256"]) == 64 and r["version"] and r["licence"] for r in rows)
    assert not any(r["package"] == "python3-skimage" for r in rows)  # the demo's own photos are never here
    assert all(min(map(int, r["size"].split("x"))) >= 256 for r in rows)
