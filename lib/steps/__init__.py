"""The study's steps, one module each; the Makefile runs each as one rule (`python -m lib.steps.<step>` or its
notebook through papermill) and is the only thing that builds a step's inputs. A step reads its inputs and fails
with one clear error (`lib.plan.MissingInputError`) naming the make target when one is missing.

    fetch     data/source.json                      (DIV2K downloaded and checked, or found)
    data      split.csv, data/images.pt             (01_data.ipynb)
    encode    features/<arch>/<layer>.pt, done.json
    baselines features/<arch>/baselines.pt          (the baselines' feature errors on the test images)
    train     <arch>/<layer>[/<run>]/decoder.pt, history.csv (02_train.ipynb; run: a seed repeat, a capacity run)
    evaluate  <arch>/<layer>[/<run>]/metrics.csv, summary.json, samples.npz (03_evaluate.ipynb)
    summarise summary.csv, depth_, weights_ and capacity_comparisons.csv (04_figures.ipynb, with lib.figures)
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .. import CHECKOUT, REPORTS_DIR, ROOT


def step_main(argv, module: str, doc: str, run, summary, errors: tuple, arch: bool = True) -> int:
    """A step's command line as make runs it: `python -m lib.steps.<module> --root R [--arch A]` calls `run(R[, A])`
    and prints `summary(result)`; any of `errors` (bad or missing input, named in its message) is one `error:` line
    and exit status 2. The callers pass their own error types, so this package imports nothing more for them."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m lib.steps.{module}", description=doc.splitlines()[0])
    parser.add_argument("--root", required=True, help="the study's folder, reports/<profile>")
    if arch:
        parser.add_argument("--arch", required=True)
    args = parser.parse_args(argv)
    try:
        done = run(args.root, args.arch) if arch else run(args.root)
    except errors as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary(done))
    return 0


def on_this_python() -> bool:
    """Whether make should run the steps on the running interpreter and its packages (VENV=system) rather than
    the checkout's .venv: inside Colab (the check that guards the notebooks' install cell), in an installed copy,
    or when VENV=system is in the environment."""
    return "google.colab" in sys.modules or not CHECKOUT or os.environ.get("VENV") == "system"


def upstream_command(target: str, profile: str, reports_root: str = "") -> list[str]:
    """The make call that builds `target` for this notebook's settings."""
    if Path(profile).suffix in (".yaml", ".yml") and Path(profile).is_file():
        profile = str(Path(profile).resolve())  # make runs in ROOT, the notebook perhaps elsewhere
    command = ["make", "--no-print-directory", target, f"PROFILE={profile}",
               f"REPORTS={Path(reports_root or REPORTS_DIR).resolve()}"]
    if on_this_python():  # Colab: its own torch, no second environment (make installs only what is missing)
        command += ["VENV=system", f"PYTHON={sys.executable}"]
    return command


def build_upstream(target: str, profile: str, reports_root: str = "") -> None:
    """For a notebook opened by hand (in Jupyter or Colab): have make build what this step reads, through the one
    DAG. Under make (papermill runs a step's notebook) make has built it already, and this does nothing."""
    if "MAKELEVEL" in os.environ:
        return
    command = upstream_command(target, profile, reports_root)
    print("$ " + " ".join(command), flush=True)
    # make's output passed on line by line: a kernel's sys.stdout need not have a file descriptor (Colab's, or
    # ipykernel's when it does not capture them), and in a notebook the lines belong under the cell
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as process:
        try:
            for line in process.stdout:
                print(line, end="", flush=True)
        except BaseException:  # an interrupted cell (KeyboardInterrupt) stops make too, as subprocess.run did
            process.kill()
            raise
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)
