"""Bands without data are left out and named; a model's bands are found in the raster it classifies (issue 14).

Rasters are written by the tests: 10 bands at 500..680 nm (band descriptions "Band k: 5x0 nm"), three
blocky classes; band 3 nodata everywhere, band 5 NaN everywhere, band 8 one constant value.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from rssgl_qgis.core.errors import RssglError
from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams
from rssgl_qgis.io.bands import model_band_numbers, unusable_bands
from rssgl_qgis.io.classify_raster import ClassifyOutputs, classify_raster
from rssgl_qgis.io.raster import raster_info
from rssgl_qgis.workflows.train import train_from_files

from .helpers import make_raster

NODATA = -9999.0
WAVELENGTHS = [500.0 + 20.0 * k for k in range(10)]
EMPTY = [3, 5, 8]
KEPT = [1, 2, 4, 6, 7, 9, 10]
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "enmap_potsdam_tiles"


def _cube(seed: int = 0, size: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.full((size, size), 3, dtype=np.uint8)
    labels[: size // 2, : size // 2] = 1
    labels[size // 2:, : size // 2] = 2
    means = rng.uniform(0.1, 0.6, (3, 10))
    cube = means[labels.ravel() - 1].T.reshape(10, size, size) + rng.normal(0, 0.02, (10, size, size))
    return cube.astype(np.float32), labels


def _descriptions(wavelengths) -> list[str]:
    return [f"Band {k + 1}: {w:.0f} nm" for k, w in enumerate(wavelengths)]


def _with_empty_bands(cube: np.ndarray) -> np.ndarray:
    out = cube.copy()
    out[2] = NODATA
    out[4] = np.nan
    out[7] = 0.3
    return out


def _train(tmp_path, raster: str, labels: str, name: str = "model"):
    params = TrainingParams(iterations=3, epoch_iterations=1, device="cpu", seed=0)
    return train_from_files(raster, samples_raster=labels, params=params, kernel="3x3x3",
                            model_out=str(tmp_path / f"{name}.rssgl"), report_out=str(tmp_path / f"{name}.html"),
                            classification_out=str(tmp_path / f"{name}.tif"))


def _map(path: str) -> np.ndarray:
    return gdal.Open(path).ReadAsArray()


@pytest.fixture
def full(tmp_path):
    cube, labels = _cube()
    raster = make_raster(tmp_path / "full.tif", _with_empty_bands(cube), nodata=NODATA,
                         descriptions=_descriptions(WAVELENGTHS))
    return raster, make_raster(tmp_path / "labels.tif", labels, nodata=0), cube, labels


def test_bands_without_data_are_found_in_strips(full, monkeypatch):
    from rssgl_qgis.io import band_scan

    raster = full[0]
    assert list(unusable_bands(raster, raster_info(raster))) == EMPTY
    monkeypatch.setattr(band_scan, "SCAN_BYTES", 1)  # one row at a time: the same answer
    monkeypatch.setattr(band_scan, "MIN_CHUNK_PIXELS", 1)  # and native blocks in the sample
    assert list(unusable_bands(raster, raster_info(raster))) == EMPTY


def test_training_leaves_out_empty_bands_and_names_them(tmp_path, full):
    raster, labels, _, truth = full
    result = _train(tmp_path, raster, labels)
    expected = ("3 of 10 band(s) are left out: 3 (540 nm), 5 (580 nm) (no data); 8 (640 nm) (one constant value). A "
                "band flagged bad in the file's bad-band list (bbl), or with no data (nodata or NaN everywhere) or one "
                "constant value, cannot be trained on; the model file records the bands it uses.")
    assert expected in result.warnings
    assert html.escape(expected) in open(result.report_path, encoding="utf-8").read()
    meta = RssglClassifier.load(result.model_path, device="cpu").metadata()
    assert meta["band_indices"] == KEPT and meta["band_count"] == 7
    assert meta["band_wavelengths"] == [WAVELENGTHS[b - 1] for b in KEPT]
    classes = _map(result.classification_path)
    assert (classes > 0).all()  # every pixel valid: the empty bands did not make pixels nodata
    assert (classes == truth).mean() > 0.9


def test_a_subset_model_classifies_the_full_raster(tmp_path):
    """A model trained on 7 of the 10 bands (e.g. the water-vapour preset) classifies the full raster: its bands
    are picked by wavelength, and the map equals the one of the subset raster."""
    cube, labels = _cube(seed=1)
    wl = WAVELENGTHS
    subset = make_raster(tmp_path / "subset.tif", cube[np.asarray(KEPT) - 1],
                         descriptions=_descriptions([wl[b - 1] for b in KEPT]))
    full = make_raster(tmp_path / "full.tif", cube, descriptions=_descriptions(wl))
    result = _train(tmp_path, subset, make_raster(tmp_path / "labels.tif", labels, nodata=0))
    clf = RssglClassifier.load(result.model_path, device="cpu")
    assert model_band_numbers(clf, raster_info(full)) == (KEPT, [])
    classify_raster(clf, full, ClassifyOutputs(str(tmp_path / "on_full.tif")))
    np.testing.assert_array_equal(_map(str(tmp_path / "on_full.tif")), _map(result.classification_path))


def test_without_wavelengths_the_band_numbers_are_used(tmp_path):
    cube, labels = _cube(seed=2)
    holey = _with_empty_bands(cube)
    raster = make_raster(tmp_path / "plain.tif", holey, nodata=NODATA)
    result = _train(tmp_path, raster, make_raster(tmp_path / "labels.tif", labels, nodata=0))
    clf = RssglClassifier.load(result.model_path, device="cpu")
    filled = make_raster(tmp_path / "filled.tif", cube, nodata=NODATA)  # the same sensor, bands now with data
    numbers, warnings = model_band_numbers(clf, raster_info(filled))
    assert numbers == KEPT and warnings == []
    classify_raster(clf, filled, ClassifyOutputs(str(tmp_path / "filled_map.tif")))
    np.testing.assert_array_equal(_map(str(tmp_path / "filled_map.tif")), _map(result.classification_path))


def test_a_missing_band_is_named(tmp_path, full):
    raster, labels, cube, _ = full
    result = _train(tmp_path, raster, labels)
    clf = RssglClassifier.load(result.model_path, device="cpu")
    other = list(WAVELENGTHS)
    other[8] = 675.0  # the model's band 6 of 7 (raster band 9, 660 nm) is missing here
    moved = make_raster(tmp_path / "other.tif", cube, descriptions=_descriptions(other))
    with pytest.raises(RssglError, match=r"^The raster 'other.tif' has no band at 660 nm \(within 2 nm\), which the "
                                         r"model uses \(its band 6 of 7, 'Band 9: 660 nm'\)"):
        classify_raster(clf, moved, ClassifyOutputs(str(tmp_path / "never.tif")))
    assert not os.path.exists(tmp_path / "never.tif")
    short = make_raster(tmp_path / "short.tif", cube[:8])  # no wavelengths, 8 bands: bands 9 and 10 missing
    with pytest.raises(RssglError, match=r"^The model uses band 9 of its training raster \(2 band\(s\) beyond this "
                                         r"raster\), but the raster 'short.tif' has 8 bands"):
        classify_raster(clf, short, ClassifyOutputs(str(tmp_path / "never.tif")))


@pytest.mark.skipif(not SHARED.is_dir(), reason="the real EnMAP tiles are in ../shared only on development machines")
def test_a_real_enmap_tile_trains_without_manual_band_removal(tmp_path):
    tile = SHARED / "images" / "enmap_potsdam_tile_128_0.tif"
    labels = SHARED / "labels" / "enmap_potsdam_tile_128_0.tif"
    if not labels.exists():
        labels = next((SHARED / "labels").glob("*128_0*"))
    result = _train(tmp_path, str(tile), str(labels))
    notice = next(w for w in result.warnings if "band(s) are left out" in w)
    assert notice.startswith("6 of 224 band(s) are left out: 130 (1331.2 nm), ")
    assert "(flagged bad in the file, no data)" in notice and all(f"{b} (" in notice for b in range(130, 136))
    meta = RssglClassifier.load(result.model_path, device="cpu").metadata()
    assert meta["band_count"] == 218 and 130 not in meta["band_indices"]
    assert (_map(result.classification_path) > 0).mean() > 0.9
