"""Faults in tiled classification (io.classify_raster): wrong raster for the model, cancel, full disk,
unwritable output, GPU out of memory.

Every case checks the exact message, that no new file (output, temporary, .qml, .aux.xml) appears,
that an older output at the same path survives a failed run byte for byte, and that the input
raster is never modified. Rasters are 48-96 px with 4 bands; the model is a tiny trained RSSGL.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from osgeo import gdal

from rssgl_qgis.core.errors import Cancelled
from rssgl_qgis.core.prediction.inference import TilePredictor
from rssgl_qgis.io.classify_raster import ClassifyOutputs, classify_raster
from rssgl_qgis.io.raster_write import write_classification

from .helpers import (
    WAVELENGTHS,
    disk_full,
    running_as_root,
    scene_cube,
    sha256,
    snapshot,
    train_tiny_classifier,
    unwritable_folder,
    write_raster,
)


@pytest.fixture(scope="module")
def model():
    return train_tiny_classifier(wavelengths=WAVELENGTHS)


@pytest.fixture
def raster(tmp_path) -> Path:
    return write_raster(tmp_path / "scene.tif", scene_cube(size=48), wavelengths=WAVELENGTHS)


@pytest.fixture
def out(tmp_path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _outputs(out: Path, confidence=True) -> ClassifyOutputs:
    return ClassifyOutputs(str(out / "classes.tif"), str(out / "confidence.tif") if confidence else None)


def _old_outputs(out: Path, raster: Path) -> dict[str, str]:
    """Outputs of an earlier successful run at the same paths; returns the folder snapshot."""
    from rssgl_qgis.io.raster import raster_info
    from rssgl_qgis.io.raster_write import write_float

    info = raster_info(raster)
    write_classification(out / "classes.tif", np.ones(info.shape, np.uint8), info, [1, 2], ["a", "b"],
                         [(1, 2, 3), (4, 5, 6)])
    write_float(out / "confidence.tif", np.full(info.shape, 0.5, np.float32), info)
    return snapshot(out)


def _run(model, raster, out, **kwargs):
    logs: list[tuple[str, str]] = []
    report = classify_raster(model, raster, kwargs.pop("outputs", None) or _outputs(out),
                             log=lambda level, message: logs.append((level, message)), **kwargs)
    return report, logs


# ------------------------------------------------------------------------------------- wrong raster
def test_band_count_mismatch(model, tmp_path, out):
    five = write_raster(tmp_path / "five.tif", scene_cube(bands=5, size=48))
    digest = sha256(five)
    with pytest.raises(ValueError) as info:
        _run(model, five, out)
    assert str(info.value) == (
        "The model expects 4 bands but the raster 'five.tif' has 5; use a raster of the sensor and band subset the "
        "model was trained on."
    )
    assert snapshot(out) == {} and sha256(five) == digest


def test_wavelength_mismatch(model, tmp_path, out):
    shifted = [450.0, 550.0, 680.0, 860.0]
    other = write_raster(tmp_path / "other_sensor.tif", scene_cube(size=48), wavelengths=shifted)
    with pytest.raises(ValueError) as info:
        _run(model, other, out)
    assert str(info.value) == (
        "The raster's band wavelengths do not match the model's: band 3 is at 680.0 nm in the raster but 670.0 nm in "
        "the model (1 band(s) differ by more than 2 nm). Use a raster of the same sensor and band order as the "
        "training raster."
    )
    assert snapshot(out) == {}


def test_unknown_wavelengths_are_a_warning_not_an_error(model, tmp_path, out):
    plain = write_raster(tmp_path / "plain.tif", scene_cube(size=48))
    report, logs = _run(model, plain, out)
    assert ("warning", "Band wavelengths could not be compared (the raster does not record them); only the band "
                       "count was checked.") in logs
    written = set(snapshot(out))
    assert {"classes.tif", "classes.qml", "confidence.tif"} <= written
    assert written - {"classes.tif", "classes.qml", "confidence.tif"} <= {"classes.tif.aux.xml", "confidence.tif.aux.xml"}


def test_output_over_the_input_is_refused(model, raster, out):
    digest = sha256(raster)
    with pytest.raises(ValueError) as info:
        _run(model, raster, out, outputs=ClassifyOutputs(str(raster)))
    assert str(info.value) == (f"The classification output would overwrite the input raster '{raster}'; choose "
                               "another path.")
    assert sha256(raster) == digest


def test_nodata_and_nan_input_pixels_are_nodata_in_every_output(model, tmp_path, out):
    cube = scene_cube(size=48)
    cube[1, :5, :] = np.nan
    cube[:, -3:, -7:] = -9999.0
    path = write_raster(tmp_path / "holes.tif", cube, nodata=-9999.0, wavelengths=WAVELENGTHS)
    _run(model, path, out)
    classes = gdal.Open(str(out / "classes.tif")).ReadAsArray()
    confidence = gdal.Open(str(out / "confidence.tif")).ReadAsArray()
    invalid = np.zeros((48, 48), bool)
    invalid[:5, :] = True
    invalid[-3:, -7:] = True
    assert (classes[invalid] == 0).all() and (classes[~invalid] > 0).all()
    assert (confidence[invalid] == -1).all() and (confidence[~invalid] > 0).all()


# ------------------------------------------------------------------------------------- cancel
def test_cancel_during_tiled_classification_leaves_no_file_and_keeps_old_outputs(model, raster, out):
    before = _old_outputs(out, raster)
    digest = sha256(raster)
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 2  # let two batches through, then cancel mid-raster

    with pytest.raises(Cancelled):
        _run(model, raster, out, tile=32, halo=8, batch=1, should_stop=should_stop)
    assert len(calls) == 3, "cancellation was not checked between tiles"
    assert snapshot(out) == before
    assert sha256(raster) == digest


# ------------------------------------------------------------------------------------- disk full
def test_disk_full_in_the_middle_of_writing_tiles(model, raster, out, monkeypatch):
    before = _old_outputs(out, raster)
    real_write = gdal.Dataset.WriteArray
    writes = []

    def write_array(self, *args, **kwargs):
        writes.append(1)
        if len(writes) == 3:
            raise RuntimeError("TIFFAppendToStrip:Write error at scanline 32: No space left on device")
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(gdal.Dataset, "WriteArray", write_array)
    with pytest.raises(ValueError) as info:
        _run(model, raster, out, tile=32, halo=8, batch=1)
    message = str(info.value)
    assert message.startswith(f"Cannot write '{out}/")
    assert "No space left on device" in message and message.endswith("Check free disk space.")
    assert snapshot(out) == before


@pytest.mark.parametrize(
    "failing",
    ["confidence.tif", "classes.tif", "classes.qml", "classes.tif.aux.xml"],
)
def test_disk_full_when_renaming_keeps_every_old_output(model, raster, out, monkeypatch, failing):
    before = _old_outputs(out, raster)
    real_replace = os.replace

    def replace(src, dst):
        if os.path.basename(os.fspath(dst)) == failing:
            disk_full()
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ValueError) as info:
        _run(model, raster, out)
    assert f"Cannot write '{out / failing}': No space left on device." in str(info.value)
    assert snapshot(out) == before


# ------------------------------------------------------------------------------------- not writable
def test_unwritable_output_folder(model, raster, tmp_path):
    folder = unwritable_folder(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError) as info:
        _run(model, raster, folder)
    target = folder / "classes.tif"
    if running_as_root():
        assert str(info.value) == (f"Cannot write '{target}': the folder '{folder}' does not exist. Create it or "
                                   "choose another output path.")
    else:
        assert str(info.value) == (f"Cannot write '{target}': the folder '{folder}' is not writable. Choose a folder "
                                   "you can write to.")
    assert snapshot(tmp_path) == before


def test_permission_denied_at_rename(model, raster, out, monkeypatch):
    """Windows-style failure: the old output is open in QGIS, so it cannot be replaced."""
    before = _old_outputs(out, raster)

    def locked(src, dst):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(dst))

    monkeypatch.setattr(os, "replace", locked)
    with pytest.raises(ValueError) as info:
        _run(model, raster, out)
    assert "Permission denied. Check that the file is not open in another program" in str(info.value)
    assert snapshot(out) == before


# ------------------------------------------------------------------------------------- out of memory
def _fake_oom_above(monkeypatch, limit: int) -> list[int]:
    """Make the network "run out of GPU memory" on inputs wider than ``limit`` pixels (in the read windows:
    the CPU's layer-wise path, which has no tiles to shrink, is switched off; its own fallback is tested in
    tests/engine/test_layerwise.py)."""
    from rssgl_qgis.core.prediction import inference

    monkeypatch.setattr(inference, "_use_layerwise", lambda *a, **k: False)
    real = TilePredictor.probabilities
    widths: list[int] = []

    def probabilities(self, x):
        widths.append(int(x.shape[-1]))
        if x.shape[-1] > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB.")
        return real(self, x)

    monkeypatch.setattr(TilePredictor, "probabilities", probabilities)
    return widths


def test_gpu_out_of_memory_retries_with_smaller_tiles(model, tmp_path, out, monkeypatch):
    raster = write_raster(tmp_path / "big.tif", scene_cube(size=96), wavelengths=WAVELENGTHS)
    reference, _ = _run(model, raster, out, outputs=ClassifyOutputs(str(out / "reference.tif")), tile=32, halo=8)
    widths = _fake_oom_above(monkeypatch, limit=48)
    report, logs = _run(model, raster, out, outputs=ClassifyOutputs(str(out / "retried.tif")), tile=64, halo=8)
    assert max(widths) > 48 and report.oom_retries >= 1
    assert ("warning", f"The device ran out of memory {report.oom_retries} time(s); continued with 32-pixel tiles in "
                       "batches of 1.") in logs
    a = gdal.Open(str(out / "reference.tif")).ReadAsArray()
    b = gdal.Open(str(out / "retried.tif")).ReadAsArray()
    assert (b > 0).all(), "some pixels were never written after the retry"
    np.testing.assert_array_equal(a, b)  # same 32-pixel tiles and halo as the reference run


def test_out_of_memory_even_with_the_smallest_tiles_is_a_clear_error(model, raster, out, monkeypatch):
    before = _old_outputs(out, raster)
    _fake_oom_above(monkeypatch, limit=0)
    with pytest.raises(RuntimeError) as info:
        _run(model, raster, out, tile=32, halo=8)
    assert str(info.value) == (
        "The CPU ran out of memory even with 32-pixel tiles. Close other programs, or lower the memory limit or "
        "the tile size."
    )
    assert snapshot(out) == before
