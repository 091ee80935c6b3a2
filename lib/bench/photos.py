"""Natural photos the demo never saw, as benchmark folders: train/ and test/ (each with sources.csv) from the
photos listed in `natural_photos.tsv`, which live in Debian packages (wallpapers, GCompris, KPhotoAlbum, Tux Paint,
OpenCV's examples, ...). No other offline source holds a couple of hundred natural photos.

    python -m lib.bench.photos --out reports/bench/photos [--debs data/debs] [--test 50] [--seed 0]

Each package is fetched once with `apt-get download` at its pinned version and checked against its sha256; the
photos are read straight from the .deb (an ar archive holding data.tar.*; Qt .rcc bundles inside it are read too),
resized to 512 px on the shorter side and split by photo into train and test. licences.csv says where each came
from and under which licence.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import random
import re
import struct
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

from ..io import atomic_path, write_text
from .folders import IMAGE_SUFFIXES, SOURCES_FILE, BenchError

MANIFEST = Path(__file__).with_name("natural_photos.tsv")
SHORTER_SIDE = 512  # stored size: the benchmark resizes to 256 and crops 224, so this keeps every pixel it uses


def read_manifest(path: Path = MANIFEST) -> list[dict]:
    lines = [line for line in Path(path).read_text().splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def deb_pattern(package: str, version: str) -> str:
    """The file name apt-get download gives a package, any architecture (it writes an epoch's ':' as %3a)."""
    return f"{package}_{version.replace(':', '%3a')}_*.deb"


def fetch_debs(rows: list[dict], folder: Path) -> dict[str, Path]:
    """Each package of `rows` in `folder`, downloaded with apt-get at its pinned version when missing, checked
    against its sha256 (a mismatch is set aside and is an error)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    found = {}
    for row in {r["package"]: r for r in rows}.values():
        pattern = deb_pattern(row["package"], row["version"])
        matches = sorted(folder.glob(pattern))
        if not matches:
            command = ["apt-get", "download", f"{row['package']}={row['version']}"]
            try:
                done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
            except FileNotFoundError:
                raise BenchError(f"{row['package']} {row['version']} is not in {folder} and apt-get is missing: put "
                                 f"the .deb there (Debian bookworm main), or run this on Debian/Ubuntu.") from None
            matches = sorted(folder.glob(pattern))
            if done.returncode != 0 or not matches:
                raise BenchError(f"`{' '.join(command)}` failed ({done.stderr.strip()[-300:]}). Run `apt-get update` "
                                 f"first (as root), or put the .deb in {folder}.")
        digest = hashlib.sha256(matches[0].read_bytes()).hexdigest()
        if digest != row["sha256"]:
            bad = matches[0].with_name(matches[0].name + ".bad")
            matches[0].rename(bad)
            raise BenchError(f"{matches[0].name} has sha256 {digest[:12]}…, expected {row['sha256'][:12]}… (set aside "
                             f"as {bad.name}): another version or a damaged download. Delete it and run again.")
        found[row["package"]] = matches[0]
    return found


def ar_members(data: bytes) -> dict[str, bytes]:
    """The members of an ar archive (a .deb is one): name -> bytes."""
    if not data.startswith(b"!<arch>\n"):
        raise BenchError("not a .deb (ar archive): its first bytes are not '!<arch>'.")
    members, offset = {}, 8
    while offset + 60 <= len(data):
        header = data[offset : offset + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode().strip())
        members[name] = data[offset + 60 : offset + 60 + size]
        offset += 60 + size + (size % 2)  # members are 2-byte aligned
    return members


def deb_files(deb: Path, wanted: set[str]) -> dict[str, bytes]:
    """The files `wanted` (absolute paths) from a .deb's data.tar.*, read in one pass."""
    members = ar_members(Path(deb).read_bytes())
    data_name = next((name for name in members if name.startswith("data.tar")), None)
    if data_name is None:
        raise BenchError(f"{deb} holds no data.tar: a damaged .deb. Delete it and run again.")
    found = {}
    with tarfile.open(fileobj=io.BytesIO(members[data_name])) as tar:  # gz, xz or bz2, whichever it is
        for member in tar:
            path = "/" + member.name.removeprefix("./")
            if path in wanted and (member.isfile() or member.issym() or member.islnk()):  # links: their target
                found[path] = tar.extractfile(member).read()
    missing = wanted - set(found)
    if missing:
        raise BenchError(f"{deb} lacks {len(missing)} listed file(s), e.g. {sorted(missing)[0]}: not the pinned version?")
    return found


def rcc_files(blob: bytes) -> dict[str, bytes]:
    """Every file in a Qt resource bundle (.rcc, format 1-3): its path inside the bundle -> bytes."""
    if blob[:4] != b"qres":
        raise BenchError("not a Qt resource bundle (.rcc): no 'qres' header.")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    entry = 22 if version >= 2 else 14

    def name_at(offset: int) -> str:
        length = struct.unpack(">H", blob[names + offset : names + offset + 2])[0]
        return blob[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    files = {}

    def walk(index: int, prefix: str) -> None:
        at = tree + index * entry
        name_offset, flags = struct.unpack(">IH", blob[at : at + 6])
        name = name_at(name_offset) if index else ""
        if flags & 2:  # a directory: its children are contiguous entries
            count, first = struct.unpack(">II", blob[at + 6 : at + 14])
            for child in range(first, first + count):
                walk(child, f"{prefix}{name}/" if index else "/")
            return
        offset = struct.unpack(">I", blob[at + 10 : at + 14])[0]
        size = struct.unpack(">I", blob[data + offset : data + offset + 4])[0]
        content = blob[data + offset + 4 : data + offset + 4 + size]
        if flags & 1:  # zlib, behind its uncompressed length
            content = zlib.decompress(content[4:])
        elif flags & 4:
            raise BenchError("a zstd-compressed .rcc entry: not supported (the listed bundles use none).")
        files[prefix + name] = content

    walk(0, "")
    return files


def photo_bytes(row: dict, debs: dict[str, Path], rows: list[dict], cache: dict) -> bytes:
    """One listed photo's file: from its .deb, or from a Qt bundle inside it ("bundle.rcc:/inner/path"). A package's
    listed files are read from its .deb in one pass, on first need."""
    package = row["package"]
    if package not in cache:
        cache[package] = deb_files(debs[package], {r["path"].partition(":")[0] for r in rows if r["package"] == package})
    outer, _, inner = row["path"].partition(":")
    if not inner:
        return cache[package][outer]
    if (package, outer) not in cache:
        cache[(package, outer)] = rcc_files(cache[package][outer])
    bundle = cache[(package, outer)]
    if inner not in bundle:
        raise BenchError(f"{outer} in {package} holds no {inner}.")
    return bundle[inner]


def photo_name(row: dict) -> str:
    """package--file stem; a KDE wallpaper, whose file is named for its resolution, by its folder instead."""
    path = Path(row["path"].rpartition(":")[2] or row["path"])
    stem = path.parts[-4] if re.fullmatch(r"\d+x\d+", path.stem) and len(path.parts) >= 4 else path.stem
    return f"{row['package']}--{stem}"


def build(out: Path, debs_dir: Path, test: int = 50, seed: int = 0, manifest: Path = MANIFEST,
          progress: bool = True, val: int = 20) -> dict[str, int]:
    """train/, val/ and test/ folders of the listed photos (split by photo, by `seed`: `test` of them for test, the
    next `val` for validation, where a benchmark chooses its checkpoint), each with sources.csv, and licences.csv
    beside them. Photos already there are kept."""
    from PIL import Image, ImageOps
    from tqdm import tqdm

    rows = read_manifest(manifest)
    if not 0 < test < len(rows):
        raise BenchError(f"--test must be between 1 and {len(rows) - 1} (the manifest lists {len(rows)} photos), got {test}.")
    if not 0 <= val < len(rows) - test:
        raise BenchError(f"--val must be between 0 and {len(rows) - test - 1} (the manifest lists {len(rows)} photos, "
                         f"{test} for test), got {val}.")
    names = [photo_name(r) for r in rows]
    if len(set(names)) != len(names):
        raise BenchError(f"{manifest}: two photos would share a name; give them distinct files.")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    split = {i: ("test" if k < test else "val" if k < test + val else "train") for k, i in enumerate(order)}
    debs = fetch_debs(rows, debs_dir)
    out = Path(out)
    cache: dict = {}
    for i in tqdm(range(len(rows)), desc="photos", disable=not progress):
        target = out / split[i] / f"{names[i]}.png"
        if target.exists():
            continue
        try:
            with Image.open(io.BytesIO(photo_bytes(rows[i], debs, rows, cache))) as image:
                image = ImageOps.exif_transpose(image).convert("RGB")  # upright, as a camera's EXIF says
                scale = SHORTER_SIDE / min(image.size)
                if scale < 1:
                    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
        except OSError as error:
            raise BenchError(f"{rows[i]['path']} in {rows[i]['package']} is not a readable image ({error}).") from None
        with atomic_path(target) as partial:
            image.save(partial, format="PNG")
    counts = {}
    for part in ("train", "val", "test"):
        chosen = [names[i] for i in range(len(rows)) if split[i] == part]
        counts[part] = len(chosen)
        write_text(out / part / SOURCES_FILE, "image,source\n" + "".join(f"{name}.png,{name}\n" for name in chosen))
        kept = set(chosen)
        (out / part).mkdir(parents=True, exist_ok=True)
        for stale in (out / part).iterdir():  # a photo another seed or manifest put here
            if stale.suffix.lower() in IMAGE_SUFFIXES and stale.stem not in kept:
                stale.unlink()
    write_text(out / "licences.csv", "image,split,package,version,path,licence\n" + "".join(
        f"{names[i]}.png,{split[i]},{r['package']},{r['version']},{r['path']},\"{r['licence']}\"\n"
        for i, r in enumerate(rows)))
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.bench.photos", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--debs", type=Path, default=None, help="where the .deb files are kept (default: OUT/debs)")
    parser.add_argument("--test", type=int, default=50, help="photos held out for test")
    parser.add_argument("--val", type=int, default=20, help="photos held out for validation (checkpoint choice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from . import run_cli

    def compute() -> dict:
        counts = build(args.out, args.debs or args.out / "debs", args.test, args.seed, val=args.val)
        return {**counts, "seed": args.seed, "manifest": str(MANIFEST.name), "shorter_side": SHORTER_SIDE}

    # photos.json beside the folders: what was built, with provenance
    return run_cli(compute, args.out / "photos.json",
                   lambda r, out: f"wrote {r['train']} train, {r['val']} validation and {r['test']} test photos under "
                                  f"{args.out} ({out})")


if __name__ == "__main__":
    sys.exit(main())
