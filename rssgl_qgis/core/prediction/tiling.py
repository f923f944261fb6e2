"""Where the tiles of a tiled prediction lie: core windows, halo read windows, batches (pure numpy).

RSSGL is a whole-scene network: it sees the full padded scene at once. A raster too large for host or
GPU memory is cut into tiles instead:

* each output *core* tile is predicted from a larger *read* window (core + ``halo`` pixels of
  context on every side, shifted inwards at the raster's edges so every read window has the same
  size); only the core is kept, so neighbouring cores never disagree about who owns a pixel;
* read windows are multiples of 16 pixels (the network downsamples 4 times) unless the raster itself
  is smaller, in which case they are zero-padded bottom/right exactly as whole-scene prediction does;
* equally sized windows are stacked into batches (N > 1) so the GPU stays busy.

This module is only that geometry, kept apart from the engine (core/prediction/inference.py) so the memory
plan, the statistics passes, the GDAL block reader (io/blocks.py) and the benchmarks can use it
without torch.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "PAD_MULTIPLE",
    "DEFAULT_TILE",
    "DEFAULT_HALO",
    "Window",
    "Tile",
    "round_up",
    "plan_tiles",
    "batches",
    "smallest_label_dtype",
]

#: The network downsamples 4 times (stride 2): windows are multiples of this.
PAD_MULTIPLE = 16
#: Default core tile and halo in pixels (chosen from benchmarks/bench_seams.py; docs/PERFORMANCE.md).
DEFAULT_TILE = 512
DEFAULT_HALO = 32


class Window(NamedTuple):
    """A pixel rectangle of the raster: top row, left column, height, width."""

    row: int
    col: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)

    @property
    def pixels(self) -> int:
        return self.height * self.width


class Tile(NamedTuple):
    """An output core and the (larger) read window it is predicted from."""

    core: Window
    read: Window

    @property
    def core_in_read(self) -> tuple[slice, slice]:
        """Slices of the core inside the read window's array."""
        r0, c0 = self.core.row - self.read.row, self.core.col - self.read.col
        return slice(r0, r0 + self.core.height), slice(c0, c0 + self.core.width)


def round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def _axis_plan(size: int, start: int, stop: int, tile: int, halo: int) -> list[tuple[int, int, int, int]]:
    """Cores covering [start, stop) of one axis and their read spans: (core0, core_len, read0, read_len).

    Spans live on the PADDED axis (``size`` rounded up to 16, the zeros whole-scene prediction adds
    at the bottom/right), so a window at the far edge sees exactly the padding the whole-scene
    network saw. Every span has the same length (``tile + 2*halo`` rounded up to 16, at most the
    padded axis); spans are shifted inwards at the edges, which keeps at least ``halo`` pixels of
    context on each side of a core wherever the raster has them.
    """
    padded = round_up(size, PAD_MULTIPLE)
    span = min(round_up(tile + 2 * halo, PAD_MULTIPLE), padded)
    out = []
    for core0 in range(start, stop, tile):
        length = min(tile, stop - core0)
        read0 = max(0, min(core0 - halo, padded - span))
        out.append((core0, length, read0, span))
    return out


def plan_tiles(height: int, width: int, tile: int, halo: int, region: Window | None = None) -> list[Tile]:
    """Cores of ``tile`` x ``tile`` pixels covering ``region`` (default: the raster) with their read windows.

    All read windows have the same shape, a multiple of 16, so tiles can be stacked into batches.
    A read window may reach past the bottom/right raster edge into the zero padding (up to the next
    multiple of 16), exactly like whole-scene prediction. Cores are disjoint and cover the region
    exactly (row-major order).
    """
    if height < 1 or width < 1:
        raise ValueError(f"The raster must have at least one pixel, got {height}x{width}.")
    if tile < 1 or halo < 0:
        raise ValueError(f"The tile size must be >= 1 and the halo >= 0 pixels, got tile={tile}, halo={halo}.")
    region = region or Window(0, 0, height, width)
    rows = _axis_plan(height, region.row, region.row + region.height, tile, halo)
    cols = _axis_plan(width, region.col, region.col + region.width, tile, halo)
    return [
        Tile(Window(r0, c0, rh, cw), Window(rr, rc, rrh, rcw))
        for r0, rh, rr, rrh in rows
        for c0, cw, rc, rcw in cols
    ]


def batches(tiles: list[Tile], batch: int) -> list[list[Tile]]:
    """Group tiles into batches of equal read shape (all tiles of one plan share it)."""
    groups: dict[tuple[int, int], list[Tile]] = {}
    for t in tiles:
        groups.setdefault((t.read.height, t.read.width), []).append(t)
    out = []
    for group in groups.values():
        out += [group[i : i + batch] for i in range(0, len(group), batch)]
    return out


def smallest_label_dtype(max_value: int) -> np.dtype:
    """The smallest unsigned integer dtype holding class values up to ``max_value`` (0 = nodata)."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"Class value {max_value} does not fit in 32 bits; use class values below 4294967296.")
