"""The stage-1 cache of CPU tiled classification (core/prediction/stage_cache.py): same maps, less work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rssgl_qgis.core.network.model import RSSGL, RssglConfig
from rssgl_qgis.core.prediction import inference
from rssgl_qgis.core.prediction.inference import TilePredictor, predict_array_tiled
from rssgl_qgis.core.prediction.stage_cache import Stage1Cache
from rssgl_qgis.core.prediction.tiling import plan_tiles


@pytest.fixture(autouse=True)
def _windowed_passes(monkeypatch):
    """These tests are about the read windows' statistics passes: keep the CPU off the layer-wise path
    (core/prediction/layerwise.py, tested in test_layerwise.py)."""
    monkeypatch.setattr(inference, "_use_layerwise", lambda *a, **k: False)


def _predictor() -> TilePredictor:
    torch.manual_seed(0)
    net = RSSGL(RssglConfig(in_bands=6, num_classes=3, block_channels=(16, 16, 32, 32), inner_dim=16)).eval()
    return TilePredictor(network=net, band_mean=np.zeros(6), band_std=np.ones(6), classes=np.array([1, 2, 3]))


def _cube() -> np.ndarray:
    rng = np.random.default_rng(4)
    base = rng.normal(0, 1, (6, 1, 1)) * (np.indices((80, 96)).sum(0) // 16 % 3 - 1)  # blocks of 3 "classes"
    return (base + rng.normal(0, 0.5, (6, 80, 96))).astype(np.float32)


def test_the_cache_changes_no_label_and_answers_the_later_sweeps(monkeypatch):
    cube = _cube()
    made = []
    real = inference.Stage1Cache

    class Recording(real):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(inference, "Stage1Cache", Recording)
    lab_c, conf_c, proba_c, _ = predict_array_tiled(_predictor(), cube, tile=32, halo=16, with_probabilities=True)
    (cache,) = made
    tiles = plan_tiles(80, 96, 32, 16)
    windows = len({t.read for t in tiles})  # tiles at the edges share a read window (shifted inwards)
    assert len(tiles) == 9 and windows == 6
    # 3 statistics passes + the final sweep over 9 tiles (fewer than 64: every sweep sees every tile): each
    # distinct window's stage-1 output is computed once, in the first pass; every other call reuses it
    assert cache.misses == windows and cache.hits == 4 * len(tiles) - windows
    monkeypatch.setattr(Recording, "applies", staticmethod(lambda network, device: False))
    lab, conf, proba, _ = predict_array_tiled(_predictor(), cube, tile=32, halo=16, with_probabilities=True)
    whole, *_ = predict_array_tiled(_predictor(), cube, tile=4096)  # one window: whole-scene prediction
    # the stem pass gives the first statistics pass the stem's scene statistics (without it, each window's
    # own), so the passes end at slightly different statistics: nearly the same map, as close to the whole
    # scene's (this random network with 64-px windows agrees with it to about 89 % either way)
    agree_cached, agree_plain = (lab_c == whole).mean(), (lab == whole).mean()
    assert abs(agree_cached - agree_plain) < 0.005, (agree_cached, agree_plain)
    assert (lab_c == lab).mean() > 0.99


def test_a_budget_too_small_for_one_tile_recomputes_every_time(monkeypatch):
    cube = _cube()
    made = []
    real = inference.Stage1Cache

    class Tiny(real):
        def __init__(self, network, budget_bytes):
            super().__init__(network, 1)
            made.append(self)

    monkeypatch.setattr(inference, "Stage1Cache", Tiny)
    lab_small, *_ = predict_array_tiled(_predictor(), cube, tile=32, halo=16)
    assert made[0].hits == 0 and made[0].misses == 4 * 9
    monkeypatch.setattr(inference, "Stage1Cache", real)
    lab, *_ = predict_array_tiled(_predictor(), cube, tile=32, halo=16)
    np.testing.assert_array_equal(lab_small, lab)


def test_the_cache_applies_to_rssgl_on_the_cpu_only():
    net = _predictor().network
    assert Stage1Cache.applies(net, torch.device("cpu"))
    assert not Stage1Cache.applies(net, torch.device("cuda"))
    assert not Stage1Cache.applies(torch.nn.Conv2d(6, 3, 1), torch.device("cpu"))
