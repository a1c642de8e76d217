"""Energy per valid share of abort policies, and a device's energy per hash from telemetry.

Model (issue 10 §3): every SHA-256 round costs one unit. A policy looks at the state after
global round ``k`` and continues a nonce with probability ``q`` overall (randomly, or when a
classifier's score is above a threshold), otherwise aborts it. Rounds per nonce:
``k + q (n - k)``, with ``n`` the rounds of the full nonce-dependent computation
(:data:`asiclab.tpf.engine.N_ROUNDS` = 128, the midstate miner). Shares found per nonce:
``p * recall``. Energy per valid share relative to no abort:

    ratio = (k + q (n - k)) / (n * recall)

so a policy that keeps no share (``recall = 0``, e.g. "abort everything after 5 of 64 rounds")
has infinite energy per share, whatever fraction of rounds it saves. The paper's "92.19 %" is
``1 - 5/64``: the fraction of rounds not executed, not an energy per share.

References
----------
Wilson, E. B. (1927), J. Am. Stat. Assoc. 22:209, doi:10.1080/01621459.1927.10502953
(binomial CI of the recall).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from statsmodels.stats.proportion import proportion_confint

from asiclab import AsiclabError
from asiclab.tpf import engine as E

__all__ = [
    "LV06_NOMINAL",
    "EnergyError",
    "accounting_table",
    "best_policy",
    "efficiency_from_telemetry",
    "frontier",
    "joules_per_share",
    "paper_saving",
]

#: Nominal LV06 figures as quoted in issue 10 (~500 GH/s at ~13 W); not a measurement.
LV06_NOMINAL: dict[str, Any] = {"hashrate_GHs": 500.0, "power_W": 13.0,
                                "source": "nominal LV06 figures quoted in issue 10"}


class EnergyError(AsiclabError):
    """Bad input to the energy accounting (no telemetry, bad rounds or scores)."""


def paper_saving(k: int = 5, n: int = 64) -> float:
    """Fraction of rounds not executed when every hash stops after ``k`` of ``n``: ``1 - k/n``."""
    if not 0 <= k <= n:
        raise EnergyError(f"need 0 <= k <= n, got k={k}, n={n}")
    return 1.0 - k / n


def accounting_table(job: E.Job, nonces: Any, target: int) -> pd.DataFrame:
    """Rounds per nonce of each way of computing SHA256d, counted by the engine.

    Columns: ``mode``, ``rounds_per_nonce`` (asymptotic, once-per-job work excluded),
    ``rounds_per_nonce_batch`` (this batch, once-per-job work included), ``saving_vs_naive``,
    ``saving_vs_midstate``, ``all_correct`` (every hash equals hashlib's).
    """
    rows = []
    for mode in E.MODES:
        c = E.count_rounds(job, nonces, mode, target=target)
        rows.append({"mode": mode, "rounds_per_nonce": c.per_nonce_asymptotic,
                     "rounds_per_nonce_batch": c.per_nonce, "total_rounds": c.total_rounds,
                     "n_nonces": c.n_nonces, "all_correct": c.all_correct})
    t = pd.DataFrame(rows)
    naive = float(t.loc[t["mode"] == "naive", "rounds_per_nonce"].iloc[0])
    mid = float(t.loc[t["mode"] == "midstate", "rounds_per_nonce"].iloc[0])
    t["saving_vs_naive"] = 1 - t["rounds_per_nonce"] / naive
    t["saving_vs_midstate"] = 1 - t["rounds_per_nonce"] / mid
    return t


def _ratio(k: float, q: np.ndarray, recall: np.ndarray, n: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(recall > 0, (k + q * (n - k)) / (n * recall), math.inf)


def frontier(score: np.ndarray, y: np.ndarray, *, k: int, n: int = E.N_ROUNDS,
             accounting: pd.DataFrame | None = None, n_thresholds: int = 40,
             paper_k: int = 5) -> pd.DataFrame:
    """Energy per valid share against the fraction of shares kept, for every policy.

    Parameters
    ----------
    score : array of float
        A classifier's held-out scores on the state after round ``k``.
    y : array of bool
        The held-out labels (share or not).
    k : int
        Global round at which the policy decides [round].
    n : int
        Rounds of the full computation (no abort) [round].
    accounting : pandas.DataFrame, optional
        :func:`accounting_table`, for the legitimate early-outs (relative to ``"midstate"``).
    n_thresholds : int
        Classifier thresholds (score quantiles).
    paper_k : int
        Round of the paper's "abort everything" policy.

    Returns
    -------
    pandas.DataFrame
        ``policy``, ``threshold``, ``q`` (fraction continued), ``recall`` (fraction of shares
        kept) with ``recall_lo``/``recall_hi`` (Wilson 95 %), ``rounds_per_nonce``,
        ``energy_ratio`` with ``energy_ratio_lo``/``energy_ratio_hi`` (from the recall CI).
    """
    y = np.asarray(y, dtype=bool)
    s = np.asarray(score, dtype=float)
    if s.shape != y.shape or y.sum() < 1:
        raise EnergyError("score and labels must have the same length, with >= 1 share")
    n_pos = int(y.sum())
    p = float(y.mean())
    rows: list[dict[str, Any]] = []

    def add(policy: str, thr: float, q: float, kept: int | float, kk: float) -> None:
        rec = kept / n_pos
        if isinstance(kept, int | np.integer):
            lo, hi = proportion_confint(int(kept), n_pos, alpha=0.05, method="wilson")
        else:
            lo = hi = rec
        r = float(_ratio(kk, np.array(q), np.array(rec), n))
        rows.append({"policy": policy, "threshold": thr, "k": kk, "q": q, "recall": rec,
                     "recall_lo": lo, "recall_hi": hi, "rounds_per_nonce": kk + q * (n - kk),
                     "energy_ratio": r,
                     "energy_ratio_lo": float(_ratio(kk, np.array(q), np.array(hi), n)),
                     "energy_ratio_hi": float(_ratio(kk, np.array(q), np.array(lo), n))})

    add("no abort", math.nan, 1.0, n_pos, 0)
    add(f"paper: abort all at round {paper_k}", math.nan, 0.0, 0, paper_k)
    for q in np.linspace(0.05, 1.0, 20):
        add("random abort", math.nan, float(q), float(q) * n_pos, k)
    thresholds = np.unique(np.quantile(s, np.linspace(0.0, 0.99, n_thresholds)))
    for thr in thresholds:
        cont = s >= thr
        add(f"classifier at round {k}", float(thr), float(cont.mean()), int((cont & y).sum()),
            k)
    add(f"oracle at round {k}", math.nan, p, n_pos, k)
    add("oracle (knows before round 1)", math.nan, p, n_pos, 0)
    if accounting is not None:
        mid = float(accounting.loc[accounting["mode"] == "midstate", "rounds_per_nonce"].iloc[0])
        for row in accounting.itertuples():
            rows.append({"policy": f"legitimate: {row.mode}", "threshold": math.nan, "k": n,
                         "q": 1.0, "recall": 1.0, "recall_lo": 1.0, "recall_hi": 1.0,
                         "rounds_per_nonce": row.rounds_per_nonce * n / mid,
                         "energy_ratio": row.rounds_per_nonce / mid,
                         "energy_ratio_lo": row.rounds_per_nonce / mid,
                         "energy_ratio_hi": row.rounds_per_nonce / mid})
    return pd.DataFrame(rows)


def best_policy(table: pd.DataFrame, prefix: str = "classifier") -> pd.Series:
    """The row of lowest finite energy ratio among policies whose name starts with ``prefix``."""
    sub = table[table["policy"].str.startswith(prefix) & np.isfinite(table["energy_ratio"])]
    if not len(sub):
        raise EnergyError(f"no policy {prefix!r} keeps any share")
    return sub.loc[sub["energy_ratio"].idxmin()]


def efficiency_from_telemetry(ds: xr.Dataset, *, skip_s: float = 60.0, block: int = 20
                              ) -> dict[str, Any]:
    """Hashrate per watt of a capture's telemetry (reported hashrate / power).

    Parameters
    ----------
    ds : xarray.Dataset
        A capture with ``hashrate`` [GH/s] and ``power`` [W] per telemetry sample.
    skip_s : float
        Samples in the first ``skip_s`` seconds are left out (the nonce-counting hashrate
        estimate fills its window) [s].
    block : int
        Samples per batch for the batch-means standard error (telemetry is autocorrelated).

    Returns
    -------
    dict
        ``GH_per_W``, its ``se``, ``J_per_TH`` (= 1000 / GH_per_W), ``MH_per_W``,
        ``hashrate_GHs``, ``power_W``, ``n_samples``, ``source_kind``.
    """
    for v in ("hashrate", "power"):
        if v not in ds:
            raise EnergyError(f"capture has no telemetry variable {v!r}")
    h = np.asarray(ds["hashrate"].values, dtype=float)
    w = np.asarray(ds["power"].values, dtype=float)
    if h.size < 2:
        raise EnergyError(f"capture has {h.size} telemetry samples: no hashrate/power to use")
    t = np.asarray(ds["tel_t_mono_ns"].values, dtype=float) * 1e-9 if "tel_t_mono_ns" in ds \
        else np.arange(h.size, dtype=float) * 1e9
    ok = np.isfinite(h) & np.isfinite(w) & (w > 0) & (h > 0) & (t - np.nanmin(t) >= skip_s)
    h, w = h[ok], w[ok]
    if h.size < 2:
        raise EnergyError("too few telemetry samples with hashrate and power")
    eff = h.mean() / w.mean()
    nb = h.size // block
    if nb >= 2:
        batches = [h[i * block:(i + 1) * block].mean() / w[i * block:(i + 1) * block].mean()
                   for i in range(nb)]
        se = float(np.std(batches, ddof=1) / math.sqrt(nb))
    else:
        se = float("nan")
    return {"GH_per_W": float(eff), "se": se, "J_per_TH": 1000.0 / float(eff),
            "MH_per_W": 1000.0 * float(eff), "hashrate_GHs": float(h.mean()),
            "power_W": float(w.mean()), "n_samples": int(h.size),
            "source_kind": ds.attrs.get("source_kind", "unknown")}


def joules_per_share(J_per_TH: float, difficulty: float, energy_ratio: float = 1.0) -> float:
    """Energy of one share of ``difficulty`` [J]: ``difficulty * 2**32`` hashes at ``J_per_TH``."""
    return float(J_per_TH * 1e-12 * difficulty * 2**32 * energy_ratio)
