"""Whole-scene normalisation statistics for tiled inference.

RSSGL is not a local operator: its GroupNorm layers and the channel attention's global average/max
pooling use statistics of the WHOLE input. A tile given its own statistics is therefore classified
as if it were a small scene of its own, and tiled maps disagree with whole-scene prediction (93-99 %
agreement, docs/PERFORMANCE.md), whatever the halo. With the whole-scene statistics injected into
every tile, a 192-px window with a 32-px halo agrees to 99.9 % (benchmarks/seams_statistics.py): the
statistics, not the missing context, make the seams.

``SceneStatistics`` gathers those statistics over the tiles themselves: while tiles run through the
network it adds up, for each GroupNorm and channel attention, the sums (and maxima) over each
tile's own region only (its core, plus the zero padding whole-scene prediction adds at the
bottom/right edge), so every pixel of the padded scene counts exactly once. The statistics of a
layer depend on those of the layers before it, so they are refined in passes: pass 1 records with
each window's own statistics, each later pass with the previous pass's, and the final pass predicts
with the last ones. Exact would need one pass per statistic (12); the number of passes is
``core.prediction.statistics_passes.DEFAULT_SCENE_PASSES`` (3), chosen from the measurement there. On rasters of many
tiles a statistics pass may look at a spread sample of the tiles only
(``core.prediction.statistics_passes.statistics_tiles``): sums and counts are accumulated per region, so a sample gives
the sample's means and the largest value it saw.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..network.model import ChannelAttention

__all__ = ["SceneStatistics", "Region"]

#: A tile's own pixels inside its (padded) input window: rows r0:r1, columns c0:c1, full resolution.
Region = tuple[int, int, int, int]


def _folded_affine(module: nn.GroupNorm, mean: Tensor, var: Tensor, channels: int) -> tuple[Tensor, Tensor]:
    """Per-group mean and variance and the module's affine folded into one scale and shift per channel."""
    per_group = channels // module.num_groups
    scale = torch.rsqrt(var + module.eps).repeat_interleave(per_group)
    shift = -mean.repeat_interleave(per_group) * scale
    if module.affine:
        scale = scale * module.weight.float()
        shift = shift * module.weight.float() + module.bias.float()
    return scale, shift


