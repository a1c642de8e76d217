"""Step driver: encodings, refusals, capture contents, features from the capture only."""

from __future__ import annotations

import numpy as np
import pytest

from asiclab import dataset
from asiclab.narma import driver, features, task
from asiclab.narma._errors import EncodingError


def test_encodings_map_u_onto_one_setting():
    f = driver.Encoding("frequency", frequency_MHz=(400.0, 500.0))
    assert f.setting(0.0).frequency_MHz == 400.0 and f.setting(0.5).frequency_MHz == 500.0
    assert f.setting(0.25).voltage_mV == f.nominal_voltage_mV
    v = driver.Encoding("voltage", voltage_mV=(1100.0, 1250.0)).setting(0.5)
    assert v.voltage_mV == 1250.0 and v.frequency_MHz == 485.0
    d = driver.Encoding("difficulty", difficulty=(4.0, 0.5))
    assert d.setting(0.0).difficulty == pytest.approx(4.0)
    assert d.setting(0.5).difficulty == pytest.approx(0.5)
    p = driver.Encoding("payload").setting(0.25)
    assert p.payload == driver.payload_extranonce2(0.25) == "80000000"
    assert (p.voltage_mV, p.frequency_MHz) == (1200.0, 485.0)
    with pytest.raises(EncodingError, match="unknown encoding"):
        driver.Encoding("temperature")


@pytest.mark.parametrize("encoding", ["frequency", "voltage"])
def test_axeos_sources_refuse_restarting_encodings(encoding):
    with pytest.raises(EncodingError, match=r"restart.*Refused"):
        driver.drive(np.full(10, 0.2), encoding, source="axeos")
    with pytest.raises(EncodingError, match="cannot apply"):
        driver.drive(np.full(10, 0.2), encoding, source="emulated")


def test_stratum_sources_refuse_bad_options_before_anything_runs():
    with pytest.raises(EncodingError, match="miner_url"):
        driver.drive(np.full(10, 0.2), "payload", source="axeos")
    with pytest.raises(EncodingError, match="beyond the emulated"):
        driver.drive(np.full(10, 0.2), "difficulty", source="emulated", difficulty_scale=1.0)


def test_serial_refuses_payload_and_voltage_without_setter():
    with pytest.raises(EncodingError, match="payload"):
        driver.drive(np.full(10, 0.2), "payload", source="serial-emulated")
    with pytest.raises(EncodingError, match="voltage"):
        driver.drive(np.full(10, 0.2), "voltage", source="serial", serial_port="/dev/null")


def test_unsafe_plan_is_refused_before_anything_runs():
    from asiclab.capture import live

    enc = driver.Encoding("frequency", frequency_MHz=(400.0, 900.0))
    with pytest.raises(live.UnsafePlanError):
        driver.drive(np.full(5, 0.5), enc, source="serial-emulated", step_s=0.1)


def test_simulated_drive_is_a_capture_with_the_input(tmp_path):
    s = task.generate(60, seed=1)
    ds = driver.drive(s.u, "frequency", step_s=0.5, seed=3)
    dataset.validate_capture(ds)
    assert ds.attrs["source_kind"] == "simulated" and ds.attrs["narma_encoding"] == "frequency"
    assert ds.sizes["op"] == 60
    np.testing.assert_array_equal(ds["narma_u"].values, s.u)
    np.testing.assert_allclose(ds["op_frequency_set"].values,
                               [driver.Encoding("frequency").setting(x).frequency_MHz
                                for x in s.u])
    # tens of events per step at the default ticket difficulty
    F = features.step_features(ds)
    assert 20 < F["n_valid"].mean() < 200
    # saved and reopened: same features (the analysis re-runs from the file)
    path = dataset.save_capture(ds, tmp_path / "narma.nc")
    back = dataset.open_capture(path)
    np.testing.assert_array_equal(back["narma_u"].values, s.u)
    np.testing.assert_allclose(features.step_features(back).to_numpy(), F.to_numpy())


def test_simulated_drive_is_deterministic_and_payload_blind():
    u = task.generate(80, seed=2).u
    a = features.step_features(driver.drive(u, "payload", seed=4))
    b = features.step_features(driver.drive(u[::-1].copy(), "payload", seed=4))
    # the simulated chip never sees the payload: another input, the same events
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    c = features.step_features(driver.drive(u, "frequency", seed=4))
    assert not np.array_equal(a.to_numpy(), c.to_numpy())


def test_features_use_only_events_inside_each_step():
    u = task.generate(40, seed=0).u
    ds = driver.drive(u, "difficulty", step_s=1.0, seed=0)
    F = features.step_features(ds, telemetry=False)
    start, end = ds.op_t_start_ns.values, ds.op_t_end_ns.values
    t, valid = ds.t_host_ns.values, ds.valid.values
    for k in (0, 7, 39):
        sel = (t >= start[k]) & (t < end[k])
        assert F.loc[k, "n_valid"] == (sel & valid).sum()
        assert F.loc[k, "first_latency"] == pytest.approx((t[sel & valid][0] - start[k]) * 1e-9)
    # moving events of later steps does not change an earlier step's features
    ds2 = ds.copy(deep=True)
    late = t >= start[20]
    ds2["t_host_ns"].values[late] = ds2["t_host_ns"].values[late] + 1
    F2 = features.step_features(ds2, telemetry=False)
    np.testing.assert_array_equal(F.iloc[:19].to_numpy(), F2.iloc[:19].to_numpy())
    assert F.filter(like="core_group").shape[1] == 4


