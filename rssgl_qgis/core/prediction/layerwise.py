"""RSSGL's whole-scene forward pass computed layer by layer, each layer over overlapping tiles (the CPU path).

Why: seam-free tiled classification (core/prediction/statistics_passes.py) runs every read window through the
whole network once per statistics pass and once more to classify, and every window recomputes a
halo around its core (128-px cores in 192-px windows on the CPU: 2.25x the pixels). On a CPU that
made a 1024 x 1024 x 200 raster take 89 s, and the map still differed from whole-scene prediction
in 1 % of the pixels (issue 15, docs/PERFORMANCE.md). Here the network is evaluated one layer at a
time over the whole (padded) scene, keeping each layer's output map in host memory:

* a local layer (a convolution, the ConvLSTM, the spatial attention) is computed tile by tile over
  its input map, each tile read with a halo at least as wide as that layer's receptive field, so
  the core it keeps is exactly what the layer gives on the whole map (the ConvLSTM's 2 x 8 chained
  5 x 5 convolutions reach 18 pixels: its halo is 24, ``lstm_halo``);
* a layer that needs the whole map (GroupNorm, the channel attention's pooled vectors) gets its
  statistics from the finished input map, as whole-scene prediction computes them.

So the result is whole-scene prediction itself, up to floating-point summation order, with every
pixel of every layer computed once plus thin halos; nothing is swept twice. It needs the layer maps
of the scene in memory (``bytes_needed``, about 1.1 KB per pixel), so it is used only when they fit
the memory setting; larger rasters are classified in read windows with statistics passes as before.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import Cancelled
from ..network.model import RSSGL, TIME_STEPS
from .host_memory import HEAP_BLOCK_LIMIT
from .scene_tensors import pad_hw
from .tiling import Tile, plan_tiles, round_up

__all__ = ["applies", "bytes_needed", "layerwise_predict", "lstm_halo", "MIN_WORK_BYTES", "LayerwiseReport"]



def lstm_halo(lstm: nn.Module) -> int:
    """Halo of the ConvLSTM tiles: the cells' output at a pixel depends on input pixels up to
    r x (steps + cells - 1) away (r = the kernel's spatial radius: each step's recurrent conv and each
    cell's input conv add r), 18 for the default 5x5 kernel; rounded up past it to a multiple of 8
    (24), which tests/engine/test_layerwise.py checks reproduces the whole map with 16-px tiles."""
    radius = max(max(conv.kernel_size[1:]) // 2 for conv in lstm.x_convs)
    return round_up(radius * (TIME_STEPS + len(lstm.x_convs) - 1) + 1, 8)

#: Host bytes of ``ConvLSTM3d.forward_lean``'s working memory per pixel of a tile and channel of its
#: input, with a margin: 4.8-6.2 KB per pixel measured at the default 96 channels (208- and 256-px
#: tiles, ``benchmarks/cpu_allocator.py``), i.e. 50-65 per channel.
_LSTM_WORK_PER_CHANNEL_PIXEL = 96
#: The least working memory a run needs beside the maps (a 64-px ConvLSTM tile and the read windows).
MIN_WORK_BYTES = 256 << 20


@dataclass
class LayerwiseReport:
    """What a layer-wise run did (for the tiled report and the benchmarks)."""

    lstm_tile: int
    seconds: float
    peak_map_bytes: int


def applies(network: object, device: torch.device, amp: bool) -> bool:
    """RSSGL in float32 on the CPU (on a GPU, reading the raster bounds the windowed sweeps anyway)."""
    return device.type == "cpu" and isinstance(network, RSSGL) and not amp


def _map_bytes_per_pixel(net: RSSGL, num_classes: int, spectral: bool) -> float:
    """Bytes of the layer maps alive at the fullest moment, per pixel of the padded scene."""
    cfg = net.config
    c1 = cfg.block_channels[0]
    half = cfg.hidden[-1] * c1 // TIME_STEPS
    # stage 1: the stem map and the ConvLSTM output, then the ConvLSTM output and the block output
    full_res = max(c1 + half, half + 2 * half)
    lower = sum(2 * cfg.hidden[-1] * c // TIME_STEPS / 4 ** (i + 1) for i, c in enumerate(cfg.block_channels[1:]))
    lower += 2 * cfg.inner_dim / 4  # the decoder's half-resolution maps
    kept = 2 * half  # stage 1's output stays for the decoder while the lower stages run
    extra = (num_classes if spectral else 0) + 0.25  # spectral probabilities, valid mask
    return 4.0 * (max(full_res, kept + lower) + extra)


def bytes_needed(net: RSSGL, height: int, width: int, num_classes: int, spectral: bool) -> int:
    """Host memory the layer maps of a ``height`` x ``width`` scene need (without a tile's working memory)."""
    hp, wp = pad_hw(height, width)
    return int(hp * wp * _map_bytes_per_pixel(net, num_classes, spectral))


def _lstm_tile(lstm: nn.Module, channels: int, budget: int) -> int:
    """The ConvLSTM tile core (a multiple of 16) for a stage of ``channels`` input channels: its working
    memory fits ``budget`` bytes, and one step's gate maps (4 x hidden x depth float32 per pixel) stay
    below host_memory.HEAP_BLOCK_LIMIT, so the allocator can reuse them instead of faulting in fresh pages
    (in a worker thread 17-21 against 26-28 us per pixel, benchmarks/cpu_allocator.py)."""
    halo = lstm_halo(lstm)
    per_pixel = _LSTM_WORK_PER_CHANNEL_PIXEL * channels + 8 * channels  # working memory + input and output crops
    gates = 4 * 4 * max(lstm.hidden) * (channels // TIME_STEPS)
    side = int(min(math.sqrt(max(budget, 1) / per_pixel), math.sqrt(HEAP_BLOCK_LIMIT / gates)))
    return max(32, (side - 2 * halo) // 16 * 16)


def _tiled(fn: Callable[[slice, slice], Tensor], out: Tensor, in_shape: tuple[int, int], halo: int, stride: int,
           tile: int, check: Callable[[], None]) -> None:
    """out[:, rows, cols] = the matching core of fn(input rows, input cols), tile by tile.

    ``fn`` computes a local layer on a crop of its input (``in_shape`` large) and returns (1, C, h, w)
    at the output resolution (``stride`` 1 or 2). Each crop reaches ``halo`` input pixels past its
    core (clipped to the map: there the layer's own zero padding is the whole map's), so with
    ``halo`` at least the layer's receptive field the core is the layer's value on the whole map.
    """
    _, oh, ow = out.shape
    h, w = in_shape
    if halo % stride or tile % stride:
        raise ValueError("halo and tile must be multiples of the stride")
    for r0 in range(0, oh, tile):
        r1 = min(oh, r0 + tile)
        a, b = max(0, stride * r0 - halo), min(h, stride * r1 + halo)
        for c0 in range(0, ow, tile):
            check()
            c1 = min(ow, c0 + tile)
            ac, bc = max(0, stride * c0 - halo), min(w, stride * c1 + halo)
            y = fn(slice(a, b), slice(ac, bc))[0]
            j, jc = (stride * r0 - a) // stride, (stride * c0 - ac) // stride
            out[:, r0:r1, c0:c1] = y[:, j : j + r1 - r0, jc : jc + c1 - c0]


def _group_norm_relu_(x: Tensor, norm: nn.GroupNorm, chunk_rows: int = 64) -> None:
    """GroupNorm over the whole (C, h, w) map (statistics in float64, as one sample), then ReLU, in place."""
    c = x.shape[0]
    g = norm.num_groups
    sums = torch.zeros(g, dtype=torch.float64)
    squares = torch.zeros(g, dtype=torch.float64)
    for r in range(0, x.shape[1], chunk_rows):
        part = x[:, r : r + chunk_rows].double().reshape(g, -1)
        sums += part.sum(1)
        squares += (part * part).sum(1)
    count = x[0].numel() * (c // g)
    mean = sums / count
    var = (squares / count - mean * mean).clamp_min(0.0)
    rstd = 1.0 / torch.sqrt(var + norm.eps)
    weight = norm.weight.detach().double() if norm.weight is not None else torch.ones(c, dtype=torch.float64)
    bias = norm.bias.detach().double() if norm.bias is not None else torch.zeros(c, dtype=torch.float64)
    scale = (rstd.repeat_interleave(c // g) * weight).float()[:, None, None]
    shift = (bias - mean.repeat_interleave(c // g) * rstd.repeat_interleave(c // g) * weight).float()[:, None, None]
    for r in range(0, x.shape[1], chunk_rows):
        part = x[:, r : r + chunk_rows]
        part.mul_(scale).add_(shift).clamp_min_(0.0)


class _Progress:
    """Progress in shares (0-1) of the estimated work (the stage-1 ConvLSTM dominates), cancel checks."""

    def __init__(self, progress, should_stop):
        self.progress, self.should_stop = progress, should_stop
        self.done = 0.0

    def check(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled("Classification cancelled.")

    def step(self, amount: float, message: str) -> None:
        self.done += amount
        if self.progress is not None:
            self.progress(min(100.0, 100.0 * self.done), message)


def layerwise_predict(predictor, read_inputs: Callable[[Tile], tuple[Tensor, Tensor]], height: int, width: int,
                      out_tiles: list[Tile],
                      write: Callable[[Tile, Tensor, Tensor, Tensor, Tensor | None], None], *,
                      memory_limit_bytes: int, with_probabilities: bool,
                      progress: Callable[[float, str], None] | None = None,
                      should_stop: Callable[[], bool] | None = None,
                      lstm_tile: int | None = None) -> LayerwiseReport:
    """Whole-scene prediction of a ``height`` x ``width`` raster, layer by layer (module docstring).

    ``predictor`` is a TilePredictor; ``read_inputs(tile)`` returns the tile's read window normalised
    (1, B, h, w) and its valid mask (1, h, w); ``write(tile, labels, confidence, valid, probabilities)``
    receives each of ``out_tiles``' cores (row-major) as (h, w) / (K, h, w) tensors.
    ``lstm_tile`` overrides the ConvLSTM tile the memory setting gives (tests).
    """
    t_start = time.perf_counter()
    net: RSSGL = predictor.network
    hp, wp = pad_hw(height, width)
    use_spectral = predictor.pools_spectral
    maps = bytes_needed(net, height, width, predictor.num_classes, use_spectral)
    work_budget = max(memory_limit_bytes - maps, 64 << 20)
    tiles_of = [lstm_tile or _lstm_tile(s.lstm, s.channels, work_budget) for s in net.stages]
    # work estimate per padded pixel (stage-1 ConvLSTM ~ 70 %, the rest shared by the other layers)
    work = _Progress(progress, should_stop)
    check = work.check

    with torch.no_grad():
        stem, valid_map, spectral_map = _stem_map(predictor, read_inputs, hp, wp, use_spectral, work)
        held = [stem]
        del stem
        skips = _encoder(net, held, tiles_of, work)
        out = _decoder(net, skips, check)
        del skips[1:]
        work.step(0.04, "classifying: decoder")

        # ---- the last decoder level, the classifier and the pooled probabilities, per output core
        s1, lateral, last, classifier = skips[0], net.laterals[-1], net.fuse[-1], net.classifier
        remaining = 1.0 - work.done
        for t in out_tiles:
            check()
            r0, r1 = t.core.row, t.core.row + t.core.height
            c0, c1_ = t.core.col, t.core.col + t.core.width
            a, b = max(0, (r0 - 2) // 2 * 2), min(hp, r1 + 2)
            ac, bc = max(0, (c0 - 2) // 2 * 2), min(wp, c1_ + 2)
            inner = lateral(s1[None, :, a:b, ac:bc]) + _upsampled(out, slice(a, b), slice(ac, bc))
            logits = classifier(last(inner))[0][:, r0 - a : r1 - a, c0 - ac : c1_ - ac]
            rows, cols = slice(r0, r1), slice(c0, c1_)
            spectral = None if spectral_map is None else spectral_map[None, :, rows, cols]
            proba = predictor.pooled(torch.softmax(logits, dim=0)[None], spectral)
            valid = valid_map[rows, cols]
            labels, conf, p_out = predictor.outputs(proba, valid[None], with_probabilities)
            write(t, labels[0], conf[0], valid, None if p_out is None else p_out[0])
            work.step(remaining * t.core.pixels / (height * width), "classifying: writing")
    return LayerwiseReport(lstm_tile=tiles_of[0], seconds=time.perf_counter() - t_start, peak_map_bytes=maps)


def _stem_map(predictor, read_inputs: Callable[[Tile], tuple[Tensor, Tensor]], hp: int, wp: int,
              use_spectral: bool, work: _Progress) -> tuple[Tensor, Tensor, Tensor | None]:
    """The stem over the padded scene, read once: its map (GroupNorm + ReLU over the whole map), the valid
    mask and, with ``use_spectral``, the spectral model's probabilities."""
    net: RSSGL = predictor.network
    check = work.check
    c1 = net.config.block_channels[0]
    stem_conv, stem_norm = net.stem[0], net.stem[1]
    y = torch.empty((c1, hp, wp), dtype=torch.float32)
    valid_map = torch.zeros((hp, wp), dtype=torch.bool)
    spectral_map = torch.empty((predictor.num_classes, hp, wp), dtype=torch.float32) if use_spectral else None
    read_core = 128
    reads = plan_tiles(hp, wp, read_core, 16)
    for t in reads:
        check()
        x, valid = read_inputs(t)
        rs, cs = t.core_in_read
        y[:, t.core.row : t.core.row + t.core.height, t.core.col : t.core.col + t.core.width] = \
            stem_conv(x)[0][:, rs, cs]
        valid_map[t.core.slices[0], t.core.slices[1]] = valid[0][rs, cs]
        if spectral_map is not None:
            spectral_map[:, t.core.slices[0], t.core.slices[1]] = \
                predictor.spectral.probabilities_map(x[:, :, rs, cs])[0]
        work.step(0.08 * t.core.pixels / (hp * wp), "classifying: reading the raster")
    del x
    _group_norm_relu_(y, stem_norm)
    return y, valid_map, spectral_map


def _encoder(net: RSSGL, held: list[Tensor], tiles_of: list[int], work: _Progress) -> list[Tensor]:
    """The encoder stages over the whole map: each stage's output (the decoder's skips). ``held`` holds the
    stem map alone (``_stage``'s rule: the caller keeps no other reference), so it is freed once read."""
    check = work.check
    y = held.pop()
    skips: list[Tensor] = []
    shares = [0.62, 0.12, 0.04, 0.02]
    for i, stage in enumerate(net.stages):
        if i:
            down = net.downs[i - 1]
            src = y
            y = torch.empty((down[0].out_channels, src.shape[1] // 2, src.shape[2] // 2), dtype=torch.float32)
            _tiled(lambda r, c, src=src, down=down: F.relu(down[0](src[None, :, r, c])), y, src.shape[1:], 2, 2,
                   256, check)
            del src
        held = [y]
        del y
        y = _stage(stage, held, tiles_of[i], check)
        skips.append(y)
        work.step(shares[i], f"classifying: encoder stage {i + 1} of {len(net.stages)}")
    del y
    return skips


def _decoder(net: RSSGL, skips: list[Tensor], check: Callable[[], None]) -> Tensor | None:
    """The FPN decoder down to half resolution (the last level is computed per output tile by the caller)."""
    cfg = net.config
    out = None
    for i, (lateral, skip) in enumerate(zip(net.laterals[:-1], reversed(skips[1:]), strict=True)):
        fuse = net.fuse[i]
        inner = torch.empty((cfg.inner_dim,) + tuple(skip.shape[1:]), dtype=torch.float32)

        def inner_fn(r, c, lateral=lateral, skip=skip, prev=out):
            v = lateral(skip[None, :, r, c])
            if prev is not None:
                v = v + _upsampled(prev, r, c)
            return v

        _tiled(inner_fn, inner, skip.shape[1:], 0, 1, 256, check)
        new = torch.empty_like(inner)
        _tiled(lambda r, c, inner=inner, fuse=fuse: fuse[0](inner[None, :, r, c]), new, inner.shape[1:], 2, 1,
               256, check)
        del inner
        _group_norm_relu_(new, fuse[1])
        out = new
    return out


def _upsampled(prev: Tensor, rows: slice, cols: slice) -> Tensor:
    """Nearest x2 upsampling of the (C, h/2, w/2) map ``prev``, cropped to full-resolution rows/cols
    (starting at even offsets): (1, C, rows, cols)."""
    a, b, ac, bc = rows.start, rows.stop, cols.start, cols.stop
    part = prev[None, :, a // 2 : (b + 1) // 2, ac // 2 : (bc + 1) // 2]
    up = F.interpolate(part, scale_factor=2.0, mode="nearest")
    return up[:, :, : b - a, : bc - ac]


def _stage(stage, held: list[Tensor], lstm_tile: int, check: Callable[[], None]) -> Tensor:
    """One encoder stage over the whole map: ConvLSTM (tiled) -> attention block -> GroupNorm + ReLU.

    ``held`` holds the stage's input map alone (the caller keeps no other reference), so it is freed as
    soon as the ConvLSTM has read it: the input, the ConvLSTM map and the block's map are never all alive
    (``bytes_needed`` counts two of them)."""
    x = held.pop()
    c, h, w = x.shape
    half = stage.lstm.hidden[-1] * c // TIME_STEPS
    lstm_out = torch.empty((half, h, w), dtype=torch.float32)
    _tiled(lambda r, cc, src=x: _lstm_crop(stage.lstm, src, r, cc), lstm_out, (h, w), lstm_halo(stage.lstm), 1,
           lstm_tile, check)
    del x
    # the channel attention's pooled vectors over the whole map, as whole-scene prediction pools them
    ca = stage.block.ca
    total = torch.zeros(half, dtype=torch.float64)
    mx = torch.full((half,), -math.inf)
    for r in range(0, h, 64):
        part = lstm_out[:, r : r + 64]
        total += part.double().sum(dim=(1, 2))
        mx = torch.maximum(mx, part.amax(dim=(1, 2)))
    avg = (total / (h * w)).float()[None, :, None, None]
    mx = mx[None, :, None, None]
    gate = torch.sigmoid(ca.fc2(F.relu(ca.fc1(avg))) + ca.fc2(F.relu(ca.fc1(mx))))[0]
    out = torch.empty((2 * half, h, w), dtype=torch.float32)
    sa = stage.block.sa
    _tiled(lambda r, cc, src=lstm_out: _block_crop(sa, gate, src, r, cc), out, (h, w), sa.conv.kernel_size[0] // 2,
           1, 256, check)
    del lstm_out
    _group_norm_relu_(out, stage.norm)
    return out


def _lstm_crop(lstm: nn.Module, x: Tensor, rows: slice, cols: slice) -> Tensor:
    """The ConvLSTM on a crop of the (C, h, w) stage input: (1, hidden x C/8, rows, cols)."""
    crop = x[None, :, rows, cols]
    n, ch, hh, ww = crop.shape
    return lstm.forward_lean(crop.reshape(n, TIME_STEPS, ch // TIME_STEPS, hh, ww)).reshape(n, -1, hh, ww)


def _block_crop(sa: nn.Module, gate: Tensor, lstm_out: Tensor, rows: slice, cols: slice) -> Tensor:
    """The attention block on a crop of the ConvLSTM map, the channel attention's gate given (whole-map)."""
    crop = lstm_out[None, :, rows, cols]
    return torch.cat([crop * gate + crop, sa(crop)], dim=1)
