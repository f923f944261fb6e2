"""Assess accuracy: a classification against reference samples, with HTML / CSV reports (no qgis import).

Shared by the Processing algorithm and the dock; the reference is a vector layer with a class field or a
label raster, matched by value or (a text field) by the classification's category names. Errors are
``RssglError`` with a sentence in the user's terms; a failed run leaves no report behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import RssglError
from ..io.atomic import atomic_write_text
from ..io.outputs import Output, OutputTransaction, checkpoint
from .reports import AccuracyReport, ClassRow, accuracy_csv_text, render_accuracy_report
from .support import LogFn, StopFn, collecting_log

if TYPE_CHECKING:
    from ..io.raster import RasterInfo
    from ..io.samples import SampleLabels

__all__ = ["AccuracyResult", "assess_accuracy"]


@dataclass
class AccuracyResult:
    """Accuracy measures (core.metrics.accuracy_summary) with the matched classes and report paths."""

    summary: dict[str, Any]
    confusion: np.ndarray
    classes: list[ClassRow]
    html_path: str | None
    csv_path: str | None


def _classification_categories(path: str) -> tuple[dict[int, str], dict[int, tuple[int, int, int]]]:
    """Class names and colours stored in a classification GeoTIFF (GDAL category names, colour table)."""
    from osgeo import gdal

    dataset = gdal.Open(path)
    if dataset is None:
        raise RssglError(f"Cannot open the classification raster '{path}'.")
    band = dataset.GetRasterBand(1)
    band.GetMetadata()  # GDAL 3.6 GTiff loads the .aux.xml lazily; GetCategoryNames alone does not trigger it
    names = {i: n for i, n in enumerate(band.GetCategoryNames() or []) if n and i > 0}
    table = band.GetColorTable()
    colors = {}
    if table is not None:
        colors = {i: tuple(table.GetColorEntry(i))[:3] for i in range(1, table.GetCount())}
    return names, colors


def _check_class_values(path: str) -> None:
    """Refuse a raster of decimal values (a confidence or probability raster, say) as the classification.

    A classification holds whole class values; given our confidence raster, the values 0..1 truncated to
    integers left almost no mapped pixel and the user read "no reference pixel falls inside the
    classification". Float rasters holding whole values only (a classification saved as Float32) pass.
    """
    from osgeo import gdal

    dataset = gdal.Open(path)
    band = dataset.GetRasterBand(1)
    if band.DataType not in (gdal.GDT_Float32, gdal.GDT_Float64):
        return
    values = band.ReadAsArray()
    nodata = band.GetNoDataValue()
    valid = np.isfinite(values) if nodata is None or np.isnan(nodata) else np.isfinite(values) & (values != nodata)
    decimal = values[valid][values[valid] != np.round(values[valid])]
    if not decimal.size:
        return
    description = (band.GetDescription() or "").strip()
    if description.startswith("Confidence"):
        what = "the confidence raster written by 'Classify with RSSGL'"
    elif description.startswith("P("):
        what = "a class-probability raster written by 'Classify with RSSGL'"
    else:
        what = "not a classification"
    raise RssglError(
        f"'{path}' holds decimal values (e.g. {float(decimal[0]):.3g}) where a classification holds whole class "
        f"values: it is {what}. Choose the classification raster ('Classification' of 'Classify with RSSGL', or "
        "'Classification of the training raster' of 'Train RSSGL')."
    )


def _pixel_area_and_unit(info) -> tuple[float, str]:
    from osgeo import osr

    gt = info.geotransform
    area = abs(gt[1] * gt[5] - gt[2] * gt[4])
    unit = "map units²"
    if info.crs_wkt:
        srs = osr.SpatialReference()
        if srs.ImportFromWkt(info.crs_wkt) == 0:
            if srs.IsGeographic():
                unit = "degrees²"
            else:
                name = (srs.GetLinearUnitsName() or "").lower()
                unit = "m²" if name in ("metre", "meter", "m") else f"{name}²" if name else unit
    return area, unit


def _read_reference(info: RasterInfo, reference_vector: str | None, reference_layer: str | None,
                    reference_field: str | None, reference_raster: str | None, log: LogFn) -> SampleLabels:
    """The reference labels on the classification's grid (io.samples), given exactly one way; its warnings
    go to the log (and so to the report)."""
    from ..io.samples import labels_from_raster, labels_from_vector

    if (reference_vector is None) == (reference_raster is None):
        raise RssglError("Give the reference either as a vector layer with a class field or as a label raster "
                         f"(got {'both' if reference_vector else 'neither'}).")
    if reference_vector is not None:
        if not reference_field:
            raise RssglError("The reference is a vector layer but no reference field was chosen; pick the field "
                             "that holds the class values or names.")
        reference = labels_from_vector(reference_vector, reference_layer or None, reference_field, info)
    else:
        reference = labels_from_raster(reference_raster, info)
    for warning in reference.warnings:
        log("warning", warning)
    return reference


def _read_class_map(path: str) -> np.ndarray:
    """The classification's class values as int64 (the dataset closed before the category names are read)."""
    from osgeo import gdal

    dataset = gdal.Open(path)
    mapped = dataset.GetRasterBand(1).ReadAsArray().astype(np.int64)
    dataset = None
    return mapped


