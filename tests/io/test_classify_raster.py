"""classify_raster: any GDAL raster in, styled/atomic GeoTIFFs out (io/classify_raster.py, io/blocks.py).

A tiny RSSGL (narrow stages, a few iterations) is trained once per module on a small cube with two
spatially separated spectral classes; the tests then write that cube in several formats and dtypes
and check the outputs against the classifier's own whole-scene prediction.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from osgeo import gdal, osr

from rssgl_qgis.core.errors import Cancelled, RssglError
from rssgl_qgis.core.prediction.inference import predict_array_tiled
from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams
from rssgl_qgis.io.blocks import GdalWindowReader
from rssgl_qgis.io.classify_raster import ClassifyOutputs, check_model_bands, classify_raster
from rssgl_qgis.io.raster import raster_info, read_cube
from rssgl_qgis.io.raster_write import read_class_table

gdal.UseExceptions()
B, H, W = 6, 40, 52
WAVELENGTHS = [450.0, 550.0, 650.0, 750.0, 850.0, 950.0]
TINY = {"block_channels": (16, 16, 32, 32), "inner_dim": 16, "kernel": (3, 3, 3)}


def make_cube(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """int16 cube: class 3 on the left, class 7 on the right (spectrally distinct), plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.where(np.arange(W)[None, :] < W // 2, 3, 7).repeat(H, axis=0)
    spectra = {3: np.linspace(1000, 3000, B), 7: np.linspace(3000, 800, B)}
    cube = np.zeros((B, H, W), dtype=np.float32)
    for value, spectrum in spectra.items():
        cube[:, labels == value] = spectrum[:, None]
    cube += rng.normal(0, 150, cube.shape)
    return cube.round().astype(np.int16), labels


def write_raster(path, data: np.ndarray, driver: str = "GTiff", nodata=None, wavelengths=WAVELENGTHS) -> str:
    gtype = {np.dtype(np.int16): gdal.GDT_Int16, np.dtype(np.uint16): gdal.GDT_UInt16,
             np.dtype(np.float32): gdal.GDT_Float32}[data.dtype]
    options = ["TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"] if driver == "GTiff" else []
    ds = gdal.GetDriverByName(driver).Create(str(path), W, H, data.shape[0], gtype, options)
    ds.SetGeoTransform((500000.0, 2.0, 0.0, 4100000.0, 0.0, -2.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds.SetProjection(srs.ExportToWkt())
    for i in range(data.shape[0]):
        band = ds.GetRasterBand(i + 1)
        band.WriteArray(data[i])
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if wavelengths is not None:
            band.SetMetadataItem("wavelength", str(wavelengths[i]))
            band.SetMetadataItem("wavelength_units", "nm")
    ds = None
    return str(path)


@pytest.fixture(scope="module")
def clf():
    cube, labels = make_cube()
    train = np.zeros_like(labels)
    train[::4, ::4] = labels[::4, ::4]
    params = TrainingParams(iterations=2, device="cpu", selection="loss", validation_share=0.0)
    return RssglClassifier(config_overrides=TINY, params=params).fit(
        cube.astype(np.float32), train, class_names=["wheat", "water"], class_colors=[(10, 200, 10), (0, 0, 255)],
        band_info={"wavelengths": WAVELENGTHS},
    )


def leftovers(folder) -> list[str]:
    return sorted(f for f in os.listdir(folder) if ".tmp-" in f)


def test_geotiff_int16_with_nodata_all_outputs(clf, tmp_path):
    cube, _ = make_cube()
    cube[:, 5, 7] = -9999
    cube[2, 30, 40] = -9999  # nodata in one band only: the pixel is invalid
    src = write_raster(tmp_path / "in.tif", cube, nodata=-9999)
    out = ClassifyOutputs(str(tmp_path / "cls.tif"), str(tmp_path / "conf.tif"), str(tmp_path / "prob.tif"))
    seen = []
    report = classify_raster(clf, src, out, tile=64, halo=16, progress=lambda p, m: seen.append(p))
    ref_cube, valid = read_cube(src)
    expected = clf.predict(ref_cube, valid)
    ds = gdal.Open(out.classification)
    band = ds.GetRasterBand(1)
    got = band.ReadAsArray()
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 0
    np.testing.assert_array_equal(got, expected)  # one tile covers the raster: exactly whole-scene
    assert got[5, 7] == 0 and got[30, 40] == 0 and set(np.unique(got)) <= {0, 3, 7}
    assert read_class_table(out.classification) == ([3, 7], ["wheat", "water"], [(10, 200, 10), (0, 0, 255)])
    assert os.path.exists(tmp_path / "cls.qml") and "wheat" in (tmp_path / "cls.qml").read_text()
    assert ds.GetGeoTransform() == (500000.0, 2.0, 0.0, 4100000.0, 0.0, -2.0)
    conf = gdal.Open(out.confidence).ReadAsArray()
    assert conf.dtype == np.float32 and conf[5, 7] == -1 and conf[valid].min() >= 0.5
    prob = gdal.Open(out.probabilities).ReadAsArray()
    assert prob.shape == (2, H, W)
    np.testing.assert_allclose(prob[:, valid].sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(prob.max(axis=0)[valid], conf[valid], atol=1e-6)
    probabilities = gdal.Open(out.probabilities)  # held while its band is read (GDAL frees bands with the dataset)
    assert probabilities.GetRasterBand(2).GetDescription() == "P(water)"
    assert report.valid_pixels == int(valid.sum()) == H * W - 2
    assert report.class_pixels[3] + report.class_pixels[7] == report.valid_pixels
    assert seen[-1] == pytest.approx(100.0)
    assert leftovers(tmp_path) == []


def test_small_tiles_match_the_engine(clf, tmp_path):
    """The GDAL path (reader thread, block writer) stitches exactly what the engine predicts per tile."""
    cube, _ = make_cube()
    src = write_raster(tmp_path / "in.tif", cube)
    out = ClassifyOutputs(str(tmp_path / "cls.tif"), str(tmp_path / "conf.tif"))
    report = classify_raster(clf, src, out, tile=24, halo=8, batch=3)
    assert report.tiles == 6
    labels, conf, _, _ = predict_array_tiled(clf, cube, tile=24, halo=8, batch=3)
    np.testing.assert_array_equal(gdal.Open(out.classification).ReadAsArray(), labels)
    np.testing.assert_allclose(gdal.Open(out.confidence).ReadAsArray(), conf, atol=1e-6)


@pytest.mark.parametrize("fmt", ["ENVI", "VRT"])
def test_envi_and_vrt_inputs(clf, tmp_path, fmt):
    cube, _ = make_cube()
    tif = write_raster(tmp_path / "base.tif", cube)
    if fmt == "ENVI":
        src = write_raster(tmp_path / "in.img", cube, driver="ENVI")
    else:
        src = str(tmp_path / "in.vrt")
        gdal.Translate(src, tif, format="VRT")
    assert raster_info(src).wavelengths == WAVELENGTHS
    a = classify_raster(clf, src, ClassifyOutputs(str(tmp_path / "a.tif")), tile=32, halo=8)
    classify_raster(clf, tif, ClassifyOutputs(str(tmp_path / "b.tif")), tile=32, halo=8)
    np.testing.assert_array_equal(gdal.Open(str(tmp_path / "a.tif")).ReadAsArray(),
                                  gdal.Open(str(tmp_path / "b.tif")).ReadAsArray())
    assert a.tiles == 4


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_uint16_and_float32_inputs(clf, tmp_path, dtype):
    cube, _ = make_cube()
    data = cube.astype(dtype)
    if dtype == np.float32:
        data[1, 10, 10] = np.nan  # NaN masks the pixel even without a nodata value
    src = write_raster(tmp_path / "in.tif", data)
    reader = GdalWindowReader(src)
    assert reader.raw_dtype == np.dtype(dtype) and reader.itemsize == np.dtype(dtype).itemsize
    classify_raster(clf, src, ClassifyOutputs(str(tmp_path / "cls.tif")), tile=64, halo=8)
    got = gdal.Open(str(tmp_path / "cls.tif")).ReadAsArray()
    ref_cube, valid = read_cube(src)
    np.testing.assert_array_equal(got, clf.predict(ref_cube, valid))
    if dtype == np.float32:
        assert got[10, 10] == 0


def test_band_count_mismatch_is_a_clear_error_and_writes_nothing(clf, tmp_path):
    cube, _ = make_cube()
    src = write_raster(tmp_path / "in.tif", cube[:4], wavelengths=None)
    with pytest.raises(RssglError, match=r"The model expects 6 bands but the raster 'in.tif' has 4; use a raster"):
        classify_raster(clf, src, ClassifyOutputs(str(tmp_path / "cls.tif")))
    assert not os.path.exists(tmp_path / "cls.tif")


def test_wavelength_mismatch_and_unknown_wavelengths(clf, tmp_path):
    cube, _ = make_cube()
    shifted = [w + (5.0 if i == 3 else 0.5) for i, w in enumerate(WAVELENGTHS)]
    src = write_raster(tmp_path / "in.tif", cube, wavelengths=shifted)
    with pytest.raises(RssglError, match=r"band 4 is at 755.0 nm in the raster but 750.0 nm in the model"):
        classify_raster(clf, src, ClassifyOutputs(str(tmp_path / "cls.tif")))
    plain = write_raster(tmp_path / "plain.tif", cube, wavelengths=None)
    warnings = check_model_bands(clf, raster_info(plain))
    assert warnings and "only the band count was checked" in warnings[0]


def test_cancel_leaves_no_file_and_keeps_an_older_output(clf, tmp_path):
    cube, _ = make_cube()
    src = write_raster(tmp_path / "in.tif", cube)
    old = tmp_path / "cls.tif"
    old.write_bytes(b"previous result")
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    out = ClassifyOutputs(str(old), str(tmp_path / "conf.tif"))
    with pytest.raises(Cancelled):
        classify_raster(clf, src, out, tile=16, halo=4, batch=1, should_stop=stop)
    assert old.read_bytes() == b"previous result"
    assert not os.path.exists(tmp_path / "conf.tif") and not os.path.exists(tmp_path / "cls.qml")
    assert leftovers(tmp_path) == []


def test_mask_raster_and_bad_mask_grid(clf, tmp_path):
    cube, _ = make_cube()
    src = write_raster(tmp_path / "in.tif", cube)
    mask = np.ones((1, H, W), dtype=np.uint16)
    mask[0, :10, :] = 0
    mpath = write_raster(tmp_path / "mask.tif", mask.astype(np.uint16), wavelengths=None)
    classify_raster(clf, src, ClassifyOutputs(str(tmp_path / "cls.tif")), mask_path=mpath, tile=32, halo=8)
    got = gdal.Open(str(tmp_path / "cls.tif")).ReadAsArray()
    assert (got[:10] == 0).all() and (got[10:] > 0).all()
    gdal.GetDriverByName("GTiff").Create(str(tmp_path / "small.tif"), W - 1, H, 1, gdal.GDT_Byte).FlushCache()
    with pytest.raises(ValueError, match="use a mask on the same grid"):
        classify_raster(clf, src, ClassifyOutputs(str(tmp_path / "x.tif")), mask_path=str(tmp_path / "small.tif"))


def test_output_path_checks(clf, tmp_path):
    cube, _ = make_cube()
    src = write_raster(tmp_path / "in.tif", cube)
    with pytest.raises(RssglError, match="No output requested"):
        classify_raster(clf, src, ClassifyOutputs(None))
    with pytest.raises(RssglError, match="would overwrite the input raster"):
        classify_raster(clf, src, ClassifyOutputs(src))
    with pytest.raises(RssglError, match="both point to"):
        classify_raster(clf, src, ClassifyOutputs(str(tmp_path / "a.tif"), str(tmp_path / "a.tif")))
    assert gdal.Open(src).ReadAsArray().shape == (B, H, W)  # input untouched


def test_whole_scene_statistics_are_gathered_unless_switched_off(clf, tmp_path):
    cube, _ = make_cube()
    src = write_raster(tmp_path / "in.tif", cube)
    logs = []
    classify_raster(clf, src, ClassifyOutputs(str(tmp_path / "a.tif")), tile=24, halo=8,
                    log=lambda level, message: logs.append(message))
    # on the CPU the raster's layer maps fit the memory setting: computed layer by layer (core/prediction/layerwise.py)
    assert any(m.startswith("Computed layer by layer over the whole raster") for m in logs)
    logs.clear()
    classify_raster(clf, src, ClassifyOutputs(str(tmp_path / "c.tif")), tile=24, halo=8, memory_limit_bytes=64 << 20,
                    log=lambda level, message: logs.append(message))
    assert any(m.startswith("Whole-scene statistics gathered over the tiles in 3 extra passes") for m in logs)
    logs.clear()
    classify_raster(clf, src, ClassifyOutputs(str(tmp_path / "b.tif")), tile=24, halo=8, scene_passes=0,
                    log=lambda level, message: logs.append(message))
    assert not any("Whole-scene statistics" in m or "layer by layer" in m for m in logs)
    labels, _, _, _ = predict_array_tiled(clf, cube, tile=24, halo=8, scene_passes=0)
    np.testing.assert_array_equal(gdal.Open(str(tmp_path / "b.tif")).ReadAsArray(), labels)
