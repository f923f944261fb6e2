"""Samples to labels on the raster grid: pixel-centre rasterisation, CRS, class fields, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from osgeo import ogr, osr

from rssgl_qgis.core.data.synthetic import make_synthetic_scene
from rssgl_qgis.io.raster import raster_info
from rssgl_qgis.io.raster_write import write_classification
from rssgl_qgis.io.samples import labels_from_raster, labels_from_vector
from rssgl_qgis.io.scene import write_scene_files

from .helpers import ORIGIN, PIXEL, make_raster, make_vector, pixel_to_map, point_wkt, rect_wkt

H, W = 16, 20


@pytest.fixture
def info(tmp_path):
    return raster_info(make_raster(tmp_path / "img.tif", np.ones((2, H, W), np.float32)))


def _mask(rows, cols):
    m = np.zeros((H, W), bool)
    m[rows, cols] = True
    return m


def test_polygons_use_the_pixel_centre_rule_and_points_burn_their_pixel(tmp_path, info):
    path = make_vector(tmp_path / "s.gpkg", [
        (rect_wkt(2, 1, 5, 4), 3),            # edges on pixel boundaries: 3 x 3 pixels
        (rect_wkt(2.6, 8.6, 5.4, 10.4), 7),   # edges mid-pixel: only centres inside (cols 3-4, rows 9)
        (point_wkt(10.3, 7.8), 3),
    ])
    s = labels_from_vector(path, None, "cls", info)
    expected = np.zeros((H, W), np.int32)
    expected[1:4, 2:5] = 3
    expected[9, 3:5] = 7
    expected[7, 10] = 3
    assert np.array_equal(s.labels, expected)
    assert s.labels.dtype == np.uint8  # the smallest type holding the class values (io.samples.label_dtype)
    assert s.class_values.tolist() == [3, 7] and s.class_names == ["Class 3", "Class 7"]
    assert (s.dropped_outside, s.n_features, s.warnings) == (0, 3, [])


def test_text_class_field_maps_sorted_names_to_1_to_n(tmp_path, info):
    path = make_vector(tmp_path / "t.gpkg", [(rect_wkt(0, 0, 2, 2), "water"), (rect_wkt(4, 0, 6, 2), "Corn"),
                                             (point_wkt(8.5, 8.5), "soy"), (point_wkt(9.5, 9.5), "Corn")],
                       field_type=ogr.OFTString)
    s = labels_from_vector(path, None, "cls", info)
    assert s.class_names == ["Corn", "soy", "water"] and s.class_values.tolist() == [1, 2, 3]
    assert s.labels[0, 0] == 3 and s.labels[0, 4] == 1 and s.labels[8, 8] == 2 and s.labels[9, 9] == 1


def test_integer_ids_with_class_name_field_keep_names(tmp_path, info):
    path = make_vector(tmp_path / "n.gpkg", [(rect_wkt(0, 0, 2, 2), 4, "Water"), (rect_wkt(4, 0, 6, 2), 2, "Corn")],
                       extra_fields=[("class_name", ogr.OFTString)])
    s = labels_from_vector(path, None, "cls", info)
    assert s.class_values.tolist() == [2, 4] and s.class_names == ["Corn", "Water"]


def test_nulls_are_skipped_and_counted(tmp_path, info):
    path = make_vector(tmp_path / "n.gpkg", [(rect_wkt(0, 0, 2, 2), 1), (rect_wkt(4, 0, 6, 2), None),
                                             (rect_wkt(8, 0, 9, 1), None), (None, 2)])
    s = labels_from_vector(path, None, "cls", info)
    assert s.class_values.tolist() == [1] and s.n_features == 4
    assert s.labels[0, 4] == 0
    assert any("2 feature(s) of layer 'samples' have no value in field 'cls'" in w for w in s.warnings)
    assert any("no geometry" in w for w in s.warnings)


def test_features_outside_the_raster_are_counted(tmp_path, info):
    path = make_vector(tmp_path / "o.gpkg", [(rect_wkt(0, 0, 2, 2), 1), (rect_wkt(100, 100, 102, 102), 2),
                                             (point_wkt(-50, 3), 2), (rect_wkt(18, 14, 25, 30), 1)])
    s = labels_from_vector(path, None, "cls", info)
    assert s.dropped_outside == 2
    assert s.labels[15, 19] == 1, "a polygon partly inside is clipped, not dropped"
    assert any("2 of 4 feature(s) of layer 'samples' lie outside the raster" in w for w in s.warnings)


def test_no_overlap_at_all_is_an_error_naming_the_layer(tmp_path, info):
    path = make_vector(tmp_path / "far.gpkg", [(rect_wkt(500, 500, 502, 502), 1)], layer="far_away")
    with pytest.raises(ValueError, match=r"None of the 1 feature\(s\) of layer 'far_away' overlap the raster"):
        labels_from_vector(path, None, "cls", info)


def test_empty_layer_and_all_null_layer_are_errors(tmp_path, info):
    empty = make_vector(tmp_path / "e.gpkg", [])
    with pytest.raises(ValueError, match="has no sample with a class in field 'cls'"):
        labels_from_vector(empty, None, "cls", info)
    nulls = make_vector(tmp_path / "nn.gpkg", [(rect_wkt(0, 0, 2, 2), None)])
    with pytest.raises(ValueError, match="has no sample with a class"):
        labels_from_vector(nulls, None, "cls", info)


@pytest.mark.parametrize("value", [0, -3])
def test_zero_or_negative_class_values_are_rejected(tmp_path, info, value):
    path = make_vector(tmp_path / "z.gpkg", [(rect_wkt(0, 0, 2, 2), 1), (rect_wkt(4, 0, 6, 2), value)])
    with pytest.raises(ValueError, match=rf"class value {value} .*must be positive integers.*Renumber the classes"):
        labels_from_vector(path, None, "cls", info)


def test_float_field_accepted_when_integral_rejected_otherwise(tmp_path, info):
    ok = make_vector(tmp_path / "f.gpkg", [(rect_wkt(0, 0, 2, 2), 2.0), (rect_wkt(4, 0, 6, 2), 5.0)],
                     field_type=ogr.OFTReal)
    assert labels_from_vector(ok, None, "cls", info).class_values.tolist() == [2, 5]
    bad = make_vector(tmp_path / "g.gpkg", [(rect_wkt(0, 0, 2, 2), 2.5)], field_type=ogr.OFTReal)
    with pytest.raises(ValueError, match=r"holds non-integer numbers \(e.g. 2.5 .*Use an integer or a text field"):
        labels_from_vector(bad, None, "cls", info)


def test_missing_field_lists_the_fields(tmp_path, info):
    path = make_vector(tmp_path / "m.gpkg", [(rect_wkt(0, 0, 2, 2), 1)])
    with pytest.raises(ValueError, match="Layer 'samples' has no field 'klass'; its fields are: cls"):
        labels_from_vector(path, None, "klass", info)


def test_overlapping_polygons_of_different_classes_are_left_unlabelled(tmp_path, info):
    path = make_vector(tmp_path / "ov.gpkg", [(rect_wkt(0, 0, 4, 4), 1), (rect_wkt(2, 2, 6, 6), 2),
                                              (rect_wkt(10, 10, 13, 13), 3), (rect_wkt(11, 11, 14, 14), 3)])
    s = labels_from_vector(path, None, "cls", info)
    assert s.conflict_pixels == 4 and np.all(s.labels[2:4, 2:4] == 0)
    assert np.all(s.labels[0:2, 0:4] == 1) and np.all(s.labels[4:6, 2:6] == 2)
    assert np.all(s.labels[11:13, 11:13] == 3), "overlaps within one class are fine"
    assert any("4 pixel(s) are covered by samples of different classes" in w for w in s.warnings)


def test_layer_choice_and_qgis_style_source(tmp_path, info):
    path = tmp_path / "multi.gpkg"
    make_vector(path, [(rect_wkt(0, 0, 2, 2), 1)], layer="a")
    make_vector(path, [(rect_wkt(4, 0, 6, 2), 2)], layer="b")
    with pytest.raises(ValueError, match=r"holds 2 layers \(a, b\); choose the layer"):
        labels_from_vector(path, None, "cls", info)
    assert labels_from_vector(f"{path}|layername=b", None, "cls", info).class_values.tolist() == [2]
    assert labels_from_vector(path, "a", "cls", info).class_values.tolist() == [1]
    with pytest.raises(ValueError, match="has no layer 'c'"):
        labels_from_vector(path, "c", "cls", info)


def test_reprojection_from_wgs84_matches_the_scene_polygons(tmp_path):
    scene = make_synthetic_scene(2, 48, 56, 20, 5)
    utm = write_scene_files(tmp_path / "utm", scene)
    wgs = write_scene_files(tmp_path / "wgs", scene, polygons_crs="EPSG:4326")
    info = raster_info(utm["cube"])
    source = ogr.Open(wgs["polygons"])
    srs = source.GetLayer(0).GetSpatialRef()
    assert srs.GetAuthorityCode(None) == "4326"
    envelope = source.GetLayer(0).GetExtent()
    assert -122 < envelope[0] < -121 and 36 < envelope[2] < 37.5, "lon/lat in traditional x/y order"
    source = None
    for paths in (utm, wgs):
        s = labels_from_vector(paths["polygons"], None, "class_id", info)
        assert np.array_equal(s.labels, scene.polygon_labels)
        assert s.class_names == scene.class_names


def test_label_raster_same_grid_nodata_and_names(tmp_path, info):
    labels = np.zeros((H, W), np.int16)
    labels[0:3, 0:3] = 10
    labels[5, 5] = 14
    labels[6, 6] = -1
    path = make_raster(tmp_path / "gt.tif", labels, nodata=-1)
    s = labels_from_raster(path, info)
    assert s.class_values.tolist() == [10, 14] and s.class_names == ["Class 10", "Class 14"]
    assert s.labels[6, 6] == 0 and s.labels.dtype == np.uint8 and (s.labels > 0).sum() == 10
    styled = tmp_path / "styled.tif"
    write_classification(styled, np.where(labels > 0, labels, 0).astype(np.uint8), info, [10, 14],
                         ["Lettuce", "Vineyard"], [(0, 255, 0), (128, 0, 128)])
    assert labels_from_raster(styled, info).class_names == ["Lettuce", "Vineyard"]


def test_label_raster_within_half_a_pixel_is_accepted(tmp_path, info):
    shifted = (ORIGIN[0] + 0.3 * PIXEL, ORIGIN[1])
    path = make_raster(tmp_path / "gt.tif", np.ones((H, W), np.uint8), origin=shifted)
    assert labels_from_raster(path, info).class_values.tolist() == [1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"shape": (H, W + 1)}, r"it is 21 x 16 pixels but the raster is 20 x 16"),
     ({"origin": (ORIGIN[0] + 0.7 * PIXEL, ORIGIN[1])},
      r"its geotransform \(600007, .*\) differs from the raster's .* by more than half a pixel"),
     ({"pixel": PIXEL * 1.1}, r"its geotransform \(600000, 11, .* by more than half a pixel"),
     ({"epsg": 32611}, r"its CRS \(WGS 84 / UTM zone 11N\) differs from the raster's \(WGS 84 / UTM zone 10N\)")],
)
def test_label_raster_on_another_grid_is_a_clear_error(tmp_path, info, kwargs, message):
    shape = kwargs.pop("shape", (H, W))
    path = make_raster(tmp_path / "gt.tif", np.ones(shape, np.uint8), **kwargs)
    with pytest.raises(ValueError, match=r"The label raster '.*gt.tif' is not on the grid of '.*img.tif': " + message):
        labels_from_raster(path, info)


def test_label_raster_bad_values(tmp_path, info):
    floats = make_raster(tmp_path / "f.tif", np.full((H, W), 1.5, np.float32))
    with pytest.raises(ValueError, match="holds non-integer values"):
        labels_from_raster(floats, info)
    negative = make_raster(tmp_path / "n.tif", np.full((H, W), -2, np.int16))
    with pytest.raises(ValueError, match="holds negative values .*Set the negative value as the band's nodata"):
        labels_from_raster(negative, info)
    empty = make_raster(tmp_path / "e.tif", np.zeros((H, W), np.uint8))
    with pytest.raises(ValueError, match="has no labelled pixel"):
        labels_from_raster(empty, info)


def test_pixel_to_map_helper_is_consistent_with_the_raster(info):
    # Guards the helpers the other tests rely on: pixel (0, 0) corner is the raster origin.
    assert pixel_to_map(0, 0) == (info.geotransform[0], info.geotransform[3])
    ref = osr.SpatialReference()
    ref.ImportFromWkt(info.crs_wkt)
    assert ref.GetAuthorityCode(None) == "32610"


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 18), st.floats(0, 14), st.floats(0.3, 6), st.floats(0.3, 6),
                          st.integers(1, 3)), min_size=1, max_size=4),
       st.lists(st.tuples(st.floats(-2, 22), st.floats(-2, 18), st.integers(1, 3)), max_size=4))
def test_rasterisation_matches_the_pixel_centre_rule(tmp_path_factory, rects, points):
    """Random rectangles and points: GDAL's burn equals a direct pixel-centre computation."""
    folder = tmp_path_factory.mktemp("prop")
    info = raster_info(make_raster(folder / "img.tif", np.ones((1, H, W), np.uint8)))
    features = [(rect_wkt(c, r, c + w, r + h), v) for c, r, w, h, v in rects]
    features += [(point_wkt(c, r), v) for c, r, v in points]
    cy, cx = np.mgrid[0:H, 0:W] + 0.5
    count = np.zeros((H, W), int)
    total = np.zeros((H, W), int)
    last = np.zeros((H, W), int)
    for c, r, w, h, v in rects:
        inside = (cx > c) & (cx < c + w) & (cy > r) & (cy < r + h)
        count += inside
        total += inside * v
        last[inside] = v
    for c, r, v in points:
        if 0 <= c < W and 0 <= r < H:
            row, col = int(np.floor(r)), int(np.floor(c))
            count[row, col] += 1
            total[row, col] += v
            last[row, col] = v
    # Skip draws on a convention boundary: a polygon edge through a pixel centre, a point on a pixel edge.
    edges = [e for c, r, w, h, _ in rects for e in (c, c + w, r, r + h)]
    assume(all(abs(e - np.floor(e) - 0.5) > 1e-6 for e in edges))
    assume(all(min(abs(e - round(e)) for e in (c, r)) > 1e-6 for c, r, _ in points))
    expected = np.where((count > 0) & (total == count * last), last, 0)
    if not (expected > 0).any():
        return  # covered by the "no pixel centre" error test
    path = make_vector(folder / "s.gpkg", features)
    assert np.array_equal(labels_from_vector(path, None, "cls", info).labels, expected)


