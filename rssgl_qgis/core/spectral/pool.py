"""How RSSGL's and the spectral model's class probabilities are pooled into the map's (core/training/cross_validation.py
says why and how the pool is chosen).

A module of its own, importable without torch (torch is imported where a pool is computed): the
workflow holds a cross-validation's PoolSettings before any torch code runs, and the plugin loads on a
machine that has not installed torch yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["DEFAULT_BLEND", "EPS", "PoolSettings", "blend_label", "combine"]

#: The floor of a probability before its logarithm is taken.
EPS = 1e-6
#: RSSGL's weight in the pool when no cross-validation chooses one (core.training.cross_validation).
DEFAULT_BLEND = 0.5


def blend_label(weight: float) -> str:
    """The candidate's name in logs and reports."""
    if weight >= 1.0:
        return "RSSGL"
    if weight <= 0.0:
        return "spectral (per-pixel kernel model)"
    return f"RSSGL x {weight:g} + spectral x {1 - weight:g}"


def combine(p_rssgl: Tensor, p_spectral: Tensor | None, weight: float, dim: int = 1,
            temperature: float = 1.0, spectral_temperature: float = 1.0) -> Tensor:
    """Log-linear pool along ``dim``: softmax(w / T * log p_rssgl + (1 - w) / T_s * log p_spectral).

    ``temperature`` T calibrates RSSGL, which fits its few training pixels to near certainty and
    would otherwise outvote the spectral model wherever it is confidently wrong; ``spectral_temperature``
    T_s calibrates the spectral model the same way. Both are fitted on the cross-validated probabilities
    (1 = as trained). w = 0 returns the spectral model alone (calibrated: the same classes win).
    """
    import torch

    if p_spectral is None or weight >= 1.0:
        return _sharpened(p_rssgl, temperature, dim)
    if weight <= 0.0:
        return _sharpened(p_spectral, spectral_temperature, dim)
    logp = (weight / temperature) * torch.log(p_rssgl.clamp_min(EPS)) \
        + ((1.0 - weight) / spectral_temperature) * torch.log(p_spectral.clamp_min(EPS))
    return torch.softmax(logp, dim=dim)


@dataclass(frozen=True)
class PoolSettings:
    """How the two models' probabilities are pooled: RSSGL's weight and both models' temperatures.

    The three are chosen together (by cross-validation, or the defaults), stored together in the model
    file and used together by every prediction path, so they travel as one value: a classifier, the
    cross-validation's result and the tile predictor each hold one of these rather than three fields
    that must be kept in step. The defaults (RSSGL alone, as trained) are what a model file written
    before the pool was introduced means.
    """

    weight: float = 1.0
    temperature: float = 1.0
    spectral_temperature: float = 1.0

    @property
    def label(self) -> str:
        return blend_label(self.weight)

    @property
    def spectral_only(self) -> bool:
        """RSSGL gets no vote: the pool is the spectral model's probabilities alone (calibrated), so prediction
        need not run the network at all (core/prediction/tile_predictor.py's per-pixel path)."""
        return self.weight <= 0.0

    @property
    def rssgl_as_trained(self) -> bool:
        """RSSGL alone, uncalibrated: its probabilities are the pool's, nothing to compute."""
        return self.weight >= 1.0 and self.temperature == 1.0

    def pooled(self, p_rssgl: Tensor | None, p_spectral: Tensor | None, dim: int = 1) -> Tensor:
        """``combine`` with these settings (``p_rssgl`` may be None where ``spectral_only``: it is not read)."""
        return combine(p_rssgl, p_spectral, self.weight, dim=dim, temperature=self.temperature,
                       spectral_temperature=self.spectral_temperature)


def _sharpened(p: Tensor, temperature: float, dim: int) -> Tensor:
    """softmax(log p / T) along ``dim``; ``p`` itself for T = 1."""
    import torch

    if temperature == 1.0:
        return p
    return torch.softmax(torch.log(p.clamp_min(EPS)) / temperature, dim=dim)
