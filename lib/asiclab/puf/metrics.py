r"""PUF metrics as pure functions (binary and continuous responses).

Binary metrics (Maiti, Gunreddy & Schaumont 2013, DOI 10.1007/978-1-4614-1362-2_11), for ``k``
devices, ``n``-bit responses :math:`R_i` and ``m`` repeated measurements :math:`R_{i,t}`,
all in percent, with their ideal values (:data:`IDEAL`):

* uniformity of device i: :math:`U_i = \frac{100}{n} \sum_l r_{i,l}` (ideal 50 %);
* bit-aliasing of bit l: :math:`B_l = \frac{100}{k} \sum_i r_{i,l}` (ideal 50 %);
* uniqueness: :math:`\frac{2}{k(k-1)} \sum_{i<j} \frac{HD(R_i, R_j)}{n} \cdot 100`
  (inter-device Hamming distance, ideal 50 %);
* reliability of device i: :math:`100 - \frac{1}{m} \sum_t \frac{HD(R_i, R_{i,t})}{n} \cdot 100`
  (100 % minus the intra-device Hamming distance, ideal 100 %).

Continuous responses: Euclidean distances between response vectors (:func:`distances`); the
genuine (same device, *intra*) and impostor (different device, *inter*) distance
distributions; FAR, FRR and the equal error rate (:func:`eer`) with a bootstrap CI;
identification accuracy with an exact (Clopper-Pearson) binomial CI and a one-sided binomial
test against chance 1/M; a permutation two-sample test of "same distribution"; and the
*witness* of distinguishability: a response component whose probability differs between two
devices, with its two probabilities and their confidence.

"Continuous uniqueness" (:func:`continuous_uniqueness`) is
:math:`(\bar d_{inter} - \bar d_{intra}) / \bar d_{inter}`: 0 when the devices are identical (the
distance to another device is no larger than to oneself), towards 1 when a device's repeated
responses are much closer to each other than to any other device. Beside it the decidability
index of Daugman (2003), :math:`d' = (\bar d_{inter} - \bar d_{intra}) /
\sqrt{(s^2_{inter} + s^2_{intra}) / 2}`.

References
----------
A. Maiti, V. Gunreddy, P. Schaumont (2013), "A Systematic Method to Evaluate and Compare the
Performance of Physical Unclonable Functions", in *Embedded Systems Design with FPGAs*, Springer,
245-267, DOI 10.1007/978-1-4614-1362-2_11.
J. Daugman (2003), "The importance of being random: statistical principles of iris
recognition", Pattern Recognition 36, 279-291, DOI 10.1016/S0031-3203(02)00030-4.
C. J. Clopper, E. S. Pearson (1934), Biometrika 26, 404-413, DOI 10.1093/biomet/26.4.404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from asiclab.puf._errors import PufInputError

__all__ = [
    "IDEAL",
    "IdentificationResult",
    "Witness",
    "bit_aliasing",
    "clopper_pearson",
    "continuous_uniqueness",
    "decidability",
    "dispersion_factor",
    "distances",
    "eer",
    "eer_bootstrap",
    "far_frr",
    "hamming_fraction",
    "identification",
    "permutation_test",
    "reliability",
    "uniformity",
    "uniqueness",
    "witness",
]

#: Ideal values of the Maiti et al. (2013) metrics [%].
IDEAL: dict[str, float] = {"uniformity": 50.0, "bit_aliasing": 50.0, "uniqueness": 50.0,
                           "reliability": 100.0}


def _bits(x: Any, ndim: int, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != ndim:
        raise PufInputError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if a.size == 0:
        raise PufInputError(f"{name} is empty")
    if not np.isin(a, (0, 1)).all():
        raise PufInputError(f"{name} must hold bits 0/1")
    return a.astype(np.float64)


def hamming_fraction(a: Any, b: Any) -> np.ndarray:
    """Fractional Hamming distance HD(a, b) / n along the last axis [1] (broadcasts)."""
    x = np.asarray(a)
    y = np.asarray(b)
    if x.shape[-1] != y.shape[-1] or x.shape[-1] == 0:
        raise PufInputError(f"responses of different or zero length: {x.shape}, {y.shape}")
    return np.mean(x != y, axis=-1)


def uniformity(bits: Any) -> np.ndarray:
    """Uniformity of each response: percentage of 1 bits [%] (ideal 50 %).

    Parameters
    ----------
    bits : array-like, shape (..., n)
        Binary responses.

    Returns
    -------
    numpy.ndarray, shape (...)
    """
    b = np.asarray(bits)
    _bits(b.reshape(-1, b.shape[-1]) if b.ndim else b, 2, "bits")
    return 100.0 * b.mean(axis=-1)


def bit_aliasing(bits: Any) -> np.ndarray:
    """Bit-aliasing of each bit position: percentage of devices giving 1 [%] (ideal 50 %).

    Parameters
    ----------
    bits : array-like, shape (k, n)
        One reference response per device.

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    return 100.0 * _bits(bits, 2, "bits").mean(axis=0)


