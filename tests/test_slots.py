"""Many GPUs and many machines: the slot allocator under concurrency, and LAUNCH= through a stand-in `srun`."""
import os
import re
import shutil
import subprocess
import sys

import pandas as pd

from lib import PARAMETERS_DIR, ROOT, slots

# A job: note its start, hold its slot until `argv[3]` jobs have started (so the first ones hold every slot at once,
# however slowly a loaded machine starts them; bounded at 60 s), then record slot, start and end.
RECORD = ("import os, sys, time; start = time.time(); starts = sys.argv[2]; open(starts, 'a').write('x'); "
          "deadline = time.time() + 60\n"
          "while len(open(starts).read()) < int(sys.argv[3]) and time.time() < deadline: time.sleep(0.01)\n"
          "open(sys.argv[1], 'a').write(f\"{os.environ.get('CUDA_VISIBLE_DEVICES', '-')} {start} {time.time()}\\n\")")


def test_concurrent_jobs_never_share_a_slot_and_use_every_slot(tmp_path):
    log = tmp_path / "log.txt"
    jobs = [subprocess.Popen([sys.executable, "-m", "lib.slots", "--gpus", "3", "--locks", str(tmp_path / "locks"), "--",
                              sys.executable, "-c", RECORD, str(log), str(tmp_path / "starts"), "3"], cwd=ROOT)
            for _ in range(7)]
    assert [job.wait(timeout=120) for job in jobs] == [0] * 7
    runs = [line.split() for line in log.read_text().splitlines()]
    assert len(runs) == 7 and {slot for slot, _, _ in runs} == {"0", "1", "2"}
    for slot in "012":
        spans = sorted((float(a), float(b)) for s, a, b in runs if s == slot)
        assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), (slot, spans)


def test_a_slot_is_freed_however_its_job_ends(tmp_path):
    locks = tmp_path / "locks"
    assert slots.main(["--gpus", "1", "--locks", str(locks), "--", sys.executable, "-c", "raise SystemExit(3)"]) == 3
    slot, handle = slots.acquire(1, locks)  # free again after the failure
    assert slot == 0
    handle.close()


def test_without_gpus_the_command_runs_as_it_is(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    out = tmp_path / "env.txt"
    code = f"import os; open({str(out)!r}, 'w').write(os.environ.get('CUDA_VISIBLE_DEVICES', 'unset'))"
    assert slots.main(["--gpus", "0", "--locks", str(tmp_path), "--", sys.executable, "-c", code]) == 0
    assert out.read_text() == "unset" and not list(tmp_path.glob("gpu*.lock"))


def test_launch_runs_every_expensive_step_through_the_clusters_scheduler(tmp_path):
    """LAUNCH="srun ...": a stand-in srun records its calls and runs the command; make's DAG does the rest."""
    calls = tmp_path / "srun_calls.txt"
    srun = tmp_path / "srun"
    srun.write_text(f'#!/bin/bash\necho "$*" >> {calls}\nwhile [[ "$1" == --* ]]; do shift; done\nexec "$@"\n')
    srun.chmod(0o755)
    profile = tmp_path / "tiny.yaml"
    shutil.copy(PARAMETERS_DIR / "tiny.yaml", profile)
    args = [f"PROFILE={profile}", f"REPORTS={tmp_path / 'reports'}", "ARCH=resnet34", "LAYERS=layer4",
            f"LAUNCH={srun} --gres=gpu:1 --time=60", "GPUS=4"]
    done = subprocess.run(["make", "--no-print-directory", "evaluate", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "MAKEFLAGS": ""})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = calls.read_text().splitlines()
    # tiny's layer4 has three runs (the main one, a second seed, a capacity-matched decoder): each its own job, after
    # encoding and the baselines' feature errors
    assert len(lines) == 8 and all(line.startswith("--gres=gpu:1 --time=60 env ") for line in lines)
    assert "lib.steps.encode" in lines[0] and sum("lib.steps.baselines" in line for line in lines) == 1
    for notebook in ("02_train.ipynb", "03_evaluate.ipynb"):
        launched = sorted(re.search(r"-r run (\S+)", line).group(1) if "-r run" in line else ""
                          for line in lines if notebook in line)
        assert launched == ["", "params900000", "seed43"], lines
    assert "lib.slots" not in calls.read_text()  # the scheduler hands out GPUs, not the local allocator
    root = tmp_path / "reports" / "tiny" / "resnet34" / "layer4"
    assert len(pd.read_csv(root / "metrics.csv")) > 0 and (root / "evaluate.ipynb").is_file()
    assert not list(root.glob("*.tmp.*"))  # written to temporary names and renamed
    again = subprocess.run(["make", "--no-print-directory", "evaluate", *args], cwd=ROOT, capture_output=True,
                           text=True, env={**os.environ, "MAKEFLAGS": ""})
    assert again.returncode == 0 and len(calls.read_text().splitlines()) == 8  # nothing re-launched
    assert "papermill" not in again.stdout  # ... and nothing re-run locally either
