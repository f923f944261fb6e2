"""Reliability through Processing (what a Toolbox / modeler / qgis_process user sees).

The engine-level cases live in tests/reliability; here the same faults go through
``processing.run`` so the check covers the algorithm layer too: the QgsProcessingException carries
the engine's sentence, a crafted model runs no code, layers in another CRS (memory layers
included) work, cancelling or failing never deletes a previous result, and input layers are
byte-for-byte unchanged after a full Train -> Classify -> Assess chain.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
from pathlib import Path

import pytest

from rssgl_qgis.workflows.stages import RSSGL_STAGES
from tests.qgis.helpers_processing import RecordingFeedback, run_algorithm
from tests.reliability.helpers import (
    BLOCKS,
    WAVELENGTHS,
    class_features,
    scene_cube,
    snapshot,
    train_tiny_classifier,
    unwritable_folder,
    use_tiny_network,
    write_raster,
    write_samples,
)

PAYLOAD_ENV = "RSSGL_TEST_PROCESSING_PAYLOAD_RAN"
#: RSSGL_STAGE "Always", for the faults inside RSSGL's training: the default ("Automatic") fits the spectral model
#: only on the CPU (issue 29), so RSSGL's forward pass never runs there.
ALWAYS = RSSGL_STAGES.index("always")


@pytest.fixture(autouse=True)
def tiny_network(monkeypatch, rssgl_provider):
    """The smallest real RSSGL (stage widths 16): these tests are about faults, not accuracy."""
    use_tiny_network(monkeypatch)


@pytest.fixture
def scene(tmp_path) -> dict[str, Path]:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    return {
        "raster": write_raster(inputs / "scene.tif", scene_cube(), wavelengths=WAVELENGTHS),
        "samples": write_samples(inputs / "samples.gpkg", class_features()),
        "folder": inputs,
    }


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A trained tiny model recording the test raster's wavelengths (trained once for the module)."""
    path = tmp_path_factory.mktemp("model") / "tiny.rssgl"
    train_tiny_classifier(wavelengths=WAVELENGTHS).save(path)
    return path


@pytest.fixture
def out(tmp_path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _train_parameters(scene, out: Path, **overrides) -> dict:
    parameters = {
        "INPUT": str(scene["raster"]), "SAMPLES": str(scene["samples"]), "CLASS_FIELD": "class_id",
        "ITERATIONS": 1, "DEVICE": 2,
        "OUTPUT_MODEL": str(out / "model.rssgl"), "OUTPUT_CLASSIFICATION": str(out / "classes.tif"),
        "OUTPUT_REPORT": str(out / "training.html"),
    }
    parameters.update(overrides)
    return parameters


def _cancel_when_training_starts():
    feedback = RecordingFeedback.create()
    feedback.progressChanged.connect(lambda value: feedback.cancel() if value >= 3 else None)
    return feedback


# ------------------------------------------------------------------------------------- untrusted model
class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        code = f"open({self.marker!r}, 'w').write('ran'); import os; os.environ[{PAYLOAD_ENV!r}] = '1'"
        return (exec, (code,))


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_classify_refuses_a_crafted_model_without_running_it(scene, out, tmp_path, monkeypatch, kind):
    import torch
    from qgis.core import QgsProcessingException

    monkeypatch.delenv(PAYLOAD_ENV, raising=False)
    marker = tmp_path / "payload_ran.txt"
    model = tmp_path / "downloaded.rssgl"
    if kind == "pickle":
        model.write_bytes(pickle.dumps({"state_dict": _Payload(str(marker))}, protocol=4))
    else:
        torch.save({"state_dict": _Payload(str(marker))}, model)
    with pytest.raises(QgsProcessingException) as info:
        run_algorithm("rssgl:classify", {"INPUT": str(scene["raster"]), "MODEL": str(model),
                                         "OUTPUT": str(out / "classes.tif")})
    assert f"'{model}' is not an RSSGL model file" in str(info.value)
    assert "PyTorch .pt/.pth checkpoints are refused because loading them can run code" in str(info.value)
    assert not marker.exists() and PAYLOAD_ENV not in os.environ, "the crafted model's code ran"
    assert snapshot(out) == {}


# ------------------------------------------------------------------------------------- samples
def _memory_layer_in_wgs84():
    """The sample polygons as an unsaved memory layer in EPSG:4326 (what a user digitises or pastes)."""
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransform,
        QgsFeature,
        QgsGeometry,
        QgsProject,
        QgsVectorLayer,
    )

    layer = QgsVectorLayer("Polygon?crs=EPSG:4326&field=class_id:integer&field=class_name:string",
                           "samples in lon/lat", "memory")
    to_wgs84 = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:32610"),
                                      QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    features = []
    for wkt, values in class_features():
        geometry = QgsGeometry.fromWkt(wkt).densifyByDistance(2.5)
        geometry.transform(to_wgs84)
        feature = QgsFeature(layer.fields())
        feature.setGeometry(geometry)
        feature.setAttributes([values["class_id"], values["class_name"]])
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    return layer


