"""Figures of ``notebooks/05_puf.ipynb`` (each stamped with its data source)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from asiclab import plotting
from asiclab.puf.evaluate import ChallengeResult
from asiclab.puf.responses import Responses

__all__ = ["plot_core_heatmap", "plot_distances", "plot_events_curve", "plot_realdata",
           "plot_vs_voltage"]


def _hist(ax: Any, c: ChallengeResult, title: str) -> None:
    g, i = c.genuine, c.impostor.ravel()
    hi = float(max(g.max(initial=0), i.max(initial=0))) or 1.0
    bins = np.linspace(0.0, hi * 1.02, 40)
    ax.hist(i, bins=bins, density=True, alpha=0.55, label=f"inter (impostor, n={i.size})")
    ax.hist(g, bins=bins, density=True, alpha=0.55, label=f"intra (genuine, n={g.size})")
    ax.set_title(f"{title}: {c.voltage_mV:g} mV, EER {c.eer:.2f}")
    ax.set_xlabel("distance to template [RMS Anscombe units]")
    ax.set_ylabel("density [1/unit]")
    ax.legend(fontsize=7)


def plot_distances(fleet: dict[float, ChallengeResult], control: dict[float, ChallengeResult],
                   nominal_mV: float, edge_mV: float, *, source_kind: str) -> Figure:
    """Intra- and inter-device distance histograms, nominal and edge, fleet and control."""
    fig, ax = plotting.new_figure(2, 2, figsize=(10, 7), constrained_layout=True)
    _hist(ax[0, 0], fleet[nominal_mV], "fleet")
    _hist(ax[0, 1], fleet[edge_mV], "fleet")
    _hist(ax[1, 0], control[nominal_mV], "no-variation control")
    _hist(ax[1, 1], control[edge_mV], "no-variation control")
    plotting.label_source(fig, source_kind, "control: simulated identical chips")
    return fig


def plot_vs_voltage(table: Any, control: Any, *, source_kind: str) -> Figure:
    """EER (95 % CI), uniqueness and reliability against the challenge voltage."""
    fig, ax = plotting.new_figure(1, 3, figsize=(13, 4), constrained_layout=True)
    for t, lab, ls in ((table, "fleet", "-"), (control, "no-variation control", "--")):
        v = t["voltage_mV"].to_numpy()
        ax[0].errorbar(v, t["eer"], yerr=[t["eer"] - t["eer_low"], t["eer_high"] - t["eer"]],
                       ls=ls, marker="o", capsize=3, label=lab)
        ax[1].plot(v, t["continuous_uniqueness"], ls=ls, marker="o", label=f"{lab}: continuous")
        ax[2].plot(v, t["uniqueness_pct"], ls=ls, marker="o", label=f"{lab}: uniqueness")
        ax[2].plot(v, t["reliability_pct"], ls=ls, marker="s", label=f"{lab}: reliability")
    ax[0].axhline(0.5, color="grey", lw=0.8, ls=":")
    ax[0].set_ylabel("EER [1]")
    ax[1].axhline(0.0, color="grey", lw=0.8, ls=":")
    ax[1].set_ylabel("(mean inter - mean intra) / mean inter [1]")
    ax[2].axhline(50, color="grey", lw=0.8, ls=":")
    ax[2].axhline(100, color="grey", lw=0.8, ls=":")
    ax[2].set_ylabel("binary metric [%] (ideal: 50 / 100)")
    for a in ax:
        a.set_xlabel("challenge core voltage [mV]")
        a.invert_xaxis()
        a.legend(fontsize=7)
    plotting.label_source(fig, source_kind, "control: simulated identical chips")
    return fig


def plot_core_heatmap(r: Responses, voltages_mV: list[float], *, source_kind: str,
                      n_enroll: int | None = None) -> Figure:
    """Per-core response per chip: mean valid hits per core over captures [events/s]."""
    fig, ax = plotting.new_figure(1, len(voltages_mV), figsize=(6 * len(voltages_mV), 4),
                                  constrained_layout=True, squeeze=False)
    for a, v in zip(ax[0], voltages_mV, strict=True):
        s = r.at(v)
        keep = np.ones(len(s), bool) if n_enroll is None else s.rep < n_enroll
        devs = sorted(set(s.device.tolist()))
        img = np.stack([(s.hits[keep & (s.device == d)]
                         / s.duration_s[keep & (s.device == d)][:, None]).mean(0) for d in devs])
        im = a.imshow(img, aspect="auto", interpolation="nearest", cmap="viridis")
        a.set_title(f"{v:g} mV")
        a.set_xlabel("core [index]")
        a.set_ylabel("chip [index in fleet]")
        cb = fig.colorbar(im, ax=a, label="valid hits per core [1/s]")
        cb.ax.set_xlabel("[1/s]", fontsize=7)
    plotting.label_source(fig, source_kind)
    return fig


def plot_events_curve(fleet: Any, control: Any, *, source_kind: str) -> Figure:
    """Identification accuracy (exact 95 % CI) and EER against events per capture."""
    fig, ax = plotting.new_figure(1, 2, figsize=(11, 4), constrained_layout=True)
    for c, lab, ls in ((fleet, "fleet", "-"), (control, "no-variation control", "--")):
        x = c["events_per_capture"].to_numpy()
        acc = c["ident_accuracy"].to_numpy()
        ax[0].errorbar(x, acc, yerr=[acc - c["ident_low"], c["ident_high"] - acc], ls=ls,
                       marker="o", capsize=3, label=lab)
        ax[1].plot(x, c["eer"], ls=ls, marker="o", label=lab)
    ax[0].axhline(float(fleet["ident_chance"].iloc[0]), color="grey", ls=":", label="chance 1/M")
    ax[0].set_ylabel("identification accuracy [1]")
    ax[1].axhline(0.5, color="grey", ls=":")
    ax[1].set_ylabel("EER [1]")
    for a in ax:
        a.set_xscale("log")
        a.set_xlabel("events per capture [1] (enrollment: n_enroll captures)")
        a.legend(fontsize=7)
    plotting.label_source(fig, source_kind, "control: simulated identical chips")
    return fig


def plot_realdata(rd: dict[str, Any]) -> Figure:
    """LV06 per-core histogram and the S9 candidate nonce fields, with uniformity p-values."""
    fig, ax = plotting.new_figure(1, 3, figsize=(14, 4), constrained_layout=True)
    lc = rd["lv06_cores"]
    ax[0].bar(np.arange(lc.n_bins), lc.counts, width=1.0)
    ax[0].axhline(lc.n_events / lc.n_bins, color="grey", ls=":", label="uniform")
    ax[0].set_title(f"LV06: {lc.n_events} shares, uniform p = {lc.p_value:.2g}")
    ax[0].set_xlabel("BM1366 core = (bswap32(nonce) >> 25) & 0x7f [index]")
    ax[0].set_ylabel("shares [1]")
    ax[0].legend(fontsize=7)
    for a, h in zip(ax[1:], rd["s9_fields"], strict=True):
        a.bar(np.arange(h.n_bins), h.counts, width=1.0)
        a.axhline(h.n_events / h.n_bins, color="grey", ls=":", label="uniform")
        a.set_title(f"S9: {h.label}\n{h.n_events} shares, uniform p = {h.p_value:.2g}",
                    fontsize=9)
        a.set_xlabel("nonce field value [1] (chip mapping not verified)")
        a.set_ylabel("shares [1]")
        a.legend(fontsize=7)
    plotting.label_source(fig, "imported", "real S9 and LV06 logs")
    return fig
