"""The statistics passes of a tiled prediction: which tiles each sweep sees, and the sweeps themselves.

Tiles given their own GroupNorm/attention statistics disagree with whole-scene prediction (core/
scene_stats.py says why). Before the final sweep that classifies and writes every tile, a tiled run
therefore makes ``passes`` sweeps that only gather whole-scene statistics (``SceneStatistics``):
``StatisticsPasses`` decides how many (none for a single window or a network that is not a torch
module), which tiles each looks at (``statistics_tiles``: a spread sample on rasters of many tiles),
which pixels of a tile feed the statistics (``stats_region``), the progress of each sweep, and runs
the sweeps with the statistics attached to the network. The batch loop of one sweep (reading,
computing, writing) belongs to the engine (core/prediction/inference.py) and is handed in as a callable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from .scene_stats import SceneStatistics
from .stage_cache import Stage1Cache
from .tiling import PAD_MULTIPLE, Tile, batches, round_up

__all__ = [
    "DEFAULT_SCENE_PASSES",
    "DEFAULT_SCENE_SAMPLE",
    "MIN_SAMPLED_TILES",
    "StatisticsPasses",
    "stats_region",
    "statistics_tiles",
]

#: Passes over the tiles that gather whole-scene normalisation statistics before the final pass
#: (core/prediction/scene_stats.py). Measured on a 3x3 mosaic of Salinas-A, 192-px windows (benchmarks/
#: seams_statistics.py): agreement with whole-scene prediction 96.7 % with each window's own
#: statistics, then 96.1, 98.0, 99.7 % after 1, 2, 3 passes (99.9 % from 7). On an H200 (bf16), a 2048^2
#: synthetic scene with the default 576-px windows: 99.20 % with own statistics, 99.92 / 99.94 % after
#: 2 / 3 passes (benchmarks/bench_seams.py, docs/PERFORMANCE.md).
DEFAULT_SCENE_PASSES = 3
#: A statistics pass over a raster of many tiles looks at every SCENE_SAMPLE-th tile only (a diagonal
#: lattice over the tile grid, shifted in each pass, so the passes together see 3/4 of the tiles):
#: the statistics are scene averages, and a spread sample estimates them; the final pass still
#: classifies every tile. Applied only when each pass keeps >= MIN_SAMPLED_TILES tiles. Measured on an
#: H200: 2048^2 synthetic with 256-px tiles (64 tiles), 3 passes: agreement 99.86 % over all tiles, 99.80 %
#: sampled; 4096^2 x 200 with the defaults: 80 -> 164-192 Mpixel/min (0 passes: 287).
DEFAULT_SCENE_SAMPLE = 4
#: So sampling starts at 64 tiles (16 per pass, as measured above). Fewer per pass went wrong: a
#: checkerboard over 16 tiles (8 per pass) gave 97.74 % agreement, OA -0.83, against 99.88 % / +0.00
#: with every tile (2-core CPU, 512^2 synthetic scene, 128-px tiles, benchmarks/bench_seams.py).
MIN_SAMPLED_TILES = 16


def stats_region(tile: Tile, height: int, width: int) -> tuple[int, int, int, int]:
    """The pixels of ``tile``'s read window whose statistics this tile contributes (r0, r1, c0, c1).

    Its core, extended over the zero padding when the core reaches the bottom/right raster edge:
    whole-scene prediction counts that padding too, and the cores plus the padding cover the padded
    scene exactly once (core/prediction/scene_stats.py).
    """
    r0, c0 = tile.core.row - tile.read.row, tile.core.col - tile.read.col
    r1, c1 = r0 + tile.core.height, c0 + tile.core.width
    if tile.core.row + tile.core.height == height:
        r1 = round_up(height, PAD_MULTIPLE) - tile.read.row
    if tile.core.col + tile.core.width == width:
        c1 = round_up(width, PAD_MULTIPLE) - tile.read.col
    return r0, r1, c0, c1


def statistics_tiles(tiles: list[Tile], tile: int, pass_index: int, sample: int) -> list[Tile]:
    """The tiles a statistics pass looks at: those on a diagonal lattice of the tile grid, every
    ``sample``-th tile of each grid row and column, shifted by the pass index; all tiles when that
    leaves fewer than MIN_SAMPLED_TILES (small rasters) or ``sample`` <= 1."""
    if sample <= 1 or len(tiles) < sample * MIN_SAMPLED_TILES:
        return tiles
    return [t for t in tiles if (t.core.row // tile + t.core.col // tile + pass_index) % sample == 0]


class StatisticsPasses:
    """The sweeps of one tiled run: ``passes`` statistics sweeps, then the final sweep over all tiles.

    ``batches[i]`` are the tile batches of sweep i (the last: every tile, ``final``); ``stats`` the
    whole-scene statistics the statistics sweeps gather (None without statistics passes).
    """

    def __init__(self, tiles: list[Tile], final: list[list[Tile]], tile: int, batch: int, network: Any,
                 scene_passes: int, scene_sample: int, stage_cache: Stage1Cache | None = None):
        self.network = network
        self.passes = scene_passes if len(tiles) > 1 and isinstance(network, torch.nn.Module) else 0
        self.stats = SceneStatistics() if self.passes > 0 else None
        #: with statistics passes on the CPU: a stem-only pass first, then each tile's stage-1 output is reused
        self.stage_cache = stage_cache if self.passes > 0 else None
        # the tile batches of each sweep: a spread sample of the tiles for statistics, all tiles for the last
        self.batches = [batches(statistics_tiles(tiles, tile, i, scene_sample), batch)
                        for i in range(self.passes)] + [final]
        self._pixels = [float(sum(t.core.pixels for b in bs for t in b)) for bs in self.batches]

    @property
    def pass_tiles(self) -> int:
        """Tiles each statistics pass looked at (fewer than all when sampled; 0 without passes)."""
        return sum(len(b) for b in self.batches[0]) if self.passes else 0

    def progress_span(self, index: int) -> tuple[float, float]:
        """(pixels computed before sweep ``index``, pixels of all sweeps): progress counts both."""
        return sum(self._pixels[:index]), sum(self._pixels)

    def label(self, index: int) -> str:
        """Progress text of sweep ``index``, with ``{}`` for the batch number."""
        n = len(self.batches[index])
        if self.passes == 0:
            return f"Tile batch {{}} of {n}"
        if index < self.passes:
            return f"Whole-scene statistics, pass {index + 1} of {self.passes}: tile batch {{}} of {n}"
        return f"Classifying with whole-scene statistics: tile batch {{}} of {n}"

    def run(self, sweep: Callable[..., None], after_pass: Callable[[], None],
            stem_sweep: Callable[[list[list[Tile]]], None] | None = None) -> None:
        """``sweep(index, write=False)`` for each statistics pass (``after_pass()`` after each), then
        ``sweep(passes, write=True)`` with the gathered statistics, all with the statistics attached.

        With a stage cache, ``stem_sweep(batches)`` first runs the stem alone over the first pass's tiles;
        its GroupNorm statistics are then fixed (core/prediction/stage_cache.py)."""
        cache = self.stage_cache
        with self.stats.attached(self.network) if self.stats is not None else contextlib.nullcontext(), \
                cache.attached() if cache is not None else contextlib.nullcontext():
            if cache is not None and stem_sweep is not None:
                self.stats.start_pass()
                stem_sweep(self.batches[0])
                self.stats.end_pass()
                self.stats.frozen.add(cache.stem_norm_name)
            for index in range(self.passes):
                self.stats.start_pass()
                sweep(index, write=False)
                self.stats.end_pass()
                after_pass()
            sweep(self.passes, write=True)
