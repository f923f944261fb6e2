"""Layer-wise whole-scene prediction on the CPU (core/prediction/layerwise.py): the whole-scene map, computed in tiles."""

from __future__ import annotations

import ctypes
import threading

import numpy as np
import pytest
import torch

from rssgl_qgis.core.errors import Cancelled
from rssgl_qgis.core.network.model import RSSGL, ConvLSTM3d, RssglConfig
from rssgl_qgis.core.prediction import host_memory, inference, layerwise
from rssgl_qgis.core.prediction.inference import TilePredictor, predict_array_tiled
from rssgl_qgis.core.spectral.pool import PoolSettings
from rssgl_qgis.core.spectral.spectral_model import fit_spectral


def _predictor(kernel=(3, 5, 5), spectral=False) -> TilePredictor:
    torch.manual_seed(0)
    net = RSSGL(RssglConfig(in_bands=6, num_classes=3, kernel=kernel, block_channels=(16, 16, 32, 32),
                            inner_dim=16)).eval()
    p = TilePredictor(network=net, band_mean=np.zeros(6), band_std=np.ones(6), classes=np.array([2, 5, 7]))
    if spectral:
        rng = np.random.default_rng(1)
        p.spectral = fit_spectral(rng.normal(size=(30, 6)), np.repeat(np.arange(3), 10), seed=0)
        p.pool = PoolSettings(weight=0.5, temperature=2.0)
    return p


