"""The widgets of the RSSGL dock (gui/dock.py), built and wired to the dock's slots.

Kept apart from the dock's behaviour so each file holds one job: this one says what the dock shows,
dock.py what it does. The strings keep the dock's translation context ("RssglDockWidget"), written
out in each call because pylupdate5 reads the context from the call itself.
"""

from __future__ import annotations

from qgis.core import QgsFieldProxyModel
from qgis.gui import QgsColorButton, QgsFieldComboBox, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import QCoreApplication, Qt
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..qgis_compat import layer_filters

__all__ = ["DEVICES", "build_dock_ui"]

#: The device choices of the Training box, in the order of its combo box.
DEVICES = ("auto", "cuda", "cpu")

translate = QCoreApplication.translate


def build_dock_ui(dock: QDockWidget) -> None:
    """Create the dock's widgets as its attributes (status, image, samples, training, results boxes in a
    scroll area) and connect them to its slots."""
    content = QWidget()
    layout = QVBoxLayout(content)
    layout.setContentsMargins(6, 6, 6, 6)

    _add_status_row(dock, layout)
    _add_image_box(dock, layout)
    _add_samples_box(dock, layout)
    _add_training_box(dock, layout)
    _add_results_box(dock, layout)

    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(content)
    dock.setWidget(scroll)


def _add_status_row(dock: QDockWidget, layout: QVBoxLayout) -> None:
    """Add the PyTorch status, the installer and Copy diagnostics buttons."""
    status_row = QHBoxLayout()
    dock.status_label = QLabel(translate("RssglDockWidget", "Checking PyTorch..."))
    dock.status_label.setWordWrap(True)
    dock.install_button = QPushButton(translate("RssglDockWidget", "Install PyTorch..."))
    dock.install_button.setVisible(False)
    dock.install_button.clicked.connect(dock.show_installer)
    dock.diagnostics_button = QPushButton(translate("RssglDockWidget", "Copy diagnostics"))
    dock.diagnostics_button.setToolTip(translate("RssglDockWidget", "Put the versions of QGIS, Python, PyTorch, CUDA and the GPU, the plugin's folders and the last error on the clipboard, for a bug report."))  # fmt: skip
    dock.diagnostics_button.clicked.connect(dock.copy_diagnostics)
    # the buttons on a row of their own under the status text: side by side with it, the two buttons' width plus
    # the text's longest word was wider than a narrow dock, and the scroll area (no horizontal bar) cut them off
    layout.addWidget(dock.status_label)
    status_row.addStretch(1)
    status_row.addWidget(dock.install_button)
    status_row.addWidget(dock.diagnostics_button)
    layout.addLayout(status_row)


def _add_image_box(dock: QDockWidget, layout: QVBoxLayout) -> None:
    """Add the raster and its band selection."""
    image_box = QGroupBox(translate("RssglDockWidget", "Image"))
    image_form = QFormLayout(image_box)
    dock.raster_combo = QgsMapLayerComboBox()
    dock.raster_combo.setFilters(layer_filters("RasterLayer"))
    image_form.addRow(translate("RssglDockWidget", "Raster"), dock.raster_combo)
    # the band selection of Train RSSGL's BANDS / DROP_WATER_VAPOUR (core.data.band_selection syntax)
    dock.bands_edit = QLineEdit()
    dock.bands_edit.setPlaceholderText(translate("RssglDockWidget", "all bands; e.g. 1-129, 136-224 or drop 400-450 nm"))
    dock.bands_edit.setToolTip(translate("RssglDockWidget",
        "Bands to train on: numbers and ranges keep those bands ('1-129, 136-224'); 'drop' leaves them out "
        "('drop 130-135'); ranges ending in 'nm' select wavelengths. Bands the file flags bad or without data "
        "are always left out. Empty: all bands."))
    dock.water_vapour_check = QCheckBox(translate("RssglDockWidget", "Drop the water-vapour bands (1340-1460, 1790-1960, >2450 nm)"))
    image_form.addRow(translate("RssglDockWidget", "Bands"), dock.bands_edit)
    image_form.addRow(dock.water_vapour_check)
    dock.raster_combo.layerChanged.connect(dock._on_raster_changed)
    layout.addWidget(image_box)


