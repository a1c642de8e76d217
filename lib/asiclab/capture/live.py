"""Live capture: voltage/frequency sweeps of a real, emulated or CPU miner, journalled as they run.

A live capture applies a :class:`SweepPlan` (operating points, each with a settle and a dwell
time) to one miner and records every share or nonce with host timestamps, plus telemetry, in a
crash-safe journal (:mod:`asiclab.capture.journal`). The capture dataset is recovered from that
journal at
the end (:func:`asiclab.capture.journal.recover`), so what the dataset holds is exactly what was
journalled, and a crash loses at most the last flush interval (``asiclab recover`` turns the
journal of a crashed run into a capture).

Modes (:func:`run_live_capture`)
--------------------------------
``stratum+axeos``
    A real miner (Lucky Miner LV06, Bitaxe) points its pool at the local Stratum capture server
    (:class:`asiclab.capture.server.ThreadedCaptureServer`); set points go through its
    AxeOS HTTP API (``miner_url``) with PATCH + restart + read-back inside a
    :class:`asiclab.devices.axeos.SweepGuard` (safety envelope, overheat watch, original settings
    restored at the end, on error and on Ctrl-C); AxeOS telemetry is polled into the journal.
    Without ``miner_url`` (an Antminer S9 or any other Stratum miner) the capture is Stratum only:
    the operating points are time windows whose set values are unknown (NaN; the plan's set
    points are recorded as ``"not set"``), and every worker that connects -- also during a
    dwell -- is a device with its own windows (attribute ``op_windows_note``). With
    ``miner_url`` the windows belong to the controlled miner only.
``emulated``
    The same code path with an :class:`~asiclab.devices.emulated_lv06.EmulatedLV06` (Stratum side)
    and an :class:`~asiclab.devices.emulated_axeos.AxeOSEmulator` (HTTP side) sharing one
    :class:`~asiclab.devices.emulated_axeos.ChipHandle` over the simulated chip: only who listens
    on the other end of the sockets differs. ``time_scale`` runs the chip model faster than the
    host clock. Labelled ``emulated``.
``cpu``
    The host CPU mining SHA256d (:class:`~asiclab.devices.cpu_miner.CPUMiner`) against the capture
    server: a Poisson null control. A CPU has no core voltage or PLL, so the operating points are
    time windows with NaN set values. Labelled ``emulated``.
``serial``
    A BM1366 on a UART (:class:`~asiclab.devices.bm1366_uart.BM1366Driver`), bypassing WiFi and
    Stratum: synthetic jobs, nonces verified by SHA256d on the host, PLL frequency per point. The
    UART cannot set the core voltage: give ``voltage_setter`` (e.g. a lab supply) or keep one
    voltage in the plan (recorded as declared). ``serial_port="emulated"`` runs an
    :class:`~asiclab.devices.emulated_bm1366.EmulatedBM1366` on a pseudo-terminal (labelled
    ``emulated``).

Stratum steps
-------------
A :class:`SweepPoint` may also carry a job ``payload`` and/or a share ``difficulty`` (Stratum
modes): at the point's start the capture server switches every miner to a fresh clean job with
that payload and difficulty in one call
(:meth:`~asiclab.capture.server.StratumCaptureServer.step`), and the voltage / frequency are
changed only if they differ from the set point in force, so a run of such steps never restarts
an AxeOS miner (the input encodings of :mod:`asiclab.narma.driver`). The safety envelope,
restore-on-exit, journal and interruption handling are the same as for any sweep.

Times
-----
``settle_s`` and ``dwell_s`` are host (wall-clock) seconds, the clock of every timestamp in the
capture. Events and telemetry during settling are kept with ``op_index = -1``; each operating
point's window ``[op_t_start_ns, op_t_end_ns)`` is its dwell. With ``time_scale`` != 1 the
emulated chip lives ``time_scale`` times faster than the host clock, so rates per host second are
``time_scale`` times the chip's rates; the attributes ``emulator_time_scale`` and ``time_note``
say so.

Stopping
--------
Ctrl-C, the notebook's stop button (kernel interrupt) or ``SIGTERM`` to ``asiclab capture`` stop
the sweep: the open operating point is closed, the miner's original settings are restored and
confirmed, the miners and the server are stopped, the journal is closed, and the dataset of what
was captured is returned with the attribute ``interrupted = 1``. Any other error (a setting that
did not apply, an overheat, a miner that never connected) also restores and closes everything and
raises :class:`LiveCaptureError`, whose ``capture`` attribute holds the data captured so far.

Progress and live plot
----------------------
A tqdm bar runs over the plan's time. ``on_update`` callbacks receive a :class:`LiveStatus`
every ``update_interval_s`` (in the calling thread: raising ``KeyboardInterrupt`` from one stops
the sweep like Ctrl-C). :class:`LivePlot` is such a callback: in a Jupyter kernel it keeps one
figure of the valid-share rate and the chip temperature up to date in the cell's output; outside
a kernel it only keeps the history (a no-op for display, harmless under papermill).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import math
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from asiclab import AsiclabError
from asiclab.dataset import SOURCE_KINDS
from asiclab.devices.axeos import (
    AxeOSClient,
    OverheatError,
    SafetyEnvelope,
    SweepGuard,
    UnsafeSettingError,
    source_kind_of,
)

__all__ = [
    "MODES",
    "LiveCaptureError",
    "LiveError",
    "LivePlot",
    "LiveStatus",
    "SweepPlan",
    "SweepPoint",
    "UnsafePlanError",
    "run_from_params",
    "run_live_capture",
]

log = logging.getLogger(__name__)

#: Live capture modes.
MODES: tuple[str, ...] = ("stratum+axeos", "serial", "emulated", "cpu")

#: Emulator-only share difficulty of the emulated modes (a CPU search of ~10^6 hashes per share
#: would be too slow; see :mod:`asiclab.devices.emulated_lv06`).
EMULATOR_DIFFICULTY = 2.0**-20
#: Share difficulty of the CPU miner (~65,000 hashes per share).
CPU_DIFFICULTY = 2.0**-16
#: Recorded for a set point that a time-window capture (Stratum only, CPU) does not set.
NOT_SET = "not set"


class LiveError(AsiclabError):
    """A live capture cannot start or run (wrong mode or options, miner not connected...)."""


class UnsafePlanError(LiveError, UnsafeSettingError):
    """A sweep plan has operating points outside the safety envelope (nothing was sent)."""


class LiveCaptureError(LiveError):
    """A live capture stopped on an error; what was captured is kept.

    Attributes
    ----------
    capture : xarray.Dataset or None
        The data captured before the error (recovered from the journal), if any.
    journal_path : pathlib.Path or None
        The journal (``asiclab recover`` turns it into a capture as well).
    """

    def __init__(self, message: str, *, capture: xr.Dataset | None = None,
                 journal_path: Path | None = None) -> None:
        super().__init__(message)
        self.capture = capture
        self.journal_path = journal_path


# --------------------------------------------------------------------------------------------
# sweep plan
# --------------------------------------------------------------------------------------------
def _finite(name: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise LiveError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise LiveError(f"{name} must be finite and {'> 0' if positive else '>= 0'}, "
                        f"got {value!r}")
    return v


@dataclass(frozen=True)
class SweepPoint:
    """One operating point of a sweep.

    Parameters
    ----------
    voltage_mV : float
        Core voltage to set [mV].
    frequency_MHz : float
        ASIC clock to set [MHz].
    settle_s : float
        Time after the change before the point's window opens [s] (host clock; data kept with
        ``op_index = -1``).
    dwell_s : float
        Length of the point's window [s] (host clock).
    payload : bytes, optional
        Stratum modes: experiment payload of the job issued at the start of the point (in the
        coinbase, so it changes every header; see
        :meth:`asiclab.capture.server.StratumCaptureServer.step`).
    difficulty : float, optional
        Stratum modes: share difficulty given to every miner at the start of the point [1].

    Notes
    -----
    A point with a ``payload`` or a ``difficulty`` is a *Stratum step*: at its start the
    capture server switches every miner to a fresh clean job (and the new difficulty) in one
    call, so shares of the previous job received later are recorded as stale (error 21). Its
    voltage and frequency are applied only if they differ from the set point in force (the
    miner's original one, read at the start, or the last applied): a run of Stratum steps at
    one operating point never PATCHes or restarts an AxeOS miner. The serial mode refuses
    Stratum steps.
    """

    voltage_mV: float
    frequency_MHz: float
    settle_s: float = 0.0
    dwell_s: float = 60.0
    payload: bytes | None = None
    difficulty: float | None = None

    @property
    def stratum_step(self) -> bool:
        """True if the point sets a job payload or a share difficulty."""
        return self.payload is not None or self.difficulty is not None

    def __post_init__(self) -> None:
        if self.payload is not None:
            if not isinstance(self.payload, bytes | bytearray):
                raise LiveError(f"payload must be bytes, got {type(self.payload).__name__}")
            object.__setattr__(self, "payload", bytes(self.payload))
        if self.difficulty is not None:
            object.__setattr__(self, "difficulty", _finite("difficulty", self.difficulty,
                                                           positive=True))
        object.__setattr__(self, "voltage_mV", _finite("voltage_mV", self.voltage_mV,
                                                       positive=True))
        object.__setattr__(self, "frequency_MHz", _finite("frequency_MHz", self.frequency_MHz,
                                                          positive=True))
        object.__setattr__(self, "settle_s", _finite("settle_s", self.settle_s))
        object.__setattr__(self, "dwell_s", _finite("dwell_s", self.dwell_s, positive=True))


@dataclass(frozen=True)
class SweepPlan:
    """An ordered list of operating points, checked against a safety envelope on creation.

    Parameters
    ----------
    points : sequence of SweepPoint
        The points, in the order they are applied (at least one).
    envelope : SafetyEnvelope, optional
        Limits of voltage, frequency and chip temperature (default: the BM1366 lab defaults of
        :class:`~asiclab.devices.axeos.SafetyEnvelope`).
    override : bool
        Accept points outside the envelope (each is logged as a warning). The temperature limit
        is enforced regardless.

    Raises
    ------
    UnsafePlanError
        Some point lies outside the envelope and ``override`` is False; the message lists every
        offending point.
    """

    points: tuple[SweepPoint, ...]
    envelope: SafetyEnvelope = dataclasses.field(default_factory=SafetyEnvelope)
    override: bool = False

    def __post_init__(self) -> None:
        pts = tuple(self.points)
        if not pts:
            raise LiveError("a sweep plan needs at least one point")
        if not all(isinstance(p, SweepPoint) for p in pts):
            raise LiveError("points must be SweepPoint objects")
        if not isinstance(self.envelope, SafetyEnvelope):
            raise LiveError(f"envelope must be a SafetyEnvelope, got {self.envelope!r}")
        object.__setattr__(self, "points", pts)
        self.check(self.envelope)

    @classmethod
    def grid(cls, voltages_mV: Sequence[float], frequencies_MHz: Sequence[float], *,
             settle_s: float, dwell_s: float, envelope: SafetyEnvelope | None = None,
             override: bool = False) -> SweepPlan:
        """All combinations: for each frequency (outer loop), each voltage in the given order.

        Parameters
        ----------
        voltages_mV : sequence of float
            Core voltages [mV].
        frequencies_MHz : sequence of float
            Clocks [MHz].
        settle_s, dwell_s : float
            Settle and dwell time of every point [s].
        envelope : SafetyEnvelope, optional
            Safety limits (default BM1366 lab limits).
        override : bool
            Accept points outside the envelope.
        """
        if not len(voltages_mV) or not len(frequencies_MHz):
            raise LiveError("give at least one voltage and one frequency")
        pts = tuple(SweepPoint(v, f, settle_s, dwell_s)
                    for f in frequencies_MHz for v in voltages_mV)
        return cls(pts, envelope if envelope is not None else SafetyEnvelope(), override)

    def check(self, envelope: SafetyEnvelope) -> None:
        """Raise :class:`UnsafePlanError` if a point lies outside ``envelope`` (unless
        ``override``)."""
        problems = [f"point {k} ({p.voltage_mV:g} mV, {p.frequency_MHz:g} MHz): "
                    + "; ".join(envelope.violations(p.frequency_MHz, p.voltage_mV))
                    for k, p in enumerate(self.points)
                    if envelope.violations(p.frequency_MHz, p.voltage_mV)]
        if not problems:
            return
        if self.override:
            log.warning("safety envelope overridden for the sweep: %s", " | ".join(problems))
            return
        raise UnsafePlanError("refusing an unsafe sweep plan: " + " | ".join(problems)
                              + " (widen the envelope or pass override=True to force)")

    @property
    def total_s(self) -> float:
        """Sum of all settle and dwell times [s] (set-point changes take extra time)."""
        return float(sum(p.settle_s + p.dwell_s for p in self.points))

    def __len__(self) -> int:
        return len(self.points)

    def __iter__(self) -> Iterator[SweepPoint]:
        return iter(self.points)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (stored in the capture's ``parameters``)."""
        e = self.envelope
        pts = [dataclasses.asdict(p) for p in self.points]
        for d in pts:
            if d["payload"] is not None:
                d["payload"] = d["payload"].hex()
        return {"points": pts,
                "envelope": {"voltage_mV": list(e.voltage_mV),
                             "frequency_MHz": list(e.frequency_MHz),
                             "max_temperature_C": e.max_temperature_C},
                "override": self.override}


# --------------------------------------------------------------------------------------------
# status and live plot
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LiveStatus:
    """Snapshot of a running capture, passed to ``on_update`` callbacks.

    Attributes
    ----------
    t_s : float
        Host time since the capture started [s].
    phase : str
        ``"connect"``, ``"set"``, ``"settle"``, ``"dwell"`` or ``"done"``.
    point_index : int
        Current point (-1 before the first).
    n_points : int
        Points in the plan.
    voltage_mV, frequency_MHz : float
        Set point of the current point [mV], [MHz] (NaN when unknown).
    op_index : int
        Open operating point of the journal (-1 while settling or between points).
    n_events, n_valid : int
        Events (shares / nonces) recorded so far, and how many were valid.
    temperature_C : float
        Last chip temperature read [degC] (NaN without telemetry).
    hashrate_GHs : float
        Last hashrate the miner reported [GH/s] (NaN without telemetry).
    source_kind : str
        ``hardware``, ``emulated`` or ``unknown`` (a miner whose agent does not say).
    time_scale : float
        Emulated chip seconds per host second (1 for hardware).
    final : bool
        True for the last status, sent when the capture has ended.
    """

    t_s: float
    phase: str
    point_index: int
    n_points: int
    voltage_mV: float
    frequency_MHz: float
    op_index: int
    n_events: int
    n_valid: int
    temperature_C: float
    hashrate_GHs: float
    source_kind: str
    time_scale: float = 1.0
    final: bool = False


def _in_kernel() -> bool:
    """True inside a Jupyter (IPython) kernel, where rich display works."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the environment
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


class LivePlot:
    """Live rate / temperature figure of a running capture (an ``on_update`` callback).

    In a Jupyter kernel the figure is displayed once and then updated in place (an IPython
    display handle), at most every ``min_interval_s``; outside a kernel nothing is displayed and
    only the (bounded) history is kept, so the same code runs from the command line and under
    papermill.

    Parameters
    ----------
    min_interval_s : float
        Shortest time between two redraws [s] (host clock).
    rate_window_s : float
        Window of the moving valid-share rate [s] (host clock).
    max_history : int
        Most status samples kept (oldest dropped).
    display : bool, optional
        Force display on (True) or off (False); default: on inside a kernel.
    """

    def __init__(self, *, min_interval_s: float = 2.0, rate_window_s: float = 30.0,
                 max_history: int = 20000, display: bool | None = None) -> None:
        if not (math.isfinite(min_interval_s) and min_interval_s >= 0):
            raise LiveError(f"min_interval_s must be >= 0, got {min_interval_s!r}")
        if not (math.isfinite(rate_window_s) and rate_window_s > 0):
            raise LiveError(f"rate_window_s must be > 0, got {rate_window_s!r}")
        self.min_interval_s = float(min_interval_s)
        self.rate_window_s = float(rate_window_s)
        self.active = _in_kernel() if display is None else bool(display)
        self._hist: deque[tuple[float, int, float, int]] = deque(maxlen=int(max_history))
        self._source_kind = "hardware"
        self._time_scale = 1.0
        self._handle: Any = None
        self._last_draw = -math.inf
        self.n_draws = 0

    def __call__(self, status: LiveStatus) -> None:
        """Record one status; redraw if due (always for the final status)."""
        self._hist.append((status.t_s, status.n_valid, status.temperature_C, status.op_index))
        self._source_kind = status.source_kind
        self._time_scale = status.time_scale
        now = time.monotonic()
        if self.active and (status.final or now - self._last_draw >= self.min_interval_s):
            self._last_draw = now
            self._show()

    def history(self) -> dict[str, np.ndarray]:
        """The kept samples: ``t_s`` [s], ``n_valid`` [1], ``temperature_C`` [degC],
        ``rate_per_s`` (moving valid-share rate [1/s], host clock) and ``op_index``."""
        h = list(self._hist)
        t = np.array([x[0] for x in h], dtype=np.float64)
        n = np.array([x[1] for x in h], dtype=np.float64)
        rate = np.full(t.size, np.nan)
        if t.size > 1:
            j = np.searchsorted(t, t - self.rate_window_s, side="left")
            j = np.minimum(j, np.arange(t.size) - 1).clip(0)
            dt = t - t[j]
            ok = dt > 0
            rate[ok] = (n[ok] - n[j][ok]) / dt[ok]
        return {"t_s": t, "n_valid": n, "temperature_C": np.array([x[2] for x in h]),
                "rate_per_s": rate, "op_index": np.array([x[3] for x in h], dtype=np.int64)}

    def figure(self) -> Any:
        """A new matplotlib figure of the history (rate above, temperature below)."""
        import matplotlib.pyplot as plt
        from matplotlib.figure import Figure

        from asiclab import plotting

        h = self.history()
        with plt.style.context(str(plotting.style_path())):
            fig = Figure(figsize=(8.0, 4.2))
            ax1, ax2 = fig.subplots(2, 1, sharex=True)
            in_op = h["op_index"] >= 0
            ax1.plot(h["t_s"], h["rate_per_s"], color="0.6", lw=0.8, label="settling / change")
            ax1.plot(h["t_s"], np.where(in_op, h["rate_per_s"], np.nan), lw=1.4,
                     label="inside an operating point")
            unit = "per host second" if self._time_scale == 1 else \
                f"per host second; chip time x{self._time_scale:g}"
            ax1.set_ylabel(f"valid shares [1/s]\n({unit})")
            ax1.set_title(f"Live capture: valid-share rate over {self.rate_window_s:g} s "
                          "and chip temperature")
            ax1.legend(loc="lower left", fontsize=7)
            ax2.plot(h["t_s"], h["temperature_C"], color="C3")
            ax2.set_ylabel("chip temperature [degC]")
            ax2.set_xlabel("time since start [s]")
            for op in np.unique(h["op_index"][in_op]):
                ts = h["t_s"][h["op_index"] == op]
                for ax in (ax1, ax2):
                    ax.axvspan(ts.min(), ts.max(), color=f"C{op % 10}", alpha=0.08)
            plotting.label_source(fig, self._source_kind)
            fig.tight_layout()
        return fig

    def _show(self) -> None:
        from IPython.display import Image, display

        fig = self.figure()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        img = Image(data=buf.getvalue(), format="png")
        if self._handle is None:
            self._handle = display(img, display_id=True)
        else:
            self._handle.update(img)
        self.n_draws += 1


# --------------------------------------------------------------------------------------------
# backends
# --------------------------------------------------------------------------------------------
class _ConfirmingClient(AxeOSClient):
    """AxeOS client whose read-back polls every ``confirm_interval_s`` (1 s by default; the
    emulator, which restarts in a fraction of a second, is read back faster)."""

    def __init__(self, base_url: str, *, confirm_interval_s: float = 1.0, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self.confirm_interval_s = float(confirm_interval_s)

    def set_operating_point(self, *args: Any, **kw: Any) -> dict[str, Any]:
        kw.setdefault("confirm_interval_s", self.confirm_interval_s)
        return super().set_operating_point(*args, **kw)


class _ExpectedGapFilter(logging.Filter):
    """Drops the AxeOS poller's telemetry-gap warnings while a set-point change (restart) is
    under way: those gaps are expected and are recorded in the journal anyway."""

    def __init__(self) -> None:
        super().__init__()
        self.quiet = False

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.quiet and "telemetry gap" in record.getMessage())


class _Backend:
    """What a mode provides to the sweep (see :class:`_Sweep`)."""

    source_kind = "hardware"
    time_scale = 1.0
    journal: Any = None

    def expect_disruption(self, flag: bool) -> None:
        """A set-point change (restart) starts (True) or is over (False)."""

    def open(self, journal_path: Path, attrs: dict[str, Any], sweep: _Sweep) -> None:
        raise NotImplementedError

    def devices(self) -> list[int]:
        raise NotImplementedError

    def apply(self, point: SweepPoint, override: bool) -> tuple[float, float]:
        raise NotImplementedError

    def service(self, timeout_s: float) -> None:
        time.sleep(max(timeout_s, 0.0))

    def counters(self) -> tuple[int, int]:
        return 0, 0

    def telemetry(self) -> tuple[float, float]:
        return math.nan, math.nan

    def restore(self, exc: BaseException | None) -> dict[str, Any]:
        return {"settings_restored": -1}

    def stop_devices(self) -> None:
        """Stop miners and pollers (the journal stays open)."""

    def close_journal(self) -> None:
        raise NotImplementedError


class _StratumBackend(_Backend):
    """Capture server + optional AxeOS control + optional in-process miner."""

    def __init__(self, mode: str, plan: SweepPlan, *, miner_url: str, worker: str,
                 listen_host: str, listen_port: int, allow_lan: bool, pool_difficulty: float,
                 accept_suggested_difficulty: bool, telemetry_interval_s: float,
                 connect_timeout_s: float, confirm_timeout_s: float,
                 confirm_interval_s: float, time_scale: float, seed: int | None, chip: Any,
                 restart_delay_s: float, cpu_process: bool, fsync: bool,
                 max_line_rate: float = 100.0, job_interval_s: float = 30.0,
                 declared_kind: str | None = None,
                 emulator_options: Mapping[str, Any] | None = None) -> None:
        self.mode = mode
        self.emulator_options = dict(emulator_options or {})
        self.in_force: tuple[float, float] | None = None
        self.last_job: str | None = None
        self.max_line_rate = max_line_rate
        self.job_interval_s = job_interval_s
        self.declared_kind = declared_kind
        self.plan = plan
        self.miner_url = miner_url
        self.worker = worker
        self.listen_host, self.listen_port, self.allow_lan = listen_host, listen_port, allow_lan
        self.pool_difficulty = pool_difficulty
        self.accept_suggested = accept_suggested_difficulty
        self.telemetry_interval_s = telemetry_interval_s
        self.connect_timeout_s = connect_timeout_s
        self.confirm_timeout_s = confirm_timeout_s
        self.confirm_interval_s = confirm_interval_s
        self.time_scale = time_scale if mode == "emulated" else 1.0
        self.seed = seed
        self.chip = chip
        self.restart_delay_s = restart_delay_s
        self.cpu_process = cpu_process
        self.fsync = fsync
        self.source_kind = "emulated" if mode in ("emulated", "cpu") else "hardware"
        self.server: Any = None
        self.client: _ConfirmingClient | None = None
        self.poller: Any = None
        self.guard: SweepGuard | None = None
        self.axeos_emulator: Any = None
        self.miner_thread: Any = None
        self.miner: Any = None
        self.dev = -1
        self.last_row: dict[str, Any] | None = None
        self._gap_filter = _ExpectedGapFilter()
        self._axeos_log = logging.getLogger("asiclab.devices.axeos")

    def expect_disruption(self, flag: bool) -> None:
        self._gap_filter.quiet = flag

    # ---- start ----------------------------------------------------------------------------
    def open(self, journal_path: Path, attrs: dict[str, Any], sweep: _Sweep) -> None:
        from asiclab.capture.server import ThreadedCaptureServer

        host, port, allow_lan = self.listen_host, self.listen_port, self.allow_lan
        difficulty, accept = self.pool_difficulty, self.accept_suggested
        if self.mode == "emulated":
            from asiclab.devices.emulated_axeos import AxeOSEmulator, ChipHandle
            from asiclab.devices.simulated import SimulatedChip

            chip = self.chip if self.chip is not None else SimulatedChip(self.seed or 0)
            handle = chip if isinstance(chip, ChipHandle) else ChipHandle(chip)
            self.handle = handle
            self.axeos_emulator = AxeOSEmulator(handle, restart_delay_s=self.restart_delay_s
                                                ).start()
            self.miner_url = self.axeos_emulator.url
            self.worker = self.worker or "emulated-lv06"
            host, port, allow_lan = "127.0.0.1", 0, False
            difficulty, accept = EMULATOR_DIFFICULTY, True
        elif self.mode == "cpu":
            self.worker = self.worker or "cpu-miner"
            host, port, allow_lan = "127.0.0.1", 0, False
            difficulty, accept = CPU_DIFFICULTY, True
        forced_kind: str | None = "emulated" if self.mode in ("emulated", "cpu") else None
        if self.miner_url:
            self.client = _ConfirmingClient(self.miner_url, envelope=self.plan.envelope,
                                            confirm_interval_s=self.confirm_interval_s)
            try:
                info = self.client.info()
            except AsiclabError as exc:
                raise LiveError(f"cannot read the miner's AxeOS API at {self.miner_url}: {exc}"
                                ) from exc
            if source_kind_of(info) == "emulated":
                forced_kind = "emulated"
            self.worker = self.worker or str(info.get("stratumUser") or "")
            keep = ("ASICModel", "deviceModel", "version", "hostname", "stratumURL",
                    "stratumPort", "stratumUser", "frequency", "coreVoltage", "temp")
            attrs["miner_info"] = json.dumps({k: info.get(k) for k in keep if k in info},
                                             sort_keys=True, default=str)
            if info.get("ASICModel"):
                attrs["device_model"] = str(info["ASICModel"])
            attrs["miner_url"] = self.client.base_url
        # forced_kind None: inferred from the miners' agents (asiclab-... emulated, known
        # firmware hardware, anything else the declared kind, by default "unknown")
        self.source_kind = forced_kind or self.declared_kind or "unknown"
        attrs["server_difficulty"] = difficulty
        if self.client is None and self.mode == "stratum+axeos":
            attrs["op_windows_note"] = (
                "Stratum only: every worker that connected is a device with its own "
                "operating-point windows (time windows; nothing was set)")
        elif self.client is not None:
            attrs["op_windows_note"] = (
                f"the operating-point windows belong to worker {self.worker or '(first)'!r}, "
                "whose settings the sweep controls; other workers' shares have op_index -1")
        self.server = ThreadedCaptureServer(
            journal_path, host=host, port=port, allow_lan=allow_lan, difficulty=difficulty,
            accept_suggested_difficulty=accept, source_kind=forced_kind, attrs=attrs,
            seed=self.seed, fsync=self.fsync, max_requests_per_s=self.max_line_rate,
            job_interval_s=self.job_interval_s,
            unknown_agent_kind=self.declared_kind or "unknown").start()
        self.journal = self.server.server.journal
        self.journal.append_note("live_start", {"mode": self.mode, "host": host,
                                                "port": self.server.port})
        if self.mode == "emulated":
            from asiclab.devices.emulated_lv06 import EmulatedLV06

            self.miner = EmulatedLV06("127.0.0.1", self.server.port, chip=self.handle,
                                      seed=self.seed or 0, worker=self.worker,
                                      suggest_difficulty=EMULATOR_DIFFICULTY,
                                      time_scale=self.time_scale, **self.emulator_options)
            self.miner_thread = self.miner.thread().start()
        elif self.mode == "cpu":
            from asiclab.devices.cpu_miner import CPUMiner

            self.miner = CPUMiner("127.0.0.1", self.server.port, worker=self.worker,
                                  suggest_difficulty=CPU_DIFFICULTY,
                                  mode="process" if self.cpu_process else "thread")
            self.miner_thread = self.miner.thread().start()
        self._wait_for_miner(sweep)
        if self.client is not None:
            self._axeos_log.addFilter(self._gap_filter)
            self.poller = self.client.poll(
                self.telemetry_interval_s, on_row=self._on_row,
                on_gap=partial(self.journal.append_gap, device_index=self.dev))
            self.guard = SweepGuard(self.client, envelope=self.plan.envelope, poller=self.poller,
                                    confirm_timeout_s=self.confirm_timeout_s)
            self.guard.__enter__()
            assert self.guard.original is not None
            self.in_force = (self.guard.original.core_voltage_mV,
                             self.guard.original.frequency_MHz)
            self.journal.set_attrs(
                original_frequency_MHz=self.guard.original.frequency_MHz,
                original_voltage_mV=self.guard.original.core_voltage_mV)

    def _wait_for_miner(self, sweep: _Sweep) -> None:
        from asiclab.capture.server import UNATTRIBUTED

        where = f"stratum+tcp://{self.server.host}:{self.server.port}"
        who = f"worker {self.worker!r}" if self.worker else "any worker"
        sweep.say(f"capture server listening on {where}; waiting for the miner ({who})")
        deadline = time.monotonic() + self.connect_timeout_s
        while True:
            names = self.journal.devices
            if self.worker and self.worker in names:
                self.dev = names.index(self.worker)
                break
            if not self.worker:
                found = [i for i, n in enumerate(names) if n != UNATTRIBUTED]
                if found:
                    self.dev = found[0]
                    self.worker = names[self.dev]
                    break
            self._check_miner()
            if time.monotonic() > deadline:
                raise LiveError(
                    f"no miner authorized as {who} at {where} within {self.connect_timeout_s:g} s;"
                    " set the miner's pool to that address (stratum+tcp://<this host's LAN "
                    "address>:<port>) and its user to the worker name, and check the firewall")
            sweep.tick("connect")
            time.sleep(0.05)
        if self.miner_thread is not None:  # in-process miner: wait until it really mines
            while self.server.server.stats["submits"] == 0:
                self._check_miner()
                if time.monotonic() > deadline:
                    raise LiveError(f"the {self.mode} miner submitted nothing within "
                                    f"{self.connect_timeout_s:g} s")
                sweep.tick("connect")
                time.sleep(0.05)
        sweep.say(f"miner connected: worker {self.worker!r} is device {self.dev}")

    def _on_row(self, row: dict[str, Any]) -> None:
        self.last_row = row
        self.journal.append_telemetry(row, device_index=self.dev)

    def _check_miner(self) -> None:
        t = self.miner_thread
        if t is not None and not t.running:
            raise LiveError(f"the {self.mode} miner stopped: {t.error!r}")

    # ---- sweep -----------------------------------------------------------------------------
    def devices(self) -> list[int]:
        if self.client is not None or self.server is None:
            return [self.dev]  # the controlled miner
        from asiclab.capture.server import UNATTRIBUTED

        # time windows (Stratum only, CPU): every worker seen so far is a device of its own
        names = self.journal.devices
        return sorted({self.dev, *(i for i, n in enumerate(names) if n != UNATTRIBUTED)})

    def apply(self, point: SweepPoint, override: bool) -> tuple[float, float]:
        vf = (point.voltage_mV, point.frequency_MHz)
        if self.guard is None:
            vf = (math.nan, math.nan)  # no control: a time window (S9, any miner, CPU)
        elif not (point.stratum_step and self.in_force is not None
                  and abs(vf[0] - self.in_force[0]) <= 0.5
                  and abs(vf[1] - self.in_force[1]) <= 0.5):
            self.guard.set_operating_point(frequency_MHz=point.frequency_MHz,
                                           core_voltage_mV=point.voltage_mV, override=override)
            self.in_force = vf
        if point.stratum_step:  # job and difficulty switch together, after any restart
            self.last_job = self.server.step(point.payload, point.difficulty)
        return vf

    def service(self, timeout_s: float) -> None:
        time.sleep(max(timeout_s, 0.0))
        if self.guard is not None and self.guard.overheated:
            self.guard.check(self.last_row or {})  # raises OverheatError (settings restored)
        self._check_miner()

    def counters(self) -> tuple[int, int]:
        if self.server is None:
            return 0, 0
        st = self.server.server.stats
        return int(st["submits"]), int(st["accepted"])

    def telemetry(self) -> tuple[float, float]:
        row = self.last_row
        if row is None:
            return math.nan, math.nan
        return float(row["temperature"]), float(row["hashrate"])

    # ---- stop ------------------------------------------------------------------------------
    def restore(self, exc: BaseException | None) -> dict[str, Any]:
        if self.guard is None:
            return {"settings_restored": -1}
        out: dict[str, Any] = {}
        guard = self.guard
        self.guard = None
        try:
            guard.__exit__(type(exc) if exc is not None else None, exc, None)
        except OverheatError as err:  # seen only now: it was restored by the guard
            out["stop_reason"] = f"overheat: {err}"
        except AsiclabError as err:
            out["restore_error"] = str(err)
        assert guard.original is not None
        try:  # read back: did the miner really end at its original settings?
            now = self.client.operating_point() if self.client is not None else None
        except AsiclabError as err:
            out.update(settings_restored=-1, restore_error=f"read-back failed: {err}")
            return out
        ok = now is not None and abs(now.frequency_MHz - guard.original.frequency_MHz) <= 0.5 \
            and abs(now.core_voltage_mV - guard.original.core_voltage_mV) <= 0.5
        out["settings_restored"] = int(ok)
        if now is not None:
            out["final_frequency_MHz"] = now.frequency_MHz
            out["final_voltage_mV"] = now.core_voltage_mV
        if not ok:
            msg = (f"the miner did not return to its original settings {guard.original}; "
                   f"it reports {now}: check it by hand")
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
            out.setdefault("restore_error", msg)
        return out

    def stop_devices(self) -> None:
        errors = []
        if self.poller is not None:
            self.poller.stop(timeout_s=10.0)
        if self.miner_thread is not None:
            self.miner_thread.stop()
            try:
                self.miner_thread.join(30.0)
            except Exception as exc:  # keep going: the server must still close the journal
                errors.append(exc)
        if errors:
            raise LiveError(f"the in-process miner failed: {errors[0]!r}") from errors[0]

    def close_journal(self) -> None:
        self._axeos_log.removeFilter(self._gap_filter)
        if self.server is not None:
            self.server.stop()
        if self.axeos_emulator is not None:
            self.axeos_emulator.stop()


class _SerialBackend(_Backend):
    """BM1366 on a UART (or the pty emulator)."""

    def __init__(self, plan: SweepPlan, *, serial_port: str, voltage_setter: Any,
                 verify_difficulty: float | None, ramp_step_delay_s: float,
                 job_interval_s: float, time_scale: float, seed: int | None, fsync: bool,
                 source_kind: str | None) -> None:
        self.plan = plan
        self.port = serial_port
        self.voltage_setter = voltage_setter
        self.verify_difficulty = verify_difficulty
        self.ramp_step_delay_s = ramp_step_delay_s
        self.job_interval_s = job_interval_s
        self.seed = seed
        self.fsync = fsync
        self.emulator: Any = None
        self.driver: Any = None
        self.jobs: Any = None
        self.n_jobs = 0
        self.next_job = 0.0
        self.n_events = 0
        self.n_valid = 0
        self.chip_dev: dict[int, int] = {}
        self.emulated = serial_port == "emulated"
        self.time_scale = time_scale if self.emulated else 1.0
        self.source_kind = "emulated" if self.emulated else (source_kind or "hardware")
        if any(p.stratum_step for p in plan):
            raise LiveError("serial mode has no Stratum jobs: a plan point with a payload or a "
                            "difficulty needs a Stratum mode")
        voltages = {p.voltage_mV for p in plan}
        if not self.emulated and voltage_setter is None and len(voltages) > 1:
            raise LiveError(
                "serial mode cannot set the core voltage over the UART: give voltage_setter or "
                f"keep one voltage in the plan (got {sorted(voltages)} mV)")

    def open(self, journal_path: Path, attrs: dict[str, Any], sweep: _Sweep) -> None:
        from asiclab.capture.journal import Journal
        from asiclab.devices.bm1366_uart import BM1366Driver, SyntheticJobs

        url = self.port
        first = self.plan.points[0]
        if self.emulated:
            from asiclab.devices.emulated_bm1366 import EmulatedBM1366

            self.emulator = EmulatedBM1366(
                seed=self.seed or 0, nonce_difficulty=EMULATOR_DIFFICULTY,
                speedup=self.time_scale, voltage_mV=first.voltage_mV)
            url = self.emulator.port
            self.voltage_setter = self.emulator.set_voltage
            self.verify_difficulty = self.emulator.nonce_difficulty
            self.ramp_step_delay_s = 0.0
        attrs.update(source_kind=self.source_kind, device_model="BM1366", serial_port=url,
                     firmware="none (direct UART, asiclab.devices.bm1366_uart)",
                     voltage_note=("set through voltage_setter" if self.voltage_setter else
                                   "declared by the user (the UART cannot set or read it)"))
        self.journal = Journal(journal_path, attrs=attrs, fsync=self.fsync)
        try:
            self.driver = BM1366Driver(url, verify_difficulty=self.verify_difficulty)
            sweep.say(f"initialising the BM1366 chain on {url}")
            chips = self.driver.initialise(frequency_mhz=first.frequency_MHz, ramp=True,
                                           step_delay_s=self.ramp_step_delay_s,
                                           vendor_init=not self.emulated)
        except AsiclabError as exc:
            raise LiveError(f"serial port {url}: {exc}") from exc
        for chip in chips:
            self.chip_dev[chip.index] = self.journal.register_device(
                f"{url}#chip{chip.index}", model="BM1366", source_kind=self.source_kind,
                firmware="none (direct UART)")
        self.jobs = SyntheticJobs(self.seed or 0)
        self.journal.set_attrs(jobs=self.jobs.describe(), n_chips=len(chips),
                               verify_difficulty=self.driver.verify_difficulty)

    def devices(self) -> list[int]:
        return sorted(self.chip_dev.values())

    def apply(self, point: SweepPoint, override: bool) -> tuple[float, float]:
        v = point.voltage_mV
        if self.voltage_setter is not None:
            self.voltage_setter(v)
        f = self.driver.set_frequency(point.frequency_MHz, ramp=True,
                                      step_delay_s=self.ramp_step_delay_s)
        self.journal.append_note("set_point", {"voltage_mV": v, "frequency_MHz": f})
        return v, float(f)

    def service(self, timeout_s: float) -> None:
        end = time.monotonic() + max(timeout_s, 0.0)
        while True:
            now = time.monotonic()
            if now >= self.next_job:
                fields = dict(self.jobs(self.n_jobs))
                name = str(fields.pop("name"))
                self.driver.send_job(name=name, **fields)
                self.n_jobs += 1
                self.next_job = now + self.job_interval_s
            for ev in self.driver.poll():
                self._record(ev)
            if time.monotonic() >= end:
                break

    def _record(self, ev: Any) -> None:
        dev = self.chip_dev.get(ev.chip)
        if dev is None:
            dev = self.journal.register_device(f"{self.port}#chip?", model="BM1366",
                                               source_kind=self.source_kind)
        self.journal.append_event(
            t_host_ns=ev.t_host_ns, t_mono_ns=ev.t_mono_ns, device_index=dev,
            job_id=ev.job_name, nonce=ev.nonce, core_id=ev.core, version_bits=ev.version_bits,
            difficulty=ev.difficulty, pool_difficulty=ev.verify_difficulty, valid=ev.valid,
            error_code=ev.error_code)
        self.n_events += 1
        self.n_valid += int(ev.valid)

    def counters(self) -> tuple[int, int]:
        return self.n_events, self.n_valid

    def stop_devices(self) -> None:
        if self.driver is not None:
            with contextlib.suppress(AsiclabError):
                for ev in self.driver.poll():  # what is still in the port's buffer
                    self._record(ev)
            self.journal.set_attrs(uart_stats=json.dumps(self.driver.stats(), default=str))
            self.driver.close()
        if self.emulator is not None:
            self.emulator.close()

    def close_journal(self) -> None:
        if self.journal is not None:
            self.journal.close()


# --------------------------------------------------------------------------------------------
# the sweep
# --------------------------------------------------------------------------------------------
class _Sweep:
    """Runs a plan on a backend: progress, callbacks, interruption and clean shutdown."""

    def __init__(self, plan: SweepPlan, backend: _Backend, *, progress: bool,
                 callbacks: list[Callable[[LiveStatus], Any]], update_interval_s: float) -> None:
        self.plan = plan
        self.backend = backend
        self.progress = progress
        self.callbacks = callbacks
        self.update_interval_s = update_interval_s
        self.t0 = time.monotonic()
        self.k = -1
        self.phase = "connect"
        self.point = (math.nan, math.nan)
        self.op = -1
        self.ops: dict[int, int] = {}
        self.done_s = 0.0
        self.phase_t0 = self.t0
        self.phase_len = 0.0
        self.next_update = 0.0
        self.next_bar = 0.0
        self.bar: Any = None
        self._failed_callbacks: set[int] = set()

    def say(self, text: str) -> None:
        """A message to the user (above the progress bar, or to the log)."""
        if self.progress:
            from tqdm.auto import tqdm

            tqdm.write(text)
        else:
            log.info(text)

    def status(self, final: bool = False) -> LiveStatus:
        n, nv = self.backend.counters()
        temp, rate = self.backend.telemetry()
        return LiveStatus(
            t_s=time.monotonic() - self.t0, phase="done" if final else self.phase,
            point_index=self.k, n_points=len(self.plan), voltage_mV=self.point[0],
            frequency_MHz=self.point[1], op_index=self.op, n_events=n, n_valid=nv,
            temperature_C=temp, hashrate_GHs=rate, source_kind=self.backend.source_kind,
            time_scale=self.backend.time_scale, final=final)

    def tick(self, phase: str | None = None, *, force: bool = False, final: bool = False) -> None:
        """Update the bar and, when due, the callbacks."""
        if phase is not None:
            self.phase = phase
        now = time.monotonic()
        if self.bar is not None and (force or final or now >= self.next_bar):
            self.next_bar = now + 0.5
            inside = min(max(now - self.phase_t0, 0.0), self.phase_len) \
                if self.phase in ("settle", "dwell") else 0.0
            self.bar.n = round(min(self.done_s + inside, self.plan.total_s), 1)
            n, nv = self.backend.counters()
            temp, _ = self.backend.telemetry()
            self.bar.set_postfix(shares=n, valid=nv,
                                 temp=("-" if math.isnan(temp) else f"{temp:.1f}C"),
                                 refresh=False)
            self.bar.refresh()
        if not (force or final or now >= self.next_update) or not self.callbacks:
            return
        self.next_update = now + self.update_interval_s
        st = self.status(final)
        for i, cb in enumerate(self.callbacks):
            if i in self._failed_callbacks:
                continue
            try:
                cb(st)
            except Exception as exc:  # a broken plot must not end an hours-long capture
                self._failed_callbacks.add(i)
                warnings.warn(f"live-capture callback {cb!r} failed and is disabled: {exc!r}",
                              RuntimeWarning, stacklevel=2)

    def _open_new_devices(self) -> None:
        """A worker that joined during the dwell gets its own window from now on."""
        be = self.backend
        for d in be.devices():
            if d not in self.ops:
                self.ops[d] = be.journal.append_op(d, *self.point)

    def wait(self, duration_s: float, phase: str) -> None:
        self.phase, self.phase_t0, self.phase_len = phase, time.monotonic(), duration_s
        end = self.phase_t0 + duration_s
        self.tick(force=True)
        while (left := end - time.monotonic()) > 0:
            self.backend.service(min(left, 0.1))
            if phase == "dwell":
                self._open_new_devices()
            self.tick()
        self.done_s += duration_s
        self.phase_len = 0.0

    def run(self, journal_path: Path, attrs: dict[str, Any]) -> xr.Dataset:
        from tqdm.auto import tqdm

        from asiclab.capture import journal as jmod

        be = self.backend
        interrupted = False
        error: BaseException | None = None
        completed = 0
        final_attrs: dict[str, Any] = {}
        cleanup_errors: list[str] = []
        self.bar = tqdm(total=round(self.plan.total_s, 1), desc="live capture",
                        disable=not self.progress, dynamic_ncols=True,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s "
                                   "of the plan [{elapsed}<{remaining}{postfix}]")
        self.say(f"live capture ({len(self.plan)} points, {self.plan.total_s:g} s of settle + "
                 f"dwell): journal {journal_path}")
        try:
            try:
                be.open(journal_path, attrs, self)
                for k, pt in enumerate(self.plan):
                    self.k, self.point, self.op = k, (pt.voltage_mV, pt.frequency_MHz), -1
                    self.bar.set_description_str(
                        f"point {k + 1}/{len(self.plan)}: {pt.voltage_mV:g} mV, "
                        f"{pt.frequency_MHz:g} MHz")
                    self.tick("set", force=True)
                    be.expect_disruption(True)
                    v, f = be.apply(pt, self.plan.override)
                    self.point = (v, f)
                    self.wait(pt.settle_s, "settle")
                    be.expect_disruption(False)
                    self.ops = {d: be.journal.append_op(d, v, f) for d in be.devices()}
                    self.op = next(iter(self.ops.values()))
                    self.wait(pt.dwell_s, "dwell")
                    for op in self.ops.values():
                        be.journal.end_op(op)
                    self.ops = {}
                    self.op = -1
                    completed += 1
            except KeyboardInterrupt as exc:
                interrupted = True
                error = None
                self.say(f"interrupted during point {self.k + 1} ({self.phase}); "
                         "stopping and keeping what was captured")
                final_attrs["stop_reason"] = f"interrupted ({type(exc).__name__})"
            except OverheatError as exc:
                error = exc
                final_attrs["stop_reason"] = f"overheat: {exc}"
            except AsiclabError as exc:
                error = exc
                final_attrs["stop_reason"] = f"error: {exc}"
            finally:
                # every step runs even if another fails or a second Ctrl-C arrives
                if be.journal is not None and not be.journal.closed:
                    for op in [be.journal.current_op(d) for d in be.devices()]:
                        if op >= 0:
                            self._step(lambda op=op: be.journal.end_op(op), cleanup_errors)
                    self.op = -1
                    restore_exc = error if error is not None else (
                        KeyboardInterrupt() if interrupted else None)
                    be.expect_disruption(True)
                    out = self._step(lambda: be.restore(restore_exc), cleanup_errors)
                    if isinstance(out, dict):
                        final_attrs = {**out, **final_attrs}
                self._step(be.stop_devices, cleanup_errors)
                if cleanup_errors and any("KeyboardInterrupt" in c for c in cleanup_errors):
                    interrupted = True
                final_attrs.update(
                    interrupted=int(interrupted), n_points_completed=completed,
                    n_points_planned=len(self.plan),
                    cleanup_errors="; ".join(cleanup_errors) if cleanup_errors else None)
                final_attrs.setdefault("stop_reason", "completed")
                if be.journal is not None and not be.journal.closed:
                    self._step(lambda: be.journal.set_attrs(
                        **{k: v for k, v in final_attrs.items() if v is not None}),
                        cleanup_errors)
                self._step(be.close_journal, cleanup_errors)
        finally:
            self.tick(final=True)
            self.bar.close()
        if be.journal is None or not Path(journal_path).is_file():
            if interrupted:
                raise KeyboardInterrupt("live capture interrupted before it started")
            raise LiveError(f"the capture did not start: {error}") from error
        ds = jmod.recover(journal_path, skip_damaged=True)
        if error is not None:
            raise LiveCaptureError(
                f"live capture stopped: {error} (data so far kept: {ds.sizes['event']} events; "
                f"journal {journal_path})", capture=ds, journal_path=Path(journal_path)
            ) from error
        return ds

    def _step(self, fn: Callable[[], Any], errors: list[str]) -> Any:
        try:
            return fn()
        except BaseException as exc:  # keep shutting down; report afterwards
            log.exception("live capture: a shutdown step failed")
            errors.append(f"{type(exc).__name__}: {exc}")
            return None


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------
def run_live_capture(
    mode: str,
    plan: SweepPlan,
    *,
    journal_path: str | Path,
    miner_url: str = "",
    worker: str = "",
    listen_host: str = "127.0.0.1",
    listen_port: int = 3333,
    allow_lan: bool = False,
    pool_difficulty: float = 256.0,
    accept_suggested_difficulty: bool = False,
    telemetry_interval_s: float = 3.0,
    connect_timeout_s: float = 120.0,
    confirm_timeout_s: float = 90.0,
    confirm_interval_s: float | None = None,
    serial_port: str = "",
    voltage_setter: Callable[[float], Any] | None = None,
    verify_difficulty: float | None = None,
    ramp_step_delay_s: float = 0.1,
    job_interval_s: float | None = None,
    serial_source_kind: str | None = None,
    source_kind: str | None = None,
    max_line_rate: float = 100.0,
    time_scale: float = 1.0,
    seed: int | None = None,
    chip: Any = None,
    restart_delay_s: float = 0.5,
    cpu_process: bool = True,
    progress: bool = True,
    on_update: Callable[[LiveStatus], Any] | Sequence[Callable[[LiveStatus], Any]] | None = None,
    live_plot: bool | LivePlot = False,
    update_interval_s: float = 1.0,
    fsync: bool = False,
    title: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    emulator_options: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Run a sweep on a live (or emulated) miner and return the capture dataset.

    Parameters
    ----------
    mode : {"stratum+axeos", "serial", "emulated", "cpu"}
        See the module docstring.
    plan : SweepPlan
        Operating points; refused (:class:`UnsafePlanError`) if outside its envelope.
    journal_path : path-like
        Journal file to create (must not exist); the dataset is recovered from it.
    miner_url : str
        ``stratum+axeos``: AxeOS address of the miner (``http://192.168.1.50``); empty for a
        Stratum-only capture (no set points, no telemetry).
    worker : str
        Stratum worker name of the miner (default: AxeOS ``stratumUser``; else the first miner
        that authorizes).
    listen_host, listen_port : str, int
        Address of the capture server (``stratum+axeos``); anything but loopback needs
        ``allow_lan``. The emulated and CPU modes always use 127.0.0.1 and a free port.
    allow_lan : bool
        Let the capture server listen on the network (needed for a real miner).
    pool_difficulty : float
        Share difficulty given to the miner [1] (``stratum+axeos``).
    accept_suggested_difficulty : bool
        Honour the miner's ``mining.suggest_difficulty`` instead of ``pool_difficulty``.
    telemetry_interval_s : float
        AxeOS polling interval [s].
    connect_timeout_s : float
        How long to wait for the miner to authorize before the sweep [s].
    confirm_timeout_s : float
        Read-back timeout of every set-point change [s] (a restarting miner takes ~10-30 s).
    confirm_interval_s : float, optional
        Read-back polling interval [s] (default 1 s; 0.1 s in ``emulated`` mode).
    serial_port : str
        ``serial``: pyserial URL or device (``/dev/ttyUSB0``), or ``"emulated"``.
    voltage_setter : callable, optional
        ``serial``: ``voltage_setter(mV)`` sets the core voltage (the UART cannot).
    verify_difficulty : float, optional
        ``serial``: difficulty nonces are judged against [1] (default the ticket difficulty).
    ramp_step_delay_s : float
        ``serial``: pause between 6.25 MHz PLL steps [s].
    job_interval_s : float, optional
        A fresh job this often [s]: ``serial`` synthetic jobs (default 2 s), the capture
        server's Stratum jobs otherwise (default 30 s).
    serial_source_kind : str, optional
        ``serial``: label of a port that is not real hardware (e.g. an external emulator).
    source_kind : str, optional
        ``stratum+axeos``: what the miners are, declared by the user (``hardware``,
        ``emulated``, ...); applies to miners whose agent string the server does not know
        (default ``unknown``); ``serial``: same as ``serial_source_kind``.
    max_line_rate : float
        Lines per second each Stratum connection may send before its lines are queued (they
        are all recorded, with their receipt times; see
        :class:`~asiclab.capture.server.StratumCaptureServer`) [1/s].
    time_scale : float
        ``emulated`` and ``serial`` with ``"emulated"``: chip seconds per host second [1].
    seed : int or None
        Seed of the emulated chip (default 0), of the serial synthetic jobs and of the
        capture server's jobs. ``None``: the server draws a fresh seed (new jobs in every
        capture); the seed used is recorded in the ``seed`` attribute (``seed_origin``).
    chip : SimulatedChip or ChipHandle, optional
        ``emulated``: the chip model (default ``SimulatedChip(seed)``).
    restart_delay_s : float
        ``emulated``: how long the emulated firmware restarts [s].
    cpu_process : bool
        ``cpu``: search in a separate process (else a thread).
    progress : bool
        Show a tqdm progress bar.
    on_update : callable or sequence of callables, optional
        ``on_update(status: LiveStatus)`` every ``update_interval_s`` [s] and once at the end.
    live_plot : bool or LivePlot
        Add a :class:`LivePlot` (displayed only in a Jupyter kernel).
    update_interval_s : float
        Interval of the callbacks [s].
    fsync : bool
        ``fsync`` the journal at every flush (survives a power cut).
    title : str, optional
        Title attribute.
    parameters : mapping, optional
        Extra entries for the ``parameters`` attribute.
    emulator_options : mapping, optional
        ``emulated``: extra keyword arguments of
        :class:`~asiclab.devices.emulated_lv06.EmulatedLV06` (e.g. ``ticket_per_pool``).

    Returns
    -------
    xarray.Dataset
        The capture (schema of :mod:`asiclab.dataset`). Attributes added: ``live_mode``,
        ``interrupted`` (1 after Ctrl-C), ``stop_reason``, ``n_points_completed``,
        ``settings_restored`` (1 confirmed, 0 not, -1 not applicable or unknown),
        ``emulator_time_scale`` and ``time_note`` (emulated modes), ``journal_file``;
        Stratum modes: ``seed`` and ``seed_origin`` (the job seed used), ``op_windows_note``,
        ``chip_seed`` (emulated) and the server's ``server_throttled``,
        ``server_delayed_lines``, ``server_refused_lines``, ``server_read_pauses``,
        ``server_refused_connections`` counts.

    Raises
    ------
    UnsafePlanError
        The plan is outside the envelope (nothing is started).
    LiveError
        Wrong mode or options, or the capture could not start.
    LiveCaptureError
        The capture stopped on an error after it started; ``capture`` holds the data so far.
    """
    if mode not in MODES:
        raise LiveError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(plan, SweepPlan):
        raise LiveError(f"plan must be a SweepPlan, got {type(plan).__name__}")
    plan.check(plan.envelope)
    path = Path(journal_path)
    if path.exists():
        raise LiveError(f"{path}: journal exists; choose a new file (nothing is overwritten)")
    ts = _finite("time_scale", time_scale, positive=True)
    for name, value in (("telemetry_interval_s", telemetry_interval_s),
                        ("connect_timeout_s", connect_timeout_s),
                        ("confirm_timeout_s", confirm_timeout_s),
                        ("update_interval_s", update_interval_s),
                        ("max_line_rate", max_line_rate)):
        _finite(name, value, positive=True)
    if job_interval_s is not None:
        _finite("job_interval_s", job_interval_s, positive=True)
    if source_kind is not None and source_kind not in SOURCE_KINDS:
        raise LiveError(f"source_kind must be one of {SOURCE_KINDS}, got {source_kind!r}")
    if mode in ("emulated", "cpu") and source_kind not in (None, "emulated"):
        raise LiveError(f"{mode} mode is emulated; source_kind {source_kind!r} cannot be "
                        "declared for it")
    from asiclab.capture.server import _is_loopback

    if mode == "stratum+axeos" and not allow_lan and not _is_loopback(listen_host):
        raise LiveError(f"listen_host {listen_host!r} is not a loopback address; set "
                        "allow_lan to let the capture server listen on the network")
    if mode == "serial" and not serial_port:
        raise LiveError("serial mode needs serial_port (a device such as /dev/ttyUSB0, or "
                        "'emulated')")
    if mode in ("emulated", "cpu") and miner_url:
        raise LiveError(f"{mode} mode starts its own miner; miner_url must be empty")
    if emulator_options and mode != "emulated":
        raise LiveError("emulator_options apply to the emulated mode only")
    if mode == "serial":
        backend: _Backend = _SerialBackend(
            plan, serial_port=serial_port, voltage_setter=voltage_setter,
            verify_difficulty=verify_difficulty, ramp_step_delay_s=ramp_step_delay_s,
            job_interval_s=2.0 if job_interval_s is None else job_interval_s, time_scale=ts,
            seed=seed, fsync=fsync, source_kind=serial_source_kind or source_kind)
    else:
        backend = _StratumBackend(
            mode, plan, miner_url=miner_url, worker=worker, listen_host=listen_host,
            listen_port=listen_port, allow_lan=allow_lan, pool_difficulty=pool_difficulty,
            accept_suggested_difficulty=accept_suggested_difficulty,
            telemetry_interval_s=telemetry_interval_s, connect_timeout_s=connect_timeout_s,
            confirm_timeout_s=confirm_timeout_s,
            confirm_interval_s=(confirm_interval_s if confirm_interval_s is not None
                                else (0.1 if mode == "emulated" else 1.0)),
            time_scale=ts, seed=seed, chip=chip, restart_delay_s=restart_delay_s,
            cpu_process=cpu_process, fsync=fsync, max_line_rate=max_line_rate,
            job_interval_s=30.0 if job_interval_s is None else job_interval_s,
            declared_kind=source_kind, emulator_options=emulator_options)
    callbacks: list[Callable[[LiveStatus], Any]] = []
    if callable(on_update):
        callbacks.append(on_update)
    elif on_update is not None:
        callbacks.extend(on_update)
    if isinstance(live_plot, LivePlot):
        callbacks.append(live_plot)
    elif live_plot:
        callbacks.append(LivePlot())
    windows_only = mode == "cpu" or (mode == "stratum+axeos" and not miner_url)
    plan_d = plan.to_dict()
    if windows_only:  # time windows: nothing is set, say so rather than the plan's defaults
        for pt in plan_d["points"]:
            pt["voltage_mV"] = pt["frequency_MHz"] = NOT_SET
    params: dict[str, Any] = {
        "live_mode": mode, "plan": plan_d, "miner_url": miner_url, "worker": worker,
        "listen_host": listen_host, "listen_port": listen_port, "allow_lan": allow_lan,
        "pool_difficulty": pool_difficulty, "telemetry_interval_s": telemetry_interval_s,
        "serial_port": serial_port, "time_scale": ts, "seed": seed,
        "source_kind": source_kind,
    }
    if emulator_options:
        params["emulator_options"] = dict(emulator_options)
    if mode != "serial":
        params["server"] = {"max_requests_per_s": float(max_line_rate),
                            "job_interval_s": float(backend.job_interval_s)}
    else:
        params["job_interval_s"] = float(backend.job_interval_s)
    params.update(parameters or {})
    attrs: dict[str, Any] = {
        "title": title or f"live capture ({mode}), {len(plan)} operating point(s)",
        "live_mode": mode, "parameters": json.dumps(params, sort_keys=True, default=str),
        "source_file": None,
    }
    if mode == "emulated" or serial_port == "emulated":
        attrs["chip_seed"] = seed or 0
    if mode == "serial":  # the synthetic jobs' seed (the capture server records its own)
        attrs.update(seed=seed or 0, seed_origin="given" if seed is not None else "default 0")
    if backend.time_scale != 1.0 or mode == "emulated" or serial_port == "emulated":
        attrs["emulator_time_scale"] = backend.time_scale
        attrs["time_note"] = (
            f"emulated chip time runs {backend.time_scale:g} x faster than the host clock: "
            "timestamps, settle and dwell are host seconds; rates per host second are "
            f"{backend.time_scale:g} x the emulated chip's rates")
    sweep = _Sweep(plan, backend, progress=progress, callbacks=callbacks,
                   update_interval_s=update_interval_s)
    return sweep.run(path, attrs)


def run_from_params(p: Mapping[str, Any], *, journal_path: str | Path, progress: bool = True,
                    live_plot: bool = False, **kwargs: Any) -> xr.Dataset:
    """Run a live capture from validated ``01_capture`` / ``asiclab capture`` parameters.

    Parameters
    ----------
    p : mapping
        Output of ``asiclab.params.validate(..., asiclab.capture.workflow.PARAMS)`` (the live keys:
        ``live_mode``, ``voltages_mV``, ``sweep_frequencies_MHz`` / ``frequency_MHz``,
        ``settle_s``, ``dwell_s``, ``telemetry_interval_s``, ``miner_url``, ``worker``,
        ``listen_host``, ``listen_port``, ``allow_lan``, ``pool_difficulty``, ``serial_port``,
        ``emulator_time_scale``, ``seed``, ``safety_voltage_mV``, ``safety_frequency_MHz``,
        ``max_temperature_C``, ``override_safety``).
    journal_path : path-like
        Journal file to create.
    progress : bool
        Progress bar.
    live_plot : bool
        Live rate/temperature plot (in a kernel).
    **kwargs
        More options of :func:`run_live_capture`.

    Returns
    -------
    xarray.Dataset
    """
    from asiclab.params import ParameterError

    mode = p["live_mode"]
    if mode == "serial" and not p["serial_port"]:
        raise ParameterError("serial_port", p["serial_port"],
                             "a serial device (e.g. /dev/ttyUSB0) or 'emulated' when "
                             "live_mode is 'serial'")
    if mode in ("emulated", "cpu") and p["miner_url"]:
        raise ParameterError("miner_url", p["miner_url"],
                             f"'' when live_mode is {mode!r} (it starts its own miner)")
    env = SafetyEnvelope(voltage_mV=tuple(p["safety_voltage_mV"]),  # type: ignore[arg-type]
                         frequency_MHz=tuple(p["safety_frequency_MHz"]),  # type: ignore[arg-type]
                         max_temperature_C=p["max_temperature_C"])
    freqs = p["sweep_frequencies_MHz"] or [p["frequency_MHz"]]
    plan = SweepPlan.grid(p["voltages_mV"], freqs, settle_s=p["settle_s"], dwell_s=p["dwell_s"],
                          envelope=env, override=p["override_safety"])
    options: dict[str, Any] = {
        "miner_url": p["miner_url"], "worker": p["worker"], "listen_host": p["listen_host"],
        "listen_port": p["listen_port"], "allow_lan": p["allow_lan"],
        "pool_difficulty": p["pool_difficulty"],
        "telemetry_interval_s": p["telemetry_interval_s"], "serial_port": p["serial_port"],
        "time_scale": p["emulator_time_scale"], "seed": p["seed"],
    }
    options.update(kwargs)
    return run_live_capture(mode, plan, journal_path=journal_path, progress=progress,
                            live_plot=live_plot, **options)
