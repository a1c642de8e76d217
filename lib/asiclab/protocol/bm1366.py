"""BM1366 UART protocol: framing, CRCs, job payloads, reply decoding (pure functions).

Everything in this module is a pure function of its arguments or a small state machine over bytes
(:class:`FrameReader`, :class:`CommandReader`); nothing here touches a port. The serial driver is
:mod:`asiclab.devices.bm1366_uart`, the chip-side emulator :mod:`asiclab.devices.emulated_bm1366`.

Protocol summary (facts from the open-source Bitaxe firmware ESP-Miner, ``components/asic/``,
re-checked here against a real UART trace of a BM1366, see the tests)
---------------------------------------------------------------------------------------------
Host -> chip frames: ``55 AA | header | length | data | crc``.

* ``header = TYPE | GROUP | CMD``: TYPE ``0x20`` job or ``0x40`` command; GROUP ``0x00`` one chip or
  ``0x10`` all chips; CMD ``0`` set address, ``1`` write register, ``2`` read register,
  ``3`` chain inactive.
* Commands: ``length = len(data) + 3`` and a CRC-5 (poly x^5+x^2+1, init 0x1F, MSB first, no final
  XOR) over ``header..data`` in the last byte.
* Jobs: ``length = len(data) + 4`` and a CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over
  ``header..data``, sent big-endian.

Chip -> host replies are 11 bytes, ``AA 55 | b2..b9 | flags``:

* job result (``flags`` bit 7 set): ``nonce[4] | midstate | id | version[2]``;
* register read (bit 7 clear): ``value[4] (big-endian) | chip address | register | 00 00``; reading
  register 0 gives the chip id ``13 66``, then a core-count byte and an address byte.
* The low 5 bits of ``flags`` are a CRC-5 chosen so that the CRC-5 over bytes 2..10 (all 72 bits,
  flags included) is 0 -- that is how ESP-Miner checks a reply. Equivalently the CRC field is the
  CRC-5 of the 67 bits that precede it (bytes 2..9 and the three top flag bits); it is *not*
  the CRC-5 of bytes 2..9 alone (the real trace in the tests shows the difference).

Decoding a job result (``nonce_h`` = big-endian value of the 4 nonce bytes):
``job_id = id & 0xF8``, ``small_core = id & 0x07``, ``core = (nonce_h >> 25) & 0x7F``,
``chip = ((nonce_h >> 17) & 0xFF) // address_interval``,
``rolled_version = job.version | (version_u16_be << 13)``. The raw nonce bytes are header
bytes 76..79, so the Stratum ``submit`` nonce (big-endian hex of the header's little-endian u32)
is ``int.from_bytes(nonce_bytes, "little")``.

Job payload (82 bytes): ``job_id | num_midstates (1) | starting_nonce (LE) | nbits (LE) |
ntime (LE) | merkle_root | prev_block_hash | version (LE)``, where ``merkle_root`` and
``prev_block_hash`` are the header fields (as hashed) with the order of their eight 32-bit words
reversed (bytes inside each word unchanged). For ``prev_block_hash`` this is the
``mining.notify`` prevhash with each word byte-swapped and then the word order reversed. Job ids
step by 8 modulo 128 (16 slots).

Registers used: ``0x00`` chip id, ``0x08`` PLL0 (``vdo | fb | refdiv | postdiv``), ``0x10`` hash
counting number, ``0x14`` ticket mask, ``0x18`` misc control, ``0x28`` fast UART, ``0x4C`` error
count, ``0x88..0x8B`` per-domain counters, ``0x8C`` total counter, ``0xA4`` version rolling.

References
----------
CRC-16/CCITT-FALSE and the CRC parameter model: Williams, R. (1993), "A Painless Guide to CRC
Error Detection Algorithms"; catalogue entry and check value 0x29B1 in Cook, G., "Catalogue of
parametrised CRC algorithms" (reveng.sourceforge.io).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from asiclab import AsiclabError
from asiclab.protocol.mining import MiningError, swap_words

__all__ = [
    "CHIP_ID",
    "CMD_INACTIVE",
    "CMD_READ",
    "CMD_SET_ADDRESS",
    "CMD_WRITE",
    "CORE_COUNT",
    "DEFAULT_FREQUENCY_MHZ",
    "DEFAULT_TICKET_DIFFICULTY",
    "DEFAULT_VERSION_MASK",
    "FAST_BAUD",
    "FAST_UART_VALUE",
    "GROUP_ALL",
    "GROUP_SINGLE",
    "HEADER_JOB",
    "INITIAL_BAUD",
    "JOB_PAYLOAD_LENGTH",
    "PLL_FB_MAX",
    "PLL_FB_MIN",
    "REG_CHIP_ID",
    "REG_DOMAIN_COUNTS",
    "REG_ERROR_COUNT",
    "REG_FAST_UART",
    "REG_HASH_COUNTING",
    "REG_MISC_CONTROL",
    "REG_PLL0",
    "REG_TICKET_MASK",
    "REG_TOTAL_COUNT",
    "REG_VERSION_ROLLING",
    "REPLY_LENGTH",
    "SMALL_CORE_COUNT",
    "TYPE_CMD",
    "TYPE_JOB",
    "XTAL_MHZ",
    "BM1366Error",
    "BM1366Job",
    "BM1366ValueError",
    "CRCError",
    "ChipIdReply",
    "CommandFrame",
    "CommandReader",
    "FrameError",
    "FrameReader",
    "NonceReply",
    "PLLSetting",
    "RegisterReply",
    "Reply",
    "chain_inactive_command",
    "crc5",
    "crc16",
    "decode_command_frame",
    "decode_pll_register",
    "decode_reply",
    "difficulty_from_ticket_mask",
    "encode_chip_id_reply",
    "encode_command",
    "encode_job_frame",
    "encode_nonce_reply",
    "encode_register_reply",
    "encode_reply",
    "fast_uart_command",
    "hash_counting_number",
    "iter_replies",
    "next_job_id",
    "pll_command",
    "pll_register_value",
    "pll_setting",
    "read_chip_id_command",
    "read_register_command",
    "reverse_words",
    "set_address_command",
    "ticket_difficulty",
    "ticket_mask",
    "ticket_mask_command",
    "version_mask_command",
    "version_mask_from_register",
    "version_mask_value",
    "write_register_command",
]

# --------------------------------------------------------------------------- constants

PREAMBLE_COMMAND = b"\x55\xaa"
"""Preamble of host -> chip frames."""
PREAMBLE_REPLY = b"\xaa\x55"
"""Preamble of chip -> host replies."""

TYPE_JOB = 0x20
TYPE_CMD = 0x40
GROUP_SINGLE = 0x00
GROUP_ALL = 0x10
CMD_SET_ADDRESS = 0x00
CMD_WRITE = 0x01
CMD_READ = 0x02
CMD_INACTIVE = 0x03
HEADER_JOB = TYPE_JOB | GROUP_SINGLE | CMD_WRITE
"""Header byte of a job frame (``0x21``)."""

CHIP_ID = 0x1366
"""Chip id the BM1366 returns in register 0."""
CORE_COUNT = 112
"""Cores of a BM1366 (7-bit core field of the nonce) [1]."""
SMALL_CORE_COUNT = 894
"""Small cores of a BM1366; hashrate = frequency x small cores [1]."""
DEFAULT_TICKET_DIFFICULTY = 256
"""Ticket difficulty the firmware sets on a BM1366 [1]."""
DEFAULT_FREQUENCY_MHZ = 485.0
"""Default BM1366 frequency of the Bitaxe firmware [MHz]."""
DEFAULT_VERSION_MASK = 0x1FFFE000
"""Version-rolling mask (BIP 320 bits 13..28); written as ``A4 90 00 FF FF``."""
INITIAL_BAUD = 115_200
"""Baud rate after reset [bit/s]."""
FAST_BAUD = 1_000_000
"""Baud rate after the fast-UART write to register 0x28 [bit/s]."""
FAST_UART_VALUE = bytes.fromhex("11300200")
"""Register 0x28 value that switches the chip to 1,000,000 baud."""
XTAL_MHZ = 25.0
"""Reference crystal of the PLL [MHz]."""
PLL_FB_MIN = 144
PLL_FB_MAX = 235
"""Feedback-divider range of the BM1366 PLL (ESP-Miner)."""
VCO_HIGH_MHZ = 2400.0
"""VCO frequency at and above which the PLL ``vdo`` byte is 0x50 instead of 0x40 [MHz]."""

REPLY_LENGTH = 11
"""Length of every chip -> host reply [bytes]."""
JOB_PAYLOAD_LENGTH = 82
"""Length of a BM1366 job payload [bytes]."""
JOB_FRAME_LENGTH = JOB_PAYLOAD_LENGTH + 6
"""Length of a job frame on the wire [bytes]."""

REG_CHIP_ID = 0x00
REG_PLL0 = 0x08
REG_HASH_COUNTING = 0x10
REG_TICKET_MASK = 0x14
REG_MISC_CONTROL = 0x18
REG_FAST_UART = 0x28
REG_ERROR_COUNT = 0x4C
REG_DOMAIN_COUNTS = (0x88, 0x89, 0x8A, 0x8B)
REG_TOTAL_COUNT = 0x8C
REG_VERSION_ROLLING = 0xA4

_FLAG_JOB = 0x80
_FLAG_RESERVED = 0x60


# --------------------------------------------------------------------------- errors


class BM1366Error(AsiclabError):
    """Base class of the BM1366 protocol errors."""


class BM1366ValueError(BM1366Error, ValueError):
    """A parameter is outside what the protocol can express (frequency, difficulty, id...)."""


class FrameError(BM1366Error):
    """A frame is malformed (length, preamble, header, length field)."""


class CRCError(FrameError):
    """A frame's CRC does not match its content."""


