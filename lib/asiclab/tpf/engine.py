"""Round-level SHA256d engine for Bitcoin block headers, compiled with numba.

Work per nonce exactly as miners organise it (FIPS 180-4 SHA-256; Nakamoto 2008 header layout):

* the **midstate**, SHA-256 of the first 64 header bytes, is computed once per job;
* the second block holds header bytes 64..79 (the last 4 bytes of the Merkle root, ``ntime``,
  ``nbits``, the nonce) and the padding. Its message words ``W0..W2`` do not depend on the nonce,
  so its **first 3 rounds are computed once per job**;
* the nonce-dependent rounds 4..64 of that block, then the **second SHA-256** over the 32-byte
  digest (one block).

Round numbering used throughout ``asiclab.tpf``: a *global round* ``r`` in ``1..128`` is round
``r`` of the nonce-dependent (second) block of the first SHA-256 for ``r <= 64`` and round
``r - 64`` of the second SHA-256 for ``r > 64``. The state after round ``r`` is the 8 working
words ``(a, b, c, d, e, f, g, h)`` after that round, before the final feed-forward addition.
States after rounds 1..3 do not depend on the nonce (they are the same for every nonce of a job).

The final hash's word ``H7`` equals ``IV7 + e`` after round 61 of the second SHA-256 (``h`` after
round 64 is ``e`` after round 61), so the first target check (``H7`` holds the top 32 bits of the
256-bit little-endian hash value) can be made after 61 rounds: the standard early-out.

Every kernel is compiled with ``numba.njit(cache=True)``, so tests and notebooks pay compilation
once per machine. Batch kernels run over nonces with ``prange`` (all cores numba is given).

References
----------
NIST FIPS 180-4, "Secure Hash Standard (SHS)", 2015, doi:10.6028/NIST.FIPS.180-4.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from asiclab import AsiclabError
from asiclab.protocol import mining as mn

__all__ = [
    "IV",
    "MODES",
    "N_ROUNDS",
    "EngineError",
    "Job",
    "K",
    "RoundCount",
    "count_rounds",
    "difficulties",
    "digests",
    "final_hash",
    "hash_values_float",
    "hashlib_loop",
    "meets_target",
    "random_prefixes",
    "round_label",
    "states_after",
    "target_from_probability",
]

N_ROUNDS = 128
"""Global rounds per nonce in the nonce-dependent work: 64 (block 2) + 64 (second SHA-256)."""

_M = np.uint64(0xFFFFFFFF)

K = np.array([
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
], dtype=np.uint64)
"""SHA-256 round constants (FIPS 180-4 §4.2.2)."""

IV = np.array([0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
               0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19], dtype=np.uint64)
"""SHA-256 initial hash value (FIPS 180-4 §5.3.3)."""

MODES = ("naive", "midstate", "precomputed", "h7_early_out")
"""Ways of computing SHA256d per nonce whose rounds :func:`count_rounds` counts."""

_MODE_INDEX = {m: i for i, m in enumerate(MODES)}


class EngineError(AsiclabError):
    """Bad input to the SHA-256 engine (header length, round index, nonce array)."""


# --------------------------------------------------------------------------- numba primitives


@nb.njit(cache=True, inline="always")
def _rotr(x, n):  # pragma: no cover - compiled
    return ((x >> np.uint64(n)) | (x << np.uint64(32 - n))) & _M


@nb.njit(cache=True, inline="always")
def _round(a, b, c, d, e, f, g, h, kw):  # pragma: no cover - compiled
    s1 = _rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)
    ch = (e & f) ^ ((~e & _M) & g)
    t1 = (h + s1 + ch + kw) & _M
    s0 = _rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)
    maj = (a & b) ^ (a & c) ^ (b & c)
    t2 = (s0 + maj) & _M
    return (t1 + t2) & _M, a, b, c, (d + t1) & _M, e, f, g


@nb.njit(cache=True, inline="always")
def _expand(w, start, stop):  # pragma: no cover - compiled
    for t in range(start, stop):
        x = w[t - 15]
        y = w[t - 2]
        s0 = _rotr(x, 7) ^ _rotr(x, 18) ^ (x >> np.uint64(3))
        s1 = _rotr(y, 17) ^ _rotr(y, 19) ^ (y >> np.uint64(10))
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) & _M


@nb.njit(cache=True)
def _compress_full(state, w):  # pragma: no cover - compiled
    """One full 64-round compression of ``w[0:16]`` from ``state`` (in place); 64 rounds."""
    _expand(w, 16, 64)
    a, b, c, d = state[0], state[1], state[2], state[3]
    e, f, g, h = state[4], state[5], state[6], state[7]
    for t in range(64):
        a, b, c, d, e, f, g, h = _round(a, b, c, d, e, f, g, h, (K[t] + w[t]) & _M)
    state[0] = (state[0] + a) & _M
    state[1] = (state[1] + b) & _M
    state[2] = (state[2] + c) & _M
    state[3] = (state[3] + d) & _M
    state[4] = (state[4] + e) & _M
    state[5] = (state[5] + f) & _M
    state[6] = (state[6] + g) & _M
    state[7] = (state[7] + h) & _M
    return 64


@nb.njit(cache=True, inline="always")
def _bswap(x):  # pragma: no cover - compiled
    return (((x & np.uint64(0xFF)) << np.uint64(24)) | ((x & np.uint64(0xFF00)) << np.uint64(8))
            | ((x >> np.uint64(8)) & np.uint64(0xFF00)) | ((x >> np.uint64(24)) & np.uint64(0xFF)))


@nb.njit(cache=True, inline="always")
def _block2_words(w, tail, nonce):  # pragma: no cover - compiled
    w[0] = tail[0]
    w[1] = tail[1]
    w[2] = tail[2]
    w[3] = _bswap(np.uint64(nonce))
    w[4] = np.uint64(0x80000000)
    for t in range(5, 15):
        w[t] = np.uint64(0)
    w[15] = np.uint64(640)


@nb.njit(cache=True, inline="always")
def _hash2_words(w, d):  # pragma: no cover - compiled
    for t in range(8):
        w[t] = d[t]
    w[8] = np.uint64(0x80000000)
    for t in range(9, 15):
        w[t] = np.uint64(0)
    w[15] = np.uint64(256)


_LANES = 64
"""Nonces hashed side by side by :func:`_hash_kernel` (the inner lane loops vectorise: SIMD)."""

_K32 = K.astype(np.uint32)
_IV32 = IV.astype(np.uint32)


@nb.njit(cache=True, inline="always")
def _rotr32(x, n):  # pragma: no cover - compiled
    return (x >> np.uint32(n)) | (x << np.uint32(32 - n))


@nb.njit(cache=True, parallel=True)
def _hash_kernel(mid, st3, tail, nonces, out):  # pragma: no cover - compiled
    """Final SHA256d words of every nonce (midstate + 3 precomputed rounds), on uint32 lanes.

    ``nonces.size`` must be a multiple of :data:`_LANES`. Each block of lanes is hashed with
    the round loop outside and the lane loop inside, which LLVM turns into SIMD code.
    """
    n_blocks = nonces.shape[0] // _LANES
    per_chunk = 64
    n_chunks = (n_blocks + per_chunk - 1) // per_chunk
    for ci in nb.prange(n_chunks):
        w = np.empty((64, _LANES), dtype=np.uint32)
        s = np.empty((8, _LANES), dtype=np.uint32)
        for blk in range(ci * per_chunk, min(n_blocks, (ci + 1) * per_chunk)):
            base = blk * _LANES
            for lane in range(_LANES):
                x = nonces[base + lane]
                w[0, lane] = tail[0]
                w[1, lane] = tail[1]
                w[2, lane] = tail[2]
                w[3, lane] = (((x & np.uint32(0xFF)) << np.uint32(24))
                              | ((x & np.uint32(0xFF00)) << np.uint32(8))
                              | ((x >> np.uint32(8)) & np.uint32(0xFF00)) | (x >> np.uint32(24)))
                w[4, lane] = np.uint32(0x80000000)
                for t in range(5, 15):
                    w[t, lane] = np.uint32(0)
                w[15, lane] = np.uint32(640)
            for stage in range(2):
                for t in range(16, 64):
                    for lane in range(_LANES):
                        x = w[t - 15, lane]
                        y = w[t - 2, lane]
                        w[t, lane] = (w[t - 16, lane]
                                      + (_rotr32(x, 7) ^ _rotr32(x, 18) ^ (x >> np.uint32(3)))
                                      + w[t - 7, lane]
                                      + (_rotr32(y, 17) ^ _rotr32(y, 19) ^ (y >> np.uint32(10))))
                for j in range(8):
                    for lane in range(_LANES):
                        s[j, lane] = st3[j] if stage == 0 else _IV32[j]
                for t in range(3 if stage == 0 else 0, 64):
                    k = _K32[t]
                    for lane in range(_LANES):
                        a = s[0, lane]
                        b = s[1, lane]
                        c = s[2, lane]
                        e = s[4, lane]
                        f = s[5, lane]
                        g = s[6, lane]
                        t1 = (s[7, lane] + (_rotr32(e, 6) ^ _rotr32(e, 11) ^ _rotr32(e, 25))
                              + ((e & f) ^ (~e & g)) + k + w[t, lane])
                        t2 = ((_rotr32(a, 2) ^ _rotr32(a, 13) ^ _rotr32(a, 22))
                              + ((a & b) ^ (a & c) ^ (b & c)))
                        s[7, lane] = g
                        s[6, lane] = f
                        s[5, lane] = e
                        s[4, lane] = s[3, lane] + t1
                        s[3, lane] = c
                        s[2, lane] = b
                        s[1, lane] = a
                        s[0, lane] = t1 + t2
                if stage == 0:  # feed-forward: the first digest is the second hash's message
                    for j in range(8):
                        for lane in range(_LANES):
                            w[j, lane] = s[j, lane] + mid[j]
                    for lane in range(_LANES):
                        w[8, lane] = np.uint32(0x80000000)
                        for t in range(9, 15):
                            w[t, lane] = np.uint32(0)
                        w[15, lane] = np.uint32(256)
            for j in range(8):
                for lane in range(_LANES):
                    out[base + lane, j] = s[j, lane] + _IV32[j]


@nb.njit(cache=True, parallel=True)
def _states_kernel(mid, st3, tail, nonces, slot, last, out, final):  # pragma: no cover
    """States after the global rounds with ``slot[r] >= 0`` (written to ``out[:, slot[r]]``).

    Computes only up to global round ``last``; if ``last == 128`` also the final hash words.
    """
    n = nonces.shape[0]
    chunk = 4096
    n_chunks = (n + chunk - 1) // chunk
    for ci in nb.prange(n_chunks):
        w = np.empty(64, dtype=np.uint64)
        d = np.empty(8, dtype=np.uint64)
        for i in range(ci * chunk, min(n, (ci + 1) * chunk)):
            for r in range(1, 4):  # nonce-independent rounds: precomputed state
                if r <= last and slot[r] >= 0:
                    for j in range(8):
                        out[i, slot[r], j] = st3[8 * r + j - 8]
            _block2_words(w, tail, nonces[i])
            _expand(w, 16, min(64, max(16, last)))
            a, b, c, dd = st3[16], st3[17], st3[18], st3[19]
            e, f, g, h = st3[20], st3[21], st3[22], st3[23]
            for t in range(3, min(64, last)):
                a, b, c, dd, e, f, g, h = _round(a, b, c, dd, e, f, g, h, (K[t] + w[t]) & _M)
                s = slot[t + 1]
                if s >= 0:
                    out[i, s, 0] = a
                    out[i, s, 1] = b
                    out[i, s, 2] = c
                    out[i, s, 3] = dd
                    out[i, s, 4] = e
                    out[i, s, 5] = f
                    out[i, s, 6] = g
                    out[i, s, 7] = h
            if last <= 64:
                continue
            d[0] = (mid[0] + a) & _M
            d[1] = (mid[1] + b) & _M
            d[2] = (mid[2] + c) & _M
            d[3] = (mid[3] + dd) & _M
            d[4] = (mid[4] + e) & _M
            d[5] = (mid[5] + f) & _M
            d[6] = (mid[6] + g) & _M
            d[7] = (mid[7] + h) & _M
            _hash2_words(w, d)
            _expand(w, 16, min(64, max(16, last - 64)))
            a, b, c, dd = IV[0], IV[1], IV[2], IV[3]
            e, f, g, h = IV[4], IV[5], IV[6], IV[7]
            for t in range(0, last - 64):
                a, b, c, dd, e, f, g, h = _round(a, b, c, dd, e, f, g, h, (K[t] + w[t]) & _M)
                s = slot[t + 65]
                if s >= 0:
                    out[i, s, 0] = a
                    out[i, s, 1] = b
                    out[i, s, 2] = c
                    out[i, s, 3] = dd
                    out[i, s, 4] = e
                    out[i, s, 5] = f
                    out[i, s, 6] = g
                    out[i, s, 7] = h
            if last == 128:
                final[i, 0] = (IV[0] + a) & _M
                final[i, 1] = (IV[1] + b) & _M
                final[i, 2] = (IV[2] + c) & _M
                final[i, 3] = (IV[3] + dd) & _M
                final[i, 4] = (IV[4] + e) & _M
                final[i, 5] = (IV[5] + f) & _M
                final[i, 6] = (IV[6] + g) & _M
                final[i, 7] = (IV[7] + h) & _M


@nb.njit(cache=True)
def _count_kernel(mode, block1, tail, nonces, h7_max, out, passed):  # pragma: no cover
    """SHA256d of every nonce computed in ``mode``, counting each executed round.

    ``mode``: 0 naive (3 compressions of 64 rounds per nonce), 1 midstate (block 1 once per
    job), 2 precomputed (also the 3 nonce-independent rounds of block 2 once per job),
    3 h7_early_out (as 2, and the second SHA-256 stops after 61 rounds unless the top word of
    the hash value, ``bswap(H7)``, is ``<= h7_max``). Returns the total number of rounds.
    In mode 3, ``out`` holds the full hash only where ``passed``; elsewhere it is zero.
    """
    rounds = 0
    w = np.empty(64, dtype=np.uint64)
    st = np.empty(8, dtype=np.uint64)
    mid = np.empty(8, dtype=np.uint64)
    d = np.empty(8, dtype=np.uint64)
    st3 = np.empty(8, dtype=np.uint64)
    if mode >= 1:
        for j in range(8):
            mid[j] = IV[j]
        for t in range(16):
            w[t] = block1[t]
        rounds += _compress_full(mid, w)
    if mode >= 2:
        _block2_words(w, tail, 0)
        a, b, c, dd = mid[0], mid[1], mid[2], mid[3]
        e, f, g, h = mid[4], mid[5], mid[6], mid[7]
        for t in range(3):
            a, b, c, dd, e, f, g, h = _round(a, b, c, dd, e, f, g, h, (K[t] + w[t]) & _M)
            rounds += 1
        st3[0], st3[1], st3[2], st3[3] = a, b, c, dd
        st3[4], st3[5], st3[6], st3[7] = e, f, g, h
    for i in range(nonces.shape[0]):
        if mode == 0:
            for j in range(8):
                mid[j] = IV[j]
            for t in range(16):
                w[t] = block1[t]
            rounds += _compress_full(mid, w)
        if mode <= 1:
            for j in range(8):
                st[j] = mid[j]
            _block2_words(w, tail, nonces[i])
            rounds += _compress_full(st, w)
            for j in range(8):
                d[j] = st[j]
        else:
            _block2_words(w, tail, nonces[i])
            _expand(w, 16, 64)
            a, b, c, dd = st3[0], st3[1], st3[2], st3[3]
            e, f, g, h = st3[4], st3[5], st3[6], st3[7]
            for t in range(3, 64):
                a, b, c, dd, e, f, g, h = _round(a, b, c, dd, e, f, g, h, (K[t] + w[t]) & _M)
                rounds += 1
            d[0] = (mid[0] + a) & _M
            d[1] = (mid[1] + b) & _M
            d[2] = (mid[2] + c) & _M
            d[3] = (mid[3] + dd) & _M
            d[4] = (mid[4] + e) & _M
            d[5] = (mid[5] + f) & _M
            d[6] = (mid[6] + g) & _M
            d[7] = (mid[7] + h) & _M
        _hash2_words(w, d)
        if mode <= 2:
            for j in range(8):
                st[j] = IV[j]
            rounds += _compress_full(st, w)
            for j in range(8):
                out[i, j] = st[j]
            passed[i] = True
            continue
        _expand(w, 16, 64)
        a, b, c, dd = IV[0], IV[1], IV[2], IV[3]
        e, f, g, h = IV[4], IV[5], IV[6], IV[7]
        for t in range(61):
            a, b, c, dd, e, f, g, h = _round(a, b, c, dd, e, f, g, h, (K[t] + w[t]) & _M)
            rounds += 1
        h7 = (IV[7] + e) & _M  # h after round 64 = e after round 61
        if _bswap(h7) > h7_max:
            passed[i] = False
            for j in range(8):
                out[i, j] = 0
            continue
        for t in range(61, 64):
            a, b, c, dd, e, f, g, h = _round(a, b, c, dd, e, f, g, h, (K[t] + w[t]) & _M)
            rounds += 1
        passed[i] = True
        out[i, 0] = (IV[0] + a) & _M
        out[i, 1] = (IV[1] + b) & _M
        out[i, 2] = (IV[2] + c) & _M
        out[i, 3] = (IV[3] + dd) & _M
        out[i, 4] = (IV[4] + e) & _M
        out[i, 5] = (IV[5] + f) & _M
        out[i, 6] = (IV[6] + g) & _M
        out[i, 7] = (IV[7] + h) & _M
    return rounds


@nb.njit(cache=True)
def _job_states(block1, tail):  # pragma: no cover - compiled
    """Midstate (8 words) and the states after rounds 1, 2, 3 of block 2 (3 x 8 words)."""
    mid = IV.copy()
    w = np.empty(64, dtype=np.uint64)
    for t in range(16):
        w[t] = block1[t]
    _compress_full(mid, w)
    _block2_words(w, tail, 0)
    st = np.empty(24, dtype=np.uint64)
    a, b, c, dd = mid[0], mid[1], mid[2], mid[3]
    e, f, g, h = mid[4], mid[5], mid[6], mid[7]
    for t in range(3):
        a, b, c, dd, e, f, g, h = _round(a, b, c, dd, e, f, g, h, (K[t] + w[t]) & _M)
        st[8 * t + 0], st[8 * t + 1], st[8 * t + 2], st[8 * t + 3] = a, b, c, dd
        st[8 * t + 4], st[8 * t + 5], st[8 * t + 6], st[8 * t + 7] = e, f, g, h
    return mid, st


@nb.njit(cache=True, parallel=True)
def _meets_kernel(words, target_words, out):  # pragma: no cover - compiled
    """``hash value <= target`` for every row of final words (exact, on 32-bit limbs)."""
    for i in nb.prange(words.shape[0]):
        ok = True
        for j in range(7, -1, -1):  # most significant limb = bswap(H7)
            v = _bswap(np.uint64(words[i, j]))
            if v < target_words[j]:
                break
            if v > target_words[j]:
                ok = False
                break
        out[i] = ok


# --------------------------------------------------------------------------- Python API


def _words_be(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype=">u4").astype(np.uint64)


@dataclass(frozen=True)
class Job:
    """One mining job: the 76-byte header prefix and what is computed once for it.

    Attributes
    ----------
    prefix : bytes
        Header bytes 0..75 (version .. nbits), as
        :func:`asiclab.protocol.mining.header_prefix` builds.
    midstate : numpy.ndarray
        SHA-256 state after the first 64 header bytes [8 x uint32 values, in uint64].
    tail : numpy.ndarray
        Words ``W0..W2`` of block 2 (header bytes 64..75) [3 values].
    pre : numpy.ndarray
        States after rounds 1, 2, 3 of block 2 (nonce-independent) [24 values].
    """

    prefix: bytes
    midstate: np.ndarray
    tail: np.ndarray
    pre: np.ndarray

    @classmethod
    def from_prefix(cls, prefix: bytes | str) -> Job:
        """Build a job from the 76-byte header prefix (or an 80-byte header: nonce ignored)."""
        raw = bytes.fromhex(prefix) if isinstance(prefix, str) else bytes(prefix)
        if len(raw) == 80:
            raw = raw[:76]
        if len(raw) != 76:
            raise EngineError(f"header prefix: expected 76 (or 80) bytes, got {len(raw)}")
        block1 = _words_be(raw[:64])
        tail = _words_be(raw[64:76])
        mid, pre = _job_states(block1, tail)
        return cls(raw, mid, tail, pre)

    @property
    def block1(self) -> np.ndarray:
        """Message words of the first 64 header bytes [16 values]."""
        return _words_be(self.prefix[:64])

    @property
    def st3(self) -> np.ndarray:
        """State after the 3 nonce-independent rounds of block 2 [8 values]."""
        return self.pre[16:24]


def _nonces(nonces: object) -> np.ndarray:
    arr = np.asarray(nonces)
    if arr.ndim != 1:
        raise EngineError(f"nonces: expected a 1-d array, got shape {arr.shape}")
    if arr.size and (not np.issubdtype(arr.dtype, np.integer)
                     or arr.min() < 0 or arr.max() > 0xFFFFFFFF):
        raise EngineError("nonces: expected integers in 0..0xFFFFFFFF")
    return np.ascontiguousarray(arr, dtype=np.uint32)


def final_hash(job: Job, nonces: object) -> np.ndarray:
    """Final SHA256d words ``H0..H7`` for a batch of nonces.

    Parameters
    ----------
    job : Job
        The job (header prefix).
    nonces : array of int
        Nonces as u32 values (``header[76:80] == nonce.to_bytes(4, "little")``).

    Returns
    -------
    numpy.ndarray
        ``(n, 8)`` uint32; the digest bytes are the big-endian bytes of ``H0..H7``.
    """
    n = _nonces(nonces)
    pad = (-n.size) % _LANES
    padded = np.concatenate([n, np.zeros(pad, dtype=np.uint32)]) if pad else n
    out = np.empty((padded.size, 8), dtype=np.uint32)
    _hash_kernel(job.midstate.astype(np.uint32), job.st3.astype(np.uint32),
                 job.tail.astype(np.uint32), padded, out)
    return out[: n.size] if pad else out


def digests(words: np.ndarray) -> list[bytes]:
    """Raw 32-byte digests (as :func:`asiclab.protocol.mining.sha256d` returns) from final words."""
    be = np.asarray(words, dtype=np.uint32).astype(">u4")
    return [row.tobytes() for row in be]


def hash_values_float(words: np.ndarray) -> np.ndarray:
    """The 256-bit little-endian hash values as float64 (relative error < 1e-15)."""
    w = np.asarray(words, dtype=np.uint32)
    limbs = w.byteswap().astype(np.float64)  # limb j = bswap(H_j), weight 2**(32 j)
    weights = np.float64(2.0) ** (32 * np.arange(8))
    return limbs @ weights


def difficulties(words: np.ndarray) -> np.ndarray:
    """Achieved share difficulty ``DIFF1_TARGET / hash value`` of final words [1]."""
    v = hash_values_float(words)
    with np.errstate(divide="ignore"):
        return np.where(v > 0, float(mn.DIFF1_TARGET) / np.where(v > 0, v, 1.0), math.inf)


def _target_limbs(target: int) -> np.ndarray:
    if not 0 <= target <= mn.MAX_TARGET:
        raise EngineError(f"target: must be in 0..2**256-1, got {target}")
    return np.array([(target >> (32 * j)) & 0xFFFFFFFF for j in range(8)], dtype=np.uint64)


def meets_target(words: np.ndarray, target: int) -> np.ndarray:
    """Exact ``hash value <= target`` for every row of final words (bool array)."""
    w = np.ascontiguousarray(words, dtype=np.uint32)
    out = np.empty(w.shape[0], dtype=np.bool_)
    _meets_kernel(w, _target_limbs(int(target)), out)
    return out


def target_from_probability(p: float) -> int:
    """Target met by a uniformly random hash with probability ``p``: ``floor(p 2**256) - 1``."""
    if not 0 < p <= 1:
        raise EngineError(f"probability: must be in (0, 1], got {p}")
    from fractions import Fraction

    return max(0, math.floor(Fraction(p) * 2**256) - 1)


def round_label(r: int) -> str:
    """Human name of a global round: ``"SHA#1 r5"`` (block 2 of hash 1) or ``"SHA#2 r61"``."""
    if not 1 <= r <= N_ROUNDS:
        raise EngineError(f"round: expected 1..{N_ROUNDS}, got {r}")
    return f"SHA#1 r{r}" if r <= 64 else f"SHA#2 r{r - 64}"


def states_after(job: Job, nonces: object, rounds: object, *, with_hash: bool = False
                 ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The 8-word state after each requested global round, for a batch of nonces.

    Parameters
    ----------
    job : Job
        The job.
    nonces : array of int
        Nonces (u32 values).
    rounds : int or sequence of int
        Global rounds in ``1..128`` (see the module docstring).
    with_hash : bool
        Also return the final hash words (computes all 128 rounds).

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, numpy.ndarray)
        ``(n, len(rounds), 8)`` uint32 states ``(a..h)``, in the order of ``rounds``; with
        ``with_hash`` also the ``(n, 8)`` final words.
    """
    n = _nonces(nonces)
    rs = [int(r) for r in np.atleast_1d(np.asarray(rounds))]
    if not rs:
        raise EngineError("rounds: give at least one round")
    if any(not 1 <= r <= N_ROUNDS for r in rs) or len(set(rs)) != len(rs):
        raise EngineError(f"rounds: expected distinct values in 1..{N_ROUNDS}, got {rs}")
    slot = np.full(N_ROUNDS + 1, -1, dtype=np.int64)
    for i, r in enumerate(rs):
        slot[r] = i
    last = N_ROUNDS if with_hash else max(rs)
    out = np.empty((n.size, len(rs), 8), dtype=np.uint32)
    final = np.zeros((n.size if last == N_ROUNDS else 0, 8), dtype=np.uint32)
    _states_kernel(job.midstate, job.pre, job.tail, n, slot, last, out, final)
    if with_hash:
        return out, final
    return out


