"""Emulated BM1366 chain on a pseudo-terminal: the chip side of the UART protocol.

Everything this emulator sends is **emulated** and must be labelled so (``source_kind =
"emulated"``). It opens a pseudo-terminal (:func:`os.openpty`) and exposes the slave side as
:attr:`EmulatedBM1366.port`, a path that any pyserial client -- in particular
:class:`asiclab.devices.bm1366_uart.BM1366Driver` -- opens like a real USB-serial adapter.
A background thread speaks the chip side (framing from :mod:`asiclab.protocol.bm1366`):

* answers chip-id reads (``AA 55 13 66 00 <addr> <addr> 00 00 00 crc``, as a real BM1366: its
  core-count byte is 0) and other register reads (stored values; 0x4C = hardware errors sent);
* accepts chain inactive, set address (in chain order), and register writes: PLL (0x08) sets the
  frequency, ticket mask (0x14) the ticket difficulty, 0xA4 the version-rolling mask, 0x28 the
  baud rate (a no-op on a pty, only recorded);
* receives jobs and answers with nonce replies.

Nonces really verify, at an emulator-only difficulty
------------------------------------------------------
A real chip returns nonces at its ticket difficulty (256), i.e. after ~2**40 hashes each; a CPU
cannot do that. The emulator therefore **overrides the ticket mask for the content of the
nonces**: every valid reply carries a nonce found by a real SHA256d search over the job's header
that meets :attr:`EmulatedBM1366.nonce_difficulty` (default ``2**-16``: ~65,000 hashes, ~0.1 s of
CPU per nonce; tests use ``2**-20``). The driver must verify against that difficulty
(``driver.verify_difficulty = emulator.nonce_difficulty``). Hardware errors of the timing model
are sent as nonces that do *not* meet it. The core and chip-address bits of each nonce are those
of the emulated core and chip (``core = nonce_h >> 25``; chip address bits 17..24 within the
chip's address interval); the small core is drawn uniformly; the version field is drawn within
the rolling mask (0 without a mask).

Timing follows the simulated chip
---------------------------------
When each reply is sent comes from the physical model of
:class:`asiclab.devices.simulated.SimulatedChip` (one per chip, seeds ``seed, seed+1, ...``),
driven at the frequency written to the PLL and at ``voltage_mV`` (the UART cannot set the core
voltage; use :meth:`EmulatedBM1366.set_voltage`). The model is run at ticket difficulty 1 and its
nonces are thinned to the ticket difficulty of the mask (each kept with probability
``1 / D_mask``), which is exact for a Poisson/Cox stream of tickets. ``speedup`` runs the model's
virtual time faster than the wall clock (``speedup = 50``: 50 s of chip time per second), so that
tests see many nonces quickly. ``model="poisson"`` replaces the simulator by a homogeneous
Poisson process at ``f * 894e6 / (D * 2**32)`` per second (the fallback when the simulator is
unavailable). Replies are computed ``lookahead_s`` ahead of the wall clock and written at their
scheduled time; operating-point and job changes therefore act with up to ``lookahead_s`` of
delay, and Python thread scheduling adds jitter of the order of milliseconds. The emulator is not
bit-reproducible (the chunking of the model follows the wall clock).

Fault injection
---------------
``corrupt_fraction`` of the nonce replies are damaged on the wire by one of ``corrupt_modes``:
``"flip"`` (one bit), ``"drop"`` (1-3 bytes removed), ``"garbage"`` (1-8 random bytes inserted at
a random position 0..11; at 0 or 11 the frame itself stays intact).

CPU cost: each valid nonce costs about ``nonce_difficulty * 2**32`` SHA256d evaluations
(~1.7 us each in CPython), i.e. ~0.1 s at ``2**-16``. The emulator warns when
``speedup`` and ``nonce_difficulty`` ask for more CPU than one core gives.

:meth:`EmulatedBM1366.sent` records every reply with its wire bytes and whether it arrived
intact, for tests.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import math
import os
import select
import threading
import time
import tty
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from asiclab import AsiclabError
from asiclab.protocol import bm1366
from asiclab.protocol.mining import target_from_difficulty

try:  # the timing model; the Poisson fallback is used when it is unavailable
    from asiclab.devices.simulated import SimulatedChip, SimulatorError
except ImportError:  # pragma: no cover - the simulator ships with asiclab
    SimulatedChip = None  # type: ignore[assignment,misc]
    SimulatorError = Exception  # type: ignore[assignment,misc]

__all__ = ["CORRUPT_MODES", "EmulatedBM1366", "EmulatorError", "SentReply"]

CORRUPT_MODES = ("flip", "drop", "garbage")
"""Ways a reply can be damaged on the wire."""

_MAX_NONCE_DIFFICULTY = 2.0**-8
_SECONDS_PER_HASH = 1.7e-6  # one SHA256d with a cached midstate in CPython (order of magnitude)
_MAX_OUT_BYTES = 1 << 20  # bytes buffered for a host that does not read; older ones are dropped


class EmulatorError(AsiclabError):
    """Wrong parameter of the emulator, or the pseudo-terminal could not be opened."""


@dataclass(frozen=True, slots=True)
class SentReply:
    """One reply the emulator wrote.

    Attributes
    ----------
    frame : bytes
        The clean 11-byte reply.
    wire : bytes
        The bytes actually written (differs from ``frame`` when corrupted).
    kind : str
        ``"nonce"``, ``"register"`` or ``"chip_id"``.
    corruption : str or None
        Corruption mode applied, if any.
    intact : bool
        The 11 bytes of ``frame`` appear unchanged and contiguous in ``wire``.
    meets_difficulty : bool or None
        For nonces: whether the nonce meets the emulator difficulty (False = hardware error).
    chip : int
        Chip index that sent it.
    t_mono_ns : int
        ``time.monotonic_ns()`` when queued for the pty (written as soon as it accepts bytes).
    """

    frame: bytes
    wire: bytes
    kind: str
    corruption: str | None
    intact: bool
    meets_difficulty: bool | None
    chip: int
    t_mono_ns: int


class _PoissonModel:
    """Homogeneous Poisson tickets at difficulty 1 (fallback timing model), vectorised."""

    def __init__(self, seed: int, hw_error_rate: float) -> None:
        self._rng = np.random.default_rng([seed, 0x9015])
        self._f = bm1366.DEFAULT_FREQUENCY_MHZ
        self._elapsed_ns = 0
        self._p_err = hw_error_rate

    def set_operating_point(self, voltage_mV: float, frequency_MHz: float) -> None:
        if not (math.isfinite(frequency_MHz) and frequency_MHz > 0):
            raise EmulatorError(f"frequency must be > 0, got {frequency_MHz!r}")
        self._f = float(frequency_MHz)

    @property
    def elapsed_ns(self) -> int:
        return self._elapsed_ns

    def advance_ns(self, dt_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # a Poisson process on an interval: Poisson count, then uniform sorted times
        rate = self._f * 1e6 * bm1366.SMALL_CORE_COUNT / 2**32  # tickets/s at difficulty 1
        n = int(self._rng.poisson(rate * dt_ns / 1e9))
        t = np.sort(self._rng.integers(self._elapsed_ns + 1, self._elapsed_ns + dt_ns + 1,
                                       size=n, dtype=np.int64))
        cores = self._rng.integers(0, bm1366.CORE_COUNT, size=n).astype(np.int32)
        valid = self._rng.random(n) >= self._p_err
        self._elapsed_ns += dt_ns
        return t, cores, valid


class _SimModel:
    """Adapter of :class:`SimulatedChip` (ticket difficulty 1, virtual time from 0)."""

    def __init__(self, seed: int, voltage_mV: float) -> None:
        assert SimulatedChip is not None
        self._chip = SimulatedChip(seed, t0_ns=0, ticket_difficulty=1.0)
        self._chip.set_operating_point(voltage_mV, bm1366.DEFAULT_FREQUENCY_MHZ)
        self.hashing = True

    def set_operating_point(self, voltage_mV: float, frequency_MHz: float) -> None:
        try:
            self._chip.set_operating_point(voltage_mV, frequency_MHz)
            self.hashing = True
        except SimulatorError:
            self.hashing = False  # outside the model's range: the chip stops (recorded)

    @property
    def elapsed_ns(self) -> int:
        return int(self._chip.elapsed_ns)

    def advance_ns(self, dt_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ev = self._chip.advance_ns(int(dt_ns))
        if not self.hashing:
            empty = np.zeros(0, np.int64)
            return empty, empty.astype(np.int32), empty.astype(bool)
        return ev.t_ns, ev.core_id, ev.valid


@dataclass
class _Chip:
    index: int
    model: Any
    address: int = 0
    frequency_mhz: float = bm1366.DEFAULT_FREQUENCY_MHZ
    ticket_difficulty: int = bm1366.DEFAULT_TICKET_DIFFICULTY
    n_hw_errors: int = 0


class EmulatedBM1366:
    """A chain of emulated BM1366 chips behind a pseudo-terminal.

    Parameters
    ----------
    n_chips : int
        Chips on the chain (1..16).
    seed : int
        Seed: chip ``i`` uses the simulated chip of seed ``seed + i``; the emulator's own draws
        (thinning, small cores, versions, nonce search start, corruption) use ``[seed, ...]``.
    nonce_difficulty : float
        Emulator-only difficulty every valid nonce meets [1], in (0, 2**-8]; overrides the
        ticket mask for the nonce content (see the module docstring).
    speedup : float
        Virtual chip seconds per wall-clock second [1].
    voltage_mV : float
        Core voltage of the timing model [mV].
    model : {"auto", "simulated", "poisson"}
        Timing model (``auto``: the simulator when importable).
    hw_error_rate : float
        Probability that a nonce is a hardware error, Poisson model only [1].
    corrupt_fraction : float
        Fraction of nonce replies damaged on the wire [1].
    corrupt_modes : sequence of str
        Damage modes drawn uniformly (see :data:`CORRUPT_MODES`).
    lookahead_s : float
        How far ahead of the wall clock replies are prepared [s].
    core_count_byte : int
        Core-count byte of the chip-id reply (a real BM1366 sends 0).
    max_log : int
        Replies kept in the log of :meth:`sent` (oldest dropped first).
    start : bool
        Start the thread now (otherwise call :meth:`start`).

    Raises
    ------
    EmulatorError
        Bad parameter, or no pseudo-terminal available.
    """

    def __init__(self, *, n_chips: int = 1, seed: int = 0, nonce_difficulty: float = 2.0**-16,
                 speedup: float = 1.0, voltage_mV: float = 1200.0, model: str = "auto",
                 hw_error_rate: float = 0.0, corrupt_fraction: float = 0.0,
                 corrupt_modes: Sequence[str] = CORRUPT_MODES, lookahead_s: float = 0.25,
                 core_count_byte: int = 0, max_log: int = 100_000,
                 start: bool = True) -> None:
        if isinstance(n_chips, bool) or not isinstance(n_chips, int) or not 1 <= n_chips <= 16:
            raise EmulatorError(f"n_chips must be an int in 1..16, got {n_chips!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise EmulatorError(f"seed must be a non-negative int, got {seed!r}")
        nd = float(nonce_difficulty)
        if not (math.isfinite(nd) and 0 < nd <= _MAX_NONCE_DIFFICULTY):
            raise EmulatorError(f"nonce_difficulty must be in (0, 2**-8], got {nonce_difficulty!r}")
        if not (math.isfinite(speedup) and 0 < speedup <= 1e6):
            raise EmulatorError(f"speedup must be in (0, 1e6], got {speedup!r}")
        if not (math.isfinite(voltage_mV) and 0 < voltage_mV <= 2000):
            raise EmulatorError(f"voltage_mV must be in (0, 2000], got {voltage_mV!r}")
        if model not in ("auto", "simulated", "poisson"):
            raise EmulatorError(f"model must be 'auto', 'simulated' or 'poisson', got {model!r}")
        if model == "simulated" and SimulatedChip is None:  # pragma: no cover
            raise EmulatorError("asiclab.devices.simulated is not available")
        if not 0 <= hw_error_rate <= 1 or not 0 <= corrupt_fraction <= 1:
            raise EmulatorError("hw_error_rate and corrupt_fraction must be in [0, 1]")
        modes = tuple(corrupt_modes)
        if not modes or any(m not in CORRUPT_MODES for m in modes):
            raise EmulatorError(f"corrupt_modes must be a non-empty subset of {CORRUPT_MODES}, "
                                f"got {corrupt_modes!r}")
        if not 0 < lookahead_s <= 5:
            raise EmulatorError(f"lookahead_s must be in (0, 5], got {lookahead_s!r}")
        if not 0 <= core_count_byte <= 255:
            raise EmulatorError(f"core_count_byte must be 0..255, got {core_count_byte!r}")
        self.seed = seed
        self.nonce_difficulty = nd
        self.speedup = float(speedup)
        self.voltage_mV = float(voltage_mV)
        self.model_kind = ("simulated" if model in ("auto", "simulated") and SimulatedChip
                           is not None else "poisson")
        self.corrupt_fraction = float(corrupt_fraction)
        self.corrupt_modes = modes
        self.lookahead_s = float(lookahead_s)
        self.core_count_byte = int(core_count_byte)
        self._target = target_from_difficulty(nd)
        # CPU needed per wall second at the default ticket difficulty and 485 MHz
        load = (bm1366.DEFAULT_FREQUENCY_MHZ * 1e6 * bm1366.SMALL_CORE_COUNT
                / (bm1366.DEFAULT_TICKET_DIFFICULTY * 2**32) * n_chips * self.speedup
                * nd * 2**32 * _SECONDS_PER_HASH)
        if load > 0.8:
            warnings.warn(
                f"the emulator needs ~{load:.1f} s of CPU per second for its nonce searches "
                f"(speedup {self.speedup:g}, nonce_difficulty {nd:g}); replies will fall "
                "behind the timing model -- lower speedup or nonce_difficulty", stacklevel=2)
        self._rng = np.random.default_rng([seed, 0xE1366])
        self._rng_corrupt = np.random.default_rng([seed, 0xC0BB])
        self._chips = [
            _Chip(i, _SimModel(seed + i, self.voltage_mV) if self.model_kind == "simulated"
                  else _PoissonModel(seed + i, float(hw_error_rate)))
            for i in range(n_chips)]
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sent: deque[SentReply] = deque(maxlen=max(1, int(max_log)))
        self._schedule: list[tuple[int, bytes, int, bool]] = []  # (t_mono_ns, frame, chip, ok)
        self._out = bytearray()
        self._reader = bm1366.CommandReader()
        self._jobs: dict[int, bm1366.BM1366Job] = {}
        self._current_job: bm1366.BM1366Job | None = None
        self._addressing = False
        self._next_unaddressed = 0
        self._registers: list[dict[int, bytes]] = [{} for _ in range(n_chips)]
        self.version_mask = 0
        self.baudrate = bm1366.INITIAL_BAUD
        self.n_jobs_received = 0
        self.n_commands = 0
        self.n_tickets = 0
        self.n_events_no_job = 0
        self.n_search_failures = 0
        self.n_hashes = 0
        self.n_out_overflow = 0
        self.error: BaseException | None = None
        self._t0_mono_ns = 0
        try:
            self._master, self._slave = os.openpty()
        except OSError as exc:
            raise EmulatorError(f"cannot open a pseudo-terminal: {exc}") from exc
        tty.setraw(self._slave)  # no echo, no line editing, no CR/LF mapping, no XON/XOFF
        os.set_blocking(self._master, False)
        self.port: str = os.ttyname(self._slave)
        """Path of the slave side, usable as a pyserial URL."""
        if start:
            self.start()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the chip thread (idempotent)."""
        if self._thread is not None:
            return
        self._t0_mono_ns = time.monotonic_ns()
        self._thread = threading.Thread(target=self._run, name=f"EmulatedBM1366({self.port})",
                                        daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and close the pseudo-terminal (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout_s)
        for fd_name in ("_master", "_slave"):
            fd = getattr(self, fd_name, -1)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, fd_name, -1)

    def __enter__(self) -> EmulatedBM1366:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """True while the chip thread runs."""
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ inspection
    @property
    def n_chips(self) -> int:
        """Chips on the chain."""
        return len(self._chips)

    @property
    def frequency_mhz(self) -> float:
        """Frequency of chip 0 [MHz]."""
        return self._chips[0].frequency_mhz

    @property
    def ticket_difficulty(self) -> int:
        """Ticket difficulty of chip 0 from the mask (used for timing only) [1]."""
        return self._chips[0].ticket_difficulty

    @property
    def addresses(self) -> list[int]:
        """Current chip addresses, in chain order."""
        return [c.address for c in self._chips]

    @property
    def current_job(self) -> bm1366.BM1366Job | None:
        """The last job received."""
        return self._current_job

    def sent(self) -> list[SentReply]:
        """Copy of the log of replies written (the last ``max_log``)."""
        with self._lock:
            return list(self._sent)

    def stats(self) -> dict[str, Any]:
        """Counters of the emulator and of its command decoder.

        ``n_tickets`` counts the nonce events of the timing model after thinning to the ticket
        difficulty (sent or not), over ``virtual_elapsed_s`` of chip time (chip 0) [s].
        """
        with self._lock:
            sent = list(self._sent)
        return {
            "model": self.model_kind,
            "n_jobs_received": self.n_jobs_received,
            "n_commands": self.n_commands,
            "n_replies": len(sent),
            "n_nonces": sum(s.kind == "nonce" for s in sent),
            "n_corrupted": sum(s.corruption is not None for s in sent),
            "n_hw_errors": sum(c.n_hw_errors for c in self._chips),
            "n_tickets": self.n_tickets,
            "virtual_elapsed_s": self._chips[0].model.elapsed_ns / 1e9,
            "n_events_no_job": self.n_events_no_job,
            "n_search_failures": self.n_search_failures,
            "n_hashes": self.n_hashes,
            "n_out_overflow": self.n_out_overflow,
            "host_decoder": self._reader.stats(),
        }

    def set_voltage(self, voltage_mV: float) -> None:
        """Set the core voltage of the timing model [mV] (a board-level setting, not UART)."""
        v = float(voltage_mV)
        if not (math.isfinite(v) and 0 < v <= 2000):
            raise EmulatorError(f"voltage_mV must be in (0, 2000], got {voltage_mV!r}")
        with self._lock:
            self.voltage_mV = v
            for c in self._chips:
                c.model.set_operating_point(v, c.frequency_mhz)

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                now = time.monotonic_ns()
                with self._lock:
                    due = self._schedule[0][0] if self._schedule else now + 5_000_000
                    want_write = bool(self._out)
                timeout = min(max(due - now, 0), 5_000_000) / 1e9
                r, _w, _ = select.select([self._master], [self._master] if want_write else [],
                                        [], timeout)
                if r:
                    try:
                        data = os.read(self._master, 4096)
                    except BlockingIOError:
                        data = b""
                    except OSError as exc:
                        if exc.errno == errno.EIO:  # no reader on the slave side right now
                            data = b""
                        else:
                            raise
                    if data:
                        for frame in self._reader.feed(data):
                            self._handle(frame)
                with self._lock:
                    self._generate(time.monotonic_ns())
                    self._emit_due(time.monotonic_ns())
                    self._flush_out()
        except BaseException as exc:  # pragma: no cover - reported to the tests via .error
            self.error = exc

    def _write(self, frame: bytes, kind: str, chip: int, ok: bool | None,
               corrupt: bool = False) -> None:
        wire, mode, intact = frame, None, True
        if corrupt:
            wire, mode, intact = self._corrupt(frame)
        self._out += wire
        if len(self._out) > _MAX_OUT_BYTES:
            drop = len(self._out) - _MAX_OUT_BYTES
            del self._out[:drop]
            self.n_out_overflow += drop
        self._sent.append(SentReply(frame, wire, kind, mode, intact, ok, chip,
                                    time.monotonic_ns()))

    def _flush_out(self) -> None:
        while self._out:
            try:
                n = os.write(self._master, self._out)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EAGAIN):
                    return
                raise
            del self._out[:n]

    def _corrupt(self, frame: bytes) -> tuple[bytes, str, bool]:
        rng = self._rng_corrupt
        mode = self.corrupt_modes[int(rng.integers(len(self.corrupt_modes)))]
        buf = bytearray(frame)
        if mode == "flip":
            buf[int(rng.integers(len(buf)))] ^= 1 << int(rng.integers(8))
            return bytes(buf), mode, False
        if mode == "drop":
            k = int(rng.integers(1, 4))
            for i in sorted(rng.choice(len(buf), size=k, replace=False).tolist(), reverse=True):
                del buf[i]
            return bytes(buf), mode, False
        pos = int(rng.integers(0, len(buf) + 1))
        garbage = rng.bytes(int(rng.integers(1, 9)))
        wire = bytes(buf[:pos]) + garbage + bytes(buf[pos:])
        # intact when inserted before/after it -- or when the garbage happens to rebuild it
        return wire, mode, frame in wire

    # ------------------------------------------------------------------ commands
    def _targets(self, frame: bm1366.CommandFrame) -> list[_Chip]:
        if frame.broadcast:
            return list(self._chips)
        return [c for c in self._chips if c.address == frame.chip_address]

    def _handle(self, frame: bm1366.CommandFrame) -> None:
        with self._lock:
            self.n_commands += 1
            if frame.is_job:
                try:
                    job = bm1366.BM1366Job.from_payload(frame.data)
                except bm1366.BM1366Error:
                    return  # a real chip ignores what it cannot parse
                self._jobs[job.job_id] = job
                self._current_job = job
                self.n_jobs_received += 1
                return
            cmd = frame.cmd
            if cmd == bm1366.CMD_INACTIVE:
                self._addressing = True
                self._next_unaddressed = 0
            elif cmd == bm1366.CMD_SET_ADDRESS:
                if self._next_unaddressed < len(self._chips):
                    self._chips[self._next_unaddressed].address = frame.chip_address
                    self._next_unaddressed += 1
            elif cmd == bm1366.CMD_READ:
                for chip in self._targets(frame):
                    self._reply_register(chip, frame.register)
            elif cmd == bm1366.CMD_WRITE and len(frame.value) == 4:
                for chip in self._targets(frame):
                    self._write_register(chip, frame.register, frame.value)

    def _reply_register(self, chip: _Chip, register: int) -> None:
        if register == bm1366.REG_CHIP_ID:
            frame = bm1366.encode_chip_id_reply(chip.address, core_count=self.core_count_byte)
            self._write(frame, "chip_id", chip.index, None)
            return
        if register == bm1366.REG_ERROR_COUNT:
            value = chip.n_hw_errors & 0xFFFFFFFF
        else:
            value = int.from_bytes(self._registers[chip.index].get(register, bytes(4)), "big")
        self._write(bm1366.encode_register_reply(value, chip.address, register), "register",
                    chip.index, None)

    def _write_register(self, chip: _Chip, register: int, value: bytes) -> None:
        self._registers[chip.index][register] = bytes(value)
        if register == bm1366.REG_PLL0:
            try:
                f = bm1366.decode_pll_register(value).frequency_mhz
            except bm1366.BM1366Error:
                return
            chip.frequency_mhz = f
            chip.model.set_operating_point(self.voltage_mV, f)
        elif register == bm1366.REG_TICKET_MASK:
            with contextlib.suppress(bm1366.BM1366Error):
                chip.ticket_difficulty = bm1366.difficulty_from_ticket_mask(value)
        elif register == bm1366.REG_VERSION_ROLLING:
            self.version_mask = bm1366.version_mask_from_register(value)
        elif register == bm1366.REG_FAST_UART and value == bm1366.FAST_UART_VALUE:
            self.baudrate = bm1366.FAST_BAUD  # a pty has no baud rate: recorded only

    # ------------------------------------------------------------------ nonces
    def _generate(self, now_ns: int) -> None:
        horizon_virtual = round((now_ns - self._t0_mono_ns + self.lookahead_s * 1e9)
                                * self.speedup)
        new: list[tuple[int, bytes, int, bool]] = []
        for chip in self._chips:
            dt = horizon_virtual - chip.model.elapsed_ns
            if dt <= 0:
                continue
            t_ns, cores, valid = chip.model.advance_ns(dt)
            if t_ns.size == 0:
                continue
            keep = self._rng.random(t_ns.size) < 1.0 / chip.ticket_difficulty
            self.n_tickets += int(keep.sum())
            for t, core, ok in zip(t_ns[keep].tolist(), cores[keep].tolist(),
                                   valid[keep].tolist(), strict=True):
                if self._stop.is_set():
                    return
                job = self._current_job
                if job is None:
                    self.n_events_no_job += 1
                    continue
                frame = self._nonce_frame(job, chip, int(core), bool(ok))
                if frame is None:
                    continue
                emit = self._t0_mono_ns + round(t / self.speedup)
                new.append((emit, frame, chip.index, bool(ok)))
        if new:
            self._schedule.extend(new)
            self._schedule.sort(key=lambda e: e[0])

    def _emit_due(self, now_ns: int) -> None:
        i = 0
        while i < len(self._schedule) and self._schedule[i][0] <= now_ns:
            _, frame, chip, ok = self._schedule[i]
            corrupt = self.corrupt_fraction > 0 and (
                self._rng_corrupt.random() < self.corrupt_fraction)
            if not ok:
                self._chips[chip].n_hw_errors += 1
            self._write(frame, "nonce", chip, ok, corrupt)
            i += 1
        del self._schedule[:i]

    def _nonce_frame(self, job: bm1366.BM1366Job, chip: _Chip, core: int,
                     valid: bool) -> bytes | None:
        rng = self._rng
        interval = 256 // len(self._chips)
        small_core = int(rng.integers(0, 8))
        mask16 = self.version_mask >> 13
        for _attempt in range(8):
            vfield = int(rng.integers(0, 1 << 16)) & mask16
            version = job.version | (vfield << 13)
            prefix = job.header_prefix(version)
            if valid:
                nonce = self._search(prefix, core & 0x7F, chip.address, interval)
            else:
                nonce = self._bad_nonce(prefix, core & 0x7F, chip.address, interval)
            if nonce is not None:
                return bm1366.encode_nonce_reply(nonce, job.job_id, small_core, vfield)
        self.n_search_failures += 1
        return None

    def _search(self, prefix: bytes, core: int, base: int, interval: int) -> bytes | None:
        """Real SHA256d search over the nonces of (core, chip) for the emulator difficulty."""
        space = interval << 17
        start = int(self._rng.integers(0, space))
        mid = hashlib.sha256(prefix[:64])
        tail = prefix[64:]
        sha256 = hashlib.sha256
        target = self._target
        from_bytes = int.from_bytes
        top = (core << 25) | (base << 17)
        for k in range(space):
            x = (start + k) % space
            nb = (top + x).to_bytes(4, "big")  # x < interval << 17 stays in the chip's range
            h = mid.copy()
            h.update(tail + nb)
            digest = sha256(h.digest()).digest()
            if from_bytes(digest, "little") <= target:
                self.n_hashes += k + 1
                return nb
        self.n_hashes += space
        return None

    def _bad_nonce(self, prefix: bytes, core: int, base: int, interval: int) -> bytes | None:
        """A nonce of (core, chip) that does not meet the emulator difficulty."""
        space = interval << 17
        top = (core << 25) | (base << 17)
        for _ in range(64):
            nb = (top + int(self._rng.integers(0, space))).to_bytes(4, "big")
            digest = hashlib.sha256(hashlib.sha256(prefix + nb).digest()).digest()
            self.n_hashes += 1
            if int.from_bytes(digest, "little") > self._target:
                return nb
        return None  # pragma: no cover - needs 64 consecutive hits
