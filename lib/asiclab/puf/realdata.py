"""The real S9 and LV06 logs seen as PUF data: what they can and cannot show.

* **Per-core / per-chip histograms.** The LV06 (one BM1366) encodes the core in the nonce bits
  (:func:`asiclab.puf.responses.bm1366_core`); its 32 shares give a per-core histogram over the
  112 cores, tested against uniform with a Monte-Carlo multinomial p-value (the chi-square
  approximation is useless at 0.3 expected events per core). A 7-bit core field can also hold
  112..127: a real BM1366 should never give those, so their count checks the mapping. For the
  S9 (189 BM1387 on three chains), which nonce bits carry the chip address is *not verified
  here*; the histogram of the top 6 bits of the nonce, in both byte orders, is shown as the
  candidate fields (``nonce_field_histogram``), with the same uniformity test: equal shares of
  nonce space for every chip would make it uniform.
* **Rate separation.** The S9 and the LV06 are different models with about 100 times
  different share rates: they separate trivially by rate, which proves nothing about a PUF (a
  PUF must tell apart devices of *one* design).
* **DHF check.** A proof of work verifies the same way whichever device is named, and the host
  CPU recomputes exactly the same hash: the verification outcome carries no device information
  (mutual information 0 bits), so "100 % verification" of proofs is not a hardware fingerprint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from asiclab.protocol import mining
from asiclab.puf._errors import PufDataError, PufInputError
from asiclab.puf.responses import BM1366_CORES, bm1366_core

__all__ = ["DhfCheck", "UniformityTest", "dhf_check", "lv06_core_histogram",
           "nonce_field_histogram", "rate_comparison", "uniformity_test"]


@dataclass(frozen=True)
class UniformityTest:
    """Counts per bin and a Monte-Carlo multinomial test of uniformity.

    Attributes
    ----------
    counts : numpy.ndarray
        Events per bin [1].
    statistic : float
        Pearson X^2 against uniform over ``n_bins`` bins.
    p_value : float
        Monte-Carlo p-value, (1 + #{X^2_sim >= X^2}) / (1 + n_sim).
    n_events, n_bins : int
    outside : int
        Events outside the tested bins (e.g. BM1366 cores 112..127).
    label : str
    """

    counts: np.ndarray
    statistic: float
    p_value: float
    n_events: int
    n_bins: int
    outside: int
    label: str


def uniformity_test(values: Any, n_bins: int, *, n_sim: int = 9999, seed: int = 0,
                    label: str = "") -> UniformityTest:
    """Pearson X^2 of integer values in ``0..n_bins-1`` against uniform, Monte-Carlo p-value.

    Parameters
    ----------
    values : array-like of int
        Bin of each event; values >= n_bins are counted as ``outside``.
    n_bins : int
        Bins of the uniform null.
    n_sim : int
        Multinomial simulations under the null.
    seed : int
    label : str
    """
    v = np.asarray(values, np.int64)
    if n_bins < 2 or n_sim < 1:
        raise PufInputError("n_bins >= 2 and n_sim >= 1 required")
    inside = v[(v >= 0) & (v < n_bins)]
    n = int(inside.size)
    counts = np.bincount(inside, minlength=n_bins)
    if n == 0:
        return UniformityTest(counts, float("nan"), float("nan"), 0, n_bins,
                              int(v.size - n), label)
    e = n / n_bins
    x2 = float(((counts - e) ** 2).sum() / e)
    sim = np.random.default_rng(seed).multinomial(n, np.full(n_bins, 1.0 / n_bins), n_sim)
    x2s = ((sim - e) ** 2).sum(axis=1) / e
    p = float((1 + np.sum(x2s >= x2 - 1e-9)) / (1 + n_sim))
    return UniformityTest(counts, x2, p, n, n_bins, int(v.size - n), label)


def lv06_core_histogram(ds: xr.Dataset, **kw: Any) -> UniformityTest:
    """Per-core histogram of a BM1366 capture from the nonce bits, tested against uniform."""
    nonce = np.asarray(ds["nonce"].values, np.int64)
    nonce = nonce[nonce >= 0]
    if nonce.size == 0:
        raise PufDataError("the capture has no nonces")
    return uniformity_test(bm1366_core(nonce), BM1366_CORES,
                           label="BM1366 core = (bswap32(nonce) >> 25) & 0x7f", **kw)


def nonce_field_histogram(ds: xr.Dataset, *, bits: int = 6, byte_order: str = "submit",
                          **kw: Any) -> UniformityTest:
    """Histogram of the top ``bits`` bits of the nonce (a candidate chip/core field)."""
    if not 1 <= bits <= 12:
        raise PufInputError("bits must be in 1..12")
    nonce = np.asarray(ds["nonce"].values, np.int64)
    nonce = nonce[nonce >= 0]
    if nonce.size == 0:
        raise PufDataError("the capture has no nonces")
    if byte_order == "reply":
        nonce = np.array([int.from_bytes(int(x).to_bytes(4, "big"), "little") for x in nonce],
                         np.int64)
    elif byte_order != "submit":
        raise PufInputError("byte_order must be 'submit' or 'reply'")
    return uniformity_test(nonce >> (32 - bits), 1 << bits,
                           label=f"top {bits} bits of the {byte_order}-order nonce", **kw)


def rate_comparison(captures: dict[str, xr.Dataset]) -> pd.DataFrame:
    """Share rate of each capture with an exact Poisson 95 % CI [1/s].

    Returns
    -------
    pandas.DataFrame
        ``device``, ``model``, ``source_kind``, ``events``, ``duration_s``, ``rate_hz``,
        ``rate_low``, ``rate_high``.
    """
    from scipy import stats

    rows = []
    for name, ds in captures.items():
        t = np.sort(np.asarray(ds["t_host_ns"].values, np.int64))
        if t.size < 2:
            raise PufDataError(f"{name}: fewer than two events")
        n = int(t.size - 1)  # events after the first, over the span
        dur = (t[-1] - t[0]) * 1e-9
        lo = stats.chi2.ppf(0.025, 2 * n) / 2 / dur
        hi = stats.chi2.ppf(0.975, 2 * n + 2) / 2 / dur
        rows.append({"device": name, "model": str(ds.attrs.get("device_model", "")),
                     "source_kind": str(ds.attrs.get("source_kind", "")),
                     "events": int(t.size), "duration_s": dur, "rate_hz": n / dur,
                     "rate_low": lo, "rate_high": hi})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class DhfCheck:
    """The "deterministic hardware fingerprint" check on a proofs log.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (proof, claimed device): ``proof``, ``claimed_device``, ``verified``.
    rate_by_device : pandas.Series
        Verification rate per claimed device [1].
    mutual_information_bits : float
        Plug-in mutual information between claimed device and verification outcome [bit].
    host_recomputed : int
        Proofs whose hash the host CPU recomputed identically [1].
    n_proofs : int
    """

    table: pd.DataFrame
    rate_by_device: pd.Series
    mutual_information_bits: float
    host_recomputed: int
    n_proofs: int


def _verify(header: bytes, block_hash_display: str, difficulty: float,
            claimed_device: str) -> bool:
    """Proof-of-work verification. ``claimed_device`` is accepted and, necessarily, unused."""
    del claimed_device
    digest = mining.sha256d(header)
    return (mining.hash_to_display(digest) == block_hash_display.lower()
            and mining.meets_difficulty(digest, difficulty))


def _mutual_information(x: pd.Series, y: pd.Series) -> float:
    joint = pd.crosstab(x, y, normalize=True).to_numpy()
    px = joint.sum(1, keepdims=True)
    py = joint.sum(0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log2(joint[nz] / (px @ py)[nz])))


def dhf_check(path: str | os.PathLike[str],
              claimed_devices: tuple[str, ...] = ("LV06 (BM1366)", "Antminer S9 (BM1387)",
                                                  "host CPU", "no device")) -> DhfCheck:
    """Verify every proof of an LV06 proofs log under several claimed devices.

    Parameters
    ----------
    path : path-like
        ``lv06_bm1366_proofs.csv`` (columns ``block_header_hex``, ``block_hash_hex``,
        ``difficulty``).
    claimed_devices : tuple of str
        Device names the proofs are attributed to in turn.

    Raises
    ------
    PufDataError
        Missing file or columns.
    """
    try:
        df = pd.read_csv(path, dtype=str)
    except (OSError, pd.errors.ParserError) as exc:
        raise PufDataError(f"cannot read proofs log {path}: {exc}") from exc
    need = {"block_header_hex", "block_hash_hex", "difficulty"}
    if not need <= set(df.columns):
        raise PufDataError(f"{path}: missing columns {sorted(need - set(df.columns))}")
    rows = []
    recomputed = 0
    for k, row in df.iterrows():
        header = bytes.fromhex(row["block_header_hex"])
        diff = float(row["difficulty"])
        recomputed += int(mining.hash_to_display(mining.sha256d(header))
                          == row["block_hash_hex"].lower())
        for dev in claimed_devices:
            rows.append({"proof": row.get("proof_id", k), "claimed_device": dev,
                         "verified": _verify(header, row["block_hash_hex"], diff, dev)})
    table = pd.DataFrame(rows)
    rate = table.groupby("claimed_device", sort=False)["verified"].mean()
    return DhfCheck(table, rate, _mutual_information(table["claimed_device"],
                                                     table["verified"]),
                    recomputed, len(df))
