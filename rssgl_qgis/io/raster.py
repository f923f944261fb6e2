"""Raster input and output with GDAL: metadata, cube reading with a validity mask, atomic GeoTIFF writers.

Why these choices:

* Cubes come back as float32 (B, H, W) plus a boolean ``valid`` mask (H, W): a pixel is invalid when
  ANY band holds the band's nodata value or a non-finite number, because the network sees all bands
  of a pixel at once. Invalid pixels are set to 0 in every band so NaNs never reach arithmetic.
* Wavelengths are parsed from whatever the file carries (ENVI ``wavelength`` metadata, per-band
  ``wavelength`` items, band descriptions such as "Band 12: 512.3 nm") and always reported in
  nanometres, so a model can check that a raster has the bands it was trained on.
* Classification GeoTIFFs use the smallest unsigned type that holds the class values, nodata 0, a
  colour table and category names (names also stored in the TIFF's own metadata, since GTiff keeps
  category names in a ``.aux.xml`` sidecar), DEFLATE tiles, and a QGIS ``.qml`` style written here
  without importing qgis, so the layer opens paletted with class names in QGIS and in other tools.
* Every output goes through :class:`BlockWriter`: a temporary file in the target folder, written
  window by window (tiled inference writes as it goes), renamed on success, deleted on error/cancel.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

import numpy as np
from osgeo import gdal

from ..core.text import numbers_text
from .atomic import commit_temporaries, discard_temporary, temporary_path_for

__all__ = [
    "BlockWriter",
    "RasterInfo",
    "RasterReader",
    "classification_dtype",
    "classification_writer",
    "commit_writers",
    "paletted_qml",
    "qml_path_for",
    "raster_info",
    "read_class_table",
    "read_cube",
    "write_classification",
    "write_float",
]

log = logging.getLogger(__name__)
gdal.UseExceptions()

GEOTIFF_OPTIONS: tuple[str, ...] = ("TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE",
                                    "BIGTIFF=IF_SAFER")
_UNSIGNED_LIMITS: tuple[tuple[str, int], ...] = (("Byte", 255), ("UInt16", 65535), ("UInt32", 4294967295))
_NUMPY_TYPES = {"Byte": np.uint8, "UInt16": np.uint16, "UInt32": np.uint32}
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
    dataset = _open(path)
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

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._dataset = _open(self.path)
        self.info = raster_info(self.path)
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
              bands: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a raster (or a window of it) as float32 (B, H, W) and a valid mask (H, W).

    A pixel is invalid where any band read holds its nodata value or NaN/inf; invalid pixels are 0 in
    every band. ``window`` = (xoff, yoff, xsize, ysize); ``bands`` are 1-based band numbers.
    """
    with RasterReader(path) as reader:
        return reader.read(window, bands)


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def classification_dtype(class_values: Sequence[int]) -> str:
    """The smallest unsigned GDAL type ("Byte", "UInt16", "UInt32") that holds 0 and every class value."""
    top = int(max((int(v) for v in class_values), default=0))
    if min((int(v) for v in class_values), default=1) < 1:
        raise ValueError(f"Class values must be positive integers (0 is nodata), got {numbers_text(sorted(class_values))}.")
    for name, limit in _UNSIGNED_LIMITS:
        if top <= limit:
            return name
    raise ValueError(f"Class value {top} does not fit in a 32-bit unsigned raster; renumber the classes.")


def qml_path_for(raster_path: str | os.PathLike) -> str:
    """The style sidecar QGIS loads by default: the raster path with its extension replaced by .qml."""
    return os.path.splitext(os.fspath(raster_path))[0] + ".qml"


