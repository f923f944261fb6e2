"""The desktop workflow under a real (Xvfb or offscreen) GUI: dock, training layer, task, results.

A QGIS-like main window (canvas, message bar, toolbar, Raster menu) stands in for ``iface``. The
scene is tiny and the network narrow (see ``small_network``) so that every training run takes
seconds on two CPU cores; the code paths are the ones a user runs.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

pytest.importorskip("qgis.gui")
torch = pytest.importorskip("torch")

from osgeo import gdal, osr  # noqa: E402
from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsCategorizedSymbolRenderer,
    QgsGeometry,
    QgsLayerTreeModel,
    QgsPalettedRasterRenderer,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsSettings,
    QgsVectorLayer,
    QgsVectorLayerUtils,
)
from qgis.gui import QgsLayerTreeMapCanvasBridge, QgsLayerTreeView, QgsMapCanvas, QgsMessageBar  # noqa: E402
from qgis.PyQt.QtCore import Qt, QTimer  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402
from qgis.PyQt.QtWidgets import QDockWidget, QMainWindow, QVBoxLayout, QWidget  # noqa: E402

from tests.qgis.helpers_gui import wait_for  # noqa: E402

SIZE, BANDS = 32, 24
GEOTRANSFORM = (640000.0, 20.0, 0.0, 5200000.0, 0.0, -20.0)


# ----------------------------------------------------------------------------------------------- fixtures
class RecordingBar(QgsMessageBar):
    """A message bar that remembers what the plugin pushed (Python calls reach this override)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[tuple[str, int]] = []

    def pushMessage(self, *args):  # noqa: N802 (QGIS API name)
        self.messages.append((str(args[1]) if len(args) > 1 else str(args[0]), int(args[2]) if len(args) > 2 else 0))
        return super().pushMessage(*args)


class DesktopIface:
    """The iface members the desktop code uses, backed by real widgets (no QGIS main window in tests)."""

    def __init__(self) -> None:
        self.window = QMainWindow()
        self.window.setWindowTitle("QGIS (test stand-in)")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        self.bar = RecordingBar()
        self.canvas = QgsMapCanvas()
        self.canvas.setCanvasColor(QColor(255, 255, 255))
        # Render only when a test wants a picture: a hidden 0x0 canvas can crash GEOS/Qt maths.
        self.canvas.setRenderFlag(False)
        layout.addWidget(self.bar)
        layout.addWidget(self.canvas, 1)
        self.window.setCentralWidget(central)
        self.window.resize(1500, 1000)
        root = QgsProject.instance().layerTreeRoot()
        self.bridge = QgsLayerTreeMapCanvasBridge(root, self.canvas)
        self.tree_view = QgsLayerTreeView()
        self.tree_model = QgsLayerTreeModel(root)  # referenced: the view does not own its model
        self.tree_model.setFlag(QgsLayerTreeModel.Flag.AllowNodeChangeVisibility)  # check boxes, as in QGIS
        self.tree_view.setModel(self.tree_model)
        layers_dock = QDockWidget("Layers")
        layers_dock.setObjectName("Layers")
        layers_dock.setWidget(self.tree_view)
        self.window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, layers_dock)
        self.toolbar = self.window.addToolBar("Plugins")
        self.raster_menu = self.window.menuBar().addMenu("&Raster")
        self.submenus: dict[str, object] = {}
        self.active = None

    def mainWindow(self):  # noqa: N802
        return self.window

    def mapCanvas(self):  # noqa: N802
        return self.canvas

    def messageBar(self):  # noqa: N802
        return self.bar

    def layerTreeView(self):  # noqa: N802
        return self.tree_view

    def addDockWidget(self, area, dock):  # noqa: N802
        self.window.addDockWidget(area, dock)

    def removeDockWidget(self, dock):  # noqa: N802
        self.window.removeDockWidget(dock)

    def addToolBarIcon(self, action):  # noqa: N802
        self.toolbar.addAction(action)

    def removeToolBarIcon(self, action):  # noqa: N802
        self.toolbar.removeAction(action)

    def addPluginToRasterMenu(self, name, action):  # noqa: N802
        menu = self.submenus.get(name) or self.raster_menu.addMenu(name)
        self.submenus[name] = menu
        menu.addAction(action)

    def removePluginRasterMenu(self, name, action):  # noqa: N802
        menu = self.submenus.get(name)
        if menu is not None:
            menu.removeAction(action)

    def setActiveLayer(self, layer):  # noqa: N802
        self.active = layer
        return True

    def activeLayer(self):  # noqa: N802
        return self.active


@pytest.fixture(scope="module")
def scene():
    """A 32x32 x 24-band synthetic scene with 3 classes, written as a georeferenced GeoTIFF."""
    from rssgl_qgis.core.data.synthetic import make_synthetic_scene

    return make_synthetic_scene(
        seed=3, height=SIZE, width=SIZE, bands=BANDS, n_classes=3, field_size=12, polygons_per_class=2,
        polygon_radius=3,
    )


