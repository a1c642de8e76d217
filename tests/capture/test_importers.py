"""Tests of asiclab.capture.importers: synthetic CSVs (valid, wrong-nonce and corrupted rows) and
the
real S9 / LV06 logs in ../shared/realdata (skipped when absent).

Known answers used in the synthetic S9 log (so the expected difficulties are independent of the
code under test): the Bitcoin genesis block (hash 000000000019d668..., Bitcoin Core
chainparams.cpp) and the first share vector of ESP-Miner components/stratum/test/test_mining.c
(difficulty 683.5109367312982).
"""

from __future__ import annotations

import csv
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import vectors
from asiclab import AsiclabError, results
from asiclab.capture import importers as im
from asiclab.dataset import open_capture, save_capture, validate_capture
from asiclab.protocol import mining as mn
from vectors import GENESIS_COINBASE, GENESIS_HASH

# --------------------------------------------------------------------------- known answers

# Bitcoin genesis block and ESP-Miner's first share vector: tests/vectors.py (sources there)
GENESIS_DIFFICULTY = mn.DIFF1_TARGET / int(GENESIS_HASH, 16)  # ~2536.4, from the published hash
ESP_SHARE = vectors.share_inputs(vectors.ESP_SHARE_FULL)  # job fields and submitted nonce
ESP_DIFFICULTY = vectors.ESP_SHARE_FULL["difficulty"]

S9_COLUMNS = [
    "timestamp", "job_id", "jitter_ms", "version", "prevhash", "coinb1", "coinb2",
    "extranonce1", "extranonce2", "merkle_branch", "ntime", "nbits", "nonce",
]


def _s9_genesis(timestamp: str, job_id: str = "g1", nonce: int = 2083236893) -> dict[str, str]:
    cb = GENESIS_COINBASE
    return {
        "timestamp": timestamp, "job_id": job_id, "jitter_ms": "1.5", "version": "00000001",
        "prevhash": "00" * 32, "coinb1": cb[:84], "extranonce1": cb[84:92],
        "extranonce2": cb[92:100], "coinb2": cb[100:], "merkle_branch": "[]",
        "ntime": f"{1231006505:08x}", "nbits": "1d00ffff", "nonce": f"{nonce:08x}",
    }


def _s9_esp(timestamp: str, job_id: str = "e1") -> dict[str, str]:
    row = {k: v for k, v in ESP_SHARE.items() if k != "merkle_branch"}
    return {**row, "timestamp": timestamp, "job_id": job_id, "jitter_ms": "2",
            "merkle_branch": json.dumps(ESP_SHARE["merkle_branch"])}


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, str] | str]) -> Path:
    """Write rows (dicts, or raw text lines for corrupted records) under a header line."""
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            if isinstance(row, str):
                fh.write(row + "\n")
            else:
                writer.writerow(row)
    return path


# --------------------------------------------------------------------------- S9 synthetic


@pytest.fixture
def s9_csv(tmp_path: Path) -> Path:
    # file order is not time order: the importer must sort
    rows: list[dict[str, str] | str] = [
        _s9_esp("1768125330.7148325", "e1"),                      # line 2, t = 2nd
        _s9_genesis("1768125330.0000001", "g1"),                  # line 3, t = 1st
        _s9_genesis("1768125331.5", "g-wrong", nonce=2083236894),  # line 4, wrong nonce, 3rd
    ]
    return _write_csv(tmp_path / "s9.csv", S9_COLUMNS, rows)


