"""Why a train is under-dispersed: hazard function, dead-time renewal fit, job-gap comparison.

An under-dispersed share train (CV < 1) is often not a "heartbeat" but a *dead time*: after each
share the pipeline (miner firmware, host, Stratum server) needs some milliseconds before the next
share can be produced or sent, during which the rate is reduced. This module measures that.

Hazard function
    The conditional rate of the next event against the time since the last one,
    ``h(t) = f(t) / S(t)``, estimated per bin by the life-table (actuarial) estimator
    ``events in bin / exposure in bin`` with the exposure ``sum over intervals at risk of the
    time spent in the bin`` (Kalbfleisch & Prentice 2002, doi:10.1002/9781118032985). A Poisson
    process has a flat hazard equal to its rate; the pointwise band is the central interval of
    ``Poisson(rate * exposure) / exposure``, the interval of the estimate itself is Garwood's.

Dead-time renewal model
    iid intervals with a two-level hazard: ``h(t) = rate_dead`` for ``t < d`` and ``rate`` for
    ``t >= d``, with ``0 <= rate_dead <= rate`` (``rate_dead = 0`` is the classic
    non-paralysable dead time, ``rate_dead = rate`` is Poisson); the wait beyond ``d`` is
    exponential. (A hazard that is *higher* just after an event is burstiness, not a dead time:
    the constrained fit then returns Poisson.) Given ``d`` the maximum-likelihood rates
    are ``events / exposure`` on each side; ``d`` maximises the profile likelihood on a grid.
    Confidence intervals: percentile bootstrap of the intervals. The dead-time effect is tested
    against Poisson by the likelihood ratio, with its null distribution by parametric bootstrap
    (a change point makes the chi-square approximation invalid; the statistic's null is free of
    the rate, as the grid scales with the data). Goodness of fit: the Kolmogorov-Smirnov
    distance of the time-rescaled intervals ``Lambda(x_i)`` (Exp(1) under the model; Brown et
    al. 2002, doi:10.1162/08997660252741149) with the parameters re-fitted on every parametric
    bootstrap replicate (Lilliefors' principle), so the p-value accounts for the fit.

Same-job against new-job gaps
    When the capture has Stratum job ids, each interval is classed by whether the two shares
    belong to the same job; a dead time caused by job changes (the miner switching to new work)
    shows as longer new-job gaps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from asiclab.heartbeat._errors import HeartbeatInputError, InsufficientDataError

FloatArray = NDArray[np.float64]

__all__ = [
    "DeadTimeFit",
    "dead_time_verdict",
    "fit_cause_dead_time",
    "fit_dead_time",
    "hazard_function",
    "job_gap_table",
    "simulate_dead_time_intervals",
]


def _intervals(x: ArrayLike, min_n: int = 20) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise HeartbeatInputError("intervals must be 1-D")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise HeartbeatInputError("intervals must be finite and >= 0")
    if a.size < min_n:
        raise InsufficientDataError(f"need at least {min_n} intervals, got {a.size}")
    if not a.sum() > 0:
        raise HeartbeatInputError("intervals must not all be zero")
    return a


def hazard_function(
    intervals: ArrayLike,
    edges: ArrayLike | None = None,
    *,
    conf: float = 0.95,
    bin_fraction: float = 0.1,
    max_quantile: float = 0.95,
    event: ArrayLike | None = None,
) -> pd.DataFrame:
    """Life-table hazard (conditional rate against time since the last event) with Poisson band.

    With ``event`` (competing risks, e.g. "the next share belongs to a new job"), the
    cause-specific hazard is estimated: only flagged intervals count as events, the others are
    censored at their length (they still contribute exposure).

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], 1-D.
    edges : array_like, optional
        Bin edges [s], increasing from 0; default: bins of ``bin_fraction`` mean intervals up to
        the ``max_quantile`` quantile of the intervals.
    conf : float
        Coverage of the intervals and of the band.
    bin_fraction : float
        Default bin width [mean intervals].
    max_quantile : float
        Default last edge [quantile of the intervals].
    event : array_like of bool, optional
        Which intervals end in an event of the cause of interest (default: all).

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``t_lo_s``, ``t_hi_s`` [s], ``at_risk``, ``events`` [1],
        ``exposure_s`` [s], ``hazard_hz``, ``lo_hz``, ``hi_hz`` (Garwood interval),
        ``poisson_hz`` (the train's rate ``n / sum(x)``), ``poisson_lo_hz``, ``poisson_hi_hz``
        (pointwise Poisson band) [1/s].
    """
    x = _intervals(intervals)
    ev = np.ones(x.size, dtype=bool) if event is None else np.asarray(event, dtype=bool)
    if ev.shape != x.shape:
        raise HeartbeatInputError("event must have the shape of intervals")
    rate = ev.sum() / x.sum()
    if edges is None:
        w = bin_fraction * x.mean()
        top = float(np.quantile(x, max_quantile))
        e = np.arange(0.0, top + w, w)
    else:
        e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0) or e[0] < 0:
        raise HeartbeatInputError("edges must be increasing, >= 0, at least two")
    lo, hi = e[:-1], e[1:]
    order = np.argsort(x, kind="stable")
    xs = x[order]
    ce = np.concatenate(([0], np.cumsum(ev[order])))
    cs = np.concatenate(([0.0], np.cumsum(xs)))
    n = xs.size

    def below(v: FloatArray) -> tuple[NDArray[np.int64], FloatArray]:
        k = np.searchsorted(xs, v, side="left")
        return k, cs[k]  # count and sum of intervals < v

    k_lo, s_lo = below(lo)
    k_hi, s_hi = below(hi)
    at_risk = n - k_lo
    events = ce[k_hi] - ce[k_lo]
    # time spent in [lo, hi) by every interval reaching lo: (x - lo) if x < hi, else (hi - lo)
    exposure = (s_hi - s_lo) - lo * (k_hi - k_lo) + (hi - lo) * (n - k_hi)
    a = (1.0 - conf) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(exposure > 0, events / exposure, np.nan)
        g_lo = np.where(events > 0, stats.chi2.ppf(a, 2 * events) / 2.0, 0.0) / exposure
        g_hi = stats.chi2.ppf(1 - a, 2 * events + 2) / 2.0 / exposure
        mu = rate * exposure
        p_lo = stats.poisson.ppf(a, mu) / exposure
        p_hi = stats.poisson.ppf(1 - a, mu) / exposure
    return pd.DataFrame({
        "t_lo_s": lo, "t_hi_s": hi, "at_risk": at_risk, "events": events,
        "exposure_s": exposure, "hazard_hz": h, "lo_hz": g_lo, "hi_hz": g_hi,
        "poisson_hz": rate, "poisson_lo_hz": p_lo, "poisson_hi_hz": p_hi,
    })


# --------------------------------------------------------------------------------------------
# dead-time renewal model


def _grid(x: FloatArray, n_grid: int, max_quantile: float) -> FloatArray:
    return np.linspace(0.0, float(np.quantile(x, max_quantile)), n_grid)


def _profile(xs: FloatArray, grid: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Profile log-likelihood over ``d`` (sorted intervals), and the two rates at each ``d``."""
    n = xs.size
    cs = np.concatenate(([0.0], np.cumsum(xs)))
    k = np.searchsorted(xs, grid, side="left")
    s1 = cs[k] + grid * (n - k)  # exposure before d
    s2 = cs[-1] - cs[k] - grid * (n - k)  # exposure after d
    m = n - k
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.where(s1 > 0, k / s1, 0.0)
        r2 = np.where(s2 > 0, m / s2, np.inf)
        ll = special.xlogy(k, r1) - k + special.xlogy(m, r2) - m
    ll = np.where(np.isfinite(ll), ll, -np.inf)
    # constraint rate_dead <= rate (a dead time reduces the hazard): beyond it the constrained
    # maximum is on the boundary rate_dead = rate, i.e. Poisson
    ll0 = n * np.log(n / cs[-1]) - n
    bad = r1 > r2
    ll = np.where(bad, ll0, ll)
    r1 = np.where(bad, n / cs[-1], r1)
    r2 = np.where(bad, n / cs[-1], r2)
    return ll, r1, r2


def _profile_censored(xs: FloatArray, ev: NDArray[np.bool_], grid: FloatArray
                      ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """As :func:`_profile` with right-censored intervals (``ev`` False), unconstrained."""
    n = xs.size
    cs = np.concatenate(([0.0], np.cumsum(xs)))
    ce = np.concatenate(([0], np.cumsum(ev)))
    k = np.searchsorted(xs, grid, side="left")
    s1 = cs[k] + grid * (n - k)
    s2 = cs[-1] - cs[k] - grid * (n - k)
    e1 = ce[k]
    e2 = ce[-1] - e1
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.where(s1 > 0, e1 / s1, 0.0)
        r2 = np.where(s2 > 0, e2 / s2, np.inf)
        ll = special.xlogy(e1, r1) - e1 + special.xlogy(e2, r2) - e2
    return np.where(np.isfinite(ll), ll, -np.inf), r1, r2


def fit_cause_dead_time(
    intervals: ArrayLike,
    event: ArrayLike,
    *,
    conf: float = 0.95,
    n_boot: int = 199,
    seed: int = 0,
    n_grid: int = 256,
    max_quantile: float = 0.75,
) -> dict[str, float]:
    """Dead time of one cause of the next event (competing risks), e.g. "a share of a new job".

    The cause-specific hazard is modelled as two-level (``rate_dead`` before ``d``, ``rate``
    after); intervals ending in the other cause are right-censored at their length. Maximum
    likelihood as in :func:`fit_dead_time` (profile over ``d``), percentile-bootstrap CIs from
    resampled ``(interval, cause)`` pairs. No goodness-of-fit test (it would need a model of
    the competing cause); the dead time is called present when the CIs of the two rates do not
    overlap.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], 1-D.
    event : array_like of bool
        True where the interval ends in the cause of interest.
    conf, n_boot, seed, n_grid, max_quantile
        As in :func:`fit_dead_time`.

    Returns
    -------
    dict
        ``dead_time_s``, ``dead_time_lo_s``, ``dead_time_hi_s`` [s], ``rate_dead_hz``,
        ``rate_dead_lo_hz``, ``rate_dead_hi_hz``, ``rate_hz``, ``rate_lo_hz``, ``rate_hi_hz``
        [1/s], ``n_events``, ``present`` (bool).
    """
    x = _intervals(intervals)
    ev = np.asarray(event, dtype=bool)
    if ev.shape != x.shape:
        raise HeartbeatInputError("event must have the shape of intervals")
    if ev.sum() < 20:
        raise InsufficientDataError(f"need at least 20 events of the cause, got {ev.sum()}")
    rng = np.random.default_rng([seed, 7_702])

    def fit(xx: FloatArray, ee: NDArray[np.bool_]) -> tuple[float, float, float]:
        o = np.argsort(xx, kind="stable")
        xs, es = xx[o], ee[o]
        g = _grid(xs, n_grid, max_quantile)
        ll, r1, r2 = _profile_censored(xs, es, g)
        j = int(np.argmax(ll))
        return float(g[j]), float(r1[j]), float(r2[j])

    est = fit(x, ev)
    boot = np.array([fit(x[i], ev[i]) for i in
                     (rng.integers(0, x.size, x.size) for _ in range(n_boot))])
    a = (1 - conf) / 2
    lo, hi = np.quantile(boot, [a, 1 - a], axis=0)
    out = {"n_events": int(ev.sum())}
    for i, name in enumerate(("dead_time_s", "rate_dead_hz", "rate_hz")):
        stem = name.rsplit("_", 1)
        out[name] = est[i]
        out[f"{stem[0]}_lo_{stem[1]}"] = float(lo[i])
        out[f"{stem[0]}_hi_{stem[1]}"] = float(hi[i])
    out["present"] = bool(out["rate_dead_hi_hz"] < out["rate_lo_hz"])
    return out


def _fit_sorted(xs: FloatArray, grid: FloatArray) -> tuple[float, float, float, float]:
    ll, r1, r2 = _profile(xs, grid)
    j = int(np.argmax(ll))
    return float(grid[j]), float(r1[j]), float(r2[j]), float(ll[j])


def _cum_hazard(x: FloatArray, d: float, r1: float, r2: float) -> FloatArray:
    return r1 * np.minimum(x, d) + r2 * np.maximum(x - d, 0.0)


def _ks_exp1(u: FloatArray) -> float:
    us = np.sort(u)
    n = us.size
    f = -np.expm1(-us)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))


