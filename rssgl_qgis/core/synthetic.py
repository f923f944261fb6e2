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
for training, split by ``core.sampling.percent_split`` seed 2333), with
``python -m rssgl_qgis.core.synthetic --seeds 0,2 --percent 1,5 --rssgl 600 --device cuda`` on one H100:

====  ======  ===================  =====================  =============  ==============
seed  train   nearest class mean   Gaussian naive Bayes   RSSGL (600 it)  parcel oracle
====  ======  ===================  =====================  =============  ==============
0     1 %     0.824                0.873                  0.943          1.000
0     5 %     0.820                0.877                  0.978          1.000
2     1 %     0.720                0.852                  0.955          1.000
2     5 %     0.739                0.860                  0.979          1.000
====  ======  ===================  =====================  =============  ==============

("parcel oracle" = Gaussian naive Bayes on each pixel's parcel-mean spectrum: the information is there,
but only spatially.) Without ``--rssgl`` the CLI prints the baselines alone, CPU only, in seconds.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "CLASS_LIBRARY",
    "SyntheticScene",
    "TrainingPolygon",
    "make_synthetic_scene",
    "synthetic_wavelengths",
    "pixel_baselines",
]

# Water-vapour absorption windows (nm) that "corrected" AVIRIS scenes drop.
WATER_VAPOUR_WINDOWS: tuple[tuple[float, float], ...] = ((1340.0, 1460.0), (1790.0, 1960.0))
SPECTRAL_RANGE_NM: tuple[float, float] = (400.0, 2500.0)
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


@dataclass(frozen=True)
class TrainingPolygon:
    """A training polygon inside one field, vertices in pixel coordinates (x = column, y = row).

    Pixel (row r, column c) covers x in [c, c+1) and y in [r, r+1); its centre is (c+0.5, r+0.5).
    """

    class_value: int
    vertices: np.ndarray  # (n, 2) float64, closed implicitly (last vertex != first)


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
# Wavelengths and spectral building blocks
# --------------------------------------------------------------------------------------------------


def synthetic_wavelengths(bands: int, water_bands: str = "remove") -> np.ndarray:
    """``bands`` band centres (nm) spread evenly over 400-2500 nm, AVIRIS-like.

    With ``water_bands="remove"`` the centres avoid the water-vapour windows (as corrected scenes do);
    with ``"noisy"`` they cover the whole range and the scene makes those bands nearly signal-free.
    """
    if water_bands not in ("remove", "noisy"):
        raise ValueError(f"water_bands must be 'remove' or 'noisy', got {water_bands!r}.")
    lo, hi = SPECTRAL_RANGE_NM
    if water_bands == "noisy":
        return np.linspace(lo, hi, bands)
    edges = [lo]
    for a, b in WATER_VAPOUR_WINDOWS:
        edges += [a, b]
    edges.append(hi)
    intervals = np.array(edges).reshape(-1, 2)  # kept [start, end] pairs
    lengths = intervals[:, 1] - intervals[:, 0]
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    pos = np.linspace(0.0, cum[-1], bands)
    which = np.clip(np.searchsorted(cum, pos, side="right") - 1, 0, len(lengths) - 1)
    return intervals[which, 0] + (pos - cum[which])


def _gauss(lam: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((lam - centre) / width) ** 2)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _water_absorption(lam: np.ndarray) -> np.ndarray:
    """Liquid-water absorption coefficient (1/cm), log-interpolated from tabulated values."""
    nm = np.array([400, 700, 800, 900, 970, 1050, 1200, 1300, 1380, 1450, 1550, 1650, 1780, 1850, 1940,
                   2050, 2200, 2350, 2500], dtype=np.float64)
    k = np.array([1e-4, 6e-3, 0.02, 0.07, 0.45, 0.16, 1.0, 1.2, 8.0, 30.0, 10.0, 6.0, 8.0, 20.0, 115.0,
                  40.0, 16.0, 25.0, 50.0])
    return 10.0 ** np.interp(lam, nm, np.log10(k))


