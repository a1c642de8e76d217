"""Pure Bitcoin mining primitives: SHA256d, coinbase, Merkle root, headers, difficulty.

Everything here is a pure function of its arguments (no I/O, no global state). Hex strings are
accepted wherever the Stratum v1 protocol transmits hex, with the byte orders of the protocol:

* ``version``, ``nbits``, ``ntime`` are big-endian hex as in ``mining.notify`` (or ints);
* ``nonce`` is the big-endian hex of ``mining.submit`` (or the int it denotes); the header
  holds its little-endian bytes, so ``header[76:80] == nonce.to_bytes(4, "little")``;
* ``prevhash`` is the ``mining.notify`` field, in which every 4-byte word of the header's
  previous-block-hash bytes is byte-swapped (:func:`swap_words` converts either way);
* Merkle roots and hashes given as :class:`bytes` are the raw SHA256d output ("as hashed",
  i.e. the internal byte order); :func:`hash_to_display` gives the familiar reversed form.

Version rolling (BIP 310) -- which semantics is implemented
----------------------------------------------------------
``mining.submit`` may carry a sixth parameter ``version_bits``. Two readings exist:

* ``"xor"`` (the default here): ``version_bits = rolled_version XOR job_version``, hence
  ``rolled_version = job_version XOR version_bits``. This is what ``protocols.md`` states for the
  Bitaxe firmware and what the capture schema stores in ``version_bits``.
* ``"bip310"``: ``rolled_version = (job_version & ~mask) | (version_bits & mask)``, the formula
  of BIP 310 for the pool side.

The two agree whenever the job version has no bit inside the mask and ``version_bits`` has no bit
outside it, which is the case for the ESP-Miner vectors (job ``0x20000004``, mask ``0x00ffff00``)
and for every share of the real LV06 log (job ``0x20000000``, mask ``0x1fffe000``; checked in the
tests). :func:`rolled_version` implements both; the default is ``"xor"`` and a ``mask`` given in
that mode is used to reject bits outside it.

References
----------
Bitcoin block hashing and compact targets: Nakamoto, S. (2008), "Bitcoin: A Peer-to-Peer
Electronic Cash System"; Bitcoin Core ``arith_uint256::SetCompact``/``GetCompact``.
Stratum v1 and BIP 310 (version rolling), BIP 320 (general-purpose version bits ``0x1fffe000``).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Sequence
from fractions import Fraction
from typing import Literal, NamedTuple

from asiclab import AsiclabError

__all__ = [
    "DEFAULT_VERSION_MASK",
    "DIFF1_TARGET",
    "MAX_TARGET",
    "MiningError",
    "NonceHit",
    "ShareResult",
    "build_coinbase",
    "build_header",
    "difficulty_from_nbits",
    "difficulty_from_target",
    "find_nonce",
    "hash_to_display",
    "hash_to_int",
    "header_prefix",
    "increment_version",
    "iter_nonces",
    "meets_difficulty",
    "merkle_root",
    "merkle_root_from_coinbase",
    "nbits_from_target",
    "rolled_version",
    "sha256d",
    "share_difficulty",
    "stratum_header",
    "swap_words",
    "target_from_difficulty",
    "target_from_nbits",
    "verify_share",
    "version_bits_from_rolled",
]

DIFF1_TARGET: int = 0xFFFF * 2**208
"""Target of difficulty 1 (pool difficulty, "pdiff"): ``0xFFFF * 2**208``."""

MAX_TARGET: int = 2**256 - 1
"""Largest 256-bit target (every hash meets it)."""

DEFAULT_VERSION_MASK: int = 0x1FFFE000
"""BIP 320 general-purpose version bits; the mask a Stratum pool usually grants (BIP 310)."""

_U32 = 0xFFFFFFFF
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_HEX_U32 = re.compile(r"[0-9a-fA-F]{1,8}")

BytesLike = bytes | bytearray | memoryview
HexOrBytes = str | BytesLike
IntOrHex = int | str


class MiningError(AsiclabError):
    """Bad input to a mining primitive (malformed hex, wrong length, out-of-range value)."""


class ShareResult(NamedTuple):
    """Result of :func:`verify_share`.

    Attributes
    ----------
    difficulty : float
        Achieved share difficulty ``DIFF1_TARGET / int.from_bytes(hash, "little")`` [1].
    hash : bytes
        SHA256d of the 80-byte header, raw (internal) byte order [32 bytes].
    header : bytes
        The 80-byte header that was hashed.
    """

    difficulty: float
    hash: bytes
    header: bytes


class NonceHit(NamedTuple):
    """A nonce found by :func:`iter_nonces` / :func:`find_nonce`.

    Attributes
    ----------
    nonce : int
        The nonce as the u32 value of its big-endian submit hex (``f"{nonce:08x}"``) [1].
    difficulty : float
        Achieved share difficulty [1].
    hash : bytes
        SHA256d of the header, raw byte order [32 bytes].
    """

    nonce: int
    difficulty: float
    hash: bytes


# --------------------------------------------------------------------------- input helpers


def _to_bytes(value: HexOrBytes, name: str, length: int | None = None) -> bytes:
    """Convert hex text or a bytes-like object to :class:`bytes`, checking the length."""
    if isinstance(value, str):
        text = value.strip()
        if text[:2].lower() == "0x":
            text = text[2:]
        if len(text) % 2:
            raise MiningError(f"{name}: odd number of hex digits: {value[:80]!r}")
        if not _HEX.fullmatch(text):
            raise MiningError(f"{name}: not valid hex: {value[:80]!r}")
        out = bytes.fromhex(text)
    elif isinstance(value, bytes | bytearray | memoryview):
        out = bytes(value)
    else:
        raise MiningError(f"{name}: expected hex str or bytes, got {type(value).__name__}")
    if length is not None and len(out) != length:
        raise MiningError(f"{name}: expected {length} bytes, got {len(out)}")
    return out


def _to_u32(value: IntOrHex, name: str) -> int:
    """Convert an int or big-endian hex text (at most 8 digits) to a u32 value."""
    if isinstance(value, bool):
        raise MiningError(f"{name}: expected int or hex str, got bool")
    if isinstance(value, int):
        out = value
    elif isinstance(value, str):
        text = value.strip()
        if text[:2].lower() == "0x":
            text = text[2:]
        if not _HEX_U32.fullmatch(text):
            raise MiningError(f"{name}: expected 1..8 hex digits, got {value[:80]!r}")
        out = int(text, 16)
    else:
        try:  # numpy integers and similar
            out = int(value)  # type: ignore[call-overload]
        except (TypeError, ValueError) as exc:
            raise MiningError(f"{name}: expected int or hex str, got {value!r}") from exc
    if not 0 <= out <= _U32:
        raise MiningError(f"{name}: {out} is outside the u32 range 0..0xFFFFFFFF")
    return out


# --------------------------------------------------------------------------- hashing


def sha256d(data: BytesLike) -> bytes:
    """Double SHA-256, ``SHA256(SHA256(data))``.

    Parameters
    ----------
    data : bytes
        Message.

    Returns
    -------
    bytes
        Digest in raw byte order [32 bytes].
    """
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def hash_to_display(digest: HexOrBytes) -> str:
    """Hex of a raw hash in display order (byte-reversed, as block explorers show it)."""
    return _to_bytes(digest, "digest", 32)[::-1].hex()


def hash_to_int(digest: HexOrBytes) -> int:
    """The 256-bit number a raw hash denotes (little-endian), compared against targets."""
    return int.from_bytes(_to_bytes(digest, "digest", 32), "little")


def swap_words(data: HexOrBytes) -> bytes:
    """Byte-swap every 4-byte word (notify ``prevhash`` <-> header bytes; an involution).

    Parameters
    ----------
    data : str or bytes
        Data whose length is a multiple of 4 bytes.

    Returns
    -------
    bytes
        The data with each 4-byte word reversed.
    """
    raw = _to_bytes(data, "data")
    if len(raw) % 4:
        raise MiningError(f"data: length {len(raw)} is not a multiple of 4")
    return b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))


# --------------------------------------------------------------------------- coinbase / merkle


def build_coinbase(
    coinb1: HexOrBytes, extranonce1: HexOrBytes, extranonce2: HexOrBytes, coinb2: HexOrBytes
) -> bytes:
    """Assemble the coinbase transaction ``coinb1 + extranonce1 + extranonce2 + coinb2``.

    Parameters
    ----------
    coinb1, extranonce1, extranonce2, coinb2 : str or bytes
        The Stratum fields (hex or raw bytes).

    Returns
    -------
    bytes
        The serialised coinbase transaction.
    """
    return (
        _to_bytes(coinb1, "coinb1")
        + _to_bytes(extranonce1, "extranonce1")
        + _to_bytes(extranonce2, "extranonce2")
        + _to_bytes(coinb2, "coinb2")
    )


def merkle_root(coinbase_hash: HexOrBytes, branch: Sequence[HexOrBytes] = ()) -> bytes:
    """Merkle root from the coinbase hash and the Stratum branch.

    ``h = coinbase_hash``; for each branch entry ``b``: ``h = SHA256d(h || b)``.

    Parameters
    ----------
    coinbase_hash : str or bytes
        SHA256d of the coinbase, raw byte order [32 bytes].
    branch : sequence of str or bytes
        ``merkle_branch`` of ``mining.notify`` (each 32 bytes, as transmitted).

    Returns
    -------
    bytes
        Merkle root as it goes into the header [32 bytes].
    """
    if isinstance(branch, str | bytes):
        raise MiningError("merkle_branch: expected a sequence of hashes, not a single value")
    h = _to_bytes(coinbase_hash, "coinbase_hash", 32)
    for i, b in enumerate(branch):
        h = sha256d(h + _to_bytes(b, f"merkle_branch[{i}]", 32))
    return h


def merkle_root_from_coinbase(coinbase: HexOrBytes, branch: Sequence[HexOrBytes] = ()) -> bytes:
    """Merkle root from the serialised coinbase and the branch (see :func:`merkle_root`)."""
    return merkle_root(sha256d(_to_bytes(coinbase, "coinbase")), branch)


# --------------------------------------------------------------------------- version rolling


def rolled_version(
    job_version: IntOrHex,
    version_bits: IntOrHex,
    mask: IntOrHex | None = None,
    *,
    mode: Literal["xor", "bip310"] = "xor",
) -> int:
    """The block version a miner hashed, from the job version and the submit's ``version_bits``.

    Parameters
    ----------
    job_version : int or str
        ``version`` of ``mining.notify`` (int or big-endian hex).
    version_bits : int or str
        Sixth ``mining.submit`` parameter (int or big-endian hex); 0 when absent.
    mask : int or str, optional
        Negotiated version-rolling mask. In ``"xor"`` mode, if given, ``version_bits`` with bits
        outside the mask raise :class:`MiningError`; in ``"bip310"`` mode it defaults to
        :data:`DEFAULT_VERSION_MASK`.
    mode : {"xor", "bip310"}
        ``"xor"``: ``job_version ^ version_bits`` (protocols.md, Bitaxe firmware, capture schema).
        ``"bip310"``: ``(job_version & ~mask) | (version_bits & mask)``.

    Returns
    -------
    int
        Rolled version (u32).
    """
    job = _to_u32(job_version, "job_version")
    bits = _to_u32(version_bits, "version_bits")
    if mode == "xor":
        if mask is not None:
            m = _to_u32(mask, "mask")
            if bits & ~m & _U32:
                raise MiningError(
                    f"version_bits 0x{bits:08x} has bits outside the mask 0x{m:08x}"
                )
        return job ^ bits
    if mode == "bip310":
        m = DEFAULT_VERSION_MASK if mask is None else _to_u32(mask, "mask")
        return (job & ~m & _U32) | (bits & m)
    raise MiningError(f"mode: expected 'xor' or 'bip310', got {mode!r}")


def version_bits_from_rolled(job_version: IntOrHex, rolled: IntOrHex) -> int:
    """The submit's ``version_bits`` for a rolled version: ``rolled XOR job_version``."""
    return _to_u32(job_version, "job_version") ^ _to_u32(rolled, "rolled")


