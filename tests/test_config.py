import json
import os
import subprocess

import pytest
import yaml

from lib import ROOT, config
from lib.registry import all_layers
from lib.config import ProfileError


def write_profile(tmp_path, mutate, name="custom"):
    raw = yaml.safe_load((config.PARAMETERS_DIR / "tiny.yaml").read_text())
    mutate(raw)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.mark.parametrize("profile", ["demo", "paper", "tiny"])
def test_shipped_profiles_validate(profile):
    study = config.resolve(profile)
    assert study["profile"] == profile
    assert sum(len(a["layers"]) for a in study["architectures"].values()) >= 4


def test_demo_and_paper_cover_the_studys_14_layers_and_efficientnet_lite0_learned_and_random():
    for profile in ("demo", "paper"):
        archs = config.resolve(profile)["architectures"]
        study = {(a["arch"], layer) for a in archs.values() for layer in a["layers"] if a["arch"] != "efficientnet_lite0"}
        assert study == set(all_layers())
        assert archs["efficientnet_lite0"]["weights"] == "imagenet" and archs["efficientnet_lite0_random"]["weights"] == "random"
        assert list(archs["efficientnet_lite0"]["layers"]) == list(archs["efficientnet_lite0_random"]["layers"]) == [
            f"stage{i}" for i in range(5)]
        assert {a["normalisation"] for a in archs.values()} == {"auto"}
    assert list(config.resolve("demo")["architectures"])[0] == "efficientnet_lite0"  # the report opens with it


def test_any_network_by_name_joins_a_profile_at_its_defaults():
    study = config.resolve("tiny", config.parse_overrides({"ARCH": "resnet18", "LAYERS": "stage2"}))
    entry = study["architectures"]["resnet18"]
    assert entry["arch"] == "resnet18" and list(entry["layers"]) == ["stage2"] and entry["weights"] == "random"
    assert entry["layers"]["stage2"]["epochs"] == config.load_profile("tiny")["epochs"]
    twin = config.resolve("tiny", config.parse_overrides({"ARCH": "efficientnet_lite0_random"}))["architectures"]
    assert twin == {"efficientnet_lite0_random": twin["efficientnet_lite0_random"]}
    assert twin["efficientnet_lite0_random"]["arch"] == "efficientnet_lite0"


def test_normalisation_is_a_checked_profile_key(tmp_path):
    text = (ROOT / "parameters" / "tiny.yaml").read_text()
    path = tmp_path / "n.yaml"
    path.write_text(text.replace("normalisation: auto", "normalisation: nativ"))
    with pytest.raises(ProfileError, match="'normalisation' is 'nativ'. Did you mean 'native'"):
        config.resolve(str(path))
    path.write_text(text.replace("normalisation: auto", "normalisation: native"))
    assert {a["normalisation"] for a in config.resolve(str(path))["architectures"].values()} == {"native"}
    # NORMALISATION= on the command line overrides every encoder's
    study = config.resolve("tiny", config.parse_overrides({"NORMALISATION": "imagenet"}))
    assert {a["normalisation"] for a in study["architectures"].values()} == {"imagenet"}
    with pytest.raises(ProfileError, match="NORMALISATION is 'imagnet'. Did you mean 'imagenet'"):
        config.parse_overrides({"NORMALISATION": "imagnet"})


def test_paper_profile_is_the_studys_protocol():
    study = config.resolve("paper")
    assert study["data"]["source"] == "div2k" and study["data"]["val_images"] == 160
    assert study["seed"] == 42 and study["data"]["resize"] == 256 and study["data"]["crop"] == 224
    layer = study["architectures"]["resnet34"]["layers"]["layer1"]
    assert layer["epochs"] == 30 and layer["batch_size"] == 8
    # ImageNet weights everywhere but the EfficientNet-Lite0 control
    assert {name: a["weights"] for name, a in study["architectures"].items() if a["weights"] != "imagenet"} == {
        "efficientnet_lite0_random": "random"}


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ProfileError, match=r"unknown profile 'demoo'. Did you mean 'demo'\? Valid profiles: demo, paper, tiny"):
        config.resolve("demoo")