# --------------------------------------------------------------------------- CRCs


def _as_bytes(data: Any, name: str) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise BM1366ValueError(f"{name}: expected bytes, got {type(data).__name__}")


def crc5(data: bytes | bytearray | memoryview, nbits: int | None = None) -> int:
    """CRC-5 of the BM13xx UART: poly x^5+x^2+1 (0x05), init 0x1F, MSB first, no final XOR.

    Parameters
    ----------
    data : bytes
        Message.
    nbits : int, optional
        Number of leading bits of ``data`` to process (MSB first); default all ``8 * len(data)``.

    Returns
    -------
    int
        The CRC, 0..31.
    """
    raw = _as_bytes(data, "data")
    n = 8 * len(raw) if nbits is None else int(nbits)
    if not 0 <= n <= 8 * len(raw):
        raise BM1366ValueError(f"nbits: expected 0..{8 * len(raw)}, got {nbits!r}")
    # whole bytes through a table (the 5-bit register kept left-aligned in 8 bits)
    reg = 0x1F << 3
    table = _CRC5_TABLE
    for b in raw[: n >> 3]:
        reg = table[reg ^ b]
    crc = reg >> 3
    for i in range(n & ~7, n):  # remaining bits one by one
        bit = (raw[i >> 3] >> (7 - (i & 7))) & 1
        top = ((crc >> 4) & 1) ^ bit
        crc = ((crc << 1) & 0x1F) ^ (0x05 if top else 0)
    return crc


def _crc5_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        reg = byte
        for _ in range(8):
            reg = ((reg << 1) ^ (0x05 << 3)) & 0xFF if reg & 0x80 else (reg << 1) & 0xFF
        table.append(reg)
    return tuple(table)


_CRC5_TABLE = _crc5_table()


