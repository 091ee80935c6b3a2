"""quality: a profile's decoder for one layer trained on any folder of images and scored on another, next to the
three baselines. It is the pipeline's computation on other images: the layer's settings are the profile's, resolved
as the study resolves them (`lib.config.resolve`; PROFILE=, default demo, and the study's knobs as overrides), the
encoder is built as the study builds it, features are kept as the encode step keeps them, training runs through
the study's loop (`lib.training.fit_decoder`) and scoring through its evaluation (`lib.evaluation.evaluate_decoder`),
and the record is the study's (`lib.evaluation.result_record`) plus the benchmark's own fields: the profile and
settings used, the budget, 95% intervals over the test photos and every image's scores.

    python -m lib.bench.quality --profile demo --arch efficientnet_lite0 --layer stage1 --train-dir DIR \\
        [--val-dir DIR] --test-dir DIR [--set EPOCHS=20 --set FEEDBACK=0 ...] [--minutes 10] --out result.json
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .. import data as datamod
from ..baselines import BASELINE_NAMES
from ..stats import margins_label
from . import run_cli
from .folders import BenchError, image_sources, load_folder

# The study's knobs a benchmark may override, by make variable: those that change how one layer trains or is scored.
OVERRIDES = {"EPOCHS": "epochs", "BATCH_SIZE": "batch_size", "DECODER": "decoder", "WIDTH": "width",
             "FEEDBACK": "feedback", "MATCH": "match_steps", "NORMALISATION": "normalisation"}


def per_image_record(per_image) -> dict:
    """An evaluation's per-image table as {column: {image name: value}}, NaN (e.g. LPIPS not computed) as null."""
    table = per_image.set_index("image")
    return {column: {str(name): (None if np.isnan(value) else float(value)) for name, value in table[column].items()}
            for column in table.columns}


def layer_settings(profile: str, arch: str, layer: str, overrides: dict | None = None,
                   weights: str | None = None) -> tuple[dict, dict, dict]:
    """(training settings, encoder, study) of `arch` `layer`'s main run as profile `profile` plans it, with
    `overrides` (setting -> value, as the study's knobs give them) and `weights` (imagenet | random | None: the
    profile's) applied: exactly what the study's train and evaluate steps would use."""
    from .. import config
    from ..plan import Plan

    if weights is not None and weights not in ("imagenet", "random"):
        raise BenchError(f"WEIGHTS must be imagenet or random, got '{weights}' (or leave it out: the profile's).")
    try:
        study = config.resolve(profile, {**(overrides or {}), "arch": [arch], "layers": [layer]}, any_layer=True)
    except config.ProfileError as error:
        raise BenchError(str(error)) from None
    plan = Plan(".", study)  # read as the study's steps read their plan.json
    encoder = {**plan.encoder(arch), **({"weights": weights} if weights else {})}
    return plan.layer(arch, layer), encoder, study


def encode_together(extractor, layer: str, parts: list[tuple[list[str], np.ndarray | None]]) -> list:
    """Each part's features (None for a part without images) as the encode step makes them: every named image of
    all parts in one pass, in name order, in the encode step's batches, kept as it keeps them (fp16 where it fits).
    An exported split's files are named by their place in the study's store (`folders.export_split`), so its images
    meet the encoder in the very batches they met it in the study: a CPU kernel may round a feature differently with
    another batch around it. Images without names (the in-domain control's copies) are encoded apart."""
    import torch

    from ..encoders import encode_images, storable

    named = sorted((name, k, i) for k, (names, _) in enumerate(parts) for i, name in enumerate(names))
    out = [None if images is None else [None] * len(images) for _, images in parts]
    if named:
        features = storable(encode_images(extractor, layer, np.stack([parts[k][1][i] for _, k, i in named])))
        for (_, k, i), value in zip(named, features):
            out[k][i] = value
    for k, (names, images) in enumerate(parts):
        if images is not None and not names:
            out[k] = list(storable(encode_images(extractor, layer, images)))
    return [None if part is None else torch.stack(part) for part in out]


