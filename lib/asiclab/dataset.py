"""The capture schema: one documented ``xarray.Dataset`` layout for every share capture.

A capture holds four dimensions (see ``docs/ARCHITECTURE.md`` for the full table):

``event``
    One row per share / nonce / submission: host receive time (``t_host_ns``, int64 ns since the
    Unix epoch) and a monotonic clock (``t_mono_ns``), nonce, job id, core id, version bits,
    achieved and pool difficulty, a valid flag, an error code, device index and operating-point
    index.
``sample``
    Telemetry as AxeOS reports it: chip temperature, power, core voltage (set and measured),
    frequency and hashrate.
``op``
    The operating-points table: set voltage, set frequency, start and end times, device.
``device``
    Name, model and source kind of each device. A capture from several devices is one dataset.

Below the schema: saving, opening and validating captures; :func:`open_captures` opens many capture
files as one lazy dask-backed dataset; :func:`op_event_times` and :func:`train_sizes` select the
share train of each ``(device, operating point)``, the unit every topic analyses.

Missing values are ``-1`` for integers, ``NaN`` for floats and ``""`` for strings. Missing global
attributes are stored as the string ``"none"`` (:data:`NONE`) because NetCDF cannot store
``None``; :func:`get_attr` maps the sentinel back to ``None``.
"""

from __future__ import annotations

import datetime as _dt
import glob
import json
import os
import subprocess
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from asiclab import AsiclabError, __version__

SCHEMA_VERSION = 1
#: Sentinel stored for a global attribute whose value is ``None``.
NONE = "none"
#: Allowed values of the ``source_kind`` attribute.
#: ``unknown``: a miner whose nature (hardware or software) cannot be told, e.g. an unknown
#: Stratum agent string, unless the user declares it.
SOURCE_KINDS = ("hardware", "emulated", "simulated", "imported", "unknown")

#: Error code of an event whose nonce is a hardware error (does not hash to the ticket target).
ERROR_HARDWARE = 30


class CaptureFormatError(AsiclabError):
    """A capture dataset or file does not follow the schema (names the offending field)."""


class CaptureValueError(AsiclabError):
    """Wrong argument to a dataset helper (bad device/op selection, wrong column length...)."""


@dataclass(frozen=True)
class Field:
    """One variable of the schema.

    Parameters
    ----------
    name : str
        Variable name in the dataset.
    dim : str
        Dimension it lives on.
    dtype : str
        NumPy dtype string (``"str"`` for variable-length text).
    units : str
        CF ``units`` attribute.
    long_name : str
        CF ``long_name`` attribute.
    """

    name: str
    dim: str
    dtype: str
    units: str
    long_name: str

    @property
    def fill(self) -> Any:
        """Sentinel for a missing value of this field."""
        if self.dtype == "str":
            return ""
        if self.dtype == "bool":
            return False
        if self.dtype.startswith("float"):
            return np.nan
        if self.name in _DEVICE_INDEX_FIELDS:
            return 0  # a capture without device columns is a one-device capture
        return -1


_DEVICE_INDEX_FIELDS = ("device_index", "tel_device_index", "op_device_index")
_EPOCH = "since the Unix epoch (1970-01-01T00:00:00Z)"

