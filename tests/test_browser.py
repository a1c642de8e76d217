"""JupyterLab in a real browser: every notebook opened and run there, as a user would.

A ``jupyter lab`` server (the project's ``asiclab`` kernel) is started on a free loopback port with
a token, on copies of the notebooks that carry the quick parameters (``notebooks/params/
quick.yaml``) as papermill would inject them, and a run directory and figures folder in the
test's temporary directory. Headless Debian ``chromium``, driven by Playwright with
``executable_path`` pointing at the system browser (no browser download), opens each notebook,
runs all cells from the *Run* menu, and the test checks that every code cell ran, no cell shows an
error, and the figures render (every inline PNG decoded by the browser). A screenshot of each
notebook goes to the temporary directory (printed with ``-s``).

Without chromium or Playwright the tests skip, saying how to install them
(``apt-get install -y chromium``; ``pip install -e '.[dev]'`` brings Playwright); ``.ci/run``
installs chromium when it is missing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
QUICK = ROOT / "notebooks" / "params" / "quick.yaml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
JUPYTER = Path(sys.executable).parent / "jupyter"
#: Longest a notebook may take in the browser with quick parameters [s] (a hang, not a budget).
RUN_TIMEOUT_S = 400

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the dev extra has it
    sync_playwright = None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium: install it with "
                       "`apt-get install -y chromium` (Debian; .ci/run does this)"),
    pytest.mark.skipif(sync_playwright is None, reason="no playwright: "
                       "`.venv/bin/pip install -e '.[dev]'` (or `pip install playwright`)"),
]

#: A notebook whose third cell fails: the error check must see it.
FAILING = [("parameters", "run_dir = ''"), ("", "x = 1"),
           ("", "raise ValueError('deliberate failure for the browser test')"), ("", "y = 2")]


@dataclass
class Lab:
    """A running JupyterLab server and where its notebooks, runs and screenshots go."""

    url: str
    token: str
    root: Path
    run_dir: Path
    screenshots: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(dest: Path, run_dir: Path) -> None:
    """Copies of the notebooks with the quick parameters injected after the parameters cell."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    quick = yaml.safe_load(QUICK.read_text())["notebooks"]
    for path in NOTEBOOKS:
        nb = load_notebook_node(str(path))
        params = {**(quick.get(path.stem) or {}), "run_dir": str(run_dir)}
        nbformat.write(parameterize_notebook(nb, params), dest / path.name)
    nb = nbformat.v4.new_notebook()
    for tag, src in FAILING:
        cell = nbformat.v4.new_code_cell(src)
        if tag:
            cell.metadata["tags"] = [tag]
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "asiclab", "display_name": "Python (asiclab)",
                                 "language": "python"}
    nbformat.write(nb, dest / "fails.ipynb")


