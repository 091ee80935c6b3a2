"""quality: the default decoder trained on any folder of images and scored on another, next to the mean-colour and
thumbnail baselines. It trains through the study's loop (`lib.training.fit_decoder`), scores through its evaluation
(`lib.evaluation.evaluate_decoder`) and writes its record (`lib.evaluation.result_record`), plus the benchmark's
own fields: the budget, 95% intervals over the test photos and every image's scores.

    python -m lib.bench.quality --arch resnet34 --layer layer1 --train-dir DIR --test-dir DIR \\
        --weights imagenet|random (--minutes 10 | --epochs 5) --out result.json
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .. import data as datamod
from ..stats import margins_label
from . import run_cli
from .folders import BenchError, check_encoder, image_sources, images_and_encoder

# Feedback stages the default decoder trains after its base decoder (each gets an equal share of a wall-clock
# budget, or the same epochs as the base decoder).
FEEDBACK_STAGES = 2
# Test-time feature-matching steps asked for (`matching.match_features`; they run only at 56x56 grids).
MATCH_STEPS = 300


def per_image_record(per_image) -> dict:
    """An evaluation's per-image table as {column: {image name: value}}, NaN (e.g. LPIPS not computed) as null."""
    table = per_image.set_index("image")
    return {column: {str(name): (None if np.isnan(value) else float(value)) for name, value in table[column].items()}
            for column in table.columns}


def quality(arch: str, layer: str, train_dir, test_dir, weights: str, minutes: float | None = None, width: int = 256,
            batch_size: int = 8, lr: float = 2e-3, seed: int = 0, colour_copies: int = 0, feedback: int = FEEDBACK_STAGES,
            match: int = MATCH_STEPS, progress: bool = True, train_on_test_copies: int = 0,
            epochs: int | None = None, views: int = 1) -> dict:
    """Train the default decoder (flips as augmentation, encoded once) and score it; returns its record.

    Budget: `minutes` of wall clock (shared equally by the base decoder, its closed-form start included, and each
    feedback stage), or `epochs` for the base decoder and for each feedback stage (deterministic on CPU); exactly one.
    `colour_copies` adds that many colour-jittered copies of every training image and its flip (`colour_jitter`),
    encoded once with them: a few training photos cover few colours, and a decoder only learns how the layer
    encodes the colours it sees. `views` cuts that many views of each training photo, as the study cuts its photos
    (the centred square, then closer crops; `data.photo_views`): more distinct content for deep layers, whose
    decoders overfit a few hundred images. Test photos are always scored on their one centre crop. `match`
    feature-matching steps then correct each test reconstruction at 56x56 grids
    (`matching.match_features`): test-time work outside the training budget, timed as `match_seconds`, with the
    decoder's own scores kept as `decoder_psnr_mean` / `decoder_ssim_mean`.

    `train_on_test_copies` k (with `train_dir` None) trains instead on k colour-jittered copies of each test image,
    the originals never seen: an in-domain control that asks whether a layer holds what the test images need, when
    the training photos are like them. Not a result: its score is labelled by `train_on_test_copies` in the JSON.
    """
    from ..encoders import encode_images, layer_encoder
    from ..evaluation import evaluate_decoder, result_record
    from ..stats import baseline_comparisons
    from ..training import contiguous_groups, fit_decoder

    check_encoder(arch, layer, weights)
    if (minutes is None) == (epochs is None):
        raise BenchError("give either MINUTES (a wall-clock budget) or EPOCHS (an epoch budget), not both or neither.")
    if minutes is not None and minutes <= 0:
        raise BenchError(f"MINUTES must be positive, got {minutes}.")
    if epochs is not None and epochs < 1:
        raise BenchError(f"EPOCHS must be at least 1, got {epochs}.")
    if batch_size < 2:
        raise BenchError(f"BATCH_SIZE must be at least 2 (the decoder has BatchNorm), got {batch_size}.")
    if colour_copies < 0:
        raise BenchError(f"COLOUR_COPIES must be 0 or more, got {colour_copies}.")
    if feedback < 0:
        raise BenchError(f"FEEDBACK must be 0 or more, got {feedback}.")
    if match < 0:
        raise BenchError(f"MATCH must be 0 or more, got {match}.")
    if views < 1:
        raise BenchError(f"VIEWS must be at least 1, got {views}.")
    if train_on_test_copies < 0:
        raise BenchError(f"TRAIN_ON_TEST_COPIES must be 0 or more, got {train_on_test_copies}.")
    if bool(train_on_test_copies) == (train_dir is not None):
        raise BenchError("give either TRAIN_DIR or TRAIN_ON_TEST_COPIES (the in-domain control trains on copies of "
                         "the test images), not both or neither.")
    if train_on_test_copies and views > 1:
        raise BenchError("VIEWS cuts the training photos; the in-domain control (TRAIN_ON_TEST_COPIES) has none.")
    started = time.perf_counter()
    images, test_names, test_images, extractor = images_and_encoder(arch, layer, weights, train_dir, test_dir, seed,
                                                                    train_on_test_copies, views)
    photos = len(images) // (2 * views)
    # cross-validation folds by source image: an image's views, flip and colour copies (and in the in-domain
    # control, every copy of one test image) share its fold
    groups = (contiguous_groups(len(test_images)).repeat(train_on_test_copies) if train_on_test_copies
              else contiguous_groups(photos).repeat_interleave(views))
    rng = np.random.default_rng(seed)
    images = np.concatenate([images, datamod.colour_copies(images, colour_copies, rng)])
    features = encode_images(extractor, layer, images)
    test_features = encode_images(extractor, layer, test_images)
    encode_seconds = time.perf_counter() - started

    settings = {"arch": arch, "layer": layer, "decoder": "resshuffle", "width": width, "batch_size": batch_size,
                "lr": lr, "weight_decay": 1e-4, "seed": seed, "device": "auto", "feedback": feedback,
                "schedule": "anneal", "checkpoint": "last", "perceptual_weight": 0.0, "colour_copies": colour_copies,
                "epochs": epochs, "feedback_epochs": epochs}
    fit = fit_decoder(settings, features, images, seconds=None if minutes is None else minutes * 60,
                      encode=layer_encoder(extractor, layer), groups=groups.repeat(2 * (colour_copies + 1)),
                      progress=progress)
    evaluation = evaluate_decoder(fit.decoder, extractor, layer, test_features, test_images, test_names,
                                  match_steps=match, device=settings["device"], progress=progress)
    info = {**fit.info, "train_images": photos}  # before views, flips and colour copies
    encoder = {"weights": extractor.weights.kind, "weights_detail": extractor.weights.detail,
               "encode_seconds": encode_seconds, "normalisation": extractor.normalisation}
    return result_record(
        arch, layer, settings, info, encoder, evaluation,
        minutes=minutes, match_requested=match, views=views, train_on_test_copies=train_on_test_copies,
        # 95% intervals over the test photos (sources.csv), paired by image
        **baseline_comparisons(evaluation.per_image, image_sources(test_dir, test_names)),
        per_image=per_image_record(evaluation.per_image),
    )


