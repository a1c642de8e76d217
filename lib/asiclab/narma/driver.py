"""Step driver: map the NARMA input u(t) onto a device, one step of ``step_s`` at a time.

One code path for every source: an :class:`Encoding` turns each ``u[t]`` into a
:class:`StepSetting` (payload, ticket difficulty, PLL frequency or core voltage); a device
applies the settings one step at a time and the run is returned as a **capture dataset**
(:mod:`asiclab.dataset`) with one operating point (``op``) per step, the input ``narma_u``, the
encoded value ``narma_setting`` and the payload ``narma_payload`` on the ``op`` dimension and the
encoding in the attributes, so the analysis can be re-run from the file
(:func:`asiclab.narma.features.step_features` reads only the capture).

Sources (:func:`drive`)
-----------------------
``"sim"`` (default)
    The simulated chip (:class:`asiclab.devices.simulated.SimulatedChip`) in virtual time:
    every encoding runs, at any ``step_s``. The model computes no hashes, so the payload cannot
    reach the nonce stream, exactly as SHA-256 gives a timing reservoir no handle on the
    payload (known truth: payload features carry no information about u).
``"serial"`` / ``"serial-emulated"``
    A BM1366 on a UART, or its pseudo-terminal emulator, through
    :func:`asiclab.capture.live.run_live_capture` (``mode="serial"``): the live layer's
    safety envelope (:class:`asiclab.capture.live.SweepPlan` refuses unsafe steps before
    anything is sent) and its restore-on-exit. Frequency (PLL ramp) and voltage
    (``voltage_setter``; the emulator has one) encodings only.
``"emulated"`` / ``"axeos"``
    Stratum miners mining against the local capture server
    (:class:`asiclab.capture.server.ThreadedCaptureServer`) through
    :func:`asiclab.capture.live.run_live_capture` (:func:`drive_stratum`): ``"emulated"`` is
    the emulated LV06 (:class:`asiclab.devices.emulated_lv06.EmulatedLV06` on loopback, with
    its AxeOS emulator); ``"axeos"`` a real LV06 / Bitaxe whose pool points at the capture
    server (``listen_host`` / ``allow_lan``) and whose AxeOS API is ``miner_url``. The live
    layer's safety envelope, restore-on-exit, journal and Ctrl-C handling apply. Two
    encodings, both Stratum-side, applied per step by
    :meth:`~asiclab.capture.server.StratumCaptureServer.step` (difficulty and a fresh clean
    job in one call):

    * ``payload`` (the paper's): every step's job carries the step's extranonce2-style value
      as its coinbase payload (``OP_RETURN`` in ``coinb2``), so every header hashed in the
      step depends on u;
    * ``difficulty``: every step's job goes out at share difficulty
      ``setting.difficulty * difficulty_scale``. On the emulator the chip model's ticket
      difficulty follows it (``setting.difficulty * emulated_ticket_difficulty``), as a
      real miner's share rate follows the pool difficulty.

    The voltage and frequency are never changed (no PATCH, no restart): the miner runs at
    the set point it has (the emulated chip is put at the encoding's nominal point first) and
    that set point is recorded per step. Frequency and voltage encodings are **refused**
    (:class:`~asiclab.narma.EncodingError`): on AxeOS each change is a PATCH plus a firmware
    restart (seconds without hashing), which a drive must not silently stretch.

Windows and late shares
-----------------------
Every source gives one operating point per step; its window ``[op_t_start_ns, op_t_end_ns)``
is the step, and an event belongs to the step whose window holds its host receipt time. On
the Stratum sources a step's window opens right after its job went out, so a share of the
previous job received after the switch lands in the new step as a stale share
(``valid = False``, ``error_code = 21``); one received before the switch is judged against
its own job and stays in the previous step. The features
(:func:`asiclab.narma.features.step_features`) count only valid events in ``n_valid``, the
timing and core features, and leave stale shares out of ``n_invalid`` (which counts the
device's invalid results: hardware errors, low difficulty).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from asiclab import dataset
from asiclab.narma._errors import EncodingError, NarmaInputError

__all__ = [
    "ENCODINGS",
    "SOURCES",
    "Encoding",
    "StepSetting",
    "drive",
    "drive_serial",
    "drive_simulated",
    "drive_stratum",
    "payload_extranonce2",
]

ENCODINGS = ("payload", "difficulty", "frequency", "voltage")
SOURCES = ("sim", "serial", "serial-emulated", "axeos", "emulated")

#: Encodings each source can apply at the step rate.
CAPABILITIES: dict[str, tuple[str, ...]] = {
    "sim": ENCODINGS,
    "serial": ("frequency", "voltage"),
    "serial-emulated": ("frequency", "voltage"),
    "axeos": ("payload", "difficulty"),
    "emulated": ("payload", "difficulty"),
}

#: Share difficulty per unit of ``setting.difficulty`` on the Stratum sources [1].
STRATUM_DIFFICULTY_SCALE = {"emulated": 2.0**-20, "axeos": 256.0}

_REFUSALS = {
    "payload": "the UART driver's synthetic jobs carry no experiment payload (use a Stratum "
               "source: 'emulated' or 'axeos')",
    "difficulty": "the UART driver's ticket difficulty is fixed for the whole run (use a "
                  "Stratum source: 'emulated' or 'axeos')",
    "frequency": "an AxeOS frequency change is a PATCH plus a firmware restart (seconds "
                 "without hashing)",
    "voltage": "an AxeOS voltage change is a PATCH plus a firmware restart; over a bare UART "
               "the core voltage needs a voltage_setter",
}


def payload_extranonce2(u: float, u_low: float = 0.0, u_high: float = 0.5) -> str:
    """The paper's encoding: u quantised to 32 bits, as the 8-hex-digit extranonce2 [hex]."""
    q = (min(max(u, u_low), u_high) - u_low) / (u_high - u_low)
    return f"{round(q * 0xFFFFFFFF):08x}"


