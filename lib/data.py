"""Images in, split manifest and a decoded image store out.

Two sources:
- `skimage`: the photos shipped inside scikit-image's wheel (and matplotlib's grace_hopper; no download), cut into
  square views. The split is by *source photo*: every view of a test photo is in test, none in training; test and
  validation photos are natural colour photos only.
- `div2k`: DIV2K_train_HR (800) -> train/val by seed, DIV2K_valid_HR (100) -> test, as the study.

Every image is decoded and resized once (shorter side -> `resize`, bicubic) into a uint8 store that all
layers and epochs reuse. Encoders see the centre `crop`x`crop`, ImageNet-normalised (each extractor re-normalises
to the mean/std its encoder is fed).
"""
from __future__ import annotations

import csv
import io
import random
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .io import write_bytes
from .registry import IMAGENET_MEAN, IMAGENET_STD  # the pipeline's one image space

# (source photo, file, kind). Files come from scikit-image's data folder, or matplotlib's sample data when named
# "matplotlib/<file>". Kinds: `natural` colour photos (test and validation are drawn from these only),
# `scientific` colour images (astronomy, microscopy, fundus: training only, nothing a reader would call a photo)
# and `grey` photos (training only, as RGB: texture and structure, no colour to learn from). The stereo pair is
# one source: never split apart.
SKIMAGE_PHOTOS = [
    ("astronaut", "astronaut.png", "natural"),
    ("chelsea", "chelsea.png", "natural"),
    ("coffee", "coffee.png", "natural"),
    ("rocket", "rocket.jpg", "natural"),
    ("motorcycle", "motorcycle_left.png", "natural"),
    ("motorcycle", "motorcycle_right.png", "natural"),
    ("grace_hopper", "matplotlib/grace_hopper.jpg", "natural"),
    ("hubble_deep_field", "hubble_deep_field.jpg", "scientific"),
    ("ihc", "ihc.png", "scientific"),
    ("retina", "retina.jpg", "scientific"),
    ("camera", "camera.png", "grey"),
    ("coins", "coins.png", "grey"),
    ("moon", "moon.png", "grey"),
    ("grass", "grass.png", "grey"),
    ("gravel", "gravel.png", "grey"),
    ("brick", "brick.png", "grey"),
]
NATURAL_SOURCES = sorted({source for source, _, kind in SKIMAGE_PHOTOS if kind == "natural"})
# Fractions of the shorter side that views cover: the whole photo first, then the closer crops, cycled.
VIEW_SCALES = (1.0, 0.8, 0.65, 0.5)

DIV2K_TRAIN = "DIV2K_train_HR"
DIV2K_VALID = "DIV2K_valid_HR"


class DataError(RuntimeError):
    """Missing or unreadable data, with a message that says what to do."""


@dataclass(frozen=True)
class Entry:
    image: str  # unique id of the (view of the) image
    source: str  # the photo it comes from; the unit of the split
    file: str  # path of the source file
    split: str  # train | val | test
    box: tuple[int, int, int] | None = None  # (x0, y0, side) of a square view, in source pixels


def read_rgb(path: str | Path) -> Image.Image:
    """Decode an image file as 8-bit RGB; one clear error naming the file if it cannot be read."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"cannot read image '{path}': {error}. Replace or remove the file and run again.") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode as 8-bit RGB. Pillow's own convert("RGB") clips 16-bit and float greyscale to 255 (a blank white
    image), so those are scaled here. Alpha is dropped: the colour stored under a transparent pixel is kept, as
    Pillow's convert does (a reconstruction target needs a colour, and no background is right for every image)."""
    if image.mode == "I" or image.mode.startswith("I;16"):
        values = np.asarray(image)
        if image.mode == "I" and 0 <= values.min() and values.max() <= 255:
            return image.convert("RGB")  # 32-bit ints holding 8-bit values (a TIFF, say): Pillow reads them right
        grey = _grey16_to_uint8(values, image.mode)
    elif image.mode == "F":
        grey = _unit_float_to_uint8(np.asarray(image))
    else:  # RGB, L, 1, P, CMYK, YCbCr, with or without alpha: Pillow converts these without loss of range
        return image.convert("RGB")
    return Image.fromarray(grey).convert("RGB")


