"""Simulated fleets for the PUF evaluation, in virtual time (SIMULATED data, labelled so).

A fleet is ``n_chips`` chips of :mod:`asiclab.devices.simulated`, chip ``d`` of seed
``seed + d``: each has its own per-core critical voltages (chip offset V_0 with spread
``edge_sd_mV``, core offsets with spread ``core_sd_mV``, speed factors with spread ``speed_sd``).
The *no-variation control* fleet has these three set to zero: identical chips that differ only in
their random streams (nonces, droops, telemetry noise). Known truth of the model: at nominal
voltage every core of every chip hashes at one rate (per-core counts multinomial-uniform, chips
indistinguishable); near the edge the dead and erroring cores differ by chip.

Each chip runs the same challenge schedule: ``n_captures`` rounds, each round every challenge
voltage in order (dwell ``dwell_s`` after ``settle_s``), so that every challenge is captured
``n_captures`` times in the same thermal context on every chip. One capture dataset per fleet,
device names ``sim-BM1366-seed<s>`` (``-novar`` for the control). Chips are simulated in parallel
across processes (:class:`concurrent.futures.ProcessPoolExecutor`) when ``workers > 1``.

Real or emulated devices run the same schedule through the live sweep code:
:func:`live_plan` makes the :class:`~asiclab.capture.live.SweepPlan` (checked against the safety
envelope) and :func:`capture_live_fleet` runs :func:`asiclab.capture.live.run_live_capture` on
each device in turn and joins the captures into one fleet dataset with the device names; the
result goes to :mod:`asiclab.puf.evaluate` like a simulated fleet (or is saved and given to the
notebook with ``source = "file"``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import xarray as xr

from asiclab import dataset
from asiclab.devices.simulated import ChipModelParams, simulate_sweep
from asiclab.puf._errors import PufInputError

__all__ = ["VARIATION_FIELDS", "capture_live_fleet", "live_plan", "no_variation", "schedule",
           "simulate_fleet"]

#: The chip-to-chip and core-to-core variation constants of the model; zero in the control.
VARIATION_FIELDS = ("edge_sd_mV", "core_sd_mV", "speed_sd")


def no_variation(params: ChipModelParams | None = None) -> ChipModelParams:
    """The model constants with every variation parameter set to zero (identical chips)."""
    p = ChipModelParams() if params is None else params
    return dataclasses.replace(p, **dict.fromkeys(VARIATION_FIELDS, 0.0))


def schedule(challenges_mV: Sequence[float], n_captures: int) -> list[float]:
    """Voltage order of one chip: ``n_captures`` rounds of every challenge [mV]."""
    return [float(v) for _ in range(int(n_captures)) for v in challenges_mV]


def _one_chip(args: tuple[int, list[float], float, float, float, dict[str, Any], float]
              ) -> xr.Dataset:
    seed, volts, freq, dwell, settle, pdict, diff = args
    return simulate_sweep(seed, volts, freq, dwell, settle, params=ChipModelParams(**pdict),
                          ticket_difficulty=diff, telemetry_interval_s=max(dwell, 3.0))


def simulate_fleet(n_chips: int, challenges_mV: Sequence[float], *, n_captures: int = 4,
                   dwell_s: float = 60.0, settle_s: float = 30.0, seed: int = 0,
                   variation: bool = True, frequency_MHz: float = 485.0,
                   ticket_difficulty: float = 1.0, params: ChipModelParams | None = None,
                   workers: int = 1, progress: bool = False) -> xr.Dataset:
    """Simulate a fleet of chips answering every challenge ``n_captures`` times.

    Parameters
    ----------
    n_chips : int
        Chips in the fleet (>= 2); chip ``d`` has seed ``seed + d``.
    challenges_mV : sequence of float
        Challenge core voltages [mV].
    n_captures : int
        Captures of each challenge per chip (>= 2: enrollment and verification).
    dwell_s : float
        Measurement time per capture [s] (virtual).
    settle_s : float
        Settling time before each capture [s] (virtual; its events are kept with op index -1).
    seed : int
        Seed of chip 0.
    variation : bool
        ``False``: the no-variation control (:func:`no_variation`).
    frequency_MHz : float
        Frequency of every challenge [MHz].
    ticket_difficulty : float
        Ticket difficulty [1] (1: about 100 nonces per second at 485 MHz).
    params : ChipModelParams, optional
        Model constants (default BM1366).
    workers : int
        Processes; 1 runs in this process. ``0``: one per CPU (at most ``n_chips``).
    progress : bool
        tqdm bar over chips.

    Returns
    -------
    xarray.Dataset
        One capture of the whole fleet, ``source_kind = "simulated"``, ``attrs["puf_fleet"]``
        (JSON: variation, seeds, challenges, n_captures, dwell).

    Raises
    ------
    PufInputError
        Bad fleet size, challenges or capture count.
    """
    from tqdm.auto import tqdm

    if isinstance(n_chips, bool) or not isinstance(n_chips, (int, np.integer)) or n_chips < 2:
        raise PufInputError(f"n_chips must be an integer >= 2, got {n_chips!r}")
    if isinstance(n_captures, bool) or not isinstance(n_captures, (int, np.integer)) \
            or n_captures < 2:
        raise PufInputError(f"n_captures must be an integer >= 2, got {n_captures!r}")
    ch = [float(v) for v in challenges_mV]
    if not ch or len(set(ch)) != len(ch):
        raise PufInputError("challenges_mV must be a non-empty list of distinct voltages")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise PufInputError(f"seed must be a non-negative integer, got {seed!r}")
    base = ChipModelParams() if params is None else params
    p = base if variation else no_variation(base)
    volts = schedule(ch, n_captures)
    jobs = [(int(seed) + d, volts, float(frequency_MHz), float(dwell_s), float(settle_s),
             p.to_dict(), float(ticket_difficulty)) for d in range(int(n_chips))]
    n_workers = (os.cpu_count() or 1) if workers == 0 else int(workers)
    n_workers = max(1, min(n_workers, int(n_chips)))
    bar = tqdm(total=len(jobs), disable=not progress, desc="simulated fleet", unit="chip")
    try:
        if n_workers == 1:
            parts = []
            for j in jobs:
                parts.append(_one_chip(j))
                bar.update(1)
        else:
            with ProcessPoolExecutor(n_workers) as ex:
                parts = []
                for ds in ex.map(_one_chip, jobs):
                    parts.append(ds)
                    bar.update(1)
    finally:
        bar.close()
    tag = "" if variation else "-novar"
    meta = {"variation": bool(variation), "seeds": [j[0] for j in jobs],
            "challenges_mV": ch, "n_captures": int(n_captures), "dwell_s": float(dwell_s),
            "settle_s": float(settle_s), "frequency_MHz": float(frequency_MHz),
            "ticket_difficulty": float(ticket_difficulty),
            "variation_params": {k: getattr(p, k) for k in VARIATION_FIELDS}}
    fleet = dataset.concat_captures(parts, attrs={
        "title": f"Simulated {p.model} PUF fleet of {n_chips} chips"
                 f"{'' if variation else ' (no-variation control)'}",
        "puf_fleet": json.dumps(meta, sort_keys=True)})
    names = np.array([f"sim-{p.model}{tag}-seed{j[0]}" for j in jobs], dtype=object)
    return fleet.assign(device_name=("device", names, fleet["device_name"].attrs))


def live_plan(challenges_mV: Sequence[float], n_captures: int, *, frequency_MHz: float = 485.0,
              settle_s: float = 30.0, dwell_s: float = 60.0, envelope: Any = None,
              override: bool = False) -> Any:
    """The PUF schedule as a live :class:`~asiclab.capture.live.SweepPlan`.

    Parameters
    ----------
    challenges_mV : sequence of float
        Challenge core voltages [mV] (distinct).
    n_captures : int
        Rounds over the challenges (>= 2).
    frequency_MHz, settle_s, dwell_s : float
        Frequency [MHz], settle and dwell of every point [s] (host clock).
    envelope : SafetyEnvelope, optional
        Safety limits (default: the BM1366 lab limits); a point outside is refused unless
        ``override``.
    override : bool
        Accept points outside the envelope.

    Raises
    ------
    PufInputError
        Bad challenges or capture count.
    asiclab.capture.live.UnsafePlanError
        A point outside the envelope.
    """
    from asiclab.capture import live

    ch = [float(v) for v in challenges_mV]
    if not ch or len(set(ch)) != len(ch):
        raise PufInputError("challenges_mV must be a non-empty list of distinct voltages")
    if isinstance(n_captures, bool) or not isinstance(n_captures, (int, np.integer)) \
            or n_captures < 2:
        raise PufInputError(f"n_captures must be an integer >= 2, got {n_captures!r}")
    pts = tuple(live.SweepPoint(v, float(frequency_MHz), float(settle_s), float(dwell_s))
                for v in schedule(ch, int(n_captures)))
    kw: dict[str, Any] = {"override": override}
    if envelope is not None:
        kw["envelope"] = envelope
    return live.SweepPlan(pts, **kw)


def capture_live_fleet(devices: Sequence[dict[str, Any]], plan: Any, *, journal_dir: Any,
                       names: Sequence[str] | None = None, progress: bool = False
                       ) -> xr.Dataset:
    """Run one PUF schedule on several live or emulated devices and join the captures.

    Parameters
    ----------
    devices : sequence of dict
        Per device, the keyword arguments of :func:`asiclab.capture.live.run_live_capture`
        (``mode`` included, e.g. ``{"mode": "serial", "serial_port": "/dev/ttyUSB0",
        "voltage_setter": ...}``). Devices run one after the other.
    plan : SweepPlan
        The schedule (:func:`live_plan`).
    journal_dir : path-like
        Folder for the journals (``puf_device<k>.journal``; must not exist yet).
    names : sequence of str, optional
        Device names (default: those the captures report).
    progress : bool
        tqdm bars of the live captures.

    Returns
    -------
    xarray.Dataset
        One fleet capture, ``attrs["puf_fleet"]`` holding the schedule and
        ``attrs["puf_devices_completed"]`` the devices that ran it to the end. An interrupted
        capture (Ctrl-C) stops the fleet there: the devices captured so far are returned with
        ``interrupted = 1`` (and the reported device names).

    Raises
    ------
    PufInputError
        Fewer than two devices, names of the wrong length, or mixed source kinds.
    """
    from pathlib import Path

    from asiclab.capture import live

    if len(devices) < 2:
        raise PufInputError("a fleet needs at least two devices")
    if names is not None and len(names) != len(devices):
        raise PufInputError("give one name per device")
    jd = Path(journal_dir)
    jd.mkdir(parents=True, exist_ok=True)
    parts = []
    for k, kw in enumerate(devices):
        kw = dict(kw)
        mode = kw.pop("mode")
        parts.append(live.run_live_capture(mode, plan, journal_path=jd / f"puf_device{k}.journal",
                                           progress=progress, **kw))
        if int(parts[-1].attrs.get("interrupted", 0)):  # Ctrl-C: stop, keep what was captured
            break
    kinds = {str(p.attrs.get("source_kind")) for p in parts}
    if len(kinds) > 1:
        raise PufInputError(f"the devices gave captures of different source kinds "
                            f"{sorted(kinds)}: evaluate hardware and emulated fleets apart")
    attrs = {"title": f"PUF fleet of {len(parts)} devices (live sweeps)",
             "puf_fleet": json.dumps({"variation": None, "schedule": plan.to_dict(),
                                      "devices": len(parts)}, sort_keys=True)}
    interrupted = int(parts[-1].attrs.get("interrupted", 0))
    attrs["puf_devices_completed"] = len(parts) - interrupted
    if interrupted:
        attrs["interrupted"] = 1
    out = dataset.concat_captures(parts, attrs=attrs)
    if names is not None and not interrupted:
        out = out.assign(device_name=("device", np.array(list(names), dtype=object),
                                      out["device_name"].attrs))
    return out
