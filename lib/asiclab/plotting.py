"""The one figure style of the suite, and figure saving.

Every figure is saved through :func:`savefig`, as PNG and PDF, into ``<run_dir>/figures/`` and
copied to the project's ``figures/`` folder. Figures made from simulated, emulated or imported
data carry that label on the figure itself (:func:`label_source`); :func:`savefig` refuses a
figure whose data axes lack labels, so every axis says what it shows and in which units.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from asiclab import AsiclabError, results

#: Colours of the source labels.
_SOURCE_COLOURS = {"simulated": "#D55E00", "emulated": "#CC79A7", "imported": "#0072B2",
                   "hardware": "#009E73"}


#: Environment variable overriding the project's ``figures/`` folder (used by the tests).
ENV_FIGURES_DIR = "ASICLAB_FIGURES_DIR"
#: The figures manifest written by :func:`savefig` beside the figures of a run directory.
FIGURES_MANIFEST = "figures.json"


class FigureError(AsiclabError):
    """A figure cannot be saved as it is (unlabelled axes, bad name...)."""


def style_path() -> Path:
    """Path of the suite's matplotlib style file."""
    return Path(str(resources.files("asiclab") / "style" / "asiclab.mplstyle"))


def use_style() -> None:
    """Apply the suite's matplotlib style globally (notebooks call it once).

    Under Jupyter's inline backend this also turns pyplot's interactive mode on: a kernel that
    selects the backend through ``MPLBACKEND`` (as ipykernel does) leaves it off, and then only
    the first figure of a notebook is shown inline (every figure is still saved).
    """
    plt.style.use(str(style_path()))
    if "inline" in str(plt.get_backend()).lower():
        plt.ion()


