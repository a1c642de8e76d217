"""Benchmark of the Silicon-Heartbeat battery (asiclab.heartbeat).

Prints wall time and peak resident memory (RSS) of:

1. ``run_battery`` on one simulated Poisson record of 10^7 events (numpy, in memory);
2. ``analyze_capture`` on a 10^7-event capture file (two operating points of 5 x 10^6 events)
   opened lazily with ``open_captures`` (dask-backed), including the surrogate comparison,
   the papers' metrics, counting curves and spectra;
3. the calibration workload: the battery on 1,000 records of 2,000 events.

Each scenario runs in a fresh subprocess so that its peak RSS is its own (the figure includes
the interpreter and libraries, ~150 MB, and for scenario 1 the 80 MB input). All data are
simulated. Run: ``python benchmarks/bench_heartbeat.py``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

N_BIG = 10_000_000


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _battery_big() -> dict[str, float]:
    from asiclab import heartbeat as hb

    x = hb.simulate_poisson_intervals(N_BIG - 1, 10.0, rng=np.random.default_rng(1))
    t0 = time.perf_counter()
    res = hb.run_battery(x)
    dt = time.perf_counter() - t0
    return {"seconds": dt, "peak_rss_mb": _peak_rss_mb(),
            "min_p": float(np.nanmin(res.pvalue))}


def _write_big_capture(path: str) -> None:
    import xarray as xr

    from asiclab import dataset

    rng = np.random.default_rng(2)
    t = (1_700_000_000 * 10**9 + np.cumsum(rng.exponential(1e8, N_BIG))).astype(np.int64)
    ds = dataset.build_capture(
        events={"t_host_ns": t, "device_index": np.zeros(N_BIG, np.int32),
                "op_index": (np.arange(N_BIG) >= N_BIG // 2).astype(np.int32),
                "valid": np.ones(N_BIG, bool)},
        ops={"op_device_index": [0, 0], "op_voltage_set": [1200.0, 1100.0],
             "op_frequency_set": [500.0, 500.0]},
        attrs={"source_kind": "simulated", "title": "heartbeat benchmark (simulated)"},
    )
    # fixed-width empty job ids keep the 10^7-row file quick to write (schema allows str kinds)
    ds["job_id"] = xr.Variable(("event",), np.zeros(N_BIG, dtype="S1"), ds["job_id"].attrs)
    dataset.validate_capture(ds)
    ds.to_netcdf(path, engine="netcdf4")


def _analyze_big(path: str) -> dict[str, float]:
    from asiclab import heartbeat as hb

    t0 = time.perf_counter()
    ds = hb.open_captures(path)
    rep = hb.analyze_capture(ds, progress=False)
    dt = time.perf_counter() - t0
    return {"seconds": dt, "peak_rss_mb": _peak_rss_mb(), "n_ops": float(len(rep.summary)),
            "dask": float(hasattr(ds["t_host_ns"].data, "dask"))}


def _calibration() -> dict[str, float]:
    from asiclab import heartbeat as hb

    rng = np.random.default_rng(3)
    x = hb.simulate_poisson_intervals(1999, 10.0, size=1000, rng=rng)
    t0 = time.perf_counter()
    hb.run_battery(x)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    hb.run_battery(x)
    warm = time.perf_counter() - t0
    return {"seconds": warm, "seconds_incl_null_tables": cold, "peak_rss_mb": _peak_rss_mb()}


def _child(name: str, arg: str) -> None:
    fn = {"battery": _battery_big, "calibration": _calibration}
    out = _analyze_big(arg) if name == "analyze" else fn[name]()
    print(json.dumps(out))


def _run(name: str, arg: str = "") -> dict[str, float]:
    res = subprocess.run([sys.executable, __file__, "--child", name, arg], check=True,
                         capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    print("Silicon-Heartbeat battery benchmark (simulated data)")
    print(f"cpus available: {len(os.sched_getaffinity(0))}")
    r = _run("battery")
    print(f"run_battery, 1e7 events (in memory):      {r['seconds']:6.1f} s   "
          f"peak RSS {r['peak_rss_mb']:6.0f} MB")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "big_capture.nc")
        t0 = time.perf_counter()
        _write_big_capture(path)
        print(f"(wrote 1e7-event capture, {os.path.getsize(path) / 1e6:.0f} MB, "
              f"in {time.perf_counter() - t0:.1f} s)")
        r = _run("analyze", path)
        print(f"analyze_capture, 1e7 events, dask-backed: {r['seconds']:6.1f} s   "
              f"peak RSS {r['peak_rss_mb']:6.0f} MB   ({int(r['n_ops'])} operating points)")
    r = _run("calibration")
    print(f"run_battery, 1000 x 2000 events:          {r['seconds']:6.1f} s   "
          f"peak RSS {r['peak_rss_mb']:6.0f} MB   "
          f"({r['seconds_incl_null_tables']:.1f} s incl. null tables)")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
    else:
        main()
