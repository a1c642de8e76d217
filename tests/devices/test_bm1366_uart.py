"""Tests of the BM1366 UART driver over pyserial's ``loop://`` URL (no emulator, no threads).

On ``loop://`` everything the driver writes comes back to it: its own commands arrive as
garbage for the reply decoder (counted, skipped), and a test writes chip replies itself. The
end-to-end tests against the pty emulator are in ``test_emulated_bm1366.py``.

Vector (copied in ``tests/vectors.py``): the second ``share_difficulty`` job of
``shared/reference/testvectors.json``, a mainnet job from the unit tests of the Bitaxe firmware
(ESP-Miner ``components/stratum/test/test_mining.c``): nonce ``276e8947`` has difficulty
18.0434658...
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import pytest
import xarray as xr

import vectors
from asiclab import dataset
from asiclab.devices.bm1366_uart import (
    ERROR_DUPLICATE,
    ERROR_HARDWARE,
    ERROR_JOB_NOT_FOUND,
    BM1366Driver,
    ChipNotFoundError,
    NonceEvent,
    SyntheticJobs,
    UARTError,
    events_to_capture,
    port_from_env,
)
from asiclab.protocol import bm1366, mining

TV = vectors.ESP_SHARE_ROOT  # testvectors.json share_difficulty[1] (ESP-Miner test_mining.c)


def _job_fields() -> dict:
    return {k: TV[k] for k in ("version", "ntime", "nbits", "merkle_root")} | {
        "prevhash": TV["prevhash_notify"]}


def _reply_for(job_id: int, nonce_hex: str = TV["nonce"], small_core: int = 2) -> bytes:
    return bm1366.encode_nonce_reply(int(nonce_hex, 16).to_bytes(4, "little"), job_id,
                                     small_core)


def _poll_until(drv: BM1366Driver, n: int, timeout_s: float = 2.0) -> list[NonceEvent]:
    out: list[NonceEvent] = []
    end = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < end:
        out += drv.poll()
    out += drv.poll()
    return out


@pytest.fixture
def loop_driver():
    drv = BM1366Driver("loop://", timeout=0.005)
    yield drv
    drv.close()


def test_open_failure_is_typed():
    with pytest.raises(UARTError, match="cannot open"):
        BM1366Driver("/dev/asiclab-no-such-port")
    with pytest.raises(UARTError):
        BM1366Driver("")


def test_nonce_from_known_job_verifies(loop_driver):
    drv = loop_driver
    assert drv.set_ticket_difficulty(16) == 16
    job = drv.send_job(**_job_fields(), name="tv1")
    assert job.job_id == 8 and drv.jobs[8].name == "tv1"
    drv.write(_reply_for(job.job_id))
    (ev,) = _poll_until(drv, 1)
    assert ev.job_name == "tv1" and ev.chip_job_id == 8 and ev.small_core == 2
    assert ev.nonce == int(TV["nonce"], 16)
    assert ev.difficulty == pytest.approx(TV["difficulty"], rel=1e-12)
    assert ev.valid and ev.error_code == 0 and ev.verify_difficulty == 16
    assert ev.rolled_version == 0x20000004 and ev.version_bits == 0
    header = mining.build_header(TV["version"], TV["prevhash_notify"], TV["merkle_root"],
                                 TV["ntime"], TV["nbits"], TV["nonce"])
    assert mining.share_difficulty(mining.sha256d(header)) == pytest.approx(ev.difficulty)
    assert ev.core == (int.from_bytes(ev.nonce_bytes, "big") >> 25) and ev.chip == 0
    assert ev.t_host_ns > 1_600_000_000 * 10**9 and ev.t_mono_ns > 0
    # the driver's own echoed frames were discarded as non-replies, not decoded
    assert drv.stats()["n_bytes_discarded"] > 0 and drv.stats()["n_nonces"] == 1


def test_duplicate_unknown_job_and_hardware_error(loop_driver):
    drv = loop_driver
    job = drv.send_job(**_job_fields(), name="tv1")
    drv.write(_reply_for(job.job_id))
    drv.write(_reply_for(job.job_id))  # the same nonce again
    drv.write(_reply_for(0x70))  # a job id never sent
    drv.write(_reply_for(job.job_id, nonce_hex="276e8948"))  # a wrong nonce
    evs = _poll_until(drv, 4)
    assert [e.error_code for e in evs] == [0, ERROR_DUPLICATE, ERROR_JOB_NOT_FOUND,
                                           ERROR_HARDWARE]
    assert [e.valid for e in evs] == [True, False, False, False]
    assert math.isnan(evs[2].difficulty) and evs[2].job_name == "" and evs[2].rolled_version == -1
    assert evs[3].difficulty < 1.0
    drv.verify_difficulty = 1000.0  # above the share's 18.04: a hardware error at that level
    drv.write(_reply_for(job.job_id, small_core=5))
    (ev,) = _poll_until(drv, 1)
    assert ev.error_code == ERROR_DUPLICATE  # same nonce and version as the first one
    job2 = drv.send_job(**_job_fields(), name="tv1-again")
    assert job2.job_id == 16
    drv.write(_reply_for(job2.job_id))
    (ev,) = _poll_until(drv, 1)
    assert ev.error_code == ERROR_HARDWARE and not ev.valid and ev.verify_difficulty == 1000.0


def test_corrupted_replies_are_counted_and_skipped(loop_driver):
    drv = loop_driver
    job = drv.send_job(**_job_fields(), name="tv1")
    good = _reply_for(job.job_id)
    bad = bytearray(good)
    bad[7] ^= 0x01
    drv.write(bytes(bad) + b"\x13\x37" + good[:5])  # damaged frame, noise, a split frame
    drv.write(good[5:])
    evs = _poll_until(drv, 1)
    assert len(evs) == 1 and evs[0].valid
    assert drv.stats()["n_crc_errors"] >= 1


def test_coinbase_path_of_send_job(loop_driver, reference_dir):
    vec = json.loads((reference_dir / "testvectors.json").read_text())["share_difficulty"][0]
    drv = loop_driver
    job = drv.send_job(version=vec["version"], prevhash=vec["prevhash_notify"],
                       ntime=vec["ntime"], nbits=vec["nbits"], coinb1=vec["coinb1"],
                       extranonce1=vec["extranonce1"], extranonce2=vec["extranonce2"],
                       coinb2=vec["coinb2"], merkle_branch=vec["merkle_branch"], name="cb")
    assert job.merkle_root.hex() == vec["merkle_root"]
    drv.write(_reply_for(job.job_id, nonce_hex=vec["nonce"]))
    (ev,) = _poll_until(drv, 1)
    assert ev.difficulty == pytest.approx(vec["difficulty"], rel=1e-12)
    with pytest.raises(bm1366.BM1366ValueError):
        drv.send_job(version=1, prevhash="00" * 32, ntime=0, nbits=0, coinb1="00")


def test_enumerate_on_loop(loop_driver):
    drv = loop_driver
    with pytest.raises(ChipNotFoundError, match="no chip"):
        drv.enumerate_chips(idle_s=0.05, max_s=0.3)
    drv.write(bm1366.encode_chip_id_reply())  # a chip "answers" (before the read is sent)
    chips = drv.enumerate_chips(idle_s=0.05, max_s=0.5)
    assert len(chips) == 1 and chips[0].chip_id == 0x1366 and chips[0].core_count == 112
    assert chips[0].core_count_reported == 0
    drv.write(bm1366.encode_chip_id_reply(chip_id=0x1368))
    with pytest.raises(ChipNotFoundError, match="0x1368"):
        drv.enumerate_chips(idle_s=0.05, max_s=0.5)
    drv.write(bm1366.encode_chip_id_reply())
    with pytest.raises(ChipNotFoundError, match="expected 2"):
        drv.enumerate_chips(idle_s=0.05, max_s=0.5, expected=2)


def test_vendor_init_frames_match_the_firmware_literals():
    """The start-up writes equal the literal frames of ESP-Miner's ``BM1366_init``."""
    from asiclab.devices import bm1366_uart as u

    firmware = [  # components/asic/bm1366.c: init4, init5, init135, init136, init138, init139
        "55aa510900a80007000003", "55aa51090018ff0fc10000", "55aa5109003c800085400c",
        "55aa5109003c8000802019", "55aa51090054000000031d", "55aa510900580211111106"]
    ours = [bm1366.write_register_command(r, v).hex() for r, v in (
        u.VENDOR_INIT_BROADCAST + u.VENDOR_INIT_AFTER_ADDRESS + u.VENDOR_INIT_AFTER_TICKET)]
    assert ours == firmware
    assert bm1366.write_register_command(*u.VENDOR_INIT_2C, broadcast=False).hex() == (
        "55aa4109002c007c000303")  # init171