def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC16_TABLE = _crc16_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, MSB first, no final XOR (check 0x29B1).

    Parameters
    ----------
    data : bytes
        Message.

    Returns
    -------
    int
        The CRC, 0..0xFFFF.
    """
    crc = 0xFFFF
    for b in _as_bytes(data, "data"):
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16_TABLE[(crc >> 8) ^ b]
    return crc


# --------------------------------------------------------------------------- host -> chip frames


def _check_byte(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise BM1366ValueError(f"{name}: expected an int 0..255, got {value!r}")
    return value


def _check_u32(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise BM1366ValueError(f"{name}: expected a u32 int, got bool")
    try:
        v = int(value)
    except (TypeError, ValueError) as exc:
        raise BM1366ValueError(f"{name}: expected a u32 int, got {value!r}") from exc
    if v != value or not 0 <= v <= 0xFFFFFFFF:
        raise BM1366ValueError(f"{name}: expected a u32 int, got {value!r}")
    return v


def _register_word(value: int | bytes | bytearray) -> bytes:
    """A register value as its 4 wire bytes: a u32 int (big-endian) or 4 bytes as given."""
    if isinstance(value, bytes | bytearray):
        if len(value) != 4:
            raise BM1366ValueError(f"value: expected 4 bytes, got {len(value)}")
        return bytes(value)
    return _check_u32(value, "value").to_bytes(4, "big")


def encode_command(header: int, data: bytes | bytearray) -> bytes:
    """Command frame ``55 AA | header | len(data)+3 | data | crc5``.

    Parameters
    ----------
    header : int
        ``TYPE_CMD | GROUP_* | CMD_*``.
    data : bytes
        Command data (at most 250 bytes).

    Returns
    -------
    bytes
        The frame as sent on the wire.
    """
    _check_byte(header, "header")
    if header & TYPE_JOB or not header & TYPE_CMD:
        raise BM1366ValueError(f"header 0x{header:02x} is not a command header (TYPE_CMD)")
    body = _as_bytes(data, "data")
    if len(body) > 250:
        raise BM1366ValueError(f"data: at most 250 bytes, got {len(body)}")
    head = bytes((header, len(body) + 3)) + body
    return PREAMBLE_COMMAND + head + bytes((crc5(head),))


def encode_job_frame(payload: bytes | bytearray, header: int = HEADER_JOB) -> bytes:
    """Job frame ``55 AA | header | len(payload)+4 | payload | crc16 (big-endian)``.

    Parameters
    ----------
    payload : bytes
        Job payload (82 bytes for a BM1366 job, see :meth:`BM1366Job.payload`).
    header : int
        Header byte, ``TYPE_JOB | GROUP_SINGLE | CMD_WRITE`` (0x21) by default.

    Returns
    -------
    bytes
        The frame as sent on the wire.
    """
    _check_byte(header, "header")
    if not header & TYPE_JOB:
        raise BM1366ValueError(f"header 0x{header:02x} is not a job header (TYPE_JOB)")
    body = _as_bytes(payload, "payload")
    if len(body) > 250:
        raise BM1366ValueError(f"payload: at most 250 bytes, got {len(body)}")
    head = bytes((header, len(body) + 4)) + body
    return PREAMBLE_COMMAND + head + crc16(head).to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class CommandFrame:
    """A decoded host -> chip frame.

    Attributes
    ----------
    header : int
        Header byte (TYPE | GROUP | CMD).
    data : bytes
        Data between the length byte and the CRC.
    raw : bytes
        The whole frame.
    """

    header: int
    data: bytes
    raw: bytes

    @property
    def is_job(self) -> bool:
        """True for a job frame (TYPE_JOB)."""
        return bool(self.header & TYPE_JOB)

    @property
    def broadcast(self) -> bool:
        """True when addressed to all chips (GROUP_ALL)."""
        return bool(self.header & GROUP_ALL)

    @property
    def cmd(self) -> int:
        """Command number (0 set address, 1 write, 2 read, 3 chain inactive)."""
        return self.header & 0x0F

    @property
    def chip_address(self) -> int:
        """Target chip address (first data byte); -1 for a job."""
        return -1 if self.is_job or not self.data else self.data[0]

    @property
    def register(self) -> int:
        """Register of a read/write (second data byte); -1 when not applicable."""
        if self.is_job or len(self.data) < 2:
            return -1
        return self.data[1]

    @property
    def value(self) -> bytes:
        """Register value of a write (data bytes 2..5)."""
        return b"" if self.is_job else self.data[2:6]


def decode_command_frame(frame: bytes | bytearray) -> CommandFrame:
    """Decode and check one host -> chip frame (command or job).

    Parameters
    ----------
    frame : bytes
        The whole frame including preamble and CRC.

    Returns
    -------
    CommandFrame

    Raises
    ------
    FrameError
        Wrong preamble, header, or length field.
    CRCError
        CRC mismatch.
    """
    raw = _as_bytes(frame, "frame")
    if len(raw) < 5 or raw[:2] != PREAMBLE_COMMAND:
        raise FrameError(f"not a command frame (preamble/length): {raw.hex()}")
    header, length = raw[2], raw[3]
    if not header & (TYPE_JOB | TYPE_CMD):
        raise FrameError(f"header 0x{header:02x} is neither job nor command")
    if length + 2 != len(raw):
        raise FrameError(f"length field {length} does not match frame of {len(raw)} bytes")
    if header & TYPE_JOB:
        if len(raw) < 6:
            raise FrameError("job frame too short")
        if crc16(raw[2:-2]) != int.from_bytes(raw[-2:], "big"):
            raise CRCError(f"job frame CRC-16 mismatch: {raw.hex()}")
        return CommandFrame(header, raw[4:-2], raw)
    if crc5(raw[2:-1]) != raw[-1]:
        raise CRCError(f"command frame CRC-5 mismatch: {raw.hex()}")
    return CommandFrame(header, raw[4:-1], raw)


def read_register_command(register: int, *, chip_address: int = 0,
                          broadcast: bool = True) -> bytes:
    """Read a register on all chips (``broadcast``) or on the chip at ``chip_address``."""
    _check_byte(register, "register")
    _check_byte(chip_address, "chip_address")
    header = TYPE_CMD | (GROUP_ALL if broadcast else GROUP_SINGLE) | CMD_READ
    return encode_command(header, bytes((chip_address, register)))


def read_chip_id_command() -> bytes:
    """Read register 0 on all chips: ``55 AA 52 05 00 00 0A``."""
    return read_register_command(REG_CHIP_ID)


def write_register_command(register: int, value: int | bytes | bytearray, *,
                           chip_address: int = 0, broadcast: bool = True) -> bytes:
    """Write a 32-bit register (value big-endian on the wire).

    Parameters
    ----------
    register : int
        Register address.
    value : int or bytes
        u32 value or its 4 wire bytes.
    chip_address : int
        Target chip (ignored by the chips when ``broadcast``; sent as given).
    broadcast : bool
        Write on all chips (GROUP_ALL) rather than on one.

    Returns
    -------
    bytes
        The frame.
    """
    _check_byte(register, "register")
    _check_byte(chip_address, "chip_address")
    word = _register_word(value)
    header = TYPE_CMD | (GROUP_ALL if broadcast else GROUP_SINGLE) | CMD_WRITE
    return encode_command(header, bytes((chip_address, register)) + word)


def chain_inactive_command() -> bytes:
    """Chain inactive (all chips): ``55 AA 53 05 00 00 03``."""
    return encode_command(TYPE_CMD | GROUP_ALL | CMD_INACTIVE, b"\x00\x00")


def set_address_command(address: int) -> bytes:
    """Give the next unaddressed chip the address ``address`` (``55 AA 40 05 aa 00 crc``)."""
    _check_byte(address, "address")
    return encode_command(TYPE_CMD | GROUP_SINGLE | CMD_SET_ADDRESS, bytes((address, 0)))


def fast_uart_command() -> bytes:
    """Register 0x28 write that switches the chip to 1,000,000 baud."""
    return write_register_command(REG_FAST_UART, FAST_UART_VALUE)


# --------------------------------------------------------------------------- PLL


@dataclass(frozen=True, slots=True)
class PLLSetting:
    """PLL0 dividers: ``f = 25 MHz * fb / (refdiv * postdiv1 * postdiv2)``.

    Attributes
    ----------
    fb_divider, refdiv, postdiv1, postdiv2 : int
        Feedback, reference and the two post dividers.
    vdo_scale : int
        First register byte (0x40, or 0x50 when the VCO runs at >= 2400 MHz).
    """

    fb_divider: int
    refdiv: int
    postdiv1: int
    postdiv2: int
    vdo_scale: int

    @property
    def frequency_mhz(self) -> float:
        """Output frequency [MHz]."""
        return XTAL_MHZ * self.fb_divider / (self.refdiv * self.postdiv1 * self.postdiv2)

    @property
    def vco_mhz(self) -> float:
        """VCO frequency ``25 MHz * fb / refdiv`` [MHz]."""
        return XTAL_MHZ * self.fb_divider / self.refdiv

    @property
    def register_value(self) -> bytes:
        """The 4 register bytes ``vdo | fb | refdiv | ((pd1-1) << 4 | (pd2-1))``."""
        post = ((self.postdiv1 - 1) << 4) | (self.postdiv2 - 1)
        return bytes((self.vdo_scale, self.fb_divider, self.refdiv, post))


def _vdo_for(fb: int, refdiv: int) -> int:
    return 0x50 if XTAL_MHZ * fb / refdiv >= VCO_HIGH_MHZ else 0x40


def pll_setting(frequency_mhz: float, *, fb_min: int = PLL_FB_MIN,
                fb_max: int = PLL_FB_MAX) -> PLLSetting:
    """PLL dividers for a target frequency (the search of current ESP-Miner firmware).

    Searched: ``refdiv`` in {2, 1}, ``postdiv1`` in 7..1, ``postdiv2`` in 7..1 with
    ``postdiv1 > postdiv2``, ``fb = round(f * refdiv * pd1 * pd2 / 25)`` within
    ``[fb_min, fb_max]``. Preference: closest frequency; then lowest VCO frequency; then lowest
    ``postdiv1 * postdiv2`` (ties within 1e-4 MHz).

    Parameters
    ----------
    frequency_mhz : float
        Target frequency [MHz].
    fb_min, fb_max : int
        Feedback divider range (BM1366: 144..235).

    Returns
    -------
    PLLSetting

    Raises
    ------
    BM1366ValueError
        Non-finite or non-positive target, or no divider combination in range.
    """
    try:
        target = float(frequency_mhz)
    except (TypeError, ValueError) as exc:
        raise BM1366ValueError(f"frequency_mhz: expected a number, got {frequency_mhz!r}") from exc
    if not math.isfinite(target) or target <= 0:
        raise BM1366ValueError(f"frequency_mhz: must be finite and > 0, got {frequency_mhz!r}")
    if not 1 <= fb_min <= fb_max <= 255:
        raise BM1366ValueError(f"fb range must satisfy 1 <= fb_min <= fb_max <= 255, "
                               f"got {fb_min}..{fb_max}")
    eps = 1e-4
    best: tuple[float, float, int] | None = None
    best_setting: PLLSetting | None = None
    for refdiv in (2, 1):
        for pd1 in range(7, 0, -1):
            for pd2 in range(7, 0, -1):
                if pd1 <= pd2:
                    continue
                div = refdiv * pd1 * pd2
                fb = math.floor(target / XTAL_MHZ * div + 0.5)  # C round(): half away from 0
                if not fb_min <= fb <= fb_max:
                    continue
                diff = abs(target - XTAL_MHZ * fb / div)
                vco = XTAL_MHZ * fb / refdiv
                prod = pd1 * pd2
                if best is None:
                    better = True
                else:
                    bdiff, bvco, bprod = best
                    better = (diff < bdiff - eps
                              or (abs(diff - bdiff) < eps and vco < bvco - eps)
                              or (abs(diff - bdiff) < eps and abs(vco - bvco) < eps
                                  and prod < bprod))
                if better:
                    best = (diff, vco, prod)
                    best_setting = PLLSetting(fb, refdiv, pd1, pd2, _vdo_for(fb, refdiv))
    if best_setting is None:
        raise BM1366ValueError(
            f"no PLL setting reaches {target} MHz with fb in {fb_min}..{fb_max}")
    return best_setting


def pll_register_value(frequency_mhz: float) -> bytes:
    """Register 0x08 value (4 bytes) for a target frequency [MHz] (see :func:`pll_setting`)."""
    return pll_setting(frequency_mhz).register_value


def decode_pll_register(value: int | bytes | bytearray) -> PLLSetting:
    """Inverse of :attr:`PLLSetting.register_value`: the dividers of a register 0x08 value.

    Parameters
    ----------
    value : int or bytes
        u32 register value or its 4 bytes.

    Returns
    -------
    PLLSetting

    Raises
    ------
    BM1366ValueError
        A zero divider (no frequency).
    """
    raw = _register_word(value)
    vdo, fb, refdiv, post = raw
    if fb == 0 or refdiv == 0:
        raise BM1366ValueError(f"PLL value {raw.hex()} has a zero divider")
    return PLLSetting(fb, refdiv, (post >> 4) + 1, (post & 0x0F) + 1, vdo)


def pll_command(frequency_mhz: float) -> bytes:
    """Frame writing PLL0 on all chips for a target frequency [MHz]."""
    return write_register_command(REG_PLL0, pll_register_value(frequency_mhz))


# --------------------------------------------------------------------------- ticket mask


def _reverse_bits(byte: int) -> int:
    return int(f"{byte:08b}"[::-1], 2)


def _ticket_power(difficulty: float) -> int:
    try:
        d = float(difficulty)
    except (TypeError, ValueError) as exc:
        raise BM1366ValueError(f"difficulty: expected a number, got {difficulty!r}") from exc
    if not math.isfinite(d) or d <= 0 or d > 2**32:
        raise BM1366ValueError(f"difficulty: must be in (0, 2**32], got {difficulty!r}")
    return max(1, math.ceil(d)).bit_length() - 1


def ticket_difficulty(difficulty: float) -> int:
    """Ticket difficulty a chip really uses for a requested one.

    ``ceil(difficulty)`` rounded down to a power of two (ESP-Miner); at least 1.

    Parameters
    ----------
    difficulty : float
        Requested difficulty [1], in (0, 2**32].

    Returns
    -------
    int
        Effective ticket difficulty (a power of two) [1].
    """
    return 1 << _ticket_power(difficulty)


def ticket_mask(difficulty: float) -> bytes:
    """Register 0x14 value for a difficulty: mask ``2**k - 1`` with every byte bit-reversed.

    Parameters
    ----------
    difficulty : float
        Requested difficulty [1] (see :func:`ticket_difficulty`).

    Returns
    -------
    bytes
        4 register bytes, e.g. 256 -> ``00 00 00 ff``, 512 -> ``00 00 80 ff``.
    """
    mask = (1 << _ticket_power(difficulty)) - 1
    return bytes(_reverse_bits(b) for b in mask.to_bytes(4, "big"))


def difficulty_from_ticket_mask(value: int | bytes | bytearray) -> int:
    """Inverse of :func:`ticket_mask`: the ticket difficulty of a register 0x14 value.

    Raises
    ------
    BM1366ValueError
        The value is not of the form ``2**k - 1`` after un-reversing the bytes.
    """
    raw = _register_word(value)
    mask = int.from_bytes(bytes(_reverse_bits(b) for b in raw), "big")
    if mask & (mask + 1):
        raise BM1366ValueError(f"ticket mask 0x{mask:08x} is not of the form 2**k - 1")
    return mask + 1


def ticket_mask_command(difficulty: float) -> bytes:
    """Frame writing the ticket mask on all chips for a difficulty [1]."""
    return write_register_command(REG_TICKET_MASK, ticket_mask(difficulty))


# --------------------------------------------------------------------------- version rolling


def version_mask_value(mask: int = DEFAULT_VERSION_MASK) -> bytes:
    """Register 0xA4 value ``90 00 | (mask >> 13) as u16 big-endian``.

    Parameters
    ----------
    mask : int
        Version-rolling mask; only bits 13..28 can be rolled by the chip.

    Raises
    ------
    BM1366ValueError
        Bits outside 13..28.
    """
    m = _check_u32(mask, "mask")
    if m & ~DEFAULT_VERSION_MASK:
        raise BM1366ValueError(f"mask 0x{m:08x} has bits outside 0x{DEFAULT_VERSION_MASK:08x}")
    return b"\x90\x00" + (m >> 13).to_bytes(2, "big")


def version_mask_from_register(value: int | bytes | bytearray) -> int:
    """Inverse of :func:`version_mask_value`: the rolling mask in a register 0xA4 value."""
    raw = _register_word(value)
    return int.from_bytes(raw[2:4], "big") << 13


def version_mask_command(mask: int = DEFAULT_VERSION_MASK) -> bytes:
    """Frame writing the version-rolling mask on all chips (default ``... A4 90 00 FF FF 1C``)."""
    return write_register_command(REG_VERSION_ROLLING, version_mask_value(mask))


def hash_counting_number(frequency_mhz: float, *, n_chips: int = 1,
                         cores: int = CORE_COUNT, fraction: float = 1.0) -> int:
    """Register 0x10 (hash counting number) as current ESP-Miner computes it.

    ``2**32 / next_pow2(cores) / next_pow2(n_chips) * 25 / f * 0.5 * fraction``.

    Parameters
    ----------
    frequency_mhz : float
        Chip frequency [MHz].
    n_chips : int
        Chips on the chain.
    cores : int
        Cores per chip.
    fraction : float
        Fraction of the nonce space (1.0 = full).

    Returns
    -------
    int
        u32 register value.
    """
    f = float(frequency_mhz)
    if not math.isfinite(f) or f <= 0 or n_chips < 1 or cores < 1 or not 0 < fraction <= 1:
        raise BM1366ValueError("hash_counting_number: bad frequency, chip count, cores or "
                               "fraction")
    cores_up = 1 << (cores - 1).bit_length()
    chips_up = 1 << (n_chips - 1).bit_length()
    return int(2**32 / cores_up / chips_up * XTAL_MHZ / f * 0.5 * fraction) & 0xFFFFFFFF


# --------------------------------------------------------------------------- jobs


def reverse_words(data: bytes | bytearray) -> bytes:
    """Reverse the order of the 4-byte words of ``data`` (bytes inside each word unchanged)."""
    raw = _as_bytes(data, "data")
    if len(raw) % 4:
        raise BM1366ValueError(f"data: length {len(raw)} is not a multiple of 4")
    return b"".join(raw[i : i + 4] for i in range(len(raw) - 4, -1, -4))


def next_job_id(job_id: int | None) -> int:
    """Next chip job id: ``(job_id + 8) % 128``; the first one (``None``) is 8 as in ESP-Miner."""
    if job_id is None:
        return 8
    _check_byte(job_id, "job_id")
    return (job_id + 8) % 128


@dataclass(frozen=True, slots=True)
class BM1366Job:
    """One job as the chip sees it, with the header fields in header byte order.

    Attributes
    ----------
    job_id : int
        Chip job id (a multiple of 8 below 128 for replies to map back to it).
    version : int
        Block version of the job (rolled bits are OR-ed in by the chip).
    prevhash : bytes
        Previous-block hash exactly as in header bytes 4..35 [32 bytes]
        (``mining.swap_words(notify_prevhash)``).
    merkle_root : bytes
        Merkle root as hashed, header bytes 36..67 [32 bytes].
    ntime : int
        Block time [s since the epoch].
    nbits : int
        Compact network target.
    starting_nonce : int
        Starting nonce field (0 in ESP-Miner).
    num_midstates : int
        Midstate count field (1 for the BM1366, which computes its own midstates).
    """

    job_id: int
    version: int
    prevhash: bytes
    merkle_root: bytes
    ntime: int
    nbits: int
    starting_nonce: int = 0
    num_midstates: int = 1

    def __post_init__(self) -> None:
        _check_byte(self.job_id, "job_id")
        _check_byte(self.num_midstates, "num_midstates")
        for name in ("version", "ntime", "nbits", "starting_nonce"):
            _check_u32(getattr(self, name), name)
        for name in ("prevhash", "merkle_root"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != 32:
                raise BM1366ValueError(f"{name}: expected 32 bytes, got {value!r}")

    @classmethod
    def from_stratum(cls, job_id: int, *, version: int | str, prevhash: str | bytes,
                     merkle_root: str | bytes, ntime: int | str, nbits: int | str,
                     starting_nonce: int = 0) -> BM1366Job:
        """A job from Stratum fields.

        Parameters
        ----------
        job_id : int
            Chip job id.
        version, ntime, nbits : int or str
            As in ``mining.notify`` (int or big-endian hex).
        prevhash : str or bytes
            ``mining.notify`` prevhash (each 4-byte word byte-swapped) [32 bytes].
        merkle_root : str or bytes
            Merkle root as hashed [32 bytes] (e.g.
            ``asiclab.protocol.mining.merkle_root_from_coinbase``).
        starting_nonce : int
            Starting nonce field.

        Returns
        -------
        BM1366Job
        """
        def u32(v: int | str, name: str) -> int:
            if isinstance(v, str):
                try:
                    return int(v, 16)
                except ValueError as exc:
                    raise BM1366ValueError(f"{name}: not hex: {v!r}") from exc
            return _check_u32(v, name)

        def b32(v: str | bytes, name: str) -> bytes:
            try:
                raw = bytes.fromhex(v) if isinstance(v, str) else bytes(v)
            except ValueError as exc:
                raise BM1366ValueError(f"{name}: not hex: {v!r}") from exc
            if len(raw) != 32:
                raise BM1366ValueError(f"{name}: expected 32 bytes, got {len(raw)}")
            return raw

        try:
            prev = swap_words(b32(prevhash, "prevhash"))
        except MiningError as exc:  # pragma: no cover - length already checked
            raise BM1366ValueError(str(exc)) from exc
        return cls(job_id, u32(version, "version"), prev, b32(merkle_root, "merkle_root"),
                   u32(ntime, "ntime"), u32(nbits, "nbits"), starting_nonce)

    def payload(self) -> bytes:
        """The 82-byte job payload (see the module docstring for the layout)."""
        return (bytes((self.job_id, self.num_midstates))
                + self.starting_nonce.to_bytes(4, "little")
                + self.nbits.to_bytes(4, "little")
                + self.ntime.to_bytes(4, "little")
                + reverse_words(self.merkle_root)
                + reverse_words(self.prevhash)
                + self.version.to_bytes(4, "little"))

    def frame(self) -> bytes:
        """The job frame as sent on the wire (88 bytes)."""
        return encode_job_frame(self.payload())

    @classmethod
    def from_payload(cls, payload: bytes | bytearray) -> BM1366Job:
        """Inverse of :meth:`payload`.

        Raises
        ------
        FrameError
            Wrong payload length.
        """
        raw = _as_bytes(payload, "payload")
        if len(raw) != JOB_PAYLOAD_LENGTH:
            raise FrameError(f"job payload: expected {JOB_PAYLOAD_LENGTH} bytes, got {len(raw)}")
        return cls(
            job_id=raw[0],
            num_midstates=raw[1],
            starting_nonce=int.from_bytes(raw[2:6], "little"),
            nbits=int.from_bytes(raw[6:10], "little"),
            ntime=int.from_bytes(raw[10:14], "little"),
            merkle_root=reverse_words(raw[14:46]),
            prevhash=reverse_words(raw[46:78]),
            version=int.from_bytes(raw[78:82], "little"),
        )

    def header_prefix(self, version: int | None = None) -> bytes:
        """First 76 header bytes, with ``version`` (default the job's) as the hashed version."""
        v = self.version if version is None else _check_u32(version, "version")
        return (v.to_bytes(4, "little") + self.prevhash + self.merkle_root
                + self.ntime.to_bytes(4, "little") + self.nbits.to_bytes(4, "little"))

    def header(self, nonce_bytes: bytes | bytearray, version: int | None = None) -> bytes:
        """The 80-byte header for raw nonce bytes (reply bytes 2..5) and a rolled version."""
        nb = _as_bytes(nonce_bytes, "nonce_bytes")
        if len(nb) != 4:
            raise BM1366ValueError(f"nonce_bytes: expected 4 bytes, got {len(nb)}")
        return self.header_prefix(version) + nb


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True, slots=True)
class NonceReply:
    """A job result (nonce) from a chip.

    Attributes
    ----------
    nonce_bytes : bytes
        Reply bytes 2..5 = header bytes 76..79 [4 bytes].
    midstate : int
        Reply byte 6 (midstate number; not used for the BM1366).
    id_byte : int
        Reply byte 7: job id (bits 3..7) and small core (bits 0..2).
    version_field : int
        Reply bytes 8..9 as a big-endian u16 (rolled version bits >> 13).
    raw : bytes
        The 11-byte reply.
    """

    nonce_bytes: bytes
    midstate: int
    id_byte: int
    version_field: int
    raw: bytes

    @property
    def job_id(self) -> int:
        """Chip job id ``id & 0xF8``."""
        return self.id_byte & 0xF8

    @property
    def small_core(self) -> int:
        """Small core ``id & 0x07``."""
        return self.id_byte & 0x07

    @property
    def nonce_h(self) -> int:
        """Big-endian value of the nonce bytes (carries core and chip address)."""
        return int.from_bytes(self.nonce_bytes, "big")

    @property
    def nonce(self) -> int:
        """Nonce as the u32 of the ``mining.submit`` hex: little-endian value of the bytes."""
        return int.from_bytes(self.nonce_bytes, "little")

    @property
    def core(self) -> int:
        """Core that found the nonce, ``(nonce_h >> 25) & 0x7F``."""
        return (self.nonce_h >> 25) & 0x7F

    @property
    def chip_address(self) -> int:
        """Address of the chip that found the nonce, ``(nonce_h >> 17) & 0xFF``."""
        return (self.nonce_h >> 17) & 0xFF

    def chip_index(self, address_interval: int) -> int:
        """Chip index ``chip_address // address_interval`` (interval = 256 // number of chips)."""
        if address_interval < 1:
            raise BM1366ValueError(f"address_interval must be >= 1, got {address_interval}")
        return self.chip_address // address_interval

    @property
    def version_bits(self) -> int:
        """Rolled version bits ``version_field << 13``."""
        return self.version_field << 13

    def rolled_version(self, job_version: int) -> int:
        """Version the chip hashed: ``job_version | version_bits``."""
        return (_check_u32(job_version, "job_version") | self.version_bits) & 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class RegisterReply:
    """A register read reply.

    Attributes
    ----------
    value : int
        Register value (u32, big-endian on the wire).
    chip_address : int
        Address of the replying chip.
    register : int
        Register address.
    raw : bytes
        The 11-byte reply.
    """

    value: int
    chip_address: int
    register: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class ChipIdReply:
    """Reply to a read of register 0 (chip id).

    Attributes
    ----------
    chip_id : int
        Chip id (0x1366 for a BM1366).
    core_count : int
        Core-count byte as reported (a real BM1366 reports 0 here).
    address : int
        Address byte of the value.
    chip_address : int
        Address of the replying chip (reply byte 6).
    raw : bytes
        The 11-byte reply.
    """

    chip_id: int
    core_count: int
    address: int
    chip_address: int
    raw: bytes