def test_misspelt_parameter_is_named_with_a_suggestion(tmp_path):
    path = write_profile(tmp_path, lambda raw: raw.update(epoch=3))
    with pytest.raises(ProfileError, match=r"unknown parameter 'epoch'. Did you mean 'epochs'\?"):
        config.resolve(path)


def test_misspelt_data_parameter(tmp_path):
    path = write_profile(tmp_path, lambda raw: raw["data"].update(views_per_foto=3))
    with pytest.raises(ProfileError, match=r"data: unknown parameter 'views_per_foto'. Did you mean 'views_per_photo'"):
        config.resolve(path)


@pytest.mark.parametrize(
    "key,value,expected",
    [("epochs", "ten", "'epochs' must be an integer, got 'ten'"),
     ("lr", "fast", "'lr' must be a number"),
     ("epochs", True, "'epochs' must be an integer, got True"),
     ("decoder", "unet", "'decoder' is 'unet'"),
     ("batch_size", 0, "'batch_size' must be a positive integer"),
     ("decoder_params", 1.5, "'decoder_params' must be an integer"),
     ("feedback", -1, "'feedback' must be non-negative"),
     ("feedback_epochs", 0, "'feedback_epochs' must be a positive integer")],
)
def test_ill_typed_parameter_names_key_and_type(tmp_path, key, value, expected):
    path = write_profile(tmp_path, lambda raw: raw.update({key: value}))
    with pytest.raises(ProfileError, match=expected):
        config.resolve(path)


def test_unknown_architecture_and_layer_in_profile(tmp_path):
    path = write_profile(tmp_path, lambda raw: raw["architectures"].update(resnet61={"layers": ["layer1"]}))
    with pytest.raises(ProfileError, match="unknown architecture 'resnet61'.*Valid architectures: resnet34, vgg16, vit_base_patch16_224, "
                                           "efficientnet_lite0, or any timm model name"):
        config.resolve(path)
    path = write_profile(tmp_path, lambda raw: raw["architectures"]["vgg16"].update(layers=["block6"]))
    with pytest.raises(ProfileError, match="unknown layer 'block6' for architecture 'vgg16'.*block1, block2, block3, block4, block5"):
        config.resolve(path)


def test_settings_precedence_layer_over_arch_over_top_and_command_line_over_all(tmp_path):
    def mutate(raw):
        raw["epochs"] = 3
        raw["architectures"]["resnet34"]["epochs"] = 5
        raw["architectures"]["resnet34"]["per_layer"] = {"layer4": {"epochs": 7}}

    path = write_profile(tmp_path, mutate)
    archs = config.resolve(path)["architectures"]
    assert archs["resnet34"]["layers"]["layer1"]["epochs"] == 5
    assert archs["resnet34"]["layers"]["layer4"]["epochs"] == 7
    assert archs["vgg16"]["layers"]["block5"]["epochs"] == 3
    archs = config.resolve(path, {"epochs": 2})["architectures"]
    assert {v["epochs"] for a in archs.values() for v in a["layers"].values()} == {2}


@pytest.mark.parametrize(
    "words,expected",
    [({"EPOCH": "3"}, "unknown setting 'EPOCH'. Did you mean 'EPOCHS'"),
     ({"EPOCHS": "x"}, "EPOCHS must be an integer, got 'x'"),
     ({"BATCH_SIZE": "0"}, "BATCH_SIZE must be a positive integer"),
     ({"DECODER": "unet"}, "DECODER is 'unet'.*Valid values: resshuffle, simple, attention"),
     ({"MATCH": "-1"}, "MATCH must be non-negative, got -1"),
     ({"COPIES": "8"}, "COPIES does not apply to `make report`: it is a setting of bench-colour"),
     ({"ARCH": "resnet"}, "unknown architecture 'resnet'. Did you mean 'resnet34'")],
)
def test_command_line_knobs_are_validated(words, expected):
    with pytest.raises(ProfileError, match=expected):  # ARCH against the profile's encoders and every network
        config.resolve("demo", config.parse_overrides(words))


