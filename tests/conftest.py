import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Tests never touch the network: weights come from fake caches or random initialisation.
os.environ["FEATINV_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch cache; tests put fake weight files under the real names."""
    import torch

    home = tmp_path / "torch"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return home / "hub" / "checkpoints"
