"""The run cache: a notebook is restored, not executed, only when nothing it depends on changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asiclab import plotting, runcache, runner
from helpers import write_notebook

#: 01 reads a file named by a parameter and writes a data file into the run directory; 02 reads
#: that data file. Both record a result and save a figure; each appends a line to the file named
#: by ``$CALLS_LOG`` (outside the run directory) when it is really executed.
FIRST = [
    ("parameters", "run_dir = ''\nvalue = 1.0\ninput_path = ''"),
    ("", "import os\nfrom pathlib import Path\nfrom asiclab import plotting, results\n"
         "results.set_run_dir(run_dir, '01_first')\n"
         "text = Path(input_path).read_text()\n"
         "Path(os.environ['CALLS_LOG']).open('a').write('01\\n')\n"
         "out = Path(run_dir) / '01_first'\nout.mkdir(exist_ok=True)\n"
         "(out / 'data.txt').write_text(f'{value} {text}')\n"
         "results.record('value_twice', 2 * value, 's')"),
    ("", "fig, ax = plotting.new_figure()\nax.plot([0, 1], [0, value])\n"
         "ax.set_xlabel('t [s]')\nax.set_ylabel('v [V]')\n"
         "plotting.label_source(fig, 'simulated', f'value {value}')\n"
         "plotting.savefig(fig, '01_first_line', caption='A line.')"),
]
SECOND = [
    ("parameters", "run_dir = ''"),
    ("", "import os\nfrom pathlib import Path\nfrom asiclab import results\n"
         "results.set_run_dir(run_dir, '02_second')\n"
         "Path(os.environ['CALLS_LOG']).open('a').write('02\\n')\n"
         "data = (Path(run_dir) / '01_first' / 'data.txt').read_text()\n"
         "results.record('data_length', len(data), 'characters')"),
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CALLS_LOG", str(tmp_path / "calls.log"))
    d = tmp_path / "notebooks"
    d.mkdir()
    write_notebook(d / "01_first.ipynb", FIRST)
    write_notebook(d / "02_second.ipynb", SECOND)
    (tmp_path / "input.txt").write_text("original input")
    return tmp_path


def _run(project: Path, run_id: str, value: float = 1.0, cache: bool = True):
    params = project / "params.yaml"
    params.write_text(
        f"notebooks:\n  01_first:\n    value: {value}\n    input_path: {project / 'input.txt'}\n")
    (project / "calls.log").write_text("")
    res = runner.reproduce(params, notebooks_dir=project / "notebooks", runs_dir=project / "runs",
                           run_id=run_id, progress=False, base_dir=project, cache=cache)
    assert res.ok, [n.error for n in res.notebooks]
    executed = (project / "calls.log").read_text().split()
    return res, executed


def test_cache_restores_only_unchanged_notebooks(project: Path):
    res, executed = _run(project, "a")
    assert executed == ["01", "02"]
    assert all(n.cache_key and n.cached_from is None for n in res.notebooks)

    # same parameters, inputs and code: nothing is executed, every output is restored
    res_b, executed = _run(project, "b")
    assert executed == []
    assert [n.cached_from for n in res_b.notebooks] == ["a", "a"]
    assert [n.cache_key for n in res_b.notebooks] == [n.cache_key for n in res.notebooks]
    a, b = res.run_dir, res_b.run_dir
    assert (b / "01_first" / "data.txt").read_text() == "1.0 original input"
    assert (b / "01_first.ipynb").read_bytes() == (a / "01_first.ipynb").read_bytes()
    rec = {r["name"]: r["value"] for r in json.loads((b / "results.json").read_text())["results"]}
    assert rec == {"value_twice": 2.0, "data_length": len("1.0 original input")}
    (fig,) = plotting.load_figures_manifest(b)
    assert (fig["name"], fig["run_id"], fig["cached_from"]) == ("01_first_line", "b", "a")
    assert (b / "figures" / "01_first_line.pdf").is_file()
    manifest = json.loads((b / "manifest.json").read_text())
    assert [n["cached_from"] for n in manifest["notebooks"]] == ["a", "a"]
    assert any(f["path"] == "01_first/data.txt" and f["sha256"] for f in manifest["files"]) \
        or (b / "01_first" / "data.txt").is_file()

    # a changed input file: 01 runs again; its new output changes 02's input, so 02 runs too
    (project / "input.txt").write_text("edited input")
    _, executed = _run(project, "c")
    assert executed == ["01", "02"]

    # a changed parameter: both run again
    _, executed = _run(project, "d", value=2.0)
    assert executed == ["01", "02"]

    # back to run c's inputs: restored from c (the newest match), not from a
    res_e, executed = _run(project, "e")
    assert executed == [] and [n.cached_from for n in res_e.notebooks] == ["c", "c"]
    assert (res_e.run_dir / "01_first" / "data.txt").read_text() == "1.0 edited input"

    # without cache=True everything is executed, whatever the cache holds
    _, executed = _run(project, "f", cache=False)
    assert executed == ["01", "02"]


def test_a_failed_run_is_never_a_cache_hit(project: Path, tmp_path: Path):
    _run(project, "a")
    manifest = project / "runs" / "a" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["notebooks"][0]["status"] = "failed"
    manifest.write_text(json.dumps(data))
    res, executed = _run(project, "b")
    # 01 runs again; it writes the same data file, so 02's inputs are unchanged: restored
    assert executed == ["01"]
    assert [n.cached_from for n in res.notebooks] == [None, "a"]


def test_cache_key_follows_its_inputs(tmp_path: Path):
    nb = tmp_path / "01_x.ipynb"
    write_notebook(nb, [("parameters", "run_dir = ''")])
    data = tmp_path / "d.txt"
    data.write_text("1")
    run = tmp_path / "run"
    run.mkdir()

    def key(params: dict, commit: str = "abc") -> str:
        return runcache.cache_key(runcache.cache_inputs(nb, params, run, tmp_path, commit,
                                                        {"numpy": "2"}))

    base = key({"path": "d.txt", "run_dir": "/somewhere"})
    assert base == key({"path": "d.txt", "run_dir": "/elsewhere"})  # run_dir is not an input
    assert base != key({"path": "d.txt", "run_dir": "x"}, commit="def")
    assert base != key({"path": "d.txt", "n": 1})
    data.write_text("2")
    assert base != key({"path": "d.txt"})
    changed_file = key({"path": "d.txt"})
    (run / "01_x").mkdir()
    (run / "01_x" / "out.nc").write_text("earlier notebook output")
    assert key({"path": "d.txt"}) != changed_file


def test_restore_refuses_a_run_without_the_executed_notebook(tmp_path: Path):
    nb = tmp_path / "01_x.ipynb"
    write_notebook(nb, [("parameters", "run_dir = ''")])
    (tmp_path / "old").mkdir()
    with pytest.raises(runcache.RunCacheError, match=r"no executed 01_x\.ipynb"):
        runcache.restore(tmp_path / "old", tmp_path / "new", nb)
