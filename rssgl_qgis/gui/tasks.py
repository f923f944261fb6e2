"""The dock's background job: train, classify, find where to draw next, in a QgsTask.

Thread split (as QGIS requires and Deepness does): ``run()`` executes in a worker thread and only
computes on files: it calls the shared workflow (rssgl_qgis.workflows.train.train_from_files), classifies
with rssgl_qgis.io.classify_raster (class map, confidence and per-class probabilities) and ranks the
least confident regions (rssgl_qgis.io.uncertainty). It never touches widgets, ``iface`` or
QgsProject; it stores a :class:`TrainOutcome` (success, failed or canceled, never an escaping
exception) and returns a bool. ``finished()`` runs in the GUI thread and emits ``completed`` with
that outcome; the dock adds the layers there.

Outputs follow io.outputs' one rule, as in Processing: the task declares every file of the run (model,
report, class map, confidence, probabilities, where-to-draw-next regions), writes them to temporary
names and replaces them together at the end; a failed or cancelled run leaves the run folder as it
was (the samples the dock wrote) and no temporary file.

Live log lines are emitted from the worker thread through ``log_message``; Qt queues them to the
dock, which lives in the GUI thread, so the dock can append them to its log widget safely.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qgis.core import Qgis, QgsMessageLog, QgsTask
from qgis.PyQt.QtCore import QCoreApplication, pyqtSignal

if TYPE_CHECKING:
    from ..core.training.classifier import RssglClassifier, TrainingParams
    from ..io.classify_raster import ClassifyOutputs
    from ..io.outputs import OutputTransaction
    from ..io.uncertainty import RegionSearch
    from ..workflows.train import TrainResult

__all__ = ["TrainOutcome", "TrainRequest", "RssglTrainTask", "fine_tune_comparison"]

LOG_TAG = "RSSGL"


@dataclass
class TrainRequest:
    """Everything the task needs, as plain values collected by the dock in the GUI thread."""

    raster_path: str
    samples_path: str  # a GeoPackage snapshot of the training layer, written by the dock
    samples_layer: str
    class_field: str
    run_folder: str
    iterations: int = 600
    device: str = "auto"
    class_names: dict[int, str] = field(default_factory=dict)  # names the user gave in the dock
    class_colors: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    init_from: str | None = None  # model file to fine-tune from ("Continue from previous model")
    max_regions: int = 10
    cv_folds: int = 3  # cross-validation over whole polygons before the final training (0 = none)
    params_overrides: dict[str, Any] = field(default_factory=dict)  # other TrainingParams fields
    band_selection: str = ""  # core.data.band_selection syntax ("" = every band)
    drop_water_vapour: bool = False
    #: workflows.train.RSSGL_STAGES: "never" = stage one (the spectral model's map, seconds), "always" = stage
    #: two (RSSGL trained, the cross-validation decides its vote); the dock runs one, then the other (issue 29)
    rssgl_stage: str = "always"


@dataclass
class TrainOutcome:
    """What ``run()`` produced; ``status`` is "success", "failed" or "canceled"."""

    status: str
    request: TrainRequest
    message: str = ""
    details: str = ""  # traceback for the log panel
    model_path: str | None = None
    report_path: str | None = None
    classification_path: str | None = None
    confidence_path: str | None = None
    probabilities_path: str | None = None
    guidance_path: str | None = None
    class_values: list[int] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    class_colors: list[tuple[int, int, int]] = field(default_factory=list)
    validation_oa: float | None = None
    device: str = ""
    epochs: int = 0
    best_epoch: int = 0
    seconds_to_best: float = 0.0
    train_seconds: float = 0.0
    total_seconds: float = 0.0
    fine_tuned: bool = False
    regions: list = field(default_factory=list)  # io.uncertainty.UncertainRegion, rank order
    cv_folds: int = 0  # folds actually run (0: none, or skipped for lack of separate polygons)
    cv_oa: float | None = None  # cross-validated overall accuracy (0-1) and its 95 % half-width
    cv_oa_ci95: float | None = None
    stage: int = 0  # 1: the spectral model only; 2: RSSGL trained (workflows TrainResult.stage)
    map_source: str = ""  # which model made the map, in the workflow's words
    replaces_stage_one: bool = False  # TrainResult.replaces_stage_one: the cross-validation gave RSSGL a vote
    rssgl_weight: float | None = None  # RSSGL's weight in the map's pool (None: no cross-validation candidates)


def fine_tune_comparison(fine: TrainOutcome, full: TrainOutcome | None) -> str | None:
    """Translated sentence comparing a fine-tuning run to the last full training (None without both).

    "Time to best" (the sum of the epochs' seconds up to the kept epoch) is the fair measure: both
    runs stop only after the early-stopping patience, which costs the same number of epochs.
    """
    if not fine.fine_tuned or full is None or full.fine_tuned or fine.seconds_to_best <= 0:
        return None
    speedup = full.seconds_to_best / fine.seconds_to_best
    text = QCoreApplication.translate("RssglTrainTask", "Fine-tuning reached its best model after {0} epoch(s) / {1:.1f} s; the last full training needed {2} epoch(s) / {3:.1f} s: {4:.1f}x faster (whole runs {5:.1f} s vs {6:.1f} s).")  # fmt: skip
    return text.format(
        fine.best_epoch, fine.seconds_to_best, full.best_epoch, full.seconds_to_best, speedup,
        fine.train_seconds, full.train_seconds,
    )


class RssglTrainTask(QgsTask):
    """Train + classify + guidance in the background; see the module docstring for the thread rules."""

    log_message = pyqtSignal(str, str)  # level ("info" | "warning"), message
    completed = pyqtSignal(object)  # TrainOutcome, emitted from finished() in the GUI thread

    #: Share of the progress bar for each stage: training, classification, guidance.
    TRAIN_SHARE, CLASSIFY_SHARE = 80.0, 17.0

    def __init__(self, request: TrainRequest, description: str = "RSSGL: train and classify") -> None:
        super().__init__(description, QgsTask.Flag.CanCancel)
        self.request = request
        self.outcome = TrainOutcome("failed", request, message="The task did not run.")

    # ---------------------------------------------------------------- worker thread
    def run(self) -> bool:
        """Compute everything on files; store the outcome; True only on success."""
        started = time.perf_counter()
        try:
            self.outcome = self._work()
        except Exception as exc:  # every failure becomes an outcome, never an escaping exception
            from ..core.errors import Cancelled

            if isinstance(exc, Cancelled) or self.isCanceled():
                self.outcome = TrainOutcome("canceled", self.request, message="Training was canceled.")
                with contextlib.suppress(OSError):  # a cancelled stage two leaves no empty folder behind
                    os.rmdir(self.request.run_folder)
            else:
                details = traceback.format_exc()
                QgsMessageLog.logMessage(details, LOG_TAG, Qgis.MessageLevel.Critical)
                self.outcome = TrainOutcome("failed", self.request, message=str(exc) or type(exc).__name__,
                                            details=details)
        self.outcome.total_seconds = time.perf_counter() - started
        return self.outcome.status == "success"

    def _log(self, level: str, message: str) -> None:
        """Workflow log callback: to the dock (queued signal) and QGIS's log panel (thread-safe)."""
        self.log_message.emit(level, message)
        QgsMessageLog.logMessage(message, LOG_TAG, Qgis.MessageLevel.Warning if level == "warning" else Qgis.MessageLevel.Info)

    def _stage_progress(self, start: float, span: float):
        def progress(percent: float, _message: str) -> None:
            self.setProgress(min(100.0, start + span * max(0.0, min(100.0, percent)) / 100.0))

        return progress

    def _work(self) -> TrainOutcome:
        from ..core.training.classifier import RssglClassifier, TrainingParams
        from ..io.classify_raster import ClassifyOutputs
        from ..io.outputs import Output, OutputTransaction
        from ..workflows.train import train_inputs, train_outputs

        req = self.request
        os.makedirs(req.run_folder, exist_ok=True)

        def path(name: str) -> str:
            return os.path.join(req.run_folder, name)

        params = TrainingParams(iterations=int(req.iterations), device=req.device, **req.params_overrides)
        init = None
        if req.init_from:
            self._log("info", QCoreApplication.translate("RssglTrainTask", "Fine-tuning from {0}.").format(req.init_from))
            init = RssglClassifier.load(req.init_from, device=req.device)

        final = ClassifyOutputs(path("classification.tif"), path("confidence.tif"), path("probabilities.tif"))
        guidance = path("where_to_draw_next.gpkg")
        declared = train_outputs(path("model.rssgl"), path("training_report.html")) + [
            Output("classification output", final.classification, "geotiff", styled=True),
            Output("confidence output", final.confidence, "geotiff"),
            Output("class probabilities output", final.probabilities, "geotiff"),
            Output("where-to-draw-next layer", guidance, "gpkg")]
        with OutputTransaction(declared, train_inputs(req.raster_path, req.samples_path)) as outputs:
            try:
                return self._train_and_classify(req, init, params, outputs, final, guidance)
            except (ValueError, RuntimeError) as error:
                outputs.raise_in_user_terms(error)  # messages name the run's files, not temporary ones

    def _train(self, req: TrainRequest, init: RssglClassifier | None, params: TrainingParams,
               outputs: OutputTransaction) -> TrainResult:
        """The training stage (workflows.train.train_from_files): model and report written into ``outputs``,
        on the first TRAIN_SHARE of the progress bar."""
        from ..workflows.train import train_from_files

        return train_from_files(
            req.raster_path,
            samples_vector=req.samples_path,
            samples_layer=req.samples_layer,
            class_field=req.class_field,
            params=params,
            model_out=os.path.join(req.run_folder, "model.rssgl"),
            report_out=os.path.join(req.run_folder, "training_report.html"),
            init_from=init,
            cv_folds=int(req.cv_folds),
            rssgl_stage=req.rssgl_stage,
            band_selection=req.band_selection or None,
            drop_water_vapour=bool(req.drop_water_vapour),
            progress=self._stage_progress(0.0, self.TRAIN_SHARE),
            should_stop=self.isCanceled,
            log=self._log,
            transaction=outputs,
        )

    def _classify(self, clf: RssglClassifier, req: TrainRequest, outputs: OutputTransaction,
                  final: ClassifyOutputs) -> ClassifyOutputs:
        """The classification stage: class map, confidence and probabilities written to ``outputs``'
        temporary paths (returned), on the next CLASSIFY_SHARE of the progress bar."""
        from ..io.classify_raster import ClassifyOutputs, classify_raster

        written = ClassifyOutputs(*(outputs.path(p) for p in (final.classification, final.confidence,
                                                                final.probabilities)))
        self._log("info", QCoreApplication.translate("RssglTrainTask", "Classifying the whole raster."))
        classify_raster(
            clf,
            req.raster_path,
            written,
            progress=self._stage_progress(self.TRAIN_SHARE, self.CLASSIFY_SHARE),
            should_stop=self.isCanceled,
            log=self._log,
        )
        return written

    def _log_draw_next(self, search: RegionSearch, names: dict[int, str]) -> None:
        """The three most useful places for new samples, in the log the user reads."""
        for region in search.regions[:3]:
            line = QCoreApplication.translate("RssglTrainTask", "Draw next #{0}: {1} vs {2} (mean confidence {3:.2f}, {4} px).")  # fmt: skip
            self._log("info", line.format(region.rank, names[region.first_class], names[region.second_class],
                                          region.mean_confidence, region.pixels))

    @staticmethod
    def _success(req: TrainRequest, result: TrainResult, clf: RssglClassifier, values: list[int],
                 final: ClassifyOutputs, guidance: str, init: RssglClassifier | None,
                 search: RegionSearch) -> TrainOutcome:
        """The outcome of a completed run: the run's files (final paths), its classes and training figures."""
        history = list(result.history)
        best = max(1, int(result.best_epoch))
        cv = result.cross_validation
        return TrainOutcome(
            "success",
            req,
            model_path=result.model_path,
            report_path=result.report_path,
            classification_path=final.classification,
            confidence_path=final.confidence,
            probabilities_path=final.probabilities,
            guidance_path=guidance,
            class_values=values,
            class_names=list(clf.class_names_),
            class_colors=[tuple(c) for c in clf.class_colors_],
            validation_oa=result.validation_oa,
            device=result.device,
            epochs=len(history),
            best_epoch=int(result.best_epoch),
            seconds_to_best=float(sum(h.get("seconds", 0.0) for h in history[:best])),
            train_seconds=float(result.train_seconds),
            fine_tuned=init is not None,
            regions=list(search.regions),
            cv_folds=cv.folds if cv else 0,
            cv_oa=float(cv.summary["oa"]) if cv else None,
            cv_oa_ci95=float(cv.summary["oa_ci95"]) if cv else None,
            stage=int(result.stage),
            map_source=result.map_source,
            replaces_stage_one=bool(result.replaces_stage_one),
            rssgl_weight=float(cv.pool.weight) if cv and cv.candidates else None,
        )

    def _train_and_classify(self, req: TrainRequest, init, params, outputs, final, guidance) -> TrainOutcome:
        """The run's steps, every file written into ``outputs`` (an io.outputs.OutputTransaction) and
        committed at the end."""
        from ..io.outputs import checkpoint
        from ..io.uncertainty import least_confident_regions_from_files

        result = self._train(req, init, params, outputs)
        clf = result.classifier
        values = [int(v) for v in clf.classes_]
        # The dock's names and colours are what the user sees in the legend: put them in the model
        # file too, so the class map written next (and any later Processing run) carries them.
        clf.class_names_ = [req.class_names.get(v, name) for v, name in zip(values, clf.class_names_, strict=True)]
        clf.class_colors_ = [
            tuple(req.class_colors.get(v, color)) for v, color in zip(values, clf.class_colors_, strict=True)
        ]
        checkpoint("saving the model", self.isCanceled)
        clf.save(outputs.path(result.model_path))
        checkpoint("classifying", self.isCanceled)

        written = self._classify(clf, req, outputs, final)
        checkpoint("finding where to draw next", self.isCanceled)

        names = dict(zip(values, clf.class_names_, strict=True))
        search = least_confident_regions_from_files(
            written.confidence, written.probabilities, values, names, outputs.path(guidance),
            max_regions=req.max_regions, samples=(req.samples_path, req.samples_layer, req.class_field),
        )
        checkpoint("committing", self.isCanceled)
        outputs.commit()  # a cancel after this point is too late: the run is done and its files are kept
        self._log_draw_next(search, names)
        self.setProgress(100.0)
        return self._success(req, result, clf, values, final, guidance, init, search)

    # ---------------------------------------------------------------- GUI thread
    def finished(self, result: bool) -> None:
        """Called by the task manager in the GUI thread: hand the outcome to the dock."""
        if not result and self.outcome.status == "success":  # defensive: keep the bool authoritative
            self.outcome.status = "failed"
        if self.isCanceled() and self.outcome.status != "success":
            self.outcome.status = "canceled"
            self.outcome.message = "Training was canceled."
        self.completed.emit(self.outcome)
