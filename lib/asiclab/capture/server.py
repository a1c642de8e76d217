"""Stratum v1 capture server (asyncio): the local pool of every live capture.

The capture server is a local "pool" that miners (real LV06/Bitaxe/S9, the emulated LV06, the CPU
miner) mine against. It does not pay anyone or build blocks: it hands out jobs, verifies every
``mining.submit`` by SHA256d against its job (:mod:`asiclab.protocol.mining`) and streams each
submission,
valid or not, with its receipt timestamps to an append-only
:class:`asiclab.capture.journal.Journal`,
which becomes the capture dataset at the end (:meth:`StratumCaptureServer.to_dataset`) or after a
crash (:func:`asiclab.capture.journal.recover`).

Protocol (Stratum v1 as in ``protocols.md``; message code in :mod:`asiclab.protocol.stratum`)
--------------------------------------------------------------------------------------------
From miners: ``mining.subscribe``, ``mining.authorize``, ``mining.configure`` (BIP 310 version
rolling), ``mining.suggest_difficulty``, ``mining.extranonce.subscribe``, ``mining.submit``.
To miners: ``mining.set_difficulty`` (fractional allowed; applies to jobs sent after it) and
``mining.notify``. Submissions are answered ``true`` or with ``[code, message, null]``:
20 other/malformed, 21 stale or unknown job, 22 duplicate, 23 low difficulty, 24 unauthorized
worker, 25 not subscribed. Checks run in the order 25, 20 (not a list of 5 or 6 parameters), 24,
20 (malformed field), 21, 20 (version bits outside the negotiated mask), 22, 23. Duplicates are
accepted shares with the same header (same extranonces, ntime, nonce and version bits).

Timing
------
Each submission is stamped with ``time.time_ns()`` and ``time.monotonic_ns()`` when the chunk of
bytes that completes its line is read from the socket (one stamp per read; lines that arrive in
one read share it), before any rate limiting: the socket keeps being read while lines wait for
the limit, so lines held back keep their arrival stamps, and the time from the read to the verdict
is journalled per event (``processing_delay_ns``). The operating point of a share is the one whose
window holds its receipt time. Every line read is judged and journalled, also when the
connection closes or is reset while lines wait (they are then processed at once, unanswered).

Jobs and experiment payloads
----------------------------
Fresh jobs go out every ``job_interval_s`` (``clean_jobs=false``: earlier jobs stay valid until
they fall out of the ``max_jobs`` most recent ones) and on demand via
:meth:`StratumCaptureServer.new_job` (``clean=True`` by default: every earlier job becomes stale,
error 21). ``new_job(payload=b"...")`` puts an experiment payload into the coinbase (an
``OP_RETURN`` output in ``coinb2``), so it changes the Merkle root and hence every header the
miners hash; the journal's job records (:func:`asiclab.capture.journal.read_jobs`) map job ids to
payloads. A job also rotates by itself once ``max_shares_per_job`` shares were accepted on it.
Timer jobs and rotations keep the payload of the job they follow, so a payload stays in force
until the next ``new_job``. :meth:`StratumCaptureServer.step` changes every connection's
difficulty and issues the next (clean) job in one call, for experiments that change the job
content or the difficulty step by step (:mod:`asiclab.narma.driver`).

Devices
-------
The worker name of ``mining.authorize`` maps to the device index (the same name from several
connections is one device). The agent string of ``mining.subscribe`` gives the model and the
source kind (:func:`agent_device_info`): agents starting with ``asiclab-`` (emulator, CPU miner)
are labelled ``emulated``, ESP-Miner (``bitaxe/...``) and Bitmain (``bmminer/...``) agents
``hardware``, everything else ``unknown`` (the agent string is kept as the device's
firmware). Submissions that cannot be attributed
(unauthorized worker, not subscribed) go to a device named :data:`UNATTRIBUTED`.

Exposure and abuse
------------------
Binds 127.0.0.1 by default; another address needs ``allow_lan=True``. Lines longer than
``max_line_bytes`` get an error and the connection is closed; at most ``max_connections`` clients;
each connection may send ``max_requests_per_s`` lines per second (token bucket; excess lines are
queued with their receipt stamps -- never dropped -- and reading pauses only when
``max_queued_bytes`` wait; the counts go into the ``server_*`` attributes, see
:meth:`StratumCaptureServer.throttle_summary`); after ``max_protocol_errors`` malformed
messages, or when a client stops reading its replies, the connection is closed. Idle and
handshake time-outs close dead or stalling connections. Memory is bounded: per-job duplicate sets
are dropped with their job, per-connection buffers are bounded, and no event stays in memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import json
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from asiclab.capture.journal import SOURCE_KINDS, Journal, JournalError, clean_text, recover
from asiclab.protocol import mining
from asiclab.protocol.stratum import (
    _MAX_NAME,
    _MESSAGES,
    DEFAULT_VERSION_MASK,
    ERR_DUPLICATE,
    ERR_LOW_DIFFICULTY,
    ERR_NOT_SUBSCRIBED,
    ERR_OTHER,
    ERR_STALE,
    ERR_UNAUTHORIZED,
    JOB_NBITS,
    JOB_VERSION,
    StratumError,
    _hex32,
    _hex_bytes,
    _id_json,
    agent_device_info,
    build_coinbase_parts,
)

__all__ = [
    "UNATTRIBUTED",
    "StratumCaptureServer",
    "StratumError",
    "ThreadedCaptureServer",
]

#: Device name of submissions that cannot be attributed to an authorized worker.
UNATTRIBUTED = "(unattributed)"
_MAX_WORKERS_PER_CONNECTION = 8
_STALE_IDS_KEPT = 1024
#: Retired jobs kept (with their retirement time) to judge lines that arrived before it.
_RETIRED_KEPT = 16


@dataclass(eq=False)
class _Job:
    job_id: str
    id_json: str
    prevhash_header: bytes
    coinb1: bytes
    coinb2: bytes
    branch: tuple[bytes, ...]
    version: int
    nbits: int
    ntime: int
    payload: bytes | None
    created_mono_ns: int
    shares: set[bytes] = field(default_factory=set)
    notify_clean: bytes = b""
    notify_keep: bytes = b""

    def build_notify(self) -> None:
        base = [self.job_id, mining.swap_words(self.prevhash_header).hex(), self.coinb1.hex(),
                self.coinb2.hex(), [b.hex() for b in self.branch], _hex32(self.version),
                _hex32(self.nbits), _hex32(self.ntime)]
        for clean in (True, False):
            line = json.dumps({"id": None, "method": "mining.notify", "params": [*base, clean]},
                              separators=(",", ":")).encode() + b"\n"
            if clean:
                self.notify_clean = line
            else:
                self.notify_keep = line


class _Connection(asyncio.Protocol):
    """One miner connection (server side).

    Every complete line is stamped when the chunk of bytes that completes it is read from the
    socket and queued; lines are then processed from the queue in order, as fast as the
    per-connection token bucket allows. The socket keeps being read while lines wait (so the
    stamps stay the arrival times); only when ``max_queued_bytes`` are waiting is reading paused
    (backpressure, counted in ``read_pauses``). When the connection closes, is reset or is
    dropped for abuse, every queued line is still processed and journalled with its verdict.
    """

    def __init__(self, server: StratumCaptureServer) -> None:
        self.srv = server
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.buf = b""
        self.buf_stamp: tuple[int, int] = (0, 0)
        # queued complete lines: (line, t_host_ns, t_mono_ns, read sequence number)
        self.queue: collections.deque[tuple[bytes, int, int, int]] = collections.deque()
        self.queued_bytes = 0
        self.read_seq = 0
        self.resume_handle: asyncio.TimerHandle | None = None
        self.read_paused = False
        self.closed = False
        self.closing: tuple[str, int | None] | None = None
        self.subscribed = False
        self.authorized = False
        self.agent = ""
        self.en1 = b""
        self.workers: dict[str, int] = {}
        self.vmask = 0
        self.difficulty = server.difficulty
        self.sent_difficulty: float | None = None
        self.job_diff: dict[str, float] = {}
        self.tokens = float(server.request_burst)
        self.last_refill = time.monotonic_ns()
        self.last_line_mono = self.last_refill
        self.connected_mono = self.last_refill
        self.errors = 0
        self.kick = False

    # ------------------------------------------------------------------ transport callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        srv = self.srv
        if srv._stopping or len(srv._conns) >= srv.max_connections:
            srv.stats["refused"] += 1
            srv._note("refused", {"peer": self.peer, "reason": "too many connections"})
            self.closed = True
            transport.abort()
            return
        srv._conns.add(self)
        self.en1 = srv._next_extranonce1()
        srv.stats["connections"] += 1
        srv._note("connect", {"peer": self.peer, "extranonce1": self.en1.hex()})

    def connection_lost(self, exc: Exception | None) -> None:
        if self.resume_handle is not None:
            self.resume_handle.cancel()
            self.resume_handle = None
        was_open = not self.closed
        self.closed = True
        if was_open and self.buf.strip():  # an unterminated last line reached us too
            self._enqueue(self.buf, *self.buf_stamp)
        self.buf = b""
        self._drain()  # the lines read but not yet processed: journalled, no reply
        if self in self.srv._conns:
            self.srv._conns.discard(self)
            self.srv._note("disconnect", {"peer": self.peer,
                                          "error": None if exc is None else str(exc)[:200]})

    def data_received(self, data: bytes) -> None:
        t_host = time.time_ns()
        t_mono = time.monotonic_ns()
        if self.closed or self.closing is not None:
            self.srv.stats["refused_lines"] += data.count(b"\n")
            return
        self.read_seq += 1
        self._split(data, t_host, t_mono)
        self._pump(self.read_seq)

    def eof_received(self) -> bool | None:
        return None

    # ------------------------------------------------------------------ line handling
    def _refill(self, now: int) -> None:
        srv = self.srv
        self.tokens = min(srv.request_burst,
                          self.tokens + (now - self.last_refill) * srv._rate_per_ns)
        self.last_refill = now

    def _enqueue(self, line: bytes, t_host: int, t_mono: int) -> None:
        self.queue.append((line, t_host, t_mono, self.read_seq))
        self.queued_bytes += len(line) + 1

    def _split(self, data: bytes, t_host: int, t_mono: int) -> None:
        """Queue the complete lines of ``buf + data`` with this read's stamps."""
        srv = self.srv
        max_line = srv.max_line_bytes
        buf = self.buf + data if self.buf else data
        self.buf = b""
        start = 0
        find = buf.find
        while True:
            nl = find(b"\n", start)
            if nl < 0:
                break
            if nl - start > max_line:
                srv.stats["refused_lines"] += 1 + buf.count(b"\n", nl + 1)
                self.closing = ("line too long", ERR_OTHER)
                return
            self._enqueue(buf[start:nl], t_host, t_mono)
            start = nl + 1
        rest = buf[start:]
        if len(rest) > max_line:
            srv.stats["refused_lines"] += 1
            self.closing = ("line too long", ERR_OTHER)
            return
        if rest:
            if not self.buf_stamp[0] or start:  # first bytes of a new line
                self.buf_stamp = (t_host, t_mono)
            self.buf = rest
        else:
            self.buf_stamp = (0, 0)
        if self.queued_bytes > srv.max_queued_bytes and not self.read_paused \
                and self.transport is not None:
            self.read_paused = True
            srv.stats["read_pauses"] += 1
            srv._note("read_paused", {"peer": self.peer, "queued_lines": len(self.queue)})
            self.transport.pause_reading()

    def _handle(self, line: bytes, t_host: int, t_mono: int, delay_ns: int) -> bytes | None:
        try:
            return self._handle_line(line, t_host, t_mono, delay_ns)
        except Exception as exc:  # a bug must not take the connection (or others) down
            srv = self.srv
            srv.stats["internal_errors"] += 1
            srv._note("internal_error", {"peer": self.peer, "error": repr(exc)[:300]})
            return self._error_reply("null", ERR_OTHER, "Internal error")

    def _pump(self, read_seq: int = -1) -> None:
        """Process queued lines while tokens last (all of them when the connection ends).

        ``read_seq`` is the read being handled (-1: a timer); lines from an earlier read are
        counted as delayed.
        """
        srv = self.srv
        q = self.queue
        out: list[bytes] = []
        if q:
            self._refill(time.monotonic_ns())
        while q:
            if self.closing is None and self.tokens < 1.0:
                self._throttle()
                break
            self.tokens -= 1.0
            line, t_host, t_mono, seq = q.popleft()
            self.queued_bytes -= len(line) + 1
            if seq != read_seq:
                srv.stats["delayed_lines"] += 1
            self.last_line_mono = t_mono
            reply = self._handle(line, t_host, t_mono, time.monotonic_ns() - t_mono)
            if reply:
                out.append(reply)
            if self.kick:  # the rest is journalled unanswered (see _abuse)
                self.closing = ("too many malformed messages", ERR_OTHER)
                break
        self._write(out)
        if self.closing is not None and (not q or self.kick):
            reason, code = self.closing
            self._abuse(reason, code)
            return
        if self.read_paused and self.queued_bytes <= self.srv.max_queued_bytes // 2 \
                and self.transport is not None and not self.closed:
            self.read_paused = False
            self.transport.resume_reading()

    def _drain(self) -> None:
        """Process every queued line now, ignoring the rate limit (the connection ends)."""
        srv = self.srv
        while self.queue:
            line, t_host, t_mono, _seq = self.queue.popleft()
            self.queued_bytes -= len(line) + 1
            srv.stats["delayed_lines"] += 1
            self._handle(line, t_host, t_mono, time.monotonic_ns() - t_mono)

    def _throttle(self) -> None:
        """Out of tokens: process the rest of the queue when the bucket has refilled."""
        if self.resume_handle is not None:
            return
        self.srv.stats["throttled"] += 1
        wait = (1.0 - self.tokens) / self.srv.max_requests_per_s
        self.resume_handle = asyncio.get_running_loop().call_later(max(wait, 1e-4),
                                                                   self._resume)

    def _resume(self) -> None:
        self.resume_handle = None
        if not self.closed:
            self._pump(-1)

    def _write(self, out: list[bytes]) -> None:
        if not out or self.transport is None or self.closed:
            return
        self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        if self.transport.get_write_buffer_size() > self.srv.max_write_buffer:
            self._abuse("client does not read its replies", None)

    def close(self, reason: str, final: bytes = b"") -> None:
        """Answer the queued lines, send ``final``, close (after the replies are sent)."""
        if self.closed:
            return
        if self.resume_handle is not None:
            self.resume_handle.cancel()
            self.resume_handle = None
        out = []
        while self.queue:  # still answered: the transport is open
            line, t_host, t_mono, _seq = self.queue.popleft()
            self.queued_bytes -= len(line) + 1
            self.srv.stats["delayed_lines"] += 1
            reply = self._handle(line, t_host, t_mono, time.monotonic_ns() - t_mono)
            if reply:
                out.append(reply)
        if final:
            out.append(final)
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
        self.closed = True
        self.srv._note("close", {"peer": self.peer, "reason": reason})
        if self.transport is not None:
            self.transport.close()

    def _abuse(self, reason: str, code: int | None) -> None:
        """Disconnect a misbehaving client (with an error reply when ``code`` is given).

        Lines it sent before are still journalled (:meth:`_drain`)."""
        if self.closed:
            return
        self.srv.stats["abusive_disconnects"] += 1
        self.srv._note("abuse", {"peer": self.peer, "reason": reason})
        if code is None:  # it does not read: drop it without waiting for the buffer to drain
            self.closed = True
            self._drain()
            if self.transport is not None:
                self.transport.abort()
            return
        self._drain()
        self.close(reason, self._error_reply("null", code, reason))

    @staticmethod
    def _error_reply(id_json: str, code: int, message: str) -> bytes:
        return (f'{{"id":{id_json},"result":null,"error":[{code},{json.dumps(message)},null]}}\n'
                ).encode()

    def _protocol_error(self, id_json: str, message: str) -> bytes:
        self.errors += 1
        self.srv.stats["protocol_errors"] += 1
        if self.errors > self.srv.max_protocol_errors:
            self.kick = True
        return self._error_reply(id_json, ERR_OTHER, message)

    def _handle_line(self, line: bytes, t_host: int, t_mono: int, delay_ns: int = 0
                     ) -> bytes | None:
        if not line or line.isspace():
            return None
        try:
            msg = json.loads(line)
        except (ValueError, RecursionError):
            return self._protocol_error("null", "Parse error")
        if type(msg) is not dict:
            return self._protocol_error("null", "Invalid request: not a JSON object")
        method = msg.get("method")
        mid = msg.get("id")
        if method == "mining.submit":
            return self._submit(mid, msg.get("params"), t_host, t_mono, delay_ns)
        id_json = _id_json(mid)
        if method is None and ("result" in msg or "error" in msg):
            return None  # a reply to a request we never sent: ignore
        params = msg.get("params", [])
        if type(params) is not list:
            return self._protocol_error(id_json, "Invalid params: expected a list")
        handler = _HANDLERS.get(method) if isinstance(method, str) else None
        if handler is None:
            return self._protocol_error(id_json, "Unknown method")
        try:
            return handler(self, id_json, params)
        except (TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError):
            return self._protocol_error(id_json, "Invalid params")

    # ------------------------------------------------------------------ handlers
    def _reply(self, id_json: str, result: Any) -> bytes:
        return (f'{{"id":{id_json},"result":{json.dumps(result, separators=(",", ":"))},'
                f'"error":null}}\n').encode()

    def _h_subscribe(self, id_json: str, params: list[Any]) -> bytes:
        srv = self.srv
        agent = params[0] if params and isinstance(params[0], str) else ""
        self.agent = "".join(c for c in agent[:_MAX_NAME] if c.isprintable())
        first = not self.subscribed
        self.subscribed = True
        sub_id = self.en1.hex()
        reply = self._reply(id_json, [[["mining.set_difficulty", sub_id],
                                       ["mining.notify", sub_id]],
                                      self.en1.hex(), srv.extranonce2_size])
        if first:
            srv._note("subscribe", {"peer": self.peer, "agent": self.agent})
            model, kind = srv._agent_info(self.agent)
            for name in self.workers:  # authorized before subscribing: complete the record
                srv._register_device(name, model, kind, self.agent)
            srv._loop_call_soon(self._maybe_start)
        return reply

    def _h_authorize(self, id_json: str, params: list[Any]) -> bytes:
        srv = self.srv
        user = params[0] if params else None
        password = params[1] if len(params) > 1 else None
        ok = (isinstance(user, str) and 0 < len(user) <= _MAX_NAME and user.isprintable()
              and user != UNATTRIBUTED
              and (srv.allowed_workers is None or user in srv.allowed_workers)
              and (srv.password is None or password == srv.password)
              and (user in self.workers or len(self.workers) < _MAX_WORKERS_PER_CONNECTION))
        if ok:
            assert isinstance(user, str)
            model, kind = srv._agent_info(self.agent) if self.subscribed else ("", "")
            dev = srv._register_device(user, model, kind, self.agent)
            ok = dev is not None
        if not ok:
            srv._note("authorize_failed", {"peer": self.peer, "user": str(user)[:_MAX_NAME]})
            return (f'{{"id":{id_json},"result":false,"error":[{ERR_UNAUTHORIZED},'
                    f'"Unauthorized worker",null]}}\n').encode()
        assert isinstance(user, str) and dev is not None
        self.workers[user] = dev
        first = not self.authorized
        self.authorized = True
        if first:
            srv._loop_call_soon(self._maybe_start)
        return self._reply(id_json, True)

    def _h_configure(self, id_json: str, params: list[Any]) -> bytes:
        exts = params[0] if params else []
        opts = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
        if not isinstance(exts, list):
            raise ValueError("extensions must be a list")
        result: dict[str, Any] = {}
        for ext in exts[:16]:
            if ext == "version-rolling":
                requested = opts.get("version-rolling.mask", "ffffffff")
                req = int(requested, 16) if isinstance(requested, str) else int(requested)
                self.vmask = self.srv.version_rolling_mask & req & 0xFFFFFFFF
                result["version-rolling"] = True
                result["version-rolling.mask"] = _hex32(self.vmask)
            elif isinstance(ext, str):
                result[ext[:64]] = False
        return self._reply(id_json, result)

    def _h_suggest_difficulty(self, id_json: str, params: list[Any]) -> bytes:
        srv = self.srv
        d = params[0] if params else None
        if isinstance(d, bool) or not isinstance(d, int | float) or not math.isfinite(d) \
                or d <= 0:
            return self._protocol_error(id_json, "Invalid difficulty")
        if srv.accept_suggested_difficulty:
            new = min(max(float(d), srv.min_difficulty), srv.max_difficulty)
            if new != self.difficulty:
                self.difficulty = new
                if self.subscribed and self.authorized and srv._current is not None:
                    srv._loop_call_soon(self._resend_current)
        return self._reply(id_json, True)

    def _h_true(self, id_json: str, params: list[Any]) -> bytes:
        return self._reply(id_json, True)

    def _h_ping(self, id_json: str, params: list[Any]) -> bytes:
        return self._reply(id_json, "pong")

    # ------------------------------------------------------------------ jobs
    def _maybe_start(self) -> None:
        srv = self.srv
        if self.closed or not (self.subscribed and self.authorized) or srv._current is None:
            return
        if self.sent_difficulty is None:
            self.send_job(srv._current, clean=True)

    def _resend_current(self) -> None:
        if not self.closed and self.srv._current is not None and \
                self.sent_difficulty is not None:
            self.send_job(self.srv._current, clean=False)

    def send_job(self, job: _Job, clean: bool) -> None:
        """Send ``set_difficulty`` (when changed) and ``notify``; remember the job's difficulty."""
        parts = []
        if self.sent_difficulty != self.difficulty:
            parts.append(f'{{"id":null,"method":"mining.set_difficulty","params":'
                         f'[{self.difficulty!r}]}}\n'.encode())
            self.sent_difficulty = self.difficulty
        parts.append(job.notify_clean if clean else job.notify_keep)
        jobs = self.srv._jobs
        retired = self.srv._retired
        for jid in [j for j in self.job_diff if j not in jobs and j not in retired]:
            del self.job_diff[jid]
        self.job_diff[job.job_id] = self.difficulty
        self._write(parts)

    # ------------------------------------------------------------------ submit
    def _submit(self, mid: Any, params: Any, t_host: int, t_mono: int, delay_ns: int = 0
                ) -> bytes:
        srv = self.srv
        id_json = str(mid) if type(mid) is int else _id_json(mid)
        worker = job_id = en2_hex = ntime_hex = nonce_hex = None
        vb_hex: Any = None
        shaped = type(params) is list and 5 <= len(params) <= 6
        if shaped:
            worker, job_id, en2_hex, ntime_hex, nonce_hex = params[:5]
            if len(params) == 6:
                vb_hex = params[5]
        dev = self.workers.get(worker) if type(worker) is str else None
        en2 = _hex_bytes(en2_hex, srv.extranonce2_size)
        ntime_b = _hex_bytes(ntime_hex, 4)
        nonce_b = _hex_bytes(nonce_hex, 4)
        nonce = int.from_bytes(nonce_b, "big") if nonce_b is not None else -1
        vb = 0
        vb_ok = True
        if vb_hex is not None:
            vb_raw = _hex_bytes(vb_hex.zfill(8) if type(vb_hex) is str and len(vb_hex) <= 8
                                else None, 4)
            if vb_raw is None:
                vb_ok = False
                vb = -1
            else:
                vb = int.from_bytes(vb_raw, "big")
        job = srv._jobs.get(job_id) if type(job_id) is str else None
        if job is None and type(job_id) is str:  # retired after this line arrived: still valid
            retired = srv._retired.get(job_id)
            if retired is not None and t_mono < retired[1]:
                job = retired[0]
        if job is not None:
            jid_json = job.id_json
        elif type(job_id) is str:
            jid_json = json.dumps(clean_text(job_id, 64))
        else:
            jid_json = '""'
        difficulty = math.nan
        pool = self.job_diff.get(job_id, self.difficulty) if job is not None else self.difficulty
        try:
            code, message, difficulty = self._judge(shaped, dev, en2, ntime_b, nonce_b, vb_ok,
                                                    vb, job, job_id, pool)
        except Exception as exc:  # never lose the record of a submission to a bug
            srv.stats["internal_errors"] += 1
            srv._note("internal_error", {"peer": self.peer, "error": repr(exc)[:300]})
            code, message = ERR_OTHER, "Internal error"
        if dev is None:
            dev = srv._unattributed_device()
        srv.stats["submits"] += 1
        srv.stats["accepted" if code == 0 else f"rejected_{code}"] += 1
        srv.journal.append_event_fields(
            t_host, t_mono, dev, srv.journal.op_at(dev, t_host), jid_json, nonce, -1,
            vb, difficulty, pool, code == 0, code,
            f'"{en2_hex}"' if en2 is not None else '""',
            f'"{ntime_hex}"' if ntime_b is not None else '""',
            delay_ns,
        )
        if code == 0:
            return f'{{"id":{id_json},"result":true,"error":null}}\n'.encode()
        return self._error_reply(id_json, code, message or _MESSAGES[code])

    def _judge(self, shaped: bool, dev: int | None, en2: bytes | None, ntime_b: bytes | None,
               nonce_b: bytes | None, vb_ok: bool, vb: int, job: _Job | None, job_id: Any,
               pool: float) -> tuple[int, str | None, float]:
        """Verdict on one submission: (error code, message, achieved difficulty)."""
        srv = self.srv
        difficulty = math.nan
        message = None
        if not self.subscribed:
            code = ERR_NOT_SUBSCRIBED
        elif not shaped:
            code = ERR_OTHER
            message = "Malformed submit: expected [worker, job_id, extranonce2, ntime, nonce" \
                "(, version_bits)]"
        elif dev is None:
            code = ERR_UNAUTHORIZED
        elif en2 is None or ntime_b is None or nonce_b is None or not vb_ok:
            code = ERR_OTHER
            message = "Malformed submit parameters"
        elif job is None:
            code = ERR_STALE
            message = "Stale job" if type(job_id) is str and job_id in srv._stale_set \
                else "Job not found"
        elif vb & ~self.vmask:
            code = ERR_OTHER
            message = "Version bits outside the negotiated mask"
        else:
            assert en2 is not None and ntime_b is not None and nonce_b is not None
            coinbase = job.coinb1 + self.en1 + en2 + job.coinb2
            root = mining.sha256d(coinbase)
            if job.branch:
                root = mining.merkle_root(root, job.branch)
            header = (((job.version ^ vb) & 0xFFFFFFFF).to_bytes(4, "little")
                      + job.prevhash_header + root + ntime_b[::-1]
                      + job.nbits.to_bytes(4, "little") + nonce_b[::-1])
            digest = mining.sha256d(header)
            value = int.from_bytes(digest, "little")
            difficulty = math.inf if value == 0 else mining.DIFF1_TARGET / value
            if digest in job.shares:
                code = ERR_DUPLICATE
            elif value > srv._target(pool):
                code = ERR_LOW_DIFFICULTY
            else:
                code = 0
                job.shares.add(digest)
                if len(job.shares) >= srv.max_shares_per_job and job is srv._current:
                    srv._loop_call_soon(srv._rotate_full_job, job)
        return code, message, difficulty


