"""The ``asiclab`` command line.

``asiclab reproduce``   execute the notebooks with papermill into ``papermill_runs/<run-id>/``
``asiclab capture``     live capture: a voltage/frequency sweep of a miner (or an emulator, the
                        CPU, a BM1366 on a UART) into a journal and a NetCDF capture
``asiclab recover``     turn a capture journal (even after ``kill -9``) into a NetCDF capture
``asiclab notebooks``   list the notebooks
``asiclab sweep``       run notebooks over a parameter grid, each run a dask.distributed task
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asiclab import AsiclabError, __version__


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from asiclab import runner

    overrides: dict[str, dict[str, object]] = {}
    for text in args.set or []:
        nb, key, value = runner.parse_override(text)
        overrides.setdefault(nb, {})[key] = value
    only = [o for item in (args.only or []) for o in item.split(",") if o]
    result = runner.reproduce(args.params, only=only or None, run_id=args.run_id,
                              keep_going=args.keep_going, overrides=overrides,
                              runs_dir=args.runs_dir, notebooks_dir=args.notebooks_dir,
                              progress=not args.no_progress, cache=args.cache)
    for nb in result.notebooks:
        line = f"{nb.name:<24} {nb.status:<10} {nb.duration_s:7.1f} s"
        if nb.cached_from:
            line += f"  (cached from {nb.cached_from})"
        if nb.error:
            line += f"  cell {nb.error.get('cell_index')}: {nb.error['ename']}: " \
                    f"{str(nb.error['evalue']).splitlines()[0] if nb.error['evalue'] else ''}"
        print(line)
    print(f"run directory: {result.run_dir}")
    return result.exit_code


def _floats(text: str) -> list[float]:
    """``"1200,1150, 1100"`` -> ``[1200.0, 1150.0, 1100.0]`` (argparse type)."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}") from None


#: ``asiclab capture`` option destination -> ``01_capture`` parameter.
_CAPTURE_OPTIONS = {
    "mode": "live_mode", "voltages": "voltages_mV", "frequency": "frequency_MHz",
    "frequencies": "sweep_frequencies_MHz", "settle": "settle_s", "dwell": "dwell_s",
    "telemetry_interval": "telemetry_interval_s", "seed": "seed", "miner_url": "miner_url",
    "worker": "worker", "listen_host": "listen_host", "listen_port": "listen_port",
    "allow_lan": "allow_lan", "pool_difficulty": "pool_difficulty",
    "serial_port": "serial_port", "time_scale": "emulator_time_scale",
    "safety_voltage": "safety_voltage_mV", "safety_frequency": "safety_frequency_MHz",
    "max_temperature": "max_temperature_C", "override_safety": "override_safety",
}


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _cmd_capture(args: argparse.Namespace) -> int:
    from asiclab import dataset, params
    from asiclab.capture import live
    from asiclab.capture import workflow as capture

    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(args.out) if args.out else Path("captures") / f"{args.mode}-{stamp}"
    journal_path = out_dir / "capture.journal"
    nc_path = out_dir / "capture.nc"
    if journal_path.exists() or nc_path.exists():
        raise live.LiveError(f"{out_dir} holds a capture already; choose another --out")
    created = not out_dir.exists()
    values: dict[str, Any] = dict(capture.LIVE_DEFAULTS)
    for opt, name in _CAPTURE_OPTIONS.items():
        value = getattr(args, opt)
        if value is not None:
            values[name] = value
    values["run_dir"] = str(out_dir)
    p = params.validate(values, capture.live_params_spec(), notebook="capture")
    _check_listen_host(p)
    if args.seed is None and args.mode in ("stratum+axeos", "cpu"):
        p["seed"] = None  # fresh job randomness (the seed drawn is recorded)
    extra: dict[str, Any] = {}
    if args.max_line_rate is not None:
        extra["max_line_rate"] = args.max_line_rate
    if args.job_interval is not None:
        extra["job_interval_s"] = args.job_interval
    if args.source_kind is not None:
        extra["source_kind"] = args.source_kind
    if args.no_progress:  # the capture's messages (where to point the miner...) go to the log
        import logging

        logging.basicConfig(format="%(asctime)s %(name)s: %(message)s")
        logging.getLogger("asiclab.capture.live").setLevel(logging.INFO)
    old = signal.signal(signal.SIGTERM, _raise_interrupt)  # `kill` stops as cleanly as Ctrl-C
    try:
        ds = live.run_from_params(p, journal_path=journal_path, progress=not args.no_progress,
                                  fsync=args.fsync, connect_timeout_s=args.connect_timeout,
                                  **extra)
    except live.LiveCaptureError as exc:
        if exc.capture is not None and _is_empty(exc.capture):
            _remove_empty(journal_path, out_dir, created)
            print(f"nothing was captured; {out_dir} is left free for another try",
                  file=sys.stderr)
        elif exc.capture is not None:
            dataset.save_capture(exc.capture, nc_path)
            print(f"capture so far: {nc_path} ({exc.capture.sizes['event']} events)",
                  file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGTERM, old)
    status = 130 if int(ds.attrs.get("interrupted", 0)) else 0
    if _is_empty(ds):
        _remove_empty(journal_path, out_dir, created)
        print(f"nothing was captured ({ds.attrs.get('stop_reason', '')}); {out_dir} is left "
              "free for another try", file=sys.stderr)
        return status or 1
    dataset.save_capture(ds, nc_path)
    throttle = ""
    if "server_throttled" in ds.attrs:
        throttle = (f"; server throttled {int(ds.attrs['server_throttled'])} time(s), "
                    f"{int(ds.attrs['server_delayed_lines'])} line(s) delayed, "
                    f"{int(ds.attrs['server_refused_lines'])} refused")
    print(f"journal: {journal_path}")
    print(f"capture: {nc_path} ({ds.sizes['event']} events, {ds.sizes['sample']} telemetry "
          f"samples, {ds.sizes['op']} operating points; source_kind {ds.attrs['source_kind']}; "
          f"{ds.attrs.get('stop_reason', '')}{throttle})")
    return status


