"""Train RSSGL's default path on a CPU, the RSSGL stage against the spectral model's stage one, in one run (issue 29).

Two scenes, each trained through workflows.train.train_from_files with Train RSSGL's Processing defaults
(600 iterations, "fit" selection, patience 5, 3-fold cross-validation, seed 2333, device CPU), the
classification map (GeoTIFF with its class table and .qml, i.e. styled) and the confidence written:

* ``salinas_a``: Salinas-A (.data/suite/salinas_a.npz) as a GeoTIFF, 1 % of the labelled pixels of each class
  (core.data.sampling.percent_split, at least 5) as a label raster; OA on every other labelled pixel;
* ``large``: the synthetic scene at 1000 x 1000 x 224, 6 classes x 2 polygons = 12 polygons (the dock's
  first-map target); OA on the labelled pixels outside the polygons.

For each scene, each RSSGL stage (``--stages``: "auto" is the product's, which is stage one on a CPU; "always"
trains RSSGL as Train RSSGL did before issue 29) runs in its own process, stopped after ``--limit`` seconds,
so its peak RSS (ru_maxrss) is its own. Printed: wall time to the styled map, the stage that made it, OA,
peak RSS, the load average. Timings on a shared 2-core machine are upper bounds.

``--processing``: each case is one ``qgis_process run rssgl:train`` instead, as a user's script runs it (the
plugin from this tree in a throw-away profile, as `make demo`), with only the inputs, the CPU (DEVICE=2, what
"Auto" picks on a machine without a CUDA GPU) and the outputs given: every other parameter is the algorithm's
default. The stage "default" passes no RSSGL_STAGE (the algorithm's default: "Automatic" since issue 29);
"auto" / "always" / "never" pass that enum index. The time is qgis_process's whole run (start, plugin, torch
import, training, styled map); the peak RSS is qgis_process's (the case's largest child).

    python benchmarks/bench_stages.py --work /tmp/bench_stages --json /tmp/bench_stages.json
    python benchmarks/bench_stages.py --processing --scenes salinas_a --stages default,always --limit 300
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_salinas(work: Path, npz: Path) -> dict[str, str]:
    """Salinas-A as a GeoTIFF, a 1 % label raster and the test labels (.npy)."""
    from osgeo import gdal, osr

    from rssgl_qgis.core.data.sampling import percent_split
    from rssgl_qgis.core.palette import default_colors
    from rssgl_qgis.io.raster import raster_info
    from rssgl_qgis.io.raster_write import write_classification

    data = np.load(npz)
    cube, labels = data["cube"].astype(np.float32), data["labels"].astype(np.int64)
    train, test = percent_split(labels, 1.0, min_per_class=5, seed=0)
    folder = work / "salinas_a"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"cube": str(folder / "salinas_a.tif"), "samples_raster": str(folder / "train_1pct.tif"),
             "test": str(folder / "test.npy")}
    gdal.UseExceptions()
    bands, height, width = cube.shape
    ds = gdal.GetDriverByName("GTiff").Create(paths["cube"], width, height, bands, gdal.GDT_Float32)
    ds.SetGeoTransform((615000.0, 3.7, 0.0, 4065000.0, 0.0, -3.7))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32610)
    ds.SetProjection(srs.ExportToWkt())
    for k in range(bands):
        ds.GetRasterBand(k + 1).WriteArray(cube[k])
    ds = None
    values = np.unique(labels[labels > 0])
    write_classification(paths["samples_raster"], train.astype(np.int32), raster_info(paths["cube"]),
                         values.tolist(), [f"Class {v}" for v in values], default_colors(len(values)))
    np.save(paths["test"], test)
    return paths


def build_large(work: Path) -> dict[str, str]:
    """The synthetic scene at 1000 x 1000 x 224 with 12 polygons, and its test labels (.npy)."""
    from osgeo import gdal

    from rssgl_qgis.io.raster import raster_info
    from rssgl_qgis.io.samples import labels_from_vector
    from rssgl_qgis.io.scene import write_synthetic_scene

    folder = work / "large"
    paths = write_synthetic_scene(folder, seed=0, height=1000, width=1000, bands=224, n_classes=6,
                                  polygons_per_class=2)
    dataset = gdal.Open(paths["labels"])
    labels = dataset.GetRasterBand(1).ReadAsArray().astype(np.int64)
    training = labels_from_vector(paths["polygons"], None, "class_id", raster_info(paths["cube"])).labels > 0
    test = str(folder / "test.npy")
    np.save(test, np.where(training, 0, labels))
    return {"cube": paths["cube"], "samples_vector": paths["polygons"], "test": test}


def train_case(paths: dict[str, str], stage: str, limit: float, out: str) -> dict:
    """One training with the Processing defaults, stopped after ``limit`` seconds."""
    from osgeo import gdal

    from rssgl_qgis.core.errors import Cancelled
    from rssgl_qgis.core.training.params import TrainingParams
    from rssgl_qgis.workflows.train import train_from_files

    # Train RSSGL's Processing defaults (processing/train.py): VALIDATION_SHARE 0 -> "fit", PATIENCE 5, ...
    params = TrainingParams(selection="fit", fit_patience_epochs=5, iterations=600, lr=0.005, stat_loss_weight=0.001,
                            validation_share=0.0, seed=2333, device="cpu", training_input="auto",
                            patience_epochs=5)
    started = time.perf_counter()
    events: list[str] = []

    def note(text: str) -> None:
        if not events or not events[-1].endswith(text):
            events.append(f"{time.perf_counter() - started:.1f} s: {text[:150]}")
            print(events[-1], file=sys.stderr, flush=True)

    samples = {k: paths[k] for k in ("samples_vector", "samples_raster") if k in paths}
    if "samples_vector" in samples:
        samples["class_field"] = "class_id"
    classification = os.path.join(out, f"map_{stage}.tif")
    try:
        result = train_from_files(
            paths["cube"], **samples, params=params, model_out=os.path.join(out, f"m_{stage}.rssgl"),
            classification_out=classification, confidence_out=os.path.join(out, f"conf_{stage}.tif"),
            cv_folds=3, rssgl_stage=stage, progress=lambda p, m: note(f"{p:.0f} % {m}"),
            should_stop=lambda: time.perf_counter() - started > limit, log=lambda level, m: note(f"{level}: {m}"))
    except Cancelled:
        return {"finished": False, "seconds": time.perf_counter() - started, "events": events[-6:]}
    seconds = time.perf_counter() - started
    test = np.load(paths["test"])
    dataset = gdal.Open(classification)  # kept: a band outlives no dataset
    predicted = dataset.GetRasterBand(1).ReadAsArray()
    mask = test > 0
    return {"finished": True, "seconds": seconds, "stage": result.stage, "map_source": result.map_source,
            "oa": float((predicted[mask] == test[mask]).mean()), "styled": os.path.exists(classification[:-4] + ".qml"),
            "events": events[-4:]}


def processing_case(paths: dict[str, str], stage: str, limit: float, out: str) -> dict:
    """One ``qgis_process run rssgl:train`` with the algorithm's defaults (``stage`` "default": no RSSGL_STAGE),
    killed after ``limit`` seconds; the environment (os.environ) is the plugin profile's (scripts/demo.py)."""
    from osgeo import gdal

    from rssgl_qgis.workflows.stages import RSSGL_STAGES
    from scripts.demo import QGIS_PROCESS, report_stage

    classification, report = os.path.join(out, f"qp_map_{stage}.tif"), os.path.join(out, f"qp_report_{stage}.html")
    parameters = {"INPUT": paths["cube"], "DEVICE": 2, "OUTPUT_MODEL": os.path.join(out, f"qp_m_{stage}.rssgl"),
                  "OUTPUT_CLASSIFICATION": classification, "OUTPUT_REPORT": report}
    if "samples_vector" in paths:
        parameters.update(SAMPLES=paths["samples_vector"], CLASS_FIELD="class_id")
    else:
        parameters["SAMPLES_RASTER"] = paths["samples_raster"]
    if stage != "default":
        parameters["RSSGL_STAGE"] = RSSGL_STAGES.index(stage)
    unbuffered = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []  # a stopped run's last lines reach the log
    command = [*unbuffered, QGIS_PROCESS, "run", "rssgl:train", "--", *(f"{k}={v}" for k, v in parameters.items())]
    log_path = os.path.join(out, f"qp_{stage}.log")
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        while process.poll() is None and time.perf_counter() - started < limit:
            time.sleep(0.1)
        finished = process.poll() is not None
        if not finished:
            process.kill()
        process.wait()  # reaped: its ru_maxrss counts in RUSAGE_CHILDREN
    seconds = time.perf_counter() - started
    with open(log_path, encoding="utf-8", errors="replace") as log:  # messages, not the progress dots
        lines = [line.strip() for line in log if any(c.isalpha() for c in line)]
    if not finished or process.returncode != 0:
        return {"finished": False, "seconds": seconds, "returncode": process.returncode, "events": lines[-4:]}
    test = np.load(paths["test"])
    dataset = gdal.Open(classification)  # kept: a band outlives no dataset
    predicted = dataset.GetRasterBand(1).ReadAsArray()
    mask = test > 0
    return {"finished": True, "seconds": seconds, "stage": report_stage(report) or "?", "map_source": "through qgis_process",
            "oa": float((predicted[mask] == test[mask]).mean()), "styled": os.path.exists(classification[:-4] + ".qml"),
            "events": [line for line in lines if line.startswith("Stage")][-1:]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/bench_stages")
    ap.add_argument("--npz", default=str(ROOT / ".data" / "suite" / "salinas_a.npz"))
    ap.add_argument("--scenes", default="salinas_a,large")
    ap.add_argument("--stages", default="auto,always")
    ap.add_argument("--limit", type=float, default=600.0, help="seconds one training may run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default="")
    ap.add_argument("--processing", action="store_true",
                    help="run each case through qgis_process run rssgl:train with the algorithm's defaults; "
                         "stages: default (no RSSGL_STAGE given), auto, always, never")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    work = Path(args.work)
    if args.case and args.processing:
        paths, stage = json.loads(args.case)
        result = processing_case(paths, stage, args.limit, str(Path(paths["cube"]).parent))
        result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        print(json.dumps(result))
        return 0
    if args.case:
        import torch

        torch.set_num_threads(args.threads)
        paths, stage = json.loads(args.case)
        result = train_case(paths, stage, args.limit, str(Path(paths["cube"]).parent))  # beside the scene
        result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(json.dumps(result))
        return 0
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    env = None
    if args.processing:
        from scripts.demo import plugin_profile

        home = work / "qgis_home"
        shutil.rmtree(home, ignore_errors=True)  # a fresh throw-away profile (enabling twice is an error)
        env = plugin_profile(str(home))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start; limit {args.limit:.0f} s a run"
          + ("; each case through qgis_process run rssgl:train" if args.processing else ""))
    for scene in [s for s in args.scenes.split(",") if s]:
        t0 = time.perf_counter()
        paths = build_salinas(work, Path(args.npz)) if scene == "salinas_a" else build_large(work)
        print(f"{scene}: scene written in {time.perf_counter() - t0:.1f} s")
        for stage in [s for s in args.stages.split(",") if s]:
            done = subprocess.run([sys.executable, __file__, "--work", str(work), "--limit", str(args.limit),
                                   "--threads", str(args.threads), "--case", json.dumps([paths, stage]),
                                   *(["--processing"] if args.processing else [])],
                                  capture_output=True, text=True, env=env)
            if done.returncode != 0:
                print(f"  {stage:>6}: failed (exit status {done.returncode})\n{done.stderr[-3000:]}")
                continue
            r = results[f"{scene}/{stage}"] = json.loads(done.stdout.strip().splitlines()[-1])
            r["load_average"] = os.getloadavg()[0]
            if r["finished"]:
                text = (f"styled map in {r['seconds']:.1f} s, stage {r['stage']} ({r['map_source']}), "
                        f"OA {100 * r['oa']:.2f} %")
            elif r.get("returncode", -9) not in (None, -9):  # qgis_process failed (-9: killed at the limit)
                text = f"failed (exit status {r['returncode']}; last: {r['events'][-1] if r['events'] else '-'})"
            else:
                text = f"> {r['seconds']:.0f} s (stopped at the limit; last: {r['events'][-1] if r['events'] else '-'})"
            print(f"  {stage:>6}: {text}, peak RSS {r['peak_rss_gib']:.2f} GiB, load average {r['load_average']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
