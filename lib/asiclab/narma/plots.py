"""Figures of ``03_narma10.ipynb`` (axes labelled with units; callers stamp the data source)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from asiclab.narma.analysis import PAPER_NRMSE, NarmaReport
from asiclab.narma.task import NarmaSeries
from asiclab.plotting import new_figure

__all__ = ["plot_consistency", "plot_esn_curve", "plot_memory_capacity", "plot_nrmse_bars",
           "plot_predictions", "plot_step_sweep", "plot_traces"]


def plot_traces(series: NarmaSeries, n: int = 200, start: int = 200) -> Figure:
    """Input u(t) and target y(t+1) over ``n`` steps."""
    fig, (a, b) = new_figure(2, 1, sharex=True, figsize=(8, 4.5))
    t = np.arange(start, min(start + n, len(series)))
    a.step(t, series.u[t], where="post", lw=0.9)
    a.set_ylabel("input u(t) [1]")
    b.plot(t, series.target[t], lw=0.9, color="C1")
    b.set_ylabel("target y(t+1) [1]")
    b.set_xlabel("step t [steps]")
    fig.suptitle("NARMA-10 input and target")
    return fig


def plot_predictions(report: NarmaReport, models: tuple[str, ...] = ("device",),
                     n: int = 300) -> Figure:
    """Test-block target against the predictions of some models."""
    fig, ax = new_figure(figsize=(8, 3.5))
    d = report.target_test[:n]
    t = np.arange(report.split.test.start, report.split.test.start + d.size)
    ax.plot(t, d, color="black", lw=1.2, label="target")
    for name in models:
        m = report.models[name]
        ax.plot(t, m.prediction[:n], lw=0.9, label=f"{name} (NRMSE {m.test_nrmse:.3f})")
    ax.set_xlabel("step t [steps]")
    ax.set_ylabel("y(t+1) [1]")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def plot_nrmse_bars(report: NarmaReport, title: str = "") -> Figure:
    """Test NRMSE (RMSE/std) with 95 % CIs of every model, the constant level and the paper."""
    t = report.table()
    fig, ax = new_figure(figsize=(8, 4))
    x = np.arange(len(t))
    err = np.vstack([t["test_nrmse"] - t["ci_low"], t["ci_high"] - t["test_nrmse"]])
    colours = ["tab:red" if k.startswith("device") or k.endswith("device") else "tab:blue"
               for k in t.index]
    ax.bar(x, t["test_nrmse"], yerr=np.clip(err, 0, None), color=colours, capsize=3)
    ax.axhline(1.0, color="grey", ls="--", lw=1, label="constant predictor (1.0)")
    ax.axhline(PAPER_NRMSE, color="C2", ls=":", lw=1.5, label=f"paper {PAPER_NRMSE}")
    ax.set_xticks(x)
    ax.set_xticklabels(t.index, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("test NRMSE = RMSE / std [1]")
    ax.set_xlabel("model (red: uses device features)")
    ax.set_ylim(0, max(1.15, float(t["ci_high"].max()) * 1.05))
    ax.legend(fontsize=8, loc="upper right")
    if title:
        ax.set_title(title)
    fig.subplots_adjust(bottom=0.34)  # room for the rotated names and the source label
    return fig


def plot_esn_curve(curve: pd.DataFrame, reference: dict[str, float] | None = None) -> Figure:
    """Test NRMSE of the tuned ESN against its size, with horizontal reference levels."""
    fig, ax = new_figure(figsize=(6, 4))
    ax.plot(curve["n_units"], curve["test_nrmse"], "o-", label="ESN (tuned on validation)")
    for i, (name, v) in enumerate((reference or {}).items()):
        ax.axhline(v, ls="--", lw=1, color=f"C{i + 1}", label=f"{name} {v:.3f}")
    ax.set_xscale("log")
    ax.set_xlabel("reservoir size N [units]")
    ax.set_ylabel("test NRMSE = RMSE / std [1]")
    ax.legend(fontsize=8)
    return fig


def plot_memory_capacity(curves: dict[str, dict[str, Any]]) -> Figure:
    """MC_k against delay k for several feature sets, with their shuffled-null 95th percentiles.
    """
    fig, ax = new_figure(figsize=(7, 4))
    for i, (name, mc) in enumerate(curves.items()):
        k = np.arange(len(mc["curve"]))
        ax.plot(k, mc["curve"], "o-", ms=3, color=f"C{i}",
                label=f"{name} (MC = {mc['mc']:.2f})")
        if np.all(np.isfinite(mc.get("null_curve_q95", [np.nan]))):
            ax.plot(k, mc["null_curve_q95"], ":", color=f"C{i}", lw=1)
    ax.set_xlabel("delay k [steps]")
    ax.set_ylabel("MC_k = r^2(u(t-k), readout) [1]")
    ax.set_ylim(-0.02, 1.05)
    ax.legend(fontsize=8, title="dotted: shuffled-feature null, 95th pct.", title_fontsize=7)
    return fig


def plot_consistency(fa: pd.DataFrame, fb: pd.DataFrame, feature: str = "n_valid",
                     washout: int = 0, n: int = 200) -> Figure:
    """Two drives of one input from different initial states: the feature's responses."""
    fig, (a, b) = new_figure(1, 2, figsize=(10, 3.5), gridspec_kw={"width_ratios": [2, 1]})
    t = np.arange(washout, min(washout + n, len(fa)))
    a.plot(t, fa[feature].to_numpy()[t], lw=0.9, label="drive A")
    a.plot(t, fb[feature].to_numpy()[t], lw=0.9, label="drive B (other start state)")
    a.set_xlabel("step t [steps]")
    a.set_ylabel(f"{feature} per step")
    a.legend(fontsize=8)
    x, y = fa[feature].to_numpy()[washout:], fb[feature].to_numpy()[washout:]
    b.plot(x, y, ".", ms=2, alpha=0.5)
    r = float(np.corrcoef(x, y)[0, 1]) if np.std(x) > 0 and np.std(y) > 0 else float("nan")
    b.set_title(f"r = {r:.3f}", fontsize=9)
    b.set_xlabel(f"{feature}, drive A")
    b.set_ylabel(f"{feature}, drive B")
    return fig


def plot_step_sweep(sweep: pd.DataFrame) -> Figure:
    """Physical encodings: test NRMSE against step_s / tau, beside the input-only controls."""
    fig, ax = new_figure(figsize=(7, 4))
    for i, (enc, g) in enumerate(sweep.groupby("encoding")):
        ax.plot(g["step_over_tau"], g["device"], "o-", color=f"C{i}", label=f"{enc}: device")
        ax.plot(g["step_over_tau"], g["device_plus_input"], "s--", color=f"C{i}",
                label=f"{enc}: device + input")
    best = sweep.groupby("step_over_tau")[["input_linear", "input_quadratic"]].mean().min(axis=1)
    ax.plot(best.index, best.to_numpy(), "k^:", label="best input-only")
    ax.axhline(1.0, color="grey", ls="--", lw=1)
    ax.axhline(PAPER_NRMSE, color="C2", ls=":", lw=1.5, label=f"paper {PAPER_NRMSE}")
    ax.set_xscale("log")
    ax.set_xlabel("step_s / thermal tau [1]")
    ax.set_ylabel("test NRMSE = RMSE / std [1]")
    ax.legend(fontsize=7)
    return fig