def test_samples_in_another_crs_as_a_memory_layer(scene, out):
    from qgis.core import QgsProcessingException

    layer = _memory_layer_in_wgs84()
    before = [f.geometry().asWkt() for f in layer.getFeatures()]
    feedback = _cancel_when_training_starts()
    with pytest.raises(QgsProcessingException, match="^Canceled: no output was written.$"):
        run_algorithm("rssgl:train", _train_parameters(scene, out, SAMPLES=layer), feedback=feedback)
    pixels = {v: (c1 - c0) * (r1 - r0) for v, (c0, r0, c1, r1) in BLOCKS.items()}
    assert (f"Classes: 1 water ({pixels[1]} px), 2 forest ({pixels[2]} px), 3 soil ({pixels[3]} px), "
            f"4 urban ({pixels[4]} px)") in feedback.infos
    assert [f.geometry().asWkt() for f in layer.getFeatures()] == before, "the user's layer was changed"
    assert snapshot(out) == {}


def test_sample_warnings_reach_the_processing_log(scene, out, tmp_path):
    from qgis.core import QgsProcessingException

    from tests.reliability.helpers import block_polygon_wkt

    c0, r0, _, _ = BLOCKS[1]
    features = class_features() + [
        (block_polygon_wkt((10, 10, 13, 13)), {"class_id": None}),  # NULL class
        (block_polygon_wkt((c0, r0, c0 + 2, r0 + 2)), {"class_id": 2}),  # overlaps class 1
    ]
    samples = write_samples(tmp_path / "overlapping.gpkg", features)
    feedback = _cancel_when_training_starts()
    with pytest.raises(QgsProcessingException, match="^Canceled"):
        run_algorithm("rssgl:train", _train_parameters(scene, out, SAMPLES=str(samples)), feedback=feedback)
    assert "1 feature(s) of layer 'samples' have no value in field 'class_id' and were skipped." in feedback.warnings
    assert ("4 pixel(s) are covered by samples of different classes in layer 'samples' and were left unlabelled; "
            "fix the overlapping polygons to use them.") in feedback.warnings
    assert snapshot(out) == {}


def test_samples_outside_the_raster_are_a_processing_error(scene, out, tmp_path):
    from qgis.core import QgsProcessingException

    far = {v: (c0 + 500, r0, c1 + 500, r1) for v, (c0, r0, c1, r1) in BLOCKS.items()}
    samples = write_samples(tmp_path / "elsewhere.gpkg", class_features(far))
    expected = (f"None of the 4 feature(s) of layer 'samples' overlap the raster '{scene['raster']}'. Check that "
                "the samples belong to this raster and that the layer's CRS is set correctly.")
    with pytest.raises(QgsProcessingException, match=re.escape(expected)):
        run_algorithm("rssgl:train", _train_parameters(scene, out, SAMPLES=str(samples)))
    assert snapshot(out) == {}


# ------------------------------------------------------------------------------------- previous results
def test_a_failed_training_rerun_keeps_the_previous_model(scene, out, tmp_path, tiny_model):
    from qgis.core import QgsProcessingException

    shutil.copy(tiny_model, out / "model.rssgl")
    (out / "training.html").write_text("<html>the report of the model that works</html>")
    before = snapshot(out)
    far = {v: (c0 + 500, r0, c1 + 500, r1) for v, (c0, r0, c1, r1) in BLOCKS.items()}
    samples = write_samples(tmp_path / "elsewhere.gpkg", class_features(far))
    with pytest.raises(QgsProcessingException):
        run_algorithm("rssgl:train", _train_parameters(scene, out, SAMPLES=str(samples)))
    assert snapshot(out) == before


def test_a_cancelled_classify_rerun_keeps_the_previous_classification(scene, out, tiny_model):
    """Cancelling ends the run as cancelled (issue 31: it used to exit 0 with an empty result)."""
    from qgis.core import QgsProcessingException

    parameters = {"INPUT": str(scene["raster"]), "MODEL": str(tiny_model), "OUTPUT": str(out / "classes.tif")}
    run_algorithm("rssgl:classify", parameters)
    before = snapshot(out)
    feedback = RecordingFeedback.create()
    feedback.cancel()  # the user pressed Cancel as the run started
    with pytest.raises(QgsProcessingException, match="^Canceled: no output was written.$"):
        run_algorithm("rssgl:classify", parameters, feedback=feedback)
    assert snapshot(out) == before


