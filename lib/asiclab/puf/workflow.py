"""The steps of ``notebooks/05_puf.ipynb``: parameters, fleets, evaluation, recorded results.

The notebook validates its parameters against :data:`PARAMS`, calls :func:`run` (the fleet
capture -- simulated in virtual time by default, or any saved fleet capture from the live or
emulated sweeps with ``source = "file"`` -- and always the simulated no-variation control beside
it; evaluation at every challenge; pairwise tests, witness and events-needed curve at the edge
challenge; the real-data histograms and the DHF check when ``realdata_dir`` exists), shows the
figures of :mod:`asiclab.puf.plots` and records the results with :func:`record_results` (claims
``puf_distinguishability_claim`` and ``dhf_fingerprint_claim``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from asiclab import dataset
from asiclab.params import Param
from asiclab.puf import evaluate, fleet, metrics, realdata
from asiclab.puf._errors import PufInputError
from asiclab.puf.responses import Responses, responses_from_capture

PAPER_SOURCE = ("arXiv:2601.12032 (Speaking to Silicon), 'PUF distinguishability witness' "
                "theorem and 'timing uniqueness observed' (no data shown)")
DHF_SOURCE = ("arXiv:2601.09557 (SiliconHealth), 'Deterministic Hardware Fingerprint', "
              "100 % verification of 23 proofs")


def _voltages(v: list[float]) -> str | None:
    return None if len(set(v)) == len(v) else "distinct voltages"


#: Parameters of ``05_puf.ipynb``.
PARAMS: dict[str, Param] = {
    "source": Param(str, "the fleet: 'sim' (simulated chips in virtual time) or 'file' (a saved "
                    "fleet capture from any source, e.g. live or emulated sweeps with repeated "
                    "operating points)", choices=("sim", "file")),
    "capture_path": Param(str, "fleet capture (NetCDF) for source 'file'; '' otherwise",
                          path=True),
    "n_chips": Param(int, "chips in the simulated fleet (seeds seed .. seed + n - 1)", min=2,
                     max=200),
    "challenges_mV": Param(list, "challenge core voltages [mV]", item=float, min=900.0,
                           max=1400.0, min_len=2, check=_voltages),
    "nominal_mV": Param(float, "the nominal challenge [mV] (one of challenges_mV)", min=900.0,
                        max=1400.0),
    "edge_mV": Param(float, "the near-edge challenge, fixed in advance [mV] (one of "
                     "challenges_mV)", min=900.0, max=1400.0),
    "n_captures": Param(int, "captures of every challenge per chip", min=3, max=100),
    "n_enroll": Param(int, "enrollment captures per chip (the first in time)", min=1, max=50),
    "dwell_s": Param(float, "measurement time per capture [s] (virtual)", min=1.0, max=3600.0),
    "settle_s": Param(float, "settling time before each capture [s] (virtual)", min=0.0,
                      max=3600.0),
    "frequency_MHz": Param(float, "frequency of every challenge [MHz]", min=50.0, max=1000.0),
    "ticket_difficulty": Param(float, "ticket difficulty [1] (1: about 100 nonces/s)",
                               min=1e-3, max=1e4),
    "seed": Param(int, "seed of chip 0 (the control fleet uses seed + 10000)", min=0),
    "workers": Param(int, "processes for the fleet simulation (0 = one per CPU)", min=0,
                     max=64),
    "n_boot": Param(int, "bootstrap resamples of the EER CI", min=10, max=100_000),
    "n_perm": Param(int, "permutations of the pairwise tests (exact when fewer splits)",
                    min=19, max=100_000),
    "alpha": Param(float, "level (Benjamini-Hochberg FDR) of the pairwise tests", min=1e-4,
                   max=0.5),
    "events_windows_s": Param(list, "leading windows of the events-needed curve [s]",
                              item=float, min=0.1, min_len=1),
    "target_eer": Param(float, "EER that defines 'events needed' [1]", min=0.001, max=0.5),
    "save_captures": Param(bool, "save the fleet captures (NetCDF) in the run directory"),
    "realdata_dir": Param(str, "folder of the real S9 / LV06 logs (skipped when absent)",
                          path=True),
}


@dataclass
class FleetEval:
    """Evaluation of one fleet (at every challenge and in depth at the edge)."""

    label: str
    capture: xr.Dataset
    responses: Responses
    table: pd.DataFrame
    results: dict[float, evaluate.ChallengeResult]
    pairwise: pd.DataFrame
    witness: metrics.Witness | None
    witness_separated: bool
    curve: pd.DataFrame
    events_needed: float
    edge_mV: float
    nominal_mV: float


@dataclass
class PufRun:
    """Everything the notebook shows."""

    fleet: FleetEval
    control: FleetEval
    realdata: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @property
    def source_kind(self) -> str:
        """``source_kind`` of the fleet capture."""
        return str(self.fleet.capture.attrs.get("source_kind", "unknown"))


def check(p: dict[str, Any]) -> None:
    """Cross-parameter checks (after :func:`asiclab.params.validate`)."""
    if p["n_enroll"] >= p["n_captures"]:
        raise PufInputError(f"n_enroll ({p['n_enroll']}) must be below n_captures "
                            f"({p['n_captures']}): probes are needed")
    for name in ("nominal_mV", "edge_mV"):
        if p["source"] == "sim" and p[name] not in p["challenges_mV"]:
            raise PufInputError(f"{name} = {p[name]} is not one of challenges_mV")
    if p["source"] == "file" and not p["capture_path"]:
        raise PufInputError("source 'file' needs capture_path")


def _nearest(r: Responses, v: float) -> float:
    volts = np.array([c[0] for c in r.challenges])
    return float(volts[np.argmin(np.abs(volts - v))])


def evaluate_capture(ds: xr.Dataset, p: dict[str, Any], label: str) -> FleetEval:
    """Evaluate one fleet capture (any source) with the notebook's parameters."""
    r = responses_from_capture(ds)
    table, res = evaluate.evaluate_fleet(r, n_enroll=p["n_enroll"], n_boot=p["n_boot"],
                                         seed=p["seed"])
    edge, nom = _nearest(r, p["edge_mV"]), _nearest(r, p["nominal_mV"])
    re = r.at(edge)
    sep_frac = {}
    for v, fr in r.challenges:  # the per-pair test at every challenge
        t = evaluate.pairwise_tests(r.at(v, fr), n_perm=p["n_perm"], alpha=p["alpha"],
                                    seed=p["seed"])
        sep_frac[v] = float(t["separated"].mean())
    table["pairs_separated_frac"] = table["voltage_mV"].map(sep_frac)
    rate_eer = {v: evaluate.evaluate_challenge(r.at(v, fr), n_enroll=p["n_enroll"], n_boot=1,
                                               seed=p["seed"], features="rate_only").eer
                for v, fr in r.challenges}  # baseline: the event rate alone
    table["eer_rate_only"] = table["voltage_mV"].map(rate_eer)
    pw = evaluate.pairwise_tests(re, n_perm=p["n_perm"], alpha=p["alpha"], seed=p["seed"])
    try:
        w = evaluate.fleet_witness(re, n_enroll=p["n_enroll"])
        sep = pw[((pw.a == w.device_a) & (pw.b == w.device_b))
                 | ((pw.a == w.device_b) & (pw.b == w.device_a))]["separated"]
        w_sep = bool(sep.iloc[0]) if len(sep) else False
    except PufInputError:
        w, w_sep = None, False
    dwell = float(np.median(re.duration_s))
    wins = sorted({min(float(x), dwell) for x in p["events_windows_s"]})
    curve = evaluate.events_curve(ds, edge, wins, n_enroll=p["n_enroll"], seed=p["seed"])
    return FleetEval(label, ds, r, table, res, pw, w, w_sep, curve,
                     evaluate.events_needed(curve, max_eer=p["target_eer"]), edge, nom)


