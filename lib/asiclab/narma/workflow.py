"""The steps of ``notebooks/03_narma10.ipynb``: parameters, drives, analysis, recorded results.

The notebook validates its parameters against :data:`PARAMS`, calls :func:`run_encoding` for
each encoding (drive -> capture saved in the run directory -> features -> models and controls
-> memory capacity -> consistency), :func:`step_sweep` for the physical encodings at several
``step_s``, shows the figures of :mod:`asiclab.narma.plots` and records the results with
:func:`record_results` (claims row ``narma10_nrmse_paper_claim``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from asiclab import dataset
from asiclab.narma import analysis, driver, features, task
from asiclab.narma import readout as ro
from asiclab.narma._errors import NarmaInputError
from asiclab.params import Param

#: The paper's claim (arXiv:2601.12032).
PAPER_NRMSE = analysis.PAPER_NRMSE
PAPER_SOURCE = ("arXiv:2601.12032 (Speaking to Silicon), NARMA-10 with the chip as reservoir: "
                "payload encoding, share-timing features, ridge readout lambda = 1e-6")

#: Thermal time constant of the simulated chip [s] (the fading memory of the physical
#: encodings), for the step-size sweep.
SIM_THERMAL_TAU_S = 30.0


def _pair(v: list[float]) -> str | None:
    return None if len(v) == 2 and v[0] != v[1] else "two different numbers [low, high]"


#: Parameters of ``03_narma10.ipynb``.
PARAMS: dict[str, Param] = {
    "source": Param(str, "where the reservoir runs: the simulated chip (virtual time), the "
                    "BM1366 UART emulator, a real UART, a real AxeOS miner or the emulated LV06 "
                    "against the capture server (payload / difficulty encodings; frequency and "
                    "voltage refused: restarts), or a saved NARMA capture",
                    choices=("sim", "serial-emulated", "serial", "axeos", "emulated", "file")),
    "capture_path": Param(str, "saved NARMA capture (NetCDF) for source 'file'; '' otherwise"),
    "encodings": Param(list, "input encodings to run, in order (the paper's is 'payload')",
                       item=str, min_len=1,
                       check=lambda v: None if set(v) <= set(driver.ENCODINGS)
                       else f"a list drawn from {driver.ENCODINGS}"),
    "step_s": Param(float, "step length [s] (virtual time on the simulator)", min=1e-3,
                    max=3600.0),
    "steps": Param(int, "steps of the NARMA-10 sequence (after it the split)", min=300,
                   max=200_000),
    "seed": Param(int, "seed of the NARMA input, the chip and the resampling", min=0),
    "washout": Param(int, "leading steps discarded [steps]", min=10),
    "frequency_MHz_range": Param(list, "PLL range of the frequency encoding [MHz]", item=float,
                                 min=50.0, max=1000.0, check=_pair),
    "voltage_mV_range": Param(list, "core-voltage range of the voltage encoding [mV] (checked "
                              "against the safety envelope on live devices)", item=float,
                              min=500.0, max=1500.0, check=_pair),
    "difficulty_range": Param(list, "ticket-difficulty range of the difficulty encoding [1]",
                              item=float, min=1e-6, max=1e6, check=_pair),
    "ticket_difficulty": Param(float, "ticket difficulty of the other encodings [1] (1: about "
                               "100 events per second at 485 MHz on the simulator)", min=1e-6,
                               max=1e6),
    "feature_delays": Param(int, "delay embedding of the device features [steps]", min=0,
                            max=50),
    "max_lag": Param(int, "largest k of the input-only delay line", min=1, max=60),
    "quad_max_lag": Param(int, "largest k of the input-only quadratic control", min=0, max=20),
    "esn_sizes": Param(list, "ESN sizes N", item=int, min=1, max=2000),
    "esn_spectral_radii": Param(list, "ESN spectral radii tried on validation", item=float,
                                min=0.01, max=2.0, min_len=1),
    "esn_input_scalings": Param(list, "ESN input scalings tried on validation", item=float,
                                min=1e-3, max=10.0, min_len=1),
    "mc_max_delay": Param(int, "largest delay of the memory capacity [steps]", min=1, max=200),
    "n_null": Param(int, "shuffled-feature surrogates of the memory capacity", min=1,
                    max=1000),
    "n_boot": Param(int, "block-bootstrap resamples", min=50, max=100_000),
    "block": Param(int, "bootstrap block length [steps]", min=1),
    "alpha": Param(float, "level of the verdict's paired test", min=1e-4, max=0.5),
    "consistency_initial_temperature_C": Param(float, "start temperature of the second drive "
                                               "of the consistency test [degC]", min=-20.0,
                                               max=100.0),
    "step_sweep_s": Param(list, "step lengths [s] of the physical-encoding sweep (Section 6; "
                          "[] = none)", item=float, min=1e-3, max=3600.0),
    "sweep_encodings": Param(list, "physical encodings of the step-length sweep",
                             item=str, check=lambda v: None if set(v) <= set(driver.ENCODINGS)
                             - {"payload"} else "a list drawn from difficulty, frequency, "
                             "voltage"),
    "sweep_steps": Param(int, "steps per point of the step-length sweep", min=300,
                         max=200_000),
    "n_seeds": Param(int, "repeats over seeds (input, chip, resampling) for CIs over seeds, "
                     "each of sweep_steps steps without ESN (0 = none)", min=0, max=100),
    "time_scale": Param(float, "emulator speed-up (sources 'serial-emulated', 'emulated') [1]",
                        min=1.0, max=1000.0),
    "serial_port": Param(str, "UART device for source 'serial' ('' otherwise)"),
    "miner_url": Param(str, "AxeOS address of the miner for source 'axeos' ('' otherwise)"),
    "listen_host": Param(str, "capture-server address for source 'axeos' (a LAN address lets "
                         "it listen on the network; '' = loopback)"),
}


@dataclass
class EncodingRun:
    """Everything one encoding produced."""

    encoding: str
    source_kind: str
    capture_file: Path | None
    series: task.NarmaSeries
    features: pd.DataFrame
    report: analysis.NarmaReport
    mc: dict[str, Any]
    mc_esn: dict[str, Any] | None
    consistency: pd.Series
    consistency_features: tuple[pd.DataFrame, pd.DataFrame]
    info: dict[str, Any] = field(default_factory=dict)


def encoding_of(p: dict[str, Any], name: str) -> driver.Encoding:
    """The :class:`~asiclab.narma.driver.Encoding` of one name with the notebook's ranges."""
    return driver.Encoding(name, frequency_MHz=tuple(p["frequency_MHz_range"]),
                           voltage_mV=tuple(p["voltage_mV_range"]),
                           difficulty=tuple(p["difficulty_range"]),
                           nominal_difficulty=p["ticket_difficulty"])


