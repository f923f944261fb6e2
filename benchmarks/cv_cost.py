"""What the cross-validation costs on a CPU: RSSGL trained on every fold ("all") against the adaptive cross-validation
(RSSGL's other folds skipped where the first fold rules it out, core/training/cross_validation.py), on a demo-sized synthetic scene.

    python benchmarks/cv_cost.py --mode all --threads 2 --json out/cv_all.json
    python benchmarks/cv_cost.py --mode adaptive --threads 2 --json out/cv_adaptive.json

Prints the cross-validation's and the final training's wall time, how many folds trained RSSGL, the pool chosen
and the map's OA on the labelled pixels outside the training polygons.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    import torch

    from rssgl_qgis.core.data.sampling import label_patches
    from rssgl_qgis.core.data.synthetic import make_synthetic_scene
    from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams
    from rssgl_qgis.core.training.cross_validation import cross_validate_blend

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="adaptive", choices=("all", "adaptive", "none"))
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--bands", type=int, default=60)
    ap.add_argument("--classes", type=int, default=6)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        s = make_synthetic_scene(seed, args.size, args.size, args.bands, args.classes)
        cube, valid = s.reflectance, s.valid
        train = s.polygon_labels.astype(np.int64)
        test = np.where(train > 0, 0, s.labels.astype(np.int64))
        torch.set_num_threads(args.threads)

        def make(seed=seed):
            return RssglClassifier(params=TrainingParams(device="cpu", seed=seed, iterations=args.iterations))

        t0 = time.perf_counter()
        choice = cross_validate_blend(make, cube, valid, train, label_patches(train), 3, seed=seed,
                                      rssgl_folds=args.mode)
        t_cv = time.perf_counter() - t0
        torch.set_num_threads(args.threads)  # fit resets the threads to every core
        t1 = time.perf_counter()
        clf = make().fit(cube, train, valid=valid)
        if choice is not None:
            clf.use_pool(choice.pool)
        t_fit = time.perf_counter() - t1
        m = test > 0
        oa = float(100 * (clf.predict(cube, valid)[m] == test[m]).mean())
        row = {"seed": seed, "mode": args.mode, "cv_seconds": t_cv, "fit_seconds": t_fit,
               "rssgl_folds": None if choice is None else choice.rssgl_folds,
               "weight": None if choice is None else choice.pool.weight, "oa": oa, "threads": args.threads}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"argv": sys.argv, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
