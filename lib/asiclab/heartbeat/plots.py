"""Figures of the Silicon-Heartbeat analysis (one call per figure in the notebook).

Every function returns a :class:`matplotlib.figure.Figure` with labelled axes (units in
brackets) in the suite's style (:func:`asiclab.plotting.new_figure`); save it with
:func:`asiclab.plotting.savefig` after :func:`asiclab.plotting.label_source`.

The papers' own regime table (which voltages they called "edge") is not reproduced here: we do
not have it in a citable form, so :func:`plot_cv_vs_voltage` shows our table only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from scipy import stats

from asiclab import plotting
from asiclab.heartbeat import power as hp
from asiclab.heartbeat._errors import HeartbeatInputError
from asiclab.heartbeat.deadtime import DeadTimeFit
from asiclab.heartbeat.paper import PAPER_WINDOW, windowed_cv
from asiclab.heartbeat.report import HeartbeatReport
from asiclab.heartbeat.spectral import telemetry_spectrum
from asiclab.heartbeat.stats import autocorrelation

__all__ = [
    "plot_acf",
    "plot_counting_curves",
    "plot_cv_vs_voltage",
    "plot_dfa",
    "plot_hazard",
    "plot_paper_windowed_cv",
    "plot_power_curves",
    "plot_qq_exponential",
    "plot_spectrum",
    "plot_telemetry_spectrum",
]


def _rows(df: pd.DataFrame, device: int, op: int, what: str) -> pd.DataFrame:
    if not len(df):
        raise HeartbeatInputError(f"report has no {what} (too few events?)")
    sel = df[(df["device"] == device) & (df["op"] == op)]
    if not len(sel):
        raise HeartbeatInputError(f"report has no {what} for device {device}, op {op}")
    return sel


def plot_cv_vs_voltage(report: HeartbeatReport, *, conf: float = 0.95) -> Figure:
    """CV of the intervals against set core voltage, with CIs and the Poisson band.

    Error bars are the CV confidence intervals of the report; the grey bar behind each point is
    the central ``conf`` range of the CV of a Poisson process with the same number of events
    (``1 +/- z / sqrt(n)``). Filled markers: consistent with Poisson after correction; open
    markers: the battery rejects. Operating points without a voltage are placed by op index.

    Parameters
    ----------
    report : HeartbeatReport
        From :func:`asiclab.heartbeat.analyze_capture`.
    conf : float
        Coverage of the Poisson band.

    Returns
    -------
    matplotlib.figure.Figure
    """
    s = report.summary
    fig, ax = plotting.new_figure(layout="constrained", figsize=(6.4, 4.0))
    use_v = bool(np.isfinite(s["voltage_mV"]).any())
    x_all = s["voltage_mV"].to_numpy(float) if use_v else s["op"].to_numpy(float)
    z = stats.norm.ppf(0.5 + conf / 2)
    for d, g in s.groupby("device"):
        x = x_all[g.index]
        ok = np.isfinite(g["cv"].to_numpy(float))
        band = z / np.sqrt(np.maximum(g["n_events"].to_numpy(float) - 1, 1))
        ax.errorbar(x, np.ones_like(x), yerr=band, fmt="none", ecolor="0.8", elinewidth=6,
                    zorder=1)
        cons = (g["verdict"] == "consistent with Poisson").to_numpy()
        err = np.vstack([g["cv"] - g["cv_lo"], g["cv_hi"] - g["cv"]]).astype(float)
        line = ax.errorbar(x[ok], g["cv"].to_numpy(float)[ok], yerr=err[:, ok], fmt="none",
                           capsize=3, zorder=2)
        col = line[2][0].get_color() if line[2] else None
        ax.scatter(x[ok & cons], g["cv"][ok & cons], color=col, zorder=3,
                   label=f"device {d}: consistent with Poisson")
        ax.scatter(x[ok & ~cons], g["cv"][ok & ~cons], facecolors="none", edgecolors=col,
                   zorder=3, label=f"device {d}: battery rejects")
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xlabel("set core voltage [mV]" if use_v else "operating point index [1]")
    ax.set_ylabel("CV of inter-arrival times [1]")
    ax.set_title(f"CV with {conf:.0%} CI; grey: Poisson {conf:.0%} range at the same N")
    ax.legend(fontsize=8)
    return fig


def plot_counting_curves(report: HeartbeatReport, device: int, op: int) -> Figure:
    """Fano and Allan factors against window size with pointwise Poisson bands.

    Parameters
    ----------
    report : HeartbeatReport
        Analysis report.
    device, op : int
        Share train.

    Returns
    -------
    matplotlib.figure.Figure
    """
    c = _rows(report.curves, device, op, "counting curves")
    fig, axes = plotting.new_figure(1, 2, layout="constrained", figsize=(9.0, 3.8), sharex=True)
    for ax, name, label in ((axes[0], "fano", "Fano factor"), (axes[1], "allan", "Allan factor")):
        ax.fill_between(c["window_s"], c[f"{name}_lo"], c[f"{name}_hi"], color="0.85",
                        label="Poisson 95 % band (pointwise)")
        ax.plot(c["window_s"], c[name], "o-", ms=3, label="data")
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("counting window [s]")
        ax.set_ylabel(f"{label} [1]")
        ax.legend(fontsize=8)
    fig.suptitle(f"Counting statistics, device {device}, op {op}")
    return fig


def plot_hazard(hazard: pd.DataFrame, fit: DeadTimeFit | None = None, *,
                job_gaps: pd.DataFrame | None = None) -> Figure:
    """Hazard (conditional rate against time since the last share) with its Poisson band.

    Parameters
    ----------
    hazard : pandas.DataFrame
        From :func:`asiclab.heartbeat.deadtime.hazard_function`.
    fit : DeadTimeFit, optional
        Fitted dead-time renewal model, drawn as a step.
    job_gaps : pandas.DataFrame, optional
        From :func:`asiclab.heartbeat.deadtime.job_gap_table`: printed in the legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not len(hazard):
        raise HeartbeatInputError("empty hazard table")
    fig, ax = plotting.new_figure(layout="constrained", figsize=(7.0, 4.0))
    mid_ms = 500.0 * (hazard["t_lo_s"] + hazard["t_hi_s"])
    edges_ms = np.append(1e3 * hazard["t_lo_s"].to_numpy(), 1e3 * hazard["t_hi_s"].iloc[-1])
    ax.stairs(hazard["poisson_hi_hz"], edges_ms, baseline=hazard["poisson_lo_hz"], fill=True,
              color="0.85", label="Poisson 95 % band (pointwise, same exposure)")
    ax.axhline(float(hazard["poisson_hz"].iloc[0]), color="k", lw=0.8, ls="--",
               label="Poisson: the train's mean rate")
    ax.errorbar(mid_ms, hazard["hazard_hz"],
                yerr=[hazard["hazard_hz"] - hazard["lo_hz"], hazard["hi_hz"] - hazard["hazard_hz"]],
                fmt="o", ms=3, lw=0.8, label="data (95 % Garwood CI)")
    if "new_job_hazard_hz" in hazard.columns:
        ax.plot(mid_ms, hazard["new_job_hazard_hz"], "s-", ms=3, lw=0.8, color="C2",
                label="next share of a new job (cause-specific)")
        ax.plot(mid_ms, hazard["same_job_hazard_hz"], "^-", ms=3, lw=0.8, color="C1",
                label="next share of the same job (cause-specific)")
    if fit is not None:
        t = np.linspace(0.0, edges_ms[-1], 400)
        ax.plot(t, fit.hazard_at(t * 1e-3), color="C3", lw=1.5,
                label=f"dead-time fit: d = {1e3 * fit.dead_time_s:.0f} ms "
                      f"(fit p = {fit.p_fit:.2g})")
    if job_gaps is not None and len(job_gaps):
        for r in job_gaps.itertuples():
            ax.plot([], [], " ", label=f"{r.gaps}: {r.n_gaps} gaps, median {r.median_ms:.0f} ms")
    ax.set_xlabel("time since the last share [ms]")
    ax.set_ylabel("hazard (conditional rate) [1/s]")
    ax.set_ylim(bottom=0.0)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Hazard function of the share train")
    return fig


