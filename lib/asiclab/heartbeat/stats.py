"""Pure statistics of event trains (share arrival times) against the Poisson null.

Every function here works on plain numpy arrays. Functions documented as *batched* accept
either one record, shape ``(n,)``, or a stack of equally long records, shape ``(R, n)``, and
return one value per record (a scalar for a 1-D input). Batching is what lets the calibration
run a thousand records through the whole battery in seconds.

Conventions
-----------
* ``intervals`` are inter-arrival times [s] of one event train, in time order.
* A record of ``n`` intervals has ``n + 1`` events. The *conditional* tests (uniformity,
  counting statistics, spectra) condition on the first and the last event: given them, the
  ``n - 1`` interior events of a homogeneous Poisson process are iid uniform on the span
  ``T = sum(intervals)``. This makes their null distributions free of the unknown rate
  (exact for the uniformity test, asymptotically exact for the others).

References
----------
Lowen, S. B. & Teich, M. C. (2005). *Fractal-Based Point Processes*. Wiley.
doi:10.1002/0471754722 (Fano factor, Allan factor, point-process periodogram).

Peng, C.-K. et al. (1994). Mosaic organization of DNA nucleotides. *Phys. Rev. E* 49, 1685.
doi:10.1103/PhysRevE.49.1685 (detrended fluctuation analysis).

Kantelhardt, J. W. et al. (2001). Detecting long-range correlations with detrended fluctuation
analysis. *Physica A* 295, 441. doi:10.1016/S0378-4371(01)00144-3 (segments from both ends).

Ljung, G. M. & Box, G. E. P. (1978). On a measure of lack of fit in time series models.
*Biometrika* 65, 297. doi:10.1093/biomet/65.2.297.

Imhof, J. P. (1961). Computing the distribution of quadratic forms in normal variables.
*Biometrika* 48, 419. doi:10.1093/biomet/48.3-4.419.

Lilliefors, H. W. (1969). On the Kolmogorov-Smirnov test for the exponential distribution with
mean unknown. *J. Am. Stat. Assoc.* 64, 387. doi:10.1080/01621459.1969.10500983.

Stephens, M. A. (1974). EDF statistics for goodness of fit and some comparisons.
*J. Am. Stat. Assoc.* 69, 730. doi:10.1080/01621459.1974.10480196.

Lehmann, E. L. & Romano, J. P. (2005). *Testing Statistical Hypotheses*, 3rd ed. Springer.
doi:10.1007/0-387-27605-X (randomised tests for discrete data; used for quantised timestamps).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import fft as sfft
from scipy import integrate, stats

from asiclab.heartbeat._errors import HeartbeatInputError, InsufficientDataError

FloatArray = NDArray[np.float64]

__all__ = [
    "DFAResult",
    "allan_factor",
    "allan_null_cdf",
    "allan_null_quantiles",
    "allan_null_sf",
    "allan_test",
    "anderson_exponential_statistic",
    "autocorrelation",
    "coefficient_of_variation",
    "conditional_uniformity_test",
    "counting_curves",
    "cv_asymptotic_se",
    "cv_confidence_interval",
    "dequantise_intervals",
    "dfa",
    "dfa_scales",
    "fano_factor",
    "fano_null_quantiles",
    "fano_test",
    "interior_times",
    "intervals_from_times",
    "lag1_confidence_interval",
    "lilliefors_exponential",
    "ljung_box",
    "rate_confidence_interval",
    "timestamp_resolution",
    "weighted_chi2_sf",
    "window_counts",
]


# --------------------------------------------------------------------------------------------
# input helpers


def _as_2d(x: ArrayLike, *, name: str = "intervals") -> tuple[FloatArray, bool]:
    """Return ``x`` as a float64 2-D array and whether the input was 1-D."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        return a[np.newaxis, :], True
    if a.ndim == 2:
        return a, False
    raise HeartbeatInputError(f"{name} must be 1-D (one record) or 2-D (R x n), got {a.ndim}-D")


def _check_intervals(a: FloatArray, *, min_n: int = 2, nonnegative: bool = True) -> None:
    if a.shape[-1] < min_n:
        raise InsufficientDataError(f"need at least {min_n} intervals, got {a.shape[-1]}")
    if not np.all(np.isfinite(a)):
        raise HeartbeatInputError("intervals contain NaN or infinite values")
    if nonnegative and np.any(a < 0):
        raise HeartbeatInputError("intervals must be >= 0 (sort the event times first)")


def _out(v: FloatArray, was_1d: bool) -> FloatArray | float:
    return float(v[0]) if was_1d else v


def intervals_from_times(times: ArrayLike) -> FloatArray:
    """Inter-arrival times of an event train.

    Parameters
    ----------
    times : array_like
        Event times [s] (or [ns] as int64; the result is then [ns]), any order.

    Returns
    -------
    numpy.ndarray
        Differences of the sorted times, length ``len(times) - 1`` [same unit as ``times``].
    """
    t = np.sort(np.asarray(times))
    if t.ndim != 1:
        raise HeartbeatInputError("times must be 1-D")
    return np.diff(t).astype(np.float64)


_GRID_CANDIDATES_S = tuple(m * 10.0**e for e in range(1, -7, -1) for m in (5.0, 2.0, 1.0)
                           if m * 10.0**e <= 10.0)


