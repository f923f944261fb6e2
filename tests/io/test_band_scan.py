"""The band check finds empty and constant bands without reading the whole raster, with the answer of a full read
(issue 29).

Every raster is written here with GDAL, small, with small blocks so that the sample reads only a part of it. The
reference is a full read of every value under the same rule (valid: finite and not the band's nodata value as the
band's type holds it; constant: one valid value).
"""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from rssgl_qgis.core.errors import Cancelled
from rssgl_qgis.io import band_scan
from rssgl_qgis.io.band_scan import sample_chunks, scan_bands
from rssgl_qgis.io.raster import raster_info

TYPES = {np.dtype(np.uint8): gdal.GDT_Byte, np.dtype(np.int16): gdal.GDT_Int16, np.dtype(np.uint16): gdal.GDT_UInt16,
         np.dtype(np.float32): gdal.GDT_Float32, np.dtype(np.float64): gdal.GDT_Float64}


def _write(path, cube: np.ndarray, nodata=None, options=("TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16")) -> str:
    ds = gdal.GetDriverByName("GTiff").Create(str(path), cube.shape[2], cube.shape[1], cube.shape[0],
                                              TYPES[cube.dtype], list(options))
    for k in range(cube.shape[0]):
        band = ds.GetRasterBand(k + 1)
        if nodata is not None:
            band.SetNoDataValue(float(nodata))
        band.WriteArray(cube[k])
    ds = None
    return str(path)


def _reference(path: str) -> tuple[list[int], list[int]]:
    """(empty, constant) bands by reading every value."""
    ds = gdal.Open(path)
    empty, constant = [], []
    for k in range(ds.RasterCount):
        band = ds.GetRasterBand(k + 1)
        data = band.ReadAsArray().ravel()
        ok = np.isfinite(data) if data.dtype.kind == "f" else np.ones(data.shape, dtype=bool)
        nodata = band.GetNoDataValue()
        if nodata is not None and np.isfinite(nodata):
            if data.dtype.kind == "f":
                ok &= data != data.dtype.type(nodata)
            elif float(nodata).is_integer() and np.iinfo(data.dtype).min <= nodata <= np.iinfo(data.dtype).max:
                ok &= data != nodata
        values = np.unique(data[ok])
        if values.size == 0:
            empty.append(k + 1)
        elif values.size == 1:
            constant.append(k + 1)
    return empty, constant


@pytest.fixture
def native_blocks(monkeypatch):
    """Chunks are the native blocks however small (the tests' rasters are tiny)."""
    monkeypatch.setattr(band_scan, "MIN_CHUNK_PIXELS", 1)


def _unsampled_pixel(path: str, rng: np.random.Generator) -> tuple[int, int]:
    """A (row, col) that no sampled chunk holds: only the reads of whole bands can see it."""
    info = raster_info(path)
    seen = np.zeros((info.height, info.width), dtype=bool)
    ds = gdal.Open(path)
    chunks = sample_chunks(info, band_scan._chunk_shape(ds, info))
    for x, y, w, h in chunks:
        seen[y:y + h, x:x + w] = True
    rows, cols = np.nonzero(~seen)
    k = rng.integers(rows.size)
    return int(rows[k]), int(cols[k])


LAYOUTS = {
    "tiled": ("TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"),
    "tiled-pixel-interleaved": ("TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16", "INTERLEAVE=PIXEL"),
    "strips": ("BLOCKYSIZE=1",),
}
KINDS = {"int16": (np.int16, -32768), "float32-nan": (np.float32, np.nan), "float32": (np.float32, -9999.0),
         "uint8-no-nodata": (np.uint8, None), "uint16-nodata-0": (np.uint16, 0)}
PATTERNS = ("noise", "empty", "constant", "constant+corner", "empty+corner", "empty+two-corners", "nan-and-constant",
            "constant+nodata")


