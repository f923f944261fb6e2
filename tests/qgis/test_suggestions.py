"""The dock lists the "where to draw next" regions in rank order with the reason in words."""

from __future__ import annotations

import pytest

pytest.importorskip("qgis.core")

from rssgl_qgis.io.uncertainty import UncertainRegion  # noqa: E402


def _region(rank: int, first: int, p1: float, second: int, p2: float, pixels: int = 40) -> UncertainRegion:
    return UncertainRegion(rank=rank, component=rank, pixels=pixels, mean_confidence=p1, first_class=first,
                           first_probability=p1, second_class=second, second_probability=p2, bbox=(0, 0, 1, 1))


NAMES = {1: "Corn", 2: "Soybean", 3: "Sand & gravel"}


def test_reason_names_both_classes_and_their_probabilities(qgis_app):
    from rssgl_qgis.gui.suggestions import suggestion_reason

    assert suggestion_reason(_region(1, 1, 0.48, 2, 0.41), NAMES) == "Corn or Soybean: 48 % / 41 %"
    assert suggestion_reason(_region(1, 7, 0.5, 2, 0.3), NAMES) == "7 or Soybean: 50 % / 30 %"  # unnamed class


def test_dock_summary_lists_the_suggestions_in_rank_order(qgis_app, tmp_path):
    from rssgl_qgis.gui.dock import RssglDockWidget
    from rssgl_qgis.gui.tasks import TrainOutcome, TrainRequest

    request = TrainRequest(raster_path="", samples_path="", samples_layer="", class_field="",
                           run_folder=str(tmp_path))
    regions = [_region(1, 1, 0.48, 2, 0.41, 120), _region(2, 3, 0.55, 1, 0.30, 60), _region(3, 2, 0.5, 3, 0.45),
               _region(4, 1, 0.6, 3, 0.2)]
    outcome = TrainOutcome("success", request, class_values=[1, 2, 3], class_names=list(NAMES.values()),
                           regions=regions)
    dock = RssglDockWidget(None)
    try:
        lines = dock._summary_html(outcome).split("<br>")
        start = lines.index("Where to draw next, by rank (magenta outlines on the map):")
        assert lines[start + 1:start + 4] == [
            "Region 1: Corn or Soybean: 48 % / 41 % (120 px)",
            "Region 2: Sand &amp; gravel or Corn: 55 % / 30 % (60 px)",  # the summary is HTML: names escaped
            "Region 3: Soybean or Sand &amp; gravel: 50 % / 45 % (40 px)",
        ]
        assert not any(line.startswith("Region 4") for line in lines)  # three listed, the layer holds them all
        outcome.regions = []
        assert "Where to draw next" not in dock._summary_html(outcome)
    finally:
        dock.status_probe.wait(120)
        dock.deleteLater()