def _simulate(p: dict[str, Any], variation: bool) -> xr.Dataset:
    return fleet.simulate_fleet(
        p["n_chips"], p["challenges_mV"], n_captures=p["n_captures"], dwell_s=p["dwell_s"],
        settle_s=p["settle_s"], seed=p["seed"] + (0 if variation else 10_000),
        variation=variation, frequency_MHz=p["frequency_MHz"],
        ticket_difficulty=p["ticket_difficulty"], workers=p["workers"])


def run_realdata(directory: str | Path) -> dict[str, Any]:
    """Histograms, rate comparison and DHF check of the real logs ({} when absent)."""
    from asiclab.capture import importers

    d = Path(directory)
    s9p, lvp = d / "s9_stratum_shares.csv", d / "lv06_bm1366_proofs.csv"
    if not (s9p.is_file() and lvp.is_file()):
        return {}
    s9 = importers.import_s9_stratum_csv(s9p)
    lv = importers.import_lv06_proofs_csv(lvp)
    return {"s9": s9, "lv06": lv, "lv06_cores": realdata.lv06_core_histogram(lv),
            "s9_fields": [realdata.nonce_field_histogram(s9, byte_order=b)
                          for b in ("submit", "reply")],
            "rates": realdata.rate_comparison({"Antminer S9": s9, "Lucky Miner LV06": lv}),
            "dhf": realdata.dhf_check(lvp)}


