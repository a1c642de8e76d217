"""Typed exceptions of :mod:`asiclab.heartbeat`."""

from __future__ import annotations

from asiclab import AsiclabError
from asiclab.dataset import CaptureSelectionError


class HeartbeatError(AsiclabError):
    """Base class of every error raised by :mod:`asiclab.heartbeat`."""


class HeartbeatInputError(HeartbeatError, ValueError):
    """Bad input: wrong shape, negative or non-finite intervals, wrong parameters."""


class InsufficientDataError(HeartbeatError):
    """Too few events for the requested statistic."""


# ``CaptureSelectionError`` (a capture lacks the variables needed, or a requested device/op does not
# exist) is the shared :class:`asiclab.dataset.CaptureSelectionError`, re-exported here.

__all__ = [
    "CaptureSelectionError",
    "HeartbeatError",
    "HeartbeatInputError",
    "InsufficientDataError",
]
