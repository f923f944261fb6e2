"""Training and reference samples as a label array on the raster's pixel grid (OGR/GDAL only).

Users bring samples as polygons or points with a class field (integer ids or text names), in any CRS,
or as a label raster. The engine wants one thing: an (H, W) integer array on the raster grid, 0 =
unlabelled, of the smallest type that holds the class values (uint8, uint16 or int32: a 20000 x 20000
raster's labels are 400 MB in uint8, 3.2 GB in int64), with the sparse list of its labelled pixels beside
it (``SampleLabels.labelled``), so that nothing downstream scans the whole raster to find a few thousand
training pixels. The rules, chosen to be predictable and honest:

* features are reprojected to the raster CRS with OGR (axis order forced to the traditional x/y GIS
  order, so EPSG:4326 layers are not swapped);
* polygons are rasterised with GDAL's pixel-centre rule (a pixel is labelled when its centre lies in
  the polygon, no ALL_TOUCHED), points label the pixel they fall in, lines the pixels they cross;
* integer class fields are used as class values as they are (they must be > 0: 0 means unlabelled);
  float fields are accepted when every value is whole; text fields map to 1..N in sorted order and the
  names are kept (``_text_class_values``): names that differ only in case or surrounding spaces are one
  class (the most frequent spelling kept, a warning names them), codes written as text ("1", "2", "10")
  keep their numbers like an integer field, and in a field mixing codes and names the codes keep their
  numbers and the names are numbered after the largest code (a warning gives the values);
* features with no class value are skipped, features entirely outside the raster are counted, and
  pixels claimed by polygons of *different* classes are left unlabelled; each case is reported in
  ``warnings`` rather than silently resolved by drawing order;
* a label raster must be on exactly the same grid (size, geotransform within half a pixel, CRS).
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from osgeo import gdal, ogr, osr

from ..core.data.sampling import labelled_pixels
from ..core.errors import Cancelled
from ..core.text import names_text, number_text, numbers_text
from .burn import BURN_PROGRESS_SECONDS, Every, label_dtype, rasterise
from .raster import RasterInfo, raster_info
from .raster_write import read_class_table

__all__ = ["SampleLabels", "labels_from_raster", "labels_from_vector", "grid_mismatch", "label_dtype"]

log = logging.getLogger(__name__)
gdal.UseExceptions()
ogr.UseExceptions()
osr.UseExceptions()

_INTEGER_TYPES = (ogr.OFTInteger, ogr.OFTInteger64)
#: A class code written as text: "1", "10", "+3", "-1" (refused later like an integer 0 or -1).
_CODE = re.compile(r"[+-]?[0-9]+")


@dataclass
class SampleLabels:
    """Labels on the raster grid and what happened on the way.

    ``labels`` (H, W) holds the ORIGINAL class values (0 = unlabelled) in the smallest of uint8, uint16 and
    int32 that holds the largest (:func:`label_dtype`); ``class_values`` and ``class_names`` list the classes
    found in the samples, sorted by value. ``dropped_outside`` counts features entirely outside the raster;
    ``n_features`` is the number of features in the layer (0 for a label raster); ``conflict_pixels`` counts
    pixels claimed by two classes. ``groups`` (H, W) numbers the sample each labelled pixel comes from (its
    feature, in the smallest type that holds the feature count; for a label raster, its connected patch of
    one class, int32), 0 elsewhere: cross-validation folds keep a sample whole
    (core.data.sampling.group_folds). ``pixels`` (rows, columns), row-major, are the labelled pixels where
    the reader found them on its way (the burn knows them window by window); :meth:`labelled` returns them
    with their values.
    """

    labels: np.ndarray
    class_values: np.ndarray
    class_names: list[str]
    groups: np.ndarray
    dropped_outside: int = 0
    n_features: int = 0
    warnings: list[str] = field(default_factory=list)
    conflict_pixels: int = 0
    pixels: tuple[np.ndarray, np.ndarray] | None = None

    def labelled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, columns, class values) of the labelled pixels, row-major as ``np.nonzero(labels)`` gives them,
        without scanning the raster where the reader kept them (``pixels``)."""
        if self.pixels is None:
            self.pixels = labelled_pixels(self.labels)
        rows, cols = self.pixels
        return rows, cols, self.labels[rows, cols]


# --------------------------------------------------------------------------------------------------
# Vector samples
# --------------------------------------------------------------------------------------------------


