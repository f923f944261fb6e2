"""The plugin loads through classFactory and its provider reaches the Processing registry."""

from __future__ import annotations

import configparser
import os

from tests.qgis.conftest import REPO_ROOT


def test_provider_registered(rssgl_provider):
    from qgis.core import QgsApplication

    assert rssgl_provider.id() == "rssgl"
    assert rssgl_provider.name() == "RSSGL"
    assert not rssgl_provider.icon().isNull()
    assert QgsApplication.processingRegistry().providerById("rssgl") is rssgl_provider


def test_plugin_unload_and_reload(rssgl_plugin):
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    rssgl_plugin.initProcessing()
    rssgl_plugin.initProcessing()  # idempotent: QGIS may call it more than once
    assert registry.providerById("rssgl") is not None
    rssgl_plugin.unload()
    assert registry.providerById("rssgl") is None
    rssgl_plugin.initProcessing()
    assert registry.providerById("rssgl") is not None


def test_metadata_has_required_fields():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO_ROOT, "metadata.txt"))
    general = parser["general"]
    for field in ("name", "qgisMinimumVersion", "description", "version", "author", "email", "about",
                  "tracker", "repository", "homepage", "tags", "category", "icon"):
        assert general.get(field), f"metadata.txt lacks {field}"
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["hasProcessingProvider"] == "yes"
    assert os.path.exists(os.path.join(REPO_ROOT, general["icon"]))
