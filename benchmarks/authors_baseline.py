"""The authors' RSSGL formulation, re-implemented for side-by-side speed measurements only.

This module mirrors the STRUCTURE of the authors' public code (swiftest/RSSGL, module/RSSGL.py and
data/base.py, as described in ../shared/rssgl/REFERENCE.md), because the point of
``benchmarks/bench_train.py`` is to measure how much faster our engine is than that structure on the
same device, in the same process:

- each ConvLSTM cell has eight separate ``Conv3d`` (four x-gates with bias, four h-gates without),
  plus the authors' zero "peephole" tensors that are multiplied in at every step (they are
  constant zeros, so they change no value but they do cost time, as in the original);
- the eight spectral time steps and the two stacked cells run in a per-step Python loop;
- the statistical loss loops over classes and over class pairs in Python, with ``torch.unique``
  and ``int(mask.sum())`` host synchronisations, like the original;
- the class-balanced weights are recomputed with numpy and copied to the device at every call;
- the minibatch mask is drawn with numpy on the host and copied to the device every iteration;
- fp32, eager, ``torch.optim.SGD`` with the learning rate written as a Python float, and
  ``loss.item()`` for logging at every iteration.

The network is otherwise the same as ours (stem, four stages, BasicBlock attention, FPN decoder,
1x1 classifier) and has exactly the same number of parameters: the authors' never-called
BasicBlocks/SpatialAttentions are left out because they receive no gradient and cost nothing.

It is never imported by the plugin (``rssgl_qgis``); it lives in ``benchmarks/`` only.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BaselineConvLSTMCell",
    "BaselineConvLSTM",
    "BaselineRSSGL",
    "baseline_loss",
    "baseline_statistical_loss",
    "BaselineTrainer",
    "minibatch_masks_numpy",
]


def _conv3x3_gn_relu(cin: int, cout: int, groups: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.GroupNorm(groups, cout), nn.ReLU(inplace=True))


def _gn_relu(channels: int, groups: int) -> nn.Sequential:
    return nn.Sequential(nn.GroupNorm(groups, channels), nn.ReLU(inplace=True))


def _downsample2x(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), nn.ReLU(inplace=True))


class BaselineConvLSTMCell(nn.Module):
    """One ConvLSTM cell with eight separate 3D convolutions, as the authors wrote it."""

    def __init__(self, in_channels: int, hidden: int, kernel: tuple[int, int, int]) -> None:
        super().__init__()
        self.hidden = hidden
        pad = tuple((k - 1) // 2 for k in kernel)

        def xconv() -> nn.Conv3d:
            return nn.Conv3d(in_channels, hidden, kernel, 1, pad, bias=True)

        def hconv() -> nn.Conv3d:
            return nn.Conv3d(hidden, hidden, kernel, 1, pad, bias=False)

        self.Wxi, self.Whi = xconv(), hconv()
        self.Wxf, self.Whf = xconv(), hconv()
        self.Wxc, self.Whc = xconv(), hconv()
        self.Wxo, self.Who = xconv(), hconv()
        self._peephole_shape: tuple[int, ...] | None = None

    def init_hidden(self, batch: int, shape: tuple[int, int, int], like: torch.Tensor):
        """Zero state plus the authors' zero peephole tensors (allocated once per shape)."""
        full = (1, self.hidden, *shape)
        if self._peephole_shape != full:
            # The authors keep these as constant zero tensors; they are multiplied with c every step.
            self.Wci = torch.zeros(full, device=like.device, dtype=like.dtype)
            self.Wcf = torch.zeros(full, device=like.device, dtype=like.dtype)
            self.Wco = torch.zeros(full, device=like.device, dtype=like.dtype)
            self._peephole_shape = full
        zeros = torch.zeros((batch, self.hidden, *shape), device=like.device, dtype=like.dtype)
        return zeros, zeros.clone()

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ci = torch.sigmoid(self.Wxi(x) + self.Whi(h) + c * self.Wci)
        cf = torch.sigmoid(self.Wxf(x) + self.Whf(h) + c * self.Wcf)
        cc = cf * c + ci * torch.tanh(self.Wxc(x) + self.Whc(h))
        co = torch.sigmoid(self.Wxo(x) + self.Who(h) + cc * self.Wco)
        ch = co * torch.tanh(cc)
        return ch, cc


