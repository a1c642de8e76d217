"""The steps of ``notebooks/02_heartbeat.ipynb``: parameters, input, model truth, results.

The notebook stays thin: it validates its parameters against :data:`PARAMS`, loads the capture
with :func:`load_capture`, runs :func:`asiclab.heartbeat.analyze_capture`, and calls the plots of
:mod:`asiclab.heartbeat.plots` for the trains chosen by :func:`detail_trains`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from asiclab import dataset
from asiclab.dataset import open_captures
from asiclab.heartbeat import deadtime
from asiclab.heartbeat._errors import HeartbeatInputError
from asiclab.heartbeat.power import n_required_cv
from asiclab.heartbeat.report import HeartbeatReport
from asiclab.params import Param

#: Battery power (Holm within the train, at the notebook's alpha) at or below which the model's
#: departure from Poisson is called undetectable by a train of that length: "Poisson" is expected.
POISSON_MAX_POWER = 0.1
#: Battery power (at alpha / number of trains, a Bonferroni bound on the global Holm family) at
#: or above which the model's departure is expected to be detected.
DETECT_MIN_POWER = 0.95

#: Parameters of ``02_heartbeat.ipynb``.
PARAMS: dict[str, Param] = {
    "capture_path": Param(str, "capture to analyse: a NetCDF file, a directory or glob of captures "
                          "(opened lazily with dask), or '' for 01_capture of this run; relative to"
                          " the directory `asiclab reproduce` started in", path=True),
    "alpha": Param(float, "family-wise level after correction [1]", min=1e-6, max=0.5),
    "correction": Param(str, "multiple-testing correction over all tests and operating points",
                        choices=("holm", "fdr_bh")),
    "min_events": Param(int, "fewest events per operating point for the battery", min=20),
    "n_surrogates": Param(int, "shuffle / block-shuffle surrogates per train (0 = none)", min=0,
                          max=10_000),
    "seed": Param(int, "seed of surrogates and simulated null tables", min=0),
    "detail_ops": Param(list, "operating points shown in detail ([] = nominal and nearest the "
                        "edge)", item=int, min=0),
    "n_boot_dead_time": Param(int, "bootstrap replicates of the dead-time fit (CIs, LR null, "
                              "goodness of fit)", min=19, max=100_000),
    "target_cv": Param(float, "effect for the 'events needed' figure: CV of a gamma renewal "
                       "process [1]", min=0.05, max=5.0, check=lambda v: None if v != 1.0
                       else "a CV other than 1"),
}


def load_capture(p: dict[str, Any]) -> xr.Dataset:
    """The capture to analyse: ``capture_path``, or ``01_capture``'s capture of this run.

    A directory or a glob pattern is opened lazily with dask (:func:`open_captures`), so captures
    larger than memory work.
    """
    from asiclab.capture import workflow as capture

    text = p["capture_path"]
    if not text:
        path = capture.capture_path(p["run_dir"])
        if not path.is_file():
            raise HeartbeatInputError(
                f"no capture_path given and {path} does not exist: run 01_capture first in this "
                "run, or give capture_path")
        return dataset.open_capture(path)
    path = Path(text).expanduser()
    if path.is_file():
        return dataset.open_capture(path)
    return open_captures(str(path))


def detail_trains(report: HeartbeatReport, detail_ops: list[int] | None = None
                  ) -> list[tuple[int, int]]:
    """The (device, op) trains to show in detail.

    By default: for each device, the operating point of highest set voltage (nominal) and the one
    of lowest set voltage that still has a battery result (nearest the edge).
    """
    s = report.summary
    s = s[s["n_rejected"].notna() & np.isfinite(s["cv"])] if len(s) else s
    if detail_ops:
        chosen = [(int(r.device), int(r.op)) for r in s.itertuples() if int(r.op) in detail_ops]
        if not chosen:
            raise HeartbeatInputError(f"detail_ops {detail_ops}: none has enough events")
        return chosen
    out: list[tuple[int, int]] = []
    for _, sub in s.groupby("device"):
        order = sub.sort_values(["voltage_mV", "op"], ascending=[False, True])
        for row in (order.iloc[0], order.iloc[-1]):
            key = (int(row["device"]), int(row["op"]))
            if key not in out:
                out.append(key)
    return out


#: Captions of the :func:`detail_figures` by name (``{device}`` and ``{op}`` filled in), stable
#: across runs so that a paper can cite the figure files.
DETAIL_CAPTIONS = {
    "counting": "Fano and Allan factors against window size of device {device}, operating point "
                "{op}, with pointwise Poisson bands.",
    "qq": "Quantile-quantile plot of the inter-arrival times of device {device}, operating point "
          "{op}, against the exponential distribution.",
    "acf": "Autocorrelation of the inter-arrival times of device {device}, operating point {op}, "
           "with its null band.",
    "dfa": "Detrended fluctuation analysis of the share train of device {device}, operating point "
           "{op}.",
    "spectrum": "Spectrum of the share arrivals of device {device}, operating point {op}, against "
                "the flat spectrum of a Poisson process.",
}


def detail_figures(report: HeartbeatReport, intervals: np.ndarray, device: int, op: int
                   ) -> dict[str, Any]:
    """The detail figures of one train that its data allow, by name.

    Counting curves, QQ plot, autocorrelation, DFA and spectrum; a figure the train has too few
    events for is left out, and the reason is printed (a short train is a result, not an error).
    """
    from asiclab.heartbeat import plots as hp

    makers = {
        "counting": lambda: hp.plot_counting_curves(report, device, op),
        "qq": lambda: hp.plot_qq_exponential(intervals),
        "acf": lambda: hp.plot_acf(intervals, nlags=max(1, min(50, intervals.size // 4))),
        "dfa": lambda: hp.plot_dfa(report, device, op),
        "spectrum": lambda: hp.plot_spectrum(report, device, op),
    }
    out: dict[str, Any] = {}
    for name, make in makers.items():
        try:
            fig = make()
        except HeartbeatInputError as exc:
            print(f"device {device}, op {op}: no {name} figure: {exc}")
            continue
        if name in ("qq", "acf"):
            fig.suptitle(f"device {device}, op {op}")
        out[name] = fig
    return out


def model_truth(ds: xr.Dataset, report: HeartbeatReport, *, alpha: float = 0.05,
                n_records: int = 200, min_long_events: int = 200_000, seed: int = 0
                ) -> pd.DataFrame | None:
    """For a simulated capture: what the model makes each train, beside the battery's verdict.

    The truth is a function of the operating point, from the model itself: for each train the
    same chip is simulated long at that operating point (steady state, an independent nonce
    stream; :func:`asiclab.devices.simulated.steady_state_intervals`), giving the expected CV
    with its standard error, and the long train is cut into ``n_records`` records of the
    train's own length, on which the battery is run: its rejection rate is the probability that
    a train like this one detects the model's departure from Poisson. The expectation is
    "consistent with Poisson" only where that power is at most :data:`POISSON_MAX_POWER` (the
    departure is below what the train could detect: even far above the edge the Cox process is
    not exactly Poisson, e.g. CV 1.016 at +60 mV), "over-" or "under-dispersed" (by the sign of
    the expected CV - 1) where the power at ``alpha / n_trains`` is at least
    :data:`DETECT_MIN_POWER`, and no expectation in between or where the chip collapses.

    Parameters
    ----------
    ds : xarray.Dataset
        The capture.
    report : HeartbeatReport
        Its analysis.
    alpha : float
        Level of the battery.
    n_records : int
        Records of the train's length simulated for the power.
    min_long_events : int
        Fewest events of each long simulation (for the expected CV).
    seed : int
        Seed of the battery's dequantisation (the nonce stream is fixed).

    Returns
    -------
    pandas.DataFrame or None
        ``None`` for captures that are not simulated (no model truth exists).
    """
    from asiclab.devices.simulated import ChipModelParams, steady_state_intervals
    from asiclab.heartbeat.battery import run_battery

    if ds.attrs.get("source_kind") != "simulated":
        return None
    params = dataset.get_attr(ds, "parameters") or {}
    edges = {int(t.get("seed", -1)): t.get("steady_state_edge_voltage_mV")
             for t in params.get("truth", [])}
    seeds = params.get("device_seeds") or [params.get("seed")]
    model = ChipModelParams(**params["model"]) if params.get("model") else ChipModelParams()
    ticket = params.get("ticket_difficulty")
    n_trains = max(1, sum(not str(v).startswith("insufficient")
                          for v in report.summary.get("verdict", [])))
    rows = []
    for r in report.summary.itertuples():
        seed_d = seeds[int(r.device)] if int(r.device) < len(seeds) else None
        edge = edges.get(seed_d)
        margin = r.voltage_mV - edge if edge is not None else float("nan")
        n = int(r.n_events) - 1
        cv_true = cv_se = power = power_b = float("nan")
        freq = r.frequency_MHz if np.isfinite(r.frequency_MHz) else params.get("frequency_MHz")
        if seed_d is None or not np.isfinite(r.voltage_mV) or freq is None:
            expected = "unknown"
        elif str(r.verdict).startswith("insufficient"):
            expected = "(too few events: no expectation)"
        else:
            want = max(min_long_events, n_records * n + 1)
            x = steady_state_intervals(int(seed_d), float(r.voltage_mV), float(freq),
                                       n_events=want, params=model, ticket_difficulty=ticket)
            k = min(n_records, x.size // n) if n > 0 else 0
            if k < 20:
                expected = "(collapsed at steady state: no expectation)"
            else:
                cv_true = float(x.std(ddof=1) / x.mean())
                seg = x[: k * n].reshape(k, n)
                seg_cv = seg.std(axis=1, ddof=1) / seg.mean(axis=1)
                cv_se = float(seg_cv.std(ddof=1) / np.sqrt(x.size / n))
                res = run_battery(seg, seed=seed)
                power = float(res.any_rejected("holm", alpha).mean())
                power_b = float(res.any_rejected("holm", alpha / n_trains).mean())
                if power <= POISSON_MAX_POWER:
                    expected = "consistent with Poisson"
                elif power_b >= DETECT_MIN_POWER:
                    expected = "over-dispersed" if cv_true > 1 else "under-dispersed"
                else:
                    expected = f"(graded: detected with probability {power:.2f}; no expectation)"
        verdict = str(r.verdict)
        if expected.startswith(("consistent", "over", "under")):
            agrees: Any = verdict.startswith(expected)
        else:
            agrees = None
        rows.append({"device": int(r.device), "op": int(r.op), "voltage_mV": r.voltage_mV,
                     "model_edge_mV": edge, "margin_mV": margin, "n_events": int(r.n_events),
                     "model_cv": cv_true, "model_cv_se": cv_se, "detect_power": power,
                     "model_expects": expected, "verdict": verdict, "agrees": agrees})
    return pd.DataFrame(rows)


def paper_vs_battery(report: HeartbeatReport) -> pd.DataFrame:
    """Per train: what the papers' windowed-CV reading says, beside the calibrated verdict.

    The papers' per-voltage regime values are not available in citable form, so their method is
    applied to this capture instead: the mean CV over ~10-share windows and the fraction of
    windows with CV "above unity", next to our CV with its CI and the battery's verdict.
    """
    paper = report.paper
    rows = []
    for r in report.summary.itertuples():
        sel = paper[(paper["device"] == r.device) & (paper["op"] == r.op)] if len(paper) \
            else paper
        def metric(name: str, frame: pd.DataFrame = sel) -> float:
            hit = frame[frame["metric"] == name]["observed"]
            return float(hit.iloc[0]) if len(hit) else float("nan")
        rows.append({
            "device": int(r.device), "op": int(r.op), "voltage_mV": r.voltage_mV,
            "n_events": int(r.n_events),
            "paper: mean windowed CV": metric("mean windowed CV"),
            "paper: windows with CV > 1": metric("fraction of windows with CV above 1"),
            "paper: windows with CV != 1": metric("fraction of windows with CV != 1"),
            "CV": r.cv, "CV 95% CI": f"[{r.cv_lo:.3f}, {r.cv_hi:.3f}]",
            "battery verdict": r.verdict,
        })
    return pd.DataFrame(rows)


#: The papers' "Silicon Heartbeat" reading, tested per device at its voltage edge.
HEARTBEAT_CLAIM_ID = "heartbeat_non_poisson_edge_claim"
HEARTBEAT_CLAIM_SOURCE = ("arXiv:2601.01916 (Toward Thermodynamic Reservoir Computing), Silicon "
                          "Heartbeat; arXiv:2601.12032 (Speaking to Silicon)")


def edge_trains(report: HeartbeatReport) -> pd.DataFrame:
    """The share train at each device's voltage edge: its lowest set voltage with a CV.

    Parameters
    ----------
    report : HeartbeatReport
        The battery over a capture.

    Returns
    -------
    pandas.DataFrame
        One summary row per device (columns of ``report.summary``) plus ``edge_rule``, which
        says how the train was chosen: ``"lowest set voltage"``, or ``"longest train (no
        voltage set points)"`` when the capture records no set voltage (imported logs,
        Stratum-only captures), where "near the edge" cannot be located and the longest train
        stands in for the device.
    """
    s = report.summary
    if not len(s) or "cv" not in s.columns:
        return s.assign(edge_rule=pd.Series(dtype=str))
    rows = []
    for _, g in s[np.isfinite(s["cv"].astype(float))].groupby("device", sort=True):
        v = g["voltage_mV"].astype(float) if "voltage_mV" in g.columns else None
        if v is not None and np.isfinite(v).any():
            row = g.loc[v[np.isfinite(v)].idxmin()].copy()
            row["edge_rule"] = "lowest set voltage"
        else:
            row = g.loc[g["n_events"].astype(float).idxmax()].copy()
            row["edge_rule"] = "longest train (no voltage set points)"
        rows.append(row)
    return pd.DataFrame(rows).reset_index(drop=True)


def _papers_reading(report: HeartbeatReport, device: int, op: int) -> str:
    """The papers' windowed-CV reading of one train, with its Poisson value."""
    pt = report.paper
    if not len(pt) or "metric" not in pt.columns:
        return "the papers' windowed CV needs >= 10 intervals"
    m = pt[(pt["device"] == device) & (pt["op"] == op)]
    row = m[m["metric"] == "fraction of windows with CV != 1"]
    if not len(row):
        return "the papers' windowed CV was not computed"
    r = row.iloc[0]
    return (f"the papers' reading: {r['papers_reading']} (a Poisson process: "
            f"{float(r['poisson']):.0%})")