def test_arch_and_layers_narrow_the_study():
    study = config.resolve("demo", config.parse_overrides({"ARCH": "resnet34,vgg16", "LAYERS": "layer2 block5"}))
    assert {a: list(v["layers"]) for a, v in study["architectures"].items()} == {"resnet34": ["layer2"], "vgg16": ["block5"]}
    with pytest.raises(ProfileError, match="LAYERS: unknown layer 'block0' for resnet34"):
        config.resolve("demo", config.parse_overrides({"ARCH": "resnet34", "LAYERS": "block0"}))


def test_plan_rewrites_only_changed_settings(tmp_path):
    study = config.resolve("tiny")
    out = tmp_path / "tiny"
    first = config.write_plan(study, out)
    assert any(p.endswith("resnet34/layer1.json") for p in first)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.json")}
    assert config.write_plan(study, out) == []
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.json")} == stamps
    study["architectures"]["vgg16"]["layers"]["block5"]["epochs"] = 9
    changed = config.write_plan(study, out)
    assert changed == [str(out / "config" / "vgg16" / "block5.json")]
    assert json.loads((out / "config" / "vgg16" / "block5.json").read_text())["epochs"] == 9


def test_plan_cli_reports_errors_without_writing(tmp_path, capsys):
    code = config.main(["plan", "--profile", "nope", "--root", str(tmp_path / "nope")])
    assert code == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_plan_json_is_the_one_resolved_study_and_its_slices_agree(tmp_path):
    from lib import plan

    study = config.resolve("tiny", config.parse_overrides({"EPOCHS": "3"}))
    config.write_plan(study, tmp_path / "tiny")
    loaded = plan.load(tmp_path / "tiny")
    assert loaded.study == json.loads(json.dumps(study))  # plan.json: the resolved study, nothing else
    for arch, layer in loaded.layers():
        on_disk = json.loads((tmp_path / "tiny" / "config" / arch / f"{layer}.json").read_text())
        assert loaded.layer(arch, layer) == on_disk and on_disk["epochs"] == 3
    assert (tmp_path / "tiny" / "plan.mk").read_text().count("LAYERS_") == len(loaded.architectures)
    with pytest.raises(ValueError, match="layer 'block1' of vgg16 is not in this run"):
        loaded.layer("vgg16", "block1")


def test_plan_json_keeps_the_profiles_network_order(tmp_path):
    """Layers run shallow to deep as the profile lists them (block11 after block8), never sorted by name: the summary
    and the depth comparisons follow this order."""
    from lib import plan

    config.write_plan(config.resolve("demo"), tmp_path / "demo")
    loaded = plan.load(tmp_path / "demo")
    assert list(loaded.architectures) == ["efficientnet_lite0", "efficientnet_lite0_random", "resnet34", "vgg16",
                                          "vit_base_patch16_224"]
    assert list(loaded.architectures["vit_base_patch16_224"]["layers"]) == ["block0", "block1", "block5", "block8", "block11"]


def test_a_step_names_the_make_target_of_a_missing_input(tmp_path):
    from lib import plan

    with pytest.raises(plan.MissingInputError, match=r"plan.json is missing: build it with `make plan`"):
        plan.load(tmp_path / "tiny")


def test_make_variables_are_checked_per_goal():
    from lib import knobs

    knobs.check_make_variables(["bench-colour"], ["COPIES", "ARCH", "PROFILE"])
    knobs.check_make_variables(["report", "bench-colour"], ["COPIES", "EPOCHS"])  # each taken by one goal
    with pytest.raises(knobs.MakeVariableError, match="MINUTES does not apply to `make report`"):
        knobs.check_make_variables(["report"], ["MINUTES"])
    with pytest.raises(knobs.MakeVariableError, match="unknown setting 'COPEIS'. Did you mean 'COPIES'"):
        knobs.check_make_variables(["bench-colour"], ["COPEIS"])


def test_profile_fields_carry_their_own_bounds(tmp_path):
    raw = yaml.safe_load((config.PARAMETERS_DIR / "tiny.yaml").read_text())
    for key, value, message in (("feedback", -1, "'feedback' must be non-negative"), ("epochs", 0, "'epochs' must be a positive integer"),
                                ("lr", -0.1, "'lr' must be non-negative")):
        path = tmp_path / f"{key}.yaml"
        path.write_text(yaml.safe_dump({**raw, key: value}))
        with pytest.raises(ProfileError, match=message):
            config.load_profile(str(path))


