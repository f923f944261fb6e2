"""Training-speed benchmark: the authors' structure against our engine, measured in the same run.

    python benchmarks/bench_train.py [--shapes ip,sa,pu,salinas_a] [--device cuda|cpu] [--iters N]
        [--warmup N] [--variants baseline,fused_fp32,graph_fp32,ours] [--full-salinas-a DIR]
        [--full-baseline] [--json OUT]

For each shape it times one training iteration (forward, loss, backward, SGD step on the whole
padded scene; random data; minibatches of up to 10 pixels per class drawn from the paper's
per-class training counts) for each variant, reports the median ms after warm-up, the peak GPU
memory of that variant, the inference ms (one whole-scene forward + softmax), and the speed-up of
each variant over the baseline measured in this same process.

Variants:
- ``baseline``: benchmarks/authors_baseline.py (eight gate convs per cell, per-step loop, looped
  statistical loss, host-side masks, ``.item()`` every iteration, fp32, eager);
- ``fused_fp32``: our engine's model (fused gate convs, batched input convs, 3-D convs) + loss +
  device sampler + device SGD, eager, fp32;
- ``graph_fp32``: the same captured in one CUDA graph (CUDA only);
- ``ours_nofold``: bf16 autocast + CUDA graph, 3-D convs;
- ``ours_fold``: bf16 autocast + CUDA graph + spectral depth folded into channels (banded 2-D
  convs, channels-last) on CUDA; fp32 eager, folded, on the CPU;
- ``ours``: what training uses with ``accelerate="auto"``, ``amp="auto"``: on CUDA the same as
  ``ours_fold``; on the CPU (fp32, eager) the fold for 3x3 spatial kernels and, for 5x5 kernels,
  3-D convs whose weight gradient is computed in the folded form
  (``accel.conv3d_folded_weight_grad``): the fastest combinations measured there.

``--full-salinas-a DIR`` (DIR holding SalinasA_corrected.mat and SalinasA_gt.mat) also trains on
the real Salinas-A scene through ``RssglClassifier`` (600 iterations, evaluation each epoch, seed
2333, 1 % per class) in paper and validation mode and reports wall time and test OA.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.authors_baseline import BaselineRSSGL, BaselineTrainer, load_fused_weights  # noqa: E402
from benchmarks.common import (  # noqa: E402
    SHAPES,
    Shape,
    count_flops,
    make_problem,
    median,
    peak_gib,
    reset_peak,
    time_iterations,
)
from rssgl_qgis.core.data.sampling import HBMinibatchSampler  # noqa: E402
from rssgl_qgis.core.network import accel  # noqa: E402
from rssgl_qgis.core.network.losses import RssglLoss  # noqa: E402
from rssgl_qgis.core.network.model import RSSGL, ConvLSTM3d, RssglConfig  # noqa: E402

ALL_VARIANTS = ("baseline", "fused_fp32", "graph_fp32", "ours_nofold", "ours_fold", "ours")


def _ours_flags(variant: str, device: torch.device) -> tuple[bool, bool]:
    """(amp, graph) for one of our variants."""
    cuda = device.type == "cuda"
    return {"fused_fp32": (False, False), "graph_fp32": (False, cuda)}.get(variant, (cuda, cuda))



def build_ours(shape: Shape, problem, device: torch.device, amp: bool, graph: bool, iters: int, seed: int = 0,
               variant: str = "ours"):
    """Our engine's training step for ``shape`` (model, loss, device sampler, accel.TrainStep)."""
    torch.manual_seed(seed)
    model = RSSGL(RssglConfig(shape.bands, shape.classes, shape.kernel)).to(device)
    # "ours" = what training runs (by device: folded on CUDA, 3-D + folded weight gradient on the CPU);
    # "ours_fold" forces the fold (the CUDA formulation, to time it on the CPU); the others use 3-D convs
    fold = {"ours": None, "ours_fold": True}.get(variant, False)
    for mod in model.modules():
        if isinstance(mod, ConvLSTM3d):
            mod.fold_depth = fold
    loss = RssglLoss(np.asarray(shape.train_counts), shape.stat_weight).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    sampler = HBMinibatchSampler(problem.train_index_labels, 10, gen)
    lr = accel.poly_lr_table(0.005, 1000, 0.8, iters + 1, device)
    target = torch.from_numpy(np.clip(problem.labels - 1, 0, None)).to(device)[None]
    flat = torch.from_numpy(problem.labels.reshape(-1))
    pix = torch.nonzero(flat > 0).squeeze(1)[::7]  # a validation-sized set of scored pixels
    ev = accel.EvalPixels(pix.to(device), (flat[pix] - 1).to(device))
    step = accel.TrainStep(model, loss, problem.cube, target, sampler.draw, lr, iterations=iters, amp=amp,
                           selection="validation", val_pixels=ev)
    captured = step.enable_graph(generator=gen) if graph else False
    return model, step, captured