def new_figure(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots`` with the suite's style applied."""
    with plt.style.context(str(style_path())):
        fig, axes = plt.subplots(nrows, ncols, **kwargs)
    return fig, axes


def label_source(target: Any, source_kind: str, detail: str = "") -> None:
    """Stamp a figure with the kind of data it shows.

    Parameters
    ----------
    target : matplotlib Figure or Axes
        Where to put the label (an Axes' figure is used).
    source_kind : str
        ``"simulated"``, ``"emulated"``, ``"imported"`` or ``"hardware"`` (a capture's
        ``source_kind`` attribute).
    detail : str
        Extra text, e.g. the chip seed or the source file.
    """
    fig = target if isinstance(target, Figure) else target.figure
    text = f"{source_kind.upper()} DATA" + (f" ({detail})" if detail else "")
    fig.text(0.995, 0.005, text, ha="right", va="bottom", fontsize=8, fontweight="bold",
             color=_SOURCE_COLOURS.get(source_kind, "black"), alpha=0.9)
    fig._asiclab_source = source_kind  # type: ignore[attr-defined]
    fig._asiclab_source_detail = detail  # type: ignore[attr-defined]


def _check_labels(fig: Figure, name: str) -> None:
    for ax in fig.axes:
        if not ax.axison or not ax.has_data():
            continue
        # a shared axis may carry its label on a sibling (e.g. only the bottom x axis)
        xl = [a.get_xlabel() for a in ax.get_shared_x_axes().get_siblings(ax)]
        yl = [a.get_ylabel() for a in ax.get_shared_y_axes().get_siblings(ax)]
        if not any(t.strip() for t in xl) or not any(t.strip() for t in yl):
            raise FigureError(
                f"figure {name!r}: an axes with data lacks an x or y label "
                f"(x={ax.get_xlabel()!r}, y={ax.get_ylabel()!r}); label it with units")


def figures_dir() -> Path:
    """The folder that receives figure copies: ``$ASICLAB_FIGURES_DIR`` or the project's
    ``figures/``."""
    return Path(os.environ.get(ENV_FIGURES_DIR) or results.project_root() / "figures")


def clear_figures(notebook: str) -> list[Path]:
    """Remove the copies of one notebook's figures (``<notebook>_*.png|pdf``) from
    :func:`figures_dir`, so that a re-run does not mix old figures with new ones.

    Parameters
    ----------
    notebook : str
        The notebook stem, e.g. ``"02_heartbeat"`` (figure names start with it).

    Returns
    -------
    list of pathlib.Path
        The removed files.
    """
    if not notebook or not all(c.isalnum() or c in "-_" for c in notebook):
        raise FigureError(f"notebook name {notebook!r}: use letters, digits, '-' and '_' only")
    dest = figures_dir()
    removed = []
    if dest.is_dir():
        for ext in ("png", "pdf"):
            for path in dest.glob(f"{notebook}_*.{ext}"):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def default_caption(fig: Figure) -> str:
    """A caption from the figure's own titles: the suptitle, else the axes titles.

    Used when :func:`savefig` is given no ``caption``; an explicit caption is better, since a
    title may carry numbers that change between runs.
    """
    sup = getattr(fig, "_suptitle", None)
    if sup is not None and sup.get_text().strip():
        return " ".join(sup.get_text().split())
    titles = [" ".join(ax.get_title().split()) for ax in fig.axes if ax.get_title().strip()]
    return "; ".join(titles)


def load_figures_manifest(run: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The figure entries of a run directory (``<run>/figures/figures.json``), in saving order.

    Each entry holds ``name``, ``notebook``, ``caption``, ``source_kind``, ``source_detail``,
    ``png``, ``pdf`` (file names inside ``figures/``), ``run_id`` and ``time``.

    Raises
    ------
    FigureError
        The manifest exists but is not valid JSON of that shape.
    """
    path = Path(run) / "figures" / FIGURES_MANIFEST
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise FigureError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("figures"), list):
        raise FigureError(f"{path} does not hold a 'figures' list")
    return data["figures"]


def write_figures_manifest(run: str | os.PathLike[str], entries: list[dict[str, Any]]) -> Path:
    """Write the figure entries of a run directory (atomically; one entry per figure name)."""
    out_dir = Path(run) / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FIGURES_MANIFEST
    by_name: dict[str, dict[str, Any]] = {}
    for e in entries:
        by_name.pop(e["name"], None)
        by_name[e["name"]] = e
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps({"figures": list(by_name.values())}, indent=1))
    os.replace(tmp, path)
    return path


def savefig(fig: Figure, name: str, *, caption: str | None = None, copy_to_figures: bool = True,
            require_source_label: bool = True) -> list[Path]:
    """Save a figure as PNG and PDF in the run directory and copy it to ``figures/``.

    The figure is also entered in the run's figures manifest (:data:`FIGURES_MANIFEST`, read by
    :func:`load_figures_manifest` and the gallery :mod:`asiclab.gallery`) with its caption, the
    kind of data it shows (from :func:`label_source`), the notebook and the run id. File names
    are the given ``name``: keep names and captions free of run-dependent values (seeds, fitted
    numbers) so that a LaTeX document can ``\\includegraphics`` them run after run.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    name : str
        File stem, e.g. ``"01_capture_rate"`` (letters, digits, ``-`` and ``_``).
    caption : str, optional
        One or two sentences saying what the figure shows (default: its titles,
        :func:`default_caption`).
    copy_to_figures : bool
        Also copy to the project's ``figures/`` folder (default).
    require_source_label : bool
        Refuse a figure not stamped by :func:`label_source` (default), so that no simulated or
        emulated result can be mistaken for a measurement.

    Returns
    -------
    list of pathlib.Path
        The written files in the run directory.
    """
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise FigureError(f"figure name {name!r}: use letters, digits, '-' and '_' only")
    _check_labels(fig, name)
    if require_source_label and not hasattr(fig, "_asiclab_source"):
        raise FigureError(f"figure {name!r} is not labelled with its data source; "
                          "call asiclab.plotting.label_source(fig, ds.attrs['source_kind'])")
    out_dir = results.run_dir() / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for ext in ("png", "pdf"):
        path = out_dir / f"{name}.{ext}"
        fig.savefig(path)
        written.append(path)
    run = results.run_dir()
    entries = load_figures_manifest(run)
    entries.append({
        "name": name, "notebook": results.current_notebook(),
        "caption": " ".join((caption if caption is not None else default_caption(fig)).split()),
        "source_kind": getattr(fig, "_asiclab_source", "unlabelled"),
        "source_detail": getattr(fig, "_asiclab_source_detail", ""),
        "png": f"{name}.png", "pdf": f"{name}.pdf", "run_id": run.name,
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    })
    write_figures_manifest(run, entries)
    if copy_to_figures:
        dest = figures_dir()
        if dest.is_dir() and dest.resolve() != out_dir.resolve():
            for p in written:
                shutil.copy2(p, dest / p.name)
    return written
