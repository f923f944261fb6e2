"""The training workflow shared by the Processing algorithm and the dock (no qgis import).

Processing and the dock differ only in how they collect inputs and show progress; the steps (read
the raster, burn the samples onto its grid, check them, split, fit, save, classify, report) are
the same, so they live here once, on file paths and plain callables:

- ``progress(percent, message)``, ``should_stop() -> bool`` as the engine takes them;
- ``log(level, message)`` with level "info" or "warning" (pushInfo / pushWarning, the dock's log).

Errors are ``RssglError`` (a ValueError) with a sentence in the user's terms; cancelling raises
``rssgl_qgis.core.errors.Cancelled``. Outputs follow io.outputs' one rule: every path is checked before
the raster is read, everything is written to temporary files, and the files at the output paths are
replaced together only at the very end, so a failed or cancelled re-run leaves the previous model,
report and maps byte for byte.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import RssglError
from ..core.spectral.pool import PoolSettings
from ..io.atomic import atomic_write_text
from ..io.outputs import Output, OutputTransaction, checkpoint
from .inputs import MIN_CLASS_PIXELS, _read_inputs, _TrainingRun
from .reports import ClassRow, TrainingReport, render_training_report
from .stages import RSSGL_STAGES, STAGE_ONE, check_stage, fit_stage_one, trains_rssgl
from .support import LogFn, ProgressFn, StopFn, collecting_log, no_log

__all__ = [
    "MIN_CLASS_PIXELS",
    "KERNEL_CHOICES",
    "RSSGL_STAGES",
    "STAGE_ONE",
    "TrainResult",
    "CrossValidation",
    "parse_kernel",
    "train_from_files",
    "train_inputs",
    "train_outputs",
]


#: Most cross-validation folds a training may ask for (each fold is one more full training).
MAX_CV_FOLDS = 10
#: User-facing kernel choices (Processing enum order) -> engine kernels; "auto" decides from the scene size.
KERNEL_CHOICES = ("auto", "3x3x3", "3x5x5")

def parse_kernel(kernel: str | tuple[int, int, int] | None, height: int, width: int) -> tuple[int, int, int]:
    """The ConvLSTM kernel for a choice in KERNEL_CHOICES (or an explicit tuple); "auto" as the paper."""
    from ..core.network.model import auto_kernel

    if kernel is None or kernel == "auto":
        return tuple(auto_kernel(height, width))
    if isinstance(kernel, str):
        try:
            parts = tuple(int(v) for v in kernel.lower().split("x"))
        except ValueError:
            parts = ()
        if len(parts) != 3 or any(v < 1 or v % 2 == 0 for v in parts):
            raise RssglError(f"Unknown kernel '{kernel}'; expected one of {', '.join(KERNEL_CHOICES)}.")
        return parts  # type: ignore[return-value]
    return tuple(int(v) for v in kernel)  # type: ignore[return-value]


@dataclass
class TrainResult:
    """What a training run produced; paths are None for outputs that were not asked for."""

    model_path: str
    classifier: Any
    classes: list[ClassRow]
    history: list[dict[str, Any]]
    device: str
    train_seconds: float
    selection: str
    best_epoch: int
    validation_oa: float | None
    report_path: str | None = None
    classification_path: str | None = None
    confidence_path: str | None = None
    dropped_outside: int = 0
    warnings: list[str] = field(default_factory=list)
    cross_validation: CrossValidation | None = None
    #: 1: the spectral model only (RSSGL not trained); 2: RSSGL trained (the map may still give it no vote)
    stage: int = 2
    #: which model made the map, in words: STAGE_ONE, or the pool (describe_combination)
    map_source: str = ""

    @property
    def replaces_stage_one(self) -> bool:
        """Whether this map should replace a stage-one map of the same inputs: only a stage-two map whose
        cross-validation gave RSSGL a vote (pool weight > 0); otherwise the maps are the spectral model's both."""
        cv = self.cross_validation
        return self.stage == 2 and cv is not None and bool(cv.candidates) and cv.pool.weight > 0.0

    @property
    def stage_text(self) -> str:
        """The stage in words, for reports and logs."""
        if self.stage == 1:
            return "stage one: the spectral model's map (RSSGL was not trained)"
        return f"stage two: RSSGL trained; the map uses {self.map_source}"