def test_register_read_keeps_nonces_that_arrive_meanwhile(loop_driver):
    drv = loop_driver
    job = drv.send_job(**_job_fields(), name="tv1")
    drv.write(_reply_for(job.job_id) + bm1366.encode_register_reply(0x1234, 0, 0x4C))
    (reply,) = drv.read_register(0x4C, idle_s=0.05, max_s=1.0)
    assert (reply.value, reply.register) == (0x1234, 0x4C)
    (ev,) = drv.poll()  # the nonce read while waiting for the register is not lost
    assert ev.valid and ev.job_name == "tv1"
    assert drv.read_register(0x4C, idle_s=0.05, max_s=0.2) == []


def _echoed_commands(drv: BM1366Driver) -> list[bm1366.CommandFrame]:
    time.sleep(0.01)
    data = drv._ser.read(drv._ser.in_waiting)
    return bm1366.CommandReader().feed(data)


def test_frequency_ramp_and_baud_switch(loop_driver):
    drv = loop_driver
    f = drv.set_frequency(100.0, ramp=True, step_delay_s=0.0)
    assert f == 100.0 and drv.frequency_mhz == 100.0
    freqs = [bm1366.decode_pll_register(c.value).frequency_mhz
             for c in _echoed_commands(drv) if c.register == bm1366.REG_PLL0]
    assert freqs == [50 + 6.25 * k for k in range(1, 9)] + [100.0]
    drv.set_frequency(80.0, ramp=True, step_delay_s=0.0)
    freqs = [bm1366.decode_pll_register(c.value).frequency_mhz
             for c in _echoed_commands(drv) if c.register == bm1366.REG_PLL0]
    assert freqs == [93.75, 87.5, 81.25, 80.0]
    assert drv.set_fast_baud() == 1_000_000 and drv.baudrate == 1_000_000
    (cmd,) = _echoed_commands(drv)
    assert cmd.raw == bm1366.fast_uart_command()
    with pytest.raises(bm1366.BM1366ValueError):
        drv.set_frequency(5000.0)


