"""Benchmarks: each a module with its own `main()` (`python -m lib.bench.<name> ...`, or its make target in
bench.mk), its own JSON and its own table.

    quality     one layer trained and scored as a profile's study does (its settings and epochs, the study's loop
                `lib.training.fit_decoder` and evaluation `lib.evaluation`) on any folders of images: the study's
                result record, with intervals against the three baselines              (make bench-quality)
    ablation    `quality` twice on one layer: as the profile runs it, and with one mechanism of the default decoder
                switched off; the paired difference                                 (make bench-ablation)
    offline     `quality` on the study's layers (random-init encoders) and EfficientNet-Lite0's stages (ImageNet and
                random weights), on the demo's views or natural photos: table.json/.md/.png of each row against
                its targets                                                   (make bench-offline, bench-learned)
    colour      what a layer's pooled features tell of each image's mean colour, and its cells of the layout
                (closed-form ridge readouts, no decoder trained)                       (make bench-colour)
    speed       the pipeline's training throughput against a naive loop, per layer     (make bench-speed)
    projection  GPU time and memory of a whole profile, counted from the code          (make bench-projection)
    gpu_check   one paper layer end to end, bench-speed and the projection, on a lent GPU (make gpu-check)
    folders     image folders as benchmark input, and a profile's split exported as train/val/test folders
    photos      natural photos from pinned Debian packages as train/val/test folders        (make bench-photos)
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable


def run_cli(compute: Callable[[], dict], out, line: Callable[[dict, object], str]) -> int:
    """A benchmark's command line around its result: bad input is one clear error (exit 2) and nothing written;
    else the record, with its provenance, is written atomically to `out` and its one line printed."""
    from .. import data as datamod
    from ..io import write_json
    from ..provenance import record
    from .folders import BenchError

    try:
        result = compute()
    except (BenchError, datamod.DataError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result["provenance"] = record()
    write_json(Path(out), result)
    print(line(result, out))
    return 0
