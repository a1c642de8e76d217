"""An emulated AxeOS HTTP API (Bitaxe / LV06 firmware) backed by the simulated chip model.

:class:`AxeOSEmulator` is a real HTTP server (``http.server.ThreadingHTTPServer`` in a thread,
bound to loopback by default) that answers the AxeOS endpoints the suite uses:

- ``GET /api/system/info``: the fields listed in ``protocols.md`` plus ``"emulated": true`` and
  ``"source_kind": "emulated"`` (the data of an emulated device must say so);
- ``PATCH /api/system``: validates the JSON body and stores the settings as *pending*;
  ``frequency`` [MHz] and ``coreVoltage`` [mV] reach the chip only at the next restart, as with
  the real firmware;
- ``POST /api/system/restart``: answers, goes offline for ``restart_delay_s`` (connections are
  dropped, as a rebooting ESP32 does), then applies the pending settings;
- ``GET /api/system/asic`` and ``GET /api/system/statistics``: minimal versions;
- 404 for unknown paths, 405 for a wrong method, 400 for a bad body.

The chip is shared with the emulated LV06's Stratum side through :class:`ChipHandle`, a
thread-safe wrapper: the Stratum side calls :meth:`ChipHandle.advance` in real time and
:meth:`ChipHandle.record_share`; the HTTP side only calls :meth:`ChipHandle.telemetry` and
:meth:`ChipHandle.set_operating_point`. Both go through one re-entrant lock.

Fault injection for tests: ``fail_next_n_requests`` (dropped connections or HTTP 503),
``ignore_settings`` (restart does not apply the settings), ``require_auth`` (HTTP 401, as AxeOS
answers clients outside its allowed network), ``temperature_offset_C`` (reported chip temperature
raised, to provoke an overheat) and ``malformed_json``. All are attributes that may be changed
while the server runs.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from asiclab import AsiclabError, __version__

__all__ = [
    "BM1366_SMALL_CORES",
    "AxeOSEmulator",
    "AxeOSEmulatorError",
    "ChipHandle",
    "ChipModel",
]

log = logging.getLogger(__name__)

#: BM1366 small-core count (``protocols.md``); expected hashrate [GH/s] = f [MHz] * 894 / 1000.
BM1366_SMALL_CORES = 894
_MAX_BODY_BYTES = 64 * 1024
_HISTORY_S = 3600.0  # statistics history kept [s]
_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "frequency": (int, float),
    "coreVoltage": (int, float),
    "hostname": (str,),
    "stratumURL": (str,),
    "stratumUser": (str,),
    "stratumPassword": (str,),
    "stratumPort": (int,),
    "fallbackStratumURL": (str,),
    "fallbackStratumUser": (str,),
    "fallbackStratumPassword": (str,),
    "fallbackStratumPort": (int,),
    "fanspeed": (int,),
    "autofanspeed": (int,),
    "overheat_mode": (int,),
    "flipscreen": (int,),
    "invertscreen": (int,),
    "invertfanpolarity": (int,),
}
_OP_KEYS = frozenset({"frequency", "coreVoltage"})
_WRITE_ONLY = frozenset({"stratumPassword", "fallbackStratumPassword", "wifiPass"})


class AxeOSEmulatorError(AsiclabError):
    """Errors of :mod:`asiclab.devices.emulated_axeos` (bad options, server not started)."""


class ChipModel(Protocol):
    """The part of :class:`asiclab.devices.simulated.SimulatedChip` the emulator relies on."""

    def set_operating_point(self, voltage_mV: float, frequency_MHz: float) -> None: ...

    def advance(self, dt_s: float) -> Any: ...

    def telemetry(self) -> dict[str, Any]: ...


class ChipHandle:
    """Thread-safe handle of one simulated chip, shared by the Stratum side and the HTTP side.

    Every call into the chip holds :attr:`lock` (re-entrant), so the Stratum side advancing the
    model in real time and the HTTP side reading telemetry or changing the operating point never
    interleave. It also keeps the miner-level counters the firmware reports
    (``sharesAccepted``, ``sharesRejected``, ``bestDiff``, ``poolDifficulty``) and an *online*
    flag that is cleared while the emulated firmware restarts: the Stratum side should neither
    advance the chip nor submit shares while :meth:`is_online` is False
    (:meth:`wait_online` helps).

    Parameters
    ----------
    chip : ChipModel
        A :class:`asiclab.devices.simulated.SimulatedChip` (or any object with its API).
    """

    def __init__(self, chip: ChipModel) -> None:
        for name in ("set_operating_point", "advance", "telemetry"):
            if not callable(getattr(chip, name, None)):
                raise AxeOSEmulatorError(f"chip lacks the method {name}() of SimulatedChip")
        self.chip = chip
        self.lock = threading.RLock()
        self._online = threading.Event()
        self._online.set()
        self.shares_accepted = 0
        self.shares_rejected = 0
        self.best_diff = 0.0
        self.best_session_diff = 0.0
        self.pool_difficulty = math.nan

    def advance(self, dt_s: float) -> Any:
        """Advance the chip model by ``dt_s`` [s]; returns the chip's ``ChipEvents``."""
        with self.lock:
            return self.chip.advance(dt_s)

    def telemetry(self) -> dict[str, Any]:
        """Return a copy of the chip's telemetry (temperature [degC], power [W], ... )."""
        with self.lock:
            return dict(self.chip.telemetry())

    def set_operating_point(self, voltage_mV: float, frequency_MHz: float) -> None:
        """Set core voltage [mV] and clock [MHz] of the chip."""
        with self.lock:
            self.chip.set_operating_point(voltage_mV=voltage_mV, frequency_MHz=frequency_MHz)

    def record_share(self, accepted: bool, difficulty: float = math.nan) -> None:
        """Count one submitted share (called by the Stratum side).

        Parameters
        ----------
        accepted : bool
            Whether the pool accepted it.
        difficulty : float
            Achieved share difficulty (updates ``bestDiff``); NaN if unknown.
        """
        with self.lock:
            if accepted:
                self.shares_accepted += 1
            else:
                self.shares_rejected += 1
            if math.isfinite(difficulty):
                self.best_diff = max(self.best_diff, difficulty)
                self.best_session_diff = max(self.best_session_diff, difficulty)

    def set_pool_difficulty(self, difficulty: float) -> None:
        """Record the current Stratum difficulty (reported as ``poolDifficulty``)."""
        with self.lock:
            self.pool_difficulty = float(difficulty)

    def stats(self) -> dict[str, float]:
        """Return a consistent copy of the share counters."""
        with self.lock:
            return {
                "shares_accepted": self.shares_accepted,
                "shares_rejected": self.shares_rejected,
                "best_diff": self.best_diff,
                "best_session_diff": self.best_session_diff,
                "pool_difficulty": self.pool_difficulty,
            }

    def is_online(self) -> bool:
        """False while the emulated firmware is restarting."""
        return self._online.is_set()

    def wait_online(self, timeout_s: float | None = None) -> bool:
        """Block until online (or ``timeout_s`` [s]); returns :meth:`is_online`."""
        return self._online.wait(timeout_s)

    def _set_online(self, online: bool) -> None:
        if online:
            self._online.set()
        else:
            self._online.clear()
            with self.lock:
                self.best_session_diff = 0.0


