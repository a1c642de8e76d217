r"""Challenges and responses of a mining chip seen as a PUF, from any capture dataset.

Protocol
--------
**Challenge**: an operating point (set core voltage [mV], set frequency [MHz]) held for a dwell
[s], with the job content left to the miner. In a capture it is one row of the ``op`` table;
repeated operating points of one device at the same (voltage, frequency) are repeated *captures*
of one challenge, numbered in time order (``rep`` 0, 1, ...).

**Response**: what the device does under the challenge, as a feature vector:

* per-core valid nonce-hit counts ``hits[c]`` and per-core hardware-error counts ``errors[c]``
  over the dwell;
* the valid-share rate [1/s], the coefficient of variation of the valid inter-arrival times [1]
  and the hardware-error fraction [1].

**Core attribution.** The core of an event comes from the capture's ``core_id`` column when it
is known (the simulator and the UART driver fill it). Otherwise, for a BM1366, it is decoded from
the nonce bits as the bitaxeorg/ESP-Miner BM1366 driver does (``components/asic/bm1366.c``,
``BM1366_process_work``): with ``nonce_h`` the big-endian value of the four nonce bytes of the
chip's reply, ``core = (nonce_h >> 25) & 0x7f`` (112 cores used of the 7-bit field) and
``small core = reply id & 0x07`` (8 small cores per core, 894 in all). A Stratum ``submit`` nonce
is the header's little-endian u32 written as big-endian hex, so ``nonce_h`` is its byte swap:
``core = (bswap32(nonce) >> 25) & 0x7f``. The small core is in the UART reply's id byte only, so it
cannot be recovered from a Stratum share log (:func:`bm1366_small_core`). The same facts are in
:mod:`asiclab.protocol.bm1366`.

**Continuous response vector** (for distances): the Anscombe transform
:math:`a(n) = 2\sqrt{n + 3/8}` of every per-core count, valid then error,
:math:`x = (a(\mathrm{hits}_0), \dots, a(\mathrm{hits}_{N_c-1}), a(\mathrm{errors}_0), \dots)`.
For Poisson counts :math:`a(n)` has variance close to 1 whatever the mean, so the Euclidean
distance between two responses is in units of counting noise, and a dead core (0 hits) against a
working one is a large step. The rate is carried by the counts (equal dwells).

**Binarised response** (for the classic metrics), rule ``"chip_median"`` (the default): bit ``c``
of a response is 1 when its valid hit count on core ``c`` is *strictly above* the median of that
response's own per-core counts; ties (e.g. dead cores when half or more are dead) give 0. The
reference response of a device is the binarised mean of its enrollment captures. At nominal
voltage every core of every chip hashes at one rate, so the bits are coin flips: uniqueness near
50 % *together with* reliability near 50 % is noise, not a PUF. Rule ``"fleet_median"`` compares
each core with the median over the fleet's devices (per challenge) of their enrollment means:
with it, bit-aliasing is 50 % and uniqueness ``k / (2 (k - 1))`` (55.6 % for 10 devices) *by
construction* whenever there are no ties, so only reliability carries information.

References
----------
bitaxeorg/ESP-Miner, ``components/asic/bm1366.c`` (job result decoding), GPL-3.0; facts only.
F. J. Anscombe (1948), "The transformation of Poisson, binomial and negative-binomial data",
Biometrika 35, 246-254, DOI 10.1093/biomet/35.3-4.246.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from asiclab.puf._errors import PufDataError, PufInputError

__all__ = [
    "BM1366_CORES",
    "BM1366_SMALL_CORES_PER_CORE",
    "Responses",
    "anscombe",
    "binarise",
    "bm1366_core",
    "bm1366_small_core",
    "responses_from_capture",
]

#: Cores of a BM1366 used in the 7-bit core field of the nonce [1].
BM1366_CORES = 112
#: Small cores per core of a BM1366 (``reply id & 0x07``) [1].
BM1366_SMALL_CORES_PER_CORE = 8


def _bswap32(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64) & 0xFFFFFFFF
    return (((x & 0xFF) << 24) | ((x & 0xFF00) << 8) | ((x >> 8) & 0xFF00)
            | ((x >> 24) & 0xFF)).astype(np.int64)


def bm1366_core(nonce: Any, *, byte_order: str = "submit") -> np.ndarray:
    """Core of a BM1366 nonce, ``(nonce_h >> 25) & 0x7f`` (ESP-Miner's decoding).

    Parameters
    ----------
    nonce : int or array-like of int
        Nonce(s) [u32].
    byte_order : {"submit", "reply"}
        ``"submit"``: the Stratum ``mining.submit`` / capture ``nonce`` value (the header's
        little-endian u32), byte-swapped to the reply's big-endian ``nonce_h`` first;
        ``"reply"``: already ``nonce_h``.

    Returns
    -------
    numpy.ndarray of int64
        Core index in 0..127 (a real BM1366 uses 0..111).

    Raises
    ------
    PufInputError
        Negative or > 32-bit nonce, or an unknown byte order.
    """
    a = np.asarray(nonce, dtype=np.int64)
    if a.size and (a.min() < 0 or a.max() > 0xFFFFFFFF):
        raise PufInputError("nonce must be an unsigned 32-bit value (0..2**32-1)")
    if byte_order == "submit":
        a = _bswap32(a)
    elif byte_order != "reply":
        raise PufInputError(f"byte_order must be 'submit' or 'reply', got {byte_order!r}")
    return (a >> 25) & 0x7F


def bm1366_small_core(reply_id: Any) -> np.ndarray:
    """Small core of a BM1366 job result, ``reply id & 0x07`` (byte 7 of the UART reply).

    Parameters
    ----------
    reply_id : int or array-like of int
        The reply's id byte [0..255] (``job_id | small_core``).

    Returns
    -------
    numpy.ndarray of int64
        Small core in 0..7.
    """
    a = np.asarray(reply_id, dtype=np.int64)
    if a.size and (a.min() < 0 or a.max() > 0xFF):
        raise PufInputError("reply id must be a byte (0..255)")
    return a & 0x07


def anscombe(counts: Any) -> np.ndarray:
    r"""Anscombe variance-stabilising transform :math:`2\sqrt{n + 3/8}` of counts.

    Parameters
    ----------
    counts : array-like
        Non-negative counts [1].

    Returns
    -------
    numpy.ndarray
        Transformed values (variance about 1 for Poisson counts with mean above a few).

    References
    ----------
    Anscombe (1948), Biometrika 35, 246-254, DOI 10.1093/biomet/35.3-4.246.
    """
    c = np.asarray(counts, dtype=float)
    if c.size and np.nanmin(c) < 0:
        raise PufInputError("counts must be non-negative")
    return 2.0 * np.sqrt(c + 0.375)


@dataclass
class Responses:
    """Per-capture responses of a fleet (one row per (device, operating point)).

    Parameters
    ----------
    hits, errors : numpy.ndarray, shape (n_captures, n_cores)
        Valid and hardware-error events per core [1].
    device : numpy.ndarray of int, shape (n_captures,)
        Device index of each capture (into ``device_names``).
    voltage_mV, frequency_MHz : numpy.ndarray, shape (n_captures,)
        The challenge: set voltage [mV] and frequency [MHz].
    rep : numpy.ndarray of int, shape (n_captures,)
        Repeat number of the capture among the device's captures of that challenge (time order).
    duration_s : numpy.ndarray, shape (n_captures,)
        Dwell used [s].
    rate_hz, cv, error_fraction : numpy.ndarray, shape (n_captures,)
        Valid-share rate [1/s], CV of valid inter-arrival times [1] (NaN below 3 events),
        hardware-error fraction of all events [1] (NaN without events).
    device_names : list of str
        Names of the devices.
    source_kind : str
        ``source_kind`` of the capture (``simulated`` ...).
    core_source : str
        Where the cores came from (``core_id`` or ``bm1366_nonce``).
    """

    hits: np.ndarray
    errors: np.ndarray
    device: np.ndarray
    voltage_mV: np.ndarray
    frequency_MHz: np.ndarray
    rep: np.ndarray
    duration_s: np.ndarray
    rate_hz: np.ndarray
    cv: np.ndarray
    error_fraction: np.ndarray
    device_names: list[str]
    source_kind: str
    core_source: str
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.hits.shape[0])

    @property
    def n_cores(self) -> int:
        """Number of cores in the response [1]."""
        return int(self.hits.shape[1])

    @property
    def n_devices(self) -> int:
        """Number of devices [1]."""
        return len(self.device_names)

    @property
    def challenges(self) -> list[tuple[float, float]]:
        """The distinct challenges (voltage [mV], frequency [MHz]), sorted."""
        pairs = {(float(v), float(f)) for v, f in zip(self.voltage_mV, self.frequency_MHz,
                                                       strict=True)}
        return sorted(pairs)

    def select(self, mask: np.ndarray) -> Responses:
        """The captures where ``mask`` is true (a new object)."""
        m = np.asarray(mask, bool)
        cols = {k: getattr(self, k)[m] for k in ("hits", "errors", "device", "voltage_mV",
                                                 "frequency_MHz", "rep", "duration_s",
                                                 "rate_hz", "cv", "error_fraction")}
        return Responses(**cols, device_names=list(self.device_names),
                         source_kind=self.source_kind, core_source=self.core_source,
                         info=dict(self.info))

    def at(self, voltage_mV: float, frequency_MHz: float | None = None) -> Responses:
        """The captures of one challenge (voltage within 1e-6 mV; frequency if given).

        Raises
        ------
        PufInputError
            No capture at that challenge.
        """
        m = np.abs(self.voltage_mV - float(voltage_mV)) < 1e-6
        if frequency_MHz is not None:
            m &= np.abs(self.frequency_MHz - float(frequency_MHz)) < 1e-6
        if not m.any():
            raise PufInputError(f"no capture at challenge {voltage_mV} mV"
                                + (f", {frequency_MHz} MHz" if frequency_MHz else "")
                                + f"; challenges: {[c[0] for c in self.challenges]}")
        return self.select(m)

    def vectors(self, *, include_errors: bool = True, features: str = "per_core"
                ) -> np.ndarray:
        """The continuous response vectors, one row per capture.

        Parameters
        ----------
        include_errors : bool
            Append the hardware-error counts to the valid hits.
        features : {"per_core", "rate_only"}
            ``per_core``: Anscombe of every per-core count (the response);
            ``rate_only``: Anscombe of the chip totals only (a baseline showing how much of the
            separation the event rate alone gives, without any per-core pattern).
        """
        if features == "per_core":
            h, e = self.hits, self.errors
        elif features == "rate_only":
            h, e = self.hits.sum(1, keepdims=True), self.errors.sum(1, keepdims=True)
        else:
            raise PufInputError(f"features must be 'per_core' or 'rate_only', got {features!r}")
        parts = [anscombe(h)]
        if include_errors:
            parts.append(anscombe(e))
        return np.concatenate(parts, axis=1)


def _cores_of(ds: xr.Dataset, core_source: str, n_cores: int | None) -> tuple[np.ndarray, str,
                                                                             int]:
    core = np.asarray(ds["core_id"].values, np.int64)
    model = str(ds.attrs.get("device_model", ""))
    if core_source == "auto":
        if core.size and (core >= 0).all():
            core_source = "core_id"
        elif "1366" in model or (ds.sizes.get("device", 0) and any(
                "1366" in str(m) for m in ds["device_model"].values)):
            core_source = "bm1366_nonce"
        else:
            raise PufDataError("the capture has no core_id and its model is not a BM1366: the "
                               "nonce bits do not give the core for this chip")
    if core_source == "core_id":
        if core.size and (core < 0).any():
            raise PufDataError(f"{int((core < 0).sum())} events have no core_id")
        n = n_cores if n_cores is not None else (
            int(json_model(ds).get("n_cores", 0)) or (int(core.max()) + 1 if core.size else 1))
    elif core_source == "bm1366_nonce":
        nonce = np.asarray(ds["nonce"].values, np.int64)
        if nonce.size and (nonce < 0).any():
            raise PufDataError("events without a nonce cannot be attributed to a core")
        core = bm1366_core(nonce)
        n = BM1366_CORES if n_cores is None else n_cores
    else:
        raise PufInputError(f"core_source must be 'auto', 'core_id' or 'bm1366_nonce', "
                            f"got {core_source!r}")
    if core.size and core.max() >= n:
        raise PufDataError(f"core index {int(core.max())} >= n_cores {n}")
    return core, core_source, int(n)


def json_model(ds: xr.Dataset) -> dict[str, Any]:
    """The simulator's model constants from ``attrs['parameters']`` ({} when absent)."""
    import json

    try:
        par = json.loads(str(ds.attrs.get("parameters", "{}")))
    except (json.JSONDecodeError, TypeError):
        return {}
    return par.get("model", {}) if isinstance(par, dict) else {}


def responses_from_capture(ds: xr.Dataset, *, window_s: float | None = None,
                           core_source: str = "auto", n_cores: int | None = None) -> Responses:
    """Per-capture responses of every (device, operating point) of a capture dataset.

    Works for any source (simulated, emulated, live, imported) as long as the capture has an
    ``op`` table and either ``core_id`` or BM1366 nonces.

    Parameters
    ----------
    ds : xarray.Dataset
        A capture (:mod:`asiclab.dataset` schema).
    window_s : float, optional
        Use only the first ``window_s`` seconds of each operating point [s] (for the
        events-needed curve); default the whole dwell.
    core_source : {"auto", "core_id", "bm1366_nonce"}
        Where the cores come from; ``auto``: ``core_id`` when every event has one, else the
        BM1366 nonce bits for a BM1366 capture.
    n_cores : int, optional
        Number of cores (default: the model's, or 112 for BM1366 nonces).

    Returns
    -------
    Responses

    Raises
    ------
    PufDataError
        No operating points, or no way to attribute events to cores.
    PufInputError
        Bad ``window_s`` or ``core_source``.
    """
    n_op = ds.sizes.get("op", 0)
    if n_op == 0:
        raise PufDataError("the capture has no operating points (op table): no challenges")
    if window_s is not None and not (np.isfinite(window_s) and window_s > 0):
        raise PufInputError(f"window_s must be a positive number of seconds, got {window_s!r}")
    core, core_source, nc = _cores_of(ds, core_source, n_cores)
    op_idx = np.asarray(ds["op_index"].values, np.int64)
    t = np.asarray(ds["t_host_ns"].values, np.int64)
    valid = np.asarray(ds["valid"].values, bool)
    start = np.asarray(ds["op_t_start_ns"].values, np.int64)
    end = np.asarray(ds["op_t_end_ns"].values, np.int64)
    if window_s is not None:
        end = np.minimum(end, start + round(window_s * 1e9))
    keep = op_idx >= 0
    op_c = np.where(keep, op_idx, 0)
    keep &= (t > start[op_c]) & (t <= end[op_c])
    o, c, v, tk = op_idx[keep], core[keep], valid[keep], t[keep]
    hits = np.zeros((n_op, nc), np.int64)
    errors = np.zeros((n_op, nc), np.int64)
    np.add.at(hits, (o[v], c[v]), 1)
    np.add.at(errors, (o[~v], c[~v]), 1)
    dur = (end - start) * 1e-9
    n_valid = hits.sum(axis=1)
    n_all = n_valid + errors.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(dur > 0, n_valid / dur, np.nan)
        err_frac = np.where(n_all > 0, (n_all - n_valid) / n_all, np.nan)
    cv = np.full(n_op, np.nan)
    order = np.lexsort((tk[v], o[v]))
    ov, tv = o[v][order], tk[v][order]
    bounds = np.searchsorted(ov, np.arange(n_op + 1))
    for k in range(n_op):
        seg = tv[bounds[k]:bounds[k + 1]]
        if seg.size >= 3:
            d = np.diff(seg).astype(float)
            m = d.mean()
            cv[k] = d.std(ddof=1) / m if m > 0 else np.nan
    dev = np.asarray(ds["op_device_index"].values, np.int64)
    volt = np.asarray(ds["op_voltage_set"].values, float)
    freq = np.asarray(ds["op_frequency_set"].values, float)
    rep = np.zeros(n_op, np.int64)
    seen: dict[tuple[int, float, float], int] = {}
    for k in np.argsort(start, kind="stable"):
        key = (int(dev[k]), round(float(volt[k]), 6), round(float(freq[k]), 6))
        rep[k] = seen.get(key, 0)
        seen[key] = rep[k] + 1
    names = ([str(x) for x in ds["device_name"].values] if ds.sizes.get("device", 0)
             else [f"device{i}" for i in range(int(dev.max()) + 1)])
    return Responses(hits=hits, errors=errors, device=dev, voltage_mV=volt, frequency_MHz=freq,
                     rep=rep, duration_s=dur, rate_hz=rate, cv=cv, error_fraction=err_frac,
                     device_names=names, source_kind=str(ds.attrs.get("source_kind", "unknown")),
                     core_source=core_source, info={"window_s": window_s})


def binarise(hits: np.ndarray, reference: np.ndarray | None = None, *,
             rule: str = "chip_median", duration_s: np.ndarray | None = None,
             reference_duration_s: float | None = None) -> np.ndarray:
    """Binarised responses (see the module docstring for the two rules).

    Parameters
    ----------
    hits : numpy.ndarray, shape (n, n_cores)
        Per-core valid counts of the responses to binarise [1].
    reference : numpy.ndarray, shape (n_devices, n_cores), optional
        Rule ``"fleet_median"`` only: enrollment-mean per-core counts of every device of the
        fleet, at the same challenge [1].
    rule : {"chip_median", "fleet_median"}
        ``chip_median``: bit c = hits[c] > median of the response's own cores;
        ``fleet_median``: bit c = hits[c] > median over devices of ``reference[:, c]``.
    duration_s : numpy.ndarray, shape (n,), optional
        ``fleet_median``: dwell of each capture [s]; with ``reference_duration_s`` the threshold
        is scaled to it.
    reference_duration_s : float, optional
        ``fleet_median``: dwell the reference counts were taken over [s].

    Returns
    -------
    numpy.ndarray of uint8, shape (n, n_cores)
        The bits.

    Raises
    ------
    PufInputError
        Bad shapes or rule.
    """
    h = np.asarray(hits, float)
    if h.ndim != 2 or h.shape[1] == 0:
        raise PufInputError(f"hits must be (n, cores), got {h.shape}")
    if rule == "chip_median":
        return (h > np.median(h, axis=1, keepdims=True)).astype(np.uint8)
    if rule != "fleet_median":
        raise PufInputError(f"rule must be 'chip_median' or 'fleet_median', got {rule!r}")
    if reference is None:
        raise PufInputError("rule 'fleet_median' needs the fleet's reference counts")
    r = np.asarray(reference, float)
    if r.ndim != 2 or h.shape[1] != r.shape[1]:
        raise PufInputError(f"hits (n, cores) and reference (devices, cores) must agree, got "
                            f"{h.shape} and {r.shape}")
    thr = np.median(r, axis=0)[None, :]
    if duration_s is not None and reference_duration_s:
        thr = thr * (np.asarray(duration_s, float)[:, None] / float(reference_duration_s))
    return (h > thr).astype(np.uint8)
