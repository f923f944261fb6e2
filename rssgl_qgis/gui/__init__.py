"""Desktop GUI: dock widget, training task, torch installer (uses rssgl_qgis.io and rssgl_qgis.core)."""
