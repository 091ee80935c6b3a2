import numpy as np
import pandas as pd

from lib import benchmark_findings, findings


def _summary(**changes):
    rows = pd.DataFrame({
        "arch": ["resnet34"] * 3 + ["vgg16"],
        "layer": ["layer1", "layer2", "layer4", "block5"],
        "feature_shape": ["64x56x56", "128x28x28", "512x7x7", "512x7x7"],
        "spatial_locations": [3136, 784, 49, 49],
        "psnr_mean": [24.0, 20.0, 15.0, 19.0],
        "psnr_std": [1.0] * 4,
        "ssim_mean": [0.6, 0.4, 0.3, 0.35],
        "lpips_mean": [float("nan")] * 4,
        "lpips_note": ["LPIPS left empty: no AlexNet weights."] * 4,
        "baseline_mean_image_psnr": [12.5] * 4,
        "baseline_mean_colour_psnr": [17.5] * 4,
        "baseline_thumbnail_psnr": [28.0, 25.0, 21.0, 21.0],
        "weights": ["random"] * 3 + ["imagenet"],
        "ssim_std": [0.1] * 4, "lpips_std": [float("nan")] * 4, "mse_mean": [0.01] * 4, "mse_std": [0.001] * 4,
        "train_seconds": [10.0] * 4,
    })
    for key, value in changes.items():
        rows[key] = value
    return rows


def test_findings_are_read_from_the_summary():
    lines = findings.findings(_summary())
    assert "4 of 4 layers reach the no-information baseline (the training images' mean image, 12.50–12.50 dB)." in lines
    below = findings.findings(_summary(baseline_mean_image_psnr=[12.5, 12.5, 15.5, 12.5]))
    assert "3 of 4 layers reach the no-information baseline (the training images' mean image, 12.50–15.50 dB); " \
           "below it: ResNet34 layer4." in below
    assert "3 of 4 layers beat the per-image mean-colour baseline; not: ResNet34 layer4." in lines
    assert "0 of 4 layers beat the thumbnail at their own grid" in " ".join(lines)
    assert lines[0] == ("ResNet34: PSNR falls from 24.00 dB at layer1 (64x56x56) to 15.00 dB at layer4 (512x7x7), "
                        "-9.00 dB; SSIM 0.600 → 0.300.")
    lines = findings.detail_findings(_summary())
    control = [line for line in lines if line.startswith("Random-weight control")]
    # Only the random-weight architecture gets a control line, with margins computed from its rows.
    assert control == ["Random-weight control, ResNet34: its margin over the mean colour shrinks with depth, from "
                       "+6.50 dB at layer1 to -2.50 dB at layer4; at layer4 the decoder recovers less from the "
                       "untrained network than the image's mean colour (`make bench-colour ARCH=resnet34 "
                       "LAYER=layer4 WEIGHTS=random` measures how much of that colour the layer's pooled features hold, "
                       "and how much of the layout its cells tell that carries over to the test photos)."]
    assert any(line.startswith("LPIPS not computed: LPIPS left empty") for line in lines)


