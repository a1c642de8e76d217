r"""Simulated BM1366-class mining chip: the built-in default data source of asiclab.

Everything this module produces is **simulated** and labelled so (``source_kind = "simulated"``).
The chip runs in *virtual time*: nothing waits on the wall clock, and a whole voltage sweep of
hours of chip time is generated in a fraction of a second. For a given seed and a given sequence
of calls, the output is bit-for-bit identical.

The physical model below is a deliberately simple, documented *hypothesis generator*: it gives
the analysis notebooks a source whose ground truth is known (e.g.
:meth:`SimulatedChip.edge_voltage_mV`), so that every statistic can be checked to recover it.
It is not a claim about real silicon.
Default constants (:class:`ChipModelParams`) are chosen to be plausible for a BM1366 on a
Bitaxe / Lucky Miner LV06 board (485 MHz, 1200 mV, ~12 W, ~60 degC), not fitted to data.

<!-- model-equations:start -->
## Model equations (asiclab simulated BM1366, model version 1)

Symbols: $f$ frequency [MHz], $V$ set core voltage [mV], $T$ die temperature [degC],
$D$ ticket difficulty, $N_c$ cores (112), $N_{sc}$ small cores (894).

**1. Rates.** Hashrate $H = f \cdot 10^6 \cdot N_{sc}$ [H/s] (AxeOS: $f N_{sc}/1000$ GH/s).
Nonces (tickets) arrive at $\lambda_{\max} = H / (D \cdot 2^{32})$ [1/s] when every core works;
each core $i$ contributes $\lambda_{\max}/N_c$ and every nonce is attributed to one core.
At 485 MHz and $D = 256$: $\lambda_{\max} = 0.394$ /s.

**2. The chip (per seed).** From `numpy.random.default_rng(seed)`, in this fixed order:
$z_0 \sim \mathcal N(0,1)$, then $z_i \sim \mathcal N(0,1)$ for $i = 0..N_c-1$, then
$z'_i \sim \mathcal N(0,1)$ for $i = 0..N_c-1$. Chip offset $V_0 = \mu_{edge} + \sigma_{edge} z_0$,
core offsets $\delta_i = \sigma_{core} z_i$, core speed factors $s_i = \exp(\sigma_{speed} z'_i)$
($s_i > 1$: a slow core, which behaves as if clocked at $s_i f$).

**3. Critical voltage** of core $i$ (at the die):
$$V_{c,i}(T, f) = V_0 + \delta_i + k_f\,(s_i f - f_{ref}) + k_T\,(T - T_{ref}).$$

**4. Power, die voltage, temperature.**
$P(V, f) = P_{static} + c_{dyn}\, f\, (V/1000)^2$ [W];
die voltage $V_{die} = V - r_{IR} P$ [mV] (IR droop);
$$\frac{dT}{dt} = \frac{T_{amb} + R_{th} P - T}{\tau_{th}},$$
integrated exactly between operating-point changes:
$T(t) = T_\infty + (T(t_0) - T_\infty)\, e^{-(t - t_0)/\tau_{th}}$, $T_\infty = T_{amb} + R_{th} P$.
The chip starts at $T_\infty$ of the nominal operating point (unless $T_{init}$ is given), so it
has a fading memory (time constant $\tau_{th}$) of its recent operating points.

**5. Supply droop (shared stalls).** A chip-level droop $\Delta V_{chip}(t)$ and one droop
$\Delta V_k(t)$ per voltage domain $k$ (core $i$ is in domain $\lfloor i\, n_{dom} / N_c \rfloor$).
Each is piecewise constant and is *refreshed* at the epochs of a Poisson process of rate
$1/\tau_x$; at a refresh the new value is $0$ with probability $1 - \varphi_x$ and
$\mathrm{Exp}(\text{mean } d_x)$ with probability $\varphi_x$ ($x$ = chip or domain). Viewed as
on/off this is a two-state Markov (telegraph) process with correlation time $\tau_x$ and droop
fraction $\varphi_x$ (uniformisation with rate $1/\tau_x$: the state after each refresh is
independent of the state before it).

**6. Core state.** Instantaneous margin
$$m_i(t) = V_{die} - \Delta V_{chip}(t) - \Delta V_{k(i)}(t) - V_{c,i}(T(t), f).$$
If $m_i < 0$ the core produces nothing: *dead* when its static margin
$M_i = V_{die} - V_{c,i}$ is negative, *stalled* while a droop pushes it below zero. If
$m_i \ge 0$ it emits nonces as a Poisson process of rate $\lambda_{\max}/N_c$; each is a hardware
error (`valid = False`, `error_code = 30`) with probability
$$p_{err}(m) = \min\left(1,\; p_0 + p_1\, e^{-m / w_e}\right).$$
For one droop source, core $i$ is stalled a fraction $q_i = \varphi\, e^{-M_i/d}$ of the time,
with mean stall dwell $\tau/(1 - q_i)$: both grow as the margin shrinks. Because droops are shared
by many cores, the total nonce train is a Cox (doubly stochastic) process: over-dispersed
(inter-arrival CV > 1) near the edge and Poisson (CV = 1) when all margins are large.

**7. Edge voltage** (model truth): the set voltage at which half of the cores are dead without
droop, i.e. the solution $V$ of $V - r_{IR} P(V, f) = \mathrm{median}_i\, V_{c,i}(T, f)$.
Below it the rate collapses within a few $\sigma_{core}$.
The *steady-state* edge also solves $T = T_\infty(V, f)$.

**8. Generation (exact thinning).** Candidates form a homogeneous Poisson process of rate
$\lambda_{\max}$ (cumulated exponential gaps), each assigned a core uniformly; a candidate is
kept iff $m_{core}(t) \ge 0$ at its time. This is exact (no time stepping): the per-core candidate
rate equals the alive rate, $T(t)$ is known in closed form and the droops evolve independently of
the nonces.

**9. Event marks.** Valid nonce: achieved difficulty $D/U$, $U \sim \mathcal U(0, 1]$ (the true
distribution of a share at ticket difficulty $D$). Hardware error: a random hash,
difficulty $\mathrm{diff1}/(U \cdot 2^{256}) = \mathtt{0xFFFF} \cdot 2^{-48} / U$.
Pool difficulty $= D$. Nonces are synthetic uniform u32 values (not linked to the core id or to
any header); job id `""`, version bits 0.

**10. Telemetry** (as AxeOS reports it): temperature $T + \mathcal N(0, \sigma_T)$, power
$P + \mathcal N(0, \sigma_P)$, voltage_set $V$,
voltage_measured $V_{die} + \mathcal N(0, \sigma_V)$, frequency $f$,
hashrate *measured from nonces* like AxeOS:
$n_{valid}(W) \cdot D \cdot 2^{32} / W / 10^9$ GH/s over the last $W$ = 60 s (or the time since
start if shorter). The expected hashrate $f N_{sc}/1000$ GH/s is reported as `expected_hashrate`.

**Constants** (`ChipModelParams` field = default): $\mu_{edge}$ `edge_mean_mV` = 1095 mV,
$\sigma_{edge}$ `edge_sd_mV` = 12 mV, $\sigma_{core}$ `core_sd_mV` = 6 mV, $\sigma_{speed}$
`speed_sd` = 0.015, $k_f$ `dvc_df_mV_per_MHz` = 0.55 mV/MHz, $k_T$ `dvc_dT_mV_per_K` = 0.8 mV/K,
$T_{ref}$ = 60 degC, $f_{ref}$ = 485 MHz, $p_0$ `err_floor` = 0.001, $p_1$ `err_max` = 0.5,
$w_e$ `err_width_mV` = 8 mV; chip droop $\varphi, d, \tau$ = 0.4, 12 mV, 20 s; domain droop
0.3, 6 mV, 10 s; $n_{dom}$ = 4; $P_{static}$ = 1.5 W, $c_{dyn}$ = 0.01432 W/(MHz V^2) (10 W
dynamic at 485 MHz, 1.2 V); $T_{amb}$ = 25 degC, $R_{th}$ = 3 K/W, $\tau_{th}$ = 30 s;
$r_{IR}$ = 0.8 mV/W; $\sigma_T$ = 0.25 K, $\sigma_P$ = 0.05 W, $\sigma_V$ = 2 mV.
With these, the median chip's steady-state edge at 485 MHz is about 1100 mV (chip-to-chip
spread about 12 mV), i.e. about 90 mV of margin at the stock 1200 mV, where the nonce train is
Poisson; a chip about 3 $\sigma_{edge}$ worse than the median is slightly over-dispersed even at
stock settings.
<!-- model-equations:end -->

Sweeps
------
:func:`simulate_sweep` applies a list of core voltages at one frequency, dwelling ``dwell_s`` at
each after ``settle_s`` of settling. Events and telemetry during settling are *kept* with
``op_index = -1`` (they are outside any operating point); the op table gives each point's
measurement window ``(start, end]``. With ``n_devices > 1``, device ``d`` is the chip of seed
``seed + d``; all devices run simultaneously in virtual time and go in one dataset.

Determinism: the per-chip constants come from ``default_rng(seed)``; the nonce stream from an
independent generator seeded ``[seed, 1]`` and telemetry noise from ``[seed, 2]``, so sampling
telemetry never changes the events. Events depend on the sequence of ``advance`` calls (how
virtual time is cut into calls). :func:`simulate_sweep` advances each chip once per settle and
once per dwell phase and reads telemetry on the way
(:meth:`SimulatedChip.advance_with_telemetry_ns`), so its events do not depend on the telemetry
interval, and its output depends only on its arguments.

Performance: the nonce train is generated vectorised with numpy (no time stepping), at several
million events per CPU second; ``benchmarks/bench_simulator.py`` measures it.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from asiclab import AsiclabError

__all__ = [
    "MODEL_EQUATIONS_MD",
    "MODEL_VERSION",
    "ChipEvents",
    "ChipModelParams",
    "SimulatedChip",
    "SimulatorError",
    "simulate_sweep",
    "steady_state_intervals",
]

#: Version of the physical model (bumped whenever the equations or draw order change).
MODEL_VERSION = 1

#: Error code of a hardware error (invalid nonce), as in :mod:`asiclab.dataset`.
ERROR_HARDWARE = 30

#: Achieved difficulty of a uniformly random 256-bit hash divided into 1/U: diff1 / 2^256.
_RANDOM_HASH_DIFFICULTY = 0xFFFF * 2.0**-48

#: Upper bound of candidates generated per internal chunk (bounds memory).
_CHUNK_CANDIDATES = 1 << 16

_DEFAULT_T0_NS = 1_700_000_000_000_000_000


class SimulatorError(AsiclabError):
    """Wrong parameter or call to the simulated chip (bad voltage, frequency, duration...)."""


def _extract_equations() -> str:
    doc = __doc__
    if doc is None:  # python -OO strips docstrings: read the source instead
        doc = ast.get_docstring(ast.parse(Path(__file__).read_text(encoding="utf-8"))) or ""
    start, end = "<!-- model-equations:start -->", "<!-- model-equations:end -->"
    if start not in doc or end not in doc:  # pragma: no cover - guarded by the tests
        return ""
    return doc.split(start, 1)[1].split(end, 1)[0].strip() + "\n"


#: The model equations (section of the module docstring) as Markdown with LaTeX, for notebooks.
MODEL_EQUATIONS_MD: str = _extract_equations()


@dataclass(frozen=True)
class ChipModelParams:
    """Physical constants of the simulated chip (defaults: a BM1366 on a Bitaxe-class board).

    Parameters
    ----------
    model : str
        Chip model label written to the dataset.
    n_cores : int
        Cores that nonces are attributed to [1] (BM1366: 112).
    small_cores : int
        Small cores; hashrate = frequency x small_cores [1] (BM1366: 894).
    n_domains : int
        Voltage domains sharing a droop process [1]; must divide ``n_cores``.
    nominal_voltage_mV : float
        Power-on core voltage [mV].
    nominal_frequency_MHz : float
        Power-on frequency [MHz].
    ticket_difficulty : float
        Default ticket difficulty [1] (the chip's nonce filter).
    edge_mean_mV : float
        Population mean of the chip offset V_0 [mV] (critical voltage at f_ref, T_ref).
    edge_sd_mV : float
        Chip-to-chip standard deviation of V_0 [mV].
    core_sd_mV : float
        Per-core standard deviation of the critical-voltage offset delta_i [mV].
    speed_sd : float
        Standard deviation of the log speed factor log(s_i) [1].
    dvc_df_mV_per_MHz : float
        Frequency coefficient k_f of the critical voltage [mV/MHz].
    dvc_dT_mV_per_K : float
        Temperature coefficient k_T of the critical voltage [mV/K].
    ref_temperature_C : float
        Reference temperature T_ref [degC].
    ref_frequency_MHz : float
        Reference frequency f_ref [MHz].
    err_floor : float
        Hardware-error probability per nonce far from the edge, p_0 [1].
    err_max : float
        Extra error probability at zero margin, p_1 [1].
    err_width_mV : float
        Margin scale w_e of the error probability [mV].
    chip_droop_fraction : float
        Probability phi that a chip-droop refresh draws a droop [1].
    chip_droop_depth_mV : float
        Mean depth d of a chip droop [mV].
    chip_droop_tau_s : float
        Mean time between chip-droop refreshes (correlation time) [s].
    domain_droop_fraction : float
        As ``chip_droop_fraction``, per domain [1].
    domain_droop_depth_mV : float
        As ``chip_droop_depth_mV``, per domain [mV].
    domain_droop_tau_s : float
        As ``chip_droop_tau_s``, per domain [s].
    static_power_W : float
        Power independent of f and V (board, leakage), P_static [W].
    dynamic_power_W_per_MHz_V2 : float
        c_dyn in P = P_static + c_dyn f V^2 [W/(MHz V^2)].
    ambient_C : float
        Ambient temperature T_amb [degC].
    thermal_resistance_K_per_W : float
        Die-to-ambient thermal resistance R_th [K/W].
    thermal_tau_s : float
        Thermal time constant tau_th [s].
    initial_temperature_C : float or None
        Die temperature at start [degC]; ``None``: steady state at the nominal operating point.
    ir_drop_mV_per_W : float
        IR droop r_IR between regulator set point and die [mV/W].
    telemetry_temperature_noise_C : float
        Standard deviation of the reported temperature [degC].
    telemetry_power_noise_W : float
        Standard deviation of the reported power [W].
    telemetry_voltage_noise_mV : float
        Standard deviation of the reported measured voltage [mV].
    hashrate_window_s : float
        Window of the nonce-counting hashrate estimate [s].
    """

    model: str = "BM1366"
    n_cores: int = 112
    small_cores: int = 894
    n_domains: int = 4
    nominal_voltage_mV: float = 1200.0
    nominal_frequency_MHz: float = 485.0
    ticket_difficulty: float = 256.0
    edge_mean_mV: float = 1095.0
    edge_sd_mV: float = 12.0
    core_sd_mV: float = 6.0
    speed_sd: float = 0.015
    dvc_df_mV_per_MHz: float = 0.55
    dvc_dT_mV_per_K: float = 0.8
    ref_temperature_C: float = 60.0
    ref_frequency_MHz: float = 485.0
    err_floor: float = 1e-3
    err_max: float = 0.5
    err_width_mV: float = 8.0
    chip_droop_fraction: float = 0.4
    chip_droop_depth_mV: float = 12.0
    chip_droop_tau_s: float = 20.0
    domain_droop_fraction: float = 0.3
    domain_droop_depth_mV: float = 6.0
    domain_droop_tau_s: float = 10.0
    static_power_W: float = 1.5
    dynamic_power_W_per_MHz_V2: float = 10.0 / (485.0 * 1.44)
    ambient_C: float = 25.0
    thermal_resistance_K_per_W: float = 3.0
    thermal_tau_s: float = 30.0
    initial_temperature_C: float | None = None
    ir_drop_mV_per_W: float = 0.8
    telemetry_temperature_noise_C: float = 0.25
    telemetry_power_noise_W: float = 0.05
    telemetry_voltage_noise_mV: float = 2.0
    hashrate_window_s: float = 60.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "model":
                if not isinstance(v, str) or not v:
                    raise SimulatorError("model must be a non-empty string")
                continue
            if v is None and f.name == "initial_temperature_C":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise SimulatorError(f"{f.name} must be a finite number, got {v!r}")
        positive = ("n_cores", "small_cores", "n_domains", "nominal_voltage_mV",
                    "nominal_frequency_MHz", "ticket_difficulty", "err_width_mV",
                    "chip_droop_tau_s", "domain_droop_tau_s", "thermal_resistance_K_per_W",
                    "thermal_tau_s", "hashrate_window_s")
        for name in positive:
            if getattr(self, name) <= 0:
                raise SimulatorError(f"{name} must be > 0, got {getattr(self, name)!r}")
        nonneg = ("edge_sd_mV", "core_sd_mV", "speed_sd", "err_floor", "err_max",
                  "chip_droop_depth_mV", "domain_droop_depth_mV", "static_power_W",
                  "dynamic_power_W_per_MHz_V2", "ir_drop_mV_per_W",
                  "telemetry_temperature_noise_C", "telemetry_power_noise_W",
                  "telemetry_voltage_noise_mV")
        for name in nonneg:
            if getattr(self, name) < 0:
                raise SimulatorError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("chip_droop_fraction", "domain_droop_fraction", "err_floor"):
            if not 0 <= getattr(self, name) <= 1:
                raise SimulatorError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("n_cores", "small_cores", "n_domains"):
            if int(getattr(self, name)) != getattr(self, name):
                raise SimulatorError(f"{name} must be an integer")
        if self.n_domains > 32:
            raise SimulatorError(f"n_domains must be <= 32, got {self.n_domains}")
        if self.n_cores % self.n_domains:
            raise SimulatorError(f"n_domains ({self.n_domains}) must divide n_cores "
                                 f"({self.n_cores})")

    def to_dict(self) -> dict[str, Any]:
        """All constants as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ChipEvents:
    """Nonces emitted by the chip during one :meth:`SimulatedChip.advance` call.

    Parameters
    ----------
    t_ns : numpy.ndarray of int64
        Virtual time of each nonce [ns since the Unix epoch], non-decreasing.
    core_id : numpy.ndarray of int32
        Core that found the nonce [1].
    valid : numpy.ndarray of bool
        False for a hardware error (invalid nonce).
    difficulty : numpy.ndarray of float64
        Achieved difficulty of the nonce [1].
    nonce : numpy.ndarray of int64
        Synthetic u32 nonce value [1].
    """

    t_ns: np.ndarray
    core_id: np.ndarray
    valid: np.ndarray
    difficulty: np.ndarray = field(default_factory=lambda: np.zeros(0))
    nonce: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.t_ns.shape[0])

    @property
    def error_code(self) -> np.ndarray:
        """0 for a valid nonce, 30 for a hardware error (int16)."""
        return np.where(self.valid, 0, ERROR_HARDWARE).astype(np.int16)

    @staticmethod
    def concatenate(parts: Sequence[ChipEvents]) -> ChipEvents:
        """Join several event batches (in order)."""
        if not parts:
            return _empty_events()
        return ChipEvents(
            t_ns=np.concatenate([p.t_ns for p in parts]),
            core_id=np.concatenate([p.core_id for p in parts]),
            valid=np.concatenate([p.valid for p in parts]),
            difficulty=np.concatenate([p.difficulty for p in parts]),
            nonce=np.concatenate([p.nonce for p in parts]),
        )


