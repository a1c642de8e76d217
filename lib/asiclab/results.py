"""Recorded results of a run: one call, :func:`record`, writes a value with units and uncertainty.

A run directory (``papermill_runs/<run-id>/``) is chosen by the runner, which passes it to every
notebook as the parameter ``run_dir``; notebooks call :func:`set_run_dir` with it (done by
:func:`asiclab.params.validate`). Interactive sessions without one write to
``papermill_runs/interactive/``.

Files in the run directory:

``results.json``
    ``{"results": [{notebook, name, value, unit, uncertainty, verdict, note, time, claim}, ...],
    "claims": [...]}``.
    Recording the same (notebook, name) again replaces the earlier entry. ``claim`` is
    ``null`` or the claim the result tests (:class:`Claim`); the runner gathers those rows into
    the claims ledger (``"claims"`` in ``results.json`` and the **Claims** table at the top of
    ``summary.md``).
``files.jsonl``
    One JSON line per data file read or written through :mod:`asiclab.dataset`; the runner adds
    their sha256 to ``manifest.json``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asiclab import AsiclabError

RESULTS_FILE = "results.json"
FILES_LOG = "files.jsonl"
ENV_RUN_DIR = "ASICLAB_RUN_DIR"
ENV_NOTEBOOK = "ASICLAB_NOTEBOOK"

_lock = threading.Lock()
_state: dict[str, Any] = {"run_dir": None, "notebook": None}


class ResultError(AsiclabError):
    """A result cannot be recorded (bad value, unit or uncertainty)."""


@dataclass(frozen=True)
class Claim:
    """A published claim that a recorded result tests (one row of the claims ledger).

    Parameters
    ----------
    id : str
        Short identifier, e.g. ``"narma10_nrmse_paper_claim"`` (letters, digits, ``_``).
    paper_value : float, int, str or bool
        The value as the paper states it, e.g. ``0.8661`` or ``"non-Poissonian near the edge"``.
    source : str
        Where the paper states it: arXiv id with section, table or figure,
        e.g. ``"arXiv:2601.12032, Sec. 5.2, Table 3"``.
    statement : str
        The claim in one plain sentence.
    """

    id: str
    paper_value: Any
    source: str
    statement: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.replace("_", "").isalnum():
            raise ResultError(f"claim id must be letters, digits and '_', got {self.id!r}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ResultError(f"claim {self.id!r}: source (arXiv id and section) is required")
        value = _plain(self.paper_value)
        if not isinstance(value, (int, float, str, bool)):
            raise ResultError(f"claim {self.id!r}: paper_value must be a number, text or bool")
        object.__setattr__(self, "paper_value", value)


def _as_claim(claim: Claim | dict[str, Any] | None) -> dict[str, Any] | None:
    if claim is None:
        return None
    if isinstance(claim, dict):
        try:
            claim = Claim(**claim)
        except TypeError as exc:
            raise ResultError(f"bad claim {claim!r}: {exc}") from exc
    if not isinstance(claim, Claim):
        raise ResultError(f"claim must be a Claim or a dict, got {type(claim).__name__}")
    return asdict(claim)


def project_root() -> Path:
    """Root of the source tree (the folder holding ``pyproject.toml``), or the cwd."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "notebooks").is_dir():
            return parent
    return Path.cwd()


def reset() -> None:
    """Forget the selected run directory and notebook (the next call re-reads the environment)."""
    _state["run_dir"] = None
    _state["notebook"] = None