def test_cancelling_classify_leaves_no_output(scene, out, tiny_model):
    from qgis.core import QgsProcessingException

    feedback = RecordingFeedback.create()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="^Canceled: no output was written.$"):
        run_algorithm("rssgl:classify", {
            "INPUT": str(scene["raster"]), "MODEL": str(tiny_model), "OUTPUT": str(out / "classes.tif"),
            "OUTPUT_CONFIDENCE": str(out / "confidence.tif")}, feedback=feedback)
    assert snapshot(out) == {}


# ------------------------------------------------------------------------------------- faults
def test_gpu_out_of_memory_in_training_is_a_processing_error_in_user_terms(scene, out, monkeypatch):
    import torch
    from qgis.core import QgsProcessingException

    from rssgl_qgis.core.network.model import RSSGL

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.50 GiB.")

    monkeypatch.setattr(RSSGL, "forward", oom)
    expected = ("The GPU ran out of memory training on this 24 x 24 x 4 raster (RSSGL sees the whole scene at "
                "once). Train on the CPU (device 'CPU'), or on a smaller raster or a spatial subset around the "
                "samples.")
    with pytest.raises(QgsProcessingException, match=re.escape(expected)):
        run_algorithm("rssgl:train", _train_parameters(scene, out, RSSGL_STAGE=ALWAYS))
    assert snapshot(out) == {}


def test_host_out_of_memory_in_training_is_a_processing_error(scene, out, monkeypatch):
    from qgis.core import QgsProcessingException

    from rssgl_qgis.core.network.model import RSSGL

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(RSSGL, "forward", no_memory)
    with pytest.raises(QgsProcessingException) as info:
        run_algorithm("rssgl:train", _train_parameters(scene, out, RSSGL_STAGE=ALWAYS))
    assert "memory" in str(info.value) and "smaller raster" in str(info.value)
    assert snapshot(out) == {}


def test_an_unwritable_model_path_is_a_processing_error(scene, tmp_path):
    from qgis.core import QgsProcessingException

    folder = unwritable_folder(tmp_path)
    target = folder / "model.rssgl"
    before = snapshot(tmp_path)
    with pytest.raises(QgsProcessingException, match=re.escape(f"Cannot write '{target}'")):
        run_algorithm("rssgl:train", _train_parameters(scene, folder, OUTPUT_CLASSIFICATION=None,
                                                       OUTPUT_REPORT=None))
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------------------- inputs untouched
def test_train_classify_assess_never_modify_the_inputs(scene, out):
    before = snapshot(scene["folder"])
    trained, _ = run_algorithm("rssgl:train", _train_parameters(scene, out))
    classified, _ = run_algorithm("rssgl:classify", {
        "INPUT": str(scene["raster"]), "MODEL": trained["OUTPUT_MODEL"], "MASK": str(scene["samples"]),
        "OUTPUT": str(out / "classified.tif"), "OUTPUT_CONFIDENCE": str(out / "confidence.tif")})
    run_algorithm("rssgl:accuracy", {
        "INPUT": classified["OUTPUT"], "REFERENCE": str(scene["samples"]), "REFERENCE_FIELD": "class_id",
        "OUTPUT_HTML": str(out / "accuracy.html"), "OUTPUT_CSV": str(out / "accuracy.csv")})
    after = snapshot(scene["folder"])
    # QGIS itself (not the plugin) writes scene.tif.aux.xml with band statistics when it opens the raster
    # as a layer for the default renderer, as for any raster a user adds; the inputs themselves must not change.
    assert set(after) - set(before) <= {"scene.tif.aux.xml"}, "a file appeared next to the inputs"
    assert {name: after[name] for name in before} == before, "an input file was modified"
    leftovers = [name for name in snapshot(out) if ".tmp-" in name or name.endswith(".tmp")]
    assert leftovers == []
    assert {"model.rssgl", "classes.tif", "classified.tif", "confidence.tif", "training.html"} <= set(snapshot(out))
    shutil.rmtree(out)


