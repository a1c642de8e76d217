"""asiclab: a reproducible research suite for testing claims about mining ASICs as computers.

The package is organised as:

- :mod:`asiclab.dataset`   capture schema (xarray), NetCDF I/O and validation
- :mod:`asiclab.protocol.mining`    pure Bitcoin mining primitives (SHA256d, headers, difficulty)
- :mod:`asiclab.capture.importers` readers of existing share logs into the capture schema
- :mod:`asiclab.devices`   one driver or model per file (simulated chip, emulators, real drivers)
- :mod:`asiclab.params`    notebook parameter validation
- :mod:`asiclab.results`   recorded results of a run (``results.json``)
- :mod:`asiclab.plotting`  the single figure style and figure saving
- :mod:`asiclab.runner`    papermill runner, manifest and summary; :mod:`asiclab.cli` its CLI
- :mod:`asiclab.sweep`     parameter grids of runs on dask.distributed (``asiclab sweep``)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("asiclab")
except PackageNotFoundError:  # pragma: no cover - only when run from a source tree without install
    __version__ = "0+unknown"


class AsiclabError(Exception):
    """Base class of every error raised by asiclab."""


__all__ = ["AsiclabError", "__version__"]
