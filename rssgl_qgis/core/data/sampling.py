"""Training/test/validation splits and the H-B minibatch sampler.

``percent_split`` reproduces the authors' protocol bit for bit: per class (in ascending class
order) n = max(min_per_class, ceil(p * count)) pixels, chosen by shuffling the class's flat pixel
indices with ONE numpy RandomState(seed) shared by all classes; the first n are training pixels,
the rest test pixels.

``validation_split`` carves validation pixels out of the TRAINING pixels only, so honest model
selection never looks at test pixels.

``group_folds`` deals whole sample polygons (groups) into cross-validation folds, class by class, so
that an accuracy estimate is made on polygons the model never saw (pixels of one polygon are
neighbours and near-copies of each other: a pixel-level split overstates map accuracy).

``labelled_pixels`` finds the few labelled pixels of a large, mostly unlabelled label array (a 20000 x 20000
raster's samples) a word of 8 bytes at a time: the same rows and columns as ``np.nonzero``, several times faster.

``HBMinibatchSampler`` draws "up to N random training pixels per class" masks on the device with
fixed shapes and no host synchronisation (random keys sorted within class segments).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["percent_split", "validation_split", "group_folds", "class_counts", "HBMinibatchSampler", "label_patches",
           "count_split", "labelled_pixels", "pixel_patches", "patches_at"]


def _check_labels(labels: np.ndarray, name: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"Expected {name} as a 2-D (height, width) array, got shape {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ValueError(f"{name} must hold integer class values (0 = unlabelled); found non-integer values.")
        labels = labels.astype(np.int64)
    if np.issubdtype(labels.dtype, np.signedinteger) and labels.size and labels.min() < 0:
        raise ValueError(f"{name} must not hold negative class values (0 = unlabelled); found {int(labels.min())}.")
    return labels


def labelled_pixels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the non-zero pixels of a 2-D label array, row-major: ``np.nonzero(labels)``.

    A C-contiguous integer array is scanned as 8-byte words first (``np.flatnonzero`` over an eighth as many
    items for uint8 labels), and only the few words holding a labelled pixel are looked at pixel by pixel: on
    a 20000 x 20000 uint8 array with a few thousand samples this takes a fraction of ``np.nonzero``'s time."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"Expected a 2-D (height, width) label array, got shape {labels.shape}.")
    per_word = 8 // labels.dtype.itemsize if np.issubdtype(labels.dtype, np.integer) else 0
    if per_word < 2 or not labels.flags.c_contiguous or labels.size < 64:
        return np.nonzero(labels)
    flat = labels.reshape(-1)
    whole = flat.size - flat.size % per_word
    words = np.flatnonzero(flat[:whole].view(np.uint64))
    candidates = (words[:, None] * per_word + np.arange(per_word)).reshape(-1)
    index = np.concatenate([candidates, np.arange(whole, flat.size)])
    index = index[flat[index] != 0]
    return np.divmod(index, labels.shape[1])


def class_counts(labels: np.ndarray) -> dict[int, int]:
    """Pixel count of each non-zero class value, in ascending class order."""
    values, counts = np.unique(_check_labels(labels), return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True) if v != 0}


def percent_split(
    labels: np.ndarray, percent: float, min_per_class: int = 5, seed: int = 2333
) -> tuple[np.ndarray, np.ndarray]:
    """Split labelled pixels into (train_labels, test_labels), both (H, W) with the original values.

    ``percent`` is in percent (1 = 1 %). A class with <= n pixels puts them all into training
    and none into test.
    """
    labels = _check_labels(labels)
    if not 0.0 < percent <= 100.0:
        raise ValueError(f"The training percentage must be in (0, 100], got {percent}.")
    if min_per_class < 1:
        raise ValueError(f"min_per_class must be >= 1, got {min_per_class}.")
    rs = np.random.RandomState(seed)
    flat = labels.ravel()
    train = np.zeros_like(flat)
    test = np.zeros_like(flat)
    for value in np.unique(flat):
        if value == 0:
            continue
        inds = np.flatnonzero(flat == value)
        rs.shuffle(inds)
        n = max(min_per_class, math.ceil(percent / 100.0 * len(inds)))
        train[inds[:n]] = value
        test[inds[n:]] = value
    return train.reshape(labels.shape), test.reshape(labels.shape)


def count_split(labels: np.ndarray, count: int, seed: int = 2333) -> tuple[np.ndarray, np.ndarray]:
    """(train, test): ``count`` random pixels of each class for training (all of a smaller class), the rest
    for testing: the fixed-count protocol of a user who labels a few pixels per class."""
    labels = _check_labels(labels)
    if count < 1:
        raise ValueError(f"The pixel count per class must be >= 1, got {count}.")
    rs = np.random.RandomState(seed)
    flat = labels.ravel()
    train, test = np.zeros_like(flat), np.zeros_like(flat)
    for value in np.unique(flat[flat > 0]):
        inds = np.flatnonzero(flat == value)
        rs.shuffle(inds)
        train[inds[:count]] = value
        test[inds[count:]] = value
    return train.reshape(labels.shape), test.reshape(labels.shape)


def validation_split(
    train_labels: np.ndarray, share: float = 0.2, seed: int = 0, min_train_per_class: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Move a share of each class's training pixels to a validation set: returns (train, val).

    Per class with n training pixels: n_val = max(1, round(share * n)), capped so that at least
    ``min_train_per_class`` pixels stay in training; a class with fewer than 2 pixels (or not
    enough to keep ``min_train_per_class``) gets no validation pixel. So every class keeps
    training pixels and small classes are still represented in validation whenever possible.
    """
    train_labels = _check_labels(train_labels, "train_labels")
    if not 0.0 <= share < 1.0:
        raise ValueError(f"The validation share must be in [0, 1), got {share}.")
    rs = np.random.RandomState(seed)
    flat = train_labels.ravel()
    train = flat.copy()
    val = np.zeros_like(flat)
    if share == 0.0:
        return train.reshape(train_labels.shape), val.reshape(train_labels.shape)
    # the labelled pixels' flat indices, ascending: per class the same as np.flatnonzero(flat == value), without a
    # sort and a scan of the whole raster per class (19 s on a 20000 x 20000 raster with 60 samples)
    labelled = np.ravel_multi_index(labelled_pixels(train_labels), train_labels.shape)
    values = flat[labelled]
    for value in np.unique(values):
        inds = labelled[values == value]
        if len(inds) < 2:
            continue
        n_val = min(max(1, round(share * len(inds))), len(inds) - min_train_per_class)
        if n_val <= 0:
            continue
        rs.shuffle(inds)
        val[inds[:n_val]] = value
        train[inds[:n_val]] = 0
    return train.reshape(train_labels.shape), val.reshape(train_labels.shape)