def plot_qq_exponential(intervals: ArrayLike, *, max_points: int = 4000,
                        conf: float = 0.95) -> Figure:
    """QQ plot of the intervals against the exponential with the same mean.

    The band is pointwise: the ``conf`` range of each order statistic of an exponential sample
    (``U_(i) ~ Beta(i, n - i + 1)``), scaled by the sample mean. At most ``max_points`` order
    statistics are drawn (evenly spaced in probability).

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s].
    max_points : int
        Points drawn.
    conf : float
        Band coverage.

    Returns
    -------
    matplotlib.figure.Figure
    """
    x = np.sort(np.asarray(intervals, dtype=np.float64))
    n = x.size
    if n < 3:
        raise HeartbeatInputError("need at least 3 intervals")
    i = np.unique(np.round(np.linspace(1, n, min(n, max_points))).astype(np.int64))
    m = x.mean()
    q = -np.log1p(-(i - 0.5) / n) * m
    a = (1 - conf) / 2
    lo = -np.log1p(-stats.beta.ppf(a, i, n - i + 1)) * m
    hi = -np.log1p(-stats.beta.ppf(1 - a, i, n - i + 1)) * m
    fig, ax = plotting.new_figure(layout="constrained", figsize=(4.8, 4.6))
    ax.fill_between(q, lo, hi, color="0.85", label=f"exponential {conf:.0%} band")
    ax.plot(q, x[i - 1], ".", ms=3, label="data")
    ax.plot(q, q, "k--", lw=0.8)
    ax.set_xlabel("exponential quantile (same mean) [s]")
    ax.set_ylabel("observed interval [s]")
    ax.legend(fontsize=8)
    return fig


