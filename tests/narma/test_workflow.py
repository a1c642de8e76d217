"""Notebook 03's workflow: parameters, saved captures re-analysed from file, recorded claims."""

from __future__ import annotations

import json

import numpy as np
import pytest

from asiclab import params, results
from asiclab.narma import driver, workflow
from asiclab.narma._errors import EncodingError, NarmaInputError

BASE = dict(
    source="sim", capture_path="", encodings=["payload", "frequency"], step_s=1.0, steps=800,
    seed=0, washout=100, frequency_MHz_range=[400.0, 575.0], voltage_mV_range=[1120.0, 1250.0],
    difficulty_range=[4.0, 0.5], ticket_difficulty=1.0, feature_delays=0, max_lag=8,
    quad_max_lag=4, esn_sizes=[30], esn_spectral_radii=[0.9], esn_input_scalings=[0.2],
    mc_max_delay=5, n_null=3, n_boot=100, block=25, alpha=0.05,
    consistency_initial_temperature_C=40.0, step_sweep_s=[2.0], sweep_steps=400,
    sweep_encodings=["frequency"],
    time_scale=20.0, serial_port="", n_seeds=2, miner_url="", listen_host="")


@pytest.fixture
def p(tmp_path):
    out = params.validate({**BASE, "run_dir": str(tmp_path / "run")}, workflow.PARAMS,
                          notebook="03_narma10")
    yield out
    results.reset()


def test_params_are_checked():
    with pytest.raises(params.ParameterError, match="encodings"):
        params.validate({**BASE, "encodings": ["heat"]}, workflow.PARAMS)
    with pytest.raises(params.ParameterError, match="frequency_MHz_range"):
        params.validate({**BASE, "frequency_MHz_range": [400.0]}, workflow.PARAMS)
    results.reset()


def test_run_records_the_claim_and_reanalyses_from_file(p, tmp_path):
    runs = [workflow.run_encoding(p, e, out_dir=tmp_path / "caps", progress=False)
            for e in p["encodings"]]
    sweep = workflow.step_sweep(p, p["sweep_encodings"])
    assert list(sweep["encoding"]) == ["frequency"]
    seeds = workflow.seed_repeats(p, ["frequency"])
    summary = workflow.seed_summary(seeds)
    dev = summary[summary["model"] == "device"].iloc[0]
    assert dev["n_seeds"] == 2 and dev["ci_low"] < dev["mean"] < dev["ci_high"]
    assert seeds["seed"].tolist() == [1, 2]
    entries = {e["name"]: e for e in workflow.record_results(runs, sweep, seeds)}
    assert "narma_nrmse_device_frequency_over_seeds" in entries
    main = entries["narma_nrmse_device"]
    assert main["claim"]["id"] == "narma10_nrmse_paper_claim"
    assert main["claim"]["paper_value"] == 0.8661
    assert main["verdict"].startswith("not evidence of computation")  # payload: known truth
    assert entries["narma_device_beats_input"]["value"] is False
    for name in ("narma_nrmse_input_linear", "narma_nrmse_esn", "narma_nrmse_constant",
                 "narma_memory_capacity_device", "narma_consistency",
                 "narma_nrmse_device_frequency"):
        assert name in entries
    stored = json.loads((results.run_dir() / "results.json").read_text())["results"]
    assert any(r["claim"] for r in stored)
    # the saved capture re-runs the analysis: same features, same device score
    freq = runs[1]
    q = {**p, "source": "file", "capture_path": str(freq.capture_file)}
    again = workflow.run_encoding(q, "frequency", mc_and_consistency=False)
    np.testing.assert_allclose(again.features.to_numpy(), freq.features.to_numpy())
    np.testing.assert_allclose(again.series.target, freq.series.target, rtol=1e-12)
    assert again.report.models["device"].test_nrmse == pytest.approx(
        freq.report.models["device"].test_nrmse)
    with pytest.raises(NarmaInputError, match="holds a 'frequency' drive"):
        workflow.run_encoding(q, "payload")


def test_axeos_source_is_refused_with_a_clear_message(p):
    with pytest.raises(EncodingError, match="restart"):
        workflow.run_encoding({**p, "source": "axeos"}, "frequency", progress=False)


def test_live_drive_with_a_history_keeps_only_the_recorded_steps(p):
    q = {**p, "source": "serial-emulated"}
    u = np.array([0.1, 0.4, 0.2, 0.3])
    hist = np.array([0.5, 0.0])
    ds = workflow._drive(q, u, workflow.encoding_of(q, "frequency"), step_s=0.2,
                         prehistory=hist, initial_temperature_C=40.0)
    assert ds.attrs["source_kind"] == "emulated" and ds.sizes["op"] == 4
    np.testing.assert_array_equal(ds["narma_u"].values, u)
    assert ds["op_index"].values.max() <= 3
    with pytest.raises(EncodingError, match="payload"):
        workflow._drive(q, u, workflow.encoding_of(q, "payload"), step_s=0.2)


def test_emulated_lv06_source_drives_the_payload_through_the_capture_server(p):
    q = {**p, "source": "emulated", "time_scale": 1.0}
    u = np.array([0.1, 0.4, 0.2, 0.3])
    ds = workflow._drive(q, u, workflow.encoding_of(q, "payload"), step_s=0.3,
                         prehistory=np.array([0.5, 0.0]))
    assert ds.attrs["source_kind"] == "emulated" and ds.sizes["op"] == 4
    assert list(ds["narma_payload"].values) == [driver.payload_extranonce2(x) for x in u]
    assert ds["op_index"].values.max() <= 3
    with pytest.raises(EncodingError, match="restart"):
        workflow._drive(q, u, workflow.encoding_of(q, "voltage"), step_s=0.3)


def test_every_figure_is_labelled_and_saved(p):
    from asiclab import plotting
    from asiclab.narma import plots

    r = workflow.run_encoding({**p, "steps": 500}, "frequency", progress=False)
    sweep = workflow.step_sweep({**p, "sweep_steps": 300}, ["frequency"])
    figs = {
        "traces": plots.plot_traces(r.series),
        "bars": plots.plot_nrmse_bars(r.report, title="frequency"),
        "pred": plots.plot_predictions(r.report, ("device", "input_linear")),
        "esn": plots.plot_esn_curve(r.report.esn_curve, {"device": 0.7}),
        "mc": plots.plot_memory_capacity({"device": r.mc, "esn": r.mc_esn}),
        "cons": plots.plot_consistency(*r.consistency_features, washout=p["washout"]),
        "sweep": plots.plot_step_sweep(sweep),
    }
    for name, fig in figs.items():
        plotting.label_source(fig, r.source_kind)
        written = plotting.savefig(fig, f"test_narma_{name}", copy_to_figures=False)
        assert all(w.stat().st_size > 0 for w in written)
