"""Models, controls, verdict, memory capacity and consistency; known truth on the simulator."""

from __future__ import annotations

import numpy as np
import pytest

from asiclab.narma import analysis, driver, features, task
from asiclab.narma import readout as ro

N = 2500


@pytest.fixture(scope="module")
def series():
    return task.generate(N, seed=3), task.chronological_split(N, washout=200, train=0.6,
                                                               val=0.2)


def _eval(s, sp, F, **kw):
    kw.setdefault("esn_sizes", ())
    return analysis.evaluate(s, F, sp, n_boot=200, max_lag=12, quad_max_lag=6, **kw)


def test_noise_features_are_at_the_constant_level(series):
    s, sp = series
    F = np.random.default_rng(0).normal(size=(N, 5))
    rep = _eval(s, sp, F)
    assert not rep.verdict.computes and rep.verdict.device_level == "constant"
    assert rep.models["device"].test_nrmse == pytest.approx(1.0, abs=0.05)
    assert rep.models["constant"].test_nrmse == pytest.approx(1.0, abs=0.05)
    lo, hi = rep.models["device"].ci
    assert lo <= rep.models["device"].test_nrmse <= hi


def test_features_holding_information_beyond_the_input_are_detected(series):
    s, sp = series
    # a "device" that knows the target (what a computing reservoir would add): must be found
    F = s.target[:, None] + np.random.default_rng(1).normal(0, 0.02, (N, 1))
    rep = _eval(s, sp, F)
    assert rep.verdict.computes and rep.verdict.p_value < 0.05
    assert rep.models["device_plus_input"].test_nrmse < rep.models["input_linear"].test_nrmse


def test_input_echo_is_at_the_input_only_level(series):
    s, sp = series
    # features that only echo the current input: linear on u(t), ~0.88, never beyond the input
    rep = _eval(s, sp, np.column_stack([s.u, s.u ** 2]))
    assert not rep.verdict.computes
    assert rep.models["device"].test_nrmse == pytest.approx(0.88, abs=0.05)
    assert rep.verdict.device_level == "between constant and input-only"
    assert rep.models["input_linear"].info["k"] >= 9


def test_permuted_targets_leave_nothing_to_learn(series):
    """No feature holds the target: with the targets permuted the fit predicts nothing."""
    s, sp = series
    ds = driver.drive(s.u, "frequency", step_s=1.0, seed=0)
    F = features.step_features(ds).to_numpy()
    d = s.target.copy()
    rng = np.random.default_rng(0)
    d_perm = d.copy()
    d_perm[sp.train] = rng.permutation(d[sp.train])
    m = ro.Ridge(1e-6).fit(F[sp.train], d_perm[sp.train])
    assert task.nrmse(d[sp.test], m.predict(F[sp.test])) > 0.97
    m_true = ro.Ridge(1e-6).fit(F[sp.train], d[sp.train])
    assert task.nrmse(d[sp.test], m_true.predict(F[sp.test])) < 0.95  # the real fit learns


def test_features_do_not_see_future_inputs():
    u = task.generate(300, seed=4).u
    u2 = u.copy()
    u2[150:] = 0.5 - u2[150:]
    for enc in ("frequency", "voltage", "difficulty"):
        a = features.step_features(driver.drive(u, enc, seed=1))
        b = features.step_features(driver.drive(u2, enc, seed=1))
        np.testing.assert_array_equal(a.iloc[:150].to_numpy(), b.iloc[:150].to_numpy())
        assert not np.array_equal(a.iloc[150:].to_numpy(), b.iloc[150:].to_numpy())


def test_payload_encoding_on_the_simulator_carries_no_information(series):
    """Known truth (issue section 6): payload features are at the constant / shuffled level."""
    s, sp = series
    F = features.step_features(driver.drive(s.u, "payload", seed=2))
    perm = np.random.default_rng(5).permutation(N)
    Fs = features.step_features(driver.drive(s.u[perm], "payload", seed=2))
    rep = _eval(s, sp, F, shuffled_features=Fs)
    assert not rep.verdict.computes
    assert rep.verdict.device_level == "constant"
    assert rep.models["device"].test_nrmse > 0.97
    assert abs(rep.models["device"].test_nrmse - rep.models["device_shuffled"].test_nrmse) < 0.03
    assert "constant level" in rep.verdict.text


def test_frequency_encoding_responds_to_the_input(series):
    s, sp = series
    F = features.step_features(driver.drive(s.u, "frequency", seed=2))
    rep = _eval(s, sp, F)
    assert rep.models["device"].test_nrmse < 0.95
    assert rep.models["device_shuffled"].test_nrmse > 0.97


def test_esn_reaches_the_literature_level_on_1e4_steps():
    s = task.generate(10_000, seed=0)
    sp = task.chronological_split(10_000, washout=200, train=0.7, val=0.1)
    curve, _ = analysis.esn_sweep(s.u, s.target, sp, sizes=(400,), spectral_radii=(0.9,),
                                  input_scalings=(0.2, 0.5), lambdas=(1e-6,))
    assert curve["test_nrmse"].iloc[0] <= 0.2


def test_memory_capacity_of_a_delay_line_and_its_null(series):
    s, sp = series
    F = ro.delay_embed(s.u, 3)  # remembers exactly u(t-1..t-3)
    mc = analysis.memory_capacity(F, s.u, sp, max_delay=8, n_null=5)
    assert mc["mc"] == pytest.approx(3.0, abs=0.1)
    assert mc["curve"][0] == pytest.approx(1.0, abs=0.01)
    assert mc["null_q95"] < 0.2
    noise = np.random.default_rng(0).normal(size=(N, 4))
    assert analysis.memory_capacity(noise, s.u, sp, max_delay=8, n_null=5)["mc"] < 0.2


def test_consistency_of_two_drives_from_different_initial_states():
    u = task.generate(800, seed=6).u
    hist = task.generate(200, seed=7).u
    for enc, expect_high in (("frequency", True), ("payload", False)):
        a = features.step_features(driver.drive(u, enc, seed=0))
        b = features.step_features(driver.drive(u, enc, seed=0, initial_temperature_C=40.0,
                                                prehistory=hist))
        c = analysis.consistency(a, b, washout=100)
        if expect_high:
            assert c["n_valid"] > 0.3 and c["power"] > 0.9  # Poisson noise limits n_valid
        else:  # nothing follows the input: no shared noise realisation either
            assert abs(c["n_valid"]) < 0.15 and abs(c["power"]) < 0.15
    same = analysis.consistency(a, a)
    assert same.dropna().min() == pytest.approx(1.0)


def test_paired_bootstrap_and_ci():
    rng = np.random.default_rng(0)
    d = rng.normal(size=2000)
    good = d + rng.normal(0, 0.3, 2000)
    bad = d + rng.normal(0, 1.0, 2000)
    t = ro.paired_block_bootstrap(d, good, bad, n_boot=500)
    assert t["p_value"] < 0.01 and t["mean_diff"] < 0 and t["ci_high"] < 0
    assert ro.paired_block_bootstrap(d, bad, good, n_boot=500)["p_value"] > 0.5
    lo, hi = ro.block_bootstrap_nrmse(d, good, n_boot=300)
    assert lo < task.nrmse(d, good) < hi
