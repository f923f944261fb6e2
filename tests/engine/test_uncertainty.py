"""Guided sampling: ranking and polygonising the least confident regions (numpy/scipy/GDAL only)."""

from __future__ import annotations

import numpy as np
import pytest

osgeo = pytest.importorskip("osgeo")

from osgeo import ogr, osr  # noqa: E402

from rssgl_qgis.io.uncertainty import (  # noqa: E402
    Guide,
    drawn_samples,
    find_uncertain_regions,
    least_confident_regions_from_files,
    write_regions_gpkg,
)


def _scene():
    """A 40x50 map: confident everywhere except a big blob (classes 3 vs 5), a small blob and a border line."""
    h, w = 40, 50
    conf = np.full((h, w), 0.95, np.float32)
    prob = np.zeros((3, h, w), np.float32)
    prob[0] = 0.95
    prob[1:] = 0.025
    conf[5:15, 5:20] = 0.40  # big region: 150 px, classes 2nd/3rd band compete
    prob[:, 5:15, 5:20] = np.array([0.2, 0.4, 0.4], np.float32)[:, None, None]
    prob[1, 5:15, 5:20] = 0.41
    prob[2, 5:15, 5:20] = 0.39
    conf[30:34, 40:44] = 0.30  # small, less confident: 16 px
    prob[:, 30:34, 40:44] = np.array([0.3, 0.3, 0.4], np.float32)[:, None, None]
    conf[:, 30] = 0.35  # a one-pixel-wide border line: mixed pixels, not worth a polygon
    return conf, prob


def test_ranks_big_uncertain_region_first_and_ignores_border_lines():
    conf, prob = _scene()
    search = find_uncertain_regions(conf, prob, [1, 3, 5], quantile=0.2, max_regions=5)
    assert [r.pixels for r in search.regions] == [150, 16]
    big, small = search.regions
    assert big.rank == 1 and big.bbox == (5, 5, 15, 20)
    assert big.first_class == 3 and big.second_class == 5
    assert big.mean_confidence == pytest.approx(0.40, abs=1e-6)
    assert small.first_class == 5 and small.second_class in (1, 3)
    # The border line column is not part of any selected region.
    assert not search.components[:, 30].any()
    assert set(np.unique(search.components)) == {0, 1, 2}


def test_max_regions_min_pixels_and_nodata():
    conf, prob = _scene()
    valid = np.ones(conf.shape, bool)
    valid[5:15, 5:20] = False  # the big region is nodata: it must not be proposed
    search = find_uncertain_regions(conf, prob, [1, 3, 5], valid=valid, quantile=0.2, max_regions=1)
    assert len(search.regions) == 1 and search.regions[0].pixels == 16
    none = find_uncertain_regions(conf, prob, [1, 3, 5], threshold=0.1)
    assert none.regions == []


def test_bad_shapes_are_explained():
    conf, prob = _scene()
    with pytest.raises(ValueError, match="one band per class"):
        find_uncertain_regions(conf, prob[:, :10], [1, 3, 5])
    with pytest.raises(ValueError, match="class values"):
        find_uncertain_regions(conf, prob, [1, 3])


GT = (500000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0)


def _write_rasters(tmp_path, conf, prob) -> tuple[str, str]:
    from osgeo import gdal

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    conf_path, prob_path = str(tmp_path / "conf.tif"), str(tmp_path / "prob.tif")
    for path, data in ((conf_path, conf[None]), (prob_path, prob)):
        ds = gdal.GetDriverByName("GTiff").Create(path, 50, 40, data.shape[0], gdal.GDT_Float32)
        ds.SetGeoTransform(GT)
        ds.SetProjection(srs.ExportToWkt())
        for i, band in enumerate(data, start=1):
            ds.GetRasterBand(i).WriteArray(band)
            ds.GetRasterBand(i).SetNoDataValue(-1)
        ds = None
    return conf_path, prob_path


def test_polygons_land_on_the_map_with_attributes(tmp_path):
    conf, prob = _scene()
    conf_path, prob_path = _write_rasters(tmp_path, conf, prob)
    out = str(tmp_path / "next.gpkg")
    names = {1: "Water", 3: "Corn", 5: "Soybean"}
    search = least_confident_regions_from_files(conf_path, prob_path, [1, 3, 5], names, out, quantile=0.2)
    assert len(search.regions) == 2
    ds = ogr.Open(out)
    layer = ds.GetLayer(0)
    assert layer.GetName() == "where_to_draw_next"
    assert layer.GetSpatialRef().GetAuthorityCode(None) == "32633"
    rows = sorted(
        (f.GetField("rank"), f.GetField("class_1"), f.GetField("class_2"), f.GetGeometryRef().Area())
        for f in layer
    )
    assert rows[0][:3] == (1, "Corn", "Soybean")
    assert rows[0][3] == pytest.approx(150 * 30 * 30)
    # Envelope of rank 1: columns 5..20, rows 5..15 in map coordinates.
    first = [f for f in layer if f.GetField("rank") == 1][
        0
    ]  # keep the feature alive while reading its geometry
    env = first.GetGeometryRef().GetEnvelope()
    assert env == pytest.approx((500150.0, 500600.0, 4199550.0, 4199850.0))