def _built(study, arch, layer, settings):
    """The parameter count of the decoder a run's settings build (meta device: nothing allocated)."""
    from lib.decoders import decoder_size
    from lib.registry import get_architecture

    channels, grid, _ = get_architecture(study["architectures"][arch]["arch"]).layers[layer]
    return decoder_size(settings["decoder"], channels, grid, settings["width"], settings.get("depth"), settings["feedback"])


def test_decoder_params_scales_every_layers_decoder_to_the_count():
    study = config.resolve("tiny", config.parse_overrides({"DECODER_PARAMS": "1500000"}))
    counts = {}
    for arch, settings in study["architectures"].items():
        for layer, values in settings["layers"].items():
            counts[(arch, layer)] = _built(study, arch, layer, values)
            assert values["decoder_params"] == 1_500_000
    assert all(abs(n - 1_500_000) <= 150_000 for n in counts.values()), counts
    # the defaults differ by layer (0.47M to 1.0M on tiny): matching changed their widths
    default = config.resolve("tiny")
    widths = {(a, l): v["width"] for a, s in study["architectures"].items() for l, v in s["layers"].items()}
    assert len(set(widths.values())) > 1 and all(v["width"] == 32 for s in default["architectures"].values()
                                                 for v in s["layers"].values())


def test_a_decoder_params_no_width_can_meet_names_the_layer_and_the_nearest_count():
    # tiny's decoders carry a feedback stage of fixed size: no width brings EfficientNet-Lite0 stage4 to 100,000
    with pytest.raises(ProfileError, match=r"DECODER_PARAMS=100000: efficientnet_lite0 stage4 \(320x7x7 features.*"
                                           r"the nearest is [\d,]+.*Choose a count nearer [\d,]+"):
        config.resolve("tiny", config.parse_overrides({"DECODER_PARAMS": "100000"}))
    with pytest.raises(ProfileError, match="DECODER_PARAMS must be non-negative"):
        config.resolve("tiny", config.parse_overrides({"DECODER_PARAMS": "-5"}))


@pytest.mark.parametrize("value,expected", [("0", "SEEDS must be a positive integer, got 0"),
                                            ("two", "SEEDS must be an integer, got 'two'")])
def test_seeds_below_one_is_one_clear_error(value, expected):
    with pytest.raises(ProfileError, match=expected):
        config.resolve("tiny", config.parse_overrides({"SEEDS": value}))


def test_seeds_become_runs_whose_slices_differ_only_by_seed(tmp_path):
    from lib import plan

    out = tmp_path / "tiny"
    config.write_plan(config.resolve("tiny", config.parse_overrides({"SEEDS": "1"})), out)
    main = {p: p.read_bytes() for p in (out / "config").glob("*/*.json")}
    changed = config.write_plan(config.resolve("tiny", config.parse_overrides({"SEEDS": "3"})), out)
    # more seeds add runs; the main runs' settings (and so their decoders) stay as they were
    assert {p: p.read_bytes() for p in (out / "config").glob("*/*.json")} == main
    figures = str(out / "config" / "figures.json")  # lists the runs the figures summarise: new runs, new list
    assert figures in changed
    changed.remove(figures)
    assert all("/seed4" in p for p in changed) and len(changed) == 2 * len(plan.load(out).layers())
    loaded = plan.load(out)
    for arch, layer in loaded.layers():
        runs = loaded.runs(arch, layer)
        assert [r for r in runs if r.startswith("seed")] == ["seed43", "seed44"]
        for run in ("seed43", "seed44"):
            settings = loaded.layer(arch, layer, run)
            assert settings == {**loaded.layer(arch, layer), "seed": int(run[4:])}
            assert json.loads((out / "config" / arch / layer / f"{run}.json").read_text()) == settings
    assert "RUNS_vgg16_block5 := seed43 seed44 params900000" in (out / "plan.mk").read_text()
    with pytest.raises(ValueError, match="run 'seed45' of vgg16 block5 is not in this run"):
        loaded.layer("vgg16", "block5", "seed45")