def _dry_matter_absorption(lam: np.ndarray) -> np.ndarray:
    """Relative cellulose/lignin absorption: the features that show when leaves dry out."""
    return 0.5 * _gauss(lam, 1730, 40) + 1.0 * _gauss(lam, 2100, 60) + 0.7 * _gauss(lam, 2300, 50)


def _soil_spectra(lam, bright, clay, moist, iron) -> np.ndarray:
    """Soil reflectance (N, B) from per-pixel brightness, clay, moisture and iron-oxide content (N,)."""
    lam = lam[None, :]
    shape = (0.35 + 0.65 * (1.0 - np.exp(-(lam - 400.0) / 500.0))) * (1.0 - 0.18 * _sigmoid((lam - 2150) / 120))
    iron_term = 1.0 - iron[:, None] * (0.35 * np.exp(-(lam - 400.0) / 120.0) + 0.12 * _gauss(lam, 900, 80))
    clay_term = 1.0 - clay[:, None] * (0.30 * _gauss(lam, 2205, 22) + 0.15 * _gauss(lam, 1415, 20)
                                       + 0.20 * _gauss(lam, 1915, 25))
    wet = np.exp(-moist[:, None] * 0.03 * _water_absorption(lam)) * (1.0 - 0.4 * moist[:, None])
    return (bright[:, None] * shape) * iron_term * clay_term * wet


def _vegetation_spectra(lam, lai, chl, cw, sen, soil) -> np.ndarray:
    """Canopy reflectance (N, B): leaf model (chlorophyll, red edge, water, dry matter) over soil."""
    lam_r = lam[None, :]
    lai, chl, cw, sen, soil = (a[:, None] for a in (lai, chl, cw, sen, soil))
    rep = 690.0 + 0.5 * chl - 18.0 * sen  # red-edge inflection moves to longer waves with chlorophyll
    edge = _sigmoid((lam_r - rep) / 11.0)
    visible = (0.022 + 0.35 / chl) + (2.6 / chl) * _gauss(lam_r, 555, 38)
    visible = visible + sen * 0.20 * _sigmoid((lam_r - 530.0) / 25.0)  # yellowing: red rises
    nir_level = (0.30 + 0.28 * (1.0 - np.exp(-0.35 * lai))) * (1.0 - 0.25 * sen)
    nir = nir_level * np.exp(-4.0 * cw * (1.0 - 0.6 * sen) * _water_absorption(lam_r)) \
        * np.exp(-0.35 * sen * _dry_matter_absorption(lam_r))
    leaf = visible * (1.0 - edge) + nir * edge
    cover = 1.0 - np.exp(-0.55 * lai)
    n = lai.shape[0]
    background = _soil_spectra(lam, soil[:, 0], np.full(n, 0.25), np.full(n, 0.15), np.full(n, 0.4))
    return cover * leaf + (1.0 - cover) * background


def _water_spectra(lam, turb, algae) -> np.ndarray:
    """Water reflectance (N, B): dark, falling with wavelength; sediment and algae bumps."""
    lam_r = lam[None, :]
    turb, algae = turb[:, None], algae[:, None]
    clear = 0.055 * np.exp(-(((lam_r - 440.0) / 260.0) ** 2)) * (1.0 - 0.3 * turb)
    sediment = turb * (0.045 * _gauss(lam_r, 620, 90) + 0.015 * _gauss(lam_r, 810, 35))
    chlorophyll = algae * 0.008 * (_gauss(lam_r, 705, 15) - 0.6 * _gauss(lam_r, 675, 12))
    return np.maximum(0.003 + clear + sediment + chlorophyll, 0.001)


def _urban_endmembers(lam: np.ndarray) -> np.ndarray:
    """(5, B): asphalt, concrete, red tile, metal roof, tree canopy."""
    ramp = (lam - 400.0) / 2100.0
    asphalt = (0.05 + 0.07 * ramp) * (1 - 0.15 * _gauss(lam, 1730, 30)) * (1 - 0.2 * _gauss(lam, 2310, 40))
    concrete = (0.24 + 0.12 * (1 - np.exp(-(lam - 400) / 300))) * (1 - 0.25 * _gauss(lam, 2340, 35))
    tile = (0.07 + 0.30 * _sigmoid((lam - 590) / 25)) * (1 - 0.2 * _gauss(lam, 880, 70)) * (1 - 0.1 * ramp)
    metal = 0.42 - 0.08 * ramp
    tree = _vegetation_spectra(lam, np.array([4.5]), np.array([48.0]), np.array([0.018]), np.array([0.03]),
                               np.array([0.15]))[0]
    return np.stack([asphalt, concrete, tile, metal, tree]).astype(np.float64)


