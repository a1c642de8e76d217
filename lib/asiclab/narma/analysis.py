"""Models, controls and the verdict of NARMA-10 on one chronological split.

:func:`evaluate` fits every model on the training block, picks its hyper-parameters on the
validation block (ridge parameters by forward-chaining CV inside the training block) and scores
it once on the test block, with a moving-block bootstrap 95 % CI:

``constant``             the training mean;
``device``               ridge on the device's per-step features, lambda by CV;
``device_paper_lambda``  the same with the paper's lambda = 1e-6;
``device_shuffled``      device features of a drive with the input shuffled in time (or, if
                         none is given, the feature rows permuted), against the true target;
``input_linear``         ridge on u(t), ..., u(t-k), k chosen on validation;
``input_quadratic``      the delay line plus pairwise products, k chosen on validation;
``device_plus_input``    device features plus the chosen input delay line;
``esn``                  software echo-state networks, N in ``esn_sizes``, spectral radius and
                         input scaling tuned on validation (the best N is reported);
``esn_plus_device``      the best ESN's states plus the device features.

**Verdict** (:class:`Verdict`): the device "computes" only if ``device_plus_input`` beats the
best input-only control (``input_linear`` or ``input_quadratic``, whichever is better on the
test block: conservative, the device must beat both) on the test block, by a one-sided
paired block bootstrap of the squared residuals at level ``alpha``. Otherwise the verdict says
which level the device matched.

Also: linear memory capacity (Jaeger 2002, GMD Report 152) with a shuffled-feature null, and the
consistency (echo-state) correlation of two drives of one input from different initial states
(Lymburn et al. 2019, Chaos 29, 023118, DOI 10.1063/1.5079686).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from asiclab.narma import readout as ro
from asiclab.narma._errors import NarmaInputError
from asiclab.narma.task import NarmaSeries, Split, constant_nrmse, nrmse

__all__ = [
    "INPUT_ONLY",
    "ModelResult",
    "NarmaReport",
    "Verdict",
    "consistency",
    "esn_sweep",
    "evaluate",
    "memory_capacity",
]

#: The input-only controls the verdict compares against.
INPUT_ONLY = ("input_linear", "input_quadratic")

#: The paper's reported NRMSE (arXiv:2601.12032).
PAPER_NRMSE = 0.8661


@dataclass
class ModelResult:
    """One model's fit and test score.

    Attributes
    ----------
    name : str
        Model name.
    test_nrmse, val_nrmse : float
        NRMSE = RMSE / std on the test and validation blocks [1].
    ci : (float, float)
        Moving-block bootstrap 95 % CI of the test NRMSE.
    test_nrmse_minmax : float
        RMSE / (max - min) on the test block [1].
    prediction : numpy.ndarray
        Test-block predictions.
    info : dict
        Chosen hyper-parameters.
    """

    name: str
    test_nrmse: float
    val_nrmse: float
    ci: tuple[float, float]
    test_nrmse_minmax: float
    prediction: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    """Does the device add anything beyond its input?

    Attributes
    ----------
    computes : bool
        ``device_plus_input`` beats the best input-only control at level ``alpha``.
    p_value : float
        One-sided paired block-bootstrap p-value of that test.
    best_input_only : str
        The input-only control compared against.
    device_level : str
        Where the device alone lands: ``"constant"``, ``"input-only"``, ``"between constant and
        input-only"`` or ``"better than input-only"``.
    text : str
        The plain verdict.
    tests : dict
        The paired tests behind it.
    """

    computes: bool
    p_value: float
    best_input_only: str
    device_level: str
    text: str
    tests: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class NarmaReport:
    """Everything :func:`evaluate` found."""

    models: dict[str, ModelResult]
    verdict: Verdict
    split: Split
    target_test: np.ndarray
    esn_curve: pd.DataFrame
    constant_minmax: float
    params: dict[str, Any] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """One row per model: test NRMSE with CI, validation NRMSE, min-max form."""
        rows = [{"model": m.name, "test_nrmse": m.test_nrmse, "ci_low": m.ci[0],
                 "ci_high": m.ci[1], "val_nrmse": m.val_nrmse,
                 "test_nrmse_minmax": m.test_nrmse_minmax,
                 "constant_minmax": self.constant_minmax,
                 "info": ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in m.info.items())}
                for m in self.models.values()]
        return pd.DataFrame(rows).set_index("model")


def _fit_score(X: np.ndarray, d: np.ndarray, sp: Split, lam: float | None
               ) -> tuple[ro.Ridge, float, float]:
    """Fit on train (lambda by CV if None); return the model, chosen lambda and val NRMSE."""
    if lam is None:
        lam, _ = ro.choose_lambda(X[sp.train], d[sp.train])
    m = ro.Ridge(lam).fit(X[sp.train], d[sp.train])
    val = nrmse(d[sp.val], m.predict(X[sp.val])) if sp.val.stop > sp.val.start else np.nan
    return m, float(lam), float(val)


def _best_delay(design: Any, d: np.ndarray, sp: Split, ks: Sequence[int]
                ) -> tuple[int, ro.Ridge, float, float]:
    best: tuple[float, int, ro.Ridge, float] | None = None
    for k in ks:
        m, lam, val = _fit_score(design(k), d, sp, None)
        if best is None or val < best[0]:
            best = (val, k, m, lam)
    assert best is not None
    return best[1], best[2], best[3], best[0]


def esn_sweep(u: np.ndarray, d: np.ndarray, sp: Split, *, sizes: Sequence[int] = (50, 100, 200,
              400), spectral_radii: Sequence[float] = (0.8, 0.95),
              input_scalings: Sequence[float] = (0.2, 1.0), lambdas: Sequence[float] = (1e-6,
              1e-4, 1e-2), seed: int = 0) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """Echo-state networks of each size, (spectral radius, input scaling, lambda) tuned on
    validation.

    Returns
    -------
    (pandas.DataFrame, dict)
        Per size: chosen parameters, validation and test NRMSE; and the chosen states (with u
        as an extra column) per size.
    """
    rows, states = [], {}
    for n in sizes:
        best: tuple[float, dict[str, Any], np.ndarray] | None = None
        for sr in spectral_radii:
            for isc in input_scalings:
                X = np.column_stack([ro.ESN(n, spectral_radius=sr, input_scaling=isc,
                                            seed=seed).states(u), u])
                for lam in lambdas:
                    _, _, val = _fit_score(X, d, sp, lam)
                    if best is None or val < best[0]:
                        best = (val, {"spectral_radius": sr, "input_scaling": isc,
                                      "lam": lam}, X)
        assert best is not None
        m = ro.Ridge(best[1]["lam"]).fit(best[2][sp.train], d[sp.train])
        test = nrmse(d[sp.test], m.predict(best[2][sp.test]))
        rows.append({"n_units": int(n), **best[1], "val_nrmse": best[0], "test_nrmse": test})
        states[int(n)] = best[2]
    return pd.DataFrame(rows), states


def _standardise_features(F: Any) -> np.ndarray:
    X = F.to_numpy(dtype=float) if isinstance(F, pd.DataFrame) else np.asarray(F, float)
    if X.ndim == 1:
        X = X[:, None]
    return X


def evaluate(series: NarmaSeries, features: Any, split: Split, *,
             shuffled_features: Any = None, feature_delays: int = 0, max_lag: int = 30,
             quad_max_lag: int = 10, esn_sizes: Sequence[int] = (50, 100, 200, 400),
             esn_spectral_radii: Sequence[float] = (0.8, 0.95),
             esn_input_scalings: Sequence[float] = (0.2, 1.0), alpha: float = 0.05,
             n_boot: int = 1000, block: int = 50, seed: int = 0) -> NarmaReport:
    """Fit and score every model and control (see the module docstring).

    Parameters
    ----------
    series : NarmaSeries
        Input and target (one value per step).
    features : pandas.DataFrame or array-like, shape (n_steps, p)
        Device features per step (:func:`asiclab.narma.features.step_features`).
    split : Split
        Chronological split.
    shuffled_features : array-like, optional
        Features of a drive with the input shuffled in time (the shuffled-input control);
        default: the rows of ``features`` permuted with ``seed``.
    feature_delays : int
        Delay embedding of the device features (0: none).
    max_lag, quad_max_lag : int
        Largest k of the linear and quadratic input-only controls.
    esn_sizes, esn_spectral_radii, esn_input_scalings : sequences
        ESN sizes and the tuning grid (empty sizes: no ESN).
    alpha : float
        Level of the verdict's test.
    n_boot, block : int
        Bootstrap resamples and block length [steps].
    seed : int
        Seed of the bootstrap, the permutation and the ESN weights.
    """
    u, d = series.u, series.target
    X_dev = _standardise_features(features)
    if X_dev.shape[0] != u.size:
        raise NarmaInputError(f"{X_dev.shape[0]} feature rows for {u.size} steps")
    if not np.all(np.isfinite(X_dev)):
        raise NarmaInputError("device features must be finite")
    if feature_delays:
        X_dev = ro.delay_embed(X_dev, feature_delays)
    rng = np.random.default_rng(seed)
    sp = split
    d_test = d[sp.test]
    preds: dict[str, tuple[np.ndarray, float, dict[str, Any]]] = {}

    c = float(d[sp.train].mean())
    preds["constant"] = (np.full(d_test.size, c),
                         constant_nrmse(d[sp.val], constant=c) if sp.val.stop > sp.val.start
                         else np.nan, {"level": c})

    def add(name: str, X: np.ndarray, lam: float | None, info: dict[str, Any]) -> None:
        m, lam_used, val = _fit_score(X, d, sp, lam)
        preds[name] = (m.predict(X[sp.test]), val, {**info, "lam": lam_used})

    add("device", X_dev, None, {"n_features": X_dev.shape[1]})
    add("device_paper_lambda", X_dev, ro.PAPER_LAMBDA, {"n_features": X_dev.shape[1]})
    if shuffled_features is None:
        X_sh = X_dev[rng.permutation(X_dev.shape[0])]
        how = "rows permuted"
    else:
        X_sh = _standardise_features(shuffled_features)
        if feature_delays:
            X_sh = ro.delay_embed(X_sh, feature_delays)
        how = "drive with the input shuffled in time"
    add("device_shuffled", X_sh, None, {"control": how})

    k_lin, m_lin, lam_lin, val_lin = _best_delay(lambda k: ro.delay_embed(u, k), d, sp,
                                                 range(0, max_lag + 1))
    U_lin = ro.delay_embed(u, k_lin)
    preds["input_linear"] = (m_lin.predict(U_lin[sp.test]), val_lin, {"k": k_lin,
                                                                       "lam": lam_lin})
    k_q, m_q, lam_q, val_q = _best_delay(lambda k: ro.quadratic_features(u, k), d, sp,
                                         range(0, quad_max_lag + 1))
    preds["input_quadratic"] = (m_q.predict(ro.quadratic_features(u, k_q)[sp.test]), val_q,
                                {"k": k_q, "lam": lam_q})
    add("device_plus_input", np.column_stack([X_dev, U_lin]), None,
        {"k": k_lin, "n_features": X_dev.shape[1]})

    esn_curve = pd.DataFrame()
    if esn_sizes:
        esn_curve, states = esn_sweep(u, d, sp, sizes=esn_sizes,
                                      spectral_radii=esn_spectral_radii,
                                      input_scalings=esn_input_scalings, seed=seed)
        best = esn_curve.loc[esn_curve["val_nrmse"].idxmin()]
        n_best = int(best["n_units"])
        add("esn", states[n_best], float(best["lam"]),
            {"n_units": n_best, "spectral_radius": float(best["spectral_radius"]),
             "input_scaling": float(best["input_scaling"])})
        add("esn_plus_device", np.column_stack([states[n_best], X_dev]), None,
            {"n_units": n_best})

    models: dict[str, ModelResult] = {}
    for name, (p, val, info) in preds.items():
        models[name] = ModelResult(
            name=name, test_nrmse=nrmse(d_test, p), val_nrmse=float(val),
            ci=ro.block_bootstrap_nrmse(d_test, p, block=block, n_boot=n_boot, seed=seed),
            test_nrmse_minmax=nrmse(d_test, p, "minmax"), prediction=p, info=info)
    verdict = _verdict(models, d_test, alpha=alpha, block=block, n_boot=max(n_boot, 1000),
                       seed=seed)
    return NarmaReport(models=models, verdict=verdict, split=sp, target_test=d_test,
                       esn_curve=esn_curve, constant_minmax=constant_nrmse(d_test, "minmax"),
                       params={"feature_delays": feature_delays, "max_lag": max_lag,
                               "quad_max_lag": quad_max_lag, "alpha": alpha,
                               "n_boot": n_boot, "block": block, "seed": seed})


def _verdict(models: dict[str, ModelResult], d: np.ndarray, *, alpha: float, block: int,
             n_boot: int, seed: int) -> Verdict:
    # conservative: the device must beat every input-only control, so the one compared
    # against is the best on the test block itself
    best_in = min(INPUT_ONLY, key=lambda k: models[k].test_nrmse)
    def test(a: str, b: str) -> dict[str, float]:
        return ro.paired_block_bootstrap(d, models[a].prediction, models[b].prediction,
                                         block=block, n_boot=n_boot, seed=seed)
    tests = {"device_plus_input<" + best_in: test("device_plus_input", best_in),
             "device<constant": test("device", "constant"),
             "device<" + best_in: test("device", best_in),
             best_in + "<device": test(best_in, "device"),
             "device<device_shuffled": test("device", "device_shuffled")}
    if "esn" in models:
        tests["esn_plus_device<esn"] = test("esn_plus_device", "esn")
    main = tests["device_plus_input<" + best_in]
    computes = bool(main["p_value"] < alpha and main["mean_diff"] < 0)
    if tests["device<constant"]["p_value"] >= alpha:
        level = "constant"
    elif tests[best_in + "<device"]["p_value"] < alpha:
        level = "between constant and input-only"
    elif tests["device<" + best_in]["p_value"] < alpha:
        level = "better than input-only"
    else:
        level = "input-only"
    m = models
    dev, inp, dpi = m["device"].test_nrmse, m[best_in].test_nrmse, m["device_plus_input"]
    if computes:
        text = (f"the device adds information beyond its input: device + input NRMSE "
                f"{dpi.test_nrmse:.3f} < best input-only ({best_in}) {inp:.3f}, paired block "
                f"bootstrap p = {main['p_value']:.3g} (alpha = {alpha})")
    else:
        text = (f"no evidence that the device computes beyond its input: device + input NRMSE "
                f"{dpi.test_nrmse:.3f} vs best input-only ({best_in}) {inp:.3f}, p = "
                f"{main['p_value']:.3g} (alpha = {alpha})")
    text += (f"; the device alone scores {dev:.3f}, at the {level} level "
             f"(constant 1.000, shuffled-input control {m['device_shuffled'].test_nrmse:.3f}); "
             f"the paper's {PAPER_NRMSE} is near a linear regression on the current input")
    if "esn" in models:
        e = tests["esn_plus_device<esn"]
        text += (f"; ESN {m['esn'].test_nrmse:.3f}, ESN + device "
                 f"{m['esn_plus_device'].test_nrmse:.3f} (p = {e['p_value']:.3g})")
    return Verdict(computes=computes, p_value=float(main["p_value"]), best_input_only=best_in,
                   device_level=level, text=text, tests=tests)


def memory_capacity(features: Any, u: Any, split: Split, *, max_delay: int = 30,
                    n_null: int = 20, seed: int = 0, lam: float | None = 1e-4
                    ) -> dict[str, Any]:
    """Linear memory capacity (Jaeger 2002) of per-step features, with a shuffled null.

    ``MC_k`` is the squared correlation, on the test block, between ``u(t-k)`` and its ridge
    reconstruction from the features at ``t`` (fit on the training block);
    ``MC = sum_{k=1..max_delay} MC_k`` (``MC_0``, the instantaneous response, is reported but
    not summed). The null repeats this with the feature rows permuted in time (``n_null``
    times); its 95th percentile is the level an unrelated feature set reaches by chance.

    Returns
    -------
    dict
        ``curve`` (MC_k for k = 0..max_delay), ``mc``, ``null_mc`` (array), ``null_q95``,
        ``null_curve_q95``.
    """
    X = _standardise_features(features)
    u = np.asarray(u, float).ravel()
    if X.shape[0] != u.size:
        raise NarmaInputError("features and u need one row per step")
    tr, te = split.train, split.test

    def curve(Xm: np.ndarray) -> np.ndarray:
        out = np.zeros(max_delay + 1)
        for k in range(max_delay + 1):
            target = np.zeros_like(u)
            target[k:] = u[: u.size - k] if k else u
            m = ro.Ridge(1e-6 if lam is None else lam).fit(Xm[tr], target[tr])
            p = m.predict(Xm[te])
            t = target[te]
            if np.std(p) > 0 and np.std(t) > 0:
                out[k] = float(np.corrcoef(p, t)[0, 1] ** 2)
        return out

    c = curve(X)
    rng = np.random.default_rng(seed)
    nulls = np.array([curve(X[rng.permutation(X.shape[0])]) for _ in range(n_null)])
    null_mc = nulls[:, 1:].sum(axis=1) if n_null else np.zeros(0)
    return {"curve": c, "mc": float(c[1:].sum()), "null_mc": null_mc,
            "null_q95": float(np.quantile(null_mc, 0.95)) if n_null else float("nan"),
            "null_curve_q95": np.quantile(nulls, 0.95, axis=0) if n_null
            else np.full(max_delay + 1, np.nan)}


def consistency(features_a: Any, features_b: Any, washout: int = 0) -> pd.Series:
    """Correlation of two feature responses to one input after the washout (Lymburn et al.
    2019, DOI 10.1063/1.5079686), per feature (NaN for a constant feature).

    A reservoir must answer the same input in the same way: correlations near 1 mean the
    response is driven by the input, near 0 that it is noise or initial-state history.
    """
    A, B = _standardise_features(features_a), _standardise_features(features_b)
    if A.shape != B.shape:
        raise NarmaInputError(f"feature shapes differ: {A.shape} vs {B.shape}")
    names = (list(features_a.columns) if isinstance(features_a, pd.DataFrame)
             else [f"f{i}" for i in range(A.shape[1])])
    out = {}
    for i, name in enumerate(names):
        a, b = A[washout:, i], B[washout:, i]
        out[name] = (float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 0 and np.std(b) > 0
                     else float("nan"))
    return pd.Series(out, name="consistency")
