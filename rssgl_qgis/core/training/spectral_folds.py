"""The spectral model alone on a cross-validation fold, without training RSSGL.

Why: the cross-validation (core/training/cross_validation.py) trained RSSGL once per fold, three more RSSGL trainings per
Train RSSGL, most of its time on a CPU (issue 29: 196 s of 270 s of the demo). Where the first fold shows
that no pool with RSSGL beats the spectral model alone, the other folds need only the spectral model's
held-out probabilities, which cost a fraction of an RSSGL training. This fits exactly the spectral model
that ``RssglClassifier.fit`` fits beside RSSGL (same normalisation, training spectra, unlabelled pool and
seed), so the held-out probabilities are those a full fold would give.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.normalization import band_statistics, check_cube, normalize_cube
from ..data.sampling import pixel_patches
from ..network.device import choose_device, set_cpu_threads
from ..prediction.scene_tensors import padded_input, unlabelled_spectra
from ..spectral.spectral_model import fit_spectral
from .params import TrainingParams

__all__ = ["spectral_only_supported", "spectral_probabilities_at"]


def spectral_only_supported(params: TrainingParams | None, cube) -> bool:
    """Whether ``spectral_probabilities_at`` reproduces the fold's spectral model: a whole-scene array input and
    the default model selection (``RssglClassifier.fit`` fits the spectral model on every training pixel only
    then); otherwise the fold is trained in full."""
    p = params or TrainingParams()
    return isinstance(cube, np.ndarray) and p.spectral and p.selection == "fit" and p.training_input != "windows"


def spectral_probabilities_at(params: TrainingParams | None, cube: np.ndarray, valid: np.ndarray | None,
                              train_labels: np.ndarray, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class values, (K, n) spectral-model probabilities at the (H, W) boolean ``pixels`` in row-major order),
    the model fitted on ``train_labels`` as ``RssglClassifier.fit`` fits it."""
    p = params or TrainingParams()
    device = choose_device(p.device)
    if device.type == "cpu":
        set_cpu_threads()
    cube, valid = check_cube(cube, valid)
    labels = np.where(valid, np.asarray(train_labels, dtype=np.int64), 0)
    classes = np.unique(labels[labels > 0])
    mean, std = band_statistics(cube, valid)
    x = padded_input(normalize_cube(cube, mean, std, valid), device)

    def flat_of(rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:  # pixel -> column of the padded grid
        return torch.as_tensor(rows * x.shape[-1] + cols, device=x.device)

    rows, cols = np.nonzero(labels > 0)
    bands = x[0].reshape(x.shape[1], -1)
    spectra = bands.index_select(1, flat_of(rows, cols)).t()
    y = np.searchsorted(classes, labels[rows, cols])
    # "fit" selection: the pixels that decide when RSSGL stops are the training pixels, so the unlabelled pool
    # leaves out the same pixels as in RssglClassifier.fit
    unlabelled = unlabelled_spectra(x, valid, (labels, labels), p.seed)
    model = fit_spectral(spectra, y, groups=pixel_patches(rows, cols, labels[rows, cols]), seed=p.seed,
                         device=spectra.device, unlabelled=unlabelled)
    held_rows, held_cols = np.nonzero(pixels)
    with torch.no_grad():
        proba = model.probabilities(bands.index_select(1, flat_of(held_rows, held_cols)).t()).float()
    return classes, proba.t().cpu().numpy()
