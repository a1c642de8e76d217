"""Published known-answer vectors shared by the tests (and ``benchmarks/bench_importers.py``).

Each vector is copied here once, with its source, so that the tests run without
``../shared/reference`` (``tests/test_mining.py`` compares the copies with
``testvectors.json`` when that file is present). Import as ``import vectors`` (``tests/`` is put
on ``sys.path`` by ``tests/conftest.py``).

Sources
-------
* ``ESP_COINBASE_MERKLE``, ``ESP_SHARE_FULL``, ``ESP_SHARE_ROOT``, ``ESP_VERSION_ROLLING``,
  ``BM1366_COMMAND_FRAMES``: ``shared/reference/testvectors.json``, taken from the unit tests of
  the open-source Bitaxe firmware ESP-Miner (``components/stratum/test/test_mining.c``: real
  mainnet pool jobs; ``components/asic/bm1366.c``: command frames). The share vectors keep the
  key names of ``testvectors.json`` ("share_difficulty"); :func:`share_inputs` turns them into
  the arguments of :func:`asiclab.protocol.mining.verify_share`.
* ``BM1366_CHIP_ID_REPLIES``: the correct chip-id replies of BM1366/BM1368/BM1370 quoted by the
  Bitaxe maintainer in ESP-Miner issue "count_asic_chips accepts any 11 bytes" (2025-03-02).
* ``GENESIS_*``: the Bitcoin genesis block (Bitcoin Core ``chainparams.cpp``; any block
  explorer): header fields, block hash and coinbase transaction.
"""

from __future__ import annotations

from typing import Any

# --------------------------------------------------------------------------- ESP-Miner
# testvectors.json "coinbase_and_merkle"[0] (ESP-Miner test_mining.c)
ESP_COINBASE_MERKLE = {
    "coinb1": "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff"
    "20020862062f503253482f04b8864e5008e969579199999999072f736c7573682f0000000001",
    "extranonce1": "00f2052a",
    "extranonce2": "01000000",
    "coinb2": "1976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000",
    "merkle_branch": [
        "ae23055e00f0f697cc3640124812d96d4fe8bdfa03484c1c638ce5a1c0e9aa81",
        "980fb87cb61021dd7afd314fcb0dabd096f3d56a7377f6f320684652e7410a21",
        "a52e9868343c55ce405be8971ff340f562ae9ab6353f07140d01666180e19b52",
        "7435bdfa004e603953b2ed39f118803934d9cf17b06d979ceb682f2251bafac2",
        "2a91f061a22d27cb8f44eea79938fb241ebeb359891aa907f05ffde7ed44e52e",
        "302401f80eb5e958155135e25200bb8ea181ad2d05e804a531c7314d86403cdc",
        "318ecb6161eb9b4cfd802bd730e2d36c167ddf102e70aa7b4158e2870dd47392",
        "1114332a9858e0cf84b2425bb1e59eaabf91dd102d114aa443d57fc1b3beb0c9",
        "f43f38095c810613ed795a44d9fab02ff25269706f454885db9be05cdf9c06e1",
        "3e2fc26b27fddc39668b59099cd9635761bb72ed92404204e12bdff08b16fb75",
        "463c19427286342120039a83218fa87ce45448e246895abac11fff0036076758",
        "03d287f655813e540ddb9c4e7aeb922478662b0f5d8e9d0cbd564b20146bab76",
    ],
    "merkle_root": "adbcbc21e20388422198a55957aedfa0e61be0b8f2b87d7c08510bb9f099a893",
}

