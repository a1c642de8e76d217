"""Readers of existing share logs into the capture schema (``source_kind = "imported"``).

Every importer returns one capture built with :func:`asiclab.dataset.build_capture`: one device,
one operating point (index 0, voltage and frequency unknown = NaN) covering the whole capture,
events sorted by host time. Where the log holds the Stratum job fields, every share is
re-verified by SHA256d (:mod:`asiclab.protocol.mining`); nothing the log claims about validity is
trusted.

Rows are never dropped:

* A row that parses but fails verification is kept with ``valid = False`` and
  ``error_code = 23`` (low-difficulty share: its SHA256d difficulty is below the pool
  difficulty), or ``error_code = 20`` (other) when it disagrees with the header or hash the log
  itself recorded (LV06 format). Its achieved ``difficulty`` is still stored.
* A malformed row (bad hex, missing field, unparsable number or time) raises
  :class:`ImportFormatError` naming the file and line, unless ``lenient=True``; then it is kept
  with ``valid = False`` and ``error_code = -1`` (:data:`ERROR_MALFORMED`), every field that
  did parse is kept, and the count and line numbers go to the attributes ``n_malformed_rows``
  and ``malformed_lines`` (JSON list). A malformed row whose time cannot be parsed has
  ``t_host_ns = t_mono_ns = -1`` and is placed after all timed events.

Times: ``t_host_ns`` is parsed from the decimal text of the log (exact to the nanosecond, no float
rounding). Logs carry no monotonic clock, so ``t_mono_ns`` is *derived*:
``t_host_ns - t_host_ns[first event]`` (attribute ``t_mono_note`` says so).

Global attributes added besides the schema's: ``source_file`` (path as given), ``source_sha256``,
``log_format``, ``n_rows``, ``n_verified`` (rows whose hash was checked), ``n_valid``,
``n_invalid`` (parsed rows failing verification), ``n_malformed_rows``, ``malformed_lines``,
``verification`` (what was checked), ``ticket_difficulty`` (where known), ``t_mono_note``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import xarray as xr

from asiclab import AsiclabError
from asiclab.dataset import build_capture
from asiclab.protocol import mining as mn

__all__ = [
    "ERROR_LOW_DIFFICULTY",
    "ERROR_MALFORMED",
    "ERROR_OTHER",
    "FORMATS",
    "LV06_DEVICE_MODEL",
    "LV06_VERSION_MASK",
    "S9_DEVICE_MODEL",
    "S9_TICKET_DIFFICULTY",
    "ImportFormatError",
    "import_generic_csv",
    "import_log",
    "import_lv06_proofs_csv",
    "import_s9_stratum_csv",
    "parse_time_ns",
]

ERROR_MALFORMED = -1
"""``error_code`` of a malformed row kept with ``lenient=True`` (the schema's "unknown")."""
ERROR_LOW_DIFFICULTY = 23
"""Stratum error 23: the share's SHA256d difficulty is below the pool difficulty."""
ERROR_OTHER = 20
"""Stratum error 20 (other): the share disagrees with the header/hash recorded in the log."""
ERROR_DUPLICATE = 22
"""Stratum error 22: a duplicate share (its rebuilt header hashes to an earlier share's digest).
Kept in the capture with ``valid = False``, as a pool rejects it, never dropped."""

S9_DEVICE_MODEL = "BM1387 (Antminer S9)"
S9_TICKET_DIFFICULTY = 256.0
"""Internal ticket difficulty of the S9 (its shares are judged against it) [1]."""
LV06_DEVICE_MODEL = "BM1366 (Lucky Miner LV06)"
LV06_TICKET_DIFFICULTY = 256.0
"""BM1366 default ticket difficulty [1] (documentation only; the pool difficulty is in the log)."""
LV06_VERSION_MASK = mn.DEFAULT_VERSION_MASK
"""Version-rolling mask assumed for the LV06 log (BIP 310 ``1fffe000``)."""

_TIME_SCALE = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_TIME_UNITS = (*_TIME_SCALE, "iso")
_I64 = 2**63 - 1
_HEX_U32 = re.compile(r"(?:0[xX])?[0-9a-fA-F]{1,8}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_DEC = re.compile(r"[+-]?[0-9]+")
_T_MONO_NOTE = (
    "derived: t_host_ns - t_host_ns of the first event (the log has no monotonic clock)"
)


class ImportFormatError(AsiclabError):
    """A log file or one of its rows is malformed.

    Attributes
    ----------
    path : str
        The file.
    line : int or None
        1-based line number of the offending row (``None`` for whole-file problems).
    """

    def __init__(self, path: str | os.PathLike[str], line: int | None, message: str) -> None:
        self.path = os.fspath(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class _RowError(Exception):
    """Internal: a row is malformed (message without file/line)."""


# --------------------------------------------------------------------------- parsing helpers


def parse_time_ns(text: str, unit: str = "s") -> int:
    """Parse a time stamp into integer nanoseconds since the Unix epoch, without float rounding.

    Parameters
    ----------
    text : str
        Decimal number (e.g. ``"1768125330.7148325"``, ``"1.7e9"``) in ``unit``, or an ISO 8601
        time for ``unit="iso"`` (a time without zone is taken as UTC).
    unit : {"s", "ms", "us", "ns", "iso"}
        Unit of the number [s, ms, us or ns].

    Returns
    -------
    int
        Time [ns since 1970-01-01T00:00:00Z], rounded half-even to the nanosecond.

    Raises
    ------
    ValueError
        Unparsable, non-finite or out-of-range text, or an unknown unit.
    """
    if unit not in _TIME_UNITS:
        raise ValueError(f"time unit must be one of {_TIME_UNITS}, got {unit!r}")
    s = text.strip()
    if not s:
        raise ValueError("empty time")
    if unit == "iso":
        import pandas as pd

        try:
            ts = pd.Timestamp(s)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"unparsable ISO 8601 time {text!r}") from exc
        if ts is pd.NaT or pd.isna(ts):
            raise ValueError(f"unparsable ISO 8601 time {text!r}")
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return int(ts.value)
    try:
        value = Decimal(s)
    except InvalidOperation as exc:
        raise ValueError(f"unparsable time {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"non-finite time {text!r}")
    ns = int((value * _TIME_SCALE[unit]).to_integral_value())
    if abs(ns) > _I64:
        raise ValueError(f"time {text!r} {unit} is outside the int64 nanosecond range")
    return ns


def _field(row: Mapping[str, str | None], name: str) -> str:
    value = row.get(name)
    if value is None:
        raise _RowError(f"missing field {name!r}")
    value = value.strip()
    if not value:
        raise _RowError(f"empty field {name!r}")
    return value


def _hex_u32(row: Mapping[str, str | None], name: str) -> int:
    text = _field(row, name)
    if not _HEX_U32.fullmatch(text):
        raise _RowError(f"field {name!r}: expected 1..8 hex digits, got {text!r}")
    return int(text, 16)


def _dec_int(row: Mapping[str, str | None], name: str, lo: int, hi: int) -> int:
    text = _field(row, name)
    if not _DEC.fullmatch(text):
        raise _RowError(f"field {name!r}: expected a decimal integer, got {text!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise _RowError(f"field {name!r}: {value} is outside {lo}..{hi}")
    return value


def _float(row: Mapping[str, str | None], name: str, *, positive: bool = False) -> float:
    text = _field(row, name)
    try:
        value = float(text)
    except ValueError:
        raise _RowError(f"field {name!r}: expected a number, got {text!r}") from None
    if math.isnan(value) or (positive and not value > 0):
        raise _RowError(f"field {name!r}: expected a {'positive ' if positive else ''}number, "
                        f"got {text!r}")
    return value


def _hex_bytes(row: Mapping[str, str | None], name: str, length: int | None = None) -> bytes:
    text = _field(row, name)
    if not _HEX.fullmatch(text):
        raise _RowError(f"field {name!r}: not valid hex: {text[:80]!r}")
    raw = bytes.fromhex(text)
    if length is not None and len(raw) != length:
        raise _RowError(f"field {name!r}: expected {length} bytes, got {len(raw)}")
    return raw


def _time(row: Mapping[str, str | None], name: str, unit: str = "s") -> int:
    text = _field(row, name)
    try:
        return parse_time_ns(text, unit)
    except ValueError as exc:
        raise _RowError(f"field {name!r}: {exc}") from None


# --------------------------------------------------------------------------- common machinery


@dataclass
class _Collected:
    """Events collected from a log, in file order."""

    events: list[dict[str, Any]] = field(default_factory=list)
    malformed_lines: list[int] = field(default_factory=list)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _log_read(path: Path) -> None:
    """Note the imported file in the run's files log (the runner checksums it)."""
    from asiclab import results

    results.log_file(path, "read")


def _collect(
    path: Path,
    required: tuple[str, ...],
    parse: Callable[[Mapping[str, str | None], dict[str, Any]], None],
    *,
    lenient: bool,
) -> _Collected:
    """Read a CSV file row by row, calling ``parse(row, event)`` for each.

    ``parse`` fills ``event`` (a dict of schema columns, plus the private flags ``_verified``
    and ``_mismatch``) as far as it gets and raises :class:`_RowError` on a malformed row.
    A record with the wrong number of fields is parsed as far as possible (missing cells are
    ``None``) and then flagged malformed.
    """
    if not path.is_file():
        raise ImportFormatError(path, None, "no such file")
    out = _Collected()
    try:
        # undecodable bytes become U+FFFD, so the row fails to parse like any malformed row
        fh = path.open("r", newline="", encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ImportFormatError(path, None, f"cannot open: {exc}") from exc
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise ImportFormatError(path, 1, "empty file (no header line)") from None
        except csv.Error as exc:
            raise ImportFormatError(path, 1, f"unreadable header line: {exc}") from exc
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise ImportFormatError(path, 1, f"missing column(s) {missing}; header is {header}")
        if len(set(header)) != len(header):
            raise ImportFormatError(path, 1, f"duplicate column names in header {header}")
        while True:
            event: dict[str, Any] = {}
            try:
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    raise _RowError(f"unreadable CSV record: {exc}") from None
                if not any(c.strip() for c in cells):
                    continue  # blank line
                row = {h: cells[i] if i < len(cells) else None for i, h in enumerate(header)}
                parse(row, event)
                if len(cells) != len(header):
                    raise _RowError(f"{len(cells)} fields, the header has {len(header)}")
            except _RowError as exc:
                line = reader.line_num
                if not lenient:
                    raise ImportFormatError(path, line, str(exc)) from None
                event["valid"] = False
                event["error_code"] = ERROR_MALFORMED
                event["_malformed"] = True
                out.malformed_lines.append(line)
            out.events.append(event)
    return out


_EVENT_COLUMNS: dict[str, tuple[str, Any]] = {
    # name: (numpy dtype, fill)
    "t_host_ns": ("int64", -1),
    "nonce": ("int64", -1),
    "job_id": ("object", ""),
    "version_bits": ("int64", -1),
    "difficulty": ("float64", np.nan),
    "pool_difficulty": ("float64", np.nan),
    "valid": ("bool", False),
    "error_code": ("int16", ERROR_MALFORMED),
}


def _build(
    path: Path,
    collected: _Collected,
    *,
    log_format: str,
    device_model: str,
    device_name: str,
    verification: str,
    parameters: Mapping[str, Any],
    title: str,
    extra_attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Sort the collected events by time and build the capture."""
    evs = collected.events
    n = len(evs)
    cols: dict[str, np.ndarray] = {}
    for name, (dtype, fill) in _EVENT_COLUMNS.items():
        values = [ev.get(name, fill) for ev in evs]
        cols[name] = np.array(values, dtype=object if dtype == "object" else dtype)
    t = cols["t_host_ns"]
    timed = t >= 0
    # timed events first (by time, stable by file order), then untimed ones in file order
    order = np.lexsort((np.arange(n), np.where(timed, t, 0), ~timed))
    cols = {k: v[order] for k, v in cols.items()}
    # duplicates: a later share whose rebuilt header hashes to an earlier one's digest is
    # flagged (error 22, invalid, as a pool rejects it), never dropped
    seen: set[bytes] = set()
    n_duplicates = 0
    for i, j in enumerate(order):
        dg = evs[j].get("_digest")
        if dg is None or evs[j].get("_malformed") or evs[j].get("_mismatch"):
            continue
        if dg in seen:
            cols["valid"][i] = False
            cols["error_code"][i] = ERROR_DUPLICATE
            n_duplicates += 1
        else:
            seen.add(dg)
    t = cols["t_host_ns"]
    timed = t >= 0
    if timed.any():
        t0 = int(t[timed][0])
        t_mono = np.where(timed, t - t0, -1).astype(np.int64)
        t_start, t_end = t0, int(t[timed].max())
    else:
        t_mono = np.full(n, -1, dtype=np.int64)
        t_start = t_end = -1
    events = {
        **cols,
        "t_mono_ns": t_mono,
        "core_id": np.full(n, -1, dtype=np.int32),
        "device_index": np.zeros(n, dtype=np.int32),
        "op_index": np.zeros(n, dtype=np.int32),
    }
    valid = cols["valid"]
    n_malformed = len(collected.malformed_lines)
    attrs: dict[str, Any] = {
        "source_kind": "imported",
        "device_model": device_model,
        "title": title,
        "source_file": os.fspath(path),
        "source_sha256": _sha256_file(path),
        "log_format": log_format,
        "parameters": dict(parameters),
        "n_rows": n,
        "n_verified": sum(bool(e.get("_verified") and not e.get("_malformed")) for e in evs),
        "n_valid": int(valid.sum()),
        "n_invalid": int(n - valid.sum() - n_malformed),
        "n_mismatch_rows": sum(bool(e.get("_mismatch") and not e.get("_malformed"))
                               for e in evs),
        "n_malformed_rows": n_malformed,
        "n_duplicates": n_duplicates,
        "malformed_lines": json.dumps(collected.malformed_lines),
        "verification": verification,
        "t_mono_note": _T_MONO_NOTE,
    }
    attrs.update(extra_attrs or {})
    ds = build_capture(
        events=events,
        ops={
            "op_device_index": np.zeros(1, dtype=np.int32),
            "op_voltage_set": np.full(1, np.nan),
            "op_frequency_set": np.full(1, np.nan),
            "op_t_start_ns": np.array([t_start], dtype=np.int64),
            "op_t_end_ns": np.array([t_end], dtype=np.int64),
        },
        devices={
            "device_name": np.array([device_name], dtype=object),
            "device_model": np.array([device_model], dtype=object),
            "device_source_kind": np.array(["imported"], dtype=object),
        },
        attrs=attrs,
    )
    _log_read(path)
    return ds


def _judge(event: dict[str, Any], digest: bytes, pool_difficulty: float) -> None:
    """Set difficulty, valid and error_code from a verified hash."""
    event["difficulty"] = mn.share_difficulty(digest)
    event["_digest"] = bytes(digest)
    ok = mn.meets_difficulty(digest, pool_difficulty)
    event["valid"] = ok
    event["error_code"] = 0 if ok else ERROR_LOW_DIFFICULTY


# --------------------------------------------------------------------------- S9 Stratum log

_S9_COLUMNS = (
    "timestamp", "job_id", "version", "prevhash", "coinb1", "coinb2", "extranonce1",
    "extranonce2", "merkle_branch", "ntime", "nbits", "nonce",
)


def import_s9_stratum_csv(path: str | os.PathLike[str], *, lenient: bool = False) -> xr.Dataset:
    """Import the Antminer S9 Stratum share log (one row per ``mining.submit``).

    Columns used: ``timestamp`` (Unix s, decimal), ``job_id``, ``version``, ``prevhash``
    (notify format), ``coinb1``, ``coinb2``, ``extranonce1``, ``extranonce2``, ``merkle_branch``
    (JSON list), ``ntime``, ``nbits``, ``nonce`` (big-endian hex). No version rolling
    (``version_bits = 0``). Every share is rebuilt and hashed; it is valid when its difficulty is
    at least the S9's ticket difficulty 256 (``pool_difficulty = 256``).

    Parameters
    ----------
    path : path-like
        CSV file (e.g. ``../shared/realdata/s9_stratum_shares.csv``).
    lenient : bool
        Keep malformed rows flagged (``error_code = -1``) instead of raising.

    Returns
    -------
    xarray.Dataset
        Capture with ``device_model = "BM1387 (Antminer S9)"``.

    Raises
    ------
    ImportFormatError
        Missing file or columns, or (unless ``lenient``) a malformed row; names file and line.
    """
    p = Path(path)

    def parse(row: Mapping[str, str | None], ev: dict[str, Any]) -> None:
        ev["job_id"] = (row.get("job_id") or "").strip()
        ev["version_bits"] = 0
        ev["pool_difficulty"] = S9_TICKET_DIFFICULTY
        ev["t_host_ns"] = _time(row, "timestamp")
        ev["nonce"] = _hex_u32(row, "nonce")
        try:
            branch = json.loads(_field(row, "merkle_branch"))
        except json.JSONDecodeError:
            raise _RowError("field 'merkle_branch': not a JSON list") from None
        if not isinstance(branch, list) or not all(isinstance(b, str) for b in branch):
            raise _RowError("field 'merkle_branch': not a JSON list of hex strings")
        try:
            res = mn.verify_share(
                version=_hex_u32(row, "version"),
                prevhash=_hex_bytes(row, "prevhash", 32),
                ntime=_hex_u32(row, "ntime"),
                nbits=_hex_u32(row, "nbits"),
                nonce=ev["nonce"],
                coinb1=_hex_bytes(row, "coinb1"),
                extranonce1=_hex_bytes(row, "extranonce1"),
                extranonce2=_hex_bytes(row, "extranonce2"),
                coinb2=_hex_bytes(row, "coinb2"),
                merkle_branch=branch,
            )
        except mn.MiningError as exc:
            raise _RowError(str(exc)) from None
        ev["_verified"] = True
        _judge(ev, res.hash, S9_TICKET_DIFFICULTY)

    collected = _collect(p, _S9_COLUMNS, parse, lenient=lenient)
    return _build(
        p,
        collected,
        log_format="s9_stratum",
        device_model=S9_DEVICE_MODEL,
        device_name="antminer-s9",
        verification=(
            "header rebuilt from the Stratum job fields (coinbase, merkle branch, version, "
            "prevhash, ntime, nbits, nonce) and hashed with SHA256d; valid when the share "
            "difficulty >= pool_difficulty (256, the S9 ticket difficulty)"
        ),
        parameters={"lenient": lenient},
        title="Antminer S9 Stratum share log (imported)",
        extra_attrs={"ticket_difficulty": S9_TICKET_DIFFICULTY},
    )


# --------------------------------------------------------------------------- LV06 proofs log

_LV06_COLUMNS = (
    "share_received_at", "job_id", "worker_name", "extranonce1", "extranonce2", "ntime",
    "nonce", "version_bits", "coinb1", "coinb2", "medical_merkle_root", "block_merkle_root",
    "block_header_hex", "block_hash_hex", "difficulty", "nbits", "version_used",
)


def import_lv06_proofs_csv(
    path: str | os.PathLike[str], *, lenient: bool = False
) -> xr.Dataset:
    """Import the Lucky Miner LV06 (BM1366) proofs log, re-verifying every share.

    Per row, the header is rebuilt from the job fields and compared with what the log recorded:

    * job version = ``version_used & ~0x1fffe000`` (the log has no job-version column); the
      rolled version ``job XOR version_bits`` (:func:`asiclab.protocol.mining.rolled_version`,
      checked to
      lie inside the mask) must equal ``version_used``;
    * prevhash: the log's ``medical_merkle_root`` column, which holds the header's
      previous-block-hash bytes in header order (it equals ``block_header_hex[8:72]``);
    * merkle root = SHA256d(coinb1 + extranonce1 + extranonce2 + coinb2) (no branch) must equal
      ``block_merkle_root``;
    * the rebuilt header must equal ``block_header_hex`` and its SHA256d, in display order,
      ``block_hash_hex``.

    A disagreement flags the row (``valid = False``, ``error_code = 20``); otherwise the row is
    valid when its difficulty is at least the pool difficulty (the ``difficulty`` column, 0.08 in
    the real log), else ``error_code = 23``. Time: ``share_received_at`` (Unix s).

    Parameters
    ----------
    path : path-like
        CSV file (e.g. ``../shared/realdata/lv06_bm1366_proofs.csv``).
    lenient : bool
        Keep malformed rows flagged (``error_code = -1``) instead of raising.

    Returns
    -------
    xarray.Dataset
        Capture with ``device_model = "BM1366 (Lucky Miner LV06)"``.

    Raises
    ------
    ImportFormatError
        Missing file or columns, or (unless ``lenient``) a malformed row; names file and line.
    """
    p = Path(path)
    names: set[str] = set()

    def parse(row: Mapping[str, str | None], ev: dict[str, Any]) -> None:
        ev["job_id"] = (row.get("job_id") or "").strip()
        worker = (row.get("worker_name") or "").strip()
        if worker:
            names.add(worker)
        ev["t_host_ns"] = _time(row, "share_received_at")
        ev["nonce"] = _hex_u32(row, "nonce")
        ev["version_bits"] = _hex_u32(row, "version_bits")
        ev["pool_difficulty"] = _float(row, "difficulty", positive=True)
        version_used = _dec_int(row, "version_used", 0, 0xFFFFFFFF)
        nbits = _dec_int(row, "nbits", 0, 0xFFFFFFFF)
        prev_header_order = _hex_bytes(row, "medical_merkle_root", 32)
        logged_root = _hex_bytes(row, "block_merkle_root", 32)
        logged_header = _hex_bytes(row, "block_header_hex", 80)
        logged_hash = _hex_bytes(row, "block_hash_hex", 32)
        job_version = version_used & ~LV06_VERSION_MASK & 0xFFFFFFFF
        try:
            coinbase = mn.build_coinbase(
                _hex_bytes(row, "coinb1"), _hex_bytes(row, "extranonce1"),
                _hex_bytes(row, "extranonce2"), _hex_bytes(row, "coinb2"),
            )
            root = mn.merkle_root_from_coinbase(coinbase, [])
            rolled_ok = True
            try:
                rolled = mn.rolled_version(job_version, ev["version_bits"], LV06_VERSION_MASK)
            except mn.MiningError:  # bits outside the mask: a verification failure
                rolled, rolled_ok = version_used, False
            header = mn.build_header(
                rolled, mn.swap_words(prev_header_order), root,
                _hex_u32(row, "ntime"), nbits, ev["nonce"],
            )
        except mn.MiningError as exc:
            raise _RowError(str(exc)) from None
        digest = mn.sha256d(header)
        ev["_verified"] = True
        _judge(ev, digest, ev["pool_difficulty"])
        consistent = (
            rolled_ok
            and rolled == version_used
            and root == logged_root
            and header == logged_header
            and digest[::-1] == logged_hash
        )
        if not consistent:
            ev["_mismatch"] = True
            ev["valid"] = False
            ev["error_code"] = ERROR_OTHER

    collected = _collect(p, _LV06_COLUMNS, parse, lenient=lenient)
    pools = {ev["pool_difficulty"] for ev in collected.events if "pool_difficulty" in ev}
    return _build(
        p,
        collected,
        log_format="lv06_proofs",
        device_model=LV06_DEVICE_MODEL,
        device_name=",".join(sorted(names)) or "lucky-miner-lv06",
        verification=(
            "header rebuilt from the job fields (coinbase -> merkle root, version_used & "
            "~0x1fffe000 XOR version_bits, prevhash from medical_merkle_root in header order, "
            "ntime, nbits, nonce), compared with block_merkle_root, block_header_hex and "
            "block_hash_hex (mismatch: error_code 20), hashed with SHA256d; valid when the "
            "share difficulty >= pool_difficulty (the difficulty column)"
        ),
        parameters={"lenient": lenient},
        title="Lucky Miner LV06 (BM1366) proofs log (imported)",
        extra_attrs={
            "ticket_difficulty": LV06_TICKET_DIFFICULTY,
            "version_mask": f"{LV06_VERSION_MASK:08x}",
            "pool_difficulties": json.dumps(sorted(pools)),
        },
    )


# --------------------------------------------------------------------------- generic CSV


def import_generic_csv(
    path: str | os.PathLike[str],
    *,
    time_column: str = "timestamp",
    time_unit: str = "s",
    nonce_column: str | None = None,
    difficulty_column: str | None = None,
    lenient: bool = False,
    device_model: str = "unknown",
    pool_difficulty: float | None = None,
    pool_difficulty_column: str | None = None,
    job_id_column: str | None = None,
    nonce_base: int = 16,
    device_name: str | None = None,
) -> xr.Dataset:
    """Import any CSV share log with at least a time column (no hash verification possible).

    Validity (documented choice): when both the achieved difficulty (``difficulty_column``) and
    a pool difficulty (``pool_difficulty`` or ``pool_difficulty_column``) are known, a share is
    valid iff difficulty >= pool difficulty (else ``error_code = 23``). Otherwise nothing can be
    checked: every parsed row is taken as an accepted share (``valid = True``) with
    ``error_code = -1`` (unknown), and the ``verification`` attribute says so.

    Parameters
    ----------
    path : path-like
        CSV file with a header line.
    time_column : str
        Column holding the host receive time.
    time_unit : {"s", "ms", "us", "ns", "iso"}
        Unit of ``time_column`` [Unix s, ms, us or ns], or ``"iso"`` for ISO 8601 text.
    nonce_column : str, optional
        Column holding the nonce (big-endian submit hex by default, see ``nonce_base``).
    difficulty_column : str, optional
        Column holding the achieved share difficulty [1].
    lenient : bool
        Keep malformed rows flagged (``error_code = -1``) instead of raising.
    device_model : str
        Model recorded in the capture.
    pool_difficulty : float, optional
        One pool difficulty for the whole log [1].
    pool_difficulty_column : str, optional
        Column with the pool difficulty per row [1] (exclusive with ``pool_difficulty``).
    job_id_column : str, optional
        Column with the job id.
    nonce_base : {16, 10}
        Base of the nonce text (16: the ``mining.submit`` hex; a ``0x`` prefix is accepted).
    device_name : str, optional
        Device name; default: the file's stem.

    Returns
    -------
    xarray.Dataset
        Capture (``source_kind = "imported"``).

    Raises
    ------
    ImportFormatError
        Missing file or columns, bad arguments, or (unless ``lenient``) a malformed row.
    """
    p = Path(path)
    if time_unit not in _TIME_UNITS:
        raise ImportFormatError(p, None, f"time_unit must be one of {_TIME_UNITS}, "
                                         f"got {time_unit!r}")
    if nonce_base not in (10, 16):
        raise ImportFormatError(p, None, f"nonce_base must be 10 or 16, got {nonce_base!r}")
    if pool_difficulty is not None and pool_difficulty_column is not None:
        raise ImportFormatError(p, None, "give pool_difficulty or pool_difficulty_column, "
                                         "not both")
    if pool_difficulty is not None and not (
        isinstance(pool_difficulty, int | float) and math.isfinite(pool_difficulty)
        and pool_difficulty > 0
    ):
        raise ImportFormatError(p, None, f"pool_difficulty must be a finite number > 0, "
                                         f"got {pool_difficulty!r}")
    required = tuple(
        c for c in (time_column, nonce_column, difficulty_column, pool_difficulty_column,
                    job_id_column) if c is not None
    )
    checkable = difficulty_column is not None and (
        pool_difficulty is not None or pool_difficulty_column is not None
    )

    def parse(row: Mapping[str, str | None], ev: dict[str, Any]) -> None:
        if job_id_column is not None:
            ev["job_id"] = (row.get(job_id_column) or "").strip()
        ev["t_host_ns"] = _time(row, time_column, time_unit)
        if nonce_column is not None:
            text = _field(row, nonce_column)
            try:
                if nonce_base == 16 and text[:2].lower() == "0x":
                    text = text[2:]
                nonce = int(text, nonce_base)
            except ValueError:
                raise _RowError(f"field {nonce_column!r}: not a base-{nonce_base} integer: "
                                f"{text!r}") from None
            if not 0 <= nonce <= 0xFFFFFFFF:
                raise _RowError(f"field {nonce_column!r}: {nonce} is outside the u32 range")
            ev["nonce"] = nonce
        if pool_difficulty_column is not None:
            ev["pool_difficulty"] = _float(row, pool_difficulty_column, positive=True)
        elif pool_difficulty is not None:
            ev["pool_difficulty"] = float(pool_difficulty)
        if difficulty_column is not None:
            ev["difficulty"] = _float(row, difficulty_column)
            if ev["difficulty"] < 0:
                raise _RowError(f"field {difficulty_column!r}: negative difficulty")
        if checkable:
            ok = ev["difficulty"] >= ev["pool_difficulty"]
            ev["valid"] = ok
            ev["error_code"] = 0 if ok else ERROR_LOW_DIFFICULTY
        else:
            ev["valid"] = True
            ev["error_code"] = ERROR_MALFORMED  # -1: unknown (not checkable), see docstring

    parameters = {
        "time_column": time_column, "time_unit": time_unit, "nonce_column": nonce_column,
        "difficulty_column": difficulty_column, "lenient": lenient,
        "device_model": device_model, "pool_difficulty": pool_difficulty,
        "pool_difficulty_column": pool_difficulty_column, "job_id_column": job_id_column,
        "nonce_base": nonce_base,
    }
    collected = _collect(p, required, parse, lenient=lenient)
    return _build(
        p,
        collected,
        log_format="generic",
        device_model=device_model,
        device_name=device_name if device_name is not None else p.stem,
        verification=(
            "no hash verification (the log has no job fields); valid when the difficulty "
            "column >= the pool difficulty" if checkable else
            "none: no hash or difficulty check possible; every parsed row is taken as an "
            "accepted share (valid=True, error_code=-1 unknown)"
        ),
        parameters=parameters,
        title=f"{p.name} (imported, generic CSV)",
    )


# --------------------------------------------------------------------------- dispatch

FORMATS: Mapping[str, Callable[..., xr.Dataset]] = MappingProxyType({
    "s9_stratum": import_s9_stratum_csv,
    "lv06_proofs": import_lv06_proofs_csv,
    "generic": import_generic_csv,
})
"""Importer of each log format name."""


def import_log(path: str | os.PathLike[str], format: str, **kwargs: Any) -> xr.Dataset:
    """Import a log in one of :data:`FORMATS` (``"s9_stratum"``, ``"lv06_proofs"``, ``"generic"``).

    Parameters
    ----------
    path : path-like
        The log file.
    format : str
        Format name, a key of :data:`FORMATS`.
    **kwargs
        Passed to the importer (e.g. ``lenient=True``, the generic importer's column names).

    Returns
    -------
    xarray.Dataset
        The capture.

    Raises
    ------
    ImportFormatError
        Unknown format, or whatever the importer raises.
    """
    try:
        importer = FORMATS[format]
    except (KeyError, TypeError):
        raise ImportFormatError(
            path, None, f"unknown log format {format!r}; known: {sorted(FORMATS)}"
        ) from None
    try:
        return importer(path, **kwargs)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise ImportFormatError(path, None, f"format {format!r}: {exc}") from None
        raise