def plot_acf(intervals: ArrayLike, nlags: int = 50, conf: float = 0.95) -> Figure:
    """Autocorrelation of the intervals with the iid band ``+/- z / sqrt(n)``.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s].
    nlags : int
        Largest lag [intervals].
    conf : float
        Band coverage.

    Returns
    -------
    matplotlib.figure.Figure
    """
    x = np.asarray(intervals, dtype=np.float64)
    nlags = int(min(nlags, x.size - 2))
    r = autocorrelation(x, nlags)
    b = stats.norm.ppf(0.5 + conf / 2) / np.sqrt(x.size)
    fig, ax = plotting.new_figure(layout="constrained", figsize=(6.4, 3.6))
    lags = np.arange(1, nlags + 1)
    ax.axhspan(-b, b, color="0.85", label=f"iid {conf:.0%} band")
    ax.vlines(lags, 0, r[1:])
    ax.plot(lags, r[1:], "o", ms=3)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("lag [intervals]")
    ax.set_ylabel("autocorrelation of intervals [1]")
    ax.legend(fontsize=8)
    return fig


def plot_spectrum(report: HeartbeatReport, device: int, op: int) -> Figure:
    """Count-series periodogram (Poisson level = 1) with its band and the 2.4 Hz target.

    The shaded band is pointwise (per plotted value, averaged over ``n_avg`` Fourier
    frequencies when the spectrum was decimated); the dashed line is the max-over-band
    threshold of the ``spectral_max`` test (single Fourier frequencies).

    Parameters
    ----------
    report : HeartbeatReport
        Analysis report.
    device, op : int
        Share train.

    Returns
    -------
    matplotlib.figure.Figure
    """
    sp = _rows(report.spectra, device, op, "spectrum")
    row = _rows(report.summary, device, op, "summary").iloc[0]
    target = float(report.params.get("target_hz", 2.4))
    fig, ax = plotting.new_figure(layout="constrained", figsize=(7.0, 3.8))
    ax.fill_between(sp["freq_hz"], sp["lo"], sp["hi"], color="0.85",
                    label="Poisson 95 % band (pointwise)")
    ax.plot(sp["freq_hz"], sp["power"], lw=0.6, label="data")
    if np.isfinite(row.get("spectral_threshold", np.nan)):
        ax.axhline(row["spectral_threshold"], color="C3", ls="--", lw=0.8,
                   label="max-over-band 95 % threshold")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axvline(target, color="C2", ls=":", label=f"claimed heartbeat {target:g} Hz")
    ax.set_xlabel("frequency [Hz]")
    ax.set_ylabel("periodogram / Poisson level [1]")
    ax.set_title(f"Share-arrival spectrum, device {device}, op {op}")
    ax.legend(fontsize=8)
    return fig


def plot_dfa(report: HeartbeatReport, device: int, op: int) -> Figure:
    """DFA fluctuation function with its fit and the slope-0.5 (uncorrelated) reference.

    Parameters
    ----------
    report : HeartbeatReport
        Analysis report.
    device, op : int
        Share train.

    Returns
    -------
    matplotlib.figure.Figure
    """
    d = _rows(report.dfa, device, op, "DFA")
    row = _rows(report.summary, device, op, "summary").iloc[0]
    s = d["scale"].to_numpy(float)
    fig, ax = plotting.new_figure(layout="constrained", figsize=(4.8, 4.2))
    ax.loglog(s, d["fluctuation"], "o", ms=4, label="F(s)")
    ax.loglog(s, d["fit"], "-", label=f"fit, alpha = {row['dfa_alpha']:.3f}")
    ref = d["fluctuation"].iloc[0] * (s / s[0]) ** 0.5
    ax.loglog(s, ref, "k--", lw=0.8, label="slope 0.5 (uncorrelated)")
    ax.set_xlabel("window size s [intervals]")
    ax.set_ylabel("fluctuation F(s) [s]")
    ax.legend(fontsize=8)
    return fig


