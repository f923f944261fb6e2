"""Variants of the spectral model (core/spectral/spectral_model.py) that were tried for the small sample sets and not kept,
against the plugin's model and a grid-searched SVM-RBF, on the accuracy suite's splits, on the CPU (no
network is trained: minutes on 2 cores).

    python benchmarks/spectral_variants.py --data .data/suite --seeds 100,101,102,103,104,105,106,107,108,109,110,111

Each variant changes one thing of the plugin's fit (kernel ridge with cross-validated settings, one round of
self-training on the scene's unlabelled pixels):

* ``two rounds``: a second round of self-training, twice as many pseudo-labels picked by the refitted model;
* ``agreeing pseudo-labels``: pseudo-labels only where the first fit gives the pixel's 3 x 3 neighbourhood
  one class (a homogeneity filter, common in the literature);
* ``+ mean 3x3`` / ``+ mean 5x5``: the spectrum concatenated with the mean spectrum of its neighbourhood
  (valid pixels only, each re-standardised): a spatial-spectral input;
* ``CV radius``: the neighbourhood radius (0 = the plugin's input, 1, 2) the spectral model's own
  cross-validation prefers (the lowest out-of-fold squared error of its first, labelled-only fit);
* ``PCA 20``: the 20 leading principal components of the scene, whitened (noise bands weigh less);
* ``no self-training``: the labelled pixels alone;
* ``sample folds``: the settings searched over folds of whole samples (polygons) instead of pixels;
* ``unit norm``: each spectrum divided by its norm before the per-band standardisation (shape, not brightness);
  ``unit norm + brightness``: the same with the log-norm as one more input.

Next to them, the suite's SVM-RBF and random forest (500 trees), the baselines a user would pick.

Seeds 100+ are exploration seeds; the report's seeds (0-11) are for the accuracy suite.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy_suite import load_scene, pixel_split, svm_search, unlabelled_pool  # noqa: E402
from spectral_cv_folds import cell_arguments, cells  # noqa: E402

#: The protocols studied by default (the sample sets where the spectral model carries the pool).
PROTOCOLS = "n5,n10,p1,polygons"


def neighbourhood_mean(flat: np.ndarray, valid: np.ndarray, radius: int) -> np.ndarray:
    """(pixels, bands) -> the mean spectrum of each pixel's (2r+1)^2 window over valid pixels, standardised."""
    import torch

    h, w = valid.shape
    x = torch.as_tensor(flat.T.reshape(-1, h, w))[None]
    m = torch.as_tensor(valid, dtype=x.dtype)[None, None]
    k = 2 * radius + 1
    s = torch.nn.functional.avg_pool2d(x * m, k, 1, radius, count_include_pad=False)
    c = torch.nn.functional.avg_pool2d(m, k, 1, radius, count_include_pad=False).clamp_min(1e-6)
    out = (s / c)[0].reshape(flat.shape[1], -1).T.numpy()
    v = valid.ravel()
    return (out - out[v].mean(0)) / (out[v].std(0) + 1e-9)


