"""The spectral model's settings search holds out whole samples where users drew a few polygons per class
(issue 28; core/spectral/spectral_model.search_groups, core/data/sampling.pixel_patches).

Folds of pixels let a held-out pixel's polygon-mates train, so the search rewards a model that memorises the
polygons; on EnMAP's polygon splits whole-sample folds measured +2.4 to +4.6 OA points
(benchmarks/spectral_fold_rules.py). With many patches per class (a label raster's tiles) pixels measured better.
Every entry point that fits the spectral model on a scene in memory must hand it the samples.
"""

from __future__ import annotations

import numpy as np
import pytest

from rssgl_qgis.core.data import sampling
from rssgl_qgis.core.data.sampling import label_patches, pixel_patches
from rssgl_qgis.core.spectral import spectral_model as spectral
from rssgl_qgis.core.spectral.spectral_model import search_groups

from .test_training import TINY, _params, _scene


@pytest.mark.parametrize("seed", range(6))
def test_pixel_patches_number_the_patches_label_patches_finds(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, (23, 31)) * (rng.random((23, 31)) < 0.55)
    labels[:, 0] = 2  # patches that touch the left and right edges of the grid
    labels[:, -1] = 2
    rows, cols = np.nonzero(labels)
    shuffle = rng.permutation(rows.size)  # any order of the pixel list
    rows, cols = rows[shuffle], cols[shuffle]
    got = pixel_patches(rows, cols, labels[rows, cols])
    expected = label_patches(labels)[rows, cols]
    pairs = set(zip(expected.tolist(), got.tolist(), strict=True))
    # the same partition of the pixels: each patch maps to exactly one number and back
    assert len(pairs) == np.unique(expected).size == np.unique(got).size


def test_pixel_patches_keep_diagonal_neighbours_and_split_classes():
    rows, cols = np.array([0, 1, 2, 2]), np.array([0, 1, 2, 3])
    got = pixel_patches(rows, cols, np.array([1, 1, 1, 2]))
    assert got[0] == got[1] == got[2] and got[3] != got[0]
    assert pixel_patches(np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)).size == 0


