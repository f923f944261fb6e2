"""Sampling: the authors' percent split (counts from the real ground truths), validation split, H-B sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rssgl_qgis.core.data.sampling import (
    HBMinibatchSampler,
    class_counts,
    group_folds,
    percent_split,
    validation_split,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")

# REFERENCE.md: training pixel counts of the authors' protocol (split seed 2333).
EXPECTED = {
    ("indian_pines", 5): [5, 72, 42, 12, 25, 37, 5, 24, 5, 49, 123, 30, 11, 64, 20, 5],
    ("salinas", 1): [21, 38, 20, 14, 27, 40, 36, 113, 63, 33, 11, 20, 10, 11, 73, 19],
    ("pavia_university", 1): [67, 187, 21, 31, 14, 51, 14, 37, 10],
    ("salinas_a", 1): [5, 14, 7, 16, 7, 8],  # 57 pixels, as in the anchor
}


@pytest.mark.parametrize(("scene", "percent"), list(EXPECTED))
def test_percent_split_reproduces_the_reference_training_counts(scene, percent):
    from rssgl_qgis.core.data.datasets import load_ground_truth

    try:
        gt = load_ground_truth(scene, DATA)
    except FileNotFoundError:
        pytest.skip(f"ground truth of {scene} not available under {DATA}")
    train, test = percent_split(gt, percent, seed=2333)
    assert list(class_counts(train).values()) == EXPECTED[(scene, percent)]
    assert not ((train > 0) & (test > 0)).any()
    np.testing.assert_array_equal(np.where(train > 0, train, test), gt)  # together they are the ground truth


def test_percent_split_is_the_authors_shuffle():
    """One RandomState(seed) shuffles each class's flat indices in class order; first n are training."""
    labels = np.array([[1, 1, 2, 2, 2], [1, 2, 2, 2, 2], [3, 3, 3, 3, 3]])
    train, _ = percent_split(labels, 50, min_per_class=1, seed=7)
    rs = np.random.RandomState(7)
    flat = labels.ravel()
    expected = np.zeros_like(flat)
    for c in (1, 2, 3):
        inds = np.flatnonzero(flat == c)
        rs.shuffle(inds)
        n = int(np.ceil(0.5 * len(inds)))
        expected[inds[:n]] = c
    np.testing.assert_array_equal(train.ravel(), expected)


def test_percent_split_minimum_and_sparse_class_values():
    labels = np.zeros((10, 10), dtype=np.uint8)
    labels[:3] = 10
    labels[3:] = 14
    labels[9, 9] = 1  # a class with one pixel: all of it is training
    train, test = percent_split(labels, 1)
    counts = class_counts(train)
    assert counts == {1: 1, 10: 5, 14: 5}
    assert class_counts(test) == {10: 25, 14: 64}
    with pytest.raises(ValueError, match="percentage"):
        percent_split(labels, 0)
    with pytest.raises(ValueError, match="2-D"):
        percent_split(labels[None], 1)


def test_validation_split_takes_only_training_pixels_and_keeps_each_class():
    train = np.zeros((8, 8), dtype=np.int64)
    train[0, :5] = 1  # 5 pixels -> 1 validation
    train[1, :] = 2  # 8 -> 2
    train[2, :1] = 3  # 1 -> none (a class keeps its only pixel)
    train[3, :2] = 4  # 2 -> 1
    tr, val = validation_split(train, share=0.2, seed=0)
    assert class_counts(val) == {1: 1, 2: 2, 4: 1}
    assert class_counts(tr) == {1: 4, 2: 6, 3: 1, 4: 1}
    assert not ((tr > 0) & (val > 0)).any()
    np.testing.assert_array_equal(np.where(tr > 0, tr, val), train)
    tr0, val0 = validation_split(train, share=0.0)
    assert not val0.any() and np.array_equal(tr0, train)


def test_hb_sampler_draws_up_to_n_training_pixels_per_class_on_device():
    labels = torch.full((12, 12), -1, dtype=torch.long)
    labels[0, :] = 0  # 12 pixels of class 0
    labels[1, :3] = 1  # 3 pixels of class 1
    labels[2:6, :] = 2  # 48 pixels of class 2
    gen = torch.Generator().manual_seed(0)
    sampler = HBMinibatchSampler(labels, per_class=10, generator=gen)
    seen = torch.zeros(12, 12)
    for _ in range(30):
        mask = sampler.draw()
        assert mask.shape == (12, 12) and mask.dtype == torch.float32
        assert (mask[labels < 0] == 0).all()  # only training pixels
        assert [int(mask[labels == c].sum()) for c in range(3)] == [10, 3, 10]
        seen += mask
    assert (seen[labels == 2] > 0).all()  # random draws cover every pixel of a large class


def test_hb_sampler_is_deterministic_for_a_seeded_generator():
    labels = torch.randint(-1, 3, (16, 16))
    a = HBMinibatchSampler(labels, 4, torch.Generator().manual_seed(5))
    b = HBMinibatchSampler(labels, 4, torch.Generator().manual_seed(5))
    first = [a.draw() for _ in range(3)]
    assert all(torch.equal(x, b.draw()) for x in first)
    assert not torch.equal(first[0], first[1])
    with pytest.raises(ValueError, match="no training pixels"):
        HBMinibatchSampler(torch.full((4, 4), -1), 2)


# ------------------------------------------------------------------------------------ group folds
def _polygon_scene():
    """Class 1: six polygons of 4-16 pixels; class 2: three; class 3: one polygon only."""
    labels = np.zeros((20, 40), np.int64)
    groups = np.zeros((20, 40), np.int64)
    gid = 0
    for value, sizes, row in ((1, (4, 6, 8, 10, 12, 16), 0), (2, (5, 9, 9), 6), (3, (12,), 12)):
        col = 0
        for size in sizes:
            gid += 1
            labels[row:row + 2, col:col + size // 2] = value
            groups[row:row + 2, col:col + size // 2] = gid
            col += size // 2 + 1
    return labels, groups


def test_group_folds_keep_polygons_whole_and_balance_classes():
    labels, groups = _polygon_scene()
    folds = group_folds(labels, groups, 3, seed=4)
    assert folds.dtype == np.int32 and (folds[labels == 0] == 0).all()
    for gid in np.unique(groups[groups > 0]):  # a polygon is never split across folds
        assert np.unique(folds[groups == gid]).size == 1
    # class 1: 56 pixels in 6 polygons, dealt largest first to the lightest fold: 18-20 pixels per fold
    per_fold = [int(((labels == 1) & (folds == f)).sum()) for f in (1, 2, 3)]
    assert sorted(per_fold) == [18, 18, 20], per_fold
    assert sorted(int(((labels == 2) & (folds == f)).sum()) for f in (1, 2, 3)) == [4, 8, 8]
    assert (folds[labels == 3] == 0).all()  # one polygon only: always trained, never tested
    assert np.array_equal(folds, group_folds(labels, groups, 3, seed=4))  # reproducible


def test_group_folds_reject_bad_arguments():
    labels, groups = _polygon_scene()
    with pytest.raises(ValueError, match="at least 2 folds"):
        group_folds(labels, groups, 1)
    with pytest.raises(ValueError, match="must match"):
        group_folds(labels, groups[:, :5], 3)
