"""The one way this project writes a file: to a temporary name beside it, then renamed into place, so a killed run
never leaves a half-written output that looks whole (and make never counts one as built)."""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path):
    """Yields a temporary path beside `path` (same suffix, so writers that go by it still work); on success it is
    renamed onto `path`, on failure deleted."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, payload: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2) + "\n")


def write_if_changed(path: str | Path, text: str) -> bool:
    """Write only when the content differs, leaving an unchanged file (and its timestamp, which make reads) alone."""
    path = Path(path)
    if path.exists() and path.read_text() == text:
        return False
    write_text(path, text)
    return True


def save_torch(obj: Any, path: str | Path) -> Path:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def save_npz(path: str | Path, **arrays) -> Path:
    import numpy as np

    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
    return Path(path)
