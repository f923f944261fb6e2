"""The dock's "Copy diagnostics": QGIS and Qt versions added to rssgl_qgis.install.diagnostics' lines."""

from __future__ import annotations

import os

from .. import torch_loader
from ..install import diagnostics

__all__ = ["diagnostics_text"]


def _qgis() -> str:
    from qgis.core import Qgis

    return Qgis.QGIS_VERSION


def _qt() -> str:
    from qgis.PyQt.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

    return f"Qt {QT_VERSION_STR}, PyQt {PYQT_VERSION_STR}"


def diagnostics_text(extra: list[tuple[str, str]] | None = None) -> str:
    """Versions, devices, the plugin's folders and the last error, as plain text for a bug report.

    Imports no torch that is not loaded yet (the dock's status probe loads it in its own thread), so the
    GUI never waits seconds for it.
    """
    plugin_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    items = diagnostics.gather(plugin_dir, torch_loader.deps_folder(), load_torch=False,
                               host=[("QGIS", _qgis), ("Qt", _qt)])
    return diagnostics.format_diagnostics(items + list(extra or []), diagnostics.last_error())
