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
    realdata_dir="")


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
