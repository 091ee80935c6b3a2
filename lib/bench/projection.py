"""GPU time and memory projection for a whole profile, counted from the code itself.

For every planned layer, at the profile's own settings (batch size, width, epochs, augmentation):
- FLOPs per image of the frozen encoder up to that layer and of one decoder update (forward + backward),
  counted by torch's FlopCounterMode on the real modules (meta tensors: nothing is computed);
- the training memory a GPU would hold: parameters, gradients and AdamW state, every tensor autograd saves
  for the backward pass at that batch size, and the largest encoder activation (encoded under no_grad);
- the work the profile does: encoder passes (every step with `augment`, else once per image), decoder
  updates, validation each epoch and test evaluation, with `feedback` stages their updates and the encoder
  passes over reconstructions they need, and with `match_steps` the test-time feature matching (an encoder
  forward and backward pass per step and test image, at 28x28 grids and finer: `matching.steps_at`).

Minutes follow from an assumed sustained throughput (`--tflops`) plus a per-step overhead for kernel
launches and data (`--step-ms`): a model, not a measurement. Numbers measured on a GPU replace it.

    python -m lib.bench.projection --profile paper --out projection.json [--tflops 50 100 200] [--step-ms 8]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from .. import config
from .. import data as datamod
from ..decoders import FeedbackRefiner, build_decoder
from ..encoders import build_extractor
from ..io import write_json
from ..matching import steps_at as matching_steps
from ..registry import check_layer

DIV2K_TRAIN_IMAGES, DIV2K_VALID_IMAGES = 800, 100  # DIV2K_train_HR and DIV2K_valid_HR


def split_sizes(data: dict, seed: int) -> dict[str, int]:
    """Images per split without touching the images (DIV2K's sizes are fixed; scikit-image ships with us)."""
    if data["source"] == "skimage":
        return datamod.split_counts(datamod.make_split(data, seed))
    sizes = {"train": DIV2K_TRAIN_IMAGES - data["val_images"], "val": data["val_images"], "test": DIV2K_VALID_IMAGES}
    return {k: min(v, data["limit"]) if data.get("limit") else v for k, v in sizes.items()}


def _flops(run) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return counter.get_total_flops()


def layer_cost(arch: str, layer: str, settings: dict, crop: int = 224) -> dict:
    """Per-image FLOPs and per-step training memory of one layer at `settings` (batch_size, width, decoder)."""
    channels, grid, _ = check_layer(arch, layer)
    batch = settings["batch_size"]
    with torch.device("meta"):
        extractor = build_extractor(arch, [layer], weights="random")
        decoder = build_decoder(settings["decoder"], channels, grid, settings["width"], settings.get("depth"))
        image = torch.empty(1, 3, crop, crop)
        encoder_flops = _flops(lambda: extractor(image))
        features = torch.empty(batch, channels, grid, grid)
        target = torch.empty(batch, 3, crop, crop)
        saved: list[int] = []

        def pack(tensor):
            saved.append(tensor.numel() * tensor.element_size())
            return tensor

        def update():
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = torch.nn.functional.mse_loss(decoder(features), target)
            loss.backward()

        decoder_flops = _flops(update) / batch
        forward_flops = _flops(lambda: decoder(features[:1]))
        largest_activation = 0

        def record(_module, _inputs, output):
            nonlocal largest_activation
            for out in output.values() if isinstance(output, dict) else [output]:
                if isinstance(out, torch.Tensor):
                    largest_activation = max(largest_activation, out.numel() * out.element_size())

        handles = [m.register_forward_hook(record) for m in extractor.modules()]
        extractor(torch.empty(batch, 3, crop, crop))
        for handle in handles:
            handle.remove()
    parameters = sum(p.numel() * p.element_size() for p in decoder.parameters())
    encoder_weights = sum(p.numel() * p.element_size() for p in extractor.parameters())
    # decoder weights + grads + AdamW's two moments; encoder weights; autograd's saved tensors; the batch's
    # features, targets and output; the encoder's largest activation (and its input) while encoding.
    memory = (4 * parameters + encoder_weights + sum(saved) + 3 * target.numel() * 4 + features.numel() * 4
              + 2 * largest_activation)
    cost = {"encoder_gflop_per_image": encoder_flops / 1e9, "decoder_update_gflop_per_image": decoder_flops / 1e9,
            "decoder_forward_gflop_per_image": forward_flops / 1e9, "train_memory_mb": memory / 2**20}
    if settings.get("feedback", 0):  # one feedback stage: its update and forward (the encoder pass is counted apart)
        with torch.device("meta"):
            refiner = FeedbackRefiner(channels, grid)
            image = torch.empty(batch, 3, crop, crop)

            def refine_update():
                torch.nn.functional.mse_loss(refiner(features, features, image), target).backward()

            cost["feedback_update_gflop_per_image"] = _flops(refine_update) / batch / 1e9
            cost["feedback_forward_gflop_per_image"] = _flops(lambda: refiner(features[:1], features[:1], image[:1])) / 1e9
    return cost


def feedback_work(settings: dict, sizes: dict) -> dict:
    """What `feedback` stages of `feedback_epochs` each add (`training.fit_feedback`). A stage's inputs follow
    from the last stage's (`feedback_inputs(previous=...)`): one pass of the stage before (the decoder for the
    first) and one encoder pass per training image. Its validation loss runs the whole decoder, so stage j
    encodes each validation image j times; each test reconstruction passes through all k stages."""
    k, epochs = settings.get("feedback", 0), settings.get("feedback_epochs", 0)
    train, val, test = sizes["train"], sizes["val"], sizes["test"]
    stages = range(1, k + 1)
    return {
        "encoder_images": k * train + sum(j * val for j in stages) + k * test,
        "decoder_forward_images": min(k, 1) * train + k * val,  # the decoder's own pass: stage 1's inputs, each loss
        "forward_images": max(k - 1, 0) * train + sum(j * val for j in stages) + k * test,
        "update_images": k * epochs * train,
        "steps": k * epochs * math.ceil(train / settings["batch_size"]),
        "test_images": k * test,  # of encoder_images and forward_images: the evaluate step's share
    }


def matching_work(match_steps: int, grid: int, sizes: dict, batch_size: int = 16) -> dict:
    """What test-time feature matching adds (`matching.match_features`, batches of 16): per step and test image one
    encoder forward and one backward to the image, counted as three forward passes (backward ~ twice forward)."""
    steps = matching_steps(grid, match_steps)
    return {"match_steps": steps, "encoder_images": 3 * steps * sizes["test"],
            "steps": steps * math.ceil(sizes["test"] / batch_size)}


def project(profile: str, tflops: list[float], step_ms: float, overrides: dict | None = None,
            sizes: dict[str, int] | None = None) -> dict:
    """Each planned layer's (and run's) counted work, split by the step that does it (`encode_pflop`: the cached features'
    one pass, `train_pflop`: what the train step's `train_seconds` covers, `evaluate_pflop`: test reconstruction
    and matching; the baselines' feature-error passes, a few over the test images per architecture (the baselines step), are
    not counted), and minutes at each assumed throughput. `sizes` replaces
    the images per split the profile's data would give (e.g. a run on fewer synthetic images)."""
    from tqdm import tqdm

    study = config.resolve(profile, overrides)
    sizes = sizes or split_sizes(study["data"], study["seed"])
    # every run: each layer's main one, its seed repeats and its capacity-matched decoder
    layers = [(arch, spec["arch"], layer, run, settings) for arch, spec in study["architectures"].items()
              for layer, main in spec["layers"].items()
              for run, settings in [("", main), *spec["runs"][layer].items()]]
    rows, encoded_archs = [], set()
    for arch, network, layer, run, settings in tqdm(layers, desc="projection"):
        cost = layer_cost(network, layer, settings, study["data"]["crop"])
        epochs, batch = settings["epochs"], settings["batch_size"]
        steps = epochs * math.ceil(sizes["train"] / batch)
        train_images = epochs * sizes["train"]
        if settings["augment"]:  # every training view encoded on the fly; val and test once (centre crops)
            encoder_images = train_images + sizes["val"] + sizes["test"]
        else:  # the architecture's one pass over all images serves all its layers: charge it to the first
            encoder_images = 0 if arch in encoded_archs else sum(sizes.values())
            encoded_archs.add(arch)
        encoder, forward = cost["encoder_gflop_per_image"] * 1e9, cost["decoder_forward_gflop_per_image"] * 1e9
        work = feedback_work(settings, sizes)
        matching = matching_work(study["match_steps"], check_layer(network, layer)[1], sizes)
        steps += work["steps"] + matching["steps"]
        stage_forward = cost.get("feedback_forward_gflop_per_image", 0) * 1e9
        parts = {  # the same work, by the step that does it
            "encode": 0 if settings["augment"] else encoder_images * encoder,
            "train": ((train_images + sizes["val"] if settings["augment"] else 0) * encoder
                      + train_images * cost["decoder_update_gflop_per_image"] * 1e9 + epochs * sizes["val"] * forward
                      + (work["encoder_images"] - work["test_images"]) * encoder
                      + work["decoder_forward_images"] * forward
                      + work["update_images"] * cost.get("feedback_update_gflop_per_image", 0) * 1e9
                      + (work["forward_images"] - work["test_images"]) * stage_forward),
            "evaluate": ((sizes["test"] if settings["augment"] else 0) * encoder + sizes["test"] * forward
                         + work["test_images"] * (encoder + stage_forward) + matching["encoder_images"] * encoder),
        }
        flops = sum(parts.values())
        rows.append({"arch": arch, "layer": layer, "run": run, "batch_size": batch, "width": settings["width"], "epochs": epochs,
                     "augment": settings["augment"], "steps": steps, "encoder_images": encoder_images,
                     "feedback": settings.get("feedback", 0), "feedback_encoder_images": work["encoder_images"],
                     "match_steps": matching["match_steps"], "match_encoder_images": matching["encoder_images"],
                     **{k: round(v, 3) for k, v in cost.items()}, "total_pflop": round(flops / 1e15, 6),
                     **{f"{step}_pflop": round(v / 1e15, 6) for step, v in parts.items()},
                     "seconds": {str(t): round(flops / (t * 1e12) + steps * step_ms / 1e3, 2) for t in tflops}})
    total = sum(r["total_pflop"] for r in rows)
    seconds = {str(t): sum(r["seconds"][str(t)] for r in rows) for t in tflops}
    return {
        "profile": study["profile"], "images": sizes, "assumed_tflops": tflops, "assumed_step_ms": step_ms,
        "total_pflop": round(total, 6),
        "total_seconds": {t: round(v, 3) for t, v in seconds.items()},
        "total_minutes": {t: round(v / 60, 1) for t, v in seconds.items()},
        "max_train_memory_mb": round(max(r["train_memory_mb"] for r in rows), 1),
        "method": "FLOPs counted by torch FlopCounterMode on the real modules at the profile's settings; minutes = "
                  "FLOPs / assumed sustained TFLOP/s + steps x assumed per-step overhead; memory = decoder weights, "
                  "grads and AdamW state + encoder weights + tensors autograd saves + batch tensors + the largest "
                  "encoder activation, all fp32 (bf16 autocast on the encoder only lowers it). Not a measurement.",
        "layers": rows,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.bench.projection", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--tflops", type=float, nargs="+", default=[25.0, 50.0, 100.0],
                        help="assumed sustained throughput(s) of the GPU, in TFLOP/s")
    parser.add_argument("--step-ms", type=float, default=8.0, help="assumed overhead per training step (launches, data)")
    args = parser.parse_args(argv)
    if min(args.tflops) <= 0 or args.step_ms < 0:
        parser.error("--tflops must be positive and --step-ms non-negative")
    try:
        result = project(args.profile, args.tflops, args.step_ms)
    except (config.ProfileError, datamod.DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_json(args.out, result)
    for r in result["layers"]:
        print(f"{r['arch']:>22} {r['layer']:<8} encoder {r['encoder_gflop_per_image']:6.2f} GFLOP/img  decoder update "
              f"{r['decoder_update_gflop_per_image']:6.2f} GFLOP/img  {r['total_pflop']:7.3f} PFLOP  "
              f"memory {r['train_memory_mb']:7.0f} MB at batch {r['batch_size']}")
    minutes = ", ".join(f"{m} min at {t} TFLOP/s" for t, m in result["total_minutes"].items())
    print(f"{result['profile']}: {result['total_pflop']:.2f} PFLOP in all -> {minutes} (+{args.step_ms:g} ms/step); "
          f"peak training memory {result['max_train_memory_mb']:.0f} MB -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
