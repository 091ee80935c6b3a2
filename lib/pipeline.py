"""The study's steps and where their outputs live. Notebooks call these; make decides when.

Each step can also run on its own (a notebook opened in Jupyter with its defaults): a missing upstream
output is built on the spot. Under make, upstream outputs are prerequisites and already exist.

Layout under reports/<profile>/:
    config/                  resolved settings (written by `python -m lib.config plan`)
    split.csv                split manifest: image, source, split, file, box
    data/images.pt           decoded + resized uint8 images (decode once)
    features/<arch>/<layer>.pt, done.json    frozen-encoder features (encode once per architecture)
    <arch>/<layer>/          decoder.pt, history.csv, metrics.csv, summary.json, reconstructions.png,
                             samples.npz, train.ipynb, evaluate.ipynb
    summary.csv, figures/, report.html, report.pdf
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import config as cfg
from . import data as datamod
from .provenance import record
from .registry import check_layer

SAMPLE_IMAGES = 6  # fixed test images shown in every reconstruction figure


class StudyPaths:
    def __init__(self, profile: str, reports_root=None):
        self.profile = cfg.profile_name(profile)
        self.root = cfg.reports_dir(profile, reports_root)
        self.manifest = self.root / "split.csv"
        self.store = self.root / "data" / "images.pt"
        self.summary = self.root / "summary.csv"
        self.depth_comparisons = self.root / "depth_comparisons.csv"
        self.figures = self.root / "figures"
        self.offline_benchmark = self.root.parent / "bench" / "offline"  # `make bench-offline`, shared by profiles
        self.layout_control = self.root.parent / "bench" / "colour"  # `make bench-colour` results quoted by the README

    def features(self, arch: str, layer: str) -> Path:
        return self.root / "features" / arch / f"{layer}.pt"

    def features_done(self, arch: str) -> Path:
        return self.root / "features" / arch / "done.json"

    def layer_dir(self, arch: str, layer: str) -> Path:
        return self.root / arch / layer


def study_settings(profile: str, reports_root=None) -> dict:
    """The resolved study: the planned files when make wrote them, else resolved from the profile."""
    paths = StudyPaths(profile, reports_root)
    planned = paths.root / "plan.mk"
    study = cfg.resolve(profile)
    if planned.is_file():  # make may have narrowed the study (ARCH=, LAYERS=) and overridden settings
        text = planned.read_text().splitlines()
        archs = next(l.split(":=")[1].split() for l in text if l.startswith("ARCHS"))
        resolved = {}
        for arch in archs:
            layers = next(l.split(":=")[1].split() for l in text if l.startswith(f"LAYERS_{arch} "))
            encoder = json.loads((paths.root / "config" / arch / "encoder.json").read_text())
            resolved[arch] = {
                "weights": encoder["weights"],
                "weights_file": encoder.get("weights_file", ""),
                "layers": {layer: cfg.load_layer_settings(profile, arch, layer, reports_root) for layer in layers},
            }
        study["architectures"] = resolved
        study["data"] = json.loads((paths.root / "config" / "data.json").read_text())
        study["match_steps"] = json.loads((paths.root / "config" / "study.json").read_text()).get("match_steps", 0)
    return study


def _data_settings(profile: str, reports_root=None) -> dict:
    planned = StudyPaths(profile, reports_root).root / "config" / "data.json"
    if planned.is_file():
        return json.loads(planned.read_text())
    study = cfg.resolve(profile)
    return {"profile": study["profile"], "seed": study["seed"], **study["data"]}


# ---------------------------------------------------------------- step 1: data
def prepare_data(profile: str, reports_root=None, progress: bool = True) -> dict:
    """Split (by source), write the manifest, decode + resize every image once into the store."""
    paths = StudyPaths(profile, reports_root)
    data = _data_settings(profile, reports_root)
    entries = datamod.make_split(data, data["seed"])
    store = datamod.build_store(entries, data["resize"], progress)
    store["crop"] = data["crop"]
    store["settings"] = data
    datamod.write_manifest(entries, paths.manifest)
    datamod.atomic_save(store, paths.store)
    return {"entries": entries, "counts": datamod.split_counts(entries), "store": store}


def load_store(profile: str, reports_root=None) -> dict:
    paths = StudyPaths(profile, reports_root)
    if not paths.store.is_file():
        prepare_data(profile, reports_root)
    return torch.load(paths.store, weights_only=False)


def split_indices(store: dict, split: str) -> np.ndarray:
    return np.array([i for i, s in enumerate(store["splits"]) if s == split], dtype=np.int64)


# ---------------------------------------------------------------- step 2: encode once per architecture
def encode_features(profile: str, arch: str, reports_root=None, batch_size: int = 16, progress: bool = True) -> dict:
    """One frozen-encoder pass over every image gives all of the architecture's layers; fp16 on disk."""
    from tqdm import tqdm  # text bars: readable in logs and in executed notebooks

    from .encoders import build_extractor

    paths = StudyPaths(profile, reports_root)
    study = study_settings(profile, reports_root)
    if arch not in study["architectures"]:
        raise cfg.ProfileError(f"architecture '{arch}' is not in this run of profile '{paths.profile}'.")
    layers = list(study["architectures"][arch]["layers"])
    store = load_store(profile, reports_root)
    settings = study["architectures"][arch]
    extractor = build_extractor(arch, layers, settings["weights"], study["seed"], settings["weights_file"])
    crop = store["crop"]
    chunks: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    started = time.perf_counter()
    count = len(store["images"])
    for start in tqdm(range(0, count, batch_size), desc=f"encode {arch}", disable=not progress):
        batch = datamod.centre_crops(store, crop, range(start, min(count, start + batch_size)))
        for layer, value in extractor(datamod.normalise(batch)).items():
            chunks[layer].append(value)
    for layer in layers:
        tensor = torch.cat(chunks[layer])
        if tensor.abs().max() < 6e4:  # fp16 on disk halves the cache; kept fp32 if it would overflow
            tensor = tensor.half()
        datamod.atomic_save({"features": tensor, "names": store["names"], "splits": store["splits"]}, paths.features(arch, layer))
    done = {
        "arch": arch,
        "layers": layers,
        "weights": extractor.weights.kind,
        "weights_detail": extractor.weights.detail,
        "images": count,
        "seconds": time.perf_counter() - started,
    }
    datamod.atomic_write_bytes(paths.features_done(arch), (json.dumps(done, indent=2) + "\n").encode())
    return done


