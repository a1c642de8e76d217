"""Recorded results and the file log."""

from __future__ import annotations

import json

import numpy as np
import pytest

from asiclab import results


def test_record_and_replace(tmp_path):
    results.set_run_dir(tmp_path, "nbA")
    results.record("cv", np.float64(0.83), "1", 0.002, note="bootstrap")
    results.record("rate", 10.5, "1/s", (10.0, 11.0), verdict="ok")
    results.record("cv", 0.84, "1", 0.003)
    data = json.loads((tmp_path / results.RESULTS_FILE).read_text())["results"]
    assert [(r["name"], r["value"]) for r in data] == [("rate", 10.5), ("cv", 0.84)]
    assert data[0]["uncertainty"] == [10.0, 11.0] and data[0]["verdict"] == "ok"
    assert all(r["notebook"] == "nbA" for r in data)


def test_nan_is_stored_as_null(tmp_path):
    results.set_run_dir(tmp_path)
    e = results.record("x", float("nan"), "1")
    assert e["value"] is None
    json.loads((tmp_path / results.RESULTS_FILE).read_text())


@pytest.mark.parametrize(("args", "match"), [
    (("", 1.0, "1"), "name"), (("a", 1.0, ""), "unit"), (("a", [1, 2], "1"), "value"),
    (("a", 1.0, "1", "big"), "uncertainty"),
])
def test_bad_records_rejected(tmp_path, args, match):
    results.set_run_dir(tmp_path)
    with pytest.raises(results.ResultError, match=match):
        results.record(*args)


def test_damaged_results_file_is_a_clear_error(tmp_path):
    results.set_run_dir(tmp_path)
    (tmp_path / results.RESULTS_FILE).write_text("{not json")
    with pytest.raises(results.ResultError, match="not valid JSON"):
        results.record("a", 1, "1")


def test_format_value():
    assert results.format_value({"value": 0.8271, "uncertainty": 0.002, "unit": "1"}) \
        == "0.8271 ± 0.002"
    assert results.format_value({"value": 2.0, "uncertainty": [1.0, 3.0], "unit": "1/s"}) \
        == "2 [1, 3] 1/s"


def test_claim_rows_form_the_ledger(tmp_path):
    results.set_run_dir(tmp_path, "03_narma10")
    claim = results.Claim("narma10_nrmse_paper_claim", 0.8661, "arXiv:2601.12032, Sec. 5",
                          "NARMA-10 NRMSE 0.8661 with the chip as reservoir")
    results.record("narma_nrmse_device", 0.97, "1", (0.95, 0.99), verdict="no computation",
                   claim=claim)
    results.record("plain", 1.0, "1")
    ledger = results.claims_ledger(results.load_results())
    assert len(ledger) == 1
    row = ledger[0]
    assert row["claim"] == "narma10_nrmse_paper_claim" and row["paper_value"] == 0.8661
    assert row["measured"] == "0.97 [0.95, 0.99]" and row["notebook"] == "03_narma10"
    assert row["verdict"] == "no computation" and row["result"] == "narma_nrmse_device"


@pytest.mark.parametrize(("claim", "match"), [
    ({"id": "bad id!", "paper_value": 1, "source": "arXiv:1"}, "letters"),
    ({"id": "ok", "paper_value": 1, "source": ""}, "source"),
    ({"id": "ok", "paper_value": [1, 2], "source": "arXiv:1"}, "paper_value"),
    ({"id": "ok", "paper": 1, "source": "arXiv:1"}, "bad claim"),
])
def test_bad_claims_rejected(tmp_path, claim, match):
    results.set_run_dir(tmp_path)
    with pytest.raises(results.ResultError, match=match):
        results.record("a", 1.0, "1", verdict="v", claim=claim)


def test_claim_needs_a_verdict(tmp_path):
    results.set_run_dir(tmp_path)
    with pytest.raises(results.ResultError, match="verdict"):
        results.record("a", 1.0, "1", claim={"id": "c", "paper_value": 1, "source": "arXiv:1"})
