"""Bad-band lists honoured where files carry them (issue 14): ENVI headers, per-band ``bbl`` items of
EnMAP-Box GeoTIFFs, VRTs; flagged bands are left out like empty ones and named with the reason.

Every raster is written here with GDAL: 6 bands at 500..600 nm (20 nm apart), two blocky classes.
"""

from __future__ import annotations

import html

import numpy as np
import pytest
from osgeo import gdal

from rssgl_qgis.core.errors import RssglError
from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams
from rssgl_qgis.io.bands import CONSTANT, FLAGGED, NO_DATA, flagged_bad_bands, unusable_bands
from rssgl_qgis.io.raster import raster_info
from rssgl_qgis.workflows.train import train_from_files

from .helpers import make_raster, srs

WAVELENGTHS = [500.0, 520.0, 540.0, 560.0, 580.0, 600.0]
FWHM = [6.5, 6.5, 7.0, 7.0, 7.5, 7.5]
NODATA = -9999.0


def _cube(size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    labels = np.ones((size, size), dtype=np.uint8)
    labels[:, size // 2:] = 2
    means = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]])
    cube = means[labels.ravel() - 1].T.reshape(6, size, size) + rng.normal(0, 0.01, (6, size, size))
    return cube.astype(np.float32), labels


def _envi(path, cube, bbl=None) -> str:
    ds = gdal.GetDriverByName("ENVI").Create(str(path), cube.shape[2], cube.shape[1], cube.shape[0], gdal.GDT_Float32)
    ds.SetGeoTransform((600000.0, 10.0, 0.0, 4100000.0, 0.0, -10.0))
    ds.SetProjection(srs(32610).ExportToWkt())
    for k in range(cube.shape[0]):
        ds.GetRasterBand(k + 1).WriteArray(cube[k])
        ds.GetRasterBand(k + 1).SetNoDataValue(NODATA)
    ds.SetMetadataItem("wavelength", "{" + ", ".join(f"{w:g}" for w in WAVELENGTHS) + "}", "ENVI")
    ds.SetMetadataItem("wavelength_units", "Nanometers", "ENVI")
    ds.SetMetadataItem("fwhm", "{" + ", ".join(f"{w:g}" for w in FWHM) + "}", "ENVI")
    if bbl is not None:
        ds.SetMetadataItem("bbl", "{" + ", ".join(str(v) for v in bbl) + "}", "ENVI")
    ds = None
    return str(path)


def _enmapbox_tif(path, cube, bbl) -> str:
    """A GeoTIFF as EnMAP-Box writes it: per-band wavelength, wavelength_units, fwhm and bbl items."""
    make_raster(path, cube, nodata=NODATA)
    ds = gdal.Open(str(path), gdal.GA_Update)
    for k in range(cube.shape[0]):
        band = ds.GetRasterBand(k + 1)
        band.SetMetadata({"wavelength": f"{WAVELENGTHS[k]:g}", "wavelength_units": "Nanometers",
                          "fwhm": f"{FWHM[k]:g}", "bbl": str(bbl[k])})
    ds = None
    return str(path)


def _train(tmp_path, raster, labels, **kwargs):
    params = TrainingParams(iterations=2, epoch_iterations=1, device="cpu", seed=0)
    messages = []
    result = train_from_files(raster, samples_raster=labels, params=params, kernel="3x3x3",
                              model_out=str(tmp_path / "m.rssgl"), report_out=str(tmp_path / "m.html"),
                              log=lambda level, message: messages.append((level, message)), **kwargs)
    return result, messages


def test_envi_header_bbl_is_read(tmp_path):
    cube, _ = _cube()
    path = _envi(tmp_path / "scene.img", cube, bbl=[1, 1, 0, 1, 0, 1])
    assert "bbl = {1, 1, 0, 1, 0, 1}" in open(tmp_path / "scene.hdr").read()  # the header itself carries the list
    info = raster_info(path)
    assert flagged_bad_bands(path, info) == [3, 5]
    assert info.fwhm == FWHM and info.wavelengths == WAVELENGTHS


def test_per_band_bbl_items_and_vrt_are_read(tmp_path):
    cube, _ = _cube()
    tif = _enmapbox_tif(tmp_path / "enmapbox.tif", cube, bbl=[1, 0, 1, 1, 1, 0])
    assert flagged_bad_bands(tif, raster_info(tif)) == [2, 6]
    vrt = str(tmp_path / "scene.vrt")
    gdal.Translate(vrt, tif, format="VRT")  # a VRT keeps the band metadata items
    assert flagged_bad_bands(vrt, raster_info(vrt)) == [2, 6] and raster_info(vrt).fwhm == FWHM