def simulate_dead_time_intervals(
    n: int,
    dead_time_s: float,
    rate_dead_hz: float,
    rate_hz: float,
    rng: np.random.Generator | None = None,
) -> FloatArray:
    """Intervals of the two-level-hazard dead-time renewal process (simulated).

    Parameters
    ----------
    n : int
        Number of intervals.
    dead_time_s : float
        Dead time ``d`` [s].
    rate_dead_hz : float
        Hazard before ``d`` [1/s] (0: classic dead time).
    rate_hz : float
        Hazard after ``d`` [1/s].
    rng : numpy.random.Generator, optional
        Generator.

    Returns
    -------
    numpy.ndarray
        Intervals [s] (inverse cumulative hazard of Exp(1) variables).
    """
    if dead_time_s < 0 or rate_dead_hz < 0 or not rate_hz > 0:
        raise HeartbeatInputError("need dead_time_s >= 0, rate_dead_hz >= 0, rate_hz > 0")
    rng = np.random.default_rng() if rng is None else rng
    e = rng.standard_exponential(n)
    h_d = rate_dead_hz * dead_time_s
    with np.errstate(divide="ignore", invalid="ignore"):
        before = np.where(rate_dead_hz > 0, e / max(rate_dead_hz, 1e-300), np.inf)
    return np.where(e < h_d, before, dead_time_s + (e - h_d) / rate_hz)