@pytest.fixture(scope="module")
def raster_path(scene, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("scene") / "scene.tif")
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds = gdal.GetDriverByName("GTiff").Create(path, SIZE, SIZE, BANDS, gdal.GDT_Float32)
    ds.SetGeoTransform(GEOTRANSFORM)
    ds.SetProjection(srs.ExportToWkt())
    for i, band in enumerate(scene.cube, start=1):
        out = ds.GetRasterBand(i)
        out.WriteArray(band)
        out.SetDescription(f"band {i} ({scene.wavelengths[i - 1]:.0f} nm)")
    ds = None
    return path


@pytest.fixture
def small_network(monkeypatch):
    """Narrow RSSGL (16 channels per stage) so a 10-iteration run takes seconds on 2 CPU cores."""
    from rssgl_qgis.core.training import classifier as training

    original = training.RssglClassifier

    class SmallClassifier(original):
        def __init__(self, config_overrides=None, params=None):
            small = {"block_channels": (16, 16, 16, 16), "inner_dim": 16}
            super().__init__({**small, **(config_overrides or {})}, params)

    monkeypatch.setattr(training, "RssglClassifier", SmallClassifier)
    return SmallClassifier


@pytest.fixture(scope="module")
def main_window(qgis_app):
    """One QGIS-like main window for the module, as QGIS has one for its lifetime.

    (Layer tree views created and destroyed per test leave QGIS 3.22 signal connections to the
    project's layer tree behind, which crash later tests; real QGIS never destroys its view.)
    """
    iface = DesktopIface()
    yield iface
    QgsProject.instance().clear()
    iface.window.close()
    iface.window.deleteLater()  # while the application still runs, not at interpreter exit
    QgsApplication.processEvents()


@pytest.fixture
def desktop(main_window, tmp_path):
    """Fresh project, settings, message bar log and dock in the shared window; yields (iface, dock)."""
    from rssgl_qgis.gui.dock import RssglDockWidget

    iface = main_window
    QgsProject.instance().clear()
    QgsSettings().remove("rssgl")
    iface.bar.messages.clear()
    iface.canvas.setRenderFlag(False)
    dock = RssglDockWidget(iface, iface.window)
    iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    dock.output_widget.setFilePath(str(tmp_path / "runs"))
    dock.iterations_spin.setValue(10)
    dock.device_combo.setCurrentIndex(dock.device_combo.findData("cpu"))
    yield iface, dock
    dock.shutdown()
    wait_for(lambda: QgsApplication.taskManager().countActiveTasks() == 0, 60)
    iface.removeDockWidget(dock)
    dock.deleteLater()
    QgsProject.instance().clear()
    QgsApplication.processEvents()


def pixel_polygon(vertices: np.ndarray) -> QgsGeometry:
    """Scene polygon (x = column, y = row) -> map coordinates on the scene's grid."""
    x0, dx, _, y0, _, dy = GEOTRANSFORM
    ring = [QgsPointXY(x0 + c * dx, y0 + r * dy) for c, r in vertices]
    return QgsGeometry.fromPolygonXY([ring + ring[:1]])


def open_raster(path: str) -> QgsRasterLayer:
    layer = QgsRasterLayer(path, "scene", "gdal")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    return layer


def draw_training_polygons(dock, scene, tmp_path) -> QgsVectorLayer:
    """What a user does: new training layer, one class at a time, draw its polygons (left unsaved)."""
    layer = dock.create_training_layer(str(tmp_path / "training.gpkg"))
    layer.startEditing()
    for value, name in zip(scene.class_values, scene.class_names, strict=True):
        dock.add_class(name)
        for polygon in scene.train_polygons:
            if polygon.class_value == value:
                feature = QgsVectorLayerUtils.createFeature(
                    layer, pixel_polygon(polygon.vertices), {}, layer.createExpressionContext()
                )
                assert layer.addFeature(feature)
    return layer


def render_canvas(iface, raster) -> None:
    """Let the desktop stand-in's canvas draw ``raster``'s extent in its CRS and wait until it has (screenshots)."""
    iface.canvas.setRenderFlag(True)
    iface.canvas.setDestinationCrs(raster.crs())
    iface.canvas.setExtent(raster.extent())
    iface.canvas.refresh()
    wait_for(lambda: not iface.canvas.isDrawing(), 20)
    iface.canvas.waitWhileRendering()
    QgsApplication.processEvents()


