"""Layers point one way: engine <- worker <- ui; the gallery store and library stay Qt-free."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sd_desktop"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = path.relative_to(PACKAGE.parent).with_suffix("").parts[: -node.level]
                names.add(".".join((*base, node.module or "")).rstrip("."))
            elif node.module:
                names.add(node.module)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("engine", ("PySide6", "sd_desktop.ui", "sd_desktop.worker", "diffusers")),
        ("gallery", ("PySide6", "sd_desktop.ui", "sd_desktop.worker", "diffusers")),
        ("library", ("PySide6", "sd_desktop.ui", "sd_desktop.worker", "diffusers")),
        ("worker", ("sd_desktop.ui", "diffusers")),
        ("ui", ("torch", "diffusers")),
    ],
)
def test_layer_imports(folder, forbidden):
    offenders = []
    for path in _modules(folder):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_no_runtime_module_imports_diffusers():
    for path in PACKAGE.rglob("*.py"):
        assert not any(n.split(".")[0] == "diffusers" for n in _imports(path)), path
