"""The papermill runner on small synthetic notebooks: manifest, results, failures, options."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from asiclab import cli, runner
from helpers import write_notebook

GOOD = [
    ("parameters", "value = 1.5\nrun_dir = ''"),
    ("", "from asiclab import results, dataset\nfrom asiclab.params import Param, validate\n"
         "p = validate(globals(), {'value': Param(float, 'v', min=0)}, notebook='01_good')"),
    ("", "results.record('twice', 2 * p['value'], 's', 0.1, note='test')\n"
         "results.record('claimed', 0.5, '1', (0.4, 0.6), verdict='refuted', "
         "claim={'id': 'demo_claim', 'paper_value': 0.9, 'source': 'arXiv:0000.00000, Sec. 1'})\n"
         "ds = dataset.build_capture(events={'t_host_ns': [1, 2]}, "
         "attrs={'source_kind': 'simulated'})\n"
         "dataset.save_capture(ds, p['run_dir'] + '/01_good/c.nc')"),
]
BAD = [
    ("parameters", "run_dir = ''"),
    ("", "x = 1"),
    ("", "raise RuntimeError('deliberate failure')"),
    ("", "y = 2"),
]


@pytest.fixture
def nb_dir(tmp_path: Path) -> Path:
    d = tmp_path / "notebooks"
    d.mkdir()
    write_notebook(d / "01_good.ipynb", GOOD)
    write_notebook(d / "02_bad.ipynb", BAD)
    write_notebook(d / "03_after.ipynb", [("parameters", "run_dir = ''"), ("", "z = 3")])
    (d / "params.yaml").write_text("notebooks:\n  01_good:\n    value: 2.5\n")
    return d


def _run(nb_dir: Path, tmp_path: Path, **kw):
    return runner.reproduce(nb_dir / "params.yaml", notebooks_dir=nb_dir,
                            runs_dir=tmp_path / "runs", progress=False, **kw)


def test_failing_notebook_is_kept_named_and_stops_the_run(nb_dir, tmp_path):
    res = _run(nb_dir, tmp_path, run_id="r1")
    assert res.exit_code != 0
    assert [n.status for n in res.notebooks] == ["ok", "failed", "skipped"]
    run = tmp_path / "runs" / "r1"
    manifest = json.loads((run / "manifest.json").read_text())
    bad = manifest["notebooks"][1]
    assert bad["status"] == "failed"
    assert bad["error"]["ename"] == "RuntimeError"
    assert "deliberate failure" in bad["error"]["evalue"]
    assert bad["error"]["cell_index"] == 2  # position in the source notebook
    assert "raise RuntimeError" in bad["error"]["cell_source"]
    executed = nbformat.read(run / "02_bad.ipynb", as_version=4)
    assert any(o.get("output_type") == "error" for c in executed.cells if c.cell_type == "code"
               for o in c.get("outputs", []))
    assert not (run / "03_after.ipynb").exists()
    assert "02_bad failed" in (run / "summary.md").read_text()


def test_manifest_results_and_files(nb_dir, tmp_path):
    res = _run(nb_dir, tmp_path, run_id="r2", only=["01"])
    assert res.exit_code == 0
    run = tmp_path / "runs" / "r2"
    m = json.loads((run / "manifest.json").read_text())
    for key in ("git_commit", "git_dirty", "python", "packages", "start", "end", "notebooks",
                "files"):
        assert key in m
    assert m["packages"]["numpy"] != "none"
    nb = m["notebooks"][0]
    assert nb["parameters"]["value"] == 2.5 and nb["parameters"]["run_dir"] == str(run)
    assert nb["status"] == "ok" and nb["duration_s"] > 0
    (f,) = [f for f in m["files"] if f["role"] == "written"]
    assert f["path"] == "01_good/c.nc"
    assert f["sha256"] == runner.sha256_file(run / "01_good" / "c.nc")
    entries = json.loads((run / "results.json").read_text())["results"]
    assert entries[0]["value"] == 5.0 and entries[0]["unit"] == "s"
    assert entries[0]["notebook"] == "01_good"
    summary = (run / "summary.md").read_text()
    assert "5 ± 0.1 s" in summary
    # the Claims table comes first, before the notebook status and the results
    lines = summary.splitlines()
    assert lines[2] == "## Claims"
    assert summary.index("## Claims") < summary.index("## Notebooks") < summary.index("## Results")
    assert ("| demo_claim | arXiv:0000.00000, Sec. 1 | 0.9 | 0.5 [0.4, 0.6] | refuted | 01_good |"
            in summary)
    ledger = json.loads((run / "results.json").read_text())["claims"]
    assert [(c["claim"], c["value"], c["verdict"]) for c in ledger] == [
        ("demo_claim", 0.5, "refuted")]


def test_keep_going_and_overrides(nb_dir, tmp_path):
    res = _run(nb_dir, tmp_path, run_id="r3", keep_going=True,
               overrides={"01_good": {"value": 4.0}})
    assert [n.status for n in res.notebooks] == ["ok", "failed", "ok"]
    entries = json.loads((tmp_path / "runs" / "r3" / "results.json").read_text())["results"]
    assert entries[0]["value"] == 8.0


def test_wrong_parameter_stops_with_named_message(nb_dir, tmp_path):
    res = _run(nb_dir, tmp_path, run_id="r4", only=["01_good"],
               overrides={"01_good": {"value": -3}})
    (nb,) = res.notebooks
    assert nb.status == "failed"
    assert nb.error["ename"] == "ParameterError"
    assert "'value'" in nb.error["evalue"] and "-3" in nb.error["evalue"]
    assert ">= 0" in nb.error["evalue"]


def test_bad_invocations(nb_dir, tmp_path):
    with pytest.raises(runner.RunnerError, match="no such notebook"):
        _run(nb_dir, tmp_path, only=["99"])
    (nb_dir / "p2.yaml").write_text("notebooks:\n  07_missing: {}\n")
    with pytest.raises(runner.RunnerError, match="unknown notebook"):
        runner.reproduce(nb_dir / "p2.yaml", notebooks_dir=nb_dir, runs_dir=tmp_path)
    (nb_dir / "p3.yaml").write_text("notebooks: [1, 2\n")
    with pytest.raises(runner.RunnerError, match="YAML"):
        runner.load_params(nb_dir / "p3.yaml")
    _run(nb_dir, tmp_path, run_id="dup", only=["03"])
    with pytest.raises(runner.RunnerError, match="exists"):
        _run(nb_dir, tmp_path, run_id="dup", only=["03"])


def test_parse_override():
    assert runner.parse_override("01_capture.voltages_mV=[1200, 1100]") == \
        ("01_capture", "voltages_mV", [1200, 1100])
    with pytest.raises(runner.RunnerError):
        runner.parse_override("nodot=3")


def test_cli_exit_status(nb_dir, tmp_path, capsys):
    code = cli.main(["reproduce", "--params", str(nb_dir / "params.yaml"), "--run-id", "c1",
                     "--runs-dir", str(tmp_path / "runs"), "--only", "02", "--no-progress",
                     "--notebooks-dir", str(nb_dir)])
    assert code == 1
    assert "failed" in capsys.readouterr().out
    assert cli.main(["reproduce", "--params", str(tmp_path / "absent.yaml")]) == 2


def test_a_run_starts_figures_clean_for_the_notebooks_it_runs(nb_dir, tmp_path):
    """Stale copies of a notebook's figures in figures/ go before it runs; others stay."""
    from asiclab import plotting

    dest = plotting.figures_dir()
    (dest / "01_good_old.png").write_bytes(b"stale")
    (dest / "09_other_fig.png").write_bytes(b"other")
    res = _run(nb_dir, tmp_path, only=["01"])
    assert res.ok
    assert not (dest / "01_good_old.png").exists()
    assert (dest / "09_other_fig.png").exists()