def test_set_addresses_writes_chain_inactive_then_addresses(loop_driver):
    drv = loop_driver
    assert drv.set_addresses(4) == [0, 64, 128, 192]
    cmds = _echoed_commands(drv)
    assert cmds[0].raw == bm1366.chain_inactive_command()
    assert [c.chip_address for c in cmds[1:]] == [0, 64, 128, 192]
    assert drv.address_interval == 64 and [c.address for c in drv.chips] == [0, 64, 128, 192]


def test_capture_on_loop_sends_jobs_and_builds_dataset(loop_driver):
    drv = loop_driver
    ds = drv.capture(0.3, job_interval_s=0.05, progress=False, seed=3)
    params = json.loads(ds.attrs["parameters"])
    assert params["n_jobs"] >= 3 and params["jobs"].startswith("synthetic")
    assert ds.attrs["source_kind"] == "hardware" and ds.sizes["event"] == 0
    assert ds.sizes["device"] == 1 and ds.sizes["op"] == 1
    assert math.isnan(float(ds.op_frequency_set[0]))  # frequency never set
    dataset.validate_capture(ds)
    with pytest.raises(bm1366.BM1366ValueError):
        drv.capture(0.0, progress=False)
    with pytest.raises(bm1366.BM1366ValueError):
        drv.capture(0.1, source_kind="simulated-ish", progress=False)


def _event(t: int, chip: int = 0, valid: bool = True, name: str = "j") -> NonceEvent:
    return NonceEvent(t, t // 1000, 8, name, 3, 1, chip, chip * 128, 0x12345678,
                      bytes(4), 0x20002000, 0x2000, 300.0, 256.0, valid,
                      0 if valid else ERROR_HARDWARE, bytes(11))


def test_capture_keeps_events_on_keyboard_interrupt(loop_driver, monkeypatch):
    drv = loop_driver
    calls = {"n": 0}

    def fake_poll():
        calls["n"] += 1
        if calls["n"] == 1:
            return [_event(time.time_ns())]
        raise KeyboardInterrupt

    monkeypatch.setattr(drv, "poll", fake_poll)
    with pytest.warns(UserWarning, match="interrupted"):
        ds = drv.capture(5.0, jobs=None, progress=False)
    assert ds.sizes["event"] == 1 and json.loads(ds.attrs["parameters"])["interrupted"]


