"""Edge-preserving filtering of the spectral model's probabilities: which radius and eps, on which protocols (issue 28).

For each scene x protocol x seed the spectral model is fitted as Train RSSGL fits it (standardised spectra, the
settings search, self-training on up to UNLABELLED_CAP unlabelled pixels; benchmarks/accuracy_suite.pixel_split
and unlabelled_pool), its probabilities are computed on every valid pixel, and each filter variant is scored on
the test pixels against the unfiltered map of the same fit (the baseline, printed next to it). The guide is the
first principal component of the standardised spectra, fitted on the self-training's unlabelled pixels
(``pc_guide``); the filter is He et al.'s guided filter (ECCV 2010) as Kang et al. (IEEE TGRS 2014) use it on
hyperspectral probability maps (``guided_filter``; no-data pixels take no part in any window).

Result (docs/RESULTS.md, "edge-preserving filtering"): it helps Salinas-A and costs EnMAP at every setting, so the
product does not filter; this script stays to rerun the study.

Exploration seeds (100+) choose the default; the report seeds (0-9) are kept for the suite:

    python benchmarks/edge_filter_study.py --data .data/suite --seeds 100-109 --json /tmp/edge_filter.json
    python benchmarks/edge_filter_study.py --summarise /tmp/edge_filter.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.accuracy_suite import load_scene, pixel_split, unlabelled_pool  # noqa: E402

#: (radius, eps) of the guided filter scored; (0, 0) is the unfiltered map.
VARIANTS = [(0, 0.0)] + [(r, e) for r in (1, 2, 3, 5, 8) for e in (1e-3, 1e-2, 1e-1, 1.0)]
PROTOCOLS = ("patches1", "patches2", "patches4", "n5", "n10", "p1")


def box_mean(x: Tensor, weight: Tensor, radius: int) -> Tensor:
    """Mean of ``x`` (..., H, W) over the (2 r + 1)^2 window around each pixel, counting only pixels where
    ``weight`` (broadcast to ``x``; 1 = counted, 0 = not) is 1; windows are cut at the border."""
    k = 2 * radius + 1
    height, width = x.shape[-2:]
    w = weight.to(x.dtype).expand_as(x)
    num = F.avg_pool2d((x * w).reshape(-1, 1, height, width), k, 1, radius, count_include_pad=True)
    den = F.avg_pool2d(w.reshape(-1, 1, height, width), k, 1, radius, count_include_pad=True)
    return (num / den.clamp_min(1e-12)).reshape(x.shape)


def guided_filter(probabilities: Tensor, guide: Tensor, valid: Tensor, radius: int, eps: float) -> Tensor:
    """(..., K, H, W) probabilities filtered by the (..., 1, H, W) or (H, W) ``guide`` (0..1) within ``valid``
    (same shape as the guide, bool). ``radius`` 0 returns them as they are; outside ``valid`` they are unchanged."""
    if radius <= 0:
        return probabilities
    p = probabilities.float()
    g = guide.float()
    w = valid.float()
    mean_g = box_mean(g, w, radius)
    var_g = box_mean(g * g, w, radius) - mean_g * mean_g
    mean_p = box_mean(p, w, radius)
    cov_gp = box_mean(p * g, w, radius) - mean_g * mean_p
    a = cov_gp / (var_g.clamp_min(0.0) + eps)
    b = mean_p - a * mean_g
    q = (box_mean(a, w, radius) * g + box_mean(b, w, radius)).clamp_min(0.0)
    total = q.sum(-3, keepdim=True)
    q = torch.where(total > 0, q / total.clamp_min(1e-12), p)
    return torch.where(valid.bool(), q, p).to(probabilities.dtype)


def pc_guide(unlabelled: np.ndarray, flat: np.ndarray, shape: tuple[int, int]):
    """(1, H, W) guide on a 0..1 scale: the first principal component of the standardised spectra, fitted on the
    self-training's ``unlabelled`` pixels as a product would fit it, its 1st..99th percentiles stretched to 0..1."""
    import torch

    mean = unlabelled.mean(0)
    _, vecs = np.linalg.eigh(np.cov(unlabelled - mean, rowvar=False))
    loading = vecs[:, -1]
    low, high = np.quantile((unlabelled - mean) @ loading, [0.01, 0.99])
    guide = np.clip(((flat - mean) @ loading - low) / max(high - low, 1e-12), 0.0, 1.0)
    return torch.as_tensor(guide.reshape(1, *shape), dtype=torch.float32)