def test_no_list_flags_nothing(tmp_path):
    cube, _ = _cube()
    path = make_raster(tmp_path / "plain.tif", cube)
    assert flagged_bad_bands(path, raster_info(path)) == []
    wrong = _envi(tmp_path / "wrong.img", cube, bbl=[1, 0])  # a list of the wrong length is ignored
    assert flagged_bad_bands(wrong, raster_info(wrong)) == []


def test_flagged_empty_and_nan_bands_are_named_with_their_reason(tmp_path):
    cube, labels = _cube()
    holey = cube.copy()
    holey[1] = NODATA  # band 2: nodata everywhere and flagged
    holey[3] = np.nan  # band 4: NaN everywhere, not flagged
    holey[4] = 0.25  # band 5: one constant value
    path = _envi(tmp_path / "scene.img", holey, bbl=[1, 0, 1, 1, 1, 0])  # band 6 flagged, holds data
    assert unusable_bands(path, raster_info(path)) == {2: [FLAGGED, NO_DATA], 4: [NO_DATA], 5: [CONSTANT],
                                                       6: [FLAGGED]}
    result, messages = _train(tmp_path, path, make_raster(tmp_path / "labels.tif", labels, nodata=0))
    notice = ("4 of 6 band(s) are left out: 2 (520 nm) (flagged bad in the file, no data); 4 (560 nm) (no data); "
              "5 (580 nm) (one constant value); 6 (600 nm) (flagged bad in the file). A band flagged bad in the file's "
              "bad-band list (bbl), or with no data (nodata or NaN everywhere) or one constant value, cannot be trained "
              "on; the model file records the bands it uses.")
    assert ("warning", notice) in messages and [m for level, m in messages if "left out" in m] == [notice]
    check = ("info", "Checking 6 bands of 'scene.img' for bands without data or with one constant value...")
    assert messages.index(check) == 1  # at once, after the raster's size (issue 29: no silent band check)
    assert html.escape(notice) in open(result.report_path, encoding="utf-8").read()
    meta = RssglClassifier.load(result.model_path, device="cpu").metadata()
    assert meta["band_indices"] == [1, 3] and meta["band_wavelengths"] == [500.0, 540.0]
    assert meta["band_fwhm"] == [6.5, 7.0] and meta["band_names"] == ["Band 1", "Band 3"]


def test_band_selection_and_preset_with_flags(tmp_path):
    cube, labels = _cube()
    path = _enmapbox_tif(tmp_path / "scene.tif", cube, bbl=[1, 1, 1, 1, 1, 0])
    label_path = make_raster(tmp_path / "labels.tif", labels, nodata=0)
    result, messages = _train(tmp_path, path, label_path, band_selection="drop 520-540 nm")
    assert RssglClassifier.load(result.model_path, device="cpu").metadata()["band_indices"] == [1, 4, 5]
    assert ("info", "Band selection ('drop 520-540 nm') leaves out 2 more band(s): 2 (520 nm), 3 (540 nm).") in messages
    assert ("info", "Training on 3 of the raster's 6 bands.") in messages
    with pytest.raises(RssglError, match=r"^The band selection \('6'\) keeps only bands that are flagged bad"):
        _train(tmp_path, path, label_path, band_selection="6")
    plain = make_raster(tmp_path / "plain.tif", cube)
    with pytest.raises(RssglError, match="^Dropping the water-vapour bands needs the raster's band wavelengths"):
        _train(tmp_path, plain, label_path, drop_water_vapour=True)


def test_band_widths_units(tmp_path):
    cube, _ = _cube()
    path = make_raster(tmp_path / "bare.tif", cube)
    ds = gdal.Open(path, gdal.GA_Update)
    ds.SetMetadataItem("fwhm", "{" + ", ".join(f"{w:g}" for w in FWHM) + "}", "ENVI")  # no unit: nm as written
    ds = None
    assert raster_info(path).fwhm == FWHM
    micro = make_raster(tmp_path / "micro.tif", cube)
    ds = gdal.Open(micro, gdal.GA_Update)
    for k in range(6):
        ds.GetRasterBand(k + 1).SetMetadata({"wavelength": f"{WAVELENGTHS[k] / 1000:g}", "fwhm": f"{FWHM[k] / 1000:g}",
                                             "wavelength_units": "Micrometers"})
    ds = None
    assert raster_info(micro).fwhm == pytest.approx(FWHM) and raster_info(micro).wavelengths == pytest.approx(WAVELENGTHS)
