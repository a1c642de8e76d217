"""The formal core of the TPF claim, as plain functions on a finite joint distribution.

For a joint distribution ``P(X, Y)`` of a finite feature ``X`` (e.g. an early SHA-256 state) and
a finite outcome ``Y`` (share or not), a predictor is a map ``f: X -> Y`` with accuracy
``sum_x P(x, f(x))``. The best constant guess has accuracy ``max_y P(y)``. The papers'
machine-checked statement: if some predictor beats the best constant guess, ``X`` and ``Y`` are
dependent; equivalently, under independence no predictor beats the prior. Both directions are
checked by property tests (``tests/tpf/test_formal.py``); the empirical side (whether any
predictor beats the baseline on SHA-256 states) is :mod:`asiclab.tpf.predict`.

Reference: Cover & Thomas (2006), "Elements of Information Theory", 2nd ed., Wiley,
doi:10.1002/047174882X (mutual information; Fano's inequality).
"""

from __future__ import annotations

import numpy as np

from asiclab import AsiclabError

__all__ = ["FormalError", "bayes_accuracy", "check_joint", "is_independent",
           "mutual_information", "predictor_accuracy", "prior_accuracy"]


class FormalError(AsiclabError):
    """Not a joint distribution (negative entries, not summing to 1, not 2-d)."""


def check_joint(p: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Validate a joint distribution table ``P[x, y]`` and return it as float array."""
    a = np.asarray(p, dtype=float)
    if a.ndim != 2 or a.size == 0:
        raise FormalError(f"joint distribution: expected a 2-d table, got shape {a.shape}")
    if (a < 0).any() or abs(a.sum() - 1.0) > tol:
        raise FormalError("joint distribution: entries must be >= 0 and sum to 1")
    return a


def prior_accuracy(p: np.ndarray) -> float:
    """Accuracy of the best constant guess: ``max_y P(y)``."""
    return float(check_joint(p).sum(axis=0).max())


def predictor_accuracy(p: np.ndarray, f: np.ndarray) -> float:
    """Accuracy ``sum_x P(x, f(x))`` of a deterministic predictor ``f`` (one y index per x)."""
    a = check_joint(p)
    f = np.asarray(f, dtype=int)
    if f.shape != (a.shape[0],) or (f < 0).any() or (f >= a.shape[1]).any():
        raise FormalError("predictor: expected one outcome index per feature value")
    return float(a[np.arange(a.shape[0]), f].sum())


def bayes_accuracy(p: np.ndarray) -> float:
    """Accuracy of the best predictor (Bayes rule): ``sum_x max_y P(x, y)``."""
    return float(check_joint(p).max(axis=1).sum())


def mutual_information(p: np.ndarray) -> float:
    """``I(X; Y)`` [bit]."""
    a = check_joint(p)
    px = a.sum(axis=1, keepdims=True)
    py = a.sum(axis=0, keepdims=True)
    nz = a > 0
    return float((a[nz] * np.log2(a[nz] / (px @ py)[nz])).sum())


def is_independent(p: np.ndarray, tol: float = 1e-12) -> bool:
    """Whether ``P(x, y) = P(x) P(y)`` for every cell (within ``tol``)."""
    a = check_joint(p)
    return bool(np.allclose(a, a.sum(axis=1, keepdims=True) @ a.sum(axis=0, keepdims=True),
                            atol=tol, rtol=0))
