"""GDAL/OGR input and output for the plugin (never imports qgis or PyQt).

Modules: ``atomic`` (atomic file outputs), ``raster`` (raster metadata, reading, classification and
float writers, block writer), ``samples`` (training samples from vector or raster layers on the raster
grid) and ``scene`` (the synthetic scene as real GeoTIFF/GeoPackage files). Import them explicitly, e.g.
``from rssgl_qgis.io.raster import read_cube``; nothing is imported here so that ``import rssgl_qgis.io``
stays cheap.
"""
