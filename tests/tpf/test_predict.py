"""The predictive test: known truths (planted leak found, random label not), statistics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from asiclab.tpf import engine as E
from asiclab.tpf import predict as P


@pytest.fixture(scope="module")
def data() -> P.RoundData:
    return P.round_data(6, 2500, 1 / 64, seed=3)


def test_labels_are_exact_share_checks(data: P.RoundData) -> None:
    job = data.jobs[0]
    words = E.final_hash(job, data.nonces)
    ref = E.hashlib_loop(job.prefix, data.nonces)
    assert data.label[: data.nonces.size].tolist() == [
        int.from_bytes(r, "little") <= data.target for r in ref]
    assert (E.digests(words) == ref)
    assert 0.01 < data.label.mean() < 0.025  # p = 1/64 = 0.0156


def test_bits_of_msb_first() -> None:
    s = np.zeros((1, 8), dtype=np.uint32)
    s[0, 0] = 0x80000001
    s[0, 7] = 1
    b = P.bits_of(s)
    assert b.shape == (1, 256)
    assert np.flatnonzero(b[0]).tolist() == [0, 31, 255]


def test_delong_matches_sklearn_and_known_variance() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(3000) < 0.2
    score = rng.normal(size=3000) + 0.8 * y
    auc, se = P.auc_delong(y, np.round(score, 1))  # with ties
    assert auc == pytest.approx(roc_auc_score(y, np.round(score, 1)), abs=1e-12)
    # the null SE of a random score is close to Hanley-McNeil's (n+m+1)/(12 n m)
    _, se0 = P.auc_delong(y, rng.normal(size=3000))
    m, n = int(y.sum()), int((~y).sum())
    assert se0 == pytest.approx(np.sqrt((m + n + 1) / (12 * m * n)), rel=0.1)
    assert 0 < se < 0.02
    with pytest.raises(P.PredictError):
        P.auc_delong(np.array([True, False, False]), np.array([1.0, 0.0, 0.5]))


def test_min_detectable_excess_scales_with_sample_size() -> None:
    a = P.min_detectable_auc_excess(100, 6000)
    b = P.min_detectable_auc_excess(400, 24000)
    assert a == pytest.approx(2 * b, rel=0.01)
    assert 0.05 < a < 0.1


def test_mutual_information_known_values() -> None:
    rng = np.random.default_rng(2)
    y = rng.random(20000) < 0.5
    bits = np.stack([y, rng.random(20000) < 0.5, y ^ (rng.random(20000) < 0.11)], axis=1)
    mi = P.mutual_information_bits(bits.astype(np.uint8), y, n_perm=49, seed=0)
    assert mi["mi"][0] == pytest.approx(1.0, abs=1e-3)  # a copy of a fair bit: 1 bit
    h = -(0.11 * np.log2(0.11) + 0.89 * np.log2(0.89))
    assert mi["mi"][2] == pytest.approx(1 - h, abs=0.02)  # binary symmetric channel
    assert mi["mi"][1] < 1e-3
    assert mi["p_maxT"][0] == mi["p_maxT"][2] == 1 / 50
    assert mi["p_maxT"][1] > 0.05


def test_planted_early_state_leak_is_found(data: P.RoundData) -> None:
    """A label that copies bit 2 of word e after round 5 (flipped 20 %) must be found."""
    bits = P.state_bits(data, 5)
    y = P.planted_label(bits, bit=130, flip=0.2, seed=1)
    table, _ = P.evaluate_features(bits, y, data.group, seed=0)
    assert (table["auc_lo"] > 0.7).all()
    assert (table["p_auc"] < 1e-6).all()
    assert (table["accuracy"] > table["majority_rate"]).all()
    mi = P.mutual_information_bits(bits, y, n_perm=19)
    assert int(np.argmax(mi["mi"])) == 130 and mi["p_maxT"][130] == 1 / 20


def test_random_label_gives_auc_one_half(data: P.RoundData) -> None:
    bits = P.state_bits(data, 125)  # even late-round bits carry nothing about a random label
    y = np.random.default_rng(7).random(bits.shape[0]) < 1 / 64
    table, _ = P.evaluate_features(bits, y, data.group, seed=0)
    assert (table["auc_lo"] < 0.5).all() and (table["auc_hi"] > 0.5).all()
    assert (abs(table["auc"] - 0.5) < 0.1).all()


def test_sweep_finds_information_only_where_the_outcome_is_computed(data: P.RoundData) -> None:
    """Rounds 5 and 64: nothing; round 125 (SHA#2 r61, e + IV7 = H7): the label is there."""
    res = P.sweep_rounds(data, [5, 64, 125], n_perm=19, hgb_iter=30)
    v = res.verdicts.set_index("round")
    assert v.loc[5, "verdict"] == v.loc[64, "verdict"] == "no detectable information"
    assert v.loc[125, "verdict"] == "information present"
    assert v.loc[125, "best_auc"] > 0.95
    assert res.first_informative_round() == 125
    assert res.mi.shape == (256, 3)
    # train and test jobs are disjoint
    train, test = P.job_split(data.group, 0.3, 0)
    assert not set(data.group[train]) & set(data.group[test])
