"""The RSSGL network (Wang et al., IEEE TGRS 2022), in a fast but mathematically identical form.

Structure (see shared REFERENCE.md): a stem, four encoder stages of [3-D ConvLSTM -> attention
BasicBlock -> GroupNorm + ReLU] with stride-2 downsampling between them, and an FPN decoder whose
last 3x3 conv returns a B-channel feature map z (used by the statistical loss), then a 1x1 classifier.

The ConvLSTM is the authors' math in a cheaper formulation: their four input-gate convs (and four
hidden-gate convs) per cell are fused into one conv with 4*hidden output channels, and the input
convs of all eight time steps run as ONE batched call (steps folded into the batch dimension), so a
cell's recurrent loop only runs the small hidden-state conv. The authors' peephole weights are
constant zeros and are left out; the unused modules they build are not built.

Parameters keep PyTorch's default initialisation (as the authors' code does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .accel import conv3d_folded_weight_grad, fold_depth_weight

__all__ = [
    "RssglConfig",
    "RSSGL",
    "ConvLSTM3d",
    "auto_kernel",
    "SCENE_KERNELS",
    "PAD_MULTIPLE",
    "TIME_STEPS",
]

#: Spatial size multiple the input is zero-padded to (bottom/right), as in the authors' code.
PAD_MULTIPLE = 16
#: Number of ConvLSTM time steps: a stage's C channels are split into 8 groups of C/8.
TIME_STEPS = 8

#: ConvLSTM kernels of the authors' configs.
SCENE_KERNELS: dict[str, tuple[int, int, int]] = {
    "indian_pines": (3, 3, 3),
    "salinas": (3, 5, 5),
    "pavia_university": (3, 5, 5),
    "salinas_a": (3, 5, 5),
}


def auto_kernel(height: int, width: int) -> tuple[int, int, int]:
    """ConvLSTM kernel for a scene of this size: (3,3,3) for small scenes like Indian Pines, else (3,5,5).

    The authors use the smaller kernel only on Indian Pines (145x145, coarse 20 m pixels, small
    fields); we take "both sides <= 160 pixels" as the rule, which reproduces their presets for the
    benchmark scenes except Salinas-A (83x86), a subset of Salinas that keeps Salinas' kernel: pass
    the kernel explicitly (or use SCENE_KERNELS) for such subsets.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"The scene size must be positive, got {height}x{width}.")
    return (3, 3, 3) if max(height, width) <= 160 else (3, 5, 5)


