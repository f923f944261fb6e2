"""The same reflectances stored as Int16 with a scale factor, UInt16 with nodata 0, or Float32 with NaN
must be classified from the same values the model was trained on.

Training reads whole rasters with io.raster.read_cube; tiled classification reads raw windows with
io.blocks and converts on the device. If the two paths disagreed on scale/offset or nodata, every
Int16 product with a reflectance scale would be classified from values 10 000 times too large,
silently. Each encoding is classified with io.classify_raster and compared with
``RssglClassifier.predict_proba`` on ``read_cube`` of the same file.
"""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from rssgl_qgis.io.classify_raster import ClassifyOutputs, classify_raster
from rssgl_qgis.io.raster import read_cube

from .helpers import WAVELENGTHS, scene_cube, train_tiny_classifier, write_raster


@pytest.fixture(scope="module")
def model():
    return train_tiny_classifier(wavelengths=WAVELENGTHS)


def _encode(tmp_path, kind: str):
    """The 24 x 24 x 4 scene in one encoding, with a block of invalid pixels; returns (path, invalid)."""
    cube = scene_cube()
    invalid = np.zeros(cube.shape[1:], bool)
    invalid[3:6, 10:20] = True
    if kind == "int16-scaled":
        raw = np.round(cube * 10000).astype(np.int16)
        raw[:, invalid] = -32768
        path = write_raster(tmp_path / "int16.tif", raw.astype(np.float32), gdal_type="Int16", nodata=-32768,
                            wavelengths=WAVELENGTHS)
        dataset = gdal.Open(str(path), gdal.GA_Update)
        for i in range(raw.shape[0]):
            dataset.GetRasterBand(i + 1).SetScale(1e-4)
            dataset.GetRasterBand(i + 1).SetOffset(0.0)
        dataset = None
    elif kind == "uint16-nodata0":
        raw = np.round(cube * 10000).astype(np.uint16)
        raw[1, invalid] = 0  # one band at nodata is enough to invalidate the pixel
        path = write_raster(tmp_path / "uint16.tif", raw.astype(np.float32), gdal_type="UInt16", nodata=0,
                            wavelengths=WAVELENGTHS)
    else:
        raw = cube.copy()
        raw[2, invalid] = np.nan
        path = write_raster(tmp_path / "float32.tif", raw, wavelengths=WAVELENGTHS)
    return path, invalid


@pytest.mark.parametrize("kind", ["int16-scaled", "uint16-nodata0", "float32-nan"])
def test_classification_reads_what_training_reads(model, tmp_path, kind):
    path, invalid = _encode(tmp_path, kind)
    cube, valid = read_cube(path)
    np.testing.assert_array_equal(valid, ~invalid)
    if kind == "int16-scaled":
        assert 0.1 < float(cube[:, valid].mean()) < 1.0, "scale factor not applied by read_cube"
    proba = model.predict_proba(cube, valid)
    expected = np.where(valid, model.classes_[proba.argmax(axis=0)], 0)
    out = tmp_path / "out"
    out.mkdir()
    classify_raster(model, path, ClassifyOutputs(str(out / "classes.tif"), str(out / "confidence.tif")))
    labels = gdal.Open(str(out / "classes.tif")).ReadAsArray()
    confidence = gdal.Open(str(out / "confidence.tif")).ReadAsArray()
    assert (labels[invalid] == 0).all() and (confidence[invalid] == -1).all()
    np.testing.assert_allclose(confidence[valid], proba.max(axis=0)[valid], atol=1e-4)
    top2 = np.sort(proba, axis=0)[-2:]
    clear = valid & (top2[1] - top2[0] > 1e-3)  # ignore near-ties, where float rounding may flip the argmax
    np.testing.assert_array_equal(labels[clear], expected[clear])
