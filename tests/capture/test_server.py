"""Tests of the Stratum v1 capture server: protocol, validation, error codes, limits, fuzzing,
and recovery after ``kill -9``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asiclab import dataset
from asiclab.capture.journal import read_jobs, read_journal, recover, recover_to_file
from asiclab.capture.server import UNATTRIBUTED, StratumCaptureServer, ThreadedCaptureServer
from asiclab.devices.stratum_client import ClientJob, StratumClient
from asiclab.protocol import mining
from asiclab.protocol.stratum import StratumError

TRIVIAL = 2.0**-40  # every hash meets it (target capped at 2**256 - 1)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


class Raw:
    """Line-level client for protocol tests (sends exactly what it is given)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.notifications: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, port: int) -> Raw:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    def send(self, msg: dict[str, Any] | bytes) -> None:
        data = msg if isinstance(msg, bytes) else json.dumps(msg).encode() + b"\n"
        self.writer.write(data)

    async def recv(self, timeout: float = 10.0) -> dict[str, Any] | None:
        """Next reply (notifications are collected aside); None at EOF."""
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            if not line:
                return None
            msg = json.loads(line)
            if msg.get("method"):
                self.notifications.append(msg)
                continue
            return msg

    async def call(self, mid: int, method: str, params: list[Any]) -> dict[str, Any] | None:
        self.send({"id": mid, "method": method, "params": params})
        return await self.recv()

    async def eof(self, timeout: float = 10.0) -> bool:
        """Read until the server closes; True if it did within the timeout."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), timeout):
                pass
        except (TimeoutError, ConnectionError):
            return False
        return True

    async def collect(self, n: int, timeout: float = 10.0) -> None:
        """Read until ``n`` notifications were received."""
        while len(self.notifications) < n:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            assert line, "connection closed"
            msg = json.loads(line)
            assert msg.get("method"), msg
            self.notifications.append(msg)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def share_for(client: StratumClient, job: ClientJob, en2: int, *, vbits: int = 0,
              valid: bool = True, difficulty: float | None = None) -> tuple[str, str, str, str]:
    """A share on ``job`` found by a real search: (extranonce2, ntime, nonce, version_bits)."""
    en2_b = en2.to_bytes(client.extranonce2_size, "big")
    prefix = job.header_prefix(client.extranonce1, en2_b, vbits)
    d = job.difficulty if difficulty is None else difficulty
    if valid:
        hit = mining.find_nonce(prefix, d)
        assert hit is not None
        nonce = hit.nonce
    else:
        nonce = next(n for n in range(1 << 20) if not mining.meets_difficulty(
            mining.sha256d(prefix + n.to_bytes(4, "little")), d))
    return en2_b.hex(), f"{job.ntime:08x}", f"{nonce:08x}", f"{vbits:08x}"


async def wait_until(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- pure helpers


def test_refuses_lan_without_opt_in(tmp_path: Path) -> None:
    with pytest.raises(StratumError, match="allow_lan"):
        StratumCaptureServer(tmp_path / "a.journal", host="0.0.0.0")
    with pytest.raises(StratumError, match="difficulty"):
        StratumCaptureServer(tmp_path / "b.journal", difficulty=-1)
    with pytest.raises(StratumError, match="max_line_bytes"):
        StratumCaptureServer(tmp_path / "c.journal", max_line_bytes=10)
    # LAN with the explicit option constructs (it is not started here: tests bind loopback only)
    srv = StratumCaptureServer(tmp_path / "d.journal", host="0.0.0.0", allow_lan=True)
    srv.journal.close()


# --------------------------------------------------------------------------- validation


def test_share_verification_agrees_with_the_mining_reference(tmp_path: Path) -> None:
    """The server's header rebuild must match asiclab.protocol.mining.verify_share exactly."""

    async def main() -> None:
        async with StratumCaptureServer(tmp_path / "c.journal", job_interval_s=None) as srv:
            srv.new_job(payload=b"known-answer")
            client = await StratumClient("127.0.0.1", srv.port, worker="w",
                                         suggest_difficulty=2.0**-18).connect()
            await wait_until(lambda: client.job is not None and client.job.difficulty < 1)
            job = client.job
            assert job is not None
            results = []
            for i, vbits in enumerate((0, 0x00002000, 0x1FFFE000 & 0x0BADE000)):
                en2, ntime, nonce, vb = share_for(client, job, 100 + i, vbits=vbits)
                results.append(await client.submit(job.job_id, en2, ntime, nonce, vb))
            await client.close()
            assert all(r.accepted for r in results), results
            assert client.version_mask == 0x1FFFE000
            en1 = client.extranonce1

        c = read_journal(tmp_path / "c.journal")
        jobs = {j["job_id"]: j for j in read_jobs(tmp_path / "c.journal")}
        assert c.events["t_host_ns"].size == 3
        for k in range(3):
            j = jobs[c.events["job_id"][k]]
            assert j["payload"] == b"known-answer".hex()
            ref = mining.verify_share(
                version=j["version"], prevhash=j["prevhash"], ntime=c.events["ntime"][k],
                nbits=j["nbits"], nonce=int(c.events["nonce"][k]), coinb1=j["coinb1"],
                extranonce1=en1, extranonce2=c.events["extranonce2"][k], coinb2=j["coinb2"],
                merkle_branch=j["merkle_branch"], version_bits=int(c.events["version_bits"][k]),
                version_mask=0x1FFFE000)
            assert c.events["difficulty"][k] == ref.difficulty
            assert ref.difficulty >= 2.0**-18
            assert c.events["pool_difficulty"][k] == 2.0**-18

    run(main())