def test_serial_emulated_drive_through_the_live_layer(tmp_path):
    u = task.generate(30, seed=0).u[:6]
    ds = driver.drive(u, "frequency", source="serial-emulated", step_s=0.25, time_scale=20.0,
                      job_interval_s=0.2, journal_path=tmp_path / "n.journal")
    dataset.validate_capture(ds)
    assert ds.attrs["source_kind"] == "emulated" and ds.sizes["op"] == 6
    np.testing.assert_array_equal(ds["narma_u"].values, u)
    assert ds.attrs["stop_reason"] == "completed"
    assert features.step_features(ds, telemetry=False)["n_valid"].sum() > 0


def test_serial_drive_restores_the_external_voltage_even_on_error(tmp_path):
    calls = []

    def setter(mV):
        calls.append(mV)

    enc = driver.Encoding("voltage", voltage_mV=(1150.0, 1250.0))
    from asiclab.capture import live

    with pytest.raises(live.LiveError):  # no UART there: the live layer fails
        driver.drive(np.full(4, 0.3), enc, source="serial", step_s=0.1, voltage_setter=setter,
                     serial_port="/nonexistent/tty", journal_path=tmp_path / "x.journal")
    assert calls and calls[-1] == 1200.0


# ------------------------------------------------------------------ emulated LV06 (Stratum)
def _step_of_events(ds):
    """Step of every event from the window times alone (as the features assign them)."""
    t = ds["t_host_ns"].values
    start, end = ds["op_t_start_ns"].values, ds["op_t_end_ns"].values
    k = np.searchsorted(start, t, side="right") - 1
    inside = (k >= 0) & (t < end[np.clip(k, 0, None)])
    return np.where(inside, k, -1)


def test_emulated_lv06_payload_drive_puts_each_input_in_its_steps_jobs(tmp_path):
    from asiclab.capture.journal import read_jobs

    u = task.generate(24, seed=5).u
    journal = tmp_path / "payload.journal"
    ds = driver.drive(u, "payload", source="emulated", step_s=0.5, seed=3,
                      emulated_ticket_difficulty=8.0, journal_path=journal)
    dataset.validate_capture(ds)
    assert ds.attrs["source_kind"] == "emulated" and ds.attrs["narma_encoding"] == "payload"
    assert ds.attrs["settings_restored"] == 1 and ds.attrs["stop_reason"] == "completed"
    assert ds.sizes["op"] == 24
    np.testing.assert_array_equal(ds["narma_u"].values, u)
    assert list(ds["narma_payload"].values) == [driver.payload_extranonce2(x) for x in u]
    # no restart: the set point is the nominal one at every step
    np.testing.assert_array_equal(ds["op_voltage_set"].values, 1200.0)
    np.testing.assert_array_equal(ds["op_frequency_set"].values, 485.0)
    # every step issued one clean job carrying its payload
    jobs = {j["job_id"]: j for j in read_jobs(journal)}
    for k, jid in enumerate(ds["narma_job_id"].values):
        assert jobs[jid]["clean"] and jobs[jid]["payload"] == ds["narma_payload"].values[k]
    # events land in the step whose window holds their receipt time, and every valid share
    # of a step was found on a job with that step's payload
    k_ev = _step_of_events(ds)
    op = ds["op_index"].values
    np.testing.assert_array_equal(op[op >= 0], k_ev[op >= 0])
    valid = ds["valid"].values
    ev_payload = np.array([jobs.get(j, {}).get("payload") for j in ds["job_id"].values],
                          dtype=object)
    in_step = valid & (k_ev >= 0)
    assert in_step.sum() > 2 * 24, "expected several shares per step"
    np.testing.assert_array_equal(ev_payload[in_step],
                                  ds["narma_payload"].values[k_ev[in_step]])
    # late shares of the previous job are stale, in the new step, and not counted as invalid
    stale = ds["error_code"].values == 21
    assert not valid[stale].any()
    for i in np.flatnonzero(stale & (k_ev > 0)):
        assert int(ds["job_id"].values[i], 16) < int(ds["narma_job_id"].values[k_ev[i]], 16)
    # the BM1366 core id comes from the nonce, as the emulator (and the chip) put it there
    from asiclab.devices.emulated_lv06 import core_of_nonce

    ok = ds["nonce"].values >= 0
    assert [core_of_nonce(int(n)) for n in ds["nonce"].values[ok]] == \
        ds["core_id"].values[ok].tolist()
    assert "core_id_note" in ds.attrs
    F = features.step_features(ds)
    assert F[[f"core_group_{g}" for g in range(4)]].to_numpy().sum() == in_step.sum()
    np.testing.assert_array_equal(F["n_valid"].values, np.bincount(k_ev[in_step],
                                                                   minlength=24))
    np.testing.assert_array_equal(
        F["n_invalid"].values, np.bincount(k_ev[~valid & ~stale & (k_ev >= 0)], minlength=24))
    # the dataset round-trips through NetCDF, features unchanged
    back = dataset.open_capture(dataset.save_capture(ds, tmp_path / "payload.nc"))
    assert list(back["narma_job_id"].values) == list(ds["narma_job_id"].values)
    assert back.attrs["narma_encoding"] == "payload"
    np.testing.assert_allclose(features.step_features(back).to_numpy(), F.to_numpy())


