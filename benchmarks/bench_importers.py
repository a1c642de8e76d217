"""Benchmark of the log importers and the CPU nonce search they share with the emulators.

Run as ``python benchmarks/bench_importers.py``. Prints:

* import throughput [rows/s] of the S9 importer on a synthetic 10,000-row log (every row is a
  full SHA256d re-verification), and on the real logs in ``../shared/realdata`` when present;
* the CPU SHA256d rate of :func:`asiclab.protocol.mining.iter_nonces` [hashes/s], i.e. how many
  difficulty-``2**-24`` shares per second an emulator can really find.
"""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from pathlib import Path

from asiclab import results
from asiclab.capture import importers
from asiclab.protocol import mining

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def _genesis_coinbase() -> str:
    """The genesis block's coinbase transaction (hex), from the tests' copy of the vectors."""
    sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
    from vectors import GENESIS_COINBASE  # Bitcoin Core chainparams.cpp (see tests/vectors.py)

    return GENESIS_COINBASE


def _synthetic_s9(path: Path, n: int) -> Path:
    cb = _genesis_coinbase()
    cols = ["timestamp", "job_id", "version", "prevhash", "coinb1", "coinb2", "extranonce1",
            "extranonce2", "merkle_branch", "ntime", "nbits", "nonce"]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for i in range(n):
            w.writerow([f"{1700000000 + i * 0.097:.7f}", f"j{i}", "00000001", "00" * 32,
                        cb[:84], cb[100:], cb[84:92], cb[92:100], "[]", "495fab29", "1d00ffff",
                        "7c2bac1d"])
    return path


def _time_it(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # the importers log what they read into the run directory: keep that out of the repo
        results.set_run_dir(Path(tmp) / "run")
        path = _synthetic_s9(Path(tmp) / "s9_synthetic.csv", 10_000)
        importers.import_s9_stratum_csv(path)  # warm-up
        dt, ds = _time_it(importers.import_s9_stratum_csv, path)
        n = ds.sizes["event"]
        print(f"S9 importer, synthetic log: {n} rows in {dt:.2f} s = {n / dt:,.0f} rows/s "
              f"({int(ds['valid'].sum())} valid)")

        if REALDATA.is_dir():
            for name, fmt in (("s9_stratum_shares.csv", "s9_stratum"),
                              ("lv06_bm1366_proofs.csv", "lv06_proofs")):
                dt, ds = _time_it(importers.import_log, REALDATA / name, fmt)
                n = ds.sizes["event"]
                print(f"{fmt} importer, real {name}: {n} rows in {dt:.3f} s = "
                      f"{n / dt:,.0f} rows/s, {int(ds['valid'].sum())}/{n} verified valid")
        else:
            print("real logs: ../shared/realdata absent, skipped")

    prefix = bytes(range(76))
    count = 300_000
    dt, hits = _time_it(lambda: list(mining.iter_nonces(prefix, 2.0**-24, count=count)))
    rate = count / dt
    print(f"nonce search: {rate:,.0f} SHA256d/s on one core; {len(hits)} shares at difficulty "
          f"2^-24 in {count} nonces (expected {count / 256:.0f}); "
          f"~{rate / 256:,.0f} such shares/s")


if __name__ == "__main__":
    main()
