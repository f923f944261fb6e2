"""Property-based tests of the sampling protocol (core/data/sampling.py).

The paper's split and our validation split decide which pixels the network may see, so their
invariants are checked on random label maps (random shapes, sparse class values, unlabelled
pixels): counts follow the documented formula, train/validation/test never overlap and together
cover exactly the labelled pixels, and everything is a pure function of the seed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rssgl_qgis.core.data.sampling import HBMinibatchSampler, class_counts, percent_split, validation_split

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def label_maps(draw, max_side: int = 24) -> np.ndarray:
    """(H, W) integer label maps with 0 = unlabelled and a sparse set of class values (like Salinas-A)."""
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    values = draw(st.lists(st.integers(1, 250), min_size=1, max_size=6, unique=True))
    seed = draw(st.integers(0, 2**31 - 1))
    unlabelled_share = draw(st.floats(0.0, 0.9))
    rng = np.random.default_rng(seed)
    labels = rng.choice(np.asarray(values, dtype=np.int64), size=(h, w))
    labels[rng.random((h, w)) < unlabelled_share] = 0
    dtype = draw(st.sampled_from([np.uint8, np.int16, np.int32, np.int64]))
    return labels.astype(dtype)


def _per_class(labels: np.ndarray) -> dict[int, int]:
    values, counts = np.unique(labels[labels != 0], return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


@FAST
@given(labels=label_maps())
def test_class_counts_match_a_naive_count(labels):
    assert class_counts(labels) == _per_class(labels)


@FAST
@given(
    labels=label_maps(),
    percent=st.floats(0.5, 100.0),
    min_per_class=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
)
def test_percent_split_partitions_labelled_pixels_with_documented_counts(labels, percent, min_per_class, seed):
    train, test = percent_split(labels, percent, min_per_class=min_per_class, seed=seed)
    assert train.shape == labels.shape and test.shape == labels.shape
    # No pixel in both sets; together exactly the labelled pixels, with their original values.
    assert not np.any((train != 0) & (test != 0))
    np.testing.assert_array_equal(np.where(train != 0, train, test), labels)
    train_counts = _per_class(train)
    for value, count in _per_class(labels).items():
        expected = min(count, max(min_per_class, math.ceil(percent / 100.0 * count)))
        assert train_counts.get(value, 0) == expected, (value, count, expected)


@FAST
@given(labels=label_maps(), percent=st.floats(0.5, 60.0), seed=st.integers(0, 2**32 - 1))
def test_percent_split_is_a_function_of_the_seed(labels, percent, seed):
    first = percent_split(labels, percent, seed=seed)
    second = percent_split(labels.copy(), percent, seed=seed)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


@FAST
@given(
    labels=label_maps(),
    share=st.floats(0.0, 0.95),
    seed=st.integers(0, 2**32 - 1),
    keep=st.integers(1, 4),
)
def test_validation_split_carves_only_from_training_pixels(labels, share, seed, keep):
    train, val = validation_split(labels, share=share, seed=seed, min_train_per_class=keep)
    assert not np.any((train != 0) & (val != 0))
    np.testing.assert_array_equal(np.where(train != 0, train, val), labels)
    train_counts, val_counts = _per_class(train), _per_class(val)
    for value, count in _per_class(labels).items():
        # Every class keeps training pixels: at least `keep`, or all of them when it has fewer.
        assert train_counts.get(value, 0) >= min(count, keep)
        n_val = val_counts.get(value, 0)
        if share == 0.0 or count < 2:
            assert n_val == 0
        else:
            assert n_val == max(0, min(max(1, round(share * count)), count - keep))
    again = validation_split(labels, share=share, seed=seed, min_train_per_class=keep)
    np.testing.assert_array_equal(again[0], train)
    np.testing.assert_array_equal(again[1], val)


@FAST
@given(labels=label_maps(max_side=20), per_class=st.integers(1, 12), seed=st.integers(0, 2**31 - 1))
def test_hb_minibatch_draws_up_to_n_training_pixels_per_class(labels, per_class, seed):
    values = np.unique(labels[labels != 0])
    if values.size == 0:
        return  # the sampler's refusal of empty training sets is tested below
    index = np.full(labels.shape, -1, dtype=np.int64)
    index[labels != 0] = np.searchsorted(values, labels[labels != 0])
    index_t = torch.from_numpy(index)

    def draws(n: int) -> list[np.ndarray]:
        sampler = HBMinibatchSampler(index_t, per_class=per_class, generator=torch.Generator().manual_seed(seed))
        return [sampler.draw().numpy() for _ in range(n)]

    masks = draws(3)
    for mask in masks:
        assert set(np.unique(mask)).issubset({0.0, 1.0})
        assert not np.any(mask[index < 0]), "a pixel that is not a training pixel was drawn"
        for k in range(values.size):
            available = int((index == k).sum())
            assert int(mask[index == k].sum()) == min(per_class, available)
    for a, b in zip(masks, draws(3), strict=True):  # same generator seed, same draws
        np.testing.assert_array_equal(a, b)


def test_hb_minibatch_refuses_an_empty_training_set():
    empty = torch.full((4, 5), -1, dtype=torch.long)
    with pytest.raises(ValueError, match="There are no training pixels; add training samples before training"):
        HBMinibatchSampler(empty)
