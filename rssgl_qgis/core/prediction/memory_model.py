"""Memory budgets of RSSGL: tile size and batch of a tiled prediction, whole-scene training, OOM errors.

Both models are linear in the padded pixel count with a small per-band term, fitted to measurements
(the constants below, docs/PERFORMANCE.md). ``plan_memory`` keeps a tiled run within a host memory
budget and the free GPU memory; ``check_training_fits`` refuses whole-scene training that cannot fit
before the raster is read; ``is_out_of_memory`` tells the engine's OOM fallback which errors a smaller
tile may avoid. Kept apart from the engine (core/prediction/inference.py) because training (workflows/train.py) uses it
too and the numbers change with each new measurement, not with the engine.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from ..errors import RssglError
from .tiling import DEFAULT_HALO, DEFAULT_TILE, PAD_MULTIPLE, round_up

__all__ = [
    "MIN_TILE",
    "TilingPlan",
    "plan_memory",
    "is_out_of_memory",
    "TrainingMemoryEstimate",
    "estimate_training_bytes",
    "check_training_fits",
]

log = logging.getLogger(__name__)

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
        rh = min(round_up(t + 2 * halo, PAD_MULTIPLE), round_up(height, PAD_MULTIPLE))
        rw = min(round_up(t + 2 * halo, PAD_MULTIPLE), round_up(width, PAD_MULTIPLE))
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
    px = round_up(height, PAD_MULTIPLE) * round_up(width, PAD_MULTIPLE)
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