Reply = NonceReply | RegisterReply | ChipIdReply


def encode_reply(body: bytes | bytearray, *, job: bool) -> bytes:
    """An 11-byte reply ``AA 55 | body[8] | flags`` with a valid CRC-5 (for emulators and tests).

    Parameters
    ----------
    body : bytes
        Reply bytes 2..9 [8 bytes].
    job : bool
        Set the job-result flag (bit 7).

    Returns
    -------
    bytes
        The reply; ``crc5(reply[2:]) == 0``.
    """
    b = _as_bytes(body, "body")
    if len(b) != 8:
        raise BM1366ValueError(f"body: expected 8 bytes, got {len(b)}")
    top = _FLAG_JOB if job else 0
    crc = crc5(b + bytes((top,)), 67)
    return PREAMBLE_REPLY + b + bytes((top | crc,))


def encode_nonce_reply(nonce_bytes: bytes | bytearray, job_id: int, small_core: int = 0,
                       version_field: int = 0, midstate: int = 0) -> bytes:
    """A job-result reply (see :class:`NonceReply` for the fields)."""
    nb = _as_bytes(nonce_bytes, "nonce_bytes")
    if len(nb) != 4:
        raise BM1366ValueError(f"nonce_bytes: expected 4 bytes, got {len(nb)}")
    _check_byte(job_id, "job_id")
    if job_id & 0x07:
        raise BM1366ValueError(f"job_id {job_id} is not a multiple of 8")
    if not 0 <= small_core <= 7:
        raise BM1366ValueError(f"small_core: expected 0..7, got {small_core}")
    if not 0 <= version_field <= 0xFFFF:
        raise BM1366ValueError(f"version_field: expected 0..0xFFFF, got {version_field}")
    _check_byte(midstate, "midstate")
    body = nb + bytes((midstate, job_id | small_core)) + version_field.to_bytes(2, "big")
    return encode_reply(body, job=True)