def _empty_events() -> ChipEvents:
    return ChipEvents(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, bool),
                      np.zeros(0, np.float64), np.zeros(0, np.int64))


def _step_values(knots: np.ndarray, values: np.ndarray, initial: float, t: np.ndarray
                 ) -> np.ndarray:
    """Value at sorted times ``t`` of a step function that jumps to ``values[j]`` at ``knots[j]``.

    Before the first knot the value is ``initial``; a knot equal to a time counts as passed.
    (Counts knots per event with a bincount: faster than searching every event.)
    """
    ext = np.concatenate([[initial], values])
    if knots.size == 0:
        return np.full(t.shape[0], initial)
    pos = np.searchsorted(t, knots, side="left")
    idx = np.cumsum(np.bincount(pos, minlength=t.shape[0] + 1)[: t.shape[0]])
    return ext[idx]


def _check_number(name: str, value: float, lo: float, hi: float, *, lo_open: bool = False
                  ) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise SimulatorError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(v) or v > hi or v < lo or (lo_open and v == lo):
        bound = "(" if lo_open else "["
        raise SimulatorError(f"{name} must be in {bound}{lo}, {hi}], got {value!r}")
    return v


def _fixed_point(update: Callable[[float], float], v: float) -> float:
    """Iterate ``v <- update(v)`` until two iterates differ by < 1e-9 (at most 100 steps)."""
    for _ in range(100):
        v_new = update(v)
        if abs(v_new - v) < 1e-9:
            return v_new
        v = v_new
    return v


