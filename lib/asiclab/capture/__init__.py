"""Topic of ``notebooks/01_capture.ipynb``: making a capture dataset.

- :mod:`asiclab.capture.workflow`: the notebook's ``PARAMS``, the sources (``sim``, ``import``,
  ``live``), the per-operating-point summary and the recorded results.
- :mod:`asiclab.capture.plots`: the notebook's figures.
- :mod:`asiclab.capture.importers`: existing share logs into the capture schema, every share
  re-verified by SHA256d.
- :mod:`asiclab.capture.live`: live voltage/frequency sweeps of real, emulated and CPU miners.
- :mod:`asiclab.capture.journal`: the crash-safe append-only journal a live capture streams to.
- :mod:`asiclab.capture.server`: the Stratum capture server that verifies and journals shares.
"""
