"""Small GDAL/OGR fixtures built in the test's tmp_path (no data files, no qgis)."""

from __future__ import annotations

import os

import numpy as np
from osgeo import gdal, ogr, osr

UTM = 32610
ORIGIN = (600000.0, 4100000.0)
PIXEL = 10.0


def srs(epsg: int) -> osr.SpatialReference:
    ref = osr.SpatialReference()
    ref.ImportFromEPSG(epsg)
    ref.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return ref


def make_raster(path, array, *, nodata=None, epsg=UTM, origin=ORIGIN, pixel=PIXEL, descriptions=None,
                envi=None, gdal_type=None):
    """Write (B, H, W) or (H, W) ``array`` as a GeoTIFF; returns the path as str."""
    data = np.asarray(array)
    if data.ndim == 2:
        data = data[None]
    types = {np.dtype(np.uint8): gdal.GDT_Byte, np.dtype(np.int16): gdal.GDT_Int16,
             np.dtype(np.uint16): gdal.GDT_UInt16, np.dtype(np.int32): gdal.GDT_Int32,
             np.dtype(np.float32): gdal.GDT_Float32, np.dtype(np.float64): gdal.GDT_Float64}
    ds = gdal.GetDriverByName("GTiff").Create(str(path), data.shape[2], data.shape[1], data.shape[0],
                                              gdal_type or types[data.dtype])
    ds.SetGeoTransform((origin[0], pixel, 0.0, origin[1], 0.0, -pixel))
    if epsg:
        ds.SetProjection(srs(epsg).ExportToWkt())
    if envi:
        ds.SetMetadata(envi, "ENVI")
    for i in range(data.shape[0]):
        band = ds.GetRasterBand(i + 1)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if descriptions:
            band.SetDescription(descriptions[i])
        band.WriteArray(data[i])
    ds = None
    return str(path)


def pixel_to_map(col: float, row: float, origin=ORIGIN, pixel=PIXEL) -> tuple[float, float]:
    return origin[0] + col * pixel, origin[1] - row * pixel


def make_vector(path, features, *, epsg=UTM, field_type=ogr.OFTInteger, field="cls", layer="samples",
                driver="GPKG", geom_type=ogr.wkbUnknown, extra_fields=()):
    """``features``: list of (wkt in map coordinates, value or None[, extra values...])."""
    if os.path.exists(str(path)):  # add a layer to an existing file
        source = ogr.Open(str(path), update=1)
    else:
        source = ogr.GetDriverByName(driver).CreateDataSource(str(path))
    lyr = source.CreateLayer(layer, srs(epsg) if epsg else None, geom_type)
    lyr.CreateField(ogr.FieldDefn(field, field_type))
    for name, ftype in extra_fields:
        lyr.CreateField(ogr.FieldDefn(name, ftype))
    for item in features:
        wkt, value, *extra = item
        feature = ogr.Feature(lyr.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt) if wkt else None)
        if value is not None:
            feature.SetField(field, value)
        for (name, _), v in zip(extra_fields, extra, strict=False):
            feature.SetField(name, v)
        lyr.CreateFeature(feature)
    source = None
    return str(path)


def rect_wkt(c0, r0, c1, r1) -> str:
    """Polygon covering pixel columns c0..c1 and rows r0..r1 (edges on pixel boundaries, map coords)."""
    (x0, y0), (x1, y1) = pixel_to_map(c0, r0), pixel_to_map(c1, r1)
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


def point_wkt(col, row) -> str:
    x, y = pixel_to_map(col, row)
    return f"POINT({x} {y})"
