"""Benchmarks that print numbers and write JSON.

quality: train the default decoder on any folder of images for a wall-clock budget and score it on another,
next to the mean-colour and thumbnail baselines:

    python -m lib.bench quality --arch resnet34 --layer layer1 --train-dir DIR --test-dir DIR \\
        --weights imagenet|random --minutes 10 --out result.json

colour: how well a layer's pooled features predict each test image's mean colour (closed-form ridge, as the
default decoder's colour path), with and without colour-jittered copies of the training images, against the
mean-colour baseline (the best any single colour can score); and how much of each image's layout (its thumbnail at
the layer's grid, less its mean colour) the layer's cells tell, across the training photos and on the test photos:

    python -m lib.bench colour --arch resnet34 --layer layer4 --train-dir DIR --test-dir DIR --weights random \\
        --copies 8 --out colour.json

offline: the issue's offline targets as one sweep: `quality` on every layer of the study (random-init encoders,
the demo's scikit-image views split by source, MINUTES per layer), one JSON per layer, then a table of decoder
against both baselines with each target met or missed. Layers whose JSON already holds these settings are kept:

    python -m lib.bench offline --out-dir reports/bench/offline --minutes 10

export-demo: write the demo's split (scikit-image views, by source photo) as train/ and test/ folders.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import data as datamod
from .encoders import encode_images, layer_encoder
from .provenance import record
from .matching import levels_record, steps_at as matching_steps
from .registry import UnknownNameError, all_layers, check_layer
from .stats import interval_label

# The default decoder's feedback stages in a wall-clock budget (random ResNet34 layer1, 600 CPU-s shared equally:
# 0 stages 26.47 dB, 1 27.27, 2 27.56, 3 27.49; with 2, ViT block0 30.21 vs 27.87, VGG16 block1 34.23 vs 34.73).
FEEDBACK_STAGES = 2
# Test-time feature-matching steps (`matching.match_features`) at 56x56 grids (random ResNet34 layer1 after the
# feedback stages, 27.44 dB, with the pyramid correction: 28.29 after 100 steps, 28.38 after 150, 28.44 after 250).
MATCH_STEPS = 300

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


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


def load_folder(folder: str | Path, resize: int = 256, crop: int = 224) -> tuple[list[str], np.ndarray]:
    """Every image in `folder`: resize shorter side to 256 (bicubic), centre crop 224, uint8 N x 224 x 224 x 3."""
    files = image_files(folder)
    crops = [datamod.load_centre_crop(f, resize, crop) for f in files]
    return [f.name for f in files], np.stack(crops)


SOURCES_FILE = "sources.csv"  # optional, in an image folder: image file name -> the photo it was cut from


def image_sources(folder: str | Path, names: list[str]) -> list[str]:
    """The source photo of each image in `folder`, for intervals that resample whole photos (`lib.stats`): read
    from its sources.csv (columns image, source; `export-demo` writes one) when present, else each image is its
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


def paired_intervals(psnrs, mean_colour_psnrs, thumbnail_psnrs, sources) -> dict:
    """The decoder's PSNR and its margins over both baselines with 95% intervals over source photos."""
    import pandas as pd

    from .stats import baseline_comparisons

    per_image = pd.DataFrame({"psnr": psnrs, "baseline_mean_colour_psnr": mean_colour_psnrs,
                              "baseline_thumbnail_psnr": thumbnail_psnrs})
    return baseline_comparisons(per_image, sources)


def _check_encoder(arch: str, layer: str, weights: str) -> None:
    try:
        check_layer(arch, layer)
    except UnknownNameError as error:
        raise BenchError(str(error)) from None
    if weights not in ("imagenet", "random"):
        raise BenchError(f"WEIGHTS must be imagenet or random, got '{weights}'.")


def _images_and_encoder(arch: str, layer: str, weights: str, train_dir, test_dir, seed: int, test_copies: int = 0):
    """(train images then their horizontal flips, test names, test images, extractor). Flips are exact to cache:
    both orientations are encoded once and reused. With `test_copies` (and no `train_dir`) the training images are
    that many colour-jittered copies of each test image, one block per copy: the in-domain control."""
    from .encoders import build_extractor

    test_names, test_images = load_folder(test_dir)
    if test_copies:
        train_images = datamod.colour_copies(test_images, test_copies, np.random.default_rng([seed, 1]))
    else:
        _, train_images = load_folder(train_dir)
    images = np.concatenate([train_images, train_images[:, :, ::-1]])
    return images, test_names, test_images, build_extractor(arch, [layer], weights, seed)


