"""A raster whose bands are not the model's (issue 31, defects 3 and 4): never a silently wrong map.

* Bands taken by number from a raster with another band count: a warning before classifying.
* The map comes out empty (every pixel nodata in a band the model took): an error naming the empty bands
  and the likely cause (another sensor), nothing written, instead of "0 valid pixels" and an all-0 map.
* Neither side records wavelengths and the raster's band statistics (a few sample blocks) clearly differ
  from the training statistics kept in the model file: a warning with the figures. The same scene with
  noise and another brightness does not warn; its bands reversed or rotated do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rssgl_qgis.core.errors import RssglError
from rssgl_qgis.io.band_checks import band_ranges, statistics_mismatch
from rssgl_qgis.io.classify_raster import ClassifyOutputs, classify_raster

from .helpers import TINY_ARCHITECTURE, sha256, snapshot, write_raster

#: Four land covers with distinct 8-band spectra (reflectance): vegetation, soil, water, roofs.
SPECTRA = np.array([[0.04, 0.07, 0.05, 0.35, 0.40, 0.38, 0.22, 0.12],
                    [0.10, 0.13, 0.16, 0.20, 0.23, 0.26, 0.30, 0.28],
                    [0.08, 0.06, 0.04, 0.02, 0.01, 0.01, 0.005, 0.005],
                    [0.25, 0.26, 0.27, 0.27, 0.28, 0.28, 0.29, 0.29]])


def spectral_scene(seed: int = 0, size: int = 24) -> np.ndarray:
    """(8, size, size) float32: one land cover per quadrant, with noise."""
    half = size // 2
    cube = np.empty((SPECTRA.shape[1], size, size))
    for k, (r, c) in enumerate([(0, 0), (0, half), (half, 0), (half, half)]):
        cube[:, r:r + half, c:c + half] = SPECTRA[k][:, None, None]
    return (cube + np.random.default_rng(seed).normal(0.0, 0.01, cube.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    """A tiny RSSGL trained on ``spectral_scene`` without wavelengths, recording its bands (1-8 of its raster).

    One iteration, no spectral model: these tests are about which bands the model gets, not its accuracy.
    """
    from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams

    labels = np.zeros((24, 24), dtype=np.int32)
    for k, (r, c) in enumerate([(2, 2), (2, 14), (14, 2), (14, 14)]):
        labels[r:r + 6, c:c + 6] = k + 1
    params = TrainingParams(iterations=1, epoch_iterations=1, device="cpu", selection="loss", spectral=False)
    clf = RssglClassifier(config_overrides=dict(TINY_ARCHITECTURE), params=params)
    return clf.fit(spectral_scene(), labels, class_names=["vegetation", "soil", "water", "roof"],
                   band_info={"indices": list(range(1, 9))})


def ten_bands(seed: int = 1) -> np.ndarray:
    """The scene with two more bands after the model's 8 (another sensor's raster, in small)."""
    cube = spectral_scene(seed)
    return np.concatenate([cube, cube[-2:] * 0.9])


@pytest.fixture
def out(tmp_path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _classify(model, raster, out):
    logs: list[tuple[str, str]] = []
    outputs = ClassifyOutputs(str(out / "classes.tif"), str(out / "confidence.tif"))
    report = classify_raster(model, raster, outputs, log=lambda level, message: logs.append((level, message)))
    return report, [m for level, m in logs if level == "warning"]


# ------------------------------------------------------------------------------------- defect 3
def test_an_empty_map_is_an_error_naming_the_empty_bands_and_the_other_sensor(model, tmp_path, out):
    """The issue's EnMAP case in small: 8 bands taken by number from a 10-band raster, 2 of them empty."""
    cube = ten_bands()
    cube[2:4] = -9999.0  # bands 3 and 4: nodata everywhere (EnMAP L2A's bands 130-135)
    raster = write_raster(tmp_path / "other_sensor.tif", cube, nodata=-9999.0)
    digest = sha256(raster)
    logs: list[tuple[str, str]] = []
    with pytest.raises(RssglError) as info:
        classify_raster(model, raster, ClassifyOutputs(str(out / "classes.tif")),
                        log=lambda level, message: logs.append((level, message)))
    assert str(info.value) == (
        "The classification of 'other_sensor.tif' came out empty (no valid pixel), so nothing was written: 2 of the "
        "8 bands the model uses hold no data in this raster (nodata or NaN everywhere): 3, 4. The model's bands were "
        "taken by band number from this 10-band raster, so it most likely comes from another sensor than the training "
        "raster. Use a raster of the sensor the model was trained on, or train a model on this raster.")
    assert ("warning", "The raster 'other_sensor.tif' has 10 bands and the model uses 8 (bands 1-8 of its training "
                       "raster); neither the model nor the raster records band wavelengths, so they were taken by band "
                       "number. That is right only for a raster with the training raster's bands in the same order "
                       "(the same sensor); if this raster comes from another sensor, the map will be wrong.") in logs
    assert snapshot(out) == {} and sha256(raster) == digest


