"""Power of the battery's key tests: smallest detectable effects and events needed.

Two effects matter for the claim:

CV of a gamma renewal process
    The sample CV of ``n`` iid intervals is asymptotically normal with variance
    ``[(m4 - s^4) / (4 s^2 m^2) + s^4 / m^4 - m3 / m^3] / n`` (delta method), which is ``1 / n``
    for exponential intervals and ``c^2 (1 + c^2) / (2 n)`` for gamma intervals of CV ``c``.
    The two-sided level-``alpha`` CV test rejects when ``|cv - 1| > z_{1 - alpha/2} / sqrt(n)``,
    so its power against ``c`` is
    ``Phi((c - 1 - z / sqrt(n)) / sd_c) + Phi((1 - z / sqrt(n) - c) / sd_c)``.

Depth of a sinusoidal rate modulation
    ``rate(t) = rate (1 + d cos(2 pi f t))`` adds ``N d / 2`` to the event-train Fourier sum at
    ``f``: the normalised periodogram ``I`` satisfies ``2 I ~ chi2'_2(N d^2 / 2)`` (non-central
    chi-square, 2 degrees of freedom) when ``f`` is a Fourier frequency. The test searches the
    ``M ~ 2 h T`` Fourier frequencies within ``f +/- h`` and rejects when
    ``max I > x = -ln(1 - (1 - alpha)^(1/M))``. Two losses are included: the count-series bin
    response ``sinc^2(f dT)`` (``dT`` the bin width the battery uses) and scalloping, the line
    falling between Fourier frequencies (offset ``u`` uniform in [-1/2, 1/2] bins, power
    ``sinc^2(u)``; ``scalloping="average"`` integrates the power over ``u``, ``"worst"`` uses
    ``u = 1/2``, ``"none"`` assumes ``f`` on the grid). The line is counted in its nearest bin
    only (the other ``M - 1`` bins are null), which slightly understates the power; with
    ``d = 0`` the power is exactly ``alpha``.

Both formulas are asymptotic; :func:`simulated_power` checks them by simulation with a seeded
generator and the battery's own test code (``tests/test_heartbeat.py`` compares the two).
Levels: pass ``alpha / k`` to account for a Holm family of ``k`` tests (Bonferroni bound on the
first step of Holm).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import integrate, optimize, stats

from asiclab.heartbeat import nulls
from asiclab.heartbeat._errors import HeartbeatInputError
from asiclab.heartbeat.battery import BatteryConfig, spectral_tests

__all__ = [
    "cv_test_power",
    "min_detectable_cv",
    "min_detectable_modulation",
    "modulation_test_power",
    "n_required_cv",
    "n_required_modulation",
    "power_curve_table",
    "simulated_power",
]


def _gamma_cv_sd(cv: float, n: float) -> float:
    return cv * np.sqrt((1.0 + cv**2) / (2.0 * n))


def _n_required(power_at: Callable[[float], float], power: float) -> int:
    # smallest n in [2, 1e15] with power_at(n) = power: root in log n, rounded up
    def f(logn: float) -> float:
        return power_at(np.exp(logn)) - power

    return int(np.ceil(np.exp(optimize.brentq(f, np.log(2.0), np.log(1e15)))))


def cv_test_power(n: float, cv: float, alpha: float = 0.05) -> float:
    """Asymptotic power of the two-sided CV test against a gamma renewal process.

    Parameters
    ----------
    n : float
        Number of intervals.
    cv : float
        True CV of the intervals [1].
    alpha : float
        Level.

    Returns
    -------
    float
        Probability of rejecting.
    """
    if n < 2 or not cv > 0:
        raise HeartbeatInputError("need n >= 2 and cv > 0")
    crit = stats.norm.ppf(1 - alpha / 2) / np.sqrt(n)
    sd = _gamma_cv_sd(cv, n)
    return float(stats.norm.cdf((cv - 1 - crit) / sd) + stats.norm.cdf((1 - crit - cv) / sd))


def min_detectable_cv(n: float, alpha: float = 0.05, power: float = 0.9) -> tuple[float, float]:
    """Smallest CV departures from 1 detected with the given power by ``n`` intervals.

    Parameters
    ----------
    n : float
        Number of intervals.
    alpha : float
        Level.
    power : float
        Required power.

    Returns
    -------
    cv_low, cv_high : float
        CVs below and above 1 detected with probability ``power`` [1] (``cv_low`` is NaN if no
        CV in (0, 1) reaches it).
    """

    def f(c: float) -> float:
        return cv_test_power(n, c, alpha) - power

    hi = optimize.brentq(f, 1.0 + 1e-9, 1e3) if f(1e3) > 0 else float("nan")
    lo = optimize.brentq(f, 1e-6, 1.0 - 1e-9) if f(1e-6) > 0 else float("nan")
    return float(lo), float(hi)


def n_required_cv(cv: float, alpha: float = 0.05, power: float = 0.9) -> int:
    """Intervals needed to detect a gamma renewal process of CV ``cv`` with given power.

    Parameters
    ----------
    cv : float
        True CV [1], not 1.
    alpha : float
        Level.
    power : float
        Required power.

    Returns
    -------
    int
        Smallest ``n`` (asymptotic formula).
    """
    if cv == 1 or not cv > 0:
        raise HeartbeatInputError("cv must be > 0 and != 1")
    return _n_required(lambda n: cv_test_power(n, cv, alpha), power)


def _scalloped_power(x: float, nc: float, m: int, scalloping: str) -> float:
    # P(max over m bins > x) with the line in one bin and m - 1 null Exp(1) bins
    rest = (-np.expm1(-x)) ** (m - 1)

    def pw(g: float) -> float:
        return float(1.0 - (1.0 - stats.ncx2.sf(2 * x, 2, nc * g)) * rest)

    if scalloping == "none":
        return pw(1.0)
    if scalloping == "worst":
        return pw(float(np.sinc(0.5) ** 2))
    if scalloping == "average":
        v, _ = integrate.quad(lambda u: pw(float(np.sinc(u) ** 2)), 0.0, 0.5)
        return float(2 * v)
    raise HeartbeatInputError("scalloping must be 'none', 'average' or 'worst'")


def modulation_test_power(
    n_events: float,
    depth: float,
    *,
    rate: float,
    freq_hz: float = 2.4,
    alpha: float = 0.05,
    halfwidth_hz: float = 0.05,
    scalloping: str = "average",
    config: BatteryConfig | None = None,
) -> float:
    """Asymptotic power of the targeted spectral test against a sinusoidal rate modulation.

    Parameters
    ----------
    n_events : float
        Events in the record.
    depth : float
        Relative modulation amplitude ``d`` [1].
    rate : float
        Mean event rate [1/s] (sets the record span ``T = N / rate`` and so ``M``).
    freq_hz : float
        Modulation frequency [Hz].
    alpha : float
        Level.
    halfwidth_hz : float
        Half-width of the searched band [Hz].
    scalloping : str
        ``"average"``, ``"worst"`` or ``"none"`` (see module docstring).
    config : BatteryConfig, optional
        Battery parameters (for the count-series bin width).

    Returns
    -------
    float
        Probability of rejecting.
    """
    cfg = BatteryConfig() if config is None else config
    span = n_events / rate
    m = max(1, round(2 * halfwidth_hz * span))
    x = -np.log(-np.expm1(np.log1p(-alpha) / m))
    f_hi = max(cfg.band_hz[1], cfg.target_hz + cfg.target_halfwidth_hz)
    bin_gain = np.sinc(freq_hz / (2 * cfg.oversample * f_hi)) ** 2
    nc = n_events * depth**2 / 2 * bin_gain
    return _scalloped_power(x, nc, m, scalloping)


def min_detectable_modulation(
    n_events: float, *, rate: float, alpha: float = 0.05, power: float = 0.9, **kw: object
) -> float:
    """Smallest modulation depth detected with the given power.

    Parameters
    ----------
    n_events : float
        Events in the record.
    rate : float
        Mean event rate [1/s].
    alpha : float
        Level.
    power : float
        Required power.
    **kw
        Passed to :func:`modulation_test_power` (``freq_hz``, ``halfwidth_hz``, ``scalloping``).

    Returns
    -------
    float
        Depth [1]; NaN if even full modulation (``d = 1``) is not detected.
    """

    def f(d: float) -> float:
        return modulation_test_power(n_events, d, rate=rate, alpha=alpha, **kw) - power  # type: ignore[arg-type]

    if f(1.0) < 0:
        return float("nan")
    return float(optimize.brentq(f, 1e-9, 1.0))


def n_required_modulation(
    depth: float, *, rate: float, alpha: float = 0.05, power: float = 0.9, **kw: object
) -> int:
    """Events needed to detect a modulation of the given depth.

    Parameters
    ----------
    depth : float
        Relative modulation amplitude [1].
    rate : float
        Mean event rate [1/s].
    alpha : float
        Level.
    power : float
        Required power.
    **kw
        Passed to :func:`modulation_test_power`.

    Returns
    -------
    int
        Smallest number of events.
    """
    if not 0 < depth <= 1:
        raise HeartbeatInputError("depth must be in (0, 1]")
    return _n_required(
        lambda n: modulation_test_power(n, depth, rate=rate, alpha=alpha, **kw),  # type: ignore[arg-type]
        power)


def simulated_power(
    kind: str,
    n_events: int,
    effect: float,
    *,
    alpha: float = 0.05,
    n_rep: int = 400,
    seed: int = 0,
    rate: float = 10.0,
    freq_hz: float = 2.4,
) -> tuple[float, float, float]:
    """Power of one battery test by simulation (seeded), with a Wilson 95 % interval.

    Parameters
    ----------
    kind : str
        ``"cv"`` (gamma renewal with CV ``effect``, battery test ``cv``) or ``"modulation"``
        (sinusoidal modulation of depth ``effect`` at ``freq_hz``, test ``spectral_target``).
    n_events : int
        Events per record (for ``"modulation"`` the mean; the span is ``n_events / rate``).
    effect : float
        CV [1] or depth [1].
    alpha : float
        Level.
    n_rep : int
        Simulated records.
    seed : int
        Seed.
    rate : float
        Event rate [1/s].
    freq_hz : float
        Modulation frequency [Hz].

    Returns
    -------
    power, lo, hi : float
        Rejection fraction and its Wilson interval.
    """
    rng = np.random.default_rng(seed)
    if kind == "cv":
        x = nulls.simulate_gamma_intervals(n_events - 1, effect, rate, size=n_rep, rng=rng)
        p = nulls.cv_pvalue(x.std(axis=1, ddof=1) / x.mean(axis=1), n_events - 1)
    elif kind == "modulation":
        p = np.empty(n_rep)
        for i in range(n_rep):
            t = nulls.simulate_modulated_poisson_times(
                n_events / rate, rate, effect, freq_hz, rng, phase=rng.uniform(0, 2 * np.pi)
            )
            p[i] = spectral_tests(np.diff(t))["spectral_target"][2][0]
    else:
        raise HeartbeatInputError("kind must be 'cv' or 'modulation'")
    k = int(np.sum(p < alpha))
    ci = stats.binomtest(k, n_rep).proportion_ci(0.95, method="wilson")
    return k / n_rep, float(ci.low), float(ci.high)


def power_curve_table(
    n_events: ArrayLike,
    *,
    rate: float = 10.0,
    alpha: float = 0.05,
    power: float = 0.9,
    freq_hz: float = 2.4,
) -> pd.DataFrame:
    """Smallest detectable effects against record length (for the power-curve figure).

    Parameters
    ----------
    n_events : array_like
        Record lengths [events].
    rate : float
        Event rate [1/s].
    alpha : float
        Level.
    power : float
        Required power.
    freq_hz : float
        Modulation frequency [Hz].

    Returns
    -------
    pandas.DataFrame
        Columns ``n_events``, ``cv_low``, ``cv_high`` [1], ``depth`` [1].
    """
    rows = []
    for n in np.asarray(n_events, dtype=np.float64):
        lo, hi = min_detectable_cv(n - 1, alpha, power)
        d = min_detectable_modulation(n, rate=rate, alpha=alpha, power=power, freq_hz=freq_hz)
        rows.append({"n_events": n, "cv_low": lo, "cv_high": hi, "depth": d})
    return pd.DataFrame(rows)
