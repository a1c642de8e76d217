"""Tests of the simulated BM1366-class chip (asiclab.devices.simulated).

Statistical tests use fixed seeds (so they are deterministic) and tolerances of several standard
errors, computed here from first principles (Poisson counting statistics, the CV of an exponential
sample), never copied from the simulator's own output.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from asiclab import AsiclabError, dataset
from asiclab.devices import simulated as sim
from asiclab.devices.simulated import (
    MODEL_EQUATIONS_MD,
    ChipModelParams,
    SimulatedChip,
    SimulatorError,
    simulate_sweep,
)

# BM1366 facts (protocols.md, from the ESP-Miner firmware): 894 small cores, 112 cores,
# ticket difficulty 256, 485 MHz at 1200 mV; a nonce (ticket) costs D * 2^32 hashes.
SMALL_CORES = 894
CORES = 112


def expected_rate(f_mhz: float, difficulty: float) -> float:
    """Nonces per second of a fully working BM1366 [1/s]."""
    return f_mhz * 1e6 * SMALL_CORES / (difficulty * 2.0**32)


def cv(t_ns: np.ndarray) -> float:
    iat = np.diff(np.asarray(t_ns, dtype=np.int64)).astype(float)
    return float(iat.std(ddof=1) / iat.mean())


def settled_near(chip: SimulatedChip, offset_mV: float, settle_s: float = 300.0) -> float:
    """Put ``chip`` at its steady-state edge + offset, let it settle; return the voltage."""
    v = chip.steady_state_edge_voltage_mV() + offset_mV
    chip.set_operating_point(v, chip.params.nominal_frequency_MHz)
    chip.advance(settle_s)
    return v


# ----------------------------------------------------------------------------- rates


@pytest.mark.parametrize(("f_mhz", "difficulty"), [(485.0, 256.0), (300.0, 256.0), (485.0, 64.0)])
def test_rate_matches_hashrate(f_mhz: float, difficulty: float) -> None:
    chip = SimulatedChip(3, ticket_difficulty=difficulty)
    chip.set_operating_point(1200.0, f_mhz)
    chip.advance(120.0)
    lam = expected_rate(f_mhz, difficulty)
    duration = 60_000.0 / lam  # ~60k expected events
    ev = chip.advance(duration)
    n_expected = lam * duration
    # all events (valid and hardware errors) are tickets: Poisson count, 5 sigma
    assert abs(len(ev) - n_expected) < 5 * math.sqrt(n_expected)
    assert chip.max_nonce_rate_hz == pytest.approx(lam, rel=1e-12)
    assert chip.expected_hashrate_GHs() == pytest.approx(f_mhz * SMALL_CORES / 1000)


def test_nominal_rate_is_about_0_4_per_second() -> None:
    # protocols.md: "Nonce replies arrive at about hashrate / (256 * 2^32) per second (~0.4/s)"
    assert SimulatedChip(0).max_nonce_rate_hz == pytest.approx(0.4, abs=0.01)


def test_events_attributed_uniformly_to_112_cores() -> None:
    ev = SimulatedChip(5).advance(100_000 / expected_rate(485, 256))
    assert ev.core_id.dtype == np.int32
    assert ev.core_id.min() >= 0 and ev.core_id.max() < CORES
    counts = np.bincount(ev.core_id, minlength=CORES)
    assert counts.size == CORES and np.all(counts > 0)
    assert stats.chisquare(counts).pvalue > 1e-4


def test_events_lie_in_the_advanced_interval_in_order() -> None:
    chip = SimulatedChip(1)
    t_start = chip.now_ns
    ev = chip.advance(5000.0)
    assert ev.t_ns.dtype == np.int64
    assert chip.now_ns == t_start + 5000 * 10**9
    assert ev.t_ns.min() > t_start and ev.t_ns.max() <= chip.now_ns
    assert np.all(np.diff(ev.t_ns) >= 0)
    empty = chip.advance(0.0)
    assert len(empty) == 0 and chip.now_ns == t_start + 5000 * 10**9


def test_cv_at_nominal_is_poisson() -> None:
    for seed in (0, 11):
        chip = SimulatedChip(seed)
        assert chip.voltage_mV == 1200.0 and chip.frequency_MHz == 485.0
        ev = chip.advance(102_000 / chip.max_nonce_rate_hz)  # 100k with > 6 sigma to spare
        assert len(ev) >= 100_000
        assert abs(cv(ev.t_ns[:100_000]) - 1.0) < 0.02
        # and the valid events alone (what a pool sees)
        valid = ev.t_ns[ev.valid]
        assert abs(cv(valid) - 1.0) < 0.02
        # exponential inter-arrivals: KS against the exponential with the expected rate
        iat = np.diff(valid) * 1e-9
        assert stats.kstest(iat, "expon", args=(0, 1 / chip.max_nonce_rate_hz)).pvalue > 1e-4


def test_difficulty_follows_the_share_distribution() -> None:
    chip = SimulatedChip(2)
    ev = chip.advance(40_000 / chip.max_nonce_rate_hz)
    d = ev.difficulty[ev.valid]
    assert d.min() >= 256.0
    # P(difficulty > x) = 256 / x for a share at ticket difficulty 256 -> 256/d ~ U(0, 1]
    assert stats.kstest(256.0 / d, "uniform").pvalue > 1e-4
    frac = np.mean(d >= 512.0)
    assert abs(frac - 0.5) < 5 * math.sqrt(0.25 / d.size)
    # hardware errors hash to random values: far below the ticket
    assert np.all(ev.difficulty[~ev.valid] < 1e-3)
    assert np.all((ev.nonce >= 0) & (ev.nonce < 2**32))
    np.testing.assert_array_equal(ev.error_code, np.where(ev.valid, 0, 30))
    assert sim.ERROR_HARDWARE == dataset.ERROR_HARDWARE == 30


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_chip_and_stream() -> None:
    a, b = SimulatedChip(42), SimulatedChip(42)
    np.testing.assert_array_equal(a.core_critical_voltages_mV(), b.core_critical_voltages_mV())
    a.telemetry()  # telemetry must not perturb the nonce stream
    for chip in (a, b):
        chip.advance(1000.0)
        chip.set_operating_point(1120.0, 485.0)
    ea, eb = a.advance(20_000.0), b.advance(20_000.0)
    for name in ("t_ns", "core_id", "valid", "difficulty", "nonce"):
        np.testing.assert_array_equal(getattr(ea, name), getattr(eb, name))


def test_different_seeds_are_different_chips() -> None:
    vc = [SimulatedChip(s).core_critical_voltages_mV(60.0, 485.0) for s in range(4)]
    assert all(v.shape == (CORES,) for v in vc)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.allclose(vc[i], vc[j])
    edges = [SimulatedChip(s).edge_voltage_mV(60.0, 485.0) for s in range(20)]
    assert np.std(edges) > 1.0  # chip-to-chip spread of the edge


def test_per_core_parameters_come_from_default_rng_in_documented_order() -> None:
    p = ChipModelParams()
    seed = 123
    rng = np.random.default_rng(seed)
    z0 = rng.standard_normal()
    z = rng.standard_normal(p.n_cores)
    zs = rng.standard_normal(p.n_cores)
    v0 = p.edge_mean_mV + p.edge_sd_mV * z0
    s = np.exp(p.speed_sd * zs)
    t, f = 70.0, 500.0
    expected = (v0 + p.core_sd_mV * z + p.dvc_df_mV_per_MHz * (s * f - p.ref_frequency_MHz)
                + p.dvc_dT_mV_per_K * (t - p.ref_temperature_C))
    chip = SimulatedChip(seed)
    np.testing.assert_allclose(chip.core_critical_voltages_mV(t, f), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(chip.core_speed_factors, s)


def test_sweep_is_deterministic() -> None:
    kw = {"dwell_s": 600.0, "settle_s": 20.0}
    a = simulate_sweep(4, [1200.0, 1150.0], **kw)
    b = simulate_sweep(4, [1200.0, 1150.0], **kw)
    c = simulate_sweep(5, [1200.0, 1150.0], **kw)
    for ds in (a, b):
        ds.attrs.pop("created")
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a["t_host_ns"].values[:50], c["t_host_ns"].values[:50])


def test_sweep_events_do_not_depend_on_telemetry_interval() -> None:
    a = simulate_sweep(2, [1200.0, 1120.0], dwell_s=1000.0, settle_s=10.0)
    b = simulate_sweep(2, [1200.0, 1120.0], dwell_s=1000.0, settle_s=10.0,
                       telemetry_interval_s=5.0)
    assert b.sizes["sample"] == (2 * 1010) // 5
    for name in ("t_host_ns", "core_id", "valid", "difficulty", "op_index"):
        np.testing.assert_array_equal(a[name].values, b[name].values)


def test_step_values_against_brute_force() -> None:
    rng = np.random.default_rng(0)
    for n_knots in (0, 1, 7, 200):
        knots = np.sort(rng.random(n_knots)) * 100
        values = rng.random(n_knots)
        t = np.sort(rng.random(500)) * 100
        t[:3] = knots[:3] if n_knots >= 3 else t[:3]  # ties: a knot at an event counts
        t.sort()
        expected = np.array([values[knots <= x][-1] if np.any(knots <= x) else -1.0 for x in t])
        np.testing.assert_array_equal(sim._step_values(knots, values, -1.0, t), expected)


def test_multi_device_uses_consecutive_seeds() -> None:
    volts = [1200.0, 1140.0]
    multi = simulate_sweep(7, volts, dwell_s=900.0, settle_s=30.0, n_devices=2)
    single = simulate_sweep(8, volts, dwell_s=900.0, settle_s=30.0)
    assert list(multi["device_name"].values) == ["sim-BM1366-seed7", "sim-BM1366-seed8"]
    assert multi.sizes["op"] == 4
    dev1 = multi["device_index"].values == 1
    np.testing.assert_array_equal(multi["t_host_ns"].values[dev1], single["t_host_ns"].values)
    np.testing.assert_array_equal(multi["core_id"].values[dev1], single["core_id"].values)
    assert np.all(np.diff(multi["t_host_ns"].values) >= 0)  # devices interleaved in time
    params = json.loads(multi.attrs["parameters"])
    assert params["device_seeds"] == [7, 8]


# ----------------------------------------------------------------------------- the edge


def test_overdispersion_errors_and_collapse_near_the_edge() -> None:
    chip = SimulatedChip(0)
    lam = chip.max_nonce_rate_hz
    nominal = chip.advance(50_000 / lam)
    nominal_invalid = 1 - nominal.valid.mean()
    assert nominal_invalid < 0.005

    settled_near(chip, +12.0)
    near = chip.advance(60_000 / lam)
    valid = near.t_ns[near.valid]
    assert valid.size > 20_000
    # the CV of 2e4 exponential intervals has standard error ~1/sqrt(2e4) = 0.007
    assert cv(valid) > 1.15
    near_invalid = 1 - near.valid.mean()
    assert near_invalid > 0.05 and near_invalid > 10 * nominal_invalid

    rates = []
    for offset in (40.0, 12.0, 0.0, -25.0):
        settled_near(chip, offset)
        duration = 20_000.0
        rates.append(len(chip.advance(duration)) / duration / lam)
    assert rates[0] > 0.8
    assert rates[0] > rates[1] > rates[2] > rates[3]
    assert rates[3] < 0.01  # below the edge the rate collapses


def test_stalls_are_shared_across_cores() -> None:
    # Over-dispersion of the total count in 60-s windows (Fano factor) near the edge
    chip = SimulatedChip(1)
    settled_near(chip, +10.0)
    ev = chip.advance(200_000.0)
    counts = np.bincount(((ev.t_ns - ev.t_ns[0]) // (60 * 10**9)).astype(int))[:-1]
    fano = counts.var(ddof=1) / counts.mean()
    # Poisson: Fano = 1 with standard error ~ sqrt(2 / n_windows) ~ 0.04
    assert fano > 1.5


def test_edge_voltage_truth_is_consistent() -> None:
    chip = SimulatedChip(9)
    t, f = 55.0, 485.0
    edge = chip.edge_voltage_mV(t, f)
    vc = chip.core_critical_voltages_mV(t, f)
    # at the edge, the die voltage equals the median core critical voltage: half the cores dead
    assert chip.die_voltage_mV(edge, f) == pytest.approx(float(np.median(vc)), abs=1e-6)
    assert np.mean(vc > chip.die_voltage_mV(edge, f)) == pytest.approx(0.5, abs=0.01)
    # hotter die -> higher critical voltage (k_T > 0); faster clock -> higher edge
    p = chip.params
    assert chip.edge_voltage_mV(t + 10, f) - edge == pytest.approx(10 * p.dvc_dT_mV_per_K,
                                                                   rel=0.05)
    assert chip.edge_voltage_mV(t, 550.0) > edge + 20
    # the steady-state edge is self-consistent with the die temperature at that voltage
    vss = chip.steady_state_edge_voltage_mV(f)
    assert vss == pytest.approx(chip.edge_voltage_mV(chip.steady_state_temperature_C(vss, f), f),
                                abs=1e-6)
    assert 1000.0 < vss < 1190.0


# ----------------------------------------------------------------------------- thermal


@pytest.mark.parametrize("tau", [30.0, 5.0])
def test_thermal_step_response_reaches_63_percent_at_tau(tau: float) -> None:
    params = ChipModelParams(thermal_tau_s=tau)
    chip = SimulatedChip(0, params)
    t0 = chip.temperature_C
    assert t0 == pytest.approx(params.ambient_C + params.thermal_resistance_K_per_W
                               * chip.power_at(1200.0, 485.0))
    chip.set_operating_point(1050.0, 400.0)
    t_inf = chip.steady_state_temperature_C()
    assert t_inf < t0 - 5
    for _ in range(10):  # in pieces: the state must carry over between calls
        chip.advance(tau / 10)
    frac = (chip.temperature_C - t0) / (t_inf - t0)
    assert frac == pytest.approx(1 - math.exp(-1), abs=1e-6)
    chip.advance(10 * tau)
    assert chip.temperature_C == pytest.approx(t_inf, abs=1e-3)


def test_power_follows_f_v_squared() -> None:
    chip = SimulatedChip(0)
    p0 = chip.params.static_power_W
    dyn = chip.power_at(1200.0, 485.0) - p0
    assert chip.power_at(1200.0, 242.5) - p0 == pytest.approx(dyn / 2)
    assert chip.power_at(600.0, 485.0) - p0 == pytest.approx(dyn / 4)


def test_temperature_history_changes_the_chip_fading_memory() -> None:
    # Same chip and voltage near the edge: starting hot (recent high power) gives fewer nonces
    params = ChipModelParams(thermal_tau_s=3000.0)
    hot = SimulatedChip(2, ChipModelParams(thermal_tau_s=3000.0, initial_temperature_C=95.0))
    cool = SimulatedChip(2, params)
    v = cool.steady_state_edge_voltage_mV() + 15.0
    for chip in (hot, cool):
        chip.set_operating_point(v, 485.0)
    n_hot, n_cool = len(hot.advance(1500.0)), len(cool.advance(1500.0))
    assert n_cool > 200
    assert n_hot < 0.5 * n_cool


# ----------------------------------------------------------------------------- telemetry


def test_telemetry_fields_and_noise() -> None:
    chip = SimulatedChip(0)
    chip.advance(120.0)
    tel = chip.telemetry()
    for key in ("temperature", "power", "voltage_set", "voltage_measured", "frequency",
                "hashrate"):
        assert isinstance(tel[key], float) and math.isfinite(tel[key])
    assert tel["voltage_set"] == 1200.0 and tel["frequency"] == 485.0
    assert 1170.0 < tel["voltage_measured"] < 1200.0  # IR droop below the set point
    assert abs(tel["temperature"] - chip.temperature_C) < 2.0
    assert abs(tel["power"] - chip.power_W) < 0.5
    assert tel["expected_hashrate"] == pytest.approx(485 * SMALL_CORES / 1000)
    assert tel["t_host_ns"] == chip.now_ns


def test_vectorised_telemetry_matches_single_readings() -> None:
    a, b = SimulatedChip(6), SimulatedChip(6)
    a.set_operating_point(1100.0, 485.0)
    b.set_operating_point(1100.0, 485.0)
    readings = []
    for _ in range(3):
        a.advance(3.0)
        readings.append(a.telemetry())
    _, tel = b.advance_with_telemetry_ns(9 * 10**9, b.now_ns + np.array([3, 6, 9]) * 10**9)
    for i, r in enumerate(readings):
        for key in ("temperature", "power", "voltage_measured", "voltage_set", "frequency"):
            assert tel[key][i] == pytest.approx(r[key], abs=1e-9)
        assert tel["t_host_ns"][i] == r["t_host_ns"]


def test_sweep_telemetry_every_3_s() -> None:
    ds = simulate_sweep(1, [1200.0, 1160.0, 1130.0], dwell_s=3000.0, settle_s=60.0)
    t = ds["tel_t_host_ns"].values
    assert np.all(np.diff(t) == 3 * 10**9)
    total = 3 * (3000.0 + 60.0)
    assert t.size == int(total // 3)
    assert ds["tel_t_mono_ns"].values[0] == 3 * 10**9
    # each sample carries the op it falls in ((start, end]; -1 while settling)
    start, end = ds["op_t_start_ns"].values, ds["op_t_end_ns"].values
    for ti, oi in zip(t, ds["tel_op_index"].values, strict=True):
        inside = np.flatnonzero((ti > start) & (ti <= end))
        assert oi == (inside[0] if inside.size else -1)
    # reported values follow the set point; the nonce-counting hashrate is about the expected
    op0 = ds["tel_op_index"].values == 0
    assert np.all(ds["voltage_set"].values[op0] == 1200.0)
    assert np.all(ds["frequency"].values == 485.0)
    hr = ds["hashrate"].values[op0][30:]  # after the first 60-s window has filled
    assert np.mean(hr) == pytest.approx(485 * SMALL_CORES / 1000, rel=0.1)
    assert np.all(ds["voltage_measured"].values < ds["voltage_set"].values + 10)


# ----------------------------------------------------------------------------- the dataset


def test_sweep_dataset_is_labelled_simulated(tmp_path) -> None:
    ds = simulate_sweep(3, [1200.0, 1100.0], frequency_MHz=485.0, dwell_s=1200.0,
                        settle_s=30.0, ticket_difficulty=256.0)
    dataset.validate_capture(ds)
    assert ds.attrs["source_kind"] == "simulated"
    assert list(ds["device_source_kind"].values) == ["simulated"]
    assert ds.attrs["device_model"] == "BM1366"
    assert int(ds.attrs["seed"]) == 3
    assert int(ds.attrs["interrupted"]) == 0
    params = json.loads(ds.attrs["parameters"])
    assert params["seed"] == 3
    assert params["model"] == ChipModelParams().to_dict()
    assert params["voltages_mV"] == [1200.0, 1100.0]
    assert params["ticket_difficulty"] == 256.0
    # event columns
    assert np.all(ds["pool_difficulty"].values == 256.0)
    assert np.all(ds["job_id"].values == "")
    assert np.all(ds["version_bits"].values == 0)
    assert set(np.unique(ds["error_code"].values)) <= {0, 30}
    np.testing.assert_array_equal(ds["error_code"].values == 0, ds["valid"].values)
    np.testing.assert_array_equal(ds["t_host_ns"].values - ds["t_mono_ns"].values,
                                  np.full(ds.sizes["event"], params["t0_ns"]))
    # ops: measurement windows after settling; settle events kept with op -1
    start, end = ds["op_t_start_ns"].values, ds["op_t_end_ns"].values
    np.testing.assert_array_equal(end - start, [1200 * 10**9] * 2)
    assert start[0] == params["t0_ns"] + 30 * 10**9
    assert start[1] == end[0] + 30 * 10**9
    t, op = ds["t_host_ns"].values, ds["op_index"].values
    for k in range(2):
        assert np.all((t[op == k] > start[k]) & (t[op == k] <= end[k]))
    assert np.all((t[op == -1] <= start[0]) | ((t[op == -1] > end[0]) & (t[op == -1] <= start[1])))
    # round trip through NetCDF
    path = dataset.save_capture(ds, tmp_path / "sim.nc")
    back = dataset.open_capture(path)
    xr.testing.assert_identical(back, ds)


def test_keyboard_interrupt_keeps_the_data(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    original = SimulatedChip.advance_with_telemetry_ns

    def flaky(self, dt_ns, times):
        calls["n"] += 1
        if calls["n"] == 4:  # settle/dwell of point 0, settle of point 1, then stop
            raise KeyboardInterrupt
        return original(self, dt_ns, times)

    monkeypatch.setattr(SimulatedChip, "advance_with_telemetry_ns", flaky)
    ds = simulate_sweep(0, [1200.0, 1150.0, 1100.0], dwell_s=900.0, settle_s=30.0)
    assert int(ds.attrs["interrupted"]) == 1
    dataset.validate_capture(ds)
    assert ds.sizes["op"] == 2  # the point that was running is kept, cut to the data
    end = ds["op_t_end_ns"].values
    assert end[0] - ds["op_t_start_ns"].values[0] == 900 * 10**9
    assert end[1] == ds["op_t_start_ns"].values[1]
    assert ds.sizes["event"] > 100 and np.all(ds["op_index"].values < 1)
    assert ds.sizes["sample"] == (900 + 60) // 3


# ----------------------------------------------------------------------------- errors, docs


def test_bad_input_raises_typed_errors() -> None:
    assert issubclass(SimulatorError, AsiclabError)
    with pytest.raises(SimulatorError):
        SimulatedChip(-1)
    with pytest.raises(SimulatorError):
        SimulatedChip(1.5)  # type: ignore[arg-type]
    chip = SimulatedChip(0)
    for v, f in ((float("nan"), 485.0), (1200.0, 0.0), (-5.0, 485.0), (1200.0, 1e9)):
        with pytest.raises(SimulatorError):
            chip.set_operating_point(v, f)
    assert chip.voltage_mV == 1200.0  # unchanged after a rejected call
    with pytest.raises(SimulatorError):
        chip.advance(-1.0)
    with pytest.raises(SimulatorError):
        ChipModelParams(n_cores=112, n_domains=5)
    with pytest.raises(SimulatorError):
        ChipModelParams(thermal_tau_s=0.0)
    with pytest.raises(SimulatorError):
        ChipModelParams(chip_droop_fraction=1.5)
    with pytest.raises(SimulatorError):
        simulate_sweep(0, [])
    with pytest.raises(SimulatorError):
        simulate_sweep(0, [1200.0], dwell_s=0.0)
    with pytest.raises(SimulatorError):
        simulate_sweep(0, [1200.0], n_devices=0)
    with pytest.raises(SimulatorError):
        chip.advance_with_telemetry_ns(10**9, [chip.now_ns + 2 * 10**9])


def test_model_equations_are_documented() -> None:
    md = MODEL_EQUATIONS_MD
    assert md.startswith("## Model equations")
    squash = " ".join(sim.__doc__.split())
    assert " ".join(md.split()) in squash
    for needle in (r"\tau_{th}", "R_{th}", "2^{32}", "p_{err}", "V_{c,i}", "default_rng(seed)"):
        assert needle in md
