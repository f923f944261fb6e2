"""Fast training-step machinery: device-side SGD, on-device bookkeeping, CUDA-graph capture.

RSSGL trains on the WHOLE scene at every iteration, so one iteration is a few hundred small kernels
(eight ConvLSTM steps per stage, two cells, four stages, forward and backward). On a GPU the launch
overhead and the host round-trips of a naive loop (``loss.item()``, a Python float learning rate,
``if acc > best`` on the host) cost more than the arithmetic at the smaller scenes. This module
removes them:

- ``DeviceSGD``: SGD with momentum and weight decay (the same update as ``torch.optim.SGD``) that
  reads the learning rate from a device tensor, so the poly schedule needs no host write and the
  update can be captured in a CUDA graph;
- ``TrainStep``: one iteration (minibatch draw on the device, forward under optional bf16 autocast,
  loss, backward, SGD) plus the per-epoch evaluation and "save best" bookkeeping done with tensor
  arithmetic: the evaluation reuses the logits of the NEXT iteration's forward pass (the network has
  no batch norm or dropout, so train and eval forwards are the same function of the weights), so an
  evaluation costs no extra forward pass;
- ``capture_graph``: captures such a step once and replays it, with a clean eager fallback when
  CUDA graphs are unavailable (CPU) or capture fails.

Nothing here synchronises with the host inside the step; the caller reads the small history table
once per epoch (or never).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "DeviceSGD",
    "poly_lr_table",
    "TrainStep",
    "EvalPixels",
    "capture_graph",
    "use_cuda_graph",
    "autocast",
    "cudnn_autotune",
    "HISTORY_COLUMNS",
]

log = logging.getLogger(__name__)

#: Columns of ``TrainStep.history`` (one row per evaluation).
HISTORY_COLUMNS = ("loss", "val_oa", "val_loss", "test_oa", "lr", "selected", "since_best")

def use_cuda_graph(setting: str, device: torch.device) -> bool:
    """Whether ``accelerate`` = ``setting`` ("auto" | "off" | "graph") asks for CUDA-graph capture here."""
    setting = (setting or "auto").lower()
    if setting not in ("auto", "off", "graph"):
        raise ValueError(f"Unknown accelerate setting '{setting}': expected 'auto', 'graph' or 'off'.")
    return setting != "off" and device.type == "cuda"


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (cache disabled so it can run inside graph capture); a no-op otherwise."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()


@contextlib.contextmanager
def cudnn_autotune(enabled: bool = True) -> Iterator[None]:
    """Let cuDNN benchmark its algorithms for our fixed shapes, restoring the global flag afterwards."""
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled or previous
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def poly_lr_table(base_lr: float, total: int, power: float, steps: int, device: torch.device) -> Tensor:
    """Learning rate of every iteration 0..steps-1: base * (1 - it/total)^power, then 0 past ``total``.

    The table lives on the device so a captured step reads ``table[it]`` without a host write.
    """
    it = torch.arange(steps, dtype=torch.float64)
    lr = base_lr * torch.clamp(1.0 - it / float(total), min=0.0) ** power
    return lr.to(device=device, dtype=torch.float32)


class DeviceSGD:
    """SGD (momentum, weight decay, no dampening/nesterov) with the learning rate as a device tensor.

    Same update as ``torch.optim.SGD``: d = g + wd * p; buf = m * buf + d (buf = d at the first
    step, which equals starting from a zero buffer); p -= lr * buf. Multi-tensor (foreach) kernels,
    no host synchronisation, capturable in a CUDA graph.
    """

    def __init__(self, params: Sequence[Tensor], momentum: float = 0.9, weight_decay: float = 1e-3):
        self.params = [p for p in params if p.requires_grad]
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.buffers = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self, lr: Tensor) -> None:
        """Apply one update with the 0-d (or 1-element) learning-rate tensor ``lr``."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        d = torch._foreach_add(grads, self.params, alpha=self.weight_decay) if self.weight_decay else grads
        torch._foreach_mul_(self.buffers, self.momentum)
        torch._foreach_add_(self.buffers, d)
        torch._foreach_sub_(self.params, torch._foreach_mul(self.buffers, lr.reshape(())))

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def reset(self) -> None:
        """Forget the momentum (as a freshly built optimizer would)."""
        for b in self.buffers:
            b.zero_()