def _check_listen_host(p: dict[str, Any]) -> None:
    """Refuse a network address without ``--allow-lan``, in the command line's words."""
    from asiclab.capture import live
    from asiclab.capture.server import _is_loopback

    if p["live_mode"] == "stratum+axeos" and not p["allow_lan"] and \
            not _is_loopback(p["listen_host"]):
        raise live.LiveError(f"--listen-host {p['listen_host']} is not a loopback address: add "
                             "--allow-lan to let the capture server listen on the network")


def _is_empty(ds: Any) -> bool:
    """Nothing captured: no event, no telemetry sample."""
    return int(ds.sizes.get("event", 0)) == 0 and int(ds.sizes.get("sample", 0)) == 0


def _remove_empty(journal_path: Path, out_dir: Path, created: bool) -> None:
    """Remove the journal of a capture that recorded nothing (and the directory if new)."""
    journal_path.unlink(missing_ok=True)
    if created:
        with contextlib.suppress(OSError):
            out_dir.rmdir()


def _cmd_recover(args: argparse.Namespace) -> int:
    from asiclab.capture import journal

    out = journal.recover_to_file(args.journal, args.output, skip_damaged=args.skip_damaged)
    print(out)
    return 0


def _cmd_notebooks(args: argparse.Namespace) -> int:
    from asiclab import runner

    for path in runner.discover_notebooks():
        print(path.name)
    return 0


def _sweep_help() -> str:
    """The grid format and the sweep's outputs: asiclab.sweep's docstring, read without import."""
    import ast

    path = Path(__file__).with_name("sweep.py")
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return doc.split("\n\n", 1)[-1]


