"""The layout rule of ``docs/ARCHITECTURE.md``: one topic = one subpackage = one notebook = one
test folder, shared layers never import a topic, and the README's layout block is the real tree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "lib" / "asiclab"
ABOVE = {"asiclab.runner", "asiclab.cli"}  # may import anything


def _topics() -> set[str]:
    """Subpackages with a ``workflow.py``: the topics, one per notebook."""
    return {p.parent.name for p in PKG.glob("*/workflow.py")}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every ``asiclab...`` module a file imports, at any depth of the file (functions too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("asiclab")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("asiclab"):
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _topic_of(module: str, topics: set[str]) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in topics else None


def test_the_topics_are_the_five_rooms():
    assert {"capture", "heartbeat"} <= _topics()
    for topic in _topics():
        for name in ("__init__.py", "workflow.py", "plots.py"):
            assert (PKG / topic / name).is_file(), f"asiclab.{topic} lacks {name}"
        tests = list((ROOT / "tests" / topic).glob("test_*.py"))
        assert tests, f"asiclab.{topic} has no tests/{topic}/test_*.py"


def test_shared_layers_never_import_a_topic():
    topics = _topics()
    offences = []
    for path in sorted(PKG.rglob("*.py")):
        mod = _module_name(path)
        if mod in ABOVE or _topic_of(mod, topics):
            continue
        for imp in sorted(_imports(path)):
            if _topic_of(imp, topics):
                offences.append(f"{mod} imports {imp}")
    assert not offences, "shared layers must not import a topic:\n" + "\n".join(offences)


def test_protocol_layer_is_pure():
    """``asiclab.protocol`` is byte-level code: no sockets, serial ports, threads or files."""
    banned = {"socket", "serial", "threading", "asyncio", "subprocess", "requests", "urllib"}
    for path in (PKG / "protocol").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for n in names:
                assert n.split(".")[0] not in banned, f"{path.name} imports {n}"
                assert not n.startswith("asiclab.devices"), f"{path.name} imports {n}"


def _notebook_topics(nb_path: Path, topics: set[str]) -> set[str]:
    nb = nbformat.read(nb_path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return {t for t in topics if re.search(rf"\basiclab\.{t}\b", code)}


def test_one_notebook_per_topic():
    topics = _topics()
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    used: dict[str, list[str]] = {}
    for nb in notebooks:
        mine = _notebook_topics(nb, topics)
        assert len(mine) == 1, f"{nb.name} uses the topics {sorted(mine)}: expected exactly one"
        used.setdefault(mine.pop(), []).append(nb.name)
    assert set(used) == topics, f"topics without a notebook: {sorted(topics - set(used))}"
    assert all(len(v) == 1 for v in used.values()), used


def _readme_layout() -> dict[str, set[str]]:
    """``{entry: modules named on its lines}`` of the README block under ``lib/asiclab/``."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    entries: dict[str, set[str]] = {}
    current = None
    inside = False
    for line in block.splitlines():
        if line.startswith("lib/asiclab/"):
            inside = True
            continue
        if not inside:
            continue
        if not line.startswith("  "):
            break
        if line.startswith("   "):  # continuation of the entry above
            assert current is not None
            entries[current] |= set(re.findall(r"\b[\w]+\.py\b", line))
            continue
        first, _, rest = line.strip().partition(" ")
        current = first
        entries[current] = set(re.findall(r"\b[\w]+\.py\b", rest)) if first.endswith("/") else set()
    return entries


def test_readme_layout_is_the_real_tree():
    entries = _readme_layout()
    listed_top = {e.removesuffix(".py").rstrip("/") for e in entries}
    real_top = {p.stem for p in PKG.glob("*.py") if p.name != "__init__.py"} | {
        p.parent.name for p in PKG.glob("*/__init__.py")}
    real_names = {p.name for p in PKG.glob("*.py") if p.name != "__init__.py"} | {
        f"{p.parent.name}/" for p in PKG.glob("*/__init__.py")}
    assert set(entries) <= real_names, f"README lists what does not exist: " \
                                       f"{sorted(set(entries) - real_names)}"
    assert real_top <= listed_top, f"README's layout omits {sorted(real_top - listed_top)}"
    for entry, modules in entries.items():
        if not entry.endswith("/"):
            continue
        real = {p.name for p in (PKG / entry).glob("*.py")
                if not p.name.startswith("_")}
        assert modules == real, (f"README's {entry} line: missing {sorted(real - modules)}, "
                                 f"not there {sorted(modules - real)}")


@pytest.mark.parametrize("folder", ["protocol", "devices", "capture", "heartbeat"])
def test_tests_mirror_the_package(folder):
    assert list((ROOT / "tests" / folder).glob("test_*.py")), f"tests/{folder}/ is empty"
