"""The ``asiclab`` command line.

``asiclab reproduce``   execute the notebooks with papermill into ``papermill_runs/<run-id>/``
``asiclab recover``     turn a capture journal (even after ``kill -9``) into a NetCDF capture
``asiclab notebooks``   list the notebooks
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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
                              progress=not args.no_progress)
    for nb in result.notebooks:
        line = f"{nb.name:<24} {nb.status:<10} {nb.duration_s:7.1f} s"
        if nb.error:
            line += f"  cell {nb.error.get('cell_index')}: {nb.error['ename']}: " \
                    f"{str(nb.error['evalue']).splitlines()[0] if nb.error['evalue'] else ''}"
        print(line)
    print(f"run directory: {result.run_dir}")
    return result.exit_code


def _cmd_recover(args: argparse.Namespace) -> int:
    from asiclab import journal

    out = journal.recover_to_file(args.journal, args.output, skip_damaged=args.skip_damaged)
    print(out)
    return 0


def _cmd_notebooks(args: argparse.Namespace) -> int:
    from asiclab import runner

    for path in runner.discover_notebooks():
        print(path.name)
    return 0


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
    rep.add_argument("--no-progress", action="store_true", help="no per-cell progress bar")
    rep.set_defaults(func=_cmd_reproduce)

    rec = sub.add_parser("recover", help="turn a capture journal (even after a crash) into a "
                                         "NetCDF capture")
    rec.add_argument("journal", help="journal file written by a capture")
    rec.add_argument("-o", "--output", default=None,
                     help="NetCDF file to write (default: next to the journal)")
    rec.add_argument("--skip-damaged", action="store_true",
                     help="skip damaged records in the middle of the journal instead of stopping")
    rec.set_defaults(func=_cmd_recover)

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
