"""Where to draw the next training polygons: the least confident regions of a classification.

After a run, the pixels the model is least sure about tell the user where new samples help most
(the idea behind uncertainty sampling in active learning). Single uncertain pixels along class
borders are expected (mixed pixels) and not worth a polygon, so the selection keeps *regions*:

1. pixels whose confidence is in the lowest ``quantile`` of the valid pixels (or below
   ``threshold``); when many pixels tie at the cut (a saturated softmax gives exactly 1.0),
   only those strictly below it,
2. a 3x3 morphological opening removes one-pixel-wide border lines and speckle (skipped when it
   would remove everything),
3. 4-connected components (scipy.ndimage.label), each summarised by its mean confidence and the
   two classes with the highest mean probability (the pair the model confuses there),
4. components ranked by their uncertainty mass, ``pixels * (1 - mean confidence)``: a large, very
   unsure region outranks a tiny one, weighted by what :class:`Guide` turns on (representativeness,
   class balance, distance from the polygons already drawn, diversity among the top regions), and
   the ``max_regions`` best are kept,
5. polygonised with GDAL (same 4-connectivity, so one component gives one polygon) into a
   GeoPackage in the raster's CRS.

No qgis import: the dock calls this from its background task, and tests run it on arrays. GDAL/OGR
are imported only by the functions that read or write files, so the ranking itself runs wherever
numpy and scipy do (benchmarks on GPU machines without GDAL).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

__all__ = [
    "Guide",
    "UncertainRegion",
    "drawn_samples",
    "find_uncertain_regions",
    "least_confident_regions_from_files",
    "write_regions_gpkg",
]

LAYER_NAME = "where_to_draw_next"
#: Pixels of the scene's uncertainty that the representativeness weight compares each region with (a fixed
#: stride over the valid pixels, so the ranking stays deterministic and its cost bounded).
DENSITY_SAMPLE = 4000
#: Width of the Gaussian that says how alike two probability vectors are (their Euclidean distance).
DENSITY_WIDTH = 0.2
#: Regions closer than this many pixels to a drawn polygon lose weight in proportion (a region on a
#: polygon keeps AWAY_FLOOR of it).
AWAY_PIXELS = 8.0
AWAY_FLOOR = 0.05
#: Each region ranked above with the same pair of classes halves a region's weight.
DIVERSITY_FACTOR = 0.5


@dataclass(frozen=True)
class Guide:
    """Which weights rank the regions beyond their uncertainty mass (benchmarks/guided_drawing.py measures each).

    density: representativeness: how much of the scene's uncertainty the model sees as alike (its probability
        vectors near the region's mean one), so a region that stands for a large confusion outranks an odd one;
    balance: classes with few training pixels first (needs ``class_samples``);
    away: regions on or next to the polygons already drawn lose weight (needs ``drawn``);
    diverse: a region whose pair of classes is already suggested above loses weight.
    """

    density: bool = False
    balance: bool = False
    away: bool = False
    diverse: bool = False


BASE_GUIDE = Guide()
#: The dock's ranking: representativeness only. benchmarks/guided_drawing.py (the oracle goes down this list; 8 px
#: polygons on every scene), exploration seeds 100-109, mean OA gain of the oracle over random drawing across rounds
#: 1-10: density +11.74 / +5.90 / +1.42 (EnMAP / Salinas-A / synthetic) against base +10.97 / +5.95 / +1.09; the
#: weights' differences (within 1.8 points, diverse's and density+diverse's lead on EnMAP from one seed) did not
#: justify a change. On the report seeds 0-9 the first guided polygon still costs EnMAP 6.5 points (docs/RESULTS.md).
DEFAULT_GUIDE = Guide(density=True)


@dataclass
class UncertainRegion:
    """One connected region of low confidence, ranked 1 = most useful place for new samples."""

    rank: int
    component: int  # label in ``components`` (internal, for polygonising)
    pixels: int
    mean_confidence: float
    first_class: int  # original class value with the highest mean probability in the region
    first_probability: float
    second_class: int
    second_probability: float
    bbox: tuple[int, int, int, int]  # row0, col0, row1, col1 (exclusive end), pixel coordinates


@dataclass
class RegionSearch:
    """Result of :func:`find_uncertain_regions`: the regions and the component raster they refer to."""

    regions: list[UncertainRegion]
    components: np.ndarray  # int32 (H, W), 0 = not selected
    threshold: float
    extra: dict = field(default_factory=dict)


def _check_inputs(confidence: np.ndarray, probabilities: np.ndarray, class_values: Sequence[int],
                  quantile: float) -> None:
    """Refuse rasters of different runs or grids, and a quantile outside (0, 1], in the user's words."""
    if confidence.ndim != 2:
        raise ValueError(f"The confidence raster must be 2-D (rows, columns); got shape {confidence.shape}.")
    if probabilities.ndim != 3 or probabilities.shape[1:] != confidence.shape:
        raise ValueError(
            f"The probability raster must have one band per class on the confidence grid "
            f"{confidence.shape}; got shape {probabilities.shape}. Use outputs of the same run."
        )
    if len(class_values) != probabilities.shape[0]:
        raise ValueError(
            f"Expected {probabilities.shape[0]} class values (one per probability band), got {len(class_values)}."
        )
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"The quantile must be in (0, 1], got {quantile}.")