FIELDS: tuple[Field, ...] = (
    # --- events
    Field("t_host_ns", "event", "int64", "ns", f"host receive time, nanoseconds {_EPOCH}"),
    Field("t_mono_ns", "event", "int64", "ns", "host monotonic clock at receipt"),
    Field("nonce", "event", "int64", "1", "nonce (u32 of the big-endian hex); -1 unknown"),
    Field("job_id", "event", "str", "1", "job id; empty when unknown"),
    Field("core_id", "event", "int32", "1", "ASIC core that found the nonce; -1 unknown"),
    Field("version_bits", "event", "int64", "1", "rolled version bits (rolled XOR job version)"),
    Field("difficulty", "event", "float64", "1", "achieved share difficulty (diff1 / hash)"),
    Field("pool_difficulty", "event", "float64", "1", "difficulty the share was judged against"),
    Field("valid", "event", "bool", "1", "share verified against its target"),
    Field("error_code", "event", "int16", "1",
          "0 accepted; Stratum error 20-25; 30 hardware error; -1 unknown"),
    Field("device_index", "event", "int32", "1", "index into the device dimension"),
    Field("op_index", "event", "int32", "1", "index into the op dimension; -1 outside any"),
    Field("processing_delay_ns", "event", "int64", "ns",
          "time from receipt (socket read) to the verdict, host monotonic clock: microseconds "
          "normally, longer when the line waited for the per-connection line-rate limit; "
          "-1 unknown (imported, simulated, serial)"),
    # --- telemetry
    Field("tel_t_host_ns", "sample", "int64", "ns", f"telemetry time, nanoseconds {_EPOCH}"),
    Field("tel_t_mono_ns", "sample", "int64", "ns", "telemetry time, host monotonic clock"),
    Field("tel_device_index", "sample", "int32", "1", "index into the device dimension"),
    Field("tel_op_index", "sample", "int32", "1", "index into the op dimension; -1 outside any"),
    Field("temperature", "sample", "float64", "degC", "chip temperature"),
    Field("power", "sample", "float64", "W", "power"),
    Field("voltage_set", "sample", "float64", "mV", "core voltage, set"),
    Field("voltage_measured", "sample", "float64", "mV", "core voltage, measured"),
    Field("frequency", "sample", "float64", "MHz", "ASIC frequency, set"),
    Field("hashrate", "sample", "float64", "GH/s", "reported hashrate"),
    # --- operating points
    Field("op_device_index", "op", "int32", "1", "device of the operating point"),
    Field("op_voltage_set", "op", "float64", "mV", "core voltage set at this operating point"),
    Field("op_frequency_set", "op", "float64", "MHz", "frequency set at this operating point"),
    Field("op_t_start_ns", "op", "int64", "ns", f"operating point start, nanoseconds {_EPOCH}"),
    Field("op_t_end_ns", "op", "int64", "ns", f"operating point end, nanoseconds {_EPOCH}"),
    # --- devices
    Field("device_name", "device", "str", "1", "device name (worker, port or label)"),
    Field("device_model", "device", "str", "1", "device model"),
    Field("device_source_kind", "device", "str", "1",
          "hardware, emulated, simulated, imported or unknown"),
)
FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
DIMS = ("event", "sample", "op", "device")

#: Global attributes every capture carries, with their defaults (``NONE`` = unknown).
REQUIRED_ATTRS: tuple[str, ...] = (
    "schema_version", "source_kind", "device_model", "firmware", "software_version",
    "git_commit", "parameters", "seed", "created", "title", "source_file",
)


def git_commit(path: str | os.PathLike[str] | None = None) -> str:
    """Return the git commit of the working tree that holds ``path`` (``"none"`` if unknown).

    A ``-dirty`` suffix marks uncommitted changes.
    """
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return NONE
    return commit + ("-dirty" if dirty else "") if commit else NONE


def _column(field: Field, values: Any, n: int | None) -> np.ndarray:
    if values is None:
        if n is None:
            raise CaptureValueError(f"cannot infer the length of column {field.name!r}")
        if field.dtype == "str":
            return np.array([""] * n, dtype=object)
        return np.full(n, field.fill, dtype=field.dtype)
    if field.dtype == "str":
        arr = np.asarray(values, dtype=object)
        arr = np.array(["" if v is None else str(v) for v in arr.ravel()], dtype=object)
    else:
        try:
            arr = np.asarray(values).astype(field.dtype, casting="unsafe", copy=False)
        except (TypeError, ValueError) as exc:
            raise CaptureValueError(f"column {field.name!r}: cannot convert to "
                                    f"{field.dtype}: {exc}") from exc
    if arr.ndim != 1:
        raise CaptureValueError(f"column {field.name!r} must be one-dimensional")
    if n is not None and arr.shape[0] != n:
        raise CaptureValueError(
            f"column {field.name!r} has {arr.shape[0]} rows, expected {n}")
    return arr


