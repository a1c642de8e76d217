"""AxeOS (ESP-Miner) HTTP client with a safety envelope, a telemetry poller and a sweep guard.

AxeOS is the web interface of the open-source Bitaxe firmware (ESP-Miner), also run by the Lucky
Miner LV06. This module talks to it over plain HTTP with the standard library only:

- :class:`AxeOSClient` reads ``GET /api/system/info``, changes the operating point with
  ``PATCH /api/system`` + ``POST /api/system/restart`` and *reads the result back*: a setting that
  did not take effect raises :class:`SettingNotAppliedError` (never a silent mismatch).
- :class:`AxeOSPoller` polls the info endpoint in a background thread and turns each reply into a
  telemetry row whose keys are those of the ``sample`` dimension of the capture schema
  (``docs/ARCHITECTURE.md``). When the miner is unreachable it backs off exponentially, records the
  gap and keeps running.
- :class:`SafetyEnvelope` refuses unsafe settings (:class:`UnsafeSettingError`) unless the caller
  passes ``override=True``; :class:`SweepGuard` remembers the miner's original settings, restores
  them on exit, on overheat (then raises :class:`OverheatError`) and on ``KeyboardInterrupt``.

Protocol facts are in ``/work/shared/reference/protocols.md`` (AxeOS section). Everything
measured here is the firmware's own report (``source_kind`` ``hardware``), unless the reply
carries the ``emulated`` marker of :mod:`asiclab.devices.emulated_axeos`; see
:func:`source_kind_of`.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from asiclab import AsiclabError

__all__ = [
    "TELEMETRY_KEYS",
    "AxeOSAuthError",
    "AxeOSClient",
    "AxeOSConnectionError",
    "AxeOSError",
    "AxeOSHTTPError",
    "AxeOSParameterError",
    "AxeOSPoller",
    "AxeOSProtocolError",
    "OperatingPoint",
    "OverheatError",
    "RestoreError",
    "SafetyEnvelope",
    "SettingNotAppliedError",
    "SweepGuard",
    "UnsafeSettingError",
    "info_to_telemetry",
    "source_kind_of",
]

log = logging.getLogger(__name__)

#: Keys of one telemetry row, in the order of the ``sample`` dimension of the capture schema
#: (without ``tel_device_index`` / ``tel_op_index``, which the capture assigns).
TELEMETRY_KEYS: tuple[str, ...] = (
    "tel_t_host_ns",
    "tel_t_mono_ns",
    "temperature",
    "power",
    "voltage_set",
    "voltage_measured",
    "frequency",
    "hashrate",
)

#: Capture-schema telemetry variable -> AxeOS ``/api/system/info`` field.
_INFO_FIELDS: dict[str, str] = {
    "temperature": "temp",  # chip temperature [degC]
    "power": "power",  # [W]
    "voltage_set": "coreVoltage",  # core voltage, set [mV]
    "voltage_measured": "coreVoltageActual",  # core voltage, measured [mV]
    "frequency": "frequency",  # [MHz], set
    "hashrate": "hashRate",  # [GH/s], reported
}

_MAX_BODY_BYTES = 1 << 20  # an AxeOS info reply is ~2 kB; refuse to buffer anything absurd
_MAX_ERRORS_KEPT = 100


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
class AxeOSError(AsiclabError):
    """Base class of the errors of :mod:`asiclab.devices.axeos`."""


class AxeOSParameterError(AxeOSError, ValueError):
    """A wrong argument (not finite, negative, empty request, bad URL, bad envelope)."""


class AxeOSConnectionError(AxeOSError):
    """The miner could not be reached (refused, timed out, dropped) after all retries."""


class AxeOSHTTPError(AxeOSError):
    """The miner answered with an unexpected HTTP status.

    Attributes
    ----------
    status : int
        HTTP status code.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class AxeOSAuthError(AxeOSHTTPError):
    """The miner answered 401/403: AxeOS refuses clients outside its allowed network."""


class AxeOSProtocolError(AxeOSError):
    """The miner's reply is not what the API promises (malformed JSON, not an object, ...)."""


class UnsafeSettingError(AxeOSError):
    """A requested setting lies outside the :class:`SafetyEnvelope` (pass ``override=True``)."""


class SettingNotAppliedError(AxeOSError):
    """The miner did not report the requested setting after the change (read-back mismatch).

    Attributes
    ----------
    requested : dict
        Requested ``{"frequency": MHz, "coreVoltage": mV}`` (only the keys that were set).
    reported : dict or None
        Last values the miner reported for those keys; ``None`` when it never answered.
    """

    def __init__(
        self, message: str, requested: dict[str, float], reported: dict[str, Any] | None
    ) -> None:
        super().__init__(message)
        self.requested = requested
        self.reported = reported


class OverheatError(AxeOSError):
    """The chip temperature exceeded the envelope's maximum (original settings were restored).

    Attributes
    ----------
    temperature_C : float
        Offending chip temperature [degC].
    max_temperature_C : float
        Envelope limit [degC].
    restored : bool
        Whether the original settings were restored (and confirmed) before raising.
    """

    def __init__(
        self, message: str, temperature_C: float, max_temperature_C: float, restored: bool
    ) -> None:
        super().__init__(message)
        self.temperature_C = temperature_C
        self.max_temperature_C = max_temperature_C
        self.restored = restored


