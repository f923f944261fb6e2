"""The plugin's per-pixel spectral model (core/spectral/spectral_model.py) against a grid-searched SVM-RBF, on the CPU.

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

from accuracy_suite import load_scene, pixel_split, svm_search  # noqa: E402

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

    from rssgl_qgis.core.spectral.spectral_model import fit_spectral

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
                d = pixel_split(load_scene(name, Path(args.data), seed), protocol, seed)
                flat, tr, te, y, yt = d["flat"], d["tr"], d["te"], d["y"], d["yt"]
                for kind in kinds:
                    f = features(kind, flat, d["valid"].ravel())
                    model = fit_spectral(f[tr], y, groups=d["groups"], seed=seed)
                    hit = model.scores(torch.as_tensor(f[te])).argmax(1).numpy() == yt
                    acc.setdefault(kind, []).append(100 * hit.mean())
                if not args.no_svm:
                    grid = svm_search(y, seed, 2).fit(flat[tr], y)
                    acc.setdefault("svm", []).append(100 * (grid.predict(flat[te]) == yt).mean())
            cols = [f"{np.mean(v):.2f} +- {np.std(v):.2f}" for v in acc.values()]
            print(f"| {name} | {protocol} | " + " | ".join(cols) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
