"""Stage one of the map in two stages (issue 29): a classifier of the spectral model only.

Why a module of its own: RSSGL's training takes minutes on a CPU; the normalisation and the per-pixel
spectral model (core/spectral/spectral_model.py, with its self-training on unlabelled pixels) take
seconds, and their map is what the cross-validation falls back to whenever it finds no evidence for
RSSGL (core.training.cross_validation.FALLBACK: RSSGL's weight 0). ``fit_stage_one`` fills an
``RssglClassifier`` with those alone: ``model_`` and ``config_`` are None, the pool gives RSSGL weight 0,
and the model file records ``"model_contents": "spectral model only"`` with no network tensors
(core/training/model_checks.py). Classification then runs the per-pixel path (core/prediction/
tile_predictor.py ``spectral_only``); fine-tuning such a file is refused in words.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data.normalization import band_statistics, normalize_cube
from ..data.sampling import labelled_pixels, patches_at, pixel_patches
from ..errors import Cancelled
from ..network.device import choose_device, describe_device
from ..prediction.scene_tensors import class_index, padded_input, sample_spectra
from ..spectral.pool import PoolSettings
from ..spectral.spectral_model import fit_spectral
from .loop import ProgressFn, StopFn
from .params import TrainingParams
from .window_training import WindowTrainer, plan_windows
from .windowed_scene import WindowedScene

if TYPE_CHECKING:
    from .classifier import RssglClassifier

__all__ = ["STAGE_ONE_LABEL", "fit_stage_one"]

log = logging.getLogger(__name__)

#: How logs and reports name the stage-one map.
STAGE_ONE_LABEL = "spectral model (stage one)"


def fit_stage_one(clf: RssglClassifier, cube: np.ndarray | WindowedScene, train_labels: np.ndarray, *,
                  valid: np.ndarray | None = None, class_names: list[str] | None = None,
                  class_colors: list[tuple[int, int, int]] | None = None, band_info: dict | None = None,
                  progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> RssglClassifier:
    """Fit ``clf`` as a stage-one classifier: band statistics and the spectral model on every training pixel
    (no validation split: no epochs are selected). Returns ``clf``.

    ``progress(percent, message)``: the band statistics of a raster read in windows (one whole read of it, the
    longest step on a large raster) report 0-80 % in rows read, the windows around the training pixels 80 %,
    the spectral model's fit 90 % and its end 100 %;
    ``should_stop()`` is asked before each strip of the statistics and before the fit (core.errors.Cancelled)."""
    p = copy.deepcopy(clf.params) if clf.params is not None else TrainingParams()
    p.validate()
    device = choose_device(p.device)
    t0 = time.perf_counter()
    scene, cube, valid = clf._training_input(cube, valid, p, device)
    n_bands, height, width = (scene.bands, scene.height, scene.width) if scene is not None else cube.shape
    labels, classes = clf._checked_labels(p, (height, width), valid, train_labels, None, None, None, n_bands)
    train_labels = labels["train"]
    rows, cols = labelled_pixels(train_labels)  # the training pixels, row-major: once, not once per use
    values = train_labels[rows, cols]
    report = progress or (lambda percent, message: None)
    if scene is not None:
        mean, std, _ = scene.band_statistics(progress=lambda percent, message: report(0.8 * percent, message),
                                             should_stop=should_stop)
        report(80.0, f"reading the windows around the {values.size} training pixels")
        spectra, y, groups, unlabelled = _window_spectra(scene, mean, std, p, classes, train_labels,
                                                         (rows, cols, values), device)
    else:
        mean, std = band_statistics(cube, valid)
        spectra, y, unlabelled = _whole_spectra(cube, valid, mean, std, p, classes, train_labels, (rows, cols, values),
                                                device)
        groups = pixel_patches(rows, cols, values)  # the samples the settings search may hold out whole
    if should_stop is not None and should_stop():
        raise Cancelled("Training cancelled before the spectral model was fitted.")
    report(90.0, f"fitting the spectral model on {values.size} training pixels")
    clf.spectral_ = fit_spectral(spectra, y, groups=groups, seed=p.seed, device=spectra.device, unlabelled=unlabelled)
    log.info("Stage one: the spectral model fitted on %d training pixels (%d self-training pixels) in %.1f s.",
             int(y.size), int(clf.spectral_.pseudo_labels), time.perf_counter() - t0)
    clf.pool_ = PoolSettings(weight=0.0)
    clf.model_, clf.config_, clf.params_ = None, None, p
    clf.classes_, clf.n_bands_ = classes, n_bands
    clf._keep_classes(classes, class_names, class_colors)
    clf.band_info_ = dict(band_info or {})
    clf.band_mean_ = np.asarray(mean, dtype=np.float64)
    clf.band_std_ = np.asarray(std, dtype=np.float64)
    clf.train_counts_ = np.array([(values == c).sum() for c in classes], dtype=np.int64)
    clf.history_, clf.best_epoch_, clf.stopped_early_ = [], 0, False
    clf.selection_, clf.selection_note_, clf.validation_metrics_ = "none", "", {}
    clf.device_, clf.device_description_ = str(device), describe_device(device)
    clf.training_input_ = "windows around the samples" if scene is not None else "whole scene"
    clf.accelerated_, clf.fine_tuned_from_ = False, None
    clf.train_seconds_ = time.perf_counter() - t0
    report(100.0, "spectral model fitted")
    return clf


def _whole_spectra(cube: np.ndarray, valid: np.ndarray, mean: np.ndarray, std: np.ndarray, p: TrainingParams,
                   classes: np.ndarray, train_labels: np.ndarray, pixels: tuple[np.ndarray, np.ndarray, np.ndarray],
                   device: torch.device) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
    """(training spectra, their class indices, unlabelled spectra) of a raster in memory; ``pixels``: the
    training pixels' (rows, columns, class values), row-major."""
    x = padded_input(normalize_cube(cube, mean, std, valid), device)
    return sample_spectra(x, valid, pixels, (train_labels,), classes, p.seed)


def _window_spectra(scene: WindowedScene, mean: np.ndarray, std: np.ndarray, p: TrainingParams,
                    classes: np.ndarray, train_labels: np.ndarray, pixels: tuple[np.ndarray, np.ndarray, np.ndarray],
                    device: torch.device) -> tuple[torch.Tensor, np.ndarray, np.ndarray, torch.Tensor]:
    """(training spectra, their class indices, their samples, unlabelled spectra) of a raster read in windows;
    ``pixels``: the training pixels' (rows, columns, class values), row-major.

    The windows list their pixels tile by tile, not in the order given: each pixel's sample (its 8-connected
    patch) is found by its position (``patches_at``), as RSSGL's own training on windows finds it."""
    rows, cols, values = pixels
    plan = plan_windows(scene.bands, device, core=p.window_core, halo=p.window_halo, batch=p.window_batch)
    trainer = WindowTrainer(scene, mean, std, plan, {"train": (rows, cols, class_index(values, classes))}, device,
                            seed=p.seed, amp=False)
    spectra, y, at_rows, at_cols = trainer.spectra_at("train")
    return spectra, y, patches_at(train_labels, at_rows, at_cols), trainer.unlabelled_spectra()
