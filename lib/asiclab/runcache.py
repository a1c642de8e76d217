"""The run cache: reuse a notebook's earlier execution when nothing it depends on changed.

The runner (:func:`asiclab.runner.reproduce`) records a *cache key* for every notebook it runs
(``cache_key`` in the notebook's entry of ``manifest.json``). The key is the sha256 of
:func:`cache_inputs`: the notebook file, its parameters (without ``run_dir``), the contents of
every existing file a string parameter names (``log_path``, ``capture_path``...), the data files
that earlier notebooks of the same run left in the run directory (e.g. ``01_capture/capture.nc``
for ``02_heartbeat``), the git commit, a hash of the installed ``asiclab`` sources (so an
uncommitted edit also counts) and the versions of the recorded packages.

With ``cache=True`` (``asiclab reproduce --cache``, ``make figures``) a notebook whose key matches
a successful earlier run under the same runs folder is not executed: :func:`restore` copies that
run's outputs for the notebook (executed notebook, data folder, logged files, recorded results,
figures and their manifest entries) into the new run directory.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import asiclab
from asiclab import AsiclabError, plotting, results

#: Top-level files of a run directory that are not inputs of a later notebook.
_RUN_FILES = {"manifest.json", "results.json", "summary.md", results.FILES_LOG}


class RunCacheError(AsiclabError):
    """A cached run cannot be restored (its outputs are missing or unreadable)."""


def _sha_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tree_hashes(root: Path, exclude: Iterable[Path] = ()) -> dict[str, str]:
    skip = [p.resolve() for p in exclude]
    out = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file() or "__pycache__" in p.parts or p.suffix == ".partial":
            continue
        if any(p.resolve().is_relative_to(s) for s in skip):
            continue
        out[str(p.relative_to(root))] = _sha_file(p)
    return out


def library_hash() -> str:
    """sha256 over the installed ``asiclab`` package's files (sources, style, data)."""
    h = hashlib.sha256()
    for rel, digest in _tree_hashes(Path(asiclab.__file__).parent).items():
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _path_hashes(params: Mapping[str, Any], base_dir: Path) -> dict[str, dict[str, str]]:
    """Contents of every existing file, folder or glob that a string parameter names."""
    out: dict[str, dict[str, str]] = {}
    for text in _strings(params):
        if not text.strip() or "\n" in text or len(text) > 4096:
            continue
        path = Path(text).expanduser()
        path = path if path.is_absolute() else base_dir / path
        try:
            if path.is_file():
                out[text] = {path.name: _sha_file(path)}
            elif path.is_dir():
                out[text] = _tree_hashes(path)
            elif any(c in text for c in "*?["):
                matches = sorted(Path(m) for m in glob.glob(str(path)) if Path(m).is_file())
                if matches:
                    out[text] = {str(m): _sha_file(m) for m in matches}
        except OSError:
            continue
    return out


def run_dir_inputs(run_dir: Path) -> dict[str, str]:
    """Hashes of the data files already in a run directory (outputs of earlier notebooks).

    Top-level bookkeeping files, executed notebooks and ``figures/`` are left out: they are
    outputs, not inputs, and carry run-dependent content (times, run ids).
    """
    if not run_dir.is_dir():
        return {}
    out = {}
    for p in sorted(run_dir.iterdir()):
        if p.is_dir() and p.name != "figures":
            out.update({f"{p.name}/{k}": v for k, v in _tree_hashes(p).items()})
    return out


def cache_inputs(nb_path: Path, params: Mapping[str, Any], run_dir: Path, base_dir: Path,
                 commit: str, packages: Mapping[str, str]) -> dict[str, Any]:
    """Everything a notebook execution depends on, as a JSON-able mapping.

    Parameters
    ----------
    nb_path : pathlib.Path
        The source notebook.
    params : mapping
        Its parameters (``run_dir`` is ignored).
    run_dir : pathlib.Path
        The run directory, holding the outputs of the notebooks run before this one.
    base_dir : pathlib.Path
        Where relative path parameters are resolved from.
    commit : str
        The git commit (``-dirty`` suffix included when the tree has uncommitted changes).
    packages : mapping
        Package versions (:func:`asiclab.runner.package_versions`).

    Returns
    -------
    dict
        The inputs; :func:`cache_key` hashes them.
    """
    p = {k: v for k, v in params.items() if k != "run_dir"}
    return {
        "notebook": nb_path.stem, "notebook_sha256": _sha_file(nb_path),
        "parameters": json.loads(json.dumps(p, sort_keys=True, default=str)),
        "parameter_files": _path_hashes(p, base_dir), "run_dir_inputs": run_dir_inputs(run_dir),
        "git_commit": commit, "library_sha256": library_hash(), "packages": dict(packages),
    }


