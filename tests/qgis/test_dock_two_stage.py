# ruff: noqa: F811  (the fixtures imported from test_gui_dock are test arguments)
"""The dock's map in two stages (issue 29) under a real (Xvfb or offscreen) GUI.

Stage one (the spectral model's map) must reach the project while stage two (RSSGL) still runs; a new run must
cancel stage two cleanly and leave stage one's files alone. Stage two is made blockable: the workflow's RSSGL
training (workflows.train._fit) waits on an event, polling the task's stop flag, so the test decides when it
ends and the cancel path is the real one. The desktop stand-in and the scene come from test_gui_dock.py.
"""

from __future__ import annotations

import os
import threading

import pytest

pytest.importorskip("qgis.gui")
pytest.importorskip("torch")

from qgis.core import QgsProject, QgsVectorLayerUtils  # noqa: E402

from .helpers_gui import wait_for  # noqa: E402
from .test_gui_dock import (  # noqa: E402, F401 (fixtures)
    desktop,
    draw_training_polygons,
    main_window,
    open_raster,
    pixel_polygon,
    raster_path,
    render_canvas,
    scene,
    screenshot,
    small_network,
)


@pytest.fixture
def blocked_stage_two(monkeypatch):
    """RSSGL's training waits until the returned event is set (or the task is cancelled)."""
    from rssgl_qgis.io.outputs import checkpoint
    from rssgl_qgis.workflows import train as workflow

    release, entered = threading.Event(), threading.Event()
    original = workflow._fit

    def waiting_fit(run, kernel, init_from, cv_folds, train_span, progress, should_stop, log, user_log):
        entered.set()
        while not release.wait(0.05):
            checkpoint("training", should_stop)  # raises Cancelled once the task is cancelled
        return original(run, kernel, init_from, cv_folds, train_span, progress, should_stop, log, user_log)

    monkeypatch.setattr(workflow, "_fit", waiting_fit)
    yield release, entered
    release.set()


def layer_sources(name: str) -> list[str]:
    return [lyr.source() for lyr in QgsProject.instance().mapLayers().values() if lyr.name() == name]


def files_of(folder: str) -> dict[str, float]:
    return {n: os.path.getmtime(os.path.join(folder, n)) for n in os.listdir(folder)
            if os.path.isfile(os.path.join(folder, n))}


def start_two_stage_run(dock, scene, tmp_path, raster_path):
    open_raster(raster_path)
    layer = draw_training_polygons(dock, scene, tmp_path)
    dock.rssgl_cpu_check.setChecked(True)  # no CUDA GPU here: stage two only when asked
    assert dock.start_training() is not None
    assert not dock.train_button.isEnabled() and dock.cancel_button.isEnabled()  # during stage one
    return layer


def test_stage_one_map_arrives_while_stage_two_runs(desktop, small_network, blocked_stage_two, scene, raster_path,
                                                    tmp_path):
    iface, dock = desktop
    release, entered = blocked_stage_two
    layer = start_two_stage_run(dock, scene, tmp_path, raster_path)
    assert wait_for(lambda: dock.stage_two_task is not None, 240), dock.log_view.toPlainText()
    first = dock.last_outcome
    assert first.status == "success" and first.stage == 1, dock.log_view.toPlainText()
    # stage one's map, confidence and where-to-draw-next are in the project; stage two has not ended
    assert layer_sources("RSSGL classification") == [first.classification_path]
    assert layer_sources("RSSGL confidence") and layer_sources("Where to draw next")
    assert entered.wait(120) and not dock.stage_two_task.isCanceled()
    summary = dock.summary_label.text()
    assert "<b>Stage one</b>: the spectral model's map" in summary and "RSSGL is training in the background" in summary
    assert "Stage: stage one: the spectral model's map (RSSGL was not trained)." in dock.log_view.toPlainText()
    # the user can draw again and start a new run while stage two runs
    assert dock.train_button.isEnabled() and dock.cancel_button.isEnabled() and not dock.refine_button.isEnabled()
    feature = QgsVectorLayerUtils.createFeature(layer, pixel_polygon(scene.train_polygons[0].vertices), {},
                                                layer.createExpressionContext())
    assert layer.addFeature(feature)

    iface.window.show()
    raster = QgsProject.instance().mapLayersByName("scene")[0]
    render_canvas(iface, raster)
    screenshot(iface.window, "dock_two_stage.png")
    iface.canvas.setRenderFlag(False)

    release.set()
    assert wait_for(lambda: dock.stage_two_task is None, 300), "stage two did not finish in 300 s"
    second = dock._stage_two_outcome
    assert second is not None and second.status == "success" and second.stage == 2, dock.log_view.toPlainText()
    shown = second if second.replaces_stage_one else first
    assert dock.last_outcome is shown
    assert layer_sources("RSSGL classification") == [shown.classification_path]
    assert os.path.dirname(second.classification_path) == os.path.join(first.request.run_folder, "stage_two")
    verdict = "Stage two's map replaces stage one's" if second.replaces_stage_one else "Stage one's map stays"
    assert verdict in dock.summary_label.text() and verdict in dock.log_view.toPlainText()
    assert "Training report (stage two)" in dock.summary_label.text()
    with open(second.report_path, encoding="utf-8") as handle:
        assert "Stage that made the map" in handle.read()
    assert dock.refine_button.isEnabled() is False


