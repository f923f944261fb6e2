"""RSSGL loss: class-balanced cross-entropy + lambda * statistical loss on the final features z.

Everything here has data-independent shapes: the minibatch is a per-pixel mask over the whole
(padded) scene, per-class sums are matrix products with a fixed (pixels x K) membership matrix
(zero outside the minibatch), and classes with fewer than two minibatch pixels are switched off by
arithmetic masks instead of host-side ``if``s. That keeps the training step free of host syncs and
capturable in a CUDA graph.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["class_balanced_weights", "statistical_loss", "masked_cross_entropy", "RssglLoss"]

#: Weight of the (negative) sum of pairwise class-mean distances inside the statistical loss.
MEAN_DISTANCE_WEIGHT = 1e-3


def class_balanced_weights(counts: np.ndarray | Tensor, beta: float = 0.9999) -> Tensor:
    """Effective-number class weights (Cui et al. 2019): w_k = (1-beta)/(1-beta^n_k), normalised to sum K.

    Classes with zero training pixels get weight 0 (they never appear in a minibatch anyway).
    """
    n = torch.as_tensor(np.asarray(counts), dtype=torch.float64)
    if n.ndim != 1 or n.numel() < 1:
        raise ValueError(f"Expected one training pixel count per class, got shape {tuple(n.shape)}.")
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta}.")
    effective = 1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), n)
    w = torch.where(n > 0, (1.0 - beta) / effective.clamp_min(1e-300), torch.zeros_like(n))
    w = w / w.sum() * n.numel()
    return w.float()


def masked_cross_entropy(logits: Tensor, target: Tensor, mask: Tensor, weight: Tensor) -> Tensor:
    """Weighted per-pixel CE, summed over the minibatch mask and divided by the mask's pixel count.

    ``target`` holds class indices (pixels outside the training set may hold any value; use 0),
    ``mask`` is 1.0 at minibatch pixels. An empty mask gives 0 instead of NaN.
    """
    ce = F.cross_entropy(logits.float(), target.clamp_min(0), weight=weight, reduction="none")
    mask = mask.to(ce.dtype)
    return (ce * mask).sum() / mask.sum().clamp_min(1.0)


def statistical_loss(features: Tensor, target: Tensor, mask: Tensor, num_classes: int) -> Tensor:
    """Mean within-class scatter minus 1e-3 * sum of pairwise distances between class means.

    features: (N, D, H, W) final feature map z; target: (N, H, W) class indices; mask: (N, H, W)
    minibatch mask. For each class k with n_k >= 2 minibatch pixels, its term is
    sum_i ||z_i - mu_k||^2 / (n_k - 1); the loss averages these over such classes and subtracts
    1e-3 * sum_{k<t} ||mu_k - mu_t||_2 over pairs of classes present in the minibatch.
    """
    d = features.shape[1]
    # at least float32 (bf16 features under autocast are upcast), float64 stays float64
    z = features.to(torch.promote_types(features.dtype, torch.float32)).transpose(0, 1).reshape(d, -1)  # (D, P)
    w = mask.reshape(-1).to(z.dtype)
    # (P, K) minibatch membership; per-class sums are then matrix products, whose backward is a
    # matrix product too (a gather of the class means at every pixel had a slow scatter backward)
    member = F.one_hot(target.reshape(-1).clamp(0, num_classes - 1), num_classes).to(z.dtype) * w[:, None]
    counts = member.sum(0)
    sums = (z @ member).t()  # (K, D)
    sq_norms = (z * z).sum(0) @ member  # (K,) sum of ||z_i||^2 over each class's minibatch pixels
    means = sums / counts.clamp_min(1.0)[:, None]  # absent classes -> 0
    # sum_i ||z_i - mu_k||^2 = sum_i ||z_i||^2 - n_k ||mu_k||^2
    scatter = sq_norms - counts * (means * means).sum(1)
    has_var = (counts >= 2).to(z.dtype)
    variance = scatter / (counts - 1.0).clamp_min(1.0) * has_var
    within = variance.sum() / has_var.sum().clamp_min(1.0)
    present = (counts >= 1).to(z.dtype)
    iu = torch.triu_indices(num_classes, num_classes, offset=1, device=z.device)
    pair_on = present[iu[0]] * present[iu[1]]
    between = (torch.pdist(means) * pair_on).sum()
    return within - MEAN_DISTANCE_WEIGHT * between


class RssglLoss(nn.Module):
    """Class-balanced CE on the logits + ``stat_weight`` * statistical loss on z, computed in float32."""

    def __init__(self, train_counts: np.ndarray, stat_weight: float = 0.001, beta: float = 0.9999):
        super().__init__()
        self.num_classes = int(len(train_counts))
        self.stat_weight = float(stat_weight)
        self.register_buffer("class_weight", class_balanced_weights(train_counts, beta))

    def forward(self, logits: Tensor, features: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        loss = masked_cross_entropy(logits, target, mask, self.class_weight)
        if self.stat_weight:
            loss = loss + self.stat_weight * statistical_loss(features, target, mask, self.num_classes)
        return loss
