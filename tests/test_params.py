"""Notebook parameter validation."""

from __future__ import annotations

import pytest

from asiclab import params
from asiclab.capture import workflow as capture
from asiclab.params import Param, ParameterError, spec_table, validate

SPEC = {
    "n": Param(int, "count", min=1, max=10),
    "x": Param(float, "value [s]", min=0.0),
    "mode": Param(str, "mode", choices=("a", "b")),
    "vs": Param(list, "voltages [mV]", item=float, min=800, max=1400, min_len=1),
    "maybe": Param(str, "optional", nullable=True),
}
GOOD = {"n": 3, "x": 2, "mode": "a", "vs": [900, 1000.5], "maybe": None, "run_dir": ""}


def test_valid_parameters_pass_and_coerce():
    p = validate(GOOD, SPEC)
    assert p["x"] == 2.0 and isinstance(p["x"], float)
    assert p["run_dir"]


@pytest.mark.parametrize(("name", "value", "allowed"), [
    ("n", 0, "in [1, 10]"), ("n", 2.5, "an integer"), ("n", True, "an integer"),
    ("x", "fast", "a number"), ("x", -1.0, ">= 0"), ("x", float("nan"), "a number"),
    ("mode", "c", "one of 'a', 'b'"), ("vs", [], "at least 1"), ("vs", [700], "800"),
    ("vs", ["1"], "list of a number"), ("maybe", 3, "a string"),
])
def test_wrong_parameter_names_value_and_allowed(name, value, allowed):
    bad = dict(GOOD, **{name: value})
    with pytest.raises(ParameterError) as info:
        validate(bad, SPEC)
    err = info.value
    assert err.name == name
    assert err.value == value or value != value  # NaN is not equal to itself
    text = str(err)
    assert repr(name) in text and allowed in text


def test_missing_parameter():
    bad = {k: v for k, v in GOOD.items() if k != "mode"}
    with pytest.raises(ParameterError, match="'mode'"):
        validate(bad, SPEC)


def test_capture_params_check_repeated_voltages():
    vals = {**capture.LIVE_DEFAULTS, "source": "sim", "seed": 1, "n_devices": 1,
            "voltages_mV": [1200.0, 1200.0],
            "frequency_MHz": 485.0, "dwell_s": 10.0, "settle_s": 0.0,
            "telemetry_interval_s": 3.0, "log_path": "", "log_format": "generic",
            "lenient": False, "run_dir": ""}
    with pytest.raises(ParameterError, match="voltages_mV"):
        validate(vals, capture.PARAMS)
    vals["voltages_mV"] = [1200.0, 1100.0]
    assert validate(vals, capture.PARAMS)["voltages_mV"] == [1200.0, 1100.0]


def test_spec_table_lists_every_parameter():
    text = spec_table(SPEC)
    for k in SPEC:
        assert f"`{k}`" in text


def test_relative_path_params_resolve_from_base_dir(tmp_path, monkeypatch):
    """Issue 7 item 8: a relative path parameter means the same as in the shell that ran it."""
    spec = {"log": params.Param(str, "a file", path=True), "name": params.Param(str, "text")}
    monkeypatch.setenv(params.ENV_BASE_DIR, str(tmp_path))
    monkeypatch.chdir(tmp_path.parent)
    out = params.validate({"log": "../x/log.csv", "name": "../y"}, spec)
    assert out["log"] == str(tmp_path / "../x/log.csv")
    assert out["name"] == "../y"  # not a path parameter: untouched
    assert params.validate({"log": "", "name": ""}, spec)["log"] == ""
    assert params.validate({"log": "/abs/f", "name": ""}, spec)["log"] == "/abs/f"
    monkeypatch.delenv(params.ENV_BASE_DIR)
    from asiclab import results

    assert params.validate({"log": "f.csv", "name": ""}, spec)["log"] == str(
        results.project_root() / "f.csv")
