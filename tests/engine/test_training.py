"""Trainer: estimator contract, selection modes, cancellation, persistence, and that it learns.

Tiny networks (16-32 channels) and scenes keep every test to seconds on 2 CPU cores.
"""

from __future__ import annotations

import numpy as np
import pytest

from rssgl_qgis.core.data.sampling import percent_split
from rssgl_qgis.core.errors import Cancelled, RssglError
from rssgl_qgis.core.spectral.pool import PoolSettings
from rssgl_qgis.core.training.classifier import PAPER_LABEL, RssglClassifier, TrainingParams

TINY = {"block_channels": (16, 16, 16, 16), "inner_dim": 16, "kernel": (3, 3, 3)}


def _scene(h=20, w=21, bands=8, seed=0):
    """Three blocky classes with sparse values 1, 10, 14 and class-dependent spectra plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.full((h, w), 14, dtype=np.int64)
    labels[: h // 2, : w // 2] = 1
    labels[h // 2 :, : w // 2] = 10
    base = {1: rng.normal(0, 1, bands), 10: rng.normal(0, 1, bands), 14: rng.normal(0, 1, bands)}
    cube = np.stack([base[v] for v in labels.ravel()], axis=1).reshape(bands, h, w)
    cube = (cube + rng.normal(0, 0.8, cube.shape)).astype(np.float32) * 100 + 500
    return cube, labels


def _params(**kw):
    base = {"iterations": 10, "epoch_iterations": 5, "patience_epochs": 5, "seed": 0, "device": "cpu"}
    return TrainingParams(**{**base, **kw})


@pytest.fixture(scope="module")
def fitted():
    cube, labels = _scene()
    train, test = percent_split(labels, 5, seed=0)
    clf = RssglClassifier(TINY, _params(selection="paper", iterations=10))
    return clf, clf.fit(cube, train, eval_labels=test, class_names=["a", "b", "c"]), cube, labels, test


def test_fit_returns_self_and_sets_learned_attributes(fitted):
    clf, returned, cube, _, _ = fitted
    assert returned is clf
    np.testing.assert_array_equal(clf.classes_, [1, 10, 14])
    assert clf.band_mean_.shape == (8,) and clf.band_std_.shape == (8,)
    assert clf.band_mean_ == pytest.approx(cube.reshape(8, -1).mean(1), rel=1e-5)
    assert len(clf.history_) == 2 and {"iteration", "loss", "lr", "seconds", "test_oa"} <= set(clf.history_[0])
    assert clf.selection_note_ == PAPER_LABEL and clf.metadata()["selection_note"] == PAPER_LABEL
    assert clf.device_ == "cpu" and clf.device_description_.startswith("CPU only (")
    assert 1 <= clf.best_epoch_ <= 2 and clf.train_seconds_ > 0


def test_predict_uses_original_class_values_and_zero_for_invalid(fitted):
    clf, _, cube, labels, _ = fitted
    valid = np.ones(labels.shape, bool)
    valid[0, 0] = False
    cube = cube.copy()
    cube[3, 5, 5] = np.nan  # NaN in one band makes the pixel invalid too
    pred = clf.predict(cube, valid)
    assert pred.shape == labels.shape
    assert set(np.unique(pred)) <= {0, 1, 10, 14}
    assert pred[0, 0] == 0 and pred[5, 5] == 0
    proba = clf.predict_proba(cube, valid)
    assert proba.shape == (3, *labels.shape) and proba.dtype == np.float32
    np.testing.assert_allclose(proba[:, 1, 1].sum(), 1.0, rtol=1e-5)
    assert (proba[:, 0, 0] == 0).all()


def test_predict_on_odd_sizes_and_wrong_band_count(fitted):
    clf, _, cube, _, _ = fitted
    assert clf.predict(cube[:, :13, :7]).shape == (13, 7)
    with pytest.raises(RssglError, match="expects 8 bands but the raster has 5"):
        clf.predict(cube[:5])


def test_predict_before_fit_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not trained yet"):
        RssglClassifier().predict(np.zeros((3, 8, 8), np.float32))


def test_save_and_load_round_trip(fitted, tmp_path):
    clf, _, cube, _, _ = fitted
    path = tmp_path / "model.rssgl"
    clf.save(path)
    again = RssglClassifier.load(path, device="cpu")
    np.testing.assert_array_equal(again.classes_, clf.classes_)
    assert again.class_names_ == ["a", "b", "c"] and again.config_ == clf.config_
    np.testing.assert_allclose(again.predict_proba(cube), clf.predict_proba(cube), atol=1e-6)
    meta = again.metadata()
    assert meta["training_params"]["selection"] == "paper" and meta["band_count"] == 8
    assert meta["versions"]["torch"] and meta["history"] == clf.history_


def test_same_seed_gives_the_same_model():
    cube, labels = _scene(16, 16, 6)
    train, _ = percent_split(labels, 10, seed=1)
    a = RssglClassifier(TINY, _params(selection="loss", iterations=4)).fit(cube, train)
    b = RssglClassifier(TINY, _params(selection="loss", iterations=4)).fit(cube, train)
    np.testing.assert_array_equal(a.predict_proba(cube), b.predict_proba(cube))
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]


def test_validation_mode_uses_only_training_pixels_or_falls_back_to_loss():
    cube, labels = _scene(16, 16, 6)
    train, test = percent_split(labels, 20, seed=0)
    clf = RssglClassifier(TINY, _params(iterations=5, selection="validation")).fit(cube, train, eval_labels=test)
    assert clf.selection_ == "validation" and "val_oa" in clf.history_[0]
    assert "test_oa" in clf.history_[0]  # logged, never used for selection in this mode
    assert int(clf.train_counts_.sum()) < int((train > 0).sum())  # validation pixels came out of training
    few = np.zeros_like(labels)
    few[0, :2], few[15, :2] = 1, 14
    clf = RssglClassifier(TINY, _params(iterations=5, selection="validation")).fit(cube, few)
    assert clf.selection_ == "loss" and "training loss" in clf.selection_note_
    assert int(clf.train_counts_.sum()) == 4  # the would-be validation pixels went back to training


def test_caller_validation_pixels_are_never_trained_on_even_when_selection_falls_back_to_loss():
    """Too few validation pixels -> selection on the training loss; pixels the engine carved from the
    training labels go back to training, but validation pixels the CALLER supplied must not."""
    cube, labels = _scene(16, 16, 6)
    train = np.zeros_like(labels)
    train[0, :3], train[15, :3] = 1, 14
    val = np.zeros_like(labels)
    val[2, 0], val[13, 0] = 1, 14  # 2 validation pixels: below MIN_VALIDATION_PIXELS
    clf = RssglClassifier(TINY, _params(iterations=5, selection="validation")).fit(cube, train, val_labels=val)
    assert clf.selection_ == "loss" and "only 2 validation pixel(s)" in clf.selection_note_
    assert clf.train_counts_.tolist() == [3, 3], "the caller's validation pixels were moved into training"


def test_pixels_in_both_the_training_and_the_callers_validation_labels_are_validation_only():
    cube, labels = _scene(16, 16, 6)
    train, _ = percent_split(labels, 30, seed=0)
    rows, cols = np.indices(train.shape)
    val = np.where((rows + cols) % 2 == 0, train, 0)  # half of the training pixels, a checkerboard
    clf = RssglClassifier(TINY, _params(iterations=3, selection="validation")).fit(cube, train, val_labels=val)
    assert int(clf.train_counts_.sum()) == int(((train > 0) & (val == 0)).sum())
    only_val = np.where(train == 1, 1, 0)  # every training pixel of class 1 is a validation pixel
    with pytest.raises(RssglError, match=r"class\(es\) \[1\] is also a validation pixel"):
        RssglClassifier(TINY, _params(iterations=3)).fit(cube, train, val_labels=only_val)


def test_bad_inputs_are_clear_errors():
    cube, labels = _scene(16, 16, 6)
    one = np.where(labels == 1, 1, 0)
    with pytest.raises(RssglError, match="at least 2 classes"):
        RssglClassifier(TINY, _params()).fit(cube, one)
    with pytest.raises(RssglError, match="rasterise the samples"):
        RssglClassifier(TINY, _params()).fit(cube, labels[:8])
    with pytest.raises(RssglError, match="eval_labels"):
        RssglClassifier(TINY, _params(selection="paper")).fit(cube, labels)
    with pytest.raises(ValueError, match="Unknown model selection"):
        RssglClassifier(TINY, _params(selection="test")).fit(cube, labels)


def test_progress_and_cancellation():
    cube, labels = _scene(16, 16, 6)
    train, _ = percent_split(labels, 10, seed=0)
    calls, messages = [], []

    def progress(percent, message):
        calls.append(percent)
        messages.append(message)

    with pytest.raises(Cancelled):
        RssglClassifier(TINY, _params(selection="loss")).fit(
            cube, train, progress=progress, should_stop=lambda: len(calls) >= 4
        )
    # the distillation pass speaks first (at 0 %: before RSSGL's first iteration), then every epoch
    assert calls == pytest.approx([0.0, 10.0, 20.0, 30.0])
    assert "distillation" in messages[0]


def test_fine_tuning_starts_from_the_given_model(fitted):
    clf, _, cube, labels, _ = fitted
    train, _ = percent_split(labels, 5, seed=3)
    tuned = RssglClassifier(params=_params(selection="loss", iterations=5)).fit(cube, train, init_from=clf)
    assert tuned.config_ == clf.config_
    np.testing.assert_array_equal(tuned.band_mean_, clf.band_mean_)
    assert tuned.fine_tuned_from_ == clf.metadata()["created"]
    with pytest.raises(RssglError, match="expects 8 bands"):
        RssglClassifier(params=_params()).fit(cube[:4], train, init_from=clf)


def test_short_training_beats_nearest_class_mean_on_the_synthetic_scene():
    synthetic = pytest.importorskip("rssgl_qgis.core.data.synthetic")
    scene = synthetic.make_synthetic_scene(seed=0, height=48, width=48, bands=24, n_classes=4, noise=3.0)
    train, test = percent_split(scene.labels, 3, seed=0)
    x = scene.cube.reshape(scene.cube.shape[0], -1)
    classes = np.unique(train[train > 0])
    means = np.stack([x[:, train.ravel() == c].mean(axis=1) for c in classes])
    dist = ((x.T[:, None, :] - means[None]) ** 2).sum(-1)
    ncm = classes[dist.argmin(axis=1)].reshape(train.shape)
    on = test > 0
    ncm_oa = (ncm[on] == test[on]).mean()
    clf = RssglClassifier(TINY, _params(selection="loss", iterations=40, epoch_iterations=10)).fit(scene.cube, train)
    oa = (clf.predict(scene.cube)[on] == test[on]).mean()
    assert oa >= ncm_oa + 0.05, f"RSSGL OA {oa:.3f} vs nearest class mean {ncm_oa:.3f}"


def test_fit_mode_trains_on_every_pixel_and_stops_once_they_are_fitted():
    cube, labels = _scene()
    train, _ = percent_split(labels, 10, seed=0)
    params = _params(iterations=400, epoch_iterations=5, fit_patience_epochs=2, lr=0.02)
    clf = RssglClassifier(TINY, params).fit(cube, train)
    assert clf.selection_ == "fit" and clf.selection_note_ == ""
    assert int(clf.train_counts_.sum()) == int((train > 0).sum())  # nothing held out
    assert len(clf.history_) < 400 // 5, "training ran on after every training pixel was fitted"
    best = clf.history_[clf.best_epoch_ - 1]["val_oa"]
    assert best == max(e["val_oa"] for e in clf.history_)  # the kept weights fit the most training pixels
    later = [e["val_oa"] for e in clf.history_[clf.best_epoch_:]]
    assert all(v < best for v in later)  # ties go to the latest epoch


def test_the_spectral_model_is_fitted_pooled_and_saved(tmp_path):
    cube, labels = _scene(seed=3)
    train, _ = percent_split(labels, 10, seed=0)
    clf = RssglClassifier(TINY, _params(iterations=5)).fit(cube, train)
    assert clf.spectral_ is not None and clf.pool_ == PoolSettings(weight=0.5)
    rssgl, spec = clf.component_probabilities(cube)
    np.testing.assert_allclose(spec.sum(0), 1.0, rtol=1e-5)
    pooled = clf.predict_proba(cube)
    assert not np.allclose(pooled, rssgl) and not np.allclose(pooled, spec)
    clf.use_pool(PoolSettings(weight=0.0))
    np.testing.assert_allclose(clf.predict_proba(cube), spec, atol=1e-6)
    clf.use_pool(PoolSettings(0.0, 1.0, 2.0))  # the spectral model alone, flattened: the same classes, less certain
    flat = clf.predict_proba(cube)
    np.testing.assert_array_equal(flat.argmax(0), spec.argmax(0))
    assert flat.max(0).mean() < spec.max(0).mean()
    clf.use_pool(PoolSettings(0.75, 2.5, 1.6))
    path = tmp_path / "pooled.rssgl"
    clf.save(path)
    back = RssglClassifier.load(path, device="cpu")
    assert back.pool_ == PoolSettings(0.75, 2.5, 1.6)
    np.testing.assert_allclose(back.predict_proba(cube), clf.predict_proba(cube), atol=1e-5)


def test_paper_mode_is_rssgl_alone(fitted):
    clf = fitted[0]
    assert clf.spectral_ is None and clf.pool_.weight == 1.0
    assert clf.metadata()["spectral"] is None
    kept = clf.pool_
    try:  # without a spectral model a chosen pool keeps RSSGL alone, with the chosen temperature
        clf.use_pool(PoolSettings(0.25, 2.0, 1.5))
        assert clf.pool_ == PoolSettings(1.0, 2.0, 1.0)
    finally:
        clf.use_pool(kept)


def test_model_files_without_a_spectral_model_still_load(fitted, tmp_path):
    """Files written before the spectral model existed have neither its tensors nor its metadata."""
    from rssgl_qgis.core.modelfile import load_model, save_model

    clf = fitted[0]
    clf.save(tmp_path / "new.rssgl")
    state, meta = load_model(tmp_path / "new.rssgl")
    for key in ("spectral", "blend_weight", "rssgl_temperature", "spectral_temperature"):
        meta.pop(key)
    save_model(tmp_path / "old.rssgl", state, meta)
    old = RssglClassifier.load(tmp_path / "old.rssgl", device="cpu")
    assert old.spectral_ is None and old.pool_ == PoolSettings()
    np.testing.assert_allclose(old.predict_proba(fitted[2]), clf.predict_proba(fitted[2]), atol=1e-6)


@pytest.mark.parametrize("damage", ["no_meta", "shape", "gamma", "weight", "temperature", "spectral_temperature"])
def test_a_damaged_spectral_model_is_a_clear_error(tmp_path, damage):
    import torch

    from rssgl_qgis.core.modelfile import load_model, save_model

    cube, labels = _scene(seed=5)
    train, _ = percent_split(labels, 10, seed=0)
    clf = RssglClassifier(TINY, _params(iterations=2)).fit(cube, train)
    clf.save(tmp_path / "m.rssgl")
    state, meta = load_model(tmp_path / "m.rssgl")
    if damage == "no_meta":
        meta["spectral"] = None
    elif damage == "shape":
        state["spectral.alpha"] = torch.zeros(3, 2)
    elif damage == "gamma":
        meta["spectral"]["gamma"] = -1.0
    elif damage == "weight":
        meta["blend_weight"] = 2.0
    elif damage == "temperature":
        meta["rssgl_temperature"] = 0.0
    else:
        meta["spectral_temperature"] = float("nan")
    save_model(tmp_path / "bad.rssgl", state, meta)
    with pytest.raises(RssglError, match="damaged or inconsistent"):
        RssglClassifier.load(tmp_path / "bad.rssgl", device="cpu")


def test_tiled_prediction_pools_the_spectral_model_like_the_whole_scene():
    from rssgl_qgis.core.prediction.inference import predict_array_tiled

    cube, labels = _scene(32, 32, seed=6)
    train, _ = percent_split(labels, 10, seed=0)
    clf = RssglClassifier(TINY, _params(iterations=5)).fit(cube, train)
    clf.use_pool(PoolSettings(0.25, 3.0, 1.6))
    pred, _, proba, _ = predict_array_tiled(clf, cube, tile=32, halo=0, with_probabilities=True, scene_passes=0)
    np.testing.assert_allclose(proba, clf.predict_proba(cube), atol=1e-4)
    np.testing.assert_array_equal(pred, clf.predict(cube))


def test_statistics_passes_do_not_evaluate_the_spectral_model(monkeypatch):
    """The statistics passes' results are dropped: only the final pass evaluates the spectral model."""
    from rssgl_qgis.core.prediction.inference import predict_array_tiled
    from rssgl_qgis.core.spectral import spectral_model as spectral

    cube, labels = _scene(64, 64, seed=7)
    train, _ = percent_split(labels, 10, seed=0)
    clf = RssglClassifier(TINY, _params(iterations=3)).fit(cube, train)
    calls = []
    original = spectral.SpectralModel.probabilities_map
    monkeypatch.setattr(spectral.SpectralModel, "probabilities_map",
                        lambda self, x: calls.append(x.shape) or original(self, x))
    _, _, _, report = predict_array_tiled(clf, cube, tile=32, halo=16, scene_passes=2, layerwise=False)
    assert report.scene_passes == 2
    pixels = sum(s[0] * s[2] * s[3] for s in calls)
    assert 0 < pixels <= 4 * (32 + 32) ** 2, "the spectral model ran in the statistics passes"


