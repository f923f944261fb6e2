"""The spectral model's sample weights: every polygon of a class weighs alike in the fit (spectral_model.sample_weights).

Why it matters: a rasterised polygon's pixels are near copies, so with pixel weights one large polygon outvotes the
class's small ones. These tests pin the weights' arithmetic, the weighted solve (a pixel of weight 2 is that pixel
twice) and that fit_spectral hands the weights to both fits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rssgl_qgis.core.spectral import spectral_model as spectral


def test_sample_weights_pixels_mode_is_none():
    y = np.array([0, 0, 1, 1])
    assert spectral.sample_weights(y, np.array([0, 0, 1, 2]), "pixels") is None
    assert spectral.sample_weights(y, None, "samples") is None


def test_each_sample_weighs_alike_within_its_class():
    # class 0: a polygon of 8 pixels and one of 2; class 1: one polygon of 5
    y = np.array([0] * 10 + [1] * 5)
    groups = np.array([0] * 8 + [1] * 2 + [2] * 5)
    w = spectral.sample_weights(y, groups, "samples")
    assert w.mean() == pytest.approx(1.0)
    assert w[:8].sum() == pytest.approx(w[8:10].sum())  # the two polygons of class 0
    assert w[:10].sum() / w[10:].sum() == pytest.approx(10 / 5)  # classes keep their pixel counts' weight
    assert np.allclose(w[:8], w[0]) and np.allclose(w[8:10], w[8])


def test_samples_and_classes_weigh_alike():
    y = np.array([0] * 10 + [1] * 5)
    groups = np.array([0] * 8 + [1] * 2 + [2] * 5)
    w = spectral.sample_weights(y, groups, "samples+classes")
    assert w[:10].sum() == pytest.approx(w[10:].sum())
    assert w[:8].sum() == pytest.approx(w[8:10].sum())
    assert w.mean() == pytest.approx(1.0)


def test_random_pixels_keep_equal_weights():
    y = np.repeat(np.arange(3), 5)
    w = spectral.sample_weights(y, np.arange(y.size), "samples")
    assert np.allclose(w, 1.0)


def test_weight_two_is_the_pixel_twice():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 4))
    y = np.array([0, 1, 2] * 4)
    weights = np.ones(12)
    weights[[0, 4]] = 2.0
    targets = 2.0 * torch.nn.functional.one_hot(torch.as_tensor(y), 3).double() - 1.0
    weighted = spectral.final_model(torch.as_tensor(x), y, targets, 0.1, 0.5, 1.0, 0.0, 2,
                                    np.random.default_rng(0), weights)
    dup = np.concatenate([x, x[[0, 4]]])
    y_dup = np.concatenate([y, y[[0, 4]]])
    t_dup = 2.0 * torch.nn.functional.one_hot(torch.as_tensor(y_dup), 3).double() - 1.0
    twice = spectral.final_model(torch.as_tensor(dup), y_dup, t_dup, 0.1, 0.5, 1.0, 0.0, 2, np.random.default_rng(0))
    probe = torch.as_tensor(rng.normal(size=(30, 4)), dtype=torch.float32)
    assert torch.allclose(weighted.scores(probe), twice.scores(probe), atol=1e-4)


def test_unit_weights_fit_as_no_weights():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 6)) + np.repeat(np.eye(6)[:4] * 2, 10, 0)
    y = np.repeat(np.arange(4), 10)
    plain = spectral._fit(x, y, None, 3, 0, "cpu")
    ones = spectral._fit(x, y, None, 3, 0, "cpu", weights=np.ones(40))
    assert (plain.gamma, plain.ridge) == (ones.gamma, ones.ridge)
    assert torch.allclose(plain.alpha, ones.alpha, atol=1e-5)


def test_fit_spectral_hands_the_weights_to_both_fits(monkeypatch):
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(3), 12)
    x = rng.normal(size=(36, 5)) + np.eye(5)[y] * 3
    groups = np.concatenate([np.repeat([0, 1], [10, 2]), np.repeat([2, 3], [10, 2]), np.repeat([4, 5], [10, 2])])
    seen = []
    real_fit = spectral._fit

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights"))
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(spectral, "_fit", spy)
    monkeypatch.setattr(spectral, "SAMPLE_WEIGHTS", "samples")
    spectral.fit_spectral(x, y, groups=groups, seed=0, unlabelled=rng.normal(size=(50, 5)) + 1.0)
    assert len(seen) == 2
    assert seen[0] is not None and seen[0].size == 36
    assert np.allclose(seen[0][:10].sum(), seen[0][10:12].sum())  # the small polygon weighs as the large one
    assert seen[1].size > 36 and np.allclose(seen[1][36:], 1.0)  # pseudo-labels weigh as one pixel each


def test_the_default_weighs_polygons_only():
    """"polygons": classes alike (and, since the fifteenth round, pixels alike within a class) where the search holds
    out whole samples of more than one pixel; random pixels (samples of one pixel, whose counts are the classes'
    shares) and large sample sets keep pixel weights."""
    y = np.array([0] * 10 + [1] * 5 + [2] * 4)
    polygons = np.array([0] * 8 + [1] * 2 + [2] * 5 + [3] * 2 + [4] * 2)
    w = spectral.sample_weights(y, polygons, "polygons")
    assert w is not None
    assert spectral.POLYGON_WEIGHTS == "classes"
    assert np.allclose(w, spectral.sample_weights(y, polygons, "classes"))
    assert w[:10].sum() == pytest.approx(w[10:15].sum()) == pytest.approx(w[15:].sum())
    assert np.allclose(w[:10], w[0])  # the class's 8 px and 2 px polygons: pixels alike
    assert spectral.sample_weights(y, np.arange(y.size), "polygons") is None  # points
    big = np.repeat(np.arange(3), spectral.SEARCH_CAP)  # more than the search takes: folds of pixels, no weights
    assert spectral.sample_weights(big, np.repeat(np.arange(6), spectral.SEARCH_CAP // 2), "polygons") is None
    assert spectral.SAMPLE_WEIGHTS == "polygons"


def test_drawn_weighs_polygons_of_any_total_size():
    """"drawn" (a variant measured in docs/RESULTS.md, fourteenth round, not the default): classes and samples alike
    wherever the median class has a few samples of two or more pixels on average, however many pixels they hold."""
    big = np.repeat(np.arange(3), spectral.SEARCH_CAP)
    groups = np.repeat(np.arange(6), spectral.SEARCH_CAP // 2)
    assert spectral.sample_weights(big, groups, "polygons") is None
    assert np.allclose(spectral.sample_weights(big, groups, "drawn"),
                       spectral.sample_weights(big, groups, spectral.POLYGON_WEIGHTS))
    y = np.repeat(np.arange(3), 5)
    assert spectral.sample_weights(y, np.arange(y.size), "drawn") is None  # points: one pixel a sample
    many = np.repeat(np.arange(2), 40)
    assert spectral.sample_weights(many, np.arange(many.size) // 2, "drawn") is None  # 20 samples a class: a raster


def test_class_weights_keep_pixels_alike_within_a_class(monkeypatch):
    """POLYGON_WEIGHTS "classes" (the default since docs/RESULTS.md's fifteenth round): where the rule weighs, every
    class weighs alike and every pixel of a class alike, whatever polygon it lies in; "samples+classes" (the rule
    before) makes every polygon of a class alike too."""
    y = np.array([0] * 10 + [1] * 5 + [2] * 4)
    polygons = np.array([0] * 8 + [1] * 2 + [2] * 5 + [3] * 2 + [4] * 2)
    w = spectral.sample_weights(y, polygons, "classes")
    assert w.mean() == pytest.approx(1.0)
    assert w[:10].sum() == pytest.approx(w[10:15].sum()) == pytest.approx(w[15:].sum())
    assert np.allclose(w[:10], w[0])  # the 8 px and the 2 px polygon's pixels alike
    assert np.allclose(spectral.sample_weights(y, polygons, "polygons"), w)
    assert spectral.sample_weights(y, np.arange(y.size), "polygons") is None  # points still keep pixel weights
    monkeypatch.setattr(spectral, "POLYGON_WEIGHTS", "samples+classes")
    before = spectral.sample_weights(y, polygons, "polygons")
    assert before[:8].sum() == pytest.approx(before[8:10].sum())  # each polygon half its class
    assert not np.allclose(before, w)
