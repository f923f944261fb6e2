"""The three RSSGL algorithms through processing.run: outputs, styles, help, errors, cancel.

One model is trained per session on a 48 x 48 x 40 synthetic scene (20 CPU iterations) and reused.
"""

from __future__ import annotations

import csv
import os
import re

import numpy as np
import pytest
from osgeo import gdal

from rssgl_qgis.workflows.stages import RSSGL_STAGES
from tests.qgis.helpers_processing import RecordingFeedback, run_algorithm, synthetic_scene, trained_model

#: RSSGL_STAGE "Always": RSSGL trains on the CPU too (issue 29's default, "Automatic", gives the spectral model's
#: map only there).
ALWAYS = RSSGL_STAGES.index("always")
ALGORITHMS = {"rssgl:train": "Train RSSGL", "rssgl:classify": "Classify with RSSGL",
              "rssgl:accuracy": "Assess accuracy"}


@pytest.fixture(scope="module")
def work(tmp_path_factory, rssgl_plugin):
    return str(tmp_path_factory.getbasetemp() / "rssgl_processing")


@pytest.fixture(scope="module")
def trained(work):
    return trained_model(work)


def classification_facts(path: str) -> dict:
    dataset = gdal.Open(path)
    band = dataset.GetRasterBand(1)
    table = band.GetColorTable()
    return {
        "dtype": gdal.GetDataTypeName(band.DataType),
        "nodata": band.GetNoDataValue(),
        "names": band.GetCategoryNames(),
        "colors": {i: table.GetColorEntry(i)[:3] for i in range(table.GetCount())} if table else {},
        "array": band.ReadAsArray(),
    }


# ---------------------------------------------------------------------------------------------- help


def test_algorithms_are_registered_with_help_for_every_parameter(rssgl_provider):
    from qgis.core import QgsApplication

    from rssgl_qgis.qgis_compat import PARAMETER_FLAG_ADVANCED

    registry = QgsApplication.processingRegistry()
    for algorithm_id, display in ALGORITHMS.items():
        algorithm = registry.createAlgorithmById(algorithm_id)
        assert algorithm is not None, algorithm_id
        assert algorithm.displayName() == display
        assert algorithm.group() == "Hyperspectral classification" and algorithm.groupId() == "hyperspectral"
        assert not algorithm.icon().isNull()
        explained = algorithm.parameterExplanations()
        names = [d.name() for d in algorithm.parameterDefinitions()] + [o.name() for o in algorithm.outputDefinitions()]
        missing = sorted(set(names) - set(explained))
        assert not missing, f"{algorithm_id}: parameters without help: {missing}"
        help_text = algorithm.shortHelpString()
        for definition in algorithm.parameterDefinitions():
            assert f"<b>{definition.description()}</b>" in help_text
            assert definition.name() == definition.name().upper()  # constants UPPER_SNAKE
        assert type(algorithm.createInstance()) is type(algorithm)
    train = registry.createAlgorithmById("rssgl:train")
    for name in ("ITERATIONS", "LEARNING_RATE", "KERNEL", "STAT_LOSS_WEIGHT", "SEED", "DEVICE", "PATIENCE",
                 "CROSS_VALIDATION", "BANDS", "DROP_WATER_VAPOUR"):
        assert train.parameterDefinition(name).flags() & PARAMETER_FLAG_ADVANCED, name
    assert "VALIDATION_SHARE" in [d.name() for d in train.parameterDefinitions()]


