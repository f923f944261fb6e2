"""Window training against whole-scene training, in one run (issue 15).

Two measurements, each case in its own process (so peak host RSS is the case's own):

* ``salinas``: Salinas-A, 1 % per class (the paper's split), seeds 2333,1,2,3,4; RSSGL alone
  (no spectral model, "fit" selection, defaults otherwise) trained on the whole scene and on
  windows; OA / AA of whole-scene prediction on the test pixels, fit seconds.
* ``large``: a procedural raster (fields of 32 px, 6 classes, smooth spectra plus noise; generated
  window by window, so it never exists in memory) of 4096 x 4096 x 200 trained on windows, and one
  of 1024 x 1024 x 200 trained both ways (the whole-scene baseline cannot run at 4096^2: the memory
  model's estimate is printed instead). Samples: 40 random pixels per class spread over the raster.
  Printed: peak GPU memory (torch.cuda.max_memory_allocated), peak host RSS (ru_maxrss of the
  case's process), seconds per iteration (training time / iterations, statistics passes and
  evaluations included) and the seconds before training (the band-statistics pass, setup).

    python benchmarks/bench_window_training.py --data .data/suite --device cuda --json $OUT/windows.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class ProceduralRaster:
    """A (bands, height, width) float32 raster generated window by window (deterministic per pixel)."""

    def __init__(self, height: int, width: int, bands: int = 200, classes: int = 6, field: int = 32, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.height, self.width, self.bands, self.classes, self.field = height, width, bands, classes, field
        lam = np.linspace(0.0, 1.0, bands)
        centres = rng.uniform(0, 1, (classes, 4))
        self.ends = (0.3 + sum(0.15 * np.exp(-((lam[None] - centres[:, i : i + 1]) / 0.12) ** 2) for i in range(4))
                     ).astype(np.float32)  # (K, B) smooth spectra
        self.noise = rng.normal(0, 0.03, (128, 128, bands)).astype(np.float32)

    def classes_at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        fr, fc = rows // self.field, cols // self.field
        return ((fr * 7919 + fc * 104729 + fr * fc * 31) % self.classes).astype(np.int64)

    def __call__(self, win) -> np.ndarray:
        rows = np.arange(win.row, win.row + win.height)
        cols = np.arange(win.col, win.col + win.width)
        cls = self.classes_at(rows[:, None], cols[None, :])
        bright = (1.0 + 0.1 * np.sin((rows[:, None] // self.field) * 1.3 + (cols[None, :] // self.field) * 0.7)
                  ).astype(np.float32)
        x = self.ends[cls] * bright[..., None] + self.noise[(rows % 128)[:, None], (cols % 128)[None, :]]
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def samples(self, per_class: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        labels = np.zeros((self.height, self.width), dtype=np.int32)
        r = rng.integers(0, self.height, 40 * per_class * self.classes)
        c = rng.integers(0, self.width, r.size)
        k = self.classes_at(r, c)
        for cls in range(self.classes):
            pick = np.flatnonzero(k == cls)[:per_class]
            labels[r[pick], c[pick]] = cls + 1
        return labels


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def case_large(size: int, mode: str, device: str, iterations: int) -> dict:
    import torch

    from rssgl_qgis.core.prediction.memory_model import estimate_training_bytes
    from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams
    from rssgl_qgis.core.training.windowed_scene import WindowedScene

    raster = ProceduralRaster(size, size)
    labels = raster.samples(40, seed=1)
    if mode == "whole":
        from rssgl_qgis.core.prediction.tiling import Window

        cube = raster(Window(0, 0, size, size))
    else:
        cube = WindowedScene(raster, raster.bands, size, size)
    params = TrainingParams(device=device, iterations=iterations, training_input=mode, spectral=False,
                            fit_patience_epochs=iterations)  # every iteration runs: a time per iteration
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    clf = RssglClassifier(params=params).fit(cube, labels)
    total = time.perf_counter() - t0
    its = sum(1 for _ in range(clf.history_[-1]["iteration"])) if clf.history_ else iterations
    return {"case": f"{mode} {size}", "size": size, "mode": mode, "input": clf.training_input_,
            "iterations": its, "fit_seconds": total, "train_seconds": clf.train_seconds_,
            "seconds_per_iteration": clf.train_seconds_ / its,
            "before_training_seconds": total - clf.train_seconds_,  # band statistics pass, setup
            "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
            "peak_rss_gib": _peak_rss_gib(),
            "whole_scene_estimate_gib": estimate_training_bytes(raster.bands, size, size, device) / 2**30,
            "training_pixel_oa": clf.history_[clf.best_epoch_ - 1].get("val_oa") if clf.best_epoch_ else None}


def case_salinas(data: str, seed: int, mode: str, device: str, core: int, halo: int) -> dict:
    from benchmarks.accuracy_suite import _scores, load_scene, split
    from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams

    scene = load_scene("salinas_a", Path(data), seed)
    train, test, _ = split(scene, "p1", seed)
    params = TrainingParams(device=device, seed=seed, training_input=mode, spectral=False, window_core=core,
                            window_halo=halo)
    t0 = time.perf_counter()
    clf = RssglClassifier(params=params).fit(scene["cube"], train, valid=scene["valid"])
    seconds = time.perf_counter() - t0
    pred = clf.predict(scene["cube"], scene["valid"])
    out = _scores(pred, test, {"fit_seconds": seconds, "epochs": len(clf.history_)})
    out.update(case=f"salinas_a p1 seed {seed} {mode}", seed=seed, mode=mode, input=clf.training_input_)
    return out


def _run(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, __file__, "--case", *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        return {"case": " ".join(args), "error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=".data/suite")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seeds", default="2333,1,2,3,4")
    ap.add_argument("--window", default="32:16", help="core:halo of Salinas-A's windows (its padded scene is 96 px)")
    ap.add_argument("--sizes", default="4096,1024")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--parts", default="salinas,large")
    ap.add_argument("--json", default="")
    ap.add_argument("--case", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        kind, *rest = args.case
        if kind == "large":
            print(json.dumps(case_large(int(rest[0]), rest[1], args.device, args.iterations)))
        else:
            print(json.dumps(case_salinas(args.data, int(rest[0]), rest[1], args.device, int(rest[2]), int(rest[3]))))
        return 0
    core, halo = (int(v) for v in args.window.split(":"))
    rows = []
    parts = args.parts.split(",")
    if "large" in parts:
        for size in (int(s) for s in args.sizes.split(",")):
            for mode in (("windows",) if size > 2048 else ("whole", "windows")):
                rows.append(_run(["large", str(size), mode, "--device", args.device,
                                  "--iterations", str(args.iterations)]))
                print(json.dumps(rows[-1]), flush=True)
    if "salinas" in parts:
        for seed in args.seeds.split(","):
            for mode in ("whole", "windows"):
                rows.append(_run(["salinas", seed, mode, str(core), str(halo), "--device", args.device,
                                  "--data", args.data]))
                print(json.dumps(rows[-1]), flush=True)
        for mode in ("whole", "windows"):
            rs = [r for r in rows if r.get("mode") == mode and "oa" in r]
            if rs:
                oa = [r["oa"] for r in rs]
                print(f"Salinas-A p1 {mode}: OA {np.mean(oa):.2f} +- {np.std(oa):.2f} over {len(rs)} seeds, "
                      f"fit {np.mean([r['fit_seconds'] for r in rs]):.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": args.device, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
