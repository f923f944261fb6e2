"""How hard the synthetic parcel scene is: per-pixel, neighbourhood and parcel baselines, and RSSGL.

Generates scenes with rssgl_qgis.core.data.synthetic and prints, per seed and training percentage, the
accuracy of nearest class mean and Gaussian naive Bayes on pixels, on 7 x 7 windows and on parcel means
(the "parcel oracle"), and with ``--rssgl N`` RSSGL trained for N iterations. The table in
core/data/synthetic.py's docstring was made with it:

    python benchmarks/synthetic_difficulty.py --seeds 0,2 --percent 1,5 --rssgl 600 --device cuda
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rssgl_qgis.core.data.sampling import percent_split  # noqa: E402
from rssgl_qgis.core.data.synthetic import make_synthetic_scene, pixel_baselines  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: generate scenes and print how hard they are for per-pixel, neighbourhood and RSSGL models.

    With ``--rssgl N`` RSSGL is trained for N iterations on the engine's own split
    (``core.data.sampling.percent_split``, seed 2333) and the baselines use that same split.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--bands", type=int, default=120)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--percent", default="1,5", help="training percentages (default 1,5)")
    parser.add_argument("--rssgl", type=int, default=0, metavar="ITERATIONS",
                        help="also train RSSGL for this many iterations (0 = no; needs torch)")
    parser.add_argument("--device", default="auto", help="device for --rssgl: auto, cuda or cpu")
    args = parser.parse_args(argv)
    print("seed  size  bands  gen_s  train%  n_train  NCM    GNB    NCM-7x7  GNB-7x7  NCM-parcel  GNB-parcel"
          + ("  RSSGL  train_s" if args.rssgl else ""))
    for seed in (int(s) for s in args.seeds.split(",")):
        t0 = time.perf_counter()
        scene = make_synthetic_scene(seed, args.size, args.size, args.bands, args.classes)
        gen = time.perf_counter() - t0
        for pct in (float(p) for p in args.percent.split(",")):
            extra = ""
            if args.rssgl:
                from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams

                train, test = percent_split(scene.labels, pct, seed=2333)
                t1 = time.perf_counter()
                params = TrainingParams(iterations=args.rssgl, device=args.device)
                predicted = RssglClassifier(params=params).fit(scene.cube, train).predict(scene.cube)
                scored = test > 0
                extra = f"  {(predicted[scored] == test[scored]).mean():.3f}  {time.perf_counter() - t1:.1f}"
                r = pixel_baselines(scene, train_labels=train)
            else:
                r = pixel_baselines(scene, pct, seed)
            print(f"{seed:<5} {args.size:<5} {args.bands:<6} {gen:<6.2f} {pct:<7g} {r['n_train']:<8} "
                  f"{r['ncm']:.3f}  {r['gnb']:.3f}  {r['ncm_window']:.3f}    {r['gnb_window']:.3f}    "
                  f"{r['ncm_parcel']:.3f}       {r['gnb_parcel']:.3f}" + extra)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