def _pext(value: int, mask: int) -> int:
    out, k = 0, 0
    for bit in range(32):
        if mask >> bit & 1:
            out |= (value >> bit & 1) << k
            k += 1
    return out


def _pdep(value: int, mask: int) -> int:
    out, k = 0, 0
    for bit in range(32):
        if mask >> bit & 1:
            out |= (value >> k & 1) << bit
            k += 1
    return out


def increment_version(version: IntOrHex, mask: IntOrHex) -> int:
    """Next rolled version: the bits under ``mask`` read as a counter, plus one (wrapping).

    Bits outside the mask are unchanged; for a contiguous mask this adds the mask's lowest bit
    with the carry confined to the mask.

    Parameters
    ----------
    version : int or str
        Current version (int or big-endian hex).
    mask : int or str
        Version-rolling mask (non-zero).

    Returns
    -------
    int
        The next version (u32).
    """
    v = _to_u32(version, "version")
    m = _to_u32(mask, "mask")
    if m == 0:
        raise MiningError("mask: must not be 0")
    width = m.bit_count()
    counter = (_pext(v, m) + 1) % (1 << width)
    return (v & ~m & _U32) | _pdep(counter, m)


# --------------------------------------------------------------------------- header


def header_prefix(
    version: IntOrHex,
    prevhash: HexOrBytes,
    merkle_root: HexOrBytes,
    ntime: IntOrHex,
    nbits: IntOrHex,
) -> bytes:
    """The first 76 bytes of the block header (everything but the nonce).

    Parameters
    ----------
    version : int or str
        Block version actually hashed (already rolled), int or big-endian hex.
    prevhash : str or bytes
        ``prevhash`` in ``mining.notify`` format (each 4-byte word byte-swapped) [32 bytes].
    merkle_root : str or bytes
        Merkle root as hashed (raw byte order) [32 bytes].
    ntime : int or str
        Block time [s since epoch], int or big-endian hex.
    nbits : int or str
        Compact network target, int or big-endian hex.

    Returns
    -------
    bytes
        76 bytes: version LE | prevhash (header order) | merkle root | ntime LE | nbits LE.
    """
    return (
        _to_u32(version, "version").to_bytes(4, "little")
        + swap_words(_to_bytes(prevhash, "prevhash", 32))
        + _to_bytes(merkle_root, "merkle_root", 32)
        + _to_u32(ntime, "ntime").to_bytes(4, "little")
        + _to_u32(nbits, "nbits").to_bytes(4, "little")
    )