def _warn_renumbered_codes(names: dict[int, str], match_names: bool, log: LogFn) -> None:
    """Warn where the category names are numeric codes other than the values: a reference holding the
    codes would be matched to the wrong classes by value."""
    renumbered = [(v, n) for v, n in sorted(names.items()) if re.fullmatch(r"\d+", n.strip()) and int(n) != v]
    if renumbered and not match_names:  # text codes numbered in text order ("1", "10", "2" -> 1, 2, 3)
        log("warning", "The classification's class names are codes that differ from its values ("
            + ", ".join(f"value {v} is named '{n}'" for v, n in renumbered) + "); the reference is matched by "
            "value. If the reference holds those codes, use a text reference field (matched by name), or "
            "classify again with a model trained by this version (text codes keep their numbers).")


def _reference_by_name(ref: np.ndarray, reference: SampleLabels, names: dict[int, str]) -> np.ndarray:
    """The reference recoded to the classification's values by matching class names (case-insensitive);
    a reference name the classification lacks is an error naming it."""
    by_name = {n.strip().lower(): v for v, n in names.items()}
    lookup = np.zeros(int(max(reference.class_values, default=0)) + 1, dtype=np.int64)
    missing = []
    for value, name in zip(reference.class_values, reference.class_names, strict=True):
        target = by_name.get(str(name).strip().lower())
        if target is None:
            missing.append(str(name))
        else:
            lookup[int(value)] = target
    if missing:
        raise RssglError(
            f"The reference classes {', '.join(repr(m) for m in missing)} are not classes of the "
            f"classification (its classes are: {', '.join(names.values()) or 'unnamed'}); rename them "
            "or use a field with class values.")
    return lookup[ref]


def _assessed_classes(ref: np.ndarray, mapped: np.ndarray, names: dict[int, str], log: LogFn) -> list[int]:
    """The class values of the confusion matrix (reference, map and named classes); refuses a reference
    outside the map and warns about reference classes the map never uses."""
    ref_values = set(int(v) for v in np.unique(ref[ref > 0]))
    map_values = set(int(v) for v in np.unique(mapped[mapped > 0]))
    values = sorted(ref_values | map_values | set(names))
    if not ref_values:
        raise RssglError("No reference pixel falls inside the classification; check that the reference "
                         "samples overlap the classified area.")
    unknown = sorted(ref_values - map_values - set(names))
    if unknown:
        classes_text = ", ".join(f"{v} {names[v]}" if v in names else str(v) for v in sorted(map_values | set(names)))
        log("warning", f"Reference classes {unknown} never occur in the classification; they count as errors. If "
                       "the reference means the same classes under other values (e.g. the training used class "
                       "names), use a reference field with the class names (a text field is matched by name), or "
                       f"recode the reference to the classification's values ({classes_text}).")
    return values


