"""The dock's runs in two stages (issue 29): the spectral model's map in seconds, then RSSGL in the background.

"Train and classify" starts stage one, an :class:`~rssgl_qgis.gui.tasks.RssglTrainTask` with
``rssgl_stage="never"``: the normalisation and the spectral model, its map, confidence and where-to-draw-next,
in the run folder. Its layers are added as soon as it ends. Stage two then trains RSSGL (``rssgl_stage="always"``,
with the dock's cross-validation) on the same snapshot of the polygons, into the run folder's ``stage_two``
sub-folder, so a cancelled or failed stage two never touches stage one's files. It starts at once where the
device is a CUDA GPU; on a CPU only when the user asks (the "Also train RSSGL on the CPU" box, or "Refine with
RSSGL"). Its map replaces stage one's only where the cross-validation gave RSSGL a vote
(TrainOutcome.replaces_stage_one); otherwise stage one's map stays and the log and the summary say why.

While stage two runs, the user looks at stage one's layers and draws again; "Train and classify" cancels the
running stage two (its transaction leaves no file behind) and starts over. Cancelled tasks stay referenced until
their finished() has run. Thread rules as in tasks.py: the tasks compute on files, this mixin touches layers and
widgets in the GUI thread only. The strings keep the dock's translation context ("RssglDockWidget").
"""

from __future__ import annotations

import dataclasses
import html
import os

from qgis.core import Qgis, QgsApplication, QgsProject
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QColor

from . import results
from .settings import Setting
from .suggestions import suggestion_lines
from .tasks import RssglTrainTask, TrainOutcome, TrainRequest, fine_tune_comparison

__all__ = ["STAGE_TWO_FOLDER", "TwoStageRuns", "stage_two_request"]

#: Stage two's files, inside the run folder (stage one's stay where they are).
STAGE_TWO_FOLDER = "stage_two"


def _tr(text: str) -> str:
    return QCoreApplication.translate("RssglDockWidget", text)


def stage_two_request(request: TrainRequest, init_from: str | None) -> TrainRequest:
    """Stage two of a run: the same inputs and polygon snapshot, RSSGL trained, files in ``stage_two``."""
    return dataclasses.replace(request, rssgl_stage="always", init_from=init_from,
                               run_folder=os.path.join(request.run_folder, STAGE_TWO_FOLDER))


def stage_two_verdict(outcome: TrainOutcome) -> str:
    """Why stage two's map replaces stage one's, or why it does not, in words."""
    if outcome.replaces_stage_one:
        return _tr("Stage two's map replaces stage one's: in the cross-validation RSSGL helped (its weight in the map: {0:.2f}).").format(outcome.rssgl_weight or 0.0)  # fmt: skip
    if outcome.request.cv_folds == 0:
        return _tr("Stage one's map stays: without a cross-validation nothing shows that RSSGL helps. Choose 3 or 5 folds under 'Accuracy estimate' to let it compete.")  # fmt: skip
    if outcome.rssgl_weight is None:
        return _tr("Stage one's map stays: the cross-validation could not run (it needs 2 or more separate polygons per class), so nothing shows that RSSGL helps.")  # fmt: skip
    return _tr("Stage one's map stays: in the cross-validation RSSGL did not beat the spectral model alone.")


def _training_line(outcome: TrainOutcome) -> str:
    """The summary's first line: what was trained, on what, how long."""
    if outcome.stage == 1:
        return _tr("<b>Stage one</b>: the spectral model's map ({0} classes, {1:.1f} s on {2}); RSSGL was not trained.").format(  # fmt: skip
            len(outcome.class_values), outcome.train_seconds, outcome.device)
    if outcome.validation_oa is not None:
        return _tr("Validation OA {0} (pixels of the training polygons: optimistic), {1} classes, best epoch "
                   "{2} of {3}, {4:.1f} s on {5}.").format(
            f"{100 * outcome.validation_oa:.1f}%", len(outcome.class_values), outcome.best_epoch, outcome.epochs,
            outcome.train_seconds, outcome.device)
    # the default: every pixel of the polygons trained, none held out
    return _tr("Trained on every pixel of your samples: {0} classes, epochs trained: {1}, {2:.1f} s on {3}.").format(
        len(outcome.class_values), outcome.epochs, outcome.train_seconds, outcome.device)