def _hex(color: Sequence[int]) -> str:
    r, g, b = (int(c) for c in color[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def paletted_qml(class_values: Sequence[int], class_names: Sequence[str], class_colors: Sequence[Sequence[int]],
                 band: int = 1) -> str:
    """A QGIS (3.x) layer style with a paletted renderer: one entry (value, colour, label) per class.

    Written with ElementTree, not qgis, so the I/O layer stays QGIS-free; tests load it in QGIS
    3.22. Nodata (0) is not an entry, so it stays transparent.
    """
    _check_classes(class_values, class_names, class_colors)
    root = ET.Element("qgis", {"version": "3.22.0", "styleCategories": "AllStyleCategories",
                               "hasScaleBasedVisibilityFlag": "0", "minScale": "1e+08", "maxScale": "0"})
    pipe = ET.SubElement(root, "pipe")
    renderer = ET.SubElement(pipe, "rasterrenderer", {"type": "paletted", "band": str(band), "opacity": "1",
                                                      "alphaBand": "-1", "nodataColor": ""})
    ET.SubElement(renderer, "rasterTransparency")
    palette = ET.SubElement(renderer, "colorPalette")
    for value, name, color in zip(class_values, class_names, class_colors, strict=True):
        alpha = int(color[3]) if len(color) > 3 else 255
        ET.SubElement(palette, "paletteEntry", {"value": str(int(value)), "color": _hex(color),
                                                "alpha": str(alpha), "label": str(name)})
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(pipe, "huesaturation", {"saturation": "0", "grayscaleMode": "0", "colorizeOn": "0",
                                          "colorizeRed": "255", "colorizeGreen": "128", "colorizeBlue": "128",
                                          "colorizeStrength": "100"})
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})
    blend = ET.SubElement(root, "blendMode")
    blend.text = "0"
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body + "\n"


def _check_classes(class_values, class_names, class_colors) -> None:
    values = [int(v) for v in class_values]
    if not (len(values) == len(class_names) == len(class_colors)):
        raise ValueError(
            f"Each class needs a value, a name and a colour; got {len(values)} values, {len(class_names)} names "
            f"and {len(class_colors)} colours."
        )
    if len(set(values)) != len(values) or any(v < 1 for v in values):
        raise ValueError(f"Class values must be distinct positive integers (0 is nodata), got {values}.")