def test_error_codes_20_to_25_are_answered_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "codes.journal"

    async def main() -> dict[str, int]:
        async with StratumCaptureServer(path, job_interval_s=None, difficulty=1.0,
                                        accept_suggested_difficulty=True) as srv:
            # 25: submit before subscribing
            raw = await Raw.open(srv.port)
            r = await raw.call(1, "mining.submit", ["w", "1", "00" * 8, "00000000", "00000000"])
            assert r is not None and r["error"][0] == 25 and r["result"] is None
            # 24: subscribed, but the worker is not authorized on this connection
            await raw.call(2, "mining.subscribe", ["probe/1"])
            r = await raw.call(3, "mining.submit", ["w", "1", "00" * 8, "00000000", "00000000"])
            assert r is not None and r["error"][0] == 24
            # 20: not a list of 5-6 parameters
            r = await raw.call(4, "mining.submit", {"worker": "w"})
            assert r is not None and r["error"][0] == 20
            await raw.close()

            client = await StratumClient("127.0.0.1", srv.port, worker="w",
                                         suggest_difficulty=2.0**-20).connect()
            await wait_until(lambda: client.job is not None and client.job.difficulty < 1)
            job = client.job
            assert job is not None
            en2, ntime, nonce, vb = share_for(client, job, 1)
            res = {}
            res["ok"] = await client.submit(job.job_id, en2, ntime, nonce, vb)
            res["dup"] = await client.submit(job.job_id, en2, ntime, nonce, vb)       # 22
            res["unknown"] = await client.submit("nope", en2, ntime, nonce, vb)       # 21
            bad = share_for(client, job, 2, valid=False)
            res["low"] = await client.submit(job.job_id, *bad)                        # 23
            res["malformed"] = await client.submit(job.job_id, "zz", ntime, nonce)    # 20
            res["mask"] = await client.submit(job.job_id, en2, ntime, nonce, "00000001")  # 20
            srv.new_job(clean=True)  # the old job becomes stale
            en2b, ntimeb, nonceb, vbb = share_for(client, job, 3)
            res["stale"] = await client.submit(job.job_id, en2b, ntimeb, nonceb, vbb)  # 21
            await client.close()
            assert res["ok"].accepted and res["ok"].error_code == 0
            assert res["dup"].error_code == 22
            assert res["unknown"].error_code == 21 and "not found" in res["unknown"].message
            assert res["low"].error_code == 23
            assert res["malformed"].error_code == 20
            assert res["mask"].error_code == 20 and "mask" in res["mask"].message
            assert res["stale"].error_code == 21 and "Stale" in res["stale"].message
            return dict(srv.stats)

    stats = run(main())
    assert stats["accepted"] == 1 and stats["submits"] == 10
    ds = recover(path)
    dataset.validate_capture(ds)
    codes = ds["error_code"].values.tolist()
    assert codes == [25, 24, 20, 0, 22, 21, 23, 20, 20, 21]
    assert ds["valid"].values.tolist() == [c == 0 for c in codes]
    names = ds["device_name"].values.tolist()
    dev = ds["device_index"].values
    assert [names[i] for i in dev[:3]] == [UNATTRIBUTED] * 3
    assert {names[i] for i in dev[3:]} == {"w"}
    low = codes.index(23)
    assert ds["difficulty"].values[low] < ds["pool_difficulty"].values[low] == 2.0**-20
    assert np.isnan(ds["difficulty"].values[codes.index(21)])


