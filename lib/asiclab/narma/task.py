r"""The NARMA-10 task: generator, chronological splits and NRMSE (pure functions).

NARMA-10 (Atiya & Parlos 2000, DOI 10.1109/72.846741), in the form of the reservoir-computing
literature:

.. math::

    y(t+1) = 0.3\, y(t) + 0.05\, y(t) \sum_{i=0}^{9} y(t-i) + 1.5\, u(t-9)\, u(t) + 0.1,
    \qquad u(t) \sim \mathcal U[0, 0.5].

Alignment used everywhere in :mod:`asiclab.narma`: at step ``t`` the device (or model) is driven
by the input ``u[t]`` and must output the **target** ``d[t] = y(t+1)``, which depends on
``u[t], ..., u[t-9]`` and on the past of ``y``. A model at step ``t`` may use ``u[0..t]`` and
nothing later.

The issue's anchors are stated as "y(t) regressed on u(t-1)"; in this alignment that is the
target ``d[t]`` regressed on the *current* input ``u[t]``, and the "10-lag delay line" is
``u[t], ..., u[t-9]``.

Scores
------
:func:`nrmse` with ``norm="std"`` (primary): RMSE / std(d_test); the constant (mean) predictor
scores about 1. ``norm="minmax"`` (the form of the paper's related public script): RMSE /
(max - min), under which a constant predictor already scores about 0.18; it is reported only
beside :func:`constant_nrmse` under the same normalisation. ``norm="var"`` is reservoirpy
0.4.2's ``nrmse(norm="var")``: RMSE / variance (not a standard NRMSE; for comparison only).

reservoirpy 0.4.2's ``datasets.narma`` (with ``order=10, a1=0.3, a2=0.05, b=1.5, c=0.1``) uses a
different recurrence: ``y[t+1] = a1 y[t] + a2 y[t] sum(y[t-10..t-1]) + b u[t-10] u[t] + c``,
i.e. input lag 10 and a sum window shifted by one step. :func:`narma_recurrence` reproduces both
(``form="textbook"`` or ``form="reservoirpy"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from asiclab.narma._errors import NarmaDivergedError, NarmaInputError

__all__ = [
    "NORMS",
    "NarmaSeries",
    "Split",
    "chronological_split",
    "constant_nrmse",
    "generate",
    "narma_recurrence",
    "nrmse",
    "scores",
]

#: Normalisations of :func:`nrmse`.
NORMS = ("std", "minmax", "var")

#: |y| above this is treated as divergence (the bounded NARMA-10 regime stays below ~1.5).
DIVERGENCE_BOUND = 10.0

#: Coefficients of the textbook NARMA-10.
TEXTBOOK = {"order": 10, "a1": 0.3, "a2": 0.05, "b": 1.5, "c": 0.1}


def narma_recurrence(u: Any, *, order: int = 10, a1: float = 0.3, a2: float = 0.05,
                     b: float = 1.5, c: float = 0.1, form: str = "textbook") -> np.ndarray:
    r"""Run the NARMA recurrence on a given input sequence.

    Parameters
    ----------
    u : array-like of float, shape (n,)
        Input sequence [1].
    order : int
        Order n of the system (10 for NARMA-10).
    a1, a2, b, c : float
        Coefficients (textbook NARMA-10: 0.3, 0.05, 1.5, 0.1).
    form : {"textbook", "reservoirpy"}
        ``"textbook"``: :math:`y(t+1) = a_1 y(t) + a_2 y(t)\sum_{i=0}^{n-1} y(t-i)
        + b\,u(t-n+1)\,u(t) + c` for ``t >= n-1``, ``y = 0`` before (Atiya & Parlos 2000,
        DOI 10.1109/72.846741). ``"reservoirpy"``: reservoirpy 0.4.2's code,
        :math:`y(t+1) = a_1 y(t) + a_2 y(t)\sum_{i=1}^{n} y(t-i) + b\,u(t-n)\,u(t) + c` for
        ``t >= n``.

    Returns
    -------
    numpy.ndarray, shape (n,)
        ``y`` aligned with ``u`` (``y[t+1]`` is computed from ``u[t]`` and earlier).

    Raises
    ------
    NarmaInputError
        Bad input or form.
    NarmaDivergedError
        The output became non-finite or exceeded :data:`DIVERGENCE_BOUND`.
    """
    u = np.asarray(u, dtype=np.float64)
    if u.ndim != 1 or u.size < order + 2:
        raise NarmaInputError(f"u must be 1-D with more than order+1 = {order + 1} values, "
                              f"got shape {u.shape}")
    if not np.all(np.isfinite(u)):
        raise NarmaInputError("u must be finite")
    if int(order) != order or order < 1:
        raise NarmaInputError(f"order must be a positive integer, got {order!r}")
    if form not in ("textbook", "reservoirpy"):
        raise NarmaInputError(f"form must be 'textbook' or 'reservoirpy', got {form!r}")
    n = u.size
    y = np.zeros(n)
    if form == "textbook":
        start, lag, s0 = order - 1, order - 1, 0
    else:
        start, lag, s0 = order, order, 1
    # running window sum of y[t-s0-order+1 .. t-s0]
    window = float(np.sum(y[max(0, start - s0 - order + 1): start - s0 + 1]))
    for t in range(start, n - 1):
        yt = y[t]
        y[t + 1] = a1 * yt + a2 * yt * window + b * u[t - lag] * u[t] + c
        if not abs(y[t + 1]) <= DIVERGENCE_BOUND:
            raise NarmaDivergedError(
                f"NARMA-{order} diverged at step {t + 1} (y = {y[t + 1]!r}); draw another seed")
        # slide the window one step: add y[t+1-s0], drop y[t+1-s0-order]
        window += y[t + 1 - s0]
        old = t + 1 - s0 - order
        if old >= 0:
            window -= y[old]
    return y


@dataclass(frozen=True)
class NarmaSeries:
    """One NARMA-10 realisation in the driving alignment.

    Attributes
    ----------
    u : numpy.ndarray, shape (n,)
        Input driven at each step [1], ``U[0, 0.5]``.
    target : numpy.ndarray, shape (n,)
        ``target[t] = y(t+1)``: what a model driven by ``u[0..t]`` must output at step ``t``.
    seed : int
        Seed of the input draw.
    params : dict
        Coefficients and form of the recurrence.
    """

    u: np.ndarray
    target: np.ndarray
    seed: int
    params: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.u.size)


def generate(n_steps: int, seed: int, *, form: str = "textbook", u_low: float = 0.0,
             u_high: float = 0.5, **coefficients: float) -> NarmaSeries:
    """Draw a NARMA-10 input and compute its target, in the driving alignment.

    Parameters
    ----------
    n_steps : int
        Number of steps (>= 20).
    seed : int
        Seed of ``numpy.random.default_rng`` for ``u ~ U[u_low, u_high]``.
    form : {"textbook", "reservoirpy"}
        Recurrence (see :func:`narma_recurrence`).
    u_low, u_high : float
        Input range [1] (textbook: 0, 0.5).
    **coefficients : float
        ``order``, ``a1``, ``a2``, ``b``, ``c`` overriding the textbook values.

    Returns
    -------
    NarmaSeries
        ``u[t]`` and ``target[t] = y(t+1)`` for ``t = 0..n_steps-1``. The first ``order`` targets
        are transients of the zero initial state: remove them with a washout
        (:func:`chronological_split`).
    """
    if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < 20:
        raise NarmaInputError(f"n_steps must be an integer >= 20, got {n_steps!r}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise NarmaInputError(f"seed must be a non-negative integer, got {seed!r}")
    unknown = set(coefficients) - set(TEXTBOOK)
    if unknown:
        raise NarmaInputError(f"unknown coefficients {sorted(unknown)}")
    coef = {**TEXTBOOK, **coefficients}
    rng = np.random.default_rng(int(seed))
    u = rng.uniform(u_low, u_high, int(n_steps) + 1)
    y = narma_recurrence(u, form=form, **coef)
    return NarmaSeries(u=u[:-1], target=y[1:], seed=int(seed),
                       params={**coef, "form": form, "u_low": u_low, "u_high": u_high})


@dataclass(frozen=True)
class Split:
    """Chronological split of ``n`` steps: washout, then train, validation and test blocks.

    Attributes
    ----------
    n, washout : int
        Total steps and discarded leading steps.
    train, val, test : slice
        Index ranges (in this order in time; disjoint; together with the washout they cover
        ``0..n-1``).
    """

    n: int
    washout: int
    train: slice
    val: slice
    test: slice

    def sizes(self) -> dict[str, int]:
        """Number of steps in each block."""
        return {k: getattr(self, k).stop - getattr(self, k).start
                for k in ("train", "val", "test")}

    def to_dict(self) -> dict[str, int]:
        """JSON-ready description."""
        return {"n": self.n, "washout": self.washout,
                "train": [self.train.start, self.train.stop],
                "val": [self.val.start, self.val.stop],
                "test": [self.test.start, self.test.stop]}


def chronological_split(n: int, *, washout: int = 200, train: float = 0.6, val: float = 0.2
                        ) -> Split:
    """Split ``n`` steps in time order: washout, train, validation, test (the rest).

    Parameters
    ----------
    n : int
        Number of steps.
    washout : int
        Leading steps discarded (initial transients of the task and of the reservoir).
    train, val : float
        Fractions of the steps after the washout for training and validation; the test block
        gets the rest (must be > 0).

    Raises
    ------
    NarmaInputError
        Fractions out of range or a block with fewer than 10 steps.
    """
    if washout < 0 or washout >= n:
        raise NarmaInputError(f"washout must be in [0, n), got {washout} for n = {n}")
    if not (0 < train < 1 and 0 <= val < 1 and train + val < 1):
        raise NarmaInputError(f"need 0 < train, 0 <= val, train + val < 1; got {train}, {val}")
    m = n - washout
    a = washout + round(train * m)
    b = a + round(val * m)
    sp = Split(n, washout, slice(washout, a), slice(a, b), slice(b, n))
    small = {k: v for k, v in sp.sizes().items() if v < 10 and not (k == "val" and val == 0)}
    if small:
        raise NarmaInputError(f"split of {n} steps leaves too few steps: {small}")
    return sp


def nrmse(target: Any, prediction: Any, norm: str = "std") -> float:
    """Normalised root-mean-square error.

    Parameters
    ----------
    target, prediction : array-like, shape (n,)
        True and predicted values.
    norm : {"std", "minmax", "var"}
        Divide the RMSE by std(target) (primary; the mean predictor scores ~1), by
        max - min of the target (the paper's related script), or by the variance of the target
        (reservoirpy 0.4.2 ``norm="var"``, for comparison only).

    Returns
    -------
    float
        The NRMSE [1].
    """
    d = np.asarray(target, dtype=np.float64).ravel()
    p = np.asarray(prediction, dtype=np.float64).ravel()
    if d.shape != p.shape or d.size < 2:
        raise NarmaInputError(f"target and prediction need one shape with >= 2 values, got "
                              f"{d.shape} and {p.shape}")
    if norm not in NORMS:
        raise NarmaInputError(f"norm must be one of {NORMS}, got {norm!r}")
    rmse = float(np.sqrt(np.mean((d - p) ** 2)))
    scale = {"std": np.std(d), "minmax": np.ptp(d), "var": np.var(d)}[norm]
    if not scale > 0:
        raise NarmaInputError("target is constant: NRMSE undefined")
    return rmse / float(scale)


def constant_nrmse(target: Any, norm: str = "std", constant: float | None = None) -> float:
    """NRMSE of a constant predictor (the target's own mean unless ``constant`` is given).

    Under ``norm="std"`` the in-sample mean scores exactly 1; under ``norm="minmax"`` it
    scores std / (max - min), about 0.18 for NARMA-10.
    """
    d = np.asarray(target, dtype=np.float64).ravel()
    level = float(np.mean(d)) if constant is None else float(constant)
    return nrmse(d, np.full(d.shape, level), norm)


def scores(target: Any, prediction: Any, constant: float | None = None) -> dict[str, float]:
    """Both NRMSE forms of a prediction, each beside the constant predictor's score.

    Returns
    -------
    dict
        ``nrmse_std``, ``constant_std``, ``nrmse_minmax``, ``constant_minmax`` [1].
    """
    return {"nrmse_std": nrmse(target, prediction, "std"),
            "constant_std": constant_nrmse(target, "std", constant),
            "nrmse_minmax": nrmse(target, prediction, "minmax"),
            "constant_minmax": constant_nrmse(target, "minmax", constant)}
