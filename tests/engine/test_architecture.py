"""Guardrail: core imports only torch/numpy/scipy/safetensors/stdlib; io and install never import qgis or PyQt."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "rssgl_qgis"
FORBIDDEN = {
    "core": ("qgis", "PyQt5", "PyQt6", "PyQt", "osgeo", "sip"),
    "io": ("qgis", "PyQt5", "PyQt6", "PyQt", "sip"),
    "install": ("qgis", "PyQt5", "PyQt6", "PyQt", "sip"),  # the installer's rules: testable without QGIS
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_does_not_import_forbidden_frameworks(layer):
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"no python files under rssgl_qgis/{layer}"
    bad = [
        f"{f.relative_to(PACKAGE.parent)}:{line} imports {name}"
        for f in files
        for line, name in _imports(f)
        if name.split(".")[0] in FORBIDDEN[layer]
    ]
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def test_guardrail_detects_a_forbidden_import(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import os\nfrom qgis.core import QgsProject\nimportlib.import_module('PyQt5')\n")
    assert [n for _, n in _imports(sample)] == ["os", "qgis.core", "PyQt5"]
