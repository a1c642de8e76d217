"""Figure style and saving."""

from __future__ import annotations

import os

import pytest

from asiclab import plotting, results


def _fig(labelled: bool = True):
    fig, ax = plotting.new_figure()
    ax.plot([0, 1], [1, 2])
    if labelled:
        ax.set_xlabel("time [s]")
        ax.set_ylabel("rate [1/s]")
    return fig


def test_savefig_png_pdf_in_run_dir_and_figures():
    fig = _fig()
    plotting.label_source(fig, "simulated", "seed 3")
    paths = plotting.savefig(fig, "test_fig")
    assert sorted(p.suffix for p in paths) == [".pdf", ".png"]
    for p in paths:
        assert p.parent == results.run_dir() / "figures"
        assert p.stat().st_size > 1000
        assert (plotting.Path(os.environ[plotting.ENV_FIGURES_DIR]) / p.name).is_file()
    assert paths[0].read_bytes()[:4] == b"\x89PNG"
    assert paths[1].read_bytes()[:4] == b"%PDF"


def test_unlabelled_axes_refused():
    fig = _fig(labelled=False)
    plotting.label_source(fig, "simulated")
    with pytest.raises(plotting.FigureError, match="label"):
        plotting.savefig(fig, "bad")


def test_source_label_required_and_shown():
    fig = _fig()
    with pytest.raises(plotting.FigureError, match="data source"):
        plotting.savefig(fig, "nolabel")
    plotting.label_source(fig, "emulated")
    assert any("EMULATED DATA" in t.get_text() for t in fig.texts)


def test_bad_name_refused():
    fig = _fig()
    plotting.label_source(fig, "imported")
    with pytest.raises(plotting.FigureError, match="name"):
        plotting.savefig(fig, "../escape")


def test_style_file_exists():
    assert plotting.style_path().is_file()


def test_clear_figures_removes_only_that_notebooks_copies():
    dest = plotting.figures_dir()
    for name in ("02_heartbeat_cv.png", "02_heartbeat_cv.pdf", "03_narma10_x.png", "notes.txt"):
        (dest / name).write_bytes(b"x")
    removed = plotting.clear_figures("02_heartbeat")
    assert sorted(p.name for p in removed) == ["02_heartbeat_cv.pdf", "02_heartbeat_cv.png"]
    assert sorted(p.name for p in dest.iterdir()) == ["03_narma10_x.png", "notes.txt"]
    with pytest.raises(plotting.FigureError):
        plotting.clear_figures("../x")
