"""Model files of a classifier: what a ``.rssgl`` file holds and how a classifier is rebuilt from one.

Why a module of its own: ``RssglClassifier`` (core/training/classifier.py) trains and predicts; writing and
reading model files is a separate job with its own checks (core/training/model_checks.py: everything is checked
before a network is allocated, and nothing is unpickled). The classifier's ``metadata``, ``save`` and ``load``
call these functions.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import RssglError
from ..modelfile import load_model, save_model
from ..network.device import choose_device, describe_device, set_cpu_threads
from ..network.model import RSSGL
from .model_checks import SPECTRAL_ONLY_CONTENTS, Damaged, checked_model_contents, checked_spectral

if TYPE_CHECKING:
    from .classifier import RssglClassifier

__all__ = ["classifier_metadata", "load_classifier", "save_classifier"]


def classifier_metadata(clf: RssglClassifier) -> dict[str, Any]:
    """Everything a model file needs besides the weights (JSON-serialisable)."""
    clf._check_fitted()
    from .. import __version__ as plugin_version  # local: avoids an import cycle at package import

    meta: dict[str, Any] = {
        "architecture": clf.config_.to_dict() if clf.config_ is not None else None,
        "band_count": int(clf.n_bands_),
        "band_names": clf.band_info_.get("names"),
        "band_wavelengths": clf.band_info_.get("wavelengths"),
        "band_indices": clf.band_info_.get("indices"),  # 1-based bands of the training raster used
        "band_fwhm": clf.band_info_.get("fwhm"),  # band widths (nm) where the raster records them
        "band_mean": [float(v) for v in clf.band_mean_],
        "band_std": [float(v) for v in clf.band_std_],
        "class_values": [int(v) for v in clf.classes_],
        "class_names": list(clf.class_names_),
        "class_colors": [list(c) for c in clf.class_colors_],
        "training_params": clf.params_.to_dict(),
        "train_counts": [int(v) for v in clf.train_counts_],
        "selection": clf.selection_,
        "selection_note": clf.selection_note_,
        "validation_metrics": clf.validation_metrics_,
        "best_epoch": int(clf.best_epoch_),
        "history": clf.history_,
        "device": clf.device_description_,
        "train_seconds": float(clf.train_seconds_),
        "fine_tuned_from": clf.fine_tuned_from_,
        "spectral": clf.spectral_.meta() if getattr(clf, "spectral_", None) is not None else None,
        "blend_weight": float(clf.pool_.weight),
        "rssgl_temperature": float(clf.pool_.temperature),
        "spectral_temperature": float(clf.pool_.spectral_temperature),
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "plugin": plugin_version},
        "created": getattr(clf, "created_", None) or _dt.datetime.now(_dt.UTC).isoformat(),
    }
    if clf.spectral_only:  # a stage-one file: no network tensors (model_checks refuses any)
        meta["model_contents"] = SPECTRAL_ONLY_CONTENTS
    clf.created_ = meta["created"]
    return meta


def save_classifier(clf: RssglClassifier, path) -> None:
    """Write a single-file ``.rssgl`` model (safetensors weights + JSON metadata), atomically."""
    state = {} if clf.model_ is None else {
        k: v.detach().cpu().contiguous() for k, v in clf.model_.state_dict().items()}
    if getattr(clf, "spectral_", None) is not None:
        state.update(clf.spectral_.state())
    save_model(path, state, classifier_metadata(clf))


def load_classifier(cls: type[RssglClassifier], path, device: str = "auto") -> RssglClassifier:
    """Rebuild a trained classifier from a ``.rssgl`` file (no unpickling).

    Everything is checked before the network is allocated: the metadata's types and lengths
    agree with each other (class values, names, colours; band count, statistics, band info),
    the declared architecture's parameter shapes (computed on the ``meta`` device, after the
    declared class and band counts were compared with the stored classifier layer) equal the
    stored tensors' shapes, and every weight is finite. Any contradiction is an RssglError
    "The model file '<path>' is damaged or inconsistent (...); retrain or use another file."
    """
    state, meta = load_model(path)
    spectral_state = {k: state.pop(k) for k in list(state) if k.startswith("spectral.")}
    try:
        config, fields_ = checked_model_contents(meta, state)
        spectral, pool = checked_spectral(meta, spectral_state, config)
    except Damaged as exc:
        raise RssglError(
            f"The model file '{path}' is damaged or inconsistent ({exc}); retrain or use another file."
        ) from None
    model = None
    if config is not None:  # None: a stage-one file (the spectral model only)
        model = RSSGL(config)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:  # shapes were compared above; kept as a last line of defence
            raise RssglError(
                f"The model file '{path}' is damaged or inconsistent ({exc}); retrain or use another file."
            ) from exc
    dev = choose_device(device)
    if dev.type == "cpu":
        set_cpu_threads()
    obj = cls(params=fields_["params"])
    obj.model_ = model.to(dev).eval() if model is not None else None
    obj.spectral_ = spectral.to(dev) if spectral is not None else None
    obj.pool_ = pool
    obj.config_ = config
    obj.params_ = fields_["params"]
    obj.classes_ = np.asarray(meta["class_values"], dtype=np.int64)
    obj.n_bands_ = int(meta["band_count"])
    obj.class_names_ = list(meta["class_names"])
    obj.class_colors_ = [tuple(int(v) for v in c) for c in meta["class_colors"]]
    obj.band_info_ = {"names": meta.get("band_names"), "wavelengths": meta.get("band_wavelengths"),
                      "indices": meta.get("band_indices"), "fwhm": meta.get("band_fwhm")}
    obj.band_mean_ = np.asarray(meta["band_mean"], dtype=np.float64)
    obj.band_std_ = np.asarray(meta["band_std"], dtype=np.float64)
    obj.train_counts_ = np.asarray(meta.get("train_counts") or [], dtype=np.int64)
    obj.history_ = list(fields_["history"])
    obj.best_epoch_ = fields_["best_epoch"]
    obj.selection_ = fields_["selection"]
    obj.selection_note_ = fields_["selection_note"]
    obj.validation_metrics_ = dict(fields_["validation_metrics"])
    obj.stopped_early_ = None
    obj.train_seconds_ = fields_["train_seconds"]
    obj.fine_tuned_from_ = meta.get("fine_tuned_from")
    obj.device_ = str(dev)
    obj.device_description_ = describe_device(dev)
    obj.created_ = meta.get("created")
    return obj
