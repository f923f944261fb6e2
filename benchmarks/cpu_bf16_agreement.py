"""CPU bf16 inference against float32 (issue 15): label agreement with float32 whole-scene prediction.

Three ways to classify: "whole" (one window, the reference), "tiled" (the CPU default for 128-px cores:
layer by layer over the whole scene where its maps fit, core/prediction/layerwise.py; under bf16 autocast that does
not apply and it is the next), "windows" (read windows of 128 + 2 x 32 px with 3 statistics passes).

Trains RSSGL alone on Salinas-A (1 % per class, seed 2333, CPU, defaults, "fit" selection) once, saves
it (``--model``), then classifies Salinas-A and a 3 x 3 mosaic of it (249 x 258) whole and tiled (128-px
cores, 32-px halo, 3 statistics passes: the CPU default) in float32 and under bf16 autocast, and prints
each map's agreement with the float32 whole-scene map and its time.

    python benchmarks/cpu_bf16_agreement.py --data .data/suite --model out/sa_cpu.rssgl
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.accuracy_suite import load_scene, split  # noqa: E402
from rssgl_qgis.core.prediction.inference import TilePredictor, predict_array_tiled  # noqa: E402
from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=".data/suite")
    ap.add_argument("--model", default="out/sa_cpu.rssgl")
    args = ap.parse_args()
    torch.set_num_threads(2)
    path = Path(args.model)
    scene = load_scene("salinas_a", Path(args.data), 2333)
    cube, valid = scene["cube"], scene["valid"]
    if path.exists():
        clf = RssglClassifier.load(str(path))
    else:
        train, _, _ = split(scene, "p1", 2333)
        t = time.time()
        clf = RssglClassifier(params=TrainingParams(device="cpu", seed=2333, spectral=False)).fit(cube, train, valid=valid)
        print("trained", f"{time.time() - t:.1f} s", flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        clf.save(str(path))
    p32 = TilePredictor.from_classifier(clf)
    p16 = TilePredictor.from_classifier(clf)
    p16.amp = True
    for name, c, v in (("salinas_a", cube, valid), ("mosaic3", np.tile(cube, (1, 3, 3)), np.tile(valid, (3, 3)))):
        out = {}
        for label, pr in (("fp32", p32), ("bf16", p16)):
            for mode, kw in (("whole", {"tile": 4096, "memory_limit_bytes": 16 << 30, "layerwise": False}),
                             ("tiled", {"tile": 128, "halo": 32}),  # the CPU default: layer by layer where it fits
                             ("windows", {"tile": 128, "halo": 32, "layerwise": False})):  # read windows + passes
                t = time.time()
                lab, _, _, rep = predict_array_tiled(pr, c, valid=v, **kw)
                out[label, mode] = lab
                print(name, label, mode, f"{time.time() - t:.1f}s", f"windows {rep.tiles}", f"layerwise {rep.layerwise}",
                      flush=True)
        ref = out["fp32", "whole"]
        for k, lab in out.items():
            print(name, k, "agreement with fp32 whole", f"{100 * (lab[v] == ref[v]).mean():.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