def test_feature_consistency_is_read_from_the_summary():
    errors = dict(feature_error_mean=[0.10, 0.30, 0.40, 0.20], feature_error_std=[0.01] * 4,
                  baseline_thumbnail_feature_error=[0.15, 0.20, 0.25, 0.30],
                  baseline_mean_colour_feature_error=[0.50, 0.50, 0.45, 0.35])
    lines = findings.feature_consistency(_summary(**errors))
    assert lines[0] == ("In the layer's own features (relative distance to the original, 0 = identical features), the "
                        "reconstruction is closer than the thumbnail at 2 of 4 layers and closer than the mean colour at 4 of 4.")
    assert lines[1] == ("Of the 4 layers below their thumbnail in PSNR, 2 are nonetheless closer to the original than the "
                        "thumbnail in the layer's features (ResNet34 layer1, VGG16 block5): there the thumbnail's extra "
                        "PSNR is detail the layer hardly encodes.")
    assert lines[2] == ("ResNet34 layer4 trails the mean colour by 2.50 dB in PSNR yet lies closer to the original in the "
                        "layer's features (0.400 vs 0.450): what it misses, the layer hardly encodes.")
    farther = findings.feature_consistency(_summary(**dict(errors, baseline_mean_colour_feature_error=[0.5, 0.5, 0.3, 0.35])))
    assert farther[2].endswith("and lies farther from the original in the layer's features too (0.400 vs 0.300): the "
                               "decoder has not learnt all that the layer encodes.")
    assert farther[2] in findings.detail_findings(_summary(**dict(errors, baseline_mean_colour_feature_error=[0.5, 0.5, 0.3, 0.35])))
    # runs evaluated before the control existed: no sentences
    assert findings.feature_consistency(_summary()) == []


def test_feature_matching_is_reported_where_it_ran():
    matched = _summary(match_steps=[100, 0, 0, 0], decoder_psnr_mean=[23.5, 20.0, 15.0, 19.0], decoder_params=[125_000] * 4)
    table = findings.compact_table(matched, "resnet34")
    assert table.loc["layer1", "decoder alone (dB)"] == "23.50" and table.loc["layer4", "decoder alone (dB)"] == "—"
    assert "Test-time feature matching (28×28 grids and finer): ResNet34 layer1 23.50 → 24.00 dB (+0.50, 100 steps)." in findings.detail_findings(matched)
    # none ran (or a run evaluated before it existed): no column, no sentence
    for summary in (_summary(match_steps=[0] * 4, decoder_psnr_mean=[24.0, 20.0, 15.0, 19.0], decoder_params=[1] * 4),
                    _summary(decoder_params=[1] * 4)):
        assert "decoder alone (dB)" not in findings.compact_table(summary, "resnet34")
        assert not any(line.startswith("Test-time feature matching") for line in findings.detail_findings(summary))


def _colour_run(layer, train_r2, test_r2, colour, copies=0, copies_psnr=None, indomain=None, arch="resnet34"):
    run = {"arch": arch, "layer": layer, "weights": "random", "copies": copies, "flips_psnr": colour,
           "baseline_mean_colour_psnr": 17.87, "layout_grid": {"layer1": 56, "layer4": 7, "block5": 7}[layer],
           "layout_train_r2": train_r2, "layout_test_r2": test_r2}
    return run | ({"copies_psnr": copies_psnr} if copies else {}) | ({"indomain_psnr": indomain} if indomain else {})


