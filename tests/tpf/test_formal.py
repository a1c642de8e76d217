"""The formal claims as property tests on random finite joint distributions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asiclab.tpf import formal as F

weights = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=6)


def _normalise(w: list[float]) -> np.ndarray:
    a = np.asarray(w, dtype=float) + 1e-9
    return a / a.sum()


@settings(max_examples=200, deadline=None)
@given(weights, weights, st.data())
def test_independence_implies_no_predictor_beats_the_prior(wx, wy, data) -> None:
    px, py = _normalise(wx), _normalise(wy)
    p = np.outer(px, py)
    assert F.is_independent(p, tol=1e-12)
    assert F.mutual_information(p) == pytest.approx(0.0, abs=1e-9)
    f = np.array(data.draw(st.lists(st.integers(0, py.size - 1), min_size=px.size,
                                    max_size=px.size)))
    assert F.predictor_accuracy(p, f) <= F.prior_accuracy(p) + 1e-12
    assert F.bayes_accuracy(p) == pytest.approx(F.prior_accuracy(p), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=4, max_size=16),
       st.integers(2, 4))
def test_beating_the_prior_implies_dependence(w, ny) -> None:
    """Contrapositive form: any predictor above the prior => P is not a product, MI > 0."""
    n = len(w) - len(w) % ny
    p = _normalise(w[:n]).reshape(-1, ny)
    best = max(F.predictor_accuracy(p, np.array(f))
               for f in itertools.product(range(ny), repeat=p.shape[0]))
    assert best == pytest.approx(F.bayes_accuracy(p), abs=1e-12)
    if best > F.prior_accuracy(p) + 1e-9:
        assert not F.is_independent(p)
        assert F.mutual_information(p) > 0


def test_dependent_example_beats_prior_and_bad_tables_raise() -> None:
    p = np.array([[0.4, 0.1], [0.1, 0.4]])
    assert F.bayes_accuracy(p) == pytest.approx(0.8)
    assert F.prior_accuracy(p) == pytest.approx(0.5)
    assert F.mutual_information(p) == pytest.approx(1 - 0.7219280948873623, abs=1e-12)
    for bad in (np.array([0.5, 0.5]), np.array([[0.6, 0.6]]), np.array([[-0.1, 1.1]])):
        with pytest.raises(F.FormalError):
            F.prior_accuracy(bad)
    with pytest.raises(F.FormalError):
        F.predictor_accuracy(p, np.array([0, 2]))
