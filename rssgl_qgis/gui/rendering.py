"""True-colour rendering of a hyperspectral raster layer (bands nearest 640 / 550 / 470 nm).

Why: QGIS shows a multiband raster with bands 1, 2, 3 as red, green, blue; for a hyperspectral
sensor those are three violet bands (EnMAP: 418-429 nm), so the scene looks grey-blue and analysts
cannot see where to draw samples. When the file records its band wavelengths the layer is shown in
true colour instead, with a 2-98 % cumulative-cut stretch per band (reflectance is dark and skewed;
a min/max stretch would be dominated by a few bright roofs). Only a layer that still has QGIS's
default rendering is changed: a style the user chose is never overwritten.
"""

from __future__ import annotations

from qgis.core import (
    QgsContrastEnhancement,
    QgsMultiBandColorRenderer,
    QgsProviderRegistry,
    QgsRasterLayer,
    QgsSingleBandGrayRenderer,
)

from ..core.data.band_selection import true_colour_bands
from ..io.raster import raster_info
from ..qgis_compat import RANGE_LIMIT_CUMULATIVE_CUT

__all__ = ["has_default_renderer", "apply_true_colour"]

#: Custom property set on a layer this module styled (so a later call knows the style is its own).
PROPERTY = "rssgl/true_colour"


def has_default_renderer(layer: QgsRasterLayer) -> bool:
    """Whether the layer shows what QGIS picks for a raster opened without a style: bands 1, 2, 3 as
    red, green, blue (multiband) or band 1 in grey."""
    renderer = layer.renderer()
    if isinstance(renderer, QgsMultiBandColorRenderer):
        return (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (1, 2, 3)
    if isinstance(renderer, QgsSingleBandGrayRenderer):
        return renderer.grayBand() == 1
    return False


def apply_true_colour(layer: QgsRasterLayer | None) -> tuple[int, int, int] | None:
    """Show ``layer`` in true colour when its file records wavelengths and it still has the default
    rendering; returns the (red, green, blue) band numbers used, or None when nothing changed."""
    if not isinstance(layer, QgsRasterLayer) or not layer.isValid() or layer.providerType() != "gdal":
        return None
    if layer.bandCount() < 3 or layer.customProperty(PROPERTY) or not has_default_renderer(layer):
        return None
    path = QgsProviderRegistry.instance().decodeUri("gdal", layer.source()).get("path") or layer.source()
    try:
        bands = true_colour_bands(raster_info(path).wavelengths)
    except ValueError:  # a source GDAL cannot open on its own (e.g. a subdataset URI): leave it as it is
        return None
    if bands is None:
        return None
    renderer = QgsMultiBandColorRenderer(layer.dataProvider(), *bands)
    layer.setRenderer(renderer)
    layer.setContrastEnhancement(QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum,
                                 RANGE_LIMIT_CUMULATIVE_CUT)
    layer.setCustomProperty(PROPERTY, True)
    layer.triggerRepaint()
    return bands