def screenshot(widget, name: str) -> None:
    folder = os.environ.get("RSSGL_SCREENSHOTS_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        assert widget.grab().save(os.path.join(folder, name))


# ----------------------------------------------------------------------------------------------- tests
def test_desktop_entry_points_open_and_remove_the_dock(main_window):
    from rssgl_qgis.gui.desktop import RssglDesktop
    from rssgl_qgis.gui.dock import RssglDockWidget

    iface = main_window
    desktop = RssglDesktop(iface)
    desktop.install()
    assert desktop.action in iface.toolbar.actions()
    menu = next(iter(iface.submenus.values()))
    assert desktop.action in menu.actions()
    assert desktop.dock is None  # nothing created (no torch probe) until the user asks
    desktop.action.trigger()
    assert isinstance(desktop.dock, RssglDockWidget) and desktop.dock.isVisible() is not None
    assert desktop.action.isChecked()
    desktop.uninstall()
    assert desktop.action is None and desktop.dock is None
    assert not iface.toolbar.actions()
    assert not menu.actions()


def test_status_line_reports_torch_and_device_without_blocking(desktop):
    _iface, dock = desktop
    # The probe runs in a thread; the dock shows a placeholder until the queued signal arrives.
    assert wait_for(lambda: dock.torch_status is not None, 120)
    status = dock.torch_status
    assert status.usable
    assert status.version == torch.__version__
    text = dock.status_label.text()
    assert text.startswith(f"PyTorch {torch.__version__}")
    expected = "CUDA: " if torch.cuda.is_available() else "CPU only: training will be slow"
    assert expected in text
    assert not dock.install_button.isVisible()


def test_training_layer_classes_and_active_class(desktop, raster_path, tmp_path):
    iface, dock = desktop
    raster = open_raster(raster_path)
    path = tmp_path / "polys.gpkg"
    layer = dock.create_training_layer(str(path))
    assert path.exists() and layer.isValid()
    assert QgsProject.instance().mapLayer(layer.id()) is layer
    assert layer.crs() == raster.crs()
    assert [f.name() for f in layer.fields()][-2:] == ["class_id", "class_name"]
    assert dock.samples_layer() is layer and dock.class_field() == "class_id"
    with pytest.raises(ValueError, match="exists already"):
        dock.create_training_layer(str(path))

    water = dock.add_class("Water")
    corn = dock.add_class("Corn", QColor(250, 200, 0))
    assert (water.value, corn.value) == (1, 2)
    renderer = layer.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer) and renderer.classAttribute() == "class_id"
    assert [(c.value(), c.label()) for c in renderer.categories()] == [(1, "Water"), (2, "Corn")]
    assert dock.active_class().name == "Corn"
    assert "Corn" in dock.active_label.text()

    # A polygon drawn now gets the active class without the user typing anything.
    layer.startEditing()
    geom = QgsGeometry.fromRect(raster.extent().buffered(-200))
    feature = QgsVectorLayerUtils.createFeature(layer, geom, {}, layer.createExpressionContext())
    assert layer.addFeature(feature)
    dock.class_list.setCurrentRow(0)  # switch to Water
    feature2 = QgsVectorLayerUtils.createFeature(layer, geom, {}, layer.createExpressionContext())
    assert layer.addFeature(feature2)
    assert layer.commitChanges()
    got = sorted((f["class_id"], f["class_name"]) for f in layer.getFeatures())
    assert got == [(1, "Water"), (2, "Corn")]

    # Rename and recolour keep style, legend and data consistent.
    dock.rename_class(1, "Maize")
    dock.set_class_color(0, QColor(0, 0, 200))
    categories = layer.renderer().categories()
    assert [c.label() for c in categories] == ["Water", "Maize"]
    assert categories[0].symbol().color().rgb() == QColor(0, 0, 200).rgb()
    assert sorted(f["class_name"] for f in layer.getFeatures()) == ["Maize", "Water"]
    # The class list survives re-reading the layer (e.g. after the user edits the style elsewhere).
    dock.refresh_classes()
    assert [(e.value, e.name) for e in dock._classes] == [(1, "Water"), (2, "Maize")]
    assert dock._classes[0].color == QColor(0, 0, 200)  # opaque, although the polygons are see-through
    iface.window.show()
    assert wait_for(lambda: dock.torch_status is not None, 120)  # the picture shows the real status line
    wait_for(lambda: False, 0.3)  # let the layout re-wrap the status text before the grab
    screenshot(dock.widget().widget(), "dock_classes.png")


