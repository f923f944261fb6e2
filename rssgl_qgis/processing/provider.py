"""The "RSSGL" Processing provider: thin, it only lists the algorithms."""

from __future__ import annotations

import importlib

from qgis.core import QgsMessageLog, QgsProcessingProvider
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..resources import icon_path

# (module, class) of every algorithm; imported lazily so that a broken optional dependency
# (torch missing) disables nothing but shows a clear error when the algorithm runs.
ALGORITHMS = (
    ("train", "TrainRssglAlgorithm"),
    ("classify", "ClassifyRssglAlgorithm"),
    ("accuracy", "AssessAccuracyAlgorithm"),
)


class RssglProvider(QgsProcessingProvider):
    """Provider id ``rssgl`` (never localised); name "RSSGL"."""

    def id(self) -> str:  # noqa: A003 (QGIS API name)
        """Stable provider id used in algorithm ids such as ``rssgl:train``; not localised."""
        return "rssgl"

    def name(self) -> str:
        """Short display name of the provider (localised)."""
        return QCoreApplication.translate("RssglProvider", "RSSGL")

    def longName(self) -> str:  # noqa: N802 (QGIS API name)
        """Display name with a hint of what the provider does (localised)."""
        return QCoreApplication.translate("RssglProvider", "RSSGL hyperspectral deep classification")

    def icon(self) -> QIcon:
        """The plugin's SVG icon."""
        return QIcon(icon_path())

    def svgIconPath(self) -> str:  # noqa: N802 (QGIS API name)
        """Path of the SVG icon, used by the modeler."""
        return icon_path()

    def loadAlgorithms(self) -> None:  # noqa: N802 (QGIS API name)
        """Instantiate every algorithm that imports; log (not raise) the ones that do not."""
        for module_name, class_name in ALGORITHMS:
            try:
                module = importlib.import_module(f"{__package__}.{module_name}")
            except ImportError as error:
                QgsMessageLog.logMessage(
                    f"RSSGL algorithm '{module_name}' is unavailable: {error}", "RSSGL"
                )
                continue
            self.addAlgorithm(getattr(module, class_name)())
