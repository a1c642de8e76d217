"""Responses from captures: the BM1366 core mapping, per-core counts, binarisation."""

from __future__ import annotations

import numpy as np
import pytest

from asiclab import dataset
from asiclab.protocol import bm1366 as proto
from asiclab.puf import responses as rs
from asiclab.puf._errors import PufDataError, PufInputError


def test_core_from_nonce_agrees_with_the_reply_decoder():
    rng = np.random.default_rng(0)
    for _ in range(200):
        nb = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
        sc = int(rng.integers(0, 8))
        reply = proto.decode_reply(proto.encode_nonce_reply(nb, 0x28, sc))
        assert int(rs.bm1366_core(reply.nonce)) == reply.core  # submit-order nonce
        assert int(rs.bm1366_core(reply.nonce_h, byte_order="reply")) == reply.core
        assert int(rs.bm1366_small_core(reply.id_byte)) == reply.small_core == sc


def test_core_from_nonce_known_answer():
    nonce_h = (93 << 25) | 0x00123456
    submit = int.from_bytes(nonce_h.to_bytes(4, "big"), "little")
    assert int(rs.bm1366_core(submit)) == 93
    assert int(rs.bm1366_small_core(0x2D)) == 5
    with pytest.raises(PufInputError):
        rs.bm1366_core(-1)
    with pytest.raises(PufInputError):
        rs.bm1366_core(1, byte_order="middle")


def _capture(core_id=None, nonces=None, model="BM1366"):
    # two devices, each two ops at 1200 mV then one at 1100 mV; events placed by hand
    t0 = 1_000_000_000_000
    ops = {"op_device_index": [0, 0, 1, 1, 0, 1], "op_voltage_set": [1200, 1200, 1200, 1200,
                                                                     1100, 1100],
           "op_frequency_set": [485.0] * 6,
           "op_t_start_ns": [t0, t0 + 10**10, t0, t0 + 10**10, t0 + 2 * 10**10,
                             t0 + 2 * 10**10],
           "op_t_end_ns": [t0 + 10**10, t0 + 2 * 10**10, t0 + 10**10, t0 + 2 * 10**10,
                           t0 + 3 * 10**10, t0 + 3 * 10**10]}
    t = np.array([1, 2, 3, 4, 21, 22, 1, 41, 42, 45], np.int64) * 10**9 // 2 + t0
    op = np.array([0, 0, 0, 0, 1, 1, 2, 4, 4, 4])
    dev = np.array(ops["op_device_index"])[op]
    valid = np.array([1, 1, 0, 1, 1, 1, 1, 1, 0, 1], bool)
    ev = {"t_host_ns": t, "op_index": op, "device_index": dev, "valid": valid,
          "error_code": np.where(valid, 0, 30)}
    if core_id is not None:
        ev["core_id"] = core_id
    if nonces is not None:
        ev["nonce"] = nonces
    return dataset.build_capture(events=ev, ops=ops, attrs={"source_kind": "simulated",
                                                            "device_model": model})


def test_per_core_counts_rates_and_reps():
    core = np.array([0, 1, 1, 2, 0, 0, 3, 2, 2, 1])
    r = rs.responses_from_capture(_capture(core_id=core), n_cores=4)
    assert r.hits[0].tolist() == [1, 1, 1, 0] and r.errors[0].tolist() == [0, 1, 0, 0]
    assert r.hits[1].tolist() == [2, 0, 0, 0]
    assert r.hits[4].tolist() == [0, 1, 1, 0] and r.errors[4].tolist() == [0, 0, 1, 0]
    assert r.rep.tolist() == [0, 1, 0, 1, 0, 0]
    assert r.rate_hz[0] == pytest.approx(3 / 10.0)
    assert r.error_fraction[0] == pytest.approx(0.25)
    assert r.hits[3].sum() == 0 and np.isnan(r.error_fraction[3])
    assert r.challenges == [(1100.0, 485.0), (1200.0, 485.0)]
    assert len(r.at(1200)) == 4
    with pytest.raises(PufInputError):
        r.at(1000)
    # the window keeps the first 1.6 s of each op: events at 0.5, 1.0, 1.5 s of op 0
    w = rs.responses_from_capture(_capture(core_id=core), n_cores=4, window_s=1.6)
    assert w.hits[0].sum() + w.errors[0].sum() == 3


def test_cores_from_bm1366_nonces_when_core_id_missing():
    cores = np.array([5, 5, 7, 111, 0, 1, 2, 3, 4, 5])
    nonce_h = (cores.astype(np.int64) << 25) | 0x1234
    submit = [int.from_bytes(int(x).to_bytes(4, "big"), "little") for x in nonce_h]
    r = rs.responses_from_capture(_capture(nonces=submit))
    assert r.core_source == "bm1366_nonce" and r.n_cores == 112
    assert r.hits[0][[5, 111]].tolist() == [2, 1] and r.errors[0][7] == 1
    with pytest.raises(PufDataError):
        rs.responses_from_capture(_capture(nonces=submit, model="BM1387"))


def test_binarise_rules():
    h = np.array([[0, 0, 5, 9], [3, 3, 3, 3]])
    assert rs.binarise(h).tolist() == [[0, 0, 1, 1], [0, 0, 0, 0]]
    ref = np.array([[1, 10, 1, 1], [3, 0, 1, 1], [2, 5, 1, 1]])
    assert rs.binarise(h, ref, rule="fleet_median").tolist() == [[0, 0, 1, 1], [1, 0, 1, 1]]
    with pytest.raises(PufInputError):
        rs.binarise(h, rule="fleet_median")
    with pytest.raises(PufInputError):
        rs.binarise(h, rule="other")


def test_anscombe_stabilises_poisson_variance():
    rng = np.random.default_rng(1)
    for lam in (5, 50, 500):
        assert np.var(rs.anscombe(rng.poisson(lam, 20000))) == pytest.approx(1.0, abs=0.08)
