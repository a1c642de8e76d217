"""Direct UART driver for BM1366 chips (Bitaxe / Lucky Miner LV06 class) over pyserial.

The port is a pyserial URL (:func:`serial.serial_for_url`): a device such as ``/dev/ttyUSB0``,
a pseudo-terminal (e.g. :class:`asiclab.devices.emulated_bm1366.EmulatedBM1366`), ``loop://`` or
``socket://host:port`` all work. Framing, CRCs and decoding are the pure functions of
:mod:`asiclab.protocol.bm1366`; this module adds the port, timing and bookkeeping:

* chip enumeration (chip-id broadcast read), chain inactive and address assignment;
* PLL frequency (optionally ramped in 6.25 MHz steps like the firmware), ticket mask, version
  mask, the fast-UART switch (register 0x28, then the host port to 1,000,000 baud);
* job dispatch from Stratum-like fields (the last 16 jobs are kept by chip job id);
* a reader that turns replies into :class:`NonceEvent` records: host receive time
  (``time.time_ns`` and ``time.monotonic_ns`` when the bytes were read), job, core, small core,
  chip, rolled version, nonce, and SHA256d verification against the job (achieved difficulty,
  valid flag). Corrupted frames are counted and skipped
  (:class:`asiclab.protocol.bm1366.FrameReader`);
* :meth:`BM1366Driver.capture`, which records for a duration and returns a capture dataset
  (:func:`asiclab.dataset.build_capture`), with a tqdm bar; Ctrl-C stops it and keeps what was
  captured.

Verification: each nonce is hashed with its job's header (:mod:`asiclab.protocol.mining`) and judged
against :attr:`BM1366Driver.verify_difficulty` -- by default the ticket difficulty last written
(1 before any write). An emulator that uses its own, lower difficulty (see
:mod:`asiclab.devices.emulated_bm1366`) must be told to the driver through that attribute.

Error codes of the capture schema used here: 0 verified; 30 hardware error (the nonce does not
meet the difficulty); 21 job not found (the reply names a job id the driver never sent, so it
cannot be verified); 22 duplicate (same job, nonce and version already seen).

Vendor initialisation: :meth:`BM1366Driver.initialise` can also send the undocumented register
writes the Bitaxe firmware sends at start-up (registers 0xA8, 0x18, 0x3C, 0x54, 0x58, 0x2C and
the hash counting number 0x10); their values are protocol facts from ESP-Miner's
``components/asic/bm1366.c`` and are needed on real silicon. They are not required by the
emulator.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import serial
import xarray as xr
from tqdm.auto import tqdm

from asiclab import AsiclabError, dataset
from asiclab.protocol import bm1366, mining
from asiclab.protocol.bm1366 import (
    CHIP_ID,
    BM1366Job,
    ChipIdReply,
    NonceReply,
    RegisterReply,
    Reply,
)

__all__ = [
    "ERROR_DUPLICATE",
    "ERROR_HARDWARE",
    "ERROR_JOB_NOT_FOUND",
    "BM1366Driver",
    "ChipInfo",
    "ChipNotFoundError",
    "NonceEvent",
    "SentJob",
    "SyntheticJobs",
    "UARTError",
    "events_to_capture",
]

ERROR_HARDWARE = 30
"""Error code of a nonce that does not meet the difficulty (hardware error)."""
ERROR_JOB_NOT_FOUND = 21
"""Error code of a nonce whose job id the driver does not know (cannot be verified)."""
ERROR_DUPLICATE = 22
"""Error code of a repeated nonce (same job, nonce and version)."""

#: Undocumented start-up register writes of the Bitaxe firmware for the BM1366 (broadcast):
#: (register, value). Protocol facts from ESP-Miner ``BM1366_init``.
VENDOR_INIT_BROADCAST: tuple[tuple[int, bytes], ...] = (
    (0xA8, bytes.fromhex("00070000")),
    (0x18, bytes.fromhex("ff0fc100")),
)
#: Written after the addresses are assigned (broadcast).
VENDOR_INIT_AFTER_ADDRESS: tuple[tuple[int, bytes], ...] = (
    (0x3C, bytes.fromhex("80008540")),
    (0x3C, bytes.fromhex("80008020")),
)
#: Written after the ticket mask (broadcast, except 0x2C which the firmware sends to chip 0).
VENDOR_INIT_AFTER_TICKET: tuple[tuple[int, bytes], ...] = (
    (0x54, bytes.fromhex("00000003")),
    (0x58, bytes.fromhex("02111111")),
)
VENDOR_INIT_2C = (0x2C, bytes.fromhex("007c0003"))
#: Per-chip writes (to each chip's address).
VENDOR_INIT_PER_CHIP: tuple[tuple[int, bytes], ...] = (
    (0xA8, bytes.fromhex("000701f0")),
    (0x18, bytes.fromhex("f000c100")),
    (0x3C, bytes.fromhex("80008540")),
    (0x3C, bytes.fromhex("80008020")),
    (0x3C, bytes.fromhex("800082aa")),
)

_RAMP_START_MHZ = 50.0  # frequency assumed after reset when ramping (ESP-Miner's ramp start)


class UARTError(AsiclabError):
    """The serial port failed (cannot open, read or write), or a reply did not come.

    Attributes
    ----------
    capture : xarray.Dataset or None
        When raised by :meth:`BM1366Driver.capture`: the events captured before the failure.
    """

    capture: xr.Dataset | None = None


class ChipNotFoundError(UARTError):
    """No chip answered the chip-id read, or a chip that is not a BM1366 answered."""


@dataclass(frozen=True, slots=True)
class ChipInfo:
    """One chip found by :meth:`BM1366Driver.enumerate_chips`.

    Attributes
    ----------
    index : int
        Position in the chain (order of the chip-id replies).
    chip_id : int
        Chip id (0x1366).
    core_count_reported : int
        Core-count byte of the reply (a real BM1366 reports 0).
    core_count : int
        Cores of the model (112 for a BM1366).
    address : int
        Assigned address (-1 before :meth:`BM1366Driver.set_addresses`).
    """

    index: int
    chip_id: int
    core_count_reported: int
    core_count: int = bm1366.CORE_COUNT
    address: int = -1


@dataclass(slots=True)
class SentJob:
    """A job sent to the chips (kept while its chip job id is not reused).

    Attributes
    ----------
    job : BM1366Job
        The job as sent (with its chip job id).
    name : str
        Job name (Stratum job id or synthetic name) written to the capture's ``job_id``.
    t_host_ns, t_mono_ns : int
        When it was sent [ns].
    seen : set
        ``(nonce_bytes, rolled_version)`` already received, for duplicate detection.
    """

    job: BM1366Job
    name: str
    t_host_ns: int
    t_mono_ns: int
    seen: set[tuple[bytes, int]] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class NonceEvent:
    """One nonce reply, timestamped at the host and verified against its job.

    Attributes
    ----------
    t_host_ns : int
        Host receive time [ns since the Unix epoch] (``time.time_ns`` right after the read).
    t_mono_ns : int
        Host monotonic clock at receipt [ns] (``time.monotonic_ns``).
    chip_job_id : int
        Chip job id (reply id & 0xF8).
    job_name : str
        Name of the job (empty when unknown).
    core : int
        Core (0..127; BM1366 has 112).
    small_core : int
        Small core (0..7).
    chip : int
        Chip index (address // address interval).
    chip_address : int
        Chip address bits of the nonce.
    nonce : int
        Nonce as the u32 of the ``mining.submit`` hex (little-endian value of the reply bytes).
    nonce_bytes : bytes
        Reply bytes 2..5 (header bytes 76..79).
    rolled_version : int
        Version hashed (job version | rolled bits); -1 when the job is unknown.
    version_bits : int
        ``rolled_version XOR job version`` (capture schema); -1 when the job is unknown.
    difficulty : float
        Achieved share difficulty [1]; NaN when the job is unknown.
    verify_difficulty : float
        Difficulty the nonce was judged against [1].
    valid : bool
        The nonce meets ``verify_difficulty`` for its job and is not a duplicate.
    error_code : int
        0 valid, 30 hardware error, 21 job not found, 22 duplicate.
    raw : bytes
        The 11-byte reply.
    """

    t_host_ns: int
    t_mono_ns: int
    chip_job_id: int
    job_name: str
    core: int
    small_core: int
    chip: int
    chip_address: int
    nonce: int
    nonce_bytes: bytes
    rolled_version: int
    version_bits: int
    difficulty: float
    verify_difficulty: float
    valid: bool
    error_code: int
    raw: bytes


class SyntheticJobs:
    """Synthetic jobs for a pool-less capture: random Merkle roots, fixed version and nbits.

    A chip hashes whatever header it is given, so a random Merkle root is as good as a real one
    for timing and verification; the capture's attributes say that the jobs were synthetic.

    Parameters
    ----------
    seed : int
        Seed of the random Merkle roots and previous-block hash.
    version : int
        Job version (rolled bits are added by the chip).
    nbits : int
        Compact target written into the headers (not checked by the chip).
    """

    def __init__(self, seed: int = 0, *, version: int = 0x20000000,
                 nbits: int = 0x1703A30C) -> None:
        self._rng = np.random.default_rng([int(seed), 0xB1366])
        # previous-block hash in header order; the top 8 bytes of a real one are zero
        prev = bytearray(self._rng.bytes(32))
        prev[24:] = bytes(8)
        self.prevhash = bytes(prev)
        self.version = version
        self.nbits = nbits
        self.seed = int(seed)

    def __call__(self, index: int) -> dict[str, Any]:
        """Fields of job ``index`` for :meth:`BM1366Driver.send_job`."""
        return {
            "name": f"syn{index:06d}",
            "version": self.version,
            "prevhash": mining.swap_words(self.prevhash),  # notify format
            "merkle_root": self._rng.bytes(32),
            "ntime": int(time.time()) & 0xFFFFFFFF,
            "nbits": self.nbits,
        }

    def describe(self) -> str:
        """One line for the capture's parameters."""
        return (f"synthetic jobs (random merkle roots, seed={self.seed}, "
                f"version=0x{self.version:08x}, nbits=0x{self.nbits:08x})")


class BM1366Driver:
    """A chain of BM1366 chips on one UART.

    Parameters
    ----------
    url : str
        pyserial URL or device path (``/dev/ttyUSB0``, a pty path, ``loop://``,
        ``socket://127.0.0.1:port``).
    baudrate : int
        Initial baud rate [bit/s] (the chip starts at 115200).
    timeout : float
        Read timeout of one poll [s]; also the idle time after which a partial decision of the
        frame reader is settled.
    address_interval : int, optional
        Chip address spacing; default ``256 // number of chips`` once enumerated (1 chip: 256).
    verify_difficulty : float, optional
        Difficulty nonces are judged against; default: the ticket difficulty last written.

    Raises
    ------
    UARTError
        The port cannot be opened.
    """

    def __init__(self, url: str, *, baudrate: int = bm1366.INITIAL_BAUD, timeout: float = 0.02,
                 address_interval: int | None = None,
                 verify_difficulty: float | None = None) -> None:
        if not isinstance(url, str) or not url:
            raise UARTError(f"url: expected a non-empty string, got {url!r}")
        if not (isinstance(timeout, int | float) and 0 < timeout <= 10):
            raise UARTError(f"timeout must be in (0, 10] s, got {timeout!r}")
        self.url = url
        self._timeout = float(timeout)
        try:
            self._ser = serial.serial_for_url(url, baudrate=int(baudrate), timeout=self._timeout,
                                              write_timeout=2.0)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise UARTError(f"cannot open {url!r}: {exc}") from exc
        self._reader = bm1366.FrameReader()
        self._jobs: dict[int, SentJob] = {}
        self._last_job_id: int | None = None
        self._backlog: deque[NonceEvent] = deque()
        self.register_replies: deque[tuple[Reply, int, int]] = deque(maxlen=4096)
        """Register/chip-id replies seen while polling: ``(reply, t_host_ns, t_mono_ns)``."""
        self.chips: list[ChipInfo] = []
        self._address_interval = address_interval
        self._verify_difficulty = verify_difficulty
        self.ticket_difficulty: int | None = None
        self.frequency_mhz: float | None = None
        self.version_mask: int | None = None
        self.n_jobs_sent = 0
        self.n_nonces = 0
        self.n_valid = 0
        self._freq_log: list[tuple[int, float]] = []  # (t_host_ns, frequency) changes
        self.last_events: list[NonceEvent] = []
        """The nonce events of the last :meth:`capture` (with their raw frames)."""

    # ------------------------------------------------------------------ basics
    def __enter__(self) -> BM1366Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the port (idempotent)."""
        ser = getattr(self, "_ser", None)
        if ser is not None and ser.is_open:
            try:
                ser.close()
            except (serial.SerialException, OSError):  # pragma: no cover - best effort
                pass

    @property
    def is_open(self) -> bool:
        """True while the port is open."""
        return bool(self._ser.is_open)

    @property
    def baudrate(self) -> int:
        """Current host baud rate [bit/s]."""
        return int(self._ser.baudrate)

    @property
    def address_interval(self) -> int:
        """Chip address spacing (``256 // n_chips``; 256 before enumeration)."""
        if self._address_interval is not None:
            return self._address_interval
        return 256 // max(1, len(self.chips))

    @property
    def verify_difficulty(self) -> float:
        """Difficulty nonces are judged against [1] (explicit value, else the ticket difficulty,
        else 1)."""
        if self._verify_difficulty is not None:
            return float(self._verify_difficulty)
        if self.ticket_difficulty is not None:
            return float(self.ticket_difficulty)
        return 1.0

    @verify_difficulty.setter
    def verify_difficulty(self, value: float | None) -> None:
        if value is not None:
            v = float(value)
            if not math.isfinite(v) or v <= 0:
                raise bm1366.BM1366ValueError(f"verify_difficulty must be > 0, got {value!r}")
        self._verify_difficulty = value

    @property
    def jobs(self) -> dict[int, SentJob]:
        """Jobs still addressable by their chip job id (at most 16)."""
        return dict(self._jobs)

    def stats(self) -> dict[str, Any]:
        """Counters of the frame reader and of the nonces."""
        out: dict[str, Any] = dict(self._reader.stats())
        out.update(n_jobs_sent=self.n_jobs_sent, n_nonces=self.n_nonces, n_valid=self.n_valid)
        return out

    def write(self, frame: bytes) -> None:
        """Write raw bytes to the port.

        Raises
        ------
        UARTError
            Write failure or timeout.
        """
        try:
            n = self._ser.write(frame)
        except (serial.SerialException, serial.SerialTimeoutException, OSError) as exc:
            raise UARTError(f"write to {self.url!r} failed: {exc}") from exc
        if n is not None and n != len(frame):
            raise UARTError(f"short write to {self.url!r}: {n} of {len(frame)} bytes")

    def _read_chunk(self) -> tuple[bytes, int, int]:
        ser = self._ser
        try:
            waiting = ser.in_waiting
            data = ser.read(waiting if waiting else 1)
            if data:
                more = ser.in_waiting
                if more:
                    data += ser.read(more)
        except (serial.SerialException, OSError) as exc:
            raise UARTError(f"read from {self.url!r} failed: {exc}") from exc
        return data, time.time_ns(), time.monotonic_ns()

    # ------------------------------------------------------------------ reading
    def poll(self) -> list[NonceEvent]:
        """Read what the port has (waiting at most ``timeout``) and return the new nonces.

        Register and chip-id replies go to :attr:`register_replies`. When nothing arrives, the
        frame reader settles any pending decision
        (:meth:`asiclab.protocol.bm1366.FrameReader.flush`).
        """
        out: list[NonceEvent] = list(self._backlog)
        self._backlog.clear()
        nonces, _ = self._poll_once()
        out.extend(nonces)
        return out

    def _poll_once(self) -> tuple[list[NonceEvent], list[Reply]]:
        data, t_host, t_mono = self._read_chunk()
        if data:
            pairs = self._reader.feed_stamped(data, (t_host, t_mono))
        else:
            pairs = self._reader.flush_stamped()
        nonces: list[NonceEvent] = []
        regs: list[Reply] = []
        for reply, stamp in pairs:
            th, tm = stamp if stamp is not None else (t_host, t_mono)
            if isinstance(reply, NonceReply):
                nonces.append(self._nonce_event(reply, th, tm))
            else:
                self.register_replies.append((reply, th, tm))
                regs.append(reply)
        return nonces, regs

    def iter_nonces(self, duration_s: float | None = None) -> Iterator[NonceEvent]:
        """Yield nonce events as they arrive, for ``duration_s`` seconds (forever if None)."""
        end = None if duration_s is None else time.monotonic() + float(duration_s)
        while end is None or time.monotonic() < end:
            yield from self.poll()

    def _nonce_event(self, reply: NonceReply, t_host: int, t_mono: int) -> NonceEvent:
        sent = self._jobs.get(reply.job_id)
        chip = reply.chip_index(self.address_interval)
        vd = self.verify_difficulty
        self.n_nonces += 1
        if sent is None:
            return NonceEvent(t_host, t_mono, reply.job_id, "", reply.core, reply.small_core,
                              chip, reply.chip_address, reply.nonce, reply.nonce_bytes, -1, -1,
                              math.nan, vd, False, ERROR_JOB_NOT_FOUND, reply.raw)
        job = sent.job
        rolled = reply.rolled_version(job.version)
        digest = mining.sha256d(job.header(reply.nonce_bytes, rolled))
        diff = mining.share_difficulty(digest)
        key = (reply.nonce_bytes, rolled)
        if key in sent.seen:
            valid, code = False, ERROR_DUPLICATE
        else:
            sent.seen.add(key)
            valid = mining.meets_difficulty(digest, vd)
            code = 0 if valid else ERROR_HARDWARE
        self.n_valid += int(valid)
        return NonceEvent(t_host, t_mono, reply.job_id, sent.name, reply.core, reply.small_core,
                          chip, reply.chip_address, reply.nonce, reply.nonce_bytes, rolled,
                          rolled ^ job.version, diff, vd, valid, code, reply.raw)

    def _collect(self, predicate: Callable[[Reply], bool], *, idle_s: float, max_s: float,
                 first_wait_s: float | None = None, expected: int | None = None) -> list[Reply]:
        """Poll for matching replies; nonces arriving meanwhile are kept for :meth:`poll`.

        Stops ``idle_s`` after the last matching reply, after ``first_wait_s`` (default
        ``idle_s``) without any, when ``expected`` replies arrived, or after ``max_s``.
        """
        got: list[Reply] = []
        start = last = time.monotonic()
        first_wait = idle_s if first_wait_s is None else first_wait_s
        while True:
            now = time.monotonic()
            if (now - start >= max_s or (expected is not None and len(got) >= expected)
                    or (not got and now - start >= first_wait)
                    or (got and now - last >= idle_s)):
                break
            nonces, regs = self._poll_once()
            self._backlog.extend(nonces)
            new = [r for r in regs if predicate(r)]
            if new:
                got.extend(new)
                last = time.monotonic()
        return got

    # ------------------------------------------------------------------ chip set-up
    def reset_input(self) -> None:
        """Discard bytes waiting in the host receive buffer and the frame reader."""
        try:
            self._ser.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise UARTError(f"reset of {self.url!r} failed: {exc}") from exc
        self._reader.reset()

    def enumerate_chips(self, *, idle_s: float = 0.5, max_s: float = 5.0,
                        expected: int | None = None) -> list[ChipInfo]:
        """Broadcast a chip-id read and count the chips that answer.

        Parameters
        ----------
        idle_s : float
            Stop listening this long after the last reply [s] (ESP-Miner: 1 s).
        max_s : float
            Listen at most this long [s].
        expected : int, optional
            Number of chips expected; a different count raises :class:`ChipNotFoundError`.

        Returns
        -------
        list of ChipInfo
            One per replying chip, in reply order.

        Raises
        ------
        ChipNotFoundError
            No reply, a chip id other than 0x1366, or not the expected count.
        """
        self.write(bm1366.read_chip_id_command())
        replies = [r for r in self._collect(lambda r: isinstance(r, ChipIdReply), idle_s=idle_s,
                                            max_s=max_s) if isinstance(r, ChipIdReply)]
        if not replies:
            raise ChipNotFoundError(f"no chip answered the chip-id read on {self.url!r}")
        wrong = [r for r in replies if r.chip_id != CHIP_ID]
        if wrong:
            raise ChipNotFoundError(
                f"chip id 0x{wrong[0].chip_id:04x} on {self.url!r} is not a BM1366 (0x1366)")
        if expected is not None and len(replies) != expected:
            raise ChipNotFoundError(
                f"{len(replies)} chip(s) answered on {self.url!r}, expected {expected}")
        self.chips = [ChipInfo(i, r.chip_id, r.core_count) for i, r in enumerate(replies)]
        return list(self.chips)

    def set_addresses(self, n_chips: int | None = None) -> list[int]:
        """Chain inactive, then give chip ``i`` the address ``i * (256 // n_chips)``.

        Parameters
        ----------
        n_chips : int, optional
            Chips on the chain; default the enumerated count.

        Returns
        -------
        list of int
            The addresses assigned.
        """
        n = len(self.chips) if n_chips is None else int(n_chips)
        if not 1 <= n <= 256:
            raise bm1366.BM1366ValueError(f"n_chips must be in 1..256, got {n_chips!r}")
        interval = 256 // n
        self.write(bm1366.chain_inactive_command())
        addresses = [i * interval for i in range(n)]
        for a in addresses:
            self.write(bm1366.set_address_command(a))
        if len(self.chips) != n:
            self.chips = [ChipInfo(i, CHIP_ID, 0) for i in range(n)]
        self.chips = [dataclasses.replace(c, address=a) for c, a in zip(self.chips, addresses,
                                                                          strict=True)]
        self._address_interval = interval
        return addresses

    def write_register(self, register: int, value: int | bytes, *, chip_address: int = 0,
                       broadcast: bool = True) -> None:
        """Write a register (see :func:`asiclab.protocol.bm1366.write_register_command`)."""
        self.write(bm1366.write_register_command(register, value, chip_address=chip_address,
                                                 broadcast=broadcast))

    def read_register(self, register: int, *, chip_address: int = 0, broadcast: bool = True,
                      idle_s: float = 0.2, max_s: float = 2.0) -> list[RegisterReply]:
        """Read a register and collect the replies (nonces arriving meanwhile are kept).

        Waits up to ``max_s`` for the first reply (it may queue behind nonces), then until every
        known chip answered or ``idle_s`` passed without a further reply.

        Returns
        -------
        list of RegisterReply
            One per replying chip (chip-id reads give :class:`ChipIdReply` instead; use
            :meth:`enumerate_chips`).
        """
        self.write(bm1366.read_register_command(register, chip_address=chip_address,
                                                broadcast=broadcast))
        expected = (len(self.chips) or None) if broadcast else 1
        got = self._collect(lambda r: isinstance(r, RegisterReply) and r.register == register,
                            idle_s=idle_s, max_s=max_s, first_wait_s=max_s, expected=expected)
        return [r for r in got if isinstance(r, RegisterReply)]

    def set_ticket_difficulty(self, difficulty: float) -> int:
        """Write the ticket mask; returns the effective (power-of-two) ticket difficulty."""
        self.write(bm1366.ticket_mask_command(difficulty))
        self.ticket_difficulty = bm1366.ticket_difficulty(difficulty)
        return self.ticket_difficulty

    def set_version_mask(self, mask: int = bm1366.DEFAULT_VERSION_MASK) -> None:
        """Write the version-rolling mask (register 0xA4)."""
        self.write(bm1366.version_mask_command(mask))
        self.version_mask = int(mask)

    def set_frequency(self, frequency_mhz: float, *, ramp: bool = False, step_mhz: float = 6.25,
                      step_delay_s: float = 0.1) -> float:
        """Set the PLL to the closest reachable frequency.

        Parameters
        ----------
        frequency_mhz : float
            Target frequency [MHz].
        ramp : bool
            Step there from the current frequency (50 MHz if unknown) in ``step_mhz`` steps, as
            the firmware does on real silicon.
        step_mhz : float
            Ramp step [MHz].
        step_delay_s : float
            Pause after each step [s].

        Returns
        -------
        float
            The frequency actually set [MHz].
        """
        target = bm1366.pll_setting(frequency_mhz)  # validates before anything is sent
        if ramp:
            cur = self.frequency_mhz if self.frequency_mhz is not None else _RAMP_START_MHZ
            if step_mhz <= 0:
                raise bm1366.BM1366ValueError(f"step_mhz must be > 0, got {step_mhz!r}")
            sign = 1 if frequency_mhz > cur else -1
            k = math.floor(cur / step_mhz) if sign > 0 else math.ceil(cur / step_mhz)
            k_end = (math.floor(frequency_mhz / step_mhz) if sign > 0
                     else math.ceil(frequency_mhz / step_mhz))
            while (k < k_end) if sign > 0 else (k > k_end):
                k += sign
                f = k * step_mhz
                if f > 0:
                    self.write(bm1366.pll_command(f))
                    if step_delay_s > 0:
                        time.sleep(step_delay_s)
        self.write(bm1366.write_register_command(bm1366.REG_PLL0, target.register_value))
        self.frequency_mhz = target.frequency_mhz
        self._freq_log.append((time.time_ns(), self.frequency_mhz))
        return self.frequency_mhz

    def set_fast_baud(self, *, settle_s: float = 0.01) -> int:
        """Switch the chips to 1,000,000 baud (register 0x28), then the host port.

        On a pseudo-terminal the baud rate has no effect (but is still set); on ``socket://``
        it is ignored by pyserial.

        Returns
        -------
        int
            The new host baud rate [bit/s].
        """
        self.write(bm1366.fast_uart_command())
        try:
            self._ser.flush()
        except (serial.SerialException, OSError) as exc:
            raise UARTError(f"flush of {self.url!r} failed: {exc}") from exc
        time.sleep(settle_s)
        try:
            self._ser.baudrate = bm1366.FAST_BAUD
        except (serial.SerialException, ValueError, OSError) as exc:
            raise UARTError(f"cannot set {self.url!r} to {bm1366.FAST_BAUD} baud: {exc}") from exc
        return self.baudrate

    def initialise(self, *, expected_chips: int | None = None,
                   frequency_mhz: float = bm1366.DEFAULT_FREQUENCY_MHZ,
                   ticket_difficulty: float = bm1366.DEFAULT_TICKET_DIFFICULTY,
                   version_mask: int = bm1366.DEFAULT_VERSION_MASK, fast_baud: bool = False,
                   vendor_init: bool = True, ramp: bool = True, step_delay_s: float = 0.1,
                   enumerate_idle_s: float = 0.5) -> list[ChipInfo]:
        """Bring a chain up in the order of the Bitaxe firmware.

        Version mask (x3), chip-id read and count, [vendor registers], chain inactive and
        addresses, [vendor registers], ticket mask, [vendor registers], PLL (ramped),
        [hash counting number], version mask, [fast UART].

        Returns
        -------
        list of ChipInfo
            The chips, with their addresses.
        """
        for _ in range(3):
            self.set_version_mask(version_mask)
        self.enumerate_chips(idle_s=enumerate_idle_s, expected=expected_chips)
        if vendor_init:
            for reg, val in VENDOR_INIT_BROADCAST:
                self.write_register(reg, val)
        self.set_addresses()
        if vendor_init:
            for reg, val in VENDOR_INIT_AFTER_ADDRESS:
                self.write_register(reg, val)
        self.set_ticket_difficulty(ticket_difficulty)
        if vendor_init:
            for reg, val in VENDOR_INIT_AFTER_TICKET:
                self.write_register(reg, val)
            self.write_register(*VENDOR_INIT_2C, broadcast=False)
            for chip in self.chips:
                for reg, val in VENDOR_INIT_PER_CHIP:
                    self.write_register(reg, val, chip_address=chip.address, broadcast=False)
        f = self.set_frequency(frequency_mhz, ramp=ramp, step_delay_s=step_delay_s)
        if vendor_init:
            self.write_register(bm1366.REG_HASH_COUNTING, bm1366.hash_counting_number(
                f, n_chips=len(self.chips)))
        self.set_version_mask(version_mask)
        if fast_baud:
            self.set_fast_baud()
        return list(self.chips)

    # ------------------------------------------------------------------ jobs
    def send_bm1366_job(self, job: BM1366Job, name: str = "") -> BM1366Job:
        """Send a prepared job under the next chip job id (its own id is replaced).

        Returns
        -------
        BM1366Job
            The job as sent (with the chip job id used).
        """
        job_id = bm1366.next_job_id(self._last_job_id)
        sent_job = dataclasses.replace(job, job_id=job_id)
        self.write(sent_job.frame())
        self._last_job_id = job_id
        self._jobs[job_id] = SentJob(sent_job, str(name), time.time_ns(), time.monotonic_ns())
        self.n_jobs_sent += 1
        return sent_job

    def send_job(self, *, version: int | str, prevhash: str | bytes, ntime: int | str,
                 nbits: int | str, merkle_root: str | bytes | None = None,
                 coinb1: str | bytes | None = None, extranonce1: str | bytes | None = None,
                 extranonce2: str | bytes | None = None, coinb2: str | bytes | None = None,
                 merkle_branch: Sequence[str | bytes] = (), starting_nonce: int = 0,
                 name: str = "") -> BM1366Job:
        """Send a job from Stratum fields.

        Parameters
        ----------
        version, ntime, nbits : int or str
            As in ``mining.notify`` (int or big-endian hex).
        prevhash : str or bytes
            ``mining.notify`` prevhash (4-byte words byte-swapped).
        merkle_root : str or bytes, optional
            Merkle root as hashed; or give the coinbase parts and ``merkle_branch``.
        coinb1, extranonce1, extranonce2, coinb2 : str or bytes, optional
            Coinbase parts (``coinbase = coinb1 + extranonce1 + extranonce2 + coinb2``).
        merkle_branch : sequence of str or bytes
            Merkle branch of ``mining.notify``.
        starting_nonce : int
            Starting nonce field.
        name : str
            Job name recorded with its nonces (e.g. the Stratum job id).

        Returns
        -------
        BM1366Job
            The job as sent.
        """
        parts = (coinb1, extranonce1, extranonce2, coinb2)
        try:
            if merkle_root is None:
                if any(p is None for p in parts):
                    raise bm1366.BM1366ValueError(
                        "give merkle_root or all of coinb1, extranonce1, extranonce2, coinb2")
                root = mining.merkle_root_from_coinbase(
                    mining.build_coinbase(*parts), merkle_branch)  # type: ignore[arg-type]
            else:
                root = merkle_root
        except mining.MiningError as exc:
            raise bm1366.BM1366ValueError(str(exc)) from exc
        job = BM1366Job.from_stratum(0, version=version, prevhash=prevhash, merkle_root=root,
                                     ntime=ntime, nbits=nbits, starting_nonce=starting_nonce)
        return self.send_bm1366_job(job, name)

    # ------------------------------------------------------------------ capture
    def capture(self, duration_s: float, *,
                jobs: Callable[[int], Mapping[str, Any]] | str | None = "synthetic",
                job_interval_s: float | None = 2.0, source_kind: str = "hardware",
                title: str | None = None, voltage_mV: float | None = None,
                seed: int | None = 0, max_events: int | None = None, progress: bool = True,
                parameters: Mapping[str, Any] | None = None,
                attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
        """Record nonces for ``duration_s`` seconds and return a capture dataset.

        Parameters
        ----------
        duration_s : float
            Capture duration [s].
        jobs : callable, "synthetic" or None
            Job source: ``jobs(i)`` returns the keyword arguments of :meth:`send_job` (plus
            ``name``) for the i-th job; ``"synthetic"`` uses :class:`SyntheticJobs` (``seed``);
            None sends no job (the caller does).
        job_interval_s : float or None
            Send a fresh job this often [s] (the firmware: 2 s); None: only one at the start.
        source_kind : str
            ``"hardware"`` for a real port; ``"emulated"`` for an emulator.
        title : str, optional
            Title attribute.
        voltage_mV : float, optional
            Core voltage set by the board [mV] (the UART cannot set or read it); NaN if None.
        seed : int or None
            Seed of the synthetic jobs (stored in the attributes).
        max_events : int, optional
            Stop after this many nonces.
        progress : bool
            Show a tqdm bar.
        parameters : mapping, optional
            Extra entries for the ``parameters`` attribute.
        attrs : mapping, optional
            Extra global attributes (override the defaults).

        Returns
        -------
        xarray.Dataset
            Capture with one device per chip (see :func:`events_to_capture`). After Ctrl-C the
            events so far are returned (``parameters["interrupted"] = true``).

        Raises
        ------
        UARTError
            Port failure. This and any other asiclab error during the capture (e.g. a bad job
            from ``jobs``) carry what was captured in their ``capture`` attribute.
        """
        d = float(duration_s)
        if not math.isfinite(d) or d <= 0:
            raise bm1366.BM1366ValueError(f"duration_s must be > 0, got {duration_s!r}")
        if source_kind not in dataset.SOURCE_KINDS:
            raise bm1366.BM1366ValueError(
                f"source_kind must be one of {dataset.SOURCE_KINDS}, got {source_kind!r}")
        if jobs == "synthetic":
            source: Callable[[int], Mapping[str, Any]] | None = SyntheticJobs(seed or 0)
            jobs_desc = source.describe()  # type: ignore[union-attr]
        elif jobs is None:
            source, jobs_desc = None, "sent by the caller"
        elif callable(jobs):
            source, jobs_desc = jobs, getattr(jobs, "describe", lambda: "caller's job source")()
        else:
            raise bm1366.BM1366ValueError(f"jobs: expected a callable, 'synthetic' or None, "
                                          f"got {jobs!r}")
        events: list[NonceEvent] = []
        stats0 = self._reader.stats()
        t_start = time.time_ns()
        mono_start = time.monotonic()
        end = mono_start + d
        next_job = mono_start
        job_index = 0
        interrupted = False
        error: AsiclabError | None = None
        bar = tqdm(total=round(d, 3), unit="s", desc=f"capture {self.url}", disable=not progress,
                   leave=False)
        shown = 0.0
        try:
            while True:
                now = time.monotonic()
                if now >= end or (max_events is not None and len(events) >= max_events):
                    break
                if source is not None and now >= next_job:
                    fields = dict(source(job_index))
                    name = str(fields.pop("name", f"job{job_index:06d}"))
                    self.send_job(name=name, **fields)
                    job_index += 1
                    next_job = (now + job_interval_s) if job_interval_s else math.inf
                events.extend(self.poll())
                elapsed = min(d, time.monotonic() - mono_start)
                if elapsed - shown >= 0.1:
                    bar.update(round(elapsed - shown, 3))
                    shown = elapsed
                    bar.set_postfix(nonces=len(events), crc_err=self._reader.n_crc_errors,
                                    refresh=False)
        except KeyboardInterrupt:
            interrupted = True
            warnings.warn(f"capture interrupted after {len(events)} nonces; keeping them",
                          stacklevel=2)
        except AsiclabError as exc:  # port failure, bad job from the job source...
            error = exc
        finally:
            bar.close()
        t_end = time.time_ns()
        self.last_events = events
        stats1 = self._reader.stats()
        reader_stats = {k: stats1[k] - stats0.get(k, 0) for k in stats1}
        params: dict[str, Any] = {
            "url": self.url, "baudrate": self.baudrate, "duration_s": d,
            "frequency_MHz": self.frequency_mhz, "ticket_difficulty": self.ticket_difficulty,
            "verify_difficulty": self.verify_difficulty, "version_mask": self.version_mask,
            "address_interval": self.address_interval, "n_chips": max(1, len(self.chips)),
            "jobs": jobs_desc, "job_interval_s": job_interval_s, "n_jobs": job_index,
            "reader": reader_stats, "interrupted": interrupted,
            "error": None if error is None else str(error),
        }
        params.update(parameters or {})
        all_attrs: dict[str, Any] = {
            "title": title or f"BM1366 UART capture on {self.url}",
            "firmware": "none (direct UART, asiclab.devices.bm1366_uart)",
        }
        all_attrs.update(attrs or {})
        ds = events_to_capture(
            events, n_chips=max(1, len(self.chips)), device_name=self.url,
            source_kind=source_kind, freq_log=self._freq_log, t_start_ns=t_start,
            t_end_ns=t_end, voltage_mV=voltage_mV, seed=seed, parameters=params, attrs=all_attrs)
        if error is not None:
            error.capture = ds  # type: ignore[attr-defined]
            raise error
        return ds


def events_to_capture(events: Sequence[NonceEvent], *, n_chips: int = 1,
                      device_name: str = "bm1366", source_kind: str = "hardware",
                      freq_log: Sequence[tuple[int, float]] = (), t_start_ns: int | None = None,
                      t_end_ns: int | None = None, voltage_mV: float | None = None,
                      seed: int | None = None, parameters: Mapping[str, Any] | None = None,
                      attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Build a capture dataset from nonce events (one device per chip).

    Parameters
    ----------
    events : sequence of NonceEvent
        The nonces.
    n_chips : int
        Chips on the chain; device ``i`` is chip ``i`` (``"<device_name>#chip<i>"``). Events of a
        chip index outside the chain go to an extra device ``"<device_name>#chip?"``.
    device_name : str
        Port or label.
    source_kind : str
        ``hardware`` or ``emulated``.
    freq_log : sequence of (t_host_ns, frequency_MHz)
        Frequency changes; each segment overlapping the capture is one operating point per chip.
    t_start_ns, t_end_ns : int, optional
        Capture window [ns since the epoch]; default the first/last event.
    voltage_mV : float, optional
        Core voltage set [mV] (NaN if unknown).
    seed : int, optional
        Seed attribute.
    parameters : mapping, optional
        ``parameters`` attribute (stored as JSON).
    attrs : mapping, optional
        Further global attributes.

    Returns
    -------
    xarray.Dataset
        Validated capture.
    """
    ev = list(events)
    t_host = np.array([e.t_host_ns for e in ev], dtype=np.int64)
    if t_start_ns is None:
        t_start_ns = int(t_host.min()) if ev else time.time_ns()
    if t_end_ns is None:
        t_end_ns = int(t_host.max()) if ev else t_start_ns
    chips = np.array([e.chip for e in ev], dtype=np.int64)
    n_dev = n_chips + int(bool(ev) and bool(np.any((chips < 0) | (chips >= n_chips))))
    dev_index = np.where((chips >= 0) & (chips < n_chips), chips, n_chips).astype(np.int32)
    names = [f"{device_name}#chip{i}" for i in range(n_chips)]
    if n_dev > n_chips:
        names.append(f"{device_name}#chip?")
    # operating points: frequency segments within [t_start, t_end], per chip
    segments: list[tuple[int, int, float]] = []
    log = sorted(freq_log)
    current = math.nan
    for t, f in log:
        if t <= t_start_ns:
            current = f
    bounds = [t_start_ns] + [t for t, _ in log if t_start_ns < t < t_end_ns] + [t_end_ns]
    freqs = [current] + [f for t, f in log if t_start_ns < t < t_end_ns]
    for a, b, f in zip(bounds[:-1], bounds[1:], freqs, strict=True):
        segments.append((a, b, f))
    v = math.nan if voltage_mV is None else float(voltage_mV)
    op_dev, op_v, op_f, op_a, op_b = [], [], [], [], []
    for d in range(n_dev):
        for a, b, f in segments:
            op_dev.append(d)
            op_v.append(v)
            op_f.append(f)
            op_a.append(a)
            op_b.append(b)
    n_seg = len(segments)
    op_index = np.full(len(ev), -1, dtype=np.int32)
    if ev and n_seg:
        starts = np.array([s[0] for s in segments], dtype=np.int64)
        seg = np.searchsorted(starts, t_host, side="right") - 1
        inside = (seg >= 0) & (t_host <= t_end_ns) & (t_host >= t_start_ns)
        op_index = np.where(inside, dev_index * n_seg + np.clip(seg, 0, n_seg - 1),
                            -1).astype(np.int32)
    events_cols = {
        "t_host_ns": t_host,
        "t_mono_ns": np.array([e.t_mono_ns for e in ev], dtype=np.int64),
        "nonce": np.array([e.nonce for e in ev], dtype=np.int64),
        "job_id": np.array([e.job_name for e in ev], dtype=object),
        "core_id": np.array([e.core for e in ev], dtype=np.int32),
        "version_bits": np.array([e.version_bits for e in ev], dtype=np.int64),
        "difficulty": np.array([e.difficulty for e in ev], dtype=np.float64),
        "pool_difficulty": np.array([e.verify_difficulty for e in ev], dtype=np.float64),
        "valid": np.array([e.valid for e in ev], dtype=bool),
        "error_code": np.array([e.error_code for e in ev], dtype=np.int16),
        "device_index": dev_index,
        "op_index": op_index,
    }
    ops = {"op_device_index": np.array(op_dev, dtype=np.int32),
           "op_voltage_set": np.array(op_v, dtype=np.float64),
           "op_frequency_set": np.array(op_f, dtype=np.float64),
           "op_t_start_ns": np.array(op_a, dtype=np.int64),
           "op_t_end_ns": np.array(op_b, dtype=np.int64)}
    devices = {"device_name": np.array(names, dtype=object),
               "device_model": np.array(["BM1366"] * n_dev, dtype=object),
               "device_source_kind": np.array([source_kind] * n_dev, dtype=object)}
    params = dict(parameters or {})
    full_attrs: dict[str, Any] = {
        "source_kind": source_kind, "device_model": "BM1366", "seed": seed,
        "parameters": json.dumps(params, default=str, sort_keys=True),
        "title": "BM1366 UART capture", "source_file": None,
    }
    full_attrs.update(attrs or {})
    return dataset.build_capture(events=events_cols, ops=ops, devices=devices,
                                 attrs=full_attrs)


def port_from_env(var: str = "ASICLAB_UART_PORT") -> str | None:
    """The UART port named by an environment variable (for hardware tests), or None."""
    value = os.environ.get(var, "").strip()
    return value or None