@dataclass(frozen=True)
class DeadTimeFit:
    """The fitted dead-time renewal model of one train.

    Attributes
    ----------
    n_intervals : int
        Intervals used.
    dead_time_s, dead_time_lo_s, dead_time_hi_s : float
        Dead time ``d`` with its bootstrap interval [s].
    rate_dead_hz, rate_dead_lo_hz, rate_dead_hi_hz : float
        Hazard before ``d`` with interval [1/s].
    rate_hz, rate_lo_hz, rate_hi_hz : float
        Hazard after ``d`` with interval [1/s].
    lr_statistic : float
        ``2 (l_dead - l_Poisson)`` [1].
    p_dead_time : float
        Parametric-bootstrap p-value of the likelihood ratio under Poisson (small: a dead
        time is present).
    ks_statistic : float
        KS distance of the time-rescaled intervals to Exp(1) under the fitted model [1].
    p_fit : float
        Goodness-of-fit p-value (parametric bootstrap with re-fitting; small: the model does
        not describe the train).
    residual_cv : float
        CV of ``x - d`` over the intervals longer than ``d`` (1 if the wait beyond ``d`` is
        exponential) [1].
    residual_p_exponential : float
        Lilliefors p-value of exponentiality of ``x - d`` for ``x > d``.
    conf : float
        Coverage of the intervals.
    n_boot : int
        Bootstrap replicates of each kind.
    """

    n_intervals: int
    dead_time_s: float
    dead_time_lo_s: float
    dead_time_hi_s: float
    rate_dead_hz: float
    rate_dead_lo_hz: float
    rate_dead_hi_hz: float
    rate_hz: float
    rate_lo_hz: float
    rate_hi_hz: float
    lr_statistic: float
    p_dead_time: float
    ks_statistic: float
    p_fit: float
    residual_cv: float
    residual_p_exponential: float
    conf: float
    n_boot: int

    def hazard_at(self, t_s: ArrayLike) -> FloatArray:
        """Model hazard at times since the last event [1/s]."""
        t = np.asarray(t_s, dtype=np.float64)
        return np.where(t < self.dead_time_s, self.rate_dead_hz, self.rate_hz)

    def as_row(self) -> dict[str, float]:
        """Plain dict for a table (times in ms)."""
        return {
            "n_intervals": self.n_intervals,
            "dead_time_ms": 1e3 * self.dead_time_s, "dead_time_lo_ms": 1e3 * self.dead_time_lo_s,
            "dead_time_hi_ms": 1e3 * self.dead_time_hi_s,
            "rate_dead_hz": self.rate_dead_hz, "rate_dead_lo_hz": self.rate_dead_lo_hz,
            "rate_dead_hi_hz": self.rate_dead_hi_hz,
            "rate_hz": self.rate_hz, "rate_lo_hz": self.rate_lo_hz, "rate_hi_hz": self.rate_hi_hz,
            "lr_statistic": self.lr_statistic, "p_dead_time": self.p_dead_time,
            "ks_statistic": self.ks_statistic, "p_fit": self.p_fit,
            "residual_cv": self.residual_cv,
            "residual_p_exponential": self.residual_p_exponential,
        }


