"""The spectral model predicts what it was fitted to predict, in float32, also with a near-linear kernel.

Why it matters: with few polygons the settings search often picks the widest kernel and a small ridge. The weights
then reach 1e4 and more, and their terms cancel. A plain float32 product K @ alpha rounded that to up to 6e-2 of a
probability, so a map's probabilities (and the pool, and the pseudo-labels) were not those the search measured, and a
windowed raster and the whole scene disagreed beyond float32 rounding of the spectra.
"""

from __future__ import annotations

import numpy as np
import torch

from rssgl_qgis.core.data.synthetic import make_synthetic_scene
from rssgl_qgis.core.spectral import spectral_model as spectral


def _near_linear_model() -> tuple[spectral.SpectralModel, torch.Tensor]:
    """A model with the settings the search chose on the window-training test scene (gamma 1/64 of the kernel
    scale, ridge 1e-4), fitted on its polygons; and every pixel's spectrum."""
    s = make_synthetic_scene(seed=3, height=48, width=48, bands=16, n_classes=3, polygons_per_class=2)
    x = s.cube.reshape(s.cube.shape[0], -1).T.astype(np.float64)
    x = (x - x.mean(0)) / x.std(0)
    lab = s.polygon_labels.reshape(-1)
    xt = torch.as_tensor(x[lab > 0])
    y = (lab[lab > 0] - 1).astype(np.int64)
    gamma = spectral.GAMMA_FACTORS[0] * spectral.kernel_scale(torch.cdist(xt, xt) ** 2)
    targets = 2.0 * torch.nn.functional.one_hot(torch.as_tensor(y)).double() - 1.0
    model = spectral.final_model(xt, y, targets, gamma, 1e-4, 1.0, 1.0, 5, np.random.default_rng(0))
    return model, torch.as_tensor(x, dtype=torch.float32)


def _exact_probabilities(model: spectral.SpectralModel, x: torch.Tensor) -> torch.Tensor:
    d2 = torch.cdist(x.double(), model.centers.double(), compute_mode="donot_use_mm_for_euclid_dist") ** 2
    return torch.softmax(torch.exp(-model.gamma * d2) @ model.alpha / model.temperature, dim=1)


def test_near_linear_model_predicts_its_exact_probabilities_in_float32():
    model, x = _near_linear_model()
    assert float(model.alpha.abs().max()) > 1e3  # the regime that matters: large weights that cancel
    exact = _exact_probabilities(model, x)
    got = model.probabilities(x).double()
    assert got.dtype == torch.float64 and model.scores(x).dtype == torch.float32
    assert float((got - exact).abs().max()) < 5e-3
    # the plain float32 product, for scale: what the model computed before
    plain = torch.softmax(torch.exp(-model.gamma * (torch.cdist(x, model.centers) ** 2)) @ model.alpha.float()
                          / model.temperature, dim=1).double()
    assert float((plain - exact).abs().max()) > 5 * float((got - exact).abs().max())


def test_a_saved_model_keeps_float64_weights_and_predicts_the_same():
    model, x = _near_linear_model()
    state = model.state()
    assert state["spectral.alpha"].dtype == torch.float64
    again = spectral.SpectralModel.from_state(state, model.meta())
    assert torch.equal(again.probabilities(x), model.probabilities(x))


def test_a_float32_model_file_still_loads_and_predicts_its_weights():
    model, x = _near_linear_model()
    state = {k: v.float() for k, v in model.state().items()}  # as a plugin before float64 weights saved it
    old = spectral.SpectralModel.from_state(state, model.meta())
    d2 = torch.cdist(x.double(), old.centers.double(), compute_mode="donot_use_mm_for_euclid_dist") ** 2
    exact = torch.softmax(torch.exp(-old.gamma * d2) @ state["spectral.alpha"].double() / old.temperature, dim=1)
    assert float((old.probabilities(x).double() - exact).abs().max()) < 5e-3
