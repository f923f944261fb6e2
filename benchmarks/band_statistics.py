"""The evidence behind io/band_checks.py's thresholds: band statistics of the same sensor's other scenes
against a band order that is wrong, on the repository's real data (no network; seconds on a CPU).

    python benchmarks/band_statistics.py [--data ../shared/data] > benchmarks/results/band_statistics.txt

For each case: the training statistics (per-band mean and spread, as the model file keeps them) of one
scene against the statistics of another raster, both over the pixels valid in every band; printed are
the correlation of the two mean spectra over the bands, the share of bands whose raster mean lies more
than 3 training spreads from the training mean, and whether ``statistics_mismatch`` warns.
The same sensor's other scenes must not warn; reversed bands and another sensor must.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rssgl_qgis.io.band_checks import OFF_SPREADS, statistics_mismatch  # noqa: E402


def _statistics(cube: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pixels = cube.reshape(cube.shape[0], -1).astype(np.float64)
    pixels = pixels[:, np.isfinite(pixels).all(axis=0)]
    return pixels.mean(axis=1), pixels.std(axis=1)


def _row(name: str, training: tuple[np.ndarray, np.ndarray], raster: np.ndarray) -> str:
    mm, sm = training
    mr, sr = _statistics(raster)
    correlation = np.corrcoef(mm, mr)[0, 1]
    off = float(np.mean(np.abs(mr - mm) / sm > OFF_SPREADS))
    warns = statistics_mismatch(mm, sm, mr, sr) is not None
    return f"| {name} | {correlation:+.3f} | {100 * off:.0f} % | {'yes' if warns else 'no'} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    import scipy.io
    from osgeo import gdal

    salinas = scipy.io.loadmat(args.data / "salinas_a" / "SalinasA_corrected.mat")["salinasA_corrected"]
    salinas = salinas.transpose(2, 0, 1).astype(np.float64)  # (204, 83, 86)
    tiles = []
    for path in sorted((args.data / "enmap_potsdam_tiles" / "images").glob("*.tif")):
        dataset = gdal.Open(str(path))
        cube = dataset.ReadAsArray().astype(np.float64)
        for k in range(cube.shape[0]):
            nodata = dataset.GetRasterBand(k + 1).GetNoDataValue()
            if nodata is not None:
                cube[k][cube[k] == nodata] = np.nan
        tiles.append((path.stem, cube))
    with_data = [k for k in range(tiles[0][1].shape[0]) if np.isfinite(tiles[0][1][k]).any()]
    enmap = [(name, cube[with_data]) for name, cube in tiles]

    rng = np.random.default_rng(0)
    rows = ["| training statistics vs raster | correlation of the mean spectra | bands > 3 spreads off | warns |",
            "|---|---|---|---|"]
    whole = _statistics(salinas)
    rows.append(_row("Salinas-A: scaled x 1.2 + noise (sd 50)", whole, salinas * 1.2 + rng.normal(0, 50, salinas.shape)))
    rows.append(_row("Salinas-A: scaled x 0.7", whole, salinas * 0.7))
    rows.append(_row("Salinas-A left half vs right half", _statistics(salinas[:, :, :43]), salinas[:, :, 43:]))
    rows.append(_row("Salinas-A top half vs bottom half", _statistics(salinas[:, :41]), salinas[:, 41:]))
    rows.append(_row("Salinas-A vs its 20 x 20 px corner", whole, salinas[:, :20, :20]))
    first_name, first = enmap[0]
    first_stats = _statistics(first)
    for name, cube in enmap[1:]:
        rows.append(_row(f"EnMAP {first_name} vs {name}", first_stats, cube))
    rows.append(_row("Salinas-A: bands reversed", whole, salinas[::-1]))
    rows.append(_row(f"EnMAP {first_name}: bands reversed", first_stats, first[::-1]))
    rows.append(_row(f"EnMAP {first_name} vs {enmap[3][0]} reversed", first_stats, enmap[3][1][::-1]))
    rows.append(_row(f"Salinas-A vs EnMAP {first_name} bands 1-204 (another sensor)", whole, first[:204]))
    print(f"EnMAP tiles: {len(enmap)}, {len(with_data)} of {tiles[0][1].shape[0]} bands with data; "
          f"Salinas-A: {salinas.shape[0]} bands, {salinas.shape[1]} x {salinas.shape[2]} px.")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
