"""Why tiles disagree with whole-scene RSSGL: window statistics or missing context? (CPU experiment)

    python benchmarks/seams_statistics.py --data ../shared/data [--model sa.rssgl] [--iterations 60]
        [--mosaic 3] [--pairs 64:32,128:32,192:32] [--passes 3] [--device cpu] [--json out.json]
    python benchmarks/seams_statistics.py --synthetic 512 --iterations 60 --pairs 128:32,256:32 --passes 6

RSSGL's GroupNorm layers and channel-attention pooling use statistics of the WHOLE input. Tiled
inference (core/prediction/inference.py) gives each read window its own statistics, and docs/PERFORMANCE.md
shows that agreement with whole-scene prediction then depends on the window size, not the halo.
This experiment separates the two causes on a scene larger than the windows (an N x N mirrored
mosaic of the real Salinas-A cube, or with ``--synthetic N`` an N x N synthetic parcel scene classified
by a model trained on a separate 128 x 128 synthetic scene, as in bench_seams.py):

- ``local``: each window with its own statistics (what the plugin does);
- ``scene``: each window with the statistics of the whole-scene forward injected into every
  GroupNorm and channel-attention pooling ("oracle" statistics; what a multi-pass tiler that
  accumulates statistics over all tiles would reach at best).

If ``scene`` agrees with whole-scene prediction to >= 99.5 %, accumulating statistics over tiles
closes the seams and only the halo's context is left; if not, the receptive field beyond the
halo matters too. Prints one row per (tile, halo) with both agreements.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_seams import load_or_train, mirrored_mosaic  # noqa: E402
from rssgl_qgis.core.data.datasets import load_scene  # noqa: E402
from rssgl_qgis.core.data.normalization import normalize_cube  # noqa: E402
from rssgl_qgis.core.network.device import set_cpu_threads  # noqa: E402
from rssgl_qgis.core.network.model import PAD_MULTIPLE  # noqa: E402
from rssgl_qgis.core.prediction.scene_stats import SceneStatistics  # noqa: E402
from rssgl_qgis.core.prediction.statistics_passes import DEFAULT_SCENE_PASSES, stats_region  # noqa: E402
from rssgl_qgis.core.prediction.tiling import plan_tiles  # noqa: E402
from rssgl_qgis.core.training.classifier import RssglClassifier  # noqa: E402


def _padded(x: np.ndarray, device: torch.device) -> torch.Tensor:
    _, h, w = x.shape
    ph, pw = -h % PAD_MULTIPLE, -w % PAD_MULTIPLE
    return torch.from_numpy(np.pad(x, ((0, 0), (0, ph), (0, pw))))[None].to(device)


def _labels(logits: torch.Tensor) -> np.ndarray:
    return logits[0].argmax(0).cpu().numpy()


def compare(clf: RssglClassifier, cube: np.ndarray, test: np.ndarray, pairs,
            passes: int = DEFAULT_SCENE_PASSES, valid: np.ndarray | None = None) -> list[dict]:
    model = clf.model_.eval()
    x = normalize_cube(cube, clf.band_mean_, clf.band_std_, valid)  # invalid pixels 0, as in predict
    _, height, width = x.shape
    xp = _padded(x, next(model.parameters()).device)
    oracle = SceneStatistics()  # one recording pass over the whole padded scene: its own statistics
    with torch.no_grad(), oracle.attached(model):
        oracle.start_pass()
        oracle.set_regions([(0, xp.shape[-2], 0, xp.shape[-1])], xp.shape[-2:])
        whole = _labels(model(xp)[0][:, :, :height, :width])
        oracle.end_pass()
    on = test > 0
    if valid is not None:
        whole[~valid] = -1  # outside the scene's valid area: not compared
    values = np.asarray(clf.classes_)
    oa_whole = float((values[whole][on] == test[on]).mean() * 100)
    rows = []
    for tile, halo in pairs:
        preds = {k: np.zeros_like(whole) for k in ("local", "scene", *(f"pass{i + 1}" for i in range(passes)))}
        t0 = time.perf_counter()
        tiles = plan_tiles(height, width, tile, halo)
        windows = [xp[:, :, t.read.row:t.read.row + t.read.height, t.read.col:t.read.col + t.read.width]
                   for t in tiles]
        gathered = SceneStatistics()
        with torch.no_grad(), gathered.attached(model):
            for _ in range(passes):  # record with the window's own statistics, then with the previous pass's
                gathered.start_pass()
                for t, window in zip(tiles, windows, strict=True):
                    gathered.set_regions([stats_region(t, height, width)], window.shape[-2:])
                    model(window)
                gathered.end_pass()
                key = f"pass{gathered.passes}"
                for t, window in zip(tiles, windows, strict=True):
                    preds[key][t.core.slices] = _labels(model(window)[0])[t.core_in_read]
        for t, window in zip(tiles, windows, strict=True):
            core = t.core_in_read
            with torch.no_grad():
                preds["local"][t.core.slices] = _labels(model(window)[0])[core]
                with oracle.attached(model):
                    preds["scene"][t.core.slices] = _labels(model(window)[0])[core]
        row = {"tile": tile, "halo": halo, "read": f"{tiles[0].read.height}x{tiles[0].read.width}",
               "tiles": len(tiles), "oa_whole": round(oa_whole, 3), "seconds": round(time.perf_counter() - t0, 1)}
        for key, pred in preds.items():
            row[f"agreement_{key}"] = round(float((pred == whole)[whole >= 0].mean() * 100), 3)
            row[f"oa_{key}"] = round(float((values[pred][on] == test[on]).mean() * 100), 3)
        rows.append(row)
        print("  agreement after each pass: " + ", ".join(f"{row[f'agreement_pass{i + 1}']:.2f}" for i in range(passes)))
        last = f"pass{passes}"  # what the plugin uses with scene_passes = passes
        print(f"{tile:>5} {halo:>5} {row['read']:>9} {len(tiles):>6} {row['agreement_local']:>8.2f} "
              f"{row[f'agreement_{last}']:>8.2f} {row['agreement_scene']:>8.2f} "
              f"{oa_whole:>9.2f} {row['oa_local']:>9.2f} {row[f'oa_{last}']:>9.2f} {row['oa_scene']:>9.2f}", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--model", help="trained Salinas-A model (.rssgl); trained here (CPU) when absent")
    ap.add_argument("--save-model")
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--mosaic", type=int, default=3)
    ap.add_argument("--synthetic", type=int, default=0, help="N: an N x N synthetic scene instead of the mosaic")
    ap.add_argument("--synthetic-bands", type=int, default=100)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--pairs", default="64:32,128:32,192:32")
    ap.add_argument("--passes", type=int, default=DEFAULT_SCENE_PASSES, help="statistics passes over the tiles")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    set_cpu_threads()
    valid = None
    if args.synthetic:
        from rssgl_qgis.core.data.synthetic import make_synthetic_scene

        small = make_synthetic_scene(seed=1, height=128, width=128, bands=args.synthetic_bands)
        clf, _ = load_or_train(args, small.cube, small.labels, what="synthetic 128^2", percent=5.0, valid=small.valid)
        big = make_synthetic_scene(seed=2, height=args.synthetic, width=args.synthetic, bands=args.synthetic_bands)
        cube, mtest, valid = big.cube.astype(np.float32), big.labels, big.valid
        print(f"# scene: synthetic {args.synthetic} x {args.synthetic} x {args.synthetic_bands}")
    else:
        scene = load_scene("salinas_a", args.data)
        clf, test = load_or_train(args, scene.cube, scene.labels, what="Salinas-A")
        cube, mtest = mirrored_mosaic(scene.cube, test, args.mosaic)
        cube = cube.astype(np.float32)
        print(f"# scene: {args.mosaic} x {args.mosaic} mirrored mosaic of Salinas-A, {cube.shape[1]} x {cube.shape[2]}")
    print("agreement % with whole-scene prediction: local = each window's own statistics; gathered = statistics"
          f" gathered over the tiles in {args.passes} passes (core.prediction.scene_stats); oracle = the whole-scene forward's")
    print(f"{'tile':>5} {'halo':>5} {'read':>9} {'tiles':>6} {'local':>8} {'gathered':>8} {'oracle':>8} "
          f"{'OA whole':>9} {'OA local':>9} {'OA gath.':>9} {'OA oracle':>9}")
    rows = compare(clf, cube, mtest, [tuple(int(v) for v in p.split(":")) for p in args.pairs.split(",") if p],
                   args.passes, valid)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