def _drive(p: dict[str, Any], u: np.ndarray, enc: driver.Encoding, *, step_s: float,
           **kw: Any) -> xr.Dataset:
    src = p["source"]
    if src == "sim":
        return driver.drive(u, enc, source="sim", step_s=step_s, seed=p["seed"], **kw)
    live_kw: dict[str, Any] = {}
    if src == "serial-emulated":
        live_kw = {"time_scale": p["time_scale"], "job_interval_s": 0.2}
    elif src == "serial":
        live_kw = {"serial_port": p["serial_port"]}
    elif src == "emulated":
        # the ticket scales with the speed-up: ~7 CPU-searched shares per host second
        live_kw = {"time_scale": p["time_scale"],
                   "emulated_ticket_difficulty": 16.0 * p["time_scale"]}
    elif src == "axeos":
        from asiclab.capture.server import _is_loopback

        host = p["listen_host"] or "127.0.0.1"
        live_kw = {"miner_url": p["miner_url"], "listen_host": host,
                   "allow_lan": not _is_loopback(host)}
    kw.pop("initial_temperature_C", None)  # a live chip's start temperature is not settable
    hist = kw.pop("prehistory", None)
    if hist is not None:  # a different history: drive it first, as its own steps
        u = np.concatenate([hist, u])
    ds = driver.drive(u, enc, source=src, step_s=step_s, seed=p["seed"], **live_kw)
    if hist is not None:
        ds = ds.isel(op=slice(len(hist), None))
        ds = ds.assign(op_index=("event", np.where(ds.op_index.values >= len(hist),
                                                   ds.op_index.values - len(hist), -1)))
    return ds


