"""The scene as the network sees it: padded input tensors, class-index maps and the unlabelled pool.

Why a module of its own: training (core/training/classifier.py) and prediction both turn a normalised (B, H, W)
cube and (H, W) label rasters into the padded tensors RSSGL takes (zero padding at the bottom and
right to multiples of PAD_MULTIPLE, as the authors pad), and the spectral model's self-training draws
its unlabelled spectra from the same padded input.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..network.model import PAD_MULTIPLE
from ..spectral.spectral_model import UNLABELLED_CAP
from .tiling import round_up

__all__ = ["pad_hw", "pixel_spectra", "sample_spectra", "unlabelled_mask", "unlabelled_spectra", "padded_input", "class_index", "index_map"]


def pad_hw(height: int, width: int) -> tuple[int, int]:
    """(H, W) rounded up to multiples of PAD_MULTIPLE, the padded grid of the whole-scene input."""
    return round_up(height, PAD_MULTIPLE), round_up(width, PAD_MULTIPLE)


def pixel_spectra(x: Tensor, rows: np.ndarray, cols: np.ndarray) -> Tensor:
    """Normalised spectra (n, B) of the pixels (``rows``, ``cols``) of the padded input ``x`` (1, B, hp, wp)."""
    flat = torch.as_tensor(rows * x.shape[-1] + cols, device=x.device)
    return x[0].reshape(x.shape[1], -1).index_select(1, flat).t()


def unlabelled_mask(valid: np.ndarray, labelled: tuple[np.ndarray | None, ...]) -> np.ndarray:
    """(H, W) bool: the valid pixels that no label raster of ``labelled`` (None entries skipped) labels."""
    free = np.asarray(valid, dtype=bool).copy()
    for labels in labelled:
        if labels is not None:
            free &= labels == 0
    return free


def unlabelled_spectra(x: Tensor, valid: np.ndarray, labelled: tuple[np.ndarray | None, ...], seed: int) -> Tensor:
    """Normalised spectra (m, B) of up to UNLABELLED_CAP valid pixels without a label, drawn at random from the
    padded input ``x`` (1, B, hp, wp): the pool the spectral model self-trains from (core/spectral/spectral_model.py)."""
    free = unlabelled_mask(valid, labelled)
    idx = np.flatnonzero(free.ravel())
    if idx.size > UNLABELLED_CAP:
        idx = np.sort(np.random.default_rng(seed).choice(idx, UNLABELLED_CAP, replace=False))
    rows, cols = np.divmod(idx, free.shape[1])
    return pixel_spectra(x, rows, cols)


def sample_spectra(x: Tensor, valid: np.ndarray, pixels: tuple[np.ndarray, np.ndarray, np.ndarray],
                   labelled: tuple[np.ndarray | None, ...], classes: np.ndarray, seed: int
                   ) -> tuple[Tensor, np.ndarray, Tensor]:
    """What the spectral model is fitted on, from the padded input ``x``: the training pixels' spectra (``pixels``:
    their rows, columns and class values, row-major), their class indices in ``classes``, and the unlabelled
    spectra (``unlabelled_spectra``: valid pixels that no raster of ``labelled`` labels)."""
    rows, cols, values = pixels
    return pixel_spectra(x, rows, cols), np.searchsorted(classes, values), unlabelled_spectra(x, valid, labelled, seed)


def padded_input(cube_norm: np.ndarray, device: torch.device) -> Tensor:
    """(1, B, H', W') tensor, zero-padded at the bottom/right to multiples of PAD_MULTIPLE."""
    b, h, w = cube_norm.shape
    hp, wp = pad_hw(h, w)
    x = torch.zeros((1, b, hp, wp), dtype=torch.float32)
    x[0, :, :h, :w] = torch.from_numpy(np.ascontiguousarray(cube_norm))
    return x.to(device)


def class_index(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The index of each label value in ``classes`` (sorted), -1 where unlabelled (0) or not one of them."""
    pos = np.clip(np.searchsorted(classes, labels), 0, len(classes) - 1)
    return np.where((labels > 0) & (classes[pos] == labels), pos, -1)


def index_map(labels: np.ndarray | None, classes: np.ndarray, shape: tuple[int, int], device) -> Tensor:
    """(H', W') long tensor of class indices, -1 where unlabelled, padding included."""
    out = torch.full(shape, -1, dtype=torch.long)
    if labels is not None:
        h, w = labels.shape
        out[:h, :w] = torch.from_numpy(class_index(labels, classes).astype(np.int64))
    return out.to(device)
