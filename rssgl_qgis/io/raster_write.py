"""Raster output with GDAL: atomic GeoTIFF block writers, classification rasters with their class table
and QGIS style, and reading that class table back (the format is written and read in one place).

Why these choices:

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
from collections.abc import Sequence
from xml.etree import ElementTree as ET

import numpy as np
from osgeo import gdal

from ..core.text import numbers_text
from .atomic import commit_temporaries, discard_temporary, temporary_path_for
from .raster import GEOTIFF_OPTIONS, RasterInfo, _open

__all__ = [
    "BlockWriter",
    "classification_dtype",
    "classification_writer",
    "commit_writers",
    "paletted_qml",
    "qml_path_for",
    "read_class_table",
    "write_classification",
    "write_float",
]

log = logging.getLogger(__name__)

_UNSIGNED_LIMITS: tuple[tuple[str, int], ...] = (("Byte", 255), ("UInt16", 65535), ("UInt32", 4294967295))
_NUMPY_TYPES = {"Byte": np.uint8, "UInt16": np.uint16, "UInt32": np.uint32}


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