def cache_key(inputs: Mapping[str, Any]) -> str:
    """sha256 hex digest of :func:`cache_inputs` (canonical JSON)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def find_cached(runs_base: Path, notebook: str, key: str,
                exclude: Path | None = None) -> Path | None:
    """The newest run directory under ``runs_base`` where ``notebook`` ran with key ``key``.

    Only a notebook entry with status ``"ok"`` whose executed notebook is still present counts.
    Unreadable manifests are ignored.
    """
    best: tuple[str, Path] | None = None
    if not runs_base.is_dir():
        return None
    for manifest in runs_base.glob("*/manifest.json"):
        run = manifest.parent
        if exclude is not None and run.resolve() == exclude.resolve():
            continue
        try:
            data = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        for entry in data.get("notebooks", []) if isinstance(data, dict) else []:
            if (isinstance(entry, dict) and entry.get("name") == notebook
                    and entry.get("status") == "ok" and entry.get("cache_key") == key
                    and (run / f"{notebook}.ipynb").is_file()):
                stamp = str(entry.get("end", ""))
                if best is None or stamp > best[0]:
                    best = (stamp, run)
    return best[1] if best else None


def _write_results(run: Path, entries: list[dict[str, Any]]) -> None:
    path = run / results.RESULTS_FILE
    data: dict[str, Any] = {"results": []}
    if path.is_file():
        data = json.loads(path.read_text())
    keys = {(e.get("notebook"), e.get("name")) for e in entries}
    data["results"] = [r for r in data["results"]
                       if (r.get("notebook"), r.get("name")) not in keys] + entries
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def restore(src: Path, dst: Path, nb_path: Path) -> dict[str, int]:
    """Copy one notebook's outputs from an earlier run directory into a new one.

    Parameters
    ----------
    src, dst : pathlib.Path
        The cached run directory and the new one.
    nb_path : pathlib.Path
        The source notebook (its stem names the outputs).

    Returns
    -------
    dict
        How many files, results and figures were restored.

    Raises
    ------
    RunCacheError
        The cached run lacks the executed notebook or has unreadable results.
    """
    stem = nb_path.stem
    executed = src / nb_path.name
    if not executed.is_file():
        raise RunCacheError(f"{src}: no executed {nb_path.name} to restore")
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, dst / nb_path.name)
    n_files = 1
    if (src / stem).is_dir():
        shutil.copytree(src / stem, dst / stem, dirs_exist_ok=True)
        n_files += sum(1 for p in (dst / stem).rglob("*") if p.is_file())
    src_res = src.resolve()
    log_lines = []
    log = src / results.FILES_LOG
    if log.is_file():
        for line in log.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("notebook") != stem:
                continue
            p = Path(entry.get("path", ""))
            if p.is_relative_to(src_res):
                new = dst.resolve() / p.relative_to(src_res)
                if p.is_file() and not new.is_file():
                    new.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(p, new)
                    n_files += 1
                entry["path"] = str(new)
            log_lines.append(json.dumps(entry))
    if log_lines:
        with (dst / results.FILES_LOG).open("a") as fh:
            fh.write("\n".join(log_lines) + "\n")
    try:
        recorded = [r for r in results.load_results(src) if r.get("notebook") == stem]
        figs = [f for f in plotting.load_figures_manifest(src) if f.get("notebook") == stem]
    except (results.ResultError, plotting.FigureError) as exc:
        raise RunCacheError(f"{src}: cannot restore {stem}: {exc}") from exc
    if recorded:
        _write_results(dst, recorded)
    if figs:
        (dst / "figures").mkdir(exist_ok=True)
        copies = plotting.figures_dir()  # the project's figures/ gets them, as savefig does
        to_copies = copies.is_dir() and copies.resolve() != (dst / "figures").resolve()
        for f in figs:
            for k in ("png", "pdf"):
                if (src / "figures" / f[k]).is_file():
                    shutil.copy2(src / "figures" / f[k], dst / "figures" / f[k])
                    if to_copies:
                        shutil.copy2(src / "figures" / f[k], copies / f[k])
            f["cached_from"] = f.get("cached_from") or f.get("run_id", src.name)
            f["run_id"] = dst.name
        plotting.write_figures_manifest(dst, plotting.load_figures_manifest(dst) + figs)
    return {"files": n_files, "results": len(recorded), "figures": len(figs)}
