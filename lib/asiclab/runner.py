"""Papermill runner: execute the notebooks in order and write the run directory.

A run directory ``papermill_runs/<run-id>/`` receives each executed notebook, the data it
produced, ``manifest.json``, ``results.json``, ``summary.md`` and ``figures/``.

Parameters come from a YAML file (``notebooks/params/default.yaml``; ``quick.yaml`` for tests)::

    notebooks:
      01_capture:
        source: sim
        seed: 1
      02_heartbeat: {}

Every notebook also receives ``run_dir``. A notebook that fails keeps its executed copy with the
failing cell; the manifest names that cell and the reason; :func:`reproduce` returns a non-zero
exit status (the CLI exits with it).

Every notebook's entry in the manifest carries a ``cache_key`` (:mod:`asiclab.runcache`); with
``cache=True`` a notebook whose key matches an earlier successful run is restored from it instead
of executed. Every run ends by rebuilding the figure gallery ``figures/index.html``
(:mod:`asiclab.gallery`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from asiclab import AsiclabError, __version__, plotting, results
from asiclab import params as params_mod
from asiclab.dataset import NONE, git_commit

KERNEL_NAME = "asiclab"
MANIFEST = "manifest.json"
SUMMARY = "summary.md"
ENV_RUNS_DIR = "ASICLAB_RUNS_DIR"
"""Environment variable: where run directories go when ``runs_dir`` is not given."""
_NB_RE = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.ipynb$")
#: Packages whose versions are recorded in the manifest.
RECORDED_PACKAGES = ("asiclab", "numpy", "scipy", "pandas", "xarray", "netCDF4", "matplotlib",
                     "statsmodels", "allantools", "pyserial", "papermill", "nbclient",
                     "ipykernel", "dask", "tqdm", "PyYAML")


class RunnerError(AsiclabError):
    """The run cannot start (bad parameter file, unknown notebook, existing run id...)."""


@dataclass
class NotebookRun:
    """Outcome of one notebook execution."""

    name: str
    parameters: dict[str, Any]
    status: str = "pending"
    start: str = ""
    end: str = ""
    duration_s: float = 0.0
    error: dict[str, Any] | None = None
    cache_key: str = ""
    cached_from: str | None = None


@dataclass
class RunResult:
    """Outcome of :func:`reproduce`."""

    run_dir: Path
    notebooks: list[NotebookRun] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every notebook that was run succeeded."""
        return all(n.status == "ok" for n in self.notebooks)

    @property
    def exit_code(self) -> int:
        """0 on success, 1 if any notebook failed."""
        return 0 if self.ok else 1


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def default_notebooks_dir() -> Path:
    """The project's ``notebooks/`` folder."""
    return results.project_root() / "notebooks"