def uniqueness(bits: Any) -> float:
    """Mean pairwise inter-device fractional Hamming distance [%] (ideal 50 %).

    Parameters
    ----------
    bits : array-like, shape (k, n)
        One reference response per device, k >= 2.
    """
    b = _bits(bits, 2, "bits")
    k = b.shape[0]
    if k < 2:
        raise PufInputError("uniqueness needs at least two devices")
    i, j = np.triu_indices(k, 1)
    return float(100.0 * np.mean(hamming_fraction(b[i], b[j])))


def reliability(reference: Any, repeats: Any) -> np.ndarray:
    """Reliability of each device: 100 % minus the mean intra-device HD [%] (ideal 100 %).

    Parameters
    ----------
    reference : array-like, shape (k, n)
        Reference (enrollment) response of each device.
    repeats : array-like, shape (k, m, n)
        ``m`` later responses of each device to the same challenge.

    Returns
    -------
    numpy.ndarray, shape (k,)
    """
    r = _bits(reference, 2, "reference")
    x = _bits(repeats, 3, "repeats")
    if x.shape[0] != r.shape[0] or x.shape[2] != r.shape[1]:
        raise PufInputError(f"repeats {x.shape} do not match reference {r.shape}")
    return 100.0 - 100.0 * hamming_fraction(r[:, None, :], x).mean(axis=1)


# ----------------------------------------------------------------------------- continuous


def distances(a: Any, b: Any) -> np.ndarray:
    """Euclidean distances between the rows of ``a`` and ``b``, divided by sqrt(dim).

    Parameters
    ----------
    a : array-like, shape (p, d)
    b : array-like, shape (q, d)

    Returns
    -------
    numpy.ndarray, shape (p, q)
        RMS difference per component (units of the response; for Anscombe-transformed counts
        about sqrt(2) between two independent draws of one Poisson law).
    """
    x = np.asarray(a, float)
    y = np.asarray(b, float)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or x.shape[1] == 0:
        raise PufInputError(f"distances need (p, d) and (q, d) arrays, got {x.shape}, {y.shape}")
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.sqrt(np.maximum(d2, 0.0) / x.shape[1])


def _scores(genuine: Any, impostor: Any) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(genuine, float).ravel()
    i = np.asarray(impostor, float).ravel()
    if g.size == 0 or i.size == 0:
        raise PufInputError("EER needs at least one genuine and one impostor distance")
    if not (np.isfinite(g).all() and np.isfinite(i).all()):
        raise PufInputError("distances must be finite")
    return np.sort(g), np.sort(i)


