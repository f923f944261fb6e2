"""The band check on a 20000 x 20000 x 204 raster: the first scan against io.band_scan, in one run (issue 29).

The raster is the issue's: Salinas-A (83 x 86 x 204, int16, from /work/shared/data) resampled to 20000 x 20000 by a
VRT (nearest neighbour, one source per band), so no large file is written. A second VRT leaves bands 130-135 without
a source and with a nodata value: they read as nodata everywhere, like EnMAP L2A's water-vapour bands, so the new
scan must read them whole. Each case runs in its own process, so its peak RSS (ru_maxrss) is its own:

* ``old``: the scan before issue 29 (every value of every band as float64, in strips of 256 MiB), stopped after
  ``--old-limit`` seconds; printed as '> limit' with the projection from the values it read per second;
* ``new`` and ``new-empty``: io.bands.unusable_bands on both VRTs: seconds to its first message, to its end,
  the values it read, peak RSS;
* ``train`` (with ``--train``): workflow.train_from_files with ITERATIONS=1, no cross-validation, on the CPU, with
  60 training points (10 per class of the Salinas-A ground truth) on the VRT with empty bands: seconds to each
  message up to the start of training, where it is cancelled, or to the error that stops it (the process's
  address space is capped at ``--train-memory`` GiB, so running out of memory is an error with its place in the
  code rather than the kernel's OOM killer on a shared machine). ``--train-stage`` is train_from_files's
  rssgl_stage: with "never" (stage one, the default) the run is cancelled ``--statistics-seconds`` after the
  spectral fit's band statistics (a whole read of the raster) began; the summary gives the first message, the
  end of the band check, the start of the spectral fit, the longest silence before it and the peak RSS then;
* ``train-baseline`` (with ``--train --baseline ROOT``): the same with the rssgl_qgis of another checkout, e.g.
  ``git worktree add /tmp/base HEAD`` before a change, in the same run.

    python benchmarks/bench_band_scan.py --work /tmp/bandscan/bench --train
    python benchmarks/bench_band_scan.py --work /tmp/bandscan/bench --cases "" --train --baseline /tmp/base
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = 20000
PIXEL = 3.7  # m, AVIRIS over Salinas
ORIGIN = (615000.0, 4065000.0)
EMPTY = range(130, 136)  # 1-based bands without a source in the second VRT
NODATA = -32768


def build_rasters(work: Path, shared: Path) -> dict[str, str]:
    """Salinas-A as a small GeoTIFF, two 20000 x 20000 VRTs over it and a GeoPackage of training points."""
    from osgeo import gdal, ogr, osr

    from rssgl_qgis.core.data.datasets import SCENES, find_scene_file, load_ground_truth, load_mat_array

    gdal.UseExceptions()
    work.mkdir(parents=True, exist_ok=True)
    spec = SCENES["salinas_a"]
    labels = load_ground_truth("salinas_a", shared)
    raw = load_mat_array(find_scene_file(shared, spec.cube_files, "salinas_a"), 3, labels.shape)
    cube = np.ascontiguousarray(np.transpose(raw, (2, 0, 1))).astype(np.int16)
    bands, height, width = cube.shape
    tif = work / "salinas_a.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(tif), width, height, bands, gdal.GDT_Int16)
    for k in range(bands):
        ds.GetRasterBand(k + 1).WriteArray(cube[k])
    ds = None
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32610)
    paths = {}
    for name, empty in (("salinas_a_20000.vrt", ()), ("salinas_a_20000_empty.vrt", EMPTY)):
        lines = [f'<VRTDataset rasterXSize="{SIZE}" rasterYSize="{SIZE}">',
                 f"  <SRS>{escape(srs.ExportToWkt())}</SRS>",
                 f"  <GeoTransform>{ORIGIN[0]}, {PIXEL}, 0, {ORIGIN[1]}, 0, {-PIXEL}</GeoTransform>"]
        for k in range(1, bands + 1):
            lines.append(f'  <VRTRasterBand dataType="Int16" band="{k}">')
            if k in empty:  # no source: the band reads as its nodata value everywhere
                lines.append(f"    <NoDataValue>{NODATA}</NoDataValue>")
            else:
                lines += ["    <SimpleSource>",
                          '      <SourceFilename relativeToVRT="1">salinas_a.tif</SourceFilename>',
                          f"      <SourceBand>{k}</SourceBand>",
                          f'      <SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>',
                          f'      <DstRect xOff="0" yOff="0" xSize="{SIZE}" ySize="{SIZE}"/>',
                          "    </SimpleSource>"]
            lines.append("  </VRTRasterBand>")
        lines.append("</VRTDataset>")
        (work / name).write_text("\n".join(lines) + "\n")
        paths["new-empty" if empty else "new"] = str(work / name)
    # 10 training points per class, at the centre of a ground-truth pixel on the 20000 x 20000 grid
    gpkg = work / "points.gpkg"
    if gpkg.exists():
        gpkg.unlink()
    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(gpkg))
    layer = source.CreateLayer("points", srs, ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
    rng = np.random.default_rng(0)
    for value in np.unique(labels[labels > 0]):
        rows, cols = np.nonzero(labels == value)
        for i in rng.choice(rows.size, 10, replace=False):
            feature = ogr.Feature(layer.GetLayerDefn())
            x = ORIGIN[0] + (cols[i] + 0.5) * SIZE / width * PIXEL
            y = ORIGIN[1] - (rows[i] + 0.5) * SIZE / height * PIXEL
            feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({x} {y})"))
            feature.SetField("class_id", int(value))
            layer.CreateFeature(feature)
    source = None
    paths["points"] = str(gpkg)
    return paths


def old_scan(path: str, limit: float) -> dict:
    """The scan before issue 29 (io/bands._scan_bands at b1fe151), stopped after ``limit`` seconds."""
    from rssgl_qgis.io.raster import _open, raster_info

    info = raster_info(path)
    started = time.perf_counter()
    dataset = _open(path)
    step = max(1, min(info.height, 256 * 2**20 // max(1, info.width * info.bands * 8)))
    any_valid = np.zeros(info.bands, dtype=bool)
    lo, hi = np.full(info.bands, np.inf), np.full(info.bands, -np.inf)
    values = 0
    finished = True
    for row in range(0, info.height, step):
        if time.perf_counter() - started > limit:
            finished = False
            break
        rows = min(step, info.height - row)
        raw = dataset.ReadAsArray(0, row, info.width, rows)
        raw = np.asarray(raw).reshape(info.bands, rows * info.width).astype(np.float64, copy=False)
        ok = np.isfinite(raw)
        for k, nodata in enumerate(info.nodata):
            if nodata is not None and np.isfinite(nodata):
                ok[k] &= raw[k] != nodata
        any_valid |= ok.any(axis=1)
        lo = np.minimum(lo, np.where(ok, raw, np.inf).min(axis=1))
        hi = np.maximum(hi, np.where(ok, raw, -np.inf).max(axis=1))
        values += raw.size
    seconds = time.perf_counter() - started
    total = info.width * info.height * info.bands
    return {"finished": finished, "seconds": seconds, "values_read": values, "values_total": total,
            "projected_seconds": total / max(values, 1) * seconds, "first_message_seconds": None}


def new_scan(path: str) -> dict:
    """io.bands.unusable_bands's two steps (the file's bad-band list, then io.band_scan), timed."""
    from rssgl_qgis.io.band_scan import scan_bands
    from rssgl_qgis.io.bands import flagged_bad_bands
    from rssgl_qgis.io.raster import raster_info

    info = raster_info(path)
    started = time.perf_counter()
    messages: list[tuple[float, str]] = []
    flagged = flagged_bad_bands(path, info)
    scan = scan_bands(path, info, log=lambda level, m: messages.append((time.perf_counter() - started, m)))
    seconds = time.perf_counter() - started
    problems = {"flagged": flagged, "no data": scan.no_data, "constant": scan.constant}
    return {"finished": True, "seconds": seconds, "first_message_seconds": messages[0][0] if messages else None,
            "messages": [f"{t:.2f} s: {m}" for t, m in messages], "values_read": scan.values_read,
            "values_total": info.width * info.height * info.bands, "sampled_chunks": scan.sampled_chunks,
            "read_whole": scan.read_whole, "problems": problems}


def _vm_hwm_gib() -> float:
    """The process's peak resident set so far (VmHWM), in GiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def train(path: str, points: str, limit: float, memory_gib: float, stage: str = "always",
          statistics_seconds: float = 5.0) -> dict:
    """Train RSSGL (ITERATIONS=1, no cross-validation, CPU) until training starts (stage "always"), or until
    ``statistics_seconds`` into the spectral fit's band statistics (stage "never"), then cancel.

    The process's address space is capped at ``memory_gib`` (RLIMIT_AS), so running out of memory is a
    MemoryError with its place in the code, not the kernel's OOM killer. Each event is also written to stderr
    as it happens. The start of the band statistics is seen by wrapping WindowedScene.band_statistics (the
    code before issue 29's change sends no message there).
    """
    import tempfile
    import traceback

    resource.setrlimit(resource.RLIMIT_AS, (int(memory_gib * 2**30), int(memory_gib * 2**30)))

    from rssgl_qgis.core.errors import Cancelled
    from rssgl_qgis.core.training.classifier import TrainingParams
    from rssgl_qgis.core.training.windowed_scene import WindowedScene
    from rssgl_qgis.workflows.train import train_from_files

    started = time.perf_counter()
    events: list[tuple[float, str]] = []
    stop = {"now": False}
    statistics = {}
    band_statistics = WindowedScene.band_statistics

    def timed_statistics(self, *args, **kwargs):
        note("(band statistics of the spectral fit begin)")
        statistics.update(start=events[-1][0], peak_rss_gib=_vm_hwm_gib())
        return band_statistics(self, *args, **kwargs)

    WindowedScene.band_statistics = timed_statistics

    def should_stop() -> bool:
        now = time.perf_counter() - started
        return stop["now"] or now > limit or ("start" in statistics and now > statistics["start"] + statistics_seconds)

    def note(text: str) -> None:
        if not events or events[-1][1] != text:
            events.append((time.perf_counter() - started, text))
            print(f"{events[-1][0]:.2f} s: {text[:160]}", file=sys.stderr, flush=True)

    def progress(percent: float, message: str) -> None:
        note(f"progress: {message}")
        if percent >= 3.0 and message == "training":
            stop["now"] = True

    def log(level: str, message: str) -> None:
        note(f"{level}: {message}")

    params = TrainingParams(iterations=1, device="cpu", seed=0)
    out = tempfile.mkdtemp(prefix="bandscan_train_")
    outcome = "finished"
    try:
        train_from_files(path, samples_vector=points, class_field="class_id", params=params, cv_folds=0,
                         rssgl_stage=stage, model_out=os.path.join(out, "m.rssgl"), progress=progress,
                         should_stop=should_stop, log=log)
    except Cancelled:
        outcome = "cancelled at the start of training" if stop["now"] else (
            f"cancelled {statistics_seconds:g} s into the band statistics" if "start" in statistics
            else f"cancelled after {limit:.0f} s")
    except (MemoryError, RuntimeError) as error:  # GDAL says "cannot allocate" as a RuntimeError
        where = [f for f in traceback.extract_tb(sys.exc_info()[2]) if "rssgl_qgis" in f.filename][-2:]
        outcome = f"{type(error).__name__} under a {memory_gib:g} GiB cap ({str(error).strip()[-80:]}), in " + \
            " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(where))
    before = [t for t, _ in events if "start" not in statistics or t <= statistics["start"]]
    band_check = [t for t, m in events if m == "progress: band check done"]
    return {"finished": stop["now"] or "start" in statistics, "seconds": time.perf_counter() - started,
            "outcome": outcome, "first_message_seconds": events[0][0] if events else None,
            "band_check_seconds": band_check[0] if band_check else None,
            "statistics_start_seconds": statistics.get("start"),
            "peak_rss_before_statistics_gib": statistics.get("peak_rss_gib"),
            "longest_silence_seconds": max(np.diff([0.0, *before]), default=None),
            "events": [f"{t:.2f} s: {m[:160]}" for t, m in events]}