def _confusion(ref: np.ndarray, mapped: np.ndarray, values: list[int],
               log: LogFn) -> tuple[np.ndarray, np.ndarray]:
    """(confusion matrix over the pixels the map classified, mapped pixels per class): reference pixels on
    the map's nodata are not assessed, with a warning."""
    from ..core.metrics import confusion_matrix

    # Only pixels the map classified (not nodata) are assessed.
    assessed = (ref > 0) & (mapped > 0)
    skipped = int(((ref > 0) & (mapped == 0)).sum())
    if skipped:
        log("warning", f"{skipped} reference pixel(s) fall on nodata pixels of the classification and "
                       "were not assessed.")
    cm = confusion_matrix(ref[assessed], mapped[assessed], values)
    mapped_counts = np.bincount(np.searchsorted(values, mapped[mapped > 0]), minlength=len(values))
    return cm, mapped_counts


def assess_accuracy(
    classification_path: str,
    *,
    reference_vector: str | None = None,
    reference_layer: str | None = None,
    reference_field: str | None = None,
    reference_raster: str | None = None,
    match_names: bool = False,
    html_out: str | None = None,
    csv_out: str | None = None,
    log: LogFn | None = None,
    should_stop: StopFn | None = None,
) -> AccuracyResult:
    """Compare a classification with reference samples; write HTML/CSV reports.

    Classes are matched by value. With ``match_names`` (a text reference field) the reference
    names are matched, case-insensitively, to the classification's category names instead; a
    reference name absent from the classification is an error naming it.
    """
    from ..core.metrics import accuracy_summary
    from ..core.palette import default_colors
    from ..io.raster import raster_info

    log, warnings = collecting_log(log)  # every warning also goes to the top of the HTML report, not only to the log
    # io.outputs' rule: paths checked first, reports written to temporary files, replaced together at the end
    outputs = OutputTransaction(
        [Output("accuracy report (HTML)", html_out, "html"), Output("accuracy table (CSV)", csv_out, "csv")],
        {"classification": classification_path, "reference samples": reference_vector,
         "reference raster": reference_raster})
    try:
        checkpoint("reading", should_stop)
        info = raster_info(classification_path)
        if info.bands != 1:
            raise RssglError(f"A classification raster has one band of class values; '{classification_path}' has "
                             f"{info.bands}. Choose the classification output, not the hyperspectral raster.")
        _check_class_values(classification_path)
        reference = _read_reference(info, reference_vector, reference_layer, reference_field,
                                    reference_raster, log)
        mapped = _read_class_map(classification_path)
        names, colors = _classification_categories(classification_path)
        ref = np.asarray(reference.labels, dtype=np.int64)
        _warn_renumbered_codes(names, match_names, log)
        if match_names:
            ref = _reference_by_name(ref, reference, names)
        values = _assessed_classes(ref, mapped, names, log)
        cm, mapped_counts = _confusion(ref, mapped, values, log)
        pixel_area, unit = _pixel_area_and_unit(info)
        summary = accuracy_summary(cm, class_areas=mapped_counts * pixel_area if mapped_counts.sum() else None)
        fallback = default_colors(max(values))
        classes = [ClassRow(value=v, name=names.get(v, f"class {v}"), color=colors.get(v, fallback[v - 1]),
                            training_pixels=0, validation_pixels=0) for v in values]
        log("info", f"Overall accuracy {100 * summary['oa']:.2f} % ± {100 * summary['oa_ci95']:.2f}, "
                    f"kappa {summary['kappa']:.4f}, over {summary['n']} reference pixels.")
        report = AccuracyReport(
            classification=classification_path,
            reference=reference_vector or reference_raster or "",
            classes=classes, confusion=cm.tolist(), summary=summary, pixel_area=pixel_area, area_unit=unit,
            mapped_pixels=[int(c) for c in mapped_counts],
            notes=list(warnings),
        )
        checkpoint("writing the report", should_stop)
        if html_out:
            atomic_write_text(outputs.path(html_out), render_accuracy_report(report))
        if csv_out:
            atomic_write_text(outputs.path(csv_out), accuracy_csv_text(report))
        checkpoint("committing", should_stop)
        outputs.commit()
        return AccuracyResult(summary=summary, confusion=cm, classes=classes, html_path=html_out, csv_path=csv_out)
    except BaseException as error:
        outputs.discard()  # the reports at the output paths were never touched
        if isinstance(error, (ValueError, RuntimeError)):
            outputs.raise_in_user_terms(error)  # messages name the user's paths, not the temporary files
        raise