def test_class_values_beyond_int32_are_rejected(tmp_path, info):
    path = make_vector(tmp_path / "big.gpkg", [(rect_wkt(0, 0, 2, 2), 2**33)], field_type=ogr.OFTInteger64)
    with pytest.raises(ValueError, match="larger than the plugin supports"):
        labels_from_vector(path, None, "cls", info)


def test_three_classes_whose_indices_average_out_still_conflict(tmp_path, info):
    # Classes 1, 3 and 2 (2 burnt last) on one pixel: 1 + 3 + 2 == 3 * 2, only the squares tell.
    path = make_vector(tmp_path / "three.gpkg", [(rect_wkt(0, 0, 3, 3), 1), (rect_wkt(1, 1, 4, 4), 3),
                                                 (rect_wkt(2, 2, 5, 5), 2)])
    s = labels_from_vector(path, None, "cls", info)
    assert s.labels[2, 2] == 0 and s.conflict_pixels == 7  # (1,2) and (2,3) overlaps, 2 x 2 each, share (2, 2)
    assert s.labels[0, 0] == 1 and s.labels[4, 4] == 2


def test_layer_without_crs_is_taken_in_raster_coordinates_with_a_warning(tmp_path, info):
    path = make_vector(tmp_path / "nocrs.shp", [(point_wkt(3.5, 2.5), 4)], epsg=None, driver="ESRI Shapefile")
    s = labels_from_vector(path, None, "cls", info)
    assert s.labels[2, 3] == 4 and (s.labels > 0).sum() == 1
    assert any("has no CRS; the samples are assumed to be in the raster's coordinates" in w for w in s.warnings)


