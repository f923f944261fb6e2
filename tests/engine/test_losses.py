"""Loss: class-balanced weights, masked CE and the vectorised statistical loss against a loop version."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rssgl_qgis.core.network.losses import (
    MEAN_DISTANCE_WEIGHT,
    RssglLoss,
    class_balanced_weights,
    masked_cross_entropy,
    statistical_loss,
)


def _loop_statistical_loss(z, target, mask, k):
    """The authors' loop (per class, per pair), restricted to classes present in the minibatch and,
    for the scatter term, to classes with >= 2 pixels (the authors divide by n-1 = 0 there)."""
    feats = z[0].reshape(z.shape[1], -1)
    t = target.reshape(-1)
    m = mask.reshape(-1) > 0
    variance, n_var, means = 0.0, 0, {}
    for c in range(k):
        sel = feats[:, m & (t == c)]
        if sel.shape[1] == 0:
            continue
        mu = sel.mean(dim=1, keepdim=True)
        means[c] = mu
        if sel.shape[1] >= 2:
            variance = variance + ((sel - mu) ** 2).sum() / (sel.shape[1] - 1)
            n_var += 1
    diver = 0.0
    for a, b in itertools.combinations(sorted(means), 2):
        diver = diver - torch.dist(means[a], means[b], p=2)
    return variance / max(n_var, 1) + MEAN_DISTANCE_WEIGHT * diver


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_statistical_loss_matches_loop_version_with_gradients(seed):
    g = torch.Generator().manual_seed(seed)
    k, d, h, w = 5, 7, 9, 11
    z = torch.randn(1, d, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, k, (1, h, w), generator=g)
    mask = (torch.rand(1, h, w, generator=g) < 0.3).double()
    # class 3: exactly one minibatch pixel; class 4: none
    mask[target == 3] = 0
    mask.view(-1)[torch.nonzero((target == 3).view(-1))[0]] = 1
    mask[target == 4] = 0
    fast = statistical_loss(z, target, mask, k)
    (g_fast,) = torch.autograd.grad(fast, z)
    slow = _loop_statistical_loss(z, target, mask, k)
    (g_slow,) = torch.autograd.grad(slow, z)
    torch.testing.assert_close(fast, slow, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(g_fast, g_slow, atol=1e-10, rtol=1e-10)


def test_statistical_loss_is_finite_for_empty_and_singleton_minibatches():
    z = torch.randn(1, 4, 6, 6, requires_grad=True)
    target = torch.zeros(1, 6, 6, dtype=torch.long)
    for mask in (torch.zeros(1, 6, 6), torch.zeros(1, 6, 6).index_put_((torch.tensor([0]),) * 3, torch.ones(1))):
        loss = statistical_loss(z, target, mask, 3)
        (grad,) = torch.autograd.grad(loss, z)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_class_balanced_weights_follow_the_effective_number_formula():
    counts = np.array([5, 72, 42, 12])
    w = class_balanced_weights(counts, 0.9999).double().numpy()
    raw = (1 - 0.9999) / (1 - 0.9999 ** counts.astype(float))
    np.testing.assert_allclose(w, raw / raw.sum() * 4, rtol=1e-6)
    assert w.sum() == pytest.approx(4.0) and w[0] > w[1]  # rare classes weigh more
    with pytest.raises(ValueError, match="beta"):
        class_balanced_weights(counts, 1.0)


def test_masked_cross_entropy_is_the_weighted_mean_over_minibatch_pixels():
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 4, 5)
    target = torch.randint(0, 3, (1, 4, 5))
    mask = (torch.rand(1, 4, 5) < 0.5).float()
    weight = torch.tensor([0.5, 1.0, 1.5])
    expected = (F.cross_entropy(logits, target, weight=weight, reduction="none") * mask).sum() / mask.sum()
    torch.testing.assert_close(masked_cross_entropy(logits, target, mask, weight), expected)
    assert masked_cross_entropy(logits, target, torch.zeros_like(mask), weight) == 0  # no NaN on empty masks


def test_rssgl_loss_combines_both_terms():
    torch.manual_seed(0)
    logits, z = torch.randn(1, 3, 8, 8), torch.randn(1, 6, 8, 8)
    target = torch.randint(0, 3, (1, 8, 8))
    mask = torch.ones(1, 8, 8)
    crit = RssglLoss(np.array([10, 20, 30]), stat_weight=0.01)
    expected = masked_cross_entropy(logits, target, mask, crit.class_weight) + 0.01 * statistical_loss(
        z, target, mask, 3
    )
    torch.testing.assert_close(crit(logits, z, target, mask), expected)
