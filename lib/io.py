"""The one way this project writes a file: to a temporary name beside it, then renamed into place, so a killed run
never leaves a half-written output that looks whole (and make never counts one as built).

A killed run leaves no temporary file either, or not for long: SIGTERM removes the ones this process has open (its
default action would skip `finally`), and since SIGKILL cannot be caught, the next write of a target removes the
temporary files beside it whose writer is dead. Temporary names carry the host as well as the pid
(`.<stem>.<host>.<pid>.tmp<suffix>`), so a write on another machine sharing the file system is never taken for dead.
Names of the earlier form (`.<stem>.<pid>.tmp<suffix>`, no host) are left alone: their pid may be another host's."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "localhost"
_open: set[tuple[int, Path]] = set()  # temporary files this process is writing now: what a SIGTERM would leave behind
_previous: Any = None  # the SIGTERM handler ours replaced, chained to
_installed = False


def _on_sigterm(signum, frame):
    if callable(_previous):  # someone else's handler (a kernel's, asyncio's) decides what SIGTERM does: if it
        _previous(signum, frame)  # exits, SystemExit runs atomic_path's cleanup; if it carries on, so do the writes
        return
    for pid, tmp in list(_open):
        if pid == os.getpid():  # a forked child's SIGTERM leaves its parent's writes alone
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
    signal.signal(signum, signal.SIG_DFL)  # then die of SIGTERM, so the exit status still says so
    os.kill(os.getpid(), signum)


def _guard_sigterm() -> None:
    """Install _on_sigterm: first over whatever Python handler is there (chaining to it), later only over the
    default (asyncio, for one, resets SIGTERM to it), never over one that may chain to ours, which would loop. An
    ignored or C-level handler is left alone. Only the main thread may install handlers; elsewhere, skip."""
    global _previous, _installed
    if threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGTERM)
    if current is _on_sigterm or current is None or current is signal.SIG_IGN \
            or (_installed and current is not signal.SIG_DFL):
        return
    _previous = current  # before installing: a SIGTERM may come the moment it is
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
        _installed = True
    except ValueError:  # no signals here after all (a subinterpreter, say)
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, someone else's
        pass
    return True


def _sweep(path: Path) -> None:
    """Remove this host's temporary files of `path` whose writer is dead (killed by SIGKILL, say)."""
    prefix, end = f".{path.stem}.{_HOST}.", f".tmp{path.suffix}"
    for name in os.listdir(path.parent):
        pid = name[len(prefix):-len(end)] if name.startswith(prefix) and name.endswith(end) else ""
        if pid.isascii() and pid.isdigit() and int(pid) > 0 and not _alive(int(pid)):
            try:
                (path.parent / name).unlink(missing_ok=True)
            except OSError:  # best effort: never fail a write over someone else's leftovers
                pass


@contextmanager
def atomic_path(path: str | Path):
    """Yields a temporary path beside `path` (same suffix, so writers that go by it still work); on success it is
    renamed onto `path`, on failure deleted."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _guard_sigterm()
    _sweep(path)
    tmp = path.with_name(f".{path.stem}.{_HOST}.{os.getpid()}.tmp{path.suffix}")
    _open.add((os.getpid(), tmp))
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
        _open.discard((os.getpid(), tmp))


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
