"""Checks of a model file's contents before a classifier is rebuilt from them (RssglClassifier.load).

A file can be cut, edited or written by another version: every field the classifier needs is checked
for type, shape and range, and a contradiction raises ``Damaged`` with the words the user's message
needs (core/training/classifier.py turns it into "the model file is damaged: ...").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..network.model import RSSGL, RssglConfig
from ..spectral.pool import PoolSettings
from ..spectral.spectral_model import SpectralModel
from .params import TrainingParams

__all__ = ["Damaged", "SPECTRAL_ONLY_CONTENTS", "checked_model_contents", "checked_spectral"]

#: A stage-one model file's "model_contents": the normalisation and the spectral model, no RSSGL network
#: (files without the key hold the network).
SPECTRAL_ONLY_CONTENTS = "spectral model only"


@dataclass(frozen=True)
class _Sizes:
    """The band and class counts a stage-one file's spectral model is checked against (no architecture)."""

    in_bands: int
    num_classes: int


class Damaged(Exception):
    """A model file's contents contradict themselves; the message names what (for the user's sentence)."""


def checked_spectral(meta: dict[str, Any], state: dict[str, Tensor], config: RssglConfig | None
                      ) -> tuple[SpectralModel | None, PoolSettings]:
    """The spectral model and the pool (RSSGL's weight, RSSGL's and the spectral model's temperatures) from
    a model file (None and RSSGL alone, as trained, for files written before them). ``config`` None: a
    stage-one file, whose spectral model must be there and alone in the pool."""
    if config is None:
        config = _Sizes(int(meta["band_count"]), len(meta["class_values"]))
        if meta.get("spectral") is None or meta.get("blend_weight") != 0.0:
            raise Damaged("a file of the spectral model only without the spectral model, or with RSSGL in the pool")
    temperatures = []
    for key in ("rssgl_temperature", "spectral_temperature"):
        value = meta.get(key, 1.0)
        if not _is_number(value) or not (math.isfinite(value) and value > 0):
            raise Damaged(f"'{key}' is {value!r}")
        temperatures.append(float(value))
    temperature, spectral_temperature = temperatures
    info = meta.get("spectral")
    if info is None and not state:
        return None, PoolSettings(1.0, temperature, 1.0)
    if not isinstance(info, dict) or set(state) != {"spectral.centers", "spectral.alpha"}:
        raise Damaged("the spectral model's settings and weights do not match")
    centers, alpha = state["spectral.centers"], state["spectral.alpha"]
    if (centers.ndim != 2 or alpha.ndim != 2 or centers.shape[0] != alpha.shape[0]
            or centers.shape[1] != config.in_bands or alpha.shape[1] != config.num_classes):
        raise Damaged(f"the spectral model is shaped {tuple(centers.shape)} / {tuple(alpha.shape)} for "
                       f"{config.in_bands} bands and {config.num_classes} classes")
    if not (bool(torch.isfinite(centers).all()) and bool(torch.isfinite(alpha).all())):
        raise Damaged("non-finite weights in the spectral model")
    for key in ("gamma", "temperature"):
        if not _is_number(info.get(key)) or not (math.isfinite(info[key]) and info[key] > 0):
            raise Damaged(f"the spectral model's '{key}' is {info.get(key)!r}, not a positive number")
    blend = meta.get("blend_weight", 1.0)
    if not _is_number(blend) or not 0.0 <= blend <= 1.0:
        raise Damaged(f"'blend_weight' is {blend!r}, not a number in [0, 1]")
    return SpectralModel.from_state(state, info), PoolSettings(float(blend), temperature, spectral_temperature)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_list(meta: dict[str, Any], key: str, length: int, *, finite: bool = True, positive: bool = False) -> None:
    values = meta.get(key)
    if not isinstance(values, list) or len(values) != length:
        found = f"{len(values)} values" if isinstance(values, list) else type(values).__name__
        raise Damaged(f"'{key}' should list {length} numbers, one per band, but holds {found}")
    for v in values:
        if not _is_number(v) or (finite and not math.isfinite(v)) or (positive and not v > 0):
            raise Damaged(f"'{key}' holds {v!r}, not a{' finite' if finite else ''}{' positive' if positive else ''} "
                           "number")