def summary_line(result: dict, out) -> str:
    """The one line `main` prints for a record."""
    trained_on = (f" (in-domain control: {result['train_on_test_copies']} recoloured copies of each test image)"
                  if result["train_on_test_copies"] else "")
    budget = f"{result['minutes']:g} min budget" if result["minutes"] is not None else "epoch budget"
    views = f" ({result['views']} views each)" if result.get("views", 1) > 1 else ""
    return (
        f"{result['arch']} {result['layer']} ({result['weights']} weights): PSNR {result['psnr_mean']:.2f} ± "
        f"{result['psnr_std']:.2f} dB, SSIM {result['ssim_mean']:.3f} | mean colour "
        f"{result['baseline_mean_colour_psnr']:.2f} dB, thumbnail {result['baseline_thumbnail_psnr']:.2f} dB | "
        f"margins {margins_label(result, ['mean_colour', 'thumbnail'])} (95% intervals over {result['test_sources']} "
        f"test photos) | {result['train_images']} train{trained_on}{views} / "
        f"{result['test_images']} test images, "
        f"{result['epochs']} epochs in {result['train_seconds']:.0f}s ({budget}; {result['fit_seconds']:.0f}s "
        f"closed-form start), {result['colour_copies']} colour copies, {result['feedback']} feedback stages, "
        f"{result['match_steps']} feature-matching steps ({result['decoder_psnr_mean']:.2f} dB before, "
        f"{result['match_seconds']:.0f}s) -> {out}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.bench.quality", description=__doc__.splitlines()[0])
    for name in ("--arch", "--layer", "--test-dir", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--weights", default="imagenet")
    parser.add_argument("--train-dir", help="training images (or --train-on-test-copies)")
    parser.add_argument("--train-on-test-copies", type=int, default=0,
                        help="in-domain control: train on this many colour-jittered copies of each test image instead")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="wall-clock training budget (default 10 without --epochs)")
    budget.add_argument("--epochs", type=int,
                        help="epoch budget instead: the base decoder and each feedback stage this many epochs")
    parser.add_argument("--width", type=int, default=256, help="decoder channels up to 14x14")
    parser.add_argument("--batch-size", type=int, default=8, help="images per decoder update")
    parser.add_argument("--colour-copies", type=int, default=0, help="colour-jittered copies of each training image")
    parser.add_argument("--views", type=int, default=1, help="views cut from each training photo (1: its centre crop)")
    parser.add_argument("--feedback", type=int, default=FEEDBACK_STAGES, help="feedback stages after the base decoder")
    parser.add_argument("--match", type=int, default=MATCH_STEPS,
                        help="test-time feature-matching steps (56x56 grids; 0: none)")
    args = parser.parse_args(argv)
    minutes = 10.0 if args.minutes is None and args.epochs is None else args.minutes
    return run_cli(lambda: quality(args.arch, args.layer, args.train_dir, args.test_dir, args.weights, minutes,
                                   args.width, args.batch_size, colour_copies=args.colour_copies,
                                   feedback=args.feedback, match=args.match,
                                   train_on_test_copies=args.train_on_test_copies, epochs=args.epochs, views=args.views),
                   args.out, summary_line)


if __name__ == "__main__":
    sys.exit(main())
