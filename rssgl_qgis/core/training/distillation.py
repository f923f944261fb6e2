"""Distillation: RSSGL also trains on the spectral model's surest pixels of the whole scene (issue 28).

Why: trained on two or four polygons per class, the whole-scene network learns where those polygons are rather
than what the classes look like (RSSGL alone is 14-18 OA points under the per-pixel spectral model on the EnMAP
polygon protocols, docs/RESULTS.md). The spectral model generalises better from the same polygons. Its most
confident pixels of each class it predicts, spread over the scene, give the network examples of every class
away from the polygons, so that it can add spatial context to what the spectral model knows instead of
memorising places. Issue 28 measured an untuned first try (30 % of each predicted class, at most 3000 pixels)
that lifted RSSGL alone by 17-19 points on two polygon scenes.

``pseudo_labels`` returns a label raster of those pixels (class values, 0 elsewhere); the sample pixels, the
validation pixels and invalid pixels are never pseudo-labelled. The spectral model itself is the one Train RSSGL
keeps (fitted once, before RSSGL, on the same sample pixels).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..prediction.scene_tensors import pixel_spectra, unlabelled_mask

__all__ = ["pseudo_labels"]

#: Pixels scored per chunk (kernel rows in memory: chunk x the spectral model's centres).
CHUNK = 65536


def pseudo_labels(spectral, x: Tensor, valid: np.ndarray, taken: tuple[np.ndarray | None, ...], classes: np.ndarray,
                  share: float, cap: int) -> np.ndarray:
    """(H, W) label raster: for each class the spectral model predicts, the ``share`` of its predicted pixels it is
    surest of (at most ``cap`` pixels over all classes, shared in proportion to the classes' predicted areas).

    ``spectral``: a fitted SpectralModel; ``x`` (1, B, hp, wp) the padded normalised scene; ``valid`` (H, W);
    ``taken``: label rasters whose labelled pixels are left alone (the samples, the validation pixels).
    """
    height, width = valid.shape
    free = unlabelled_mask(valid, taken)
    out = np.zeros((height, width), dtype=np.asarray(classes).dtype)
    idx = np.flatnonzero(free.ravel())
    if share <= 0 or cap <= 0 or idx.size == 0:
        return out
    rows, cols = np.divmod(idx, width)
    conf_parts, label_parts = [], []
    with torch.no_grad():
        for start in range(0, idx.size, CHUNK):
            chunk = slice(start, start + CHUNK)
            proba = spectral.probabilities(pixel_spectra(x, rows[chunk], cols[chunk]))
            c, lab = proba.max(dim=1)
            conf_parts.append(c.cpu())
            label_parts.append(lab.cpu())
    conf = torch.cat(conf_parts).numpy()
    label = torch.cat(label_parts).numpy()
    predicted = np.bincount(label, minlength=len(classes))
    want = np.floor(predicted * share).astype(np.int64)
    if want.sum() > cap:
        want = np.floor(want * (cap / want.sum())).astype(np.int64)
    picked = []
    for k in np.flatnonzero(want > 0):
        members = np.flatnonzero(label == k)
        order = np.argsort(-conf[members], kind="stable")[: int(want[k])]
        picked.append(members[order])
    if picked:
        chosen = np.concatenate(picked)
        out.ravel()[idx[chosen]] = np.asarray(classes)[label[chosen]]
    return out