def record_claims(ds: xr.Dataset, report: HeartbeatReport) -> list[dict[str, Any]]:
    """Claims-ledger rows: the papers' "non-Poissonian near the edge" per device of the capture.

    For each device, the train at its voltage edge (:func:`edge_trains`) is judged by the
    battery (multiple-testing corrected, with surrogates), and the row sets that verdict beside
    the papers' own reading (CV != 1 on windows of ~10 shares, which a Poisson process also
    shows in every window). The plain verdict: "supported" when the battery finds a departure
    from Poisson at the edge, "not supported" when the train is consistent with Poisson,
    "undecided" when it is too short.

    Parameters
    ----------
    ds : xarray.Dataset
        The capture analysed (for its source kind and device names).
    report : HeartbeatReport
        The battery over it.

    Returns
    -------
    list of dict
        The stored entries, one per device with a CV.
    """
    from asiclab import results

    claim = results.Claim(
        id=HEARTBEAT_CLAIM_ID, paper_value="non-Poissonian (CV != 1) near the voltage edge",
        source=HEARTBEAT_CLAIM_SOURCE,
        statement="share inter-arrival times become non-Poissonian near the voltage edge, "
                  "judged by CV != 1 on windows of ~10 shares")
    names = (list(np.asarray(ds["device_name"].values, dtype=str))
             if "device_name" in ds.variables else [])
    kinds = (list(np.asarray(ds["device_source_kind"].values, dtype=str))
             if "device_source_kind" in ds.variables else [])
    out = []
    for r in edge_trains(report).itertuples():
        dev, op = int(r.device), int(r.op)
        name = names[dev] if dev < len(names) else f"device {dev}"
        kind = kinds[dev] if dev < len(kinds) and kinds[dev] else ds.attrs.get("source_kind")
        battery = str(r.verdict)
        if battery.startswith("insufficient"):
            plain = "undecided"
        elif "non-Poisson" in battery:
            plain = "supported"
        else:
            plain = "not supported"
        volt = (f"{float(r.voltage_mV):g} mV" if np.isfinite(float(r.voltage_mV))
                else "voltage not set")
        out.append(results.record(
            f"heartbeat_edge_d{dev}_cv", float(r.cv), "1", (float(r.cv_lo), float(r.cv_hi)),
            note=f"{name}, source {kind}, op {op} at {volt} ({r.edge_rule}), N={int(r.n_events)} "
                 f"events; {_papers_reading(report, dev, op)}",
            verdict=f"{plain}: battery says {battery}", claim=claim))
    return out


