"""Tests of asiclab.protocol.mining against published known answers and independent facts.

Known-answer vectors: ESP-Miner (open-source Bitaxe firmware),
components/stratum/test/test_mining.c, as collected in /work/shared/reference/testvectors.json
(real mainnet pool jobs, re-checked with an independent SHA256d implementation there). They are
copied once in ``tests/vectors.py`` so the tests run without that file; when it is present, the
copies are compared with it.

Independent checks: the Bitcoin genesis block (header, hash and coinbase transaction, as published
in the Bitcoin Core source, chainparams.cpp) and block 125552 together with the difficulty example
``0x1b0404cb -> 16307.420938523983`` (Bitcoin wiki, "Block hashing algorithm" and "Difficulty").
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vectors
from asiclab import AsiclabError
from asiclab.protocol import mining as m
from vectors import (
    GENESIS_COINBASE,
    GENESIS_HASH,
    GENESIS_MERKLE,
    GENESIS_NBITS,
    GENESIS_NONCE,
    GENESIS_TIME,
)

# --------------------------------------------------------------------------- ESP-Miner vectors
# Source: ESP-Miner components/stratum/test/test_mining.c (via testvectors.json; copied in
# tests/vectors.py, with the genesis block)

ESP_COINBASE_MERKLE = vectors.ESP_COINBASE_MERKLE
ESP_SHARE_FULL = vectors.share_inputs(vectors.ESP_SHARE_FULL)
ESP_SHARE_FULL_MERKLE_ROOT = vectors.ESP_SHARE_FULL["merkle_root"]
ESP_SHARE_FULL_DIFFICULTY = vectors.ESP_SHARE_FULL["difficulty"]
ESP_SHARE_ROOT = vectors.share_inputs(vectors.ESP_SHARE_ROOT)
ESP_SHARE_ROOT_DIFFICULTY = vectors.ESP_SHARE_ROOT["difficulty"]
ESP_VERSION_ROLLING = vectors.ESP_VERSION_ROLLING

# --------------------------------------------------------------------------- independent facts
# The Bitcoin genesis block: GENESIS_* from tests/vectors.py.
# Block 125552 (Bitcoin wiki, "Block hashing algorithm")
B125552 = {
    "version": 1,
    "prev": "00000000000008a3a41b85b8b29ad444def299fee21793cd8b9e567eab02cd81",
    "merkle": "2b12fcf1b09288fcaff797d71e950e71ae42b91e8bdb2304758dfcffc2b620e3",
    "time": 1305998791,
    "nbits": 440711666,
    "nonce": 2504433986,
    "hash": "00000000000000001e8d6829a8a21adc5d38d0a473b144b6765798e61f98bd1d",
}


def _display_to_notify(display_hex: str) -> str:
    """Display-order hash -> mining.notify prevhash (raw bytes, each word byte-swapped)."""
    return m.swap_words(bytes.fromhex(display_hex)[::-1]).hex()


def test_copied_vectors_equal_the_reference_file(reference_dir: Path) -> None:
    tv = json.loads((reference_dir / "testvectors.json").read_text())
    cm = tv["coinbase_and_merkle"][0]
    assert cm == ESP_COINBASE_MERKLE
    full, root = tv["share_difficulty"]
    assert full["merkle_root"] == ESP_SHARE_FULL_MERKLE_ROOT
    assert full["difficulty"] == ESP_SHARE_FULL_DIFFICULTY
    assert root["difficulty"] == ESP_SHARE_ROOT_DIFFICULTY
    for vec, ours in ((full, ESP_SHARE_FULL), (root, ESP_SHARE_ROOT)):
        for key, value in ours.items():
            assert vec["prevhash_notify" if key == "prevhash" else key] == value, key
    assert tv["version_rolling"] == ESP_VERSION_ROLLING


# --------------------------------------------------------------------------- hashing basics


def test_sha256d_matches_double_hashlib_and_known_answer() -> None:
    assert m.sha256d(b"abc") == hashlib.sha256(hashlib.sha256(b"abc").digest()).digest()
    # SHA256d("hello") is a widely published example (Bitcoin wiki, "Protocol documentation")
    assert m.sha256d(b"hello").hex() == (
        "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50"
    )


def test_error_class_is_typed() -> None:
    assert issubclass(m.MiningError, AsiclabError)


@given(st.binary(min_size=0, max_size=64).filter(lambda b: len(b) % 4 == 0))
def test_swap_words_is_an_involution(data: bytes) -> None:
    assert m.swap_words(m.swap_words(data)) == data
    assert len(m.swap_words(data)) == len(data)


def test_swap_words_example_and_bad_length() -> None:
    assert m.swap_words("0102030405060708").hex() == "0403020108070605"
    with pytest.raises(m.MiningError):
        m.swap_words("010203")


# --------------------------------------------------------------------------- ESP-Miner vectors


def test_esp_coinbase_and_merkle_root() -> None:
    v = ESP_COINBASE_MERKLE
    coinbase = m.build_coinbase(v["coinb1"], v["extranonce1"], v["extranonce2"], v["coinb2"])
    assert coinbase.hex() == v["coinb1"] + v["extranonce1"] + v["extranonce2"] + v["coinb2"]
    assert m.merkle_root_from_coinbase(coinbase, v["merkle_branch"]).hex() == v["merkle_root"]
    # a single wrong branch entry changes the root
    bad = [*v["merkle_branch"]]
    bad[5] = "00" * 32
    assert m.merkle_root_from_coinbase(coinbase, bad).hex() != v["merkle_root"]


def test_esp_full_share_merkle_root_and_difficulty() -> None:
    v = ESP_SHARE_FULL
    coinbase = m.build_coinbase(v["coinb1"], v["extranonce1"], v["extranonce2"], v["coinb2"])
    root = m.merkle_root_from_coinbase(coinbase, v["merkle_branch"])
    assert root.hex() == ESP_SHARE_FULL_MERKLE_ROOT
    res = m.verify_share(**v)
    assert res.difficulty == pytest.approx(ESP_SHARE_FULL_DIFFICULTY, rel=1e-12)
    assert m.share_difficulty(m.sha256d(res.header)) == res.difficulty
    assert res.header[36:68] == root
    difficulty, digest, _ = res  # tuple form (difficulty, hash, header)
    assert digest == m.sha256d(res.header)
    assert difficulty == res.difficulty


def test_esp_share_with_merkle_root_given() -> None:
    res = m.verify_share(**ESP_SHARE_ROOT)
    assert res.difficulty == pytest.approx(ESP_SHARE_ROOT_DIFFICULTY, rel=1e-12)


def test_esp_share_wrong_nonce_is_far_below() -> None:
    v = dict(ESP_SHARE_ROOT, nonce="276e8948")
    assert m.verify_share(**v).difficulty < 1.0


def test_esp_version_increments() -> None:
    v = ESP_VERSION_ROLLING
    version = int(v["version"], 16)
    for expected in v["increments"]:
        version = m.increment_version(version, v["mask"])
        assert f"{version:08x}" == expected


@pytest.mark.parametrize("mode", ["xor", "bip310"])
def test_esp_version_rolling_via_version_bits(mode: str) -> None:
    """The rolled versions equal job version with version_bits = rolled XOR job (both modes)."""
    v = ESP_VERSION_ROLLING
    job = int(v["version"], 16)
    mask = int(v["mask"], 16)
    for rolled_hex in v["increments"]:
        rolled = int(rolled_hex, 16)
        bits = m.version_bits_from_rolled(job, rolled)
        assert bits & ~mask == 0
        assert m.rolled_version(job, bits, mask, mode=mode) == rolled  # type: ignore[arg-type]


def test_header_layout_from_stratum_fields() -> None:
    v = ESP_SHARE_ROOT
    header = m.stratum_header(**v, version_bits="00002000", version_mask="1fffe000")
    assert len(header) == 80
    assert header[0:4] == bytes.fromhex("20002004")[::-1]
    assert header[4:36] == m.swap_words(v["prevhash"])
    assert header[36:68].hex() == v["merkle_root"]
    assert header[68:72] == bytes.fromhex(v["ntime"])[::-1]
    assert header[72:76] == bytes.fromhex(v["nbits"])[::-1]
    assert header[76:80] == bytes.fromhex(v["nonce"])[::-1]
    assert m.header_prefix(0x20002004, v["prevhash"], v["merkle_root"], v["ntime"],
                           v["nbits"]) == header[:76]


# --------------------------------------------------------------------------- version rolling


def test_version_modes_differ_when_job_has_bits_inside_mask() -> None:
    job, mask, bits = 0x20002000, 0x1FFFE000, 0x00006000
    assert m.rolled_version(job, bits, mode="xor") == 0x20004000
    assert m.rolled_version(job, bits, mask, mode="bip310") == 0x20006000


def test_version_xor_rejects_bits_outside_mask_and_bad_mode() -> None:
    with pytest.raises(m.MiningError, match="outside the mask"):
        m.rolled_version(0x20000000, 0x00000001, 0x1FFFE000)
    with pytest.raises(m.MiningError):
        m.rolled_version(0x20000000, 0, mode="or")  # type: ignore[arg-type]
    # bip310 discards bits outside the mask
    assert m.rolled_version(0x20000000, 0x00002001, 0x1FFFE000, mode="bip310") == 0x20002000


def test_increment_version_wraps_inside_mask_and_noncontiguous() -> None:
    assert m.increment_version(0x20FFFF04, 0x00FFFF00) == 0x20000004
    # non-contiguous mask 0x0101: counter bits are bit 0 and bit 8
    seq = [0x0]
    for _ in range(4):
        seq.append(m.increment_version(seq[-1], 0x0101))
    assert seq == [0x0, 0x1, 0x100, 0x101, 0x0]
    with pytest.raises(m.MiningError):
        m.increment_version(1, 0)


# --------------------------------------------------------------------------- independent checks


def test_genesis_coinbase_merkle_header_and_hash() -> None:
    coinbase = bytes.fromhex(GENESIS_COINBASE)
    root = m.merkle_root_from_coinbase(coinbase, [])
    assert m.hash_to_display(root) == GENESIS_MERKLE
    # through the Stratum route: all-zero prevhash, coinbase split arbitrarily into parts
    res = m.verify_share(
        version=1, prevhash="00" * 32, ntime=GENESIS_TIME, nbits=GENESIS_NBITS,
        nonce=GENESIS_NONCE, coinb1=coinbase[:42], extranonce1=coinbase[42:46],
        extranonce2=coinbase[46:50], coinb2=coinbase[50:],
    )
    assert m.hash_to_display(res.hash) == GENESIS_HASH
    assert m.meets_difficulty(res.hash, m.difficulty_from_nbits(GENESIS_NBITS))
    assert res.difficulty == pytest.approx(m.DIFF1_TARGET / int(GENESIS_HASH, 16), rel=1e-15)


def test_block_125552_header_hash_and_difficulty() -> None:
    b = B125552
    header = m.build_header(
        b["version"], _display_to_notify(b["prev"]), bytes.fromhex(b["merkle"])[::-1],
        b["time"], b["nbits"], b["nonce"],
    )
    assert m.hash_to_display(m.sha256d(header)) == b["hash"]
    assert m.difficulty_from_nbits(b["nbits"]) == pytest.approx(244112.48777433642, rel=1e-12)


def test_compact_targets() -> None:
    assert m.target_from_nbits(0x1D00FFFF) == m.DIFF1_TARGET
    assert m.target_from_nbits("1d00ffff") == 0xFFFF << 208
    assert m.difficulty_from_nbits(0x1D00FFFF) == 1.0
    # Bitcoin wiki "Difficulty": 0x1b0404cb -> 16307.420938523983
    assert m.target_from_nbits(0x1B0404CB) == 0x0404CB * 2 ** (8 * (0x1B - 3))
    assert m.difficulty_from_nbits(0x1B0404CB) == pytest.approx(16307.420938523983, rel=1e-13)
    assert m.nbits_from_target(m.DIFF1_TARGET) == 0x1D00FFFF
    assert m.nbits_from_target(0x0404CB * 2 ** (8 * 24)) == 0x1B0404CB
    assert m.target_from_nbits(0x01003456) == 0  # Bitcoin Core SetCompact examples
    assert m.target_from_nbits(0x02123456) == 0x1234
    assert m.target_from_nbits(0x04123456) == 0x12345600
    with pytest.raises(m.MiningError, match="negative"):
        m.target_from_nbits(0x04923456)
    with pytest.raises(m.MiningError, match="overflow"):
        m.target_from_nbits(0xFF123456)


@settings(max_examples=200)
@given(st.integers(min_value=1, max_value=2**256 - 1))
def test_nbits_roundtrip_is_idempotent(target: int) -> None:
    nbits = m.nbits_from_target(target)
    decoded = m.target_from_nbits(nbits)
    assert decoded <= target
    assert m.nbits_from_target(decoded) == nbits
    # the mantissa keeps the top 2-3 bytes: relative error below 2**-15
    assert (target - decoded) / target < 2**-15


@given(st.floats(min_value=2**-40, max_value=1e15, allow_nan=False, allow_infinity=False))
def test_target_difficulty_consistency(difficulty: float) -> None:
    target = m.target_from_difficulty(difficulty)
    assert m.difficulty_from_target(target) >= difficulty * (1 - 1e-12)
    # exact boundary: the target meets the difficulty, target + 1 does not
    if target < m.MAX_TARGET:
        assert m.meets_difficulty(target.to_bytes(32, "little"), difficulty)
        assert not m.meets_difficulty((target + 1).to_bytes(32, "little"), difficulty)


def test_target_from_difficulty_known_values_and_errors() -> None:
    assert m.target_from_difficulty(1) == m.DIFF1_TARGET
    assert m.target_from_difficulty(256) == m.DIFF1_TARGET // 256
    assert m.target_from_difficulty(2**-40) == m.MAX_TARGET  # capped
    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(m.MiningError):
            m.target_from_difficulty(bad)
    with pytest.raises(m.MiningError):
        m.difficulty_from_target(0)


def test_share_difficulty_of_extreme_hashes() -> None:
    assert m.share_difficulty(bytes(32)) == math.inf
    assert m.share_difficulty(m.DIFF1_TARGET.to_bytes(32, "little")) == 1.0
    assert m.share_difficulty(b"\xff" * 32) == pytest.approx(m.DIFF1_TARGET / (2**256 - 1))


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"prevhash": "zz" * 32}, "prevhash: not valid hex"),
        ({"prevhash": "00" * 31}, "prevhash: expected 32 bytes"),
        ({"nonce": "1234567890"}, "nonce"),
        ({"nonce": 2**32}, "u32"),
        ({"ntime": "xyz"}, "ntime"),
        ({"nonce": "-1"}, "nonce"),
        ({"ntime": "6_46ff1a9"}, "ntime"),
        ({"prevhash": "d0 2b" + "00" * 30}, "prevhash"),
        ({"merkle_root": "abc"}, "merkle_root"),
    ],
)
def test_malformed_fields_raise_mining_error(kwargs: dict, match: str) -> None:
    with pytest.raises(m.MiningError, match=match):
        m.verify_share(**{**ESP_SHARE_ROOT, **kwargs})


def test_merkle_inputs_must_be_consistent() -> None:
    with pytest.raises(m.MiningError, match="either merkle_root"):
        m.stratum_header(**ESP_SHARE_ROOT, coinb1="00")
    v = {k: x for k, x in ESP_SHARE_FULL.items() if k != "coinb2"}
    with pytest.raises(m.MiningError, match="all needed"):
        m.stratum_header(**v)
    with pytest.raises(m.MiningError, match="sequence"):
        m.merkle_root(bytes(32), "00" * 32)  # type: ignore[arg-type]
    with pytest.raises(m.MiningError, match=r"merkle_branch\[1\]"):
        m.merkle_root(bytes(32), ["00" * 32, "00" * 31])


# --------------------------------------------------------------------------- nonce search


def test_find_nonce_really_meets_tiny_difficulty() -> None:
    v = ESP_SHARE_ROOT
    prefix = m.header_prefix(v["version"], v["prevhash"], v["merkle_root"], v["ntime"], v["nbits"])
    difficulty = 2**-24  # ~256 hashes per hit
    hit = m.find_nonce(prefix, difficulty, start=1000)
    assert hit is not None
    assert hit.nonce >= 1000
    header = prefix + hit.nonce.to_bytes(4, "little")
    assert m.sha256d(header) == hit.hash
    assert hit.difficulty == m.share_difficulty(hit.hash) >= difficulty
    # it is the first: no nonce before it meets the difficulty
    for n in range(1000, hit.nonce):
        assert m.share_difficulty(m.sha256d(prefix + n.to_bytes(4, "little"))) < difficulty
    # the found nonce verifies through the Stratum route (submit hex = f"{nonce:08x}")
    res = m.verify_share(**{**v, "nonce": f"{hit.nonce:08x}"})
    assert res.hash == hit.hash


def test_iter_nonces_counts_match_brute_force_and_expectation() -> None:
    v = ESP_SHARE_ROOT
    prefix = m.header_prefix(v["version"], v["prevhash"], v["merkle_root"], v["ntime"], v["nbits"])
    difficulty = 2**-28  # ~16 hashes per hit
    n = 4096
    hits = list(m.iter_nonces(prefix, difficulty, count=n))
    brute = [
        k for k in range(n) if m.meets_difficulty(m.sha256d(prefix + k.to_bytes(4, "little")),
                                                  difficulty)
    ]
    assert [h.nonce for h in hits] == brute
    # Binomial(4096, 1/16): mean 256, sd 15.5 -> 8 sd window
    assert 132 < len(hits) < 380


def test_find_nonce_range_limits_and_errors() -> None:
    prefix = bytes(76)
    assert m.find_nonce(prefix, 1e12, count=50) is None
    assert m.find_nonce(prefix, 2**-40, start=2**32 - 1) is not None  # last nonce is searched
    assert list(m.iter_nonces(prefix, 2**-40, start=2**32 - 2, count=10)) != []
    assert len(list(m.iter_nonces(prefix, 2**-40, start=2**32 - 2, count=10))) == 2
    with pytest.raises(m.MiningError):
        m.find_nonce(bytes(75), 1.0)
    with pytest.raises(m.MiningError):
        m.find_nonce(prefix, 1.0, start=-1)
    with pytest.raises(m.MiningError):
        m.find_nonce(prefix, 1.0, count=-5)


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_version_rolling_semantics_on_real_lv06_log(realdata_dir: Path) -> None:
    """In the LV06 log, version_used = job XOR version_bits with job 0x20000000, bits in the mask.

    So both readings of the sixth submit parameter reproduce the hashed version there, and the
    header's first 4 bytes are version_used little-endian.
    """
    import csv

    with (realdata_dir / "lv06_bm1366_proofs.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 32
    jobs = set()
    for row in rows:
        used = int(row["version_used"])
        bits = int(row["version_bits"], 16)
        job = used ^ bits
        jobs.add(job)
        assert bits & ~m.DEFAULT_VERSION_MASK == 0
        assert m.rolled_version(job, bits, m.DEFAULT_VERSION_MASK) == used
        assert m.rolled_version(job, bits, m.DEFAULT_VERSION_MASK, mode="bip310") == used
        assert bytes.fromhex(row["block_header_hex"])[:4] == used.to_bytes(4, "little")
    assert jobs == {0x20000000}
