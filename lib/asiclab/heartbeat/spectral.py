"""Spectra of event trains and telemetry, and tests for a spectral peak.

Point-process periodogram
-------------------------
For events ``t_k`` on a record of span ``T`` define ``S(f) = sum_k exp(-2 pi i f t_k)`` and the
periodogram normalised to the Poisson level, ``I(f) = |S(f)|^2 / N``. For a homogeneous Poisson
process, given ``N`` interior events on ``[0, T]`` (iid uniform), ``S(j/T)`` at a Fourier
frequency ``j >= 1`` is a sum of ``N`` iid unit vectors with uniform phase, so ``I(j/T)`` is
asymptotically Exp(1) and independent across ``j`` (Lowen & Teich 2005,
doi:10.1002/0471754722; the unnormalised ``|S|^2 / T`` is then ``rate * Exp(1)``).
The maximum over ``M`` Fourier frequencies has ``P(max > x) = 1 - (1 - exp(-x))^M``; this is
the max-over-frequencies test, with the correction for the number of frequencies searched built
in. The relative error of the Exp(1) tail is ``O(x^2 / N)`` (Pearson's random walk).

The *count series* (counts in bins of width ``dT = T / K``) has the DFT
``sum_k n_k exp(-2 pi i j k / K)``, i.e. the event-train DFT with each event's phase rounded to
its bin. As the bin index of a uniform event is uniform on ``0..K-1``, the same Exp(1) null
holds exactly as for the event train; a real line at ``f`` is attenuated by
``sinc(f dT)^2`` in power. It is computed by FFT (``O(K log K)``, bounded memory), which is
what the battery uses; :func:`event_periodogram` evaluates the event-train sum directly.

A sinusoidal rate modulation ``rate (1 + d cos(2 pi f t))`` at a Fourier frequency adds a mean
``N d / 2`` to ``S(f)``: ``2 I(f)`` is then non-central chi-square with 2 degrees of freedom and
non-centrality ``N d^2 / 2`` (used in :mod:`asiclab.heartbeat.power`). The estimated depth is
``d_hat = 2 sqrt(max(I - 1, 0) / N)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import fft as sfft
from scipy import signal, stats

from asiclab.heartbeat._errors import HeartbeatInputError, InsufficientDataError
from asiclab.heartbeat.stats import interior_times

FloatArray = NDArray[np.float64]

__all__ = [
    "CountPeriodogram",
    "TelemetrySpectrum",
    "count_periodogram",
    "event_periodogram",
    "gamma_band",
    "max_exp_sf",
    "modulation_depth_estimate",
    "spectral_peak_test",
    "telemetry_spectrum",
]


def max_exp_sf(x: ArrayLike, m: ArrayLike) -> FloatArray:
    """``P(max of m iid Exp(1) > x) = 1 - (1 - exp(-x))^m``, computed stably.

    Parameters
    ----------
    x : array_like
        Observed maximum (periodogram in units of the Poisson level) [1].
    m : array_like
        Number of frequencies searched.

    Returns
    -------
    numpy.ndarray
        Upper-tail probability.
    """
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return -np.expm1(m * np.log1p(-np.exp(-x)))


def modulation_depth_estimate(i_norm: ArrayLike, n_events: ArrayLike) -> FloatArray:
    """Sinusoidal rate-modulation depth implied by a normalised periodogram value.

    Parameters
    ----------
    i_norm : array_like
        Periodogram value in units of the Poisson level [1].
    n_events : array_like
        Events in the record.

    Returns
    -------
    numpy.ndarray
        ``2 sqrt(max(I - 1, 0) / N)`` [1] (relative amplitude of the rate modulation).
    """
    i = np.asarray(i_norm, dtype=np.float64)
    return 2.0 * np.sqrt(np.maximum(i - 1.0, 0.0) / np.asarray(n_events, dtype=np.float64))


@dataclass(frozen=True)
class CountPeriodogram:
    """Normalised periodogram of the binned count series at the Fourier frequencies.

    Attributes
    ----------
    j : numpy.ndarray
        Fourier indices ``1..J``; frequency of row ``r`` is ``j / span[r]`` [Hz].
    power : numpy.ndarray
        ``I(j / T)`` in units of the Poisson level, shape ``(R, J)`` [1].
    span : numpy.ndarray
        Record spans ``T`` [s], shape ``(R,)``.
    n_events : numpy.ndarray
        Interior events per record.
    n_bins : int
        Number of count bins ``K`` per record (bin width ``span / K``).
    """

    j: NDArray[np.int64]
    power: FloatArray
    span: FloatArray
    n_events: NDArray[np.int64]
    n_bins: int

    def freqs(self, row: int = 0) -> FloatArray:
        """Frequencies of one record [Hz]."""
        return self.j / self.span[row]


def count_periodogram(
    intervals: ArrayLike,
    f_max: float,
    *,
    oversample: float = 2.0,
    max_bins: int = 2**25,
    chunk_elements: int = 2**24,
) -> CountPeriodogram:
    """Periodogram of the count series of interior events, up to ``f_max`` (batched).

    Each record is cut into ``K`` equal bins (``K >= 2 * oversample * f_max * T``, a fast FFT
    length, at most ``max_bins``); ``K`` is common to all records of a batch.

    Parameters
    ----------
    intervals : array_like
        Inter-arrival times [s], shape ``(n,)`` or ``(R, n)``.
    f_max : float
        Highest frequency needed [Hz].
    oversample : float
        Bins per Nyquist interval (bin width ``<= 1 / (2 oversample f_max)``).
    max_bins : int
        Cap on ``K`` (memory bound); if hit, the frequencies above ``K / (2T)`` are absent.
    chunk_elements : int
        Bins processed at once.

    Returns
    -------
    CountPeriodogram
    """
    t, span = interior_times(intervals)
    r, m = t.shape
    if m < 2:
        raise InsufficientDataError("need at least 3 intervals")
    if not f_max > 0:
        raise HeartbeatInputError("f_max must be > 0")
    k = int(np.ceil(2.0 * oversample * f_max * span.max())) + 2
    k = min(sfft.next_fast_len(k, real=True), int(max_bins))
    jmax = int(min(np.floor(f_max * span.max()), (k - 1) // 2))
    if jmax < 1:
        raise InsufficientDataError("record too short for any Fourier frequency <= f_max")
    out = np.empty((r, jmax))
    rows = max(1, chunk_elements // k)
    for i0 in range(0, r, rows):
        tt = t[i0 : i0 + rows]
        rr = tt.shape[0]
        idx = np.minimum((tt * (k / span[i0 : i0 + rows])[:, np.newaxis]).astype(np.int64), k - 1)
        idx += (np.arange(rr, dtype=np.int64) * k)[:, np.newaxis]
        c = np.bincount(idx.ravel(), minlength=rr * k).reshape(rr, k).astype(np.float64)
        f = sfft.rfft(c, axis=1)[:, 1 : jmax + 1]
        out[i0 : i0 + rows] = (f.real**2 + f.imag**2) / m
    return CountPeriodogram(
        j=np.arange(1, jmax + 1, dtype=np.int64),
        power=out,
        span=span,
        n_events=np.full(r, m, dtype=np.int64),
        n_bins=k,
    )


def event_periodogram(
    times: ArrayLike, freqs: ArrayLike, *, chunk_elements: int = 2**22
) -> FloatArray:
    """Event-train periodogram ``|sum_k exp(-2 pi i f t_k)|^2 / N`` at given frequencies.

    Direct (non-uniform) evaluation, ``O(N M)`` work in bounded memory. At Fourier frequencies
    ``j / T`` of the interior events it has the Exp(1) null of the module docstring.

    Parameters
    ----------
    times : array_like
        Event times [s], 1-D.
    freqs : array_like
        Frequencies [Hz].
    chunk_elements : int
        Complex exponentials held in memory at once.

    Returns
    -------
    numpy.ndarray
        Periodogram in units of the Poisson level [1].
    """
    t = np.asarray(times, dtype=np.float64)
    f = np.asarray(freqs, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise HeartbeatInputError("times must be a non-empty 1-D array")
    t = t - t[0]
    out = np.empty(f.size)
    step = max(1, chunk_elements // t.size)
    for i in range(0, f.size, step):
        ph = 2.0 * np.pi * np.outer(f[i : i + step], t)
        out[i : i + step] = (np.cos(ph).sum(axis=1) ** 2 + np.sin(ph).sum(axis=1) ** 2) / t.size
    return out


def spectral_peak_test(
    pgram: CountPeriodogram, band: tuple[float, float]
) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.int64]]:
    """Max-over-frequencies test for a spectral peak within ``band`` (batched).

    The band is ``[lo, hi]`` [Hz]; the ``M`` Fourier frequencies ``j / T`` inside it are
    searched and the p-value is ``1 - (1 - exp(-max I))^M`` (:func:`max_exp_sf`). If no Fourier
    frequency falls inside the band, the one nearest to its centre is used (``M = 1``).

    Parameters
    ----------
    pgram : CountPeriodogram
        Periodogram from :func:`count_periodogram`.
    band : tuple of float
        Frequency band [Hz].

    Returns
    -------
    i_max : numpy.ndarray
        Largest periodogram value in the band [1].
    f_peak : numpy.ndarray
        Its frequency [Hz].
    pvalue : numpy.ndarray
        Corrected p-value.
    m : numpy.ndarray
        Number of frequencies searched.
    """
    lo, hi = float(band[0]), float(band[1])
    if not 0 < lo <= hi:
        raise HeartbeatInputError("band must satisfy 0 < lo <= hi")
    f = pgram.j[np.newaxis, :] / pgram.span[:, np.newaxis]
    mask = (f >= lo) & (f <= hi)
    m = mask.sum(axis=1)
    centre = 0.5 * (lo + hi)
    nearest = np.argmin(np.abs(f - centre), axis=1)
    rows = np.arange(f.shape[0])
    empty = m == 0
    mask[rows[empty], nearest[empty]] = True
    m = np.maximum(m, 1)
    p = np.where(mask, pgram.power, -np.inf)
    arg = np.argmax(p, axis=1)
    i_max = pgram.power[rows, arg]
    return i_max, f[rows, arg], max_exp_sf(i_max, m), m.astype(np.int64)


@dataclass(frozen=True)
class TelemetrySpectrum:
    """Spectrum of a telemetry series (e.g. power [W]) and its peak test.

    Attributes
    ----------
    freqs : numpy.ndarray
        Fourier frequencies ``j / T`` up to the Nyquist frequency [Hz].
    power : numpy.ndarray
        Periodogram normalised to its mean (1 = flat spectrum) [1].
    n_samples : int
        Samples used.
    median_dt_s : float
        Median sampling interval [s].
    nyquist_hz : float
        ``1 / (2 median_dt)`` [Hz].
    peak_freq_hz, peak_power, peak_pvalue : float
        Largest normalised periodogram value, its frequency [Hz] and max-over-frequencies
        p-value against a flat (white) spectrum.
    target_hz : float
        Frequency of interest [Hz] (2.4 Hz for the claimed heartbeat).
    target_observable : bool
        ``target_hz < nyquist_hz``.
    alias_hz : float
        Where a line at ``target_hz`` would alias to if the samples were instantaneous and
        perfectly regular [Hz].
    note : str
        Plain statement about observability.
    """

    freqs: FloatArray
    power: FloatArray
    n_samples: int
    median_dt_s: float
    nyquist_hz: float
    peak_freq_hz: float
    peak_power: float
    peak_pvalue: float
    target_hz: float
    target_observable: bool
    alias_hz: float
    note: str


def telemetry_spectrum(
    t_s: ArrayLike, values: ArrayLike, *, target_hz: float = 2.4
) -> TelemetrySpectrum:
    """Lomb-Scargle spectrum of a telemetry series and a max-peak test against a flat spectrum.

    The series is linearly detrended; the Lomb-Scargle periodogram (handles jittered sampling)
    is evaluated at ``j / T`` up to the Nyquist frequency of the median sampling interval and
    normalised by its mean. Under a white-noise null the normalised values are approximately
    iid Exp(1) and the maximum over ``M`` frequencies gets :func:`max_exp_sf`. Telemetry is
    usually red (thermal drift), so a small p-value at the lowest frequencies says little;
    the test matters for narrow lines.

    AxeOS reports telemetry every ~3 s: the Nyquist frequency is ~0.167 Hz and a 2.4 Hz
    heartbeat cannot be seen in such data at all (``target_observable`` is False and the note
    says so).

    Parameters
    ----------
    t_s : array_like
        Sample times [s].
    values : array_like
        Samples (e.g. power [W]); NaNs are dropped.
    target_hz : float
        Frequency of interest [Hz].

    Returns
    -------
    TelemetrySpectrum
    """
    t = np.asarray(t_s, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    order = np.argsort(t)
    t, y = t[order], y[order]
    if t.size < 8:
        raise InsufficientDataError(f"need at least 8 telemetry samples, got {t.size}")
    dt = float(np.median(np.diff(t)))
    if not dt > 0:
        raise HeartbeatInputError("telemetry times must increase")
    nyq = 0.5 / dt
    span = float(t[-1] - t[0])
    y = signal.detrend(y, type="linear")
    jmax = int(np.floor(nyq * span))
    if jmax < 1:
        raise InsufficientDataError("telemetry record too short")
    freqs = np.arange(1, jmax + 1) / span
    if np.allclose(y, 0.0):
        pw = np.ones(jmax)
    else:
        pw = signal.lombscargle(t - t[0], y - y.mean(), 2 * np.pi * freqs)
        pw = pw / pw.mean()
    k = int(np.argmax(pw))
    fs = 1.0 / dt
    alias = abs(target_hz - round(target_hz / fs) * fs)
    observable = target_hz < nyq
    if observable:
        note = f"{target_hz:g} Hz is below the Nyquist frequency {nyq:.3g} Hz: observable."
    else:
        note = (
            f"{target_hz:g} Hz is above the Nyquist frequency {nyq:.3g} Hz of telemetry sampled "
            f"every {dt:.3g} s: a {target_hz:g} Hz heartbeat cannot be seen in this telemetry "
            f"(at best it would alias to {alias:.3g} Hz if samples were instantaneous and "
            "perfectly regular; averaging or timing jitter would erase it)."
        )
    return TelemetrySpectrum(
        freqs=freqs,
        power=pw,
        n_samples=int(t.size),
        median_dt_s=dt,
        nyquist_hz=nyq,
        peak_freq_hz=float(freqs[k]),
        peak_power=float(pw[k]),
        peak_pvalue=float(max_exp_sf(pw[k], jmax)),
        target_hz=float(target_hz),
        target_observable=bool(observable),
        alias_hz=float(alias),
        note=note,
    )


def gamma_band(n_avg: ArrayLike, q: float) -> FloatArray:
    """Quantile of the mean of ``n_avg`` iid Exp(1) values (band of an averaged periodogram).

    Parameters
    ----------
    n_avg : array_like
        Number of periodogram values averaged.
    q : float
        Probability.

    Returns
    -------
    numpy.ndarray
        Quantile [1].
    """
    n = np.asarray(n_avg, dtype=np.float64)
    return stats.gamma.ppf(q, n) / n
