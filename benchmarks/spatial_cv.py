"""How honest is each accuracy estimate? Pixel validation vs cross-validation over whole polygons vs the map.

    python benchmarks/spatial_cv.py --device cuda --iterations 40,200,600 --json out.json
    python benchmarks/spatial_cv.py --device cpu --size 48 --bands 60 --classes 6 --per-class 3 --iterations 40

On a synthetic parcel scene (core/data/synthetic.py) whose training samples are polygons, each inside one
field, this trains RSSGL as the plugin does (validation pixels carved from the training polygons)
and reports, per number of training iterations:

* ``val``: the validation OA the training report shows (pixels of the same polygons: optimistic);
* ``cv``: k-fold cross-validation over whole polygons (core.data.sampling.group_folds, what Train RSSGL
  does with "Cross-validation folds"): each polygon tested by a model that never saw it;
* ``map same field`` / ``map new fields``: the final model's accuracy on the labelled pixels outside
  the polygons, in fields that hold a training polygon and in fields that hold none (the truth).

If ``cv`` tracks ``map new fields``, the cross-validation estimate can be trusted for places without
samples; the gap between ``val`` and both says how much the pixel-level estimate overstates.

``--salinas-a DIR`` adds the real Salinas-A scene (../shared/data layout): the paper's protocol
(``percent`` % random pixels per class for training, every other labelled pixel for testing) against
a spatially disjoint one: the scene's labelled pixels are cut into ``--block`` x ``--block`` pixel
blocks per class, dealt into folds (group_folds), and each fold's blocks are tested by a model
trained on ``percent`` % random pixels of the other folds' blocks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rssgl_qgis.core.data.sampling import group_folds  # noqa: E402
from rssgl_qgis.core.data.synthetic import make_synthetic_scene  # noqa: E402
from rssgl_qgis.core.network.device import set_cpu_threads  # noqa: E402
from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams  # noqa: E402


def _fit(cube, labels, valid, iterations: int, device: str, seed: int) -> RssglClassifier:
    params = TrainingParams(iterations=iterations, device=device, seed=seed)
    return RssglClassifier(config_overrides={"kernel": (3, 5, 5)}, params=params).fit(cube, labels, valid=valid)


def _oa(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float | None:
    return round(float((pred[mask] == truth[mask]).mean() * 100), 2) if mask.any() else None


def run(scene, iterations: int, folds: int, device: str, seed: int) -> dict:
    cube, valid, truth = scene.reflectance, scene.valid, scene.labels
    samples = scene.polygon_labels
    groups = np.where(samples > 0, scene.field_ids + 1, 0)  # one polygon per field: the field is the group
    t0 = time.perf_counter()
    clf = _fit(cube, samples, valid, iterations, device, seed)
    pred = clf.predict(cube, valid)
    polygon_fields = np.unique(scene.field_ids[samples > 0])
    reference = (truth > 0) & (samples == 0) & valid
    same = reference & np.isin(scene.field_ids, polygon_fields)
    fold_map = group_folds(samples, groups, folds, seed=seed)
    hits = tested = 0
    for fold in range(1, int(fold_map.max()) + 1):
        held_out = fold_map == fold
        model = _fit(cube, np.where(held_out, 0, samples), valid, iterations, device, seed)
        hits += int((model.predict(cube, valid)[held_out] == samples[held_out]).sum())
        tested += int(held_out.sum())
    return {
        "iterations": iterations, "folds": int(fold_map.max()),
        "val_oa": round(100 * float(clf.validation_metrics_.get("val_oa", float("nan"))), 2),
        "cv_oa": round(100 * hits / max(tested, 1), 2), "cv_pixels": tested,
        "map_same_field_oa": _oa(pred, truth, same), "map_new_fields_oa": _oa(pred, truth, reference & ~same),
        "map_oa": _oa(pred, truth, reference), "new_field_pixels": int((reference & ~same).sum()),
        "polygons": int(np.unique(groups[groups > 0]).size), "fields": int(np.unique(scene.field_ids[truth > 0]).size),
        "seconds": round(time.perf_counter() - t0, 1), "device": clf.device_,
    }


def salinas_a(data: str, iterations: int, folds: int, block: int, percent: float, device: str, seed: int) -> dict:
    from rssgl_qgis.core.data.datasets import load_scene
    from rssgl_qgis.core.data.sampling import percent_split

    scene = load_scene("salinas_a", data)
    cube, labels = scene.cube, scene.labels
    t0 = time.perf_counter()
    train, test = percent_split(labels, percent, seed=seed)
    random_oa = _oa(_fit(cube, train, None, iterations, device, seed).predict(cube), labels, test > 0)
    rows, cols = np.indices(labels.shape)
    blocks = np.where(labels > 0, (rows // block) * (labels.shape[1] // block + 1) + cols // block + 1, 0)
    fold_map = group_folds(labels, blocks, folds, seed=seed)
    hits = tested = 0
    for fold in range(1, int(fold_map.max()) + 1):
        held_out = fold_map == fold
        fold_train, _ = percent_split(np.where(fold_map == fold, 0, labels), percent, seed=seed)
        pred = _fit(cube, fold_train, None, iterations, device, seed).predict(cube)
        hits += int((pred[held_out] == labels[held_out]).sum())
        tested += int(held_out.sum())
    return {"scene": "salinas_a", "iterations": iterations, "percent": percent, "block": block,
            "folds": int(fold_map.max()), "random_split_oa": random_oa, "random_test_pixels": int((test > 0).sum()),
            "spatial_cv_oa": round(100 * hits / max(tested, 1), 2), "spatial_test_pixels": tested,
            "untested_pixels": int(((labels > 0) & (fold_map == 0)).sum()), "seconds": round(time.perf_counter() - t0, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--bands", type=int, default=120)
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--per-class", type=int, default=2, help="training polygons per class (one per field)")
    ap.add_argument("--scene-seed", type=int, default=0)
    ap.add_argument("--iterations", default="40,200,600")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2333)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--salinas-a", help="data folder holding salinas_a/ (adds the real-scene comparison)")
    ap.add_argument("--block", type=int, default=16, help="spatial block size for --salinas-a")
    ap.add_argument("--percent", type=float, default=1.0, help="training pixels per class for --salinas-a (%%)")
    ap.add_argument("--synthetic", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    set_cpu_threads()
    rows = []
    if args.salinas_a:
        print(f"{'scene':>10} {'iter':>5} {'%':>4} {'block':>5} {'random-split OA':>15} {'spatial CV OA':>13} "
              f"{'folds':>5} {'untested px':>11} {'sec':>6}")
        for iterations in (int(v) for v in args.iterations.split(",") if v):
            row = salinas_a(args.salinas_a, iterations, args.folds, args.block, args.percent, args.device, args.seed)
            rows.append(row)
            print(f"{'salinas_a':>10} {iterations:>5} {args.percent:>4} {args.block:>5} {row['random_split_oa']!s:>15} "
                  f"{row['spatial_cv_oa']:>13} {row['folds']:>5} {row['untested_pixels']:>11} {row['seconds']:>6}",
                  flush=True)
    if not args.synthetic:
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
        return 0
    scene = make_synthetic_scene(args.scene_seed, height=args.size, width=args.size, bands=args.bands,
                                 n_classes=args.classes, polygons_per_class=args.per_class)
    print(f"# synthetic {args.size}^2 x {args.bands}, {args.classes} classes, {args.per_class} polygons per class")
    print(f"{'iter':>5} {'val OA':>7} {'CV OA':>7} {'map same field':>15} {'map new fields':>15} {'map OA':>7} "
          f"{'polygons':>8} {'fields':>6} {'sec':>6}")
    for iterations in (int(v) for v in args.iterations.split(",") if v):
        row = run(scene, iterations, args.folds, args.device, args.seed)
        rows.append(row)
        print(f"{iterations:>5} {row['val_oa']:>7} {row['cv_oa']:>7} {row['map_same_field_oa']!s:>15} "
              f"{row['map_new_fields_oa']!s:>15} {row['map_oa']!s:>7} {row['polygons']:>8} {row['fields']:>6} "
              f"{row['seconds']:>6}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
