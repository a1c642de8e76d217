"""Tests of the AxeOS client, poller, safety envelope and sweep guard over real loopback HTTP.

The miner is :class:`asiclab.devices.emulated_axeos.AxeOSEmulator` over a deterministic stand-in
chip (the emulator itself is tested in ``test_emulated_axeos.py``); a few tests use a tiny
stdlib server that sends replies the emulator never would.
"""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from asiclab import AsiclabError
from asiclab.devices.axeos import (
    TELEMETRY_KEYS,
    AxeOSAuthError,
    AxeOSClient,
    AxeOSConnectionError,
    AxeOSHTTPError,
    AxeOSParameterError,
    AxeOSPoller,
    AxeOSProtocolError,
    OperatingPoint,
    OverheatError,
    RestoreError,
    SafetyEnvelope,
    SettingNotAppliedError,
    SweepGuard,
    UnsafeSettingError,
    info_to_telemetry,
    source_kind_of,
)
from asiclab.devices.emulated_axeos import AxeOSEmulator
from helpers import wait_until


class FakeChip:
    """Deterministic stand-in with the SimulatedChip API (temperature rises with f and V)."""

    def __init__(self, voltage_mV: float = 1200.0, frequency_MHz: float = 485.0) -> None:
        self.v = voltage_mV
        self.f = frequency_MHz
        self.history: list[tuple[float, float]] = []

    def set_operating_point(self, voltage_mV: float, frequency_MHz: float) -> None:
        self.v, self.f = voltage_mV, frequency_MHz
        self.history.append((frequency_MHz, voltage_mV))

    def advance(self, dt_s: float) -> None:
        pass

    def telemetry(self) -> dict[str, float]:
        return {
            "temperature": 45.0 + 0.05 * (self.f - 485.0) + 0.1 * (self.v - 1200.0),
            "power": 0.03 * self.f * (self.v / 1000.0) ** 2,
            "voltage_set": self.v,
            "voltage_measured": self.v - 7.0,
            "frequency": self.f,
            "hashrate": self.f * 0.894,
        }