def _checked_architecture(meta: dict[str, Any]) -> RssglConfig:
    """The network's architecture, its sizes integers (a float or bool there would build a wrong network)."""
    arch = meta.get("architecture")
    if not isinstance(arch, dict):
        raise Damaged(f"'architecture' is {type(arch).__name__}, not an object")
    for key in ("in_bands", "num_classes", "inner_dim", "gn_groups"):
        if key in arch and not _is_int(arch[key]):
            raise Damaged(f"architecture '{key}' is {arch[key]!r}, not an integer")
    try:
        return RssglConfig.from_dict(arch)
    except (TypeError, ValueError) as exc:
        raise Damaged(f"architecture: {exc}") from None


def _check_classes(meta: dict[str, Any], n_classes: int) -> None:
    """Class values, names and colours: one per network output (the legend and the map's values)."""
    values = meta.get("class_values")
    if not isinstance(values, list) or not all(_is_int(v) and v > 0 for v in values):
        raise Damaged("'class_values' is missing or not a list of positive integers")
    if len(values) != n_classes:
        raise Damaged(f"{len(values)} class values for a network with {n_classes} outputs")
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise Damaged("'class_values' are not in strictly ascending order")
    names = meta.get("class_names")
    if not isinstance(names, list) or len(names) != n_classes or not all(isinstance(n, str) for n in names):
        raise Damaged(f"'class_names' should list {n_classes} names")
    colors = meta.get("class_colors")
    if not isinstance(colors, list) or len(colors) != n_classes or not all(
        isinstance(c, list) and len(c) in (3, 4) and all(_is_int(v) and 0 <= v <= 255 for v in c) for c in colors
    ):
        raise Damaged(f"'class_colors' should list {n_classes} RGB colours")


def _check_bands(meta: dict[str, Any], n_bands: int) -> None:
    """Band count, normalisation statistics and band information: one per network input band."""
    band_count = meta.get("band_count")
    if not _is_int(band_count) or band_count != n_bands:
        raise Damaged(f"band count {band_count!r} but the network takes {n_bands} bands")
    _number_list(meta, "band_mean", n_bands)
    _number_list(meta, "band_std", n_bands, positive=True)
    band_names = meta.get("band_names")
    if band_names is not None and (not isinstance(band_names, list) or len(band_names) != n_bands):
        raise Damaged(f"'band_names' should list {n_bands} names")
    if meta.get("band_wavelengths") is not None:
        _number_list(meta, "band_wavelengths", n_bands, finite=False)  # as read from the raster's metadata
    if meta.get("band_fwhm") is not None:
        _number_list(meta, "band_fwhm", n_bands, finite=False)
    indices = meta.get("band_indices")
    if indices is not None and (not isinstance(indices, list) or len(indices) != n_bands
                                or not all(_is_int(b) and b > 0 for b in indices) or len(set(indices)) != n_bands):
        raise Damaged(f"'band_indices' should list {n_bands} different band numbers (1 or more)")


def _checked_fields(meta: dict[str, Any]) -> dict[str, Any]:
    """The remaining fields, in the types the classifier keeps (training parameters, history, timing)."""
    params = meta.get("training_params", {})
    if not isinstance(params, dict):
        raise Damaged(f"'training_params' is {type(params).__name__}, not an object")
    try:
        fields_: dict[str, Any] = {"params": TrainingParams.from_dict(params)}
    except TypeError as exc:
        raise Damaged(f"training_params: {exc}") from None
    expected_types = {
        "history": (list, []), "validation_metrics": (dict, {}), "selection": (str, ""), "selection_note": (str, ""),
    }
    for key, (kind, default) in expected_types.items():
        value = meta.get(key)
        if value is None:
            value = default
        if not isinstance(value, kind):
            raise Damaged(f"'{key}' is {type(value).__name__}, not {kind.__name__}")
        fields_[key] = value
    best_epoch, seconds = meta.get("best_epoch", 0), meta.get("train_seconds", 0.0)
    if not _is_int(best_epoch) or best_epoch < 0:
        raise Damaged(f"'best_epoch' is {best_epoch!r}, not a count")
    if not _is_number(seconds):
        raise Damaged(f"'train_seconds' is {seconds!r}, not a number")
    fields_["best_epoch"], fields_["train_seconds"] = best_epoch, float(seconds)
    return fields_


