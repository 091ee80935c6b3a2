"""One GPU per expensive step on a machine with several: `python -m lib.slots --gpus N --locks DIR -- command ...`
takes the first free slot 0..N-1 (an exclusive lock on DIR/gpu<k>.lock), runs the command with
CUDA_VISIBLE_DEVICES=k, and frees the slot when it ends, however it ends (the kernel drops the lock with the process).
make's `-jN` then runs N layers at once, each on its own GPU, with make's DAG as the only orchestration.

Standard library only: make calls it before, and outside, the virtual environment's imports.
"""
from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path


def detect_gpus() -> int:
    """How many GPUs `nvidia-smi -L` lists (0 where there is none, or no driver)."""
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in done.stdout.splitlines()) if done.returncode == 0 else 0


def acquire(gpus: int, locks: Path, poll: float = 0.2):
    """Wait for a free slot; returns (slot, open lock file). The slot is held while the file stays open."""
    locks = Path(locks)
    locks.mkdir(parents=True, exist_ok=True)
    while True:
        for slot in range(gpus):
            handle = open(locks / f"gpu{slot}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            return slot, handle
        time.sleep(poll)


def run(command: list[str], gpus: int, locks: Path) -> int:
    """Run `command` on a slot of its own (pinned with CUDA_VISIBLE_DEVICES); without GPUs, as it is."""
    if gpus <= 0:
        return subprocess.run(command).returncode
    slot, handle = acquire(gpus, locks)
    try:
        print(f"[slot {slot} of {gpus}] {' '.join(command[:4])} ...", file=sys.stderr, flush=True)
        return subprocess.run(command, env={**os.environ, "CUDA_VISIBLE_DEVICES": str(slot)}).returncode
    finally:
        handle.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.slots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", type=int, default=None, help="slots to share (default: the GPUs nvidia-smi lists)")
    parser.add_argument("--locks", type=Path, required=True, help="folder of the lock files (one per GPU)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given: python -m lib.slots --gpus N --locks DIR -- command ...")
    gpus = detect_gpus() if args.gpus is None else args.gpus
    if gpus < 0:
        parser.error(f"--gpus {gpus}: give 0 (no GPU: run as is) or more")
    return run(command, gpus, args.locks)


if __name__ == "__main__":
    sys.exit(main())
