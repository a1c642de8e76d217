"""Tests of the crash-safe capture journal and its recovery into a capture dataset."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asiclab import dataset
from asiclab.capture.journal import (
    EVENT_FIELDS,
    Journal,
    JournalError,
    LatencyStats,
    clean_text,
    read_jobs,
    read_journal,
    recover,
    recover_to_file,
)


def _events_on_disk(path: Path) -> int:
    return sum(1 for line in path.read_bytes().splitlines() if line.startswith(b'["E",'))


def test_round_trip_all_record_kinds(tmp_path: Path) -> None:
    path = tmp_path / "cap.journal"
    with Journal(path, attrs={"title": "unit test", "seed": 7, "parameters": {"a": 1}}) as j:
        d0 = j.register_device("lv06-a", model="BM1366", source_kind="hardware",
                               firmware="bitaxe/BM1366/v2.4")
        d1 = j.register_device("lv06-b", model="BM1366", source_kind="hardware")
        assert (d0, d1) == (0, 1)
        assert j.register_device("lv06-a") == 0  # same name, same index
        op0 = j.append_op(d0, 1200.0, 485.0, t_start_ns=1_000)
        j.append_event(t_host_ns=1_500, t_mono_ns=11, device_index=d0, job_id="1f",
                       nonce=0xDEADBEEF, version_bits=0x2000, difficulty=512.5,
                       pool_difficulty=256.0, valid=True, error_code=0, extranonce2="00ff",
                       ntime="647025b5")
        j.append_event({"t_host_ns": 1_600, "t_mono_ns": 12, "device_index": d1, "nonce": 5,
                        "error_code": 23, "difficulty": 1.5, "pool_difficulty": 256.0})
        j.append_telemetry({"tel_t_host_ns": 1_700, "tel_t_mono_ns": 13, "temperature": 61.5,
                            "power": 12.25, "voltage_set": 1200.0, "voltage_measured": 1187.0,
                            "frequency": 485.0, "hashrate": 433.6}, device_index=d0)
        j.end_op(op0, t_end_ns=2_000)
        j.append_event(t_host_ns=2_100, t_mono_ns=14, device_index=d0, nonce=9, valid=False,
                       error_code=30)
        j.append_job({"job_id": "1f", "payload": "beef"})
        j.append_note("connect", {"peer": "127.0.0.1:1"})
    ds = recover(path)
    dataset.validate_capture(ds)
    assert ds.sizes["event"] == 3 and ds.sizes["sample"] == 1 and ds.sizes["op"] == 1
    np.testing.assert_array_equal(ds["t_host_ns"].values, [1_500, 1_600, 2_100])
    np.testing.assert_array_equal(ds["nonce"].values, [0xDEADBEEF, 5, 9])
    np.testing.assert_array_equal(ds["op_index"].values, [0, -1, -1])
    np.testing.assert_array_equal(ds["device_index"].values, [0, 1, 0])
    np.testing.assert_array_equal(ds["valid"].values, [True, False, False])
    np.testing.assert_array_equal(ds["error_code"].values, [0, 23, 30])
    assert ds["job_id"].values.tolist() == ["1f", "", ""]
    assert ds["version_bits"].values.tolist() == [0x2000, -1, -1]
    assert ds["difficulty"].values[0] == 512.5 and math.isnan(ds["difficulty"].values[2])
    assert ds["tel_op_index"].values.tolist() == [0]
    assert ds["power"].values.tolist() == [12.25]
    assert ds["op_t_start_ns"].values.tolist() == [1_000]
    assert ds["op_t_end_ns"].values.tolist() == [2_000]
    assert ds["device_name"].values.tolist() == ["lv06-a", "lv06-b"]
    assert ds.attrs["source_kind"] == "hardware"
    assert ds.attrs["title"] == "unit test"
    assert json.loads(ds.attrs["parameters"]) == {"a": 1}
    assert ds.attrs["journal_complete"] == 1
    assert ds.attrs["firmware"] == "bitaxe/BM1366/v2.4"
    assert read_jobs(path) == [{"job_id": "1f", "payload": "beef"}]
    contents = read_journal(path)
    assert contents.events["extranonce2"].tolist() == ["00ff", "", ""]
    assert contents.notes[0]["kind"] == "connect"


def test_torn_last_record_is_dropped_and_the_rest_recovered(tmp_path: Path) -> None:
    path = tmp_path / "cap.journal"
    j = Journal(path, attrs={"source_kind": "emulated"})
    j.register_device("w")
    for i in range(50):
        j.append_event(nonce=i, valid=True, error_code=0)
    j.flush()
    good = path.read_bytes()
    # simulate a crash in the middle of writing the next record (no footer, torn line)
    path.write_bytes(good + b'["E",1700000000000000000,123,0,-1,"1",77,-1,0,0.')
    ds = recover(path)
    assert ds.sizes["event"] == 50
    assert ds["nonce"].values.tolist() == list(range(50))
    assert ds.attrs["journal_torn_records"] == 1
    assert ds.attrs["journal_complete"] == 0
    assert ds.attrs["source_kind"] == "emulated"
    j._stop.set()


def test_damaged_record_in_the_middle_raises_unless_skipped(tmp_path: Path) -> None:
    path = tmp_path / "cap.journal"
    with Journal(path) as j:
        for i in range(10):
            j.append_event(nonce=i, error_code=0, valid=True)
    lines = path.read_bytes().split(b"\n")
    idx = next(k for k, line in enumerate(lines) if line.startswith(b'["E",') and b",4," in line)
    lines[idx] = lines[idx][:20] + b"#garbage#" + lines[idx][29:]
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalError, match="damaged"):
        recover(path)
    ds = recover(path, skip_damaged=True)
    assert ds.sizes["event"] == 9
    assert 4 not in ds["nonce"].values.tolist()
    assert ds.attrs["journal_damaged_records"] == 1


def test_not_a_journal(tmp_path: Path) -> None:
    bad = tmp_path / "x.journal"
    bad.write_text('{"hello": 1}\n')
    with pytest.raises(JournalError, match="not an asiclab journal"):
        recover(bad)
    empty = tmp_path / "empty.journal"
    empty.write_bytes(b"")
    with pytest.raises(JournalError):
        recover(empty)
    with pytest.raises(JournalError, match="no such journal"):
        recover(tmp_path / "missing.journal")


def test_refuses_existing_file_and_bad_arguments(tmp_path: Path) -> None:
    path = tmp_path / "cap.journal"
    Journal(path).close()
    with pytest.raises(JournalError, match="exists"):
        Journal(path)
    Journal(path, overwrite=True).close()
    with pytest.raises(JournalError, match="flush_interval_s"):
        Journal(tmp_path / "b.journal", flush_interval_s=5.0)
    with pytest.raises(JournalError, match="source_kind"):
        Journal(tmp_path / "c.journal", attrs={"source_kind": "made-up"})
    with Journal(tmp_path / "d.journal") as j:
        with pytest.raises(JournalError, match="unknown event field"):
            j.append_event(voltage=3)
        with pytest.raises(JournalError, match="integer"):
            j.append_event(nonce="not a number")
        with pytest.raises(JournalError, match="unknown telemetry field"):
            j.append_telemetry(speed=1.0)
        with pytest.raises(JournalError, match="not open"):
            j.end_op(3)
    with pytest.raises(JournalError, match="closed"):
        j.append_event(nonce=1)


def test_records_reach_the_disk_without_close(tmp_path: Path) -> None:
    """The background flusher writes queued records by itself (no flush/close call)."""
    path = tmp_path / "cap.journal"
    j = Journal(path, flush_interval_s=0.05)
    for i in range(5):
        j.append_event(nonce=i)
    deadline = time.monotonic() + 10
    while _events_on_disk(path) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _events_on_disk(path) == 5
    j.close()


def test_write_failure_keeps_the_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    path = tmp_path / "cap.journal"
    j = Journal(path, flush_interval_s=1.0)
    for i in range(3):
        j.append_event(nonce=i)
    real_write = j._fh.write

    def failing(data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(j._fh, "write", failing)
    with pytest.raises(JournalError, match="No space"):
        j.flush()
    j.append_event(nonce=3)
    monkeypatch.setattr(j._fh, "write", real_write)
    j.close()
    assert recover(path)["nonce"].values.tolist() == [0, 1, 2, 3]


def test_operating_points_stamp_events_and_post_hoc_windows(tmp_path: Path) -> None:
    path = tmp_path / "cap.journal"
    with Journal(path) as j:
        dev = j.register_device("d")
        j.append_event(t_host_ns=50, device_index=dev, nonce=0)  # before any op
        op_a = j.append_op(dev, 1150.0, 485.0, t_start_ns=100)
        assert j.current_op(dev) == op_a
        j.append_event(t_host_ns=150, device_index=dev, nonce=1)
        op_b = j.append_op(dev, 1100.0, 485.0, t_start_ns=200)  # closes op_a at 200
        j.append_event(t_host_ns=250, device_index=dev, nonce=2)
        j.end_op(op_b, t_end_ns=300)
        assert j.current_op(dev) == -1
        j.append_event(t_host_ns=450, device_index=dev, nonce=3)  # inside op_c below
        op_c = j.append_op(dev, 1050.0, 400.0, t_start_ns=400, t_end_ns=500)
        j.append_event(t_host_ns=600, device_index=dev, nonce=4)  # after everything
    ds = recover(path)
    assert ds["op_index"].values.tolist() == [-1, op_a, op_b, op_c, -1]
    assert ds["op_t_end_ns"].values.tolist() == [200, 300, 500]
    assert ds["op_voltage_set"].values.tolist() == [1150.0, 1100.0, 1050.0]


def test_open_operating_point_of_a_crash_keeps_missing_end(tmp_path: Path) -> None:
    path = tmp_path / "cap.journal"
    j = Journal(path)
    dev = j.register_device("d")
    j.append_op(dev, 1200.0, 485.0)
    j.append_event(device_index=dev, nonce=1)
    j.flush()
    j._stop.set()  # abandon without close, as a killed process would
    ds = recover(path)
    assert ds["op_t_end_ns"].values.tolist() == [-1]
    assert ds["op_index"].values.tolist() == [0]


def test_concurrent_appends_from_threads(tmp_path: Path) -> None:
    path = tmp_path / "cap.journal"
    n_threads, per = 4, 2000
    with Journal(path, flush_interval_s=0.01, max_pending=100) as j:
        devs = [j.register_device(f"t{k}") for k in range(n_threads)]

        def work(k: int) -> None:
            for i in range(per):
                j.append_event(device_index=devs[k], nonce=i)
                if i % 100 == 0:
                    j.append_telemetry(device_index=devs[k], temperature=float(i))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    ds = recover(path)
    assert ds.sizes["event"] == n_threads * per
    for k in range(n_threads):
        sel = ds["nonce"].values[ds["device_index"].values == k]
        assert sorted(sel.tolist()) == list(range(per))
    assert ds.sizes["sample"] == n_threads * per // 100


def test_source_kind_inferred_conservatively(tmp_path: Path) -> None:
    path = tmp_path / "cap.journal"
    with Journal(path) as j:
        j.register_device("real", model="BM1366", source_kind="hardware")
        j.register_device("emu", model="BM1366", source_kind="emulated")
    ds = recover(path)
    assert ds.attrs["source_kind"] == "emulated"  # anything emulated taints the capture
    assert ds["device_source_kind"].values.tolist() == ["hardware", "emulated"]
    assert recover(path, attrs={"source_kind": "hardware"}).attrs["source_kind"] == "hardware"


def test_axeos_rows_are_accepted(tmp_path: Path) -> None:
    from asiclab.devices import axeos

    info = {"temp": 55.5, "power": 11.0, "coreVoltage": 1200, "coreVoltageActual": 1190,
            "frequency": 485, "hashRate": 440.0}
    row = axeos.info_to_telemetry(info, t_host_ns=123, t_mono_ns=456)
    path = tmp_path / "cap.journal"
    with Journal(path) as j:
        j.append_telemetry(row, device_index=0)
        j.append_gap(10, 20)
    ds = recover(path)
    assert ds["tel_t_host_ns"].values.tolist() == [123]
    assert ds["temperature"].values.tolist() == [55.5]
    assert ds["voltage_measured"].values.tolist() == [1190.0]
    assert ds.sizes["device"] == 1  # placeholder for the referenced device 0
    assert read_journal(path).notes[0]["kind"] == "telemetry_gap"


def test_recover_to_file_round_trips_through_netcdf(tmp_path: Path) -> None:
    path = tmp_path / "cap.journal"
    with Journal(path) as j:
        j.register_device("w", model="BM1366", source_kind="emulated")
        for i in range(4):
            j.append_event(nonce=i, valid=True, error_code=0, difficulty=1.0 + i)
    out = recover_to_file(path)
    assert out == tmp_path / "cap.nc"
    ds = dataset.open_capture(out)
    assert ds["difficulty"].values.tolist() == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(JournalError, match="overwrite the journal"):
        recover_to_file(path, path)


def test_clean_text_keeps_printable_text_and_replaces_the_rest() -> None:
    assert clean_text("job-1f é漢") == "job-1f é漢"
    assert clean_text("a\x00b\ud800c\n") == "a\ufffdb\ufffdc\ufffd"
    assert clean_text("x" * 300) == "x" * 256


def test_hostile_text_cannot_break_a_saved_capture(tmp_path: Path) -> None:
    path = tmp_path / "cap.journal"
    with Journal(path) as j:
        j.register_device("d")
        j.append_event(job_id="evil\x00\ud800", nonce=1)
    out = recover_to_file(path)
    assert dataset.open_capture(out)["job_id"].values.tolist() == ["evil\ufffd\ufffd"]


def test_latency_stats_bounded_memory() -> None:
    stats = LatencyStats(capacity=1000)
    values = np.arange(100_000)
    for v in values.tolist():
        stats.add(v)
    assert len(stats) < 1000
    assert stats.count == 100_000
    p = stats.percentiles((50.0, 99.0))
    # a systematic subsample of a uniform ramp: percentiles within a few strides of the truth
    assert abs(p[50.0] - np.percentile(values, 50)) < 1000
    assert abs(p[99.0] - np.percentile(values, 99)) < 1000


_int64 = st.integers(min_value=-(2**62), max_value=2**62)
_u32 = st.integers(min_value=0, max_value=2**32 - 1)
_floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
_event = st.fixed_dictionaries({
    "t_host_ns": _int64, "t_mono_ns": _int64, "nonce": _u32, "job_id": st.text(max_size=20),
    "core_id": st.integers(-1, 200), "version_bits": st.integers(-1, 2**32 - 1),
    "difficulty": _floats, "pool_difficulty": _floats, "valid": st.booleans(),
    "error_code": st.integers(-1, 30), "extranonce2": st.text(max_size=16),
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(events=st.lists(_event, max_size=30))
def test_event_values_round_trip(tmp_path: Path, events: list[dict]) -> None:
    path = tmp_path / f"prop-{time.monotonic_ns()}.journal"
    with Journal(path) as j:
        j.register_device("d")
        for e in events:
            j.append_event(e, device_index=0)
    c = read_journal(path)
    assert c.complete
    assert c.events["t_host_ns"].size == len(events)
    for k, e in enumerate(events):
        for name in ("t_host_ns", "t_mono_ns", "nonce", "core_id", "version_bits", "error_code",
                     "valid"):
            assert c.events[name][k] == e[name], name
        for name in ("job_id", "extranonce2"):  # text is kept unless NetCDF could not store it
            assert c.events[name][k] == clean_text(e[name]), name
            assert c.events[name][k] == e[name] or not e[name].isprintable()
        for name in ("difficulty", "pool_difficulty"):
            want = e[name] if math.isfinite(e[name]) else math.nan  # non-finite -> missing
            got = c.events[name][k]
            assert (math.isnan(want) and math.isnan(got)) or got == want
    assert set(EVENT_FIELDS) == set(c.events)


def test_op_at_follows_the_receipt_time_not_the_append_time(tmp_path: Path) -> None:
    path = tmp_path / "op.journal"
    with Journal(path, attrs={"source_kind": "emulated"}) as j:
        dev = j.register_device("rig")
        op = j.append_op(dev, math.nan, math.nan, t_start_ns=1_000)
        assert j.op_at(dev, 999) == -1 and j.op_at(dev, 1_000) == op
        j.end_op(op, t_end_ns=2_000)
        assert j.op_at(dev, 1_999) == op and j.op_at(dev, 2_000) == -1
        assert j.op_at(dev + 1, 1_500) == -1
        j.append_event(t_host_ns=500, device_index=dev, op_index=j.op_at(dev, 500),
                       processing_delay_ns=7_000)
    ds = recover(path)
    assert ds["op_index"].values.tolist() == [-1]
    assert ds["processing_delay_ns"].values.tolist() == [7_000]


def test_older_event_records_without_processing_delay_are_read(tmp_path: Path) -> None:
    path = tmp_path / "old.journal"
    with Journal(path, attrs={"source_kind": "emulated"}) as j:
        j.append_event(t_host_ns=10, device_index=0, nonce=5, processing_delay_ns=3)
    lines = path.read_text().splitlines()
    old = [ln.rsplit(",", 1)[0] + "]" if ln.startswith('["E",') else ln for ln in lines]
    path.write_text("\n".join(old) + "\n")
    ds = recover(path)
    assert ds["nonce"].values.tolist() == [5]
    assert ds["processing_delay_ns"].values.tolist() == [-1]
