"""``TilePredictor``: what tiled prediction needs from a trained model, apart from the tiling itself.

Why a module of its own: core/prediction/inference.py runs the tiles (planning, reading ahead, out-of-memory
retries, statistics passes, stitching); this is the model side of every tile - normalising a raw
batch with the training's band statistics, padding it, running RSSGL, pooling the spectral model in,
and turning probabilities into labels and confidences - which the layer-by-layer CPU path
(core/prediction/layerwise.py) and the tests use too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..spectral.pool import PoolSettings
from .tiling import PAD_MULTIPLE, round_up

__all__ = ["TilePredictor"]


@dataclass
class TilePredictor:
    """What tiled prediction needs from a trained model, in one place.

    ``network`` maps a normalised batch (N, B, h, w) to logits (N, K, h, w) or a tuple whose first
    item is the logits (RSSGL returns (logits, z)). ``band_mean``/``band_std`` are the training
    statistics the raster is normalised with; ``classes`` the original class values (index k ->
    classes[k]).
    """

    network: Callable[[Tensor], Any] | None  # None: a stage-one model (the spectral model only)
    band_mean: np.ndarray
    band_std: np.ndarray
    classes: np.ndarray
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    amp: bool = False
    wavelengths: Sequence[float] | None = None
    spectral: Any = None  # core.spectral.spectral_model.SpectralModel pooled with the network as ``pool`` says
    pool: PoolSettings = PoolSettings()
    #: False during the statistics passes: their results are dropped, so the spectral model is not evaluated
    pool_spectral: bool = True
    #: False: run the network even where RSSGL has no vote (benchmarks and tests comparing both paths)
    per_pixel: bool = True

    def __post_init__(self) -> None:
        self.band_mean = np.asarray(self.band_mean, dtype=np.float64)
        self.band_std = np.asarray(self.band_std, dtype=np.float64)
        self.classes = np.asarray(self.classes)
        self.device = torch.device(self.device)
        if self.band_mean.shape != self.band_std.shape or self.band_mean.ndim != 1:
            raise ValueError("band_mean and band_std must be 1-D arrays of the same length (one value per band).")
        if self.classes.ndim != 1 or self.classes.size < 2:
            raise ValueError(f"A classifier needs at least 2 class values, got {self.classes.tolist()}.")
        self._mean_t = torch.as_tensor(self.band_mean, dtype=torch.float32, device=self.device)[None, :, None, None]
        self._inv_std_t = (1.0 / torch.as_tensor(self.band_std, dtype=torch.float32, device=self.device))[
            None, :, None, None
        ]
        self._classes_t = torch.as_tensor(self.classes.astype(np.int64), device=self.device)

    @property
    def bands(self) -> int:
        return int(self.band_mean.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.classes.shape[0])

    @classmethod
    def from_classifier(cls, classifier: Any) -> TilePredictor:
        """Wrap a fitted ``RssglClassifier`` (uses its network, device, statistics and AMP setting)."""
        if isinstance(classifier, TilePredictor):
            return classifier
        model = getattr(classifier, "model_", None)
        spectral = getattr(classifier, "spectral_", None)
        if model is None and spectral is None:
            raise RuntimeError("The classifier is not trained yet: train it or load a model file before classifying.")
        if model is not None:
            model.eval()
            device = next(model.parameters()).device
        else:  # stage one: the spectral model only
            device = spectral.centers.device
        params = getattr(classifier, "params_", None)
        amp = device.type == "cuda" and getattr(params, "amp", "auto") == "auto"
        band_info = getattr(classifier, "band_info_", None) or {}
        return cls(
            network=model,
            band_mean=classifier.band_mean_,
            band_std=classifier.band_std_,
            classes=classifier.classes_,
            device=device,
            amp=amp,
            wavelengths=band_info.get("wavelengths"),
            spectral=spectral,
            pool=getattr(classifier, "pool_", PoolSettings()),
        )

    def normalise(self, raw: Tensor, nodata: Tensor | None, extra_valid: Tensor | None) -> tuple[Tensor, Tensor]:
        """Raw (N, B, h, w) in the raster's dtype, on the device -> (normalised float32, valid (N, h, w)).

        Invalid pixels (NaN/inf or ``nodata`` in any band, or False in ``extra_valid``) become 0 in
        every band after normalisation, the convention the network was trained with.
        """
        x = raw.to(torch.float32)
        valid = torch.isfinite(x).all(dim=1)
        if nodata is not None:
            valid &= ~(x == nodata[None, :, None, None]).any(dim=1)
        if extra_valid is not None:
            valid &= extra_valid
        x = (x - self._mean_t) * self._inv_std_t
        x = torch.where(valid[:, None], x, torch.zeros((), device=x.device))
        return x, valid

    @property
    def spectral_only(self) -> bool:
        """The map is the spectral model's alone (RSSGL's pool weight 0, or a stage-one model without a network):
        every pixel is classified on its own, the network never runs (core/prediction/inference.py then reads
        tiles without halos and runs no statistics passes)."""
        return self.spectral is not None and (self.network is None or (self.per_pixel and self.pool.spectral_only))

    def probabilities(self, x: Tensor) -> Tensor:
        """Softmax (N, K, h, w) float32 of a normalised batch, padded to multiples of 16 internally; where
        ``spectral_only``, the spectral model's calibrated probabilities, pixel by pixel, without the network."""
        if self.spectral_only:
            with torch.no_grad():
                return self.pool.pooled(None, self.spectral.probabilities_map(x).float())
        h, w = x.shape[-2:]
        ph, pw = round_up(h, PAD_MULTIPLE) - h, round_up(w, PAD_MULTIPLE) - w
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.network(x)
        logits = out[0] if isinstance(out, tuple | list) else out
        proba = torch.softmax(logits[:, :, :h, :w].float(), dim=1)
        if not self.pools_spectral:
            return self.pooled(proba, None)
        with torch.no_grad():  # fp32 kernel distances, outside autocast
            return self.pooled(proba, self.spectral.probabilities_map(x[:, :, :h, :w]))

    @property
    def pools_spectral(self) -> bool:
        """Whether the spectral model's probabilities enter the pool (not during statistics passes)."""
        return self.spectral is not None and self.pool.weight < 1.0 and self.pool_spectral

    def pooled(self, proba: Tensor, spectral: Tensor | None) -> Tensor:
        """RSSGL's (N, K, h, w) softmax pooled with the spectral model's (None: RSSGL alone), calibrated."""
        return self.pool.pooled(proba, spectral, dim=1)

    def outputs(self, proba: Tensor, valid: Tensor, with_probabilities: bool
                ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Labels (original class values, 0 where invalid), confidence (-1 where invalid) and, if asked for,
        the probabilities (-1 where invalid) of an (N, K, h, w) batch with its (N, h, w) valid mask."""
        conf, idx = proba.max(dim=1)
        labels = torch.where(valid, self._classes_t[idx], torch.zeros((), dtype=self._classes_t.dtype,
                                                                       device=proba.device))
        conf = torch.where(valid, conf, torch.full((), -1.0, device=conf.device))
        if not with_probabilities:
            return labels, conf, None
        return labels, conf, torch.where(valid[:, None], proba, torch.full((), -1.0, device=proba.device))
