"""Tests of asiclab.heartbeat (Silicon-Heartbeat statistics) and asiclab.heartbeat.plots.

Known answers used:

* exact rate interval: ``2 lambda T ~ chi2(2n)`` (gamma waiting time);
* Ljung-Box, ACF, Lilliefors, KS: identical to statsmodels / scipy;
* Anderson-Darling statistic: identical to ``scipy.stats.anderson(dist="expon")``;
* DFA1 of white noise: ``E F^2(s) = sigma^2 (s^2 - 4) / (15 s)`` (exact trace of the detrended
  random-walk covariance, computed independently in the test); random walk: alpha = 1.5;
* Allan factor: ``m * AVAR / mean`` with ``allantools.adev`` (non-overlapping Allan variance);
* Imhof's formula with equal weights: chi-square;
* Holm / Benjamini-Hochberg: identical to ``statsmodels.stats.multitest.multipletests``;
* S9 share log: CV of the unique valid inter-arrival times 0.813 +/- 0.002 (issue 7: 42
  duplicate resubmissions are flagged invalid; 0.827 with them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from asiclab import dataset
from asiclab import heartbeat as hb
from asiclab.heartbeat import battery, nulls, paper, power, spectral, surrogates
from asiclab.heartbeat import stats as hs

N = 2000  # events per record: all battery runs share the null tables of n = 1999 intervals


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng([20240917, seed])


# ------------------------------------------------------------------------------------ stats


def test_rate_interval_is_the_exact_gamma_interval() -> None:
    rate, lo, hi = hs.rate_confidence_interval(10, 2.0, 0.95)
    assert rate == 5.0
    assert lo == pytest.approx(stats.gamma.ppf(0.025, 10) / 2.0)
    assert hi == pytest.approx(stats.gamma.ppf(0.975, 10) / 2.0)
    # coverage by simulation: the interval is exact, so ~95 %
    r = rng(1)
    spans = r.gamma(20, 1 / 3.0, size=4000)  # time to the 20th event at rate 3
    cov = np.mean([
        lo_ <= 3.0 <= hi_
        for _, lo_, hi_ in (hs.rate_confidence_interval(20, s) for s in spans)
    ])
    assert 0.94 <= cov <= 0.96


def test_cv_and_its_intervals() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert hs.coefficient_of_variation(x) == pytest.approx(np.std(x, ddof=1) / 2.5)
    e = nulls.simulate_poisson_intervals(20000, 2.0, rng=rng(2))
    assert hs.cv_asymptotic_se(e) == pytest.approx(1 / np.sqrt(e.size), rel=0.1)
    g = nulls.simulate_gamma_intervals(20000, 0.5, rng=rng(3))
    assert hs.cv_asymptotic_se(g) == pytest.approx(0.5 * np.sqrt(1.25 / 2 / g.size), rel=0.1)
    cv, lo, hi, method = hs.cv_confidence_interval(g[:2000], seed=1)
    assert method == "bootstrap" and lo < cv < hi and lo < 0.5 < hi
    _, lo2, hi2, method2 = hs.cv_confidence_interval(g, max_boot_n=1000)
    assert method2 == "delta" and lo2 < 0.5 < hi2
    # bootstrap and delta intervals agree on a long record
    _, blo, bhi, _ = hs.cv_confidence_interval(g[:5000], seed=2)
    _, dlo, dhi, _ = hs.cv_confidence_interval(g[:5000], max_boot_n=10)
    assert bhi - blo == pytest.approx(dhi - dlo, rel=0.15)


def test_bad_input_raises_typed_errors() -> None:
    with pytest.raises(hb.HeartbeatInputError):
        hs.coefficient_of_variation([1.0, -1.0, 2.0])
    with pytest.raises(hb.HeartbeatInputError):
        hs.coefficient_of_variation([1.0, np.nan, 2.0])
    with pytest.raises(hb.InsufficientDataError):
        hs.dfa(np.ones(100))
    with pytest.raises(hb.HeartbeatInputError):
        hb.run_battery(np.ones((2, 2, 2)))
    with pytest.raises(hb.HeartbeatError):
        hs.rate_confidence_interval(0, 1.0)
    assert issubclass(hb.HeartbeatError, hb.HeartbeatError.__mro__[1])


def test_anderson_and_lilliefors_match_reference_implementations() -> None:
    from statsmodels.stats.diagnostic import lilliefors

    x = rng(4).exponential(3.0, size=(3, 500))
    a2 = hs.anderson_exponential_statistic(x)
    d, p = hs.lilliefors_exponential(x)
    for i in range(3):
        ref = stats.anderson(x[i], dist="expon", method="interpolate").statistic
        assert a2[i] == pytest.approx(ref, rel=1e-9)
        d_ref, p_ref = lilliefors(x[i], dist="exp", pvalmethod="table")
        assert (d[i], p[i]) == pytest.approx((d_ref, p_ref))
    assert hs.anderson_exponential_statistic(x[0], modified=True) == pytest.approx(
        a2[0] * (1 + 0.6 / 500))


def test_uniformity_matches_scipy_kstest() -> None:
    x = rng(5).exponential(size=(2, 700))
    d, p = hs.conditional_uniformity_test(x)
    for i in range(2):
        t = np.cumsum(x[i])
        ref = stats.kstest(t[:-1] / t[-1], "uniform")
        assert (d[i], p[i]) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-9)
    # a linear rate drift is detected
    t = np.sqrt(np.sort(rng(6).uniform(0, 1, 3000)))
    assert hs.conditional_uniformity_test(np.diff(t))[1] < 1e-6


def test_acf_and_ljung_box_match_statsmodels() -> None:
    from statsmodels.stats.diagnostic import acorr_ljungbox
    from statsmodels.tsa.stattools import acf

    x = rng(7).exponential(size=1500)
    for nlags in (10, 40):  # direct products and FFT paths
        assert hs.autocorrelation(x, nlags) == pytest.approx(acf(x, nlags=nlags, fft=False))
    q, p = hs.ljung_box(x, 10)
    ref = acorr_ljungbox(x, lags=[10])
    assert q == pytest.approx(ref["lb_stat"].iloc[0])
    assert p == pytest.approx(ref["lb_pvalue"].iloc[0])
    lo, hi = hs.lag1_confidence_interval(0.2, 1000)
    assert lo < 0.2 < hi and hi - lo == pytest.approx(2 * 1.96 / np.sqrt(997), rel=0.05)


def test_dfa_known_answers() -> None:
    r = rng(8)
    scales = np.array([10, 20, 50, 100])
    d = hs.dfa(r.normal(size=(100, 4000)), scales=scales)

    def expected_f2(s: int) -> float:  # independent: exact trace of detrended random walk
        i = np.arange(1, s + 1)
        cov = np.minimum.outer(i, i).astype(float)
        v = np.vander(i - i.mean(), 2, increasing=True)
        h = v @ np.linalg.pinv(v)
        return float(np.trace((np.eye(s) - h) @ cov) / s)

    f2 = (d.fluctuation**2).mean(axis=0)
    for s, v in zip(scales, f2, strict=True):
        assert v == pytest.approx(expected_f2(int(s)), rel=0.03)
        assert expected_f2(int(s)) == pytest.approx((s * s - 4) / (15 * s))
    assert hs.dfa(r.normal(size=20000)).alpha == pytest.approx(0.5, abs=0.05)
    assert hs.dfa(np.cumsum(r.normal(size=20000))).alpha == pytest.approx(1.5, abs=0.1)
    sc = hs.dfa_scales(1999)
    assert sc[0] == 10 and sc[-1] == 199 and np.all(np.diff(sc) > 0)
    # offset invariance (profile uses deviations from the mean)
    y = r.exponential(size=5000)
    assert hs.dfa(y).alpha == pytest.approx(hs.dfa(y + 1e3).alpha, abs=1e-9)


def test_counting_statistics() -> None:
    x = np.array([1.0, 1.0, 1.0, 1.0, 4.0, 0.5, 0.5])  # events at 0,1,2,3,4,8,8.5,9
    c = hs.window_counts(x, 3)  # windows of 3 s; interior events 1,2,3,4,8,8.5
    assert c.tolist() == [[2, 2, 2]]
    assert hs.fano_factor(c)[0] == 0.0
    f, p = hs.fano_test(np.array([[5, 5, 5, 5], [0, 10, 0, 10]]))
    assert f[0] == 0 and f[1] == pytest.approx(4 * 25 / 3 / 5)
    assert p[1] == pytest.approx(2 * stats.chi2.sf(f[1] * 3, 3))
    assert hs.allan_factor([[1, 3, 1, 3]])[0] == pytest.approx(4 / 2 / 2)


def test_allan_factor_matches_allantools() -> None:
    import allantools

    c = rng(9).poisson(5.0, size=6400).astype(float)
    m = 8
    _, ad, _, _ = allantools.adev(c, rate=1.0, data_type="freq", taus=[m])
    w = c.reshape(-1, m).sum(axis=1)
    assert hs.allan_factor(w)[0] == pytest.approx(m * ad[0] ** 2 / c.mean(), rel=1e-9)


def test_imhof_and_allan_null() -> None:
    for x in (5.0, 30.0, 60.0):
        assert hs.weighted_chi2_sf(x, np.ones(31)) == pytest.approx(stats.chi2.sf(x, 31),
                                                                     abs=1e-9)
    k = 32
    w = 2 - 2 * np.cos(np.pi * np.arange(1, k) / k)
    z = rng(10).standard_normal((200_000, k - 1))
    af = (z**2) @ w / (2 * (k - 1))
    for q in (0.01, 0.5, 0.975):
        v = np.quantile(af, q)
        assert hs.allan_null_sf(v, k)[0] == pytest.approx(1 - q, abs=0.004)
        assert hs.allan_null_cdf(v, k)[0] == pytest.approx(q, abs=0.004)
    lo, hi = hs.allan_null_quantiles(k, [0.025, 0.975])
    assert lo == pytest.approx(np.quantile(af, 0.025), rel=0.05)
    assert hi == pytest.approx(np.quantile(af, 0.975), rel=0.05)


def test_counting_curves_bands() -> None:
    x = nulls.simulate_poisson_intervals(N - 1, 10.0, rng=rng(11))
    cur = hs.counting_curves(x)
    assert np.all(np.diff(cur["window_s"]) > 0)
    assert cur["window_s"][-1] <= 0.1 * x.sum() * 1.01
    assert np.all(cur["fano_lo"] < 1) and np.all(cur["fano_hi"] > 1)
    inside = (cur["fano"] > cur["fano_lo"]) & (cur["fano"] < cur["fano_hi"])
    assert inside.mean() >= 0.7


# ------------------------------------------------------------------------------- spectral


def test_point_process_periodogram_null_and_signal() -> None:
    x = nulls.simulate_poisson_intervals(20000, 10.0, size=4, rng=rng(12))
    pg = spectral.count_periodogram(x, 5.0)
    v = pg.power[:, 10:].ravel()
    assert v.mean() == pytest.approx(1.0, abs=0.03)
    assert stats.kstest(v[::7], "expon").pvalue > 1e-3
    # direct event-train periodogram agrees at low frequency (bins much shorter than 1/f)
    t = np.cumsum(x[0])
    f = pg.freqs(0)[:50]
    ev = spectral.event_periodogram(t[:-1], f)
    assert np.corrcoef(ev, pg.power[0, :50])[0, 1] > 0.99
    # an injected 2.4 Hz modulation is found by both spectral tests
    t = nulls.simulate_modulated_poisson_times(500.0, 10.0, 0.3, 2.4, rng(13))
    out = battery.spectral_tests(np.diff(t))
    assert out["spectral_target"][2][0] < 1e-6
    assert out["spectral_max"][3][0] == pytest.approx(2.4, abs=0.01)
    assert out["spectral_target"][1][0] == pytest.approx(0.3, abs=0.1)


def test_max_exp_sf() -> None:
    assert spectral.max_exp_sf(3.0, 10) == pytest.approx(1 - (1 - np.exp(-3.0)) ** 10)
    assert spectral.max_exp_sf(60.0, 1e6) == pytest.approx(1e6 * np.exp(-60.0), rel=1e-6)


def test_telemetry_cannot_see_2p4_hz_at_3_s_sampling() -> None:
    t = np.arange(400) * 3.0
    y = 15 + 0.5 * np.sin(2 * np.pi * 0.05 * t) + rng(14).normal(0, 0.1, t.size)
    ts = spectral.telemetry_spectrum(t, y)
    assert ts.nyquist_hz == pytest.approx(1 / 6)
    assert not ts.target_observable
    assert "cannot be seen" in ts.note
    assert ts.peak_freq_hz == pytest.approx(0.05, abs=0.002) and ts.peak_pvalue < 1e-6
    with pytest.raises(hb.InsufficientDataError):
        spectral.telemetry_spectrum(t[:5], y[:5])


# ---------------------------------------------------------------------------------- nulls


def test_null_tables_are_deterministic_and_sane() -> None:
    tab = nulls.null_table("cv", 1999)
    again = nulls.null_table.__wrapped__("cv", 1999)
    assert np.array_equal(tab.values, again.values)
    assert np.all(np.diff(tab.values) >= 0)
    assert tab.mean == pytest.approx(1.0, abs=0.003)
    assert tab.sd == pytest.approx(1 / np.sqrt(1999), rel=0.05)
    x = np.array([0.9, 0.95, 1.0, 1.05, 1.1])
    p = tab.two_sided(x)
    assert p[2] > 0.9 and p[0] < 1e-4 and p[0] > 0
    assert np.all(np.diff(tab.sf(np.linspace(1.0, 1.3, 50))) <= 0)  # smooth, monotone tail
    # beyond N_TABLE_MAX the CV is standardised by sqrt(n)
    big = 4 * nulls.N_TABLE_MAX
    assert nulls.cv_pvalue(1 + 2 / np.sqrt(big), big) == pytest.approx(
        nulls.cv_pvalue(1 + 2 / np.sqrt(nulls.N_TABLE_MAX), nulls.N_TABLE_MAX))
    with pytest.raises(hb.HeartbeatInputError):
        nulls.null_table("nope", 100)


def test_simulators() -> None:
    g = nulls.simulate_gamma_intervals(100_000, 0.8, rate=4.0, rng=rng(15))
    assert hs.coefficient_of_variation(g) == pytest.approx(0.8, abs=0.01)
    assert 1 / g.mean() == pytest.approx(4.0, rel=0.01)
    t = nulls.simulate_modulated_poisson_times(1000.0, 5.0, 0.5, 1.0, rng(16))
    assert t.size == pytest.approx(5000, rel=0.05)
    phase = (t * 1.0) % 1.0
    assert np.mean(np.cos(2 * np.pi * phase)) == pytest.approx(0.25, abs=0.03)  # d/2


# -------------------------------------------------------------------------------- battery


def test_adjust_rows_matches_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    p = rng(17).uniform(0, 0.2, size=(12, 10))
    p[rng(18).uniform(size=p.shape) < 0.2] = np.nan
    for method in ("holm", "fdr_bh"):
        adj = battery.adjust_rows(p, method)
        for i in range(p.shape[0]):
            ok = np.isfinite(p[i])
            ref = multipletests(p[i, ok], method=method)[1]
            assert adj[i, ok] == pytest.approx(ref)
            assert np.all(np.isnan(adj[i, ~ok]))
        pa, rej = battery.adjust_pvalues(p[0], method=method)
        assert np.array_equal(np.isnan(pa), np.isnan(p[0]))
        assert np.array_equal(rej, np.nan_to_num(pa, nan=1.0) <= 0.05)
    with pytest.raises(hb.HeartbeatInputError):
        battery.adjust_rows(p, "bonferroni")


def test_battery_on_clear_cases() -> None:
    r = rng(19)
    x = np.vstack([
        nulls.simulate_poisson_intervals(N - 1, 10.0, rng=r),
        nulls.simulate_gamma_intervals(N - 1, 0.5, 10.0, rng=r),
        nulls.simulate_gamma_intervals(N - 1, 1.6, 10.0, rng=r),
    ])
    res = hb.run_battery(x)
    assert res.pvalue.shape == (3, len(hb.TESTS))
    assert np.all((res.pvalue >= 0) & (res.pvalue <= 1))
    rej = res.any_rejected()
    assert rej.tolist() == [False, True, True]
    df = res.to_frame()
    assert set(df["test"]) == {t.name for t in hb.TESTS} and len(df) == 3 * len(hb.TESTS)
    # tests that need more data are NaN and leave the family
    small = hb.run_battery(x[0, :150])
    names = [t.name for t in hb.TESTS]
    assert np.isnan(small.pvalue[0, names.index("dfa")])
    assert np.isfinite(small.pvalue[0, names.index("cv")])
    only = hb.run_battery(x[0], only=["cv"])
    assert np.isfinite(only.pvalue[0, 0]) and np.all(np.isnan(only.pvalue[0, 1:]))


def test_verdict_strings() -> None:
    kw = {"n_events": 5000, "min_events": 100, "peak_hz": 2.4, "target_peak_hz": 2.4}
    assert hb.verdict({}, {}, **kw) == "consistent with Poisson"
    assert hb.verdict({"cv": True}, {"cv": 0.2}, **kw) == "over-dispersed (non-Poisson)"
    assert hb.verdict({"fano": True}, {"fano": -0.3}, **kw) == "under-dispersed (non-Poisson)"
    v = hb.verdict({"cv": True, "ljung_box": True}, {"cv": -0.2, "ljung_box": 0.1}, **kw)
    assert v == "under-dispersed (non-Poisson); serially dependent"
    v = hb.verdict({"spectral_target": True}, {}, shuffle_p={"spectral_target": 0.001}, **kw)
    assert v == "periodic component near 2.4 Hz"
    v = hb.verdict({"spectral_target": True}, {}, shuffle_p={"spectral_target": 0.4}, **kw)
    assert "reproduced by shuffled intervals" in v
    assert hb.verdict({}, {}, n_events=50, min_events=100) == "insufficient data (N<100)"


# ----------------------------------------------------------------------- surrogates/paper


def test_surrogates() -> None:
    r = rng(20)
    x = r.exponential(size=103)
    s = surrogates.shuffle_surrogates(x, 5, r)
    assert np.allclose(np.sort(s, axis=1), np.sort(x))
    b = surrogates.block_shuffle_surrogates(x, 5, 10, r)
    assert np.allclose(np.sort(b, axis=1), np.sort(x))
    pos = {v: i for i, v in enumerate(x)}
    idx = np.array([pos[v] for v in b[0]])
    starts = np.flatnonzero(idx % 10 == 0)
    assert all(np.array_equal(idx[a:a + 3], idx[a] + np.arange(3)) for a in starts
               if idx[a] + 3 <= 103)
    # a slowly wandering rate: dependence beyond the interval law
    rate = 10 * np.exp(0.8 * np.sin(np.linspace(0, 12 * np.pi, N - 1)))
    y = r.exponential(1 / rate)
    tab = hb.surrogate_comparison(y, n_surrogates=99, seed=1)
    row = tab.set_index("statistic").loc["allan"]
    assert row["p_shuffle"] < 0.05 and "long-range" in row["reading"]
    # a gamma renewal process: Fano departs from 1 but equals its shuffles
    g = nulls.simulate_gamma_intervals(N - 1, 0.6, 10.0, rng=r)
    tab = hb.surrogate_comparison(g, n_surrogates=99, seed=2).set_index("statistic")
    assert tab.loc["fano", "observed"] < 0.7 and tab.loc["fano", "p_shuffle"] > 0.05


def test_paper_metrics_known_answers() -> None:
    x = np.array([1.0] * 10 + list(range(1, 11)))
    cv = paper.windowed_cv(x)
    assert cv[0] == 0.0 and cv[1] == pytest.approx(np.std(np.arange(1, 11)) / 5.5)
    h = paper.windowed_entropy(x)
    assert h[0] == 0.0 and h[1] == pytest.approx(np.log2(10))
    # the papers' criterion flags a perfect Poisson process
    e = nulls.simulate_poisson_intervals(5000, 1.0, rng=rng(21))
    m = paper.paper_metrics(e)
    assert m["frac_cv_not_1"] == 1.0
    assert 0.8 < m["cv_mean"] < 0.95  # biased low at windows of 10 (ddof=0)
    tab = hb.paper_metrics_table(e)
    calibrated = tab["p_value"].dropna()
    assert (calibrated > 0.001).all()
    assert tab["papers_reading"].str.contains("excursions").any()


# ---------------------------------------------------------------------------------- power


def test_power_functions() -> None:
    assert power.cv_test_power(2000, 1.0) == pytest.approx(0.05, abs=1e-3)
    lo, hi = power.min_detectable_cv(1999)
    assert power.cv_test_power(1999, hi) == pytest.approx(0.9, abs=1e-6)
    assert lo < 1 < hi and 1 - lo == pytest.approx(hi - 1, rel=0.2)
    n = power.n_required_cv(hi)
    assert abs(n - 1999) <= 2
    _, slo, shi = power.simulated_power("cv", 2000, hi, n_rep=600, seed=3)
    assert slo - 0.03 <= 0.9 <= shi + 0.03
    assert power.modulation_test_power(2000, 0.0, rate=10.0, scalloping="none") == pytest.approx(
        0.05, abs=1e-9)
    d = power.min_detectable_modulation(2000, rate=10.0)
    assert power.modulation_test_power(2000, d, rate=10.0) == pytest.approx(0.9, abs=1e-6)
    assert power.n_required_modulation(d, rate=10.0) == pytest.approx(2000, rel=0.01)
    # the asymptotic power is close to (and not above) the simulated one
    pa = power.modulation_test_power(2000, 0.15, rate=10.0)
    ps, _, psh = power.simulated_power("modulation", 2000, 0.15, n_rep=300, seed=4)
    assert pa == pytest.approx(ps, abs=0.1) and pa <= psh
    tab = power.power_curve_table([100, 1000])
    assert (tab["cv_high"].diff().dropna() < 0).all()


# -------------------------------------------------------------------------------- capture


def _capture(kinds: tuple[float, ...] = (1.0, 0.7, 1.0), *, source_kind: str = "simulated",
             seed: int = 0) -> xr.Dataset:

    r = rng(100 + seed)
    t0 = 1_700_000_000 * 10**9
    ev: dict[str, list[np.ndarray]] = {k: [] for k in
                                       ("t_host_ns", "device_index", "op_index", "valid")}
    ops: dict[str, list[float]] = {k: [] for k in ("op_device_index", "op_voltage_set",
                                                   "op_frequency_set", "op_t_start_ns",
                                                   "op_t_end_ns")}
    cur = t0
    for o, cv in enumerate(kinds):
        x = nulls.simulate_gamma_intervals(N - 1, cv, 10.0, rng=r)
        t = (cur + np.concatenate([[0.0], np.cumsum(x)]) * 1e9).astype(np.int64)
        bad = (t[:5] + 1000).astype(np.int64)  # invalid shares: ignored
        ev["t_host_ns"] += [t, bad]
        ev["device_index"] += [np.zeros(N, np.int32), np.zeros(5, np.int32)]
        ev["op_index"] += [np.full(N, o, np.int32), np.full(5, o, np.int32)]
        ev["valid"] += [np.ones(N, bool), np.zeros(5, bool)]
        for k, v in zip(ops, (0, 1200.0 - 50 * o, 500.0, int(t[0]), int(t[-1])), strict=True):
            ops[k].append(v)
        cur = int(t[-1]) + 10**9
    tel_t = np.arange(t0, cur, 3 * 10**9)
    tel = {"tel_t_host_ns": tel_t, "tel_device_index": np.zeros(tel_t.size, np.int32),
           "tel_op_index": (np.searchsorted(np.array(ops["op_t_start_ns"]), tel_t, "right")
                            - 1).astype(np.int32),
           "power": 15 + r.normal(0, 0.1, tel_t.size)}
    return dataset.build_capture(
        events={k: np.concatenate(v) for k, v in ev.items()}, telemetry=tel, ops=ops,
        devices={"device_name": ["sim"], "device_model": ["BM1366"],
                 "device_source_kind": [source_kind]},
        attrs={"source_kind": source_kind})


@pytest.fixture(scope="module")
def capture_report() -> tuple[xr.Dataset, hb.HeartbeatReport]:
    ds = _capture()
    return ds, hb.analyze_capture(ds, progress=False, n_surrogates=49)


def test_analyze_capture(capture_report: tuple[xr.Dataset, hb.HeartbeatReport]) -> None:
    _, rep = capture_report
    s = rep.summary.set_index("op")
    assert list(s.index) == [0, 1, 2]
    assert (s["n_events"] == N).all()  # invalid shares dropped
    assert s.loc[1, "verdict"].startswith("under-dispersed")
    assert s.loc[1, "cv_hi"] < 0.8
    assert s.loc[0, "cv_lo"] < 1 < s.loc[0, "cv_hi"]
    assert s.loc[1, "voltage_mV"] == 1150.0
    assert (s["rate_lo"] < s["rate_hz"]).all() and (s["rate_hz"] < s["rate_hi"]).all()
    t = rep.tests
    assert len(t) == 3 * len(hb.TESTS)
    assert (t["p_adjusted"] >= t["p_value"]).all()  # Holm over the whole capture
    assert set(rep.telemetry["target_observable"]) == {False}
    assert len(rep.curves) and len(rep.spectra) and len(rep.dfa) and len(rep.paper)
    assert rep.intervals[(0, 1)].size == N - 1
    assert isinstance(rep.table(), pd.DataFrame)
    assert rep.to_xarray().sizes["row"] == 3
    assert rep.verdicts()[(0, 1)] == s.loc[1, "verdict"]
    assert any("simulated" in n for n in rep.notes)
    from asiclab import results

    entries = rep.record()
    assert len(entries) == 9
    stored = {e["name"]: e for e in results.load_results()}
    assert stored["heartbeat_d0_op1_cv"]["value"] == pytest.approx(s.loc[1, "cv"])
    assert stored["heartbeat_d0_op1_cv"]["verdict"] == s.loc[1, "verdict"]


def test_selection_rules() -> None:

    t = np.arange(6, dtype=np.int64) * 10**9
    ds = dataset.build_capture(
        events={"t_host_ns": np.r_[t, t + 5, [-1]],
                "device_index": np.r_[np.zeros(6), np.ones(6), [0]].astype(np.int32),
                "op_index": np.r_[[-1] * 6, [0, 0, 0, -1, -1, -1], [-1]].astype(np.int32),
                "valid": np.r_[[True] * 12, [True]]},
        ops={"op_device_index": [1], "op_voltage_set": [1100.0]},
        attrs={"source_kind": "simulated"})
    g = dataset.op_event_times(ds)
    assert set(g) == {(0, -1), (1, 0)}  # device 0 has no op: its whole record
    assert g[(0, -1)].size == 6  # unknown time (-1) dropped
    assert set(dataset.op_event_times(ds, unassigned="include")) == {(0, -1), (1, -1), (1, 0)}
    assert set(dataset.op_event_times(ds, unassigned="exclude")) == {(1, 0)}
    with pytest.raises(hb.CaptureSelectionError):
        dataset.op_event_times(ds.drop_vars("valid"))
    rep = hb.analyze_capture(ds, progress=False)
    assert set(rep.summary["verdict"]) == {"insufficient data (N<100)"}


def test_open_captures_dask(tmp_path, capture_report) -> None:

    ds, rep = capture_report
    dataset.save_capture(ds, tmp_path / "a.nc")
    dataset.save_capture(ds, tmp_path / "b.nc")
    m = dataset.open_captures(tmp_path, event_chunk=1000)
    assert m.sizes["op"] == 6 and m.sizes["device"] == 2
    assert hasattr(m["t_host_ns"].data, "dask")
    assert list(m["device_source_file"].values) == ["a.nc", "b.nc"]
    g = dataset.op_event_times(m, chunk_events=777)
    assert sorted(g) == [(0, 0), (0, 1), (0, 2), (1, 3), (1, 4), (1, 5)]
    assert np.array_equal(g[(1, 4)], g[(0, 1)])
    rep2 = hb.analyze_capture(m, op=4, progress=False, surrogates=False)
    row = rep2.summary.iloc[0]
    assert (row["device"], row["op"]) == (1, 4)
    assert row["cv"] == pytest.approx(rep.summary.set_index("op").loc[1, "cv"])
    assert row["voltage_mV"] == 1150.0
    assert set(dataset.open_captures(str(tmp_path / "*.nc"))["op_index"].values.tolist()) == set(
        range(6))
    dataset.save_capture(_capture(source_kind="hardware", seed=1), tmp_path / "c.nc")
    with pytest.raises(hb.CaptureSelectionError):
        dataset.open_captures(tmp_path)
    assert dataset.open_captures(tmp_path, source_kind="simulated").sizes["device"] == 3
    with pytest.raises(hb.CaptureSelectionError):
        dataset.open_captures(tmp_path / "none*.nc")


def test_bounded_memory_paths(capture_report) -> None:
    ds, rep = capture_report
    assert dataset.train_sizes(ds) == {(0, 0): N, (0, 1): N, (0, 2): N}
    # one pass per train gives the same numbers as the single pass
    one = hb.analyze_capture(ds, progress=False, surrogates=False, memory_events=1)
    pd.testing.assert_series_equal(one.summary["cv"], rep.summary["cv"])
    # long trains are cut to their first max_events events, with a note
    cut = hb.analyze_capture(ds, op=1, progress=False, surrogates=False, max_events=500)
    assert cut.summary.iloc[0]["n_events"] == 500
    assert any("max_events" in n for n in cut.notes)
    g = dataset.op_event_times(ds, max_per_group=7, chunk_events=3)
    assert {k: v.size for k, v in g.items()} == {(0, 0): 7, (0, 1): 7, (0, 2): 7}
    assert np.array_equal(g[(0, 1)], dataset.op_event_times(ds, op=1)[(0, 1)][:7])


def test_interrupt_keeps_finished_trains(monkeypatch, capture_report) -> None:
    from asiclab.heartbeat import report as capture

    ds, _ = capture_report
    real = capture.analyze_intervals
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(capture, "analyze_intervals", flaky)
    with pytest.warns(UserWarning, match="interrupted"):
        rep = hb.analyze_capture(ds, progress=False, surrogates=False)
    assert len(rep.summary) == 1
    assert any("INTERRUPTED" in n for n in rep.notes)


@pytest.mark.realdata
def test_s9_known_cv(realdata_dir) -> None:
    path = realdata_dir / "s9_stratum_shares.csv"
    if not path.is_file():
        pytest.skip("s9_stratum_shares.csv absent")
    try:
        from asiclab.capture.importers import import_s9_stratum_csv

        ds = import_s9_stratum_csv(path)
        rep = hb.analyze_capture(ds, progress=False, surrogates=False)
    except ImportError:  # importer not available: read the timestamp column directly
        t = pd.read_csv(path, usecols=["timestamp"])["timestamp"].to_numpy(float)
        rep = hb.analyze_times(t, surrogates=False)
    row = rep.summary.iloc[0]
    assert row["n_events"] == 2546  # the 42 duplicate resubmissions are not in the train
    assert row["cv"] == pytest.approx(0.813, abs=0.002)
    assert row["cv_hi"] < 1  # under-dispersed, decisively
    assert row["verdict"].startswith("under-dispersed")


def test_analyze_times_float_and_ns() -> None:
    t = np.cumsum(nulls.simulate_poisson_intervals(N, 10.0, rng=rng(22)))[: N]
    a = hb.analyze_times(t, surrogates=False).summary.iloc[0]
    b = hb.analyze_times((t * 1e9).astype(np.int64), surrogates=False).summary.iloc[0]
    assert a["cv"] == pytest.approx(b["cv"], rel=1e-6)
    assert a["n_events"] == N


# ---------------------------------------------------------------------------------- plots


def test_plots_return_labelled_figures(capture_report) -> None:
    import matplotlib.pyplot as plt

    from asiclab.heartbeat import plots as hp

    _, rep = capture_report
    x = rep.intervals[(0, 1)]
    figs = [
        hp.plot_cv_vs_voltage(rep), hp.plot_counting_curves(rep, 0, 1),
        hp.plot_qq_exponential(x), hp.plot_acf(x), hp.plot_spectrum(rep, 0, 1),
        hp.plot_dfa(rep, 0, 1), hp.plot_power_curves(n_events=[10, 100, 1000]),
        hp.plot_paper_windowed_cv(x),
        hp.plot_telemetry_spectrum(np.arange(100) * 3.0, rng(23).normal(size=100)),
    ]
    for fig in figs:
        for ax in fig.axes:
            if ax.has_data():
                assert ax.get_xlabel().strip() and ax.get_ylabel().strip()
                assert "[" in ax.get_xlabel() and "[" in ax.get_ylabel()
        plt.close(fig)
    with pytest.raises(hb.HeartbeatInputError):
        hp.plot_spectrum(rep, 0, 99)


# --------------------------------------------------------------------------------------------
# quantised timestamps (issue 7, items 9 and 10)


def _quantised_poisson(rate: float, res: float, n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 10])
    t = np.cumsum(hb.simulate_poisson_intervals(n, rate, size=size, rng=rng), axis=-1)
    return np.diff(np.floor(t / res) * res, axis=-1)


@pytest.mark.parametrize(("res", "expected"), [(1e-3, 1e-3), (1.0, 1.0), (0.1, 0.1),
                                                (1e-7, 1e-7), (0.0, 0.0)])
def test_timestamp_resolution_detected(res: float, expected: float) -> None:
    rng = np.random.default_rng(5)
    t = np.cumsum(rng.exponential(0.5, 500))
    if res > 0:
        t = np.round(np.floor(t / res) * res * 1e9) * 1e-9
    x = np.diff(t)
    assert hs.timestamp_resolution(x) == pytest.approx(expected, rel=1e-9, abs=0.0)


def test_timestamp_resolution_of_float_epoch_milliseconds() -> None:
    # epoch seconds as float64 with millisecond stamps: rounding noise ~1e-7 s, grid 1 ms
    rng = np.random.default_rng(6)
    t = 1.7e9 + np.floor(np.cumsum(rng.exponential(0.1, 2000)) * 1e3) / 1e3
    assert hs.timestamp_resolution(np.diff(t)) == pytest.approx(1e-3)


def test_dequantise_is_exact_poisson_and_keeps_events() -> None:
    x = _quantised_poisson(1.0, 1.0, 1999, 3, seed=1)
    rng = np.random.default_rng(0)
    d = hs.dequantise_intervals(x, 1.0, rng)
    assert d.shape == x.shape and np.all(d >= 0) and np.all(d[d > 0] % 1.0 != 0)
    # every event moves by less than one cell: spans agree within one cell
    assert np.all(np.abs(d.sum(axis=1) - x.sum(axis=1)) < 1.0)
    assert hs.timestamp_resolution(d) == 0.0


def test_one_second_stamps_give_no_false_spectral_verdict() -> None:
    # before the fix: the 1 Hz comb of 1 s stamps folded into the 2.4 Hz band (29 % rejected)
    x = _quantised_poisson(1.0, 1.0, 1999, 300, seed=2)
    sp = hb.spectral_tests(x, resolution=1.0)
    assert np.all(np.isnan(sp["spectral_target"][2]))
    res = hb.run_battery(x)
    col = res.names.index("spectral_max")
    assert (res.pvalue[:, col] < 0.05).mean() <= 0.08
    assert np.all(res.peak_hz < 0.5)
    rep = hb.analyze_times(np.cumsum(x[0]), surrogates=False)
    row = rep.summary.iloc[0]
    assert row["dequantised"] and row["resolution_s"] == pytest.approx(1.0)
    assert "2.4" not in row["verdict"] and np.isnan(row["target_peak_hz"])
    assert rep.spectra["freq_hz"].max() < 0.5
    assert any("aliases of the timestamp grid" in n for n in rep.notes)


def test_tenth_second_stamps_keep_the_target_test_calibrated() -> None:
    # 0.1 s stamps: 2.4 Hz is below the grid Nyquist (5 Hz) and stays testable, at its level
    x = _quantised_poisson(2.0, 0.1, 1999, 300, seed=3)
    res = hb.run_battery(x, only=("spectral_max", "spectral_target", "anderson_exp"))
    fpr = (res.pvalue < 0.05).mean(axis=0)
    for name in ("spectral_max", "spectral_target", "anderson_exp"):
        assert fpr[res.names.index(name)] <= 0.08, (name, fpr)


# --------------------------------------------------------------------------------------------
# dead time: hazard, renewal fit, job gaps (issue 7, item 12)

from asiclab.heartbeat import deadtime  # noqa: E402


def test_hazard_function_known_answer() -> None:
    x = np.array([0.5, 1.5, 2.5, 0.2] * 5)
    h = deadtime.hazard_function(x, edges=[0.0, 1.0, 2.0, 3.0])
    # bin [0, 1): 20 at risk, 10 events (0.5, 0.2), exposure 5*(0.5+0.2) + 10*1 = 13.5 s
    assert list(h["at_risk"]) == [20, 10, 5]
    assert list(h["events"]) == [10, 5, 5]
    assert h["exposure_s"].to_numpy() == pytest.approx([13.5, 7.5, 2.5])
    assert h["hazard_hz"].to_numpy() == pytest.approx([10 / 13.5, 5 / 7.5, 2.0])
    assert np.all(h["lo_hz"] <= h["hazard_hz"]) and np.all(h["hazard_hz"] <= h["hi_hz"])
    assert h["poisson_hz"].iloc[0] == pytest.approx(20 / x.sum())


def test_hazard_of_poisson_is_flat_within_band() -> None:
    x = np.random.default_rng(11).exponential(0.1, 5000)
    h = deadtime.hazard_function(x)
    inside = (h["hazard_hz"] >= h["poisson_lo_hz"]) & (h["hazard_hz"] <= h["poisson_hi_hz"])
    assert inside.mean() >= 0.85
    assert h["poisson_hz"].iloc[0] == pytest.approx(10.0, rel=0.05)


def test_dead_time_fit_recovers_a_simulated_dead_time() -> None:
    rng = np.random.default_rng(12)
    x = deadtime.simulate_dead_time_intervals(3000, 0.040, 5.0, 12.5, rng)
    fit = deadtime.fit_dead_time(x, n_boot=99, seed=1)
    assert fit.dead_time_lo_s <= 0.040 <= fit.dead_time_hi_s
    assert fit.rate_dead_lo_hz <= 5.0 <= fit.rate_dead_hi_hz
    assert fit.rate_lo_hz <= 12.5 <= fit.rate_hi_hz
    assert fit.p_dead_time <= 0.02
    assert fit.p_fit >= 0.05
    v = deadtime.dead_time_verdict(fit)
    assert v.startswith("Poisson with dead time ≈ 4")  # ≈ 40 ms


def test_dead_time_fit_finds_none_in_poisson() -> None:
    x = np.random.default_rng(13).exponential(0.1, 3000)
    fit = deadtime.fit_dead_time(x, n_boot=99, seed=1)
    assert fit.p_dead_time > 0.05
    assert deadtime.dead_time_verdict(fit).startswith("no dead time")


def test_dead_time_fit_rejects_a_wrong_model() -> None:
    # gamma CV 0.8 is under-dispersed but has no dead time: the model must not fit it
    x = nulls.simulate_gamma_intervals(3000, 0.7, 10.0, rng=np.random.default_rng(14))
    fit = deadtime.fit_dead_time(x, n_boot=99, seed=1)
    assert fit.p_fit <= 0.05 or fit.residual_p_exponential <= 0.05
    assert not deadtime.dead_time_verdict(fit).startswith("Poisson with")


def test_job_gap_table() -> None:
    rng = np.random.default_rng(15)
    n = 400
    new_job = rng.random(n) < 0.8
    gaps = np.where(new_job, 0.03 + rng.exponential(0.08, n), rng.exponential(0.01, n))
    t = np.concatenate([[0.0], np.cumsum(gaps)])
    jobs = np.concatenate([[0], np.cumsum(new_job)]).astype(str)
    tab = deadtime.job_gap_table(t, jobs)
    assert list(tab["gaps"]) == ["same job", "new job"]
    assert tab["n_gaps"].sum() == n and tab["n_jobs"].iloc[0] == int(new_job.sum()) + 1
    assert tab.loc[1, "median_ms"] > tab.loc[0, "median_ms"]
    assert tab["p_mannwhitney"].iloc[0] < 1e-6
    assert deadtime.job_gap_table(t, np.full(t.size, "")).empty


def test_s9_dead_time_explains_under_dispersion(realdata_dir) -> None:
    from asiclab.capture.importers import import_s9_stratum_csv
    from asiclab.heartbeat import workflow

    ds = import_s9_stratum_csv(realdata_dir / "s9_stratum_shares.csv")
    rep = hb.analyze_capture(ds, surrogates=False, progress=False)
    (key,) = rep.intervals
    x = rep.intervals[key]
    assert rep.verdicts()[key].startswith("under-dispersed")
    h = deadtime.hazard_function(x, edges=[0.0, 0.030, 0.050, 0.080])
    assert 4.0 <= h["hazard_hz"].iloc[0] <= 8.0  # ~6/s for 30 ms after a share
    assert 11.0 <= h["hazard_hz"].iloc[2] <= 14.5  # ~12.7/s after 50-80 ms
    tail = x[x > 0.050] - 0.050
    assert 0.95 <= tail.std(ddof=1) / tail.mean() <= 1.03  # remaining wait ~exponential
    dead = workflow.dead_time_analysis(ds, rep, [key], alpha=0.05, n_boot=99, seed=0)
    row = dead["table"].iloc[0]
    assert 15.0 <= row["dead_time_ms"] <= 60.0
    assert row["rate_dead_hi_hz"] < row["rate_lo_hz"]
    assert row["p_dead_time"] <= 0.01
    assert row["new_job_fraction"] > 0.8 and row["new_job_median_ms"] > row["same_job_median_ms"]
    # a share of a new job essentially never arrives within ~20 ms of the previous share
    assert row["new_job_present"] and 10.0 <= row["new_job_dead_time_ms"] <= 40.0
    assert row["new_job_rate_dead_hi_hz"] < 2.0 < 9.0 < row["new_job_rate_lo_hz"]
    assert "dead time ≈" in row["dead_time_verdict"]
    assert "pipeline/protocol effect" in row["dead_time_verdict"]
    hz = dead["hazard"][key]
    assert np.allclose(hz["new_job_hazard_hz"] + hz["same_job_hazard_hz"], hz["hazard_hz"])


# --------------------------------------------------------------------------------------------
# simulator truth labels (issue 7, item 11)


def _sim_report(voltage_mV: float, dwell_s: float):
    from asiclab.devices.simulated import simulate_sweep

    ds = simulate_sweep(1, [voltage_mV], 485.0, dwell_s=dwell_s, settle_s=120.0,
                        telemetry_interval_s=600.0)
    return ds, hb.analyze_capture(ds, surrogates=False, progress=False)


def test_steady_state_truth_cv_at_plus_60_mV() -> None:
    from asiclab.devices.simulated import SimulatedChip, steady_state_intervals

    edge = SimulatedChip(1).steady_state_edge_voltage_mV(485.0)
    x = steady_state_intervals(1, edge + 60.0, 485.0, n_events=400_000)
    assert x.size == 399_999
    cv = x.std(ddof=1) / x.mean()
    assert 1.008 <= cv <= 1.025  # not exactly Poisson (1.016 +/- 0.001 on 1e6 events)
    far = steady_state_intervals(1, edge + 100.0, 485.0, n_events=400_000)
    assert abs(far.std(ddof=1) / far.mean() - 1.0) < 0.006


def test_model_truth_labels_poisson_only_when_undetectable() -> None:
    from asiclab.devices.simulated import SimulatedChip
    from asiclab.heartbeat import workflow

    edge = SimulatedChip(1).steady_state_edge_voltage_mV(485.0)
    v = round(edge + 62.0, 1)
    # a long train (~80,000 events) sees the Cox process's CV ~1.015: not "Poisson"
    # (the old rule called everything beyond +60 mV "Poisson by construction")
    ds, rep = _sim_report(v, 200_000.0)
    truth = workflow.model_truth(ds, rep, n_records=40)
    row = truth.iloc[0]
    assert row["n_events"] > 60_000
    assert 1.005 <= row["model_cv"] <= 1.03 and row["model_cv_se"] < 0.003
    assert row["detect_power"] > 0.5
    assert row["model_expects"] != "consistent with Poisson"
    # a short train (~2,000 events) at +98 mV cannot tell: "Poisson" is the truth there
    ds, rep = _sim_report(round(edge + 98.0, 1), 5_000.0)
    row = workflow.model_truth(ds, rep, n_records=100).iloc[0]
    assert row["detect_power"] <= workflow.POISSON_MAX_POWER
    assert row["model_expects"] == "consistent with Poisson"
    assert row["agrees"] == rep.verdicts()[(0, 0)].startswith("consistent")


def test_bursty_train_is_not_called_a_dead_time() -> None:
    # over-dispersed (hazard high just after an event): the constrained fit gives Poisson
    x = nulls.simulate_gamma_intervals(2000, 1.5, 1.0, rng=np.random.default_rng(16))
    fit = deadtime.fit_dead_time(x, n_boot=49, seed=1)
    assert fit.rate_dead_hz <= fit.rate_hz
    assert deadtime.dead_time_verdict(fit).startswith("no dead time")


def test_dead_time_test_keeps_its_level_on_quantised_poisson() -> None:
    # 10 ms stamps at 10/s, analysed as the battery tests them (dequantised): the dead-time LR
    # test rejects about 5 % of Poisson trains (P(>= 6 of 30) = 0.016 at a true 5 %)
    from asiclab.heartbeat import workflow

    x = _quantised_poisson(10.0, 0.01, 1000, 30, seed=17)
    n_dead = 0
    for i, row in enumerate(x):
        xd, res, deq = battery.prepare_intervals(row, seed=i)
        assert deq and res == pytest.approx(0.01)
        fit = deadtime.fit_dead_time(xd, n_boot=39, seed=i)
        n_dead += not deadtime.dead_time_verdict(fit).startswith("no dead time")
    assert n_dead <= 5
    # the notebook's path dequantises the same way and finds no job ids in a bare train
    rep = hb.analyze_times(np.cumsum(x[0]), surrogates=False)
    dead = workflow.dead_time_analysis(xr.Dataset(), rep, [(0, -1)], alpha=0.05, n_boot=39,
                                       seed=0)
    assert dead["job_gaps"][(0, -1)].empty
    assert dead["table"]["n_intervals"].iloc[0] == x.shape[1] - 1


def test_cause_specific_dead_time_recovers_a_simulated_job_switch() -> None:
    # after each event: a new-job event is impossible for 20 ms, then at 11/s; same-job events
    # come at 5/s during those 20 ms only (competing risks)
    rng = np.random.default_rng(18)
    n = 3000
    new_t = 0.020 + rng.exponential(1 / 11.0, n)
    same_t = rng.exponential(1 / 5.0, n)
    same_t[same_t >= 0.020] = np.inf
    x = np.minimum(new_t, same_t)
    is_new = new_t < same_t
    nf = deadtime.fit_cause_dead_time(x, is_new, n_boot=99, seed=2)
    assert nf["present"]
    assert nf["dead_time_lo_s"] <= 0.020 <= nf["dead_time_hi_s"] + 1e-3
    assert nf["rate_lo_hz"] <= 11.0 <= nf["rate_hi_hz"]
    assert nf["rate_dead_hz"] < 0.5
    h = deadtime.hazard_function(x, [0.0, 0.02, 0.1], event=is_new)
    assert h["hazard_hz"].iloc[0] < 0.5 and 9.0 < h["hazard_hz"].iloc[1] < 13.0


# ------------------------------------------------------------------------------ claims ledger


def _claim_rows() -> dict[str, dict]:
    from asiclab import results

    return {r["result"]: r for r in results.claims_ledger(results.load_results())}


@pytest.mark.parametrize(("kinds", "plain"), [
    ((1.0, 0.7, 1.0), "not supported"),   # the edge (lowest voltage, op 2) is Poisson
    ((1.0, 1.0, 0.7), "supported"),       # the edge is under-dispersed
])
def test_claim_rows_judge_the_edge_train(kinds, plain) -> None:
    from asiclab.heartbeat import workflow

    ds = _capture(kinds)
    rep = hb.analyze_capture(ds, progress=False, surrogates=False)
    edge = workflow.edge_trains(rep)
    assert list(edge["op"]) == [2] and list(edge["edge_rule"]) == ["lowest set voltage"]
    entries = workflow.record_claims(ds, rep)
    assert len(entries) == 1
    row = _claim_rows()["heartbeat_edge_d0_cv"]
    assert row["claim"] == workflow.HEARTBEAT_CLAIM_ID
    assert row["source"].startswith("arXiv:2601.01916")
    assert row["verdict"].split(":")[0] == plain
    assert row["value"] == pytest.approx(float(rep.summary.set_index("op").loc[2, "cv"]))
    assert "papers' reading" in entries[0]["note"] and "1100 mV" in entries[0]["note"]


def test_claim_rows_without_set_voltages_use_the_longest_train() -> None:
    from asiclab.heartbeat import workflow

    ds = _capture((1.0, 0.7))
    ds["op_voltage_set"][:] = np.nan
    ds["op_index"][:] = np.where(ds["op_index"].values == 1, 1, 0)
    keep = np.ones(ds.sizes["event"], bool)
    keep[np.flatnonzero(ds["op_index"].values == 0)[: N // 2]] = False  # op 0 shorter
    ds = ds.isel(event=keep)
    rep = hb.analyze_capture(ds, progress=False, surrogates=False)
    edge = workflow.edge_trains(rep)
    assert list(edge["op"]) == [1]
    assert edge["edge_rule"].iloc[0].startswith("longest train")
    workflow.record_claims(ds, rep)
    assert _claim_rows()["heartbeat_edge_d0_cv"]["verdict"].startswith("supported")