def run(p: dict[str, Any], *, out_dir: Path | None = None) -> PufRun:
    """The whole evaluation (see the module docstring)."""
    check(p)
    files: list[Path] = []
    if p["source"] == "file":
        ds = dataset.open_capture(Path(p["capture_path"]).expanduser())
    else:
        ds = _simulate(p, True)
    ctl = _simulate(p, False)
    if out_dir is not None and p["save_captures"]:
        out_dir.mkdir(parents=True, exist_ok=True)
        if p["source"] == "sim":
            files.append(dataset.save_capture(ds, out_dir / "puf_fleet.nc"))
        files.append(dataset.save_capture(ctl, out_dir / "puf_control_fleet.nc"))
    fe = evaluate_capture(ds, p, "fleet")
    ce = evaluate_capture(ctl, p, "no-variation control")
    return PufRun(fe, ce, run_realdata(p["realdata_dir"]) if p["realdata_dir"] else {}, files)


def metrics_table(c: evaluate.ChallengeResult, control: evaluate.ChallengeResult
                  ) -> pd.DataFrame:
    """The binary (Maiti et al. 2013) and continuous metrics at one challenge, with ideals."""
    rows = [
        ("uniformity [%]", c.uniformity, control.uniformity, metrics.IDEAL["uniformity"]),
        ("bit-aliasing, mean [%]", float(np.mean(c.bit_aliasing)),
         float(np.mean(control.bit_aliasing)), metrics.IDEAL["bit_aliasing"]),
        ("uniqueness (inter-device HD) [%]", c.uniqueness, control.uniqueness,
         metrics.IDEAL["uniqueness"]),
        ("reliability (100 - intra HD) [%]", c.reliability, control.reliability,
         metrics.IDEAL["reliability"]),
        ("EER [1]", c.eer, control.eer, 0.0),
        ("identification accuracy [1]", c.ident.accuracy, control.ident.accuracy, 1.0),
        ("chance 1/M [1]", c.ident.chance, control.ident.chance, np.nan),
        ("continuous uniqueness [1]", c.continuous_uniqueness,
         control.continuous_uniqueness, 1.0),
        ("decidability d' [1]", c.decidability, control.decidability, np.nan),
    ]
    return pd.DataFrame(rows, columns=["metric", "fleet", "no-variation control", "ideal"])


def verdict(run_: PufRun) -> str:
    """Plain-language verdict of the run."""
    f, c = run_.fleet, run_.control
    e, n = f.results[f.edge_mV], f.results[f.nominal_mV]
    ce = c.results[c.edge_mV]
    kind = run_.source_kind
    sep = e.eer_ci[1] < 0.5 and e.ident.p_value < 0.01
    ctl_ok = ce.eer_ci[0] <= 0.5 <= ce.eer_ci[1] or ce.eer > 0.3
    text = (f"On the {kind} fleet of {e.n_devices} chips, the EER is {n.eer:.2f} at the nominal "
            f"{f.nominal_mV:g} mV and {e.eer:.2f} (95 % CI {e.eer_ci[0]:.2f}-{e.eer_ci[1]:.2f}) "
            f"at {f.edge_mV:g} mV; identification {e.ident.accuracy:.2f} against chance "
            f"{e.ident.chance:.2f} (p = {e.ident.p_value:.2g}); the no-variation control gives "
            f"EER {ce.eer:.2f} and identification {ce.ident.accuracy:.2f}. ")
    if sep and ctl_ok:
        text += ("Chips separate near the edge and not at nominal, and identical chips do not "
                 "separate: the response carries the chip's per-core pattern of dead and "
                 "erroring cores. ")
    elif not sep:
        text += "The chips are not separated at the edge challenge. "
    else:
        text += "WARNING: the identical-chip control separates too: the evaluation is biased. "
    if kind == "simulated":
        text += ("This is a property of the simulator's model (per-core critical voltages "
                 "differ by seed), not evidence about real silicon: no fleet of real chips of "
                 "one model was measured, so the paper's distinguishability claim stays "
                 "untested on hardware.")
    return text


