"""A small Stratum v1 client and the miner thread of the emulated LV06 and the CPU miner.

:class:`StratumClient` speaks Stratum v1 over a real TCP socket (``mining.subscribe``,
``mining.authorize``, ``mining.configure``, ``mining.suggest_difficulty``, ``mining.submit``) and
receives ``mining.notify`` / ``mining.set_difficulty``; :class:`StratumMiner` runs a client and a
search loop in a thread. Message code is in :mod:`asiclab.protocol.stratum`; the server they mine
against is :class:`asiclab.capture.server.StratumCaptureServer` (or any Stratum v1 pool).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from asiclab.protocol import mining
from asiclab.protocol.stratum import ERR_OTHER, StratumError

__all__ = ["ClientJob", "MinerThread", "StratumClient", "StratumError", "StratumMiner",
           "SubmitResult"]

@dataclass(frozen=True)
class ClientJob:
    """A job received by :class:`StratumClient` (``mining.notify``).

    Attributes
    ----------
    job_id, prevhash, coinb1, coinb2 : str
        As sent (hex).
    merkle_branch : tuple of str
        Branch hashes (hex).
    version, nbits, ntime : int
        Job version, compact target, time [s since epoch].
    clean : bool
        ``clean_jobs`` flag.
    difficulty : float
        Share difficulty in effect when the job arrived [1].
    received_mono_ns : int
        Monotonic receipt time [ns].
    """

    job_id: str
    prevhash: str
    coinb1: str
    coinb2: str
    merkle_branch: tuple[str, ...]
    version: int
    nbits: int
    ntime: int
    clean: bool
    difficulty: float
    received_mono_ns: int

    def merkle_root(self, extranonce1: bytes, extranonce2: bytes) -> bytes:
        """Merkle root for the given extranonces (raw byte order)."""
        coinbase = mining.build_coinbase(self.coinb1, extranonce1, extranonce2, self.coinb2)
        return mining.merkle_root_from_coinbase(coinbase, self.merkle_branch)

    def header_prefix(self, extranonce1: bytes, extranonce2: bytes, version_bits: int = 0
                      ) -> bytes:
        """First 76 header bytes for the given extranonces and rolled version bits."""
        return mining.header_prefix(self.version ^ version_bits, self.prevhash,
                                    self.merkle_root(extranonce1, extranonce2), self.ntime,
                                    self.nbits)


class SubmitResult(NamedTuple):
    """Server answer to a ``mining.submit``.

    Attributes
    ----------
    accepted : bool
        ``result`` was true.
    error_code : int
        0 when accepted, else the Stratum error code (20..25).
    message : str
        Error message ("" when accepted).
    latency_s : float
        Time from sending to the answer [s].
    """

    accepted: bool
    error_code: int
    message: str
    latency_s: float


class StratumClient:
    """Minimal asyncio Stratum v1 client (miner side).

    Handshake in the order of the Bitaxe firmware: ``mining.configure`` (version rolling),
    ``mining.subscribe``, ``mining.authorize``, ``mining.suggest_difficulty``.

    Parameters
    ----------
    host, port : str, int
        Capture server.
    worker : str
        Worker name (maps to the device index on the server).
    password : str
        Authorize password.
    agent : str
        Agent string of ``mining.subscribe``.
    suggest_difficulty : float, optional
        Difficulty to suggest after authorizing [1].
    version_rolling : bool
        Ask for version rolling (mask ``ffffffff``; the server grants a subset).
    on_job : callable, optional
        ``on_job(job)`` called (in the event loop) for every ``mining.notify``.
    max_line_bytes : int
        Longest accepted server line [bytes].
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        worker: str,
        password: str = "x",
        agent: str = "asiclab-client/0.1",
        suggest_difficulty: float | None = None,
        version_rolling: bool = True,
        on_job: Callable[[ClientJob], None] | None = None,
        max_line_bytes: int = 1 << 16,
    ) -> None:
        self.host = host
        self.port = int(port)
        self.worker = worker
        self.password = password
        self.agent = agent
        self.suggested_difficulty = suggest_difficulty
        self.version_rolling = version_rolling
        self.on_job = on_job
        self.max_line_bytes = max_line_bytes
        self.extranonce1 = b""
        self.extranonce2_size = 0
        self.version_mask = 0
        self.difficulty = math.nan
        self.job: ClientJob | None = None
        self.jobs: collections.OrderedDict[str, ClientJob] = collections.OrderedDict()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[int, tuple[asyncio.Future[Any], int]] = {}
        self._next_id = 1
        self._job_event: asyncio.Event | None = None
        self.closed = False
        self.error: BaseException | None = None

    async def connect(self, timeout: float = 10.0) -> StratumClient:
        """Open the connection and run the handshake; returns ``self``.

        Raises
        ------
        StratumError
            Connection refused, time-out, or a refused subscribe/authorize.
        """
        self._job_event = asyncio.Event()
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=self.max_line_bytes),
                timeout)
        except (TimeoutError, OSError) as exc:
            raise StratumError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self._task = asyncio.create_task(self._read_loop())
        try:
            if self.version_rolling:
                res = await self.request("mining.configure", [["version-rolling"], {
                    "version-rolling.mask": "ffffffff", "version-rolling.min-bit-count": 2}],
                    timeout=timeout)
                if isinstance(res, dict) and res.get("version-rolling"):
                    self.version_mask = int(res.get("version-rolling.mask", "0"), 16)
            res = await self.request("mining.subscribe", [self.agent], timeout=timeout)
            self.extranonce1 = bytes.fromhex(res[1])
            self.extranonce2_size = int(res[2])
            ok = await self.request("mining.authorize", [self.worker, self.password],
                                    timeout=timeout)
            if ok is not True:
                raise StratumError(f"worker {self.worker!r} not authorized")
            if self.suggested_difficulty is not None:
                await self.request("mining.suggest_difficulty", [self.suggested_difficulty],
                                   timeout=timeout)
        except StratumError:
            await self.close()
            raise
        except (TypeError, ValueError, IndexError) as exc:
            await self.close()
            raise StratumError(f"unexpected handshake reply: {exc}") from exc
        return self

    async def __aenter__(self) -> StratumClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        self.closed = True
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._fail_pending(StratumError("connection closed"))

    def _fail_pending(self, exc: BaseException) -> None:
        for fut, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(exc)
        self._pending.clear()

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                try:
                    line = await self._reader.readline()
                except (asyncio.LimitOverrunError, ValueError) as exc:
                    raise StratumError(f"server line too long: {exc}") from exc
                if not line:
                    raise StratumError("connection closed by the server")
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if isinstance(msg, dict):
                    self._dispatch(msg)
        except (StratumError, OSError) as exc:
            self.error = exc
            self.closed = True
            self._fail_pending(exc if isinstance(exc, StratumError) else StratumError(str(exc)))
            if self._job_event is not None:
                self._job_event.set()

    def _dispatch(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        if method is None:
            entry = self._pending.pop(msg.get("id"), None)  # type: ignore[arg-type]
            if entry is not None and not entry[0].done():
                entry[0].set_result(msg)
            return
        params = msg.get("params") or []
        if method == "mining.set_difficulty" and params:
            self.difficulty = float(params[0])
        elif method == "mining.notify" and len(params) >= 9:
            job = ClientJob(
                job_id=str(params[0]), prevhash=params[1], coinb1=params[2], coinb2=params[3],
                merkle_branch=tuple(params[4]), version=int(params[5], 16),
                nbits=int(params[6], 16), ntime=int(params[7], 16), clean=bool(params[8]),
                difficulty=self.difficulty, received_mono_ns=time.monotonic_ns())
            if job.clean:
                self.jobs.clear()
            self.jobs[job.job_id] = job
            while len(self.jobs) > 32:
                self.jobs.popitem(last=False)
            self.job = job
            if self._job_event is not None:
                self._job_event.set()
            if self.on_job is not None:
                self.on_job(job)

    def _send(self, method: str, params: list[Any]) -> tuple[asyncio.Future[Any], int]:
        if self.closed or self._writer is None:
            raise StratumError("not connected")
        mid = self._next_id
        self._next_id += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[mid] = (fut, time.monotonic_ns())
        self._writer.write(json.dumps({"id": mid, "method": method, "params": params},
                                      separators=(",", ":")).encode() + b"\n")
        return fut, mid

    async def request(self, method: str, params: list[Any], *, timeout: float = 10.0) -> Any:
        """Send a request and return its ``result``; raise :class:`StratumError` on an error."""
        fut, mid = self._send(method, params)
        try:
            msg = await asyncio.wait_for(fut, timeout)
        except TimeoutError as exc:
            self._pending.pop(mid, None)
            raise StratumError(f"{method}: no answer within {timeout} s") from exc
        if msg.get("error"):
            raise StratumError(f"{method}: {msg['error']!r}")
        return msg.get("result")

    async def wait_for_job(self, timeout: float = 10.0) -> ClientJob:
        """The current job, waiting for the first ``mining.notify`` if needed."""
        assert self._job_event is not None
        if self.job is None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._job_event.wait(), timeout)
        if self.job is None:
            raise StratumError("no job received")
        return self.job

    async def next_job(self, timeout: float = 10.0) -> ClientJob:
        """Wait for the next ``mining.notify`` after this call."""
        assert self._job_event is not None
        self._job_event.clear()
        await asyncio.wait_for(self._job_event.wait(), timeout)
        if self.job is None or self.closed:
            raise StratumError("no job received")
        return self.job

    def submit_nowait(self, job_id: str, extranonce2: str, ntime: str, nonce: str,
                      version_bits: str | None = None) -> asyncio.Future[SubmitResult]:
        """Send a ``mining.submit`` now; the future resolves to its :class:`SubmitResult`."""
        params = [self.worker, job_id, extranonce2, ntime, nonce]
        if version_bits is not None:
            params.append(version_bits)
        fut, _mid = self._send("mining.submit", params)
        t0 = time.monotonic_ns()
        out: asyncio.Future[SubmitResult] = asyncio.get_running_loop().create_future()

        def _done(f: asyncio.Future[Any]) -> None:
            if out.done():
                return
            if f.cancelled():
                out.cancel()
                return
            exc = f.exception()
            if exc is not None:
                out.set_exception(exc)
                return
            msg = f.result()
            lat = (time.monotonic_ns() - t0) * 1e-9
            err = msg.get("error")
            if msg.get("result") is True and not err:
                out.set_result(SubmitResult(True, 0, "", lat))
            else:
                code = int(err[0]) if isinstance(err, list) and err and \
                    isinstance(err[0], int) else ERR_OTHER
                text = str(err[1]) if isinstance(err, list) and len(err) > 1 else str(err)
                out.set_result(SubmitResult(False, code, text, lat))

        fut.add_done_callback(_done)
        return out

    async def submit(self, job_id: str, extranonce2: str, ntime: str, nonce: str,
                     version_bits: str | None = None, *, timeout: float = 10.0) -> SubmitResult:
        """Submit a share and wait for the answer."""
        return await asyncio.wait_for(
            self.submit_nowait(job_id, extranonce2, ntime, nonce, version_bits), timeout)