def quality(arch: str, layer: str, train_dir, test_dir, weights: str, minutes: float, width: int = 256,
            batch_size: int = 8, lr: float = 2e-3, seed: int = 0, colour_copies: int = 0, feedback: int = FEEDBACK_STAGES,
            match: int = MATCH_STEPS, progress: bool = True, train_on_test_copies: int = 0) -> dict:
    """Train the default decoder for `minutes` of wall clock (flips as augmentation, encoded once) and score it.

    `colour_copies` adds that many colour-jittered copies of every training image and its flip (`colour_jitter`),
    encoded once with them: a few training photos cover few colours, and a decoder only learns how the layer
    encodes the colours it sees. The budget covers the decoder's closed-form start as well as its gradient steps.
    `match` feature-matching steps then correct each test reconstruction at 56x56 grids
    (`matching.match_features`): test-time work outside the training budget, timed as `match_seconds`, with the
    decoder's own scores kept as `decoder_psnr_mean` / `decoder_ssim_mean`.

    `train_on_test_copies` k (with `train_dir` None) trains instead on k colour-jittered copies of each test image,
    the originals never seen: an in-domain control that asks whether a layer holds what the test images need, when
    the training photos are like them. Not a result: its score is labelled by `train_on_test_copies` in the JSON.
    """
    from tqdm import tqdm

    from .decoders import FeedbackDecoder, build_decoder
    from .metrics import Pixels, feature_errors, mean_colour_baseline, psnr, ssim, thumbnail_baseline
    from .matching import match_features
    from .training import (contiguous_groups, feedback_inputs, fit_to_training_data, pick_device, reconstruct, seed_everything,
                           train_feedback_stage, train_until)

    _check_encoder(arch, layer, weights)
    if minutes <= 0:
        raise BenchError(f"MINUTES must be positive, got {minutes}.")
    if batch_size < 2:
        raise BenchError(f"BATCH_SIZE must be at least 2 (the decoder has BatchNorm), got {batch_size}.")
    if colour_copies < 0:
        raise BenchError(f"COLOUR_COPIES must be 0 or more, got {colour_copies}.")
    if feedback < 0:
        raise BenchError(f"FEEDBACK must be 0 or more, got {feedback}.")
    if match < 0:
        raise BenchError(f"MATCH must be 0 or more, got {match}.")
    if train_on_test_copies < 0:
        raise BenchError(f"TRAIN_ON_TEST_COPIES must be 0 or more, got {train_on_test_copies}.")
    if bool(train_on_test_copies) == (train_dir is not None):
        raise BenchError("give either TRAIN_DIR or TRAIN_ON_TEST_COPIES (the in-domain control trains on copies of "
                         "the test images), not both or neither.")
    started = time.perf_counter()
    images, test_names, test_images, extractor = _images_and_encoder(arch, layer, weights, train_dir, test_dir, seed,
                                                                     train_on_test_copies)
    photos = len(images) // 2
    # cross-validation folds by source image: an image's flip and colour copies (and in the in-domain control, every
    # copy of one test image) share its fold
    groups = (contiguous_groups(len(test_images)).repeat(train_on_test_copies) if train_on_test_copies
              else contiguous_groups(photos))
    rng = np.random.default_rng(seed)
    images = np.concatenate([images, datamod.colour_copies(images, colour_copies, rng)])
    features = encode_images(extractor, layer, images)
    test_features = encode_images(extractor, layer, test_images)
    encode_seconds = time.perf_counter() - started

    device = pick_device("auto")
    seed_everything(seed)
    channels, grid = features.shape[1], features.shape[2]
    decoder = FeedbackDecoder(build_decoder("resshuffle", channels, grid, width), channels, grid, feedback)
    decoder.attach(layer_encoder(extractor, layer))
    train_started = time.perf_counter()
    budget = minutes * 60
    fit_to_training_data(decoder.base, features, images, groups.repeat(2 * (colour_copies + 1)))
    fit_seconds = time.perf_counter() - train_started
    decoder.to(device), extractor.to(device)
    order = torch.Generator().manual_seed(seed)
    bar = tqdm(total=int(budget), desc=f"bench {arch} {layer}", unit="s", mininterval=5, disable=not progress)
    seconds_bar = lambda loss: (bar.update(int(time.perf_counter() - train_started) - bar.n),  # noqa: E731
                                bar.set_postfix(loss=f"{loss:.4f}", refresh=False))
    # The budget is shared equally by the base decoder (its closed-form start included) and each feedback stage
    # (its inputs' encoding included).
    deadline = lambda stage: train_started + budget * (stage + 1) / (feedback + 1)  # noqa: E731
    base_batch = lambda index: ((features[index].to(device),), datamod.normalise(images[index.numpy()]).to(device))  # noqa: E731
    steps, epochs = train_until(decoder.base, base_batch, len(features), lr, batch_size, order, deadline=deadline(0),
                                on_step=seconds_bar)
    feedback_epochs, inputs, input_seconds = [], None, 0.0
    for stage in range(1, feedback + 1):
        if time.perf_counter() + input_seconds >= deadline(stage):
            # this stage's inputs would take its whole share (the last ones took input_seconds): stop here,
            # so the budget holds; the stages left untrained are dropped
            del decoder.refiners[stage - 1 :]
            break
        started_inputs = time.perf_counter()
        inputs = feedback_inputs(decoder, stage - 1, features, device, previous=inputs)
        input_seconds = time.perf_counter() - started_inputs
        _, stage_epochs = train_feedback_stage(decoder, stage, features, images, inputs, lr, batch_size, order, device,
                                               deadline=deadline(stage), on_step=seconds_bar)
        if stage_epochs == 0:  # its inputs took its whole share (a loaded machine): an untrained stage is dropped too
            del decoder.refiners[stage - 1 :]
            break
        feedback_epochs.append(stage_epochs)
    del inputs
    bar.close()
    decoder.to("cpu"), extractor.to("cpu")
    train_seconds = time.perf_counter() - train_started
    target = Pixels.from_uint8(test_images)
    decoded = reconstruct(decoder, test_features)
    decoder_psnr, decoder_ssim = (float(m(Pixels.from_normalised(decoded), target).mean()) for m in (psnr, ssim))
    match_steps = matching_steps(grid, match)
    match_started = time.perf_counter()
    recon = Pixels.from_normalised(match_features(layer_encoder(extractor, layer, differentiable=True), decoder.base.standardise,
                                                  test_features, decoded, match_steps, device=device,
                                                  progress=progress))
    match_seconds = time.perf_counter() - match_started
    extractor.to("cpu")
    p, s = psnr(recon, target), ssim(recon, target)
    mean_colour, thumbnail = mean_colour_baseline(target), thumbnail_baseline(target, grid)
    mean_colour_psnr, thumbnail_psnr = psnr(mean_colour, target), psnr(thumbnail, target)
    # the layer's own view of each image (metrics.feature_error): how far from the original in its features
    distances = {name: float(values.mean()) for name, values in
                 feature_errors(extractor, layer, test_features, recon, mean_colour, thumbnail).items()}
    return {
        "arch": arch, "layer": layer, "weights": extractor.weights.kind, "weights_detail": extractor.weights.detail,
        "train_images": photos, "test_images": len(test_images), "colour_copies": colour_copies,
        "train_on_test_copies": train_on_test_copies, "minutes": minutes, "seconds": round(train_seconds, 1), "fit_seconds": round(fit_seconds, 1), "encode_seconds": round(encode_seconds, 1),
        "epochs": epochs, "steps": steps, "device": str(device),
        "decoder": "resshuffle", "closed_form_paths": closed_form_paths(decoder.base), "feedback": len(decoder.refiners), "feedback_requested": feedback, "feedback_epochs": feedback_epochs,
        "match_steps": match_steps, "match_requested": match, "match_seconds": round(match_seconds, 1),
        "match_levels": levels_record(match_steps), "width": width, "batch_size": min(batch_size, len(features)),
        "psnr_mean": float(p.mean()), "psnr_std": float(p.std()), "ssim_mean": float(s.mean()), "ssim_std": float(s.std()),
        "decoder_psnr_mean": decoder_psnr, "decoder_ssim_mean": decoder_ssim,  # before feature matching
        "baseline_mean_colour_psnr": float(mean_colour_psnr.mean()),
        "baseline_mean_colour_ssim": float(ssim(mean_colour, target).mean()),
        "baseline_thumbnail_psnr": float(thumbnail_psnr.mean()),
        "baseline_thumbnail_ssim": float(ssim(thumbnail, target).mean()),
        **distances,
        # 95% intervals over the test photos (sources.csv), paired by image
        **paired_intervals(p, mean_colour_psnr, thumbnail_psnr, image_sources(test_dir, test_names)),
        "per_image_psnr": dict(zip(test_names, map(float, p))),
        "per_image_baseline_mean_colour_psnr": dict(zip(test_names, map(float, mean_colour_psnr))),
        "per_image_baseline_thumbnail_psnr": dict(zip(test_names, map(float, thumbnail_psnr))),
    }