class SimulatedChip:
    """One simulated BM1366-class chip in virtual time (see the module docstring for the model).

    Parameters
    ----------
    seed : int
        Chip identity (>= 0): fixes the per-core critical voltages and speed factors, and seeds
        the nonce stream.
    params : ChipModelParams, optional
        Physical constants; defaults to BM1366 values.
    t0_ns : int
        Virtual start time [ns since the Unix epoch].
    ticket_difficulty : float, optional
        Ticket difficulty [1]; default ``params.ticket_difficulty``.
    nonce_stream : int
        Key of the nonce stream, seeded ``[seed, nonce_stream]`` (default 1, as documented);
        another key gives the same chip with independent randomness (used for model truth).

    Raises
    ------
    SimulatorError
        Negative or non-integer seed, bad parameters.
    """

    def __init__(self, seed: int, params: ChipModelParams | None = None, *,
                 t0_ns: int = _DEFAULT_T0_NS, ticket_difficulty: float | None = None,
                 nonce_stream: int = 1) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise SimulatorError(f"seed must be a non-negative integer, got {seed!r}")
        if params is None:
            params = ChipModelParams()
        if not isinstance(params, ChipModelParams):
            raise SimulatorError(f"params must be a ChipModelParams, got {type(params).__name__}")
        if isinstance(t0_ns, bool) or not isinstance(t0_ns, (int, np.integer)):
            raise SimulatorError(f"t0_ns must be an integer [ns], got {t0_ns!r}")
        self._seed = int(seed)
        self._p = params
        self._t0_ns = int(t0_ns)
        self._D = _check_number("ticket_difficulty",
                                params.ticket_difficulty if ticket_difficulty is None
                                else ticket_difficulty, 0.0, 1e30, lo_open=True)
        # --- per-chip constants, fixed draw order (documented in the module docstring)
        rng = np.random.default_rng(self._seed)
        z0 = rng.standard_normal()
        z = rng.standard_normal(params.n_cores)
        zs = rng.standard_normal(params.n_cores)
        self._v0 = params.edge_mean_mV + params.edge_sd_mV * float(z0)
        self._delta = params.core_sd_mV * z
        self._speed = np.exp(params.speed_sd * zs)
        self._domain_of_core = (np.arange(params.n_cores) * params.n_domains
                                // params.n_cores).astype(np.int64)
        n_dom = params.n_domains
        self._droop_tau = np.array([params.chip_droop_tau_s] + [params.domain_droop_tau_s] * n_dom)
        self._droop_frac = np.array([params.chip_droop_fraction]
                                    + [params.domain_droop_fraction] * n_dom)
        self._droop_depth = np.array([params.chip_droop_depth_mV]
                                     + [params.domain_droop_depth_mV] * n_dom)
        # --- stochastic streams
        if isinstance(nonce_stream, bool) or not isinstance(nonce_stream, (int, np.integer)) \
                or nonce_stream < 1 or nonce_stream == 2:
            raise SimulatorError(f"nonce_stream must be an integer >= 1 other than 2 (the "
                                 f"telemetry stream), got {nonce_stream!r}")
        self._rng = np.random.default_rng([self._seed, int(nonce_stream)])
        self._rng_tel = np.random.default_rng([self._seed, 2])
        # --- state
        self._elapsed_ns = 0
        self._V = float(params.nominal_voltage_mV)
        self._f = float(params.nominal_frequency_MHz)
        self._T = (self.steady_state_temperature_C() if params.initial_temperature_C is None
                   else float(params.initial_temperature_C))
        self._droop_chip = 0.0
        self._droop_dom = np.zeros(params.n_domains)
        # nonces of the last hashrate window, as batches (t_ns, valid) in time order
        self._recent: deque[tuple[np.ndarray, np.ndarray]] = deque()
        self._update_op_cache()

    # ------------------------------------------------------------------ properties
    @property
    def seed(self) -> int:
        """The chip's seed."""
        return self._seed

    @property
    def params(self) -> ChipModelParams:
        """The physical constants."""
        return self._p

    @property
    def now_ns(self) -> int:
        """Current virtual time [ns since the Unix epoch]."""
        return self._t0_ns + self._elapsed_ns

    @property
    def t0_ns(self) -> int:
        """Virtual start time [ns since the Unix epoch]."""
        return self._t0_ns

    @property
    def elapsed_ns(self) -> int:
        """Virtual time since start [ns]."""
        return self._elapsed_ns

    @property
    def ticket_difficulty(self) -> float:
        """Ticket difficulty D [1]."""
        return self._D

    @property
    def voltage_mV(self) -> float:
        """Set core voltage [mV]."""
        return self._V

    @property
    def frequency_MHz(self) -> float:
        """Set frequency [MHz]."""
        return self._f

    @property
    def temperature_C(self) -> float:
        """True die temperature now (noise-free) [degC]."""
        return self._T

    @property
    def power_W(self) -> float:
        """True power at the current operating point (noise-free) [W]."""
        return self.power_at(self._V, self._f)

    @property
    def chip_offset_mV(self) -> float:
        """The chip's critical-voltage offset V_0 [mV] (model truth)."""
        return self._v0

    @property
    def core_speed_factors(self) -> np.ndarray:
        """Per-core speed factors s_i [1] (model truth; a copy)."""
        return self._speed.copy()

    @property
    def max_nonce_rate_hz(self) -> float:
        """Nonce rate with all cores working, hashrate / (D 2^32) [1/s]."""
        return self.nonce_rate_at(self._f)

    def nonce_rate_at(self, frequency_MHz: float) -> float:
        """Nonce rate with all cores working at ``frequency_MHz`` [1/s]."""
        return frequency_MHz * 1e6 * self._p.small_cores / (self._D * 2.0**32)

    def expected_hashrate_GHs(self, frequency_MHz: float | None = None) -> float:
        """Expected hashrate f x small_cores / 1000 [GH/s]."""
        f = self._f if frequency_MHz is None else float(frequency_MHz)
        return f * self._p.small_cores / 1000.0

    # ------------------------------------------------------------------ physics
    def power_at(self, voltage_mV: float, frequency_MHz: float) -> float:
        """Power P = P_static + c_dyn f (V/1000)^2 [W] at a set voltage [mV], frequency [MHz]."""
        p = self._p
        return p.static_power_W + p.dynamic_power_W_per_MHz_V2 * frequency_MHz * (
            voltage_mV / 1000.0) ** 2

    def die_voltage_mV(self, voltage_mV: float | None = None,
                       frequency_MHz: float | None = None) -> float:
        """Die voltage V - r_IR P [mV] (noise-free)."""
        v = self._V if voltage_mV is None else float(voltage_mV)
        f = self._f if frequency_MHz is None else float(frequency_MHz)
        return v - self._p.ir_drop_mV_per_W * self.power_at(v, f)

    def steady_state_temperature_C(self, voltage_mV: float | None = None,
                                   frequency_MHz: float | None = None) -> float:
        """Steady-state die temperature T_amb + R_th P [degC]."""
        v = self._V if voltage_mV is None else float(voltage_mV)
        f = self._f if frequency_MHz is None else float(frequency_MHz)
        return self._p.ambient_C + self._p.thermal_resistance_K_per_W * self.power_at(v, f)

    def core_critical_voltages_mV(self, temperature_C: float | None = None,
                                  frequency_MHz: float | None = None) -> np.ndarray:
        """Per-core critical die voltages V_c,i(T, f) [mV] (model truth).

        Parameters
        ----------
        temperature_C : float, optional
            Die temperature [degC]; default: the current one.
        frequency_MHz : float, optional
            Frequency [MHz]; default: the current one.
        """
        p = self._p
        t = self._T if temperature_C is None else float(temperature_C)
        f = self._f if frequency_MHz is None else float(frequency_MHz)
        return (self._v0 + self._delta + p.dvc_df_mV_per_MHz * (self._speed * f
                                                                 - p.ref_frequency_MHz)
                + p.dvc_dT_mV_per_K * (t - p.ref_temperature_C))

    def edge_voltage_mV(self, temperature_C: float | None = None,
                        frequency_MHz: float | None = None) -> float:
        """Set voltage at which half of the cores are dead (without droop) [mV] (model truth).

        Solves ``V - r_IR P(V, f) = median_i V_c,i(T, f)`` at the given die temperature.

        Parameters
        ----------
        temperature_C : float, optional
            Die temperature [degC]; default: the current one.
        frequency_MHz : float, optional
            Frequency [MHz]; default: the current one.
        """
        f = self._f if frequency_MHz is None else float(frequency_MHz)
        target = float(np.median(self.core_critical_voltages_mV(temperature_C, f)))
        # contraction: d(r_IR P)/dV << 1
        return _fixed_point(lambda v: target + self._p.ir_drop_mV_per_W * self.power_at(v, f),
                            target)

    def steady_state_edge_voltage_mV(self, frequency_MHz: float | None = None) -> float:
        """Edge voltage [mV] when the die is at its steady temperature at that voltage."""
        f = self._f if frequency_MHz is None else float(frequency_MHz)

        def edge_at(v: float) -> float:  # edge voltage at the steady temperature of voltage v
            return self.edge_voltage_mV(self.steady_state_temperature_C(v, f), f)

        return _fixed_point(edge_at, edge_at(self._V))

    # ------------------------------------------------------------------ control
    def set_operating_point(self, voltage_mV: float, frequency_MHz: float) -> None:
        """Set core voltage [mV] and frequency [MHz]; takes effect immediately.

        Raises
        ------
        SimulatorError
            Voltage outside (0, 2000] mV or frequency outside (0, 2000] MHz.
        """
        v = _check_number("voltage_mV", voltage_mV, 0.0, 2000.0, lo_open=True)
        f = _check_number("frequency_MHz", frequency_MHz, 0.0, 2000.0, lo_open=True)
        self._V, self._f = v, f
        self._update_op_cache()

    def set_ticket_difficulty(self, difficulty: float) -> None:
        """Set the ticket difficulty D [1]; takes effect immediately (nonce rate ~ 1/D).

        Raises
        ------
        SimulatorError
            Difficulty not in (0, 1e30].
        """
        self._D = _check_number("ticket_difficulty", difficulty, 0.0, 1e30, lo_open=True)
        self._update_op_cache()

    def _update_op_cache(self) -> None:
        p = self._p
        self._P = self.power_at(self._V, self._f)
        self._T_inf = p.ambient_C + p.thermal_resistance_K_per_W * self._P
        self._v_die = self._V - p.ir_drop_mV_per_W * self._P
        # static part of the margin per core, excluding the temperature term
        self._core_base = (self._v0 + self._delta + p.dvc_df_mV_per_MHz * (
            self._speed * self._f - p.ref_frequency_MHz) - p.dvc_dT_mV_per_K
            * p.ref_temperature_C)
        self._lam = self.nonce_rate_at(self._f)

    # ------------------------------------------------------------------ simulation
    def advance(self, dt_s: float) -> ChipEvents:
        """Run the chip for ``dt_s`` seconds of virtual time.

        Parameters
        ----------
        dt_s : float
            Duration [s], >= 0 (rounded to whole ns).

        Returns
        -------
        ChipEvents
            Nonces in ``(now, now + dt]``, in time order. The thermal state, the droops and the
            clock advance.
        """
        dt = _check_number("dt_s", dt_s, 0.0, 1e12)
        return self.advance_ns(round(dt * 1e9))

    def advance_ns(self, dt_ns: int) -> ChipEvents:
        """As :meth:`advance` with an integer duration [ns]."""
        if isinstance(dt_ns, bool) or not isinstance(dt_ns, (int, np.integer)) or dt_ns < 0:
            raise SimulatorError(f"dt_ns must be a non-negative integer, got {dt_ns!r}")
        dt_ns = int(dt_ns)
        parts: list[ChipEvents] = []
        max_chunk = max(1, int(_CHUNK_CANDIDATES / self._lam * 1e9))
        remaining = dt_ns
        while remaining > 0:
            step = min(remaining, max_chunk)
            parts.append(self._chunk(step))
            remaining -= step
        ev = parts[0] if len(parts) == 1 else ChipEvents.concatenate(parts)
        self._remember(ev)
        return ev

    def _droop_refreshes(self, dt: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Refresh epochs [s from chunk start] and new values [mV] of every droop source.

        Source 0 is the chip droop, sources 1..n_domains the domain droops. One vectorised draw
        for all sources, in a fixed order: counts, epochs, droop-or-not, depths.
        """
        p = self._p
        n_src = 1 + p.n_domains
        counts = self._rng.poisson(dt / self._droop_tau)
        total = int(counts.sum())
        if total == 0:
            empty = np.zeros(0)
            return [(empty, empty)] * n_src
        src = np.repeat(np.arange(n_src), counts)
        key = np.sort(src + self._rng.random(total))  # sorted by source, then by time
        on = self._rng.random(total) < self._droop_frac[src]
        depth = self._rng.standard_exponential(total) * self._droop_depth[src]
        t = (key - src) * dt
        val = np.where(on, depth, 0.0)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        return [(t[bounds[k]:bounds[k + 1]], val[bounds[k]:bounds[k + 1]])
                for k in range(n_src)]

    def _chunk(self, dt_ns: int) -> ChipEvents:
        p = self._p
        rng = self._rng
        dt = dt_ns * 1e-9
        lam = self._lam
        # 1. candidate times: homogeneous Poisson at the all-cores rate (cumulated gaps)
        mean = lam * dt
        n_guess = int(mean + 6.0 * math.sqrt(mean) + 16)
        t = np.cumsum(rng.standard_exponential(n_guess)) / lam
        while t[-1] <= dt:
            more = t[-1] + np.cumsum(rng.standard_exponential(n_guess)) / lam
            t = np.concatenate([t, more])
        t = t[: int(np.searchsorted(t, dt, side="right"))]
        n = t.shape[0]
        core = rng.integers(0, p.n_cores, n)
        # 2. droop processes (chip, then each domain)
        droops = self._droop_refreshes(dt)
        T0, Tinf, tau = self._T, self._T_inf, p.thermal_tau_s
        if n:
            events = self._emit(dt_ns, t, core, droops, T0)
        else:
            events = _empty_events()
        # 5. state update
        self._T = Tinf + (T0 - Tinf) * math.exp(-dt / tau)
        if droops[0][1].size:
            self._droop_chip = float(droops[0][1][-1])
        for k, (_, vk) in enumerate(droops[1:]):
            if vk.size:
                self._droop_dom[k] = vk[-1]
        self._elapsed_ns += dt_ns
        return events

    def _emit(self, dt_ns: int, t: np.ndarray, core: np.ndarray,
              droops: list[tuple[np.ndarray, np.ndarray]], T0: float) -> ChipEvents:
        """Thin the candidates (times ``t`` [s from chunk start], cores) and draw their marks."""
        p = self._p
        rng = self._rng
        dv = _step_values(*droops[0], self._droop_chip, t)
        ev_dom = self._domain_of_core[core]
        dv += np.choose(ev_dom, [_step_values(tk, vk, self._droop_dom[k], t)
                                 for k, (tk, vk) in enumerate(droops[1:])])
        # 3. temperature (exact first-order response) and margins
        Tinf = self._T_inf
        if abs(T0 - Tinf) > 1e-12:
            temp = Tinf + (T0 - Tinf) * np.exp(-t / p.thermal_tau_s)
        else:
            temp = np.float64(Tinf)
        margin = self._v_die - dv - self._core_base[core] - p.dvc_dT_mV_per_K * temp
        alive = margin >= 0.0
        t = t[alive]
        core = core[alive]
        margin = margin[alive]
        m = t.shape[0]
        # 4. marks
        p_err = np.minimum(1.0, p.err_floor + p.err_max * np.exp(-margin / p.err_width_mV))
        valid = rng.random(m) >= p_err
        u = 1.0 - rng.random(m)  # (0, 1]
        difficulty = np.where(valid, self._D, _RANDOM_HASH_DIFFICULTY) / u
        nonce = rng.integers(0, 2**32, m, dtype=np.int64)
        t_ns = self.now_ns + np.clip(np.ceil(t * 1e9).astype(np.int64), 1, dt_ns)
        return ChipEvents(t_ns=t_ns, core_id=core.astype(np.int32), valid=valid,
                          difficulty=difficulty, nonce=nonce)

    def _remember(self, ev: ChipEvents) -> None:
        """Keep the nonces of the last hashrate window (for the AxeOS-like hashrate).

        Whole batches are kept and dropped, so that many small ``advance`` calls at a high nonce
        rate cost O(1) each; the batch straddling the window start is cut when counting.
        """
        if len(ev):
            self._recent.append((ev.t_ns, ev.valid))
        cut = self.now_ns - round(self._p.hashrate_window_s * 1e9)
        while self._recent and self._recent[0][0][-1] <= cut:
            self._recent.popleft()

    def _recent_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The kept nonces as two arrays (times [ns], valid flags)."""
        if not self._recent:
            return np.zeros(0, np.int64), np.zeros(0, bool)
        if len(self._recent) == 1:
            return self._recent[0]
        t = np.concatenate([b[0] for b in self._recent])
        v = np.concatenate([b[1] for b in self._recent])
        self._recent = deque([(t, v)])
        return t, v

    def _telemetry_arrays(self, times_ns: np.ndarray, temps: np.ndarray, ev_t: np.ndarray,
                          ev_valid: np.ndarray) -> dict[str, np.ndarray]:
        """Telemetry at ``times_ns`` for the current operating point (vectorised).

        ``temps`` are the true die temperatures at those times; ``ev_t``/``ev_valid`` the
        (sorted) nonces that may fall in the hashrate windows.
        """
        p = self._p
        n = times_ns.shape[0]
        noise = self._rng_tel.standard_normal((n, 3))
        w = np.minimum(round(p.hashrate_window_s * 1e9), times_ns - self._t0_ns)
        lo = times_ns - w
        hi_pos = np.searchsorted(ev_t, times_ns, side="right")
        lo_pos = np.searchsorted(ev_t, lo, side="right")
        cum_valid = np.concatenate([[0], np.cumsum(ev_valid, dtype=np.int64)])
        n_valid = cum_valid[hi_pos] - cum_valid[lo_pos]
        n_all = hi_pos - lo_pos
        with np.errstate(divide="ignore", invalid="ignore"):
            hashrate = np.where(w > 0, n_valid * self._D * 2.0**32 / (w * 1e-9) / 1e9, 0.0)
            err_pct = np.where(n_all > 0, 100.0 * (n_all - n_valid) / n_all, 0.0)
        return {
            "temperature": temps + p.telemetry_temperature_noise_C * noise[:, 0],
            "power": self._P + p.telemetry_power_noise_W * noise[:, 1],
            "voltage_set": np.full(n, self._V),
            "voltage_measured": self._v_die + p.telemetry_voltage_noise_mV * noise[:, 2],
            "frequency": np.full(n, self._f),
            "hashrate": hashrate.astype(np.float64),
            "expected_hashrate": np.full(n, self.expected_hashrate_GHs()),
            "error_percentage": err_pct.astype(np.float64),
            "t_host_ns": times_ns.astype(np.int64),
        }

    def telemetry(self) -> dict[str, Any]:
        """AxeOS-like reading now (with sensor noise; see the model, section 10).

        Returns
        -------
        dict
            ``temperature`` [degC], ``power`` [W], ``voltage_set`` [mV], ``voltage_measured``
            [mV], ``frequency`` [MHz], ``hashrate`` [GH/s] (measured from valid nonces over the
            last ``hashrate_window_s``, 0 at start), plus ``expected_hashrate`` [GH/s],
            ``error_percentage`` [%] (hardware errors among the window's nonces) and
            ``t_host_ns`` [ns since the epoch, int].
        """
        arr = self._telemetry_arrays(np.array([self.now_ns], np.int64), np.array([self._T]),
                                     *self._recent_arrays())
        out: dict[str, Any] = {k: float(v[0]) for k, v in arr.items()}
        out["t_host_ns"] = self.now_ns
        return out

    def advance_with_telemetry_ns(self, dt_ns: int, sample_times_ns: Any
                                  ) -> tuple[ChipEvents, dict[str, np.ndarray]]:
        """Advance by ``dt_ns`` [ns] and read telemetry at the given times on the way.

        Equivalent to advancing to each sample time and calling :meth:`telemetry` there (same
        formulas, same noise stream), but vectorised and with one nonce stream for the whole
        interval, so the events do not depend on the sampling.

        Parameters
        ----------
        dt_ns : int
            Duration [ns], >= 0.
        sample_times_ns : array-like of int
            Sorted sample times [ns since the epoch] in ``(now, now + dt_ns]``.

        Returns
        -------
        (ChipEvents, dict of numpy.ndarray)
            The events, and the telemetry columns (keys as :meth:`telemetry`).
        """
        ts = np.asarray(sample_times_ns, dtype=np.int64).reshape(-1)
        if isinstance(dt_ns, bool) or not isinstance(dt_ns, (int, np.integer)) or dt_ns < 0:
            raise SimulatorError(f"dt_ns must be a non-negative integer, got {dt_ns!r}")
        start = self.now_ns
        if ts.size and (ts[0] <= start or ts[-1] > start + int(dt_ns)
                        or np.any(np.diff(ts) < 0)):
            raise SimulatorError("sample times must be sorted and inside (now, now + dt_ns]")
        hist_t, hist_v = self._recent_arrays()
        T0, Tinf = self._T, self._T_inf
        ev = self.advance_ns(int(dt_ns))
        temps = Tinf + (T0 - Tinf) * np.exp(-(ts - start) * 1e-9 / self._p.thermal_tau_s)
        tel = self._telemetry_arrays(ts, temps, np.concatenate([hist_t, ev.t_ns]),
                                     np.concatenate([hist_v, ev.valid]))
        return ev, tel

    def describe(self) -> dict[str, Any]:
        """Model truth of this chip as a JSON-serialisable dict (seed, V_0, edge voltages)."""
        return {
            "seed": self._seed,
            "chip_offset_mV": self._v0,
            "edge_voltage_mV_at_ref": self.edge_voltage_mV(self._p.ref_temperature_C,
                                                           self._p.ref_frequency_MHz),
        }


# ---------------------------------------------------------------------- sweep


_TEL_FIELDS = ("temperature", "power", "voltage_set", "voltage_measured", "frequency",
               "hashrate")


class _DeviceRun:
    """Collects one device's events, telemetry and ops during a sweep."""

    def __init__(self, index: int, chip: SimulatedChip, tel_interval_ns: int) -> None:
        self.index = index
        self.chip = chip
        self.tel_interval_ns = tel_interval_ns
        self.next_tel_ns = chip.now_ns + tel_interval_ns
        self.events: list[ChipEvents] = []
        self.event_ops: list[np.ndarray] = []
        self.tel: list[dict[str, np.ndarray]] = []
        #: virtual time up to which events and telemetry are collected [ns since the epoch]
        self.done_ns = chip.now_ns

    def run_until(self, end_ns: int, op_index: int) -> None:
        """Advance the chip to ``end_ns``, sampling telemetry on the device's 3-s grid."""
        chip = self.chip
        if end_ns <= chip.now_ns:
            return
        times = np.arange(self.next_tel_ns, end_ns + 1, self.tel_interval_ns, dtype=np.int64)
        ev, tel = chip.advance_with_telemetry_ns(end_ns - chip.now_ns, times)
        if times.size:
            self.next_tel_ns = int(times[-1]) + self.tel_interval_ns
            tel["op_index"] = np.full(times.size, op_index, np.int32)
            self.tel.append(tel)
        if len(ev):
            self.events.append(ev)
            self.event_ops.append(np.full(len(ev), op_index, np.int32))
        self.done_ns = end_ns


def simulate_sweep(
    seed: int,
    voltages_mV: Sequence[float],
    frequency_MHz: float = 485.0,
    dwell_s: float = 60.0,
    settle_s: float = 0.0,
    *,
    params: ChipModelParams | None = None,
    ticket_difficulty: float = 256.0,
    telemetry_interval_s: float = 3.0,
    progress: bool = False,
    n_devices: int = 1,
) -> xr.Dataset:
    """Sweep simulated chips over core voltages at one frequency, in virtual time.

    Each device starts at its nominal operating point (thermally settled there) at the same
    virtual time. For each voltage in order: the operating point is set, the chip runs
    ``settle_s`` (events and telemetry kept with op index -1), then ``dwell_s`` (the operating
    point ``(start, end]``). Telemetry is sampled every ``telemetry_interval_s`` from the start,
    on one grid that ignores operating-point changes (as polling AxeOS does).

    Parameters
    ----------
    seed : int
        Seed of device 0; device ``d`` is the chip of seed ``seed + d``.
    voltages_mV : sequence of float
        Set core voltages [mV], in the order applied.
    frequency_MHz : float
        Frequency [MHz].
    dwell_s : float
        Measurement time per operating point [s] (virtual).
    settle_s : float
        Settling time after each change [s] (virtual), outside any operating point.
    params : ChipModelParams, optional
        Physical constants (default BM1366).
    ticket_difficulty : float
        Ticket difficulty D [1]; also the events' ``pool_difficulty``.
    telemetry_interval_s : float
        Telemetry sampling interval [s].
    progress : bool
        Show a tqdm progress bar over operating points.
    n_devices : int
        Number of simulated chips.

    Returns
    -------
    xarray.Dataset
        A capture (:mod:`asiclab.dataset` schema), ``source_kind = "simulated"``, with the seed,
        all model constants and the sweep arguments in ``attrs["parameters"]`` (JSON) and
        ``attrs["interrupted"]`` = 1 if the sweep was stopped by KeyboardInterrupt (the data
        simulated so far is returned).

    Raises
    ------
    SimulatorError
        Bad arguments.
    """
    from tqdm.auto import tqdm

    from asiclab import dataset

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SimulatorError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(n_devices, bool) or not isinstance(n_devices, (int, np.integer)) \
            or n_devices < 1:
        raise SimulatorError(f"n_devices must be a positive integer, got {n_devices!r}")
    if isinstance(voltages_mV, (str, bytes)):
        raise SimulatorError("voltages_mV must be a sequence of numbers")
    try:
        volts = [float(v) for v in voltages_mV]
    except (TypeError, ValueError) as exc:
        raise SimulatorError(f"voltages_mV must be a sequence of numbers: {exc}") from exc
    if not volts:
        raise SimulatorError("voltages_mV is empty")
    for v in volts:
        _check_number("voltage", v, 0.0, 2000.0, lo_open=True)
    f = _check_number("frequency_MHz", frequency_MHz, 0.0, 2000.0, lo_open=True)
    dwell_ns = round(_check_number("dwell_s", dwell_s, 0.0, 1e9, lo_open=True) * 1e9)
    settle_ns = round(_check_number("settle_s", settle_s, 0.0, 1e9) * 1e9)
    tel_ns = round(_check_number("telemetry_interval_s", telemetry_interval_s, 0.0, 1e6,
                                 lo_open=True) * 1e9)
    if dwell_ns < 1 or tel_ns < 1:
        raise SimulatorError("dwell_s and telemetry_interval_s must be at least 1 ns")
    params = params if params is not None else ChipModelParams()
    D = _check_number("ticket_difficulty", ticket_difficulty, 0.0, 1e30, lo_open=True)

    runs = [_DeviceRun(d, SimulatedChip(int(seed) + d, params, ticket_difficulty=D), tel_ns)
            for d in range(n_devices)]
    t0_ns = runs[0].chip.t0_ns
    ops: list[dict[str, Any]] = []
    interrupted = False
    bar = tqdm(total=len(volts) * n_devices, disable=not progress, desc="simulated sweep",
               unit="op")
    try:
        for v in volts:
            for run in runs:
                chip = run.chip
                chip.set_operating_point(v, f)
                run.run_until(chip.now_ns + settle_ns, -1)
                op = {"device": run.index, "voltage": v, "start": chip.now_ns, "end": None}
                op_index = len(ops)
                ops.append(op)
                run.run_until(chip.now_ns + dwell_ns, op_index)
                op["end"] = chip.now_ns
                bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    for op in ops:  # an op cut short by an interrupt ends where its collected data ends
        if op["end"] is None:
            op["end"] = max(op["start"], runs[op["device"]].done_ns)

    # --- events
    ev_parts = [ChipEvents.concatenate(r.events) for r in runs]
    dev_idx = np.concatenate([np.full(len(e), r.index, np.int32)
                              for e, r in zip(ev_parts, runs, strict=True)])
    op_idx = np.concatenate([np.concatenate(r.event_ops) if r.event_ops
                             else np.zeros(0, np.int32) for r in runs])
    allev = ChipEvents.concatenate(ev_parts)
    if n_devices > 1:  # interleave the devices in time, like one host logging them all
        order = np.argsort(allev.t_ns, kind="stable")
        allev = ChipEvents(allev.t_ns[order], allev.core_id[order], allev.valid[order],
                           allev.difficulty[order], allev.nonce[order])
        dev_idx, op_idx = dev_idx[order], op_idx[order]
    n_ev = len(allev)
    events = {
        "t_host_ns": allev.t_ns,
        "t_mono_ns": allev.t_ns - t0_ns,
        "nonce": allev.nonce,
        # job_id omitted: build_capture fills the "" sentinel
        "core_id": allev.core_id,
        "version_bits": np.zeros(n_ev, np.int64),
        "difficulty": allev.difficulty,
        "pool_difficulty": np.full(n_ev, D),
        "valid": allev.valid,
        "error_code": allev.error_code,
        "device_index": dev_idx,
        "op_index": op_idx,
    }
    # --- telemetry
    tel_parts = [(r.index, t) for r in runs for t in r.tel]

    def tel_col(name: str, dtype: Any) -> np.ndarray:
        return np.concatenate([np.asarray(t[name], dtype) for _, t in tel_parts]) \
            if tel_parts else np.zeros(0, dtype)

    tel_t = tel_col("t_host_ns", np.int64)
    tel_dev = (np.concatenate([np.full(len(t["t_host_ns"]), d, np.int32) for d, t in tel_parts])
               if tel_parts else np.zeros(0, np.int32))
    torder = np.argsort(tel_t, kind="stable") if n_devices > 1 else slice(None)
    telemetry: dict[str, Any] = {
        "tel_t_host_ns": tel_t[torder],
        "tel_t_mono_ns": tel_t[torder] - t0_ns,
        "tel_device_index": tel_dev[torder],
        "tel_op_index": tel_col("op_index", np.int32)[torder],
    }
    for name in _TEL_FIELDS:
        telemetry[name] = tel_col(name, np.float64)[torder]
    # --- ops and devices
    op_cols = {
        "op_device_index": np.array([o["device"] for o in ops], np.int32),
        "op_voltage_set": np.array([o["voltage"] for o in ops], np.float64),
        "op_frequency_set": np.full(len(ops), f),
        "op_t_start_ns": np.array([o["start"] for o in ops], np.int64),
        "op_t_end_ns": np.array([o["end"] for o in ops], np.int64),
    }
    devices = {
        "device_name": [f"sim-{params.model}-seed{r.chip.seed}" for r in runs],
        "device_model": [params.model] * n_devices,
        "device_source_kind": ["simulated"] * n_devices,
    }
    parameters = {
        "generator": "asiclab.devices.simulated.simulate_sweep",
        "model_version": MODEL_VERSION,
        "seed": int(seed),
        "device_seeds": [r.chip.seed for r in runs],
        "n_devices": int(n_devices),
        "voltages_mV": volts,
        "frequency_MHz": f,
        "dwell_s": dwell_ns * 1e-9,
        "settle_s": settle_ns * 1e-9,
        "ticket_difficulty": D,
        "telemetry_interval_s": tel_ns * 1e-9,
        "t0_ns": t0_ns,
        "settle_events": "kept with op_index -1",
        "model": params.to_dict(),
        "truth": [dict(r.chip.describe(),
                       steady_state_edge_voltage_mV=r.chip.steady_state_edge_voltage_mV(f))
                  for r in runs],
    }
    attrs = {
        "source_kind": "simulated",
        "device_model": params.model,
        "firmware": f"asiclab simulated {params.model} model v{MODEL_VERSION}",
        "parameters": json.dumps(parameters, sort_keys=True),
        "seed": int(seed),
        "title": f"Simulated {params.model} core-voltage sweep at {f:g} MHz "
                 f"({n_devices} device{'s' if n_devices > 1 else ''})",
        "source_file": "none",
        "interrupted": int(interrupted),
    }
    return dataset.build_capture(events=events, telemetry=telemetry, ops=op_cols,
                                 devices=devices, attrs=attrs)


def steady_state_intervals(
    seed: int,
    voltage_mV: float,
    frequency_MHz: float,
    *,
    n_events: int = 1_000_000,
    params: ChipModelParams | None = None,
    ticket_difficulty: float | None = None,
    nonce_stream: int = 1_000,
    max_duration_factor: float = 50.0,
) -> np.ndarray:
    """Inter-arrival times of the valid shares of a chip held long at one operating point.

    Model truth for the statistics: the chip of ``seed`` is started at its steady-state
    temperature at ``(voltage_mV, frequency_MHz)`` and run until ``n_events`` valid nonces (or
    ``max_duration_factor`` times the time they would take with every core working, for a
    collapsed chip), with a nonce stream independent of any capture's (``nonce_stream``).
    The expected CV, dispersion and the battery's power at a capture's train length follow
    from these intervals (:func:`asiclab.heartbeat.workflow.model_truth`). Simulated, never a
    measurement.

    Parameters
    ----------
    seed : int
        Chip seed.
    voltage_mV, frequency_MHz : float
        Operating point [mV], [MHz].
    n_events : int
        Valid nonces wanted.
    params : ChipModelParams, optional
        Model constants (default: BM1366 defaults).
    ticket_difficulty : float, optional
        Ticket difficulty [1].
    nonce_stream : int
        Key of the independent nonce stream.
    max_duration_factor : float
        Cap on virtual time, in units of ``n_events / max_nonce_rate``.

    Returns
    -------
    numpy.ndarray
        Intervals [s] between consecutive valid nonces (fewer than ``n_events - 1`` when the
        chip is collapsed at this operating point).
    """
    if n_events < 2:
        raise SimulatorError("n_events must be >= 2")
    p = ChipModelParams() if params is None else params
    probe = SimulatedChip(seed, p, ticket_difficulty=ticket_difficulty)
    t_ss = probe.steady_state_temperature_C(voltage_mV, frequency_MHz)
    chip = SimulatedChip(seed, dataclasses.replace(p, initial_temperature_C=t_ss),
                         ticket_difficulty=ticket_difficulty, nonce_stream=nonce_stream)
    chip.set_operating_point(voltage_mV, frequency_MHz)
    lam = chip.max_nonce_rate_hz
    budget = max_duration_factor * n_events / lam
    parts: list[np.ndarray] = []
    have, spent = 0, 0.0
    while have < n_events and spent < budget:
        dt = min(1.05 * (n_events - have) / lam + 10.0, budget - spent)
        ev = chip.advance(dt)
        spent += dt
        t = ev.t_ns[ev.valid]
        parts.append(t)
        have += t.size
    t = np.concatenate(parts)[:n_events] if parts else np.zeros(0, np.int64)
    return np.diff(t).astype(np.float64) * 1e-9
