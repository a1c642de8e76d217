"""NARMA-10 with the chip as reservoir, beside the controls that decide whether it computes.

Submodules: :mod:`~asiclab.narma.task` (generator, splits, NRMSE), :mod:`~asiclab.narma.readout`
(ridge, input-only designs, ESN, block bootstrap), :mod:`~asiclab.narma.driver` (step driver and
encodings for simulated / emulated / live devices), :mod:`~asiclab.narma.features` (per-step
features), :mod:`~asiclab.narma.analysis` (models, controls, verdict, memory, consistency),
:mod:`~asiclab.narma.workflow` (notebook 03) and :mod:`~asiclab.narma.plots`.
"""

from __future__ import annotations

from asiclab.narma._errors import EncodingError, NarmaDivergedError, NarmaError, NarmaInputError
from asiclab.narma.task import (
    NarmaSeries,
    Split,
    chronological_split,
    constant_nrmse,
    generate,
    narma_recurrence,
    nrmse,
    scores,
)

__all__ = [
    "EncodingError",
    "NarmaDivergedError",
    "NarmaError",
    "NarmaInputError",
    "NarmaSeries",
    "Split",
    "chronological_split",
    "constant_nrmse",
    "generate",
    "narma_recurrence",
    "nrmse",
    "scores",
]
