"""Figures of ``notebooks/01_capture.ipynb``: rates, counts, inter-arrival times and telemetry.

Every figure names the capture's source kind (simulated / emulated / hardware / imported) in its
title, has units on its axes, and is saved by the notebook with :func:`asiclab.plotting.savefig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from asiclab import dataset
from asiclab.capture.workflow import summary_table

__all__ = ["plot_counts", "plot_interarrival_histogram", "plot_rate", "plot_telemetry"]


def _source_label(ds: xr.Dataset) -> tuple[str, str]:
    kind = ds.attrs["source_kind"]
    seed = dataset.get_attr(ds, "seed")
    src = dataset.get_attr(ds, "source_file")
    detail = f"seed {seed}" if seed is not None else (Path(src).name if src else "")
    scale = dataset.get_attr(ds, "emulator_time_scale")
    if scale is not None and float(scale) != 1.0:
        detail += f", chip time x{float(scale):g}"
    return kind, detail


def _x_axis(table: pd.DataFrame) -> tuple[np.ndarray, str]:
    if table["voltage_set_mV"].notna().all() and len(table):
        return table["voltage_set_mV"].to_numpy(), "core voltage, set [mV]"
    return table["op"].to_numpy(), "operating point [index]"


def plot_rate(ds: xr.Dataset) -> Any:
    """Valid event rate per operating point with 95 % CIs, and the invalid fraction."""
    from asiclab import plotting

    table = summary_table(ds)
    fig, (ax1, ax2) = plotting.new_figure(1, 2, figsize=(9, 3.6))
    x, xlabel = _x_axis(table)
    for d, sub in table.groupby("device"):
        xs = x[sub.index]
        r = sub["rate_per_s"].to_numpy()
        yerr = np.vstack([r - sub["rate_ci_low"], sub["rate_ci_high"] - r])
        ax1.errorbar(xs, r, yerr=yerr, fmt="o-", capsize=2, label=f"device {d}")
        ax2.plot(xs, 100 * sub["invalid_fraction"], "s-", label=f"device {d}")
    ax1.set_xlabel(xlabel)
    ax1.set_ylabel("valid event rate [1/s]")
    ax1.set_title("Event rate per operating point (95 % CI)")
    ax2.set_xlabel(xlabel)
    ax2.set_ylabel("invalid events [%]")
    ax2.set_title("Hardware errors / invalid shares")
    if table["device"].nunique() > 1:
        ax1.legend()
    plotting.label_source(fig, *_source_label(ds))
    fig.tight_layout()
    return fig


def plot_counts(ds: xr.Dataset) -> Any:
    """Valid and invalid event counts per operating point (stacked bars)."""
    from asiclab import plotting

    table = summary_table(ds)
    fig, ax = plotting.new_figure()
    labels = [f"{v:.0f}" if np.isfinite(v) else str(k)
              for v, k in zip(table["voltage_set_mV"], table["op"], strict=True)]
    pos = np.arange(len(table))
    ax.bar(pos, table["n_valid"], label="valid")
    ax.bar(pos, table["n_invalid"], bottom=table["n_valid"], label="invalid")
    ax.set_xticks(pos, labels, rotation=45)
    ax.set_xlabel("operating point (core voltage [mV])" if np.isfinite(
        table["voltage_set_mV"]).all() else "operating point [index]")
    ax.set_ylabel("events [count]")
    ax.set_title("Valid and invalid events per operating point")
    ax.legend()
    plotting.label_source(fig, *_source_label(ds))
    fig.tight_layout()
    return fig


def plot_interarrival_histogram(ds: xr.Dataset, *, bins: int = 60) -> Any:
    """Histogram of normalised inter-arrival times per operating point, against Exp(1).

    Intervals are divided by their mean so operating points of different rates share an axis;
    a Poisson process gives the exponential density ``exp(-x)`` (dashed).
    """
    from asiclab import plotting

    fig, ax = plotting.new_figure()
    gaps = dataset.inter_arrival_times(ds)
    edges = np.linspace(0, 8, bins + 1)
    table = summary_table(ds).set_index("op")
    for (d, o), iat in gaps.items():
        if iat.size < 20:
            continue
        label = (f"{table.loc[o, 'voltage_set_mV']:.0f} mV" if o in table.index
                 and np.isfinite(table.loc[o, "voltage_set_mV"]) else f"op {o}")
        if ds.sizes["device"] > 1:
            label = f"dev {d}, {label}"
        ax.hist(iat / iat.mean(), bins=edges, density=True, histtype="step", label=label)
    xx = np.linspace(0, 8, 200)
    ax.plot(xx, np.exp(-xx), "k--", label="Poisson: Exp(1)")
    ax.set_yscale("log")
    ax.set_xlabel("inter-arrival time / mean [1]")
    ax.set_ylabel("probability density [1]")
    ax.set_title("Inter-arrival times (valid events)")
    ax.legend(ncol=2)
    plotting.label_source(fig, *_source_label(ds))
    fig.tight_layout()
    return fig


def plot_telemetry(ds: xr.Dataset) -> Any:
    """Telemetry traces: temperature, power, core voltage and hashrate against time."""
    from asiclab import plotting

    fig, axes = plotting.new_figure(4, 1, figsize=(7.5, 7.5), sharex=True)
    t_all = ds["tel_t_host_ns"].values
    if t_all.size == 0:
        for ax in axes:
            ax.set_axis_off()
        axes[0].text(0.5, 0.5, "no telemetry in this capture", ha="center",
                     transform=axes[0].transAxes)
        plotting.label_source(fig, *_source_label(ds))
        return fig
    t0 = t_all.min()
    series = [("temperature", "chip temperature [degC]"), ("power", "power [W]"),
              ("voltage_measured", "core voltage [mV]"), ("hashrate", "hashrate [GH/s]")]
    for d in range(ds.sizes["device"]):
        m = ds["tel_device_index"].values == d
        t = (t_all[m] - t0) * 1e-9
        for ax, (name, _) in zip(axes, series, strict=True):
            ax.plot(t, ds[name].values[m], label=f"device {d}")
            if name == "voltage_measured":
                ax.plot(t, ds["voltage_set"].values[m], "--", lw=0.8, label=f"set, device {d}")
    for ax, (_, label) in zip(axes, series, strict=True):
        ax.set_ylabel(label)
    axes[-1].set_xlabel("time since first sample [s]")
    axes[0].set_title("Telemetry")
    axes[2].legend(ncol=2)
    plotting.label_source(fig, *_source_label(ds))
    fig.tight_layout()
    return fig