def test_emulated_lv06_difficulty_drive_sets_each_steps_share_difficulty(tmp_path):
    u = task.generate(20, seed=6).u
    enc = driver.Encoding("difficulty")
    ds = driver.drive(u, enc, source="emulated", step_s=0.5, seed=4,
                      emulated_ticket_difficulty=8.0, journal_path=tmp_path / "d.journal")
    dataset.validate_capture(ds)
    scale = ds.attrs["narma_difficulty_scale"]
    assert scale == driver.STRATUM_DIFFICULTY_SCALE["emulated"]
    np.testing.assert_allclose(ds["narma_difficulty"].values,
                               [enc.setting(x).difficulty for x in u])
    k_ev = _step_of_events(ds)
    ok = ds["valid"].values & (k_ev >= 0)
    # every accepted share of a step was judged at that step's difficulty
    np.testing.assert_array_equal(ds["pool_difficulty"].values[ok],
                                  ds["narma_difficulty"].values[k_ev[ok]] * scale)
    assert np.all(ds["difficulty"].values[ok] >= ds["pool_difficulty"].values[ok])
    # and the emulated share rate follows it (higher u -> lower difficulty -> more shares)
    n = features.step_features(ds)["n_valid"].values
    hi = u > np.median(u)
    assert n[hi].mean() > n[~hi].mean()


@pytest.mark.hardware
def test_real_lv06_payload_drive(tmp_path):
    """A real LV06 / Bitaxe: 30 payload steps of 20 s (see tests/capture/test_live_hardware.py
    for the set-up: ASICLAB_MINER_URL, ASICLAB_LISTEN_HOST, ASICLAB_LISTEN_PORT)."""
    import os

    url = os.environ.get("ASICLAB_MINER_URL")
    host = os.environ.get("ASICLAB_LISTEN_HOST")
    if not url or not host:
        pytest.skip("set ASICLAB_MINER_URL (AxeOS address) and ASICLAB_LISTEN_HOST (LAN address)")
    u = task.generate(30, seed=7).u
    ds = driver.drive(u, "payload", source="axeos", step_s=20.0, miner_url=url,
                      listen_host=host, allow_lan=True,
                      listen_port=int(os.environ.get("ASICLAB_LISTEN_PORT", "3333")),
                      difficulty_scale=256.0, journal_path=tmp_path / "lv06.journal",
                      progress=True)
    dataset.validate_capture(ds)
    assert ds.attrs["source_kind"] == "hardware" and ds.attrs["settings_restored"] == 1
    assert ds.sizes["op"] == 30
    F = features.step_features(ds)
    assert F["n_valid"].sum() > 30, "expect ~0.4 shares/s at difficulty 256 and 485 MHz"


def test_axeos_source_code_path_against_the_emulated_firmware(tmp_path):
    """The 'axeos' path (AxeOS read-back, stratum+axeos capture) with the emulated LV06 as the
    miner: no PATCH, no restart, the miner's own set point recorded, labelled emulated."""
    import socket

    from asiclab.devices.emulated_axeos import AxeOSEmulator, ChipHandle
    from asiclab.devices.emulated_lv06 import EmulatedLV06
    from asiclab.devices.simulated import SimulatedChip

    chip = SimulatedChip(8, ticket_difficulty=8.0)
    chip.set_operating_point(1180.0, 500.0)
    handle = ChipHandle(chip)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with AxeOSEmulator(handle) as fw:
        miner = EmulatedLV06("127.0.0.1", port, chip=handle, seed=8)
        with miner.thread(duration_s=60):
            u = task.generate(20, seed=9).u
            ds = driver.drive(u, "payload", source="axeos", step_s=0.4, miner_url=fw.url,
                              listen_port=port, difficulty_scale=2.0**-20,
                              journal_path=tmp_path / "a.journal")
            miner.stop()
        assert fw.restart_count == 0
    assert ds.attrs["source_kind"] == "emulated" and ds.attrs["settings_restored"] == 1
    assert ds.sizes["op"] == 20
    np.testing.assert_array_equal(ds["op_voltage_set"].values, 1180.0)
    np.testing.assert_array_equal(ds["op_frequency_set"].values, 500.0)
    assert features.step_features(ds)["n_valid"].sum() > 20