def _polygon_scene():
    """The test scene with four separate square samples per class (sample groups for cross-validation)."""
    cube, labels = _scene(h=24, w=24)
    groups = np.zeros(labels.shape, dtype=np.int64)
    train = np.zeros_like(labels)
    n = 0
    for r0 in (1, 7, 13, 19):
        for c0 in (1, 7, 13, 19):
            n += 1
            groups[r0:r0 + 3, c0:c0 + 3] = n
            train[r0:r0 + 3, c0:c0 + 3] = labels[r0:r0 + 3, c0:c0 + 3]
    return cube, train, np.where(train > 0, groups, 0)


def test_a_spectral_only_fold_gives_the_spectral_model_of_a_full_fold():
    """The cross-validation's spectral-only folds (core/training/spectral_folds.py) must hold out exactly the probabilities
    a fold that also trains RSSGL gives, or skipping RSSGL's folds would change the estimate."""
    from rssgl_qgis.core.training.spectral_folds import spectral_only_supported, spectral_probabilities_at

    cube, train, groups = _polygon_scene()
    held_out = (groups > 0) & (groups % 3 == 0)
    fold_train = np.where(held_out, 0, train)
    params = _params(iterations=2, selection="fit")
    clf = RssglClassifier(TINY, params).fit(cube, fold_train)
    _, spectral = clf.component_probabilities_at(cube, None, held_out)
    assert spectral_only_supported(params, cube) and not spectral_only_supported(_params(selection="paper"), cube)
    classes, alone = spectral_probabilities_at(params, cube, None, fold_train, held_out)
    np.testing.assert_array_equal(classes, clf.classes_)
    np.testing.assert_allclose(alone, spectral, atol=1e-5)


