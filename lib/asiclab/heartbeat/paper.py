"""The papers' own metrics, reproduced, and what they show for a Poisson process.

The papers under test computed, on windows of about 10 shares, the coefficient of variation of
the intervals and the Shannon entropy of a 10-bin histogram, and read "CV excursions above and
below unity" as a departure from Poisson. Our reading of their method (the papers do not give
every detail, so these are explicit assumptions, all parameters):

* non-overlapping windows of ``window = 10`` consecutive intervals;
* CV per window with the population standard deviation (``ddof = 0``, numpy's default);
* histogram of the window's intervals in ``bins = 10`` equal-width bins spanning the window's
  minimum to maximum (numpy's default range), entropy ``-sum p log2 p`` [bits].

With 10 intervals the windowed CV of a Poisson process is very noisy (and biased low): it is
never exactly 1, so "excursions above and below unity" occur in 100 % of windows for a perfect
Poisson process. :func:`paper_metrics_table` puts each metric next to its Poisson-null value
(simulated with a fixed seed) and a calibrated comparison.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from asiclab.heartbeat._errors import HeartbeatInputError, InsufficientDataError

FloatArray = NDArray[np.float64]

PAPER_WINDOW: int = 10
"""Window of the papers' metrics [intervals]."""
PAPER_BINS: int = 10
"""Histogram bins of the papers' entropy."""
EXCURSION: float = 0.2
"""|CV - 1| above which we count a window as a visible "excursion" [1]."""
_NULL_SEED = 20_240_918

__all__ = [
    "EXCURSION",
    "PAPER_BINS",
    "PAPER_WINDOW",
    "paper_metrics",
    "paper_metrics_null",
    "paper_metrics_table",
    "windowed_cv",
    "windowed_entropy",
]


def _windows(intervals: ArrayLike, window: int) -> FloatArray:
    x = np.asarray(intervals, dtype=np.float64)
    if x.ndim != 1:
        raise HeartbeatInputError("intervals must be 1-D")
    if window < 2:
        raise HeartbeatInputError("window must be >= 2")
    nw = x.size // window
    if nw < 1:
        raise InsufficientDataError(f"need at least {window} intervals")
    return x[: nw * window].reshape(nw, window)