def load_features(profile: str, arch: str, layer: str, reports_root=None) -> tuple[dict, dict]:
    """(features file, encoder record); encodes first when the cache is missing."""
    paths = StudyPaths(profile, reports_root)
    if not paths.features_done(arch).is_file() or not paths.features(arch, layer).is_file():
        encode_features(profile, arch, reports_root)
    done = json.loads(paths.features_done(arch).read_text())
    return torch.load(paths.features(arch, layer), weights_only=False), done


# ---------------------------------------------------------------- step 3: train one layer
def train_layer(profile: str, arch: str, layer: str, reports_root=None, overrides: dict | None = None, progress=True) -> dict:
    from .encoders import layer_encoder
    from .training import train_decoder

    check_layer(arch, layer)
    paths = StudyPaths(profile, reports_root)
    settings = {**cfg.load_layer_settings(profile, arch, layer, reports_root), **(overrides or {})}
    store = load_store(profile, reports_root)
    feats, encoder = load_features(profile, arch, layer, reports_root)
    train_i, val_i = split_indices(store, "train"), split_indices(store, "val")
    crops = datamod.centre_crops(store, store["crop"])
    x = feats["features"]
    out = paths.layer_dir(arch, layer)
    out.mkdir(parents=True, exist_ok=True)
    resume_file = out / "training_state.pt"  # per-epoch state: a killed run continues from here
    augmentation, extractor = None, None
    if settings["augment"] or settings["colour_copies"] or settings["feedback"]:  # the layer's encoder is needed
        from .encoders import build_extractor

        encoder_settings = study_settings(profile, reports_root)["architectures"][arch]
        extractor = build_extractor(arch, [layer], encoder_settings["weights"], settings["seed"], encoder_settings["weights_file"])
    if settings["augment"]:
        from .training import OnlineAugmentation

        augmentation = OnlineAugmentation(extractor, layer, [store["images"][i] for i in train_i], store["crop"])
    train_x, train_crops, groups = x[train_i], crops[train_i], None
    if settings["colour_copies"]:  # colour-jittered copies of the training images, encoded once for this layer
        from .encoders import encode_images
        from .training import contiguous_groups

        copies = datamod.colour_copies(train_crops, settings["colour_copies"], np.random.default_rng(settings["seed"]))
        train_x = torch.cat([train_x.float(), encode_images(extractor, layer, copies)])
        train_crops = np.concatenate([train_crops, copies])
        groups = contiguous_groups(len(train_i)).repeat(settings["colour_copies"] + 1)
    perceptual = perceptual_loss() if settings["perceptual_weight"] > 0 else None
    decoder, history, info = train_decoder(settings, train_x, train_crops, x[val_i], crops[val_i], progress=progress,
                                           resume_file=resume_file, augmentation=augmentation, perceptual=perceptual,
                                           groups=groups, encode=layer_encoder(extractor, layer) if extractor else None)
    checkpoint = {
        "state_dict": decoder.state_dict(),
        "settings": settings,
        "feature_shape": list(x.shape[1:]),
        "weights": encoder["weights"],
        "weights_detail": encoder["weights_detail"],
        **info,
    }
    datamod.atomic_save(checkpoint, out / "decoder.pt")
    datamod.atomic_write_bytes(out / "history.csv", history.to_csv(index=False).encode())
    resume_file.unlink(missing_ok=True)  # finished: the checkpoint above is the result
    print(
        f"{arch} {layer}: {settings['decoder']} decoder, {info['decoder_params']:,} params, "
        f"{len(history)} epochs in {info['train_seconds']:.0f}s, kept epoch {info['best_epoch']} "
        f"({settings.get('checkpoint', 'best')}: val MSE {info['best_val_loss']:.4f}), {encoder['weights']} weights"
    )
    return {"decoder": decoder, "history": history, "settings": settings, **info}