class BaselineConvLSTM(nn.Module):
    """Two stacked cells over eight spectral steps, stepped in a Python loop."""

    def __init__(self, kernel: tuple[int, int, int], hidden: tuple[int, ...] = (4, 4), steps: int = 8) -> None:
        super().__init__()
        ins = (1, *hidden)
        self.steps = steps
        self.hidden = hidden
        self.cells = nn.ModuleList(BaselineConvLSTMCell(ins[i], hidden[i], kernel) for i in range(len(hidden)))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        depth = inp.size(1) // self.steps
        state: list[tuple[torch.Tensor, torch.Tensor]] = []
        x = inp
        for step in range(self.steps):
            x = inp[:, step * depth:(step + 1) * depth].unsqueeze(1)
            for i, cell in enumerate(self.cells):
                if step == 0:
                    b, _, d, hgt, wid = x.size()
                    state.append(cell.init_hidden(b, (d, hgt, wid), x))
                h, c = state[i]
                x, new_c = cell(x, h, c)
                state[i] = (x, new_c)
        result = x[:, 0]
        for i in range(self.hidden[-1] - 1):
            result = torch.cat([result, x[:, i + 1]], dim=1)
        return result


class _ChannelAttention(nn.Module):
    def __init__(self, planes: int, ratio: int = 16) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.fc1 = nn.Conv2d(planes, planes // ratio, 1, bias=False)
        self.relu1 = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(planes // ratio, planes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.fc2(self.relu1(self.fc1(self.avg_pool(x))))
        mx = self.fc2(self.relu1(self.fc1(self.max_pool(x))))
        w = torch.sigmoid(avg + mx)
        return x * w.view(w.size(0), w.size(1), 1, 1) + x


class _SpatialAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, 7, padding=3, bias=False)
        self.relu1 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = torch.mean(x, dim=1, keepdim=True)
        mx, _ = torch.max(x, dim=1, keepdim=True)
        s = torch.sigmoid(self.relu1(self.conv1(torch.cat([avg, mx], dim=1))))
        return x * s.view(s.size(0), 1, s.size(-2), s.size(-1)) + x


class _BasicBlock(nn.Module):
    def __init__(self, planes: int) -> None:
        super().__init__()
        self.ca = _ChannelAttention(planes)
        self.sa = _SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.ca(x), self.sa(x)], dim=1)


