"""Figures of ``04_tpf_energy.ipynb`` (every axis labelled with its unit)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from asiclab.plotting import new_figure
from asiclab.tpf.predict import SweepResult

__all__ = ["plot_auc_vs_round", "plot_efficiency", "plot_frontier", "plot_leak",
           "plot_mi_heatmap"]


def plot_auc_vs_round(sweep: SweepResult) -> Any:
    """Held-out AUC against round, per model, with 95 % CIs and the power band around 0.5."""
    fig, ax = new_figure(figsize=(8, 4))
    t = sweep.table
    for model, sub in t.groupby("model"):
        ax.errorbar(sub["round"], sub["auc"], yerr=1.96 * sub["auc_se"], fmt="o-", ms=3,
                    capsize=2, label=str(model))
    v = sweep.verdicts
    mde = v["min_detectable_excess"].to_numpy()
    ax.fill_between(v["round"], 0.5 - mde, 0.5 + mde, color="0.85",
                    label="smallest detectable excess (power 0.8)")
    ax.axhline(0.5, color="k", lw=0.8)
    ax.axvline(64.5, color="0.5", ls=":", lw=1)
    ax.set_xlabel("global round r (1-64: SHA#1 block 2, 65-128: SHA#2) [round]")
    ax.set_ylabel("held-out ROC AUC [1]")
    ax.set_xlim(0, 129)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def plot_mi_heatmap(sweep: SweepResult) -> Any:
    """Mutual information of each state bit with the label, bit x round."""
    fig, ax = new_figure(figsize=(8, 4))
    mi = np.maximum(sweep.mi, 1e-7)
    im = ax.imshow(np.log10(mi), aspect="auto", origin="lower", cmap="viridis",
                   extent=(0, len(sweep.rounds), 0, mi.shape[0]), interpolation="nearest")
    step = max(1, len(sweep.rounds) // 16)
    ax.set_xticks(np.arange(len(sweep.rounds))[::step] + 0.5)
    ax.set_xticklabels([str(r) for r in sweep.rounds][::step], fontsize=7)
    ax.set_yticks(np.arange(0, 257, 32))
    ax.set_xlabel("global round r (swept rounds) [round]")
    ax.set_ylabel("state bit (a MSB = 0 ... h LSB = 255) [bit index]")
    cbar = fig.colorbar(im, ax=ax, label="log10 mutual information [log10 bit]")
    cbar.ax.set_xlabel("MI")
    return fig


def plot_frontier(front: pd.DataFrame, paper_saving: float) -> Any:
    """Energy per valid share against the fraction of shares kept, for every policy."""
    fig, ax = new_figure(figsize=(7, 4.5))
    styles = {"classifier": ("C0", "o-"), "random abort": ("C1", "s--"),
              "oracle": ("C2", "*"), "legitimate": ("C3", "D"), "no abort": ("k", "P")}
    for key, (colour, fmt) in styles.items():
        sub = front[front["policy"].str.startswith(key)]
        sub = sub[np.isfinite(sub["energy_ratio"])]
        if not len(sub):
            continue
        for i, (name, g) in enumerate(sub.groupby("policy", sort=False)):
            g = g.sort_values("recall")
            marker = fmt if key != "legitimate" else "DXv^"[i % 4]
            ax.plot(g["recall"], g["energy_ratio"], marker, color=colour, ms=5, label=str(name))
            if key == "classifier":
                ax.fill_between(g["recall"], g["energy_ratio_lo"], g["energy_ratio_hi"],
                                color=colour, alpha=0.2)
    ax.set_yscale("log")
    ax.axhline(1.0, color="k", lw=0.6)
    ax.annotate(f"paper: abort all at 5 of 64\n'{paper_saving:.2%} saving', 0 shares kept\n"
                "-> energy per share = infinity", xy=(0.0, ax.get_ylim()[1]), xytext=(0.03, 0.08),
                textcoords="axes fraction", fontsize=8, color="C4",
                arrowprops={"arrowstyle": "->", "color": "C4"})
    ax.set_xlabel("fraction of valid shares kept (recall) [1]")
    ax.set_ylabel("energy per valid share / no abort [1]")
    ax.set_xlim(-0.03, 1.03)
    ax.legend(fontsize=7, loc="lower right")
    fig.subplots_adjust(bottom=0.15)
    return fig


def plot_leak(leak: pd.DataFrame) -> Any:
    """Accuracy of the leaky and the leak-free setup against their majority rates."""
    fig, ax = new_figure(figsize=(6, 3.5))
    x = np.arange(len(leak))
    ax.bar(x - 0.2, leak["accuracy"], 0.4, label="MLP accuracy (held out, chronological)")
    ax.bar(x + 0.2, leak["majority_rate"], 0.4, label="majority rate", color="0.6")
    ax.set_xticks(x)
    ax.set_xticklabels(["leaky (paper)", "leak-free (past only)"])
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("setup [-]")
    ax.set_ylabel("accuracy [1]")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_efficiency(eff: dict[str, Any], claimed_MH_per_W: float = 2.93) -> Any:
    """Measured (or nominal) hashrate per watt beside the claimed 2.93 MH/W, log scale."""
    fig, ax = new_figure(figsize=(6, 3.5))
    vals = [eff["MH_per_W"], claimed_MH_per_W]
    ax.bar([0, 1], vals, color=["C0", "C4"])
    ax.set_yscale("log")
    ax.set_xticks([0, 1])
    ax.set_xticklabels([f"{eff['source_kind']}: {eff['J_per_TH']:.1f} J/TH",
                        "claim (arXiv:2601.09557)"])
    for i, v in enumerate(vals):
        ax.text(i, v * 1.2, f"{v:,.2f} MH/W", ha="center", fontsize=9)
    ax.set_ylim(1, max(vals) * 10)
    ax.set_xlabel("source [-]")
    ax.set_ylabel("hashrate per watt [MH/W]")
    return fig
