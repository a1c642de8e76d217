"""Can the SHA-256 state after round r predict whether the final hash is a share?

Data: ``J`` jobs (real-looking random headers, :func:`asiclab.tpf.engine.random_prefixes`) x
``N`` consecutive nonces; label: the final hash meets a target met with probability ``p``
(e.g. 1/64); features: the 256 bits of the 8-word state after global round ``r``
(:func:`asiclab.tpf.engine.states_after`).

Per round, two classifiers (logistic regression, histogram gradient boosting) are trained on
jobs held apart from the test jobs; the held-out ROC AUC gets a DeLong 95 % CI and a one-sided
test against 0.5, the accuracy an exact binomial test against the majority rate. The mutual
information of each bit with the label is tested with a max-statistic permutation null
(Westfall & Young 1993), which controls the family-wise error over the 256 bits. A round is
"information present" when any of these rejects after Holm correction over rounds.

References
----------
DeLong, DeLong & Clarke-Pearson (1988), Biometrics 44:837, doi:10.2307/2531595; the fast
midrank algorithm of Sun & Xu (2014), IEEE Signal Process. Lett. 21:1389,
doi:10.1109/LSP.2014.2337313. Westfall & Young (1993), "Resampling-Based Multiple Testing",
Wiley, ISBN 978-0-471-55761-6. Hanley & McNeil (1982), Radiology 143:29,
doi:10.1148/radiology.143.1.7063747 (AUC variance under the null, used for the power).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from threadpoolctl import threadpool_limits

from asiclab import AsiclabError
from asiclab.tpf import engine as E

__all__ = [
    "PredictError",
    "RoundData",
    "SweepResult",
    "auc_delong",
    "bits_of",
    "evaluate_features",
    "make_jobs",
    "min_detectable_auc_excess",
    "mutual_information_bits",
    "round_data",
    "sweep_rounds",
]

MODELS = ("logistic", "hist_gb")


class PredictError(AsiclabError):
    """Bad input to the predictive test (too few positives, mismatched arrays)."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class RoundData:
    """Labels and job membership of a (job x nonce) sample; states are made per round.

    Attributes
    ----------
    jobs : list of Job
        The jobs.
    nonces : numpy.ndarray
        Nonces hashed in every job [uint32].
    label : numpy.ndarray
        ``(J * N,)`` bool, the final hash meets ``target``.
    group : numpy.ndarray
        ``(J * N,)`` job index of each sample.
    target : int
        The target.
    p : float
        Its success probability for a uniformly random hash.
    """

    jobs: list[E.Job]
    nonces: np.ndarray
    label: np.ndarray
    group: np.ndarray
    target: int
    p: float


def make_jobs(n_jobs: int, seed: int) -> list[E.Job]:
    """``n_jobs`` real-looking random jobs (header prefixes from ``seed``)."""
    return [E.Job.from_prefix(pre) for pre in E.random_prefixes(n_jobs, seed=seed)]


def round_data(n_jobs: int, n_nonces: int, p: float, seed: int = 0) -> RoundData:
    """Jobs, nonces ``0..n_nonces-1`` and the label "hash meets the target of probability p"."""
    if n_jobs < 2 or n_nonces < 1:
        raise PredictError("need at least 2 jobs (train and test jobs are kept apart)")
    jobs = make_jobs(n_jobs, seed)
    nonces = np.arange(n_nonces, dtype=np.uint32)
    target = E.target_from_probability(p)
    label = np.concatenate([E.meets_target(E.final_hash(j, nonces), target) for j in jobs])
    group = np.repeat(np.arange(n_jobs), n_nonces)
    return RoundData(jobs, nonces, label, group, target, float(p))


def bits_of(states: np.ndarray) -> np.ndarray:
    """The 256 bits of 8-word states: ``(n, 8)`` uint32 -> ``(n, 256)`` uint8, MSB of a first."""
    s = np.ascontiguousarray(states, dtype=np.uint32)
    return np.unpackbits(s.astype(">u4").view(np.uint8).reshape(s.shape[0], -1), axis=1)


