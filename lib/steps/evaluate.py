"""Step evaluate: score one layer's trained decoder on the test split through the one evaluation
(`lib.evaluation.evaluate_decoder`) and write its record (`result_record`) as summary.json."""
from __future__ import annotations

import time

import numpy as np
import torch

from .. import data as datamod
from .. import plan as planmod
from ..decoders import FeedbackDecoder, build_decoder
from ..encoders import layer_encoder, plan_extractor, torchvision_weights
from ..evaluation import evaluate_decoder, result_record
from ..io import save_npz, write_bytes, write_json
from ..provenance import record
from ..registry import ALEXNET_WEIGHTS_FILE
from .data import load_store, split_indices
from . import baselines
from .encode import load_features

SAMPLE_IMAGES = 6  # fixed test images shown in every reconstruction figure


def lpips_scorer(policy: str):
    """(scorer or None, note): LPIPS only with real AlexNet weights, never a random trunk. Profile `lpips`: auto
    (cached or downloadable, else left empty with the reason), required (else one clear error), off."""
    from ..metrics import LPIPSScorer

    if policy == "off":
        return None, "LPIPS switched off in the profile."
    state, info = torchvision_weights(ALEXNET_WEIGHTS_FILE, "imagenet" if policy == "required" else "auto")
    if state is None:
        return None, (
            f"LPIPS left empty: its AlexNet trunk is unavailable ({info.detail.removeprefix('random initialisation: ')}), "
            "and a randomly initialised AlexNet would give meaningless numbers."
        )
    return LPIPSScorer(state), f"LPIPS (AlexNet, v0.1) from {info.detail}"


def load_decoder(path, extractor=None, layer: str = ""):
    """A trained decoder and its checkpoint; one with feedback stages queries `extractor` at `layer`."""
    checkpoint = torch.load(path, weights_only=False)
    channels, grid = checkpoint["feature_shape"][0], checkpoint["feature_shape"][1]
    settings = checkpoint["settings"]
    decoder = build_decoder(settings["decoder"], channels, grid, settings["width"], settings.get("depth"))
    if checkpoint["feedback"]:
        if extractor is None:
            raise ValueError(f"{path}: the decoder has feedback stages; load it with the layer's extractor.")
        decoder = FeedbackDecoder(decoder, channels, grid, checkpoint["feedback"])
        decoder.attach(layer_encoder(extractor, layer))
    decoder.load_state_dict(checkpoint["state_dict"])
    return decoder.eval(), checkpoint


def run(root, arch: str, layer: str, run: str = "", progress: bool = True) -> dict:
    """Evaluate one layer's run ("" its main run; a seed repeat or capacity-matched run by name)."""
    started = time.perf_counter()
    plan = planmod.load(root)
    store = load_store(plan.paths)
    feats, encoder = load_features(plan.paths, arch, layer)
    extractor = plan_extractor(plan.encoder(arch), [layer])
    if extractor.weights.kind != encoder["weights"]:
        raise RuntimeError(f"{arch} weights are {extractor.weights.kind} now but the cached features were encoded with "
                           f"{encoder['weights']} weights: delete {plan.paths.features_done(arch)} and rerun make.")
    plan.layer(arch, layer, run)  # one error for a run not in the plan
    out = plan.paths.layer_dir(arch, layer, run)
    decoder, checkpoint = load_decoder(planmod.require(out / "decoder.pt", "train"), extractor, layer)
    test_i = split_indices(store, "test")
    names = [store["names"][i] for i in test_i]
    scorer, lpips_note = lpips_scorer(plan.study.get("lpips", "auto"))
    evaluation = evaluate_decoder(decoder, extractor, layer, feats["features"][test_i],
                                  datamod.centre_crops(store, store["crop"], test_i), names,
                                  mean_image=checkpoint["mean_image"], match_steps=plan.study["match_steps"], lpips=scorer,
                                  device=checkpoint["settings"]["device"], baseline_errors=baselines.load(plan.paths, arch, layer),
                                  progress=progress)
    per_image = evaluation.per_image
    write_bytes(out / "metrics.csv", per_image.to_csv(index=False).encode())
    shown = np.linspace(0, len(test_i) - 1, min(SAMPLE_IMAGES, len(test_i))).round().astype(int)
    save_npz(out / "samples.npz", original=evaluation.target.to_uint8()[shown],
             reconstruction=evaluation.reconstructions.to_uint8()[shown],
             names=np.array(per_image["image"].iloc[shown], dtype=str), psnr=per_image["psnr"].iloc[shown].to_numpy())
    summary = result_record(arch, layer, checkpoint["settings"], checkpoint,
                            {"weights": encoder["weights"], "weights_detail": encoder["weights_detail"],
                             "encode_seconds": encoder["seconds"], "network": encoder["network"],
                             "normalisation": encoder["normalisation"]}, evaluation, lpips_note=lpips_note, run=run)
    summary["eval_seconds"] = round(time.perf_counter() - started, 2)
    summary["provenance"] = record()
    write_json(out / "summary.json", summary)
    print(f"{arch} {layer}{' ' + run if run else ''}: PSNR {summary['psnr_mean']:.2f} ± {summary['psnr_std']:.2f} dB, "
          f"SSIM {summary['ssim_mean']:.3f} (mean colour {summary['baseline_mean_colour_psnr']:.2f} dB, "
          f"thumbnail {summary['baseline_thumbnail_psnr']:.2f} dB) on {len(test_i)} test images")
    return {"summary": summary, "per_image": per_image}