def test_capacity_sweep_retrains_only_layers_whose_default_is_not_already_that_size(tmp_path):
    def sweep(raw, n):
        raw["capacity_sweep"] = {"decoder_params": n, "layers": {"resnet34": ["layer1", "layer4"]}}
    # layer4's default decoder (660,550 parameters) is within 10% of 700,000: its main run serves the sweep
    study = config.resolve(write_profile(tmp_path, lambda raw: sweep(raw, 700_000)))
    assert study["capacity_sweep"] == {"decoder_params": 700_000,
                                       "runs": {"resnet34": {"layer1": "params700000", "layer4": ""}}}
    matched = study["architectures"]["resnet34"]["runs"]["layer1"]["params700000"]
    assert abs(_built(study, "resnet34", "layer1", matched) - 700_000) <= 70_000
    assert "params700000" not in study["architectures"]["resnet34"]["runs"]["layer4"]


@pytest.mark.parametrize(
    "sweep,expected",
    [({"layers": {"resnet34": ["layer1"]}}, "missing 'decoder_params'"),
     ({"decoder_params": 10**6, "layers": {"resnet35": ["layer1"]}}, "'resnet35' is not an architecture of the profile"),
     ({"decoder_params": 10**6, "layers": {"resnet34": ["layer2"]}}, "resnet34 must list layers of the profile's resnet34"),
     ({"decoder_params": "many"}, "'decoder_params' must be an integer"),
     ({"decoder_params": 10**6, "budget": 3}, "unknown parameter 'budget'")],
)
def test_bad_capacity_sweep_is_one_clear_error(tmp_path, sweep, expected):
    path = write_profile(tmp_path, lambda raw: raw.update(capacity_sweep=sweep))
    with pytest.raises(ProfileError, match=expected):
        config.resolve(path)


def test_narrowing_layers_leaves_the_encoder_slice_as_it_is(tmp_path):
    """Every layer of the profile is encoded whatever LAYERS= narrows to, so a narrow run followed by a wider one
    (`make invert LAYERS=layer4`, then `LAYERS=layer1`) finds its features without a re-encode."""
    from lib import plan

    out = tmp_path / "tiny"
    config.write_plan(config.resolve("tiny"), out)
    encoder = (out / "config" / "resnet34" / "encoder.json").read_bytes()
    changed = config.write_plan(config.resolve("tiny", config.parse_overrides({"ARCH": "resnet34", "LAYERS": "layer4"})), out)
    assert str(out / "config" / "resnet34" / "encoder.json") not in changed
    assert (out / "config" / "resnet34" / "encoder.json").read_bytes() == encoder
    narrowed = plan.load(out)
    assert narrowed.layers() == [("resnet34", "layer4")]
    assert narrowed.architectures["resnet34"]["encode_layers"] == ["layer1", "layer4"]  # what the encode step writes


def test_div2k_dir_reaches_a_div2k_profile_and_is_refused_where_it_would_be_ignored(tmp_path, capsys):
    study = config.resolve("paper", config.parse_overrides({"DIV2K_DIR": "/data/div2k", "ARCH": "resnet34"}))
    assert study["data"]["div2k_dir"] == "/data/div2k"  # the environment reaches the study only as an override
    code = config.main(["plan", "--profile", "tiny", "--root", str(tmp_path / "tiny"), "--overrides", "DIV2K_DIR=x"])
    assert code == 2
    assert "DIV2K_DIR=x: profile 'tiny' does not read DIV2K (its data source is 'skimage')" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no slice rewritten: `make -n report PROFILE=tiny DIV2K_DIR=x` plans nothing


def test_resize_smaller_than_crop_is_refused(tmp_path):
    path = write_profile(tmp_path, lambda raw: raw["data"].update(resize=200, crop=224))
    with pytest.raises(ProfileError, match=r"'resize' \(200\) is smaller than 'crop' \(224\).*Set resize to at least 224"):
        config.resolve(path)


