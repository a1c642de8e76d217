"""``asiclab sweep``: run notebooks over a parameter grid, each run a dask.distributed task.

A sweep expands a grid file into runs. Each run is a normal run directory (executed notebooks,
``manifest.json``, ``results.json``, ``summary.md``; see :mod:`asiclab.runner`) made by
:func:`asiclab.runner.reproduce` inside a dask.distributed task, on a ``LocalCluster`` sized to the
machine by default, or on an existing cluster (``scheduler="tcp://host:8786"``) with no change.

The grid file (YAML)::

    # grid.yaml: 2 seeds x 2 voltage plans, and two dwell/settle pairs varied together
    notebooks: [01_capture]          # or `notebook: 01_capture`; stems or numbers ("01")
    params: ../notebooks/params/quick.yaml   # optional base parameter file (runner format);
                                     # relative to this file; default notebooks/params/default.yaml
    base:                            # optional fixed values on top of the parameter file
      source: sim
    grid:                            # each key a list of values: the cartesian product
      seed: [1, 2]
      voltages_mV: [[1200.0, 1100.0], [1200.0, 1150.0, 1100.0]]   # a list-valued parameter
    zip:                             # optional: equal-length lists varied together (one axis);
      dwell_s: [300.0, 600.0]        # a list of such mappings gives several zipped axes
      settle_s: [10.0, 20.0]

A key is a parameter of the notebook (``seed``) or, when the sweep runs several notebooks in
each run (``notebooks: [01_capture, 02_heartbeat]``, 02 reading 01's capture of the same run),
``NOTEBOOK.PARAM`` (``01_capture.seed``). The grid above makes 2 x 2 x 2 = 8 runs. Every grid
value is validated before anything runs: an unknown notebook or parameter, an empty list, zipped
lists of different lengths, repeated values, or a value the notebook's parameter specification
refuses (:func:`asiclab.params.validate` with the specification the notebook itself validates
against) raise :class:`GridError`.

The sweep directory ``<runs-dir>/sweeps/<sweep-id>/`` holds one run directory per run
(``r000-<key>``), ``sweep.json`` (the grid, every run with its parameters, status, failing
cell, attempts and directory, the commit), ``results.nc`` (an :class:`xarray.Dataset` of every
recorded result, with one dimension per grid axis, coordinates the grid values),
``results.csv`` (the same as a tidy long table, one row per run and recorded result) and
``attempts.jsonl`` (one line per task start: run, worker, process id). A run's figures stay in
its run directory (``<run>/figures/``); the project's ``figures/`` is left to ``asiclab
reproduce``.

Faults: a run whose notebook fails is recorded with its failing cell and the sweep goes on; a
task whose worker dies mid-run is re-scheduled by dask on another (or the restarted) worker
(``distributed.scheduler.allowed-failures`` times) and a task that raises is retried
(``retries``); the partial directory of an interrupted attempt is moved to ``stale/``. Started
again, a sweep skips every run whose directory holds a completed run (``manifest.json`` status
``ok``) of the same parameters at the same git commit (and the same dirty flag). Ctrl-C
cancels the pending runs (``interrupted`` in ``sweep.json``) and keeps the completed ones.

Every worker must see the same file system (the sweep directory and the notebooks) and run the
same asiclab installation: with ``--scheduler``, start the workers from this project's
``.venv`` (``.venv/bin/dask worker tcp://host:8786 --nthreads 1``).
"""

from __future__ import annotations

import ast
import datetime as _dt
import hashlib
import importlib
import itertools
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from asiclab import AsiclabError, __version__, results, runner
from asiclab import params as params_mod
from asiclab.dataset import git_commit

SWEEP_FILE = "sweep.json"
TABLE_NC = "results.nc"
TABLE_CSV = "results.csv"
ATTEMPTS = "attempts.jsonl"
STALE = "stale"
ENV_FIGURES_DIR = "ASICLAB_FIGURES_DIR"
"""Where figure copies go (:data:`asiclab.plotting.ENV_FIGURES_DIR`); a sweep run sets it to
its own ``figures/`` (without importing matplotlib here)."""
GRID_KEYS = ("notebook", "notebooks", "params", "base", "grid", "zip")
_KEY_LEN = 10
CONNECT_TIMEOUT_S = 30.0
"""How long to try reaching an external scheduler [s]."""
#: One run at a time per worker process: :func:`asiclab.runner.reproduce` sets process-wide
#: environment variables for its notebooks.
_RUN_LOCK = threading.Lock()


class SweepError(AsiclabError):
    """The sweep cannot start or finish (no cluster, unwritable directory...)."""


class GridError(SweepError, ValueError):
    """The grid file is wrong: unknown notebook or parameter, empty list, refused value..."""


@dataclass(frozen=True)
class Axis:
    """One dimension of the grid: one parameter, or several zipped parameters.

    Attributes
    ----------
    dim : str
        Dimension name in ``results.nc`` (the first parameter's label, or ``zipN`` when that
        parameter's values repeat).
    labels : tuple of str
        The parameters varied along the axis, as written in the grid (``seed`` or
        ``01_capture.seed``).
    targets : tuple of (str, str)
        ``(notebook, parameter)`` of each label.
    values : tuple of tuple
        One tuple of values (one per label) for each position along the axis.
    """

    dim: str
    labels: tuple[str, ...]
    targets: tuple[tuple[str, str], ...]
    values: tuple[tuple[Any, ...], ...]