def test_empty_search_still_writes_a_layer(tmp_path):
    conf = np.full((8, 8), -1.0, np.float32)  # all nodata
    prob = np.zeros((2, 8, 8), np.float32)
    search = find_uncertain_regions(conf, prob, [1, 2])
    out = write_regions_gpkg(str(tmp_path / "e.gpkg"), search, (0, 1, 0, 8, 0, -1), "", {})
    assert ogr.Open(out).GetLayer(0).GetFeatureCount() == 0


# ------------------------------------------------------------------ the guide's weights (benchmarks/guided_drawing.py)
def _two_regions():
    """Two uncertain blocks of equal size and confidence: A (rows 2-9) confuses classes 1 and 2, B (rows 20-27)
    classes 2 and 3; 3 classes, confident class 1 elsewhere."""
    h, w = 40, 50
    conf = np.full((h, w), 0.95, np.float32)
    prob = np.zeros((3, h, w), np.float32)
    prob[0] = 0.95
    prob[1:] = 0.025
    for rows, pair in ((slice(2, 10), (0, 1)), (slice(20, 28), (1, 2))):
        conf[rows, 2:12] = 0.5
        prob[:, rows, 2:12] = 0.0
        prob[pair[0], rows, 2:12] = 0.5
        prob[pair[1], rows, 2:12] = 0.5
    return conf, prob


def _first_rows(search) -> int:
    return search.regions[0].bbox[0]


def test_without_a_guide_ties_go_to_the_first_region():
    conf, prob = _two_regions()
    assert _first_rows(find_uncertain_regions(conf, prob, [1, 2, 3], quantile=0.2)) == 2


def test_balance_puts_the_class_with_few_samples_first():
    conf, prob = _two_regions()
    search = find_uncertain_regions(conf, prob, [1, 2, 3], quantile=0.2, class_samples=[400, 300, 20],
                                    guide=Guide(balance=True))
    assert _first_rows(search) == 20  # B involves class 3, which has 20 training pixels


def test_away_demotes_regions_next_to_drawn_polygons():
    conf, prob = _two_regions()
    drawn = np.zeros(conf.shape, bool)
    drawn[4:6, 13:16] = True  # a polygon right next to A
    search = find_uncertain_regions(conf, prob, [1, 2, 3], quantile=0.2, drawn=drawn, guide=Guide(away=True))
    assert _first_rows(search) == 20


def test_density_prefers_the_region_that_stands_for_more_of_the_scene():
    conf, prob = _two_regions()
    # many small speckles (below min_pixels) that look like B to the model: B stands for more uncertainty
    for col in range(20, 48, 3):
        for row in range(2, 38, 3):
            conf[row, col] = 0.5
            prob[:, row, col] = (0.0, 0.5, 0.5)
    search = find_uncertain_regions(conf, prob, [1, 2, 3], quantile=0.3, guide=Guide(density=True))
    assert _first_rows(search) == 20


def test_diverse_lists_another_pair_before_a_second_region_of_the_same_pair():
    conf, prob = _two_regions()
    conf[32:38, 30:45] = 0.5  # C: larger than A and B, confusing classes 1 and 2 like A
    prob[:, 32:38, 30:45] = np.array([0.5, 0.45, 0.05], np.float32)[:, None, None]
    plain = find_uncertain_regions(conf, prob, [1, 2, 3], quantile=0.2)
    assert [r.bbox[0] for r in plain.regions] == [32, 2, 20]
    diverse = find_uncertain_regions(conf, prob, [1, 2, 3], quantile=0.2, guide=Guide(diverse=True))
    assert [r.bbox[0] for r in diverse.regions] == [32, 20, 2]


def test_drawn_samples_rasterises_the_training_polygons(tmp_path):
    conf, prob = _two_regions()
    conf_path, _ = _write_rasters(tmp_path, conf, prob)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    path = str(tmp_path / "samples.gpkg")
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = ds.CreateLayer("training", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
    x0, y0 = GT[0], GT[3]
    for value, (c0, r0, c1, r1) in ((1, (13, 4, 16, 6)), (3, (30, 30, 34, 31))):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("class_id", value)
        xa, xb, ya, yb = x0 + 30 * c0, x0 + 30 * c1, y0 - 30 * r0, y0 - 30 * r1
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON(({xa} {ya},{xb} {ya},{xb} {yb},{xa} {yb},{xa} {ya}))"))
        layer.CreateFeature(feature)
    ds = None
    drawn, counts = drawn_samples(path, "training", "class_id", conf_path, [1, 2, 3])
    assert drawn.shape == conf.shape and drawn[4:6, 13:16].all() and drawn.sum() == 6 + 4
    assert counts.tolist() == [6.0, 0.0, 4.0]
