"""WindowedScene.band_statistics reads the whole raster: it reports progress and stops when asked (issue 29)."""

from __future__ import annotations

import numpy as np
import pytest

import rssgl_qgis.core.training.windowed_scene as ws
from rssgl_qgis.core.errors import Cancelled
from rssgl_qgis.core.training.windowed_scene import WindowedScene


def _counting_scene(height: int = 37) -> tuple[WindowedScene, list]:
    cube = np.random.default_rng(0).normal(100.0, 5.0, (5, height, 53)).astype(np.float32)
    reads: list = []
    base = WindowedScene.from_array(cube)

    def read(window):
        reads.append(tuple(window))
        return base.read_window(window)

    return WindowedScene(read, 5, height, 53), reads


@pytest.fixture
def strips_of_seven(monkeypatch):
    monkeypatch.setattr(ws, "STATISTICS_STRIP_BYTES", 5 * 53 * 4 * 7)  # 6 strips: 5 of 7 rows, one of 2


def test_band_statistics_reports_the_rows_read_as_the_engine_s_progress(strips_of_seven, monkeypatch):
    monkeypatch.setattr(ws, "STATISTICS_PROGRESS_SECONDS", 0.0)
    scene, reads = _counting_scene()
    messages: list[tuple[float, str]] = []
    scene.band_statistics(progress=lambda percent, message: messages.append((percent, message)))
    percents = [p for p, _ in messages]
    assert percents == pytest.approx([100.0 * r / 37 for r in (0, 7, 14, 21, 28, 35, 37)])
    assert messages[-1][1] == "band statistics for training: 37 of 37 rows read"
    assert len(reads) == 6


def test_band_statistics_sends_at_most_one_message_a_second_and_the_last(strips_of_seven):
    scene, _ = _counting_scene()
    messages: list[float] = []
    scene.band_statistics(progress=lambda percent, message: messages.append(percent))
    assert messages == [0.0, 100.0]  # six strips read in well under a second


def test_band_statistics_stops_reading_when_asked(strips_of_seven):
    scene, reads = _counting_scene()
    with pytest.raises(Cancelled, match="band statistics"):
        scene.band_statistics(should_stop=lambda: len(reads) >= 2)
    assert len(reads) == 2


def test_fit_on_windows_passes_the_statistics_messages_to_its_progress(monkeypatch):
    from rssgl_qgis.core.training.classifier import RssglClassifier
    from rssgl_qgis.core.training.params import TrainingParams

    class Stop(Exception):
        pass

    def statistics(self, progress=None, should_stop=None):
        progress(42.0, "band statistics for training: 5 of 12 rows read")
        raise Stop

    monkeypatch.setattr(WindowedScene, "band_statistics", statistics)
    cube = np.random.default_rng(0).normal(0.0, 1.0, (4, 12, 12)).astype(np.float32)
    labels = np.zeros((12, 12), np.int64)
    labels[1:4, 1:4], labels[8:11, 8:11] = 1, 2
    seen: list[tuple[float, str]] = []
    clf = RssglClassifier(params=TrainingParams(device="cpu", iterations=1, training_input="windows"))
    with pytest.raises(Stop):
        clf.fit(WindowedScene.from_array(cube), labels, progress=lambda p, m: seen.append((p, m)))
    assert seen == [(0.0, "band statistics for training: 5 of 12 rows read")]
