"""Thermodynamic Probability Filter (TPF): can early SHA-256 rounds predict a share?

Tests the claim of "Speaking to Silicon" (arXiv:2601.12032) that aborting a hash after 5 of its
64 rounds gives a "92.19 % energy reduction" (which is ``1 - 5/64`` by definition).

- :mod:`asiclab.tpf.engine`     round-level SHA256d engine (numba), exact round accounting
- :mod:`asiclab.tpf.predict`    can the state after round r predict a share? (AUC, MI, power)
- :mod:`asiclab.tpf.energy`     energy per valid share of abort policies, J/TH from telemetry
- :mod:`asiclab.tpf.leak`       the "hardware-informed" windowed reproduction and its label leak
- :mod:`asiclab.tpf.formal`     the formal claims (independence => no leakage) as functions
- :mod:`asiclab.tpf.workflow`   notebook parameters and recorded results of 04_tpf_energy
- :mod:`asiclab.tpf.plots`      the figures
"""

from __future__ import annotations

from asiclab.tpf.engine import EngineError, Job

__all__ = ["EngineError", "Job"]
