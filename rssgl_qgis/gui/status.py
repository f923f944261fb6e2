"""The dock's status line: which torch, which device, found without blocking QGIS.

Importing torch takes seconds (and initialising CUDA more), so the probe runs in a Python thread
and hands its result to the GUI thread through a Qt signal (queued across threads). The dock shows
"Checking PyTorch..." meanwhile.
"""

from __future__ import annotations

import itertools
import threading
import traceback
from dataclasses import dataclass

from qgis.PyQt.QtCore import QCoreApplication, QObject, pyqtSignal

from .. import torch_loader

__all__ = ["TorchStatus", "TorchStatusProbe", "probe_torch"]


@dataclass
class TorchStatus:
    """What the status line shows and whether training can start.

    problem is None when torch is usable, else "missing", "too_old" or "broken".
    """

    version: str | None
    device_line: str
    cuda: bool
    problem: str | None = None
    detail: str = ""

    @property
    def usable(self) -> bool:
        return self.problem is None

    def line(self) -> str:
        """One translated line: "PyTorch 2.13.0 | CUDA: NVIDIA H100, 79 GiB"."""
        if self.problem == "missing":
            return QCoreApplication.translate(
                "TorchStatus", "PyTorch is not installed: training is not possible yet."
            )
        if self.problem == "too_old":
            minimum = ".".join(str(v) for v in torch_loader.MIN_TORCH_VERSION)
            return QCoreApplication.translate(
                "TorchStatus", "PyTorch {0} is too old (RSSGL needs {1} or newer)."
            ).format(self.version, minimum)
        if self.problem == "broken":
            return QCoreApplication.translate(
                "TorchStatus", "PyTorch is installed but fails to load: {0}"
            ).format(self.detail)
        return QCoreApplication.translate("TorchStatus", "PyTorch {0} | {1}").format(
            self.version, self.device_line
        )


def probe_torch() -> TorchStatus:
    """Import torch (slow) and describe the device training would use. Safe to call off the GUI thread."""
    version = torch_loader.installed_torch_version()
    if version is None:
        return TorchStatus(None, "", False, "missing")
    if not torch_loader.version_is_supported(version):
        return TorchStatus(version, "", False, "too_old")
    try:
        import torch
    except Exception as exc:  # any import failure means "broken install"
        return TorchStatus(version, "", False, "broken", f"{type(exc).__name__}: {exc}")
    try:
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(torch.cuda.current_device())
            line = QCoreApplication.translate("TorchStatus", "CUDA: {0}, {1:.0f} GiB").format(
                props.name, props.total_memory / 2**30
            )
            return TorchStatus(torch.__version__, line, True)
    except Exception:  # a broken driver must not hide the CPU fallback
        detail = traceback.format_exc(limit=1).strip().splitlines()[-1]
        line = QCoreApplication.translate(
            "TorchStatus", "CPU only: training will be slow (CUDA failed: {0})"
        ).format(detail)
        return TorchStatus(torch.__version__, line, False)
    from ..core.network.device import mps_available

    if mps_available():  # green like CUDA; core.network.device falls back to the CPU, and says so, where an op is missing
        return TorchStatus(torch.__version__, QCoreApplication.translate("TorchStatus", "Apple GPU (MPS)"), True)
    return TorchStatus(
        torch.__version__, QCoreApplication.translate("TorchStatus", "CPU only: training will be slow"), False
    )


class _Relay(QObject):
    """Carries results from probe threads to the GUI thread; one instance that is never deleted.

    The worker thread must not hold the probe itself: if the dock (the probe's parent) is deleted
    meanwhile, the last reference would drop in the worker and destroy a QObject off the GUI thread.
    """

    delivered = pyqtSignal(int, object)


_RELAY: _Relay | None = None
_NEXT_ID = itertools.count(1)


def _relay() -> _Relay:
    global _RELAY
    if _RELAY is None:  # first created from the GUI thread (by a probe's constructor)
        _RELAY = _Relay()
    return _RELAY


class TorchStatusProbe(QObject):
    """Runs probe_torch() in a background thread and emits ``ready(TorchStatus)`` in the GUI thread.

    The thread emits through a GUI-thread relay object, so Qt queues the delivery and connected
    slots may touch widgets.
    """

    ready = pyqtSignal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._id = next(_NEXT_ID)
        self._thread: threading.Thread | None = None
        _relay().delivered.connect(self._deliver)

    def start(self) -> None:
        """Start a probe unless one is already running."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(
            target=_probe_and_relay, args=(_relay(), self._id), daemon=True, name="rssgl-torch-probe"
        )
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the probe thread ends (tests only; the GUI never waits)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _deliver(self, ident: int, status: TorchStatus) -> None:
        if ident == self._id:
            self.ready.emit(status)


def _probe_and_relay(relay: _Relay, ident: int) -> None:
    """Thread body: holds only the immortal relay and an id, never a probe or a widget."""
    try:
        status = probe_torch()
    except Exception as exc:  # report, never kill the thread silently
        status = TorchStatus(None, "", False, "broken", f"{type(exc).__name__}: {exc}")
    relay.delivered.emit(ident, status)
