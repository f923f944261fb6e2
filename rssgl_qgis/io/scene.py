"""The synthetic scene as real geodata: GeoTIFF cube, label GeoTIFF and GeoPackage of training polygons.

Why: the demo, the Processing tests and the GUI tests must exercise exactly what a user's data goes
through (CRS handling, band descriptions with wavelengths, nodata, vector samples in another CRS),
without shipping or downloading data. The cube looks like a corrected AVIRIS scene: projected UTM
CRS (EPSG:32610 by default, Salinas Valley), 20 m pixels, int16 reflectance x 10000, nodata -32768,
band descriptions "512.3 nm" (QGIS lists them as "Band 12: 512.3 nm"), ENVI-style ``wavelength`` / ``wavelength_units`` metadata and
per-band ``wavelength`` items. The label raster is the full ground truth (for accuracy assessment), styled
like a classification. The GeoPackage holds the training polygons with integer ``class_id`` and text
``class_name`` fields, in the raster CRS or, with ``polygons_crs="EPSG:4326"``, in longitude/latitude
to exercise reprojection.

CLI: ``python -m rssgl_qgis.io.scene OUTDIR [--seed N] [--size N] [--bands N] [--classes N] [--wgs84]``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import numpy as np
from osgeo import gdal, ogr, osr

from ..core.data.synthetic import SyntheticScene, make_synthetic_scene
from .atomic import atomic_output
from .raster import GEOTIFF_OPTIONS, RasterInfo
from .raster_write import write_classification

__all__ = ["scene_raster_info", "write_synthetic_scene", "write_scene_files"]

gdal.UseExceptions()
ogr.UseExceptions()

DEFAULT_EPSG = 32610
DEFAULT_ORIGIN = (612000.0, 4062000.0)  # upper-left corner (m), Salinas Valley, UTM zone 10N
DEFAULT_PIXEL_SIZE = 20.0
FILE_NAMES = {"cube": "synthetic_cube.tif", "labels": "synthetic_labels.tif", "polygons": "synthetic_training.gpkg"}


def scene_raster_info(scene: SyntheticScene, path: str = "", *, epsg: int = DEFAULT_EPSG,
                      origin: tuple[float, float] = DEFAULT_ORIGIN,
                      pixel_size: float = DEFAULT_PIXEL_SIZE) -> RasterInfo:
    """The :class:`RasterInfo` the scene's GeoTIFF will have (north-up grid at ``origin``)."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(int(epsg))
    bands, height, width = scene.cube.shape
    # QGIS shows a band as "Band <n>: <description>", so the description is just the wavelength:
    # QGIS then lists "Band 12: 1086.6 nm". Rounded once so descriptions and metadata agree.
    wavelengths = np.round(scene.wavelengths, 2)
    names = [f"{wl:.1f} nm" for wl in wavelengths]
    dtype = "Int16" if scene.cube.dtype == np.int16 else "Float32"
    return RasterInfo(path=path, width=width, height=height, bands=bands, dtype=dtype,
                      geotransform=(origin[0], pixel_size, 0.0, origin[1], 0.0, -pixel_size),
                      crs_wkt=srs.ExportToWkt(), nodata=[scene.nodata] * bands, band_names=names,
                      wavelengths=[float(w) for w in wavelengths], units=[""] * bands)


def _write_cube(path: str, scene: SyntheticScene, info: RasterInfo) -> None:
    gdal_type = gdal.GDT_Int16 if scene.cube.dtype == np.int16 else gdal.GDT_Float32
    predictor = "PREDICTOR=2" if gdal_type == gdal.GDT_Int16 else "PREDICTOR=3"
    with atomic_output(path) as tmp:
        dataset = gdal.GetDriverByName("GTiff").Create(
            tmp, info.width, info.height, info.bands, gdal_type, [*GEOTIFF_OPTIONS, predictor, "INTERLEAVE=BAND"])
        dataset.SetGeoTransform(info.geotransform)
        dataset.SetProjection(info.crs_wkt)
        wavelengths = ", ".join(f"{w:.2f}" for w in info.wavelengths)
        dataset.SetMetadata({"wavelength": "{" + wavelengths + "}", "wavelength_units": "Nanometers",
                             "data_type_description": "reflectance",
                             "reflectance_scale_factor": f"{1.0 / scene.scale:g}"}, "ENVI")
        dataset.SetMetadataItem("SYNTHETIC_SEED", str(scene.seed))
        dataset.SetMetadataItem("DESCRIPTION", "Synthetic hyperspectral scene (rssgl_qgis.core.data.synthetic)")
        for i in range(info.bands):
            band = dataset.GetRasterBand(i + 1)
            band.SetDescription(info.band_names[i])
            band.SetNoDataValue(float(scene.nodata))
            band.SetMetadataItem("wavelength", f"{info.wavelengths[i]:.2f}")
            band.SetMetadataItem("wavelength_units", "nm")
            band.WriteArray(scene.cube[i])
        dataset.FlushCache()
        dataset = None


