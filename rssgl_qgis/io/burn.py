"""Samples burnt onto a raster's grid window by window (io.samples' vector path, issue 29).

The samples are burnt in windows of ``_BURN_WINDOW`` pixels, only those some sample's pixel box reaches, each
with only those samples, so the memory grows neither with the raster nor with the samples' extent; only the
(H, W) results do, in the smallest integer types that hold them (io.samples.label_dtype), and np.zeros leaves
the pages no window reaches unallocated. The labelled pixels come back as a sparse list too, so that nothing
downstream scans a 20000 x 20000 raster to find a few thousand training pixels. Conflicts (a pixel covered by
samples of different classes) are found per window by five burns (:func:`_burn_window`).
"""

from __future__ import annotations

import time

import numpy as np
from osgeo import gdal, ogr, osr

from ..core.errors import Cancelled
from .raster import RasterInfo

__all__ = ["BURN_PROGRESS_SECONDS", "Every", "label_dtype", "rasterise"]

gdal.UseExceptions()
ogr.UseExceptions()
osr.UseExceptions()

_BURN_FIELD = "rssgl_class_index"


def label_dtype(bound: int) -> np.dtype:
    """The smallest of uint8, uint16 and int32 that holds the whole numbers 0 .. ``bound`` (class values up to
    2**31 - 1, feature numbers): a 20000 x 20000 label array is 400 MB in uint8, 1.6 GB in int32."""
    for dtype in (np.uint8, np.uint16):
        if bound <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int32)


#: Rows and columns of one burn window. The samples are burnt window by window, only in the windows their
#: envelopes reach, so the memory (five small integer bands and a few int64 temporaries of one window, about
#: 40 MB) grows neither with the raster nor with the samples' extent; only the (H, W) results do (in the
#: smallest integer type, label_dtype; np.zeros leaves the pages no window reaches unallocated).
_BURN_WINDOW = 1024
#: Seconds between two progress messages of the burn (the first and the last are always sent).
BURN_PROGRESS_SECONDS = 1.0


def _pixel_boxes(geometries: list, info: RasterInfo) -> np.ndarray:
    """(n, 4) int64 rows r0, r1 and columns c0, c1 (half-open, one pixel of margin, clipped to the raster)
    holding every pixel each geometry can label: its envelope's corners through the inverse geotransform, so
    rotated grids are bounded too (the whole raster where the geotransform cannot be inverted)."""
    height, width = info.shape
    inverse = gdal.InvGeoTransform(tuple(info.geotransform))
    if inverse is None or len(inverse) != 6:
        return np.tile(np.array([0, height, 0, width], dtype=np.int64), (len(geometries), 1))
    envelopes = np.array([g.GetEnvelope() for g in geometries])  # (minx, maxx, miny, maxy)
    xs, ys = envelopes[:, [0, 1, 0, 1]], envelopes[:, [2, 2, 3, 3]]
    cols = inverse[0] + inverse[1] * xs + inverse[2] * ys
    rows = inverse[3] + inverse[4] * xs + inverse[5] * ys
    boxes = np.stack([np.floor(rows.min(axis=1)) - 1, np.ceil(rows.max(axis=1)) + 1,
                      np.floor(cols.min(axis=1)) - 1, np.ceil(cols.max(axis=1)) + 1], axis=1)
    limits = np.array([height, height, width, width], dtype=np.float64)
    return np.clip(np.nan_to_num(boxes, nan=0.0), 0, limits).astype(np.int64)


def _smallest_type(bound: float) -> int:
    """The smallest GDAL type holding the whole numbers 0 .. ``bound`` exactly."""
    for gdal_type, top in ((gdal.GDT_Byte, 255), (gdal.GDT_UInt16, 65535), (gdal.GDT_UInt32, 2**32 - 1)):
        if bound <= top:
            return gdal_type
    return gdal.GDT_Float64  # whole numbers below 2**53 are exact


