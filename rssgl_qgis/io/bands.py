"""Which bands of a raster a model uses: empty bands left out, a model's bands found in another raster.

Why: real sensor products carry bands without data. EnMAP L2A leaves bands 130-135 (the strongest
water-vapour absorption) nodata everywhere; since a pixel counts as invalid where a band read is
nodata, training on every band found no valid pixel at all (issue 14). Such bands (nodata or NaN
everywhere, or one constant value) are left out before training, named in the log and the report,
and the model file records the bands it uses (``band_indices``, 1-based, with their names and
wavelengths), so Classify picks exactly those bands from the raster it is given: by wavelength when
both sides know them, by band number otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.errors import RssglError
from ..core.text import number_text
from .band_scan import LogFn, ProgressFn, StopFn, scan_bands
from .raster import RasterInfo, _open

__all__ = ["flagged_bad_bands", "unusable_bands", "band_label", "describe_bands", "check_model_bands",
           "model_band_numbers", "WAVELENGTH_TOLERANCE_NM", "FLAGGED", "NO_DATA", "CONSTANT"]

#: Two band centres closer than this are the same band (EnMAP / PRISMA band spacing: 6-12 nm).
WAVELENGTH_TOLERANCE_NM = 2.0


def band_label(info: RasterInfo, number: int) -> str:
    """'band 130 (1364.9 nm)' for people (1-based band numbers, as GDAL and QGIS count)."""
    wl = info.wavelengths[number - 1] if info.wavelengths else None
    return f"band {number}" + (f" ({number_text(wl, 1)} nm)" if wl is not None and np.isfinite(wl) else "")


#: Why a band is left out (unusable_bands), as the notice says it.
FLAGGED = "flagged bad in the file"
NO_DATA = "no data"
CONSTANT = "one constant value"


def _bbl_values(text: str | None) -> list[float] | None:
    if text is None:
        return None
    items = [s for s in text.replace("{", " ").replace("}", " ").replace(",", " ").split() if s]
    try:
        return [float(s) for s in items]
    except ValueError:
        return None


def flagged_bad_bands(path: str, info: RasterInfo) -> list[int]:
    """1-based numbers of the bands the file's bad-band list marks bad (``bbl`` value 0).

    Where GDAL exposes the list: the ENVI header's ``bbl = {...}`` (GDAL's ENVI metadata domain, also
    on GeoTIFFs that carry it), a dataset-level ``bbl`` item, and per-band ``bbl`` items (EnMAP-Box
    GeoTIFFs, and VRTs or GeoTIFFs translated from them). A list of the wrong length is ignored.
    """
    dataset = _open(path)
    n = dataset.RasterCount
    for domain in ("ENVI", ""):
        meta = {k.lower(): v for k, v in (dataset.GetMetadata(domain) or {}).items()}
        values = _bbl_values(meta.get("bbl"))
        if values is not None and len(values) == n:
            return [k + 1 for k, v in enumerate(values) if v == 0]
    bad = []
    for i in range(1, n + 1):
        band = dataset.GetRasterBand(i)
        for domain in ("", "ENVI"):
            meta = {k.lower(): v for k, v in (band.GetMetadata(domain) or {}).items()}
            values = _bbl_values(meta.get("bbl"))
            if values is not None and len(values) == 1:
                if values[0] == 0:
                    bad.append(i)
                break
    return bad


def unusable_bands(path: str, info: RasterInfo, *, progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None, log: LogFn | None = None) -> dict[int, list[str]]:
    """Every band to leave out, with its reasons (FLAGGED, NO_DATA, CONSTANT), by 1-based band number.

    Empty and constant bands are found by io.band_scan without reading the whole raster where the
    file's statistics or a sample of its blocks settle them; ``progress``, ``should_stop`` and ``log``
    are the workflow's callables (a first message at once, progress, Cancelled when asked to stop).
    """
    reasons: dict[int, list[str]] = {b: [FLAGGED] for b in flagged_bad_bands(path, info)}
    scan = scan_bands(path, info, progress=progress, should_stop=should_stop, log=log)
    for b in scan.no_data:
        reasons.setdefault(b, []).append(NO_DATA)
    for b in scan.constant:
        reasons.setdefault(b, []).append(CONSTANT)
    return dict(sorted(reasons.items()))


def check_model_bands(classifier: Any, info: RasterInfo, tolerance_nm: float = WAVELENGTH_TOLERANCE_NM) -> list[str]:
    """Raise RssglError when the raster's bands do not match the model's; return warnings otherwise.

    The band count must be equal. When both the model and the raster know their band wavelengths,
    every band centre must match within ``tolerance_nm`` (same sensor, same band order). When only
    one side knows them, a warning says the check was skipped.
    """
    n_model = int(getattr(classifier, "n_bands_", len(classifier.band_mean_)))
    if info.bands != n_model:
        raise RssglError(
            f"The model expects {n_model} bands but the raster '{_name(info)}' has {info.bands}; "
            "use a raster of the sensor and band subset the model was trained on."
        )
    band_info = getattr(classifier, "band_info_", None) or {}
    model_wl = band_info.get("wavelengths")
    raster_wl = info.wavelengths
    if model_wl and raster_wl:
        a = np.asarray(model_wl, dtype=np.float64)
        b = np.asarray(raster_wl, dtype=np.float64)
        if a.shape == b.shape:
            diff = np.abs(a - b)
            bad = np.flatnonzero(~(diff <= tolerance_nm))
            if bad.size:
                i = int(bad[0])
                raise RssglError(
                    f"The raster's band wavelengths do not match the model's: band {i + 1} is at {b[i]:.1f} nm in the "
                    f"raster but {a[i]:.1f} nm in the model ({bad.size} band(s) differ by more than "
                    f"{tolerance_nm:g} nm). Use a raster of the same sensor and band order as the training raster."
                )
        return []
    if model_wl or raster_wl:
        who = "raster" if model_wl else "model"
        return [f"Band wavelengths could not be compared (the {who} does not record them); only the band count "
                "was checked."]
    return []


def _name(info: RasterInfo) -> str:
    return os.path.basename(info.path)


def model_band_numbers(classifier: Any, info: RasterInfo, tolerance_nm: float = WAVELENGTH_TOLERANCE_NM
                       ) -> tuple[list[int], list[str]]:
    """The raster's 1-based band numbers holding the model's bands, in the model's order, and warnings.

    A raster with the model's band count is used band for band (check_model_bands compares the
    wavelengths position by position). A raster with other bands, for a model that records the band
    numbers it was trained on (a subset: empty bands left out, or a band selection), is searched by
    wavelength (nearest band centre within ``tolerance_nm``) when both sides know wavelengths, and by
    those band numbers otherwise. A model band the raster does not have is an RssglError naming it.
    """
    n_model = int(getattr(classifier, "n_bands_", len(classifier.band_mean_)))
    band_info = getattr(classifier, "band_info_", None) or {}
    indices, model_wl, names = band_info.get("indices"), band_info.get("wavelengths"), band_info.get("names")
    if info.bands == n_model or not indices:
        return list(range(1, n_model + 1)), check_model_bands(classifier, info, tolerance_nm)
    if model_wl and info.wavelengths and len(model_wl) == n_model:
        raster_wl = np.asarray(info.wavelengths, dtype=np.float64)
        chosen = []
        for k, wl in enumerate(model_wl):
            distance = np.abs(raster_wl - float(wl))
            best = int(np.nanargmin(distance)) if np.isfinite(distance).any() else -1
            if best < 0 or not distance[best] <= tolerance_nm:
                label = f", '{names[k]}'" if names and k < len(names) and names[k] else ""
                raise RssglError(
                    f"The raster '{_name(info)}' has no band at {number_text(wl, 1)} nm (within "
                    f"{number_text(tolerance_nm)} nm), which the model uses (its band {k + 1} of {n_model}{label}). "
                    "Use a raster of the sensor the model was trained on, with that band.")
            chosen.append(best + 1)
        if len(set(chosen)) != len(chosen):
            raise RssglError(f"Two of the model's bands match the same band of '{_name(info)}' by wavelength; the "
                             "raster's bands are coarser than the model's. Use a raster of the sensor the model was "
                             "trained on.")
        return chosen, []
    warnings = []
    if model_wl or info.wavelengths:
        who = "raster" if model_wl else "model"
        warnings.append(f"Band wavelengths could not be compared (the {who} does not record them); the model's "
                        "bands were taken by their band numbers in the training raster.")
    missing = [int(b) for b in indices if int(b) > info.bands]
    if missing:
        raise RssglError(f"The model uses band {missing[0]} of its training raster ({len(missing)} band(s) beyond this "
                         f"raster), but the raster '{_name(info)}' has {info.bands} bands. Use the raster the model "
                         "was trained on, or one of the same sensor with the same bands.")
    return [int(b) for b in indices], warnings


def describe_bands(info: RasterInfo, numbers: Sequence[int]) -> str:
    """'130 (1364.9 nm), 131 (...)' for a log line."""
    return ", ".join(band_label(info, b).replace("band ", "") for b in numbers)

