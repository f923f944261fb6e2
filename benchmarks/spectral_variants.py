"""Variants of the spectral model (core/spectral/spectral_model.py) that were tried for the small sample sets and not kept,
against the plugin's model and a grid-searched SVM-RBF, on the accuracy suite's splits, on the CPU (no
network is trained: minutes on 2 cores).

    python benchmarks/spectral_variants.py --data .data/suite --seeds 100,101,102,103,104,105,106,107,108,109,110,111
    # the same, 16 splits at once, every split's numbers in a JSON (--summarise prints its table again)
    python benchmarks/spectral_variants.py --jobs 16 --json variants.json ...

Each variant changes one thing of the plugin's fit (kernel ridge with cross-validated settings, one round of
self-training on the scene's unlabelled pixels; the split's samples, its 8-connected label patches, handed over as
Train RSSGL hands them):

* ``two rounds``: a second round of self-training, twice as many pseudo-labels picked by the refitted model;
* ``agreeing pseudo-labels``: pseudo-labels only where the first fit gives the pixel's 3 x 3 neighbourhood
  one class (a homogeneity filter, common in the literature);
* ``+ mean 3x3`` / ``+ mean 5x5``: the spectrum concatenated with the mean spectrum of its neighbourhood
  (valid pixels only, each re-standardised): a spatial-spectral input;
* ``CV radius``: the neighbourhood radius (0 = the plugin's input, 1, 2) the spectral model's own
  cross-validation prefers (the lowest out-of-fold squared error of its first, labelled-only fit);
* ``PCA 20``: the 20 leading principal components of the scene, whitened (noise bands weigh less);
* ``no self-training``: the labelled pixels alone;
* ``sample folds``: the settings searched over folds of whole samples (polygons) instead of pixels (since the twelfth
  round the plugin's own rule, ``search_groups``: "plugin" is this where the rule picks samples);
* ``pixel folds``: the settings searched over pixels whatever the samples (the plugin before the twelfth round);
* ``pixel weights`` / ``sample weights`` / ``sample+class weights``: the fit's ``SAMPLE_WEIGHTS`` (each pixel alike;
  each polygon alike within its class; and each class alike);
* ``class weights`` / ``polygons alike``: where the plugin's rule weighs (``SAMPLE_WEIGHTS`` "polygons"), every class
  alike and every pixel alike within its class (``POLYGON_WEIGHTS`` "classes", the default since the fifteenth round),
  or every polygon alike within its class too ("samples+classes", the rule before);
* ``search sample weights``: the fit as the plugin's, but the settings search's held-out error weighs every class
  alike and every sample alike within its class (``SEARCH_WEIGHTS``, as the pool's cross-validation does) where it
  holds out whole samples;
* ``10 pseudo-labels``: self-training adds 10 unlabelled pixels per training pixel instead of 3 (still at most
  SEARCH_CAP pixels in all); ``pseudo-labels to the cap``: as many as SEARCH_CAP leaves room for;
* ``float32 product``: the plugin's fit, predicting (pseudo-labels and test pixels) with the plain float32 product
  exp(-gamma d2) @ alpha it used before the thirteenth round's precision fix (SpectralModel.scores);
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
        return spectral.fit_spectral(x[d["tr"]], d["y"], groups=d["groups"], seed=seed, unlabelled=x[pool]), x[d["te"]]

    def setting(**values):
        """The plugin's fit with some of spectral_model's module settings changed for the call."""
        def fit(d, pool, seed):
            kept = {k: getattr(spectral, k) for k in values}
            for k, v in values.items():
                setattr(spectral, k, v)
            try:
                return plain(d, pool, seed)
            finally:
                for k, v in kept.items():
                    setattr(spectral, k, v)
        return fit

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

    class Float32Product(spectral.SpectralModel):
        """The prediction before 2026-12-07's fix: a plain float32 product exp(-gamma d2) @ alpha."""

        def scores(self, x):
            x = x.to(self.centers.device, torch.float32)
            c_sq = (self.centers * self.centers).sum(1)
            return torch.cat([spectral._rbf(x[i:i + spectral.PREDICT_CHUNK], self.centers, self.gamma, c_sq)
                              @ self.alpha.float() for i in range(0, x.shape[0], spectral.PREDICT_CHUNK)])

    def float32_product(d, pool, seed):
        kept = spectral.SpectralModel.scores
        spectral.SpectralModel.scores = Float32Product.scores  # the pseudo-labels' choice too
        try:
            model, x_test = plain(d, pool, seed)
        finally:
            spectral.SpectralModel.scores = kept
        model.__class__ = Float32Product
        return model, x_test

    def no_self_training(d, pool, seed):
        return spectral.fit_spectral(d["flat"][d["tr"]], d["y"], seed=seed), d["flat"][d["te"]]

    def pixel_folds(d, pool, seed):
        x = d["flat"]
        return spectral.fit_spectral(x[d["tr"]], d["y"], seed=seed, unlabelled=x[pool]), x[d["te"]]

    return {"plugin": plain, "no self-training": no_self_training, "sample folds": plain,
            "pixel folds": pixel_folds, "pixel weights": setting(SAMPLE_WEIGHTS="pixels"),
            "sample weights": setting(SAMPLE_WEIGHTS="samples"),
            "sample+class weights": setting(SAMPLE_WEIGHTS="samples+classes"),
            "drawn weights": setting(SAMPLE_WEIGHTS="drawn"),
            "class weights": setting(POLYGON_WEIGHTS="classes"),
            "polygons alike": setting(POLYGON_WEIGHTS="samples+classes"),
            "search sample weights": setting(SEARCH_WEIGHTS="samples"),
            "10 pseudo-labels": setting(PSEUDO_LABELS_PER_SAMPLE=10),
            "pseudo-labels to the cap": setting(PSEUDO_LABELS_PER_SAMPLE=1000),
            "float32 product": float32_product, "two rounds": two_rounds, "agreeing pseudo-labels": agreeing,
            "+ mean 3x3": with_mean(1), "+ mean 5x5": with_mean(2), "CV radius": cv_radius,
            "PCA 20": lambda d, pool, seed: plain(d, pool, seed, whitened_pca(d["flat"], d["valid"], 20)),
            "unit norm": lambda d, pool, seed: plain(d, pool, seed, unit_norm(d)),
            "unit norm + brightness": lambda d, pool, seed: plain(d, pool, seed, unit_norm(d, True))}