def far_frr(genuine: Any, impostor: Any, thresholds: Any | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-accept and false-reject rates of the rule "accept when distance <= t".

    Parameters
    ----------
    genuine, impostor : array-like
        Distances of same-device and different-device comparisons.
    thresholds : array-like, optional
        Thresholds t; default ``-inf`` and every distinct distance.

    Returns
    -------
    (thresholds, far, frr) : numpy.ndarray
        FAR(t) = P(impostor <= t), FRR(t) = P(genuine > t), both in [0, 1].
    """
    g, i = _scores(genuine, impostor)
    t = (np.concatenate([[-np.inf], np.unique(np.concatenate([g, i]))])
         if thresholds is None else np.asarray(thresholds, float))
    far = np.searchsorted(i, t, side="right") / i.size
    frr = 1.0 - np.searchsorted(g, t, side="right") / g.size
    return t, far, frr


def eer(genuine: Any, impostor: Any) -> float:
    """Equal error rate [1]: (FAR + FRR) / 2 at the threshold where |FAR - FRR| is smallest.

    0 for perfectly separated distributions, about 0.5 for identical ones.
    """
    _, far, frr = far_frr(genuine, impostor)
    k = int(np.argmin(np.abs(far - frr)))
    return float(0.5 * (far[k] + frr[k]))


def eer_bootstrap(genuine: np.ndarray, impostor: np.ndarray, *, n_boot: int = 1000,
                  level: float = 0.95, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """EER with a percentile bootstrap CI, resampling probes.

    Parameters
    ----------
    genuine : numpy.ndarray, shape (p,)
        Distance of each probe to its own device's template.
    impostor : numpy.ndarray, shape (p, M-1)
        Distances of each probe to the other devices' templates (a probe's row is resampled
        as a whole, keeping its dependence).
    n_boot : int
        Bootstrap resamples.
    level : float
        CI level.
    seed : int
        Resampling seed.

    Returns
    -------
    (eer, (low, high))
    """
    g = np.asarray(genuine, float).ravel()
    imp = np.asarray(impostor, float)
    if imp.ndim != 2 or imp.shape[0] != g.size:
        raise PufInputError("impostor must be (probes, M-1) with one row per genuine probe")
    if n_boot < 1 or not 0 < level < 1:
        raise PufInputError("n_boot >= 1 and 0 < level < 1 required")
    est = eer(g, imp)
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for b in range(n_boot):
        k = rng.integers(0, g.size, g.size)
        boots[b] = eer(g[k], imp[k])
    a = (1.0 - level) / 2.0
    return est, (float(np.quantile(boots, a)), float(np.quantile(boots, 1.0 - a)))


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial (Clopper-Pearson) CI of a proportion k/n.

    References
    ----------
    Clopper & Pearson (1934), DOI 10.1093/biomet/26.4.404.
    """
    from scipy import stats

    if n < 1 or not 0 <= k <= n:
        raise PufInputError(f"need 0 <= k <= n, n >= 1 (got k={k}, n={n})")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class IdentificationResult:
    """Identification of probes among M enrolled devices.

    Attributes
    ----------
    accuracy : float
        Fraction of probes assigned to their own device [1].
    ci : (float, float)
        Exact 95 % Clopper-Pearson CI [1].
    chance : float
        1 / M [1].
    p_value : float
        One-sided exact binomial test of accuracy > chance.
    n_correct, n_probes, n_devices : int
    """

    accuracy: float
    ci: tuple[float, float]
    chance: float
    p_value: float
    n_correct: int
    n_probes: int
    n_devices: int


def identification(dist: Any, true_index: Any, *, level: float = 0.95,
                   seed: int = 0) -> IdentificationResult:
    """Nearest-template identification with an exact binomial CI against chance 1/M.

    Parameters
    ----------
    dist : array-like, shape (p, M)
        Distance of each probe to each device's template.
    true_index : array-like of int, shape (p,)
        The probe's own device (column).
    level : float
        CI level.
    seed : int
        Seed of the random tie-break (ties are broken at random, so identical responses score
        chance, not the first device).
    """
    from scipy import stats

    d = np.asarray(dist, float)
    y = np.asarray(true_index, np.int64)
    if d.ndim != 2 or d.shape[0] != y.size or d.shape[1] < 2:
        raise PufInputError("dist must be (probes, M >= 2) with one true index per probe")
    rng = np.random.default_rng(seed)
    jitter = rng.random(d.shape)
    dmin = d.min(axis=1, keepdims=True)
    pick = np.argmax(np.where(np.isclose(d, dmin, rtol=1e-12, atol=1e-12), jitter, -1.0),
                     axis=1)
    k = int((pick == y).sum())
    n = int(y.size)
    chance = 1.0 / d.shape[1]
    p = float(stats.binomtest(k, n, chance, alternative="greater").pvalue)
    return IdentificationResult(k / n, clopper_pearson(k, n, level), chance, p, k, n,
                                int(d.shape[1]))