def test_difficulty_and_version_rolling_negotiation(tmp_path: Path) -> None:
    async def main() -> None:
        async with StratumCaptureServer(tmp_path / "a.journal", job_interval_s=None,
                                        min_difficulty=2.0**-30) as srv:
            raw = await Raw.open(srv.port)
            r = await raw.call(1, "mining.configure", [["version-rolling", "minimum-difficulty"],
                                                       {"version-rolling.mask": "00ffff00"}])
            assert r is not None
            assert r["result"] == {"version-rolling": True, "version-rolling.mask": "00ffe000",
                                   "minimum-difficulty": False}
            r = await raw.call(2, "mining.subscribe", ["x/1"])
            assert r is not None and len(bytes.fromhex(r["result"][1])) == 4
            assert r["result"][2] == 8
            r = await raw.call(3, "mining.authorize", ["dev", "x"])
            assert r is not None and r["result"] is True
            r = await raw.call(4, "mining.suggest_difficulty", [2.0**-35])
            assert r is not None and r["result"] is True
            await raw.collect(4)
            diffs = [m["params"][0] for m in raw.notifications
                     if m["method"] == "mining.set_difficulty"]
            assert diffs == [256.0, 2.0**-30]  # default first, then the clamped suggestion
            # set_difficulty precedes the notify it applies to
            kinds = [m["method"] for m in raw.notifications]
            assert kinds == ["mining.set_difficulty", "mining.notify"] * 2
            r = await raw.call(5, "mining.suggest_difficulty", ["high"])
            assert r is not None and r["error"][0] == 20
            r = await raw.call(6, "mining.extranonce.subscribe", [])
            assert r is not None and r["result"] is True
            await raw.close()

        async with StratumCaptureServer(tmp_path / "b.journal", job_interval_s=None,
                                        difficulty=0.5,
                                        accept_suggested_difficulty=False) as srv:
            client = await StratumClient("127.0.0.1", srv.port, worker="w",
                                         suggest_difficulty=2.0**-20).connect()
            job = await client.wait_for_job()
            await asyncio.sleep(0.05)
            assert job.difficulty == 0.5 and client.difficulty == 0.5
            await client.close()

    run(main())


def test_jobs_on_a_timer_and_on_demand_with_payload(tmp_path: Path) -> None:
    path = tmp_path / "jobs.journal"

    async def main() -> None:
        async with StratumCaptureServer(path, job_interval_s=0.1) as srv:
            client = await StratumClient("127.0.0.1", srv.port, worker="w",
                                         suggest_difficulty=TRIVIAL).connect()
            first = await client.wait_for_job()
            await wait_until(lambda: client.job is not None and
                             int(client.job.job_id, 16) >= int(first.job_id, 16) + 2)
            assert client.job is not None and not client.job.clean  # timer jobs keep old ones
            # an older timer job is still valid
            en2, ntime, nonce, vb = share_for(client, first, 1)
            assert (await client.submit(first.job_id, en2, ntime, nonce, vb)).accepted
            jid = srv.new_job(payload=b"\x07input-7", clean=True)
            await wait_until(lambda: client.job is not None and client.job.job_id == jid)
            job = client.job
            assert job is not None and job.clean
            assert b"\x07input-7".hex() in job.coinb2
            en2, ntime, nonce, vb = share_for(client, job, 2)
            assert (await client.submit(job.job_id, en2, ntime, nonce, vb)).accepted
            assert (await client.submit(first.job_id, *share_for(client, first, 3))
                    ).error_code == 21
            await client.close()
            with pytest.raises(StratumError, match="payload"):
                srv.new_job(payload="text")  # type: ignore[arg-type]

    run(main())
    ds = recover(path)
    jobs = {j["job_id"]: j for j in read_jobs(path)}
    payloads = [jobs[j]["payload"] for j in ds["job_id"].values.tolist()]
    assert payloads[1] == b"\x07input-7".hex()
    assert ds["valid"].values.tolist() == [True, True, False]


def test_many_miners_map_worker_names_to_devices(tmp_path: Path) -> None:
    path = tmp_path / "many.journal"

    async def miner(port: int, worker: str, n: int, base: int) -> int:
        client = await StratumClient("127.0.0.1", port, worker=worker,
                                     suggest_difficulty=TRIVIAL).connect()
        await wait_until(lambda: client.job is not None and client.job.difficulty < 1e-6)
        ok = 0
        for i in range(n):
            job = client.job
            assert job is not None
            res = await client.submit(job.job_id, *share_for(client, job, base + i))
            ok += res.accepted
        await client.close()
        return ok

    async def main() -> list[int]:
        async with StratumCaptureServer(path, job_interval_s=None) as srv:
            return list(await asyncio.gather(
                miner(srv.port, "rig-a", 7, 0), miner(srv.port, "rig-b", 5, 0),
                miner(srv.port, "rig-c", 3, 0), miner(srv.port, "rig-a", 4, 1000)))

    assert run(main()) == [7, 5, 3, 4]
    ds = recover(path)
    names = ds["device_name"].values.tolist()
    assert sorted(names) == ["rig-a", "rig-b", "rig-c"]
    counts = {names[d]: int(n) for d, n in zip(*np.unique(ds["device_index"].values,
                                                          return_counts=True), strict=True)}
    assert counts == {"rig-a": 11, "rig-b": 5, "rig-c": 3}
    assert bool(ds["valid"].all())


def test_duplicate_memory_is_bounded_by_job_rotation(tmp_path: Path) -> None:
    async def main() -> tuple[int, int, int]:
        async with StratumCaptureServer(tmp_path / "r.journal", job_interval_s=None,
                                        max_shares_per_job=10, max_jobs=2) as srv:
            client = await StratumClient("127.0.0.1", srv.port, worker="w",
                                         suggest_difficulty=TRIVIAL).connect()
            await wait_until(lambda: client.job is not None and client.job.difficulty < 1e-6)
            accepted = 0
            for i in range(60):
                job = client.job
                assert job is not None
                accepted += (await client.submit(job.job_id, *share_for(client, job, i))
                             ).accepted
            kept = sum(len(j.shares) for j in srv._jobs.values())
            await client.close()
            return accepted, kept, srv.stats["job_rotations"]

    accepted, kept, rotations = run(main())
    assert accepted == 60
    assert kept <= 2 * 10
    assert rotations >= 5