def _write_polygons(path: str, scene: SyntheticScene, info: RasterInfo, polygons_crs: str | None) -> None:
    raster_srs = osr.SpatialReference()
    raster_srs.ImportFromWkt(info.crs_wkt)
    raster_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    target_srs, transform = raster_srs, None
    if polygons_crs:
        target_srs = osr.SpatialReference()
        target_srs.SetFromUserInput(polygons_crs)
        target_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        if not target_srs.IsSame(raster_srs):
            transform = osr.CoordinateTransformation(raster_srs, target_srs)
    x0, dx, _, y0, _, dy = info.geotransform
    name_of = dict(zip(scene.class_values.tolist(), scene.class_names, strict=True))
    with atomic_output(path) as tmp:
        source = ogr.GetDriverByName("GPKG").CreateDataSource(tmp)
        layer = source.CreateLayer("training", target_srs, ogr.wkbPolygon)
        layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
        name_field = ogr.FieldDefn("class_name", ogr.OFTString)
        name_field.SetWidth(64)
        layer.CreateField(name_field)
        definition = layer.GetLayerDefn()
        layer.StartTransaction()
        for polygon in scene.train_polygons:
            ring = ogr.Geometry(ogr.wkbLinearRing)
            for x, y in np.vstack([polygon.vertices, polygon.vertices[:1]]):
                ring.AddPoint_2D(float(x0 + x * dx), float(y0 + y * dy))
            geometry = ogr.Geometry(ogr.wkbPolygon)
            geometry.AddGeometry(ring)
            if transform is not None:
                geometry.Transform(transform)
            feature = ogr.Feature(definition)
            feature.SetGeometry(geometry)
            feature.SetField("class_id", int(polygon.class_value))
            feature.SetField("class_name", name_of[int(polygon.class_value)])
            layer.CreateFeature(feature)
        layer.CommitTransaction()
        source = None


def write_scene_files(folder: str | os.PathLike, scene: SyntheticScene, *, epsg: int = DEFAULT_EPSG,
                      origin: tuple[float, float] = DEFAULT_ORIGIN, pixel_size: float = DEFAULT_PIXEL_SIZE,
                      polygons_crs: str | None = None, prefix: str = "") -> dict[str, str]:
    """Write an already generated scene to ``folder``; returns {"cube", "labels", "polygons"} paths."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    paths = {key: os.path.join(folder, prefix + name) for key, name in FILE_NAMES.items()}
    info = scene_raster_info(scene, paths["cube"], epsg=epsg, origin=origin, pixel_size=pixel_size)
    _write_cube(paths["cube"], scene, info)
    write_classification(paths["labels"], scene.labels, info, scene.class_values.tolist(), scene.class_names,
                         scene.class_colors)
    _write_polygons(paths["polygons"], scene, info, polygons_crs)
    return paths


def write_synthetic_scene(folder: str | os.PathLike, seed: int = 0, *, epsg: int = DEFAULT_EPSG,
                          origin: tuple[float, float] = DEFAULT_ORIGIN, pixel_size: float = DEFAULT_PIXEL_SIZE,
                          polygons_crs: str | None = None, dtype: str = "int16", **scene_kwargs) -> dict[str, str]:
    """Generate the synthetic scene (``make_synthetic_scene(seed, dtype=dtype, **scene_kwargs)``) and write it.

    Returns {"cube": GeoTIFF, "labels": label GeoTIFF (+ .qml), "polygons": GeoPackage}. Each file is
    written atomically, so an interrupted call never leaves a half-written scene under these names.
    ``polygons_crs`` (e.g. "EPSG:4326") writes the polygons in another CRS than the raster's.
    """
    scene = make_synthetic_scene(seed, dtype=dtype, **scene_kwargs)
    return write_scene_files(folder, scene, epsg=epsg, origin=origin, pixel_size=pixel_size,
                             polygons_crs=polygons_crs)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: write the synthetic scene into OUTDIR and print the paths."""
    parser = argparse.ArgumentParser(prog="python -m rssgl_qgis.io.scene",
                                     description="Write the synthetic hyperspectral scene as GeoTIFF + GeoPackage.")
    parser.add_argument("outdir", help="folder to write into (created if missing)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=160, help="width and height in pixels (default 160)")
    parser.add_argument("--bands", type=int, default=120)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--float32", action="store_true", help="float32 reflectance instead of int16 x 10000")
    parser.add_argument("--wgs84", action="store_true", help="write the training polygons in EPSG:4326")
    args = parser.parse_args(argv)
    try:
        paths = write_synthetic_scene(args.outdir, args.seed, height=args.size, width=args.size, bands=args.bands,
                                      n_classes=args.classes, dtype="float32" if args.float32 else "int16",
                                      polygons_crs="EPSG:4326" if args.wgs84 else None)
    except ValueError as exc:
        parser.error(str(exc))
    for key, path in paths.items():
        print(f"{key}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