def summary_html(outcome: TrainOutcome, stage_note: str = "", reports: tuple[str, ...] = ()) -> str:
    """The Results box: the shown map's training, accuracy, which stage made it, where to draw next, reports."""
    lines = [_training_line(outcome)]
    if outcome.cv_oa is not None:
        lines.append(_tr("<b>Cross-validated OA {0:.1f}%</b> (+- {1:.1f}) over {2} folds of whole polygons: "
                         "the accuracy to expect where you drew nothing.").format(
            100 * outcome.cv_oa, 100 * (outcome.cv_oa_ci95 or 0.0), outcome.cv_folds))
    if stage_note:
        lines.append(html.escape(stage_note, quote=False))
    lines.extend(suggestion_lines(outcome.regions, dict(zip(outcome.class_values, outcome.class_names, strict=True))))
    for path in reports or ((outcome.report_path,) if outcome.report_path else ()):
        url = "file://" + path.replace(os.sep, "/")
        stage_two = os.path.basename(os.path.dirname(path)) == STAGE_TWO_FOLDER
        link_text = _tr("Training report (stage two)") if stage_two else _tr("Training report")
        lines.append(f'<a href="{url}">{link_text}</a>')
    return "<br>".join(lines)


class TwoStageRuns:
    """The dock's runs (mixed into RssglDockWidget; see the module docstring). Expects the dock's widgets
    (train_button, progress_bar, rssgl_cpu_check, keep_check, ...) and its helpers (_push, append_log,
    build_request, _save_settings, _update_buttons)."""

    def _init_runs(self) -> None:
        self.task: RssglTrainTask | None = None  # stage one, while it runs
        self.stage_two_task: RssglTrainTask | None = None  # stage two, while it runs
        self._alive: list[RssglTrainTask] = []  # every task until its finished() ran (cancelled ones too)
        self._stage_two_pending: TrainRequest | None = None  # the last stage one's stage two, not yet run
        self._stage_two_at_once = False
        self._stage_one_layer_ids: list[str] = []
        self._stage_note = ""
        self._stage_two_outcome: TrainOutcome | None = None  # stage two of the run shown, when it succeeded
        self.last_outcome: TrainOutcome | None = None  # the run whose map is shown
        self.last_full_outcome: TrainOutcome | None = None
        self.last_rssgl_outcome: TrainOutcome | None = None

    # ------------------------------------------------------------------ starting and cancelling
    def start_training(self, request: TrainRequest | None = None) -> RssglTrainTask | None:
        """Start stage one of a run (cancelling a running stage two); returns the task (None when inputs miss)."""
        if self.task is not None:
            return None
        if self.torch_status is not None and not self.torch_status.usable:
            self.show_installer()
            return None
        try:
            request = request or self.build_request()
        except (ValueError, RuntimeError, OSError) as exc:
            self._push(str(exc), Qgis.MessageLevel.Warning)
            return None
        if self.stage_two_task is not None:
            self.append_log("warning", _tr("A new run starts: stage two (RSSGL) of the previous run is canceled."))  # fmt: skip
            self._cancel_stage_two()
        self._save_settings()
        self.run_count += 1
        self._stage_two_pending = stage_two_request(request, request.init_from)
        self._stage_two_at_once = self._wants_stage_two(request)  # as chosen when the run starts
        first = dataclasses.replace(request, rssgl_stage="never", init_from=None)
        self.task = self._launch(first, _tr("RSSGL: train and classify"), self._on_task_completed,
                                 _tr("Stage one: %p%"))
        self._update_buttons()
        self.append_log("info", _tr("Run {0}: training on {1} ({2} iterations, device {3}).").format(
            self.run_count, os.path.basename(request.raster_path), request.iterations, request.device))
        self.append_log("info", _tr("Stage one: the spectral model's map first, in seconds."))
        return self.task

    def start_stage_two(self) -> RssglTrainTask | None:
        """Train RSSGL on the last run's inputs in the background ("Refine with RSSGL"); None if nothing to do."""
        request = self._stage_two_pending
        if request is None or self.task is not None or self.stage_two_task is not None:
            return None
        self._stage_two_pending = None
        self.stage_two_task = self._launch(request, _tr("RSSGL: refine with RSSGL"), self._on_stage_two_completed,
                                           _tr("Stage two (RSSGL): %p%"))
        self._update_buttons()
        self.append_log("info", _tr("Stage two: RSSGL trains in the background ({0} iterations, {1} cross-validation folds); look at stage one's map and draw again meanwhile.").format(  # fmt: skip
            request.iterations, request.cv_folds))
        self._stage_note = _tr("Stage two: RSSGL is training in the background; its map replaces this one only if the cross-validation shows that RSSGL helps.")  # fmt: skip
        if self.last_outcome is not None:
            self.summary_label.setText(self._summary_html(self.last_outcome))
        return self.stage_two_task

    def _launch(self, request: TrainRequest, description: str, on_completed, bar_format: str) -> RssglTrainTask:
        task = RssglTrainTask(request, description)
        task.log_message.connect(self.append_log)
        task.progressChanged.connect(lambda value, t=task: self._task_progress(t, value))
        task.completed.connect(lambda outcome, t=task: self._task_done(t, outcome, on_completed))
        self._alive.append(task)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(bar_format)
        QgsApplication.taskManager().addTask(task)
        return task

    def _task_progress(self, task: RssglTrainTask, value: float) -> None:
        if task is self.task or task is self.stage_two_task:  # a cancelled task no longer moves the bar
            self.progress_bar.setValue(int(value))

    def _task_done(self, task: RssglTrainTask, outcome: TrainOutcome, on_completed) -> None:
        """Every task ends here (GUI thread): drop its reference; only the current ones report to the dock."""
        if task in self._alive:
            self._alive.remove(task)
        if task is self.task:
            self.task = None
        elif task is self.stage_two_task:
            self.stage_two_task = None
        else:  # cancelled for a newer run: nothing of it is shown
            return
        self._update_buttons()
        on_completed(outcome)

    def _cancel_stage_two(self) -> None:
        task, self.stage_two_task = self.stage_two_task, None
        if task is not None:
            task.cancel()  # it stays in self._alive until its finished() has run
        self.progress_bar.setFormat("%p%")
        self._update_buttons()

    def cancel_training(self) -> None:
        """Cancel what runs: stage one (nothing is added) and stage two (stage one's map stays)."""
        if self.task is not None:
            self.append_log("warning", _tr("Canceling..."))
            self.task.cancel()
        if self.stage_two_task is not None:
            self.append_log("warning", _tr("Canceling stage two (RSSGL); stage one's map stays."))
            self.stage_two_task.cancel()

    def _wants_stage_two(self, request: TrainRequest) -> bool:
        """At once on a CUDA GPU; on a CPU only when the user asked for it."""
        cuda = request.device == "cuda" or (request.device == "auto" and self.torch_status is not None
                                            and self.torch_status.cuda)
        return cuda or self.rssgl_cpu_check.isChecked()

    # ------------------------------------------------------------------ outcomes (GUI thread)
    def _on_task_completed(self, outcome: TrainOutcome) -> None:
        """Stage one ended: on success add its layers, then start stage two where wanted."""
        if outcome.status == "canceled":
            self.progress_bar.setValue(0)
            self._stage_two_pending = None
            self.append_log("warning", _tr("Training was canceled; nothing was added."))
            self._push(_tr("Training was canceled."), Qgis.MessageLevel.Info)
            return
        if not self._report_failure(outcome, _tr("The last run failed: {0}")):
            self._stage_two_pending = None
            self.summary_label.setText(html.escape(self._stage_note, quote=False))
            return
        try:
            self._stage_one_layer_ids = self._add_result_layers(outcome)
        except RuntimeError as exc:
            self._push(str(exc), Qgis.MessageLevel.Critical)
            return
        self.last_outcome = outcome
        self._stage_two_outcome = None
        self._stage_note = _tr("RSSGL was not trained: on a CPU it takes minutes. Press 'Refine with RSSGL', or tick 'Also train RSSGL on the CPU (minutes)'.")  # fmt: skip
        if self._stage_two_at_once:
            self.start_stage_two()  # its note replaces the one above
        self._update_buttons()
        self.summary_label.setText(self._summary_html(outcome))
        self._push(_tr("Stage one's map added ({0:.0f} s): the spectral model's map.").format(outcome.total_seconds),
                   Qgis.MessageLevel.Success)

    def _on_stage_two_completed(self, outcome: TrainOutcome) -> None:
        """Stage two ended: its map replaces stage one's where the cross-validation gave RSSGL a vote."""
        self.progress_bar.setFormat("%p%")
        if outcome.status == "canceled":
            self._stage_note = _tr("Stage two (RSSGL) was canceled; the map is stage one's.")
            self.append_log("warning", self._stage_note)
            self._stage_two_pending = outcome.request  # "Refine with RSSGL" may start it again
            self._update_buttons()
        elif self._report_failure(outcome, _tr("Stage two (RSSGL) failed: {0}")):
            self._stage_two_succeeded(outcome)
        if self.last_outcome is not None:
            self.summary_label.setText(self._summary_html(self.last_outcome))

    def _stage_two_succeeded(self, outcome: TrainOutcome) -> None:
        self._stage_note = stage_two_verdict(outcome)
        self._stage_two_outcome = outcome
        self.append_log("info", self._stage_note)
        if outcome.replaces_stage_one:
            try:
                self._add_result_layers(outcome, replace=self._stage_one_layer_ids)
            except RuntimeError as exc:
                self._push(str(exc), Qgis.MessageLevel.Critical)
                return
            self._stage_one_layer_ids = []
            self.last_outcome = outcome
        comparison = fine_tune_comparison(outcome, self.last_full_outcome)
        if outcome.fine_tuned and comparison:
            self.append_log("info", comparison)
        if not outcome.fine_tuned:
            self.last_full_outcome = outcome
        self.last_rssgl_outcome = outcome
        Setting.LAST_MODEL.write(outcome.model_path)  # a model with RSSGL: what "Continue" fine-tunes
        self._push(self._stage_note, Qgis.MessageLevel.Success)

    def _report_failure(self, outcome: TrainOutcome, summary: str) -> bool:
        """False (after telling the user; the note in ``self._stage_note``) when the run failed; True on success."""
        if outcome.status == "success":
            return True
        from ..install.diagnostics import record_error

        record_error(outcome.details or outcome.message)
        self.append_log("warning", outcome.details or outcome.message)
        self._stage_note = summary.format(outcome.message)
        self._push(self._stage_note, Qgis.MessageLevel.Critical)
        return False

    def _summary_html(self, outcome: TrainOutcome) -> str:
        """The summary of the shown map. For the current run also the stage note, and stage two's report and
        cross-validated OA where stage one's map stayed (the cross-validation then measured the spectral model)."""
        if outcome is not self.last_outcome:
            return summary_html(outcome)
        second = self._stage_two_outcome
        if second is not None and second is not outcome and outcome.cv_oa is None and second.cv_oa is not None:
            outcome = dataclasses.replace(outcome, cv_oa=second.cv_oa, cv_oa_ci95=second.cv_oa_ci95,
                                          cv_folds=second.cv_folds)
        reports = [p for p in (outcome.report_path, second.report_path if second else None) if p]
        return summary_html(outcome, self._stage_note, tuple(dict.fromkeys(reports)))

    def _add_result_layers(self, outcome: TrainOutcome, replace: list[str] | None = None) -> list[str]:
        """Add the run's map, confidence and where-to-draw-next; ``replace``: the layers they replace (else the
        previous results, unless the user keeps them). Returns the new layers' ids."""
        project = QgsProject.instance()
        keep = self.keep_check.isChecked()
        if replace is not None or not keep:
            gone = replace if replace is not None else self.result_layer_ids
            results.remove_layers(project, gone)
            self.result_layer_ids = [lid for lid in self.result_layer_ids if lid not in gone]
        suffix = _tr(" (run {0})").format(self.run_count) if keep else ""
        colors = {e.value: e.color for e in self._classes}
        classes = [(v, n, colors.get(v, QColor(*c)))
                   for v, n, c in zip(outcome.class_values, outcome.class_names, outcome.class_colors, strict=True)]
        layers = [
            results.load_guidance(outcome.guidance_path, _tr("Where to draw next") + suffix),
            results.load_classification(outcome.classification_path, _tr("RSSGL classification") + suffix, classes),
            results.load_confidence(outcome.confidence_path, _tr("RSSGL confidence") + suffix),
        ]
        raster = self.raster_combo.currentLayer()
        results.add_to_results_group(project, layers, raster.id() if raster is not None else None)
        # The confidence map would hide the class map: show it only on demand.
        node = project.layerTreeRoot().findLayer(layers[2].id())
        if node is not None:
            node.setItemVisibilityChecked(False)
        ids = [layer.id() for layer in layers]
        self.result_layer_ids.extend(ids)
        return ids

    def shutdown_runs(self) -> None:
        """Cancel running tasks (plugin unload): they must not call back into a deleted dock."""
        for task in list(self._alive):
            try:
                task.completed.disconnect()
                task.cancel()
            except (RuntimeError, TypeError):
                pass
        self.task = self.stage_two_task = None