class BlockWriter:
    """A GeoTIFF written window by window to a temporary file, renamed onto ``path`` by :meth:`commit`.

    Georeferencing comes from ``info`` (a :class:`RasterInfo` of the input raster). Use it as a context
    manager: leaving the block normally commits, an exception (including cancellation) aborts and
    deletes everything written. ``qml`` (text) is written atomically next to the raster on commit.
    """

    def __init__(self, path: str | os.PathLike, info: RasterInfo, *, bands: int = 1, dtype: str = "Float32",
                 nodata: float | None = None, band_names: Sequence[str] | None = None,
                 options: Sequence[str] = GEOTIFF_OPTIONS, qml: str | None = None):
        self.path = os.fspath(path)
        if not self.path.lower().endswith((".tif", ".tiff")):
            raise ValueError(f"Outputs are GeoTIFF files; '{self.path}' should end in .tif.")
        gdal_type = gdal.GetDataTypeByName(dtype)
        if gdal_type == gdal.GDT_Unknown:
            raise ValueError(f"Unknown GDAL data type {dtype!r}.")
        if band_names is not None and len(band_names) != bands:
            raise ValueError(f"Got {len(band_names)} band names for {bands} bands.")
        self.info, self.bands, self.dtype, self.qml = info, bands, dtype, qml
        predictor = "PREDICTOR=3" if dtype.startswith("Float") else "PREDICTOR=2"
        self._tmp = temporary_path_for(self.path)
        try:
            driver = gdal.GetDriverByName("GTiff")
            self._dataset = driver.Create(self._tmp, info.width, info.height, bands, gdal_type,
                                          [*options, predictor])
            self._dataset.SetGeoTransform(info.geotransform)
            if info.crs_wkt:
                self._dataset.SetProjection(info.crs_wkt)
            for i in range(1, bands + 1):
                band = self._dataset.GetRasterBand(i)
                if nodata is not None:
                    band.SetNoDataValue(float(nodata))
                if band_names is not None:
                    band.SetDescription(str(band_names[i - 1]))
        except RuntimeError as exc:
            self._dataset = None
            discard_temporary(self._tmp)
            raise ValueError(f"Cannot create '{self.path}': {str(exc).strip()}. Check free disk space and "
                             "permissions.") from exc
        self._done = False
        self._pairs: list[tuple[str, str]] | None = None
        self._qml_tmp: str | None = None

    @property
    def dataset(self) -> gdal.Dataset:
        """The open temporary dataset (for colour tables, metadata); only until commit/abort."""
        if self._dataset is None:
            raise RuntimeError(f"The output '{self.path}' is already finished.")
        return self._dataset

    def write(self, array: np.ndarray, xoff: int = 0, yoff: int = 0) -> None:
        """Write a (h, w) or (bands, h, w) block with its top-left pixel at (xoff, yoff)."""
        block = np.asarray(array)
        if block.ndim == 2:
            block = block[None]
        if block.ndim != 3 or block.shape[0] != self.bands:
            raise ValueError(f"Expected a block shaped ({self.bands}, h, w) or (h, w) for '{self.path}', "
                             f"got {np.asarray(array).shape}.")
        h, w = block.shape[1:]
        if xoff < 0 or yoff < 0 or xoff + w > self.info.width or yoff + h > self.info.height:
            raise ValueError(f"A {h} x {w} block at (x={xoff}, y={yoff}) does not fit in the "
                             f"{self.info.height} x {self.info.width} output '{self.path}'.")
        try:
            self.dataset.WriteArray(block, xoff=xoff, yoff=yoff)
        except RuntimeError as exc:
            self.abort()
            raise ValueError(f"Cannot write '{self.path}': {str(exc).strip()}. Check free disk space.") from exc

    def prepare(self) -> list[tuple[str, str]]:
        """Close the temporary raster and write the temporary .qml; return the (temporary, final) pairs.

        Nothing is renamed yet: :func:`commit_writers` renames the pairs of several writers together.
        On failure everything temporary is deleted and a ValueError says what happened.
        """
        if self._pairs is not None:
            return self._pairs
        dataset, self._dataset = self.dataset, None
        try:
            dataset.FlushCache()
            del dataset  # closing is what writes the last tiles and the .aux.xml
        except RuntimeError as exc:
            self.abort()
            raise ValueError(f"Cannot finish '{self.path}': {str(exc).strip()}. Check free disk space.") from exc
        pairs = [(self._tmp, self.path)]
        if self.qml is not None:
            qml_path = qml_path_for(self.path)
            self._qml_tmp = temporary_path_for(qml_path)
            try:
                with open(self._qml_tmp, "w", encoding="utf-8") as handle:
                    handle.write(self.qml)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                self.abort()
                raise ValueError(f"Cannot write '{qml_path}': {exc.strerror or exc}. Check free disk space.") from exc
            pairs.append((self._qml_tmp, qml_path))
        self._pairs = pairs
        return pairs

    def commit(self) -> str:
        """Close the file and rename it, its sidecars and its .qml onto the final names together."""
        if not self._done:
            commit_writers(self)
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary output; nothing is left at ``path`` or next to it."""
        self._dataset = None
        discard_temporary(self._tmp)
        if self._qml_tmp is not None:
            discard_temporary(self._qml_tmp, ())
        self._done = True

    def __enter__(self) -> BlockWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def __del__(self) -> None:  # a writer dropped without commit must not leave its temporary file
        if not getattr(self, "_done", True):
            self.abort()


def commit_writers(*writers: BlockWriter) -> None:
    """Finish several writers and rename all their files as one transaction.

    Use it when one run produces several outputs (classification, confidence, probabilities): either
    all of them replace the previous run's files or none does. Any failure aborts every writer.
    """
    pending = [w for w in writers if not w._done]
    try:
        pairs = [pair for w in pending for pair in w.prepare()]
    except BaseException:
        for w in pending:
            w.abort()
        raise
    try:
        commit_temporaries(pairs)
    finally:
        for w in pending:
            w._done = True


def classification_writer(path: str | os.PathLike, info: RasterInfo, class_values: Sequence[int],
                          class_names: Sequence[str], class_colors: Sequence[Sequence[int]], *,
                          nodata: int = 0, qml: bool = True) -> BlockWriter:
    """A :class:`BlockWriter` for a class map: smallest unsigned type, colour table, names, .qml."""
    _check_classes(class_values, class_names, class_colors)
    if nodata != 0:
        raise ValueError(f"Classification nodata must be 0 (class values start at 1), got {nodata}.")
    dtype = classification_dtype(class_values)
    style = paletted_qml(class_values, class_names, class_colors) if qml else None
    writer = BlockWriter(path, info, bands=1, dtype=dtype, nodata=0, band_names=["Class"], qml=style)
    band = writer.dataset.GetRasterBand(1)
    values = [int(v) for v in class_values]
    top = max(values)
    if dtype in ("Byte", "UInt16"):  # GTiff stores colour tables for these types only
        table = gdal.ColorTable()
        table.SetColorEntry(0, (0, 0, 0, 0))
        for value, color in zip(values, class_colors, strict=True):
            rgba = tuple(int(c) for c in color[:3]) + ((int(color[3]),) if len(color) > 3 else (255,))
            table.SetColorEntry(value, rgba)
        band.SetColorTable(table)
        band.SetColorInterpretation(gdal.GCI_PaletteIndex)
        names = [""] * (top + 1)
        names[0] = "Unclassified"
        for value, name in zip(values, class_names, strict=True):
            names[value] = str(name)
        band.SetCategoryNames(names)
    else:
        log.warning("Class values up to %d need UInt32; GeoTIFF has no colour table for it, the .qml carries "
                    "the colours.", top)
    # Inside the TIFF itself (GDAL_METADATA tag), for readers that ignore .aux.xml sidecars.
    band.SetMetadataItem("CLASS_VALUES", json.dumps(values))
    band.SetMetadataItem("CLASS_NAMES", json.dumps([str(n) for n in class_names], ensure_ascii=False))
    band.SetMetadataItem("CLASS_COLORS", json.dumps([[int(c) for c in color[:3]] for color in class_colors]))
    return writer


def write_classification(path: str | os.PathLike, classes: np.ndarray, info: RasterInfo,
                         class_values: Sequence[int], class_names: Sequence[str],
                         class_colors: Sequence[Sequence[int]], nodata: int = 0) -> str:
    """Write a class map (H, W) of class values (0 = nodata) as a styled GeoTIFF plus .qml, atomically."""
    classes = np.asarray(classes)
    if classes.shape != info.shape:
        raise ValueError(f"The classification is {classes.shape[0]} x {classes.shape[1]} pixels but the raster "
                         f"'{info.path}' is {info.height} x {info.width}; classify the same raster.")
    if not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(f"A classification holds integer class values, got an array of {classes.dtype}.")
    unknown = np.setdiff1d(np.unique(classes), np.r_[0, np.asarray(class_values, dtype=np.int64)])
    if unknown.size:
        raise ValueError(f"The classification holds values {unknown[:10].tolist()} that are not class values "
                         f"({list(map(int, class_values))}) or 0 (nodata).")
    with classification_writer(path, info, class_values, class_names, class_colors, nodata=nodata) as writer:
        writer.write(classes.astype(_NUMPY_TYPES[writer.dtype]))
    return os.fspath(path)


def write_float(path: str | os.PathLike, array: np.ndarray, info: RasterInfo,
                band_names: Sequence[str] | None = None, nodata: float | None = -1.0) -> str:
    """Write a float32 raster (H, W) or (K, H, W) on the grid of ``info`` (confidence, probabilities)."""
    data = np.asarray(array, dtype=np.float32)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or data.shape[1:] != info.shape:
        raise ValueError(f"Expected an array shaped (H, W) or (K, H, W) with H x W = {info.height} x {info.width} "
                         f"(the raster '{info.path}'), got {np.asarray(array).shape}.")
    with BlockWriter(path, info, bands=data.shape[0], dtype="Float32", nodata=nodata,
                     band_names=band_names) as writer:
        writer.write(data)
    return os.fspath(path)


def read_class_table(path: str | os.PathLike, band: int = 1) -> tuple[list[int], list[str], list[tuple[int, int, int]]]:
    """Class values, names and colours stored in a classification raster (ours or another tool's).

    Looks at our CLASS_* band metadata first, then at GDAL category names (value = index, empty names
    skipped, index 0 skipped) and the colour table. Returns empty lists when the file has neither.
    """
    dataset = _open(os.fspath(path))
    b = dataset.GetRasterBand(band)
    meta = b.GetMetadata() or {}
    if "CLASS_VALUES" in meta and "CLASS_NAMES" in meta:
        try:
            values = [int(v) for v in json.loads(meta["CLASS_VALUES"])]
            names = [str(n) for n in json.loads(meta["CLASS_NAMES"])]
            colors = [tuple(int(c) for c in rgb) for rgb in json.loads(meta.get("CLASS_COLORS", "[]"))]
            if len(names) == len(values):
                if len(colors) != len(values):
                    colors = _colors_from_table(b, values)
                return values, names, colors
        except (ValueError, TypeError):
            log.warning("Ignoring malformed class metadata in '%s'.", path)
    categories = b.GetCategoryNames() or []
    values = [i for i, name in enumerate(categories) if i > 0 and name]
    names = [categories[i] for i in values]
    return values, names, _colors_from_table(b, values)


def _colors_from_table(band: gdal.Band, values: Sequence[int]) -> list[tuple[int, int, int]]:
    table = band.GetColorTable()
    if table is None:
        return []
    return [tuple(table.GetColorEntry(v)[:3]) if v < table.GetCount() else (0, 0, 0) for v in values]