def state_bits(data: RoundData, r: int) -> np.ndarray:
    """``(J * N, 256)`` bits of the state after global round ``r`` of every sample."""
    return np.concatenate([bits_of(E.states_after(j, data.nonces, [r])[:, 0]) for j in data.jobs])


# --------------------------------------------------------------------------- statistics


def auc_delong(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """ROC AUC and its DeLong standard error (fast midrank algorithm of Sun & Xu 2014).

    Parameters
    ----------
    y : array of bool
        Labels.
    score : array of float
        Scores (higher = more likely positive).

    Returns
    -------
    (float, float)
        AUC [1] and its standard error [1].
    """
    y = np.asarray(y, dtype=bool)
    s = np.asarray(score, dtype=float)
    x, z = s[y], s[~y]
    m, n = x.size, z.size
    if m < 2 or n < 2:
        raise PredictError(f"AUC needs >= 2 positives and negatives, got {m} and {n}")
    r_all = stats.rankdata(np.concatenate([x, z]))
    rx, rz = stats.rankdata(x), stats.rankdata(z)
    v10 = (r_all[:m] - rx) / n
    v01 = 1.0 - (r_all[m:] - rz) / m
    auc = float(v10.mean())
    var = v10.var(ddof=1) / m + v01.var(ddof=1) / n
    return auc, float(math.sqrt(max(var, 0.0)))


def min_detectable_auc_excess(n_pos: int, n_neg: int, alpha: float = 0.05,
                              power: float = 0.8) -> float:
    """Smallest AUC - 0.5 a one-sided level-``alpha`` test detects with ``power``.

    Uses the null variance of the Mann-Whitney AUC, ``(n_pos + n_neg + 1) / (12 n_pos n_neg)``
    (Hanley & McNeil 1982).
    """
    se0 = math.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg))
    return float((stats.norm.ppf(1 - alpha) + stats.norm.ppf(power)) * se0)


def _mi_from_counts(n11: np.ndarray, n1b: np.ndarray, n1y: float, n: int) -> np.ndarray:
    """Plug-in mutual information [bit] of binary pairs from counts (vectorised)."""
    n10 = n1b - n11
    n01 = n1y - n11
    n00 = n - n1b - n01
    out = np.zeros(np.broadcast(n11, n1b).shape)
    for nxy, nx, ny in ((n11, n1b, n1y), (n10, n1b, n - n1y), (n01, n - n1b, n1y),
                        (n00, n - n1b, n - n1y)):
        with np.errstate(divide="ignore", invalid="ignore"):
            term = nxy / n * np.log2(nxy * n / (nx * ny))
        out += np.where(nxy > 0, term, 0.0)
    return out


def mutual_information_bits(bits: np.ndarray, y: np.ndarray, *, n_perm: int = 99,
                            seed: int = 0) -> dict[str, np.ndarray]:
    """Mutual information between each bit and the label, with a permutation null.

    Parameters
    ----------
    bits : array (n, k) of 0/1
        Features.
    y : array (n,) of bool
        Labels.
    n_perm : int
        Label permutations for the max-statistic null (0: only the G-test).
    seed : int
        Seed of the permutations.

    Returns
    -------
    dict
        ``mi`` [bit] per feature; ``p_g`` G-test p-values (``2 n ln2 MI ~ chi2(1)``);
        ``p_maxT`` family-wise adjusted permutation p-values (max statistic over features);
        ``mi_null_max`` the permutation maxima [bit].
    """
    b = np.asarray(bits, dtype=np.float32)
    yy = np.asarray(y, dtype=bool)
    n = b.shape[0]
    if yy.shape != (n,):
        raise PredictError("bits and labels have different lengths")
    n1b = b.sum(axis=0).astype(float)
    n1y = float(yy.sum())
    mi = _mi_from_counts((b.T @ yy.astype(np.float32)).astype(float), n1b, n1y, n)
    p_g = stats.chi2.sf(2 * n * math.log(2) * mi, 1)
    out = {"mi": mi, "p_g": p_g}
    if n_perm > 0:
        rng = np.random.default_rng(seed)
        perms = np.stack([rng.permutation(yy) for _ in range(n_perm)], axis=1)
        n11 = (b.T @ perms.astype(np.float32)).astype(float)  # (k, n_perm)
        null = _mi_from_counts(n11, n1b[:, None], n1y, n).max(axis=0)
        out["mi_null_max"] = null
        out["p_maxT"] = (1 + (null[None, :] >= mi[:, None] - 1e-15).sum(axis=1)) / (n_perm + 1)
    return out


