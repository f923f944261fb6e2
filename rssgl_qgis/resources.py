"""Paths to the plugin's bundled resources (icons, styles, example models)."""

from __future__ import annotations

import os

from .i18n_loader import plugin_root


def resource_path(*parts: str) -> str:
    """Absolute path of a file under resources/ (works in the zip and in the repository)."""
    return os.path.join(plugin_root(), "resources", *parts)


def icon_path() -> str:
    """The plugin's SVG icon."""
    return resource_path("icon.svg")