@dataclass
class CrossValidation:
    """Accuracy of models trained without whole sample polygons, measured on those polygons.

    ``summary`` is core.metrics.accuracy_summary of the pooled confusion matrix (rows = reference,
    in the order of ``class_values``); ``untested`` names the classes with fewer than 2 samples,
    which were always trained on and never tested.
    """

    folds: int
    class_values: list[int]
    confusion: np.ndarray
    summary: dict[str, Any]
    untested: list[str]
    seconds: float
    candidates: list = field(default_factory=list)  # core.training.cross_validation.CandidateEstimate, one per combination
    pool: PoolSettings = PoolSettings()  # the chosen combination: RSSGL's weight, both temperatures


def describe_combination(clf, cross_validation: CrossValidation | None) -> str:
    """One sentence for the log and the report: which model the map uses and why."""
    if getattr(clf, "spectral_only", False):
        return STAGE_ONE
    if getattr(clf, "spectral_", None) is None:
        return "RSSGL"
    label = clf.pool_.label
    if cross_validation is not None and cross_validation.candidates:
        return f"{label}, chosen by cross-validation over {cross_validation.folds} folds of whole samples"
    if clf.pool_.weight <= 0.0:
        return f"{label} (without cross-validation evidence RSSGL gets no vote)"
    return f"{label} (the default; cross-validation folds choose it from the samples)"


def _cross_validate(make_classifier, cube, valid, labels, groups, folds: int, seed: int, present, names,
                    fit_kwargs, progress, log) -> CrossValidation | None:
    """Train one model per fold without that fold's sample polygons and classify them with it.

    The folds keep every sample (polygon, or patch of a label raster) whole, so each pixel is tested
    by a model that never saw any pixel of its polygon: an estimate of the accuracy in places without
    samples, unlike validation pixels carved from the training polygons (100 % where the map had
    61-81 %: docs/RESULTS.md, which also shows how far this estimate can be off). The same folds
    score RSSGL, the spectral model and their combinations (core.training.cross_validation.cross_validate_blend);
    the chosen one's accuracy is the estimate. Returns None (with a warning) when no class has 2
    samples.
    """
    from ..core.training.cross_validation import cross_validate_blend

    choice = cross_validate_blend(make_classifier, cube, valid, labels, groups, folds, seed=seed,
                                  fit_kwargs=fit_kwargs, progress=progress, log=log)
    if choice is None:
        log("warning", "Cross-validation skipped: it needs at least 2 separate samples (polygons) of a class, and "
                       "no class has them. Draw more, separate polygons per class to get an accuracy estimate. "
                       "Without that evidence the map uses the spectral model alone (RSSGL gets no vote).")
        return None
    chosen = choice.chosen
    name_of = dict(zip(present, names, strict=True))
    untested = [name_of.get(v, str(v)) for v in choice.untested]
    summary = chosen.summary
    result = CrossValidation(folds=choice.folds, class_values=list(choice.class_values), confusion=chosen.confusion,
                             summary=summary, untested=untested, seconds=choice.seconds,
                             candidates=list(choice.candidates), pool=choice.pool)
    log("info", f"Cross-validated accuracy over {choice.folds} folds of whole samples ({chosen.label}): OA "
                f"{100 * summary['oa']:.2f} % (+- {100 * summary['oa_ci95']:.2f}), kappa {100 * summary['kappa']:.2f}, "
                f"{summary['n']} pixels.")
    if untested:
        log("warning", "Not cross-validated (fewer than 2 separate samples): " + ", ".join(untested) + ".")
    return result


def train_outputs(model_out: str, report_out: str | None = None, classification_out: str | None = None,
                  confidence_out: str | None = None) -> list[Output]:
    """The outputs of a training run as io.outputs declares them (labels in the user's terms)."""
    return [Output("model file", model_out, "model"), Output("training report", report_out, "html"),
            Output("classification output", classification_out, "geotiff", styled=True),
            Output("confidence output", confidence_out, "geotiff")]


def train_inputs(raster_path: str, samples_vector: str | None = None,
                 samples_raster: str | None = None) -> dict[str, str | None]:
    """The files a training run reads, which no output may overwrite."""
    return {"raster": raster_path, "training samples": samples_vector, "label raster": samples_raster}


