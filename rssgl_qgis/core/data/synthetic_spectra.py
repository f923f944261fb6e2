"""The synthetic scene's spectra: band wavelengths and small physical reflectance models (core/data/synthetic.py).

Why apart: the scene generator (core/data/synthetic.py) composes fields from these; each model is a
vectorised function of the wavelengths and per-pixel parameters (leaf area, chlorophyll, water
content, soil brightness, ...), evaluated for all pixels at once. What each one models is in
core/data/synthetic.py's docstring.
"""

from __future__ import annotations

import numpy as np

__all__ = ["WATER_VAPOUR_WINDOWS", "SPECTRAL_RANGE_NM", "synthetic_wavelengths", "gauss", "sigmoid", "soil_spectra",
           "vegetation_spectra", "water_spectra", "urban_endmembers", "urban_materials"]

# Water-vapour absorption windows (nm) that "corrected" AVIRIS scenes drop.
WATER_VAPOUR_WINDOWS: tuple[tuple[float, float], ...] = ((1340.0, 1460.0), (1790.0, 1960.0))
SPECTRAL_RANGE_NM: tuple[float, float] = (400.0, 2500.0)


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


def gauss(lam: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((lam - centre) / width) ** 2)


def sigmoid(x: np.ndarray) -> np.ndarray:
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
    return 0.5 * gauss(lam, 1730, 40) + 1.0 * gauss(lam, 2100, 60) + 0.7 * gauss(lam, 2300, 50)


def soil_spectra(lam, bright, clay, moist, iron) -> np.ndarray:
    """Soil reflectance (N, B) from per-pixel brightness, clay, moisture and iron-oxide content (N,)."""
    lam = lam[None, :]
    shape = (0.35 + 0.65 * (1.0 - np.exp(-(lam - 400.0) / 500.0))) * (1.0 - 0.18 * sigmoid((lam - 2150) / 120))
    iron_term = 1.0 - iron[:, None] * (0.35 * np.exp(-(lam - 400.0) / 120.0) + 0.12 * gauss(lam, 900, 80))
    clay_term = 1.0 - clay[:, None] * (0.30 * gauss(lam, 2205, 22) + 0.15 * gauss(lam, 1415, 20)
                                       + 0.20 * gauss(lam, 1915, 25))
    wet = np.exp(-moist[:, None] * 0.03 * _water_absorption(lam)) * (1.0 - 0.4 * moist[:, None])
    return (bright[:, None] * shape) * iron_term * clay_term * wet


def vegetation_spectra(lam, lai, chl, cw, sen, soil) -> np.ndarray:
    """Canopy reflectance (N, B): leaf model (chlorophyll, red edge, water, dry matter) over soil."""
    lam_r = lam[None, :]
    lai, chl, cw, sen, soil = (a[:, None] for a in (lai, chl, cw, sen, soil))
    rep = 690.0 + 0.5 * chl - 18.0 * sen  # red-edge inflection moves to longer waves with chlorophyll
    edge = sigmoid((lam_r - rep) / 11.0)
    visible = (0.022 + 0.35 / chl) + (2.6 / chl) * gauss(lam_r, 555, 38)
    visible = visible + sen * 0.20 * sigmoid((lam_r - 530.0) / 25.0)  # yellowing: red rises
    nir_level = (0.30 + 0.28 * (1.0 - np.exp(-0.35 * lai))) * (1.0 - 0.25 * sen)
    nir = nir_level * np.exp(-4.0 * cw * (1.0 - 0.6 * sen) * _water_absorption(lam_r)) \
        * np.exp(-0.35 * sen * _dry_matter_absorption(lam_r))
    leaf = visible * (1.0 - edge) + nir * edge
    cover = 1.0 - np.exp(-0.55 * lai)
    n = lai.shape[0]
    background = soil_spectra(lam, soil[:, 0], np.full(n, 0.25), np.full(n, 0.15), np.full(n, 0.4))
    return cover * leaf + (1.0 - cover) * background


def water_spectra(lam, turb, algae) -> np.ndarray:
    """Water reflectance (N, B): dark, falling with wavelength; sediment and algae bumps."""
    lam_r = lam[None, :]
    turb, algae = turb[:, None], algae[:, None]
    clear = 0.055 * np.exp(-(((lam_r - 440.0) / 260.0) ** 2)) * (1.0 - 0.3 * turb)
    sediment = turb * (0.045 * gauss(lam_r, 620, 90) + 0.015 * gauss(lam_r, 810, 35))
    chlorophyll = algae * 0.008 * (gauss(lam_r, 705, 15) - 0.6 * gauss(lam_r, 675, 12))
    return np.maximum(0.003 + clear + sediment + chlorophyll, 0.001)


def urban_endmembers(lam: np.ndarray) -> np.ndarray:
    """(5, B): asphalt, concrete, red tile, metal roof, tree canopy."""
    ramp = (lam - 400.0) / 2100.0
    asphalt = (0.05 + 0.07 * ramp) * (1 - 0.15 * gauss(lam, 1730, 30)) * (1 - 0.2 * gauss(lam, 2310, 40))
    concrete = (0.24 + 0.12 * (1 - np.exp(-(lam - 400) / 300))) * (1 - 0.25 * gauss(lam, 2340, 35))
    tile = (0.07 + 0.30 * sigmoid((lam - 590) / 25)) * (1 - 0.2 * gauss(lam, 880, 70)) * (1 - 0.1 * ramp)
    metal = 0.42 - 0.08 * ramp
    tree = vegetation_spectra(lam, np.array([4.5]), np.array([48.0]), np.array([0.018]), np.array([0.03]),
                               np.array([0.15]))[0]
    return np.stack([asphalt, concrete, tile, metal, tree]).astype(np.float64)


def urban_materials(rng, yy, xx, urban_mask, veg_share):
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
