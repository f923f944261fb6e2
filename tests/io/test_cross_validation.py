"""Cross-validation over whole samples in train_from_files (workflow._cross_validate), through GDAL files.

The estimate is only honest if no pixel is tested by a model that saw any pixel of its polygon, if
every testable labelled pixel is tested exactly once, and if the saved model still learns from every
sample. Runs use a 48 x 48 x 20 synthetic scene and 2 training iterations per model.
"""

from __future__ import annotations

import numpy as np
import pytest

from rssgl_qgis.core.errors import Cancelled
from rssgl_qgis.core.training.classifier import TrainingParams
from rssgl_qgis.io.raster import raster_info, read_cube
from rssgl_qgis.io.samples import labels_from_vector
from rssgl_qgis.io.scene import write_synthetic_scene
from rssgl_qgis.workflows.train import train_from_files

SCENE = dict(height=48, width=48, bands=20, n_classes=3, field_size=16.0)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return write_synthetic_scene(tmp_path_factory.mktemp("cv_scene"), seed=3, polygons_per_class=3, **SCENE)


def _train(paths, out, *, folds, should_stop=None):
    logs, ticks = [], []
    result = train_from_files(
        paths["cube"], samples_vector=paths["polygons"], class_field="class_id",
        params=TrainingParams(iterations=2, device="cpu"), model_out=str(out / "model.rssgl"),
        report_out=str(out / "report.html"), cv_folds=folds, should_stop=should_stop,
        progress=lambda p, m: ticks.append(p), log=lambda level, message: logs.append((level, message)),
    )
    return result, logs, ticks


def test_every_sample_is_tested_once_by_a_model_that_never_saw_it(scene, tmp_path, monkeypatch):
    from rssgl_qgis.core.training import classifier as training
    from rssgl_qgis.core.training import cross_validation

    monkeypatch.setattr(cross_validation, "RSSGL_FOLDS", "all")  # every fold trains RSSGL (adaptive: see the test below)

    seen_training: list[np.ndarray] = []
    fit = training.RssglClassifier.fit

    def recording_fit(self, cube, train_labels, **kwargs):
        seen_training.append(np.asarray(train_labels).copy())
        return fit(self, cube, train_labels, **kwargs)

    monkeypatch.setattr(training.RssglClassifier, "fit", recording_fit)
    result, logs, ticks = _train(scene, tmp_path, folds=3)

    samples = labels_from_vector(scene["polygons"], None, "class_id", raster_info(scene["cube"]))
    _, valid = read_cube(scene["cube"])
    labels = np.where(valid, samples.labels, 0)
    cv = result.cross_validation
    assert cv is not None and cv.folds == 3 and cv.untested == []
    assert cv.summary["n"] == int((labels > 0).sum())  # every labelled pixel tested exactly once
    assert int(np.asarray(cv.confusion).sum()) == cv.summary["n"]
    assert len(seen_training) == 4  # 3 folds + the final model
    trained_groups = [set(np.unique(samples.groups[t > 0]).tolist()) for t in seen_training[:3]]
    all_groups = set(np.unique(samples.groups[labels > 0]).tolist())
    held_out = [all_groups - g for g in trained_groups]
    assert all(held_out) and set().union(*held_out) == all_groups  # each polygon held out once...
    assert sum(len(h) for h in held_out) == len(all_groups)  # ...and only once
    assert np.array_equal(seen_training[3], labels)  # the saved model learns from every sample
    assert ticks == sorted(ticks) and ticks[-1] == pytest.approx(100.0)
    assert sum("Cross-validation fold" in m for _, m in logs) == 3
    assert any(m.startswith("Cross-validated accuracy over 3 folds") for _, m in logs)
    report = (tmp_path / "report.html").read_text()
    assert "Cross-validated accuracy (3 folds of whole samples)" in report
    assert f"{cv.summary['n']:,}" in report


def test_folds_that_rule_rssgl_out_still_test_every_sample_once(scene, tmp_path, monkeypatch):
    """The adaptive cross-validation: once the first fold rules RSSGL out, the other folds fit the spectral model
    alone; every labelled pixel is still tested once, the map uses the spectral model and the log says why."""
    from rssgl_qgis.core.training import classifier as training
    from rssgl_qgis.core.training import cross_validation

    fits = []
    fit = training.RssglClassifier.fit
    monkeypatch.setattr(training.RssglClassifier, "fit", lambda self, *a, **k: fits.append(1) or fit(self, *a, **k))
    monkeypatch.setattr(cross_validation, "RSSGL_FOLDS", "adaptive")
    monkeypatch.setattr(cross_validation, "rssgl_cannot_win", lambda candidates: True)
    result, logs, _ = _train(scene, tmp_path, folds=3)
    cv = result.cross_validation
    assert len(fits) == 2  # the first fold and the final model
    assert cv.summary["n"] == int(np.asarray(cv.confusion).sum()) and cv.pool.weight == 0.0
    assert any("RSSGL is not trained on the other 2 cross-validation fold(s)" in m for _, m in logs)


def test_one_sample_per_class_skips_cross_validation_with_a_warning(tmp_path):
    paths = write_synthetic_scene(tmp_path / "one", seed=3, polygons_per_class=1, polygon_radius=6.0, **SCENE)
    result, logs, _ = _train(paths, tmp_path, folds=3)
    assert result.cross_validation is None and (tmp_path / "model.rssgl").exists()
    assert any(level == "warning" and "Cross-validation skipped" in m and "RSSGL gets no vote" in m for level, m in logs)
    from rssgl_qgis.core.training.classifier import RssglClassifier

    assert RssglClassifier.load(str(tmp_path / "model.rssgl"), device="cpu").pool_.weight == 0.0  # no evidence
    assert "Cross-validated accuracy" not in (tmp_path / "report.html").read_text()


def test_cancel_during_cross_validation_writes_nothing(scene, tmp_path):
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        _train(scene, tmp_path, folds=2, should_stop=stop)
    assert list(tmp_path.iterdir()) == []


def test_fold_counts_outside_2_to_10_are_clear_errors(scene, tmp_path):
    with pytest.raises(ValueError, match="2 to 10 folds"):
        _train(scene, tmp_path, folds=11)
