"""RSSGL QGIS plugin: deep hyperspectral classification in QGIS.

Only ``classFactory`` lives here. Nothing heavy (torch, GDAL arrays) is imported at QGIS start-up:
the engine is imported lazily when an algorithm or the dock actually runs.
"""


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """Return the plugin instance QGIS asks for when it loads the plugin."""
    from .plugin import RssglPlugin

    return RssglPlugin(iface)
