"""Small helpers shared by the tests (``import helpers``; ``tests/`` is on ``sys.path``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat


def wait_until(pred: Callable[[], Any], timeout_s: float = 5.0) -> None:
    """Poll ``pred`` every 10 ms until it is true; AssertionError after ``timeout_s`` [s]."""
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def write_notebook(path: Path, cells: list[tuple[str, str]]) -> None:
    """Write a small notebook of code cells ``(tag, source)`` with the python3 kernel."""
    nb = nbformat.v4.new_notebook()
    for tag, src in cells:
        c = nbformat.v4.new_code_cell(src)
        if tag:
            c.metadata["tags"] = [tag]
        nb.cells.append(c)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