def _model(name: str, seed: int, hgb_iter: int = 50) -> Any:
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=1.0, max_iter=300)
    if name == "hist_gb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=hgb_iter, learning_rate=0.1,
                                              early_stopping=False, random_state=seed)
    raise PredictError(f"model: expected one of {MODELS}, got {name!r}")


def job_split(group: np.ndarray, test_fraction: float = 0.3, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    """Boolean train/test masks with whole jobs on one side (test jobs held apart)."""
    jobs = np.unique(group)
    rng = np.random.default_rng(seed)
    n_test = min(len(jobs) - 1, max(1, round(test_fraction * len(jobs))))
    test_jobs = rng.choice(jobs, size=n_test, replace=False)
    test = np.isin(group, test_jobs)
    return ~test, test


def evaluate_features(x: np.ndarray, y: np.ndarray, group: np.ndarray, *,
                      models: tuple[str, ...] = MODELS, test_fraction: float = 0.3,
                      seed: int = 0, alpha: float = 0.05, hgb_iter: int = 50
                      ) -> tuple[pd.DataFrame, dict]:
    """Train each model on the training jobs and score it on the held-out jobs.

    Returns
    -------
    (pandas.DataFrame, dict)
        One row per model: ``auc``, ``auc_se``, ``auc_lo``, ``auc_hi`` (95 % DeLong CI),
        ``p_auc`` (one-sided, AUC > 0.5), ``accuracy``, ``majority_rate``, ``p_accuracy``
        (exact binomial, accuracy > majority rate), ``n_test``, ``n_pos_test``,
        ``min_detectable_excess`` (AUC excess detectable with power 0.8 at ``alpha``).
        The dict holds the held-out scores per model, and ``test`` (the test mask).
    """
    y = np.asarray(y, dtype=bool)
    train, test = job_split(group, test_fraction, seed)
    if y[train].sum() < 2 or y[test].sum() < 2:
        raise PredictError("too few positives in the train or test jobs: raise N or p")
    rows, scores = [], {"test": test}
    yt = y[test]
    n_pos = int(yt.sum())
    n_neg = int(yt.size - n_pos)
    majority = max(n_pos, n_neg) / yt.size
    mde = min_detectable_auc_excess(n_pos, n_neg, alpha)
    xs = np.asarray(x, dtype=np.float32)
    for name in models:
        model = _model(name, seed, hgb_iter)
        # one BLAS/OpenMP thread: on a shared 2-core machine OpenMP contention costs ~5x
        with threadpool_limits(1):
            model.fit(xs[train], y[train])
            score = model.predict_proba(xs[test])[:, 1]
            pred = model.predict(xs[test]).astype(bool)
        auc, se = auc_delong(yt, score)
        correct = int((pred == yt).sum())
        p_acc = stats.binomtest(correct, yt.size, majority, alternative="greater").pvalue
        rows.append({
            "model": name, "auc": auc, "auc_se": se, "auc_lo": auc - 1.96 * se,
            "auc_hi": auc + 1.96 * se,
            "p_auc": float(stats.norm.sf((auc - 0.5) / se)) if se > 0 else
            (0.0 if auc > 0.5 else 1.0),
            "accuracy": correct / yt.size, "majority_rate": majority,
            "p_accuracy": float(p_acc), "n_test": int(yt.size), "n_pos_test": n_pos,
            "min_detectable_excess": mde,
        })
        scores[name] = score
    return pd.DataFrame(rows), scores


# --------------------------------------------------------------------------- the sweep


@dataclass
class SweepResult:
    """Per-round results of :func:`sweep_rounds`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (round, model), with the columns of :func:`evaluate_features` plus
        ``round``, ``label`` (e.g. ``"SHA#1 r5"``), ``p_auc_holm`` and ``p_mi_maxT``.
    verdicts : pandas.DataFrame
        One row per round: ``round``, ``label``, ``best_auc``, ``best_auc_lo``,
        ``min_detectable_excess``, ``max_mi_bits``, ``verdict``.
    mi : numpy.ndarray
        ``(256, n_rounds)`` mutual information [bit] of each state bit with the label.
    rounds : list of int
    scores : dict
        ``{round: {model: held-out scores, "test": mask}}``.
    params : dict
    """

    table: pd.DataFrame
    verdicts: pd.DataFrame
    mi: np.ndarray
    rounds: list[int]
    scores: dict[int, dict] = field(repr=False)
    params: dict[str, Any]

    def first_informative_round(self) -> int | None:
        """Smallest round whose verdict is "information present" (``None`` if none)."""
        hit = self.verdicts[self.verdicts["verdict"] == "information present"]
        return int(hit["round"].min()) if len(hit) else None


def sweep_rounds(data: RoundData, rounds: list[int], *, models: tuple[str, ...] = MODELS,
                 n_perm: int = 99, alpha: float = 0.05, seed: int = 0,
                 test_fraction: float = 0.3, hgb_iter: int = 50, progress: bool = False
                 ) -> SweepResult:
    """Evaluate every model and the per-bit mutual information at each round.

    Verdict per round: "information present" when the Holm-corrected (over rounds x models)
    AUC test or the max-statistic MI test (Holm over rounds) rejects at ``alpha``; otherwise
    "no detectable information", with the smallest detectable AUC excess stated.
    """
    from tqdm.auto import tqdm

    rows, mi_cols, p_mi, scores = [], [], [], {}
    for r in tqdm(list(rounds), desc="rounds", disable=not progress):
        bits = state_bits(data, r)
        t, sc = evaluate_features(bits, data.label, data.group, models=models,
                                  test_fraction=test_fraction, seed=seed, alpha=alpha,
                                  hgb_iter=hgb_iter)
        t.insert(0, "label", E.round_label(r))
        t.insert(0, "round", r)
        rows.append(t)
        scores[r] = sc
        mi = mutual_information_bits(bits, data.label, n_perm=n_perm, seed=seed + r)
        mi_cols.append(mi["mi"])
        p_mi.append(float(mi["p_maxT"].min()) if n_perm else float(
            min(1.0, mi["p_g"].min() * bits.shape[1])))
    table = pd.concat(rows, ignore_index=True)
    table["p_auc_holm"] = multipletests(table["p_auc"], alpha=alpha, method="holm")[1]
    p_mi_holm = multipletests(p_mi, alpha=alpha, method="holm")[1]
    table["p_mi_maxT"] = table["round"].map(dict(zip(rounds, p_mi, strict=True)))
    ver = []
    for i, r in enumerate(rounds):
        sub = table[table["round"] == r]
        best = sub.loc[sub["auc"].idxmax()]
        present = bool((sub["p_auc_holm"] < alpha).any() or p_mi_holm[i] < alpha)
        ver.append({
            "round": r, "label": E.round_label(r), "best_model": best["model"],
            "best_auc": float(best["auc"]), "best_auc_lo": float(best["auc_lo"]),
            "best_auc_hi": float(best["auc_hi"]),
            "min_detectable_excess": float(best["min_detectable_excess"]),
            "max_mi_bits": float(mi_cols[i].max()), "p_mi_holm": float(p_mi_holm[i]),
            "verdict": "information present" if present else "no detectable information",
        })
    params = {"n_jobs": len(data.jobs), "n_nonces": int(data.nonces.size), "p": data.p,
              "n_perm": n_perm, "alpha": alpha, "models": list(models), "seed": seed}
    return SweepResult(table, pd.DataFrame(ver), np.stack(mi_cols, axis=1), list(rounds),
                       scores, params)


def planted_label(bits: np.ndarray, bit: int, flip: float, seed: int = 0) -> np.ndarray:
    """A label that copies one feature bit, flipped with probability ``flip`` (a known leak)."""
    rng = np.random.default_rng(seed)
    y = np.asarray(bits[:, bit], dtype=bool)
    return y ^ (rng.random(y.size) < flip)
