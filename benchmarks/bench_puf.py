"""Benchmark of the PUF evaluation (asiclab.puf): fleet simulation and analysis times.

Run: ``python benchmarks/bench_puf.py``. The issue's case: a simulated fleet of 10 chips x 12
challenges (here 4 captures of 60 s each, ticket difficulty 1, about 100 nonces/s), serial and
in parallel across processes (:func:`asiclab.puf.fleet.simulate_fleet` with ``workers``), then
the per-capture responses and the evaluation at every challenge. Wall-clock seconds (median of
repeats); the machine is shared, so the parallel speed-up depends on its load.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from asiclab.puf import evaluate, fleet
from asiclab.puf.responses import responses_from_capture

CHALLENGES = [1200.0, 1180.0, 1160.0, 1150.0, 1140.0, 1130.0, 1125.0, 1120.0, 1115.0, 1110.0,
              1105.0, 1100.0]
KW: dict[str, Any] = {"n_captures": 4, "dwell_s": 60.0, "settle_s": 30.0, "seed": 0}


def _time(fn: Callable[[], Any], repeats: int = 2) -> tuple[float, Any]:
    out, ts = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out


def main() -> None:
    cpus = os.cpu_count() or 1
    print(f"fleet: 10 chips x {len(CHALLENGES)} challenges x {KW['n_captures']} captures of "
          f"{KW['dwell_s']:g} s (virtual), {cpus} CPUs")
    t1, ds = _time(lambda: fleet.simulate_fleet(10, CHALLENGES, workers=1, **KW))
    n = ds.sizes["event"]
    print(f"  simulate_fleet, 1 process      : {t1:7.2f} s  ({n:,} events, "
          f"{n / t1 / 1e6:.2f} M events/s)")
    w = min(cpus, 4)
    if w > 1:
        tp, _ = _time(lambda: fleet.simulate_fleet(10, CHALLENGES, workers=w, **KW))
        print(f"  simulate_fleet, {w} processes    : {tp:7.2f} s  (speed-up {t1 / tp:.2f} x)")
    tr, r = _time(lambda: responses_from_capture(ds))
    print(f"  responses_from_capture         : {tr:7.2f} s  ({len(r)} captures)")
    te, _ = _time(lambda: evaluate.evaluate_fleet(r, n_enroll=2, n_boot=1000), repeats=1)
    print(f"  evaluate_fleet (12 challenges, 1000 bootstrap): {te:7.2f} s")
    tw, _ = _time(lambda: evaluate.pairwise_tests(r.at(1105.0), n_perm=999), repeats=1)
    print(f"  pairwise_tests (45 pairs)      : {tw:7.2f} s")


if __name__ == "__main__":
    main()
