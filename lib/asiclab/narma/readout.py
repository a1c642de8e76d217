"""Readouts, software baselines and resampling statistics for NARMA-10 (pure numpy).

* :class:`Ridge`: ridge regression with an unpenalised intercept on standardised features
  (Tikhonov; Hoerl & Kennard 1970, DOI 10.1080/00401706.1970.10488634).
* :func:`choose_lambda`: the ridge parameter by forward-chaining (expanding-window) time-series
  cross-validation on the training block only.
* :func:`delay_embed`, :func:`quadratic_features`: input-only designs (delay line; delay line
  plus pairwise products).
* :class:`ESN`: an echo-state network (Jaeger 2001, GMD Report 148; Lukoševičius 2012,
  DOI 10.1007/978-3-642-35289-8_36), tanh units, spectral radius and input scaling as
  parameters.
* :func:`block_bootstrap_nrmse`, :func:`paired_block_bootstrap`: moving-block bootstrap
  (Künsch 1989, DOI 10.1214/aos/1176347265) of the test NRMSE and of the difference of squared
  residuals between two models on the same test block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from asiclab.narma._errors import NarmaInputError

__all__ = [
    "ESN",
    "LAMBDA_GRID",
    "PAPER_LAMBDA",
    "Ridge",
    "block_bootstrap_nrmse",
    "choose_lambda",
    "delay_embed",
    "paired_block_bootstrap",
    "quadratic_features",
]

#: The paper's ridge parameter.
PAPER_LAMBDA = 1e-6

#: Grid of ridge parameters searched by :func:`choose_lambda` (on standardised features).
LAMBDA_GRID = tuple(10.0 ** k for k in range(-8, 4))


def _as_2d(x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise NarmaInputError(f"features must be 1-D or 2-D, got shape {a.shape}")
    return a


@dataclass
class Ridge:
    """Ridge regression ``min |y - X w - b|^2 + lam |w|^2`` on standardised columns.

    Parameters
    ----------
    lam : float
        Ridge parameter (>= 0) on the standardised features [1]. Constant columns are dropped.
    """

    lam: float = PAPER_LAMBDA

    def fit(self, X: Any, y: Any) -> Ridge:
        """Fit on rows of ``X`` (n, p) and targets ``y`` (n,)."""
        X = _as_2d(X)
        y = np.asarray(y, dtype=np.float64).ravel()
        if X.shape[0] != y.size or y.size < 2:
            raise NarmaInputError(f"X has {X.shape[0]} rows, y has {y.size} values")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise NarmaInputError("features and targets must be finite")
        if self.lam < 0:
            raise NarmaInputError(f"lam must be >= 0, got {self.lam}")
        self.mean_ = X.mean(axis=0)
        sd = X.std(axis=0)
        self.keep_ = sd > 1e-12 * max(1.0, float(np.max(np.abs(X))) if X.size else 1.0)
        self.scale_ = np.where(self.keep_, sd, 1.0)
        Z = ((X - self.mean_) / self.scale_)[:, self.keep_]
        self.y_mean_ = float(y.mean())
        A = Z.T @ Z + self.lam * np.eye(Z.shape[1])
        rhs = Z.T @ (y - self.y_mean_)
        try:
            w = np.linalg.solve(A, rhs) if Z.shape[1] else np.zeros(0)
        except np.linalg.LinAlgError:
            w = np.linalg.lstsq(A, rhs, rcond=None)[0]
        self.coef_ = w
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions for rows of ``X``."""
        X = _as_2d(X)
        Z = ((X - self.mean_) / self.scale_)[:, self.keep_]
        return Z @ self.coef_ + self.y_mean_


def _folds(n: int, k: int) -> list[tuple[slice, slice]]:
    """Forward-chaining folds: train on the first blocks, validate on the next one."""
    edges = np.linspace(0, n, k + 2).astype(int)
    return [(slice(0, edges[i]), slice(edges[i], edges[i + 1])) for i in range(1, k + 1)]


def choose_lambda(X: Any, y: Any, *, grid: Sequence[float] = LAMBDA_GRID, n_folds: int = 4
                  ) -> tuple[float, dict[float, float]]:
    """Ridge parameter with the lowest forward-chaining CV mean squared error.

    Parameters
    ----------
    X, y : array-like
        Training block only (in time order).
    grid : sequence of float
        Candidate ridge parameters.
    n_folds : int
        Number of forward-chaining validation folds.

    Returns
    -------
    (float, dict)
        The chosen parameter and the CV MSE of every candidate.
    """
    X = _as_2d(X)
    y = np.asarray(y, dtype=np.float64).ravel()
    if y.size < 5 * (n_folds + 1):
        raise NarmaInputError(f"{y.size} training steps are too few for {n_folds} CV folds")
    cv: dict[float, float] = {}
    for lam in grid:
        errs = []
        for tr, va in _folds(y.size, n_folds):
            m = Ridge(lam).fit(X[tr], y[tr])
            errs.append(float(np.mean((y[va] - m.predict(X[va])) ** 2)))
        cv[float(lam)] = float(np.mean(errs))
    best = min(cv, key=lambda k: (cv[k], -k))
    return best, cv