def test_a_new_run_cancels_stage_two_and_keeps_stage_one(desktop, small_network, blocked_stage_two, scene,
                                                         raster_path, tmp_path):
    _iface, dock = desktop
    _release, entered = blocked_stage_two
    start_two_stage_run(dock, scene, tmp_path, raster_path)
    assert wait_for(lambda: dock.stage_two_task is not None, 240), dock.log_view.toPlainText()
    assert entered.wait(120)
    first, old_stage_two = dock.last_outcome, dock.stage_two_task
    run_folder = first.request.run_folder
    before = files_of(run_folder)
    assert {"classification.tif", "confidence.tif", "model.rssgl", "training_report.html"} <= set(before)

    assert dock.start_training() is not None  # "Train and classify" again, stage two still running
    assert old_stage_two.isCanceled() and dock.stage_two_task is None
    assert wait_for(lambda: old_stage_two not in dock._alive, 120), "the cancelled stage two did not end"
    assert files_of(run_folder) == before  # stage one's files untouched
    assert not os.path.exists(os.path.join(run_folder, "stage_two"))  # no half-written stage two
    assert "stage two (RSSGL) of the previous run is canceled" in dock.log_view.toPlainText()
    # the new run's stage one arrives and replaces the old layers; its own stage two starts
    assert wait_for(lambda: dock.task is None and dock.last_outcome is not first, 240), dock.log_view.toPlainText()
    assert dock.last_outcome.status == "success" and dock.last_outcome.stage == 1
    assert layer_sources("RSSGL classification") == [dock.last_outcome.classification_path]
    assert dock.stage_two_task is not None
    dock.cancel_training()
    assert wait_for(lambda: dock.stage_two_task is None, 120)
    assert "Stage two (RSSGL) was canceled; the map is stage one's." in dock.summary_label.text()
    assert layer_sources("RSSGL classification") == [dock.last_outcome.classification_path]


def test_on_a_cpu_stage_two_waits_for_the_user(desktop, small_network, blocked_stage_two, scene, raster_path,
                                               tmp_path):
    from rssgl_qgis.gui.settings import Setting

    _iface, dock = desktop
    release, _entered = blocked_stage_two
    open_raster(raster_path)
    draw_training_polygons(dock, scene, tmp_path)
    assert not dock.rssgl_cpu_check.isChecked()  # the default: no RSSGL on a CPU unless asked
    assert dock.start_training() is not None
    assert Setting.RSSGL_ON_CPU.read() is False
    assert wait_for(lambda: dock.task is None, 240), dock.log_view.toPlainText()
    assert dock.last_outcome.stage == 1 and dock.stage_two_task is None and dock.refine_button.isEnabled()
    assert "RSSGL was not trained: on a CPU it takes minutes." in dock.summary_label.text()
    release.set()
    assert dock.start_stage_two() is not None  # "Refine with RSSGL"
    assert not dock.refine_button.isEnabled() and dock.cancel_button.isEnabled()
    assert "RSSGL is training in the background" in dock.summary_label.text()
    assert wait_for(lambda: dock.stage_two_task is None, 300), "stage two did not finish in 300 s"
    assert dock._stage_two_outcome is not None and dock._stage_two_outcome.status == "success"
    dock.rssgl_cpu_check.setChecked(True)
    dock._save_settings()
    dock.rssgl_cpu_check.setChecked(False)
    dock._load_settings()
    assert dock.rssgl_cpu_check.isChecked() and Setting.RSSGL_ON_CPU.read() is True