def test_existing_layer_with_text_classes(desktop, raster_path):
    _iface, dock = desktop
    open_raster(raster_path)
    layer = QgsVectorLayer("Polygon?crs=EPSG:32633&field=landcover:string(20)", "field survey", "memory")
    x0, y0 = GEOTRANSFORM[0], GEOTRANSFORM[3]
    for name, dx in (("forest", 0), ("water", 100)):
        feature = QgsVectorLayerUtils.createFeature(
            layer, QgsGeometry.fromWkt(f"POLYGON(({x0 + dx} {y0 - 100},{x0 + dx + 80} {y0 - 100},"
                                       f"{x0 + dx + 80} {y0 - 180},{x0 + dx} {y0 - 100}))"), {0: name}
        )
        layer.dataProvider().addFeature(feature)
    QgsProject.instance().addMapLayer(layer)
    dock.samples_combo.setLayer(layer)
    assert dock.class_field() == "landcover"
    assert [e.value for e in dock._classes] == ["forest", "water"]
    dock.add_class("urban")
    dock.class_list.setCurrentRow(2)
    layer.startEditing()
    new = QgsVectorLayerUtils.createFeature(layer, QgsGeometry.fromWkt("POLYGON((0 0,1 0,1 1,0 0))"), {},
                                            layer.createExpressionContext())
    assert new["landcover"] == "urban"
    layer.rollBack()


def test_task_run_directly_writes_all_outputs(qgis_app, small_network, scene, raster_path, tmp_path):
    pytest.importorskip("rssgl_qgis.io.classify_raster")
    from osgeo import ogr

    from rssgl_qgis.gui.tasks import RssglTrainTask, TrainRequest

    samples = write_samples_gpkg(scene, str(tmp_path / "samples.gpkg"))
    request = TrainRequest(
        raster_path=raster_path, samples_path=samples, samples_layer="training_polygons", class_field="class_id",
        run_folder=str(tmp_path / "run"), iterations=6, device="cpu",
        class_names={1: "Corn", 2: "Soybean", 3: "Sand"}, params_overrides={"epoch_iterations": 3},
    )
    task = RssglTrainTask(request)
    lines = []
    task.log_message.connect(lambda level, message: lines.append(message))
    assert task.run() is True, task.outcome.details
    outcome = task.outcome
    assert outcome.status == "success"
    assert outcome.class_values == [1, 2, 3] and outcome.class_names == ["Corn", "Soybean", "Sand"]
    assert outcome.epochs == 2 and 1 <= outcome.best_epoch <= 2 and outcome.seconds_to_best > 0
    for path in (outcome.model_path, outcome.classification_path, outcome.confidence_path,
                 outcome.probabilities_path, outcome.guidance_path, outcome.report_path):
        assert os.path.exists(path), path
    classes = gdal.Open(outcome.classification_path).ReadAsArray()
    assert classes.shape == (SIZE, SIZE) and set(np.unique(classes)) <= {1, 2, 3}
    assert gdal.Open(outcome.probabilities_path).RasterCount == 3
    guidance = ogr.Open(outcome.guidance_path)  # keep the dataset referenced while its layer is used
    assert guidance.GetLayer("where_to_draw_next").GetFeatureCount() == len(outcome.regions)
    # Direct calls deliver the log signal synchronously (same thread): the epochs were logged.
    QgsApplication.processEvents()
    assert any(line.lower().startswith("epoch 1") for line in lines)


def test_dock_cross_validation_choice_reaches_the_task_and_the_summary(desktop, small_network, scene, raster_path,
                                                                       tmp_path):
    """The "Accuracy estimate" choice is remembered, runs one model per fold in the task, and the summary
    shows the cross-validated OA; with the default (every polygon pixel trained on) it shows no validation OA."""
    pytest.importorskip("rssgl_qgis.io.classify_raster")
    from rssgl_qgis.gui.settings import Setting
    from rssgl_qgis.gui.tasks import RssglTrainTask, TrainRequest

    _iface, dock = desktop
    dock.cv_combo.setCurrentIndex(dock.cv_combo.findData(3))
    dock._save_settings()
    assert Setting.CV_FOLDS.read() == 3
    dock.cv_combo.setCurrentIndex(0)
    dock._load_settings()
    assert dock.cv_combo.currentData() == 3

    samples = write_samples_gpkg(scene, str(tmp_path / "samples.gpkg"))
    request = TrainRequest(
        raster_path=raster_path, samples_path=samples, samples_layer="training_polygons", class_field="class_id",
        run_folder=str(tmp_path / "run"), iterations=3, device="cpu", cv_folds=int(dock.cv_combo.currentData()),
        params_overrides={"epoch_iterations": 3},
    )
    task = RssglTrainTask(request)
    assert task.run() is True, task.outcome.details
    outcome = task.outcome
    assert outcome.cv_folds == 2  # 2 polygons per class: as many folds as that allows
    assert 0.0 <= outcome.cv_oa <= 1.0 and outcome.cv_oa_ci95 > 0
    summary = dock._summary_html(outcome)
    assert f"Cross-validated OA {100 * outcome.cv_oa:.1f}%" in summary and "Trained on every pixel of your samples" in summary
    assert outcome.validation_oa is None and "Validation OA" not in summary
    Setting.CV_FOLDS.write(0)


