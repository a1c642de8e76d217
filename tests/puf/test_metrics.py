"""PUF metrics against formulas written out here (loops) and against pypuf.metrics 3.2.1."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from asiclab.puf import metrics as m
from asiclab.puf._errors import PufInputError


def _bits(seed: int, shape: tuple[int, ...], p: float = 0.5) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < p).astype(np.uint8)


# --- Maiti, Gunreddy & Schaumont (2013) formulas, written out as loops -----------------------


def _loop_uniformity(r):
    return 100.0 * sum(int(b) for b in r) / len(r)


def _loop_uniqueness(R):
    k, n = len(R), len(R[0])
    tot = 0.0
    for i in range(k - 1):
        for j in range(i + 1, k):
            tot += sum(int(a != b) for a, b in zip(R[i], R[j], strict=True)) / n * 100
    return 2.0 / (k * (k - 1)) * tot


def _loop_reliability(ref, reps):
    n = len(ref)
    hd = [sum(int(a != b) for a, b in zip(ref, r, strict=True)) / n * 100 for r in reps]
    return 100.0 - sum(hd) / len(hd)


def test_binary_metrics_match_the_written_out_formulas():
    R = _bits(1, (7, 64), 0.4)
    reps = _bits(2, (7, 5, 64), 0.5)
    np.testing.assert_allclose(m.uniformity(R), [_loop_uniformity(r) for r in R])
    np.testing.assert_allclose(m.bit_aliasing(R),
                               [100.0 * sum(int(R[i, b]) for i in range(7)) / 7
                                for b in range(64)])
    assert m.uniqueness(R) == pytest.approx(_loop_uniqueness(R.tolist()))
    np.testing.assert_allclose(m.reliability(R, reps),
                               [_loop_reliability(R[i], reps[i]) for i in range(7)])


def test_binary_metrics_ideal_and_worst_cases():
    same = np.tile(_bits(3, (1, 128)), (5, 1))
    assert m.uniqueness(same) == 0.0  # identical devices
    comp = np.stack([same[0], 1 - same[0]])
    assert m.uniqueness(comp) == 100.0
    assert m.reliability(same, same[:, None, :].repeat(3, 1)).tolist() == [100.0] * 5
    rnd = _bits(4, (40, 4096))
    assert m.uniqueness(rnd) == pytest.approx(m.IDEAL["uniqueness"], abs=1.0)
    assert np.mean(m.uniformity(rnd)) == pytest.approx(m.IDEAL["uniformity"], abs=1.0)


def test_binary_metrics_reject_bad_input():
    with pytest.raises(PufInputError):
        m.uniqueness(np.array([[0, 1, 2]]))
    with pytest.raises(PufInputError):
        m.uniqueness(np.array([[0, 1, 1]]))  # one device
    with pytest.raises(PufInputError):
        m.reliability(np.zeros((2, 4)), np.zeros((3, 2, 4)))


# --- pypuf.metrics 3.2.1 (installed with --no-deps by make setup) ---------------------------


def _pm():
    return pytest.importorskip("pypuf.metrics", reason="pypuf 3.2.1 not installed "
                               "(pip install --no-deps pypuf==3.2.1)")


def _pm_sign(bits):  # pypuf's {-1, 1} encoding: bit b -> (-1)**b
    return 1 - 2 * np.asarray(bits, np.int64)


def test_uniformity_and_bit_aliasing_match_pypuf_bias():
    pm = _pm()
    R = _bits(5, (9, 112), 0.3)
    for i in range(9):
        bias = float(pm.bias_data(_pm_sign(R[i])[:, None])[0])  # bits as challenges
        assert m.uniformity(R[i]) == pytest.approx(50.0 * (1.0 - bias))
    bias_l = pm.bias_data(_pm_sign(R))  # devices as challenges, one value per bit
    np.testing.assert_allclose(m.bit_aliasing(R), 50.0 * (1.0 - bias_l), atol=1e-4)


def test_uniqueness_matches_pypuf_similarity():
    pm = _pm()
    R = _bits(6, (6, 200), 0.5)
    hds = [1.0 - float(pm.similarity_data(_pm_sign(R[i])[:, None], _pm_sign(R[j])[:, None])[0])
           for i, j in itertools.combinations(range(6), 2)]
    assert m.uniqueness(R) == pytest.approx(100.0 * np.mean(hds), rel=1e-6)


def test_reliability_like_with_like_against_pypuf():
    """pypuf's estimator includes self-pairs: E = 1/r + (r-1)/r * P(two repeats agree)."""
    pm = _pm()
    r = 5
    truth = _bits(7, (1, 300))
    flips = _bits(8, (r, 300), 0.1)
    reps = (truth ^ flips).astype(np.uint8)  # (r, n)
    pairwise = np.mean([m.reliability(reps[s][None], np.delete(reps, s, 0)[None])[0] / 100
                        for s in range(r)])
    est = pm.reliability_data(_pm_sign(reps.T)[:, None, :])  # (N=bits, m=1, r)
    assert float(np.mean(est)) == pytest.approx(1.0 / r + (r - 1) / r * pairwise, rel=1e-5)
    # the biased-upward estimator is above the pairwise one whenever there is noise
    assert float(np.mean(est)) > pairwise


