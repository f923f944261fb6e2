"""Where does tiled RSSGL inference spend its time on a GPU? (diagnostic for docs/PERFORMANCE.md)

Parts (``--parts``, comma list):

* ``forward``: one forward + softmax (bf16 autocast, no grad, cuDNN autotuning on) of a randomly
  initialised RSSGL at several (N, H, W): the first call (includes cuDNN autotuning) and the median
  of ``--reps`` later calls with CUDA events, the host time to launch it, ms per Mpixel;
  ``cl`` (channels-last input) and ``nofold`` (3-D convolutions) time (2, bands, 576, 576) the same way;
  ``nobench`` turns cuDNN autotuning off, which only means something alone: cuDNN reuses cached plans;
* ``profile``: torch.profiler table of one forward at (2, bands, 576, 576), the default tiled batch;
* ``pipeline``: ``predict_tiled`` on a ``--size`` x ``--size`` int16 memmap with the time of every
  batch (first batch = cuDNN autotuning), as ``bench_infer.py --source memmap`` runs it, for each
  engine of ``--engines``: ``new`` = rssgl_qgis.core.prediction.inference, ``head`` = a copy of an older
  version saved as rssgl_qgis/core/_inference_head.py (e.g. ``git show HEAD:... > ...``); the
  label maps of all engines are compared (same model, same process: they must be equal);
* ``check``: tiled prediction of ``new`` vs ``head`` on small uint16 / float32 rasters with edge
  windows, a mask, NaNs and probabilities (the CUDA-only code paths), which must agree.

    python benchmarks/profile_tiled.py --parts forward,profile,pipeline --size 4096 --out $OUT
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.bench_infer import PeakMemory, random_predictor, write_raw  # noqa: E402
from rssgl_qgis.core.prediction import inference as new_engine  # noqa: E402


def engine(name: str):
    return new_engine if name == "new" else importlib.import_module(f"rssgl_qgis.core._inference_{name}")


def predictor_for(name: str, pred):
    """The same predictor as the engine's own TilePredictor class (each engine checks its class)."""
    return engine(name).TilePredictor(network=pred.network, band_mean=pred.band_mean, band_std=pred.band_std,
                                      classes=pred.classes, device=pred.device, amp=pred.amp)


def _shape(text: str) -> tuple[int, int, int]:
    n, h, w = (int(v) for v in text.split("x"))
    return n, h, w


def forward_times(pred, bands: int, shapes, reps: int, channels_last: bool = False) -> list[dict]:
    rows = []
    dev = pred.device
    for n, h, w in shapes:
        x = torch.randn(n, bands, h, w, device=dev)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        pred.probabilities(x)
        torch.cuda.synchronize()
        first = time.perf_counter() - t0
        gpu, launch = [], []
        for _ in range(reps):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            t0 = time.perf_counter()
            a.record()
            pred.probabilities(x)
            b.record()
            launch.append(time.perf_counter() - t0)
            b.synchronize()
            gpu.append(a.elapsed_time(b))
        ms = statistics.median(gpu)
        row = dict(n=n, h=h, w=w, channels_last=channels_last, first_s=round(first, 3), ms=round(ms, 2),
                   launch_ms=round(1000 * statistics.median(launch), 2),
                   ms_per_mpix=round(ms / (n * h * w / 1e6), 1), peak_gib=round(torch.cuda.max_memory_allocated()
                                                                               / 2**30, 2))
        rows.append(row)
        print("forward", row, flush=True)
        del x
        torch.cuda.empty_cache()
    return rows


def profile_forward(pred, bands: int, shape, out: str | None) -> None:
    from torch.profiler import ProfilerActivity, profile

    n, h, w = shape
    x = torch.randn(n, bands, h, w, device=pred.device)
    for _ in range(2):
        pred.probabilities(x)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        pred.probabilities(x)
        torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=40, max_name_column_width=60)
    kernels = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=25, max_name_column_width=90)
    if out:
        Path(out, "profile_ops.txt").write_text(table + "\n\n" + kernels)
    print(kernels[:6000], flush=True)


