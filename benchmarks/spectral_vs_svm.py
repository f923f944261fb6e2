"""The plugin's per-pixel spectral model (core/spectral.py) against a grid-searched SVM-RBF, on the CPU.

    python benchmarks/spectral_vs_svm.py --data .data/suite --seeds 0,1,2,3,4
    python benchmarks/spectral_vs_svm.py --features raw,pca30,pcaw10,pcaw20,pcaw30,unit --no-svm

The splits are the accuracy suite's (benchmarks/accuracy_suite.py: p1, n5, n10, n25, tiles, polygons);
no network is trained, so this runs in minutes on 2 cores. ``--features`` tries input transforms of
the standardised spectra (kept only if they measure better; none did, docs/RESULTS.md): ``pcaK``
the first K principal components of all valid pixels, ``pcawK`` the same whitened, ``unit`` each
spectrum scaled to unit length.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy_suite import load_scene, split  # noqa: E402

PROTOCOLS = {"enmap_potsdam": ("p1", "n5", "n10", "n25", "tiles"), "salinas_a": ("p1", "n5", "n10", "n25"),
             "synthetic": ("polygons",)}


def features(kind: str, flat: np.ndarray, valid: np.ndarray) -> np.ndarray:
    if kind == "raw":
        return flat
    if kind == "unit":
        return flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-6) * np.sqrt(flat.shape[1])
    k = int(kind.lstrip("pcaw"))
    x = flat[valid]
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    z = (flat - mean) @ vt[:k].T
    return z / (s[:k] / np.sqrt(len(x))) if kind.startswith("pcaw") else z


def main(argv: list[str] | None = None) -> int:
    import torch
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    from rssgl_qgis.core.normalization import band_statistics, normalize_cube
    from rssgl_qgis.core.spectral import fit_spectral

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=".data/suite")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--scenes", default=",".join(PROTOCOLS))
    ap.add_argument("--features", default="raw")
    ap.add_argument("--no-svm", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    kinds = args.features.split(",")
    print("| scene | protocol | " + " | ".join(f"spectral ({k})" for k in kinds) + ("" if args.no_svm else " | SVM-RBF")
          + " |")
    print("|---|---|" + "---|" * (len(kinds) + (0 if args.no_svm else 1)))
    for name in args.scenes.split(","):
        if name != "synthetic" and not (Path(args.data) / f"{name}.npz").exists():
            continue
        for protocol in PROTOCOLS[name]:
            acc: dict[str, list[float]] = {}
            for seed in (int(s) for s in args.seeds.split(",")):
                scene = load_scene(name, Path(args.data), seed)
                train, test, groups = split(scene, protocol, seed)
                cube, valid = scene["cube"], scene["valid"]
                mean, std = band_statistics(cube, valid)
                flat = normalize_cube(cube, mean, std, valid).reshape(cube.shape[0], -1).T.astype(np.float64)
                classes = np.unique(train[train > 0])
                tr, te = np.flatnonzero(train.ravel() > 0), np.flatnonzero(test.ravel() > 0)
                y, yt = np.searchsorted(classes, train.ravel()[tr]), np.searchsorted(classes, test.ravel()[te])
                for kind in kinds:
                    f = features(kind, flat, valid.ravel())
                    model = fit_spectral(f[tr], y, groups=groups.ravel()[tr], seed=seed)
                    hit = model.scores(torch.as_tensor(f[te])).argmax(1).numpy() == yt
                    acc.setdefault(kind, []).append(100 * hit.mean())
                if not args.no_svm:
                    folds = int(max(2, min(5, np.bincount(y).min())))
                    grid = GridSearchCV(SVC(kernel="rbf"), {"C": [1, 10, 100, 1000, 10000],
                                                            "gamma": [1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]},
                                        cv=StratifiedKFold(folds, shuffle=True, random_state=seed), n_jobs=2)
                    grid.fit(flat[tr], y)
                    acc.setdefault("svm", []).append(100 * (grid.predict(flat[te]) == yt).mean())
            cols = [f"{np.mean(v):.2f} +- {np.std(v):.2f}" for v in acc.values()]
            print(f"| {name} | {protocol} | " + " | ".join(cols) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
