"""Shared helpers for the reliability tests: tiny trained models, folder snapshots, input hashes,
and stand-ins for faults (disk full, a path that cannot be written).

Nothing here imports qgis, so both tests/reliability (engine + I/O level) and
tests/qgis/test_reliability_*.py (Processing level) can use it.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import numpy as np

#: The smallest RSSGL that keeps the real architecture (every stage width a multiple of 16).
TINY_ARCHITECTURE = {"block_channels": (16, 16, 16, 16), "inner_dim": 16}


def use_tiny_network(monkeypatch) -> None:
    """Build every RssglClassifier with the smallest real architecture (stage widths 16).

    The reliability tests are about what happens around the network (checks, cancellation, files,
    messages), not about its accuracy; the full-width network makes each training iteration ~10x slower
    on a 2-core CPU. Explicit overrides (e.g. the kernel chosen by the workflow) still apply on top.
    """
    from rssgl_qgis.core.training.classifier import RssglClassifier

    real_init = RssglClassifier.__init__

    def init(self, config_overrides=None, params=None):
        real_init(self, config_overrides={**TINY_ARCHITECTURE, **(config_overrides or {})}, params=params)

    monkeypatch.setattr(RssglClassifier, "__init__", init)


def tiny_cube(bands: int = 4, height: int = 16, width: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A (B, H, W) float32 cube with two separable classes (left / right half) and its label map."""
    rng = np.random.default_rng(seed)
    cube = rng.normal(0.0, 0.1, size=(bands, height, width)).astype(np.float32)
    cube[:, :, width // 2 :] += 1.0
    labels = np.zeros((height, width), dtype=np.int32)
    labels[2:-2, 1:3] = 1
    labels[2:-2, -3:-1] = 2
    return cube, labels


def train_tiny_classifier(bands: int = 4, iterations: int = 2, wavelengths: list[float] | None = None):
    """A genuinely trained (few iterations, CPU) RssglClassifier on ``tiny_cube``: seconds, not minutes.

    ``wavelengths`` (nm) are recorded in the model as the training raster's band centres.
    """
    from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams

    cube, labels = tiny_cube(bands)
    params = TrainingParams(iterations=iterations, epoch_iterations=1, device="cpu", selection="loss")
    clf = RssglClassifier(config_overrides=dict(TINY_ARCHITECTURE), params=params)
    band_info = {"names": [f"Band {i + 1}" for i in range(bands)], "wavelengths": wavelengths}
    return clf.fit(cube, labels, class_names=["left", "right"], class_colors=[(255, 0, 0), (0, 0, 255)],
                   band_info=band_info)


def snapshot(folder) -> dict[str, str]:
    """{relative path: sha256} of every file under ``folder``: compare before/after a failed run."""
    folder = Path(folder)
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder the test process cannot create files in.

    As a normal user: a chmod 0555 folder. As root (CI containers), chmod does not stop writes, so
    the "folder" is a path under a regular file, which no user can create files in (ENOTDIR).
    """
    if running_as_root():
        blocker = tmp_path / "not_a_folder"
        blocker.write_text("a regular file standing where the output folder should be\n")
        return blocker / "out"
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def disk_full(*args, **kwargs):
    """Drop-in for os.replace / a writer that fails the way a full disk does."""
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# ------------------------------------------------------------------------------------------------
# Tiny georeferenced inputs (GDAL/OGR only): small enough for a test, real enough for the plugin.
# ------------------------------------------------------------------------------------------------
EPSG = 32610  # UTM 10N, as the synthetic scene
ORIGIN = (600000.0, 4100000.0)
PIXEL = 10.0
SIZE = 24
WAVELENGTHS = [450.0, 550.0, 670.0, 860.0]

#: Sample rectangles in pixel coordinates (col0, row0, col1, row1), end exclusive, per class value.
BLOCKS = {1: (2, 2, 8, 8), 2: (14, 3, 21, 9), 3: (4, 14, 10, 21), 4: (15, 15, 21, 21)}


def scene_cube(bands: int = 4, size: int = SIZE, seed: int = 0) -> np.ndarray:
    """(B, H, W) float32 reflectance-like cube whose four quadrants are spectrally distinct."""
    rng = np.random.default_rng(seed)
    cube = rng.normal(0.2, 0.01, size=(bands, size, size)).astype(np.float32)
    half = size // 2
    cube[:, :half, half:] += np.linspace(0.0, 0.3, bands, dtype=np.float32)[:, None, None]
    cube[:, half:, :half] += np.linspace(0.3, 0.0, bands, dtype=np.float32)[:, None, None]
    cube[:, half:, half:] += 0.15
    return cube


def write_raster(path, cube: np.ndarray, *, epsg: int | None = EPSG, origin=ORIGIN, pixel: float = PIXEL,
                 nodata: float | None = None, wavelengths: list[float] | None = None, gdal_type: str = "Float32"):
    """A GeoTIFF of ``cube`` (B, H, W) on a north-up grid; wavelengths as band metadata (nm)."""
    from osgeo import gdal, osr

    bands, height, width = cube.shape
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), width, height, bands, gdal.GetDataTypeByName(gdal_type))
    dataset.SetGeoTransform((origin[0], pixel, 0.0, origin[1], 0.0, -pixel))
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        dataset.SetProjection(srs.ExportToWkt())
    for i in range(bands):
        band = dataset.GetRasterBand(i + 1)
        if nodata is not None:
            band.SetNoDataValue(float(nodata))
        if wavelengths is not None:
            band.SetDescription(f"Band {i + 1}: {wavelengths[i]:.1f} nm")
            band.SetMetadataItem("wavelength", f"{wavelengths[i]:.2f}")
            band.SetMetadataItem("wavelength_units", "nm")
        band.WriteArray(cube[i])
    dataset.FlushCache()
    dataset = None
    return Path(path)


def block_polygon_wkt(block: tuple[int, int, int, int], origin=ORIGIN, pixel: float = PIXEL) -> str:
    """Map-coordinate WKT of a pixel rectangle (col0, row0, col1, row1), end exclusive."""
    c0, r0, c1, r1 = block
    x0, x1 = origin[0] + c0 * pixel, origin[0] + c1 * pixel
    y0, y1 = origin[1] - r1 * pixel, origin[1] - r0 * pixel
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


def block_labels(blocks: dict[int, tuple[int, int, int, int]] = BLOCKS, size: int = SIZE) -> np.ndarray:
    """The label map the pixel-centre rule must give for ``blocks``."""
    labels = np.zeros((size, size), dtype=np.int32)
    for value, (c0, r0, c1, r1) in blocks.items():
        labels[r0:r1, c0:c1] = value
    return labels


def write_samples(path, features: list[tuple[str | None, dict]], *, fields: dict[str, str] | None = None,
                  epsg: int | None = EPSG, source_epsg: int | None = EPSG, layer: str = "samples"):
    """A GeoPackage layer of ``features`` = [(WKT in ``source_epsg`` or None, {field: value})].

    ``fields`` maps field names to OGR type names ("Integer", "Real", "String"); geometries are
    reprojected from ``source_epsg`` to ``epsg`` (the layer's CRS) with traditional x/y axis order.
    """
    from osgeo import ogr, osr

    fields = fields if fields is not None else {"class_id": "Integer", "class_name": "String"}
    srs = None
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform = None
    if epsg is not None and source_epsg is not None and epsg != source_epsg:
        src = osr.SpatialReference()
        src.ImportFromEPSG(source_epsg)
        src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        transform = osr.CoordinateTransformation(src, srs)
    if Path(path).exists():  # add a layer to an existing GeoPackage
        source = ogr.Open(str(path), 1)
    else:
        source = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    out = source.CreateLayer(layer, srs, ogr.wkbPolygon)
    types = {"Integer": ogr.OFTInteger, "Real": ogr.OFTReal, "String": ogr.OFTString}
    for name, kind in fields.items():
        out.CreateField(ogr.FieldDefn(name, types[kind]))
    for wkt, values in features:
        feature = ogr.Feature(out.GetLayerDefn())
        if wkt is not None:
            geometry = ogr.CreateGeometryFromWkt(wkt)
            if transform is not None:
                geometry = _densify_and_transform(geometry, transform)
            feature.SetGeometry(geometry)
        for name, value in values.items():
            if value is None:
                feature.SetFieldNull(name)
            else:
                feature.SetField(name, value)
        out.CreateFeature(feature)
    source = None
    return Path(path)


def _densify_and_transform(geometry, transform):
    geometry = geometry.Clone()
    geometry.Segmentize(PIXEL / 4)  # straight edges in UTM are curves in lon/lat: keep them tight
    geometry.Transform(transform)
    return geometry


def class_features(blocks=BLOCKS, names: dict[int, str] | None = None) -> list[tuple[str, dict]]:
    """One polygon per block with integer ``class_id`` and text ``class_name``."""
    names = names or {1: "water", 2: "forest", 3: "soil", 4: "urban"}
    return [(block_polygon_wkt(b), {"class_id": v, "class_name": names[v]}) for v, b in blocks.items()]