def _band(pattern: str, shape, dtype, nodata, rng, corner, fill_value):
    fill = fill_value if nodata is None or not np.isfinite(nodata) else nodata
    if pattern == "noise":
        return rng.integers(1, 200, shape).astype(dtype)
    empty = np.full(shape, np.nan if nodata is not None and np.isnan(nodata) else fill, dtype=dtype)
    constant = np.full(shape, 7, dtype=dtype)
    if pattern == "empty":
        return empty
    if pattern == "constant":
        return constant
    if pattern == "constant+corner":  # one other value, in one pixel the sample never reads
        constant[corner] = 9
        return constant
    if pattern == "empty+corner":  # one valid value, in one pixel the sample never reads
        empty[corner] = 9
        return empty
    if pattern == "empty+two-corners":
        empty[corner] = 9
        empty[0, 0] = 11
        return empty
    if pattern == "nan-and-constant":
        out = constant.astype(dtype)
        if dtype.kind == "f":
            out[: shape[0] // 2] = np.nan
        return out
    if pattern == "constant+nodata":
        out = constant.copy()
        out[::3] = empty[::3]
        return out
    raise AssertionError(pattern)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_scan_equals_a_full_read(tmp_path, native_blocks, layout, kind):
    dtype, nodata = np.dtype(KINDS[kind][0]), KINDS[kind][1]
    rng = np.random.default_rng(len(layout) * 31 + len(kind))
    height, width = 150, 133  # blocks do not divide it: edge chunks are partial
    path = _write(tmp_path / "probe.tif", np.zeros((1, height, width), dtype=dtype), nodata, LAYOUTS[layout])
    corner = _unsampled_pixel(path, rng)
    bands = [_band(p, (height, width), dtype, nodata, rng, corner, fill_value=0) for p in PATTERNS]
    path = _write(tmp_path / "scene.tif", np.stack(bands), nodata, LAYOUTS[layout])
    scan = scan_bands(path, raster_info(path))
    assert (scan.no_data, scan.constant) == _reference(path)
    # the sample missed the corner pixels: the whole reads decided; the noise band was settled by the sample
    assert 1 not in scan.read_whole and {2, 3, 4, 5} <= set(scan.read_whole)


@pytest.mark.parametrize("seed", range(6))
def test_random_sparse_bands_match_a_full_read(tmp_path, native_blocks, seed):
    """Bands of nodata with a few valid values at random places (in or outside the sample)."""
    rng = np.random.default_rng(seed)
    height, width, bands = int(rng.integers(20, 90)), int(rng.integers(20, 90)), 7
    cube = np.full((bands, height, width), -9999.0, dtype=np.float32)
    for k in range(bands):
        count = int(rng.integers(0, 4))
        cube[k, rng.integers(0, height, count), rng.integers(0, width, count)] = rng.choice([1.0, 2.0], count)
    cube[0, 3, 4] = np.nan
    path = _write(tmp_path / "sparse.tif", cube, -9999.0, LAYOUTS["strips" if seed % 2 else "tiled"])
    scan = scan_bands(path, raster_info(path))
    assert (scan.no_data, scan.constant) == _reference(path)


def test_a_real_scene_is_settled_by_its_first_chunk(tmp_path):
    rng = np.random.default_rng(0)
    cube = rng.integers(0, 1000, (12, 300, 300)).astype(np.int16)
    path = _write(tmp_path / "scene.tif", cube, -32768)
    scan = scan_bands(path, raster_info(path))
    assert scan.no_data == [] and scan.constant == [] and scan.read_whole == []
    assert scan.sampled_chunks == 1 and scan.values_read == 12 * 256 * 256  # 16 x 16 tiles joined to 256 x 256


def test_the_files_exact_statistics_settle_bands_unread(tmp_path):
    cube = np.full((4, 40, 40), 5.0, dtype=np.float32)  # every band constant in its values
    path = _write(tmp_path / "stats.tif", cube, -9999.0)
    ds = gdal.Open(path)
    statistics = [{"STATISTICS_MINIMUM": "1", "STATISTICS_MAXIMUM": "9"},  # trusted: band 1 counts as varied
                  {"STATISTICS_MINIMUM": "1", "STATISTICS_MAXIMUM": "9", "STATISTICS_APPROXIMATE": "YES"},
                  {"STATISTICS_MINIMUM": "-9999", "STATISTICS_MAXIMUM": "5"},  # computed with nodata counted
                  {"STATISTICS_MINIMUM": "5", "STATISTICS_MAXIMUM": "5"}]
    for k, items in enumerate(statistics):
        for key, value in items.items():
            ds.GetRasterBand(k + 1).SetMetadataItem(key, value)
    ds = None  # written to stats.tif.aux.xml, where GDAL keeps statistics
    scan = scan_bands(path, raster_info(path))
    assert scan.by_statistics == 1 and scan.constant == [2, 3, 4]


def test_computed_statistics_agree_and_spare_the_reads(tmp_path, native_blocks):
    rng = np.random.default_rng(1)
    cube = rng.normal(0, 1, (5, 64, 64)).astype(np.float32)
    cube[4] = 0.25
    path = _write(tmp_path / "computed.tif", cube, -9999.0)
    ds = gdal.Open(path)
    for k in range(5):
        ds.GetRasterBand(k + 1).ComputeStatistics(False)
    ds = None
    scan = scan_bands(path, raster_info(path))
    assert (scan.no_data, scan.constant) == _reference(path) == ([], [5])
    assert scan.by_statistics == 4 and scan.read_whole == [5]


def test_nodata_is_the_bands_own_type(tmp_path):
    """A float32 band's nodata 0.1 is the float32 0.1 its pixels hold (GDAL's rule and io.raster's reader's)."""
    cube = np.full((1, 20, 20), 0.1, dtype=np.float32)
    cube[0, 5, 5] = 0.5
    path = _write(tmp_path / "tenth.tif", cube, 0.1)
    assert scan_bands(path, raster_info(path)).constant == [1]


def test_first_message_progress_and_cancel(tmp_path, native_blocks, monkeypatch):
    cube = np.full((3, 64, 64), -9999.0, dtype=np.float32)
    cube[0] = np.arange(64 * 64).reshape(64, 64)
    path = _write(tmp_path / "large.tif", cube, -9999.0, LAYOUTS["strips"])
    events = []
    scan_bands(path, raster_info(path), progress=lambda p, m: events.append(("progress", p)),
               log=lambda level, m: events.append((level, m)))
    assert events[0] == ("info", "Checking 3 bands of 'large.tif' for bands without data or with one constant "
                                 "value...")
    assert ("info", "2 band(s) showed no data or a single value in 6 sampled blocks (bands 2-3): reading them whole "
                    "to be sure.") in events
    percents = [p for what, p in events if what == "progress"]
    assert percents == sorted(percents) and percents[-1] == 100.0

    monkeypatch.setattr(band_scan, "SCAN_BYTES", 64 * 4 * 2 * 4)  # 4 rows of the two open bands per read
    asked = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 8  # during the whole reads

    with pytest.raises(Cancelled, match="band check of 'large.tif' was canceled"):
        scan_bands(path, raster_info(path), should_stop=stop)
