"""Large-raster inference benchmark: Mpixel/min and peak host memory of tiled RSSGL classification.

Writes a synthetic int16 hyperspectral raster block by block (never all in RAM): smooth abundance
fields of a few endmember spectra plus noise, like a reflectance flight line. Then classifies it
with a randomly initialised RSSGL of the right shape (speed does not depend on the weights; pass
--model for a trained one) and prints:

* Mpixel/min of the whole pipeline and peak host memory (ru_maxrss, and the peak of anonymous
  memory sampled every 20 ms, which excludes a memory-mapped input's page cache);
* the same for a naive baseline in the same run, on a strip of the raster: one tile per forward
  pass (no batching), no background reader thread and whole-scene statistics passes over every
  tile (no sampling), and the ratio against the tiled runs with as many statistics passes
  (``--scene-passes``: a comma list of pass counts to run; the baseline uses the first).

Sources:
* ``--source gdal``: a tiled GeoTIFF read through GDAL and classified by io.classify_raster into
  GeoTIFF outputs (the real plugin path; here on the CPU);
* ``--source memmap``: a raw (B, H, W) int16 file read through np.memmap by core.prediction.inference only
  (for machines without GDAL, e.g. the GPU machine): excludes GDAL I/O, measured separately with
  ``--gdal-io`` (read and write throughput of the GeoTIFF path, no network).

``--cpu-memory`` measures the CPU memory per pixel of a forward pass and of a training step (the
constants of core/prediction/memory_model.py). ``--training-memory`` additionally measures peak GPU memory of whole-scene training at a few sizes
(engine fit, one epoch) for core.prediction.memory_model.check_training_fits.

Examples:
    python benchmarks/bench_infer.py --source gdal --size 512 --device cpu --gdal-io   # 2-core CPU
    python benchmarks/bench_infer.py --source memmap --size 4096 --device cuda --training-memory
    python benchmarks/bench_infer.py --source memmap --size 4096 --device cuda --scene-passes 3,0   # H100/H200
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from rssgl_qgis.core.network.device import choose_device, describe_device, set_cpu_threads  # noqa: E402
from rssgl_qgis.core.network.model import RSSGL, RssglConfig  # noqa: E402
from rssgl_qgis.core.prediction import inference  # noqa: E402
from rssgl_qgis.core.prediction.inference import TilePredictor, predict_tiled  # noqa: E402
from rssgl_qgis.core.prediction.statistics_passes import DEFAULT_SCENE_PASSES, DEFAULT_SCENE_SAMPLE  # noqa: E402
from rssgl_qgis.core.prediction.tiling import Window  # noqa: E402

BLOCK = 256


# ------------------------------------------------------------------------------------------ memory
def _status_kib(key: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class PeakMemory:
    """Samples anonymous RSS every 20 ms in a thread (ru_maxrss also counts mapped file pages)."""

    def __init__(self):
        self.peak_anon_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak_anon_kib = max(self.peak_anon_kib, _status_kib("RssAnon"))
            time.sleep(0.02)

    def __enter__(self):
        self.peak_anon_kib = _status_kib("RssAnon")
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def maxrss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ------------------------------------------------------------------------------------------ data
def endmembers(bands: int, seed: int = 0) -> np.ndarray:
    """(4, bands) smooth reflectance-like spectra x 10000: vegetation, soil, water, roof."""
    lam = np.linspace(400, 2500, bands)
    veg = 500 + 4000 / (1 + np.exp(-(lam - 720) / 15)) * np.exp(-((lam - 1450) / 400) ** 2)
    soil = 1000 + 2500 * (lam - 400) / 2100
    water = 600 * np.exp(-(lam - 400) / 200)
    roof = 2500 + 300 * np.sin(lam / 150)
    return np.stack([veg, soil, water, roof]).astype(np.float32)


def synthetic_block(row: int, col: int, h: int, w: int, spectra: np.ndarray, seed: int = 0) -> np.ndarray:
    """int16 (B, h, w) block at (row, col) of a deterministic scene (smooth abundances + noise)."""
    yy, xx = np.mgrid[row : row + h, col : col + w].astype(np.float32)
    fields = np.stack(
        [
            np.sin(xx / 37.0 + k) * np.cos(yy / 23.0 - k) + np.sin((xx + yy) / (11.0 + 5 * k))
            for k in range(spectra.shape[0])
        ]
    )
    ab = np.exp(2.0 * fields)
    ab /= ab.sum(axis=0, keepdims=True)
    cube = np.tensordot(spectra.T, ab, axes=1)  # (B, h, w)
    rng = np.random.default_rng(seed + row * 7919 + col)
    cube += rng.normal(0, 30, (1, h, w)).astype(np.float32) + rng.normal(0, 30, (spectra.shape[1], 1, 1))
    return np.clip(cube, -32767, 32767).astype(np.int16)


def write_geotiff(path: str, size: int, bands: int) -> None:
    """Tiled, pixel-interleaved int16 GeoTIFF written one 256x256 block at a time."""
    from osgeo import gdal, osr

    gdal.UseExceptions()
    opts = ["TILED=YES", f"BLOCKXSIZE={BLOCK}", f"BLOCKYSIZE={BLOCK}", "INTERLEAVE=PIXEL", "BIGTIFF=YES"]
    ds = gdal.GetDriverByName("GTiff").Create(path, size, size, bands, gdal.GDT_Int16, opts)
    ds.SetGeoTransform((600000.0, 1.0, 0.0, 5000000.0, 0.0, -1.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32632)
    ds.SetProjection(srs.ExportToWkt())
    for b in range(bands):
        ds.GetRasterBand(b + 1).SetNoDataValue(-32768)
    spectra = endmembers(bands)
    for r in range(0, size, BLOCK):
        for c in range(0, size, BLOCK):
            h, w = min(BLOCK, size - r), min(BLOCK, size - c)
            ds.WriteArray(synthetic_block(r, c, h, w, spectra), xoff=c, yoff=r)
        ds.FlushCache()
    ds = None


def write_raw(path: str, size: int, bands: int) -> np.memmap:
    """Raw (B, H, W) int16 file written block by block through a memory map."""
    mm = np.memmap(path, dtype=np.int16, mode="w+", shape=(bands, size, size))
    spectra = endmembers(bands)
    for r in range(0, size, BLOCK):
        for c in range(0, size, BLOCK):
            h, w = min(BLOCK, size - r), min(BLOCK, size - c)
            mm[:, r : r + h, c : c + w] = synthetic_block(r, c, h, w, spectra)
        mm.flush()
    del mm
    return np.memmap(path, dtype=np.int16, mode="r", shape=(bands, size, size))


# ------------------------------------------------------------------------------------------ model
def random_predictor(bands: int, classes: int, device: torch.device, amp: bool) -> TilePredictor:
    torch.manual_seed(0)
    net = RSSGL(RssglConfig(in_bands=bands, num_classes=classes)).to(device).eval()
    spectra = endmembers(bands)
    return TilePredictor(network=net, band_mean=spectra.mean(0), band_std=spectra.std(0) + 50.0,
                         classes=np.arange(1, classes + 1), device=device, amp=amp)


class _Classifier:
    """Duck-typed classifier around a TilePredictor for io.classify_raster (band count, names, colours)."""

    def __init__(self, p: TilePredictor):
        self._p = p
        self.model_ = p.network
        self.classes_ = p.classes
        self.band_mean_, self.band_std_ = p.band_mean, p.band_std
        self.n_bands_ = p.bands
        self.class_names_ = [f"class {c}" for c in p.classes]
        self.band_info_ = {}
        self.device_ = str(p.device)


# ------------------------------------------------------------------------------------------ runs
def run_memmap(mm: np.memmap, pred: TilePredictor, args, rows: int | None = None, baseline: bool = False) -> dict:
    _, size, _ = mm.shape
    height = rows or size
    labels = np.zeros((height, size), dtype=np.uint8)
    conf = np.zeros((height, size), dtype=np.float32)
    ticks = []

    def write(r):
        rs, cs = r.window.slices
        labels[rs, cs] = r.labels
        conf[rs, cs] = r.confidence

    def read(win: Window) -> np.ndarray:
        return np.array(mm[:, win.row : win.row + win.height, win.col : win.col + win.width])

    if pred.device.type == "cuda":
        torch.cuda.synchronize()
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        rep = predict_tiled(pred, read, height, size, write_window=write, tile=args.tile, halo=args.halo,
                            batch=1 if baseline else args.batch, nodata=[-32768] * mm.shape[0], itemsize=2,
                            memory_limit_bytes=int(args.memory_gib * 2**30), prefetch=0 if baseline else 2,
                            progress=lambda p, m: ticks.append(p), scene_passes=args.scene_passes,
                            scene_sample=args.scene_sample, layerwise=False if baseline else args.layerwise)
        seconds = time.perf_counter() - t0
    return dict(mode="baseline" if baseline else "tiled", source="memmap", height=height, width=size,
                scene_passes=rep.scene_passes, scene_sample=args.scene_sample, layerwise=rep.layerwise,
                seconds=round(seconds, 2), mpix_per_min=round(height * size / 1e6 / seconds * 60, 4),
                peak_anon_gib=round(mem.peak_anon_kib / 2**20, 2), maxrss_gib=round(maxrss_gib(), 2),
                tiles=rep.tiles, tile=rep.tile, halo=rep.halo, batch=rep.batch, read=list(rep.read_shape),
                read_s=round(rep.read_seconds, 2), compute_s=round(rep.compute_seconds, 2),
                write_s=round(rep.write_seconds, 2), oom_retries=rep.oom_retries, progress_calls=len(ticks))


def run_gdal(path: str, pred: TilePredictor, args, outdir: str) -> dict:
    from rssgl_qgis.io.classify_raster import ClassifyOutputs, classify_raster

    clf = _Classifier(pred)
    out = ClassifyOutputs(os.path.join(outdir, "classes.tif"), os.path.join(outdir, "confidence.tif"))
    ticks = []
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        rep = classify_raster(clf, path, out, tile=args.tile, halo=args.halo, batch=args.batch,
                              memory_limit_bytes=int(args.memory_gib * 2**30), progress=lambda p, m: ticks.append(p),
                              scene_passes=args.scene_passes)
        seconds = time.perf_counter() - t0
    return dict(mode="tiled", source="gdal", height=rep.height, width=rep.width, seconds=round(seconds, 2),
                scene_passes=args.scene_passes,
                mpix_per_min=round(rep.width * rep.height / 1e6 / seconds * 60, 4),
                peak_anon_gib=round(mem.peak_anon_kib / 2**20, 2), maxrss_gib=round(maxrss_gib(), 2),
                tiles=rep.tiles, tile=rep.tile, halo=rep.halo, batch=rep.batch, progress_calls=len(ticks))


def gdal_io(path: str, outdir: str) -> dict:
    """GDAL read throughput (all bands, 576x576 windows) and Byte/Float32 GeoTIFF write throughput."""
    from osgeo import gdal

    from rssgl_qgis.io.blocks import GdalWindowReader
    from rssgl_qgis.io.raster import raster_info
    from rssgl_qgis.io.raster_write import BlockWriter

    info = raster_info(path)
    reader = GdalWindowReader(path, info)
    t0 = time.perf_counter()
    nbytes = 0
    for r in range(0, info.height, 512):
        for c in range(0, info.width, 512):
            block = reader(Window(r, c, min(576, info.height - r), min(576, info.width - c)))
            nbytes += block.nbytes
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with BlockWriter(os.path.join(outdir, "io_test.tif"), info, bands=1, dtype="Float32", nodata=-1) as w:
        for r in range(0, info.height, 512):
            for c in range(0, info.width, 512):
                w.write(np.random.rand(min(512, info.height - r), min(512, info.width - c)).astype(np.float32),
                        xoff=c, yoff=r)
    write_s = time.perf_counter() - t0
    gdal.Unlink(os.path.join(outdir, "io_test.tif"))
    px = info.width * info.height
    return dict(read_mb_s=round(nbytes / 2**20 / read_s, 1), read_mpix_per_min=round(px / 1e6 / read_s * 60, 1),
                write_float32_mpix_per_min=round(px / 1e6 / write_s * 60, 1), read_s=round(read_s, 2),
                write_s=round(write_s, 2))


def training_memory(device: torch.device, shapes) -> list[dict]:
    """Peak GPU memory of RssglClassifier.fit (one epoch of 10 iterations) on random scenes."""
    from rssgl_qgis.core.prediction.memory_model import estimate_training_bytes
    from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams

    rows = []
    for bands, h, w in shapes:
        rng = np.random.default_rng(0)
        cube = rng.normal(0, 1, (bands, h, w)).astype(np.float32)
        labels = np.zeros((h, w), dtype=np.int32)
        labels[::7, ::7] = rng.integers(1, 5, labels[::7, ::7].shape)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        t0 = time.perf_counter()
        RssglClassifier(params=TrainingParams(iterations=10, device=str(device), selection="loss",
                                              validation_share=0.0)).fit(cube, labels)
        peak = torch.cuda.max_memory_allocated(device) - base
        rows.append(dict(bands=bands, height=h, width=w, peak_gib=round(peak / 2**30, 3),
                         bytes_per_px=round(peak / (h * w)), estimate_gib=round(estimate_training_bytes(bands, h, w)
                                                                                / 2**30, 3),
                         seconds=round(time.perf_counter() - t0, 1)))
        print("training memory", rows[-1], flush=True)
    return rows


def _memory_child(bands: int, side: int, train: bool) -> None:
    """In a fresh process: RSS growth of one forward (or forward + backward) of RSSGL at side x side."""
    torch.manual_seed(0)
    net = RSSGL(RssglConfig(in_bands=bands, num_classes=16))
    x = torch.randn(1, bands, side, side)
    with torch.no_grad():
        net(torch.randn(1, bands, 16, 16))  # load kernels, allocate the weights' pages
    base = _status_kib("VmRSS")
    if train:
        logits, z = net(x)
        (logits.sum() + z.sum()).backward()
    else:
        with torch.no_grad():
            net(x)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(dict(bands=bands, side=side, train=train, delta_mib=round((peak - base) / 1024, 1),
                          bytes_per_px=round((peak - base) * 1024 / side**2))))


def cpu_memory(shapes) -> list[dict]:
    """CPU forward / training-step memory per pixel, each shape in its own process (RSS high-water mark)."""
    import subprocess

    rows = []
    for bands, side, train in shapes:
        out = subprocess.run([sys.executable, __file__, "--memory-child", f"{bands},{side},{int(train)}"],
                             capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print("cpu memory", rows[-1], flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", choices=["gdal", "memmap"], default="gdal")
    ap.add_argument("--size", type=int, default=None,
                    help="raster side in pixels (default 4096, the issue's target, on CUDA; 512 on a CPU)")
    ap.add_argument("--bands", type=int, default=200)
    ap.add_argument("--classes", type=int, default=16)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tile", default=None, help="core tile size; a comma list runs each (e.g. 512,1024)")
    ap.add_argument("--halo", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--scene-passes", default=str(DEFAULT_SCENE_PASSES),
                    help="whole-scene statistics passes (comma list runs each; the baseline uses the first)")
    ap.add_argument("--autotune", action=argparse.BooleanOptionalAction, default=None,
                    help="CUDA: cuDNN kernel timing on/off (default: core.prediction.inference.CUDNN_AUTOTUNE)")
    ap.add_argument("--scene-sample", type=int, default=DEFAULT_SCENE_SAMPLE,
                    help="statistics passes look at every N-th tile of large rasters (1 = all)")
    ap.add_argument("--memory-gib", type=float, default=2.0, help="host memory limit of the run")
    ap.add_argument("--amp", choices=["auto", "off", "on"], default="auto",
                    help="bf16 autocast: auto = on CUDA only (the engine's default); on = on the CPU too")
    ap.add_argument("--baseline-rows", type=int, default=None, help="rows of the baseline strip (default size/4)")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--layerwise", dest="layerwise_modes", default="auto",
                    help="memmap source: layer-wise whole-scene prediction on the CPU (core/prediction/layerwise.py): "
                         "auto (the default: where it fits), off (read windows + statistics passes), on; a comma "
                         "list runs each in the same process (e.g. auto,off)")
    ap.add_argument("--gdal-io", action="store_true", help="also measure GDAL read/write throughput")
    ap.add_argument("--training-memory", action="store_true", help="CUDA only: peak memory of fit at 3 sizes")
    ap.add_argument("--training-memory-only", action="store_true", help="skip the raster benchmark")
    ap.add_argument("--io-only", action="store_true", help="with --source gdal: only the GDAL I/O measurement")
    ap.add_argument("--cpu-memory", action="store_true",
                    help="only: CPU memory per pixel of a forward pass (64/128/256 px) and a training step")
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", default=None, help="where the synthetic raster goes (default: a temp folder)")
    ap.add_argument("--raw", default=None,
                    help="--source memmap: raw int16 raster to reuse (same as write_raw; written when missing)")
    ap.add_argument("--json", help="write all results here")
    args = ap.parse_args(argv)
    if args.memory_child:
        bands, side, train = (int(v) for v in args.memory_child.split(","))
        _memory_child(bands, side, bool(train))
        return 0
    if args.cpu_memory:
        rows = cpu_memory([(204, 64, False), (204, 128, False), (204, 256, False), (204, 128, True), (50, 128, True)])
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
        return 0
    device = choose_device(args.device)
    if args.autotune is not None:
        inference.CUDNN_AUTOTUNE = args.autotune
    if device.type == "cpu":
        set_cpu_threads()
    if args.size is None:
        args.size = 4096 if device.type == "cuda" else 512
        if device.type != "cuda":
            print("# CPU: using a 512 x 512 raster (4096 x 4096 would take hours on a few cores); set --size")
    print(f"# device: {describe_device(device)}; torch {torch.__version__}", flush=True)
    results: dict = {"device": describe_device(device), "torch": torch.__version__, "size": args.size,
                     "bands": args.bands, "runs": []}
    pred = random_predictor(args.bands, args.classes, device,
                            amp=args.amp == "on" or (device.type == "cuda" and args.amp == "auto"))
    tiles = [None] if args.tile is None else [int(t) for t in str(args.tile).split(",")]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        if args.training_memory_only:
            tiles = []
        elif args.source == "gdal":
            t0 = time.perf_counter()
            path = os.path.join(tmp, "scene.tif")
            write_geotiff(path, args.size, args.bands)
        else:
            t0 = time.perf_counter()
            path = args.raw or os.path.join(tmp, "scene.raw")
            if args.raw and os.path.exists(path) and os.path.getsize(path) == 2 * args.bands * args.size**2:
                mm = np.memmap(path, dtype=np.int16, mode="r", shape=(args.bands, args.size, args.size))
            else:
                mm = write_raw(path, args.size, args.bands)
        if tiles:
            gib = args.size**2 * args.bands * 2 / 2**30
            print(f"# wrote {args.size}x{args.size}x{args.bands} int16 ({gib:.2f} GiB) in "
                  f"{time.perf_counter() - t0:.1f} s ({args.source})", flush=True)
        passes_list = [int(v) for v in str(args.scene_passes).split(",") if v]
        modes = {"auto": None, "off": False, "on": True}
        for tile in [] if args.io_only else tiles:
            for passes in passes_list:
                for mode in args.layerwise_modes.split(","):
                    args.tile, args.scene_passes, args.layerwise = tile, passes, modes[mode]
                    row = run_gdal(path, pred, args, tmp) if args.source == "gdal" else run_memmap(mm, pred, args)
                    results["runs"].append(row)
                    print("tiled   ", row, flush=True)
        if tiles and not args.io_only and not args.no_baseline and args.source == "memmap":
            # naive: batch 1, no reader thread, and statistics passes over every tile (no sampling)
            args.tile, args.scene_passes, args.scene_sample = tiles[0], passes_list[0], 1
            base = run_memmap(mm, pred, args, rows=args.baseline_rows or max(64, args.size // 4), baseline=True)
            results["runs"].append(base)
            print("baseline", base, flush=True)
            # the same work per pixel on both sides: tiled rows with the baseline's number of passes
            same = [r["mpix_per_min"] for r in results["runs"]
                    if r["mode"] == "tiled" and r["scene_passes"] == base["scene_passes"]]
            best = max(same or [r["mpix_per_min"] for r in results["runs"] if r["mode"] == "tiled"])
            results["speedup_vs_baseline"] = round(best / max(base["mpix_per_min"], 1e-9), 2)
            print(f"# speed-up vs naive (batch 1, no reader thread, tile {tiles[0]}, {base['scene_passes']} statistics "
                  f"passes over every tile, against the tiled runs with as many passes): "
                  f"{results['speedup_vs_baseline']}x")
        if tiles and args.gdal_io and args.source == "gdal":
            results["gdal_io"] = gdal_io(path, tmp)
            print("gdal io ", results["gdal_io"], flush=True)
    if (args.training_memory or args.training_memory_only) and device.type == "cuda":
        results["training_memory"] = training_memory(device, [(200, 256, 256), (200, 512, 512), (100, 512, 512)])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
