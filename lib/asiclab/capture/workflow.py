"""Capture: the library behind ``notebooks/01_capture.ipynb``.

A capture comes from one of these sources (parameter ``source``):

``sim``
    The simulated BM1366-class chip (:mod:`asiclab.devices.simulated`) swept over core voltages
    at one frequency, in virtual time. Labelled ``simulated``.
``import``
    An existing share log (:mod:`asiclab.capture.importers`), every share re-verified by SHA256d.
    Labelled ``imported``.
``live``
    A live sweep (:mod:`asiclab.capture.live`) in one of the modes ``live_mode``: ``stratum+axeos``
    (a real LV06/Bitaxe, or any Stratum miner), ``serial`` (a BM1366 on a UART), ``emulated``
    (emulated LV06 + AxeOS over loopback) or ``cpu`` (the host CPU as a null control). Journalled
    to ``<run_dir>/01_capture/live-<UTC time>.journal`` as it runs. Labelled ``hardware`` or
    ``emulated``.

The capture is saved as ``<run_dir>/01_capture/capture.nc``, where later notebooks of the same
run find it (:func:`capture_path`). The live parameters (:data:`LIVE_PARAM_NAMES`) are also the
options of ``asiclab capture``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from asiclab import AsiclabError, dataset
from asiclab.heartbeat.stats import rate_confidence_interval
from asiclab.params import Param

SOURCES = ("sim", "import", "live")
LIVE_MODES = ("stratum+axeos", "serial", "emulated", "cpu")
CAPTURE_FILE = Path("01_capture") / "capture.nc"


class CaptureError(AsiclabError):
    """A capture cannot be made from the given parameters."""


def _distinct(values: list[float]) -> str | None:
    return None if len(set(values)) == len(values) else "distinct values (no repeats)"


def _range_pair(values: list[float]) -> str | None:
    if len(values) != 2 or values[0] > values[1]:
        return "a pair [min, max] with min <= max"
    return None


def _listen_host(value: str) -> str | None:
    return None if value.strip() else "an address to listen on, e.g. '127.0.0.1' or '0.0.0.0'"


#: Parameters of ``01_capture.ipynb``.
PARAMS: dict[str, Param] = {
    "source": Param(str, "data source", choices=SOURCES),
    "seed": Param(int, "chip seed of the simulated chip (each seed is one chip)", min=0),
    "n_devices": Param(int, "number of simulated chips (seeds seed, seed+1, ...)", min=1, max=64),
    "voltages_mV": Param(list, "core-voltage sweep [mV], in the order applied", item=float,
                         min=800.0, max=1400.0, min_len=1, check=_distinct),
    "frequency_MHz": Param(float, "ASIC frequency [MHz]", min=50.0, max=1000.0),
    "dwell_s": Param(float, "time at each operating point [s] (sim: virtual chip time; live: "
                     "host wall-clock time)", min=1.0, max=1e7),
    "settle_s": Param(float, "settle time after each change, not analysed [s] (sim: virtual; "
                      "live: host time)", min=0.0, max=3600.0),
    "telemetry_interval_s": Param(float, "telemetry sampling / AxeOS polling interval [s]",
                                  min=0.1, max=600.0),
    "log_path": Param(str, "share log to import (source='import'); a relative path is read from "
                      "the directory `asiclab reproduce` started in (JupyterLab: the repository "
                      "root)", path=True),
    "log_format": Param(str, "format of the log", choices=("s9_stratum", "lv06_proofs",
                                                           "generic")),
    "lenient": Param(bool, "import: flag and count malformed rows instead of stopping"),
    # ---- live capture (source = "live"; also the options of `asiclab capture`)
    "live_mode": Param(str, "live capture mode", choices=LIVE_MODES),
    "sweep_frequencies_MHz": Param(list, "live: sweep frequencies [MHz] (outer loop; empty: "
                                   "frequency_MHz only)", item=float, min=50.0, max=1000.0,
                                   check=_distinct),
    "miner_url": Param(str, "live stratum+axeos: AxeOS address of the miner, e.g. "
                       "'http://192.168.1.50' ('' = Stratum only, no set points)"),
    "worker": Param(str, "live: Stratum worker name of the miner ('' = AxeOS stratumUser, else "
                    "the first miner to connect)"),
    "listen_host": Param(str, "live stratum+axeos: capture-server address; anything but "
                         "loopback needs allow_lan", check=_listen_host),
    "listen_port": Param(int, "live stratum+axeos: capture-server TCP port (0 = any free port)",
                         min=0, max=65535),
    "allow_lan": Param(bool, "live: let the capture server listen on the network"),
    "pool_difficulty": Param(float, "live stratum+axeos: share difficulty given to the miner [1]",
                             min=2.0**-32, max=2.0**48),
    "serial_port": Param(str, "live serial: serial device (e.g. /dev/ttyUSB0) or 'emulated'"),
    "emulator_time_scale": Param(float, "live emulated: emulated chip seconds per host second "
                                 "[1]", min=0.01, max=10000.0),
    "safety_voltage_mV": Param(list, "live: allowed core-voltage range [min, max] [mV]",
                               item=float, min=500.0, max=1600.0, check=_range_pair),
    "safety_frequency_MHz": Param(list, "live: allowed frequency range [min, max] [MHz]",
                                  item=float, min=10.0, max=1200.0, check=_range_pair),
    "max_temperature_C": Param(float, "live: chip temperature that aborts the sweep and restores "
                               "the miner's settings [degC]", min=30.0, max=110.0),
    "override_safety": Param(bool, "live: accept sweep points outside the safety range "
                             "(the temperature limit still applies)"),
}

#: Parameters of a live capture (``source = "live"``), also the options of ``asiclab capture``.
LIVE_PARAM_NAMES: tuple[str, ...] = (
    "live_mode", "voltages_mV", "frequency_MHz", "sweep_frequencies_MHz", "settle_s", "dwell_s",
    "telemetry_interval_s", "seed", "miner_url", "worker", "listen_host", "listen_port",
    "allow_lan", "pool_difficulty", "serial_port", "emulator_time_scale", "safety_voltage_mV",
    "safety_frequency_MHz", "max_temperature_C", "override_safety",
)

#: Default values of the live parameters (those of the notebook's parameters cell).
LIVE_DEFAULTS: dict[str, Any] = {
    "live_mode": "emulated", "voltages_mV": [1200.0], "frequency_MHz": 485.0,
    "sweep_frequencies_MHz": [], "settle_s": 60.0, "dwell_s": 600.0,
    "telemetry_interval_s": 3.0, "seed": 1, "miner_url": "", "worker": "",
    "listen_host": "127.0.0.1", "listen_port": 3333, "allow_lan": False,
    "pool_difficulty": 256.0, "serial_port": "", "emulator_time_scale": 20.0,
    "safety_voltage_mV": [1000.0, 1300.0], "safety_frequency_MHz": [200.0, 650.0],
    "max_temperature_C": 75.0, "override_safety": False,
}


def capture_path(run_dir: str | os.PathLike[str]) -> Path:
    """Where ``01_capture`` saves its capture inside a run directory."""
    return Path(run_dir) / CAPTURE_FILE


def live_params_spec() -> dict[str, Param]:
    """The specification of the live parameters (a subset of :data:`PARAMS`)."""
    return {k: PARAMS[k] for k in LIVE_PARAM_NAMES}


def live_journal_path(run_dir: str | os.PathLike[str]) -> Path:
    """A new journal file for a live capture in a run directory (never an existing one)."""
    import datetime as _dt

    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return capture_path(run_dir).parent / f"live-{stamp}.journal"


def make_capture(p: dict[str, Any], *, progress: bool = True, live_plot: bool = True
                 ) -> xr.Dataset:
    """Produce a capture dataset from validated ``01_capture`` parameters.

    Parameters
    ----------
    p : dict
        Output of ``asiclab.params.validate(..., PARAMS)``.
    progress : bool
        Show a progress bar over operating points.
    live_plot : bool
        ``source = "live"``: show the live rate/temperature plot (in a Jupyter kernel only).

    Returns
    -------
    xarray.Dataset
        A capture following :mod:`asiclab.dataset`'s schema.
    """
    if p["source"] == "sim":
        from asiclab.devices import simulated

        return simulated.simulate_sweep(
            p["seed"], p["voltages_mV"], frequency_MHz=p["frequency_MHz"], dwell_s=p["dwell_s"],
            settle_s=p["settle_s"], telemetry_interval_s=p["telemetry_interval_s"],
            n_devices=p["n_devices"], progress=progress)
    if p["source"] == "import":
        from asiclab.capture import importers

        if not p["log_path"]:
            raise CaptureError("source='import' needs log_path")
        path = Path(p["log_path"]).expanduser()
        if not path.is_file():
            raise CaptureError(f"log_path {str(path)!r}: no such file")
        return importers.import_log(path, p["log_format"], lenient=p["lenient"])
    if p["source"] == "live":
        from asiclab.capture import live

        return live.run_from_params(p, journal_path=live_journal_path(p["run_dir"]),
                                    progress=progress, live_plot=live_plot)
    raise CaptureError(f"unknown source {p['source']!r}")


def poisson_rate_ci(n: int, duration_s: float, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) confidence interval of a Poisson rate.

    Parameters
    ----------
    n : int
        Number of events.
    duration_s : float
        Observation time [s].
    level : float
        Confidence level.

    Returns
    -------
    (float, float)
        Lower and upper bound of the rate [1/s].

    See Also
    --------
    asiclab.heartbeat.stats.rate_confidence_interval : the interval for ``n`` inter-arrival
        intervals spanning ``T`` from the first to the last event (``2 lambda T ~ chi2(2n)``,
        upper bound from ``chi2(2n)`` rather than ``chi2(2n + 2)``); the right one when the time
        is measured between events rather than over a fixed observation window.

    References
    ----------
    F. Garwood, "Fiducial limits for the Poisson distribution", Biometrika 28 (1936) 437-442,
    doi:10.1093/biomet/28.3-4.437.
    """
    if duration_s <= 0:
        return (float("nan"), float("nan"))
    a = 1 - level
    lo = 0.0 if n == 0 else stats.chi2.ppf(a / 2, 2 * n) / 2
    hi = stats.chi2.ppf(1 - a / 2, 2 * n + 2) / 2
    return (float(lo / duration_s), float(hi / duration_s))


