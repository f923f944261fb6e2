"""Whole-scene statistics for tiled inference (core/prediction/scene_stats.py, predict_tiled(scene_passes=...))."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rssgl_qgis.core.network.model import RSSGL, RssglConfig
from rssgl_qgis.core.prediction import inference
from rssgl_qgis.core.prediction.inference import TilePredictor, predict_array_tiled, predict_tiled
from rssgl_qgis.core.prediction.scene_stats import SceneStatistics
from rssgl_qgis.core.prediction.statistics_passes import MIN_SAMPLED_TILES, statistics_tiles, stats_region
from rssgl_qgis.core.prediction.tiling import plan_tiles

SMALL = dict(block_channels=(16, 16, 16, 16), inner_dim=16, kernel=(3, 3, 3))
B = 6



@pytest.fixture(autouse=True)
def _windowed_passes(monkeypatch):
    """These tests are about the read windows' statistics passes: keep the CPU off the layer-wise path
    (core/prediction/layerwise.py, tested in test_layerwise.py)."""
    monkeypatch.setattr(inference, "_use_layerwise", lambda *a, **k: False)


def _network(seed: int = 0) -> RSSGL:
    torch.manual_seed(seed)
    return RSSGL(RssglConfig(B, 3, **SMALL)).eval()


def test_one_window_covering_the_scene_reproduces_the_plain_forward():
    """Statistics gathered over the whole input and injected give the network's own output."""
    net = _network()
    x = torch.randn(1, B, 32, 48)
    with torch.no_grad():
        plain = net(x)[0]
        stats = SceneStatistics()
        with stats.attached(net):
            stats.start_pass()
            stats.set_regions([(0, 32, 0, 48)], (32, 48))
            net(x)
            stats.end_pass()
            injected = net(x)[0]
        again = net(x)[0]  # detached: the class's own forward is back
    assert len(stats.current) == 4 + 4 + 3 + 1  # stage norms, attentions, FPN norms, stem norm
    torch.testing.assert_close(injected, plain, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(again, plain, atol=0, rtol=0)


def test_regions_cover_the_padded_scene_exactly_once():
    height, width = 70, 53  # padded to 80 x 64
    cover = np.zeros((80, 64), int)
    for t in plan_tiles(height, width, 16, 8):
        r0, r1, c0, c1 = stats_region(t, height, width)
        cover[t.read.row + r0:t.read.row + r1, t.read.col + c0:t.read.col + c1] += 1
    assert (cover == 1).all()


def test_scene_statistics_bring_tiles_close_to_whole_scene_prediction():
    """A scene whose halves differ (bright/dark): each window's own statistics shift its classes; the
    statistics gathered over the tiles remove most of that difference."""
    rng = np.random.default_rng(3)
    data = rng.normal(100, 10, (B, 192, 192)).astype(np.float32)
    data[:, :, 96:] += 60.0
    pred = TilePredictor(network=_network(1), band_mean=np.full(B, 130.0), band_std=np.full(B, 35.0),
                         classes=np.array([1, 2, 3]))
    x, _ = pred.normalise(torch.from_numpy(data)[None], None, None)
    whole = pred.probabilities(x)[0].numpy()
    errors, agreement = {}, {}
    for passes in (0, 4):
        _, _, proba, report = predict_array_tiled(pred, data, tile=64, halo=32, with_probabilities=True,
                                                  scene_passes=passes)
        assert report.scene_passes == passes and report.tiles == 9
        errors[passes] = float(np.abs(proba - whole).mean())
        agreement[passes] = float((proba.argmax(0) == whole.argmax(0)).mean())
    # measured: mean |p - p_whole| 0.0057 -> 0.0005, agreement 92.6 % -> 99.0 %
    assert errors[4] < 0.25 * errors[0], errors
    assert agreement[4] > agreement[0] + 0.03, agreement


def test_statistics_passes_sample_a_spread_lattice_of_tiles_on_large_rasters():
    tiles = plan_tiles(128, 128, 16, 8)  # an 8 x 8 grid
    seen = []
    for index in range(3):
        chosen = statistics_tiles(tiles, 16, index, 4)
        grid = np.zeros((8, 8), int)
        for t in chosen:
            grid[t.core.row // 16, t.core.col // 16] = 1
        assert len(chosen) == 16 and (grid.sum(0) == 2).all() and (grid.sum(1) == 2).all()  # spread evenly
        seen.append({(t.core.row, t.core.col) for t in chosen})
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2]) and not (seen[0] & seen[2])  # shifted per pass
    small = plan_tiles(64, 64, 16, 8)  # 16 tiles < 4 * MIN_SAMPLED_TILES: every pass sees every tile
    assert len(small) < 4 * MIN_SAMPLED_TILES and statistics_tiles(small, 16, 1, 4) == small
    assert statistics_tiles(tiles, 16, 0, 1) == tiles


def test_sampled_statistics_read_fewer_tiles_and_stay_close_to_all_tiles():
    """Statistics passes over a quarter of the tiles: 3 x 16 + 64 windows read instead of 4 x 64 (plus, on
    the CPU, the stem-only pass over the first pass's tiles: core/prediction/stage_cache.py), progress still monotonic
    to 100 %, and probabilities close to statistics over every tile."""
    rng = np.random.default_rng(5)
    data = rng.normal(100, 10, (B, 128, 128)).astype(np.float32)
    data[:, 64:, :] += 30.0
    pred = TilePredictor(network=_network(2), band_mean=np.full(B, 115.0), band_std=np.full(B, 20.0),
                         classes=np.array([1, 2, 3]))
    proba, reads = {}, {}
    for sample in (1, 4):
        reads[sample], seen, out = 0, [], np.zeros((3, 128, 128), np.float32)

        def read(win, sample=sample):
            reads[sample] += 1
            return data[:, win.slices[0], win.slices[1]]

        def write(r, out=out):
            rs, cs = r.window.slices
            out[:, rs, cs] = r.probabilities

        report = predict_tiled(pred, read, 128, 128, write_window=write, tile=16, halo=8, batch=1,
                               with_probabilities=True, scene_passes=3, scene_sample=sample, prefetch=0,
                               progress=lambda p, m, seen=seen: seen.append(p))
        assert report.tiles == 64 and report.scene_passes == 3 and report.scene_pass_tiles == 64 // sample
        assert seen == sorted(seen) and seen[-1] == pytest.approx(100.0)
        proba[sample] = out
    assert reads == {1: 64 + 4 * 64, 4: 16 + 3 * 16 + 64}
    local = predict_array_tiled(pred, data, tile=16, halo=8, with_probabilities=True, scene_passes=0)[2]
    # measured: mean |p - p_all| 0.0055 sampled, 0.0175 with each window's own statistics
    assert float(np.abs(proba[4] - proba[1]).mean()) < 0.5 * float(np.abs(local - proba[1]).mean())
    assert float((proba[4].argmax(0) == proba[1].argmax(0)).mean()) > 0.99