def test_creating_algorithms_does_not_import_torch(rssgl_provider):
    import subprocess
    import sys

    from tests.qgis.conftest import REPO_ROOT

    code = (
        f"import sys; sys.path[:0] = [{REPO_ROOT!r}, '/usr/share/qgis/python/plugins']\n"
        "from qgis.core import QgsApplication\n"
        "app = QgsApplication([], False); app.initQgis()\n"
        "from rssgl_qgis.processing.provider import RssglProvider\n"
        "p = RssglProvider(); QgsApplication.processingRegistry().addProvider(p)\n"
        "assert len(p.algorithms()) == 3, p.algorithms()\n"
        "[a.shortHelpString() for a in p.algorithms()]\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_train_needs_exactly_one_sample_source(rssgl_provider, work):
    from qgis.core import QgsApplication, QgsProcessingContext

    scene = synthetic_scene(os.path.join(work, "scene"))
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("rssgl:train")
    context = QgsProcessingContext()
    ok, message = algorithm.checkParameterValues({"INPUT": scene.cube, "OUTPUT_MODEL": "m.rssgl"}, context)
    assert not ok and "either as a vector layer" in message
    ok, message = algorithm.checkParameterValues({"INPUT": scene.cube, "SAMPLES": scene.polygons,
                                                  "OUTPUT_MODEL": "m.rssgl"}, context)
    assert not ok and "Class field" in message
    ok, message = algorithm.checkParameterValues({"INPUT": scene.cube, "SAMPLES": scene.polygons, "CLASS_FIELD":
                                                  "class_id", "CROSS_VALIDATION": 1, "OUTPUT_MODEL": "m.rssgl"}, context)
    assert not ok and "at least 2 folds" in message


def test_train_with_cross_validation_gives_the_estimate_as_an_output(rssgl_provider, work):
    scene = synthetic_scene(os.path.join(work, "scene"))
    out = os.path.join(work, "cv")
    os.makedirs(out, exist_ok=True)
    results, feedback = run_algorithm("rssgl:train", {
        "INPUT": scene.cube, "SAMPLES": scene.polygons, "CLASS_FIELD": "class_id", "ITERATIONS": 1, "DEVICE": 2,
        "RSSGL_STAGE": ALWAYS,  # the folds run where RSSGL trains; the CPU's default is stage one, without folds
        "CROSS_VALIDATION": 2, "OUTPUT_MODEL": os.path.join(out, "cv.rssgl"), "OUTPUT_CLASSIFICATION": None,
        "OUTPUT_REPORT": os.path.join(out, "cv.html")})
    assert 0.0 <= results["CROSS_VALIDATED_OA"] <= 1.0
    assert any("Cross-validated overall accuracy (2 folds of whole samples)" in m for m in feedback.infos)
    assert "Cross-validated accuracy (2 folds of whole samples)" in open(os.path.join(out, "cv.html")).read()


def test_default_training_chooses_the_combination_by_cross_validation_and_reports_every_candidate(
        rssgl_provider, work, monkeypatch):
    """No CROSS_VALIDATION given: the default 3 folds choose how RSSGL and the spectral model are pooled;
    the log and the report name every candidate and the chosen one, and the model file keeps it. RSSGL_STAGE
    "Always": the default ("Automatic") trains RSSGL, and so runs the folds, on a CUDA GPU only."""
    from rssgl_qgis.core.modelfile import load_model
    from rssgl_qgis.core.training import cross_validation
    from rssgl_qgis.core.training.cross_validation import BLEND_CANDIDATES, blend_label

    # RSSGL on every fold: with 2 iterations the first fold may rule it out (the adaptive cross-validation,
    # tests/io/test_cross_validation.py), and then only the spectral model is a candidate
    monkeypatch.setattr(cross_validation, "RSSGL_FOLDS", "all")

    scene = synthetic_scene(os.path.join(work, "scene"))
    out = os.path.join(work, "default_cv")
    os.makedirs(out, exist_ok=True)
    results, feedback = run_algorithm("rssgl:train", {
        "INPUT": scene.cube, "SAMPLES": scene.polygons, "CLASS_FIELD": "class_id", "ITERATIONS": 2, "DEVICE": 2,
        "RSSGL_STAGE": ALWAYS, "OUTPUT_MODEL": os.path.join(out, "m.rssgl"), "OUTPUT_CLASSIFICATION": None,
        "OUTPUT_REPORT": os.path.join(out, "m.html")})
    _, meta = load_model(results["OUTPUT_MODEL"])
    assert meta["selection"] == "fit" and meta["spectral"] is not None
    assert meta["blend_weight"] in BLEND_CANDIDATES and meta["rssgl_temperature"] >= 1.0
    assert meta["spectral_temperature"] >= 1.0
    infos = "\n".join(feedback.infos)
    folds = int(re.search(r"over (\d) folds of whole samples", infos).group(1))
    assert folds >= 2  # 3 asked; the test scene has 2 polygons per class, so 2 folds hold them
    for w in BLEND_CANDIDATES:
        assert f"Cross-validated OA of {blend_label(w)}:" in infos
    chosen = blend_label(meta["blend_weight"])
    assert f"Model used for the map: {chosen}, chosen by cross-validation over {folds} folds" in infos
    html = open(os.path.join(out, "m.html")).read()
    assert "Which model the map uses" in html and html.count(">chosen</td>") == 1
    assert f"spectral model {meta['spectral_temperature']:.2f}; above 1 = less confident" in html
    assert f"the spectral model's {meta['spectral_temperature']:.2f}" in infos
    assert "Model used for the map" in html


# ---------------------------------------------------------------------------------------------- train


def test_train_writes_model_report_and_styled_classification(trained):
    from rssgl_qgis.core.modelfile import load_model

    results, feedback, _scene = trained
    _, meta = load_model(results["OUTPUT_MODEL"])
    assert meta["band_count"] == 40
    assert meta["class_values"] == [1, 2, 3, 4]
    assert meta["training_params"]["iterations"] == 20 and meta["training_params"]["seed"] == 1
    assert meta["selection"] == "validation"
    names = meta["class_names"]
    assert all(n and not n.startswith("class ") for n in names)  # names came from the class_name field

    facts = classification_facts(results["OUTPUT_CLASSIFICATION"])
    assert facts["dtype"] == "Byte" and facts["nodata"] == 0
    assert facts["names"][1:5] == names
    assert [facts["colors"][v] for v in (1, 2, 3, 4)] == [tuple(c) for c in meta["class_colors"]]
    assert set(np.unique(facts["array"])) <= {0, 1, 2, 3, 4}
    assert os.path.exists(os.path.splitext(results["OUTPUT_CLASSIFICATION"])[0] + ".qml")
    confidence = gdal.Open(results["OUTPUT_CONFIDENCE"]).ReadAsArray()
    assert confidence.dtype == np.float32 and confidence.max() <= 1.0 and confidence.max() > 0.25

    report = open(results["OUTPUT_REPORT"], encoding="utf-8").read()
    assert "<svg" in report and "validation OA" in report
    for name in names:
        assert name in report
    # what the user saw in the log
    assert any(line.startswith("Epoch 2:") and "validation OA" in line for line in feedback.infos)
    assert any("Classes:" in line for line in feedback.infos)
    assert any("CPU" in line for line in feedback.warnings)
    assert feedback.progress_values and max(feedback.progress_values) == pytest.approx(100.0)


def test_classification_loads_as_paletted_layer_with_class_names(trained):
    from qgis.core import QgsRasterLayer

    results, _, _ = trained
    layer = QgsRasterLayer(results["OUTPUT_CLASSIFICATION"], "classes")
    assert layer.isValid()
    renderer = layer.renderer()
    assert renderer.type() == "paletted"
    labels = {c.value: c.label for c in renderer.classes()}
    from rssgl_qgis.core.modelfile import load_model

    _, meta = load_model(results["OUTPUT_MODEL"])
    assert labels == dict(zip(meta["class_values"], meta["class_names"], strict=True))


def test_text_class_field_and_label_raster_samples(rssgl_provider, work):
    """CLASS_FIELD as text maps names to 1..N; SAMPLES_RASTER works alone (both checked up to a saved model). Both
    with the default RSSGL stage, which on the CPU saves the spectral model only (stage one, issue 29)."""
    from rssgl_qgis.core.modelfile import load_model

    scene = synthetic_scene(os.path.join(work, "scene"))
    out = os.path.join(work, "variants")
    os.makedirs(out, exist_ok=True)
    results, feedback = run_algorithm("rssgl:train", {
        "INPUT": scene.cube, "SAMPLES": scene.polygons, "CLASS_FIELD": "class_name", "ITERATIONS": 1,
        "DEVICE": 2, "OUTPUT_MODEL": os.path.join(out, "text.rssgl"), "OUTPUT_CLASSIFICATION": None,
        "OUTPUT_REPORT": None})
    _, meta = load_model(results["OUTPUT_MODEL"])
    assert meta["class_values"] == [1, 2, 3, 4]
    assert meta["class_names"] == sorted(meta["class_names"], key=str.casefold)
    results, _ = run_algorithm("rssgl:train", {
        "INPUT": scene.cube, "SAMPLES_RASTER": scene.labels, "ITERATIONS": 1, "DEVICE": 2,
        "VALIDATION_SHARE": 0.0, "OUTPUT_MODEL": os.path.join(out, "raster.rssgl"),
        "OUTPUT_CLASSIFICATION": None, "OUTPUT_REPORT": None})
    _, meta = load_model(results["OUTPUT_MODEL"])
    assert meta["model_contents"] == "spectral model only"  # the CPU default; "fit" selection: the default-CV test
    assert len(meta["class_values"]) == 4


def test_cancelled_training_leaves_no_output(rssgl_provider, work):
    """A cancelled run ends as cancelled, the Processing way (an exception: qgis_process exits non-zero, a model
    stops), not as an empty success (issue 31)."""
    from qgis.core import QgsProcessingException

    scene = synthetic_scene(os.path.join(work, "scene"))
    out = os.path.join(work, "cancel")
    os.makedirs(out, exist_ok=True)
    feedback = RecordingFeedback.create()
    feedback.progressChanged.connect(lambda value: feedback.cancel() if value >= 3 else None)
    with pytest.raises(QgsProcessingException, match="^Canceled: no output was written.$"):
        run_algorithm("rssgl:train", {
            "INPUT": scene.cube, "SAMPLES": scene.polygons, "CLASS_FIELD": "class_id", "ITERATIONS": 20, "DEVICE": 2,
            "OUTPUT_MODEL": os.path.join(out, "model.rssgl"), "OUTPUT_CLASSIFICATION": os.path.join(out, "c.tif"),
            "OUTPUT_REPORT": os.path.join(out, "r.html")}, feedback=feedback)
    assert os.listdir(out) == []


def test_too_small_class_is_a_clear_processing_error(rssgl_provider, work):
    from qgis.core import QgsProcessingException

    scene = synthetic_scene(os.path.join(work, "scene"))
    labels = gdal.Open(scene.labels)
    array = labels.GetRasterBand(1).ReadAsArray()
    array[array == 3] = 0
    array[np.argwhere(array == 0)[0][0], np.argwhere(array == 0)[0][1]] = 3  # class 3: one pixel
    path = os.path.join(work, "one_pixel_class.tif")
    copy = gdal.GetDriverByName("GTiff").CreateCopy(path, labels)
    copy.GetRasterBand(1).WriteArray(array)
    copy = None
    with pytest.raises(QgsProcessingException, match=r"at least 5 training pixels; too few for .*value 3: 1 pixel"):
        run_algorithm("rssgl:train", {"INPUT": scene.cube, "SAMPLES_RASTER": path, "DEVICE": 2,
                                      "OUTPUT_MODEL": os.path.join(work, "never.rssgl")})
    assert not os.path.exists(os.path.join(work, "never.rssgl"))


# ---------------------------------------------------------------------------------------------- classify


def test_classify_with_vector_mask_confidence_and_probabilities(trained, work):
    from rssgl_qgis.core.modelfile import load_model
    from rssgl_qgis.io.raster import raster_info
    from rssgl_qgis.io.samples import labels_from_vector

    results, _, scene = trained
    out = os.path.join(work, "classify")
    os.makedirs(out, exist_ok=True)
    classified, feedback = run_algorithm("rssgl:classify", {
        "INPUT": scene.cube, "MODEL": results["OUTPUT_MODEL"], "MASK": scene.polygons,
        "OUTPUT": os.path.join(out, "classes.tif"), "OUTPUT_CONFIDENCE": os.path.join(out, "confidence.tif"),
        "OUTPUT_PROBABILITIES": os.path.join(out, "probabilities.tif")})
    _, meta = load_model(results["OUTPUT_MODEL"])
    facts = classification_facts(classified["OUTPUT"])
    assert facts["dtype"] == "Byte" and facts["nodata"] == 0
    assert facts["names"][1:5] == meta["class_names"]
    assert os.path.exists(os.path.join(out, "classes.qml"))
    # the mask: only pixels inside the training polygons are classified
    mask = labels_from_vector(scene.polygons, None, "class_id", raster_info(scene.cube)).labels > 0
    assert (facts["array"][~mask] == 0).all()
    assert (facts["array"][mask] > 0).mean() > 0.99
    probabilities = gdal.Open(classified["OUTPUT_PROBABILITIES"])
    assert probabilities.RasterCount == 4
    stack = probabilities.ReadAsArray()
    assert np.allclose(stack[:, mask].sum(axis=0), 1.0, atol=1e-4)
    confidence = gdal.Open(classified["OUTPUT_CONFIDENCE"]).ReadAsArray()
    np.testing.assert_allclose(confidence[mask], stack[:, mask].max(axis=0), atol=1e-6)
    assert any("Mask:" in line for line in feedback.infos)


def test_classify_rejects_a_raster_with_other_bands(trained, work):
    from qgis.core import QgsProcessingException

    results, _, scene = trained
    subset = os.path.join(work, "subset_30_bands.tif")
    gdal.Translate(subset, scene.cube, bandList=list(range(1, 31)))
    # the model records its 40 bands: the 30-band raster lacks band 31 on, named with its wavelength
    with pytest.raises(QgsProcessingException, match=r"The raster 'subset_30_bands.tif' has no band at [\d.]+ nm "
                                                     r"\(within 2 nm\), which the model uses \(its band 31 of 40"):
        run_algorithm("rssgl:classify", {"INPUT": subset, "MODEL": results["OUTPUT_MODEL"],
                                         "OUTPUT": os.path.join(work, "wrong.tif")})
    assert not os.path.exists(os.path.join(work, "wrong.tif"))


def test_classify_rejects_a_file_that_is_not_a_model(trained, work):
    from qgis.core import QgsProcessingException

    _, _, scene = trained
    fake = os.path.join(work, "fake.rssgl")
    with open(fake, "wb") as stream:
        stream.write(b"not a model at all")
    with pytest.raises(QgsProcessingException):
        run_algorithm("rssgl:classify", {"INPUT": scene.cube, "MODEL": fake,
                                         "OUTPUT": os.path.join(work, "fake.tif")})
    assert not os.path.exists(os.path.join(work, "fake.tif"))


def test_post_processor_styles_the_loaded_layer(trained, work):
    """When QGIS loads the output, the kept post-processor gives it the paletted style with names."""
    from qgis.core import (
        QgsApplication,
        QgsProcessingContext,
        QgsProcessingOutputLayerDefinition,
        QgsProject,
        QgsRasterLayer,
        QgsSingleBandGrayRenderer,
    )

    results, _, scene = trained
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("rssgl:classify")
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = RecordingFeedback.create()
    target = os.path.join(work, "loaded.tif")
    parameters = {"INPUT": scene.cube, "MODEL": results["OUTPUT_MODEL"],
                  "OUTPUT": QgsProcessingOutputLayerDefinition(target, QgsProject.instance())}
    outputs, ok = algorithm.run(parameters, context, feedback)
    assert ok, feedback.errors
    assert context.willLoadLayerOnCompletion(target)
    processor = context.layerToLoadOnCompletionDetails(target).postProcessor()
    # run() executed a copy of the algorithm that is gone now: the processor must still be ours
    from rssgl_qgis.layer_style import ClassificationPostProcessor

    assert isinstance(processor, ClassificationPostProcessor)
    layer = QgsRasterLayer(target, "loaded", "gdal", QgsRasterLayer.LayerOptions(loadDefaultStyle=False))
    layer.setRenderer(QgsSingleBandGrayRenderer(layer.dataProvider(), 1))  # what a lost post-processor gives
    processor.postProcessLayer(layer, context, feedback)
    assert layer.renderer().type() == "paletted"
    assert all(c.label and not c.label.startswith("class ") for c in layer.renderer().classes())


# ---------------------------------------------------------------------------------------------- accuracy


def test_accuracy_reports_match_core_metrics(trained, work):
    from rssgl_qgis.core.metrics import accuracy_summary, confusion_matrix

    results, _, scene = trained
    out = os.path.join(work, "accuracy")
    os.makedirs(out, exist_ok=True)
    assessed, _ = run_algorithm("rssgl:accuracy", {
        "INPUT": results["OUTPUT_CLASSIFICATION"], "REFERENCE_RASTER": scene.labels,
        "OUTPUT_HTML": os.path.join(out, "accuracy.html"), "OUTPUT_CSV": os.path.join(out, "accuracy.csv")})
    mapped = gdal.Open(results["OUTPUT_CLASSIFICATION"]).ReadAsArray().astype(int)
    reference = gdal.Open(scene.labels).ReadAsArray().astype(int)
    keep = (reference > 0) & (mapped > 0)
    values = [1, 2, 3, 4]
    cm = confusion_matrix(reference[keep], mapped[keep], values)
    pixel_area = abs(gdal.Open(scene.cube).GetGeoTransform()[1] * gdal.Open(scene.cube).GetGeoTransform()[5])
    areas = np.array([(mapped == v).sum() for v in values]) * pixel_area
    expected = accuracy_summary(cm, class_areas=areas)
    assert assessed["OVERALL_ACCURACY"] == pytest.approx(expected["oa"])
    assert assessed["KAPPA"] == pytest.approx(expected["kappa"])
    rows = list(csv.DictReader(open(assessed["OUTPUT_CSV"], encoding="utf-8")))
    by = {(r["metric"], r["class_value"], r["mapped_value"]): float(r["value"]) for r in rows}
    assert by[("overall_accuracy", "", "")] == pytest.approx(expected["oa"])
    assert by[("area_adjusted_overall_accuracy", "", "")] == pytest.approx(expected["area_adjusted"]["oa"])
    for i, v in enumerate(values):
        assert by[("mapped_area", str(v), "")] == pytest.approx(areas[i])
        assert by[("users_accuracy", str(v), "")] == pytest.approx(expected["users"][i], nan_ok=True)
        for j, w in enumerate(values):
            assert by[("confusion", str(v), str(w))] == cm[i, j]
    html = open(assessed["OUTPUT_HTML"], encoding="utf-8").read()
    assert f"{100 * expected['oa']:.2f} &plusmn;" in html and "m²" in html


def test_accuracy_with_text_reference_field_matches_class_names(trained, work):
    results, _, scene = trained
    by_value, _ = run_algorithm("rssgl:accuracy", {
        "INPUT": results["OUTPUT_CLASSIFICATION"], "REFERENCE": scene.polygons, "REFERENCE_FIELD": "class_id",
        "OUTPUT_HTML": os.path.join(work, "by_value.html")})
    by_name, feedback = run_algorithm("rssgl:accuracy", {
        "INPUT": results["OUTPUT_CLASSIFICATION"], "REFERENCE": scene.polygons, "REFERENCE_FIELD": "class_name",
        "OUTPUT_HTML": os.path.join(work, "by_name.html")})
    assert any("matched to the classification's class names" in line for line in feedback.infos)
    assert by_name["OVERALL_ACCURACY"] == pytest.approx(by_value["OVERALL_ACCURACY"])
    assert by_name["OVERALL_ACCURACY"] > 0.5  # training polygons: the model has seen them


def test_memory_layer_selection_becomes_a_file_with_only_the_selected_features(rssgl_provider, work):
    """io.samples reads files: a memory layer's selection is exported to a temporary GeoPackage first."""
    from qgis.core import (
        QgsApplication,
        QgsFeatureRequest,
        QgsProcessingContext,
        QgsProcessingFeatureSourceDefinition,
        QgsProject,
        QgsVectorLayer,
    )

    scene = synthetic_scene(os.path.join(work, "scene"))
    on_disk = QgsVectorLayer(scene.polygons, "polygons", "ogr")
    memory = on_disk.materialize(QgsFeatureRequest())  # a memory-provider copy, as a digitised scratch layer
    assert memory.providerType() == "memory"
    QgsProject.instance().addMapLayer(memory)
    try:
        ids = [f.id() for f in memory.getFeatures()][:3]
        memory.selectByIds(ids)
        algorithm = QgsApplication.processingRegistry().createAlgorithmById("rssgl:train")
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        parameters = {"SAMPLES": QgsProcessingFeatureSourceDefinition(memory.id(), True)}
        path, layer_name = algorithm.vector_file(parameters, "SAMPLES", context, RecordingFeedback.create())
        exported = gdal.OpenEx(path, gdal.OF_VECTOR)
        layer = exported.GetLayerByName(layer_name) if layer_name else exported.GetLayer(0)
        assert layer.GetFeatureCount() == 3
        assert layer.GetLayerDefn().GetFieldIndex("class_id") >= 0
    finally:
        QgsProject.instance().removeMapLayer(memory.id())
