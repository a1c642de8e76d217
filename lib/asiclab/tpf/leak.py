"""The "hardware-informed" reproduction on windowed share statistics, and its label leak.

"Speaking to Silicon" (arXiv:2601.12032) reports an MLP scoring "100 %" on windows of share
statistics with the label ``window_shares > 0``, while the features include the same window's
counts: the label is a function of the features (a leak). This module rebuilds that setup on
any share train (the real S9 log, a capture) and a leak-free version: features only from past
windows, a chronological split, and the label of the *next* window.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from asiclab import AsiclabError

__all__ = ["LeakError", "evaluate_leak", "window_table"]


class LeakError(AsiclabError):
    """Too few events or windows for the windowed reproduction."""


def window_table(t_s: np.ndarray, difficulty: np.ndarray | None = None, *,
                 window_s: float = 1.0) -> pd.DataFrame:
    """Per-window share statistics: ``shares``, ``mean_difficulty``, ``max_difficulty``.

    Parameters
    ----------
    t_s : array of float
        Share times [s].
    difficulty : array of float, optional
        Achieved difficulty of each share [1] (zeros when absent).
    window_s : float
        Window length [s].
    """
    t = np.asarray(t_s, dtype=float)
    if t.size < 10 or window_s <= 0:
        raise LeakError("need >= 10 shares and window_s > 0")
    d = np.zeros_like(t) if difficulty is None else np.asarray(difficulty, dtype=float)
    idx = np.floor((t - t.min()) / window_s).astype(np.int64)
    n_win = int(idx.max()) + 1
    shares = np.bincount(idx, minlength=n_win)
    dsum = np.bincount(idx, weights=d, minlength=n_win)
    dmax = np.zeros(n_win)
    np.maximum.at(dmax, idx, d)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_d = np.where(shares > 0, dsum / np.maximum(shares, 1), 0.0)
    return pd.DataFrame({"shares": shares, "mean_difficulty": mean_d, "max_difficulty": dmax})


def _fit_score(x: np.ndarray, y: np.ndarray, train_frac: float, seed: int) -> dict[str, Any]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n_train = int(train_frac * len(y))
    xtr, ytr, xte, yte = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    if len(yte) < 5 or n_train < 5:
        raise LeakError("too few windows: use shorter windows or a longer share train")
    if len(np.unique(ytr)) < 2:  # one class only: the MLP cannot be trained, predict it
        pred = np.full(len(yte), bool(ytr[0]))
        model_name = "constant (one class in the training windows)"
    else:
        model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(32, 16),
                                                              max_iter=500, random_state=seed))
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the result is what it scores
            model.fit(xtr, ytr)
            pred = model.predict(xte)
        model_name = "MLP (32, 16)"
    correct = int((pred == yte).sum())
    majority_class = bool(ytr.mean() >= 0.5)
    majority = float((yte == majority_class).mean())
    p = stats.binomtest(correct, len(yte), min(max(majority, 1e-12), 1 - 1e-12),
                        alternative="greater").pvalue
    return {"model": model_name, "accuracy": correct / len(yte), "majority_rate": majority,
            "p_vs_majority": float(p),
            "n_test": len(yte), "n_train": n_train}


def evaluate_leak(windows: pd.DataFrame, *, lags: int = 5, train_frac: float = 0.7,
                  seed: int = 0) -> pd.DataFrame:
    """The paper's leaky setup beside a leak-free one, both with an MLP and a chronological split.

    * **leaky**: features = this window's ``shares``, ``mean_difficulty``, ``max_difficulty``;
      label = this window's ``shares > 0`` (a function of the first feature);
    * **leak-free**: features = the previous ``lags`` windows' statistics; label = this window's
      ``shares > 0``, i.e. the next window predicted from the past only.

    Returns
    -------
    pandas.DataFrame
        One row per setup: ``setup``, ``accuracy``, ``majority_rate`` (of the test windows,
        predicting the training majority class), ``p_vs_majority`` (exact binomial, one-sided),
        ``n_train``, ``n_test``, ``positive_rate``.
    """
    w = windows.reset_index(drop=True)
    y = (w["shares"].to_numpy() > 0)
    feats = w[["shares", "mean_difficulty", "max_difficulty"]].to_numpy(float)
    rows = [{"setup": "leaky (paper): own-window features, label window_shares > 0",
             **_fit_score(feats, y, train_frac, seed), "positive_rate": float(y.mean())}]
    if len(w) <= lags + 10:
        raise LeakError(f"need more than {lags + 10} windows")
    past = np.hstack([feats[lags - j - 1 : len(w) - j - 1] for j in range(lags)])
    y_next = y[lags:]
    rows.append({"setup": f"leak-free: previous {lags} windows -> next window has a share",
                 **_fit_score(past, y_next, train_frac, seed),
                 "positive_rate": float(y_next.mean())})
    return pd.DataFrame(rows)