def test_s9_synthetic_known_difficulties_sorted_and_flagged(s9_csv: Path) -> None:
    ds = im.import_s9_stratum_csv(s9_csv)
    validate_capture(ds)
    assert ds.sizes["event"] == 3
    assert list(ds["job_id"].values) == ["g1", "e1", "g-wrong"]
    # exact ns from the decimal text (float * 1e9 would be off by tens of ns here)
    assert ds["t_host_ns"].values.tolist() == [
        1768125330000000100, 1768125330714832500, 1768125331500000000,
    ]
    assert ds["t_mono_ns"].values.tolist() == [0, 714832400, 1499999900]
    d = ds["difficulty"].values
    assert d[0] == pytest.approx(GENESIS_DIFFICULTY, rel=1e-12)
    assert d[1] == pytest.approx(ESP_DIFFICULTY, rel=1e-12)
    assert d[2] < 256
    assert ds["valid"].values.tolist() == [True, True, False]
    assert ds["error_code"].values.tolist() == [0, 0, im.ERROR_LOW_DIFFICULTY]
    assert np.all(ds["pool_difficulty"].values == 256.0)
    assert ds["nonce"].values.tolist() == [2083236893, 0x0A029ED1, 2083236894]
    assert np.all(ds["version_bits"].values == 0)
    assert np.all(ds["op_index"].values == 0) and np.all(ds["device_index"].values == 0)
    assert ds.attrs["source_kind"] == "imported"
    assert ds.attrs["device_model"] == "BM1387 (Antminer S9)"
    assert ds["device_model"].values.tolist() == ["BM1387 (Antminer S9)"]
    assert ds["device_source_kind"].values.tolist() == ["imported"]
    assert ds.attrs["source_file"] == str(s9_csv)
    assert ds.attrs["source_sha256"] == hashlib.sha256(s9_csv.read_bytes()).hexdigest()
    assert (ds.attrs["n_rows"], ds.attrs["n_valid"], ds.attrs["n_invalid"]) == (3, 2, 1)
    assert ds.attrs["n_malformed_rows"] == 0
    assert np.isnan(ds["op_voltage_set"].values).all()
    assert ds["op_t_start_ns"].values.tolist() == [1768125330000000100]
    assert ds["op_t_end_ns"].values.tolist() == [1768125331500000000]


@pytest.mark.parametrize(
    "column, bad, message",
    [
        ("prevhash", "zz" + "00" * 31, "prevhash"),
        ("prevhash", "00" * 31, "32 bytes"),
        ("nonce", "xyz", "nonce"),
        ("nonce", "123456789", "nonce"),
        ("nonce", "-1", "nonce"),
        ("coinb1", "01 00", "coinb1"),
        ("timestamp", "17681253x0.5", "timestamp"),
        ("timestamp", "nan", "timestamp"),
        ("merkle_branch", "[not json", "merkle_branch"),
        ("merkle_branch", '["00"]', "merkle_branch"),
        ("coinb2", "abc", "coinb2"),
        ("version", "", "version"),
    ],
)
def test_s9_malformed_row_raises_naming_file_and_line(
    tmp_path: Path, column: str, bad: str, message: str
) -> None:
    rows: list[dict[str, str] | str] = [
        _s9_genesis("1768125330.1"), {**_s9_genesis("1768125330.2"), column: bad},
    ]
    path = _write_csv(tmp_path / "bad.csv", S9_COLUMNS, rows)
    with pytest.raises(im.ImportFormatError, match=message) as info:
        im.import_s9_stratum_csv(path)
    assert info.value.line == 3
    assert info.value.path == str(path)
    assert f"{path}, line 3" in str(info.value)
    assert isinstance(info.value, AsiclabError)


def test_s9_lenient_keeps_malformed_rows_flagged(s9_csv: Path, tmp_path: Path) -> None:
    good = s9_csv.read_text().splitlines()
    lines = [
        *good,
        "1768125332.0,short,1.0,00000001",  # line 5: missing fields
        good[2].replace("1768125330.0000001", "not-a-time"),  # line 6: bad time
        good[2].replace("1d00ffff", "1d00fg"),  # line 7: bad hex
    ]
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(im.ImportFormatError) as info:
        im.import_s9_stratum_csv(path)
    assert info.value.line == 5
    ds = im.import_s9_stratum_csv(path, lenient=True)
    assert ds.sizes["event"] == 6  # nothing dropped
    assert ds.attrs["n_malformed_rows"] == 3
    assert json.loads(ds.attrs["malformed_lines"]) == [5, 6, 7]
    code = ds["error_code"].values
    assert (code == im.ERROR_MALFORMED).sum() == 3
    assert not ds["valid"].values[code == im.ERROR_MALFORMED].any()
    # the untimed row (line 6) goes last with sentinel times; timed rows stay sorted
    t = ds["t_host_ns"].values
    assert t[-1] == -1 and ds["t_mono_ns"].values[-1] == -1
    assert np.all(np.diff(t[:-1]) >= 0)
    # what did parse is kept: line 5's time and job id, line 7's time and nonce
    assert t[-2] == 1768125332000000000 and ds["job_id"].values[-2] == "short"
    row7 = np.flatnonzero(t == 1768125330000000100)
    assert len(row7) == 2
    assert set(ds["nonce"].values[row7]) == {2083236893}
    assert ds.attrs["n_verified"] == 3
    assert ds.attrs["n_valid"] == 2 and ds.attrs["n_invalid"] == 1


