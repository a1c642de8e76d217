"""Tests of the emulated BM1366 on a pseudo-terminal, alone and end to end with the driver.

The emulator is first exercised with plain pyserial and byte strings (command vectors copied
from ``shared/reference/testvectors.json``, which come from the Bitaxe firmware ESP-Miner; the
chip-id reply ``AA 55 13 66 00 00 00 00 00 00 05`` of a real BM1366 quoted in ESP-Miner's issue
tracker; both in ``tests/vectors.py``), and its nonces are verified with
:mod:`asiclab.protocol.mining`
only, so that a mistake shared by the driver and the emulator cannot hide. Then the driver runs
against it with corrupted frames injected.

Rates are checked against the emulator's virtual (chip) time, never against the wall clock.
"""

from __future__ import annotations

import json
import math
import os
import time

import pytest
import serial

import vectors
from asiclab import dataset
from asiclab.devices.bm1366_uart import ERROR_HARDWARE, BM1366Driver
from asiclab.devices.emulated_bm1366 import EmulatedBM1366, EmulatorError
from asiclab.protocol import bm1366, mining
from asiclab.protocol.bm1366 import BM1366Job, FrameReader, NonceReply, RegisterReply

VEC = vectors.BM1366_COMMAND_FRAMES  # testvectors.json bm1366_command_frames (ESP-Miner)
REAL_CHIP_ID_REPLY = vectors.BM1366_CHIP_ID_REPLIES[0x1366]
PLL_485 = "55aa5109000850c202401c"  # from a real BM1366 init trace (skot/ESP-Miner bm1366.c)

# testvectors.json share_difficulty[1] (ESP-Miner test_mining.c): the job, without its nonce
TV_JOB = {k: v for k, v in vectors.share_inputs(vectors.ESP_SHARE_ROOT).items() if k != "nonce"}

ND = 2.0**-20  # emulator nonce difficulty in these tests (~4000 hashes per nonce)


