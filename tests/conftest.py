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


_OUTPUTS = ("figures", "papermill_runs")


def _outputs_listing() -> dict[str, tuple[int, int]]:
    """Files of the checkout's output folders with (size, mtime) -- tests must not touch them."""
    out = {}
    for d in _OUTPUTS:
        for p in (ROOT / d).rglob("*"):
            if p.is_file():
                st = p.stat()
                out[str(p.relative_to(ROOT))] = (st.st_size, st.st_mtime_ns)
    return out


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config._asiclab_outputs = _outputs_listing()  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any test wrote into the checkout's ``figures/`` or ``papermill_runs/``."""
    before = getattr(session.config, "_asiclab_outputs", None)
    if before is None:
        return
    after = _outputs_listing()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed:
        session.config.get_terminal_writer().line(
            "tests wrote into the checkout's output folders (they must use temporary "
            f"directories): {changed[:10]}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