def train_from_files(
    raster_path: str,
    *,
    samples_vector: str | None = None,
    samples_layer: str | None = None,
    class_field: str | None = None,
    samples_raster: str | None = None,
    params,
    kernel: str | tuple[int, int, int] = "auto",
    model_out: str,
    report_out: str | None = None,
    classification_out: str | None = None,
    confidence_out: str | None = None,
    init_from=None,
    cv_folds: int = 0,
    rssgl_stage: str = "always",
    band_selection: str | None = None,
    drop_water_vapour: bool = False,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    log: LogFn | None = None,
    transaction: OutputTransaction | None = None,
) -> TrainResult:
    """Train RSSGL on a raster file and its samples; write the model and the optional outputs.

    Progress: reading 0-3 %, training 3-90 % (or 3-100 % without a classification), classifying
    the rest. The engine carves the validation split from the labels (and gives it back to
    training when too few pixels remain for validation); the report counts each class's training
    pixels from ``train_counts_`` and the rest of its pixels as validation pixels.
    ``cv_folds`` > 1 first estimates the map's accuracy by cross-validation over whole samples
    (``_cross_validate``: one more training per fold, sharing the training's progress span), then
    trains the model on all samples as usual. ``band_selection`` (core.data.band_selection syntax) and
    ``drop_water_vapour`` choose the bands trained on; bands the file flags bad or without data are
    always left out (``_usable_bands``).

    ``rssgl_stage`` (RSSGL_STAGES): "always" trains RSSGL (stage two; the cross-validation decides its vote in
    the map), "never" fits the normalisation and the spectral model only (stage one: the map in seconds, no
    cross-validation, a model file of the spectral model only), "auto" is "always" where the device is a CUDA
    GPU and "never" elsewhere; fine-tuning (``init_from``) always trains RSSGL. TrainResult.stage,
    .map_source, the log and the report say which stage made the map.

    The steps, each its own function: :func:`_read_inputs` (workflows/inputs.py: the raster's header read once,
    bands, samples, pixels), :func:`_fit` (cross-validation and the final training), :func:`_classify` (the map) and
    :func:`_write_report`.

    Outputs (io.outputs): the paths are checked before anything is read, each file is written to a
    temporary name and all are replaced at the end. A caller that writes more files of the same run
    (the dock) passes its own ``transaction``, declared with :func:`train_outputs`; this function then
    writes into it and leaves the commit to the caller.
    """
    user_log = log or no_log  # the CPU warning in _fit goes to the log only, not to TrainResult and the report
    log, warnings = collecting_log(user_log)  # every other warning about the inputs or the result

    progress = progress or (lambda percent, message: None)
    started = time.perf_counter()
    # Bad output paths (extension, folder, collisions) are refused before the user waits for a training.
    outputs = transaction or OutputTransaction(train_outputs(model_out, report_out, classification_out, confidence_out),
                                               train_inputs(raster_path, samples_vector, samples_raster))
    try:
        check_stage(rssgl_stage, init_from)
        run = _read_inputs(raster_path, samples_vector, samples_layer, class_field, samples_raster, params,
                           band_selection, drop_water_vapour, progress, should_stop, log)
        train_span = 87.0 if classification_out or confidence_out else 97.0
        if trains_rssgl(rssgl_stage, init_from, run.device):
            clf, cross_validation = _fit(run, kernel, init_from, cv_folds, train_span, progress, should_stop, log,
                                         user_log)
        else:
            clf, cross_validation = fit_stage_one(run, rssgl_stage, cv_folds, progress, should_stop, log)
        combination = describe_combination(clf, cross_validation)
        log("info", f"Model used for the map: {combination}.")
        checkpoint("saving the model", should_stop)
        clf.save(outputs.path(model_out))

        result = TrainResult(
            model_path=model_out, classifier=clf, classes=_class_rows(clf, run), history=list(clf.history_),
            device=clf.device_description_, train_seconds=float(clf.train_seconds_), selection=clf.selection_,
            best_epoch=int(clf.best_epoch_),
            # in "fit" mode the engine scored the training pixels themselves: that is no validation OA
            validation_oa=clf.validation_metrics_.get("val_oa") if clf.selection_ == "validation" else None,
            dropped_outside=int(run.samples.dropped_outside), warnings=warnings, cross_validation=cross_validation,
            stage=1 if clf.spectral_only else 2, map_source=combination,
        )
        log("info", f"Stage: {result.stage_text}.")
        if classification_out or confidence_out:
            _classify(clf, raster_path, outputs, classification_out, confidence_out, train_span, progress,
                      should_stop, log)
            result.classification_path, result.confidence_path = classification_out, confidence_out
        if report_out:
            _write_report(result, run, raster_path, samples_vector or samples_raster or "", cv_folds, combination,
                          outputs.path(report_out), should_stop)
            result.report_path = report_out
        if transaction is None:  # the caller commits its own transaction, with its own files
            checkpoint("committing", should_stop)
            outputs.commit()
            log("info", f"Model written to {model_out}.")
        progress(100.0, f"done in {time.perf_counter() - started:.1f} s")
        return result
    except BaseException as error:
        if transaction is None:
            outputs.discard()  # every temporary file; the files at the output paths were never touched
        if isinstance(error, (ValueError, RuntimeError)):
            outputs.raise_in_user_terms(error)  # messages name the user's paths, not the temporary files
        raise


