"""Which bands hold no data or one constant value, found without reading the whole raster (issue 29).

Why: the first scan read every value of every band before saying a word: 81.6 G values of a
20000 x 20000 x 204 VRT, nothing printed for 580 s. Yet a band is settled, neither empty nor
constant, as soon as two different valid values of it have been seen, and almost every band of a
real scene shows them in its first block. So the scan goes from cheap to dear and stops per band:

1. The file's own exact statistics (GDAL's ``STATISTICS_MINIMUM`` < ``STATISTICS_MAXIMUM``, neither
   of them the nodata value) settle a band without reading it. Statistics are only read, never
   computed: computing them would read the whole band.
2. A sample of chunks (the raster's native blocks, a few joined where blocks are tiny) spread over
   the raster, the centre first, each read once for all bands not yet settled.
3. Only the bands still unsettled (no valid value or a single value so far) are read whole, in
   strips, each dropped from the reads once it is settled. An empty band (EnMAP's water-vapour
   bands) costs one read of that band. The answer is the one reading everything gives.

A value is valid where it is finite and not the band's nodata value as the band's data type holds
it (GDAL's rule, and io.raster's reader's). Progress, a first message at once and cancelling go
through the workflow's callables.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from osgeo import gdal, gdal_array

from ..core.errors import Cancelled
from ..core.text import band_ranges
from .raster import RasterInfo, _open

__all__ = ["BandScan", "scan_bands"]

gdal.UseExceptions()

#: Most bytes one read may return (all unsettled bands of a chunk or strip, in the band's data type).
SCAN_BYTES = 256 * 2**20
#: Native blocks smaller than this many pixels are joined into larger chunks (GDAL's per-read cost).
MIN_CHUNK_PIXELS = 256 * 256
#: The sample is at most SAMPLE_GRID x SAMPLE_GRID chunks, spread evenly over the raster.
SAMPLE_GRID = 6

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]
LogFn = Callable[[str, str], None]


@dataclass
class BandScan:
    """The scan's answer (1-based band numbers) and how much it had to read, for logs and benchmarks."""

    no_data: list[int]
    constant: list[int]
    by_statistics: int  # bands settled by the file's statistics
    sampled_chunks: int  # chunks read in the sample
    read_whole: list[int]  # bands still unsettled after the sample, read whole
    values_read: int  # raster values read in all
    seconds: float


class _Tally:
    """Per band: a valid value seen, the first one seen, and another one seen (then the band is settled)."""

    def __init__(self, bands: int) -> None:
        self.seen = np.zeros(bands, dtype=bool)
        self.first = np.zeros(bands, dtype=np.float64)
        self.varied = np.zeros(bands, dtype=bool)

    def add(self, numbers: np.ndarray, data: np.ndarray, nodata: list[float | None]) -> None:
        """Count ``data`` (len(numbers), pixels) of the 0-based bands ``numbers``; ``nodata`` per band read."""
        if data.dtype.kind == "c":  # as the first scan did: complex bands by their real part
            data = np.ascontiguousarray(data.real)
        ok = _valid(data, nodata)
        has = ok.any(axis=1)
        if not has.any():
            return
        rows = np.arange(data.shape[0])
        reference = data[rows, ok.argmax(axis=1)]  # a valid value of each band (any, where it has none)
        filled = np.where(ok, data, reference[:, None])  # invalid pixels take a valid value: exact min/max
        lo = filled.min(axis=1).astype(np.float64)[has]
        hi = filled.max(axis=1).astype(np.float64)[has]
        bands = numbers[has]
        new = ~self.seen[bands]
        self.first[bands[new]] = lo[new]
        self.seen[bands] = True
        self.varied[bands] |= (lo != hi) | (lo != self.first[bands])


def _valid(data: np.ndarray, nodata: list[float | None]) -> np.ndarray:
    ok = np.isfinite(data) if data.dtype.kind == "f" else np.ones(data.shape, dtype=bool)
    for k, value in enumerate(nodata):
        typed = _as_type(value, data.dtype)
        if typed is not None:
            ok[k] &= data[k] != typed
    return ok


def _as_type(value: float | None, dtype: np.dtype):
    """The nodata value as the band's type holds it, or None where no pixel can hold it (NaN: not finite)."""
    if value is None or not math.isfinite(value):
        return None
    if dtype.kind in "iu":
        limits = np.iinfo(dtype)
        return dtype.type(value) if float(value).is_integer() and limits.min <= value <= limits.max else None
    return dtype.type(value) if abs(value) <= np.finfo(dtype).max else None


def _settled_by_statistics(dataset: gdal.Dataset, info: RasterInfo) -> np.ndarray:
    """Bands whose stored exact statistics show two different valid values (min < max, neither nodata)."""
    settled = np.zeros(info.bands, dtype=bool)
    for k in range(info.bands):
        meta = dataset.GetRasterBand(k + 1).GetMetadata() or {}
        if str(meta.get("STATISTICS_APPROXIMATE", "")).upper() == "YES":
            continue  # from overviews or a subsample: not a statement about the band's values
        try:
            lo, hi = float(meta["STATISTICS_MINIMUM"]), float(meta["STATISTICS_MAXIMUM"])
        except (KeyError, ValueError):
            continue
        nodata = info.nodata[k]
        stored_nodata = nodata is not None and math.isfinite(nodata) and (
            math.isclose(lo, nodata, rel_tol=1e-6) or math.isclose(hi, nodata, rel_tol=1e-6))
        settled[k] = math.isfinite(lo) and math.isfinite(hi) and lo < hi and not stored_nodata
    return settled


