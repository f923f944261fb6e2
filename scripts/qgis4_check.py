"""What still stands between the plugin and QGIS 4 / Qt 6: the spellings in our code that QGIS 4 drops, and
whether the running QGIS already has their replacements (docs/ARCHITECTURE.md, "QGIS 4 / Qt 6").

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/qgis4_check.py

Run it on 3.22 and in the 3.40 root (scripts/qgis340_root.sh shell): a replacement present on both could be
used now; one missing on 3.22 needs a version fallback (as gui/training_layer.py does for field types).
"""

from __future__ import annotations

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# old spelling (regex over rssgl_qgis/) -> replacement on QGIS >= 3.30..3.38 (attribute path under qgis.core)
CHECKS = [
    (r"QgsProcessing\.TypeVector\w+", "Qgis.ProcessingSourceType"),
    (r"QgsProcessingParameterNumber\.(Integer|Double)\b", "Qgis.ProcessingNumberParameterType"),
    (r"QgsProcessingParameterField\.Any\b", "Qgis.ProcessingFieldParameterDataType"),
    (r"QgsProcessingParameterDefinition\.Flag\w+", "Qgis.ProcessingParameterFlag"),
    (r"QgsWkbTypes\.(MultiPolygon|Point|Polygon)\b", "Qgis.WkbType"),
    (r"QgsWkbTypes\.\w+Geometry\b", "Qgis.GeometryType"),
    (r"QgsMapLayer\.RasterLayer\b", "Qgis.LayerType"),
    (r"QgsMapLayerProxyModel\.\w+Layer\b", "Qgis.LayerFilter"),
    (r"QgsColorRampShader\.Interpolated\b", "Qgis.ShaderInterpolationMethod"),
    (r"QgsEditFormConfig\.Suppress\w+", "Qgis.AttributeFormSuppression"),
    (r"QVariant\.(Int|LongLong|String)\b", "QMetaType.Type (QgsField, QGIS >= 3.38)"),
    (r"QtWidgets import[^\n]*\bQAction\b", "QtGui.QAction (Qt 6)"),
    (r"\.exec_\(", "exec() (Qt 6)"),
    (r"\bPyQt5\b", "qgis.PyQt"),
]


def code_hits(pattern: str) -> list[str]:
    hits = []
    for folder, _, files in os.walk(os.path.join(ROOT, "rssgl_qgis")):
        for name in sorted(files):
            if name.endswith(".py") and name != "resources.py":
                path = os.path.join(folder, name)
                text = open(path, encoding="utf-8").read()
                for m in re.finditer(pattern, text):
                    line = text.count("\n", 0, m.start()) + 1
                    hit = f"{os.path.relpath(path, ROOT)}:{line}"
                    if hit not in hits:
                        hits.append(hit)
    return hits


def has_replacement(spec: str) -> str:
    try:
        from qgis.core import Qgis  # noqa: F401
        from qgis.PyQt import QtGui  # noqa: F401
    except ImportError:
        return "?"
    name = spec.split()[0]
    if name.startswith("Qgis."):
        from qgis.core import Qgis

        return "yes" if hasattr(Qgis, name.split(".", 1)[1]) else "no"
    if name == "QtGui.QAction":
        from qgis.PyQt import QtGui

        return "yes" if hasattr(QtGui, "QAction") else "no"
    return "-"


def main() -> int:
    try:
        from qgis.core import Qgis

        version = Qgis.QGIS_VERSION
    except ImportError:
        version = "no QGIS"
    print(f"QGIS {version}")
    print(f"{'old spelling in rssgl_qgis/':48} {'uses':>4}  {'replacement':40} here")
    for pattern, replacement in CHECKS:
        hits = code_hits(pattern)
        print(f"{pattern:48} {len(hits):>4}  {replacement:40} {has_replacement(replacement)}")
        for hit in hits:
            print(f"    {hit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
