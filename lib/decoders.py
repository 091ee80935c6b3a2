"""Decoders from one layer's features (C x g x g) back to the 3 x 224 x 224 ImageNet-normalised image.

- `resshuffle` (default): the training images' mean image plus three paths reading the features, standardised per
  channel at 28x28 grids, as the encoder gives them at the others (`STANDARDISED_GRIDS`):
  - deep: at grids of 28x28 and coarser, residual conv blocks at the grid, x2 sub-pixel (PixelShuffle)
    stages up to 56x56, then one x4 sub-pixel step to RGB, so nothing runs above 56x56; channels `width` up
    to 14x14, halving per doubling beyond. At 56x56 and 112x112, a pointwise MLP at the grid straight to each
    cell's pixel block (cheaper per image than 3x3 convolutions at full width there, and it learnt more per
    CPU-second).
  - linear local inverse: each cell's 5x5 / 3x3 feature neighbourhood -> its pixel block (sub-pixel
    convolution). It learns quickly most of what fine grids hold, leaving the deep path only what is non-linear.
  - global colour: pooled features -> one colour per image.
  The colour and linear paths are fitted in closed form (`fit_linear_start`: ridge regressions on what the mean
  image leaves, cross-validated penalty, `lib/ridge.py`) before any gradient step and stay fixed; the deep path
  starts at zero and learns the rest.
- `simple`: the study's simple option: progressive transposed convolutions + BatchNorm + GELU.
- `attention`: the study's decoder: transformer blocks over the feature grid's tokens, then progressive
  transposed-convolution upsampling with residual blocks, BatchNorm and GELU.

Why the default decoder is built this way, and what each choice was measured to give: docs/method.md.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .ridge import PENALTIES, cross_validated_penalty, ridge_from_sums


# The default decoder standardises its features at these grids and reads them as the encoder gives them at the
# others. On EfficientNet-Lite0's ImageNet features (docs/method.md, "Learned features on natural photos" and
# "Mechanisms on learned features"), standardising helped only at 28x28 (0.22 dB on 50 natural test photos); it cost
# 0.40 and 0.33 dB at 112x112 and 56x56 and 0.70 at 14x14 on the demo's photos, and was within noise at 14x14 and
# 7x7 on the natural photos once the closed-form penalty grid reached 100.
STANDARDISED_GRIDS = (28,)


class FeatureStandardise(nn.Module):
    """Per-channel (x - mean) / std with statistics fixed from given features: how the default decoder reads its
    features at `STANDARDISED_GRIDS`, how a feedback stage reads its two feature maps (the residual shrinks
    as the reconstruction improves) and how test-time feature matching weighs channels. `pooled`: the statistics and
    the output are of each image's per-channel mean (the colour path's input): the variation between images' means,
    which carries their colour, can be far smaller than the variation between positions.
    """

    def __init__(self, channels: int, pooled: bool = False):
        super().__init__()
        self.pooled = pooled
        self.fitted = False  # set by `fit`; a loaded state's buffers hold their statistics without it
        self.register_buffer("mean", torch.zeros(1, channels, 1, 1))
        self.register_buffer("std", torch.ones(1, channels, 1, 1))

    @torch.no_grad()
    def fit(self, features: torch.Tensor, chunk: int = 64) -> None:
        """Per-channel mean and std over images and positions (pooled=False) or over the images' means. The sums are
        float64: var = E[x^2] - mean^2 cancels to nothing in float32 where a channel sits far from zero against its
        spread. A channel (numerically) constant over these features, spread under a millionth of the median
        channel's, takes the median spread: it holds nothing to learn from, and dividing by its ~0 spread would blow
        up any value it takes at test time (random VGG16 block4 and ResNet34 layer3/4 have channels dead on the
        demo's training views). Any other channel is standardised, however small: on the training features its
        values stay within sqrt(count) of zero."""
        total, total_sq, count = 0.0, 0.0, 0
        for start in range(0, len(features), chunk):
            x = features[start : start + chunk].double()
            if self.pooled:
                x = x.mean(dim=(2, 3), keepdim=True)
            total = total + x.sum(dim=(0, 2, 3))
            total_sq = total_sq + (x * x).sum(dim=(0, 2, 3))
            count += x.shape[0] * x.shape[2] * x.shape[3]
        mean = total / count
        std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
        typical = std.median()
        typical = typical if typical > 0 else std.max() if std.max() > 0 else torch.ones((), dtype=std.dtype)
        std = torch.where(std < 1e-6 * typical, typical, std)
        self.mean.copy_(mean.view_as(self.mean))
        self.std.copy_(std.view_as(self.std))
        self.fitted = True

    def forward(self, x):
        if self.pooled:
            x = x.float().mean(dim=(2, 3), keepdim=True)
        return (x.float() - self.mean) / self.std


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        nn.init.zeros_(self.body[-1].weight)  # start as identity: deep stacks train from step one

    def forward(self, x):
        return torch.nn.functional.gelu(x + self.body(x))


class SubPixelLinear(nn.Module):
    """Linear local inverse: a k x k neighbourhood of features -> the r x r pixel block of each
    grid cell (r = out/grid up to 4); coarser grids are bilinearly upsampled the rest of the way."""

    def __init__(self, channels: int, grid: int, out_size: int = 224, max_factor: int = 4):
        super().__init__()
        # At 7x7 a k x k -> 4x4-block map has more weights than the demo has training positions and
        # overfits within an epoch: there it is a per-cell colour (1x1), what a thumbnail holds.
        factor = min(out_size // grid, max_factor) if grid >= 14 else 1
        kernel = 5 if 28 <= grid <= 56 else 3 if grid >= 14 else 1  # 3 at 112x112: 3 cells already span 6 pixels
        self.out_size, self.factor = out_size, factor
        self.conv = nn.Conv2d(channels, 3 * factor * factor, kernel, padding=kernel // 2)
        self.shuffle = nn.PixelShuffle(factor)

    def forward(self, x):
        y = self.shuffle(self.conv(x))
        if y.shape[-1] != self.out_size:
            y = nn.functional.interpolate(y, size=(self.out_size, self.out_size), mode="bilinear", align_corners=False)
        return y


def width_at(resolution: int, width: int, min_width: int = 32) -> int:
    """Channels at a resolution: `width` up to 14x14, halving with each doubling beyond (compute stays flat)."""
    return max(min_width, min(width, width * 14 // resolution))


def _stages(grid: int, out_size: int) -> int:
    stages = math.log2(out_size / grid)
    if stages != int(stages) or stages < 1:
        raise ValueError(f"feature grid {grid} does not reach {out_size} by doubling.")
    return int(stages)


class ResShuffleDecoder(nn.Module):
    def __init__(self, channels: int, grid: int, width: int = 256, blocks: int = 2, out_size: int = 224, min_width: int = 16):
        super().__init__()
        stages = _stages(grid, out_size)
        if stages <= 2:
            # Fine grids (56x56, 112x112): a pointwise MLP at the grid straight to each cell's pixel block.
            # 3x3 convolutions at full width there cost several times more per image and learnt less per second.
            # `blocks` hidden pointwise layers: the depth knob here, as residual blocks are at coarse grids.
            factor, hidden = 1 << stages, max(32, min(width, width * 28 // grid))
            layers: list[nn.Module] = [nn.Conv2d(channels, hidden, 3, padding=1), nn.GELU()]
            for _ in range(blocks):
                layers += [nn.Conv2d(hidden, hidden, 1), nn.GELU()]
            layers += [nn.Conv2d(hidden, 3 * factor * factor, 1), nn.PixelShuffle(factor)]
        else:
            widths = [width_at(grid << k, width, min_width) for k in range(stages)]
            layers = [nn.Conv2d(channels, widths[0], 1), nn.BatchNorm2d(widths[0]), nn.GELU()]
            layers += [ResBlock(widths[0]) for _ in range(blocks)]
            for k in range(1, stages - 1):
                layers += [
                    nn.Conv2d(widths[k - 1], 4 * widths[k], 3, padding=1, bias=False),
                    nn.PixelShuffle(2),
                    nn.BatchNorm2d(widths[k]),
                    nn.GELU(),
                    ResBlock(widths[k]),
                ]
            # 56x56 -> 224 in one x4 sub-pixel step: a 112x112 stage would spend a large share of the compute on
            # detail the linear path already supplies.
            layers += [nn.Conv2d(widths[stages - 2], 3 * 16, 3, padding=1), nn.PixelShuffle(4)]
        self.body = nn.Sequential(*layers)
        self.linear = SubPixelLinear(channels, grid, out_size)
        # Global path: pooled features -> one colour per image, so the spatial paths only have to learn the detail.
        self.colour = nn.Conv2d(channels, 3, 1)
        # The training features' per-channel statistics: the input standardisation at `STANDARDISED_GRIDS`, and at
        # every grid how test-time feature matching weighs each channel's disagreement (`matching.match_features`).
        # Where the features are standardised, the colour path reads each image's pooled features standardised
        # between images (`pooled_statistics`).
        self.feature_statistics = FeatureStandardise(channels)
        self.standardise = grid in STANDARDISED_GRIDS
        if self.standardise:
            self.pooled_statistics = FeatureStandardise(channels, pooled=True)
        nn.init.zeros_(self.colour.weight), nn.init.zeros_(self.colour.bias)
        # The deep path starts at zero and the colour and linear paths are fitted in closed form (`fit_linear_start`)
        # to what the training images' mean image (`fit_mean_image`) leaves: the untrained decoder is the mean image
        # plus that linear inverse, kept only where it beats the mean image alone on validation
        # (`training.choose_start`), and the start checkpoint choice falls back to where training does not beat it. (EfficientNet-Lite0 ImageNet stage0, demo, 10 epochs:
        # 28.98 dB with the closed-form start, 26.81 learning those paths from zero; docs/method.md.)
        self.closed_form_start = True
        self.register_buffer("mean_image", torch.zeros(1, 3, out_size, out_size))
        nn.init.zeros_(self.body[-2].weight), nn.init.zeros_(self.body[-2].bias)
        nn.init.zeros_(self.linear.conv.weight), nn.init.zeros_(self.linear.conv.bias)

    @torch.no_grad()
    def fit_statistics(self, features: torch.Tensor) -> None:
        """Fix the per-channel statistics (`feature_statistics`, and where standardising `pooled_statistics`) from the
        training features: before the closed-form start, which reads the features through them."""
        self.feature_statistics.fit(features)
        if hasattr(self, "pooled_statistics"):
            self.pooled_statistics.fit(features)

    @torch.no_grad()
    def fit_mean_image(self, images) -> None:
        """Set the decoder's base output to the mean of the uint8 N x H x W x 3 training `images`."""
        from .data import imagenet_mean_std
        from .data import training_mean_image

        mean, std = imagenet_mean_std()
        self.mean_image.copy_((training_mean_image(images)[None] - mean) / std)

    @torch.no_grad()
    def fit_linear_start(self, features: torch.Tensor, images, groups: torch.Tensor,
                         lambdas=PENALTIES, max_dims: int = 2048, max_rows: int = 100_000,
                         chunk: int = 16, seed: int = 0) -> dict:
        """Set the colour and linear paths to closed-form ridge regressions, so the untrained decoder is a linear
        inverse of the features as its paths read them (`inputs`: standardised at 28x28, so `fit_statistics`
        comes first): (1) each grid cell's mean colour on its k x k neighbourhood of features and the image's pooled
        features, whose pooled part becomes the colour path; (2) each cell's r x r sub-block means (the linear
        path's outputs) on the neighbourhood, less that colour. `images`: the uint8 N x 224 x 224 x 3 targets. The
        penalty (times the row count) is chosen by leave-one-group-out error on the sub-block means, all from
        per-group sums, so the data is read once (`ridge.PENALTIES`).

        The neighbourhood is the linear path's kernel, or a smaller centred one (3x3, 1x1) when channels x k^2
        would exceed `max_dims` (VGG16 block4, 512 channels at 14x14: 1x1, as its 3x3 would be 4,608 wide).
        The cost is rows x dims^2: beyond `max_rows` grid cells a fixed random subset of cells enters the sums
        (ridge needs tens of rows per dimension, not hundreds). Returns the penalty, kernel, dimension and rows used.
        """
        from .data import normalise

        if self.standardise and not self.feature_statistics.fitted:
            raise RuntimeError("fit_linear_start reads the features through the decoder's standardisation at this grid: "
                               "call fit_statistics(features) first (training.fit_to_training_data does both).")
        conv, r, grid = self.linear.conv, self.linear.factor, features.shape[-1]
        channels, full_kernel = features.shape[1], conv.kernel_size[0]
        kernel = next(k for k in (full_kernel, 3, 1) if k <= full_kernel and channels * (k * k + 1) <= max_dims)
        local_dims = channels * kernel * kernel
        dims, outputs = 1 + local_dims + channels, 3 * r * r  # design columns: intercept, neighbourhood, pooled
        keep = min(1.0, max_rows / (len(features) * grid * grid))
        sampler = torch.Generator().manual_seed(seed)
        # Each design column less its training mean before the float32 products are summed: raw features can sit far
        # from zero against their spread, and float32 sums of them would lose the spread the fit needs. The model is
        # linear in the columns, so the intercept takes the shift back exactly (below).
        local_mean, pooled_mean = 0.0, 0.0
        for s in range(0, len(features), chunk):
            x, pooled = self.inputs(features[s : s + chunk])
            local_mean = local_mean + x.double().sum(dim=(0, 2, 3))
            pooled_mean = pooled_mean + pooled.double().sum(dim=(0, 2, 3))
        local_mean, pooled_mean = local_mean / (len(features) * grid * grid), pooled_mean / len(features)
        shift = torch.cat([torch.zeros(1, dtype=torch.float64), local_mean.repeat_interleave(kernel * kernel),
                           pooled_mean])
        shift32 = shift.float()
        stats, used = {}, 0
        for fold in groups.unique().tolist():
            gram = torch.zeros(dims, dims, dtype=torch.float64)
            cross = torch.zeros(dims, outputs, dtype=torch.float64)
            target_sq = torch.zeros((), dtype=torch.float64)
            rows = (groups == fold).nonzero().flatten()
            for start in range(0, len(rows), chunk):
                index = rows[start : start + chunk]
                x, pooled = self.inputs(features[index])
                local = nn.functional.unfold(x, kernel, padding=kernel // 2)  # n, C k^2, g^2
                pooled = pooled.flatten(1)[:, :, None].expand(-1, -1, grid * grid)
                ones = torch.ones(len(index), 1, grid * grid)
                z = torch.cat([ones, local, pooled], 1).transpose(1, 2).reshape(-1, dims) - shift32
                # what the mean image leaves: the decoder's output is mean image + these paths
                block_means = nn.functional.adaptive_avg_pool2d(normalise(images[index.numpy()]) - self.mean_image,
                                                                grid * r)
                y = nn.functional.pixel_unshuffle(block_means, r).flatten(2).transpose(1, 2).reshape(-1, outputs)
                if keep < 1.0:
                    chosen = torch.rand(len(z), generator=sampler) < keep
                    z, y = z[chosen], y[chosen]
                used += len(z)
                gram += (z.T @ z).double()
                cross += (z.T @ y).double()
                target_sq += (y.double() ** 2).sum()
            stats[fold] = (gram, cross, target_sq)
        # the cell mean of colour c is the mean of its r x r sub-block outputs c*r*r ... (c+1)*r*r - 1
        to_cell = torch.zeros(outputs, 3, dtype=torch.float64)
        to_cell[torch.arange(outputs), torch.arange(outputs) // (r * r)] = 1.0 / (r * r)
        local_rows, pooled_rows = slice(1, 1 + local_dims), slice(1 + local_dims, dims)

        def fit(gram, cross, lam):
            """Full weight matrix (dims x outputs) of colour path + linear path."""
            colour_w, colour_b = ridge_from_sums(gram, cross @ to_cell, lam)  # rows: neighbourhood, then pooled
            colour_full = torch.zeros(dims, outputs, dtype=torch.float64)
            colour_full[pooled_rows] = colour_w[local_dims:] @ to_cell.T * (r * r)
            colour_full[0] = colour_b @ to_cell.T * (r * r)
            residual = cross - gram @ colour_full  # the linear path fits what the colour path leaves
            columns = slice(0, 1 + local_dims)
            local_w, local_b = ridge_from_sums(gram[columns, columns], residual[columns], lam)
            full = colour_full.clone()
            full[local_rows] += local_w
            full[0] += local_b
            return full, colour_full

        best, _ = cross_validated_penalty(stats, lambda gram, cross, lam: fit(gram, cross, lam)[0], lambdas)
        weight, colour = fit(sum(g for g, _, _ in stats.values()), sum(c for _, c, _ in stats.values()), best)
        weight[0] -= shift @ weight  # on the features as they are: (z - shift) W = z W - shift W
        colour[0] -= shift @ colour
        self.colour.weight.copy_(colour[pooled_rows, :: r * r].T.reshape_as(self.colour.weight))
        self.colour.bias.copy_(colour[0, :: r * r])
        offset = (full_kernel - kernel) // 2
        conv.weight.zero_()
        centre = slice(offset, offset + kernel)
        conv.weight[:, :, centre, centre] = weight[local_rows].T.reshape(outputs, channels, kernel, kernel)
        conv.bias.copy_(weight[0] - colour[0])
        # The fitted paths stay as fitted: gradient steps then only add the deep path's non-linear part. Adam moves
        # every weight by about lr per step, far more than these ridge weights' scale: trained along, they left the
        # optimum and never came back.
        self.linear.requires_grad_(False)
        self.colour.requires_grad_(False)
        return {"penalty": best, "kernel": kernel, "dims": dims, "rows": used}

    def inputs(self, features):
        """What the paths read: (the feature map for the deep and linear paths, N x C x 1 x 1 pooled features for the
        colour path), standardised at `STANDARDISED_GRIDS`, as the encoder gives them at the others."""
        if self.standardise:
            return self.feature_statistics(features), self.pooled_statistics(features)
        x = features.float()
        return x, x.mean(dim=(2, 3), keepdim=True)

    def forward(self, features):
        x, pooled = self.inputs(features)
        return self.mean_image + self.body(x) + self.linear(x) + self.colour(pooled)


class FeedbackRefiner(nn.Module):
    """One feedback step: the layer's features f, what the frozen encoder makes of the current reconstruction v
    (the residual E(v) - f, in the layer's own features) and v itself -> v + a correction.

    The encoder is known, so the decoder can ask it where its reconstruction disagrees with the features it was
    given; the residual, not the extra network, carries most of what a stage adds. Works at 56x56 whatever the
    layer's grid: finer grids are folded into channels, coarser ones reduced to `hidden` channels at the grid and
    repeated; v enters as its 4x4 blocks.
    """

    def __init__(self, channels: int, grid: int, hidden: int = 128, work: int = 56, out_size: int = 224):
        super().__init__()
        self.features = FeatureStandardise(channels)
        self.residual = FeatureStandardise(channels)
        if grid >= work:
            fold = grid // work
            self.lift = nn.PixelUnshuffle(fold) if fold > 1 else nn.Identity()
            lifted = 2 * channels * fold * fold
        else:
            self.lift = nn.Sequential(nn.Conv2d(2 * channels, hidden, 1), nn.GELU(), nn.Upsample(scale_factor=work // grid))
            lifted = hidden
        self.block = out_size // work
        pixels = 3 * self.block * self.block
        self.body = nn.Sequential(
            nn.Conv2d(lifted + pixels, hidden, 3, padding=1), nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.GELU(),
            nn.Conv2d(hidden, hidden, 1), nn.GELU(),
            nn.Conv2d(hidden, pixels, 1), nn.PixelShuffle(self.block),
        )
        nn.init.zeros_(self.body[-2].weight), nn.init.zeros_(self.body[-2].bias)  # starts as the identity on v

    def forward(self, features, residual, image):
        lifted = self.lift(torch.cat([self.features(features), self.residual(residual)], 1))
        return image + self.body(torch.cat([lifted, nn.functional.pixel_unshuffle(image, self.block)], 1))


class FeedbackDecoder(nn.Module):
    """A decoder followed by feedback refiners: v = base(f), then v = refiner(f, E(v) - f, v) for each refiner.

    `encode` (normalised images -> the layer's features) is the frozen encoder; it is attached, not owned, so the
    state dict holds only the decoder's own weights. Refiners are trained one after another, each on what the
    ones before it left (`training.fit_feedback`).
    """

    def __init__(self, base: nn.Module, channels: int, grid: int, stages: int, hidden: int = 128):
        super().__init__()
        self.base = base
        self.refiners = nn.ModuleList(FeedbackRefiner(channels, grid, hidden) for _ in range(stages))
        self.encode = None

    def attach(self, encode) -> "FeedbackDecoder":
        self.encode = encode
        return self

    @torch.no_grad()
    def residual(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        if self.encode is None:
            raise RuntimeError("a feedback decoder needs its encoder: call attach(encode) first.")
        return self.encode(image).float() - features.float()

    def forward(self, features, stages: int | None = None):
        image = self.base(features)
        for refiner in self.refiners[:stages]:
            image = refiner(features, self.residual(features, image), image)
        return image


def _up_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU())


class SimpleDecoder(nn.Module):
    """The study's `simple` option: transposed-convolution x2 stages halving the channels."""

    def __init__(self, channels: int, grid: int, width: int = 256, out_size: int = 224):
        super().__init__()
        stages = _stages(grid, out_size)
        widths = [max(16, width >> k) for k in range(stages + 1)]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 1)]
        for k in range(stages):
            layers.append(_up_block(widths[k], widths[k + 1]))
        layers.append(nn.Conv2d(widths[-1], 3, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, features):
        return self.body(features.float())


class AttentionDecoder(nn.Module):
    """The study's decoder: 4 transformer blocks over the grid's tokens, then residual up-sampling.

    Attention runs at the feature grid, capped at 28x28 tokens (a strided conv first for finer grids);
    the study attended over all 12,544 tokens of VGG16 block1, which is what made it take hours.
    """

    def __init__(self, channels: int, grid: int, width: int = 256, depth: int = 4, heads: int = 4, out_size: int = 224):
        super().__init__()
        self.reduce = 1
        while grid // self.reduce > 28:
            self.reduce *= 2
        token_grid = grid // self.reduce
        self.embed = nn.Conv2d(channels, width, self.reduce, stride=self.reduce)
        self.position = nn.Parameter(torch.zeros(1, token_grid * token_grid, width))
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        stages = _stages(token_grid, out_size)
        widths = [max(16, width >> k) for k in range(stages + 1)]
        ups: list[nn.Module] = []
        for k in range(stages):
            ups += [_up_block(widths[k], widths[k + 1]), ResBlock(widths[k + 1])]
        ups.append(nn.Conv2d(widths[-1], 3, 3, padding=1))
        self.up = nn.Sequential(*ups)

    def forward(self, features):
        x = self.embed(features.float())
        n, c, h, w = x.shape
        tokens = self.transformer(x.flatten(2).transpose(1, 2) + self.position)
        return self.up(tokens.transpose(1, 2).reshape(n, c, h, w))


DEFAULT_DEPTH = {"resshuffle": 2, "attention": 4}  # residual blocks (or hidden layers) / transformer blocks


def build_decoder(name: str, channels: int, grid: int, width: int, depth: int | None = None) -> nn.Module:
    """A decoder by name; `depth` (None: the decoder's default) is resshuffle's residual blocks at the grid (its
    hidden pointwise layers at 56x56 and 112x112) or the attention decoder's transformer blocks."""
    if name == "resshuffle":
        return ResShuffleDecoder(channels, grid, width, blocks=depth or DEFAULT_DEPTH[name])
    if name == "simple":
        return SimpleDecoder(channels, grid, width)
    if name == "attention":
        return AttentionDecoder(channels, grid, width, depth=depth or DEFAULT_DEPTH[name])
    raise ValueError(f"unknown decoder '{name}'. Valid decoders: resshuffle, simple, attention.")


def count_parameters(module: nn.Module) -> int:
    """All of a decoder's weights: learnt by gradient steps or fitted in closed form."""
    return sum(p.numel() for p in module.parameters())


def decoder_size(name: str, channels: int, grid: int, width: int, depth: int | None = None, feedback: int = 0) -> int:
    """The parameter count of a decoder and its feedback stages, built on the meta device (no memory, no compute)."""
    with torch.device("meta"):
        decoder = build_decoder(name, channels, grid, width, depth)
        if feedback:
            decoder = FeedbackDecoder(decoder, channels, grid, feedback)
    return count_parameters(decoder)


class CapacityError(ValueError):
    """No width and depth give a layer's decoder the asked-for parameter count within the tolerance."""

    def __init__(self, message: str, nearest: int):
        super().__init__(message)
        self.nearest = nearest


CAPACITY_TOLERANCE = 0.10
MAX_WIDTH = 8192


def match_capacity(name: str, channels: int, grid: int, target: int, *, width: int, feedback: int = 0,
                   tolerance: float = CAPACITY_TOLERANCE) -> tuple[int, int | None, int]:
    """(width, depth, count): the decoder `name` scaled to `target` parameters ± `tolerance` (its feedback stages,
    which keep their size, counted in). The default decoder (`width`, default depth) is kept when it is already
    within the tolerance; else the width closest to the target at the default depth, then at other depths (a
    budget the width alone cannot reach: the floor of a few channels, or widths beyond `MAX_WIDTH`).
    Raises CapacityError with the nearest count when nothing is within the tolerance."""
    def size(w, d):
        return decoder_size(name, channels, grid, w, d, feedback)

    default_depth = DEFAULT_DEPTH.get(name)
    if abs(size(width, None) - target) <= tolerance * target:
        return width, None, size(width, None)
    depths = [None] if default_depth is None else \
        [None] + [d for d in (1, 3, 4, 6, 8, 12) if d != default_depth]
    step = 4 if name == "attention" else 1  # attention's width splits into its 4 heads
    nearest = None
    for depth in depths:
        low, high = 1, MAX_WIDTH // step  # the count never falls as the width grows: bisect for the first >= target
        while low < high:
            mid = (low + high) // 2
            low, high = (mid + 1, high) if size(mid * step, depth) < target else (low, mid)
        for w in {max(1, low - 1) * step, low * step}:
            count = size(w, depth)
            if nearest is None or abs(count - target) < abs(nearest[2] - target):
                nearest = (w, depth, count)
        if abs(nearest[2] - target) <= tolerance * target:
            return nearest
    raise CapacityError(f"no decoder width or depth gives {target:,} parameters ± {tolerance:.0%}: the nearest is "
                        f"{nearest[2]:,} (width {nearest[0]}, depth {nearest[1] or default_depth or '-'})", nearest[2])