def _low_confidence(confidence: np.ndarray, ok: np.ndarray, quantile: float, threshold: float | None,
                    min_pixels: int) -> tuple[np.ndarray, float]:
    """(mask of the low-confidence pixels, the cut): steps 1 and 2 of the module docstring."""
    cut = float(threshold) if threshold is not None else float(np.quantile(confidence[ok], quantile))
    low = ok & (confidence <= cut)
    if threshold is None and low.sum() > 1.5 * quantile * ok.sum():
        # Many pixels tie at the cut (saturated softmax: confidence exactly 1.0): keep those below it.
        low = ok & (confidence < cut)
    opened = ndimage.binary_opening(low, structure=np.ones((3, 3), bool))
    if opened.sum() >= min_pixels:
        low = opened
    return low, cut


def _region_list(components: np.ndarray, chosen: np.ndarray, pixels: np.ndarray, conf_sum: np.ndarray,
                 prob_sum: np.ndarray, class_values: Sequence[int]) -> list[UncertainRegion]:
    """The chosen components in rank order, each with its two most probable classes (the pair the model
    confuses there) and its bounding box."""
    mean_prob = prob_sum[:, chosen] / pixels[chosen]  # (K, n)
    top2 = np.argsort(-mean_prob, axis=0, kind="stable")[:2]  # (2, n)
    boxes = ndimage.find_objects(components)
    values = np.asarray(class_values)
    regions = []
    for rank, (comp, first, second) in enumerate(zip(chosen, top2[0], top2[1], strict=True), start=1):
        rows, cols = boxes[comp - 1]
        column = rank - 1
        regions.append(
            UncertainRegion(
                rank=rank,
                component=int(comp),
                pixels=int(pixels[comp]),
                mean_confidence=float(conf_sum[comp] / pixels[comp]),
                first_class=int(values[first]),
                first_probability=float(mean_prob[first, column]),
                second_class=int(values[second]),
                second_probability=float(mean_prob[second, column]),
                bbox=(rows.start, cols.start, rows.stop, cols.stop),
            )
        )
    return regions


