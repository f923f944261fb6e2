"""Shared pieces of the benchmarks: the benchmark shapes, random problems, timers, FLOP counts.

Timing rules (see /work/.library/device/METHOD.md): warm up first, then time each iteration with
CUDA events (or ``perf_counter`` on the CPU) and report the median; reset the peak-memory counter
before building each variant so every variant's peak is its own.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Shape", "SHAPES", "Problem", "make_problem", "time_iterations", "reset_peak", "peak_gib", "count_flops"]


@dataclass(frozen=True)
class Shape:
    """A benchmark scene: padded input size, class count, ConvLSTM kernel, training pixels per class."""

    key: str
    name: str
    bands: int
    height: int  # padded (multiple of 16)
    width: int
    scene_height: int  # original scene, where labels live
    scene_width: int
    classes: int
    kernel: tuple[int, int, int]
    stat_weight: float
    train_counts: tuple[int, ...]  # the paper's per-class training pixel counts (REFERENCE.md)


SHAPES: dict[str, Shape] = {
    "ip": Shape("ip", "Indian Pines", 200, 160, 160, 145, 145, 16, (3, 3, 3), 0.0009,
                (5, 72, 42, 12, 25, 37, 5, 24, 5, 49, 123, 30, 11, 64, 20, 5)),
    "sa": Shape("sa", "Salinas", 204, 512, 224, 512, 217, 16, (3, 5, 5), 0.001,
                (21, 38, 20, 14, 27, 40, 36, 113, 63, 33, 11, 20, 10, 11, 73, 19)),
    "pu": Shape("pu", "Pavia University", 103, 624, 352, 610, 340, 9, (3, 5, 5), 0.005,
                (67, 187, 21, 31, 14, 51, 14, 37, 10)),
    "salinas_a": Shape("salinas_a", "Salinas-A", 204, 96, 96, 83, 86, 6, (3, 5, 5), 0.001,
                       (5, 14, 7, 16, 7, 8)),
}


@dataclass
class Problem:
    """Random data of a shape: cube (1,B,H,W) on the device, labels 1..K (0 = none), training pixels."""

    cube: torch.Tensor
    labels: np.ndarray  # (H, W) int64, values 1..K inside the scene, 0 in the padding
    train_indicator: np.ndarray  # (H, W) int64 0/1: the training pixels (paper counts per class)
    train_index_labels: torch.Tensor  # (H, W) long on device: class index 0..K-1 at training pixels, -1 else


def make_problem(shape: Shape, device: torch.device, seed: int = 0) -> Problem:
    """Random cube (standard normal, never zeros) and a random dense label map with the paper's training counts."""
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    cube = torch.randn(1, shape.bands, shape.height, shape.width, generator=g).to(device)
    labels = np.zeros((shape.height, shape.width), dtype=np.int64)
    labels[: shape.scene_height, : shape.scene_width] = rng.integers(
        1, shape.classes + 1, size=(shape.scene_height, shape.scene_width)
    )
    train = np.zeros_like(labels)
    for k, n in enumerate(shape.train_counts, start=1):
        inds = np.flatnonzero(labels == k)
        train.flat[rng.choice(inds, size=n, replace=False)] = 1
    tidx = np.where(train == 1, labels - 1, -1)
    return Problem(cube, labels, train, torch.from_numpy(tidx).to(device))


def time_iterations(fn: Callable[[], object], iters: int, warmup: int, device: torch.device) -> list[float]:
    """Milliseconds of each of ``iters`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(device)
        return [s.elapsed_time(e) for s, e in events]
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float:
    if device.type != "cuda":
        return math.nan
    return torch.cuda.max_memory_allocated(device) / 2**30


def count_flops(shape: Shape, block_channels=(96, 128, 192, 256), hidden=(4, 4), inner=128) -> dict[str, float]:
    """Useful multiply-add FLOPs (x2) of one forward pass, split into ConvLSTM and 2-D conv work.

    Counts what the math needs (zero initial state: the h-conv of step 0 is skipped), not what an
    implementation launches. One training iteration is about 3x the forward (backward = 2x).
    """
    kd, kh, kw = shape.kernel
    taps = kd * kh * kw
    h, w = shape.height, shape.width
    lstm = 0.0
    conv2d = 2.0 * h * w * shape.bands * block_channels[0] * 9  # stem
    for s, c in enumerate(block_channels):
        hs, ws = h >> s, w >> s
        if s:
            conv2d += 2.0 * hs * ws * block_channels[s - 1] * c * 9  # downsample (stride 2: output size)
        depth = c // 8
        vox = depth * hs * ws
        cin = 1
        for hid in hidden:
            lstm += 2.0 * vox * 8 * cin * 4 * hid * taps  # x-convs of all 8 steps
            lstm += 2.0 * vox * 7 * hid * 4 * hid * taps  # h-convs of steps 1..7
            cin = hid
        conv2d += 2.0 * hs * ws * 2 * 49  # spatial attention 7x7, 2 -> 1 (channel attention: pooled, negligible)
        conv2d += 2.0 * hs * ws * c * inner  # lateral 1x1
        conv2d += 2.0 * hs * ws * inner * (inner if s else shape.bands) * 9  # fuse 3x3 (last one: -> B)
    conv2d += 2.0 * h * w * shape.bands * shape.classes
    return {"lstm_fwd": lstm, "conv2d_fwd": conv2d, "fwd": lstm + conv2d, "train_iter": 3 * (lstm + conv2d)}