def _fit(run: _TrainingRun, kernel, init_from, cv_folds: int, train_span: float, progress, should_stop, log,
         user_log):
    """Cross-validate (``cv_folds`` > 1), then train the model on every sample (progress 3 % to
    3 + ``train_span`` %); memory failures in the user's terms. Returns (classifier, CrossValidation or None).
    Drops ``run.cube``: the pixels are not needed after training."""
    import torch

    from ..core.network.device import cpu_count
    from ..core.prediction.memory_model import estimate_training_bytes
    from ..core.training.classifier import RssglClassifier

    info, params, device = run.info, run.params, run.device
    engine_kernel = parse_kernel(kernel, info.height, info.width)
    if init_from is None:
        log("info", f"ConvLSTM kernel: {'x'.join(map(str, engine_kernel))}.")
    if device.type == "cpu":
        user_log("warning", f"No CUDA GPU found: training on the CPU ({cpu_count()} threads) will be slow."
                 if params.device == "auto" else f"Training on the CPU ({cpu_count()} threads) as asked; it is slow.")
    progress(3.0, "training")
    if cv_folds and not 2 <= cv_folds <= MAX_CV_FOLDS:
        raise RssglError(f"Cross-validation needs 2 to {MAX_CV_FOLDS} folds (0 = none); {cv_folds} was asked.")

    # with cross-validation the final fit is one of cv_folds + 1 trainings of the same size
    final_start = 3.0 + (train_span * cv_folds / (cv_folds + 1) if cv_folds else 0.0)

    def train_progress(percent: float, message: str) -> None:
        progress(final_start + (3.0 + train_span - final_start) * percent / 100.0, message)
        if message.startswith("epoch "):
            log("info", message[0].upper() + message[1:])

    def make_classifier():
        return RssglClassifier(config_overrides={"kernel": engine_kernel}, params=params)

    clf = make_classifier()
    band_info = run.band_info()
    try:
        cross_validation = None
        if cv_folds:
            checkpoint("cross-validation", should_stop)
            cross_validation = _cross_validate(
                make_classifier, run.cube, run.valid, run.labels, run.samples.groups, cv_folds, params.seed,
                run.present, run.names, {"init_from": init_from, "should_stop": should_stop},
                lambda percent, message: progress(3.0 + (final_start - 3.0) * percent / 100.0, message), log)
        checkpoint("training", should_stop)
        clf.fit(
            run.cube, run.labels, valid=run.valid, class_names=run.names, class_colors=run.colors,
            band_info=band_info, init_from=init_from, progress=train_progress, should_stop=should_stop,
        )
        if cross_validation is not None and cross_validation.candidates:
            clf.use_pool(cross_validation.pool)
        elif cv_folds:  # asked for, impossible (one sample per class): no evidence, no vote (issue 28)
            from ..core.training.cross_validation import FALLBACK, PoolSettings

            clf.use_pool(PoolSettings(weight=FALLBACK))
    except torch.cuda.OutOfMemoryError as error:
        torch.cuda.empty_cache()
        raise RuntimeError(
            f"The GPU ran out of memory training on this {info.height} x {info.width} x {info.bands} raster "
            "(RSSGL sees the whole scene at once). Train on the CPU (device 'CPU'), or on a smaller raster "
            "or a spatial subset around the samples."
        ) from error
    except MemoryError as error:  # the host's memory (CPU training, or the data around a GPU run)
        need = estimate_training_bytes(info.bands, info.height, info.width, "cpu")
        raise RuntimeError(
            f"There is not enough memory to train on this {info.height} x {info.width} x {info.bands} raster"
            f"{' on the CPU' if device.type == 'cpu' else ''} (RSSGL sees the whole scene at once; about "
            f"{need / 2**30:.1f} GiB needed). Close other programs, or train on a smaller raster or a spatial "
            "subset around the samples."
        ) from error
    run.cube = None
    log("info", f"Trained on {clf.device_description_} in {clf.train_seconds_:.1f} s "
                f"({len(clf.history_)} epochs, kept epoch {clf.best_epoch_}; input: {clf.training_input_}).")
    if clf.selection_note_:
        log("warning", f"Model selection: {clf.selection_note_}.")
    return clf, cross_validation