def test_whole_file_problems_raise_even_when_lenient(tmp_path: Path) -> None:
    with pytest.raises(im.ImportFormatError, match="no such file"):
        im.import_s9_stratum_csv(tmp_path / "absent.csv", lenient=True)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(im.ImportFormatError, match="empty file") as info:
        im.import_s9_stratum_csv(empty, lenient=True)
    assert info.value.line == 1
    wrong = _write_csv(tmp_path / "wrong.csv", ["timestamp", "nonce"], [])
    with pytest.raises(im.ImportFormatError, match="missing column"):
        im.import_s9_stratum_csv(wrong, lenient=True)


def test_header_only_file_gives_empty_capture(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "none.csv", S9_COLUMNS, [])
    ds = im.import_s9_stratum_csv(path)
    assert ds.sizes["event"] == 0 and ds.sizes["op"] == 1
    assert ds["op_t_start_ns"].values.tolist() == [-1]


def test_undecodable_bytes_are_a_malformed_row(tmp_path: Path, s9_csv: Path) -> None:
    data = s9_csv.read_bytes() + b"1768125333.0,\xff\xfe,1," + b"00" * 10 + b"\n"
    path = tmp_path / "binary.csv"
    path.write_bytes(data)
    with pytest.raises(im.ImportFormatError) as info:
        im.import_s9_stratum_csv(path)
    assert info.value.line == 5
    ds = im.import_s9_stratum_csv(path, lenient=True)
    assert ds.attrs["n_malformed_rows"] == 1 and ds.sizes["event"] == 4


def test_imported_capture_round_trips_and_logs_the_source(s9_csv: Path, tmp_path: Path) -> None:
    ds = im.import_s9_stratum_csv(s9_csv)
    out = save_capture(ds, tmp_path / "s9.nc")
    back = open_capture(out)
    xr.testing.assert_identical(ds, back)
    log = (results.run_dir() / results.FILES_LOG).read_text().splitlines()
    entries = [json.loads(x) for x in log]
    assert {"path": str(s9_csv.resolve()), "role": "read"}.items() <= entries[0].items()


# --------------------------------------------------------------------------- LV06 synthetic

LV06_COLUMNS = [
    "proof_id", "job_id", "share_received_at", "worker_name", "extranonce2", "ntime", "nonce",
    "version_bits", "coinb1", "coinb2", "extranonce1", "medical_merkle_root",
    "block_merkle_root", "block_header_hex", "block_hash_hex", "difficulty", "nbits",
    "version_used",
]
LV06_POOL = 2.0**-20  # ~4096 hashes per share: a real search that stays fast
LV06_JOB_VERSION = 0x20000000
LV06_NBITS = 0x1D0000C7
LV06_NTIME = 0x6951450E


def _lv06_job(extranonce2: str, version_bits: int) -> tuple[dict[str, str], bytes]:
    """Job fields and the 76-byte header prefix, built with struct/hashlib (independently)."""
    coinb1 = "01000000" + "ab" * 40
    coinb2 = "cd" * 30 + "00000000"
    extranonce1 = "deadbeef"
    prev = hashlib.sha256(b"synthetic previous block").digest()
    coinbase = bytes.fromhex(coinb1 + extranonce1 + extranonce2 + coinb2)
    root = hashlib.sha256(hashlib.sha256(coinbase).digest()).digest()
    rolled = LV06_JOB_VERSION ^ version_bits
    prefix = (struct.pack("<I", rolled) + prev + root
              + struct.pack("<II", LV06_NTIME, LV06_NBITS))
    fields = {
        "worker_name": "synthetic-lv06", "extranonce2": extranonce2, "ntime": f"{LV06_NTIME:08x}",
        "version_bits": f"{version_bits:08x}", "coinb1": coinb1, "coinb2": coinb2,
        "extranonce1": extranonce1, "medical_merkle_root": prev.hex(),
        "block_merkle_root": root.hex(), "difficulty": repr(LV06_POOL),
        "nbits": str(LV06_NBITS), "version_used": str(rolled),
    }
    return fields, prefix


def _lv06_row(fields: dict[str, str], prefix: bytes, nonce: int, t: str, job: str) -> dict:
    header = prefix + struct.pack("<I", nonce)
    digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
    return {**fields, "proof_id": f"p-{job}", "job_id": job, "share_received_at": t,
            "nonce": f"{nonce:08x}", "block_header_hex": header.hex(),
            "block_hash_hex": digest[::-1].hex()}


