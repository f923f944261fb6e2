"""The text of "Copy diagnostics": every version and path a bug report about the plugin needs.

``gather`` asks each library for its version and survives any of them missing or broken (that is
often the bug being reported); ``format_diagnostics`` turns the pairs into plain text. Both work
without QGIS; the QGIS and Qt lines come from the GUI (gui/diagnostics.py), since this package imports
no Qt (tests/engine/test_architecture.py).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable, Sequence

__all__ = ["format_diagnostics", "gather", "last_error", "record_error"]

_LAST_ERROR: list[str] = []


def record_error(text: str) -> None:
    """Remember the latest failure the user saw (training, installer) for the diagnostics text."""
    _LAST_ERROR[:] = [text]


def last_error() -> str | None:
    """The latest recorded failure, None when nothing failed in this session."""
    return _LAST_ERROR[0] if _LAST_ERROR else None


def format_diagnostics(items: Sequence[tuple[str, str]], last_error: str | None = None) -> str:
    """'name: value' lines, names aligned, then the last error (indented) when there is one."""
    width = max((len(name) for name, _ in items), default=0)
    lines = ["RSSGL diagnostics"]
    lines += [f"{name + ':':<{width + 1}} {value}" for name, value in items]
    lines.append("Last error:" + ("" if last_error else " none"))
    if last_error:
        lines += ["    " + line for line in last_error.strip().splitlines()]
    return "\n".join(lines) + "\n"


def _ask(question: Callable[[], str]) -> str:
    try:
        return question()
    except Exception as exc:  # a broken library is the answer, not a reason to fail
        return f"unavailable ({type(exc).__name__}: {exc})"


def _numpy() -> str:
    import numpy

    return f"{numpy.__version__} ({os.path.dirname(numpy.__file__)})"


def _gdal() -> str:
    from osgeo import gdal

    return gdal.__version__


def _torch_lines(load_torch: bool) -> list[tuple[str, str]]:
    """torch, CUDA and MPS lines; imports torch only when ``load_torch`` (it takes seconds)."""
    from .. import torch_loader

    if "torch" not in sys.modules and not load_torch:
        return [("torch", torch_loader.installed_torch_version() or "not installed")]
    try:
        import torch
    except Exception as exc:
        return [("torch", f"{torch_loader.installed_torch_version()} fails to load: {type(exc).__name__}: {exc}")]
    lines = [("torch", f"{torch.__version__} ({os.path.dirname(torch.__file__)})"),
             ("torch CUDA build", str(torch.version.cuda or "none (CPU build)"))]
    lines.append(("CUDA available", _ask(lambda: str(torch.cuda.is_available()))))
    if _ask(lambda: str(torch.cuda.is_available())) == "True":
        lines.append(("GPU (torch)", _ask(lambda: torch.cuda.get_device_name(0))))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        lines.append(("MPS available", _ask(lambda: str(mps.is_available()))))
    return lines


def gather(plugin_dir: str, deps_dir: str, load_torch: bool = True,
           host: Sequence[tuple[str, Callable[[], str]]] = ()) -> list[tuple[str, str]]:
    """(name, value) pairs: ``host``'s (QGIS, Qt: asked by the GUI, this package imports no Qt), Python, OS,
    numpy, GDAL, torch, CUDA, driver, GPU, the plugin's paths."""
    from .machine import cuda_driver_version, nvidia_smi_summary

    items = [(name, _ask(question)) for name, question in host]
    items += [
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("OS", f"{platform.platform()} {platform.machine()}"),
        ("numpy", _ask(_numpy)),
        ("GDAL", _ask(_gdal)),
    ]
    items += _torch_lines(load_torch)
    driver_cuda = _ask(lambda: "{}.{}".format(*cuda_driver_version()) if cuda_driver_version() else "none")
    items += [
        ("NVIDIA driver CUDA", driver_cuda),
        ("NVIDIA GPU", _ask(lambda: nvidia_smi_summary() or "none found (nvidia-smi)")),
        ("Plugin folder", plugin_dir),
        ("PyTorch folder", f"{deps_dir} ({'exists' if os.path.isdir(deps_dir) else 'absent'})"),
    ]
    return items
