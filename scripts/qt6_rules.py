"""The tables behind scripts/qt6_check.py: what Qt 6 (PyQt6) and QGIS 4 no longer accept, with the spelling that
works on both Qt 5 / QGIS 3.22 and Qt 6 / QGIS 4.

They cover the rules of QGIS's porting script (qgis/QGIS scripts/pyqt5_to_pyqt6/pyqt5_to_pyqt6.py: enum scoping,
renamed enums, exec_, QVariant types and null values, PyQt5 imports, qgis.PyQt.Qt, qApp, QDesktopWidget,
QFontMetrics.width, activated[str], QRegExp, compiled resources, addAction's argument order, the QDateTime
constructors) and add the QGIS enums that moved into ``Qgis``, classes that moved from QtWidgets to QtGui,
more removed classes, signal overloads and enum members, and modules Python 3.12 dropped. Unscoped enum members
are not listed here: scripts/qt6_enums.json has them, read from PyQt5 and QGIS 3.22 by introspection, and
scripts/qgis_moved_enums.json has the QGIS 3 enums that are aliases of ``Qgis`` enums, read from QGIS 3.44.
"""

from __future__ import annotations

RULES = {
    "pyqt-import": "PyQt5 / PyQt6 / sip imported directly instead of through qgis.PyQt",
    "removed-module": "a Qt module Qt 6 dropped (QtWebKit, QtXmlPatterns, QtScript, qgis.PyQt.Qt)",
    "exec_": "exec_() / print_() called or defined (PyQt6: exec() / print())",
    "unscoped-enum": "an enum member read without its enum (Qt.AlignLeft; PyQt6 needs Qt.AlignmentFlag.AlignLeft)",
    "renamed-enum": "an enum member Qt 6 removed or renamed (Qt.MidButton, QPalette.Background, ...)",
    "qgis-moved-enum": "a QGIS 3 enum that QGIS moved into Qgis (QgsProcessing.TypeVectorPolygon -> "
                       "Qgis.ProcessingSourceType.VectorPolygon); the old name survives only as an alias",
    "qvariant-type": "QVariant.Int / QVariant.Type (PyQt6: QMetaType.Type)",
    "qvariant-null": "QVariant() / QVariant(QVariant.Int) as a null value (use qgis.core.NULL)",
    "removed-class": "a class Qt 6 removed (QRegExp, QDesktopWidget, QTextCodec, QGLWidget, ...)",
    "desktop-widget": "QApplication.desktop() (QDesktopWidget)",
    "qapp": "the qApp global",
    "fontmetrics-width": "QFontMetrics.width() (Qt 6: horizontalAdvance())",
    "signal-overload": "a signal overload Qt 6 removed (activated[str], currentIndexChanged[str], ...)",
    "compiled-resources": "pyrcc-compiled resources (resources_rc imports, qt_resource_data, .qrc files)",
    "qtwidgets-moved": "QAction / QShortcut / QActionGroup / QUndo* / QFileSystemModel from QtWidgets (QtGui in Qt 6)",
    "addaction-args": "addAction(text, receiver, slot, shortcut): the argument order changed in Qt 6",
    "qdatetime-ctor": "QDateTime(y, m, d, h, min, s, ms, spec) or QDateTime(QDate(...)), gone in Qt 6",
    "py312-removed": "a standard module Python 3.12 removed (distutils, imp, asyncore...)",
}

# exec_ and print_ were PyQt5's names for Python 2 keywords; PyQt6 has only exec() and print().
RENAMED_METHODS = {"exec_": "exec", "print_": "print"}

# Classes gone from Qt 6 (or moved to the Qt5Compat module, which PyQt6 does not wrap).
REMOVED_CLASSES = {
    "QRegExp": "use QRegularExpression",
    "QRegExpValidator": "use QRegularExpressionValidator",
    "QDesktopWidget": "use QScreen (QGuiApplication.screens(), QWidget.screen())",
    "QDirModel": "use QFileSystemModel",
    "QTextCodec": "use Python's codecs / str.encode",
    "QStringRef": "use str",
    "QLinkedList": "use a list",
    "QMatrix": "use QTransform",
    "QGLWidget": "use QOpenGLWidget",
    "QGLFormat": "use QSurfaceFormat",
    "QGLContext": "use QOpenGLContext",
    "QSound": "use QSoundEffect (QtMultimedia)",
    "QXmlSimpleReader": "use QXmlStreamReader",
    "QXmlInputSource": "use QXmlStreamReader",
    "QXmlDefaultHandler": "use QXmlStreamReader",
}