class SceneStatistics:
    """Accumulates and applies whole-scene GroupNorm / channel-attention statistics of one network.

    Use ``with stats.attached(model):`` around all passes; before each forward call
    ``set_regions(regions, input_hw)``; ``start_pass()`` / ``end_pass()`` around a statistics pass. Outside a recording pass with finished statistics, every module normalises
    with the scene's statistics; before the first pass ends, with the window's own (standard).
    """

    def __init__(self) -> None:
        self.current: dict[str, tuple[Tensor, Tensor]] = {}
        self._affine: dict[str, tuple[Tensor, Tensor]] = {}  # GroupNorm scale/shift per channel, from current
        self._accum: dict[str, list] | None = None
        self._regions: list[Region] = []
        self._input_hw: tuple[int, int] = (0, 0)
        self.passes = 0
        #: Training on windows (core/training/window_training.py): every layer normalises the whole batch with the
        #: statistics of all its regions pooled, computed with gradients, as whole-scene training does over
        #: the scene; the finished statistics are then not used.
        self.pooled = False
        #: Statistics that are final (recorded once, e.g. the stem's by a stem-only pass): later passes neither
        #: record nor replace them (core/prediction/stage_cache.py relies on them staying fixed).
        self.frozen: set[str] = set()

    # -- pass bookkeeping -------------------------------------------------------------------------
    def start_pass(self) -> None:
        self._accum = {}
        self._affine = {}  # the weights may have changed since the last pass (training on windows)

    def end_pass(self) -> None:
        """Turn the sums of the pass into statistics used from now on."""
        finished = {}
        for name, (kind, a, b, count) in (self._accum or {}).items():
            if kind == "gn":
                mean = a / count
                var = (b / count - mean * mean).clamp_min(0.0)
                finished[name] = (mean.float(), var.float())
            else:
                finished[name] = ((a / count).float(), b.float())
        finished.update({name: self.current[name] for name in self.frozen if name in self.current})
        self.current = finished
        self._affine = {}
        self._accum = None
        self.passes += 1

    def set_regions(self, regions: Sequence[Region], input_hw: tuple[int, int]) -> None:
        self._regions = list(regions)
        self._input_hw = (int(input_hw[0]), int(input_hw[1]))

    # -- patching ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def attached(self, model: nn.Module) -> Iterator[SceneStatistics]:
        patched = []
        for name, module in model.named_modules():
            if isinstance(module, nn.GroupNorm):
                module.forward = self._group_norm(module, name)
            elif isinstance(module, ChannelAttention):
                module.forward = self._attention(module, name)
            else:
                continue
            patched.append(module)
        try:
            yield self
        finally:
            for module in patched:
                del module.forward  # the class's own forward again

    def _slices(self, h: int, w: int) -> list[tuple[slice, slice]]:
        """Each batch element's region at a feature map of h x w (the input downsampled by 1, 2, 4, 8)."""
        sh, sw = max(1, self._input_hw[0] // h), max(1, self._input_hw[1] // w)
        return [
            (slice(r0 // sh, math.ceil(r1 / sh)), slice(c0 // sw, math.ceil(c1 / sw)))
            for r0, r1, c0, c1 in self._regions
        ]

    def _add(self, name: str, kind: str, a: Tensor, b: Tensor, count: int) -> None:
        """Add one region's sums: "gn" (sum, sum of squares), "ca" (sum, maximum: kept as a maximum)."""
        old = self._accum.get(name)
        if old is None:
            self._accum[name] = [kind, a, b, count]
        else:
            old[1] = old[1] + a
            old[2] = torch.maximum(old[2], b) if kind == "ca" else old[2] + b
            old[3] += count

    def _group_norm(self, module: nn.GroupNorm, name: str):
        groups = module.num_groups

        def forward(x: Tensor) -> Tensor:
            n, c, h, w = x.shape
            if self.pooled:
                return self._pooled_group_norm(module, x)
            if self._accum is not None and name not in self.frozen:
                for i, (rs, cs) in enumerate(self._slices(h, w)):
                    part = x[i, :, rs, cs].reshape(groups, -1).double()
                    self._add(name, "gn", part.sum(1), (part * part).sum(1), part.shape[1])
            if name not in self.current:
                return F.group_norm(x, groups, module.weight, module.bias, module.eps)
            scale, shift = self._channel_affine(module, name, c)
            # one fused multiply-add in fp32, like autocast's group_norm (which also returns fp32)
            out = torch.addcmul(shift[None, :, None, None], x.float(), scale[None, :, None, None])
            return out if torch.is_autocast_enabled(x.device.type) else out.to(x.dtype)

        return forward

    def _channel_affine(self, module: nn.GroupNorm, name: str, channels: int) -> tuple[Tensor, Tensor]:
        """The scene's normalisation and the module's affine folded into one scale and shift per channel.

        Cached for prediction; recomputed at every call while gradients flow (training on windows with
        frozen scene statistics, core/training/window_training.py), where the affine weights change every step."""
        training = torch.is_grad_enabled() and module.affine and module.weight.requires_grad
        if name in self._affine and not training:
            return self._affine[name]
        mean, var = self.current[name]
        scale, shift = _folded_affine(module, mean, var, channels)
        if not training:
            self._affine[name] = (scale, shift)
        return scale, shift

    def _regions_of(self, x: Tensor) -> list[Tensor]:
        """Each batch element's region of feature map ``x`` (N, C, h, w), as (C, pixels) views."""
        n, c, h, w = x.shape
        return [x[i, :, rs, cs].reshape(c, -1) for i, (rs, cs) in enumerate(self._slices(h, w))]

    def _pooled_group_norm(self, module: nn.GroupNorm, x: Tensor) -> Tensor:
        """GroupNorm of the batch with the mean and variance of all its regions together (differentiable)."""
        groups, c = module.num_groups, x.shape[1]
        parts = torch.cat(self._regions_of(x.float()), dim=1).reshape(groups, -1)
        scale, shift = _folded_affine(module, parts.mean(1), parts.var(1, unbiased=False), c)
        out = torch.addcmul(shift[None, :, None, None], x.float(), scale[None, :, None, None])
        return out if torch.is_autocast_enabled(x.device.type) else out.to(x.dtype)

    def _attention(self, module: ChannelAttention, name: str):
        def forward(x: Tensor) -> Tensor:
            n, c, h, w = x.shape
            if self.pooled:
                parts = torch.cat(self._regions_of(x), dim=1)
                return module.gate(x, parts.mean(1)[None, :, None, None], parts.amax(1)[None, :, None, None])
            if self._accum is not None and name not in self.frozen:
                for i, (rs, cs) in enumerate(self._slices(h, w)):
                    part = x[i, :, rs, cs].reshape(c, -1)
                    self._add(name, "ca", part.double().sum(1), part.float().amax(1), part.shape[1])
            if name not in self.current:
                return module.__class__.forward(module, x)
            avg_in, max_in = self.current[name]
            return module.gate(x, avg_in.to(x.dtype)[None, :, None, None], max_in.to(x.dtype)[None, :, None, None])

        return forward
