"""Calibration of the Silicon-Heartbeat test battery (slow; still runs in CI).

On 1,000 simulated homogeneous Poisson records of 2,000 events each (rate 10/s):

* every individual test rejects at alpha = 0.05 in a fraction within [0.035, 0.065]
  (the binomial standard deviation of a calibrated test is 0.0069 here);
* the battery's family-wise rejection rate after Holm's correction is <= 0.065
  (and so is the Benjamini-Hochberg rate, which equals the FWER under the global null);

and against gamma renewal processes with CV 1.2 and CV 0.8 (2,000 events) the battery, after
Holm's correction, rejects in >= 90 % of the records.

The seed was fixed before the first run and is not tuned. A larger off-line run (20,000 Poisson
records, another seed) gave false-positive rates 0.048-0.054 for all ten tests.
"""

from __future__ import annotations

import numpy as np
import pytest

from asiclab import heartbeat as hb

pytestmark = pytest.mark.slow

SEED = 20260401
N_RECORDS = 1000
N_EVENTS = 2000
RATE = 10.0  # [1/s]
ALPHA = 0.05


@pytest.fixture(scope="module")
def null_battery() -> hb.BatteryResult:
    rng = np.random.default_rng([SEED, 0])
    x = hb.simulate_poisson_intervals(N_EVENTS - 1, RATE, size=N_RECORDS, rng=rng)
    return hb.run_battery(x)


def test_each_test_is_calibrated(null_battery: hb.BatteryResult) -> None:
    p = null_battery.pvalue
    assert p.shape == (N_RECORDS, len(hb.TESTS))
    assert np.all(np.isfinite(p)), "every test must apply at N = 2000"
    fpr = (p < ALPHA).mean(axis=0)
    bad = {t.name: round(float(f), 4) for t, f in zip(hb.TESTS, fpr, strict=True)
           if not 0.035 <= f <= 0.065}
    assert not bad, f"false-positive rates outside [0.035, 0.065]: {bad}"


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
def test_family_wise_rate(null_battery: hb.BatteryResult, method: str) -> None:
    fwer = null_battery.any_rejected(method, ALPHA).mean()
    assert fwer <= 0.065
    assert fwer > 0.0  # the battery is not trivially conservative


@pytest.mark.parametrize("cv", [1.2, 0.8])
def test_power_against_gamma_renewal(cv: float) -> None:
    rng = np.random.default_rng([SEED, int(cv * 100)])
    x = hb.simulate_gamma_intervals(N_EVENTS - 1, cv, RATE, size=N_RECORDS, rng=rng)
    res = hb.run_battery(x)
    power = res.any_rejected("holm", ALPHA).mean()
    assert power >= 0.9
