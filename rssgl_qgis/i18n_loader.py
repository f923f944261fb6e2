"""Load the user's translation of the plugin (i18n/rssgl_qgis_<lang>.qm) into Qt."""

from __future__ import annotations

import os

from qgis.core import QgsSettings
from qgis.PyQt.QtCore import QCoreApplication, QLocale, QTranslator


def plugin_root() -> str:
    """Folder holding i18n/ and resources/: the plugin folder in a zip, the repository in development."""
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (here, os.path.dirname(here)):
        if os.path.isdir(os.path.join(candidate, "resources")):
            return candidate
    return here


def user_locale() -> str:
    """Two-letter language code QGIS runs in (its own override first, then the system locale)."""
    settings = QgsSettings()
    if settings.value("locale/overrideFlag", False, type=bool):
        name = settings.value("locale/userLocale", "") or ""
    else:
        name = QLocale.system().name()
    return (name or "en")[:2]


def install_translator(locale: str | None = None) -> QTranslator | None:
    """Install the .qm for ``locale`` (default: the user's); return it so it can be removed on unload."""
    lang = locale or user_locale()
    path = os.path.join(plugin_root(), "i18n", f"rssgl_qgis_{lang}.qm")
    if not os.path.exists(path):
        return None
    translator = QTranslator()
    if not translator.load(path):
        return None
    QCoreApplication.installTranslator(translator)
    return translator