def child(args: argparse.Namespace) -> int:
    if args.root:  # train-baseline: another checkout's rssgl_qgis
        sys.path.insert(0, args.root)
    paths = json.loads(args.paths)
    if args.case == "old":
        result = old_scan(paths["new"], args.old_limit)
    elif args.case in ("new", "new-empty"):
        result = new_scan(paths[args.case])
    else:
        result = train(paths["new-empty"], paths["points"], args.train_limit, args.train_memory, args.train_stage,
                       args.statistics_seconds)
    result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/bench_band_scan", help="folder for the VRTs (a few MB)")
    parser.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"), help="folder holding salinas_a/")
    parser.add_argument("--old-limit", type=float, default=120.0, help="seconds the old scan may run")
    parser.add_argument("--train", action="store_true", help="also time Train RSSGL up to the start of training")
    parser.add_argument("--train-limit", type=float, default=600.0)
    parser.add_argument("--train-memory", type=float, default=8.0, help="GiB of address space the training may use")
    parser.add_argument("--train-stage", default="never", choices=("always", "never", "auto"),
                        help="train_from_files's rssgl_stage (never: stage one, stopped in its band statistics)")
    parser.add_argument("--statistics-seconds", type=float, default=5.0,
                        help="seconds the stage-one band statistics run before the run is cancelled")
    parser.add_argument("--baseline", help="also run the train case with the rssgl_qgis of this checkout")
    parser.add_argument("--cases", default="new,new-empty,old", help="which cases to run (train: see --train)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--case", choices=("old", "new", "new-empty", "train"), help=argparse.SUPPRESS)
    parser.add_argument("--paths", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        return child(args)
    paths = build_rasters(Path(args.work), Path(args.shared))
    cases = [c for c in args.cases.split(",") if c] + (["train"] if args.train else []) + (
        ["train-baseline"] if args.train and args.baseline else [])
    results = {}
    print(f"Raster: {SIZE} x {SIZE} x 204 (Salinas-A resampled by a VRT: {paths['new']}); "
          f"load average {os.getloadavg()[0]:.2f} at the start, {os.cpu_count()} CPUs")
    for case in cases:
        root = ["--root", str(Path(args.baseline).resolve())] if case == "train-baseline" else []
        done = subprocess.run([sys.executable, __file__, "--case", case.removesuffix("-baseline"), *root,
                               "--paths", json.dumps(paths),
                               "--old-limit", str(args.old_limit), "--train-limit", str(args.train_limit),
                               "--train-memory", str(args.train_memory), "--train-stage", args.train_stage,
                               "--statistics-seconds", str(args.statistics_seconds)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{case:>9}: failed (exit status {done.returncode})\n{done.stderr[-3000:]}")
            continue
        result = results[case] = json.loads(done.stdout.strip().splitlines()[-1])
        result["load_average"] = os.getloadavg()[0]
        first = result.get("first_message_seconds")
        end = f"{result['seconds']:.1f} s, {result['outcome']}" if "outcome" in result else \
            f"{result['seconds']:.1f} s" if result["finished"] else (
            f"> {result['seconds']:.0f} s (stopped; projected {result['projected_seconds']:.0f} s from "
            f"{result['values_read'] / result['seconds'] / 1e6:.0f} M values/s)" if case == "old"
            else f"{result['seconds']:.1f} s, {result.get('outcome')}")
        read = f", {result['values_read'] / 1e9:.3f} G of {result['values_total'] / 1e9:.1f} G values read" \
            if "values_read" in result else ""
        print(f"{case:>9}: first message {'none' if first is None else f'{first:.2f} s'}, end {end}{read}, "
              f"peak RSS {result['peak_rss_gib']:.2f} GiB, load average {result['load_average']:.2f}")
        if result.get("statistics_start_seconds") is not None:
            print(f"           {case}: band check done at {result['band_check_seconds']:.2f} s, the spectral fit's "
                  f"band statistics begin at {result['statistics_start_seconds']:.2f} s, longest silence before "
                  f"them {result['longest_silence_seconds']:.2f} s, peak RSS then "
                  f"{result['peak_rss_before_statistics_gib']:.2f} GiB")
        for line in result.get("messages", []) + result.get("events", []):
            print(f"           {line}")
        if "read_whole" in result:
            print(f"           sampled chunks {result['sampled_chunks']}, bands read whole {result['read_whole']}, "
                  f"left out {result['problems']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