def _wait(cond, timeout_s: float = 3.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def _read_nonces(port: serial.Serial, reader: FrameReader, n: int,
                 timeout_s: float = 15.0) -> list[NonceReply]:
    """Nonce replies until ``n`` arrived (or the time-out: the caller checks the count)."""
    out: list[NonceReply] = []
    end = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < end:
        out += [r for r in reader.feed(port.read(port.in_waiting or 1))
                if isinstance(r, NonceReply)]
    return out


def _poll_events(drv: BM1366Driver, n: int, timeout_s: float = 15.0) -> list:
    """Driver nonce events until ``n`` arrived (or the time-out: the caller checks the count)."""
    events: list = []
    end = time.monotonic() + timeout_s
    while len(events) < n and time.monotonic() < end:
        events += drv.poll()
    return events


def test_parameters_are_checked():
    for kwargs in ({"n_chips": 0}, {"nonce_difficulty": 1.0}, {"nonce_difficulty": 0.0},
                   {"speedup": 0.0}, {"model": "magic"}, {"corrupt_fraction": 1.5},
                   {"corrupt_modes": ("melt",)}, {"seed": -1}, {"voltage_mV": math.nan}):
        with pytest.raises(EmulatorError):
            EmulatedBM1366(start=False, **kwargs)


def test_chip_side_protocol_with_plain_pyserial():
    with EmulatedBM1366(seed=0, nonce_difficulty=ND) as emu, serial.serial_for_url(
            emu.port, baudrate=115200, timeout=2.0) as port:
        port.write(bytes.fromhex(VEC["read_chip_id"]))
        assert port.read(11) == bytes.fromhex(REAL_CHIP_ID_REPLY)
        port.write(bytes.fromhex(VEC["chain_inactive"]) + bytes.fromhex(VEC["set_address_0"]))
        port.write(bytes.fromhex(VEC["version_mask_all_ffff"]))
        port.write(bytes.fromhex(PLL_485))
        port.write(bm1366.write_register_command(0x08, bytes.fromhex("40a00241")))  # 200 MHz
        port.write(bm1366.ticket_mask_command(512))
        assert _wait(lambda: emu.ticket_difficulty == 512)
        assert emu.frequency_mhz == 200.0 and emu.version_mask == 0x1FFFE000
        port.write(bytes.fromhex(VEC["set_max_baud_reg28"]))
        assert _wait(lambda: emu.baudrate == 1_000_000)
        port.baudrate = 1_000_000  # a pty ignores it; the link keeps working
        port.write(bm1366.read_register_command(bm1366.REG_TICKET_MASK))
        reply = bm1366.decode_reply(port.read(11))
        assert isinstance(reply, RegisterReply)
        assert bm1366.difficulty_from_ticket_mask(reply.value) == 512
        # a damaged command is ignored and counted, the next one still works
        bad = bytearray(bytes.fromhex(VEC["read_chip_id"]))
        bad[-1] ^= 0x01
        port.write(bytes(bad) + bytes.fromhex(VEC["read_chip_id"]))
        assert port.read(11) == bytes.fromhex(REAL_CHIP_ID_REPLY)
        assert emu.stats()["host_decoder"]["n_crc_errors"] == 1
        assert emu.error is None


def test_nonces_really_verify_with_rolled_versions():
    """Replies meet the emulator difficulty, rebuilt from Stratum fields by
    asiclab.protocol.mining."""
    with EmulatedBM1366(seed=1, nonce_difficulty=ND, speedup=150.0, lookahead_s=0.05) as emu, \
            serial.serial_for_url(emu.port, timeout=0.02) as port:
        port.write(bm1366.version_mask_command(0x1FFFE000))
        job = BM1366Job.from_stratum(0x18, **TV_JOB)
        port.write(job.frame())
        replies = _read_nonces(port, FrameReader(), 40)
        assert len(replies) >= 40, emu.stats()
        truth = {s.frame: s.meets_difficulty for s in emu.sent() if s.kind == "nonce"}
        versions = set()
        for r in replies:
            assert r.job_id == 0x18 and r.core < bm1366.CORE_COUNT
            rolled = 0x20000004 | (r.version_field << 13)
            versions.add(rolled)
            header = mining.build_header(rolled, TV_JOB["prevhash"], TV_JOB["merkle_root"],
                                         TV_JOB["ntime"], TV_JOB["nbits"], r.nonce)
            # valid replies meet the difficulty; the model's rare hardware errors do not
            assert mining.meets_difficulty(mining.sha256d(header), ND) == truth[r.raw]
        assert sum(truth[r.raw] for r in replies) >= 0.9 * len(replies)
        assert len(versions) > 1  # the version field is rolled within the mask
        assert emu.error is None


def test_rate_follows_poisson_model_and_ticket_thinning():
    """Tickets per virtual second = f * 894e6 / (D * 2**32), checked in chip time."""

    def run_for(emu: EmulatedBM1366, virtual_s: float) -> tuple[dict, dict]:
        a = emu.stats()
        assert _wait(lambda: emu.stats()["virtual_elapsed_s"] - a["virtual_elapsed_s"]
                     >= virtual_s, timeout_s=30.0)
        return a, emu.stats()

    with EmulatedBM1366(seed=2, nonce_difficulty=2.0**-26, speedup=5000.0, model="poisson",
                        lookahead_s=0.02) as emu, serial.serial_for_url(emu.port,
                                                                        timeout=0.02) as port:
        port.write(bm1366.ticket_mask_command(4096))
        assert _wait(lambda: emu.ticket_difficulty == 4096)
        time.sleep(0.05)  # let the look-ahead window pass
        phase1 = run_for(emu, 5000.0)
        port.write(bm1366.ticket_mask_command(1024))
        assert _wait(lambda: emu.ticket_difficulty == 1024)
        time.sleep(0.05)
        phase2 = run_for(emu, 2000.0)
        assert phase1[0]["model"] == "poisson" and emu.error is None
    for (a, b), d in ((phase1, 4096), (phase2, 1024)):
        virt = b["virtual_elapsed_s"] - a["virtual_elapsed_s"]
        n = b["n_tickets"] - a["n_tickets"]
        expected = 485.0e6 * bm1366.SMALL_CORE_COUNT / (d * 2**32) * virt
        assert abs(n - expected) < 5 * math.sqrt(expected), (n, expected, d)


def test_pll_reaches_the_simulated_chip():
    with EmulatedBM1366(seed=3, nonce_difficulty=ND) as emu, serial.serial_for_url(
            emu.port, timeout=0.02) as port:
        assert emu.model_kind == "simulated"
        port.write(bm1366.pll_command(400.0))
        assert _wait(lambda: emu.frequency_mhz == 400.0)
        assert emu._chips[0].model._chip.frequency_MHz == 400.0
        emu.set_voltage(1150.0)
        assert emu._chips[0].model._chip.voltage_mV == 1150.0


def _intact_prefix_check(emu: EmulatedBM1366, events) -> tuple[int, int, int]:
    """Every intact nonce reply written before the last delivered one was delivered."""
    sent = [s for s in emu.sent() if s.kind == "nonce"]
    delivered = {e.raw for e in events}
    position = {s.frame: i for i, s in enumerate(sent)}
    last = max((position[r] for r in delivered if r in position), default=-1)
    assert last >= 0
    before = sent[: last + 1]
    missing = [s for s in before if s.intact and s.frame not in delivered]
    assert not missing, f"{len(missing)} intact replies were lost"
    intact_frames = {s.frame for s in before if s.intact}
    false = [e for e in events if e.raw not in intact_frames]
    assert all(not e.valid for e in false), "a damaged frame passed as a valid nonce"
    # valid events are exactly the intact replies that meet the difficulty (not hardware errors)
    assert {e.raw for e in events if e.valid} == {
        s.frame for s in before if s.intact and s.meets_difficulty}
    n_bad = sum(not s.intact for s in before)
    return n_bad, len(false), len(before)


def test_driver_end_to_end_with_corrupted_frames():
    with EmulatedBM1366(seed=4, nonce_difficulty=ND, speedup=100.0, lookahead_s=0.05,
                        corrupt_fraction=0.3) as emu, BM1366Driver(emu.port) as drv:
        chips = drv.initialise(ramp=False, enumerate_idle_s=0.2, fast_baud=True)
        assert len(chips) == 1 and chips[0].chip_id == 0x1366 and emu.baudrate == 1_000_000
        assert emu.frequency_mhz == 485.0 and emu.ticket_difficulty == 256
        drv.verify_difficulty = emu.nonce_difficulty
        ds = drv.capture(15.0, max_events=80, source_kind="emulated", job_interval_s=0.5,
                         progress=False, voltage_mV=emu.voltage_mV, title="emulated BM1366 test")
        jobs = {s.name: s.job for s in drv.jobs.values()}
        stats = drv.stats()
        assert emu.error is None
    events_valid = ds.valid.values
    assert ds.attrs["source_kind"] == "emulated" and ds.sizes["event"] >= 80
    assert list(ds.device_source_kind.values) == ["emulated"]
    assert float(ds.op_frequency_set[0]) == 485.0 and float(ds.op_voltage_set[0]) == 1200.0
    params = json.loads(ds.attrs["parameters"])
    assert params["verify_difficulty"] == ND and 2 <= params["n_jobs"] <= 16
    dataset.validate_capture(ds)
    # re-verify every valid event independently from its job
    for i in range(ds.sizes["event"]):
        if not events_valid[i]:
            continue
        job = jobs[str(ds.job_id.values[i])]
        rolled = job.version ^ int(ds.version_bits.values[i])
        header = mining.build_header(rolled, mining.swap_words(job.prevhash), job.merkle_root,
                                     job.ntime, job.nbits, int(ds.nonce.values[i]))
        assert mining.meets_difficulty(mining.sha256d(header), ND)
        assert 0 <= int(ds.core_id.values[i]) < bm1366.CORE_COUNT
    # damaged frames: counted and skipped; every intact one delivered
    n_bad, n_false, _ = _intact_prefix_check(emu, drv.last_events)
    assert len(drv.last_events) == ds.sizes["event"]
    assert n_bad >= 5 and n_false <= n_bad
    assert stats["n_crc_errors"] + stats["n_bad_flags"] + stats["n_overlaps"] >= 1
    assert stats["n_bytes_discarded"] + 11 * n_false >= n_bad
    assert params["reader"]["n_frames"] >= ds.sizes["event"]  # + damaged frames read as registers


def test_every_intact_frame_is_delivered_under_corruption():
    with EmulatedBM1366(seed=5, nonce_difficulty=ND, speedup=150.0, lookahead_s=0.05,
                        corrupt_fraction=0.35) as emu, BM1366Driver(emu.port) as drv:
        drv.initialise(ramp=False, vendor_init=False, enumerate_idle_s=0.2)
        drv.verify_difficulty = emu.nonce_difficulty
        drv.send_job(**TV_JOB, name="tv")
        events = _poll_events(drv, 120)
        stats = drv.stats()
        assert emu.error is None
    n_bad, n_false, n_before = _intact_prefix_check(emu, events)
    assert n_before >= 120 and n_bad >= 5
    assert n_false <= n_bad
    assert stats["n_bytes_discarded"] + 11 * n_false >= n_bad


def test_hardware_errors_are_flagged_by_the_driver():
    with EmulatedBM1366(seed=6, nonce_difficulty=ND, speedup=150.0, model="poisson",
                        hw_error_rate=0.4, lookahead_s=0.05) as emu, \
            BM1366Driver(emu.port) as drv:
        drv.initialise(ramp=False, vendor_init=False, enumerate_idle_s=0.2)
        drv.verify_difficulty = emu.nonce_difficulty
        drv.send_job(**TV_JOB, name="tv")
        events = _poll_events(drv, 60)
        truth = {s.frame: s.meets_difficulty for s in emu.sent() if s.kind == "nonce"}
    assert len(events) >= 60
    for e in events:
        assert e.valid == truth[e.raw]
        assert e.error_code == (0 if e.valid else ERROR_HARDWARE)
    assert 0 < sum(not e.valid for e in events) < len(events)


def test_multi_chip_chain():
    with EmulatedBM1366(n_chips=3, seed=7, nonce_difficulty=ND, speedup=60.0,
                        lookahead_s=0.05) as emu, BM1366Driver(emu.port) as drv:
        chips = drv.initialise(ramp=False, vendor_init=True, enumerate_idle_s=0.2,
                               expected_chips=3)
        assert [c.address for c in chips] == [0, 85, 170]
        assert _wait(lambda: emu.addresses == [0, 85, 170])
        assert drv.address_interval == 85
        drv.verify_difficulty = emu.nonce_difficulty
        ds = drv.capture(15.0, max_events=60, source_kind="emulated", job_interval_s=1.0,
                         progress=False)
        # per-chip register read: each chip answers with its own address
        replies = drv.read_register(bm1366.REG_TICKET_MASK)
        assert sorted(r.chip_address for r in replies) == [0, 85, 170]
        truth = {s.frame: (s.meets_difficulty, s.chip) for s in emu.sent() if s.kind == "nonce"}
    assert ds.sizes["device"] == 3 and ds.sizes["op"] == 3
    assert set(ds.device_index.values.tolist()) == {0, 1, 2}
    # each nonce is attributed to the chip that sent it and judged as the emulator meant it
    for e in drv.last_events:
        assert (e.valid, e.chip) == truth[e.raw]
        assert 85 * e.chip <= e.chip_address < 85 * (e.chip + 1)
    assert ds.valid.values.mean() > 0.9
    # op_index points at the operating point of the event's own device
    op_dev = ds.op_device_index.values[ds.op_index.values]
    assert (op_dev == ds.device_index.values).all()


def test_baud_switch_then_reenumerate_and_clean_shutdown():
    emu = EmulatedBM1366(seed=8, nonce_difficulty=ND)
    port = emu.port
    with BM1366Driver(port) as drv:
        drv.enumerate_chips(idle_s=0.1)
        assert drv.set_fast_baud() == 1_000_000
        assert len(drv.enumerate_chips(idle_s=0.1)) == 1
    assert emu.running
    emu.close()
    assert not emu.running and emu.error is None
    emu.close()  # idempotent
    assert not os.path.exists(port) or not _port_answers(port)


def _port_answers(path: str) -> bool:
    try:
        with serial.serial_for_url(path, timeout=0.1) as p:
            p.write(bytes.fromhex(VEC["read_chip_id"]))
            return len(p.read(11)) == 11
    except (serial.SerialException, OSError):
        return False
