"""Crash-safe, append-only capture journal, and recovery of a capture dataset from it.

A live capture (the Stratum capture server, telemetry pollers, operating-point sweeps) streams
every record to a journal file *as it happens*. A background thread flushes the journal to the
operating system at least every ``flush_interval_s`` (default 0.5 s), so a ``kill -9`` of the
capture process loses at most the records of the last flush interval. :func:`recover` turns a
journal -- complete or cut short -- into a capture dataset (:func:`asiclab.dataset.build_capture`,
schema of ``docs/ARCHITECTURE.md``). Nothing is kept in memory per event: the journal is the
store.

Journal format (version 1)
--------------------------
UTF-8 text, one JSON array per line ("JSON lines"), written append-only. The first element of
every array is a one-letter record tag; the header record holds provenance and the field lists.

``["H", {...}]``
    Header, always the first line: ``format`` (``"asiclab-journal"``), ``format_version`` (1),
    ``created`` (ISO 8601 UTC), ``t_host_ns``, ``t_mono_ns`` (clocks at creation), ``attrs``
    (global attributes of the capture: ``source_kind``, ``title``, ``parameters``, ``seed``,
    ``software_version``, ``git_commit``, ...; ``null`` = unknown) and ``fields`` (the field
    names of every positional record below).
``["A", {...}]``
    Update of global attributes (later values win).
``["D", device_index, name, model, source_kind, firmware]``
    Device registration (worker name, port or label). A later ``D`` with the same index replaces
    the earlier one (e.g. when the agent string arrives after the worker name).
``["E", t_host_ns, t_mono_ns, device_index, op_index, job_id, nonce, core_id, version_bits,
difficulty, pool_difficulty, valid, error_code, extranonce2, ntime, processing_delay_ns]``
    One event (share / nonce / submission), units and sentinels as in the capture schema
    (``-1`` unknown integer, ``null`` unknown float, ``""`` unknown text; ``valid`` is 0/1).
    ``extranonce2`` and ``ntime`` are the submitted hex (``""`` when not a Stratum share);
    ``processing_delay_ns`` is the time from the socket read to the verdict [ns] (-1 unknown;
    records of older journals without it read as -1).
``["T", t_host_ns, t_mono_ns, device_index, op_index, temperature, power, voltage_set,
voltage_measured, frequency, hashrate]``
    One telemetry sample [degC, W, mV, mV, MHz, GH/s].
``["O", op_index, device_index, voltage_set, frequency_set, t_start_ns, t_end_ns]``
    Operating point [mV, MHz, ns since epoch]; ``t_end_ns`` is ``-1`` while the point is open.
``["X", op_index, t_end_ns]``
    End of an open operating point.
``["J", {...}]``
    A Stratum job as sent (``job_id``, ``clean``, ``payload`` hex, ``version``, ``nbits``,
    ``ntime``, ``prevhash``, ``coinb1``, ``coinb2``, ``merkle_branch``, clocks); see
    :func:`read_jobs`.
``["N", t_host_ns, kind, {...}]``
    Note: connections, disconnections, protocol abuse, telemetry gaps.
``["Z", {...}]``
    Footer, written by :meth:`Journal.close`; its absence means the capture was cut short.

Floats that are NaN or infinite are written as ``null``. Records are self-delimiting (a JSON
array is only valid once its closing bracket is written), so a record torn by a crash can be told
apart from a complete one; :func:`recover` drops a torn *last* record and reports it in the
``journal_torn_records`` attribute. A damaged record in the middle of the file (disk corruption)
raises :class:`JournalError` unless ``skip_damaged=True``.

Durability: a flush hands the data to the operating system (survives the death of the process);
``fsync=True`` additionally forces it to the disk at every flush (survives a power cut).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from asiclab import AsiclabError, __version__

__all__ = [
    "EVENT_FIELDS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "OP_FIELDS",
    "SOURCE_KINDS",
    "TELEMETRY_FIELDS",
    "Journal",
    "JournalContents",
    "JournalError",
    "LatencyStats",
    "clean_text",
    "read_jobs",
    "read_journal",
    "recover",
    "recover_to_file",
]

FORMAT_NAME = "asiclab-journal"
FORMAT_VERSION = 1

#: Field names of the positional records (after the tag), as written in the header.
EVENT_FIELDS: tuple[str, ...] = (
    "t_host_ns", "t_mono_ns", "device_index", "op_index", "job_id", "nonce", "core_id",
    "version_bits", "difficulty", "pool_difficulty", "valid", "error_code", "extranonce2",
    "ntime", "processing_delay_ns",
)
#: Events of journals written before ``processing_delay_ns`` have this many fields.
_OLD_EVENT_LEN = 15
TELEMETRY_FIELDS: tuple[str, ...] = (
    "t_host_ns", "t_mono_ns", "device_index", "op_index", "temperature", "power",
    "voltage_set", "voltage_measured", "frequency", "hashrate",
)
OP_FIELDS: tuple[str, ...] = (
    "op_index", "device_index", "voltage_set", "frequency_set", "t_start_ns", "t_end_ns",
)
DEVICE_FIELDS: tuple[str, ...] = ("device_index", "name", "model", "source_kind", "firmware")
SOURCE_KINDS = ("hardware", "emulated", "simulated", "imported", "unknown")

_TEL_FLOATS = ("temperature", "power", "voltage_set", "voltage_measured", "frequency", "hashrate")
_EVENT_CHUNK = 65536  # events parsed per batch during recovery (bounds temporary memory)
_MAX_TEXT = 256  # longest text field kept from outside input [characters]


class JournalError(AsiclabError):
    """A journal cannot be written, or a file is not a (readable) asiclab journal."""


# --------------------------------------------------------------------------- encoding helpers


def _num(x: float) -> str:
    """JSON text of a float; NaN and infinities become ``null``."""
    return repr(float(x)) if math.isfinite(x) else "null"


def clean_text(value: str, max_len: int = _MAX_TEXT) -> str:
    """Truncate text and replace characters NetCDF cannot keep (NUL, lone surrogates, other
    non-printable characters) by U+FFFD, so outside input can never break a saved capture."""
    s = value[:max_len]
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else "\ufffd" for c in s)


def _text(value: Any) -> str:
    """JSON string literal of an outside text field (cleaned, truncated to a sane length)."""
    s = value if isinstance(value, str) else ("" if value is None else str(value))
    return json.dumps(clean_text(s))


def _int(value: Any, name: str, default: int = -1) -> int:
    if value is None:
        return default
    if isinstance(value, bool):
        return int(value)
    try:
        out = int(value)
    except (TypeError, ValueError) as exc:
        raise JournalError(f"{name}: expected an integer, got {value!r}") from exc
    if out != value and not isinstance(value, str):
        raise JournalError(f"{name}: expected an integer, got {value!r}")
    return out


def _float(value: Any, name: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        raise JournalError(f"{name}: expected a number, got bool")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise JournalError(f"{name}: expected a number, got {value!r}") from exc


def _jsonable(value: Any) -> Any:
    """Attribute values as JSON: NaN -> None, numpy scalars -> Python, others -> str."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def _now() -> tuple[int, int]:
    return time.time_ns(), time.monotonic_ns()


