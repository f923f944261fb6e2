"""The "where to draw next" suggestions in words, for the dock's summary.

Each region of io.uncertainty comes with the two classes the model confuses there and their mean
probabilities; the dock lists the regions in rank order with that reason, e.g. "Corn or Soybean:
48 % / 41 %", so the user knows what to look for before zooming in. Pure strings: callable from any
thread, the dock calls it in the GUI thread when it renders the outcome.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from qgis.PyQt.QtCore import QCoreApplication

#: Suggestions listed in the summary (the map layer holds them all).
LISTED = 3


def _tr(text: str) -> str:
    return QCoreApplication.translate("RssglDockWidget", text)


def suggestion_reason(region, names: dict[int, str]) -> str:
    """"Corn or Soybean: 48 % / 41 %": the two likeliest classes in the region and their mean probabilities."""
    return _tr("{0} or {1}: {2} % / {3} %").format(
        names.get(region.first_class, str(region.first_class)), names.get(region.second_class, str(region.second_class)),
        round(100 * region.first_probability), round(100 * region.second_probability))


def suggestion_lines(regions: Sequence, names: dict[int, str], listed: int = LISTED) -> list[str]:
    """HTML lines for the summary: a heading, then the first ``listed`` regions in rank order with their reason."""
    if not regions:
        return []
    lines = [_tr("Where to draw next, by rank (magenta outlines on the map):")]
    for region in list(regions)[:listed]:
        lines.append(html.escape(_tr("Region {0}: {1} ({2} px)").format(
            region.rank, suggestion_reason(region, names), region.pixels)))
    return lines
