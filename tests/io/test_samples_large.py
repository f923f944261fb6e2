"""Samples on large rasters (issue 29): burnt window by window, the same labels as one burn over their extent.

io.samples._rasterise burnt five float64 bands over the samples' whole extent: 16 GB for samples spread over a
20000 x 20000 raster. It now burns windows of ``_BURN_WINDOW`` pixels (io.burn.rasterise), only those the samples reach, in the
smallest integer types. Two checks: the labels, groups and conflicts equal the old one-window burn (kept
below as the reference) on random polygons, lines and points cut by small windows, north-up and rotated;
and a 6000 x 6000 VRT of four small files with samples in its corners is rasterised within an address-space
budget (the two int32 results plus 256 MiB) that the old burn (five float64 bands over the whole raster)
cannot meet.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr

from rssgl_qgis.io import burn as io_burn
from rssgl_qgis.io import samples
from rssgl_qgis.io.burn import rasterise
from rssgl_qgis.io.raster import RasterInfo

from .helpers import ORIGIN, PIXEL, UTM, make_raster, make_vector, point_wkt, rect_wkt, srs

ROOT = Path(__file__).resolve().parents[2]


def _reference_rasterise(geometries, burn, info):
    """io.samples._rasterise before issue 29: one five-band float64 burn over the samples' extent."""
    height, width = info.shape
    x0, dx, rx, y0, ry, dy = info.geotransform
    if rx == 0 and ry == 0:
        envelopes = np.array([g.GetEnvelope() for g in geometries])
        cols = (np.array([envelopes[:, 0].min(), envelopes[:, 1].max()]) - x0) / dx
        rows = (np.array([envelopes[:, 2].min(), envelopes[:, 3].max()]) - y0) / dy
        c0, c1 = max(int(np.floor(cols.min())) - 1, 0), min(int(np.ceil(cols.max())) + 1, width)
        r0, r1 = max(int(np.floor(rows.min())) - 1, 0), min(int(np.ceil(rows.max())) + 1, height)
    else:
        c0, c1, r0, r1 = 0, width, 0, height
    target = gdal.GetDriverByName("MEM").Create("", c1 - c0, r1 - r0, 5, gdal.GDT_Float64)
    target.SetGeoTransform((x0 + c0 * dx + r0 * rx, dx, rx, y0 + c0 * ry + r0 * dy, ry, dy))
    target.SetProjection(info.crs_wkt)
    memory = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = memory.CreateLayer("samples", srs(UTM), ogr.wkbUnknown)
    for name, kind in (("i", ogr.OFTInteger), ("sq", ogr.OFTReal), ("n", ogr.OFTInteger)):
        layer.CreateField(ogr.FieldDefn(name, kind))
    for number, (geometry, index) in enumerate(zip(geometries, burn, strict=True), start=1):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(geometry)
        feature.SetField("i", int(index))
        feature.SetField("sq", float(index) ** 2)
        feature.SetField("n", number)
        layer.CreateFeature(feature)
    gdal.RasterizeLayer(target, [1], layer, options=["ATTRIBUTE=i"])
    gdal.RasterizeLayer(target, [2], layer, burn_values=[1], options=["MERGE_ALG=ADD"])
    gdal.RasterizeLayer(target, [3], layer, options=["ATTRIBUTE=i", "MERGE_ALG=ADD"])
    gdal.RasterizeLayer(target, [4], layer, options=["ATTRIBUTE=sq", "MERGE_ALG=ADD"])
    gdal.RasterizeLayer(target, [5], layer, options=["ATTRIBUTE=n"])
    last, count, total, squares, number = (target.GetRasterBand(i).ReadAsArray() for i in (1, 2, 3, 4, 5))
    consistent = (total == count * last) & (squares == count * last * last)
    window = np.where((count > 0) & consistent, last, 0).astype(np.int64)
    out = np.zeros((height, width), dtype=np.int64)
    out[r0:r1, c0:c1] = window
    groups = np.zeros((height, width), dtype=np.int32)
    groups[r0:r1, c0:c1] = np.where(window > 0, number, 0)
    return out, int(((count > 0) & ~consistent).sum()), groups


def _wkt(kind: str, points) -> str:
    text = ", ".join(f"{float(x)!r} {float(y)!r}" for x, y in points)  # numpy 2 reprs np.float64(...)
    return f"{kind} (({text}))" if kind == "POLYGON" else f"{kind} ({text})"


def _random_geometries(rng, info: RasterInfo, n: int) -> list:
    """Polygons (random quadrilaterals and rectangles), lines and points, some past the raster's edges."""
    x0, dx, rx, y0, ry, dy = info.geotransform

    def xy(col, row):
        return x0 + col * dx + row * rx, y0 + col * ry + row * dy

    out = []
    for _ in range(n):
        kind = rng.choice(["quad", "rect", "line", "point"], p=[0.35, 0.35, 0.15, 0.15])
        c, r = rng.uniform(-3, info.width + 3), rng.uniform(-3, info.height + 3)
        if kind == "point":
            out.append(ogr.CreateGeometryFromWkt(_wkt("POINT", [xy(c, r)])))
            continue
        span = rng.uniform(1, max(info.width, info.height) * 0.7, 2)
        if kind == "rect":
            corners = [(c, r), (c + span[0], r), (c + span[0], r + span[1]), (c, r + span[1])]
        else:
            corners = [(c + rng.uniform(-1, 1) * span[0], r + rng.uniform(-1, 1) * span[1]) for _ in range(4)]
        points = [xy(*p) for p in corners]
        if kind == "line":
            out.append(ogr.CreateGeometryFromWkt(_wkt("LINESTRING", points)))
        else:
            ring = points + points[:1]
            out.append(ogr.CreateGeometryFromWkt(_wkt("POLYGON", ring)))
    ring = [xy(0, 0), xy(info.width, 0), xy(info.width, info.height), xy(0, info.height), xy(0, 0)]
    extent = ogr.CreateGeometryFromWkt(_wkt("POLYGON", ring))
    return [g for g in out if g.Intersects(extent)]  # as io.samples keeps them (_read_samples)