# --------------------------------------------------------------------------- miners in threads


class MinerThread:
    """Run an asyncio miner (emulated LV06, CPU miner) in a background thread.

    The miner must have ``async run(duration_s=None, max_shares=None)`` and a thread-safe
    ``stop()``; notebooks then need no asyncio::

        with MinerThread(EmulatedLV06("127.0.0.1", srv.port, chip=chip)) as t:
            time.sleep(60)
        print(t.result)

    Parameters
    ----------
    miner : object
        The miner.
    duration_s : float, optional
        Stop after this long [s] (default: until :meth:`stop`).
    max_shares : int, optional
        Stop after this many submitted shares.
    """

    def __init__(self, miner: Any, *, duration_s: float | None = None,
                 max_shares: int | None = None) -> None:
        self.miner = miner
        self.duration_s = duration_s
        self.max_shares = max_shares
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MinerThread:
        """Start the thread; returns ``self``."""
        if self._thread is not None:
            raise StratumError("already started")
        self._thread = threading.Thread(target=self._run, name="asiclab-miner", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = asyncio.run(self.miner.run(self.duration_s,
                                                     max_shares=self.max_shares))
        except BaseException as exc:  # kept for join()
            self.error = exc

    def stop(self) -> None:
        """Ask the miner to stop (returns at once; see :meth:`join`)."""
        self.miner.stop()

    def join(self, timeout: float | None = 60.0) -> Any:
        """Wait for the miner to finish; returns its result or raises its error."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise StratumError("miner thread did not finish in time")
        if self.error is not None:
            raise self.error
        return self.result

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> MinerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.join()


class StratumMiner:
    """Base of the asyncio miners that submit shares through a :class:`StratumClient`.

    Shared by :class:`~asiclab.devices.emulated_lv06.EmulatedLV06` and
    :class:`~asiclab.devices.cpu_miner.CPUMiner`: the stop flag and :class:`MinerThread` of the
    miner protocol, a rolling ``extranonce2`` counter, and submissions counted in
    ``self.stats`` (which a subclass sets; it needs ``submitted`` and ``accepted`` counts and a
    ``rejected`` :class:`collections.Counter` by Stratum error code). A subclass implements
    ``async run(duration_s=None, *, max_shares=None)``.
    """

    stats: Any

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._en2 = 0
        self._pending: set[asyncio.Future[SubmitResult]] = set()

    def stop(self) -> None:
        """Ask :meth:`run` to finish (thread-safe; returns at once)."""
        self._stop.set()

    def thread(self, duration_s: float | None = None, *, max_shares: int | None = None
               ) -> MinerThread:
        """A :class:`MinerThread` running this miner."""
        return MinerThread(self, duration_s=duration_s, max_shares=max_shares)

    def _next_extranonce2(self, client: StratumClient) -> bytes:
        """The next ``extranonce2`` (a counter over this miner's life, modulo its size)."""
        self._en2 += 1
        size = client.extranonce2_size
        return (self._en2 % (1 << (8 * size))).to_bytes(size, "big")

    def _submit_counted(self, client: StratumClient, job_id: str, extranonce2: str, ntime: str,
                        nonce: str, version_bits: str | None = None,
                        on_result: Callable[[SubmitResult], None] | None = None) -> None:
        """Send a ``mining.submit`` now; count it and, when answered, its acceptance.

        ``on_result(result)`` runs after the counting, for answered submissions only.
        """
        fut = client.submit_nowait(job_id, extranonce2, ntime, nonce, version_bits)
        self.stats.submitted += 1
        self._pending.add(fut)

        def _result(f: asyncio.Future[SubmitResult]) -> None:
            self._pending.discard(f)
            if f.cancelled() or f.exception() is not None:
                return
            res = f.result()
            if res.accepted:
                self.stats.accepted += 1
            else:
                self.stats.rejected[res.error_code] += 1
            if on_result is not None:
                on_result(res)

        fut.add_done_callback(_result)

    async def _drain(self, timeout: float = 5.0) -> None:
        """Wait up to ``timeout`` [s] for the answers to the submissions still pending."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout)
