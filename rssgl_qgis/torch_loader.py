"""Make the plugin-managed PyTorch folder importable, without importing torch.

Most QGIS installations ship a Python without PyTorch, and users must not be asked to touch their
system Python. The installer dialog (gui/installer.py) therefore runs ``pip install --target`` into
``<QGIS profile>/python/rssgl_deps``; this module puts that folder on ``sys.path`` when the plugin
starts (and again right after an installation), so ``import torch`` finds it.

It must stay cheap: QGIS calls ``classFactory`` at start-up for every enabled plugin, so nothing
here imports torch. Versions are read from package metadata instead.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import shutil
import sys

__all__ = [
    "DEPS_FOLDER_NAME",
    "MIN_TORCH_VERSION",
    "activate",
    "deps_folder",
    "installed_torch_version",
    "parse_version",
    "remove_leftovers",
    "version_is_supported",
]

#: Sub-folder of the QGIS profile's python/ folder that holds the plugin-managed packages.
DEPS_FOLDER_NAME = "rssgl_deps"
#: Oldest torch the engine supports (bf16 autocast on CUDA, torch.compile-free CUDA graphs).
MIN_TORCH_VERSION: tuple[int, int] = (2, 2)


def deps_folder() -> str:
    """Folder the installer writes into: ``$RSSGL_DEPS_DIR`` or ``<QGIS profile>/python/rssgl_deps``.

    The environment variable exists for tests and for administrators who pre-install packages
    on shared machines. Without QGIS (engine tests) the folder falls back to ``~/.rssgl_deps``.
    """
    override = os.environ.get("RSSGL_DEPS_DIR")
    if override:
        return os.path.abspath(override)
    try:
        from qgis.core import QgsApplication

        profile = QgsApplication.qgisSettingsDirPath()
    except ImportError:  # pragma: no cover - only without QGIS
        profile = ""
    if not profile:
        return os.path.join(os.path.expanduser("~"), ".rssgl_deps")
    return os.path.join(profile, "python", DEPS_FOLDER_NAME)


def activate(folder: str | None = None) -> str | None:
    """Put the plugin-managed folder on ``sys.path``; return it, or None when it does not exist.

    When the folder holds a torch installation it goes *first*, because the user installed it on
    purpose (typically the system torch is missing or too old). Otherwise it goes last, so helper
    packages pip placed there never shadow the ones QGIS itself depends on. Calling this twice is
    harmless. If torch was already imported from elsewhere, a restart of QGIS is needed to switch.
    """
    folder = os.path.abspath(folder or deps_folder())
    remove_leftovers(folder)
    if not os.path.isdir(folder):
        return None
    if folder in sys.path:
        sys.path.remove(folder)
    if os.path.isdir(os.path.join(folder, "torch")):
        sys.path.insert(0, folder)
    else:
        sys.path.append(folder)
    importlib.invalidate_caches()
    return folder


def remove_leftovers(folder: str) -> None:
    """Delete what an interrupted installation left beside ``folder`` (gui/installer.py): the staging
    folder ``<folder>.partial`` and replaced installations ``<folder>.old-<time>`` that Windows kept
    locked while their torch was loaded. At start-up nothing has loaded them yet; each holds up to GBs."""
    parent, name = os.path.split(folder)
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    for entry in entries:
        if entry == name + ".partial" or entry.startswith(name + ".old-"):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def parse_version(text: str) -> tuple[int, ...]:
    """Leading numeric parts of a version string: "2.13.0+cpu" -> (2, 13, 0)."""
    parts: list[int] = []
    for piece in text.split("+")[0].split("."):
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def version_is_supported(version: str) -> bool:
    """True when ``version`` is at least MIN_TORCH_VERSION."""
    return parse_version(version)[:2] >= MIN_TORCH_VERSION


def installed_torch_version() -> str | None:
    """Version of the torch that ``import torch`` would load, or None when there is none.

    Reads the distribution metadata next to the module that would be imported, so it neither
    imports torch nor reports a copy that a folder earlier on ``sys.path`` shadows.
    """
    if "torch" in sys.modules:
        return getattr(sys.modules["torch"], "__version__", None)
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return None
    site = os.path.dirname(os.path.dirname(spec.origin))
    for dist in importlib.metadata.distributions(path=[site]):
        if (dist.metadata.get("Name") or "").lower() == "torch":
            return dist.version
    return None
