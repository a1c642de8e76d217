"""Live capture from a real Lucky Miner LV06 / Bitaxe (hardware only; skipped by default).

How to run
----------
1. In the miner's AxeOS web page, set the pool (Stratum URL) to the capture host's LAN address and
   port (e.g. ``stratum+tcp://192.168.1.20:3333``), any worker name, and save. The miner will show
   a pool connection error until the capture server runs: that is expected.
2. On the capture host::

       ASICLAB_MINER_URL=http://192.168.1.50 ASICLAB_LISTEN_HOST=0.0.0.0 \\
           .venv/bin/pytest -m hardware tests/test_live_hardware.py

   (``ASICLAB_LISTEN_PORT`` defaults to 3333.) The test sweeps two safe points near the stock
   setting (485 MHz at 1200 and 1180 mV), 120 s each, restores the original settings, and checks
   that shares arrived from the miner with host timestamps, verified by SHA256d, with telemetry.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from asiclab import dataset
from asiclab.capture import live


@pytest.mark.hardware
def test_real_lv06_sweep(tmp_path: Path) -> None:
    url = os.environ.get("ASICLAB_MINER_URL")
    host = os.environ.get("ASICLAB_LISTEN_HOST")
    if not url or not host:
        pytest.skip("set ASICLAB_MINER_URL (AxeOS address) and ASICLAB_LISTEN_HOST (LAN address)")
    plan = live.SweepPlan.grid([1200.0, 1180.0], [485.0], settle_s=30.0, dwell_s=120.0)
    ds = live.run_live_capture(
        "stratum+axeos", plan, journal_path=tmp_path / "lv06.journal", miner_url=url,
        listen_host=host, listen_port=int(os.environ.get("ASICLAB_LISTEN_PORT", "3333")),
        allow_lan=True, pool_difficulty=256.0, progress=True)
    dataset.validate_capture(ds)
    assert ds.attrs["source_kind"] == "hardware"
    assert ds.attrs["settings_restored"] == 1
    assert ds.sizes["sample"] > 0 and np.isfinite(ds.temperature.values).any()
    valid = ds.valid.values
    assert valid.sum() > 10, "fewer than 10 shares in 4 minutes (expect ~0.4/s at 485 MHz)"
    assert np.all(ds.difficulty.values[valid] >= 256.0)
    assert set(ds.op_index.values[valid]) >= {0, 1}