def _density(confidence: np.ndarray, probabilities: np.ndarray, ok: np.ndarray, mean_prob: np.ndarray) -> np.ndarray:
    """Representativeness of each region (K, n mean probability vectors): the share of the scene's uncertainty,
    sum(1 - confidence), held by pixels whose probability vector lies near the region's, in [0, 1]."""
    where = np.flatnonzero(ok.ravel())
    where = where[:: max(1, where.size // DENSITY_SAMPLE)]
    probs = probabilities.reshape(probabilities.shape[0], -1)[:, where].astype(np.float64)  # (K, m)
    unsure = 1.0 - confidence.ravel()[where].astype(np.float64)
    d2 = (probs * probs).sum(0)[:, None] + (mean_prob * mean_prob).sum(0)[None, :] - 2.0 * probs.T @ mean_prob
    alike = np.exp(-np.maximum(d2, 0.0) / (2.0 * DENSITY_WIDTH ** 2))  # (m, n)
    return (unsure @ alike) / max(float(unsure.sum()), 1e-12)


def _balance(mean_prob: np.ndarray, class_samples: np.ndarray) -> np.ndarray:
    """Weight of each region by the training pixels of the rarer of its two likeliest classes: sqrt(median /
    that count), so a confusion that involves a class with few samples comes first."""
    top2 = np.argsort(-mean_prob, axis=0, kind="stable")[:2]  # (2, n)
    rarer = np.minimum(class_samples[top2[0]], class_samples[top2[1]])
    return np.sqrt(max(float(np.median(class_samples)), 1.0) / np.maximum(rarer, 1.0))


def _away(components: np.ndarray, ids: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """Weight of each region by its distance (px) to the nearest drawn pixel: AWAY_FLOOR on a polygon, rising
    linearly to 1 at AWAY_PIXELS."""
    distance = ndimage.distance_transform_edt(~drawn)
    nearest = np.asarray(ndimage.minimum(distance, components, ids), dtype=np.float64)
    return np.clip(nearest / AWAY_PIXELS, AWAY_FLOOR, 1.0)


def _order(score: np.ndarray, ids: np.ndarray, mean_prob: np.ndarray, max_regions: int, diverse: bool) -> np.ndarray:
    """Indices into ``ids`` of the ``max_regions`` best regions, best first; ties broken by component id. With
    ``diverse``, each pick halves (DIVERSITY_FACTOR) the weight of the regions confusing the same two classes."""
    if not diverse:
        return np.lexsort((ids, -score))[:max_regions]
    top2 = np.sort(np.argsort(-mean_prob, axis=0, kind="stable")[:2], axis=0)  # unordered pair per region
    score = score.astype(np.float64).copy()
    left = np.ones(ids.size, bool)
    order = []
    while left.any() and len(order) < max_regions:
        candidates = np.flatnonzero(left)
        best = candidates[np.lexsort((ids[candidates], -score[candidates]))[0]]
        order.append(best)
        left[best] = False
        same = left & (top2[0] == top2[0, best]) & (top2[1] == top2[1, best])
        score[same] *= DIVERSITY_FACTOR
    return np.asarray(order, dtype=np.int64)


def find_uncertain_regions(
    confidence: np.ndarray,
    probabilities: np.ndarray,
    class_values: Sequence[int],
    *,
    valid: np.ndarray | None = None,
    quantile: float = 0.1,
    threshold: float | None = None,
    max_regions: int = 10,
    min_pixels: int = 4,
    drawn: np.ndarray | None = None,
    class_samples: Sequence[float] | None = None,
    guide: Guide = DEFAULT_GUIDE,
) -> RegionSearch:
    """Rank the connected low-confidence regions of a classification (see the module docstring).

    confidence: (H, W) float, the winning class probability; values < 0 or NaN are nodata.
    probabilities: (K, H, W) float, one band per class in the order of ``class_values``.
    drawn: (H, W) bool, the pixels of the training polygons (for ``guide.away``).
    class_samples: training pixels per class, in the order of ``class_values`` (for ``guide.balance``).
    """
    confidence = np.asarray(confidence, dtype=np.float32)
    probabilities = np.asarray(probabilities, dtype=np.float32)
    _check_inputs(confidence, probabilities, class_values, quantile)
    ok = np.isfinite(confidence) & (confidence >= 0)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    empty = RegionSearch([], np.zeros(confidence.shape, np.int32), float("nan"))
    if not ok.any() or probabilities.shape[0] < 2:
        return empty

    low, cut = _low_confidence(confidence, ok, quantile, threshold, min_pixels)
    components, count = ndimage.label(low)
    if count == 0:
        return RegionSearch([], np.zeros(confidence.shape, np.int32), cut)

    flat = components.ravel()
    pixels = np.bincount(flat, minlength=count + 1)
    conf_sum = np.bincount(flat, weights=confidence.ravel(), minlength=count + 1)
    # Mean probability of every class in every component: (K, count + 1), one bincount per class.
    prob_sum = np.stack(
        [np.bincount(flat, weights=band.ravel(), minlength=count + 1) for band in probabilities]
    )
    ids = np.arange(1, count + 1)
    ids = ids[pixels[ids] >= min_pixels]
    if ids.size == 0:
        return RegionSearch([], np.zeros(confidence.shape, np.int32), cut)
    mean_conf = conf_sum[ids] / pixels[ids]
    score = pixels[ids] * (1.0 - mean_conf)
    mean_prob = prob_sum[:, ids] / pixels[ids]
    if guide.density:
        score = score * _density(confidence, probabilities, ok, mean_prob)
    if guide.balance and class_samples is not None:
        score = score * _balance(mean_prob, np.asarray(class_samples, dtype=np.float64))
    if guide.away and drawn is not None and np.asarray(drawn, dtype=bool).any():
        score = score * _away(components, ids, np.asarray(drawn, dtype=bool))
    order = _order(score, ids, mean_prob, max_regions, guide.diverse)
    chosen = ids[order]

    regions = _region_list(components, chosen, pixels, conf_sum, prob_sum, class_values)
    kept = np.zeros(count + 1, np.int32)
    kept[chosen] = np.arange(1, chosen.size + 1, dtype=np.int32)  # component -> rank
    return RegionSearch(regions, kept[components], cut)


def write_regions_gpkg(
    path: str,
    search: RegionSearch,
    geotransform: Sequence[float],
    crs_wkt: str,
    class_names: dict[int, str],
) -> str:
    """Polygonise the ranked regions into ``path`` (GeoPackage, layer "where_to_draw_next").

    Fields: rank, mean_conf, pixels, class_1, prob_1, class_2, prob_2 (class names, so the user
    reads "Corn vs. Soybean" in the attribute table). Written to a temporary name and renamed, so a
    reader never sees half a file. Returns ``path``.
    """
    from osgeo import gdal, ogr, osr

    height, width = search.components.shape
    mem = gdal.GetDriverByName("MEM").Create("", width, height, 1, gdal.GDT_Int32)
    mem.SetGeoTransform(tuple(geotransform))
    if crs_wkt:
        mem.SetProjection(crs_wkt)
    band = mem.GetRasterBand(1)
    band.WriteArray(search.components)
    mask_ds = gdal.GetDriverByName("MEM").Create("", width, height, 1, gdal.GDT_Byte)
    mask_band = mask_ds.GetRasterBand(1)
    mask_band.WriteArray((search.components > 0).astype(np.uint8))

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp.gpkg")
    if os.path.exists(tmp):
        os.remove(tmp)
    driver = ogr.GetDriverByName("GPKG")
    ds = driver.CreateDataSource(tmp)
    srs = None
    if crs_wkt:
        srs = osr.SpatialReference()
        srs.ImportFromWkt(crs_wkt)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    layer = ds.CreateLayer(LAYER_NAME, srs, ogr.wkbMultiPolygon)
    for name, kind in (
        ("rank", ogr.OFTInteger),
        ("mean_conf", ogr.OFTReal),
        ("pixels", ogr.OFTInteger),
        ("class_1", ogr.OFTString),
        ("prob_1", ogr.OFTReal),
        ("class_2", ogr.OFTString),
        ("prob_2", ogr.OFTReal),
    ):
        layer.CreateField(ogr.FieldDefn(name, kind))

    # Polygonize into a scratch layer (one polygon per component, holes kept), then copy with attributes.
    scratch_ds = ogr.GetDriverByName("Memory").CreateDataSource("scratch")
    scratch = scratch_ds.CreateLayer("components", srs, ogr.wkbPolygon)
    scratch.CreateField(ogr.FieldDefn("rank", ogr.OFTInteger))
    if gdal.Polygonize(band, mask_band, scratch, 0, [], callback=None) != 0:
        raise RuntimeError("GDAL could not polygonise the uncertain regions (gdal.Polygonize failed).")
    by_rank = {region.rank: region for region in search.regions}
    layer.StartTransaction()
    for feature in scratch:
        region = by_rank.get(feature.GetField("rank"))
        if region is None:
            continue
        out = ogr.Feature(layer.GetLayerDefn())
        out.SetGeometry(ogr.ForceToMultiPolygon(feature.GetGeometryRef().Clone()))
        out.SetField("rank", region.rank)
        out.SetField("mean_conf", round(region.mean_confidence, 4))
        out.SetField("pixels", region.pixels)
        out.SetField("class_1", class_names.get(region.first_class, str(region.first_class)))
        out.SetField("prob_1", round(region.first_probability, 4))
        out.SetField("class_2", class_names.get(region.second_class, str(region.second_class)))
        out.SetField("prob_2", round(region.second_probability, 4))
        layer.CreateFeature(out)
    layer.CommitTransaction()
    layer = None
    ds = None  # closes the file before the rename
    os.replace(tmp, path)
    return path


def _read_float(path: str):
    """(array float32, dataset) of a raster file."""
    from osgeo import gdal

    ds = gdal.Open(path)
    if ds is None:
        raise ValueError(f"Cannot open the raster '{path}': check that the file exists and is a GeoTIFF.")
    return ds.ReadAsArray().astype(np.float32, copy=False), ds


def drawn_samples(samples_path: str, samples_layer: str | None, class_field: str, raster_path: str,
                  class_values: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(pixels covered by the training samples, training pixels per class in the order of ``class_values``) on
    the grid of ``raster_path`` (io.samples rasterises them as the training did)."""
    from .raster import raster_info
    from .samples import labels_from_vector

    labels = labels_from_vector(samples_path, samples_layer, class_field, raster_info(raster_path)).labels
    counts = np.array([(labels == value).sum() for value in class_values], dtype=np.float64)
    return labels > 0, counts


def least_confident_regions_from_files(
    confidence_path: str,
    probabilities_path: str,
    class_values: Sequence[int],
    class_names: dict[int, str],
    out_path: str,
    *,
    quantile: float = 0.1,
    max_regions: int = 10,
    min_pixels: int = 4,
    samples: tuple[str, str | None, str] | None = None,
    guide: Guide = DEFAULT_GUIDE,
) -> RegionSearch:
    """Read a run's confidence and probability rasters, rank the regions, write the GeoPackage.

    samples: (vector path, layer name, class field) of the run's training samples: the ranking then knows the
    pixels already drawn and the training pixels per class (``guide.away``, ``guide.balance``).
    """
    drawn = class_samples = None
    if samples is not None and (guide.away or guide.balance):
        drawn, class_samples = drawn_samples(*samples, confidence_path, class_values)
    confidence, conf_ds = _read_float(confidence_path)
    probabilities, _ = _read_float(probabilities_path)
    if probabilities.ndim == 2:
        probabilities = probabilities[None]
    nodata = conf_ds.GetRasterBand(1).GetNoDataValue()
    valid = np.ones(confidence.shape, bool) if nodata is None else confidence != nodata
    search = find_uncertain_regions(
        confidence,
        probabilities,
        class_values,
        valid=valid,
        quantile=quantile,
        max_regions=max_regions,
        min_pixels=min_pixels,
        drawn=drawn,
        class_samples=class_samples,
        guide=guide,
    )
    write_regions_gpkg(out_path, search, conf_ds.GetGeoTransform(), conf_ds.GetProjection(), class_names)
    return search