class BaselineRSSGL(nn.Module):
    """The authors' network: returns (logits, final feature z) like ours, for a shared loss call."""

    def __init__(
        self,
        in_bands: int,
        num_classes: int,
        kernel: tuple[int, int, int] = (3, 5, 5),
        block_channels: tuple[int, ...] = (96, 128, 192, 256),
        inner_dim: int = 128,
        groups: int = 4,
    ) -> None:
        super().__init__()
        ops: list[nn.Module] = [_conv3x3_gn_relu(in_bands, block_channels[0], groups)]
        self._skip_after: list[int] = []
        for i, ch in enumerate(block_channels):
            if i > 0:
                ops.append(_downsample2x(block_channels[i - 1], ch))
            ops.append(nn.Sequential(BaselineConvLSTM(kernel), _BasicBlock(ch // 2), _gn_relu(ch, groups)))
            self._skip_after.append(len(ops) - 1)
        self.feature_ops = nn.ModuleList(ops)
        self.reduce_1x1convs = nn.ModuleList(nn.Conv2d(ch, inner_dim, 1) for ch in block_channels)
        self.fuse_3x3convs = nn.ModuleList(
            [_conv3x3_gn_relu(inner_dim, inner_dim, groups) for _ in range(len(block_channels) - 1)]
            + [nn.Conv2d(inner_dim, in_bands, 3, 1, 1)]
        )
        self.cls_pred_conv = nn.Conv2d(in_bands, num_classes, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = []
        for i, op in enumerate(self.feature_ops):
            x = op(x)
            if i in self._skip_after:
                feats.append(x)
        inner = [self.reduce_1x1convs[i](f) for i, f in enumerate(feats)]
        inner.reverse()
        outs = [self.fuse_3x3convs[0](inner[0])]
        for i in range(len(inner) - 1):
            top2x = F.interpolate(outs[i], scale_factor=2.0, mode="nearest")
            outs.append(self.fuse_3x3convs[i + 1](inner[i + 1] + top2x))
        z = outs[-1]
        return self.cls_pred_conv(z), z


def baseline_statistical_loss(
    y: torch.Tensor, train_inds: torch.Tensor, final_feat: torch.Tensor, lamb: float = 1e-3
) -> torch.Tensor:
    """The authors' statistical loss: Python loops over classes and class pairs, host syncs included.

    ``y`` holds labels 1..K (0 = unlabelled) as floats, ``train_inds`` the 0/1 minibatch mask, both
    (1, H, W); ``final_feat`` is z (1, B, H, W).
    """
    y = y.squeeze()
    train_inds = train_inds.squeeze()
    final_feat = final_feat.squeeze()
    num_cls = len(torch.unique(y)) - 1
    _num_train = int(train_inds.sum())  # the authors compute (and sync on) this although unused
    location = torch.where(train_inds == 1.0)
    label = y[location]
    per_class = {}
    for i in range(1, num_cls + 1):
        idx = torch.where(label == i)
        per_class[i] = final_feat[:, location[0][idx], location[1][idx]]
    centres = {i: per_class[i].mean(dim=1).unsqueeze(dim=1) for i in range(1, num_cls + 1)}
    variance = torch.tensor(0.0, device=final_feat.device)
    for i in range(1, num_cls + 1):
        d = per_class[i] - centres[i]
        variance = variance + d.mul(d).sum() / (d.size()[1] - 1)
    variance = variance / num_cls
    diversity = torch.tensor(0.0, device=final_feat.device)
    for k in range(1, num_cls + 1):
        for t in range(k + 1, num_cls + 1):
            diversity = diversity - torch.dist(centres[k], centres[t], p=2)
    return variance + diversity * lamb


def baseline_loss(
    logits: torch.Tensor,
    z: torch.Tensor,
    y: torch.Tensor,
    train_inds: torch.Tensor,
    class_counts: list[int],
    stat_weight: float,
    beta: float = 0.9999,
) -> torch.Tensor:
    """Class-balanced CE (weights rebuilt with numpy and copied every call) + statistical loss."""
    effective = 1.0 - np.power(beta, class_counts)
    w = (1.0 - beta) / np.array(effective)
    w = w / np.sum(w) * len(class_counts)
    w_t = torch.FloatTensor(w).to(logits.device)
    losses = F.cross_entropy(logits, y.long() - 1, ignore_index=-1, reduction="none", weight=w_t)
    ce = losses.mul(train_inds).sum() / train_inds.sum()
    return ce + stat_weight * baseline_statistical_loss(y, train_inds, z)


def minibatch_masks_numpy(
    labels: np.ndarray, train_indicator: np.ndarray, per_class: int, count: int, rng: np.random.RandomState
) -> list[np.ndarray]:
    """The authors' H-B sampler: ``count`` float masks with up to ``per_class`` pixels of each class.

    Like the original it shuffles with numpy on the host (including a pass over class 0, which the
    authors also do) and returns host arrays that must be copied to the device each iteration.
    """
    flat_train = train_indicator.ravel()
    per_cls = {}
    for cls in np.unique(labels):
        inds = np.where((labels.ravel() == cls) & (flat_train == 1))[0]
        rng.shuffle(inds)
        per_cls[cls] = inds
    masks = []
    for _ in range(count):
        m = np.zeros_like(flat_train, dtype=np.float32)
        for inds in per_cls.values():
            rng.shuffle(inds)
            m[inds[: min(per_class, len(inds))]] = 1
        masks.append(m.reshape(train_indicator.shape))
    return masks


class BaselineTrainer:
    """The authors' training iteration: host mask -> device, forward, loss, backward, SGD, .item()."""

    def __init__(
        self,
        model: BaselineRSSGL,
        cube: torch.Tensor,
        labels: np.ndarray,
        train_indicator: np.ndarray,
        class_counts: list[int],
        *,
        stat_weight: float = 0.001,
        lr: float = 0.005,
        max_iters: int = 1000,
        poly_power: float = 0.8,
        seed: int = 2333,
    ) -> None:
        self.model = model
        self.device = cube.device
        self.cube = cube
        self.labels = labels
        self.y = torch.from_numpy(labels.astype(np.float32))[None].to(self.device)
        self.train_indicator = train_indicator
        self.class_counts = class_counts
        self.stat_weight = stat_weight
        self.base_lr = lr
        self.max_iters = max_iters
        self.poly_power = poly_power
        self.opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-3)
        self.rng = np.random.RandomState(seed)
        self.iteration = 0
        self._masks: list[np.ndarray] = []
        self.last_loss = math.nan

    def step(self) -> float:
        """One iteration exactly as the authors run it; returns the logged loss (a host float)."""
        if not self._masks:
            self._masks = minibatch_masks_numpy(self.labels, self.train_indicator, 10, 10, self.rng)
        mask = torch.from_numpy(self._masks.pop(0))[None].to(self.device)
        lr = self.base_lr * (1 - self.iteration / self.max_iters) ** self.poly_power
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.model.train()
        logits, z = self.model(self.cube)
        loss = baseline_loss(logits, z, self.y, mask, self.class_counts, self.stat_weight)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.iteration += 1
        self.last_loss = loss.item()
        return self.last_loss

    @torch.no_grad()
    def predict(self) -> torch.Tensor:
        """The authors' evaluation: eval mode, softmax over the whole scene."""
        self.model.eval()
        logits, _ = self.model(self.cube)
        return torch.softmax(logits, dim=1)


_GATES = ("i", "f", "o", "c")  # our fused gate order is (i, f, o, g); the authors call g "c"


@torch.no_grad()
def load_fused_weights(baseline: BaselineRSSGL, fused_state: dict[str, torch.Tensor]) -> None:
    """Copy the weights of our fused model (rssgl_qgis.core.network.model.RSSGL state dict) into the baseline.

    Used to prove that both formulations compute the same function (bench_train.py --check) before
    their speeds are compared. Raises KeyError/RuntimeError when a tensor is missing or mis-shaped.
    """
    target: dict[str, torch.Tensor] = {}
    nstages = len(baseline.reduce_1x1convs)
    target["feature_ops.0.0.weight"] = fused_state["stem.0.weight"]
    target["feature_ops.0.0.bias"] = fused_state["stem.0.bias"]
    target["feature_ops.0.1.weight"] = fused_state["stem.1.weight"]
    target["feature_ops.0.1.bias"] = fused_state["stem.1.bias"]
    for s in range(nstages):
        stage_op = baseline._skip_after[s]
        if s:
            for kind in ("weight", "bias"):
                target[f"feature_ops.{stage_op - 1}.0.{kind}"] = fused_state[f"downs.{s - 1}.0.{kind}"]
        pre = f"stages.{s}"
        for layer in range(2):
            xw = fused_state[f"{pre}.lstm.x_convs.{layer}.weight"]
            xb = fused_state[f"{pre}.lstm.x_convs.{layer}.bias"]
            hw = fused_state[f"{pre}.lstm.h_convs.{layer}.weight"]
            hid = xw.shape[0] // 4
            for gi, g in enumerate(_GATES):
                sl = slice(gi * hid, (gi + 1) * hid)
                cell = f"feature_ops.{stage_op}.0.cells.{layer}"
                target[f"{cell}.Wx{g}.weight"] = xw[sl]
                target[f"{cell}.Wx{g}.bias"] = xb[sl]
                target[f"{cell}.Wh{g}.weight"] = hw[sl]
        target[f"feature_ops.{stage_op}.1.ca.fc1.weight"] = fused_state[f"{pre}.block.ca.fc1.weight"]
        target[f"feature_ops.{stage_op}.1.ca.fc2.weight"] = fused_state[f"{pre}.block.ca.fc2.weight"]
        target[f"feature_ops.{stage_op}.1.sa.conv1.weight"] = fused_state[f"{pre}.block.sa.conv.weight"]
        target[f"feature_ops.{stage_op}.2.0.weight"] = fused_state[f"{pre}.norm.weight"]
        target[f"feature_ops.{stage_op}.2.0.bias"] = fused_state[f"{pre}.norm.bias"]
        # our laterals are stored deepest first, the authors' reduce convs shallowest first
        for kind in ("weight", "bias"):
            target[f"reduce_1x1convs.{s}.{kind}"] = fused_state[f"laterals.{nstages - 1 - s}.{kind}"]
    for key, value in fused_state.items():
        if key.startswith("fuse."):
            target["fuse_3x3convs." + key[len("fuse."):]] = value
        elif key.startswith("classifier."):
            target["cls_pred_conv." + key[len("classifier."):]] = value
    own = baseline.state_dict()
    missing = sorted(set(own) - set(target))
    if missing:
        raise KeyError(f"No fused weight for baseline tensors {missing[:5]}...")
    for key, value in target.items():
        own[key].copy_(value.reshape(own[key].shape))