def write_samples_gpkg(scene, path: str) -> str:
    """The scene's training polygons as a GeoPackage with class_id/class_name (as the dock's snapshot)."""
    from qgis.core import QgsCoordinateReferenceSystem

    from rssgl_qgis.gui.training_layer import create_training_layer

    layer = create_training_layer(path, QgsCoordinateReferenceSystem("EPSG:32633"), "samples")
    names = dict(zip(scene.class_values, scene.class_names, strict=True))
    layer.startEditing()
    for polygon in scene.train_polygons:
        feature = QgsVectorLayerUtils.createFeature(
            layer, pixel_polygon(polygon.vertices),
            {1: int(polygon.class_value), 2: names[polygon.class_value]},
        )
        layer.addFeature(feature)
    assert layer.commitChanges()
    return path


def test_dock_trains_in_background_adds_styled_results_and_guidance(desktop, small_network, scene, raster_path,
                                                                    tmp_path):
    pytest.importorskip("rssgl_qgis.io.classify_raster")
    iface, dock = desktop
    raster = open_raster(raster_path)
    layer = draw_training_polygons(dock, scene, tmp_path)
    assert sorted({f["class_id"] for f in layer.getFeatures()}) == [1, 2, 3]  # assigned automatically
    assert layer.isModified()  # unsaved edits are trained on too (the dock snapshots what is visible)
    iface.window.show()

    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    dock.rssgl_cpu_check.setChecked(True)  # both stages (issue 29): the spectral model's map, then RSSGL
    task = dock.start_training()
    assert task is not None and dock.task is task, iface.bar.messages
    assert not dock.train_button.isEnabled() and dock.cancel_button.isEnabled()
    assert wait_for(lambda: dock.task is None and dock.stage_two_task is None, 240), "training did not finish in 240 s"
    timer.stop()
    outcome = dock.last_outcome
    assert outcome is not None and outcome.status == "success", dock.log_view.toPlainText()
    assert dock._stage_two_outcome is not None and dock._stage_two_outcome.status == "success"
    # The GUI thread kept running while the worker trained: the timer ticked throughout.
    assert len(ticks) > 20
    assert max(np.diff(ticks)) < 5.0
    log = dock.log_view.toPlainText()
    assert "Epoch 1" in log and "training-pixel OA" in log
    assert "Model used for the map:" in log

    project = QgsProject.instance()
    by_name = {lyr.name(): lyr for lyr in project.mapLayers().values()}
    classification = by_name["RSSGL classification"]
    renderer = classification.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert [c.label for c in renderer.classes()] == list(scene.class_names)
    assert isinstance(by_name["RSSGL confidence"], QgsRasterLayer)
    guidance = by_name["Where to draw next"]
    assert guidance.isValid() and guidance.featureCount() == len(outcome.regions) > 0
    assert {"rank", "mean_conf", "class_1", "class_2"} <= set(guidance.fields().names())
    summary = dock.summary_label.text()
    assert "Cross-validated OA" in summary  # the default: 3 folds
    verdict = "Stage two's map replaces stage one's" if outcome.stage == 2 else "Stage one's map stays"
    assert verdict in summary and any(verdict in text for text, _level in iface.bar.messages)
    assert dock.progress_bar.value() == 100

    render_canvas(iface, raster)
    screenshot(dock.widget().widget(), "dock_after_run.png")  # the whole dock content, not the scrolled view
    screenshot(iface.window, "desktop_result.png")

    # Second run: fine-tune from the first model, results replace the previous ones.
    first_ids = list(dock.result_layer_ids)
    dock.continue_check.setChecked(True)
    assert dock.start_training() is not None
    assert wait_for(lambda: dock.task is None and dock.stage_two_task is None, 240)
    second = dock._stage_two_outcome  # fine-tuning trains RSSGL: stage two
    assert second.status == "success" and second.fine_tuned
    assert "Fine-tuning reached its best model" in dock.log_view.toPlainText()
    assert all(project.mapLayer(lid) is None for lid in first_ids)
    assert len([n for n in (lyr.name() for lyr in project.mapLayers().values()) if n == "RSSGL classification"]) == 1
    # Settings persist for the next session.
    assert QgsSettings().value("rssgl/continueFromPrevious", type=bool) is True
    assert QgsSettings().value("rssgl/iterations", type=int) == 10
    assert QgsSettings().value("rssgl/lastModelPath") == second.model_path


