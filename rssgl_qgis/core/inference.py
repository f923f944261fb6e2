"""Tiled, memory-bounded RSSGL prediction for rasters of any size (pure torch/numpy).

RSSGL is a whole-scene network: it sees the full padded scene at once. An airborne flight line
(thousands x thousands x 200+ bands) does not fit in host or GPU memory, so we cut it into tiles:

* each output *core* tile is predicted from a larger *read* window (core + ``halo`` pixels of
  context on every side, shifted inwards at the raster's edges so every read window has the same
  size); only the core is kept, so neighbouring cores never disagree about who owns a pixel;
* read windows are multiples of 16 pixels (the network downsamples 4 times) unless the raster itself
  is smaller, in which case they are zero-padded bottom/right exactly as whole-scene prediction does;
* equally sized windows are stacked into batches (N > 1) so the GPU stays busy;
* a background thread reads the next batches (``read_window`` releases the GIL in GDAL) while the
  current one runs, through a bounded queue, so host memory stays bounded;
* tile size and batch come from a host memory budget (default 2 GiB) and the free GPU memory; a
  GPU out-of-memory error empties the cache and retries with half the batch, then half the tile.

Tiling is not exactly whole-scene prediction: GroupNorm statistics and the channel attention's
global pooling are computed per window, not over the whole scene. ``benchmarks/bench_seams.py``
measures how much that changes the map for several tile/halo sizes; the defaults below come from
that measurement (docs/PERFORMANCE.md, "Large rasters").

The reader is a plain callable ``read_window(window) -> ndarray (B, h, w)`` in the raster's own
dtype, so the engine runs the same on GDAL rasters (rssgl_qgis.io.blocks), memory maps and arrays.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .ensemble import combine
from .errors import Cancelled, RssglError
from .scene_stats import SceneStatistics

__all__ = [
    "Window",
    "Tile",
    "TilePredictor",
    "TileResult",
    "TiledReport",
    "TilingPlan",
    "DEFAULT_TILE",
    "DEFAULT_HALO",
    "plan_tiles",
    "plan_memory",
    "predict_tiled",
    "predict_array_tiled",
    "is_out_of_memory",
    "TrainingMemoryEstimate",
    "estimate_training_bytes",
    "check_training_fits",
    "smallest_label_dtype",
]

log = logging.getLogger(__name__)

#: The network downsamples 4 times (stride 2): windows are multiples of this.
PAD_MULTIPLE = 16
#: Default core tile and halo in pixels (chosen from benchmarks/bench_seams.py; docs/PERFORMANCE.md).
DEFAULT_TILE = 512
DEFAULT_HALO = 32
#: Let cuDNN time its kernels for the (fixed) batch shape of a tiled run (torch.backends.cudnn.benchmark).
#: Off: on an H200, 4096^2 x 200 with the defaults, the timing cost 2.7-8.6 s in the first run of a
#: process (74-129 Mpixel/min instead of 171) and gained only 3 % in later runs (196 vs 191 Mpixel/min;
#: benchmarks/bench_infer.py --no-autotune, docs/PERFORMANCE.md).
CUDNN_AUTOTUNE = False
#: Threads reading the strips of a batch's windows at once on CUDA (``read_window`` must be thread-safe).
READ_THREADS = 4
#: Passes over the tiles that gather whole-scene normalisation statistics before the final pass
#: (core/scene_stats.py). Measured on a 3x3 mosaic of Salinas-A, 192-px windows (benchmarks/
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
#: Smallest core tile the OOM fallback shrinks to before giving up.
MIN_TILE = 32
#: Peak memory of one RSSGL forward pass (no autograd) per pixel of the padded window, in bytes, with
#: the default architecture (block channels 96..256). Measured on CPU with torch 2.13 (RSS growth of a
#: forward in a fresh process, 204 bands: 16.9 KB/pixel at 64^2 and 128^2, 18.5 KB/pixel at 256^2;
#: ``benchmarks/bench_infer.py --cpu-memory``, docs/PERFORMANCE.md); the band term covers the input
#: copy, the B-channel feature map z and the first conv.
FORWARD_BYTES_PER_PIXEL = 16_500
FORWARD_BYTES_PER_PIXEL_BAND = 10
#: Peak memory of one training iteration (forward + backward + SGD) per padded pixel, per device type:
#: (bytes per pixel, bytes per pixel and band). CUDA: measured on one H100 (torch 2.11, bf16 autocast,
#: RssglClassifier.fit, 200 bands): 1.59 GiB at 256^2 and 6.29 GiB at 512^2, i.e. 25.7 KB/pixel
#: (``benchmarks/bench_infer.py --training-memory-only``). CPU: RSS growth of a float32 forward +
#: backward (torch 2.13, ``--cpu-memory``): 60.8 KB/pixel at 128^2 with 204 bands, 58.0 KB/pixel with
#: 50 bands, i.e. 57 KB + 19 B per band. The CUDA band term (not measured there) reuses the CPU's ratio.
TRAIN_BYTES = {"cuda": (24_000, 9), "cpu": (57_000, 19)}
#: Fixed overhead of a training run (weights, optimizer state, CUDA context / allocator slack).
TRAIN_OVERHEAD_BYTES = 512 << 20


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


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def _axis_plan(size: int, start: int, stop: int, tile: int, halo: int) -> list[tuple[int, int, int, int]]:
    """Cores covering [start, stop) of one axis and their read spans: (core0, core_len, read0, read_len).

    Spans live on the PADDED axis (``size`` rounded up to 16, the zeros whole-scene prediction adds
    at the bottom/right), so a window at the far edge sees exactly the padding the whole-scene
    network saw. Every span has the same length (``tile + 2*halo`` rounded up to 16, at most the
    padded axis); spans are shifted inwards at the edges, which keeps at least ``halo`` pixels of
    context on each side of a core wherever the raster has them.
    """
    padded = _round_up(size, PAD_MULTIPLE)
    span = min(_round_up(tile + 2 * halo, PAD_MULTIPLE), padded)
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


def stats_region(tile: Tile, height: int, width: int) -> tuple[int, int, int, int]:
    """The pixels of ``tile``'s read window whose statistics this tile contributes (r0, r1, c0, c1).

    Its core, extended over the zero padding when the core reaches the bottom/right raster edge:
    whole-scene prediction counts that padding too, and the cores plus the padding cover the padded
    scene exactly once (core/scene_stats.py).
    """
    r0, c0 = tile.core.row - tile.read.row, tile.core.col - tile.read.col
    r1, c1 = r0 + tile.core.height, c0 + tile.core.width
    if tile.core.row + tile.core.height == height:
        r1 = _round_up(height, PAD_MULTIPLE) - tile.read.row
    if tile.core.col + tile.core.width == width:
        c1 = _round_up(width, PAD_MULTIPLE) - tile.read.col
    return r0, r1, c0, c1


def smallest_label_dtype(max_value: int) -> np.dtype:
    """The smallest unsigned integer dtype holding class values up to ``max_value`` (0 = nodata)."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"Class value {max_value} does not fit in 32 bits; use class values below 4294967296.")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a device (or host allocator) out-of-memory error that a smaller tile may avoid."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    if isinstance(exc, MemoryError):  # host allocation of a too large tile (CPU device)
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return "out of memory" in text or "can't allocate memory" in text
    return False


