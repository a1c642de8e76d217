"""Enrollment, verification and identification of a fleet, per challenge.

For one challenge (an operating point) and a fleet of M devices, each captured ``n`` times:

* **Enrollment**: the first ``n_enroll`` captures (in time order) of every device; the template
  is the mean of their continuous response vectors (:meth:`Responses.vectors`).
* **Verification**: every later capture (a *probe*) is compared with every template; its
  distance to its own device's template is a *genuine* (intra-device) distance, to another's an
  *impostor* (inter-device) distance. FAR, FRR and the EER follow (:mod:`asiclab.puf.metrics`),
  with a bootstrap CI over probes.
* **Identification**: each probe is assigned to the nearest template (ties at random); the
  accuracy is compared with chance 1/M by an exact binomial test.
* **Binary metrics**: the binarisation rule of :mod:`asiclab.puf.responses` (default: per core,
  above the median core of the same response); reference response = binarised enrollment mean,
  repeats = binarised probes; uniformity, bit-aliasing, uniqueness, reliability (Maiti et al.
  2013, DOI 10.1007/978-1-4614-1362-2_11).
* **Pairwise tests**: per device pair, a permutation test over captures of "same distribution"
  (:func:`asiclab.puf.metrics.permutation_test`), Benjamini-Hochberg over the pairs.
* **Witness**: for the pair whose enrollment templates are furthest apart, the component chosen
  on the enrollment captures and tested on the probes (:func:`asiclab.puf.metrics.witness`).
* **Events needed**: the EER and the identification accuracy when only the first ``w`` seconds of
  every capture are used, against the mean number of events per capture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from asiclab.puf import metrics
from asiclab.puf._errors import PufInputError
from asiclab.puf.responses import Responses, binarise, responses_from_capture

__all__ = [
    "ChallengeResult",
    "benjamini_hochberg",
    "evaluate_challenge",
    "evaluate_fleet",
    "events_curve",
    "events_needed",
    "fleet_witness",
    "pairwise_tests",
]


@dataclass
class ChallengeResult:
    """Everything measured at one challenge (see the module docstring)."""

    voltage_mV: float
    frequency_MHz: float
    n_devices: int
    n_enroll: int
    genuine: np.ndarray
    impostor: np.ndarray
    eer: float
    eer_ci: tuple[float, float]
    ident: metrics.IdentificationResult
    continuous_uniqueness: float
    decidability: float
    uniformity: float
    bit_aliasing: np.ndarray
    uniqueness: float
    reliability: float
    mean_events: float
    mean_rate_hz: float
    mean_error_fraction: float
    reference_bits: np.ndarray = field(repr=False)
    repeat_bits: np.ndarray = field(repr=False)
    hits_mean: np.ndarray = field(repr=False)

    def row(self) -> dict[str, Any]:
        """One table row (numbers only)."""
        return {"voltage_mV": self.voltage_mV, "frequency_MHz": self.frequency_MHz,
                "eer": self.eer, "eer_low": self.eer_ci[0], "eer_high": self.eer_ci[1],
                "ident_accuracy": self.ident.accuracy, "ident_low": self.ident.ci[0],
                "ident_high": self.ident.ci[1], "ident_chance": self.ident.chance,
                "ident_p": self.ident.p_value, "continuous_uniqueness":
                self.continuous_uniqueness, "decidability": self.decidability,
                "uniformity_pct": self.uniformity,
                "bit_aliasing_pct": float(np.mean(self.bit_aliasing)),
                "bits_stuck_pct": float(100 * np.mean((self.bit_aliasing == 0)
                                                      | (self.bit_aliasing == 100))),
                "uniqueness_pct": self.uniqueness, "reliability_pct": self.reliability,
                "mean_events": self.mean_events, "mean_rate_hz": self.mean_rate_hz,
                "mean_error_fraction": self.mean_error_fraction,
                "n_devices": self.n_devices, "n_probes": self.ident.n_probes}


def _split(r: Responses, n_enroll: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if n_enroll < 1:
        raise PufInputError(f"n_enroll must be >= 1, got {n_enroll}")
    devs = np.array(sorted(set(r.device.tolist())))
    ok = [d for d in devs if np.sum((r.device == d) & (r.rep >= n_enroll)) >= 1
          and np.sum((r.device == d) & (r.rep < n_enroll)) == n_enroll]
    if len(ok) < 2:
        raise PufInputError(f"need at least two devices with {n_enroll} enrollment captures "
                            f"and at least one more capture at this challenge")
    devs = np.array(ok)
    enr = np.isin(r.device, devs) & (r.rep < n_enroll)
    prb = np.isin(r.device, devs) & (r.rep >= n_enroll)
    return devs, enr, prb


def evaluate_challenge(r: Responses, *, n_enroll: int = 2, n_boot: int = 500, seed: int = 0,
                       include_errors: bool = True, rule: str = "chip_median",
                       features: str = "per_core") -> ChallengeResult:
    """Enrollment, verification, identification and binary metrics at one challenge.

    Parameters
    ----------
    r : Responses
        The captures of one challenge (:meth:`Responses.at`).
    n_enroll : int
        Enrollment captures per device (the first in time).
    n_boot : int
        Bootstrap resamples of the EER CI.
    seed : int
        Seed of the bootstrap and the identification tie-break.
    include_errors : bool
        Use the per-core hardware-error counts as well as the hits.
    rule : {"chip_median", "fleet_median"}
        Binarisation rule (:func:`asiclab.puf.responses.binarise`).
    features : {"per_core", "rate_only"}
        Continuous response (:meth:`Responses.vectors`); ``rate_only`` is the rate baseline.

    Raises
    ------
    PufInputError
        Several challenges mixed, or too few captures.
    """
    if len(r.challenges) != 1:
        raise PufInputError(f"evaluate_challenge needs one challenge, got {r.challenges}")
    devs, enr, prb = _split(r, n_enroll)
    X = r.vectors(include_errors=include_errors, features=features)
    col = {int(d): k for k, d in enumerate(devs)}
    templates = np.stack([X[enr & (r.device == d)].mean(axis=0) for d in devs])
    D = metrics.distances(X[prb], templates)
    y = np.array([col[int(d)] for d in r.device[prb]])
    gen = D[np.arange(len(y)), y]
    mask = np.ones_like(D, bool)
    mask[np.arange(len(y)), y] = False
    imp = D[mask].reshape(len(y), len(devs) - 1)
    e, ci = metrics.eer_bootstrap(gen, imp, n_boot=n_boot, seed=seed)
    ident = metrics.identification(D, y, seed=seed)
    hits_mean = np.stack([r.hits[enr & (r.device == d)].mean(axis=0) for d in devs])
    dur_ref = float(np.mean(r.duration_s[enr]))
    ref_bits = binarise(hits_mean, hits_mean, rule=rule)
    m = min(int(np.sum(prb & (r.device == d))) for d in devs)
    rep_bits = np.stack([binarise(r.hits[prb & (r.device == d)][:m], hits_mean, rule=rule,
                                  duration_s=r.duration_s[prb & (r.device == d)][:m],
                                  reference_duration_s=dur_ref) for d in devs])
    n_ev = r.hits.sum(1) + r.errors.sum(1)
    return ChallengeResult(
        voltage_mV=float(r.voltage_mV[0]), frequency_MHz=float(r.frequency_MHz[0]),
        n_devices=len(devs), n_enroll=n_enroll, genuine=gen, impostor=imp, eer=e, eer_ci=ci,
        ident=ident, continuous_uniqueness=metrics.continuous_uniqueness(gen, imp),
        decidability=metrics.decidability(gen, imp) if gen.size >= 2 else float("nan"),
        uniformity=float(np.mean(metrics.uniformity(ref_bits))),
        bit_aliasing=metrics.bit_aliasing(ref_bits), uniqueness=metrics.uniqueness(ref_bits),
        reliability=float(np.mean(metrics.reliability(ref_bits, rep_bits))),
        mean_events=float(n_ev.mean()), mean_rate_hz=float(np.nanmean(r.rate_hz)),
        mean_error_fraction=float(np.nanmean(r.error_fraction))
        if np.isfinite(r.error_fraction).any() else float("nan"),
        reference_bits=ref_bits, repeat_bits=rep_bits, hits_mean=hits_mean)


def evaluate_fleet(r: Responses, **kw: Any) -> tuple[pd.DataFrame, dict[float, ChallengeResult]]:
    """:func:`evaluate_challenge` at every challenge: (table by voltage, results by voltage)."""
    out: dict[float, ChallengeResult] = {}
    for v, f in r.challenges:
        out[v] = evaluate_challenge(r.at(v, f), **kw)
    table = pd.DataFrame([c.row() for c in out.values()]).sort_values("voltage_mV",
                                                                      ascending=False)
    return table.reset_index(drop=True), out


def benjamini_hochberg(p: Any) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (DOI 10.1111/j.2517-6161.1995.tb02031.x)."""
    q = np.asarray(p, float)
    n = q.size
    if n == 0:
        return q
    order = np.argsort(q)
    adj = q[order] * n / np.arange(1, n + 1)
    adj = np.minimum.accumulate(adj[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adj, 1.0)
    return out


def pairwise_tests(r: Responses, *, n_perm: int = 999, alpha: float = 0.05, seed: int = 0,
                   include_errors: bool = True) -> pd.DataFrame:
    """Per device pair at one challenge: permutation test over captures, BH-adjusted.

    Returns
    -------
    pandas.DataFrame
        Columns ``a``, ``b`` (device indices), ``name_a``, ``name_b``, ``statistic``,
        ``p_value``, ``p_bh``, ``separated`` (``p_bh <= alpha``).
    """
    if len(r.challenges) != 1:
        raise PufInputError("pairwise_tests needs the captures of one challenge")
    X = r.vectors(include_errors=include_errors)
    devs = sorted(set(r.device.tolist()))
    rows = []
    for i, a in enumerate(devs):
        for b in devs[i + 1:]:
            s, p = metrics.permutation_test(X[r.device == a], X[r.device == b], n_perm=n_perm,
                                            seed=seed + 7919 * a + b)
            rows.append({"a": a, "b": b, "name_a": r.device_names[a],
                         "name_b": r.device_names[b], "statistic": s, "p_value": p})
    df = pd.DataFrame(rows)
    df["p_bh"] = benjamini_hochberg(df["p_value"].to_numpy())
    df["separated"] = df["p_bh"] <= alpha
    return df


def fleet_witness(r: Responses, *, n_enroll: int = 2) -> metrics.Witness:
    """The witness for the device pair whose enrollment templates are furthest apart.

    The component is chosen on the enrollment captures and tested on the probes, with the
    over-dispersion of the component across all captures of the two devices
    (:func:`asiclab.puf.metrics.dispersion_factor`) taken into account.
    """
    devs, enr, prb = _split(r, n_enroll)
    comp = np.concatenate([r.hits, r.errors], axis=1)
    sel = np.stack([comp[enr & (r.device == d)].sum(0) for d in devs])
    tst = np.stack([comp[prb & (r.device == d)].sum(0) for d in devs])
    tot = sel.sum(1, keepdims=True)
    frac = np.divide(sel, tot, out=np.zeros_like(sel, dtype=float), where=tot > 0)
    D = metrics.distances(frac, frac)
    ok = (tot[:, 0] > 0) & (tst.sum(1) > 0)
    D[~ok, :] = -1.0
    D[:, ~ok] = -1.0
    np.fill_diagonal(D, -1.0)
    i, j = np.unravel_index(int(np.argmax(D)), D.shape)
    if D[i, j] < 0:
        raise PufInputError("no two devices with events at this challenge: no witness")
    w0 = metrics.witness(sel[i], sel[j], tst[i], tst[j], device_a=int(devs[i]),
                         device_b=int(devs[j]), n_hit_cores=r.n_cores)
    c = w0.core + (r.n_cores if w0.kind == "error" else 0)
    groups = [comp[r.device == devs[k]] for k in (i, j)]
    phi = metrics.dispersion_factor([g[:, c] for g in groups], [g.sum(1) for g in groups])
    return metrics.witness(sel[i], sel[j], tst[i], tst[j], device_a=int(devs[i]),
                           device_b=int(devs[j]), n_hit_cores=r.n_cores, dispersion=phi)


def events_curve(ds: xr.Dataset, voltage_mV: float, windows_s: list[float], *,
                 n_enroll: int = 2, seed: int = 0, include_errors: bool = True) -> pd.DataFrame:
    """EER and identification accuracy against the events per capture (first ``w`` seconds).

    Parameters
    ----------
    ds : xarray.Dataset
        The fleet capture.
    voltage_mV : float
        The challenge [mV].
    windows_s : list of float
        Leading windows of every capture [s].
    n_enroll, seed, include_errors
        As :func:`evaluate_challenge` (no bootstrap here).

    Returns
    -------
    pandas.DataFrame
        ``window_s``, ``events_per_capture`` (mean), ``events_per_enrollment``
        (``n_enroll`` x mean), ``eer``, ``ident_accuracy``, ``ident_low``, ``ident_high``,
        ``ident_chance``.
    """
    rows = []
    for w in windows_s:
        r = responses_from_capture(ds, window_s=float(w)).at(voltage_mV)
        c = evaluate_challenge(r, n_enroll=n_enroll, n_boot=1, seed=seed,
                               include_errors=include_errors)
        rows.append({"window_s": float(w), "events_per_capture": c.mean_events,
                     "events_per_enrollment": n_enroll * c.mean_events, "eer": c.eer,
                     "ident_accuracy": c.ident.accuracy, "ident_low": c.ident.ci[0],
                     "ident_high": c.ident.ci[1], "ident_chance": c.ident.chance})
    return pd.DataFrame(rows)


def events_needed(curve: pd.DataFrame, *, max_eer: float = 0.05) -> float:
    """Fewest events per capture from which the EER stays <= ``max_eer`` (NaN if never)."""
    c = curve.sort_values("events_per_capture")
    good = (c["eer"] <= max_eer).to_numpy()
    if not good.any():
        return float("nan")
    # the first point after which every larger window is good
    bad_after = np.where(~good)[0]
    k = 0 if bad_after.size == 0 else int(bad_after[-1]) + 1
    if k >= len(c):
        return float("nan")
    return float(c["events_per_capture"].iloc[k])
