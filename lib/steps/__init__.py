"""The study's steps, one module each; the Makefile runs each as one rule (`python -m lib.steps.<step>` or its
notebook through papermill) and is the only thing that builds a step's inputs. A step reads its inputs and fails
with one clear error (`lib.plan.MissingInputError`) naming the make target when one is missing.

    fetch     data/source.json                      (DIV2K downloaded and checked, or found)
    data      split.csv, data/images.pt             (01_data.ipynb)
    encode    features/<arch>/<layer>.pt, done.json
    train     <arch>/<layer>[/<run>]/decoder.pt, history.csv (02_train.ipynb; run: a seed repeat, a capacity run)
    evaluate  <arch>/<layer>[/<run>]/metrics.csv, summary.json, samples.npz (03_evaluate.ipynb)
    summarise summary.csv, depth_, weights_ and capacity_comparisons.csv (04_figures.ipynb, with lib.figures)
"""
from __future__ import annotations

import os
import subprocess
import sys

from .. import ROOT


def build_upstream(target: str, profile: str, reports_root: str = "") -> None:
    """For a notebook opened by hand (in Jupyter or Colab): have make build what this step reads, through the one
    DAG. Under make (papermill runs a step's notebook) make has built it already, and this does nothing."""
    if "MAKELEVEL" in os.environ:
        return
    command = ["make", "--no-print-directory", target, f"PROFILE={profile}"] + ([f"REPORTS={reports_root}"] if reports_root else [])
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True, stdout=sys.stdout, stderr=sys.stderr)
