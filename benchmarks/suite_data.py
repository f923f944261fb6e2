"""Prepare the real scenes of the accuracy suite as .npz files (needs GDAL: run it here, not on the GPU box).

    python benchmarks/suite_data.py --shared ../shared/data --out .data/suite

* ``salinas_a.npz``: Salinas-A (the .mat files through core.data.datasets), cube (B, H, W) float32.
* ``enmap_potsdam.npz``: the 18 EnMAP L2A tiles mosaicked with GDAL (BuildVRT, then one GeoTIFF,
  nodata gaps between the tiles included) and read back through the plugin's own reader
  (io.raster.read_cube), with the bands that hold no valid value anywhere left out; the label
  raster is cut to the mosaic's extent; ``tile`` (H, W) numbers the 32 x 32 tiles (0 = gap), the
  unit the spatially disjoint protocol holds out.
* ``indian_pines.npz`` / ``salinas.npz`` / ``pavia_university.npz`` only when their cubes are there.

The GPU machine has no GDAL; the suite (benchmarks/accuracy_suite.py) reads these files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rssgl_qgis.core.data.datasets import load_scene  # noqa: E402


def enmap_mosaic(tiles_dir: Path, work: Path) -> dict[str, np.ndarray]:
    """Mosaic the EnMAP tiles as a user would (gdalbuildvrt + gdal_translate) and read it as the plugin does."""
    from osgeo import gdal

    from rssgl_qgis.io.raster import raster_info, read_cube

    gdal.UseExceptions()
    images = sorted((tiles_dir / "images").glob("*.tif"))
    if not images:
        raise SystemExit(f"No EnMAP tiles under {tiles_dir / 'images'}.")
    work.mkdir(parents=True, exist_ok=True)
    vrt = str(work / "enmap_potsdam_mosaic.vrt")
    tif = str(work / "enmap_potsdam_mosaic.tif")
    gdal.BuildVRT(vrt, [str(p) for p in images], srcNodata=-32768, VRTNodata=-32768)
    gdal.Translate(tif, vrt, format="GTiff", creationOptions=["TILED=YES"])
    info = raster_info(tif)
    # Empty bands (nodata everywhere) would make every pixel invalid: read band by band to find them.
    ds = gdal.Open(tif)
    empty = []
    for b in range(1, info.bands + 1):
        band = ds.GetRasterBand(b)
        arr = band.ReadAsArray()
        nd = band.GetNoDataValue()
        if np.all((arr == nd) | ~np.isfinite(arr)):
            empty.append(b)
    ds = None
    keep = [b for b in range(1, info.bands + 1) if b not in empty]
    cube, valid = read_cube(tif, bands=keep)
    gt_ds = gdal.Open(str(tiles_dir / "enmap_landcover_unstyled.tif"))
    gt_full = gt_ds.ReadAsArray()
    gt_geo = gt_ds.GetGeoTransform()
    mosaic = gdal.Open(tif)
    geo = mosaic.GetGeoTransform()
    col0 = round((geo[0] - gt_geo[0]) / gt_geo[1])
    row0 = round((geo[3] - gt_geo[3]) / gt_geo[5])
    labels = gt_full[row0:row0 + info.height, col0:col0 + info.width].astype(np.int64)
    labels = np.where(valid, labels, 0)
    tile = np.zeros((info.height, info.width), dtype=np.int32)
    for k, p in enumerate(images, start=1):
        c, r = (int(v) for v in p.stem.rsplit("_", 2)[-2:])
        tile[r - row0:r - row0 + 32, c - col0:c - col0 + 32] = k
    tile = np.where(valid, tile, 0)
    wl = np.asarray(info.wavelengths, dtype=np.float64) if info.wavelengths else np.zeros(info.bands)
    print(f"EnMAP mosaic {info.width} x {info.height} x {info.bands}; empty bands left out: {empty}; "
          f"valid pixels {int(valid.sum())} of {valid.size}; labelled {int((labels > 0).sum())}")
    return {"cube": cube, "valid": valid, "labels": labels, "tile": tile,
            "wavelengths": wl[np.asarray(keep) - 1], "dropped_bands": np.asarray(empty)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default="../shared/data")
    ap.add_argument("--out", default=".data/suite")
    args = ap.parse_args(argv)
    shared, out = Path(args.shared), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("salinas_a", "indian_pines", "salinas", "pavia_university"):
        try:
            scene = load_scene(name, shared)
        except Exception as exc:  # noqa: BLE001 - a missing cube is expected (ground truths only)
            print(f"{name}: not prepared ({exc})")
            continue
        np.savez_compressed(out / f"{name}.npz", cube=scene.cube.astype(np.float32), labels=scene.labels,
                            valid=np.ones(scene.labels.shape, dtype=bool))
        print(f"{name}: {scene.cube.shape}")
    enmap = shared / "enmap_potsdam_tiles"
    if enmap.is_dir():
        np.savez_compressed(out / "enmap_potsdam.npz", **enmap_mosaic(enmap, out / "work"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
