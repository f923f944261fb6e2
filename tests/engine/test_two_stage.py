"""The map in two stages (issue 29): the per-pixel fast path where RSSGL has no vote, and stage-one model
files (the spectral model only) that classify, save, load and refuse what they cannot do in words."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rssgl_qgis.core.data.sampling import percent_split
from rssgl_qgis.core.errors import RssglError
from rssgl_qgis.core.modelfile import load_model, save_model
from rssgl_qgis.core.prediction import inference
from rssgl_qgis.core.prediction.inference import predict_array_tiled
from rssgl_qgis.core.prediction.tile_predictor import TilePredictor
from rssgl_qgis.core.spectral.pool import PoolSettings
from rssgl_qgis.core.training.classifier import SPECTRAL_ONLY, RssglClassifier, TrainingParams

from .test_training import TINY, _params, _scene


@pytest.fixture(scope="module")
def pooled_at_zero():
    """A trained RSSGL + spectral model whose pool gives RSSGL weight 0 (cross-validation's FALLBACK)."""
    cube, labels = _scene(40, 36, seed=3)
    train, _ = percent_split(labels, 10, seed=0)
    clf = RssglClassifier(TINY, _params(iterations=4)).fit(cube, train)
    clf.use_pool(PoolSettings(0.0, 1.0, 1.7))
    return clf, cube


def test_weight_zero_classifies_per_pixel_without_the_network_and_equals_the_pooled_path(pooled_at_zero,
                                                                                           monkeypatch):
    clf, cube = pooled_at_zero
    slow = TilePredictor.from_classifier(clf)
    slow.per_pixel = False  # the pooled path: the network runs on every tile, with halos and statistics passes
    labels_slow, conf_slow, proba_slow, report_slow = predict_array_tiled(slow, cube, tile=16,
                                                                          with_probabilities=True, layerwise=False)
    assert report_slow.halo > 0 and report_slow.scene_passes > 0

    def no_network(*args, **kwargs):
        raise AssertionError("the network ran although RSSGL has no vote")

    monkeypatch.setattr(clf.model_, "forward", no_network)
    monkeypatch.setattr(inference.StatisticsPasses, "run", lambda self, sweep, **kw: sweep(self.passes, True)
                        if self.passes == 0 else no_network())
    labels, conf, proba, report = predict_array_tiled(clf, cube, tile=16, with_probabilities=True)
    assert report.halo == 0 and report.scene_passes == 0 and not report.layerwise
    np.testing.assert_array_equal(labels, labels_slow)
    np.testing.assert_allclose(conf, conf_slow, atol=1e-5)
    np.testing.assert_allclose(proba, proba_slow, atol=1e-5)
    np.testing.assert_allclose(clf.predict_proba(cube), proba, atol=1e-5)  # the in-memory path skips it too


@pytest.fixture(scope="module")
def stage_one():
    cube, labels = _scene(24, 26, seed=5)
    train, test = percent_split(labels, 10, seed=0)
    clf = RssglClassifier(TINY, _params()).fit_spectral_only(cube, train, class_names=["a", "b", "c"])
    return clf, cube, labels, test


def test_stage_one_fits_the_spectral_model_only_and_maps_the_scene(stage_one):
    clf, cube, labels, test = stage_one
    assert clf.spectral_only and clf.model_ is None and clf.pool_.weight == 0.0
    pred = clf.predict(cube)
    assert set(np.unique(pred)) <= {1, 10, 14}
    assert (pred[test > 0] == test[test > 0]).mean() > 0.9
    tiled, _, _, report = predict_array_tiled(clf, cube, tile=16)
    np.testing.assert_array_equal(tiled, pred)
    assert report.halo == 0


def test_stage_one_file_has_no_network_and_loads_bit_for_bit(stage_one, tmp_path):
    clf, cube, _, _ = stage_one
    path = tmp_path / "stage_one.rssgl"
    clf.save(path)
    state, meta = load_model(path)
    assert meta["model_contents"] == SPECTRAL_ONLY and meta["architecture"] is None
    assert set(state) == {"spectral.centers", "spectral.alpha"}
    again = RssglClassifier.load(path, device="cpu")
    assert again.spectral_only
    np.testing.assert_array_equal(again.predict_proba(cube), clf.predict_proba(cube))


def test_a_stage_one_file_with_network_tensors_is_damaged(stage_one, tmp_path):
    clf, _, _, _ = stage_one
    path = tmp_path / "stage_one.rssgl"
    clf.save(path)
    state, meta = load_model(path)
    state["classifier.weight"] = torch.zeros(3, 8, 1, 1)
    save_model(tmp_path / "bad.rssgl", state, meta)
    with pytest.raises(RssglError, match="damaged"):
        RssglClassifier.load(tmp_path / "bad.rssgl", device="cpu")


def test_stage_one_cannot_be_fine_tuned_or_compared(stage_one):
    clf, cube, labels, _ = stage_one
    train, _ = percent_split(labels, 10, seed=1)
    with pytest.raises(RssglError, match="spectral model only"):
        RssglClassifier(TINY, _params(iterations=2)).fit(cube, train, init_from=clf)
    with pytest.raises(RssglError, match="spectral model only"):
        clf.component_probabilities(cube)


def test_model_files_written_before_stages_still_classify_bit_for_bit(tmp_path):
    """A full model file (no 'model_contents') loads and classifies exactly as the classifier that wrote it."""
    cube, labels = _scene(24, 24, seed=8)
    train, _ = percent_split(labels, 10, seed=0)
    clf = RssglClassifier(TINY, _params(iterations=3)).fit(cube, train)
    clf.use_pool(PoolSettings(0.5, 2.0, 1.3))
    clf.save(tmp_path / "m.rssgl")
    _, meta = load_model(tmp_path / "m.rssgl")
    assert "model_contents" not in meta and isinstance(meta["architecture"], dict)
    again = RssglClassifier.load(tmp_path / "m.rssgl", device="cpu")
    assert not again.spectral_only
    np.testing.assert_array_equal(again.predict_proba(cube), clf.predict_proba(cube))
    tiled_a = predict_array_tiled(again, cube, tile=16, with_probabilities=True)
    tiled_b = predict_array_tiled(clf, cube, tile=16, with_probabilities=True)
    for a, b in zip(tiled_a[:3], tiled_b[:3], strict=True):
        np.testing.assert_array_equal(a, b)
    json.dumps(meta)


def test_stage_one_trains_no_network(stage_one):
    clf, _, _, _ = stage_one
    assert clf.history_ == [] and clf.best_epoch_ == 0 and clf.config_ is None
    assert isinstance(clf.params_, TrainingParams)


def test_stage_one_on_windows_matches_the_whole_scene(stage_one):
    """A raster read in windows (too large for memory) gives the stage-one model of the whole scene."""
    clf, cube, labels, _ = stage_one
    train, _ = percent_split(labels, 10, seed=0)
    windowed = RssglClassifier(TINY, _params(training_input="windows")).fit_spectral_only(cube, train)
    assert windowed.training_input_ == "windows around the samples"
    np.testing.assert_allclose(windowed.band_mean_, clf.band_mean_, rtol=1e-5)
    assert (windowed.predict(cube) == clf.predict(cube)).mean() > 0.95
