"""Benchmark of the Stratum capture server: throughput, latency, memory, zero loss.

Runs the capture server in its own process (``--serve``) and 16+ concurrent miners in this
process, each on its own TCP connection over loopback, pipelining ``mining.submit`` lines.
The miners ask for a trivial difficulty (``2**-40``: every hash meets it) and send
precomputed-format submissions with a fresh extranonce2 each, so their cost is formatting only;
the server still verifies every share by SHA256d, checks duplicates and journals it.

Printed figures
---------------
* sustained submits per second (all connections together) over the whole run;
* p50 / p99 latency from the receipt of a line to (a) its record being appended to the journal
  queue and (b) that record being written and flushed to the operating system (dominated by the
  flush interval);
* resident memory (VmRSS) of the server process at several event counts up to ``--events``
  (default 10**6): it must not grow with the count (duplicate sets are per job and dropped with
  the job; events live only in the journal);
* a check that every submission was answered ``true`` and appears exactly once in the journal.

Usage: ``python benchmarks/bench_stratum.py [--events N] [--miners M] [--window W]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


# --------------------------------------------------------------------------- server process
def serve(journal: str) -> None:
    """Run the capture server until a line arrives on stdin; print statistics as JSON."""
    from asiclab.capture.server import StratumCaptureServer

    async def main() -> None:
        srv = StratumCaptureServer(
            journal, job_interval_s=None, max_requests_per_s=1e7, max_connections=256,
            max_shares_per_job=1 << 15, max_jobs=4, latency_stats=True, overwrite=True,
            flush_interval_s=0.5)
        await srv.start()
        print(json.dumps({"port": srv.port, "pid": os.getpid()}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)
        lat = srv.latency()
        await srv.stop()
        print(json.dumps({"latency": lat, "stats": dict(srv.stats)}), flush=True)

    asyncio.run(main())


def rss_kib(pid: int) -> int:
    """Resident set size of a process [KiB] (Linux /proc)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


# --------------------------------------------------------------------------- miners
class Miner(asyncio.Protocol):
    """Pipelining benchmark miner (raw protocol; minimal work per share)."""

    def __init__(self, name: str, quota: int, window: int, done: asyncio.Future[None],
                 counter: list[int]) -> None:
        self.name = name
        self.quota = quota
        self.window = window
        self.done = done
        self.counter = counter
        self.buf = b""
        self.sent = 0
        self.acked = 0
        self.rejected = 0
        self.job_id: str | None = None
        self.ntime = ""
        self.en2_size = 8
        self.ready = False
        self.hs_replies = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(
            b'{"id":1,"method":"mining.configure","params":[["version-rolling"],'
            b'{"version-rolling.mask":"ffffffff"}]}\n'
            b'{"id":2,"method":"mining.subscribe","params":["bench-miner/1.0"]}\n'
            + f'{{"id":3,"method":"mining.authorize","params":["{self.name}","x"]}}\n'.encode()
            + b'{"id":4,"method":"mining.suggest_difficulty","params":[9.094947017729282e-13]}\n')

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        lines = buf.split(b"\n")
        self.buf = lines.pop()
        for line in lines:
            if line.startswith(b'{"id":null,"method":"mining.notify"'):
                params = json.loads(line)["params"]
                self.job_id, self.ntime = params[0], params[7]
            elif line.startswith(b'{"id":null'):
                continue
            elif self.hs_replies < 4:
                self.hs_replies += 1
                msg = json.loads(line)
                if msg["id"] == 2:
                    self.en2_size = msg["result"][2]
            elif b'"result":true' in line:
                self.acked += 1
            else:
                self.rejected += 1
        if self.hs_replies >= 4 and self.job_id is not None and \
                not self.ready:
            self.ready = True
        if self.ready:
            self.pump()

    def pump(self) -> None:
        assert self.transport is not None
        outstanding = self.sent - self.acked - self.rejected
        n = min(self.window - outstanding, self.quota - self.sent)
        if n > 0:
            w = 2 * self.en2_size
            name, jid, ntime = self.name, self.job_id, self.ntime
            s = self.sent
            self.transport.write("".join(
                f'{{"id":{s + i + 10},"method":"mining.submit","params":["{name}","{jid}",'
                f'"{s + i:0{w}x}","{ntime}","{(s + i) & 0xFFFFFFFF:08x}"]}}\n'
                for i in range(n)).encode())
            self.sent += n
            self.counter[0] += n
        if self.acked + self.rejected >= self.quota and not self.done.done():
            self.done.set_result(None)


async def run_miners(port: int, pid: int, events: int, miners: int, window: int
                     ) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    per = events // miners
    counter = [0]
    protos: list[Miner] = []
    futs = []
    for i in range(miners):
        fut: asyncio.Future[None] = loop.create_future()
        name = f"bench-{i:02d}"
        _, proto = await loop.create_connection(
            lambda n=name, f=fut: Miner(n, per, window, f, counter), "127.0.0.1", port)
        protos.append(proto)  # type: ignore[arg-type]
        futs.append(fut)
    checkpoints = sorted({int(events * q) for q in (0.1, 0.25, 0.5, 0.75, 0.95)})
    rss: list[tuple[int, int]] = [(0, rss_kib(pid))]
    t0 = time.perf_counter()
    gather = asyncio.gather(*futs)
    while not gather.done():
        await asyncio.sleep(0.05)
        done = sum(p.acked + p.rejected for p in protos)
        while checkpoints and done >= checkpoints[0]:
            rss.append((done, rss_kib(pid)))
            checkpoints.pop(0)
    elapsed = time.perf_counter() - t0
    rss.append((sum(p.acked + p.rejected for p in protos), rss_kib(pid)))
    for p in protos:
        assert p.transport is not None
        p.transport.close()
    return {"elapsed": elapsed, "sent": sum(p.sent for p in protos),
            "acked": sum(p.acked for p in protos), "rejected": sum(p.rejected for p in protos),
            "rss": rss}