def _chunk_shape(dataset: gdal.Dataset, info: RasterInfo) -> tuple[int, int]:
    """(width, height) of a chunk: the native block, doubled along its short side up to MIN_CHUNK_PIXELS."""
    width, height = (max(1, int(v)) for v in dataset.GetRasterBand(1).GetBlockSize())
    width, height = min(width, info.width), min(height, info.height)
    while width * height < MIN_CHUNK_PIXELS and (width < info.width or height < info.height):
        if height < info.height and (height <= width or width >= info.width):
            height = min(info.height, 2 * height)
        else:
            width = min(info.width, 2 * width)
    return width, height


def sample_chunks(info: RasterInfo, chunk: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Windows (x, y, width, height) of the sampled chunks: an even grid of chunk positions, centre first."""
    width, height = chunk
    columns, rows = math.ceil(info.width / width), math.ceil(info.height / height)

    def spread(count: int) -> list[int]:
        picks = min(count, SAMPLE_GRID)
        return sorted({int((i + 0.5) * count / picks) for i in range(picks)})

    cells = [(r, c) for r in spread(rows) for c in spread(columns)]
    cells.sort(key=lambda rc: ((rc[0] + 0.5) / rows - 0.5) ** 2 + ((rc[1] + 0.5) / columns - 0.5) ** 2)
    return [(c * width, r * height, min(width, info.width - c * width), min(height, info.height - r * height))
            for r, c in cells]


def scan_bands(path: str, info: RasterInfo, *, progress: ProgressFn | None = None,
               should_stop: StopFn | None = None, log: LogFn | None = None) -> BandScan:
    """Find the bands with no valid value and those with one constant value; see the module docstring.

    ``progress(percent, message)`` gets 0-100 of this scan, ``should_stop()`` is asked before each
    read (True raises Cancelled), ``log(level, message)`` gets a first message at once and one more
    when bands must be read whole.
    """
    progress = progress or (lambda percent, message: None)
    started = time.perf_counter()
    name = os.path.basename(path)

    def check_stop() -> None:
        if should_stop is not None and should_stop():
            raise Cancelled(f"The band check of '{name}' was canceled.")

    if log:
        log("info", f"Checking {info.bands} bands of '{name}' for bands without data or with one constant value...")
    progress(0.0, "checking the bands")
    dataset = _open(path)
    tally = _Tally(info.bands)
    settled = _settled_by_statistics(dataset, info)
    by_statistics = int(settled.sum())
    tally.seen |= settled
    tally.varied |= settled
    itemsize = np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(dataset.GetRasterBand(1).DataType)).itemsize
    values_read = 0

    def read(window: tuple[int, int, int, int], bands: np.ndarray) -> None:
        nonlocal values_read
        check_stop()
        x, y, width, height = window
        raw = dataset.ReadAsArray(x, y, width, height, band_list=[int(b) + 1 for b in bands])
        data = np.asarray(raw).reshape(len(bands), width * height)
        tally.add(bands, data, [info.nodata[b] for b in bands])
        values_read += data.size

    chunks = sample_chunks(info, _chunk_shape(dataset, info))
    sampled = 0
    for window in chunks:
        open_bands = np.flatnonzero(~tally.varied)
        if not open_bands.size:
            break
        read(window, open_bands)
        sampled += 1
        progress(5.0 * sampled / len(chunks), "checking the bands")

    whole = [int(b) + 1 for b in np.flatnonzero(~tally.varied)]
    if whole and log:
        log("info", f"{len(whole)} band(s) showed no data or a single value in {sampled} sampled blocks (bands "
                    f"{band_ranges(whole)}): reading them whole to be sure.")
    if whole:
        block_height = max(1, int(dataset.GetRasterBand(1).GetBlockSize()[1]))
        row = 0
        while row < info.height:
            open_bands = np.flatnonzero(~tally.varied)
            if not open_bands.size:
                break
            rows = max(1, SCAN_BYTES // max(1, info.width * open_bands.size * itemsize))
            if rows >= block_height:
                rows -= rows % block_height  # whole blocks per strip where they fit
            rows = min(rows, info.height - row)
            read((0, row, info.width, rows), open_bands)
            row += rows
            progress(5.0 + 95.0 * row / info.height,
                     f"checking the bands: {len(whole)} read whole, {100.0 * row / info.height:.0f} %")
    dataset = None
    progress(100.0, "band check done")
    return BandScan(no_data=[k + 1 for k in range(info.bands) if not tally.seen[k]],
                    constant=[k + 1 for k in range(info.bands) if tally.seen[k] and not tally.varied[k]],
                    by_statistics=by_statistics, sampled_chunks=sampled, read_whole=whole,
                    values_read=values_read, seconds=time.perf_counter() - started)
