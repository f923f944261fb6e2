"""The synthetic scene and our classification rasters as QGIS 3.22 sees them (headless)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rssgl_qgis.io.raster import raster_info
from rssgl_qgis.io.raster_write import write_classification
from rssgl_qgis.io.scene import write_synthetic_scene

KW = {"height": 40, "width": 44, "bands": 30, "n_classes": 5}


@pytest.fixture(scope="module")
def scene_paths(tmp_path_factory):
    return write_synthetic_scene(tmp_path_factory.mktemp("qgis_scene"), 6, **KW)


def test_cube_opens_with_crs_band_count_and_wavelength_band_names(qgis_app, scene_paths):
    from qgis.core import QgsCoordinateReferenceSystem, QgsRasterLayer

    layer = QgsRasterLayer(scene_paths["cube"], "cube", "gdal")
    assert layer.isValid(), layer.error().summary()
    assert layer.crs() == QgsCoordinateReferenceSystem("EPSG:32610")
    assert layer.bandCount() == 30
    assert (layer.width(), layer.height()) == (44, 40)
    assert layer.rasterUnitsPerPixelX() == pytest.approx(20.0)
    info = raster_info(scene_paths["cube"])
    for band in (1, 12, 30):
        # QGIS zero-pads the number ("Band 01: 400.0 nm" when there are 10-99 bands).
        assert re.fullmatch(rf"Band 0*{band}: {info.wavelengths[band - 1]:.1f} nm", layer.bandName(band))
    provider = layer.dataProvider()
    assert provider.sourceHasNoDataValue(1) and provider.sourceNoDataValue(1) == -32768


def test_classification_qml_gives_a_paletted_renderer_with_class_names(qgis_app, scene_paths, tmp_path):
    from qgis.core import QgsPalettedRasterRenderer, QgsRasterLayer

    info = raster_info(scene_paths["cube"])
    classes = np.zeros(info.shape, np.uint8)
    classes[:, :20], classes[:, 20:] = 3, 7
    out = tmp_path / "classes.tif"
    names, colors = ["Mais (grain)", "Eau <libre>"], [(255, 211, 0), (30, 90, 200)]
    write_classification(out, classes, info, [3, 7], names, colors)
    layer = QgsRasterLayer(str(out), "classes", "gdal")
    assert layer.isValid()
    message, ok = layer.loadDefaultStyle()  # the .qml sidecar
    assert ok, message
    renderer = layer.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    got = [(c.value, c.label, c.color.name()) for c in renderer.classes()]
    assert got == [(3, "Mais (grain)", "#ffd300"), (7, "Eau <libre>", "#1e5ac8")]
    assert layer.dataProvider().sourceNoDataValue(1) == 0


def test_label_raster_of_the_scene_is_styled_on_load(qgis_app, scene_paths):
    from qgis.core import QgsPalettedRasterRenderer, QgsRasterLayer

    layer = QgsRasterLayer(scene_paths["labels"], "labels", "gdal")
    layer.loadDefaultStyle()
    assert isinstance(layer.renderer(), QgsPalettedRasterRenderer)
    assert [c.label for c in layer.renderer().classes()][:2] == ["Corn", "Soybean"]


def test_training_polygons_open_with_class_fields(qgis_app, scene_paths):
    from qgis.core import QgsVectorLayer

    from rssgl_qgis.qgis_compat import GEOMETRY_POLYGON

    layer = QgsVectorLayer(scene_paths["polygons"], "training", "ogr")
    assert layer.isValid()
    assert layer.geometryType() == GEOMETRY_POLYGON
    fields = layer.fields()
    assert fields.indexOf("class_id") >= 0 and fields.indexOf("class_name") >= 0
    assert fields.field("class_id").typeName().lower().startswith("integer")
    values = {(f["class_id"], f["class_name"]) for f in layer.getFeatures()}
    assert {v for v, _ in values} == {1, 2, 3, 4, 5}
    assert ("1", "Corn") not in values and (1, "Corn") in values
    assert layer.crs().authid() == "EPSG:32610"