def build_header(
    version: IntOrHex,
    prevhash: HexOrBytes,
    merkle_root: HexOrBytes,
    ntime: IntOrHex,
    nbits: IntOrHex,
    nonce: IntOrHex,
) -> bytes:
    """The 80-byte block header (see :func:`header_prefix` for the byte orders).

    Parameters
    ----------
    version, prevhash, merkle_root, ntime, nbits
        As in :func:`header_prefix`.
    nonce : int or str
        Nonce as the u32 value of the submitted big-endian hex (or that hex); stored LE.

    Returns
    -------
    bytes
        The 80-byte header.
    """
    return header_prefix(version, prevhash, merkle_root, ntime, nbits) + _to_u32(
        nonce, "nonce"
    ).to_bytes(4, "little")


def stratum_header(
    *,
    version: IntOrHex,
    prevhash: HexOrBytes,
    ntime: IntOrHex,
    nbits: IntOrHex,
    nonce: IntOrHex,
    coinb1: HexOrBytes | None = None,
    extranonce1: HexOrBytes | None = None,
    extranonce2: HexOrBytes | None = None,
    coinb2: HexOrBytes | None = None,
    merkle_branch: Sequence[HexOrBytes] = (),
    merkle_root: HexOrBytes | None = None,
    version_bits: IntOrHex = 0,
    version_mask: IntOrHex | None = None,
    version_mode: Literal["xor", "bip310"] = "xor",
) -> bytes:
    """The 80-byte header from Stratum job fields and a submission.

    Give either ``merkle_root`` or the four coinbase parts (plus ``merkle_branch``).

    Parameters
    ----------
    version : int or str
        Job version from ``mining.notify``.
    prevhash : str or bytes
        ``prevhash`` from ``mining.notify`` (words byte-swapped).
    ntime, nbits : int or str
        From ``mining.submit`` / ``mining.notify`` (big-endian hex or int).
    nonce : int or str
        From ``mining.submit`` (big-endian hex or its u32 value).
    coinb1, extranonce1, extranonce2, coinb2 : str or bytes, optional
        Coinbase parts.
    merkle_branch : sequence of str or bytes
        Merkle branch from ``mining.notify``.
    merkle_root : str or bytes, optional
        Merkle root as hashed, instead of the coinbase parts.
    version_bits : int or str
        Sixth ``mining.submit`` parameter; 0 = no rolling.
    version_mask : int or str, optional
        Negotiated mask (see :func:`rolled_version`).
    version_mode : {"xor", "bip310"}
        Version-rolling semantics (see :func:`rolled_version`).

    Returns
    -------
    bytes
        The 80-byte header.
    """
    parts = (coinb1, extranonce1, extranonce2, coinb2)
    if merkle_root is not None:
        if any(p is not None for p in parts) or len(merkle_branch):
            raise MiningError("give either merkle_root or the coinbase parts, not both")
        root = _to_bytes(merkle_root, "merkle_root", 32)
    else:
        if any(p is None for p in parts):
            raise MiningError(
                "coinb1, extranonce1, extranonce2 and coinb2 are all needed without merkle_root"
            )
        coinbase = build_coinbase(*parts)  # type: ignore[arg-type]
        root = merkle_root_from_coinbase(coinbase, merkle_branch)
    ver = rolled_version(version, version_bits, version_mask, mode=version_mode)
    return build_header(ver, prevhash, root, ntime, nbits, nonce)


