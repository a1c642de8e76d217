"""Energy per valid share, telemetry efficiency, and the windowed label-leak reproduction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from asiclab.devices.simulated import simulate_sweep
from asiclab.tpf import energy as EN
from asiclab.tpf import engine as E
from asiclab.tpf import leak as L


def test_paper_saving_is_a_definition() -> None:
    assert EN.paper_saving(5, 64) == pytest.approx(0.921875)
    assert round(100 * EN.paper_saving(5, 64), 2) == 92.19
    with pytest.raises(EN.EnergyError):
        EN.paper_saving(65, 64)


def test_accounting_table_and_legitimate_saving() -> None:
    job = E.Job.from_prefix(E.random_prefixes(1, seed=5)[0])
    t = EN.accounting_table(job, np.arange(500, dtype=np.uint32), E.target_from_probability(2**-40))
    r = dict(zip(t["mode"], t["rounds_per_nonce"], strict=True))
    assert r == {"naive": 192.0, "midstate": 128.0, "precomputed": 125.0, "h7_early_out": 122.0}
    assert t["all_correct"].all()
    s = dict(zip(t["mode"], t["saving_vs_midstate"], strict=True))
    assert s["h7_early_out"] == pytest.approx(6 / 128)


def test_frontier_known_cases() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(20000) < 1 / 64
    useless = rng.random(20000)  # a score that knows nothing
    f = EN.frontier(useless, y, k=5)
    paper = f[f["policy"].str.startswith("paper")].iloc[0]
    assert paper["recall"] == 0 and math.isinf(paper["energy_ratio"])
    assert f.loc[f["policy"] == "no abort", "energy_ratio"].iloc[0] == 1.0
    rand = f[f["policy"] == "random abort"]
    assert (rand["energy_ratio"] >= 1.0 - 1e-12).all()  # random abort never saves per share
    oracle = f[f["policy"] == "oracle at round 5"].iloc[0]
    p = y.mean()
    assert oracle["energy_ratio"] == pytest.approx((5 + p * 123) / 128)
    clf = f[f["policy"].str.startswith("classifier")]
    # a useless score: continuing a fraction q keeps ~q of the shares -> ratio ~ >= 1
    assert EN.best_policy(f)["energy_ratio_hi"] > 0.95
    assert (clf["energy_ratio_lo"] <= clf["energy_ratio"] + 1e-12).all()
    # a perfect score reaches the oracle
    g = EN.frontier(y.astype(float), y, k=5)
    assert EN.best_policy(g)["energy_ratio"] == pytest.approx(oracle["energy_ratio"])
    with pytest.raises(EN.EnergyError):
        EN.frontier(useless, np.zeros(20000, dtype=bool), k=5)


def test_efficiency_from_simulated_telemetry() -> None:
    ds = simulate_sweep(1, [1200.0], dwell_s=600.0)
    eff = EN.efficiency_from_telemetry(ds)
    assert ds.attrs["source_kind"] == eff["source_kind"] == "simulated"
    assert eff["GH_per_W"] == pytest.approx(eff["hashrate_GHs"] / eff["power_W"])
    assert eff["J_per_TH"] == pytest.approx(1000 / eff["GH_per_W"])
    assert 10 < eff["GH_per_W"] < 100  # a BM1366 at nominal: tens of GH/W, not 2.93 MH/W
    assert EN.joules_per_share(25.0, 1.0) == pytest.approx(25e-12 * 2**32)
    with pytest.raises(EN.EnergyError):
        EN.efficiency_from_telemetry(ds.drop_vars("power"))


def test_leak_is_shown_and_leak_free_is_at_majority() -> None:
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.exponential(0.1, size=3000))  # Poisson shares: the past predicts nothing
    w = L.window_table(t, rng.exponential(500, size=3000), window_s=0.1)
    res = L.evaluate_leak(w)
    leaky, free = res.iloc[0], res.iloc[1]
    assert leaky["accuracy"] > 0.99 and leaky["p_vs_majority"] < 1e-10
    assert free["accuracy"] < free["majority_rate"] + 0.03  # no better than the majority
    assert free["p_vs_majority"] > 0.01
    with pytest.raises(L.LeakError):
        L.window_table(t[:5])


def test_window_table_counts() -> None:
    w = L.window_table(np.array([0.0, 0.5, 0.9, 2.1, 2.2, 2.3, 5.0, 5.5, 6.0, 9.99]),
                       np.arange(10.0), window_s=1.0)
    assert w["shares"].tolist() == [3, 0, 3, 0, 0, 2, 1, 0, 0, 1]
    assert w["max_difficulty"].tolist()[:3] == [2.0, 0.0, 5.0]
