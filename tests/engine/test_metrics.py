"""Metrics against hand-computed confusion matrices and the Olofsson et al. (2014) worked example."""

from __future__ import annotations

import numpy as np
import pytest

from rssgl_qgis.core.metrics import accuracy_summary, confusion_matrix


def test_confusion_matrix_rows_reference_columns_prediction_explicit_labels():
    ref = np.array([[1, 1, 10], [10, 14, 0]])
    pred = np.array([[1, 10, 10], [10, 1, 14]])
    cm = confusion_matrix(ref, pred, labels=[14, 1, 10])
    # rows/cols in the order given: 14, 1, 10; the pixel with reference 0 is ignored
    np.testing.assert_array_equal(cm, [[0, 1, 0], [0, 1, 1], [0, 0, 2]])
    with pytest.raises(ValueError, match="same grid"):
        confusion_matrix(ref, pred[:1], labels=[1])


def test_summary_of_a_hand_computed_matrix():
    cm = np.array([[45, 5], [10, 40]])
    s = accuracy_summary(cm)
    assert s["oa"] == pytest.approx(0.85)
    assert s["producers"] == pytest.approx([0.9, 0.8])
    assert s["users"] == pytest.approx([45 / 55, 40 / 45])
    assert s["aa"] == pytest.approx(0.85)
    pe = (50 * 55 + 50 * 45) / 100**2
    assert s["kappa"] == pytest.approx((0.85 - pe) / (1 - pe))
    assert s["oa_ci95"] == pytest.approx(1.96 * np.sqrt(0.85 * 0.15 / 100), rel=1e-3)
    p, u = 0.9, 45 / 55
    assert s["f1"][0] == pytest.approx(2 * p * u / (p + u))
    assert 0 < s["kappa_ci95"] < 0.3


def test_kappa_variance_matches_congalton_green_formula():
    cm = np.array([[65, 4, 22, 24], [6, 81, 5, 8], [0, 11, 85, 19], [4, 7, 3, 90]])  # Congalton & Green's example
    s = accuracy_summary(cm)
    n = cm.sum()
    p = cm / n
    rows, cols = p.sum(1), p.sum(0)
    t1, t2 = np.trace(p), (rows * cols).sum()
    t3 = (np.diag(p) * (rows + cols)).sum()
    t4 = sum(p[i, j] * (cols[i] + rows[j]) ** 2 for i in range(4) for j in range(4))
    var = (
        t1 * (1 - t1) / (1 - t2) ** 2
        + 2 * (1 - t1) * (2 * t1 * t2 - t3) / (1 - t2) ** 3
        + (1 - t1) ** 2 * (t4 - 4 * t2**2) / (1 - t2) ** 4
    ) / n
    assert s["kappa"] == pytest.approx(0.65, abs=0.01)  # the book's kappa for this matrix
    assert s["kappa_ci95"] == pytest.approx(1.959964 * np.sqrt(var), rel=1e-6)


def test_area_adjusted_accuracy_reproduces_olofsson_2014_example():
    # Olofsson et al. 2014, Table 8: rows = MAP classes there; our rows are the reference, so transpose.
    map_rows = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
    areas = np.array([200000, 150000, 3200000, 6450000])  # mapped area (ha)
    a = accuracy_summary(map_rows.T, class_areas=areas)["area_adjusted"]
    assert a["oa"] == pytest.approx(0.947, abs=5e-4)
    assert a["oa_ci95"] == pytest.approx(0.018, abs=5e-4)
    assert a["users"] == pytest.approx([0.88, 0.73, 0.93, 0.96], abs=5e-3)
    assert a["producers"] == pytest.approx([0.75, 0.85, 0.93, 0.96], abs=5e-3)
    assert a["producers_ci95"][0] == pytest.approx(0.21, abs=5e-3)
    assert a["area"][0] == pytest.approx(235086, abs=1)  # deforestation: 235,086 +- 68,418 ha
    assert a["area_ci95"][0] == pytest.approx(68418, abs=5)


def test_summary_rejects_bad_input_and_handles_empty_classes():
    with pytest.raises(ValueError, match="square"):
        accuracy_summary(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="empty"):
        accuracy_summary(np.zeros((2, 2)))
    s = accuracy_summary(np.array([[5, 0], [0, 0]]))
    assert np.isnan(s["producers"][1]) and s["aa"] == 1.0


def test_a_perfect_map_has_oa_1_and_a_zero_interval_whatever_the_class_order():
    """Regression (found by hypothesis): trace(cm / n) summed rounded fractions to 1 + 2e-16, and the
    interval sqrt(oa * (1 - oa) / n) became NaN."""
    counts = [10, 14, 4, 4, 4]  # np.trace(cm / 36) == 1.0000000000000002 in this order
    for order in ([0, 1, 2, 3, 4], [4, 2, 0, 3, 1]):
        summary = accuracy_summary(np.diag([counts[i] for i in order]))
        assert summary["oa"] == 1.0 and summary["oa_ci95"] == 0.0
