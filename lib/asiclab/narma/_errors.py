"""Typed errors of :mod:`asiclab.narma`."""

from __future__ import annotations

from asiclab import AsiclabError


class NarmaError(AsiclabError):
    """Base class of the NARMA topic's errors."""


class NarmaInputError(NarmaError):
    """Bad argument to a NARMA function (length, split, normalisation, feature shape...)."""


class NarmaDivergedError(NarmaError):
    """The NARMA recurrence left its bounded regime (non-finite or huge output)."""


class EncodingError(NarmaError):
    """An input encoding the chosen device cannot apply at the step rate (refused, never slowed
    down), or an unknown encoding."""