def whitened_pca(flat: np.ndarray, valid: np.ndarray, k: int) -> np.ndarray:
    """The k leading principal components of the valid pixels, each scaled to unit variance."""
    v = valid.ravel()
    mu = flat[v].mean(0)
    sample = (flat[v] - mu)[:: max(1, int(v.sum()) // 5000)]
    _, _, vt = np.linalg.svd(sample, full_matrices=False)
    p = (flat - mu) @ vt[:k].T
    return p / (p[v].std(0) + 1e-9)


def unit_norm(d: dict, brightness: bool = False) -> np.ndarray:
    """Each pixel's spectrum divided by its Euclidean norm (the spectral-angle view: shading and illumination
    scale a spectrum, they do not change its shape), then standardised per band over the valid pixels; with
    ``brightness``, the standardised log-norm appended as one more band."""
    raw = d["flat"] * d["std"] + d["mean"]
    norm = np.linalg.norm(raw, axis=1, keepdims=True)
    unit = raw / np.maximum(norm, 1e-12)
    v = d["valid"].ravel()
    out = (unit - unit[v].mean(0)) / (unit[v].std(0) + 1e-9)
    if brightness:
        lb = np.log(np.maximum(norm, 1e-12))
        out = np.concatenate([out, (lb - lb[v].mean()) / (lb[v].std() + 1e-9)], 1)
    return np.where(v[:, None], out, 0.0)


def _agreeing(model, x: np.ndarray, valid: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """The pool pixels whose valid 3 x 3 neighbours all get the same class from ``model``."""
    import torch

    h, w = valid.shape
    v = torch.as_tensor(valid)
    with torch.no_grad():
        label = model.scores(torch.as_tensor(x, dtype=torch.float32)).argmax(1).reshape(h, w)
    ok = v.clone()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            ok &= (torch.roll(label, (dy, dx), (0, 1)) == label) | ~torch.roll(v, (dy, dx), (0, 1))
    return pool[ok.ravel().numpy()[pool]]


@contextmanager
def recorded_cv_errors() -> Iterator[list[float]]:
    """The lowest out-of-fold error of each settings search core.spectral.spectral_model runs inside the block (the first is
    the labelled-only fit's), recorded by wrapping spectral.choose_setting, which is restored on exit."""
    from rssgl_qgis.core.spectral import spectral_model as spectral

    original, errors = spectral.choose_setting, []

    def recording(err):
        errors.append(float(err.min()))
        return original(err)

    spectral.choose_setting = recording
    try:
        yield errors
    finally:
        spectral.choose_setting = original


def with_neighbourhood(d: dict, radius: int) -> np.ndarray:
    """The spectra of split ``d`` with their neighbourhood mean appended (radius 0: the spectra alone)."""
    if radius == 0:
        return d["flat"]
    return np.concatenate([d["flat"], neighbourhood_mean(d["flat"], d["valid"], radius)], 1) / np.sqrt(2.0)


def variants() -> dict[str, Callable]:
    """name -> fit(d, pool, seed) returning (model, test inputs) for the split ``d`` of pixel_split."""
    import torch

    from rssgl_qgis.core.spectral import spectral_model as spectral

    def plain(d, pool, seed, x=None):
        x = d["flat"] if x is None else x
        return spectral.fit_spectral(x[d["tr"]], d["y"], seed=seed, unlabelled=x[pool]), x[d["te"]]

    def two_rounds(d, pool, seed):
        x, y = d["flat"], d["y"]
        first = spectral.fit_spectral(x[d["tr"]], y, seed=seed, unlabelled=x[pool])
        kept = spectral.PSEUDO_LABELS_PER_SAMPLE
        spectral.PSEUDO_LABELS_PER_SAMPLE = 2 * kept
        try:
            picked, labels = spectral._pseudo_labels(first, torch.as_tensor(x[pool], dtype=torch.float32), y, seed)
        finally:
            spectral.PSEUDO_LABELS_PER_SAMPLE = kept
        x2 = np.concatenate([x[d["tr"]], picked.numpy().astype(np.float64)])
        return spectral._fit(x2, np.concatenate([y, labels]), None, 5, seed, "cpu", labelled=y.size), x[d["te"]]

    def agreeing(d, pool, seed):
        x = d["flat"]
        first = spectral._fit(x[d["tr"]], d["y"], None, 5, seed, "cpu")
        return plain(d, _agreeing(first, x, d["valid"], pool), seed)

    def with_mean(radius):
        return lambda d, pool, seed: plain(d, pool, seed, with_neighbourhood(d, radius))

    def cv_radius(d, pool, seed):
        fits = []
        for radius in (0, 1, 2):
            with recorded_cv_errors() as errors:
                model, x_test = plain(d, pool, seed, with_neighbourhood(d, radius))
            fits.append((errors[0] if errors else float("inf"), model, x_test))
        best = min(fits, key=lambda f: f[0])
        return best[1], best[2]

    def no_self_training(d, pool, seed):
        return spectral.fit_spectral(d["flat"][d["tr"]], d["y"], seed=seed), d["flat"][d["te"]]

    def sample_folds(d, pool, seed):
        x = d["flat"]
        return spectral.fit_spectral(x[d["tr"]], d["y"], groups=d["groups"], seed=seed, unlabelled=x[pool]), x[d["te"]]

    return {"plugin": plain, "no self-training": no_self_training, "sample folds": sample_folds,
            "two rounds": two_rounds, "agreeing pseudo-labels": agreeing,
            "+ mean 3x3": with_mean(1), "+ mean 5x5": with_mean(2), "CV radius": cv_radius,
            "PCA 20": lambda d, pool, seed: plain(d, pool, seed, whitened_pca(d["flat"], d["valid"], 20)),
            "unit norm": lambda d, pool, seed: plain(d, pool, seed, unit_norm(d)),
            "unit norm + brightness": lambda d, pool, seed: plain(d, pool, seed, unit_norm(d, True))}


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = cell_arguments(__doc__, "100,101,102,103,104,105,106,107,108,109,110,111")
    ap.set_defaults(protocols=PROTOCOLS)
    ap.add_argument("--variants", default="", help="comma list of variant names (default: all)")
    ap.add_argument("--baselines", default="SVM-RBF,RF", help="comma list of SVM-RBF, RF (empty: none)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    chosen = variants()
    if args.variants:
        chosen = {k: v for k, v in chosen.items() if k in args.variants.split(",")}
    baselines = [b for b in args.baselines.split(",") if b in ("SVM-RBF", "RF")]
    names = list(chosen) + baselines
    print("| scene | protocol | seeds | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    seeds = [int(s) for s in args.seeds.split(",")]
    for name, protocol in cells(args):
        acc: dict[str, list[float]] = {k: [] for k in names}
        for seed in seeds:
            d = pixel_split(load_scene(name, Path(args.data), seed), protocol, seed)
            pool = unlabelled_pool(d, seed)
            for label, fit in chosen.items():
                model, x_test = fit(d, pool, seed)
                hit = model.scores(torch.as_tensor(x_test)).argmax(1).numpy() == d["yt"]
                acc[label].append(100 * hit.mean())
            if "SVM-RBF" in baselines:
                grid = svm_search(d["y"], seed, 2).fit(d["flat"][d["tr"]], d["y"])
                acc["SVM-RBF"].append(100 * (grid.predict(d["flat"][d["te"]]) == d["yt"]).mean())
            if "RF" in baselines:
                from sklearn.ensemble import RandomForestClassifier

                forest = RandomForestClassifier(500, n_jobs=2, random_state=seed).fit(d["flat"][d["tr"]], d["y"])
                acc["RF"].append(100 * (forest.predict(d["flat"][d["te"]]) == d["yt"]).mean())
        base = np.array(acc["plugin"])
        cols = [f"{np.mean(v):.2f} +- {np.std(v):.2f}" + ("" if k == "plugin" else f" ({np.mean(np.array(v) - base):+.2f})")
                for k, v in acc.items()]
        print(f"| {name} | {protocol} | {len(seeds)} | " + " | ".join(cols) + " |", flush=True)
    print("\n(in brackets: the mean paired difference to the plugin's model)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