@pytest.mark.parametrize("ruled_out", [True, False])
def test_adaptive_cross_validation_trains_rssgl_on_the_other_folds_only_where_it_can_win(monkeypatch, ruled_out):
    """Where the first fold rules RSSGL out, the other folds fit the spectral model alone and the map uses it;
    otherwise every fold trains both models, as with rssgl_folds="all"."""
    from rssgl_qgis.core.training import cross_validation

    cube, train, groups = _polygon_scene()
    fits = []
    fit = RssglClassifier.fit

    def counting_fit(self, *args, **kwargs):
        fits.append(1)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(RssglClassifier, "fit", counting_fit)
    monkeypatch.setattr(cross_validation, "rssgl_cannot_win", lambda candidates: ruled_out)
    logs = []
    choice = cross_validation.cross_validate_blend(lambda: RssglClassifier(TINY, _params(iterations=2, selection="fit")),
                                           cube, None, train, groups, 3, seed=0, rssgl_folds="adaptive",
                                           log=lambda level, message: logs.append(message))
    assert choice is not None and choice.folds == 3
    if ruled_out:
        assert len(fits) == 1 and choice.rssgl_folds == 1
        assert [c.weight for c in choice.candidates] == [0.0] and choice.pool.weight == 0.0
        assert choice.chosen.summary["n"] == int((train > 0).sum())  # every sample still tested once
        assert any("RSSGL is not trained on the other 2" in m for m in logs)
    else:
        assert len(fits) == 3 and choice.rssgl_folds == 3
        assert [c.weight for c in choice.candidates] == list(cross_validation.BLEND_CANDIDATES)


