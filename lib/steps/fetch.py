"""Step fetch: make the source images available (DIV2K: download, verify, unzip once) and record where they are."""
from __future__ import annotations

import sys

from .. import data as datamod
from .. import plan as planmod
from ..io import write_json
from . import step_main


def run(root) -> dict:
    plan = planmod.load(root)
    data = plan.data
    if plan.study.get("lpips") == "required":  # fail (or download) now, not after hours of training
        from ..encoders import torchvision_weights
        from ..registry import ALEXNET_WEIGHTS_FILE

        torchvision_weights(ALEXNET_WEIGHTS_FILE, "imagenet")
    root_dir = datamod.div2k_root(data) if data["source"] == "div2k" else datamod.skimage_dir()
    found = {"source": data["source"], "root": str(root_dir)}
    write_json(plan.paths.source, found)
    return found


def main(argv=None) -> int:
    return step_main(argv, "fetch", __doc__, run, lambda found: f"{found['source']} images in {found['root']}",
                     (planmod.MissingInputError, datamod.DataError, RuntimeError, ValueError), arch=False)

if __name__ == "__main__":
    sys.exit(main())