def _grey16_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """16-bit grey (modes I;16*, and I, as which 16-bit PNGs may load) -> uint8 by its high byte (value >> 8): how
    Pillow itself decodes 16-bit RGB PNGs, so a 16-bit photo reads the same in colour or grey; exact for 8-bit data
    stored as v * 257."""
    values = values.astype(np.int64)
    low, high = int(values.min()), int(values.max())
    if low < 0 or high > 65535:  # 32-bit data: no known white to scale to
        raise ValueError(f"{mode} greyscale with values {low}..{high} does not fit 16 bits (0..65535), so its "
                         "white is unknown; save it as an 8- or 16-bit image")
    return (values >> 8).astype(np.uint8)


def _unit_float_to_uint8(values: np.ndarray) -> np.ndarray:
    """Float grey (mode F) in [0, 1] -> uint8, rounded; any other range has no known black and white."""
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise ValueError(f"float greyscale (mode F) with values {np.nanmin(values):g}..{np.nanmax(values):g} is not "
                         "in [0, 1], so its black and white are unknown; rescale it to [0, 1] or save it as an 8- or "
                         "16-bit image")
    return np.rint(values * 255).astype(np.uint8)


def resize_shorter(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    return image.resize(new, Image.BICUBIC)


def center_crop(array: np.ndarray, size: int) -> np.ndarray:
    height, width = array.shape[:2]
    if height < size or width < size:
        raise DataError(f"image of {width}x{height} is smaller than the {size}x{size} crop.")
    top, left = (height - size) // 2, (width - size) // 2
    return array[top : top + size, left : left + size]


def skimage_dir() -> Path:
    import skimage.data

    return Path(skimage.data.data_dir)


def photo_path(file: str) -> Path:
    """A shipped photo's file: scikit-image's data folder, or matplotlib's sample data for "matplotlib/<file>"."""
    if file.startswith("matplotlib/"):
        import matplotlib

        return Path(matplotlib.get_data_path()) / "sample_data" / file.removeprefix("matplotlib/")
    return skimage_dir() / file


def _view_boxes(source_key: str, width: int, height: int, count: int, seed: int,
                knob: str = "views_per_photo") -> list[tuple[int, int, int]]:
    """`count` distinct square boxes: scales cycle through VIEW_SCALES, positions are seeded per photo."""
    rng = random.Random(seed * 1_000_003 + zlib.crc32(source_key.encode()))
    short = min(width, height)
    boxes: list[tuple[int, int, int]] = []
    attempts = 0
    while len(boxes) < count:
        attempts += 1
        if attempts > 100 * count:
            raise DataError(f"could not cut {count} distinct views from {source_key}; lower {knob}.")
        if not boxes:  # the first view is the centred whole photo, then closer crops cycle
            side = int(short * VIEW_SCALES[0])
            box = ((width - side) // 2, (height - side) // 2, side)
        else:
            side = int(short * VIEW_SCALES[1 + (len(boxes) - 1) % (len(VIEW_SCALES) - 1)])
            box = (rng.randint(0, width - side), rng.randint(0, height - side), side)
        if box not in boxes:
            boxes.append(box)
    return boxes


def skimage_split(data: dict, seed: int) -> list[Entry]:
    """Split the shipped photos by source: test and val from the natural colour photos, everything else train."""
    needed = data["test_photos"] + data["val_photos"]
    if needed >= len(NATURAL_SOURCES):  # before anything is cut or written: a split with no training photo
        raise DataError(
            f"test_photos ({data['test_photos']}) + val_photos ({data['val_photos']}) = {needed} leaves no natural "
            f"colour photo to train on: {len(NATURAL_SOURCES)} available ({', '.join(NATURAL_SOURCES)}), the split "
            f"needs {needed} + at least 1 for training = {needed + 1}. Lower test_photos or val_photos in the profile."
        )
    order = NATURAL_SOURCES[:]
    random.Random(seed).shuffle(order)
    split_of = {s: "test" for s in order[: data["test_photos"]]}
    split_of.update({s: "val" for s in order[data["test_photos"] : needed]})
    entries = []
    for source, file, _ in SKIMAGE_PHOTOS:
        path = photo_path(file)
        with Image.open(path) as image:
            width, height = image.size
        key = Path(file).stem
        for index, box in enumerate(_view_boxes(key, width, height, data["views_per_photo"], seed)):
            entries.append(Entry(f"{key}_{index:02d}", source, str(path), split_of.get(source, "train"), box))
    return entries


def div2k_root(data: dict, progress: bool = True) -> Path:
    """DIV2K's folder: the user's own (`div2k_dir`, never downloaded into), else downloaded + unzipped once."""
    from . import DATA_DIR
    from .download import DownloadError, download, extract

    if data.get("div2k_dir"):
        root = Path(data["div2k_dir"]).expanduser()
        missing = [name for name in (DIV2K_TRAIN, DIV2K_VALID) if not (root / name).is_dir()]
        if missing:
            raise DataError(
                f"DIV2K not found: no {' or '.join(missing)} folder in '{root}' (DIV2K_DIR). Unzip "
                "DIV2K_train_HR.zip and DIV2K_valid_HR.zip (https://data.vision.ee.ethz.ch/cvl/DIV2K/) there, "
                "or unset DIV2K_DIR to download them."
            )
        return root
    if not data.get("mirrors") or not data.get("archives"):
        raise DataError(
            "DIV2K not found: set DIV2K_DIR to the folder holding DIV2K_train_HR/ and DIV2K_valid_HR/, "
            "or give data.mirrors and data.archives in the profile to download DIV2K_train_HR.zip and "
            "DIV2K_valid_HR.zip from https://data.vision.ee.ethz.ch/cvl/DIV2K/."
        )
    root = Path(data.get("download_dir") or DATA_DIR / "div2k")
    for name in (DIV2K_TRAIN, DIV2K_VALID):
        if (root / name).is_dir():
            continue
        file = f"{name}.zip"
        if file not in data["archives"]:
            raise DataError(f"data.archives has no entry for {file}.")
        spec = data["archives"][file]
        try:
            archive = download(file, data["mirrors"], root, spec["bytes"], spec["sha256"], progress=progress)
            extract(archive, root, name)
        except DownloadError as error:
            raise DataError(str(error)) from None
    return root


def _check_div2k_counts(root: Path, train: int, test: int, val_images: int, own: bool) -> None:
    """Refuse a DIV2K folder too small for the split before anything is written: otherwise an empty training split
    fails much later, far from its cause."""
    short = []
    if train < val_images + 1:
        short.append(f"{train} PNG images in '{root / DIV2K_TRAIN}', but the split needs val_images ({val_images}) "
                     f"+ at least 1 for training = {val_images + 1}")
    if test < 1:
        short.append(f"{test} PNG images in '{root / DIV2K_VALID}', but the split needs at least 1 test image")
    if short:
        where = ("Point DIV2K_DIR at the full DIV2K" if own
                 else f"Delete '{root}' to download DIV2K again, or set DIV2K_DIR to the full DIV2K")
        raise DataError(f"too few DIV2K images: {'; '.join(short)}. {where} (800 images in {DIV2K_TRAIN}/, 100 in "
                        f"{DIV2K_VALID}/), or lower val_images in the profile.")


def div2k_split(data: dict, seed: int) -> list[Entry]:
    """The study's split: 800 train images -> (800 - val_images) train / val_images val by seed; valid -> test."""
    root = div2k_root(data)
    train = sorted((root / DIV2K_TRAIN).glob("*.png"))
    test = sorted((root / DIV2K_VALID).glob("*.png"))
    _check_div2k_counts(root, len(train), len(test), data["val_images"], own=bool(data.get("div2k_dir")))
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    val_index = set(order[: data["val_images"]])
    entries = [
        Entry(p.stem, p.stem, str(p), "val" if i in val_index else "train") for i, p in enumerate(train)
    ]
    entries += [Entry(p.stem, p.stem, str(p), "test") for p in test]
    return entries


def make_split(data: dict, seed: int) -> list[Entry]:
    entries = skimage_split(data, seed) if data["source"] == "skimage" else div2k_split(data, seed)
    limit = data.get("limit") or 0
    if limit:
        kept, counts = [], {}
        for entry in entries:
            counts[entry.split] = counts.get(entry.split, 0) + 1
            if counts[entry.split] <= limit:
                kept.append(entry)
        entries = kept
    return entries


def load_centre_crop(path: str | Path, resize: int = 256, crop: int = 224) -> np.ndarray:
    """One image file as the encoders see it: shorter side `resize` (bicubic), centre `crop`, uint8 HxWx3."""
    return center_crop(np.asarray(resize_shorter(read_rgb(path), resize)), crop)


def photo_views(path: str | Path, count: int, seed: int, resize: int = 256, crop: int = 224) -> np.ndarray:
    """`count` views of one image file as the study cuts its photos (`_view_boxes`: the centred square first, then
    seeded closer crops), each as the encoders see it (shorter side `resize`, centre `crop`): uint8 count x crop x
    crop x 3."""
    image = read_rgb(path)
    views = []
    for x0, y0, side in _view_boxes(Path(path).stem, image.width, image.height, count, seed, knob="VIEWS"):
        view = resize_shorter(image.crop((x0, y0, x0 + side, y0 + side)), resize)
        views.append(center_crop(np.asarray(view, dtype=np.uint8), crop))
    return np.stack(views)


def load_view(entry: Entry, resize: int) -> np.ndarray:
    """Decode one entry into a uint8 HxWx3 array, shorter side `resize`."""
    image = read_rgb(entry.file)
    if entry.box is not None:
        x0, y0, side = entry.box
        image = image.crop((x0, y0, x0 + side, y0 + side))
    return np.asarray(resize_shorter(image, resize), dtype=np.uint8)


def write_manifest(entries: list[Entry], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", "source", "split", "file", "box"])
    for e in entries:
        box = "" if e.box is None else " ".join(map(str, e.box))
        writer.writerow([e.image, e.source, e.split, e.file, box])
    write_bytes(path, buffer.getvalue().encode())


def read_manifest(path: Path) -> list[Entry]:
    if not path.is_file():
        raise DataError(f"split manifest '{path}' is missing: run the data step first (make data).")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        Entry(r["image"], r["source"], r["file"], r["split"], tuple(map(int, r["box"].split())) if r["box"] else None)
        for r in rows
    ]


def build_store(entries: list[Entry], resize: int, progress: bool = True) -> dict:
    """Decode every image once: {'images': [uint8 HxWx3], 'names': [...], 'splits': [...]}."""
    from tqdm import tqdm  # text bars: readable in logs and in executed notebooks

    images = [load_view(e, resize) for e in tqdm(entries, desc="decode + resize", disable=not progress)]
    return {"names": [e.image for e in entries], "splits": [e.split for e in entries], "images": images}


def centre_crops(store: dict, crop: int, indices=None) -> np.ndarray:
    """uint8 N x crop x crop x 3 centre crops of the store's images."""
    indices = range(len(store["images"])) if indices is None else indices
    return np.stack([center_crop(store["images"][i], crop) for i in indices])


def normalise(uint8_batch: np.ndarray):
    """uint8 NHWC -> ImageNet-normalised float NCHW tensor, the encoders' and decoders' space."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(uint8_batch)).permute(0, 3, 1, 2).float().div_(255)
    mean, std = imagenet_mean_std()
    return (x - mean) / std


def training_mean_image(images: np.ndarray, chunk: int = 64) -> torch.Tensor:
    """The mean of uint8 N x H x W x 3 images as 3 x H x W in [0, 1] (float64 sums, so the order of images does not
    change it beyond float32 rounding)."""
    import torch

    total = np.zeros(images.shape[1:], dtype=np.float64)
    for start in range(0, len(images), chunk):
        total += images[start : start + chunk].sum(axis=0, dtype=np.float64)
    return torch.from_numpy(total / (255.0 * len(images))).permute(2, 0, 1).float().contiguous()


def imagenet_mean_std(device=None):
    """ImageNet's per-channel (mean, std) as 1 x 3 x 1 x 1 tensors on `device`: normalised = (pixels - mean) / std."""
    import torch

    return (torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1),
            torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1))


