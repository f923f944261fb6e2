"""Tiled, memory-bounded RSSGL prediction for rasters of any size (pure torch/numpy): the entry points.

RSSGL is a whole-scene network: it sees the full padded scene at once. An airborne flight line
(thousands x thousands x 200+ bands) does not fit in host or GPU memory, so it is classified tile by
tile. This module runs that: ``predict_tiled`` plans the run, normalises each batch, runs the network
(``TilePredictor``), cuts the cores out and hands them to ``write_window``; on a GPU out-of-memory
error it empties the cache and retries with half the batch, then half the tile (``_TiledRun``). The
parts it drives live in their own modules:

* core/prediction/tile_predictor.py: the model side of each tile (``TilePredictor``: normalise, pad, run RSSGL,
  pool the spectral model, labels and confidences); where RSSGL has no vote in the pool (weight 0, or a
  stage-one model file without a network) the spectral model alone classifies per-pixel blocks: no halos,
  no statistics passes, no network (``TilePredictor.spectral_only``);
* core/prediction/tiling.py: core tiles, halo read windows (multiples of 16) and batches;
* core/prediction/memory_model.py: tile size and batch from a host memory budget (default 2 GiB) and the free
  GPU memory, and which errors count as out-of-memory;
* core/prediction/pipeline.py: reading batches ahead in a background thread through a bounded queue,
  page-locked buffers and asynchronous copies on CUDA;
* core/prediction/statistics_passes.py: the sweeps that gather whole-scene statistics before the final one;
* core/prediction/stage_cache.py: on the CPU, each window's stage-1 ConvLSTM output reused across those sweeps.

Tiling is not exactly whole-scene prediction: GroupNorm statistics and the channel attention's
global pooling are computed per window unless the statistics passes inject whole-scene ones.
``benchmarks/bench_seams.py`` measures how much that changes the map for several tile/halo sizes;
the defaults come from that measurement (docs/PERFORMANCE.md, "Large rasters").

The reader is a plain callable ``read_window(window) -> ndarray (B, h, w)`` in the raster's own
dtype, so the engine runs the same on GDAL rasters (rssgl_qgis.io.blocks), memory maps and arrays.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import Cancelled
from . import layerwise as layerwise_forward
from .host_memory import reuse_freed_memory
from .memory_model import MIN_TILE, TilingPlan, is_out_of_memory, plan_memory
from .pipeline import BatchReader, Pending, PinnedBatch, Prefetcher, SyncReader, to_host_async
from .scene_stats import SceneStatistics
from .stage_cache import Stage1Cache
from .statistics_passes import DEFAULT_SCENE_PASSES, DEFAULT_SCENE_SAMPLE, StatisticsPasses, stats_region
from .tile_predictor import TilePredictor
from .tiling import PAD_MULTIPLE, Tile, Window, batches, plan_tiles, round_up, smallest_label_dtype

__all__ = [
    "TilePredictor",
    "TileResult",
    "TiledReport",
    "predict_tiled",
    "predict_array_tiled",
]

log = logging.getLogger(__name__)

#: Let cuDNN time its kernels for the (fixed) batch shape of a tiled run (torch.backends.cudnn.benchmark).
#: Off: on an H200, 4096^2 x 200 with the defaults, the timing cost 2.7-8.6 s in the first run of a
#: process (74-129 Mpixel/min instead of 171) and gained only 3 % in later runs (196 vs 191 Mpixel/min;
#: benchmarks/bench_infer.py --no-autotune, docs/PERFORMANCE.md).
CUDNN_AUTOTUNE = False


@dataclass
class TileResult:
    """Predictions of one core window: what ``write_window`` receives.

    ``labels`` hold the ORIGINAL class values (0 = nodata); ``confidence`` is the max softmax
    (-1 where invalid); ``probabilities`` (K, h, w) only when asked for (-1 where invalid).
    """

    window: Window
    labels: np.ndarray
    confidence: np.ndarray
    probabilities: np.ndarray | None = None



@dataclass
class TiledReport:
    """What a tiled run did: used for logs, reports and benchmarks."""

    height: int
    width: int
    tiles: int
    tile: int
    halo: int
    batch: int
    read_shape: tuple[int, int]
    device: str
    seconds: float
    valid_pixels: int
    oom_retries: int = 0
    final_tile: int = 0
    final_batch: int = 0
    read_seconds: float = 0.0
    compute_seconds: float = 0.0
    write_seconds: float = 0.0
    scene_passes: int = 0  # statistics passes run before the writing pass (core/prediction/scene_stats.py)
    scene_pass_tiles: int = 0  # tiles each statistics pass looked at (fewer than ``tiles`` when sampled)
    layerwise: bool = False  # the whole-scene forward computed layer by layer (core/prediction/layerwise.py), no passes

    @property
    def mpixels_per_minute(self) -> float:
        return self.height * self.width / 1e6 / max(self.seconds, 1e-9) * 60.0


class _TiledRun:
    """State of one ``predict_tiled`` call (current tile/batch after OOM fallbacks, counters)."""

    def __init__(self, predictor, read_window, valid_fn, nodata, height, width, halo, with_probabilities):
        self.p: TilePredictor = predictor
        self.height, self.width, self.halo = height, width, halo
        self.with_probabilities = with_probabilities
        self.label_dtype = smallest_label_dtype(int(max(0, predictor.classes.max())))
        self.nodata_t = None
        if nodata is not None:
            values = [float("nan") if v is None else float(v) for v in nodata]
            if len(values) != predictor.bands:
                raise ValueError(f"Got {len(values)} nodata values for a {predictor.bands}-band raster.")
            if not all(math.isnan(v) for v in values):
                self.nodata_t = torch.tensor(values, dtype=torch.float32, device=predictor.device)
        self.max_batch = 1
        self.tile = 0  # current core tile size (the plan's, halved by each OOM on a single tile)
        self.tile_reduced = False
        self.oom_retries = 0
        self.valid_pixels = 0
        self.compute_seconds = 0.0
        self.scene_stats: SceneStatistics | None = None  # set by predict_tiled when it gathers statistics
        self.stage_cache: Stage1Cache | None = None  # set by predict_tiled: stage-1 outputs reused on the CPU
        # reading the windows into (on CUDA page-locked) batch buffers and onto the device (core/prediction/pipeline.py)
        self.io = BatchReader(read_window, valid_fn, height, width, predictor.bands, predictor.device)

    def _needs_replan(self, tile: Tile) -> bool:
        """After an OOM shrank the tile size, windows of the old plan (edge tiles too) are re-planned."""
        if not self.tile_reduced:
            return False
        span = round_up(self.tile + 2 * self.halo, PAD_MULTIPLE)
        return tile.read.height > min(span, round_up(self.height, PAD_MULTIPLE)) or tile.read.width > min(
            span, round_up(self.width, PAD_MULTIPLE)
        )

    def compute(self, tiles: list[Tile], raw: Any, mask: Any) -> list[Pending]:
        """Launch one batch (``finish`` gives the results); on out-of-memory retry with half the batch,
        then with half-size tiles. The batch's page-locked buffers return to the pool once the last
        forward launched here is finished (every earlier one ran before it on the same stream)."""
        out = self._compute(tiles, raw, mask)
        if out:
            out[-1].release += [b for b in (raw, mask) if isinstance(b, PinnedBatch) and b.recycle]
        return out

    def _compute(self, tiles: list[Tile], raw: Any, mask: Any) -> list[Pending]:
        if self._needs_replan(tiles[0]):
            return self._split_tiles(tiles)
        if len(tiles) > self.max_batch:
            out = []
            step = self.max_batch  # fixed for this loop: a nested OOM may lower self.max_batch
            for i in range(0, len(tiles), step):
                sl = slice(i, i + step)
                out += self._compute(tiles[sl], raw[sl], None if mask is None else mask[sl])
            return out
        try:
            return self._forward(tiles, raw, mask)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
        # out of memory: free what the failed attempt held, then shrink
        self.oom_retries += 1
        if self.p.device.type == "cuda":
            torch.cuda.empty_cache()
        if len(tiles) > 1:
            self.max_batch = max(1, len(tiles) // 2)
            log.warning("Out of memory with %d tiles per batch; retrying with %d.", len(tiles), self.max_batch)
            return self._compute(tiles, raw, mask)
        current = self.tile
        if current // 2 < MIN_TILE:
            if self.p.device.type == "cuda":
                where, advice = "GPU", ("Close other programs using the GPU, lower the tile size, or classify on "
                                        "the CPU (device 'cpu').")
            else:
                where, advice = self.p.device.type.upper(), "Close other programs, or lower the memory limit or the tile size."
            raise RuntimeError(f"The {where} ran out of memory even with {self.tile}-pixel tiles. {advice}")
        self.tile = current // 2
        self.tile_reduced = True
        log.warning("Out of memory on one tile; retrying with %d-pixel tiles.", self.tile)
        return self._split_tiles(tiles)

    def _split_tiles(self, tiles: list[Tile]) -> list[Pending]:
        """Re-plan each tile's core with the current (reduced) tile size; sub-windows are read again."""
        out = []
        for t in tiles:
            subs = plan_tiles(self.height, self.width, self.tile, self.halo, region=t.core)
            for i in range(0, len(subs), self.max_batch):
                group = subs[i : i + self.max_batch]
                raw, mask = self.io.read(group)
                out += self.compute(group, raw, mask)
        return out

    def read_inputs(self, tiles: list[Tile]) -> tuple[Tensor, Tensor]:
        """``inputs`` of the tiles, read now (no prefetching)."""
        return self.inputs(tiles, *self.io.read(tiles))

    def inputs(self, tiles: list[Tile], raw: Any, mask: Any) -> tuple[Tensor, Tensor]:
        """The normalised batch and its valid mask on the device, with the statistics' regions and the stage
        cache's keys set for it (the network's next forward call is on this batch)."""
        x_raw, m = self.io.to_device(raw, mask)
        x, valid = self.p.normalise(x_raw, self.nodata_t, m)
        if self.scene_stats is not None:
            self.scene_stats.set_regions([stats_region(t, self.height, self.width) for t in tiles], x.shape[-2:])
        if self.stage_cache is not None:
            self.stage_cache.keys = [t.read for t in tiles]
        return x, valid

    def _forward(self, tiles: list[Tile], raw: Any, mask: Any) -> list[Pending]:
        t0 = time.perf_counter()
        x, valid = self.inputs(tiles, raw, mask)
        proba = self.p.probabilities(x)
        del x
        labels, conf, proba = self.p.outputs(proba, valid, self.with_probabilities)
        outs = [labels, conf, valid, proba]
        event = None
        if self.io.pin:
            # copy into page-locked host buffers without waiting: the host reads them in finish(),
            # after the next batch is queued, so the GPU never idles while the host writes results
            outs = [None if t is None else to_host_async(t) for t in outs]
            event = torch.cuda.Event()
            event.record()
        self.compute_seconds += time.perf_counter() - t0
        return [Pending(tiles, *outs, event=event)]

    def finish(self, pending: Pending) -> list[TileResult]:
        """Wait for a launched batch and cut its cores out (host numpy arrays)."""
        t0 = time.perf_counter()
        if pending.event is not None:
            pending.event.synchronize()
        for buffer in pending.release:
            self.io.pool.give(buffer.array)
        pending.release = []
        labels_np = pending.labels.cpu().numpy()
        conf_np = pending.confidence.cpu().numpy()
        valid_np = pending.valid.cpu().numpy()
        proba_np = None if pending.probabilities is None else pending.probabilities.cpu().numpy()
        results = []
        for i, t in enumerate(pending.tiles):
            rs, cs = t.core_in_read
            self.valid_pixels += int(valid_np[i, rs, cs].sum())
            results.append(
                TileResult(
                    window=t.core,
                    labels=labels_np[i, rs, cs].astype(self.label_dtype),
                    confidence=np.ascontiguousarray(conf_np[i, rs, cs], dtype=np.float32),
                    probabilities=None if proba_np is None else np.ascontiguousarray(proba_np[i, :, rs, cs]),
                )
            )
        self.compute_seconds += time.perf_counter() - t0
        return results



