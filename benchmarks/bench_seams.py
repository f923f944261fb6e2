"""Seams: how much does tiled RSSGL prediction differ from whole-scene prediction?

RSSGL is not a local operator: GroupNorm and the channel attention's global pooling use statistics
of the whole input, so a tile sees slightly different statistics than the whole scene. This script
measures, for several (tile, halo) pairs, the share of pixels whose class equals the whole-scene
prediction ("agreement") and the overall accuracy of both maps on the held-out test pixels.

Scenes:
* the real Salinas-A cube (83x86x204, 6 classes; ../shared/data), split 1 % per class (seed 2333,
  as in the paper; the rest is the test set), small tiles (32/48/64) since the scene is small;
* a synthetic parcel scene (core/data/synthetic.py) of ``--synthetic-size`` pixels, classified by a
  model trained on a separate, smaller synthetic scene with the same bands and classes. Whole-scene
  prediction of a large scene needs ~27 KB per pixel (2048^2 = 113 GB), so on a 2-core CPU use
  e.g. 320 and on one H100 1024-1536.

* optionally (``--mosaic N``) an N x N mirrored mosaic of Salinas-A: real spectra in a scene larger
  than the tiles (the test pixels are mirrored too, so its OA is not an independent accuracy).

Examples:
    python benchmarks/bench_seams.py --data ../shared/data --iterations 300 --synthetic-size 320 --device cpu
    python benchmarks/bench_seams.py --model salinas_a.rssgl --synthetic-size 1024 --device cuda --json out.json
    python benchmarks/bench_seams.py --data .data --device cuda --synthetic-size 2048 \
        --synthetic-pairs 256:32,512:32,512:64 --scene-passes 0,2,3 --scene-sample 1,4   # one H100/H200
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rssgl_qgis.core.data.datasets import load_scene  # noqa: E402
from rssgl_qgis.core.data.sampling import percent_split  # noqa: E402
from rssgl_qgis.core.network.device import set_cpu_threads  # noqa: E402
from rssgl_qgis.core.prediction.inference import predict_array_tiled  # noqa: E402
from rssgl_qgis.core.prediction.statistics_passes import DEFAULT_SCENE_SAMPLE, statistics_tiles  # noqa: E402
from rssgl_qgis.core.prediction.tiling import plan_tiles  # noqa: E402
from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams  # noqa: E402

#: --scene-passes / --scene-sample: the values of predict_tiled(scene_passes=..., scene_sample=...)
#: compared for every (tile, halo)
SCENE_PASSES: list[int] = [0, 3]
SCENE_SAMPLES: list[int] = [DEFAULT_SCENE_SAMPLE]


def _pairs(text: str) -> list[tuple[int, int]]:
    """'32:8,48:16' -> [(32, 8), (48, 16)]."""
    out = []
    for item in text.split(","):
        tile, halo = item.split(":")
        out.append((int(tile), int(halo)))
    return out


def _oa(pred: np.ndarray, test: np.ndarray) -> float:
    on = test > 0
    return float((pred[on] == test[on]).mean() * 100.0)


def mirrored_mosaic(cube: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """An n x n mirrored mosaic of a (B, H, W) cube and its (H, W) labels: real spectra, a larger scene."""
    _, h, w = cube.shape
    pad = ((0, (n - 1) * h), (0, (n - 1) * w))
    return np.pad(cube, ((0, 0), *pad), mode="symmetric"), np.pad(labels, pad, mode="symmetric")


def train(cube, labels, *, iterations: int, device: str, kernel, seed: int = 2333, percent: float = 1.0, valid=None):
    """Train RSSGL with the paper's sampling (percent per class) and honest validation selection."""
    train_labels, test = percent_split(labels, percent, seed=seed)
    params = TrainingParams(iterations=iterations, device=device, seed=seed)
    t0 = time.perf_counter()
    clf = RssglClassifier(config_overrides={"kernel": kernel}, params=params).fit(cube, train_labels, valid=valid)
    return clf, test, time.perf_counter() - t0


def load_or_train(args, cube, labels, *, what: str, percent: float = 1.0, valid=None):
    """The model of ``args.model`` when given (its test pixels: the paper split of ``labels``), else one
    trained here for ``args.iterations`` (saved to ``args.save_model`` when asked); returns (clf, test)."""
    if args.model:
        return RssglClassifier.load(args.model, device=args.device), percent_split(labels, percent, seed=2333)[1]
    clf, test, seconds = train(cube, labels, iterations=args.iterations, device=args.device, kernel=(3, 5, 5),
                               percent=percent, valid=valid)
    print(f"# trained a {what} model: {args.iterations} iterations in {seconds:.0f} s on {clf.device_}")
    if args.save_model:
        clf.save(args.save_model)
    return clf, test