def continuous_uniqueness(intra: Any, inter: Any) -> float:
    """(mean inter - mean intra) / mean inter [1]: 0 for identical devices (see module doc)."""
    a = np.asarray(intra, float).ravel()
    b = np.asarray(inter, float).ravel()
    if a.size == 0 or b.size == 0:
        raise PufInputError("need intra and inter distances")
    mb = b.mean()
    return float((mb - a.mean()) / mb) if mb > 0 else 0.0


def decidability(intra: Any, inter: Any) -> float:
    """Daugman's decidability d' of intra vs inter distances [1].

    References
    ----------
    Daugman (2003), DOI 10.1016/S0031-3203(02)00030-4.
    """
    a = np.asarray(intra, float).ravel()
    b = np.asarray(inter, float).ravel()
    if a.size < 2 or b.size < 2:
        raise PufInputError("decidability needs at least two intra and two inter distances")
    s = np.sqrt(0.5 * (a.var(ddof=1) + b.var(ddof=1)))
    return float((b.mean() - a.mean()) / s) if s > 0 else 0.0


def permutation_test(a: Any, b: Any, *, n_perm: int = 999, seed: int = 0) -> tuple[float, float]:
    """Two-sample permutation test of "same distribution" for two sets of response vectors.

    Statistic: squared Euclidean distance between the two sample means (per component mean);
    the labels of the captures are permuted (exchangeable under the null). Exact enumeration when
    the number of distinct splits is at most ``n_perm``.

    Parameters
    ----------
    a : array-like, shape (na, d)
    b : array-like, shape (nb, d)
    n_perm : int
        Random permutations (when not enumerated).
    seed : int

    Returns
    -------
    (statistic, p_value)
        p = (1 + #{T_perm >= T_obs}) / (1 + n_perm) (random), or the exact fraction.
    """
    from itertools import combinations
    from math import comb

    x = np.asarray(a, float)
    y = np.asarray(b, float)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise PufInputError("permutation_test needs (na, d) and (nb, d) arrays")
    na, nb = x.shape[0], y.shape[0]
    if na < 1 or nb < 1:
        raise PufInputError("each sample needs at least one response")
    z = np.concatenate([x, y])
    n = na + nb
    tot = z.sum(0)

    def stat(idx_a: np.ndarray) -> np.ndarray:  # idx_a: (P, na) indices of sample a
        sa = z[idx_a].sum(axis=1)
        diff = sa / na - (tot - sa) / nb
        return (diff * diff).mean(axis=-1)

    t_obs = float(stat(np.arange(na)[None, :])[0])
    if comb(n, na) <= n_perm:
        idx = np.array(list(combinations(range(n), na)))
        t = stat(idx)
        return t_obs, float(np.mean(t >= t_obs - 1e-12 * max(t_obs, 1.0)))
    rng = np.random.default_rng(seed)
    idx = np.argsort(rng.random((n_perm, n)), axis=1)[:, :na]
    t = stat(idx)
    return t_obs, float((1 + np.sum(t >= t_obs - 1e-12 * max(t_obs, 1.0))) / (1 + n_perm))


@dataclass(frozen=True)
class Witness:
    """The witness of "distinguishable" for one pair of devices at one challenge.

    The response is "the next event is a valid nonce of core ``core``" (``kind`` "hit") or
    "... a hardware error of core ``core``" (``kind`` "error"); ``p_a``, ``p_b`` are its
    probabilities on the two devices with exact CIs, and ``p_value`` the two-sided Fisher exact
    test of equality on held-out captures (the component was chosen on other captures), on
    effective counts divided by ``dispersion`` (capture-to-capture over-dispersion, >= 1).
    """

    device_a: int
    device_b: int
    kind: str
    core: int
    p_a: float
    p_b: float
    ci_a: tuple[float, float]
    ci_b: tuple[float, float]
    p_value: float
    n_a: int
    n_b: int
    dispersion: float = 1.0

    @property
    def confidence(self) -> float:
        """1 - p of the held-out test [1]."""
        return 1.0 - self.p_value


