"""Issue 29: train_from_files' RSSGL stage ("auto" / "always" / "never"), what TrainResult, the log and the
report say about the stage that made the map, and the refusals in words. No qgis import."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from rssgl_qgis.core.errors import RssglError
from rssgl_qgis.core.modelfile import read_metadata
from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams
from rssgl_qgis.workflows.stages import trains_rssgl
from rssgl_qgis.workflows.train import STAGE_ONE, train_from_files

from .helpers import WAVELENGTHS, class_features, scene_cube, write_raster, write_samples


@pytest.fixture
def scene(tmp_path) -> dict[str, Path]:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    return {"raster": write_raster(inputs / "scene.tif", scene_cube(), wavelengths=WAVELENGTHS),
            "samples": write_samples(inputs / "samples.gpkg", class_features())}


def _train(scene, out: Path, name: str, **kwargs):
    lines = []
    arguments = dict(samples_vector=str(scene["samples"]), class_field="class_id",
                     params=TrainingParams(iterations=2, device="cpu"), model_out=str(out / f"{name}.rssgl"),
                     report_out=str(out / f"{name}.html"), classification_out=str(out / f"{name}.tif"),
                     log=lambda level, message: lines.append(message))
    arguments.update(kwargs)
    return train_from_files(str(scene["raster"]), **arguments), lines


def test_auto_on_a_cpu_is_stage_one_and_says_so_everywhere(scene, tmp_path):
    result, lines = _train(scene, tmp_path, "one", rssgl_stage="auto", cv_folds=3)
    assert result.stage == 1 and result.map_source == STAGE_ONE and not result.replaces_stage_one
    assert result.classifier.spectral_only and result.history == [] and result.cross_validation is None
    assert any("Stage one (no CUDA GPU" in line for line in lines)
    assert any(line.startswith("Stage: stage one") for line in lines)
    html = (tmp_path / "one.html").read_text()
    assert "Stage that made the map" in html and "stage one: the spectral model" in html
    assert read_metadata(tmp_path / "one.rssgl")["model_contents"] == "spectral model only"
    assert (tmp_path / "one.tif").exists()
    again = RssglClassifier.load(tmp_path / "one.rssgl", device="cpu")
    assert again.spectral_only


def test_always_trains_rssgl_and_the_report_names_the_pool(scene, tmp_path):
    result, lines = _train(scene, tmp_path, "two", rssgl_stage="always")
    assert result.stage == 2 and not result.classifier.spectral_only and result.history
    assert not result.replaces_stage_one  # no cross-validation: RSSGL earned no vote
    assert result.map_source and result.map_source != STAGE_ONE
    assert "stage two: RSSGL trained" in (tmp_path / "two.html").read_text()
    assert "model_contents" not in read_metadata(tmp_path / "two.rssgl")


def test_the_stage_choice_follows_the_device():
    cpu, cuda = SimpleNamespace(type="cpu"), SimpleNamespace(type="cuda")
    assert trains_rssgl("auto", None, cuda) and not trains_rssgl("auto", None, cpu)
    assert trains_rssgl("always", None, cpu) and not trains_rssgl("never", None, cuda)
    assert trains_rssgl("auto", object(), cpu)  # fine-tuning trains RSSGL


def test_refusals_in_words(scene, tmp_path):
    with pytest.raises(RssglError, match="Unknown RSSGL stage"):
        _train(scene, tmp_path, "bad", rssgl_stage="sometimes")
    stage_one, _ = _train(scene, tmp_path, "one", rssgl_stage="never")
    with pytest.raises(RssglError, match="spectral model only"):
        _train(scene, tmp_path, "tuned", rssgl_stage="always", init_from=stage_one.classifier)
    with pytest.raises(RssglError, match="RSSGL stage is 'never'"):
        _train(scene, tmp_path, "tuned", rssgl_stage="never", init_from=stage_one.classifier)
    assert not (tmp_path / "tuned.rssgl").exists()
