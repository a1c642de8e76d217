"""Tests of the emulated AxeOS HTTP API, over real loopback HTTP with plain urllib.

The emulator is exercised here with the standard library only (not with
``asiclab.devices.axeos``), so a shared mistake in client and server cannot hide.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from asiclab.devices.emulated_axeos import (
    BM1366_SMALL_CORES,
    AxeOSEmulator,
    AxeOSEmulatorError,
    ChipHandle,
    _suffix,
)
from helpers import wait_until

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class FakeChip:
    """Deterministic stand-in with the SimulatedChip API; flags concurrent entry."""

    def __init__(self, voltage_mV: float = 1200.0, frequency_MHz: float = 485.0) -> None:
        self.v = voltage_mV
        self.f = frequency_MHz
        self.t = 0.0
        self.inside = 0
        self.overlap = False
        self.refuse = False

    def _enter(self) -> None:
        self.inside += 1
        if self.inside > 1:
            self.overlap = True
        time.sleep(0.0005)  # widen the window in which an unlocked caller would overlap
        self.inside -= 1

    def set_operating_point(self, voltage_mV: float, frequency_MHz: float) -> None:
        self._enter()
        if self.refuse:
            raise ValueError("refused")
        self.v, self.f = voltage_mV, frequency_MHz

    def advance(self, dt_s: float) -> None:
        self._enter()
        self.t += dt_s

    def telemetry(self) -> dict[str, float]:
        self._enter()
        return {
            "temperature": 40.0 + 0.05 * (self.f - 485.0) + 0.1 * (self.v - 1200.0),
            "power": 0.03 * self.f * (self.v / 1000.0) ** 2,
            "voltage_set": self.v,
            "voltage_measured": self.v - 7.0,
            "frequency": self.f,
            "hashrate": self.f * 0.9,
        }


def call(
    emu: AxeOSEmulator, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes]:
    """One HTTP request; returns (status, body); HTTP errors are returned, not raised."""
    req = urllib.request.Request(emu.url + path, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()


def get_json(emu: AxeOSEmulator, path: str) -> Any:
    status, body = call(emu, "GET", path)
    assert status == 200
    return json.loads(body)


@pytest.fixture
def chip() -> FakeChip:
    return FakeChip()


@pytest.fixture
def emu(chip: FakeChip):
    with AxeOSEmulator(chip, restart_delay_s=0.0) as e:
        yield e


# ---- info ----------------------------------------------------------------------------------
def test_info_fields_follow_chip_telemetry(emu: AxeOSEmulator, chip: FakeChip) -> None:
    info = get_json(emu, "/api/system/info")
    tel = chip.telemetry()
    required = (
        "hashRate hashRate_1m expectedHashrate errorPercentage temp vrTemp power voltage current "
        "frequency coreVoltage coreVoltageActual sharesAccepted sharesRejected bestDiff "
        "poolDifficulty responseTime ASICModel smallCoreCount uptimeSeconds"
    ).split()
    missing = [k for k in required if k not in info]
    assert not missing
    assert info["emulated"] is True and info["source_kind"] == "emulated"
    assert info["ASICModel"] == "BM1366" and info["smallCoreCount"] == 894
    assert info["temp"] == pytest.approx(tel["temperature"])
    assert info["power"] == pytest.approx(tel["power"])
    assert info["frequency"] == pytest.approx(tel["frequency"])
    assert info["coreVoltage"] == pytest.approx(tel["voltage_set"])
    assert info["coreVoltageActual"] == pytest.approx(tel["voltage_measured"])
    assert info["hashRate"] == pytest.approx(tel["hashrate"])
    # protocols.md: expected hashrate [GH/s] = f [MHz] * small cores / 1000
    assert info["expectedHashrate"] == pytest.approx(chip.f * BM1366_SMALL_CORES / 1000)
    # current [mA] = power [W] / input voltage [V]
    assert info["current"] == pytest.approx(tel["power"] / (info["voltage"] / 1000) * 1000)


def test_temperature_offset_and_share_counters(emu: AxeOSEmulator, chip: FakeChip) -> None:
    emu.temperature_offset_C = 33.0
    emu.handle.record_share(True, 1500.0)
    emu.handle.record_share(True, 2.5e6)
    emu.handle.record_share(False, 10.0)
    emu.handle.set_pool_difficulty(256.0)
    info = get_json(emu, "/api/system/info")
    assert info["temp"] == pytest.approx(chip.telemetry()["temperature"] + 33.0)
    assert info["sharesAccepted"] == 2 and info["sharesRejected"] == 1
    assert info["bestDiff"] == _suffix(2.5e6) == "2.5M"
    assert info["poolDifficulty"] == 256.0


def test_suffix_formatting() -> None:
    assert _suffix(1234.0) == "1.23k"
    assert _suffix(4.29e9) == "4.29G"
    assert _suffix(12.0) == "12"
    assert _suffix(math.nan) == "0"


def test_asic_and_statistics(emu: AxeOSEmulator) -> None:
    asic = get_json(emu, "/api/system/asic")
    assert asic["ASICModel"] == "BM1366" and asic["defaultFrequency"] in asic["frequencyOptions"]
    get_json(emu, "/api/system/info")
    stats = get_json(emu, "/api/system/statistics")
    assert stats["labels"][0] == "hashrate"
    assert len(stats["statistics"]) >= 2  # the info request and this one were sampled
    assert all(len(row) == len(stats["labels"]) for row in stats["statistics"])


# ---- settings ------------------------------------------------------------------------------
def test_patch_is_pending_until_restart(emu: AxeOSEmulator, chip: FakeChip) -> None:
    status, _ = call(emu, "PATCH", "/api/system", b'{"frequency": 550, "coreVoltage": 1250}')
    assert status == 200
    assert emu.pending_settings == {"frequency": 550, "coreVoltage": 1250}
    assert get_json(emu, "/api/system/info")["frequency"] == 485.0  # not yet applied
    status, body = call(emu, "POST", "/api/system/restart")
    assert status == 200 and b"restart" in body
    wait_until(lambda: not emu.restarting)
    info = get_json(emu, "/api/system/info")
    assert (info["frequency"], info["coreVoltage"]) == (550.0, 1250.0)
    assert (chip.f, chip.v) == (550.0, 1250.0)
    assert emu.pending_settings == {} and emu.restart_count == 1


def test_restart_goes_offline_then_applies(chip: FakeChip) -> None:
    delay_s = 0.5
    with AxeOSEmulator(chip, restart_delay_s=delay_s) as emu:
        call(emu, "PATCH", "/api/system", b'{"frequency": 500}')
        t0 = time.monotonic()
        call(emu, "POST", "/api/system/restart")
        if time.monotonic() - t0 < 0.8 * delay_s:  # (skip on a machine too slow to look inside)
            assert emu.restarting and not emu.handle.is_online()
            assert chip.f == 485.0  # not applied during the reboot
            with pytest.raises((urllib.error.URLError, http.client.HTTPException, OSError)):
                call(emu, "GET", "/api/system/info")  # a rebooting miner does not answer
        assert emu.handle.wait_online(5.0)
        wait_until(lambda: not emu.restarting)
        assert get_json(emu, "/api/system/info")["frequency"] == 500.0
        assert chip.v == 1200.0  # untouched key keeps its value


def test_ignore_settings(chip: FakeChip) -> None:
    with AxeOSEmulator(chip, restart_delay_s=0.0, ignore_settings=True) as emu:
        call(emu, "PATCH", "/api/system", b'{"frequency": 550}')
        call(emu, "POST", "/api/system/restart")
        wait_until(lambda: not emu.restarting)
        assert get_json(emu, "/api/system/info")["frequency"] == 485.0
        assert emu.restart_count == 1


def test_chip_refusing_keeps_old_settings(emu: AxeOSEmulator, chip: FakeChip) -> None:
    chip.refuse = True
    call(emu, "PATCH", "/api/system", b'{"frequency": 550}')
    call(emu, "POST", "/api/system/restart")
    wait_until(lambda: not emu.restarting)
    assert get_json(emu, "/api/system/info")["frequency"] == 485.0


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"frequency": "fast"}',
        b'{"coreVoltage": true}',
        b'{"frequency": -5}',
        b'{"stratumPort": "x"}',
    ],
)
def test_bad_patch_is_400_and_changes_nothing(emu: AxeOSEmulator, body: bytes) -> None:
    status, _ = call(emu, "PATCH", "/api/system", body)
    assert status == 400
    assert emu.pending_settings == {}


def test_unknown_path_and_wrong_method(emu: AxeOSEmulator) -> None:
    assert call(emu, "GET", "/api/nothing")[0] == 404
    assert call(emu, "GET", "/api/system/restart")[0] == 405
    assert call(emu, "POST", "/api/system/info", b"{}")[0] == 405
    assert emu.restart_count == 0


def test_unknown_setting_keys_are_kept(emu: AxeOSEmulator) -> None:
    call(emu, "PATCH", "/api/system", b'{"hostname": "lab-lv06", "stratumPassword": "secret"}')
    assert emu.pending_settings == {"hostname": "lab-lv06"}  # write-only key never shown
    call(emu, "POST", "/api/system/restart")
    wait_until(lambda: not emu.restarting)
    info = get_json(emu, "/api/system/info")
    assert info["hostname"] == "lab-lv06" and "stratumPassword" not in info


# ---- fault injection -----------------------------------------------------------------------
def test_require_auth_gives_401(emu: AxeOSEmulator) -> None:
    emu.require_auth = True
    assert call(emu, "GET", "/api/system/info")[0] == 401
    assert call(emu, "PATCH", "/api/system", b'{"frequency": 550}')[0] == 401
    assert emu.pending_settings == {}


def test_fail_next_requests_drop_then_recover(emu: AxeOSEmulator) -> None:
    emu.fail_next_n_requests = 2
    for _ in range(2):
        with pytest.raises((urllib.error.URLError, http.client.HTTPException, OSError)):
            call(emu, "GET", "/api/system/info")
    assert get_json(emu, "/api/system/info")["ASICModel"] == "BM1366"
    assert [s for _, _, s in emu.request_log] == [0, 0, 200]


def test_fail_mode_503(chip: FakeChip) -> None:
    with AxeOSEmulator(chip, fail_next_n_requests=1, fail_mode="503") as emu:
        assert call(emu, "GET", "/api/system/info")[0] == 503
        assert call(emu, "GET", "/api/system/info")[0] == 200


def test_malformed_json_option(emu: AxeOSEmulator) -> None:
    emu.malformed_json = True
    status, body = call(emu, "GET", "/api/system/info")
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


def test_bad_options_and_binding(chip: FakeChip) -> None:
    with pytest.raises(AxeOSEmulatorError):
        AxeOSEmulator(chip, fail_mode="explode")
    with pytest.raises(AxeOSEmulatorError):
        AxeOSEmulator(chip, restart_delay_s=-1)
    with pytest.raises(AxeOSEmulatorError):
        ChipHandle(object())  # type: ignore[arg-type]
    emu = AxeOSEmulator(chip)
    with pytest.raises(AxeOSEmulatorError):
        _ = emu.url  # not started
    with emu:
        assert emu.url.startswith("http://127.0.0.1:") and emu.port > 0


# ---- chip sharing ---------------------------------------------------------------------------
def test_chip_handle_serialises_stratum_and_http_sides(chip: FakeChip) -> None:
    handle = ChipHandle(chip)
    with AxeOSEmulator(handle, restart_delay_s=0.0) as emu:
        assert emu.handle is handle
        stop = threading.Event()

        def stratum_side() -> None:  # what the emulated LV06's Stratum client does
            while not stop.is_set():
                handle.advance(0.001)

        threads = [threading.Thread(target=stratum_side) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for i in range(15):
                get_json(emu, "/api/system/info")
                call(emu, "PATCH", "/api/system", json.dumps({"frequency": 490 + i}).encode())
                call(emu, "POST", "/api/system/restart")
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert chip.t > 0
        assert not chip.overlap
        assert chip.f == 504.0


def test_with_the_simulated_chip() -> None:
    simulated = pytest.importorskip("asiclab.devices.simulated")
    handle = ChipHandle(simulated.SimulatedChip(1))
    with AxeOSEmulator(handle, restart_delay_s=0.0) as emu:
        handle.advance(1.0)
        info = get_json(emu, "/api/system/info")
        tel = handle.telemetry()
        assert info["frequency"] == pytest.approx(tel["frequency"])
        assert info["coreVoltage"] == pytest.approx(tel["voltage_set"])
        assert info["expectedHashrate"] == pytest.approx(tel["expected_hashrate"])
        call(emu, "PATCH", "/api/system", b'{"frequency": 500, "coreVoltage": 1210}')
        call(emu, "POST", "/api/system/restart")
        wait_until(lambda: not emu.restarting)
        handle.advance(1.0)
        info = get_json(emu, "/api/system/info")
        assert (info["frequency"], info["coreVoltage"]) == (500.0, 1210.0)
        assert math.isfinite(info["temp"]) and math.isfinite(info["power"])