def build_baseline(shape: Shape, problem, device: torch.device, seed: int = 0):
    torch.manual_seed(seed)
    model = BaselineRSSGL(shape.bands, shape.classes, shape.kernel).to(device)
    return model, BaselineTrainer(model, problem.cube, problem.labels, problem.train_indicator,
                                  list(shape.train_counts), stat_weight=shape.stat_weight)


def inference_ms(model: torch.nn.Module, cube: torch.Tensor, amp: bool, device: torch.device, iters: int) -> float:
    """Median ms of one whole-scene forward + softmax in inference mode."""
    model.eval()

    def run() -> None:
        with torch.inference_mode(), accel.autocast(device, amp):
            logits, _ = model(cube)
            torch.softmax(logits.float(), dim=1)

    return median(time_iterations(run, max(1, iters), 1, device))


def _build(variant: str, shape: Shape, problem, device: torch.device, steps: int):
    """(model, step callable, amp, captured) of one variant."""
    if variant == "baseline":
        model, trainer = build_baseline(shape, problem, device)
        return model, trainer.step, False, False
    amp, graph = _ours_flags(variant, device)
    model, step, captured = build_ours(shape, problem, device, amp, graph, steps, variant=variant)
    return model, step.run, amp, captured


def _row(shape: Shape, variant: str, times: list[float], peak: float, inf: float, amp: bool, captured: bool,
         build_s: float, cpu_ms: list[float] | None = None) -> dict:
    row = {
        "shape": shape.key, "variant": variant, "ms_per_iter": median(times), "ms_all": times,
        "peak_gib": peak, "infer_ms": inf, "amp_bf16": amp, "cuda_graph": bool(captured), "build_s": build_s,
    }
    if cpu_ms is not None:
        row["cpu_ms_per_iter"] = median(cpu_ms)
    extra = f"  cpu-time {row['cpu_ms_per_iter']:9.1f} ms" if cpu_ms is not None else ""
    print(f"  {shape.key:10s} {variant:11s} {row['ms_per_iter']:9.1f} ms/iter{extra}  peak {peak:.2f} GiB"
          f"  infer {inf:8.1f} ms  (graph={captured}, bf16={amp}, build {build_s:.1f} s)", flush=True)
    return row


