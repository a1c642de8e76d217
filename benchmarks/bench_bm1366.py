"""Benchmark: BM1366 reply decoding throughput (clean and corrupted streams).

Prints replies decoded per second by :class:`asiclab.protocol.bm1366.FrameReader`, against the most
a
1 Mbaud UART can carry (11-byte replies, 10 bits per byte on the wire: 9,091 replies/s).
"""

from __future__ import annotations

import time

import numpy as np

from asiclab.protocol import bm1366

N = 200_000
UART_MAX = 1_000_000 / 10 / 11


def _stream(rng: np.random.Generator, corrupt: float) -> tuple[bytes, int]:
    frames = []
    for i in range(N):
        f = bytearray(bm1366.encode_nonce_reply(rng.bytes(4), (i % 16) * 8, i % 8))
        if rng.random() < corrupt:
            f[rng.integers(2, 11)] ^= 1 << int(rng.integers(0, 8))
        frames.append(bytes(f))
    return b"".join(frames), N


def main() -> None:
    rng = np.random.default_rng(1)
    print("BM1366 FrameReader decoding (pure Python)")
    for corrupt in (0.0, 0.05):
        data, n = _stream(rng, corrupt)
        reader = bm1366.FrameReader()
        t0 = time.perf_counter()
        out = 0
        for k in range(0, len(data), 4096):  # arrive in 4 KiB chunks, as from a serial port
            out += len(reader.feed(data[k:k + 4096]))
        dt = time.perf_counter() - t0
        print(f"  {corrupt:4.0%} corrupted: {n / dt:12,.0f} replies/s  ({out} delivered, "
              f"{reader.n_crc_errors} CRC errors, {reader.n_bytes_discarded} bytes discarded); "
              f"UART maximum at 1 Mbaud: {UART_MAX:,.0f}/s -> {n / dt / UART_MAX:.0f}x headroom")


if __name__ == "__main__":
    main()
