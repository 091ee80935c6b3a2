"""The executed report notebook rendered to HTML (no code, local MathJax) and to PDF (headless Chromium).

A change here re-renders; it never re-executes the report or anything upstream.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .io import atomic_path, write_text

# The PDF prints at 1:1 on A4, as figures.save's 8 pt rule assumes. Anything wider than the page (a table cell holding
# a long unbreakable name) would make Chromium shrink every page to fit it, figures included: cells may break anywhere.
# Text at 11 px (8.25 pt), tables at 9.5 px (7.1 pt), the size of a paper's tables.
REPORT_CSS = """
<style>
:root { --jp-content-font-size1: 11px; --jp-ui-font-size1: 11px; --jp-code-font-size: 10px; }
pre, code { white-space: pre-wrap !important; word-break: break-word; }
.jp-RenderedImage img, .output_png img { max-width: 100%; max-height: 240mm; height: auto; object-fit: contain; }
.jp-RenderedHTMLCommon table { font-size: 9.5px; }
/* cells wrap where a table would otherwise overrun the page: every table fits its width */
.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { white-space: normal; overflow-wrap: break-word;
  padding: 0.2em 0.45em; }
.jp-RenderedHTMLCommon table { max-width: 100%; }
.jp-OutputArea-output { overflow-x: visible !important; }
h1, h2, h3 { break-after: avoid; page-break-after: avoid; }
img, table { break-inside: avoid; page-break-inside: avoid; }
/* text runs on to the next page (JupyterLab keeps each output whole, leaving half-empty pages) */
@media print { .jp-OutputArea-child { break-inside: auto; } }
/* nothing after the last line: its bottom padding alone would open a blank page */
@media print { body, main, .jp-Notebook, .jp-Cell:last-child, .jp-Cell:last-child * { padding-bottom: 0 !important;
  margin-bottom: 0 !important; } }
@page { size: A4; margin: 12mm; }
@media print { * { overflow: visible !important; } }
</style>
"""


def mathjax_url(html_path: Path) -> str:
    """MathJax 2 shipped by the jupyter-server-mathjax wheel, relative to the HTML: equations render offline."""
    import os

    import jupyter_server_mathjax

    script = Path(jupyter_server_mathjax.__file__).parent / "static" / "MathJax.js"
    relative = os.path.relpath(script, Path(html_path).resolve().parent)
    return f"{relative}?config=TeX-AMS-MML_HTMLorMML-full"


def render_html(notebook: Path, html: Path) -> Path:
    """Executed report notebook -> HTML without code, without the Colab cells, with local MathJax."""
    from .notebook import skip_unused_iri_checker

    skip_unused_iri_checker()  # before nbformat: ~2 s of import for a checker it never uses
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    book = nbformat.read(str(notebook), as_version=4)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            mathjax_url=mathjax_url(html))
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"colab", "parameters", "injected-parameters"}), enabled=True)
    body, _ = exporter.from_notebook_node(book)
    body = body.replace("</head>", REPORT_CSS + "</head>", 1)
    return write_text(html, body)


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(
        "no Chromium found for the PDF. Install it (Debian/Ubuntu: `sudo apt-get install chromium`; "
        "`make system-deps` does this) or open report.html in a browser and print it."
    )


def render_pdf(html: Path, pdf: Path, timeout: int = 180) -> Path:
    """HTML -> PDF with a system Chromium, headless, offline; MathJax gets time to typeset first."""
    html, pdf = Path(html).resolve(), Path(pdf).resolve()
    with atomic_path(pdf) as tmp, tempfile.TemporaryDirectory() as profile_dir:
        command = [
            find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={profile_dir}", "--no-pdf-header-footer", "--virtual-time-budget=20000",
            f"--print-to-pdf={tmp}", html.as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
            raise RuntimeError(f"Chromium could not print {html} (exit {done.returncode}): {done.stderr[-2000:]}")
    return pdf


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.render", description="Render the executed report notebook.")
    sub = parser.add_subparsers(dest="command", required=True)
    h = sub.add_parser("html")
    h.add_argument("notebook", type=Path)
    h.add_argument("html", type=Path)
    p = sub.add_parser("pdf")
    p.add_argument("html", type=Path)
    p.add_argument("pdf", type=Path)
    args = parser.parse_args(argv)
    try:
        out = render_html(args.notebook, args.html) if args.command == "html" else render_pdf(args.html, args.pdf)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
