"""Live capture (asiclab.capture.live): sweep plans, the four modes, interruption, the CLI and the
notebook.

The end-to-end proof runs over loopback: the emulated LV06 (Stratum side) and the AxeOS emulator
(HTTP side) share one simulated chip; the capture goes through the same AxeOS client, sweep guard
and Stratum capture server as a real miner. Every share the emulator submitted is compared with
the emulator's own record of what it sent (recorded by wrapping its submit method), and every
hardware error of the chip model must come back as an invalid share with Stratum error 23.
Chip time is compressed with the emulators' time scaling; no test asserts a wall-clock time.
"""

from __future__ import annotations

import ast
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
import xarray as xr

from asiclab import dataset, params, plotting, runner
from asiclab.capture import journal, live
from asiclab.capture import workflow as capture
from asiclab.devices.axeos import SafetyEnvelope, UnsafeSettingError
from asiclab.devices.emulated_axeos import AxeOSEmulator, ChipHandle
from asiclab.devices.emulated_lv06 import EmulatedLV06
from asiclab.devices.simulated import ChipModelParams, SimulatedChip
from asiclab.protocol.stratum import ERR_LOW_DIFFICULTY

ROOT = Path(__file__).resolve().parents[2]
QUICK = ROOT / "notebooks" / "params" / "quick.yaml"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Record every share the emulated LV06 submits and every AxeOS emulator started."""
    rec: dict[str, list[Any]] = {"shares": [], "axeos": []}
    submit = EmulatedLV06._submit

    def recording_submit(self: EmulatedLV06, client: Any, share: Any) -> None:
        vb = int(share.version_bits, 16) if client.version_mask else 0
        rec["shares"].append({"key": (share.job_id, share.extranonce2, share.ntime,
                                      int(share.nonce, 16), vb),
                              "model_valid": share.model_valid})
        submit(self, client, share)

    start = AxeOSEmulator.start

    def recording_start(self: AxeOSEmulator) -> AxeOSEmulator:
        rec["axeos"].append(self)
        return start(self)

    monkeypatch.setattr(EmulatedLV06, "_submit", recording_submit)
    monkeypatch.setattr(AxeOSEmulator, "start", recording_start)
    return rec


def _journal_keys(path: Path) -> list[tuple[Any, ...]]:
    ev = journal.read_journal(path).events
    return [(str(j), str(e2), str(nt), int(n), int(vb)) for j, e2, nt, n, vb in zip(
        ev["job_id"], ev["extranonce2"], ev["ntime"], ev["nonce"], ev["version_bits"],
        strict=True)]


def _check_ops(ds: xr.Dataset, voltages: list[float], frequencies: list[float]) -> None:
    """Events and telemetry sit in the window of the operating point they are labelled with."""
    assert list(ds.op_voltage_set.values) == voltages
    assert list(ds.op_frequency_set.values) == frequencies
    t0, t1 = ds.op_t_start_ns.values, ds.op_t_end_ns.values
    assert np.all(t1 > t0) and np.all(t0[1:] >= t1[:-1])
    for t_name, op_name in (("t_host_ns", "op_index"), ("tel_t_host_ns", "tel_op_index")):
        t, op = ds[t_name].values, ds[op_name].values
        for k in range(len(voltages)):
            m = op == k
            assert np.all((t[m] >= t0[k]) & (t[m] <= t1[k])), (t_name, k)
        outside = op == -1
        for k in range(len(voltages)):
            assert not np.any((t[outside] > t0[k]) & (t[outside] < t1[k])), (t_name, k)


# --------------------------------------------------------------------------------------------
# sweep plans and parameters
# --------------------------------------------------------------------------------------------
def test_sweep_plan_grid_order_and_totals() -> None:
    plan = live.SweepPlan.grid([1200, 1150], [485, 450], settle_s=10, dwell_s=60)
    assert [(p.voltage_mV, p.frequency_MHz) for p in plan] == [
        (1200.0, 485.0), (1150.0, 485.0), (1200.0, 450.0), (1150.0, 450.0)]
    assert len(plan) == 4 and plan.total_s == 4 * 70.0
    d = json.loads(json.dumps(plan.to_dict()))
    assert d["envelope"]["voltage_mV"] == [1000.0, 1300.0] and len(d["points"]) == 4


@pytest.mark.parametrize("kw", [{"voltage_mV": math.nan}, {"voltage_mV": 0},
                                {"frequency_MHz": -1}, {"settle_s": -1.0}, {"dwell_s": 0},
                                {"dwell_s": True}])
def test_sweep_point_rejects_bad_values(kw: dict[str, Any]) -> None:
    args = {"voltage_mV": 1200, "frequency_MHz": 485, "settle_s": 1.0, "dwell_s": 10.0} | kw
    with pytest.raises(live.LiveError):
        live.SweepPoint(**args)


def test_unsafe_plan_is_refused_with_every_offending_point() -> None:
    with pytest.raises(live.UnsafePlanError, match=r"point 1 .*1350.*point 2 .*700 MHz") as e:
        live.SweepPlan((live.SweepPoint(1200, 485), live.SweepPoint(1350, 485),
                        live.SweepPoint(1200, 700)))
    assert isinstance(e.value, UnsafeSettingError)  # the same family as the AxeOS client's
    with pytest.raises(live.UnsafePlanError):
        live.SweepPlan.grid([1150], [485], settle_s=0, dwell_s=1,
                            envelope=SafetyEnvelope(voltage_mV=(1180.0, 1250.0)))
    ok = live.SweepPlan((live.SweepPoint(1350, 485),), override=True)
    assert ok.points[0].voltage_mV == 1350.0
    with pytest.raises(live.LiveError, match="at least one"):
        live.SweepPlan(())


def test_unsafe_plan_refused_before_the_miner_is_touched(tmp_path: Path) -> None:
    values = dict(capture.LIVE_DEFAULTS, live_mode="stratum+axeos", voltages_mV=[1200.0, 1350.0],
                  run_dir=str(tmp_path / "run"))
    with AxeOSEmulator(SimulatedChip(3)) as emu:
        values["miner_url"] = emu.url
        p = params.validate(values, capture.live_params_spec())
        with pytest.raises(live.UnsafePlanError, match="1350"):
            live.run_from_params(p, journal_path=tmp_path / "x.journal", progress=False)
        assert emu.n_requests == 0 and emu.restart_count == 0
    assert not (tmp_path / "x.journal").exists()


def test_live_parameters_are_validated_strictly(tmp_path: Path) -> None:
    good = dict(capture.LIVE_DEFAULTS, run_dir=str(tmp_path))
    params.validate(good, capture.live_params_spec())
    for name, bad in (("live_mode", "wifi"), ("safety_voltage_mV", [1300.0, 1000.0]),
                      ("safety_voltage_mV", [1000.0]), ("listen_port", 70000),
                      ("emulator_time_scale", 0.0), ("sweep_frequencies_MHz", [485.0, 485.0]),
                      ("listen_host", " "), ("allow_lan", "yes")):
        with pytest.raises(params.ParameterError, match=name):
            params.validate(dict(good, **{name: bad}), capture.live_params_spec())
    p = params.validate(dict(good, live_mode="serial"), capture.live_params_spec())
    with pytest.raises(params.ParameterError, match="serial_port"):
        live.run_from_params(p, journal_path=tmp_path / "s.journal", progress=False)
    p = params.validate(dict(good, miner_url="http://10.0.0.9"), capture.live_params_spec())
    with pytest.raises(params.ParameterError, match="miner_url"):
        live.run_from_params(p, journal_path=tmp_path / "e.journal", progress=False)


def test_notebook_parameter_defaults_match_the_cli_defaults() -> None:
    nb = nbformat.read(ROOT / "notebooks" / "01_capture.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    declared = {t.id: ast.literal_eval(n.value) for n in ast.parse(cell.source).body
                if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert set(capture.PARAMS) <= set(declared)
    shared_with_sim = {"voltages_mV", "frequency_MHz", "settle_s", "dwell_s",
                       "telemetry_interval_s", "seed"}
    for name in set(capture.LIVE_PARAM_NAMES) - shared_with_sim:
        assert declared[name] == capture.LIVE_DEFAULTS[name], name
    assert declared["source"] == "sim"  # make reproduce stays on the built-in data


# --------------------------------------------------------------------------------------------
# the end-to-end proof over loopback
# --------------------------------------------------------------------------------------------
def test_end_to_end_emulated_lv06_and_axeos_over_loopback(
        tmp_path: Path, recorded: dict[str, list[Any]]) -> None:
    voltages = [1180.0, 1160.0, 1140.0]  # all differ from the stock 1200 mV: changes are visible
    plan = live.SweepPlan.grid(voltages, [485.0], settle_s=0.3, dwell_s=1.5)
    chip = SimulatedChip(1, ChipModelParams(err_floor=0.3))  # many hardware errors
    statuses: list[live.LiveStatus] = []
    path = tmp_path / "e2e.journal"
    ds = live.run_live_capture("emulated", plan, journal_path=path, chip=chip, seed=1,
                               time_scale=20.0, telemetry_interval_s=0.2, restart_delay_s=0.2,
                               progress=False, on_update=statuses.append, update_interval_s=0.2)
    # provenance: emulated, time scaling recorded, clean finish, settings restored
    assert ds.attrs["source_kind"] == "emulated"
    assert list(ds.device_source_kind.values) == ["emulated"]
    assert ds.attrs["emulator_time_scale"] == 20.0 and "20 x" in ds.attrs["time_note"]
    assert ds.attrs["interrupted"] == 0 and ds.attrs["stop_reason"] == "completed"
    assert ds.attrs["n_points_completed"] == 3 and ds.attrs["journal_complete"] == 1
    assert ds.attrs["settings_restored"] == 1
    dataset.validate_capture(ds)
    # operating points: windows in order; events and telemetry labelled with their window
    assert ds.sizes["op"] == 3
    _check_ops(ds, voltages, [485.0] * 3)
    op = ds.op_index.values
    for k in range(3):
        assert (op == k).sum() > 0, f"no share in operating point {k}"
        m = ds.tel_op_index.values == k
        assert m.sum() >= 2, f"no telemetry in operating point {k}"
        assert np.all(ds.voltage_set.values[m] == voltages[k])  # the chip really ran there
        assert np.all(ds.frequency.values[m] == 485.0)
    # the settings went through PATCH + restart, and the original ones came back
    (emu,) = recorded["axeos"]
    log = Counter((m, p, s) for m, p, s in emu.request_log)
    assert log[("PATCH", "/api/system", 200)] == 4  # 3 points + the restore
    assert log[("POST", "/api/system/restart", 200)] == 4 and emu.restart_count == 4
    assert emu.operating_point() == (485.0, 1200.0)
    assert ds.attrs["original_voltage_mV"] == 1200.0
    # every share the emulator submitted appears exactly once
    shares = recorded["shares"]
    keys = _journal_keys(path)
    assert len(keys) == len(set(keys)) == ds.sizes["event"]
    assert Counter(keys) == Counter(s["key"] for s in shares)
    # hardware errors of the model are invalid shares with "low difficulty" (23), the rest valid
    by_key = {k: (bool(v), int(c)) for k, v, c in zip(
        keys, journal.read_journal(path).events["valid"],
        journal.read_journal(path).events["error_code"], strict=True)}
    n_invalid = 0
    for s in shares:
        valid, code = by_key[s["key"]]
        assert (valid, code) == ((True, 0) if s["model_valid"] else (False, ERR_LOW_DIFFICULTY))
        n_invalid += not s["model_valid"]
    assert n_invalid > 0
    assert int((~ds.valid.values).sum()) == n_invalid
    assert set(np.unique(ds.error_code.values)) <= {0, ERR_LOW_DIFFICULTY}
    # the callbacks saw the sweep, ending with a final status
    assert statuses[-1].final and statuses[-1].n_events == ds.sizes["event"]
    assert {s.point_index for s in statuses if s.phase == "dwell"} == {0, 1, 2}
    # the dataset is what the journal holds; NetCDF round trip
    xr.testing.assert_identical(ds, journal.recover(path, skip_damaged=True))
    out = dataset.save_capture(ds, tmp_path / "e2e.nc")
    xr.testing.assert_identical(dataset.open_capture(out), ds)


def test_ctrl_c_mid_sweep_keeps_the_data_and_restores(
        tmp_path: Path, recorded: dict[str, list[Any]]) -> None:
    plan = live.SweepPlan((live.SweepPoint(1180.0, 485.0, 0.2, 1.0),
                           live.SweepPoint(1160.0, 485.0, 0.2, 60.0),
                           live.SweepPoint(1140.0, 485.0, 0.2, 60.0)))

    def interrupt(st: live.LiveStatus) -> None:  # the notebook's stop button, during point 2
        if st.point_index == 1 and st.phase == "dwell" and st.n_events > 0:
            raise KeyboardInterrupt

    path = tmp_path / "int.journal"
    ds = live.run_live_capture("emulated", plan, journal_path=path, seed=2, time_scale=20.0,
                               telemetry_interval_s=0.2, restart_delay_s=0.2, progress=False,
                               on_update=interrupt, update_interval_s=0.1)
    assert ds.attrs["interrupted"] == 1 and "KeyboardInterrupt" in ds.attrs["stop_reason"]
    assert ds.attrs["n_points_completed"] == 1 and ds.attrs["journal_complete"] == 1
    assert ds.sizes["op"] == 2  # the third point never started
    assert ds.op_t_end_ns.values[1] > ds.op_t_start_ns.values[1]  # the open point was closed
    assert (ds.op_index.values == 0).sum() > 0 and ds.sizes["event"] == len(
        recorded["shares"])  # nothing submitted was lost
    (emu,) = recorded["axeos"]
    assert emu.operating_point() == (485.0, 1200.0) and ds.attrs["settings_restored"] == 1
    assert emu.restart_count == 3  # two points, then the restore


def test_overheat_stops_restores_and_keeps_the_data(tmp_path: Path) -> None:
    """stratum+axeos against miners started outside: the real mode's code path. The chip
    overheats during the second point; the guard restores the settings at once."""
    handle = ChipHandle(SimulatedChip(4))
    plan = live.SweepPlan((live.SweepPoint(1180.0, 485.0, 0.2, 1.0),
                           live.SweepPoint(1160.0, 485.0, 0.2, 60.0)),
                          envelope=SafetyEnvelope(max_temperature_C=80.0))
    with AxeOSEmulator(handle, restart_delay_s=0.2) as axeos:

        def heat(st: live.LiveStatus) -> None:
            if st.point_index == 1 and st.phase == "dwell" and st.n_events > 0:
                axeos.temperature_offset_C = 40.0  # reported temperature ~100 degC

        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        miner = EmulatedLV06("127.0.0.1", port, chip=handle, seed=4, time_scale=20.0)
        with miner.thread():
            with pytest.raises(live.LiveCaptureError, match="temperature") as exc:
                live.run_live_capture(
                    "stratum+axeos", plan, journal_path=tmp_path / "hot.journal",
                    miner_url=axeos.url, listen_port=port, pool_difficulty=2.0**-20,
                    telemetry_interval_s=0.1, confirm_interval_s=0.1, progress=False,
                    on_update=heat, update_interval_s=0.1, connect_timeout_s=30)
        ds = exc.value.capture
        assert ds is not None and exc.value.journal_path == tmp_path / "hot.journal"
        assert axeos.operating_point() == (485.0, 1200.0)
    assert ds.attrs["source_kind"] == "emulated"  # the AxeOS reply says so
    assert ds.attrs["stop_reason"].startswith("overheat") and ds.attrs["interrupted"] == 0
    assert ds.attrs["settings_restored"] == 1 and ds.attrs["n_points_completed"] == 1
    assert (ds.op_index.values == 0).sum() > 0 and np.nanmax(ds.temperature.values) > 80.0


# --------------------------------------------------------------------------------------------
# cpu and serial modes
# --------------------------------------------------------------------------------------------
def test_cpu_mode_is_a_valid_emulated_capture(tmp_path: Path) -> None:
    plan = live.SweepPlan.grid([1200.0, 1150.0], [485.0], settle_s=0.2, dwell_s=1.0)
    ds = live.run_live_capture("cpu", plan, journal_path=tmp_path / "cpu.journal",
                               progress=False)
    dataset.validate_capture(ds)
    assert ds.attrs["source_kind"] == "emulated" and list(ds.device_model.values) == ["CPU"]
    assert list(ds.device_source_kind.values) == ["emulated"]
    assert ds.sizes["op"] == 2 and np.all(np.isnan(ds.op_voltage_set.values))  # not applied
    assert ds.sizes["event"] > 0 and bool(ds.valid.values.all())
    assert np.all(ds.difficulty.values >= ds.pool_difficulty.values)
    assert ds.attrs["settings_restored"] == -1 and ds.attrs["stop_reason"] == "completed"


def test_serial_mode_against_the_pty_emulator(tmp_path: Path) -> None:
    from asiclab.devices.emulated_bm1366 import EmulatedBM1366

    plan = live.SweepPlan.grid([1200.0, 1170.0], [485.0, 400.0], settle_s=0.2, dwell_s=1.0)
    with EmulatedBM1366(seed=5, nonce_difficulty=2.0**-20, speedup=20.0,
                        lookahead_s=0.05) as emu:
        ds = live.run_live_capture(
            "serial", plan, journal_path=tmp_path / "uart.journal", serial_port=emu.port,
            voltage_setter=emu.set_voltage, verify_difficulty=emu.nonce_difficulty,
            serial_source_kind="emulated", ramp_step_delay_s=0.0, job_interval_s=0.5,
            progress=False)
        sent = [s for s in emu.sent() if s.kind == "nonce"]
        assert emu.frequency_mhz == 400.0 and emu.voltage_mV == 1170.0  # the last point
        assert emu.error is None
    dataset.validate_capture(ds)
    assert ds.attrs["source_kind"] == "emulated" and ds.attrs["device_model"] == "BM1366"
    _check_ops(ds, [1200.0, 1170.0, 1200.0, 1170.0], [485.0, 485.0, 400.0, 400.0])
    for k in range(4):
        assert (ds.op_index.values == k).sum() > 0, f"no nonce in operating point {k}"
    assert 0 < ds.sizes["event"] <= len(sent)
    valid = ds.valid.values
    assert valid.sum() > 0 and np.all(ds.difficulty.values[valid] >= 2.0**-20)
    assert np.all(ds.core_id.values >= 0) and np.all(ds.core_id.values < 112)
    assert set(np.unique(ds.error_code.values)) <= {0, 30}


# --------------------------------------------------------------------------------------------
# live plot
# --------------------------------------------------------------------------------------------
def _status(t: float, n_valid: int, op: int, temp: float) -> live.LiveStatus:
    return live.LiveStatus(t_s=t, phase="dwell", point_index=max(op, 0), n_points=2,
                           voltage_mV=1200.0, frequency_MHz=485.0, op_index=op,
                           n_events=n_valid, n_valid=n_valid, temperature_C=temp,
                           hashrate_GHs=430.0, source_kind="emulated", time_scale=20.0)


def test_live_plot_outside_a_kernel_keeps_history_only() -> None:
    plot = live.LivePlot(rate_window_s=4.0, min_interval_s=0.0)
    assert plot.active is False  # pytest is not a Jupyter kernel
    for i in range(41):
        t = 0.5 * i
        plot(_status(t, int(3 * t), 0 if t < 10 else 1, 55.0 + 0.1 * i))
    assert plot.n_draws == 0
    h = plot.history()
    assert h["t_s"].size == 41 and math.isnan(h["rate_per_s"][0])
    np.testing.assert_allclose(h["rate_per_s"][10:], 3.0, atol=0.2)  # 3 valid shares per second
    fig = plot.figure()
    assert fig._asiclab_source == "emulated"  # labelled with its data source
    plotting.savefig(fig, "live_plot_test", copy_to_figures=False)  # axes labelled with units


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------
def _asiclab() -> list[str]:
    exe = shutil.which("asiclab", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "asiclab.cli"]


_FAST = ["--settle", "0.2", "--telemetry-interval", "0.2", "--time-scale", "20", "--no-progress"]


def test_cli_capture_emulated_writes_netcdf(tmp_path: Path) -> None:
    out = tmp_path / "cap"
    proc = subprocess.run([*_asiclab(), "capture", "--mode", "emulated", "--voltages",
                           "1200,1180", "--dwell", "1", "--out", str(out), *_FAST],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert str(out / "capture.nc") in proc.stdout
    ds = dataset.open_capture(out / "capture.nc")
    assert ds.attrs["source_kind"] == "emulated" and ds.attrs["live_mode"] == "emulated"
    assert ds.sizes["op"] == 2 and ds.sizes["event"] > 0 and ds.sizes["sample"] > 0
    assert list(ds.op_voltage_set.values) == [1200.0, 1180.0]
    assert (out / "capture.journal").is_file()
    help_text = subprocess.run([*_asiclab(), "--help"], capture_output=True, text=True).stdout
    assert "capture" in help_text


def test_cli_capture_refuses_an_unsafe_plan(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from asiclab import cli

    out = tmp_path / "bad"
    rc = cli.main(["capture", "--mode", "emulated", "--voltages", "1200,1400", "--out",
                   str(out), *_FAST])
    assert rc == 2 and "unsafe" in capsys.readouterr().err
    assert not (out / "capture.journal").exists()
    rc = cli.main(["capture", "--mode", "emulated", "--safety-voltage", "1300,1000", "--out",
                   str(out), *_FAST])
    assert rc == 2 and "safety_voltage_mV" in capsys.readouterr().err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_capture_stops_cleanly_on_a_signal(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "sig"
    jpath = out / "capture.journal"
    proc = subprocess.Popen([*_asiclab(), "capture", "--mode", "emulated", "--voltages",
                             "1180,1160", "--dwell", "60", "--out", str(out), *_FAST],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until shares land inside the first point
            text = jpath.read_text() if jpath.exists() else ""
            if '["O",0,' in text and any(line.startswith('["E",') and ',0,0,' in line
                                         for line in text.splitlines()):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        os.kill(proc.pid, sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    ds = dataset.open_capture(out / "capture.nc")
    assert ds.attrs["interrupted"] == 1 and ds.attrs["settings_restored"] == 1
    assert ds.attrs["journal_complete"] == 1 and (ds.op_index.values == 0).sum() > 0
    assert ds.sizes["event"] == journal.read_journal(jpath).events["nonce"].size


# --------------------------------------------------------------------------------------------
# the notebook
# --------------------------------------------------------------------------------------------
def test_capture_notebook_runs_live_emulated(tmp_path: Path) -> None:
    overrides = {"01_capture": {"source": "live", "live_mode": "emulated",
                                "voltages_mV": [1200.0, 1180.0, 1160.0], "settle_s": 0.3,
                                "dwell_s": 1.5, "telemetry_interval_s": 0.25}}
    res = runner.reproduce(QUICK, only=["01_capture"], run_id="live-emulated", runs_dir=tmp_path,
                           progress=False, overrides=overrides)
    assert res.ok, res.notebooks[0].error
    run = res.run_dir
    results = {r["name"]: r for r in json.loads((run / "results.json").read_text())["results"]}
    assert results["source_kind"]["value"] == "emulated"
    assert results["interrupted"]["value"] == 0
    assert {f"rate_dev0_op{k}" for k in range(3)} <= set(results)
    ds = dataset.open_capture(run / "01_capture" / "capture.nc")
    assert ds.attrs["live_mode"] == "emulated" and ds.sizes["op"] == 3
    assert list((run / "01_capture").glob("live-*.journal"))
    nb = nbformat.read(run / "01_capture.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and "make_capture" in c.source]
    assert any("image/png" in o.get("data", {}) for o in cell.outputs)  # the live plot


# --------------------------------------------------------------------------------------------
# issue 7: several miners in a Stratum-only capture, provenance
# --------------------------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_stratum_only_capture_gives_every_worker_its_own_windows(tmp_path: Path) -> None:
    """Two miners in a Stratum-only capture, the second joining during the dwell: each is a
    device with its own operating-point window; the seed given is recorded; nothing claims a
    voltage or frequency was set."""
    from asiclab.devices.cpu_miner import CPUMiner

    port = _free_port()
    threads: list[Any] = []

    def start(worker: str) -> None:
        threads.append(CPUMiner("127.0.0.1", port, worker=worker, suggest_difficulty=2.0**-16,
                                mode="process").thread().start())

    def on_update(st: live.LiveStatus) -> None:
        if not threads:
            start("rig-a")
        elif len(threads) == 1 and st.phase == "dwell":
            start("rig-b")

    plan = live.SweepPlan.grid([1200.0], [485.0], settle_s=0.3, dwell_s=4.0)
    try:
        ds = live.run_live_capture(
            "stratum+axeos", plan, journal_path=tmp_path / "two.journal", listen_port=port,
            pool_difficulty=2.0**-16, accept_suggested_difficulty=True, seed=7,
            progress=False, on_update=on_update, update_interval_s=0.05,
            connect_timeout_s=60.0)
    finally:
        for t in threads:  # the server closed first: the miners end with "connection lost"
            t.stop()
            try:
                t.join(30.0)
            except Exception as exc:
                assert "connection" in str(exc)
    dataset.validate_capture(ds)
    names = ds.device_name.values.tolist()
    a, b = names.index("rig-a"), names.index("rig-b")
    assert sorted(ds.op_device_index.values.tolist()) == sorted([a, b])
    dev, op, t = ds.device_index.values, ds.op_index.values, ds.t_host_ns.values
    for d in (a, b):
        k = int(np.flatnonzero(ds.op_device_index.values == d)[0])
        t0, t1 = int(ds.op_t_start_ns.values[k]), int(ds.op_t_end_ns.values[k])
        inside = (dev == d) & (t >= t0) & (t < t1)
        assert inside.sum() > 0 and np.all(op[inside] == k) and np.all(op[(dev == d) & ~inside]
                                                                       == -1)
    assert np.all(np.isnan(ds.op_voltage_set.values)) and np.all(
        np.isnan(ds.op_frequency_set.values))
    point = json.loads(ds.attrs["parameters"])["plan"]["points"][0]
    assert point["voltage_mV"] == "not set" and point["frequency_MHz"] == "not set"
    assert ds.attrs["seed"] == 7 and ds.attrs["seed_origin"] == "given"
    assert "worker" in ds.attrs["op_windows_note"]


def test_declared_source_kind_labels_unknown_agents(tmp_path: Path) -> None:
    """A Stratum-only capture of an agent the server does not know is ``unknown`` unless the
    user declares what it is."""
    import asyncio

    from asiclab.devices.stratum_client import StratumClient
    from asiclab.protocol.stratum import StratumError

    async def miner(port: int) -> None:
        for _ in range(100):
            try:
                client = await StratumClient("127.0.0.1", port, worker="s9",
                                             agent="cgminer/4.10", version_rolling=False,
                                             suggest_difficulty=2.0**-40).connect()
                break
            except Exception:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("could not connect")
        await client.wait_for_job()
        while client.job is not None and client.job.difficulty > 1e-9:
            await asyncio.sleep(0.01)
        for i in range(200):  # until the capture ends and the server closes
            job = client.job
            assert job is not None
            en2 = i.to_bytes(client.extranonce2_size, "big")
            try:
                await client.submit(job.job_id, en2.hex(), f"{job.ntime:08x}", f"{i:08x}")
            except StratumError:
                break
            await asyncio.sleep(0.05)
        await client.close()

    kinds = {}
    for declared in (None, "hardware"):
        port = _free_port()
        th = __import__("threading").Thread(target=lambda p=port: asyncio.run(miner(p)))
        th.start()
        plan = live.SweepPlan.grid([1200.0], [485.0], settle_s=0.0, dwell_s=0.8)
        ds = live.run_live_capture(
            "stratum+axeos", plan, journal_path=tmp_path / f"{declared}.journal",
            listen_port=port, pool_difficulty=2.0**-40, accept_suggested_difficulty=True,
            progress=False, source_kind=declared, connect_timeout_s=30.0)
        th.join(30)
        assert ds.sizes["event"] > 0
        assert "cgminer/4.10" in ds.attrs["firmware"]
        kinds[declared] = (ds.attrs["source_kind"], ds.device_source_kind.values.tolist())
    assert kinds[None] == ("unknown", ["unknown"])
    assert kinds["hardware"] == ("hardware", ["hardware"])


def test_stratum_step_points_are_checked_and_refused_by_the_serial_mode(tmp_path: Path) -> None:
    with pytest.raises(live.LiveError, match="payload must be bytes"):
        live.SweepPoint(1200.0, 485.0, payload="text")  # type: ignore[arg-type]
    with pytest.raises(live.LiveError, match="difficulty"):
        live.SweepPoint(1200.0, 485.0, difficulty=-1.0)
    pt = live.SweepPoint(1200.0, 485.0, 0.0, 1.0, payload=bytearray(b"\x01"), difficulty=2.0)
    assert pt.stratum_step and pt.payload == b"\x01"
    assert not live.SweepPoint(1200.0, 485.0).stratum_step
    plan = live.SweepPlan((pt,))
    assert plan.to_dict()["points"][0]["payload"] == "01"
    with pytest.raises(live.LiveError, match="Stratum"):
        live.run_live_capture("serial", plan, journal_path=tmp_path / "s.journal",
                         serial_port="emulated", progress=False)
    with pytest.raises(live.LiveError, match="emulator_options"):
        live.run_live_capture("cpu", plan, journal_path=tmp_path / "c.journal", progress=False,
                         emulator_options={"ticket_per_pool": 1.0})