def test_an_empty_band_of_a_raster_with_the_models_band_count_is_named(model, tmp_path, out):
    cube = spectral_scene()
    cube[1] = np.nan
    raster = write_raster(tmp_path / "gappy.tif", cube)
    with pytest.raises(RssglError) as info:
        _classify(model, raster, out)
    assert str(info.value) == (
        "The classification of 'gappy.tif' came out empty (no valid pixel), so nothing was written: 1 of the 8 bands "
        "the model uses hold no data in this raster (nodata or NaN everywhere): 2. Use a raster in which these bands "
        "hold data (the training raster's sensor and processing), or train a model on this raster ('Train RSSGL' "
        "leaves empty bands out).")
    assert snapshot(out) == {}


def test_no_pixel_valid_in_every_band_without_an_empty_band(model, tmp_path, out):
    cube = spectral_scene()
    cube[0, :12] = np.nan  # top half invalid in band 1, bottom half in band 2
    cube[1, 12:] = np.nan
    with pytest.raises(RssglError) as info:
        _classify(model, write_raster(tmp_path / "striped.tif", cube), out)
    assert str(info.value) == (
        "The classification of 'striped.tif' came out empty (no valid pixel), so nothing was written: no pixel holds "
        "a valid value in all 8 bands the model uses (each is nodata or NaN in at least one of them). Check the "
        "raster's nodata value.")
    assert snapshot(out) == {}


def test_bands_taken_by_number_from_a_raster_with_more_bands_warn_and_classify(model, tmp_path, out):
    raster = write_raster(tmp_path / "ten.tif", ten_bands())
    report, warnings = _classify(model, raster, out)
    assert report.valid_pixels == 24 * 24
    assert any(w.startswith("The raster 'ten.tif' has 10 bands and the model uses 8 (bands 1-8") for w in warnings)
    assert {"classes.tif", "confidence.tif"} <= set(snapshot(out))


# ------------------------------------------------------------------------------------- defect 4
def test_the_same_sensors_scene_with_noise_and_another_brightness_does_not_warn(model, tmp_path, out):
    for k, (scale, seed) in enumerate([(1.15, 1), (0.8, 2)]):
        raster = write_raster(tmp_path / f"scene_{k}.tif", spectral_scene(seed) * scale)
        report, warnings = _classify(model, raster, out)
        assert warnings == [] and report.valid_pixels == 24 * 24


@pytest.mark.parametrize("order", ["reversed", "rotated"])
def test_reversed_or_rotated_bands_warn_with_the_figures(model, tmp_path, out, order):
    cube = spectral_scene(1)
    cube = cube[::-1] if order == "reversed" else np.roll(cube, 2, axis=0)
    raster = write_raster(tmp_path / f"{order}.tif", np.ascontiguousarray(cube))
    report, warnings = _classify(model, raster, out)
    assert len(warnings) == 1, warnings
    warning = warnings[0]
    assert warning.startswith(f"The bands of the raster '{order}.tif' do not look like the model's training bands: "
                              "the shape of its mean spectrum over the model's 8 bands correlates at ")
    assert warning.endswith("Neither the model nor the raster records band wavelengths, so the bands were taken by "
                            "number: if this raster has another band order or comes from another sensor, the map is "
                            "wrong. Check that its bands are the training raster's, in the same order.")
    if order == "reversed":  # band 3 holds band 6's values (the vegetation's near-infrared plateau)
        assert ("correlates at -0.25 with the training raster's (1 = same shape), and 0 of 8 bands lie more than 3 "
                "training spreads from the training mean; e.g. band 3: mean 0.233 (spread 0.1371) in this raster, "
                "0.1301 (0.09379) in the training raster; band 2: ") in warning


def test_statistics_mismatch_rule_on_the_calibration_cases():
    """The rule's two thresholds on hand-made statistics: shape (correlation) and bands far off."""
    mean = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    std = np.full(8, 0.5)
    assert statistics_mismatch(mean, std, mean * 1.3, std) is None  # brighter: same shape
    assert statistics_mismatch(mean, std, mean[::-1], std).correlation == pytest.approx(-1.0)
    flat = np.full(8, 4.0)
    assert statistics_mismatch(flat, std, flat[::-1] + 0.01, std) is None  # a flat spectrum tells nothing
    # correlation 0.8 (between the thresholds): a warning only with a quarter of the bands 3 spreads off
    one_off = mean + np.array([0, 0, 0, 0, 0, 0, 0, -5.0])
    assert 0.5 < np.corrcoef(mean, one_off)[0, 1] < 0.9 and statistics_mismatch(mean, std, one_off, std) is None
    two_off = mean + np.array([2.0, 0, 0, 0, 0, 0, 0, -4.0])
    result = statistics_mismatch(mean, std, two_off, std)
    assert 0.5 < result.correlation < 0.9 and result.off == 2 and result.farthest[:2] == [7, 0]


def test_band_ranges():
    assert band_ranges([1, 2, 3, 5, 7, 8]) == "1-3, 5, 7-8"
    assert band_ranges(list(range(1, 130)) + list(range(136, 225))) == "1-129, 136-224"