def _hash_difficulty(prefix: bytes, nonce: int) -> float:
    digest = hashlib.sha256(hashlib.sha256(prefix + struct.pack("<I", nonce)).digest()).digest()
    return mn.DIFF1_TARGET / int.from_bytes(digest, "little")


@pytest.fixture(scope="module")
def lv06_rows() -> dict[str, dict]:
    f1, p1 = _lv06_job("00000000", 0x0F250000)
    f2, p2 = _lv06_job("00000001", 0x00002000)
    h1 = mn.find_nonce(p1, LV06_POOL)
    h2 = mn.find_nonce(p2, LV06_POOL, start=123456)
    assert h1 is not None and h2 is not None
    assert _hash_difficulty(p1, h1.nonce) >= LV06_POOL  # independent re-check of the search
    low = next(
        n for n in range(h1.nonce + 1, h1.nonce + 100) if _hash_difficulty(p1, n) < LV06_POOL
    )
    tampered = _lv06_row(f2, p2, h2.nonce, "1766933779.25", "j-tampered")
    tampered["block_hash_hex"] = "00" + tampered["block_hash_hex"][2:][::-1]
    wrong_nonce = _lv06_row(f1, p1, h1.nonce, "1766933780.5", "j-wrong-nonce")
    wrong_nonce["nonce"] = f"{low:08x}"  # header/hash logged for the right nonce
    f3, p3 = _lv06_job("00000002", 0x00000001)  # version bit outside the mask 1fffe000
    h3 = mn.find_nonce(p3, LV06_POOL)
    assert h3 is not None
    return {
        "ok1": _lv06_row(f1, p1, h1.nonce, "1766933776.4886315", "j1"),
        "ok2": _lv06_row(f2, p2, h2.nonce, "1766933777.251482", "j2"),
        "low": _lv06_row(f1, p1, low, "1766933778.0", "j-low"),
        "tampered": tampered,
        "wrong_nonce": wrong_nonce,
        "outside_mask": _lv06_row(f3, p3, h3.nonce, "1766933781.0", "j-mask"),
        "h1": {"difficulty": h1.difficulty}, "h2": {"difficulty": h2.difficulty},
    }


def test_lv06_synthetic_verifies_and_flags(tmp_path: Path, lv06_rows: dict) -> None:
    r = lv06_rows
    order = ["tampered", "low", "ok2", "outside_mask", "ok1", "wrong_nonce"]
    path = _write_csv(tmp_path / "lv06.csv", LV06_COLUMNS, [r[k] for k in order])
    ds = im.import_lv06_proofs_csv(path)
    validate_capture(ds)
    jobs = ds["job_id"].values.tolist()
    assert jobs == ["j1", "j2", "j-low", "j-tampered", "j-wrong-nonce", "j-mask"]
    assert ds["valid"].values.tolist() == [True, True, False, False, False, False]
    assert ds["error_code"].values.tolist() == [0, 0, 23, 20, 20, 20]
    d = ds["difficulty"].values
    assert d[0] == r["h1"]["difficulty"] and d[1] == r["h2"]["difficulty"]
    assert d[2] < LV06_POOL
    assert np.all(ds["pool_difficulty"].values == LV06_POOL)
    assert ds["version_bits"].values.tolist()[:2] == [0x0F250000, 0x00002000]
    assert ds["t_host_ns"].values[0] == 1766933776488631500
    assert ds.attrs["device_model"] == "BM1366 (Lucky Miner LV06)"
    assert ds["device_name"].values.tolist() == ["synthetic-lv06"]
    assert ds.attrs["n_mismatch_rows"] == 3
    assert ds.attrs["n_verified"] == 6
    assert json.loads(ds.attrs["pool_difficulties"]) == [LV06_POOL]


@pytest.mark.parametrize(
    "column, bad, message",
    [
        ("block_header_hex", "00" * 79, "80 bytes"),
        ("difficulty", "abc", "difficulty"),
        ("difficulty", "-1", "difficulty"),
        ("nbits", "0x1d", "nbits"),
        ("version_used", "99999999999", "version_used"),
        ("version_bits", "zz", "version_bits"),
        ("share_received_at", "", "share_received_at"),
    ],
)
def test_lv06_malformed_rows(
    tmp_path: Path, lv06_rows: dict, column: str, bad: str, message: str
) -> None:
    rows = [lv06_rows["ok1"], {**lv06_rows["ok2"], column: bad}]
    path = _write_csv(tmp_path / "bad.csv", LV06_COLUMNS, rows)
    with pytest.raises(im.ImportFormatError, match=message) as info:
        im.import_lv06_proofs_csv(path)
    assert info.value.line == 3
    ds = im.import_lv06_proofs_csv(path, lenient=True)
    assert ds.sizes["event"] == 2
    assert ds["error_code"].values.tolist() == [0, im.ERROR_MALFORMED]
    assert ds.attrs["n_malformed_rows"] == 1


