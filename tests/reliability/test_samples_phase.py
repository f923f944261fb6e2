"""Train RSSGL between the band check and stage one's fit (issue 29): the samples are read talkatively,
can be cancelled, and stay small (no whole-raster int64 labels).

On a 20000 x 20000 x 204 raster this phase built int64 label arrays for 82 s without a word; the 24 x 24 scene
here runs the same code with small burn windows so that every loop reports and is asked to stop.
"""

from __future__ import annotations

import numpy as np
import pytest

from rssgl_qgis.core.errors import Cancelled
from rssgl_qgis.core.training import windowed_scene
from rssgl_qgis.core.training.classifier import TrainingParams
from rssgl_qgis.io import burn
from rssgl_qgis.workflows.train import _read_inputs, train_from_files

from .helpers import WAVELENGTHS, block_labels, class_features, scene_cube, write_raster, write_samples


@pytest.fixture
def scene(tmp_path, monkeypatch):
    monkeypatch.setattr(burn, "_BURN_WINDOW", 8)  # 3 x 3 windows over the 24 x 24 scene
    monkeypatch.setattr(burn, "BURN_PROGRESS_SECONDS", 0.0)
    monkeypatch.setattr(windowed_scene, "STATISTICS_PROGRESS_SECONDS", 0.0)
    monkeypatch.setattr(windowed_scene, "STATISTICS_STRIP_BYTES", 4 * 24 * 4 * 4)  # strips of 4 rows
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    return {"raster": str(write_raster(inputs / "scene.tif", scene_cube(), wavelengths=WAVELENGTHS)),
            "samples": str(write_samples(inputs / "samples.gpkg", class_features()))}


def _train(scene, tmp_path, **kwargs):
    arguments = dict(samples_vector=scene["samples"], class_field="class_id", rssgl_stage="never",
                     params=TrainingParams(iterations=1, device="cpu", training_input="windows"),
                     model_out=str(tmp_path / "m.rssgl"))
    arguments.update(kwargs)
    return train_from_files(scene["raster"], **arguments)


def test_every_step_from_the_band_check_to_the_fit_reports_in_order(scene, tmp_path):
    messages: list[tuple[float, str]] = []
    _train(scene, tmp_path, progress=lambda percent, message: messages.append((percent, message)))
    percents = [p for p, _ in messages]
    assert percents == sorted(percents)
    words = [m.split(":")[0] for _, m in messages]
    steps = list(dict.fromkeys(words))
    assert steps[steps.index("band check done"):steps.index("band statistics for training") + 1] == [
        "band check done", "burning the samples onto the raster grid", "samples read",
        "fitting the spectral model (stage one)", "band statistics for training"]
    assert words.count("burning the samples onto the raster grid") == 10  # 9 windows and the end
    assert words.count("band statistics for training") == 7  # 6 strips and the end
    burnt = [p for (p, _), w in zip(messages, words, strict=True) if w == "burning the samples onto the raster grid"]
    assert 2.0 <= burnt[0] and burnt[-1] <= 3.0
    statistics = [p for (p, _), w in zip(messages, words, strict=True) if w == "band statistics for training"]
    assert statistics[0] == pytest.approx(3.0) and statistics[-1] > 60.0  # stage one's longest step, 3-73 %


@pytest.mark.parametrize("step", ["burning the samples", "band statistics for training"])
def test_cancel_is_honoured_in_the_burn_and_in_the_band_statistics(scene, tmp_path, step):
    seen: list[str] = []

    def should_stop() -> bool:
        return any(m.startswith(step) for m in seen)

    with pytest.raises(Cancelled):
        _train(scene, tmp_path, progress=lambda percent, message: seen.append(message), should_stop=should_stop)
    assert not (tmp_path / "m.rssgl").exists()
    assert [m for m in seen if m.startswith(step)][:1] == [m for m in seen if m.startswith(step)]  # stopped at once


def test_the_labels_stay_in_a_small_type_and_the_counts_come_from_the_sparse_list(scene):
    lines: list[str] = []
    run = _read_inputs(scene["raster"], scene["samples"], None, "class_id", None,
                       TrainingParams(iterations=1, device="cpu", training_input="windows"), None, False,
                       lambda percent, message: None, None, lambda level, message: lines.append(message))
    expected = block_labels()
    assert run.labels.dtype == np.uint8 and run.samples.groups.dtype == np.uint8
    np.testing.assert_array_equal(run.labels, expected)
    values, counts = np.unique(expected[expected > 0], return_counts=True)
    assert run.present == values.tolist() and run.pixel_counts == counts.tolist()
    assert any(line.startswith("Classes: 1 water (") for line in lines)