def test_an_empty_profile_is_one_error_naming_the_profiles(tmp_path, capsys):
    assert config.main(["plan", "--profile", "", "--root", str(tmp_path / "x")]) == 2
    assert "PROFILE is empty: name a profile (demo, paper, tiny)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_reports_folder_is_one_error_naming_it(tmp_path, capsys, monkeypatch):
    """Root ignores permission bits, so the refusal is simulated where the plan step writes: the error names the
    folder and the fix (REPORTS=), not a traceback."""
    def refuse(path, text):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(config, "write_if_changed", refuse)
    assert config.main(["plan", "--profile", "tiny", "--root", str(tmp_path / "tiny")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write the study's files under {tmp_path / 'tiny'}: Permission denied")
    assert "REPORTS=path" in err and "Traceback" not in err


def test_a_narrowed_call_that_builds_no_summary_leaves_the_figures_slice_alone(tmp_path):
    """`make invert ARCH=... LAYERS=...` narrows plan.json, but not config/figures.json, which the figures step
    depends on: the next plain `make report` re-runs nothing."""
    out = tmp_path / "tiny"
    config.write_plan(config.resolve("tiny"), out, config.summarises([]))
    figures = (out / "config" / "figures.json").read_bytes()
    narrowed = config.resolve("tiny", config.parse_overrides({"ARCH": "resnet34", "LAYERS": "layer4"}, ["invert"]))
    assert not config.summarises(["invert"]) and not config.summarises(["train", "evaluate"])
    assert config.write_plan(narrowed, out, config.summarises(["invert"])) == []
    assert (out / "config" / "figures.json").read_bytes() == figures
    assert json.loads((out / "plan.json").read_text())["architectures"].keys() == {"resnet34"}
    # a call that builds the summary narrows the figures too
    assert config.summarises(["report"]) and config.summarises(["invert", "figures"])
    assert str(out / "config" / "figures.json") in config.write_plan(narrowed, out, config.summarises(["report"]))


@pytest.mark.parametrize("variable,value,message", [
    ("JOBS", "0", "JOBS=0: the number of parallel jobs must be a positive integer"),
    ("JOBS", "abc", "JOBS=abc: the number of parallel jobs must be a positive integer"),
    ("JOBS", "", "JOBS=: the number of parallel jobs must be a positive integer"),
    ("GPUS", "two", "GPUS=two: the number of GPUs to share must be a non-negative integer"),
    ("PROFILE", "", "PROFILE is empty: name a profile (demo paper tiny)"),
])
def test_make_refuses_a_count_that_is_not_one_before_anything_runs(tmp_path, variable, value, message):
    """Once, JOBS=0 and JOBS=abc ran: bash printed a division error, OMP_NUM_THREADS was empty, make exited 0."""
    done = subprocess.run(["make", "--no-print-directory", "report", f"{variable}={value}", f"REPORTS={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "MAKEFLAGS": ""})
    assert done.returncode != 0 and message in done.stderr, done.stderr
    assert done.stderr.count("***") == 1 and list(tmp_path.iterdir()) == []


def test_an_unwritable_state_folder_is_one_error_naming_it(tmp_path, capsys):
    """make's generated prerequisites go to $(REPORTS)/.make for an installed copy: an unwritable REPORTS is one error."""
    from lib import deps

    (tmp_path / "file").write_text("")
    assert deps.main([str(tmp_path / "file" / ".make" / "deps.mk")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {tmp_path / 'file' / '.make' / 'deps.mk'}") and "REPORTS=path" in err


@pytest.mark.parametrize("words,message", [(["PROFILE=nope"], "error: unknown profile 'nope'."),
                                           (["PROFILE=tiny", "EPOCHS=abc"], "error: EPOCHS must be an integer")])
def test_a_plan_that_fails_is_its_own_one_error_and_leaves_nothing(tmp_path, words, message):
    """Run serially (one core, or JOBS=1), make once added "plan.mk: No such file or directory" to a plan's error."""
    done = subprocess.run(["make", "--no-print-directory", "report", *words, f"REPORTS={tmp_path}", "JOBS=1"],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "MAKEFLAGS": ""})
    assert done.returncode != 0 and done.stderr.startswith(message), done.stderr
    assert "No such file" not in done.stderr and done.stderr.count("***") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key", ["colour_copies", "perceptual_weight"])
def test_a_removed_setting_says_it_was_removed(tmp_path, key):
    path = write_profile(tmp_path, lambda raw: raw.update({key: 0}))
    with pytest.raises(ProfileError, match=f"'{key}' was removed .*; delete it from the profile"):
        config.resolve(path)