def _fmt_witness(w: metrics.Witness | None, r: Responses) -> str:
    if w is None:
        return "no witness (no two devices with events)"
    return (f"{r.device_names[w.device_a]} vs {r.device_names[w.device_b]}: P(next event is a "
            f"{w.kind} of core {w.core}) = {w.p_a:.4f} [{w.ci_a[0]:.4f}, {w.ci_a[1]:.4f}] vs "
            f"{w.p_b:.4f} [{w.ci_b[0]:.4f}, {w.ci_b[1]:.4f}], held-out Fisher p = "
            f"{w.p_value:.2g} (dispersion {w.dispersion:.2f})")


def witness_text(fe: FleetEval) -> str:
    """The witness as the theorem states it, or why there is none."""
    base = _fmt_witness(fe.witness, fe.responses)
    if fe.witness is not None and fe.witness_separated:
        return "witness of distinguishability: " + base
    return ("no witness: the candidate pair is not separated by the pairwise test at FDR "
            "level (candidate " + base + ")")


def record_results(run_: PufRun, p: dict[str, Any]) -> list[dict[str, Any]]:
    """Record the notebook's results; ``puf_eer_edge`` carries the distinguishability claim and
    the DHF result the fingerprint claim."""
    from asiclab import results

    f, c = run_.fleet, run_.control
    e, n = f.results[f.edge_mV], f.results[f.nominal_mV]
    ce = c.results[c.edge_mV]
    kind = run_.source_kind
    src = (f"{kind} fleet of {e.n_devices} devices, {p['n_captures']} captures per challenge, "
           f"{p['n_enroll']} enrolled, edge challenge {f.edge_mV:g} mV fixed in advance")
    out = []
    claim = results.Claim(
        id="puf_distinguishability_claim", paper_value="distinguishability witness theorem; "
        "'timing uniqueness' observed (no data)", source=PAPER_SOURCE,
        statement="chips are distinguishable: some response has a different probability on "
                  "each chip")
    out.append(results.record(
        "puf_eer_edge", e.eer, "1", list(e.eer_ci), claim=claim, verdict=verdict(run_),
        note=f"equal error rate of nearest-template verification (Anscombe per-core hit and "
             f"error counts), 95 % bootstrap CI over probes; {src}; rate-only baseline EER "
             f"{float(f.table.set_index('voltage_mV').loc[f.edge_mV, 'eer_rate_only']):.3f} "
             f"(chip totals only: how much the rate alone separates); "
             + witness_text(f)))
    out.append(results.record(
        "puf_eer_nominal", n.eer, "1", list(n.eer_ci),
        verdict="indistinguishable at nominal" if n.eer_ci[0] <= 0.5 <= n.eer_ci[1]
        or n.eer > 0.3 else "separated at nominal",
        note=f"as puf_eer_edge at the nominal {f.nominal_mV:g} mV"))
    out.append(results.record(
        "puf_uniqueness_edge", e.uniqueness, "%",
        note=f"Maiti et al. 2013 (DOI 10.1007/978-1-4614-1362-2_11) inter-device HD of the "
             f"binarised responses (core above the response's median core), ideal 50 %; "
             f"control {ce.uniqueness:.1f} %, nominal {n.uniqueness:.1f} % (with reliability "
             f"{n.reliability:.1f} %: noise); continuous uniqueness {e.continuous_uniqueness:.3f}"
             f" (control {ce.continuous_uniqueness:.3f})"))
    out.append(results.record(
        "puf_reliability_edge", e.reliability, "%",
        note=f"100 % - mean intra-device HD of probes against the enrolled reference, ideal "
             f"100 %; control {ce.reliability:.1f} %, nominal {n.reliability:.1f} %"))
    out.append(results.record(
        "puf_identification_accuracy_edge", e.ident.accuracy, "1", list(e.ident.ci),
        verdict=("above chance" if e.ident.p_value < 0.01 else "not above chance"),
        note=f"nearest template among {e.n_devices}, exact 95 % Clopper-Pearson CI; chance "
             f"{e.ident.chance:.3f}, one-sided binomial p = {e.ident.p_value:.3g}; control "
             f"{ce.ident.accuracy:.3f} (p = {ce.ident.p_value:.3g})"))
    ctl_eers = c.table["eer"].to_numpy()
    out.append(results.record(
        "puf_control_eer", ce.eer, "1", list(ce.eer_ci),
        verdict=("indistinguishable, as it must be" if ce.eer_ci[0] <= 0.5 <= ce.eer_ci[1]
                 or ce.eer > 0.3 else "BIASED: identical chips separate"),
        note=f"no-variation control (edge_sd, core_sd, speed_sd = 0; simulated) at "
             f"{c.edge_mV:g} mV; EER over all challenges {np.nanmin(ctl_eers):.2f}-"
             f"{np.nanmax(ctl_eers):.2f}; pairs separated at the edge "
             f"{int(c.pairwise['separated'].sum())}/{len(c.pairwise)} (largest fraction over "
             f"challenges {np.nanmax(c.table['pairs_separated_frac']):.2f}); identification "
             f"{ce.ident.n_correct}/{ce.ident.n_probes}"))
    en = f.events_needed
    out.append(results.record(
        "puf_events_needed", None if not np.isfinite(en) else en, "events",
        verdict=(f"EER <= {p['target_eer']} from about {en:.0f} events per capture"
                 if np.isfinite(en) else f"EER <= {p['target_eer']} not reached within the "
                 "longest window"),
        note=f"fewest mean events per capture (enrollment: {p['n_enroll']} captures of that "
             f"length; probe: one) from which the EER at {f.edge_mV:g} mV stays <= "
             f"{p['target_eer']}; windows {list(f.curve['window_s'])} s"))
    rd = run_.realdata
    dclaim = results.Claim(
        id="dhf_fingerprint_claim", paper_value="100 % verification of 23 proofs",
        source=DHF_SOURCE, statement="SHA-256 proofs are a deterministic hardware fingerprint")
    if rd:
        d = rd["dhf"]
        rates = ", ".join(f"{k}: {v:.0%}" for k, v in d.rate_by_device.items())
        out.append(results.record(
            "dhf_device_information", d.mutual_information_bits, "bit", claim=dclaim,
            verdict=(f"not a fingerprint: every one of the {d.n_proofs} real LV06 proofs "
                     f"verifies identically whichever device is named ({rates}), and the host "
                     f"CPU recomputes {d.host_recomputed}/{d.n_proofs} hashes exactly; the "
                     "verification outcome carries no device information"),
            note="plug-in mutual information between the claimed device and the verification "
                 "outcome over the real LV06 proofs (imported)"))
        lc = rd["lv06_cores"]
        out.append(results.record(
            "puf_lv06_core_uniformity_p", lc.p_value, "1",
            verdict=("per-core counts not uniform" if lc.p_value < 0.01 else
                     "consistent with uniform cores"),
            note=f"{lc.n_events} real LV06 shares, core = (bswap32(nonce) >> 25) & 0x7f, "
                 f"Monte-Carlo multinomial X^2 = {lc.statistic:.1f} over 112 cores; "
                 f"{lc.outside} outside 0..111; cores hit "
                 f"{int(np.nonzero(lc.counts)[0].min())}-{int(np.nonzero(lc.counts)[0].max())}"
                 "; one device: says nothing about telling chips apart"))
        rt = rd["rates"]
        out.append(results.record(
            "puf_realdata_rate_ratio", float(rt.rate_hz.iloc[0] / rt.rate_hz.iloc[1]), "1",
            verdict="different models separate trivially by rate: proves nothing about a PUF",
            note=f"share rate {rt.device.iloc[0]} / {rt.device.iloc[1]} (imported logs)"))
    else:
        out.append(results.record(
            "dhf_device_information", 0.0, "bit", claim=dclaim,
            verdict="not a fingerprint by construction: proof-of-work verification takes no "
                    "device input (real LV06 proofs absent here, so not shown on data)",
            note="../shared/realdata absent: the check on the LV06 proofs was skipped"))
    return out


def fleet_meta(ds: xr.Dataset) -> dict[str, Any]:
    """The ``puf_fleet`` attribute of a simulated fleet ({} for other captures)."""
    try:
        return json.loads(str(ds.attrs.get("puf_fleet", "{}")))
    except json.JSONDecodeError:
        return {}
