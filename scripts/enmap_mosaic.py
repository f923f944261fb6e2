"""The real EnMAP mosaic through qgis_process (issue 14): Train RSSGL with the water-vapour preset, then
Classify with RSSGL on the full 224-band raster, with no manual band removal.

Steps, each one a command a user would run:

1. ``gdalbuildvrt`` the 18 EnMAP-Box test tiles (``../shared/data/enmap_potsdam_tiles``, see
   ``../shared/data/SOURCES.md``) and their label tiles into VRT mosaics; the tiles do not cover
   the whole rectangle, so the mosaic has nodata gaps between them. GDAL 3.6's gdalbuildvrt drops the
   per-band items (wavelength, fwhm, bbl) and descriptions; they are copied from the first tile into
   the VRT (newer GDALs keep them), as a user would with EnMAP-Box's metadata tools.
2. ``gdal_translate`` both to GeoTIFF (224 bands, float32, scale 1e-4, nodata -32768).
3. ``qgis_process run rssgl:train`` with DROP_WATER_VAPOUR=true, the label raster as samples, a short
   training (ITERATIONS, CPU, CROSS_VALIDATION=0) and the training raster's classification. RSSGL_STAGE is
   ``--rssgl-stage``: "auto" (Train RSSGL's default since issue 29: on the CPU the spectral model's map, stage
   one, and ITERATIONS does not apply) or "always" (RSSGL trains, ITERATIONS iterations, as before issue 29).
4. ``qgis_process run rssgl:classify`` on the same full 224-band raster with the model.

It checks that the log names the six empty bands 130-135 (the report too), that the model uses the
bands without them and without the water-vapour windows, and that the classification covers the
tiles and is nodata in the gaps. Prints what it measured; exit status 0 when every check holds.

Usage: python scripts/enmap_mosaic.py [--out out/enmap] [--iterations 2] [--rssgl-stage auto]
"""

from __future__ import annotations

import argparse
import glob
import html
import json
import os
import shutil
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
TILES = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "enmap_potsdam_tiles")

from scripts.demo import QGIS_PROCESS, RSSGL_STAGES, children_cpu_seconds, plugin_profile  # noqa: E402


def mosaic(folder: str, out: str, name: str, copy_band_metadata: bool) -> str:
    """gdalbuildvrt + gdal_translate the tiles of ``folder`` into ``out/name.tif``."""
    from osgeo import gdal

    tiles = sorted(glob.glob(os.path.join(folder, "*.tif")))
    vrt, tif = os.path.join(out, f"{name}.vrt"), os.path.join(out, f"{name}.tif")
    subprocess.run(["gdalbuildvrt", "-q", "-overwrite", vrt, *tiles], check=True)
    if copy_band_metadata:
        source, target = gdal.Open(tiles[0]), gdal.Open(vrt, gdal.GA_Update)
        for i in range(1, source.RasterCount + 1):
            band = target.GetRasterBand(i)
            if not band.GetMetadata():
                band.SetMetadata(source.GetRasterBand(i).GetMetadata())
                band.SetDescription(source.GetRasterBand(i).GetDescription())
        source = target = None
    subprocess.run(["gdal_translate", "-q", "-co", "COMPRESS=DEFLATE", "-co", "TILED=YES", vrt, tif], check=True)
    return tif


