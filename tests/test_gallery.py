"""The figure gallery ``figures/index.html`` and the figures manifest behind it."""

from __future__ import annotations

import ast
import html
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from asiclab import gallery, plotting, results, runner

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
QUICK = ROOT / "notebooks" / "params" / "quick.yaml"


def _fig(title: str = ""):
    fig, ax = plotting.new_figure()
    ax.plot([0, 1], [1, 2])
    ax.set_xlabel("time [s]")
    ax.set_ylabel("rate [1/s]")
    if title:
        ax.set_title(title)
    return fig


def test_savefig_records_caption_source_kind_notebook_and_run():
    results.set_run_dir(results.run_dir(), notebook="07_demo")
    fig = _fig("Title of the axes")
    plotting.label_source(fig, "emulated", "port 3333")
    plotting.savefig(fig, "07_demo_a", caption="  An explicit\n caption. ")
    plotting.label_source(fig2 := _fig("Rate against time"), "hardware")
    plotting.savefig(fig2, "07_demo_b")
    plotting.savefig(fig2, "07_demo_b", caption="Saved again: one entry.")
    entries = plotting.load_figures_manifest(results.run_dir())
    assert [(e["name"], e["caption"], e["source_kind"], e["notebook"]) for e in entries] == [
        ("07_demo_a", "An explicit caption.", "emulated", "07_demo"),
        ("07_demo_b", "Saved again: one entry.", "hardware", "07_demo")]
    assert entries[0]["source_detail"] == "port 3333"
    assert entries[0]["run_id"] == results.run_dir().name
    assert entries[0]["png"] == "07_demo_a.png" and entries[0]["pdf"] == "07_demo_a.pdf"


def test_default_caption_is_the_suptitle_else_the_axes_titles():
    fig = _fig("left panel")
    assert plotting.default_caption(fig) == "left panel"
    fig.suptitle("The whole\nfigure")
    assert plotting.default_caption(fig) == "The whole figure"


def test_damaged_figures_manifest_is_a_typed_error(tmp_path: Path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / plotting.FIGURES_MANIFEST).write_text("{not json")
    with pytest.raises(plotting.FigureError, match="not valid JSON"):
        plotting.load_figures_manifest(tmp_path)
    with pytest.raises(gallery.GalleryError, match="not valid JSON"):
        gallery.write_gallery(tmp_path, tmp_path / "out")
    with pytest.raises(gallery.GalleryError, match="not a run directory"):
        gallery.write_gallery(tmp_path / "missing", tmp_path / "out")


def test_render_index_groups_by_notebook_and_escapes_text():
    entries = [
        {"name": "02_b", "notebook": "02_x", "caption": "B <i>raw</i> & co", "png": "02_b.png",
         "pdf": "02_b.pdf", "source_kind": "emulated", "run_id": "r1"},
        {"name": "01_a", "notebook": "01_y", "caption": "A", "png": "01_a.png", "pdf": "01_a.pdf",
         "source_kind": "simulated", "run_id": "r1", "cached_from": "r0"},
    ]
    page = gallery.render_index(entries, "r1")
    assert page.index("<h2 id=\"01_y\">") < page.index("<h2 id=\"02_x\">")
    assert "B &lt;i&gt;raw&lt;/i&gt; &amp; co" in page and "<i>raw</i>" not in page
    assert '<a href="01_a.pdf"><img src="01_a.png"' in page
    assert "cached from <code>r0</code>" in page
    assert "This run saved no figures" in gallery.render_index([], "r2")


def _figure_cards(page: str) -> dict[str, str]:
    cards = re.findall(r'<figure id="([^"]+)">(.*?)</figure>', page, flags=re.S)
    return dict(cards)


@pytest.fixture(scope="module")
def two_capture_runs(tmp_path_factory: pytest.TempPathFactory):
    """01_capture twice, with different seeds and run ids, each rebuilding its own gallery."""
    out = []
    for seed in (1, 2):
        base = tmp_path_factory.mktemp(f"seed{seed}")
        figs = base / "figures"
        old = os.environ.get(plotting.ENV_FIGURES_DIR)
        os.environ[plotting.ENV_FIGURES_DIR] = str(figs)
        try:
            figs.mkdir()
            res = runner.reproduce(QUICK, only=["01_capture"], run_id=f"seed-{seed}",
                                   runs_dir=base / "runs", progress=False,
                                   overrides={"01_capture": {"seed": seed}})
        finally:
            if old is None:
                os.environ.pop(plotting.ENV_FIGURES_DIR)
            else:
                os.environ[plotting.ENV_FIGURES_DIR] = old
        assert res.ok, res.notebooks[0].error
        out.append((res, figs))
    return out


def test_figure_names_and_captions_are_stable_across_runs(two_capture_runs):
    (a, _), (b, _) = two_capture_runs
    fa, fb = (plotting.load_figures_manifest(r.run_dir) for r in (a, b))
    assert len(fa) >= 4
    assert [(e["name"], e["caption"]) for e in fa] == [(e["name"], e["caption"]) for e in fb]
    assert all(e["caption"] for e in fa)
    assert {e["run_id"] for e in fa} == {"seed-1"} and {e["run_id"] for e in fb} == {"seed-2"}
    # the data did change: the seed is part of the source label, not of the name or caption
    assert fa[0]["source_detail"] != fb[0]["source_detail"]


def test_every_run_rebuilds_the_gallery_with_every_figure(two_capture_runs):
    for res, figs in two_capture_runs:
        entries = plotting.load_figures_manifest(res.run_dir)
        page = (figs / gallery.INDEX).read_text()
        assert page == (res.run_dir / "figures" / gallery.INDEX).read_text()
        cards = _figure_cards(page)
        assert set(cards) == {e["name"] for e in entries}
        assert f"run <code>{res.run_dir.name}</code>" in page
        assert '<h2 id="01_capture">' in page
        for e in entries:
            card = cards[e["name"]]
            assert f'href="{e["pdf"]}"' in card and f'src="{e["png"]}"' in card
            assert html.escape(e["caption"]) in card
            assert 'class="kind simulated">simulated<' in card
            assert (figs / e["png"]).read_bytes()[:4] == b"\x89PNG"
            assert (figs / e["pdf"]).read_bytes()[:4] == b"%PDF"
        assert json.loads((figs / plotting.FIGURES_MANIFEST).read_text())["figures"] == entries


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_figure_has_an_explicit_caption(path: Path):
    """Captions written in the notebook, not taken from titles that may carry fitted numbers."""
    nb = nbformat.read(path, as_version=4)
    calls = [n for c in nb.cells if c.cell_type == "code" for n in ast.walk(ast.parse(c.source))
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == "savefig"]
    assert calls, f"{path.name} saves no figure"
    for call in calls:
        assert "caption" in {k.arg for k in call.keywords}, \
            f"{path.name}: savefig({ast.unparse(call.args[1])}) without caption="