def load_decoder(profile: str, arch: str, layer: str, reports_root=None, extractor=None):
    """The trained decoder of a layer and its checkpoint; one with feedback stages queries `extractor`."""
    from .decoders import FeedbackDecoder, build_decoder
    from .encoders import layer_encoder

    path = StudyPaths(profile, reports_root).layer_dir(arch, layer) / "decoder.pt"
    if not path.is_file():
        train_layer(profile, arch, layer, reports_root)
    checkpoint = torch.load(path, weights_only=False)
    channels, grid = checkpoint["feature_shape"][0], checkpoint["feature_shape"][1]
    decoder = build_decoder(checkpoint["settings"]["decoder"], channels, grid, checkpoint["settings"]["width"])
    if checkpoint["settings"].get("feedback", 0):
        if extractor is None:
            raise ValueError(f"{arch} {layer}: the decoder has feedback stages; load it with the layer's extractor.")
        decoder = FeedbackDecoder(decoder, channels, grid, checkpoint["settings"]["feedback"])
        decoder.attach(layer_encoder(extractor, layer))
    decoder.load_state_dict(checkpoint["state_dict"])
    return decoder.eval(), checkpoint


# ---------------------------------------------------------------- step 4: evaluate one layer
def lpips_scorer(study: dict):
    """(scorer or None, note): LPIPS only with real AlexNet weights, never a random trunk.

    Profile `lpips`: auto (cached or downloadable, else left empty with the reason), required (else one
    clear error: the paper profile), off.
    """
    from .encoders import torchvision_weights
    from .metrics import LPIPSScorer
    from .registry import ALEXNET_WEIGHTS_FILE

    if study.get("lpips") == "off":
        return None, "LPIPS switched off in the profile."
    state, info = torchvision_weights(ALEXNET_WEIGHTS_FILE, "imagenet" if study.get("lpips") == "required" else "auto")
    if state is None:
        return None, (
            f"LPIPS left empty: its AlexNet trunk is unavailable ({info.detail.removeprefix('random initialisation: ')}), "
            "and a randomly initialised AlexNet would give meaningless numbers."
        )
    return LPIPSScorer(state), f"LPIPS (AlexNet, v0.1) from {info.detail}"


