"""Classification where RSSGL has no vote: the per-pixel fast path against the pooled path, on one scene (issue 29).

Whenever the cross-validation finds no evidence for RSSGL (core.training.cross_validation.FALLBACK), the pool
gives RSSGL weight 0 and the map is the spectral model's alone. Before issue 29 classification still ran the
whole RSSGL network on every tile (halos, statistics passes) and threw its probabilities away; now it classifies
per-pixel blocks with the spectral model only (core/prediction/tile_predictor.py ``spectral_only``). This script
trains one model (default architecture, a few iterations: the network's cost does not depend on how well it is
trained), sets its pool to weight 0 and classifies the same scene both ways with predict_array_tiled:

* baseline: ``TilePredictor.per_pixel = False`` (the network runs as before, its result is not used);
* fast path: the default.

Printed for each: wall seconds, Mpixel/min, the tiles, halo and statistics passes used; then the speed-up,
whether the labels are identical and the largest probability difference. Also printed: the seconds to fit
the stage-one model (normalisation + spectral model, RssglClassifier.fit_spectral_only) against the RSSGL
training of ``--iterations`` iterations. Timings on a shared 2-core machine are upper bounds.

    python benchmarks/bench_fast_path.py --size 256 --bands 60 --iterations 1 --device cpu
    python benchmarks/bench_fast_path.py --size 256 --bands 60 --iterations 1 --tile 128 --device cpu
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rssgl_qgis.core.data.sampling import percent_split  # noqa: E402
from rssgl_qgis.core.data.synthetic import make_synthetic_scene  # noqa: E402
from rssgl_qgis.core.network.device import set_cpu_threads  # noqa: E402
from rssgl_qgis.core.prediction.inference import predict_array_tiled  # noqa: E402
from rssgl_qgis.core.prediction.tile_predictor import TilePredictor  # noqa: E402
from rssgl_qgis.core.spectral.pool import PoolSettings  # noqa: E402
from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams  # noqa: E402


def _classify(predictor: TilePredictor, cube: np.ndarray, valid: np.ndarray, tile: int | None
              ) -> tuple[dict, tuple]:
    t0 = time.perf_counter()
    labels, conf, proba, report = predict_array_tiled(predictor, cube, valid=valid, with_probabilities=True,
                                                      tile=tile)
    seconds = time.perf_counter() - t0
    facts = {"seconds": round(seconds, 2), "mpixel_per_min": round(cube.shape[1] * cube.shape[2] / 1e6 / seconds * 60, 2),
             "tiles": report.tiles, "tile": report.tile, "halo": report.halo, "scene_passes": report.scene_passes,
             "layerwise": report.layerwise}
    return facts, (labels, conf, proba)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="scene height and width (pixels)")
    parser.add_argument("--bands", type=int, default=60)
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--percent", type=float, default=1.0, help="training pixels per class (%%)")
    parser.add_argument("--iterations", type=int, default=10, help="RSSGL training iterations (cost only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tile", type=int, default=None, help="core tile size (default: the memory plan's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    if args.device == "cpu":
        set_cpu_threads()
    scene = make_synthetic_scene(seed=args.seed, height=args.size, width=args.size, bands=args.bands,
                                 n_classes=args.classes)
    cube, labels = scene.cube, scene.labels
    valid = np.isfinite(cube).all(axis=0)
    train, _ = percent_split(labels, args.percent, seed=args.seed)
    params = TrainingParams(iterations=args.iterations, epoch_iterations=min(10, args.iterations), seed=args.seed,
                            device=args.device, selection="loss")
    t0 = time.perf_counter()
    stage_one = RssglClassifier(params=params).fit_spectral_only(cube, train, valid=valid)
    stage_one_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    clf = RssglClassifier(params=params).fit(cube, train, valid=valid)
    rssgl_seconds = time.perf_counter() - t0
    clf.use_pool(PoolSettings(weight=0.0))  # what the cross-validation's FALLBACK gives

    slow = TilePredictor.from_classifier(clf)
    slow.per_pixel = False
    baseline, (labels_b, conf_b, proba_b) = _classify(slow, cube, valid, args.tile)
    fast, (labels_f, conf_f, proba_f) = _classify(TilePredictor.from_classifier(clf), cube, valid, args.tile)
    result = {
        "scene": f"synthetic {args.size} x {args.size} x {args.bands}, {args.classes} classes, seed {args.seed}",
        "device": clf.device_description_, "load_average": os.getloadavg()[0],
        "baseline_pooled_path": baseline, "fast_path": fast,
        "speed_up": round(baseline["seconds"] / max(fast["seconds"], 1e-9), 1),
        "labels_identical": bool(np.array_equal(labels_b, labels_f)),
        "max_probability_difference": float(np.abs(proba_b - proba_f).max()),
        "max_confidence_difference": float(np.abs(conf_b - conf_f).max()),
        "fit_seconds": {"stage_one_spectral_model": round(stage_one_seconds, 2),
                        f"rssgl_{args.iterations}_iterations_and_spectral_model": round(rssgl_seconds, 2)},
        "stage_one_labels_equal_fast_path": bool(np.array_equal(stage_one.predict(cube, valid), labels_f)),
    }
    print(f"Scene: {result['scene']}; device {result['device']}; load average {result['load_average']:.1f}")
    for name, facts in (("baseline (pooled path, network runs)", baseline), ("fast path (per pixel)", fast)):
        print(f"  {name:38s} {facts['seconds']:8.2f} s  {facts['mpixel_per_min']:8.2f} Mpixel/min  "
              f"tiles {facts['tiles']} of {facts['tile']} + halo {facts['halo']}, passes {facts['scene_passes']}, "
              f"layer-wise {facts['layerwise']}")
    print(f"  speed-up x{result['speed_up']}; labels identical: {result['labels_identical']}; "
          f"max |p difference| {result['max_probability_difference']:.2e}")
    print(f"  fit: stage one {stage_one_seconds:.1f} s; RSSGL ({args.iterations} iterations) + spectral model "
          f"{rssgl_seconds:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
