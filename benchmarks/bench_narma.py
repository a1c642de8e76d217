"""Benchmark of the NARMA-10 topic (asiclab.narma): wall-clock seconds, printed, never asserted.

Run: ``python benchmarks/bench_narma.py``. Targets of issue 9 on this 2-core machine:

ESN N = 400, 10^4 steps, fit and predict
    < 5 s (states, ridge fit on the training block, prediction of the test block).
simulated drive, 10^4 steps
    The step driver on the simulated chip (payload encoding, one telemetry sample per step)
    plus the per-step features.
notebook 03, quick parameters
    < 30 s, through the runner (papermill), with ``notebooks/params/quick.yaml``.
"""

from __future__ import annotations

import sys
import tempfile
import time

from asiclab.narma import driver, features, task
from asiclab.narma import readout as ro


def bench_esn() -> float:
    s = task.generate(10_000, seed=0)
    sp = task.chronological_split(10_000, washout=200, train=0.7, val=0.1)
    t0 = time.perf_counter()
    X = ro.ESN(400, spectral_radius=0.9, input_scaling=0.2, seed=0).states(s.u)
    m = ro.Ridge(1e-6).fit(X[sp.train], s.target[sp.train])
    score = task.nrmse(s.target[sp.test], m.predict(X[sp.test]))
    dt = time.perf_counter() - t0
    print(f"ESN N=400, 1e4 steps, fit + predict: {dt:.2f} s (target < 5 s), test NRMSE "
          f"{score:.3f}")
    return dt


def bench_drive() -> float:
    s = task.generate(10_000, seed=0)
    t0 = time.perf_counter()
    ds = driver.drive(s.u, "payload", step_s=1.0, seed=0)
    features.step_features(ds)
    dt = time.perf_counter() - t0
    print(f"simulated drive + features, 1e4 steps ({ds.sizes['event']} events): {dt:.2f} s")
    return dt


def bench_notebook() -> float:
    from asiclab import runner

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = runner.reproduce("notebooks/params/quick.yaml", only=["03"], run_id="bench",
                               runs_dir=tmp, progress=False)
        dt = time.perf_counter() - t0
    status = res.notebooks[0].status if res.notebooks else "missing"
    print(f"notebook 03 with quick parameters: {dt:.1f} s (target < 30 s), status {status}")
    return dt


if __name__ == "__main__":
    bench_esn()
    bench_drive()
    if "--no-notebook" not in sys.argv:
        bench_notebook()
