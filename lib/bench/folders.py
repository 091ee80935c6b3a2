"""Image folders as benchmark input: every image resized (shorter side 256, bicubic) and centre-cropped to 224, an
optional sources.csv naming each image's photo, and a profile's split exported as three such folders:

    python -m lib.bench.folders --out reports/bench/skimage [--profile demo]   (train/, val/, test/ with sources.csv)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .. import data as datamod
from ..io import atomic_path, write_text
from ..registry import UnknownNameError, check_layer

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
SOURCES_FILE = "sources.csv"  # optional, in an image folder: image file name -> the photo it was cut from


class BenchError(ValueError):
    """Bad benchmark input: the message names it and the fix."""


def image_files(folder: str | Path) -> list[Path]:
    """The image files in `folder`, sorted; an error if it is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchError(f"image folder '{folder}' does not exist.")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise BenchError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in '{folder}'.")
    return files


def load_folder(folder: str | Path, resize: int = 256, crop: int = 224, views: int = 1,
                seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Every image in `folder`: resize shorter side to 256 (bicubic), centre crop 224, uint8 N x 224 x 224 x 3.
    With `views` > 1, that many views of each image as the study cuts its photos (`data.photo_views`), image by
    image: N * views crops."""
    files = image_files(folder)
    crops = [datamod.load_centre_crop(f, resize, crop)[None] if views == 1
             else datamod.photo_views(f, views, seed, resize, crop) for f in files]
    return [f.name for f in files], np.concatenate(crops)


def image_sources(folder: str | Path, names: list[str]) -> list[str]:
    """The source photo of each image in `folder`, for intervals that resample whole photos (`lib.stats`): read
    from its sources.csv (columns image, source; `export_split` writes one) when present, else each image is its
    own photo."""
    path = Path(folder) / SOURCES_FILE
    if not path.is_file():
        return list(names)
    import pandas as pd

    table = pd.read_csv(path)
    if not {"image", "source"} <= set(table.columns):
        raise BenchError(f"'{path}' needs the columns image and source, has {', '.join(table.columns)}.")
    mapping = dict(zip(table["image"].astype(str), table["source"].astype(str)))
    unlisted = [n for n in names if n not in mapping]
    if unlisted:
        raise BenchError(f"'{path}' does not list {len(unlisted)} image(s) of its folder (e.g. {unlisted[0]}): add "
                         f"them, or delete the file to treat every image as its own photo.")
    return [mapping[n] for n in names]


def check_encoder(arch: str, layer: str, weights: str) -> None:
    """One clear error for an unknown layer or weights name."""
    try:
        check_layer(arch, layer)
    except UnknownNameError as error:
        raise BenchError(str(error)) from None
    if weights not in ("imagenet", "random"):
        raise BenchError(f"WEIGHTS must be imagenet or random, got '{weights}'.")


SPLITS = ("train", "val", "test")


def export_split(out: Path, profile: str = "demo") -> dict:
    """A profile's split (by source photo) as image folders: out/train, out/val and out/test, each with its
    sources.csv. Each view is the study's image (its view resized as the data step resizes it) named with its
    place in the study's store first, so a folder read in name order is the split in the study's order. Views
    already there are kept; views the split no longer puts there are removed."""
    from PIL import Image

    from .. import config

    settings = config.resolve(profile)
    entries = datamod.make_split(settings["data"], settings["seed"])
    counts = {split: 0 for split in SPLITS}
    sources = {split: [] for split in SPLITS}
    for index, entry in enumerate(entries):
        target = Path(out) / entry.split / f"{index:05d}-{entry.image}.png"
        if not target.exists():
            with atomic_path(target) as partial:  # an interrupted export leaves no image that looks whole
                Image.fromarray(datamod.load_view(entry, settings["data"]["resize"])).save(partial)
        counts[entry.split] += 1
        sources[entry.split].append(f"{target.name},{entry.source}\n")
    for split, lines in sources.items():
        write_text(Path(out) / split / SOURCES_FILE, "image,source\n" + "".join(lines))
        kept = {line.split(",", 1)[0] for line in lines}
        for stale in Path(out, split).iterdir():  # views of an earlier split: never let them leak into this one
            if stale.suffix.lower() in IMAGE_SUFFIXES and stale.name not in kept:
                stale.unlink()
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.bench.folders",
                                     description="Write a profile's split (by source photo) as train/, val/ and test/ "
                                                 "image folders.")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--profile", default="demo")
    args = parser.parse_args(argv)
    counts = export_split(args.out, args.profile)
    print(f"wrote {counts['train']} train, {counts['val']} validation and {counts['test']} test views under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