@dataclass(frozen=True)
class RoundCount:
    """Rounds counted by :func:`count_rounds` for one mode.

    Attributes
    ----------
    mode : str
        One of :data:`MODES`.
    n_nonces : int
        Nonces hashed.
    total_rounds : int
        SHA-256 compression rounds executed, counted in the kernel.
    per_nonce : float
        ``total_rounds / n_nonces`` (the once-per-job work amortised over this batch).
    per_nonce_asymptotic : float
        Per nonce with the once-per-job work excluded (``n_nonces -> inf``).
    all_correct : bool
        Every hash the mode completed equals hashlib's, and (early-out) every nonce whose hash
        meets the target was completed.
    """

    mode: str
    n_nonces: int
    total_rounds: int
    per_nonce: float
    per_nonce_asymptotic: float
    all_correct: bool


def count_rounds(job: Job, nonces: object, mode: str, *, target: int = mn.DIFF1_TARGET
                 ) -> RoundCount:
    """Compute SHA256d of every nonce in ``mode``, counting the rounds the kernel executes.

    The hashes are checked against ``hashlib`` (so the count belongs to a correct computation).

    Parameters
    ----------
    job : Job
        The job.
    nonces : array of int
        Nonces (at least 2, so the once-per-job work can be separated from the per-nonce work).
    mode : str
        One of :data:`MODES`.
    target : int
        Target of the first check in ``"h7_early_out"`` (default: difficulty 1).

    Returns
    -------
    RoundCount
    """
    if mode not in _MODE_INDEX:
        raise EngineError(f"mode: expected one of {MODES}, got {mode!r}")
    n = _nonces(nonces)
    if n.size < 2:
        raise EngineError("count_rounds: give at least 2 nonces")
    h7_max = target >> 224
    out = np.empty((n.size, 8), dtype=np.uint64)
    passed = np.empty(n.size, dtype=np.bool_)
    args = (job.block1, job.tail)
    total = int(_count_kernel(_MODE_INDEX[mode], *args, n, np.uint64(h7_max), out, passed))
    # the once-per-job part, counted by running the same kernel on no nonce at all
    empty = np.empty(0, dtype=np.uint32)
    once = int(_count_kernel(_MODE_INDEX[mode], *args, empty, np.uint64(h7_max),
                             np.empty((0, 8), dtype=np.uint64), np.empty(0, dtype=np.bool_)))
    words = out.astype(np.uint32)
    ok = True
    for i in range(n.size):
        ref = mn.sha256d(job.prefix + int(n[i]).to_bytes(4, "little"))
        if passed[i]:
            ok &= digests(words[i : i + 1])[0] == ref
        else:
            ok &= mn.hash_to_int(ref) > target
    return RoundCount(mode, int(n.size), total, total / n.size,
                      (total - once) / n.size, bool(ok))