def _check_weights(state: dict[str, Tensor], config: RssglConfig) -> None:
    """The weights against the architecture: the declared class and band counts first (cheap; they size the
    network), then every parameter's shape from the architecture built on the meta device (no memory), then
    finiteness."""
    n_bands, n_classes = config.in_bands, config.num_classes
    head = state.get("classifier.weight")
    if head is None or head.ndim != 4 or tuple(head.shape[:2]) != (n_classes, n_bands):
        found = "missing" if head is None else f"shaped {tuple(head.shape)}"
        raise Damaged(
            f"the architecture declares {n_bands} bands and {n_classes} classes but the stored classifier layer "
            f"is {found}"
        )
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in RSSGL(config).state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} weight(s) missing, e.g. {missing[0]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected weight(s), e.g. {unexpected[0]}")
        raise Damaged("the weights do not belong to the declared architecture: " + ", ".join(parts))
    for key, shape in expected.items():
        tensor = state[key]
        if tuple(tensor.shape) != shape:
            raise Damaged(f"weight {key} is shaped {tuple(tensor.shape)} but the architecture needs {shape}")
        if not tensor.is_floating_point():
            raise Damaged(f"weight {key} has type {tensor.dtype}, not floating point")
        if not bool(torch.isfinite(tensor).all()):
            raise Damaged(f"non-finite weights in {key}")


def checked_model_contents(meta: dict[str, Any], state: dict[str, Tensor]
                           ) -> tuple[RssglConfig | None, dict[str, Any]]:
    """Validate a model file's metadata against itself and its weights WITHOUT allocating the network.

    Returns (architecture, or None for a stage-one file of the spectral model only, the optional fields in
    usable types); raises Damaged naming the problem.
    """
    contents = meta.get("model_contents")
    if contents is not None and contents != SPECTRAL_ONLY_CONTENTS:
        raise Damaged(f"'model_contents' is {contents!r}")
    if contents == SPECTRAL_ONLY_CONTENTS:
        return None, _checked_spectral_only(meta, state)
    config = _checked_architecture(meta)
    n_bands, n_classes = config.in_bands, config.num_classes
    _check_classes(meta, n_classes)
    _check_bands(meta, n_bands)
    counts = meta.get("train_counts")
    if counts not in (None, []) and (
        not isinstance(counts, list) or len(counts) != n_classes or not all(_is_int(c) and c >= 0 for c in counts)
    ):
        raise Damaged(f"'train_counts' should list {n_classes} pixel counts")
    fields_ = _checked_fields(meta)
    _check_weights(state, config)
    return config, fields_


def _checked_spectral_only(meta: dict[str, Any], state: dict[str, Tensor]) -> dict[str, Any]:
    """checked_model_contents of a stage-one file: classes and bands against each other, no network tensors."""
    if meta.get("architecture") is not None or state:
        raise Damaged("a file of the spectral model only holds a network")
    values = meta.get("class_values")
    n_classes = len(values) if isinstance(values, list) else 0
    if n_classes < 2:
        raise Damaged("'class_values' is missing or lists fewer than 2 classes")
    _check_classes(meta, n_classes)
    band_count = meta.get("band_count")
    if not _is_int(band_count) or band_count < 1:
        raise Damaged(f"band count {band_count!r}")
    _check_bands(meta, band_count)
    return _checked_fields(meta)
