"""Speed benchmark: the pipeline's training throughput against a naive loop, per layer, same run.

pipeline: images decoded and resized once, encoder features computed once; a step is a decoder update on
          cached features (targets from the uint8 store).
naive:    every step decodes the full-size PNGs, resizes, runs the frozen encoder in fp32, then the same
          decoder update.
Both use the default decoder, the same batch size and synthetic 2040x1356 PNGs (DIV2K-sized).
Peak memory per layer (both loops): on CPU the RSS peak of a fresh process per layer, on GPU
torch.cuda.max_memory_allocated after a reset.

    python -m lib.bench.speed --out speed.json [--images 8] [--steps 3] [--batch-size 4] [--width 128]
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import data as datamod
from ..decoders import build_decoder
from ..encoders import build_extractor
from ..io import write_json
from ..registry import all_layers


def synthetic_pngs(folder: Path, count: int, size=(2040, 1356), seed: int = 0, first: int = 0) -> list[Path]:
    """Smooth colour fields plus noise: PNGs that compress (and decode) like photos, not like white noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        small = rng.integers(0, 256, (size[1] // 64, size[0] // 64, 3), dtype=np.uint8)
        image = np.asarray(Image.fromarray(small).resize(size, Image.BICUBIC)).astype(np.int16)
        image = np.clip(image + rng.integers(-8, 9, image.shape), 0, 255).astype(np.uint8)
        path = folder / f"{first + i:04d}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def peak_memory_mb(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _step(decoder, optimiser, x, y):
    loss = nn.functional.mse_loss(decoder(x), y)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()


def _timed(steps: int, run) -> float:
    run(0)  # warm-up
    started = time.perf_counter()
    for i in range(1, steps + 1):
        run(i)
    return time.perf_counter() - started


def measure(arch: str, layer: str, files: list[Path], batch_size: int, steps: int, device, width: int = 128) -> dict:
    crop = 224
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    extractor = build_extractor(arch, [layer], weights="random").to(device)
    # Pipeline: decode + resize once, encode once; steady state is decoder steps on cached tensors.
    store = np.stack([datamod.load_centre_crop(f, 256, crop) for f in files])
    with torch.no_grad():
        features = torch.cat([extractor(datamod.normalise(store[i : i + batch_size]).to(device))[layer].half().cpu()
                              for i in range(0, len(store), batch_size)])
    c, g = features.shape[1], features.shape[2]
    batches = [np.arange(i, i + batch_size) % len(files) for i in range(0, batch_size * (steps + 1), batch_size)]

    def fresh():
        torch.manual_seed(0)
        decoder = build_decoder("resshuffle", c, g, width).to(device)
        return decoder, torch.optim.AdamW(decoder.parameters(), lr=1e-3)

    decoder, optimiser = fresh()

    def pipeline_step(i):
        index = batches[i]
        _step(decoder, optimiser, features[index].to(device).float(), datamod.normalise(store[index]).to(device))

    pipeline_seconds = _timed(steps, pipeline_step)
    decoder, optimiser = fresh()

    def naive_step(i):
        index = batches[i]
        crops = np.stack([datamod.load_centre_crop(files[j], 256, crop) for j in index])
        y = datamod.normalise(crops).to(device)
        with torch.no_grad():
            x = extractor(y)[layer]
        _step(decoder, optimiser, x, y)

    naive_seconds = _timed(steps, naive_step)
    images = steps * batch_size
    pipeline_img_s, naive_img_s = images / pipeline_seconds, images / naive_seconds
    return {"arch": arch, "layer": layer, "batch_size": batch_size, "steps": steps,
            "pipeline_img_s": round(pipeline_img_s, 2), "naive_img_s": round(naive_img_s, 2),
            "ratio": round(pipeline_img_s / naive_img_s, 2), "peak_mem_mb": round(peak_memory_mb(device), 1)}


def run(out: Path, images: int, steps: int, batch_size: int, width: int = 128) -> dict:
    from tqdm import tqdm

    from ..training import pick_device

    device = pick_device("auto")
    layers = all_layers()
    with tempfile.TemporaryDirectory() as folder:
        files = synthetic_pngs(Path(folder), images)
        if device.type == "cuda":
            rows = [measure(arch, layer, files, batch_size, steps, device, width) for arch, layer in tqdm(layers, desc="bench-speed")]
        else:
            # RSS peaks only grow within a process: one fresh process per layer makes the peak that layer's.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=1, mp_context=context, max_tasks_per_child=1) as pool:
                jobs = [pool.submit(measure, arch, layer, files, batch_size, steps, device, width) for arch, layer in layers]
                rows = [job.result() for job in tqdm(jobs, desc="bench-speed")]
    geomean = math.exp(sum(math.log(r["ratio"]) for r in rows) / len(rows))
    result = {"device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(0),
              "geomean_ratio": round(geomean, 2), "batch_size": batch_size, "width": width, "images": images, "png_size": "2040x1356", "layers": rows}
    write_json(out, result)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.bench.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--images", type=int, default=8, help="synthetic 2040x1356 PNGs")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per layer and loop (after one warm-up)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--width", type=int, default=128, help="decoder width (demo 128, paper 512)")
    args = parser.parse_args(argv)
    result = run(args.out, args.images, args.steps, args.batch_size, args.width)
    for r in result["layers"]:
        print(f"{r['arch']:>22} {r['layer']:<8} pipeline {r['pipeline_img_s']:7.2f} img/s  naive {r['naive_img_s']:6.2f} img/s  "
              f"x{r['ratio']:.1f}  peak {r['peak_mem_mb']:.0f} MB")
    print(f"{result['device']}: geometric-mean speed-up x{result['geomean_ratio']:.2f} over the naive loop -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
