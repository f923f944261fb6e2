"""The synthetic scene's layout: parcels and roads, smooth random fields, the sensor's blur, training polygons.

Why apart: these are the spatial half of core/data/synthetic.py (the spectra are core/data/synthetic_spectra.py);
all are vectorised over the grid (no per-pixel loops) and deterministic by the generator passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TrainingPolygon", "smooth_fields", "gaussian_blur", "parcels", "training_polygons"]


@dataclass(frozen=True)
class TrainingPolygon:
    """A training polygon inside one field, vertices in pixel coordinates (x = column, y = row).

    Pixel (row r, column c) covers x in [c, c+1) and y in [r, r+1); its centre is (c+0.5, r+0.5).
    """

    class_value: int
    vertices: np.ndarray  # (n, 2) float64, closed implicitly (last vertex != first)


def smooth_fields(rng: np.random.Generator, n: int, height: int, width: int, sigma: float) -> np.ndarray:
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


def gaussian_blur(cube: np.ndarray, sigma: float) -> np.ndarray:
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


def parcels(rng, height, width, field_size, road_share, road_width):
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
    warp = smooth_fields(rng, 2, height, width, sigma=field_size / 4.0) * np.float32(field_size / 7.0)
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


def training_polygons(rng, labels, field_ids, depth, field_class, class_values, per_class, radius):
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
