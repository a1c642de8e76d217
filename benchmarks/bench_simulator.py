"""Benchmark of the simulated BM1366 chip (asiclab.devices.simulated): events per CPU second.

Run: ``python benchmarks/bench_simulator.py``. The target of the issue is >= 1,000,000 simulated
events per second of CPU (``time.process_time``: user + system time of this process). Each figure
is the median of three repeats after a warm-up.

Cases
-----
advance, nominal
    ``SimulatedChip.advance`` at 1200 mV / 485 MHz (Poisson regime), in 250,000-s steps.
advance, near edge
    The same 10 mV above the chip's steady-state edge (droops, stalls, hardware errors; about
    half of the candidate nonces are thinned away).
advance + telemetry
    ``advance_with_telemetry_ns`` with an AxeOS reading every 3 s (about one sample per event).
simulate_sweep
    End to end: five operating points, telemetry every 3 s, and building the capture dataset
    (``asiclab.dataset.build_capture``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from asiclab.devices.simulated import SimulatedChip, simulate_sweep

TARGET = 1_000_000.0


def _measure(run: Callable[[], int], repeats: int = 3) -> tuple[float, int]:
    run()  # warm-up (imports, allocator)
    rates, n = [], 0
    for _ in range(repeats):
        t0 = time.process_time()
        n = run()
        dt = time.process_time() - t0
        rates.append(n / dt if dt > 0 else float("inf"))
    return statistics.median(rates), n


def _advance(offset_mV: float | None, n_target: int = 3_000_000) -> Callable[[], int]:
    def run() -> int:
        chip = SimulatedChip(0)
        if offset_mV is not None:
            chip.set_operating_point(chip.steady_state_edge_voltage_mV() + offset_mV, 485.0)
            chip.advance(300.0)
        n = 0
        while n < n_target:
            n += len(chip.advance(250_000.0))
        return n
    return run


def _advance_telemetry(n_target: int = 2_000_000) -> Callable[[], int]:
    def run() -> int:
        chip = SimulatedChip(0)
        n, step = 0, 250_000 * 10**9
        while n < n_target:
            times = chip.now_ns + np.arange(3, 250_001, 3, dtype=np.int64) * 10**9
            ev, _ = chip.advance_with_telemetry_ns(step, times)
            n += len(ev)
        return n
    return run


def _sweep() -> int:
    ds = simulate_sweep(0, [1200.0, 1160.0, 1140.0, 1125.0, 1110.0], dwell_s=1.0e6,
                        settle_s=60.0)
    return int(ds.sizes["event"])


def main() -> None:
    cases = [
        ("advance, nominal (1200 mV, 485 MHz)", _advance(None)),
        ("advance, near edge (edge + 10 mV)", _advance(10.0)),
        ("advance + telemetry every 3 s", _advance_telemetry()),
        ("simulate_sweep end to end (5 points)", _sweep),
    ]
    print("asiclab simulated BM1366: events per CPU second (median of 3)")
    worst = float("inf")
    for name, run in cases:
        rate, n = _measure(run)
        worst = min(worst, rate)
        print(f"  {name:<40s} {rate:>14,.0f} events/s   ({n:,} events per repeat)")
    verdict = "PASS" if worst >= TARGET else "FAIL"
    print(f"  slowest case: {worst:,.0f} events/s; target >= {TARGET:,.0f}: {verdict}")


if __name__ == "__main__":
    main()
