"""QGIS Processing layer: the RSSGL provider and its algorithms (uses rssgl_qgis.io and rssgl_qgis.core)."""