def summary_table(ds: xr.Dataset) -> pd.DataFrame:
    """Per device and operating point: set point, duration, valid/invalid counts, rate with CI.

    The rate is valid events per second of the operating point's duration from the ops table,
    with Garwood's exact 95 % CI; when the window is unknown (imported logs), it is the number of
    gaps between the first and last valid event over their span, with the exact gamma CI of
    :func:`asiclab.heartbeat.stats.rate_confidence_interval`.
    """
    rows = []
    dev, op, valid = (ds["device_index"].values, ds["op_index"].values,
                      ds["valid"].values.astype(bool))
    t = ds["t_host_ns"].values
    for k in range(ds.sizes["op"]):
        m = op == k
        d = int(ds["op_device_index"].values[k])
        t0, t1 = int(ds["op_t_start_ns"].values[k]), int(ds["op_t_end_ns"].values[k])
        m &= dev == d
        n_valid, n_invalid = int((m & valid).sum()), int((m & ~valid).sum())
        if t0 >= 0 and t1 > t0:  # a known window: n events counted in it (Garwood)
            dur = (t1 - t0) * 1e-9
            rate = n_valid / dur
            lo, hi = poisson_rate_ci(n_valid, dur)
        elif n_valid >= 2:  # window unknown: n - 1 gaps between first and last valid event
            tv = t[m & valid]
            dur = (tv.max() - tv.min()) * 1e-9
            if dur > 0:
                rate, lo, hi = rate_confidence_interval(n_valid - 1, dur)
            else:
                rate = lo = hi = float("nan")
        else:
            dur = rate = lo = hi = float("nan")
        rows.append({
            "device": d, "op": k, "voltage_set_mV": float(ds["op_voltage_set"].values[k]),
            "frequency_set_MHz": float(ds["op_frequency_set"].values[k]), "duration_s": dur,
            "n_valid": n_valid, "n_invalid": n_invalid,
            "invalid_fraction": n_invalid / max(n_valid + n_invalid, 1),
            "rate_per_s": rate,
            "rate_ci_low": lo, "rate_ci_high": hi,
        })
    return pd.DataFrame(rows)