def test_capture_attaches_events_to_uart_error(loop_driver, monkeypatch):
    drv = loop_driver
    calls = {"n": 0}

    def fake_poll():
        calls["n"] += 1
        if calls["n"] <= 2:
            return [_event(time.time_ns())]
        raise UARTError("cable pulled")

    monkeypatch.setattr(drv, "poll", fake_poll)
    with pytest.raises(UARTError, match="cable pulled") as info:
        drv.capture(5.0, jobs=None, progress=False)
    assert info.value.capture is not None and info.value.capture.sizes["event"] == 2


def test_events_to_capture_devices_ops_and_round_trip(tmp_path):
    t0 = 1_700_000_000_000_000_000
    s = 10**9
    events = [_event(t0 + 1 * s, 0), _event(t0 + 2 * s, 1, valid=False), _event(t0 + 6 * s, 1),
              _event(t0 + 7 * s, 5)]  # chip 5 is outside a 2-chip chain
    freq_log = [(t0 - s, 400.0), (t0 + 5 * s, 485.0), (t0 + 20 * s, 500.0)]
    ds = events_to_capture(events, n_chips=2, device_name="/dev/ttyX", source_kind="emulated",
                           freq_log=freq_log, t_start_ns=t0, t_end_ns=t0 + 10 * s,
                           voltage_mV=1150.0, seed=7, parameters={"k": 1})
    assert list(ds.device_name.values) == ["/dev/ttyX#chip0", "/dev/ttyX#chip1", "/dev/ttyX#chip?"]
    assert list(ds.device_index.values) == [0, 1, 1, 2]
    # two frequency segments (400 until t0+5 s, then 485) for each of the 3 devices
    assert ds.sizes["op"] == 6
    assert list(ds.op_frequency_set.values) == [400.0, 485.0] * 3
    assert list(ds.op_index.values) == [0, 2, 3, 5]
    assert np.all(ds.op_voltage_set.values == 1150.0)
    assert list(ds.valid.values) == [True, False, True, True]
    assert list(ds.error_code.values) == [0, ERROR_HARDWARE, 0, 0]
    assert ds.attrs["source_kind"] == "emulated" and ds.attrs["device_model"] == "BM1366"
    assert json.loads(ds.attrs["parameters"]) == {"k": 1}
    path = dataset.save_capture(ds, tmp_path / "c.nc")
    xr.testing.assert_identical(dataset.open_capture(path).load(), ds)


def test_synthetic_jobs_are_distinct_and_seeded():
    a, b = SyntheticJobs(1), SyntheticJobs(1)
    ja = [a(i) for i in range(3)]
    jb = [b(i) for i in range(3)]
    assert [j["merkle_root"] for j in ja] == [j["merkle_root"] for j in jb]
    assert len({j["merkle_root"] for j in ja}) == 3
    assert ja[0]["name"] == "syn000000" and "seed=1" in a.describe()
    header_prev = mining.swap_words(ja[0]["prevhash"])
    assert header_prev[24:] == bytes(8)  # like a real previous-block hash


@pytest.mark.hardware
def test_real_chip_on_usb_serial():
    """Capture from a real BM1366 on a USB-serial adapter.

    How to run: wire a 3.3 V USB-UART adapter to the chip's UART (adapter TX -> chip RI/RX,
    adapter RX -> chip RO/TX, common ground); power the chip through its board (core voltage,
    1.8/0.8 V rails, reset released, clock present) -- e.g. a Bitaxe whose ESP32 is held in
    reset, with its ASIC UART pins exposed. Then::

        ASICLAB_UART_PORT=/dev/ttyUSB0 .venv/bin/pytest -m hardware \\
            tests/devices/test_bm1366_uart.py

    The test enumerates the chain, brings it up like the firmware (485 MHz, ticket difficulty
    256), captures 60 s of synthetic jobs and checks that the nonces verify by SHA256d.
    """
    port = port_from_env()
    if port is None:
        pytest.skip("set ASICLAB_UART_PORT to the USB-serial adapter of a BM1366")
    with BM1366Driver(port) as drv:
        chips = drv.initialise(ramp=True, fast_baud=os.environ.get("ASICLAB_UART_FAST") == "1")
        assert chips and all(c.chip_id == 0x1366 for c in chips)
        ds = drv.capture(60.0, source_kind="hardware", progress=True)
    assert ds.sizes["event"] > 0, "no nonce in 60 s (expect ~0.4/s per chip at 485 MHz)"
    valid = ds.valid.values
    assert valid.mean() > 0.9
    assert np.all(ds.difficulty.values[valid] >= 256.0)
