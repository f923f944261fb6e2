"""metadata.txt declares what QGIS 4 and plugins.qgis.org ask of a QGIS 4 plugin (docs/QGIS4.md)."""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def metadata() -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "metadata.txt", encoding="utf-8")
    return parser["general"]


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_metadata_declares_qgis_3_22_to_4():
    general = metadata()
    assert general["qgisMinimumVersion"] == "3.22"
    # QGIS 4 and the plugin repository list a plugin for QGIS 4 only with qgisMaximumVersion >= 4.0
    assert general["qgisMaximumVersion"] == "4.99"
    # ignored by QGIS 4; Qt 6 builds of QGIS 3.x still refuse a plugin without it
    assert general.getboolean("supportsQt6") is True
    for key in ("name", "description", "about", "version", "author", "email", "repository", "tracker"):
        assert general.get(key, "").strip(), key


def test_qgis_plugin_installer_counts_the_plugin_compatible_with_4():
    """The running QGIS's own plugin installer rule, applied to our declared range."""
    sys.path.append("/usr/share/qgis/python")  # where Debian's QGIS keeps pyplugin_installer
    compare = pytest.importorskip("pyplugin_installer.version_compare")
    general = metadata()
    low, high = general["qgisMinimumVersion"], general["qgisMaximumVersion"]
    for qgis in ("3.22.16", "3.44.16", "4.0.0", "4.2.3"):
        assert compare.isCompatible(qgis, low, high), qgis
    assert not compare.isCompatible("5.0.0", low, high)
    assert version(high) >= (4, 0)
