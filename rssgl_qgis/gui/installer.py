"""Install PyTorch into the plugin-managed folder, never into the system Python.

QGIS bundles its own Python, which users should not modify (and often cannot: it needs admin
rights, and a wrong torch can break other plugins). The dialog runs
``python -m pip install --target <QGIS profile>/python/rssgl_deps torch`` in a QProcess (off the GUI
thread), streams pip's log, and shows the same command for people who prefer a terminal. The build
(CPU or CUDA) follows what the machine has: when ``nvidia-smi`` reports a CUDA driver, the matching
CUDA wheel index is used, otherwise the CPU index (a CUDA build is several GB of downloads).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass

from qgis.PyQt.QtCore import QCoreApplication, QProcess, QProcessEnvironment, pyqtSignal
from qgis.PyQt.QtGui import QFont, QGuiApplication
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
)

from .. import torch_loader

__all__ = ["InstallPlan", "TorchInstallerDialog", "cuda_driver_version", "find_python", "plan_install"]

TORCH_REQUIREMENT = "torch>=" + ".".join(str(v) for v in torch_loader.MIN_TORCH_VERSION)
CPU_INDEX_URL = "https://download.pytorch.org/whl/cpu"
# (minimum driver CUDA version, wheel index): newest first. A driver supports every older toolkit.
CUDA_INDEX_URLS: tuple[tuple[tuple[int, int], str], ...] = (
    ((13, 0), "https://download.pytorch.org/whl/cu130"),
    ((12, 8), "https://download.pytorch.org/whl/cu128"),
    ((12, 6), "https://download.pytorch.org/whl/cu126"),
)


@dataclass
class InstallPlan:
    """Everything needed to run (or show) the installation command."""

    python: str
    target: str
    index_url: str
    build: str  # "cpu" or "cuda" (human-readable reason in ``reason``)
    reason: str

    def arguments(self) -> list[str]:
        """pip arguments after the interpreter (``-m pip install ...``)."""
        return [
            "-m",
            "pip",
            "install",
            "--upgrade",
            "--no-warn-script-location",
            "--target",
            self.target,
            "--index-url",
            self.index_url,
            TORCH_REQUIREMENT,
        ]

    def command_line(self) -> str:
        """The same command as one copyable shell line."""
        return " ".join(shlex.quote(part) for part in [self.python, *self.arguments()])


def find_python() -> str:
    """The Python interpreter QGIS runs on (``sys.executable`` is often the qgis binary itself).

    pip must run with the same Python version, or the downloaded wheels would not load in QGIS.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if os.path.basename(sys.executable).lower().startswith("python"):
        return sys.executable
    candidates = [
        os.path.join(sys.exec_prefix, "python.exe"),  # Windows (OSGeo4W / standalone installers)
        os.path.join(sys.exec_prefix, "python3.exe"),
        os.path.join(sys.exec_prefix, "bin", f"python{version}"),  # macOS bundle, Linux
        os.path.join(sys.exec_prefix, "bin", "python3"),
    ]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    return shutil.which(f"python{version}") or shutil.which("python3") or "python3"


def cuda_driver_version(nvidia_smi: str | None = None) -> tuple[int, int] | None:
    """CUDA version the NVIDIA driver supports, from ``nvidia-smi``'s header; None without a GPU."""
    exe = nvidia_smi or shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def plan_install(target: str | None = None, cuda_version: tuple[int, int] | None = None) -> InstallPlan:
    """Choose interpreter, target folder and wheel index for this machine."""
    folder = target or torch_loader.deps_folder()
    python = find_python()
    if cuda_version is not None:
        for minimum, url in CUDA_INDEX_URLS:
            if cuda_version >= minimum:
                reason = QCoreApplication.translate(
                    "TorchInstaller", "NVIDIA driver with CUDA {0}.{1} found: installing the CUDA build."
                ).format(*cuda_version)
                return InstallPlan(python, folder, url, "cuda", reason)
        # One literal on one line: pylupdate5 skips translate() calls with a trailing comma.
        reason = QCoreApplication.translate("TorchInstaller", "NVIDIA driver found, but its CUDA {0}.{1} is older than the CUDA builds of PyTorch need (12.6); installing the CPU build. Update the NVIDIA driver to train on the GPU.").format(*cuda_version)  # fmt: skip
        return InstallPlan(python, folder, CPU_INDEX_URL, "cpu", reason)
    reason = QCoreApplication.translate("TorchInstaller", "No NVIDIA GPU found: installing the CPU build.")
    return InstallPlan(python, folder, CPU_INDEX_URL, "cpu", reason)


