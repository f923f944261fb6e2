"""HTML/CSV reports: content comes from the inputs, user text is escaped, CSV values match the metrics."""

from __future__ import annotations

import csv
import io
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from rssgl_qgis.core.metrics import accuracy_summary
from rssgl_qgis.workflows.reports import (
    CSV_HEADER,
    AccuracyReport,
    ClassRow,
    TrainingReport,
    accuracy_csv_text,
    line_plot_svg,
    render_accuracy_report,
    render_training_report,
)

CLASSES = [
    ClassRow(1, "Water", (0, 0, 255), 40, 10),
    ClassRow(5, "Maize <young> & \"wet\"", (255, 255, 0), 30, 8),
    ClassRow(9, "Urban", (128, 128, 128), 25, 6),
]
CM = np.array([[50, 2, 0], [3, 40, 7], [0, 5, 93]])


def history(epochs: int = 4) -> list[dict]:
    return [{"epoch": i + 1, "iteration": 10 * (i + 1), "loss": 2.0 / (i + 1), "val_oa": 0.5 + 0.1 * i,
             "lr": 0.005, "seconds": 0.3} for i in range(epochs)]


def training_report(**overrides) -> TrainingReport:
    values = dict(raster="/data/scene.tif", samples="/data/polygons.gpkg", model_path="/out/m.rssgl",
                  classes=CLASSES, history=history(), parameters={"iterations": 40, "seed": 7},
                  device="CPU only (2 threads): training will be slow", train_seconds=12.5,
                  selection="validation", best_epoch=4, raster_shape=(60, 48, 50))
    values.update(overrides)
    return TrainingReport(**values)


def accuracy_report(summary=None) -> AccuracyReport:
    mapped = [60, 50, 110]
    summary = summary or accuracy_summary(CM, class_areas=np.array(mapped) * 4.0)
    return AccuracyReport(classification="/out/c.tif", reference="/data/ref.gpkg", classes=CLASSES,
                          confusion=CM.tolist(), summary=summary, pixel_area=4.0, area_unit="m²",
                          mapped_pixels=mapped)


def svg_of(html_text: str) -> ET.Element:
    start = html_text.index("<svg")
    end = html_text.index("</svg>") + len("</svg>")
    return ET.fromstring(html_text[start:end])


def test_training_report_shows_what_was_measured():
    text = render_training_report(training_report())
    assert text.startswith("<!DOCTYPE html>")
    assert "Maize &lt;young&gt; &amp; &quot;wet&quot;" in text and "<young>" not in text
    assert "rgb(255,255,0)" in text  # colour swatch
    assert "12.5 s" in text and "CPU only (2 threads)" in text
    assert "60 bands x 48 rows x 50 columns" in text
    # selected epoch 4 has validation OA 0.8
    assert "80.00 %" in text
    assert "overstates the map&#x27;s accuracy" in text  # validation pixels from the training polygons
    svg = svg_of(text)  # well-formed SVG
    lines = [e for e in svg.iter() if e.tag.endswith("polyline")]
    assert len(lines) == 2  # loss and validation OA
    assert all(len(e.get("points").split()) == 4 for e in lines)
    assert "<script" not in text


def test_training_report_labels_paper_protocol():
    hist = [dict(h, test_oa=0.9) for h in history()]
    text = render_training_report(training_report(selection="paper", history=hist))
    assert "TEST pixels" in text and "overstates" not in text
    assert len([e for e in svg_of(text).iter() if e.tag.endswith("polyline")]) == 3


def test_plot_skips_missing_values_and_empty_history():
    svg = line_plot_svg([1, 2, 3, 4], [("a", [1.0, float("nan"), 3.0, 4.0], "#000", "left")], x_label="it")
    root = ET.fromstring(svg)
    segments = [e.get("points").split() for e in root.iter() if e.tag.endswith("polyline")]
    assert [len(s) for s in segments] == [1, 2]
    assert "No epochs" in line_plot_svg([], [], x_label="it")


def test_accuracy_csv_matches_metrics():
    report = accuracy_report()
    rows = list(csv.DictReader(io.StringIO(accuracy_csv_text(report))))
    assert tuple(rows[0].keys()) == CSV_HEADER
    by = {(r["metric"], r["class_value"], r["mapped_value"]): r for r in rows}
    s = report.summary
    assert float(by[("overall_accuracy", "", "")]["value"]) == pytest.approx(s["oa"])
    assert float(by[("overall_accuracy", "", "")]["ci95"]) == pytest.approx(s["oa_ci95"])
    assert float(by[("kappa", "", "")]["value"]) == pytest.approx(s["kappa"])
    assert float(by[("producers_accuracy", "5", "")]["value"]) == pytest.approx(40 / 50)
    assert float(by[("users_accuracy", "9", "")]["value"]) == pytest.approx(93 / 100)
    assert float(by[("mapped_area", "9", "")]["value"]) == pytest.approx(440.0)
    assert by[("producers_accuracy", "5", "")]["class_name"] == CLASSES[1].name
    assert float(by[("area_adjusted_overall_accuracy", "", "")]["value"]) == pytest.approx(s["area_adjusted"]["oa"])
    confusion = np.zeros((3, 3), dtype=int)
    values = [c.value for c in CLASSES]
    for r in rows:
        if r["metric"] == "confusion":
            confusion[values.index(int(r["class_value"])), values.index(int(r["mapped_value"]))] = int(r["value"])
    np.testing.assert_array_equal(confusion, CM)


def test_accuracy_html_has_matrix_and_intervals():
    report = accuracy_report()
    text = render_accuracy_report(report)
    s = report.summary
    assert f"{100 * s['oa']:.2f} &plusmn; {100 * s['oa_ci95']:.2f}" in text
    assert text.count('class="n diag"') == 3
    assert "Olofsson" in text and "m²" in text
    assert "Maize &lt;young&gt;" in text


def test_undefined_accuracies_show_as_dash_and_nan():
    cm = np.array([[5, 0], [0, 0]])  # class 2 has no reference and no prediction
    summary = accuracy_summary(cm)
    report = AccuracyReport(classification="c", reference="r", classes=CLASSES[:2], confusion=cm.tolist(),
                            summary=summary, pixel_area=1.0, area_unit="m²", mapped_pixels=[5, 0])
    assert "&mdash;" in render_accuracy_report(report)
    rows = list(csv.DictReader(io.StringIO(accuracy_csv_text(report))))
    producers = [r for r in rows if r["metric"] == "producers_accuracy" and r["class_value"] == "5"][0]
    assert math.isnan(float(producers["value"]))
