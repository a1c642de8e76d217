"""Benchmark: what the sweep machinery costs per run (``asiclab.sweep`` on a LocalCluster).

Sweeps a one-cell notebook (records ``2 x``) over 8 values on a ``LocalCluster`` of 2 workers
and prints the wall time, the mean run duration (papermill: kernel start-up, execution, run
directory), the speed-up over running the runs one after another, and the per-run overhead of
the sweep layer (cluster start-up and shutdown included) beside the runs themselves.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import nbformat

from asiclab import sweep

N_RUNS = 8
N_WORKERS = 2


def _tiny_notebook(folder: Path) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('x = 1\nrun_dir = ""')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "from asiclab import results\n"
        'results.set_run_dir(run_dir or None, "01_tiny")\n'
        'results.record("y", 2 * x, "1", note="benchmark")')
    nb.cells = [params, body]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, folder / "01_tiny.ipynb")
    (folder / "params").mkdir()
    (folder / "params" / "default.yaml").write_text("notebooks: {}\n")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        root = Path(tmp)
        _tiny_notebook(root)
        grid = sweep.parse_grid({"notebook": "01_tiny", "grid": {"x": list(range(N_RUNS))}},
                                notebooks_dir=root)
        t0 = time.perf_counter()
        result = sweep.run_sweep(grid, sweep_dir=root / "sweep", n_workers=N_WORKERS,
                                 progress=False, echo=lambda s: None)
        wall = time.perf_counter() - t0
        info = json.loads((root / "sweep" / sweep.SWEEP_FILE).read_text())
    assert result.ok, [(r.run_id, r.status, r.error) for r in result.runs]
    durations = [r["duration_s"] for r in info["runs"]]
    total = sum(durations)
    print(f"asiclab sweep of {N_RUNS} one-cell runs on a LocalCluster of {N_WORKERS} workers")
    print(f"  wall time (cluster start and stop included) {wall:8.2f} s")
    print(f"  mean run (papermill, run directory)         {total / N_RUNS:8.2f} s")
    print(f"  speed-up over one run after another         {total / wall:8.2f} x")
    overhead = (wall * N_WORKERS - total) / N_RUNS
    print(f"  overhead per run ((wall x workers - runs)/n) {overhead:8.2f} s")


if __name__ == "__main__":
    main()