# --------------------------------------------------------------------------- generic


def test_generic_with_difficulty_and_pool_difficulty(tmp_path: Path) -> None:
    path = tmp_path / "logger.csv"
    path.write_text(
        "t_ms,nonce,diff,job\n"
        "1700000000123.456789,0x0000abcd,300.5,a\n"
        "1700000000100,DEADBEEF,12.0,b\n"
        "1700000000200,00000001,256,c\n"
    )
    ds = im.import_generic_csv(path, time_column="t_ms", time_unit="ms", nonce_column="nonce",
                               difficulty_column="diff", pool_difficulty=256,
                               job_id_column="job", device_model="BM1366")
    assert ds["job_id"].values.tolist() == ["b", "a", "c"]
    assert ds["t_host_ns"].values.tolist() == [
        1700000000100000000, 1700000000123456789, 1700000000200000000,
    ]
    assert ds["nonce"].values.tolist() == [0xDEADBEEF, 0xABCD, 1]
    assert ds["valid"].values.tolist() == [False, True, True]
    assert ds["error_code"].values.tolist() == [23, 0, 0]
    assert ds["difficulty"].values.tolist() == [12.0, 300.5, 256.0]
    assert ds.attrs["device_model"] == "BM1366"
    assert ds.attrs["log_format"] == "generic"
    assert json.loads(ds.attrs["parameters"])["time_unit"] == "ms"


def test_generic_without_pool_difficulty_is_unverified(tmp_path: Path) -> None:
    path = tmp_path / "times.csv"
    path.write_text("timestamp,pool_d,diff\n2024-01-01T00:00:01Z,1,0.5\n"
                    "2024-01-01T00:00:00.5,1,2\n")
    ds = im.import_generic_csv(path, time_unit="iso")
    assert ds["t_host_ns"].values.tolist() == [1704067200500000000, 1704067201000000000]
    assert ds["valid"].values.all()
    assert (ds["error_code"].values == -1).all()
    assert np.isnan(ds["difficulty"].values).all()
    assert ds.attrs["verification"].startswith("none")
    # with per-row pool difficulty and the difficulty column, it is checked
    ds2 = im.import_generic_csv(path, time_unit="iso", difficulty_column="diff",
                                pool_difficulty_column="pool_d")
    assert ds2["valid"].values.tolist() == [True, False]


