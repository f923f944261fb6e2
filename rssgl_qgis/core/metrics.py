"""Accuracy assessment: confusion matrix, OA/AA/kappa with 95 % CIs, per-class accuracies, Olofsson 2014.

Conventions (as scikit-learn): rows = reference, columns = prediction, class order = ``labels``.
References: Congalton & Green (2009) for the kappa variance (delta method); Olofsson et al. (2014,
Remote Sens. Environ. 148:42-57) for stratified, area-weighted estimators where the strata are the
map classes and the weights their mapped areas.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["confusion_matrix", "accuracy_summary", "Z95"]

#: Two-sided 95 % normal quantile.
Z95 = 1.959963984540054


def confusion_matrix(reference: np.ndarray, predicted: np.ndarray, labels) -> np.ndarray:
    """Counts (len(labels), len(labels)), int64: entry [i, j] = pixels of reference labels[i] predicted as labels[j].

    Pixels whose reference or prediction is not in ``labels`` (e.g. 0 = unlabelled/nodata) are
    ignored, as in scikit-learn.
    """
    reference = np.asarray(reference).ravel()
    predicted = np.asarray(predicted).ravel()
    if reference.shape != predicted.shape:
        raise ValueError(
            f"Reference and prediction differ in size ({reference.size} vs {predicted.size} pixels); "
            "they must cover the same grid."
        )
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("labels must be a non-empty 1-D list of class values.")
    if np.unique(labels).size != labels.size:
        raise ValueError(f"labels contains duplicates: {labels.tolist()}.")
    k = labels.size
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]

    def to_index(values: np.ndarray) -> np.ndarray:
        pos = np.clip(np.searchsorted(sorted_labels, values), 0, k - 1)
        found = sorted_labels[pos] == values
        return np.where(found, order[pos], -1)

    ri, pi = to_index(reference), to_index(predicted)
    keep = (ri >= 0) & (pi >= 0)
    return np.bincount(ri[keep] * k + pi[keep], minlength=k * k).reshape(k, k).astype(np.int64)


def _div(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1.0), np.nan)


def _kappa_variance(p: np.ndarray, n: float) -> float:
    """Delta-method variance of Cohen's kappa (Congalton & Green 2009, eq. 5.x) from proportions p."""
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    t1 = np.trace(p)
    t2 = float((rows * cols).sum())
    t3 = float((np.diag(p) * (rows + cols)).sum())
    t4 = float((p * (cols[:, None] + rows[None, :]) ** 2).sum())
    if t2 >= 1.0:
        return float("nan")
    return (
        t1 * (1 - t1) / (1 - t2) ** 2
        + 2 * (1 - t1) * (2 * t1 * t2 - t3) / (1 - t2) ** 3
        + (1 - t1) ** 2 * (t4 - 4 * t2**2) / (1 - t2) ** 4
    ) / n


def _olofsson(cm: np.ndarray, class_areas: np.ndarray) -> dict[str, Any]:
    """Area-weighted estimators with map classes (columns) as strata and mapped areas as weights."""
    n_map = cm.sum(axis=0).astype(np.float64)  # sample count per map class (stratum)
    areas = np.asarray(class_areas, dtype=np.float64)
    total = areas.sum()
    w = areas / total
    # p[i, j]: estimated area proportion of map class i, reference class j.
    frac = _div(cm.T, n_map[:, None])  # n_ij / n_i. with i = map class
    frac = np.nan_to_num(frac)
    p = w[:, None] * frac
    user = _div(np.diag(cm), n_map)
    ref_prop = p.sum(axis=0)
    producer = _div(np.diag(p), ref_prop)
    oa = float(np.trace(p))
    dof = np.where(n_map > 1, n_map - 1, np.nan)
    var_user = _div(user * (1 - user), dof)
    var_oa = float(np.nansum(w**2 * user * (1 - user) / dof))
    var_prop = np.nansum(w[:, None] ** 2 * frac * (1 - frac) / dof[:, None], axis=0)
    n_ref_hat = (areas[:, None] * frac).sum(axis=0)  # estimated reference totals (area units)
    var_prod = np.empty(cm.shape[0])
    for j in range(cm.shape[0]):  # per class (K small); vectorised over strata inside
        others = np.arange(cm.shape[0]) != j
        term_other = np.nansum((areas[others] ** 2) * frac[others, j] * (1 - frac[others, j]) / dof[others])
        term_own = areas[j] ** 2 * (1 - producer[j]) ** 2 * user[j] * (1 - user[j]) / dof[j]
        var_prod[j] = (term_own + producer[j] ** 2 * term_other) / n_ref_hat[j] ** 2 if n_ref_hat[j] else np.nan
    return {
        "oa": oa,
        "oa_ci95": Z95 * np.sqrt(var_oa),
        "users": user.tolist(),
        "users_ci95": (Z95 * np.sqrt(var_user)).tolist(),
        "producers": producer.tolist(),
        "producers_ci95": (Z95 * np.sqrt(var_prod)).tolist(),
        "area": (ref_prop * total).tolist(),
        "area_ci95": (Z95 * np.sqrt(var_prop) * total).tolist(),
        "mapped_area": areas.tolist(),
    }


def accuracy_summary(cm: np.ndarray, class_areas=None) -> dict[str, Any]:
    """OA, AA, kappa (with 95 % CIs), per-class producer's/user's accuracy and F1 from a confusion matrix.

    Accuracies are fractions in [0, 1]; a class without reference (or predicted) pixels gets NaN
    for the accuracy that would divide by zero. AA averages producer's accuracies of the classes
    that have reference pixels. With ``class_areas`` (mapped pixel count or area of each class, in
    the matrix's class order), an ``"area_adjusted"`` entry holds Olofsson et al. (2014) estimates.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"Expected a square confusion matrix, got shape {cm.shape}.")
    if (cm < 0).any():
        raise ValueError("A confusion matrix cannot hold negative counts.")
    n = float(cm.sum())
    if n == 0:
        raise ValueError("The confusion matrix is empty: no reference pixel overlaps the classification.")
    p = cm / n
    oa = float(np.trace(cm)) / n  # not trace(p): a sum of rounded fractions can exceed 1 (NaN CI)
    rows, cols = cm.sum(axis=1), cm.sum(axis=0)
    producers = _div(np.diag(cm), rows)
    users = _div(np.diag(cm), cols)
    f1 = _div(2 * producers * users, producers + users)
    pe = float((rows * cols).sum()) / n**2
    kappa = (oa - pe) / (1 - pe) if pe < 1 else float("nan")
    result: dict[str, Any] = {
        "n": int(n),
        "oa": oa,
        "oa_ci95": Z95 * np.sqrt(max(oa * (1 - oa), 0.0) / n),
        "aa": float(np.nanmean(producers)) if np.isfinite(producers).any() else float("nan"),
        "kappa": float(kappa),
        "kappa_ci95": float(Z95 * np.sqrt(max(_kappa_variance(p, n), 0.0))),
        "producers": producers.tolist(),
        "users": users.tolist(),
        "f1": f1.tolist(),
        "reference_counts": rows.astype(int).tolist(),
        "predicted_counts": cols.astype(int).tolist(),
    }
    if class_areas is not None:
        areas = np.asarray(class_areas, dtype=np.float64)
        if areas.shape != (cm.shape[0],):
            raise ValueError(f"class_areas needs one value per class ({cm.shape[0]}), got shape {areas.shape}.")
        if (areas < 0).any() or areas.sum() <= 0:
            raise ValueError("class_areas must be non-negative and not all zero.")
        result["area_adjusted"] = _olofsson(cm, areas)
    return result