def test_layout_control_is_read_from_bench_colour_results(tmp_path):
    import json

    assert benchmark_findings.layout_control(tmp_path / "nowhere")[0] is None
    runs = {"l4.json": _colour_run("layer4", 0.25, -0.17, 15.53), "l1.json": _colour_run("layer1", 0.79, 0.67, 17.64),
            "l4-copies.json": _colour_run("layer4", 0.25, -0.17, 15.53, copies=8, copies_psnr=17.29),
            "l4-copies16.json": _colour_run("layer4", 0.25, -0.17, 15.53, copies=16, copies_psnr=17.33, indomain=17.79),
            "old.json": {"arch": "resnet34", "layer": "layer2", "copies": 0},  # written before layout existed: skipped
            # a bench-quality run of the in-domain control, and one trained on the training photos (not shown here)
            "l4-decoder.json": {"arch": "resnet34", "layer": "layer4", "weights": "random", "train_on_test_copies": 4,
                                "psnr_mean": 18.17, "profile": "demo"},
            # a decoder record from before the benchmarks ran a profile's settings: not shown
            "l4-old-decoder.json": {"arch": "resnet34", "layer": "layer4", "weights": "random",
                                    "train_on_test_copies": 8, "psnr_mean": 99.0},
            "l1-decoder.json": {"arch": "resnet34", "layer": "layer1", "weights": "random", "train_on_test_copies": 0,
                                "psnr_mean": 28.5}}
    for name, run in runs.items():
        (tmp_path / name).write_text(json.dumps(run))
    table, lines = benchmark_findings.layout_control(tmp_path)
    # network order, one row per layer: each run with copies adds its colour to the layer's row, fewest copies first
    assert list(table.index) == ["ResNet34 layer1", "ResNet34 layer4"]
    assert table.loc["ResNet34 layer4", "layout R² test photos"] == -0.17
    assert table.loc["ResNet34 layer4", "with colour copies (dB, copies)"] == "17.29 (8) · 17.33 (16)"
    assert table.loc["ResNet34 layer1", "with colour copies (dB, copies)"] == "—"
    # measured by one run of the layer, shown on its row; "—" where no run measured it
    assert list(table["fitted on the test photos recoloured (dB)"]) == ["—", "17.79"]
    assert list(table["decoder trained on them (dB)"]) == ["—", "18.17"]
    assert lines == ["ResNet34 (random weights): layout R² on the test photos 0.67 at layer1 to -0.17 at layer4; at layer4 "
                     "the cells' layout, learnt from the training photos (R² 0.25 across them), predicts the test photos "
                     "worse than none, so a decoder can pass the mean colour there only through colour, which the pooled "
                     "features predict below the image's own mean, colour copies or not (at best 17.33 vs 17.87 dB); yet "
                     "the colour is in the features: fitted on recoloured copies of the test photos themselves, the same "
                     "readout scores 17.79 dB at layer4, and the default decoder trained on such copies scores 18.17 dB "
                     "at layer4, so what falls short is what the training photos teach about reading it from photos "
                     "like the test ones."]


def test_layout_control_reads_the_linear_inverse_against_the_thumbnail(tmp_path):
    import json

    run = _colour_run("block5", 0.2, 0.1, 16.0, arch="vgg16") | {"linear_inverse_psnr": 16.25,
                                                                  "baseline_thumbnail_psnr": 18.5}
    (tmp_path / "b5.json").write_text(json.dumps(run))
    (tmp_path / "l1.json").write_text(json.dumps(_colour_run("layer1", 0.79, 0.67, 17.64)))  # before the readout
    table, lines = benchmark_findings.layout_control(tmp_path)
    assert list(table["linear read (dB)"]) == ["—", "16.25"] and list(table["thumbnail (dB)"]) == ["—", "18.50"]
    assert lines[-1] == ("A closed-form linear read of the cells (as the default decoder's closed-form start: the training "
                         "images' mean image plus ridge fits, here on the photos and their flips) scores 16.25 dB at "
                         "VGG16 block5 (random), -2.25 dB against its 7×7 thumbnail."), lines
    # runs before the readout existed: no such columns
    (tmp_path / "b5.json").unlink()
    assert "linear read (dB)" not in benchmark_findings.layout_control(tmp_path)[0]


def test_photos_clause_names_a_few_photos_and_counts_many():
    assert benchmark_findings.photos_clause({"test_photos": ["chelsea", "coffee"]}) == " from the photos chelsea, coffee"
    assert benchmark_findings.photos_clause({"test_photos": [f"p{i}" for i in range(50)]}) == " from 50 photos"
    assert benchmark_findings.photos_clause({}) == ""


def test_layout_control_says_when_a_layer_does_not_hold_the_colour(tmp_path):
    import json

    (tmp_path / "b5.json").write_text(json.dumps(_colour_run("block5", 0.2, -0.3, 16.0, copies=8, copies_psnr=16.5,
                                                             indomain=16.2, arch="vgg16")))
    _, lines = benchmark_findings.layout_control(tmp_path)
    assert lines[0].endswith("(at best 16.50 vs 17.87 dB); fitted on recoloured copies of the test photos themselves "
                             "it does no better (16.20 dB at block5): the layer does not hold the colour."), lines