def timestamp_resolution(
    intervals: ArrayLike, *, min_intervals: int = 10, rel_tol: float = 1e-3
) -> float:
    """Resolution of the timestamps of a train: the grid every interval is a multiple of.

    Timestamp resolution is a property of the train (a logger writing milliseconds, a clock
    ticking in seconds). The positive intervals are rounded to whole nanoseconds and their
    greatest common divisor is the exact grid; when that is finer than 1 us (e.g. float seconds
    carrying rounding noise), the coarsest 1-2-5 decade grid from 10 s down to 1 us that every
    positive interval matches within ``rel_tol`` of the grid step is taken instead, and failing
    that the nanosecond GCD itself (e.g. 100 ns for a logger writing 0.1 us). A train of
    continuous float times has no grid: the result is then 0.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], any shape (all records are assumed to share one clock).
    min_intervals : int
        Fewest positive intervals needed to declare a grid (fewer: 0 is returned).
    rel_tol : float
        Tolerance of the decade-grid match, relative to the grid step [1].

    Returns
    -------
    float
        Resolution [s]; 0 when no grid is found.
    """
    x = np.asarray(intervals, dtype=np.float64).ravel()
    pos = x[np.isfinite(x) & (x > 0)]
    if pos.size < min_intervals:
        return 0.0
    ns = np.rint(pos * 1e9)
    g = int(np.gcd.reduce(ns.astype(np.int64))) if ns.max() < 2.0**62 else 1
    if g >= 1000:  # an exact grid of at least 1 us
        return g * 1e-9
    for d in _GRID_CANDIDATES_S:
        r = pos / d
        if np.max(np.abs(r - np.rint(r))) <= rel_tol:
            return d
    return g * 1e-9 if g > 1 else 0.0


def dequantise_intervals(
    intervals: ArrayLike, resolution_s: float, rng: np.random.Generator
) -> FloatArray:
    """Intervals of a quantised train with each event redrawn uniformly inside its grid cell.

    For a homogeneous Poisson process, the counts in the cells ``[k d, (k + 1) d)`` of a grid of
    step ``d`` are independent Poisson variables and, given the counts, the events are iid
    uniform within their cells. A train whose times were floored (or rounded: a constant shift)
    to the grid therefore becomes, after each event is moved to an independent uniform position
    inside its cell and the train is re-sorted, *exactly* a homogeneous Poisson process under
    the null, at every resolution and rate. Every battery test applied to the result keeps its
    level: a randomised test in the sense of Lehmann & Romano (2005, doi:10.1007/0-387-27605-X).
    Ties (zero intervals) disappear. Nothing is gained above the grid's Nyquist frequency
    ``1 / (2 d)``: the battery does not search there.

    Parameters
    ----------
    intervals : array_like
        Quantised inter-arrival times [s], shape ``(n,)`` or ``(R, n)``, multiples of ``d``.
    resolution_s : float
        Grid step ``d`` [s] (:func:`timestamp_resolution`).
    rng : numpy.random.Generator
        Generator of the uniform positions (seed it for reproducible p-values).

    Returns
    -------
    numpy.ndarray
        Dequantised intervals [s], same shape (same number of events).
    """
    a, one = _as_2d(intervals)
    _check_intervals(a, min_n=1)
    if not resolution_s > 0:
        raise HeartbeatInputError("resolution_s must be > 0")
    k = np.rint(np.cumsum(a, axis=1) / resolution_s)
    cells = np.concatenate((np.zeros((a.shape[0], 1)), k), axis=1)
    t = np.sort((cells + rng.random(cells.shape)) * resolution_s, axis=1)
    out = np.diff(t, axis=1)
    return out[0] if one else out


