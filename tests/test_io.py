"""lib.io's writes leave no temporary files behind: not on success or error, not when SIGTERM kills the writer,
and not for long when SIGKILL does (the next write of the target sweeps them)."""
import os
import signal
import subprocess
import sys

import pytest

from lib import ROOT, io

# Opens a write, reports its temporary file, then waits to be killed (bounded: it gives up after a minute).
WRITER = """
import sys, time
from lib import io
{setup}
with io.atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"x" * 1000)
    print("ready", tmp, flush=True)
    time.sleep(60)
"""

CHAINED = """
import signal, sys
def handler(signum, frame):
    print("own handler", flush=True)
    sys.exit(3)
signal.signal(signal.SIGTERM, handler)
"""


def kill_writer(target, setup=""):
    """Start WRITER on `target`, SIGTERM it once its temporary file exists; return (returncode, its output)."""
    process = subprocess.Popen([sys.executable, "-c", WRITER.format(setup=setup), str(target)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # bounded: EOF if the writer dies first
        assert line.startswith("ready "), f"writer did not start: {line!r} {process.stderr.read()}"
        tmp = line.split(" ", 1)[1].strip()
        assert os.path.exists(tmp), "the write has a temporary file while it runs"
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=60)
        return returncode, process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close(), process.stderr.close()


def test_sigterm_removes_the_temporary_file(tmp_path):
    target = tmp_path / "features.pt"
    returncode, _ = kill_writer(target)
    assert returncode == -signal.SIGTERM  # still killed by SIGTERM, as far as make or a scheduler can tell
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_sigterm_chains_to_a_handler_already_there(tmp_path):
    target = tmp_path / "features.pt"
    returncode, output = kill_writer(target, setup=CHAINED)
    assert (returncode, output) == (3, "own handler\n")
    assert list(tmp_path.iterdir()) == []


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()  # reaped: its pid names no process now
    return process.pid


def test_next_write_sweeps_temporary_files_of_dead_writers_only(tmp_path):
    target, dead, live = tmp_path / "features.pt", dead_pid(), os.getppid()
    stale = tmp_path / f".features.{io._HOST}.{dead}.tmp.pt"
    kept = [
        tmp_path / f".features.{io._HOST}.{live}.tmp.pt",  # a live writer on this host
        tmp_path / f".features.other-host.{dead}.tmp.pt",  # another machine's: its pid says nothing here
        tmp_path / f".features.{dead}.tmp.pt",  # the earlier form, without a host: left alone
        tmp_path / f".other.{io._HOST}.{dead}.tmp.pt",  # another target's
        tmp_path / f".features.{io._HOST}.{dead}.tmp.npz",  # ditto
    ]
    for path in [stale, *kept]:
        path.write_bytes(b"partial")
    io.write_bytes(target, b"whole")
    assert target.read_bytes() == b"whole"
    assert not stale.exists()
    assert all(path.exists() for path in kept)


def test_success_and_error_leave_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "out.json"
    with io.atomic_path(target) as tmp:
        assert tmp == target.with_name(f".out.{io._HOST}.{os.getpid()}.tmp.json")
        assert (os.getpid(), tmp) in io._open  # what SIGTERM would remove
        tmp.write_text("{}")
    assert target.read_text() == "{}" and os.listdir(target.parent) == ["out.json"]

    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert target.read_text() == "{}" and os.listdir(target.parent) == ["out.json"]
    assert io._open == set()