def test_a_memory_error_in_every_tile_size_names_the_cpu_and_what_to_do(scene, out, tiny_model, monkeypatch):
    from qgis.core import QgsProcessingException

    from rssgl_qgis.core.prediction.inference import TilePredictor

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(TilePredictor, "probabilities", no_memory)
    with pytest.raises(QgsProcessingException) as info:
        run_algorithm("rssgl:classify", {"INPUT": str(scene["raster"]), "MODEL": str(tiny_model),
                                         "OUTPUT": str(out / "classes.tif")})
    # tiled classification retries with smaller tiles first, then says so in the CPU's terms
    assert str(info.value) == ("The CPU ran out of memory even with 32-pixel tiles. Close other programs, or lower "
                               "the memory limit or the tile size.")
    assert snapshot(out) == {}


def test_a_bare_memory_error_outside_tiling_still_says_what_to_do(scene, out, tiny_model, monkeypatch):
    """numpy/torch raise MemoryError() without text: the message must not read 'Not enough memory: .'."""
    from qgis.core import QgsProcessingException

    from rssgl_qgis.io import classify_raster

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(classify_raster, "predict_tiled", no_memory)
    with pytest.raises(QgsProcessingException) as info:
        run_algorithm("rssgl:classify", {"INPUT": str(scene["raster"]), "MODEL": str(tiny_model),
                                         "OUTPUT": str(out / "classes.tif")})
    assert str(info.value) == ("Not enough memory to finish. Close other programs, or use a smaller raster or "
                               "fewer optional outputs.")
    assert snapshot(out) == {}


# ------------------------------------------------------------------------------------- band selection (issue 14)
BAND_CENTRES = [450.0, 550.0, 670.0, 860.0, 1400.0, 1650.0, 1900.0, 2200.0]


def test_band_selection_and_water_vapour_preset_through_processing(scene, out, tmp_path):
    """Train on a band subset (the preset drops 1400 and 1900 nm, BANDS drops band 1); Classify then picks
    those bands from the full 8-band raster."""
    from rssgl_qgis.core.training.classifier import RssglClassifier

    raster = write_raster(tmp_path / "eight.tif", scene_cube(bands=8), wavelengths=BAND_CENTRES)
    feedback = RecordingFeedback.create()
    run_algorithm("rssgl:train", _train_parameters(scene, out, INPUT=str(raster), BANDS="drop 1",
                                                   DROP_WATER_VAPOUR=True, CROSS_VALIDATION=0), feedback=feedback)
    assert ("Band selection ('drop 1'; drop the water-vapour windows (1340-1460 nm, 1790-1960 nm, beyond 2450 nm)) "
            "leaves out 3 more band(s): 1 (450 nm), 5 (1400 nm), 7 (1900 nm).") in feedback.infos
    meta = RssglClassifier.load(str(out / "model.rssgl"), device="cpu").metadata()
    assert meta["band_indices"] == [2, 3, 4, 6, 8] and meta["band_wavelengths"] == [550.0, 670.0, 860.0, 1650.0, 2200.0]
    results, classify_feedback = run_algorithm("rssgl:classify", {"INPUT": str(raster), "MODEL": str(out / "model.rssgl"),
                                                                  "OUTPUT": str(out / "full.tif")})
    assert os.path.isfile(results["OUTPUT"])
    assert any("5 of 8 bands" in m for m in classify_feedback.infos)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"BANDS": "1-9"}, "The band selection '1-9' lies outside the raster's bands: they are numbered 1 to 4."),
    ({"BANDS": "blue"}, "The band selection cannot read 'blue'"),
    ({"DROP_WATER_VAPOUR": True}, "Dropping the water-vapour bands needs the raster's band wavelengths"),
])
def test_bad_band_selections_are_processing_errors(scene, out, tmp_path, overrides, message):
    from qgis.core import QgsProcessingException

    raster = scene["raster"] if "BANDS" in overrides else write_raster(tmp_path / "plain.tif", scene_cube())
    with pytest.raises(QgsProcessingException, match=re.escape(message)):
        run_algorithm("rssgl:train", _train_parameters(scene, out, INPUT=str(raster), **overrides))
    assert not (out / "model.rssgl").exists()


# ------------------------------------------------------------------------------------------------ issue 31
def test_a_bad_classification_path_is_refused_before_training_and_keeps_the_previous_model(scene, out, tiny_model,
                                                                                            monkeypatch):
    """The tester's OUTPUT_CLASSIFICATION=cls.img: the whole training ran, then the model was deleted."""
    from qgis.core import QgsProcessingException

    from rssgl_qgis.core.training.classifier import RssglClassifier

    shutil.copy(tiny_model, out / "model.rssgl")
    (out / "training.html").write_text("<html>the report of the model that works</html>")
    before = snapshot(out)
    for fit in ("fit", "fit_spectral_only"):  # RSSGL (stage two) or the spectral model alone (stage one, the CPU default)
        monkeypatch.setattr(RssglClassifier, fit, lambda *a, **k: pytest.fail("trained before checking the outputs"))
    expected = (f"The classification output '{out / 'cls.img'}' must be a GeoTIFF file (.tif or .tiff); choose a "
                "name such as 'cls.tif'.")
    with pytest.raises(QgsProcessingException, match=f"^{re.escape(expected)}$"):
        run_algorithm("rssgl:train", _train_parameters(scene, out, OUTPUT_CLASSIFICATION=str(out / "cls.img")))
    assert snapshot(out) == before