_HANDLERS: dict[str, Callable[[_Connection, str, list[Any]], bytes]] = {
    "mining.subscribe": _Connection._h_subscribe,
    "mining.authorize": _Connection._h_authorize,
    "mining.configure": _Connection._h_configure,
    "mining.suggest_difficulty": _Connection._h_suggest_difficulty,
    "mining.extranonce.subscribe": _Connection._h_true,
    "mining.multi_version": _Connection._h_true,
    "mining.ping": _Connection._h_ping,
}


def _check_positive(name: str, value: Any, *, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value <= 0:
        raise StratumError(f"{name} must be finite and > 0, got {value!r}")


class StratumCaptureServer:
    """Asyncio Stratum v1 capture server writing every submission to a journal.

    Parameters
    ----------
    journal_path : path-like
        Journal file to create (:class:`asiclab.capture.journal.Journal`).
    host : str
        Address to bind; loopback by default. Anything else needs ``allow_lan=True``.
    port : int
        TCP port; 0 picks a free one (see :attr:`port`).
    difficulty : float
        Share difficulty given to miners that suggest none [1] (fractional allowed).
    min_difficulty, max_difficulty : float
        Range suggested difficulties are clamped to [1].
    accept_suggested_difficulty : bool
        Honour ``mining.suggest_difficulty`` (default) or keep ``difficulty``.
    job_interval_s : float or None
        Period of fresh jobs (``clean_jobs=false``) [s]; ``None`` disables the timer.
    max_jobs : int
        Jobs kept valid; older ones are stale (error 21) and their duplicate sets dropped.
    max_shares_per_job : int
        Accepted shares after which the current job is replaced (bounds duplicate-set memory).
    extranonce2_size : int
        Size of extranonce2 [bytes].
    max_line_bytes : int
        Longest accepted line [bytes]; longer lines close the connection.
    max_connections : int
        Most simultaneous connections.
    max_requests_per_s : float
        Lines per second per connection (token bucket); excess lines are delayed, not dropped.
    request_burst : float, optional
        Bucket size [lines] (default ``max(2 * max_requests_per_s, 16)``).
    max_protocol_errors : int
        Malformed messages tolerated per connection before it is closed.
    handshake_timeout_s : float
        Close connections not subscribed and authorized after this long [s].
    idle_timeout_s : float or None
        Close connections that sent nothing for this long [s] (``None``: never; a miner at a
        high difficulty may legitimately stay silent for long).
    max_queued_bytes : int
        Bytes of received lines waiting for the rate limit after which reading from that
        connection pauses (backpressure; stamps of lines read later may then be late, counted
        in the ``server_read_pauses`` attribute) [bytes].
    max_write_buffer : int
        Unsent reply bytes after which a client that does not read is dropped [bytes].
    max_devices : int
        Most distinct workers (devices).
    version_rolling_mask : int
        Mask granted to ``mining.configure`` version rolling (AND the miner's mask).
    allow_lan : bool
        Permit binding a non-loopback address.
    password : str, optional
        Password ``mining.authorize`` must give (default: any).
    workers : sequence of str, optional
        Worker names allowed to authorize (default: any); they are registered as devices in this
        order, so their device indices are known in advance.
    source_kind : str, optional
        Force the capture's ``source_kind``; default: inferred from the agents (anything
        emulated makes the capture ``emulated``).
    unknown_agent_kind : str
        Source kind given to devices whose agent string :func:`agent_device_info` does not
        recognise (default ``"unknown"``; the user may declare e.g. ``"hardware"``).
    attrs : mapping, optional
        Extra global attributes (``title``, ``parameters``...).
    seed : int, optional
        Seed of the job generator (previous-block hashes, extranonce1 counter). Default: a
        fresh seed drawn from ``os.urandom``, so every capture gets new jobs. The seed used is
        recorded in the ``seed`` attribute either way (``seed_origin`` says which).
    flush_interval_s : float
        Journal flush interval [s] (at most 1).
    fsync : bool
        ``fsync`` the journal at every flush.
    overwrite : bool
        Replace an existing journal file.
    latency_stats : bool
        Sample receipt-to-journal latencies (:meth:`latency`).
    """

    def __init__(
        self,
        journal_path: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        difficulty: float = 256.0,
        min_difficulty: float = 2.0**-40,
        max_difficulty: float = 2.0**48,
        accept_suggested_difficulty: bool = True,
        job_interval_s: float | None = 30.0,
        max_jobs: int = 8,
        max_shares_per_job: int = 1 << 14,
        extranonce2_size: int = 8,
        max_line_bytes: int = 4096,
        max_connections: int = 64,
        max_requests_per_s: float = 100.0,
        request_burst: float | None = None,
        max_protocol_errors: int = 20,
        handshake_timeout_s: float = 60.0,
        idle_timeout_s: float | None = 3600.0,
        max_write_buffer: int = 1 << 20,
        max_queued_bytes: int = 1 << 21,
        max_devices: int = 1024,
        version_rolling_mask: int = DEFAULT_VERSION_MASK,
        allow_lan: bool = False,
        password: str | None = None,
        workers: Sequence[str] | None = None,
        source_kind: str | None = None,
        unknown_agent_kind: str = "unknown",
        attrs: Mapping[str, Any] | None = None,
        seed: int | None = None,
        flush_interval_s: float = 0.5,
        fsync: bool = False,
        overwrite: bool = False,
        latency_stats: bool = False,
    ) -> None:
        for name, value in (("difficulty", difficulty), ("min_difficulty", min_difficulty),
                            ("max_difficulty", max_difficulty),
                            ("max_requests_per_s", max_requests_per_s),
                            ("handshake_timeout_s", handshake_timeout_s)):
            _check_positive(name, value)
        _check_positive("idle_timeout_s", idle_timeout_s, allow_none=True)
        _check_positive("job_interval_s", job_interval_s, allow_none=True)
        _check_positive("request_burst", request_burst, allow_none=True)
        if not min_difficulty <= max_difficulty:
            raise StratumError("min_difficulty must be <= max_difficulty")
        for name, ivalue, lo in (("max_jobs", max_jobs, 1),
                                 ("max_shares_per_job", max_shares_per_job, 1),
                                 ("extranonce2_size", extranonce2_size, 2),
                                 ("max_line_bytes", max_line_bytes, 256),
                                 ("max_connections", max_connections, 1),
                                 ("max_protocol_errors", max_protocol_errors, 0),
                                 ("max_write_buffer", max_write_buffer, 4096),
                                 ("max_queued_bytes", max_queued_bytes, 4096),
                                 ("max_devices", max_devices, 1),
                                 ("port", port, 0)):
            if isinstance(ivalue, bool) or not isinstance(ivalue, int) or ivalue < lo:
                raise StratumError(f"{name} must be an int >= {lo}, got {ivalue!r}")
        if extranonce2_size > 16:
            raise StratumError("extranonce2_size must be <= 16")
        if not isinstance(version_rolling_mask, int) or not 0 <= version_rolling_mask <= 2**32 - 1:
            raise StratumError("version_rolling_mask must be a u32")
        if not allow_lan and not _is_loopback(host):
            raise StratumError(f"host {host!r} is not a loopback address; pass allow_lan=True "
                               "to listen on the network")
        self.journal_path = Path(journal_path)
        self.host = host
        self._requested_port = port
        self.difficulty = float(difficulty)
        self.min_difficulty = float(min_difficulty)
        self.max_difficulty = float(max_difficulty)
        self.accept_suggested_difficulty = bool(accept_suggested_difficulty)
        self.job_interval_s = None if job_interval_s is None else float(job_interval_s)
        self.max_jobs = max_jobs
        self.max_shares_per_job = max_shares_per_job
        self.extranonce2_size = extranonce2_size
        self.max_line_bytes = max_line_bytes
        self.max_connections = max_connections
        self.max_requests_per_s = float(max_requests_per_s)
        self.request_burst = float(request_burst if request_burst is not None
                                   else max(2 * max_requests_per_s, 16.0))
        self._rate_per_ns = self.max_requests_per_s * 1e-9
        self.max_protocol_errors = max_protocol_errors
        self.handshake_timeout_s = float(handshake_timeout_s)
        self.idle_timeout_s = None if idle_timeout_s is None else float(idle_timeout_s)
        self.max_write_buffer = max_write_buffer
        self.max_queued_bytes = max_queued_bytes
        self.max_devices = max_devices
        self.version_rolling_mask = version_rolling_mask
        self.password = password
        self.allowed_workers = None if workers is None else frozenset(workers)
        if unknown_agent_kind not in SOURCE_KINDS:
            raise StratumError(f"unknown_agent_kind must be one of {SOURCE_KINDS}, got "
                               f"{unknown_agent_kind!r}")
        self.unknown_agent_kind = unknown_agent_kind
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise StratumError(f"seed must be an int or None, got {seed!r}")
        origin = "given" if seed is not None else "drawn from os.urandom (fresh jobs)"
        if seed is None:
            seed = int.from_bytes(os.urandom(6), "big")
        self.seed = seed
        self._rng = random.Random(seed)
        params = {
            "host": host, "difficulty": difficulty, "min_difficulty": min_difficulty,
            "max_difficulty": max_difficulty,
            "accept_suggested_difficulty": accept_suggested_difficulty,
            "job_interval_s": job_interval_s, "max_jobs": max_jobs,
            "max_shares_per_job": max_shares_per_job, "extranonce2_size": extranonce2_size,
            "max_line_bytes": max_line_bytes, "max_connections": max_connections,
            "max_requests_per_s": max_requests_per_s, "version_rolling_mask":
                _hex32(version_rolling_mask), "allow_lan": allow_lan,
            "flush_interval_s": flush_interval_s, "fsync": fsync,
        }
        a: dict[str, Any] = {"title": "Stratum v1 capture", "source_kind": source_kind,
                             "parameters": json.dumps(params, sort_keys=True), "seed": seed,
                             "source_file": None}
        a.update(attrs or {})
        a.update(seed=seed, seed_origin=origin)  # the seed these jobs really came from
        try:
            self.journal = Journal(self.journal_path, attrs=a, flush_interval_s=flush_interval_s,
                                   fsync=fsync, overwrite=overwrite, latency_stats=latency_stats)
        except JournalError as exc:
            raise StratumError(str(exc)) from exc
        if workers is not None:
            for w in workers:
                self.journal.register_device(w)
        self.stats: collections.Counter[str] = collections.Counter()
        self._conns: set[_Connection] = set()
        self._jobs: collections.OrderedDict[str, _Job] = collections.OrderedDict()
        self._stale_ids: collections.deque[str] = collections.deque(maxlen=_STALE_IDS_KEPT)
        self._stale_set: set[str] = set()
        self._retired: collections.OrderedDict[str, tuple[_Job, int]] = \
            collections.OrderedDict()
        self._current: _Job | None = None
        self._job_counter = 0
        self._en1_counter = self._rng.getrandbits(32)
        self._targets: dict[float, int] = {}
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._stopped = False
        self._unattributed: int | None = None
        self.port: int = port

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> StratumCaptureServer:
        """Bind, issue the first job and start the job timer; returns ``self``."""
        if self._server is not None:
            raise StratumError("server already started")
        self._loop = asyncio.get_running_loop()
        try:
            self._server = await self._loop.create_server(
                lambda: _Connection(self), self.host, self._requested_port,
                reuse_address=True, backlog=max(128, self.max_connections))
        except OSError as exc:
            self.journal.close(footer={"error": str(exc)})
            raise StratumError(f"cannot listen on {self.host}:{self._requested_port}: {exc}"
                               ) from exc
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        self.journal.append_note("listen", {"host": self.host, "port": self.port})
        self.new_job(clean=True)
        if self.job_interval_s is not None:
            self._tasks.append(asyncio.create_task(self._job_timer()))
        self._tasks.append(asyncio.create_task(self._housekeeping()))
        return self

    async def __aenter__(self) -> StratumCaptureServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> Path:
        """Close every connection, close the journal (footer with statistics); its path."""
        if self._stopped:
            return self.journal_path
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.close("server stopping")
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        await asyncio.sleep(0)
        self._stopped = True
        with contextlib.suppress(JournalError):
            self.journal.set_attrs(**self.throttle_summary())
        self.journal.close(footer={"stats": dict(self.stats)})
        return self.journal_path

    def throttle_summary(self) -> dict[str, int]:
        """Counters of the rate limit and refusals, as recorded in the capture's attributes.

        Returns
        -------
        dict
            ``server_throttled`` (times a connection ran out of line tokens),
            ``server_delayed_lines`` (lines processed later than the read that brought them;
            each is journalled with its receipt time and ``processing_delay_ns``),
            ``server_refused_lines`` (lines read but not judged: after a line longer than
            ``max_line_bytes`` or once the connection was being closed),
            ``server_read_pauses`` (times reading paused because ``max_queued_bytes`` waited)
            and ``server_refused_connections`` (over ``max_connections``).
        """
        st = self.stats
        return {"server_throttled": int(st["throttled"]),
                "server_delayed_lines": int(st["delayed_lines"]),
                "server_refused_lines": int(st["refused_lines"]),
                "server_read_pauses": int(st["read_pauses"]),
                "server_refused_connections": int(st["refused"])}

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._server is not None and not self._stopping

    def to_dataset(self) -> Any:
        """The capture so far (or final, after :meth:`stop`) as a dataset, read from the journal."""
        if not self.journal.closed:
            self.journal.flush()
        return recover(self.journal_path)

    def latency(self) -> dict[str, float]:
        """Latency percentiles [ns]: receipt -> journal append and receipt -> flushed to the OS.

        Needs ``latency_stats=True``; keys ``append_p50``, ``append_p99``, ``flush_p50``,
        ``flush_p99``, ``n_samples``.
        """
        a, f = self.journal.append_latency, self.journal.flush_latency
        if a is None or f is None:
            raise StratumError("latency statistics need latency_stats=True")
        pa, pf = a.percentiles(), f.percentiles()
        return {"append_p50": pa[50.0], "append_p99": pa[99.0], "flush_p50": pf[50.0],
                "flush_p99": pf[99.0], "n_samples": float(len(a))}

    # ------------------------------------------------------------------ helpers
    def _loop_call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon(fn, *args)

    def _note(self, kind: str, data: Mapping[str, Any]) -> None:
        with contextlib.suppress(JournalError):
            self.journal.append_note(kind, data)

    def _next_extranonce1(self) -> bytes:
        self._en1_counter = (self._en1_counter + 1) & 0xFFFFFFFF
        return self._en1_counter.to_bytes(4, "big")

    def _target(self, difficulty: float) -> int:
        t = self._targets.get(difficulty)
        if t is None:
            if len(self._targets) > 4096:
                self._targets.clear()
            t = self._targets[difficulty] = mining.target_from_difficulty(difficulty)
        return t

    def _register_device(self, name: str, model: str, kind: str, agent: str) -> int | None:
        idx = self.journal.device_index(name)
        if idx is None and len(self.journal.devices) >= self.max_devices:
            return None
        return self.journal.register_device(name, model=model, source_kind=kind,
                                            firmware=agent)

    def _agent_info(self, agent: str) -> tuple[str, str]:
        model, kind = agent_device_info(agent)
        return model, (self.unknown_agent_kind if kind == "unknown" else kind)

    def _unattributed_device(self) -> int:
        if self._unattributed is None:
            self._unattributed = self.journal.register_device(UNATTRIBUTED)
        return self._unattributed

    @property
    def connections(self) -> int:
        """Number of open connections."""
        return len(self._conns)

    @property
    def current_job_id(self) -> str | None:
        """Id of the newest job."""
        return None if self._current is None else self._current.job_id

    # ------------------------------------------------------------------ jobs
    def new_job(self, payload: bytes | None = None, clean: bool = True) -> str:
        """Issue a fresh job to every ready miner (call in the server's event loop).

        Parameters
        ----------
        payload : bytes, optional
            Experiment payload placed in the coinbase (``OP_RETURN`` output), at most
            :data:`MAX_PAYLOAD_BYTES` bytes; recorded with the job in the journal.
        clean : bool
            ``clean_jobs``: make every earlier job stale (error 21 for late shares) and start a
            new previous-block hash.

        Returns
        -------
        str
            The job id.
        """
        if payload is not None and not isinstance(payload, bytes | bytearray | memoryview):
            raise StratumError(f"payload must be bytes, got {type(payload).__name__}")
        if self._stopping:
            raise StratumError("server is stopping")
        payload_b = None if payload is None else bytes(payload)
        self._job_counter += 1
        job_id = f"{self._job_counter:x}"
        if clean or self._current is None:
            prevhash = self._rng.getrandbits(256).to_bytes(32, "little")
        else:
            prevhash = self._current.prevhash_header
        coinb1, coinb2 = build_coinbase_parts(self._job_counter, payload_b, 4,
                                              self.extranonce2_size)
        t_host, t_mono = time.time_ns(), time.monotonic_ns()
        job = _Job(job_id=job_id, id_json=json.dumps(job_id), prevhash_header=prevhash,
                   coinb1=coinb1, coinb2=coinb2, branch=(), version=JOB_VERSION,
                   nbits=JOB_NBITS, ntime=t_host // 1_000_000_000, payload=payload_b,
                   created_mono_ns=t_mono)
        job.build_notify()
        if clean:
            for old, old_job in self._jobs.items():
                self._mark_stale(old, old_job, t_mono)
            self._jobs.clear()
        self._jobs[job_id] = job
        while len(self._jobs) > self.max_jobs:
            old, old_job = self._jobs.popitem(last=False)
            self._mark_stale(old, old_job, t_mono)
        self._current = job
        self.journal.append_job({
            "job_id": job_id, "t_host_ns": t_host, "t_mono_ns": t_mono, "clean": clean,
            "payload": None if payload_b is None else payload_b.hex(),
            "version": _hex32(job.version), "nbits": _hex32(job.nbits),
            "ntime": _hex32(job.ntime), "prevhash": mining.swap_words(prevhash).hex(),
            "coinb1": coinb1.hex(), "coinb2": coinb2.hex(), "merkle_branch": [],
        })
        self.stats["jobs"] += 1
        for conn in list(self._conns):
            if conn.subscribed and conn.authorized and not conn.closed:
                conn.send_job(job, clean)
        return job_id

    def _mark_stale(self, job_id: str, job: _Job, t_mono: int) -> None:
        """Retire a job; lines received before ``t_mono`` [ns] are still judged against it."""
        self._retired[job_id] = (job, t_mono)
        while len(self._retired) > _RETIRED_KEPT:
            self._retired.popitem(last=False)
        if len(self._stale_ids) == self._stale_ids.maxlen:
            self._stale_set.discard(self._stale_ids[0])
        self._stale_ids.append(job_id)
        self._stale_set.add(job_id)

    def _rotate_full_job(self, job: _Job) -> None:
        if job is self._current and not self._stopping:
            self.stats["job_rotations"] += 1
            self.new_job(payload=job.payload, clean=False)

    def set_difficulty(self, difficulty: float) -> None:
        """Set the share difficulty of every connection (and the default) and resend the job."""
        _check_positive("difficulty", difficulty)
        self.difficulty = float(difficulty)
        for conn in list(self._conns):
            conn.difficulty = self.difficulty
            conn._resend_current()

    def step(self, payload: bytes | None = None, difficulty: float | None = None, *,
             clean: bool = True) -> str:
        """Switch every miner to a new step: difficulty and job together (call in the loop).

        One call, so no share is judged against a mix of the two: the share difficulty of
        every connection (and the default for miners that connect later) becomes
        ``difficulty``, then a fresh job carrying ``payload`` goes out; each miner gets
        ``mining.set_difficulty`` (when it changed) right before the job's ``mining.notify``.
        With ``clean`` (default) every earlier job is retired at this moment: shares of them
        received later are recorded as stale (error 21, ``valid = False``), those received
        before are still judged against their job at the difficulty it was sent with.
        Unlike :meth:`set_difficulty` (which resends the current job), a share found at the
        old difficulty is never judged at the new one.

        Parameters
        ----------
        payload : bytes, optional
            Experiment payload of the new job (see :meth:`new_job`); timer jobs and rotations
            that follow keep it until the next step.
        difficulty : float, optional
            New share difficulty [1] (default: unchanged). It overrides earlier
            ``mining.suggest_difficulty`` requests; a later suggestion (a miner that
            reconnects) is honoured again when ``accept_suggested_difficulty``.
        clean : bool
            ``clean_jobs`` of the new job.

        Returns
        -------
        str
            The new job's id (its journal record holds the payload).
        """
        if difficulty is not None:
            _check_positive("difficulty", difficulty)
            self.difficulty = float(difficulty)
            for conn in list(self._conns):
                conn.difficulty = self.difficulty
        job_id = self.new_job(payload=payload, clean=clean)
        self._note("step", {"job_id": job_id, "difficulty": self.difficulty,
                            "payload": None if payload is None else bytes(payload).hex()})
        return job_id

    async def _job_timer(self) -> None:
        assert self.job_interval_s is not None
        while True:
            await asyncio.sleep(self.job_interval_s)
            cur = self._current
            self.new_job(payload=None if cur is None else cur.payload, clean=False)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic_ns()
            for conn in list(self._conns):
                if not (conn.subscribed and conn.authorized) and \
                        now - conn.connected_mono > self.handshake_timeout_s * 1e9:
                    conn.close("handshake timeout")
                elif self.idle_timeout_s is not None and \
                        now - conn.last_line_mono > self.idle_timeout_s * 1e9:
                    conn.close("idle timeout")


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- threaded wrapper


class ThreadedCaptureServer:
    """Run a :class:`StratumCaptureServer` in a background thread (no asyncio needed).

    Use it as a context manager in notebooks::

        with ThreadedCaptureServer("cap.journal", difficulty=256) as srv:
            print(srv.port)          # point the miners here
            ...                      # capture
            srv.new_job(payload=b"input-1")
        ds = srv.to_dataset()

    Parameters
    ----------
    journal_path : path-like
        Journal file.
    **kwargs
        Passed to :class:`StratumCaptureServer`.
    """

    def __init__(self, journal_path: str | os.PathLike[str], **kwargs: Any) -> None:
        self.server = StratumCaptureServer(journal_path, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._journal_path: Path | None = None

    def __enter__(self) -> ThreadedCaptureServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> ThreadedCaptureServer:
        """Start the server thread and wait until it listens; returns ``self``."""
        if self._thread is not None:
            raise StratumError("already started")
        self._thread = threading.Thread(target=self._run, name="asiclab-stratum", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise StratumError("capture server did not start in time")
        if self._error is not None:
            raise StratumError(f"capture server failed to start: {self._error}") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.server.start())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 10.0) -> Any:
        """Run ``fn(*args)`` in the server's event loop and return its result."""
        if self._loop is None or not self._loop.is_running():
            raise StratumError("capture server is not running")

        async def _do() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(_do(), self._loop).result(timeout)

    @property
    def port(self) -> int:
        """Listening TCP port."""
        return self.server.port

    @property
    def host(self) -> str:
        """Bound address."""
        return self.server.host

    @property
    def journal_path(self) -> Path:
        """Journal file."""
        return self.server.journal_path

    @property
    def stats(self) -> dict[str, int]:
        """Counters (submits, accepted, rejected_<code>, connections, jobs...)."""
        return dict(self.server.stats)

    def new_job(self, payload: bytes | None = None, clean: bool = True) -> str:
        """Issue a job (see :meth:`StratumCaptureServer.new_job`); returns its id."""
        return str(self.call(self.server.new_job, payload, clean))

    def set_difficulty(self, difficulty: float) -> None:
        """Set every connection's difficulty (see :meth:`StratumCaptureServer.set_difficulty`)."""
        self.call(self.server.set_difficulty, difficulty)

    def step(self, payload: bytes | None = None, difficulty: float | None = None, *,
             clean: bool = True) -> str:
        """Difficulty and job of a new step, from any thread (see
        :meth:`StratumCaptureServer.step`); returns the job id."""
        return str(self.call(partial(self.server.step, payload, difficulty, clean=clean)))

    def capture(self, duration_s: float, *, progress: bool = True) -> dict[str, int]:
        """Let the capture run for ``duration_s`` [s], with a progress bar (notebook helper).

        Interrupting (KeyboardInterrupt, the notebook's stop button) ends the wait early; every
        share received so far is in the journal, and the server keeps running until
        :meth:`stop`.

        Returns
        -------
        dict
            The server counters (:attr:`stats`).
        """
        from tqdm.auto import tqdm

        if not (isinstance(duration_s, int | float) and math.isfinite(duration_s)
                and duration_s >= 0):
            raise StratumError(f"duration_s must be finite and >= 0, got {duration_s!r}")
        t_end = time.monotonic() + float(duration_s)
        with tqdm(total=round(float(duration_s), 1), unit="s", disable=not progress,
                  desc="capture") as bar:
            try:
                while (left := t_end - time.monotonic()) > 0:
                    time.sleep(min(0.5, left))
                    bar.n = round(float(duration_s) - max(t_end - time.monotonic(), 0.0), 1)
                    st = self.server.stats
                    bar.set_postfix(submits=st["submits"], accepted=st["accepted"],
                                    miners=self.server.connections, refresh=False)
                    bar.refresh()
            except KeyboardInterrupt:
                pass
        return self.stats

    def stop(self, timeout: float = 30.0) -> Path:
        """Stop the server, close the journal and join the thread; returns the journal path."""
        if self._journal_path is not None:
            return self._journal_path
        loop = self._loop
        if loop is not None and loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self.server.stop(), loop)
            try:
                self._journal_path = fut.result(timeout)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                if self._thread is not None:
                    self._thread.join(timeout)
        else:
            self.server.journal.close()
            self._journal_path = self.server.journal_path
        return self._journal_path

    def to_dataset(self) -> Any:
        """The capture dataset read from the journal (so far, or final after :meth:`stop`)."""
        return self.server.to_dataset()

    def latency(self) -> dict[str, float]:
        """See :meth:`StratumCaptureServer.latency`."""
        return self.server.latency()