def _table(dim: str, columns: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    columns = dict(columns or {})
    fields = [f for f in FIELDS if f.dim == dim]
    unknown = set(columns) - {f.name for f in fields}
    if unknown:
        raise CaptureValueError(f"unknown {dim} column(s): {sorted(unknown)}")
    n = None
    for name, val in columns.items():
        if val is not None:
            n = len(np.asarray(val, dtype=object if FIELDS_BY_NAME[name].dtype == "str" else None))
            break
    if n is None:
        n = 0
    return {f.name: _column(f, columns.get(f.name), n) for f in fields}


def _attr_value(value: Any) -> Any:
    if value is None:
        return NONE
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def build_capture(
    events: Mapping[str, Any] | None = None,
    telemetry: Mapping[str, Any] | None = None,
    ops: Mapping[str, Any] | None = None,
    devices: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Build a capture dataset that follows the schema.

    Parameters
    ----------
    events, telemetry, ops, devices : mapping of str to array-like, optional
        Columns of each table, by schema variable name. Missing columns are filled with the
        sentinels (``-1``, ``NaN``, ``""``); all given columns of one table must have one length.
    attrs : mapping, optional
        Global attributes. ``source_kind`` is required and must be one of :data:`SOURCE_KINDS`.
        ``parameters`` may be a dict (stored as JSON). ``None`` values become :data:`NONE`.
        ``software_version``, ``git_commit``, ``created`` and ``schema_version`` are filled in.

    Returns
    -------
    xarray.Dataset
        The capture, already validated.

    Raises
    ------
    CaptureValueError
        Unknown column, wrong length or a value that cannot be converted.
    CaptureFormatError
        The result does not validate (e.g. missing or unknown ``source_kind``).
    """
    data_vars: dict[str, Any] = {}
    for dim, cols in (("event", events), ("sample", telemetry), ("op", ops),
                      ("device", devices)):
        for name, arr in _table(dim, cols).items():
            f = FIELDS_BY_NAME[name]
            data_vars[name] = xr.Variable((dim,), arr, {"units": f.units,
                                                        "long_name": f.long_name})
    given = dict(attrs or {})
    full: dict[str, Any] = {k: NONE for k in REQUIRED_ATTRS}
    full["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    full["software_version"] = __version__
    full["git_commit"] = git_commit()
    for k, v in given.items():
        full[k] = _attr_value(v)
    full["schema_version"] = SCHEMA_VERSION
    ds = xr.Dataset(data_vars, attrs=full)
    n_dev = ds.sizes.get("device", 0)
    if n_dev == 0:
        n_used = 0
        for name in _DEVICE_INDEX_FIELDS:
            if ds[name].size:
                n_used = max(n_used, int(ds[name].max()) + 1)
        if n_used:
            model = full["device_model"] if full["device_model"] != NONE else ""
            ds = ds.drop_dims("device").assign(
                device_name=("device", np.array([f"device{i}" for i in range(n_used)],
                                                dtype=object)),
                device_model=("device", np.array([model] * n_used, dtype=object)),
                device_source_kind=("device", np.array([full["source_kind"]] * n_used,
                                                       dtype=object)),
            )
            for name in ("device_name", "device_model", "device_source_kind"):
                f = FIELDS_BY_NAME[name]
                ds[name].attrs = {"units": f.units, "long_name": f.long_name}
    validate_capture(ds)
    return ds


def validate_capture(ds: xr.Dataset) -> xr.Dataset:
    """Check that ``ds`` follows the capture schema.

    Parameters
    ----------
    ds : xarray.Dataset
        Candidate capture.

    Returns
    -------
    xarray.Dataset
        ``ds`` itself, for chaining.

    Raises
    ------
    CaptureFormatError
        Names the first missing or malformed variable or attribute.
    """
    if not isinstance(ds, xr.Dataset):
        raise CaptureFormatError(f"expected an xarray.Dataset, got {type(ds).__name__}")
    for f in FIELDS:
        if f.name not in ds.variables:
            raise CaptureFormatError(f"missing variable {f.name!r} (dimension {f.dim!r})")
        var = ds[f.name]
        if var.dims != (f.dim,):
            raise CaptureFormatError(
                f"variable {f.name!r} has dimensions {var.dims}, expected ({f.dim!r},)")
        kind = var.dtype.kind
        ok = {"str": kind in "OUS", "bool": kind == "b"}.get(
            f.dtype, kind == np.dtype(f.dtype).kind and (kind != "f" or True))
        if f.dtype.startswith("int") and kind not in "iu":
            ok = False
        if not ok:
            raise CaptureFormatError(
                f"variable {f.name!r} has dtype {var.dtype}, expected {f.dtype}")
        for a in ("units", "long_name"):
            if a not in var.attrs:
                raise CaptureFormatError(f"variable {f.name!r} lacks the {a!r} attribute")
    for a in REQUIRED_ATTRS:
        if a not in ds.attrs:
            raise CaptureFormatError(f"missing global attribute {a!r}")
    if ds.attrs["source_kind"] not in SOURCE_KINDS:
        raise CaptureFormatError(
            f"global attribute 'source_kind' is {ds.attrs['source_kind']!r}, "
            f"expected one of {SOURCE_KINDS}")
    try:
        sv = int(ds.attrs["schema_version"])
    except (TypeError, ValueError):
        sv = -1
    if sv != SCHEMA_VERSION:
        raise CaptureFormatError(
            f"global attribute 'schema_version' is {ds.attrs['schema_version']!r}, "
            f"expected {SCHEMA_VERSION}")
    n_dev = ds.sizes.get("device", 0)
    for name in _DEVICE_INDEX_FIELDS:
        var = ds[name]
        if var.size and not isinstance(var.data, np.ndarray):
            continue  # lazily loaded (dask): range check deferred
        if var.size and (int(var.min()) < 0 or int(var.max()) >= n_dev):
            raise CaptureFormatError(
                f"variable {name!r} refers to devices outside 0..{n_dev - 1}")
    n_op = ds.sizes.get("op", 0)
    for name in ("op_index", "tel_op_index"):
        var = ds[name]
        if var.size and isinstance(var.data, np.ndarray) and int(var.max()) >= n_op:
            raise CaptureFormatError(
                f"variable {name!r} refers to operating points outside 0..{n_op - 1}")
    return ds


def get_attr(ds: xr.Dataset, name: str) -> Any:
    """Return a global attribute, mapping the :data:`NONE` sentinel back to ``None``.

    ``parameters`` is decoded from JSON.
    """
    value = ds.attrs.get(name, NONE)
    if isinstance(value, str) and value == NONE:
        return None
    if name == "parameters" and isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _log_file(path: Path, role: str) -> None:
    # Imported lazily: results imports nothing from dataset, so no cycle either way.
    from asiclab import results

    results.log_file(path, role)


def save_capture(ds: xr.Dataset, path: str | os.PathLike[str]) -> Path:
    """Validate and write a capture to NetCDF-4.

    Parameters
    ----------
    ds : xarray.Dataset
        Capture to write.
    path : path-like
        Destination ``.nc`` file; parent directories are created. Written to a temporary file
        first and renamed, so an interrupted write never leaves a half file under ``path``.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    validate_capture(ds)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    encoding = {}
    empty_text = [n for n, v in ds.variables.items() if v.dtype.kind == "O" and v.size == 0]
    if empty_text:  # the netCDF4 backend cannot infer a string type from an empty object array
        ds = ds.assign({n: (ds[n].dims, np.array([], dtype="U1"), ds[n].attrs)
                        for n in empty_text})
    for name, var in ds.variables.items():
        if var.dtype.kind in "OUS":
            encoding[name] = {"dtype": str}
        elif var.dtype.kind in "iub":
            encoding[name] = {"_FillValue": None}
        if var.dtype.kind in "iuf" and var.ndim and var.size:
            encoding.setdefault(name, {}).update({"zlib": True, "complevel": 1})
    ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
    os.replace(tmp, path)
    _log_file(path, "written")
    return path


#: Variables added to the schema after files were written without them, filled when read.
_ADDED_FIELDS = ("processing_delay_ns",)


def _upgrade(ds: xr.Dataset) -> xr.Dataset:
    """Fill variables a capture written before they existed lacks (with their sentinel)."""
    for name in _ADDED_FIELDS:
        f = FIELDS_BY_NAME[name]
        if name not in ds.variables and f.dim in ds.dims:
            ds = ds.assign({name: xr.Variable(
                (f.dim,), np.full(ds.sizes[f.dim], f.fill, dtype=f.dtype),
                {"units": f.units, "long_name": f.long_name})})
    return ds


def open_capture(path: str | os.PathLike[str], *, chunks: Any = None) -> xr.Dataset:
    """Open a capture from NetCDF and validate it.

    Parameters
    ----------
    path : path-like
        NetCDF file written by :func:`save_capture` (or any tool following the schema).
    chunks : optional
        Passed to :func:`xarray.open_dataset` for lazy (dask) loading; by default the file is
        loaded into memory and closed.

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    CaptureFormatError
        The file is missing, truncated, not NetCDF, or does not follow the schema (the message
        names the file and the field).
    """
    path = Path(path)
    if not path.is_file():
        raise CaptureFormatError(f"{path}: no such capture file")
    try:
        with path.open("rb") as fh:
            magic = fh.read(8)
    except OSError as exc:
        raise CaptureFormatError(f"{path}: cannot read: {exc}") from exc
    if not (magic.startswith(b"CDF") or magic.startswith(b"\x89HDF\r\n\x1a\n")):
        raise CaptureFormatError(f"{path}: not a NetCDF file")
    try:
        if chunks is None:
            with xr.open_dataset(path, engine="netcdf4", mask_and_scale=True) as raw:
                ds = raw.load()
        else:
            ds = xr.open_dataset(path, engine="netcdf4", chunks=chunks)
    except Exception as exc:  # backends raise OSError, RuntimeError, KeyError, ValueError...
        raise CaptureFormatError(
            f"{path}: unreadable NetCDF (truncated or damaged?): {type(exc).__name__}: {exc}"
        ) from exc
    for name in list(ds.variables):
        ds[name].encoding = {}
    ds.encoding = {}
    ds = _upgrade(ds)
    try:
        validate_capture(ds)
    except CaptureFormatError as exc:
        raise CaptureFormatError(f"{path}: {exc}") from exc
    _log_file(path, "read")
    return ds


def valid_events(ds: xr.Dataset) -> xr.Dataset:
    """Return ``ds`` restricted to events whose ``valid`` flag is set (other tables unchanged)."""
    mask = ds["valid"].values.astype(bool)
    return ds.isel(event=np.flatnonzero(mask))


def groups(ds: xr.Dataset, *, valid_only: bool = True) -> list[tuple[int, int]]:
    """List the (device index, op index) pairs that have events, sorted."""
    sel = valid_events(ds) if valid_only else ds
    dev = sel["device_index"].values
    op = sel["op_index"].values
    pairs = set(zip(dev.tolist(), op.tolist(), strict=True))
    return sorted(pairs)


def event_times_s(
    ds: xr.Dataset, device: int | None = None, op: int | None = None, *, valid_only: bool = True,
    clock: str = "host",
) -> np.ndarray:
    """Sorted event times [s] of one device/operating point, relative to the first event.

    Parameters
    ----------
    ds : xarray.Dataset
        Capture.
    device, op : int, optional
        Select one device index / operating-point index; ``None`` keeps all.
    valid_only : bool
        Keep only valid events (default).
    clock : {"host", "mono"}
        ``t_host_ns`` (wall clock) or ``t_mono_ns`` (monotonic clock).
    """
    if clock not in ("host", "mono"):
        raise CaptureValueError(f"clock must be 'host' or 'mono', got {clock!r}")
    mask = np.ones(ds.sizes["event"], dtype=bool)
    if valid_only:
        mask &= ds["valid"].values.astype(bool)
    if device is not None:
        mask &= ds["device_index"].values == device
    if op is not None:
        mask &= ds["op_index"].values == op
    t = np.sort(ds["t_host_ns" if clock == "host" else "t_mono_ns"].values[mask])
    if t.size == 0:
        return np.zeros(0)
    return (t - t[0]).astype(np.float64) * 1e-9


def inter_arrival_times(
    ds: xr.Dataset, device: int | None = None, op: int | None = None, *,
    valid_only: bool = True, clock: str = "host",
) -> dict[tuple[int, int], np.ndarray]:
    """Inter-arrival times [s] per (device index, op index).

    Parameters
    ----------
    ds : xarray.Dataset
        Capture.
    device, op : int, optional
        Restrict to one device / operating point.
    valid_only : bool
        Use only valid events (default), as a pool would.
    clock : {"host", "mono"}
        Which clock to difference.

    Returns
    -------
    dict
        ``{(device, op): intervals}``, each a float64 array of ``n_events - 1`` intervals [s].
        Intervals never span two operating points or two devices.
    """
    out: dict[tuple[int, int], np.ndarray] = {}
    for d, o in groups(ds, valid_only=valid_only):
        if (device is not None and d != device) or (op is not None and o != op):
            continue
        out[(d, o)] = np.diff(event_times_s(ds, d, o, valid_only=valid_only, clock=clock))
    return out


def ops_table(ds: xr.Dataset) -> Any:
    """The operating-points table as a :class:`pandas.DataFrame` (one row per op index)."""
    import pandas as pd

    return pd.DataFrame({
        "device": ds["op_device_index"].values,
        "voltage_set_mV": ds["op_voltage_set"].values,
        "frequency_set_MHz": ds["op_frequency_set"].values,
        "duration_s": (ds["op_t_end_ns"].values - ds["op_t_start_ns"].values) * 1e-9,
    }).rename_axis("op")


def concat_captures(captures: list[xr.Dataset], attrs: Mapping[str, Any] | None = None
                    ) -> xr.Dataset:
    """Join captures of different devices into one, re-indexing devices and operating points."""
    if not captures:
        raise CaptureValueError("no captures to join")
    tables: dict[str, dict[str, list[np.ndarray]]] = {d: {} for d in DIMS}
    dev_off = op_off = 0
    for ds in captures:
        validate_capture(ds)
        for f in FIELDS:
            v = ds[f.name].values
            if f.name in _DEVICE_INDEX_FIELDS:
                v = v + dev_off
            elif f.name in ("op_index", "tel_op_index"):
                v = np.where(v >= 0, v + op_off, -1)
            tables[f.dim].setdefault(f.name, []).append(v)
        dev_off += ds.sizes.get("device", 0)
        op_off += ds.sizes.get("op", 0)
    cols = {d: {k: np.concatenate(v) for k, v in t.items()} for d, t in tables.items()}
    base = dict(captures[0].attrs)
    base.update(attrs or {})
    kinds = {c.attrs["source_kind"] for c in captures}
    if len(kinds) > 1 and "source_kind" not in (attrs or {}):
        raise CaptureValueError(f"captures of different source kinds {sorted(kinds)}: "
                                "say which one the joined capture is")
    base.pop("schema_version", None)
    return build_capture(cols["event"], cols["sample"], cols["op"], cols["device"], base)


# --------------------------------------------------------------------------------------------
# share trains of a capture: selection per (device, op), on numpy- or dask-backed datasets


class CaptureSelectionError(AsiclabError, ValueError):
    """A capture lacks the variables needed, a requested device/op does not exist, or files
    given to :func:`open_captures` are missing, unreadable or cannot be combined."""


Key = tuple[int, int]
"""A share train's ``(device, op)`` key; ``op = -1`` for events outside every operating point."""

_EVENT_VARS = ("device_index", "op_index", "valid")
_INDEX_VARS = {
    "device_index": "device",
    "op_index": "op",
    "tel_device_index": "device",
    "tel_op_index": "op",
    "op_device_index": "device",
}


# --------------------------------------------------------------------------------------------
# opening many captures lazily (moved from the heartbeat topic: every topic needs it)


def _resolve_paths(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    if isinstance(source, (str, os.PathLike)):
        s = os.fspath(source)
        if os.path.isdir(s):
            paths = sorted(glob.glob(os.path.join(s, "*.nc")))
        elif any(ch in s for ch in "*?["):
            paths = sorted(glob.glob(s))
        else:
            paths = [s]
    else:
        paths = [os.fspath(p) for p in source]
    if not paths:
        raise CaptureSelectionError(f"no capture files found for {source!r}")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise CaptureSelectionError(f"capture file(s) not found: {missing[:3]}")
    return paths


_LAZY_FILES: dict[tuple[str, int, int, int], xr.Dataset] = {}


def _open_lazy(path: str, event_chunk: int) -> xr.Dataset:
    """Open a capture file lazily, once per process (keyed by path, mtime, size and chunking).

    Lazily opened netCDF files are never closed here. With netCDF4 1.7 / HDF5 2.2 we found that
    closing one lazily opened handle of a file (when a dataset concatenated from several files is
    dropped) while another handle of the same file stays open makes the next open of that file
    crash the process; reusing one handle per file avoids ever closing a duplicate.
    """
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size, int(event_chunk))
    ds = _LAZY_FILES.get(key)
    if ds is None:
        with warnings.catch_warnings():  # "chunks separate the stored chunks": intended
            warnings.simplefilter("ignore", UserWarning)
            ds = xr.open_dataset(path, engine="netcdf4", chunks={"event": event_chunk})
        _LAZY_FILES[key] = ds
    return ds


def open_captures(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    event_chunk: int = 2**20,
    source_kind: str | None = None,
) -> xr.Dataset:
    """Open one or many capture files as one lazy, dask-backed dataset.

    This is :func:`xarray.open_mfdataset` specialised to the capture schema: every file is
    opened lazily (dask chunks of ``event_chunk`` events), the index variables
    (``device_index``, ``op_index``, ``tel_*``, ``op_device_index``) of each file are offset past
    those of the files before it (``-1`` stays ``-1``), and each dimension group (``event``,
    ``sample``, ``op``, ``device``) is concatenated along its own dimension, so the result obeys
    the capture schema. (A plain ``open_mfdataset`` cannot do this: it concatenates along one
    dimension and cannot renumber the indices.) Nothing is loaded until computed. Added:
    ``device_source_file`` (device dim) naming each device's file, and the global attribute
    ``source_files`` (JSON list). Global attributes are taken from the first file. Files of
    different ``source_kind`` are refused unless ``source_kind`` says which kind the combination
    is (as :func:`concat_captures` does); per-device kinds stay in
    ``device_source_kind``. Each file read is logged with :func:`asiclab.results.log_file` and
    the result is checked with :func:`asiclab.dataset.validate_capture`.

    Parameters
    ----------
    source : str, path or sequence of paths
        A directory (all ``*.nc`` inside, sorted by name), a glob pattern, one file, or a list.
    event_chunk : int
        Dask chunk length along ``event`` [events].
    source_kind : str, optional
        Global ``source_kind`` of the combination when the files disagree.

    Returns
    -------
    xarray.Dataset
    """
    from asiclab import results

    paths = _resolve_paths(source)
    files = []
    for p in paths:
        try:
            files.append(_open_lazy(p, event_chunk))
        except Exception as exc:  # backends raise OSError, ValueError, RuntimeError...
            raise CaptureSelectionError(f"{p}: unreadable capture: {exc}") from exc
    kinds = sorted({str(f.attrs.get("source_kind", "none")) for f in files})
    if source_kind is None and len(kinds) > 1:
        raise CaptureSelectionError(
            f"captures of different source kinds {kinds}: pass source_kind= to say which "
            "kind the combination is")
    groups: dict[str, list[xr.Dataset]] = {d: [] for d in ("event", "sample", "op", "device")}
    dev_off = op_off = 0
    for p, f in zip(paths, files, strict=True):
        off = {"device": dev_off, "op": op_off}
        f = f.copy()
        for v, kind in _INDEX_VARS.items():
            if v in f.data_vars and off[kind]:
                a = f[v]
                f[v] = xr.where(a >= 0, a + off[kind], a).astype(a.dtype).assign_attrs(a.attrs)
        n_dev = f.sizes.get("device", 0)
        f["device_source_file"] = ("device", np.full(n_dev, os.path.basename(p), dtype=object),
                                   {"units": "1", "long_name": "capture file of the device"})
        for dim, lst in groups.items():
            names = [v for v in f.data_vars if f[v].dims == (dim,)]
            lst.append(f[names])
        dev_off += n_dev
        op_off += f.sizes.get("op", 0)
    parts = [
        xr.concat(lst, dim=dim, data_vars="all", coords="minimal", compat="override",
                  join="outer", combine_attrs="override")
        for dim, lst in groups.items() if lst
    ]
    ds = xr.merge(parts, compat="override", join="outer", combine_attrs="override")
    ds.attrs = dict(files[0].attrs)
    if source_kind is not None:
        ds.attrs["source_kind"] = source_kind
    ds.attrs["source_files"] = json.dumps([os.path.basename(p) for p in paths])
    try:
        validate_capture(ds)
    except CaptureFormatError as exc:
        raise CaptureSelectionError(f"combined capture does not follow the schema: {exc}") from exc
    for p in paths:
        results.log_file(p, "read")
    return ds


# --------------------------------------------------------------------------------------------
# selection


def _check_event_vars(ds: xr.Dataset, time_var: str, unassigned: str) -> tuple[str, ...]:
    need = (time_var, *_EVENT_VARS)
    missing = [v for v in need if v not in ds.variables]
    if missing:
        raise CaptureSelectionError(f"capture lacks event variable(s) {missing}")
    if unassigned not in ("auto", "include", "exclude"):
        raise CaptureSelectionError("unassigned must be 'auto', 'include' or 'exclude'")
    return need


def _usable_events(
    ds: xr.Dataset,
    time_var: str,
    valid_only: bool,
    chunk_events: int,
    device: int | None = None,
    op: int | None = None,
) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]]:
    """Events of ``ds`` chunk by chunk: times [ns], device and op indices, as int64 arrays.

    Kept: time >= 0, device >= 0, op >= -1 (and valid, and the given device / op, if asked).
    """
    sub = ds[[time_var, *_EVENT_VARS]]
    for i0 in range(0, ds.sizes.get("event", 0), chunk_events):
        c = sub.isel(event=slice(i0, i0 + chunk_events)).compute()
        t = np.asarray(c[time_var].values, dtype=np.int64)
        dv = np.asarray(c["device_index"].values, dtype=np.int64)
        ov = np.asarray(c["op_index"].values, dtype=np.int64)
        m = (t >= 0) & (dv >= 0) & (ov >= -1)
        if valid_only:
            m &= np.asarray(c["valid"].values, dtype=bool)
        if device is not None:
            m &= dv == device
        if op is not None:
            m &= ov == op
        yield t[m], dv[m], ov[m]