def _record_device(f: Mapping[str, Any], allowed: Sequence[str], what: str) -> int:
    """Check the field names of an event / telemetry record; its ``device_index`` (default 0)."""
    unknown = set(f) - set(allowed)
    if unknown:
        raise JournalError(f"unknown {what} field(s): {sorted(unknown)}")
    dev = _int(f.get("device_index"), "device_index", 0)
    if dev < 0:
        raise JournalError(f"device_index must be >= 0, got {dev}")
    return dev


# --------------------------------------------------------------------------- latency statistics


class LatencyStats:
    """Bounded-memory sample of latencies (a stride-doubling systematic subsample).

    Parameters
    ----------
    capacity : int
        Most samples kept; when full, every other sample is dropped and the stride doubles, so
        memory stays constant however many values are added.
    """

    def __init__(self, capacity: int = 65536) -> None:
        self.capacity = int(capacity)
        self.count = 0
        self._stride = 1
        self._samples: list[int] = []

    def add(self, value_ns: int) -> None:
        """Add one latency [ns]."""
        self.count += 1
        if self.count % self._stride == 0:
            self._samples.append(value_ns)
            if len(self._samples) >= self.capacity:
                self._samples = self._samples[1::2]
                self._stride *= 2

    def percentiles(self, q: tuple[float, ...] = (50.0, 99.0)) -> dict[float, float]:
        """Percentiles of the kept sample [ns] (NaN when empty)."""
        if not self._samples:
            return {p: math.nan for p in q}
        arr = np.asarray(self._samples, dtype=np.float64)
        return {p: float(np.percentile(arr, p)) for p in q}

    def __len__(self) -> int:
        return len(self._samples)


# --------------------------------------------------------------------------- writer


