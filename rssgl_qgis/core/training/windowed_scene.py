"""A raster seen through windows: what training on windows reads instead of a whole cube in memory.

Whole-scene training holds the normalised cube, and every activation of the network over it, in
device memory (about 25 KB per pixel on a GPU, 57 KB on the CPU: core/prediction/inference.py's memory model),
which refuses a 1000 x 1000 EnMAP scene on an 8 GiB GPU. ``WindowedScene`` wraps the same reader
tiled classification uses (``read_window(Window) -> raw (B, h, w)``: a GDAL raster in io/blocks.py,
an array or memmap here), so the trainer only ever holds the windows it works on.

Two things follow the whole-scene conventions exactly, so that a model trained on windows sees the
input a whole-scene model would: the per-band standardisation statistics are those of every valid
pixel of the raster (streamed strip by strip in float64, ``band_statistics``), and a window that
reaches past the bottom/right raster edge gets the zero padding whole-scene input has there
(``read``), marked invalid.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..prediction.tiling import Window

__all__ = ["WindowedScene"]

log = logging.getLogger(__name__)

#: Bytes of float32 data one strip of ``band_statistics`` reads at most (its float64 copies triple it).
STATISTICS_STRIP_BYTES = 64 << 20
#: Seconds between two progress messages of ``band_statistics`` (the first and the last are always sent).
STATISTICS_PROGRESS_SECONDS = 1.0


@dataclass
class WindowedScene:
    """A (bands, height, width) raster read window by window.

    ``read_window(window)`` returns the raw (B, h, w) block inside the raster (any numeric dtype);
    ``nodata`` (per band, None = none) and ``valid_fn(window, raw) -> (h, w) bool`` (a mask raster)
    mark invalid pixels on top of NaN/inf, as in tiled classification.
    """

    read_window: Callable[[Window], np.ndarray]
    bands: int
    height: int
    width: int
    nodata: Sequence[float | None] | None = None
    valid_fn: Callable[[Window, np.ndarray], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.bands < 1 or self.height < 1 or self.width < 1:
            raise ValueError(f"A raster needs bands, rows and columns; got {self.bands} x {self.height} x {self.width}.")
        if self.nodata is not None and len(self.nodata) != self.bands:
            raise ValueError(f"Got {len(self.nodata)} nodata values for a {self.bands}-band raster.")

    @classmethod
    def from_array(cls, cube: np.ndarray, valid: np.ndarray | None = None) -> WindowedScene:
        """An in-memory (or memory-mapped) (B, H, W) cube; ``valid`` an optional (H, W) mask."""
        if cube.ndim != 3:
            raise ValueError(f"Expected a (bands, height, width) cube, got shape {cube.shape}.")
        mask = None if valid is None else np.asarray(valid, dtype=bool)

        def read(win: Window) -> np.ndarray:
            return cube[:, win.row : win.row + win.height, win.col : win.col + win.width]

        valid_fn = None if mask is None else (lambda win, raw: mask[win.slices])
        return cls(read, int(cube.shape[0]), int(cube.shape[1]), int(cube.shape[2]), valid_fn=valid_fn)

    @property
    def pixels(self) -> int:
        return self.height * self.width

    # ------------------------------------------------------------------ reading
    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """(float32 (B, h, w), valid (h, w)) of ``window``; the part past the raster edge is zeros, invalid."""
        out = np.zeros((self.bands, window.height, window.width), dtype=np.float32)
        valid = np.zeros((window.height, window.width), dtype=bool)
        inside = Window(window.row, window.col, min(window.height, self.height - window.row),
                        min(window.width, self.width - window.col))
        if inside.height <= 0 or inside.width <= 0:
            return out, valid
        raw = np.asarray(self.read_window(inside))
        if raw.ndim == 2:
            raw = raw[None]
        if raw.shape != (self.bands, inside.height, inside.width):
            raise ValueError(f"read_window returned shape {raw.shape} for window {tuple(inside)}; expected "
                             f"({self.bands}, {inside.height}, {inside.width}).")
        block = out[:, : inside.height, : inside.width]
        block[...] = raw
        ok = self._valid(inside, raw, block)
        valid[: inside.height, : inside.width] = ok
        return out, valid

    def _valid(self, window: Window, raw: np.ndarray, block: np.ndarray) -> np.ndarray:
        ok = np.isfinite(block).all(axis=0)
        if self.nodata is not None:
            for b, value in enumerate(self.nodata):
                if value is not None and not math.isnan(float(value)):
                    ok &= block[b] != np.float32(value)
        if self.valid_fn is not None:
            ok &= np.asarray(self.valid_fn(window, raw), dtype=bool)
        return ok

    # ------------------------------------------------------------------ statistics
    def band_statistics(self, progress: Callable[[float, str], None] | None = None,
                        should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        """Mean and std of every band over the valid pixels of the whole raster, and the valid pixel count.

        The same numbers as ``normalization.band_statistics`` on the whole cube (to float64 rounding), read
        in strips of rows (float64 sums of values shifted by the first strip's mean, so a large offset does
        not cancel the variance). A constant band gets std 1, as there.

        It reads every pixel once, so it reports as the training does: ``progress(percent, message)`` (the
        engine's ProgressFn: the share of rows read, in percent and in words) before each strip, at most one
        message a ``STATISTICS_PROGRESS_SECONDS`` (the first strip's always), and 100 at the end;
        ``should_stop()`` is asked before each strip and raises core.errors.Cancelled.
        """
        rows = max(1, min(self.height, STATISTICS_STRIP_BYTES // max(1, self.bands * self.width * 4)))
        shift = None
        total = np.zeros(self.bands, dtype=np.float64)
        squares = np.zeros(self.bands, dtype=np.float64)
        count = 0
        report = _StripProgress(progress, self.height)
        for r0 in range(0, self.height, rows):
            if should_stop is not None and should_stop():
                from ..errors import Cancelled

                raise Cancelled("Training was cancelled while the band statistics were computed.")
            report(r0)
            block, ok = self.read(Window(r0, 0, min(rows, self.height - r0), self.width))
            pixels = block[:, ok]  # (B, n) float32
            if pixels.shape[1]:
                if shift is None:
                    shift = pixels.astype(np.float64).mean(axis=1)
                centred = pixels.astype(np.float64) - shift[:, None]
                total += centred.sum(axis=1)
                squares += np.einsum("bn,bn->b", centred, centred)
                count += pixels.shape[1]
        report(self.height, final=True)
        if count == 0:
            raise ValueError("The raster has no valid pixel (all nodata or NaN); check its nodata value and extent.")
        mean_c = total / count
        var = np.maximum(squares / count - mean_c * mean_c, 0.0)
        mean = shift + mean_c
        std = np.sqrt(var)
        constant = std <= 1e-12
        if constant.any():
            log.warning("%d band(s) are constant over the valid pixels; they are standardised to 0.", int(constant.sum()))
            std = np.where(constant, 1.0, std)
        return mean, std, count


class _StripProgress:
    """``band_statistics``'s messages: rows read so far, in percent and in words, at most one a
    ``STATISTICS_PROGRESS_SECONDS`` (the first and the last always)."""

    def __init__(self, progress: Callable[[float, str], None] | None, height: int) -> None:
        self.progress, self.height, self.last = progress, height, None

    def __call__(self, rows_read: int, final: bool = False) -> None:
        now = time.monotonic()
        if self.progress is None or not (final or self.last is None
                                         or now - self.last >= STATISTICS_PROGRESS_SECONDS):
            return
        self.last = now
        self.progress(100.0 * rows_read / self.height,
                      f"band statistics for training: {rows_read} of {self.height} rows read")
