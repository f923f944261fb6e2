"""Bad inputs to "Assess accuracy" (assessment.assess_accuracy): wrong raster, reference elsewhere, full disk.

The classification used here is written with io.raster_write.write_classification on the 24 x 24 test
grid, so no network is involved.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rssgl_qgis.io.raster import raster_info
from rssgl_qgis.io.raster_write import write_classification
from rssgl_qgis.workflows.assess import assess_accuracy

from .helpers import (
    BLOCKS,
    WAVELENGTHS,
    block_labels,
    class_features,
    disk_full,
    scene_cube,
    snapshot,
    write_raster,
    write_samples,
)


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    raster = write_raster(tmp_path / "scene.tif", scene_cube(), wavelengths=WAVELENGTHS)
    classes = tmp_path / "classes.tif"
    write_classification(classes, block_labels(), raster_info(raster), [1, 2, 3, 4],
                         ["water", "forest", "soil", "urban"], [(0, 0, 255), (0, 128, 0), (150, 100, 50), (90, 90, 90)])
    out = tmp_path / "out"
    out.mkdir()
    return {"raster": raster, "classes": classes, "samples": write_samples(tmp_path / "ref.gpkg", class_features()),
            "out": out}


def _assess(files, classification=None, samples=None):
    return assess_accuracy(str(classification or files["classes"]), reference_vector=str(samples or files["samples"]),
                           reference_field="class_id", html_out=str(files["out"] / "accuracy.html"),
                           csv_out=str(files["out"] / "accuracy.csv"))


def test_a_perfect_map_scores_one(files):
    result = _assess(files)
    assert result.summary["oa"] == pytest.approx(1.0) and result.summary["kappa"] == pytest.approx(1.0)
    assert set(snapshot(files["out"])) == {"accuracy.html", "accuracy.csv"}


def test_the_hyperspectral_raster_instead_of_the_classification(files):
    with pytest.raises(ValueError) as info:
        _assess(files, classification=files["raster"])
    assert str(info.value) == (
        f"A classification raster has one band of class values; '{files['raster']}' has 4. Choose the classification "
        "output, not the hyperspectral raster."
    )
    assert snapshot(files["out"]) == {}


def test_reference_samples_outside_the_classification(files, tmp_path):
    far = {v: (c0 + 500, r0, c1 + 500, r1) for v, (c0, r0, c1, r1) in BLOCKS.items()}
    samples = write_samples(tmp_path / "far.gpkg", class_features(far))
    with pytest.raises(ValueError) as info:
        _assess(files, samples=samples)
    assert str(info.value).startswith("None of the 4 feature(s) of layer 'samples' overlap the raster")
    assert snapshot(files["out"]) == {}


def test_disk_full_while_writing_the_csv_leaves_no_report(files, monkeypatch):
    real = os.replace

    def replace(src, dst):
        if os.fspath(dst).endswith(".csv"):
            disk_full()
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ValueError) as info:
        _assess(files)
    assert str(info.value) == (
        f"Cannot write '{files['out'] / 'accuracy.csv'}': No space left on device. Check that the file is not open in "
        "another program and that the disk has free space."
    )
    assert snapshot(files["out"]) == {}, "the HTML report of a failed assessment was left behind"


def test_classification_inputs_are_not_modified(files):
    before = {k: snapshot(Path(v).parent)[Path(v).name] for k, v in files.items() if k != "out"}
    _assess(files)
    after = {k: snapshot(Path(v).parent)[Path(v).name] for k, v in files.items() if k != "out"}
    assert after == before


def test_reference_values_the_map_never_uses_are_explained_at_the_top_of_the_report(files, tmp_path):
    """A numeric reference coded 10..13 against a map of 1..4 (training used other codes or names): 0 % OA
    with the reason and what to do at the top of the HTML report, not only in the log."""
    recoded = tmp_path / "recoded.tif"
    labels = block_labels()
    write_classification(recoded, labels + (labels > 0) * 9, raster_info(files["raster"]), [10, 11, 12, 13],
                         ["a", "b", "c", "d"], [(1, 1, 1)] * 4)
    logs = []
    result = assess_accuracy(str(files["classes"]), reference_raster=str(recoded),
                             html_out=str(files["out"] / "accuracy.html"), log=lambda lvl, msg: logs.append((lvl, msg)))
    assert result.summary["oa"] == 0.0
    warning = next(msg for lvl, msg in logs if lvl == "warning" and "never occur" in msg)
    assert warning == (
        "Reference classes [10, 11, 12, 13] never occur in the classification; they count as errors. If the reference "
        "means the same classes under other values (e.g. the training used class names), use a reference field with "
        "the class names (a text field is matched by name), or recode the reference to the classification's values "
        "(1 water, 2 forest, 3 soil, 4 urban).")
    html = (files["out"] / "accuracy.html").read_text(encoding="utf-8")
    top = html[: html.index("<table")]
    assert "never occur in the classification" in top and "recode the reference" in top


@pytest.mark.parametrize("kind", ["confidence", "probability", "float values"])
def test_a_confidence_raster_instead_of_the_classification(files, tmp_path, kind):
    """Issue 31, defect 7: a float raster (our confidence, a probability band, any decimal values) is no
    classification; it used to be reported as "no reference pixel overlaps the classification"."""
    import numpy as np

    from rssgl_qgis.io.raster_write import write_float

    info = raster_info(files["raster"])
    values = np.random.default_rng(0).uniform(0.3, 1.0, info.shape).astype(np.float32)
    band_names = {"confidence": ["Confidence (max probability)"], "probability": ["P(water)"], "float values": None}
    raster = Path(write_float(tmp_path / f"{kind.replace(' ', '_')}.tif", values, info, band_names=band_names[kind]))
    with pytest.raises(ValueError) as info_:
        _assess(files, classification=raster)
    what = {"confidence": "the confidence raster written by 'Classify with RSSGL'",
            "probability": "a class-probability raster written by 'Classify with RSSGL'",
            "float values": "not a classification"}[kind]
    assert str(info_.value) == (
        f"'{raster}' holds decimal values (e.g. {float(values[0, 0]):.3g}) where a classification holds whole class "
        f"values: it is {what}. Choose the classification raster ('Classification' of 'Classify with RSSGL', or "
        "'Classification of the training raster' of 'Train RSSGL').")
    assert snapshot(files["out"]) == {}


def test_a_classification_stored_as_floats_with_whole_values_is_accepted(files, tmp_path):
    from rssgl_qgis.io.raster_write import write_float

    floats = Path(write_float(tmp_path / "classes_float.tif", block_labels().astype("float32"),
                              raster_info(files["raster"]), nodata=0.0))
    assert _assess(files, classification=floats).summary["oa"] == pytest.approx(1.0)


def test_a_map_whose_class_names_are_renumbered_codes_is_explained(files, tmp_path):
    """A map from before issue 31's fix: text codes "1", "2", "10" numbered in text order (1 -> "1", 2 -> "10",
    3 -> "2"). Against the integer codes it scores 33 %; the warning names every renumbered class, not only 10."""
    labels = block_labels()
    old = tmp_path / "old_codes.tif"
    write_classification(old, (labels * (labels < 4)), raster_info(files["raster"]), [1, 2, 3], ["1", "10", "2"],
                         [(1, 1, 1)] * 3)
    reference = write_samples(tmp_path / "codes.gpkg", [
        (feature[0], {"class_id": code}) for feature, code in zip(class_features(), (1, 10, 2, 4), strict=False)][:3],
        fields={"class_id": "Integer"})
    logs = []
    assess_accuracy(str(old), reference_vector=str(reference), reference_field="class_id",
                    log=lambda level, message: logs.append((level, message)))
    assert ("warning", "The classification's class names are codes that differ from its values (value 2 is named "
                       "'10', value 3 is named '2'); the reference is matched by value. If the reference holds those "
                       "codes, use a text reference field (matched by name), or classify again with a model trained "
                       "by this version (text codes keep their numbers).") in logs