@dataclass(frozen=True)
class StepSetting:
    """What the device is set to during one step."""

    voltage_mV: float
    frequency_MHz: float
    difficulty: float
    payload: str
    value: float  # the encoded quantity in its own unit (mV, MHz, difficulty or u)


@dataclass(frozen=True)
class Encoding:
    """Map u in ``[u_low, u_high]`` onto one device setting; the others stay nominal.

    Parameters
    ----------
    name : {"payload", "difficulty", "frequency", "voltage"}
        Which setting carries u.
    frequency_MHz : (float, float)
        Frequency range [MHz] of the ``frequency`` encoding (u_low -> first value).
    voltage_mV : (float, float)
        Core-voltage range [mV] of the ``voltage`` encoding.
    difficulty : (float, float)
        Ticket-difficulty range [1] of the ``difficulty`` encoding (log-linear in u; higher u
        -> lower difficulty -> more events).
    nominal_voltage_mV, nominal_frequency_MHz, nominal_difficulty : float
        Settings held fixed [mV, MHz, 1].
    u_low, u_high : float
        Input range [1].
    """

    name: str
    frequency_MHz: tuple[float, float] = (400.0, 575.0)
    voltage_mV: tuple[float, float] = (1120.0, 1250.0)
    difficulty: tuple[float, float] = (4.0, 0.5)
    nominal_voltage_mV: float = 1200.0
    nominal_frequency_MHz: float = 485.0
    nominal_difficulty: float = 1.0
    u_low: float = 0.0
    u_high: float = 0.5

    def __post_init__(self) -> None:
        if self.name not in ENCODINGS:
            raise EncodingError(f"unknown encoding {self.name!r}; choose one of {ENCODINGS}")
        for key in ("frequency_MHz", "voltage_mV", "difficulty"):
            lo_hi = tuple(float(v) for v in getattr(self, key))
            if len(lo_hi) != 2 or not all(math.isfinite(v) and v > 0 for v in lo_hi):
                raise EncodingError(f"{key} must be two positive numbers, got {lo_hi!r}")
            object.__setattr__(self, key, lo_hi)
        if not self.u_high > self.u_low:
            raise EncodingError("u_high must exceed u_low")

    def setting(self, u: float) -> StepSetting:
        """The device setting of one input value."""
        q = (min(max(float(u), self.u_low), self.u_high) - self.u_low) / (self.u_high
                                                                          - self.u_low)
        v, f, d = self.nominal_voltage_mV, self.nominal_frequency_MHz, self.nominal_difficulty
        payload = payload_extranonce2(self.u_low, self.u_low, self.u_high)
        if self.name == "payload":
            payload, value = payload_extranonce2(u, self.u_low, self.u_high), float(u)
        elif self.name == "frequency":
            f = self.frequency_MHz[0] + q * (self.frequency_MHz[1] - self.frequency_MHz[0])
            value = f
        elif self.name == "voltage":
            v = self.voltage_mV[0] + q * (self.voltage_mV[1] - self.voltage_mV[0])
            value = v
        else:
            lo, hi = np.log(self.difficulty[0]), np.log(self.difficulty[1])
            d = float(np.exp(lo + q * (hi - lo)))
            value = d
        return StepSetting(v, f, d, payload, float(value))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return asdict(self)