# --------------------------------------------------------------------------- difficulty / target


def share_difficulty(digest: HexOrBytes) -> float:
    """Achieved share difficulty of a hash: ``DIFF1_TARGET / int.from_bytes(hash, "little")``.

    Parameters
    ----------
    digest : str or bytes
        SHA256d of the header, raw byte order [32 bytes].

    Returns
    -------
    float
        Difficulty [1]; ``inf`` for the all-zero hash.
    """
    h = hash_to_int(digest)
    return math.inf if h == 0 else DIFF1_TARGET / h


def _difficulty_fraction(difficulty: float | int | Fraction) -> Fraction:
    if isinstance(difficulty, bool):
        raise MiningError("difficulty: expected a number, got bool")
    try:
        value = float(difficulty)
    except (TypeError, ValueError) as exc:
        raise MiningError(f"difficulty: expected a number, got {difficulty!r}") from exc
    if not math.isfinite(value) or value <= 0:
        raise MiningError(f"difficulty: must be finite and > 0, got {difficulty!r}")
    return Fraction(difficulty)


def target_from_difficulty(difficulty: float | int | Fraction) -> int:
    """Largest hash value meeting a difficulty: ``floor(DIFF1_TARGET / difficulty)``.

    Computed exactly (the float is taken at its exact binary value) and capped at
    :data:`MAX_TARGET`, so ``hash_int <= target`` iff ``DIFF1_TARGET / hash_int >= difficulty``.

    Parameters
    ----------
    difficulty : float
        Difficulty [1], finite and > 0 (fractional values are legal, e.g. ``2**-24``).

    Returns
    -------
    int
        Target (256-bit integer).
    """
    d = _difficulty_fraction(difficulty)
    return min(MAX_TARGET, math.floor(Fraction(DIFF1_TARGET) / d))


