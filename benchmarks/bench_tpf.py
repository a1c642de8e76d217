"""Benchmark of the round-level SHA256d engine (asiclab.tpf.engine), printed figures only.

In one run, on the same header:

1. a ``hashlib`` loop (``sha256(sha256(header))`` per nonce, one core);
2. ``asiclab.protocol.mining.iter_nonces`` (hashlib with the midstate reused, one core);
3. the engine's :func:`final_hash` on one numba thread and on every thread numba has;
4. state extraction (:func:`states_after`) for 10^7 nonces at one round (round 5), in chunks
   of 10^6, on every thread.

Reference: pooler's cpuminer does 4-5 M SHA256d/s per thread with SIMD. numba compilation is
cached (``cache=True``); the first call is timed separately as "warm-up".
Run: ``python benchmarks/bench_tpf.py``.
"""

from __future__ import annotations

import os
import time

import numba
import numpy as np

from asiclab.protocol import mining as mn
from asiclab.tpf import engine as E


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds / 1e6:8.3f} M nonces/s ({seconds:.2f} s for {n:,})"


def main() -> None:
    prefix = E.random_prefixes(1, seed=1)[0]
    job = E.Job.from_prefix(prefix)
    threads = numba.get_num_threads()
    print(f"cores visible: {os.cpu_count()}, numba threads: {threads}")

    t = time.perf_counter()
    E.final_hash(job, np.arange(10, dtype=np.uint32))
    E.states_after(job, np.arange(10, dtype=np.uint32), [5])
    print(f"warm-up (load cached / compile kernels): {time.perf_counter() - t:.2f} s")

    n_py = 300_000
    nonces = np.arange(n_py, dtype=np.uint32)
    t = time.perf_counter()
    E.hashlib_loop(prefix, nonces)
    t_hashlib = time.perf_counter() - t
    print(f"hashlib loop, 1 core:                 {_rate(n_py, t_hashlib)}")

    t = time.perf_counter()
    hits = sum(1 for _ in mn.iter_nonces(prefix, 1.0, count=n_py))
    t_mining = time.perf_counter() - t
    print(f"asiclab.protocol.mining.iter_nonces, 1 core:   {_rate(n_py, t_mining)} ({hits} hits)")

    n_eng = 4_000_000
    nonces = np.arange(n_eng, dtype=np.uint32)
    numba.set_num_threads(1)
    t = time.perf_counter()
    E.final_hash(job, nonces)
    t_one = time.perf_counter() - t
    print(f"engine final_hash, 1 thread:          {_rate(n_eng, t_one)}")
    numba.set_num_threads(threads)
    t = time.perf_counter()
    E.final_hash(job, nonces)
    t_all = time.perf_counter() - t
    print(f"engine final_hash, {threads} threads:         {_rate(n_eng, t_all)}")
    print(f"speed-up over the hashlib loop, 1 thread: {(n_eng / t_one) / (n_py / t_hashlib):.1f}x"
          f" (issue target >= 5x); per core with {threads} threads: "
          f"{n_eng / t_all / threads / 1e6:.3f} M/s (cpuminer with SIMD: 4-5 M/s per thread)")

    n_states, chunk = 10_000_000, 1_000_000
    t = time.perf_counter()
    for start in range(0, n_states, chunk):
        E.states_after(job, np.arange(start, start + chunk, dtype=np.uint32), [5])
    t_states = time.perf_counter() - t
    print(f"states_after round 5, 10^7 nonces, {threads} threads: {t_states:.2f} s "
          f"(issue target < 10 s on 2 cores)")
    t = time.perf_counter()
    E.states_after(job, np.arange(100_000, dtype=np.uint32), np.arange(1, 129))
    print(f"states_after all 128 rounds, 10^5 nonces (410 MB out): "
          f"{time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
