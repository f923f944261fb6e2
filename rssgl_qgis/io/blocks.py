"""GDAL windowed reading for tiled classification: raw blocks, thread-safe, plus mask rasters.

The tiling engine (``rssgl_qgis.core.prediction.inference.predict_tiled``) calls ``read_window`` from its
background reader thread while the main thread runs the network, through a bounded queue. GDAL
dataset handles must not be shared between threads, so :class:`GdalWindowReader` opens one handle
per thread. GDAL releases the GIL while it reads and decompresses, which is what lets reading
overlap with compute.

Blocks are returned in the raster's own data type (int16 stays int16): half the memory of float32
in the queue, and the conversion happens on the device. Nodata values are handed to the engine,
which masks them there. Only bands with a scale/offset (rare for reflectance products) are
converted here, to float32 with the scale applied and NaN at nodata, so the model sees the same
values ``io.raster.read_cube`` gave it at training time.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable

import numpy as np
from osgeo import gdal, gdal_array

from ..core.prediction.tiling import Window
from .raster import RasterInfo, _open, raster_info

__all__ = ["GdalWindowReader", "mask_valid_fn"]

gdal.UseExceptions()


def _representable(value: float | None, dtype: np.dtype) -> bool:
    """Whether a nodata value can occur in a band of this type (else no pixel equals it)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(value).is_integer() and info.min <= value <= info.max
    return True


class GdalWindowReader:
    """``reader(window) -> ndarray (B, h, w)``: raw windows of every band of a GDAL raster.

    Thread-safe (one dataset handle per thread). ``nodata`` lists per-band nodata values for the
    engine (None where unset or impossible in the band's type); ``itemsize`` is the bytes per value
    of the arrays returned (for the memory plan).
    """

    def __init__(self, path: str | os.PathLike, info: RasterInfo | None = None, bands: list[int] | None = None):
        self.path = os.fspath(path)
        self.info = info or raster_info(self.path)
        #: 1-based band numbers read (a model's bands; None = all), in this order
        self.band_numbers = list(range(1, self.info.bands + 1)) if bands is None else [int(b) for b in bands]
        if not self.band_numbers or not all(1 <= b <= self.info.bands for b in self.band_numbers):
            raise ValueError(f"Band numbers must be 1..{self.info.bands} for raster '{self.path}', got {bands}.")
        # GDAL's band_list, or None to read every band in order (the common case)
        self._band_list = None if self.band_numbers == list(range(1, self.info.bands + 1)) else self.band_numbers
        self._local = threading.local()
        self._handles: list[gdal.Dataset] = []
        self._lock = threading.Lock()
        ds = self._dataset()
        bands = [ds.GetRasterBand(i) for i in self.band_numbers]
        types = {band.DataType for band in bands}
        if len(types) != 1:
            names = sorted(gdal.GetDataTypeName(t) for t in types)
            raise ValueError(
                f"The raster '{self.path}' mixes band data types {names}; convert it to one type "
                "(e.g. Raster > Conversion > Translate with a fixed output type) before classifying."
            )
        self.raw_dtype = np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(types.pop()))
        if self.raw_dtype.kind == "c":
            raise ValueError(f"The raster '{self.path}' holds complex numbers; RSSGL needs real-valued bands.")
        self._scale = np.array([band.GetScale() or 1.0 for band in bands], dtype=np.float32)
        self._offset = np.array([band.GetOffset() or 0.0 for band in bands], dtype=np.float32)
        self.scaled = bool((self._scale != 1.0).any() or (self._offset != 0.0).any())
        self._raw_nodata = [v if _representable(v, self.raw_dtype) else None
                            for v in (self.info.nodata[b - 1] for b in self.band_numbers)]
        # Scaled rasters are converted here, their nodata pixels become NaN: nothing left for the engine.
        self.nodata: list[float | None] | None = None if self.scaled else list(self._raw_nodata)
        if self.nodata is not None and all(v is None for v in self.nodata):
            self.nodata = None
        self.itemsize = 4 if self.scaled else self.raw_dtype.itemsize

    def _dataset(self) -> gdal.Dataset:
        ds = getattr(self._local, "dataset", None)
        if ds is None:
            ds = _open(self.path)
            self._local.dataset = ds
            with self._lock:
                self._handles.append(ds)
        return ds

    def __call__(self, window: Window) -> np.ndarray:
        row, col, height, width = (int(v) for v in window)
        if row < 0 or col < 0 or row + height > self.info.height or col + width > self.info.width:
            raise ValueError(
                f"The window (row={row}, col={col}, {height}x{width}) is outside the raster '{self.path}' "
                f"({self.info.height}x{self.info.width})."
            )
        ds = self._dataset()
        try:
            raw = ds.ReadAsArray(col, row, width, height, band_list=self._band_list)
        except RuntimeError as exc:
            raise ValueError(
                f"Reading rows {row}-{row + height - 1} of '{self.path}' failed: {str(exc).strip()}. "
                "The file may be damaged or on a disconnected drive."
            ) from exc
        raw = raw.reshape(len(self.band_numbers), height, width)
        if not self.scaled:
            return raw
        out = raw.astype(np.float32) * self._scale[:, None, None] + self._offset[:, None, None]
        for k, nodata in enumerate(self._raw_nodata):
            if nodata is not None:
                out[k][raw[k] == nodata] = np.nan
        return out

    def close(self) -> None:
        """Drop every thread's dataset handle."""
        with self._lock:
            self._handles.clear()
        self._local = threading.local()

    def __enter__(self) -> GdalWindowReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def mask_valid_fn(mask_path: str | os.PathLike, info: RasterInfo) -> Callable[[Window, np.ndarray], np.ndarray]:
    """A ``valid_fn`` for the engine: True where the mask raster is non-zero (and not its nodata).

    The mask must be on the raster's grid (same size and geotransform); vector masks are rasterised
    by the caller (``io.samples``). Thread-safe like :class:`GdalWindowReader`.
    """
    mask_info = raster_info(mask_path)
    if (mask_info.height, mask_info.width) != (info.height, info.width):
        raise ValueError(
            f"The mask raster '{mask_info.path}' is {mask_info.width}x{mask_info.height} pixels but the raster to "
            f"classify is {info.width}x{info.height}; use a mask on the same grid (or a vector mask)."
        )
    if not np.allclose(mask_info.geotransform, info.geotransform, rtol=0, atol=1e-6 * max(info.pixel_size)):
        raise ValueError(
            f"The mask raster '{mask_info.path}' is not aligned with the raster to classify (different origin or "
            "pixel size); resample it onto the raster's grid or use a vector mask."
        )
    reader = GdalWindowReader(mask_path, mask_info)

    def valid_fn(window: Window, _raw: np.ndarray) -> np.ndarray:
        band = reader(window)[0]
        ok = band != 0
        if reader._raw_nodata[0] is not None:
            ok &= band != reader._raw_nodata[0]
        if band.dtype.kind == "f":
            ok &= np.isfinite(band)
        return ok

    return valid_fn