def colour(arch: str, layer: str, train_dir, test_dir, weights: str, copies: int = 8, seed: int = 0,
           layout_lambdas=(1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0), indomain_copies: int = 8) -> dict:
    """Mean-colour prediction from pooled features by ridge regression (the default decoder's closed-form colour
    path): penalty chosen by cross-validation over the training photos, and as an upper bound chosen on the test
    images themselves; trained on the (flipped) training images alone and with `copies` colour-jittered copies.

    A decoder whose colour is this far off cannot beat the mean-colour baseline unless its spatial detail makes up
    the difference, so this bounds what the global path of any decoder can learn from these images.

    The same readout fitted on `indomain_copies` recoloured copies of the test images themselves (the originals
    left out) asks the other question: does the layer hold the colour at all? Near the mean-colour baseline there
    but short of it from the training photos, the colour is in the features and what the training photos teach
    about reading it does not carry over to the test photos.
    """
    from .decoders import COLOUR_PENALTIES, ResShuffleDecoder
    from .metrics import Pixels, mean_colour_baseline, psnr
    from .training import contiguous_groups, mean_colours

    _check_encoder(arch, layer, weights)
    for name, count in (("COPIES", copies), ("INDOMAIN_COPIES", indomain_copies)):
        if count < 0:
            raise BenchError(f"{name} must be 0 or more, got {count}.")
    started = time.perf_counter()
    images, _, test_images, extractor = _images_and_encoder(arch, layer, weights, train_dir, test_dir, seed)
    if len(images) < 4:  # the layout readout scores each photo by a fit to the others
        raise BenchError(f"bench-colour needs at least 2 training images in '{train_dir}' (its penalties are "
                         f"cross-validated over photos); found {len(images) // 2}.")
    groups = contiguous_groups(len(images) // 2).repeat(2)  # a photo, its flip and its copies share a fold
    rng = np.random.default_rng(seed)
    training_set = np.concatenate([images, datamod.colour_copies(images, copies, rng)])
    # The colour path only sees per-image means (its pooling of a 1 x 1 map is the identity): the copies are
    # pooled as they are encoded; the photos and flips are kept whole for the layout readout.
    full_features = encode_images(extractor, layer, images)
    features = full_features.mean(dim=(2, 3), keepdim=True)
    if copies:
        features = torch.cat([features, encode_images(extractor, layer, training_set[len(images):], pooled=True)])
    full_test_features = encode_images(extractor, layer, test_images)
    channels, grid = full_test_features.shape[1], full_test_features.shape[2]
    test_features = full_test_features.mean(dim=(2, 3), keepdim=True)
    target = Pixels.from_uint8(test_images)
    size = test_images.shape[1]

    def fitted_psnr(count: int, fit_groups: torch.Tensor, choices, fit_features=features, fit_images=training_set):
        decoder = ResShuffleDecoder(channels, grid, width=16)
        decoder.pooled.fit(fit_features[:count])
        lam = decoder.fit_colour(fit_features[:count], mean_colours(fit_images[:count]), fit_groups[:count], lambdas=choices)
        with torch.no_grad():
            predicted = decoder.colour(decoder.pooled(test_features)).expand(-1, -1, size, size)
        return float(psnr(Pixels.from_normalised(predicted), target).mean()), lam

    result = {"arch": arch, "layer": layer, "weights": extractor.weights.kind, "weights_detail": extractor.weights.detail,
              "train_images": len(images) // 2, "test_images": len(test_images), "copies": copies,
              "baseline_mean_colour_psnr": float(psnr(mean_colour_baseline(target), target).mean())}
    single_fold = torch.zeros(len(training_set), dtype=torch.long)
    for name, count in (("flips", len(images)), ("copies", len(training_set))):
        if name == "copies" and copies == 0:
            continue
        result[f"{name}_psnr"], result[f"{name}_penalty"] = fitted_psnr(count, groups.repeat(copies + 1),
                                                                        COLOUR_PENALTIES)
        # penalty picked on the test images: an optimistic bound, not a result
        result[f"{name}_psnr_bound"] = max(fitted_psnr(count, single_fold, (lam,))[0] for lam in COLOUR_PENALTIES)
    if indomain_copies:
        recoloured = datamod.colour_copies(test_images, indomain_copies, rng)
        # a test image's copies share a fold, so the penalty is chosen on images whose content the fit has not seen
        by_image = contiguous_groups(len(test_images)).repeat(indomain_copies)
        result["indomain_copies"] = indomain_copies
        result["indomain_psnr"], result["indomain_penalty"] = fitted_psnr(
            len(recoloured), by_image, COLOUR_PENALTIES, encode_images(extractor, layer, recoloured, pooled=True), recoloured)
    result.update(layout_readout(full_features, images, groups, full_test_features, test_images, layout_lambdas))
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


@torch.no_grad()
def layout_readout(features: torch.Tensor, images: np.ndarray, groups: torch.Tensor, test_features: torch.Tensor,
                   test_images: np.ndarray, lambdas) -> dict:
    """How much of each image's layout a layer's cells say, in a way that carries over to other photos: a ridge
    regression from each cell's standardised features, less the image's mean features, to that cell of the image's
    thumbnail at the layer's grid, less the image's mean colour. R^2 across the training photos (each fold predicted
    by the others, penalty chosen there) and on the test images (fitted on all training photos).

    A layer can hold layout that generalises between photos like its training photos and not to test photos of
    another kind; then no decoder trained on those photos beats the mean colour through spatial detail.
    """
    from .decoders import FeatureStandardise, cross_validated_penalty, squared_error

    channels, grid = features.shape[1], features.shape[2]
    standardise = FeatureStandardise(channels)
    standardise.fit(features)

    def sums(feats, pixels):
        """(X^T X, X^T y, y^T y) over the images' cells, X the cells' features, y their colours, both less the
        image's mean."""
        x = standardise(feats).double()
        x = (x - x.mean(dim=(2, 3), keepdim=True)).flatten(2).transpose(1, 2).reshape(-1, channels)
        y = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(pixels).permute(0, 3, 1, 2).double() / 255, grid)
        y = (y - y.mean(dim=(2, 3), keepdim=True)).flatten(2).transpose(1, 2).reshape(-1, 3)
        return x.T @ x, x.T @ y, (y * y).sum()

    stats = {}  # per fold of photos, summed chunk by chunk
    for fold in groups.unique().tolist():
        index = (groups == fold).nonzero().flatten().numpy()
        parts = [sums(features[index[s : s + 64]], images[index[s : s + 64]]) for s in range(0, len(index), 64)]
        stats[fold] = tuple(sum(part) for part in zip(*parts))
    eye = torch.eye(channels, dtype=torch.float64)

    def solve(gram, cross, lam):
        return torch.linalg.solve(gram + lam * torch.trace(gram) / channels * eye, cross)

    lam, errors = cross_validated_penalty(stats, solve, lambdas)
    weights = solve(sum(g for g, _, _ in stats.values()), sum(c for _, c, _ in stats.values()), lam)
    test_sums = sums(test_features, test_images)
    return {"layout_grid": grid, "layout_penalty": lam,
            "layout_train_r2": 1 - errors[lam] / float(sum(t for _, _, t in stats.values())),
            "layout_test_r2": 1 - squared_error(weights, *test_sums) / float(test_sums[2])}


