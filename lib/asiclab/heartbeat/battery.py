"""The calibrated test battery: is a share train a homogeneous Poisson process?

Null hypothesis H0: the events of one operating point form a homogeneous Poisson process
(iid exponential intervals). The battery has ten tests, each with a p-value that is valid at
the record lengths used (exact, asymptotically exact with good accuracy at N = 2,000, or Monte
Carlo at the exact N); ``tests/test_heartbeat_calibration.py`` checks on 1,000 simulated
Poisson records of 2,000 events that each test's false-positive rate at alpha = 0.05 lies in
[0.035, 0.065] and that the family-wise rate after Holm's correction stays <= 0.065, and that the
battery detects gamma renewal processes with CV 1.2 and 0.8 in >= 90 % of records.

=================  ====================  ===========  =========================================
test               family                alternative  null distribution
=================  ====================  ===========  =========================================
cv                 interval distribution two-sided    Monte Carlo table at the exact n
lilliefors_exp     interval distribution greater      Lilliefors table (statsmodels)
anderson_exp       interval distribution greater      Monte Carlo table at the exact n
uniformity_ks      stationarity          two-sided    exact KS (interior events uniform)
ljung_box          serial dependence     greater      chi2(h), h = 10 lags
dfa                serial dependence     two-sided    Monte Carlo table at the exact n
fano               dispersion            two-sided    chi2(K - 1), windows of 10 mean intervals
allan              dispersion            two-sided    weighted chi2 (Imhof), K = 32 windows
spectral_max       periodicity           greater      max of M Exp(1), band 0.1-5 Hz
spectral_target    periodicity           greater      max of M Exp(1), 2.4 +/- 0.05 Hz
=================  ====================  ===========  =========================================

Quantised timestamps: the resolution of a train's timestamps (a logger writing milliseconds,
seconds...) is detected (:func:`asiclab.heartbeat.stats.timestamp_resolution`). When it matters
(ties, or a grid step of at least 1e-5 mean intervals), the battery runs on the train with every
event redrawn uniformly inside its grid cell (:func:`asiclab.heartbeat.stats.dequantise_intervals`,
seeded): under the Poisson null that train is exactly Poisson, so every test keeps its level at
any resolution (the calibration test checks 1 ms stamps at 10/s and 1 s stamps at 1/s). The
spectral tests never search at or above the grid's Nyquist frequency ``1 / (2 d)``: frequencies
there are aliases of lower ones through the timestamp grid (with 1 s stamps, "2.4 Hz" is 0.4 Hz
or the 1 Hz comb), so a band beyond it is not tested (NaN) and never named in a verdict.

Multiple testing: Holm's step-down procedure (controls the family-wise error rate under any
dependence between the tests) via :func:`statsmodels.stats.multitest.multipletests`; the
Benjamini-Hochberg false-discovery-rate procedure (``"fdr_bh"``) is available as an option.

The verdict of an operating point names what the rejected tests indicate, with the sign of the
effect deciding between over- and under-dispersion. Serial-dependence verdicts from the battery
test "not Poisson"; whether the dependence survives shuffling the intervals (i.e. is not just a
non-exponential renewal process) is what :mod:`asiclab.heartbeat.surrogates` answers.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from statsmodels.stats.multitest import multipletests

from asiclab.heartbeat import nulls, spectral
from asiclab.heartbeat import stats as hs
from asiclab.heartbeat._errors import HeartbeatInputError

FloatArray = NDArray[np.float64]

__all__ = [
    "TESTS",
    "BatteryConfig",
    "BatteryResult",
    "TestSpec",
    "adjust_pvalues",
    "adjust_rows",
    "grid_nyquist_hz",
    "prepare_intervals",
    "run_battery",
    "spectral_bands",
    "spectral_tests",
    "verdict",
]


@dataclass(frozen=True)
class TestSpec:
    """Description of one battery test.

    Attributes
    ----------
    name : str
        Short name (column/row label).
    family : str
        What the test looks at.
    alternative : str
        ``"two-sided"`` or ``"greater"``.
    null : str
        How the null distribution is obtained.
    effect_name : str
        Meaning of the effect-size column.
    min_intervals : int
        Fewest intervals for which the test is run (else NaN, excluded from the family).
    """

    name: str
    family: str
    alternative: str
    null: str
    effect_name: str
    min_intervals: int

    __test__ = False  # not a pytest class


TESTS: tuple[TestSpec, ...] = (
    TestSpec("cv", "interval distribution", "two-sided", "Monte Carlo table (exact n)",
             "CV - 1", 20),
    TestSpec("lilliefors_exp", "interval distribution", "greater",
             "Lilliefors table (statsmodels)", "KS distance", 20),
    TestSpec("anderson_exp", "interval distribution", "greater", "Monte Carlo table (exact n)",
             "A^2", 20),
    TestSpec("uniformity_ks", "stationarity", "two-sided", "exact KS", "KS distance", 20),
    TestSpec("ljung_box", "serial dependence", "greater", "asymptotic chi2(h)",
             "lag-1 autocorrelation", 100),
    TestSpec("dfa", "serial dependence", "two-sided", "Monte Carlo table (exact n)",
             "alpha - 0.5", 400),
    TestSpec("fano", "dispersion", "two-sided", "asymptotic chi2(K-1)", "Fano - 1", 100),
    TestSpec("allan", "dispersion", "two-sided", "asymptotic weighted chi2 (Imhof)",
             "Allan - 1", 160),
    TestSpec("spectral_max", "periodicity", "greater", "max of M Exp(1)",
             "modulation depth at peak", 100),
    TestSpec("spectral_target", "periodicity", "greater", "max of M Exp(1)",
             "modulation depth at target", 100),
)
_NAMES = tuple(t.name for t in TESTS)


@dataclass(frozen=True)
class BatteryConfig:
    """Pre-set parameters of the battery (chosen before looking at any data).

    Attributes
    ----------
    fano_window : float
        Fano-test window [mean intervals]; ``K = round(n / fano_window)`` windows.
    allan_windows : int
        Number of windows ``K`` of the Allan test (long time scale: record / K).
    ljung_box_lags : int
        Lags of the Ljung-Box test [intervals].
    band_hz : tuple of float
        Band searched by ``spectral_max`` [Hz].
    target_hz : float
        Frequency of the claimed heartbeat [Hz].
    target_halfwidth_hz : float
        Half-width of the band around ``target_hz`` searched by ``spectral_target`` [Hz].
    oversample : float
        Count-series bins per Nyquist interval of the highest frequency.
    """

    fano_window: float = 10.0
    allan_windows: int = 32
    ljung_box_lags: int = 10
    band_hz: tuple[float, float] = (0.1, 5.0)
    target_hz: float = 2.4
    target_halfwidth_hz: float = 0.05
    oversample: float = 2.0

    def as_dict(self) -> dict[str, object]:
        """Plain dict (for provenance)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class BatteryResult:
    """Statistics, effect sizes and raw p-values of the battery for ``R`` records.

    Attributes
    ----------
    n_intervals : int
        Intervals per record.
    statistic, effect, pvalue : numpy.ndarray
        Shape ``(R, len(TESTS))``; NaN where a test does not apply.
    peak_hz : numpy.ndarray
        Frequency of the largest periodogram value in ``band_hz`` [Hz], shape ``(R,)``.
    target_peak_hz : numpy.ndarray
        Same within the target band [Hz].
    config : BatteryConfig
        Parameters used.
    dfa : DFAResult or None
        Full DFA result (scales, fluctuation function) when the DFA test ran.
    resolution_s : float
        Detected (or given) timestamp resolution [s]; 0 for continuous times.
    dequantised : bool
        Whether the tests ran on dequantised intervals (:func:`prepare_intervals`).
    """

    n_intervals: int
    statistic: FloatArray
    effect: FloatArray
    pvalue: FloatArray
    peak_hz: FloatArray
    target_peak_hz: FloatArray
    config: BatteryConfig = field(default_factory=BatteryConfig)
    dfa: hs.DFAResult | None = None
    resolution_s: float = 0.0
    dequantised: bool = False

    names: tuple[str, ...] = _NAMES

    @property
    def n_records(self) -> int:
        """Number of records ``R``."""
        return int(self.pvalue.shape[0])

    def adjust(
        self, method: str = "holm", alpha: float = 0.05
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        """Multiple-testing adjustment within each record (family = that record's tests).

        Parameters
        ----------
        method : str
            ``"holm"`` (family-wise error) or ``"fdr_bh"`` (false discovery rate).
        alpha : float
            Level.

        Returns
        -------
        p_adjusted : numpy.ndarray
            Adjusted p-values, NaN where the test did not apply.
        reject : numpy.ndarray
            Rejections at ``alpha``.
        """
        padj = adjust_rows(self.pvalue, method=method)
        return padj, np.nan_to_num(padj, nan=np.inf) <= alpha

    def any_rejected(self, method: str = "holm", alpha: float = 0.05) -> NDArray[np.bool_]:
        """Whether the battery rejects H0 for each record after correction."""
        return self.adjust(method, alpha)[1].any(axis=1)

    def to_frame(self, method: str = "holm", alpha: float = 0.05) -> pd.DataFrame:
        """Tidy table: one row per record and test.

        Parameters
        ----------
        method, alpha
            As in :meth:`adjust` (family = one record).

        Returns
        -------
        pandas.DataFrame
        """
        padj, rej = self.adjust(method, alpha)
        rows = []
        for i in range(self.n_records):
            for j, spec in enumerate(TESTS):
                rows.append({
                    "record": i, "test": spec.name, "family": spec.family,
                    "statistic": self.statistic[i, j], "effect": self.effect[i, j],
                    "effect_name": spec.effect_name, "p_value": self.pvalue[i, j],
                    "p_adjusted": padj[i, j], "reject": bool(rej[i, j]), "null": spec.null,
                })
        return pd.DataFrame(rows)


def adjust_pvalues(
    pvalues: ArrayLike, method: str = "holm", alpha: float = 0.05
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Adjust a family of p-values, ignoring NaNs (tests that did not apply).

    Parameters
    ----------
    pvalues : array_like
        Raw p-values (any shape).
    method : str
        ``"holm"`` or ``"fdr_bh"`` (see :func:`statsmodels.stats.multitest.multipletests`).
    alpha : float
        Level.

    Returns
    -------
    p_adjusted : numpy.ndarray
        Same shape; NaN where the input is NaN.
    reject : numpy.ndarray
        Same shape; False where the input is NaN.
    """
    if method not in ("holm", "fdr_bh"):
        raise HeartbeatInputError("method must be 'holm' or 'fdr_bh'")
    p = np.asarray(pvalues, dtype=np.float64)
    padj = np.full(p.shape, np.nan)
    rej = np.zeros(p.shape, dtype=bool)
    ok = np.isfinite(p)
    if ok.any():
        r, pa, _, _ = multipletests(p[ok], alpha=alpha, method=method)
        padj[ok] = pa
        rej[ok] = r
    return padj, rej


def adjust_rows(pvalues: ArrayLike, method: str = "holm") -> FloatArray:
    """Vectorised Holm or Benjamini-Hochberg adjustment along the last axis.

    Each row is one family; NaN entries (tests that did not apply) are left out of the family
    and stay NaN. Gives the same adjusted p-values as
    :func:`statsmodels.stats.multitest.multipletests` (checked in the tests), without a Python
    loop over rows; a hypothesis is rejected at level ``alpha`` iff its adjusted p-value is
    ``<= alpha``.

    Parameters
    ----------
    pvalues : array_like
        Raw p-values, shape ``(T,)`` or ``(R, T)``.
    method : str
        ``"holm"`` or ``"fdr_bh"``.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same shape.
    """
    if method not in ("holm", "fdr_bh"):
        raise HeartbeatInputError("method must be 'holm' or 'fdr_bh'")
    p = np.asarray(pvalues, dtype=np.float64)
    one = p.ndim == 1
    p = np.atleast_2d(p)
    finite = np.isfinite(p)
    m = finite.sum(axis=1, keepdims=True)
    order = np.argsort(np.where(finite, p, np.inf), axis=1, kind="stable")
    s = np.take_along_axis(p, order, axis=1)
    j = np.arange(p.shape[1])[np.newaxis, :]
    valid = j < m
    s = np.where(valid, s, 0.0)
    if method == "holm":
        a = np.maximum.accumulate(np.where(valid, (m - j) * s, 0.0), axis=1)
    else:
        a = np.where(valid, m / (j + 1.0) * s, np.inf)
        a = np.minimum.accumulate(a[:, ::-1], axis=1)[:, ::-1]
    a = np.minimum(a, 1.0)
    out = np.empty_like(a)
    np.put_along_axis(out, order, a, axis=1)
    out[~finite] = np.nan
    return out[0] if one else out


#: Root seed of the dequantisation of quantised trains (combined with the ``seed`` argument).
DEQUANTISE_SEED: int = 20_261_204

#: Smallest timestamp resolution, relative to the mean interval, that is dequantised.
DEQUANTISE_MIN_RELATIVE: float = 1e-5


def prepare_intervals(
    intervals: ArrayLike, resolution: float | None = None, *, seed: int = 0
) -> tuple[FloatArray, float, bool]:
    """Intervals as the battery tests them: dequantised when the timestamps are quantised.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], shape ``(n,)`` or ``(R, n)``.
    resolution : float, optional
        Timestamp resolution [s]; ``None`` detects it
        (:func:`asiclab.heartbeat.stats.timestamp_resolution`), ``0`` declares continuous times.
    seed : int
        Seed of the uniform redraws (with :data:`DEQUANTISE_SEED`): results are reproducible.

    Returns
    -------
    intervals : numpy.ndarray
        Intervals to test [s] (a float64 copy or view when nothing is done), same shape.
    resolution_s : float
        Resolution used [s] (0: continuous).
    dequantised : bool
        True when the events were redrawn inside their grid cells: done when there are ties
        (zero intervals) or the grid step is at least :data:`DEQUANTISE_MIN_RELATIVE` mean
        intervals.
    """
    a = np.asarray(intervals, dtype=np.float64)
    if a.ndim not in (1, 2) or a.shape[-1] < 1:
        raise HeartbeatInputError("intervals must be a non-empty 1-D or 2-D array")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise HeartbeatInputError("intervals must be finite and >= 0")
    res = hs.timestamp_resolution(a) if resolution is None else float(resolution)
    if not res >= 0:
        raise HeartbeatInputError("resolution must be >= 0 [s]")
    mean = float(a.mean()) if a.size else 0.0
    if res > 0 and (np.any(a == 0) or res >= DEQUANTISE_MIN_RELATIVE * mean):
        rng = np.random.default_rng([DEQUANTISE_SEED, int(seed)])
        return hs.dequantise_intervals(a, res, rng), res, True
    return a, res, False


def run_battery(
    intervals: ArrayLike,
    config: BatteryConfig | None = None,
    *,
    only: Collection[str] | None = None,
    resolution: float | None = None,
    seed: int = 0,
) -> BatteryResult:
    """Run every battery test on one record or a stack of equally long records.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], shape ``(n,)`` or ``(R, n)``, in time order.
    config : BatteryConfig, optional
        Parameters (default :class:`BatteryConfig`).
    only : collection of str, optional
        Run only these tests (the others are NaN); used by the surrogate comparison.
    resolution : float, optional
        Timestamp resolution [s]; default: detected. See :func:`prepare_intervals`.
    seed : int
        Seed of the dequantisation of quantised trains.

    Returns
    -------
    BatteryResult
    """
    cfg = BatteryConfig() if config is None else config
    a = np.asarray(intervals, dtype=np.float64)
    if a.ndim == 1:
        a = a[np.newaxis, :]
    if a.ndim != 2:
        raise HeartbeatInputError("intervals must be 1-D or 2-D")
    r, n = a.shape
    if n < 3:
        raise HeartbeatInputError("need at least 3 intervals")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise HeartbeatInputError("intervals must be finite and >= 0")
    a, grid, deq = prepare_intervals(a, resolution, seed=seed)
    nt = len(TESTS)
    st = np.full((r, nt), np.nan)
    ef = np.full((r, nt), np.nan)
    pv = np.full((r, nt), np.nan)
    peak = np.full(r, np.nan)
    tpeak = np.full(r, np.nan)
    col = {name: j for j, name in enumerate(_NAMES)}
    minn = {t.name: t.min_intervals for t in TESTS}

    if only is not None and not set(only) <= set(_NAMES):
        raise HeartbeatInputError(f"unknown test(s) {sorted(set(only) - set(_NAMES))}")

    def ok(name: str) -> bool:
        return n >= minn[name] and (only is None or name in only)

    if ok("cv"):
        cv = a.std(axis=1, ddof=1) / a.mean(axis=1)
        st[:, col["cv"]] = cv
        ef[:, col["cv"]] = cv - 1.0
        pv[:, col["cv"]] = nulls.cv_pvalue(cv, n)
    if ok("lilliefors_exp"):
        d, p = hs.lilliefors_exponential(a)
        st[:, col["lilliefors_exp"]] = d
        ef[:, col["lilliefors_exp"]] = d
        pv[:, col["lilliefors_exp"]] = p
    if ok("anderson_exp"):
        a2 = np.atleast_1d(hs.anderson_exponential_statistic(a))
        st[:, col["anderson_exp"]] = a2
        ef[:, col["anderson_exp"]] = a2
        pv[:, col["anderson_exp"]] = nulls.ad_pvalue(a2, n)
    if ok("uniformity_ks"):
        d, p = hs.conditional_uniformity_test(a)
        st[:, col["uniformity_ks"]] = d
        ef[:, col["uniformity_ks"]] = d
        pv[:, col["uniformity_ks"]] = p
    if ok("ljung_box"):
        acf = np.atleast_2d(hs.autocorrelation(a, cfg.ljung_box_lags))
        q, p = hs.ljung_box(a, cfg.ljung_box_lags)
        st[:, col["ljung_box"]] = q
        ef[:, col["ljung_box"]] = acf[:, 1]
        pv[:, col["ljung_box"]] = p
    dfa_res = None
    if ok("dfa"):
        res = dfa_res = hs.dfa(a)
        alpha = np.atleast_1d(res.alpha)
        st[:, col["dfa"]] = alpha
        ef[:, col["dfa"]] = alpha - 0.5
        pv[:, col["dfa"]] = nulls.dfa_pvalue(alpha, n)[0]
    if ok("fano"):
        k = max(10, round(n / cfg.fano_window))
        f, p = hs.fano_test(hs.window_counts(a, k))
        st[:, col["fano"]] = f
        ef[:, col["fano"]] = f - 1.0
        pv[:, col["fano"]] = p
    if ok("allan"):
        af, p = hs.allan_test(hs.window_counts(a, cfg.allan_windows))
        st[:, col["allan"]] = af
        ef[:, col["allan"]] = af - 1.0
        pv[:, col["allan"]] = p
    if ok("spectral_max") or ok("spectral_target"):
        sp = spectral_tests(a, cfg, resolution=grid)
        for name in ("spectral_max", "spectral_target"):
            st[:, col[name]] = sp[name][0]
            ef[:, col[name]] = sp[name][1]
            pv[:, col[name]] = sp[name][2]
        peak[:] = sp["spectral_max"][3]
        tpeak[:] = sp["spectral_target"][3]
    return BatteryResult(
        n_intervals=n, statistic=st, effect=ef, pvalue=pv, peak_hz=peak, target_peak_hz=tpeak,
        config=cfg, dfa=dfa_res, resolution_s=grid, dequantised=deq,
    )


def grid_nyquist_hz(resolution_s: float) -> float:
    """Nyquist frequency ``1 / (2 d)`` of a timestamp grid of step ``d`` [Hz] (inf if d = 0)."""
    return 0.5 / resolution_s if resolution_s > 0 else float("inf")


def spectral_bands(
    config: BatteryConfig | None = None, resolution_s: float = 0.0
) -> dict[str, tuple[float, float] | None]:
    """Bands searched by the two spectral tests, cut below the timestamp grid's Nyquist frequency.

    Parameters
    ----------
    config : BatteryConfig, optional
        Parameters.
    resolution_s : float
        Timestamp resolution [s] (0: continuous times).

    Returns
    -------
    dict
        ``{"spectral_max": (lo, hi) or None, "spectral_target": (lo, hi) or None}`` [Hz];
        ``None`` when the band lies at or above the grid Nyquist frequency (every frequency
        there is an alias of a lower one through the timestamp grid: not tested).
    """
    cfg = BatteryConfig() if config is None else config
    f_n = grid_nyquist_hz(resolution_s)
    lo, hi = cfg.band_hz
    out: dict[str, tuple[float, float] | None] = {
        "spectral_max": (lo, min(hi, f_n * (1 - 1e-9))) if lo < f_n else None}
    t_lo, t_hi = cfg.target_hz - cfg.target_halfwidth_hz, cfg.target_hz + cfg.target_halfwidth_hz
    out["spectral_target"] = (t_lo, t_hi) if t_hi < f_n else None
    return out


def spectral_tests(
    intervals: ArrayLike, config: BatteryConfig | None = None, *, resolution: float = 0.0
) -> dict[str, tuple[FloatArray, FloatArray, FloatArray, FloatArray]]:
    """The two spectral tests of the battery on their own (batched).

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], shape ``(n,)`` or ``(R, n)`` (dequantised already, see
        :func:`prepare_intervals`).
    config : BatteryConfig, optional
        Parameters.
    resolution : float
        Timestamp resolution [s]: bands are cut by :func:`spectral_bands`; a test whose band
        is beyond the grid Nyquist frequency gets NaN.

    Returns
    -------
    dict
        ``{"spectral_max": (I_max, depth, pvalue, f_peak), "spectral_target": (...)}``,
        arrays of shape ``(R,)``; ``I`` in units of the Poisson level, depth [1], ``f`` [Hz].
    """
    cfg = BatteryConfig() if config is None else config
    bands = spectral_bands(cfg, resolution)
    r = np.atleast_2d(np.asarray(intervals)).shape[0]
    nan = np.full(r, np.nan)
    out = {name: (nan, nan, nan, nan) for name in bands}
    live = {name: b for name, b in bands.items() if b is not None}
    if not live:
        return out
    f_hi = max(b[1] for b in live.values())
    pg = spectral.count_periodogram(intervals, f_hi, oversample=cfg.oversample)
    for name, band in live.items():
        i_max, f_pk, p, _ = spectral.spectral_peak_test(pg, band)
        out[name] = (i_max, spectral.modulation_depth_estimate(i_max, pg.n_events), p, f_pk)
    return out


def verdict(
    rejected: Mapping[str, bool],
    effects: Mapping[str, float],
    *,
    n_events: int,
    min_events: int,
    peak_hz: float = float("nan"),
    target_peak_hz: float = float("nan"),
    shuffle_p: Mapping[str, float] | None = None,
    alpha: float = 0.05,
) -> str:
    """Plain-language verdict of one operating point.

    Dispersion phrases follow the sign of the effects of the rejected ``cv``, ``fano`` and
    ``allan`` tests. A rejected dependence test (``ljung_box``, ``dfa``) reads "serially
    dependent", a rejected uniformity test "non-stationary rate" and a rejected spectral test
    "periodic component", only if the statistic also differs from shuffled intervals
    (``shuffle_p < alpha``) or no surrogates were run; otherwise the phrase says the departure
    is reproduced by shuffled intervals, i.e. explained by the interval distribution (a renewal
    process) rather than by dependence.

    Parameters
    ----------
    rejected : mapping
        Test name -> rejected after multiple-testing correction.
    effects : mapping
        Test name -> effect size (sign decides over- vs under-dispersion).
    n_events : int
        Events of the operating point.
    min_events : int
        Fewest events for a verdict.
    peak_hz, target_peak_hz : float
        Frequencies of the spectral peaks [Hz].
    shuffle_p : mapping, optional
        Test name -> shuffle-surrogate p-value (:mod:`asiclab.heartbeat.surrogates`).
    alpha : float
        Level for the surrogate confirmation.

    Returns
    -------
    str
        E.g. ``"consistent with Poisson"``, ``"over-dispersed (non-Poisson)"``,
        ``"under-dispersed (non-Poisson); serially dependent"``,
        ``"insufficient data (N<100)"``.
    """
    if n_events < min_events:
        return f"insufficient data (N<{min_events})"

    def beyond_law(test: str) -> bool:
        if shuffle_p is None:
            return True
        p = shuffle_p.get(test, float("nan"))
        return not np.isfinite(p) or p < alpha

    parts: list[str] = []
    disp = [effects[t] for t in ("cv", "fano", "allan") if rejected.get(t)]
    if disp:
        if any(e > 0 for e in disp):
            parts.append("over-dispersed (non-Poisson)")
        if any(e <= 0 for e in disp):
            parts.append("under-dispersed (non-Poisson)")
    elif rejected.get("lilliefors_exp") or rejected.get("anderson_exp"):
        parts.append("non-exponential intervals (non-Poisson)")
    dep = [t for t in ("ljung_box", "dfa") if rejected.get(t)]
    if dep:
        if any(beyond_law(t) for t in dep):
            parts.append("serially dependent")
        else:
            parts.append("dependence test rejects, reproduced by shuffled intervals")
    if rejected.get("uniformity_ks"):
        if beyond_law("uniformity_ks"):
            parts.append("non-stationary rate")
        else:
            parts.append("uniformity test rejects, reproduced by shuffled intervals")
    spec = [t for t in ("spectral_target", "spectral_max") if rejected.get(t)]
    if spec:
        f = target_peak_hz if spec[0] == "spectral_target" else peak_hz
        if any(beyond_law(t) for t in spec):
            parts.append(f"periodic component near {f:.3g} Hz")
        else:
            parts.append(f"non-flat spectrum near {f:.3g} Hz, reproduced by shuffled intervals")
    return "; ".join(parts) if parts else "consistent with Poisson"
