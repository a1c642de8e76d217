"""Per-step features of a NARMA drive, read from its capture dataset only.

One row per step (operating point ``op`` of the capture), computed **only from events and
telemetry inside the step's window** ``[op_t_start_ns, op_t_end_ns)``; the input and the target
never enter (the capture's ``narma_u`` is not read here), so no feature can hold the target or a
future input.

Features (:data:`BASE_FEATURES` plus ``core_group_<k>``):

``n_valid``, ``n_invalid``
    Valid and invalid (hardware-error, low-difficulty) events in the step [1]. Stale shares
    (Stratum error 21: found on the previous step's job, received after the switch) are in
    neither count: they say when the job changed, not what the device did in the step.
``log_iat_mean``, ``log_iat_std``
    Mean and std of log inter-arrival times of the step's valid events [log s] (intervals
    between consecutive events inside the step only).
``first_latency``
    Time from the step start to its first valid event [s] (``step_s`` if none).
``core_group_<k>``
    Valid events per group of cores [1]: core ids are split into ``n_core_groups`` equal
    contiguous ranges (a fixed number of features whatever the core count; ``-1`` ids, unknown
    cores, are dropped).
``temperature``, ``power``
    Mean of the telemetry samples inside the step [degC, W] (NaN -> the previous step's value,
    or 0 before the first sample); left out when the capture has no telemetry.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from asiclab.narma._errors import NarmaInputError
from asiclab.narma.readout import delay_embed
from asiclab.protocol.stratum import ERR_STALE

__all__ = ["BASE_FEATURES", "embed", "step_features"]

BASE_FEATURES = ("n_valid", "n_invalid", "log_iat_mean", "log_iat_std", "first_latency")
TELEMETRY_FEATURES = ("temperature", "power")


def step_features(ds: xr.Dataset, *, n_core_groups: int = 4, n_cores: int = 112,
                  telemetry: bool = True) -> pd.DataFrame:
    """Features of every step of a NARMA capture (see the module docstring).

    Parameters
    ----------
    ds : xarray.Dataset
        Capture with one op per step (:func:`asiclab.narma.driver.drive`).
    n_core_groups : int
        Number of per-core-count features (0 for none).
    n_cores : int
        Number of cores the ids are grouped over [1].
    telemetry : bool
        Add the in-step telemetry means.

    Returns
    -------
    pandas.DataFrame
        One row per step, index ``step``.
    """
    n_op = int(ds.sizes.get("op", 0))
    if n_op < 2:
        raise NarmaInputError("the capture needs >= 2 steps (operating points)")
    start = np.asarray(ds["op_t_start_ns"].values, np.int64)
    end = np.asarray(ds["op_t_end_ns"].values, np.int64)
    step_s = np.maximum((end - start) * 1e-9, 1e-12)
    t = np.asarray(ds["t_host_ns"].values, np.int64)
    valid = np.asarray(ds["valid"].values, bool)
    core = np.asarray(ds["core_id"].values, np.int64)
    stale = np.asarray(ds["error_code"].values, np.int64) == ERR_STALE \
        if "error_code" in ds else np.zeros(t.size, bool)
    order = np.argsort(t, kind="stable")
    t, valid, core, stale = t[order], valid[order], core[order], stale[order]
    # step of each event from the window times alone (not from op_index)
    k = np.searchsorted(start, t, side="right") - 1
    inside = (k >= 0) & (k < n_op)
    inside[inside] &= t[inside] < end[k[inside]]
    kv = k[inside & valid]
    tv = t[inside & valid]
    cols: dict[str, np.ndarray] = {
        "n_valid": np.bincount(kv, minlength=n_op).astype(float),
        "n_invalid": np.bincount(k[inside & ~valid & ~stale], minlength=n_op).astype(float),
    }
    # log-intervals within steps: consecutive valid events of the same step
    same = np.diff(kv) == 0
    li = np.log(np.maximum(np.diff(tv)[same] * 1e-9, 1e-9))
    ks = kv[1:][same]
    cnt = np.bincount(ks, minlength=n_op)
    s1 = np.bincount(ks, weights=li, minlength=n_op)
    s2 = np.bincount(ks, weights=li * li, minlength=n_op)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(cnt > 0, s1 / np.maximum(cnt, 1), np.nan)
        var = np.where(cnt > 1, s2 / np.maximum(cnt, 1) - mean ** 2, np.nan)
    fill = float(np.log(np.median(step_s)))
    cols["log_iat_mean"] = np.where(np.isfinite(mean), mean, fill)
    cols["log_iat_std"] = np.where(np.isfinite(var), np.sqrt(np.maximum(var, 0)), 0.0)
    first = np.full(n_op, np.nan)
    if kv.size:
        uniq, idx = np.unique(kv, return_index=True)
        first[uniq] = (tv[idx] - start[uniq]) * 1e-9
    cols["first_latency"] = np.where(np.isfinite(first), first, step_s)
    if n_core_groups > 0:
        cv = core[inside & valid]
        ok = (cv >= 0) & (cv < n_cores)
        grp = cv[ok] * n_core_groups // n_cores
        mat = np.zeros((n_op, n_core_groups))
        np.add.at(mat, (kv[ok], grp), 1.0)
        for g in range(n_core_groups):
            cols[f"core_group_{g}"] = mat[:, g]
    if telemetry and ds.sizes.get("sample", 0):
        tt = np.asarray(ds["tel_t_host_ns"].values, np.int64)
        # a sample belongs to the step whose window (start, end] holds it: a reading taken at
        # the end of a step describes that step, not the next one
        kt = np.searchsorted(end, tt, side="left")
        ok = kt < n_op
        ok[ok] &= tt[ok] > start[kt[ok]]
        for name in TELEMETRY_FEATURES:
            vals = np.asarray(ds[name].values, float)
            good = ok & np.isfinite(vals)
            n = np.bincount(kt[good], minlength=n_op)
            s = np.bincount(kt[good], weights=vals[good], minlength=n_op)
            col = pd.Series(np.where(n > 0, s / np.maximum(n, 1), np.nan)).ffill().fillna(0.0)
            cols[name] = col.to_numpy()
    return pd.DataFrame(cols, index=pd.RangeIndex(n_op, name="step"))


def embed(features: pd.DataFrame | np.ndarray, delays: int) -> np.ndarray:
    """Optional delay embedding: each feature at steps t, t-1, ..., t-delays (past only)."""
    arr = features.to_numpy() if isinstance(features, pd.DataFrame) else np.asarray(features)
    return delay_embed(arr, delays)