def test_cancel_stops_the_task_and_adds_nothing(desktop, small_network, scene, raster_path, tmp_path, monkeypatch):
    pytest.importorskip("rssgl_qgis.io.classify_raster")
    import threading

    from rssgl_qgis.io.outputs import checkpoint
    from rssgl_qgis.workflows import train as workflow

    iface, dock = desktop
    open_raster(raster_path)
    draw_training_polygons(dock, scene, tmp_path)
    entered = threading.Event()

    def endless_stage_one(run, rssgl_stage, cv_folds, progress, should_stop, log):  # the real one ends in seconds
        entered.set()
        while True:
            checkpoint("training", should_stop)  # raises Cancelled once the task is cancelled
            time.sleep(0.05)

    monkeypatch.setattr(workflow, "fit_stage_one", endless_stage_one)
    outcomes = []
    task = dock.start_training()
    assert task is not None
    task.completed.connect(outcomes.append)
    # Cancel while the worker is inside stage one's training.
    assert entered.wait(120)
    dock.cancel_training()
    assert wait_for(lambda: dock.task is None, 120)
    assert [o.status for o in outcomes] == ["canceled"]
    assert dock.last_outcome is None
    assert "canceled" in dock.log_view.toPlainText()
    assert not any(lyr.name().startswith("RSSGL") for lyr in QgsProject.instance().mapLayers().values())
    assert dock.train_button.isEnabled()
    run_folder = outcomes[0].request.run_folder
    assert not [name for name in os.listdir(run_folder) if name.endswith((".tif", ".safetensors"))]


def test_missing_inputs_are_explained(desktop):
    iface, dock = desktop
    assert dock.start_training() is None
    assert iface.bar.messages and "raster" in iface.bar.messages[-1][0].lower()


def test_editing_shortcuts_use_qgis_actions_when_present(desktop, raster_path, tmp_path):
    from rssgl_qgis.qgis_compat import QAction

    iface, dock = desktop
    open_raster(raster_path)
    layer = dock.create_training_layer(str(tmp_path / "shortcuts.gpkg"))
    triggered = []
    add_feature = QAction("Add Polygon Feature", iface.window)
    add_feature.triggered.connect(lambda: triggered.append("add"))
    iface.actionAddFeature = lambda: add_feature
    try:
        dock.start_drawing()
        assert layer.isEditable() and triggered == ["add"] and iface.activeLayer() is layer
        assert dock.edit_button.text() == "Stop editing"
        dock.toggle_editing()  # the stand-in has no actionToggleEditing: the dock commits itself
        assert not layer.isEditable() and dock.edit_button.text() == "Start editing"
    finally:
        del iface.actionAddFeature


def test_dock_trains_from_a_point_layer(desktop, small_network, scene, raster_path, tmp_path):
    """Field survey points: the dock lists a point layer, offers to draw points, and trains from it."""
    pytest.importorskip("rssgl_qgis.io.classify_raster")
    from qgis.core import QgsFeature, QgsField, QgsFields, QgsVectorFileWriter

    from rssgl_qgis.qgis_compat import WKB_POINT, field_type

    iface, dock = desktop
    raster = open_raster(raster_path)
    x0, dx, _, y0, _, dy = GEOTRANSFORM
    fields = QgsFields()
    fields.append(QgsField("class_id", field_type("int")))
    path = str(tmp_path / "points.gpkg")
    writer = QgsVectorFileWriter.create(path, fields, WKB_POINT, raster.crs(),
                                        QgsProject.instance().transformContext(),
                                        QgsVectorFileWriter.SaveVectorOptions())
    rows, cols = np.nonzero(scene.polygon_labels > 0)
    for r, c in zip(rows[::2], cols[::2], strict=True):  # every other pixel of the polygons, as points
        feature = QgsFeature(fields)
        feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(x0 + (c + 0.5) * dx, y0 + (r + 0.5) * dy)))
        feature.setAttribute("class_id", int(scene.polygon_labels[r, c]))
        writer.addFeature(feature)
    del writer
    points = QgsVectorLayer(path, "field points", "ogr")
    assert points.isValid() and points.featureCount() > 0
    QgsProject.instance().addMapLayer(points)
    dock.raster_combo.setLayer(raster)
    dock.samples_combo.setLayer(points)
    assert dock.samples_layer() is points, "the dock does not list point layers"
    assert dock.class_field() == "class_id" and dock.draw_button.text() == "Draw points"
    assert sorted(c.value for c in dock._classes) == [1, 2, 3]
    task = dock.start_training()
    assert task is not None, iface.bar.messages
    assert wait_for(lambda: dock.task is None, 240), "training did not finish in 240 s"
    outcome = dock.last_outcome
    assert outcome is not None and outcome.status == "success", dock.log_view.toPlainText()
    assert "RSSGL classification" in [lyr.name() for lyr in QgsProject.instance().mapLayers().values()]
    screenshot(dock.widget().widget(), "dock_points_after_run.png")