def _check_u(u: Any) -> np.ndarray:
    arr = np.asarray(u, dtype=np.float64).ravel()
    if arr.size < 2 or not np.all(np.isfinite(arr)):
        raise NarmaInputError("the input sequence needs >= 2 finite values")
    return arr


def _narma_vars(ds: xr.Dataset, u: np.ndarray, settings: Sequence[StepSetting]) -> xr.Dataset:
    return ds.assign(
        narma_u=("op", u, {"units": "1", "long_name": "NARMA input u(t) driven at this step"}),
        narma_setting=("op", np.array([s.value for s in settings]),
                       {"units": "see attribute narma_setting_unit",
                        "long_name": "value of the encoded setting at this step"}),
        narma_payload=("op", np.array([s.payload for s in settings], dtype=object),
                       {"units": "1", "long_name": "extranonce2 (hex) of this step's jobs"}),
        narma_difficulty=("op", np.array([s.difficulty for s in settings]),
                          {"units": "1", "long_name": "ticket difficulty at this step"}),
    )


_SETTING_UNITS = {"payload": "1 (u)", "difficulty": "1 (ticket difficulty)",
                  "frequency": "MHz", "voltage": "mV"}


def drive_simulated(u: Any, encoding: Encoding, *, step_s: float = 1.0, seed: int = 0,
                    telemetry_interval_s: float | None = None,
                    initial_temperature_C: float | None = None,
                    prehistory: Any = None, progress: bool = False) -> xr.Dataset:
    """Drive the simulated chip with ``u``, one step of ``step_s`` virtual seconds each.

    Parameters
    ----------
    u : array-like
        Input sequence [1].
    encoding : Encoding
        How u reaches the chip.
    step_s : float
        Step length [s] (virtual time).
    seed : int
        Chip seed (identity and noise streams).
    telemetry_interval_s : float, optional
        Telemetry sampling interval [s] (default: once per step, at its end).
    initial_temperature_C : float, optional
        Die temperature at start [degC] (default: steady state at the nominal point).
    prehistory : array-like, optional
        Inputs driven before ``u`` and not recorded (a different history for the consistency
        test).
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    xarray.Dataset
        Capture (``source_kind = "simulated"``) with one op per step.
    """
    import dataclasses

    from tqdm.auto import tqdm

    from asiclab.devices.simulated import ChipModelParams, SimulatedChip

    u = _check_u(u)
    if not (math.isfinite(step_s) and step_s > 0):
        raise NarmaInputError(f"step_s must be > 0, got {step_s!r}")
    # the AxeOS-like hashrate reading is not a feature: a window of one step keeps it cheap
    params = ChipModelParams(hashrate_window_s=float(step_s))
    if initial_temperature_C is not None:
        params = dataclasses.replace(params, initial_temperature_C=float(initial_temperature_C))
    chip = SimulatedChip(int(seed), params, ticket_difficulty=encoding.nominal_difficulty)
    chip.set_operating_point(encoding.nominal_voltage_mV, encoding.nominal_frequency_MHz)
    step_ns = round(step_s * 1e9)
    tel_ns = step_ns if telemetry_interval_s is None else round(telemetry_interval_s * 1e9)

    def apply(s: StepSetting) -> None:
        chip.set_operating_point(s.voltage_mV, s.frequency_MHz)
        chip.set_ticket_difficulty(s.difficulty)

    for x in (_check_u(prehistory) if prehistory is not None else ()):
        apply(encoding.setting(x))
        # read telemetry as in the recorded steps, so the sensor-noise stream moves on too and
        # the recorded part shares no noise realisation with a drive without this history
        chip.advance_with_telemetry_ns(step_ns, np.array([chip.now_ns + step_ns], np.int64))
    t0 = chip.now_ns
    settings = [encoding.setting(x) for x in u]
    ev_parts, ev_ops, tel_parts = [], [], []
    starts = np.empty(u.size, np.int64)
    ends = np.empty(u.size, np.int64)
    next_tel = chip.now_ns + tel_ns
    for k, s in enumerate(tqdm(settings, disable=not progress, desc="steps", unit="step",
                                    mininterval=1.0)):
        apply(s)
        starts[k] = chip.now_ns
        end = chip.now_ns + step_ns
        times = np.arange(next_tel, end + 1, tel_ns, dtype=np.int64)
        ev, tel = chip.advance_with_telemetry_ns(step_ns, times)
        next_tel = int(times[-1]) + tel_ns if times.size else next_tel
        ends[k] = chip.now_ns
        ev_parts.append(ev)
        ev_ops.append(np.full(len(ev), k, np.int32))
        if tel is not None and len(tel["t_host_ns"]):
            tel_parts.append((k, tel))
    from asiclab.devices.simulated import ChipEvents

    allev = ChipEvents.concatenate(ev_parts)
    n_ev = len(allev)
    events = {"t_host_ns": allev.t_ns, "t_mono_ns": allev.t_ns - t0, "nonce": allev.nonce,
              "core_id": allev.core_id, "version_bits": np.zeros(n_ev, np.int64),
              "difficulty": allev.difficulty,
              "pool_difficulty": np.repeat([s.difficulty for s in settings],
                                           [len(e) for e in ev_parts]),
              "valid": allev.valid, "error_code": allev.error_code,
              "device_index": np.zeros(n_ev, np.int32),
              "op_index": np.concatenate(ev_ops) if ev_ops else np.zeros(0, np.int32)}
    telemetry: dict[str, Any] = {}
    if tel_parts:
        cat = {key: np.concatenate([np.asarray(t[key]) for _, t in tel_parts])
               for key in tel_parts[0][1]}
        telemetry = {"tel_t_host_ns": cat["t_host_ns"], "tel_t_mono_ns": cat["t_host_ns"] - t0,
                     "tel_device_index": np.zeros(cat["t_host_ns"].size, np.int32),
                     "tel_op_index": np.concatenate([np.full(len(t["t_host_ns"]), k, np.int32)
                                                     for k, t in tel_parts])}
        for name in ("temperature", "power", "voltage_set", "voltage_measured", "frequency",
                     "hashrate"):
            if name in cat:
                telemetry[name] = np.asarray(cat[name], np.float64)
    ops = {"op_device_index": np.zeros(u.size, np.int32),
           "op_voltage_set": np.array([s.voltage_mV for s in settings]),
           "op_frequency_set": np.array([s.frequency_MHz for s in settings]),
           "op_t_start_ns": starts, "op_t_end_ns": ends}
    parameters = {"generator": "asiclab.narma.driver.drive_simulated", "source": "sim",
                  "encoding": encoding.to_dict(), "step_s": step_s, "seed": int(seed),
                  "initial_temperature_C": initial_temperature_C,
                  "n_prehistory": 0 if prehistory is None else int(np.size(prehistory)),
                  "model": params.to_dict(), "chip": chip.describe()}
    attrs = {"source_kind": "simulated", "device_model": params.model,
             "firmware": "asiclab simulated chip (virtual time)",
             "parameters": json.dumps(parameters, sort_keys=True, default=float),
             "seed": int(seed), "title": f"NARMA-10 drive, {encoding.name} encoding, "
             f"step {step_s:g} s (simulated)", "source_file": "none",
             "narma_encoding": encoding.name, "narma_step_s": float(step_s),
             "narma_setting_unit": _SETTING_UNITS[encoding.name]}
    ds = dataset.build_capture(events=events, telemetry=telemetry or None, ops=ops,
                               devices={"device_name": [f"sim-{params.model}-seed{seed}"],
                                        "device_model": [params.model],
                                        "device_source_kind": ["simulated"]},
                               attrs=attrs)
    return _narma_vars(ds, u, settings)


