"""Static check that our Python runs on Qt 6 / QGIS 4 as well as on Qt 5 / QGIS 3.22: it fails on any construct
that only Qt 5 (PyQt5) or only QGIS 3 accepts (docs/QGIS4.md lists the rules and what they do not prove).

    .venv/bin/python scripts/qt6_check.py                 # rssgl_qgis/, scripts/, tests/; exit 1 on a finding
    .venv/bin/python scripts/qt6_check.py some/file.py    # only these files or folders
    .venv/bin/python scripts/qt6_check.py --list-rules
    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/qt6_check.py --update-enums   # on PyQt5 + QGIS 3.22
    QT_QPA_PLATFORM=offscreen python3 scripts/qt6_check.py --update-moved   # in the QGIS 3.44 root

Every finding is one line ``path:line: rule: message``. The check is pure ``ast`` and needs neither Qt nor QGIS:
which ``Class.Member`` spellings are unscoped enum members comes from scripts/qt6_enums.json, written by
``--update-enums`` from the running PyQt5 and QGIS (introspection, not a hand list), and which QGIS 3 enums are
aliases of ``Qgis`` enums from scripts/qgis_moved_enums.json, written by ``--update-moved``. A line may carry
``# qt6-check: allow <rule>[, <rule>]`` for a deliberate old spelling (the QGIS 3.22 branch of a version
fallback in rssgl_qgis/qgis_compat.py); tests/static/test_qt6_check.py keeps those to that module.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

try:  # imported as scripts.qt6_check (tests) or run as scripts/qt6_check.py
    from scripts import qt6_rules as rules
except ImportError:
    import qt6_rules as rules

ROOT = Path(__file__).resolve().parents[1]
ENUM_FILE = Path(__file__).resolve().with_name("qt6_enums.json")
MOVED_FILE = Path(__file__).resolve().with_name("qgis_moved_enums.json")
DEFAULT_PATHS = ("rssgl_qgis", "scripts", "tests")
# The planted examples must fail; they are checked by their own test, not as part of our tree.
EXCLUDED = ("tests/static/fixtures",)
PRAGMA = re.compile(r"#\s*qt6-check:\s*allow\s+([\w\-, ]+)")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.message}"


# ----------------------------------------------------------------------------------------------------------
# Enum data: which Class.Member spellings are enum members (unscoped), and through which enum type


class EnumIndex:
    """Class -> declared enum members and ancestors, as scripts/qt6_enums.json records them."""

    def __init__(self, data: dict, moved: dict | None = None) -> None:
        self.meta = data.get("generated_from", {})
        self.classes: dict[str, dict] = data["classes"]
        self.moved_meta = (moved or {}).get("generated_from", {})
        self.moved: dict[str, str] = (moved or {}).get("moved", {})

    @classmethod
    def load(cls, path: Path = ENUM_FILE, moved: Path = MOVED_FILE) -> EnumIndex:
        return cls(json.loads(path.read_text(encoding="utf-8")), json.loads(moved.read_text(encoding="utf-8")))

    def lineage(self, name: str) -> list[str]:
        entry = self.classes.get(name)
        return [name, *entry.get("bases", [])] if entry else []

    def member(self, name: str, attr: str) -> str | None:
        """The scoped spelling of ``name.attr`` (e.g. ``Qt.AlignmentFlag.AlignLeft``) when it is an enum member."""
        for owner in self.lineage(name):
            for enum_type, members in self.classes.get(owner, {}).get("enums", {}).items():
                for member in members:
                    alias, _, real = member.partition("=")
                    if alias == attr:
                        return f"{enum_type}.{real or alias}"
        return None


def introspect() -> dict:
    """Every Qt / QGIS class with its unscoped enum members, read from the running PyQt5 and QGIS 3."""
    import enum
    import importlib

    from qgis.PyQt import QtCore

    sip_enum = type(QtCore.Qt.AlignmentFlag)  # sip's enum metatype (PyQt5)
    wrapper = type(QtCore.QObject)
    module_names = ["QtCore", "QtGui", "QtWidgets", "QtNetwork", "QtXml", "QtSvg", "QtTest", "QtPrintSupport",
                    "QtSql"]
    modules = []
    for name in module_names:
        try:
            modules.append(importlib.import_module(f"qgis.PyQt.{name}"))
        except ImportError:
            pass
    for name in ("qgis.core", "qgis.gui", "qgis.analysis"):
        modules.append(importlib.import_module(name))

    own: dict[str, dict[str, list[str]]] = {}
    mros: dict[str, list[str]] = {}

    def visit(klass: type, qualname: str) -> None:
        enums: dict[str, list[str]] = {}
        for key, value in list(vars(klass).items()):
            if isinstance(type(value), sip_enum) and not isinstance(value, type):
                enums.setdefault(type(value).__qualname__, []).append(key)
            elif isinstance(value, enum.Enum):  # QGIS's Python-enum aliases, e.g. QgsMapLayer.RasterLayer
                entry = key if value.name == key else f"{key}={value.name}"
                enums.setdefault(type(value).__qualname__, []).append(entry)
            elif isinstance(value, wrapper) and value.__qualname__ == f"{qualname}.{key}":
                visit(value, f"{qualname}.{key}")
        if enums:
            own[qualname] = {k: sorted(v) for k, v in sorted(enums.items())}
        mros[qualname] = [b.__qualname__ for b in klass.__mro__[1:] if isinstance(b, wrapper)]

    for module in modules:
        for key, value in vars(module).items():
            if isinstance(value, wrapper) and value.__name__ == key:
                visit(value, key)
    classes = {}
    for name in sorted(mros):
        bases = [b for b in mros[name] if b in own]
        if name in own or bases:
            classes[name] = {k: v for k, v in (("bases", bases), ("enums", own.get(name))) if v}
    from qgis.core import Qgis

    meta = {"pyqt": QtCore.PYQT_VERSION_STR, "qt": QtCore.QT_VERSION_STR, "qgis": Qgis.QGIS_VERSION}
    return {"generated_from": meta, "classes": classes}


def introspect_moved() -> dict:
    """QGIS 3 enums that the running QGIS (>= 3.30) defines as aliases of ``Qgis`` enums.

    From QGIS 3.24 on, QGIS moves class enums into ``Qgis`` (``QgsProcessing.SourceType`` became
    ``Qgis.ProcessingSourceType`` in 3.36) and keeps the old name as an alias, which is how this finds them.
    """
    import enum
    import importlib

    from qgis.core import Qgis

    moved = {}
    for module in (importlib.import_module(n) for n in ("qgis.core", "qgis.gui", "qgis.analysis")):
        for name, obj in vars(module).items():
            if not isinstance(obj, type) or name == "Qgis" or hasattr(Qgis, name):
                continue
            if issubclass(obj, enum.Enum):  # a module-level alias, e.g. QgsMapLayerType = Qgis.LayerType
                if obj.__qualname__.startswith("Qgis."):
                    moved[name] = obj.__qualname__
                continue
            if obj.__qualname__ != name or issubclass(obj, Qgis):
                continue
            for key, value in vars(obj).items():
                if isinstance(value, type) and issubclass(value, enum.Enum) and value.__qualname__.startswith("Qgis."):
                    moved[f"{name}.{key}"] = value.__qualname__
    return {"generated_from": {"qgis": Qgis.QGIS_VERSION}, "moved": dict(sorted(moved.items()))}


@cache
def default_index() -> EnumIndex:
    return EnumIndex.load()


# ----------------------------------------------------------------------------------------------------------
# The checker


def dotted(node: ast.AST) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"]; None for anything that is not a plain dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def fallback_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes inside ``except ImportError`` / ``except AttributeError`` blocks: version fallbacks."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            names = {n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)}
            if names & {"ImportError", "ModuleNotFoundError", "AttributeError"}:
                for statement in node.body:
                    found.update(id(n) for n in ast.walk(statement))
    return found


class FileChecker(ast.NodeVisitor):
    def __init__(self, path: str, text: str, index: EnumIndex) -> None:
        self.path = path
        self.index = index
        self.findings: list[Finding] = []
        self.tree = ast.parse(text, filename=path)
        self.fallbacks = fallback_nodes(self.tree)
        self.font_metrics_names: set[str] = set()
        self.allowed: dict[int, set[str]] = {}
        for number, line in enumerate(text.splitlines(), 1):
            match = PRAGMA.search(line)
            if match:
                self.allowed[number] = {r.strip() for r in re.split(r"[,\s]+", match.group(1)) if r.strip()}

    def run(self) -> list[Finding]:
        self.visit(self.tree)
        return self.findings

    def report(self, node: ast.AST, rule: str, message: str) -> None:
        line = getattr(node, "lineno", 1)
        if rule not in self.allowed.get(line, ()):
            self.findings.append(Finding(self.path, line, rule, message))

    # -- imports -------------------------------------------------------------------------------------------

    def check_module(self, node: ast.AST, module: str) -> None:
        top = module.split(".")[0]
        if top in ("PyQt5", "PyQt6", "sip"):
            self.report(node, "pyqt-import", f"import {module}: import Qt through qgis.PyQt "
                        "(qgis.PyQt.sip for sip), which QGIS maps to PyQt5 or PyQt6")
        if top in rules.PY312_REMOVED:
            self.report(node, "py312-removed", f"{module} is gone from Python 3.12: "
                        f"{rules.PY312_REMOVED[top]}")
        last = module.split(".")[-1]
        if last in rules.REMOVED_MODULES:
            self.report(node, "removed-module", f"{module}: {rules.REMOVED_MODULES[last]}")
        if last.endswith("_rc") or last.startswith("qrc_"):
            self.compiled_resources(node, module)

    def compiled_resources(self, node: ast.AST, name: str) -> None:
        self.report(node, "compiled-resources", f"{name}: Qt 6 has no pyrcc; load icons and .ui files by "
                    "file path")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.check_module(node, alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        self.check_module(node, module)
        in_fallback = id(node) in self.fallbacks
        for alias in node.names:
            name = alias.name
            if name in rules.REMOVED_CLASSES:
                self.report(node, "removed-class", f"{name}: {rules.REMOVED_CLASSES[name]}")
            if name == "qApp":
                self.report(node, "qapp", "qApp is gone in Qt 6: QApplication.instance()")
            if name in rules.REMOVED_MODULES and module.split(".")[-1] in ("PyQt", "PyQt5", "PyQt6"):
                self.report(node, "removed-module", f"{name}: {rules.REMOVED_MODULES[name]}")
            if name.endswith("_rc") or name.startswith("qrc_"):
                self.compiled_resources(node, name)
            if module.endswith("QtWidgets") and name in rules.MOVED_TO_QTGUI and not in_fallback:
                self.report(node, "qtwidgets-moved", f"{name} lives in QtGui in Qt 6: import it from "
                            "qgis.PyQt.QtGui, falling back to QtWidgets on Qt 5 (rssgl_qgis/qgis_compat.py)")
        self.generic_visit(node)

    # -- names and attributes ------------------------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "qApp":
            self.report(node, "qapp", "qApp is gone in Qt 6: QApplication.instance()")
        elif node.id in rules.REMOVED_CLASSES and isinstance(node.ctx, ast.Load):
            self.report(node, "removed-class", f"{node.id}: {rules.REMOVED_CLASSES[node.id]}")
        elif node.id in self.index.moved:  # a moved enum that is not nested in a class, e.g. QgsMapLayerType
            self.report(node, "qgis-moved-enum", self.moved_message(node.id, node.id))

    def resolve_class(self, parts: list[str]) -> str | None:
        """The known class a dotted prefix names (``QtCore.Qt`` -> ``Qt``), or None."""
        for start in range(len(parts)):
            key = ".".join(parts[start:])
            if key in self.index.classes:
                return key
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        parts = dotted(node.value)
        attr = node.attr
        if parts:
            self.check_attribute(node, parts, attr)
        if attr in rules.RENAMED_METHODS and isinstance(node.ctx, ast.Load):
            self.report(node, "exec_", f".{attr}(): PyQt6 has only .{rules.RENAMED_METHODS[attr]}() (PyQt5 has both)")
        self.generic_visit(node)

    def check_attribute(self, node: ast.Attribute, parts: list[str], attr: str) -> None:
        if parts[-1] in ("QtWidgets",) and attr in rules.MOVED_TO_QTGUI:
            self.report(node, "qtwidgets-moved", f"QtWidgets.{attr}: it lives in QtGui in Qt 6")
        if attr in rules.REMOVED_CLASSES and parts[-1].startswith("Qt"):
            self.report(node, "removed-class", f"{attr}: {rules.REMOVED_CLASSES[attr]}")
        for owner, hint in rules.REMOVED_ENUM_MEMBERS.get(attr, ()):
            if owner in parts:
                self.report(node, "renamed-enum", f"{'.'.join(parts)}.{attr} is gone in Qt 6: {hint}")
                return
        klass = self.resolve_class(parts)
        if klass is None:
            return
        moved = self.moved_enum(klass, attr)
        if moved:
            self.report(node, "qgis-moved-enum", moved)
            return
        if klass == "QVariant" and (attr == "Type" or self.index.member(klass, attr)):
            self.report(node, "qvariant-type", f"QVariant.{attr}: PyQt6 has no QVariant.Type; use "
                        "QMetaType.Type (for QgsField: qgis_compat.field_type, QGIS 3.22 falls back)")
            return
        scoped = self.index.member(klass, attr)
        if scoped:
            self.report(node, "unscoped-enum", f"{'.'.join(parts)}.{attr}: PyQt6 needs the enum's scope: "
                        f"{scoped}")

    def moved_enum(self, klass: str, attr: str) -> str | None:
        """Why ``klass.attr`` should be spelled through ``Qgis`` (an enum QGIS moved there), or None."""
        scoped = self.index.member(klass, attr)
        enum_type = scoped.rsplit(".", 1)[0] if scoped else None
        if enum_type is None:  # klass.attr may name the moved enum type itself (QgsProcessing.SourceType)
            for owner in self.index.lineage(klass):
                if f"{owner}.{attr}" in self.index.moved:
                    enum_type = f"{owner}.{attr}"
                    break
        if enum_type in self.index.moved:
            return self.moved_message(f"{klass}.{attr}", enum_type)
        return None

    def moved_message(self, spelled: str, enum_type: str) -> str:
        new = self.index.moved[enum_type]
        if spelled != enum_type:
            spelled = f"{spelled} ({enum_type})"
        return (f"{spelled} is the QGIS 3 name of {new}, kept only as an alias: spell it {new} via "
                "rssgl_qgis/qgis_compat.py (QGIS 3.22 has only the old name)")

    # -- calls ---------------------------------------------------------------------------------------------

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name in rules.RENAMED_METHODS:
            self.report(node, "exec_", f"def {node.name}: PyQt6 calls {rules.RENAMED_METHODS[node.name]}()")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(isinstance(t, ast.Name) and t.id == "qt_resource_data" for t in node.targets):
            self.compiled_resources(node, "qt_resource_data (pyrcc5 output)")
        if self.makes_font_metrics(node.value):
            self.font_metrics_names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        self.generic_visit(node)

    @staticmethod
    def makes_font_metrics(value: ast.AST) -> bool:
        if not isinstance(value, ast.Call):
            return False
        func = value.func
        return (isinstance(func, ast.Name) and func.id in rules.FONT_METRICS) or (
            isinstance(func, ast.Attribute) and func.attr == "fontMetrics")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            if func.attr == "width" and (self.makes_font_metrics(func.value) or (
                    isinstance(func.value, ast.Name) and func.value.id in self.font_metrics_names)):
                self.report(node, "fontmetrics-width", "QFontMetrics.width() is gone in Qt 6: "
                            "horizontalAdvance() (Qt >= 5.11)")
            if func.attr == "desktop" and not node.args and not node.keywords:
                self.report(node, "desktop-widget", "QApplication.desktop() (QDesktopWidget) is gone in Qt 6: "
                            "QGuiApplication.screens() / QWidget.screen()")
            if func.attr == "addAction" and len(node.args) >= 4:
                self.report(node, "addaction-args", "addAction(text, receiver, slot, shortcut) changed order in "
                            "Qt 6: create the QAction, then addAction(action)")
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name == "QVariant" and (not node.args or (
                len(node.args) == 1 and (dotted(node.args[0]) or [""])[0] == "QVariant")):
            self.report(node, "qvariant-null", "QVariant() as a null value: use NULL from qgis.core")
        if name in rules.DATETIME_CLASSES and (len(node.args) == 8 or (
                len(node.args) == 1 and isinstance(node.args[0], ast.Call)
                and (dotted(node.args[0].func) or [""])[-1] == "QDate")):
            self.report(node, "qdatetime-ctor", "this QDateTime constructor is gone in Qt 6: "
                        "QDateTime(QDate(...), QTime(...))")
        if name == "qRegisterResourceData":
            self.compiled_resources(node, "qRegisterResourceData")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.value, ast.Attribute):
            signal = node.value.attr
            key = node.slice
            arg = key.id if isinstance(key, ast.Name) else key.value if isinstance(key, ast.Constant) else None
            if arg is not None and str(arg) in rules.REMOVED_SIGNAL_OVERLOADS.get(signal, ()):
                self.report(node, "signal-overload", f"{signal}[{arg}]: this signal overload is gone in Qt 6 "
                            f"({rules.REMOVED_SIGNAL_OVERLOADS[signal][arg]})")
        self.generic_visit(node)


# ----------------------------------------------------------------------------------------------------------


def _excluded(path: Path) -> bool:
    relative = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.as_posix()
    return any(relative == e or relative.startswith(e + "/") for e in EXCLUDED)


def python_files(paths: list[Path]) -> Iterator[Path]:
    """The .py and .qrc files under ``paths``; EXCLUDED folders only when named explicitly."""
    for path in paths:
        if path.is_file():
            yield path
            continue
        for file in sorted(path.rglob("*")):
            if "__pycache__" in file.parts or (_excluded(file) and not _excluded(path)):
                continue
            if file.suffix in (".py", ".qrc"):
                yield file


def check_file(path: Path, index: EnumIndex | None = None) -> list[Finding]:
    shown = path.relative_to(ROOT).as_posix() if path.resolve().is_relative_to(ROOT) else str(path)
    if path.suffix == ".qrc":
        return [Finding(shown, 1, "compiled-resources", "a Qt resource collection: Qt 6 has no pyrcc")]
    text = path.read_text(encoding="utf-8")
    checker = FileChecker(shown, text, index or default_index())
    findings = checker.run()
    return findings


def check_paths(paths: list[Path], index: EnumIndex | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for file in python_files(paths):
        findings += check_file(file, index)
    return sorted(findings, key=lambda f: (f.path, f.line, f.rule))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help=f"files or folders (default: {', '.join(DEFAULT_PATHS)})")
    parser.add_argument("--list-rules", action="store_true", help="print the rules and exit")
    parser.add_argument("--update-enums", action="store_true",
                        help=f"rewrite {ENUM_FILE.name} from the running PyQt5 and QGIS 3")
    parser.add_argument("--update-moved", action="store_true",
                        help=f"rewrite {MOVED_FILE.name} from the running QGIS (>= 3.30, e.g. the 3.44 root)")
    parser.add_argument("--live", action="store_true",
                        help="read enum members from the running PyQt5 and QGIS instead of the JSON file")
    args = parser.parse_args(argv)
    if args.list_rules:
        for rule, text in rules.RULES.items():
            print(f"{rule:20} {text}")
        return 0
    if args.update_enums:
        data = introspect()
        ENUM_FILE.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{ENUM_FILE.relative_to(ROOT)}: {len(data['classes'])} classes from {data['generated_from']}")
        return 0
    if args.update_moved:
        data = introspect_moved()
        MOVED_FILE.write_text(json.dumps(data, indent=0) + "\n", encoding="utf-8")
        print(f"{MOVED_FILE.name}: {len(data['moved'])} moved enums from {data['generated_from']}")
        return 0
    moved = {"generated_from": default_index().moved_meta, "moved": default_index().moved}
    index = EnumIndex(introspect(), moved) if args.live else default_index()
    paths = [Path(p).resolve() for p in args.paths] or [ROOT / p for p in DEFAULT_PATHS]
    findings = check_paths(paths, index)
    for finding in findings:
        print(finding)
    files = sum(1 for _ in python_files(paths))
    print(f"qt6_check: {len(findings)} Qt-5-only / QGIS-3-only construct(s) in {files} file(s)", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