def _settings(dest: Path) -> None:
    """Lab settings: render every cell (no windowing), no news or update pop-ups."""
    files = {"notebook-extension/tracker": {"windowingMode": "none"},
             "apputils-extension/notification": {"fetchNews": "false",
                                                 "checkForUpdates": False}}
    for name, value in files.items():
        path = dest / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("browser")
    root, run_dir, shots = base / "notebooks", base / "run", base / "screenshots"
    for d in (root, run_dir, shots, base / "figures", base / "settings"):
        d.mkdir()
    _prepare(root, run_dir)
    _settings(base / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
           "ASICLAB_FIGURES_DIR": str(base / "figures"), "ASICLAB_RUN_DIR": str(run_dir)}
    cmd = [str(JUPYTER), "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.news_url=", "--MappingKernelManager.default_kernel_name=asiclab"]
    log = (base / "lab.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("jupyter lab did not start:\n"
                                       + (base / "lab.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        yield Lab(url, token, root, run_dir, shots)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        print(f"\nbrowser screenshots: {shots}")


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Any]:
    assert sync_playwright is not None
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


_PROMPTS = "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]" \
           ".map(e => e.textContent.trim())"
_IDLE = "() => /\\| Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent || '')"
_IMAGES = "() => [...document.querySelectorAll('.jp-OutputArea-output img')]" \
          ".map(i => [i.complete, i.naturalWidth])"
_ERRORS = "() => [...document.querySelectorAll('.jp-OutputArea-output')]" \
          ".filter(e => /Traceback|^\\w*(Error|Exception)\\b/m.test(e.textContent) " \
          "&& e.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr')" \
          ".map(e => e.textContent.slice(0, 500))"


def open_notebook(browser: Any, lab: Lab, name: str) -> Any:
    """A page with the notebook open and its kernel idle (the kernel dialog accepted)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # ?reset: a fresh workspace, so that only this notebook is open
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=90_000)
    deadline = time.monotonic() + 90
    while not page.evaluate(_IDLE):
        dialog = page.locator(".jp-Dialog .jp-mod-accept")
        if dialog.count():
            dialog.first.click()
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: the kernel never became idle")
        time.sleep(0.3)
    return page


def close(page: Any, lab: Lab) -> None:
    """Close the page and shut down every kernel of the server (one notebook at a time)."""
    page.close()
    sessions = json.loads(urllib.request.urlopen(
        f"{lab.url}/api/sessions?token={lab.token}", timeout=10).read())
    for s in sessions:
        req = urllib.request.Request(f"{lab.url}/api/sessions/{s['id']}?token={lab.token}",
                                     method="DELETE")
        urllib.request.urlopen(req, timeout=30)


def run_all(page: Any, name: str, timeout_s: float = RUN_TIMEOUT_S) -> float:
    """Run all cells from the Run menu; wait until no cell is queued or running [s taken]."""
    t0 = time.monotonic()
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    # started: some cell queued or numbered; finished: kernel idle and no [*] left
    page.wait_for_function(f"() => ({_PROMPTS})().some(t => t !== '[ ]:')", timeout=60_000)
    page.wait_for_function(f"() => ({_IDLE})() && !({_PROMPTS})().some(t => t.includes('*'))",
                           timeout=timeout_s * 1000, polling=500)
    return time.monotonic() - t0


def save(page: Any, lab: Lab, name: str) -> nbformat.NotebookNode:
    """Save the notebook from the browser and read back what the browser saved."""
    before = (lab.root / name).stat().st_mtime_ns
    page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while (lab.root / name).stat().st_mtime_ns == before:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: the browser did not save the notebook")
        time.sleep(0.2)
    time.sleep(0.5)
    return nbformat.read(lab.root / name, as_version=4)


def check_executed(page: Any, saved: nbformat.NotebookNode, name: str) -> int:
    """Every code cell ran, none shows an error, every image rendered; returns the image count."""
    shown = page.evaluate(_ERRORS)
    assert not shown, f"{name}: error shown in the browser: {shown[0]}"
    code = [c for c in saved.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"
    prompts = page.evaluate(_PROMPTS)
    assert prompts and all(p.startswith("[") and p[1:-2].isdigit() for p in prompts), \
        f"{name}: cells not executed: {prompts}"
    assert all(c.execution_count for c in code), f"{name}: a code cell was not executed"
    images = page.evaluate(_IMAGES)
    assert all(ok and width > 0 for ok, width in images), f"{name}: broken image {images}"
    saved_pngs = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert len(images) == saved_pngs, (name, len(images), saved_pngs)
    return len(images)


def _figures_saved(run_dir: Path, notebook: str) -> int:
    path = run_dir / "figures" / "figures.json"
    if not path.is_file():
        return 0
    return sum(f["notebook"] == notebook for f in json.loads(path.read_text())["figures"])


def test_the_error_check_sees_a_failing_cell(browser, lab: Lab):
    page = open_notebook(browser, lab, "fails.ipynb")
    try:
        run_all(page, "fails.ipynb", timeout_s=60)
        shown = page.evaluate(_ERRORS)
        assert shown and "deliberate failure" in shown[0]
        saved = save(page, lab, "fails.ipynb")
        with pytest.raises(AssertionError, match="error shown"):
            check_executed(page, saved, "fails.ipynb")
        # Run All stops at the error: the cell after it never ran
        assert page.evaluate(_PROMPTS)[-1] == "[ ]:"
        page.screenshot(path=str(lab.screenshots / "fails.png"))
    finally:
        close(page, lab)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_jupyterlab(browser, lab: Lab, path: Path):
    page = open_notebook(browser, lab, path.name)
    try:
        took = run_all(page, path.name)
        saved = save(page, lab, path.name)
        page.screenshot(path=str(lab.screenshots / f"{path.stem}.png"))
        n_images = check_executed(page, saved, path.name)
        n_figures = _figures_saved(lab.run_dir, path.stem)
        assert n_figures >= 1, f"{path.stem} saved no figure into {lab.run_dir}"
        assert n_images >= n_figures, f"{path.stem}: {n_figures} figures saved, " \
                                      f"{n_images} shown"
        first = page.locator(".jp-OutputArea-output img").first
        first.scroll_into_view_if_needed()
        page.screenshot(path=str(lab.screenshots / f"{path.stem}_figure.png"))
        print(f"{path.stem}: ran in the browser in {took:.1f} s, {n_images} figures rendered")
    finally:
        close(page, lab)
