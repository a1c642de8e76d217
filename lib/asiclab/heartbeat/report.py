"""Dataset wrappers: select share trains per device and operating point, run the analysis.

The functions here are thin: they pull the event times of each ``(device, op)`` out of a capture
(:mod:`asiclab.dataset` schema, numpy- or dask-backed) and hand plain arrays to the pure
functions of :mod:`asiclab.heartbeat`. :func:`analyze_capture` returns a
:class:`HeartbeatReport` of tidy pandas tables, one call per table or figure in the notebook.

Selection rule: an event belongs to the share train of ``(device_index, op_index)`` when
``valid`` is true and its time is known (``t_host_ns >= 0``); trains are sorted by time and
intervals are differences of the integer nanosecond times. Events outside any operating point
(``op_index == -1``) form the train ``(device, -1)`` of a device with no assigned events (e.g.
an imported share log), see ``unassigned``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from tqdm.auto import tqdm

from asiclab.dataset import op_event_times, train_sizes
from asiclab.heartbeat import nulls, spectral
from asiclab.heartbeat import stats as hs
from asiclab.heartbeat._errors import (
    HeartbeatInputError,
    InsufficientDataError,
)
from asiclab.heartbeat.battery import (
    TESTS,
    BatteryConfig,
    adjust_pvalues,
    grid_nyquist_hz,
    prepare_intervals,
    run_battery,
    spectral_bands,
    verdict,
)
from asiclab.heartbeat.paper import paper_metrics_table
from asiclab.heartbeat.surrogates import surrogate_comparison

FloatArray = NDArray[np.float64]
Key = tuple[int, int]

__all__ = [
    "HeartbeatReport",
    "analyze_capture",
    "analyze_intervals",
    "analyze_times",
]


def _op_meta(ds: xr.Dataset, op: int) -> tuple[float, float]:
    if op < 0 or "op_voltage_set" not in ds.variables or op >= ds.sizes.get("op", 0):
        return float("nan"), float("nan")
    v = float(ds["op_voltage_set"].isel(op=op).values)
    f = (
        float(ds["op_frequency_set"].isel(op=op).values)
        if "op_frequency_set" in ds.variables
        else float("nan")
    )
    return v, f


# --------------------------------------------------------------------------------------------
# the report


@dataclass
class HeartbeatReport:
    """Everything the Silicon-Heartbeat notebook shows, as tidy tables.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per ``(device, op)``: operating point, ``n_events``, ``span_s``, rate with exact
        CI [1/s], CV with CI, Fano and Allan factors (battery windows), lag-1 autocorrelation
        with CI, DFA exponent with CI, spectral peak, number of rejected tests and ``verdict``.
    tests : pandas.DataFrame
        One row per ``(device, op, test)``: statistic, effect, raw and adjusted p-value,
        rejection, null distribution used.
    curves : pandas.DataFrame
        Fano and Allan factors against window size [s] with pointwise Poisson bands.
    spectra : pandas.DataFrame
        Count-series periodogram (units of the Poisson level) against frequency [Hz], with
        ``n_avg`` (values averaged per row when decimated) and pointwise band.
    dfa : pandas.DataFrame
        DFA fluctuation function ``F(s)`` [s] against scale [intervals] and the fitted line.
    paper : pandas.DataFrame
        The papers' windowed metrics beside their Poisson values.
    surrogates : pandas.DataFrame
        Shuffle / block-shuffle comparison of the dependence statistics.
    telemetry : pandas.DataFrame
        Telemetry power spectrum summary per ``(device, op)`` (Nyquist, observability note).
    intervals : dict
        ``{(device, op): intervals [s]}`` (for QQ and ACF plots).
    params : dict
        Parameters of the analysis (alpha, correction, battery config, seeds).
    notes : list of str
        Plain-language caveats collected during the analysis.
    """

    summary: pd.DataFrame
    tests: pd.DataFrame
    curves: pd.DataFrame
    spectra: pd.DataFrame
    dfa: pd.DataFrame
    paper: pd.DataFrame
    surrogates: pd.DataFrame
    telemetry: pd.DataFrame
    intervals: dict[Key, FloatArray] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """Compact per-operating-point table for display."""
        cols = [
            "device", "op", "voltage_mV", "frequency_MHz", "n_events", "rate_hz", "rate_lo",
            "rate_hi", "cv", "cv_lo", "cv_hi", "fano", "r1", "dfa_alpha", "n_rejected",
            "verdict",
        ]
        return self.summary[[c for c in cols if c in self.summary.columns]]

    def record(self, prefix: str = "heartbeat") -> list[dict[str, Any]]:
        """Record the key results with :func:`asiclab.results.record` (one call per notebook).

        Per share train: the CV with its confidence interval and the verdict, the rate with its
        exact interval, and the number of rejected tests; names are
        ``{prefix}_d{device}_op{op}_{cv|rate|rejected}``.

        Parameters
        ----------
        prefix : str
            Name prefix.

        Returns
        -------
        list of dict
            The stored entries.
        """
        from asiclab import results

        out = []
        conf = "95 %"
        for r in self.summary.itertuples():
            base = f"{prefix}_d{int(r.device)}_op{int(r.op)}"
            note = (f"N={int(r.n_events)} events; V={r.voltage_mV} mV; source "
                    f"{self.params.get('source_kind', 'none')}")
            if np.isfinite(r.cv):
                out.append(results.record(
                    f"{base}_cv", float(r.cv), "1", (float(r.cv_lo), float(r.cv_hi)),
                    note=f"CV of inter-arrival times, {conf} {r.cv_ci_method} CI; {note}",
                    verdict=str(r.verdict)))
            if np.isfinite(r.rate_hz):
                out.append(results.record(
                    f"{base}_rate", float(r.rate_hz), "1/s", (float(r.rate_lo),
                                                             float(r.rate_hi)),
                    note=f"share rate, exact gamma {conf} CI; {note}"))
            if "n_rejected" in self.summary.columns:
                out.append(results.record(
                    f"{base}_rejected", int(r.n_rejected), "1",
                    note=f"battery tests rejected after {self.params.get('correction')} "
                         f"correction at alpha={self.params.get('alpha')}; {note}",
                    verdict=str(r.verdict)))
        return out

    def verdicts(self) -> dict[Key, str]:
        """``{(device, op): verdict}``."""
        return {
            (int(r.device), int(r.op)): str(r.verdict) for r in self.summary.itertuples()
        }

    def to_xarray(self) -> xr.Dataset:
        """The summary as an :class:`xarray.Dataset` with dimension ``row``."""
        ds = xr.Dataset.from_dataframe(self.summary.reset_index(drop=True).rename_axis("row"))
        ds.attrs["heartbeat_params"] = json.dumps(self.params, default=str)
        return ds


_CURVE_COLS = ["device", "op", "window_s", "n_windows", "mean_count", "fano", "fano_lo",
               "fano_hi", "allan", "allan_lo", "allan_hi"]
_SPEC_COLS = ["device", "op", "freq_hz", "power", "n_avg", "lo", "hi"]


def _decimate_spectrum(f: FloatArray, p: FloatArray, max_points: int) -> tuple[FloatArray, ...]:
    n = f.size
    if n <= max_points:
        return f, p, np.ones(n)
    b = int(np.ceil(n / max_points))
    m = (n // b) * b
    ff = f[:m].reshape(-1, b).mean(axis=1)
    pp = p[:m].reshape(-1, b).mean(axis=1)
    return ff, pp, np.full(ff.size, float(b))


def analyze_intervals(
    intervals: ArrayLike,
    *,
    device: int = 0,
    op: int = -1,
    voltage_mV: float = float("nan"),
    frequency_MHz: float = float("nan"),
    config: BatteryConfig | None = None,
    min_events: int = 100,
    conf: float = 0.95,
    surrogates: bool = True,
    n_surrogates: int = 199,
    seed: int = 0,
    max_spectrum_points: int = 20_000,
) -> dict[str, Any]:
    """All per-train quantities of one share train (no multiple-testing step).

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], 1-D, in time order.
    device, op : int
        Labels of the train.
    voltage_mV, frequency_MHz : float
        Operating point [mV], [MHz].
    config : BatteryConfig, optional
        Battery parameters.
    min_events : int
        Fewest events for the battery (fewer: descriptive statistics only).
    conf : float
        Confidence level of the intervals.
    surrogates : bool
        Run the surrogate comparison.
    n_surrogates : int
        Surrogates of each kind.
    seed : int
        Seed of bootstrap and surrogates.
    max_spectrum_points : int
        The stored spectrum is averaged down to at most this many points.

    Returns
    -------
    dict
        ``row`` (summary dict), ``tests``, ``curves``, ``spectra``, ``dfa``, ``paper``,
        ``surrogates`` (DataFrames) and ``intervals``.
    """
    cfg = BatteryConfig() if config is None else config
    x = np.asarray(intervals, dtype=np.float64)
    if x.ndim != 1:
        raise HeartbeatInputError("intervals must be 1-D")
    n_ev = x.size + 1
    lab = {"device": device, "op": op}
    row: dict[str, Any] = {**lab, "voltage_mV": voltage_mV, "frequency_MHz": frequency_MHz,
                           "n_events": n_ev, "span_s": float(x.sum()) if x.size else 0.0}
    empty = pd.DataFrame()
    out: dict[str, Any] = {"row": row, "tests": empty, "curves": empty, "spectra": empty,
                           "dfa": empty, "paper": empty, "surrogates": empty, "intervals": x}
    nan = float("nan")
    for k in ("rate_hz", "rate_lo", "rate_hi", "cv", "cv_lo", "cv_hi", "fano", "fano_lo",
              "fano_hi", "allan", "r1", "r1_lo", "r1_hi", "dfa_alpha", "dfa_lo", "dfa_hi",
              "peak_hz", "peak_power", "target_peak_hz", "target_power", "target_depth",
              "spectral_threshold"):
        row[k] = nan
    row["cv_ci_method"] = ""
    row["n_ties"] = int(np.sum(x == 0))
    row["resolution_s"] = float(hs.timestamp_resolution(x)) if x.size else 0.0
    row["dequantised"] = False
    if x.size >= 1 and row["span_s"] > 0:
        row["rate_hz"], row["rate_lo"], row["rate_hi"] = hs.rate_confidence_interval(
            x.size, row["span_s"], conf
        )
    if x.size >= 3:
        row["cv"], row["cv_lo"], row["cv_hi"], row["cv_ci_method"] = hs.cv_confidence_interval(
            x, conf, seed=seed
        )
    if n_ev < min_events:
        return out

    res = run_battery(x, cfg, resolution=row["resolution_s"], seed=seed)
    row["dequantised"] = bool(res.dequantised)
    # the train as the battery tested it (events redrawn inside their timestamp cells)
    xt = prepare_intervals(x, row["resolution_s"], seed=seed)[0]
    tests = []
    for j, spec in enumerate(TESTS):
        tests.append({**lab, "test": spec.name, "family": spec.family,
                      "statistic": res.statistic[0, j], "effect": res.effect[0, j],
                      "effect_name": spec.effect_name, "p_value": res.pvalue[0, j],
                      "alternative": spec.alternative, "null": spec.null,
                      "n_intervals": x.size})
    out["tests"] = pd.DataFrame(tests)
    eff = dict(zip([t.name for t in TESTS], res.effect[0], strict=True))
    stat = dict(zip([t.name for t in TESTS], res.statistic[0], strict=True))
    z = stats.norm.ppf(0.5 + conf / 2)

    # Fano factor at the battery window, with an approximate chi-square pivot interval
    if np.isfinite(stat["fano"]):
        k = max(10, round(x.size / cfg.fano_window))
        row["fano"] = stat["fano"]
        row["fano_lo"] = stat["fano"] * (k - 1) / stats.chi2.ppf(0.5 + conf / 2, k - 1)
        row["fano_hi"] = stat["fano"] * (k - 1) / stats.chi2.ppf(0.5 - conf / 2, k - 1)
    row["allan"] = stat["allan"]
    row["r1"] = eff["ljung_box"]
    row["r1_lo"], row["r1_hi"] = hs.lag1_confidence_interval(eff["ljung_box"], x.size, conf)
    row["peak_hz"] = float(res.peak_hz[0])
    row["peak_power"] = stat["spectral_max"]
    row["target_power"] = stat["spectral_target"]
    row["target_peak_hz"] = float(res.target_peak_hz[0])
    row["target_depth"] = eff["spectral_target"]

    # DFA: exponent, approximate CI from the null spread, and the F(s) curve
    if np.isfinite(stat["dfa"]) and res.dfa is not None:
        d = res.dfa
        alpha = float(np.ravel(d.alpha)[0])
        icpt = float(np.ravel(d.intercept)[0])
        _, _, sd0 = nulls.dfa_pvalue(alpha, x.size)
        row["dfa_alpha"] = alpha
        row["dfa_lo"], row["dfa_hi"] = alpha - z * sd0, alpha + z * sd0
        out["dfa"] = pd.DataFrame({
            **lab, "scale": d.scales, "fluctuation": np.atleast_2d(d.fluctuation)[0],
            "fit": 10 ** (icpt + alpha * np.log10(d.scales)),
        })

    # counting curves
    try:
        cur = hs.counting_curves(xt)
        out["curves"] = pd.DataFrame({**lab, **cur})[_CURVE_COLS]
    except InsufficientDataError:
        pass

    # spectrum of the count series for display, below the timestamp grid's Nyquist frequency
    f_hi = max(cfg.band_hz[1], cfg.target_hz + cfg.target_halfwidth_hz)
    f_hi = min(f_hi, grid_nyquist_hz(row["resolution_s"]) * (1 - 1e-9))
    band_max = spectral_bands(cfg, row["resolution_s"])["spectral_max"]
    pg = spectral.count_periodogram(xt, f_hi, oversample=cfg.oversample)
    f = pg.freqs(0)
    ff, pp, na = _decimate_spectrum(f, pg.power[0], max_spectrum_points)
    a = (1 - conf) / 2
    out["spectra"] = pd.DataFrame({
        **lab, "freq_hz": ff, "power": pp, "n_avg": na,
        "lo": spectral.gamma_band(na, a), "hi": spectral.gamma_band(na, 1 - a),
    })
    m_band = (int(np.sum((f >= band_max[0]) & (f <= band_max[1]))) if band_max is not None
              else 0)
    if m_band:
        row["spectral_threshold"] = float(-np.log(-np.expm1(np.log1p(-(1 - conf)) / m_band)))

    # the papers' metrics and surrogates
    try:
        pt = paper_metrics_table(x)
        out["paper"] = pd.concat([pd.DataFrame([lab] * len(pt)), pt], axis=1)
    except InsufficientDataError:
        pass
    if surrogates:
        sg = surrogate_comparison(x, n_surrogates=n_surrogates, seed=seed, config=cfg)
        out["surrogates"] = pd.concat([pd.DataFrame([lab] * len(sg)), sg], axis=1)
    return out


def _telemetry_rows(ds: xr.Dataset, target_hz: float) -> pd.DataFrame:
    need = ("tel_t_host_ns", "tel_device_index", "tel_op_index", "power")
    if any(v not in ds.variables for v in need) or ds.sizes.get("sample", 0) == 0:
        return pd.DataFrame()
    t = np.asarray(ds["tel_t_host_ns"].values, dtype=np.int64)
    dv = np.asarray(ds["tel_device_index"].values, dtype=np.int64)
    ov = np.asarray(ds["tel_op_index"].values, dtype=np.int64)
    pw = np.asarray(ds["power"].values, dtype=np.float64)
    rows = []
    for d, o in sorted(set(zip(dv.tolist(), ov.tolist(), strict=True))):
        m = (dv == d) & (ov == o) & (t >= 0) & np.isfinite(pw)
        row: dict[str, Any] = {"device": d, "op": o, "n_samples": int(m.sum())}
        try:
            ts = spectral.telemetry_spectrum((t[m] - t[m].min()) * 1e-9, pw[m], target_hz=target_hz)
        except (InsufficientDataError, HeartbeatInputError) as e:
            row["note"] = f"not analysed: {e}"
            rows.append(row)
            continue
        row.update({
            "median_dt_s": ts.median_dt_s, "nyquist_hz": ts.nyquist_hz,
            "peak_freq_hz": ts.peak_freq_hz, "peak_power": ts.peak_power,
            "peak_p_value": ts.peak_pvalue, "target_hz": ts.target_hz,
            "target_observable": ts.target_observable, "alias_hz": ts.alias_hz, "note": ts.note,
        })
        rows.append(row)
    return pd.DataFrame(rows)


def _finish(
    parts: list[dict[str, Any]],
    *,
    alpha: float,
    correction: str,
    min_events: int,
    params: dict[str, Any],
    telemetry: pd.DataFrame,
    notes: list[str],
) -> HeartbeatReport:
    def cat(key: str) -> pd.DataFrame:
        frames = [p[key] for p in parts if len(p[key])]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    tests = cat("tests")
    summary = pd.DataFrame([p["row"] for p in parts])
    if len(tests):
        tests["p_adjusted"], tests["reject"] = adjust_pvalues(
            tests["p_value"].to_numpy(), method=correction, alpha=alpha
        )
    verdicts, n_rej = [], []
    for p in parts:
        r = p["row"]
        if len(tests):
            sel = tests[(tests.device == r["device"]) & (tests.op == r["op"])]
        else:
            sel = tests
        rej = dict(zip(sel.get("test", []), sel.get("reject", []), strict=True))
        eff = dict(zip(sel.get("test", []), sel.get("effect", []), strict=True))
        sg = p["surrogates"]
        shuffle_p = (dict(zip(sg["statistic"], sg["p_shuffle"], strict=True)) if len(sg)
                     else None)
        n_rej.append(int(sum(bool(v) for v in rej.values())))
        verdicts.append(verdict(rej, eff, n_events=int(r["n_events"]), min_events=min_events,
                                peak_hz=r["peak_hz"], target_peak_hz=r["target_peak_hz"],
                                shuffle_p=shuffle_p, alpha=alpha))
    if len(summary):
        summary["n_rejected"] = n_rej
        summary["verdict"] = verdicts
    notes = list(notes)
    for p in parts:
        r = p["row"]
        if r.get("dequantised"):
            d = float(r["resolution_s"])
            notes.append(
                f"device {r['device']}, op {r['op']}: timestamps quantised to {d:.6g} s "
                f"({r['n_ties']} ties); the battery ran on the train with each event redrawn "
                "uniformly inside its timestamp cell (exact under the Poisson null); frequencies "
                f"at or above {grid_nyquist_hz(d):.6g} Hz are aliases of the timestamp grid and "
                "were not tested.")
    return HeartbeatReport(
        summary=summary, tests=tests, curves=cat("curves"), spectra=cat("spectra"),
        dfa=cat("dfa"), paper=cat("paper"), surrogates=cat("surrogates"), telemetry=telemetry,
        intervals={(int(p["row"]["device"]), int(p["row"]["op"])): p["intervals"] for p in parts},
        params=params, notes=notes,
    )


def _params(cfg: BatteryConfig, alpha: float, correction: str, min_events: int, seed: int,
            **extra: Any) -> dict[str, Any]:
    return {"alpha": alpha, "correction": correction, "min_events": min_events, "seed": seed,
            "null_seed": nulls.NULL_SEED, **cfg.as_dict(), **extra}


_NOTES = [
    "Multiple testing: {corr} over all battery tests of all operating points (one family).",
    "2.4 Hz is far above the Nyquist frequency of 3-s telemetry (0.167 Hz): a 2.4 Hz heartbeat "
    "cannot be seen in AxeOS telemetry; the share-arrival spectrum is where it could show.",
    "Windowed CV over ~10 shares (the papers' metric) departs from 1 in every window even for a "
    "perfect Poisson process; see the 'paper' table.",
]


def analyze_capture(
    ds: xr.Dataset,
    *,
    alpha: float = 0.05,
    correction: str = "holm",
    min_events: int = 100,
    config: BatteryConfig | None = None,
    device: int | None = None,
    op: int | None = None,
    time_var: str = "t_host_ns",
    unassigned: str = "auto",
    surrogates: bool = True,
    n_surrogates: int = 199,
    seed: int = 0,
    progress: bool = True,
    max_events: int = 20_000_000,
    memory_events: int = 50_000_000,
) -> HeartbeatReport:
    """Run the heartbeat analysis on every share train of a capture.

    Parameters
    ----------
    ds : xarray.Dataset
        Capture (numpy- or dask-backed, e.g. from :func:`open_captures`).
    alpha : float
        Level of the battery after correction.
    correction : str
        ``"holm"`` (family-wise error, default) or ``"fdr_bh"``; the family is all battery tests
        of all operating points analysed.
    min_events : int
        Fewest events for the battery; smaller trains get "insufficient data (N<...)".
    config : BatteryConfig, optional
        Battery parameters.
    device, op : int, optional
        Restrict to one device / operating point.
    time_var : str
        Event time variable.
    unassigned : str
        See :func:`op_event_times`.
    surrogates : bool
        Run the shuffle / block-shuffle comparison.
    n_surrogates : int
        Surrogates of each kind.
    seed : int
        Seed of bootstrap and surrogates.
    progress : bool
        Show a progress bar.
    max_events : int
        Longest train analysed: a longer one is analysed on its first ``max_events`` events (in
        file order) and a note says so. With ``memory_events`` this bounds memory (about 130
        bytes per analysed event at the peak) whatever the capture size.
    memory_events : int
        If the capture selects more events than this in total, the trains are read one at a
        time (one pass over the event variables per train) instead of all in one pass.

    Returns
    -------
    HeartbeatReport
        If interrupted (KeyboardInterrupt), the report of the trains finished so far, with a
        note saying so.
    """
    cfg = BatteryConfig() if config is None else config
    notes = [n.format(corr="Holm" if correction == "holm" else "Benjamini-Hochberg")
             for n in _NOTES]
    kind = str(ds.attrs.get("source_kind", "none"))
    notes.insert(0, f"Data source kind: {kind}.")
    sizes = train_sizes(ds, time_var=time_var, unassigned=unassigned)
    sizes = {k: v for k, v in sizes.items()
             if (device is None or k[0] == device) and (op is None or k[1] == op)}
    for k, v in sizes.items():
        if v > max_events:
            notes.append(f"device {k[0]}, op {k[1]}: {v} events, analysed the first "
                         f"{max_events} (max_events).")
    total = sum(min(v, max_events) for v in sizes.values())

    def trains() -> Any:
        if total <= memory_events:
            yield from op_event_times(ds, device=device, op=op, time_var=time_var,
                                      unassigned=unassigned, max_per_group=max_events).items()
        else:  # one pass per train keeps only one train in memory
            for d, o in sizes:
                g = op_event_times(ds, device=d, op=o, time_var=time_var, unassigned="include",
                                   max_per_group=max_events)
                yield (d, o), g[(d, o)]

    parts: list[dict[str, Any]] = []
    try:
        for (d, o), t in tqdm(trains(), total=len(sizes), desc="heartbeat",
                              disable=not progress):
            v, f = _op_meta(ds, o)
            x = np.diff(t).astype(np.float64) * 1e-9
            parts.append(analyze_intervals(
                x, device=d, op=o, voltage_mV=v, frequency_MHz=f, config=cfg,
                min_events=min_events, surrogates=surrogates, n_surrogates=n_surrogates,
                seed=seed,
            ))
    except KeyboardInterrupt:
        notes.append(f"INTERRUPTED: {len(parts)} of {len(sizes)} share trains analysed.")
        warnings.warn("heartbeat analysis interrupted; returning partial report", stacklevel=2)
    tel = _telemetry_rows(ds, cfg.target_hz)
    return _finish(parts, alpha=alpha, correction=correction, min_events=min_events,
                   params=_params(cfg, alpha, correction, min_events, seed, source_kind=kind,
                                  time_var=time_var),
                   telemetry=tel, notes=notes)


def analyze_times(
    times: ArrayLike,
    *,
    alpha: float = 0.05,
    correction: str = "holm",
    min_events: int = 100,
    config: BatteryConfig | None = None,
    surrogates: bool = True,
    n_surrogates: int = 199,
    seed: int = 0,
    source_kind: str = "imported",
) -> HeartbeatReport:
    """Run the heartbeat analysis on one bare array of event times.

    Parameters
    ----------
    times : array_like
        Event times [s] (float) or [ns] (int64), any order; reported as ``device=0, op=-1``.
    alpha, correction, min_events, config, surrogates, n_surrogates, seed
        As in :func:`analyze_capture`.
    source_kind : str
        Provenance label recorded in the report parameters.

    Returns
    -------
    HeartbeatReport
    """
    cfg = BatteryConfig() if config is None else config
    t = np.asarray(times)
    x = hs.intervals_from_times(t)
    if np.issubdtype(t.dtype, np.integer):
        x = x * 1e-9
    part = analyze_intervals(x, config=cfg, min_events=min_events, surrogates=surrogates,
                             n_surrogates=n_surrogates, seed=seed)
    notes = [n.format(corr="Holm" if correction == "holm" else "Benjamini-Hochberg")
             for n in _NOTES]
    return _finish([part], alpha=alpha, correction=correction, min_events=min_events,
                   params=_params(cfg, alpha, correction, min_events, seed,
                                  source_kind=source_kind),
                   telemetry=pd.DataFrame(), notes=[f"Data source kind: {source_kind}.", *notes])