def predict_tiled(
    classifier: Any,
    read_window: Callable[[Window], np.ndarray],
    height: int,
    width: int,
    *,
    write_window: Callable[[TileResult], None],
    tile: int | None = None,
    halo: int | None = None,
    batch: int | None = None,
    valid_fn: Callable[[Window, np.ndarray], np.ndarray] | None = None,
    nodata: Sequence[float | None] | None = None,
    itemsize: int = 4,
    memory_limit_bytes: int = 2 << 30,
    with_probabilities: bool = False,
    prefetch: int = 2,
    progress: Callable[[float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    scene_passes: int = DEFAULT_SCENE_PASSES,
    scene_sample: int = DEFAULT_SCENE_SAMPLE,
    layerwise: bool | None = None,
) -> TiledReport:
    """Classify a ``height`` x ``width`` raster tile by tile and hand each core's result to ``write_window``.

    ``scene_passes``: when the raster needs more than one window, this many extra passes over the
    tiles gather whole-scene GroupNorm/attention statistics (core/prediction/scene_stats.py) that the final pass
    uses, so tiles agree with whole-scene prediction instead of each normalising itself (0 = each
    window its own statistics: fastest, visible tile seams). On rasters of many tiles each
    statistics pass looks at every ``scene_sample``-th tile only (``statistics_tiles``; 1 = all).
    ``layerwise``: on the CPU, when the scene's layer maps fit ``memory_limit_bytes``, compute the
    whole-scene forward layer by layer instead (core/prediction/layerwise.py: the whole-scene result, no passes);
    None = whenever it applies and ``scene_passes`` > 0, False = never (benchmarks, tests of the passes).

    ``classifier``: a fitted RssglClassifier or a TilePredictor. ``read_window(window)`` returns the raw
    (B, h, w) block (any numeric dtype; called from background threads, on CUDA several at once for
    horizontal strips of a window, so it must be thread-safe).
    ``valid_fn(window, raw)`` may add a boolean (h, w) mask (e.g. a mask raster); NaN/inf and
    ``nodata`` (per band) are always masked. ``itemsize`` is the raster's bytes per value, used for
    the memory plan. ``prefetch`` batches are read ahead by a background thread (0 = read in the
    calling thread, no overlap: only for baselines). On CUDA, batches go through page-locked buffers
    and the loop runs one batch ahead (batch k is queued on the GPU before batch k-1 is written).
    Results arrive in row-major order of cores; every pixel is written exactly once.
    Raises ``Cancelled`` when ``should_stop()`` turns True (checked before every batch).
    """
    p = TilePredictor.from_classifier(classifier)
    t_start = time.perf_counter()
    if p.spectral_only:  # the spectral model's map alone: per-pixel blocks, no halos, no statistics passes
        halo, scene_passes, layerwise = 0, 0, False
        log.info("RSSGL has no vote in this model's map: the spectral model classifies each pixel on its own "
                 "(the network does not run).")
    plan, tiles, final_batches, run = _plan_run(
        p, read_window, valid_fn, nodata, height, width, tile=tile, halo=halo, batch=batch, itemsize=itemsize,
        memory_limit_bytes=memory_limit_bytes, with_probabilities=with_probabilities, prefetch=prefetch,
    )
    if should_stop is not None and should_stop():
        raise Cancelled("Classification cancelled before the first tile.")
    if _use_layerwise(p, layerwise, len(tiles), scene_passes, height, width, memory_limit_bytes):
        report = _layerwise_unless_out_of_memory(p, run, tiles, plan, height, width, write_window,
                                                 memory_limit_bytes, with_probabilities, progress,
                                                 should_stop, t_start)
        if report is not None:
            return report
    cache = None
    if not p.spectral_only and Stage1Cache.applies(p.network, p.device):
        cache = Stage1Cache(p.network, memory_limit_bytes // 4)
    sweeps = StatisticsPasses(tiles, final_batches, plan.tile, plan.batch, p.network, scene_passes, scene_sample,
                              stage_cache=cache)
    run.scene_stats = sweeps.stats
    run.stage_cache = sweeps.stage_cache
    sweeper = _Sweeper(p, run, sweeps, write_window, prefetch, progress, should_stop)
    sweeper.run_passes()
    return _windowed_report(p, run, sweeps, sweeper, tiles, plan, height, width, t_start)


def _windowed_report(p: TilePredictor, run: _TiledRun, sweeps: StatisticsPasses, sweeper: _Sweeper,
                     tiles: list[Tile], plan: TilingPlan, height: int, width: int,
                     t_start: float) -> TiledReport:
    """The report of predict_tiled's windowed path, once the writing pass has checked out: every pixel
    written exactly once (a planning bug must never go unnoticed)."""
    if sweeper.done != height * width:  # every pixel exactly once: a planning bug must never go unnoticed
        raise RuntimeError(
            f"Tiled prediction wrote {sweeper.done} pixels of {height * width}; please report this bug."
        )
    return TiledReport(
        height=height,
        width=width,
        tiles=len(tiles),
        tile=plan.tile,
        halo=plan.halo,
        batch=plan.batch,
        read_shape=plan.read_shape,
        device=str(p.device),
        seconds=time.perf_counter() - t_start,
        valid_pixels=run.valid_pixels,
        oom_retries=run.oom_retries,
        final_tile=run.tile,
        final_batch=run.max_batch,
        read_seconds=sweeper.read_seconds,
        compute_seconds=run.compute_seconds,
        scene_passes=sweeps.passes,
        scene_pass_tiles=sweeps.pass_tiles,
        write_seconds=sweeper.write_seconds,
    )


def _plan_run(p: TilePredictor, read_window: Callable[[Window], np.ndarray],
              valid_fn: Callable[[Window, np.ndarray], np.ndarray] | None,
              nodata: Sequence[float | None] | None, height: int, width: int, *, tile: int | None,
              halo: int | None, batch: int | None, itemsize: int, memory_limit_bytes: int,
              with_probabilities: bool,
              prefetch: int) -> tuple[TilingPlan, list[Tile], list[list[Tile]], _TiledRun]:
    """predict_tiled's plan: tile size, halo and batch within the memory budget, the tiles and their batches,
    and the run's state with its reader set up for ``prefetch`` (logged before any tile is read)."""
    plan = plan_memory(
        p.bands,
        p.num_classes,
        height,
        width,
        itemsize=itemsize,
        device=p.device,
        memory_limit_bytes=memory_limit_bytes,
        tile=tile,
        halo=halo,
        batch=batch,
        with_probabilities=with_probabilities,
        prefetch=prefetch,
    )
    tiles = plan_tiles(height, width, plan.tile, plan.halo)
    run = _TiledRun(p, read_window, valid_fn, nodata, height, width, plan.halo, with_probabilities)
    if prefetch <= 0:  # the naive baseline: no overlap at all (no reader thread, synchronous copies)
        run.io.pin, run.io.pool = False, None
    elif run.io.pin:
        run.io.read_pool = ThreadPoolExecutor(max_workers=run.io.read_threads, thread_name_prefix="rssgl-tile-read")
    run.max_batch = plan.batch
    run.tile = plan.tile
    final_batches = batches(tiles, plan.batch)
    log.info(
        "Tiled prediction: %dx%d pixels, %d tiles of %d (+%d halo, read %dx%d), batch %d on %s.",
        height, width, len(tiles), plan.tile, plan.halo, *plan.read_shape, plan.batch, p.device,
    )
    return plan, tiles, final_batches, run


def _layerwise_unless_out_of_memory(p: TilePredictor, run: _TiledRun, tiles: list[Tile], plan: TilingPlan,
                                    height: int, width: int, write_window: Callable[[TileResult], None],
                                    memory_limit_bytes: int, with_probabilities: bool, progress, should_stop,
                                    t_start: float) -> TiledReport | None:
    """``_predict_layerwise``, or None when the host ran out of memory before any tile was written: the
    caller then classifies the raster in read windows with statistics passes instead."""
    written: list[int] = []

    def counted(result: TileResult) -> None:
        written.append(1)
        write_window(result)

    try:
        return _predict_layerwise(p, run, tiles, plan, height, width, counted, memory_limit_bytes,
                                  with_probabilities, progress, should_stop, t_start)
    except Exception as exc:  # the host ran out of memory before any tile was written: use the windows
        if written or not is_out_of_memory(exc):
            raise
        log.warning("Out of memory computing the raster layer by layer (%s); classifying it in read windows "
                    "with statistics passes instead.", exc)
        run.valid_pixels = 0
    return None


class _Sweeper:
    """The windowed passes of one ``predict_tiled`` call over its tiles (``StatisticsPasses.run`` calls
    ``sweep``, ``statistics_pass_done`` and ``stem_sweep``), and what they counted for the report."""

    def __init__(self, p: TilePredictor, run: _TiledRun, sweeps: StatisticsPasses,
                 write_window: Callable[[TileResult], None], prefetch: int,
                 progress: Callable[[float, str], None] | None,
                 should_stop: Callable[[], bool] | None) -> None:
        self.p, self.run, self.sweeps = p, run, sweeps
        self.write_window, self.prefetch = write_window, prefetch
        self.progress, self.should_stop = progress, should_stop
        # On CUDA the loop runs one batch ahead: batch k is queued on the GPU before the results of batch
        # k-1 are waited for and written, so the host's work (copy-out, cropping, writing, the next
        # batch's transfer) overlaps the network instead of leaving the GPU idle between batches.
        self.ahead = run.io.pin
        self.done = 0  # pixels of the current pass (the last pass's for the final check)
        self.write_seconds = 0.0
        self.read_seconds = 0.0

    def run_passes(self) -> None:
        """The statistics passes, then the writing pass; whatever happens, the reader threads and the
        page-locked buffers are shut down and cuDNN's setting and the spectral pooling restored."""
        p, run = self.p, self.run
        # Every batch has the same shape: let cuDNN pick its fastest kernels once (restored afterwards).
        cudnn_benchmark = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = cudnn_benchmark or (p.device.type == "cuda" and CUDNN_AUTOTUNE)
        try:
            with host_memory(p.device):
                self.sweeps.run(self.sweep, after_pass=self.statistics_pass_done, stem_sweep=self.stem_sweep)
        finally:
            if run.io.read_pool is not None:
                run.io.read_pool.shutdown(wait=True, cancel_futures=True)
            if run.io.pool is not None:
                run.io.pool.close()
            torch.backends.cudnn.benchmark = cudnn_benchmark
            p.pool_spectral = True

    def sweep(self, index: int, write: bool) -> None:
        """One pass over all tiles; only the last one writes (the others gather statistics)."""
        run, progress, should_stop = self.run, self.progress, self.should_stop
        self.done = 0
        self.p.pool_spectral = write  # statistics passes keep nothing but the network's statistics
        pending: tuple[int, list[Pending]] | None = None
        these = self.sweeps.batches[index]
        before, work = self.sweeps.progress_span(index)  # progress in pixels computed
        label = self.sweeps.label(index)

        def finish(k: int, items: list[Pending]) -> None:
            for item in items:
                results = run.finish(item)
                t0 = time.perf_counter()
                for r in results:
                    if write:
                        self.write_window(r)
                    self.done += r.window.pixels
                self.write_seconds += time.perf_counter() - t0
            if progress is not None:
                progress(100.0 * (before + self.done) / work, label.format(k))

        prefetch = self.prefetch
        reader = Prefetcher(these, run.io.read, prefetch) if prefetch > 0 else SyncReader(these, run.io.read)
        try:
            for k, (group, (raw, mask)) in enumerate(reader, start=1):
                if should_stop is not None and should_stop():
                    raise Cancelled(f"Classification cancelled after {k - 1} of {len(these)} tile batches.")
                launched = run.compute(group, raw, mask)
                del raw, mask
                if pending is not None:
                    finish(*pending)
                pending = (k, launched)
                if not self.ahead:
                    finish(*pending)
                    pending = None
            if pending is not None:
                finish(*pending)
                pending = None
        finally:
            reader.close()
            self.read_seconds += reader.read_seconds

    def statistics_pass_done(self) -> None:
        """After each statistics pass: only the writing pass's valid pixels are reported."""
        self.run.valid_pixels = 0  # the report counts the valid pixels of the final pass

    def stem_sweep(self, groups: list[list[Tile]]) -> None:
        """The stem alone over ``groups``: its GroupNorm statistics, before the passes (core/prediction/stage_cache.py)."""
        p, should_stop = self.p, self.should_stop
        for k, group in enumerate(groups, start=1):
            if should_stop is not None and should_stop():
                raise Cancelled(f"Classification cancelled after {k - 1} of {len(groups)} tile batches.")
            x, _ = self.run.read_inputs(group)
            with torch.no_grad(), torch.autocast(p.device.type, dtype=torch.bfloat16, enabled=p.amp):
                p.network.stem(x)


def host_memory(device: torch.device) -> contextlib.AbstractContextManager:
    """On the CPU, freed tensors' memory is reused instead of faulted in afresh (core/prediction/host_memory.py)."""
    return reuse_freed_memory() if device.type == "cpu" else contextlib.nullcontext()


def _use_layerwise(p: TilePredictor, layerwise: bool | None, tiles: int, scene_passes: int, height: int, width: int,
                   memory_limit_bytes: int) -> bool:
    """Layer-wise whole-scene prediction (core/prediction/layerwise.py) where it applies and its maps fit the memory setting."""
    if layerwise is False or not layerwise_forward.applies(p.network, p.device, p.amp):
        return False
    if layerwise is None and (tiles <= 1 or scene_passes <= 0):
        return False  # one window is whole-scene prediction already; 0 passes asks for per-window statistics
    need = layerwise_forward.bytes_needed(p.network, height, width, p.num_classes, p.pools_spectral)
    return need + layerwise_forward.MIN_WORK_BYTES <= memory_limit_bytes


def _predict_layerwise(p: TilePredictor, run: _TiledRun, tiles: list[Tile], plan, height: int, width: int,
                       write_window: Callable[[TileResult], None], memory_limit_bytes: int, with_probabilities: bool,
                       progress, should_stop, t_start: float) -> TiledReport:
    """predict_tiled's layer-wise branch: the same cores handed to ``write_window``, the same report."""
    seconds = {"write": 0.0}

    def write(tile: Tile, labels: Tensor, conf: Tensor, valid: Tensor, proba: Tensor | None) -> None:
        t0 = time.perf_counter()
        run.valid_pixels += int(valid.sum())
        write_window(TileResult(window=tile.core, labels=labels.numpy().astype(run.label_dtype),
                                confidence=np.ascontiguousarray(conf.numpy(), dtype=np.float32),
                                probabilities=None if proba is None else np.ascontiguousarray(proba.numpy())))
        seconds["write"] += time.perf_counter() - t0

    with host_memory(p.device):
        done = layerwise_forward.layerwise_predict(p, lambda t: run.read_inputs([t]), height, width, tiles, write,
                                                   memory_limit_bytes=memory_limit_bytes,
                                                   with_probabilities=with_probabilities, progress=progress,
                                                   should_stop=should_stop)
    log.info("Layer-wise whole-scene prediction: %dx%d pixels, ConvLSTM tiles of %d, %.1f s.", height, width,
             done.lstm_tile, done.seconds)
    return TiledReport(height=height, width=width, tiles=len(tiles), tile=plan.tile, halo=plan.halo, batch=1,
                       read_shape=plan.read_shape, device=str(p.device), seconds=time.perf_counter() - t_start,
                       valid_pixels=run.valid_pixels, final_tile=plan.tile, final_batch=1,
                       compute_seconds=done.seconds - seconds["write"], write_seconds=seconds["write"],
                       layerwise=True)


def predict_array_tiled(
    classifier: Any,
    cube: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    tile: int | None = None,
    halo: int | None = None,
    batch: int | None = None,
    memory_limit_bytes: int = 2 << 30,
    with_probabilities: bool = False,
    scene_passes: int = DEFAULT_SCENE_PASSES,
    scene_sample: int = DEFAULT_SCENE_SAMPLE,
    layerwise: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, TiledReport]:
    """Tiled prediction of an in-memory (B, H, W) cube (or np.memmap): labels, confidence, probabilities.

    Convenience for benchmarks and tests; large rasters go through ``predict_tiled`` with a reader.
    """
    cube = np.asarray(cube) if not isinstance(cube, np.memmap) else cube
    if cube.ndim != 3:
        raise ValueError(f"Expected a (bands, height, width) cube, got shape {cube.shape}.")
    _, h, w = cube.shape
    p = TilePredictor.from_classifier(classifier)
    labels = np.zeros((h, w), dtype=smallest_label_dtype(int(max(0, p.classes.max()))))
    conf = np.zeros((h, w), dtype=np.float32)
    proba = np.zeros((p.num_classes, h, w), dtype=np.float32) if with_probabilities else None

    def write(r: TileResult) -> None:
        rs, cs = r.window.slices
        labels[rs, cs] = r.labels
        conf[rs, cs] = r.confidence
        if proba is not None:
            proba[:, rs, cs] = r.probabilities

    valid_fn = None
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        valid_fn = lambda win, raw: valid[win.slices]  # noqa: E731 - tiny closure
    report = predict_tiled(
        p,
        lambda win: cube[:, win.row : win.row + win.height, win.col : win.col + win.width],
        h,
        w,
        write_window=write,
        tile=tile,
        halo=halo,
        batch=batch,
        valid_fn=valid_fn,
        itemsize=cube.dtype.itemsize,
        memory_limit_bytes=memory_limit_bytes,
        with_probabilities=with_probabilities,
        scene_passes=scene_passes,
        scene_sample=scene_sample,
        layerwise=layerwise,
    )
    return labels, conf, proba, report