def _urban_materials(rng, yy, xx, urban_mask, veg_share):
    """Material index (0-4) and brightness gain per pixel for built-up land: blocks of 3 x 3 pixels.

    Each block is one material (roofs, paving) or a tree, so built-up parcels have the strong
    block texture of real towns. Returns arrays over all pixels (only built-up ones are used).
    """
    n = urban_mask.size
    material = np.zeros(n, dtype=np.int64)
    gain = np.ones(n, dtype=np.float32)
    if not urban_mask.any():
        return material, gain
    block = (yy // 3).astype(np.int64).ravel() * 100003 + (xx // 3).astype(np.int64).ravel()
    _, block_idx = np.unique(block[urban_mask], return_inverse=True)
    n_blocks = int(block_idx.max()) + 1
    kind = rng.choice(4, size=n_blocks, p=[0.3, 0.3, 0.25, 0.15])
    tree = rng.random(n_blocks) < float(veg_share[urban_mask].mean())
    material[urban_mask] = np.where(tree, 4, kind)[block_idx]
    gain[urban_mask] = rng.uniform(0.85, 1.15, n_blocks)[block_idx]
    return material, gain


# --------------------------------------------------------------------------------------------------
# Spatial building blocks
# --------------------------------------------------------------------------------------------------


def _smooth_fields(rng: np.random.Generator, n: int, height: int, width: int, sigma: float) -> np.ndarray:
    """``n`` unit-variance Gaussian random fields (n, H, W) float32 with correlation length ``sigma`` px.

    White noise filtered in the Fourier domain, one field at a time so memory stays at a few
    H x W arrays even for 2048 x 2048 scenes.
    """
    out = rng.standard_normal((n, height, width), dtype=np.float32)
    if sigma <= 0:
        return out
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    transfer = np.exp(-2.0 * np.pi**2 * sigma**2 * (fx**2 + fy**2))
    for k in range(n):
        smooth = np.fft.irfft2(np.fft.rfft2(out[k]) * transfer, s=(height, width))
        smooth -= smooth.mean()
        out[k] = smooth / (smooth.std() + 1e-12)
    return out


def _gaussian_blur(cube: np.ndarray, sigma: float) -> np.ndarray:
    """Blur each band of a float32 (B, H, W) cube in place with a Gaussian PSF (separable, edge-replicated).

    A short separable kernel (radius 3 sigma) costs a few passes over the cube and no extra copy of it,
    so large scenes stay within memory.
    """
    if sigma <= 0:
        return cube
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    for start in range(0, cube.shape[0], 8):
        chunk = cube[start:start + 8]
        for axis in (1, 2):
            pad = [(0, 0), (0, 0), (0, 0)]
            pad[axis] = (radius, radius)
            padded = np.pad(chunk, pad, mode="edge")
            acc = np.zeros_like(chunk)
            n = chunk.shape[axis]
            for k, weight in enumerate(taps):
                acc += weight * (padded[:, k:k + n] if axis == 1 else padded[:, :, k:k + n])
            chunk[...] = acc
    return cube


def _parcels(rng, height, width, field_size, road_share, road_width):
    """Irregular parcels: a domain-warped Voronoi tessellation of jittered grid seeds, roads on some edges.

    Seeds sit one per grid cell of ``field_size`` pixels (jittered), so parcels have similar sizes, like a
    cadastral map, and the two nearest seeds of a pixel are always among the 5 x 5 cells around it:
    the cost is 25 distances per pixel whatever the scene size.
    Returns (field id (H, W), interior depth (H, W) in pixels, road mask (H, W), number of fields).
    """
    gh, gw = int(np.ceil(height / field_size)), int(np.ceil(width / field_size))
    cells = np.stack(np.mgrid[0:gh, 0:gw], axis=-1).astype(np.float64)  # (gh, gw, 2) as (row, col)
    seeds = (cells + rng.uniform(0.1, 0.9, size=cells.shape)) * field_size
    n_fields = gh * gw
    # Sentinel ring of far-away seeds so every pixel has 25 candidates without bounds checks.
    padded = np.full((gh + 4, gw + 4, 2), 1e9)
    padded[2:-2, 2:-2] = seeds
    ids = np.full((gh + 4, gw + 4), -1, dtype=np.int64)
    ids[2:-2, 2:-2] = np.arange(n_fields).reshape(gh, gw)
    warp = _smooth_fields(rng, 2, height, width, sigma=field_size / 4.0) * np.float32(field_size / 7.0)
    road_salt = int(rng.integers(1, 2**31))
    offsets = np.stack(np.mgrid[-2:3, -2:3], axis=-1).reshape(-1, 2)  # (25, 2)
    field = np.empty((height, width), dtype=np.int64)
    depth = np.empty((height, width), dtype=np.float64)
    roads = np.empty((height, width), dtype=bool)
    rows_per_chunk = max(1, 2**20 // (25 * width))
    for r0 in range(0, height, rows_per_chunk):
        r1 = min(height, r0 + rows_per_chunk)
        yy, xx = np.mgrid[r0:r1, 0:width].astype(np.float64) + 0.5
        wy, wx = yy + warp[0, r0:r1], xx + warp[1, r0:r1]
        cy = np.clip(np.floor(wy / field_size).astype(np.int64), 0, gh - 1).ravel()
        cx = np.clip(np.floor(wx / field_size).astype(np.int64), 0, gw - 1).ravel()
        ny = cy[:, None] + offsets[None, :, 0] + 2
        nx = cx[:, None] + offsets[None, :, 1] + 2
        cand = padded[ny, nx]  # (N, 25, 2)
        d2 = (cand[..., 0] - wy.ravel()[:, None]) ** 2 + (cand[..., 1] - wx.ravel()[:, None]) ** 2
        two = np.argpartition(d2, 1, axis=1)[:, :2]
        d_two = np.take_along_axis(d2, two, axis=1)
        swap = d_two[:, 1] < d_two[:, 0]
        two[swap] = two[swap][:, ::-1]
        d_two[swap] = d_two[swap][:, ::-1]
        first = np.take_along_axis(ids[ny, nx], two, axis=1)  # (N, 2) field ids, nearest first
        s = np.take_along_axis(cand, two[..., None], axis=1)  # (N, 2, 2)
        sep = np.sqrt(((s[:, 0] - s[:, 1]) ** 2).sum(axis=1))
        # Distance to the bisector between the two nearest seeds: the distance to the parcel edge.
        dep = (d_two[:, 1] - d_two[:, 0]) / (2.0 * np.maximum(sep, 1e-9))
        lo, hi = np.minimum(first[:, 0], first[:, 1]), np.maximum(first[:, 0], first[:, 1])
        pair_hash = ((lo * 1000003 + hi) * 2654435761 + road_salt) % 4294967296
        road = (pair_hash / 4294967296.0 < road_share) & (dep < road_width / 2.0) & (lo >= 0)
        field[r0:r1] = first[:, 0].reshape(r1 - r0, width)
        depth[r0:r1] = dep.reshape(r1 - r0, width)
        roads[r0:r1] = road.reshape(r1 - r0, width)
    return field, depth, roads, n_fields


def _points_in_polygon(px: np.ndarray, py: np.ndarray, vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
    """Even-odd rule for many points against one polygon (vectorised over points and edges)."""
    x0, y0 = vx[None, :], vy[None, :]
    x1, y1 = np.roll(vx, -1)[None, :], np.roll(vy, -1)[None, :]
    px, py = px[:, None], py[:, None]
    crosses = (y0 > py) != (y1 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
    return (crosses & (px < x_cross)).sum(axis=1) % 2 == 1


def _training_polygons(rng, labels, field_ids, depth, field_class, class_values, per_class, radius):
    """A few irregular hexagons per class, each well inside one field, and their pixel-centre raster."""
    height, width = labels.shape
    polygons: list[TrainingPolygon] = []
    raster = np.zeros((height, width), dtype=np.int32)
    flat_depth = np.where(labels > 0, depth, -1.0).ravel()
    flat_field = field_ids.ravel()
    n_fields = len(field_class)
    # Deepest pixel of every field (vectorised: sort by depth, keep the last per field).
    order = np.lexsort((flat_depth, flat_field))
    last = np.r_[flat_field[order][1:] != flat_field[order][:-1], True]
    best_idx = np.full(n_fields, -1)
    best_idx[flat_field[order][last]] = order[last]
    best_depth = np.where(best_idx >= 0, flat_depth[np.maximum(best_idx, 0)], -1.0)
    for ci, value in enumerate(class_values):
        fields = np.flatnonzero((field_class == ci) & (best_depth > 1.5))
        fields = fields[np.argsort(-best_depth[fields])][:per_class]
        for f in fields:
            r, c = divmod(int(best_idx[f]), width)
            cx, cy = c + 0.5, r + 0.5
            rad = min(radius, 0.8 * best_depth[f])
            angles = np.sort(rng.uniform(0, 2 * np.pi, 6))
            jitter = rng.uniform(0.75, 1.1, 6)
            for _ in range(6):
                vx = cx + rad * jitter * np.cos(angles)
                vy = cy + rad * jitter * np.sin(angles)
                r0, r1 = max(int(np.floor(vy.min())), 0), min(int(np.ceil(vy.max())) + 1, height)
                c0, c1 = max(int(np.floor(vx.min())), 0), min(int(np.ceil(vx.max())) + 1, width)
                gy, gx = np.mgrid[r0:r1, c0:c1]
                inside = _points_in_polygon(gx.ravel() + 0.5, gy.ravel() + 0.5, vx, vy).reshape(gy.shape)
                window_labels = labels[r0:r1, c0:c1]
                window_fields = field_ids[r0:r1, c0:c1]
                ok = inside.any() and np.all((window_labels[inside] == value) & (window_fields[inside] == f))
                if ok:
                    polygons.append(TrainingPolygon(int(value), np.stack([vx, vy], axis=1)))
                    raster[r0:r1, c0:c1][inside] = value
                    break
                rad *= 0.75
    return polygons, raster


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
    rng = np.random.default_rng(seed)
    specs = CLASS_LIBRARY[:n_classes]
    class_values = np.arange(1, n_classes + 1, dtype=np.int32)
    lam = synthetic_wavelengths(bands, water_bands)

    # Layout: parcels, roads, class of each parcel (every class gets fields, shuffled).
    field_size = float(min(field_size, np.sqrt(height * width / (2.0 * n_classes))))
    field_ids, depth, roads, n_fields = _parcels(rng, height, width, field_size, road_share, road_width)
    field_class = np.resize(rng.permutation(n_classes), n_fields)
    field_class = field_class[rng.permutation(n_fields)]
    pixel_class = field_class[field_ids]  # class index 0..K-1 per pixel (roads overwritten below)

    # Per-field parameters plus spatially correlated per-pixel texture (fine grain, a little
    # large-scale drift, pixel noise): pixels vary a lot, field means little.
    n_slots = len(_PARAM_SLOTS)
    means = np.zeros((n_slots, n_classes))
    between = np.zeros((n_slots, n_classes))
    within = np.zeros((n_slots, n_classes))
    for ci, spec in enumerate(specs):
        for name, (mu, sd_field, sd_pixel) in spec.params.items():
            k = _PARAM_SLOTS.index(name)
            means[k, ci], between[k, ci], within[k, ci] = mu, sd_field, sd_pixel
    field_values = means[:, field_class] + between[:, field_class] * rng.standard_normal((n_slots, n_fields))
    params = np.empty((n_slots, height, width), dtype=np.float32)
    for k, name in enumerate(_PARAM_SLOTS):
        texture = 0.6 * _smooth_fields(rng, 1, height, width, 0.8)[0] \
            + 0.35 * _smooth_fields(rng, 1, height, width, 5.0)[0] \
            + 0.7 * rng.standard_normal((height, width), dtype=np.float32)
        texture /= texture.std()
        lo, hi = _PARAM_BOUNDS[name]
        params[k] = np.clip(field_values[k][field_ids] + within[k][pixel_class] * texture, lo, hi)

    # Field textures that only a spatial model can use: crop rows and tree crowns.
    kind = np.array([spec.texture for spec in specs])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    theta = rng.uniform(0, np.pi, n_fields)[field_ids]
    period = rng.uniform(4.0, 6.0, n_fields)[field_ids]
    rows = np.cos(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period)
    lai = params[_PARAM_SLOTS.index("lai")]
    in_rows = (kind == "rows")[pixel_class]
    lai[in_rows] *= 1.0 + 0.3 * rows[in_rows]
    crowns = _smooth_fields(rng, 1, height, width, sigma=1.0)[0]
    in_crowns = (kind == "crowns")[pixel_class]
    lai[in_crowns] *= np.clip(1.0 + 0.35 * crowns[in_crowns], 0.3, None)
    del rows, theta, period, crowns

    # Spectra, model by model and in chunks of pixels, straight into the (B, H*W) cube.
    model_codes = {"vegetation": 0, "soil": 1, "water": 2, "urban": 3, "road": 4}
    class_model = np.array([model_codes[spec.model] for spec in specs])
    pixel_model = np.where(roads, model_codes["road"], class_model[pixel_class]).ravel()
    flat_params = params.reshape(n_slots, -1)
    slot = {name: flat_params[i] for i, name in enumerate(_PARAM_SLOTS)}
    cube = np.empty((bands, height * width), dtype=np.float32)
    endmembers = _urban_endmembers(lam)
    road_soil = _soil_spectra(lam, np.full(1, 0.35), np.full(1, 0.2), np.full(1, 0.1), np.full(1, 0.4))[0]
    urban = _urban_materials(rng, yy, xx, pixel_model == model_codes["urban"], slot["veg"])
    gravel = np.clip(0.25 + 0.1 * rng.standard_normal(height * width), 0, 1)
    models = {
        0: lambda i: _vegetation_spectra(lam, *(slot[n][i] for n in ("lai", "chl", "cw", "sen", "soil"))),
        1: lambda i: _soil_spectra(lam, *(slot[n][i] for n in ("bright", "clay", "moist", "iron"))),
        2: lambda i: _water_spectra(lam, slot["turb"][i], slot["algae"][i]),
        3: lambda i: endmembers[urban[0][i]] * urban[1][i, None],
        4: lambda i: (1 - gravel[i, None]) * endmembers[0] + gravel[i, None] * road_soil,
    }
    chunk = max(1024, 2**22 // bands)
    for code, spectra in models.items():
        idx = np.flatnonzero(pixel_model == code)
        for start in range(0, idx.size, chunk):
            part = idx[start:start + chunk]
            cube[:, part] = spectra(part).T
    cube = cube.reshape(bands, height, width)

    # Illumination (topography, thin haze): smooth multiplicative brightness changes.
    cube *= 1.0 + 0.02 * _smooth_fields(rng, 1, height, width, sigma=12.0)[0]

    # Sensor: PSF (linear mixing across parcel edges), then signal-dependent noise, band by band.
    _gaussian_blur(cube, psf_sigma)
    snr_shape = 1.0 + 1.2 * _sigmoid((lam - 1300.0) / 100.0) + 1.5 * np.exp(-(lam - 400.0) / 40.0)
    vapour = np.exp(-4.0 * (_gauss(lam, 1380, 35) + _gauss(lam, 1880, 50)))
    for b in range(bands):
        plane = cube[b]
        sd = np.float32(noise * snr_shape[b]) * np.sqrt(np.float32(0.0015**2) + (plane * np.float32(0.004)) ** 2)
        plane += sd * rng.standard_normal(plane.shape, dtype=np.float32)
        if water_bands == "noisy":
            plane *= np.float32(vapour[b])
            plane += np.float32(0.01 * (1.0 - vapour[b])) * rng.standard_normal(plane.shape, dtype=np.float32)

    labels = np.where(roads, 0, class_values[pixel_class]).astype(np.int32)
    valid = np.ones((height, width), dtype=bool)
    if nodata_edge > 0:
        valid = xx >= nodata_edge * (1.0 - yy / height)
        labels[~valid] = 0

    polygons, polygon_labels = _training_polygons(
        rng, labels, np.where(roads, -1, field_ids), depth, field_class, class_values,
        polygons_per_class, polygon_radius)

    if dtype == "int16":  # band by band: no float temporary the size of the cube
        stored = np.empty(cube.shape, dtype=np.int16)
        for b in range(bands):
            stored[b] = np.clip(np.rint(cube[b] * np.float32(INT16_SCALE)), -32767, 32767)
        del cube
        stored[:, ~valid] = INT16_NODATA
        nodata, scale = float(INT16_NODATA), 1.0 / INT16_SCALE
    else:
        stored = cube
        stored[:, ~valid] = np.nan
        nodata, scale = float("nan"), 1.0
    return SyntheticScene(
        cube=stored, labels=labels, class_values=class_values,
        class_names=[s.name for s in specs], class_colors=[s.color for s in specs],
        wavelengths=lam.astype(np.float64), train_polygons=polygons, polygon_labels=polygon_labels,
        valid=valid, field_ids=np.where(roads, -1, field_ids).astype(np.int32), nodata=nodata, scale=scale,
        seed=seed,
        metadata={"generator": "rssgl_qgis.core.synthetic", "seed": seed, "n_fields": n_fields,
                  "water_bands": water_bands, "psf_sigma": psf_sigma, "noise": noise},
    )


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


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: generate scenes and print how hard they are for per-pixel, neighbourhood and RSSGL models.

    With ``--rssgl N`` RSSGL is trained for N iterations on the engine's own split
    (``core.sampling.percent_split``, seed 2333) and the baselines use that same split.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--bands", type=int, default=120)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--percent", default="1,5", help="training percentages (default 1,5)")
    parser.add_argument("--rssgl", type=int, default=0, metavar="ITERATIONS",
                        help="also train RSSGL for this many iterations (0 = no; needs torch)")
    parser.add_argument("--device", default="auto", help="device for --rssgl: auto, cuda or cpu")
    args = parser.parse_args(argv)
    print("seed  size  bands  gen_s  train%  n_train  NCM    GNB    NCM-7x7  GNB-7x7  NCM-parcel  GNB-parcel"
          + ("  RSSGL  train_s" if args.rssgl else ""))
    for seed in (int(s) for s in args.seeds.split(",")):
        t0 = time.perf_counter()
        scene = make_synthetic_scene(seed, args.size, args.size, args.bands, args.classes)
        gen = time.perf_counter() - t0
        for pct in (float(p) for p in args.percent.split(",")):
            extra = ""
            if args.rssgl:
                from .sampling import percent_split
                from .training import RssglClassifier, TrainingParams

                train, test = percent_split(scene.labels, pct, seed=2333)
                t1 = time.perf_counter()
                params = TrainingParams(iterations=args.rssgl, device=args.device)
                predicted = RssglClassifier(params=params).fit(scene.cube, train).predict(scene.cube)
                scored = test > 0
                extra = f"  {(predicted[scored] == test[scored]).mean():.3f}  {time.perf_counter() - t1:.1f}"
                r = pixel_baselines(scene, train_labels=train)
            else:
                r = pixel_baselines(scene, pct, seed)
            print(f"{seed:<5} {args.size:<5} {args.bands:<6} {gen:<6.2f} {pct:<7g} {r['n_train']:<8} "
                  f"{r['ncm']:.3f}  {r['gnb']:.3f}  {r['ncm_window']:.3f}    {r['gnb_window']:.3f}    "
                  f"{r['ncm_parcel']:.3f}       {r['gnb_parcel']:.3f}" + extra)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
