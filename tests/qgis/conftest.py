"""Session-wide headless QGIS for the plugin tests.

QGIS is started once (offscreen), Processing is initialised and the RSSGL provider registered, as
QGIS's own processing tests do. Every test in tests/qgis is skipped when qgis is not importable, so
the engine suite still runs on a machine without QGIS.
"""

from __future__ import annotations

import os
import sys

import pytest

qgis_core = pytest.importorskip("qgis.core")

# Under `make test` the suite runs inside xvfb-run (a real X server for the GUI tests and their
# screenshots); anywhere else Qt renders offscreen.
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Processing lives in QGIS's python/plugins folder.
for candidate in ("/usr/share/qgis/python/plugins", "/usr/share/qgis/python"):
    if os.path.isdir(candidate) and candidate not in sys.path:
        sys.path.append(candidate)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class IfaceStandIn:
    """The few ``iface`` members the plugin touches when there is no main window."""

    def __init__(self) -> None:
        self.actions: list = []

    def mainWindow(self):  # noqa: N802 (QGIS API name)
        return None

    def addPluginToMenu(self, *args) -> None:  # noqa: N802
        self.actions.append(args)

    def removePluginMenu(self, *args) -> None:  # noqa: N802
        pass

    def addToolBarIcon(self, *args) -> None:  # noqa: N802
        pass

    def removeToolBarIcon(self, *args) -> None:  # noqa: N802
        pass

    def addDockWidget(self, *args) -> None:  # noqa: N802
        pass

    def removeDockWidget(self, *args) -> None:  # noqa: N802
        pass

    def messageBar(self):  # noqa: N802
        return None


@pytest.fixture(scope="session")
def qgis_app():
    """A running headless QgsApplication with Processing initialised (one per test session)."""
    from qgis.core import QgsApplication

    app = QgsApplication.instance()
    if app is None:
        QgsApplication.setPrefixPath("/usr", True)
        app = QgsApplication([], True)  # GUI enabled: the dock tests create widgets
        app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    yield app


@pytest.fixture(scope="session")
def rssgl_plugin(qgis_app):
    """The plugin, created through classFactory with an iface stand-in, its provider registered."""
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    import rssgl_qgis

    plugin = rssgl_qgis.classFactory(IfaceStandIn())
    plugin.initProcessing()
    yield plugin


@pytest.fixture
def rssgl_provider(rssgl_plugin):
    """The registered RSSGL provider (looked up each time: a test may unload and reload the plugin)."""
    from qgis.core import QgsApplication

    rssgl_plugin.initProcessing()
    provider = QgsApplication.processingRegistry().providerById("rssgl")
    assert provider is not None
    return provider