def interior_times(intervals: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Interior event times relative to the first event, and the record span (batched).

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], shape ``(n,)`` or ``(R, n)``.

    Returns
    -------
    times : numpy.ndarray
        The ``n - 1`` interior event times [s], shape ``(R, n - 1)`` (always 2-D).
    span : numpy.ndarray
        ``T = sum(intervals)`` [s], shape ``(R,)``.
    """
    a, _ = _as_2d(intervals)
    _check_intervals(a)
    c = np.cumsum(a, axis=1)
    return c[:, :-1], c[:, -1].copy()


# --------------------------------------------------------------------------------------------
# rate and coefficient of variation


def rate_confidence_interval(
    n_intervals: int, span_s: float, conf: float = 0.95
) -> tuple[float, float, float]:
    """Event rate with its exact confidence interval.

    Given the first event, the time ``T`` to the ``n``-th further event of a Poisson process of
    rate ``lambda`` is Gamma(n, lambda) distributed, so ``2 lambda T ~ chi2(2n)`` exactly and
    ``[chi2_{2n}(a/2), chi2_{2n}(1 - a/2)] / (2T)`` is an exact interval for ``lambda``.

    Parameters
    ----------
    n_intervals : int
        Number of inter-arrival intervals ``n`` (events minus one).
    span_s : float
        Time from the first to the last event ``T`` [s].
    conf : float
        Confidence level.

    Returns
    -------
    rate, lo, hi : float
        Estimate ``n / T`` and the interval bounds [1/s].

    See Also
    --------
    asiclab.capture.workflow.poisson_rate_ci : Garwood's interval for ``n`` events counted in a
        fixed observation window (upper bound from ``chi2(2n + 2)``).
    """
    if n_intervals < 1 or not span_s > 0:
        raise InsufficientDataError("need at least one interval and a positive span")
    a = 1.0 - conf
    lo = stats.chi2.ppf(a / 2, 2 * n_intervals) / (2 * span_s)
    hi = stats.chi2.ppf(1 - a / 2, 2 * n_intervals) / (2 * span_s)
    return n_intervals / span_s, float(lo), float(hi)


def coefficient_of_variation(intervals: ArrayLike, ddof: int = 1) -> FloatArray | float:
    """Coefficient of variation ``std / mean`` of the intervals (batched).

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], shape ``(n,)`` or ``(R, n)``.
    ddof : int
        Delta degrees of freedom of the standard deviation.

    Returns
    -------
    float or numpy.ndarray
        CV [1]; 1 for a Poisson process.
    """
    a, one = _as_2d(intervals)
    _check_intervals(a)
    return _out(a.std(axis=1, ddof=ddof) / a.mean(axis=1), one)


def cv_asymptotic_se(intervals: ArrayLike) -> float:
    """Delta-method standard error of the sample CV for iid intervals of any distribution.

    ``Var(cv) = [(m4 - s^4) / (4 s^2 m^2) + s^4 / m^4 - m3 / m^3] / n`` with ``m`` the mean and
    ``s^2, m3, m4`` the central moments. It equals ``1/sqrt(n)`` for exponential intervals and
    ``c sqrt((1 + c^2) / (2n))`` for gamma intervals of CV ``c``.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], 1-D.

    Returns
    -------
    float
        Standard error [1].
    """
    x = np.asarray(intervals, dtype=np.float64)
    _check_intervals(x[np.newaxis, :], min_n=3)
    m = x.mean()
    d = x - m
    s2 = np.mean(d**2)
    m3 = np.mean(d**3)
    m4 = np.mean(d**4)
    var = ((m4 - s2**2) / (4 * s2 * m**2) + s2**2 / m**4 - m3 / m**3) / x.size
    return float(np.sqrt(max(var, 0.0)))


def cv_confidence_interval(
    intervals: ArrayLike,
    conf: float = 0.95,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    max_boot_n: int = 200_000,
    chunk_elements: int = 2**23,
) -> tuple[float, float, float, str]:
    """CV of the intervals with a percentile-bootstrap confidence interval.

    The iid (non-parametric) bootstrap resamples the intervals ``n_boot`` times with a seeded
    generator. Records longer than ``max_boot_n`` use the delta-method normal interval
    (:func:`cv_asymptotic_se`) instead, which is asymptotically equivalent and keeps memory and
    time bounded; the method used is returned.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], 1-D.
    conf : float
        Confidence level.
    n_boot : int
        Number of bootstrap resamples.
    seed : int
        Seed of the resampling generator (results are reproducible).
    max_boot_n : int
        Largest record bootstrapped; longer ones use the delta method.
    chunk_elements : int
        Resampled elements held in memory at once.

    Returns
    -------
    cv, lo, hi : float
        Estimate and interval [1].
    method : str
        ``"bootstrap"`` or ``"delta"``.
    """
    x = np.asarray(intervals, dtype=np.float64)
    _check_intervals(x[np.newaxis, :], min_n=3)
    cv = float(x.std(ddof=1) / x.mean())
    a = 1.0 - conf
    if x.size > max_boot_n:
        z = stats.norm.ppf(1 - a / 2)
        se = cv_asymptotic_se(x)
        return cv, cv - z * se, cv + z * se, "delta"
    rng = np.random.default_rng(seed)
    rows = max(1, chunk_elements // x.size)
    out = np.empty(n_boot)
    for i in range(0, n_boot, rows):
        k = min(rows, n_boot - i)
        s = x[rng.integers(0, x.size, size=(k, x.size))]
        out[i : i + k] = s.std(axis=1, ddof=1) / s.mean(axis=1)
    lo, hi = np.quantile(out, [a / 2, 1 - a / 2])
    return cv, float(lo), float(hi), "bootstrap"


# --------------------------------------------------------------------------------------------
# exponentiality and uniformity


def anderson_exponential_statistic(
    intervals: ArrayLike, modified: bool = False
) -> FloatArray | float:
    """Anderson-Darling statistic against the exponential with the mean estimated (batched).

    ``A^2 = -n - (1/n) sum_i (2i - 1) [ln F(x_(i)) + ln(1 - F(x_(n+1-i)))]`` with
    ``F(x) = 1 - exp(-x / mean)``. Zero intervals (timestamp ties) are clipped to
    ``1e-12 * mean`` so the statistic stays finite; its Monte Carlo null is for continuous
    times, so quantised trains must be dequantised first (:func:`dequantise_intervals`, which
    :func:`asiclab.heartbeat.run_battery` does). Its null distribution does not depend on
    the rate; p-values come from :mod:`asiclab.heartbeat.nulls` (Monte Carlo at the same n).

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], shape ``(n,)`` or ``(R, n)``.
    modified : bool
        Return Stephens' (1974) ``A^2 (1 + 0.6 / n)``, whose null distribution is nearly
        independent of ``n``.

    Returns
    -------
    float or numpy.ndarray
        ``A^2`` [1].
    """
    a, one = _as_2d(intervals)
    _check_intervals(a, min_n=3)
    n = a.shape[1]
    z = np.sort(a / a.mean(axis=1, keepdims=True), axis=1)
    z = np.maximum(z, 1e-12)
    log_f = np.log(-np.expm1(-z))  # ln F(z_(i))
    log_sf_rev = -z[:, ::-1]  # ln(1 - F(z_(n+1-i)))
    w = 2.0 * np.arange(1, n + 1) - 1.0
    a2 = -n - (w * (log_f + log_sf_rev)).sum(axis=1) / n
    if modified:
        a2 = a2 * (1.0 + 0.6 / n)
    return _out(a2, one)


def lilliefors_exponential(intervals: ArrayLike) -> tuple[FloatArray | float, FloatArray | float]:
    """Lilliefors-corrected Kolmogorov-Smirnov test of exponentiality (batched).

    Wraps :func:`statsmodels.stats.diagnostic.lilliefors` with ``dist="exp"``: the KS distance
    to the exponential with the mean estimated from the data, with p-values from Lilliefors'
    tables (which account for the fitted mean; a plain KS p-value would not). statsmodels
    clips p-values to [0.001, 0.99].

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], shape ``(n,)`` or ``(R, n)``.

    Returns
    -------
    statistic, pvalue : float or numpy.ndarray
        KS distance [1] and p-value.
    """
    from statsmodels.stats.diagnostic import lilliefors

    a, one = _as_2d(intervals)
    _check_intervals(a, min_n=4)
    d = np.empty(a.shape[0])
    p = np.empty(a.shape[0])
    for i, row in enumerate(a):
        d[i], p[i] = lilliefors(row, dist="exp", pvalmethod="table")
    return _out(d, one), _out(p, one)


def conditional_uniformity_test(
    intervals: ArrayLike,
) -> tuple[FloatArray | float, FloatArray | float]:
    """Exact KS test that the interior event times are uniform on the record (batched).

    Given the first and last events, the interior events of a homogeneous Poisson process are
    iid uniform on the span; nothing is fitted, so the exact KS distribution
    (:data:`scipy.stats.kstwo`) applies. Sensitive to a drifting rate (non-stationarity).
    The interior times are already sorted, so the statistic is computed in one pass in bounded
    memory (same values as :func:`scipy.stats.kstest`, checked in the tests).

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], shape ``(n,)`` or ``(R, n)``, ``n >= 3``.

    Returns
    -------
    statistic, pvalue : float or numpy.ndarray
        KS distance [1] and exact p-value.
    """
    t, span = interior_times(intervals)
    r, m = t.shape
    if m < 2:
        raise InsufficientDataError("need at least 3 intervals")
    d = np.zeros(r)
    step = max(1, 2**22 // r)
    for i0 in range(0, m, step):
        u = t[:, i0 : i0 + step] / span[:, np.newaxis]
        i = np.arange(i0, i0 + u.shape[1], dtype=np.float64)
        d = np.maximum(d, np.max(np.maximum((i + 1) / m - u, u - i / m), axis=1))
    one = np.asarray(intervals).ndim == 1
    return _out(d, one), _out(stats.kstwo.sf(d, m), one)


# --------------------------------------------------------------------------------------------
# serial dependence


def autocorrelation(intervals: ArrayLike, nlags: int) -> FloatArray:
    """Sample autocorrelation of the intervals at lags ``0..nlags`` (batched).

    Same estimator as :func:`statsmodels.tsa.stattools.acf` (``adjusted=False``): autocovariance
    with divisor ``n``, normalised by the lag-0 value; computed by FFT.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], shape ``(n,)`` or ``(R, n)``.
    nlags : int
        Largest lag [intervals].

    Returns
    -------
    numpy.ndarray
        Autocorrelations, shape ``(nlags + 1,)`` or ``(R, nlags + 1)`` [1].
    """
    a, one = _as_2d(intervals)
    _check_intervals(a, min_n=nlags + 2, nonnegative=False)
    n = a.shape[1]
    d = a - a.mean(axis=1, keepdims=True)
    if nlags <= 32:  # direct lagged products: cheaper than an FFT of 2n for few lags
        acov = np.empty((a.shape[0], nlags + 1))
        acov[:, 0] = np.einsum("ij,ij->i", d, d)
        for k in range(1, nlags + 1):
            acov[:, k] = np.einsum("ij,ij->i", d[:, :-k], d[:, k:])
    else:
        nfft = sfft.next_fast_len(2 * n - 1, real=True)
        f = sfft.rfft(d, nfft, axis=1)
        acov = sfft.irfft(f.real**2 + f.imag**2, nfft, axis=1)[:, : nlags + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = acov / acov[:, :1]
    return r[0] if one else r


def ljung_box(
    intervals: ArrayLike, lags: int = 10
) -> tuple[FloatArray | float, FloatArray | float]:
    """Ljung-Box portmanteau test of serial correlation of the intervals (batched).

    ``Q = n (n + 2) sum_{k=1}^{h} r_k^2 / (n - k)``, asymptotically ``chi2(h)`` for iid intervals
    with finite fourth moment (whatever their distribution). Identical to
    :func:`statsmodels.stats.diagnostic.acorr_ljungbox` (checked in the tests), vectorised.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], shape ``(n,)`` or ``(R, n)``.
    lags : int
        Number of lags ``h`` [intervals].

    Returns
    -------
    statistic, pvalue : float or numpy.ndarray
        ``Q`` [1] and its chi-square p-value.
    """
    a, one = _as_2d(intervals)
    n = a.shape[1]
    r = np.atleast_2d(autocorrelation(a, lags))[:, 1:]
    q = n * (n + 2) * np.sum(r**2 / (n - np.arange(1, lags + 1)), axis=1)
    return _out(q, one), _out(stats.chi2.sf(q, lags), one)


def lag1_confidence_interval(r1: float, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Approximate interval for a lag-1 autocorrelation via Fisher's z.

    Parameters
    ----------
    r1 : float
        Lag-1 autocorrelation [1].
    n : int
        Number of intervals.
    conf : float
        Confidence level.

    Returns
    -------
    lo, hi : float
        Interval bounds [1].
    """
    if n < 5 or not np.isfinite(r1):
        return float("nan"), float("nan")
    z = np.arctanh(np.clip(r1, -0.999999, 0.999999))
    h = stats.norm.ppf(0.5 + conf / 2) / np.sqrt(n - 3)
    return float(np.tanh(z - h)), float(np.tanh(z + h))