def quality(profile: str, arch: str, layer: str, train_dir, test_dir, *, val_dir=None, overrides: dict | None = None,
            weights: str | None = None, minutes: float | None = None, train_on_test_copies: int = 0, views: int = 1,
            progress: bool = True) -> dict:
    """Train `arch` `layer`'s decoder as profile `profile` trains it (with `overrides`) on the images of `train_dir`,
    choose its checkpoint on `val_dir` (none: the last epoch, and no check against the start), score it on
    `test_dir`; returns its record.

    Budget: the profile's epochs (EPOCHS= overrides them), or `minutes` of wall clock instead, shared equally by the
    base decoder (closed-form start included) and each feedback stage on the anneal schedule: not deterministic, so
    not what the study runs. `views` cuts that many views of each training photo, as the study cuts its photos
    (`data.photo_views`); test and validation photos are scored on their one centre crop.

    `train_on_test_copies` k (with `train_dir` None) trains instead on k colour-jittered copies of each test image,
    the originals never seen: an in-domain control that asks whether a layer holds what the test images need, when
    the training photos are like them. Not a result: its score is labelled by `train_on_test_copies` in the JSON.
    """
    from ..encoders import layer_encoder, plan_extractor
    from ..evaluation import evaluate_decoder, result_record
    from ..data import training_mean_image
    from ..stats import baseline_comparisons
    from ..steps.evaluate import lpips_scorer
    from ..training import contiguous_groups, fit_decoder

    settings, encoder, study = layer_settings(profile, arch, layer, overrides, weights)
    if minutes is not None and minutes <= 0:
        raise BenchError(f"MINUTES must be positive, got {minutes}.")
    if views < 1:
        raise BenchError(f"VIEWS must be at least 1, got {views}.")
    if train_on_test_copies < 0:
        raise BenchError(f"TRAIN_ON_TEST_COPIES must be 0 or more, got {train_on_test_copies}.")
    if bool(train_on_test_copies) == (train_dir is not None):
        raise BenchError("give either TRAIN_DIR or TRAIN_ON_TEST_COPIES (the in-domain control trains on copies of "
                         "the test images), not both or neither.")
    if train_on_test_copies and views > 1:
        raise BenchError("VIEWS cuts the training photos; the in-domain control (TRAIN_ON_TEST_COPIES) has none.")
    if settings["augment"]:
        raise BenchError(f"profile '{study['profile']}' trains {arch} {layer} with augment: true (random crops encoded "
                         "on the fly); bench-quality trains on the folders' centre crops. Use a profile with "
                         "augment: false (demo, tiny).")
    if settings["batch_size"] < 2:
        raise BenchError(f"BATCH_SIZE must be at least 2 (the decoder has BatchNorm), got {settings['batch_size']}.")
    started = time.perf_counter()
    test_names, test_images = load_folder(test_dir)
    if train_on_test_copies:
        train_names = []
        images = datamod.colour_copies(test_images, train_on_test_copies, np.random.default_rng([settings["seed"], 1]))
        # every copy of one test image in one fold: the closed-form penalty is chosen on images it has not seen
        groups = contiguous_groups(len(test_images)).repeat(train_on_test_copies)
    else:
        train_names, images = load_folder(train_dir, views=views, seed=settings["seed"])
        train_names = [name for name in train_names for _ in range(views)]
        groups = None  # the study's folds: contiguous quarters of the training images, in folder order
    val_names, val_images = load_folder(val_dir) if val_dir is not None else ([], None)
    extractor = plan_extractor(encoder, [layer])
    train_x, val_x, test_x = encode_together(extractor, layer, [(train_names, images), (val_names, val_images),
                                                               (test_names, test_images)])
    encode_seconds = time.perf_counter() - started
    fit = fit_decoder(settings, train_x, images, val_x, val_images, seconds=None if minutes is None else minutes * 60,
                      encode=layer_encoder(extractor, layer), groups=groups, progress=progress)
    scorer, lpips_note = lpips_scorer(study["lpips"])
    evaluation = evaluate_decoder(fit.decoder, extractor, layer, test_x, test_images, test_names,
                                  mean_image=training_mean_image(images), match_steps=study["match_steps"],
                                  lpips=scorer, device=settings["device"], progress=progress)
    info = {**fit.info, "train_images": len(images) // views if not train_on_test_copies else len(images)}
    record = result_record(
        arch, layer, settings, info,
        {"weights": extractor.weights.kind, "weights_detail": extractor.weights.detail,
         "encode_seconds": encode_seconds, "normalisation": extractor.normalisation, "network": encoder["arch"]},
        evaluation, profile=study["profile"], match_requested=study["match_steps"],
        normalisation_policy=encoder["normalisation"], minutes=minutes, views=views,
        validation_images=0 if val_images is None else len(val_images), train_on_test_copies=train_on_test_copies,
        lpips_note=lpips_note,
        # 95% intervals over the test photos (sources.csv), paired by image
        **baseline_comparisons(evaluation.per_image, image_sources(test_dir, test_names)),
        per_image=per_image_record(evaluation.per_image),
    )
    record["settings"] = settings  # the layer's resolved settings, as the study's train step would use them
    return record


def summary_line(result: dict, out) -> str:
    """The one line `main` prints for a record."""
    trained_on = (f" (in-domain control: {result['train_on_test_copies']} recoloured copies of each test image)"
                  if result["train_on_test_copies"] else "")
    budget = (f"{result['minutes']:g} min wall-clock budget" if result["minutes"] is not None
              else f"{result['images_seen']:,} images seen")
    views = f" ({result['views']} views each)" if result.get("views", 1) > 1 else ""
    return (
        f"{result['arch']} {result['layer']} ({result['weights']} weights, profile {result['profile']}): PSNR "
        f"{result['psnr_mean']:.2f} ± {result['psnr_std']:.2f} dB, SSIM {result['ssim_mean']:.3f} | no information "
        f"{result['baseline_mean_image_psnr']:.2f} dB, mean colour {result['baseline_mean_colour_psnr']:.2f} dB, "
        f"thumbnail {result['baseline_thumbnail_psnr']:.2f} dB | margins "
        f"{margins_label(result, BASELINE_NAMES)} (95% intervals over "
        f"{result['test_sources']} test photos) | {result['train_images']} train{trained_on}{views} / "
        f"{result['validation_images']} validation / {result['test_images']} test images, {result['epochs']} epochs "
        f"in {result['train_seconds']:.0f}s ({budget}; {result['fit_seconds']:.0f}s closed-form start), "
        f"{result['feedback']} feedback stages, {result['match_steps']} feature-matching steps "
        f"({result['decoder_psnr_mean']:.2f} dB before, {result['match_seconds']:.0f}s) -> {out}"
    )


def parse_overrides(pairs: list[str]) -> dict:
    """--set NAME=value words (the study's make variables in OVERRIDES) -> settings, checked as the study checks
    them (`config.parse_overrides`): one clear error for a misspelt name or an ill-typed value."""
    from .. import config

    named = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals:
            raise BenchError(f"--set {pair}: give NAME=value, e.g. --set EPOCHS=20.")
        if name not in OVERRIDES:
            raise BenchError(f"{name}: not a setting bench-quality overrides. Valid: {', '.join(OVERRIDES)}.")
        named[name] = value
    try:
        return config.parse_overrides(named, ["bench-quality"])
    except (config.ProfileError, ValueError) as error:
        raise BenchError(str(error)) from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.bench.quality", description=__doc__.splitlines()[0])
    for name in ("--arch", "--layer", "--test-dir", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--profile", default="demo", help="whose settings train and score the layer (default demo)")
    parser.add_argument("--weights", choices=("imagenet", "random"), help="the encoder's weights (default: the profile's)")
    parser.add_argument("--train-dir", help="training images (or --train-on-test-copies)")
    parser.add_argument("--val-dir", help="validation images: the checkpoint is chosen on them (default: none)")
    parser.add_argument("--train-on-test-copies", type=int, default=0,
                        help="in-domain control: train on this many colour-jittered copies of each test image instead")
    parser.add_argument("--minutes", type=float, help="a wall-clock budget instead of the profile's epochs")
    parser.add_argument("--views", type=int, default=1, help="views cut from each training photo (1: its centre crop)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=value",
                        help=f"override a setting: {', '.join(OVERRIDES)}")
    args = parser.parse_args(argv)

    def compute():
        return quality(args.profile, args.arch, args.layer, args.train_dir, args.test_dir, val_dir=args.val_dir,
                       overrides=parse_overrides(args.set), weights=args.weights, minutes=args.minutes,
                       train_on_test_copies=args.train_on_test_copies, views=args.views)
    return run_cli(compute, args.out, summary_line)


if __name__ == "__main__":
    sys.exit(main())