def dead_url() -> str:
    """URL of a loopback port with nothing listening (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def chip() -> FakeChip:
    return FakeChip()


@pytest.fixture
def emu(chip: FakeChip) -> Iterator[AxeOSEmulator]:
    with AxeOSEmulator(chip, restart_delay_s=0.1) as e:
        yield e


@pytest.fixture
def client(emu: AxeOSEmulator) -> AxeOSClient:
    return AxeOSClient(emu.url, timeout_s=2.0, retries=2, backoff_s=0.02, max_backoff_s=0.1)


def fast_set(c: AxeOSClient | SweepGuard, *args: Any, **kw: Any) -> dict[str, Any]:
    if isinstance(c, AxeOSClient):
        kw.setdefault("confirm_interval_s", 0.02)
        kw.setdefault("confirm_timeout_s", 5.0)
    return c.set_operating_point(*args, **kw)


# ---- pure parts ----------------------------------------------------------------------------
def test_info_to_telemetry_maps_fields() -> None:
    info = {
        "temp": 51.5,
        "power": 14.2,
        "coreVoltage": 1200,
        "coreVoltageActual": 1188,
        "frequency": 485,
        "hashRate": 433.6,
        "vrTemp": 60.0,
    }
    row = info_to_telemetry(info, t_host_ns=10, t_mono_ns=20)
    assert tuple(row) == TELEMETRY_KEYS
    assert row == {
        "tel_t_host_ns": 10,
        "tel_t_mono_ns": 20,
        "temperature": 51.5,
        "power": 14.2,
        "voltage_set": 1200.0,
        "voltage_measured": 1188.0,
        "frequency": 485.0,
        "hashrate": 433.6,
    }


def test_info_to_telemetry_missing_and_bad_fields_are_nan() -> None:
    row = info_to_telemetry(
        {"temp": "hot", "power": True, "frequency": 485}, t_host_ns=1, t_mono_ns=2
    )
    assert row["frequency"] == 485.0
    for key in ("temperature", "power", "voltage_set", "voltage_measured", "hashrate"):
        assert math.isnan(row[key]), key


def test_source_kind_of() -> None:
    assert source_kind_of({"emulated": True}) == "emulated"
    assert source_kind_of({"ASICModel": "BM1366"}) == "hardware"
    assert source_kind_of({"emulated": "yes"}) == "hardware"  # only the exact marker counts


def test_envelope_defaults_and_checks() -> None:
    env = SafetyEnvelope()
    assert env.voltage_mV == (1000.0, 1300.0)
    assert env.frequency_MHz == (200.0, 650.0)
    assert env.max_temperature_C == 75.0
    env.check_setting(485, 1200)  # BM1366 stock point is inside
    env.check_setting(650, 1300)  # limits are inclusive
    assert len(env.violations(700, 1400)) == 2
    with pytest.raises(UnsafeSettingError, match="1350"):
        env.check_setting(core_voltage_mV=1350)
    with pytest.raises(UnsafeSettingError, match="override"):
        env.check_setting(frequency_MHz=199)
    env.check_setting(frequency_MHz=800, override=True)  # no raise
    assert env.is_overheated(75.1) and not env.is_overheated(75.0)
    assert not env.is_overheated(math.nan)


@pytest.mark.parametrize(
    "kw",
    [
        {"voltage_mV": (1300, 1000)},
        {"frequency_MHz": (0, 500)},
        {"max_temperature_C": math.nan},
        {"frequency_MHz": (100, math.inf)},
    ],
)
def test_envelope_rejects_bad_limits(kw: dict[str, Any]) -> None:
    with pytest.raises(AxeOSParameterError):
        SafetyEnvelope(**kw)


def test_errors_are_asiclab_errors() -> None:
    for cls in (
        AxeOSAuthError,
        AxeOSConnectionError,
        AxeOSProtocolError,
        UnsafeSettingError,
        SettingNotAppliedError,
        OverheatError,
        RestoreError,
        AxeOSParameterError,
    ):
        assert issubclass(cls, AsiclabError)


def test_client_url_and_parameters() -> None:
    assert AxeOSClient("192.168.1.50").base_url == "http://192.168.1.50"
    assert AxeOSClient("http://10.0.0.2:8080/").base_url == "http://10.0.0.2:8080"
    with pytest.raises(AxeOSParameterError):
        AxeOSClient("ftp://miner")
    with pytest.raises(AxeOSParameterError):
        AxeOSClient("http://miner:port")
    with pytest.raises(AxeOSParameterError):
        AxeOSClient("http://miner", timeout_s=0)
    with pytest.raises(AxeOSParameterError):
        AxeOSClient("http://miner", retries=-1)
    assert AxeOSClient("http://m").envelope == SafetyEnvelope()


# ---- reading and polling -------------------------------------------------------------------
def test_info_and_read_telemetry(client: AxeOSClient, chip: FakeChip) -> None:
    info = client.info()
    assert info["ASICModel"] == "BM1366" and source_kind_of(info) == "emulated"
    row = client.read_telemetry()
    tel = chip.telemetry()
    assert set(row) == set(TELEMETRY_KEYS)
    for key in ("temperature", "power", "voltage_set", "voltage_measured", "frequency", "hashrate"):
        assert row[key] == pytest.approx(tel[key]), key
    assert client.operating_point() == OperatingPoint(485.0, 1200.0)


def test_poller_stores_rows_and_calls_back(client: AxeOSClient, chip: FakeChip) -> None:
    seen: list[dict[str, Any]] = []
    with client.poll(0.02, on_row=seen.append) as poller:
        wait_until(lambda: len(poller.rows) >= 5)
        chip.f = 500.0  # the readings follow the device
        wait_until(lambda: any(r["frequency"] == 500.0 for r in poller.rows))
    rows = poller.rows
    assert not poller.running
    assert seen == rows  # every stored reading went to the callback, in order
    assert all(set(r) == set(TELEMETRY_KEYS) for r in rows)
    mono = [r["tel_t_mono_ns"] for r in rows]
    assert mono == sorted(mono) and len(set(mono)) == len(mono)
    assert poller.gaps == [] and poller.n_failures == 0
    cols = poller.telemetry_columns(device_index=3, op_index=7)
    assert cols["tel_t_host_ns"].dtype == np.int64 and cols["temperature"].dtype == np.float64
    assert len(cols["frequency"]) == len(rows)
    assert set(cols["tel_device_index"]) == {3} and set(cols["tel_op_index"]) == {7}
    assert cols["frequency"][-1] == 500.0


def test_poller_callback_error_does_not_stop_it(client: AxeOSClient) -> None:
    def broken(row: dict[str, Any]) -> None:
        raise RuntimeError("journal full")

    with client.poll(0.02, on_row=broken) as poller:
        wait_until(lambda: len(poller.rows) >= 3)
        assert poller.running
    assert len(poller.callback_errors) >= 3
    assert isinstance(poller.callback_errors[0], RuntimeError)


# ---- unreachable, retries, gaps ------------------------------------------------------------
def test_unreachable_retries_with_exponential_backoff() -> None:
    waits: list[float] = []
    c = AxeOSClient(
        dead_url(),
        retries=4,
        backoff_s=0.01,
        backoff_factor=3.0,
        max_backoff_s=0.2,
        sleep=waits.append,
    )
    with pytest.raises(AxeOSConnectionError, match="refused"):
        c.info()
    assert waits == [min(0.01 * 3.0**k, 0.2) for k in range(4)]  # 4 retries = 5 attempts


def test_transient_failures_are_retried(client: AxeOSClient, emu: AxeOSEmulator) -> None:
    emu.fail_next_n_requests = 2  # dropped connections
    assert client.info()["ASICModel"] == "BM1366"
    assert [s for _, _, s in emu.request_log] == [0, 0, 200]


def test_http_503_retried_then_typed_error(chip: FakeChip) -> None:
    with AxeOSEmulator(chip, fail_mode="503", fail_next_n_requests=10) as emu:
        waits: list[float] = []
        c = AxeOSClient(emu.url, retries=2, backoff_s=0.01, sleep=waits.append)
        with pytest.raises(AxeOSHTTPError) as ei:
            c.info()
        assert ei.value.status == 503
        assert len(waits) == 2 and emu.n_requests == 3


def test_poller_records_gap_and_survives(client: AxeOSClient, emu: AxeOSEmulator) -> None:
    gaps_cb: list[tuple[int, int]] = []
    with client.poll(0.02, on_gap=lambda a, b: gaps_cb.append((a, b)), max_backoff_s=0.08) as p:
        wait_until(lambda: len(p.rows) >= 2)
        emu.fail_next_n_requests = 4
        wait_until(lambda: p.n_failures >= 4)
        wait_until(lambda: len(p.gaps) == 1)
        n_after_gap = len(p.rows)
        wait_until(lambda: len(p.rows) >= n_after_gap + 3)  # still polling after the gap
        assert p.running
    ((start, end),) = p.gaps
    assert gaps_cb == p.gaps
    assert start < end
    host_times = [r["tel_t_host_ns"] for r in p.rows]
    assert not any(start <= t < end for t in host_times)  # no reading inside the gap
    assert end in host_times  # it closes at the first good reading
    assert all(isinstance(e, AxeOSConnectionError) for e in p.errors)


def test_poller_on_dead_miner_keeps_running_and_closes_gap_on_stop() -> None:
    c = AxeOSClient(dead_url(), retries=0)
    poller = AxeOSPoller(c, 0.01, max_backoff_s=0.04).start()
    try:
        wait_until(lambda: poller.n_failures >= 3)
        assert poller.running and poller.in_gap and poller.gaps == []
    finally:
        poller.stop()
    assert not poller.running and not poller.in_gap
    assert len(poller.gaps) == 1 and poller.rows == []
    start, end = poller.gaps[0]
    assert start < end


def test_poller_backoff_grows_while_unreachable() -> None:
    c = AxeOSClient(dead_url(), retries=0)
    p = AxeOSPoller(c, 0.5, max_backoff_s=3.0)
    assert p._next_wait(0.1) == pytest.approx(0.4)  # answering: keep the interval
    waits = []
    for _ in range(5):
        p.poll_once()
        waits.append(p._next_wait(0.0))
    assert waits == [min(0.5 * 2.0**k, 3.0) for k in range(5)]


# ---- auth and malformed replies ------------------------------------------------------------
def test_401_is_a_clear_typed_error_and_not_retried(
    client: AxeOSClient, emu: AxeOSEmulator
) -> None:
    emu.require_auth = True
    with pytest.raises(AxeOSAuthError, match="allowed network") as ei:
        client.info()
    assert ei.value.status == 401
    assert emu.n_requests == 1
    with pytest.raises(AxeOSAuthError):
        fast_set(client, 500)
    assert emu.pending_settings == {}


def test_malformed_json_from_emulator(client: AxeOSClient, emu: AxeOSEmulator) -> None:
    emu.malformed_json = True
    with pytest.raises(AxeOSProtocolError, match="malformed JSON"):
        client.info()


class _StubHandler(BaseHTTPRequestHandler):
    body = b""
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[tuple[str, type[_StubHandler]]]:
    handler = type("H", (_StubHandler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        t.join()


@pytest.mark.parametrize("body", [b"<html>AxeOS</html>", b'{"temp": 5', b"\xff\xfe", b"[1, 2]"])
def test_malformed_replies_from_any_server(stub: tuple[str, Any], body: bytes) -> None:
    url, handler = stub
    handler.body = body
    with pytest.raises(AxeOSProtocolError):
        AxeOSClient(url, retries=0).info()


def test_403_and_404_from_any_server(stub: tuple[str, Any]) -> None:
    url, handler = stub
    handler.status = 403
    with pytest.raises(AxeOSAuthError):
        AxeOSClient(url).info()
    handler.status = 404
    with pytest.raises(AxeOSHTTPError) as ei:
        AxeOSClient(url).info()
    assert ei.value.status == 404 and not isinstance(ei.value, AxeOSAuthError)


# ---- setting operating points --------------------------------------------------------------
def test_set_restart_confirm(client: AxeOSClient, emu: AxeOSEmulator, chip: FakeChip) -> None:
    info = fast_set(client, 550, 1250)
    assert (info["frequency"], info["coreVoltage"]) == (550.0, 1250.0)
    assert (chip.f, chip.v) == (550.0, 1250.0)
    assert emu.restart_count == 1
    methods = [(m, p) for m, p, s in emu.request_log if s == 200]
    assert methods[:2] == [("PATCH", "/api/system"), ("POST", "/api/system/restart")]
    info = fast_set(client, frequency_MHz=500)  # one key only: the other stays
    assert (chip.f, chip.v) == (500.0, 1250.0)
    client.restart()
    wait_until(lambda: emu.restart_count == 3 and not emu.restarting)


def test_without_restart_the_pending_setting_is_not_silently_accepted(
    client: AxeOSClient, emu: AxeOSEmulator
) -> None:
    with pytest.raises(SettingNotAppliedError, match="restart") as ei:
        fast_set(client, 550, restart=False, confirm_timeout_s=0.1)
    assert ei.value.requested == {"frequency": 550.0}
    assert ei.value.reported == {"frequency": 485.0}
    assert emu.pending_settings == {"frequency": 550}
    assert fast_set(client, 550, restart=False, confirm=False) == {}


def test_setting_not_applied_error(chip: FakeChip) -> None:
    with AxeOSEmulator(chip, restart_delay_s=0.05, ignore_settings=True) as emu:
        client = AxeOSClient(emu.url, retries=1, backoff_s=0.01)
        with pytest.raises(SettingNotAppliedError) as ei:
            fast_set(client, 550, 1250, confirm_timeout_s=0.5)
        assert ei.value.requested == {"frequency": 550.0, "coreVoltage": 1250.0}
        assert ei.value.reported == {"frequency": 485.0, "coreVoltage": 1200.0}
        assert emu.restart_count == 1 and chip.history == []


def test_confirm_times_out_on_a_vanished_miner(client: AxeOSClient, emu: AxeOSEmulator) -> None:
    emu.restart_delay_s = 30.0  # never comes back within the confirm timeout
    with pytest.raises(SettingNotAppliedError, match="unreachable") as ei:
        fast_set(client, 550, confirm_timeout_s=0.3)
    assert ei.value.reported is None


def test_unsafe_setting_refused_and_nothing_sent(
    client: AxeOSClient, emu: AxeOSEmulator, chip: FakeChip
) -> None:
    for f, v in ((700, None), (None, 1400), (485, 900), (100, 1200)):
        with pytest.raises(UnsafeSettingError):
            fast_set(client, f, v)
    assert emu.n_requests == 0
    assert emu.pending_settings == {} and chip.history == []


def test_override_allows_unsafe_setting(client: AxeOSClient, chip: FakeChip) -> None:
    info = fast_set(client, 700, override=True)
    assert info["frequency"] == 700.0 and chip.f == 700.0


def test_custom_envelope(emu: AxeOSEmulator) -> None:
    env = SafetyEnvelope(voltage_mV=(1100, 1200), frequency_MHz=(400, 500), max_temperature_C=60)
    c = AxeOSClient(emu.url, envelope=env)
    with pytest.raises(UnsafeSettingError):
        fast_set(c, 550)  # inside the default envelope, outside this one


@pytest.mark.parametrize("f, v", [(None, None), (math.nan, None), (-485, None), (None, "1200")])
def test_bad_setting_arguments(client: AxeOSClient, emu: AxeOSEmulator, f: Any, v: Any) -> None:
    with pytest.raises(AxeOSParameterError):
        client.set_operating_point(f, v, override=True)  # even an override does not pass these
    assert emu.n_requests == 0


# ---- sweep guard ---------------------------------------------------------------------------
def guard_of(client: AxeOSClient, **kw: Any) -> SweepGuard:
    kw.setdefault("confirm_timeout_s", 5.0)
    g = SweepGuard(client, **kw)
    return g


@pytest.fixture
def quick_client(client: AxeOSClient) -> AxeOSClient:
    """A client whose read-back loop does not wait a whole second between attempts."""
    original = client.set_operating_point

    def set_op(*args: Any, **kw: Any) -> dict[str, Any]:
        kw.setdefault("confirm_interval_s", 0.02)
        return original(*args, **kw)

    client.set_operating_point = set_op  # type: ignore[method-assign]
    return client


def test_guard_restores_on_normal_exit(quick_client: AxeOSClient, chip: FakeChip) -> None:
    with guard_of(quick_client) as g:
        assert g.original == OperatingPoint(485.0, 1200.0)
        g.set_operating_point(550, 1250)
        assert (chip.f, chip.v) == (550.0, 1250.0)
        g.check()  # cool enough: no error
    assert (chip.f, chip.v) == (485.0, 1200.0)
    assert chip.history[-1] == (485.0, 1200.0)


def test_guard_without_changes_does_not_restart(
    quick_client: AxeOSClient, emu: AxeOSEmulator
) -> None:
    with guard_of(quick_client) as g:
        g.check()
    assert emu.restart_count == 0


def test_guard_refuses_unsafe_settings(quick_client: AxeOSClient, emu: AxeOSEmulator) -> None:
    with guard_of(quick_client) as g, pytest.raises(UnsafeSettingError):
        g.set_operating_point(900)
    assert emu.pending_settings == {} and emu.restart_count == 0


def test_overheat_aborts_and_restores(
    quick_client: AxeOSClient, emu: AxeOSEmulator, chip: FakeChip
) -> None:
    with pytest.raises(OverheatError) as ei, guard_of(quick_client) as g:
        g.set_operating_point(600, 1280)
        g.check()
        emu.temperature_offset_C = 40.0  # the chip now reports > 75 degC
        for _ in range(100):  # a sweep loop that checks every reading
            g.check()
    assert ei.value.restored and ei.value.temperature_C > 75.0
    assert ei.value.max_temperature_C == 75.0
    assert (chip.f, chip.v) == (485.0, 1200.0)
    with pytest.raises(OverheatError):  # the guard stays tripped
        g.set_operating_point(500)
    assert (chip.f, chip.v) == (485.0, 1200.0)


def test_overheat_from_given_reading(quick_client: AxeOSClient, chip: FakeChip) -> None:
    with pytest.raises(OverheatError), guard_of(quick_client) as g:
        g.set_operating_point(550)
        g.check({"temperature": 80.0})
    assert chip.f == 485.0


def test_poller_watchdog_restores_without_the_sweep_asking(
    quick_client: AxeOSClient, emu: AxeOSEmulator, chip: FakeChip
) -> None:
    with quick_client.poll(0.02) as poller:
        with pytest.raises(OverheatError) as ei, guard_of(quick_client, poller=poller) as g:
            g.set_operating_point(550, 1250)
            emu.temperature_offset_C = 40.0
            wait_until(lambda: g.overheated)  # the sweep only waits; the poller thread acts
            wait_until(lambda: (chip.f, chip.v) == (485.0, 1200.0))
        assert ei.value.restored
        assert poller.running  # the capture's poller keeps recording


def test_guard_own_watchdog(quick_client: AxeOSClient, emu: AxeOSEmulator, chip: FakeChip) -> None:
    with pytest.raises(OverheatError), guard_of(quick_client, watch_interval_s=0.02) as g:
        g.set_operating_point(550)
        emu.temperature_offset_C = 40.0
        wait_until(lambda: g.overheated)
    assert chip.f == 485.0 and g._own_poller is not None and not g._own_poller.running


def test_keyboard_interrupt_restores(quick_client: AxeOSClient, chip: FakeChip) -> None:
    with pytest.raises(KeyboardInterrupt), guard_of(quick_client) as g:
        g.set_operating_point(550, 1250)
        raise KeyboardInterrupt
    assert (chip.f, chip.v) == (485.0, 1200.0)


def test_refuses_to_start_when_already_hot(quick_client: AxeOSClient, emu: AxeOSEmulator) -> None:
    emu.temperature_offset_C = 50.0
    with pytest.raises(OverheatError) as ei, guard_of(quick_client):
        pass
    assert not ei.value.restored and emu.restart_count == 0


def test_failed_restore_is_loud(quick_client: AxeOSClient, emu: AxeOSEmulator) -> None:
    with (
        pytest.raises(RestoreError, match="restore"),
        guard_of(quick_client, confirm_timeout_s=0.3) as g,
    ):
        g.set_operating_point(550)
        emu.ignore_settings = True  # the miner stops obeying
    with pytest.warns(RuntimeWarning, match="restore"), pytest.raises(KeyboardInterrupt) as ei:
        with guard_of(quick_client, confirm_timeout_s=0.3) as g:
            emu.ignore_settings = False
            g.set_operating_point(520)
            emu.ignore_settings = True
            raise KeyboardInterrupt
    assert any("restore" in n for n in getattr(ei.value, "__notes__", []))


# ---- into the capture journal --------------------------------------------------------------
def test_poller_feeds_the_journal(tmp_path: Any, client: AxeOSClient, emu: AxeOSEmulator) -> None:
    import functools

    from asiclab.capture.journal import Journal, read_journal

    with Journal(tmp_path / "cap.journal", attrs={"source_kind": "emulated"}) as journal:
        dev = journal.register_device("lv06-emu", model="BM1366")
        with client.poll(
            0.02,
            on_row=functools.partial(journal.append_telemetry, device_index=dev),
            on_gap=functools.partial(journal.append_gap, device_index=dev),
            max_backoff_s=0.05,
        ) as poller:
            wait_until(lambda: len(poller.rows) >= 3)
            emu.fail_next_n_requests = 2
            wait_until(lambda: len(poller.gaps) == 1)
            n = len(poller.rows)
            wait_until(lambda: len(poller.rows) >= n + 2)
    contents = read_journal(tmp_path / "cap.journal")
    cols = poller.telemetry_columns(device_index=dev)
    assert contents.complete
    for key in ("t_host_ns", "t_mono_ns"):
        np.testing.assert_array_equal(contents.telemetry[key], cols["tel_" + key])
    for key in ("temperature", "power", "voltage_set", "voltage_measured", "frequency", "hashrate"):
        np.testing.assert_array_equal(contents.telemetry[key], cols[key])
    gap_notes = [n["data"] for n in contents.notes if n["kind"] == "telemetry_gap"]
    assert [(g["start_ns"], g["end_ns"]) for g in gap_notes] == poller.gaps
