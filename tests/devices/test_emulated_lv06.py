"""Tests of the emulated LV06's Stratum side (real shares with model timing)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vectors
from asiclab.capture.journal import read_journal, recover
from asiclab.capture.server import StratumCaptureServer
from asiclab.devices.emulated_axeos import ChipHandle
from asiclab.devices.emulated_lv06 import (
    AGENT,
    EmulatedLV06,
    EmulatorError,
    core_of_nonce,
    search_core_nonce,
)
from asiclab.devices.simulated import ChipEvents, ChipModelParams, SimulatedChip
from asiclab.protocol import mining

# Known-answer header: the second share vector of ESP-Miner's test_mining.c
# (shared/reference/testvectors.json, "merkle root given directly"; copied in tests/vectors.py),
# difficulty 18.043465815769544.
_VEC = {**vectors.share_inputs(vectors.ESP_SHARE_ROOT),
        "difficulty": vectors.ESP_SHARE_ROOT["difficulty"]}


class ScriptedChip:
    """A chip model emitting scripted events (the SimulatedChip API the emulator uses)."""

    def __init__(self, events: list[tuple[int, int, bool]]) -> None:
        self.now_ns = 0
        self.events = sorted(events)
        self.ops: list[tuple[float, float]] = []

    def advance(self, dt_s: float) -> ChipEvents:
        lo, hi = self.now_ns, self.now_ns + round(dt_s * 1e9)
        self.now_ns = hi
        sel = [e for e in self.events if lo < e[0] <= hi]
        return ChipEvents(t_ns=np.array([e[0] for e in sel], np.int64),
                          core_id=np.array([e[1] for e in sel], np.int32),
                          valid=np.array([e[2] for e in sel], bool))

    def set_operating_point(self, voltage_mV: float, frequency_MHz: float) -> None:
        self.ops.append((voltage_mV, frequency_MHz))

    def telemetry(self) -> dict[str, Any]:
        return {}


def test_core_of_nonce_follows_the_bm1366_layout() -> None:
    # nonce_h = core << 25; the header holds the chip's bytes, the submit value is their LE u32
    for core in (0, 1, 5, 111, 127):
        raw = (core << 25 | 0x1234567 & 0x1FFFFFF).to_bytes(4, "big")
        assert core_of_nonce(int.from_bytes(raw, "little")) == core
    assert core_of_nonce(0x0000000A) == 5  # bytes 0a 00 00 00 -> nonce_h 0x0a000000
    # the known-answer vector's nonce 0x276e8947: header bytes 47 89 6e 27 -> nonce_h 0x47896e27
    assert core_of_nonce(int(_VEC["nonce"], 16)) == 0x47896E27 >> 25


def test_search_core_nonce_finds_real_nonces() -> None:
    prefix = mining.header_prefix(_VEC["version"], _VEC["prevhash"], _VEC["merkle_root"],
                                  _VEC["ntime"], _VEC["nbits"])
    # the published nonce lies in core 35's slice; searching there from its offset finds it
    known = int(_VEC["nonce"], 16)
    core = core_of_nonce(known)
    offset = int.from_bytes(known.to_bytes(4, "little"), "big") & (2**25 - 1)
    hit = search_core_nonce(prefix, 18.0, core, start=offset, max_tries=1)
    assert hit is not None and hit.nonce == known
    assert hit.difficulty == pytest.approx(_VEC["difficulty"], rel=1e-12)
    d = 2.0**-16
    for core in (3, 77):
        hit = search_core_nonce(prefix, d, core, start=1000)
        assert hit is not None and core_of_nonce(hit.nonce) == core
        digest = mining.sha256d(prefix + hit.nonce.to_bytes(4, "little"))
        assert mining.meets_difficulty(digest, d) and digest == hit.hash
        bad = search_core_nonce(prefix, d, core, valid=False)
        assert bad is not None and core_of_nonce(bad.nonce) == core
        assert not mining.meets_difficulty(mining.sha256d(prefix + bad.nonce.to_bytes(4, "little")),
                                           d)
    assert search_core_nonce(prefix, 1e9, 0, max_tries=100) is None
    with pytest.raises(EmulatorError):
        search_core_nonce(prefix[:70], d, 0)
    with pytest.raises(EmulatorError):
        search_core_nonce(prefix, d, 128)


def _capture(tmp_path: Path, emulator_kwargs: dict[str, Any], run_kwargs: dict[str, Any],
             server_kwargs: dict[str, Any] | None = None,
             during: Any = None) -> tuple[EmulatedLV06, Path]:
    path = tmp_path / "emu.journal"

    async def main() -> EmulatedLV06:
        async with StratumCaptureServer(path, job_interval_s=None,
                                        **(server_kwargs or {})) as srv:
            emu = EmulatedLV06("127.0.0.1", srv.port, **emulator_kwargs)
            task = asyncio.create_task(emu.run(**run_kwargs))
            if during is not None:
                await during(emu)
            await asyncio.wait_for(task, 60)
            return emu

    return asyncio.run(main()), path


def test_scripted_events_become_verified_shares_in_model_order(tmp_path: Path) -> None:
    cores = [5, 17, 111, 0, 64, 33, 90, 2, 101, 7]
    valid = [True, True, False, True, False, True, True, True, False, True]
    chip = ScriptedChip([(10_000_000 * (k + 1), c, v)
                         for k, (c, v) in enumerate(zip(cores, valid, strict=True))])
    emu, path = _capture(tmp_path, {"chip": chip, "seed": 3, "time_scale": 1.0},
                         {"max_shares": len(cores), "duration_s": 30})
    assert emu.stats.model_events == len(cores)
    assert emu.stats.model_invalid == valid.count(False)
    assert emu.stats.unexpected == 0
    ds = recover(path)
    assert ds.attrs["source_kind"] == "emulated"
    assert ds["device_model"].values.tolist() == ["BM1366"]
    assert ds["device_source_kind"].values.tolist() == ["emulated"]
    assert ds.attrs["firmware"] == AGENT
    order = np.argsort(ds["t_mono_ns"].values, kind="stable")
    nonces = ds["nonce"].values[order]
    assert [core_of_nonce(int(n)) for n in nonces] == cores
    codes = ds["error_code"].values[order].tolist()
    assert codes == [0 if v else 23 for v in valid]
    assert ds["valid"].values[order].tolist() == valid
    vbits = ds["version_bits"].values
    assert np.all(vbits & ~0x1FFFE000 == 0) and np.any(vbits != 0)  # rolled inside the mask
    stats = emu.handle.stats()
    assert stats["shares_accepted"] == valid.count(True)
    assert stats["shares_rejected"] == valid.count(False)
    assert stats["pool_difficulty"] == 2.0**-20


def test_simulated_chip_timing_with_hardware_errors(tmp_path: Path) -> None:
    chip = SimulatedChip(11, ChipModelParams(err_floor=0.25))
    handle = ChipHandle(chip)
    emu, path = _capture(tmp_path, {"chip": handle, "seed": 11, "time_scale": 150.0},
                         {"duration_s": 1.5})
    assert emu.handle is handle
    assert emu.stats.model_events >= 20  # ~0.39/s x 225 s of chip time
    assert emu.stats.unexpected == 0
    c = read_journal(path)
    assert c.events["t_host_ns"].size == emu.stats.submitted == emu.stats.model_events
    codes = c.events["error_code"]
    assert int((codes == 23).sum()) == emu.stats.model_invalid > 0
    assert int((codes == 0).sum()) == emu.stats.accepted
    ok = codes == 0
    assert np.all(c.events["difficulty"][ok] >= c.events["pool_difficulty"][ok])
    assert np.all(c.events["difficulty"][~ok] < c.events["pool_difficulty"][~ok])


def test_refuses_a_difficulty_it_cannot_search(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError, match="max_search_difficulty"):
        _capture(tmp_path, {"chip": ScriptedChip([]), "reconnect": False,
                             "difficulty_wait_s": 0.3},
                 {"duration_s": 20}, {"difficulty": 256.0,
                                      "accept_suggested_difficulty": False})


def test_bad_parameters() -> None:
    with pytest.raises(EmulatorError, match="time_scale"):
        EmulatedLV06("127.0.0.1", 1, chip=ScriptedChip([]), time_scale=0)
    with pytest.raises(EmulatorError, match="asiclab-"):
        EmulatedLV06("127.0.0.1", 1, chip=ScriptedChip([]), agent="bitaxe/BM1366/2.4")


def test_firmware_restart_drops_and_restores_the_connection(tmp_path: Path) -> None:
    chip = ScriptedChip([(20_000_000 * (k + 1), k, True) for k in range(40)])

    async def during(emu: EmulatedLV06) -> None:
        while emu.stats.submitted < 5:
            await asyncio.sleep(0.01)
        emu.handle._set_online(False)  # what POST /api/system/restart does
        await asyncio.sleep(0.2)
        emu.handle._set_online(True)

    emu, path = _capture(tmp_path, {"chip": chip, "time_scale": 1.0},
                         {"max_shares": 12, "duration_s": 30}, during=during)
    assert emu.stats.connects == 2 and emu.stats.restarts == 1
    c = read_journal(path)
    assert [n["kind"] for n in c.notes].count("connect") == 2
    assert bool(c.events["valid"].all()) and c.events["valid"].size == 12
    assert len(c.devices) == 1  # same worker name: same device after the reconnect


def test_runs_in_a_thread(tmp_path: Path) -> None:
    from asiclab.capture.server import ThreadedCaptureServer

    chip = ScriptedChip([(5_000_000 * (k + 1), k % 112, True) for k in range(200)])
    with ThreadedCaptureServer(tmp_path / "t.journal", job_interval_s=None) as srv:
        emu = EmulatedLV06("127.0.0.1", srv.port, chip=chip)
        with emu.thread(max_shares=6) as t:
            done = threading.Event()
            while t.running and not done.wait(0.01):
                pass
        assert t.result.accepted == 6
    assert srv.to_dataset().sizes["event"] == 6


def test_ticket_difficulty_follows_the_pool_difficulty(tmp_path: Path) -> None:
    import time

    from asiclab.capture.server import ThreadedCaptureServer

    with pytest.raises(EmulatorError, match="ticket_per_pool"):
        EmulatedLV06("127.0.0.1", 1, chip=SimulatedChip(1), ticket_per_pool=0.0)
    with pytest.raises(EmulatorError, match="set_ticket_difficulty"):
        EmulatedLV06("127.0.0.1", 1, chip=ScriptedChip([]), ticket_per_pool=1.0)
    chip = SimulatedChip(2, ticket_difficulty=256.0)
    with ThreadedCaptureServer(tmp_path / "f.journal", job_interval_s=None) as srv:
        emu = EmulatedLV06("127.0.0.1", srv.port, chip=chip, ticket_per_pool=2.0**23)
        with emu.thread(duration_s=20) as t:
            deadline = time.monotonic() + 10
            while chip.ticket_difficulty != 8.0 and time.monotonic() < deadline:
                time.sleep(0.01)  # the suggested 2**-20 sets ticket 8
            assert chip.ticket_difficulty == 8.0
            srv.step(b"x", 2.0**-18)
            while chip.ticket_difficulty != 32.0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert chip.ticket_difficulty == 32.0
            assert emu.handle.stats()["pool_difficulty"] == 2.0**-18
            emu.stop()
        assert t.error is None