def _hyperspectral_raster(path: str, wavelengths) -> str:
    """A 40 x 40 raster whose thirds are red, green and blue surfaces (reflectance peaks at 640 / 550 / 470 nm)."""
    wl = np.asarray(wavelengths)
    rows = np.arange(40)[:, None]
    peak = np.where(rows < 13, 640.0, np.where(rows < 26, 550.0, 470.0)) * np.ones((40, 40))
    cube = 0.05 + 0.4 * np.exp(-((wl[:, None, None] - peak[None]) / 40.0) ** 2)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds = gdal.GetDriverByName("GTiff").Create(path, 40, 40, len(wl), gdal.GDT_Float32)
    ds.SetGeoTransform(GEOTRANSFORM)
    ds.SetProjection(srs.ExportToWkt())
    for i, w in enumerate(wl, start=1):
        band = ds.GetRasterBand(i)
        band.WriteArray(cube[i - 1].astype(np.float32))
        band.SetMetadata({"wavelength": f"{w:g}", "wavelength_units": "Nanometers"})
    ds = None
    return path


def test_choosing_a_hyperspectral_raster_shows_it_in_true_colour(desktop, tmp_path):
    from qgis.core import (
        QgsContrastEnhancement,
        QgsMapRendererParallelJob,
        QgsMapSettings,
        QgsMultiBandColorRenderer,
    )
    from qgis.PyQt.QtCore import QSize

    iface, dock = desktop
    wavelengths = [420.0 + 10.0 * k for k in range(60)]  # 420..1010 nm: bands 1, 2, 3 are violet
    layer = QgsRasterLayer(_hyperspectral_raster(str(tmp_path / "hyper.tif"), wavelengths), "hyper", "gdal")
    assert isinstance(layer.renderer(), QgsMultiBandColorRenderer) and layer.renderer().redBand() == 1
    QgsProject.instance().addMapLayer(layer)
    dock.raster_combo.setLayer(layer)
    renderer = layer.renderer()
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (23, 14, 6)  # 640, 550, 470 nm
    stretch = renderer.redContrastEnhancement()
    assert stretch.contrastEnhancementAlgorithm() == QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum
    assert 0.04 < stretch.minimumValue() < stretch.maximumValue() < 0.46
    assert "hyper shown in true colour: bands 23, 14, 6 as red, green, blue." in dock.log_view.toPlainText()

    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(120, 120))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    top, middle, bottom = (image.pixelColor(60, y) for y in (15, 60, 105))
    assert top.red() > top.green() and top.red() > top.blue()  # the 640 nm surface looks red
    assert middle.green() > middle.red() and middle.green() > middle.blue()
    assert bottom.blue() > bottom.red() and bottom.blue() > bottom.green()
    folder = os.environ.get("RSSGL_SCREENSHOTS_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        assert image.save(os.path.join(folder, "true_colour.png"))

    # a style the user chose is kept: another layer set to bands 5, 6, 7 stays so
    other = QgsRasterLayer(str(tmp_path / "hyper.tif"), "styled", "gdal")
    other.setRenderer(QgsMultiBandColorRenderer(other.dataProvider(), 5, 6, 7))
    QgsProject.instance().addMapLayer(other)
    dock.raster_combo.setLayer(other)
    assert (other.renderer().redBand(), other.renderer().greenBand(), other.renderer().blueBand()) == (5, 6, 7)


def test_dock_band_selection_reaches_the_task_and_bad_text_is_explained(desktop, raster_path, tmp_path):
    iface, dock = desktop
    raster = open_raster(raster_path)
    dock.raster_combo.setLayer(raster)
    dock.samples_combo.setLayer(dock.create_training_layer(str(tmp_path / "training.gpkg")))
    layer = dock.samples_layer()
    layer.startEditing()
    dock.add_class("a")
    feature = QgsVectorLayerUtils.createFeature(layer, pixel_polygon(np.array([[2, 2], [8, 2], [8, 8]])), {},
                                                layer.createExpressionContext())
    assert layer.addFeature(feature)
    dock.bands_edit.setText("1-99")
    assert dock.start_training() is None
    assert iface.bar.messages[-1][0].startswith("The band selection '1-99' lies outside the raster's bands: they are "
                                                f"numbered 1 to {BANDS}.")
    dock.bands_edit.setText("drop 1-4")
    dock.water_vapour_check.setChecked(True)
    request = dock.build_request()
    assert request.band_selection == "drop 1-4" and request.drop_water_vapour is True
    screenshot(dock.widget().widget(), "dock_bands.png")


ENMAP = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                     "shared", "data", "enmap_potsdam_tiles")


