"""Train -> Classify -> Assess through qgis_process, as a user's script would (JSON output)."""

from __future__ import annotations

import os

import pytest
from osgeo import gdal

from tests.qgis.helpers_processing import (
    QGIS_PROCESS,
    qgis_process_env,
    qgis_process_run,
    synthetic_scene,
)

pytestmark = pytest.mark.skipif(not os.path.exists(QGIS_PROCESS), reason="qgis_process is not installed")


def test_qgis_process_train_classify_assess(tmp_path, tmp_path_factory):
    """Train RSSGL with its defaults on the CPU, as a user's script: since issue 29 that is stage one (the spectral
    model's map and model file, RSSGL not trained), which Classify with RSSGL then maps from."""
    from rssgl_qgis.core.modelfile import read_metadata

    scene = synthetic_scene(str(tmp_path_factory.getbasetemp() / "rssgl_processing" / "scene"))
    env = qgis_process_env(str(tmp_path / "home"))
    out = tmp_path / "out"
    out.mkdir()
    trained = qgis_process_run(env, "rssgl:train", {
        "INPUT": scene.cube, "SAMPLES": scene.polygons, "CLASS_FIELD": "class_id", "ITERATIONS": 2,
        "DEVICE": 2, "OUTPUT_MODEL": out / "model.rssgl", "OUTPUT_CLASSIFICATION": out / "train.tif",
        "OUTPUT_REPORT": out / "training.html"})
    assert trained["algorithm_details"]["id"] == "rssgl:train"
    assert trained["results"]["OUTPUT_MODEL"] == str(out / "model.rssgl")
    assert os.path.exists(out / "model.rssgl") and os.path.exists(out / "training.html")
    assert os.path.exists(out / "train.tif") and os.path.exists(out / "train.qml")
    assert read_metadata(str(out / "model.rssgl"))["model_contents"] == "spectral model only"

    classified = qgis_process_run(env, "rssgl:classify", {
        "INPUT": scene.cube, "MODEL": out / "model.rssgl", "OUTPUT": out / "classes.tif",
        "OUTPUT_CONFIDENCE": out / "confidence.tif"})
    path = classified["results"]["OUTPUT"]
    dataset = gdal.Open(path)
    band = dataset.GetRasterBand(1)
    assert gdal.GetDataTypeName(band.DataType) == "Byte" and band.GetNoDataValue() == 0
    names = band.GetCategoryNames()
    assert len(names) == 5 and all(names[1:])  # 0 = nodata, then the four classes by value
    assert os.path.exists(out / "classes.qml") and os.path.exists(out / "confidence.tif")

    assessed = qgis_process_run(env, "rssgl:accuracy", {
        "INPUT": path, "REFERENCE_RASTER": scene.labels, "OUTPUT_HTML": out / "accuracy.html",
        "OUTPUT_CSV": out / "accuracy.csv"})
    results = assessed["results"]
    assert 0.0 <= results["OVERALL_ACCURACY"] <= 1.0
    assert os.path.exists(results["OUTPUT_HTML"]) and os.path.exists(results["OUTPUT_CSV"])


def test_qgis_process_reports_a_clear_error(tmp_path, tmp_path_factory):
    scene = synthetic_scene(str(tmp_path_factory.getbasetemp() / "rssgl_processing" / "scene"))
    env = qgis_process_env(str(tmp_path / "home"))
    with pytest.raises(AssertionError, match="either as a vector layer"):
        qgis_process_run(env, "rssgl:train", {"INPUT": scene.cube, "OUTPUT_MODEL": tmp_path / "m.rssgl"})