# ---------------------------------------------------------------------------------------------- model
@dataclass
class TilePredictor:
    """What tiled prediction needs from a trained model, in one place.

    ``network`` maps a normalised batch (N, B, h, w) to logits (N, K, h, w) or a tuple whose first
    item is the logits (RSSGL returns (logits, z)). ``band_mean``/``band_std`` are the training
    statistics the raster is normalised with; ``classes`` the original class values (index k ->
    classes[k]).
    """

    network: Callable[[Tensor], Any]
    band_mean: np.ndarray
    band_std: np.ndarray
    classes: np.ndarray
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    amp: bool = False
    wavelengths: Sequence[float] | None = None
    spectral: Any = None  # core.spectral.SpectralModel pooled with the network (core.ensemble.combine)
    blend_weight: float = 1.0
    rssgl_temperature: float = 1.0
    #: False during the statistics passes: their results are dropped, so the spectral model is not evaluated
    pool_spectral: bool = True

    def __post_init__(self) -> None:
        self.band_mean = np.asarray(self.band_mean, dtype=np.float64)
        self.band_std = np.asarray(self.band_std, dtype=np.float64)
        self.classes = np.asarray(self.classes)
        self.device = torch.device(self.device)
        if self.band_mean.shape != self.band_std.shape or self.band_mean.ndim != 1:
            raise ValueError("band_mean and band_std must be 1-D arrays of the same length (one value per band).")
        if self.classes.ndim != 1 or self.classes.size < 2:
            raise ValueError(f"A classifier needs at least 2 class values, got {self.classes.tolist()}.")
        self._mean_t = torch.as_tensor(self.band_mean, dtype=torch.float32, device=self.device)[None, :, None, None]
        self._inv_std_t = (1.0 / torch.as_tensor(self.band_std, dtype=torch.float32, device=self.device))[
            None, :, None, None
        ]
        self._classes_t = torch.as_tensor(self.classes.astype(np.int64), device=self.device)

    @property
    def bands(self) -> int:
        return int(self.band_mean.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.classes.shape[0])

    @classmethod
    def from_classifier(cls, classifier: Any) -> TilePredictor:
        """Wrap a fitted ``RssglClassifier`` (uses its network, device, statistics and AMP setting)."""
        if isinstance(classifier, TilePredictor):
            return classifier
        model = getattr(classifier, "model_", None)
        if model is None:
            raise RuntimeError("The classifier is not trained yet: train it or load a model file before classifying.")
        model.eval()
        device = next(model.parameters()).device
        params = getattr(classifier, "params_", None)
        amp = device.type == "cuda" and getattr(params, "amp", "auto") == "auto"
        band_info = getattr(classifier, "band_info_", None) or {}
        return cls(
            network=model,
            band_mean=classifier.band_mean_,
            band_std=classifier.band_std_,
            classes=classifier.classes_,
            device=device,
            amp=amp,
            wavelengths=band_info.get("wavelengths"),
            spectral=getattr(classifier, "spectral_", None),
            blend_weight=float(getattr(classifier, "blend_weight_", 1.0)),
            rssgl_temperature=float(getattr(classifier, "rssgl_temperature_", 1.0)),
        )

    def normalise(self, raw: Tensor, nodata: Tensor | None, extra_valid: Tensor | None) -> tuple[Tensor, Tensor]:
        """Raw (N, B, h, w) in the raster's dtype, on the device -> (normalised float32, valid (N, h, w)).

        Invalid pixels (NaN/inf or ``nodata`` in any band, or False in ``extra_valid``) become 0 in
        every band after normalisation, the convention the network was trained with.
        """
        x = raw.to(torch.float32)
        valid = torch.isfinite(x).all(dim=1)
        if nodata is not None:
            valid &= ~(x == nodata[None, :, None, None]).any(dim=1)
        if extra_valid is not None:
            valid &= extra_valid
        x = (x - self._mean_t) * self._inv_std_t
        x = torch.where(valid[:, None], x, torch.zeros((), device=x.device))
        return x, valid

    def probabilities(self, x: Tensor) -> Tensor:
        """Softmax (N, K, h, w) float32 of a normalised batch, padded to multiples of 16 internally."""
        h, w = x.shape[-2:]
        ph, pw = _round_up(h, PAD_MULTIPLE) - h, _round_up(w, PAD_MULTIPLE) - w
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.network(x)
        logits = out[0] if isinstance(out, tuple | list) else out
        proba = torch.softmax(logits[:, :, :h, :w].float(), dim=1)
        if self.spectral is None or self.blend_weight >= 1.0 or not self.pool_spectral:
            return combine(proba, None, 1.0, dim=1, temperature=self.rssgl_temperature)
        with torch.no_grad():  # fp32 kernel distances, outside autocast
            return combine(proba, self.spectral.probabilities_map(x[:, :, :h, :w]), self.blend_weight, dim=1,
                           temperature=self.rssgl_temperature)


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
class TilingPlan:
    """Tile size, halo and batch chosen for a run, with the memory estimate that justified them."""

    tile: int
    halo: int
    batch: int
    read_shape: tuple[int, int]
    host_bytes: int
    device_bytes: int
    prefetch: int


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
    scene_passes: int = 0  # statistics passes run before the writing pass (core/scene_stats.py)
    scene_pass_tiles: int = 0  # tiles each statistics pass looked at (fewer than ``tiles`` when sampled)

    @property
    def mpixels_per_minute(self) -> float:
        return self.height * self.width / 1e6 / max(self.seconds, 1e-9) * 60.0


