"""Accuracy suite: scenes x protocols x methods x seeds, mean +- std of OA / AA / kappa, in one run.

    python benchmarks/suite_data.py                       # here (GDAL): .data/suite/*.npz
    python benchmarks/accuracy_suite.py --data .data/suite --device cuda --seeds 0,1,2,3,4 \
        --workers 6 --json $OUT/suite.json                # on the GPU machine (no GDAL needed)
    python benchmarks/accuracy_suite.py --summarise suite.json   # the markdown table again

Scenes: Salinas-A, the EnMAP Potsdam mosaic (nodata gaps included, empty bands left out by
suite_data.py), the synthetic parcel scene (core/data/synthetic.py; one scene per seed), and Indian Pines
/ Salinas / Pavia University whenever their .npz files are there.

Protocols: ``p1`` the paper's 1 % per class (at least 5); ``n5`` / ``n10`` / ``n25`` that many
random pixels per class; ``blocks`` (Salinas-A) / ``tiles`` (EnMAP) spatially disjoint: all labels
of half the 16 x 16 px blocks / 32 x 32 px tiles train, the other half test; ``polygons``
(synthetic): 2 polygons per class train, every other labelled pixel tests (also reported: fields
without a polygon); ``patches1`` / ``patches2`` / ``patches4`` (Salinas-A, EnMAP): that many whole label
patches per class train (``polygon_split``), every other labelled pixel of the classes that trained tests.

Methods:
- ``default``: the plugin as Train RSSGL runs it by default: RSSGL trained on every sample pixel
  ("fit" stopping), the spectral kernel model, and their combination chosen by 3-fold
  cross-validation over whole samples (patches of the label raster, polygons; core/training/cross_validation.py).
  The same final training also gives ``rssgl`` (RSSGL alone, w = 1), ``spectral`` (w = 0) and
  ``blend`` (the fixed DEFAULT_BLEND): what each piece buys.
- ``paper``: RSSGL in paper mode (selection on TEST pixels: reference only, not an honest number).
- ``svm``: scikit-learn SVC RBF, grid-searched (C x gamma, stratified k-fold) on per-band
  standardised spectra; ``rf``: random forest, 500 trees; ``enmapbox``: EnMAP-Box's default (``enmapbox_svc``).
  The baselines a user would pick instead (benchmarks/requirements.txt; the plugin never imports scikit-learn);
  ``--methods svm`` runs all three.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCENE_PROTOCOLS = {
    "salinas_a": ("p1", "n5", "n10", "n25", "blocks", "patches1", "patches2", "patches4"),
    "enmap_potsdam": ("p1", "n5", "n10", "n25", "tiles", "patches1", "patches2", "patches4"),
    "synthetic": ("polygons",),
    "indian_pines": ("p1", "n5", "n10", "n25", "blocks"),
    "salinas": ("p1", "n5", "n10", "n25", "blocks"),
    "pavia_university": ("p1", "n5", "n10", "n25", "blocks"),
}
METHODS = ("default", "rssgl", "spectral", "blend", "paper", "svm", "rf", "enmapbox")
CV_FOLDS = 3
#: Side (px) of the grid that cuts a scene's label patches into polygons for the ``patchesK`` protocols, where
#: each class is one connected field (Salinas-A: one patch per class, 391-1525 px); None: the patches as they
#: are (EnMAP: 6-148 patches per class, the rasterised reference polygons cut at the tile edges).
POLYGON_GRID = {"salinas_a": 8}


# ----------------------------------------------------------------------------------------- scenes
def load_scene(name: str, data: Path, seed: int) -> dict:
    """cube (B, H, W) float32, valid, labels; EnMAP: tile numbers; synthetic: polygons and fields."""
    if name == "synthetic":
        from rssgl_qgis.core.data.synthetic import make_synthetic_scene

        s = make_synthetic_scene(seed, 160, 160, 120, 8, polygons_per_class=2)
        return {"cube": s.reflectance, "valid": s.valid, "labels": s.labels.astype(np.int64),
                "polygons": s.polygon_labels.astype(np.int64), "fields": s.field_ids, "name_": name}
    d = np.load(data / f"{name}.npz")
    return {**{k: d[k] for k in d.files}, "name_": name}


def split(scene: dict, protocol: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train labels, test labels, sample groups for the default's cross-validation)."""
    from rssgl_qgis.core.data.sampling import count_split, label_patches, percent_split

    labels = scene["labels"]
    if protocol == "polygons":
        train = scene["polygons"]
        test = np.where(train > 0, 0, labels)
        return train, test, np.where(train > 0, scene["fields"] + 1, 0)
    if protocol.startswith("patches"):
        return polygon_split(labels, int(protocol[len("patches"):]), seed, POLYGON_GRID.get(scene.get("name_", "")))
    if protocol == "p1":
        train, test = percent_split(labels, 1, seed=seed)
    elif protocol.startswith("n"):
        train, test = count_split(labels, int(protocol[1:]), seed=seed)
    else:  # spatially disjoint: half of the tiles / blocks
        if protocol == "tiles":
            unit = scene["tile"]
        else:
            rows, cols = np.indices(labels.shape)
            unit = (rows // 16) * (labels.shape[1] // 16 + 1) + cols // 16 + 1
        ids = np.unique(unit[labels > 0])
        rs = np.random.RandomState(seed)
        rs.shuffle(ids)
        held = np.isin(unit, ids[: len(ids) // 2])
        train, test = np.where(held, 0, labels), np.where(held, labels, 0)
        # a class absent from the training half cannot be learnt: leave it out of the test too
        test = np.where(np.isin(test, np.unique(train[train > 0])), test, 0)
    return train, test, label_patches(train)


def polygon_units(labels: np.ndarray, grid: int | None = None) -> np.ndarray:
    """Numbered "polygons" of a label raster: its 8-connected patches of one class (as rasterised polygons are,
    core.data.sampling.label_patches), each cut by a ``grid`` x ``grid`` px grid where given."""
    from rssgl_qgis.core.data.sampling import label_patches

    units = label_patches(labels).astype(np.int64)
    if grid:
        rows, cols = np.indices(labels.shape)
        cell = (rows // grid) * (labels.shape[1] // grid + 1) + cols // grid
        key = np.where(units > 0, units * (int(cell.max()) + 1) + cell, 0)
        _, inverse = np.unique(key, return_inverse=True)  # key 0 (unlabelled) sorts first: index 0
        units = np.where(units > 0, inverse.reshape(labels.shape), 0)
        units = label_patches(units)  # a grid cell may hold two pieces of one patch: 8-connected again
    return units


def polygon_split(labels: np.ndarray, per_class: int, seed: int, grid: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whole polygons train: ``per_class`` of each class's patches (``polygon_units``) drawn at random, as a user
    draws a few polygons per class; every other labelled pixel of the classes that trained tests. A class with
    no more than ``per_class`` patches trains on all of them (it has no test pixels). The sample groups of the
    cross-validation are the polygons."""
    units = polygon_units(labels, grid)
    rs = np.random.RandomState(seed)
    chosen = []
    for value in np.unique(labels[labels > 0]):
        ids = np.unique(units[labels == value])
        chosen.extend(rs.permutation(ids)[:per_class].tolist())
    picked = np.isin(units, chosen) & (labels > 0)
    train = np.where(picked, labels, 0)
    test = np.where(~picked & np.isin(labels, np.unique(train[train > 0])), labels, 0)
    return train, test, np.where(picked, units, 0)


# ---------------------------------------------------------------------------------------- methods
def _scores(pred: np.ndarray, test: np.ndarray, extra: dict | None = None) -> dict:
    from rssgl_qgis.core.metrics import accuracy_summary, confusion_matrix

    m = test > 0
    values = np.unique(test[m])
    s = accuracy_summary(confusion_matrix(test[m], pred[m], values))
    out = {"oa": 100 * s["oa"], "aa": 100 * s["aa"], "kappa": 100 * s["kappa"]}
    out.update(extra or {})
    return out


def _new_fields(pred: np.ndarray, scene: dict, train: np.ndarray, test: np.ndarray) -> float | None:
    if "fields" not in scene:
        return None
    sampled = np.unique(scene["fields"][train > 0])
    m = (test > 0) & ~np.isin(scene["fields"], sampled)
    return float(100 * (pred[m] == test[m]).mean()) if m.any() else None


#: TrainingParams of the default's trainings (--training-input, --window): whole scene or windows (issue 15).
TRAINING_INPUT: dict = {}
#: cross_validate_blend's rssgl_folds (--rssgl-folds; None: the engine's RSSGL_FOLDS).
CV_OPTIONS: dict = {}


def first_fold_record(kept: dict) -> dict:
    """The candidates scored on the first cross-validation fold's held-out pixels alone (both temperatures fitted
    on them), as ``cross_validation.rssgl_cannot_win`` sees them: recorded by a run that trains RSSGL on every fold, they
    give the choice of the adaptive cross-validation exactly (benchmarks/blend_rule.py --early)."""
    from rssgl_qgis.core.training import cross_validation

    if kept.get("rssgl") is None or kept.get("spectral") is None or "fold" not in kept:
        return {}
    first = kept["fold"] == kept["fold"].min()
    if kept["rssgl"].shape[1] != kept["fold"].size:
        return {}
    cands = cross_validation._scored(kept["rssgl"][:, first], kept["spectral"][:, first], kept["reference"][first],
                             [int(v) for v in kept["classes"]], kept["sample"][first])[0]
    return {"fold1_cv": {f"{c.weight:g}": 100 * c.summary["oa"] for c in cands},
            "fold1_cv_log_loss": {f"{c.weight:g}": c.log_loss for c in cands},
            "fold1_cv_gain_se": {f"{c.weight:g}": c.gain_se for c in cands},
            "fold1_cannot_win": cross_validation.rssgl_cannot_win(cands)}


def run_rssgl(scene, train, test, groups, seed: int, device: str, iterations: int, with_paper: bool = True,
              dump: str = "") -> dict[str, dict]:
    """default / rssgl / spectral / blend from one final training (+ the cross-validation) and paper."""
    import torch

    from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams
    from rssgl_qgis.core.training.cross_validation import (
        BLEND_CANDIDATES,
        DEFAULT_BLEND,
        FALLBACK,
        PoolSettings,
        cross_validate_blend,
    )

    cube, valid = scene["cube"], scene["valid"]
    out: dict[str, dict] = {}

    def make(most: int = iterations):
        return RssglClassifier(params=TrainingParams(device=device, seed=seed, iterations=most, **TRAINING_INPUT))

    fold_iterations = CV_OPTIONS.get("fold_iterations") or iterations  # --fold-iterations: the folds only (issue 29)
    t0 = time.perf_counter()
    kept: dict = {}
    choice = cross_validate_blend(lambda: make(fold_iterations), cube, valid, train, groups, CV_FOLDS, seed=seed, keep_pixels=kept,
                                  rssgl_folds=CV_OPTIONS.get("rssgl_folds"))
    t_cv = time.perf_counter() - t0
    t1 = time.perf_counter()
    clf = make().fit(cube, train, valid=valid)
    t_fit = time.perf_counter() - t1
    # no fold possible (one sample per class): no evidence, RSSGL gets no vote, as in Train RSSGL (workflow)
    pool = choice.pool if choice is not None else PoolSettings(weight=FALLBACK)
    pr, ps = clf.component_probabilities(cube, valid)
    pr_t, ps_t = torch.from_numpy(pr), torch.from_numpy(ps)

    def predicted(settings: PoolSettings) -> np.ndarray:
        return clf.classes_[settings.pooled(pr_t, ps_t, dim=0).argmax(0).numpy()]

    m = test > 0  # every candidate's test OA (for the study of the choice rule, benchmarks/blend_rule.py)
    tested = {f"{w:g}": float(100 * (predicted(dataclasses.replace(pool, weight=w))[m] == test[m]).mean())
              for w in BLEND_CANDIDATES}
    if dump and kept:  # the cross-validation's held-out pixels too
        kept["test_oa"] = np.array([tested[f"{w:g}"] for w in BLEND_CANDIDATES])
        kept["weights"] = np.array(BLEND_CANDIDATES)
        # both models' probabilities on the test pixels: a change of how they are pooled or calibrated can be
        # scored exactly on the test pixels without training again (benchmarks/blend_rule.py)
        kept["test_rssgl"], kept["test_spectral"] = pr[:, m].astype(np.float32), ps[:, m].astype(np.float32)
        kept["test_reference"] = test[m]  # kept["classes"] (the cross-validation's) are clf.classes_ too
        Path(dump).mkdir(parents=True, exist_ok=True)
        np.savez_compressed(Path(dump) / f"{scene.get('name', 'scene')}_{seed}.npz",
                            **{k: v for k, v in kept.items() if v is not None})
    for method, settings in (("default", pool), ("rssgl", PoolSettings()), ("spectral", PoolSettings(weight=0.0)),
                             ("blend", PoolSettings(weight=DEFAULT_BLEND))):
        pred = predicted(settings)
        extra = {"seconds": t_cv + t_fit, "fit_seconds": t_fit, "epochs": len(clf.history_)} if method == "default" \
            else {}
        if method == "default":
            extra["weight"] = pool.weight
            extra["temperature"] = pool.temperature
            extra["spectral_temperature"] = pool.spectral_temperature
            if choice is not None:
                extra["cv"] = {f"{c.weight:g}": 100 * c.summary["oa"] for c in choice.candidates}
                extra["cv_log_loss"] = {f"{c.weight:g}": c.log_loss for c in choice.candidates}
                extra["cv_gain_se"] = {f"{c.weight:g}": c.gain_se for c in choice.candidates}
                extra["test_by_weight"] = tested
                extra["rssgl_folds"] = choice.rssgl_folds
                extra["cv_fold_seconds"] = [float(v) for v in kept.get("fold_seconds", [])]
                extra.update(first_fold_record(kept))
        extra["new_fields"] = _new_fields(pred, scene, train, test)
        out[method] = _scores(pred, test, extra)
    if not with_paper:
        return out
    t2 = time.perf_counter()
    paper = RssglClassifier(params=TrainingParams(device=device, seed=seed, selection="paper", iterations=iterations)).fit(
        cube, train, valid=valid, eval_labels=test)
    pred = paper.predict(cube, valid)
    out["paper"] = _scores(pred, test, {"seconds": time.perf_counter() - t2,
                                        "new_fields": _new_fields(pred, scene, train, test)})
    return out


#: The SVM-RBF baseline's grid (a dzetsaka / EnMAP-Box user's grid search, on per-band standardised spectra).
SVM_GRID = {"C": [1, 10, 100, 1000, 10000], "gamma": [1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]}


def svm_search(y: np.ndarray, seed: int, jobs: int):
    """The grid-searched SVC-RBF baseline, unfitted: stratified k-fold, k = 2..5 as the smallest class allows."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    counts = np.bincount(y)
    folds = int(max(2, min(5, counts[counts > 0].min())))
    return GridSearchCV(SVC(kernel="rbf"), SVM_GRID, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                        n_jobs=jobs)


def pixel_split(scene: dict, protocol: str, seed: int) -> dict:
    """A split as per-pixel data: standardised spectra ``flat`` (pixels x bands, float64), the training and
    test pixel indices ``tr`` / ``te``, their class indices ``y`` / ``yt`` (0..K-1) and the training pixels'
    sample groups ``groups``; for the CPU studies of the spectral model."""
    from rssgl_qgis.core.data.normalization import band_statistics, normalize_cube

    train, test, groups = split(scene, protocol, seed)
    cube, valid = scene["cube"], scene["valid"]
    mean, std = band_statistics(cube, valid)
    flat = normalize_cube(cube, mean, std, valid).reshape(cube.shape[0], -1).T.astype(np.float64)
    classes = np.unique(train[train > 0])
    tr, te = np.flatnonzero(train.ravel() > 0), np.flatnonzero(test.ravel() > 0)
    return {"flat": flat, "valid": valid, "tr": tr, "te": te, "groups": groups.ravel()[tr], "mean": mean, "std": std,
            "y": np.searchsorted(classes, train.ravel()[tr]), "yt": np.searchsorted(classes, test.ravel()[te])}


def unlabelled_pool(d: dict, seed: int) -> np.ndarray:
    """Indices (into ``d["flat"]``) of the unlabelled pool Train RSSGL gives the spectral model's self-training:
    up to UNLABELLED_CAP valid pixels without a training label, drawn at random; ``d`` from ``pixel_split``."""
    from rssgl_qgis.core.spectral.spectral_model import UNLABELLED_CAP

    pool = np.setdiff1d(np.flatnonzero(d["valid"].ravel()), d["tr"])
    if pool.size > UNLABELLED_CAP:
        pool = np.sort(np.random.default_rng(seed).choice(pool, UNLABELLED_CAP, replace=False))
    return pool


#: EnMAP-Box's default classifier for its users (issue 28): StandardScaler + SVC (RBF), 3-fold grid search on
#: macro F1 over C and gamma in 1e-3 ... 1e3.
ENMAPBOX_GRID = {"svc__C": [10.0 ** k for k in range(-3, 4)], "svc__gamma": [10.0 ** k for k in range(-3, 4)]}


def enmapbox_svc(jobs: int):
    """The EnMAP-Box baseline, unfitted: raw spectra in, standardised inside the pipeline."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return GridSearchCV(Pipeline([("scaler", StandardScaler()), ("svc", SVC(kernel="rbf"))]), ENMAPBOX_GRID, cv=3,
                        scoring="f1_macro", n_jobs=jobs)


def run_baselines(scene, train, test, seed: int, jobs: int) -> dict[str, dict]:
    from sklearn.ensemble import RandomForestClassifier

    from rssgl_qgis.core.data.normalization import band_statistics, normalize_cube

    cube, valid = scene["cube"], scene["valid"]
    mean, std = band_statistics(cube, valid)
    flat = normalize_cube(cube, mean, std, valid).reshape(cube.shape[0], -1).T
    tr, te = np.flatnonzero(train.ravel() > 0), np.flatnonzero(valid.ravel())
    x, y = flat[tr], train.ravel()[tr]
    out = {}
    t0 = time.perf_counter()
    grid = svm_search(y, seed, jobs).fit(x, y)
    pred = np.zeros(train.size, dtype=np.int64)
    pred[te] = grid.predict(flat[te])
    pred = pred.reshape(train.shape)
    out["svm"] = _scores(pred, test, {"seconds": time.perf_counter() - t0, "params": grid.best_params_,
                                      "new_fields": _new_fields(pred, scene, train, test)})
    t0 = time.perf_counter()
    forest = RandomForestClassifier(500, n_jobs=jobs, random_state=seed).fit(x, y)
    pred = np.zeros(train.size, dtype=np.int64)
    pred[te] = forest.predict(flat[te])
    pred = pred.reshape(train.shape)
    out["rf"] = _scores(pred, test, {"seconds": time.perf_counter() - t0,
                                     "new_fields": _new_fields(pred, scene, train, test)})
    raw = np.asarray(cube, dtype=np.float64).reshape(cube.shape[0], -1).T
    t0 = time.perf_counter()
    import warnings

    with warnings.catch_warnings():  # a class with fewer than 3 pixels: scikit-learn warns, as for the user
        warnings.simplefilter("ignore")
        box = enmapbox_svc(jobs).fit(raw[tr], y)
    pred = np.zeros(train.size, dtype=np.int64)
    pred[te] = box.predict(raw[te])
    pred = pred.reshape(train.shape)
    out["enmapbox"] = _scores(pred, test, {"seconds": time.perf_counter() - t0, "params": box.best_params_,
                                           "new_fields": _new_fields(pred, scene, train, test)})
    return out


def run_cell(task: tuple) -> dict:
    name, protocol, seed, data, device, jobs, iterations, methods, dump, training_input = task
    import torch

    training_input = dict(training_input)
    CV_OPTIONS.update(training_input.pop("_cv", {}))
    TRAINING_INPUT.update(training_input)  # a spawned worker starts from the module's defaults

    torch.set_num_threads(jobs)
    scene = load_scene(name, Path(data), seed)
    train, test, groups = split(scene, protocol, seed)
    t0 = time.perf_counter()
    scene["name"] = f"{name}_{protocol}"
    results = run_rssgl(scene, train, test, groups, seed, device, iterations, "paper" in methods, dump)
    if "svm" in methods:
        results.update(run_baselines(scene, train, test, seed, jobs))
    row = {"scene": name, "protocol": protocol, "seed": seed, "training_input": dict(training_input),
           "train_pixels": int((train > 0).sum()),
           "test_pixels": int((test > 0).sum()), "results": results, "wall": time.perf_counter() - t0}
    print(f"{name:16s} {protocol:8s} seed {seed}: " + ", ".join(
        f"{m} {results[m]['oa']:.2f}" for m in METHODS if m in results), flush=True)
    return row


# -------------------------------------------------------------------------------------------- summary
def merge_rows(runs: list[list[dict]]) -> list[dict]:
    """Rows of several runs; for the same (scene, protocol, seed), later runs' methods replace earlier ones."""
    merged: dict[tuple, dict] = {}
    for rows in runs:
        for r in rows:
            key = (r["scene"], r["protocol"], r["seed"])
            if key in merged:
                merged[key]["results"].update(r["results"])
            else:
                merged[key] = json.loads(json.dumps(r))
    return list(merged.values())


def paired(rows: list[dict], baseline: str) -> str:
    """The default minus ``baseline`` seed by seed: its standard error over the seeds and the seeds won, so a
    verdict says how far the split noise reaches (on EnMAP with 5 pixels per class one split moves the
    difference by 5-10 points)."""
    diff = np.array([r["results"]["default"]["oa"] - r["results"][baseline]["oa"] for r in rows
                     if "default" in r["results"] and baseline in r["results"]], dtype=float)
    if diff.size < 2:
        return ""
    se = diff.std(ddof=1) / np.sqrt(diff.size)
    return f"; standard error of the paired difference {se:.2f}, won on {int((diff >= 0).sum())} of {diff.size} seeds"


def summarise(rows: list[dict]) -> str:
    """The markdown table: mean +- std (ddof 0) over the seeds of each scene x protocol (methods no row ran are
    left out), and each cell against the targets: the default at least the best baseline and at least its own
    spectral model - 0.3 (issue 28)."""
    cells: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        cells.setdefault((r["scene"], r["protocol"]), []).append(r)
    methods = [m for m in METHODS if any(m in r["results"] for r in rows)]
    lines = ["| scene | protocol | seeds | train px | " + " | ".join(methods) + " | default AA | default kappa | "
             "default s (GPU, shared) | weights chosen |",
             "|---|---|---|---|" + "---|" * (len(methods) + 4)]
    verdicts = []
    for (scene, protocol), rs in cells.items():
        def stat(method, key="oa", rs=rs):
            v = np.array([r["results"][method][key] for r in rs if method in r["results"]], dtype=float)
            return (v.mean(), v.std()) if v.size else (float("nan"), float("nan"))
        cols = []
        for m in methods:
            mu, sd = stat(m)
            cols.append(f"{mu:.2f} +- {sd:.2f}")
        aa, kp, sec = stat("default", "aa"), stat("default", "kappa"), stat("default", "seconds")
        weights = ", ".join(f"{r['results']['default']['weight']:g}" for r in rs if "default" in r["results"])
        lines.append(f"| {scene} | {protocol} | {len(rs)} | {np.mean([r['train_pixels'] for r in rs]):.0f} | "
                     + " | ".join(cols) + f" | {aa[0]:.2f} | {kp[0]:.2f} | {sec[0]:.1f} | {weights} |")
        d, spectral = stat("default"), stat("spectral")
        baselines = {m: stat(m) for m in ("svm", "rf", "enmapbox") if m in methods}
        if not baselines:  # a run of the default alone: against its spectral model only
            verdicts.append(f"- {scene} {protocol}: default {d[0]:.2f} +- {d[1]:.2f}; vs its spectral model "
                            f"{d[0] - spectral[0]:+.2f} (" + ("met" if d[0] >= spectral[0] - 0.3 else "NOT met") + ")")
            continue
        name, best = max(baselines.items(), key=lambda kv: -np.inf if np.isnan(kv[1][0]) else kv[1][0])
        ok = d[0] >= best[0] and d[1] <= best[1] + 0.5
        verdicts.append(f"- {scene} {protocol}: default {d[0]:.2f} +- {d[1]:.2f} vs best baseline ({name}) {best[0]:.2f} "
                        f"+- {best[1]:.2f}: {'met' if ok else 'NOT met'} ({d[0] - best[0]:+.2f}"
                        + paired(rs, name) + f"); vs its spectral model {d[0] - spectral[0]:+.2f} ("
                        + ("met" if d[0] >= spectral[0] - 0.3 else "NOT met") + ")")
    synth = [r for r in rows if r["scene"] == "synthetic"]
    if synth:
        lines.append("")
        lines.append("Synthetic scene, fields without a training polygon (OA, mean +- std): " + ", ".join(
            f"{m} {np.mean([r['results'][m]['new_fields'] for r in synth]):.2f} +- "
            f"{np.std([r['results'][m]['new_fields'] for r in synth]):.2f}" for m in METHODS
            if all(m in r["results"] for r in synth)))
    return "\n".join(lines + [""] + verdicts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=".data/suite")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--scenes", default=",".join(SCENE_PROTOCOLS))
    ap.add_argument("--protocols", default="", help="only these protocols (comma-separated); default all")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=600, help="most iterations per training (the default's)")
    ap.add_argument("--jobs", type=int, default=2, help="CPU threads per worker")
    ap.add_argument("--json", default="")
    ap.add_argument("--methods", default="default,paper,svm",
                    help="'default' (with rssgl/spectral/blend), 'paper', 'svm' (with rf); a rerun of some "
                         "methods is merged over an earlier file by --summarise")
    ap.add_argument("--training-input", default="auto", help="the default's training input: auto, whole, windows")
    ap.add_argument("--window", default="", help="core:halo of training windows (default: the engine's)")
    ap.add_argument("--rssgl-folds", default="", help="the cross-validation's RSSGL folds: all, adaptive, none "
                                                       "(default: the engine's cross_validation.RSSGL_FOLDS)")
    ap.add_argument("--fold-iterations", type=int, default=0,
                    help="most iterations of RSSGL in the cross-validation's folds (0: --iterations, the product's)")
    ap.add_argument("--distill", type=float, default=None,
                    help="the default's distillation share (TrainingParams.distill_share; 0 = off; default: the product's)")
    ap.add_argument("--dump", default="", help="a folder: each cell's cross-validated pixels, both models' test-pixel "
                                               "probabilities and candidates' test "
                                               "OA (.npz), to study the choice rule (benchmarks/blend_rule.py)")
    ap.add_argument("--summarise", default="",
                    help="print the table of earlier --json files (comma-separated; a later file's methods "
                         "replace an earlier file's for the same scene, protocol and seed) and exit")
    args = ap.parse_args(argv)
    if args.summarise:
        print(summarise(merge_rows([json.loads(Path(f).read_text())["rows"] for f in args.summarise.split(",")])))
        return 0
    TRAINING_INPUT["training_input"] = args.training_input
    if args.distill is not None:
        TRAINING_INPUT["distill_share"] = args.distill
    if args.window:
        TRAINING_INPUT["window_core"], TRAINING_INPUT["window_halo"] = (int(v) for v in args.window.split(":"))
    data = Path(args.data)
    cv_options = {"rssgl_folds": args.rssgl_folds} if args.rssgl_folds else {}
    if args.fold_iterations:
        cv_options["fold_iterations"] = args.fold_iterations
    CV_OPTIONS.update(cv_options)
    seeds = [int(s) for s in args.seeds.split(",")]
    only = set(filter(None, args.protocols.split(",")))
    methods = set(args.methods.split(","))
    tasks = []
    for name in args.scenes.split(","):
        if name != "synthetic" and not (data / f"{name}.npz").exists():
            print(f"{name}: no {data / (name + '.npz')}, skipped")
            continue
        for protocol in SCENE_PROTOCOLS[name]:
            if only and protocol not in only:
                continue
            tasks += [(name, protocol, s, str(data), args.device, args.jobs, args.iterations,
                       methods, args.dump, {**TRAINING_INPUT, "_cv": cv_options}) for s in seeds]
    tasks.sort(key=lambda t: t[1] not in ("tiles", "blocks"))  # the longest cells first
    started = time.perf_counter()
    rows: list[dict] = []

    def save() -> None:  # after every cell, so a run cut short still leaves its rows
        if args.json:
            Path(args.json).write_text(json.dumps({"argv": sys.argv, "seconds": time.perf_counter() - started,
                                                   "workers": args.workers, "rows": rows}, indent=1, default=float))

    if args.workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(args.workers) as pool:
            for row in pool.imap_unordered(run_cell, tasks, chunksize=1):
                rows.append(row)
                save()
    else:
        for t in tasks:
            rows.append(run_cell(t))
            save()
    print(summarise(rows))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    raise SystemExit(main())