# The offline targets: every layer beats the mean-colour baseline; these three also the thumbnail of their grid.
THUMBNAIL_TARGETS = (("resnet34", "layer1"), ("vgg16", "block2"), ("vit_base_patch16_224", "block0"))
# Colour-jittered copies where the flipped photos alone teach too few colours: random ResNet34 layer3 scored
# 16.5 dB without and 17.9 with 8 (mean-colour baseline 17.87), layer4 15.2 and 17.2.
OFFLINE_COLOUR_COPIES = {("resnet34", "layer3"): 8, ("resnet34", "layer4"): 8}


def closed_form_paths(decoder) -> str:
    """What gradient steps did to a resshuffle decoder's closed-form colour and linear paths: "fixed" (they stay as
    fitted), or "none" where the grid is too fine for a closed-form start."""
    if not getattr(decoder, "closed_form_start", False):
        return "none"
    return "trained" if decoder.linear.conv.weight.requires_grad else "fixed"


def row_closed_form_paths(row: dict) -> str:
    """A quality row's closed-form paths; rows measured before the paths were fixed trained them along at coarse
    grids (28 x 28 and below)."""
    if "closed_form_paths" in row:
        return row["closed_form_paths"]
    return "trained" if check_layer(row["arch"], row["layer"])[1] <= 28 else "none"