def test_each_feature_gets_its_own_group_number_for_cross_validation(tmp_path, info):
    path = make_vector(tmp_path / "g.gpkg", [
        (rect_wkt(0, 0, 3, 3), 1), (rect_wkt(5, 0, 8, 3), 1), (rect_wkt(0, 6, 4, 8), 2), (point_wkt(12.5, 12.5), 2),
    ])
    s = labels_from_vector(path, None, "cls", info)
    assert s.groups.shape == (H, W) and s.groups.dtype == np.uint8  # 4 features
    assert ((s.groups > 0) == (s.labels > 0)).all()
    numbers = [np.unique(s.groups[r0:r1, c0:c1]).tolist() for r0, r1, c0, c1 in
               ((0, 3, 0, 3), (0, 3, 5, 8), (6, 8, 0, 4), (12, 13, 12, 13))]
    assert sorted(n for (n,) in numbers) == [1, 2, 3, 4]  # one number per feature, each feature whole


def test_label_raster_patches_are_the_groups(tmp_path, info):
    labels = np.zeros((H, W), np.int16)
    labels[0:3, 0:3] = 10
    labels[0:3, 3:5] = 14  # touches the first patch but is another class: another group
    labels[8:10, 8:10] = 10  # a second, separate patch of class 10
    labels[10, 10] = 10  # diagonal neighbour: same patch (8-neighbourhood)
    s = labels_from_raster(make_raster(tmp_path / "gt.tif", labels), info)
    g = s.groups
    assert ((g > 0) == (labels > 0)).all()
    assert np.unique(g[0:3, 0:3]).size == 1 and np.unique(g[0:3, 3:5]).size == 1 and g[0, 0] != g[0, 3]
    assert g[8, 8] == g[10, 10] != g[0, 0]
    assert np.unique(g[g > 0]).size == 3
