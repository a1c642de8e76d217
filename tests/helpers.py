"""Small helpers shared by the tests (``import helpers``; ``tests/`` is on ``sys.path``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(pred: Callable[[], Any], timeout_s: float = 5.0) -> None:
    """Poll ``pred`` every 10 ms until it is true; AssertionError after ``timeout_s`` [s]."""
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)