def test_the_first_fold_rules_rssgl_out_only_without_any_gain_and_unsaturated():
    from rssgl_qgis.core.training import cross_validation

    def cand(weight, log_loss, gain, oa=0.9):
        return cross_validation.CandidateEstimate(weight, "", {"oa": oa}, np.zeros(0), log_loss, gain)

    spectral = cand(0.0, 1.0, float("nan"))
    behind = cross_validation.EARLY_STOP_SE - 0.5
    assert cross_validation.EARLY_STOP_SE < 0  # a pool only a little behind on one fold may still win over all folds
    assert cross_validation.rssgl_cannot_win([cand(0.5, 1.2, behind - 1), cand(0.25, 1.1, behind), spectral])
    assert not cross_validation.rssgl_cannot_win([cand(0.5, 1.2, behind - 1), cand(0.25, 1.02, behind + 1), spectral])
    assert not cross_validation.rssgl_cannot_win([cand(0.5, 0.9, 0.8), cand(0.25, 1.05, -0.5), spectral])
    saturated = [cand(0.5, 1.2, behind, oa=1.0), cand(0.0, 1.0, float("nan"), oa=1.0)]
    assert not cross_validation.rssgl_cannot_win(saturated)  # nothing ranks them: the rule's saturated fallback decides
    assert not cross_validation.rssgl_cannot_win([cand(1.0, 0.5, float("nan"))])  # no spectral model: nothing to skip to