def test_statistics_sentences_count_intervals_that_clear_zero():
    summary = _summary(
        test_sources=[3] * 4, psnr_ci_low=[23.0, 19.0, 14.0, 18.0], psnr_ci_high=[25.0, 21.0, 16.0, 20.0],
        psnr_minus_mean_colour=[6.5, 2.5, -2.5, 1.5], psnr_minus_mean_colour_ci_low=[5.0, 0.5, -3.0, -0.5],
        psnr_minus_mean_colour_ci_high=[8.0, 4.0, -2.0, 3.0], wins_vs_mean_colour=[1.0, 0.9, 0.0, 0.6],
        psnr_minus_thumbnail=[-4.0, -5.0, -6.0, -2.0], psnr_minus_thumbnail_ci_low=[-5.0, -6.0, -7.0, -3.0],
        psnr_minus_thumbnail_ci_high=[-3.0, -4.0, -5.0, -1.0], wins_vs_thumbnail=[0.0] * 4)
    table, lines = findings.baseline_statistics(summary)
    assert lines[0].startswith("Intervals are 95% percentile bootstraps (10,000 resamples) over the 3 test source photos")
    assert "coarse and wide" in lines[0]
    assert lines[1] == ("Decoder against the mean colour: interval above it at 2 of 4 layers; not separable from it at "
                        "VGG16 block5; below it at ResNet34 layer4.")
    assert lines[2] == ("Decoder against the thumbnail: interval above it at 0 of 4 layers; below it at ResNet34 "
                        "layer1, ResNet34 layer2, ResNet34 layer4, VGG16 block5.")
    assert table.loc[("ResNet34", "layer4"), "− mean colour (dB)"] == "-2.50 [-3.00, -2.00]"
    assert table.loc[("VGG16", "block5"), "images above mean colour"] == "60%"
    # a summary.csv written before the intervals existed gives no section rather than an error
    assert findings.baseline_statistics(_summary())[1] == []


def test_depth_statistics_sentences():
    depth = pd.DataFrame({"arch": ["resnet34", "resnet34"], "shallower": ["layer1", "layer2"],
                          "deeper": ["layer2", "layer4"], "psnr_drop": [4.0, 0.5], "ci_low": [3.0, -0.2],
                          "ci_high": [5.0, 1.1], "images_losing": [1.0, 0.6], "test_sources": [3, 3]})
    table, lines = findings.depth_statistics(depth)
    assert lines == ["Going one layer deeper loses PSNR with an interval above zero at 1 of 2 steps; no clear change "
                     "at ResNet34 layer2 → layer4.",
                     "Largest step: ResNet34 layer1 → layer2, 4.00 dB [3.00, 5.00]."]
    assert table.loc[("ResNet34", "layer1 → layer2"), "images losing"] == "100%"
    assert findings.depth_statistics(None)[1] == []


def test_training_findings_say_where_gradient_steps_did_not_beat_the_start():
    columns = dict(start_val_loss=[1.2, 0.9, 0.31, 0.5], best_val_loss=[0.1, 0.2, 0.31, 0.4], best_epoch=[10, 10, 0, 7])
    lines = findings.training_findings(_summary(**columns))
    assert lines == ["Gradient steps left a decoder better on validation than its untrained start (for the default "
                     "decoder the training images' mean image, plus its closed-form linear fit where that did better) "
                     "at 3 of 4 layers; the start "
                     "was kept at ResNet34 layer4 (validation MSE 0.310): no decoder is kept that is worse on "
                     "validation than where it began."]
    assert findings.training_findings(_summary()) == []  # a summary written before these columns
    assert lines[0] in findings.detail_findings(_summary(**columns))


