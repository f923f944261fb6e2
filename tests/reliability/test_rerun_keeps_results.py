"""Issue 31: a re-run never destroys the last good result; bad output paths are refused before any work.

Each test reproduces one defect the tester found (they failed on the code before the fix):
a failed or cancelled re-run of Train deleted the previous model, Assess wrote its CSV over its own
HTML report, a model named ``model.txt`` was accepted by Train (and refused by Classify later), and
model files were written 0600 whatever the file they replaced. No qgis import.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rssgl_qgis.core.errors import Cancelled, RssglError
from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams
from rssgl_qgis.workflows.assess import assess_accuracy
from rssgl_qgis.workflows.train import train_from_files

from .helpers import (
    WAVELENGTHS,
    class_features,
    scene_cube,
    snapshot,
    train_tiny_classifier,
    write_raster,
    write_samples,
)


@pytest.fixture
def scene(tmp_path) -> dict[str, Path]:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    return {"raster": write_raster(inputs / "scene.tif", scene_cube(), wavelengths=WAVELENGTHS),
            "samples": write_samples(inputs / "samples.gpkg", class_features())}


@pytest.fixture
def out(tmp_path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _previous_run(out: Path) -> dict[str, str]:
    """A model and a report of an earlier, good run at the paths the re-run will use."""
    train_tiny_classifier().save(out / "model.rssgl")
    (out / "training.html").write_text("<html>the report of the model that works</html>")
    return snapshot(out)


def _train(scene, out: Path, **kwargs):
    arguments = dict(samples_vector=str(scene["samples"]), class_field="class_id",
                     params=TrainingParams(iterations=1, device="cpu"), model_out=str(out / "model.rssgl"),
                     report_out=str(out / "training.html"))
    arguments.update(kwargs)
    return train_from_files(str(scene["raster"]), **arguments)


@pytest.fixture
def fits(monkeypatch) -> list[int]:
    """Count the trainings a run starts (a bad output path must be refused before the first)."""
    calls: list[int] = []
    real = RssglClassifier.fit

    def fit(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(RssglClassifier, "fit", fit)
    return calls


def test_a_classification_path_that_is_not_a_geotiff_is_refused_before_training(scene, out, fits):
    before = _previous_run(out)
    fits.clear()  # the previous run's model was trained here too
    with pytest.raises(RssglError) as info:
        _train(scene, out, classification_out=str(out / "cls.img"))
    assert str(info.value) == (f"The classification output '{out / 'cls.img'}' must be a GeoTIFF file (.tif or "
                               ".tiff); choose a name such as 'cls.tif'.")
    assert fits == [], "the training ran before the output path was checked"
    assert snapshot(out) == before, "the previous model or report was changed"


def test_a_cancel_while_classifying_keeps_the_previous_model(scene, out, monkeypatch):
    """The tester's Ctrl+C after the training: the new model was saved, then deleted by the clean-up."""
    before = _previous_run(out)
    trained = []
    real = RssglClassifier.fit

    def fit(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        trained.append(1)  # from now on the user has pressed Cancel: the classification must stop
        return result

    monkeypatch.setattr(RssglClassifier, "fit", fit)
    with pytest.raises(Cancelled):
        _train(scene, out, classification_out=str(out / "classes.tif"), should_stop=lambda: bool(trained))
    assert trained, "the run never finished training"
    assert snapshot(out) == before, "the cancelled re-run replaced or deleted the previous model"


def test_a_model_name_classify_cannot_read_is_refused_before_training(scene, out, fits):
    with pytest.raises(RssglError) as info:
        _train(scene, out, model_out=str(out / "model.txt"))
    assert str(info.value) == (f"The model file '{out / 'model.txt'}' must end in .rssgl, the extension 'Classify "
                               "with RSSGL' reads; choose a name such as 'model.rssgl'.")
    assert fits == [] and snapshot(out) == {}


def test_outputs_that_collide_are_refused_before_training(scene, out, fits):
    with pytest.raises(RssglError) as info:
        _train(scene, out, classification_out=str(out / "same.tif"), confidence_out=str(out / "same.tif"))
    assert str(info.value) == (f"The classification output and the confidence output both point to "
                               f"'{out / 'same.tif'}'; give each its own file.")
    with pytest.raises(RssglError) as info:
        _train(scene, out, classification_out=str(scene["raster"]))
    assert str(info.value) == (f"The classification output would overwrite the input raster '{scene['raster']}'; "
                               "choose another path.")
    assert fits == [] and snapshot(out) == {}


def test_assess_refuses_a_csv_path_equal_to_the_html_path(tmp_path, out):
    from rssgl_qgis.io.raster import raster_info
    from rssgl_qgis.io.raster_write import write_classification

    from .helpers import block_labels

    raster = write_raster(tmp_path / "scene.tif", scene_cube(), wavelengths=WAVELENGTHS)
    classes = tmp_path / "classes.tif"
    write_classification(classes, block_labels(), raster_info(raster), [1, 2, 3, 4], ["a", "b", "c", "d"],
                         [(0, 0, 255), (0, 128, 0), (150, 100, 50), (90, 90, 90)])
    samples = write_samples(tmp_path / "ref.gpkg", class_features())
    (out / "accuracy.html").write_text("<html>last week's report</html>")
    before = snapshot(out)
    with pytest.raises(RssglError) as info:
        assess_accuracy(str(classes), reference_vector=str(samples), reference_field="class_id",
                        html_out=str(out / "accuracy.html"), csv_out=str(out / "accuracy.html"))
    assert str(info.value) == (f"The accuracy report (HTML) and the accuracy table (CSV) both point to "
                               f"'{out / 'accuracy.html'}'; give each its own file.")
    assert snapshot(out) == before


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_model_permissions_follow_the_replaced_file_or_the_umask(scene, out):
    if os.name != "posix":
        pytest.skip("POSIX permission bits")
    old_umask = os.umask(0o022)
    try:
        _train(scene, out, report_out=None)
        assert _mode(out / "model.rssgl") == 0o644, "a new model must get the umask's permissions"
        (out / "model.rssgl").chmod(0o640)
        _train(scene, out, report_out=None)
        assert _mode(out / "model.rssgl") == 0o640, "a replaced model must keep the permissions it had"
        train_tiny_classifier().save(out / "direct.rssgl")  # RssglClassifier.save on its own, as scripts use it
        assert _mode(out / "direct.rssgl") == 0o644
    finally:
        os.umask(old_umask)