@dataclass
class EvalPixels:
    """Pixels scored at each evaluation: flat indices into the padded H*W grid and their class indices."""

    pixels: Tensor  # (M,) long
    classes: Tensor  # (M,) long

    @classmethod
    def from_index_map(cls, index_map: Tensor | None) -> EvalPixels | None:
        """From an (H, W) class-index map with -1 = not scored (one host sync, at set-up only)."""
        if index_map is None:
            return None
        flat = index_map.reshape(-1)
        pix = torch.nonzero(flat >= 0).squeeze(1)
        return cls(pix, flat[pix]) if pix.numel() else None


class TrainStep:
    """One whole-scene training iteration with its evaluation bookkeeping, all on the device.

    ``run()`` does, in this order: (1) forward on the whole scene; (2) when the iteration counter
    ``it`` is an evaluation point (a positive multiple of ``epoch_iterations``, or ``iterations``),
    score the CURRENT weights, i.e. those after ``it`` updates, from this forward's logits (the
    network has no batch norm or dropout, so its training and evaluation forwards are the same
    function), and when the score beats the best so far copy the weights into ``best_params`` by
    arithmetic selection (no host ``if``); (3) loss on a fresh H-B minibatch, backward, SGD with
    ``lr_table[it]``; (4) ``it += 1``. Run it ``iterations + 1`` times: the last run only scores
    the final weights (its learning rate is 0, so the weights do not change).

    Selection (as the eager trainer): "validation" = validation OA, ties broken by the lower
    validation cross-entropy; "paper" = OA on the evaluation (test) pixels; "loss" = the lower
    mean training loss of the epoch; "fit" = OA on the validation pixels, which the caller sets to
    every training pixel: ties count as better for the weights kept (the latest weights that fit
    as many training pixels as the best epoch) but not for patience, so training stops
    ``patience`` epochs after the training pixels stop being fitted any better: when there is
    nothing left to learn from them. Each evaluation writes one ``history`` row
    (``HISTORY_COLUMNS``); the caller reads it once per epoch, the only host synchronisation.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor],
        x: Tensor,
        target: Tensor,
        draw_mask: Callable[[], Tensor],
        lr_table: Tensor,
        *,
        iterations: int,
        epoch_iterations: int = 10,
        momentum: float = 0.9,
        weight_decay: float = 1e-3,
        amp: bool = False,
        selection: str = "loss",
        val_pixels: EvalPixels | None = None,
        eval_pixels: EvalPixels | None = None,
    ) -> None:
        if selection not in ("validation", "paper", "loss", "fit"):
            raise ValueError(f"Unknown selection '{selection}'.")
        if selection in ("validation", "fit") and val_pixels is None:
            raise ValueError("Selection 'validation' needs validation pixels.")
        if selection == "paper" and eval_pixels is None:
            raise ValueError("Selection 'paper' needs evaluation (test) pixels.")
        if lr_table.numel() < iterations + 1:
            raise ValueError(f"lr_table needs iterations + 1 = {iterations + 1} entries, got {lr_table.numel()}.")
        self.model = model
        self.loss_fn = loss_fn
        self.x = x
        self.target = target
        self.draw_mask = draw_mask
        self.lr_table = lr_table.clone()
        self.lr_table[iterations:] = 0.0  # the scoring-only run after the last iteration
        self.iterations = int(iterations)
        self.epoch_iterations = int(epoch_iterations)
        self.amp = bool(amp)
        self.selection = selection
        self.val_pixels = val_pixels
        self.eval_pixels = eval_pixels
        self.device = x.device
        self.optimizer = DeviceSGD(list(model.parameters()), momentum, weight_decay)
        self.best_params = [p.detach().clone() for p in self.optimizer.params]
        dev = self.device
        n_evals = math.ceil(self.iterations / self.epoch_iterations)
        self.it = torch.zeros((), dtype=torch.long, device=dev)
        self.best_score = torch.full((2,), -float("inf"), device=dev)  # (primary, tie-break)
        self.since_best = torch.zeros((), device=dev)
        self.epoch_loss = torch.zeros((), device=dev)
        self.epoch_count = torch.zeros((), device=dev)
        self.history = torch.zeros(n_evals + 1, len(HISTORY_COLUMNS), device=dev)  # last row: scratch
        self._graph: torch.cuda.CUDAGraph | None = None

    @property
    def evaluations(self) -> int:
        return self.history.shape[0] - 1

    def is_evaluation(self, it: int) -> bool:
        """Whether the run at counter value ``it`` (0-based) scores the weights (host-side mirror)."""
        return it > 0 and (it % self.epoch_iterations == 0 or it == self.iterations)

    # -- the step -------------------------------------------------------------------------------
    def _lr_at(self, it: Tensor) -> Tensor:
        # index_select, not table[it]: indexing with a 0-d tensor may turn it into a host int (a sync)
        return self.lr_table.index_select(0, it.view(1)).view(())

    @staticmethod
    def _accuracy(flat_logits: Tensor, pixels: EvalPixels) -> tuple[Tensor, Tensor]:
        """(OA, mean unweighted cross-entropy) of the logits at ``pixels``."""
        lg = flat_logits.index_select(1, pixels.pixels).t().float()  # (M, K)
        oa = (lg.argmax(dim=1) == pixels.classes).float().mean()
        return oa, F.cross_entropy(lg, pixels.classes)

    @torch.no_grad()
    def _bookkeeping(self, logits: Tensor) -> None:
        it = self.it
        e = self.epoch_iterations
        is_eval = (it > 0) & ((it % e == 0) | (it == self.iterations))
        flat = logits[0].reshape(logits.shape[1], -1)
        nan = torch.full((), float("nan"), device=self.device)
        val_oa, val_ce = self._accuracy(flat, self.val_pixels) if self.val_pixels is not None else (nan, nan)
        test_oa, _ = self._accuracy(flat, self.eval_pixels) if self.eval_pixels is not None else (nan, nan)
        mean_loss = self.epoch_loss / self.epoch_count.clamp_min(1.0)
        if self.selection == "validation":
            score = torch.stack([val_oa, -val_ce])
        elif self.selection == "fit":
            score = torch.stack([val_oa, torch.zeros_like(val_oa)])
        elif self.selection == "paper":
            score = torch.stack([test_oa, torch.zeros_like(test_oa)])
        else:
            score = torch.stack([-mean_loss, torch.zeros_like(mean_loss)])
        best = self.best_score
        better = (score[0] > best[0]) | ((score[0] == best[0]) & (score[1] > best[1]))
        if self.selection == "fit":  # keep the latest of equally good epochs; patience counts from the last gain
            keep_new = is_eval & (score[0] >= best[0])
        else:
            keep_new = is_eval & better
        improved = is_eval & better
        imp = keep_new.float()
        gain = improved.float()
        # best = best * (1 - imp) + p * imp: an exact select for finite weights, without a host branch
        torch._foreach_mul_(self.best_params, 1.0 - imp)
        torch._foreach_addcmul_(self.best_params, self.optimizer.params, [imp] * len(self.best_params))
        self.best_score.copy_(torch.where(keep_new, score, best))
        self.since_best.copy_(torch.where(is_eval, (self.since_best + 1.0) * (1.0 - gain), self.since_best))
        row = torch.where(is_eval, torch.div(it - 1, e, rounding_mode="floor"), self.evaluations)
        lr_prev = self._lr_at((it - 1).clamp_min(0))
        values = torch.stack([mean_loss, val_oa, val_ce, test_oa, lr_prev, imp, self.since_best])
        self.history.index_copy_(0, row.view(1), values.view(1, -1))
        keep = 1.0 - is_eval.float()
        self.epoch_loss.mul_(keep)
        self.epoch_count.mul_(keep)

    def _body(self) -> Tensor:
        self.model.train()
        with autocast(self.device, self.amp):
            logits, z = self.model(self.x)
        self._bookkeeping(logits.detach())
        mask = self.draw_mask()
        loss = self.loss_fn(logits.float(), z.float(), self.target, mask)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step(self._lr_at(self.it))
        with torch.no_grad():
            self.epoch_loss.add_(loss.detach())
            self.epoch_count.add_(1.0)
            self.it.add_(1)
        return loss

    def run(self) -> None:
        """One iteration: replay the captured graph when there is one, otherwise run eagerly."""
        if self._graph is not None:
            self._graph.replay()
        else:
            self._body()

    # -- state ----------------------------------------------------------------------------------
    def state_tensors(self) -> list[Tensor]:
        """Every tensor a step mutates (restored after the graph warm-up)."""
        return [
            *self.optimizer.params,
            *self.optimizer.buffers,
            *self.best_params,
            self.it,
            self.best_score,
            self.since_best,
            self.epoch_loss,
            self.epoch_count,
            self.history,
        ]

    @torch.no_grad()
    def restore_best(self) -> None:
        """Copy the best-scoring weights back into the model ("save best, restore at end")."""
        torch._foreach_copy_(self.optimizer.params, self.best_params)

    def enable_graph(self, warmup: int = 2, generator: torch.Generator | None = None) -> bool:
        """Capture the step in a CUDA graph; returns False (and stays eager) where that is not possible."""
        graph = capture_graph(self._body, self.state_tensors(), self.optimizer.zero_grad, warmup, generator)
        self._graph = graph
        return graph is not None


def capture_graph(
    body: Callable[[], object],
    state: Sequence[Tensor],
    zero_grad: Callable[[], None],
    warmup: int = 2,
    generator: torch.Generator | None = None,
) -> torch.cuda.CUDAGraph | None:
    """Capture ``body`` (forward + backward + update) in a CUDA graph; None if unsupported or failing.

    ``body`` mutates ``state``; it is warmed up ``warmup`` times on a side stream (cuDNN autotuning,
    allocator warm-up), then captured, and every tensor of ``state`` is restored to its value before
    the warm-up, so the first replay starts exactly where the caller left off. Gradients are set to
    None before capture so backward allocates them from the graph's private pool.
    """
    if not state or state[0].device.type != "cuda":
        return None
    snapshot = [t.detach().clone() for t in state]
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                zero_grad()
                body()
        torch.cuda.current_stream().wait_stream(side)
        zero_grad()
        graph = torch.cuda.CUDAGraph()
        if generator is not None and generator.device.type == "cuda":
            graph.register_generator_state(generator)
        with torch.cuda.graph(graph):
            body()
    except Exception as exc:  # capture is an optimisation: any failure means eager execution
        log.warning("CUDA graph capture failed (%s); training continues without it.", exc)
        graph = None
        torch.cuda.synchronize()
    with torch.no_grad():
        for t, v in zip(state, snapshot, strict=True):
            t.copy_(v)
    return graph


# -- spectral depth folded into channels ----------------------------------------------------------
def depth_band(depth: int, kernel_depth: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(depth_out, depth_in, kernel_depth) 0/1 tensor: 1 where input depth ``i`` feeds output ``o`` via tap ``k``.

    A 3-D convolution with kernel depth kd and zero "same" padding along depth maps input depth
    i to output depth o through tap k = i - o + kd // 2 when 0 <= k < kd; taps falling outside
    the volume read zeros, so they are simply absent here.
    """
    o = torch.arange(depth, device=device)[:, None, None]
    i = torch.arange(depth, device=device)[None, :, None]
    k = torch.arange(kernel_depth, device=device)[None, None, :]
    return (i - o + kernel_depth // 2 == k).to(dtype)


def fold_depth_weight(weight: Tensor, depth: int) -> Tensor:
    """3-D conv weight (Co, Ci, kd, kh, kw) -> banded 2-D weight (Co*depth, Ci*depth, kh, kw).

    With activations (N, C, D, H, W) viewed as (N, C*D, H, W) (channel c*D + d, a free reshape),
    ``conv2d(x2d, fold_depth_weight(w, D))`` equals ``conv3d(x, w)`` with "same" depth padding.
    Why: the 3-D convolutions of the ConvLSTM have 1-4 input and 16 output channels, shapes on
    which GPU tensor cores (and CPU vector units) idle; the folded 2-D convolution has D times more
    channels (48-512) at the price of kd/D useful multiply-adds, which still runs several times
    faster. The fold is differentiable, so the 3-D weights stay the trained parameters.
    """
    co, ci, kd, kh, kw = weight.shape
    band = depth_band(depth, kd, weight.device, weight.dtype)
    return torch.einsum("cikhw,dek->cdiehw", weight, band).reshape(co * depth, ci * depth, kh, kw)


class _Conv3dFoldedWeightGrad(torch.autograd.Function):
    """``conv3d`` with "same" depth padding whose weight gradient is computed in the folded 2-D form.

    Why (CPU, oneDNN, 2 cores, measured by ``benchmarks/bench_train.py --device cpu``): the ConvLSTM's
    3-D convolutions (1-4 input channels) run forward and input-gradient fast as 3-D convolutions
    (the whole-scene forward takes 0.42 s unfolded vs 1.1 s folded at Salinas-A), but their 3-D
    weight gradient is 5-12x slower than the weight gradient of the folded 2-D convolution, which
    wastes D/kd of its multiply-adds on zeros and still wins. So the forward and the input gradient
    stay 3-D and only the weight gradient takes the folded path, projected back onto the 3-D
    weight through the band (the adjoint of ``fold_depth_weight``). The result equals conv3d's
    autograd to float32 rounding (tests/engine/test_model.py).
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, int, int]) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding = tuple(padding)
        ctx.has_bias = bias is not None
        return F.conv3d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.nn.grad.conv3d_input(x.shape, weight, grad_out, padding=ctx.padding)
        if ctx.needs_input_grad[1]:
            n, ci, d, h, w = x.shape
            co, _, kd, kh, kw = weight.shape
            x2 = x.reshape(n, ci * d, h, w).contiguous(memory_format=torch.channels_last)
            g2 = grad_out.reshape(n, co * d, h, w).contiguous(memory_format=torch.channels_last)
            folded = torch.nn.grad.conv2d_weight(x2, (co * d, ci * d, kh, kw), g2, padding=ctx.padding[1:])
            band = depth_band(d, kd, folded.device, folded.dtype)
            grad_w = torch.einsum("cdiehw,dek->cikhw", folded.view(co, d, ci, d, kh, kw), band).contiguous()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum(dim=(0, 2, 3, 4))
        return grad_x, grad_w, grad_b, None


def conv3d_folded_weight_grad(x: Tensor, conv: nn.Conv3d) -> Tensor:
    """``conv(x)`` for a "same"-padded ``nn.Conv3d``, with the folded weight gradient (see above)."""
    if conv.padding[0] != conv.kernel_size[0] // 2 or conv.stride != (1, 1, 1) or conv.groups != 1:
        raise ValueError("conv3d_folded_weight_grad needs a stride-1, 'same'-padded, ungrouped Conv3d.")
    return _Conv3dFoldedWeightGrad.apply(x, conv.weight, conv.bias, tuple(conv.padding))
