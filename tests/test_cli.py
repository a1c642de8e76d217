"""The ``asiclab`` command line, run as the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
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


# --------------------------------------------------------------------------- issue 7: capture CLI


def test_capture_lan_address_without_allow_lan_names_the_option(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from asiclab import cli

    out = tmp_path / "lan"
    rc = cli.main(["capture", "--mode", "stratum+axeos", "--listen-host", "0.0.0.0",
                   "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "--allow-lan" in err and "allow_lan=True" not in err
    assert not (out / "capture.journal").exists() and not (out / "capture.nc").exists()


def test_capture_without_a_miner_leaves_no_capture_blocking_the_out_dir(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from asiclab import cli

    out = tmp_path / "nominer"
    argv = ["capture", "--mode", "stratum+axeos", "--listen-port", "0", "--connect-timeout",
            "0.3", "--settle", "0", "--dwell", "1", "--out", str(out), "--no-progress"]
    for _ in range(2):  # the second run may reuse --out: nothing was captured the first time
        rc = cli.main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and "no miner" in err and "holds a capture already" not in err
        assert not (out / "capture.nc").exists() and not (out / "capture.journal").exists()


def test_capture_line_rate_and_job_interval_options_and_final_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from asiclab import cli

    out = tmp_path / "cpu"
    rc = cli.main(["capture", "--mode", "cpu", "--settle", "0", "--dwell", "2",
                   "--max-line-rate", "5", "--job-interval", "0.5", "--out", str(out),
                   "--no-progress"])
    text = capsys.readouterr()
    assert rc == 0, text.err
    final = text.out.strip().splitlines()[-1]
    ds = dataset.open_capture(out / "capture.nc")
    assert f"throttled {int(ds.attrs['server_throttled'])} time(s)" in final
    assert f"{int(ds.attrs['server_delayed_lines'])} line(s) delayed" in final
    assert f"{int(ds.attrs['server_refused_lines'])} refused" in final
    server = json.loads(ds.attrs["parameters"])["server"]
    assert server["max_requests_per_s"] == 5.0 and server["job_interval_s"] == 0.5
    assert len(journal.read_jobs(out / "capture.journal")) >= 2
    # no --seed: the jobs come from fresh randomness, and the seed used is recorded
    assert isinstance(ds.attrs["seed"], int | np.integer)
    assert ds.attrs["seed_origin"].startswith("drawn")


def test_capture_help_documents_several_miners_and_the_new_options() -> None:
    out = subprocess.run([*_asiclab(), "capture", "--help"], capture_output=True, text=True,
                         check=True).stdout
    flat = " ".join(out.split())
    for opt in ("--max-line-rate", "--job-interval", "--source-kind"):
        assert opt in flat
    assert "several miners" in flat and "own operating-point windows" in flat
