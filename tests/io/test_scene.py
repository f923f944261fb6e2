"""The synthetic scene as files: georeferenced int16 cube with wavelengths, label raster, GPKG polygons."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from osgeo import gdal, ogr

from rssgl_qgis.core.data.synthetic import make_synthetic_scene
from rssgl_qgis.io.raster import raster_info, read_cube
from rssgl_qgis.io.raster_write import read_class_table
from rssgl_qgis.io.scene import write_synthetic_scene

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KW = {"height": 40, "width": 48, "bands": 24, "n_classes": 5}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene")
    return write_synthetic_scene(folder, 4, nodata_edge=6, **KW), make_synthetic_scene(4, dtype="int16",
                                                                                       nodata_edge=6, **KW)


def test_files_and_nothing_else(written):
    paths, _ = written
    folder = os.path.dirname(paths["cube"])
    assert sorted(os.listdir(folder)) == ["synthetic_cube.tif", "synthetic_labels.qml", "synthetic_labels.tif",
                                          "synthetic_labels.tif.aux.xml", "synthetic_training.gpkg"]


def test_cube_is_georeferenced_with_wavelengths_and_nodata(written):
    paths, scene = written
    info = raster_info(paths["cube"])
    assert (info.bands, info.height, info.width, info.dtype) == (24, 40, 48, "Int16")
    assert "UTM zone 10N" in info.crs_wkt and info.pixel_size == (20.0, 20.0)
    assert info.nodata == [-32768.0] * 24
    assert info.wavelengths == pytest.approx(scene.wavelengths, abs=0.01)
    assert info.band_names[11] == f"{info.wavelengths[11]:.1f} nm"
    envi = gdal.Open(paths["cube"]).GetMetadata("ENVI")
    assert envi["wavelength_units"] == "Nanometers" and envi["wavelength"].startswith("{400.00, ")
    cube, valid = read_cube(paths["cube"])
    assert np.array_equal(valid, scene.valid) and not valid.all()
    assert np.array_equal(cube[:, valid], scene.cube[:, valid].astype(np.float32))


def test_label_raster_is_the_styled_ground_truth(written):
    paths, scene = written
    ds = gdal.Open(paths["labels"])
    assert np.array_equal(ds.ReadAsArray(), scene.labels)
    assert ds.GetGeoTransform() == gdal.Open(paths["cube"]).GetGeoTransform()
    assert read_class_table(paths["labels"])[:2] == (scene.class_values.tolist(), scene.class_names)


def test_polygons_have_class_id_and_class_name(written):
    paths, scene = written
    source = ogr.Open(paths["polygons"])
    layer = source.GetLayer(0)
    definition = layer.GetLayerDefn()
    fields = {definition.GetFieldDefn(i).GetName(): definition.GetFieldDefn(i).GetType()
              for i in range(definition.GetFieldCount())}
    assert fields == {"class_id": ogr.OFTInteger, "class_name": ogr.OFTString}
    assert layer.GetGeomType() == ogr.wkbPolygon and layer.GetFeatureCount() == len(scene.train_polygons)
    rows = {(f.GetField("class_id"), f.GetField("class_name")) for f in layer}
    assert rows == set(zip(scene.class_values.tolist(), scene.class_names, strict=True))


def test_cli_writes_the_scene(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO}
    out = subprocess.run([sys.executable, "-m", "rssgl_qgis.io.scene", str(tmp_path / "demo"), "--seed", "1",
                          "--size", "32", "--bands", "20", "--classes", "4", "--wgs84"],
                         capture_output=True, text=True, env=env, check=True).stdout
    assert "cube: " in out and "polygons: " in out
    assert raster_info(tmp_path / "demo" / "synthetic_cube.tif").bands == 20
    source = ogr.Open(str(tmp_path / "demo" / "synthetic_training.gpkg"))  # keep the source alive (GDAL)
    assert source.GetLayer(0).GetSpatialRef().GetAuthorityCode(None) == "4326"


def test_cli_reports_bad_arguments_without_a_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO}
    done = subprocess.run([sys.executable, "-m", "rssgl_qgis.io.scene", str(tmp_path / "x"), "--bands", "5"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2
    assert "needs 10..400 bands, got 5" in done.stderr and "Traceback" not in done.stderr
