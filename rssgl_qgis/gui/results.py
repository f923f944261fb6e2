"""Load a run's outputs into the project, styled: class map, confidence, "where to draw next".

Main thread only (called from the task's finished() path). The class map gets a
QgsPalettedRasterRenderer whose labels are the class names the user gave in the dock, so the
legend reads "Corn", not "3"; confidence gets the red (unsure) to green (sure) ramp of
layer_style.py; the guidance
layer is drawn as thick outlines with its rank as a label, so "1" is where to draw first.
"""

from __future__ import annotations

from qgis.core import (
    QgsFillSymbol,
    QgsPalettedRasterRenderer,
    QgsPalLayerSettings,
    QgsProject,
    QgsRasterLayer,
    QgsTextBufferSettings,
    QgsTextFormat,
    QgsVectorLayer,
    QgsVectorLayerSimpleLabeling,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QColor

from ..layer_style import apply_confidence_style

__all__ = ["add_to_results_group", "load_classification", "load_confidence", "load_guidance", "remove_layers"]

GROUP_NAME = "RSSGL results"


def load_classification(path: str, name: str, classes: list[tuple[int, str, QColor]]) -> QgsRasterLayer:
    """Raster layer for a class map with a paletted renderer: (value, name, colour) per class."""
    layer = QgsRasterLayer(path, name, "gdal")
    if not layer.isValid():
        raise RuntimeError(
            QCoreApplication.translate("RssglResults", "QGIS could not open the classification {0}.").format(
                path
            )
        )
    palette = [QgsPalettedRasterRenderer.Class(int(v), QColor(c), str(n)) for v, n, c in classes]
    renderer = QgsPalettedRasterRenderer(layer.dataProvider(), 1, palette)
    layer.setRenderer(renderer)
    return layer


def load_confidence(path: str, name: str) -> QgsRasterLayer:
    """Raster layer for a 0..1 confidence map: red = unsure, yellow, green = sure."""
    layer = QgsRasterLayer(path, name, "gdal")
    if not layer.isValid():
        raise RuntimeError(
            QCoreApplication.translate(
                "RssglResults", "QGIS could not open the confidence raster {0}."
            ).format(path)
        )
    apply_confidence_style(layer)  # the same ramp as the Processing outputs and their .qml
    return layer


def load_guidance(path: str, name: str) -> QgsVectorLayer:
    """The "where to draw next" polygons: magenta outlines, labelled with their rank."""
    layer = QgsVectorLayer(f"{path}|layername=where_to_draw_next", name, "ogr")
    if not layer.isValid():
        raise RuntimeError(
            QCoreApplication.translate("RssglResults", "QGIS could not open the guidance layer {0}.").format(
                path
            )
        )
    symbol = QgsFillSymbol.createSimple(
        {"color": "255,0,255,40", "outline_color": "255,0,255,255", "outline_width": "0.8", "style": "solid"}
    )
    layer.renderer().setSymbol(symbol)
    settings = QgsPalLayerSettings()
    settings.fieldName = "rank"
    text = QgsTextFormat()
    text.setSize(11)
    text.setColor(QColor(255, 0, 255))
    buffer = QgsTextBufferSettings()
    buffer.setEnabled(True)
    buffer.setColor(QColor(255, 255, 255))
    buffer.setSize(1.0)
    text.setBuffer(buffer)
    settings.setFormat(text)
    layer.setLabeling(QgsVectorLayerSimpleLabeling(settings))
    layer.setLabelsEnabled(True)
    return layer


def add_to_results_group(project: QgsProject, layers: list, above_layer_id: str | None = None) -> None:
    """Add layers on top of the "RSSGL results" group.

    The group is created directly above ``above_layer_id`` (the classified raster) when that layer
    sits at the top level of the layer tree, else at the top: the training polygons usually lie
    above the raster, and they must stay visible over the class map so the user sees what was drawn.
    """
    root = project.layerTreeRoot()
    group = root.findGroup(GROUP_NAME)
    if group is None:
        position = 0
        for index, child in enumerate(root.children()):
            if above_layer_id and getattr(child, "layerId", lambda: None)() == above_layer_id:
                position = index
                break
        group = root.insertGroup(position, GROUP_NAME)
    for position, layer in enumerate(layers):
        project.addMapLayer(layer, False)
        group.insertLayer(position, layer)
    # A view does not expand a group that was empty when inserted; toggling re-emits expandedChanged
    # now that it has children, so the new legend is visible at once.
    group.setExpanded(False)
    group.setExpanded(True)


def remove_layers(project: QgsProject, layer_ids: list[str]) -> None:
    """Remove the layers that still exist (the user may have removed some already)."""
    existing = [lid for lid in layer_ids if project.mapLayer(lid) is not None]
    if existing:
        project.removeMapLayers(existing)
