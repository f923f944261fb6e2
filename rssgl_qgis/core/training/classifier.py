"""Training and prediction: ``RssglClassifier``, a scikit-learn style estimator around RSSGL.

The protocol follows the authors (REFERENCE.md): whole-scene input, per-band standardisation,
zero padding to multiples of 16, H-B minibatches (up to 10 random training pixels per class per
iteration), SGD with momentum and a poly learning rate, one evaluation per "epoch" of 10
iterations and early stopping that restores the best weights.

Model selection is where we differ on purpose. The authors pick the epoch with the best TEST
accuracy. Here the default ("fit") trains on every training pixel and stops when there is nothing
left to learn from them: ``fit_patience_epochs`` epochs after the share of training pixels the network
classifies correctly last grew (it keeps the latest weights of the best share). Carving validation
pixels out of 5-10 per class cost up to 7 OA points on Salinas-A (issue 13) while the test curves
are flat after a few epochs; the accuracy away from the samples is estimated by cross-validation
over whole samples instead (workflow, core/training/cross_validation.py). "validation" picks on a validation split
carved from the training pixels (ties broken by the lower validation cross-entropy), or on the
training loss when too few pixels are available for validation. "paper" reproduces the authors' rule for comparison only,
and everything it produces is labelled "paper protocol (selection on test pixels)".
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import numpy as np
import torch

from ..data.normalization import band_statistics, check_cube, normalize_cube
from ..data.sampling import HBMinibatchSampler, labelled_pixels, patches_at, pixel_patches, validation_split
from ..errors import Cancelled, RssglError
from ..network.accel import EvalPixels, TrainStep, cudnn_autotune, poly_lr_table, use_cuda_graph
from ..network.device import choose_device, describe_device, set_cpu_threads
from ..network.losses import RssglLoss
from ..network.model import RSSGL, RssglConfig, auto_kernel
from ..palette import default_colors
from ..prediction.scene_tensors import class_index, index_map, padded_input, sample_spectra
from ..spectral.pool import PoolSettings
from ..spectral.spectral_model import fit_spectral
from .distillation import pseudo_labels
from .loop import ProgressFn, StopFn, run_epochs
from .model_checks import SPECTRAL_ONLY_CONTENTS
from .params import MIN_VALIDATION_PIXELS, PAPER_LABEL, SELECTION_MODES, TRAINING_INPUTS, TrainingParams
from .persistence import classifier_metadata, load_classifier, save_classifier
from .stage_one import STAGE_ONE_LABEL
from .window_training import WindowTrainer, plan_windows
from .windowed_scene import WindowedScene

__all__ = ["TrainingParams", "RssglClassifier", "SELECTION_MODES", "TRAINING_INPUTS", "PAPER_LABEL",
           "MIN_VALIDATION_PIXELS", "SPECTRAL_ONLY", "STAGE_ONE_LABEL"]

#: The model file's "model_contents" for a stage-one model: normalisation and the spectral model, no network.
SPECTRAL_ONLY = SPECTRAL_ONLY_CONTENTS

log = logging.getLogger(__name__)

def _without_validation_pixels(train_labels: np.ndarray, val_labels: np.ndarray) -> np.ndarray:
    """``train_labels`` without the pixels that are also validation pixels (a pixel trained on would
    make the validation accuracy meaningless). Refuses when that leaves a class without training pixels."""
    overlap = (train_labels > 0) & (val_labels > 0)
    if not overlap.any():
        return train_labels
    remaining = np.where(overlap, 0, train_labels)
    lost = sorted(set(np.unique(train_labels[train_labels > 0]).tolist()) - set(np.unique(remaining).tolist()))
    if lost:
        raise RssglError(
            f"Every training pixel of class(es) {lost} is also a validation pixel. Use separate samples for "
            "validation, or let the plugin hold out validation pixels itself (give no validation labels)."
        )
    log.warning("%d pixel(s) are both training and validation samples; they are used for validation only.",
                int(overlap.sum()))
    return remaining


class RssglClassifier:
    """RSSGL as an estimator: ``fit(cube, train_labels)`` then ``predict(cube)``.

    Cubes are float (B, H, W) arrays, labels (H, W) integer arrays with 0 = unlabelled. Class
    values may be sparse (e.g. 1, 10..14); outputs use the original values and 0 for nodata.
    """

    #: How RSSGL and the spectral model are pooled (fit sets it, cross-validation may replace it: use_pool).
    pool_: PoolSettings = PoolSettings()

    def __init__(self, config_overrides: dict | None = None, params: TrainingParams | None = None):
        self.config_overrides = config_overrides
        self.params = params

    # ------------------------------------------------------------------ helpers
    @property
    def spectral_only(self) -> bool:
        """A stage-one model: normalisation and the spectral model, no RSSGL network (fit_spectral_only)."""
        return getattr(self, "model_", None) is None and getattr(self, "spectral_", None) is not None

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError(
                "This RssglClassifier is not trained yet: call fit(...) or load a model file with "
                "RssglClassifier.load(path) before predicting."
            )

    def _labels(self, labels, shape: tuple[int, int], name: str) -> np.ndarray | None:
        if labels is None:
            return None
        labels = np.asarray(labels)
        if labels.shape != shape:
            raise RssglError(
                f"The {name} cover {labels.shape[0]}x{labels.shape[1]} pixels but the raster is "
                f"{shape[0]}x{shape[1]}; rasterise the samples on the raster's grid."
            )
        if not np.issubdtype(labels.dtype, np.integer):
            if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
                raise RssglError(f"The {name} must hold integer class values (0 = unlabelled).")
            labels = labels.astype(np.int64)
        # integer labels are kept in their own type (io.samples' uint8 / uint16 / int32): an int64 copy of a
        # 20000 x 20000 raster's labels is 3.2 GB and 8 s (issue 29)
        if np.issubdtype(labels.dtype, np.signedinteger) and labels.size and labels.min() < 0:
            raise RssglError(f"The {name} hold negative class values; use 0 for unlabelled and positive classes.")
        return labels

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        cube: np.ndarray,
        train_labels: np.ndarray,
        *,
        valid: np.ndarray | None = None,
        val_labels: np.ndarray | None = None,
        eval_labels: np.ndarray | None = None,
        class_names: list[str] | None = None,
        class_colors: list[tuple[int, int, int]] | None = None,
        band_info: dict | None = None,
        init_from: RssglClassifier | None = None,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> RssglClassifier:
        """Train on ``train_labels`` and keep the selected (best) weights. Returns self.

        val_labels: explicit validation pixels (else carved from train_labels in "validation"
        mode); eval_labels: held-out pixels, used for model selection only in "paper" mode and
        otherwise just logged per epoch; init_from: a trained classifier to fine-tune. The spectral
        model's own settings are cross-validated over pixels, not whole samples
        (core/spectral/spectral_model.py says why); the accuracy estimate over whole samples is
        core.training.cross_validation.cross_validate_blend's.

        The steps: the input and its labels checked (:meth:`_checked_labels`), the normalisation, the network
        built (:meth:`_network`), RSSGL trained on windows (:meth:`_train_windows`) or on the whole scene
        (:meth:`_train_whole`), then the spectral model fitted on the same training pixels. With distillation
        (``distill_share`` > 0, whole-scene training) the spectral model is fitted first and its surest pixels of
        each class train RSSGL too (core/training/distillation.py).
        """
        p = copy.deepcopy(self.params) if self.params is not None else TrainingParams()
        p.validate()
        device = choose_device(p.device)
        scene, cube, valid = self._training_input(cube, valid, p, device)
        n_bands, height, width = (scene.bands, scene.height, scene.width) if scene is not None else cube.shape
        labels, classes = self._checked_labels(p, (height, width), valid, train_labels, val_labels, eval_labels,
                                               init_from, n_bands)
        train_labels, val_labels, selection, selection_note = self._selection_pixels(
            p, labels["train"], labels["val"], labels["eval"], valid, classes)
        labels.update(train=train_labels, val=val_labels)

        if device.type == "cpu":
            set_cpu_threads()
        self.device_ = str(device)
        self.device_description_ = describe_device(device)
        log.info("Training RSSGL on %s", self.device_description_)

        # Normalisation: fine-tuning keeps the original model's statistics so its features stay meaningful.
        if init_from is not None:
            mean, std = init_from.band_mean_, init_from.band_std_
        elif scene is not None:  # one whole read of the raster: its words at 0 % of the training's span
            statistics_progress = None if progress is None else (lambda percent, message: progress(0.0, message))
            mean, std, _ = scene.band_statistics(progress=statistics_progress, should_stop=should_stop)
        else:
            mean, std = band_statistics(cube, valid)
        counts = np.array([(train_labels == c).sum() for c in classes], dtype=np.int64)

        config, model = self._network(p, classes, n_bands, (height, width), init_from)
        model.to(device)
        criterion = RssglLoss(counts, p.stat_loss_weight, p.cb_beta).to(device)
        use_amp = device.type == "cuda" and p.amp == "auto"
        horizon = max(p.poly_max_iterations, p.iterations)
        t0 = time.perf_counter()
        if scene is not None:
            trainer, history, best_epoch, stopped_early = self._train_windows(
                scene, mean, std, model, criterion, p, selection, classes, labels, device, use_amp, horizon,
                progress, should_stop)
            self.accelerated_ = False
            self.training_input_ = trainer.plan.describe()
            spectra = y = unlabelled = groups = spectral_first = None
            if p.spectral and selection != "paper":
                spectra, y, rows, cols = trainer.spectra_at("train")
                unlabelled = trainer.unlabelled_spectra()
                groups = patches_at(labels["train"], rows, cols)  # the samples the settings search may hold out
        else:
            history, best_epoch, stopped_early, (spectra, y, unlabelled, groups, spectral_first) = self._train_whole(
                cube, valid, mean, std, model, criterion, p, selection, classes, labels, device, use_amp, horizon,
                progress, should_stop, t0)
            self.training_input_ = "whole scene"
        model.eval()
        self.spectral_ = None
        self.pool_ = PoolSettings()
        if spectra is not None or spectral_first is not None:
            self.spectral_ = spectral_first if spectral_first is not None else fit_spectral(
                spectra, y, groups=groups, seed=p.seed, device=spectra.device, unlabelled=unlabelled)
            if self.spectral_.pseudo_labels:
                log.info("Spectral model self-trained with %d unlabelled pixels it was surest of.",
                         self.spectral_.pseudo_labels)
            self.pool_ = PoolSettings(weight=float(p.blend_weight))
        self.model_ = model
        self.config_ = config
        self.params_ = p
        self.classes_ = classes
        self.n_bands_ = n_bands
        self._keep_classes(classes, class_names, class_colors)
        self.band_info_ = dict(band_info or {})
        self.band_mean_ = np.asarray(mean, dtype=np.float64)
        self.band_std_ = np.asarray(std, dtype=np.float64)
        self.train_counts_ = counts
        self.history_ = history
        self.best_epoch_ = best_epoch
        self.selection_ = selection
        self.selection_note_ = selection_note
        self.stopped_early_ = stopped_early
        self.train_seconds_ = time.perf_counter() - t0
        self.fine_tuned_from_ = init_from.metadata().get("created") if init_from is not None else None
        best = history[best_epoch - 1] if best_epoch else {}
        self.validation_metrics_ = {k: best[k] for k in ("val_oa", "val_loss", "test_oa", "loss") if k in best}
        return self

    def fit_spectral_only(self, cube: np.ndarray | WindowedScene, train_labels: np.ndarray, *,
                          valid: np.ndarray | None = None, class_names: list[str] | None = None,
                          class_colors: list[tuple[int, int, int]] | None = None, band_info: dict | None = None,
                          progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> RssglClassifier:
        """Stage one: the normalisation and the spectral model (with its self-training) fitted on the training
        pixels, no RSSGL network (core/training/stage_one.py). Returns self."""
        from .stage_one import fit_stage_one

        return fit_stage_one(self, cube, train_labels, valid=valid, class_names=class_names,
                             class_colors=class_colors, band_info=band_info, progress=progress,
                             should_stop=should_stop)

    def _checked_labels(self, p: TrainingParams, shape: tuple[int, int], valid: np.ndarray, train_labels,
                        val_labels, eval_labels, init_from: RssglClassifier | None, n_bands: int
                        ) -> tuple[dict[str, np.ndarray | None], np.ndarray]:
        """({"train", "val", "eval"} label maps on the scene's grid, the trained class values): training pixels
        on nodata dropped with a warning; errors for "paper" without eval_labels, fewer than 2 classes and a
        model to fine-tune with other bands."""
        train_labels = self._labels(train_labels, shape, "training labels")
        val_labels = self._labels(val_labels, shape, "validation labels")
        eval_labels = self._labels(eval_labels, shape, "evaluation labels")
        dropped = 0 if valid.all() else int(((train_labels > 0) & ~valid).sum())
        if dropped:
            log.warning("%d training pixel(s) lie on nodata/NaN pixels and are ignored.", dropped)
            train_labels = np.where(valid, train_labels, 0)
        if p.selection == "paper" and (eval_labels is None or not (eval_labels > 0).any()):
            raise RssglError(
                "Model selection 'paper' picks the epoch with the best accuracy on eval_labels, but none were "
                "given; pass the test labels as eval_labels or use selection 'validation'."
            )
        classes = np.unique(train_labels[labelled_pixels(train_labels)]).astype(np.int64)
        if classes.size < 2:
            raise RssglError(
                f"Training needs samples of at least 2 classes; found {classes.size} "
                f"({classes.tolist()}). Add samples of other classes."
            )
        if init_from is not None:
            init_from._check_fitted()
            if init_from.spectral_only:
                raise RssglError(
                    "The model to fine-tune holds the spectral model only (stage one) and no RSSGL network to "
                    "fine-tune; train RSSGL without a model to fine-tune (RSSGL stage 'always')."
                )
            if init_from.n_bands_ != n_bands:
                raise RssglError(
                    f"The model to fine-tune expects {init_from.n_bands_} bands but the raster has {n_bands}; "
                    "fine-tune on the raster the model was trained on."
                )
        return {"train": train_labels, "val": val_labels, "eval": eval_labels}, classes

    def _network(self, p: TrainingParams, classes: np.ndarray, n_bands: int, shape: tuple[int, int],
                 init_from: RssglClassifier | None) -> tuple[RssglConfig, RSSGL]:
        """The network to train, initialised from ``p.seed`` without touching the caller's global RNG; a
        fine-tuned one takes its base model's configuration and weights."""
        overrides = dict(self.config_overrides or {})
        if init_from is not None:
            base = init_from.config_.to_dict()
            base.update({"num_classes": int(classes.size)})
            config = RssglConfig.from_dict(base)
        else:
            overrides.setdefault("kernel", auto_kernel(*shape))
            config = RssglConfig(in_bands=n_bands, num_classes=int(classes.size), **overrides)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's global RNG
            torch.manual_seed(p.seed)
            model = RSSGL(config)
        if init_from is not None:
            self._load_init(model, init_from, classes)
        return config, model

    def _train_whole(self, cube: np.ndarray, valid: np.ndarray, mean: np.ndarray, std: np.ndarray, model: RSSGL,
                     criterion: RssglLoss, p: TrainingParams, selection: str, classes: np.ndarray,
                     labels: dict[str, np.ndarray | None], device: torch.device, use_amp: bool, horizon: int,
                     progress: ProgressFn | None, should_stop: StopFn | None, t0: float) -> tuple:
        """Train on the whole scene on the device (one fused step per iteration, a CUDA graph where it can) and
        restore the selected epoch's weights. Returns (history, best epoch, stopped early, (training spectra,
        their class indices, unlabelled spectra, their samples) for the spectral model, or four None; the spectral
        model where distillation fitted it first, else None)."""
        train_labels, val_labels, eval_labels = labels["train"], labels["val"], labels["eval"]
        x = padded_input(normalize_cube(cube, mean, std, valid), device)
        hp, wp = x.shape[-2:]
        spectral_first = None  # distillation: the spectral model first, its surest pixels train RSSGL too
        network_labels = train_labels
        if p.distill_share > 0 and p.spectral and selection != "paper":
            if progress is not None:
                progress(0.0, "fitting the spectral model and picking its surest pixels for RSSGL (distillation)")
            spectra, y, unlabelled, groups = self._sample_spectra(x, valid, train_labels, val_labels, classes, p)
            spectral_first = fit_spectral(spectra, y, groups=groups, seed=p.seed, device=spectra.device,
                                          unlabelled=unlabelled)
            extra = pseudo_labels(spectral_first, x, valid, (train_labels, val_labels), classes, p.distill_share,
                                  p.distill_cap)
            network_labels = np.where(extra > 0, extra, train_labels)
            if should_stop is not None and should_stop():
                raise Cancelled("Training cancelled before RSSGL's first iteration.")
            log.info("Distillation: RSSGL also trains on %d pixels the spectral model is surest of.",
                     int((extra > 0).sum()))
        train_idx = index_map(network_labels, classes, (hp, wp), device)
        target = train_idx.clamp_min(0)[None]
        val_idx = index_map(val_labels, classes, (hp, wp), device) if val_labels is not None else None
        eval_idx = index_map(eval_labels, classes, (hp, wp), device) if eval_labels is not None else None
        generator = torch.Generator(device=device)
        generator.manual_seed(p.seed)
        sampler = HBMinibatchSampler(train_idx, p.per_class_batch, generator)
        lr_table = poly_lr_table(p.lr, horizon, p.poly_power, p.iterations + 1, device)
        step = TrainStep(
            model, criterion, x, target, sampler.draw, lr_table,
            iterations=p.iterations, epoch_iterations=p.epoch_iterations, momentum=p.momentum,
            weight_decay=p.weight_decay, amp=use_amp, selection=selection,
            val_pixels=EvalPixels.from_index_map(val_idx), eval_pixels=EvalPixels.from_index_map(eval_idx),
        )
        with cudnn_autotune(device.type == "cuda"):
            graphed = use_cuda_graph(p.accelerate, device) and step.enable_graph(generator=generator)
            self.accelerated_ = bool(graphed)
            history, best_epoch, stopped_early = run_epochs(step, p, progress, should_stop, t0)
        step.restore_best()
        spectra = y = unlabelled = groups = None
        if p.spectral and selection != "paper" and spectral_first is None:
            spectra, y, unlabelled, groups = self._sample_spectra(x, valid, train_labels, val_labels, classes, p)
        return history, best_epoch, stopped_early, (spectra, y, unlabelled, groups, spectral_first)

    @staticmethod
    def _sample_spectra(x: torch.Tensor, valid: np.ndarray, train_labels: np.ndarray, val_labels: np.ndarray | None,
                        classes: np.ndarray, p: TrainingParams
                        ) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray]:
        """(training spectra, their class indices, unlabelled spectra, their samples: the 8-connected patch of each
        training pixel, which the settings search may hold out whole) of the padded normalised scene ``x``: what
        the spectral model is fitted on."""
        rows, cols = np.nonzero(train_labels > 0)
        values = train_labels[rows, cols]
        spectra, y, unlabelled = sample_spectra(x, valid, (rows, cols, values), (train_labels, val_labels), classes,
                                                p.seed)
        return spectra, y, unlabelled, pixel_patches(rows, cols, values)

    def _keep_classes(self, classes: np.ndarray, class_names, class_colors) -> None:
        """One name and one colour per class, in ascending class order (generated where none were given)."""
        self.class_names_ = list(class_names) if class_names is not None else [f"class {c}" for c in classes]
        self.class_colors_ = [tuple(int(v) for v in c) for c in class_colors] if class_colors else default_colors(
            classes.size
        )
        if len(self.class_names_) != classes.size or len(self.class_colors_) != classes.size:
            raise RssglError(
                f"Got {len(self.class_names_)} class names and {len(self.class_colors_)} colours for "
                f"{classes.size} classes {classes.tolist()}; give one per class in ascending class order."
            )

    @staticmethod
    def _training_input(cube: Any, valid: np.ndarray | None, p: TrainingParams, device: torch.device
                        ) -> tuple[WindowedScene | None, np.ndarray | None, np.ndarray]:
        """(windowed scene or None, cube or None, valid mask) as ``p.training_input`` and the device's memory say.

        "auto" trains on the whole scene when the memory model says it fits the device, else on windows.
        A WindowedScene trained on the whole scene is read whole first.
        """
        from ..prediction.memory_model import check_training_fits

        if isinstance(cube, WindowedScene):
            bands, height, width = cube.bands, cube.height, cube.width
        else:
            cube = np.asarray(cube) if not isinstance(cube, np.memmap) else cube
            if cube.ndim != 3:
                check_cube(cube)  # its error message
            bands, height, width = cube.shape
        mode = p.training_input
        if mode == "auto":
            try:
                check_training_fits(bands, height, width, device)
                mode = "whole"
            except RssglError:
                mode = "windows"
                log.info("The whole %d x %d raster does not fit the %s's memory for training: training on windows.",
                         height, width, device.type.upper())
        if mode == "windows":
            scene = cube if isinstance(cube, WindowedScene) else WindowedScene.from_array(cube, valid)
            ok = np.ones((height, width), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
            return scene, None, ok
        if isinstance(cube, WindowedScene):
            from ..prediction.tiling import Window

            cube, read_valid = cube.read(Window(0, 0, height, width))
            valid = read_valid if valid is None else read_valid & np.asarray(valid, dtype=bool)
        cube, valid = check_cube(cube, valid)
        return None, cube, valid

    @staticmethod
    def _selection_pixels(p: TrainingParams, train_labels: np.ndarray, val_labels: np.ndarray | None,
                          eval_labels: np.ndarray | None, valid: np.ndarray, classes: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray | None, str, str]:
        """(training labels, the labels selection scores, the selection used, a note): validation pixels come
        out of the training pixels only."""
        selection_note = ""
        selection = p.selection
        carved = False  # validation pixels taken from train_labels here (not the caller's)
        if selection == "validation" and val_labels is None:
            train_labels, val_labels = validation_split(train_labels, p.validation_share, seed=p.seed)
            carved = True
        if selection == "validation":
            val_labels = np.where(np.isin(val_labels, classes) & valid, val_labels, 0)
            if not carved:  # the caller's validation pixels: never also trained on
                train_labels = _without_validation_pixels(train_labels, val_labels)
            n_val = int((val_labels > 0).sum())
            if n_val < max(MIN_VALIDATION_PIXELS, classes.size):
                selection_note = (
                    f"only {n_val} validation pixel(s) (need >= {max(MIN_VALIDATION_PIXELS, classes.size)}): "
                    "model selected on training loss instead"
                )
                log.warning("Validation selection falls back to training loss: %s.", selection_note)
                selection = "loss"
                if carved:  # give back what was carved; the caller's validation pixels are never trained on
                    train_labels = np.where(val_labels > 0, val_labels, train_labels)
                val_labels = None
        elif selection == "paper":
            selection_note = PAPER_LABEL
        elif selection == "fit":  # every training pixel is also the pixel set whose fit decides when to stop
            if val_labels is not None:
                train_labels = _without_validation_pixels(train_labels, val_labels)
            val_labels = np.where(valid, train_labels, 0)
        return train_labels, val_labels, selection, selection_note

    @staticmethod
    def _train_windows(scene: WindowedScene, mean: np.ndarray, std: np.ndarray, model: RSSGL, criterion: RssglLoss,
                       p: TrainingParams, selection: str, classes: np.ndarray, labels: dict[str, np.ndarray | None],
                       device: torch.device, use_amp: bool, horizon: int, progress: ProgressFn | None,
                       should_stop: StopFn | None) -> tuple[WindowTrainer, list[dict[str, Any]], int, bool]:
        """Window training (core/training/window_training.py) of ``model`` on the pixels of ``labels`` ("train", "val", "eval")."""
        points = {}
        for name, lab in labels.items():
            if lab is None or not (lab > 0).any():
                continue
            rows, cols = np.nonzero(lab > 0)
            index = class_index(lab[rows, cols], classes)
            keep = index >= 0
            points[name] = (rows[keep], cols[keep], index[keep])
        plan = plan_windows(scene.bands, device, core=p.window_core, halo=p.window_halo, batch=p.window_batch)
        trainer = WindowTrainer(scene, mean, std, plan, points, device, seed=p.seed, amp=use_amp)
        log.info("Training on %s (%d windows hold training pixels).", plan.describe(), len(trainer.points["train"]))

        def lr_at(it: int) -> float:
            return p.lr * max(0.0, 1.0 - it / horizon) ** p.poly_power

        history, best_epoch, stopped = trainer.train(model, criterion, p, selection, lr_at, int(classes.size),
                                                     progress, should_stop)
        return trainer, history, best_epoch, stopped

    @staticmethod
    def _load_init(model: RSSGL, init_from: RssglClassifier, classes: np.ndarray) -> None:
        """Copy the weights of ``init_from``; the classifier layer only when the classes are identical."""
        state = {k: v.detach().cpu() for k, v in init_from.model_.state_dict().items()}
        if not np.array_equal(init_from.classes_, classes):
            state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
            log.info("Fine-tuning with a different class set: the classifier layer starts fresh.")
        model.load_state_dict(state, strict=False)

    # ------------------------------------------------------------------ predict
    def predict_proba(self, cube: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities (K, H, W) float32 (RSSGL's softmax pooled with the spectral model's, as
        ``pool_`` says); all 0 at invalid pixels."""
        if getattr(self, "spectral_", None) is not None and (self.spectral_only or self.pool_.spectral_only):
            _, spectral, valid = self._components(cube, valid, rssgl=False)  # RSSGL has no vote: not run
            pooled = self.pool_.pooled(None, torch.from_numpy(spectral), dim=0).numpy()
            pooled[:, ~valid] = 0.0
            return pooled
        rssgl, spectral, valid = self._components(cube, valid)
        if spectral is None or self.pool_.rssgl_as_trained:
            return rssgl
        pooled = self.pool_.pooled(torch.from_numpy(rssgl), torch.from_numpy(spectral), dim=0).numpy()
        pooled[:, ~valid] = 0.0
        return pooled

    def use_pool(self, pool: PoolSettings) -> None:
        """Pool RSSGL and the spectral model as ``pool`` says (what cross-validation chose:
        core.training.cross_validation.cross_validate_blend); without a spectral model RSSGL stays alone, with its temperature."""
        if getattr(self, "spectral_", None) is None:
            pool = PoolSettings(1.0, pool.temperature, 1.0)
        if self.spectral_only:  # stage one: nothing else to pool with
            pool = PoolSettings(0.0, 1.0, pool.spectral_temperature)
        self.pool_ = pool

    def component_probabilities_at(self, cube: np.ndarray | WindowedScene, valid: np.ndarray | None,
                                   pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """component_probabilities at the (H, W) boolean ``pixels`` only, each (K, n) in row-major pixel order.

        A WindowedScene classifies only the tiles holding those pixels (window_training.pixel_probabilities):
        cross-validation on a raster too large for whole-scene prediction."""
        if isinstance(cube, WindowedScene):
            from .window_training import pixel_probabilities

            self._check_fitted()
            rows, cols = np.nonzero(pixels)
            return pixel_probabilities(self, cube, rows, cols)
        rssgl, spectral = self.component_probabilities(cube, valid)
        return rssgl[:, pixels], None if spectral is None else spectral[:, pixels]

    def component_probabilities(self, cube: np.ndarray, valid: np.ndarray | None = None
                                ) -> tuple[np.ndarray, np.ndarray | None]:
        """(RSSGL's probabilities, the spectral model's or None), each (K, H, W), 0 at invalid pixels."""
        return self._components(cube, valid)[:2]

    def _components(self, cube: np.ndarray, valid: np.ndarray | None, rssgl: bool = True
                    ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
        """component_probabilities plus the checked valid mask (the pool zeroes invalid pixels again); with
        ``rssgl`` False the network does not run (None in its place)."""
        self._check_fitted()
        if rssgl and self.spectral_only:
            raise RssglError("This model holds the spectral model only (stage one): it has no RSSGL probabilities; "
                             "train RSSGL (RSSGL stage 'always') to compare the two.")
        cube, valid = check_cube(cube, valid)
        if cube.shape[0] != self.n_bands_:
            raise RssglError(
                f"The model expects {self.n_bands_} bands but the raster has {cube.shape[0]}; "
                "use the raster the model was trained on (or one with the same bands)."
            )
        _, h, w = cube.shape
        device = next(self.model_.parameters()).device if self.model_ is not None else self.spectral_.centers.device
        x = padded_input(normalize_cube(cube, self.band_mean_, self.band_std_, valid), device)
        proba = None
        if rssgl:
            use_amp = device.type == "cuda" and getattr(self, "params_", TrainingParams()).amp == "auto"
            self.model_.eval()
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits, _ = self.model_(x)
            proba = torch.softmax(logits.float()[0, :, :h, :w], dim=0).cpu().numpy()
            proba[:, ~valid] = 0.0
        spectral = None
        if getattr(self, "spectral_", None) is not None:  # fp32 kernel distances, outside autocast
            with torch.no_grad():
                spectral = self.spectral_.probabilities_map(x[:, :, :h, :w]).float()[0].cpu().numpy()
            spectral[:, ~valid] = 0.0
        return proba, spectral, valid

    def predict(self, cube: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Class map (H, W) with the original class values, 0 where the input is invalid."""
        cube, valid = check_cube(cube, valid)
        proba = self.predict_proba(cube, valid)
        out = self.classes_[proba.argmax(axis=0)]
        return np.where(valid, out, 0).astype(self.classes_.dtype)

    # ------------------------------------------------------------------ persistence (core/training/persistence.py)
    def metadata(self) -> dict[str, Any]:
        """Everything a model file needs besides the weights (JSON-serialisable)."""
        return classifier_metadata(self)

    def save(self, path) -> None:
        """Write a single-file ``.rssgl`` model (safetensors weights + JSON metadata), atomically."""
        save_classifier(self, path)

    @classmethod
    def load(cls, path, device: str = "auto") -> RssglClassifier:
        """Rebuild a trained classifier from a ``.rssgl`` file (no unpickling; every field checked first)."""
        return load_classifier(cls, path, device)
