"""Tests of the CPU miner (host CPU mining SHA256d against the capture server)."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import vectors
from asiclab.capture.journal import read_jobs, read_journal
from asiclab.capture.server import StratumCaptureServer
from asiclab.devices.cpu_miner import AGENT, CPUMiner, CPUMinerError, search_worker
from asiclab.protocol import mining

# Header of the first share vector of ESP-Miner's test_mining.c (shared/reference/
# testvectors.json; copied in tests/vectors.py): its published nonce 0x0a029ed1 gives difficulty
# 683.5109367312982.
_PREFIX_HEX = {k: vectors.ESP_SHARE_FULL[k] for k in ("version", "merkle_root", "ntime", "nbits")}
_PREFIX_HEX["prevhash"] = vectors.ESP_SHARE_FULL["prevhash_notify"]


def test_search_worker_finds_exactly_the_reference_nonces() -> None:
    prefix = mining.header_prefix(**_PREFIX_HEX)
    d = 2.0**-24  # ~256 hashes per hit
    parent, child = mp.Pipe()
    th = threading.Thread(target=search_worker, args=(child,), daemon=True)
    th.start()
    parent.send(("work", 1, prefix, mining.target_from_difficulty(d), 0))
    hits: list[int] = []
    deadline = time.monotonic() + 30
    while (not hits or hits[-1] < 8192) and time.monotonic() < deadline:
        if parent.poll(0.1):
            msg = parent.recv()
            if msg[0] == "hit":
                assert msg[1] == 1
                hits.append(msg[2])
    # the published nonce at its own difficulty: start just before it
    parent.send(("work", 2, prefix, mining.target_from_difficulty(683.0), 0x0A029ED1 - 5))
    found = None
    while found is None and time.monotonic() < deadline:
        if parent.poll(0.1):
            msg = parent.recv()
            if msg[0] == "hit" and msg[1] == 2:
                found = msg[2]
    parent.send(("stop",))
    th.join(10)
    assert not th.is_alive()
    reference = [h.nonce for h in mining.iter_nonces(prefix, d, start=0, count=8192)]
    assert [h for h in hits if h < 8192] == reference
    assert len(reference) > 5
    assert found == 0x0A029ED1


def _run(tmp_path: Path, **kwargs: object) -> tuple[CPUMiner, Path]:
    path = tmp_path / "cpu.journal"

    async def main() -> CPUMiner:
        async with StratumCaptureServer(path, job_interval_s=0.3) as srv:
            miner = CPUMiner("127.0.0.1", srv.port, **kwargs)  # type: ignore[arg-type]
            await miner.run(20.0, max_shares=6)
            return miner

    return asyncio.run(main()), path


def test_cpu_miner_thread_mode(tmp_path: Path) -> None:
    miner, path = _run(tmp_path, mode="thread", suggest_difficulty=2.0**-18)
    assert miner.stats.submitted >= 6
    c = read_journal(path)
    assert c.devices[0]["model"] == "CPU"
    assert c.devices[0]["source_kind"] == "emulated"
    assert c.devices[0]["firmware"] == AGENT
    n = c.events["t_host_ns"].size
    assert n == miner.stats.submitted
    # shares are real: every one verified by the server (stale ones, if a job changed, say 21)
    codes = c.events["error_code"]
    assert set(codes.tolist()) <= {0, 21}
    assert int((codes == 0).sum()) == miner.stats.accepted >= 1
    assert np.all(c.events["difficulty"][codes == 0] >= 2.0**-18)
    assert miner.stats.hashes > 0 and miner.stats.hashrate > 0
    assert len(read_jobs(path)) >= 1


def test_cpu_miner_process_mode(tmp_path: Path) -> None:
    miner, path = _run(tmp_path, mode="process", suggest_difficulty=2.0**-18)
    assert miner.stats.accepted >= 1
    c = read_journal(path)
    assert c.events["t_host_ns"].size == miner.stats.submitted


def test_bad_parameters() -> None:
    with pytest.raises(CPUMinerError, match="mode"):
        CPUMiner("127.0.0.1", 1, mode="gpu")
    with pytest.raises(CPUMinerError, match="suggest_difficulty"):
        CPUMiner("127.0.0.1", 1, suggest_difficulty=0)
    with pytest.raises(CPUMinerError, match="cannot connect"):
        asyncio.run(CPUMiner("127.0.0.1", 1, mode="thread").run(1.0))
