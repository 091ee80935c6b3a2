"""The GPU check runs end to end on CPU too: one paper-settings layer on synthetic DIV2K-sized data."""
import json

import pytest

from lib.bench import gpu_check


def test_gpu_check_runs_one_paper_layer_on_synthetic_data_and_projects(tmp_path, capsys):
    out = tmp_path / "check"
    code = gpu_check.main(["--out", str(out), "--train-images", "4", "--val-images", "2", "--test-images", "2",
                           "--epochs", "1", "--no-speed"])
    assert code == 0
    result = json.loads((out / "gpu_check.json").read_text())
    layer = result["layer"]
    # the paper's batch of 8, as trained: capped at the 4 training images
    assert (layer["arch"], layer["layer"], layer["epochs"], layer["batch_size"]) == ("vgg16", "block1", 1, 4)
    assert layer["train_seconds"] > 0 and 3 < layer["psnr_mean"] < 60
    assert result["device"] == "cpu" and result["projection"]["effective_tflops"] > 0
    # the rate is the train step's counted work (with the paper's feedback stages) over its measured seconds
    assert result["projection"]["effective_tflops"] == pytest.approx(
        result["projection"]["train_pflop"] * 1e3 / layer["train_seconds"], rel=1e-2)
    assert result["projection"]["paper_minutes"] > 0 and result["projection"]["paper_max_train_memory_mb"] > 100
    profile = (out / "gpu_paper.yaml").read_text()
    assert "weights: random" in profile and "width: 512" in profile and "augment: true" in profile
    assert "batch_size: 8" in profile
    assert len(list((out / "div2k" / "DIV2K_train_HR").glob("*.png"))) == 6
    assert "paper profile ~" in capsys.readouterr().out


def test_gpu_check_rejects_unknown_layers(tmp_path):
    with pytest.raises(SystemExit):
        gpu_check.main(["--out", str(tmp_path), "--layer", "block9"])
    assert not (tmp_path / "gpu_check.json").exists()
