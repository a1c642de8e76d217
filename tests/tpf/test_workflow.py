"""The notebook workflow: parameters, recorded results and the claims they test."""

from __future__ import annotations

from pathlib import Path

import pytest

from asiclab import results
from asiclab.params import ParameterError, validate
from asiclab.tpf import workflow as W

BASE = {"n_jobs": 3, "n_nonces": 1500, "p_share": 1 / 64, "rounds": [5, 125], "abort_round": 5,
        "n_perm": 9, "hgb_iter": 10, "alpha": 0.05, "n_check": 2000, "seed": 0,
        "capture_path": "nominal", "leak_window_s": 0.1, "realdata_dir": "", "run_dir": ""}


def test_params_are_validated() -> None:
    p = validate(BASE, W.PARAMS, notebook="04_tpf_energy")
    assert W.sweep_rounds_list(p) == [5, 125]
    assert W.sweep_rounds_list({**p, "rounds": []}) == list(range(1, 129))
    for bad in ({"n_jobs": 1}, {"rounds": [0]}, {"p_share": 0.9}, {"abort_round": 200}):
        with pytest.raises(ParameterError):
            validate({**BASE, **bad}, W.PARAMS)


def test_workflow_records_results_and_claims(tmp_path: Path) -> None:
    p = validate({**BASE, "realdata_dir": str(tmp_path / "absent")}, W.PARAMS,
                 notebook="04_tpf_energy")
    check = W.engine_check(p)
    assert check["n"].tolist() == check["n_equal"].tolist() == [2000]
    acc = W.accounting(p)
    data, sweep = W.run_sweep(p, progress=False)
    front = W.energy_frontier(data, sweep, p, acc)
    eff = W.device_efficiency(p)
    assert eff["source_kind"] == "nominal" and eff["MH_per_W"] == pytest.approx(500e3 / 13)
    leak, source, desc = W.leak_reproduction(p)  # no real data here: a simulated train
    assert source == "simulated" and "simulated" in desc
    entries = W.record_results(p, check, acc, sweep, front, eff, leak)
    names = {e["name"] for e in entries}
    assert {"tpf_max_auc_early_rounds", "tpf_first_informative_round",
            "tpf_energy_per_share_ratio_best_policy", "tpf_legit_early_out_saving",
            "tpf_leaky_accuracy", "tpf_leak_free_accuracy",
            "device_efficiency_GH_per_W"} <= names
    ledger = results.claims_ledger(results.load_results())
    assert {r["claim"] for r in ledger} == {
        "tpf_energy_reduction_claim", "tpf_mlp_100_percent_claim",
        "hardware_informed_88_5_claim", "lv06_efficiency_2_93_MHW_claim"}
    by = {e["name"]: e for e in entries}
    assert by["tpf_energy_reduction_claim"]["value"] == "inf"
    assert by["tpf_legit_early_out_saving"]["value"] == pytest.approx(6 / 128)
    assert by["tpf_first_informative_round"]["value"] == 125
    assert by["tpf_leaky_accuracy"]["value"] > 0.95


def test_missing_capture_raises(tmp_path: Path) -> None:
    p = validate({**BASE, "capture_path": str(tmp_path / "none.nc")}, W.PARAMS)
    with pytest.raises(W.TPFInputError):
        W.device_efficiency(p)


@pytest.mark.realdata
def test_real_headers_are_all_shares(realdata_dir: Path) -> None:
    p = validate({**BASE, "realdata_dir": str(realdata_dir)}, W.PARAMS)
    heads = W.real_headers(p)
    assert {k: len(v) for k, v in heads.items()} == {"S9 (BM1387)": 2588, "LV06 (BM1366)": 32}
    check = W.engine_check({**p, "n_check": 1000})
    assert (check["n"] == check["n_equal"]).all() and len(check) == 3


def test_capture_without_telemetry_falls_back_to_nominal(tmp_path: Path) -> None:
    from asiclab import dataset
    from asiclab.capture import workflow as capture
    from asiclab.devices.simulated import simulate_sweep

    ds = simulate_sweep(1, [1200.0], dwell_s=60.0, telemetry_interval_s=100.0)  # 1 sample
    run = tmp_path / "run"
    run.mkdir()
    dataset.save_capture(ds, capture.capture_path(run))
    p = validate({**BASE, "capture_path": "", "run_dir": str(run)}, W.PARAMS)
    eff = W.device_efficiency(p)
    assert eff["source_kind"] == "nominal" and "no usable telemetry" in eff["description"]
    with pytest.raises(W.TPFInputError):
        W.device_efficiency({**p, "capture_path": str(capture.capture_path(run))})