def encode_register_reply(value: int, chip_address: int, register: int) -> bytes:
    """A register-read reply."""
    body = (_check_u32(value, "value").to_bytes(4, "big")
            + bytes((_check_byte(chip_address, "chip_address"),
                     _check_byte(register, "register"), 0, 0)))
    return encode_reply(body, job=False)


def encode_chip_id_reply(chip_address: int = 0, *, core_count: int = 0,
                         chip_id: int = CHIP_ID) -> bytes:
    """Reply to a chip-id read; the defaults give the real ``AA 55 13 66 00 00 00 00 00 00 05``."""
    if not 0 <= chip_id <= 0xFFFF:
        raise BM1366ValueError(f"chip_id: expected 0..0xFFFF, got {chip_id}")
    _check_byte(core_count, "core_count")
    _check_byte(chip_address, "chip_address")
    value = (chip_id << 16) | (core_count << 8) | chip_address
    return encode_register_reply(value, chip_address, REG_CHIP_ID)


def decode_reply(frame: bytes | bytearray) -> Reply:
    """Decode and check one 11-byte chip reply.

    Parameters
    ----------
    frame : bytes
        ``AA 55 ...`` (11 bytes).

    Returns
    -------
    NonceReply, ChipIdReply or RegisterReply
        Job results have flag bit 7 set; a read of register 0 is a :class:`ChipIdReply`.

    Raises
    ------
    FrameError
        Wrong length or preamble.
    CRCError
        CRC-5 over bytes 2..10 is not 0.
    """
    raw = _as_bytes(frame, "frame")
    if len(raw) != REPLY_LENGTH:
        raise FrameError(f"reply: expected {REPLY_LENGTH} bytes, got {len(raw)}")
    if raw[:2] != PREAMBLE_REPLY:
        raise FrameError(f"reply: bad preamble {raw[:2].hex()}")
    if crc5(raw[2:]) != 0:
        raise CRCError(f"reply CRC-5 mismatch: {raw.hex()}")
    if raw[10] & _FLAG_JOB:
        return NonceReply(raw[2:6], raw[6], raw[7], int.from_bytes(raw[8:10], "big"), raw)
    value = int.from_bytes(raw[2:6], "big")
    if raw[7] == REG_CHIP_ID:
        return ChipIdReply(value >> 16, (value >> 8) & 0xFF, value & 0xFF, raw[6], raw)
    return RegisterReply(value, raw[6], raw[7], raw)


