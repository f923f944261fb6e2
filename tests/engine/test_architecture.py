"""Guardrails of the architecture (docs/ARCHITECTURE.md): which package may import which, no import circle,
and no Qt / QGIS / GDAL where it does not belong.

Every import counts, also one inside a function (a lazy import is still a dependency); only imports under
``if TYPE_CHECKING:`` are left out (they never run). The order, lowest first:

    core (its own modules) -> core.network -> core.data -> core.spectral -> core.prediction -> core.training
    -> io -> workflows -> processing | gui -> plugin

A package may import its own modules and the packages below it; processing and gui never import each other.
The plugin's shell modules (qgis_compat, torch_loader, i18n_loader, resources, layer_style) serve the front ends
and the installer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "rssgl_qgis"
FORBIDDEN = {
    "core": ("qgis", "PyQt5", "PyQt6", "PyQt", "osgeo", "sip"),
    "io": ("qgis", "PyQt5", "PyQt6", "PyQt", "sip"),
    "workflows": ("qgis", "PyQt5", "PyQt6", "PyQt", "sip"),  # shared by Processing and the dock, testable without QGIS
    "install": ("qgis", "PyQt5", "PyQt6", "PyQt", "sip"),  # the installer's rules: testable without QGIS
}

CORE_ORDER = ("core", "core.network", "core.data", "core.spectral", "core.prediction", "core.training")
SHELL = {"qgis_compat", "torch_loader", "i18n_loader", "resources", "layer_style"}
_CORE_ALL = set(CORE_ORDER)
#: unit -> the units it may import (itself included).
ALLOWED: dict[str, set[str]] = {
    **{unit: set(CORE_ORDER[: i + 1]) for i, unit in enumerate(CORE_ORDER)},
    "io": _CORE_ALL | {"io"},
    "workflows": _CORE_ALL | {"io", "workflows"},
    "processing": _CORE_ALL | {"io", "workflows", "processing"} | SHELL,
    "gui": _CORE_ALL | {"io", "workflows", "gui", "install"} | SHELL,
    "install": {"install", "torch_loader"},
    "qgis_compat": {"qgis_compat"},
    "torch_loader": {"torch_loader"},
    "i18n_loader": {"i18n_loader"},
    "resources": {"resources", "i18n_loader"},
    "layer_style": {"layer_style", "qgis_compat"},
    "plugin": {"plugin", "gui", "processing"} | SHELL,
    "": {"plugin"},  # rssgl_qgis/__init__.py: classFactory only
}


def module_name(path: Path) -> str:
    """'core.training.classifier' for rssgl_qgis/core/training/classifier.py; '' for rssgl_qgis/__init__.py."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def unit_of(module: str) -> str:
    """The architecture unit a module belongs to: a core subpackage, core's own modules, or a top package."""
    parts = module.split(".") if module else []
    if not parts:
        return ""
    if parts[0] == "core":
        if len(parts) >= 2 and f"core.{parts[1]}" in _CORE_ALL and (PACKAGE / "core" / parts[1]).is_dir():
            return f"core.{parts[1]}"
        return "core"
    return parts[0]


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path``; relative imports resolved inside rssgl_qgis."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _type_checking_lines(tree)
    inside = PACKAGE in path.parents
    package = "" if not inside else (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0])
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            elif inside:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join(["rssgl_qgis", *parts, *([node.module] if node.module else [])])
            else:
                continue
            found.append((node.lineno, base))
            # "from . import layerwise" imports the module rssgl_qgis.<package>.layerwise
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def _modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _internal_edges() -> dict[str, set[tuple[int, str]]]:
    """module -> {(line, imported rssgl_qgis module)}, names that are not modules (classes, functions) left out."""
    modules = _modules()
    edges: dict[str, set[tuple[int, str]]] = {}
    for name, path in modules.items():
        targets = set()
        for line, imported in _imports(path):
            if imported != "rssgl_qgis" and not imported.startswith("rssgl_qgis."):
                continue
            target = imported[len("rssgl_qgis."):] if imported != "rssgl_qgis" else ""
            if target in modules and target != name:
                targets.add((line, target))
        edges[name] = targets
    return edges


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


def test_every_module_belongs_to_a_unit_with_rules():
    units = {unit_of(m) for m in _modules()}
    assert units <= set(ALLOWED), f"packages without layering rules: {sorted(units - set(ALLOWED))}"
    assert {"core.network", "core.data", "core.spectral", "core.prediction", "core.training", "workflows"} <= units


def test_imports_point_inward_only():
    bad = []
    for module, targets in _internal_edges().items():
        unit = unit_of(module)
        for line, target in sorted(targets):
            if target == "":  # "from .. import x" where x is not a module: the package __init__ only
                continue
            if unit_of(target) not in ALLOWED[unit]:
                bad.append(f"rssgl_qgis/{module.replace('.', '/')}.py:{line} ({unit}) imports {target} "
                           f"({unit_of(target)})")
    assert not bad, "imports against the layering of docs/ARCHITECTURE.md:\n" + "\n".join(bad)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_circle():
    edges = {m: {t for _, t in targets if t} for m, targets in _internal_edges().items()}
    circles = _cycles(edges)
    assert not circles, "modules that import each other (directly or around a circle):\n" + "\n".join(
        " <-> ".join(c) for c in circles)


def test_circle_finder_finds_a_planted_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_guardrail_detects_a_forbidden_import(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import os\nfrom qgis.core import QgsProject\nimportlib.import_module('PyQt5')\n"
                      "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import PyQt6\n")
    assert sorted(n for _, n in _imports(sample)) == sorted(
        ["os", "qgis.core", "qgis.core.QgsProject", "PyQt5", "typing", "typing.TYPE_CHECKING"])  # PyQt6: never runs


def test_layering_rules_refuse_an_outward_import():
    assert unit_of("core.training.classifier") == "core.training"
    assert unit_of("core.errors") == "core"
    assert "core.training" not in ALLOWED["core.prediction"]
    assert "workflows" not in ALLOWED["io"] and "gui" not in ALLOWED["processing"]
    assert "processing" not in ALLOWED["gui"]
