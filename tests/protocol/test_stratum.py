"""Pure Stratum v1 message code (:mod:`asiclab.protocol.stratum`): agent labels, coinbase split."""

from __future__ import annotations

import pytest

from asiclab.protocol.stratum import StratumError, agent_device_info, build_coinbase_parts


def test_agent_device_info() -> None:
    assert agent_device_info("asiclab-emulated-lv06/0.1") == ("BM1366", "emulated")
    assert agent_device_info("asiclab-cpu-miner/0.1") == ("CPU", "emulated")
    assert agent_device_info("bitaxe/BM1366/v2.4.0") == ("BM1366", "hardware")
    assert agent_device_info("cgminer/4.10") == ("", "unknown")
    assert agent_device_info("cpuminer/2.5.1") == ("", "unknown")
    assert agent_device_info("") == ("", "unknown")


def test_coinbase_parts_are_a_well_formed_transaction() -> None:
    payload = b"\x00\x01experiment-payload"
    coinb1, coinb2 = build_coinbase_parts(0x1234, payload, 4, 8)
    tx = coinb1 + b"\xaa" * 4 + b"\xbb" * 8 + coinb2
    assert tx[:4] == (1).to_bytes(4, "little")  # version
    assert tx[4] == 1  # one input
    assert tx[5:37] == b"\x00" * 32 and tx[37:41] == b"\xff" * 4  # coinbase prevout
    script_len = tx[41]
    script = tx[42:42 + script_len]
    assert script[:4] == b"\x03\x34\x12\x00"  # BIP 34 height push
    assert script.endswith(b"\xaa" * 4 + b"\xbb" * 8)  # extranonces inside the scriptSig
    rest = tx[42 + script_len:]
    assert rest[:4] == b"\xff" * 4 and rest[4] == 2  # sequence, two outputs
    assert b"\x6a" + bytes([len(payload)]) + payload in rest  # OP_RETURN <payload>
    assert rest.endswith(b"\x00" * 4)  # lock time
    assert build_coinbase_parts(1, None, 4, 8)[1].count(b"\x6a") == 1
    big = build_coinbase_parts(1, b"x" * 300, 4, 8)[1]
    assert b"\x6a\x4d\x2c\x01" + b"x" * 300 in big  # OP_PUSHDATA2 for 300 bytes
    with pytest.raises(StratumError, match="payload"):
        build_coinbase_parts(1, b"x" * 521, 4, 8)