def test_a_bug_in_validation_still_records_the_submission(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from asiclab.capture import server as stratum_server

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("simulated bug")

    path = tmp_path / "bug.journal"

    async def main() -> None:
        async with StratumCaptureServer(path, job_interval_s=None) as srv:
            client = await StratumClient("127.0.0.1", srv.port, worker="w",
                                         suggest_difficulty=TRIVIAL).connect()
            await wait_until(lambda: client.job is not None and client.job.difficulty < 1e-6)
            job = client.job
            assert job is not None
            monkeypatch.setattr(stratum_server._Connection, "_judge", broken)
            res = await client.submit(job.job_id, *share_for(client, job, 1))
            assert res.error_code == 20 and res.message == "Internal error"
            monkeypatch.undo()
            assert (await client.submit(job.job_id, *share_for(client, job, 2))).accepted
            await client.close()
            assert srv.stats["internal_errors"] == 1

    run(main())
    c = read_journal(path)
    assert c.events["error_code"].tolist() == [20, 0]
    assert any(n["kind"] == "internal_error" for n in c.notes)


# --------------------------------------------------------------------------- limits / abuse


def test_oversized_line_gets_an_error_and_a_disconnect(tmp_path: Path) -> None:
    async def main() -> None:
        async with StratumCaptureServer(tmp_path / "a.journal", max_line_bytes=512) as srv:
            raw = await Raw.open(srv.port)
            raw.send(b'{"id":1,"method":"mining.subscribe","params":["' + b"A" * 2000 + b'"]}\n')
            r = await raw.recv()
            assert r is not None and r["error"][0] == 20 and "too long" in r["error"][1]
            assert await raw.eof()
            raw2 = await Raw.open(srv.port)  # an endless line without newline: same
            raw2.send(b"B" * 4000)
            r = await raw2.recv()
            assert r is not None and "too long" in r["error"][1]
            assert await raw2.eof()
            ok = await Raw.open(srv.port)  # the server still serves others
            r = await ok.call(1, "mining.subscribe", ["fine/1"])
            assert r is not None and r["error"] is None
            await ok.close()
            assert srv.stats["abusive_disconnects"] == 2

    run(main())


def test_connection_limit(tmp_path: Path) -> None:
    async def main() -> None:
        async with StratumCaptureServer(tmp_path / "a.journal", max_connections=2) as srv:
            a, b = await Raw.open(srv.port), await Raw.open(srv.port)
            assert (await a.call(1, "mining.subscribe", [])) is not None
            assert (await b.call(1, "mining.subscribe", [])) is not None
            c = await Raw.open(srv.port)
            assert await c.eof()
            assert srv.stats["refused"] == 1
            await a.close()
            await wait_until(lambda: srv.connections == 1)
            d = await Raw.open(srv.port)
            assert (await d.call(1, "mining.subscribe", [])) is not None
            for x in (b, c, d):
                await x.close()

    run(main())


def test_rate_limit_delays_but_never_drops(tmp_path: Path) -> None:
    async def main() -> None:
        async with StratumCaptureServer(tmp_path / "a.journal", max_requests_per_s=200,
                                        request_burst=5) as srv:
            raw = await Raw.open(srv.port)
            raw.send(b"".join(json.dumps({"id": i, "method": "mining.ping", "params": []}
                                         ).encode() + b"\n" for i in range(60)))
            ids = [(await raw.recv())["id"] for _ in range(60)]  # type: ignore[index]
            assert ids == list(range(60))
            assert srv.stats["throttled"] >= 1
            await raw.close()

    run(main())


def test_malformed_messages_then_disconnect(tmp_path: Path) -> None:
    async def main() -> None:
        async with StratumCaptureServer(tmp_path / "a.journal", max_protocol_errors=3) as srv:
            raw = await Raw.open(srv.port)
            raw.send(b"not json\n[1,2]\n{\"id\":5,\"method\":\"mining.fly\",\"params\":[]}\n"
                     b"\xff\xfe\n{}\n{}\n{}\n")
            replies = []
            while (r := await raw.recv()) is not None:
                replies.append(r)
            assert 4 <= len(replies) <= 5
            assert all(r["error"][0] == 20 for r in replies)
            assert replies[0]["error"][1] == "Parse error"
            assert replies[2]["id"] == 5 and replies[2]["error"][1] == "Unknown method"

    run(main())


def test_handshake_timeout_closes_silent_connections(tmp_path: Path) -> None:
    async def main() -> None:
        async with StratumCaptureServer(tmp_path / "a.journal",
                                        handshake_timeout_s=0.2) as srv:
            raw = await Raw.open(srv.port)
            assert await raw.eof(timeout=10)
            assert srv.connections == 0

    run(main())


# --------------------------------------------------------------------------- threaded wrapper


def test_threaded_server_for_notebooks(tmp_path: Path) -> None:
    path = tmp_path / "t.journal"
    with ThreadedCaptureServer(path, job_interval_s=None) as srv:
        assert srv.host == "127.0.0.1" and srv.port > 0

        async def mine() -> list[bool]:
            client = await StratumClient("127.0.0.1", srv.port, worker="nb",
                                         suggest_difficulty=TRIVIAL).connect()
            await wait_until(lambda: client.job is not None and client.job.difficulty < 1e-6)
            out = []
            for i in range(3):
                job = client.job
                assert job is not None
                out.append((await client.submit(job.job_id, *share_for(client, job, i))
                            ).accepted)
                if i == 1:
                    jid = await asyncio.to_thread(srv.new_job, b"p", True)
                    await wait_until(lambda jid=jid: client.job is not None
                                     and client.job.job_id == jid)
            await client.close()
            return out

        assert run(mine()) == [True, True, True]
        partial = srv.to_dataset()  # while running
        assert partial.sizes["event"] == 3
        assert srv.stats["accepted"] == 3
        assert srv.capture(0.2, progress=False)["accepted"] == 3
    assert srv.stop() == path
    ds = srv.to_dataset()
    assert ds.attrs["journal_complete"] == 1
    assert ds.sizes["event"] == 3


# --------------------------------------------------------------------------- fuzzing

_METHODS = ["mining.subscribe", "mining.authorize", "mining.configure",
            "mining.suggest_difficulty", "mining.extranonce.subscribe", "mining.submit",
            "mining.notify", "mining.set_difficulty", "client.reconnect", ""]
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=6), kids,
                                                              max_size=4),
    max_leaves=12)
