"""The per-pixel spectral kernel model and its pooling with RSSGL (core/spectral/spectral_model.py, core/training/cross_validation.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rssgl_qgis.core.data.sampling import label_patches
from rssgl_qgis.core.spectral import spectral_model as spectral
from rssgl_qgis.core.spectral.spectral_model import SpectralModel, cv_folds, fit_spectral
from rssgl_qgis.core.training.cross_validation import (
    BLEND_CANDIDATES,
    PoolSettings,
    _fit_temperature,
    blend_label,
    combine,
    cross_validate_blend,
)


def _blobs(n_per_class=20, classes=3, dims=12, spread=0.6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2, (classes, dims))
    y = np.repeat(np.arange(classes), n_per_class)
    x = centres[y] + rng.normal(0, spread, (y.size, dims))
    return x, y, centres


def test_learns_separable_classes_and_beats_chance_on_new_pixels():
    x, y, centres = _blobs()
    model = fit_spectral(x, y, seed=0)
    rng = np.random.default_rng(1)
    yt = rng.integers(0, 3, 300)
    xt = centres[yt] + rng.normal(0, 0.6, (300, 12))
    accuracy = (model.scores(torch.as_tensor(xt)).argmax(1).numpy() == yt).mean()
    assert accuracy > 0.95
    assert model.cv_accuracy is not None and model.cv_accuracy > 0.9
    assert 0.1 <= model.temperature <= 10 and model.gamma > 0 and model.folds >= 2


def test_probabilities_are_normalised_and_chunking_changes_nothing(monkeypatch):
    x, y, _ = _blobs(seed=2)
    model = fit_spectral(x, y, seed=0)
    batch = torch.as_tensor(np.random.default_rng(3).normal(0, 2, (2, 12, 5, 7)), dtype=torch.float32)
    p = model.probabilities_map(batch)
    assert p.shape == (2, 3, 5, 7)
    torch.testing.assert_close(p.sum(1), torch.ones(2, 5, 7))
    monkeypatch.setattr(spectral, "PREDICT_CHUNK", 4)
    torch.testing.assert_close(model.probabilities_map(batch), p)


def test_state_round_trip():
    x, y, _ = _blobs(seed=4)
    model = fit_spectral(x, y, seed=0)
    again = SpectralModel.from_state(model.state(), model.meta())
    xt = torch.as_tensor(x[:9], dtype=torch.float32)
    torch.testing.assert_close(again.log_probabilities(xt), model.log_probabilities(xt))


def test_cross_validation_folds_keep_groups_whole_and_cover_every_class():
    y = np.repeat([0, 1], 12)
    groups = np.repeat(np.arange(8), 3)  # 4 polygons of 3 pixels per class
    fold = cv_folds(y, groups, 3, seed=0)
    for g in np.unique(groups):
        assert np.unique(fold[groups == g]).size == 1
    for c in (0, 1):
        assert np.unique(fold[y == c]).size >= 2
    single = cv_folds(y, np.zeros_like(y), 3, seed=0)  # one group per class: pixels are dealt instead
    assert all(np.unique(single[y == c]).size == 3 for c in (0, 1))


def test_a_large_sample_set_is_capped_per_class():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(5000, int), np.ones(20, int)]
    keep = spectral._stratified_subset(y, 1000, rng)
    assert keep.size <= 1020 and (y[keep] == 1).sum() == 20  # the small class keeps every pixel


def test_combine_is_exact_at_the_ends_and_normalised_between():
    rng = np.random.default_rng(0)
    a = torch.softmax(torch.as_tensor(rng.normal(0, 3, (4, 6))), 0)
    b = torch.softmax(torch.as_tensor(rng.normal(0, 3, (4, 6))), 0)
    assert torch.equal(combine(a, b, 1.0, dim=0), a)
    assert torch.equal(combine(a, b, 0.0, dim=0), b)
    assert torch.equal(combine(a, None, 0.5, dim=0), a)
    for w in (0.25, 0.5, 0.75):
        torch.testing.assert_close(combine(a, b, w, dim=0).sum(0), torch.ones(6, dtype=a.dtype))
    soft = combine(a, None, 1.0, dim=0, temperature=4.0)
    assert torch.equal(soft.argmax(0), a.argmax(0)) and bool((soft.max(0).values <= a.max(0).values + 1e-12).all())
    flat = combine(a, b, 0.0, dim=0, spectral_temperature=2.0)
    assert torch.equal(flat.argmax(0), b.argmax(0)) and bool((flat.max(0).values <= b.max(0).values + 1e-12).all())
    both = combine(a, b, 0.25, dim=0, temperature=3.0, spectral_temperature=1.5)
    torch.testing.assert_close(both, torch.softmax(0.25 / 3.0 * torch.log(a) + 0.75 / 1.5 * torch.log(b), 0))
    assert blend_label(1.0) == "RSSGL" and "spectral" in blend_label(0.0) and "0.5" in blend_label(0.5)
    settings = PoolSettings(0.25, 3.0, 1.5)
    assert torch.equal(settings.pooled(a, b, dim=0), both) and settings.label == blend_label(0.25)
    assert PoolSettings().rssgl_as_trained and not PoolSettings(1.0, 2.0).rssgl_as_trained
    assert torch.equal(PoolSettings().pooled(a, b, dim=0), a)


class _FakeClassifier:
    """Stands in for RssglClassifier: RSSGL 'knows' the left half, the spectral model the right half."""

    pool_ = PoolSettings()  # RSSGL alone, as trained (what a classifier holds before cross-validation)

    def fit(self, cube, train, valid=None, progress=None, **_):
        self.classes_ = np.unique(train[train > 0])
        self.truth = self.truth_map
        return self

    def component_probabilities(self, cube, valid):
        k = self.classes_.size
        h, w = self.truth.shape
        idx = np.searchsorted(self.classes_, np.clip(self.truth, self.classes_[0], None))
        right = np.eye(k, dtype=np.float32)[idx].transpose(2, 0, 1) * 0.9 + 0.1 / k
        wrong = np.eye(k, dtype=np.float32)[(idx + 1) % k].transpose(2, 0, 1) * 0.6 + 0.4 / k
        cols = np.arange(w)[None, None, :] < w // 2
        return np.where(cols, right, wrong), np.where(cols, wrong * 0 + 1.0 / k, right)

    def component_probabilities_at(self, cube, valid, pixels):
        rssgl, spectral = self.component_probabilities(cube, valid)
        return rssgl[:, pixels], spectral[:, pixels]

    def predict_proba(self, cube, valid):
        return self.component_probabilities(cube, valid)[0]


def test_cross_validation_scores_every_candidate_and_chooses_the_better_pool():
    truth = np.zeros((12, 12), dtype=np.int64)
    truth[:6], truth[6:] = 1, 2
    labels = truth.copy()
    groups = label_patches(np.where((np.indices(truth.shape).sum(0) % 3) == 0, labels, 0))
    labels = np.where(groups > 0, labels, 0)

    def make():
        clf = _FakeClassifier()
        clf.truth_map = truth
        return clf

    logs, kept = [], {}
    choice = cross_validate_blend(make, np.zeros((2, 12, 12), np.float32), np.ones((12, 12), bool), labels, groups,
                                  3, seed=0, log=lambda level, message: logs.append(message), keep_pixels=kept,
                                  rssgl_folds="all")
    assert choice is not None and [c.weight for c in choice.candidates] == list(BLEND_CANDIDATES)
    by_weight = {c.weight: c for c in choice.candidates}
    # RSSGL alone is right on the left half only; the spectral model alone only on the right half
    assert by_weight[1.0].summary["oa"] <= 0.75 and by_weight[0.0].summary["oa"] <= 0.75
    assert choice.chosen.summary["oa"] == max(c.summary["oa"] for c in choice.candidates) == pytest.approx(1.0)
    assert 0.0 < choice.pool.weight < 1.0 and choice.pool.temperature >= 1.0
    assert any("<- chosen" in m for m in logs)
    # both models calibrated on the same held-out pixels, never sharpened
    index = torch.from_numpy(np.searchsorted(kept["classes"], kept["reference"]))
    assert choice.pool.spectral_temperature == _fit_temperature(torch.from_numpy(kept["spectral"]), index) >= 1.0
    assert kept["spectral_temperature"] == choice.pool.spectral_temperature
    assert any("the spectral model's" in m and "Calibrated" in m for m in logs)
    assert cross_validate_blend(make, np.zeros((2, 12, 12), np.float32), np.ones((12, 12), bool), truth,
                                np.where(truth > 0, truth, 0), 3) is None  # one sample per class: nothing to test


def test_settings_are_those_with_the_lowest_out_of_fold_squared_error():
    """The kernel width and ridge minimise the cross-validated squared error of the scores (recomputed
    here with plain solves, fold by fold), not the noisier cross-validated accuracy."""
    x, y, _ = _blobs(n_per_class=6, classes=3, dims=40, spread=2.5, seed=7)
    model = fit_spectral(x, y, seed=3)
    xt = torch.as_tensor(x, dtype=torch.float64)
    d2 = torch.cdist(xt, xt).pow(2)
    base = 1.0 / float(torch.median(d2[d2 > 0]))
    targets = 2.0 * torch.nn.functional.one_hot(torch.as_tensor(y), 3).double() - 1.0
    fold = cv_folds(y, None, model.folds, 3)
    err = {}
    for factor in spectral.GAMMA_FACTORS:
        kernel = torch.exp(-factor * base * d2)
        for ridge in spectral.RIDGES:
            total = 0.0
            for f in range(model.folds):
                a, b = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
                alpha = torch.linalg.solve(kernel[a][:, a] + ridge * torch.eye(a.size, dtype=torch.float64), targets[a])
                total += float((kernel[b][:, a] @ alpha - targets[b]).pow(2).sum())
            err[(factor * base, ridge)] = total
    best = min(err.values())
    chosen = err[min(err, key=lambda k: abs(k[0] - model.gamma) + abs(k[1] - model.ridge))]
    assert chosen <= best * (1 + 2e-3)


def _candidate(weight, nll, base, sample, oa=None):
    from rssgl_qgis.core.training import cross_validation

    nll, base = torch.as_tensor(nll, dtype=torch.float64), torch.as_tensor(base, dtype=torch.float64)
    gain = float("nan") if weight <= 0 else cross_validation._gain_in_se(nll, base, np.asarray(sample))
    summary = {} if oa is None else {"oa": oa}
    return cross_validation.CandidateEstimate(weight, blend_label(weight), summary, np.zeros(0), float(nll.mean()), gain)


def test_a_pool_with_rssgl_must_beat_the_spectral_model_clearly_to_be_chosen():
    from rssgl_qgis.core.training import cross_validation

    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 1.5, 40)
    sample = np.arange(40)
    # a pool a little better on average but no better than noise: the spectral model stays
    noise = rng.normal(0, 0.5, 40)
    noisy = base + noise - noise.mean() - 0.03
    cands = [_candidate(0.5, noisy, base, sample), _candidate(0.0, base, base, sample)]
    assert cands[0].log_loss < cands[1].log_loss and cands[0].gain_se < cross_validation.SIGNIFICANCE
    assert cross_validation._choose(cands) == 0.0  # no light pool among the candidates: the spectral model stays
    light = _candidate(0.25, base + 0.01, base, sample)
    # no pool with the evidence it needs: RSSGL gets no vote, not even the light pool's (issue 28)
    assert cross_validation.FALLBACK == 0.0 and cross_validation._choose(cands + [light]) == 0.0
    # clearly better on nearly every held-out pixel: the pool is chosen
    clear = base - 0.3 + rng.normal(0, 0.05, 40)
    cands = [_candidate(0.5, clear, base, sample), _candidate(0.0, base, base, sample)]
    assert cands[0].gain_se > 5 and cross_validation._choose(cands) == 0.5
    # a heavy pool (RSSGL weight HEAVY, a half pool, or more) needs STRONG_SIGNIFICANCE: between 1 and 2 standard
    # errors it gives way to a light pool
    assert cross_validation.HEAVY == 0.5
    e = noise - noise.mean()
    se = 0.03 / _candidate(0.5, base - 0.03 - e, base, sample).gain_se  # the standard error of a gain with noise e
    spectral = _candidate(0.0, base, base, sample)
    heavy = _candidate(0.5, base - 1.5 * se - e, base, sample)  # 1.5 standard errors
    quarter = _candidate(0.25, base - 0.65 * se - 0.5 * e, base, sample)  # 1.3 (half the noise), a higher log-loss
    assert cross_validation.SIGNIFICANCE < heavy.gain_se < cross_validation.STRONG_SIGNIFICANCE, heavy.gain_se
    assert quarter.gain_se > cross_validation.SIGNIFICANCE and heavy.log_loss < quarter.log_loss
    assert cross_validation._choose([heavy, quarter, spectral]) == 0.25
    assert cross_validation._choose([heavy, light, spectral]) == cross_validation.FALLBACK  # no light pool clears it
    # ... and so does one short even of SIGNIFICANCE (the lowest log-loss, but with a noisier gain)
    weak = _candidate(1.0, base - 1.5 * se - 2.0 * e, base, sample)
    assert weak.gain_se < cross_validation.SIGNIFICANCE and weak.log_loss < quarter.log_loss, weak.gain_se
    assert cross_validation._choose([weak, quarter, spectral]) == 0.25
    assert cross_validation._choose([weak, light, spectral]) == cross_validation.FALLBACK
    strong = _candidate(0.75, base - 0.3 + rng.normal(0, 0.05, 40), base, sample)
    assert cross_validation._choose([strong, quarter, spectral]) == 0.75
    strong_half = _candidate(0.5, base - 0.3 + rng.normal(0, 0.05, 40), base, sample)
    assert strong_half.gain_se > cross_validation.STRONG_SIGNIFICANCE
    assert cross_validation._choose([strong_half, quarter, spectral]) == 0.5
    # ... unless it got fewer held-out pixels right than the spectral model alone: then the spectral model
    strong_nll = base - 0.3 + rng.normal(0, 0.05, 40)
    spectral_oa = _candidate(0.0, base, base, sample, oa=0.62)
    assert cross_validation._choose([_candidate(0.75, strong_nll, base, sample, oa=0.60), light, spectral_oa]) \
        == cross_validation.FALLBACK
    assert cross_validation._choose([_candidate(0.75, strong_nll, base, sample, oa=0.62), light, spectral_oa]) == 0.75
    # ... and so must a light pool (since the fifteenth round: a flattened RSSGL lowers the log-loss by calibration)
    assert cross_validation.OA_CHECK_FROM <= min(w for w in cross_validation.BLEND_CANDIDATES if w > 0)
    assert cross_validation._choose([_candidate(0.25, strong_nll, base, sample, oa=0.60), spectral_oa]) \
        == cross_validation.FALLBACK
    assert cross_validation._choose([_candidate(0.25, strong_nll, base, sample, oa=0.62), spectral_oa]) == 0.25
    # without the spectral model (an old model file's cross-validation) the lowest log-loss decides
    assert cross_validation._choose([_candidate(1.0, clear, base, sample)]) == 1.0


def test_a_saturated_cross_validation_falls_back_to_the_default_pool():
    """Every candidate right on every held-out pixel: no evidence either way, so the pool used without
    cross-validation (DEFAULT_BLEND), not the fallback; a pool with the evidence it needs still wins."""
    from rssgl_qgis.core.training import cross_validation

    rng = np.random.default_rng(1)
    base = rng.uniform(0.001, 0.002, 40)  # tiny log-losses: every pixel right and confident
    sample = np.arange(40)
    noise = rng.normal(0, 0.0005, 40)
    noise -= noise.mean()  # a gain of 0.00002 against a noise of 0.0005 per pixel: well under one standard error

    def cands(oa):
        return [_candidate(w, base - 0.00002 * (w > 0) + noise * (w > 0), base, sample, oa=oa)
                for w in cross_validation.BLEND_CANDIDATES]

    assert all(c.gain_se < cross_validation.SIGNIFICANCE for c in cands(1.0) if c.weight > 0)
    assert cross_validation.saturated(cands(1.0)) and not cross_validation.saturated(cands(0.98))
    assert cross_validation._choose(cands(1.0)) == cross_validation.DEFAULT_BLEND
    assert cross_validation._choose(cands(0.98)) == 0.0  # some pixels wrong: no evidence, the spectral model alone
    strong = [_candidate(0.75, base * 0.2, base, sample, oa=1.0)] + [c for c in cands(1.0) if c.weight != 0.75]
    assert cross_validation._choose(strong) == 0.75  # clear log-loss evidence still decides


def test_pixels_of_one_sample_count_together_in_the_standard_error():
    """Repeating every pixel ten times inside its sample (a polygon's pixels are alike) must not make
    a gain look more certain than the same gain measured on the samples once."""
    from rssgl_qgis.core.training import cross_validation

    rng = np.random.default_rng(1)
    d = rng.normal(0.1, 0.5, 20)
    once = cross_validation._gain_in_se(torch.zeros(20, dtype=torch.float64), torch.as_tensor(d), np.arange(20))
    tenfold = cross_validation._gain_in_se(torch.zeros(200, dtype=torch.float64), torch.as_tensor(np.repeat(d, 10)),
                                   np.repeat(np.arange(20), 10))
    assert tenfold == pytest.approx(once, rel=0.05)
    pixels = cross_validation._gain_in_se(torch.zeros(200, dtype=torch.float64), torch.as_tensor(np.repeat(d, 10)),
                                  np.arange(200))
    assert pixels > 2.5 * once  # what treating the pixels as independent would claim


def test_the_pool_temperature_flattens_an_overconfident_model_and_never_sharpens():
    """Fitted on held-out pixels for both models: one sure of 8 of 10 pixels and wrong on 2 is flattened;
    one right on every pixel keeps T = 1 (lower would sharpen it until it outvotes the other model)."""
    k, n = 3, 10
    index = torch.zeros(n, dtype=torch.int64)
    sure = torch.full((k, n), 0.005, dtype=torch.float64)
    sure[0, :8] = 0.99
    sure[1, 8:] = 0.99
    assert _fit_temperature(sure, index) > 2.0
    right = torch.full((k, n), 0.2, dtype=torch.float64)
    right[0] = 0.6
    assert _fit_temperature(right, index) == 1.0