@pytest.mark.parametrize("rotated", [False, True])
def test_windowed_burn_equals_the_one_window_burn(monkeypatch, rotated):
    monkeypatch.setattr(io_burn, "_BURN_WINDOW", 7)  # many windows: polygons, lines and overlaps cut by them
    rng = np.random.default_rng(29)
    skew = (1.5, -2.0) if rotated else (0.0, 0.0)
    for case in range(25):
        height, width = (int(v) for v in rng.integers(5, 45, 2))
        info = RasterInfo(path="grid", width=width, height=height, bands=1, dtype="Float32",
                          geotransform=(ORIGIN[0], PIXEL, skew[0], ORIGIN[1], skew[1], -PIXEL),
                          crs_wkt=srs(UTM).ExportToWkt(), nodata=[None], band_names=["b1"])
        geometries = _random_geometries(rng, info, int(rng.integers(1, 12)))
        if not geometries:
            continue
        n_classes = int(rng.integers(1, 5))
        burn = rng.integers(1, n_classes + 1, len(geometries)).astype(np.int64)
        class_values = np.sort(rng.choice(np.arange(1, 300), n_classes, replace=False))
        index, conflicts, groups = _reference_rasterise(geometries, burn, info)
        labels, got_conflicts, got_groups, present, pixels = rasterise(geometries, burn, info, class_values)
        expected = np.r_[0, class_values].astype(np.int32)[index]
        assert labels.dtype == samples.label_dtype(class_values.max()) and got_groups.dtype == np.uint8
        np.testing.assert_array_equal(labels, expected, err_msg=f"case {case}")
        for got, want in zip(pixels, np.nonzero(expected), strict=True):  # the sparse list, row-major
            np.testing.assert_array_equal(got, want, err_msg=f"case {case}")
        np.testing.assert_array_equal(got_groups, groups, err_msg=f"case {case}")
        assert got_conflicts == conflicts, case
        assert present.tolist() == [bool((index == i).any()) for i in range(1, n_classes + 1)], case


def _corner_vrt(folder: Path, size: int) -> str:
    """A ``size`` x ``size`` VRT of four 8 x 8 GeoTIFFs, one in each corner (nodata elsewhere)."""
    tile = 8
    sources = []
    for k, (row, col) in enumerate([(0, 0), (0, size - tile), (size - tile, 0), (size - tile, size - tile)]):
        origin = (ORIGIN[0] + col * PIXEL, ORIGIN[1] - row * PIXEL)
        path = make_raster(folder / f"corner{k}.tif", np.full((2, tile, tile), k + 1, np.float32), origin=origin)
        sources.append(path)
    options = gdal.BuildVRTOptions(outputBounds=(ORIGIN[0], ORIGIN[1] - size * PIXEL, ORIGIN[0] + size * PIXEL,
                                                 ORIGIN[1]), VRTNodata=-9999)
    vrt = str(folder / "large.vrt")
    gdal.BuildVRT(vrt, sources, options=options).FlushCache()
    return vrt


_CHILD = textwrap.dedent("""
    import json, resource, sys
    from rssgl_qgis.io.raster import raster_info
    from rssgl_qgis.io.samples import labels_from_vector

    info = raster_info(sys.argv[1])
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    budget = 2 * info.height * info.width * 4 + (256 << 20)  # the two int32 results + 256 MiB
    resource.setrlimit(resource.RLIMIT_AS, (used + budget, used + budget))
    try:
        s = labels_from_vector(sys.argv[2], None, "cls", info)
    except (MemoryError, RuntimeError) as error:
        print(json.dumps({"error": str(error)[-200:]}))
        raise SystemExit(0)
    corners = [int(s.labels[r, c]) for r, c in ((2, 2), (2, info.width - 3), (info.height - 3, 2),
                                                (info.height - 3, info.width - 3), (info.height // 2, info.width // 2))]
    print(json.dumps({"corners": corners, "labelled": int((s.labels > 0).sum()), "groups": int(s.groups.max()),
                      "classes": s.class_values.tolist()}))
""")


def test_samples_spanning_a_large_vrt_fit_a_memory_budget(tmp_path):
    size = 6000
    vrt = _corner_vrt(tmp_path, size)
    path = make_vector(tmp_path / "s.gpkg", [
        (rect_wkt(0, 0, 5, 5), 1), (rect_wkt(size - 5, 0, size, 5), 2), (rect_wkt(0, size - 5, 5, size), 3),
        (rect_wkt(size - 5, size - 5, size, size), 4), (point_wkt(size / 2 + 0.5, size / 2 + 0.5), 2)])
    done = subprocess.run([sys.executable, "-c", _CHILD, vrt, path], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in result, f"rasterising ran out of its memory budget: {result['error']}"
    assert result == {"corners": [1, 2, 3, 4, 2], "labelled": 4 * 25 + 1, "groups": 5, "classes": [1, 2, 3, 4]}