def check_encoding(source: str, encoding: Encoding, *, voltage_setter: Any = None) -> None:
    """Refuse (``EncodingError``) an encoding the source cannot apply at the step rate."""
    if source not in SOURCES:
        raise EncodingError(f"unknown source {source!r}; choose one of {SOURCES}")
    ok = encoding.name in CAPABILITIES[source]
    if source == "serial" and encoding.name == "voltage" and voltage_setter is None:
        ok = False
    if not ok:
        raise EncodingError(
            f"source {source!r} cannot apply the {encoding.name!r} encoding at the step rate: "
            f"{_REFUSALS[encoding.name]}. Refused (a slower drive would change the task). "
            f"Encodings this source can run: {CAPABILITIES[source] or 'none'}")


def drive_serial(u: Any, encoding: Encoding, *, step_s: float, serial_port: str = "emulated",
                 voltage_setter: Callable[[float], Any] | None = None, time_scale: float = 1.0,
                 seed: int = 0, journal_path: str | Path | None = None,
                 envelope: Any = None, progress: bool = False, **live_kw: Any) -> xr.Dataset:
    """Drive a BM1366 on a UART (or its pty emulator) through the live capture layer.

    Each step is one :class:`asiclab.capture.live.SweepPoint` (no settle, dwell ``step_s`` host
    seconds), so the plan is checked against the safety envelope before the first byte is
    sent, and the chip's settings are restored on exit, on error and on Ctrl-C
    (:func:`asiclab.capture.live.run_live_capture`).

    Parameters
    ----------
    u : array-like
        Input sequence [1].
    encoding : Encoding
        ``frequency`` or ``voltage`` (others are refused).
    step_s : float
        Step length [s] (host clock; the emulator's chip lives ``time_scale`` times faster).
    serial_port : str
        pyserial URL or device, or ``"emulated"``.
    voltage_setter : callable, optional
        ``voltage_setter(mV)`` for the voltage encoding on real hardware.
    time_scale : float
        Emulator speed-up [1].
    seed : int
        Emulator / job seed.
    journal_path : path-like, optional
        Journal file (default: a fresh temporary file).
    envelope : SafetyEnvelope, optional
        Safety limits (default: the live layer's BM1366 lab limits).
    **live_kw
        Passed to :func:`asiclab.capture.live.run_live_capture`.
    """
    from asiclab.capture import live

    source = "serial-emulated" if serial_port == "emulated" else "serial"
    check_encoding(source, encoding, voltage_setter=voltage_setter if source == "serial"
                   else True)
    u = _check_u(u)
    settings = [encoding.setting(x) for x in u]
    pts = tuple(live.SweepPoint(s.voltage_mV, s.frequency_MHz, 0.0, step_s) for s in settings)
    plan = live.SweepPlan(pts, **({"envelope": envelope} if envelope is not None else {}))
    if journal_path is None:
        journal_path = Path(tempfile.mkdtemp(prefix="narma-")) / "narma.journal"
    try:
        ds = live.run_live_capture(
            "serial", plan, journal_path=journal_path, serial_port=serial_port,
            voltage_setter=voltage_setter, time_scale=time_scale, seed=seed, progress=progress,
            title=f"NARMA-10 drive, {encoding.name} encoding, step {step_s:g} s ({source})",
            parameters={"generator": "asiclab.narma.driver.drive_serial", "source": source,
                        "encoding": encoding.to_dict(), "step_s": step_s},
            **live_kw)
    finally:
        # the live layer's serial mode closes the UART but has no voltage to restore: put an
        # external supply back to the nominal voltage on exit, on error and on Ctrl-C
        if voltage_setter is not None:
            voltage_setter(encoding.nominal_voltage_mV)
    if ds.sizes.get("op", 0) != u.size:
        raise EncodingError(f"the live capture has {ds.sizes.get('op', 0)} steps, expected "
                            f"{u.size} (interrupted?)")
    ds = _narma_vars(ds, u, settings)
    ds.attrs.update(narma_encoding=encoding.name, narma_step_s=float(step_s),
                    narma_setting_unit=_SETTING_UNITS[encoding.name],
                    narma_voltage_restored_mV=(encoding.nominal_voltage_mV
                                               if voltage_setter is not None else "none"))
    return ds