class RestoreError(AxeOSError):
    """Restoring the miner's original settings failed; check the miner by hand."""


# --------------------------------------------------------------------------------------------
# pure helpers
# --------------------------------------------------------------------------------------------
def _as_float(value: Any) -> float:
    """Return ``value`` as a float, NaN when missing or not a number (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def info_to_telemetry(info: Mapping[str, Any], *, t_host_ns: int, t_mono_ns: int) -> dict[str, Any]:
    """Map one ``/api/system/info`` reply to a telemetry row of the capture schema.

    Parameters
    ----------
    info : Mapping
        Decoded JSON object of ``GET /api/system/info``.
    t_host_ns : int
        Host receive time [ns since the Unix epoch, UTC].
    t_mono_ns : int
        Host monotonic clock at receipt (``time.monotonic_ns``) [ns].

    Returns
    -------
    dict
        Keys :data:`TELEMETRY_KEYS`: ``temperature`` [degC] (``temp``), ``power`` [W],
        ``voltage_set`` [mV] (``coreVoltage``), ``voltage_measured`` [mV]
        (``coreVoltageActual``), ``frequency`` [MHz], ``hashrate`` [GH/s] (``hashRate``).
        Missing or non-numeric fields become NaN (the schema's float sentinel).
    """
    row: dict[str, Any] = {"tel_t_host_ns": int(t_host_ns), "tel_t_mono_ns": int(t_mono_ns)}
    for key, field in _INFO_FIELDS.items():
        row[key] = _as_float(info.get(field))
    return row


def source_kind_of(info: Mapping[str, Any]) -> str:
    """Return the capture ``source_kind`` of a miner from its info reply.

    Parameters
    ----------
    info : Mapping
        Decoded ``/api/system/info`` reply.

    Returns
    -------
    str
        ``"emulated"`` when the reply carries the ``emulated`` marker of
        :class:`asiclab.devices.emulated_axeos.AxeOSEmulator`, else ``"hardware"``.
    """
    return "emulated" if info.get("emulated") is True else "hardware"


def _check_number(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AxeOSParameterError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise AxeOSParameterError(f"{name} must be finite and > 0, got {value!r}")
    return float(value)


def _json_number(value: float) -> int | float:
    """AxeOS declares ``frequency`` and ``coreVoltage`` as integers: send ints when integral."""
    return int(value) if float(value).is_integer() else float(value)


@dataclass(frozen=True)
class OperatingPoint:
    """A core voltage / clock frequency pair.

    Parameters
    ----------
    frequency_MHz : float
        ASIC clock [MHz].
    core_voltage_mV : float
        Core voltage, set [mV].
    """

    frequency_MHz: float
    core_voltage_mV: float


# --------------------------------------------------------------------------------------------
# safety envelope
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SafetyEnvelope:
    """Limits for settings and chip temperature; defaults suit a BM1366 (Bitaxe Ultra / LV06).

    Defaults and their grounds: the BM1366 stock point is 485 MHz at 1200 mV
    (``protocols.md``); the envelope allows undervolting to 1000 mV and overclocking to 650 MHz
    (about +34 %) but not beyond 1300 mV, above which the single-chip boards' regulator and
    cooling are commonly reported to struggle; the chip-temperature limit of 75 degC is the
    throttle temperature of ESP-Miner's power-management task (``THROTTLE_TEMP 75.0``). These are
    conservative lab defaults, not manufacturer ratings (Bitmain publishes none for the BM1366).

    Parameters
    ----------
    voltage_mV : tuple of float
        Allowed core voltage range ``(min, max)`` [mV], inclusive.
    frequency_MHz : tuple of float
        Allowed clock range ``(min, max)`` [MHz], inclusive.
    max_temperature_C : float
        Highest chip temperature tolerated [degC]; readings strictly above it are an overheat.
    """

    voltage_mV: tuple[float, float] = (1000.0, 1300.0)
    frequency_MHz: tuple[float, float] = (200.0, 650.0)
    max_temperature_C: float = 75.0

    def __post_init__(self) -> None:
        for name in ("voltage_mV", "frequency_MHz"):
            lo_hi = getattr(self, name)
            if len(lo_hi) != 2:
                raise AxeOSParameterError(f"{name} must be a (min, max) pair, got {lo_hi!r}")
            lo, hi = (_check_number(name, v) for v in lo_hi)
            assert lo is not None and hi is not None
            if lo > hi:
                raise AxeOSParameterError(f"{name}: min {lo} > max {hi}")
            object.__setattr__(self, name, (lo, hi))
        t = self.max_temperature_C
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
            raise AxeOSParameterError(f"max_temperature_C must be a finite number, got {t!r}")
        object.__setattr__(self, "max_temperature_C", float(t))

    def violations(
        self, frequency_MHz: float | None = None, core_voltage_mV: float | None = None
    ) -> list[str]:
        """Return human-readable reasons why a setting is outside the envelope (empty if safe).

        Parameters
        ----------
        frequency_MHz : float, optional
            Requested clock [MHz].
        core_voltage_mV : float, optional
            Requested core voltage [mV].

        Returns
        -------
        list of str
        """
        out = []
        if frequency_MHz is not None:
            lo, hi = self.frequency_MHz
            if not lo <= frequency_MHz <= hi:
                out.append(f"frequency {frequency_MHz:g} MHz outside [{lo:g}, {hi:g}] MHz")
        if core_voltage_mV is not None:
            lo, hi = self.voltage_mV
            if not lo <= core_voltage_mV <= hi:
                out.append(f"core voltage {core_voltage_mV:g} mV outside [{lo:g}, {hi:g}] mV")
        return out

    def check_setting(
        self,
        frequency_MHz: float | None = None,
        core_voltage_mV: float | None = None,
        *,
        override: bool = False,
    ) -> None:
        """Raise :class:`UnsafeSettingError` when a setting is outside the envelope.

        Parameters
        ----------
        frequency_MHz : float, optional
            Requested clock [MHz].
        core_voltage_mV : float, optional
            Requested core voltage [mV].
        override : bool
            Accept the setting anyway (logged as a warning).
        """
        problems = self.violations(frequency_MHz, core_voltage_mV)
        if not problems:
            return
        if override:
            log.warning("safety envelope overridden: %s", "; ".join(problems))
            return
        raise UnsafeSettingError(
            "refusing unsafe setting: " + "; ".join(problems) + " (pass override=True to force)"
        )

    def is_overheated(self, temperature_C: float) -> bool:
        """Return True when ``temperature_C`` [degC] is above the limit (NaN is not)."""
        return bool(temperature_C > self.max_temperature_C)


# --------------------------------------------------------------------------------------------
# client
# --------------------------------------------------------------------------------------------
class _Transient(Exception):
    """Internal: a failure worth retrying (connection refused/dropped, timeout, HTTP 5xx)."""

    def __init__(self, error: AxeOSError) -> None:
        super().__init__(str(error))
        self.error = error


class AxeOSClient:
    """HTTP client of the AxeOS API of one miner.

    Parameters
    ----------
    base_url : str
        ``http://<host>[:port]`` of the miner (a bare host such as ``192.168.1.50`` gets
        ``http://``). Proxies from the environment are ignored: the miner is on the LAN.
    timeout_s : float
        Socket timeout of one request [s].
    envelope : SafetyEnvelope, optional
        Limits enforced by :meth:`set_operating_point`; ``None`` means the BM1366 defaults of
        :class:`SafetyEnvelope`.
    retries : int
        Extra attempts after a transient failure (connection refused/dropped, timeout, 5xx).
    backoff_s : float
        Wait before the first retry [s]; the wait is multiplied by ``backoff_factor`` after each
        retry and capped at ``max_backoff_s`` [s].
    backoff_factor : float
        Growth factor of the exponential backoff.
    max_backoff_s : float
        Longest single wait between attempts [s].
    sleep : callable, optional
        ``sleep(seconds)`` used between attempts (``time.sleep``; replaceable in tests).

    Notes
    -----
    401/403 answers are never retried; they raise :class:`AxeOSAuthError`. A reply that is not
    valid JSON raises :class:`AxeOSProtocolError`. After all retries a transient failure raises
    :class:`AxeOSConnectionError` (or :class:`AxeOSHTTPError` for a 5xx status).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 5.0,
        envelope: SafetyEnvelope | None = None,
        retries: int = 3,
        backoff_s: float = 0.5,
        backoff_factor: float = 2.0,
        max_backoff_s: float = 10.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        url = base_url.strip()
        if "://" not in url:
            url = "http://" + url
        parts = urllib.parse.urlsplit(url)
        try:
            _ = parts.port  # raises on a non-numeric or out-of-range port
        except ValueError:
            raise AxeOSParameterError(f"bad port in base_url {base_url!r}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AxeOSParameterError(f"base_url must be http(s)://host[:port], got {base_url!r}")
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        for name, v in (("timeout_s", timeout_s), ("backoff_s", backoff_s)):
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise AxeOSParameterError(f"{name} must be a finite number >= 0, got {v!r}")
        if timeout_s <= 0:
            raise AxeOSParameterError(f"timeout_s must be > 0, got {timeout_s!r}")
        if not isinstance(retries, int) or retries < 0:
            raise AxeOSParameterError(f"retries must be an int >= 0, got {retries!r}")
        if not backoff_factor >= 1.0:
            raise AxeOSParameterError(f"backoff_factor must be >= 1, got {backoff_factor!r}")
        if not max_backoff_s >= 0:
            raise AxeOSParameterError(f"max_backoff_s must be >= 0, got {max_backoff_s!r}")
        self.timeout_s = float(timeout_s)
        self.envelope = envelope if envelope is not None else SafetyEnvelope()
        self.retries = retries
        self.backoff_s = float(backoff_s)
        self.backoff_factor = float(backoff_factor)
        self.max_backoff_s = float(max_backoff_s)
        self._sleep = sleep if sleep is not None else time.sleep
        # no proxies: a miner on the LAN must never be reached through an HTTP proxy
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:
        return f"AxeOSClient({self.base_url!r})"

    # ---- transport ------------------------------------------------------------------------
    def backoff_delays(self, n: int | None = None) -> list[float]:
        """Return the waits between attempts [s]: ``min(backoff_s * factor**k, max_backoff_s)``.

        Parameters
        ----------
        n : int, optional
            Number of waits (default: ``retries``).
        """
        n = self.retries if n is None else n
        return [min(self.backoff_s * self.backoff_factor**k, self.max_backoff_s) for k in range(n)]

    def _once(self, method: str, path: str, body: Any | None, expect_json: bool) -> Any:
        url = self.base_url + path
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        where = f"{method} {url}"
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                raw = resp.read(_MAX_BODY_BYTES + 1)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code in (401, 403):
                raise AxeOSAuthError(
                    f"{where}: HTTP {e.code}; AxeOS refuses clients outside its allowed network "
                    "(use a host on the miner's LAN/subnet, or widen the firmware's allowed "
                    "network setting)",
                    e.code,
                ) from None
            err = AxeOSHTTPError(f"{where}: HTTP {e.code} {e.reason}", e.code)
            if e.code >= 500:
                raise _Transient(err) from None
            raise err from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            reason = getattr(e, "reason", e)
            raise _Transient(
                AxeOSConnectionError(f"{where}: {type(reason).__name__}: {reason}")
            ) from None
        if len(raw) > _MAX_BODY_BYTES:
            raise AxeOSProtocolError(f"{where}: reply larger than {_MAX_BODY_BYTES} bytes")
        if not expect_json:
            return raw.decode("utf-8", "replace")
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            snippet = raw[:80].decode("utf-8", "replace")
            raise AxeOSProtocolError(f"{where}: malformed JSON reply ({e}): {snippet!r}") from None

    def request(
        self,
        method: str,
        path: str,
        body: Any | None = None,
        *,
        expect_json: bool = True,
        retries: int | None = None,
    ) -> Any:
        """Send one API request, retrying transient failures with exponential backoff.

        Parameters
        ----------
        method : str
            HTTP method (``GET``, ``PATCH``, ``POST``).
        path : str
            Path starting with ``/`` (e.g. ``/api/system/info``).
        body : object, optional
            JSON-serialisable request body.
        expect_json : bool
            Decode the reply as JSON (else return its text).
        retries : int, optional
            Override the client's ``retries``.

        Returns
        -------
        object
            Decoded JSON (or text).

        Raises
        ------
        AxeOSAuthError, AxeOSHTTPError, AxeOSProtocolError, AxeOSConnectionError
        """
        if not path.startswith("/"):
            raise AxeOSParameterError(f"path must start with '/', got {path!r}")
        n_retries = self.retries if retries is None else retries
        delays = self.backoff_delays(n_retries)
        for attempt in range(n_retries + 1):
            try:
                return self._once(method, path, body, expect_json)
            except _Transient as t:
                if attempt >= n_retries:
                    raise t.error from None
                log.debug(
                    "%s (attempt %d), retrying in %.3g s", t.error, attempt + 1, delays[attempt]
                )
                self._sleep(delays[attempt])
        raise AssertionError("unreachable")  # pragma: no cover

    # ---- reading --------------------------------------------------------------------------
    def info(self, *, retries: int | None = None) -> dict[str, Any]:
        """Return ``GET /api/system/info`` as a dict (see ``protocols.md`` for its fields).

        Raises
        ------
        AxeOSProtocolError
            When the reply is not a JSON object.
        """
        info = self.request("GET", "/api/system/info", retries=retries)
        if not isinstance(info, dict):
            raise AxeOSProtocolError(
                f"GET /api/system/info: expected a JSON object, got {type(info).__name__}"
            )
        return info

    def read_telemetry(self, *, retries: int | None = None) -> dict[str, Any]:
        """Poll the info endpoint once and return one telemetry row (:func:`info_to_telemetry`)."""
        info = self.info(retries=retries)
        return info_to_telemetry(info, t_host_ns=time.time_ns(), t_mono_ns=time.monotonic_ns())

    def operating_point(self) -> OperatingPoint:
        """Return the miner's current ``frequency`` [MHz] and ``coreVoltage`` [mV] settings.

        Raises
        ------
        AxeOSProtocolError
            When the reply lacks numeric ``frequency`` / ``coreVoltage`` fields.
        """
        info = self.info()
        f, v = _as_float(info.get("frequency")), _as_float(info.get("coreVoltage"))
        if math.isnan(f) or math.isnan(v):
            raise AxeOSProtocolError(
                "info reply lacks numeric 'frequency'/'coreVoltage': "
                f"{info.get('frequency')!r}, {info.get('coreVoltage')!r}"
            )
        return OperatingPoint(frequency_MHz=f, core_voltage_mV=v)

    # ---- writing --------------------------------------------------------------------------
    def restart(self) -> None:
        """``POST /api/system/restart``; the miner goes offline for a few seconds."""
        self.request("POST", "/api/system/restart", expect_json=False)

    def patch_settings(self, settings: Mapping[str, Any], *, override: bool = False) -> None:
        """``PATCH /api/system`` with ``settings`` (checked against the envelope).

        Parameters
        ----------
        settings : Mapping
            AxeOS setting keys and values (``frequency`` [MHz], ``coreVoltage`` [mV], ...).
        override : bool
            Accept a ``frequency``/``coreVoltage`` outside the envelope.
        """
        f = _check_number("frequency", settings.get("frequency"))
        v = _check_number("coreVoltage", settings.get("coreVoltage"))
        self.envelope.check_setting(f, v, override=override)
        self.request("PATCH", "/api/system", dict(settings), expect_json=False)

    def set_operating_point(
        self,
        frequency_MHz: float | None = None,
        core_voltage_mV: float | None = None,
        *,
        restart: bool = True,
        confirm: bool = True,
        confirm_timeout_s: float = 60.0,
        confirm_interval_s: float = 1.0,
        frequency_tolerance_MHz: float = 0.5,
        voltage_tolerance_mV: float = 0.5,
        override: bool = False,
    ) -> dict[str, Any]:
        """Set clock and/or core voltage, restart if asked, and confirm by reading back.

        Parameters
        ----------
        frequency_MHz : float, optional
            New ASIC clock [MHz] (AxeOS key ``frequency``).
        core_voltage_mV : float, optional
            New core voltage [mV] (AxeOS key ``coreVoltage``).
        restart : bool
            ``POST /api/system/restart`` after the PATCH (AxeOS applies these settings at boot).
        confirm : bool
            Read ``/api/system/info`` back until the values match or ``confirm_timeout_s``.
        confirm_timeout_s : float
            How long to wait for the miner to come back and report the values [s].
        confirm_interval_s : float
            Wait between read-back attempts [s].
        frequency_tolerance_MHz, voltage_tolerance_mV : float
            Accepted difference between requested and reported value [MHz], [mV].
        override : bool
            Accept a setting outside the :class:`SafetyEnvelope`.

        Returns
        -------
        dict
            The confirming info reply (the last one read; ``{}`` when ``confirm`` is False).

        Raises
        ------
        UnsafeSettingError
            Setting outside the envelope and ``override`` is False (nothing is sent).
        SettingNotAppliedError
            The miner did not report the requested values within ``confirm_timeout_s``.
        """
        f = _check_number("frequency_MHz", frequency_MHz)
        v = _check_number("core_voltage_mV", core_voltage_mV)
        if f is None and v is None:
            raise AxeOSParameterError("give frequency_MHz and/or core_voltage_mV")
        requested: dict[str, float] = {}
        if f is not None:
            requested["frequency"] = f
        if v is not None:
            requested["coreVoltage"] = v
        self.patch_settings({k: _json_number(x) for k, x in requested.items()}, override=override)
        if restart:
            try:
                self.restart()
            except AxeOSConnectionError as e:
                # a rebooting miner may drop the connection before answering; the read-back decides
                log.info("restart request got no answer (%s); confirming by read-back", e)
        if not confirm:
            return {}
        tol = {"frequency": frequency_tolerance_MHz, "coreVoltage": voltage_tolerance_mV}
        deadline = time.monotonic() + confirm_timeout_s
        reported: dict[str, Any] | None = None
        last_error: AxeOSError | None = None
        while True:
            try:
                info = self.info(retries=0)
            except (AxeOSConnectionError, AxeOSHTTPError) as e:
                if isinstance(e, AxeOSAuthError):
                    raise
                last_error = e
            else:
                reported = {k: info.get(k) for k in requested}
                if all(abs(_as_float(info.get(k)) - x) <= tol[k] for k, x in requested.items()):
                    return info
            if time.monotonic() >= deadline:
                break
            self._sleep(min(confirm_interval_s, max(0.0, deadline - time.monotonic())))
        if reported is None:
            msg = (
                f"could not confirm {requested}: miner unreachable for {confirm_timeout_s:g} s "
                f"after the change (last error: {last_error})"
            )
        else:
            msg = f"miner did not apply {requested}: it reports {reported}" + (
                "" if restart else " (restart=False; AxeOS applies these settings at restart)"
            )
        raise SettingNotAppliedError(msg, requested, reported)

    # ---- polling --------------------------------------------------------------------------
    def poll(
        self,
        interval_s: float,
        *,
        on_row: Callable[[dict[str, Any]], object] | None = None,
        on_gap: Callable[[int, int], object] | None = None,
        max_backoff_s: float | None = None,
        start: bool = True,
    ) -> AxeOSPoller:
        """Return an :class:`AxeOSPoller` of this client (started unless ``start`` is False).

        Use it as a context manager (``with client.poll(1.0, on_row=journal_fn) as p: ...``) so
        that it stops on exit. See :class:`AxeOSPoller` for the parameters.
        """
        poller = AxeOSPoller(
            self, interval_s, on_row=on_row, on_gap=on_gap, max_backoff_s=max_backoff_s
        )
        if start:
            poller.start()
        return poller


# --------------------------------------------------------------------------------------------
# poller
# --------------------------------------------------------------------------------------------
class AxeOSPoller:
    """Background thread polling ``/api/system/info`` into telemetry rows.

    Each successful poll yields one row (:func:`info_to_telemetry`), appended to :attr:`rows` and
    passed to every row callback (e.g. the capture journal's ``append_telemetry``). A failed poll
    (unreachable, timeout, HTTP error, malformed reply) never stops the thread: it opens a *gap*,
    polls again after an exponentially growing wait (``interval_s * 2**k``, capped at
    ``max_backoff_s``), and when a poll succeeds again closes the gap ``(start_ns, end_ns)``:
    ``start_ns`` is the host time [ns since epoch] at which the first failing poll began,
    ``end_ns`` the receive time of the first good reading after it (or the stop time). Closed gaps
    go to :attr:`gaps` and to the gap callbacks.

    Parameters
    ----------
    client : AxeOSClient
        The miner.
    interval_s : float
        Time between poll starts when the miner answers [s].
    on_row : callable, optional
        ``on_row(row: dict)``, called in the poller thread for each reading.
    on_gap : callable, optional
        ``on_gap(start_ns: int, end_ns: int)``, called in the poller thread when a gap closes.
    max_backoff_s : float, optional
        Longest wait between polls while the miner is unreachable [s] (default
        ``max(interval_s, client.max_backoff_s)``).

    Notes
    -----
    Exceptions raised by callbacks are logged and kept in :attr:`callback_errors`; the reading is
    kept in :attr:`rows` regardless.
    """

    def __init__(
        self,
        client: AxeOSClient,
        interval_s: float,
        *,
        on_row: Callable[[dict[str, Any]], object] | None = None,
        on_gap: Callable[[int, int], object] | None = None,
        max_backoff_s: float | None = None,
    ) -> None:
        if not (
            isinstance(interval_s, int | float) and math.isfinite(interval_s) and interval_s > 0
        ):
            raise AxeOSParameterError(f"interval_s must be finite and > 0, got {interval_s!r}")
        self.client = client
        self.interval_s = float(interval_s)
        self.max_backoff_s = float(
            max(self.interval_s, client.max_backoff_s) if max_backoff_s is None else max_backoff_s
        )
        if not self.max_backoff_s >= self.interval_s:
            raise AxeOSParameterError("max_backoff_s must be >= interval_s")
        self._row_callbacks: list[Callable[[dict[str, Any]], object]] = []
        self._gap_callbacks: list[Callable[[int, int], object]] = []
        if on_row is not None:
            self._row_callbacks.append(on_row)
        if on_gap is not None:
            self._gap_callbacks.append(on_gap)
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._gaps: list[tuple[int, int]] = []
        self._errors: list[AxeOSError] = []
        self.callback_errors: list[BaseException] = []
        self.n_polls = 0
        self.n_failures = 0
        self._gap_start_ns: int | None = None
        self._consecutive_failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- callbacks --------------------------------------------------------------------------
    def add_row_callback(self, fn: Callable[[dict[str, Any]], object]) -> None:
        """Also call ``fn(row)`` for every reading."""
        with self._lock:
            self._row_callbacks.append(fn)

    def remove_row_callback(self, fn: Callable[[dict[str, Any]], object]) -> None:
        """Stop calling ``fn`` (no error if it is not registered)."""
        with self._lock:
            if fn in self._row_callbacks:
                self._row_callbacks.remove(fn)

    def add_gap_callback(self, fn: Callable[[int, int], object]) -> None:
        """Also call ``fn(start_ns, end_ns)`` for every closed gap."""
        with self._lock:
            self._gap_callbacks.append(fn)

    def _call(self, callbacks: Iterable[Callable[..., object]], *args: Any) -> None:
        for fn in callbacks:
            try:
                fn(*args)
            except Exception as e:
                log.exception("AxeOS poller callback %r failed", fn)
                with self._lock:
                    self.callback_errors.append(e)

    # ---- state ------------------------------------------------------------------------------
    @property
    def rows(self) -> list[dict[str, Any]]:
        """Copy of the readings so far (telemetry rows, oldest first)."""
        with self._lock:
            return list(self._rows)

    @property
    def gaps(self) -> list[tuple[int, int]]:
        """Copy of the closed gaps ``(start_ns, end_ns)`` [ns since epoch]."""
        with self._lock:
            return list(self._gaps)

    @property
    def errors(self) -> list[AxeOSError]:
        """The last (up to 100) poll errors."""
        with self._lock:
            return list(self._errors)

    @property
    def in_gap(self) -> bool:
        """True while the miner has not answered since a failed poll."""
        return self._gap_start_ns is not None

    @property
    def running(self) -> bool:
        """True while the poller thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def telemetry_columns(self, device_index: int = 0, op_index: int = -1) -> dict[str, np.ndarray]:
        """Return the readings as columns for ``asiclab.dataset.build_capture(telemetry=...)``.

        Parameters
        ----------
        device_index : int
            Value of ``tel_device_index`` for every row.
        op_index : int
            Value of ``tel_op_index`` for every row (-1: outside any operating point).
        """
        rows = self.rows
        cols: dict[str, np.ndarray] = {
            "tel_t_host_ns": np.array([r["tel_t_host_ns"] for r in rows], dtype=np.int64),
            "tel_t_mono_ns": np.array([r["tel_t_mono_ns"] for r in rows], dtype=np.int64),
            "tel_device_index": np.full(len(rows), device_index, dtype=np.int32),
            "tel_op_index": np.full(len(rows), op_index, dtype=np.int32),
        }
        for key in _INFO_FIELDS:
            cols[key] = np.array([r[key] for r in rows], dtype=np.float64)
        return cols

    # ---- polling ----------------------------------------------------------------------------
    def poll_once(self) -> dict[str, Any] | None:
        """Poll once (no retries); record the row or the failure. Returns the row or None."""
        t_start_ns = time.time_ns()
        try:
            info = self.client.info(retries=0)
        except AxeOSError as e:
            with self._lock:
                self.n_polls += 1
                self.n_failures += 1
                self._consecutive_failures += 1
                self._errors.append(e)
                del self._errors[:-_MAX_ERRORS_KEPT]
                if self._gap_start_ns is None:
                    self._gap_start_ns = t_start_ns
                    log.warning("AxeOS telemetry gap starts: %s", e)
            return None
        row = info_to_telemetry(info, t_host_ns=time.time_ns(), t_mono_ns=time.monotonic_ns())
        gap = None
        with self._lock:
            self.n_polls += 1
            self._consecutive_failures = 0
            self._rows.append(row)
            if self._gap_start_ns is not None:
                gap = (self._gap_start_ns, row["tel_t_host_ns"])
                self._gaps.append(gap)
                self._gap_start_ns = None
            row_cbs, gap_cbs = list(self._row_callbacks), list(self._gap_callbacks)
        if gap is not None:
            log.warning("AxeOS telemetry gap closed after %.3f s", (gap[1] - gap[0]) / 1e9)
            self._call(gap_cbs, *gap)
        self._call(row_cbs, row)
        return row

    def _next_wait(self, elapsed_s: float) -> float:
        k = self._consecutive_failures
        if k == 0:
            return max(0.0, self.interval_s - elapsed_s)
        return min(self.interval_s * 2.0 ** (k - 1), self.max_backoff_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                self.poll_once()
            except Exception:  # never let a surprise end the telemetry record
                log.exception("AxeOS poller: unexpected error (poller continues)")
                with self._lock:
                    self._consecutive_failures += 1
                    self.n_failures += 1
            self._stop.wait(self._next_wait(time.monotonic() - t0))

    def start(self) -> AxeOSPoller:
        """Start the poller thread (daemon). Returns self."""
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"AxeOSPoller({self.client.base_url})", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop the thread (waits for a poll in flight) and close an open gap at the stop time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        gap = None
        with self._lock:
            if self._gap_start_ns is not None:
                gap = (self._gap_start_ns, time.time_ns())
                self._gaps.append(gap)
                self._gap_start_ns = None
            gap_cbs = list(self._gap_callbacks)
        if gap is not None:
            self._call(gap_cbs, *gap)

    def __enter__(self) -> AxeOSPoller:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# sweep guard
# --------------------------------------------------------------------------------------------
class SweepGuard:
    """Context manager for changing a miner's operating point safely.

    On entry it reads and remembers the miner's current ``frequency``/``coreVoltage``. Inside, set
    operating points through :meth:`set_operating_point` (envelope-checked) and feed it readings
    (:meth:`check`, or attach it to a poller with ``poller=``). On exit -- normal, by exception
    or ``KeyboardInterrupt`` -- it restores and confirms the original settings if it changed them.

    When a reading's chip temperature exceeds ``envelope.max_temperature_C`` the guard restores the
    original settings at once -- in the thread that saw the reading (e.g. the poller thread), or,
    if the sweep thread is busy changing settings at that moment, in the sweep thread as soon as
    that change returns -- and raises :class:`OverheatError` in the sweep's thread at the next
    :meth:`check`, :meth:`set_operating_point` or on exit. After an overheat the guard refuses
    further changes.

    Parameters
    ----------
    client : AxeOSClient
        The miner.
    envelope : SafetyEnvelope, optional
        Limits (default: the client's envelope).
    poller : AxeOSPoller, optional
        A running poller whose readings the guard watches (attached on entry, detached on exit).
    watch_interval_s : float, optional
        If given and ``poller`` is not, the guard runs its own poller at this interval [s].
    restart : bool
        Restart the miner when changing settings (see :meth:`AxeOSClient.set_operating_point`).
    confirm_timeout_s : float
        Read-back timeout of every change, including the restore [s].

    Examples
    --------
    >>> with client.poll(1.0, on_row=journal.append_telemetry) as poller:  # doctest: +SKIP
    ...     with SweepGuard(client, poller=poller) as guard:
    ...         for f in (400, 450, 500):
    ...             guard.set_operating_point(frequency_MHz=f)
    ...             time.sleep(600)  # the poller thread acts on an overheat meanwhile
    ...             guard.check()
    """

    def __init__(
        self,
        client: AxeOSClient,
        *,
        envelope: SafetyEnvelope | None = None,
        poller: AxeOSPoller | None = None,
        watch_interval_s: float | None = None,
        restart: bool = True,
        confirm_timeout_s: float = 60.0,
    ) -> None:
        self.client = client
        self.envelope = envelope if envelope is not None else client.envelope
        self.restart = restart
        self.confirm_timeout_s = confirm_timeout_s
        self._external_poller = poller
        self._watch_interval_s = watch_interval_s
        self._own_poller: AxeOSPoller | None = None
        self.original: OperatingPoint | None = None
        self._op_lock = threading.RLock()  # held while settings are being changed
        self._state_lock = threading.Lock()
        self._changed = False
        self._overheat_temp: float | None = None  # first offending reading [degC]
        self._overheat_restored: bool | None = None  # None: restore not attempted yet
        self._overheat_raised = False
        self.restore_error: BaseException | None = None

    # ---- context --------------------------------------------------------------------------
    def __enter__(self) -> SweepGuard:
        info = self.client.info()
        f, v = _as_float(info.get("frequency")), _as_float(info.get("coreVoltage"))
        if math.isnan(f) or math.isnan(v):
            raise AxeOSProtocolError("cannot remember the original settings: info lacks them")
        self.original = OperatingPoint(frequency_MHz=f, core_voltage_mV=v)
        temp = _as_float(info.get("temp"))
        if self.envelope.is_overheated(temp):
            raise OverheatError(
                f"chip already at {temp:g} degC > {self.envelope.max_temperature_C:g} degC; "
                "not starting the sweep",
                temp,
                self.envelope.max_temperature_C,
                restored=False,
            )
        if self._external_poller is not None:
            self._external_poller.add_row_callback(self.observe)
        elif self._watch_interval_s is not None:
            self._own_poller = self.client.poll(self._watch_interval_s, on_row=self.observe)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> bool:
        if self._external_poller is not None:
            self._external_poller.remove_row_callback(self.observe)
        if self._own_poller is not None:
            self._own_poller.stop()
        try:
            self.restore()
        except BaseException as err:
            msg = f"could not restore the miner's original settings {self.original}: {err}"
            if exc is None:
                raise RestoreError(msg) from err
            exc.add_note(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            return False
        if self.overheated and self._overheat_restored is not True:
            self._overheat_restored = True  # the restore above succeeded
        if exc is None and self.overheated and not self._overheat_raised:
            raise self._overheat_error()
        return False

    # ---- overheat ---------------------------------------------------------------------------
    @property
    def overheated(self) -> bool:
        """True once a reading above the temperature limit was seen."""
        return self._overheat_temp is not None

    def _overheat_error(self) -> OverheatError:
        temp = self._overheat_temp
        assert temp is not None
        restored = bool(self._overheat_restored)
        self._overheat_raised = True
        state = (
            "original settings restored" if restored else "RESTORING THE ORIGINAL SETTINGS FAILED"
        )
        return OverheatError(
            f"chip temperature {temp:g} degC > limit {self.envelope.max_temperature_C:g} degC; "
            f"{state} ({self.original})",
            temp,
            self.envelope.max_temperature_C,
            restored,
        )

    def _restore_after_overheat(self, blocking: bool) -> None:
        """Restore once after an overheat; non-blocking callers leave it to the lock holder."""
        if not self._op_lock.acquire(blocking=blocking):
            return  # the sweep thread is changing settings; it restores when that returns
        try:
            try:  # restore() is a no-op when the settings are already the original ones
                self.restore()
            except Exception as e:
                self.restore_error = e
                self._overheat_restored = False
                log.exception("restore after overheat failed")
            else:
                self._overheat_restored = True
        finally:
            self._op_lock.release()

    def observe(self, reading: Mapping[str, Any]) -> None:
        """Look at one reading (telemetry row or info reply); act on overheat.

        Thread-safe and never blocks on a settings change in progress, so it is suitable as a
        poller row callback. On overheat it restores the original settings (see the class notes).
        """
        raw = reading["temperature"] if "temperature" in reading else reading.get("temp")
        temp = _as_float(raw)
        if not self.envelope.is_overheated(temp):
            return
        with self._state_lock:
            first = self._overheat_temp is None
            if first:
                self._overheat_temp = temp
        if first:
            log.error(
                "overheat: %g degC > %g degC; restoring %s",
                temp,
                self.envelope.max_temperature_C,
                self.original,
            )
        if self._overheat_restored is None:  # later attempts are left to the sweep thread
            self._restore_after_overheat(blocking=False)

    def check(self, reading: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Check a reading (or a fresh one from the miner); raise after restoring on overheat.

        Parameters
        ----------
        reading : Mapping, optional
            Telemetry row or info reply; default: :meth:`AxeOSClient.read_telemetry`.

        Returns
        -------
        dict
            The reading checked.

        Raises
        ------
        OverheatError
            After the original settings were restored (``restored`` tells whether that worked).
        """
        row = dict(reading) if reading is not None else self.client.read_telemetry()
        self.observe(row)
        if self.overheated:
            self._restore_after_overheat(blocking=True)
            raise self._overheat_error()
        return row

    # ---- settings ---------------------------------------------------------------------------
    def set_operating_point(
        self,
        frequency_MHz: float | None = None,
        core_voltage_mV: float | None = None,
        *,
        override: bool = False,
    ) -> dict[str, Any]:
        """Set and confirm an operating point (envelope-checked); refused after an overheat.

        Returns the confirming info reply, which is also checked for overheat.
        """
        if self.original is None:
            raise AxeOSParameterError("use SweepGuard as a context manager ('with ...')")
        if self.overheated:
            self._restore_after_overheat(blocking=True)
            raise self._overheat_error()
        self.envelope.check_setting(frequency_MHz, core_voltage_mV, override=override)
        with self._op_lock:
            if self.overheated:  # seen by another thread while we waited for the lock
                self._restore_after_overheat(blocking=True)
                raise self._overheat_error()
            self._changed = True
            info = self.client.set_operating_point(
                frequency_MHz,
                core_voltage_mV,
                restart=self.restart,
                confirm_timeout_s=self.confirm_timeout_s,
                override=True,  # the guard's own envelope was checked above
            )
        self.check(info)
        return info

    def restore(self) -> None:
        """Restore and confirm the original settings if the guard changed them (idempotent)."""
        with self._op_lock:
            if not self._changed or self.original is None:
                return
            self.client.set_operating_point(
                self.original.frequency_MHz,
                self.original.core_voltage_mV,
                restart=self.restart,
                confirm_timeout_s=self.confirm_timeout_s,
                override=True,  # the miner's own original settings
            )
            self._changed = False
            log.info("restored original settings %s", self.original)