@dataclass
class RssglConfig:
    """Architecture hyper-parameters; stored in every model file so it can be rebuilt exactly."""

    in_bands: int
    num_classes: int
    kernel: tuple[int, int, int] = (3, 5, 5)
    block_channels: tuple[int, ...] = (96, 128, 192, 256)
    inner_dim: int = 128
    gn_groups: int = 4
    hidden: tuple[int, int] = (4, 4)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.kernel = tuple(int(k) for k in self.kernel)
        self.block_channels = tuple(int(c) for c in self.block_channels)
        self.hidden = tuple(int(h) for h in self.hidden)
        if self.in_bands < 1:
            raise ValueError(f"in_bands must be >= 1, got {self.in_bands}.")
        if self.num_classes < 2:
            raise ValueError(
                f"RSSGL needs at least 2 classes, got {self.num_classes}; add training samples of another class."
            )
        if len(self.kernel) != 3 or any(k < 1 or k % 2 == 0 for k in self.kernel):
            raise ValueError(f"The ConvLSTM kernel must be three odd sizes (depth, h, w), got {self.kernel}.")
        if len(self.block_channels) != 4:
            raise ValueError(f"block_channels must list 4 stage widths, got {self.block_channels}.")
        for c in self.block_channels:
            if c % (2 * TIME_STEPS) or (c // 2) % self.gn_groups or c % self.gn_groups:
                raise ValueError(
                    f"Each stage width must be a multiple of 16 and of 2*gn_groups (got {c}); "
                    "the ConvLSTM splits it into 8 steps and the attention block halves it."
                )
        if len(self.hidden) != 2 or min(self.hidden) < 1:
            raise ValueError(f"hidden must give two positive ConvLSTM widths, got {self.hidden}.")
        if self.inner_dim % self.gn_groups:
            raise ValueError(f"inner_dim ({self.inner_dim}) must be a multiple of gn_groups ({self.gn_groups}).")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra", None)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RssglConfig:
        known = {"in_bands", "num_classes", "kernel", "block_channels", "inner_dim", "gn_groups", "hidden"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"Unknown RSSGL architecture keys {sorted(unknown)}; the model file may be newer.")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _gn(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels)


class ConvLSTM3d(nn.Module):
    """Two stacked 3-D ConvLSTM cells over ``TIME_STEPS`` spectral groups, fused formulation.

    Input (N, T, D, H, W): T steps, each a 1-channel volume of spectral depth D. Output: the last
    layer's hidden state at the last step, (N, hidden_last, D, H, W). Gate order along the fused
    channel axis is (i, f, o, g), each ``hidden`` channels wide.

    ``fold_depth`` (default True) selects how the 3-D convolutions are computed, not what they
    compute: the spectral depth is folded into the channels and each 3-D conv runs as a 2-D conv
    with a banded weight (``accel.fold_depth_weight``) on channels-last tensors. The 3-D convs
    here have 1-4 input and 16 output channels, which leaves GPU tensor cores and CPU vector units
    idle; the folded 2-D convs have 12-512 channels and run several times faster although they
    multiply D/kd times more zeros (docs/PERFORMANCE.md has the measurements). The weights stay
    the 3-D ``Conv3d`` parameters either way, so model files do not depend on this switch.
    """

    def __init__(self, kernel: tuple[int, int, int], hidden: tuple[int, ...] = (4, 4), in_channels: int = 1):
        super().__init__()
        padding = tuple(k // 2 for k in kernel)
        self.hidden = tuple(hidden)
        #: None = by device and kernel: folded on CUDA and for 3x3 spatial kernels on the CPU; 5x5 on
        #: the CPU: 3-D convs with the folded weight gradient (``accel.conv3d_folded_weight_grad``).
        #: True / False force folded / plain 3-D (benchmarks).
        self.fold_depth: bool | None = None
        self.x_convs = nn.ModuleList()
        self.h_convs = nn.ModuleList()
        cin = in_channels
        for h in self.hidden:
            self.x_convs.append(nn.Conv3d(cin, 4 * h, kernel, padding=padding, bias=True))
            self.h_convs.append(nn.Conv3d(h, 4 * h, kernel, padding=padding, bias=False))
            cin = h

    @staticmethod
    def _cell_steps(xg: Tensor, h_conv: Callable[[Tensor], Tensor]) -> list[Tensor]:
        """Run one cell over the T steps given its precomputed input-gate maps xg (N, T, 4*hid, ...)."""
        h = c = None
        outs = []
        # unbind, not xg[:, step]: the backward of T selects allocates and zero-fills T full-size
        # gradients of xg (11 % of a CPU training step at Salinas-A); unbind's backward is one stack.
        for x_step in xg.unbind(1):
            gates = x_step if h is None else x_step + h_conv(h)  # zero initial state
            i, f, o, g = gates.chunk(4, dim=1)
            i, f, o, g = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o), torch.tanh(g)
            c = i * g if c is None else f * c + i * g
            h = o * torch.tanh(c)
            outs.append(h)
        return outs

    def forward(self, x: Tensor) -> Tensor:
        if self.fold_depth is None:  # chosen from measurements (docs/PERFORMANCE.md, CPU section)
            kh, kw = self.x_convs[0].kernel_size[1:]
            if x.is_cuda or kh * kw <= 9:  # CPU, 3x3 kernels: oneDNN's 3-D conv is slow, the fold wins
                return self._forward_folded(x)
            return self._forward_3d(x, folded_weight_grad=torch.is_grad_enabled())
        return self._forward_folded(x) if self.fold_depth else self._forward_3d(x)

    @torch.no_grad()
    def forward_lean(self, x: Tensor) -> Tensor:
        """``forward`` for inference with a third of the working memory (core/prediction/layerwise.py): the input
        convs run one step at a time and the gates are computed in place, so no step's gate maps outlive
        it. Same 3-D convolutions, same result (tests/engine/test_layerwise.py)."""
        n, t, d, hgt, wid = x.shape
        steps: list[Tensor] = list(x.reshape(n, t, 1, d, hgt, wid).unbind(1))
        for layer, (x_conv, h_conv) in enumerate(zip(self.x_convs, self.h_convs, strict=True)):
            last = layer + 1 == len(self.x_convs)
            h = c = None
            outs: list[Tensor] = []
            for step in steps:
                gates = x_conv(step)
                if h is not None:
                    gates += h_conv(h)
                i, f, o, g = gates.chunk(4, dim=1)
                i.sigmoid_()
                f.sigmoid_()
                o.sigmoid_()
                g.tanh_()
                c = i * g if c is None else c.mul_(f).addcmul_(i, g)
                h = o * torch.tanh(c)
                del gates, i, f, o, g
                if not last:
                    outs.append(h)
            steps = outs
        return h

    def _forward_3d(self, x: Tensor, folded_weight_grad: bool = False) -> Tensor:
        n, t, d, hgt, wid = x.shape
        seq = x.reshape(n * t, 1, d, hgt, wid)  # steps folded into the batch: one conv for all steps
        outs: list[Tensor] = []
        for layer, (x_conv, h_conv) in enumerate(zip(self.x_convs, self.h_convs, strict=True)):
            hid = self.hidden[layer]
            if folded_weight_grad:
                x_conv = partial(conv3d_folded_weight_grad, conv=x_conv)
                h_conv = partial(conv3d_folded_weight_grad, conv=h_conv)
            outs = self._cell_steps(x_conv(seq).view(n, t, 4 * hid, d, hgt, wid), h_conv)
            if layer + 1 < len(self.x_convs):
                seq = torch.stack(outs, dim=1).reshape(n * t, hid, d, hgt, wid)
        return outs[-1]

    def _forward_folded(self, x: Tensor) -> Tensor:
        n, t, d, hgt, wid = x.shape
        # (N*T, Cin*D, H, W) with channel c*D + d: a free reshape of the 3-D layout
        seq = x.reshape(n * t, d, hgt, wid).contiguous(memory_format=torch.channels_last)
        outs: list[Tensor] = []
        for layer, (x_conv, h_conv) in enumerate(zip(self.x_convs, self.h_convs, strict=True)):
            pad = (x_conv.padding[1], x_conv.padding[2])
            # channels-last weights, made once per forward: with channels-last activations the CPU
            # (oneDNN) backend otherwise re-lays the weight out in every one of the T recurrent calls
            wx = fold_depth_weight(x_conv.weight, d).contiguous(memory_format=torch.channels_last)
            wh = fold_depth_weight(h_conv.weight, d).contiguous(memory_format=torch.channels_last)
            xg = F.conv2d(seq, wx, x_conv.bias.repeat_interleave(d), padding=pad).unflatten(0, (n, t))
            outs = self._cell_steps(xg, lambda h, wh=wh, pad=pad: F.conv2d(h, wh, padding=pad))
            if layer + 1 < len(self.x_convs):
                seq = torch.stack(outs, dim=1).flatten(0, 1).contiguous(memory_format=torch.channels_last)
        return outs[-1].reshape(n, self.hidden[-1], d, hgt, wid)


class ChannelAttention(nn.Module):
    """x * sigmoid(MLP(avgpool x) + MLP(maxpool x)) + x (ratio 16, bias-free 1x1 convs)."""

    def __init__(self, channels: int, ratio: int = 16):
        super().__init__()
        mid = max(1, channels // ratio)
        self.fc1 = nn.Conv2d(channels, mid, 1, bias=False)
        self.fc2 = nn.Conv2d(mid, channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        # mean/amax over (H, W) = adaptive avg/max pooling to 1x1, as one fast reduction each
        return self.gate(x, x.mean(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True))

    def gate(self, x: Tensor, avg_pooled: Tensor, max_pooled: Tensor) -> Tensor:
        """The attention given the pooled (N or 1, C, 1, 1) vectors: tiled inference passes whole-scene
        ones (core/prediction/scene_stats.py)."""
        avg = self.fc2(F.relu(self.fc1(avg_pooled)))
        mx = self.fc2(F.relu(self.fc1(max_pooled)))
        return x * torch.sigmoid(avg + mx) + x


class SpatialAttention(nn.Module):
    """x * sigmoid(relu(conv7x7([mean_c x, max_c x]))) + x, as the authors write it (ReLU before sigmoid)."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        s = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(F.relu(self.conv(s))) + x


class BasicBlock(nn.Module):
    """concat[channel attention, spatial attention] of a P-channel map -> 2P channels."""

    def __init__(self, channels: int):
        super().__init__()
        self.ca = ChannelAttention(channels)
        self.sa = SpatialAttention()

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.ca(x), self.sa(x)], dim=1)


class EncoderStage(nn.Module):
    """ConvLSTM (C -> C/2) -> BasicBlock (C/2 -> C) -> GroupNorm + ReLU."""

    def __init__(self, channels: int, config: RssglConfig):
        super().__init__()
        self.channels = channels
        self.lstm = ConvLSTM3d(config.kernel, config.hidden)
        half = config.hidden[-1] * channels // TIME_STEPS
        self.block = BasicBlock(half)
        self.norm = _gn(2 * half, config.gn_groups)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        y = self.lstm(x.reshape(n, TIME_STEPS, c // TIME_STEPS, h, w))  # (N, hidden, C/8, H, W)
        y = y.reshape(n, -1, h, w)  # hidden-channel major: channel k*C/8 + d = hidden k, depth d
        return F.relu(self.norm(self.block(y)))


class RSSGL(nn.Module):
    """Whole-scene RSSGL: forward((N, B, H, W)) -> (logits (N, K, H, W), features z (N, B, H, W)).

    H and W must be multiples of 8 (the training code pads to multiples of ``PAD_MULTIPLE``).
    """

    def __init__(self, config: RssglConfig):
        super().__init__()
        self.config = config
        g = config.gn_groups
        c1 = config.block_channels[0]
        self.stem = nn.Sequential(nn.Conv2d(config.in_bands, c1, 3, padding=1), _gn(c1, g), nn.ReLU(inplace=True))
        self.stages = nn.ModuleList()
        self.downs = nn.ModuleList()
        prev = None
        for c in config.block_channels:
            if prev is not None:
                self.downs.append(nn.Sequential(nn.Conv2d(prev, c, 3, stride=2, padding=1), nn.ReLU(inplace=True)))
            self.stages.append(EncoderStage(c, config))
            prev = c
        # stage output = 2 x ConvLSTM output = 2 * hidden * C/8 (= C with the default hidden width 4)
        skip_channels = [2 * config.hidden[-1] * c // TIME_STEPS for c in config.block_channels]
        self.laterals = nn.ModuleList(nn.Conv2d(c, config.inner_dim, 1) for c in reversed(skip_channels))
        d = config.inner_dim
        self.fuse = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(d, d, 3, padding=1), _gn(d, g), nn.ReLU(inplace=True))
                for _ in range(len(config.block_channels) - 1)
            ]
            + [nn.Conv2d(d, config.in_bands, 3, padding=1)]
        )
        self.classifier = nn.Conv2d(config.in_bands, config.num_classes, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.ndim != 4 or x.shape[1] != self.config.in_bands:
            raise ValueError(
                f"RSSGL expects input (N, {self.config.in_bands}, H, W); got {tuple(x.shape)}. "
                "Use a raster with the band count the model was built for."
            )
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f"Height and width must be multiples of 8 (pad the input); got {tuple(x.shape[-2:])}.")
        skips = []
        y = self.stem(x)
        for i, stage in enumerate(self.stages):
            if i:
                y = self.downs[i - 1](y)
            y = stage(y)
            skips.append(y)
        out = None
        for i, (lateral, skip) in enumerate(zip(self.laterals, reversed(skips), strict=True)):
            inner = lateral(skip)
            if out is not None:
                inner = inner + F.interpolate(out, scale_factor=2.0, mode="nearest")
            out = self.fuse[i](inner)
        z = out
        return self.classifier(z), z
