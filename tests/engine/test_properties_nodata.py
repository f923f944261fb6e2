"""Property-based tests of nodata handling: reading rasters and tiled prediction on random nodata patterns.

Random band counts, sizes, GDAL data types, per-band nodata values (or none) and NaN holes. Checked:
``io.raster.read_cube`` marks a pixel invalid exactly when some band holds its nodata value or a
non-finite number (and zeroes it); ``core.prediction.inference.predict_tiled`` writes every pixel exactly once,
0 / -1 exactly at invalid pixels, and - with a per-pixel network - gives the same map for any tile,
halo and batch. No qgis import; rasters live in GDAL's in-memory file system.
"""

from __future__ import annotations

import uuid

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from osgeo import gdal

from rssgl_qgis.core.prediction.inference import TilePredictor, predict_tiled
from rssgl_qgis.core.prediction.tiling import Window
from rssgl_qgis.io.raster import read_cube

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = {"Int16": np.int16, "UInt16": np.uint16, "Float32": np.float32}


@st.composite
def rasters(draw):
    """(cube (B, H, W), per-band nodata list, GDAL type name) with random holes."""
    bands, height, width = draw(st.integers(1, 5)), draw(st.integers(1, 40)), draw(st.integers(1, 40))
    gdal_type = draw(st.sampled_from(sorted(DTYPES)))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    cube = rng.integers(1, 3000, size=(bands, height, width)).astype(DTYPES[gdal_type])
    # GeoTIFF keeps ONE nodata value for all bands (the GDAL_NODATA tag), so draw one per raster.
    value = draw(st.sampled_from([None, 0, -9999, 65535, 17]))
    if value is not None:
        limits = np.iinfo(cube.dtype) if np.issubdtype(cube.dtype, np.integer) else None
        if limits is not None and not limits.min <= value <= limits.max:
            value = None
    nodata: list[float | None] = [None if value is None else float(value)] * bands
    for b in range(bands):
        holes = rng.random((height, width)) < draw(st.floats(0.0, 0.4))
        if value is not None and draw(st.booleans()):
            cube[b][holes] = value
        elif gdal_type == "Float32":
            cube[b][holes] = np.nan
    if gdal_type == "Float32" and draw(st.booleans()):
        cube[0][rng.random((height, width)) < 0.1] = np.inf
    return cube, nodata, gdal_type


def _write(cube: np.ndarray, nodata, gdal_type: str) -> str:
    path = f"/vsimem/nodata_{uuid.uuid4().hex}.tif"
    bands, height, width = cube.shape
    dataset = gdal.GetDriverByName("GTiff").Create(path, width, height, bands, gdal.GetDataTypeByName(gdal_type))
    dataset.SetGeoTransform((0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    for i in range(bands):
        band = dataset.GetRasterBand(i + 1)
        if nodata[i] is not None:
            band.SetNoDataValue(nodata[i])
        band.WriteArray(cube[i])
    dataset = None
    return path


def _naive_valid(cube: np.ndarray, nodata) -> np.ndarray:
    valid = np.ones(cube.shape[1:], dtype=bool)
    for b in range(cube.shape[0]):
        plane = cube[b].astype(np.float64)
        valid &= np.isfinite(plane)
        if nodata[b] is not None:
            valid &= plane != nodata[b]
    return valid


@FAST
@given(raster=rasters())
def test_read_cube_masks_exactly_nodata_and_non_finite_pixels(raster):
    cube, nodata, gdal_type = raster
    path = _write(cube, nodata, gdal_type)
    try:
        data, valid = read_cube(path)
    finally:
        gdal.Unlink(path)
    expected = _naive_valid(cube, nodata)
    np.testing.assert_array_equal(valid, expected)
    assert data.dtype == np.float32 and data.shape == cube.shape
    assert (data[:, ~expected] == 0).all()
    np.testing.assert_array_equal(data[:, expected], cube[:, expected].astype(np.float32))


def _pointwise_predictor(bands: int, classes: np.ndarray) -> TilePredictor:
    """A per-pixel (1x1 conv) network: its prediction cannot depend on tiling, halo or batch."""
    generator = torch.Generator().manual_seed(0)
    network = torch.nn.Conv2d(bands, classes.size, 1)
    with torch.no_grad():
        network.weight.copy_(torch.randn(network.weight.shape, generator=generator))
        network.bias.zero_()
    return TilePredictor(network=network, band_mean=np.full(bands, 1500.0), band_std=np.full(bands, 800.0),
                         classes=classes)


def _predict(predictor, cube, nodata, tile, halo, batch):
    height, width = cube.shape[1:]
    labels = np.full((height, width), 255, dtype=np.int64)
    confidence = np.full((height, width), np.nan, dtype=np.float32)
    writes = np.zeros((height, width), dtype=np.int64)

    def read_window(window: Window) -> np.ndarray:
        rows, cols = window.slices
        return cube[:, rows, cols]

    def write_window(result) -> None:
        rows, cols = result.window.slices
        labels[rows, cols] = result.labels
        confidence[rows, cols] = result.confidence
        writes[rows, cols] += 1

    predict_tiled(predictor, read_window, height, width, write_window=write_window, tile=tile, halo=halo,
                  batch=batch, nodata=nodata, itemsize=cube.dtype.itemsize)
    return labels, confidence, writes


@FAST
@given(raster=rasters(), tile=st.sampled_from([32, 48, 64]), halo=st.integers(0, 12), batch=st.integers(1, 3),
       classes=st.lists(st.integers(1, 300), min_size=2, max_size=4, unique=True))
def test_tiled_prediction_writes_each_pixel_once_with_nodata_where_invalid(raster, tile, halo, batch, classes):
    cube, nodata, _ = raster
    classes = np.asarray(sorted(classes))
    predictor = _pointwise_predictor(cube.shape[0], classes)
    labels, confidence, writes = _predict(predictor, cube, nodata, tile, halo, batch)
    valid = _naive_valid(cube, nodata)
    assert (writes == 1).all(), "a pixel was written twice or never"
    assert (labels[~valid] == 0).all() and (confidence[~valid] == -1).all()
    assert np.isin(labels[valid], classes).all()
    assert ((confidence[valid] >= 1.0 / classes.size - 1e-6) & (confidence[valid] <= 1.0 + 1e-6)).all()
    whole, whole_confidence, _ = _predict(predictor, cube, nodata, 512, 0, 1)
    np.testing.assert_array_equal(labels, whole)
    np.testing.assert_allclose(confidence, whole_confidence, rtol=1e-5, atol=1e-6)
