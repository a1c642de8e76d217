"""Pure byte-level protocol code, no I/O: the layer the drivers, emulators and analyses share.

- :mod:`asiclab.protocol.mining`: SHA256d, block headers, targets and difficulty, nonce search.
- :mod:`asiclab.protocol.bm1366`: BM1366 UART framing, CRC5/CRC16, registers and replies.
- :mod:`asiclab.protocol.stratum`: Stratum v1 error codes, coinbase construction and line framing
  shared by the capture server and the miners.
"""