def bench_shape(shape: Shape, device: torch.device, variants: list[str], iters: int, warmup: int,
                profile: bool = False) -> list[dict]:
    """Time every variant at one shape: one after the other on CUDA (each with its own peak memory),
    interleaved iteration by iteration on the CPU (so load from other processes hits all alike)."""
    problem = make_problem(shape, device)
    variants = [v for v in variants if not (v == "graph_fp32" and device.type != "cuda")]
    if device.type == "cpu":
        return _bench_shape_interleaved(shape, problem, device, variants, iters, warmup, profile)
    rows = []
    for variant in variants:
        reset_peak(device)
        t0 = time.perf_counter()
        model, fn, amp, captured = _build(variant, shape, problem, device, iters + warmup + 3)
        build_s = time.perf_counter() - t0
        times = time_iterations(fn, iters, warmup, device)
        train_peak = peak_gib(device)
        inf = inference_ms(model, problem.cube, amp, device, max(1, iters // 2))
        rows.append(_row(shape, variant, times, train_peak, inf, amp, captured, build_s))
        if profile and variant == variants[-1]:
            _profile(fn, device, f"{shape.key}/{variant}")
        del model, fn
        gc.collect()
    return rows


def _bench_shape_interleaved(shape, problem, device, variants, iters, warmup, profile=False) -> list[dict]:
    built = {}
    for variant in variants:
        t0 = time.perf_counter()
        built[variant] = (*_build(variant, shape, problem, device, iters + warmup + 3), time.perf_counter() - t0)
    for _ in range(warmup):
        for _model, fn, *_ in built.values():
            fn()
    wall = {v: [] for v in variants}
    cpu = {v: [] for v in variants}
    for _ in range(iters):
        for v, (_model, fn, *_rest) in built.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[v].append((time.perf_counter() - t0) * 1e3)
            cpu[v].append((time.process_time() - c0) * 1e3)
    rows = []
    for v, (model, _fn, amp, captured, build_s) in built.items():
        inf = inference_ms(model, problem.cube, amp, device, 1)
        rows.append(_row(shape, v, wall[v], math.nan, inf, amp, captured, build_s, cpu[v]))
    if profile:
        _profile(built[variants[-1]][1], device, f"{shape.key}/{variants[-1]}")
    return rows


def _profile(fn, device: torch.device, label: str) -> None:
    """Print the 12 most expensive device kernels of 3 iterations (where the time goes)."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts, record_shapes=device.type == "cpu") as prof:
        for _ in range(3):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"### profile {label} (3 iterations)")
    print(prof.key_averages().table(sort_by=key, row_limit=12, max_name_column_width=60))
    if device.type == "cpu":  # which convolutions: the shapes tell the stage and the fold
        print(prof.key_averages(group_by_input_shape=True).table(
            sort_by=key, row_limit=12, max_name_column_width=30, max_shapes_column_width=80))


def check_equivalence(device: torch.device) -> float:
    """Relative difference of logits between baseline and ours with the same weights (fp64 on CPU, small)."""
    torch.manual_seed(1)
    ours = RSSGL(RssglConfig(24, 5, (3, 5, 5))).double()
    base = BaselineRSSGL(24, 5, (3, 5, 5)).double()
    load_fused_weights(base, ours.state_dict())
    x = torch.randn(1, 24, 32, 48, dtype=torch.float64)
    with torch.no_grad():
        a, _ = ours(x)
        b, _ = base(x)
    return float((a - b).norm() / b.norm())


def full_salinas_a(data_dir: Path, device: str, with_baseline: bool, seeds: list[int] | None = None,
                   amps: list[str] | None = None) -> list[dict]:
    """Train on the real Salinas-A scene through RssglClassifier, paper and validation mode, seed 2333."""
    import scipy.io

    from rssgl_qgis.core.data.sampling import percent_split
    from rssgl_qgis.core.metrics import accuracy_summary, confusion_matrix
    from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams

    cube = scipy.io.loadmat(data_dir / "SalinasA_corrected.mat")["salinasA_corrected"]
    gt = scipy.io.loadmat(data_dir / "SalinasA_gt.mat")["salinasA_gt"].astype(np.int64)
    cube = np.ascontiguousarray(cube.transpose(2, 0, 1).astype(np.float32))
    values = np.unique(gt[gt > 0])
    out = []
    for seed, amp, selection in [(s, a, m) for s in (seeds or [2333]) for a in (amps or ["auto"])
                                 for m in ("paper", "validation")]:
        train, test = percent_split(gt, 1.0, 5, seed)
        params = TrainingParams(iterations=600, selection=selection, seed=seed, device=device, amp=amp)
        clf = RssglClassifier({"kernel": (3, 5, 5)}, params)
        t0 = time.perf_counter()
        clf.fit(cube, train, eval_labels=test)
        fit_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        pred = clf.predict(cube)
        pred_s = time.perf_counter() - t1
        m = test > 0
        cm = confusion_matrix(test[m], pred[m], values)
        summary = accuracy_summary(cm)
        row = {"selection": selection, "seed": seed, "amp": amp, "cuda_graph": getattr(clf, "accelerated_", None),
               "epochs": len(clf.history_), "fit_s": fit_s, "predict_s": pred_s, "oa": summary["oa"],
               "aa": summary["aa"], "kappa": summary["kappa"], "best_epoch": clf.best_epoch_,
               "train_seconds": clf.train_seconds_, "device": clf.device_description_}
        print(f"  Salinas-A full training ({selection}, seed {seed}, amp {amp}, graph {row['cuda_graph']}): "
              f"fit {fit_s:.1f} s wall, {row['epochs']} epochs, predict {pred_s:.2f} s, "
              f"OA {100 * row['oa']:.2f} %, best epoch {row['best_epoch']}", flush=True)
        out.append(row)
    if with_baseline:
        train, test = percent_split(gt, 1.0, 5, 2333)
        out.append(_baseline_full_salinas_a(cube, gt, train, test, values, device))
    return out


def _baseline_full_salinas_a(cube, gt, train, test, values, device_pref: str) -> dict:
    """The authors' loop on Salinas-A: 600 iterations, test OA every 10, keep the best (paper protocol)."""
    device = torch.device("cuda" if device_pref in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    mean = cube.reshape(cube.shape[0], -1).mean(1)[:, None, None]
    std = cube.reshape(cube.shape[0], -1).std(1)[:, None, None]
    x = (cube - mean) / std
    h, w = gt.shape
    ph, pw = -h % 16, -w % 16
    x = np.pad(x, ((0, 0), (0, ph), (0, pw)))
    lab = np.searchsorted(values, np.pad(train, ((0, ph), (0, pw)))) * (np.pad(train, ((0, ph), (0, pw))) > 0)
    lab = np.where(np.pad(train, ((0, ph), (0, pw))) > 0, lab + 1, 0)
    ind = (lab > 0).astype(np.int64)
    counts = [int((lab == k).sum()) for k in range(1, len(values) + 1)]
    torch.manual_seed(2333)
    model = BaselineRSSGL(cube.shape[0], len(values), (3, 5, 5)).to(device)
    tr = BaselineTrainer(model, torch.from_numpy(x)[None].to(device), lab, ind, counts, max_iters=600)
    test_pad = np.pad(test, ((0, ph), (0, pw)))
    tm = test_pad > 0
    test_idx = np.searchsorted(values, test_pad[tm])
    best, t0 = -1.0, time.perf_counter()
    for it in range(600):
        tr.step()
        if (it + 1) % 10 == 0:
            prob = tr.predict()[0].argmax(0).cpu().numpy()
            oa = float((prob[tm] == test_idx).mean())
            best = max(best, oa)
    wall = time.perf_counter() - t0
    print(f"  Salinas-A full training (baseline, paper protocol): {wall:.1f} s wall, best test OA {100 * best:.2f} %")
    return {"selection": "baseline_paper", "fit_s": wall, "oa": best}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="ip,sa,pu,salinas_a")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--iters", type=int, default=None, help="timed iterations (default 20 on CUDA, 3 on CPU)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed iterations first (default 5 / 1)")
    ap.add_argument("--variants", default=",".join(ALL_VARIANTS))
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    ap.add_argument("--full-salinas-a", type=Path, default=None, metavar="DIR")
    ap.add_argument("--full-baseline", action="store_true", help="also run the baseline's full training")
    ap.add_argument("--full-seeds", default="2333", help="split/training seeds of the full runs")
    ap.add_argument("--full-amp", default="auto", help="amp settings of the full runs, e.g. auto,off")
    ap.add_argument("--profile", action="store_true", help="print the top kernels of our variants (CUDA)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    device = torch.device(args.device)
    cpu = device.type == "cpu"
    iters = args.iters if args.iters is not None else (3 if cpu else 20)
    warmup = args.warmup if args.warmup is not None else (1 if cpu else 5)
    if cpu:
        from rssgl_qgis.core.network.device import set_cpu_threads

        set_cpu_threads(args.threads)
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(ALL_VARIANTS)
    if unknown:
        ap.error(f"unknown variants {sorted(unknown)}; choose from {ALL_VARIANTS}")
    env = {
        "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "cpu_threads": torch.get_num_threads(), "python": platform.python_version(), "host": platform.node(),
        "iters": iters, "warmup": warmup, "argv": sys.argv,
    }
    print(f"# {env['device']} | torch {env['torch']} | CUDA {env['cuda']} | cuDNN {env['cudnn']} | "
          f"threads {env['cpu_threads']} | {iters} timed iterations after {warmup} warm-up", flush=True)
    eq = check_equivalence(device)
    print(f"# same weights -> same logits (fp64, baseline vs ours): relative difference {eq:.2e}", flush=True)
    rows: list[dict] = []
    with accel.cudnn_autotune(device.type == "cuda"):
        for key in [s for s in args.shapes.split(",") if s]:
            shape = SHAPES[key]
            print(f"## {shape.name} 1x{shape.bands}x{shape.height}x{shape.width}, K={shape.classes}, "
                  f"kernel {shape.kernel}, {count_flops(shape)['train_iter'] / 1e12:.2f} TFLOP/iteration", flush=True)
            rows.extend(bench_shape(shape, device, variants, iters, warmup, args.profile))
    _print_table(rows)
    full = []
    if args.full_salinas_a:
        seeds = [int(v) for v in args.full_seeds.split(",") if v]
        full = full_salinas_a(args.full_salinas_a, args.device, args.full_baseline, seeds, args.full_amp.split(","))
        _print_full(full)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"env": env, "equivalence_rel_diff": eq, "rows": rows, "full": full}, indent=1))
    return 0