def _suffix(d: float) -> str:
    """Format a difficulty the way AxeOS shows ``bestDiff`` (``"1.23M"``, ``"456k"``)."""
    if not math.isfinite(d) or d <= 0:
        return "0"
    for exp, unit in ((18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if d >= 10.0**exp:
            return f"{d / 10.0**exp:.3g}{unit}"
    return f"{d:.3g}"


def _finite_or_none(x: Any) -> Any:
    """JSON has no NaN: map non-finite floats to null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: AxeOSEmulator


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10.0  # per-connection socket timeout [s]
    server_version = "asiclab-axeos-emulator"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self.server.emulator._handle(self, "GET")

    def do_PATCH(self) -> None:
        self.server.emulator._handle(self, "PATCH")

    def do_POST(self) -> None:
        self.server.emulator._handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.emulator._handle(self, "PUT")

    def do_DELETE(self) -> None:
        self.server.emulator._handle(self, "DELETE")

    def send_response(self, code: int, message: str | None = None) -> None:
        # logged before the reply leaves, so a client never sees a reply that is not yet logged
        path = urlsplit(self.path).path.rstrip("/") or "/"
        self.server.emulator.request_log.append((self.command, path, int(code)))
        super().send_response(code, message)

    def send_body(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def send_json(self, status: int, obj: Any) -> None:
        self.send_body(status, json.dumps(obj, allow_nan=False).encode(), "application/json")

    def send_text(self, status: int, text: str) -> None:
        self.send_body(status, text.encode(), "text/plain")


_ROUTES: dict[str, tuple[str, ...]] = {
    "/api/system/info": ("GET",),
    "/api/system/asic": ("GET",),
    "/api/system/statistics": ("GET",),
    "/api/system": ("PATCH",),
    "/api/system/restart": ("POST",),
}


class AxeOSEmulator:
    """A running emulated AxeOS HTTP API over one simulated BM1366 (an LV06 / Bitaxe Ultra).

    Parameters
    ----------
    chip : ChipHandle or ChipModel
        The chip; a bare :class:`~asiclab.devices.simulated.SimulatedChip` is wrapped in a new
        :class:`ChipHandle` (available as :attr:`handle`; give the same handle to the Stratum side).
    host : str
        Address to bind (default loopback only).
    port : int
        TCP port; 0 picks a free one (see :attr:`url`).
    restart_delay_s : float
        How long the emulated firmware stays offline after ``POST /api/system/restart`` [s].
    ignore_settings : bool
        Test option: accept PATCH and restart but never apply ``frequency``/``coreVoltage``.
    require_auth : bool
        Test option: answer every request with 401 (client outside the allowed network).
    fail_next_n_requests : int
        Test option: fail this many upcoming requests (see ``fail_mode``).
    fail_mode : {"drop", "503"}
        How a failed request fails: connection closed without an answer, or HTTP 503.
    temperature_offset_C : float
        Test option: added to the reported chip temperature [degC].
    malformed_json : bool
        Test option: ``GET /api/system/info`` returns truncated JSON.
    input_voltage_mV : float
        Reported supply voltage (``voltage``) [mV]; ``current`` [mA] = power / input voltage.
    device_model : str
        Reported ``deviceModel``.
    hostname : str
        Reported ``hostname``.

    Notes
    -----
    Reported values that the chip model does not provide are stand-ins and documented as such:
    ``vrTemp`` is the chip's ``vr_temperature`` if present, else the chip temperature;
    ``errorPercentage`` is the chip's ``error_percentage`` if present, else 0;
    ``expectedHashrate`` is the chip's ``expected_hashrate`` if present, else
    f [MHz] * 894 / 1000 (``protocols.md``); ``hashRate_1m`` is
    the mean of the hashrates the emulator sampled (at every info/statistics request) over the
    last 60 s; ``responseTime`` is the settable attribute ``response_time_ms``.
    """

    def __init__(
        self,
        chip: ChipHandle | ChipModel,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        restart_delay_s: float = 0.5,
        ignore_settings: bool = False,
        require_auth: bool = False,
        fail_next_n_requests: int = 0,
        fail_mode: str = "drop",
        temperature_offset_C: float = 0.0,
        malformed_json: bool = False,
        input_voltage_mV: float = 5000.0,
        device_model: str = "LV06",
        hostname: str = "asiclab-emu",
    ) -> None:
        self.handle = chip if isinstance(chip, ChipHandle) else ChipHandle(chip)
        if fail_mode not in ("drop", "503"):
            raise AxeOSEmulatorError(f"fail_mode must be 'drop' or '503', got {fail_mode!r}")
        if not (math.isfinite(restart_delay_s) and restart_delay_s >= 0):
            raise AxeOSEmulatorError(f"restart_delay_s must be >= 0, got {restart_delay_s!r}")
        if not (math.isfinite(input_voltage_mV) and input_voltage_mV > 0):
            raise AxeOSEmulatorError(f"input_voltage_mV must be > 0, got {input_voltage_mV!r}")
        self.host = host
        self._port = port
        self.restart_delay_s = float(restart_delay_s)
        self.ignore_settings = ignore_settings
        self.require_auth = require_auth
        self.fail_next_n_requests = int(fail_next_n_requests)
        self.fail_mode = fail_mode
        self.temperature_offset_C = float(temperature_offset_C)
        self.malformed_json = malformed_json
        self.input_voltage_mV = float(input_voltage_mV)
        self.device_model = device_model
        self.response_time_ms = 0.0
        self._lock = threading.Lock()
        self._nvs: dict[str, Any] = {
            "hostname": hostname,
            "stratumURL": "",
            "stratumPort": 3333,
            "stratumUser": "",
        }
        self._pending: dict[str, Any] = {}
        self._boot_mono = time.monotonic()
        self._restarting_until: float | None = None
        self._restart_timer: threading.Timer | None = None
        self.restart_count = 0
        self.n_requests = 0
        #: (method, path, status) of the last 1000 requests; status 0: dropped without answer
        self.request_log: deque[tuple[str, str, int]] = deque(maxlen=1000)
        self._history: deque[tuple[float, float, float, float]] = deque()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> AxeOSEmulator:
        """Bind and serve in a daemon thread. Returns self."""
        if self._server is not None:
            return self
        server = _Server((self.host, self._port), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="AxeOSEmulator",
            daemon=True,
        )
        self._thread.start()
        log.info("AxeOS emulator at %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        with self._lock:
            timer, self._restart_timer = self._restart_timer, None
        if timer is not None:
            timer.cancel()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def __enter__(self) -> AxeOSEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._server is None:
            raise AxeOSEmulatorError("emulator not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL ``http://host:port`` for :class:`~asiclab.devices.axeos.AxeOSClient`."""
        return f"http://{self.host}:{self.port}"

    # ---- state ------------------------------------------------------------------------------
    @property
    def pending_settings(self) -> dict[str, Any]:
        """Settings PATCHed since the last restart (applied at the next restart)."""
        with self._lock:
            return {k: v for k, v in self._pending.items() if k not in _WRITE_ONLY}

    @property
    def restarting(self) -> bool:
        """True while the emulated firmware is rebooting (requests are dropped)."""
        with self._lock:
            return self._restarting_until is not None

    def operating_point(self) -> tuple[float, float]:
        """Return the chip's current ``(frequency [MHz], core voltage set [mV])``."""
        tel = self.handle.telemetry()
        return float(tel["frequency"]), float(tel["voltage_set"])

    def restart(self) -> None:
        """Restart the emulated firmware (as ``POST /api/system/restart`` does)."""
        with self._lock:
            if self._restarting_until is not None:
                return
            self.restart_count += 1
            self._restarting_until = time.monotonic() + self.restart_delay_s
            self.handle._set_online(False)
            if self.restart_delay_s > 0:
                timer = threading.Timer(self.restart_delay_s, self._finish_restart)
                timer.daemon = True
                self._restart_timer = timer
                timer.start()
                return
        self._finish_restart()

    def _finish_restart(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._restart_timer = None
            # frequency/coreVoltage live in the chip (reported from its telemetry), not here
            self._nvs.update(
                {k: v for k, v in pending.items() if k not in _WRITE_ONLY and k not in _OP_KEYS}
            )
            ignore = self.ignore_settings
        if not ignore and ("frequency" in pending or "coreVoltage" in pending):
            f_now, v_now = self.operating_point()
            f = float(pending.get("frequency", f_now))
            v = float(pending.get("coreVoltage", v_now))
            try:
                self.handle.set_operating_point(voltage_mV=v, frequency_MHz=f)
            except Exception:  # chip model refused: boot with the old settings, as firmware would
                log.exception("emulated chip refused %s MHz / %s mV", f, v)
        with self._lock:
            self._boot_mono = time.monotonic()
            self._history.clear()
            self._restarting_until = None
        self.handle._set_online(True)

    # ---- HTTP -------------------------------------------------------------------------------
    def _handle(self, req: _Handler, method: str) -> None:
        path = urlsplit(req.path).path.rstrip("/") or "/"
        with self._lock:
            self.n_requests += 1
            restarting = self._restarting_until is not None
            fail = self.fail_next_n_requests > 0
            if fail:
                self.fail_next_n_requests -= 1
        if restarting or (fail and self.fail_mode == "drop"):
            req.close_connection = True  # the ESP32 is rebooting / unreachable: no answer at all
            self.request_log.append((method, path, 0))
            return
        self._route(req, method, path, fail)  # replies are logged by _Handler.send_response

    def _route(self, req: _Handler, method: str, path: str, fail: bool) -> int:
        if fail:
            req.send_text(HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable")
            return 503
        if self.require_auth:
            req.send_text(HTTPStatus.UNAUTHORIZED, "Unauthorized: client not in allowed network")
            return 401
        if path not in _ROUTES:
            req.send_text(HTTPStatus.NOT_FOUND, f"Not found: {path}")
            return 404
        if method not in _ROUTES[path]:
            req.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
            req.send_header("Allow", ", ".join(_ROUTES[path]))
            req.send_header("Content-Length", "0")
            req.end_headers()
            return 405
        if path == "/api/system/info":
            if self.malformed_json:
                req.send_body(HTTPStatus.OK, b'{"hashRate": 4', "application/json")
            else:
                req.send_json(HTTPStatus.OK, self.info())
            return 200
        if path == "/api/system/asic":
            req.send_json(HTTPStatus.OK, self.asic_info())
            return 200
        if path == "/api/system/statistics":
            req.send_json(HTTPStatus.OK, self.statistics())
            return 200
        if path == "/api/system/restart":
            # go offline before answering, so that a client never races the reboot; with
            # restart_delay_s == 0 the settings are applied before the answer is sent
            self.restart()
            req.send_text(HTTPStatus.OK, "System will restart shortly.")
            return 200
        # PATCH /api/system
        try:
            settings = self._read_settings(req)
        except ValueError as e:
            req.send_text(HTTPStatus.BAD_REQUEST, f"Bad request: {e}")
            return 400
        with self._lock:
            self._pending.update(settings)
        req.send_body(HTTPStatus.OK, b"", "text/plain")
        return 200

    @staticmethod
    def _read_settings(req: _Handler) -> dict[str, Any]:
        length_text = req.headers.get("Content-Length")
        if length_text is None:
            raise ValueError("missing Content-Length")
        try:
            length = int(length_text)
        except ValueError:
            raise ValueError(f"bad Content-Length {length_text!r}") from None
        if not 0 < length <= _MAX_BODY_BYTES:
            raise ValueError(f"body length {length} not in 1..{_MAX_BODY_BYTES}")
        raw = req.rfile.read(length)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"invalid JSON: {e}") from None
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        for key, value in body.items():
            types = _SETTING_TYPES.get(key)
            if types is None:
                continue  # AxeOS accepts more keys than we model; stored as given
            if isinstance(value, bool) or not isinstance(value, types):
                raise ValueError(f"{key} must be {' or '.join(t.__name__ for t in types)}")
            if key in ("frequency", "coreVoltage") and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{key} must be finite and > 0")
        return body

    # ---- replies ----------------------------------------------------------------------------
    def _sample(self) -> tuple[dict[str, Any], float]:
        tel = self.handle.telemetry()
        now = time.monotonic()
        with self._lock:
            self._history.append(
                (now, float(tel["hashrate"]), float(tel["temperature"]), float(tel["power"]))
            )
            while self._history and now - self._history[0][0] > _HISTORY_S:
                self._history.popleft()
            recent = [h[1] for h in self._history if now - h[0] <= 60.0 and math.isfinite(h[1])]
        hashrate_1m = sum(recent) / len(recent) if recent else math.nan
        return tel, hashrate_1m

    def info(self) -> dict[str, Any]:
        """The ``GET /api/system/info`` reply (also usable without HTTP)."""
        tel, hashrate_1m = self._sample()
        stats = self.handle.stats()
        temp = float(tel["temperature"]) + self.temperature_offset_C
        power = float(tel["power"])
        freq = float(tel["frequency"])
        with self._lock:
            nvs = dict(self._nvs)
            uptime = time.monotonic() - self._boot_mono
        info: dict[str, Any] = {
            **{k: v for k, v in nvs.items() if k not in _WRITE_ONLY and k not in _OP_KEYS},
            "emulated": True,
            "source_kind": "emulated",
            "ASICModel": "BM1366",
            "deviceModel": self.device_model,
            "asicCount": 1,
            "smallCoreCount": BM1366_SMALL_CORES,
            "hashRate": float(tel["hashrate"]),
            "hashRate_1m": hashrate_1m,
            "expectedHashrate": float(
                tel.get("expected_hashrate", freq * BM1366_SMALL_CORES / 1000.0)
            ),
            "errorPercentage": float(tel.get("error_percentage", 0.0)),
            "temp": temp,
            "vrTemp": float(tel.get("vr_temperature", tel["temperature"])),
            "power": power,
            "voltage": self.input_voltage_mV,
            "current": power / (self.input_voltage_mV / 1000.0) * 1000.0,
            "frequency": freq,
            "coreVoltage": float(tel["voltage_set"]),
            "coreVoltageActual": float(tel["voltage_measured"]),
            "sharesAccepted": stats["shares_accepted"],
            "sharesRejected": stats["shares_rejected"],
            "bestDiff": _suffix(stats["best_diff"]),
            "bestSessionDiff": _suffix(stats["best_session_diff"]),
            "poolDifficulty": stats["pool_difficulty"],
            "stratumDiff": stats["pool_difficulty"],
            "responseTime": self.response_time_ms,
            "uptimeSeconds": int(uptime),
            "overheat_mode": 0,
            "version": f"asiclab-emulator/{__version__}",
        }
        return {k: _finite_or_none(v) for k, v in info.items()}

    def asic_info(self) -> dict[str, Any]:
        """The ``GET /api/system/asic`` reply (minimal; the option lists are the emulator's)."""
        return {
            "emulated": True,
            "ASICModel": "BM1366",
            "deviceModel": self.device_model,
            "asicCount": 1,
            "defaultFrequency": 485,
            "frequencyOptions": [400, 425, 450, 475, 485, 500, 525, 550, 575],
            "defaultVoltage": 1200,
            "voltageOptions": [1100, 1150, 1200, 1250, 1300],
        }

    def statistics(self) -> dict[str, Any]:
        """The ``GET /api/system/statistics`` reply (minimal): sampled history since boot.

        ``labels`` name the columns of each ``statistics`` row: hashrate [GH/s], chip temperature
        [degC], power [W], timestamp [ms since boot].
        """
        self._sample()
        with self._lock:
            boot = self._boot_mono
            rows = [
                [
                    _finite_or_none(h),
                    _finite_or_none(t + self.temperature_offset_C),
                    _finite_or_none(p),
                    int((ts - boot) * 1000),
                ]
                for ts, h, t, p in self._history
            ]
        return {
            "emulated": True,
            "currentTimestamp": int((time.monotonic() - boot) * 1000),
            "labels": ["hashrate", "asicTemp", "power", "timestamp"],
            "statistics": rows,
        }

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not started"
        return f"AxeOSEmulator({where})"
