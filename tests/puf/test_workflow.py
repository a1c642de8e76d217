"""Notebook 05's workflow: parameters, a saved fleet re-analysed from file, recorded claims,
the real-data part, and a fleet captured through the live sweep code (pty BM1366 emulators)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asiclab import dataset, params, results
from asiclab.puf import evaluate, fleet, realdata, workflow
from asiclab.puf._errors import PufDataError, PufInputError
from asiclab.puf.responses import responses_from_capture

BASE = dict(
    source="sim", capture_path="", n_chips=6, challenges_mV=[1200.0, 1105.0],
    nominal_mV=1200.0, edge_mV=1105.0, n_captures=4, n_enroll=2, dwell_s=20.0, settle_s=5.0,
    frequency_MHz=485.0, ticket_difficulty=1.0, seed=2, workers=1, n_boot=50, n_perm=99,
    alpha=0.05, events_windows_s=[2.0, 20.0], target_eer=0.2, save_captures=True,
    realdata_dir="", live_devices=[], live_time_scale=20.0, live_listen_host="127.0.0.1",
    live_listen_port=3333, live_allow_lan=False, live_pool_difficulty=256.0)


@pytest.fixture
def p(tmp_path):
    out = params.validate({**BASE, "run_dir": str(tmp_path / "run")}, workflow.PARAMS,
                          notebook="05_puf")
    yield out
    results.reset()


def test_params_are_checked():
    with pytest.raises(params.ParameterError, match="challenges_mV"):
        params.validate({**BASE, "challenges_mV": [1200.0, 1200.0]}, workflow.PARAMS)
    with pytest.raises(params.ParameterError, match="n_chips"):
        params.validate({**BASE, "n_chips": 1}, workflow.PARAMS)
    with pytest.raises(PufInputError, match="n_enroll"):
        workflow.check({**BASE, "n_enroll": 4})
    with pytest.raises(PufInputError, match="edge_mV"):
        workflow.check({**BASE, "edge_mV": 1110.0})
    results.reset()


def test_run_records_both_claims_and_reanalyses_from_file(p, tmp_path):
    run = workflow.run(p, out_dir=tmp_path / "caps")
    assert run.source_kind == "simulated" and len(run.files) == 2
    entries = {e["name"]: e for e in workflow.record_results(run, p)}
    for name in ("puf_eer_nominal", "puf_eer_edge", "puf_uniqueness_edge",
                 "puf_reliability_edge", "puf_identification_accuracy_edge", "puf_control_eer",
                 "puf_events_needed", "dhf_device_information"):
        assert name in entries, name
    assert entries["puf_eer_edge"]["claim"]["id"] == "puf_distinguishability_claim"
    assert entries["dhf_device_information"]["claim"]["id"] == "dhf_fingerprint_claim"
    assert "simulator's model" in entries["puf_eer_edge"]["verdict"]
    assert entries["puf_control_eer"]["verdict"].startswith("indistinguishable")
    tab = workflow.metrics_table(run.fleet.results[1105.0], run.control.results[1105.0])
    assert tab.set_index("metric").loc["reliability (100 - intra HD) [%]", "ideal"] == 100.0
    # the same fleet from its saved file gives the same numbers
    q = {**p, "source": "file", "capture_path": str(run.files[0])}
    again = workflow.run(q)
    assert again.fleet.results[1105.0].eer == run.fleet.results[1105.0].eer
    assert again.fleet.responses.device_names == run.fleet.responses.device_names


def test_verdict_flags_a_separating_control(p):
    run = workflow.run({**p, "save_captures": False})
    run.control = run.fleet  # a "control" that separates must be called biased
    assert "WARNING" in workflow.verdict(run)


def test_realdata_skips_cleanly_when_absent(tmp_path):
    assert workflow.run_realdata(tmp_path) == {}
    with pytest.raises(PufDataError):
        realdata.dhf_check(tmp_path / "missing.csv")


@pytest.mark.realdata
def test_real_logs_histograms_rates_and_dhf(realdata_dir: Path):
    rd = workflow.run_realdata(realdata_dir)
    lc = rd["lv06_cores"]
    assert lc.n_events == 32 and lc.outside == 0 and lc.counts.sum() == 32
    rates = rd["rates"].set_index("device")["rate_hz"]
    assert rates["Antminer S9"] > 50 * rates["Lucky Miner LV06"]  # separates trivially
    d = rd["dhf"]
    assert d.n_proofs == 32 and d.host_recomputed == 32
    assert set(d.rate_by_device) == {1.0} and d.mutual_information_bits == 0.0


def test_uniformity_test_calibration():
    rng = np.random.default_rng(0)
    ps = [realdata.uniformity_test(rng.integers(0, 16, 40), 16, n_sim=199, seed=k).p_value
          for k in range(100)]
    assert 0.0 <= np.mean(np.array(ps) <= 0.1) <= 0.2
    skew = realdata.uniformity_test(np.r_[np.zeros(30, int), np.arange(16)], 16, n_sim=999)
    assert skew.p_value < 0.01


def test_live_plan_schedule_and_envelope():
    plan = fleet.live_plan([1200.0, 1150.0], 3, settle_s=1.0, dwell_s=2.0)
    assert [pt.voltage_mV for pt in plan] == [1200.0, 1150.0] * 3
    from asiclab.capture.live import UnsafePlanError

    with pytest.raises(UnsafePlanError):
        fleet.live_plan([1200.0, 1900.0], 2)
    with pytest.raises(PufInputError):
        fleet.capture_live_fleet([{"mode": "cpu"}], plan, journal_dir="unused")


def test_fleet_through_the_live_sweep_code_on_pty_emulators(tmp_path):
    """Two emulated BM1366 chips (different seeds) on pseudo-terminals, driven by
    capture.live over the real UART protocol, become one fleet capture that evaluates."""
    from asiclab.devices.emulated_bm1366 import EmulatedBM1366

    plan = fleet.live_plan([1200.0, 1170.0], 3, settle_s=0.2, dwell_s=0.8)
    with EmulatedBM1366(seed=5, nonce_difficulty=2.0**-20, speedup=20.0,
                        lookahead_s=0.05) as e1, \
            EmulatedBM1366(seed=6, nonce_difficulty=2.0**-20, speedup=20.0,
                           lookahead_s=0.05) as e2:
        devs = [{"mode": "serial", "serial_port": e.port, "voltage_setter": e.set_voltage,
                 "verify_difficulty": e.nonce_difficulty, "serial_source_kind": "emulated",
                 "ramp_step_delay_s": 0.0, "job_interval_s": 0.5} for e in (e1, e2)]
        ds = fleet.capture_live_fleet(devs, plan, journal_dir=tmp_path / "j",
                                      names=["emu-seed5", "emu-seed6"])
    dataset.validate_capture(ds)
    assert ds.attrs["source_kind"] == "emulated" and ds.sizes["op"] == 12
    r = responses_from_capture(ds)
    assert r.core_source == "core_id" and r.device_names == ["emu-seed5", "emu-seed6"]
    assert sorted(set(r.rep.tolist())) == [0, 1, 2] and r.hits.sum() > 0
    c = evaluate.evaluate_challenge(r.at(1200.0), n_enroll=2, n_boot=20)
    assert c.n_devices == 2 and c.genuine.size == 2 and c.impostor.shape == (2, 1)


LIVE = {**BASE, "source": "live", "live_devices": ["serial-emulated", "serial-emulated"],
        "challenges_mV": [1200.0, 1150.0], "nominal_mV": 1200.0, "edge_mV": 1150.0,
        "n_captures": 3, "n_enroll": 2, "dwell_s": 1.0, "settle_s": 0.0, "live_time_scale": 40.0,
        "n_chips": 2, "events_windows_s": [0.5, 1.0], "n_boot": 20, "n_perm": 19}


def test_live_source_on_two_pty_emulators_gives_a_fleet_that_evaluates(tmp_path):
    """source 'live': two pty BM1366 emulators (seeds 2 and 3) run the challenge schedule
    through capture.live; the fleet is saved in the run directory and evaluated."""
    p = params.validate({**LIVE, "run_dir": str(tmp_path / "run")}, workflow.PARAMS,
                        notebook="05_puf")
    try:
        run = workflow.run(p, out_dir=tmp_path / "out", progress=False)
        ds = run.fleet.capture
        assert run.source_kind == "emulated" and ds.attrs["live_mode"] == "serial"
        assert list(ds["device_name"].values) == ["serial-emulated-seed2",
                                                  "serial-emulated-seed3"]
        assert ds.sizes["op"] == 2 * 2 * 3  # devices x challenges x captures
        assert run.fleet.responses.core_source == "core_id"
        assert run.fleet.responses.hits.sum() > 0
        assert sorted(run.fleet.results) == [1150.0, 1200.0]
        assert run.fleet.results[1150.0].n_devices == 2
        saved = tmp_path / "out" / "puf_fleet.nc"
        assert run.files[0] == saved
        again = dataset.open_capture(saved)
        assert list(again["device_name"].values) == list(ds["device_name"].values)
        assert sorted(p.name for p in (tmp_path / "out" / "puf_live_journals").iterdir()) == [
            "puf_device0.journal", "puf_device1.journal"]
        entries = {e["name"]: e for e in workflow.record_results(run, p)}
        assert "emulated fleet of 2 devices" in entries["puf_eer_edge"]["note"]
        assert "simulator's model" not in entries["puf_eer_edge"]["verdict"]
        # the same run directory again: the journals are never overwritten
        with pytest.raises(PufInputError, match="journals"):
            workflow.run(p, out_dir=tmp_path / "out", progress=False)
    finally:
        results.reset()


@pytest.mark.parametrize("change, match", [
    ({"live_devices": ["serial-emulated"]}, "at least two"),
    ({"live_devices": ["serial-emulated", "cpu"]}, r"live_devices\[1\] = 'cpu': unknown"),
    ({"live_devices": ["serial-emulated", "stratum"]}, "cannot apply a voltage"),
    ({"live_devices": ["serial-emulated", "serial:"]}, "unknown device spec"),
    ({"live_devices": ["serial:/dev/ttyUSB0", "serial:/dev/ttyUSB1"]},
     r"live_devices\[0\] = 'serial:/dev/ttyUSB0': the UART cannot set the core voltage"),
    ({"live_devices": ["axeos-emulated", "axeos:http://192.168.1.50"]}, "live_listen_host"),
    ({"live_devices": ["axeos:http://192.168.1.50", "axeos:http://192.168.1.51"],
      "live_listen_host": "0.0.0.0"}, "live_allow_lan"),
    ({"live_devices": ["axeos:192.168.1.50", "axeos:http://192.168.1.51"],
      "live_listen_host": "0.0.0.0", "live_allow_lan": True}, "http:// or https://"),
    ({"live_devices": ["axeos:http://10.0.0.2", "axeos:http://10.0.0.2"],
      "live_listen_host": "0.0.0.0", "live_allow_lan": True}, "same device twice"),
    ({"live_devices": ["serial-emulated", "serial:emulated"]}, "write 'serial-emulated'"),
    ({"edge_mV": 1105.0}, "edge_mV"),
])
def test_live_source_refuses_bad_device_specs(change, match):
    with pytest.raises(PufInputError, match=match):
        workflow.check({**LIVE, **change})


def test_live_source_voltage_setters_only_where_available():
    def setter(mV):
        return mV

    hw = {**LIVE, "live_devices": ["serial:/dev/ttyUSB0", "serial:/dev/ttyUSB1"]}
    devs, labels, kind = workflow.live_devices(hw, voltage_setters={0: setter, 1: setter})
    assert kind == "hardware" and labels == hw["live_devices"]
    assert [d["serial_port"] for d in devs] == ["/dev/ttyUSB0", "/dev/ttyUSB1"]
    assert devs[0]["voltage_setter"] is setter and devs[0]["mode"] == "serial"
    with pytest.raises(PufInputError, match="mixes emulated and hardware"):
        workflow.check({**hw, "live_devices": ["serial-emulated", "serial:/dev/ttyUSB0"]},
                       voltage_setters={1: setter})
    with pytest.raises(PufInputError, match="emulated device sets its own voltage"):
        workflow.check(LIVE, voltage_setters={0: setter})
    with pytest.raises(PufInputError, match="only 2 entries"):
        workflow.check(hw, voltage_setters={0: setter, 1: setter, 5: setter})
    with pytest.raises(PufInputError, match="source 'live' only"):
        workflow.check(BASE, voltage_setters={0: setter})
    ax = workflow.live_devices({**LIVE, "live_devices": ["axeos-emulated", "serial-emulated"]})
    assert [d["mode"] for d in ax[0]] == ["emulated", "serial"] and ax[2] == "emulated"
    assert ax[1] == ["axeos-emulated-seed2", "serial-emulated-seed3"]


def test_live_source_refuses_unsafe_challenges_before_starting():
    from asiclab.capture.live import UnsafePlanError

    with pytest.raises(UnsafePlanError):
        workflow.check({**LIVE, "challenges_mV": [1200.0, 1350.0], "edge_mV": 1350.0})
