"""Class names and codes from a text class field (issue 31, defects 5 and 6): nothing silently wrong.

* Names that differ only in case or surrounding spaces ("Roof"/"roof", "Water"/"water ") are one class,
  with a warning naming the spellings and the one kept (the most frequent; on a tie the first in the layer).
* Numeric codes stored as text ("1", "2", "10") keep their numbers (1, 2, 10), not the sorted-string
  renumbering (1 -> "1", 2 -> "10", 3 -> "2") that made an assessment against the integer codes score 33 %.
* Codes mixed with names: the codes keep their numbers, the names are numbered after the largest code,
  with a warning giving the values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rssgl_qgis.core.training.classifier import TrainingParams
from rssgl_qgis.io.raster import raster_info
from rssgl_qgis.io.raster_write import write_classification
from rssgl_qgis.io.samples import labels_from_vector
from rssgl_qgis.workflows.assess import assess_accuracy
from rssgl_qgis.workflows.train import train_from_files

from .helpers import (
    BLOCKS,
    WAVELENGTHS,
    block_labels,
    block_polygon_wkt,
    scene_cube,
    write_raster,
    write_samples,
)


@pytest.fixture
def raster(tmp_path) -> Path:
    return write_raster(tmp_path / "scene.tif", scene_cube(), wavelengths=WAVELENGTHS)


def _text_samples(tmp_path, names: dict[int, list[str]], name="samples.gpkg") -> Path:
    """One polygon per name in the block of each class value (blocks split in vertical strips)."""
    features = []
    for value, spellings in names.items():
        c0, r0, c1, r1 = BLOCKS[value]
        step = (c1 - c0) // len(spellings)
        for k, spelling in enumerate(spellings):
            strip = (c0 + k * step, r0, c1 if k == len(spellings) - 1 else c0 + (k + 1) * step, r1)
            features.append((block_polygon_wkt(strip), {"class": spelling}))
    return write_samples(tmp_path / name, features, fields={"class": "String"})


def test_case_and_space_variants_are_one_class_with_a_warning(tmp_path, raster):
    samples = _text_samples(tmp_path, {1: ["Roof", "roof", "Roof"], 2: ["Water", "water "], 3: ["soil"]})
    result = labels_from_vector(samples, None, "class", raster_info(raster))
    assert result.class_names == ["Roof", "soil", "Water"]
    np.testing.assert_array_equal(result.class_values, [1, 2, 3])
    np.testing.assert_array_equal(result.labels, np.array([0, 1, 3, 2, 0])[block_labels()])
    assert ("Class names that differ only in case or surrounding spaces were merged into one class each: "
            "'Roof', 'roof' as 'Roof'; 'Water', 'water ' as 'Water' (the most frequent spelling is kept, on a tie "
            "the first in the layer).") in result.warnings


def test_numeric_codes_stored_as_text_keep_their_numbers(tmp_path, raster):
    samples = _text_samples(tmp_path, {1: ["1"], 2: ["2"], 3: ["10"]})
    result = labels_from_vector(samples, None, "class", raster_info(raster))
    np.testing.assert_array_equal(result.class_values, [1, 2, 10])
    assert result.class_names == ["1", "2", "10"]
    np.testing.assert_array_equal(result.labels, np.array([0, 1, 2, 10, 0])[block_labels()])
    assert result.warnings == []


def test_codes_mixed_with_names_keep_their_numbers_and_the_names_follow(tmp_path, raster):
    samples = _text_samples(tmp_path, {1: ["1"], 2: ["10"], 3: ["water"], 4: ["Forest"]})
    result = labels_from_vector(samples, None, "class", raster_info(raster))
    np.testing.assert_array_equal(result.class_values, [1, 10, 11, 12])
    assert result.class_names == ["1", "10", "Forest", "water"]
    np.testing.assert_array_equal(result.labels, np.array([0, 1, 10, 12, 11])[block_labels()])
    assert ("Field 'class' of layer 'samples' mixes class codes and names: the codes keep their numbers (1, 10), "
            "the names are numbered after them: 11 'Forest', 12 'water'.") in result.warnings


def test_a_text_code_of_zero_is_refused_like_an_integer_zero(tmp_path, raster):
    samples = _text_samples(tmp_path, {1: ["0"], 2: ["2"]})
    with pytest.raises(ValueError) as info:
        labels_from_vector(samples, None, "class", raster_info(raster))
    assert str(info.value).startswith("Field 'class' of layer 'samples' has class value 0 (feature 1); class values "
                                      "must be positive integers")


def test_a_map_trained_on_text_codes_assesses_against_the_integer_codes(tmp_path, raster):
    """The issue's case end to end: train on "1", "2", "10" (text), the report's class table shows the value
    each name got, and the map's values are the codes, so an integer reference with the same codes matches."""
    samples = _text_samples(tmp_path, {1: ["1"], 2: ["2"], 3: ["10"], 4: ["4"]})
    out = tmp_path / "out"
    out.mkdir()
    result = train_from_files(str(raster), samples_vector=str(samples), class_field="class",
                              params=TrainingParams(iterations=1, device="cpu", spectral=False), model_out=str(out / "model.rssgl"),
                              report_out=str(out / "report.html"))
    assert [(c.value, c.name) for c in result.classes] == [(1, "1"), (2, "2"), (4, "4"), (10, "10")]
    assert result.classifier.classes_.tolist() == [1, 2, 4, 10]
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "<td>10</td><td>10</td>" in report  # Value 10, name "10" in the class table
    # The map of these codes (written as the classifier would) against the integer codes: 100 %, not 33 %.
    codes = np.array([0, 1, 2, 10, 4])[block_labels()]
    classes = tmp_path / "classes.tif"
    write_classification(classes, codes, raster_info(raster), [1, 2, 4, 10], ["1", "2", "4", "10"],
                         [(1, 1, 1)] * 4)
    integer_reference = write_samples(tmp_path / "ref.gpkg", [
        (block_polygon_wkt(BLOCKS[block]), {"class_id": code}) for block, code in ((1, 1), (2, 2), (3, 10), (4, 4))],
        fields={"class_id": "Integer"})
    accuracy = assess_accuracy(str(classes), reference_vector=str(integer_reference), reference_field="class_id")
    assert accuracy.summary["oa"] == pytest.approx(1.0)