def offline_table(rows: list[dict]) -> dict:
    """Decoder vs both baselines per layer, the target each layer has to meet and whether it does."""
    table = []
    for row in rows:
        key = (row["arch"], row["layer"])
        targets = ["mean_colour"] + (["thumbnail"] if key in THUMBNAIL_TARGETS else [])
        margins = {t: row["psnr_mean"] - row[f"baseline_{t}_psnr"] for t in targets}
        table.append({
            "arch": row["arch"], "layer": row["layer"], "psnr": row["psnr_mean"], "psnr_std": row["psnr_std"],
            "ssim": row["ssim_mean"], "mean_colour_psnr": row["baseline_mean_colour_psnr"],
            "thumbnail_psnr": row["baseline_thumbnail_psnr"], "colour_copies": row["colour_copies"],
            "feedback": row.get("feedback", 0),  # rows measured before the feedback stages existed had none
            "match_steps": row.get("match_steps", 0),  # and before feature matching existed, none of that
            "decoder_psnr": row.get("decoder_psnr_mean", row["psnr_mean"]),  # the decoder's own, before matching
            "closed_form_paths": row_closed_form_paths(row),
            "epochs": row["epochs"], "seconds": row["seconds"], "targets": targets,
            "margin_db": margins, "met": all(m > 0 for m in margins.values()),
            # 95% interval of each margin over the test photos (`lib.stats`), where the row holds one
            "margin_interval": {t: [row[f"psnr_minus_{t}_ci_low"], row[f"psnr_minus_{t}_ci_high"]] for t in targets}
            if all(f"psnr_minus_{t}_ci_low" in row for t in targets) else None,
            "test_sources": row.get("test_sources"),
            "psnr_interval": [row["psnr_ci_low"], row["psnr_ci_high"]] if "psnr_ci_low" in row else None,
            # distance to the original in the layer's features (rows measured before this control: none)
            "feature_error": {kind: row[key] for kind, key in (("decoder", "feature_error"),
                                                               ("thumbnail", "baseline_thumbnail_feature_error"),
                                                               ("mean_colour", "baseline_mean_colour_feature_error"))
                              if key in row} or None,
            "git_commit": row.get("provenance", {}).get("git_commit", "not recorded"),
        })
    return {"rows": table, "met": sum(r["met"] for r in table), "layers": len(table)}