def _bm1366_cores(ds: xr.Dataset) -> xr.Dataset:
    """Fill the core id of BM1366 Stratum shares from their nonce.

    The capture server does not know which core found a share (``core_id = -1``), but a
    BM1366 writes it into the nonce: with ``nonce_h`` the big-endian value of the header's
    nonce bytes, ``core = (nonce_h >> 25) & 0x7F`` (``protocols.md``;
    :func:`asiclab.devices.emulated_lv06.core_of_nonce`), so the per-core features of
    :func:`asiclab.narma.features.step_features` see the cores. Only events of devices whose
    model is ``BM1366`` and whose core id is unknown are filled; the attribute
    ``core_id_note`` says so.
    """
    if ds.sizes.get("event", 0) == 0 or "device_model" not in ds:
        return ds
    models = np.asarray(ds["device_model"].values).astype(str)
    core = np.asarray(ds["core_id"].values).copy()
    nonce = np.asarray(ds["nonce"].values, np.int64)
    fill = np.isin(np.asarray(ds["device_index"].values), np.flatnonzero(models == "BM1366")) \
        & (core < 0) & (nonce >= 0) & (nonce <= 0xFFFFFFFF)
    if not fill.any():
        return ds
    # the submitted value is the u32 of the big-endian hex; the header holds it little-endian
    core[fill] = (nonce[fill].astype(np.uint32).byteswap() >> 25) & 0x7F
    ds = ds.assign(core_id=("event", core.astype(ds["core_id"].dtype), ds["core_id"].attrs))
    ds.attrs["core_id_note"] = ("core_id of BM1366 shares derived from the nonce: "
                                "(byteswap32(nonce) >> 25) & 0x7F")
    return ds