@dataclass(frozen=True)
class DFAResult:
    """Result of a detrended fluctuation analysis.

    Attributes
    ----------
    alpha : numpy.ndarray or float
        Fitted scaling exponent [1]; 0.5 for uncorrelated intervals.
    scales : numpy.ndarray
        Window sizes [intervals].
    fluctuation : numpy.ndarray
        ``F(s)`` per record and scale [s].
    intercept : numpy.ndarray or float
        Intercept of the fit of ``log10 F`` against ``log10 s``.
    order : int
        Detrending polynomial order.
    """

    alpha: FloatArray | float
    scales: NDArray[np.int64]
    fluctuation: FloatArray
    intercept: FloatArray | float
    order: int


def dfa_scales(
    n: int, s_min: int = 10, max_fraction: float = 0.1, n_scales: int = 12
) -> NDArray[np.int64]:
    """The documented DFA window sizes for a record of ``n`` intervals.

    ``n_scales`` log-spaced integers from ``s_min`` to ``floor(max_fraction * n)``, duplicates
    removed. DFA needs ``floor(max_fraction * n) >= 4 * s_min`` (``n >= 400`` by default).

    Parameters
    ----------
    n : int
        Record length [intervals].
    s_min : int
        Smallest window [intervals].
    max_fraction : float
        Largest window as a fraction of the record.
    n_scales : int
        Number of log-spaced scales requested.

    Returns
    -------
    numpy.ndarray
        Scales [intervals].
    """
    s_max = int(np.floor(max_fraction * n))
    if s_max < 4 * s_min:
        raise InsufficientDataError(
            f"DFA needs max_fraction * n >= 4 * s_min ({4 * s_min}); got n={n}"
        )
    return np.unique(np.round(np.geomspace(s_min, s_max, n_scales)).astype(np.int64))


