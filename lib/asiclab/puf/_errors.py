"""Typed errors of :mod:`asiclab.puf`."""

from __future__ import annotations

from asiclab import AsiclabError


class PufError(AsiclabError):
    """Base class of the PUF topic's errors."""


class PufInputError(PufError):
    """Bad argument to a PUF function (shape, empty set, unknown challenge, bad parameter...)."""


class PufDataError(PufError):
    """A capture cannot give PUF responses (no core attribution, no operating points...)."""
