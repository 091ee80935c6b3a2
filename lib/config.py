"""Profiles: load, validate and resolve `parameters/<profile>.yaml` plus command-line overrides.

A profile names the data, the weights policy, the architectures and layers, and the training settings.
Training settings may be given at the top level, per architecture, and per layer (`per_layer`); the most
specific wins, and command-line overrides (`EPOCHS=2`, ...) win over all of them.

`python -m lib.config plan ...` is the Makefile's planning step: it validates everything, then writes the resolved
study to `reports/<profile>/plan.json` (the one settings file the steps read, through `lib.plan`), its slices under
`config/` *only when they changed*, so make re-runs exactly the targets whose settings changed, and `plan.mk`, the
architectures and layers to build, generated from it.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import PARAMETERS_DIR
from .io import write_if_changed
from .knobs import KNOBS, MakeVariableError, check_make_variables, parse_make_overrides
from .registry import NORMALISATIONS, UnknownNameError, check_layer, did_you_mean, get_architecture


class ProfileError(ValueError):
    """A profile or override that cannot be used, with a message that says how to fix it."""


DECODERS = ("resshuffle", "simple", "attention")
WEIGHT_POLICIES = ("auto", "imagenet", "random")

@dataclass(frozen=True)
class Field:
    """One setting: its type, its allowed values or lower bound, and what it does (for errors and `make help`)."""
    kind: type
    comment: str
    choices: tuple | None = None
    minimum: float | None = None
    default: Any = None  # a profile may leave out a setting with a default


TRAINING_KEYS: dict[str, Field] = {
    "decoder": Field(str, "decoder architecture", DECODERS),
    "epochs": Field(int, "training epochs", minimum=1),
    "batch_size": Field(int, "images per optimisation step", minimum=1),
    "lr": Field(float, "peak learning rate", minimum=0),
    "weight_decay": Field(float, "AdamW weight decay", minimum=0),
    "width": Field(int, "decoder channels at the feature grid", minimum=1),
    "schedule": Field(str, "cosine with warm-up, or the study's ReduceLROnPlateau", ("cosine", "plateau")),
    "checkpoint": Field(str, "decoder kept: lowest validation loss (the study's), or the last epoch", ("best", "last")),
    "device": Field(str, "where to train", ("auto", "cpu", "cuda")),
    "augment": Field(bool, "random crop + flip encoded on the fly (the study's); false: cached centre crops"),
    "feedback": Field(int, "feedback stages after the decoder, each fed the encoder's residual of the last output (0: none)", minimum=0),
    "feedback_epochs": Field(int, "epochs of each feedback stage, on the cached training features", minimum=1),
    "seeds": Field(int, "decoders trained per layer, from seeds seed, seed+1, ... (data, split and encoder fixed)",
                   minimum=1, default=1),
    "decoder_params": Field(int, "0: the decoder at `width`; n: its width (then depth) scaled to n parameters ± 10%",
                            minimum=0, default=0),
}
DATA_KEYS: dict[str, Field] = {
    "source": Field(str, "scikit-image's shipped photos, or DIV2K", ("skimage", "div2k")),
    "views_per_photo": Field(int, "256x256 views cut from each scikit-image photo", minimum=1),
    "test_photos": Field(int, "natural colour photos (scikit-image, matplotlib) held out for test", minimum=1),
    "val_photos": Field(int, "natural colour photos held out for validation", minimum=1),
    "val_images": Field(int, "DIV2K train images held out for validation", minimum=1),
    "div2k_dir": Field(str, "existing folder holding DIV2K_train_HR/ and DIV2K_valid_HR/: nothing is downloaded"),
    "download_dir": Field(str, "where DIV2K is downloaded and unzipped ('' = data/div2k in the repository; ~/.cache/feature-inversion/div2k "
                                 "for an installed copy)"),
    "mirrors": Field(list, "base URLs tried in order for the DIV2K archives"),
    "archives": Field(dict, "archive file -> {bytes, sha256}"),
    "limit": Field(int, "use at most this many images per split (0: all)", minimum=0),
    "resize": Field(int, "shorter side after bicubic resize", minimum=1),
    "crop": Field(int, "square crop fed to the encoder", minimum=1),
}
TOP_KEYS: dict[str, Field] = {
    "description": Field(str, "one line for the report"),
    "weights": Field(str, "auto: ImageNet if cached/downloadable else random", WEIGHT_POLICIES),
    "normalisation": Field(str, "the encoder's input mean/std: auto (the study's ImageNet mean/std for its three "
                                "networks, each other encoder's own) | imagenet | native", NORMALISATIONS),
    "seed": Field(int, "seed for splits, initialisation and batch order"),
    "lpips": Field(str, "LPIPS needs real AlexNet weights: auto (if available) | required", ("auto", "required", "off")),
    "match_steps": Field(int, "test-time feature-matching steps on each reconstruction, at 28x28 grids and finer (0: none)", minimum=0),
}
# an entry of `architectures` is a name for one encoder of the run; `arch:` names its network when they
# differ (the same network twice, e.g. with ImageNet and with random weights)
ARCH_KEYS = {"arch", "layers", "per_layer", "weights", "weights_file", "normalisation"}

KNOB_FIELDS = {**TRAINING_KEYS, **DATA_KEYS, **TOP_KEYS}


def _type_name(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list",
            dict: "a mapping"}[kind]


def _check_value(where: str, key: str, value: Any, field: Field) -> Any:
    kind, choices = field.kind, field.choices
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ProfileError(
            f"{where}: '{key}' must be {_type_name(kind)}, got {value!r} ({type(value).__name__})."
        )
    if choices is not None and value not in choices:
        raise ProfileError(
            f"{where}: '{key}' is {value!r}.{did_you_mean(value, choices)} Valid values: {', '.join(choices)}."
        )
    if kind is list and not all(isinstance(item, str) for item in value):
        raise ProfileError(f"{where}: '{key}' must be a list of strings, got {value!r}.")
    if kind is dict:
        for name, spec in value.items():
            if not isinstance(spec, dict) or set(spec) != {"bytes", "sha256"} or not isinstance(spec["bytes"], int) \
                    or not isinstance(spec["sha256"], str) or len(spec["sha256"]) != 64:
                raise ProfileError(f"{where}: '{key}' entry '{name}' must be {{bytes: <int>, sha256: <64 hex digits>}}.")
    if field.minimum is not None and value < field.minimum:
        bound = ("a positive integer" if kind is int and field.minimum == 1 else "non-negative" if field.minimum == 0
                 else f"at least {field.minimum:g}")
        raise ProfileError(f"{where}: '{key}' must be {bound}, got {value}.")
    return value


# settings that profiles once had, and why they went (an old profile gets this instead of "unknown parameter")
REMOVED_KEYS = {
    "colour_copies": "colour-jittered training copies existed to lift random-weight controls; no profile used them",
    "perceptual_weight": "the LPIPS training loss was an option no profile ran; decoders train on MSE",
}


def _check_keys(where: str, mapping: Any, schema: dict, extra: set[str] = frozenset()) -> dict:
    if not isinstance(mapping, dict):
        raise ProfileError(f"{where} must be a mapping of keys to values, got {type(mapping).__name__}.")
    out = {}
    for key, value in mapping.items():
        if key in extra:
            out[key] = value
            continue
        if key in REMOVED_KEYS:
            raise ProfileError(f"{where}: '{key}' was removed ({REMOVED_KEYS[key]}); delete it from the profile.")
        if key not in schema:
            valid = sorted(set(schema) | set(extra))
            raise ProfileError(
                f"{where}: unknown parameter '{key}'.{did_you_mean(key, valid)} Valid parameters: {', '.join(valid)}."
            )
        out[key] = _check_value(where, key, value, schema[key])
    return out


def profile_path(profile: str) -> Path:
    """A profile is a name in parameters/ or a path to a YAML file."""
    candidate = Path(profile)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.is_file():
            raise ProfileError(f"profile file '{profile}' does not exist.")
        return candidate.resolve()
    path = PARAMETERS_DIR / f"{profile}.yaml"
    if not path.is_file():
        names = available_profiles()
        raise ProfileError(
            f"unknown profile '{profile}'.{did_you_mean(profile, names)} "
            f"Valid profiles: {', '.join(names)} (files in {PARAMETERS_DIR})."
        )
    return path


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PARAMETERS_DIR.glob("*.yaml"))


def load_profile(profile: str) -> dict:
    """Read and validate a profile; returns the raw (validated) mapping."""
    path = profile_path(profile)
    where = path.name
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ProfileError(f"{where} is not valid YAML: {error}") from None
    top = _check_keys(where, raw or {}, {**TOP_KEYS, **TRAINING_KEYS}, extra={"data", "architectures", "capacity_sweep"})
    for required in ("data", "architectures", "weights", "seed"):
        if required not in top:
            raise ProfileError(f"{where}: missing required parameter '{required}'.")
    missing = [k for k, field in TRAINING_KEYS.items() if k not in top and field.default is None]
    if missing:
        raise ProfileError(f"{where}: missing top-level training defaults: {', '.join(missing)}.")
    for key, field in TRAINING_KEYS.items():
        top.setdefault(key, field.default)
    top["data"] = _check_keys(f"{where} data", top["data"], DATA_KEYS)
    resize, crop = top["data"].get("resize"), top["data"].get("crop")
    if resize is not None and crop is not None and resize < crop:  # a crop needs a resized image at least its size
        raise ProfileError(f"{where} data: 'resize' ({resize}) is smaller than 'crop' ({crop}): images are resized to "
                           f"{resize} px on their shorter side, then a {crop} x {crop} square is cut from them. "
                           f"Set resize to at least {crop}.")
    archs = top["architectures"]
    if not isinstance(archs, dict) or not archs:
        raise ProfileError(f"{where}: 'architectures' must map architecture names to their settings.")
    for name, settings in archs.items():
        settings = _check_keys(f"{where} {name}", settings or {}, TRAINING_KEYS, extra=ARCH_KEYS)
        arch = settings["arch"] = _check_value(f"{where} {name}", "arch", settings.get("arch", name),
                                               Field(str, "the network"))
        try:
            spec = get_architecture(arch)
        except UnknownNameError as error:
            raise ProfileError(f"{where}: {error}") from None
        layers = settings.get("layers", spec.layer_names)
        if not isinstance(layers, list) or not layers:
            raise ProfileError(f"{where} {name}: 'layers' must be a non-empty list.")
        for layer in layers:
            try:
                check_layer(arch, layer)
            except UnknownNameError as error:
                raise ProfileError(f"{where}: {error}") from None
        settings["layers"] = layers
        for key in ("weights", "normalisation"):
            if key in settings:
                settings[key] = _check_value(f"{where} {name}", key, settings[key], TOP_KEYS[key])
        if "weights_file" in settings:  # a local checkpoint instead of the torch / HF cache
            settings["weights_file"] = _check_value(f"{where} {name}", "weights_file", settings["weights_file"],
                                                    Field(str, "a local checkpoint"))
        per_layer = settings.get("per_layer") or {}
        for layer, values in per_layer.items():
            try:
                check_layer(arch, layer)
            except UnknownNameError as error:
                raise ProfileError(f"{where} {name} per_layer: {error}") from None
            per_layer[layer] = _check_keys(f"{where} {name} per_layer {layer}", values or {}, TRAINING_KEYS)
        settings["per_layer"] = per_layer
        archs[name] = settings
    if "capacity_sweep" in top:
        top["capacity_sweep"] = _check_sweep(f"{where} capacity_sweep", top["capacity_sweep"], archs)
    return top


def _check_sweep(where: str, sweep: Any, archs: dict) -> dict:
    """capacity_sweep: {decoder_params: n, layers: {architecture: [layer, ...]}}; layers left out: every layer."""
    sweep = _check_keys(where, sweep, {"decoder_params": Field(int, "the sweep's parameter budget", minimum=1)},
                        extra={"layers"})
    if "decoder_params" not in sweep:
        raise ProfileError(f"{where}: missing 'decoder_params' (the parameter count every layer's decoder is given).")
    layers = sweep.get("layers") or {name: settings["layers"] for name, settings in archs.items()}
    if not isinstance(layers, dict):
        raise ProfileError(f"{where}: 'layers' must map architectures of the profile to lists of their layers.")
    for name, names in layers.items():
        if name not in archs:
            raise ProfileError(f"{where}: '{name}' is not an architecture of the profile.{did_you_mean(name, archs)} "
                               f"Its architectures: {', '.join(archs)}.")
        if not isinstance(names, list) or not all(layer in archs[name]["layers"] for layer in names):
            raise ProfileError(f"{where}: {name} must list layers of the profile's {name}: "
                               f"{', '.join(archs[name]['layers'])}; got {names!r}.")
    return {"decoder_params": sweep["decoder_params"], "layers": layers}


def parse_overrides(pairs: dict[str, str], goals: list[str] | None = None) -> dict[str, Any]:
    """Turn the study's make-style KNOB=value strings into typed overrides, with errors naming the knob (or a
    variable none of `goals`, default `report`, takes)."""
    try:
        check_make_variables(goals or ["report"], list(pairs))
    except MakeVariableError as error:
        raise ProfileError(str(error)) from None
    out: dict[str, Any] = {}
    for name, text in pairs.items():
        if name not in KNOBS:
            continue
        key = KNOBS[name]
        text = str(text).strip()
        if text == "":
            continue
        if name in ("ARCH", "LAYERS"):
            value = [part for part in text.replace(",", " ").split() if part]
        else:
            field = KNOB_FIELDS[key]
            value = text
            if field.kind is int:
                try:
                    value = int(text)
                except ValueError:
                    raise ProfileError(f"{name} must be an integer, got '{text}'.") from None
            try:
                value = _check_value(name, key, value, field)
            except ProfileError as error:
                raise ProfileError(str(error).replace(f"{name}: '{key}'", name)) from None
        out[key] = value
    return out


def resolve(profile: str, overrides: dict[str, Any] | None = None, capacity_cache: dict | None = None,
            any_layer: bool = False) -> dict:
    """The fully resolved study: data settings and, per architecture, per-layer training settings and runs.
    `capacity_cache`: decoder sizes already matched (`_matched`), updated in place. `any_layer`: a layer that LAYERS
    names runs at its architecture's settings even where the profile's entry does not list it (a benchmark of one
    layer at a profile's settings)."""
    overrides = dict(overrides or {})
    raw = load_profile(profile)
    name = profile_path(profile).stem
    data = dict(raw["data"])
    if "limit" in overrides:
        data["limit"] = overrides["limit"]
    data.setdefault("limit", 0)
    if overrides.get("div2k_dir"):
        if data["source"] != "div2k":  # it would be ignored: refuse rather than pretend
            raise ProfileError(f"DIV2K_DIR={overrides['div2k_dir']}: profile '{name}' does not read DIV2K (its data "
                               f"source is '{data['source']}'), so the folder would never be used. Leave DIV2K_DIR "
                               "out, or use it with a DIV2K profile: make report PROFILE=paper DIV2K_DIR=...")
        data["div2k_dir"] = overrides["div2k_dir"]
    archs = dict(raw["architectures"])
    wanted_archs = overrides.get("arch") or list(archs)
    for arch in wanted_archs:
        if arch not in archs:  # any network by name (a timm model too), at the profile's defaults, every layer
            try:
                archs[arch] = {"arch": arch, "layers": get_architecture(arch).layer_names, "per_layer": {}}
            except UnknownNameError as error:
                raise ProfileError(f"ARCH: {error} Profile '{name}' has: {', '.join(archs)}.") from None
    wanted_layers = overrides.get("layers")
    if wanted_layers:
        known = {layer for arch in wanted_archs for layer in get_architecture(archs[arch]["arch"]).layers}
        for layer in wanted_layers:
            if layer not in known:
                valid = sorted(known)
                raise ProfileError(
                    f"LAYERS: unknown layer '{layer}' for {', '.join(wanted_archs)}.{did_you_mean(layer, valid)} "
                    f"Valid layers: {', '.join(valid)}."
                )
    knob_values = {k: overrides[k] for k in ("epochs", "batch_size", "decoder", "width", "seeds", "decoder_params",
                                             "feedback") if k in overrides}
    resolved_archs = {}
    for arch in wanted_archs:
        settings = archs[arch]
        layers = [l for l in settings["layers"] if not wanted_layers or l in wanted_layers]
        if any_layer and wanted_layers:
            network_layers = get_architecture(settings["arch"]).layers
            layers = [l for l in wanted_layers if l in network_layers]
        if not layers:
            continue
        arch_defaults = {k: settings.get(k, raw[k]) for k in TRAINING_KEYS}
        per_layer = {}
        for layer in layers:
            per_layer[layer] = {**arch_defaults, **settings["per_layer"].get(layer, {}), **knob_values}
        resolved_archs[arch] = {
            "arch": settings["arch"],
            "weights": settings.get("weights", raw["weights"]),
            "weights_file": settings.get("weights_file", ""),
            "normalisation": overrides.get("normalisation") or settings.get("normalisation", raw.get("normalisation", "auto")),
            "layers": per_layer,
            # every layer of the profile's entry is encoded, whatever LAYERS= narrows the run to, so a later, wider
            # run finds its features. Not in the encoder's slice: narrowing must not re-encode (and so retrain) it
            "encode_layers": list(settings["layers"]),
        }
    if not resolved_archs:
        raise ProfileError(f"LAYERS: none of {', '.join(wanted_layers)} belongs to {', '.join(wanted_archs)}.")
    study = {
        "profile": name,
        "description": raw.get("description", ""),
        "seed": raw["seed"],
        "lpips": raw.get("lpips", "auto"),
        "match_steps": overrides.get("match_steps", raw.get("match_steps", 0)),
        "data": data,
        "architectures": resolved_archs,
    }
    plan_runs(study, raw.get("capacity_sweep"), "DECODER_PARAMS" if "decoder_params" in overrides else "decoder_params",
              capacity_cache)
    return study


@functools.lru_cache(maxsize=None)
def _decoders_source() -> str:
    """A digest of lib/decoders.py: matched sizes are remembered only for the decoders that gave them."""
    return hashlib.sha256((Path(__file__).parent / "decoders.py").read_bytes()).hexdigest()[:16]


def _matched(decoder: str, channels: int, grid: int, target: int, width: int, feedback: int, cache: dict) -> dict:
    """`decoders.match_capacity`, remembered in `cache` (the plan step keeps it in config/capacity.json, keyed by
    the decoders' source too): the plan runs on every make call, and this saves it importing torch each time."""
    key = f"{_decoders_source()} {decoder} {channels} {grid} {target} {width} {feedback}"
    if key not in cache:
        from .decoders import CapacityError, match_capacity  # torch: only when a count is new

        try:
            found = match_capacity(decoder, channels, grid, target, width=width, feedback=feedback)
            cache[key] = dict(zip(("width", "depth", "count"), found))
        except CapacityError as error:
            cache[key] = {"error": str(error), "nearest": error.nearest}
    return cache[key]


def _capacity(arch: str, network: str, layer: str, settings: dict, target: int, knob: str, cache: dict) -> dict:
    """`settings` with the width and depth that give `target` decoder parameters, or one error naming the layer."""
    channels, grid, _ = get_architecture(network).layers[layer]
    found = _matched(settings["decoder"], channels, grid, target, settings["width"], settings["feedback"], cache)
    if "error" in found:
        stages = settings["feedback"]
        raise ProfileError(f"{knob}={target}: {arch} {layer} ({channels}x{grid}x{grid} features, {settings['decoder']} "
                           f"decoder, {stages} feedback stage{'s' * (stages != 1)}): {found['error']}. Choose a count "
                           f"nearer {found['nearest']:,}, or leave this layer out (ARCH=, LAYERS=).")
    width, depth = found["width"], found["depth"]
    # depth only where it is not the decoder's default: a default run's settings (and so its slice) stay as they were
    return {**settings, "width": width, **({"depth": depth} if depth else {}), "decoder_params": target}


def plan_runs(study: dict, sweep: dict | None, knob: str, cache: dict | None = None) -> None:
    """Expand the study into runs: each layer's main run (its settings in `layers`, seed `seed`, capacity-matched
    where `decoder_params` asks), its seed repeats (`seeds` > 1: seeds seed+1, ...; data, split and encoder stay
    fixed) and its capacity-sweep run, in `runs`: layer -> {run name: settings}, where a run's files live
    (`<arch>/<layer>/<run>/`). A sweep run whose decoder is the main run's (a default decoder already within the
    tolerance) is the main run: `capacity_sweep.runs` names, per layer, the run that answers the sweep ("" main)."""
    seed, cache = study["seed"], {} if cache is None else cache
    sweep_runs = {}
    for arch, settings in study["architectures"].items():
        runs = {}
        for layer, values in settings["layers"].items():
            # `seeds` is how many runs there are, not how one trains: it becomes the runs, never a run's setting
            seeds = values.pop("seeds")
            values = {**values, "seed": seed}
            if values["decoder_params"]:
                values = _capacity(arch, settings["arch"], layer, values, values["decoder_params"], knob, cache)
            else:  # the default decoder: its settings as they were before capacity matching existed
                del values["decoder_params"]
            settings["layers"][layer] = values
            runs[layer] = {f"seed{seed + k}": {**values, "seed": seed + k} for k in range(1, seeds)}
            if sweep and layer in sweep["layers"].get(arch, []):
                target = sweep["decoder_params"]
                matched = _capacity(arch, settings["arch"], layer, values, target, "capacity_sweep decoder_params", cache)
                same = (matched["width"], matched.get("depth")) == (values["width"], values.get("depth"))
                name = "" if same else f"params{target}"
                if not same:
                    runs[layer][name] = matched
                sweep_runs.setdefault(arch, {})[layer] = name
        settings["runs"] = runs
    if sweep:
        study["capacity_sweep"] = {"decoder_params": sweep["decoder_params"], "runs": sweep_runs}


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


# Goals that build no summary: a call naming only these (`make invert LAYERS=...`, `make train ARCH=...`) may
# narrow plan.json, but leaves the figures' slice alone, so the next plain `make report` re-runs nothing.
NON_SUMMARY_GOALS = {"plan", "fetch", "data", "encode", "train", "evaluate", "invert", "invert-images"}


def summarises(goals: list[str]) -> bool:
    """Whether a make call with these goals builds the summary (figures, report): the default goal does."""
    return not goals or not all(goal in NON_SUMMARY_GOALS for goal in goals)


def write_plan(study: dict, out_dir: Path, summary: bool = True) -> list[str]:
    """Write plan.json, the one resolved settings file every step reads (`lib.plan`); the slices of it that make
    depends on (config/: a layer's settings, an architecture's encoder, the data, the study-wide settings and, when
    `summary` (the call builds the figures), what the figures summarise: the layers and runs), each rewritten only
    when it changes so make re-runs exactly what a change touches; and plan.mk, generated from it. Returns the
    slices that changed."""
    config = out_dir / "config"
    changed = []
    files = {
        config / "data.json": {"profile": study["profile"], "seed": study["seed"], **study["data"]},
        config / "study.json": {k: study[k] for k in ("profile", "description", "seed", "lpips", "match_steps")},
    }
    for arch, settings in study["architectures"].items():
        # Encoding depends on the weights only; training on the per-layer settings only.
        files[config / arch / "encoder.json"] = {"name": arch, "arch": settings["arch"], "weights": settings["weights"],
                                                 "weights_file": settings["weights_file"],
                                                 "normalisation": settings["normalisation"], "seed": study["seed"]}
        for layer, values in settings["layers"].items():
            files[config / arch / f"{layer}.json"] = {"arch": arch, "layer": layer, **values}
            for run, run_values in settings["runs"][layer].items():
                files[config / arch / layer / f"{run}.json"] = {"arch": arch, "layer": layer, **run_values}
    if summary:  # what the figures summarise: which layers and runs (their settings are the layer slices')
        files[config / "figures.json"] = {
            "profile": study["profile"], "seed": study["seed"], "capacity_sweep": study.get("capacity_sweep"),
            "architectures": {arch: {"arch": s["arch"], "layers": list(s["layers"]),
                                     "runs": {layer: list(runs) for layer, runs in s["runs"].items()}}
                              for arch, s in study["architectures"].items()}}
    for path, obj in files.items():
        if write_if_changed(path, _dump(obj)):
            changed.append(str(path))
    # in the profile's order, not sorted: layers run shallow to deep, and the summary and depth steps follow it
    write_if_changed(out_dir / "plan.json", json.dumps(study, indent=2) + "\n")
    lines = [f"# Generated from plan.json by `python -m lib.config plan` (profile {study['profile']}); do not edit.",
             f"ARCHS := {' '.join(study['architectures'])}"]
    for arch, settings in study["architectures"].items():
        lines.append(f"LAYERS_{arch} := {' '.join(settings['layers'])}")
        # each layer's runs beyond its main one: seed repeats, a capacity-matched decoder
        lines += [f"RUNS_{arch}_{layer} := {' '.join(runs)}" for layer, runs in settings["runs"].items() if runs]
    write_if_changed(out_dir / "plan.mk", "\n".join(lines) + "\n")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.config", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="validate a profile + overrides and write reports/<profile>/plan.json")
    plan.add_argument("--profile", default="")
    plan.add_argument("--root", required=True, help="the study's folder, reports/<profile>")
    plan.add_argument("--overrides", default="", help="make's $(MAKEOVERRIDES): NAME=value words")
    plan.add_argument("--goals", default="", help="make's $(MAKECMDGOALS): which variables apply")
    sub.add_parser("profiles", help="list the profiles")
    args = parser.parse_args(argv)
    if args.command == "profiles":
        print("\n".join(available_profiles()))
        return 0
    try:
        if not args.profile.strip():
            raise ProfileError(f"PROFILE is empty: name a profile ({', '.join(available_profiles())}) or a YAML "
                               "file, e.g. make report PROFILE=demo, or leave PROFILE out for the demo.")
        overrides = parse_overrides(parse_make_overrides(args.overrides), args.goals.split())
        cache_file = Path(args.root) / "config" / "capacity.json"
        cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
        study = resolve(args.profile, overrides, cache)
    except (ProfileError, UnknownNameError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        changed = write_plan(study, Path(args.root), summarises(args.goals.split()))
        write_if_changed(cache_file, _dump(cache))
    except OSError as error:  # a read-only or full reports folder: say where, before any step runs
        print(f"error: cannot write the study's files under {args.root}: {error.strerror or error} "
              f"({error.filename or args.root}). Choose a writable folder with REPORTS=path, or make this one "
              "writable.", file=sys.stderr)
        return 2
    for path in changed:
        print(f"settings changed: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
