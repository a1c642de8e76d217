"""Emulated Lucky Miner LV06 (BM1366): the Stratum side.

The emulated LV06 is two programs around one chip model: an AxeOS HTTP server
(:mod:`asiclab.devices.emulated_axeos`) and this Stratum v1 client, which connects to a capture
server (:class:`asiclab.capture.server.StratumCaptureServer`) like the real firmware
(``mining.configure`` version rolling, ``subscribe``, ``authorize``, ``suggest_difficulty``) and
submits shares whose *timing* follows the simulated chip
(:class:`asiclab.devices.simulated.SimulatedChip`, advanced in real time, optionally sped up by
``time_scale``) and which *really verify*:

* every valid model event becomes a real CPU search for a nonce meeting the pool difficulty. The
  emulator asks for a tiny difficulty (``suggest_difficulty``, default ``2**-20``: about 4096
  SHA256d per share), used only for emulation; a real LV06 would be given ~256 or more;
* every model-invalid event (hardware error) becomes a deliberately bad nonce, checked locally
  to miss the pool target, so the server records it as invalid with error 23.

The nonce of a share found by core ``c`` carries ``c`` the way a BM1366 does: with ``nonce_h``
the big-endian value of the four nonce bytes in the header, ``c = (nonce_h >> 25) & 0x7F``
(:func:`core_of_nonce`); each core searches its own slice of the nonce space. Version bits are
rolled at random inside the negotiated mask, as the chip's version rolling does.

Both sides share one :class:`asiclab.devices.emulated_axeos.ChipHandle` (thread-safe): give the
emulator the AxeOS emulator's ``handle`` (or a bare ``SimulatedChip``, which gets wrapped), so an
operating point set through the HTTP API changes the share timing, and the share counters appear
in ``/api/system/info``. While the emulated firmware restarts (handle offline) the miner drops
its Stratum connection and reconnects afterwards, as the real device does.

Everything captured from it is labelled ``emulated``: its agent string
(:data:`AGENT`, ``asiclab-emulated-lv06/0.1``) makes the capture server register the device with
``source_kind = "emulated"``. The timing of an emulated capture is the *model's* timing plus the
host's scheduling jitter -- not silicon timing. The nonce searches run in the emulator's event
loop (a few ms each at ``2**-20``); for the least disturbed server timestamps run the emulator in
another process than the capture server (threads share the GIL).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from asiclab import AsiclabError
from asiclab.devices.stratum_client import StratumClient, StratumMiner, SubmitResult
from asiclab.protocol import mining
from asiclab.protocol.stratum import ERR_LOW_DIFFICULTY, StratumError

__all__ = [
    "AGENT",
    "DEFAULT_EMULATOR_DIFFICULTY",
    "EmulatedLV06",
    "EmulatorError",
    "EmulatorStats",
    "PreparedShare",
    "core_of_nonce",
    "search_core_nonce",
]

AGENT = "asiclab-emulated-lv06/0.1"
#: Share difficulty the emulator suggests: ~4096 SHA256d per share on the host CPU.
DEFAULT_EMULATOR_DIFFICULTY = 2.0**-20
_CORE_SLICE = 1 << 25  # nonces per BM1366 core slice


class EmulatorError(AsiclabError):
    """Wrong emulator parameters, or a server the emulator cannot mine against."""


def core_of_nonce(nonce: int) -> int:
    """BM1366 core id encoded in a submitted nonce.

    Parameters
    ----------
    nonce : int
        Nonce as the u32 value of the submitted big-endian hex (header bytes 76-79 hold it
        little-endian).

    Returns
    -------
    int
        ``(nonce_h >> 25) & 0x7F`` with ``nonce_h`` the big-endian value of the header's nonce
        bytes (``protocols.md``, BM1366 nonce reply).
    """
    raw = int(nonce).to_bytes(4, "little")
    return (int.from_bytes(raw, "big") >> 25) & 0x7F


def search_core_nonce(
    prefix: bytes, difficulty: float, core_id: int, *, valid: bool = True, start: int = 0,
    max_tries: int = _CORE_SLICE,
) -> mining.NonceHit | None:
    """Search one core's slice of the nonce space for a nonce that meets (or misses) a difficulty.

    A real SHA256d search (midstate of the first 64 header bytes reused).

    Parameters
    ----------
    prefix : bytes
        First 76 header bytes (:func:`asiclab.protocol.mining.header_prefix`).
    difficulty : float
        Pool difficulty [1].
    core_id : int
        Core 0..127; the nonces tried satisfy :func:`core_of_nonce` ``== core_id``.
    valid : bool
        Look for a nonce meeting the difficulty (True) or one missing it (False).
    start : int
        Offset inside the core's slice to start at.
    max_tries : int
        Most nonces to try.

    Returns
    -------
    asiclab.protocol.mining.NonceHit or None
        ``(nonce, difficulty, hash)`` with ``nonce`` the submit value; None if none was found.
    """
    if len(prefix) != 76:
        raise EmulatorError(f"prefix must be 76 bytes, got {len(prefix)}")
    if not 0 <= core_id <= 0x7F:
        raise EmulatorError(f"core_id must be in 0..127, got {core_id}")
    target = mining.target_from_difficulty(difficulty)
    mid = hashlib.sha256(prefix[:64])
    tail = prefix[64:]
    sha256 = hashlib.sha256
    base = core_id << 25
    mask = _CORE_SLICE - 1
    for k in range(min(max_tries, _CORE_SLICE)):
        raw = (base | ((start + k) & mask)).to_bytes(4, "big")
        h = mid.copy()
        h.update(tail + raw)
        digest = sha256(h.digest()).digest()
        value = int.from_bytes(digest, "little")
        if (value <= target) is valid:
            diff = math.inf if value == 0 else mining.DIFF1_TARGET / value
            return mining.NonceHit(int.from_bytes(raw, "little"), diff, digest)
    return None


class PreparedShare(NamedTuple):
    """A share ready to submit (all hex as in ``mining.submit``)."""

    job_id: str
    extranonce2: str
    ntime: str
    nonce: str
    version_bits: str
    core_id: int
    model_valid: bool
    difficulty: float


@dataclass
class EmulatorStats:
    """Counters of an emulator run.

    Attributes
    ----------
    model_events : int
        Events the chip model produced (valid + invalid).
    model_invalid : int
        Of those, hardware errors (submitted as deliberately bad nonces).
    submitted, accepted : int
        Shares sent / accepted by the server.
    rejected : collections.Counter
        Rejected shares by Stratum error code.
    unexpected : int
        Answers that contradict the model (a valid event rejected, an invalid one accepted).
    hashes : int
        SHA256d computed by the searches.
    connects, disconnects : int
        Stratum connections made / lost.
    restarts : int
        Connections dropped because the emulated firmware restarted (handle offline).
    timing_lag_s : float
        Largest delay of a submission behind its model time [s] (search or scheduling).
    """

    model_events: int = 0
    model_invalid: int = 0
    submitted: int = 0
    accepted: int = 0
    rejected: collections.Counter[int] = field(default_factory=collections.Counter)
    unexpected: int = 0
    hashes: int = 0
    connects: int = 0
    disconnects: int = 0
    restarts: int = 0
    timing_lag_s: float = 0.0


def _as_handle(chip: Any, seed: int) -> Any:
    from asiclab.devices.emulated_axeos import ChipHandle

    if chip is None:
        from asiclab.devices.simulated import SimulatedChip

        chip = SimulatedChip(seed)
    return chip if isinstance(chip, ChipHandle) else ChipHandle(chip)


class EmulatedLV06(StratumMiner):
    """Stratum client of the emulated LV06 (see the module docstring).

    ``stop()`` and ``thread()`` come from :class:`~asiclab.devices.stratum_client.StratumMiner`.

    Parameters
    ----------
    host, port : str, int
        Capture server.
    chip : ChipHandle or SimulatedChip, optional
        The chip model, shared with the AxeOS emulator (default: a new ``SimulatedChip(seed)``).
    seed : int
        Seed of the default chip and of the emulator's own random choices (version bits, search
        start offsets).
    worker : str
        Worker name (the device name in the capture).
    password : str
        Authorize password.
    agent : str
        Agent string (must start with ``asiclab-`` so the capture is labelled ``emulated``).
    suggest_difficulty : float
        Difficulty to ask the server for [1].
    time_scale : float
        Virtual chip seconds per wall-clock second (1 = real time).
    tick_s : float
        How far ahead the model is advanced each step [s of wall time].
    max_search_difficulty : float
        Refuse to mine when the server's difficulty exceeds this [1] (the CPU search would take
        too long); default ``2**-12`` (about 10^6 hashes per share).
    reconnect : bool
        Reconnect after a lost connection (as the firmware does) instead of raising.
    difficulty_wait_s : float
        How long to wait after the handshake for a job at an emulable difficulty [s].
    ticket_per_pool : float, optional
        Let the model's ticket difficulty follow the pool's: at every job whose difficulty
        ``d`` differs from the last one the chip model is set to ticket difficulty
        ``d * ticket_per_pool`` [1]. A real miner submits shares at the rate
        ``H / (d 2**32)`` of its hashrate ``H`` whatever ``d`` is; the emulator turns every
        model event into one share (found at the tiny emulation difficulty), so without this
        (default None) the share rate ignores the pool difficulty.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        chip: Any = None,
        seed: int = 0,
        worker: str = "emulated-lv06",
        password: str = "x",
        agent: str = AGENT,
        suggest_difficulty: float = DEFAULT_EMULATOR_DIFFICULTY,
        time_scale: float = 1.0,
        tick_s: float = 0.05,
        max_search_difficulty: float = 2.0**-12,
        reconnect: bool = True,
        difficulty_wait_s: float = 5.0,
        ticket_per_pool: float | None = None,
    ) -> None:
        for name, value in (("time_scale", time_scale), ("tick_s", tick_s),
                            ("suggest_difficulty", suggest_difficulty),
                            ("max_search_difficulty", max_search_difficulty),
                            ("ticket_per_pool", 1.0 if ticket_per_pool is None
                             else ticket_per_pool)):
            if isinstance(value, bool) or not isinstance(value, int | float) or \
                    not math.isfinite(value) or value <= 0:
                raise EmulatorError(f"{name} must be finite and > 0, got {value!r}")
        if not agent.startswith("asiclab-"):
            raise EmulatorError("agent must start with 'asiclab-' (labels the data emulated)")
        super().__init__()
        self.host = host
        self.port = int(port)
        self.handle = _as_handle(chip, seed)
        if not hasattr(self.handle.chip, "now_ns"):
            raise EmulatorError("the chip model must expose now_ns (virtual clock) [ns]")
        self.worker = worker
        self.password = password
        self.agent = agent
        self.suggest_difficulty = float(suggest_difficulty)
        self.time_scale = float(time_scale)
        self.tick_s = float(tick_s)
        self.max_search_difficulty = float(max_search_difficulty)
        self.reconnect = reconnect
        self.difficulty_wait_s = float(difficulty_wait_s)
        self.ticket_per_pool = None if ticket_per_pool is None else float(ticket_per_pool)
        self._ticket_for: float | None = None
        if self.ticket_per_pool is not None and \
                not callable(getattr(self.handle.chip, "set_ticket_difficulty", None)):
            raise EmulatorError("ticket_per_pool needs a chip model with set_ticket_difficulty")
        self.stats = EmulatorStats()
        self._rng = np.random.default_rng([int(seed), 0x5732])

    # ------------------------------------------------------------------ control
    def _done(self, t_end: float | None, max_shares: int | None) -> bool:
        return (self._stop.is_set() or (t_end is not None and time.monotonic() >= t_end)
                or (max_shares is not None and self.stats.submitted >= max_shares))

    async def run(self, duration_s: float | None = None, *, max_shares: int | None = None
                  ) -> EmulatorStats:
        """Mine until ``duration_s`` [s] passed, ``max_shares`` were submitted, or :meth:`stop`.

        Returns
        -------
        EmulatorStats
            The counters (also in :attr:`stats`).

        Raises
        ------
        EmulatorError
            The server's difficulty is too high to emulate, or (with ``reconnect=False``) the
            connection failed or was lost.
        """
        t_end = None if duration_s is None else time.monotonic() + float(duration_s)
        backoff = 0.2
        while not self._done(t_end, max_shares):
            if not self.handle.is_online():
                await asyncio.sleep(0.02)
                continue
            client = StratumClient(self.host, self.port, worker=self.worker,
                                   password=self.password, agent=self.agent,
                                   suggest_difficulty=self.suggest_difficulty)
            try:
                await client.connect()
            except StratumError as exc:
                if not self.reconnect:
                    raise EmulatorError(f"cannot connect: {exc}") from exc
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, 5.0)
                continue
            backoff = 0.2
            self.stats.connects += 1
            try:
                await self._mine(client, t_end, max_shares)
            except StratumError as exc:
                self.stats.disconnects += 1
                if not self.reconnect:
                    raise EmulatorError(f"connection lost: {exc}") from exc
            finally:
                await self._drain()
                await client.close()
        return self.stats

    # ------------------------------------------------------------------ mining
    async def _wait_for_difficulty(self, client: StratumClient) -> None:
        """Wait until a job at an emulable difficulty arrived (the server answers the suggestion
        with ``set_difficulty`` and a resent job)."""
        deadline = time.monotonic() + self.difficulty_wait_s
        while True:
            job = await client.wait_for_job()
            if job.difficulty <= self.max_search_difficulty:
                return
            if time.monotonic() > deadline:
                raise EmulatorError(
                    f"server difficulty {job.difficulty:g} is above max_search_difficulty "
                    f"{self.max_search_difficulty:g}: let the capture server accept "
                    "mining.suggest_difficulty for the emulator")
            try:
                await client.next_job(timeout=max(deadline - time.monotonic(), 0.01))
            except TimeoutError:
                continue

    async def _mine(self, client: StratumClient, t_end: float | None,
                    max_shares: int | None) -> None:
        await self._wait_for_difficulty(client)
        self.handle.set_pool_difficulty(client.difficulty)
        self._follow_pool(client)
        tick_ns = int(self.tick_s * 1e9)
        wall0 = time.monotonic_ns()
        with self.handle.lock:
            virt0 = int(self.handle.chip.now_ns)
        while not self._done(t_end, max_shares):
            if client.closed:
                raise StratumError(str(client.error or "connection closed"))
            if not self.handle.is_online():
                self.stats.restarts += 1
                return  # firmware restart: drop the connection, reconnect when back
            self._follow_pool(client)
            horizon = time.monotonic_ns() + tick_ns
            with self.handle.lock:
                now_virt = int(self.handle.chip.now_ns)
                dt_ns = virt0 + int((horizon - wall0) * self.time_scale) - now_virt
                ev = self.handle.advance(dt_ns * 1e-9) if dt_ns > 0 else None
            if ev is not None and len(ev):
                t_ns = np.asarray(ev.t_ns, dtype=np.int64)
                cores = np.asarray(ev.core_id, dtype=np.int64)
                valid = np.asarray(ev.valid, dtype=bool)
                for t, core, ok in zip(t_ns.tolist(), cores.tolist(), valid.tolist(),
                                       strict=True):
                    if self._done(t_end, max_shares) or client.closed:
                        break
                    self.stats.model_events += 1
                    self.stats.model_invalid += int(not ok)
                    share = self.prepare_share(client, int(core) & 0x7F, bool(ok))
                    due = wall0 + (t - virt0) / self.time_scale
                    delay = (due - time.monotonic_ns()) * 1e-9
                    if delay > 0:
                        await asyncio.sleep(delay)
                    else:
                        self.stats.timing_lag_s = max(self.stats.timing_lag_s, -delay)
                    self._submit(client, share)
            rest = (horizon - time.monotonic_ns()) * 1e-9
            await asyncio.sleep(max(rest, 0.0))

    def _follow_pool(self, client: StratumClient) -> None:
        """Set the model's ticket difficulty from the current job's (``ticket_per_pool``)."""
        job = client.job
        if self.ticket_per_pool is None or job is None or job.difficulty == self._ticket_for:
            return
        if not (math.isfinite(job.difficulty) and job.difficulty > 0):
            return
        self._ticket_for = job.difficulty
        with self.handle.lock:
            self.handle.chip.set_ticket_difficulty(job.difficulty * self.ticket_per_pool)
        self.handle.set_pool_difficulty(job.difficulty)

    def prepare_share(self, client: StratumClient, core_id: int, valid: bool) -> PreparedShare:
        """Turn one model event into a share on the client's current job (a real search).

        Parameters
        ----------
        client : StratumClient
            Connected client (job, extranonces, difficulty, version mask).
        core_id : int
            Core of the model event (0..127).
        valid : bool
            Model verdict: True searches a nonce meeting the job's difficulty, False picks a
            nonce that misses it.

        Returns
        -------
        PreparedShare
        """
        job = client.job
        if job is None:
            raise EmulatorError("no job")
        d = job.difficulty
        for _ in range(64):
            en2 = self._next_extranonce2(client)
            vbits = (int(self._rng.integers(0, 1 << 16)) << 13) & client.version_mask
            prefix = job.header_prefix(client.extranonce1, en2, vbits)
            start = int(self._rng.integers(0, _CORE_SLICE))
            tries = _CORE_SLICE if valid else 4096
            hit = search_core_nonce(prefix, d, core_id, valid=valid, start=start,
                                    max_tries=tries)
            self.stats.hashes += tries if hit is None else 1 + (
                (int.from_bytes(hit.nonce.to_bytes(4, "little"), "big") - start)
                & (_CORE_SLICE - 1))
            if hit is not None:
                return PreparedShare(job.job_id, en2.hex(), f"{job.ntime:08x}",
                                     f"{hit.nonce:08x}", f"{vbits:08x}", core_id, valid,
                                     hit.difficulty)
        raise EmulatorError(f"no {'valid' if valid else 'invalid'} nonce found at difficulty "
                            f"{d:g}")

    def _submit(self, client: StratumClient, share: PreparedShare) -> None:
        def _check(res: SubmitResult) -> None:
            expected = 0 if share.model_valid else ERR_LOW_DIFFICULTY
            if res.error_code != expected:
                self.stats.unexpected += 1
            self.handle.record_share(res.accepted, share.difficulty if res.accepted
                                     else math.nan)

        vb = share.version_bits if client.version_mask else None
        self._submit_counted(client, share.job_id, share.extranonce2, share.ntime, share.nonce,
                             vb, on_result=_check)