class Journal:
    """Append-only capture journal with a background flusher (see the module docstring).

    All ``append_*`` methods are thread-safe, cheap (they format one line and queue it) and never
    block on disk I/O; a daemon thread writes the queued lines and flushes them to the operating
    system every ``flush_interval_s`` (sooner when ``max_pending`` lines are queued).

    Parameters
    ----------
    path : path-like
        Journal file to create (parent directories are created).
    attrs : mapping, optional
        Global attributes of the capture (``source_kind``, ``title``, ``parameters``, ``seed``,
        ...); ``software_version`` and ``created`` are filled in.
    flush_interval_s : float
        Longest time a record waits before it is flushed [s]; at most 1 s.
    fsync : bool
        Also ``os.fsync`` at every flush (durable against power loss; slower).
    overwrite : bool
        Replace an existing file (default: refuse, raising :class:`JournalError`).
    max_pending : int
        Queued lines that wake the flusher before its interval is over.
    latency_stats : bool
        Sample, for events given a ``t_mono_ns``, the latency from that receipt time to the
        append (:attr:`append_latency`) and to the completed flush (:attr:`flush_latency`).

    Examples
    --------
    >>> with Journal(tmp / "cap.journal", attrs={"source_kind": "hardware"}) as j:  # doctest: +SKIP
    ...     dev = j.register_device("lv06-1", model="BM1366")
    ...     op = j.append_op(dev, 1200.0, 485.0)
    ...     j.append_event(device_index=dev, nonce=0x1234, valid=True, error_code=0)
    >>> ds = recover(tmp / "cap.journal")  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        attrs: Mapping[str, Any] | None = None,
        flush_interval_s: float = 0.5,
        fsync: bool = False,
        overwrite: bool = False,
        max_pending: int = 20000,
        latency_stats: bool = False,
    ) -> None:
        if not (isinstance(flush_interval_s, int | float) and 0 < flush_interval_s <= 1.0):
            raise JournalError(f"flush_interval_s must be in (0, 1] s, got {flush_interval_s!r}")
        self.path = Path(path)
        self.flush_interval_s = float(flush_interval_s)
        self.fsync = bool(fsync)
        self.max_pending = int(max_pending)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._fh = open(self.path, "wb" if overwrite else "xb")
        except FileExistsError as exc:
            raise JournalError(f"{self.path}: journal exists (pass overwrite=True)") from exc
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot create journal: {exc}") from exc
        self._lock = threading.Lock()  # guards the queue and the registries
        self._io_lock = threading.Lock()  # serialises writes (keeps record order)
        self._pending: list[str] = []
        self._pending_lat: list[int] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self.error: BaseException | None = None
        self.n_events = 0
        self.n_telemetry = 0
        self.n_records = 0
        self.n_flushes = 0
        self._devices: dict[str, int] = {}
        self._device_info: list[tuple[str, str, str, str]] = []
        self._n_ops = 0
        self._current_op: dict[int, int] = {}
        self._open_ops: set[int] = set()
        # recent windows per device: [t_start_ns, t_end_ns (-1 open), op_index]
        self._op_windows: dict[int, deque[list[int]]] = {}
        self.append_latency: LatencyStats | None = LatencyStats() if latency_stats else None
        self.flush_latency: LatencyStats | None = LatencyStats() if latency_stats else None
        t_host, t_mono = _now()
        full_attrs: dict[str, Any] = {
            "source_kind": None, "software_version": __version__, "title": None,
        }
        full_attrs.update({str(k): _jsonable(v) for k, v in (attrs or {}).items()})
        if full_attrs["source_kind"] is not None and full_attrs["source_kind"] not in SOURCE_KINDS:
            self._fh.close()
            self.path.unlink(missing_ok=True)
            raise JournalError(
                f"source_kind must be one of {SOURCE_KINDS}, got {full_attrs['source_kind']!r}")
        header = {
            "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
            "t_host_ns": t_host, "t_mono_ns": t_mono, "attrs": full_attrs,
            "fields": {"E": EVENT_FIELDS, "T": TELEMETRY_FIELDS, "O": OP_FIELDS,
                       "X": ("op_index", "t_end_ns"), "D": DEVICE_FIELDS,
                       "N": ("t_host_ns", "kind", "data")},
        }
        self._queue('["H",' + json.dumps(header, separators=(",", ":")) + "]\n")
        self.flush()
        self._thread = threading.Thread(target=self._flusher, name="asiclab-journal-flush",
                                        daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Journal({str(self.path)!r}, events={self.n_events}, "
                f"telemetry={self.n_telemetry}, closed={self._closed})")

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    # ------------------------------------------------------------------ queue and flushing
    def _queue(self, line: str) -> None:
        with self._lock:
            if self._closed:
                raise JournalError(f"{self.path}: journal is closed")
            self._pending.append(line)
            self.n_records += 1
            if len(self._pending) >= self.max_pending:
                self._wake.set()

    def _flusher(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                self._flush_once()
            except Exception as exc:  # kept in self.error; the lines stay queued and are retried
                self.error = exc

    def _flush_once(self) -> None:
        with self._io_lock:
            with self._lock:
                batch, self._pending = self._pending, []
                lat, self._pending_lat = self._pending_lat, []
            if not batch:
                return
            try:
                self._fh.write("".join(batch).encode("utf-8"))
                self._fh.flush()
                if self.fsync:
                    os.fsync(self._fh.fileno())
            except (OSError, ValueError) as exc:
                with self._lock:  # keep the data: put it back in front, retry later
                    self._pending[:0] = batch
                    self._pending_lat[:0] = lat
                self.error = exc
                raise JournalError(f"{self.path}: cannot write journal: {exc}") from exc
            self.error = None
            self.n_flushes += 1
            if lat and self.flush_latency is not None:
                now = time.monotonic_ns()
                for t in lat:
                    self.flush_latency.add(now - t)

    def flush(self) -> None:
        """Write every queued record and flush it to the operating system now.

        Raises
        ------
        JournalError
            The file cannot be written (the records stay queued).
        """
        self._flush_once()

    def close(self, *, footer: Mapping[str, Any] | None = None) -> Path:
        """Flush, write the footer record and close the file (idempotent).

        Parameters
        ----------
        footer : mapping, optional
            Extra items for the footer record (e.g. server statistics).

        Returns
        -------
        pathlib.Path
            The journal path.
        """
        if self._closed:
            return self.path
        t_host, t_mono = _now()
        info = {"t_host_ns": t_host, "t_mono_ns": t_mono, "n_events": self.n_events,
                "n_telemetry": self.n_telemetry, "n_ops": self._n_ops}
        info.update({str(k): _jsonable(v) for k, v in (footer or {}).items()})
        with self._lock:
            for op in sorted(self._open_ops):
                self._pending.append(f'["X",{op},{t_host}]\n')
            self._open_ops.clear()
            self._current_op.clear()
            self._pending.append('["Z",' + json.dumps(info, separators=(",", ":")) + "]\n")
            self._closed = True
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        try:
            self._flush_once()
        finally:
            if self.error is None:
                self._fh.close()
        return self.path

    # ------------------------------------------------------------------ attributes / devices
    def set_attrs(self, **attrs: Any) -> None:
        """Record (updated) global attributes of the capture (later values win)."""
        if "source_kind" in attrs and attrs["source_kind"] not in (None, *SOURCE_KINDS):
            raise JournalError(f"source_kind must be one of {SOURCE_KINDS}")
        self._queue('["A",' + json.dumps(_jsonable(attrs), separators=(",", ":")) + "]\n")

    def register_device(
        self, name: str, *, model: str = "", source_kind: str = "", firmware: str = ""
    ) -> int:
        """Index of the device called ``name``, registering it on first use.

        Parameters
        ----------
        name : str
            Worker name, port or label (unique key).
        model : str
            Device model, e.g. ``"BM1366"``.
        source_kind : str
            ``hardware``, ``emulated``, ``simulated`` or ``imported`` (``""`` unknown).
        firmware : str
            Firmware / agent string.

        Returns
        -------
        int
            Device index (0, 1, ... in order of registration). Registering a known name again
            with different non-empty details records the update and keeps the index.
        """
        if not isinstance(name, str) or not name:
            raise JournalError(f"device name must be a non-empty str, got {name!r}")
        if source_kind and source_kind not in SOURCE_KINDS:
            raise JournalError(f"source_kind must be one of {SOURCE_KINDS}, got {source_kind!r}")
        name = name[:_MAX_TEXT]
        with self._lock:
            idx = self._devices.get(name)
            if idx is None:
                idx = len(self._device_info)
                self._devices[name] = idx
                self._device_info.append((name, model, source_kind, firmware))
            else:
                old = self._device_info[idx]
                new = (name, model or old[1], source_kind or old[2], firmware or old[3])
                if new == old:
                    return idx
                self._device_info[idx] = new
            name, model, source_kind, firmware = self._device_info[idx]
        self._queue(f'["D",{idx},{_text(name)},{_text(model)},{_text(source_kind)},'
                    f'{_text(firmware)}]\n')
        return idx

    def device_index(self, name: str) -> int | None:
        """Index of a registered device, or ``None``."""
        return self._devices.get(name)

    @property
    def devices(self) -> list[str]:
        """Names of the registered devices, by index."""
        with self._lock:
            return [d[0] for d in self._device_info]

    # ------------------------------------------------------------------ operating points
    def append_op(
        self,
        device_index: int,
        voltage_set: float,
        frequency_set: float,
        t_start_ns: int | None = None,
        t_end_ns: int | None = None,
    ) -> int:
        """Record an operating point of one device.

        Without ``t_end_ns`` the point is *open*: it becomes the device's current operating point
        (events and telemetry of the device recorded from now on carry its index) until
        :meth:`end_op` or the next ``append_op`` for the same device. With ``t_end_ns`` a finished
        point is recorded; events inside its time window are assigned to it at recovery.

        Parameters
        ----------
        device_index : int
            Device (:meth:`register_device`).
        voltage_set : float
            Core voltage set [mV].
        frequency_set : float
            Frequency set [MHz].
        t_start_ns, t_end_ns : int, optional
            Start (default: now) and end [ns since the Unix epoch].

        Returns
        -------
        int
            Operating-point index.
        """
        dev = _int(device_index, "device_index")
        if dev < 0:
            raise JournalError(f"device_index must be >= 0, got {device_index!r}")
        v = _float(voltage_set, "voltage_set")
        f = _float(frequency_set, "frequency_set")
        t0 = time.time_ns() if t_start_ns is None else _int(t_start_ns, "t_start_ns")
        t1 = -1 if t_end_ns is None else _int(t_end_ns, "t_end_ns")
        lines = []
        with self._lock:
            if self._closed:
                raise JournalError(f"{self.path}: journal is closed")
            idx = self._n_ops
            self._n_ops += 1
            windows = self._op_windows.setdefault(dev, deque(maxlen=16))
            if t_end_ns is None:
                prev = self._current_op.get(dev)
                if prev is not None and prev in self._open_ops:
                    lines.append(f'["X",{prev},{t0}]\n')
                    self._open_ops.discard(prev)
                    self._end_window(prev, t0)
                self._current_op[dev] = idx
                self._open_ops.add(idx)
            windows.append([t0, t1, idx])
            lines.append(f'["O",{idx},{dev},{_num(v)},{_num(f)},{t0},{t1}]\n')
            self._pending.extend(lines)
            self.n_records += len(lines)
        return idx

    def end_op(self, op_index: int, t_end_ns: int | None = None) -> None:
        """Close an open operating point (default end: now) [ns since the Unix epoch]."""
        op = _int(op_index, "op_index")
        t1 = time.time_ns() if t_end_ns is None else _int(t_end_ns, "t_end_ns")
        with self._lock:
            if op not in self._open_ops:
                raise JournalError(f"operating point {op_index!r} is not open")
            self._open_ops.discard(op)
            self._end_window(op, t1)
            for dev, cur in list(self._current_op.items()):
                if cur == op:
                    del self._current_op[dev]
        self._queue(f'["X",{op},{t1}]\n')

    def _end_window(self, op: int, t1: int) -> None:
        """Set the end of an operating point's window (call with the lock held)."""
        for windows in self._op_windows.values():
            for w in windows:
                if w[2] == op:
                    w[1] = t1
                    return

    def op_at(self, device_index: int, t_host_ns: int) -> int:
        """Index of the device's operating point whose window holds ``t_host_ns``, or -1.

        Looks at the device's most recent points (a record is appended soon after its receipt
        time): an event received before a point began, but journalled after, stays outside it.

        Parameters
        ----------
        device_index : int
            Device.
        t_host_ns : int
            Receipt time [ns since the Unix epoch].
        """
        with self._lock:
            for t0, t1, idx in reversed(self._op_windows.get(device_index, ())):
                if t0 <= t_host_ns and (t1 < 0 or t_host_ns < t1):
                    return idx
        return -1

    def current_op(self, device_index: int) -> int:
        """Index of the device's open operating point, or -1."""
        return self._current_op.get(device_index, -1)

    def _op_of(self, device_index: int, op_index: Any) -> int:
        """``op_index`` of a record, by default the device's open operating point (or -1)."""
        return self.current_op(device_index) if op_index is None else _int(op_index, "op_index")

    # ------------------------------------------------------------------ events
    def append_event(self, row: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Record one event (share / nonce / submission).

        Parameters
        ----------
        row : mapping, optional
            Event columns by schema name (merged with the keyword arguments, which win).
        **fields
            ``t_host_ns``, ``t_mono_ns`` [ns] (default: now), ``device_index`` (default 0),
            ``op_index`` (default: the device's current operating point), ``job_id``, ``nonce``,
            ``core_id``, ``version_bits``, ``difficulty``, ``pool_difficulty``, ``valid``,
            ``error_code``, ``extranonce2``, ``ntime``, ``processing_delay_ns`` [ns].
        """
        f = dict(row or {})
        f.update(fields)
        dev = _record_device(f, EVENT_FIELDS, "event")
        t_host, t_mono = _now()
        self.append_event_fields(
            _int(f.get("t_host_ns"), "t_host_ns", t_host),
            _int(f.get("t_mono_ns"), "t_mono_ns", t_mono),
            dev,
            self._op_of(dev, f.get("op_index")),
            _text(f.get("job_id", "")),
            _int(f.get("nonce"), "nonce"),
            _int(f.get("core_id"), "core_id"),
            _int(f.get("version_bits"), "version_bits"),
            _float(f.get("difficulty"), "difficulty"),
            _float(f.get("pool_difficulty"), "pool_difficulty"),
            bool(f.get("valid", False)),
            _int(f.get("error_code"), "error_code"),
            _text(f.get("extranonce2", "")),
            _text(f.get("ntime", "")),
            _int(f.get("processing_delay_ns"), "processing_delay_ns"),
        )

    def append_event_fields(
        self,
        t_host_ns: int,
        t_mono_ns: int,
        device_index: int,
        op_index: int,
        job_id_json: str,
        nonce: int,
        core_id: int,
        version_bits: int,
        difficulty: float,
        pool_difficulty: float,
        valid: bool,
        error_code: int,
        extranonce2_json: str,
        ntime_json: str,
        processing_delay_ns: int = -1,
    ) -> None:
        """Fast path of :meth:`append_event` for already-checked values (used by the server).

        The three text fields must already be JSON string literals (``json.dumps(text)``).
        ``op_index`` ``-1`` means outside any operating point; ``processing_delay_ns`` is the
        time from receipt to the verdict [ns] (-1 unknown).
        """
        line = (f'["E",{t_host_ns},{t_mono_ns},{device_index},{op_index},{job_id_json},{nonce},'
                f"{core_id},{version_bits},{_num(difficulty)},{_num(pool_difficulty)},"
                f"{1 if valid else 0},{error_code},{extranonce2_json},{ntime_json},"
                f"{processing_delay_ns}]\n")
        lat = self.append_latency
        with self._lock:
            if self._closed:
                raise JournalError(f"{self.path}: journal is closed")
            self._pending.append(line)
            self.n_events += 1
            self.n_records += 1
            if lat is not None:
                lat.add(time.monotonic_ns() - t_mono_ns)
                if lat.count % lat._stride == 0:
                    self._pending_lat.append(t_mono_ns)
            if len(self._pending) >= self.max_pending:
                self._wake.set()

    # ------------------------------------------------------------------ telemetry
    def append_telemetry(self, row: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Record one telemetry sample.

        Accepts the rows of :func:`asiclab.devices.axeos.info_to_telemetry` directly, so
        ``AxeOSPoller(..., on_row=functools.partial(journal.append_telemetry, device_index=0))``
        journals every reading.

        Parameters
        ----------
        row : mapping, optional
            Sample columns (schema names; ``tel_`` prefixes are accepted).
        **fields
            ``t_host_ns``, ``t_mono_ns`` [ns] (default now), ``device_index`` (default 0),
            ``op_index`` (default: the device's current operating point), ``temperature``
            [degC], ``power`` [W], ``voltage_set``, ``voltage_measured`` [mV], ``frequency``
            [MHz], ``hashrate`` [GH/s].
        """
        f: dict[str, Any] = {}
        for k, v in {**dict(row or {}), **fields}.items():
            f[k[4:] if k.startswith("tel_") else k] = v
        dev = _record_device(f, TELEMETRY_FIELDS, "telemetry")
        t_host, t_mono = _now()
        op_i = self._op_of(dev, f.get("op_index"))
        vals = ",".join(_num(_float(f.get(k), k)) for k in _TEL_FLOATS)
        line = (f'["T",{_int(f.get("t_host_ns"), "t_host_ns", t_host)},'
                f'{_int(f.get("t_mono_ns"), "t_mono_ns", t_mono)},{dev},{op_i},{vals}]\n')
        with self._lock:
            if self._closed:
                raise JournalError(f"{self.path}: journal is closed")
            self._pending.append(line)
            self.n_telemetry += 1
            self.n_records += 1

    # ------------------------------------------------------------------ jobs and notes
    def append_job(self, job: Mapping[str, Any]) -> None:
        """Record a Stratum job as sent (see :func:`read_jobs`)."""
        self._queue('["J",' + json.dumps(_jsonable(job), separators=(",", ":")) + "]\n")

    def append_note(self, kind: str, data: Mapping[str, Any] | None = None, *,
                    t_host_ns: int | None = None) -> None:
        """Record a free-form note (connection, abuse, gap...) with a kind and a JSON object."""
        t = time.time_ns() if t_host_ns is None else int(t_host_ns)
        self._queue(f'["N",{t},{_text(kind)},'
                    + json.dumps(_jsonable(dict(data or {})), separators=(",", ":")) + "]\n")

    def append_gap(self, start_ns: int, end_ns: int, device_index: int = 0) -> None:
        """Record a telemetry gap (for ``AxeOSPoller(on_gap=...)``) [ns since the Unix epoch]."""
        self.append_note("telemetry_gap", {"start_ns": int(start_ns), "end_ns": int(end_ns),
                                           "device_index": int(device_index)})


# --------------------------------------------------------------------------- reader


@dataclass
class JournalContents:
    """Everything read back from a journal (see :func:`read_journal`).

    Attributes
    ----------
    header : dict
        The header record.
    attrs : dict
        Global attributes (header attributes updated by ``A`` records).
    events, telemetry : dict of str to numpy.ndarray
        Columns named as in :data:`EVENT_FIELDS` / :data:`TELEMETRY_FIELDS`.
    ops : dict of str to numpy.ndarray
        Columns named as in :data:`OP_FIELDS` (ends from ``X`` records applied).
    devices : list of dict
        ``name``, ``model``, ``source_kind``, ``firmware`` by device index.
    jobs : list of dict
        Job records, in order.
    notes : list of dict
        Notes (``t_host_ns``, ``kind``, ``data``).
    footer : dict or None
        Footer record; ``None`` when the journal was cut short (crash, kill).
    torn_records : int
        Unreadable records at the end of the file (a record torn by a crash), dropped.
    damaged_records : list of int
        Line numbers (1-based) of unreadable records before the end, skipped.
    """

    header: dict[str, Any]
    attrs: dict[str, Any]
    events: dict[str, np.ndarray]
    telemetry: dict[str, np.ndarray]
    ops: dict[str, np.ndarray]
    devices: list[dict[str, str]]
    jobs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    footer: dict[str, Any] | None = None
    torn_records: int = 0
    damaged_records: list[int] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether the journal was closed cleanly (footer present, nothing torn)."""
        return self.footer is not None and self.torn_records == 0


_EVENT_DTYPES = (np.int64, np.int64, np.int32, np.int32, object, np.int64, np.int32, np.int64,
                 np.float64, np.float64, bool, np.int16, object, object, np.int64)
_TEL_DTYPES = (np.int64, np.int64, np.int32, np.int32) + (np.float64,) * 6


def _columns(rows: list[list[Any]], names: tuple[str, ...], dtypes: tuple[Any, ...],
             first: int = 1) -> dict[str, np.ndarray]:
    """Convert positional records (tag at index 0) to typed numpy columns."""
    if not rows:
        return {n: np.zeros(0, dtype=d) for n, d in zip(names, dtypes, strict=True)}
    cols = list(zip(*rows, strict=True))[first:]
    out = {}
    for name, dt, col in zip(names, dtypes, cols, strict=True):
        if dt is np.float64:
            out[name] = np.array([np.nan if v is None else v for v in col], dtype=np.float64)
        elif dt is object:  # few distinct job ids / ntimes: share one str object per value
            cache: dict[str, str] = {}
            out[name] = np.array([cache.setdefault(v, v) if isinstance(v, str) else ""
                                  for v in col], dtype=object)
        else:
            out[name] = np.array(col, dtype=dt)
    return out


def _concat(parts: list[dict[str, np.ndarray]], names: tuple[str, ...],
            dtypes: tuple[Any, ...]) -> dict[str, np.ndarray]:
    if not parts:
        return _columns([], names, dtypes)
    return {n: np.concatenate([p[n] for p in parts]) for n in names}


def _is_event_row(r: Any) -> bool:
    return isinstance(r, list) and len(r) in (_OLD_EVENT_LEN, len(EVENT_FIELDS) + 1)


def _event_row(r: list[Any]) -> list[Any]:
    """An event record with every field (older records lack ``processing_delay_ns``)."""
    return r if len(r) == len(EVENT_FIELDS) + 1 else [*r, -1]


def _iter_lines(path: Path, block: int = 1 << 22) -> Iterator[tuple[bytes, bool]]:
    """Yield ``(line, terminated)``; only the last line can be unterminated."""
    with path.open("rb") as fh:
        rest = b""
        while True:
            data = fh.read(block)
            if not data:
                break
            data = rest + data
            lines = data.split(b"\n")
            rest = lines.pop()
            for line in lines:
                yield line, True
        if rest:
            yield rest, False


def read_journal(path: str | os.PathLike[str], *, skip_damaged: bool = False) -> JournalContents:
    """Read a journal (complete or cut short by a crash) into columns.

    Parameters
    ----------
    path : path-like
        Journal file.
    skip_damaged : bool
        Skip unreadable records in the middle of the file (listed in ``damaged_records``)
        instead of raising. Unreadable records at the *end* (a record torn by a crash) are
        always dropped and counted in ``torn_records``.

    Returns
    -------
    JournalContents

    Raises
    ------
    JournalError
        Not an asiclab journal (no header), unsupported format version, or damaged records in
        the middle of the file (without ``skip_damaged``).
    """
    path = Path(path)
    if not path.is_file():
        raise JournalError(f"{path}: no such journal")
    header: dict[str, Any] | None = None
    attrs: dict[str, Any] = {}
    ev_parts: list[dict[str, np.ndarray]] = []
    ev_rows: list[bytes] = []
    ev_linenos: list[int] = []
    tel_rows: list[list[Any]] = []
    op_rows: dict[int, list[Any]] = {}
    op_ends: dict[int, int] = {}
    devices: dict[int, dict[str, str]] = {}
    jobs: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    footer: dict[str, Any] | None = None
    bad: list[int] = []
    last_good = 0

    def flush_events() -> None:
        nonlocal last_good
        if not ev_rows:
            return
        try:
            rows = json.loads(b"[" + b",".join(ev_rows) + b"]")
            ok_rows = [_event_row(r) for r in rows if _is_event_row(r)]
            if len(ok_rows) != len(rows):
                raise ValueError("malformed event record")
            last_good = max(last_good, ev_linenos[-1])
        except (ValueError, RecursionError):
            ok_rows = []
            for raw, no in zip(ev_rows, ev_linenos, strict=True):
                try:
                    r = json.loads(raw)
                except (ValueError, RecursionError):
                    bad.append(no)
                    continue
                if _is_event_row(r):
                    ok_rows.append(_event_row(r))
                    last_good = max(last_good, no)
                else:
                    bad.append(no)
        try:
            ev_parts.append(_columns(ok_rows, EVENT_FIELDS, _EVENT_DTYPES))
        except (TypeError, ValueError, OverflowError):  # wrong value types inside records
            good = []
            for r in ok_rows:
                try:
                    _columns([r], EVENT_FIELDS, _EVENT_DTYPES)
                    good.append(r)
                except (TypeError, ValueError, OverflowError):
                    bad.append(-1)
            ev_parts.append(_columns(good, EVENT_FIELDS, _EVENT_DTYPES))
        ev_rows.clear()
        ev_linenos.clear()

    for lineno, (line, _terminated) in enumerate(_iter_lines(path), start=1):
        if line.startswith(b'["E",'):
            ev_rows.append(line)
            ev_linenos.append(lineno)
            if len(ev_rows) >= _EVENT_CHUNK:
                flush_events()
            continue
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, list) or not rec or not isinstance(rec[0], str):
                raise ValueError("not a tagged record")
            tag = rec[0]
            if lineno == 1:
                if tag != "H" or not isinstance(rec[1], dict) or \
                        rec[1].get("format") != FORMAT_NAME:
                    raise JournalError(f"{path}: not an asiclab journal (no header record)")
                if rec[1].get("format_version") != FORMAT_VERSION:
                    raise JournalError(f"{path}: unsupported journal format version "
                                       f"{rec[1].get('format_version')!r}")
                header = rec[1]
                attrs.update(header.get("attrs") or {})
            elif tag == "T":
                if len(rec) != 11:
                    raise ValueError("malformed telemetry record")
                tel_rows.append(rec)
            elif tag == "O":
                op_rows[int(rec[1])] = rec
            elif tag == "X":
                op_ends[int(rec[1])] = int(rec[2])
            elif tag == "D":
                devices[int(rec[1])] = {"name": str(rec[2]), "model": str(rec[3]),
                                        "source_kind": str(rec[4]), "firmware": str(rec[5])}
            elif tag == "J":
                jobs.append(dict(rec[1]))
            elif tag == "N":
                notes.append({"t_host_ns": int(rec[1]), "kind": str(rec[2]), "data": rec[3]})
            elif tag == "A":
                attrs.update(dict(rec[1]))
            elif tag == "Z":
                footer = dict(rec[1])
            elif tag == "E":
                raise ValueError("event record with unusual spacing")
            else:
                raise ValueError(f"unknown record tag {tag!r}")
            last_good = lineno
        except JournalError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, RecursionError, OverflowError):
            if lineno == 1:
                raise JournalError(f"{path}: not an asiclab journal (unreadable first line)"
                                   ) from None
            bad.append(lineno)
    flush_events()
    if header is None:
        raise JournalError(f"{path}: empty file, not an asiclab journal")
    torn = [b for b in bad if b > last_good]
    damaged = sorted(b for b in bad if b <= last_good)
    if damaged and not skip_damaged:
        shown = ", ".join(str(b) for b in damaged[:10])
        raise JournalError(f"{path}: {len(damaged)} damaged record(s) (line(s) {shown}); "
                           "pass skip_damaged=True to recover the rest")
    n_ops = max(op_rows) + 1 if op_rows else 0
    ops = {"op_index": np.arange(n_ops, dtype=np.int32),
           "device_index": np.zeros(n_ops, dtype=np.int32),
           "voltage_set": np.full(n_ops, np.nan), "frequency_set": np.full(n_ops, np.nan),
           "t_start_ns": np.full(n_ops, -1, dtype=np.int64),
           "t_end_ns": np.full(n_ops, -1, dtype=np.int64)}
    for k, rec in op_rows.items():
        ops["device_index"][k] = int(rec[2])
        ops["voltage_set"][k] = np.nan if rec[3] is None else float(rec[3])
        ops["frequency_set"][k] = np.nan if rec[4] is None else float(rec[4])
        ops["t_start_ns"][k] = int(rec[5])
        ops["t_end_ns"][k] = int(rec[6])
    for k, t1 in op_ends.items():
        if 0 <= k < n_ops:
            ops["t_end_ns"][k] = t1
    n_dev = max(devices) + 1 if devices else 0
    dev_list = [devices.get(i, {"name": f"device{i}", "model": "", "source_kind": "",
                                "firmware": ""}) for i in range(n_dev)]
    return JournalContents(
        header=header, attrs=attrs,
        events=_concat(ev_parts, EVENT_FIELDS, _EVENT_DTYPES),
        telemetry=_columns(tel_rows, TELEMETRY_FIELDS, _TEL_DTYPES),
        ops=ops, devices=dev_list, jobs=jobs, notes=notes, footer=footer,
        torn_records=len(torn), damaged_records=damaged,
    )


def read_jobs(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The Stratum jobs recorded in a journal (payload, coinbase parts, clocks), in order."""
    return read_journal(path, skip_damaged=True).jobs


def _assign_ops(dev: np.ndarray, op: np.ndarray, t: np.ndarray, ops: dict[str, np.ndarray],
                t_close: int) -> np.ndarray:
    """Give events without an operating point (-1) the point whose window holds them."""
    op = op.copy()
    for k in range(ops["op_index"].size):
        t0 = ops["t_start_ns"][k]
        t1 = ops["t_end_ns"][k]
        if t0 < 0:
            continue
        end = t1 if t1 >= 0 else t_close
        m = (op == -1) & (dev == ops["device_index"][k]) & (t >= t0) & (t < end)
        op[m] = k
    return op


def _infer_source_kind(kinds: list[str]) -> str:
    """Label a capture: anything not from hardware taints it (never passes as hardware)."""
    known = [k for k in kinds if k in SOURCE_KINDS]
    if not known:
        return "hardware"
    for k in ("simulated", "emulated", "imported", "unknown"):
        if k in known:
            return k
    return "hardware"


def contents_to_dataset(c: JournalContents, *, path: Path | None = None,
                        attrs: Mapping[str, Any] | None = None) -> Any:
    """Build the capture dataset (:func:`asiclab.dataset.build_capture`) from journal contents.

    Parameters
    ----------
    c : JournalContents
        Output of :func:`read_journal`.
    path : pathlib.Path, optional
        Journal path, stored in the ``journal_file`` attribute.
    attrs : mapping, optional
        Global attributes overriding those in the journal.

    Returns
    -------
    xarray.Dataset
    """
    from asiclab import dataset

    ev, tel, ops = c.events, c.telemetry, c.ops
    n_dev = len(c.devices)
    for arr in (ev["device_index"], tel["device_index"], ops["device_index"]):
        if arr.size:
            n_dev = max(n_dev, int(arr.max()) + 1)
    devices = list(c.devices) + [
        {"name": f"device{i}", "model": "", "source_kind": "", "firmware": ""}
        for i in range(len(c.devices), n_dev)]
    t_close = int(c.footer["t_host_ns"]) if c.footer else np.iinfo(np.int64).max
    ev_op = _assign_ops(ev["device_index"], ev["op_index"], ev["t_host_ns"], ops, t_close)
    tel_op = _assign_ops(tel["device_index"], tel["op_index"], tel["t_host_ns"], ops, t_close)
    n_ops = ops["op_index"].size
    ev_op[ev_op >= n_ops] = -1
    tel_op[tel_op >= n_ops] = -1
    a: dict[str, Any] = {k: v for k, v in c.attrs.items() if v is not None}
    a.update({k: v for k, v in (attrs or {}).items() if v is not None})
    if "source_kind" not in a:
        a["source_kind"] = _infer_source_kind([d["source_kind"] for d in devices])
    if "device_model" not in a:
        models = sorted({d["model"] for d in devices if d["model"]})
        a["device_model"] = ", ".join(models) if models else None
    if "firmware" not in a:
        fw = sorted({d["firmware"] for d in devices if d["firmware"]})
        a["firmware"] = "; ".join(fw) if fw else None
    a.setdefault("created", c.header.get("created"))
    a["journal_file"] = str(path) if path is not None else None
    a["journal_complete"] = int(c.complete)
    a["journal_torn_records"] = int(c.torn_records)
    a["journal_damaged_records"] = len(c.damaged_records)
    return dataset.build_capture(
        events={
            "t_host_ns": ev["t_host_ns"], "t_mono_ns": ev["t_mono_ns"], "nonce": ev["nonce"],
            "job_id": ev["job_id"], "core_id": ev["core_id"],
            "version_bits": ev["version_bits"], "difficulty": ev["difficulty"],
            "pool_difficulty": ev["pool_difficulty"], "valid": ev["valid"],
            "error_code": ev["error_code"], "device_index": ev["device_index"],
            "processing_delay_ns": ev["processing_delay_ns"],
            "op_index": ev_op,
        },
        telemetry={
            "tel_t_host_ns": tel["t_host_ns"], "tel_t_mono_ns": tel["t_mono_ns"],
            "tel_device_index": tel["device_index"], "tel_op_index": tel_op,
            **{k: tel[k] for k in _TEL_FLOATS},
        },
        ops={
            "op_device_index": ops["device_index"], "op_voltage_set": ops["voltage_set"],
            "op_frequency_set": ops["frequency_set"], "op_t_start_ns": ops["t_start_ns"],
            "op_t_end_ns": ops["t_end_ns"],
        },
        devices={
            "device_name": [d["name"] for d in devices],
            "device_model": [d["model"] for d in devices],
            "device_source_kind": [d["source_kind"] for d in devices],
        },
        attrs=a,
    )


def recover(journal_path: str | os.PathLike[str], *, skip_damaged: bool = False,
            attrs: Mapping[str, Any] | None = None) -> Any:
    """Recover the capture dataset from a journal, complete or cut short (e.g. by ``kill -9``).

    Everything that was flushed before the crash is recovered; a torn last record is dropped and
    counted in the ``journal_torn_records`` attribute; ``journal_complete`` is 1 only for a
    journal closed cleanly. Open operating points of a crashed capture keep ``op_t_end_ns = -1``.

    Parameters
    ----------
    journal_path : path-like
        Journal file.
    skip_damaged : bool
        Skip (instead of raising on) damaged records in the middle of the file.
    attrs : mapping, optional
        Global attributes overriding those recorded in the journal.

    Returns
    -------
    xarray.Dataset
        Capture following :mod:`asiclab.dataset`'s schema.

    Raises
    ------
    JournalError
        Not a journal, or damaged in the middle (see :func:`read_journal`).
    """
    path = Path(journal_path)
    return contents_to_dataset(read_journal(path, skip_damaged=skip_damaged), path=path,
                               attrs=attrs)


def recover_to_file(journal_path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
                    *, skip_damaged: bool = False) -> Path:
    """Recover a journal and save the capture as NetCDF (the ``asiclab recover`` command).

    Parameters
    ----------
    journal_path : path-like
        Journal file.
    out : path-like, optional
        Output ``.nc`` file (default: the journal path with the suffix ``.nc``).
    skip_damaged : bool
        See :func:`recover`.

    Returns
    -------
    pathlib.Path
        The written NetCDF file.
    """
    from asiclab import dataset

    path = Path(journal_path)
    target = Path(out) if out is not None else path.with_suffix(".nc")
    if target.resolve() == path.resolve():
        raise JournalError(f"{target}: output would overwrite the journal")
    return dataset.save_capture(recover(path, skip_damaged=skip_damaged), target)
