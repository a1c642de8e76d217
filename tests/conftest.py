"""Shared fixtures: isolated run directories, and the optional real data beside the project.

``tests/`` is put on ``sys.path`` so that test modules (imported by pytest with
``--import-mode=importlib``) can ``import vectors`` (the published known-answer vectors, copied
once) and ``import helpers``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from asiclab import plotting, results

ROOT = Path(__file__).resolve().parents[1]
REALDATA = ROOT.parent / "shared" / "realdata"
REFERENCE = ROOT.parent / "shared" / "reference"

if str(ROOT / "tests") not in sys.path:
    sys.path.append(str(ROOT / "tests"))


@pytest.fixture(autouse=True)
def _isolated_run_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test records results and figures into its own temporary folders."""
    base = tmp_path_factory.mktemp("asiclab-run")
    monkeypatch.setenv(results.ENV_RUN_DIR, str(base / "run"))
    monkeypatch.setenv(plotting.ENV_FIGURES_DIR, str(base / "figures"))
    (base / "figures").mkdir()
    results.reset()
    yield base
    results.reset()


@pytest.fixture
def realdata_dir() -> Path:
    """``../shared/realdata``; the test is skipped when it is absent (a user's fresh clone)."""
    if not REALDATA.is_dir():
        pytest.skip("../shared/realdata is absent")
    return REALDATA


@pytest.fixture
def reference_dir() -> Path:
    """``../shared/reference``; skipped when absent (the vectors used are also copied in tests)."""
    if not REFERENCE.is_dir():
        pytest.skip("../shared/reference is absent")
    return REFERENCE