@dataclass
class Grid:
    """A parsed, validated grid (see the module docstring for the file format).

    Attributes
    ----------
    notebooks : list of str
        The notebooks every run executes, in order (stems).
    params_file : pathlib.Path
        Base parameter file (the runner's format).
    base : dict
        ``{notebook: {parameter: value}}`` fixed on top of the parameter file.
    axes : list of Axis
        The grid's dimensions, in the file's order (``grid`` keys, then ``zip`` groups).
    raw : dict
        The grid file as read.
    source : str
        Where the grid came from (file path or ``"<mapping>"``).
    notebooks_dir : pathlib.Path
        Where the notebooks are.
    """

    notebooks: list[str]
    params_file: Path
    base: dict[str, dict[str, Any]]
    axes: list[Axis]
    raw: dict[str, Any]
    source: str
    notebooks_dir: Path

    def runs(self) -> list[RunPlan]:
        """Every run of the grid, in order (last axis fastest)."""
        out = []
        shape = [range(len(a.values)) for a in self.axes]
        for i, idx in enumerate(itertools.product(*shape)):
            overrides = {nb: dict(v) for nb, v in self.base.items()}
            point: dict[str, Any] = {}
            for axis, j in zip(self.axes, idx, strict=True):
                for label, (nb, name), value in zip(axis.labels, axis.targets, axis.values[j],
                                                    strict=True):
                    overrides.setdefault(nb, {})[name] = value
                    point[label] = value
            key = run_key(self.notebooks, self.params_file, overrides)
            out.append(RunPlan(i, f"r{i:03d}-{key[:_KEY_LEN]}", key, tuple(idx), point,
                               overrides))
        return out


@dataclass
class RunPlan:
    """One run of a sweep before and after it ran (a row of ``sweep.json``)."""

    index: int
    run_id: str
    key: str
    position: tuple[int, ...]
    point: dict[str, Any]
    overrides: dict[str, dict[str, Any]]
    status: str = "pending"
    skipped: bool = False
    attempts: int = 0
    duration_s: float = 0.0
    run_dir: str = ""
    error: dict[str, Any] | None = None