def group_folds(labels: np.ndarray, groups: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """Assign each labelled pixel a cross-validation fold 1..``folds`` by its group (polygon).

    ``groups`` (H, W) holds a group id per pixel (a sample polygon's number; 0 or less = no group).
    Per class, its groups are shuffled (numpy RandomState(seed)), then dealt largest first to the
    fold holding the fewest pixels of that class, so folds get similar amounts of every class and a
    polygon is never split. A class with fewer than 2 groups cannot be tested on unseen polygons:
    its pixels get fold 0 (always trained on, never tested), as do labelled pixels without a group.
    Returns the (H, W) int32 fold map (0 where unlabelled or never tested).
    """
    labels = _check_labels(labels, "labels")
    groups = np.asarray(groups)
    if groups.shape != labels.shape:
        raise ValueError(f"groups has shape {groups.shape} but labels {labels.shape}; they must match.")
    if folds < 2:
        raise ValueError(f"Cross-validation needs at least 2 folds, got {folds}.")
    rs = np.random.RandomState(seed)
    out = np.zeros(labels.shape, dtype=np.int32)
    flat_labels, flat_groups, flat_out = labels.ravel(), groups.ravel(), out.ravel()
    for value in np.unique(flat_labels[flat_labels > 0]):
        member = np.flatnonzero((flat_labels == value) & (flat_groups > 0))
        ids, inverse, sizes = np.unique(flat_groups[member], return_inverse=True, return_counts=True)
        if ids.size < 2:
            continue
        order = rs.permutation(ids.size)
        order = order[np.argsort(-sizes[order], kind="stable")]  # largest first, ties in shuffled order
        load = np.zeros(folds, dtype=np.int64)
        fold_of = np.zeros(ids.size, dtype=np.int32)
        for g in order:  # one step per polygon, not per pixel
            f = int(np.argmin(load))
            fold_of[g] = f + 1
            load[f] += sizes[g]
        flat_out[member] = fold_of[inverse]
    return out


class HBMinibatchSampler:
    """Draw masks of up to ``per_class`` random training pixels per class, entirely on the device.

    ``train_index_labels``: (H, W) LongTensor of class indices 0..K-1, -1 where not a training
    pixel. Each ``draw()`` gives a float (H, W) mask. Method: the training pixels are stored once
    sorted by class; a draw adds a uniform key in [0, 1) to the class index, sorts (classes stay in
    contiguous segments, randomly ordered within), and keeps the first ``per_class`` of each
    segment. Shapes never depend on the draw, so no host sync and CUDA-graph friendly.
    """

    def __init__(self, train_index_labels: Tensor, per_class: int = 10, generator: torch.Generator | None = None):
        if train_index_labels.ndim != 2:
            raise ValueError(f"Expected (H, W) training labels, got shape {tuple(train_index_labels.shape)}.")
        if per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {per_class}.")
        self.shape = tuple(train_index_labels.shape)
        self.device = train_index_labels.device
        self.per_class = int(per_class)
        self.generator = generator
        flat = train_index_labels.reshape(-1)
        pix = torch.nonzero(flat >= 0).squeeze(1)  # one-off host sync at construction
        if pix.numel() == 0:
            raise ValueError("There are no training pixels; add training samples before training.")
        cls = flat[pix]
        order = torch.argsort(cls, stable=True)
        self.pixels = pix[order]
        self.classes = cls[order]
        counts = torch.bincount(self.classes)
        starts = torch.cumsum(counts, 0) - counts
        self.rank_offset = starts[self.classes]  # position of each sorted pixel's class segment start
        self.positions = torch.arange(self.pixels.numel(), device=self.device)
        self.class_keys = self.classes.to(torch.float32)

    def draw(self) -> Tensor:
        """One minibatch mask (H, W) float32: 1 at the drawn pixels."""
        keys = torch.rand(self.pixels.numel(), device=self.device, generator=self.generator)
        order = torch.argsort(self.class_keys + keys * 0.5)  # keys*0.5 < 1: never crosses a class boundary
        keep = (self.positions - self.rank_offset < self.per_class).to(torch.float32)
        mask = torch.zeros(self.shape[0] * self.shape[1], device=self.device)
        mask.scatter_(0, self.pixels[order], keep)
        return mask.view(self.shape)


def label_patches(labels: np.ndarray) -> np.ndarray:
    """Number the connected patches (8-neighbourhood) of equal class in a label raster, 0 where
    unlabelled: a label raster's "samples" for cross-validation. Without scipy: 32 x 32 pixel blocks
    per class (spatial blocks) instead."""
    groups = np.zeros(labels.shape, dtype=np.int32)
    try:
        from scipy import ndimage
    except ImportError:  # pragma: no cover - scipy ships with QGIS on every platform we know
        rows, cols = np.indices(labels.shape)
        block = (rows // 32) * (labels.shape[1] // 32 + 1) + cols // 32
        key = np.where(labels > 0, block.astype(np.int64) * (int(labels.max()) + 1) + labels, 0)
        _, inverse = np.unique(key, return_inverse=True)
        return np.where(labels > 0, inverse.reshape(labels.shape) + 1, 0).astype(np.int32)
    offset = 0
    for value in np.unique(labels[labels > 0]):
        patches, count = ndimage.label(labels == value, structure=np.ones((3, 3), dtype=bool))
        groups[patches > 0] = patches[patches > 0] + offset
        offset += count
    return groups


def pixel_patches(rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The patch of each listed labelled pixel: 8-connected pixels of one class share a number (0, 1, ...), as
    ``label_patches`` numbers them on a whole raster, from the pixel list alone.

    Why: the spectral model's settings search holds out whole samples (core/spectral/spectral_model.py), and a
    large raster's samples are known only as a list of pixels (``labelled_pixels``), never as a whole label
    array; this costs O(n log n) in the labelled pixels, whatever the raster's size."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    values = np.asarray(values)
    n = rows.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    width = int(cols.max()) + 3  # a margin: a neighbour one column off either edge cannot alias another row
    key = (rows + 1) * width + cols + 1
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    heads, tails = [], []
    for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):  # each undirected 8-neighbour pair once
        neighbour = key + dr * width + dc
        pos = np.minimum(np.searchsorted(sorted_key, neighbour), n - 1)
        found = sorted_key[pos] == neighbour
        other = order[pos]
        link = found & (values[other] == values)
        heads.append(np.flatnonzero(link))
        tails.append(other[link])
    head, tail = np.concatenate(heads), np.concatenate(tails)
    graph = coo_matrix((np.ones(head.size, dtype=np.int8), (head, tail)), shape=(n, n))
    _, patch = connected_components(graph, directed=False)
    return patch.astype(np.int64)


def patches_at(labels: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The 8-connected patch (``pixel_patches``) of each labelled pixel at (``rows``, ``cols``), in that order.

    Why: window training lists its pixels tile by tile, not in the label array's order, and the spectral model
    fitted on them needs each pixel's sample (core/training/classifier.py, core/training/stage_one.py)."""
    labels = np.asarray(labels)
    all_rows, all_cols = labelled_pixels(labels)  # row-major: their flat indices are sorted
    patch = pixel_patches(all_rows, all_cols, labels[all_rows, all_cols])
    width = labels.shape[1]
    at = np.searchsorted(all_rows * width + all_cols, np.asarray(rows, dtype=np.int64) * width + np.asarray(cols))
    if at.size and (at.max() >= all_rows.size or (all_rows[at] != rows).any() or (all_cols[at] != cols).any()):
        raise ValueError("patches_at: a listed pixel is not labelled.")
    return patch[at]