def compare(name: str, clf, cube, test, pairs, valid=None, batch=None) -> list[dict]:
    """Whole-scene vs tiled predictions for each (tile, halo); one result row per pair."""
    t0 = time.perf_counter()
    whole = clf.predict(cube, valid)
    whole_s = time.perf_counter() - t0
    oa_whole = _oa(whole, test)
    rows = []
    runs = [(pair, p, q) for pair in pairs for p in SCENE_PASSES for q in (SCENE_SAMPLES if p else [1])]
    for (tile, halo), passes, sample in runs:
        t0 = time.perf_counter()
        tiled, _, _, report = predict_array_tiled(clf, cube, valid=valid, tile=tile, halo=halo, batch=batch,
                                                  memory_limit_bytes=16 << 30, scene_passes=passes,
                                                  scene_sample=sample)
        seconds = time.perf_counter() - t0
        all_tiles = plan_tiles(cube.shape[1], cube.shape[2], report.tile, report.halo)
        stats_tiles = len(statistics_tiles(all_tiles, report.tile, 0, sample)) if report.scene_passes else 0
        ok = whole > 0
        agree = float((tiled[ok] == whole[ok]).mean() * 100.0)
        oa_tiled = _oa(tiled, test)
        row = dict(scene=name, height=cube.shape[1], width=cube.shape[2], tile=tile, halo=halo,
                   scene_passes=report.scene_passes, scene_sample=sample, stats_tiles=stats_tiles,
                   read=f"{report.read_shape[0]}x{report.read_shape[1]}", tiles=report.tiles,
                   agreement=round(agree, 3), oa_whole=round(oa_whole, 3), oa_tiled=round(oa_tiled, 3),
                   oa_diff=round(oa_tiled - oa_whole, 3), seconds=round(seconds, 2), whole_seconds=round(whole_s, 2))
        rows.append(row)
        print(f"{name:>14} {tile:>5} {halo:>5} {row['read']:>9} {report.tiles:>6} {report.scene_passes:>6} {stats_tiles:>6} {agree:>9.2f} "
              f"{oa_whole:>8.2f} {oa_tiled:>8.2f} {row['oa_diff']:>+7.2f} {seconds:>7.1f}", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--model", help="trained Salinas-A model (.rssgl); trained here when absent")
    ap.add_argument("--save-model", help="save the Salinas-A model trained here")
    ap.add_argument("--iterations", type=int, default=600, help="training iterations (600 = paper)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--salinas-pairs", default="32:8,32:16,32:32,48:8,48:16,48:32,64:8,64:16,64:32")
    ap.add_argument("--mosaic", type=int, default=0,
                    help="also a N x N mirrored mosaic of Salinas-A (real spectra, a scene larger than the tiles)")
    ap.add_argument("--mosaic-pairs", default="32:32,64:32,96:48,128:32")
    ap.add_argument("--synthetic-size", type=int, default=320, help="0 skips the synthetic scene")
    ap.add_argument("--synthetic-train-size", type=int, default=128)
    ap.add_argument("--synthetic-bands", type=int, default=100)
    ap.add_argument("--synthetic-model", help="synthetic model file: loaded when it exists, else trained and saved there")
    ap.add_argument("--synthetic-pairs", default="64:16,128:16,128:32,192:32,256:32")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--scene-passes", default="0,3",
                    help="whole-scene statistics passes to compare (0 = each window its own statistics)")
    ap.add_argument("--scene-sample", default=str(DEFAULT_SCENE_SAMPLE),
                    help="statistics passes look at every N-th tile of large rasters (comma list compares; 1 = all)")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    SCENE_PASSES[:] = [int(v) for v in args.scene_passes.split(",") if v]
    SCENE_SAMPLES[:] = [int(v) for v in args.scene_sample.split(",") if v]
    set_cpu_threads()
    print(f"{'scene':>14} {'tile':>5} {'halo':>5} {'read':>9} {'tiles':>6} {'passes':>6} {'seen':>6} {'agree%':>9} "
          f"{'OA whole':>8} {'OA tiled':>8} {'dOA':>7} {'sec':>7}")
    rows = []
    scene = None
    if args.data and Path(args.data, "salinas_a").is_dir():
        scene = load_scene("salinas_a", args.data)
    if scene is not None and scene.cube is not None:
        clf, test = load_or_train(args, scene.cube, scene.labels, what="Salinas-A")
        rows += compare("salinas_a", clf, scene.cube, test, _pairs(args.salinas_pairs), batch=args.batch)
        if args.mosaic > 1:
            cube, mtest = mirrored_mosaic(scene.cube, test, args.mosaic)
            rows += compare(f"salinas_a_x{args.mosaic}", clf, cube, mtest, _pairs(args.mosaic_pairs), batch=args.batch)
    else:
        print(f"# Salinas-A not found under {args.data}: skipped")
    if args.synthetic_size:
        from rssgl_qgis.core.data.synthetic import make_synthetic_scene

        if args.synthetic_model and Path(args.synthetic_model).exists():
            clf = RssglClassifier.load(args.synthetic_model, device=args.device)
            print(f"# synthetic model {args.synthetic_model} (trained elsewhere), on {clf.device_}")
        else:
            small = make_synthetic_scene(seed=1, height=args.synthetic_train_size, width=args.synthetic_train_size,
                                         bands=args.synthetic_bands)
            clf, _, secs = train(small.cube, small.labels, iterations=args.iterations, device=args.device,
                                 kernel=(3, 5, 5), percent=5.0, valid=small.valid)
            print(f"# trained synthetic model on {args.synthetic_train_size}^2: {secs:.0f} s on {clf.device_}")
            if args.synthetic_model:
                clf.save(args.synthetic_model)
        big = make_synthetic_scene(seed=2, height=args.synthetic_size, width=args.synthetic_size,
                                   bands=args.synthetic_bands)
        rows += compare(f"synthetic{args.synthetic_size}", clf, big.cube, big.labels,
                        _pairs(args.synthetic_pairs), valid=big.valid, batch=args.batch)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
