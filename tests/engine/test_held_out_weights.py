"""The cross-validation's evidence weighs every held-out class, and within a class every held-out sample (polygon),
the same (core/training/cross_validation.held_out_weights, issue 28): one large polygon cannot decide the choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rssgl_qgis.core.training import cross_validation


def test_every_class_and_every_sample_of_a_class_weighs_the_same():
    reference = np.array([1] * 839 + [1, 2, 2, 3])
    sample = np.array([7] * 839 + [8, 9, 10, 11])
    w = cross_validation.held_out_weights(reference, sample)
    assert w.sum() == pytest.approx(1.0)
    for value in (1, 2, 3):
        assert w[reference == value].sum() == pytest.approx(1 / 3)
    assert w[sample == 7].sum() == pytest.approx(w[sample == 8].sum())  # 839 px weigh as much as 1 px of the class
    assert w[sample == 9].sum() == pytest.approx(1 / 6)


def test_random_pixels_balanced_per_class_keep_the_pixel_weights():
    """One pixel per sample and as many per class: the rule scores them exactly as before."""
    reference = np.repeat([1, 2, 3], 5)
    w = cross_validation.held_out_weights(reference, np.arange(15))
    assert np.allclose(w, 1 / 15)


def _one_large_polygon_case():
    """Six classes, two held-out samples each; class 4 has one polygon of 839 px where the pool with RSSGL is much
    better, every other sample (1-14 px) is slightly worse with it: EnMAP, 2 patches per class, seed 7 of the
    ninth round, where the choice of RSSGL alone cost 17.7 points on the test pixels."""
    sizes = [[2, 1], [1, 2], [1, 4], [1, 839], [1, 1], [14, 14]]
    reference, sample = [], []
    for c, pair in enumerate(sizes, start=1):
        for j, n in enumerate(pair):
            reference += [c] * n
            sample += [10 * c + j] * n
    reference, sample = np.asarray(reference), np.asarray(sample)
    k, n = 6, reference.size
    index = reference - 1
    ps = np.full((k, n), 0.1)
    ps[index, np.arange(n)] = 0.5
    pr = ps.copy()
    large = sample == 41
    pr[:, large] = 0.02
    pr[index[large], np.flatnonzero(large)] = 0.9
    pr[:, ~large] = 0.12
    pr[index[~large], np.flatnonzero(~large)] = 0.4
    wrong = sample == 51  # both models wrong on one pixel: not every candidate right everywhere (saturated)
    for p in (ps, pr):
        p[:, wrong] = 0.1
        p[0, wrong] = 0.5
    return torch.from_numpy(pr / pr.sum(0)), torch.from_numpy(ps / ps.sum(0)), reference, sample


def test_one_large_polygon_cannot_win_the_choice(monkeypatch):
    pr, ps, reference, sample = _one_large_polygon_case()
    present = [1, 2, 3, 4, 5, 6]
    cands = cross_validation.score_candidates(pr, ps, reference, present, sample, 1.0, 1.0)
    assert cross_validation._choose(cands) == 0.0  # the spectral model alone: no sample-level evidence
    monkeypatch.setattr(cross_validation, "HELD_OUT_WEIGHTS", "pixels")  # the rule before: every pixel the same
    before = cross_validation.score_candidates(pr, ps, reference, present, sample, 1.0, 1.0)
    assert max(c.gain_se for c in before if c.weight > 0) > 5.0
    assert cross_validation._choose(before) > 0.0


def test_weighted_standard_error_counts_a_samples_pixels_together():
    rng = np.random.default_rng(3)
    d = rng.normal(0.1, 0.5, 20)
    sample = np.repeat(np.arange(20), 10)
    weights = cross_validation.held_out_weights(np.ones(200, dtype=np.int64), sample)
    once = cross_validation._gain_in_se(torch.zeros(20, dtype=torch.float64), torch.as_tensor(d), np.arange(20))
    tenfold = cross_validation._gain_in_se(torch.zeros(200, dtype=torch.float64), torch.as_tensor(np.repeat(d, 10)),
                                           sample, weights)
    assert tenfold == pytest.approx(once)
