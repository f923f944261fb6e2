"""Default class colours: the authors' palette first, then well-separated generated colours."""

from __future__ import annotations

import colorsys

__all__ = ["AUTHORS_PALETTE", "default_colors"]

# Classes 1..16 of the authors' configs (class 0, black, is the background and is not listed).
AUTHORS_PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255),
    (192, 192, 192), (128, 128, 128), (128, 0, 0), (128, 128, 0), (0, 128, 0), (128, 0, 128),
    (0, 128, 128), (0, 0, 128), (255, 165, 0), (255, 215, 0),
)


def default_colors(count: int) -> list[tuple[int, int, int]]:
    """``count`` RGB colours: the authors' 16, then hues spaced by the golden ratio (distinct, deterministic)."""
    if count < 0:
        raise ValueError(f"The number of colours must be >= 0, got {count}.")
    colors = list(AUTHORS_PALETTE[:count])
    hue = 0.0
    while len(colors) < count:
        hue = (hue + 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.85 if len(colors) % 2 else 0.65)
        colors.append((round(r * 255), round(g * 255), round(b * 255)))
    return colors
