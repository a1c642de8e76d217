"""The round-level SHA256d engine: bit-exact against hashlib, vectors and real shares."""

from __future__ import annotations

import csv
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from asiclab.capture import importers as im
from asiclab.protocol import mining as mn
from asiclab.tpf import engine as E

# ------------------------------------------------------------------ an independent SHA-256
# (plain Python, FIPS 180-4, written from the standard; exposes the state after every round)

_K = [int(x, 16) for x in (
    "428a2f98 71374491 b5c0fbcf e9b5dba5 3956c25b 59f111f1 923f82a4 ab1c5ed5 d807aa98 12835b01 "
    "243185be 550c7dc3 72be5d74 80deb1fe 9bdc06a7 c19bf174 e49b69c1 efbe4786 0fc19dc6 240ca1cc "
    "2de92c6f 4a7484aa 5cb0a9dc 76f988da 983e5152 a831c66d b00327c8 bf597fc7 c6e00bf3 d5a79147 "
    "06ca6351 14292967 27b70a85 2e1b2138 4d2c6dfc 53380d13 650a7354 766a0abb 81c2c92e 92722c85 "
    "a2bfe8a1 a81a664b c24b8b70 c76c51a3 d192e819 d6990624 f40e3585 106aa070 19a4c116 1e376c08 "
    "2748774c 34b0bcb5 391c0cb3 4ed8aa4a 5b9cca4f 682e6ff3 748f82ee 78a5636f 84c87814 8cc70208 "
    "90befffa a4506ceb bef9a3f7 c67178f2").split()]
_IV = [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB,
       0x5BE0CD19]


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & 0xFFFFFFFF


