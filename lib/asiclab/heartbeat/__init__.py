"""Silicon Heartbeat statistics: a calibrated test battery for share inter-arrival times.

The claim under test: near the voltage edge, share inter-arrival times of a mining ASIC stop
being Poissonian ("CV excursions above and below unity", a "2.4 Hz heartbeat"). This package
tests, per device and operating point, whether a share train is a homogeneous Poisson process,
with p-values that are calibrated (checked by simulation in
``tests/test_heartbeat_calibration.py``), multiple-testing control, effect sizes with
confidence intervals, power calculations, and the papers' own metrics next to their Poisson
values.

Layout
------
:mod:`~asiclab.heartbeat.stats`
    Pure statistics on numpy arrays: rate and CV with CIs, exponentiality (Lilliefors, Anderson-
    Darling), conditional uniformity, autocorrelation and Ljung-Box, DFA, Fano and Allan factors,
    timestamp resolution and dequantisation of quantised trains.
:mod:`~asiclab.heartbeat.spectral`
    Point-process and count-series periodograms, max-over-frequencies peak tests, telemetry.
:mod:`~asiclab.heartbeat.nulls`
    Simulators (labelled simulated) and seeded Monte Carlo null tables.
:mod:`~asiclab.heartbeat.battery`
    The ten-test battery, Holm/BH correction and verdicts.
:mod:`~asiclab.heartbeat.surrogates`
    Shuffle / block-shuffle surrogates ("not exponential" vs "not independent").
:mod:`~asiclab.heartbeat.deadtime`
    Why a train is under-dispersed: hazard function with its Poisson band, dead-time renewal
    fit with CIs and goodness of fit, same-job against new-job gaps.
:mod:`~asiclab.heartbeat.paper`
    The papers' windowed CV and histogram entropy, reproduced, against Poisson.
:mod:`~asiclab.heartbeat.power`
    Smallest detectable CV / modulation depth and events needed.
:mod:`~asiclab.heartbeat.report`
    Heartbeat report over a capture: :func:`analyze_capture` (selection is in
    :mod:`asiclab.dataset`).

Figures are in :mod:`asiclab.heartbeat.plots`.
"""

from __future__ import annotations

from asiclab.heartbeat._errors import (
    CaptureSelectionError,
    HeartbeatError,
    HeartbeatInputError,
    InsufficientDataError,
)
from asiclab.heartbeat.battery import (
    TESTS,
    BatteryConfig,
    BatteryResult,
    TestSpec,
    adjust_pvalues,
    adjust_rows,
    run_battery,
    spectral_tests,
    verdict,
)
from asiclab.heartbeat.nulls import (
    simulate_gamma_intervals,
    simulate_modulated_poisson_times,
    simulate_poisson_intervals,
)
from asiclab.heartbeat.paper import paper_metrics, paper_metrics_table
from asiclab.heartbeat.power import (
    cv_test_power,
    min_detectable_cv,
    min_detectable_modulation,
    modulation_test_power,
    n_required_cv,
    n_required_modulation,
    power_curve_table,
    simulated_power,
)
from asiclab.heartbeat.report import (
    HeartbeatReport,
    analyze_capture,
    analyze_intervals,
    analyze_times,
)
from asiclab.heartbeat.surrogates import surrogate_comparison

__all__ = [
    "TESTS",
    "BatteryConfig",
    "BatteryResult",
    "CaptureSelectionError",
    "HeartbeatError",
    "HeartbeatInputError",
    "HeartbeatReport",
    "InsufficientDataError",
    "TestSpec",
    "adjust_pvalues",
    "adjust_rows",
    "analyze_capture",
    "analyze_intervals",
    "analyze_times",
    "cv_test_power",
    "min_detectable_cv",
    "min_detectable_modulation",
    "modulation_test_power",
    "n_required_cv",
    "n_required_modulation",
    "paper_metrics",
    "paper_metrics_table",
    "power_curve_table",
    "run_battery",
    "simulate_gamma_intervals",
    "simulate_modulated_poisson_times",
    "simulate_poisson_intervals",
    "simulated_power",
    "spectral_tests",
    "surrogate_comparison",
    "verdict",
]