_hexish = st.text(alphabet="0123456789abcdefABCDEFxyz -", min_size=0, max_size=18)
_submit = st.builds(
    lambda mid, w, j, e, t, n, v: {"id": mid, "method": "mining.submit",
                                   "params": [w, j, e, t, n] + ([v] if v is not None else [])},
    st.integers(0, 10**6), st.sampled_from(["mallory", "x", "", "w"]) | st.text(max_size=8),
    st.sampled_from(["1", "2", "ff", "0"]) | st.text(max_size=4), _hexish, _hexish, _hexish,
    st.none() | _hexish)
_rpc = st.builds(lambda mid, m, p: {"id": mid, "method": m, "params": p},
                 _json, st.sampled_from(_METHODS) | st.text(max_size=10), _json)
_line = st.one_of(
    _rpc.map(lambda m: json.dumps(m).encode() + b"\n"),
    _submit.map(lambda m: json.dumps(m).encode() + b"\n"),
    st.binary(max_size=200).map(lambda b: b + b"\n"),
    st.integers(600, 3000).map(lambda n: b"[" * n + b"\n"),           # deep / oversized nesting
    st.integers(1100, 5000).map(lambda n: b'{"id":1,"x":"' + b"a" * n),  # oversized, no newline
    st.just(b'{"id":1,"method":"mining.subscribe","params":["h/1"]}\n'
            b'{"id":2,"method":"mining.authorize","params":["mallory","x"]}\n'),
    st.just(b"\n\r\n \n"),
)


class HonestMiner:
    """Keeps mining at trivial difficulty in its own thread until stopped."""

    def __init__(self, port: int, worker: str) -> None:
        self.port, self.worker = port, worker
        self.sent: list[tuple[str, int]] = []
        self.answers: list[Any] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._mine())
        except BaseException as exc:  # reported by the test
            self.error = exc

    async def _mine(self) -> None:
        client = await StratumClient("127.0.0.1", self.port, worker=self.worker,
                                     suggest_difficulty=TRIVIAL).connect()
        await wait_until(lambda: client.job is not None and client.job.difficulty < 1e-6)
        i = 0
        while not self.stop.is_set():
            job = client.job
            assert job is not None
            en2, ntime, nonce, vb = share_for(client, job, i)
            self.sent.append((en2, int(nonce, 16)))
            self.answers.append(await client.submit(job.job_id, en2, ntime, nonce, vb))
            i += 1
            await asyncio.sleep(0.002)
        await client.close()


