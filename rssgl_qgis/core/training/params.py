"""Training hyper-parameters: what a user or a model file can set, and what the trainer accepts.

Its own module so the model-file checks (core/training/model_checks.py) can rebuild a file's parameters without
importing the trainer (core/training/classifier.py imports them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..spectral.pool import DEFAULT_BLEND
from .window_training import DEFAULT_HALO

__all__ = ["TrainingParams", "SELECTION_MODES", "TRAINING_INPUTS", "PAPER_LABEL", "MIN_VALIDATION_PIXELS"]

SELECTION_MODES = ("fit", "validation", "paper", "loss")
TRAINING_INPUTS = ("auto", "whole", "windows")
#: Label attached to every output of the authors' (test-set) model selection.
PAPER_LABEL = "paper protocol (selection on test pixels)"
#: Below max(this, number of classes) validation pixels, "validation" selection falls back to "loss".
MIN_VALIDATION_PIXELS = 5
#: Distillation's share of each class the spectral model predicts (core/training/distillation.py): chosen on the
#: accuracy suite's exploration seeds (docs/RESULTS.md, "distillation"): RSSGL alone +5.7 to +23.8 OA points on the
#: EnMAP cells, the default +0.5 on average over eight cells (-0.34 .. +2.39).
DEFAULT_DISTILL_SHARE = 0.3


@dataclass
class TrainingParams:
    """Training hyper-parameters (defaults: the authors' Salinas / Pavia settings).

    ``poly_max_iterations`` is the horizon of the poly schedule lr * (1 - it / horizon) ** power;
    the authors use 1000 for every scene even when training stops at 600, so the learning rate
    never reaches 0. The horizon used is max(poly_max_iterations, iterations).
    ``accelerate`` is reserved for CUDA-graph capture (core/network/accel.py); "off" forces eager mode.
    ``spectral``: also fit the per-pixel spectral model (core/spectral/spectral_model.py) and pool its probabilities
    with RSSGL's, RSSGL weighted ``blend_weight`` (core/training/cross_validation.py; cross-validation may replace it).
    Never in "paper" mode, which reproduces the authors' method alone.
    ``training_input``: "whole" (the whole scene at every iteration, the authors' way), "windows"
    (core/training/window_training.py: windows around the samples, memory set by a budget) or "auto" (the
    whole scene when the device's memory holds it, else windows). ``window_core`` / ``window_batch``
    0 = automatic; ``window_halo`` is each window's context around its core.
    ``distill_share``: RSSGL also trains on that share of each class's surest pixels of the spectral model, at
    most ``distill_cap`` in all (core/training/distillation.py; whole-scene training with the spectral model only,
    never in "paper" mode; 0 = off).
    """

    iterations: int = 600
    lr: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 1e-3
    poly_power: float = 0.8
    poly_max_iterations: int = 1000
    per_class_batch: int = 10
    epoch_iterations: int = 10
    patience_epochs: int = 10
    fit_patience_epochs: int = 5
    stat_loss_weight: float = 0.001
    cb_beta: float = 0.9999
    selection: str = "fit"
    validation_share: float = 0.2
    seed: int = 2333
    device: str = "auto"
    amp: str = "auto"
    accelerate: str = "auto"
    spectral: bool = True
    blend_weight: float = DEFAULT_BLEND
    training_input: str = "auto"
    window_core: int = 0
    window_halo: int = DEFAULT_HALO
    window_batch: int = 0
    distill_share: float = DEFAULT_DISTILL_SHARE
    distill_cap: int = 3000

    def validate(self) -> None:
        """Raise ValueError for values the trainer cannot use."""
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}.")
        if self.lr <= 0:
            raise ValueError(f"The learning rate must be > 0, got {self.lr}.")
        if self.epoch_iterations < 1 or self.patience_epochs < 1 or self.per_class_batch < 1 or \
                self.fit_patience_epochs < 1:
            raise ValueError("epoch_iterations, patience_epochs, fit_patience_epochs and per_class_batch must be >= 1.")
        if self.selection not in SELECTION_MODES:
            raise ValueError(f"Unknown model selection '{self.selection}'; expected one of {SELECTION_MODES}.")
        if not 0.0 <= self.validation_share < 1.0:
            raise ValueError(f"The validation share must be in [0, 1), got {self.validation_share}.")
        if self.amp not in ("auto", "off"):
            raise ValueError(f"amp must be 'auto' or 'off', got '{self.amp}'.")
        if self.stat_loss_weight < 0:
            raise ValueError(f"The statistical-loss weight must be >= 0, got {self.stat_loss_weight}.")
        if self.training_input not in TRAINING_INPUTS:
            raise ValueError(f"Unknown training input '{self.training_input}'; expected one of {TRAINING_INPUTS}.")
        if self.window_core < 0 or self.window_halo < 0 or self.window_batch < 0:
            raise ValueError("window_core, window_halo and window_batch must be >= 0 (0 = automatic core and batch).")
        if not 0.0 <= self.distill_share < 1.0 or self.distill_cap < 0:
            raise ValueError(f"The distillation share must be in [0, 1) and its cap >= 0, got {self.distill_share}, "
                             f"{self.distill_cap}.")
        if not 0.0 <= self.blend_weight <= 1.0:
            raise ValueError(f"The RSSGL weight of the combination must be in [0, 1], got {self.blend_weight}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingParams:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
