"""Training polygons in QGIS: create the layer, keep its classes and its categorized style in sync.

The class list the user edits in the dock *is* the layer's categorized renderer (value, label,
colour), so the legend, the map and the dock always agree, and the classes travel with the layer
style (.qml / project). New polygons receive the active class through the fields' default value
definitions, which every digitising path of QGIS 3.22 applies (add-feature tool, attribute form,
QgsVectorLayerUtils.createFeature); the attribute form is suppressed for layers we create, so
drawing ten polygons is ten clicks-and-right-clicks, not ten dialogs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransformContext,
    QgsDefaultValue,
    QgsFeatureRequest,
    QgsField,
    QgsFields,
    QgsProject,
    QgsRendererCategory,
    QgsSymbol,
    QgsVectorFileWriter,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QColor

from ..core.palette import default_colors
from ..qgis_compat import FORM_SUPPRESS_ON, WKB_MULTIPOLYGON, field_type

__all__ = [
    "rename_in_features",
    "snapshot_layer",
    "CLASS_ID_FIELD",
    "CLASS_NAME_FIELD",
    "ClassEntry",
    "apply_classes",
    "class_field_candidates",
    "create_training_layer",
    "default_color",
    "read_classes",
    "set_active_class",
]

CLASS_ID_FIELD = "class_id"
CLASS_NAME_FIELD = "class_name"
LAYER_NAME = "training_polygons"


@dataclass
class ClassEntry:
    """One class: the value stored in the class field, its display name and its colour."""

    value: int | str
    name: str
    color: QColor


def default_color(value: int) -> QColor:
    """The colour the engine would give class ``value`` (so the map matches the training polygons)."""
    if value < 1:
        return QColor(128, 128, 128)
    r, g, b = default_colors(value)[value - 1]
    return QColor(r, g, b)


def create_training_layer(path: str, crs: QgsCoordinateReferenceSystem, name: str) -> QgsVectorLayer:
    """Create a GeoPackage polygon layer with class_id (int) and class_name (text) at ``path``.

    Raises RuntimeError with GDAL's message when the file cannot be written (read-only folder,
    file locked by another program) and ValueError when the file exists already (never overwritten:
    it may hold someone's digitising work).
    """
    if os.path.exists(path):
        raise ValueError(
            QCoreApplication.translate(
                "TrainingLayer", "The file {0} exists already; choose another name so it is not overwritten."
            ).format(path)
        )
    fields = QgsFields()
    fields.append(QgsField(CLASS_ID_FIELD, field_type("int")))
    fields.append(QgsField(CLASS_NAME_FIELD, field_type("text"), len=80))
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = LAYER_NAME
    writer = QgsVectorFileWriter.create(
        path, fields, WKB_MULTIPOLYGON, crs, QgsCoordinateTransformContext(), options
    )
    if writer.hasError() != QgsVectorFileWriter.WriterError.NoError:
        message = writer.errorMessage()
        del writer
        raise RuntimeError(
            QCoreApplication.translate("TrainingLayer", "Could not create {0}: {1}").format(path, message)
        )
    del writer  # flushes and closes the file
    layer = QgsVectorLayer(f"{path}|layername={LAYER_NAME}", name, "ogr")
    if not layer.isValid():
        raise RuntimeError(
            QCoreApplication.translate("TrainingLayer", "The new training layer {0} could not be opened.").format(path)
        )
    config = layer.editFormConfig()
    config.setSuppress(FORM_SUPPRESS_ON)
    layer.setEditFormConfig(config)
    apply_classes(layer, CLASS_ID_FIELD, [])
    return layer


def class_field_candidates(layer: QgsVectorLayer) -> list[str]:
    """Fields that can hold classes (integers or text), the usual names first."""
    preferred = (CLASS_ID_FIELD, "class", "classid", "class_value", "label", CLASS_NAME_FIELD)
    keys = set(layer.primaryKeyAttributes())  # GeoPackage "fid": unique per polygon, never a class
    names = [
        f.name()
        for i, f in enumerate(layer.fields())
        if i not in keys and f.type() in (field_type("int"), field_type("int64"), field_type("text"))
    ]
    return sorted(names, key=lambda n: (preferred.index(n.lower()) if n.lower() in preferred else len(preferred), n))


def _is_numeric(layer: QgsVectorLayer, field: str) -> bool:
    index = layer.fields().indexFromName(field)
    return index >= 0 and layer.fields().at(index).type() in (field_type("int"), field_type("int64"))


def read_classes(layer: QgsVectorLayer, field: str) -> list[ClassEntry]:
    """Classes of ``layer``: its categorized style on ``field`` first, then values found in the data.

    Names for values missing from the style come from the class_name field when the layer has one.
    """
    numeric = _is_numeric(layer, field)
    entries: dict = {}
    renderer = layer.renderer()
    if isinstance(renderer, QgsCategorizedSymbolRenderer) and renderer.classAttribute() == field:
        for category in renderer.categories():
            value = category.value()
            if value is None or value == "" or (hasattr(value, "isNull") and value.isNull()):
                continue
            try:
                key = int(value) if numeric else str(value)
            except (TypeError, ValueError):
                continue
            color = QColor(category.symbol().color())
            color.setAlpha(255)  # the polygons are drawn see-through; the class colour itself is opaque
            entries[key] = ClassEntry(key, category.label() or str(key), color)
    index = layer.fields().indexFromName(field)
    if index < 0:
        return list(entries.values())
    name_index = layer.fields().indexFromName(CLASS_NAME_FIELD)
    names: dict = {}
    if name_index >= 0 and name_index != index:
        for feature in layer.getFeatures():
            value = feature[index]
            if value is not None and value not in names and feature[name_index]:
                names[value] = str(feature[name_index])
    for value in sorted(v for v in layer.uniqueValues(index) if v is not None and str(v) != "NULL"):
        key = int(value) if numeric else str(value)
        if key not in entries:
            color = default_color(key) if numeric else default_color(len(entries) + 1)
            entries[key] = ClassEntry(key, names.get(value, str(key)), color)
    return sorted(entries.values(), key=lambda e: (isinstance(e.value, str), e.value))


def apply_classes(layer: QgsVectorLayer, field: str, classes: list[ClassEntry]) -> None:
    """Make the layer's style a categorized renderer on ``field`` with exactly these classes.

    Polygons are drawn half transparent with a solid outline, so the image stays readable under them.
    """
    categories = []
    for entry in classes:
        symbol = QgsSymbol.defaultSymbol(layer.geometryType())
        fill = QColor(entry.color)
        fill.setAlpha(110)
        symbol.setColor(fill)
        if symbol.symbolLayerCount():
            sl = symbol.symbolLayer(0)
            if hasattr(sl, "setStrokeColor"):
                sl.setStrokeColor(QColor(entry.color).darker(130))
                sl.setStrokeWidth(0.6)
        categories.append(QgsRendererCategory(entry.value, symbol, entry.name))
    renderer = QgsCategorizedSymbolRenderer(field, categories)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def set_active_class(layer: QgsVectorLayer, field: str, entry: ClassEntry | None) -> None:
    """New features get ``entry`` (its value in ``field``, its name in class_name when that exists)."""
    fields = layer.fields()
    index = fields.indexFromName(field)
    if index < 0:
        return
    if entry is None:
        layer.setDefaultValueDefinition(index, QgsDefaultValue())
        return
    literal = str(int(entry.value)) if _is_numeric(layer, field) else _quote(str(entry.value))
    layer.setDefaultValueDefinition(index, QgsDefaultValue(literal))
    name_index = fields.indexFromName(CLASS_NAME_FIELD)
    if name_index >= 0 and name_index != index:
        layer.setDefaultValueDefinition(name_index, QgsDefaultValue(_quote(entry.name)))


def _quote(text: str) -> str:
    """A QGIS expression string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def snapshot_layer(layer: QgsVectorLayer, path: str) -> None:
    """Write what the user sees (including unsaved edits) to a GeoPackage the worker thread can read."""
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = "training_polygons"
    # Leave out the primary key ("fid"): unsaved polygons hold the placeholder "Autogenerate" there.
    keys = set(layer.primaryKeyAttributes())
    options.attributes = [i for i in range(layer.fields().count()) if i not in keys]
    error, message, _path, _layer = QgsVectorFileWriter.writeAsVectorFormatV3(
        layer, path, QgsProject.instance().transformContext(), options
    )
    if error != QgsVectorFileWriter.WriterError.NoError:
        raise RuntimeError(f"Could not save a copy of the training polygons to {path}: {message}")


def rename_in_features(layer: QgsVectorLayer, field: str, value: int, name: str) -> None:
    """Keep class_name consistent with the legend after a rename (edit buffer if editing, else the file)."""
    name_index = layer.fields().indexFromName(CLASS_NAME_FIELD)
    field_index = layer.fields().indexFromName(field)
    if name_index < 0 or field_index < 0 or name_index == field_index:
        return
    request = QgsFeatureRequest().setFilterExpression(f'"{field}" = {int(value)}')
    ids = [f.id() for f in layer.getFeatures(request)]
    if not ids:
        return
    if layer.isEditable():
        for fid in ids:
            layer.changeAttributeValue(fid, name_index, name)
    else:
        layer.dataProvider().changeAttributeValues({fid: {name_index: name} for fid in ids})
    layer.triggerRepaint()

