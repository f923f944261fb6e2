"""Property-based tests of sample rasterisation (io.samples.labels_from_vector), on random grids.

Random north-up grids (size, pixel size, origin), random rectangles, triangles and points with sparse
integer or text classes, some partly or wholly outside the raster, some overlapping. The expected
label map is computed here independently with the pixel-centre rule: a pixel is labelled with a
class when its centre lies inside polygons of that class only (or it holds a point of that class);
pixels claimed by two classes stay unlabelled and are counted; features off the raster are counted.
No qgis import; vector data lives in GDAL's in-memory file system.
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from osgeo import gdal, ogr, osr

from rssgl_qgis.io.raster import RasterInfo
from rssgl_qgis.io.samples import labels_from_vector

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_SRS = osr.SpatialReference()
_SRS.ImportFromEPSG(32610)
UTM_WKT = _SRS.ExportToWkt()
#: GeoJSON's (2008) crs member; without it OGR reads GeoJSON as EPSG:4326.
_UTM_MEMBER = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32610"}}
#: Fractions of a pixel for polygon edges: never 0.5, so no pixel centre lies on an edge.
EDGE_FRACTIONS = [0.0, 0.2, 0.35, 0.65, 0.8]


@st.composite
def grids(draw) -> RasterInfo:
    width, height = draw(st.integers(2, 28)), draw(st.integers(2, 28))
    pixel = draw(st.sampled_from([0.5, 1.0, 10.0, 30.0]))
    x0 = draw(st.integers(-2000, 2000)) * pixel + 500000.0
    y0 = draw(st.integers(-2000, 2000)) * pixel + 4000000.0
    return RasterInfo(path="random grid", width=width, height=height, bands=1, dtype="Float32",
                      geotransform=(x0, pixel, 0.0, y0, 0.0, -pixel), crs_wkt=UTM_WKT, nodata=[None],
                      band_names=["b1"])


def _coordinate(draw, size: int) -> float:
    return draw(st.integers(-4, size + 3)) + draw(st.sampled_from(EDGE_FRACTIONS))


@st.composite
def shapes(draw, width: int, height: int):
    """("rect", c0, r0, c1, r1) | ("tri", [(c, r)] * 3) | ("point", c, r), in pixel coordinates."""
    kind = draw(st.sampled_from(["rect", "rect", "tri", "point"]))
    if kind == "rect":
        c = sorted({_coordinate(draw, width), _coordinate(draw, width)})
        r = sorted({_coordinate(draw, height), _coordinate(draw, height)})
        assume(len(c) == 2 and len(r) == 2)
        return ("rect", c[0], r[0], c[1], r[1])
    if kind == "tri":
        pts = [(draw(st.floats(-3, width + 3)), draw(st.floats(-3, height + 3))) for _ in range(3)]
        return ("tri", pts)
    col = draw(st.integers(-2, width + 1)) + draw(st.floats(0.1, 0.9))
    row = draw(st.integers(-2, height + 1)) + draw(st.floats(0.1, 0.9))
    return ("point", col, row)


@st.composite
def scenes(draw):
    info = draw(grids())
    n = draw(st.integers(1, 6))
    features = [draw(shapes(info.width, info.height)) for _ in range(n)]
    text = draw(st.booleans())
    pool = (draw(st.lists(st.text("abcXYZ é", min_size=1, max_size=5).map(str.strip).filter(bool), min_size=1,
                          max_size=4, unique=True)) if text
            else draw(st.lists(st.integers(1, 5000), min_size=1, max_size=4, unique=True)))
    classes = [draw(st.sampled_from(pool)) for _ in features]
    return info, features, classes


def _to_map(info: RasterInfo, col: float, row: float) -> list[float]:
    x0, dx, _, y0, _, dy = info.geotransform
    return [x0 + col * dx, y0 + row * dy]


def _geojson(info: RasterInfo, shape) -> dict:
    if shape[0] == "point":
        return {"type": "Point", "coordinates": _to_map(info, shape[1], shape[2])}
    if shape[0] == "rect":
        _, c0, r0, c1, r1 = shape
        ring = [(c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0)]
    else:
        ring = [*shape[1], shape[1][0]]
    return {"type": "Polygon", "coordinates": [[_to_map(info, c, r) for c, r in ring]]}


def _touches_raster(info: RasterInfo, shape) -> bool:
    """Whether the shape meets the raster's extent (boundary contact counts, as in OGR's Intersects)."""
    extent = ogr.CreateGeometryFromWkt(
        f"POLYGON((0 0,{info.width} 0,{info.width} {info.height},0 {info.height},0 0))")
    if shape[0] == "point":
        geometry = ogr.CreateGeometryFromWkt(f"POINT({shape[1]} {shape[2]})")
    else:
        ring = ([(shape[1], shape[2]), (shape[3], shape[2]), (shape[3], shape[4]), (shape[1], shape[4])]
                if shape[0] == "rect" else shape[1])
        text = ",".join(f"{c!r} {r!r}" for c, r in [*ring, ring[0]])
        geometry = ogr.CreateGeometryFromWkt(f"POLYGON(({text}))")
    touches = bool(geometry.Intersects(extent))
    if shape[0] == "tri":  # random float vertices: keep clear of "just touching", where map-coordinate
        # rounding (origins of 5e5 m) can flip the answer either way
        assume(geometry.Intersection(extent).GetArea() > 1e-6 if touches else geometry.Distance(extent) > 1e-6)
    return touches


def _inside(info: RasterInfo, shape) -> tuple[np.ndarray, bool, float]:
    """(pixels this shape labels, whether it touches the raster, centre-to-edge margin in pixels)."""
    cols = np.arange(info.width) + 0.5
    rows = np.arange(info.height) + 0.5
    cc, rr = np.meshgrid(cols, rows)
    if shape[0] == "point":
        _, c, r = shape
        mask = (np.floor(c) == cc - 0.5) & (np.floor(r) == rr - 0.5)
        return mask, _touches_raster(info, shape), np.inf
    if shape[0] == "rect":
        _, c0, r0, c1, r1 = shape
        mask = (cc > c0) & (cc < c1) & (rr > r0) & (rr < r1)
        return mask, _touches_raster(info, shape), np.inf
    (ax, ay), (bx, by), (qx, qy) = shape[1]
    area = (bx - ax) * (qy - ay) - (by - ay) * (qx - ax)
    if abs(area) < 1e-3:
        return np.zeros_like(cc, dtype=bool), False, 0.0  # degenerate: rejected by the caller
    sign = np.sign(area)
    edges = [((ax, ay), (bx, by)), ((bx, by), (qx, qy)), ((qx, qy), (ax, ay))]
    dist = []
    for (px, py), (sx, sy) in edges:
        length = np.hypot(sx - px, sy - py)
        dist.append(sign * ((sx - px) * (rr - py) - (sy - py) * (cc - px)) / length)
    dist = np.stack(dist)
    mask = (dist > 0).all(axis=0)
    touches = _touches_raster(info, shape)
    margin = float(np.abs(dist).min()) if dist.size else np.inf
    return mask, touches, margin


def _expected(info, features, classes):
    keys = sorted(set(classes), key=lambda s: (str(s).casefold(), str(s))) if isinstance(classes[0], str) \
        else sorted(set(classes))
    covers: dict = {k: np.zeros((info.height, info.width), bool) for k in keys}
    dropped = 0
    kept = set()
    for shape, cls in zip(features, classes, strict=True):
        mask, touches, margin = _inside(info, shape)
        if shape[0] == "tri":
            assume(margin > 1e-3)  # no pixel centre on (or within float noise of) a triangle edge
        if not touches:
            dropped += 1
            continue
        kept.add(cls)
        covers[cls] |= mask
    count = sum(covers[k].astype(int) for k in kept) if kept else np.zeros((info.height, info.width), int)
    return covers, kept, count, dropped


@FAST
@given(scene=scenes())
def test_labels_follow_the_pixel_centre_rule_on_random_grids(scene):
    info, features, classes = scene
    assume(all(s[0] != "tri" or _inside(info, s)[2] > 0 for s in features))
    covers, kept, count, dropped = _expected(info, features, classes)
    text = isinstance(classes[0], str)
    path = f"/vsimem/samples_{uuid.uuid4().hex}.geojson"
    collection = {"type": "FeatureCollection",
                  "crs": _UTM_MEMBER,
                  "features": [{"type": "Feature", "properties": {"cls": c}, "geometry": _geojson(info, s)}
                               for s, c in zip(features, classes, strict=True)]}
    gdal.FileFromMemBuffer(path, json.dumps(collection).encode())
    try:
        if not kept or not (count == 1).any():
            with pytest.raises(ValueError, match="overlap the raster|cover no pixel centre"):
                labels_from_vector(path, None, "cls", info)
            return
        result = labels_from_vector(path, None, "cls", info)
    finally:
        gdal.Unlink(path)

    ordered = sorted(kept, key=lambda s: (s.casefold(), s)) if text else sorted(kept)
    value_of = {k: i + 1 for i, k in enumerate(ordered)} if text else {k: k for k in ordered}
    expected = np.zeros((info.height, info.width), np.int32)
    for k in kept:
        expected[covers[k] & (count == 1)] = value_of[k]
    np.testing.assert_array_equal(result.labels, expected)
    assert result.conflict_pixels == int((count >= 2).sum())
    assert result.dropped_outside == dropped
    assert result.n_features == len(features)
    assert result.class_values.tolist() == sorted(value_of.values())
    if text:
        assert result.class_names == ordered
    # Labels only where a sample is, and only with the classes of the samples there.
    assert set(np.unique(result.labels[result.labels > 0]).tolist()) <= set(value_of.values())


def test_three_overlapping_classes_are_a_conflict():
    """Indices 1 and 3 average to 2: a sum-only consistency check would label this pixel 2."""
    info = RasterInfo(path="grid", width=2, height=2, bands=1, dtype="Float32",
                      geotransform=(500000.0, 1.0, 0.0, 4000000.0, 0.0, -1.0), crs_wkt=UTM_WKT, nodata=[None],
                      band_names=["b1"])
    square = ("rect", 0.0, 0.0, 1.0, 1.0)  # pixel (0, 0)
    other = ("rect", 1.0, 1.0, 2.0, 2.0)  # pixel (1, 1), class 1 only
    features = [(square, 1), (square, 3), (square, 2), (other, 1)]
    path = f"/vsimem/three_{uuid.uuid4().hex}.geojson"
    collection = {"type": "FeatureCollection", "crs": _UTM_MEMBER,
                  "features": [{"type": "Feature", "properties": {"cls": c}, "geometry": _geojson(info, s)}
                               for s, c in features]}
    gdal.FileFromMemBuffer(path, json.dumps(collection).encode())
    try:
        result = labels_from_vector(path, None, "cls", info)
    finally:
        gdal.Unlink(path)
    assert result.labels.tolist() == [[0, 0], [0, 1]]
    assert result.conflict_pixels == 1