def discover_notebooks(notebooks_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The ``NN_topic.ipynb`` notebooks of a folder, in order."""
    nb_dir = Path(notebooks_dir) if notebooks_dir else default_notebooks_dir()
    return sorted(p for p in nb_dir.glob("*.ipynb") if _NB_RE.match(p.name))


def load_params(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Read a parameter YAML file into ``{notebook: {parameter: value}}``.

    Raises
    ------
    RunnerError
        The file is missing, not YAML, or not of the documented shape.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RunnerError(f"{path}: cannot read parameter file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise RunnerError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict) or not isinstance(data.get("notebooks", {}), dict):
        raise RunnerError(f"{path}: expected a mapping with a 'notebooks' mapping")
    nbs = data.get("notebooks") or {}
    for name, params in nbs.items():
        if params is not None and not isinstance(params, dict):
            raise RunnerError(f"{path}: parameters of {name!r} must be a mapping")
    return {name: dict(params or {}) for name, params in nbs.items()}


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse ``NOTEBOOK.PARAM=VALUE`` (VALUE read as YAML) from the command line."""
    m = re.match(r"^([^.=]+)\.([A-Za-z_][A-Za-z0-9_]*)=(.*)$", text)
    if not m:
        raise RunnerError(f"override {text!r}: expected NOTEBOOK.PARAM=VALUE")
    try:
        value = yaml.safe_load(m.group(3))
    except yaml.YAMLError as exc:
        raise RunnerError(f"override {text!r}: value is not valid YAML: {exc}") from exc
    return m.group(1), m.group(2), value


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a file."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of the packages that matter for reproducing results."""
    out = {}
    for name in RECORDED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = NONE
    return out


def _kernel_name() -> str:
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        if KERNEL_NAME in KernelSpecManager().find_kernel_specs():
            return KERNEL_NAME
    except Exception:  # pragma: no cover - jupyter_client missing or broken
        pass
    return "python3"


def _files_section(run_dir: Path) -> list[dict[str, Any]]:
    log = run_dir / results.FILES_LOG
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            key = (entry.get("path", ""), entry.get("role", ""), entry.get("notebook", ""))
            seen[key] = entry
    files = []
    for (path, role, nb), _entry in sorted(seen.items()):
        p = Path(path)
        item: dict[str, Any] = {"path": path, "role": role, "notebook": nb}
        try:
            item["path"] = str(p.relative_to(run_dir))
        except ValueError:
            pass
        if p.is_file():
            item["sha256"] = sha256_file(p)
            item["bytes"] = p.stat().st_size
        else:
            item["sha256"] = None
            item["missing"] = True
        files.append(item)
    return files


def _error_info(exc: BaseException, output_nb: Path) -> dict[str, Any]:
    info: dict[str, Any] = {"ename": getattr(exc, "ename", type(exc).__name__),
                            "evalue": str(getattr(exc, "evalue", exc))[:2000]}
    cell_index = None
    # Find the failing cell in the executed notebook (papermill gives it an error output) and
    # translate its position to the source notebook, without papermill's inserted cells.
    try:
        import nbformat

        nb = nbformat.read(output_nb, as_version=4)
        original = -1
        for i, cell in enumerate(nb.cells):
            tags = cell.get("metadata", {}).get("tags", [])
            if "injected-parameters" in tags or "papermill-error-cell-tag" in tags:
                continue
            original += 1
            if cell.cell_type == "code" and any(
                    o.get("output_type") == "error" for o in cell.get("outputs", [])):
                cell_index = original
                info["executed_cell_index"] = i
                info["cell_source"] = cell.source[:2000]
                break
    except Exception:  # the executed copy may not exist if the kernel never started
        pass
    info["cell_index"] = cell_index
    return info


#: Kernel start-up failures worth one more try: jupyter_client picks the kernel's TCP ports
#: before the kernel binds them, so on a busy machine another process can take one first.
_KERNEL_START_ERRORS = ("Kernel died before replying to kernel_info", "Address already in use")


def _execute(pm: Any, nb_path: Path, out_nb: Path, params: dict[str, Any], kernel: str,
             cwd: Path, progress: bool, attempts: int = 3) -> None:
    """Run one notebook with papermill, retrying only a kernel that failed to start."""
    for attempt in range(attempts):
        try:
            pm.execute_notebook(str(nb_path), str(out_nb), parameters=params,
                                kernel_name=kernel, cwd=str(cwd), progress_bar=progress,
                                request_save_on_cell_execute=True)
            return
        except Exception as exc:
            started = getattr(exc, "cell_index", None) is not None  # a cell ran and failed
            if started or attempt == attempts - 1 or not any(
                    m in str(exc) for m in _KERNEL_START_ERRORS):
                raise
            time.sleep(0.5 * (attempt + 1))


def _cell(x: object) -> str:
    return str(x).replace("|", "/").replace("\n", " ")


def write_summary(run_dir: Path, runs: Sequence[NotebookRun]) -> Path:
    """Write ``summary.md``: the Claims table, notebook status and the recorded results.

    The claims ledger (:func:`asiclab.results.claims_ledger`) is also written into
    ``results.json`` under ``"claims"``.
    """
    lines = [f"# Run `{run_dir.name}`", "", "## Claims", ""]
    try:
        recorded = results.load_results(run_dir)
        problem = ""
    except results.ResultError as exc:
        recorded, problem = [], f"(results.json unreadable: {exc})"
    ledger = results.claims_ledger(recorded)
    if ledger:
        lines += ["| claim | source | paper value | measured | verdict | notebook |",
                  "|---|---|---|---|---|---|"]
        for c in ledger:
            cells = [c["claim"], c["source"], c["paper_value"], c["measured"], c["verdict"] or "",
                     c["notebook"]]
            lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
        results.write_claims(run_dir, ledger)
    else:
        lines.append("No claims were tested in this run.")
    lines += ["", "## Notebooks", "", "| notebook | status | duration [s] |", "|---|---|---|"]
    lines += [f"| {r.name} | {r.status} | {r.duration_s:.1f} |" for r in runs]
    lines += ["", "## Results", ""]
    if problem:
        lines.append(problem)
    if recorded:
        lines += ["| notebook | result | value | verdict | note |", "|---|---|---|---|---|"]
        for e in recorded:
            note = str(e.get("note", "")).replace("|", "/").replace("\n", " ")
            lines.append(f"| {e['notebook']} | {e['name']} | {results.format_value(e)} | "
                         f"{e.get('verdict') or ''} | {note} |")
    else:
        lines.append("No results were recorded.")
    for r in runs:
        if r.error:
            lines += ["", f"## {r.name} failed", "",
                      f"Cell {r.error.get('cell_index')}: {r.error['ename']}: "
                      f"{r.error['evalue'][:500]}"]
    path = run_dir / SUMMARY
    path.write_text("\n".join(lines) + "\n")
    return path


def reproduce(
    params_file: str | os.PathLike[str] | None = None,
    *,
    only: Sequence[str] | None = None,
    run_id: str | None = None,
    keep_going: bool = False,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    notebooks_dir: str | os.PathLike[str] | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    base_dir: str | os.PathLike[str] | None = None,
    cache: bool = False,
) -> RunResult:
    """Execute the notebooks in order with papermill and write the run directory.

    Parameters
    ----------
    params_file : path-like, optional
        Parameter YAML (default ``notebooks/params/default.yaml``).
    only : sequence of str, optional
        Run only these notebooks (by stem, ``01_capture``, or by number prefix, ``01``).
    run_id : str, optional
        Name of the run directory (default: UTC timestamp). An existing one is refused.
    keep_going : bool
        Run the remaining notebooks after a failure (default: stop).
    overrides : mapping, optional
        ``{notebook: {parameter: value}}`` applied on top of the parameter file.
    notebooks_dir, runs_dir : path-like, optional
        Where the notebooks are and where run directories go (default: the project's
        ``notebooks/``, and ``$ASICLAB_RUNS_DIR`` or the project's ``papermill_runs/``).
    progress : bool
        Show papermill's per-cell progress bar.
    base_dir : path-like, optional
        Directory that relative path parameters (``Param(path=True)``, e.g. ``log_path``) are
        resolved from (default: the current working directory, the shell's directory for
        ``asiclab reproduce``); recorded as ``base_dir`` in ``manifest.json``.
    cache : bool
        Restore a notebook from an earlier run under the same runs folder instead of executing
        it when its cache key (parameters, input file hashes, commit, library; see
        :mod:`asiclab.runcache`) is the same and that run succeeded (default: execute all).

    Returns
    -------
    RunResult
        Per-notebook outcomes; ``exit_code`` is non-zero if any failed.
    """
    import papermill as pm

    from asiclab import gallery, runcache

    nb_dir = Path(notebooks_dir) if notebooks_dir else default_notebooks_dir()
    params_path = Path(params_file) if params_file else nb_dir / "params" / "default.yaml"
    params = load_params(params_path)
    notebooks = discover_notebooks(nb_dir)
    if not notebooks:
        raise RunnerError(f"no NN_topic.ipynb notebooks in {nb_dir}")
    names = [p.stem for p in notebooks]
    unknown = set(params) - set(names)
    if unknown:
        raise RunnerError(f"{params_path}: parameters for unknown notebook(s) {sorted(unknown)}; "
                          f"notebooks are {names}")
    if only:
        wanted = []
        for o in only:
            match = [p for p in notebooks if p.stem == o or p.stem.split("_")[0] == o]
            if not match:
                raise RunnerError(f"--only {o!r}: no such notebook; notebooks are {names}")
            wanted += match
        notebooks = [p for p in notebooks if p in wanted]
    overrides = {k: dict(v) for k, v in (overrides or {}).items()}
    for nb in overrides:
        if nb not in names:
            raise RunnerError(f"override for unknown notebook {nb!r}; notebooks are {names}")

    run_id = run_id or _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if not re.match(r"^[A-Za-z0-9._-]+$", run_id):
        raise RunnerError(f"run id {run_id!r}: use letters, digits, '.', '_' and '-'")
    base = Path(runs_dir or os.environ.get(ENV_RUNS_DIR)
                or results.project_root() / "papermill_runs")
    run_dir = (base / run_id).resolve()
    if run_dir.exists() and any(run_dir.iterdir()):
        raise RunnerError(f"run directory {run_dir} exists already; choose another --run-id")
    run_dir.mkdir(parents=True, exist_ok=True)

    commit = git_commit(results.project_root())
    manifest: dict[str, Any] = {
        "run_id": run_id, "asiclab_version": __version__,
        "git_commit": commit.removesuffix("-dirty"), "git_dirty": commit.endswith("-dirty"),
        "python": sys.version, "platform": platform.platform(),
        "packages": package_versions(), "params_file": str(params_path),
        "params_sha256": sha256_file(params_path), "start": _now(), "end": None,
        "notebooks": [], "files": [],
    }
    outcome = RunResult(run_dir)
    kernel = _kernel_name()
    env_keys = (results.ENV_RUN_DIR, results.ENV_NOTEBOOK, params_mod.ENV_BASE_DIR)
    old_env = {k: os.environ.get(k) for k in env_keys}
    os.environ[params_mod.ENV_BASE_DIR] = str(Path(base_dir or Path.cwd()).resolve())
    manifest["base_dir"] = os.environ[params_mod.ENV_BASE_DIR]
    failed = False
    try:
        for nb_path in notebooks:
            p = dict(params.get(nb_path.stem, {}))
            p.update(overrides.get(nb_path.stem, {}))
            p["run_dir"] = str(run_dir)
            run = NotebookRun(nb_path.stem, p)
            outcome.notebooks.append(run)
            if failed and not keep_going:
                run.status = "skipped"
                continue
            out_nb = run_dir / nb_path.name
            os.environ[results.ENV_RUN_DIR] = str(run_dir)
            os.environ[results.ENV_NOTEBOOK] = nb_path.stem
            run.start, t0 = _now(), time.perf_counter()
            plotting.clear_figures(nb_path.stem)  # figures/ holds this run's figures only
            run.cache_key = runcache.cache_key(runcache.cache_inputs(
                nb_path, p, run_dir, Path(manifest["base_dir"]), commit,
                manifest["packages"]))
            hit = runcache.find_cached(base, nb_path.stem, run.cache_key, exclude=run_dir)
            if cache and hit is not None:
                runcache.restore(hit, run_dir, nb_path)
                run.status, run.cached_from = "ok", hit.name
                run.end, run.duration_s = _now(), time.perf_counter() - t0
                continue
            try:
                _execute(pm, nb_path, out_nb, p, kernel, nb_dir, progress)
                run.status = "ok"
            except KeyboardInterrupt:
                run.status = "interrupted"
                run.error = {"ename": "KeyboardInterrupt", "evalue": "run interrupted",
                             "cell_index": None}
                failed = True
                raise
            except Exception as exc:  # papermill raises PapermillExecutionError and others
                run.status = "failed"
                run.error = _error_info(exc, out_nb)
                failed = True
            finally:
                run.end, run.duration_s = _now(), time.perf_counter() - t0
    finally:
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        manifest["end"] = _now()
        manifest["notebooks"] = [vars(r) for r in outcome.notebooks]
        manifest["files"] = _files_section(run_dir)
        manifest["status"] = "ok" if outcome.ok else "failed"
        (run_dir / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))
        if not (run_dir / results.RESULTS_FILE).exists():
            (run_dir / results.RESULTS_FILE).write_text(json.dumps({"results": []}))
        write_summary(run_dir, outcome.notebooks)
        try:
            gallery.write_gallery(run_dir)
        except (gallery.GalleryError, OSError) as exc:
            print(f"figure gallery not written: {exc}", file=sys.stderr)
    return outcome
