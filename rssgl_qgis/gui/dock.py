"""The RSSGL dock: pick a raster, draw classes, train in the background, look, draw more, retrain.

The dock collects input and shows results; it never computes. Training runs in
:class:`~rssgl_qgis.gui.tasks.RssglTrainTask` on QGIS's task manager; the dock keeps a reference to
the running task, feeds its progress bar and live log from the task's signals (queued from the
worker thread) and adds the result layers when the task reports back in the GUI thread. A run has two
stages (issue 29: the spectral model's map in seconds, then RSSGL in the background); dock_runs.py holds
the runs, their outcomes and the summary.
"""

from __future__ import annotations

import datetime
import os

from qgis.core import (
    Qgis,
    QgsMessageLog,
    QgsProject,
    QgsProviderRegistry,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.gui import QgsDockWidget
from qgis.PyQt.QtCore import QDir
from qgis.PyQt.QtGui import QColor, QGuiApplication, QIcon, QPixmap
from qgis.PyQt.QtWidgets import QFileDialog, QInputDialog, QListWidgetItem

from ..qgis_compat import GEOMETRY_POINT
from . import rendering, training_layer
from .dock_runs import TwoStageRuns
from .dock_ui import build_dock_ui
from .settings import Setting
from .status import TorchStatus, TorchStatusProbe
from .tasks import LOG_TAG, TrainRequest
from .training_layer import CLASS_ID_FIELD, ClassEntry

__all__ = ["RssglDockWidget"]


class RssglDockWidget(QgsDockWidget, TwoStageRuns):
    """Dock widget of the desktop workflow (see the module docstring)."""

    def __init__(self, iface, parent=None) -> None:
        super().__init__(parent)
        self.iface = iface
        self.setObjectName("RssglDockWidget")
        self.setWindowTitle(self.tr("RSSGL classification"))
        self._init_runs()  # the runs in two stages (dock_runs.py)
        self.torch_status: TorchStatus | None = None
        self.result_layer_ids: list[str] = []
        self.run_count = 0
        self._samples_layer: QgsVectorLayer | None = None
        self._classes: list[ClassEntry] = []
        self._applying_style = False
        build_dock_ui(self)
        self._update_buttons()
        self._on_raster_changed(self.raster_combo.currentLayer())
        self._load_settings()
        self._on_samples_layer_changed(self.samples_combo.currentLayer())
        self.status_probe = TorchStatusProbe(self)
        self.status_probe.ready.connect(self._show_torch_status)
        self.status_probe.start()

    # ================================================================= settings
    def _load_settings(self) -> None:
        self.iterations_spin.setValue(Setting.ITERATIONS.read())
        index = self.device_combo.findData(Setting.DEVICE.read())
        self.device_combo.setCurrentIndex(max(0, index))
        self.cv_combo.setCurrentIndex(max(0, self.cv_combo.findData(Setting.CV_FOLDS.read())))
        self.keep_check.setChecked(Setting.KEEP_PREVIOUS.read())
        self.continue_check.setChecked(Setting.CONTINUE_FROM_PREVIOUS.read())
        self.rssgl_cpu_check.setChecked(Setting.RSSGL_ON_CPU.read())
        self.output_widget.setFilePath(Setting.OUTPUT_FOLDER.read() or self._default_output_folder())

    def _save_settings(self) -> None:
        Setting.ITERATIONS.write(self.iterations_spin.value())
        Setting.DEVICE.write(self.device_combo.currentData())
        Setting.CV_FOLDS.write(int(self.cv_combo.currentData()))
        Setting.KEEP_PREVIOUS.write(self.keep_check.isChecked())
        Setting.CONTINUE_FROM_PREVIOUS.write(self.continue_check.isChecked())
        Setting.RSSGL_ON_CPU.write(self.rssgl_cpu_check.isChecked())
        Setting.OUTPUT_FOLDER.write(self.output_widget.filePath())

    @staticmethod
    def _default_output_folder() -> str:
        home = QgsProject.instance().homePath()
        return os.path.join(home or QDir.homePath(), "rssgl_runs")

    # ================================================================= torch status and installer
    def _show_torch_status(self, status: TorchStatus) -> None:
        self.torch_status = status
        self.status_label.setText(status.line())
        self.install_button.setVisible(not status.usable)
        if not status.usable:
            self.status_label.setStyleSheet("color: #b00020;")
        elif not status.cuda:
            self.status_label.setStyleSheet("color: #8a6d00;")
        else:
            self.status_label.setStyleSheet("color: #1a7f37;")
        self._update_buttons()

    def show_installer(self):
        """Open the PyTorch installer dialog (non-modal); re-check the status when pip ends."""
        from .installer import TorchInstallerDialog

        problem = self.torch_status.line() if self.torch_status else self.tr("PyTorch is not available.")
        dialog = TorchInstallerDialog(problem, parent=self)
        dialog.installed.connect(lambda ok: ok and self.status_probe.start())
        dialog.removed.connect(self.status_probe.start)
        dialog.show()
        self._installer = dialog  # keep a reference while it is open
        return dialog

    def copy_diagnostics(self) -> str:
        """Put versions, devices, the plugin's folders and the last error on the clipboard (for bug reports)."""
        from .diagnostics import diagnostics_text

        text = diagnostics_text([("Dock status", self.torch_status.line())] if self.torch_status else None)
        QGuiApplication.clipboard().setText(text)
        self._push(self.tr("Diagnostics copied to the clipboard."), Qgis.MessageLevel.Info)
        return text

    # ================================================================= training layer and classes
    def samples_layer(self) -> QgsVectorLayer | None:
        layer = self.samples_combo.currentLayer()
        return layer if isinstance(layer, QgsVectorLayer) else None

    def class_field(self) -> str:
        return self.field_combo.currentField()

    def _on_samples_layer_changed(self, layer) -> None:
        if self._samples_layer is not None:
            try:
                self._samples_layer.rendererChanged.disconnect(self._on_renderer_changed)
                self._samples_layer.editingStarted.disconnect(self._update_buttons)
                self._samples_layer.editingStopped.disconnect(self._update_buttons)
            except (TypeError, RuntimeError):  # already disconnected or layer deleted
                pass
        self._samples_layer = layer if isinstance(layer, QgsVectorLayer) else None
        self.field_combo.setLayer(self._samples_layer)
        if self._samples_layer is not None:
            candidates = training_layer.class_field_candidates(self._samples_layer)
            if candidates:
                self.field_combo.setField(candidates[0])
            self._samples_layer.rendererChanged.connect(self._on_renderer_changed)
            self._samples_layer.editingStarted.connect(self._update_buttons)
            self._samples_layer.editingStopped.connect(self._update_buttons)
        points = self._samples_layer is not None and self._samples_layer.geometryType() == GEOMETRY_POINT
        if getattr(self, "draw_button", None) is not None:
            self.draw_button.setText(self.tr("Draw points") if points else self.tr("Draw polygon"))
        self.refresh_classes()

    def _on_renderer_changed(self) -> None:
        if not self._applying_style:  # the user edited the style in the layer properties
            self.refresh_classes()

    def refresh_classes(self) -> None:
        """Re-read the classes from the layer's style and data; keep the active class if it still exists."""
        layer, field = self.samples_layer(), self.class_field()
        active = self.active_class()
        self._classes = training_layer.read_classes(layer, field) if layer is not None and field else []
        self._fill_class_list(active.value if active else None)

    def _fill_class_list(self, active_value=None) -> None:
        self.class_list.blockSignals(True)
        self.class_list.clear()
        for entry in self._classes:
            pixmap = QPixmap(14, 14)
            pixmap.fill(entry.color)
            item = QListWidgetItem(QIcon(pixmap), f"{entry.value}  {entry.name}" if entry.name != str(entry.value)
                                   else entry.name)
            self.class_list.addItem(item)
        row = next((i for i, e in enumerate(self._classes) if e.value == active_value), 0 if self._classes else -1)
        self.class_list.setCurrentRow(row)
        self.class_list.blockSignals(False)
        self._on_active_row_changed(row)

    def active_class(self) -> ClassEntry | None:
        row = self.class_list.currentRow()
        return self._classes[row] if 0 <= row < len(self._classes) else None

    def _on_active_row_changed(self, row: int) -> None:
        entry = self._classes[row] if 0 <= row < len(self._classes) else None
        layer, field = self.samples_layer(), self.class_field()
        if layer is not None and field:
            training_layer.set_active_class(layer, field, entry)
            if self.field_combo.currentField() != field:
                # Changing default values makes the layer re-emit its fields; the combo then resets
                # to the first field. Put the user's choice back without re-reading the classes.
                self.field_combo.blockSignals(True)
                self.field_combo.setField(field)
                self.field_combo.blockSignals(False)
        self.color_button.blockSignals(True)
        self.color_button.setColor(entry.color if entry else QColor())
        self.color_button.blockSignals(False)
        if entry is None:
            self.active_label.setText(self.tr("Add a class, then draw polygons: they get the active class."))
        else:
            self.active_label.setText(self.tr("New polygons get class: {0}").format(entry.name))
        self._update_buttons()

    def _apply_style(self) -> None:
        layer = self.samples_layer()
        if layer is None or not self.class_field():
            return
        self._applying_style = True
        try:
            training_layer.apply_classes(layer, self.class_field(), self._classes)
        finally:
            self._applying_style = False
        if self.iface is not None and hasattr(self.iface, "layerTreeView") and self.iface.layerTreeView():
            self.iface.layerTreeView().refreshLayerSymbology(layer.id())

    def add_class(self, name: str, color: QColor | None = None) -> ClassEntry:
        """Add a class to the layer's style and make it the active class."""
        layer = self.samples_layer()
        if layer is None or not self.class_field():
            raise ValueError(self.tr("Choose or create a training layer first."))
        field_index = layer.fields().indexFromName(self.class_field())
        numeric = layer.fields().at(field_index).isNumeric()
        if numeric:
            value = max([int(e.value) for e in self._classes] + [0]) + 1
        else:
            value = name
            if any(e.value == value for e in self._classes):
                raise ValueError(self.tr("The class '{0}' exists already.").format(name))
        entry = ClassEntry(value, name, QColor(color) if color else training_layer.default_color(
            value if numeric else len(self._classes) + 1))
        self._classes.append(entry)
        self._apply_style()
        self._fill_class_list(entry.value)
        return entry

    def rename_class(self, row: int, name: str) -> None:
        """Rename a class in the legend and, for class_id layers, in the class_name of its polygons."""
        entry = self._classes[row]
        entry.name = name
        layer = self.samples_layer()
        if isinstance(entry.value, int) and layer is not None:
            training_layer.rename_in_features(layer, self.class_field(), entry.value, name)
        self._apply_style()
        self._fill_class_list(entry.value)

    def set_class_color(self, row: int, color: QColor) -> None:
        self._classes[row].color = QColor(color)
        self._apply_style()
        self._fill_class_list(self._classes[row].value)

    def _add_class_clicked(self) -> None:
        name, ok = QInputDialog.getText(self, self.tr("Add class"), self.tr("Class name:"))
        if ok and name.strip():
            try:
                self.add_class(name.strip())
            except ValueError as exc:
                self._push(str(exc), Qgis.MessageLevel.Warning)

    def _rename_clicked(self) -> None:
        entry = self.active_class()
        if entry is None:
            return
        if not isinstance(entry.value, int):
            self._push(self.tr("Classes of a text field are named by their value; edit the polygons instead."),
                       Qgis.MessageLevel.Info)
            return
        name, ok = QInputDialog.getText(self, self.tr("Rename class"), self.tr("Class name:"), text=entry.name)
        if ok and name.strip():
            self.rename_class(self.class_list.currentRow(), name.strip())

    def _color_changed(self, color: QColor) -> None:
        row = self.class_list.currentRow()
        if 0 <= row < len(self._classes) and color.isValid() and color != self._classes[row].color:
            self.set_class_color(row, color)

    def default_training_layer_path(self) -> str | None:
        """<project folder>/<raster name>_training.gpkg, or None when the project was never saved."""
        home = QgsProject.instance().homePath()
        raster = self.raster_combo.currentLayer()
        if not home or raster is None:
            return None
        base = os.path.join(home, f"{_safe_name(raster.name())}_training")
        path, n = base + ".gpkg", 1
        while os.path.exists(path):
            n += 1
            path = f"{base}_{n}.gpkg"
        return path

    def _new_layer_clicked(self) -> None:
        if self.raster_combo.currentLayer() is None:
            self._push(self.tr("Open or choose the raster first: the training layer uses its CRS."), Qgis.MessageLevel.Warning)
            return
        start = self.default_training_layer_path() or os.path.join(
            os.path.dirname(Setting.LAST_TRAINING_LAYER.read()) or QDir.homePath(), "training.gpkg")
        path, _ = QFileDialog.getSaveFileName(self, self.tr("New training layer"), start,
                                              self.tr("GeoPackage (*.gpkg)"))
        if path:
            if not path.lower().endswith(".gpkg"):
                path += ".gpkg"
            try:
                self.create_training_layer(path)
            except (ValueError, RuntimeError) as exc:
                self._push(str(exc), Qgis.MessageLevel.Critical)

    def create_training_layer(self, path: str | None = None) -> QgsVectorLayer:
        """Create the GeoPackage (default: next to the project), add it to the project and select it."""
        raster = self.raster_combo.currentLayer()
        if raster is None:
            raise ValueError(self.tr("Open or choose the raster first: the training layer uses its CRS."))
        path = path or self.default_training_layer_path()
        if not path:
            raise ValueError(self.tr("Save the project first, or choose where to write the training layer."))
        name = self.tr("{0} training polygons").format(raster.name())
        layer = training_layer.create_training_layer(path, raster.crs(), name)
        QgsProject.instance().addMapLayer(layer)
        Setting.LAST_TRAINING_LAYER.write(path)
        self.samples_combo.setLayer(layer)
        self.field_combo.setField(CLASS_ID_FIELD)
        return layer

    def toggle_editing(self) -> None:
        """Start or stop editing the training layer (QGIS's own action when available: it asks to save)."""
        layer = self.samples_layer()
        if layer is None:
            return
        action = self._iface_action("actionToggleEditing")
        if action is not None:
            self.iface.setActiveLayer(layer)
            action.trigger()
        elif layer.isEditable():
            layer.commitChanges()
        else:
            layer.startEditing()
        self._update_buttons()

    def start_drawing(self) -> None:
        """Make the training layer editable and activate QGIS's add-feature tool (polygons or points)."""
        layer = self.samples_layer()
        if layer is None:
            return
        if self.iface is not None and hasattr(self.iface, "setActiveLayer"):
            self.iface.setActiveLayer(layer)
        if not layer.isEditable():
            layer.startEditing()
        action = self._iface_action("actionAddFeature")
        if action is not None:
            action.trigger()
        self._update_buttons()

    def _iface_action(self, name: str):
        getter = getattr(self.iface, name, None) if self.iface is not None else None
        try:
            return getter() if callable(getter) else None
        except (AttributeError, RuntimeError, NotImplementedError):
            return None

    # ================================================================= training
    def _update_buttons(self, *_args) -> None:
        running = self.task is not None  # stage one; a running stage two is cancelled by a new run
        layer = self.samples_layer()
        torch_ok = self.torch_status is None or self.torch_status.usable
        self.train_button.setEnabled(not running and torch_ok)
        self.cancel_button.setEnabled(running or self.stage_two_task is not None)
        self.refine_button.setEnabled(not running and self.stage_two_task is None
                                      and self._stage_two_pending is not None)
        self.rename_class_button.setEnabled(self.active_class() is not None)
        self.color_button.setEnabled(self.active_class() is not None)
        self.add_class_button.setEnabled(layer is not None)
        self.edit_button.setEnabled(layer is not None)
        self.draw_button.setEnabled(layer is not None)
        if layer is not None:
            self.edit_button.setText(self.tr("Stop editing") if layer.isEditable() else self.tr("Start editing"))

    def _on_raster_changed(self, layer) -> None:
        """A hyperspectral raster with known wavelengths is shown in true colour (if still default-styled)."""
        bands = rendering.apply_true_colour(layer)
        if bands:
            self.append_log("info", self.tr("{0} shown in true colour: bands {1}, {2}, {3} as red, green, blue.").format(
                layer.name(), *bands))

    def _check_inputs(self) -> tuple[QgsRasterLayer, QgsVectorLayer, str]:
        raster = self.raster_combo.currentLayer()
        if not isinstance(raster, QgsRasterLayer) or raster.providerType() != "gdal":
            raise ValueError(self.tr("Choose a raster layer that is a file (GeoTIFF, ENVI, ...) in 'Raster'."))
        if self.bands_edit.text().strip() or self.water_vapour_check.isChecked():
            from ..core.data.band_selection import select_bands
            from ..io.raster import raster_info

            info = raster_info(self._raster_path(raster))
            select_bands(self.bands_edit.text(), info.bands, info.wavelengths,  # a bad selection fails before a run
                         self.water_vapour_check.isChecked())
        layer = self.samples_layer()
        if layer is None:
            raise ValueError(self.tr("Choose a training layer, or create one with 'New training layer...'."))
        field = self.class_field()
        if not field:
            raise ValueError(self.tr("Choose the field that holds the classes in 'Class field'."))
        if layer.featureCount() == 0:
            raise ValueError(self.tr("The training layer has no polygons yet: draw a few per class."))
        return raster, layer, field

    def build_request(self) -> TrainRequest:
        """Collect the inputs (GUI thread) and snapshot the training polygons into the run folder."""
        raster, layer, field = self._check_inputs()
        folder = self.output_widget.filePath() or self._default_output_folder()
        stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
        run_folder = os.path.join(folder, f"run_{stamp}")
        n = 1
        while os.path.exists(run_folder):
            n += 1
            run_folder = os.path.join(folder, f"run_{stamp}_{n}")
        os.makedirs(run_folder)
        samples_path = os.path.join(run_folder, "training_polygons.gpkg")
        training_layer.snapshot_layer(layer, samples_path)
        init_from = None
        if self.continue_check.isChecked():
            # the last model with RSSGL (stage two): a stage-one model has no network to fine-tune
            previous = self.last_rssgl_outcome.model_path if self.last_rssgl_outcome else Setting.LAST_MODEL.read()
            if previous and os.path.exists(previous):
                init_from = previous
            else:
                self.append_log("warning", self.tr("No previous model found: training from scratch."))
        numeric = {e.value: e for e in self._classes if isinstance(e.value, int)}
        return TrainRequest(
            raster_path=self._raster_path(raster),
            samples_path=samples_path,
            samples_layer="training_polygons",
            class_field=field,
            run_folder=run_folder,
            iterations=self.iterations_spin.value(),
            device=self.device_combo.currentData(),
            class_names={v: e.name for v, e in numeric.items()},
            class_colors={v: (e.color.red(), e.color.green(), e.color.blue()) for v, e in numeric.items()},
            init_from=init_from,
            max_regions=Setting.REGIONS.read(),
            cv_folds=int(self.cv_combo.currentData()),
            band_selection=self.bands_edit.text().strip(),
            drop_water_vapour=self.water_vapour_check.isChecked(),
        )

    @staticmethod
    def _raster_path(raster: QgsRasterLayer) -> str:
        return QgsProviderRegistry.instance().decodeUri("gdal", raster.source()).get("path") or raster.source()

    def append_log(self, level: str, message: str) -> None:
        """Append one line to the live log (slot of the task's queued log signal)."""
        stamp = datetime.datetime.now().strftime("%H:%M:%S")
        prefix = self.tr("warning: ") if level == "warning" else ""
        self.log_view.appendPlainText(f"{stamp}  {prefix}{message}")

    # ================================================================= helpers
    def _push(self, message: str, level=Qgis.MessageLevel.Info) -> None:
        """One line in the message bar (when there is one) and in the QGIS log panel."""
        QgsMessageLog.logMessage(message, LOG_TAG, level if level != Qgis.MessageLevel.Success else Qgis.MessageLevel.Info)
        bar = self.iface.messageBar() if self.iface is not None and hasattr(self.iface, "messageBar") else None
        if bar is not None:
            bar.pushMessage("RSSGL", message, level, 8 if level in (Qgis.MessageLevel.Info, Qgis.MessageLevel.Success) else 0)

    def shutdown(self) -> None:
        """Cancel running tasks (plugin unload): they must not call back into a deleted dock."""
        self.shutdown_runs()
        try:  # an unloaded dock no longer restyles layers the project adds
            self.raster_combo.layerChanged.disconnect(self._on_raster_changed)
        except (RuntimeError, TypeError):
            pass


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name).strip("_") or "raster"