def _split_source(vector_path: str, layer_name: str | None) -> tuple[str, str | int | None]:
    """Accept QGIS-style sources "file.gpkg|layername=x" (or |layerid=n) as well as plain paths."""
    parts = vector_path.split("|")
    path, layer = parts[0], layer_name
    for option in parts[1:]:
        key, _, value = option.partition("=")
        if layer is None and key.strip().lower() == "layername":
            layer = value
        elif layer is None and key.strip().lower() == "layerid" and value.strip().isdigit():
            layer = int(value)
    return path, layer


def _open_layer(vector_path: str, layer_name: str | int | None):
    try:
        source = gdal.OpenEx(vector_path, gdal.OF_VECTOR)
    except RuntimeError as exc:
        source, reason = None, str(exc).strip()
    else:
        reason = "GDAL found no vector data in it"
    if source is None:
        if not os.path.exists(vector_path):
            reason = "the file does not exist"
        raise ValueError(f"Cannot open the sample layer '{vector_path}': {reason}. Choose a vector file "
                         "(GeoPackage, shapefile, GeoJSON, ...) that holds the training samples.")
    names = [source.GetLayerByIndex(i).GetName() for i in range(source.GetLayerCount())]
    if layer_name is None:
        if len(names) != 1:
            raise ValueError(f"'{vector_path}' holds {len(names)} layers ({', '.join(names) or 'none'}); choose the "
                             "layer with the samples.")
        layer = source.GetLayerByIndex(0)
    elif isinstance(layer_name, int):
        layer = source.GetLayerByIndex(layer_name) if 0 <= layer_name < len(names) else None
    else:
        layer = source.GetLayerByName(layer_name)
    if layer is None:
        raise ValueError(f"'{vector_path}' has no layer '{layer_name}'; its layers are: {', '.join(names)}.")
    return source, layer


def _transformation(layer, info: RasterInfo, layer_label: str, warnings: list[str]):
    """OGR transformation from the layer CRS to the raster CRS (None when they are the same)."""
    source_srs = layer.GetSpatialRef()
    if not info.crs_wkt or source_srs is None:
        if bool(info.crs_wkt) != (source_srs is not None):
            missing = "the raster" if not info.crs_wkt else f"layer {layer_label}"
            warnings.append(f"{missing.capitalize()} has no CRS; the samples are assumed to be in the raster's "
                            "coordinates.")
        return None
    source_srs = source_srs.Clone()
    target_srs = osr.SpatialReference()
    target_srs.ImportFromWkt(info.crs_wkt)
    for srs in (source_srs, target_srs):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    if source_srs.IsSame(target_srs):
        return None
    return osr.CoordinateTransformation(source_srs, target_srs)


def _check_positive(values: np.ndarray, field_name: str, layer_label: str, fids: list[int]) -> None:
    """Class values must be 1 .. 2**31 - 1 (0 means unlabelled)."""
    if (values <= 0).any():
        bad = int(np.flatnonzero(values <= 0)[0])
        raise ValueError(
            f"Field '{field_name}' of layer {layer_label} has class value {number_text(values[bad])} (feature {fids[bad]}); "
            "class values must be positive integers because 0 means 'unlabelled'. Renumber the classes from 1."
        )
    if (values > np.iinfo(np.int32).max).any():
        raise ValueError(f"Field '{field_name}' of layer {layer_label} has class value {int(values.max())}, larger "
                         "than the plugin supports (2147483647); renumber the classes.")


