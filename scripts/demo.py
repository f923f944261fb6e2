"""`make demo`: synthetic scene -> Train RSSGL -> Classify with RSSGL -> Assess accuracy, via qgis_process.

Runs the plugin the way a user's script would: each step is a ``qgis_process`` call with JSON
output. The plugin is served from this working tree through a throw-away QGIS profile inside the
output folder (the user's own QGIS profile is not touched).

Train RSSGL runs with the RSSGL stage "auto", the product's path (issue 29): on a CUDA GPU RSSGL trains
(a short schedule, ``--iterations``; the paper trains 600-1000) and the cross-validation decides its vote;
on a CPU the map is the spectral model's (stage one), in seconds. ``--rssgl-stage always`` trains RSSGL on
the CPU too, as Train RSSGL did before issue 29 (minutes on 2 cores; benchmarks/bench_demo.py times both).

Usage: python scripts/demo.py --out out/demo [--rssgl-stage auto] [--iterations 40] [--size 48] [--bands 60]
(`make demo` sets PYTHONPATH so Debian's qgis_process sees the venv's torch.)
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

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

QGIS_PROCESS = shutil.which("qgis_process.bin") or shutil.which("qgis_process") or "/usr/bin/qgis_process.bin"
#: Train RSSGL's RSSGL_STAGE choices, in the order of its enum (workflows.train.RSSGL_STAGES).
RSSGL_STAGES = ("auto", "always", "never")


def plugin_profile(home: str) -> dict:
    """Environment for qgis_process with this tree's plugin enabled in a profile under ``home``.

    The plugin folder is made of symlinks to the package files plus metadata.txt, resources/ and
    i18n/, i.e. the layout of the installed zip, so the demo runs the code in this checkout.
    """
    folder = os.path.join(home, "plugins", "rssgl_qgis")
    os.makedirs(folder, exist_ok=True)
    package = os.path.join(REPO_ROOT, "rssgl_qgis")
    links = {name: os.path.join(package, name) for name in os.listdir(package) if name != "__pycache__"}
    links.update({name: os.path.join(REPO_ROOT, name) for name in ("metadata.txt", "resources", "i18n")})
    for name, target in links.items():
        link = os.path.join(folder, name)
        if os.path.exists(target) and not os.path.lexists(link):
            os.symlink(target, link)
    env = dict(os.environ)
    env.update(HOME=home, QT_QPA_PLATFORM="offscreen", QGIS_PLUGINPATH=os.path.dirname(folder))
    site = [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)]
    env["PYTHONPATH"] = os.pathsep.join([*site, REPO_ROOT, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run([QGIS_PROCESS, "plugins", "enable", "rssgl_qgis"], env=env, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"qgis_process could not enable the plugin:\n{done.stdout}\n{done.stderr}")
    return env


def children_cpu_seconds() -> float:
    """CPU time (user + system) used so far by finished child processes (qgis_process calls)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(env: dict, algorithm: str, parameters: dict) -> tuple[dict, str]:
    """One qgis_process call; returns (results, "wall s, CPU s"). Exits with qgis_process's log on failure.

    The CPU time is printed next to the wall time because on a shared machine the wall time says
    more about the neighbours than about the plugin.
    """
    args = [QGIS_PROCESS, "--json", "run", algorithm, "--", *(f"{k}={v}" for k, v in parameters.items())]
    started, cpu = time.perf_counter(), children_cpu_seconds()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    seconds = f"{time.perf_counter() - started:.0f} s (CPU {children_cpu_seconds() - cpu:.0f} s)"
    if done.returncode != 0:
        raise SystemExit(f"{algorithm} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    output = json.loads(done.stdout[done.stdout.index("{"):])
    return output["results"], seconds


def report_stage(report_path: str) -> str | None:
    """The training report's "Stage that made the map" row, as text (None where the report has none)."""
    import html
    import re

    with open(report_path, encoding="utf-8") as handle:
        found = re.search(r"Stage that made the map</td><td>(.*?)</td>", handle.read())
    return html.unescape(found.group(1)) if found else None


def independent_reference(labels_path: str, polygons_path: str, cube_path: str, out_path: str) -> int:
    """The ground truth minus the training polygons' pixels, so the accuracy is not measured on training data."""
    import numpy as np
    from osgeo import gdal

    from rssgl_qgis.io.raster import raster_info
    from rssgl_qgis.io.samples import labels_from_vector

    training = labels_from_vector(polygons_path, None, "class_id", raster_info(cube_path)).labels > 0
    source = gdal.Open(labels_path)
    labels = source.GetRasterBand(1).ReadAsArray()
    labels = np.where(training, 0, labels)
    copy = gdal.GetDriverByName("GTiff").CreateCopy(out_path, source)
    copy.GetRasterBand(1).WriteArray(labels)
    copy = None
    return int((labels > 0).sum())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/demo", help="output folder (created)")
    parser.add_argument("--rssgl-stage", default="auto", choices=RSSGL_STAGES,
                        help="Train RSSGL's RSSGL stage: auto (RSSGL on a CUDA GPU, else the spectral model's map), "
                             "always, never")
    parser.add_argument("--iterations", type=int, default=40,
                        help="RSSGL's training iterations where it trains (short demo: 40)")
    parser.add_argument("--size", type=int, default=48, help="scene height and width in pixels")
    parser.add_argument("--bands", type=int, default=60, help="spectral bands")
    parser.add_argument("--classes", type=int, default=6, help="land-cover classes")
    parser.add_argument("--seed", type=int, default=0, help="scene seed")
    parser.add_argument("--cv-folds", type=int, default=3,
                        help="cross-validation folds over whole polygons (Train RSSGL's default 3; 0 = none; each "
                             "fold is one more training; they also choose the RSSGL + spectral combination)")
    args = parser.parse_args(argv)

    from rssgl_qgis.io.scene import write_synthetic_scene

    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    started, cpu = time.perf_counter(), children_cpu_seconds()
    print(f"RSSGL demo: Train RSSGL (RSSGL stage '{args.rssgl_stage}'; where RSSGL trains, a SHORT schedule of "
          f"{args.iterations} iterations, the paper trains 600-1000) on a {args.size} x {args.size} x {args.bands} "
          "synthetic scene, then classification and accuracy assessment, each step through qgis_process.")
    scene = write_synthetic_scene(os.path.join(out, "scene"), seed=args.seed, height=args.size, width=args.size,
                                  bands=args.bands, n_classes=args.classes)
    reference = os.path.join(out, "scene", "reference_without_training.tif")
    n_reference = independent_reference(scene["labels"], scene["polygons"], scene["cube"], reference)
    print(f"1/4 scene written to {os.path.dirname(scene['cube'])}")
    env = plugin_profile(os.path.join(out, ".qgis_home"))

    results, seconds = run(env, "rssgl:train", {
        "INPUT": scene["cube"], "SAMPLES": scene["polygons"], "CLASS_FIELD": "class_id",
        "ITERATIONS": args.iterations, "VALIDATION_SHARE": 0.0, "DEVICE": 0, "CROSS_VALIDATION": args.cv_folds,
        "RSSGL_STAGE": RSSGL_STAGES.index(args.rssgl_stage),
        "OUTPUT_MODEL": os.path.join(out, "model.rssgl"), "OUTPUT_REPORT": os.path.join(out, "training.html")})
    print(f"2/4 trained in {seconds}: model {results['OUTPUT_MODEL']}, report {results['OUTPUT_REPORT']}")
    stage = report_stage(results["OUTPUT_REPORT"])
    if stage:
        print(f"    {stage[0].upper()}{stage[1:]}.")
    cv_oa = results.get("CROSS_VALIDATED_OA")

    results, seconds = run(env, "rssgl:classify", {
        "INPUT": scene["cube"], "MODEL": os.path.join(out, "model.rssgl"),
        "OUTPUT": os.path.join(out, "classification.tif"), "OUTPUT_CONFIDENCE": os.path.join(out, "confidence.tif")})
    print(f"3/4 classified in {seconds}: {results['OUTPUT']} (styled: .qml beside it), "
          f"confidence {results['OUTPUT_CONFIDENCE']}")

    results, seconds = run(env, "rssgl:accuracy", {
        "INPUT": os.path.join(out, "classification.tif"), "REFERENCE_RASTER": reference,
        "OUTPUT_HTML": os.path.join(out, "accuracy.html"), "OUTPUT_CSV": os.path.join(out, "accuracy.csv")})
    print(f"4/4 assessed in {seconds}: {results['OUTPUT_HTML']}, {results['OUTPUT_CSV']}")
    print(f"Overall accuracy {100 * results['OVERALL_ACCURACY']:.2f} %, kappa {results['KAPPA']:.4f} on "
          f"{n_reference} reference pixels outside the training polygons "
          f"(short demo training; total {time.perf_counter() - started:.0f} s, qgis_process CPU "
          f"{children_cpu_seconds() - cpu:.0f} s).")
    if cv_oa is not None:
        print(f"Cross-validated OA over {args.cv_folds} folds of whole training polygons (an estimate made before "
              f"any reference data was used): {100 * cv_oa:.2f} %.")
    print(f"Open {os.path.join(out, 'classification.tif')} in QGIS: it loads with the class names and colours.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
