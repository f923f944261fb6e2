"""Describe the machine QGIS runs on, for the planner: Python, architecture, Rosetta, NVIDIA driver.

Also finds the Python interpreter pip must run with. QGIS's ``sys.executable`` is usually the QGIS
program itself (``qgis-bin.exe`` on Windows, ``QGIS`` in the macOS bundle, ``/usr/bin/qgis``), and
``qgis-bin.exe -m pip`` would start a second QGIS, not pip; the interpreter sits beside it instead.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable

from .plan import Machine

__all__ = ["cuda_driver_version", "current_machine", "find_python", "gpu_compute_capability", "installed_versions",
           "is_qgis_program", "nvidia_smi_summary", "running_under_rosetta"]


def is_qgis_program(path: str) -> bool:
    """True for the QGIS program itself (qgis-bin.exe, qgis-ltr-bin.exe, QGIS.app's QGIS, /usr/bin/qgis)."""
    name = re.split(r"[\\/]", path or "")[-1].lower()  # Windows paths too, whatever runs this
    return name.startswith("qgis")


def find_python(executable: str, exec_prefix: str, version: tuple[int, int],
                is_file: Callable[[str], bool] = os.path.isfile,
                which: Callable[[str], str | None] = shutil.which) -> str | None:
    """The Python interpreter of this QGIS, or None when there is none to be found.

    Looks where the platforms put it: ``sys.executable`` when it is Python; OSGeo4W and the standalone
    Windows installer: ``<prefix>/apps/Python3XX/python.exe`` (sys.exec_prefix) or ``bin/python3.exe``
    beside qgis-bin.exe; the macOS bundle: ``Contents/MacOS/bin/python3.X`` beside the QGIS program;
    Linux: ``<exec_prefix>/bin/python3.X``. Only names carrying this Python's version are taken from
    the PATH: a different Python would download wheels QGIS cannot load.
    """
    name = os.path.basename(executable or "").lower()
    if name.startswith("python") and is_file(executable):
        return executable
    major_minor = "{}.{}".format(*version)
    here = os.path.dirname(executable or "")
    candidates = [
        os.path.join(exec_prefix, "python.exe"),
        os.path.join(exec_prefix, "python3.exe"),
        os.path.join(here, "python.exe"),
        os.path.join(here, "python3.exe"),
        os.path.join(exec_prefix, "bin", f"python{major_minor}"),
        os.path.join(exec_prefix, "bin", "python3"),
        os.path.join(here, "bin", f"python{major_minor}"),
        os.path.join(here, "bin", "python3"),
        os.path.join(here, f"python{major_minor}"),
    ]
    for candidate in candidates:
        if is_file(candidate):
            return candidate
    return which(f"python{major_minor}")


def cuda_driver_version(nvidia_smi: str | None = None) -> tuple[int, int] | None:
    """CUDA version the NVIDIA driver supports, from ``nvidia-smi``'s header; None without a driver."""
    out = _nvidia_smi([], nvidia_smi)
    match = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", out or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def gpu_compute_capability(nvidia_smi: str | None = None) -> tuple[int, int] | None:
    """Compute capability of the first NVIDIA GPU (drivers from 2022 on print it), else None."""
    out = _nvidia_smi(["--query-gpu=compute_cap", "--format=csv,noheader"], nvidia_smi)
    match = re.search(r"^\s*(\d+)\.(\d+)\s*$", out or "", re.MULTILINE)
    return (int(match.group(1)), int(match.group(2))) if match else None


def nvidia_smi_summary(nvidia_smi: str | None = None) -> str | None:
    """'NVIDIA GeForce RTX 4070, driver 570.86' per GPU (for diagnostics), None without a driver."""
    out = _nvidia_smi(["--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"], nvidia_smi)
    return "; ".join(line.strip() for line in out.splitlines() if line.strip()) if out else None


def _nvidia_smi(args: list[str], exe: str | None) -> str | None:
    exe = exe or shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        result = subprocess.run([exe, *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def running_under_rosetta() -> bool:
    """True when this (x86-64) process is translated by Rosetta on an Apple Silicon Mac."""
    if sys.platform != "darwin":
        return False
    try:
        out = subprocess.run(["sysctl", "-n", "sysctl.proc_translated"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.stdout.strip() == "1"


def installed_versions(exclude_paths: tuple[str, ...] = ()) -> dict[str, str]:
    """Distribution name -> version of every package this Python has, outside ``exclude_paths``."""
    excluded = tuple(os.path.normcase(os.path.abspath(p)) for p in exclude_paths)
    versions: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        location = os.path.normcase(os.path.abspath(str(dist.locate_file(""))))
        if excluded and location.startswith(excluded):
            continue
        name = dist.metadata.get("Name")
        if name and name not in versions:
            versions[name] = dist.version
    return versions


def _version_pair(text: str) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def current_machine(nvidia_smi: str | None = None) -> Machine:
    """This QGIS's machine (runs nvidia-smi and, on macOS, sysctl: call it off the GUI thread if in doubt)."""
    system = platform.system()
    numpy = None
    try:
        numpy = _version_pair(importlib.metadata.version("numpy"))
    except importlib.metadata.PackageNotFoundError:
        pass
    cuda = None if system == "Darwin" else cuda_driver_version(nvidia_smi)
    return Machine(
        system=system,
        machine=platform.machine(),
        python=(sys.version_info.major, sys.version_info.minor),
        cuda=cuda,
        compute_capability=gpu_compute_capability(nvidia_smi) if cuda else None,
        rosetta=running_under_rosetta(),
        macos=_version_pair(platform.mac_ver()[0]) if system == "Darwin" else None,
        numpy=numpy,
    )
