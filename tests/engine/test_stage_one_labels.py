"""Stage one on large label arrays (issue 29): no int64 copy of the labels, labelled pixels found a word at a
time, and the band statistics of a raster read in windows report their progress and stop when asked.

On a 20000 x 20000 raster the engine copied the labels to int64 (3.2 GB, 8 s) and scanned them whole several
times before the band statistics, which sent no message. Results must not change with the labels' type.
"""

from __future__ import annotations

import numpy as np
import pytest

import rssgl_qgis.core.training.windowed_scene as ws
from rssgl_qgis.core.data.sampling import labelled_pixels, percent_split, validation_split
from rssgl_qgis.core.errors import Cancelled
from rssgl_qgis.core.training.classifier import RssglClassifier

from .test_training import TINY, _params, _scene


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.int64, np.float32])
@pytest.mark.parametrize("shape", [(7, 13), (33, 17), (64, 65), (1, 999)])
def test_labelled_pixels_are_np_nonzero(dtype, shape):
    rng = np.random.default_rng(shape[0])
    labels = np.zeros(shape, dtype)
    labels[rng.random(shape) < 0.05] = 3
    labels.reshape(-1)[-1] = 7  # a labelled pixel in the tail that fills no whole word
    for array in (labels, labels[:, 1:], np.asfortranarray(labels)):
        rows, cols = labelled_pixels(array)
        expected = np.nonzero(array)
        np.testing.assert_array_equal(rows, expected[0])
        np.testing.assert_array_equal(cols, expected[1])


def test_integer_labels_are_checked_without_an_int64_copy():
    labels = np.zeros((20, 21), np.uint8)
    labels[3, 4] = 2
    kept = RssglClassifier()._labels(labels, (20, 21), "training labels")
    assert kept is labels  # the caller's uint8 array, not a copy 8 times its size
    assert RssglClassifier()._labels(labels.astype(np.float32), (20, 21), "x").dtype == np.int64


@pytest.fixture(scope="module")
def stage_one_int64():
    cube, labels = _scene(24, 26, seed=5)
    train, _ = percent_split(labels, 10, seed=0)
    return cube, train, RssglClassifier(TINY, _params()).fit_spectral_only(cube, train)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32])
@pytest.mark.parametrize("training_input", ["whole", "windows"])
def test_stage_one_is_the_same_for_every_label_type(stage_one_int64, dtype, training_input):
    cube, train, expected = stage_one_int64
    if training_input == "windows":
        expected = RssglClassifier(TINY, _params(training_input="windows")).fit_spectral_only(cube, train)
    clf = RssglClassifier(TINY, _params(training_input=training_input)).fit_spectral_only(cube, train.astype(dtype))
    assert clf.classes_.dtype == np.int64 and clf.classes_.tolist() == expected.classes_.tolist()
    np.testing.assert_array_equal(clf.band_mean_, expected.band_mean_)
    np.testing.assert_array_equal(clf.band_std_, expected.band_std_)
    np.testing.assert_array_equal(clf.train_counts_, expected.train_counts_)
    np.testing.assert_array_equal(clf.predict_proba(cube), expected.predict_proba(cube))


def test_stage_one_on_windows_reports_the_band_statistics_and_the_fit_in_order(monkeypatch):
    monkeypatch.setattr(ws, "STATISTICS_STRIP_BYTES", 8 * 26 * 4 * 5)  # strips of 5 rows
    monkeypatch.setattr(ws, "STATISTICS_PROGRESS_SECONDS", 0.0)
    cube, labels = _scene(24, 26, seed=5)
    train, _ = percent_split(labels, 10, seed=0)
    messages: list[tuple[float, str]] = []
    RssglClassifier(TINY, _params(training_input="windows")).fit_spectral_only(
        cube, train.astype(np.uint8), progress=lambda percent, message: messages.append((percent, message)))
    percents = [p for p, _ in messages]
    assert percents == sorted(percents) and percents[-1] == 100.0
    words = [m.split(":")[0] for _, m in messages]
    statistics = [m for m in words if m == "band statistics for training"]
    assert len(statistics) == 6  # before each of the 5 strips and at the end
    assert words[len(statistics):] == [f"reading the windows around the {int((train > 0).sum())} training pixels",
                                       f"fitting the spectral model on {int((train > 0).sum())} training pixels",
                                       "spectral model fitted"]


def test_stage_one_stops_in_the_band_statistics_when_asked(monkeypatch):
    monkeypatch.setattr(ws, "STATISTICS_STRIP_BYTES", 8 * 26 * 4 * 5)
    cube, labels = _scene(24, 26, seed=5)
    train, _ = percent_split(labels, 10, seed=0)
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(Cancelled, match="band statistics"):
        RssglClassifier(TINY, _params(training_input="windows")).fit_spectral_only(cube, train,
                                                                                   should_stop=should_stop)
    assert len(asked) == 3


def _validation_split_before(train_labels, share, seed, min_train_per_class=1):
    """core.data.sampling.validation_split before issue 29: a sort and a scan of the whole raster per class."""
    rs = np.random.RandomState(seed)
    flat = train_labels.ravel()
    train, val = flat.copy(), np.zeros_like(flat)
    for value in np.unique(flat):
        if value == 0:
            continue
        inds = np.flatnonzero(flat == value)
        n_val = min(max(1, round(share * len(inds))), len(inds) - min_train_per_class)
        if len(inds) < 2 or n_val <= 0:
            continue
        rs.shuffle(inds)
        val[inds[:n_val]] = value
        train[inds[:n_val]] = 0
    return train.reshape(train_labels.shape), val.reshape(train_labels.shape)


def test_validation_split_from_the_labelled_pixels_is_the_split_of_before():
    rng = np.random.default_rng(29)
    for case in range(200):
        shape = tuple(int(v) for v in rng.integers(1, 40, 2))
        dtype = rng.choice([np.uint8, np.uint16, np.int32, np.int64])
        labels = np.where(rng.random(shape) < rng.random(), rng.integers(1, 6, shape), 0).astype(dtype)
        share, seed = float(rng.choice([0.1, 0.2, 0.5, 0.9])), int(rng.integers(0, 99))
        for got, want in zip(validation_split(labels, share, seed=seed), _validation_split_before(labels, share, seed),
                             strict=True):
            assert got.dtype == want.dtype, case
            np.testing.assert_array_equal(got, want, err_msg=f"case {case}")
