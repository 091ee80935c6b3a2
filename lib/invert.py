"""Your own images through the study's decoders (`make invert IMAGES=folder`, notebooks/06_invert.ipynb).

Every image in a folder is prepared as the study prepares its own (shorter side `resize`, bicubic, centre `crop`:
`lib.data.load_centre_crop`), encoded by each planned layer's frozen encoder, decoded by that layer's trained decoder
and scored by the one evaluation (`lib.evaluation.evaluate_decoder`) beside the three baselines. Every file is checked
before anything is computed; `python -m lib.invert FOLDER` only checks, which make does before anything trains.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFile

from . import plan as planmod
from .data import load_centre_crop, to_rgb
from .io import write_bytes

# The study takes each image's shorter side to 256 px: from under 32 px that is more than 8x upscaling, and the
# scores would measure pixels the bicubic filter invented rather than the image.
MIN_SIDE = 32
# metrics.csv: one row per image and layer
COLUMNS = ["image", "arch", "layer", "psnr", "ssim", "lpips", "mse", "baseline_mean_image_psnr",
           "baseline_mean_image_ssim", "baseline_mean_colour_psnr", "baseline_mean_colour_ssim",
           "baseline_thumbnail_psnr", "baseline_thumbnail_ssim"]
UPLOAD_DIR = Path("/content/my_images")  # where Colab's upload dialog puts your images


class ImageFolderError(ValueError):
    """A folder that cannot be inverted: the message names each bad file, its problem and the fix."""


def _converted(image) -> str | None:
    """Why `image`'s pixels have no 8-bit RGB reading (a float or 32-bit image with no known white), or None."""
    try:
        to_rgb(image)
    except ValueError as error:  # to_rgb's refusal names the problem and the fix
        return str(error)
    return None


def _problem(path: Path) -> str | None:
    """Why one file cannot be used (its name, the problem, the fix), or None."""
    try:
        with Image.open(path) as image:
            image.load()  # the whole file: a truncated one fails here, not after hours of training
            width, height = image.size
            converted = _converted(image)
    except Image.UnidentifiedImageError:
        return f"{path.name}: not an image (PIL cannot identify it); remove it from the folder, or save it as PNG or JPEG."
    except PermissionError as error:
        return f"{path.name}: cannot be read ({error.strerror}); check its permissions."
    except Image.DecompressionBombError as error:
        return f"{path.name}: too large to decode safely ({error}); save a smaller copy."
    except Exception as error:  # truncated or corrupt data: OSError, or SyntaxError for a broken PNG chunk
        return (f"{path.name}: truncated or corrupt ({error}); download or save it again, or remove it from the "
                "folder.")
    if converted is not None:
        return f"{path.name}: {converted}."
    if min(width, height) < MIN_SIDE:
        return (f"{path.name}: {width}x{height} px is too small: at least {MIN_SIDE} px on the shorter side, which "
                "is scaled to 256 px (more than 8x would score invented pixels); use a larger version or remove it.")
    return None


def read_folder(folder, resize: int = 256, crop: int = 224) -> tuple[list[str], np.ndarray]:
    """(file names, uint8 N x crop x crop x 3): every file in `folder` (sorted; hidden files and subfolders skipped),
    as the study prepares its images; greyscale, RGBA and palette images become RGB. Every file is checked first:
    one `ImageFolderError` lists each that is not an image, truncated or corrupt, or under `MIN_SIDE` px."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise ImageFolderError(f"'{folder}' {problem}: give a folder of image files (PNG, JPEG, ...), "
                               "e.g. `make invert IMAGES=path/to/folder`.")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ImageFolderError(f"'{folder}' holds no image files: put your images (PNG, JPEG, ...) in it.")
    # A truncated image must be an error, not a grey bottom that gets scored: PIL's switch stays off while reading.
    truncated_ok, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        problems = [problem for problem in map(_problem, files) if problem]
        if problems:
            raise ImageFolderError(f"{len(problems)} of {len(files)} files in '{folder}' cannot be used; fix or "
                                   "remove them and run again:\n" + "\n".join(f"  - {p}" for p in problems))
        images = np.stack([load_centre_crop(path, resize, crop) for path in files])
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated_ok
    return [path.name for path in files], images


def images_folder(images: str) -> Path:
    """The notebook's `images`: a folder, or "" to upload files in Colab (saved to `UPLOAD_DIR`, emptied first)."""
    if images:
        return Path(images).expanduser()
    if "google.colab" not in sys.modules:
        raise ImageFolderError("no images given: set `images` in the parameters cell to a folder of your images, "
                               "or run `make invert IMAGES=path/to/folder`.")
    from google.colab import files  # Colab's upload dialog

    shutil.rmtree(UPLOAD_DIR, ignore_errors=True)  # this upload's images only, not an earlier one's
    for name, payload in files.upload().items():
        write_bytes(UPLOAD_DIR / Path(name).name, payload)
    return UPLOAD_DIR


