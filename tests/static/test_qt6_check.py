"""scripts/qt6_check.py: it fails on every planted Qt-5-only / QGIS-3-only construct, at its line, and passes on
our tree. Pure ast against scripts/qt6_enums.json: no QGIS needed (the one test that compares the JSON with the
running PyQt5 / QGIS skips without them)."""

from __future__ import annotations

import io
import subprocess
import sys
import tokenize
from collections import Counter
from pathlib import Path

import pytest

from scripts import qt6_check, qt6_rules

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "static" / "fixtures"
PLANTED = FIXTURES / "qt5_only_planted.py"


def expected_findings() -> Counter:
    """(path, line, rule) for each ``# expect: rule[, rule]`` comment of the planted example, and the .qrc."""
    expected = Counter({("tests/static/fixtures/planted.qrc", 1, "compiled-resources"): 1})
    for number, line in enumerate(PLANTED.read_text(encoding="utf-8").splitlines(), 1):
        if "# expect:" in line:
            for rule in line.split("# expect:")[1].split(","):
                expected[("tests/static/fixtures/qt5_only_planted.py", number, rule.strip())] += 1
    return expected


def test_planted_example_fails_on_each_rule_at_its_line():
    found = Counter((f.path, f.line, f.rule) for f in qt6_check.check_paths([FIXTURES]))
    expected = expected_findings()
    assert found == expected, f"missed: {sorted(expected - found)}\nunexpected: {sorted(found - expected)}"
    assert {rule for _, _, rule in expected} == set(qt6_rules.RULES), "every rule has a planted example"


def test_cli_fails_on_the_planted_example_with_file_line_rule():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "qt6_check.py"), str(PLANTED)],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 1, run.stderr
    assert "tests/static/fixtures/qt5_only_planted.py:24: exec_: .exec_()" in run.stdout
    assert "tests/static/fixtures/qt5_only_planted.py:25: unscoped-enum: Qt.AlignLeft" in run.stdout


def test_our_tree_passes():
    paths = [ROOT / p for p in qt6_check.DEFAULT_PATHS]
    files = list(qt6_check.python_files(paths))
    assert ROOT / "rssgl_qgis" / "plugin.py" in files and PLANTED not in files
    findings = qt6_check.check_paths(paths)
    assert not findings, "\n".join(map(str, findings))


def test_old_spellings_are_allowed_only_in_the_compat_module():
    allowed = {}
    for path in qt6_check.python_files([ROOT / p for p in qt6_check.DEFAULT_PATHS]):
        if path.suffix != ".py":
            continue
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
        for token in tokens:
            if token.type == tokenize.COMMENT and qt6_check.PRAGMA.search(token.string):
                allowed.setdefault(path.relative_to(ROOT).as_posix(), []).append(token.start[0])
    assert set(allowed) == {"rssgl_qgis/qgis_compat.py"}, allowed


def test_allow_pragma_silences_only_the_named_rule(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from qgis.PyQt.QtCore import Qt\n"
                      "a = Qt.AlignLeft  # qt6-check: allow unscoped-enum\n"
                      "b = Qt.AlignLeft  # qt6-check: allow exec_\n"
                      "d.exec_()\n")
    assert [(f.line, f.rule) for f in qt6_check.check_file(sample)] == [(3, "unscoped-enum"), (4, "exec_")]


def test_enum_index_resolves_scoped_spellings_through_inheritance():
    index = qt6_check.default_index()
    assert index.member("Qt", "AlignLeft") == "Qt.AlignmentFlag.AlignLeft"
    assert index.member("QMessageBox", "Yes") == "QMessageBox.StandardButton.Yes"
    assert index.member("QDialogButtonBox", "Ok") == "QDialogButtonBox.StandardButton.Ok"
    assert index.member("QgsProcessingParameterRasterLayer", "FlagOptional") == (
        "QgsProcessingParameterDefinition.Flag.FlagOptional")
    assert index.member("QgsMapLayer", "RasterLayer") == "QgsMapLayerType.RasterLayer"
    assert index.member("Qt", "AlignmentFlag") is None  # the enum type itself is fine
    assert index.member("QgsProcessing", "TEMPORARY_OUTPUT") is None  # a string constant, not an enum


def test_enum_file_is_what_the_running_pyqt_and_qgis_say():
    """scripts/qt6_enums.json is introspection output (``--update-enums``), not a hand-edited list."""
    pytest.importorskip("qgis.core")
    from qgis.core import Qgis
    from qgis.PyQt.QtCore import PYQT_VERSION_STR

    index = qt6_check.default_index()
    if (index.meta.get("qgis"), index.meta.get("pyqt")) != (Qgis.QGIS_VERSION, PYQT_VERSION_STR):
        pytest.skip(f"scripts/qt6_enums.json was generated on {index.meta}, not this QGIS / PyQt")
    assert qt6_check.introspect() == {"generated_from": index.meta, "classes": index.classes}


def test_moved_enum_file_is_what_qgis_3_44_says():
    """scripts/qgis_moved_enums.json is ``--update-moved`` output from QGIS 3.44 (it runs in the 3.44 root)."""
    pytest.importorskip("qgis.core")
    from qgis.core import Qgis

    index = qt6_check.default_index()
    if index.moved_meta.get("qgis") != Qgis.QGIS_VERSION:
        pytest.skip(f"scripts/qgis_moved_enums.json was generated on {index.moved_meta}, not this QGIS")
    assert qt6_check.introspect_moved()["moved"] == index.moved


def test_moved_enums_cover_every_old_spelling_the_compat_module_keeps():
    moved = qt6_check.default_index().moved
    for old, new in [("QgsProcessing.SourceType", "Qgis.ProcessingSourceType"),
                     ("QgsProcessingParameterNumber.Type", "Qgis.ProcessingNumberParameterType"),
                     ("QgsProcessingParameterField.DataType", "Qgis.ProcessingFieldParameterDataType"),
                     ("QgsProcessingParameterDefinition.Flag", "Qgis.ProcessingParameterFlag"),
                     ("QgsWkbTypes.Type", "Qgis.WkbType"), ("QgsWkbTypes.GeometryType", "Qgis.GeometryType"),
                     ("QgsMapLayerType", "Qgis.LayerType"), ("QgsColorRampShader.Type", "Qgis.ShaderInterpolationMethod"),
                     ("QgsEditFormConfig.FeatureFormSuppress", "Qgis.AttributeFormSuppression"),
                     ("QgsRasterMinMaxOrigin.Limits", "Qgis.RasterRangeLimit")]:
        assert moved.get(old) == new, old
