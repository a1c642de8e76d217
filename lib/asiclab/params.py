"""Notebook parameter validation.

Each notebook declares its parameters in a ``parameters`` cell and validates them in the next
cell against a specification held by the library (``asiclab.<topic>.PARAMS``)::

    p = asiclab.params.validate(globals(), asiclab.capture.workflow.PARAMS, notebook="01_capture")

A wrong value or type stops the run with :class:`ParameterError` naming the parameter, the value
given and what is allowed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asiclab import AsiclabError


class ParameterError(AsiclabError, ValueError):
    """A notebook parameter has a wrong value or type.

    Attributes
    ----------
    name : str
        The parameter.
    value : Any
        The value given.
    allowed : str
        What is allowed.
    """

    def __init__(self, name: str, value: Any, allowed: str) -> None:
        self.name, self.value, self.allowed = name, value, allowed
        super().__init__(f"parameter {name!r} = {value!r} is not allowed: expected {allowed}")


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true/false",
               list: "a list", dict: "a mapping"}


@dataclass(frozen=True)
class Param:
    """Specification of one notebook parameter.

    Parameters
    ----------
    kind : type
        ``int``, ``float``, ``str``, ``bool``, ``list`` or ``dict``. ``float`` accepts integers.
    doc : str
        What the parameter means, with units in brackets.
    choices : sequence, optional
        Allowed values.
    min, max : float, optional
        Inclusive bounds for numbers, or for every element of a list of numbers.
    item : type, optional
        Element type of a list.
    min_len : int
        Minimum length of a list.
    nullable : bool
        Whether ``None`` is allowed.
    check : callable, optional
        Extra check returning an error text (what is allowed) or ``None`` if fine.
    path : bool
        The value is a file path (or glob): a relative one is resolved by :func:`validate`
        against :func:`base_dir`, not against the notebook's working directory.
    """

    kind: type
    doc: str = ""
    choices: Sequence[Any] | None = None
    min: float | None = None
    max: float | None = None
    item: type | None = None
    min_len: int = 0
    nullable: bool = False
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)
    path: bool = False

    def describe(self) -> str:
        """Human text of what is allowed."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind is list:
            text = f"a list of {_TYPE_NAMES.get(self.item, 'values')}"
            if self.min_len:
                text += f" with at least {self.min_len} element(s)"
        else:
            text = _TYPE_NAMES.get(self.kind, self.kind.__name__)
        if self.min is not None and self.max is not None:
            text += f" in [{self.min}, {self.max}]"
        elif self.min is not None:
            text += f" >= {self.min}"
        elif self.max is not None:
            text += f" <= {self.max}"
        if self.nullable:
            text += " (or None)"
        return text


ENV_BASE_DIR = "ASICLAB_BASE_DIR"
"""Environment variable: the directory relative paths are resolved from (set by the runner)."""


def base_dir() -> Path:
    """The directory relative path parameters are resolved from.

    ``asiclab reproduce`` (and :func:`asiclab.runner.reproduce`) sets it to the directory it was
    started in, so that a path typed on the command line means what it means in that shell, even
    though papermill runs each notebook with its working directory in ``notebooks/``. Without the
    runner (JupyterLab), it is the repository root.

    Returns
    -------
    pathlib.Path
        ``$ASICLAB_BASE_DIR`` if set, else :func:`asiclab.results.project_root`.
    """
    env = os.environ.get(ENV_BASE_DIR)
    if env:
        return Path(env)
    from asiclab import results

    return results.project_root()


def resolve_path(text: str) -> str:
    """``text`` made absolute against :func:`base_dir` ('' and absolute paths unchanged)."""
    if not text:
        return text
    path = Path(text).expanduser()
    return str(path if path.is_absolute() else base_dir() / path)


def _is(kind: type, v: Any) -> bool:
    if kind is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if kind is int:
        return isinstance(v, int) and not isinstance(v, bool)
    return isinstance(v, kind)


def _check_one(name: str, value: Any, spec: Param) -> Any:
    if value is None:
        if spec.nullable:
            return None
        raise ParameterError(name, value, spec.describe())
    if spec.kind is list and isinstance(value, tuple):
        value = list(value)
    if not _is(spec.kind, value):
        raise ParameterError(name, value, spec.describe())
    if spec.choices is not None and value not in spec.choices:
        raise ParameterError(name, value, spec.describe())
    numbers = value if spec.kind is list else [value]
    if spec.kind is list:
        if len(value) < spec.min_len:
            raise ParameterError(name, value, spec.describe())
        if spec.item is not None and not all(_is(spec.item, v) for v in value):
            raise ParameterError(name, value, spec.describe())
    if spec.min is not None or spec.max is not None:
        for v in numbers:
            if (spec.min is not None and v < spec.min) or (spec.max is not None and v > spec.max):
                raise ParameterError(name, value, spec.describe())
    if spec.kind is float:
        value = float(value)
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            raise ParameterError(name, value, problem)
    if spec.path and isinstance(value, str):
        value = resolve_path(value)
    return value


def validate(values: Mapping[str, Any], spec: Mapping[str, Param], *,
             notebook: str | None = None) -> dict[str, Any]:
    """Validate notebook parameters against a specification.

    Parameters
    ----------
    values : mapping
        Usually ``globals()`` of the notebook; only the names in ``spec`` (and ``run_dir``) are
        read.
    spec : mapping of str to Param
        The notebook's parameter specification.
    notebook : str, optional
        Notebook name; with ``run_dir`` it selects where results are recorded.

    Returns
    -------
    dict
        The validated parameters (``run_dir`` included); relative values of path parameters
        (``Param(path=True)``) made absolute against :func:`base_dir`.

    Raises
    ------
    ParameterError
        Naming the first missing or wrong parameter, its value and what is allowed.
    """
    out: dict[str, Any] = {}
    for name, s in spec.items():
        if name not in values:
            raise ParameterError(name, "<missing>", s.describe())
        out[name] = _check_one(name, values[name], s)
    rd = values.get("run_dir", "")
    if rd is not None and not isinstance(rd, str):
        raise ParameterError("run_dir", rd, "a directory path as a string ('' for interactive)")
    from asiclab import results

    out["run_dir"] = str(results.set_run_dir(rd or None, notebook))
    return out


def spec_table(spec: Mapping[str, Param]) -> str:
    """Markdown table of a parameter specification (for documentation)."""
    rows = ["| parameter | allowed | meaning |", "|---|---|---|"]
    rows += [f"| `{k}` | {v.describe()} | {v.doc} |" for k, v in spec.items()]
    return "\n".join(rows)