def clamp_to_images(x):
    """Normalised outputs limited to what an image can hold ([0, 1] per channel before normalisation), as they are
    scored: a decoder can push pixels far beyond black or white where being wrong costs nothing once clamped."""
    import torch

    mean, std = imagenet_mean_std(x.device)
    return torch.maximum(torch.minimum(x, (1 - mean) / std), -mean / std)


def split_counts(entries: list[Entry]) -> dict[str, int]:
    counts = {"train": 0, "val": 0, "test": 0}
    for e in entries:
        counts[e.split] += 1
    return counts


def colour_jitter(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A new colour for each uint8 NHWC image: contrast about its mean x[0.7, 1.3], mean colour x[0.6, 1.4] and
    +[-50, 50] per channel, clipped. The content stays; only what a single colour describes changes."""
    x = images.astype(np.float32)
    n = len(x)
    mean = x.mean(axis=(1, 2), keepdims=True)
    contrast = rng.uniform(0.7, 1.3, (n, 1, 1, 1)).astype(np.float32)
    gain = rng.uniform(0.6, 1.4, (n, 1, 1, 3)).astype(np.float32)
    shift = rng.uniform(-50, 50, (n, 1, 1, 3)).astype(np.float32)
    return ((x - mean) * contrast + mean * gain + shift).clip(0, 255).round().astype(np.uint8)


def colour_copies(images: np.ndarray, copies: int, rng: np.random.Generator) -> np.ndarray:
    """`copies` colour-jittered copies of the uint8 NHWC `images`, one block of len(images) after another."""
    return np.concatenate([images[:0]] + [colour_jitter(images, rng) for _ in range(copies)])
