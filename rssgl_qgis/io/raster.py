"""Raster input with GDAL: metadata (bands, wavelengths, FWHM, nodata) and cube reading with a validity mask.

The writers (classification and float GeoTIFFs, block by block, atomic) are io/raster_write.py.

Why these choices:

* Cubes come back as float32 (B, H, W) plus a boolean ``valid`` mask (H, W): a pixel is invalid when
  ANY band holds the band's nodata value or a non-finite number, because the network sees all bands
  of a pixel at once. Invalid pixels are set to 0 in every band so NaNs never reach arithmetic.
* Wavelengths are parsed from whatever the file carries (ENVI ``wavelength`` metadata, per-band
  ``wavelength`` items, band descriptions such as "Band 12: 512.3 nm") and always reported in
  nanometres, so a model can check that a raster has the bands it was trained on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from osgeo import gdal

from ..core.text import numbers_text

__all__ = [
    "RasterInfo",
    "RasterReader",
    "raster_info",
    "read_cube",
]

gdal.UseExceptions()

GEOTIFF_OPTIONS: tuple[str, ...] = ("TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE",
                                    "BIGTIFF=IF_SAFER")
_NUMBER_UNIT = re.compile(
    r"(?P<value>[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(?P<unit>nm|nanometers?|nanometres?|um|µm|micrometers?|"
    r"micrometres?|microns?)\b",
    re.IGNORECASE,
)


@dataclass
class RasterInfo:
    """What the plugin needs to know about a raster, read once by :func:`raster_info`.

    ``nodata`` has one entry per band (None when unset); ``wavelengths`` are in nanometres, or None
    when the file does not say; ``units`` are the per-band value units GDAL reports ('' if unknown).
    ``dtype`` is the GDAL data type name of band 1 ("Int16", "Float32", ...). ``fwhm`` are the band
    widths (full width at half maximum) in nm when the file records them (ENVI ``fwhm``, per-band
    ``fwhm`` items as EnMAP-Box writes them), else None; the model file keeps them with its bands.
    """

    path: str
    width: int
    height: int
    bands: int
    dtype: str
    geotransform: tuple[float, float, float, float, float, float]
    crs_wkt: str
    nodata: list[float | None]
    band_names: list[str]
    wavelengths: list[float] | None = None
    units: list[str] = field(default_factory=list)
    fwhm: list[float] | None = None

    @property
    def pixel_size(self) -> tuple[float, float]:
        """(pixel width, pixel height) in map units, both positive."""
        return abs(self.geotransform[1]), abs(self.geotransform[5])

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width), the shape of label and classification arrays for this raster."""
        return self.height, self.width

    def extent(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in the raster's CRS (north-up rasters; rotation terms ignored)."""
        x0, dx, _, y0, _, dy = self.geotransform
        xs = (x0, x0 + dx * self.width)
        ys = (y0, y0 + dy * self.height)
        return min(xs), min(ys), max(xs), max(ys)


def _open(path: str, update: bool = False) -> gdal.Dataset:
    try:
        dataset = gdal.Open(os.fspath(path), gdal.GA_Update if update else gdal.GA_ReadOnly)
    except RuntimeError as exc:
        dataset, reason = None, str(exc).strip()
    else:
        reason = "GDAL returned no dataset"
    if dataset is None:
        if not os.path.exists(os.fspath(path)) and "|" not in os.fspath(path) and ":" not in os.fspath(path)[2:]:
            reason = "the file does not exist"
        raise ValueError(f"Cannot open raster '{path}': {reason}. Check the path and that it is a raster GDAL can read.")
    return dataset


def _to_nanometres(values: list[float], unit: str | None) -> list[float]:
    unit = (unit or "").strip().lower()
    if unit.startswith(("um", "µm", "micro")):
        return [v * 1000.0 for v in values]
    if not unit and values and max(values) < 30.0:  # bare numbers this small are micrometres
        return [v * 1000.0 for v in values]
    return list(values)


def _parse_number_list(text: str) -> list[float] | None:
    items = [s for s in re.split(r"[\s,{}]+", text.strip()) if s]
    try:
        return [float(s) for s in items]
    except ValueError:
        return None


def _wavelengths(dataset: gdal.Dataset) -> list[float] | None:
    """Band centre wavelengths in nm from ENVI metadata, band metadata or band descriptions."""
    n = dataset.RasterCount
    envi = dataset.GetMetadata("ENVI") or {}
    envi = {k.lower(): v for k, v in envi.items()}
    if "wavelength" in envi:
        values = _parse_number_list(envi["wavelength"])
        if values and len(values) == n:
            return _to_nanometres(values, envi.get("wavelength_units") or envi.get("wavelength units"))
    per_band: list[float] = []
    for i in range(1, n + 1):
        band = dataset.GetRasterBand(i)
        meta = {k.lower(): v for k, v in (band.GetMetadata() or {}).items()}
        imagery = {k.lower(): v for k, v in (band.GetMetadata("IMAGERY") or {}).items()}
        try:
            if "wavelength" in meta:
                per_band += _to_nanometres([float(meta["wavelength"])], meta.get("wavelength_units"))
            elif "central_wavelength_um" in imagery:
                per_band.append(float(imagery["central_wavelength_um"]) * 1000.0)
            else:
                break
        except ValueError:
            break
    if len(per_band) == n:
        return per_band
    from_names: list[float] = []
    for i in range(1, n + 1):
        match = _NUMBER_UNIT.search(dataset.GetRasterBand(i).GetDescription() or "")
        if not match:
            return None
        from_names += _to_nanometres([float(match.group("value"))], match.group("unit"))
    return from_names


def _fwhm(dataset: gdal.Dataset) -> list[float] | None:
    """Band widths in nm from ENVI ``fwhm`` or per-band ``fwhm`` items (in the wavelength unit when given)."""
    n = dataset.RasterCount
    envi = {k.lower(): v for k, v in (dataset.GetMetadata("ENVI") or {}).items()}
    unit = envi.get("wavelength_units") or envi.get("wavelength units")
    values = _parse_number_list(envi["fwhm"]) if "fwhm" in envi else None
    if not (values and len(values) == n):
        values, unit = [], None
        for i in range(1, n + 1):
            meta = {k.lower(): v for k, v in (dataset.GetRasterBand(i).GetMetadata() or {}).items()}
            try:
                values.append(float(meta["fwhm"]))
            except (KeyError, ValueError):
                return None
            unit = unit or meta.get("wavelength_units")
    if unit and unit.strip():
        return _to_nanometres(values, unit)
    # No unit: band widths are 1-50 nm, i.e. 0.001-0.05 um; bare widths below 0.1 are micrometres. (The
    # wavelength rule, bare numbers below 30 are micrometres, would turn 6.5 nm into 6500 nm.)
    return [v * 1000.0 for v in values] if values and max(values) < 0.1 else values


def raster_info(path: str | os.PathLike) -> RasterInfo:
    """Read a raster's size, georeferencing, nodata, band names and wavelengths (no pixels)."""
    path = os.fspath(path)
    return _info_of(_open(path), path)


def _info_of(dataset: gdal.Dataset, path: str) -> RasterInfo:
    """The header of an open dataset (raster_info's work, also for a reader that already opened it)."""
    if dataset.RasterCount == 0:
        raise ValueError(f"Cannot use raster '{path}': it has no bands (is it a vector file or a container?).")
    bands = [dataset.GetRasterBand(i) for i in range(1, dataset.RasterCount + 1)]
    names = []
    for i, band in enumerate(bands, start=1):
        names.append(band.GetDescription() or f"Band {i}")
    wavelengths = _wavelengths(dataset)
    return RasterInfo(
        path=path,
        width=dataset.RasterXSize,
        height=dataset.RasterYSize,
        bands=dataset.RasterCount,
        dtype=gdal.GetDataTypeName(bands[0].DataType),
        geotransform=tuple(float(v) for v in dataset.GetGeoTransform()),
        crs_wkt=dataset.GetProjection() or "",
        nodata=[band.GetNoDataValue() for band in bands],
        band_names=names,
        wavelengths=wavelengths,
        units=[band.GetUnitType() or "" for band in bands],
        fwhm=_fwhm(dataset),
    )


class RasterReader:
    """An open raster that reads windows of all (or some) bands as float32 with a validity mask.

    Keeps the dataset open between windows (tiled inference reads hundreds of them). Use as a
    context manager or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike, info: RasterInfo | None = None):
        """``info``: the header a flow already read (raster_info), so the file's header is read once."""
        self.path = os.fspath(path)
        self._dataset = _open(self.path)
        self.info = info if info is not None else _info_of(self._dataset, self.path)
        bands = [self._dataset.GetRasterBand(i) for i in range(1, self.info.bands + 1)]
        self._scale = [band.GetScale() for band in bands]
        self._offset = [band.GetOffset() for band in bands]

    def __enter__(self) -> RasterReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the GDAL dataset."""
        self._dataset = None

    def read(self, window: Sequence[int] | None = None, bands: Sequence[int] | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """Read ``window`` = (xoff, yoff, xsize, ysize) (None = whole raster) of ``bands``.

        ``bands`` are 1-based band numbers as GDAL and QGIS count them (None = all). Returns
        (float32 cube (B, h, w) with band scale/offset applied and 0 at invalid pixels,
        bool valid (h, w)). Validity looks at the bands read.
        """
        if self._dataset is None:
            raise RuntimeError(f"The raster '{self.path}' was closed; open a new RasterReader.")
        info = self.info
        xoff, yoff, xsize, ysize = (0, 0, info.width, info.height) if window is None else map(int, window)
        if xsize <= 0 or ysize <= 0 or xoff < 0 or yoff < 0 or xoff + xsize > info.width or yoff + ysize > info.height:
            raise ValueError(
                f"The window (x={xoff}, y={yoff}, width={xsize}, height={ysize}) is not inside raster "
                f"'{self.path}' ({info.width} x {info.height} pixels)."
            )
        numbers = list(range(1, info.bands + 1)) if bands is None else [int(b) for b in bands]
        bad = [b for b in numbers if not 1 <= b <= info.bands]
        if bad or not numbers:
            raise ValueError(f"Band numbers must be 1..{info.bands} for raster '{self.path}', got {numbers_text(bands or [])}.")
        raw = self._dataset.ReadAsArray(xoff, yoff, xsize, ysize, band_list=numbers)
        raw = raw.reshape(len(numbers), ysize, xsize)
        valid = np.ones((ysize, xsize), dtype=bool)
        cube = np.empty(raw.shape, dtype=np.float32)
        for k, number in enumerate(numbers):
            plane = raw[k]
            nodata = info.nodata[number - 1]
            if nodata is not None and not np.isnan(nodata) and _fits(nodata, plane.dtype):
                valid &= plane != np.asarray(nodata, dtype=plane.dtype)
            cube[k] = plane
            scale, offset = self._scale[number - 1], self._offset[number - 1]
            if scale not in (None, 1.0) or offset not in (None, 0.0):
                cube[k] = cube[k] * np.float32(scale or 1.0) + np.float32(offset or 0.0)
        valid &= np.isfinite(cube).all(axis=0)
        cube[:, ~valid] = 0.0
        return cube, valid


def _fits(value: float, dtype: np.dtype) -> bool:
    """Whether a nodata value is representable in the band's type (else no pixel can equal it)."""
    if np.issubdtype(dtype, np.integer):
        limits = np.iinfo(dtype)
        return float(value).is_integer() and limits.min <= value <= limits.max
    return True


def read_cube(path: str | os.PathLike, window: Sequence[int] | None = None,
              bands: Sequence[int] | None = None, info: RasterInfo | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a raster (or a window of it) as float32 (B, H, W) and a valid mask (H, W).

    A pixel is invalid where any band read holds its nodata value or NaN/inf; invalid pixels are 0 in
    every band. ``window`` = (xoff, yoff, xsize, ysize); ``bands`` are 1-based band numbers; ``info``: the
    header already read by the caller (raster_info), not read again.
    """
    with RasterReader(path, info) as reader:
        return reader.read(window, bands)