def difficulty_from_target(target: int) -> float:
    """Difficulty of a target: ``DIFF1_TARGET / target`` [1]."""
    if isinstance(target, bool) or not isinstance(target, int):
        raise MiningError(f"target: expected int, got {type(target).__name__}")
    if not 0 < target <= MAX_TARGET:
        raise MiningError(f"target: must be in 1..2**256-1, got {target}")
    return DIFF1_TARGET / target


def meets_difficulty(digest: HexOrBytes, difficulty: float | int | Fraction) -> bool:
    """Whether a hash meets a difficulty, decided exactly on integers (no float rounding)."""
    d = _difficulty_fraction(difficulty)
    return hash_to_int(digest) * d <= DIFF1_TARGET


def target_from_nbits(nbits: IntOrHex) -> int:
    """Decode a compact target (``nbits``), as Bitcoin Core's ``SetCompact``.

    Parameters
    ----------
    nbits : int or str
        Compact target (u32 or big-endian hex, e.g. ``"1d00ffff"``).

    Returns
    -------
    int
        Target; ``0x1d00ffff`` gives :data:`DIFF1_TARGET`.

    Raises
    ------
    MiningError
        Negative (sign bit set with non-zero mantissa) or overflowing (> 256 bits) encodings.
    """
    bits = _to_u32(nbits, "nbits")
    size = bits >> 24
    word = bits & 0x007FFFFF
    if word and bits & 0x00800000:
        raise MiningError(f"nbits 0x{bits:08x}: negative compact target")
    target = word >> 8 * (3 - size) if size <= 3 else word << 8 * (size - 3)
    if target > MAX_TARGET:
        raise MiningError(f"nbits 0x{bits:08x}: target overflows 256 bits")
    return target


def nbits_from_target(target: int) -> int:
    """Encode a target in compact form, as Bitcoin Core's ``GetCompact`` (lossy: 3-byte mantissa).

    Parameters
    ----------
    target : int
        Target, 0..2**256-1.

    Returns
    -------
    int
        Compact ``nbits`` (u32).
    """
    if isinstance(target, bool) or not isinstance(target, int):
        raise MiningError(f"target: expected int, got {type(target).__name__}")
    if not 0 <= target <= MAX_TARGET:
        raise MiningError(f"target: must be in 0..2**256-1, got {target}")
    size = (target.bit_length() + 7) // 8
    compact = target << 8 * (3 - size) if size <= 3 else target >> 8 * (size - 3)
    if compact & 0x00800000:
        compact >>= 8
        size += 1
    return compact | size << 24