def test_fuzz_hostile_clients_while_an_honest_miner_mines(tmp_path: Path) -> None:
    path = tmp_path / "fuzz.journal"
    with ThreadedCaptureServer(path, job_interval_s=None, max_line_bytes=1024,
                               max_requests_per_s=2000, max_connections=32) as srv:
        honest = HonestMiner(srv.port, "honest-7f3a")
        honest.thread.start()
        deadline = time.monotonic() + 10
        while len(honest.answers) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)

        @settings(max_examples=300, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(lines=st.lists(_line, min_size=1, max_size=6))
        def hostile(lines: list[bytes]) -> None:
            with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
                with contextlib.suppress(OSError):
                    s.sendall(b"".join(lines))
                    s.shutdown(socket.SHUT_WR)
                    while s.recv(65536):  # the server answers or closes; never hangs
                        pass

        hostile()
        n_before_stop = len(honest.answers)
        honest.stop.set()
        honest.thread.join(30)
        assert honest.error is None, honest.error
        # still serving after the abuse
        probe = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        probe.sendall(b'{"id":9,"method":"mining.subscribe","params":["after/1"]}\n')
        assert b'"id":9' in probe.recv(4096)
        probe.close()
        stats = srv.stats
    assert n_before_stop >= 5
    assert honest.answers and all(a.accepted for a in honest.answers), \
        [a for a in honest.answers if not a.accepted][:3]
    c = read_journal(path)
    assert c.complete
    names = [d["name"] for d in c.devices]
    dev = names.index("honest-7f3a")
    mine = c.events["device_index"] == dev
    keys = list(zip(c.events["extranonce2"][mine].tolist(),
                    c.events["nonce"][mine].tolist(), strict=True))
    assert sorted(keys) == sorted(honest.sent)  # every honest share exactly once
    assert bool(c.events["valid"][mine].all())
    assert int((c.events["error_code"] != 0).sum()) > 0  # hostile submissions were recorded
    # whatever the hostile clients sent, the capture saves and reopens as a valid dataset
    saved = dataset.open_capture(recover_to_file(path))
    assert saved.sizes["event"] == c.events["t_host_ns"].size
    assert stats["connections"] >= 250 and stats["protocol_errors"] > 0
    assert stats["abusive_disconnects"] > 0


# --------------------------------------------------------------------------- kill -9

_SERVER_SCRIPT = """
import asyncio, json, sys
from asiclab.capture.server import StratumCaptureServer

async def main():
    srv = StratumCaptureServer(sys.argv[1], job_interval_s=None, flush_interval_s=0.1)
    await srv.start()
    print(json.dumps({"port": srv.port}), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_kill_9_during_capture_then_recover(tmp_path: Path) -> None:
    path = tmp_path / "killed.journal"
    proc = subprocess.Popen([sys.executable, "-c", _SERVER_SCRIPT, str(path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = json.loads(proc.stdout.readline())["port"]

        async def main() -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
            client = await StratumClient("127.0.0.1", port, worker="victim",
                                         suggest_difficulty=TRIVIAL).connect()
            await wait_until(lambda: client.job is not None and client.job.difficulty < 1e-6)
            job = client.job
            assert job is not None
            acked: set[tuple[str, int]] = set()
            sent: set[tuple[str, int]] = set()
            for i in range(200):
                en2, ntime, nonce, vb = share_for(client, job, i)
                sent.add((en2, int(nonce, 16)))
                assert (await client.submit(job.job_id, en2, ntime, nonce, vb)).accepted
                acked.add((en2, int(nonce, 16)))
            # wait until all acknowledged shares are on disk (flushed), reading the live file
            await wait_until(lambda: read_journal(path).events["t_host_ns"].size >= 200, 20)
            flushed = read_journal(path)
            on_disk = set(zip(flushed.events["extranonce2"].tolist(),
                              flushed.events["nonce"].tolist(), strict=True))
            # more shares in flight while the process is killed
            futs = []
            for i in range(200, 400):
                en2, ntime, nonce, vb = share_for(client, job, i)
                sent.add((en2, int(nonce, 16)))
                with contextlib.suppress(StratumError):  # once the kill is noticed
                    futs.append(client.submit_nowait(job.job_id, en2, ntime, nonce, vb))
                if i == 300:
                    os.kill(proc.pid, signal.SIGKILL)
            await asyncio.gather(*futs, return_exceptions=True)
            with contextlib.suppress(Exception):
                await client.close()
            assert acked <= on_disk
            return on_disk, sent

        on_disk, sent = run(main())
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ds = recover(path)
    c = read_journal(path)
    keys = list(zip(c.events["extranonce2"].tolist(), c.events["nonce"].tolist(), strict=True))
    assert len(keys) == len(set(keys))  # nothing twice
    assert on_disk <= set(keys)  # everything flushed before the kill is recovered
    assert set(keys) <= sent  # nothing invented
    assert ds.sizes["event"] == len(keys)
    assert ds.attrs["journal_complete"] == 0
    assert ds.attrs["source_kind"] == "emulated"  # the test client's agent is asiclab-*
    # a record torn mid-write at the end is tolerated
    torn = tmp_path / "torn.journal"
    torn.write_bytes(path.read_bytes() + b'["E",17000000000,5,0,-1,"1",12')
    ds2 = recover(torn)
    assert ds2.sizes["event"] == len(keys)
    assert ds2.attrs["journal_torn_records"] >= 1


# --------------------------------------------------------------------------- issue 7: throttling


def _submit_lines(client: StratumClient, job: ClientJob, start: int, n: int,
                  first_id: int = 1000) -> bytes:
    """``n`` distinct valid ``mining.submit`` lines (trivial difficulty) as one byte string."""
    lines = []
    for i in range(n):
        en2, ntime, nonce, _vb = share_for(client, job, start + i)
        lines.append(json.dumps({"id": first_id + i, "method": "mining.submit",
                                 "params": [client.worker, job.job_id, en2, ntime, nonce]}))
    return ("\n".join(lines) + "\n").encode()


async def _trivial_client(port: int, worker: str = "rig") -> StratumClient:
    client = await StratumClient("127.0.0.1", port, worker=worker, version_rolling=False,
                                 suggest_difficulty=TRIVIAL).connect()
    await wait_until(lambda: client.job is not None and client.job.difficulty < 1e-6)
    return client


def test_throttled_lines_are_all_journalled_when_the_client_closes(tmp_path: Path) -> None:
    """600 shares in one write, close 0.5 s later: every one is recorded with its verdict
    (the 100 lines/s limit holds most of them back when the connection goes away)."""
    path = tmp_path / "burst.journal"

    async def main() -> None:
        async with StratumCaptureServer(path, job_interval_s=None) as srv:
            client = await _trivial_client(srv.port)
            assert client.job is not None and client._writer is not None
            client._writer.write(_submit_lines(client, client.job, 0, 600))
            await client._writer.drain()
            await asyncio.sleep(0.5)
            # a reset, not a polite close: nothing more is read from this socket
            sock = client._writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00"
                            b"\x00\x00\x00\x00")
            await client.close()
            await asyncio.sleep(0.2)
            assert srv.stats["throttled"] >= 1

    run(main())
    ds = recover(path)
    assert ds.sizes["event"] == 600
    assert bool(ds["valid"].all()) and set(ds["error_code"].values.tolist()) == {0}
    assert int(ds.attrs["server_throttled"]) >= 1
    assert int(ds.attrs["server_delayed_lines"]) >= 300
    assert int(ds.attrs["server_refused_lines"]) == 0


def test_lines_are_stamped_at_socket_read_not_when_processed(tmp_path: Path) -> None:
    """Lines sent while the server is still working through a throttled backlog keep the time
    they arrived; the processing delay is recorded per event; op_index follows receipt."""
    path = tmp_path / "late.journal"
    marks: dict[str, int] = {}

    async def main() -> None:
        async with StratumCaptureServer(path, job_interval_s=None, max_requests_per_s=200,
                                        request_burst=20) as srv:
            client = await _trivial_client(srv.port)
            assert client.job is not None and client._writer is not None and \
                client._reader is not None
            client._task.cancel()  # type: ignore[union-attr]  # read the replies here
            with contextlib.suppress(asyncio.CancelledError):
                await client._task  # type: ignore[misc]
            client._writer.write(_submit_lines(client, client.job, 0, 300, first_id=1000))
            await client._writer.drain()
            await wait_until(lambda: srv.stats["throttled"] >= 1)
            await asyncio.sleep(0.1)
            dev = srv.journal.device_index("rig")
            assert dev is not None
            op = srv.journal.append_op(dev, float("nan"), float("nan"))
            marks["op_start"] = int(read_journal_op_start(srv, op))
            marks["late_sent"] = time.time_ns()
            client._writer.write(_submit_lines(client, client.job, 300, 10, first_id=5000))
            await client._writer.drain()
            seen: set[int] = set()
            while len(seen) < 310:
                msg = json.loads(await asyncio.wait_for(client._reader.readline(), 30))
                if msg.get("id") is not None:
                    seen.add(int(msg["id"]))
                if msg.get("id") == 1250:  # a reply well after the late lines were sent
                    marks["reply_1250"] = time.time_ns()
            srv.journal.end_op(op)
            client._writer.close()

    run(main())
    ds = recover(path)
    assert ds.sizes["event"] == 310
    t = ds["t_host_ns"].values
    late = t[-10:]
    # the late lines arrived before the server answered line 1250 (sent before them)
    assert late.max() < marks["reply_1250"] and late.min() >= marks["late_sent"]
    delay = ds["processing_delay_ns"].values
    assert np.all(delay >= 0) and delay[-20:].min() > delay[:5].max()
    assert ds["processing_delay_ns"].attrs["units"] == "ns"
    # op_index follows the receive time: the first 300 arrived before the point began
    op = ds["op_index"].values
    assert np.all(op[t < marks["op_start"]] == -1)
    assert np.all(op[t >= marks["op_start"]] == 0) and (op == 0).sum() == 10


def read_journal_op_start(srv: StratumCaptureServer, op: int) -> int:
    srv.journal.flush()
    return int(read_journal(srv.journal_path).ops["t_start_ns"][op])


def test_job_seed_is_recorded_and_fresh_unless_given(tmp_path: Path) -> None:
    async def first_prevhash(name: str, seed: int | None) -> tuple[str, Any]:
        async with StratumCaptureServer(tmp_path / name, job_interval_s=None, seed=seed):
            pass
        ds = recover(tmp_path / name)
        return read_jobs(tmp_path / name)[0]["prevhash"], ds.attrs["seed"]

    async def main() -> list[tuple[str, Any]]:
        return [await first_prevhash(f"{k}.journal", s)
                for k, s in enumerate([None, None, 3, 3])]

    (p0, s0), (p1, s1), (p2, s2), (p3, s3) = run(main())
    assert p0 != p1 and s0 != s1 and s0 != "none" and isinstance(s0, int)
    assert p2 == p3 and s2 == s3 == 3


def test_unknown_agents_are_labelled_unknown(tmp_path: Path) -> None:
    path = tmp_path / "cpuminer.journal"

    async def main() -> None:
        async with StratumCaptureServer(path, job_interval_s=None) as srv:
            client = await StratumClient("127.0.0.1", srv.port, worker="cpuminer-1",
                                         agent="cpuminer/2.5.1", version_rolling=False,
                                         suggest_difficulty=TRIVIAL).connect()
            await wait_until(lambda: client.job is not None and client.job.difficulty < 1e-6)
            assert client.job is not None
            assert (await client.submit(client.job.job_id, *share_for(client, client.job, 1)[:3]
                                        )).accepted
            await client.close()

    run(main())
    ds = recover(path)
    assert ds.attrs["source_kind"] == "unknown"
    assert ds["device_source_kind"].values.tolist() == ["unknown"]
    assert "cpuminer/2.5.1" in ds.attrs["firmware"]
    dataset.validate_capture(ds)


def test_lines_waiting_for_the_rate_limit_are_judged_as_of_their_receipt(tmp_path: Path) -> None:
    """A clean job issued while received shares wait does not make them stale: they arrived
    while their job was current (shares sent after it are stale, as usual)."""
    path = tmp_path / "retire.journal"

    async def main() -> None:
        async with StratumCaptureServer(path, job_interval_s=None, max_requests_per_s=200,
                                        request_burst=20) as srv:
            client = await _trivial_client(srv.port)
            assert client.job is not None and client._writer is not None
            old_job = client.job
            client._writer.write(_submit_lines(client, old_job, 0, 200))
            await client._writer.drain()
            await wait_until(lambda: srv.stats["throttled"] >= 1)
            await asyncio.sleep(0.05)
            srv.new_job(clean=True)
            await wait_until(lambda: client.job is not old_job)
            client._writer.write(_submit_lines(client, old_job, 200, 5, first_id=9000))
            await client._writer.drain()
            await wait_until(lambda: srv.stats["submits"] == 205, timeout=30)
            await client.close()

    run(main())
    codes = recover(path)["error_code"].values.tolist()
    assert codes[:200] == [0] * 200 and codes[200:] == [21] * 5


def test_step_switches_difficulty_and_job_together_from_another_thread(tmp_path: Path) -> None:
    path = tmp_path / "step.journal"
    d0, d1 = 2.0**-20, 2.0**-14

    async def main(srv: ThreadedCaptureServer) -> None:
        client = await StratumClient("127.0.0.1", srv.port, worker="w",
                                     suggest_difficulty=d0).connect()
        await wait_until(lambda: client.job is not None and client.job.difficulty == d0)
        old = client.job
        assert old is not None
        held = share_for(client, old, 1)  # found at d0, sent after the step: stale
        assert (await client.submit(old.job_id, *share_for(client, old, 2))).accepted
        jid = await asyncio.to_thread(srv.step, b"step-1", d1)  # the thread-safe API
        await wait_until(lambda: client.job is not None and client.job.job_id == jid)
        job = client.job
        assert job is not None and job.clean and job.difficulty == d1
        assert b"step-1".hex() in job.coinb2
        assert (await client.submit(old.job_id, *held)).error_code == 21
        # a share meeting d0 but not d1 on the new job is judged at d1
        for e in range(3, 1000):
            low = share_for(client, job, e, difficulty=d0)
            head = job.header_prefix(client.extranonce1, bytes.fromhex(low[0]), 0)
            if not mining.meets_difficulty(mining.sha256d(
                    head + int(low[2], 16).to_bytes(4, "little")), d1):
                break
        assert (await client.submit(job.job_id, *low)).error_code == 23
        assert (await client.submit(job.job_id, *share_for(client, job, 1 << 17))).accepted
        # a timer job keeps the step's payload
        await wait_until(lambda: client.job is not None and client.job.job_id != jid)
        assert client.job is not None and not client.job.clean
        assert b"step-1".hex() in client.job.coinb2
        await client.close()
        with pytest.raises(StratumError, match="difficulty"):
            srv.step(b"x", -1.0)

    with ThreadedCaptureServer(path, job_interval_s=0.3) as srv:
        run(main(srv))
    ds = recover(path)
    assert ds["valid"].values.tolist() == [True, False, False, True]
    assert ds["error_code"].values.tolist() == [0, 21, 23, 0]
    # a stale share has no job: it is recorded at the connection's difficulty
    np.testing.assert_array_equal(ds["pool_difficulty"].values, [d0, d1, d1, d1])
    jobs = {j["job_id"]: j for j in read_jobs(path)}
    assert [jobs[j]["payload"] for j in ds["job_id"].values.tolist()] == \
        [None, None, b"step-1".hex(), b"step-1".hex()]
    step_job = int(ds["job_id"].values[-1], 16)
    later = [j for j in read_jobs(path) if int(j["job_id"], 16) > step_job]
    assert later and all(j["payload"] == b"step-1".hex() for j in later)