def _text_class_values(texts: list[str], spellings: list[str], field_name: str, layer_label: str, fids: list[int],
                       warnings: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Class values of a text field: (value per feature, sorted class values, their names).

    ``texts`` are the stripped values, ``spellings`` the values as stored (for the warnings). Names that
    differ only in case or surrounding spaces are one class, named by its most frequent spelling (the
    first in the layer on a tie). Codes ("1", "10") keep their numbers, as in an integer field, so a map
    trained on them compares with the same codes stored as integers. Names are numbered 1..N in sorted
    order, or after the largest code where the field mixes codes and names.
    """
    keys = [int(t) if _CODE.fullmatch(t) else t.casefold() for t in texts]
    members: dict[int | str, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    name_of: dict[int | str, str] = {}
    merged, recoded = [], []  # 'Roof', 'roof' as 'Roof' / '01', '1' as 1
    for key, rows in members.items():
        name_of[key] = Counter(texts[i] for i in rows).most_common(1)[0][0]
        variants = list(dict.fromkeys(spellings[i] for i in rows))
        if len(variants) == 1:
            continue
        if isinstance(key, str) or len({texts[i] for i in rows}) == 1:
            merged.append(f"{names_text(variants)} as {name_of[key]!r}")
        else:
            recoded.append(f"{names_text(variants)} as {key}")
    if merged:
        warnings.append("Class names that differ only in case or surrounding spaces were merged into one class each: "
                        f"{'; '.join(merged)} (the most frequent spelling is kept, on a tie the first in the layer).")
    if recoded:
        warnings.append(f"Class codes written differently in field '{field_name}' were read as the same number: "
                        f"{'; '.join(recoded)}.")
    codes = sorted(k for k in members if isinstance(k, int))
    names = sorted((k for k in members if isinstance(k, str)), key=lambda k: (k, name_of[k]))
    code_rows = [i for i, k in enumerate(keys) if isinstance(k, int)]
    _check_positive(np.array([keys[i] for i in code_rows], dtype=object), field_name, layer_label,
                    [fids[i] for i in code_rows])
    start = max(codes, default=0) + 1
    value_of: dict[int | str, int] = {k: k for k in codes}
    value_of.update({k: start + i for i, k in enumerate(names)})
    if codes and names:
        warnings.append(
            f"Field '{field_name}' of layer {layer_label} mixes class codes and names: the codes keep their numbers "
            f"({', '.join(map(str, codes))}), the names are numbered after them: "
            + ", ".join(f"{value_of[k]} {name_of[k]!r}" for k in names) + ".")
    order = [*codes, *names]
    return (np.array([value_of[k] for k in keys], dtype=np.int64), np.array([value_of[k] for k in order]),
            [name_of[k] for k in order])


def _class_values(raw: list, field_type: int, field_name: str, layer_label: str, fids: list[int]):
    """Map raw numeric field values to (class values per feature, sorted class values, default names)."""
    values = np.asarray(raw, dtype=np.float64)
    if field_type == ogr.OFTReal:
        whole = np.isfinite(values) & (values == np.round(values))
        if not whole.all():
            bad = int(np.flatnonzero(~whole)[0])
            raise ValueError(
                f"Field '{field_name}' of layer {layer_label} holds non-integer numbers (e.g. {number_text(raw[bad], 12)} in feature "
                f"{fids[bad]}); class values must be whole numbers. Use an integer or a text field for the classes."
            )
    values = values.astype(np.int64)
    _check_positive(values, field_name, layer_label, fids)
    classes = np.unique(values)
    return values, classes, [f"Class {v}" for v in classes]


def labels_from_vector(vector_path: str | os.PathLike, layer_name: str | None, class_field: str,
                       info: RasterInfo, name_field: str | None = None, *, progress=None,
                       should_stop=None) -> SampleLabels:
    """Rasterise sample polygons/points of ``class_field`` onto the grid of ``info``.

    ``vector_path`` may carry a QGIS-style "|layername=..." suffix; ``layer_name`` None means the only
    layer. Class names come from the text class field itself, or from ``name_field``; when
    ``name_field`` is None and the class field is numeric, a text field called ``class_name`` (as in
    the plugin's training layers) supplies the names if the layer has one.
    ``progress(percent, message)`` gets the share of burn windows done (0-100) and ``should_stop()`` is asked
    before each window (True raises core.errors.Cancelled): samples spread over a large raster burn hundreds.
    Raises ValueError with a sentence naming the layer/field and saying what to do.
    """
    path, layer_name = _split_source(os.fspath(vector_path), layer_name)
    source, layer = _open_layer(path, layer_name)
    layer_label = f"'{layer.GetName()}'"
    class_field, field_index, field_type, name_field, name_index = _sample_fields(
        layer, layer_label, class_field, name_field)

    warnings: list[str] = []
    transform = _transformation(layer, info, layer_label, warnings)
    xmin, ymin, xmax, ymax = info.extent()
    extent = ogr.CreateGeometryFromWkt(
        f"POLYGON(({xmin} {ymin},{xmax} {ymin},{xmax} {ymax},{xmin} {ymax},{xmin} {ymin}))")
    scan = _read_samples(layer, field_index, field_type, name_index, transform, extent)
    _check_samples(scan, layer_label, class_field, info, warnings)

    if field_type == ogr.OFTString:
        per_feature, class_values, class_names = _text_class_values(
            scan.raw_values, scan.spellings, class_field, layer_label, scan.fids, warnings)
    else:
        per_feature, class_values, class_names = _class_values(scan.raw_values, field_type, class_field,
                                                               layer_label, scan.fids)
    if scan.raw_names:
        class_names = _names_from_field(per_feature, class_values, scan.raw_names, class_names, name_field,
                                        warnings)
    index_of = {int(v): i + 1 for i, v in enumerate(class_values)}
    burn = np.array([index_of[int(v)] for v in per_feature], dtype=np.int64)
    labels, conflicts, groups, present, pixels = rasterise(scan.geometries, burn, info, class_values, progress,
                                                            should_stop)
    if conflicts:
        warnings.append(f"{conflicts} pixel(s) are covered by samples of different classes in layer {layer_label} "
                        "and were left unlabelled; fix the overlapping polygons to use them.")
    if not present.any():
        raise ValueError(f"The samples of layer {layer_label} overlap the raster but cover no pixel centre; draw "
                         "larger polygons (at least one pixel across) or use points.")
    empty = [name for name, found in zip(class_names, present, strict=True) if not found]
    if empty:
        warnings.append(f"Class(es) {names_text(empty)} cover no pixel centre of the raster.")
    for message in warnings:
        log.warning(message)
    return SampleLabels(labels=labels, class_values=np.asarray(class_values, dtype=np.int64),
                        class_names=list(class_names), dropped_outside=scan.outside,
                        n_features=scan.n_features, warnings=warnings, conflict_pixels=conflicts,
                        groups=groups, pixels=pixels)


def _sample_fields(layer, layer_label: str, class_field: str,
                   name_field: str | None) -> tuple[str, int, int, str | None, int | None]:
    """The class field as the layer spells it (matched case-insensitively), its index and type, and the
    field of class names with its index (``class_name`` by default beside a numeric class field)."""
    definition = layer.GetLayerDefn()
    fields = [definition.GetFieldDefn(i) for i in range(definition.GetFieldCount())]
    field_names = [f.GetName() for f in fields]
    if class_field not in field_names:
        lower = [n.lower() for n in field_names]
        if class_field.lower() in lower:
            class_field = field_names[lower.index(class_field.lower())]
        else:
            raise ValueError(f"Layer {layer_label} has no field '{class_field}'; its fields are: "
                             f"{', '.join(field_names) or 'none'}. Choose the field that holds each sample's class.")
    field_index = field_names.index(class_field)
    field_type = fields[field_index].GetType()
    if field_type not in (*_INTEGER_TYPES, ogr.OFTReal, ogr.OFTString):
        raise ValueError(f"Field '{class_field}' of layer {layer_label} is of type "
                         f"{fields[field_index].GetFieldTypeName(field_type)}; use an integer or a text field.")
    if name_field is None and field_type != ogr.OFTString and "class_name" in field_names:
        name_field = "class_name"
    if name_field is not None and name_field not in field_names:
        raise ValueError(f"Layer {layer_label} has no field '{name_field}' for the class names; its fields are: "
                         f"{', '.join(field_names)}.")
    name_index = field_names.index(name_field) if name_field is not None else None
    return class_field, field_index, field_type, name_field, name_index


@dataclass
class _SampleScan:
    """The features of a sample layer that have a class value and lie on the raster (in layer order), and
    how many were read and skipped (for the warnings)."""

    geometries: list = field(default_factory=list)
    raw_values: list = field(default_factory=list)
    fids: list[int] = field(default_factory=list)
    raw_names: list[str] = field(default_factory=list)
    spellings: list[str] = field(default_factory=list)
    n_features: int = 0
    no_value: int = 0
    no_geometry: int = 0
    outside: int = 0


def _read_samples(layer, field_index: int, field_type: int, name_index: int | None, transform,
                  extent) -> _SampleScan:
    """Read every feature once: its class value (as stored; text stripped), its geometry in the raster CRS,
    its FID and name; features without a value or geometry, or off the raster, are only counted."""
    scan = _SampleScan()
    layer.ResetReading()
    for feature in layer:
        scan.n_features += 1
        if not feature.IsFieldSetAndNotNull(field_index):
            scan.no_value += 1
            continue
        if field_type == ogr.OFTString:
            spelling = feature.GetFieldAsString(field_index)
            value = spelling.strip()
            if not value:
                scan.no_value += 1
                continue
        elif field_type in _INTEGER_TYPES:
            value = feature.GetFieldAsInteger64(field_index)
        else:
            value = feature.GetFieldAsDouble(field_index)
        geometry = feature.GetGeometryRef()
        if geometry is None or geometry.IsEmpty():
            scan.no_geometry += 1
            continue
        geometry = geometry.Clone()
        if transform is not None:
            try:
                geometry.Transform(transform)
            except RuntimeError:
                scan.outside += 1  # not representable in the raster CRS: certainly not on the raster
                continue
        if not geometry.Intersects(extent):
            scan.outside += 1
            continue
        scan.geometries.append(geometry)
        scan.raw_values.append(value)
        if field_type == ogr.OFTString:
            scan.spellings.append(spelling)
        scan.fids.append(feature.GetFID())
        if name_index is not None:
            scan.raw_names.append(feature.GetFieldAsString(name_index).strip())
    return scan


def _check_samples(scan: _SampleScan, layer_label: str, class_field: str, info: RasterInfo,
                   warnings: list[str]) -> None:
    """Warn about skipped and dropped features; refuse a layer none of whose samples can be used."""
    if scan.no_value:
        warnings.append(f"{scan.no_value} feature(s) of layer {layer_label} have no value in field "
                        f"'{class_field}' and were skipped.")
    if scan.no_geometry:
        warnings.append(f"{scan.no_geometry} feature(s) of layer {layer_label} have no geometry and were "
                        "skipped.")
    if scan.outside:
        warnings.append(f"{scan.outside} of {scan.n_features} feature(s) of layer {layer_label} lie outside "
                        "the raster and were dropped.")
    if not scan.geometries:
        n_features = scan.n_features
        if n_features == 0 or n_features == scan.no_value + scan.no_geometry:
            raise ValueError(f"Layer {layer_label} has no sample with a class in field '{class_field}' "
                             f"({n_features} feature(s)); draw or load samples with a class first.")
        raise ValueError(
            f"None of the {n_features} feature(s) of layer {layer_label} overlap the raster '{info.path}'. Check that "
            "the samples belong to this raster and that the layer's CRS is set correctly."
        )


def _names_from_field(per_feature, class_values, raw_names, default_names, name_field, warnings) -> list[str]:
    """The most common name given to each class value in ``name_field`` (warn when they disagree)."""
    names = []
    for value, default in zip(class_values, default_names, strict=True):
        counts = Counter(n for v, n in zip(per_feature, raw_names, strict=True) if v == value and n)
        if not counts:
            names.append(default)
            continue
        best = counts.most_common(1)[0][0]
        if len(counts) > 1:
            warnings.append(f"Class {value} has several names in field '{name_field}' "
                            f"({', '.join(sorted(counts))}); using '{best}'.")
        names.append(best)
    return names


def _patches(labels: np.ndarray) -> np.ndarray:
    """A label raster's "samples" for cross-validation: core.data.sampling.label_patches."""
    from ..core.data.sampling import label_patches

    return label_patches(labels)


# --------------------------------------------------------------------------------------------------
# Raster samples
# --------------------------------------------------------------------------------------------------


def grid_mismatch(a: RasterInfo, b: RasterInfo) -> str | None:
    """Why raster ``b`` is not on the grid of ``a`` (None when it is): size, geotransform, CRS."""
    if (a.width, a.height) != (b.width, b.height):
        return f"it is {b.width} x {b.height} pixels but the raster is {a.width} x {a.height}"
    ga, gb = np.array(a.geotransform), np.array(b.geotransform)
    px = max(abs(ga[1]), abs(ga[5]), 1e-12)
    origin_shift = max(abs(ga[0] - gb[0]), abs(ga[3] - gb[3]))
    # The far corner may drift by less than half a pixel too.
    drift = max(abs(ga[1] - gb[1]) * a.width, abs(ga[5] - gb[5]) * a.height,
                abs(ga[2] - gb[2]) * a.height, abs(ga[4] - gb[4]) * a.width)
    if origin_shift > 0.5 * px or drift > 0.5 * px:
        return (f"its geotransform {numbers_text(gb)} differs from the raster's "
                f"{numbers_text(ga)} by more than half a pixel")
    if a.crs_wkt and b.crs_wkt:
        sa, sb = osr.SpatialReference(), osr.SpatialReference()
        sa.ImportFromWkt(a.crs_wkt)
        sb.ImportFromWkt(b.crs_wkt)
        if not sa.IsSame(sb):
            return f"its CRS ({sb.GetName()}) differs from the raster's ({sa.GetName()})"
    return None


def labels_from_raster(label_path: str | os.PathLike, info: RasterInfo, band: int = 1, *, progress=None,
                       should_stop=None) -> SampleLabels:
    """Labels from a raster on the same grid as ``info``; 0 and nodata are unlabelled.

    Class names come from the label raster's class table (our metadata or GDAL category names) when
    it has one, else "Class <value>". The band is read in strips of rows (:func:`_read_label_band`):
    ``progress(percent, message)`` hears of them and ``should_stop()`` is asked before each (True raises
    core.errors.Cancelled).
    """
    label_path = os.fspath(label_path)
    label_info = raster_info(label_path)
    reason = grid_mismatch(info, label_info)
    if reason:
        raise ValueError(f"The label raster '{label_path}' is not on the grid of '{info.path}': {reason}. Resample it "
                         "onto the raster's grid (e.g. with Raster > Align Rasters) or rasterise the samples again.")
    if not 1 <= band <= label_info.bands:
        raise ValueError(f"The label raster '{label_path}' has {label_info.bands} band(s); band {band} does not exist.")
    warnings: list[str] = []
    if bool(info.crs_wkt) != bool(label_info.crs_wkt):
        warnings.append("One of the raster and the label raster has no CRS; they are assumed to match.")
    dataset = gdal.Open(label_path)
    values = _read_label_band(dataset.GetRasterBand(band), label_info.nodata[band - 1], label_path, progress,
                              should_stop)
    dataset = None
    rows, cols = labelled_pixels(values)
    class_values = np.unique(values[rows, cols]).astype(np.int64)
    if class_values.size == 0:
        raise ValueError(f"The label raster '{label_path}' has no labelled pixel (all 0 or nodata); it needs class "
                         "values > 0 where samples are.")
    table_values, table_names, _ = read_class_table(label_path, band)
    by_value = dict(zip(table_values, table_names, strict=False))
    names = [by_value.get(int(v)) or f"Class {int(v)}" for v in class_values]
    return SampleLabels(labels=values, class_values=class_values, class_names=names, dropped_outside=0, n_features=0,
                        warnings=warnings, groups=_patches(values), pixels=(rows, cols))


#: Bytes of one strip of a label raster read at a time (its checks make a few temporaries of its size).
_LABEL_STRIP_BYTES = 64 << 20


def _read_label_band(band, nodata: float | None, label_path: str, progress, should_stop) -> np.ndarray:
    """A label band's class values (0 where 0, nodata or NaN) in label_dtype of the largest, read in strips with
    progress and cancel; non-integer, negative and too large values are refused in words."""
    width, height = band.XSize, band.YSize
    rows = max(1, min(height, _LABEL_STRIP_BYTES // max(1, width * 8)))
    report = Every(progress, BURN_PROGRESS_SECONDS)
    values = None
    top = 0
    for r0 in range(0, height, rows):
        if should_stop is not None and should_stop():
            raise Cancelled("Reading the label raster was cancelled.")
        report(100.0 * r0 / height, f"reading the label raster: {r0} of {height} rows")
        raw = band.ReadAsArray(0, r0, width, min(rows, height - r0))
        unlabelled = ~np.isfinite(raw) if np.issubdtype(raw.dtype, np.floating) else np.zeros(raw.shape, bool)
        if nodata is not None and not np.isnan(nodata):
            unlabelled |= raw == nodata
        strip = np.where(unlabelled, 0, raw)
        if np.issubdtype(strip.dtype, np.floating) and (strip != np.round(strip)).any():
            raise ValueError(f"The label raster '{label_path}' holds non-integer values; class labels must be whole "
                             "numbers (0 = unlabelled).")
        if strip.min(initial=0) < 0:
            raise ValueError(f"The label raster '{label_path}' holds negative values (e.g. {int(strip.min())}); class "
                             "labels must be positive (0 = unlabelled). Set the negative value as the band's nodata.")
        top = max(top, strip.max(initial=0))
        if top > np.iinfo(np.int32).max:
            raise ValueError(f"The label raster '{label_path}' holds class values too large for the plugin (> 2^31).")
        if values is None:
            values = np.zeros((height, width), dtype=strip.dtype)
        values[r0:r0 + strip.shape[0]] = strip
    report(100.0, f"reading the label raster: {height} of {height} rows", final=True)
    return values.astype(label_dtype(int(top)), copy=False)