def fit_dead_time(
    intervals: ArrayLike,
    *,
    conf: float = 0.95,
    n_boot: int = 199,
    seed: int = 0,
    n_grid: int = 256,
    max_quantile: float = 0.75,
) -> DeadTimeFit:
    """Fit the two-level-hazard dead-time renewal model, with CIs and two bootstrap tests.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], 1-D (>= 20).
    conf : float
        Coverage of the percentile-bootstrap intervals.
    n_boot : int
        Replicates of each bootstrap (intervals, LR null, goodness of fit).
    seed : int
        Seed of the bootstraps (results are reproducible).
    n_grid : int
        Grid points of the dead time, from 0 to the ``max_quantile`` quantile of the intervals.
    max_quantile : float
        Largest dead time searched [quantile of the intervals].

    Returns
    -------
    DeadTimeFit
    """
    from statsmodels.stats.diagnostic import lilliefors

    x = _intervals(intervals)
    if n_boot < 19:
        raise HeartbeatInputError("n_boot must be >= 19")
    n = x.size
    rng = np.random.default_rng([seed, 7_701])
    xs = np.sort(x)
    grid = _grid(xs, n_grid, max_quantile)
    d, r1, r2, ll = _fit_sorted(xs, grid)
    ll0 = n * np.log(n / xs.sum()) - n
    lr = max(2.0 * (ll - ll0), 0.0)
    ks = _ks_exp1(_cum_hazard(xs, d, r1, r2))

    # percentile bootstrap of the intervals
    boot = np.empty((n_boot, 3))
    for b in range(n_boot):
        s = np.sort(x[rng.integers(0, n, n)])
        boot[b, :3] = _fit_sorted(s, _grid(s, n_grid, max_quantile))[:3]
    a = (1 - conf) / 2
    lo, hi = np.quantile(boot, [a, 1 - a], axis=0)

    # LR null: exponential samples (rate-free), same grid rule
    lr0 = np.empty(n_boot)
    for b in range(n_boot):
        s = np.sort(rng.standard_exponential(n))
        g = _grid(s, n_grid, max_quantile)
        lr0[b] = 2.0 * (_fit_sorted(s, g)[3] - (n * np.log(n / s.sum()) - n))
    p_dead = (1.0 + np.sum(lr0 >= lr)) / (n_boot + 1.0)

    # goodness of fit: parametric bootstrap from the fitted model, re-fitted every time
    ks0 = np.empty(n_boot)
    for b in range(n_boot):
        s = np.sort(simulate_dead_time_intervals(n, d, r1, r2, rng))
        db, r1b, r2b, _ = _fit_sorted(s, _grid(s, n_grid, max_quantile))
        ks0[b] = _ks_exp1(_cum_hazard(s, db, r1b, r2b))
    p_fit = (1.0 + np.sum(ks0 >= ks)) / (n_boot + 1.0)

    resid = xs[xs > d] - d
    if resid.size >= 4:
        rcv = float(resid.std(ddof=1) / resid.mean())
        rp = float(lilliefors(resid, dist="exp", pvalmethod="table")[1])
    else:
        rcv, rp = float("nan"), float("nan")
    return DeadTimeFit(
        n_intervals=n, dead_time_s=d, dead_time_lo_s=float(lo[0]), dead_time_hi_s=float(hi[0]),
        rate_dead_hz=r1, rate_dead_lo_hz=float(lo[1]), rate_dead_hi_hz=float(hi[1]),
        rate_hz=r2, rate_lo_hz=float(lo[2]), rate_hi_hz=float(hi[2]),
        lr_statistic=float(lr), p_dead_time=float(p_dead), ks_statistic=ks, p_fit=float(p_fit),
        residual_cv=rcv, residual_p_exponential=rp, conf=conf, n_boot=n_boot,
    )