def record_results(ds: xr.Dataset, report: HeartbeatReport, truth: pd.DataFrame | None,
                   target_cv: float, alpha: float) -> list[dict[str, Any]]:
    """Record the notebook's results: per-train CV/rate/verdict, the claim rows per device at its
    voltage edge (:func:`record_claims`), the model check and the events needed."""
    from asiclab import results

    out = report.record()
    out += record_claims(ds, report)
    if truth is not None:
        checked = truth[truth["agrees"].notna()]
        ok = bool(len(checked)) and bool(checked["agrees"].all())
        out.append(results.record(
            "recovers_model_truth", ok, "1",
            note=f"{int(checked['agrees'].sum())} of {len(checked)} trains with a model "
                 "expectation get the expected verdict (Poisson where the model's departure is "
                 "undetectable at the train's length, over-dispersed where it is detectable; "
                 "model CV and power simulated long at each operating point)",
            verdict="recovers the simulator's truth" if ok else "does NOT recover the truth"))
    need = n_required_cv(target_cv, alpha=alpha, power=0.9)
    out.append(results.record(
        "events_needed_for_target_cv", int(need), "1",
        note=f"intervals needed to detect a gamma renewal process with CV {target_cv} at "
             f"alpha={alpha}, power 0.9 (the papers used windows of ~10 shares and <1000 per "
             "point)"))
    n_ops = len(report.summary)
    n_non = int((report.summary["n_rejected"].fillna(0) > 0).sum()) if n_ops else 0
    out.append(results.record(
        "trains_non_poisson", n_non, "1",
        note=f"of {n_ops} share trains, after {report.params.get('correction', 'holm')} "
             f"correction at alpha={alpha}; source {ds.attrs.get('source_kind')}"))
    return out


