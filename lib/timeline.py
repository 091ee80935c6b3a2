"""How long each step of a run took, read from the executed notebooks' papermill metadata."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def step_kind(step: str) -> str:
    name = Path(step).name
    return {"train.ipynb": "train (per layer)", "evaluate.ipynb": "evaluate (per layer)"}.get(name, name.removesuffix(".ipynb"))


def step_durations(profile_dir: Path) -> pd.DataFrame:
    """Wall time of every executed pipeline notebook, read from papermill's own metadata."""
    rows = []
    for path in sorted(Path(profile_dir).rglob("*.ipynb")):
        if path.name.endswith((".tmp.ipynb", ".failed.ipynb")) or path.relative_to(profile_dir).parts[0] == "invert":
            continue  # unfinished runs; and your own images (`make invert`), which are not a step of the study
        meta = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
        if meta.get("duration") is not None:
            rows.append({"step": str(path.relative_to(profile_dir)), "seconds": round(meta["duration"], 1),
                         "finished": meta.get("end_time", "")})
    return pd.DataFrame(rows, columns=["step", "seconds", "finished"])
