"""The plugin object QGIS creates: registers the Processing provider and the desktop tools."""

from __future__ import annotations

from qgis.core import QgsApplication

from .processing.provider import RssglProvider


class RssglPlugin:
    """Owns the Processing provider and (when a GUI exists) the dock, toolbar button and menu entry.

    ``initProcessing`` is separate from ``initGui`` because ``qgis_process`` and the modeler only
    call ``initProcessing``: the provider must not depend on any widget.
    """

    def __init__(self, iface) -> None:
        from .torch_loader import activate

        activate()  # plugin-managed PyTorch (gui/installer.py) importable before anything imports torch
        self.iface = iface
        self.provider: RssglProvider | None = None
        self.desktop = None  # gui.desktop.RssglDesktop when a GUI is running
        self.translator = None

    def initProcessing(self) -> None:  # noqa: N802 (QGIS API name)
        """Register the RSSGL provider once (QGIS may call this several times)."""
        if self.provider is None:
            self.provider = RssglProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802 (QGIS API name)
        """Install translations, the provider, then the dock and its toolbar/menu actions."""
        from .i18n_loader import install_translator

        self.translator = install_translator()
        self.initProcessing()
        try:
            from .gui.desktop import RssglDesktop
        except ImportError:  # the desktop part is optional for headless use
            return
        self.desktop = RssglDesktop(self.iface)
        self.desktop.install()

    def unload(self) -> None:
        """Remove everything ``initGui``/``initProcessing`` added, so the plugin can be reloaded."""
        if self.desktop is not None:
            self.desktop.uninstall()
            self.desktop = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.translator is not None:
            from qgis.PyQt.QtCore import QCoreApplication

            QCoreApplication.removeTranslator(self.translator)
            self.translator = None