def random_prefixes(n_jobs: int, seed: int = 0) -> list[bytes]:
    """Real-looking random 76-byte header prefixes (version 0x20000000, recent-style fields).

    Version ``0x20000000`` with random BIP 320 rolled bits, a previous-block hash with 8 leading
    zero bytes (display order), a random Merkle root, a 2023-2026 ``ntime`` and a mainnet-like
    ``nbits`` (``0x17xxxxxx``). Built with :func:`asiclab.protocol.mining.header_prefix`.
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(n_jobs)):
        version = 0x20000000 | (int(rng.integers(0, 1 << 16)) << 13)
        prev = rng.bytes(24) + bytes(8)  # display order ends ... header order: zeros at the end
        prev_notify = mn.swap_words(prev)
        root = rng.bytes(32)
        ntime = int(rng.integers(1_672_531_200, 1_767_225_600))
        nbits = 0x17000000 | int(rng.integers(0x010000, 0x7FFFFF))
        out.append(mn.header_prefix(version, prev_notify, root, ntime, nbits))
    return out


def hashlib_loop(prefix: bytes, nonces: object) -> list[bytes]:
    """Reference: SHA256d of every nonce with ``hashlib`` (one ``sha256d`` call per header)."""
    sha = hashlib.sha256
    return [sha(sha(prefix + int(x).to_bytes(4, "little")).digest()).digest()
            for x in _nonces(nonces)]