def set_run_dir(run_dir: str | os.PathLike[str] | None, notebook: str | None = None) -> Path:
    """Select the run directory (created if needed) and the current notebook name."""
    if run_dir in (None, ""):
        run_dir = os.environ.get(ENV_RUN_DIR) or project_root() / "papermill_runs" / "interactive"
    path = Path(run_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    _state["run_dir"] = path
    if notebook is not None:
        _state["notebook"] = notebook
    return path


def run_dir() -> Path:
    """The current run directory (see :func:`set_run_dir`)."""
    if _state["run_dir"] is None:
        return set_run_dir(None)
    return _state["run_dir"]


def current_notebook() -> str:
    """Name of the notebook recording results (``"interactive"`` if none was set)."""
    return _state["notebook"] or os.environ.get(ENV_NOTEBOOK) or "interactive"


def _plain(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"results": []}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ResultError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ResultError(f"{path} does not hold a 'results' list")
    return data


def record(
    name: str,
    value: Any,
    unit: str,
    uncertainty: Any = None,
    *,
    note: str = "",
    verdict: str | None = None,
    claim: Claim | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record one result of the current notebook in ``results.json``.

    Parameters
    ----------
    name : str
        Identifier of the result, e.g. ``"cv_nominal"``.
    value : float, int, str or bool
        The value.
    unit : str
        Its unit (``"1"`` for dimensionless). Required: a number without a unit is not a result.
    uncertainty : float or (float, float), optional
        Standard uncertainty, or a (low, high) confidence interval; say which in ``note``.
    note : str
        How the value was obtained (method, CI level, data).
    verdict : str, optional
        Plain-language verdict, e.g. ``"consistent with Poisson"``.
    claim : Claim or dict, optional
        The published claim this result tests; the entry then becomes a row of the claims ledger
        (claim, paper value, measured value with uncertainty, verdict, notebook). A claim row
        needs a verdict.

    Returns
    -------
    dict
        The stored entry.
    """
    if not isinstance(name, str) or not name:
        raise ResultError("a result needs a non-empty name")
    if not isinstance(unit, str) or not unit:
        raise ResultError(f"result {name!r}: unit must be a non-empty string ('1' if none)")
    value = _plain(value)
    if not isinstance(value, (int, float, str, bool)) and value is not None:
        raise ResultError(f"result {name!r}: value must be a number, text or bool, "
                          f"got {type(value).__name__}")
    unc = _plain(uncertainty)
    if unc is not None and not (isinstance(unc, (int, float))
                                or (isinstance(unc, list) and len(unc) == 2)):
        raise ResultError(f"result {name!r}: uncertainty must be a number or a (low, high) pair")
    claim_entry = _as_claim(claim)
    if claim_entry is not None and not verdict:
        raise ResultError(f"result {name!r} tests claim {claim_entry['id']!r}: give a verdict")
    entry = {
        "notebook": current_notebook(), "name": name, "value": value, "unit": unit,
        "uncertainty": unc, "verdict": verdict, "note": note,
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "claim": claim_entry,
    }
    path = run_dir() / RESULTS_FILE
    with _lock:
        data = _read(path)
        data["results"] = [r for r in data["results"]
                           if (r.get("notebook"), r.get("name")) != (entry["notebook"], name)]
        data["results"].append(entry)
        tmp = path.with_suffix(".json.partial")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    return entry


def load_results(run: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Return the recorded results of a run directory (the current one by default)."""
    path = (Path(run) if run is not None else run_dir()) / RESULTS_FILE
    return _read(path)["results"]


def claims_ledger(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The claims ledger of a run: one row per recorded result that tests a claim.

    Rows hold ``claim``, ``statement``, ``source``, ``paper_value``, ``measured`` (value with
    uncertainty, as :func:`format_value` writes it), ``value``, ``uncertainty``, ``unit``,
    ``verdict``, ``notebook`` and ``result`` (the result's name), in recording order.
    """
    rows = []
    for e in entries:
        c = e.get("claim")
        if not c:
            continue
        rows.append({
            "claim": c["id"], "statement": c.get("statement", ""), "source": c["source"],
            "paper_value": c["paper_value"], "measured": format_value(e), "value": e.get("value"),
            "uncertainty": e.get("uncertainty"), "unit": e.get("unit"),
            "verdict": e.get("verdict"), "notebook": e.get("notebook"), "result": e.get("name"),
        })
    return rows


def write_claims(run: str | os.PathLike[str], ledger: list[dict[str, Any]]) -> None:
    """Store the claims ledger in the run's ``results.json`` under ``"claims"``."""
    path = Path(run) / RESULTS_FILE
    with _lock:
        data = _read(path)
        data["claims"] = ledger
        tmp = path.with_suffix(".json.partial")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)


def log_file(path: str | os.PathLike[str], role: str) -> None:
    """Note that a data file was read or written (``role`` is ``"read"`` or ``"written"``)."""
    entry = {"path": str(Path(path).resolve()), "role": role,
             "notebook": current_notebook()}
    with _lock, (run_dir() / FILES_LOG).open("a") as fh:
        fh.write(json.dumps(entry) + "\n")


def format_value(entry: dict[str, Any]) -> str:
    """Render a result entry as ``value ± u unit`` text (used by the summary table)."""
    v, u, unit = entry.get("value"), entry.get("uncertainty"), entry.get("unit", "")
    def fmt(x: Any) -> str:
        return f"{x:.4g}" if isinstance(x, float) else str(x)
    text = fmt(v)
    if isinstance(u, list):
        text += f" [{fmt(u[0])}, {fmt(u[1])}]"
    elif u is not None:
        text += f" ± {fmt(u)}"
    if unit and unit != "1":
        text += f" {unit}"
    return text
