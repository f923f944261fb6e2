"""The stage-1 ConvLSTM output of each tile, kept across the sweeps of one tiled classification on the CPU.

On the CPU, RSSGL's first ConvLSTM (full resolution, kernel 3x5x5) takes 71 % of a forward pass
(``benchmarks/profile_cpu_forward.py``), and seam-free tiled classification runs every tile through
the network once per statistics pass plus once to classify (core/prediction/statistics_passes.py). That
ConvLSTM's output depends on one whole-scene statistic only, the stem's GroupNorm, which needs
nothing but the stem's convolution. So a cheap stem-only pass fixes that statistic first
(``SceneStatistics.frozen``), and from then on each tile's ConvLSTM output is the same in every
sweep: it is computed once and kept here (up to a memory budget; tiles beyond it are recomputed),
and later sweeps run only the layers after it. The numbers are those of the same computation done
again; what changes is that the stem's statistics are gathered before, not refined along with, the
others.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterator, Sequence

import torch
from torch import Tensor, nn

__all__ = ["Stage1Cache"]


class Stage1Cache:
    """Caches ``network.stages[0].lstm`` outputs per tile key while ``attached()``.

    Before each forward call set ``keys`` to the batch's tile keys (one per batch element); a batch
    whose every key is cached is answered from the cache, any other is computed and its tiles stored.
    """

    def __init__(self, network: nn.Module, budget_bytes: int):
        self.lstm = network.stages[0].lstm
        self.stem_norm_name = next(n for n, m in network.named_modules() if m is network.stem[1])
        self.budget = int(budget_bytes)
        self.keys: Sequence[Hashable] = ()
        self.store: dict[Hashable, Tensor] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def applies(network: object, device: torch.device) -> bool:
        """Only RSSGL networks on the CPU: on a GPU the sweeps are bound by reading, not by this layer."""
        from ..network.model import RSSGL

        return device.type == "cpu" and isinstance(network, RSSGL)

    @contextlib.contextmanager
    def attached(self) -> Iterator[Stage1Cache]:
        lstm = self.lstm

        def forward(x: Tensor) -> Tensor:
            keys = list(self.keys)
            if keys and len(keys) == x.shape[0] and all(k in self.store for k in keys):
                self.hits += len(keys)
                return torch.cat([self.store[k] for k in keys])
            out = type(lstm).forward(lstm, x)
            self.misses += x.shape[0]
            if len(keys) == x.shape[0]:
                for i, k in enumerate(keys):
                    size = out[i].numel() * out.element_size()
                    if k not in self.store and self.bytes + size <= self.budget:
                        self.store[k] = out[i : i + 1].clone()
                        self.bytes += size
            return out

        lstm.forward = forward
        try:
            yield self
        finally:
            del lstm.forward
            self.store.clear()
            self.bytes = 0
