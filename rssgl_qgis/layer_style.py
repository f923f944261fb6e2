"""Styles for RSSGL outputs in QGIS: paletted class maps with names, a colour ramp for confidence.

The classification GeoTIFF carries its colour table and category names (written by io.raster_write), and
a .qml sidecar; QGIS's default renderer for a colour table has no class names, so when Processing
loads an output we set a QgsPalettedRasterRenderer built from the file's own categories. The
post-processor objects must stay referenced after the algorithm copy that created them is gone
(see attach_post_processor).
"""

from __future__ import annotations

from dataclasses import dataclass

from osgeo import gdal
from qgis.core import (
    QgsColorRampShader,
    QgsMapLayer,
    QgsPalettedRasterRenderer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QColor

from .qgis_compat import SHADER_INTERPOLATED


@dataclass(frozen=True)
class Category:
    """One class of a classification raster: value, name and RGBA colour."""

    value: int
    name: str
    color: tuple[int, int, int, int]


def categories_from_raster(path: str) -> list[Category]:
    """The classes a classification GeoTIFF declares: entries with a category name, value 0 excluded.

    Falls back to the colour table's non-black entries (named "class <value>") when the file has no
    category names, so a class map from another tool still gets a usable legend.
    """
    dataset = gdal.Open(path)
    if dataset is None:
        return []
    band = dataset.GetRasterBand(1)
    band.GetMetadata()  # GDAL 3.6 GTiff loads the .aux.xml lazily; GetCategoryNames alone does not trigger it
    names = band.GetCategoryNames() or []
    table = band.GetColorTable()
    categories = []
    count = max(len(names), table.GetCount() if table is not None else 0)
    for value in range(1, count):
        name = names[value] if value < len(names) else ""
        entry = tuple(table.GetColorEntry(value)) if table is not None and value < table.GetCount() else None
        if not name and (entry is None or entry[:3] == (0, 0, 0)):
            continue
        color = entry if entry is not None else (128, 128, 128, 255)
        categories.append(Category(value, name or f"class {value}", tuple(int(c) for c in color)))
    return categories


def paletted_renderer(layer: QgsRasterLayer, categories: list[Category]) -> QgsPalettedRasterRenderer:
    """A paletted renderer showing each category's name and colour (band 1)."""
    classes = [QgsPalettedRasterRenderer.Class(c.value, QColor(*c.color), c.name) for c in categories]
    return QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes)


def apply_classification_style(layer: QgsRasterLayer, categories: list[Category] | None = None) -> bool:
    """Give ``layer`` the paletted class style; True when categories were found."""
    categories = categories if categories is not None else categories_from_raster(layer.source())
    if not categories:
        return False
    layer.setRenderer(paletted_renderer(layer, categories))
    layer.triggerRepaint()
    return True


def apply_confidence_style(layer: QgsRasterLayer) -> None:
    """A red (unsure) to green (sure) ramp over 0-1 for the confidence raster."""
    ramp = QgsColorRampShader(0.0, 1.0)
    ramp.setColorRampType(SHADER_INTERPOLATED)
    ramp.setColorRampItemList([
        QgsColorRampShader.ColorRampItem(0.0, QColor(215, 25, 28), "0 (unsure)"),
        QgsColorRampShader.ColorRampItem(0.5, QColor(255, 255, 191), "0.5"),
        QgsColorRampShader.ColorRampItem(1.0, QColor(26, 150, 65), "1 (sure)"),
    ])
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(ramp)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(0.0)
    renderer.setClassificationMax(1.0)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


class ClassificationPostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Styles a loaded classification output as a paletted layer with the model's names and colours."""

    def postProcessLayer(self, layer: QgsMapLayer, context: QgsProcessingContext,  # noqa: N802
                         feedback: QgsProcessingFeedback) -> None:
        if isinstance(layer, QgsRasterLayer) and not apply_classification_style(layer):
            feedback.pushWarning(QCoreApplication.translate(
                "ClassificationPostProcessor", "No class names were found in {}; the layer keeps its default style."
            ).format(layer.source()))


class ConfidencePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Styles a loaded confidence output with a red-to-green ramp over 0-1."""

    def postProcessLayer(self, layer: QgsMapLayer, context: QgsProcessingContext,  # noqa: N802
                         feedback: QgsProcessingFeedback) -> None:
        if isinstance(layer, QgsRasterLayer):
            apply_confidence_style(layer)


#: Post-processors of recent outputs, kept referenced until replaced (see attach_post_processor).
_KEEP_ALIVE: dict[str, QgsProcessingLayerPostProcessorInterface] = {}
_KEEP_ALIVE_MAX = 64


def attach_post_processor(algorithm, context: QgsProcessingContext, path: str | None,
                          processor: QgsProcessingLayerPostProcessorInterface, layer_name: str) -> None:
    """Set ``processor`` on the output ``path`` when QGIS will load it, and keep it referenced.

    Does nothing when the output is not going to be loaded (processing.run, qgis_process).
    """
    if not path or not context.willLoadLayerOnCompletion(path):
        return
    algorithm.post_processors.append(processor)
    # QGIS runs the algorithm on a copy (createInstance) that may be deleted before the layers are
    # loaded (QgsProcessingAlgorithm.run, the dialog's execute path); the context holds only a C++
    # pointer, so without a reference outside the copy the Python object is collected and the layer
    # loads grey. Keep the latest processor per output path (bounded).
    _KEEP_ALIVE.pop(path, None)
    _KEEP_ALIVE[path] = processor
    while len(_KEEP_ALIVE) > _KEEP_ALIVE_MAX:
        _KEEP_ALIVE.pop(next(iter(_KEEP_ALIVE)))
    details = context.layerToLoadOnCompletionDetails(path)
    details.setPostProcessor(processor)
    if layer_name:
        details.name = layer_name
