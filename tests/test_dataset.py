"""Capture schema: construction, validation, NetCDF round trip, damaged files, helpers."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from asiclab import dataset as D


def _capture(n: int = 50, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    t = 1_700_000_000_000_000_000 + np.cumsum(rng.integers(1, 10**9, n))
    return D.build_capture(
        events={"t_host_ns": t, "t_mono_ns": t - t[0], "nonce": rng.integers(0, 2**32, n),
                "job_id": [f"j{i % 3}" for i in range(n)], "core_id": rng.integers(0, 112, n),
                "version_bits": np.zeros(n), "difficulty": 256 / rng.random(n),
                "pool_difficulty": np.full(n, 256.0), "valid": rng.random(n) > 0.1,
                "error_code": np.zeros(n), "device_index": np.arange(n) % 2,
                "op_index": (np.arange(n) >= n // 2).astype(int) + 2 * (np.arange(n) % 2)},
        telemetry={"tel_t_host_ns": t[:5], "tel_device_index": [0, 1, 0, 1, 0],
                   "temperature": [50.0, 51, 52, 53, np.nan], "power": [10.0] * 5},
        ops={"op_device_index": [0, 0, 1, 1], "op_voltage_set": [1200.0, 1100, 1200, 1100],
             "op_frequency_set": [485.0] * 4, "op_t_start_ns": [t[0]] * 4,
             "op_t_end_ns": [t[-1]] * 4},
        devices={"device_name": ["a", "b"], "device_model": ["BM1366", "BM1366"],
                 "device_source_kind": ["simulated", "simulated"]},
        attrs={"source_kind": "simulated", "seed": seed, "parameters": {"x": [1, 2]},
               "device_model": "BM1366", "firmware": None},
    )


def test_schema_fields_have_units_and_long_names():
    ds = _capture()
    for f in D.FIELDS:
        assert ds[f.name].attrs["units"] == f.units
        assert ds[f.name].attrs["long_name"] == f.long_name
        assert ds[f.name].dims == (f.dim,)
    assert ds["t_host_ns"].dtype == np.int64
    assert ds["valid"].dtype == bool


def test_missing_columns_get_sentinels_and_none_attrs():
    ds = D.build_capture(events={"t_host_ns": [1, 2, 3]}, attrs={"source_kind": "imported"})
    assert (ds["nonce"].values == -1).all()
    assert np.isnan(ds["difficulty"].values).all()
    assert list(ds["job_id"].values) == ["", "", ""]
    assert ds.attrs["seed"] == D.NONE
    assert D.get_attr(ds, "seed") is None
    assert ds.sizes["device"] == 1  # implied by device_index 0


def test_round_trip_identical(tmp_path):
    ds = _capture()
    path = D.save_capture(ds, tmp_path / "sub" / "c.nc")
    back = D.open_capture(path)
    xr.testing.assert_identical(ds, back)
    assert D.get_attr(back, "parameters") == {"x": [1, 2]}
    assert D.get_attr(back, "firmware") is None


def test_round_trip_empty_capture(tmp_path):
    ds = D.build_capture(attrs={"source_kind": "hardware"})
    xr.testing.assert_identical(ds, D.open_capture(D.save_capture(ds, tmp_path / "e.nc")))


def test_unknown_source_kind_rejected():
    with pytest.raises(D.CaptureFormatError, match="source_kind"):
        D.build_capture(events={"t_host_ns": [1]}, attrs={"source_kind": "dreamed"})


def test_bad_columns_rejected():
    with pytest.raises(D.CaptureValueError, match="unknown event column"):
        D.build_capture(events={"t_host_ns": [1], "bogus": [2]}, attrs={"source_kind": "imported"})
    with pytest.raises(D.CaptureValueError, match="nonce"):
        D.build_capture(events={"t_host_ns": [1, 2], "nonce": [1]},
                        attrs={"source_kind": "imported"})


@pytest.mark.parametrize("field", ["t_host_ns", "valid", "op_voltage_set", "device_name"])
def test_missing_field_named(tmp_path, field):
    ds = _capture().drop_vars(field)
    with pytest.raises(D.CaptureFormatError, match=field):
        D.validate_capture(ds)
    # the same on disk: written by plain xarray, opened by open_capture
    ds.to_netcdf(tmp_path / "m.nc")
    with pytest.raises(D.CaptureFormatError, match=field):
        D.open_capture(tmp_path / "m.nc")


def test_malformed_field_named():
    ds = _capture()
    ds["t_host_ns"] = ds["t_host_ns"].astype(float)
    with pytest.raises(D.CaptureFormatError, match=r"t_host_ns.*dtype"):
        D.validate_capture(ds)
    ds = _capture()
    del ds["power"].attrs["units"]
    with pytest.raises(D.CaptureFormatError, match=r"power.*units"):
        D.validate_capture(ds)
    ds = _capture()
    ds["device_index"][0] = 7
    with pytest.raises(D.CaptureFormatError, match="device_index"):
        D.validate_capture(ds)


def test_missing_attr_named():
    ds = _capture()
    del ds.attrs["seed"]
    with pytest.raises(D.CaptureFormatError, match="seed"):
        D.validate_capture(ds)


def test_truncated_and_foreign_files(tmp_path):
    path = D.save_capture(_capture(), tmp_path / "c.nc")
    data = path.read_bytes()
    for i, cut in enumerate((len(data) // 2, 100, 9)):
        bad = tmp_path / f"t{i}.nc"
        bad.write_bytes(data[:cut])
        with pytest.raises(D.CaptureFormatError, match=str(bad.name)):
            D.open_capture(bad)
    text = tmp_path / "x.nc"
    text.write_text("timestamp,nonce\n1,2\n")
    with pytest.raises(D.CaptureFormatError, match="not a NetCDF"):
        D.open_capture(text)
    with pytest.raises(D.CaptureFormatError, match="no such"):
        D.open_capture(tmp_path / "absent.nc")


def test_save_is_atomic_and_validates(tmp_path):
    ds = _capture().drop_vars("nonce")
    with pytest.raises(D.CaptureFormatError):
        D.save_capture(ds, tmp_path / "c.nc")
    assert not list(tmp_path.iterdir())


def test_inter_arrival_times_per_device_and_op():
    ds = _capture(200)
    gaps = D.inter_arrival_times(ds)
    valid = ds["valid"].values
    for (d, o), iat in gaps.items():
        m = valid & (ds["device_index"].values == d) & (ds["op_index"].values == o)
        t = np.sort(ds["t_host_ns"].values[m])
        np.testing.assert_allclose(iat, np.diff(t) * 1e-9)
        assert (iat >= 0).all()
    assert sum(v.size + 1 for v in gaps.values()) == int(valid.sum())
    assert set(D.inter_arrival_times(ds, device=1)) == {k for k in gaps if k[0] == 1}


def test_valid_events():
    ds = _capture()
    v = D.valid_events(ds)
    assert v.sizes["event"] == int(ds["valid"].sum())
    assert v["valid"].values.all()
    assert v.sizes["op"] == ds.sizes["op"]


def test_concat_captures_reindexes():
    a, b = _capture(20, 1), _capture(30, 2)
    c = D.concat_captures([a, b])
    assert c.sizes["device"] == 4 and c.sizes["op"] == 8 and c.sizes["event"] == 50
    assert c["device_index"].values[20:].min() >= 2
    assert c["op_index"].values[20:].min() >= 4


def test_open_capture_logs_file_for_manifest(tmp_path):
    from asiclab import results

    path = D.save_capture(_capture(), tmp_path / "c.nc")
    D.open_capture(path)
    log = (results.run_dir() / results.FILES_LOG).read_text().splitlines()
    assert any('"written"' in line for line in log) and any('"read"' in line for line in log)
