"""Distillation (core/training/distillation.py): which pixels become pseudo-labels, and a fit that uses them."""

from __future__ import annotations

import numpy as np
import torch

from rssgl_qgis.core.data.synthetic import make_synthetic_scene
from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams
from rssgl_qgis.core.training.distillation import pseudo_labels


class _Fixed:
    """A stand-in spectral model: probabilities are the first K bands of the spectra, as given."""

    def __init__(self, k: int):
        self.k = k

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, : self.k]


def _scene(k: int = 3, h: int = 6, w: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(k), size=(h, w)).transpose(2, 0, 1).astype(np.float32)
    x = torch.zeros((1, k, 16, 16))
    x[0, :, :h, :w] = torch.from_numpy(proba)
    return proba, x


def test_the_surest_share_of_each_predicted_class_and_never_a_taken_pixel():
    proba, x = _scene()
    for r, c in ((0, 0), (1, 1), (2, 2)):  # the surest pixels of class 10 are the ones that must not be taken
        x[0, :, r, c] = torch.tensor([0.99, 0.005, 0.005])
        proba[:, r, c] = [0.99, 0.005, 0.005]
    valid = np.ones((6, 8), dtype=bool)
    valid[0, 0] = False
    samples = np.zeros((6, 8), dtype=np.int64)
    samples[1, 1] = 20
    validation = np.zeros((6, 8), dtype=np.int64)
    validation[2, 2] = 10
    classes = np.array([10, 20, 30])
    out = pseudo_labels(_Fixed(3), x, valid, (samples, validation), classes, share=0.5, cap=1000)
    free = valid & (samples == 0) & (validation == 0)
    assert not out[~free].any()
    predicted = proba.argmax(0)
    conf = proba.max(0)
    for k, value in enumerate(classes):
        members = free & (predicted == k)
        chosen = out == value
        assert chosen.sum() == int(np.floor(members.sum() * 0.5))
        assert not (chosen & ~members).any()
        if chosen.any() and (members & ~chosen).any():  # the surest ones
            assert conf[chosen].min() >= conf[members & ~chosen].max()


def test_the_cap_shares_pixels_in_proportion_and_zero_turns_it_off():
    _, x = _scene(h=10, w=10, seed=1)
    valid = np.ones((10, 10), dtype=bool)
    none = np.zeros((10, 10), dtype=np.int64)
    classes = np.array([1, 2, 3])
    capped = pseudo_labels(_Fixed(3), x, valid, (none,), classes, share=0.9, cap=9)
    assert 0 < (capped > 0).sum() <= 9
    assert not pseudo_labels(_Fixed(3), x, valid, (none,), classes, share=0.0, cap=9).any()


def test_a_distilled_fit_keeps_the_spectral_model_and_trains_rssgl():
    scene = make_synthetic_scene(seed=3, height=32, width=32, bands=12, n_classes=3, polygons_per_class=2)
    fits = {}
    for share in (0.0, 0.3):
        params = TrainingParams(device="cpu", iterations=10, distill_share=share, seed=5)
        fits[share] = RssglClassifier(params=params).fit(scene.cube, scene.polygon_labels, valid=scene.valid)
    plain, distilled = fits[0.0], fits[0.3]
    # the spectral model is fitted on the same sample pixels either way (before RSSGL when distilling)
    assert torch.equal(plain.spectral_.alpha, distilled.spectral_.alpha)
    assert distilled.history_ and distilled.model_ is not None
    # RSSGL saw other targets: its weights differ from the plain fit's
    a = dict(plain.model_.named_parameters())
    b = dict(distilled.model_.named_parameters())
    assert any(not torch.equal(a[n], b[n]) for n in a)