def windowed_cv(intervals: ArrayLike, window: int = PAPER_WINDOW, ddof: int = 0) -> FloatArray:
    """CV of each non-overlapping window of ``window`` intervals.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], 1-D.
    window : int
        Window length [intervals].
    ddof : int
        Delta degrees of freedom (0 as in the papers' reading).

    Returns
    -------
    numpy.ndarray
        Windowed CV [1].
    """
    w = _windows(intervals, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        return w.std(axis=1, ddof=ddof) / w.mean(axis=1)


def windowed_entropy(
    intervals: ArrayLike, window: int = PAPER_WINDOW, bins: int = PAPER_BINS
) -> FloatArray:
    """Shannon entropy of a ``bins``-bin histogram of each window's intervals.

    Bins are equal-width from the window minimum to its maximum (the maximum falls in the last
    bin, as in :func:`numpy.histogram`); a window of identical values has entropy 0.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], 1-D.
    window : int
        Window length [intervals].
    bins : int
        Number of bins.

    Returns
    -------
    numpy.ndarray
        Entropy per window [bits].
    """
    w = _windows(intervals, window)
    nw = w.shape[0]
    lo = w.min(axis=1, keepdims=True)
    rng_ = w.max(axis=1, keepdims=True) - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        idx = np.where(rng_ > 0, np.floor((w - lo) / rng_ * bins), 0)
    idx = np.clip(idx.astype(np.int64), 0, bins - 1) + (np.arange(nw) * bins)[:, np.newaxis]
    c = np.bincount(idx.ravel(), minlength=nw * bins).reshape(nw, bins) / window
    with np.errstate(invalid="ignore", divide="ignore"):
        h = -np.sum(np.where(c > 0, c * np.log2(c), 0.0), axis=1)
    return h


def paper_metrics(
    intervals: ArrayLike,
    window: int = PAPER_WINDOW,
    bins: int = PAPER_BINS,
    ddof: int = 0,
    excursion: float = EXCURSION,
) -> dict[str, float]:
    """Summary of the papers' windowed metrics for one record.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], 1-D.
    window, bins, ddof
        See :func:`windowed_cv` and :func:`windowed_entropy`.
    excursion : float
        Threshold on ``|CV - 1|`` for a visible excursion [1].

    Returns
    -------
    dict
        ``n_windows``, ``cv_mean``, ``cv_sd``, ``frac_cv_above_1``, ``frac_cv_below_1``,
        ``frac_cv_not_1``, ``frac_excursion``, ``entropy_mean`` [bits], ``entropy_sd`` [bits].
    """
    cv = windowed_cv(intervals, window, ddof)
    h = windowed_entropy(intervals, window, bins)
    return {
        "n_windows": float(cv.size),
        "cv_mean": float(np.nanmean(cv)),
        "cv_sd": float(np.nanstd(cv, ddof=1)) if cv.size > 1 else float("nan"),
        "frac_cv_above_1": float(np.mean(cv > 1)),
        "frac_cv_below_1": float(np.mean(cv < 1)),
        "frac_cv_not_1": float(np.mean(cv != 1)),
        "frac_excursion": float(np.mean(np.abs(cv - 1) > excursion)),
        "entropy_mean": float(np.mean(h)),
        "entropy_sd": float(np.std(h, ddof=1)) if h.size > 1 else float("nan"),
    }


@functools.lru_cache(maxsize=16)
def paper_metrics_null(
    window: int = PAPER_WINDOW,
    bins: int = PAPER_BINS,
    ddof: int = 0,
    excursion: float = EXCURSION,
    n_windows: int = 200_000,
) -> dict[str, float]:
    """The papers' metrics for a simulated Poisson process (fixed seed).

    Parameters
    ----------
    window, bins, ddof, excursion
        As in :func:`paper_metrics`.
    n_windows : int
        Simulated windows.

    Returns
    -------
    dict
        Same keys as :func:`paper_metrics` (per-window means and standard deviations of the
        Poisson null).
    """
    rng = np.random.default_rng([_NULL_SEED, window, bins, ddof])
    x = rng.standard_exponential(window * n_windows)
    return paper_metrics(x, window, bins, ddof, excursion)


def paper_metrics_table(
    intervals: ArrayLike,
    window: int = PAPER_WINDOW,
    bins: int = PAPER_BINS,
    ddof: int = 0,
    excursion: float = EXCURSION,
) -> pd.DataFrame:
    """The papers' metrics beside their Poisson values, with a calibrated comparison.

    Windows are independent under the Poisson null (iid intervals), so the mean of a windowed
    metric over ``W`` windows is compared with the null mean by a z-test with standard error
    ``sd_null / sqrt(W)``, and a fraction of windows by an exact binomial test against the null
    fraction. These comparisons are descriptive (not part of the battery's family).

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], 1-D.
    window, bins, ddof, excursion
        As in :func:`paper_metrics`.

    Returns
    -------
    pandas.DataFrame
        Rows ``metric``, ``observed``, ``poisson``, ``p_value``, ``papers_reading`` (what the
        papers' criterion would conclude) and ``calibrated_reading``.
    """
    obs = paper_metrics(intervals, window, bins, ddof, excursion)
    nul = paper_metrics_null(window, bins, ddof, excursion)
    w = int(obs["n_windows"])
    rows = []

    def z_p(key: str, sd_key: str) -> float:
        se = nul[sd_key] / np.sqrt(w)
        return float(2 * stats.norm.sf(abs(obs[key] - nul[key]) / se))

    def b_p(key: str) -> float:
        k = round(obs[key] * w)
        p0 = min(max(nul[key], 1e-12), 1 - 1e-12)
        return float(stats.binomtest(k, w, p0).pvalue)

    def reading(p: float) -> str:
        return "differs from Poisson (p<0.05)" if p < 0.05 else "as expected for Poisson"

    pa = obs["frac_cv_above_1"]
    pb = obs["frac_cv_below_1"]
    specs = [
        ("mean windowed CV", "cv_mean", z_p("cv_mean", "cv_sd"),
         f"mean CV {obs['cv_mean']:.2f}, not 1: read as non-Poisson"),
        ("fraction of windows with CV above 1", "frac_cv_above_1", b_p("frac_cv_above_1"),
         f"'excursions above unity' in {pa:.0%} of windows"),
        ("fraction of windows with CV below 1", "frac_cv_below_1", b_p("frac_cv_below_1"),
         f"'excursions below unity' in {pb:.0%} of windows"),
        ("fraction of windows with CV != 1", "frac_cv_not_1", float("nan"),
         f"CV departs from unity in {obs['frac_cv_not_1']:.0%} of windows"),
        (f"fraction of windows with |CV - 1| > {excursion:g}", "frac_excursion",
         b_p("frac_excursion"), f"large excursions in {obs['frac_excursion']:.0%} of windows"),
        (f"mean {bins}-bin histogram entropy [bits]", "entropy_mean",
         z_p("entropy_mean", "entropy_sd"), f"entropy {obs['entropy_mean']:.2f} bits"),
    ]
    for label, key, p, papers in specs:
        rows.append({
            "metric": label, "observed": obs[key], "poisson": nul[key], "p_value": p,
            "n_windows": w, "papers_reading": papers,
            "calibrated_reading": reading(p) if np.isfinite(p) else
            "100 % for any continuous process, Poisson included: not evidence",
        })
    return pd.DataFrame(rows)