def series_of_capture(ds: xr.Dataset) -> task.NarmaSeries:
    """The NARMA series of a saved capture: its ``narma_u`` and the recomputed target.

    The target of the last step needs the next input, so the last step is dropped.
    """
    if "narma_u" not in ds:
        raise NarmaInputError("this capture holds no NARMA input (variable 'narma_u')")
    u = np.asarray(ds["narma_u"].values, float)
    meta = json.loads(ds.attrs.get("narma_task", "{}") or "{}")
    coef = {k: meta[k] for k in ("order", "a1", "a2", "b", "c") if k in meta}
    y = task.narma_recurrence(u, form=meta.get("form", "textbook"), **coef)
    return task.NarmaSeries(u=u[:-1], target=y[1:], seed=int(meta.get("seed", -1)),
                            params=meta)


def run_encoding(p: dict[str, Any], name: str, *, out_dir: Path | None = None,
                 step_s: float | None = None, steps: int | None = None, esn: bool = True,
                 mc_and_consistency: bool = True, progress: bool = True) -> EncodingRun:
    """Drive one encoding (or read its saved capture) and analyse it (see the module doc)."""
    step_s = p["step_s"] if step_s is None else step_s
    steps = p["steps"] if steps is None else steps
    enc = encoding_of(p, name)
    capture_file = None
    if p["source"] == "file":
        path = Path(p["capture_path"]).expanduser()
        ds = dataset.open_capture(path)
        saved = ds.attrs.get("narma_encoding")
        if saved != name:
            raise NarmaInputError(f"{path} holds a {saved!r} drive, not {name!r}: give "
                                  f"encodings = [{saved!r}] for source 'file'")
        step_s = float(ds.attrs.get("narma_step_s", step_s))
        series = series_of_capture(ds)
        F = features.step_features(ds).iloc[: len(series)].reset_index(drop=True)
        Fs = None
        capture_file = path
    else:
        s_full = task.generate(steps, seed=p["seed"])
        series = s_full
        # the drive includes u[steps] so the saved file can recompute every target
        # (generate() draws steps + 1 inputs from default_rng(seed): the last is u[steps])
        u_next = np.random.default_rng(p["seed"]).uniform(0.0, 0.5, steps + 1)[-1]
        u_drive = np.append(s_full.u, u_next)
        ds = _drive(p, u_drive, enc, step_s=step_s, progress=progress)
        ds.attrs["narma_task"] = json.dumps({**s_full.params, "seed": s_full.seed})
        F = features.step_features(ds).iloc[:steps].reset_index(drop=True)
        perm = np.random.default_rng([p["seed"], 17]).permutation(steps)
        ds_sh = _drive(p, np.concatenate([s_full.u[perm], u_drive[-1:]]), enc, step_s=step_s,
                       progress=False)
        Fs = features.step_features(ds_sh).iloc[:steps].reset_index(drop=True)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            capture_file = dataset.save_capture(ds, out_dir / f"narma_{name}_step{step_s:g}s.nc")
    n = len(series)
    sp = task.chronological_split(n, washout=p["washout"], train=0.6, val=0.2)
    rep = analysis.evaluate(series, F, sp, shuffled_features=Fs,
                            feature_delays=p["feature_delays"], max_lag=p["max_lag"],
                            quad_max_lag=p["quad_max_lag"],
                            esn_sizes=tuple(p["esn_sizes"]) if esn else (),
                            esn_spectral_radii=tuple(p["esn_spectral_radii"]),
                            esn_input_scalings=tuple(p["esn_input_scalings"]),
                            alpha=p["alpha"], n_boot=p["n_boot"], block=p["block"],
                            seed=p["seed"])
    mc: dict[str, Any] = {}
    mc_esn = None
    cons = pd.Series(dtype=float)
    pair = (F, F)
    if mc_and_consistency:
        mc = analysis.memory_capacity(F, series.u, sp, max_delay=p["mc_max_delay"],
                                      n_null=p["n_null"], seed=p["seed"])
        if "esn" in rep.models:
            info = rep.models["esn"].info
            X = ro.ESN(info["n_units"], spectral_radius=info["spectral_radius"],
                       input_scaling=info["input_scaling"], seed=p["seed"]).states(series.u)
            mc_esn = analysis.memory_capacity(X, series.u, sp, max_delay=p["mc_max_delay"],
                                              n_null=1, seed=p["seed"])
        if p["source"] != "file":
            hist = task.generate(max(p["washout"], 50), seed=p["seed"] + 1000).u
            ds_b = _drive(p, np.concatenate([series.u, u_drive[-1:]]), enc, step_s=step_s,
                          initial_temperature_C=p["consistency_initial_temperature_C"],
                          prehistory=hist, progress=False)
            Fb = features.step_features(ds_b).iloc[:n].reset_index(drop=True)
            cons = analysis.consistency(F, Fb, washout=p["washout"])
            pair = (F, Fb)
    return EncodingRun(encoding=name, source_kind=str(ds.attrs.get("source_kind")),
                       capture_file=capture_file, series=series, features=F, report=rep,
                       mc=mc, mc_esn=mc_esn, consistency=cons, consistency_features=pair,
                       info={"step_s": step_s, "steps": n,
                             "events": int(ds.sizes.get("event", 0))})