REMOVED_MODULES = {
    "QtWebKit": "Qt 6 has no QtWebKit (QtWebEngine, or none)",
    "QtWebKitWidgets": "Qt 6 has no QtWebKitWidgets",
    "QtXmlPatterns": "Qt 6 has no QtXmlPatterns",
    "QtScript": "Qt 6 has no QtScript",
    "QtScriptTools": "Qt 6 has no QtScriptTools",
    "Qt": "qgis.PyQt.Qt is gone under Qt 6: import from qgis.PyQt.QtCore / QtGui / QtWidgets",
}

# Moved from QtWidgets to QtGui in Qt 6 (PyQt6.QtWidgets has none of them).
MOVED_TO_QTGUI = {"QAction", "QActionGroup", "QShortcut", "QUndoCommand", "QUndoGroup", "QUndoStack",
                  "QFileSystemModel"}

# member -> [(owning class as spelled in code, what to write instead)]: gone from Qt 6 in any spelling.
REMOVED_ENUM_MEMBERS = {
    "MidButton": [("Qt", "Qt.MouseButton.MiddleButton")],
    "TextColorRole": [("Qt", "Qt.ItemDataRole.ForegroundRole")],
    "BackgroundColorRole": [("Qt", "Qt.ItemDataRole.BackgroundRole")],
    "ItemIsTristate": [("Qt", "Qt.ItemFlag.ItemIsAutoTristate")],
    "HighQualityAntialiasing": [("QPainter", "QPainter.RenderHint.Antialiasing")],
    "NonCosmeticDefaultPen": [("QPainter", "drop it (obsolete since Qt 5)")],
    "Background": [("QPalette", "QPalette.ColorRole.Window")],
    "Foreground": [("QPalette", "QPalette.ColorRole.WindowText")],
    "SystemLocaleDate": [("Qt", "QLocale.system().toString(date, QLocale.FormatType.ShortFormat)")],
    "SystemLocaleShortDate": [("Qt", "QLocale.system().toString(date, QLocale.FormatType.ShortFormat)")],
    "SystemLocaleLongDate": [("Qt", "QLocale.system().toString(date, QLocale.FormatType.LongFormat)")],
    "DefaultLocaleShortDate": [("Qt", "QLocale().toString(date, QLocale.FormatType.ShortFormat)")],
    "DefaultLocaleLongDate": [("Qt", "QLocale().toString(date, QLocale.FormatType.LongFormat)")],
    "LocaleDate": [("Qt", "QLocale().toString(date)")],
}

# signal -> {overload argument: what to use}: overloads Qt 6 removed.
_TEXT = "connect the plain signal and read the text, or use textActivated / textHighlighted (Qt >= 5.14)"
REMOVED_SIGNAL_OVERLOADS = {
    "activated": {"str": _TEXT, "QString": _TEXT},
    "highlighted": {"str": _TEXT, "QString": _TEXT},
    "currentIndexChanged": {"str": "currentTextChanged", "QString": "currentTextChanged"},
    "valueChanged": {"str": "textChanged", "QString": "textChanged"},
    "buttonClicked": {"int": "idClicked (Qt >= 5.15)"},
    "buttonPressed": {"int": "idPressed (Qt >= 5.15)"},
    "buttonReleased": {"int": "idReleased (Qt >= 5.15)"},
    "buttonToggled": {"int": "idToggled (Qt >= 5.15)"},
    "mapped": {"int": "mappedInt", "str": "mappedString", "QString": "mappedString", "QObject": "mappedObject"},
}

FONT_METRICS = {"QFontMetrics", "QFontMetricsF"}
DATETIME_CLASSES = {"QDateTime"}

PY312_REMOVED = {
    "distutils": "use setuptools / packaging / shutil / sysconfig",
    "imp": "use importlib",
    "asynchat": "use asyncio",
    "asyncore": "use asyncio",
    "smtpd": "use aiosmtpd or nothing",
}