def op_event_times(
    ds: xr.Dataset,
    *,
    device: int | None = None,
    op: int | None = None,
    valid_only: bool = True,
    time_var: str = "t_host_ns",
    unassigned: str = "auto",
    chunk_events: int = 2**22,
    max_per_group: int | None = None,
) -> dict[Key, NDArray[np.int64]]:
    """Sorted event times of each ``(device, op)`` share train of a capture.

    Works on numpy- and dask-backed datasets: the event variables are read in slices of
    ``chunk_events`` (memory bounded by the slice plus the selected times).

    Parameters
    ----------
    ds : xarray.Dataset
        Capture (schema of :mod:`asiclab.dataset`).
    device, op : int, optional
        Restrict to one device / operating point.
    valid_only : bool
        Keep only events with ``valid`` true.
    time_var : str
        ``"t_host_ns"`` (default) or ``"t_mono_ns"``.
    unassigned : str
        Events with ``op_index == -1``: ``"auto"`` keeps them as ``(device, -1)`` only for a
        device with no event inside an operating point; ``"include"`` always; ``"exclude"``
        never.
    chunk_events : int
        Events read at once.
    max_per_group : int, optional
        Keep at most this many events per train: the first ones in file order (captures are
        written in time order). Bounds memory for huge operating points.

    Returns
    -------
    dict
        ``{(device, op): times}`` with times in ns [int64], sorted.
    """
    _check_event_vars(ds, time_var, unassigned)
    stride = max(ds.sizes.get("op", 0), 0) + 1
    parts: dict[int, list[NDArray[np.int64]]] = {}
    kept: dict[int, int] = {}
    for tt, dv, ov in _usable_events(ds, time_var, valid_only, chunk_events, device, op):
        key = dv * stride + (ov + 1)
        if key.size == 0:
            continue
        order = np.argsort(key, kind="stable")
        key, tt = key[order], tt[order]
        uk, start = np.unique(key, return_index=True)
        for k, a, b in zip(uk, start, np.append(start[1:], key.size), strict=True):
            k = int(k)
            if max_per_group is not None:
                b = min(b, a + max_per_group - kept.get(k, 0))
                if b <= a:
                    continue
            kept[k] = kept.get(k, 0) + (b - a)
            parts.setdefault(k, []).append(tt[a:b].copy())
    out: dict[Key, NDArray[np.int64]] = {}
    for k, lst in sorted(parts.items()):
        out[(k // stride, k % stride - 1)] = np.sort(np.concatenate(lst))
    return _apply_unassigned(out, unassigned)


def train_sizes(
    ds: xr.Dataset,
    *,
    valid_only: bool = True,
    time_var: str = "t_host_ns",
    unassigned: str = "auto",
    chunk_events: int = 2**22,
) -> dict[Key, int]:
    """Number of events of each ``(device, op)`` share train, in one pass over the index variables.

    Parameters
    ----------
    ds : xarray.Dataset
        Capture.
    valid_only, time_var, unassigned, chunk_events
        As in :func:`op_event_times`.

    Returns
    -------
    dict
        ``{(device, op): n_events}``.
    """
    _check_event_vars(ds, time_var, unassigned)
    counts: dict[Key, int] = {}
    n_op = max(ds.sizes.get("op", 0), 0)
    for _, dv, ov in _usable_events(ds, time_var, valid_only, chunk_events):
        key = dv * (n_op + 1) + (ov + 1)
        uk, cnt = np.unique(key, return_counts=True)
        for k, v in zip(uk.tolist(), cnt.tolist(), strict=True):
            kk = (k // (n_op + 1), k % (n_op + 1) - 1)
            counts[kk] = counts.get(kk, 0) + v
    return _apply_unassigned(dict(sorted(counts.items())), unassigned)


def _apply_unassigned(groups: dict[Key, Any], rule: str) -> dict[Key, Any]:
    if rule == "exclude":
        return {k: v for k, v in groups.items() if k[1] >= 0}
    if rule == "auto":
        assigned = {k[0] for k in groups if k[1] >= 0}
        return {k: v for k, v in groups.items() if k[1] >= 0 or k[0] not in assigned}
    return groups
