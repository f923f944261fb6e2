"""Which folds should the spectral model's settings search use? Pixels, whole samples, or whole samples cut to
balanced folds, on every protocol of the accuracy suite at once (issue 28), on the CPU (no network is trained).

    python benchmarks/spectral_fold_rules.py --data .data/suite --seeds 100,101,102,103,104,105,106,107,108,109,110,111 \
        --jobs 2 --json benchmarks/results/spectral_fold_rules.json

Rules (core/spectral/spectral_model.py; the samples are the 8-connected patches of the training label raster,
``label_patches``, as Train RSSGL sees them, whatever the protocol drew):

* ``pixels``: folds of pixels (the plugin before this study);
* ``samples``: whole samples dealt to the folds in turn (``cv_folds`` with groups): right for polygons, lopsided
  where one sample holds most of a class (the tiles split);
* ``balanced``: whole samples, those larger than a fold's share of their class cut into stripes of rows, dealt
  largest first in a serpentine order (``balanced_group_folds`` below);
* ``rule``: what Train RSSGL does now (``search_groups``): whole samples where the median class has at most
  ``SAMPLE_FOLDS_MAX`` of them, pixels otherwise.

Each rule fits the plugin's spectral model exactly as Train RSSGL does (self-training on the split's unlabelled
pool included); next to them the random forest (500 trees) and EnMAP-Box's default SVC (``enmapbox_svc``), the
baselines of the suite. Seeds 100+ are exploration seeds (the choice); the report's seeds (0-11) are the suite's.
Per cell: mean OA over the seeds, and each rule's mean paired difference to ``pixels`` with its range.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy_suite import SCENE_PROTOCOLS, enmapbox_svc, load_scene, pixel_split, unlabelled_pool  # noqa: E402
from spectral_cv_folds import cell_arguments  # noqa: E402

RULES = ("pixels", "samples", "balanced", "rule")
BASELINES = ("rf", "enmapbox")


def balanced_group_folds(y: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """(A candidate, measured here and not adopted.) A fold number 0..folds-1 per pixel over whole samples, each fold holding about a ``folds``-th of every
    class: a sample larger than that share is cut into that many pieces of consecutive pixels (stripes of
    rows, since the pixels come in row-major order), and the pieces are dealt per class, largest first, in
    a serpentine order (0, 1, ..., k-1, k-1, ..., 0) from a random first fold.

    Why: whole-sample folds ask the right question for polygons (does a new polygon come out right?), but
    where one sample holds most of a class they are lopsided, and the search then chose too strong a ridge
    (the tiles split, module docstring). Cutting only the oversized samples keeps the polygons whole where
    they are balanced and keeps every fold's share of a class even where they are not. Random pixels are
    samples of one pixel each: the pixel folds.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    groups = np.asarray(groups)
    out = np.zeros(y.size, dtype=np.int64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)  # ascending: row-major within each sample
        order = idx[np.argsort(groups[idx], kind="stable")]
        _, start, size = np.unique(groups[order], return_index=True, return_counts=True)
        cap = -(-idx.size // folds)
        cuts = -(-size // cap)  # pieces per sample
        rank = np.arange(order.size) - np.repeat(start, size)  # position within its sample
        piece = np.repeat(np.cumsum(cuts) - cuts, size) + rank * np.repeat(cuts, size) // np.repeat(size, size)
        piece_size = np.bincount(piece)
        # largest pieces first, ties in random order; serpentine dealing balances the fold sizes
        shuffled = rng.permutation(piece_size.size)
        ranked = shuffled[np.argsort(-piece_size[shuffled], kind="stable")]
        turn = np.arange(ranked.size) % (2 * folds)
        fold_of = np.empty(piece_size.size, dtype=np.int64)
        fold_of[ranked] = (np.where(turn < folds, turn, 2 * folds - 1 - turn) + int(rng.integers(folds))) % folds
        out[order] = fold_of[piece]
    return out


def _groups(d: dict) -> np.ndarray:
    """The training pixels' samples as Train RSSGL sees them: 8-connected patches of the training labels
    (core.data.sampling.pixel_patches on the pixel list, the plugin's own call)."""
    from rssgl_qgis.core.data.sampling import pixel_patches

    width = d["valid"].shape[1]
    return pixel_patches(d["tr"] // width, d["tr"] % width, d["y"])


def one_split(job: tuple[str, str, int, str, tuple[str, ...], bool]) -> dict:
    """OA of every rule (and baseline) on one (scene, protocol, seed)."""
    import torch

    torch.set_num_threads(1)
    from rssgl_qgis.core.spectral import spectral_model as spectral

    name, protocol, seed, data, rules, baselines = job
    scene = load_scene(name, Path(data), seed)
    d = pixel_split(scene, protocol, seed)
    flat, tr, te, y, yt = d["flat"], d["tr"], d["te"], d["y"], d["yt"]
    groups = _groups(d)
    pool = unlabelled_pool(d, seed)
    out: dict[str, float] = {}
    folds, choose = spectral.cv_folds, spectral.search_groups
    for rule in rules:
        t0 = time.perf_counter()
        # "samples" and "balanced" always hold out whole samples (whatever search_groups would choose); "rule" is
        # Train RSSGL's own choice; "pixels" passes no samples
        spectral.cv_folds = balanced_group_folds if rule == "balanced" else folds
        spectral.search_groups = choose if rule == "rule" else (lambda _y, g: g)
        try:
            model = spectral.fit_spectral(flat[tr], y, groups=None if rule == "pixels" else groups, seed=seed,
                                          unlabelled=flat[pool])
        finally:
            spectral.cv_folds, spectral.search_groups = folds, choose
        hit = model.scores(torch.as_tensor(flat[te])).argmax(1).numpy() == yt
        out[rule] = 100.0 * float(hit.mean())
        out[f"{rule}_s"] = time.perf_counter() - t0
    if baselines:
        from sklearn.ensemble import RandomForestClassifier

        forest = RandomForestClassifier(500, n_jobs=1, random_state=seed).fit(flat[tr], y)
        out["rf"] = 100.0 * float((forest.predict(flat[te]) == yt).mean())
        counts = np.bincount(y)
        if counts[counts > 0].min() >= 3:  # EnMAP-Box's 3-fold grid needs 3 pixels per class
            grid = enmapbox_svc(1).fit(flat[tr], y)
            out["enmapbox"] = 100.0 * float((grid.predict(flat[te]) == yt).mean())
    return {"scene": name, "protocol": protocol, "seed": seed, **out}


def table(rows: list[dict], rules: tuple[str, ...]) -> str:
    cols = list(rules) + [b for b in BASELINES if any(b in r for r in rows)]
    lines = ["| scene | protocol | seeds | " + " | ".join(cols) + " |", "|---|---|---|" + "---|" * len(cols)]
    cells = sorted({(r["scene"], r["protocol"]) for r in rows}, key=lambda c: (c[0], c[1]))
    for scene, protocol in cells:
        rs = sorted((r for r in rows if r["scene"] == scene and r["protocol"] == protocol), key=lambda r: r["seed"])
        base = np.array([r["pixels"] for r in rs]) if "pixels" in rules else None
        parts = []
        for c in cols:
            v = np.array([r.get(c, np.nan) for r in rs], dtype=float)
            text = f"{np.nanmean(v):.2f}" if np.isfinite(v).any() else "-"
            if base is not None and c != "pixels" and np.isfinite(v).all():
                diff = v - base
                text += f" ({diff.mean():+.2f}; {diff.min():+.1f} .. {diff.max():+.1f})"
            parts.append(text)
        lines.append(f"| {scene} | {protocol} | {len(rs)} | " + " | ".join(parts) + " |")
    return "\n".join(lines) + "\n\n(in brackets: the mean paired difference to pixels; its smallest .. largest)"


def main(argv: list[str] | None = None) -> int:
    ap = cell_arguments(__doc__, "100,101,102,103,104,105,106,107,108,109,110,111")
    ap.add_argument("--rules", default=",".join(RULES))
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2)))
    ap.add_argument("--json", default="")
    ap.add_argument("--summarise", default="", help="print the table of an earlier --json and stop")
    args = ap.parse_args(argv)
    rules = tuple(args.rules.split(","))
    if args.summarise:
        print(table(json.loads(Path(args.summarise).read_text())["rows"], rules))
        return 0
    only = set(filter(None, args.protocols.split(",")))
    jobs = [(name, protocol, int(seed), args.data, rules, not args.no_baselines)
            for name in args.scenes.split(",")
            if name == "synthetic" or (Path(args.data) / f"{name}.npz").exists()
            for protocol in SCENE_PROTOCOLS[name] if not only or protocol in only
            for seed in args.seeds.split(",")]
    rows = []
    with ProcessPoolExecutor(args.jobs) as ex:
        for row in ex.map(one_split, jobs):
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    print(table(rows, rules))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
