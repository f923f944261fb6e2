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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
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

#: Columns of ``TrainStep.history`` (one row per epoch).
HISTORY_COLUMNS = ("loss", "score", "lr", "improved")


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
    """Pixels used to score the model each epoch: flat indices into the padded H*W grid and class indices."""

    pixels: Tensor  # (M,) long
    classes: Tensor  # (M,) long


class TrainStep:
    """One whole-scene training iteration with its evaluation bookkeeping, all on the device.

    ``run()`` performs, in this order: (1) forward on the whole scene; (2) if the iteration counter
    is a positive multiple of ``epoch_iterations``, score the CURRENT weights (those after the
    previous epoch's last update) from this forward's logits, and if the score beats the best so
    far, copy the weights into ``best_params`` (an arithmetic select, no host ``if``); (3) loss on a
    fresh H-B minibatch, backward and SGD with ``lr_table[it]``; (4) ``it += 1``.

    Scores: with ``eval_pixels`` the overall accuracy there; without, minus the mean training loss
    of the epoch (selection on training loss). Per epoch a row of ``history`` is written (see
    ``HISTORY_COLUMNS``). Run one extra iteration with learning rate 0 after the last one to score
    the final weights (``lr_table`` has ``iterations + 1`` entries, the last 0).
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
        epoch_iterations: int = 10,
        momentum: float = 0.9,
        weight_decay: float = 1e-3,
        amp: bool = False,
        eval_pixels: EvalPixels | None = None,
    ) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.x = x
        self.target = target
        self.draw_mask = draw_mask
        self.lr_table = lr_table
        self.epoch_iterations = int(epoch_iterations)
        self.amp = bool(amp)
        self.eval_pixels = eval_pixels
        self.device = x.device
        self.optimizer = DeviceSGD(list(model.parameters()), momentum, weight_decay)
        self.best_params = [p.detach().clone() for p in self.optimizer.params]
        n_epochs = (lr_table.numel() - 1) // self.epoch_iterations + 1
        dev = self.device
        self.it = torch.zeros((), dtype=torch.long, device=dev)
        self.best_score = torch.full((), -float("inf"), device=dev)
        self.best_epoch = torch.zeros((), dtype=torch.long, device=dev)
        self.epoch_loss = torch.zeros((), device=dev)
        self.history = torch.zeros(n_epochs + 1, len(HISTORY_COLUMNS), device=dev)  # last row: scratch
        self.last_loss = torch.zeros((), device=dev)
        self._graph: torch.cuda.CUDAGraph | None = None

    # -- the step -------------------------------------------------------------------------------
    def _score(self, logits: Tensor) -> Tensor:
        if self.eval_pixels is None:
            return -self.epoch_loss / self.epoch_iterations
        flat = logits[0].reshape(logits.shape[1], -1)
        pred = flat.index_select(1, self.eval_pixels.pixels).argmax(dim=0)
        return (pred == self.eval_pixels.classes).float().mean()

    def _lr_at(self, it: Tensor) -> Tensor:
        # index_select, not table[it]: indexing with a 0-d tensor may turn it into a host int (a sync)
        return self.lr_table.index_select(0, it.view(1)).view(())

    def _body(self) -> Tensor:
        it = self.it
        e = self.epoch_iterations
        self.model.train()
        with autocast(self.device, self.amp):
            logits, z = self.model(self.x)
        with torch.no_grad():
            is_eval = (it > 0) & (it % e == 0)
            score = self._score(logits.detach())
            improved = is_eval & (score > self.best_score)
            imp = improved.float()
            # best = best * (1 - imp) + p * imp: an exact select for finite weights, no host branch
            torch._foreach_mul_(self.best_params, 1.0 - imp)
            torch._foreach_addcmul_(self.best_params, self.optimizer.params, [imp] * len(self.best_params))
            self.best_score.copy_(torch.where(improved, score, self.best_score))
            epoch = torch.div(it, e, rounding_mode="floor")
            self.best_epoch.copy_(torch.where(improved, epoch, self.best_epoch))
            row = torch.where(is_eval, epoch - 1, torch.full_like(epoch, self.history.shape[0] - 1))
            lr_prev = self._lr_at((it - 1).clamp_min(0))
            values = torch.stack([self.epoch_loss / e, score, lr_prev, imp])
            self.history.index_copy_(0, row.view(1), values.view(1, -1))
            self.epoch_loss.mul_(1.0 - is_eval.float())
        mask = self.draw_mask()
        loss = self.loss_fn(logits, z, self.target, mask)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step(self._lr_at(it))
        with torch.no_grad():
            self.epoch_loss.add_(loss.detach())
            self.last_loss.copy_(loss.detach())
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
        """Every tensor a step mutates (restored after graph warm-up)."""
        return [
            *self.optimizer.params,
            *self.optimizer.buffers,
            *self.best_params,
            self.it,
            self.best_score,
            self.best_epoch,
            self.epoch_loss,
            self.history,
            self.last_loss,
        ]

    @torch.no_grad()
    def restore_best(self) -> None:
        """Copy the best-scoring weights back into the model ("save best, restore at end")."""
        torch._foreach_copy_(self.optimizer.params, self.best_params)

    def enable_graph(self, warmup: int = 2, generator: torch.Generator | None = None) -> bool:
        """Capture the step in a CUDA graph; returns False (and stays eager) when that is not possible."""
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