def test_whole_samples_for_a_few_polygons_per_class_pixels_for_many_or_large_samples():
    y = np.repeat([0, 1, 2], 40)
    few = np.repeat(np.arange(6), 20)  # two polygons per class
    many = np.arange(120) // 2  # twenty patches per class
    assert search_groups(y, few) is few
    assert search_groups(y, many) is None
    assert search_groups(y, None) is None
    large = np.repeat([0, 1, 2], spectral.SEARCH_CAP // 2)  # two large samples a class: lopsided folds
    assert search_groups(large, np.arange(large.size) * 2 // (spectral.SEARCH_CAP // 2)) is None


def test_no_sample_folds_when_switched_off(monkeypatch):
    monkeypatch.setattr(spectral, "SAMPLE_FOLDS_MAX", 0)
    y = np.repeat([0, 1], 10)
    assert search_groups(y, np.repeat(np.arange(4), 5)) is None


def _recording(monkeypatch, module) -> list:
    seen = []
    original = module.fit_spectral

    def record(spectra, y, **kw):
        seen.append((np.asarray(y), kw.get("groups")))
        return original(spectra, y, **kw)

    monkeypatch.setattr(module, "fit_spectral", record)
    return seen


def _check_samples(seen, train):
    assert seen, "the spectral model was not fitted"
    for y, groups in seen:
        assert groups is not None, "the spectral model got no samples: its search would use folds of pixels"
        rows, cols = np.nonzero(train)
        expected = label_patches(train)[rows, cols]
        assert groups.size == y.size == rows.size
        assert len(set(zip(expected.tolist(), np.asarray(groups).tolist(), strict=True))) == np.unique(expected).size


def test_stage_one_and_training_hand_the_samples_to_the_spectral_model(monkeypatch):
    import rssgl_qgis.core.training.classifier as classifier
    import rssgl_qgis.core.training.stage_one as stage_one
    from rssgl_qgis.core.training.classifier import RssglClassifier

    cube, labels = _scene()
    train = np.where(np.arange(labels.shape[1])[None, :] % 5 < 2, labels, 0)  # stripes: several patches a class
    seen = _recording(monkeypatch, stage_one)
    RssglClassifier(TINY, _params()).fit_spectral_only(cube, train)
    _check_samples(seen, train)
    for distill in (0.0, 0.3):  # the spectral model after RSSGL, and before it (distillation)
        seen = _recording(monkeypatch, classifier)
        RssglClassifier(TINY, _params(iterations=2, epoch_iterations=1, distill_share=distill)).fit(cube, train)
        _check_samples(seen, train)


def test_a_spectral_only_fold_hands_the_samples_to_the_spectral_model(monkeypatch):
    import rssgl_qgis.core.training.spectral_folds as spectral_folds

    cube, labels = _scene()
    train = np.where(np.arange(labels.shape[1])[None, :] % 5 < 2, labels, 0)
    seen = _recording(monkeypatch, spectral_folds)
    spectral_folds.spectral_probabilities_at(_params(), cube, None, train, labels > 0)
    _check_samples(seen, train)


def test_stage_one_on_windows_hands_the_samples_to_the_spectral_model(monkeypatch):
    """Windows list their pixels tile by tile: each pixel's sample must travel with it."""
    import rssgl_qgis.core.training.stage_one as stage_one
    from rssgl_qgis.core.training.classifier import RssglClassifier

    cube, labels = _scene()
    train = np.where(np.arange(labels.shape[1])[None, :] % 5 < 2, labels, 0)
    seen = _recording(monkeypatch, stage_one)
    RssglClassifier(TINY, _params(training_input="windows")).fit_spectral_only(cube, train)
    (y, groups), = seen
    assert groups is not None and groups.size == y.size == (train > 0).sum()
    patches = label_patches(train)
    expected_sizes = np.sort(np.bincount(patches[train > 0])[1:])
    assert np.array_equal(np.sort(np.bincount(np.unique(groups, return_inverse=True)[1])), expected_sizes)
    for g in np.unique(groups):  # a sample holds one class
        assert np.unique(y[groups == g]).size == 1
    whole = _recording(monkeypatch, stage_one)
    RssglClassifier(TINY, _params()).fit_spectral_only(cube, train)
    assert np.array_equal(np.sort(whole[0][0]), np.sort(y))  # the same class indices, in another order


def test_training_on_windows_hands_the_samples_to_the_spectral_model(monkeypatch):
    """RSSGL's own training on windows (the large-raster path) fits the spectral model on the windows' pixels, listed
    tile by tile: each must get its own sample, found by its position (sampling.patches_at)."""
    import rssgl_qgis.core.training.classifier as classifier
    from rssgl_qgis.core.training.classifier import RssglClassifier

    cube, labels = _scene()
    train = np.where(np.arange(labels.shape[1])[None, :] % 5 < 2, labels, 0)
    seen = _recording(monkeypatch, classifier)
    RssglClassifier(TINY, _params(training_input="windows", iterations=2, epoch_iterations=1)).fit(cube, train)
    (y, groups), = seen
    assert groups is not None and groups.size == y.size
    patches = label_patches(train)
    train_px = (train > 0).sum()
    assert y.size >= train_px - 8  # (validation pixels may be held back; every other pixel is listed)
    for g in np.unique(groups):  # a sample holds one class
        assert np.unique(y[groups == g]).size == 1
    assert np.unique(groups).size <= np.unique(patches[train > 0]).size


def test_patches_at_finds_each_pixels_patch_in_any_order():
    rng = np.random.default_rng(3)
    labels = np.zeros((12, 15), dtype=np.uint8)
    labels[1:4, 1:4] = 1
    labels[6:9, 2:5] = 1
    labels[2:5, 8:12] = 2
    labels[10, 14] = 2
    patches = label_patches(labels)
    rows, cols = np.nonzero(labels)
    order = rng.permutation(rows.size)
    got = sampling.patches_at(labels, rows[order], cols[order])
    expected = patches[rows[order], cols[order]]
    assert len(set(zip(expected.tolist(), got.tolist(), strict=True))) == np.unique(expected).size == 4
    with pytest.raises(ValueError, match="not labelled"):
        sampling.patches_at(labels, np.array([0]), np.array([0]))
