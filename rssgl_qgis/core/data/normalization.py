"""Per-band standardisation of hyperspectral cubes.

RSSGL is trained on standardised bands (REFERENCE.md: mean and std of all pixels of the scene).
We compute the statistics over VALID pixels only, so nodata fill values (e.g. -9999) do not skew
them, and store them in the model file: a new raster is normalised with the training statistics,
which keeps the network's input distribution the one it was trained on.
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["band_statistics", "normalize_cube", "check_cube"]

log = logging.getLogger(__name__)


def check_cube(cube: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (B, H, W) cube and return it as float32 with a boolean (H, W) valid mask.

    Pixels with a non-finite value in any band are marked invalid here, so callers only
    have to pass their own nodata mask.
    """
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise ValueError(
            f"Expected a hyperspectral cube shaped (bands, height, width); got an array with shape {cube.shape}. "
            "Pass a 3-D array in GDAL order (bands first)."
        )
    if cube.shape[0] < 1 or cube.shape[1] < 1 or cube.shape[2] < 1:
        raise ValueError(f"The cube is empty (shape {cube.shape}); pass a raster with at least one pixel and band.")
    cube = cube.astype(np.float32, copy=False)
    finite = np.isfinite(cube).all(axis=0)
    if valid is None:
        valid = finite
    else:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != cube.shape[1:]:
            raise ValueError(
                f"The valid mask has shape {valid.shape} but the cube is {cube.shape[1]}x{cube.shape[2]} pixels; "
                "pass a mask of the raster's height and width."
            )
        valid = valid & finite
    return cube, valid


def band_statistics(cube: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each band over the valid pixels, as float64 arrays (B,).

    Accumulates in float64 because int16 radiance cubes have large means and a float32 sum of
    squares loses the variance. A constant band (std 0) gets std 1 so it standardises to 0.
    """
    cube, valid = check_cube(cube, valid)
    n = int(valid.sum())
    if n == 0:
        raise ValueError("The raster has no valid pixel (all nodata or NaN); check its nodata value and extent.")
    pixels = cube[:, valid].astype(np.float64)  # (B, n)
    mean = pixels.mean(axis=1)
    std = pixels.std(axis=1)
    constant = std <= 1e-12
    if constant.any():
        log.warning("%d band(s) are constant over the valid pixels; they are standardised to 0.", int(constant.sum()))
        std = np.where(constant, 1.0, std)
    return mean, std


def normalize_cube(
    cube: np.ndarray, mean: np.ndarray, std: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """Return ``(cube - mean) / std`` as float32 (B, H, W), with invalid pixels set to 0."""
    cube, valid = check_cube(cube, valid)
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    if mean.shape != (cube.shape[0],) or std.shape != (cube.shape[0],):
        raise ValueError(
            f"The normalisation statistics cover {mean.shape[0] if mean.ndim else 0} bands but the raster has "
            f"{cube.shape[0]}; use the raster the model was trained on."
        )
    out = ((cube - mean[:, None, None].astype(np.float32)) / std[:, None, None].astype(np.float32)).astype(
        np.float32, copy=False
    )
    out[:, ~valid] = 0.0
    return out
