"""A synthetic hyperspectral scene: fields of crops, soils, water and built-up land, deterministic by seed.

Why it exists: tests and the demo need a scene that (1) generates in well under a second without any
data download, (2) looks like an AVIRIS flight line to QGIS and to the network (400-2500 nm bands,
reflectance-like values, parcels, roads, mixed boundary pixels, sensor noise) and (3) is *hard for a
per-pixel classifier but easy for a spatial-spectral one*. Point (3) is what makes it a useful test of
RSSGL: two crops (corn and soybean by default) are drawn from overlapping per-pixel distributions of
leaf area, chlorophyll and water content; only the field-level mean and the field texture (corn is
planted in rows, soybean is patchy) separate them. A per-pixel classifier therefore confuses them,
while a model that looks at the neighbourhood does not.

The spectra come from small physical models, evaluated for all pixels at once (numpy broadcasting,
no per-pixel loops):

* vegetation: chlorophyll absorption in the visible, a red edge whose position moves with chlorophyll,
  a near-infrared plateau that grows with leaf area, liquid-water absorption (970, 1200, 1450, 1940 nm)
  scaled by the leaf water thickness, dry-matter absorption (1730, 2100, 2300 nm) and yellowing for
  senescent crops, and soil showing through a sparse canopy;
* soils: a convex brightness curve with iron-oxide absorption in the blue and at 900 nm, clay
  (Al-OH) absorption at 2200 nm, and darkening by moisture;
* water: dark and decreasing with wavelength, with a sediment bump for turbid water;
* built-up: blocks of asphalt, concrete, red tile and metal roofs, and trees.

The sensor blurs the scene with a Gaussian point-spread function (which linearly mixes the spectra of
neighbouring parcels at their boundaries) and adds signal-dependent noise. The water-vapour
absorption bands around 1400 and 1900 nm are removed (as the usual "corrected" scenes do) or kept with
almost no signal and strong noise (``water_bands="noisy"``).

Measured (default 160 x 160 x 120 scene, 8 classes; overall accuracy on all labelled pixels not used
for training, split by ``core.data.sampling.percent_split`` seed 2333), with
``python benchmarks/synthetic_difficulty.py --seeds 0,2 --percent 1,5 --rssgl 600 --device cuda`` on one H100:

====  ======  ===================  =====================  =============  ==============
seed  train   nearest class mean   Gaussian naive Bayes   RSSGL (600 it)  parcel oracle
====  ======  ===================  =====================  =============  ==============
0     1 %     0.824                0.873                  0.943          1.000
0     5 %     0.820                0.877                  0.978          1.000
2     1 %     0.720                0.852                  0.955          1.000
2     5 %     0.739                0.860                  0.979          1.000
====  ======  ===================  =====================  =============  ==============

("parcel oracle" = Gaussian naive Bayes on each pixel's parcel-mean spectrum: the information is there,
but only spatially.) Without ``--rssgl`` that script prints the baselines alone, CPU only, in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .synthetic_layout import TrainingPolygon, gaussian_blur, parcels, smooth_fields, training_polygons
from .synthetic_spectra import (
    WATER_VAPOUR_WINDOWS,
    gauss,
    sigmoid,
    soil_spectra,
    synthetic_wavelengths,
    urban_endmembers,
    urban_materials,
    vegetation_spectra,
    water_spectra,
)

__all__ = [
    "CLASS_LIBRARY",
    "WATER_VAPOUR_WINDOWS",
    "SyntheticScene",
    "TrainingPolygon",
    "make_synthetic_scene",
    "synthetic_wavelengths",
    "pixel_baselines",
]

INT16_SCALE = 10000.0  # int16 cubes store reflectance x 10000, as AVIRIS/Salinas do
INT16_NODATA = -32768


@dataclass(frozen=True)
class _ClassSpec:
    """How one land-cover class is drawn.

    ``params`` maps a model parameter to (class mean, between-field sd, within-field sd): the field
    value is drawn once per parcel, the pixel value adds spatially correlated texture on top.
    """

    name: str
    color: tuple[int, int, int]
    model: str  # "vegetation" | "soil" | "water" | "urban"
    params: dict[str, tuple[float, float, float]]
    texture: str = "patchy"  # "rows" | "patchy" | "smooth" | "crowns" | "blocks"


# The classes, in the order they are taken for n_classes < 10: the two look-alike crops first (the
# hard pair), then classes that are easy per pixel, then further look-alikes (wheat/grassland).
CLASS_LIBRARY: tuple[_ClassSpec, ...] = (
    _ClassSpec("Corn", (255, 211, 0), "vegetation",
               {"lai": (4.1, 0.12, 1.0), "chl": (49.0, 1.5, 8.0), "cw": (0.0160, 0.0004, 0.0035),
                "sen": (0.03, 0.01, 0.03), "soil": (0.22, 0.02, 0.04)}, "rows"),
    _ClassSpec("Soybean", (38, 112, 0), "vegetation",
               {"lai": (3.3, 0.12, 1.0), "chl": (42.0, 1.5, 8.0), "cw": (0.0185, 0.0004, 0.0035),
                "sen": (0.05, 0.01, 0.03), "soil": (0.22, 0.02, 0.04)}, "patchy"),
    _ClassSpec("Sandy soil", (230, 200, 150), "soil",
               {"bright": (0.42, 0.015, 0.035), "clay": (0.12, 0.03, 0.05), "moist": (0.10, 0.02, 0.04),
                "iron": (0.35, 0.03, 0.05)}, "smooth"),
    _ClassSpec("Water", (30, 90, 200), "water",
               {"turb": (0.35, 0.15, 0.08), "algae": (0.2, 0.1, 0.1)}, "smooth"),
    _ClassSpec("Built-up", (200, 40, 40), "urban", {"veg": (0.18, 0.06, 0.0)}, "blocks"),
    _ClassSpec("Wheat (ripening)", (225, 180, 90), "vegetation",
               {"lai": (2.8, 0.1, 0.7), "chl": (27.0, 1.0, 7.0), "cw": (0.010, 0.0005, 0.0025),
                "sen": (0.52, 0.02, 0.14), "soil": (0.30, 0.01, 0.04)}, "rows"),
    _ClassSpec("Clay soil", (140, 90, 60), "soil",
               {"bright": (0.24, 0.015, 0.03), "clay": (0.70, 0.04, 0.08), "moist": (0.30, 0.03, 0.05),
                "iron": (0.55, 0.03, 0.06)}, "smooth"),
    _ClassSpec("Grassland", (150, 220, 110), "vegetation",
               {"lai": (1.9, 0.1, 0.7), "chl": (35.0, 1.0, 7.0), "cw": (0.013, 0.0005, 0.0025),
                "sen": (0.30, 0.02, 0.14), "soil": (0.26, 0.01, 0.04)}, "patchy"),
    _ClassSpec("Forest", (0, 80, 40), "vegetation",
               {"lai": (5.2, 0.3, 0.9), "chl": (52.0, 2.0, 6.0), "cw": (0.020, 0.001, 0.003),
                "sen": (0.04, 0.01, 0.03), "soil": (0.15, 0.02, 0.03)}, "crowns"),
    _ClassSpec("Alfalfa", (120, 200, 200), "vegetation",
               {"lai": (3.0, 0.2, 0.7), "chl": (56.0, 2.0, 7.0), "cw": (0.020, 0.001, 0.003),
                "sen": (0.02, 0.01, 0.02), "soil": (0.22, 0.02, 0.04)}, "patchy"),
)
_PARAM_SLOTS = ("lai", "chl", "cw", "sen", "soil", "bright", "clay", "moist", "iron", "turb", "algae", "veg")
_PARAM_BOUNDS: dict[str, tuple[float, float]] = {
    "lai": (0.2, 8.0), "chl": (8.0, 80.0), "cw": (0.003, 0.04), "sen": (0.0, 1.0), "soil": (0.06, 0.5),
    "bright": (0.05, 0.7), "clay": (0.0, 1.0), "moist": (0.0, 0.8), "iron": (0.0, 1.0),
    "turb": (0.0, 1.0), "algae": (0.0, 1.0), "veg": (0.0, 0.6),
}


@dataclass
class SyntheticScene:
    """A generated scene. ``cube`` is (B, H, W) in GDAL order; ``labels`` 0 = unlabelled (roads, no-data)."""

    cube: np.ndarray
    labels: np.ndarray
    class_values: np.ndarray
    class_names: list[str]
    class_colors: list[tuple[int, int, int]]
    wavelengths: np.ndarray
    train_polygons: list[TrainingPolygon]
    polygon_labels: np.ndarray  # (H, W) int32: the polygons rasterised with the pixel-centre rule
    valid: np.ndarray  # (H, W) bool: False where the sensor recorded nothing (no-data edge)
    field_ids: np.ndarray  # (H, W) int32 parcel id, -1 on roads
    nodata: float  # NaN for float32 cubes, INT16_NODATA for int16 cubes
    scale: float  # reflectance per stored unit (1.0 for float32, 1e-4 for int16)
    seed: int = 0
    metadata: dict = field(default_factory=dict)

    @property
    def reflectance(self) -> np.ndarray:
        """The cube as float32 reflectance (NaN where invalid), whatever the storage type."""
        if self.cube.dtype == np.float32:
            return self.cube
        out = self.cube.astype(np.float32) * np.float32(self.scale)
        out[:, ~self.valid] = np.nan
        return out


# --------------------------------------------------------------------------------------------------
# The scene
# --------------------------------------------------------------------------------------------------


def make_synthetic_scene(
    seed: int = 0,
    height: int = 160,
    width: int = 160,
    bands: int = 120,
    n_classes: int = 8,
    *,
    field_size: float = 30.0,
    road_share: float = 0.45,
    road_width: float = 1.6,
    psf_sigma: float = 0.6,
    noise: float = 1.0,
    water_bands: str = "remove",
    dtype: str = "float32",
    polygons_per_class: int = 3,
    polygon_radius: float = 4.0,
    nodata_edge: int = 0,
) -> SyntheticScene:
    """Generate a synthetic hyperspectral scene (deterministic for a given seed and arguments).

    Args:
        seed: random seed; the same arguments always give the same scene, bit for bit.
        height, width: size in pixels (8..2048; tests use 64-128, the demo the default 160).
        bands: number of spectral bands (10..400; AVIRIS-like scenes have 60-220).
        n_classes: number of land-cover classes (2..10), taken in :data:`CLASS_LIBRARY` order.
        field_size: typical parcel edge length in pixels.
        road_share, road_width: share of parcel edges that carry a road, and its width in pixels.
            Road pixels are unlabelled (0) in ``labels``, as in real ground truths.
        psf_sigma: sensor point-spread function (pixels): mixes spectra across parcel boundaries.
        noise: multiplier of the sensor noise (1.0 = SNR of a few hundred in the VNIR).
        water_bands: "remove" (centres avoid 1340-1460/1790-1960 nm) or "noisy" (kept, almost no signal).
        dtype: "float32" (reflectance, NaN = no data) or "int16" (reflectance x 10000, -32768 = no data).
        polygons_per_class, polygon_radius: training polygons per class and their radius in pixels.
        nodata_edge: width in pixels of a wedge of no-data pixels along the left edge (0 = none),
            like the edge of a rotated flight line; such pixels are invalid and unlabelled.
    """
    _check_arguments(height, width, bands, n_classes, dtype, nodata_edge)
    # Draws in a fixed order (layout, parameters, textures, spectra, light, sensor, polygons): seeds need it.
    rng = np.random.default_rng(seed)
    specs = CLASS_LIBRARY[:n_classes]
    class_values = np.arange(1, n_classes + 1, dtype=np.int32)
    lam = synthetic_wavelengths(bands, water_bands)

    # Layout: parcels, roads, class of each parcel (every class gets fields, shuffled).
    field_size = float(min(field_size, np.sqrt(height * width / (2.0 * n_classes))))
    field_ids, depth, roads, n_fields = parcels(rng, height, width, field_size, road_share, road_width)
    field_class = np.resize(rng.permutation(n_classes), n_fields)
    field_class = field_class[rng.permutation(n_fields)]
    pixel_class = field_class[field_ids]  # class index 0..K-1 per pixel (roads overwritten below)

    params = _pixel_parameters(rng, specs, field_ids, field_class, pixel_class, n_fields)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    _add_field_textures(rng, specs, params, field_ids, pixel_class, n_fields, yy, xx)
    cube = _spectra_cube(rng, specs, lam, params, roads, pixel_class, yy, xx)

    # Illumination (topography, thin haze): smooth multiplicative brightness changes.
    cube *= 1.0 + 0.02 * smooth_fields(rng, 1, height, width, sigma=12.0)[0]
    _sensor(rng, cube, lam, psf_sigma, noise, water_bands)

    labels = np.where(roads, 0, class_values[pixel_class]).astype(np.int32)
    valid = np.ones((height, width), dtype=bool)
    if nodata_edge > 0:
        valid = xx >= nodata_edge * (1.0 - yy / height)
        labels[~valid] = 0

    polygons, polygon_labels = training_polygons(
        rng, labels, np.where(roads, -1, field_ids), depth, field_class, class_values,
        polygons_per_class, polygon_radius)

    stored, nodata, scale = _stored_cube(cube, valid, dtype)
    return SyntheticScene(
        cube=stored, labels=labels, class_values=class_values,
        class_names=[s.name for s in specs], class_colors=[s.color for s in specs],
        wavelengths=lam.astype(np.float64), train_polygons=polygons, polygon_labels=polygon_labels,
        valid=valid, field_ids=np.where(roads, -1, field_ids).astype(np.int32), nodata=nodata, scale=scale,
        seed=seed,
        metadata={"generator": "rssgl_qgis.core.data.synthetic", "seed": seed, "n_fields": n_fields,
                  "water_bands": water_bands, "psf_sigma": psf_sigma, "noise": noise},
    )


def _pixel_parameters(rng: np.random.Generator, specs: tuple[_ClassSpec, ...], field_ids: np.ndarray,
                      field_class: np.ndarray, pixel_class: np.ndarray, n_fields: int) -> np.ndarray:
    """Model parameters per pixel, (slots, H, W): a value per field plus spatially correlated per-pixel
    texture (fine grain, a little large-scale drift, pixel noise): pixels vary a lot, field means little."""
    height, width = field_ids.shape
    n_slots = len(_PARAM_SLOTS)
    means = np.zeros((n_slots, len(specs)))
    between = np.zeros((n_slots, len(specs)))
    within = np.zeros((n_slots, len(specs)))
    for ci, spec in enumerate(specs):
        for name, (mu, sd_field, sd_pixel) in spec.params.items():
            k = _PARAM_SLOTS.index(name)
            means[k, ci], between[k, ci], within[k, ci] = mu, sd_field, sd_pixel
    field_values = means[:, field_class] + between[:, field_class] * rng.standard_normal((n_slots, n_fields))
    params = np.empty((n_slots, height, width), dtype=np.float32)
    for k, name in enumerate(_PARAM_SLOTS):
        texture = 0.6 * smooth_fields(rng, 1, height, width, 0.8)[0] \
            + 0.35 * smooth_fields(rng, 1, height, width, 5.0)[0] \
            + 0.7 * rng.standard_normal((height, width), dtype=np.float32)
        texture /= texture.std()
        lo, hi = _PARAM_BOUNDS[name]
        params[k] = np.clip(field_values[k][field_ids] + within[k][pixel_class] * texture, lo, hi)
    return params


def _add_field_textures(rng: np.random.Generator, specs: tuple[_ClassSpec, ...], params: np.ndarray,
                        field_ids: np.ndarray, pixel_class: np.ndarray, n_fields: int, yy: np.ndarray,
                        xx: np.ndarray) -> None:
    """Field textures that only a spatial model can use, on the leaf area index in ``params`` (in place):
    crop rows (an orientation and period per field) and tree crowns."""
    height, width = field_ids.shape
    kind = np.array([spec.texture for spec in specs])
    theta = rng.uniform(0, np.pi, n_fields)[field_ids]
    period = rng.uniform(4.0, 6.0, n_fields)[field_ids]
    rows = np.cos(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period)
    lai = params[_PARAM_SLOTS.index("lai")]
    in_rows = (kind == "rows")[pixel_class]
    lai[in_rows] *= 1.0 + 0.3 * rows[in_rows]
    crowns = smooth_fields(rng, 1, height, width, sigma=1.0)[0]
    in_crowns = (kind == "crowns")[pixel_class]
    lai[in_crowns] *= np.clip(1.0 + 0.35 * crowns[in_crowns], 0.3, None)
    del rows, theta, period, crowns


def _spectra_cube(rng: np.random.Generator, specs: tuple[_ClassSpec, ...], lam: np.ndarray,
                  params: np.ndarray, roads: np.ndarray, pixel_class: np.ndarray, yy: np.ndarray,
                  xx: np.ndarray) -> np.ndarray:
    """The (B, H, W) reflectance cube: spectra model by model (roads their own) and in chunks of pixels,
    straight into the cube, from the per-pixel parameters."""
    height, width = pixel_class.shape
    bands = lam.shape[0]
    model_codes = {"vegetation": 0, "soil": 1, "water": 2, "urban": 3, "road": 4}
    class_model = np.array([model_codes[spec.model] for spec in specs])
    pixel_model = np.where(roads, model_codes["road"], class_model[pixel_class]).ravel()
    flat_params = params.reshape(len(_PARAM_SLOTS), -1)
    slot = {name: flat_params[i] for i, name in enumerate(_PARAM_SLOTS)}
    cube = np.empty((bands, height * width), dtype=np.float32)
    endmembers = urban_endmembers(lam)
    road_soil = soil_spectra(lam, np.full(1, 0.35), np.full(1, 0.2), np.full(1, 0.1), np.full(1, 0.4))[0]
    urban = urban_materials(rng, yy, xx, pixel_model == model_codes["urban"], slot["veg"])
    gravel = np.clip(0.25 + 0.1 * rng.standard_normal(height * width), 0, 1)
    models = {
        0: lambda i: vegetation_spectra(lam, *(slot[n][i] for n in ("lai", "chl", "cw", "sen", "soil"))),
        1: lambda i: soil_spectra(lam, *(slot[n][i] for n in ("bright", "clay", "moist", "iron"))),
        2: lambda i: water_spectra(lam, slot["turb"][i], slot["algae"][i]),
        3: lambda i: endmembers[urban[0][i]] * urban[1][i, None],
        4: lambda i: (1 - gravel[i, None]) * endmembers[0] + gravel[i, None] * road_soil,
    }
    chunk = max(1024, 2**22 // bands)
    for code, spectra in models.items():
        idx = np.flatnonzero(pixel_model == code)
        for start in range(0, idx.size, chunk):
            part = idx[start:start + chunk]
            cube[:, part] = spectra(part).T
    return cube.reshape(bands, height, width)


def _sensor(rng: np.random.Generator, cube: np.ndarray, lam: np.ndarray, psf_sigma: float, noise: float,
            water_bands: str) -> None:
    """The sensor, in place: PSF (linear mixing across parcel edges), then signal-dependent noise, band by
    band (with ``water_bands="noisy"``, the water-vapour bands lose their signal to noise)."""
    gaussian_blur(cube, psf_sigma)
    snr_shape = 1.0 + 1.2 * sigmoid((lam - 1300.0) / 100.0) + 1.5 * np.exp(-(lam - 400.0) / 40.0)
    vapour = np.exp(-4.0 * (gauss(lam, 1380, 35) + gauss(lam, 1880, 50)))
    for b in range(cube.shape[0]):
        plane = cube[b]
        sd = np.float32(noise * snr_shape[b]) * np.sqrt(np.float32(0.0015**2) + (plane * np.float32(0.004)) ** 2)
        plane += sd * rng.standard_normal(plane.shape, dtype=np.float32)
        if water_bands == "noisy":
            plane *= np.float32(vapour[b])
            plane += np.float32(0.01 * (1.0 - vapour[b])) * rng.standard_normal(plane.shape, dtype=np.float32)


def _stored_cube(cube: np.ndarray, valid: np.ndarray, dtype: str) -> tuple[np.ndarray, float, float]:
    """The cube as stored, with its no-data value and scale: float32 reflectance with NaN, or int16
    reflectance x 10000 (converted band by band: no float temporary the size of the cube)."""
    if dtype == "int16":  # band by band: no float temporary the size of the cube
        stored = np.empty(cube.shape, dtype=np.int16)
        for b in range(cube.shape[0]):
            stored[b] = np.clip(np.rint(cube[b] * np.float32(INT16_SCALE)), -32767, 32767)
        del cube
        stored[:, ~valid] = INT16_NODATA
        nodata, scale = float(INT16_NODATA), 1.0 / INT16_SCALE
    else:
        stored = cube
        stored[:, ~valid] = np.nan
        nodata, scale = float("nan"), 1.0
    return stored, nodata, scale


def _check_arguments(height, width, bands, n_classes, dtype, nodata_edge) -> None:
    if not (8 <= height <= 2048 and 8 <= width <= 2048):
        raise ValueError(f"The synthetic scene must be 8..2048 pixels on each side, got {height} x {width}.")
    if not 10 <= bands <= 400:
        raise ValueError(f"The synthetic scene needs 10..400 bands, got {bands}.")
    if not 2 <= n_classes <= len(CLASS_LIBRARY):
        raise ValueError(f"The synthetic scene has 2..{len(CLASS_LIBRARY)} classes, got {n_classes}.")
    if dtype not in ("float32", "int16"):
        raise ValueError(f"dtype must be 'float32' or 'int16', got {dtype!r}.")
    if not 0 <= nodata_edge < width:
        raise ValueError(f"nodata_edge must be 0..{width - 1} pixels, got {nodata_edge}.")


# --------------------------------------------------------------------------------------------------
# How hard is the scene? Per-pixel and neighbourhood baselines (used by tests and the CLI below).
# --------------------------------------------------------------------------------------------------


def _stratified_sample(labels: np.ndarray, percent: float, seed: int) -> np.ndarray:
    """Boolean mask of ``percent`` % of the labelled pixels of every class (at least 5 per class)."""
    rng = np.random.default_rng(seed)
    flat = labels.ravel()
    order = rng.permutation(flat.size)
    ranked = flat[order]
    # Rank of each pixel among the pixels of its class, in random order (vectorised).
    sort = np.argsort(ranked, kind="stable")
    sorted_labels = ranked[sort]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_labels)) + 1]
    counts = np.diff(np.r_[starts, sorted_labels.size])
    rank = np.arange(sorted_labels.size) - np.repeat(starts, counts)
    quota = np.maximum(np.ceil(counts * percent / 100.0), 5).astype(np.int64)
    take_sorted = (rank < np.repeat(quota, counts)) & (sorted_labels > 0)
    mask = np.zeros(flat.size, dtype=bool)
    mask[order[sort[take_sorted]]] = True
    return mask.reshape(labels.shape)


def _box_mean(cube: np.ndarray, size: int) -> np.ndarray:
    """Mean over a size x size window (edge-replicated), per band, with cumulative sums."""
    r = size // 2
    padded = np.pad(cube, ((0, 0), (r + 1, r), (r + 1, r)), mode="edge").astype(np.float64)
    padded[:, 0, :] = 0
    padded[:, :, 0] = 0
    c = padded.cumsum(axis=1).cumsum(axis=2)
    out = c[:, size:, size:] - c[:, :-size, size:] - c[:, size:, :-size] + c[:, :-size, :-size]
    return (out / size**2).astype(np.float32)


def _parcel_mean(cube: np.ndarray, field_ids: np.ndarray) -> np.ndarray:
    """Each pixel replaced by the mean spectrum of its parcel (an oracle segmentation; roads kept)."""
    b = cube.shape[0]
    flat = cube.reshape(b, -1)
    ids = field_ids.ravel()
    inside = ids >= 0
    n = int(ids.max()) + 1
    counts = np.maximum(np.bincount(ids[inside], minlength=n), 1)
    sums = np.stack([np.bincount(ids[inside], flat[k, inside], minlength=n) for k in range(b)])
    out = flat.copy()
    out[:, inside] = (sums / counts)[:, ids[inside]]
    return out.reshape(cube.shape).astype(np.float32)


def pixel_baselines(scene: SyntheticScene, percent: float = 5.0, seed: int = 0, window: int = 7,
                    train_labels: np.ndarray | None = None) -> dict:
    """Overall accuracy of simple classifiers trained on ``percent`` % of the labelled pixels.

    ``ncm`` (nearest class mean) and ``gnb`` (Gaussian naive Bayes) see one pixel at a time;
    ``*_window`` see the mean spectrum of a ``window`` x ``window`` neighbourhood (a crude spatial
    model that also blurs parcel edges); ``*_parcel`` see the mean spectrum of the pixel's parcel, an
    oracle that shows how much of the class information is spatial. A good synthetic scene keeps the
    per-pixel scores well below 100 % and the parcel scores near 100 %. Accuracy is measured on all
    labelled pixels not used for training. ``train_labels`` (H, W), when given, replaces the random
    ``percent`` sample (so a baseline can use exactly the split another model was trained on).
    """
    x = np.nan_to_num(scene.reflectance)
    labels = np.where(scene.valid, scene.labels, 0)
    if train_labels is not None:
        train = (np.asarray(train_labels) > 0) & (labels > 0)
        percent = float(100.0 * train.sum() / max((labels > 0).sum(), 1))
    else:
        train = _stratified_sample(labels, percent, seed)
    test = (labels > 0) & ~train
    out = {"percent": percent, "n_train": int(train.sum()), "n_test": int(test.sum())}
    views = (("", x), ("_window", _box_mean(x, window)), ("_parcel", _parcel_mean(x, scene.field_ids)))
    for suffix, features in views:
        f = features.reshape(features.shape[0], -1).T.astype(np.float64)
        y = labels.ravel()
        classes = np.unique(y[train.ravel()])
        xt, yt = f[train.ravel()], y[train.ravel()]
        onehot = (yt[:, None] == classes[None, :]).astype(np.float64)
        n = onehot.sum(axis=0)
        mean = onehot.T @ xt / n[:, None]
        var = onehot.T @ (xt**2) / n[:, None] - mean**2 + 1e-6 * xt.var(axis=0).mean()
        xs = f[test.ravel()]
        d_ncm = (xs**2).sum(1)[:, None] - 2 * xs @ mean.T + (mean**2).sum(1)[None, :]
        loglik = -0.5 * ((xs**2) @ (1 / var).T - 2 * xs @ (mean / var).T + ((mean**2) / var).sum(1)[None, :]
                         + np.log(var).sum(1)[None, :]) + np.log(n / n.sum())[None, :]
        truth = y[test.ravel()]
        out["ncm" + suffix] = float((classes[d_ncm.argmin(1)] == truth).mean())
        out["gnb" + suffix] = float((classes[loglik.argmax(1)] == truth).mean())
    return out
