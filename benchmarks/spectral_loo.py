"""The spectral model's settings chosen by closed-form leave-one-out instead of k-fold over pixels (what
Train RSSGL does), on the accuracy suite's splits, on the CPU (no network is trained).

    python benchmarks/spectral_loo.py --data .data/suite --seeds 100,101,102,103,104,105,106,107,108,109,110,111

Kernel ridge regression has its leave-one-out predictions in closed form: with K = V diag(s) V^T and the hat
matrix H = V diag(s / (s + ridge)) V^T, the prediction for pixel i without it is (f_i - H_ii t_i) / (1 - H_ii).
One eigendecomposition per kernel width gives every ridge, no fold partition adds noise, and it needs one
decomposition of the n x n kernel instead of one per fold. Per scene x protocol: the mean test OA of the
spectral model (with its self-training) both ways, the paired difference, and the seconds spent fitting.
Measured on the exploration seeds and not kept (docs/RESULTS.md, fifth round): neutral on average.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy_suite import load_scene, pixel_split, unlabelled_pool  # noqa: E402
from spectral_cv_folds import cell_arguments, cells  # noqa: E402


def loo_fit(x, y, groups, folds, seed, device, labelled=None):
    """spectral._fit with the settings chosen by the leave-one-out squared error (same grid, tie rule,
    temperature and final fit); ``groups`` and ``folds`` are ignored."""
    import torch

    from rssgl_qgis.core.spectral import spectral_model as S

    rng = np.random.default_rng(seed)
    y = np.asarray(y, dtype=np.int64)
    n_classes = int(y.max()) + 1
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    targets = 2.0 * torch.nn.functional.one_hot(torch.as_tensor(y), n_classes).to(torch.float64) - 1.0
    search = S._stratified_subset(y, S.SEARCH_CAP, rng)
    xs, ys, ts = xt[search], y[search], targets[search]
    d2 = torch.cdist(xs, xs).pow_(2)
    base_gamma = S.kernel_scale(d2)
    ridges = torch.as_tensor(S.RIDGES, dtype=torch.float64)
    oof = torch.zeros(len(S.GAMMA_FACTORS), len(S.RIDGES), ys.size, n_classes, dtype=torch.float64)
    for gi, factor in enumerate(S.GAMMA_FACTORS):
        s, v = torch.linalg.eigh(torch.exp(-factor * base_gamma * d2))
        shrink = s.clamp_min(0.0)[None, :] / (s.clamp_min(0.0)[None, :] + ridges[:, None])  # (R, m)
        fitted = torch.einsum("im,rm,mk->rik", v, shrink, v.t() @ ts)
        h = torch.einsum("im,rm->ri", v * v, shrink).clamp_max(1 - 1e-9)
        oof[gi] = (fitted - h[..., None] * ts[None]) / (1 - h[..., None])
    gi, ri = S.choose_setting((oof - ts).pow(2).mean(dim=(-1, -2)))
    real = torch.ones(ys.size, dtype=torch.bool) if labelled is None else torch.as_tensor(search < labelled)
    ys_t = torch.as_tensor(ys)
    accuracy = float((oof[gi, ri][real].argmax(-1) == ys_t[real]).double().mean())
    gamma = S.GAMMA_FACTORS[gi] * base_gamma
    temperature = S._fit_temperature(oof[gi, ri][real], ys_t[real])
    return S.final_model(xt, y, targets, gamma, S.RIDGES[ri], temperature, accuracy, 0, rng)


def main(argv: list[str] | None = None) -> int:
    import torch

    from rssgl_qgis.core.spectral import spectral_model as spectral

    args = cell_arguments(__doc__, "100,101,102,103,104,105,106,107,108,109,110,111").parse_args(argv)
    torch.set_num_threads(2)
    seeds = [int(s) for s in args.seeds.split(",")]
    kfold = spectral._fit
    print("| scene | protocol | seeds | k-fold (now) | leave-one-out | loo - k-fold (min .. max) | fit s, k-fold / loo |")
    print("|---|---|---|---|---|---|---|")
    for name, protocol in cells(args):
        acc: dict[str, list[float]] = {"kfold": [], "loo": []}
        secs = {"kfold": 0.0, "loo": 0.0}
        for seed in seeds:
            d = pixel_split(load_scene(name, Path(args.data), seed), protocol, seed)
            flat, tr, te, y, yt = d["flat"], d["tr"], d["te"], d["y"], d["yt"]
            pool = flat[unlabelled_pool(d, seed)]
            for key, fit in (("kfold", kfold), ("loo", loo_fit)):
                spectral._fit = fit
                try:
                    t0 = time.perf_counter()
                    model = spectral.fit_spectral(flat[tr], y, seed=seed, unlabelled=pool)
                    secs[key] += time.perf_counter() - t0
                finally:
                    spectral._fit = kfold
                acc[key].append(100 * (model.scores(torch.as_tensor(flat[te])).argmax(1).numpy() == yt).mean())
        diff = np.asarray(acc["loo"]) - np.asarray(acc["kfold"])
        print(f"| {name} | {protocol} | {len(seeds)} | {np.mean(acc['kfold']):.2f} +- {np.std(acc['kfold']):.2f} | "
              f"{np.mean(acc['loo']):.2f} +- {np.std(acc['loo']):.2f} | {diff.mean():+.2f} ({diff.min():+.2f} .. "
              f"{diff.max():+.2f}) | {secs['kfold'] / len(seeds):.1f} / {secs['loo'] / len(seeds):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