#: Largest share difficulty the emulated LV06 can search for at the step rate [1].
_EMULATOR_MAX_DIFFICULTY = 2.0**-12


def drive_stratum(u: Any, encoding: Encoding, *, source: str = "emulated", step_s: float = 1.0,
                  seed: int = 0, miner_url: str = "", listen_host: str = "127.0.0.1",
                  listen_port: int = 3333, allow_lan: bool = False, worker: str = "",
                  difficulty_scale: float | None = None,
                  emulated_ticket_difficulty: float = 16.0, time_scale: float = 1.0,
                  settle_s: float = 0.0, journal_path: str | Path | None = None,
                  envelope: Any = None, progress: bool = False, **live_kw: Any) -> xr.Dataset:
    """Drive a Stratum miner (emulated LV06 or a real LV06 / Bitaxe) through the capture server.

    Each step is one :class:`asiclab.capture.live.SweepPoint` carrying the step's job payload
    and share difficulty (a *Stratum step*: no voltage / frequency change, no restart); the
    capture server switches every miner to the step's job and difficulty in one call at the
    step start, and the step's window is ``[start, start + step_s)`` by receipt time (see
    the module docstring for late shares). The plan is checked against the safety envelope
    before anything starts, and the live layer restores the miner and closes the journal on
    exit, on error and on Ctrl-C.

    Parameters
    ----------
    u : array-like
        Input sequence [1].
    encoding : Encoding
        ``payload`` or ``difficulty`` (others are refused).
    source : {"emulated", "axeos"}
        The emulated LV06 on loopback, or a real AxeOS miner.
    step_s : float
        Step length [s] (host clock).
    seed : int
        Seed of the emulated chip and of the capture server's jobs.
    miner_url : str
        ``axeos``: the miner's AxeOS address (``http://192.168.1.50``); its pool must point
        at ``listen_host:listen_port``.
    listen_host, listen_port, allow_lan : str, int, bool
        ``axeos``: address of the capture server (a LAN address needs ``allow_lan``).
    worker : str
        ``axeos``: the miner's Stratum worker name (default: its AxeOS ``stratumUser``).
    difficulty_scale : float, optional
        Share difficulty sent per unit of ``setting.difficulty`` [1] (default
        :data:`STRATUM_DIFFICULTY_SCALE`: ``2**-20`` emulated, 256 on hardware).
    emulated_ticket_difficulty : float
        ``emulated``: the chip model's ticket difficulty per unit of ``setting.difficulty``
        [1] (16: about 7 shares per second at 485 MHz).
    time_scale : float
        ``emulated``: chip seconds per host second [1].
    settle_s : float
        Time after each switch that belongs to no step (``op_index = -1``) [s]; 0 keeps the
        steps contiguous.
    journal_path : path-like, optional
        Journal file (default: a fresh temporary file).
    envelope : SafetyEnvelope, optional
        Safety limits (default: the live layer's BM1366 lab limits); the miner's set point
        must lie inside.
    progress : bool
        Show the live layer's progress bar.
    **live_kw
        Passed to :func:`asiclab.capture.live.run_live_capture`.

    Returns
    -------
    xarray.Dataset
        Capture (``source_kind`` ``emulated`` or ``hardware``, from the miner) with one op per
        step, the NARMA variables of :func:`drive_simulated` plus ``narma_job_id`` (the job
        each step issued; the journal's job records map it to its payload).

    Raises
    ------
    EncodingError
        The encoding or source is refused, the difficulty range is beyond the emulator, or
        the run ended before its last step (the journal keeps what was captured).
    """
    from asiclab.capture import live
    from asiclab.capture.journal import read_journal

    if source not in ("emulated", "axeos"):
        raise EncodingError(f"drive_stratum runs the Stratum sources 'emulated' and 'axeos', "
                            f"not {source!r}")
    check_encoding(source, encoding)
    u = _check_u(u)
    if not (math.isfinite(step_s) and step_s > 0):
        raise NarmaInputError(f"step_s must be > 0, got {step_s!r}")
    scale = STRATUM_DIFFICULTY_SCALE[source] if difficulty_scale is None \
        else float(difficulty_scale)
    if not (math.isfinite(scale) and scale > 0):
        raise NarmaInputError(f"difficulty_scale must be > 0, got {difficulty_scale!r}")
    settings = [encoding.setting(x) for x in u]
    pool = [s.difficulty * scale for s in settings]
    kw: dict[str, Any] = {}
    if source == "emulated":
        if max(pool) > _EMULATOR_MAX_DIFFICULTY:
            raise EncodingError(
                f"share difficulty up to {max(pool):g} is beyond the emulated LV06's CPU "
                f"search ({_EMULATOR_MAX_DIFFICULTY:g}); lower difficulty_scale")
        from asiclab.devices.simulated import SimulatedChip

        chip = SimulatedChip(int(seed), ticket_difficulty=encoding.nominal_difficulty
                             * emulated_ticket_difficulty)
        v, f = encoding.nominal_voltage_mV, encoding.nominal_frequency_MHz
        chip.set_operating_point(v, f)
        kw = {"chip": chip, "time_scale": time_scale,
              "emulator_options": {"ticket_per_pool": emulated_ticket_difficulty / scale}}
        mode = "emulated"
    else:
        if not miner_url:
            raise EncodingError("source 'axeos' needs miner_url (the miner's AxeOS address)")
        from asiclab.devices.axeos import AxeOSClient

        op = AxeOSClient(miner_url).operating_point()  # kept: no PATCH, no restart
        v, f = op.core_voltage_mV, op.frequency_MHz
        kw = {"miner_url": miner_url, "listen_host": listen_host, "listen_port": listen_port,
              "allow_lan": allow_lan, "worker": worker, "pool_difficulty": pool[0]}
        mode = "stratum+axeos"
    pts = tuple(live.SweepPoint(v, f, settle_s, step_s,
                                payload=bytes.fromhex(s.payload), difficulty=d)
                for s, d in zip(settings, pool, strict=True))
    plan = live.SweepPlan(pts, **({"envelope": envelope} if envelope is not None else {}))
    if journal_path is None:
        journal_path = Path(tempfile.mkdtemp(prefix="narma-")) / "narma.journal"
    kw.update(live_kw)
    ds = live.run_live_capture(
        mode, plan, journal_path=journal_path, seed=seed, progress=progress,
        title=f"NARMA-10 drive, {encoding.name} encoding, step {step_s:g} s ({source})",
        parameters={"generator": "asiclab.narma.driver.drive_stratum", "source": source,
                    "encoding": encoding.to_dict(), "step_s": step_s,
                    "difficulty_scale": scale,
                    "emulated_ticket_difficulty": emulated_ticket_difficulty},
        **kw)
    if ds.sizes.get("op", 0) != u.size:
        raise EncodingError(f"the live capture has {ds.sizes.get('op', 0)} steps, expected "
                            f"{u.size} (interrupted?); journal {journal_path}")
    steps = [n["data"] for n in read_journal(journal_path, skip_damaged=True).notes
             if n["kind"] == "step"]
    if len(steps) != u.size:
        raise EncodingError(f"the journal records {len(steps)} job switches for {u.size} "
                            "steps")
    ds = _narma_vars(_bm1366_cores(ds), u, settings)
    ds = ds.assign(narma_job_id=("op", np.array([str(n["job_id"]) for n in steps],
                                                dtype=object),
                                 {"units": "1", "long_name": "id of the job this step issued "
                                  "(its payload: the journal's job records)"}))
    ds.attrs.update(narma_encoding=encoding.name, narma_step_s=float(step_s),
                    narma_setting_unit=_SETTING_UNITS[encoding.name],
                    narma_difficulty_scale=scale,
                    narma_stratum_note=(
                        "share difficulty sent = narma_difficulty * narma_difficulty_scale; "
                        "each step's job carries bytes.fromhex(narma_payload) as its coinbase "
                        "payload; voltage and frequency were not changed; shares of the "
                        "previous job received after a switch are stale (error 21) in the new "
                        "step"))
    return ds


