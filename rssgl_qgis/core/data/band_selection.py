"""A user's band selection ("1-129, 136-224", "drop 400-450 nm", the water-vapour preset) as band numbers.

Why here (pure, no GDAL): Train RSSGL's BANDS parameter and the dock's band field share one syntax
and one set of error messages, tested without a raster. The syntax:

* an optional leading ``keep`` or ``drop`` (default ``keep``), with or without a colon;
* items separated by commas or semicolons: a band number ``12``, a range of band numbers ``1-129``
  (1-based, both ends included, as GDAL and QGIS count bands), or a wavelength range in nanometres
  ``1340-1460 nm`` (band centres inside it, ends included);
* an empty text selects every band.

The water-vapour preset drops the bands whose centre lies in the strong atmospheric water-vapour
absorption windows (``WATER_VAPOUR_WINDOWS_NM``, as EnMAP and PRISMA users remove them); it needs
the raster's wavelengths, and says so when they are unknown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import RssglError
from ..text import number_text

__all__ = ["WATER_VAPOUR_WINDOWS_NM", "TRUE_COLOUR_NM", "BandSelection", "select_bands", "true_colour_bands",
           "water_vapour_bands"]

#: Water-vapour absorption windows (nm, ends included); the last has no upper end (beyond 2450 nm).
WATER_VAPOUR_WINDOWS_NM: tuple[tuple[float, float], ...] = ((1340.0, 1460.0), (1790.0, 1960.0), (2450.0, math.inf))

_ITEM = re.compile(r"^(?P<a>\d+(?:\.\d+)?)\s*(?:nm)?\s*(?:-\s*(?P<b>\d+(?:\.\d+)?))?\s*(?P<unit>nm)?$", re.IGNORECASE)
_EXAMPLE = "'1-129, 136-224', 'drop 130-135' or '400-1340 nm, 1460-1790 nm'"


@dataclass(frozen=True)
class BandSelection:
    """The 1-based band numbers kept (ascending) and those the selection left out, with a description."""

    kept: list[int]
    dropped: list[int]
    description: str


def water_vapour_bands(wavelengths: Sequence[float]) -> list[int]:
    """1-based numbers of the bands whose centre lies in a water-vapour window."""
    return [k + 1 for k, wl in enumerate(wavelengths)
            if wl is not None and math.isfinite(wl) and any(lo <= wl <= hi for lo, hi in WATER_VAPOUR_WINDOWS_NM)]


def _parse(text: str, n_bands: int, wavelengths: Sequence[float] | None) -> tuple[str, set[int]]:
    body = text.strip()
    mode = "keep"
    head = re.match(r"^(keep|drop)\b\s*:?\s*", body, re.IGNORECASE)
    if head:
        mode, body = head.group(1).lower(), body[head.end():]
    items = [s.strip() for s in re.split(r"[,;]", body)]
    if not any(items):
        raise RssglError(f"The band selection '{text.strip()}' lists no band; write for example {_EXAMPLE}.")
    chosen: set[int] = set()
    for item in items:
        if not item:
            continue
        match = _ITEM.match(item)
        if not match:
            raise RssglError(f"The band selection cannot read '{item}'; write band numbers and ranges or wavelength "
                             f"ranges in nm, for example {_EXAMPLE}.")
        a = float(match.group("a"))
        b = float(match.group("b")) if match.group("b") is not None else a
        if b < a:
            raise RssglError(f"The band selection range '{item}' runs backwards; write the smaller number first.")
        if match.group("unit") or "nm" in item.lower():
            if not wavelengths or not all(w is not None and math.isfinite(w) for w in wavelengths):
                raise RssglError(f"The band selection '{item}' is a wavelength range, but the raster does not record "
                                 "its band wavelengths; select the bands by number instead (for example '1-129').")
            chosen.update(k + 1 for k, wl in enumerate(wavelengths) if a <= wl <= b)
            continue
        if not (a.is_integer() and b.is_integer()):
            raise RssglError(f"The band selection '{item}' is not a band number; band numbers are whole numbers "
                             f"(add 'nm' for a wavelength range).")
        lo, hi = int(a), int(b)
        if lo < 1 or hi > n_bands:
            raise RssglError(f"The band selection '{item}' lies outside the raster's bands: they are numbered 1 to "
                             f"{n_bands}.")
        chosen.update(range(lo, hi + 1))
    return mode, chosen


def select_bands(text: str | None, n_bands: int, wavelengths: Sequence[float] | None = None,
                 drop_water_vapour: bool = False) -> BandSelection:
    """The bands a selection keeps out of ``n_bands``; RssglError (with an example) for text it cannot use.

    ``wavelengths`` (nm, one per band, or None when the raster does not record them) serve wavelength
    ranges and the water-vapour preset. A selection that keeps no band is an error.
    """
    every = set(range(1, n_bands + 1))
    kept = set(every)
    parts = []
    if text and text.strip():
        mode, chosen = _parse(text, n_bands, wavelengths)
        kept = chosen if mode == "keep" else every - chosen
        parts.append(f"'{text.strip()}'")
    if drop_water_vapour:
        if not wavelengths or not all(w is not None and math.isfinite(w) for w in wavelengths):
            raise RssglError("Dropping the water-vapour bands needs the raster's band wavelengths, and this raster does "
                             "not record them; select the bands by number instead (for example 'drop 130-135').")
        kept -= set(water_vapour_bands(wavelengths))
        windows = ", ".join(f"{number_text(lo)}-{number_text(hi)} nm" if math.isfinite(hi) else
                            f"beyond {number_text(lo)} nm" for lo, hi in WATER_VAPOUR_WINDOWS_NM)
        parts.append(f"drop the water-vapour windows ({windows})")
    if not kept:
        raise RssglError(f"The band selection ({'; '.join(parts)}) leaves no band of the {n_bands} to train on; keep "
                         "at least one band.")
    return BandSelection(kept=sorted(kept), dropped=sorted(every - kept), description="; ".join(parts) or "all bands")


#: Band centres (nm) of a true-colour view: red, green, blue.
TRUE_COLOUR_NM = (640.0, 550.0, 470.0)
#: A band farther than this from a true-colour centre does not show that colour (e.g. a SWIR-only sensor).
TRUE_COLOUR_REACH_NM = 60.0


def true_colour_bands(wavelengths: Sequence[float] | None) -> tuple[int, int, int] | None:
    """1-based (red, green, blue) bands nearest 640 / 550 / 470 nm, or None when the wavelengths are
    unknown or a colour has no band within TRUE_COLOUR_REACH_NM."""
    if not wavelengths:
        return None
    chosen = []
    for target in TRUE_COLOUR_NM:
        distances = [abs(w - target) if w is not None and math.isfinite(w) else math.inf for w in wavelengths]
        best = min(range(len(distances)), key=distances.__getitem__)
        if not distances[best] <= TRUE_COLOUR_REACH_NM:
            return None
        chosen.append(best + 1)
    return chosen[0], chosen[1], chosen[2]
