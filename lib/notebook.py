"""papermill's command line, as make runs every notebook: `python -m lib.notebook IN OUT -r key value ...`.

Two differences from `python -m papermill`, both time. (1) Start-up: nbformat validates notebooks with jsonschema,
whose format checkers import `rfc3987_syntax` when it is installed (jupyter-events pulls it in), and that
module compiles an RFC 3987 grammar at import: ~2 s of every notebook launch on a laptop, 30+ launches per
study (jsonschema issue #1428). Notebook schemas use no IRI formats, so the checker it registers is never
called: marking the module absent skips that import and changes nothing else. (2) Shut-down: nbclient stops the
kernel gracefully, and a kernel that has imported torch, timm and matplotlib then spends 2-3 s in interpreter
teardown, which papermill waits for, 60+ times per study. Every output a step writes is complete (written to a
temporary name and renamed) before its last cell returns, and papermill has every cell's output by then, so the
kernel is stopped at once instead (`shutdown_kernel = "immediate"`).
"""
import sys


def skip_unused_iri_checker() -> None:
    """Make `import rfc3987_syntax` raise ImportError, which jsonschema handles by not registering the checker."""
    sys.modules.setdefault("rfc3987_syntax", None)


def stop_kernels_at_once() -> None:
    """nbclient's default for every notebook papermill runs: stop the kernel without its interpreter teardown."""
    from nbclient.client import NotebookClient

    NotebookClient.shutdown_kernel.default_value = "immediate"


if __name__ == "__main__":
    skip_unused_iri_checker()
    stop_kernels_at_once()
    from papermill.cli import papermill

    papermill(prog_name="python -m lib.notebook")