def step_sweep(p: dict[str, Any], names: list[str]) -> pd.DataFrame:
    """Physical encodings at several ``step_s`` (Section 6): device, device + input and the
    input-only controls, with step_s / tau of the simulated chip's thermal memory."""
    rows = []
    for name in names:
        for step_s in p["step_sweep_s"]:
            r = run_encoding(p, name, step_s=step_s, steps=p["sweep_steps"], esn=False,
                             mc_and_consistency=False, progress=False)
            m = r.report.models
            rows.append({"encoding": name, "step_s": step_s,
                         "step_over_tau": step_s / SIM_THERMAL_TAU_S,
                         "device": m["device"].test_nrmse,
                         "device_plus_input": m["device_plus_input"].test_nrmse,
                         "input_linear": m["input_linear"].test_nrmse,
                         "input_quadratic": m["input_quadratic"].test_nrmse,
                         "computes": r.report.verdict.computes,
                         "p_value": r.report.verdict.p_value,
                         "device_level": r.report.verdict.device_level})
    return pd.DataFrame(rows)


def seed_repeats(p: dict[str, Any], names: list[str]) -> pd.DataFrame:
    """Every encoding re-run with ``n_seeds`` seeds (new input, chip and resampling each):
    per-seed test NRMSE of the device, device + input and the input-only controls."""
    rows = []
    for name in names:
        for i in range(p["n_seeds"]):
            q = {**p, "seed": p["seed"] + 1 + i}
            r = run_encoding(q, name, steps=p["sweep_steps"], esn=False,
                             mc_and_consistency=False, progress=False)
            m = r.report.models
            rows.append({"encoding": name, "seed": q["seed"],
                         **{k: m[k].test_nrmse for k in ("constant", "device",
                                                         "device_shuffled", "input_linear",
                                                         "input_quadratic",
                                                         "device_plus_input")},
                         "computes": r.report.verdict.computes})
    return pd.DataFrame(rows)