def record_results(ds: xr.Dataset, table: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Record the capture's headline numbers in ``results.json``.

    Records the source kind, the event counts, and the valid-event rate of every operating point
    with its exact 95 % Poisson CI.

    Returns
    -------
    list of dict
        The recorded entries.
    """
    from asiclab import results

    table = summary_table(ds) if table is None else table
    valid = ds["valid"].values.astype(bool)
    scale = dataset.get_attr(ds, "emulator_time_scale")
    per = "" if scale is None or float(scale) == 1.0 else \
        f"; per host second, emulated chip time runs x{float(scale):g}"
    out = [
        results.record("source_kind", ds.attrs["source_kind"], "1",
                       note=f"device model {ds.attrs['device_model']}"),
        results.record("n_events", int(valid.size), "1", note="all events, valid or not"),
        results.record("n_valid", int(valid.sum()), "1", note="events that verified"),
        results.record("invalid_fraction", float((~valid).mean()) if valid.size else float("nan"),
                       "1", note="invalid / all events over the whole capture"),
    ]
    interrupted = dataset.get_attr(ds, "interrupted")
    if interrupted is not None:
        out.append(results.record(
            "interrupted", int(interrupted), "1",
            note="capture stopped early (1) or completed (0)" + (
                f": {reason}" if (reason := dataset.get_attr(ds, "stop_reason")) else "")))
    for _, row in table.iterrows():
        v = row["voltage_set_mV"]
        where = f"{v:.0f} mV" if np.isfinite(v) else f"op {int(row['op'])}"
        if np.isfinite(row["frequency_set_MHz"]):
            where += f", {row['frequency_set_MHz']:.0f} MHz"
        out.append(results.record(
            f"rate_dev{int(row['device'])}_op{int(row['op'])}", float(row["rate_per_s"]), "1/s",
            [float(row["rate_ci_low"]), float(row["rate_ci_high"])],
            note=f"valid-event rate at {where}; "
                 f"exact 95 % Poisson CI{per}"))
    return out
