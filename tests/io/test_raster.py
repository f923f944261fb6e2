"""GDAL raster I/O: metadata and wavelengths, nodata/NaN masking, styled classification round trip."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from osgeo import gdal

from rssgl_qgis.io.raster import raster_info, read_cube
from rssgl_qgis.io.raster_write import (
    BlockWriter,
    classification_dtype,
    classification_writer,
    commit_writers,
    paletted_qml,
    qml_path_for,
    read_class_table,
    write_classification,
    write_float,
)

from .helpers import ORIGIN, PIXEL, make_raster

NAMES = ["Corn", "Soybean", "Wasser & Ufer"]
COLORS = [(255, 211, 0), (38, 112, 0), (30, 90, 200)]


@pytest.fixture
def cube_path(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 5000, size=(4, 6, 7)).astype(np.int16)
    data[1, 2, 3] = -9999  # nodata in ONE band only
    descriptions = [f"Band {i + 1}: {w} nm" for i, w in enumerate((450.5, 550.0, 650.0, 850.25))]
    return make_raster(tmp_path / "cube.tif", data, nodata=-9999, descriptions=descriptions), data


def test_raster_info_reads_grid_crs_nodata_names_and_wavelengths(cube_path):
    path, _ = cube_path
    info = raster_info(path)
    assert (info.width, info.height, info.bands, info.dtype) == (7, 6, 4, "Int16")
    assert info.geotransform == (ORIGIN[0], PIXEL, 0.0, ORIGIN[1], 0.0, -PIXEL)
    assert "UTM zone 10N" in info.crs_wkt
    assert info.nodata == [-9999.0] * 4
    assert info.band_names[0] == "Band 1: 450.5 nm"
    assert info.wavelengths == pytest.approx([450.5, 550.0, 650.0, 850.25])
    assert info.shape == (6, 7) and info.pixel_size == (PIXEL, PIXEL)
    assert info.extent() == (ORIGIN[0], ORIGIN[1] - 6 * PIXEL, ORIGIN[0] + 7 * PIXEL, ORIGIN[1])


def test_wavelengths_from_envi_metadata_in_micrometres(tmp_path):
    path = make_raster(tmp_path / "envi.tif", np.zeros((3, 2, 2), np.float32),
                       envi={"wavelength": "{0.45, 0.55,0.65 }", "wavelength_units": "Micrometers"})
    assert raster_info(path).wavelengths == pytest.approx([450.0, 550.0, 650.0])


def test_wavelengths_unknown_when_not_every_band_says(tmp_path):
    path = make_raster(tmp_path / "partial.tif", np.zeros((2, 2, 2), np.float32),
                       descriptions=["Band 1: 500 nm", "red"])
    info = raster_info(path)
    assert info.wavelengths is None and info.band_names == ["Band 1: 500 nm", "red"]


def test_unreadable_raster_error_names_the_path(tmp_path):
    with pytest.raises(ValueError, match=r"Cannot open raster '.*missing.tif': the file does not exist"):
        raster_info(tmp_path / "missing.tif")
    bad = tmp_path / "bad.tif"
    bad.write_text("not a tiff")
    with pytest.raises(ValueError, match=r"Cannot open raster '.*bad.tif'"):
        raster_info(bad)


def test_read_cube_masks_nodata_in_any_band(cube_path):
    path, data = cube_path
    cube, valid = read_cube(path)
    assert cube.dtype == np.float32 and cube.shape == (4, 6, 7)
    assert valid.sum() == 41 and not valid[2, 3]
    assert np.all(cube[:, 2, 3] == 0.0), "invalid pixels are zero in every band"
    assert np.array_equal(cube[:, valid], data[:, valid].astype(np.float32))


def test_read_cube_masks_nan_and_inf_and_reads_windows_and_bands(tmp_path):
    data = np.arange(3 * 5 * 6, dtype=np.float32).reshape(3, 5, 6)
    data[2, 0, 0] = np.nan
    data[0, 4, 5] = np.inf
    path = make_raster(tmp_path / "f.tif", data)
    cube, valid = read_cube(path)
    assert not valid[0, 0] and not valid[4, 5] and valid.sum() == 28
    assert np.isfinite(cube).all()
    sub, sub_valid = read_cube(path, window=(1, 2, 4, 3), bands=[1, 2])
    assert sub.shape == (2, 3, 4) and sub_valid.all(), "band 3's NaN is outside the bands read"
    assert np.array_equal(sub, data[:2, 2:5, 1:5])
    with pytest.raises(ValueError, match="is not inside raster"):
        read_cube(path, window=(4, 0, 4, 2))
    with pytest.raises(ValueError, match="Band numbers must be 1..3"):
        read_cube(path, bands=[0])


def test_read_cube_applies_band_scale_and_offset(tmp_path):
    path = make_raster(tmp_path / "s.tif", np.full((1, 2, 2), 5000, np.int16), nodata=-1)
    ds = gdal.Open(path, gdal.GA_Update)
    ds.GetRasterBand(1).SetScale(1e-4)
    ds.GetRasterBand(1).SetOffset(0.1)
    ds = None
    cube, _ = read_cube(path)
    assert cube[0, 0, 0] == pytest.approx(0.6)


@pytest.mark.parametrize(("values", "dtype"), [([1, 2, 255], "Byte"), ([1, 256], "UInt16"),
                                                 ([1, 70000], "UInt32")])
def test_smallest_unsigned_type(values, dtype):
    assert classification_dtype(values) == dtype


def test_classification_round_trip_with_colours_names_and_qml(tmp_path, cube_path):
    info = raster_info(cube_path[0])
    classes = np.random.default_rng(1).choice([0, 2, 5, 9], size=info.shape).astype(np.int64)
    out = tmp_path / "classes.tif"
    write_classification(out, classes, info, [2, 5, 9], NAMES, COLORS)
    ds = gdal.Open(str(out))
    band = ds.GetRasterBand(1)
    assert gdal.GetDataTypeName(band.DataType) == "Byte"
    assert np.array_equal(band.ReadAsArray(), classes)
    assert band.GetNoDataValue() == 0
    assert ds.GetGeoTransform() == info.geotransform and "UTM zone 10N" in ds.GetProjection()
    assert band.GetColorTable().GetColorEntry(5) == (38, 112, 0, 255)
    categories = band.GetCategoryNames()
    assert categories[2] == "Corn" and categories[5] == "Soybean" and categories[9] == "Wasser & Ufer"
    assert json.loads(band.GetMetadataItem("CLASS_NAMES")) == NAMES
    structure = ds.GetMetadata("IMAGE_STRUCTURE")
    assert structure.get("COMPRESSION") == "DEFLATE"
    assert band.GetBlockSize() == [256, 256]
    ds = None
    assert read_class_table(out) == ([2, 5, 9], NAMES, COLORS)
    qml = ET.parse(qml_path_for(out)).getroot()
    renderer = qml.find("pipe/rasterrenderer")
    assert renderer.get("type") == "paletted"
    entries = [(e.get("value"), e.get("label"), e.get("color")) for e in renderer.iter("paletteEntry")]
    assert entries == [("2", "Corn", "#ffd300"), ("5", "Soybean", "#267000"), ("9", "Wasser & Ufer", "#1e5ac8")]
    assert sorted(os.listdir(tmp_path)) == ["classes.qml", "classes.tif", "classes.tif.aux.xml", "cube.tif"]


def test_category_names_survive_without_the_aux_sidecar(tmp_path, cube_path):
    info = raster_info(cube_path[0])
    out = tmp_path / "c.tif"
    write_classification(out, np.ones(info.shape, np.uint8), info, [1, 2, 3], NAMES, COLORS)
    os.remove(str(out) + ".aux.xml")
    assert read_class_table(out)[1] == NAMES, "names are also stored inside the TIFF"


def test_large_class_values_use_uint32_and_keep_names(tmp_path, cube_path):
    info = raster_info(cube_path[0])
    out = tmp_path / "big.tif"
    write_classification(out, np.full(info.shape, 70000), info, [70000], ["Big"], [(1, 2, 3)])
    ds = gdal.Open(str(out))
    assert gdal.GetDataTypeName(ds.GetRasterBand(1).DataType) == "UInt32"
    assert ds.GetRasterBand(1).ReadAsArray().max() == 70000
    assert read_class_table(out)[:2] == ([70000], ["Big"])


def test_classification_errors_are_clear(tmp_path, cube_path):
    info = raster_info(cube_path[0])
    with pytest.raises(ValueError, match="classify the same raster"):
        write_classification(tmp_path / "a.tif", np.ones((2, 2), int), info, [1], ["a"], [(0, 0, 0)])
    with pytest.raises(ValueError, match=r"holds values \[7\] that are not class values"):
        write_classification(tmp_path / "a.tif", np.full(info.shape, 7), info, [1], ["a"], [(0, 0, 0)])
    with pytest.raises(ValueError, match="a value, a name and a colour"):
        write_classification(tmp_path / "a.tif", np.ones(info.shape, int), info, [1, 2], ["a"], [(0, 0, 0)])
    with pytest.raises(ValueError, match="distinct positive integers"):
        paletted_qml([0, 1], ["a", "b"], [(0, 0, 0), (1, 1, 1)])
    assert sorted(os.listdir(tmp_path)) == ["cube.tif"]


def test_write_float_multiband(tmp_path, cube_path):
    info = raster_info(cube_path[0])
    probs = np.random.default_rng(2).random((3, *info.shape)).astype(np.float32)
    out = write_float(tmp_path / "p.tif", probs, info, band_names=["p_Corn", "p_Soy", "p_Water"])
    back = raster_info(out)
    assert back.dtype == "Float32" and back.bands == 3 and back.band_names == ["p_Corn", "p_Soy", "p_Water"]
    assert back.nodata == [-1.0] * 3
    assert np.array_equal(gdal.Open(out).ReadAsArray(), probs)
    with pytest.raises(ValueError, match=r"Expected an array shaped \(H, W\) or \(K, H, W\)"):
        write_float(tmp_path / "q.tif", np.zeros((2, 2)), info)


def test_block_writer_writes_windows_and_commits(tmp_path, cube_path):
    info = raster_info(cube_path[0])
    out = tmp_path / "tiles.tif"
    with classification_writer(out, info, [1, 2, 3], NAMES, COLORS) as writer:
        writer.write(np.full((3, 7), 1, np.uint8), 0, 0)
        writer.write(np.full((3, 7), 3, np.uint8), 0, 3)
        assert not out.exists(), "nothing appears under the final name before commit"
    expected = np.vstack([np.full((3, 7), 1), np.full((3, 7), 3)])
    assert np.array_equal(gdal.Open(str(out)).ReadAsArray(), expected)
    assert os.path.exists(qml_path_for(out))
    with pytest.raises(ValueError, match="does not fit"):
        with BlockWriter(tmp_path / "x.tif", info) as w:
            w.write(np.zeros((4, 4), np.float32), 5, 5)


def test_block_writer_cancel_leaves_nothing_and_keeps_old_output(tmp_path, cube_path):
    info = raster_info(cube_path[0])
    out = tmp_path / "keep.tif"
    write_classification(out, np.ones(info.shape, np.uint8), info, [1, 2, 3], NAMES, COLORS)
    before = sorted(os.listdir(tmp_path))

    class Cancelled(Exception):
        pass

    with pytest.raises(Cancelled):
        with classification_writer(out, info, [1, 2, 3], NAMES, COLORS) as writer:
            writer.write(np.full((3, 7), 2, np.uint8), 0, 0)
            raise Cancelled
    assert sorted(os.listdir(tmp_path)) == before
    assert gdal.Open(str(out)).ReadAsArray().max() == 1

    writer = BlockWriter(tmp_path / "dropped.tif", info)
    writer.abort()
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize("failing", ["classes.tif", "classes.tif.aux.xml", "classes.qml", "conf.tif"])
def test_outputs_of_one_run_are_replaced_together_or_not_at_all(tmp_path, cube_path, monkeypatch, failing):
    info = raster_info(cube_path[0])
    write_classification(tmp_path / "classes.tif", np.ones(info.shape, np.uint8), info, [1, 2, 3], NAMES, COLORS)
    write_float(tmp_path / "conf.tif", np.full(info.shape, 0.5, np.float32), info)
    before = {name: (tmp_path / name).read_bytes() for name in sorted(os.listdir(tmp_path))}
    real = os.replace

    def replace(src, dst):
        if os.path.basename(os.fspath(dst)) == failing:
            raise OSError(28, "No space left on device", os.fspath(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    classes = classification_writer(tmp_path / "classes.tif", info, [1, 2, 3], ["x", "y", "z"], COLORS)
    confidence = BlockWriter(tmp_path / "conf.tif", info, nodata=-1)
    classes.write(np.full(info.shape, 2, np.uint8))
    confidence.write(np.zeros(info.shape, np.float32))
    with pytest.raises(ValueError, match=f"Cannot write '.*{failing}': No space left on device"):
        commit_writers(classes, confidence)
    assert {name: (tmp_path / name).read_bytes() for name in sorted(os.listdir(tmp_path))} == before
