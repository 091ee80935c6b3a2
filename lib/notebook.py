"""papermill's command line, as make runs every notebook: `python -m lib.notebook IN OUT -r key value ...`.

The one difference from `python -m papermill` is start-up time. nbformat validates notebooks with jsonschema,
whose format checkers import `rfc3987_syntax` when it is installed (jupyter-events pulls it in), and that
module compiles an RFC 3987 grammar at import: ~2 s of every notebook launch on a laptop, 30+ launches per
study (jsonschema issue #1428). Notebook schemas use no IRI formats, so the checker it registers is never
called: marking the module absent skips that import and changes nothing else.
"""
import sys


def skip_unused_iri_checker() -> None:
    """Make `import rfc3987_syntax` raise ImportError, which jsonschema handles by not registering the checker."""
    sys.modules.setdefault("rfc3987_syntax", None)


if __name__ == "__main__":
    skip_unused_iri_checker()
    from papermill.cli import papermill

    papermill(prog_name="python -m lib.notebook")