@dataclass
class SweepResult:
    """Outcome of :func:`run_sweep`."""

    sweep_dir: Path
    runs: list[RunPlan] = field(default_factory=list)
    dashboard: str | None = None
    scheduler: str = ""

    @property
    def ok(self) -> bool:
        """True when every run completed (ran now or skipped as done before)."""
        return all(r.status == "ok" for r in self.runs)

    @property
    def exit_code(self) -> int:
        """0 when every run completed, 1 otherwise."""
        return 0 if self.ok else 1


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def run_key(notebooks: Sequence[str], params_file: Path,
            overrides: Mapping[str, Mapping[str, Any]]) -> str:
    """sha256 of what decides a run: its notebooks, the base parameters and the overrides.

    The base parameter file enters by its content, so editing it changes the key.
    """
    base = runner.load_params(params_file)
    effective = {nb: {**base.get(nb, {}), **dict(overrides.get(nb, {}))} for nb in notebooks}
    text = json.dumps({"notebooks": list(notebooks), "parameters": effective}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --- the notebooks' own parameter declarations ------------------------------------------------

_NO_DEFAULT = object()


def _code_cells(nb_path: Path) -> list[tuple[list[str], str]]:
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    return [(c.get("metadata", {}).get("tags", []), c.source) for c in nb.cells
            if c.cell_type == "code"]


def notebook_parameters(nb_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parameters a notebook declares in its ``parameters`` cell, with their defaults.

    Returns
    -------
    dict
        ``{name: default}``; a default that is not a Python literal is left out of validation
        (its value is an internal sentinel).

    Raises
    ------
    GridError
        The notebook has no cell tagged ``parameters`` or it is not valid Python.
    """
    nb_path = Path(nb_path)
    for tags, source in _code_cells(nb_path):
        if "parameters" not in tags:
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise GridError(f"{nb_path.name}: parameters cell is not valid Python: {exc}") \
                from exc
        out: dict[str, Any] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                    isinstance(node.targets[0], ast.Name):
                try:
                    out[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    out[node.targets[0].id] = _NO_DEFAULT
        return out
    raise GridError(f"{nb_path.name}: no cell tagged 'parameters'")


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def notebook_spec(nb_path: str | os.PathLike[str]) -> dict[str, params_mod.Param] | None:
    """The parameter specification a notebook validates against, looked up by its own name.

    The notebook's validation call (``validate(globals(), workflow.PARAMS, ...)``) names the
    specification; the imports of the notebook say which module that name is. The module is
    imported by that name, so the sweep (a shared layer) depends on no topic package.

    Returns
    -------
    dict or None
        ``{name: Param}``, or None when the notebook has no validation call that can be
        resolved (then only parameter names are checked).
    """
    code = "\n".join(src for _, src in _code_cells(Path(nb_path)))
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    aliases: dict[str, str] = {}
    target = None
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                head = a.name.split(".")[0]
                aliases[a.asname or head] = a.name if a.asname else head
        elif isinstance(node, ast.Call) and target is None:
            fn = _dotted(node.func) or ""
            if fn.split(".")[-1] == "validate" and len(node.args) >= 2:
                target = _dotted(node.args[1])
    if not target or "." not in target:
        return None
    head, _, rest = target.partition(".")
    full = f"{aliases.get(head, head)}.{rest}"
    module_name, _, attr = full.rpartition(".")
    if not module_name.startswith("asiclab"):
        return None
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError:
        # ``from asiclab import narma`` then ``narma.workflow.PARAMS``: walk attributes
        parts = module_name.split(".")
        try:
            obj = importlib.import_module(".".join(parts[:2]))
            for p in parts[2:]:
                obj = getattr(obj, p, None) or importlib.import_module(f"{obj.__name__}.{p}")
        except (ImportError, AttributeError):
            return None
    spec = getattr(obj, attr, None)
    if isinstance(spec, Mapping) and all(isinstance(v, params_mod.Param) for v in spec.values()):
        return dict(spec)
    return None


# --- the grid file ----------------------------------------------------------------------------

def _resolve_notebook(name: Any, notebooks: Sequence[Path], source: str) -> str:
    names = [p.stem for p in notebooks]
    if isinstance(name, int) and not isinstance(name, bool):  # YAML reads `notebook: 01` as 1
        name = f"{name:02d}"
    match = [p.stem for p in notebooks if str(name) in (p.stem, p.stem.split("_")[0])]
    if not match:
        raise GridError(f"{source}: unknown notebook {name!r}; notebooks are {names}")
    return match[0]


def _split_key(key: Any, nbs: Sequence[str], declared: Mapping[str, Mapping[str, Any]],
               source: str, where: str) -> tuple[str, str]:
    if not isinstance(key, str):
        raise GridError(f"{source}: {where}: key {key!r} must be a parameter name")
    nb, dot, name = key.partition(".")
    if dot:
        if nb not in nbs:
            short = [n for n in nbs if n.split("_")[0] == nb]
            if not short:
                raise GridError(f"{source}: {where}: {key!r} names notebook {nb!r}, which the "
                                f"sweep does not run ({list(nbs)})")
            nb = short[0]
    elif len(nbs) == 1:
        nb, name = nbs[0], key
    else:
        raise GridError(f"{source}: {where}: {key!r}: with several notebooks write "
                        f"NOTEBOOK.PARAM (e.g. {nbs[0]}.{key})")
    if name == "run_dir":
        raise GridError(f"{source}: {where}: run_dir is set by the runner, not by a grid")
    if name not in declared[nb]:
        raise GridError(f"{source}: {where}: unknown parameter {name!r} of {nb}; its "
                        f"parameters are {sorted(k for k in declared[nb] if k != 'run_dir')}")
    return nb, name


def _label(key: str, target: tuple[str, str]) -> str:
    """A bare key stays as written; a qualified one is spelt with the notebook's full stem."""
    return key if "." not in key else f"{target[0]}.{target[1]}"


def _values(key: str, value: Any, source: str, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise GridError(f"{source}: {where}: {key!r} must be a list of values to try, got "
                        f"{value!r} (a single value goes under 'base:'; a list-valued "
                        f"parameter needs a list of lists)")
    if not value:
        raise GridError(f"{source}: {where}: {key!r} is an empty list: no run to make")
    return value


def _unique(items: Sequence[Any]) -> bool:
    texts = [json.dumps(v, sort_keys=True, default=str) for v in items]
    return len(set(texts)) == len(texts)


def parse_grid(data: Any, *, source: str = "<mapping>",
               base_path: str | os.PathLike[str] | None = None,
               notebooks_dir: str | os.PathLike[str] | None = None,
               validate: bool = True) -> Grid:
    """Check a grid mapping (the content of a grid file) and build the :class:`Grid`.

    Parameters
    ----------
    data : mapping
        The grid (see the module docstring).
    source : str
        Name used in error messages (the file).
    base_path : path-like, optional
        Directory a relative ``params:`` path is read from (default: the current directory).
    notebooks_dir : path-like, optional
        Where the notebooks are (default: the project's ``notebooks/``).
    validate : bool
        Check every run's values against the notebooks' parameter specifications.

    Returns
    -------
    Grid

    Raises
    ------
    GridError
        Unknown key, notebook or parameter; empty or non-list value; zipped lists of different
        lengths; repeated values; a parameter set twice; a value the notebook refuses.
    """
    if not isinstance(data, Mapping):
        raise GridError(f"{source}: expected a mapping with 'notebooks' and 'grid'")
    extra = set(data) - set(GRID_KEYS)
    if extra:
        raise GridError(f"{source}: unknown key(s) {sorted(extra)}; allowed: {list(GRID_KEYS)}")
    nb_dir = Path(notebooks_dir) if notebooks_dir else runner.default_notebooks_dir()
    available = runner.discover_notebooks(nb_dir)
    if not available:
        raise GridError(f"{source}: no NN_topic.ipynb notebooks in {nb_dir}")
    wanted = data.get("notebooks", data.get("notebook"))
    if "notebook" in data and "notebooks" in data:
        raise GridError(f"{source}: give 'notebook' or 'notebooks', not both")
    if wanted is None or wanted == []:
        raise GridError(f"{source}: name the notebook(s) to run ('notebooks: [03_narma10]')")
    wanted = wanted if isinstance(wanted, list) else [wanted]
    stems = [_resolve_notebook(w, available, source) for w in wanted]
    nbs = [p.stem for p in available if p.stem in stems]  # the runner's order
    declared = {nb: notebook_parameters(nb_dir / f"{nb}.ipynb") for nb in nbs}

    params_file = data.get("params")
    if params_file is None:
        params_path = nb_dir / "params" / "default.yaml"
    else:
        params_path = Path(str(params_file)).expanduser()
        if not params_path.is_absolute():
            params_path = Path(base_path or Path.cwd()) / params_path
    try:
        base_params = runner.load_params(params_path)
    except runner.RunnerError as exc:
        raise GridError(f"{source}: params: {exc}") from exc

    seen: dict[tuple[str, str], str] = {}

    def claim(target: tuple[str, str], where: str) -> None:
        if target in seen:
            raise GridError(f"{source}: {target[0]}.{target[1]} is set twice ({seen[target]} "
                            f"and {where})")
        seen[target] = where

    base: dict[str, dict[str, Any]] = {}
    base_data = data.get("base") or {}
    if not isinstance(base_data, Mapping):
        raise GridError(f"{source}: 'base' must be a mapping of parameter: value")
    for key, value in base_data.items():
        target = _split_key(key, nbs, declared, source, "base")
        claim(target, "base")
        base.setdefault(target[0], {})[target[1]] = value

    axes: list[Axis] = []
    grid_data = data.get("grid") or {}
    if not isinstance(grid_data, Mapping):
        raise GridError(f"{source}: 'grid' must be a mapping of parameter: [values]")
    for key, value in grid_data.items():
        target = _split_key(key, nbs, declared, source, "grid")
        claim(target, "grid")
        vals = _values(key, value, source, "grid")
        if not _unique(vals):
            raise GridError(f"{source}: grid: {key!r} repeats a value: {vals}")
        label = _label(key, target)
        axes.append(Axis(label, (label,), (target,), tuple((v,) for v in vals)))
    zips = data.get("zip") or []
    zips = [zips] if isinstance(zips, Mapping) else zips
    if not isinstance(zips, list):
        raise GridError(f"{source}: 'zip' must be a mapping of equal-length lists, or a list "
                        "of such mappings")
    for i, group in enumerate(zips):
        where = f"zip[{i}]" if len(zips) > 1 else "zip"
        if not isinstance(group, Mapping) or not group:
            raise GridError(f"{source}: {where} must be a non-empty mapping of parameter: "
                            "[values]")
        labels, targets, columns = [], [], []
        for key, value in group.items():
            target = _split_key(key, nbs, declared, source, where)
            claim(target, where)
            labels.append(_label(key, target))
            targets.append(target)
            columns.append(_values(key, value, source, where))
        lengths = {lab: len(c) for lab, c in zip(labels, columns, strict=True)}
        if len(set(lengths.values())) > 1:
            raise GridError(f"{source}: {where}: zipped lists differ in length: {lengths}")
        rows = list(zip(*columns, strict=True))
        if not _unique(rows):
            raise GridError(f"{source}: {where}: a combination repeats: {rows}")
        dim = labels[0] if _unique(columns[0]) else f"zip{i}"
        axes.append(Axis(dim, tuple(labels), tuple(targets), tuple(rows)))
    if not axes:
        raise GridError(f"{source}: the grid is empty: give 'grid' and/or 'zip' lists")
    dims = [a.dim for a in axes]
    if len(set(dims)) != len(dims):
        raise GridError(f"{source}: two axes share the name {dims}")

    grid = Grid(nbs, params_path.resolve(), base, axes, _jsonable(dict(data)), source,
                nb_dir.resolve())
    if validate:
        _validate_runs(grid, declared, base_params)
    return grid


def _validate_runs(grid: Grid, declared: Mapping[str, Mapping[str, Any]],
                   base_params: Mapping[str, Mapping[str, Any]]) -> None:
    specs = {nb: notebook_spec(grid.notebooks_dir / f"{nb}.ipynb") for nb in grid.notebooks}
    with tempfile.TemporaryDirectory(prefix="asiclab-grid-") as tmp:
        try:
            for run in grid.runs():
                for nb in grid.notebooks:
                    spec = specs[nb]
                    values = {k: v for k, v in declared[nb].items() if v is not _NO_DEFAULT}
                    values.update(base_params.get(nb, {}))
                    values.update(run.overrides.get(nb, {}))
                    unknown = set(base_params.get(nb, {})) - set(declared[nb])
                    if unknown:
                        raise GridError(f"{grid.params_file}: unknown parameter(s) "
                                        f"{sorted(unknown)} of {nb}")
                    if spec is None:
                        continue
                    sub = {k: s for k, s in spec.items() if k in values}
                    values["run_dir"] = tmp
                    try:
                        params_mod.validate(values, sub, notebook=None)
                    except params_mod.ParameterError as exc:
                        raise GridError(f"{grid.source}: run {run.run_id} ({_point_text(run)}):"
                                        f" {nb}: {exc}") from exc
        finally:
            results.reset()


def load_grid(path: str | os.PathLike[str], *,
              notebooks_dir: str | os.PathLike[str] | None = None,
              validate: bool = True) -> Grid:
    """Read and check a grid file (see :func:`parse_grid`; the module docstring has the format).

    Raises
    ------
    GridError
        The file is missing or not YAML, or the grid is wrong.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise GridError(f"{path}: cannot read grid file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise GridError(f"{path}: not valid YAML: {exc}") from exc
    return parse_grid(data, source=str(path), base_path=path.resolve().parent,
                      notebooks_dir=notebooks_dir, validate=validate)


def _point_text(run: RunPlan) -> str:
    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in run.point.items())


# --- one run: the dask task -------------------------------------------------------------------

def _set_aside(run_dir: Path, sweep_dir: Path, why: str) -> Path:
    """Move an earlier (crashed, failed or out-of-date) run directory to ``stale/``."""
    stale = sweep_dir / STALE
    stale.mkdir(exist_ok=True)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dest = stale / f"{run_dir.name}.{why}.{stamp}"
    shutil.move(str(run_dir), dest)
    return dest


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return ""


def execute_run(task: Mapping[str, Any]) -> dict[str, Any]:
    """Execute one run of a sweep (the function each dask task calls).

    Parameters
    ----------
    task : mapping
        ``run_id``, ``key``, ``sweep_dir``, ``notebooks``, ``params_file``, ``overrides``,
        ``notebooks_dir``, ``base_dir`` (absolute paths, seen by every worker).

    Returns
    -------
    dict
        ``run_id``, ``status`` (``ok``, ``failed``, ``error``), ``run_dir``, ``duration_s``,
        ``error`` (the first failing notebook, its cell index and the exception) or None.
    """
    sweep_dir = Path(task["sweep_dir"])
    run_dir = sweep_dir / task["run_id"]
    attempt = {"run_id": task["run_id"], "key": task["key"], "pid": os.getpid(),
               "host": socket.gethostname(), "worker": _worker_address(), "start": _now()}
    with (sweep_dir / ATTEMPTS).open("a") as fh:
        fh.write(json.dumps(attempt) + "\n")
    t0 = time.perf_counter()
    with _RUN_LOCK:
        if run_dir.exists():  # an attempt that died with its worker
            _set_aside(run_dir, sweep_dir, "crashed")
        # A run's figures stay in its own run directory: the project's figures/ holds the
        # last `asiclab reproduce`, not whichever grid point finished last.
        old_figures = os.environ.get(ENV_FIGURES_DIR)
        os.environ[ENV_FIGURES_DIR] = str(run_dir / "figures")
        try:
            outcome = runner.reproduce(
                task["params_file"], only=list(task["notebooks"]), run_id=task["run_id"],
                overrides=task["overrides"], notebooks_dir=task["notebooks_dir"],
                runs_dir=str(sweep_dir), progress=False, base_dir=task["base_dir"])
        except AsiclabError as exc:
            return {"run_id": task["run_id"], "status": "error", "run_dir": str(run_dir),
                    "duration_s": time.perf_counter() - t0,
                    "error": {"notebook": None, "cell_index": None,
                              "ename": type(exc).__name__, "evalue": str(exc)[:2000]}}
        finally:
            if old_figures is None:
                os.environ.pop(ENV_FIGURES_DIR, None)
            else:
                os.environ[ENV_FIGURES_DIR] = old_figures
    error = None
    for nb in outcome.notebooks:
        if nb.status not in ("ok", "skipped"):
            e = nb.error or {}
            error = {"notebook": nb.name, "cell_index": e.get("cell_index"),
                     "ename": e.get("ename"), "evalue": str(e.get("evalue", ""))[:2000],
                     "cell_source": str(e.get("cell_source", ""))[:1000]}
            break
    return {"run_id": task["run_id"], "status": "ok" if outcome.ok else "failed",
            "run_dir": str(outcome.run_dir), "duration_s": time.perf_counter() - t0,
            "error": error}


# --- the sweep --------------------------------------------------------------------------------

def default_sweeps_dir() -> Path:
    """``$ASICLAB_RUNS_DIR/sweeps`` or the project's ``papermill_runs/sweeps``."""
    base = os.environ.get(runner.ENV_RUNS_DIR) or results.project_root() / "papermill_runs"
    return Path(base) / "sweeps"


def sweep_directory(sweep_id: str, runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<runs_dir>/sweeps/<sweep_id>`` (``runs_dir`` default: :func:`default_sweeps_dir`'s).

    Raises
    ------
    SweepError
        The id is not letters, digits, ``.``, ``_`` and ``-``.
    """
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", sweep_id):
        raise SweepError(f"sweep id {sweep_id!r}: use letters, digits, '.', '_' and '-' "
                         "(--sweep-id)")
    base = Path(runs_dir) / "sweeps" if runs_dir else default_sweeps_dir()
    return base / sweep_id


def _completed(sweep_dir: Path, run: RunPlan, grid: Grid, commit: str) -> Path | None:
    """The directory of a completed earlier run of the same parameters at ``commit``, if any."""
    base = runner.load_params(grid.params_file)
    expected = {nb: _jsonable({**base.get(nb, {}), **run.overrides.get(nb, {})})
                for nb in grid.notebooks}
    for d in sorted(sweep_dir.glob(f"r*-{run.key[:_KEY_LEN]}")):
        try:
            m = json.loads((d / runner.MANIFEST).read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(m, dict) or m.get("status") != "ok":
            continue
        recorded = str(m.get("git_commit", "")) + ("-dirty" if m.get("git_dirty") else "")
        ran = {n.get("name"): {k: v for k, v in (n.get("parameters") or {}).items()
                               if k != "run_dir"}
               for n in m.get("notebooks", []) if n.get("status") == "ok"}
        if recorded == commit and ran == expected:
            return d
    return None


def plan(grid: Grid, sweep_dir: str | os.PathLike[str]) -> list[RunPlan]:
    """The runs of a grid, those completed earlier (same parameters and commit) marked skipped."""
    sweep_dir = Path(sweep_dir)
    commit = git_commit(results.project_root())
    runs = grid.runs()
    if sweep_dir.is_dir():
        for run in runs:
            done = _completed(sweep_dir, run, grid, commit)
            if done is not None:
                run.status, run.skipped, run.run_dir = "ok", True, str(done)
    return runs


def _write_sweep(path: Path, info: dict[str, Any], runs: Sequence[RunPlan]) -> None:
    data = dict(info)
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    data["counts"] = counts
    data["skipped"] = sum(r.skipped for r in runs)
    data["runs"] = [_jsonable({**asdict(r), "position": list(r.position)}) for r in runs]
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def _count_attempts(sweep_dir: Path, since: str) -> dict[str, int]:
    out: dict[str, int] = {}
    path = sweep_dir / ATTEMPTS
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                a = json.loads(line)
            except json.JSONDecodeError:
                continue
            if a.get("start", "") >= since:
                out[a["run_id"]] = out.get(a["run_id"], 0) + 1
    return out


def _start_client(scheduler: str | None, n_workers: int | None,
                  allowed_failures: int) -> tuple[Any, Any]:
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise SweepError("asiclab sweep needs dask.distributed (pip install distributed)") \
            from exc
    if scheduler:
        try:
            return Client(scheduler, timeout=CONNECT_TIMEOUT_S), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise SweepError(f"cannot reach the dask scheduler {scheduler}: {exc}") from exc
    if n_workers is not None and n_workers < 1:
        raise SweepError(f"a LocalCluster needs at least one worker, got {n_workers}")
    if n_workers is None:
        n_workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else os.cpu_count() or 1
    try:
        import bokeh  # noqa: F401  (the dashboard needs it)

        dashboard: str | None = "127.0.0.1:0"
    except ImportError:  # pragma: no cover - bokeh is a dependency
        dashboard = None
    with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=dashboard)
    return Client(cluster), cluster


def run_sweep(
    grid: Grid,
    *,
    sweep_dir: str | os.PathLike[str],
    scheduler: str | None = None,
    n_workers: int | None = None,
    retries: int = 2,
    allowed_failures: int = 3,
    progress: bool = True,
    base_dir: str | os.PathLike[str] | None = None,
    echo: Any = print,
) -> SweepResult:
    """Run every run of a grid as a dask.distributed task and gather the results.

    Parameters
    ----------
    grid : Grid
        From :func:`load_grid` or :func:`parse_grid`.
    sweep_dir : path-like
        The sweep directory (created; an earlier sweep there is continued: completed runs of the
        same parameters at the same commit are skipped).
    scheduler : str, optional
        Address of an existing dask scheduler (``tcp://host:8786``); default: a ``LocalCluster``
        on this machine, one single-threaded worker process per CPU core.
    n_workers : int, optional
        Workers of the ``LocalCluster`` (default: the CPU cores this process may use).
    retries : int
        How often a task that raised (not a failing notebook: that is a result) is tried again.
    allowed_failures : int
        ``LocalCluster`` only: how many worker deaths a task may suffer before it is given up
        (``distributed.scheduler.allowed-failures``; an external scheduler uses its own).
    progress : bool
        Show a tqdm bar of completed runs.
    base_dir : path-like, optional
        Directory relative path parameters are resolved from (default: the current directory).
    echo : callable
        Where the dashboard link and messages go (``print``).

    Returns
    -------
    SweepResult
        The runs with their status; ``exit_code`` is 1 if any did not complete.

    Raises
    ------
    SweepError
        The cluster cannot be reached or started.
    KeyboardInterrupt
        After cancelling the pending runs and writing ``sweep.json`` (status ``interrupted``).
    """
    from tqdm.auto import tqdm

    sweep_dir = Path(sweep_dir).resolve()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    runs = plan(grid, sweep_dir)
    commit = git_commit(results.project_root())
    start = _now()
    info: dict[str, Any] = {
        "sweep_id": sweep_dir.name, "source": grid.source, "grid": grid.raw,
        "notebooks": grid.notebooks, "params_file": str(grid.params_file),
        "axes": [{"dim": a.dim, "labels": list(a.labels), "values": [list(v) for v in a.values]}
                 for a in grid.axes],
        "git_commit": commit.removesuffix("-dirty"), "git_dirty": commit.endswith("-dirty"),
        "asiclab_version": __version__, "start": start, "end": None,
        "status": "running", "scheduler": None, "dashboard": None,
    }
    path = sweep_dir / SWEEP_FILE
    outcome = SweepResult(sweep_dir, runs)
    todo = [r for r in runs if not r.skipped]
    for r in todo:  # earlier failed, out-of-date or crashed attempts of these runs
        for d in sweep_dir.glob(f"r*-{r.key[:_KEY_LEN]}"):
            _set_aside(d, sweep_dir, "earlier")
    _write_sweep(path, info, runs)
    base = str(Path(base_dir or Path.cwd()).resolve())
    by_future: dict[Any, RunPlan] = {}
    client = cluster = None
    try:
        if todo:
            client, cluster = _start_client(scheduler, n_workers, allowed_failures)
            info["scheduler"] = outcome.scheduler = str(client.scheduler.address)
            try:
                info["dashboard"] = outcome.dashboard = client.dashboard_link
            except Exception:  # no bokeh on the scheduler: no dashboard
                info["dashboard"] = outcome.dashboard = None
            echo(f"dask scheduler: {outcome.scheduler}")
            if outcome.dashboard:
                echo(f"dask dashboard: {outcome.dashboard}")
            _write_sweep(path, info, runs)
            from distributed import as_completed

            for r in todo:
                task = {"run_id": r.run_id, "key": r.key, "sweep_dir": str(sweep_dir),
                        "notebooks": grid.notebooks, "params_file": str(grid.params_file),
                        "overrides": r.overrides, "notebooks_dir": str(grid.notebooks_dir),
                        "base_dir": base}
                fut = client.submit(execute_run, task, key=f"asiclab-sweep-{r.run_id}-"
                                    f"{os.getpid()}-{time.time_ns()}", retries=retries,
                                    pure=False)
                r.status = "submitted"
                by_future[fut] = r
            skipped = len(runs) - len(todo)
            bar = tqdm(total=len(runs), initial=skipped, desc=f"sweep {sweep_dir.name}",
                       unit="run", disable=not progress)
            with bar:
                for fut in as_completed(list(by_future)):
                    r = by_future[fut]
                    if fut.status == "finished":
                        out = fut.result()
                        r.status, r.run_dir = out["status"], out["run_dir"]
                        r.duration_s, r.error = out["duration_s"], out["error"]
                    else:
                        exc = fut.exception()
                        r.status = "error"
                        r.run_dir = str(sweep_dir / r.run_id)
                        r.error = {"notebook": None, "cell_index": None,
                                   "ename": type(exc).__name__, "evalue": str(exc)[:2000]}
                    fut.release()
                    bar.update(1)
                    bar.set_postfix_str(f"{r.run_id} {r.status}")
                    _write_sweep(path, info, runs)
    except SweepError as exc:
        info["status"], info["error"] = "error", str(exc)
        raise
    except KeyboardInterrupt:
        for r in runs:
            if r.status in ("pending", "submitted"):
                r.status = "interrupted"
        info["status"] = "interrupted"
        raise
    finally:
        attempts = _count_attempts(sweep_dir, start)
        for r in runs:
            r.attempts = attempts.get(r.run_id, 0)
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        if info["status"] == "running":
            info["status"] = "ok" if outcome.ok else "failed"
        info["end"] = _now()
        try:
            write_table(sweep_dir, grid, runs)
            info["tables"] = [TABLE_NC, TABLE_CSV]
        except (OSError, ValueError) as exc:
            info["tables_error"] = str(exc)
        _write_sweep(path, info, runs)
    return outcome


# --- the gathered table -----------------------------------------------------------------------

def _coord_value(v: Any) -> Any:
    if isinstance(v, (list, dict)):
        return json.dumps(v, sort_keys=True)
    return v


def _coord_array(values: Sequence[Any]) -> Any:
    import numpy as np

    vals = [_coord_value(v) for v in values]
    if all(isinstance(v, bool) for v in vals):
        return np.array(vals, dtype=bool)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return np.array(vals, dtype=float if any(isinstance(v, float) for v in vals) else int)
    return np.array([str(v) for v in vals], dtype=object)


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if v in ("inf", "-inf"):
        return float(v)
    return None


def _nan_if_none(v: float | None) -> float:
    return float("nan") if v is None else v


def _run_entries(r: RunPlan) -> list[dict[str, Any]]:
    """The recorded results of one run; none when it has no readable ``results.json``."""
    if not r.run_dir or not (Path(r.run_dir) / results.RESULTS_FILE).is_file():
        return []
    try:
        return results.load_results(r.run_dir)
    except results.ResultError:
        return []


def tidy_rows(grid: Grid, runs: Sequence[RunPlan]) -> list[dict[str, Any]]:
    """One row per run and recorded result: run, status, grid values, result fields.

    Grid values that are lists are written as JSON text (``"[1200.0, 1100.0]"``).
    """
    rows = []
    for r in runs:
        for e in _run_entries(r):
            unc = e.get("uncertainty")
            row = {"run_id": r.run_id, "status": r.status}
            row.update({k: _coord_value(v) for k, v in r.point.items()})
            row.update({"notebook": e.get("notebook"), "result": e.get("name"),
                        "value": e.get("value"), "unit": e.get("unit"),
                        "uncertainty": unc if not isinstance(unc, list) else None,
                        "ci_low": unc[0] if isinstance(unc, list) else None,
                        "ci_high": unc[1] if isinstance(unc, list) else None,
                        "verdict": e.get("verdict"), "note": e.get("note")})
            rows.append(row)
    return rows


def results_dataset(grid: Grid, runs: Sequence[RunPlan]) -> Any:
    """Every recorded result of the sweep as an :class:`xarray.Dataset` over the grid's axes.

    Dimensions are the grid axes (:attr:`Axis.dim`); each grid parameter is a coordinate along
    its axis. A data variable per recorded result (``<result>``, or ``<notebook>__<result>``
    when runs execute several notebooks) holds its value (NaN, or ``""`` for text, where a run
    recorded none), with ``<var>_uncertainty`` or ``<var>_ci_low`` / ``<var>_ci_high`` beside
    it; ``unit``, ``notebook`` and ``note`` are attributes. ``status`` and ``run_id`` are
    variables too.
    """
    import numpy as np
    import xarray as xr

    shape = tuple(len(a.values) for a in grid.axes)
    dims = [a.dim for a in grid.axes]
    coords: dict[str, Any] = {}
    for a in grid.axes:
        if a.dim.startswith("zip") and a.dim not in a.labels:
            coords[a.dim] = np.arange(len(a.values))
        for j, label in enumerate(a.labels):
            coords[label] = (a.dim, _coord_array([v[j] for v in a.values]))
    status = np.full(shape, "", dtype=object)
    run_ids = np.full(shape, "", dtype=object)
    collected: dict[tuple[str, str], dict[tuple[int, ...], dict[str, Any]]] = {}
    for r in runs:
        status[r.position] = r.status
        run_ids[r.position] = r.run_id
        for e in _run_entries(r):
            collected.setdefault((e.get("notebook", ""), e["name"]), {})[r.position] = e
    data_vars: dict[str, Any] = {"status": (dims, status), "run_id": (dims, run_ids)}
    several = len(grid.notebooks) > 1
    for (nb, name), cells in collected.items():
        var = f"{nb}__{name}" if several else name
        values = [e.get("value") for e in cells.values()]
        numeric = all(v is None or _number(v) is not None for v in values)
        arr = np.full(shape, np.nan) if numeric else np.full(shape, "", dtype=object)
        u = np.full(shape, np.nan)
        lo, hi = np.full(shape, np.nan), np.full(shape, np.nan)
        has_u = has_ci = False
        for pos, e in cells.items():
            v = e.get("value")
            if numeric:
                arr[pos] = np.nan if v is None else _number(v)
            else:
                arr[pos] = "" if v is None else str(v)
            unc = e.get("uncertainty")
            if isinstance(unc, list) and len(unc) == 2:
                lo[pos], hi[pos] = (_nan_if_none(_number(unc[0])),
                                    _nan_if_none(_number(unc[1])))
                has_ci = True
            elif _number(unc) is not None:
                u[pos], has_u = _number(unc), True
        first = next(iter(cells.values()))
        attrs = {"unit": str(first.get("unit", "")), "notebook": nb, "result": name,
                 "note": str(first.get("note", ""))}
        data_vars[var] = (dims, arr, attrs)
        if has_u:
            data_vars[f"{var}_uncertainty"] = (dims, u, {**attrs, "note": "standard uncertainty"})
        if has_ci:
            data_vars[f"{var}_ci_low"] = (dims, lo, {**attrs, "note": "interval low"})
            data_vars[f"{var}_ci_high"] = (dims, hi, {**attrs, "note": "interval high"})
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs.update({"title": "asiclab sweep results", "notebooks": json.dumps(grid.notebooks),
                     "grid": json.dumps(grid.raw, default=str), "source": grid.source})
    return ds


def write_table(sweep_dir: str | os.PathLike[str], grid: Grid,
                runs: Sequence[RunPlan]) -> tuple[Path, Path]:
    """Write ``results.nc`` (:func:`results_dataset`) and ``results.csv`` (:func:`tidy_rows`)."""
    import pandas as pd

    sweep_dir = Path(sweep_dir)
    ds = results_dataset(grid, runs)
    ds.attrs["sweep_id"] = sweep_dir.name
    nc, csv = sweep_dir / TABLE_NC, sweep_dir / TABLE_CSV
    tmp = nc.with_suffix(".nc.partial")
    ds.to_netcdf(tmp, engine="netcdf4")
    os.replace(tmp, nc)
    columns = ["run_id", "status", *[lab for a in grid.axes for lab in a.labels], "notebook",
               "result", "value", "unit", "uncertainty", "ci_low", "ci_high", "verdict", "note"]
    pd.DataFrame(tidy_rows(grid, runs), columns=columns).to_csv(csv, index=False)
    return nc, csv


def describe_runs(grid: Grid, runs: Sequence[RunPlan]) -> list[str]:
    """Lines for ``--dry-run``: each run, its grid values and whether it would be skipped."""
    shape = " x ".join(f"{len(a.values)} ({a.dim})" for a in grid.axes)
    lines = [f"{len(runs)} runs of {', '.join(grid.notebooks)}: {shape}; base parameters "
             f"{grid.params_file}"]
    for r in runs:
        state = "skip (completed at this commit)" if r.skipped else "run"
        lines.append(f"{r.run_id}  {state:<9}  {_point_text(r)}")
    return lines


__all__ = ["Axis", "Grid", "GridError", "RunPlan", "SweepError", "SweepResult", "describe_runs",
           "execute_run", "load_grid", "notebook_parameters", "notebook_spec", "parse_grid",
           "plan", "results_dataset", "run_key", "run_sweep", "tidy_rows", "write_table"]