def difficulty_from_nbits(nbits: IntOrHex) -> float:
    """Network difficulty of a compact target: ``DIFF1_TARGET / target_from_nbits(nbits)`` [1]."""
    return difficulty_from_target(target_from_nbits(nbits))


# --------------------------------------------------------------------------- verification


def verify_share(
    *,
    version: IntOrHex,
    prevhash: HexOrBytes,
    ntime: IntOrHex,
    nbits: IntOrHex,
    nonce: IntOrHex,
    coinb1: HexOrBytes | None = None,
    extranonce1: HexOrBytes | None = None,
    extranonce2: HexOrBytes | None = None,
    coinb2: HexOrBytes | None = None,
    merkle_branch: Sequence[HexOrBytes] = (),
    merkle_root: HexOrBytes | None = None,
    version_bits: IntOrHex = 0,
    version_mask: IntOrHex | None = None,
    version_mode: Literal["xor", "bip310"] = "xor",
) -> ShareResult:
    """Rebuild the header of a submitted share and hash it.

    Parameters are those of :func:`stratum_header`.

    Returns
    -------
    ShareResult
        ``(difficulty, hash, header)``; ``difficulty, digest, _ = verify_share(...)``.
        Compare ``difficulty`` with the pool difficulty (or use :func:`meets_difficulty`).
    """
    header = stratum_header(
        version=version,
        prevhash=prevhash,
        ntime=ntime,
        nbits=nbits,
        nonce=nonce,
        coinb1=coinb1,
        extranonce1=extranonce1,
        extranonce2=extranonce2,
        coinb2=coinb2,
        merkle_branch=merkle_branch,
        merkle_root=merkle_root,
        version_bits=version_bits,
        version_mask=version_mask,
        version_mode=version_mode,
    )
    digest = sha256d(header)
    return ShareResult(share_difficulty(digest), digest, header)


# --------------------------------------------------------------------------- nonce search


def iter_nonces(
    prefix: HexOrBytes,
    difficulty: float | int | Fraction,
    *,
    start: int = 0,
    count: int | None = None,
) -> Iterator[NonceHit]:
    """Yield every nonce in ``[start, start + count)`` whose header meets ``difficulty``.

    A real (CPU) search: each candidate header ``prefix + nonce.to_bytes(4, "little")`` is hashed
    with SHA256d, reusing the SHA-256 state of the first 64 bytes. Expected hashes per hit:
    ``difficulty * 2**32``, so tiny difficulties (e.g. ``2**-24``: ~256 hashes) are cheap.

    Parameters
    ----------
    prefix : str or bytes
        First 76 header bytes (:func:`header_prefix`).
    difficulty : float
        Difficulty to meet [1], > 0.
    start : int
        First nonce (u32 value) to try.
    count : int, optional
        Number of nonces to try; default: up to ``2**32`` (the end of the nonce space).

    Yields
    ------
    NonceHit
        ``(nonce, difficulty, hash)`` in increasing nonce order.
    """
    raw = _to_bytes(prefix, "prefix", 76)
    target = target_from_difficulty(difficulty)
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= _U32:
        raise MiningError(f"start: expected a u32 int, got {start!r}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise MiningError(f"count: expected an int >= 0, got {count!r}")
    stop = 2**32 if count is None else min(start + count, 2**32)
    mid = hashlib.sha256(raw[:64])
    tail = raw[64:]
    sha256 = hashlib.sha256
    from_bytes = int.from_bytes
    for nonce in range(start, stop):
        h = mid.copy()
        h.update(tail + nonce.to_bytes(4, "little"))
        digest = sha256(h.digest()).digest()
        value = from_bytes(digest, "little")
        if value <= target:
            yield NonceHit(nonce, math.inf if value == 0 else DIFF1_TARGET / value, digest)


def find_nonce(
    prefix: HexOrBytes,
    difficulty: float | int | Fraction,
    *,
    start: int = 0,
    count: int | None = None,
) -> NonceHit | None:
    """First nonce from ``start`` whose header meets ``difficulty``, or ``None`` if none in range.

    See :func:`iter_nonces` for the parameters.
    """
    return next(iter_nonces(prefix, difficulty, start=start, count=count), None)