def one_split(job: tuple[str, str, int, str, tuple[str, ...], tuple[str, ...]]) -> dict:
    """One split's accuracies (OA %) of the named variants and baselines (a process of its own with --jobs)."""
    import torch

    name, protocol, seed, data, names, baselines = job
    torch.set_num_threads(1 if _PARALLEL else 2)
    chosen = {k: v for k, v in variants().items() if k in names}
    d = pixel_split(load_scene(name, Path(data), seed), protocol, seed)
    pool = unlabelled_pool(d, seed)
    acc: dict[str, float] = {}
    for label, fit in chosen.items():
        model, x_test = fit(d, pool, seed)
        acc[label] = float(100 * (model.scores(torch.as_tensor(x_test)).argmax(1).numpy() == d["yt"]).mean())
    if "SVM-RBF" in baselines:
        grid = svm_search(d["y"], seed, 1 if _PARALLEL else 2).fit(d["flat"][d["tr"]], d["y"])
        acc["SVM-RBF"] = float(100 * (grid.predict(d["flat"][d["te"]]) == d["yt"]).mean())
    if "RF" in baselines:
        from sklearn.ensemble import RandomForestClassifier

        forest = RandomForestClassifier(500, n_jobs=1 if _PARALLEL else 2, random_state=seed)
        forest.fit(d["flat"][d["tr"]], d["y"])
        acc["RF"] = float(100 * (forest.predict(d["flat"][d["te"]]) == d["yt"]).mean())
    return {"scene": name, "protocol": protocol, "seed": seed, "oa": acc}


#: True in the worker processes of --jobs > 1 (one thread each).
_PARALLEL = False


def _parallel_worker() -> None:
    global _PARALLEL
    _PARALLEL = True


def table(rows: list[dict], names: list[str]) -> str:
    """The markdown table: per cell, each column's mean +- std over the seeds and, in brackets, its mean paired
    difference to the first column (the smallest .. largest over the seeds)."""
    out = ["| scene | protocol | seeds | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    cells: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        cells.setdefault((r["scene"], r["protocol"]), []).append(r)
    for (name, protocol), rs in cells.items():
        rs = [r for r in rs if all(k in r["oa"] for k in names)]
        if not rs:
            continue
        base = np.array([r["oa"][names[0]] for r in rs])
        cols = []
        for k in names:
            v = np.array([r["oa"][k] for r in rs])
            diff = v - base
            cols.append(f"{v.mean():.2f} +- {v.std():.2f}" + ("" if k == names[0] else
                        f" ({diff.mean():+.2f}; {diff.min():+.1f} .. {diff.max():+.1f})"))
        out.append(f"| {name} | {protocol} | {len(rs)} | " + " | ".join(cols) + " |")
    out.append("\n(in brackets: the mean paired difference to the first column; its smallest .. largest over the seeds)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    import json
    from concurrent.futures import ProcessPoolExecutor

    ap = cell_arguments(__doc__, "100,101,102,103,104,105,106,107,108,109,110,111")
    ap.set_defaults(protocols=PROTOCOLS)
    ap.add_argument("--variants", default="", help="comma list of variant names (default: all); the first is the "
                                                     "reference of the brackets")
    ap.add_argument("--baselines", default="SVM-RBF,RF", help="comma list of SVM-RBF, RF (empty: none)")
    ap.add_argument("--jobs", type=int, default=1, help="splits computed at once, one process and thread each")
    ap.add_argument("--json", default="", help="write every split's accuracies here")
    ap.add_argument("--summarise", default="", help="print the table of an earlier --json and stop")
    args = ap.parse_args(argv)
    if args.summarise:
        saved = json.loads(Path(args.summarise).read_text())
        print(table(saved["rows"], saved["names"]))
        return 0
    known = list(variants())
    names = [k for k in (args.variants.split(",") if args.variants else known) if k in known]
    baselines = tuple(b for b in args.baselines.split(",") if b in ("SVM-RBF", "RF"))
    columns = names + list(baselines)
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(name, protocol, seed, args.data, tuple(names), baselines) for name, protocol in cells(args) for seed in seeds]
    rows: list[dict] = []
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, initializer=_parallel_worker) as ex:
            for row in ex.map(one_split, jobs):
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps({"argv": sys.argv, "names": columns, "rows": rows}, indent=1))
    else:
        for job in jobs:
            rows.append(one_split(job))
            print(json.dumps(rows[-1]), flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps({"argv": sys.argv, "names": columns, "rows": rows}, indent=1))
    print(table(rows, columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