# --------------------------------------------------------------------------------------------
# same-job against new-job gaps


def job_gap_table(times: ArrayLike, job_ids: ArrayLike) -> pd.DataFrame:
    """Intervals between consecutive shares of the same job against those across a job change.

    Parameters
    ----------
    times : array_like
        Share times [s] (float) or [ns] (int64), in the order of ``job_ids``.
    job_ids : array_like
        Stratum job id of each share (strings); empty ids mean "no job id".

    Returns
    -------
    pandas.DataFrame
        Rows ``"same job"`` and ``"new job"``: ``n_gaps``, ``fraction``, ``mean_ms``,
        ``median_ms``, ``cv``; and the columns ``n_jobs`` (distinct ids), ``n_shares`` and
        ``p_mannwhitney`` (two-sided Mann-Whitney test that both classes have the same gap
        distribution; NaN with fewer than 2 gaps in a class). Empty when the train has no job
        ids.
    """
    t = np.asarray(times)
    j = np.asarray(job_ids).astype(str)
    if t.shape != j.shape or t.ndim != 1:
        raise HeartbeatInputError("times and job_ids must be 1-D and of equal length")
    if t.size < 3 or np.all(np.char.str_len(j) == 0):
        return pd.DataFrame()
    order = np.argsort(t, kind="stable")
    t, j = t[order], j[order]
    gap = np.diff(t).astype(np.float64)
    if np.issubdtype(t.dtype, np.integer):
        gap = gap * 1e-9
    same = j[1:] == j[:-1]
    rows = []
    for name, m in (("same job", same), ("new job", ~same)):
        g = gap[m]
        rows.append({
            "gaps": name, "n_gaps": int(m.sum()), "fraction": float(m.mean()),
            "mean_ms": 1e3 * float(g.mean()) if g.size else np.nan,
            "median_ms": 1e3 * float(np.median(g)) if g.size else np.nan,
            "cv": float(g.std(ddof=1) / g.mean()) if g.size > 1 and g.mean() > 0 else np.nan,
        })
    if same.sum() >= 2 and (~same).sum() >= 2:
        p = float(stats.mannwhitneyu(gap[same], gap[~same], alternative="two-sided").pvalue)
    else:
        p = float("nan")
    out = pd.DataFrame(rows)
    out["n_jobs"] = int(np.unique(j).size)
    out["n_shares"] = int(t.size)
    out["p_mannwhitney"] = p
    return out