def _forward_bytes(pixels: int, bands: int) -> int:
    return pixels * (FORWARD_BYTES_PER_PIXEL + FORWARD_BYTES_PER_PIXEL_BAND * bands)


def _free_device_bytes(device: torch.device) -> int | None:
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info(device)
    # memory torch's caching allocator holds but does not use is free for us too
    cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return int(free + max(0, cached))


def plan_memory(
    bands: int,
    classes: int,
    height: int,
    width: int,
    *,
    itemsize: int = 4,
    device: torch.device | str = "cpu",
    memory_limit_bytes: int = 2 << 30,
    tile: int | None = None,
    halo: int | None = None,
    batch: int | None = None,
    with_probabilities: bool = False,
    prefetch: int = 2,
    device_free_bytes: int | None = None,
) -> TilingPlan:
    """Choose tile size and batch so the run stays within ``memory_limit_bytes`` of host memory.

    Host memory of a run = raw windows in flight ((prefetch + 2) batches: queued, being read, being
    computed; on CUDA one more, the batch whose results are still being copied back) + (on the CPU)
    their float32 copy and the network's activations + results of one batch. On CUDA the float copy
    and the activations live on the GPU: the batch is chosen from the free GPU memory instead (at most
    16 tiles); the OOM fallback in ``predict_tiled`` catches a wrong guess.
    ``tile``/``batch`` given by the caller are kept when they fit and reduced otherwise (logged).
    """
    device = torch.device(device)
    halo = DEFAULT_HALO if halo is None else int(halo)
    want_tile = DEFAULT_TILE if tile is None else int(tile)
    if want_tile < 1 or halo < 0:
        raise ValueError(f"The tile size must be >= 1 and the halo >= 0 pixels, got tile={want_tile}, halo={halo}.")
    if memory_limit_bytes < (64 << 20):
        raise ValueError(
            f"The memory limit {memory_limit_bytes / 2**20:.0f} MiB is too small for RSSGL; allow at least 64 MiB."
        )
    on_cpu = device.type != "cuda"
    budget = int(memory_limit_bytes * 0.85)  # torch/GDAL bookkeeping and fragmentation

    def host_bytes(t: int, n: int) -> tuple[int, tuple[int, int]]:
        rh = min(_round_up(t + 2 * halo, PAD_MULTIPLE), _round_up(height, PAD_MULTIPLE))
        rw = min(_round_up(t + 2 * halo, PAD_MULTIPLE), _round_up(width, PAD_MULTIPLE))
        px = rh * rw
        raw = bands * rh * rw * itemsize
        if on_cpu:
            per_tile = raw * (prefetch + 2) + bands * px * 4 + _forward_bytes(px, bands) + classes * px * 4
        else:  # raw batches only (pinned); normalisation and the network run on the device
            per_tile = raw * (prefetch + 3)
        core = min(t, height) * min(t, width)
        per_tile += core * (5 + (classes * 4 if with_probabilities else 0))
        return per_tile * n, (rh, rw)

    t = want_tile
    n = 1 if batch is None else max(1, int(batch))
    while True:
        need, read_shape = host_bytes(t, n)
        if need <= budget:
            break
        if n > 1:
            n = max(1, n // 2)
        elif t > MIN_TILE:
            t = max(MIN_TILE, t // 2)
        else:
            raise RssglError(
                f"Classifying {bands}-band tiles needs about {need / 2**20:.0f} MiB of memory even with "
                f"{t}-pixel tiles, more than the {memory_limit_bytes / 2**20:.0f} MiB allowed; raise the memory limit."
            )
    if t != want_tile:
        log.info("Tile size reduced from %d to %d pixels to stay within %.1f GiB.", want_tile, t, budget / 2**30)
    device_bytes = 0
    if not on_cpu:
        px = read_shape[0] * read_shape[1]
        per_tile_dev = _forward_bytes(px, bands) + bands * px * 6 + classes * px * 8
        free = device_free_bytes if device_free_bytes is not None else _free_device_bytes(device)
        if batch is None:
            fit = int(0.7 * free) // per_tile_dev if free else 1
            per_host_tile = max(1, host_bytes(t, 1)[0])
            n = int(max(1, min(16, fit, budget // per_host_tile)))
        device_bytes = per_tile_dev * n
    need, read_shape = host_bytes(t, n)
    return TilingPlan(
        tile=t, halo=halo, batch=n, read_shape=read_shape, host_bytes=need, device_bytes=device_bytes, prefetch=prefetch
    )


# ---------------------------------------------------------------------------------------------- reading
_DONE = object()


class _Prefetcher:
    """Reads batches of tiles in a background thread into a bounded queue (overlaps I/O with compute).

    Exceptions raised by the reader are handed to the consumer and re-raised there; ``close()``
    stops the thread promptly (it never blocks forever on a full queue).
    """

    def __init__(self, batches: list[list[Tile]], read: Callable[[list[Tile]], Any], depth: int):
        self._batches = batches
        self._read = read
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self.read_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="rssgl-tile-reader", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for batch in self._batches:
                if self._stop.is_set():
                    return
                t0 = time.perf_counter()
                item = (batch, self._read(batch))
                self.read_seconds += time.perf_counter() - t0
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            self._put(exc)

    def __iter__(self) -> Iterator[tuple[list[Tile], Any]]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock a reader waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=30)


class _SyncReader:
    """Reads each batch in the calling thread (``prefetch=0``): the naive baseline of the benchmarks."""

    def __init__(self, batches: list[list[Tile]], read: Callable[[list[Tile]], Any]):
        self._batches, self._read = batches, read
        self.read_seconds = 0.0

    def __iter__(self) -> Iterator[tuple[list[Tile], Any]]:
        for batch in self._batches:
            t0 = time.perf_counter()
            item = self._read(batch)
            self.read_seconds += time.perf_counter() - t0
            yield batch, item

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------- engine
class _PinnedBatch:
    """A raw batch or mask (N, ...) in page-locked host memory from a ``_PinnedPool``.

    ``recycle``: this is the whole pool buffer (a slice is never handed back on its own).
    """

    __slots__ = ("array", "recycle")

    def __init__(self, array: np.ndarray, recycle: bool = True):
        self.array = array
        self.recycle = recycle

    def __getitem__(self, index: Any) -> _PinnedBatch:
        return _PinnedBatch(self.array[index], False)


class _PinnedPool:
    """Page-locked host buffers (numpy arrays registered with CUDA), reused batch after batch.

    Copies from page-locked memory to the GPU run asynchronously; pageable memory would be staged
    by the main thread. torch's own page-locked allocator rounds blocks up to a power of two (up to
    twice a batch's host memory); these buffers have the exact size. Thread-safe: the reader thread
    takes, the main thread gives back once the batch's copy to the GPU has certainly run.
    """

    #: dtypes the device copy handles from a buffer (uint16 travels as int16 bits, see _to_device)
    DTYPES = frozenset(np.dtype(t) for t in (np.bool_, np.uint8, np.int8, np.int16, np.uint16, np.int32,
                                             np.int64, np.float16, np.float32, np.float64))

    def __init__(self, device: torch.device):
        self.device = device
        self.enabled = True
        self._lock = threading.Lock()
        self._free: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
        self._registered: list[np.ndarray] = []

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
        """A page-locked (shape, dtype) array (contents undefined), or None: use pageable memory."""
        dtype = np.dtype(dtype)
        if dtype not in self.DTYPES:
            return None
        with self._lock:
            free = self._free.get((tuple(shape), dtype.str))
            if free:
                return free.pop()
            if not self.enabled:
                return None
        array = np.empty(shape, dtype=dtype)
        try:
            with torch.cuda.device(self.device):
                # flag 1 = cudaHostRegisterPortable: page-locked for every CUDA context
                err = int(torch.cuda.cudart().cudaHostRegister(array.ctypes.data, max(1, array.nbytes), 1))
        except Exception as exc:  # noqa: BLE001 - an optimisation: fall back to pageable memory
            err, why = -1, str(exc)
        else:
            why = f"cudaError {err}"
        if err != 0:
            log.info("Page-locked host memory unavailable (%s); copying through pageable memory.", why)
            self.enabled = False
            return None
        with self._lock:
            self._registered.append(array)
        return array

    def give(self, array: np.ndarray) -> None:
        with self._lock:
            free = self._free.setdefault((array.shape, array.dtype.str), [])
            if not any(a is array for a in free):
                free.append(array)

    def close(self) -> None:
        """Unregister every buffer (after the device has finished any copy that reads one)."""
        with self._lock:
            arrays, self._registered, self._free = self._registered, [], {}
        if not arrays:
            return
        torch.cuda.synchronize(self.device)
        for array in arrays:
            try:
                torch.cuda.cudart().cudaHostUnregister(array.ctypes.data)
            except Exception:  # noqa: BLE001 - the memory is freed with the array anyway
                pass


@dataclass
class _Pending:
    """One forward pass whose results may still be on their way to the host (CUDA: until ``event``)."""

    tiles: list[Tile]
    labels: Tensor
    confidence: Tensor
    valid: Tensor
    probabilities: Tensor | None
    event: Any = None  # torch.cuda.Event recorded after the device-to-host copies
    release: list[Any] = field(default_factory=list)  # page-locked input buffers to recycle once done


class _TiledRun:
    """State of one ``predict_tiled`` call (current tile/batch after OOM fallbacks, counters)."""

    def __init__(self, predictor, read_window, valid_fn, nodata, height, width, halo, with_probabilities):
        self.p: TilePredictor = predictor
        self.read_window = read_window
        self.valid_fn = valid_fn
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
        # CUDA: page-locked batch buffers and asynchronous copies both ways (see predict_tiled)
        self.pin = predictor.device.type == "cuda" and torch.cuda.is_available()
        self.pool = _PinnedPool(predictor.device) if self.pin else None
        self.raw_dtype: np.dtype | None = None
        self.read_threads = READ_THREADS
        self.read_pool: ThreadPoolExecutor | None = None  # set by predict_tiled on CUDA

    def read(self, tiles: list[Tile]) -> tuple[np.ndarray | _PinnedBatch, np.ndarray | _PinnedBatch | None]:
        """Raw data (N, B, h, w) in the raster's dtype and a valid mask (N, h, w) or None.

        Only the part of a read window inside the raster is read; the rest (the bottom/right zero
        padding) is filled with zeros and marked invalid, so it becomes 0 after normalisation.
        The windows are copied straight into one batch buffer; on CUDA that buffer is page-locked
        (a ``_PinnedBatch`` from the run's pool), so the transfer to the GPU is asynchronous, and
        the windows are read as horizontal strips by ``read_threads`` threads at once (one thread
        reading 200-band windows is slower than the GPU classifies them).
        """
        n = len(tiles)
        rh, rw = tiles[0].read.height, tiles[0].read.width
        need_mask = self.valid_fn is not None or any(
            t.read.row + t.read.height > self.height or t.read.col + t.read.width > self.width for t in tiles
        )
        jobs: list[tuple[int, Window]] = []
        insides = []
        for i, t in enumerate(tiles):
            if (t.read.height, t.read.width) != (rh, rw):
                raise RuntimeError("Tiles of one batch must share the read shape; please report this bug.")
            inside = Window(
                t.read.row,
                t.read.col,
                min(t.read.height, self.height - t.read.row),
                min(t.read.width, self.width - t.read.col),
            )
            insides.append(inside)
            strips = 1
            if self.read_pool is not None:
                strips = max(1, min(-(-self.read_threads // n), inside.height // 64))
            bounds = np.linspace(0, inside.height, strips + 1).round().astype(int)
            for r0, r1 in zip(bounds[:-1], bounds[1:], strict=True):
                jobs.append((i, Window(inside.row + int(r0), inside.col, int(r1 - r0), inside.width)))

        def fetch(window: Window) -> np.ndarray:
            raw = np.asarray(self.read_window(window))
            if raw.ndim == 2:
                raw = raw[None]
            if raw.shape != (self.p.bands, window.height, window.width):
                raise ValueError(
                    f"read_window returned shape {raw.shape} for window {tuple(window)}; expected "
                    f"({self.p.bands}, {window.height}, {window.width})."
                )
            return raw

        first = None
        if self.raw_dtype is None:  # the first block tells the raster's dtype
            first = fetch(jobs[0][1])
            self.raw_dtype = first.dtype
        batch, out = self._buffer((n, self.p.bands, rh, rw), self.raw_dtype)
        mask_batch, masks = self._buffer((n, rh, rw), np.dtype(bool)) if need_mask else (None, None)
        if masks is not None:
            masks[...] = True
        for i, (t, inside) in enumerate(zip(tiles, insides, strict=True)):
            if inside != t.read:
                out[i] = 0
                masks[i, inside.height :, :] = False
                masks[i, :, inside.width :] = False

        def place(i: int, window: Window, raw: np.ndarray) -> None:
            if raw.dtype != out.dtype and not np.can_cast(raw.dtype, out.dtype, "safe"):
                raise ValueError(
                    f"read_window returned {raw.dtype} data after {out.dtype} blocks; a raster has one data type."
                )
            r0, c0 = window.row - tiles[i].read.row, window.col - tiles[i].read.col
            out[i, :, r0 : r0 + window.height, c0 : c0 + window.width] = raw
            if self.valid_fn is not None:
                masks[i, r0 : r0 + window.height, c0 : c0 + window.width] = np.asarray(
                    self.valid_fn(window, raw), dtype=bool
                )

        rest = jobs
        if first is not None:
            place(*jobs[0], first)
            rest = jobs[1:]
        if self.read_pool is not None and len(rest) > 1:
            futures = [self.read_pool.submit(lambda j: place(j[0], j[1], fetch(j[1])), job) for job in rest]
            for future in futures:
                future.result()  # re-raises a reader's error here
        else:
            for i, window in rest:
                place(i, window, fetch(window))
        return batch, mask_batch

    def _buffer(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray | _PinnedBatch, np.ndarray]:
        """(batch, writable array): page-locked from the pool on CUDA when possible, else plain numpy."""
        array = self.pool.take(shape, dtype) if self.pool is not None else None
        if array is not None:
            return _PinnedBatch(array), array
        array = np.empty(shape, dtype=dtype)
        return array, array

    def _to_device(
        self, raw: np.ndarray | _PinnedBatch, mask: np.ndarray | _PinnedBatch | None
    ) -> tuple[Tensor, Tensor | None]:
        """Move the raw batch to the device in its own dtype (half the bytes of float32 for int16).

        Page-locked batches are copied asynchronously: the caller keeps them (``_Pending.release``)
        until an event recorded later on the stream has completed.
        """
        return self._tensor(raw), None if mask is None else self._tensor(mask)

    def _tensor(self, a: np.ndarray | _PinnedBatch) -> Tensor:
        dev = self.p.device
        non_blocking = isinstance(a, _PinnedBatch)
        arr = a.array if non_blocking else np.ascontiguousarray(a)
        if arr.dtype == np.uint16:  # torch lacks uint16 arithmetic on older versions: reinterpret, widen there
            return torch.from_numpy(arr.view(np.int16)).to(dev, non_blocking=non_blocking).to(torch.int32) & 0xFFFF
        if arr.dtype == np.uint32:
            return torch.from_numpy(arr.astype(np.int64)).to(dev)
        return torch.from_numpy(arr).to(dev, non_blocking=non_blocking)

    def _needs_replan(self, tile: Tile) -> bool:
        """After an OOM shrank the tile size, windows of the old plan (edge tiles too) are re-planned."""
        if not self.tile_reduced:
            return False
        span = _round_up(self.tile + 2 * self.halo, PAD_MULTIPLE)
        return tile.read.height > min(span, _round_up(self.height, PAD_MULTIPLE)) or tile.read.width > min(
            span, _round_up(self.width, PAD_MULTIPLE)
        )

    def compute(self, tiles: list[Tile], raw: Any, mask: Any) -> list[_Pending]:
        """Launch one batch (``finish`` gives the results); on out-of-memory retry with half the batch,
        then with half-size tiles. The batch's page-locked buffers return to the pool once the last
        forward launched here is finished (every earlier one ran before it on the same stream)."""
        out = self._compute(tiles, raw, mask)
        if out:
            out[-1].release += [b for b in (raw, mask) if isinstance(b, _PinnedBatch) and b.recycle]
        return out

    def _compute(self, tiles: list[Tile], raw: Any, mask: Any) -> list[_Pending]:
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

    def _split_tiles(self, tiles: list[Tile]) -> list[_Pending]:
        """Re-plan each tile's core with the current (reduced) tile size; sub-windows are read again."""
        out = []
        for t in tiles:
            subs = plan_tiles(self.height, self.width, self.tile, self.halo, region=t.core)
            for i in range(0, len(subs), self.max_batch):
                group = subs[i : i + self.max_batch]
                raw, mask = self.read(group)
                out += self.compute(group, raw, mask)
        return out

    def _forward(self, tiles: list[Tile], raw: Any, mask: Any) -> list[_Pending]:
        t0 = time.perf_counter()
        x_raw, m = self._to_device(raw, mask)
        x, valid = self.p.normalise(x_raw, self.nodata_t, m)
        del x_raw
        if self.scene_stats is not None:
            self.scene_stats.set_regions([stats_region(t, self.height, self.width) for t in tiles], x.shape[-2:])
        proba = self.p.probabilities(x)
        del x
        conf, idx = proba.max(dim=1)
        labels = self.p._classes_t[idx]
        labels = torch.where(valid, labels, torch.zeros((), dtype=labels.dtype, device=labels.device))
        conf = torch.where(valid, conf, torch.full((), -1.0, device=conf.device))
        if self.with_probabilities:
            proba = torch.where(valid[:, None], proba, torch.full((), -1.0, device=proba.device))
        else:
            proba = None
        outs = [labels, conf, valid, proba]
        event = None
        if self.pin:
            # copy into page-locked host buffers without waiting: the host reads them in finish(),
            # after the next batch is queued, so the GPU never idles while the host writes results
            outs = [None if t is None else _to_host_async(t) for t in outs]
            event = torch.cuda.Event()
            event.record()
        self.compute_seconds += time.perf_counter() - t0
        return [_Pending(tiles, *outs, event=event)]

    def finish(self, pending: _Pending) -> list[TileResult]:
        """Wait for a launched batch and cut its cores out (host numpy arrays)."""
        t0 = time.perf_counter()
        if pending.event is not None:
            pending.event.synchronize()
        for buffer in pending.release:
            self.pool.give(buffer.array)
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


def _to_host_async(t: Tensor) -> Tensor:
    """Start copying a CUDA tensor into a new page-locked host tensor; valid once the stream gets there."""
    host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    host.copy_(t, non_blocking=True)
    return host


def statistics_tiles(tiles: list[Tile], tile: int, pass_index: int, sample: int) -> list[Tile]:
    """The tiles a statistics pass looks at: those on a diagonal lattice of the tile grid, every
    ``sample``-th tile of each grid row and column, shifted by the pass index; all tiles when that
    leaves fewer than MIN_SAMPLED_TILES (small rasters) or ``sample`` <= 1."""
    if sample <= 1 or len(tiles) < sample * MIN_SAMPLED_TILES:
        return tiles
    return [t for t in tiles if (t.core.row // tile + t.core.col // tile + pass_index) % sample == 0]


def _batches(tiles: list[Tile], batch: int) -> list[list[Tile]]:
    """Group tiles into batches of equal read shape (all tiles of one plan share it)."""
    groups: dict[tuple[int, int], list[Tile]] = {}
    for t in tiles:
        groups.setdefault((t.read.height, t.read.width), []).append(t)
    out = []
    for group in groups.values():
        out += [group[i : i + batch] for i in range(0, len(group), batch)]
    return out


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
) -> TiledReport:
    """Classify a ``height`` x ``width`` raster tile by tile and hand each core's result to ``write_window``.

    ``scene_passes``: when the raster needs more than one window, this many extra passes over the
    tiles gather whole-scene GroupNorm/attention statistics (core/scene_stats.py) that the final pass
    uses, so tiles agree with whole-scene prediction instead of each normalising itself (0 = each
    window its own statistics: fastest, visible tile seams). On rasters of many tiles each
    statistics pass looks at every ``scene_sample``-th tile only (``statistics_tiles``; 1 = all).

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
        run.pin, run.pool = False, None
    elif run.pin:
        run.read_pool = ThreadPoolExecutor(max_workers=run.read_threads, thread_name_prefix="rssgl-tile-read")
    run.max_batch = plan.batch
    run.tile = plan.tile
    batches = _batches(tiles, plan.batch)
    log.info(
        "Tiled prediction: %dx%d pixels, %d tiles of %d (+%d halo, read %dx%d), batch %d on %s.",
        height, width, len(tiles), plan.tile, plan.halo, *plan.read_shape, plan.batch, p.device,
    )
    done = 0
    write_seconds = 0.0
    if should_stop is not None and should_stop():
        raise Cancelled("Classification cancelled before the first tile.")
    passes = scene_passes if len(tiles) > 1 and isinstance(p.network, torch.nn.Module) else 0
    stats = SceneStatistics() if passes > 0 else None
    run.scene_stats = stats
    # the tile batches of each sweep: a spread sample of the tiles for statistics, all tiles for the last
    sweep_batches = [_batches(statistics_tiles(tiles, plan.tile, i, scene_sample), plan.batch)
                     for i in range(passes)] + [batches]
    sweep_pixels = [float(sum(t.core.pixels for b in bs for t in b)) for bs in sweep_batches]
    sweeps = passes + 1
    # Every batch has the same shape: let cuDNN pick its fastest kernels once (restored afterwards).
    cudnn_benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = cudnn_benchmark or (p.device.type == "cuda" and CUDNN_AUTOTUNE)
    # On CUDA the loop runs one batch ahead: batch k is queued on the GPU before the results of batch
    # k-1 are waited for and written, so the host's work (copy-out, cropping, writing, the next
    # batch's transfer) overlaps the network instead of leaving the GPU idle between batches.
    ahead = run.pin
    read_seconds = 0.0

    def sweep(index: int, write: bool) -> None:
        """One pass over all tiles; only the last one writes (the others gather statistics)."""
        nonlocal done, write_seconds, read_seconds
        done = 0
        p.pool_spectral = write  # statistics passes keep nothing but the network's statistics
        pending: tuple[int, list[_Pending]] | None = None
        these = sweep_batches[index]
        before, work = sum(sweep_pixels[:index]), sum(sweep_pixels)  # progress in pixels computed
        label = f"Tile batch {{}} of {len(these)}" if sweeps == 1 else (
            f"Whole-scene statistics, pass {index + 1} of {passes}: tile batch {{}} of {len(these)}" if not write
            else f"Classifying with whole-scene statistics: tile batch {{}} of {len(these)}")

        def finish(k: int, items: list[_Pending]) -> None:
            nonlocal done, write_seconds
            for item in items:
                results = run.finish(item)
                t0 = time.perf_counter()
                for r in results:
                    if write:
                        write_window(r)
                    done += r.window.pixels
                write_seconds += time.perf_counter() - t0
            if progress is not None:
                progress(100.0 * (before + done) / work, label.format(k))

        reader = _Prefetcher(these, run.read, prefetch) if prefetch > 0 else _SyncReader(these, run.read)
        try:
            for k, (group, (raw, mask)) in enumerate(reader, start=1):
                if should_stop is not None and should_stop():
                    raise Cancelled(f"Classification cancelled after {k - 1} of {len(these)} tile batches.")
                launched = run.compute(group, raw, mask)
                del raw, mask
                if pending is not None:
                    finish(*pending)
                pending = (k, launched)
                if not ahead:
                    finish(*pending)
                    pending = None
            if pending is not None:
                finish(*pending)
                pending = None
        finally:
            reader.close()
            read_seconds += reader.read_seconds

    try:
        with stats.attached(p.network) if stats is not None else contextlib.nullcontext():
            for index in range(passes):
                stats.start_pass()
                sweep(index, write=False)
                stats.end_pass()
                run.valid_pixels = 0
            sweep(passes, write=True)
    finally:
        if run.read_pool is not None:
            run.read_pool.shutdown(wait=True, cancel_futures=True)
        if run.pool is not None:
            run.pool.close()
        torch.backends.cudnn.benchmark = cudnn_benchmark
        p.pool_spectral = True
    if done != height * width:  # every pixel exactly once: a planning bug must never go unnoticed
        raise RuntimeError(f"Tiled prediction wrote {done} pixels of {height * width}; please report this bug.")
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
        read_seconds=read_seconds,
        compute_seconds=run.compute_seconds,
        scene_passes=passes,
        scene_pass_tiles=sum(len(b) for b in sweep_batches[0]) if passes else 0,
        write_seconds=write_seconds,
    )


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
    )
    return labels, conf, proba, report


# ---------------------------------------------------------------------------------------------- training memory
@dataclass
class TrainingMemoryEstimate:
    """Estimated peak memory of whole-scene training and what the device offers."""

    bands: int
    height: int
    width: int
    device: str
    estimated_bytes: int
    available_bytes: int | None
    max_pixels: int | None

    @property
    def fits(self) -> bool:
        return self.available_bytes is None or self.estimated_bytes <= self.available_bytes


def _train_per_pixel(bands: int, device_type: str) -> int:
    per_px, per_band = TRAIN_BYTES["cuda" if device_type == "cuda" else "cpu"]
    return per_px + per_band * bands


def estimate_training_bytes(bands: int, height: int, width: int, device: torch.device | str = "cuda") -> int:
    """Peak memory (bytes) of RSSGL training on the whole padded scene on ``device``.

    A linear model in the padded pixel count with a small per-band term, fitted to measurements
    (``TRAIN_BYTES``; docs/PERFORMANCE.md). RSSGL trains on the whole scene at once, so memory
    grows with the scene, not with the number of samples.
    """
    px = _round_up(height, PAD_MULTIPLE) * _round_up(width, PAD_MULTIPLE)
    return TRAIN_OVERHEAD_BYTES + px * _train_per_pixel(bands, torch.device(device).type)


def _available_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return None
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.9)
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 * 8 // 10
    except OSError:  # not Linux: no reliable figure, do not refuse
        return None
    return None


def check_training_fits(
    bands: int, height: int, width: int, device: torch.device | str = "cpu", available_bytes: int | None = None
) -> TrainingMemoryEstimate:
    """Refuse (RssglError) whole-scene training that would not fit in the device's memory.

    Decision (docs/PERFORMANCE.md): RSSGL's "global learning" trains on the whole scene at once;
    training on tiles around the samples would change the method (GroupNorm and attention statistics
    over a crop, no context beyond it), so above the device's capacity we refuse with a clear message
    and ask the user to clip the raster to the area of the samples. The trained model then classifies
    the full raster tile by tile. Returns the estimate when it fits.
    """
    device = torch.device(device)
    need = estimate_training_bytes(bands, height, width, device)
    avail = _available_bytes(device) if available_bytes is None else int(available_bytes)
    per_px = _train_per_pixel(bands, device.type)
    max_px = None if avail is None else max(0, (avail - TRAIN_OVERHEAD_BYTES) // per_px)
    est = TrainingMemoryEstimate(bands, height, width, str(device), need, avail, max_px)
    if not est.fits:
        side = int(math.sqrt(max_px or 0))
        where = "GPU" if device.type == "cuda" else "computer"
        raise RssglError(
            f"Training RSSGL on the whole {width}x{height}-pixel, {bands}-band raster needs about "
            f"{need / 2**30:.1f} GiB of memory, but the {where} has about {avail / 2**30:.1f} GiB available. "
            f"RSSGL learns from the whole scene at once, so clip the raster to the area around your training "
            f"samples (at most about {(max_px or 0) / 1e6:.2f} megapixels, e.g. {side}x{side}) and train on that; "
            "the trained model can then classify the full raster (it is processed tile by tile)."
        )
    return est
