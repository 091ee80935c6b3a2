"""colour: how well a layer's pooled features predict each test image's mean colour (closed-form ridge, as the
default decoder's colour path), with and without colour-jittered copies of the training images, against the
mean-colour baseline (the best any single colour can score); and how much of each image's layout (its thumbnail at
the layer's grid, less its mean colour) the layer's cells tell, across the training photos and on the test photos;
and a closed-form linear read of the cells (as the default decoder's closed-form start) on the test
photos, beside the thumbnail of the grid:

    python -m lib.bench.colour --arch resnet34 --layer layer4 --train-dir DIR --test-dir DIR --weights random \\
        --copies 8 --out colour.json
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from .. import data as datamod
from . import run_cli
from .folders import BenchError, check_encoder, load_folder


def images_and_encoder(arch: str, layer: str, weights: str, train_dir, test_dir, seed: int):
    """(train images then their horizontal flips, test names, test images, extractor): both orientations of each
    training photo are encoded once, so the readouts see twice the photos' layouts."""
    from ..encoders import build_extractor

    test_names, test_images = load_folder(test_dir)
    _, train_images = load_folder(train_dir)
    images = np.concatenate([train_images, train_images[:, :, ::-1]])
    return images, test_names, test_images, build_extractor(arch, [layer], weights, seed)


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
    from ..encoders import encode_images
    from ..metrics import Pixels, mean_colour_baseline, psnr
    from ..ridge import PENALTIES, fit_colour
    from ..training import contiguous_groups, mean_colours

    check_encoder(arch, layer, weights)
    for name, count in (("COPIES", copies), ("INDOMAIN_COPIES", indomain_copies)):
        if count < 0:
            raise BenchError(f"{name} must be 0 or more, got {count}.")
    started = time.perf_counter()
    images, _, test_images, extractor = images_and_encoder(arch, layer, weights, train_dir, test_dir, seed)
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
    test_features = full_test_features.mean(dim=(2, 3), keepdim=True)
    target = Pixels.from_uint8(test_images)
    size = test_images.shape[1]

    def fitted_psnr(count: int, fit_groups: torch.Tensor, choices, fit_features=features, fit_images=training_set):
        weight, bias, lam = fit_colour(fit_features[:count], mean_colours(fit_images[:count]), fit_groups[:count],
                                       lambdas=choices)
        colour = (test_features.flatten(1).double() @ weight + bias).float()
        predicted = colour[:, :, None, None].expand(-1, -1, size, size)
        return float(psnr(Pixels.from_normalised(predicted), target).mean()), lam

    result = {"arch": arch, "layer": layer, "weights": extractor.weights.kind, "weights_detail": extractor.weights.detail,
              "train_images": len(images) // 2, "test_images": len(test_images), "copies": copies,
              "baseline_mean_colour_psnr": float(psnr(mean_colour_baseline(target), target).mean())}
    single_fold = torch.zeros(len(training_set), dtype=torch.long)
    for name, count in (("flips", len(images)), ("copies", len(training_set))):
        if name == "copies" and copies == 0:
            continue
        result[f"{name}_psnr"], result[f"{name}_penalty"] = fitted_psnr(count, groups.repeat(copies + 1),
                                                                        PENALTIES)
        # penalty picked on the test images: an optimistic bound, not a result
        result[f"{name}_psnr_bound"] = max(fitted_psnr(count, single_fold, (lam,))[0] for lam in PENALTIES)
    if indomain_copies:
        recoloured = datamod.colour_copies(test_images, indomain_copies, rng)
        # a test image's copies share a fold, so the penalty is chosen on images whose content the fit has not seen
        by_image = contiguous_groups(len(test_images)).repeat(indomain_copies)
        result["indomain_copies"] = indomain_copies
        result["indomain_psnr"], result["indomain_penalty"] = fitted_psnr(
            len(recoloured), by_image, PENALTIES, encode_images(extractor, layer, recoloured, pooled=True), recoloured)
    result.update(layout_readout(full_features, images, groups, full_test_features, test_images, layout_lambdas))
    result.update(linear_inverse(full_features, images, groups, full_test_features, test_images))
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
    from ..decoders import FeatureStandardise
    from ..ridge import cross_validated_penalty, squared_error

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


def linear_inverse(features: torch.Tensor, images: np.ndarray, groups: torch.Tensor, test_features: torch.Tensor,
                   test_images: np.ndarray) -> dict:
    """A closed-form linear read of the cells, the default decoder's start: the training images' mean image plus
    `ResShuffleDecoder.fit_linear_start` (each cell's pixel block from its feature neighbourhood, plus the image's
    colour from its pooled features, ridge, penalty cross-validated over `groups`), scored on the test images, with the
    thumbnail of the grid beside it. Where it falls far short of the thumbnail, a decoder must infer the missing
    detail and colour from content, which a few hundred training photos teach little of."""
    from ..decoders import ResShuffleDecoder
    from ..metrics import Pixels, psnr, thumbnail_baseline
    from ..training import fit_to_training_data

    channels, grid, size = features.shape[1], features.shape[2], images.shape[1]
    decoder = ResShuffleDecoder(channels, grid, width=16, out_size=size)
    fitted = fit_to_training_data(decoder, features, images, groups)  # as the train step, before choose_start
    with torch.no_grad():
        predicted = decoder.eval()(test_features)  # its deep path starts at zero: the start is the linear read
    target = Pixels.from_uint8(test_images)
    return {"linear_inverse_psnr": float(psnr(Pixels.from_normalised(predicted), target).mean()),
            "linear_inverse_penalty": fitted["penalty"], "linear_inverse_kernel": fitted["kernel"],
            "baseline_thumbnail_psnr": float(psnr(thumbnail_baseline(target, grid), target).mean())}


def summary_line(result: dict, out) -> str:
    """The one line `main` prints for a result."""
    with_copies = (f"; with {result['copies']} jittered copies {result['copies_psnr']:.2f} dB "
                   f"(bound {result['copies_psnr_bound']:.2f})" if result["copies"] else "")
    indomain = (f"; fitted on {result['indomain_copies']} recoloured copies of the test images themselves "
                f"{result['indomain_psnr']:.2f} dB" if "indomain_psnr" in result else "")
    return (
        f"{result['arch']} {result['layer']} ({result['weights']} weights): predicted mean colour from pooled "
        f"features {result['flips_psnr']:.2f} dB (bound {result['flips_psnr_bound']:.2f}){with_copies}{indomain} | "
        f"mean-colour baseline {result['baseline_mean_colour_psnr']:.2f} dB | layout from the {result['layout_grid']}x"
        f"{result['layout_grid']} cells: R^2 {result['layout_train_r2']:.2f} across training photos, "
        f"{result['layout_test_r2']:.2f} on the test images | linear inverse {result['linear_inverse_psnr']:.2f} dB "
        f"(thumbnail {result['baseline_thumbnail_psnr']:.2f}) -> {out}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.bench.colour", description=__doc__.splitlines()[0])
    for name in ("--arch", "--layer", "--train-dir", "--test-dir", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--weights", default="imagenet")
    parser.add_argument("--copies", type=int, default=8, help="colour-jittered copies of each training image")
    parser.add_argument("--indomain-copies", type=int, default=8,
                        help="recoloured copies of each test image for the in-domain readout (0: skip it)")
    args = parser.parse_args(argv)
    return run_cli(lambda: colour(args.arch, args.layer, args.train_dir, args.test_dir, args.weights, args.copies,
                                  indomain_copies=args.indomain_copies), args.out, summary_line)


if __name__ == "__main__":
    sys.exit(main())
