"""Shuffle and block-shuffle surrogates: "not exponential" versus "not independent".

A homogeneous Poisson process has iid exponential intervals. A battery rejection can mean the
intervals are not exponential (a renewal process with another interval law, e.g. a more regular
one), or that they are not independent (serial dependence, slow rate drift, periodicity), or
both. Surrogates separate the two:

* a **shuffle** surrogate permutes the intervals: same interval distribution, no dependence.
  A statistic that differs from Poisson but not from its shuffles is explained by the interval
  distribution alone (renewal);
* a **block-shuffle** surrogate permutes blocks of ``L`` consecutive intervals: dependence within
  ``L`` intervals is kept, beyond is destroyed. A statistic that differs from shuffles but not
  from block shuffles reflects short-range dependence; one that differs from both reflects
  dependence (or drift) on scales longer than ``L`` intervals.

Surrogate p-values are Monte Carlo ranks, ``(1 + #{surrogates at least as extreme}) / (S + 1)``,
exact under exchangeability (Theiler et al. 1992, doi:10.1016/0167-2789(92)90102-S, for the
surrogate-data method). They are reported per statistic, uncorrected, to interpret the battery,
not to add to its family.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from asiclab.heartbeat._errors import HeartbeatInputError
from asiclab.heartbeat.battery import TESTS, BatteryConfig, run_battery

__all__ = ["block_shuffle_surrogates", "shuffle_surrogates", "surrogate_comparison"]

# statistics that change under shuffling; ("greater" = one-sided tests)
_SURROGATE_TESTS = {
    "ljung_box": "greater",
    "dfa": "two-sided",
    "fano": "two-sided",
    "allan": "two-sided",
    "uniformity_ks": "greater",
    "spectral_max": "greater",
    "spectral_target": "greater",
}
_POISSON_EXPECTATION = {"dfa": 0.5, "fano": 1.0, "allan": 1.0}


def shuffle_surrogates(
    intervals: ArrayLike, n_surrogates: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Random permutations of the intervals.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], 1-D.
    n_surrogates : int
        Number of surrogates ``S``.
    rng : numpy.random.Generator
        Generator.

    Returns
    -------
    numpy.ndarray
        Shape ``(S, n)`` [s].
    """
    x = np.asarray(intervals, dtype=np.float64)
    return rng.permuted(np.broadcast_to(x, (n_surrogates, x.size)), axis=1)


def block_shuffle_surrogates(
    intervals: ArrayLike, n_surrogates: int, block_length: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Random permutations of the order of non-overlapping blocks of ``block_length`` intervals.

    The record is cut into ``ceil(n / L)`` consecutive blocks (the last may be shorter) whose
    order is permuted; the content of each block is kept.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], 1-D.
    n_surrogates : int
        Number of surrogates ``S``.
    block_length : int
        Block length ``L`` [intervals].
    rng : numpy.random.Generator
        Generator.

    Returns
    -------
    numpy.ndarray
        Shape ``(S, n)`` [s].
    """
    x = np.asarray(intervals, dtype=np.float64)
    n = x.size
    if block_length < 1:
        raise HeartbeatInputError("block_length must be >= 1")
    nb = -(-n // block_length)
    perm = rng.permuted(np.broadcast_to(np.arange(nb), (n_surrogates, nb)), axis=1)
    idx = (perm[:, :, np.newaxis] * block_length + np.arange(block_length)).reshape(
        n_surrogates, -1
    )
    idx = idx[idx < n].reshape(n_surrogates, n)
    return x[idx]


def _rank_p(obs: float, sur: NDArray[np.float64], alternative: str) -> float:
    s = sur[np.isfinite(sur)]
    if not np.isfinite(obs) or s.size == 0:
        return float("nan")
    hi = (1.0 + np.sum(s >= obs)) / (s.size + 1.0)
    if alternative == "greater":
        return float(hi)
    lo = (1.0 + np.sum(s <= obs)) / (s.size + 1.0)
    return float(min(1.0, 2.0 * min(lo, hi)))


def surrogate_comparison(
    intervals: ArrayLike,
    *,
    n_surrogates: int = 199,
    block_length: int = 32,
    seed: int = 0,
    max_intervals: int = 50_000,
    config: BatteryConfig | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Compare the battery's dependence statistics with shuffle and block-shuffle surrogates.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], 1-D, in time order.
    n_surrogates : int
        Surrogates of each kind.
    block_length : int
        Block length ``L`` of the block shuffle [intervals].
    seed : int
        Seed of the surrogate generator.
    max_intervals : int
        Longer records are compared on their first ``max_intervals`` intervals (bounded time and
        memory); the table says so.
    config : BatteryConfig, optional
        Battery parameters.
    alpha : float
        Level used for the plain-language reading.

    Returns
    -------
    pandas.DataFrame
        One row per statistic: ``observed``, ``poisson_expectation``, ``shuffle_mean``,
        ``shuffle_lo``, ``shuffle_hi`` (2.5 and 97.5 % of the surrogates), ``p_shuffle``,
        ``block_mean``, ``p_block``, ``n_used`` and ``reading``.
    """
    x = np.asarray(intervals, dtype=np.float64)
    if x.ndim != 1:
        raise HeartbeatInputError("intervals must be 1-D")
    x = x[:max_intervals]
    rng = np.random.default_rng(seed)
    only = tuple(_SURROGATE_TESTS)
    obs = run_battery(x, config, only=only)
    sh = run_battery(shuffle_surrogates(x, n_surrogates, rng), config, only=only)
    bl = run_battery(block_shuffle_surrogates(x, n_surrogates, block_length, rng), config,
                     only=only)
    names = [t.name for t in TESTS]
    rows = []
    for name, alt in _SURROGATE_TESTS.items():
        j = names.index(name)
        o = float(obs.statistic[0, j])
        if not np.isfinite(o):
            continue
        s, b = sh.statistic[:, j], bl.statistic[:, j]
        ps, pb = _rank_p(o, s, alt), _rank_p(o, b, alt)
        if ps >= alpha:
            reading = "consistent with shuffled intervals (no dependence beyond the interval law)"
        elif pb >= alpha:
            reading = f"dependence within {block_length} intervals (short-range)"
        else:
            reading = f"dependence beyond {block_length} intervals (long-range or drift)"
        rows.append({
            "statistic": name,
            "observed": o,
            "poisson_expectation": _POISSON_EXPECTATION.get(name, np.nan),
            "shuffle_mean": float(np.nanmean(s)),
            "shuffle_lo": float(np.nanquantile(s, 0.025)),
            "shuffle_hi": float(np.nanquantile(s, 0.975)),
            "p_shuffle": ps,
            "block_mean": float(np.nanmean(b)),
            "p_block": pb,
            "block_length": block_length,
            "n_used": int(x.size),
            "reading": reading,
        })
    return pd.DataFrame(rows)
