"""PUF distinguishability: can chips be told apart by their timing and error patterns?

Modules
-------
responses
    Challenges and responses from any capture dataset: per-core valid and hardware-error hit
    counts (core from ``core_id`` or from the BM1366 nonce bits), rate, CV, error fraction; the
    continuous response vector and the binarisation rule.
metrics
    Pure PUF metrics: Maiti, Gunreddy & Schaumont (2013) uniformity, bit-aliasing, uniqueness and
    reliability with ideal values; distances, FAR/FRR/EER with bootstrap CI, identification
    accuracy with an exact binomial CI, a permutation two-sample test, the witness.
fleet
    Simulated fleets in virtual time (chips by seed; a no-variation control fleet), one capture
    dataset per fleet, generated in parallel across processes.
evaluate
    Enrollment, verification and identification over a fleet, per challenge; the pairwise tests,
    the witness and the events-needed curve.
realdata
    The real S9 and LV06 logs: per-core / per-chip histograms with a uniformity test, the rate
    separation of two models, and the "deterministic hardware fingerprint" (DHF) check.
plots, workflow
    Figures and the steps of ``notebooks/05_puf.ipynb``.
"""

from asiclab.puf._errors import PufDataError, PufError, PufInputError

__all__ = ["PufDataError", "PufError", "PufInputError"]
