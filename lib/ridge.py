"""Ridge regression in closed form, from per-group sums: the helpers behind the decoders' closed-form start
(`decoders.ResShuffleDecoder.fit_linear_start`) and the colour readout (`fit_colour`).

Every fit works from the sums Z^T Z, Z^T Y and sum of Y^2 of each group of rows, so the data is read once and
leave-one-group-out cross-validation costs one solve per group and penalty, never a second pass over the data.
Z's first column is all ones: the unpenalised intercept. Torch only; nothing here knows about decoders.
"""
from __future__ import annotations

import torch

# Ridge penalties (times the row count) cross-validated by the decoder's closed-form start and the colour readout.
# They reach 100: the choice sat at the top of grids that ended lower, a cap on the fit rather than a choice, at Lite0
# ImageNet stages 3 and 4 for the start (0.1) and stage4 for the readout (1.0) (docs/method.md).
PENALTIES = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def cross_validated_penalty(stats: dict, fit, lambdas) -> tuple[float, dict]:
    """The ridge penalty with the lowest leave-one-group-out squared error, computed from per-group sums alone, so
    the data is read once. `stats` maps each group to (Z^T Z, Z^T Y, sum of Y^2) over its rows; `fit(gram, cross,
    lam)` returns the weight matrix. Returns (penalty, {penalty: held-out error}); with fewer than two groups, the
    middle penalty and no errors."""
    if len(stats) < 2:
        return lambdas[len(lambdas) // 2], {}
    total_gram = sum(gram for gram, _, _ in stats.values())
    total_cross = sum(cross for _, cross, _ in stats.values())
    errors = {lam: sum(squared_error(fit(total_gram - gram, total_cross - cross, lam), gram, cross, target_sq)
                       for gram, cross, target_sq in stats.values()) for lam in lambdas}
    return min(errors, key=errors.get), errors


def ridge_from_sums(gram: torch.Tensor, cross: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge regression from Z^T Z and Z^T Y, Z's first column all ones (the unpenalised intercept): the data is
    centred through the sums, and the penalty is `lam` times the row count. Returns (weight, intercept)."""
    count = gram[0, 0]
    mean_z, mean_y = gram[0, 1:] / count, cross[0] / count
    centred = gram[1:, 1:] - count * torch.outer(mean_z, mean_z)
    centred_cross = cross[1:] - count * torch.outer(mean_z, mean_y)
    centred.diagonal().add_(lam * count)
    factor, failed = torch.linalg.cholesky_ex(centred)
    if failed:  # fewer rows than columns: float32 sums can leave it a rounding error short of definite
        weight = torch.linalg.lstsq(centred, centred_cross).solution
    else:
        weight = torch.cholesky_solve(centred_cross, factor)
    return weight, mean_y - mean_z @ weight


def squared_error(weight: torch.Tensor, gram: torch.Tensor, cross: torch.Tensor, target_sq) -> float:
    """sum |Z W - Y|^2 over rows, from their sums Z^T Z, Z^T Y and sum of Y^2."""
    return float((weight * (gram @ weight)).sum() - 2 * (weight * cross).sum() + target_sq)


@torch.no_grad()
def fit_colour(pooled: torch.Tensor, mean_colours: torch.Tensor, groups: torch.Tensor, lambdas=PENALTIES):
    """The ridge regression of each image's mean colour (normalised space, N x 3) on its pooled features (N x C),
    each feature standardised with these images' statistics so that one penalty (times the image count) fits every
    layer, the penalty chosen by cross-validation over `groups` (images of one photo share a group, so no photo is
    scored by a model that saw it). Returns (weight C x 3, bias 3, penalty), the standardisation folded into them:
    colour = pooled @ weight + bias.

    A probe of what pooled features say about colour (`make bench-colour`): decoders themselves start from
    `ResShuffleDecoder.fit_linear_start`, which fits their colour path jointly with the linear one.
    """
    pooled = pooled.double().flatten(1)
    mean, std = pooled.mean(0), pooled.std(0, unbiased=False).clamp_min(1e-6)
    z = torch.cat([torch.ones(len(pooled), 1, dtype=torch.float64), (pooled - mean) / std], 1)  # intercept first
    y = mean_colours.double()
    stats = {fold: (z[groups == fold].T @ z[groups == fold], z[groups == fold].T @ y[groups == fold],
                    (y[groups == fold] ** 2).sum()) for fold in groups.unique().tolist()}

    def fit(gram, cross, lam):
        weight, bias = ridge_from_sums(gram, cross, lam)
        return torch.cat([bias[None], weight])

    best, _ = cross_validated_penalty(stats, fit, lambdas)
    full = fit(sum(g for g, _, _ in stats.values()), sum(c for _, c, _ in stats.values()), best)
    weight = full[1:] / std[:, None]
    return weight, full[0] - mean @ weight, best
