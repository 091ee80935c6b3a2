"""Benchmarks: each a module with its own `main()` (`python -m lib.bench.<name> ...`, or its make target in
bench.mk), its own JSON and its own table.

    quality     the default decoder on any folder of images, trained for a wall-clock or epoch budget through the
                study's loop (`lib.training.fit_decoder`) and scored by its evaluation (`lib.evaluation`): the
                study's result record, with intervals against both baselines            (make bench-quality)
    offline     `quality` on every layer, random-init encoders, on the demo's views: table.json/.md/.png of each
                layer against its offline targets                                      (make bench-offline)
    colour      what a layer's pooled features tell of each image's mean colour, and its cells of the layout
                (closed-form ridge readouts, no decoder trained)                       (make bench-colour)
    speed       the pipeline's training throughput against a naive loop, per layer     (make bench-speed)
    projection  GPU time and memory of a whole profile, counted from the code          (make bench-projection)
    gpu_check   one paper layer end to end, bench-speed and the projection, on a lent GPU (make gpu-check)
    folders     image folders as benchmark input, and the demo's split exported as two of them
"""