def _add_samples_box(dock: QDockWidget, layout: QVBoxLayout) -> None:
    """Add the training layer, its class field, the class list and the drawing buttons."""
    samples_box = QGroupBox(translate("RssglDockWidget", "Training samples (polygons or points)"))
    samples_layout = QVBoxLayout(samples_box)
    samples_form = QFormLayout()
    dock.samples_combo = QgsMapLayerComboBox()
    # points too: field survey points are what many users have (Train RSSGL takes both)
    dock.samples_combo.setFilters(layer_filters("PolygonLayer", "PointLayer"))
    dock.samples_combo.setAllowEmptyLayer(True)
    dock.samples_combo.layerChanged.connect(dock._on_samples_layer_changed)
    dock.field_combo = QgsFieldComboBox()
    dock.field_combo.setFilters(QgsFieldProxyModel.Filter.Int | QgsFieldProxyModel.Filter.LongLong
                                 | QgsFieldProxyModel.Filter.String)
    dock.field_combo.fieldChanged.connect(lambda _name: dock.refresh_classes())
    samples_form.addRow(translate("RssglDockWidget", "Layer"), dock.samples_combo)
    samples_form.addRow(translate("RssglDockWidget", "Class field"), dock.field_combo)
    samples_layout.addLayout(samples_form)
    dock.new_layer_button = QPushButton(translate("RssglDockWidget", "New training layer..."))
    dock.new_layer_button.setToolTip(
        translate("RssglDockWidget", "Create a GeoPackage polygon layer with class_id and class_name fields in the raster's CRS.")
    )
    dock.new_layer_button.clicked.connect(dock._new_layer_clicked)
    samples_layout.addWidget(dock.new_layer_button)
    dock.class_list = QListWidget()
    dock.class_list.setMinimumHeight(70)
    dock.class_list.setMaximumHeight(130)
    dock.class_list.currentRowChanged.connect(dock._on_active_row_changed)
    samples_layout.addWidget(dock.class_list)
    class_buttons = QHBoxLayout()
    dock.add_class_button = QPushButton(translate("RssglDockWidget", "Add class"))
    dock.rename_class_button = QPushButton(translate("RssglDockWidget", "Rename"))
    dock.color_button = QgsColorButton()
    dock.color_button.setToolTip(translate("RssglDockWidget", "Colour of the active class"))
    dock.color_button.setAllowOpacity(False)
    dock.add_class_button.clicked.connect(dock._add_class_clicked)
    dock.rename_class_button.clicked.connect(dock._rename_clicked)
    dock.color_button.colorChanged.connect(dock._color_changed)
    for widget in (dock.add_class_button, dock.rename_class_button, dock.color_button):
        class_buttons.addWidget(widget)
    samples_layout.addLayout(class_buttons)
    dock.active_label = QLabel()
    dock.active_label.setWordWrap(True)
    samples_layout.addWidget(dock.active_label)
    draw_buttons = QHBoxLayout()
    dock.edit_button = QPushButton(translate("RssglDockWidget", "Toggle editing"))
    dock.draw_button = QPushButton(translate("RssglDockWidget", "Draw polygon"))
    dock.edit_button.clicked.connect(dock.toggle_editing)
    dock.draw_button.clicked.connect(dock.start_drawing)
    draw_buttons.addWidget(dock.edit_button)
    draw_buttons.addWidget(dock.draw_button)
    samples_layout.addLayout(draw_buttons)
    layout.addWidget(samples_box)