def test_benchmark_results_are_read_as_files_without_the_benchmark_code():
    """The report reads the committed learned-features table and bench-colour results as files: their rows carry the
    labels it shows, so lib.benchmark_findings imports nothing from lib.bench (nor torch through it)."""
    import json
    import subprocess
    import sys

    from lib import REPORTS_DIR, ROOT

    code = ("import sys; from lib import benchmark_findings; "
            f"frame, lines = benchmark_findings.offline_benchmark({str(REPORTS_DIR / 'bench' / 'learned' / 'table.json')!r}); "
            f"benchmark_findings.layout_control({str(REPORTS_DIR / 'bench' / 'colour')!r}); "
            "print(sorted(m for m in sys.modules if m == 'lib.bench' or m.startswith('lib.bench.')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
    table = json.loads((REPORTS_DIR / "bench" / "learned" / "table.json").read_text())
    frame, lines = benchmark_findings.offline_benchmark(REPORTS_DIR / "bench" / "learned" / "table.json")
    assert len(frame) == table["layers"] and lines[0].startswith(f"{table['met']} of {table['layers']} layers measured")
    for row in table["rows"]:  # every label shown as stored
        shown = frame.loc[benchmark_findings.row_label(row)]
        assert shown["margin (dB) [95% interval]"] == row["margins_label"]
        assert shown["ε decoder / thumbnail / colour"] == row["feature_errors_label"]
        assert shown["matching steps (decoder alone)"] == row["matching_label"]
        assert shown["held to"] == row["targets_label"]


def test_a_benchmark_table_from_before_the_profiles_settings_is_not_shown(tmp_path):
    import json

    old = {"rows": [{"arch": "resnet34", "layer": "layer1", "weights": "random", "psnr_mean": 20.0}], "met": 0,
           "layers": 1, "missing": [], "settings": {"minutes": 10}}
    (tmp_path / "table.json").write_text(json.dumps(old))
    frame, lines = benchmark_findings.offline_benchmark(tmp_path / "table.json", "make bench-offline")
    assert frame is None and "`make bench-offline` measures it again" in lines[0]


def _row(kind, arch, layer, psnr, params, run=np.nan, seed=42, target=0, seeds=1, sd=np.nan):
    return {"row": kind, "arch": arch, "layer": layer, "run": run, "seed": seed, "seeds": seeds, "psnr_mean": psnr,
            "psnr_std": 2.0, "psnr_ci_low": psnr - 1, "psnr_ci_high": psnr + 1, "psnr_seed_sd": sd,
            "decoder_params": params, "decoder_params_target": target,
            "feature_shape": {"layer1": "64x56x56", "block2": "128x56x56", "layer4": "512x7x7", "block5": "512x7x7"}[layer]}


def test_capacity_section_reads_main_runs_that_serve_the_sweep_and_seed_42_defaults():
    """A sweep layer whose default decoder is already the size (run "" becomes NaN in the CSV) is compared with
    itself; a seeded layer's default is its seed-42 run, not the seed mean, and the column says so."""
    table = pd.DataFrame([
        _row("layer", "resnet34", "layer1", 21.0, 125_411, seed=np.nan, seeds=2, sd=0.5),
        _row("seed", "resnet34", "layer1", 21.3, 125_411, seeds=2), _row("seed", "resnet34", "layer1", 20.7, 125_411, "seed43", 43, seeds=2),
        _row("layer", "vgg16", "block2", 23.5, 239_267), _row("layer", "resnet34", "layer4", 13.7, 2_020_598),
        _row("layer", "vgg16", "block5", 16.0, 2_020_598),
        _row("capacity", "resnet34", "layer1", 22.0, 240_176, "params240000", target=240_000),
        _row("capacity", "vgg16", "block2", 23.5, 239_267, target=240_000),  # served by its main run
        _row("capacity", "resnet34", "layer4", 13.0, 236_081, "params240000", target=240_000),
        _row("capacity", "vgg16", "block5", 15.0, 236_081, "params240000", target=240_000),
    ])
    pairs = pd.DataFrame([{"arch_a": "resnet34", "layer_a": "layer1", "arch_b": "vgg16", "layer_b": "block2",
                           "default_diff": -2.2, "default_ci_low": -3.0, "default_ci_high": -1.0,
                           "matched_diff": -1.5, "matched_ci_low": -2.5, "matched_ci_high": 0.5, "test_sources": 3}])
    sweep, versus, lines = findings.capacity(table, pairs)
    assert list(sweep.columns) == ["grid", "params (default)", "PSNR (default, seed 42)", "params (matched)",
                                   "PSNR (matched)", "change"]
    assert sweep.loc[("ResNet34", "layer1"), "PSNR (default, seed 42)"] == "21.30"  # seed 42's, not the 21.0 mean
    assert sweep.loc[("VGG16", "block2"), "change"] == "+0.00"
    assert lines[0].startswith("Every decoder of the sweep scaled to 240,000 parameters (± 10%; 236,081 to 240,176 as built)")
    assert "Spearman rank correlation of the 4 layers' PSNR" in lines[1] and "across 2 grids" in lines[1]
    assert lines[2] == ("ResNet34 layer1 − VGG16 block2: -2.20 dB with default decoders (interval below zero), -1.50 dB "
                        "at equal capacity (interval spans zero); the difference keeps its sign.")
    assert list(versus.index) == ["ResNet34 layer1 − VGG16 block2"]
    # a profile without a sweep: no section, and no error
    assert findings.capacity(table[table["row"] != "capacity"], None) == (None, None, [])


def test_settings_are_one_sentence_with_the_layers_that_differ():
    summary = pd.DataFrame({"arch": ["resnet34"] * 3 + ["vgg16"], "layer": ["layer2", "layer3", "layer4", "block5"],
                            "decoder": ["resshuffle"] * 4, "epochs": [10, 1, 2, 10],
                            "images_seen": [880, 88, 176, 880], "batch_size": [4] * 4,
                            "checkpoint": ["last"] * 4, "feedback": [0, 1, 0, 0],
                            "match_steps": [0] * 4, "best_epoch": [10, 1, 2, 10], "seeds": [1, 1, 2, 1],
                            "train_seconds": [28.0, 200.1, 108.0, 33.7], "eval_seconds": [5.3, 8.5, 14.7, 20.7]})
    assert findings.settings_lines(summary) == [
        "Every layer: resshuffle decoder, 10 epochs, 880 training images seen, batch 4, checkpoint last, "
        "0 feedback stages, 0 matching steps.",
        "Except ResNet34 layer3: 1 epoch, 88 training images seen, 1 feedback stage.",
        "Except ResNet34 layer4: 2 epochs, 176 training images seen."]


def test_convergence_names_the_layers_still_learning_and_states_the_rule():
    summary = _summary(still_falling=[False, True, None, False], images_seen=[880] * 4)
    lines = findings.convergence(summary)
    assert len(lines) == 1 and "more than 1% below the best before them" in lines[0]
    assert "Still learning when the budget ended at 1 of 3 layers: ResNet34 layer2;" in lines[0]
    assert lines[0].endswith("Each decoder's budget: 880 training images seen.")
    assert lines[0] in findings.findings(summary)
    settled = findings.convergence(_summary(still_falling=[False] * 4, images_seen=[880, 880, 1760, 880],
                                            best_epoch=[10, 0, 0, 10], improved_on_start=[True, False, True, True]))
    assert "No layer's validation loss was still falling when its budget ended." in settled[0]
    assert "No epoch beat the untrained start on validation, so the start is what these report: ResNet34 layer2." \
        in settled[0]
    assert "Earlier epochs beat the start but the last did not, and `checkpoint: last` kept the start: ResNet34 " \
           "layer4." in settled[0]
    assert settled[0].endswith("880 to 1,760 training images seen.")
    assert findings.convergence(_summary()) == []  # a summary written before the column
    table = findings.compact_table(summary.assign(decoder_params=[1e5] * 4), "resnet34")
    assert list(table["still learning"]) == ["", "yes", ""]