def seed_summary(repeats: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95 % t-interval over seeds of each model's test NRMSE, per encoding."""
    from scipy import stats

    if not len(repeats):
        return pd.DataFrame()
    models = [c for c in repeats.columns if c not in ("encoding", "seed", "computes")]
    rows = []
    for enc, g in repeats.groupby("encoding", sort=False):
        for mname in models:
            x = g[mname].to_numpy(float)
            half = (stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
                    if x.size > 1 else np.nan)
            rows.append({"encoding": enc, "model": mname, "mean": x.mean(),
                         "ci_low": x.mean() - half, "ci_high": x.mean() + half,
                         "n_seeds": x.size})
        rows.append({"encoding": enc, "model": "computes (fraction of seeds)",
                     "mean": float(g["computes"].mean()), "ci_low": np.nan, "ci_high": np.nan,
                     "n_seeds": len(g)})
    return pd.DataFrame(rows)


def physical(names: list[str]) -> list[str]:
    """The encodings that change a physical setting (not the payload)."""
    return [n for n in names if n != "payload"]


def overview(runs: list[EncodingRun]) -> pd.DataFrame:
    """One row per encoding and model: test NRMSE with CI (both forms)."""
    frames = []
    for r in runs:
        t = r.report.table().reset_index()
        t.insert(0, "encoding", r.encoding)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def verdicts(runs: list[EncodingRun]) -> pd.DataFrame:
    """The verdict of each encoding, with memory capacity and consistency."""
    rows = []
    for r in runs:
        v = r.report.verdict
        rows.append({"encoding": r.encoding, "computes": v.computes, "p_value": v.p_value,
                     "best_input_only": v.best_input_only, "device_level": v.device_level,
                     "memory_capacity": r.mc.get("mc", np.nan),
                     "mc_null_q95": r.mc.get("null_q95", np.nan),
                     "consistency_n_valid": r.consistency.get("n_valid", np.nan),
                     "verdict": v.text})
    return pd.DataFrame(rows)


def _claim_run(runs: list[EncodingRun]) -> EncodingRun:
    for r in runs:
        if r.encoding == "payload":
            return r
    return runs[0]


def record_results(runs: list[EncodingRun], sweep: pd.DataFrame | None = None,
                   seeds: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Record the notebook's results; the paper's encoding (payload, if run) carries the claim.
    """
    from asiclab import results

    out = []
    main = _claim_run(runs)
    rep = main.report
    m = rep.models
    src = f"source {main.source_kind}, {main.encoding} encoding, {main.info['steps']} steps of " \
          f"{main.info['step_s']:g} s"
    claim = results.Claim(
        id="narma10_nrmse_paper_claim", paper_value=PAPER_NRMSE, source=PAPER_SOURCE,
        statement="the chip as reservoir reaches NARMA-10 NRMSE 0.8661 (only reference: a "
                  "constant predictor at 1.0)")
    dev = m["device"]
    lin0 = _linear_on_current_input(main)
    if rep.verdict.computes:
        cverdict = (f"device adds information beyond its input here (p = "
                    f"{rep.verdict.p_value:.3g}); NRMSE {dev.test_nrmse:.3f}")
    else:
        cverdict = (f"not evidence of computation: device NRMSE {dev.test_nrmse:.3f} is at the "
                    f"{rep.verdict.device_level} level; a linear regression on the current "
                    f"input alone scores {lin0:.3f}, the best input-only control "
                    f"{m[rep.verdict.best_input_only].test_nrmse:.3f}")
    out.append(results.record(
        "narma_nrmse_device", dev.test_nrmse, "1", list(dev.ci), claim=claim, verdict=cverdict,
        note=f"RMSE/std on the test block, block-bootstrap 95 % CI; ridge lambda by time-series "
             f"CV ({dev.info.get('lam'):.3g}); lambda=1e-6 as the paper: "
             f"{m['device_paper_lambda'].test_nrmse:.4f}; min-max form "
             f"{dev.test_nrmse_minmax:.4f} beside the constant predictor's "
             f"{rep.constant_minmax:.4f}; {src}"))
    for r in runs:
        if r is main:
            continue
        d = r.report.models["device"]
        out.append(results.record(
            f"narma_nrmse_device_{r.encoding}", d.test_nrmse, "1", list(d.ci),
            verdict=r.report.verdict.text.split(";")[0],
            note=f"{r.encoding} encoding, source {r.source_kind}; RMSE/std, 95 % block "
                 f"bootstrap CI; min-max {d.test_nrmse_minmax:.4f} (constant "
                 f"{r.report.constant_minmax:.4f})"))
    for key, name in (("input_linear", "narma_nrmse_input_linear"),
                      ("constant", "narma_nrmse_constant")):
        x = m[key]
        out.append(results.record(name, x.test_nrmse, "1", list(x.ci),
                                  note=f"{key}: {x.info}; RMSE/std, 95 % block bootstrap CI"))
    if "esn" in m:
        x = m["esn"]
        out.append(results.record("narma_nrmse_esn", x.test_nrmse, "1", list(x.ci),
                                  note=f"software ESN tuned on validation: {x.info}"))
    out.append(results.record(
        "narma_device_beats_input", bool(rep.verdict.computes), "1",
        verdict=rep.verdict.text,
        note=f"paired block bootstrap of squared residuals, device + input vs "
             f"{rep.verdict.best_input_only}: p = {rep.verdict.p_value:.4g} "
             f"(alpha = {rep.params['alpha']}); {src}"))
    if main.mc:
        out.append(results.record(
            "narma_memory_capacity_device", main.mc["mc"], "1",
            note=f"sum of MC_k, k = 1..{len(main.mc['curve']) - 1}; shuffled-feature null 95th "
                 f"percentile {main.mc['null_q95']:.4f}"
                 + (f"; ESN {main.mc_esn['mc']:.3f}" if main.mc_esn else ""),
            verdict=("memory beyond the null" if main.mc["mc"] > main.mc["null_q95"]
                     else "no memory beyond the shuffled null")))
    if len(main.consistency):
        c = main.consistency.dropna()
        val = float(c.get("n_valid", c.mean() if len(c) else np.nan))
        out.append(results.record(
            "narma_consistency", val, "1",
            note="correlation of the valid-count response of two drives of one input from "
                 "different initial states (start temperature, input history), after the "
                 f"washout; mean over features {float(c.mean()) if len(c) else np.nan:.3f}",
            verdict="consistent response" if val > 0.5 else "weak or no consistent response"))
    if seeds is not None and len(seeds):
        for enc, g in seed_summary(seeds).groupby("encoding", sort=False):
            row = g[g["model"] == "device"].iloc[0]
            out.append(results.record(
                f"narma_nrmse_device_{enc}_over_seeds", float(row["mean"]), "1",
                [float(row["ci_low"]), float(row["ci_high"])],
                note=f"mean and 95 % t-interval over {int(row['n_seeds'])} seeds "
                     f"(new input, chip and resampling each)"))
    if sweep is not None and len(sweep):
        n_comp = int(sweep["computes"].sum())
        out.append(results.record(
            "narma_step_sweep_computes", n_comp, "1",
            note=f"of {len(sweep)} (encoding, step_s) points, how many had device + input "
                 f"beat the best input-only control (step_s / tau = "
                 f"{sorted(set(np.round(sweep['step_over_tau'], 3)))})"))
    return out


def _linear_on_current_input(r: EncodingRun) -> float:
    sp = r.report.split
    u, d = r.series.u, r.series.target
    m = ro.Ridge(1e-6).fit(u[sp.train, None], d[sp.train])
    return task.nrmse(d[sp.test], m.predict(u[sp.test, None]))
