"""The figure gallery: ``figures/index.html``, rebuilt by every run.

:func:`write_gallery` reads the figures manifest of a run directory (written by
:func:`asiclab.plotting.savefig`, see :func:`asiclab.plotting.load_figures_manifest`), copies
every figure of the run (PNG and PDF) into the gallery folder (the project's ``figures/``, or
``$ASICLAB_FIGURES_DIR``) and writes ``index.html`` there: every figure of that run, grouped by
notebook, each as its PNG linking to its PDF, with its caption, the kind of data it shows
(simulated / emulated / hardware / imported / computed) and the run id. The run directory gets
the same page in ``<run>/figures/index.html``.

File names and captions are fixed by the notebooks (not by the data), so a LaTeX document can
include them run after run, e.g. ``\\includegraphics{figures/02_heartbeat_power.pdf}``.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asiclab import AsiclabError, plotting

INDEX = "index.html"

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
.grid { display: flex; flex-wrap: wrap; gap: 1.2em; }
figure { margin: 0; width: 420px; border: 1px solid #ddd; padding: 0.5em; }
figure img { width: 100%; }
figcaption { font-size: 0.9em; }
.meta { color: #555; font-size: 0.85em; }
.kind { font-weight: bold; text-transform: uppercase; }
.simulated { color: #D55E00; } .emulated { color: #CC79A7; } .imported { color: #0072B2; }
.hardware { color: #009E73; }
code { font-size: 0.95em; }
"""


class GalleryError(AsiclabError):
    """The gallery cannot be built (no run directory, unreadable figures manifest...)."""


def _group(entries: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in sorted(entries, key=lambda e: (str(e.get("notebook", "")), str(e["name"]))):
        groups.setdefault(str(e.get("notebook", "")), []).append(e)
    return groups


def render_index(entries: Sequence[dict[str, Any]], run_id: str) -> str:
    """The gallery page (HTML text) of the given figure entries.

    Parameters
    ----------
    entries : sequence of dict
        Figure entries as :func:`asiclab.plotting.load_figures_manifest` returns them.
    run_id : str
        The run the page shows.

    Returns
    -------
    str
        A self-contained HTML document; images and PDFs are linked by file name, relative to
        the page.
    """
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>asiclab figures, run {esc(run_id)}</title>",
           f"<style>{_STYLE}</style></head><body>",
           f"<h1>asiclab figures, run <code>{esc(run_id)}</code></h1>",
           f"<p>{len(entries)} figure(s). Each image links to its PDF; in LaTeX: "
           "<code>\\includegraphics{figures/NAME.pdf}</code>.</p>"]
    if not entries:
        out.append("<p>This run saved no figures.</p>")
    for notebook, figs in _group(entries).items():
        out.append(f'<h2 id="{esc(notebook, quote=True)}">{esc(notebook)}</h2><div class="grid">')
        for e in figs:
            kind = str(e.get("source_kind", ""))
            detail = str(e.get("source_detail", ""))
            cached = e.get("cached_from")
            meta = (f'<span class="kind {esc(kind, quote=True)}">{esc(kind)}</span>'
                    + (f" ({esc(detail)})" if detail else "")
                    + f" &middot; run <code>{esc(str(e.get('run_id', run_id)))}</code>"
                    + (f" (cached from <code>{esc(str(cached))}</code>)" if cached else ""))
            out.append(
                f'<figure id="{esc(e["name"], quote=True)}">'
                f'<a href="{esc(e["pdf"], quote=True)}"><img src="{esc(e["png"], quote=True)}" '
                f'alt="{esc(e.get("caption", ""), quote=True)}"></a>'
                f'<figcaption><b><code>{esc(e["name"])}</code></b>: {esc(e.get("caption", ""))}'
                f'<br><span class="meta">{meta}</span></figcaption></figure>')
        out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_gallery(run_dir: str | os.PathLike[str],
                  dest: str | os.PathLike[str] | None = None) -> Path:
    """Write ``index.html`` for the figures of a run, into ``dest`` and the run's ``figures/``.

    Parameters
    ----------
    run_dir : path-like
        The run directory (``papermill_runs/<run-id>``).
    dest : path-like, optional
        The gallery folder (default :func:`asiclab.plotting.figures_dir`); created if missing.
        Every figure of the run is copied there (PNG and PDF) so that the page's links resolve.

    Returns
    -------
    pathlib.Path
        The written ``dest/index.html``.

    Raises
    ------
    GalleryError
        ``run_dir`` is not a directory or its figures manifest is unreadable.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise GalleryError(f"{run} is not a run directory")
    try:
        entries = plotting.load_figures_manifest(run)
    except plotting.FigureError as exc:
        raise GalleryError(str(exc)) from exc
    src = run / "figures"
    present = [e for e in entries if (src / e["png"]).is_file()]
    page = render_index(present, run.name)
    src.mkdir(exist_ok=True)
    (src / INDEX).write_text(page)
    out = Path(dest) if dest is not None else plotting.figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() != src.resolve():
        for e in present:
            for key in ("png", "pdf"):
                f = src / e[key]
                if f.is_file():
                    shutil.copy2(f, out / e[key])
        (out / plotting.FIGURES_MANIFEST).write_text(json.dumps({"figures": present}, indent=1))
    (out / INDEX).write_text(page)
    return out / INDEX
