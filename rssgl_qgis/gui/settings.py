"""Dock settings that persist between runs and QGIS sessions (QgsSettings under "rssgl/...").

One enum lists every key with its default and type, so the dock never scatters string keys and a
missing or corrupt value always falls back to a sensible default.
"""

from __future__ import annotations

from enum import Enum

from qgis.core import QgsSettings

__all__ = ["Setting"]


class Setting(Enum):
    """(key, default) pairs; the default's type is the value's type."""

    ITERATIONS = ("rssgl/iterations", 600)
    DEVICE = ("rssgl/device", "auto")
    KEEP_PREVIOUS = ("rssgl/keepPreviousResults", False)
    CONTINUE_FROM_PREVIOUS = ("rssgl/continueFromPrevious", False)
    OUTPUT_FOLDER = ("rssgl/lastOutputFolder", "")
    LAST_TRAINING_LAYER = ("rssgl/lastTrainingLayerPath", "")
    LAST_MODEL = ("rssgl/lastModelPath", "")
    REGIONS = ("rssgl/guidedRegions", 10)
    CV_FOLDS = ("rssgl/crossValidationFolds", 3)
    RSSGL_ON_CPU = ("rssgl/rssglOnCpu", False)  # stage two (RSSGL) after stage one without a CUDA GPU too

    @property
    def key(self) -> str:
        return self.value[0]

    @property
    def default(self):
        return self.value[1]

    def read(self):
        """The stored value converted to the default's type (the default when unset or unreadable)."""
        kind = type(self.default)
        raw = QgsSettings().value(self.key, self.default)
        try:
            if kind is bool:
                return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
            return kind(raw)
        except (TypeError, ValueError):
            return self.default

    def write(self, value) -> None:
        QgsSettings().setValue(self.key, value)