def _print_full(full: list[dict]) -> None:
    """Mean OA and wall time per (selection, amp) over the seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in full:
        groups.setdefault((r["selection"], r.get("amp", "")), []).append(r)
    print("\n| Salinas-A full training | amp | runs | OA mean +- std (%) | fit wall s (mean, max) |")
    print("|---|---|---|---|---|")
    for (sel, amp), rs in groups.items():
        oa = np.array([100 * r["oa"] for r in rs])
        fit = np.array([r["fit_s"] for r in rs])
        print(f"| {sel} | {amp} | {len(rs)} | {oa.mean():.2f} +- {oa.std():.2f} | {fit.mean():.1f}, {fit.max():.1f} |")


def _print_table(rows: list[dict]) -> None:
    base = {r["shape"]: r for r in rows if r["variant"] == "baseline"}
    print("\n| shape | variant | ms/iter | speed-up vs baseline | peak GiB | inference ms |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        b = base.get(r["shape"])
        ratio = b["ms_per_iter"] / r["ms_per_iter"] if b else math.nan
        peak = "n/a" if math.isnan(r["peak_gib"]) else f"{r['peak_gib']:.2f}"
        if "cpu_ms_per_iter" in r:
            cb = b["cpu_ms_per_iter"] / r["cpu_ms_per_iter"] if b else math.nan
            peak = f"n/a (CPU-time {r['cpu_ms_per_iter']:.0f} ms, {cb:.2f}x)"
        print(f"| {r['shape']} | {r['variant']} | {r['ms_per_iter']:.1f} | {ratio:.2f}x | {peak} | {r['infer_ms']:.1f} |")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