def test_generic_malformed_and_bad_arguments(tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    path.write_text("timestamp,nonce\n1.5,00000001\n2.5,xyz\n3.5\n,00000002\n")
    with pytest.raises(im.ImportFormatError, match="line 3") as info:
        im.import_generic_csv(path, nonce_column="nonce")
    assert info.value.line == 3
    ds = im.import_generic_csv(path, nonce_column="nonce", lenient=True)
    assert ds.sizes["event"] == 4
    assert json.loads(ds.attrs["malformed_lines"]) == [3, 4, 5]
    assert ds["valid"].values.tolist() == [True, False, False, False]
    with pytest.raises(im.ImportFormatError, match="missing column"):
        im.import_generic_csv(path, nonce_column="nonces")
    with pytest.raises(im.ImportFormatError, match="time_unit"):
        im.import_generic_csv(path, time_unit="minutes")
    with pytest.raises(im.ImportFormatError, match="pool_difficulty"):
        im.import_generic_csv(path, pool_difficulty=-1.0)
    with pytest.raises(im.ImportFormatError, match="not both"):
        im.import_generic_csv(path, pool_difficulty=1.0, pool_difficulty_column="nonce")


def test_parse_time_ns_is_exact() -> None:
    assert im.parse_time_ns("1768125330.7148325") == 1768125330714832500
    assert int(float("1768125330.7148325") * 1e9) != 1768125330714832500  # why Decimal
    assert im.parse_time_ns("1.7e9") == 1_700_000_000_000_000_000
    assert im.parse_time_ns("1500", "ms") == 1_500_000_000
    assert im.parse_time_ns("7", "ns") == 7
    assert im.parse_time_ns("2024-01-01T01:00:00+01:00", "iso") == 1704067200000000000
    for bad, unit in (("", "s"), ("inf", "s"), ("1e30", "s"), ("x", "s"), ("zzz", "iso"),
                      ("1", "h")):
        with pytest.raises(ValueError):
            im.parse_time_ns(bad, unit)


# --------------------------------------------------------------------------- dispatch


def test_import_log_dispatch(s9_csv: Path) -> None:
    assert set(im.FORMATS) == {"s9_stratum", "lv06_proofs", "generic"}
    a = im.import_log(s9_csv, "s9_stratum")
    b = im.import_s9_stratum_csv(s9_csv)
    assert a["difficulty"].values.tolist() == b["difficulty"].values.tolist()
    g = im.import_log(s9_csv, "generic", nonce_column="nonce")
    assert g["nonce"].values.tolist() == b["nonce"].values.tolist()
    with pytest.raises(im.ImportFormatError, match="unknown log format"):
        im.import_log(s9_csv, "csv")
    with pytest.raises(im.ImportFormatError, match="unexpected keyword"):
        im.import_log(s9_csv, "s9_stratum", nonce_column="nonce")


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_s9_log_all_shares_verify(realdata_dir: Path) -> None:
    ds = im.import_s9_stratum_csv(realdata_dir / "s9_stratum_shares.csv")
    validate_capture(ds)
    assert ds.sizes["event"] == 2588
    # issue 7 item 7: 42 exact resubmissions are flagged as duplicates (error 22), never dropped
    dup = ds["error_code"].values == im.ERROR_DUPLICATE
    assert int(dup.sum()) == 42 and ds.attrs["n_duplicates"] == 42
    assert not ds["valid"].values[dup].any()
    assert int(ds["valid"].sum()) == 2546 == ds.attrs["n_valid"]
    assert ds.attrs["n_verified"] == 2588 and ds.attrs["n_malformed_rows"] == 0
    tv = np.sort(ds["t_host_ns"].values[ds["valid"].values]) * 1e-9
    dt = np.diff(tv)
    assert abs(dt.std() / dt.mean() - 0.813) <= 0.002  # CV of the unique valid train
    d = ds["difficulty"].values
    assert d.min() >= 256
    assert 256 < d.min() < 257  # README: minimum 256.2
    assert 480 < np.median(d) < 550  # README: median ~516
    t = ds["t_host_ns"].values
    assert np.all(np.diff(t) >= 0)
    assert ds["t_mono_ns"].values[0] == 0
    assert 0.090 < np.diff(t).mean() * 1e-9 < 0.105  # README: mean inter-arrival 97 ms
    assert 240 < (t[-1] - t[0]) * 1e-9 < 260  # ~252 s


@pytest.mark.realdata
def test_real_lv06_log_all_shares_verify(realdata_dir: Path) -> None:
    ds = im.import_lv06_proofs_csv(realdata_dir / "lv06_bm1366_proofs.csv")
    validate_capture(ds)
    assert ds.sizes["event"] == 32
    assert int(ds["valid"].sum()) == 32
    assert ds.attrs["n_mismatch_rows"] == 0 and ds.attrs["n_verified"] == 32
    assert ds["difficulty"].values.min() >= 256  # BM1366 ticket floor
    assert np.all(ds["pool_difficulty"].values == 0.08)
    assert np.all(ds["version_bits"].values > 0)
    assert np.all(np.diff(ds["t_host_ns"].values) >= 0)
    assert 300 < (ds["t_host_ns"].values[-1] - ds["t_host_ns"].values[0]) * 1e-9 < 330


def test_duplicate_resubmission_is_flagged_not_dropped(tmp_path: Path, lv06_rows: dict) -> None:
    """Issue 7 item 7: a resubmitted share (same header) is kept, flagged error 22, invalid."""
    r = lv06_rows
    again = dict(r["ok1"], share_received_at="1766933776.5086315", job_id="j1-again")
    path = _write_csv(tmp_path / "dup.csv", LV06_COLUMNS, [r["ok1"], r["ok2"], again])
    ds = im.import_lv06_proofs_csv(path)
    validate_capture(ds)
    assert ds.sizes["event"] == 3
    assert ds["job_id"].values.tolist() == ["j1", "j1-again", "j2"]
    assert ds["valid"].values.tolist() == [True, False, True]
    assert ds["error_code"].values.tolist() == [0, im.ERROR_DUPLICATE, 0]
    assert ds.attrs["n_duplicates"] == 1 and ds.attrs["n_valid"] == 2
