"""The notebooks: hygiene, and the whole suite executed with quick parameters through the runner.

With ``../shared/realdata`` present, ``01_capture`` also runs in import mode on both real logs.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

from asiclab import runner

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
QUICK = ROOT / "notebooks" / "params" / "quick.yaml"


def test_there_are_notebooks():
    assert [p.stem for p in NOTEBOOKS][:1] == ["01_capture"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_hygiene(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for c in code:
        assert not c.get("outputs"), f"{path.name}: committed with outputs"
        assert c.get("execution_count") is None, f"{path.name}: committed with execution counts"
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    params_src = code[tagged[0]].source
    assert "run_dir" in params_src
    # the cell right after the parameters validates them
    assert "validate(" in code[tagged[0] + 1].source
    # thin notebooks: no helper functions or classes defined in them
    for c in code:
        tree = ast.parse(c.source)
        defs = [n for n in ast.walk(tree)
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))]
        assert not defs, f"{path.name}: defines {type(defs[0]).__name__} in a notebook cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_quick_and_default_params_name_real_parameters(path: Path):
    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    declared = {t.id for n in ast.parse(cell.source).body if isinstance(n, ast.Assign)
                for t in n.targets if isinstance(t, ast.Name)}
    for yml in ("quick.yaml", "default.yaml"):
        params = runner.load_params(ROOT / "notebooks" / "params" / yml).get(path.stem, {})
        assert set(params) <= declared, f"{yml}: {sorted(set(params) - declared)} undeclared"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> runner.RunResult:
    runs = tmp_path_factory.mktemp("runs")
    # module scope: set up before the per-test isolation of conftest, so isolate figures here
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASICLAB_FIGURES_DIR", str(tmp_path_factory.mktemp("figures")))
        return runner.reproduce(QUICK, run_id="quick", runs_dir=runs, progress=False)


def test_quick_suite_runs_every_notebook(quick_run: runner.RunResult):
    failures = {n.name: n.error for n in quick_run.notebooks if n.status != "ok"}
    assert not failures, failures
    assert {n.name for n in quick_run.notebooks} == {p.stem for p in NOTEBOOKS}
    run = quick_run.run_dir
    for p in NOTEBOOKS:
        executed = nbformat.read(run / p.name, as_version=4)
        assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code")
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    assert any(f["path"] == "01_capture/capture.nc" and f["sha256"] for f in manifest["files"])
    results = json.loads((run / "results.json").read_text())["results"]
    assert {r["notebook"] for r in results} == {p.stem for p in NOTEBOOKS}
    assert (run / "summary.md").read_text().count("|") > 10
    pngs = sorted((run / "figures").glob("*.png"))
    assert pngs and all(p.with_suffix(".pdf").is_file() for p in pngs)
    gallery = (run / "figures" / "index.html").read_text()  # issue 12: lists every figure
    assert all(f'<figure id="{p.stem}">' in gallery for p in pngs)


def test_quick_capture_is_labelled_simulated(quick_run: runner.RunResult):
    from asiclab import dataset

    ds = dataset.open_capture(quick_run.run_dir / "01_capture" / "capture.nc")
    assert ds.attrs["source_kind"] == "simulated"
    assert ds.sizes["op"] == 4 and ds.sizes["event"] > 1000


def test_quick_heartbeat_recovers_the_model_truth(quick_run: runner.RunResult):
    results = {(r["notebook"], r["name"]): r for r in json.loads(
        (quick_run.run_dir / "results.json").read_text())["results"]}
    truth = results[("02_heartbeat", "recovers_model_truth")]
    assert truth["value"] is True, truth
    # nominal voltage: Poisson; just above the edge: over-dispersed
    assert results[("02_heartbeat", "heartbeat_d0_op0_cv")]["verdict"] == "consistent with Poisson"
    assert results[("02_heartbeat", "heartbeat_d0_op2_cv")]["verdict"].startswith("over-dispersed")


@pytest.mark.realdata
def test_heartbeat_notebook_on_the_s9_log(realdata_dir, tmp_path):
    """Known answer: CV of the unique valid S9 inter-arrival times is 0.813 +/- 0.002."""
    res = runner.reproduce(QUICK, run_id="s9", runs_dir=tmp_path, progress=False, overrides={
        "01_capture": {"source": "import", "log_format": "s9_stratum",
                       "log_path": str(realdata_dir / "s9_stratum_shares.csv")}})
    assert res.ok, [n.error for n in res.notebooks]
    results = {r["name"]: r for r in json.loads(
        (res.run_dir / "results.json").read_text())["results"] if r["notebook"] == "02_heartbeat"}
    cv = results["heartbeat_d0_op0_cv"]
    assert abs(cv["value"] - 0.813) <= 0.002
    assert "recovers_model_truth" not in results  # no model truth for real data


@pytest.mark.realdata
@pytest.mark.parametrize(("fname", "fmt", "n", "n_valid"),
                         [("s9_stratum_shares.csv", "s9_stratum", 2588, 2546),
                          ("lv06_bm1366_proofs.csv", "lv06_proofs", 32, 32)])
def test_capture_notebook_imports_real_logs(realdata_dir, tmp_path, fname, fmt, n, n_valid):
    res = runner.reproduce(QUICK, only=["01_capture"], run_id=f"import-{fmt}", runs_dir=tmp_path,
                           progress=False, overrides={"01_capture": {
                               "source": "import", "log_path": str(realdata_dir / fname),
                               "log_format": fmt}})
    assert res.ok, res.notebooks[0].error
    results = {r["name"]: r for r in json.loads(
        (res.run_dir / "results.json").read_text())["results"]}
    assert results["source_kind"]["value"] == "imported"
    assert results["n_valid"]["value"] == n_valid and results["n_events"]["value"] == n


def test_capture_notebook_carries_the_model_equations():
    from asiclab.devices.simulated import MODEL_EQUATIONS_MD

    nb = nbformat.read(ROOT / "notebooks" / "01_capture.ipynb", as_version=4)
    md = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert MODEL_EQUATIONS_MD.strip() in md


@pytest.mark.parametrize(("mode", "extra"), [
    ("cpu", {"voltages_mV": [1200.0], "dwell_s": 8.0}),
    ("emulated", {"voltages_mV": [1200.0, 1180.0], "dwell_s": 4.0,
                  "emulator_time_scale": 20.0}),
])
def test_live_captures_go_through_the_heartbeat_notebook(tmp_path, mode, extra):
    """The CPU-miner null control and the emulator feed 02_heartbeat like any other capture."""
    res = runner.reproduce(QUICK, run_id=f"live-{mode}", runs_dir=tmp_path, progress=False,
                           overrides={
                               "01_capture": {"source": "live", "live_mode": mode,
                                              "settle_s": 0.5, "telemetry_interval_s": 0.5,
                                              **extra},
                               "02_heartbeat": {"min_events": 20, "n_surrogates": 19}})
    assert res.ok, [n.error for n in res.notebooks]
    results = [r for r in json.loads((res.run_dir / "results.json").read_text())["results"]
               if r["notebook"] == "02_heartbeat"]
    names = {r["name"] for r in results}
    assert "heartbeat_d0_op0_cv" in names and "recovers_model_truth" not in names
    assert all("source emulated" in r["note"] for r in results
               if r["name"].startswith("heartbeat_") and r["name"].endswith("_cv"))


def _readme_command(first: str) -> str:
    """The README's shell command starting with ``first`` (with its continuation lines)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(first))
    out = [lines[i]]
    while out[-1].endswith("\\"):
        i += 1
        out.append(lines[i])
    return "\n".join(out)


@pytest.mark.realdata
def test_readme_import_command_works_as_printed(realdata_dir, tmp_path):
    """Issue 7 item 8: the README's import command, run from the repository root as printed."""
    import subprocess

    cmd = _readme_command(".venv/bin/asiclab reproduce --only 01_capture")
    assert "log_path=../shared/realdata/" in cmd  # the relative path a user types
    if not (ROOT / ".venv" / "bin" / "asiclab").exists():
        pytest.skip("no .venv/bin/asiclab in the checkout (run `make test`)")
    env = {**__import__("os").environ, runner.ENV_RUNS_DIR: str(tmp_path)}
    proc = subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["base_dir"] == str(ROOT.resolve())
    results = {r["name"]: r for r in json.loads((run_dir / "results.json").read_text())["results"]}
    assert results["n_events"]["value"] == 2588 and results["n_valid"]["value"] == 2546