def one_run(events: int, miners: int, window: int) -> dict[str, object]:
    """Start a server process, run the miners, stop, read the journal back; the figures."""
    from asiclab.capture.journal import read_journal

    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / "bench.journal"
        proc = subprocess.Popen([sys.executable, __file__, "--serve", str(journal)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdin is not None and proc.stdout is not None
        hello = json.loads(proc.stdout.readline())
        res = asyncio.run(run_miners(hello["port"], hello["pid"], events, miners, window))
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        final = json.loads(proc.stdout.readline())
        proc.wait(30)
        t = time.perf_counter()
        c = read_journal(journal)
        res["t_read"] = time.perf_counter() - t
        ev = c.events
        res["n_events"] = int(ev["t_host_ns"].size)
        res["n_distinct"] = len(set(zip(ev["device_index"].tolist(), ev["extranonce2"].tolist(),
                                        strict=True)))
        res["n_valid"] = int(ev["valid"].sum())
        res["size_mb"] = journal.stat().st_size / 1e6
    res.update(final)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--miners", type=int, default=16)
    ap.add_argument("--window", type=int, default=64, help="outstanding submits per miner")
    ap.add_argument("--latency-events", type=int, default=20_000,
                    help="submits of the unsaturated run (one outstanding per miner)")
    ap.add_argument("--serve", metavar="JOURNAL", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    res = one_run(args.events, args.miners, args.window)
    n_sent = int(res["sent"])  # type: ignore[call-overload]
    rate = n_sent / float(res["elapsed"])  # type: ignore[arg-type]
    lat = res["latency"]
    assert isinstance(lat, dict)
    print(f"Stratum capture server benchmark ({args.miners} miners on loopback, "
          f"{os.cpu_count()} CPU(s); server and miners in two processes)")
    print(f"Saturated run: {args.window} outstanding submits per miner")
    print(f"  submits sent / answered true / rejected : {n_sent} / {res['acked']} / "
          f"{res['rejected']}")
    print(f"  sustained submits per second            : {rate:,.0f} /s "
          f"({n_sent} in {res['elapsed']:.1f} s)")
    print(f"  journal events / distinct / valid       : {res['n_events']} / "
          f"{res['n_distinct']} / {res['n_valid']}")
    lost = n_sent - int(res["n_distinct"])  # type: ignore[call-overload]
    dup = int(res["n_events"]) - int(res["n_distinct"])  # type: ignore[call-overload]
    print(f"  lost / duplicated events                : {lost} / {dup}")
    print(f"  latency receipt -> journal append  p50 / p99 : {lat['append_p50'] / 1e3:.1f} / "
          f"{lat['append_p99'] / 1e3:.1f} us (lines of one read share its receipt stamp)")
    print(f"  latency receipt -> flushed to OS   p50 / p99 : {lat['flush_p50'] / 1e6:.1f} / "
          f"{lat['flush_p99'] / 1e6:.1f} ms (flush interval 500 ms)")
    print("  server resident memory (events -> VmRSS):")
    rss_pts = res["rss"]
    assert isinstance(rss_pts, list)
    for n, kib in rss_pts:
        print(f"    {n:>9d} events : {kib / 1024:7.1f} MiB")
    rss = np.array([kib for _, kib in rss_pts], dtype=float)
    print(f"  RSS growth from 25% of the run to the end  : "
          f"{(rss[-1] - rss[len(rss) // 3]) / 1024:+.1f} MiB")
    print(f"  journal size {res['size_mb']:.0f} MB; read back in {res['t_read']:.1f} s; "
          f"server stats: {res['stats']}")
    ok = lost == 0 and dup == 0 and int(res["rejected"]) == 0  # type: ignore[call-overload]
    if args.latency_events > 0:
        low = one_run(args.latency_events, args.miners, 1)
        lat1 = low["latency"]
        assert isinstance(lat1, dict)
        lost1 = int(low["sent"]) - int(low["n_distinct"])  # type: ignore[call-overload]
        print(f"Unsaturated run: 1 outstanding submit per miner, {low['sent']} submits, "
              f"{int(low['sent']) / float(low['elapsed']):,.0f} /s")  # type: ignore[call-overload,arg-type]
        print(f"  latency receipt -> journal append  p50 / p99 : "
              f"{lat1['append_p50'] / 1e3:.1f} / {lat1['append_p99'] / 1e3:.1f} us")
        print(f"  lost / duplicated events                : {lost1} / "
              f"{int(low['n_events']) - int(low['n_distinct'])}")  # type: ignore[call-overload]
        ok = ok and lost1 == 0 and low["n_events"] == low["n_distinct"]
    print("  RESULT:", "zero lost, zero duplicated" if ok else "LOSS OR DUPLICATION")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