@functools.lru_cache(maxsize=256)
def _orthonormal_poly(s: int, order: int) -> FloatArray:
    t = np.arange(s, dtype=np.float64) - (s - 1) / 2.0
    v = np.vander(t / max(1.0, s / 2.0), order + 1, increasing=True)
    q, _ = np.linalg.qr(v)
    return np.ascontiguousarray(q.T)  # (order + 1, s), orthonormal rows


def dfa(
    intervals: ArrayLike,
    scales: ArrayLike | None = None,
    order: int = 1,
    *,
    chunk_elements: int = 2**24,
) -> DFAResult:
    """Detrended fluctuation analysis of the interval series (batched).

    Method (Peng et al. 1994; segments from both ends as in Kantelhardt et al. 2001):
    profile ``Y_i = sum_{k<=i} (x_k - mean x)``; for each scale ``s`` cut ``Y`` into
    ``floor(n/s)`` non-overlapping segments from the start and as many from the end; remove a
    least-squares polynomial of degree ``order`` from each segment; ``F(s)`` is the root mean
    square residual over all ``2 floor(n/s)`` segments. ``alpha`` is the ordinary least-squares
    slope of ``log10 F(s)`` against ``log10 s`` over all scales (the fit range is the scale
    range, :func:`dfa_scales` by default: 10 to n/10 intervals, 12 log-spaced scales).

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], shape ``(n,)`` or ``(R, n)``.
    scales : array_like, optional
        Window sizes [intervals]; default :func:`dfa_scales`.
    order : int
        Detrending polynomial order (1 = DFA1).
    chunk_elements : int
        Elements processed at once (bounds memory).

    Returns
    -------
    DFAResult
    """
    a, one = _as_2d(intervals)
    _check_intervals(a, nonnegative=False)
    r, n = a.shape
    sc = dfa_scales(n) if scales is None else np.asarray(scales, dtype=np.int64)
    if sc.size < 2 or sc.min() < order + 2 or sc.max() > n:
        raise HeartbeatInputError("need >= 2 scales with order + 2 <= s <= n")
    fl = np.empty((r, sc.size))
    rows = max(1, chunk_elements // n)
    for i0 in range(0, r, rows):
        x = a[i0 : i0 + rows]
        y = np.cumsum(x - x.mean(axis=1, keepdims=True), axis=1)
        for j, s in enumerate(sc):
            nw = n // s
            p = _orthonormal_poly(int(s), order)  # row 0 is the constant
            acc = np.zeros(y.shape[0])
            for seg in (y[:, : nw * s].reshape(-1, nw, s), y[:, n - nw * s :].reshape(-1, nw, s)):
                # residual sum of squares = |y|^2 - |projection on the polynomial basis|^2
                tot = np.einsum("rws,rws->rw", seg, seg)
                proj = seg @ p.T
                acc += np.sum(np.maximum(tot - np.einsum("rwk,rwk->rw", proj, proj), 0.0), axis=1)
            fl[i0 : i0 + rows, j] = np.sqrt(acc / (2 * nw * s))
    ls = np.log10(sc.astype(np.float64))
    with np.errstate(divide="ignore"):
        lf = np.log10(fl)
    lsc = ls - ls.mean()
    slope = (lf - lf.mean(axis=1, keepdims=True)) @ lsc / np.sum(lsc**2)
    intercept = lf.mean(axis=1) - slope * ls.mean()
    return DFAResult(
        alpha=_out(slope, one),
        scales=sc,
        fluctuation=fl[0] if one else fl,
        intercept=_out(intercept, one),
        order=order,
    )


# --------------------------------------------------------------------------------------------
# counting statistics: Fano factor and Allan factor


def window_counts(intervals: ArrayLike, n_windows: int) -> NDArray[np.int64]:
    """Counts of interior events in ``n_windows`` equal windows tiling each record (batched).

    Under the Poisson null the counts are multinomial(n - 1, 1/K) given the first and last
    events, whatever the rate.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], shape ``(n,)`` or ``(R, n)``.
    n_windows : int
        Number of windows ``K``; window length is ``T / K`` [s].

    Returns
    -------
    numpy.ndarray
        Counts, shape ``(R, K)`` (always 2-D).
    """
    if n_windows < 2:
        raise HeartbeatInputError("n_windows must be >= 2")
    t, span = interior_times(intervals)
    return _counts(t, span, n_windows)


def _counts(t: FloatArray, span: FloatArray, n_windows: int) -> NDArray[np.int64]:
    r = t.shape[0]
    idx = np.minimum((t * (n_windows / span)[:, np.newaxis]).astype(np.int64), n_windows - 1)
    idx += (np.arange(r, dtype=np.int64) * n_windows)[:, np.newaxis]
    return np.bincount(idx.ravel(), minlength=r * n_windows).reshape(r, n_windows)


def fano_factor(counts: ArrayLike) -> FloatArray:
    """Fano factor ``var / mean`` of window counts (sample variance, ``ddof=1``), per row.

    Parameters
    ----------
    counts : array_like
        Counts, shape ``(K,)`` or ``(R, K)``.

    Returns
    -------
    numpy.ndarray
        Fano factor [1]; 1 for a Poisson process.
    """
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return c.var(axis=1, ddof=1) / c.mean(axis=1)


def fano_test(counts: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Index-of-dispersion test of window counts against Poisson (two-sided).

    ``D = sum (c_i - cbar)^2 / cbar`` is asymptotically ``chi2(K - 1)`` for multinomial
    (conditional Poisson) counts; ``F = D / (K - 1)``.

    Parameters
    ----------
    counts : array_like
        Counts, shape ``(K,)`` or ``(R, K)``.

    Returns
    -------
    fano, pvalue : numpy.ndarray
        Fano factor [1] and two-sided p-value, per row.
    """
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    k = c.shape[1]
    f = fano_factor(c)
    d = f * (k - 1)
    p = 2.0 * np.minimum(stats.chi2.cdf(d, k - 1), stats.chi2.sf(d, k - 1))
    return f, np.minimum(p, 1.0)


def fano_null_quantiles(n_windows: int, q: ArrayLike) -> FloatArray:
    """Quantiles of the Fano factor of ``K`` multinomial counts (``chi2(K-1)/(K-1)``).

    Parameters
    ----------
    n_windows : int
        Number of windows ``K``.
    q : array_like
        Probabilities.

    Returns
    -------
    numpy.ndarray
        Quantiles [1].
    """
    return stats.chi2.ppf(np.asarray(q, dtype=np.float64), n_windows - 1) / (n_windows - 1)


def allan_factor(counts: ArrayLike) -> FloatArray:
    """Allan factor ``E[(c_{i+1} - c_i)^2] / (2 E[c])`` of window counts, per row.

    Parameters
    ----------
    counts : array_like
        Counts, shape ``(K,)`` or ``(R, K)``.

    Returns
    -------
    numpy.ndarray
        Allan factor [1]; 1 for a Poisson process.
    """
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.mean(np.diff(c, axis=1) ** 2, axis=1) / (2.0 * c.mean(axis=1))


def _allan_weights(n_windows: int) -> FloatArray:
    # eigenvalues of D'D for the first-difference matrix D (path-graph Laplacian)
    j = np.arange(1, n_windows)
    return 2.0 - 2.0 * np.cos(np.pi * j / n_windows)


def weighted_chi2_sf(x: float, weights: ArrayLike) -> float:
    """Survival function of ``sum_j w_j Z_j^2`` (iid standard normal ``Z``) by Imhof's formula.

    ``P(Q > x) = 1/2 + (1/pi) int_0^inf sin(theta(u)) / (u rho(u)) du`` with
    ``theta(u) = phi(u) - x u / 2``, ``phi(u) = (1/2) sum arctan(w_j u)`` and
    ``rho(u) = prod (1 + w_j^2 u^2)^(1/4)`` (Imhof 1961, doi:10.1093/biomet/48.3-4.419).
    Beyond the first oscillation the integral is split into ``sin(phi)/(u rho) cos(x u / 2)``
    and ``cos(phi)/(u rho) sin(x u / 2)`` parts, each integrated by QUADPACK's Fourier-integral
    routine (QAWF), which copes with the slow decay caused by small weights.

    Parameters
    ----------
    x : float
        Quantile.
    weights : array_like
        Positive weights ``w_j``.

    Returns
    -------
    float
        Upper-tail probability, clipped to [0, 1] (absolute accuracy about 1e-10).
    """
    w = np.asarray(weights, dtype=np.float64)
    if x <= 0:
        return 1.0

    def phi(u: float) -> float:
        return 0.5 * float(np.sum(np.arctan(w * u)))

    def env(u: float) -> float:
        return float(np.exp(-0.25 * np.sum(np.log1p((w * u) ** 2))) / u)

    a = 4.0 * np.pi / x  # one period of sin(x u / 2)
    v0, _ = integrate.quad(lambda u: np.sin(phi(u) - 0.5 * x * u) * env(u), 0.0, a,
                           limit=200, epsabs=1e-13)
    vc, _ = integrate.quad(lambda u: np.sin(phi(u)) * env(u), a, np.inf, weight="cos",
                           wvar=0.5 * x, limlst=200)
    vs, _ = integrate.quad(lambda u: np.cos(phi(u)) * env(u), a, np.inf, weight="sin",
                           wvar=0.5 * x, limlst=200)
    return float(np.clip(0.5 + (v0 + vc - vs) / np.pi, 0.0, 1.0))


_IMHOF_MAX_WINDOWS = 256


@functools.lru_cache(maxsize=32)
def _allan_null_curve(n_windows: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    # log sf and log cdf of the Allan factor on a grid, from Imhof's formula
    w = _allan_weights(n_windows)
    q_of = 2.0 * (n_windows - 1)
    mean, sd = 1.0, float(np.sqrt(2.0 * np.sum(w**2))) / q_of
    grid = np.concatenate((
        np.linspace(max(1e-3, mean - 12 * sd), mean + 4 * sd, 97)[:-1],
        np.linspace(mean + 4 * sd, mean + 40 * sd, 61),
    ))
    grid = grid[grid > 0]
    sf = np.array([weighted_chi2_sf(q_of * g, w) for g in grid])
    with np.errstate(divide="ignore"):
        ls, lc = np.log(sf), np.log1p(-sf)
    return grid, ls, lc


def _interp_log(x: FloatArray, grid: FloatArray, logp: FloatArray, upper: bool) -> FloatArray:
    ok = np.isfinite(logp) & (logp > -700)
    g, lp = grid[ok], logp[ok]
    out = np.interp(x, g, lp)
    # linear extrapolation of log p in the far tails
    if upper:
        far = x > g[-1]
        slope = (lp[-1] - lp[-2]) / (g[-1] - g[-2])
        out[far] = lp[-1] + slope * (x[far] - g[-1])
    else:
        far = x < g[0]
        slope = (lp[1] - lp[0]) / (g[1] - g[0])
        out[far] = lp[0] - slope * (g[0] - x[far])
    return np.minimum(np.exp(out), 1.0)


def _satterthwaite(n_windows: int) -> tuple[float, float]:
    w = _allan_weights(n_windows)
    return float(np.sum(w**2) / np.sum(w)), float(np.sum(w) ** 2 / np.sum(w**2))


def _allan_null_tail(af: ArrayLike, n_windows: int, upper: bool) -> FloatArray:
    # P(AF >= af) (upper) or P(AF <= af) under the Poisson null; NaN where af is not finite
    x = np.atleast_1d(np.asarray(af, dtype=np.float64))
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    if n_windows <= _IMHOF_MAX_WINDOWS:
        grid, ls, lc = _allan_null_curve(int(n_windows))
        out[ok] = _interp_log(x[ok], grid, ls if upper else lc, upper=upper)
    else:
        g, h = _satterthwaite(n_windows)
        tail = stats.chi2.sf if upper else stats.chi2.cdf
        out[ok] = tail(2.0 * (n_windows - 1) * x[ok] / g, h)
    return out


def allan_null_sf(af: ArrayLike, n_windows: int) -> FloatArray:
    """Upper-tail probability of the Allan factor of ``K`` multinomial (Poisson) counts.

    For multinomial counts with mean ``cbar`` the statistic
    ``Q = sum (c_{i+1} - c_i)^2 / cbar = 2 (K - 1) AF`` tends to
    ``sum_{j=1}^{K-1} lambda_j Z_j^2`` with ``lambda_j = 2 - 2 cos(pi j / K)`` (the eigenvalues
    of the path-graph Laplacian ``D'D``). For ``K <= 256`` the distribution is computed by
    Imhof's formula (:func:`weighted_chi2_sf`) on a grid once per ``K`` and interpolated in
    ``log p``; beyond, the Satterthwaite scaled chi-square (many comparable weights) is used.

    Parameters
    ----------
    af : array_like
        Allan factor(s) [1].
    n_windows : int
        Number of windows ``K``.

    Returns
    -------
    numpy.ndarray
        ``P(AF >= af)`` under the Poisson null.
    """
    return _allan_null_tail(af, n_windows, upper=True)


def allan_null_cdf(af: ArrayLike, n_windows: int) -> FloatArray:
    """Lower-tail probability ``P(AF <= af)``, companion of :func:`allan_null_sf`.

    Parameters
    ----------
    af : array_like
        Allan factor(s) [1].
    n_windows : int
        Number of windows ``K``.

    Returns
    -------
    numpy.ndarray
        Probabilities.
    """
    return _allan_null_tail(af, n_windows, upper=False)


def allan_test(counts: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Two-sided test of the Allan factor of window counts against Poisson.

    Parameters
    ----------
    counts : array_like
        Counts, shape ``(K,)`` or ``(R, K)``.

    Returns
    -------
    allan, pvalue : numpy.ndarray
        Allan factor [1] and two-sided p-value (:func:`allan_null_sf`), per row.
    """
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    k = c.shape[1]
    af = allan_factor(c)
    p = 2.0 * np.minimum(allan_null_sf(af, k), allan_null_cdf(af, k))
    return af, np.minimum(p, 1.0)


def allan_null_quantiles(n_windows: int, q: ArrayLike) -> FloatArray:
    """Approximate quantiles of the Allan factor of ``K`` multinomial counts (for bands).

    Satterthwaite's scaled chi-square with the exact mean and variance of the weighted sum in
    :func:`allan_null_sf`; used for display bands only (the test uses the exact distribution).

    Parameters
    ----------
    n_windows : int
        Number of windows ``K``.
    q : array_like
        Probabilities.

    Returns
    -------
    numpy.ndarray
        Quantiles [1].
    """
    g, h = _satterthwaite(int(n_windows))
    return g * stats.chi2.ppf(np.asarray(q, dtype=np.float64), h) / (2.0 * (n_windows - 1))


def counting_curves(
    intervals: ArrayLike,
    *,
    min_mean_intervals: float = 2.0,
    max_fraction: float = 0.1,
    n_sizes: int = 16,
    conf: float = 0.95,
) -> dict[str, FloatArray]:
    """Fano and Allan factors over log-spaced window sizes with pointwise Poisson bands.

    Window sizes run from ``min_mean_intervals`` mean intervals to ``max_fraction`` of the
    record; each size is rounded so that ``K`` equal windows tile the record exactly.
    The band at each size is the central ``conf`` interval of the statistic for conditional
    Poisson (multinomial) counts (:func:`fano_null_quantiles`, :func:`allan_null_quantiles`).
    These are pointwise bands, for display; the calibrated tests are :func:`fano_test` and
    :func:`allan_test` at pre-set window sizes.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], 1-D.
    min_mean_intervals : float
        Smallest window [mean intervals].
    max_fraction : float
        Largest window as a fraction of the record span.
    n_sizes : int
        Number of window sizes requested.
    conf : float
        Band coverage.

    Returns
    -------
    dict
        Arrays ``window_s`` [s], ``n_windows``, ``mean_count`` [events], ``fano``, ``fano_lo``,
        ``fano_hi``, ``allan``, ``allan_lo``, ``allan_hi`` [1].
    """
    x = np.asarray(intervals, dtype=np.float64)
    if x.ndim != 1:
        raise HeartbeatInputError("counting_curves takes one record")
    _check_intervals(x[np.newaxis, :], min_n=20)
    n = x.size
    k_max = max(10, int(n / min_mean_intervals))
    k_min = max(10, int(np.ceil(1.0 / max_fraction)))
    if k_max <= k_min:
        raise InsufficientDataError("record too short for a counting curve")
    ks = np.unique(np.round(np.geomspace(k_max, k_min, n_sizes)).astype(np.int64))[::-1]
    span = float(x.sum())
    a = (1 - conf) / 2
    out: dict[str, list[float]] = {k: [] for k in (
        "window_s", "n_windows", "mean_count", "fano", "fano_lo", "fano_hi",
        "allan", "allan_lo", "allan_hi")}
    t, sp = interior_times(x)
    for k in ks:
        c = _counts(t, sp, int(k))
        out["window_s"].append(span / k)
        out["n_windows"].append(float(k))
        out["mean_count"].append(float(c.mean()))
        out["fano"].append(float(fano_factor(c)[0]))
        lo, hi = fano_null_quantiles(int(k), [a, 1 - a])
        out["fano_lo"].append(float(lo))
        out["fano_hi"].append(float(hi))
        out["allan"].append(float(allan_factor(c)[0]))
        lo, hi = allan_null_quantiles(int(k), [a, 1 - a])
        out["allan_lo"].append(float(lo))
        out["allan_hi"].append(float(hi))
    return {k: np.asarray(v) for k, v in out.items()}
