"""Why installing or loading PyTorch failed, in one sentence that says what to do.

pip's log and Python's exceptions name the cause in words of their own (``WinError 1114``,
``CERTIFICATE_VERIFY_FAILED``, ``ProxyError``...). ``classify`` maps that text to the cause, most
specific first; the GUI shows the translated sentence above pip's log. The patterns come from the
reports in peer plugins' trackers (Deepness, GeoAI, dzetsaka, EnMAP-Box) and from pip's and torch's own
messages; tests feed captured texts to the classifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .plan import ROSETTA
from .text import QT_TRANSLATE_NOOP, Message

__all__ = ["Failure", "VC_REDIST_URL", "classify", "in_use_failure", "not_python_failure"]

VC_REDIST_URL = "https://aka.ms/vs/17/release/vc_redist.x64.exe"


@dataclass(frozen=True)
class Failure:
    """One recognised cause: a stable code (tests, logs) and the sentence for the user."""

    code: str
    message: Message


_MSVC = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "PyTorch is installed but Windows cannot load its libraries (WinError 1114 / c10.dll): the Microsoft "
    "Visual C++ Redistributable is missing or too old. Install it from {0}, then restart QGIS."
)
_NOT_PYTHON = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "QGIS runs as {0}, which is not a Python interpreter, and no python.exe or python3 was found beside it. "
    "Open the OSGeo4W Shell (Windows Start menu) or a terminal and run the manual command there with "
    "'python' in place of the program name."
)
_IN_USE = QT_TRANSLATE_NOOP(
    "TorchInstaller", "The folder {0} is in use (QGIS has loaded PyTorch from it). Restart QGIS, then try again."
)
_PIP_MISSING = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "The Python of this QGIS has no pip. Run '{0} -m ensurepip --upgrade' in a terminal (on macOS this may "
    "need administrator rights), then install again."
)
_NUMPY = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "pip would have to replace the NumPy that QGIS uses; the installer never does that, because QGIS's own "
    "modules are built against it. Update QGIS, or install a PyTorch version that works with this NumPy "
    "(docs/INSTALL.md)."
)
_PERMISSION = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "The folder {0} cannot be written (for example because it lies under Program Files). Set the "
    "environment variable RSSGL_DEPS_DIR to a folder you may write to (QGIS: Settings > Options > System > "
    "Environment), restart QGIS and install again."
)
_TLS = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "The secure connection to the package index was refused (certificate check failed): a company proxy or "
    "an antivirus probably inspects HTTPS. Ask your IT for its root certificate and set the environment "
    "variable PIP_CERT to that file (QGIS: Settings > Options > System > Environment), then install again. As a "
    "last resort add '--trusted-host pypi.org --trusted-host files.pythonhosted.org --trusted-host "
    "download.pytorch.org' to the manual command."
)
_PROXY = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "The connection through the proxy failed. Enter the proxy under QGIS: Settings > Options > Network (the "
    "installer hands it to pip), or set HTTPS_PROXY=http://user:password@proxy:port under Settings > Options "
    "> System > Environment, then install again."
)
_NETWORK = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "The package index could not be reached (no connection, or a proxy is needed). Check the connection and "
    "the proxy under QGIS: Settings > Options > Network, or download the wheels on a connected computer and "
    "use 'Install from a folder...' (docs/INSTALL.md)."
)
_CUDA_MISMATCH = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "The installed PyTorch's CUDA build does not fit this NVIDIA driver or GPU. Update the NVIDIA driver, "
    "then install PyTorch again: the installer picks the build the driver supports (a GeForce RTX 50 / "
    "Blackwell GPU needs a driver with CUDA 12.8 or newer)."
)
_NO_MATCH = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "The package index has no PyTorch for the Python {0} of this QGIS on this platform (old macOS QGIS "
    "packages ship a Python that current PyTorch no longer supports). Install a current QGIS (on an Apple "
    "Silicon Mac its Apple Silicon build) and install PyTorch again."
)
_DISK = QT_TRANSLATE_NOOP(
    "TorchInstaller", "The disk is full: PyTorch needs about 1 GB (the CUDA build up to 5 GB). Free space and install again."
)

# (code, sentence, pattern): first match wins, so specific causes come before the general ones they imply.
_RULES: tuple[tuple[str, str, str], ...] = (
    ("msvc_runtime", _MSVC, r"WinError 1114|c10\.dll|error loading .*\.dll|DLL initialization routine failed"),
    ("rosetta", ROSETTA, r"incompatible architecture \(have '?x86_64'?, need '?arm64"
                         r"|have 'arm64', need 'x86_64'|running under Rosetta"),
    ("tls", _TLS, r"CERTIFICATE_VERIFY_FAILED|SSLCertVerificationError|SSLError|certificate verify failed"),
    ("proxy", _PROXY, r"ProxyError|Proxy Authentication Required|Tunnel connection failed|Cannot connect to proxy"),
    ("network", _NETWORK, r"NewConnectionError|NameResolutionError|Failed to establish a new connection|Failed to resolve"
                          r"|Name or service not known"
                          r"|getaddrinfo failed|Temporary failure in name resolution|nodename nor servname"
                          r"|No route to host|Network is unreachable|ConnectTimeoutError|Read timed out"),
    ("pip_missing", _PIP_MISSING, r"No module named pip\b"),
    ("permission", _PERMISSION, r"\[WinError 5\]|Access is denied|\[Errno 13\]|Permission denied"
                                r"|Read-only file system|\[Errno 30\]"),
    ("disk_full", _DISK, r"No space left on device|\[Errno 28\]|There is not enough space on the disk"),
    ("numpy_conflict", _NUMPY, r"(?s)(conflict|ResolutionImpossible|Cannot install).*\bnumpy\b"),
    ("cuda_mismatch", _CUDA_MISMATCH, r"CUDA driver version is insufficient|NVIDIA driver on your system is too old"
                                      r"|no kernel image is available|is not compatible with the current PyTorch"
                                      r"|CUDA error: unsupported PTX"),
    ("no_matching", _NO_MATCH, r"No matching distribution found for torch"
                               r"|Could not find a version that satisfies the requirement torch"),
)


def classify(text: str, python: tuple[int, int] | None = None, target: str = "", interpreter: str = "") -> Failure | None:
    """The cause named in pip's output or an exception's text, or None when none is recognised.

    ``python`` (version), ``target`` (the plugin folder) and ``interpreter`` fill the sentences' blanks.
    """
    for code, source, pattern in _RULES:
        if re.search(pattern, text or "", re.IGNORECASE):
            args: tuple = ()
            if code == "msvc_runtime":
                args = (VC_REDIST_URL,)
            elif code == "permission":
                args = (target,)
            elif code == "pip_missing":
                args = (interpreter or "python",)
            elif code == "no_matching":
                args = ("{}.{}".format(*python) if python else "?",)
            return Failure(code, Message(source, args))
    return None


def not_python_failure(program: str) -> Failure:
    """The interpreter search found only the QGIS program (qgis-bin.exe): say how to run pip by hand."""
    return Failure("not_python", Message(_NOT_PYTHON, (program,)))


def in_use_failure(folder: str) -> Failure:
    """The folder could not be replaced or deleted: Windows keeps the DLLs of a loaded torch open."""
    return Failure("in_use", Message(_IN_USE, (folder,)))