class TorchInstallerDialog(QDialog):
    """Explains why PyTorch is needed, then installs it with pip in a QProcess, showing the log.

    Emits ``installed(bool)`` when pip ends (True on success, after the folder was put on sys.path).
    """

    installed = pyqtSignal(bool)

    def __init__(self, problem_text: str, plan: InstallPlan | None = None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Install PyTorch for RSSGL"))
        self.plan = plan or plan_install(cuda_version=cuda_driver_version())
        self.process: QProcess | None = None

        explain = QLabel(
            self.tr(
                "{0}\n\nRSSGL trains a deep network with PyTorch. It can be installed into a folder that "
                "belongs to this plugin ({1}); your system Python and other plugins are not changed. "
                "{2}\nThe download is large (about 200 MB for the CPU build, several GB for the CUDA "
                "build). Restart QGIS afterwards if PyTorch was already loaded."
            ).format(problem_text, self.plan.target, self.plan.reason)
        )
        explain.setWordWrap(True)

        self.command_edit = QLineEdit(self.plan.command_line())
        self.command_edit.setReadOnly(True)
        self.command_edit.setCursorPosition(0)
        copy_button = QPushButton(self.tr("Copy"))
        copy_button.clicked.connect(self.copy_command)
        command_row = QHBoxLayout()
        command_row.addWidget(self.command_edit, 1)
        command_row.addWidget(copy_button)

        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setFont(QFont("monospace"))
        self.log.setMinimumHeight(160)

        self.buttons = QDialogButtonBox()
        self.install_button = self.buttons.addButton(self.tr("Install"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.install_button.clicked.connect(self.start_install)
        self.close_button.clicked.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(explain)
        layout.addWidget(QLabel(self.tr("Manual installation (run in a terminal):")))
        layout.addLayout(command_row)
        layout.addWidget(self.log, 1)
        layout.addWidget(self.buttons)
        self.resize(640, 420)

    def copy_command(self) -> None:
        """Put the manual command on the clipboard."""
        QGuiApplication.clipboard().setText(self.command_edit.text())

    def start_install(self) -> None:
        """Run pip asynchronously; the dialog stays responsive and shows its output as it comes."""
        if self.process is not None:
            return
        os.makedirs(self.plan.target, exist_ok=True)
        self.install_button.setEnabled(False)
        self.log.appendPlainText("$ " + self.plan.command_line())
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        env.insert("PYTHONNOUSERSITE", "1")  # never read or write the user's site-packages
        process.setProcessEnvironment(env)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(self._read_output)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self.process = process
        process.start(self.plan.python, self.plan.arguments())

    def _read_output(self) -> None:
        if self.process is not None:
            text = bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace")
            self.log.appendPlainText(text.rstrip("\n"))

    def _error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.log.appendPlainText(
                self.tr("Could not start {0}. Run the manual command above in a terminal instead.").format(
                    self.plan.python
                )
            )
            self._done(False)

    def _finished(self, exit_code: int, _status) -> None:
        self._read_output()
        ok = exit_code == 0
        if ok:
            torch_loader.activate(self.plan.target)
            self.log.appendPlainText(self.tr("PyTorch was installed into {0}.").format(self.plan.target))
        else:
            self.log.appendPlainText(
                self.tr("pip failed (exit code {0}). Read the log above, or run the manual command.").format(
                    exit_code
                )
            )
        self._done(ok)

    def _done(self, ok: bool) -> None:
        self.process = None
        self.install_button.setEnabled(not ok)
        self.installed.emit(ok)
