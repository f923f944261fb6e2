"""Toolbar button and Raster-menu entry that open the RSSGL dock.

The dock is created on first use, not at QGIS start-up: creating it starts the PyTorch probe,
and nothing torch-related should cost time when the user only opens QGIS.
"""

from __future__ import annotations

import os

from qgis.PyQt.QtCore import QCoreApplication, Qt
from qgis.PyQt.QtGui import QIcon

from ..qgis_compat import QAction

__all__ = ["RssglDesktop"]


def _icon_path() -> str:
    from ..i18n_loader import plugin_root

    return os.path.join(plugin_root(), "resources", "icon.svg")


class RssglDesktop:
    """Installs/uninstalls the desktop entry points; owns the dock once it exists."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.action: QAction | None = None
        self.dock = None
        self._menu_kind = None

    @staticmethod
    def tr(text: str) -> str:
        return QCoreApplication.translate("RssglDesktop", text)

    def install(self) -> None:
        """Add the toolbar button and the menu entry (Raster > RSSGL, or Plugins > RSSGL)."""
        parent = self.iface.mainWindow() if hasattr(self.iface, "mainWindow") else None
        self.action = QAction(QIcon(_icon_path()), self.tr("RSSGL classification"), parent)
        self.action.setObjectName("rssglOpenDock")
        self.action.setCheckable(True)
        self.action.setToolTip(self.tr("Train a deep hyperspectral classifier on polygons you draw"))
        self.action.toggled.connect(self.set_dock_visible)
        self.iface.addToolBarIcon(self.action)
        if hasattr(self.iface, "addPluginToRasterMenu"):
            self.iface.addPluginToRasterMenu(self.tr("&RSSGL"), self.action)
            self._menu_kind = "raster"
        else:
            self.iface.addPluginToMenu(self.tr("&RSSGL"), self.action)
            self._menu_kind = "plugins"

    def uninstall(self) -> None:
        """Remove everything install() and the dock added (plugin unload or reload)."""
        if self.dock is not None:
            self.dock.shutdown()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        if self.action is not None:
            self.iface.removeToolBarIcon(self.action)
            if self._menu_kind == "raster":
                self.iface.removePluginRasterMenu(self.tr("&RSSGL"), self.action)
            else:
                self.iface.removePluginMenu(self.tr("&RSSGL"), self.action)
            self.action.deleteLater()
            self.action = None

    def open_dock(self):
        """Create (first time) and show the dock; returns it."""
        if self.dock is None:
            from .dock import RssglDockWidget

            parent = self.iface.mainWindow() if hasattr(self.iface, "mainWindow") else None
            self.dock = RssglDockWidget(self.iface, parent)
            self.dock.visibilityChanged.connect(self._sync_action)
            self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.show()
        self.dock.raise_()
        return self.dock

    def set_dock_visible(self, visible: bool) -> None:
        if visible:
            self.open_dock()
        elif self.dock is not None:
            self.dock.hide()

    def _sync_action(self, visible: bool) -> None:
        if self.action is not None and self.action.isChecked() != visible:
            self.action.blockSignals(True)
            self.action.setChecked(visible)
            self.action.blockSignals(False)
