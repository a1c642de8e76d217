"""The ``asiclab`` command line, run as the installed console script."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import xarray as xr

from asiclab import dataset
from asiclab.capture import journal


def _asiclab() -> list[str]:
    exe = shutil.which("asiclab", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "asiclab.cli"]


def test_version_and_help():
    out = subprocess.run([*_asiclab(), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("asiclab ")
    out = subprocess.run([*_asiclab(), "--help"], capture_output=True, text=True, check=True)
    for cmd in ("reproduce", "recover"):
        assert cmd in out.stdout


def test_recover_cut_journal(tmp_path: Path):
    path = tmp_path / "cap.journal"
    j = journal.Journal(path, attrs={"source_kind": "emulated", "title": "cli test"})
    dev = j.register_device("rig1", model="BM1366", source_kind="emulated")
    for i in range(5):
        j.append_event(t_host_ns=10**18 + i * 10**9, t_mono_ns=i * 10**9, device_index=dev,
                       nonce=i, valid=True, error_code=0, difficulty=300.0,
                       pool_difficulty=256.0)
    j.flush()
    # simulate a crash: no footer, and a torn last record
    with path.open("a") as fh:
        fh.write('["E", 1000000005000000000, 5')
    out = tmp_path / "cap.nc"
    proc = subprocess.run([*_asiclab(), "recover", str(path), "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    ds = dataset.open_capture(out)
    assert ds.sizes["event"] == 5
    assert list(ds["nonce"].values) == [0, 1, 2, 3, 4]
    assert int(ds.attrs["journal_torn_records"]) == 1
    xr.testing.assert_identical(ds, dataset.open_capture(out))


def test_recover_of_garbage_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "bad.journal"
    bad.write_bytes(b"\x00\x01 not a journal\n")
    proc = subprocess.run([*_asiclab(), "recover", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "asiclab: error:" in proc.stderr and "Traceback" not in proc.stderr