def input_description(ds: xr.Dataset) -> str:
    """One line saying what is analysed (source kind, model, events, operating points)."""
    n_valid = int(np.asarray(ds["valid"].values, dtype=bool).sum())
    return (f"source_kind = {ds.attrs.get('source_kind')!r}, device model "
            f"{ds.attrs.get('device_model')!r}: {ds.sizes['event']} events ({n_valid} valid), "
            f"{ds.sizes['op']} operating points, {ds.sizes['device']} device(s)")



def _train_job_ids(ds: xr.Dataset, device: int, op: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Times [ns] and Stratum job ids of the valid shares of one train, in time order."""
    if "job_id" not in ds.variables:
        return None
    t = np.asarray(ds["t_host_ns"].values, dtype=np.int64)
    m = ((t >= 0) & np.asarray(ds["valid"].values, dtype=bool)
         & (np.asarray(ds["device_index"].values) == device)
         & (np.asarray(ds["op_index"].values) == op))
    order = np.argsort(t[m], kind="stable")
    return t[m][order], np.asarray(ds["job_id"].values[m], dtype=str)[order]


def dead_time_analysis(ds: xr.Dataset, report: HeartbeatReport, trains: list[tuple[int, int]],
                       *, alpha: float, n_boot: int, seed: int) -> dict[str, Any]:
    """Hazard function, dead-time renewal fit and same-job/new-job gaps of the chosen trains.

    Explains an under-dispersed verdict: a train that is Poisson apart from a dead time after
    each share gets the verdict "Poisson with dead time ≈ X ms", and when the capture has
    Stratum job ids, the comparison of same-job and new-job gaps says whether job changes cause
    it (see :mod:`asiclab.heartbeat.deadtime`).

    Returns
    -------
    dict
        ``table`` (one row per train: fit with CIs, tests, job-gap summary, verdicts),
        ``hazard``, ``fits`` and ``job_gaps`` (dicts keyed by ``(device, op)``).
    """
    from asiclab.heartbeat._errors import InsufficientDataError
    from asiclab.heartbeat.battery import prepare_intervals

    rows, hazards, fits, jobs = [], {}, {}, {}
    verdicts = report.verdicts()
    resolution = ({(int(r.device), int(r.op)): float(r.resolution_s)
                   for r in report.summary.itertuples()} if "resolution_s" in report.summary
                  else {})
    for key in trains:
        x = report.intervals.get(key)
        if x is None:
            continue
        # quantised timestamps: analyse the train as the battery tested it (dequantised)
        x = prepare_intervals(x, resolution.get(key), seed=seed)[0]
        try:
            hz = deadtime.hazard_function(x)
            fit = deadtime.fit_dead_time(x, n_boot=n_boot, seed=seed)
        except InsufficientDataError as exc:
            print(f"device {key[0]}, op {key[1]}: no dead-time analysis: {exc}")
            continue
        ev = _train_job_ids(ds, *key)
        jg = deadtime.job_gap_table(*ev) if ev is not None else pd.DataFrame()
        row: dict[str, Any] = {"device": key[0], "op": key[1], **fit.as_row()}
        nf = None
        if len(jg) and ev is not None and ev[0].size == x.size + 1:
            new = jg[jg["gaps"] == "new job"].iloc[0]
            same = jg[jg["gaps"] == "same job"].iloc[0]
            row.update({"n_jobs": int(new["n_jobs"]), "new_job_fraction": float(new["fraction"]),
                        "new_job_median_ms": float(new["median_ms"]),
                        "same_job_median_ms": float(same["median_ms"]),
                        "p_job_gaps": float(new["p_mannwhitney"])})
            is_new = ev[1][1:] != ev[1][:-1]
            hz["new_job_hazard_hz"] = deadtime.hazard_function(
                x, np.append(hz["t_lo_s"], hz["t_hi_s"].iloc[-1]), event=is_new)["hazard_hz"]
            hz["same_job_hazard_hz"] = hz["hazard_hz"] - hz["new_job_hazard_hz"]
            try:
                nf = deadtime.fit_cause_dead_time(x, is_new, n_boot=n_boot, seed=seed)
                row.update({f"new_job_{k[:-2]}_ms" if k.endswith("_s") else f"new_job_{k}":
                            1e3 * v if k.endswith("_s") else v for k, v in nf.items()})
            except InsufficientDataError:
                pass
        hazards[key], fits[key], jobs[key] = hz, fit, jg
        row["battery_verdict"] = verdicts.get(key, "")
        row["dead_time_verdict"] = deadtime.dead_time_verdict(fit, jg, new_job_fit=nf,
                                                              alpha=alpha)
        rows.append(row)
    return {"table": pd.DataFrame(rows), "hazard": hazards, "fits": fits, "job_gaps": jobs}


def record_dead_time(dead: dict[str, Any], source_kind: str) -> list[dict[str, Any]]:
    """Record the dead time of each analysed train (value, CI [ms] and the plain verdict)."""
    from asiclab import results

    out = []
    for r in dead["table"].itertuples():
        name = f"heartbeat_d{r.device}_op{r.op}_dead_time"
        if str(r.dead_time_verdict).startswith("no dead time"):
            out.append(results.record(
                name, 0.0, "ms", note=f"no dead time detected (LR p={r.p_dead_time:.3g}); "
                f"source {source_kind}", verdict=str(r.dead_time_verdict)))
            continue
        out.append(results.record(
            name, float(r.dead_time_ms), "ms", (float(r.dead_time_lo_ms), float(r.dead_time_hi_ms)),
            note=(f"two-level-hazard renewal fit: hazard {r.rate_dead_hz:.3g}/s before, "
                  f"{r.rate_hz:.3g}/s after; LR p={r.p_dead_time:.3g}, fit p={r.p_fit:.3g}; "
                  f"source {source_kind}"),
            verdict=str(r.dead_time_verdict)))
    return out
