"""Every output appears by an atomic rename of a temporary file from the same folder; inputs never change.

A full Train (model, report, classification + .qml, confidence) then Assess (HTML + CSV) run is
watched through ``os.replace``: each file that ends up in the output folder must have arrived
as the destination of a rename whose source sat in the same folder under another (temporary) name
that no longer exists. A file created under its final name directly (half-written while the run
goes on, visible to QGIS) fails the test. The raster and the GeoPackage are hashed before and after.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rssgl_qgis.core.training.classifier import TrainingParams
from rssgl_qgis.workflows.assess import assess_accuracy
from rssgl_qgis.workflows.train import train_from_files

from .helpers import WAVELENGTHS, class_features, scene_cube, sha256, snapshot, write_raster, write_samples


@pytest.fixture
def renames(monkeypatch) -> list[tuple[str, str]]:
    """Record every os.replace(src, dst) the run makes (then do it)."""
    seen: list[tuple[str, str]] = []
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        seen.append((os.path.abspath(os.fspath(src)), os.path.abspath(os.fspath(dst))))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return seen


def _check_atomic(folder: Path, renames: list[tuple[str, str]]) -> None:
    destinations = {dst: src for src, dst in renames}
    for name in snapshot(folder):
        final = str((folder / name).resolve())
        assert final in destinations, f"{name} was written under its final name, not renamed into place"
        src = destinations[final]
        assert os.path.dirname(src) == os.path.dirname(final), f"{name} came from another folder ({src})"
        assert os.path.basename(src) != name and not os.path.exists(src), f"{name}: temporary {src} left behind"


def test_train_classify_assess_write_every_file_atomically(tmp_path, renames):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    raster = write_raster(inputs / "scene.tif", scene_cube(), wavelengths=WAVELENGTHS)
    samples = write_samples(inputs / "samples.gpkg", class_features())
    before = snapshot(inputs)
    out = tmp_path / "out"
    out.mkdir()

    result = train_from_files(
        str(raster), samples_vector=str(samples), class_field="class_id",
        params=TrainingParams(iterations=1, device="cpu"),
        model_out=str(out / "model.rssgl"), report_out=str(out / "training.html"),
        classification_out=str(out / "classes.tif"), confidence_out=str(out / "confidence.tif"),
    )
    assess_accuracy(
        result.classification_path, reference_vector=str(samples), reference_field="class_id",
        html_out=str(out / "accuracy.html"), csv_out=str(out / "accuracy.csv"),
    )

    written = set(snapshot(out))
    expected = {"model.rssgl", "training.html", "classes.tif", "classes.qml", "confidence.tif", "accuracy.html",
                "accuracy.csv"}
    assert expected <= written, f"missing outputs: {expected - written}"
    assert written - expected <= {"classes.tif.aux.xml", "confidence.tif.aux.xml"}, written - expected
    _check_atomic(out, renames)
    assert snapshot(inputs) == before, "an input file was modified (or a file was added next to it)"
    assert sha256(raster) == before["scene.tif"]


def test_a_successful_rerun_replaces_outputs_without_leftovers(tmp_path, renames):
    """Re-running into the same paths swaps each file whole; stale sidecars of the old run disappear."""
    raster = write_raster(tmp_path / "scene.tif", scene_cube(), wavelengths=WAVELENGTHS)
    from rssgl_qgis.io.classify_raster import ClassifyOutputs, classify_raster

    from .helpers import train_tiny_classifier

    model = train_tiny_classifier(wavelengths=WAVELENGTHS)
    out = tmp_path / "out"
    out.mkdir()
    (out / "classes.tif.ovr").write_bytes(b"stale overviews of an older classification")
    for _ in range(2):
        classify_raster(model, raster, ClassifyOutputs(str(out / "classes.tif"), str(out / "confidence.tif")))
    assert "classes.tif.ovr" not in snapshot(out), "stale overviews would be shown over the new classification"
    assert not [n for n in snapshot(out) if ".tmp-" in n]
    _check_atomic(out, renames)