def targets_label(targets: list[str]) -> str:
    """What a row of the offline table is held to, as written in table.md and the report: "mean colour + thumbnail"."""
    return " + ".join(targets).replace("_", " ")


def margins_label(margins: dict, intervals: dict | None = None) -> str:
    """A row's margin over each of its targets in dB, in target order, with its 95% interval where known:
    "+9.13 [+6.20, +11.40] / -1.39 [-3.10, +0.20]"."""
    if not isinstance(intervals, dict):  # None, or NaN where pandas filled a row without them
        return " / ".join(f"{m:+.2f}" for m in margins.values())
    return " / ".join(interval_label(m, *intervals[t]) for t, m in margins.items())


def feature_errors_label(errors: dict | None) -> str:
    """A row's feature errors, decoder / thumbnail / mean colour: "0.144 / 0.164 / 0.378" ("—" if not measured)."""
    if not isinstance(errors, dict) or not errors:  # None, or NaN where pandas filled a row without them
        return "—"
    return " / ".join(f"{errors[k]:.3f}" for k in ("decoder", "thumbnail", "mean_colour"))


def margins_of(result: dict) -> tuple[dict, dict]:
    """A quality result's margins over the mean colour and the thumbnail, and their 95% intervals."""
    kinds = ("mean_colour", "thumbnail")
    return ({t: result[f"psnr_minus_{t}"] for t in kinds},
            {t: [result[f"psnr_minus_{t}_ci_low"], result[f"psnr_minus_{t}_ci_high"]] for t in kinds})


def matching_label(row: dict) -> str:
    """A row's feature-matching steps and the decoder's own PSNR before them: "100 (27.45)"; "0" where none ran."""
    steps = int(row.get("match_steps", 0))
    return f"{steps} ({row['decoder_psnr']:.2f})" if steps else "0"