def drive(u: Any, encoding: Encoding | str, *, source: str = "sim", step_s: float = 1.0,
          seed: int = 0, **kw: Any) -> xr.Dataset:
    """Drive a source with ``u`` (see the module docstring); refuses impossible encodings.

    Parameters
    ----------
    u : array-like
        Input sequence [1].
    encoding : Encoding or str
        The encoding (a name uses the default ranges).
    source : {"sim", "serial", "serial-emulated", "axeos", "emulated"}
        Where to run it.
    step_s : float
        Step length [s].
    seed : int
        Chip / emulator seed.
    **kw
        Passed to :func:`drive_simulated`, :func:`drive_serial` or :func:`drive_stratum`.
    """
    enc = Encoding(encoding) if isinstance(encoding, str) else encoding
    check_encoding(source, enc, voltage_setter=kw.get("voltage_setter"))
    if source == "sim":
        return drive_simulated(u, enc, step_s=step_s, seed=seed, **kw)
    if source in ("emulated", "axeos"):
        return drive_stratum(u, enc, source=source, step_s=step_s, seed=seed, **kw)
    port = "emulated" if source == "serial-emulated" else kw.pop("serial_port", "")
    return drive_serial(u, enc, step_s=step_s, serial_port=port, seed=seed, **kw)
