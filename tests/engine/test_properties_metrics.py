"""Property-based tests of the accuracy metrics (core/metrics.py).

The numbers users put in papers come from here, so they are checked against a deliberately naive
implementation written in this file (explicit loops over pixels and classes), for bounds, and for
invariance to how the classes happen to be numbered or ordered.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rssgl_qgis.core.metrics import accuracy_summary, confusion_matrix

FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def labelled_pairs(draw):
    """(reference, predicted, labels): maps with sparse class values, 0 = unlabelled/nodata, and
    some values outside ``labels`` (which the metrics must ignore)."""
    labels = np.asarray(draw(st.lists(st.integers(1, 60), min_size=1, max_size=7, unique=True)), dtype=np.int64)
    n = draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**31 - 1))
    accuracy = draw(st.floats(0.0, 1.0))
    rng = np.random.default_rng(seed)
    pool = np.concatenate([labels, [0, 99]])  # 0 and 99 are not classes
    reference = rng.choice(pool, size=n, p=_weights(pool.size, rng))
    predicted = np.where(rng.random(n) < accuracy, reference, rng.choice(pool, size=n))
    return reference, predicted, labels


def _weights(k: int, rng) -> np.ndarray:
    w = rng.random(k) + 0.05
    return w / w.sum()


def _naive_cm(reference, predicted, labels) -> np.ndarray:
    index = {int(v): i for i, v in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for r, p in zip(reference.tolist(), predicted.tolist(), strict=True):
        if r in index and p in index:
            cm[index[r], index[p]] += 1
    return cm


def _naive_scores(cm: np.ndarray) -> tuple[float, float, float]:
    n = cm.sum()
    oa = sum(cm[i, i] for i in range(len(cm))) / n
    producers = [cm[i, i] / cm[i].sum() for i in range(len(cm)) if cm[i].sum() > 0]
    aa = sum(producers) / len(producers)
    pe = sum(cm[i].sum() * cm[:, i].sum() for i in range(len(cm))) / n**2
    kappa = (oa - pe) / (1 - pe) if pe < 1 else float("nan")
    return oa, aa, kappa


@FAST
@given(pair=labelled_pairs())
def test_confusion_matrix_and_scores_agree_with_a_naive_implementation(pair):
    reference, predicted, labels = pair
    cm = confusion_matrix(reference, predicted, labels)
    np.testing.assert_array_equal(cm, _naive_cm(reference, predicted, labels))
    assume(cm.sum() > 0)
    summary = accuracy_summary(cm)
    oa, aa, kappa = _naive_scores(cm)
    assert summary["n"] == cm.sum()
    np.testing.assert_allclose(summary["oa"], oa, rtol=1e-12)
    np.testing.assert_allclose(summary["aa"], aa, rtol=1e-12)
    np.testing.assert_allclose(summary["kappa"], kappa, rtol=1e-9, atol=1e-12, equal_nan=True)
    assert summary["reference_counts"] == cm.sum(axis=1).tolist()
    assert summary["predicted_counts"] == cm.sum(axis=0).tolist()


@FAST
@given(pair=labelled_pairs())
def test_scores_stay_within_their_bounds(pair):
    cm = confusion_matrix(*pair)
    assume(cm.sum() > 0)
    s = accuracy_summary(cm)
    assert 0.0 <= s["oa"] <= 1.0
    assert 0.0 <= s["aa"] <= 1.0
    assert np.isnan(s["kappa"]) or -1.0 <= s["kappa"] <= 1.0 + 1e-12
    assert s["oa_ci95"] >= 0.0
    # kappa is undefined (NaN) when chance agreement is 1, e.g. one class only; so is its interval.
    assert s["kappa_ci95"] >= 0.0 or (np.isnan(s["kappa_ci95"]) and np.isnan(s["kappa"]))
    for key in ("producers", "users", "f1"):
        values = np.asarray(s[key], dtype=float)
        assert np.all(np.isnan(values) | ((values >= 0.0) & (values <= 1.0))), key
    if np.trace(cm) == cm.sum():  # a perfect map
        assert abs(s["oa"] - 1.0) < 1e-12 and abs(s["aa"] - 1.0) < 1e-12


@FAST
@given(pair=labelled_pairs(), seed=st.integers(0, 2**31 - 1))
def test_scores_do_not_depend_on_class_numbering_or_order(pair, seed):
    reference, predicted, labels = pair
    cm = confusion_matrix(reference, predicted, labels)
    assume(cm.sum() > 0)
    base = accuracy_summary(cm)
    rng = np.random.default_rng(seed)
    # Renumber the classes (a bijection onto other values) and list them in another order.
    new_values = rng.choice(np.arange(100, 400), size=labels.size, replace=False)
    mapping = dict(zip(labels.tolist(), new_values.tolist(), strict=True))

    def renumber(a):
        return np.asarray([mapping.get(int(v), int(v)) for v in a])

    order = rng.permutation(labels.size)
    cm2 = confusion_matrix(renumber(reference), renumber(predicted), new_values[order])
    np.testing.assert_array_equal(cm2, cm[np.ix_(order, order)])
    other = accuracy_summary(cm2)
    for key in ("oa", "aa", "kappa", "oa_ci95", "kappa_ci95"):
        # atol: trace(p) summed in another order may differ by one ulp, and sqrt(oa * (1 - oa)) turns a
        # 1e-16 difference near oa = 1 into 1e-8.
        np.testing.assert_allclose(other[key], base[key], rtol=1e-9, atol=1e-7, equal_nan=True, err_msg=key)
    for key in ("producers", "users", "f1"):
        np.testing.assert_allclose(np.asarray(other[key]), np.asarray(base[key])[order], equal_nan=True, err_msg=key)


@FAST
@given(pair=labelled_pairs())
def test_area_adjustment_with_sample_proportional_areas_changes_nothing(pair):
    """Olofsson et al. (2014): when each map class's area is proportional to its sample count, the
    stratified estimate equals the plain one and the estimated areas equal the reference counts."""
    cm = confusion_matrix(*pair)
    mapped = cm.sum(axis=0)
    assume(cm.sum() > 0)
    adjusted = accuracy_summary(cm, class_areas=mapped)["area_adjusted"]
    np.testing.assert_allclose(adjusted["oa"], np.trace(cm) / cm.sum(), rtol=1e-12)
    np.testing.assert_allclose(adjusted["area"], cm.sum(axis=1), rtol=1e-9, atol=1e-9)