def _add_training_box(dock: QDockWidget, layout: QVBoxLayout) -> None:
    """Add iterations, device, accuracy estimate, output folder, RSSGL on the CPU, Train / Refine / Cancel and
    progress."""
    train_box = QGroupBox(translate("RssglDockWidget", "Training"))
    train_form = QFormLayout(train_box)
    dock.iterations_spin = QSpinBox()
    dock.iterations_spin.setRange(10, 100000)
    dock.iterations_spin.setSingleStep(50)
    dock.iterations_spin.setToolTip(translate("RssglDockWidget", "The paper trains 600 iterations; fewer is faster but less accurate."))
    dock.device_combo = QComboBox()
    for value, label in zip(
        DEVICES, (translate("RssglDockWidget", "Automatic (GPU if available)"), translate("RssglDockWidget", "CUDA GPU"), translate("RssglDockWidget", "CPU")), strict=True
    ):
        dock.device_combo.addItem(label, value)
    dock.cv_combo = QComboBox()
    for folds, label in ((0, translate("RssglDockWidget", "Off (fastest)")), (3, translate("RssglDockWidget", "3 folds of whole polygons (4x the time)")),
                         (5, translate("RssglDockWidget", "5 folds of whole polygons (6x the time)"))):
        dock.cv_combo.addItem(label, folds)
    dock.cv_combo.setToolTip(translate("RssglDockWidget",
        "Before the final training, train one model per fold without that fold's polygons and test it on "
        "them: an estimate of the accuracy where you drew nothing. Needs 2 or more separate polygons per "
        "class."))
    dock.output_widget = QgsFileWidget()
    dock.output_widget.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
    dock.output_widget.setToolTip(translate("RssglDockWidget", "Each run writes its model, maps and report into a new sub-folder here."))
    dock.continue_check = QCheckBox(translate("RssglDockWidget", "Continue from previous model (fine-tune)"))
    dock.keep_check = QCheckBox(translate("RssglDockWidget", "Keep previous results"))
    dock.rssgl_cpu_check = QCheckBox(translate("RssglDockWidget", "Also train RSSGL on the CPU (minutes)"))
    dock.rssgl_cpu_check.setToolTip(translate("RssglDockWidget", "The spectral model's map comes first, in seconds. Then RSSGL trains in the background: at once on a CUDA GPU; on the CPU only with this box ticked, or when you press 'Refine with RSSGL'. Its map replaces the first one only where the cross-validation shows that RSSGL helps."))  # fmt: skip
    train_form.addRow(translate("RssglDockWidget", "Iterations"), dock.iterations_spin)
    train_form.addRow(translate("RssglDockWidget", "Device"), dock.device_combo)
    train_form.addRow(translate("RssglDockWidget", "Accuracy estimate"), dock.cv_combo)
    train_form.addRow(translate("RssglDockWidget", "Output folder"), dock.output_widget)
    train_form.addRow(dock.continue_check)
    train_form.addRow(dock.keep_check)
    train_form.addRow(dock.rssgl_cpu_check)
    run_row = QHBoxLayout()
    dock.train_button = QPushButton(translate("RssglDockWidget", "Train and classify"))
    dock.train_button.clicked.connect(dock.start_training)
    dock.cancel_button = QPushButton(translate("RssglDockWidget", "Cancel"))
    dock.cancel_button.setEnabled(False)
    dock.cancel_button.clicked.connect(dock.cancel_training)
    dock.refine_button = QPushButton(translate("RssglDockWidget", "Refine with RSSGL"))
    dock.refine_button.setToolTip(translate("RssglDockWidget", "Train RSSGL on the last run's polygons in the background (minutes on a CPU); its map replaces the spectral model's only where the cross-validation shows that RSSGL helps."))  # fmt: skip
    dock.refine_button.setEnabled(False)
    dock.refine_button.clicked.connect(dock.start_stage_two)
    run_row.addWidget(dock.train_button, 1)
    run_row.addWidget(dock.refine_button)
    run_row.addWidget(dock.cancel_button)
    train_form.addRow(run_row)
    dock.progress_bar = QProgressBar()
    dock.progress_bar.setRange(0, 100)
    dock.progress_bar.setValue(0)
    train_form.addRow(dock.progress_bar)
    layout.addWidget(train_box)


def _add_results_box(dock: QDockWidget, layout: QVBoxLayout) -> None:
    """Add the run's summary and log."""
    results_box = QGroupBox(translate("RssglDockWidget", "Results"))
    results_layout = QVBoxLayout(results_box)
    dock.summary_label = QLabel(translate("RssglDockWidget", "No run yet."))
    dock.summary_label.setWordWrap(True)
    dock.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.LinksAccessibleByMouse)
    dock.summary_label.setOpenExternalLinks(True)
    dock.log_view = QPlainTextEdit()
    dock.log_view.setReadOnly(True)
    dock.log_view.setMinimumHeight(110)
    dock.log_view.setMaximumBlockCount(2000)
    results_layout.addWidget(dock.summary_label)
    results_layout.addWidget(dock.log_view, 1)
    layout.addWidget(results_box, 1)
