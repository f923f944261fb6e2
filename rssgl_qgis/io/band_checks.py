"""Does a raster fit a model's bands? The checks that keep a wrong raster from giving a silently wrong map.

Why (issue 31): io.bands picks a model's bands from the raster by wavelength where both record them,
else by band number. By number, nothing stopped a 204-band Salinas model taking bands 1-204 of a
224-band EnMAP tile, six of them empty: every pixel was nodata, the map all 0, and the run "succeeded".
Nor did anything notice a raster whose bands were in reverse order (OA 25.8 % instead of 99.0 %). So:

* bands taken by number from a raster with another band count: a warning before classifying;
* bands not matched by wavelength: the raster's band statistics, from a few sample blocks (never a whole
  read), are compared with the training statistics the model file keeps (``band_mean`` / ``band_std``),
  and a clear difference is a warning with the figures (``statistics_mismatch``);
* a map with no valid pixel: an error naming the likely cause (``empty_map_message``), nothing written.

The comparison, and why its thresholds: the shape of the mean spectrum (Pearson correlation over the
bands, blind to a brightness scale) and how many bands sit more than 3 training spreads from the
training mean. Measured on the repository's data (benchmarks/band_statistics.py prints the table):
17 other EnMAP Potsdam tiles against the first (the same sensor's other scenes, 32 x 32 px each): correlation
0.957-0.997, at most 17 % of bands off; Salinas-A halves and a 20-px corner: 0.898-0.999, no band off;
Salinas-A scaled by 0.7 or 1.2 with noise: 1.000. Bands reversed: Salinas-A -0.69 (74 % off), EnMAP
tiles 0.77-0.78 (33-37 % off); Salinas-A's training statistics against EnMAP bands 1-204: -0.24.
Hence a warning when the correlation is below 0.5, or below 0.9 with at least a quarter of the bands off.
A permutation that leaves the statistics alike (a flat mean spectrum, mirrored spectra of equal
means) cannot be seen this way; the check says nothing then rather than guess.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.prediction.tiling import Window
from ..core.text import band_ranges, number_text
from .bands import describe_bands
from .blocks import GdalWindowReader
from .raster import RasterInfo

__all__ = ["StatisticsMismatch", "sample_statistics", "statistics_mismatch", "statistics_warning",
           "by_number_warning", "empty_bands", "empty_map_message", "band_ranges"]

#: Below this correlation of the mean spectra the raster's bands are not the model's.
MIN_CORRELATION = 0.5
#: Below this correlation, a quarter of the bands more than OFF_SPREADS training spreads off is a mismatch.
DOUBTFUL_CORRELATION = 0.9
OFF_SPREADS = 3.0
OFF_SHARE = 0.25
#: Sample blocks per side (a grid of SAMPLE_GRID x SAMPLE_GRID blocks of SAMPLE_BLOCK pixels).
SAMPLE_GRID = 3
SAMPLE_BLOCK = 64
#: Fewer valid sampled pixels than this: no judgement.
MIN_SAMPLE_PIXELS = 50
_SCAN_BYTES = 64 * 2**20


def _valid_pixels(raw: np.ndarray, nodata: Sequence[float | None] | None) -> np.ndarray:
    """(B, n) float64 values of the pixels valid in every band (finite, not the band's nodata)."""
    values = raw.reshape(raw.shape[0], -1).astype(np.float64, copy=False)
    ok = np.isfinite(values)
    for k, nd in enumerate(nodata or []):
        if nd is not None:
            ok[k] &= values[k] != nd
    return values[:, ok.all(axis=0)]


def sample_statistics(reader: GdalWindowReader, height: int, width: int
                      ) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Mean and spread of each band read by ``reader`` over a grid of sample blocks, and the pixel count.

    At most SAMPLE_GRID**2 blocks of SAMPLE_BLOCK pixels spread over the raster (the whole raster when
    it is small); only pixels valid in every band count, as in training. None with too few of them.
    """
    h, w = min(SAMPLE_BLOCK, height), min(SAMPLE_BLOCK, width)
    rows = sorted({int(r) for r in np.linspace(0, height - h, SAMPLE_GRID)})
    cols = sorted({int(c) for c in np.linspace(0, width - w, SAMPLE_GRID)})
    chunks = [_valid_pixels(reader(Window(r, c, h, w)), reader.nodata) for r in rows for c in cols]
    pixels = np.concatenate(chunks, axis=1)
    if pixels.shape[1] < MIN_SAMPLE_PIXELS:
        return None
    return pixels.mean(axis=1), pixels.std(axis=1), int(pixels.shape[1])


@dataclass
class StatisticsMismatch:
    """How the raster's band statistics differ from the training raster's (positions in the model's bands)."""

    correlation: float
    off: int  # bands more than OFF_SPREADS training spreads from the training mean
    farthest: list[int]  # positions of the 3 bands farthest off (in training spreads), the farthest first
    n_bands: int


def statistics_mismatch(model_mean, model_std, raster_mean, raster_std) -> StatisticsMismatch | None:
    """A clear difference between the training statistics and the raster's (see the module docstring), or None.

    None also where the statistics cannot tell bands apart: fewer than 3 bands, or a training mean
    spectrum that hardly varies from band to band (less than a tenth of the typical band spread).
    """
    mm, sm = np.asarray(model_mean, np.float64), np.asarray(model_std, np.float64)
    mr = np.asarray(raster_mean, np.float64)
    if mm.size < 3 or not np.all(np.isfinite(mr)) or mm.std() <= 0.1 * float(np.median(sm)):
        return None
    correlation = float(np.corrcoef(mm, mr)[0, 1]) if mr.std() > 0 else 0.0
    distance = np.abs(mr - mm) / np.maximum(sm, 1e-12)
    off = int((distance > OFF_SPREADS).sum())
    if correlation < MIN_CORRELATION or (correlation < DOUBTFUL_CORRELATION and off >= OFF_SHARE * mm.size):
        farthest = [int(k) for k in np.argsort(-distance, kind="stable")[:3]]
        return StatisticsMismatch(correlation, off, farthest, int(mm.size))
    return None


def _figure(value: float) -> str:
    return number_text(value, 0) if abs(value) >= 1000 else number_text(float(f"{value:.4g}"))


def _who_lacks_wavelengths(model_has: bool, raster_has: bool) -> str:
    if not model_has and not raster_has:
        return "neither the model nor the raster records band wavelengths"
    return f"the {'raster' if model_has else 'model'} does not record band wavelengths"


def statistics_warning(info: RasterInfo, band_numbers: Sequence[int], model_mean, model_std,
                       raster_mean, raster_std, mismatch: StatisticsMismatch, *, model_has_wavelengths: bool) -> str:
    """The warning for a statistics mismatch, with the figures of the bands farthest off."""
    examples = "; ".join(
        f"band {band_numbers[k]}: mean {_figure(raster_mean[k])} (spread {_figure(raster_std[k])}) in this raster, "
        f"{_figure(model_mean[k])} ({_figure(model_std[k])}) in the training raster" for k in mismatch.farthest)
    return (
        f"The bands of the raster '{os.path.basename(info.path)}' do not look like the model's training bands: the "
        f"shape of its mean spectrum over the model's {mismatch.n_bands} bands correlates at "
        f"{mismatch.correlation:.2f} with the training raster's (1 = same shape), and {mismatch.off} of "
        f"{mismatch.n_bands} bands lie more than {number_text(OFF_SPREADS)} training spreads from the training mean; "
        f"e.g. {examples}. {_who_lacks_wavelengths(model_has_wavelengths, bool(info.wavelengths)).capitalize()}, so "
        "the bands were taken by number: if this raster has another band order or comes from another sensor, the "
        "map is wrong. Check that its bands are the training raster's, in the same order."
    )


def by_number_warning(info: RasterInfo, band_numbers: Sequence[int], n_model: int, *,
                      model_has_wavelengths: bool) -> str:
    """Bands taken by number from a raster whose band count differs from the model's."""
    return (
        f"The raster '{os.path.basename(info.path)}' has {info.bands} bands and the model uses {n_model} (bands "
        f"{band_ranges(band_numbers)} of its training raster); "
        f"{_who_lacks_wavelengths(model_has_wavelengths, bool(info.wavelengths))}, so they were taken by band "
        "number. That is right only for a raster with the training raster's bands in the same order (the same "
        "sensor); if this raster comes from another sensor, the map will be wrong."
    )


def empty_bands(reader: GdalWindowReader, height: int, width: int) -> list[int]:
    """Positions (in ``reader.band_numbers``) of the bands with no valid value anywhere, read in strips."""
    n = len(reader.band_numbers)
    step = max(1, min(height, _SCAN_BYTES // max(1, width * n * 8)))
    seen = np.zeros(n, dtype=bool)
    for row in range(0, height, step):
        raw = reader(Window(row, 0, min(step, height - row), width))
        values = raw.reshape(n, -1).astype(np.float64, copy=False)
        ok = np.isfinite(values)
        for k, nd in enumerate(reader.nodata or []):
            if nd is not None:
                ok[k] &= values[k] != nd
        seen |= ok.any(axis=1)
        if seen.all():
            break
    return [k for k in range(n) if not seen[k]]


def empty_map_message(info: RasterInfo, band_numbers: Sequence[int], empty: Sequence[int], *,
                      by_number: bool, masked: bool) -> str:
    """Why the map came out without a single valid pixel, and what to do."""
    name = os.path.basename(info.path)
    n = len(band_numbers)
    start = f"The classification of '{name}' came out empty (no valid pixel), so nothing was written: "
    if empty:
        names = describe_bands(info, [band_numbers[k] for k in empty])
        text = (f"{start}{len(empty)} of the {n} bands the model uses hold no data in this raster (nodata or NaN "
                f"everywhere): {names}. ")
        if by_number and info.bands != n:
            return text + (f"The model's bands were taken by band number from this {info.bands}-band raster, so it "
                           "most likely comes from another sensor than the training raster. Use a raster of the "
                           "sensor the model was trained on, or train a model on this raster.")
        return text + ("Use a raster in which these bands hold data (the training raster's sensor and processing), "
                       "or train a model on this raster ('Train RSSGL' leaves empty bands out).")
    where = "inside the mask " if masked else ""
    return (f"{start}no pixel {where}holds a valid value in all {n} bands the model uses (each is nodata or NaN in "
            f"at least one of them). Check the raster's nodata value{' and the mask' if masked else ''}.")