def offline_markdown(table: dict) -> str:
    lines = ["| arch | layer | PSNR | mean colour | thumbnail | target | margin (dB) [95% interval] | met "
             "| feature error: decoder / thumbnail / mean colour | copies | closed-form paths | feedback "
             "| matching (decoder alone) | epochs | commit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table["rows"]:
        target, margin = targets_label(r["targets"]), margins_label(r["margin_db"], r.get("margin_interval"))
        lines.append(f"| {r['arch']} | {r['layer']} | {r['psnr']:.2f} ± {r['psnr_std']:.2f} | {r['mean_colour_psnr']:.2f} "
                     f"| {r['thumbnail_psnr']:.2f} | {target} | {margin} | {'yes' if r['met'] else 'no'} "
                     f"| {feature_errors_label(r.get('feature_error'))} "
                     f"| {r['colour_copies']} | {r.get('closed_form_paths', '—')} | {r.get('feedback', 0)} "
                     f"| {matching_label(r)} | {r['epochs']} "
                     f"| {r['git_commit'][:10]} |")
    lines.append(f"\n{table['met']} of {table['layers']} layers measured meet their targets.")
    if table.get("missing"):
        lines.append(f"Not measured at these settings: {', '.join(table['missing'])}.")
    return "\n".join(lines) + "\n"


def with_intervals(row: dict, test_dir) -> dict:
    """A quality row measured before its JSON held intervals, with them: both baselines rescored per image on the
    test images (deterministic) and paired with the row's stored per-image PSNR. Nothing is retrained."""
    from .metrics import Pixels, mean_colour_baseline, psnr, thumbnail_baseline

    names, images = load_folder(test_dir)
    if set(names) != set(row["per_image_psnr"]):
        raise BenchError(f"{row['arch']} {row['layer']}: its per-image PSNRs are for other test images than "
                         f"'{test_dir}'; delete its JSON to rerun it.")
    target = Pixels.from_uint8(images)
    grid = check_layer(row["arch"], row["layer"])[1]
    mean_colour, thumbnail = psnr(mean_colour_baseline(target), target), psnr(thumbnail_baseline(target, grid), target)
    ours = np.array([row["per_image_psnr"][n] for n in names])
    return dict(row, **paired_intervals(ours, mean_colour, thumbnail, image_sources(test_dir, names)),
                per_image_baseline_mean_colour_psnr=dict(zip(names, map(float, mean_colour))),
                per_image_baseline_thumbnail_psnr=dict(zip(names, map(float, thumbnail))))


def offline(out_dir: Path, train_dir, test_dir, minutes: float, layers=None, run=None) -> dict:
    """`quality` with random weights on every layer (or only `layers`, "arch/layer" names) whose JSON in `out_dir`
    does not already hold these settings, each written as soon as it is done; then table.json and table.md from
    every layer measured at these settings (the others are listed as missing), and table.png, their plot."""
    run = run or quality
    everything = all_layers()
    selected = everything
    if layers:
        selected = [tuple(name.split("/", 1)) for name in layers]
        unknown = ["/".join(pair) for pair in selected if pair not in everything]
        if unknown:
            raise BenchError(f"unknown layer(s) {', '.join(unknown)}: name them arch/layer, e.g. resnet34/layer1.")
    settings = {"weights": "random", "minutes": minutes, "train_images": len(image_files(train_dir)),
                "test_images": len(image_files(test_dir))}
    out_dir = Path(out_dir)
    rows, missing = [], []
    for arch, layer in everything:
        path = out_dir / f"{arch}-{layer}.json"
        copies = OFFLINE_COLOUR_COPIES.get((arch, layer), 0)
        match = matching_steps(check_layer(arch, layer)[1], MATCH_STEPS)
        row = json.loads(path.read_text()) if path.exists() else {}
        # rows measured before feature matching existed ran none; a matched row holds the correction's levels
        kept = bool(row) and row.get("match_steps", 0) == match and row.get("match_levels", []) == levels_record(match) and all(
            row.get(k) == v for k, v in dict(settings, colour_copies=copies).items())
        if kept and (arch, layer) in selected:
            print(f"{arch} {layer}: kept (same settings; delete {path} to rerun)")
        elif (arch, layer) in selected:
            row = run(arch, layer, train_dir, test_dir, "random", minutes, colour_copies=copies)
            row["provenance"] = record()
            datamod.atomic_write_bytes(path, (json.dumps(row, indent=2) + "\n").encode())
            print(f"{arch} {layer}: {row['psnr_mean']:.2f} dB (mean colour {row['baseline_mean_colour_psnr']:.2f}, "
                  f"thumbnail {row['baseline_thumbnail_psnr']:.2f}) -> {path}")
            kept = True
        if kept:
            if "psnr_minus_mean_colour_ci_low" not in row and "per_image_psnr" in row:  # measured before the
                # intervals: add them from its stored per-image scores
                row = with_intervals(row, test_dir)
                datamod.atomic_write_bytes(path, (json.dumps(row, indent=2) + "\n").encode())
            rows.append(row)
        else:
            missing.append(f"{arch}/{layer}")
    table = dict(offline_table(rows), missing=missing, settings=settings)
    datamod.atomic_write_bytes(out_dir / "table.json", (json.dumps(table, indent=2) + "\n").encode())
    datamod.atomic_write_bytes(out_dir / "table.md", offline_markdown(table).encode())
    if rows:
        from .figures import offline_benchmark

        offline_benchmark(table, out_dir / "table.png")
    return table


def export_demo(out: Path) -> dict:
    """The demo's split (by source photo) as image folders: out/train (train + val views) and out/test."""
    from . import config
    from PIL import Image

    settings = config.resolve("demo")
    entries = datamod.make_split(settings["data"], settings["seed"])
    counts = {"train": 0, "test": 0}
    sources = {"train": [], "test": []}
    for entry in entries:
        split = "test" if entry.split == "test" else "train"
        target = Path(out) / split / f"{entry.image}.png"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".tmp.png")  # an interrupted export leaves no image that looks whole
            Image.fromarray(datamod.load_view(entry, settings["data"]["resize"])).save(partial)
            partial.replace(target)
        counts[split] += 1
        sources[split].append(f"{target.name},{entry.source}\n")
    for split, lines in sources.items():
        datamod.atomic_write_bytes(Path(out) / split / SOURCES_FILE, ("image,source\n" + "".join(lines)).encode())
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)  # what quality and colour both take
    for name in ("--arch", "--layer", "--test-dir", "--out"):
        common.add_argument(name, required=True)
    common.add_argument("--weights", default="imagenet")
    q = sub.add_parser("quality", parents=[common])
    q.add_argument("--train-dir", help="training images (or --train-on-test-copies)")
    q.add_argument("--train-on-test-copies", type=int, default=0,
                   help="in-domain control: train on this many colour-jittered copies of each test image instead")
    q.add_argument("--minutes", type=float, default=10.0)
    q.add_argument("--width", type=int, default=256, help="decoder channels up to 14x14")
    q.add_argument("--batch-size", type=int, default=8, help="images per decoder update")
    q.add_argument("--colour-copies", type=int, default=0, help="colour-jittered copies of each training image")
    q.add_argument("--feedback", type=int, default=FEEDBACK_STAGES, help="feedback stages after the base decoder")
    q.add_argument("--match", type=int, default=MATCH_STEPS,
                   help="test-time feature-matching steps (56x56 grids; 0: none)")
    c = sub.add_parser("colour", parents=[common])
    c.add_argument("--train-dir", required=True)
    c.add_argument("--copies", type=int, default=8, help="colour-jittered copies of each training image")
    c.add_argument("--indomain-copies", type=int, default=8,
                   help="recoloured copies of each test image for the in-domain readout (0: skip it)")
    o = sub.add_parser("offline")
    for name in ("--out-dir", "--train-dir", "--test-dir"):
        o.add_argument(name, required=True)
    o.add_argument("--minutes", type=float, default=10.0)
    o.add_argument("--layers", nargs="*", help="arch/layer names (default: all 14)")
    e = sub.add_parser("export-demo")
    e.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "export-demo":
            counts = export_demo(Path(args.out))
            print(f"wrote {counts['train']} train and {counts['test']} test views under {args.out}")
            return 0
        if args.command == "offline":
            table = offline(Path(args.out_dir), args.train_dir, args.test_dir, args.minutes, args.layers)
            print(offline_markdown(table), end="")
            return 0
        if args.command == "colour":
            result = colour(args.arch, args.layer, args.train_dir, args.test_dir, args.weights, args.copies,
                            indomain_copies=args.indomain_copies)
        else:
            result = quality(args.arch, args.layer, args.train_dir, args.test_dir, args.weights, args.minutes, args.width,
                             args.batch_size, colour_copies=args.colour_copies, feedback=args.feedback, match=args.match,
                             train_on_test_copies=args.train_on_test_copies)
    except (BenchError, datamod.DataError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result["provenance"] = record()
    datamod.atomic_write_bytes(Path(args.out), (json.dumps(result, indent=2) + "\n").encode())
    if args.command == "colour":
        with_copies = (f"; with {result['copies']} jittered copies {result['copies_psnr']:.2f} dB "
                       f"(bound {result['copies_psnr_bound']:.2f})" if result["copies"] else "")
        indomain = (f"; fitted on {result['indomain_copies']} recoloured copies of the test images themselves "
                    f"{result['indomain_psnr']:.2f} dB" if "indomain_psnr" in result else "")
        print(
            f"{result['arch']} {result['layer']} ({result['weights']} weights): predicted mean colour from pooled "
            f"features {result['flips_psnr']:.2f} dB (bound {result['flips_psnr_bound']:.2f}){with_copies}{indomain} | "
            f"mean-colour baseline {result['baseline_mean_colour_psnr']:.2f} dB | layout from the {result['layout_grid']}x"
            f"{result['layout_grid']} cells: R^2 {result['layout_train_r2']:.2f} across training photos, "
            f"{result['layout_test_r2']:.2f} on the test images -> {args.out}"
        )
        return 0
    trained_on = (f" (in-domain control: {result['train_on_test_copies']} recoloured copies of each test image)"
                  if result["train_on_test_copies"] else "")
    print(
        f"{result['arch']} {result['layer']} ({result['weights']} weights): PSNR {result['psnr_mean']:.2f} ± "
        f"{result['psnr_std']:.2f} dB, SSIM {result['ssim_mean']:.3f} | mean colour "
        f"{result['baseline_mean_colour_psnr']:.2f} dB, thumbnail {result['baseline_thumbnail_psnr']:.2f} dB | "
        f"margins {margins_label(*margins_of(result))} (95% intervals over {result['test_sources']} test photos) | "
        f"{result['train_images']} train{trained_on} / {result['test_images']} test images, {result['epochs']} epochs "
        f"in {result['seconds']:.0f}s ({result['fit_seconds']:.0f}s closed-form start), "
        f"{result['colour_copies']} colour copies, {result['feedback']} feedback stages, "
        f"{result['match_steps']} feature-matching steps ({result['decoder_psnr_mean']:.2f} dB before, "
        f"{result['match_seconds']:.0f}s) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