def pipeline(pred, size: int, bands: int, workdir: str | None, batch: int | None, engines: list[str],
             raw_path: str | None) -> list[dict]:
    rows, maps = [], {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = raw_path or os.path.join(tmp, "scene.raw")
        t0 = time.perf_counter()
        if os.path.exists(path) and os.path.getsize(path) == bands * size * size * 2:
            mm = np.memmap(path, dtype=np.int16, mode="r", shape=(bands, size, size))
        else:
            mm = write_raw(path, size, bands)
        print(f"# raw {size}^2 x {bands} ready in {time.perf_counter() - t0:.1f} s", flush=True)
        for name in engines:
            stamps = []
            labels = np.zeros((size, size), dtype=np.uint8)
            conf = np.zeros((size, size), dtype=np.float32)

            def write(r, labels=labels, conf=conf):
                labels[r.window.slices] = r.labels
                conf[r.window.slices] = r.confidence

            torch.cuda.synchronize()
            with PeakMemory() as mem:
                t0 = time.perf_counter()
                rep = engine(name).predict_tiled(
                    predictor_for(name, pred), lambda w: np.array(mm[:, w.row:w.row + w.height, w.col:w.col + w.width]), size, size,
                    write_window=write, nodata=[-32768] * bands, itemsize=2, batch=batch,
                    progress=lambda p, m, stamps=stamps: stamps.append(time.perf_counter()))
                seconds = time.perf_counter() - t0
            gaps = np.diff([t0] + stamps)
            row = dict(engine=name, size=size, seconds=round(seconds, 2),
                       mpix_per_min=round(size * size / 1e6 / seconds * 60, 1), batch=rep.batch, tiles=rep.tiles,
                       read=list(rep.read_shape), read_s=round(rep.read_seconds, 2),
                       compute_s=round(rep.compute_seconds, 2), write_s=round(rep.write_seconds, 2),
                       first_batch_s=round(float(gaps[0]), 3), median_batch_s=round(float(np.median(gaps[1:])), 3),
                       peak_anon_gib=round(mem.peak_anon_kib / 2**20, 2))
            maps[name] = (labels, conf)
            if len(maps) > 1:
                ref_labels, ref_conf = next(iter(maps.values()))
                row["labels_equal_first_engine"] = float((labels == ref_labels).mean())
                row["conf_max_abs_diff"] = float(np.abs(conf - ref_conf).max())
            rows.append(row)
            print("pipeline", row, flush=True)
    return rows


def check(dev: torch.device, engines: list[str]) -> list[dict]:
    """Small rasters through the CUDA code paths of each engine: uint16 + mask + NaN-free, float32 + NaN."""
    from rssgl_qgis.core.network.model import RSSGL, RssglConfig
    from rssgl_qgis.core.prediction.inference import TilePredictor

    torch.manual_seed(1)
    bands = 24
    net = RSSGL(RssglConfig(in_bands=bands, num_classes=5)).to(dev).eval()
    rng = np.random.default_rng(5)
    pred = TilePredictor(network=net, band_mean=rng.normal(3000, 100, bands), band_std=rng.uniform(200, 400, bands),
                         classes=np.array([1, 3, 7, 9, 300]), device=dev, amp=True)
    rows = []
    for dtype in (np.uint16, np.float32):
        cube = rng.integers(2000, 40000, (bands, 700, 530)).astype(dtype)
        valid = rng.random((700, 530)) > 0.05
        if dtype == np.float32:
            cube[3, 10:20, 30:40] = np.nan
        out = {}
        for name in engines:
            out[name] = engine(name).predict_array_tiled(predictor_for(name, pred), cube, valid=valid, tile=192, halo=32, batch=3,
                                                         with_probabilities=True)
        ref = out[engines[0]]
        for name in engines[1:]:
            got = out[name]
            row = dict(dtype=np.dtype(dtype).name, engine=name, vs=engines[0],
                       labels_equal=float((got[0] == ref[0]).mean()),
                       conf_max_abs_diff=float(np.abs(got[1] - ref[1]).max()),
                       proba_max_abs_diff=float(np.abs(got[2] - ref[2]).max()),
                       valid_pixels=(got[3].valid_pixels, ref[3].valid_pixels), tiles=got[3].tiles)
            rows.append(row)
            print("check", row, flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="forward,profile,pipeline")
    ap.add_argument("--bands", type=int, default=200)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--shapes", default="1x512x224,1x576x576,2x576x576,4x576x576")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--device", default="cuda", help="cuda (cpu only for the check part, as a smoke test)")
    ap.add_argument("--engines", default="new", help="comma list: new, head (see the docstring)")
    ap.add_argument("--raw", default=None, help="raw int16 raster to reuse (written when missing)")
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        print(f"# {torch.cuda.get_device_name(dev)}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
    pred = random_predictor(args.bands, 16, dev, amp=True)
    parts = args.parts.split(",")
    res: dict = {}
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    if "forward" in parts:
        res["forward"] = forward_times(pred, args.bands, [_shape(s) for s in args.shapes.split(",")], args.reps)
    one = [(2, 576, 576)]
    if "cl" in parts:  # channels-last input
        res["forward_cl"] = forward_times(pred, args.bands, one, args.reps, channels_last=True)
    if "nofold" in parts:  # 3-D convolutions instead of the folded 2-D ones
        for m in pred.network.modules():
            if hasattr(m, "fold_depth"):
                m.fold_depth = False
        res["forward_nofold"] = forward_times(pred, args.bands, one, args.reps)
        for m in pred.network.modules():
            if hasattr(m, "fold_depth"):
                m.fold_depth = True
    if "profile" in parts:
        profile_forward(pred, args.bands, (2, 576, 576), args.out)
    torch.backends.cudnn.benchmark = False
    if "nobench" in parts:  # cuDNN heuristics instead of autotuning
        res["forward_nobench"] = forward_times(pred, args.bands, [(2, 576, 576)], args.reps)
    torch.backends.cudnn.benchmark = previous
    engines = args.engines.split(",")
    if "check" in parts:
        res["check"] = check(dev, engines)
    if "pipeline" in parts:
        res["pipeline"] = pipeline(pred, args.size, args.bands, args.workdir, args.batch, engines, args.raw)
    if args.out:
        Path(args.out, "profile_tiled.json").write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