def dead_time_verdict(
    fit: DeadTimeFit,
    job_gaps: pd.DataFrame | None = None,
    *,
    new_job_fit: dict[str, float] | None = None,
    alpha: float = 0.05,
) -> str:
    """Plain-language reading of a dead-time fit (and of the job gaps, when there are job ids).

    Parameters
    ----------
    fit : DeadTimeFit
        From :func:`fit_dead_time`.
    job_gaps : pandas.DataFrame, optional
        From :func:`job_gap_table`.
    new_job_fit : dict, optional
        From :func:`fit_cause_dead_time` with the cause "the next share belongs to a new job".
    alpha : float
        Level of the dead-time, goodness-of-fit and residual-exponentiality tests.

    Returns
    -------
    str
        E.g. ``"Poisson with dead time ≈ 35 ms [31, 40] (hazard 5.6/s before, 12.7/s after);
        ..."``, ``"no dead time: hazard consistent with flat (p = 0.4)"``.
    """
    def fp(p: float) -> str:
        floor = 1.0 / (fit.n_boot + 1.0)
        return f"<= {floor:.2g}" if p <= floor * (1 + 1e-9) else f"= {p:.2g}"

    if not fit.p_dead_time < alpha:
        return f"no dead time: hazard consistent with flat (p {fp(fit.p_dead_time)})"
    d = 1e3 * fit.dead_time_s
    desc = (f"dead time ≈ {d:.0f} ms [{1e3 * fit.dead_time_lo_s:.0f}, "
            f"{1e3 * fit.dead_time_hi_s:.0f}] (hazard {fit.rate_dead_hz:.3g}/s before, "
            f"{fit.rate_hz:.3g}/s after)")
    cause = ""
    if job_gaps is not None and len(job_gaps):
        new = job_gaps[job_gaps["gaps"] == "new job"].iloc[0]
        same = job_gaps[job_gaps["gaps"] == "same job"].iloc[0]
        p = float(job_gaps["p_mannwhitney"].iloc[0])
        if new_job_fit is not None and new_job_fit.get("present"):
            nf = new_job_fit
            cause = (f"; a pipeline/protocol effect: no share of a new job arrives within ≈ "
                     f"{1e3 * nf['dead_time_s']:.0f} ms [{1e3 * nf['dead_time_lo_s']:.0f}, "
                     f"{1e3 * nf['dead_time_hi_s']:.0f}] of the previous share (hazard "
                     f"{nf['rate_dead_hz']:.2g}/s, then {nf['rate_hz']:.3g}/s), a new job "
                     f"follows {100 * new['fraction']:.0f} % of shares, and the same-job shares "
                     f"(median gap {same['median_ms']:.0f} ms) are the old job's work still "
                     "in flight")
        elif p < alpha and new["median_ms"] > same["median_ms"]:
            cause = (f"; a pipeline/protocol effect: a new job follows {100 * new['fraction']:.0f} "
                     f"% of shares and new-job gaps are longer (median {new['median_ms']:.0f} "
                     f"against {same['median_ms']:.0f} ms, p = {p:.2g})")
    if fit.p_fit >= alpha and not fit.residual_p_exponential < alpha:
        return (f"Poisson with {desc}; wait beyond it exponential (CV "
                f"{fit.residual_cv:.2f}; model fit p {fp(fit.p_fit)}){cause}")
    return (f"under-dispersed by a {desc}; the two-level dead-time model is rejected in detail "
            f"(fit p {fp(fit.p_fit)}, exponential wait beyond d: p = "
            f"{fit.residual_p_exponential:.2g}){cause}")