# --- continuous metrics ----------------------------------------------------------------------


def _loop_eer(g, i):
    best = None
    for t in [-np.inf, *sorted(set(g) | set(i))]:
        far = sum(x <= t for x in i) / len(i)
        frr = sum(x > t for x in g) / len(g)
        if best is None or abs(far - frr) < best[0]:
            best = (abs(far - frr), (far + frr) / 2)
    return best[1]


def test_eer_matches_loop_and_limits():
    rng = np.random.default_rng(9)
    g, i = rng.normal(1.0, 1.0, 60), rng.normal(2.0, 1.0, 150)
    assert m.eer(g, i) == pytest.approx(_loop_eer(g.tolist(), i.tolist()))
    assert m.eer([0.1, 0.2], [5.0, 6.0]) == 0.0
    same = rng.normal(size=4000)
    assert m.eer(same[:2000], same[2000:]) == pytest.approx(0.5, abs=0.03)
    assert m.eer([1.0, 1.0], [1.0, 1.0]) == 0.5  # all tied: no information
    _, far, frr = m.far_frr(g, i)
    assert np.all(np.diff(far) >= 0) and np.all(np.diff(frr) <= 0)


def test_eer_bootstrap_ci_covers_truth_for_gaussian_scores():
    rng = np.random.default_rng(10)
    g = rng.normal(0.0, 1.0, 400)
    imp = rng.normal(2.0, 1.0, (400, 3))
    e, (lo, hi) = m.eer_bootstrap(g, imp, n_boot=300, seed=1)
    truth = stats.norm.cdf(-1.0)  # equal-variance Gaussians one sd from the midpoint
    assert lo <= truth <= hi and lo < e < hi


def test_identification_ci_and_chance():
    d = np.array([[0.0, 1.0, 2.0]] * 30)
    res = m.identification(d, np.zeros(30, int))
    assert res.accuracy == 1.0 and res.p_value < 1e-10 and res.chance == pytest.approx(1 / 3)
    lo, hi = m.clopper_pearson(7, 20)
    # exact interval from the beta quantiles, written out
    assert lo == pytest.approx(stats.beta.ppf(0.025, 7, 14))
    assert hi == pytest.approx(stats.beta.ppf(0.975, 8, 13))
    tied = m.identification(np.ones((600, 4)), np.zeros(600, int), seed=3)
    assert tied.accuracy == pytest.approx(0.25, abs=0.06)  # ties broken at random: chance


def test_continuous_uniqueness_and_decidability():
    rng = np.random.default_rng(11)
    x = rng.normal(5.0, 1.0, 3000)
    assert m.continuous_uniqueness(x[:1500], x[1500:]) == pytest.approx(0.0, abs=0.02)
    assert m.continuous_uniqueness([1.0, 1.0], [4.0, 4.0]) == pytest.approx(0.75)
    assert m.decidability(rng.normal(0, 1, 500), rng.normal(3, 1, 500)) == pytest.approx(3, abs=.3)


def test_distances_match_loop():
    rng = np.random.default_rng(12)
    a, b = rng.normal(size=(4, 9)), rng.normal(size=(3, 9))
    ref = [[np.sqrt(sum((x - y) ** 2 for x, y in zip(r, s, strict=True)) / 9) for s in b]
           for r in a]
    np.testing.assert_allclose(m.distances(a, b), ref, rtol=1e-9)


def test_permutation_test_level_and_power():
    rng = np.random.default_rng(13)
    ps = [m.permutation_test(rng.normal(size=(4, 20)), rng.normal(size=(4, 20)))[1]
          for _ in range(200)]
    assert 0.01 < np.mean(np.array(ps) <= 0.1) < 0.2  # about 10 % under the null
    _, p = m.permutation_test(rng.normal(size=(6, 20)), rng.normal(2.0, 1.0, (6, 20)))
    assert p <= 2 / 924 + 1e-12  # the smallest exact p of a 6-vs-6 split


def test_witness_finds_the_differing_component():
    a = np.array([100, 100, 100, 0, 5])
    b = np.array([100, 100, 100, 100, 5])
    w = m.witness(a, b, a * 2, b * 2, device_a=3, device_b=8, n_hit_cores=4)
    assert (w.kind, w.core, w.device_a, w.device_b) == ("hit", 3, 3, 8)
    assert w.p_a == 0.0 and w.p_b == pytest.approx(200 / 810) and w.confidence > 0.999
    same = m.witness(a, a, a, a)
    assert same.p_value == pytest.approx(1.0)
    w2 = m.witness(a, b, a * 2, b * 2, n_hit_cores=4, dispersion=50.0)
    assert w2.p_value > w.p_value  # over-dispersion weakens the evidence
    assert m.dispersion_factor([np.array([10, 10, 10])], [np.array([100, 100, 100])]) == 1.0
    assert m.dispersion_factor([np.array([0, 20, 10])], [np.array([100, 100, 100])]) > 5
