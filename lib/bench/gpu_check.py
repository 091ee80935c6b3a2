"""GPU check: what a lent GPU should measure, in one command (`make gpu-check OUT=dir`).

1. One layer of the paper profile end to end (train + evaluate through the Makefile), at the paper's settings
   (batch 8, width 512, augmentation, 30 epochs) on synthetic DIV2K-sized PNGs with random weights: a GPU
   machine without network can run it. Default vgg16 block1, the study's out-of-memory case.
2. `lib.bench.speed` at the paper's batch size and width (CUDA when present).
3. The whole paper profile projected from that run: the layer's train-step work, counted by
   `lib.bench.projection` at the images used, over its measured train_seconds gives an effective TFLOP/s,
   applied to every paper layer's counted work.

Writes OUT/gpu_check.json (and the steps' own outputs under OUT) and prints a summary.

    python -m lib.bench.gpu_check --out DIR [--arch vgg16 --layer block1] [--train-images 64] [--epochs 30] [--no-speed]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .. import ROOT, config
from .. import data as datamod
from ..io import write_json, write_text
from ..registry import UnknownNameError, check_layer


def write_synthetic_div2k(root: Path, train: int, test: int) -> Path:
    """DIV2K's folder layout with synthetic 2040x1356 PNGs (reused when already there)."""
    from .speed import synthetic_pngs

    # numbered like DIV2K (train 0001-0800, valid 0801-0900): a file name is a photo, unique across splits
    for folder, count, seed, first in ((datamod.DIV2K_TRAIN, train, 0, 1), (datamod.DIV2K_VALID, test, 1, train + 1)):
        target = root / folder
        if {p.name for p in target.glob("*.png")} != {f"{first + i:04d}.png" for i in range(count)}:
            target.mkdir(parents=True, exist_ok=True)
            for old in target.glob("*.png"):
                old.unlink()
            synthetic_pngs(target, count, seed=seed, first=first)
    return root


def paper_profile_for(div2k: Path, arch: str, layer: str, val_images: int, epochs: int | None) -> dict:
    """The paper profile, narrowed to one layer, on local synthetic data, random weights (no network)."""
    profile = yaml.safe_load(config.profile_path("paper").read_text())
    profile["description"] = f"GPU check: paper settings, {arch} {layer}, synthetic DIV2K-sized images"
    profile["weights"], profile["lpips"] = "random", "auto"
    profile["data"]["div2k_dir"] = str(div2k)
    profile["data"]["val_images"] = val_images
    if epochs is not None:
        profile["epochs"] = epochs
    profile["architectures"] = {arch: {"layers": [layer]}}
    return profile


def run(out: Path, arch: str, layer: str, train_images: int, val_images: int, test_images: int,
        epochs: int | None, speed: bool) -> dict:
    from . import projection

    out = out.resolve()
    div2k = write_synthetic_div2k(out / "div2k", train_images + val_images, test_images)
    profile_file = out / "gpu_paper.yaml"
    profile = paper_profile_for(div2k, arch, layer, val_images, epochs)
    write_text(profile_file, yaml.safe_dump(profile, sort_keys=False))
    reports = out / "reports"
    started = time.perf_counter()
    subprocess.run(["make", "--no-print-directory", "evaluate", f"PROFILE={profile_file}", f"REPORTS={reports}"],
                   cwd=ROOT, check=True, env={**os.environ, "JOBS": "1"})
    wall = time.perf_counter() - started
    layer_dir = reports / profile_file.stem / arch / layer
    summary = json.loads((layer_dir / "summary.json").read_text())

    result = {"device": summary["device"], "layer": {
        "arch": arch, "layer": layer, "train_images": train_images, "val_images": val_images,
        "test_images": test_images, "epochs": summary["epochs"], "batch_size": summary["batch_size"],
        "train_seconds": summary["train_seconds"], "eval_seconds": summary["eval_seconds"],
        "make_wall_seconds": round(wall, 1), "psnr_mean": summary["psnr_mean"]}}
    # Effective throughput of the measured layer: the work its train step did, counted by the projection's own
    # model at the images actually used (base epochs, validation and feedback stages alike), over train_seconds.
    counted = projection.project(str(profile_file), [1.0], 0.0, sizes={
        "train": train_images, "val": val_images, "test": test_images})["layers"][0]
    effective_tflops = counted["train_pflop"] * 1e3 / summary["train_seconds"]
    paper = projection.project("paper", [effective_tflops], step_ms=0.0)
    result["projection"] = {
        "effective_tflops": round(effective_tflops, 3),
        "train_pflop": counted["train_pflop"],
        "paper_minutes": paper["total_minutes"][str(effective_tflops)],
        "paper_max_train_memory_mb": paper["max_train_memory_mb"],
        "method": "the measured layer's train step work (counted as lib.bench.projection counts every layer: base "
                  "epochs, validation, feedback stages) over its train_seconds gives an effective TFLOP/s; every "
                  "paper layer's counted FLOPs at that rate",
    }
    if speed:
        from .speed import run as bench_speed

        speed_result = bench_speed(out / "speed.json", images=8, steps=3, batch_size=8, width=512)
        result["speed"] = {"geomean_ratio": speed_result["geomean_ratio"],
                           "min_ratio": min(r["ratio"] for r in speed_result["layers"]),
                           "max_peak_mem_mb": max(r["peak_mem_mb"] for r in speed_result["layers"])}
    write_json(out / "gpu_check.json", result)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--arch", default="vgg16")
    parser.add_argument("--layer", default="block1")
    parser.add_argument("--train-images", type=int, default=64)
    parser.add_argument("--val-images", type=int, default=16)
    parser.add_argument("--test-images", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=None, help="default: the paper profile's")
    parser.add_argument("--no-speed", dest="speed", action="store_false", help="skip the speed benchmark")
    args = parser.parse_args(argv)
    try:
        check_layer(args.arch, args.layer)
    except UnknownNameError as error:
        parser.error(str(error))
    if min(args.train_images, args.val_images, args.test_images) < 2:
        parser.error("--train-images, --val-images and --test-images must each be at least 2")
    result = run(args.out, args.arch, args.layer, args.train_images, args.val_images, args.test_images,
                 args.epochs, args.speed)
    layer, projected = result["layer"], result["projection"]
    print(f"{result['device']}: {layer['arch']} {layer['layer']} at paper settings, {layer['epochs']} epochs x "
          f"{layer['train_images']} images in {layer['train_seconds']:.0f}s (evaluate {layer['eval_seconds']:.0f}s) -> "
          f"{projected['effective_tflops']:.1f} effective TFLOP/s -> paper profile ~{projected['paper_minutes']:.1f} min, "
          f"peak training memory ~{projected['paper_max_train_memory_mb']:.0f} MB (projected)")
    if "speed" in result:
        print(f"bench-speed at batch 8, width 512: geomean x{result['speed']['geomean_ratio']}, "
              f"min x{result['speed']['min_ratio']}, peak {result['speed']['max_peak_mem_mb']:.0f} MB")
    print(f"-> {args.out / 'gpu_check.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