def delay_embed(x: Any, k: int) -> np.ndarray:
    """Columns ``x[t], x[t-1], ..., x[t-k]`` (zeros before the start), for each column of x.

    Only the present and the past enter: row ``t`` never holds anything after ``t``.
    """
    a = _as_2d(x)
    if k < 0:
        raise NarmaInputError(f"delay k must be >= 0, got {k}")
    cols = [a]
    for j in range(1, k + 1):
        s = np.zeros_like(a)
        s[j:] = a[:-j]
        cols.append(s)
    return np.concatenate(cols, axis=1)


def quadratic_features(u: Any, k: int) -> np.ndarray:
    """Delay line ``u[t..t-k]`` plus every pairwise product (squares included)."""
    D = delay_embed(u, k)
    i, j = np.triu_indices(D.shape[1])
    return np.concatenate([D, D[:, i] * D[:, j]], axis=1)


class ESN:
    """Echo-state network with tanh units, driven by one input, states as readout features.

    ``x(t) = tanh(W x(t-1) + w_in u(t) + b)``, ``W`` Gaussian rescaled to ``spectral_radius``,
    ``w_in ~ U[-input_scaling, input_scaling]``, ``b ~ U[-bias, bias]``.

    Parameters
    ----------
    n_units : int
        Reservoir size N.
    spectral_radius : float
        Largest |eigenvalue| of W.
    input_scaling : float
        Scale of the input weights.
    bias : float
        Scale of the bias.
    seed : int
        Seed of the weights.
    """

    def __init__(self, n_units: int, *, spectral_radius: float = 0.9,
                 input_scaling: float = 1.0, bias: float = 0.0, seed: int = 0) -> None:
        if int(n_units) != n_units or n_units < 1:
            raise NarmaInputError(f"n_units must be a positive integer, got {n_units!r}")
        rng = np.random.default_rng(seed)
        W = rng.standard_normal((n_units, n_units))
        rho = float(np.max(np.abs(np.linalg.eigvals(W))))
        self.W = W * (spectral_radius / rho)
        self.w_in = rng.uniform(-1, 1, n_units) * input_scaling
        self.b = rng.uniform(-1, 1, n_units) * bias
        self.n_units = int(n_units)
        self.params = {"n_units": int(n_units), "spectral_radius": spectral_radius,
                       "input_scaling": input_scaling, "bias": bias, "seed": seed}

    def states(self, u: Any, x0: Any = None) -> np.ndarray:
        """Reservoir states for the input sequence (one row per step)."""
        u = np.asarray(u, dtype=np.float64).ravel()
        x = np.zeros(self.n_units) if x0 is None else np.asarray(x0, dtype=np.float64)
        out = np.empty((u.size, self.n_units))
        WT = np.ascontiguousarray(self.W.T)
        drive = np.outer(u, self.w_in) + self.b
        for t in range(u.size):
            x = np.tanh(x @ WT + drive[t])
            out[t] = x
        return out


def _blocks(n: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of one moving-block bootstrap resample of length n."""
    block = max(1, min(block, n))
    starts = rng.integers(0, n - block + 1, size=int(np.ceil(n / block)))
    return (starts[:, None] + np.arange(block)).ravel()[:n]


def block_bootstrap_nrmse(target: Any, prediction: Any, *, block: int = 50, n_boot: int = 1000,
                          seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Moving-block bootstrap CI of the test NRMSE (RMSE / std of the resampled target)."""
    d = np.asarray(target, dtype=np.float64).ravel()
    p = np.asarray(prediction, dtype=np.float64).ravel()
    rng = np.random.default_rng(seed)
    vals = np.empty(n_boot)
    for i in range(n_boot):
        idx = _blocks(d.size, block, rng)
        sd = np.std(d[idx])
        vals[i] = np.sqrt(np.mean((d[idx] - p[idx]) ** 2)) / sd if sd > 0 else np.nan
    a = (1 - level) / 2
    return float(np.nanquantile(vals, a)), float(np.nanquantile(vals, 1 - a))


def paired_block_bootstrap(target: Any, pred_a: Any, pred_b: Any, *, block: int = 50,
                           n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Does model A have a smaller test MSE than model B? Paired moving-block bootstrap.

    The statistic is the mean of ``e_a^2 - e_b^2`` over the test block (negative: A better).
    The one-sided p-value of "A is better" is the fraction of bootstrap means of the centred
    differences that are at or below the observed mean (the null, equal MSE, is imposed by
    centring).

    Returns
    -------
    dict
        ``mean_diff`` (observed), ``ci_low``, ``ci_high`` (95 % percentile CI of the mean
        difference), ``p_value`` (one-sided, A better than B).
    """
    d = np.asarray(target, dtype=np.float64).ravel()
    ea = (d - np.asarray(pred_a, dtype=np.float64).ravel()) ** 2
    eb = (d - np.asarray(pred_b, dtype=np.float64).ravel()) ** 2
    diff = ea - eb
    obs = float(diff.mean())
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for i in range(n_boot):
        boots[i] = diff[_blocks(diff.size, block, rng)].mean()
    centred = boots - obs
    p = (1 + np.sum(centred <= obs)) / (n_boot + 1)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return {"mean_diff": obs, "ci_low": float(lo), "ci_high": float(hi), "p_value": float(p)}