def training_loss_label(perceptual_weight: float) -> str:
    return "MSE" if perceptual_weight <= 0 else f"MSE + {perceptual_weight:g} x LPIPS"


def perceptual_loss():
    """The optional LPIPS training loss: real AlexNet weights (cached or downloadable) or one clear error."""
    from .encoders import WeightsError, torchvision_weights
    from .metrics import PerceptualLoss
    from .registry import ALEXNET_WEIGHTS_FILE

    try:
        state, _ = torchvision_weights(ALEXNET_WEIGHTS_FILE, "imagenet")
    except WeightsError as error:
        raise WeightsError(f"perceptual_weight > 0 trains with LPIPS, which needs AlexNet's ImageNet weights: {error} "
                           "Or set perceptual_weight: 0 (MSE only).") from None
    return PerceptualLoss(state)


def evaluate_layer(profile: str, arch: str, layer: str, reports_root=None) -> dict:
    from .decoders import FeedbackDecoder
    from .encoders import build_extractor, layer_encoder
    from .figures import reconstruction_figure
    from .matching import match_features, steps_at as matching_steps
    from .metrics import Pixels, feature_errors, mean_colour_baseline, psnr, score, ssim, thumbnail_baseline
    from .training import pick_device, reconstruct

    started = time.perf_counter()
    paths = StudyPaths(profile, reports_root)
    study = study_settings(profile, reports_root)
    store = load_store(profile, reports_root)
    feats, encoder = load_features(profile, arch, layer, reports_root)
    settings = study["architectures"][arch]
    extractor = build_extractor(arch, [layer], settings["weights"], study["seed"], settings["weights_file"])
    if extractor.weights.kind != encoder["weights"]:
        raise RuntimeError(f"{arch} weights are {extractor.weights.kind} now but the cached features were encoded with "
                           f"{encoder['weights']} weights: rerun `make features` (or delete {paths.features_done(arch)}).")
    decoder, checkpoint = load_decoder(profile, arch, layer, reports_root, extractor)
    test_i = split_indices(store, "test")
    target = Pixels.from_uint8(datamod.centre_crops(store, store["crop"], test_i))
    decoded = reconstruct(decoder, feats["features"][test_i])
    grid = checkpoint["feature_shape"][1]
    match_steps = matching_steps(grid, study["match_steps"])
    match_started = time.perf_counter()
    base = decoder.base if isinstance(decoder, FeedbackDecoder) else decoder
    recon = Pixels.from_normalised(match_features(layer_encoder(extractor, layer, differentiable=True),
                                                  getattr(base, "standardise", None),
                                                  feats["features"][test_i], decoded, match_steps,
                                                  device=pick_device(checkpoint["settings"]["device"]), progress=True))
    match_seconds = time.perf_counter() - match_started
    extractor.to("cpu")
    scorer, lpips_note = lpips_scorer(study)
    per_image = pd.DataFrame({"image": [store["names"][i] for i in test_i], **score(recon, target, scorer)})
    per_image["decoder_psnr"] = psnr(Pixels.from_normalised(decoded), target)  # before feature matching
    mean_colour, thumbnail = mean_colour_baseline(target), thumbnail_baseline(target, grid)
    per_image["baseline_mean_colour_psnr"] = psnr(mean_colour, target)
    per_image["baseline_mean_colour_ssim"] = ssim(mean_colour, target)
    per_image["baseline_thumbnail_psnr"] = psnr(thumbnail, target)
    per_image["baseline_thumbnail_ssim"] = ssim(thumbnail, target)
    # The layer's own view: distance of each image to the original in its features (a control PSNR lacks).
    per_image = per_image.assign(**feature_errors(extractor, layer, feats["features"][test_i], recon, mean_colour, thumbnail))
    out = paths.layer_dir(arch, layer)
    datamod.atomic_write_bytes(out / "metrics.csv", per_image.to_csv(index=False).encode())

    shown = np.linspace(0, len(test_i) - 1, min(SAMPLE_IMAGES, len(test_i))).round().astype(int)
    samples = {"original": target.to_uint8()[shown], "reconstruction": recon.to_uint8()[shown],
               "names": np.array(per_image["image"].iloc[shown], dtype=str)}
    tmp = out / ".samples.tmp.npz"
    np.savez_compressed(tmp, **samples)
    tmp.replace(out / "samples.npz")
    reconstruction_figure(samples, f"{arch} {layer}", out / "reconstructions.png", per_image["psnr"].iloc[shown].tolist())

    c, h, w = checkpoint["feature_shape"]
    summary = {
        "arch": arch,
        "layer": layer,
        "feature_shape": f"{c}x{h}x{w}",
        "spatial_locations": h * w,
        "decoder": checkpoint["settings"]["decoder"],
        "loss": training_loss_label(checkpoint["settings"]["perceptual_weight"]),
        "decoder_params": checkpoint["decoder_params"],
        "weights": encoder["weights"],
        "weights_detail": encoder["weights_detail"],
        "epochs": checkpoint["settings"]["epochs"],
        "checkpoint": checkpoint["settings"].get("checkpoint", "best"),
        "colour_copies": checkpoint["settings"].get("colour_copies", 0),
        "feedback": checkpoint["settings"].get("feedback", 0),  # feedback stages after the decoder
        "match_steps": match_steps,  # test-time feature-matching steps on each reconstruction
        "match_seconds": round(match_seconds, 2),
        "best_epoch": checkpoint["best_epoch"],  # the epoch of the decoder kept (0: the untrained start)
        "start_val_loss": checkpoint.get("start_val_loss"),  # validation MSE before any gradient step
        "best_val_loss": checkpoint.get("best_val_loss"),  # ... and of the decoder kept
        "batch_size": checkpoint["settings"]["batch_size"],
        "train_seconds": round(checkpoint["train_seconds"], 2),
        "encode_seconds": round(encoder["seconds"], 2),
        "eval_seconds": 0.0,
        "device": checkpoint["device"],
        "test_images": len(test_i),
        "lpips_note": lpips_note,
    }
    for metric in ("psnr", "decoder_psnr", "ssim", "lpips", "mse", "feature_error", "baseline_mean_colour_psnr", "baseline_mean_colour_ssim",
                   "baseline_thumbnail_psnr", "baseline_thumbnail_ssim", "baseline_mean_colour_feature_error",
                   "baseline_thumbnail_feature_error"):
        values = per_image[metric].to_numpy(dtype=float)
        summary[f"{metric}_mean" if not metric.startswith("baseline") else metric] = (
            None if np.isnan(values).all() else float(np.mean(values))
        )
        if not metric.startswith("baseline"):
            summary[f"{metric}_std"] = None if np.isnan(values).all() else float(np.std(values))
    summary["eval_seconds"] = round(time.perf_counter() - started, 2)
    summary["provenance"] = record()
    datamod.atomic_write_bytes(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    print(
        f"{arch} {layer}: PSNR {summary['psnr_mean']:.2f} ± {summary['psnr_std']:.2f} dB, "
        f"SSIM {summary['ssim_mean']:.3f} (mean colour {summary['baseline_mean_colour_psnr']:.2f} dB, "
        f"thumbnail {summary['baseline_thumbnail_psnr']:.2f} dB) on {len(test_i)} test images"
    )
    return {"summary": summary, "per_image": per_image, "samples": samples}


# ---------------------------------------------------------------- step 5: the study table
SUMMARY_COLUMNS = [
    "arch", "layer", "feature_shape", "spatial_locations", "decoder", "loss", "decoder_params", "weights", "epochs",
    "batch_size", "checkpoint", "colour_copies", "feedback", "match_steps", "best_epoch", "start_val_loss", "best_val_loss",
    "train_seconds", "encode_seconds",
    "eval_seconds", "test_images", "psnr_mean", "psnr_std", "decoder_psnr_mean", "ssim_mean", "ssim_std", "lpips_mean", "lpips_std", "mse_mean", "mse_std",
    "feature_error_mean", "feature_error_std",
    "baseline_mean_colour_psnr", "baseline_mean_colour_ssim", "baseline_thumbnail_psnr", "baseline_thumbnail_ssim",
    "baseline_mean_colour_feature_error", "baseline_thumbnail_feature_error",
    # lib.stats: 95% intervals by bootstrap over test source photos; differences paired by image
    "test_sources", "psnr_ci_low", "psnr_ci_high",
    "psnr_minus_mean_colour", "psnr_minus_mean_colour_ci_low", "psnr_minus_mean_colour_ci_high", "wins_vs_mean_colour",
    "psnr_minus_thumbnail", "psnr_minus_thumbnail_ci_low", "psnr_minus_thumbnail_ci_high", "wins_vs_thumbnail",
    "device", "weights_detail", "lpips_note",
]


def collect_summary(profile: str, reports_root=None) -> pd.DataFrame:
    """One row per (arch, layer) of this run, in network order, with its intervals (`lib.stats`); written
    atomically to summary.csv, and the PSNR lost from each layer to the next deeper one to depth_comparisons.csv."""
    from .stats import baseline_comparisons, depth_comparisons

    paths = StudyPaths(profile, reports_root)
    study = study_settings(profile, reports_root)
    sources = {e.image: e.source for e in datamod.read_manifest(paths.manifest)}
    rows, per_image = [], {}
    for arch, settings in study["architectures"].items():
        for layer in settings["layers"]:
            path = paths.layer_dir(arch, layer) / "summary.json"
            if not path.is_file():
                evaluate_layer(profile, arch, layer, reports_root)
            images = pd.read_csv(paths.layer_dir(arch, layer) / "metrics.csv")
            per_image[(arch, layer)] = images
            row = json.loads(path.read_text())
            row.update(baseline_comparisons(images, [sources[i] for i in images["image"]], seed=study["seed"]))
            rows.append(row)
    table = pd.DataFrame(rows)[SUMMARY_COLUMNS]
    datamod.atomic_write_bytes(paths.summary, table.to_csv(index=False).encode())
    layers = {arch: list(settings["layers"]) for arch, settings in study["architectures"].items()}
    depth = depth_comparisons(per_image, layers, sources, seed=study["seed"])
    datamod.atomic_write_bytes(paths.depth_comparisons, depth.to_csv(index=False).encode())
    return table


def fetch_source(profile: str, reports_root=None) -> dict:
    """Make the source images available (DIV2K: download, verify, unzip once) and record where they are."""
    data = _data_settings(profile, reports_root)
    if cfg.resolve(profile).get("lpips") == "required":  # fail (or download) now, not after hours of training
        lpips_scorer({"lpips": "required"})
    if data["source"] == "div2k":
        root = datamod.div2k_root(data)
    else:
        root = datamod._skimage_dir()
    record_ = {"source": data["source"], "root": str(root)}
    path = StudyPaths(profile, reports_root).root / "data" / "source.json"
    datamod.atomic_write_bytes(path, (json.dumps(record_, indent=2) + "\n").encode())
    return record_


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.pipeline", description="Run one step of the study.")
    parser.add_argument("step", choices=["fetch", "encode"])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--arch", help="for encode")
    parser.add_argument("--reports", default=None)
    args = parser.parse_args(argv)
    try:
        if args.step == "fetch":
            found = fetch_source(args.profile, args.reports)
            print(f"{found['source']} images in {found['root']}")
            return 0
        if not args.arch:
            parser.error("encode needs --arch")
        done = encode_features(args.profile, args.arch, args.reports)
    except (cfg.ProfileError, datamod.DataError, RuntimeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.arch}: encoded {done['images']} images for {', '.join(done['layers'])} "
          f"in {done['seconds']:.0f}s ({done['weights']} weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