# --------------------------------------------------------------------------- stream decoders


class _StreamDecoder:
    """Byte buffer with absolute positions, arrival stamps and loss counters."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._base = 0  # absolute stream position of _buf[0]
        self._stamps: deque[tuple[int, Any]] = deque()  # (absolute end position, stamp)
        self.n_frames = 0
        self.n_crc_errors = 0
        self.n_resyncs = 0
        self.n_bytes_discarded = 0
        self._discarding = False

    @property
    def pending(self) -> int:
        """Bytes buffered but not yet part of a decoded frame [bytes]."""
        return len(self._buf)

    def stats(self) -> dict[str, int]:
        """Counters: frames, CRC errors, resyncs, discarded bytes (and subclass extras)."""
        return {"n_frames": self.n_frames, "n_crc_errors": self.n_crc_errors,
                "n_resyncs": self.n_resyncs, "n_bytes_discarded": self.n_bytes_discarded}

    def reset(self) -> None:
        """Forget buffered bytes (counters are kept)."""
        self._base += len(self._buf)
        self._buf.clear()
        self._stamps.clear()
        self._discarding = False

    def _append(self, data: Any, stamp: Any) -> None:
        chunk = _as_bytes(data, "data")
        if not chunk:
            return
        self._buf += chunk
        self._stamps.append((self._base + len(self._buf), stamp))

    def _discard(self, n: int) -> None:
        if n <= 0:
            return
        if not self._discarding:
            self.n_resyncs += 1
            self._discarding = True
        self.n_bytes_discarded += n
        self._consume(n)

    def _consume(self, n: int) -> None:
        del self._buf[:n]
        self._base += n
        while self._stamps and self._stamps[0][0] <= self._base:
            self._stamps.popleft()

    def _take(self, n: int) -> tuple[bytes, Any]:
        end = self._base + n
        stamp = None
        for pos, s in self._stamps:
            if pos >= end:
                stamp = s
                break
        frame = bytes(self._buf[:n])
        self._consume(n)
        self._discarding = False
        self.n_frames += 1
        return frame, stamp

    def _seek(self, preamble: bytes) -> bool:
        """Drop bytes before the first preamble; False when no complete preamble is buffered."""
        i = self._buf.find(preamble)
        if i < 0:
            keep = 1 if self._buf and self._buf[-1] == preamble[0] else 0
            self._discard(len(self._buf) - keep)
            return False
        self._discard(i)
        return True


class FrameReader(_StreamDecoder):
    """Decode chip -> host replies from arbitrary byte chunks.

    The reader finds the ``AA 55`` preamble, checks the CRC-5 of each 11-byte candidate, drops
    bad frames and resynchronises on the next preamble. Corruption never stops it and never loses
    a good frame that follows a bad one:

    * a candidate whose CRC fails is counted in ``n_crc_errors``; the search resumes one byte
      later (so a preamble inside a damaged frame is still found);
    * a CRC-valid candidate that contains another preamble (at offsets 1..10 -- the signature of a
      frame that lost bytes, followed by the next frame) is dropped and counted in ``n_overlaps``
      when the overlapping later candidate is itself CRC-valid. Until the later candidate is
      complete the decision waits for more bytes; :meth:`flush` decides with what is buffered;
    * bytes outside accepted frames are counted in ``n_bytes_discarded``, in ``n_resyncs`` runs;
    * with ``strict_flags`` (default) a candidate whose reserved flag bits 5..6 are set is treated
      like a CRC failure and counted in ``n_bad_flags`` (every real reply seen has them clear; a
      CRC-5 alone lets 1 in 32 damaged candidates through, this check 1 in 128).

    A CRC-5 cannot make damaged data impossible to accept: a frame built from the pieces of
    damaged frames passes with probability 1/128 (``strict_flags``). The driver therefore also
    verifies every nonce by SHA256d against its job.

    Each chunk may carry a ``stamp`` (e.g. host receive times); a frame gets the stamp of the
    chunk that delivered its last byte.

    Parameters
    ----------
    strict_flags : bool
        Reject replies whose reserved flag bits (0x60 of the last byte) are set.

    Attributes
    ----------
    n_frames, n_crc_errors, n_bad_flags, n_overlaps, n_resyncs, n_bytes_discarded : int
        Counters since creation.
    """

    def __init__(self, *, strict_flags: bool = True) -> None:
        super().__init__()
        self.strict_flags = bool(strict_flags)
        self.n_overlaps = 0
        self.n_bad_flags = 0

    def stats(self) -> dict[str, int]:
        """Counters: frames, CRC errors, bad flags, overlaps, resyncs, discarded bytes."""
        out = super().stats()
        out["n_overlaps"] = self.n_overlaps
        out["n_bad_flags"] = self.n_bad_flags
        return out

    def _acceptable(self, start: int) -> bool:
        buf = self._buf
        return crc5(bytes(buf[start + 2 : start + REPLY_LENGTH])) == 0 and not (
            self.strict_flags and buf[start + REPLY_LENGTH - 1] & _FLAG_RESERVED)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Reply]:
        """Add bytes; return the replies completed by them (CRC-checked, decoded)."""
        return [r for r, _ in self.feed_stamped(data, None)]

    def flush(self) -> list[Reply]:
        """Decide pending overlaps with the bytes buffered (call when the line is idle)."""
        return [r for r, _ in self._run(final=True)]

    def feed_stamped(self, data: bytes | bytearray | memoryview,
                     stamp: Any) -> list[tuple[Reply, Any]]:
        """As :meth:`feed`, returning ``(reply, stamp of the chunk that completed it)`` pairs."""
        self._append(data, stamp)
        return self._run(final=False)

    def flush_stamped(self) -> list[tuple[Reply, Any]]:
        """As :meth:`flush`, with stamps."""
        return self._run(final=True)

    def _run(self, *, final: bool) -> list[tuple[Reply, Any]]:
        out: list[tuple[Reply, Any]] = []
        buf = self._buf
        n = REPLY_LENGTH
        while self._seek(PREAMBLE_REPLY):
            if len(buf) < n:
                break
            if crc5(bytes(buf[2:n])) != 0:
                self.n_crc_errors += 1
                self._discard(1)
                continue
            if self.strict_flags and buf[n - 1] & _FLAG_RESERVED:
                self.n_bad_flags += 1
                self._discard(1)
                continue
            # Other preambles inside the candidate (or straddling its last byte)?
            if buf[n - 1] == PREAMBLE_REPLY[0] and len(buf) == n and not final:
                break  # one more byte decides whether a preamble straddles the end
            wait = False
            later = -1
            k = buf.find(PREAMBLE_REPLY, 1, n + 1)
            while k > 0:
                if len(buf) < k + n:
                    wait = not final  # the overlapping candidate is not complete yet
                    break
                if self._acceptable(k):
                    later = k
                    break
                k = buf.find(PREAMBLE_REPLY, k + 1, n + 1)
            if wait:
                break
            if later > 0:
                self.n_overlaps += 1
                self._discard(later)
                continue
            frame, stamp = self._take(n)
            out.append((decode_reply(frame), stamp))
        return out


class CommandReader(_StreamDecoder):
    """Decode host -> chip frames (commands and jobs) from byte chunks (chip side).

    Frames start with ``55 AA``; the length byte gives the frame size. Candidates with an
    impossible header or length, or a bad CRC, are dropped (``n_crc_errors`` counts CRC failures,
    ``n_bad_headers`` the rest) and the search resumes one byte later.
    """

    def __init__(self) -> None:
        super().__init__()
        self.n_bad_headers = 0

    def stats(self) -> dict[str, int]:
        """Counters: frames, CRC errors, bad headers, resyncs, discarded bytes."""
        out = super().stats()
        out["n_bad_headers"] = self.n_bad_headers
        return out

    def feed(self, data: bytes | bytearray | memoryview) -> list[CommandFrame]:
        """Add bytes; return the frames completed by them."""
        self._append(data, None)
        out: list[CommandFrame] = []
        buf = self._buf
        while self._seek(PREAMBLE_COMMAND):
            if len(buf) < 4:
                break
            header, length = buf[2], buf[3]
            is_job = bool(header & TYPE_JOB)
            plausible = (bool(header & (TYPE_JOB | TYPE_CMD)) and not (
                header & TYPE_JOB and header & TYPE_CMD)
                and (length >= 4 if is_job else 3 <= length))
            if not plausible:
                self.n_bad_headers += 1
                self._discard(1)
                continue
            total = length + 2
            if len(buf) < total:
                break
            try:
                frame = decode_command_frame(bytes(buf[:total]))
            except FrameError as exc:
                if isinstance(exc, CRCError):
                    self.n_crc_errors += 1
                else:  # pragma: no cover - plausibility checked above
                    self.n_bad_headers += 1
                self._discard(1)
                continue
            self._take(total)
            out.append(frame)
        return out


def iter_replies(chunks: Iterable[bytes]) -> list[Reply]:
    """Decode a whole sequence of byte chunks (convenience for tests and offline traces)."""
    reader = FrameReader()
    out: list[Reply] = []
    for c in chunks:
        out.extend(reader.feed(c))
    out.extend(reader.flush())
    return out
