"""Screenshots of the Train RSSGL dialog and of a styled classification (with legend).

Written into tmp; with RSSGL_SCREENSHOTS_DIR set (e.g. docs/screenshots) also there. The rendered
classification is the session's test classification, or RSSGL_SCREENSHOT_CLASSIFICATION when set
(e.g. out/demo/classification.tif after `make demo`, a longer training). Under `make test` a real
X server (xvfb-run) is used; offscreen Qt works too.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.qgis.helpers_processing import synthetic_scene, trained_model


def publish(path: str) -> None:
    target = os.environ.get("RSSGL_SCREENSHOTS_DIR")
    if target:
        os.makedirs(target, exist_ok=True)
        shutil.copy(path, os.path.join(target, os.path.basename(path)))


def non_background_share(image) -> float:
    """Share of sampled pixels that differ from the top-left pixel (a blank grab is ~0)."""
    background = image.pixel(0, 0)
    samples = [(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)]
    return sum(image.pixel(x, y) != background for x, y in samples) / len(samples)


class DesktopStandIn:
    """The ``iface`` members Processing's dialogs use: a main window, a map canvas, a message bar."""

    def __init__(self) -> None:
        from qgis.gui import QgsMapCanvas, QgsMessageBar
        from qgis.PyQt.QtWidgets import QMainWindow

        self.window = QMainWindow()
        self.canvas = QgsMapCanvas(self.window)
        self.bar = QgsMessageBar(self.window)

    def mainWindow(self):  # noqa: N802 (QGIS API name)
        return self.window

    def mapCanvas(self):  # noqa: N802
        return self.canvas

    def messageBar(self):  # noqa: N802
        return self.bar

    def __getattr__(self, name):  # anything else the dialog may call: a harmless no-op
        return lambda *args, **kwargs: None


DIALOGS = {
    # algorithm id: (file name, parameters filled in from the scene layers)
    "rssgl:train": ("train_dialog.png", {"INPUT": "raster", "SAMPLES": "samples", "CLASS_FIELD": "class_id"}),
    "rssgl:classify": ("processing_classify_dialog.png", {"INPUT": "raster"}),
    "rssgl:accuracy": ("processing_accuracy_dialog.png",
                       {"INPUT": "labels", "REFERENCE": "samples", "REFERENCE_FIELD": "class_name"}),
}


@pytest.mark.parametrize("algorithm_id", list(DIALOGS))
def test_algorithm_dialog_screenshot(rssgl_provider, tmp_path, tmp_path_factory, monkeypatch, algorithm_id):
    import processing
    import processing.gui.AlgorithmDialog
    import processing.gui.ParametersPanel
    import processing.gui.wrappers
    import processing.tools.general
    import qgis.utils
    from qgis.PyQt.QtWidgets import QApplication

    desktop = DesktopStandIn()
    # Processing's modules bind ``iface`` at import time: replace it where the dialog looks it up.
    for module in (qgis.utils, processing.tools.general, processing.gui.AlgorithmDialog,
                   processing.gui.ParametersPanel, processing.gui.wrappers):
        monkeypatch.setattr(module, "iface", desktop)
    from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer

    scene = synthetic_scene(str(tmp_path_factory.getbasetemp() / "rssgl_processing" / "scene"))
    raster = QgsRasterLayer(scene.cube, "synthetic_cube")
    samples = QgsVectorLayer(scene.polygons, "training_polygons", "ogr")
    labels = QgsRasterLayer(scene.labels, "synthetic_labels")
    QgsProject.instance().addMapLayers([raster, samples, labels])
    file_name, filled = DIALOGS[algorithm_id]
    layer_ids = {"raster": raster.id(), "samples": samples.id(), "labels": labels.id()}
    try:
        dialog = processing.createAlgorithmDialog(
            algorithm_id, {key: layer_ids.get(value, value) for key, value in filled.items()})
    except Exception as error:  # noqa: BLE001 - report why no dialog could be made
        pytest.skip(f"the Processing dialog cannot be created headless here: {error}")
    dialog.resize(1000, 860)
    dialog.show()
    for _ in range(10):
        QApplication.processEvents()
    path = str(tmp_path / file_name)
    image = dialog.grab().toImage()
    assert image.save(path)
    dialog.close()
    QgsProject.instance().removeMapLayers([raster.id(), samples.id(), labels.id()])
    assert image.width() >= 900 and non_background_share(image) > 0.05
    publish(path)


def render_classification(path: str, out_png: str, title: str) -> None:
    """Map of the styled classification (its .qml) with a legend of class names to the right."""
    from qgis.core import QgsMapRendererParallelJob, QgsMapSettings, QgsRasterLayer
    from qgis.PyQt.QtCore import QRectF, QSize, Qt
    from qgis.PyQt.QtGui import QColor, QFont, QImage, QPainter

    layer = QgsRasterLayer(path, "classification")
    assert layer.isValid() and layer.renderer().type() == "paletted"
    map_px = 560
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(map_px, map_px))
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    rendered = job.renderedImage()

    classes = layer.renderer().classes()
    image = QImage(map_px + 320, map_px + 60, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.drawImage(10, 50, rendered)
    font = QFont("DejaVu Sans", 12)
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(QRectF(10, 10, map_px + 280, 30), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)
    painter.setFont(QFont("DejaVu Sans", 11))
    y = 60
    for entry in classes:
        painter.fillRect(QRectF(map_px + 30, y, 22, 16), entry.color)
        painter.drawRect(QRectF(map_px + 30, y, 22, 16))
        painter.drawText(QRectF(map_px + 60, y - 3, 230, 22), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         f"{int(entry.value)}  {entry.label}")
        y += 26
    painter.end()
    assert image.save(out_png)


def test_classification_screenshot(rssgl_provider, tmp_path, tmp_path_factory):
    from qgis.PyQt.QtGui import QImage

    source = os.environ.get("RSSGL_SCREENSHOT_CLASSIFICATION")
    if not source:
        results, _, _ = trained_model(str(tmp_path_factory.getbasetemp() / "rssgl_processing"))
        source = results["OUTPUT_CLASSIFICATION"]
    title = "RSSGL classification: class names and colours from the model file"
    path = str(tmp_path / "classified_result.png")
    render_classification(source, path, title)
    image = QImage(path)
    assert non_background_share(image) > 0.3
    publish(path)