def _cmd_sweep(args: argparse.Namespace) -> int:
    from asiclab import sweep

    grid = sweep.load_grid(args.grid, notebooks_dir=args.notebooks_dir)
    sweep_dir = sweep.sweep_directory(args.sweep_id or Path(args.grid).stem, args.runs_dir)
    if args.dry_run:
        for line in sweep.describe_runs(grid, sweep.plan(grid, sweep_dir)):
            print(line)
        print(f"sweep directory: {sweep_dir}")
        return 0
    result = sweep.run_sweep(grid, sweep_dir=sweep_dir, scheduler=args.scheduler,
                             n_workers=args.workers, retries=args.retries,
                             progress=not args.no_progress)
    for r in result.runs:
        line = f"{r.run_id:<16} {r.status:<8}{' (done before)' if r.skipped else ''}"
        if r.error:
            line += f"  {r.error.get('notebook')} cell {r.error.get('cell_index')}: " \
                    f"{r.error.get('ename')}: " \
                    f"{(str(r.error.get('evalue') or '').splitlines() or [''])[0]}"
        print(line)
    print(f"sweep directory: {result.sweep_dir} (sweep.json, results.nc, results.csv)")
    return result.exit_code


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``asiclab`` command."""
    parser = argparse.ArgumentParser(prog="asiclab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"asiclab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("reproduce", help="execute the notebooks with papermill")
    rep.add_argument("--params", default=None,
                     help="parameter YAML (default notebooks/params/default.yaml)")
    rep.add_argument("--only", action="append", metavar="NOTEBOOK",
                     help="run only these notebooks (stem or number, comma-separated, repeatable)")
    rep.add_argument("--run-id", default=None, help="name of the run directory")
    rep.add_argument("--keep-going", action="store_true",
                     help="run the remaining notebooks after a failure")
    rep.add_argument("--set", action="append", metavar="NB.PARAM=VALUE",
                     help="override one parameter (VALUE read as YAML), repeatable")
    rep.add_argument("--runs-dir", default=None, help="where run directories go")
    rep.add_argument("--notebooks-dir", default=None, help="where the notebooks are")
    rep.add_argument("--cache", action="store_true",
                     help="reuse a notebook's earlier run when its parameters, input hashes and "
                          "commit are unchanged (make figures)")
    rep.add_argument("--no-progress", action="store_true", help="no per-cell progress bar")
    rep.set_defaults(func=_cmd_reproduce)

    cap = sub.add_parser(
        "capture", help="live capture: sweep a miner's voltage/frequency and record every share",
        description="Live capture (see README, 'Running against a real miner'). Writes "
                    "<out>/capture.journal while it runs and <out>/capture.nc at the end; Ctrl-C "
                    "or SIGTERM stop cleanly (settings restored, data kept, exit status 130). "
                    "After a crash: asiclab recover <out>/capture.journal. A Stratum-only "
                    "capture (--mode stratum+axeos without --miner-url) takes several miners: "
                    "each worker that connects is a device with its own operating-point "
                    "windows (time windows; voltage and frequency are recorded as not set). "
                    "With --miner-url the windows belong to the controlled miner only. Every "
                    "share that reaches the server is recorded with its receipt time, also "
                    "when a connection sends faster than --max-line-rate (the count of "
                    "throttled, delayed and refused lines is printed at the end).")
    cap.add_argument("--mode", required=True, choices=["stratum+axeos", "serial", "emulated",
                                                       "cpu"], help="what to capture from")
    cap.add_argument("--voltages", type=_floats, metavar="MV,MV,...",
                     help="core voltages of the sweep [mV] (default 1200)")
    cap.add_argument("--frequency", type=float, metavar="MHZ",
                     help="frequency when --frequencies is not given [MHz] (default 485)")
    cap.add_argument("--frequencies", type=_floats, metavar="MHZ,...",
                     help="sweep frequencies [MHz] (outer loop)")
    cap.add_argument("--settle", type=float, metavar="S",
                     help="settle time after each change [s] (default 60)")
    cap.add_argument("--dwell", type=float, metavar="S",
                     help="time at each operating point [s] (default 600)")
    cap.add_argument("--telemetry-interval", type=float, metavar="S",
                     help="AxeOS polling interval [s] (default 3)")
    cap.add_argument("--seed", type=int,
                     help="seed of the emulated chip and of the capture server's jobs (default: "
                          "1 for emulated/serial; fresh random jobs for stratum+axeos/cpu); "
                          "the seed used is recorded")
    cap.add_argument("--miner-url", help="AxeOS address of the miner, e.g. http://192.168.1.50 "
                                         "(stratum+axeos; omit for a Stratum-only capture)")
    cap.add_argument("--worker", help="Stratum worker name (default: the miner's stratumUser)")
    cap.add_argument("--listen-host", help="capture-server address (default 127.0.0.1; "
                                           "0.0.0.0 with --allow-lan for a real miner)")
    cap.add_argument("--listen-port", type=int, help="capture-server port (default 3333)")
    cap.add_argument("--allow-lan", action="store_true", default=None,
                     help="let the capture server listen on the network")
    cap.add_argument("--pool-difficulty", type=float,
                     help="share difficulty given to the miner (default 256)")
    cap.add_argument("--serial-port", help="serial mode: /dev/ttyUSB0 ... or 'emulated'")
    cap.add_argument("--time-scale", type=float,
                     help="emulated: chip seconds per host second (default 20)")
    cap.add_argument("--safety-voltage", type=_floats, metavar="MIN,MAX",
                     help="allowed core-voltage range [mV] (default 1000,1300)")
    cap.add_argument("--safety-frequency", type=_floats, metavar="MIN,MAX",
                     help="allowed frequency range [MHz] (default 200,650)")
    cap.add_argument("--max-temperature", type=float, metavar="C",
                     help="chip temperature that aborts and restores [degC] (default 75)")
    cap.add_argument("--override-safety", action="store_true", default=None,
                     help="accept points outside the safety ranges")
    cap.add_argument("--max-line-rate", type=float, metavar="N",
                     help="lines per second a miner connection may send before its lines wait "
                          "(all are recorded with their receipt times) [1/s] (default 100)")
    cap.add_argument("--job-interval", type=float, metavar="S",
                     help="a fresh job this often [s] (default 30; serial: 2)")
    cap.add_argument("--source-kind", choices=["hardware", "emulated", "unknown"],
                     help="stratum+axeos: declare what the miners are when their agent string "
                          "does not say (default: unknown; ESP-Miner/Bitmain agents are "
                          "hardware, asiclab ones emulated)")
    cap.add_argument("--connect-timeout", type=float, default=120.0, metavar="S",
                     help="how long to wait for the miner to connect [s] (default 120)")
    cap.add_argument("--out", help="output directory (default captures/<mode>-<UTC time>)")
    cap.add_argument("--fsync", action="store_true",
                     help="fsync the journal at every flush (survives a power cut)")
    cap.add_argument("--no-progress", action="store_true", help="no progress bar")
    cap.set_defaults(func=_cmd_capture)

    rec = sub.add_parser("recover", help="turn a capture journal (even after a crash) into a "
                                         "NetCDF capture")
    rec.add_argument("journal", help="journal file written by a capture")
    rec.add_argument("-o", "--output", default=None,
                     help="NetCDF file to write (default: next to the journal)")
    rec.add_argument("--skip-damaged", action="store_true",
                     help="skip damaged records in the middle of the journal instead of stopping")
    rec.set_defaults(func=_cmd_recover)

    swp = sub.add_parser(
        "sweep", help="run notebooks over a parameter grid on dask.distributed",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=_sweep_help())
    swp.add_argument("--grid", required=True, help="grid YAML file (format above)")
    swp.add_argument("--scheduler", default=None, metavar="tcp://HOST:8786",
                     help="an existing dask scheduler (default: a LocalCluster on this machine)")
    swp.add_argument("--workers", type=int, default=None,
                     help="LocalCluster worker processes (default: one per CPU core)")
    swp.add_argument("--sweep-id", default=None,
                     help="name of the sweep directory (default: the grid file's stem); "
                          "the same id continues a sweep, skipping completed runs")
    swp.add_argument("--runs-dir", default=None,
                     help="sweeps go to RUNS_DIR/sweeps/ (default $ASICLAB_RUNS_DIR or "
                          "papermill_runs/)")
    swp.add_argument("--notebooks-dir", default=None, help="where the notebooks are")
    swp.add_argument("--retries", type=int, default=2,
                     help="retries of a task that raised (a failing notebook is a result, "
                          "not retried) (default 2)")
    swp.add_argument("--dry-run", action="store_true", help="print the runs and stop")
    swp.add_argument("--no-progress", action="store_true", help="no progress bar")
    swp.set_defaults(func=_cmd_sweep)

    nbs = sub.add_parser("notebooks", help="list the notebooks")
    nbs.set_defaults(func=_cmd_notebooks)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``asiclab`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except AsiclabError as exc:
        print(f"asiclab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("asiclab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