def witness(select_a: np.ndarray, select_b: np.ndarray, test_a: np.ndarray,
            test_b: np.ndarray, *, device_a: int = 0, device_b: int = 1,
            n_hit_cores: int | None = None, level: float = 0.95,
            dispersion: float = 1.0) -> Witness:
    """Find and test the witness component for two devices.

    The component (core x {hit, error}) with the largest absolute difference of per-event
    probability is chosen on the *selection* counts and its two probabilities are estimated and
    tested on the *test* counts, so the confidence is not inflated by the search.

    Parameters
    ----------
    select_a, select_b, test_a, test_b : numpy.ndarray, shape (n_components,)
        Summed counts per component (e.g. hits of every core then errors of every core) of
        devices a and b, on the selection and on the test captures [1].
    device_a, device_b : int
        Device indices (recorded).
    n_hit_cores : int, optional
        The first ``n_hit_cores`` components are hits, the rest errors (default: all hits).
    level : float
        CI level.
    dispersion : float
        Over-dispersion factor phi >= 1 of the counts (events are not independent when shared
        supply droops stall many cores at once): the CIs and the test use the effective counts
        k / phi out of n / phi (quasi-binomial). 1: independent events.
    """
    from scipy import stats

    if not (np.isfinite(dispersion) and dispersion >= 1.0):
        raise PufInputError(f"dispersion must be >= 1, got {dispersion!r}")
    arrs = [np.asarray(v, np.int64) for v in (select_a, select_b, test_a, test_b)]
    if len({a.shape for a in arrs}) != 1 or arrs[0].ndim != 1:
        raise PufInputError("witness counts must be 1-d arrays of one length")
    sa, sb, ta, tb = arrs
    if sa.sum() == 0 or sb.sum() == 0 or ta.sum() == 0 or tb.sum() == 0:
        raise PufInputError("a device has no events: no witness can be estimated")
    c = int(np.argmax(np.abs(sa / sa.sum() - sb / sb.sum())))
    na, nb = int(ta.sum()), int(tb.sum())
    ka, kb = int(ta[c]), int(tb[c])
    phi = float(dispersion)
    ea, eb = max(1, round(na / phi)), max(1, round(nb / phi))
    fa, fb = min(ea, round(ka / phi)), min(eb, round(kb / phi))
    table = [[fa, ea - fa], [fb, eb - fb]]
    p = float(stats.fisher_exact(table).pvalue) if (fa + fb) > 0 else 1.0
    nh = sa.size if n_hit_cores is None else int(n_hit_cores)
    kind, core = ("hit", c) if c < nh else ("error", c - nh)
    return Witness(device_a, device_b, kind, core, ka / na, kb / nb,
                   clopper_pearson(fa, ea, level), clopper_pearson(fb, eb, level), p, na, nb,
                   phi)


def dispersion_factor(counts: Any, totals: Any) -> float:
    """Pearson over-dispersion factor of binomial counts across repeated captures [1].

    Parameters
    ----------
    counts, totals : sequence of array-like
        Per group (device), the component's count and the total events of each capture.

    Returns
    -------
    float
        max(1, sum of Pearson chi^2 / sum of degrees of freedom); 1 without repeats.
    """
    x2, df = 0.0, 0
    for k, n in zip(counts, totals, strict=True):
        k = np.asarray(k, float)
        n = np.asarray(n, float)
        keep = n > 0
        k, n = k[keep], n[keep]
        if k.size < 2:
            continue
        p = k.sum() / n.sum()
        if p <= 0 or p >= 1:
            continue
        x2 += float(np.sum((k - n * p) ** 2 / (n * p * (1 - p))))
        df += k.size - 1
    return max(1.0, x2 / df) if df else 1.0
