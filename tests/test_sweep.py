"""``asiclab sweep``: grid parsing and validation, the gathered table, skipping completed runs,
and real sweeps of ``01_capture`` on a LocalCluster and on a ``dask scheduler`` / ``dask worker``
started as separate processes (with a worker killed mid-run)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import yaml

from asiclab import cli, params, runner, sweep

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

#: 01_capture in ~5 s: two short operating points of one simulated chip.
TINY = {"source": "sim", "seed": 1, "n_devices": 1, "voltages_mV": [1200.0, 1100.0],
        "frequency_MHz": 485.0, "dwell_s": 300.0, "settle_s": 10.0,
        "telemetry_interval_s": 3.0}


def _grid_file(tmp_path: Path, grid: dict[str, Any], base: dict[str, Any] | None = None) -> Path:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({"notebooks": {"01_capture": TINY}}))
    data = {"notebooks": ["01_capture"], "params": "tiny.yaml", **grid}
    if base:
        data["base"] = base
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --- grid format ------------------------------------------------------------------------------

def test_cartesian_and_zip_axes(tmp_path: Path):
    g = sweep.load_grid(_grid_file(tmp_path, {
        "grid": {"seed": [1, 2, 3], "voltages_mV": [[1200.0], [1200.0, 1100.0]]},
        "zip": {"dwell_s": [300.0, 600.0], "settle_s": [10.0, 20.0]}}))
    assert [a.dim for a in g.axes] == ["seed", "voltages_mV", "dwell_s"]
    runs = g.runs()
    assert len(runs) == 3 * 2 * 2
    assert runs[0].point == {"seed": 1, "voltages_mV": [1200.0], "dwell_s": 300.0,
                             "settle_s": 10.0}
    assert runs[-1].point == {"seed": 3, "voltages_mV": [1200.0, 1100.0], "dwell_s": 600.0,
                              "settle_s": 20.0}
    assert runs[1].position == (0, 0, 1)
    assert runs[1].overrides == {"01_capture": {"seed": 1, "voltages_mV": [1200.0],
                                                "dwell_s": 600.0, "settle_s": 20.0}}
    keys = [r.key for r in runs]
    assert len(set(keys)) == len(keys)
    assert all(r.run_id == f"r{r.index:03d}-{r.key[:10]}" for r in runs)
    # the key depends on the base parameter file's content
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({"notebooks": {"01_capture": {
        **TINY, "frequency_MHz": 400.0}}}))
    assert sweep.load_grid(tmp_path / "grid.yaml").runs()[0].key != keys[0]


def test_several_zip_groups_and_repeated_first_value(tmp_path: Path):
    g = sweep.load_grid(_grid_file(tmp_path, {"zip": [
        {"seed": [1, 1], "dwell_s": [300.0, 600.0]},
        {"settle_s": [10.0, 20.0, 30.0]}]}))
    assert [a.dim for a in g.axes] == ["zip0", "settle_s"]
    assert len(g.runs()) == 6


@pytest.mark.parametrize(("grid", "message"), [
    ({"notebooks": ["07_nothing"], "grid": {"seed": [1]}}, "unknown notebook"),
    ({"grid": {"sed": [1, 2]}}, "unknown parameter 'sed'"),
    ({"grid": {"seed": []}}, "empty list"),
    ({"grid": {"seed": 3}}, "must be a list"),
    ({"grid": {"seed": [1, 1]}}, "repeats a value"),
    ({"zip": {"seed": [1, 2], "dwell_s": [300.0]}}, "differ in length"),
    ({"grid": {"seed": [1, 2]}, "base": {"seed": 4}}, "set twice"),
    ({"grid": {"run_dir": ["a"]}}, "run_dir"),
    ({"grid": {"seed": [1]}, "grd": {}}, "unknown key"),
    ({}, "grid is empty"),
    ({"grid": {"02_heartbeat.alpha": [0.05]}}, "does not run"),
])
def test_grid_errors(tmp_path: Path, grid: dict[str, Any], message: str):
    data = {"notebooks": ["01_capture"], **grid}
    with pytest.raises(sweep.GridError, match=message):
        sweep.parse_grid(data, source="g.yaml")


def test_values_are_checked_against_the_notebooks_own_specification():
    spec = sweep.notebook_spec(runner.default_notebooks_dir() / "01_capture.ipynb")
    assert spec is not None and isinstance(spec["seed"], params.Param)
    with pytest.raises(sweep.GridError, match=r"parameter 'seed' = -1") as info:
        sweep.parse_grid({"notebook": "01", "grid": {"seed": [1, -1]}}, source="g.yaml")
    assert isinstance(info.value.__cause__, params.ParameterError)
    assert "r001" in str(info.value)  # names the run
    with pytest.raises(sweep.GridError, match="source"):
        sweep.parse_grid({"notebook": "01", "grid": {"source": ["sim", "simulated"]}})
    # qualified keys with several notebooks; a bare key is ambiguous there
    g = sweep.parse_grid({"notebooks": ["01", "02_heartbeat"],
                          "grid": {"01_capture.seed": [1, 2], "02.alpha": [0.01, 0.05]}})
    assert g.notebooks == ["01_capture", "02_heartbeat"]
    assert [a.dim for a in g.axes] == ["01_capture.seed", "02_heartbeat.alpha"]
    assert g.runs()[3].overrides == {"01_capture": {"seed": 2}, "02_heartbeat": {"alpha": 0.05}}
    with pytest.raises(sweep.GridError, match=r"NOTEBOOK\.PARAM"):
        sweep.parse_grid({"notebooks": ["01", "02"], "grid": {"seed": [1, 2]}})


def test_notebook_number_read_by_yaml_as_an_integer():
    g = sweep.parse_grid(yaml.safe_load("notebook: 01\ngrid:\n  seed: [1, 2]\n"))
    assert g.notebooks == ["01_capture"]


def test_notebook_parameters_reads_the_parameters_cell():
    declared = sweep.notebook_parameters(runner.default_notebooks_dir() / "03_narma10.ipynb")
    assert declared["steps"] == 10000 and declared["encodings"] == ["payload", "frequency"]


def test_bad_grid_file_is_a_typed_error(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [unclosed\n")
    with pytest.raises(sweep.GridError, match="not valid YAML"):
        sweep.load_grid(bad)
    with pytest.raises(sweep.GridError, match="cannot read"):
        sweep.load_grid(tmp_path / "missing.yaml")


def test_cli_dry_run_and_grid_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    grid = _grid_file(tmp_path, {"grid": {"seed": [1, 2], "dwell_s": [300.0, 600.0]}})
    assert cli.main(["sweep", "--grid", str(grid), "--runs-dir", str(tmp_path / "runs"),
                     "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("4 runs of 01_capture: 2 (seed) x 2 (dwell_s)")
    assert "seed=2, dwell_s=600.0" in out
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"notebook": "01", "grid": {"x": [1]}}))
    assert cli.main(["sweep", "--grid", str(tmp_path / "bad.yaml"), "--dry-run"]) == 2
    assert "unknown parameter 'x'" in capsys.readouterr().err
    assert cli.main(["sweep", "--grid", str(grid), "--sweep-id", "../up", "--dry-run"]) == 2
    assert "sweep id '../up'" in capsys.readouterr().err
    help_text = cli.build_parser().parse_args
    with pytest.raises(SystemExit):
        help_text(["sweep", "--help"])
    assert "zip:" in capsys.readouterr().out


# --- the table and skipping, on hand-made run directories -------------------------------------

def _fake_run(run: sweep.RunPlan, sweep_dir: Path, grid: sweep.Grid, commit: str,
              entries: list[dict[str, Any]], status: str = "ok") -> None:
    d = sweep_dir / run.run_id
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps({"results": entries}))
    base = runner.load_params(grid.params_file)
    nbs = [{"name": nb, "status": status,
            "parameters": {**base.get(nb, {}), **run.overrides.get(nb, {}), "run_dir": str(d)}}
           for nb in grid.notebooks]
    (d / "manifest.json").write_text(json.dumps({
        "status": status, "git_commit": commit.removesuffix("-dirty"),
        "git_dirty": commit.endswith("-dirty"), "notebooks": nbs}))
    run.run_dir, run.status = str(d), status


def _entry(name: str, value: Any, unc: Any = None) -> dict[str, Any]:
    return {"notebook": "01_capture", "name": name, "value": value, "unit": "1/s",
            "uncertainty": unc, "verdict": None, "note": "n"}


def test_results_dataset_and_tidy_csv(tmp_path: Path):
    g = sweep.load_grid(_grid_file(tmp_path, {"grid": {"seed": [1, 2],
                                                       "voltages_mV": [[1200.0], [1100.0]]}}))
    runs = g.runs()
    for r in runs[:3]:
        seed, v = r.point["seed"], r.point["voltages_mV"][0]
        _fake_run(r, tmp_path / "sw", g, "abc", [
            _entry("rate", seed * 1000 + v, [seed, v]), _entry("kind", f"s{seed}"),
            _entry("n", 7, 0.5), _entry("zero", 0.0, [0.0, 0.0])])
    runs[3].status = "failed"
    nc, csv = sweep.write_table(tmp_path / "sw", g, runs)
    ds = xr.open_dataset(nc)
    assert dict(ds.sizes) == {"seed": 2, "voltages_mV": 2}
    assert list(ds["seed"].values) == [1, 2]
    assert list(ds["voltages_mV"].values) == ["[1200.0]", "[1100.0]"]
    rate = ds["rate"].sel(seed=2, voltages_mV="[1200.0]")
    assert float(rate) == 3200.0
    assert float(ds["rate_ci_low"].sel(seed=1, voltages_mV="[1100.0]")) == 1.0
    assert float(ds["rate_ci_high"].sel(seed=2, voltages_mV="[1200.0]")) == 1200.0
    assert np.isnan(ds["rate"].values[1, 1])  # the failed run recorded nothing
    assert ds["rate"].attrs["unit"] == "1/s"
    assert str(ds["kind"].values[1, 0]) == "s2" and str(ds["kind"].values[1, 1]) == ""
    assert float(ds["n_uncertainty"].values[0, 0]) == 0.5
    assert float(ds["zero_ci_low"].values[0, 0]) == 0.0  # a zero bound is not missing
    assert list(ds["status"].values.ravel()) == ["ok", "ok", "ok", "failed"]
    import pandas as pd

    table = pd.read_csv(csv)
    assert len(table) == 12
    assert set(table.columns) >= {"run_id", "seed", "voltages_mV", "result", "value", "unit"}
    assert table.query("seed == 1 and result == 'rate'")["value"].astype(float).tolist() == \
        [2200.0, 2100.0]


def test_restart_skips_completed_runs_of_the_same_commit_only(tmp_path: Path):
    g = sweep.load_grid(_grid_file(tmp_path, {"grid": {"seed": [1, 2, 3]}}))
    sw = tmp_path / "sw"
    commit = sweep.git_commit(sweep.results.project_root())
    runs = g.runs()
    _fake_run(runs[0], sw, g, commit, [])
    _fake_run(runs[1], sw, g, "0" * 40, [])  # another commit
    _fake_run(runs[2], sw, g, commit, [], status="failed")
    planned = sweep.plan(g, sw)
    assert [r.skipped for r in planned] == [True, False, False]
    assert planned[0].run_dir == str(sw / runs[0].run_id)
    # same directory name but other parameters (a changed base file): not skipped
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({"notebooks": {"01_capture": {
        **TINY, "dwell_s": 301.0}}}))
    assert not any(r.skipped for r in sweep.plan(sweep.load_grid(tmp_path / "grid.yaml"), sw))


# --- real sweeps --------------------------------------------------------------------------------

def test_figures_dir_constant_is_plottings():
    from asiclab import plotting

    assert sweep.ENV_FIGURES_DIR == plotting.ENV_FIGURES_DIR


def test_sweep_on_a_local_cluster_and_restart(tmp_path: Path, _isolated_run_dir: Path):
    grid = sweep.load_grid(_grid_file(tmp_path, {"grid": {
        "seed": [1, 2], "voltages_mV": [[1200.0, 1100.0], [1200.0, 1150.0]]}}))
    lines: list[str] = []
    sw = tmp_path / "runs" / "sweeps" / "grid"
    result = sweep.run_sweep(grid, sweep_dir=sw, n_workers=2, progress=False,
                             echo=lines.append)
    assert result.ok, [(r.run_id, r.status, r.error) for r in result.runs]
    assert any(line.startswith("dask dashboard: http://127.0.0.1:") for line in lines)
    info = json.loads((sw / "sweep.json").read_text())
    assert info["status"] == "ok" and info["counts"] == {"ok": 4}
    assert info["grid"]["grid"]["seed"] == [1, 2]
    for r in info["runs"]:
        manifest = json.loads((Path(r["run_dir"]) / "manifest.json").read_text())
        assert manifest["status"] == "ok" and r["attempts"] == 1
        assert manifest["notebooks"][0]["parameters"]["seed"] == r["point"]["seed"]
        assert list((Path(r["run_dir"]) / "figures").glob("01_capture_*.png"))
    # the figure copies stayed in the runs: the figures folder the workers inherited is empty
    assert not list((_isolated_run_dir / "figures").iterdir())
    ds = xr.open_dataset(sw / "results.nc")
    assert dict(ds.sizes) == {"seed": 2, "voltages_mV": 2}
    n = ds["n_events"].values
    assert np.all(n > 0) and len(np.unique(n)) == 4  # four different simulated captures
    assert (ds["source_kind"].values == "simulated").all()
    # a re-started sweep makes nothing again
    attempts = (sw / "attempts.jsonl").read_text()
    again = sweep.run_sweep(grid, sweep_dir=sw, progress=False, echo=lines.append)
    assert again.ok and all(r.skipped for r in again.runs)
    assert (sw / "attempts.jsonl").read_text() == attempts
    xr.testing.assert_identical(xr.open_dataset(sw / "results.nc"), ds)


@pytest.fixture
def external_cluster(tmp_path: Path):
    """A ``dask scheduler`` and a ``dask worker`` (2 processes under nannies) on 127.0.0.1."""
    dask_exe = shutil.which("dask", path=str(BIN))
    if dask_exe is None:
        pytest.fail("the dask command is missing from the environment")
    sched_file = tmp_path / "scheduler.json"
    procs = []
    log = (tmp_path / "cluster.log").open("w")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs.append(subprocess.Popen(
        [dask_exe, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(sched_file)], stdout=log, stderr=subprocess.STDOUT,
        cwd=tmp_path, env=env, start_new_session=True))
    try:
        deadline = time.monotonic() + 60
        while not sched_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        procs.append(subprocess.Popen(
            [dask_exe, "worker", address, "--nworkers", "2", "--nthreads", "1", "--host",
             "127.0.0.1", "--no-dashboard", "--local-directory", str(tmp_path / "dask-worker")],
            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env,
            start_new_session=True))
        from distributed import Client

        with Client(address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        log.close()


def test_sweep_on_an_external_scheduler_with_a_failing_run_and_a_killed_worker(
        tmp_path: Path, external_cluster: str):
    # 2 seeds x 2 sources; "import" of a missing log passes validation and fails in a cell
    grid = sweep.load_grid(_grid_file(tmp_path, {"grid": {"seed": [1, 2],
                                                          "source": ["sim", "import"]}},
                                      base={"log_path": str(tmp_path / "no_such_log.csv")}))
    sw = tmp_path / "sweeps" / "ext"
    out: dict[str, Any] = {}

    def go() -> None:
        try:
            out["result"] = sweep.run_sweep(grid, sweep_dir=sw, scheduler=external_cluster,
                                            progress=False, echo=lambda s: None)
        except BaseException as exc:  # reported by the assertion below
            out["error"] = exc

    thread = threading.Thread(target=go)
    thread.start()
    # kill -9 the worker process running the first task, while it runs
    attempts = sw / sweep.ATTEMPTS
    deadline = time.monotonic() + 60
    while not (attempts.is_file() and attempts.read_text().strip()) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    first = json.loads(attempts.read_text().splitlines()[0])
    os.kill(first["pid"], signal.SIGKILL)
    thread.join(timeout=240)
    assert not thread.is_alive()
    assert "error" not in out, out.get("error")
    result = out["result"]
    assert result.scheduler == external_cluster
    by_point = {(r.point["seed"], r.point["source"]): r for r in result.runs}
    for (_seed, source), r in by_point.items():
        if source == "sim":
            assert r.status == "ok", r.error
        else:  # recorded with its failing cell; the sweep went on
            assert r.status == "failed" and r.error["notebook"] == "01_capture"
            assert isinstance(r.error["cell_index"], int) and r.error["cell_index"] > 0
            assert r.error["ename"]
    info = json.loads((sw / "sweep.json").read_text())
    assert info["status"] == "failed" and info["counts"] == {"ok": 2, "failed": 2}
    killed = next(r for r in info["runs"] if r["run_id"] == first["run_id"])
    assert killed["attempts"] >= 2  # the killed task ran again
    pids = {json.loads(line)["pid"] for line in attempts.read_text().splitlines()
            if json.loads(line)["run_id"] == first["run_id"]}
    assert len(pids) >= 2
    assert json.loads((Path(killed["run_dir"]) / "manifest.json").read_text())["status"] in (
        "ok", "failed")
    ds = xr.open_dataset(sw / "results.nc")
    assert dict(ds.sizes) == {"seed": 2, "source": 2}
    assert np.all(ds["n_events"].sel(source="sim").values > 0)
    assert list(ds["status"].sel(source="import").values) == ["failed", "failed"]


def test_the_readme_example_grid_is_valid():
    text = (ROOT / "README.md").read_text().split("## Sweeps", 1)[1]
    block = text.split("```yaml", 1)[1].split("```", 1)[0]
    g = sweep.parse_grid(yaml.safe_load(block), source="README", base_path=ROOT)
    assert g.notebooks == ["03_narma10"] and len(g.runs()) == 12
    assert [a.dim for a in g.axes] == ["seed", "encodings", "step_s"]


def test_unreachable_scheduler_is_a_typed_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(sweep, "CONNECT_TIMEOUT_S", 2.0)
    grid = sweep.load_grid(_grid_file(tmp_path, {"grid": {"seed": [1]}}))
    with pytest.raises(sweep.SweepError, match="cannot reach the dask scheduler"):
        sweep.run_sweep(grid, sweep_dir=tmp_path / "sw", scheduler=f"tcp://127.0.0.1:{port}",
                        progress=False, echo=lambda s: None)
    info = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert info["status"] == "error" and "cannot reach" in info["error"]
    assert info["runs"][0]["status"] == "pending"
