"""The example modeler model (resources/rssgl_train_classify_assess.model3) loads and runs headless."""

from __future__ import annotations

import os

from osgeo import gdal

from tests.qgis.conftest import REPO_ROOT
from tests.qgis.helpers_processing import RecordingFeedback, synthetic_scene

MODEL = os.path.join(REPO_ROOT, "resources", "rssgl_train_classify_assess.model3")


def load_model():
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(MODEL), f"cannot read {MODEL}"
    return model


def test_model_wires_train_classify_assess(rssgl_provider):
    model = load_model()
    children = model.childAlgorithms()
    assert {c.algorithmId() for c in children.values()} == {"rssgl:train", "rssgl:classify", "rssgl:accuracy"}
    assert all(c.algorithm() is not None for c in children.values())  # every algorithm resolves
    assert model.dependsOnChildAlgorithms("assess") == {"train", "classify"}
    inputs = {d.name() for d in model.parameterDefinitions() if not d.isDestination()}
    assert inputs == {"raster", "samples", "class_field", "reference", "reference_field", "iterations"}
    assert model.shortHelpString()


def test_model_runs_headless(rssgl_provider, tmp_path, tmp_path_factory):
    from qgis.core import QgsProcessingContext, QgsProject

    scene = synthetic_scene(str(tmp_path_factory.getbasetemp() / "rssgl_processing" / "scene"))
    model = load_model()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = RecordingFeedback.create()
    parameters = {
        "raster": scene.cube, "samples": scene.polygons, "class_field": "class_id",
        "reference": scene.polygons, "reference_field": "class_name", "iterations": 2,
        "train:model": str(tmp_path / "model.rssgl"), "train:training_report": str(tmp_path / "training.html"),
        "classify:classification": str(tmp_path / "classes.tif"),
        "assess:accuracy_report": str(tmp_path / "accuracy.html"),
        "assess:accuracy_table": str(tmp_path / "accuracy.csv"),
    }
    ok, message = model.checkParameterValues(parameters, context)
    assert ok, message
    results, ok = model.run(parameters, context, feedback)
    assert ok, feedback.errors
    for name in ("model.rssgl", "training.html", "classes.tif", "classes.qml", "accuracy.html", "accuracy.csv"):
        assert (tmp_path / name).exists(), name
    band = gdal.Open(str(tmp_path / "classes.tif"))
    assert band.GetRasterBand(1).GetNoDataValue() == 0
    assert "overall_accuracy" in (tmp_path / "accuracy.csv").read_text()