def run(env: dict, algorithm: str, parameters: dict, log_path: str) -> tuple[dict, list[str], str]:
    """One qgis_process call; returns (results, its log messages, "wall s, CPU s"); its output is kept in log_path."""
    args = [QGIS_PROCESS, "--json", "run", algorithm, "--", *(f"{k}={v}" for k, v in parameters.items())]
    started, cpu = time.perf_counter(), children_cpu_seconds()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    seconds = f"{time.perf_counter() - started:.0f} s wall, {children_cpu_seconds() - cpu:.0f} s CPU"
    text = done.stdout + "\n" + done.stderr
    with open(log_path, "w", encoding="utf-8") as handle:
        handle.write(" ".join(args) + "\n\n" + text)
    if done.returncode != 0:
        raise SystemExit(f"{algorithm} failed (log: {log_path}):\n{text[-4000:]}")
    output = json.loads(done.stdout[done.stdout.index("{"):])
    log = output.get("log") or {}
    return output["results"], [m for level in ("info", "warning") for m in log.get(level, [])], seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "out", "enmap"))
    parser.add_argument("--iterations", type=int, default=2, help="training iterations (CPU time: keep small)")
    parser.add_argument("--rssgl-stage", default="auto", choices=RSSGL_STAGES,
                        help="Train RSSGL's RSSGL stage: auto (the default: the spectral model's map on a CPU) or "
                             "always (RSSGL trains on the CPU too)")
    args = parser.parse_args(argv)
    if not os.path.isdir(TILES):
        print(f"The EnMAP tiles are not at {TILES}; nothing to do.")
        return 0
    import numpy as np
    from osgeo import gdal

    from rssgl_qgis.core.data.band_selection import water_vapour_bands
    from rssgl_qgis.core.training.classifier import RssglClassifier
    from rssgl_qgis.io.raster import raster_info

    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    raster = mosaic(os.path.join(TILES, "images"), out, "enmap_mosaic", copy_band_metadata=True)
    labels = mosaic(os.path.join(TILES, "labels"), out, "enmap_labels", copy_band_metadata=False)
    info = raster_info(raster)
    print(f"mosaic: {info.width} x {info.height} px, {info.bands} bands, wavelengths "
          f"{'known' if info.wavelengths else 'unknown'} ({raster})")
    home = os.path.join(out, "qgis_home")
    shutil.rmtree(home, ignore_errors=True)  # a fresh throw-away profile (enabling twice is an error)
    env = plugin_profile(home)
    model = os.path.join(out, "model.rssgl")
    train_results, train_log, train_time = run(env, "rssgl:train", {
        "INPUT": raster, "SAMPLES_RASTER": labels, "DROP_WATER_VAPOUR": "true", "ITERATIONS": args.iterations,
        "CROSS_VALIDATION": 0, "DEVICE": 2, "SEED": 1, "RSSGL_STAGE": RSSGL_STAGES.index(args.rssgl_stage),
        "OUTPUT_MODEL": model,
        "OUTPUT_CLASSIFICATION": os.path.join(out, "train_classes.tif"),
        "OUTPUT_REPORT": os.path.join(out, "training.html")}, os.path.join(out, "train.log"))
    print(f"rssgl:train: {train_time}")
    classify_results, classify_log, classify_time = run(env, "rssgl:classify", {
        "INPUT": raster, "MODEL": model, "OUTPUT": os.path.join(out, "classes.tif")},
        os.path.join(out, "classify.log"))
    print(f"rssgl:classify: {classify_time}")

    notice = next((m for m in train_log if "band(s) are left out" in m), "")
    for message in train_log:
        if message.startswith(("Band selection", "Training on", "Classes:")) or "are nodata" in message:
            print(f"train log: {message}")
    print(f"notice: {notice}")
    report = open(os.path.join(out, "training.html"), encoding="utf-8").read()
    meta = RssglClassifier.load(model, device="cpu").metadata()
    used = meta["band_indices"]
    wv = set(water_vapour_bands(info.wavelengths or []))
    classes = gdal.Open(classify_results["OUTPUT"]).ReadAsArray()
    source = gdal.Open(raster)  # held: a band must not outlive its dataset (GDAL 3.6 crashes)
    nodata_input = source.GetRasterBand(1).ReadAsArray() == -32768
    source = None
    checks = {
        "the notice names bands 130-135": all(f"{b} (" in notice for b in range(130, 136)),
        "the notice is in the report": bool(notice) and html.escape(notice) in report,
        "the model leaves out bands 130-135 and the water-vapour bands":
            not set(range(130, 136)) & set(used) and not wv & set(used) and len(used) == 224 - len(wv | set(range(130, 136))),
        "Classify read the model's bands from the 224-band raster":
            any(f"{len(used)} of 224 bands" in m for m in classify_log),
        "every tile pixel is classified": bool((classes[~nodata_input] > 0).all()),
        "the gaps are nodata": bool((classes[nodata_input] == 0).all()),
    }
    print(f"model: {len(used)} bands (water-vapour windows: {len(wv)} bands); classified "
          f"{int((classes > 0).sum())} px, gaps {int(nodata_input.sum())} px; classes "
          f"{sorted(int(v) for v in np.unique(classes[classes > 0]))}")
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