def test_a_model_named_txt_is_refused_by_train(scene, out):
    """Train accepted model.txt, then Classify refused it with QGIS's generic 'Incorrect parameter value'."""
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException

    expected = (f"The model file '{out / 'model.txt'}' must end in .rssgl, the extension 'Classify with RSSGL' "
                "reads; choose a name such as 'model.rssgl'.")
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("rssgl:train")
    ok, message = algorithm.checkParameterValues(_train_parameters(scene, out, OUTPUT_MODEL=str(out / "model.txt")),
                                                 QgsProcessingContext())
    assert not ok and message == expected
    with pytest.raises(QgsProcessingException, match=re.escape(expected)):
        run_algorithm("rssgl:train", _train_parameters(scene, out, OUTPUT_MODEL=str(out / "model.txt")))
    assert snapshot(out) == {}


def test_assess_refuses_the_same_file_for_html_and_csv(scene, out, tiny_model):
    from qgis.core import QgsProcessingException

    classified, _ = run_algorithm("rssgl:classify", {"INPUT": str(scene["raster"]), "MODEL": str(tiny_model),
                                                     "OUTPUT": str(out / "classes.tif")})
    (out / "accuracy.html").write_text("<html>last week's report</html>")
    before = snapshot(out)
    expected = (f"The accuracy report (HTML) and the accuracy table (CSV) both point to '{out / 'accuracy.html'}'; "
                "give each its own file.")
    with pytest.raises(QgsProcessingException, match=f"^{re.escape(expected)}$"):
        run_algorithm("rssgl:accuracy", {"INPUT": classified["OUTPUT"], "REFERENCE": str(scene["samples"]),
                                         "REFERENCE_FIELD": "class_id", "OUTPUT_HTML": str(out / "accuracy.html"),
                                         "OUTPUT_CSV": str(out / "accuracy.html")})
    assert snapshot(out) == before


# ------------------------------------------------------------------------------------- issue 31: bands, inputs
def test_an_empty_map_is_a_processing_error_naming_the_empty_band(out, tmp_path, tiny_model):
    """Defect 3: a map with no valid pixel is an error in the user's terms, not '0 valid pixels' and exit 0."""
    import numpy as np
    from qgis.core import QgsProcessingException

    cube = scene_cube()
    cube[1] = np.nan
    raster = write_raster(tmp_path / "gappy.tif", cube)
    expected = ("The classification of 'gappy.tif' came out empty (no valid pixel), so nothing was written: 1 of the "
                "4 bands the model uses hold no data in this raster (nodata or NaN everywhere): 2. Use a raster in "
                "which these bands hold data (the training raster's sensor and processing), or train a model on this "
                "raster ('Train RSSGL' leaves empty bands out).")
    with pytest.raises(QgsProcessingException, match=re.escape(expected)):
        run_algorithm("rssgl:classify", {"INPUT": str(raster), "MODEL": str(tiny_model),
                                         "OUTPUT": str(out / "classes.tif")})
    assert snapshot(out) == {}


def test_assess_refuses_the_confidence_raster_as_the_classification(scene, out, tiny_model):
    """Defect 7: the confidence output given as the classification is named as such."""
    from qgis.core import QgsProcessingException

    classified, _ = run_algorithm("rssgl:classify", {"INPUT": str(scene["raster"]), "MODEL": str(tiny_model),
                                                     "OUTPUT": str(out / "classes.tif"),
                                                     "OUTPUT_CONFIDENCE": str(out / "confidence.tif")})
    with pytest.raises(QgsProcessingException) as info:
        run_algorithm("rssgl:accuracy", {"INPUT": classified["OUTPUT_CONFIDENCE"], "REFERENCE": str(scene["samples"]),
                                         "REFERENCE_FIELD": "class_id", "OUTPUT_HTML": str(out / "accuracy.html")})
    assert "where a classification holds whole class values: it is the confidence raster written by 'Classify with " \
           "RSSGL'. Choose the classification raster" in str(info.value)
    assert not (out / "accuracy.html").exists()