def _train_on_enmap_labels(raster: str, label_raster: str, tmp_path) -> tuple:
    """The dock's training task on a real EnMAP raster, its label raster drawn as polygons (GPKG), with the
    water-vapour preset and a two-iteration CPU training; returns (finished task, its log lines, labels)."""
    from osgeo import ogr

    from rssgl_qgis.gui.tasks import RssglTrainTask, TrainRequest

    source = gdal.Open(label_raster)
    labels = np.nan_to_num(source.GetRasterBand(1).ReadAsArray()).astype(np.int32)
    memory = gdal.GetDriverByName("MEM").Create("", labels.shape[1], labels.shape[0], 1, gdal.GDT_Int32)
    memory.SetGeoTransform(source.GetGeoTransform())
    memory.SetProjection(source.GetProjection())
    memory.GetRasterBand(1).WriteArray(labels)
    samples = str(tmp_path / "samples.gpkg")
    vector = ogr.GetDriverByName("GPKG").CreateDataSource(samples)
    layer = vector.CreateLayer("training_polygons", memory.GetSpatialRef(), ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
    gdal.Polygonize(memory.GetRasterBand(1), None, layer, 0)
    for feature in list(layer):
        if feature.GetField("class_id") == 0:
            layer.DeleteFeature(feature.GetFID())
    vector = layer = None
    request = TrainRequest(raster_path=raster, samples_path=samples, samples_layer="training_polygons",
                           class_field="class_id", run_folder=str(tmp_path / "run"), iterations=2, device="cpu",
                           cv_folds=0, drop_water_vapour=True, params_overrides={"epoch_iterations": 2})
    task = RssglTrainTask(request)
    lines = []
    task.log_message.connect(lambda level, message: lines.append(message))
    assert task.run() is True, task.outcome.details
    QgsApplication.processEvents()
    return task, lines, labels


@pytest.mark.skipif(not os.path.isdir(ENMAP), reason="the real EnMAP tiles are in ../shared only on development machines")
def test_the_dock_trains_a_real_enmap_tile_with_the_water_vapour_preset(qgis_app, small_network, tmp_path):
    """The dock's task on a real EnMAP L2A tile (224 bands, 130-135 empty and flagged bad), labels drawn as
    polygons: no manual band removal; the tile opens in true colour."""
    from rssgl_qgis.gui.rendering import apply_true_colour

    tile = os.path.join(ENMAP, "images", "enmap_potsdam_tile_128_0.tif")
    task, lines, _ = _train_on_enmap_labels(tile, os.path.join(ENMAP, "labels", "enmap_potsdam_tile_128_0.tif"),
                                            tmp_path)
    notice = next(line for line in lines if "band(s) are left out" in line)
    assert notice.startswith("6 of 224 band(s) are left out: 130 (1331.2 nm), 131 (1343.2 nm)")
    assert "(flagged bad in the file, no data)" in notice
    classes = gdal.Open(task.outcome.classification_path).ReadAsArray()
    assert (classes > 0).mean() > 0.9

    raster = QgsRasterLayer(tile, "enmap", "gdal")
    bands = apply_true_colour(raster)
    dataset = gdal.Open(tile)  # held while its bands are read
    wavelengths = [float(dataset.GetRasterBand(b).GetMetadataItem("wavelength")) for b in bands]
    assert all(abs(w - t) < 5 for w, t in zip(wavelengths, (640, 550, 470), strict=True)), wavelengths


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(ENMAP), reason="the real EnMAP tiles are in ../shared only on development machines")
def test_the_dock_trains_the_whole_real_enmap_mosaic_with_gaps(qgis_app, small_network, tmp_path):
    """Issue 14's 'done': the 18 EnMAP tiles mosaicked as a user would (gdalbuildvrt + gdal_translate, nodata
    gaps between the tiles), trained through the dock's task with the water-vapour preset and no manual
    band removal: the six empty bands are named in the log and the report, the map covers the tiles and
    is nodata in the gaps."""
    import html
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from scripts.enmap_mosaic import mosaic

    image = mosaic(os.path.join(ENMAP, "images"), str(tmp_path), "enmap_mosaic", copy_band_metadata=True)
    label_tif = mosaic(os.path.join(ENMAP, "labels"), str(tmp_path), "enmap_labels", copy_band_metadata=False)
    task, lines, labels = _train_on_enmap_labels(image, label_tif, tmp_path)
    notice = next(line for line in lines if "band(s) are left out" in line)
    assert notice.startswith("6 of 224 band(s) are left out: 130 (1331.2 nm)") and "135 (1390.8 nm)" in notice
    with open(task.outcome.report_path, encoding="utf-8") as handle:
        assert "130 (1331.2 nm)" in html.unescape(handle.read())
    dataset = gdal.Open(image)
    cube_valid = dataset.GetRasterBand(1).ReadAsArray() != dataset.GetRasterBand(1).GetNoDataValue()
    dataset = None
    classes = gdal.Open(task.outcome.classification_path).ReadAsArray()
    assert classes.shape == labels.shape
    assert (classes[cube_valid] > 0).all() and (classes[~cube_valid] == 0).all()
    assert (~cube_valid).sum() > 10000  # the gaps between the tiles are there