def run_cell(name: str, protocol: str, seed: int, data: Path) -> dict:
    import torch

    from rssgl_qgis.core.spectral.spectral_model import fit_spectral

    scene = load_scene(name, data, seed)
    d = pixel_split(scene, protocol, seed)
    t0 = time.perf_counter()
    unlabelled = d["flat"][unlabelled_pool(d, seed)]
    model = fit_spectral(d["flat"][d["tr"]], d["y"], seed=seed, unlabelled=unlabelled)
    t_fit = time.perf_counter() - t0
    valid = torch.as_tensor(d["valid"])
    h, w = d["valid"].shape
    with torch.no_grad():
        proba = model.probabilities(torch.as_tensor(d["flat"], dtype=torch.float32)).t().reshape(-1, h, w)
    guide = pc_guide(unlabelled, d["flat"], (h, w))
    out = {}
    for radius, eps in VARIANTS:
        t1 = time.perf_counter()
        q = guided_filter(proba, guide, valid[None], radius, eps)
        pred = q.reshape(q.shape[0], -1).argmax(0).numpy()
        out[f"r{radius}_e{eps:g}"] = {"oa": float(100 * (pred[d["te"]] == d["yt"]).mean()),
                                      "seconds": time.perf_counter() - t1}
    return {"scene": name, "protocol": protocol, "seed": seed, "fit_seconds": t_fit, "variants": out}


def summarise(rows: list[dict]) -> str:
    keys = list(rows[0]["variants"])
    cells = sorted({(r["scene"], r["protocol"]) for r in rows})
    lines = ["| scene | protocol | seeds | unfiltered | " + " | ".join(k for k in keys[1:]) + " |",
             "|---" * (len(keys) + 3) + "|"]
    gains = {k: [] for k in keys[1:]}
    for scene, protocol in cells:
        sub = [r for r in rows if (r["scene"], r["protocol"]) == (scene, protocol)]
        base = np.array([r["variants"][keys[0]]["oa"] for r in sub])
        row = [scene, protocol, str(len(sub)), f"{base.mean():.2f}"]
        for k in keys[1:]:
            v = np.array([r["variants"][k]["oa"] for r in sub])
            gains[k].append((v - base).mean())
            row.append(f"{(v - base).mean():+.2f}")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("| mean gain over cells | | | | " + " | ".join(f"{np.mean(gains[k]):+.2f}" for k in keys[1:]) + " |")
    lines.append("| worst cell | | | | " + " | ".join(f"{np.min(gains[k]):+.2f}" for k in keys[1:]) + " |")
    return "\n".join(lines)


def parse_seeds(text: str) -> list[int]:
    if "-" in text and "," not in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(".data/suite"))
    ap.add_argument("--scenes", default="salinas_a,enmap_potsdam")
    ap.add_argument("--protocols", default=",".join(PROTOCOLS))
    ap.add_argument("--seeds", default="100-109")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--summarise", type=Path)
    args = ap.parse_args(argv)
    if args.summarise:
        print(summarise(json.loads(args.summarise.read_text())))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    rows: list[dict] = []
    for name in args.scenes.split(","):
        for protocol in args.protocols.split(","):
            for seed in parse_seeds(args.seeds):
                row = run_cell(name, protocol, seed, args.data)
                rows.append(row)
                v = row["variants"]
                best = max(v, key=lambda k: v[k]["oa"])
                print(f"{name} {protocol} seed {seed}: unfiltered {v['r0_e0']['oa']:.2f}, "
                      f"r2_e0.01 {v['r2_e0.01']['oa']:.2f}, best {best} {v[best]['oa']:.2f} "
                      f"(fit {row['fit_seconds']:.1f} s)", flush=True)
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=1))
    print(summarise(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