def _classify(clf, raster_path: str, outputs: OutputTransaction, classification_out, confidence_out,
              train_span: float, progress, should_stop, log) -> None:
    """The map and its confidence, written to the transaction's temporary names (progress after training)."""
    from ..io.classify_raster import ClassifyOutputs, classify_raster

    def classify_progress(percent: float, message: str) -> None:
        progress(3.0 + train_span + (97.0 - train_span) * percent / 100.0, message)

    checkpoint("classifying", should_stop)
    classify_raster(clf, raster_path, ClassifyOutputs(classification_out and outputs.path(classification_out),
                                                      confidence_out and outputs.path(confidence_out)),
                    progress=classify_progress, should_stop=should_stop, log=log)


def _class_rows(clf, run: _TrainingRun) -> list[ClassRow]:
    """Pixels per class the engine trained on; in validation mode the rest of each class validated."""
    trained = [int(n) for n in clf.train_counts_]
    validating = clf.selection_ == "validation"
    return [
        ClassRow(value=v, name=n, color=tuple(c[:3]), training_pixels=t,
                 validation_pixels=pixels - t if validating else 0)
        for v, n, c, t, pixels in zip(run.present, clf.class_names_, clf.class_colors_, trained, run.pixel_counts,
                                      strict=True)
    ]


def _write_report(result: TrainResult, run: _TrainingRun, raster_path: str, samples_path: str, cv_folds: int,
                  combination: str, path: str, should_stop) -> None:
    """The training report (HTML) at ``path``, the transaction's temporary name."""
    clf, params, info = result.classifier, run.params, run.info
    parameters = {
        "iterations": params.iterations, "learning rate": params.lr, "ConvLSTM kernel":
        "x".join(map(str, clf.config_.kernel)) if clf.config_ is not None else "none (RSSGL not trained)", "statistical-loss weight": params.stat_loss_weight,
        "validation share": params.validation_share, "seed": params.seed, "device asked": params.device,
        "early-stopping patience (epochs)": params.patience_epochs,
        "iterations per epoch": params.epoch_iterations, "pixels per class per iteration":
        params.per_class_batch, "fine-tuned from": getattr(clf, "fine_tuned_from_", None) or "no",
        "cross-validation folds": cv_folds or "none", "training input": clf.training_input_,
    }
    notes = list(result.warnings)  # samples (NULLs, outside, conflicts, empty classes), nodata, selection
    report = TrainingReport(
        raster=raster_path, samples=samples_path, model_path=result.model_path,
        classes=result.classes, history=result.history, parameters=parameters, device=result.device,
        train_seconds=result.train_seconds, selection=result.selection,
        best_epoch=result.best_epoch if result.stage == 2 else None,
        raster_shape=(info.bands, info.height, info.width), notes=notes,
        cross_validation=result.cross_validation, combination=combination, stage=result.stage_text,
    )
    checkpoint("writing the report", should_stop)
    atomic_write_text(path, render_training_report(report))