def run(root, folder, out_dir=None, progress: bool = True):
    """Every image in `folder` through every layer of the study's plan, in plan order: (metrics, grid path).
    metrics.csv (`COLUMNS`, one row per image and layer) and grid.png are written under `out_dir` (default
    <root>/invert/<folder name>/) once everything is computed; a run that fails leaves neither. Never trains: a
    missing decoder is one error naming the make target."""
    from tqdm import tqdm  # text bars: readable in logs and in executed notebooks

    # torch, the encoders and matplotlib here, so that checking a folder (`python -m lib.invert`) stays quick
    from . import figures
    from .encoders import encode_images, plan_extractor
    from .evaluation import evaluate_decoder
    from .steps.evaluate import load_decoder, lpips_scorer

    folder = Path(folder).expanduser()
    # named as make names it (abspath: `..` resolved, links kept), so the executed notebook lies beside the results
    out = Path(out_dir) if out_dir else Path(root) / "invert" / Path(os.path.abspath(folder)).name
    for stale in (out / "metrics.csv", out / "grid.png"):  # no earlier run's result passes for this one's
        stale.unlink(missing_ok=True)
    try:
        plan = planmod.load(root)
        decoders = {(arch, layer): planmod.require(plan.paths.layer_dir(arch, layer) / "decoder.pt", "train")
                    for arch, layer in plan.layers()}
    except planmod.MissingInputError as error:
        raise planmod.MissingInputError(f"{error} For your images, `make invert IMAGES={folder}` trains what is "
                                        "missing, then runs this.") from None
    names, images = read_folder(folder, plan.data["resize"], plan.data["crop"])
    scorer, lpips_note = lpips_scorer(plan.study.get("lpips", "auto"))
    rows, samples = [], {}
    for (arch, layer), path in tqdm(decoders.items(), desc="invert", disable=not progress):
        extractor = plan_extractor(plan.encoder(arch), [layer])
        decoder, checkpoint = load_decoder(path, extractor, layer)
        if extractor.weights.kind != checkpoint["weights"]:
            raise RuntimeError(f"{arch} weights are {extractor.weights.kind} now but its {layer} decoder was trained "
                               f"on features of {checkpoint['weights']} weights: delete "
                               f"{plan.paths.features_done(arch)} and run `make invert IMAGES={folder}` to retrain.")
        evaluation = evaluate_decoder(decoder, extractor, layer, encode_images(extractor, layer, images), images, names,
                                      mean_image=checkpoint["mean_image"], match_steps=plan.study["match_steps"],
                                      lpips=scorer,
                                      device=checkpoint["settings"]["device"], progress=progress)
        rows.append(evaluation.per_image.assign(arch=arch, layer=layer)[COLUMNS])
        samples.setdefault(arch, {})[layer] = {"original": images, "reconstruction": evaluation.reconstructions.to_uint8(),
                                               "names": names, "psnr": evaluation.per_image["psnr"].to_numpy()}
    metrics = pd.concat(rows, ignore_index=True)
    grid = figures.inversion_grid(samples, out / "grid.png")
    write_bytes(out / "metrics.csv", metrics.to_csv(index=False).encode())
    print(f"{len(names)} images through the {len(decoders)} planned layer(s) -> {out}. {lpips_note}")
    return metrics, grid


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.invert",
                                     description="Check a folder of images for `make invert` (nothing is computed).")
    parser.add_argument("folder")
    args = parser.parse_args(argv)
    try:
        names, _ = read_folder(args.folder)
    except ImageFolderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.folder}: {len(names)} images, each readable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