def rasterise(geometries: list, burn: np.ndarray, info: RasterInfo, class_values: np.ndarray, progress=None,
               should_stop=None) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Class values (H, W) burnt with the pixel-centre rule, the number of conflicting pixels, the feature
    number (1..n, the last feature burnt; 0 where unlabelled) of each labelled pixel, which classes (by index
    into ``class_values``) label at least one pixel, and the labelled pixels (rows, columns), row-major.

    Labels and feature numbers are in the smallest integer types that hold them (label_dtype). ``burn``
    holds each geometry's class index (1..n classes). The raster is cut into windows of ``_BURN_WINDOW``
    pixels; only windows some geometry's pixel box reaches are burnt, each with only those geometries (in
    layer order, so the last one burnt is the same), by :func:`_burn_window`; ``progress`` hears of them
    (at most one message a BURN_PROGRESS_SECONDS) and ``should_stop`` is asked before each.
    """
    height, width = info.shape
    labels = np.zeros((height, width), dtype=label_dtype(int(np.max(class_values, initial=0))))
    groups = np.zeros((height, width), dtype=label_dtype(len(geometries)))
    present = np.zeros(len(class_values) + 1, dtype=bool)
    lookup = np.r_[0, class_values].astype(labels.dtype)
    boxes = _pixel_boxes(geometries, info)
    numbers = np.arange(1, len(geometries) + 1)
    size = _BURN_WINDOW
    windows = [(r0, c0) for r0 in range(int(boxes[:, 0].min()) // size * size, int(boxes[:, 1].max()), size)
               for c0 in range(int(boxes[:, 2].min()) // size * size, int(boxes[:, 3].max()), size)]
    report = Every(progress, BURN_PROGRESS_SECONDS)
    conflicts = 0
    found: list[tuple[np.ndarray, np.ndarray]] = []
    for done, (r0, c0) in enumerate(windows):
        if should_stop is not None and should_stop():
            raise Cancelled("Reading the training samples was cancelled.")
        report(100.0 * done / len(windows), f"burning the samples onto the raster grid: {done} of {len(windows)} "
                                            "windows")
        r1, c1 = min(r0 + size, height), min(c0 + size, width)
        inside = np.flatnonzero((boxes[:, 0] < r1) & (boxes[:, 1] > r0) & (boxes[:, 2] < c1) & (boxes[:, 3] > c0))
        if inside.size == 0:
            continue
        index, number, clashes = _burn_window(info, (r0, r1, c0, c1), [geometries[i] for i in inside],
                                              burn[inside], numbers[inside], len(geometries))
        rows, cols = np.nonzero(index)
        if rows.size:
            labels[r0 + rows, c0 + cols] = lookup[index[rows, cols]]
            groups[r0 + rows, c0 + cols] = number[rows, cols]
            present[index[rows, cols]] = True
            found.append((r0 + rows, c0 + cols))
        conflicts += clashes
    report(100.0, f"burning the samples onto the raster grid: {len(windows)} of {len(windows)} windows", final=True)
    rows = np.concatenate([f[0] for f in found]) if found else np.zeros(0, dtype=np.intp)
    cols = np.concatenate([f[1] for f in found]) if found else np.zeros(0, dtype=np.intp)
    order = np.lexsort((cols, rows))  # row-major, as np.nonzero(labels)
    return labels, conflicts, groups, present[1:], (rows[order], cols[order])


class Every:
    """A progress callable sent at most once every ``seconds`` (the first and the final message always)."""

    def __init__(self, progress, seconds: float) -> None:
        self.progress, self.seconds, self.last = progress, seconds, None

    def __call__(self, percent: float, message: str, final: bool = False) -> None:
        now = time.monotonic()
        if self.progress is None or not (final or self.last is None or now - self.last >= self.seconds):
            return
        self.last = now
        self.progress(percent, message)


def _burn_window(info: RasterInfo, window: tuple[int, int, int, int], geometries: list, burn: np.ndarray,
                 numbers: np.ndarray, n_features: int) -> tuple[np.ndarray, np.ndarray, int]:
    """One window's class indices (0 = none), feature numbers and conflicting pixels.

    Five burns, each into a band of the smallest integer type that holds its largest possible value: the
    last index burnt (REPLACE), and with ADD the number of features covering each pixel, the sum of their
    indices and the sum of their squares, then the last feature's number. A pixel is consistent when
    sum == count * last and sumsq == count * last**2: the indices then have mean ``last`` and variance 0,
    i.e. all features covering it share one class (the sum alone is fooled by 1 + 3 == 2 * 2).
    """
    r0, r1, c0, c1 = window
    x0, dx, rx, y0, ry, dy = info.geotransform
    memory = ogr.GetDriverByName("Memory").CreateDataSource("")
    srs = osr.SpatialReference()
    if info.crs_wkt:
        srs.ImportFromWkt(info.crs_wkt)
    layer = memory.CreateLayer("samples", srs if info.crs_wkt else None, ogr.wkbUnknown)
    for suffix, kind in (("", ogr.OFTInteger), ("_sq", ogr.OFTReal), ("_feature", ogr.OFTInteger)):
        layer.CreateField(ogr.FieldDefn(_BURN_FIELD + suffix, kind))
    definition = layer.GetLayerDefn()
    for geometry, index, number in zip(geometries, burn, numbers, strict=True):
        feature = ogr.Feature(definition)
        feature.SetGeometry(geometry)
        feature.SetField(_BURN_FIELD, int(index))
        feature.SetField(_BURN_FIELD + "_sq", float(index) ** 2)
        feature.SetField(_BURN_FIELD + "_feature", int(number))
        layer.CreateFeature(feature)
    top, k = int(burn.max()), len(geometries)
    geotransform = (x0 + c0 * dx + r0 * rx, dx, rx, y0 + c0 * ry + r0 * dy, ry, dy)

    def burnt(bound: float, **options) -> np.ndarray:
        target = gdal.GetDriverByName("MEM").Create("", c1 - c0, r1 - r0, 1, _smallest_type(bound))
        target.SetGeoTransform(geotransform)
        if info.crs_wkt:
            target.SetProjection(info.crs_wkt)
        gdal.RasterizeLayer(target, [1], layer, **options)
        return target.GetRasterBand(1).ReadAsArray().astype(np.int64)

    last = burnt(top, options=[f"ATTRIBUTE={_BURN_FIELD}"])
    count = burnt(k, burn_values=[1], options=["MERGE_ALG=ADD"])
    total = burnt(k * top, options=[f"ATTRIBUTE={_BURN_FIELD}", "MERGE_ALG=ADD"])
    squares = burnt(k * top * top, options=[f"ATTRIBUTE={_BURN_FIELD}_sq", "MERGE_ALG=ADD"])
    number = burnt(n_features, options=[f"ATTRIBUTE={_BURN_FIELD}_feature"])
    covered = count > 0
    consistent = (total == count * last) & (squares == count * last * last)
    index = np.where(covered & consistent, last, 0)
    return index, np.where(index > 0, number, 0).astype(np.int32), int((covered & ~consistent).sum())