def _compress(state: list[int], block: bytes) -> tuple[list[int], list[tuple[int, ...]]]:
    w = list(struct.unpack(">16I", block))
    for t in range(16, 64):
        s0 = _rotr(w[t - 15], 7) ^ _rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
        s1 = _rotr(w[t - 2], 17) ^ _rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & 0xFFFFFFFF)
    a, b, c, d, e, f, g, h = state
    after = []
    for t in range(64):
        t1 = (h + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + ((e & f) ^ (~e & g)) + _K[t]
              + w[t]) & 0xFFFFFFFF
        t2 = ((_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) \
            & 0xFFFFFFFF
        a, b, c, d, e, f, g, h = (t1 + t2) & 0xFFFFFFFF, a, b, c, (d + t1) & 0xFFFFFFFF, e, f, g
        after.append((a, b, c, d, e, f, g, h))
    return [(x + y) & 0xFFFFFFFF for x, y in zip(state, after[-1], strict=True)], after


def _reference_rounds(header: bytes) -> tuple[bytes, list[tuple[int, ...]]]:
    """SHA256d of an 80-byte header and the states after the 128 nonce-dependent rounds."""
    mid, _ = _compress(list(_IV), header[:64])
    pad2 = header[64:] + b"\x80" + bytes(39) + struct.pack(">Q", 640)
    d1, rounds1 = _compress(mid, pad2)
    pad3 = struct.pack(">8I", *d1) + b"\x80" + bytes(23) + struct.pack(">Q", 256)
    d2, rounds2 = _compress(list(_IV), pad3)
    return struct.pack(">8I", *d2), rounds1 + rounds2


def test_reference_implementation_matches_hashlib() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        header = rng.bytes(80)
        digest, _ = _reference_rounds(header)
        assert digest == hashlib.sha256(hashlib.sha256(header).digest()).digest()


# ------------------------------------------------------------------ bit-exact final hash


def test_final_hash_bit_exact_on_1e5_random_headers() -> None:
    """100 random real-looking jobs x 1000 random nonces = 10^5 headers, against hashlib."""
    rng = np.random.default_rng(20261204)
    n_bad = 0
    n_total = 0
    for prefix in E.random_prefixes(100, seed=7):
        nonces = rng.integers(0, 2**32, size=1000, dtype=np.uint64).astype(np.uint32)
        job = E.Job.from_prefix(prefix)
        got = E.digests(E.final_hash(job, nonces))
        ref = E.hashlib_loop(prefix, nonces)
        n_bad += sum(g != r for g, r in zip(got, ref, strict=True))
        n_total += len(ref)
    assert n_total == 100_000
    assert n_bad == 0


def test_fully_random_prefixes_and_extreme_nonces() -> None:
    rng = np.random.default_rng(3)
    nonces = np.array([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF], dtype=np.uint32)
    for _ in range(50):
        prefix = rng.bytes(76)
        got = E.digests(E.final_hash(E.Job.from_prefix(prefix), nonces))
        assert got == E.hashlib_loop(prefix, nonces)


def test_difficulty_and_target_agree_with_mining() -> None:
    prefix = E.random_prefixes(1, seed=11)[0]
    job = E.Job.from_prefix(prefix)
    nonces = np.arange(20_000, dtype=np.uint32)
    words = E.final_hash(job, nonces)
    ref = E.hashlib_loop(prefix, nonces)
    ref_d = np.array([mn.share_difficulty(r) for r in ref])
    np.testing.assert_allclose(E.difficulties(words), ref_d, rtol=1e-12)
    for p in (1 / 64, 1 / 1024, 0.3):
        target = E.target_from_probability(p)
        ok = E.meets_target(words, target)
        assert ok.tolist() == [mn.hash_to_int(r) <= target for r in ref]
        assert 0 < ok.sum() < ok.size
    # difficulty 1 through the exact target: nonce search of asiclab.protocol.mining agrees
    hits = [h.nonce for h in mn.iter_nonces(prefix, 2**-20, count=20_000)]
    assert np.flatnonzero(E.meets_target(words, mn.target_from_difficulty(2**-20))).tolist() \
        == hits


# ------------------------------------------------------------------ states after each round


def test_states_after_every_round_match_independent_reference() -> None:
    rng = np.random.default_rng(8)
    prefix = rng.bytes(76)
    job = E.Job.from_prefix(prefix)
    nonces = rng.integers(0, 2**32, size=6, dtype=np.uint64).astype(np.uint32)
    rounds = np.arange(1, 129)
    states, final = E.states_after(job, nonces, rounds, with_hash=True)
    assert states.shape == (6, 128, 8) and states.dtype == np.uint32
    for i, nonce in enumerate(nonces):
        digest, ref_states = _reference_rounds(prefix + int(nonce).to_bytes(4, "little"))
        assert states[i].tolist() == [list(s) for s in ref_states]
        assert E.digests(final[i : i + 1])[0] == digest
    # rounds 1..3 do not depend on the nonce; round 4 does
    assert (states[:, :3] == states[0, :3]).all()
    assert len({tuple(s) for s in states[:, 3]}) == 6


def test_states_subset_order_and_early_stop() -> None:
    prefix = E.random_prefixes(1, seed=2)[0]
    job = E.Job.from_prefix(prefix)
    nonces = np.arange(100, dtype=np.uint32)
    full = E.states_after(job, nonces, np.arange(1, 129))
    sub = E.states_after(job, nonces, [70, 5, 1])
    assert (sub[:, 0] == full[:, 69]).all()
    assert (sub[:, 1] == full[:, 4]).all()
    assert (sub[:, 2] == full[:, 0]).all()
    # h after round 128 + IV7 is the final word H7; e after round 125 + IV7 equals it too
    words = E.final_hash(job, nonces)
    iv7 = np.uint32(0x5BE0CD19)
    assert (full[:, 127, 7] + iv7 == words[:, 7]).all()
    assert (full[:, 124, 4] + iv7 == words[:, 7]).all()


@pytest.mark.parametrize("bad", [[0], [129], [3, 3], []])
def test_bad_rounds_raise(bad: list[int]) -> None:
    job = E.Job.from_prefix(bytes(76))
    with pytest.raises(E.EngineError):
        E.states_after(job, [1, 2], bad)


def test_bad_inputs_raise() -> None:
    with pytest.raises(E.EngineError, match="76"):
        E.Job.from_prefix(bytes(75))
    job = E.Job.from_prefix(bytes(80))
    with pytest.raises(E.EngineError):
        E.final_hash(job, [-1])
    with pytest.raises(E.EngineError):
        E.final_hash(job, [2**32])
    with pytest.raises(E.EngineError):
        E.final_hash(job, np.zeros((2, 2), dtype=np.uint32))
    with pytest.raises(E.EngineError):
        E.count_rounds(job, [1, 2], "tpf")
    with pytest.raises(E.EngineError):
        E.target_from_probability(0.0)


# ------------------------------------------------------------------ round accounting


def test_round_accounting_counted_by_the_engine() -> None:
    prefix = E.random_prefixes(1, seed=4)[0]
    job = E.Job.from_prefix(prefix)
    nonces = np.arange(2000, dtype=np.uint32)
    counts = {m: E.count_rounds(job, nonces, m) for m in E.MODES}
    assert all(c.all_correct for c in counts.values())
    assert counts["naive"].total_rounds == 192 * 2000
    assert counts["midstate"].total_rounds == 64 + 128 * 2000
    assert counts["precomputed"].total_rounds == 64 + 3 + 125 * 2000
    # difficulty-1 first check: H7 must be 0, which no nonce here reaches: 122 rounds each
    assert counts["h7_early_out"].total_rounds == 64 + 3 + 122 * 2000
    assert counts["h7_early_out"].per_nonce_asymptotic == 122.0


def test_early_out_completes_exactly_the_candidates() -> None:
    prefix = E.random_prefixes(1, seed=9)[0]
    job = E.Job.from_prefix(prefix)
    nonces = np.arange(5000, dtype=np.uint32)
    target = E.target_from_probability(1 / 64)  # H7 check passes for ~1/64 of nonces
    c = E.count_rounds(job, nonces, "h7_early_out", target=target)
    assert c.all_correct
    words = E.final_hash(job, nonces)
    candidates = int((words.byteswap()[:, 7] <= (target >> 224)).sum())
    assert 30 < candidates < 130
    assert c.total_rounds == 67 + 122 * 5000 + 3 * candidates


# ------------------------------------------------------------------ published vectors


def _vector_header(v: dict) -> bytes:
    kwargs = dict(version=v["version"], prevhash=v["prevhash_notify"], ntime=v["ntime"],
                  nbits=v["nbits"], nonce=v["nonce"])
    if "coinb1" in v:
        kwargs.update(coinb1=v["coinb1"], extranonce1=v["extranonce1"],
                      extranonce2=v["extranonce2"], coinb2=v["coinb2"],
                      merkle_branch=v["merkle_branch"])
    else:
        kwargs["merkle_root"] = v["merkle_root"]
    return mn.stratum_header(**kwargs)


def test_every_testvector_share(reference_dir: Path) -> None:
    vectors = json.loads((reference_dir / "testvectors.json").read_text())["share_difficulty"]
    assert len(vectors) >= 2
    for v in vectors:
        header = _vector_header(v)
        nonce = int.from_bytes(header[76:], "little")
        words = E.final_hash(E.Job.from_prefix(header), [nonce])
        assert E.digests(words)[0] == mn.sha256d(header)
        assert E.difficulties(words)[0] == pytest.approx(v["difficulty"], rel=1e-12)


# ------------------------------------------------------------------ real shares


def _check_headers(headers: list[bytes], difficulty: np.ndarray) -> None:
    by_prefix: dict[bytes, list[int]] = {}
    for i, h in enumerate(headers):
        by_prefix.setdefault(h[:76], []).append(i)
    got_d = np.empty(len(headers))
    for prefix, idx in by_prefix.items():
        nonces = [int.from_bytes(headers[i][76:], "little") for i in idx]
        words = E.final_hash(E.Job.from_prefix(prefix), nonces)
        assert E.digests(words) == [hashlib.sha256(hashlib.sha256(headers[i]).digest()).digest()
                                    for i in idx]
        got_d[idx] = E.difficulties(words)
    np.testing.assert_allclose(np.sort(got_d), np.sort(difficulty), rtol=1e-12)
    assert got_d.min() >= 256


@pytest.mark.realdata
def test_every_real_s9_share(realdata_dir: Path) -> None:
    path = realdata_dir / "s9_stratum_shares.csv"
    with path.open(newline="") as fh:
        headers = [mn.stratum_header(
            version=r["version"], prevhash=r["prevhash"], ntime=r["ntime"], nbits=r["nbits"],
            nonce=r["nonce"], coinb1=r["coinb1"], extranonce1=r["extranonce1"],
            extranonce2=r["extranonce2"], coinb2=r["coinb2"],
            merkle_branch=json.loads(r["merkle_branch"])) for r in csv.DictReader(fh)]
    assert len(headers) == 2588
    ds = im.import_s9_stratum_csv(path)  # the importer's own verification, for the difficulties
    _check_headers(headers, ds["difficulty"].values)


@pytest.mark.realdata
def test_every_real_lv06_share(realdata_dir: Path) -> None:
    path = realdata_dir / "lv06_bm1366_proofs.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    headers = [bytes.fromhex(r["block_header_hex"]) for r in rows]
    assert len(headers) == 32
    for r, h in zip(rows, headers, strict=True):
        words = E.final_hash(E.Job.from_prefix(h), [int.from_bytes(h[76:], "little")])
        assert mn.hash_to_display(E.digests(words)[0]) == r["block_hash_hex"]
    ds = im.import_lv06_proofs_csv(path)  # rebuilds every header from the job fields
    assert int(ds["valid"].sum()) == 32
    _check_headers(headers, ds["difficulty"].values)