def plot_power_curves(
    *,
    rate: float = 10.0,
    alpha: float = 0.05,
    power: float = 0.9,
    freq_hz: float = 2.4,
    paper_n: tuple[int, ...] = (10, 1000),
    n_events: ArrayLike | None = None,
) -> Figure:
    """How many events the paper would have needed: smallest detectable effects against N.

    Left: smallest CV departure ``|CV - 1|`` detected with probability ``power`` at level
    ``alpha`` (gamma renewal alternative). Right: smallest sinusoidal rate-modulation depth at
    ``freq_hz`` (asymptotic formulas of :mod:`asiclab.heartbeat.power`). Vertical lines mark
    the papers' window of ~10 shares and their ~1,000 shares per operating point.

    Parameters
    ----------
    rate : float
        Share rate [1/s] (sets the record span for the spectral test).
    alpha : float
        Level.
    power : float
        Required power.
    freq_hz : float
        Modulation frequency [Hz].
    paper_n : tuple of int
        Record lengths to mark [events].
    n_events : array_like, optional
        Grid of record lengths [events].

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = np.unique(np.round(np.geomspace(10, 1e6, 40))) if n_events is None else np.asarray(
        n_events, dtype=float)
    t = hp.power_curve_table(n, rate=rate, alpha=alpha, power=power, freq_hz=freq_hz)
    fig, axes = plotting.new_figure(1, 2, layout="constrained", figsize=(9.5, 3.8))
    ax = axes[0]
    ax.loglog(t["n_events"], t["cv_high"] - 1, label="CV above 1")
    ax.loglog(t["n_events"], 1 - t["cv_low"], "--", label="CV below 1")
    ax.set_xlabel("events per operating point [1]")
    ax.set_ylabel("smallest detectable |CV - 1| [1]")
    ax = axes[1]
    ax.loglog(t["n_events"], t["depth"], label=f"{freq_hz:g} Hz, rate {rate:g}/s")
    ax.set_xlabel("events per operating point [1]")
    ax.set_ylabel("smallest detectable modulation depth [1]")
    for ax in axes:
        for k in paper_n:
            ax.axvline(k, color="0.5", ls=":", lw=0.8)
            ax.text(k, ax.get_ylim()[1], f" N={k}", rotation=90, va="top", fontsize=7)
        ax.legend(fontsize=8)
    fig.suptitle(f"Power {power:.0%} at alpha = {alpha:g}: how many events the paper needed")
    return fig


def plot_paper_windowed_cv(intervals: ArrayLike, window: int = PAPER_WINDOW) -> Figure:
    """Histogram of the papers' windowed CV against the same for a Poisson process.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s].
    window : int
        Window [intervals].

    Returns
    -------
    matplotlib.figure.Figure
    """
    cv = windowed_cv(intervals, window)
    rng = np.random.default_rng(20_240_919)
    null = windowed_cv(rng.standard_exponential(window * 100_000), window)
    fig, ax = plotting.new_figure(layout="constrained", figsize=(6.0, 3.8))
    bins = np.linspace(0, max(3.0, float(np.nanmax(cv))), 61)
    ax.hist(null, bins=bins, density=True, color="0.8", label="Poisson (simulated)")
    ax.hist(cv, bins=bins, density=True, histtype="step", lw=1.5, label="data")
    ax.axvline(1.0, color="k", ls="--", lw=0.8)
    ax.set_xlabel(f"CV over windows of {window} intervals [1]")
    ax.set_ylabel("probability density [1]")
    ax.set_title("The papers' windowed CV: 'excursions' are what Poisson does")
    ax.legend(fontsize=8)
    return fig


def plot_telemetry_spectrum(t_s: ArrayLike, power_w: ArrayLike, *,
                            target_hz: float = 2.4) -> Figure:
    """Spectrum of telemetry power with its Nyquist limit; says whether ``target_hz`` is visible.

    Parameters
    ----------
    t_s : array_like
        Sample times [s].
    power_w : array_like
        Power samples [W].
    target_hz : float
        Frequency of interest [Hz].

    Returns
    -------
    matplotlib.figure.Figure
    """
    ts = telemetry_spectrum(t_s, power_w, target_hz=target_hz)
    fig, ax = plotting.new_figure(layout="constrained", figsize=(6.4, 3.8))
    ax.plot(ts.freqs, ts.power, lw=0.8)
    ax.axvline(ts.nyquist_hz, color="C3", ls="--", label=f"Nyquist {ts.nyquist_hz:.3g} Hz")
    if ts.target_observable:
        ax.axvline(target_hz, color="C2", ls=":", label=f"{target_hz:g} Hz")
    ax.set_xlabel("frequency [Hz]")
    ax.set_ylabel("power periodogram / mean [1]")
    ax.set_title("\n".join([ts.note[i:i + 80] for i in range(0, min(len(ts.note), 160), 80)]),
                 fontsize=8)
    ax.legend(fontsize=8)
    return fig
