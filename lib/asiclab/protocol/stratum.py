"""Stratum v1 message code shared by the capture server and the miners (pure, no I/O).

Error codes and messages of ``mining.submit`` replies (as in ``protocols.md``): 20 other/malformed,
21 stale or unknown job, 22 duplicate, 23 low difficulty, 24 unauthorized worker, 25 not
subscribed; the job constants (version, network target, payload limit); the coinbase split
(:func:`build_coinbase_parts`) with an optional ``OP_RETURN`` experiment payload; the mapping of
a ``mining.subscribe`` agent string to a device model and source kind
(:func:`agent_device_info`); and the small JSON helpers of the line protocol.

The server is :mod:`asiclab.capture.server`; the client and the miner thread are
:mod:`asiclab.devices.stratum_client`.
"""

from __future__ import annotations

import json
from typing import Any

from asiclab import AsiclabError
from asiclab.protocol import mining

__all__ = [
    "DEFAULT_VERSION_MASK",
    "ERR_DUPLICATE",
    "ERR_LOW_DIFFICULTY",
    "ERR_NOT_SUBSCRIBED",
    "ERR_OTHER",
    "ERR_STALE",
    "ERR_UNAUTHORIZED",
    "JOB_NBITS",
    "JOB_VERSION",
    "MAX_PAYLOAD_BYTES",
    "StratumError",
    "agent_device_info",
    "build_coinbase_parts",
]

ERR_OTHER = 20
ERR_STALE = 21
ERR_DUPLICATE = 22
ERR_LOW_DIFFICULTY = 23
ERR_UNAUTHORIZED = 24
ERR_NOT_SUBSCRIBED = 25
_MESSAGES = {
    ERR_OTHER: "Other/Unknown", ERR_STALE: "Job not found (=stale)",
    ERR_DUPLICATE: "Duplicate share", ERR_LOW_DIFFICULTY: "Low difficulty share",
    ERR_UNAUTHORIZED: "Unauthorized worker", ERR_NOT_SUBSCRIBED: "Not subscribed",
}

DEFAULT_VERSION_MASK = mining.DEFAULT_VERSION_MASK
JOB_VERSION = 0x20000000
#: Compact network target of the jobs (a real 2023 mainnet value, so no share is a "block").
JOB_NBITS = 0x1705AE3A
MAX_PAYLOAD_BYTES = 520
#: Longest worker name / id kept [characters].
_MAX_NAME = 128


class StratumError(AsiclabError):
    """Wrong server/client parameters, a failed handshake, or a broken Stratum connection."""


def _hex32(value: int) -> str:
    return f"{value:08x}"


def agent_device_info(agent: str) -> tuple[str, str]:
    """Device model and source kind from a ``mining.subscribe`` agent string.

    Parameters
    ----------
    agent : str
        Agent string, e.g. ``"bitaxe/BM1366/v2.4.0"`` or ``"asiclab-emulated-lv06/0.1"``.

    Returns
    -------
    (str, str)
        ``(model, source_kind)``: ``asiclab-emulated-lv06`` is ``("BM1366", "emulated")``,
        ``asiclab-cpu-miner`` ``("CPU", "emulated")``, any other ``asiclab-`` agent
        ``("", "emulated")``, ``bitaxe/<model>/...`` (ESP-Miner firmware) ``(<model>,
        "hardware")``, ``bmminer/...`` (Bitmain Antminer firmware) ``("", "hardware")``, anything
        else (cgminer, cpuminer, ...: hardware or software cannot be told from the agent)
        ``("", "unknown")``; declare the source kind of such a capture yourself
        (``source_kind=`` of the server, ``--source-kind`` of ``asiclab capture``).
    """
    a = (agent or "").strip()
    low = a.lower()
    if low.startswith("asiclab-emulated-lv06"):
        return "BM1366", "emulated"
    if low.startswith("asiclab-cpu-miner"):
        return "CPU", "emulated"
    if low.startswith("asiclab-"):
        return "", "emulated"
    parts = a.split("/")
    if len(parts) >= 2 and parts[0].lower() == "bitaxe":
        return parts[1][:32], "hardware"
    if low.startswith("bmminer/"):
        return "", "hardware"
    return "", "unknown"


def _push(data: bytes) -> bytes:
    """Bitcoin script push of ``data`` (direct, OP_PUSHDATA1 or OP_PUSHDATA2)."""
    n = len(data)
    if n < 0x4C:
        return bytes([n]) + data
    if n <= 0xFF:
        return b"\x4c" + bytes([n]) + data
    return b"\x4d" + n.to_bytes(2, "little") + data


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    return b"\xfd" + n.to_bytes(2, "little")


def build_coinbase_parts(
    height: int, payload: bytes | None, extranonce1_size: int, extranonce2_size: int
) -> tuple[bytes, bytes]:
    """``coinb1`` and ``coinb2`` of a capture job (a well-formed, zero-value coinbase).

    The scriptSig holds the BIP 34 height push, the tag ``/asiclab/`` and the extranonces; the
    outputs are one zero-value ``OP_RETURN "asiclab"`` output and, with a payload, an
    ``OP_RETURN <payload>`` output.

    Parameters
    ----------
    height : int
        Pseudo block height (the job counter) [1].
    payload : bytes or None
        Experiment payload (at most :data:`MAX_PAYLOAD_BYTES`).
    extranonce1_size, extranonce2_size : int
        Sizes of the extranonces [bytes].

    Returns
    -------
    (bytes, bytes)
        ``coinb1``, ``coinb2``; the coinbase is ``coinb1 + extranonce1 + extranonce2 + coinb2``.
    """
    if payload is not None and len(payload) > MAX_PAYLOAD_BYTES:
        raise StratumError(f"payload: at most {MAX_PAYLOAD_BYTES} bytes, got {len(payload)}")
    head = _push((height % (1 << 23)).to_bytes(3, "little")) + _push(b"/asiclab/")
    script_len = len(head) + extranonce1_size + extranonce2_size
    coinb1 = (b"\x01\x00\x00\x00" + b"\x01" + b"\x00" * 32 + b"\xff\xff\xff\xff"
              + _varint(script_len) + head)
    outputs = [b"\x6a" + _push(b"asiclab")]
    if payload is not None:
        outputs.append(b"\x6a" + _push(bytes(payload)))
    coinb2 = b"\xff\xff\xff\xff" + _varint(len(outputs))
    for script in outputs:
        coinb2 += (0).to_bytes(8, "little") + _varint(len(script)) + script
    coinb2 += b"\x00\x00\x00\x00"
    return coinb1, coinb2


def _id_json(mid: Any) -> str:
    if type(mid) is int:
        return str(mid)
    if isinstance(mid, str):
        return json.dumps(mid[:_MAX_NAME])
    return "null"


def _hex_bytes(value: Any, n: int) -> bytes | None:
    """``n`` bytes from exactly ``2n`` hex digits, else None."""
    if type(value) is not str or len(value) != 2 * n:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if len(raw) == n else None
