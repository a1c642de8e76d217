"""CPU miner: the host CPU really mining SHA256d against the capture server.

A null control for the heartbeat statistics: the host CPU hashes (``hashlib``) at a steady rate,
so its shares form a Poisson process in hash count and, with a steady hashrate, in time -- real
silicon timing with no voltage edge, droop or core structure. Expected share rate
``hashrate / (difficulty * 2**32)``.

The search runs in a separate process by default (``mode="process"``: no GIL contention with a
capture server in the same Python process) or in a thread (``mode="thread"``). The asyncio side
speaks Stratum v1 (:class:`asiclab.devices.stratum_client.StratumClient`), hands each new job to
the search worker and submits every nonce the worker finds. Its agent string
(``asiclab-cpu-miner/0.1``) makes the capture server label the device ``emulated`` with model
``CPU``: a CPU is not an ASIC, and the capture must never pass for hardware data.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import math
import multiprocessing as mp
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from asiclab import AsiclabError
from asiclab.devices.stratum_client import ClientJob, StratumClient, StratumMiner
from asiclab.protocol import mining
from asiclab.protocol.stratum import StratumError

__all__ = ["AGENT", "CPUMiner", "CPUMinerError", "CPUMinerStats", "search_worker"]

AGENT = "asiclab-cpu-miner/0.1"
_POLL_EVERY = 4096  # nonces between checks for new work
_RATE_EVERY_S = 0.5  # hashrate reports [s]


class CPUMinerError(AsiclabError):
    """Wrong CPU-miner parameters or a failed search worker."""


def search_worker(conn: Connection) -> None:
    """Search loop of the worker (process or thread); talks over a ``multiprocessing`` pipe.

    Messages in: ``("work", work_id, prefix76, target, start)`` replaces the current work;
    ``("stop",)`` ends the loop. Messages out: ``("hit", work_id, nonce, t_mono_ns)`` per nonce
    whose header hash is ``<= target``; ``("done", work_id)`` when the nonce space is exhausted;
    ``("rate", hashes, seconds)`` every ~0.5 s.

    Parameters
    ----------
    conn : multiprocessing.connection.Connection
        Worker end of the pipe.
    """
    sha256 = hashlib.sha256
    from_bytes = int.from_bytes
    work: tuple[int, Any, bytes, int, int] | None = None
    nonce = 0
    hashes = 0
    t_rate = time.monotonic()
    while True:
        if work is None or conn.poll():
            msg = conn.recv()
            if msg[0] == "stop":
                conn.send(("rate", hashes, time.monotonic() - t_rate))
                return
            if msg[0] == "work":
                _, work_id, prefix, target, start = msg
                work = (work_id, sha256(prefix[:64]), prefix[64:], target, start)
                nonce = start
            continue
        work_id, mid, tail, target, _start = work
        stop = min(nonce + _POLL_EVERY, 1 << 32)
        for n in range(nonce, stop):
            h = mid.copy()
            h.update(tail + n.to_bytes(4, "little"))
            if from_bytes(sha256(h.digest()).digest(), "little") <= target:
                conn.send(("hit", work_id, n, time.monotonic_ns()))
        hashes += stop - nonce
        nonce = stop
        # In thread mode this loop shares the GIL with the miner's event loop: yield it after
        # every chunk, so that Stratum notifications and our hits are handled without delay.
        time.sleep(0)
        if nonce >= 1 << 32:
            conn.send(("done", work_id))
            work = None
        now = time.monotonic()
        if now - t_rate >= _RATE_EVERY_S:
            conn.send(("rate", hashes, now - t_rate))
            hashes = 0
            t_rate = now


@dataclass
class CPUMinerStats:
    """Counters of a CPU-miner run.

    Attributes
    ----------
    submitted, accepted : int
        Shares sent / accepted.
    rejected : collections.Counter
        Rejected shares by Stratum error code.
    hashes : int
        SHA256d computed by the worker.
    hash_seconds : float
        Time over which ``hashes`` were counted [s].
    jobs : int
        Jobs (work units) handed to the worker.
    """

    submitted: int = 0
    accepted: int = 0
    rejected: collections.Counter[int] = field(default_factory=collections.Counter)
    hashes: int = 0
    hash_seconds: float = 0.0
    jobs: int = 0

    @property
    def hashrate(self) -> float:
        """Measured hashrate [H/s] (NaN before the first report)."""
        return self.hashes / self.hash_seconds if self.hash_seconds > 0 else math.nan


class CPUMiner(StratumMiner):
    """Host-CPU SHA256d miner speaking Stratum v1 to the capture server.

    ``stop()`` and ``thread()`` come from :class:`~asiclab.devices.stratum_client.StratumMiner`.

    Parameters
    ----------
    host, port : str, int
        Capture server.
    worker : str
        Worker name (device name in the capture).
    password : str
        Authorize password.
    suggest_difficulty : float
        Difficulty to ask for [1]; default ``2**-16`` (65536 hashes per share: a few shares per
        second on one core).
    mode : {"process", "thread"}
        Where the search runs.
    agent : str
        Agent string (must start with ``asiclab-``: labels the capture emulated).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        worker: str = "cpu-miner",
        password: str = "x",
        suggest_difficulty: float = 2.0**-16,
        mode: str = "process",
        agent: str = AGENT,
    ) -> None:
        if mode not in ("process", "thread"):
            raise CPUMinerError(f"mode must be 'process' or 'thread', got {mode!r}")
        if isinstance(suggest_difficulty, bool) or not isinstance(suggest_difficulty,
                                                                    int | float) \
                or not math.isfinite(suggest_difficulty) or suggest_difficulty <= 0:
            raise CPUMinerError(f"suggest_difficulty must be > 0, got {suggest_difficulty!r}")
        if not agent.startswith("asiclab-"):
            raise CPUMinerError("agent must start with 'asiclab-' (labels the data emulated)")
        super().__init__()
        self.host = host
        self.port = int(port)
        self.worker = worker
        self.password = password
        self.suggest_difficulty = float(suggest_difficulty)
        self.mode = mode
        self.agent = agent
        self.stats = CPUMinerStats()
        self._works: collections.OrderedDict[int, tuple[ClientJob, bytes]] = \
            collections.OrderedDict()
        self._work_id = 0

    def _start_worker(self) -> tuple[Connection, Any]:
        if self.mode == "process":
            ctx = mp.get_context("spawn")
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=search_worker, args=(child,), daemon=True,
                               name="asiclab-cpu-miner")
            proc.start()
            child.close()
            return parent, proc
        parent, child = mp.Pipe()
        th = threading.Thread(target=search_worker, args=(child,), daemon=True,
                              name="asiclab-cpu-miner")
        th.start()
        return parent, th

    def _give_work(self, conn: Connection, client: StratumClient, job: ClientJob) -> None:
        en2 = self._next_extranonce2(client)
        prefix = job.header_prefix(client.extranonce1, en2)
        self._work_id += 1
        self._works[self._work_id] = (job, en2)
        while len(self._works) > 64:
            self._works.popitem(last=False)
        target = mining.target_from_difficulty(job.difficulty)
        conn.send(("work", self._work_id, prefix, target, 0))
        self.stats.jobs += 1

    async def run(self, duration_s: float | None = None, *, max_shares: int | None = None
                  ) -> CPUMinerStats:
        """Mine until ``duration_s`` [s] passed, ``max_shares`` were submitted, or :meth:`stop`.

        Returns
        -------
        CPUMinerStats

        Raises
        ------
        CPUMinerError
            Connection failed or lost, or the search worker died.
        """
        client = StratumClient(self.host, self.port, worker=self.worker, password=self.password,
                               agent=self.agent, suggest_difficulty=self.suggest_difficulty,
                               version_rolling=False)
        try:
            await client.connect()
        except StratumError as exc:
            raise CPUMinerError(f"cannot connect: {exc}") from exc
        loop = asyncio.get_running_loop()
        conn, worker = self._start_worker()
        inbox: asyncio.Queue[Any] = asyncio.Queue()

        def _readable() -> None:
            try:
                while conn.poll():
                    inbox.put_nowait(conn.recv())
            except (EOFError, OSError):
                loop.remove_reader(conn.fileno())
                inbox.put_nowait(("dead",))

        loop.add_reader(conn.fileno(), _readable)
        t_end = None if duration_s is None else time.monotonic() + float(duration_s)
        current: ClientJob | None = None
        try:
            while not self._stop.is_set():
                if t_end is not None and time.monotonic() >= t_end:
                    break
                if max_shares is not None and self.stats.submitted >= max_shares:
                    break
                if client.closed:
                    raise CPUMinerError(f"connection lost: {client.error}")
                job = client.job
                if job is not None and job is not current and \
                        (current is None or job.job_id != current.job_id or
                         job.difficulty != current.difficulty):
                    current = job
                    self._give_work(conn, client, job)
                elif job is not None:
                    current = job
                try:
                    msg = await asyncio.wait_for(inbox.get(), 0.05)
                except TimeoutError:
                    continue
                kind = msg[0]
                if kind == "hit":
                    self._on_hit(client, msg[1], msg[2])
                elif kind == "rate":
                    self.stats.hashes += int(msg[1])
                    self.stats.hash_seconds += float(msg[2])
                elif kind == "done" and current is not None:
                    self._give_work(conn, client, current)
                elif kind == "dead":
                    raise CPUMinerError("search worker died")
        finally:
            with contextlib.suppress(OSError, ValueError):
                loop.remove_reader(conn.fileno())
            with contextlib.suppress(OSError, ValueError, BrokenPipeError):
                conn.send(("stop",))
            await asyncio.to_thread(worker.join, 5.0)
            if isinstance(worker, mp.process.BaseProcess) and worker.is_alive():
                worker.terminate()
            while not inbox.empty():
                msg = inbox.get_nowait()
                if msg[0] == "rate":
                    self.stats.hashes += int(msg[1])
                    self.stats.hash_seconds += float(msg[2])
            with contextlib.suppress(OSError, EOFError):
                while conn.poll():  # the final hashrate report (late hits are dropped)
                    msg = conn.recv()
                    if msg[0] == "rate":
                        self.stats.hashes += int(msg[1])
                        self.stats.hash_seconds += float(msg[2])
            conn.close()
            await self._drain()
            await client.close()
        return self.stats

    def _on_hit(self, client: StratumClient, work_id: int, nonce: int) -> None:
        entry = self._works.get(work_id)
        if entry is None or client.closed:
            return
        job, en2 = entry
        self._submit_counted(client, job.job_id, en2.hex(), f"{job.ntime:08x}", f"{nonce:08x}")