def _cube(h=75, w=93) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    base = rng.normal(0, 1, (6, 1, 1)) * (np.indices((h, w)).sum(0) // 16 % 3 - 1)
    cube = (base + rng.normal(0, 0.5, (6, h, w))).astype(np.float32)
    valid = np.ones((h, w), dtype=bool)
    valid[5:20, 30:50] = False  # a nodata gap
    cube[:, 60, 10] = np.nan  # and a NaN pixel
    return cube, valid


def _whole(p, cube, valid):
    return predict_array_tiled(p, cube, valid=valid, tile=1024, memory_limit_bytes=8 << 30, with_probabilities=True,
                               layerwise=False)


@pytest.mark.parametrize("kernel,spectral", [((3, 5, 5), False), ((3, 3, 3), True)])
def test_layerwise_gives_the_whole_scene_map(kernel, spectral, monkeypatch):
    """Tiles of every layer (ConvLSTM tiles of 16 px: far below the halo) reproduce the whole-scene map:
    labels, confidence, probabilities, nodata; with the spectral model pooled too."""
    p = _predictor(kernel, spectral)
    cube, valid = _cube()
    ref_labels, ref_conf, ref_proba, ref = _whole(p, cube, valid)
    assert ref.tiles == 1
    real = layerwise.layerwise_predict
    monkeypatch.setattr(layerwise, "layerwise_predict", lambda *a, **k: real(*a, **k, lstm_tile=16))
    labels, conf, proba, report = predict_array_tiled(p, cube, valid=valid, tile=32, halo=16, with_probabilities=True)
    assert report.layerwise and report.tiles > 1 and report.scene_passes == 0
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(conf, ref_conf, atol=2e-5)
    np.testing.assert_allclose(proba, ref_proba, atol=2e-5)
    assert (labels[~valid] == 0).all() and labels[60, 10] == 0 and (conf[~valid] == -1).all()
    assert report.valid_pixels == int(valid.sum()) - 1


def test_the_windowed_passes_differ_where_layerwise_does_not():
    """The comparison above can fail: the windowed statistics passes with 32-px cores do not give the
    whole-scene map on this scene."""
    p = _predictor()
    cube, valid = _cube()
    ref_labels = _whole(p, cube, valid)[0]
    windowed, _, _, report = predict_array_tiled(p, cube, valid=valid, tile=32, halo=16, layerwise=False)
    assert not report.layerwise and report.scene_passes > 0
    assert (windowed != ref_labels).any()


def test_lean_convlstm_matches_forward():
    torch.manual_seed(3)
    lstm = ConvLSTM3d((3, 5, 5), (4, 4)).eval()
    x = torch.randn(2, 8, 3, 21, 19)
    with torch.no_grad():
        torch.testing.assert_close(lstm.forward_lean(x), lstm(x), atol=1e-6, rtol=1e-5)


def test_lstm_halo_covers_the_receptive_field():
    assert layerwise.lstm_halo(ConvLSTM3d((3, 5, 5), (4, 4))) == 24  # 2 x (8 + 1) = 18 -> 24
    assert layerwise.lstm_halo(ConvLSTM3d((3, 3, 3), (4, 4))) == 16  # 9 -> 16
    assert layerwise.lstm_halo(ConvLSTM3d((3, 7, 7), (4, 4, 4))) == 32  # 3 x 10 = 30 -> 32


def test_a_scene_too_large_for_the_memory_setting_uses_the_windows():
    p = _predictor()
    cube, valid = _cube()
    need = layerwise.bytes_needed(p.network, 75, 93, 3, False)
    _, _, _, report = predict_array_tiled(p, cube, valid=valid, tile=32, halo=16,
                                          memory_limit_bytes=need + layerwise.MIN_WORK_BYTES - 1)
    assert not report.layerwise and report.scene_passes > 0
    _, _, _, report = predict_array_tiled(p, cube, valid=valid, tile=32, halo=16,
                                          memory_limit_bytes=need + layerwise.MIN_WORK_BYTES)
    assert report.layerwise


def test_zero_passes_and_single_windows_keep_their_meaning():
    p = _predictor()
    cube, valid = _cube()
    assert not predict_array_tiled(p, cube, valid=valid, tile=32, halo=16, scene_passes=0)[3].layerwise
    assert not predict_array_tiled(p, cube, valid=valid, tile=1024, memory_limit_bytes=8 << 30)[3].layerwise


def test_cancel_stops_a_layerwise_run():
    p = _predictor()
    cube, valid = _cube()
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 5

    written = []
    with pytest.raises(Cancelled):
        inference.predict_tiled(p, lambda w: cube[:, w.row:w.row + w.height, w.col:w.col + w.width], 75, 93,
                                write_window=written.append, tile=32, halo=16, should_stop=should_stop,
                                layerwise=True)
    assert len(calls) == 6 and not written


def test_progress_rises_to_100():
    p = _predictor()
    cube, valid = _cube()
    ticks = []
    inference.predict_tiled(p, lambda w: cube[:, w.row:w.row + w.height, w.col:w.col + w.width], 75, 93,
                            write_window=lambda r: None, tile=32, halo=16, layerwise=True,
                            progress=lambda pct, msg: ticks.append(pct))
    assert ticks == sorted(ticks) and ticks[-1] == pytest.approx(100.0)


def _glibc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018
        return libc
    except (OSError, AttributeError):
        return None


@pytest.mark.skipif(_glibc() is None, reason="glibc only")
def test_reuse_freed_memory_nests_and_restores():
    """The setting is on while any user is inside (threads too) and glibc's initial one after the last."""
    seen = []
    with host_memory.reuse_freed_memory() as on:
        assert on
        t = threading.Thread(target=lambda: seen.append(host_memory._depth))
        with host_memory.reuse_freed_memory():
            t.start()
            t.join()
            assert host_memory._depth == 2
        assert host_memory._depth == 1
    assert host_memory._depth == 0 and seen == [2]


def test_out_of_memory_before_any_tile_falls_back_to_the_windows(monkeypatch):
    """A host too short of memory for the layer maps: the read windows classify the raster, once each."""
    p = _predictor()
    cube, valid = _cube()
    reference = predict_array_tiled(p, cube, valid=valid, tile=32, halo=16, layerwise=False)[0]

    def short_of_memory(*a, **k):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 5 GB")

    monkeypatch.setattr(layerwise, "layerwise_predict", short_of_memory)
    labels, _, _, report = predict_array_tiled(p, cube, valid=valid, tile=32, halo=16)
    assert not report.layerwise and report.scene_passes > 0
    np.testing.assert_array_equal(labels, reference)
    monkeypatch.setattr(layerwise, "layerwise_predict", lambda *a, **k: (_ for _ in ()).throw(ValueError("bug")))
    with pytest.raises(ValueError, match="bug"):  # anything else is not swallowed
        predict_array_tiled(p, cube, valid=valid, tile=32, halo=16)
