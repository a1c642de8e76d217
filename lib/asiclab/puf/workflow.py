"""The steps of ``notebooks/05_puf.ipynb``: parameters, fleets, evaluation, recorded results.

The notebook validates its parameters against :data:`PARAMS`, calls :func:`run` (the fleet
capture -- simulated in virtual time by default, any saved fleet capture with ``source =
"file"``, or captured here with ``source = "live"`` on the devices of ``live_devices`` through the
live sweep code (:func:`asiclab.puf.fleet.live_plan`, :func:`~asiclab.puf.fleet.capture_live_fleet`,
same challenge schedule, safety envelope checked before anything starts; see :func:`live_devices`)
-- and always the simulated no-variation control beside it; evaluation at every challenge;
pairwise tests, witness and events-needed curve at the edge challenge; the real-data
histograms and the DHF check when ``realdata_dir`` exists), shows the figures of
:mod:`asiclab.puf.plots` and records the results with :func:`record_results` (claims
``puf_distinguishability_claim`` and ``dhf_fingerprint_claim``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from asiclab import dataset
from asiclab.params import Param
from asiclab.puf import evaluate, fleet, metrics, realdata
from asiclab.puf._errors import PufDataError, PufInputError
from asiclab.puf.responses import Responses, responses_from_capture

PAPER_SOURCE = ("arXiv:2601.12032 (Speaking to Silicon), 'PUF distinguishability witness' "
                "theorem and 'timing uniqueness observed' (no data shown)")
DHF_SOURCE = ("arXiv:2601.09557 (SiliconHealth), 'Deterministic Hardware Fingerprint', "
              "100 % verification of 23 proofs")


def _voltages(v: list[float]) -> str | None:
    return None if len(set(v)) == len(v) else "distinct voltages"


#: Device specs of ``live_devices`` without an address (emulators started here).
EMULATED_SPECS = ("serial-emulated", "axeos-emulated")
#: Device specs with an address: ``serial:<port>`` and ``axeos:<url>``.
HARDWARE_PREFIXES = ("serial:", "axeos:")


#: Parameters of ``05_puf.ipynb``.
PARAMS: dict[str, Param] = {
    "source": Param(str, "the fleet: 'sim' (simulated chips in virtual time), 'file' (a saved "
                    "fleet capture from any source, e.g. live or emulated sweeps with repeated "
                    "operating points) or 'live' (captured now on live_devices through the live "
                    "sweep code, the challenge schedule below, safety envelope checked; saved as "
                    "puf_fleet.nc with its journals in the run directory)",
                    choices=("sim", "file", "live")),
    "capture_path": Param(str, "fleet capture (NetCDF) for source 'file'; '' otherwise",
                          path=True),
    "n_chips": Param(int, "chips in the simulated fleet (seeds seed .. seed + n - 1) and in the "
                     "no-variation control of every source", min=2, max=200),
    "challenges_mV": Param(list, "challenge core voltages [mV]", item=float, min=900.0,
                           max=1400.0, min_len=2, check=_voltages),
    "nominal_mV": Param(float, "the nominal challenge [mV] (one of challenges_mV)", min=900.0,
                        max=1400.0),
    "edge_mV": Param(float, "the near-edge challenge, fixed in advance [mV] (one of "
                     "challenges_mV)", min=900.0, max=1400.0),
    "n_captures": Param(int, "captures of every challenge per chip", min=3, max=100),
    "n_enroll": Param(int, "enrollment captures per chip (the first in time)", min=1, max=50),
    "dwell_s": Param(float, "measurement time per capture [s] (sim: virtual; live: host "
                     "wall-clock)", min=1.0, max=3600.0),
    "settle_s": Param(float, "settling time before each capture [s] (sim: virtual; live: host "
                      "wall-clock)", min=0.0, max=3600.0),
    "frequency_MHz": Param(float, "frequency of every challenge [MHz]", min=50.0, max=1000.0),
    "ticket_difficulty": Param(float, "ticket difficulty [1] of the simulated chips (1: about "
                               "100 nonces/s); the live emulators use their own", min=1e-3,
                               max=1e4),
    "seed": Param(int, "seed of chip 0 (the control fleet uses seed + 10000; live emulated "
                  "device k: seed + k)", min=0),
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
    # ---- source 'live' (the capture.live modes; ignored for 'sim' and 'file')
    "live_devices": Param(list, "live: one spec per device, all emulated or all hardware: "
                          "'serial-emulated' (BM1366 emulator on a pseudo-terminal, over the "
                          "real UART protocol), 'axeos-emulated' (emulated LV06: Stratum and "
                          "AxeOS HTTP emulators), 'serial:<port>' (a BM1366 on a UART, e.g. "
                          "'serial:/dev/ttyUSB0'; the UART cannot set the core voltage, so it "
                          "needs workflow.run(..., voltage_setters=...) from Python), "
                          "'axeos:<url>' (a real LV06 / Bitaxe, e.g. 'axeos:http://192.168.1.50',"
                          " its pool pointed at live_listen_host:live_listen_port); at least two "
                          "for source 'live'", item=str),
    "live_time_scale": Param(float, "live emulated devices: emulated chip seconds per host "
                             "second [1]", min=0.01, max=10000.0),
    "live_listen_host": Param(str, "live 'axeos:<url>': capture-server address the miners' pool "
                              "points at (not loopback; needs live_allow_lan)"),
    "live_listen_port": Param(int, "live 'axeos:<url>': capture-server TCP port", min=1,
                              max=65535),
    "live_allow_lan": Param(bool, "live 'axeos:<url>': let the capture server listen on the "
                            "network"),
    "live_pool_difficulty": Param(float, "live 'axeos:<url>': share difficulty given to the "
                                  "miners [1]", min=2.0**-32, max=2.0**48),
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


VoltageSetters = Mapping[int, Callable[[float], Any]]


def check(p: dict[str, Any], *, voltage_setters: VoltageSetters | None = None) -> None:
    """Cross-parameter checks (after :func:`asiclab.params.validate`).

    For ``source = "live"`` also the device specs (:func:`live_devices`) and the schedule against
    the safety envelope (:func:`live_schedule`), before anything is started.

    Raises
    ------
    PufInputError
        A combination of parameters that cannot run, naming the parameter.
    asiclab.capture.live.UnsafePlanError
        A live challenge outside the safety envelope.
    """
    if p["n_enroll"] >= p["n_captures"]:
        raise PufInputError(f"n_enroll ({p['n_enroll']}) must be below n_captures "
                            f"({p['n_captures']}): probes are needed")
    for name in ("nominal_mV", "edge_mV"):
        if p["source"] in ("sim", "live") and p[name] not in p["challenges_mV"]:
            raise PufInputError(f"{name} = {p[name]} is not one of challenges_mV")
    if p["source"] == "file" and not p["capture_path"]:
        raise PufInputError("source 'file' needs capture_path")
    if p["source"] == "live":
        live_devices(p, voltage_setters=voltage_setters)
        live_schedule(p)
    elif voltage_setters:
        raise PufInputError(f"voltage_setters apply to source 'live' only (source is "
                            f"{p['source']!r})")


def _spec_error(k: int, spec: Any, why: str) -> PufInputError:
    return PufInputError(f"live_devices[{k}] = {spec!r}: {why}")


def live_devices(p: dict[str, Any], *, voltage_setters: VoltageSetters | None = None
                 ) -> tuple[list[dict[str, Any]], list[str], str]:
    """The devices of ``source = "live"``: keyword arguments of
    :func:`asiclab.capture.live.run_live_capture` per device, their labels, and their kind.

    Specs (``live_devices``): ``"serial-emulated"`` (an
    :class:`~asiclab.devices.emulated_bm1366.EmulatedBM1366` on a pseudo-terminal driven over
    the BM1366 UART protocol, live mode ``serial`` with port ``"emulated"``, chip seed
    ``seed + k``); ``"axeos-emulated"`` (live mode ``emulated``: an emulated LV06 behind the
    Stratum capture server and an AxeOS HTTP emulator, chip seed ``seed + k``);
    ``"serial:<port>"`` (a BM1366 on a UART or pyserial URL; the UART cannot set the core
    voltage, so ``voltage_setters[k]`` -- e.g. a lab supply's ``set(mV)`` -- is required for a
    schedule of several voltages); ``"axeos:<url>"`` (a real LV06 / Bitaxe whose pool points at
    ``live_listen_host:live_listen_port``; voltage and frequency set over AxeOS inside the
    :class:`~asiclab.devices.axeos.SweepGuard`). Stratum-only miners and the CPU miner are
    refused: they cannot apply a voltage challenge.

    Parameters
    ----------
    p : dict
        Validated parameters.
    voltage_setters : mapping of int to callable, optional
        ``{k: setter}``: ``setter(mV)`` sets the core voltage of device ``k`` (``serial:<port>``
        devices only).

    Returns
    -------
    devices : list of dict
        One ``run_live_capture`` keyword set per device (``mode`` included).
    labels : list of str
        Device names of the fleet (``serial-emulated-seed<s>``, ``axeos-emulated-seed<s>``, or
        the spec of a hardware device).
    kind : str
        ``"emulated"`` or ``"hardware"``.

    Raises
    ------
    PufInputError
        Fewer than two devices, an unknown or malformed spec, a duplicate hardware device, a
        mix of emulated and hardware devices, a serial device without a voltage setter, a
        setter for a device that cannot take one, or capture-server settings a real miner
        cannot reach.
    """
    from asiclab.capture.server import _is_loopback

    specs = list(p["live_devices"])
    setters = dict(voltage_setters or {})
    if len(specs) < 2:
        raise PufInputError(f"live_devices = {specs!r}: source 'live' needs at least two "
                            "devices (a fleet)")
    bad = sorted(set(setters) - set(range(len(specs))))
    if bad:
        raise PufInputError(f"voltage_setters for devices {bad}: live_devices has only "
                            f"{len(specs)} entries (keys are device indices)")
    devices: list[dict[str, Any]] = []
    labels: list[str] = []
    kinds: list[str] = []
    for k, spec in enumerate(specs):
        if not isinstance(spec, str):
            raise _spec_error(k, spec, "a device spec is a string")
        spec = spec.strip()
        seed = int(p["seed"]) + k
        setter = setters.get(k)
        if spec in EMULATED_SPECS:
            if setter is not None:
                raise _spec_error(k, spec, "an emulated device sets its own voltage: give no "
                                  "voltage_setter for it")
            mode = "serial" if spec == "serial-emulated" else "emulated"
            kw: dict[str, Any] = {"mode": mode, "seed": seed, "time_scale": p["live_time_scale"]}
            if mode == "serial":
                kw["serial_port"] = "emulated"
            devices.append(kw)
            labels.append(f"{spec}-seed{seed}")
            kinds.append("emulated")
            continue
        prefix, _, address = spec.partition(":")
        address = address.strip()
        if prefix + ":" not in HARDWARE_PREFIXES or not address:
            raise _spec_error(k, spec, "unknown device spec; use 'serial-emulated', "
                              "'axeos-emulated', 'serial:<port>' (e.g. 'serial:/dev/ttyUSB0') "
                              "or 'axeos:<url>' (e.g. 'axeos:http://192.168.1.50'); "
                              "Stratum-only and CPU miners cannot apply a voltage challenge")
        if address == "emulated":
            raise _spec_error(k, spec, "write 'serial-emulated' for the pty BM1366 emulator")
        if prefix == "serial":
            if setter is None:
                raise _spec_error(k, spec, "the UART cannot set the core voltage and the "
                                  f"challenges are {len(p['challenges_mV'])} voltages: give "
                                  f"workflow.run(p, voltage_setters={{{k}: setter}}) with a "
                                  "setter(mV) of the board's supply (not available from the "
                                  "notebook's parameters)")
            if not callable(setter):
                raise _spec_error(k, spec, f"voltage_setters[{k}] must be callable, got "
                                  f"{type(setter).__name__}")
            devices.append({"mode": "serial", "serial_port": address, "voltage_setter": setter,
                            "seed": seed})
        else:
            if setter is not None:
                raise _spec_error(k, spec, "AxeOS sets the voltage itself: give no "
                                  "voltage_setter for it")
            if not address.startswith(("http://", "https://")):
                raise _spec_error(k, spec, "the AxeOS address must be an http:// or https:// "
                                  "URL, e.g. 'axeos:http://192.168.1.50'")
            host = p["live_listen_host"].strip()
            if not host or _is_loopback(host):
                raise PufInputError(f"live_listen_host = {p['live_listen_host']!r}: a real "
                                    f"miner ({spec}) cannot reach a loopback capture server; "
                                    "give this host's LAN address or '0.0.0.0'")
            if not p["live_allow_lan"]:
                raise PufInputError(f"live_allow_lan = False: set it to let the capture server "
                                    f"listen on {host!r} for {spec}")
            devices.append({"mode": "stratum+axeos", "miner_url": address, "listen_host": host,
                            "listen_port": p["live_listen_port"], "allow_lan": True,
                            "pool_difficulty": p["live_pool_difficulty"], "seed": seed})
        if spec in labels:
            raise _spec_error(k, spec, "the same device twice in live_devices")
        labels.append(spec)
        kinds.append("hardware")
    if len(set(kinds)) > 1:
        raise PufInputError(f"live_devices = {specs!r} mixes emulated and hardware devices: "
                            "evaluate hardware and emulated fleets apart")
    return devices, labels, kinds[0]


def live_schedule(p: dict[str, Any]) -> Any:
    """The live :class:`~asiclab.capture.live.SweepPlan` of the challenge parameters
    (:func:`asiclab.puf.fleet.live_plan`, default BM1366 safety envelope, no override).

    Raises
    ------
    asiclab.capture.live.UnsafePlanError
        A challenge or the frequency outside the envelope.
    """
    return fleet.live_plan(p["challenges_mV"], p["n_captures"], frequency_MHz=p["frequency_MHz"],
                           settle_s=p["settle_s"], dwell_s=p["dwell_s"])


def capture_live(p: dict[str, Any], out_dir: Path | None, *,
                 voltage_setters: VoltageSetters | None = None, progress: bool = True
                 ) -> tuple[xr.Dataset, list[Path]]:
    """Capture the ``source = "live"`` fleet and save it (``puf_fleet.nc``) in ``out_dir``.

    The journals go to ``out_dir/puf_live_journals`` (a fresh temporary folder without
    ``out_dir``), so a crashed or interrupted run can be recovered (``asiclab recover``). The
    fleet capture is saved whenever ``out_dir`` is given (live data cannot be re-made), also
    when the run was interrupted.

    Returns
    -------
    xarray.Dataset
        The fleet capture, device names from :func:`live_devices`.
    list of pathlib.Path
        The saved file (empty without ``out_dir``).

    Raises
    ------
    PufInputError
        Bad device specs (:func:`live_devices`) or a journal folder that already holds journals.
    PufDataError
        The run was interrupted before every device ran the schedule (what was captured is
        saved first).
    """
    import tempfile

    devices, labels, _ = live_devices(p, voltage_setters=voltage_setters)
    plan = live_schedule(p)
    if out_dir is not None:
        jdir = out_dir / "puf_live_journals"
        if jdir.exists() and any(jdir.iterdir()):
            raise PufInputError(f"{jdir} already holds journals: use a new run_dir (nothing is "
                                "overwritten)")
    else:
        jdir = Path(tempfile.mkdtemp(prefix="asiclab_puf_live_"))
    ds = fleet.capture_live_fleet(devices, plan, journal_dir=jdir, progress=progress)
    if ds.sizes["device"] == len(labels) and not int(ds.attrs.get("interrupted", 0)):
        ds = ds.assign(device_name=("device", np.array(labels, dtype=object),
                                    ds["device_name"].attrs))
    ds.attrs["puf_live_devices"] = json.dumps(labels)
    ds.attrs["puf_live_journals"] = str(jdir)
    files: list[Path] = []
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        files.append(dataset.save_capture(ds, out_dir / "puf_fleet.nc"))
    if int(ds.attrs.get("interrupted", 0)):
        where = f"saved in {files[0]}" if files else f"journals in {jdir}"
        raise PufDataError(f"the live fleet capture was interrupted after "
                           f"{ds.attrs.get('puf_devices_completed', '?')} of {len(labels)} "
                           f"devices ({where}); evaluate it with source 'file' once complete")
    return ds, files


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


def run(p: dict[str, Any], *, out_dir: Path | None = None,
        voltage_setters: VoltageSetters | None = None, progress: bool = True) -> PufRun:
    """The whole evaluation (see the module docstring).

    Parameters
    ----------
    p : dict
        Validated parameters (:data:`PARAMS`).
    out_dir : pathlib.Path, optional
        Where the captures are saved (the live fleet always, the others with
        ``save_captures``).
    voltage_setters : mapping of int to callable, optional
        ``source = "live"``: core-voltage setters of ``serial:<port>`` devices by index
        (:func:`live_devices`).
    progress : bool
        Progress bars of the live captures.
    """
    check(p, voltage_setters=voltage_setters)
    files: list[Path] = []
    if p["source"] == "file":
        ds = dataset.open_capture(Path(p["capture_path"]).expanduser())
    elif p["source"] == "live":
        ds, files = capture_live(p, out_dir, voltage_setters=voltage_setters,
                                 progress=progress)
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
