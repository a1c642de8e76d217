"""environment.yml and pyproject.toml declare the same dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from the PyPI names
CONDA_TO_PYPI = {"netcdf4": "netcdf4", "pyyaml": "pyyaml"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> tuple[dict[str, str], dict[str, str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r): r for r in data["dependencies"]}
    dev = {_name(r): r for r in data["optional-dependencies"]["dev"]}
    return runtime, dev


def _conda() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str) and _name(dep) not in ("python", "pip"):
            out[CONDA_TO_PYPI.get(_name(dep), _name(dep))] = dep
    return out


def test_runtime_and_dev_dependencies_match():
    runtime, dev = _pyproject()
    conda = _conda()
    assert set(conda) == set(runtime) | set(dev), (
        f"only in environment.yml: {sorted(set(conda) - set(runtime) - set(dev))}; "
        f"only in pyproject.toml: {sorted(set(runtime) | set(dev) - set(conda))}")


def test_version_floors_match():
    runtime, dev = _pyproject()
    conda = _conda()
    for name, req in {**runtime, **dev}.items():
        floor = re.search(r">=\s*([\w.]+)", req)
        if floor:
            assert f">={floor.group(1)}" in conda[name].replace(" ", ""), (name, req, conda[name])


def test_environment_installs_project_with_pip():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pips = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert pips and "-e ." in pips[0]["pip"]
    assert "conda-forge" in env["channels"]
