"""Vector masks for Classify: polygons burnt into a byte mask on the grid of the raster to classify (GDAL/OGR).

classify_raster takes raster masks on the input grid; Classify's vector MASK goes through here first.
"""

from __future__ import annotations

import os

import numpy as np

from ..core.errors import RssglError

__all__ = ["rasterize_mask"]


def rasterize_mask(vector_path: str, layer_name: str | None, raster_path: str, out_path: str) -> str:
    """Burn polygons into a byte mask (1 inside, 0 outside) on the grid of ``raster_path``.

    The pixel-centre rule is GDAL's default (a pixel is inside when its centre is); polygons in
    another CRS are reprojected by GDAL on the fly. Used for Classify's vector MASK, since
    classify_raster takes raster masks on the input grid.
    """
    from osgeo import gdal, ogr, osr

    from .raster import raster_info

    info = raster_info(raster_path)
    source = ogr.Open(vector_path)
    if source is None:
        raise RssglError(f"Cannot open the mask layer '{vector_path}'.")
    layer = source.GetLayerByName(layer_name) if layer_name else source.GetLayer(0)
    if layer is None:
        raise RssglError(f"The mask file '{vector_path}' has no layer '{layer_name}'.")
    driver = gdal.GetDriverByName("GTiff")
    target = driver.Create(out_path, info.width, info.height, 1, gdal.GDT_Byte, ["COMPRESS=DEFLATE"])
    target.SetGeoTransform(tuple(info.geotransform))
    if info.crs_wkt:
        target.SetProjection(info.crs_wkt)
        raster_srs = osr.SpatialReference(wkt=info.crs_wkt)
        layer_srs = layer.GetSpatialRef()
        if layer_srs is not None and not layer_srs.IsSame(raster_srs):
            # RasterizeLayer does not reproject: hand it a reprojected in-memory copy.
            raster_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
            layer_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
            transform = osr.CoordinateTransformation(layer_srs, raster_srs)
            memory = ogr.GetDriverByName("Memory").CreateDataSource("mask")
            projected = memory.CreateLayer("mask", raster_srs, ogr.wkbUnknown)
            for feature in layer:
                geometry = feature.GetGeometryRef()
                if geometry is None:
                    continue
                geometry = geometry.Clone()
                geometry.Transform(transform)
                copy = ogr.Feature(projected.GetLayerDefn())
                copy.SetGeometry(geometry)
                projected.CreateFeature(copy)
            layer, source = projected, memory
    gdal.RasterizeLayer(target, [1], layer, burn_values=[1])
    inside = bool(np.any(target.GetRasterBand(1).ReadAsArray()))
    target.FlushCache()
    target = None
    if not inside:
        os.remove(out_path)
        raise RssglError("The mask polygons do not cover any pixel of the raster; check that the mask overlaps "
                         "the raster (and its CRS).")
    return out_path
