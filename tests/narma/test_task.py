"""NARMA-10 task: generator, splits, NRMSE forms, published anchors, reservoirpy cross-check."""

from __future__ import annotations

import numpy as np
import pytest

from asiclab.narma import readout as ro
from asiclab.narma import task
from asiclab.narma._errors import NarmaDivergedError, NarmaInputError


def _textbook_loop(u):
    """The published recurrence written out independently (Atiya & Parlos 2000)."""
    y = [0.0] * len(u)
    for t in range(9, len(u) - 1):
        s = sum(y[t - i] for i in range(10))
        y[t + 1] = 0.3 * y[t] + 0.05 * y[t] * s + 1.5 * u[t - 9] * u[t] + 0.1
    return np.array(y)


def test_generator_matches_the_written_out_recurrence():
    u = np.random.default_rng(3).uniform(0, 0.5, 600)
    np.testing.assert_allclose(task.narma_recurrence(u), _textbook_loop(list(u)), rtol=1e-12,
                               atol=1e-14)


def test_generate_is_seeded_and_aligned():
    a, b = task.generate(500, seed=7), task.generate(500, seed=7)
    np.testing.assert_array_equal(a.u, b.u)
    assert not np.array_equal(a.u, task.generate(500, seed=8).u)
    assert a.u.min() >= 0 and a.u.max() <= 0.5
    # target[t] = y(t+1) depends on u[t] and u[t-9]: recompute one step by hand
    full = np.concatenate([a.u, [0.0]])
    y = _textbook_loop(list(full))
    np.testing.assert_allclose(a.target, y[1:], rtol=1e-12)


def test_divergence_is_a_typed_error():
    with pytest.raises(NarmaDivergedError):
        task.narma_recurrence(np.full(200, 5.0))
    with pytest.raises(NarmaInputError):
        task.narma_recurrence([0.1, 0.2])
    with pytest.raises(NarmaInputError):
        task.generate(5, seed=0)


def test_chronological_split():
    sp = task.chronological_split(1200, washout=200, train=0.6, val=0.2)
    assert sp.train == slice(200, 800) and sp.val == slice(800, 1000)
    assert sp.test == slice(1000, 1200)
    assert sp.train.stop == sp.val.start and sp.val.stop == sp.test.start
    with pytest.raises(NarmaInputError):
        task.chronological_split(100, washout=95)
    with pytest.raises(NarmaInputError):
        task.chronological_split(1000, train=0.9, val=0.2)


def test_nrmse_forms_and_constant_predictor():
    s = task.generate(5000, seed=1)
    d = s.target[200:]
    assert task.constant_nrmse(d, "std") == pytest.approx(1.0)
    c_mm = task.constant_nrmse(d, "minmax")
    assert 0.1 < c_mm < 0.25  # the public script's 0.1759 is at the constant level
    perfect = task.scores(d, d)
    assert perfect["nrmse_std"] == 0 and perfect["constant_std"] == pytest.approx(1.0)
    assert task.nrmse(d, d + 0.01, "var") == pytest.approx(0.01 / np.var(d))
    with pytest.raises(NarmaInputError):
        task.nrmse(d, d, "nope")
    with pytest.raises(NarmaInputError):
        task.nrmse(np.ones(10), np.ones(10))


def _lin_score(u, d, sp, lags):
    X = ro.delay_embed(u, max(lags))[:, list(lags)]
    m = ro.Ridge(1e-6).fit(X[sp.train], d[sp.train])
    return task.nrmse(d[sp.test], m.predict(X[sp.test]))


@pytest.fixture(scope="module")
def long_series():
    s = task.generate(10_000, seed=0)
    return s, task.chronological_split(10_000, washout=200, train=0.7, val=0.1)


def test_anchor_mean_and_linear_on_current_input(long_series):
    s, sp = long_series
    m = s.target[sp.train].mean()
    assert task.constant_nrmse(s.target[sp.test], constant=m) == pytest.approx(1.0, abs=0.03)
    # "y(t) on u(t-1)" = target d[t] on the current input u[t]: 0.88; the paper's 0.8661 level
    assert _lin_score(s.u, s.target, sp, [0]) == pytest.approx(0.88, abs=0.03)


def test_anchor_delay_lines(long_series):
    s, sp = long_series
    assert _lin_score(s.u, s.target, sp, range(10)) == pytest.approx(0.60, abs=0.04)
    assert _lin_score(s.u, s.target, sp, range(20)) == pytest.approx(0.40, abs=0.04)
    assert _lin_score(s.u, s.target, sp, range(30)) == pytest.approx(0.40, abs=0.05)


@pytest.mark.parametrize(("n_units", "anchor"), [(50, 0.44), (100, 0.35), (200, 0.26),
                                                 (400, 0.18)])
def test_anchor_untuned_esn(long_series, n_units, anchor):
    s, sp = long_series
    X = np.column_stack([ro.ESN(n_units, spectral_radius=0.9, input_scaling=1.0,
                                seed=1).states(s.u), s.u])
    m = ro.Ridge(1e-6).fit(X[sp.train], s.target[sp.train])
    score = task.nrmse(s.target[sp.test], m.predict(X[sp.test]))
    assert score == pytest.approx(anchor, abs=0.1)


reservoirpy = pytest.importorskip("reservoirpy")


def test_reservoirpy_generator_is_the_lag10_form():
    from reservoirpy.datasets import narma

    rng = np.random.default_rng(11)
    u = rng.uniform(0, 0.5, (2010, 1))
    _, y_rpy = narma(2000, order=10, a1=0.3, a2=0.05, b=1.5, c=0.1, u=u)
    ours = task.narma_recurrence(u.ravel(), form="reservoirpy")[10:]
    np.testing.assert_allclose(ours, y_rpy.ravel(), rtol=1e-12, atol=1e-14)
    # and it is NOT the textbook (lag 9) recurrence
    assert not np.allclose(task.narma_recurrence(u.ravel())[10:], y_rpy.ravel())


def test_reservoirpy_nrmse_forms():
    from reservoirpy.observables import nrmse as rpy_nrmse

    rng = np.random.default_rng(2)
    d = rng.normal(0.3, 0.1, 1000)
    p = d + rng.normal(0, 0.05, 1000)
    assert task.nrmse(d, p, "minmax") == pytest.approx(rpy_nrmse(d, p, norm="minmax"))
    # reservoirpy's "var" divides by the variance, not the std
    assert task.nrmse(d, p, "var") == pytest.approx(rpy_nrmse(d, p, norm="var"))
    assert task.nrmse(d, p, "std") == pytest.approx(rpy_nrmse(d, p, norm_value=np.std(d)))
    assert task.nrmse(d, p, "std") != pytest.approx(rpy_nrmse(d, p, norm="var"))


def test_anchor_holds_for_reservoirpy_form_too():
    s = task.generate(10_000, seed=5, form="reservoirpy")
    sp = task.chronological_split(10_000, washout=200, train=0.7, val=0.1)
    # lag-10 input: the delay line needs u[t..t-10] to reach the same level
    assert _lin_score(s.u, s.target, sp, range(11)) == pytest.approx(0.60, abs=0.05)
