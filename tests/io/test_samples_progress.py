"""Samples on a large raster are read cheaply and talkatively (issue 29).

On a 20000 x 20000 raster the labels were int32 (1.6 GB) and then int64 (3.2 GB) arrays found by whole-raster
scans, and the burn and the label raster's read said nothing and could not be cancelled. Now: the labels and
feature numbers are in the smallest integer type that holds them, the labelled pixels come as a sparse list
beside them, and the burn windows and the label raster's strips report progress and honour cancel.
"""

from __future__ import annotations

import numpy as np
import pytest

from rssgl_qgis.core.errors import Cancelled
from rssgl_qgis.io import burn, samples
from rssgl_qgis.io.raster import raster_info
from rssgl_qgis.io.samples import label_dtype, labels_from_raster, labels_from_vector

from .helpers import make_raster, make_vector, point_wkt, rect_wkt

H, W = 16, 20


@pytest.fixture
def info(tmp_path):
    return raster_info(make_raster(tmp_path / "img.tif", np.ones((2, H, W), np.float32)))


@pytest.fixture
def features():
    return [(rect_wkt(1, 1, 6, 4), 3), (rect_wkt(12, 9, 17, 14), 5), (point_wkt(10.5, 2.5), 3),
            (point_wkt(3.5, 12.5), 5), (rect_wkt(8, 6, 11, 8), 3)]


@pytest.fixture
def small_windows(monkeypatch):
    monkeypatch.setattr(burn, "_BURN_WINDOW", 4)  # 4 x 5 windows over the 16 x 20 raster
    monkeypatch.setattr(burn, "BURN_PROGRESS_SECONDS", 0.0)


@pytest.mark.parametrize(("value", "dtype"), [(3, np.uint8), (255, np.uint8), (300, np.uint16),
                                              (70000, np.int32)])
def test_labels_are_in_the_smallest_type_that_holds_the_classes(tmp_path, info, value, dtype):
    path = make_vector(tmp_path / "s.gpkg", [(rect_wkt(1, 1, 4, 4), value), (point_wkt(10.5, 2.5), 1)])
    s = labels_from_vector(path, None, "cls", info)
    assert s.labels.dtype == dtype and label_dtype(value) == dtype
    assert s.groups.dtype == np.uint8  # two features
    assert s.labels[2, 2] == value and s.labels[2, 10] == 1 and int((s.labels > 0).sum()) == 10


def test_the_sparse_list_is_the_labelled_pixels_row_major(tmp_path, info, features, small_windows):
    s = labels_from_vector(make_vector(tmp_path / "s.gpkg", features), None, "cls", info)
    rows, cols, values = s.labelled()
    expected = np.nonzero(s.labels)
    np.testing.assert_array_equal(rows, expected[0])
    np.testing.assert_array_equal(cols, expected[1])
    np.testing.assert_array_equal(values, s.labels[expected])
    assert s.pixels is not None  # kept by the burn, not found again by a scan of the raster


def test_the_burn_reports_its_windows_in_order(tmp_path, info, features, small_windows):
    messages: list[tuple[float, str]] = []
    s = labels_from_vector(make_vector(tmp_path / "s.gpkg", features), None, "cls", info,
                           progress=lambda percent, message: messages.append((percent, message)))
    percents = [p for p, _ in messages]
    assert percents == sorted(percents) and percents[0] == 0.0 and percents[-1] == 100.0
    assert len(messages) == 21  # one before each of the 20 windows and the end
    assert messages[-1][1] == "burning the samples onto the raster grid: 20 of 20 windows"
    assert int((s.labels > 0).sum()) > 0


def test_the_burn_stops_when_asked(tmp_path, info, features, small_windows):
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(Cancelled, match="training samples was cancelled"):
        labels_from_vector(make_vector(tmp_path / "s.gpkg", features), None, "cls", info, should_stop=should_stop)
    assert len(asked) == 4  # asked before each window, stopped at the fourth


def test_small_windows_burn_the_same_labels_as_one_window(tmp_path, info, features, monkeypatch):
    path = make_vector(tmp_path / "s.gpkg", features)
    whole = labels_from_vector(path, None, "cls", info)
    monkeypatch.setattr(burn, "_BURN_WINDOW", 3)
    windowed = labels_from_vector(path, None, "cls", info)
    np.testing.assert_array_equal(windowed.labels, whole.labels)
    np.testing.assert_array_equal(windowed.groups, whole.groups)
    for a, b in zip(windowed.labelled(), whole.labelled(), strict=True):
        np.testing.assert_array_equal(a, b)


def _label_raster(tmp_path, top: int, dtype=np.int32) -> tuple[str, np.ndarray]:
    labels = np.zeros((H, W), dtype)
    labels[0:3, 0:4] = 10
    labels[7:9, 5:15] = top
    labels[12, 1] = -1
    return make_raster(tmp_path / "gt.tif", labels, nodata=-1), np.where(labels > 0, labels, 0)


@pytest.mark.parametrize(("top", "dtype"), [(14, np.uint8), (4000, np.uint16), (100000, np.int32)])
def test_a_label_raster_is_read_in_strips_into_the_smallest_type(tmp_path, info, monkeypatch, top, dtype):
    monkeypatch.setattr(samples, "_LABEL_STRIP_BYTES", W * 8 * 3)  # strips of 3 rows: 6 strips
    monkeypatch.setattr(samples, "BURN_PROGRESS_SECONDS", 0.0)
    path, expected = _label_raster(tmp_path, top)
    messages: list[tuple[float, str]] = []
    s = labels_from_raster(path, info, progress=lambda percent, message: messages.append((percent, message)))
    assert s.labels.dtype == dtype
    np.testing.assert_array_equal(s.labels, expected)
    assert s.class_values.tolist() == [10, top]
    assert [p for p, _ in messages] == pytest.approx([100.0 * r / H for r in (0, 3, 6, 9, 12, 15, 16)])
    assert messages[-1][1] == f"reading the label raster: {H} of {H} rows"
    for a, b in zip(s.labelled(), (*np.nonzero(expected), expected[np.nonzero(expected)]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_label_raster_read_stops_when_asked(tmp_path, info, monkeypatch):
    monkeypatch.setattr(samples, "_LABEL_STRIP_BYTES", W * 8 * 3)
    path, _ = _label_raster(tmp_path, 14)
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(Cancelled, match="label raster was cancelled"):
        labels_from_raster(path, info, should_stop=should_stop)
    assert len(asked) == 3


def test_a_negative_value_in_a_later_strip_is_still_refused(tmp_path, info, monkeypatch):
    monkeypatch.setattr(samples, "_LABEL_STRIP_BYTES", W * 8 * 3)
    labels = np.zeros((H, W), np.int16)
    labels[0, 0], labels[14, 3] = 2, -5
    path = make_raster(tmp_path / "neg.tif", labels)
    with pytest.raises(ValueError, match=r"negative values \(e.g. -5\)"):
        labels_from_raster(path, info)