# testvectors.json "share_difficulty"[0] (ESP-Miner test_mining.c): full coinbase and branch
ESP_SHARE_FULL: dict[str, Any] = {
    "prevhash_notify": "0c859545a3498373a57452fac22eb7113df2a465000543520000000000000000",
    "version": "20000004",
    "nbits": "1705ae3a",
    "ntime": "647025b5",
    "coinb1": "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff"
    "4b0389130cfabe6d6d5cbab26a2599e92916edec5657a94a0708ddb970f5c45b5d12905085617eff8e",
    "extranonce1": "01000000",
    "extranonce2": "00000000",
    "coinb2": "31650707758de07b010000000000001cfd7038212f736c7573682f000000000379ad0c2a000000"
    "001976a9147c154ed1dc59609e3d26abb2df2ea3d587cd8c4188ac00000000000000002c6a4c2952534b"
    "424c4f434b3ae725d3994b811572c1f345deb98b56b465ef8e153ecbbd27fa37bf1b00516138000000000"
    "0000000266a24aa21a9ed63b06a7946b190a3fda1d76165b25c9b883bcc6621b040773050ee2a1bb18f1"
    "800000000",
    "merkle_branch": [
        "2b77d9e413e8121cd7a17ff46029591051d0922bd90b2b2a38811af1cb57a2b2",
        "5c8874cef00f3a233939516950e160949ef327891c9090467cead995441d22c5",
        "2d91ff8e19ac5fa69a40081f26c5852d366d608b04d2efe0d5b65d111d0d8074",
        "0ae96f609ad2264112a0b2dfb65624bedbcea3b036a59c0173394bba3a74e887",
        "e62172e63973d69574a82828aeb5711fc5ff97946db10fc7ec32830b24df7bde",
        "adb49456453aab49549a9eb46bb26787fb538e0a5f656992275194c04651ec97",
        "a7bc56d04d2672a8683892d6c8d376c73d250a4871fdf6f57019bcc737d6d2c2",
        "d94eceb8182b4f418cd071e93ec2a8993a0898d4c93bc33d9302f60dbbd0ed10",
        "5ad7788b8c66f8f50d332b88a80077ce10e54281ca472b4ed9bbbbcb6cf99083",
        "9f9d784b33df1b3ed3edb4211afc0dc1909af9758c6f8267e469f5148ed04809",
        "48fd17affa76b23e6fb2257df30374da839d6cb264656a82e34b350722b05123",
        "c4f5ab01913fc186d550c1a28f3f3e9ffaca2016b961a6a751f8cca0089df924",
        "cff737e1d00176dd6bbfa73071adbb370f227cfb5fba186562e4060fcec877e1",
    ],
    "merkle_root": "5bdc1968499c3393873edf8e07a1c3a50a97fc3a9d1a376bbf77087dd63778eb",
    "nonce": "0a029ed1",
    "difficulty": 683.5109367312982,
}

# testvectors.json "share_difficulty"[1] (ESP-Miner test_mining.c): merkle root given directly
ESP_SHARE_ROOT: dict[str, Any] = {
    "prevhash_notify": "d02b10fc0d4711eae1a805af50a8a83312a2215e00017f2b0000000000000000",
    "version": "20000004",
    "nbits": "1705ae3a",
    "ntime": "646ff1a9",
    "merkle_root": "6d0359c451434605c52a5a9ce074340be47c2c63840731f9edf1db3f26b1cdd9",
    "nonce": "276e8947",
    "difficulty": 18.043465815769544,
}

# testvectors.json "version_rolling" (ESP-Miner test_mining.c)
ESP_VERSION_ROLLING = {
    "version": "20000004",
    "mask": "00ffff00",
    "increments": ["20000104", "20000204", "20000304", "20000404"],
}


def share_inputs(vector: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`asiclab.protocol.mining.verify_share` for a share vector.

    ``prevhash_notify`` becomes ``prevhash``; the results (``difficulty``, and ``merkle_root``
    when the coinbase parts are given) and any ``note`` are left out.
    """
    drop = {"prevhash_notify", "difficulty", "note"}
    if "coinb1" in vector:
        drop.add("merkle_root")
    return {"prevhash": vector["prevhash_notify"]} | {
        k: v for k, v in vector.items() if k not in drop}


# --------------------------------------------------------------------------- BM1366
# testvectors.json "bm1366_command_frames" (ESP-Miner components/asic/bm1366.c)
BM1366_COMMAND_FRAMES = {
    "read_chip_id": "55aa520500000a",
    "chain_inactive": "55aa5305000003",
    "set_address_0": "55aa400500001c",
    "version_mask_all_ffff": "55aa510900a49000ffff1c",
    "set_max_baud_reg28": "55aa510900281130020003",
}

# ESP-Miner issue (skot, 2025-03-02): correct chip-id responses
BM1366_CHIP_ID_REPLIES = {
    0x1366: "aa551366000000000000" "05",
    0x1368: "aa551368000000000000" "0f",
    0x1370: "aa551370000000000000" "10",
}

# --------------------------------------------------------------------------- genesis block
# Bitcoin genesis block (Bitcoin Core chainparams.cpp / any block explorer)
GENESIS_HASH = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
GENESIS_MERKLE = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"  # display order
GENESIS_TIME = 1231006505
GENESIS_NBITS = 0x1D00FFFF
GENESIS_NONCE = 2083236893
GENESIS_COINBASE = (
    "01000000" "01" + "00" * 32 + "ffffffff" "4d"
    "04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e"
    "206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73"
    "ffffffff" "01" "00f2052a01000000" "43"
    "4104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f3"
    "5504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f" "ac" "00000000"
)
