"""Install PyTorch into the plugin-managed folder, never into QGIS's or the system's Python.

QGIS bundles its own Python, which users should not modify (and often cannot: it needs admin rights,
and a wrong torch or NumPy breaks QGIS and other plugins). The dialog runs
``python -m pip install --target <QGIS profile>/python/rssgl_deps --constraint <pins> torch...`` with
the build rssgl_qgis.install.plan picks for this machine, shows the same command for people who prefer
a terminal, and explains a failure in one sentence (rssgl_qgis.install.failures).

Why a QProcess and not a QgsTask: pip is a separate process either way. A QProcess driven from the
GUI thread delivers pip's output through the event loop as it comes, so QGIS never waits on it; it can
be killed at once (Cancel); and no worker thread has to hand lines back to the log widget. A QgsTask
would add a thread that only blocks on the same process. The dialog shows the progress bar and the
Cancel button a task would have had.

pip writes into a staging folder beside the target; only a complete installation replaces the
folder, so a failed or cancelled run leaves the previous state as it was. "Remove installed PyTorch"
deletes the folder (after confirmation).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from urllib.parse import quote

from qgis.PyQt.QtCore import QCoreApplication, QProcess, QProcessEnvironment, pyqtSignal
from qgis.PyQt.QtGui import QFont, QGuiApplication
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from .. import torch_loader
from ..install import diagnostics
from ..install.failures import Failure, classify, in_use_failure, not_python_failure
from ..install.machine import (
    cuda_driver_version,
    current_machine,
    find_python,
    installed_versions,
    is_qgis_program,
)
from ..install.plan import Machine, TorchPlan, command_line, constraints_text, pip_arguments, plan_torch
from ..install.progress import pip_progress
from ..install.text import Message

__all__ = ["InstallPlan", "TorchInstallerDialog", "cuda_driver_version", "find_qgis_python", "plan_install",
           "proxy_url", "translated"]

STAGING_SUFFIX = ".partial"


def translated(message: Message) -> str:
    """A planner / classifier sentence in the user's language."""
    return message.text(QCoreApplication.translate)


def find_qgis_python() -> str | None:
    """The interpreter of the Python QGIS runs on (rssgl_qgis.install.machine.find_python says where it looks)."""
    return find_python(sys.executable, sys.exec_prefix, (sys.version_info.major, sys.version_info.minor))


def constraints_path(target: str) -> str:
    """The constraints file lives beside the plugin folder, so replacing or removing the folder keeps it apart."""
    return os.path.abspath(target).rstrip("/\\") + "-constraints.txt"


@dataclass
class InstallPlan:
    """Everything needed to run (or show) the installation: interpreter, folder, torch build, pins."""

    python: str | None  # None: no interpreter found (QGIS runs as qgis-bin.exe with none beside it)
    target: str
    torch: TorchPlan
    machine: Machine
    constraints: str | None = None
    find_links: str | None = None  # a folder of wheels: offline installation

    @property
    def build(self) -> str:
        return self.torch.build

    @property
    def index_url(self) -> str | None:
        return self.torch.index_url

    @property
    def reason(self) -> str:
        return translated(self.torch.reason)

    def arguments(self, target: str | None = None) -> list[str]:
        """pip arguments after the interpreter (``-m pip install ...``), into ``target`` or the plan's folder."""
        return pip_arguments(self.torch, target or self.target, self.constraints, self.find_links)

    def command_line(self) -> str:
        """The same command as one copyable terminal line."""
        return command_line(self.python or "python", self.arguments())

    def write_constraints(self) -> None:
        """Pin every package QGIS's Python has (NumPy above all) at its installed version."""
        if not self.constraints:
            return
        pins = constraints_text(installed_versions(exclude_paths=(self.target, self.target + STAGING_SUFFIX)))
        os.makedirs(os.path.dirname(self.constraints), exist_ok=True)
        with open(self.constraints, "w", encoding="utf-8") as handle:
            handle.write(pins)


def plan_install(target: str | None = None, machine: Machine | None = None, find_links: str | None = None,
                 python: str | None = None) -> InstallPlan:
    """Interpreter, folder, torch build and constraints file for this machine (or ``machine``)."""
    folder = os.path.abspath(target or torch_loader.deps_folder())
    machine = machine or current_machine()
    return InstallPlan(python or find_qgis_python(), folder, plan_torch(machine), machine,
                       constraints_path(folder), find_links)


def proxy_url(host: str, port: int | str | None, user: str = "", password: str = "") -> str | None:
    """``http://user:password@host:port`` for pip's HTTPS_PROXY, None without a host."""
    if not host:
        return None
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
    scheme = "" if "://" in host else "http://"
    return f"{scheme}{auth}{host}{f':{port}' if port else ''}"


def _qgis_proxy() -> str | None:
    """The HTTP proxy set under QGIS Settings > Options > Network, if any."""
    from qgis.core import QgsSettings

    settings = QgsSettings()
    enabled = str(settings.value("proxy/proxyEnabled", False)).lower() in ("true", "1")
    kind = str(settings.value("proxy/proxyType", "HttpProxy"))
    if not enabled or kind not in ("HttpProxy", "HttpCachingProxy", "DefaultProxy"):
        return None
    return proxy_url(str(settings.value("proxy/proxyHost", "") or ""), settings.value("proxy/proxyPort", "") or "",
                     str(settings.value("proxy/proxyUser", "") or ""), str(settings.value("proxy/proxyPassword", "") or ""))


class TorchInstallerDialog(QDialog):
    """Explains why PyTorch is needed, installs it with pip in a QProcess (progress, Cancel), can remove it.

    Emits ``installed(bool)`` when pip ends (True on success, after the folder was put on sys.path) and
    ``removed()`` after the folder was deleted.
    """

    installed = pyqtSignal(bool)
    removed = pyqtSignal()

    def __init__(self, problem_text: str, plan: InstallPlan | None = None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Install PyTorch for RSSGL"))
        self.plan = plan or plan_install()
        self.process: QProcess | None = None
        self.failure: Failure | None = None
        self._output: list[str] = []
        self._cancelled = False
        try:
            self.plan.write_constraints()
        except OSError:  # an unwritable profile: the install itself will say so in its own words
            pass

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

        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #b00020;")
        self.problem_label.setVisible(False)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)

        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setFont(QFont("monospace"))
        self.log.setMinimumHeight(160)

        self.buttons = QDialogButtonBox()
        self.install_button = self.buttons.addButton(self.tr("Install"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.folder_button = self.buttons.addButton(self.tr("Install from a folder..."),
                                                    QDialogButtonBox.ButtonRole.ActionRole)
        self.remove_button = self.buttons.addButton(self.tr("Remove installed PyTorch"),
                                                    QDialogButtonBox.ButtonRole.DestructiveRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.install_button.clicked.connect(lambda: self.start_install())
        self.folder_button.clicked.connect(self.choose_wheel_folder)
        self.remove_button.clicked.connect(lambda: self.remove_installed())
        self.cancel_button.clicked.connect(self.cancel_install)
        self.close_button.clicked.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(explain)
        layout.addWidget(self.problem_label)
        layout.addWidget(QLabel(self.tr("Manual installation (run in a terminal):")))
        layout.addLayout(command_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.log, 1)
        layout.addWidget(self.buttons)
        self.resize(680, 460)

        # A torch that fails to load names its cause in the exception (WinError 1114, a CUDA mismatch...).
        known = classify(problem_text, self.plan.machine.python, self.plan.target, self.plan.python or "")
        if self.plan.torch.blocked:
            self._show_problem(Failure("plan", self.plan.torch.reason))
        elif self.plan.python is None:
            self._show_problem(not_python_failure(os.path.basename(sys.executable) or "QGIS"))
        elif known is not None:
            self._show_problem(known)
        self._update_buttons()

    # ----------------------------------------------------------------------------------------- state
    def _running(self) -> bool:
        return self.process is not None

    def _update_buttons(self) -> None:
        can_install = not self._running() and not self.plan.torch.blocked and self.plan.python is not None
        self.install_button.setEnabled(can_install)
        self.folder_button.setEnabled(can_install)
        self.remove_button.setEnabled(not self._running() and os.path.isdir(self.plan.target))
        self.cancel_button.setEnabled(self._running())
        self.close_button.setEnabled(not self._running())

    def _show_problem(self, failure: Failure) -> None:
        self.failure = failure
        text = translated(failure.message)
        self.problem_label.setText(text)
        self.problem_label.setVisible(True)
        diagnostics.record_error(text)

    def copy_command(self) -> None:
        """Put the manual command on the clipboard."""
        QGuiApplication.clipboard().setText(self.command_edit.text())

    # ----------------------------------------------------------------------------------------- install
    def choose_wheel_folder(self, folder: str | None = None) -> None:
        """Offline installation: wheels downloaded elsewhere (``pip download``, docs/INSTALL.md)."""
        folder = folder or QFileDialog.getExistingDirectory(self, self.tr("Folder with the PyTorch wheels"))
        if not folder:
            return
        self.plan = replace(self.plan, find_links=folder)
        self.command_edit.setText(self.plan.command_line())
        self.start_install()

    def start_install(self) -> None:
        """Run pip asynchronously into a staging folder; the dialog stays responsive and shows its output."""
        if self._running() or self.plan.python is None or self.plan.torch.blocked:
            return
        staging = self.plan.target + STAGING_SUFFIX
        shutil.rmtree(staging, ignore_errors=True)
        try:
            os.makedirs(staging, exist_ok=True)
        except OSError as exc:
            self._fail(str(exc))
            return
        self.problem_label.setVisible(False)
        self.failure = None
        self._output = []
        self._cancelled = False
        self.progress_bar.setValue(0)
        self.log.appendPlainText("$ " + self.plan.command_line())
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        env.insert("PYTHONNOUSERSITE", "1")  # never read or write the user's site-packages
        proxy = None if env.contains("HTTPS_PROXY") or env.contains("https_proxy") else _qgis_proxy()
        if proxy:
            env.insert("HTTPS_PROXY", proxy)
            env.insert("HTTP_PROXY", proxy)
        process.setProcessEnvironment(env)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(self._read_output)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self.process = process
        self._update_buttons()
        process.start(self.plan.python, self.plan.arguments(target=staging))

    def cancel_install(self) -> None:
        """Stop pip now; the staging folder is removed and the installed state stays as it was."""
        if self.process is not None:
            self._cancelled = True
            self.process.kill()

    def _read_output(self) -> None:
        if self.process is None:
            return
        text = bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace")
        if not text:
            return
        self._output.append(text)
        self.log.appendPlainText(text.rstrip("\n"))
        value = self.progress_bar.value()
        for line in text.splitlines():
            value = pip_progress(line, value)
        self.progress_bar.setValue(min(value, 95))  # 100 only once the folder is in place

    def _error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart and not self._cancelled:
            self.log.appendPlainText(
                self.tr("Could not start {0}. Run the manual command above in a terminal instead.").format(
                    self.plan.python
                )
            )
            if is_qgis_program(self.plan.python or ""):
                self._show_problem(not_python_failure(os.path.basename(self.plan.python or "")))
            shutil.rmtree(self.plan.target + STAGING_SUFFIX, ignore_errors=True)
            self._done(False)

    def _finished(self, exit_code: int, _status) -> None:
        if self.process is None:
            return
        self._read_output()
        staging = self.plan.target + STAGING_SUFFIX
        if self._cancelled:
            shutil.rmtree(staging, ignore_errors=True)
            self.progress_bar.setValue(0)
            self.log.appendPlainText(self.tr("Installation canceled; nothing was changed."))
            self._done(False)
            return
        if exit_code != 0:
            shutil.rmtree(staging, ignore_errors=True)
            self.log.appendPlainText(
                self.tr("pip failed (exit code {0}). Read the log above, or run the manual command.").format(
                    exit_code
                )
            )
            self._fail("".join(self._output))
            self._done(False)
            return
        try:
            self._replace_folder(staging)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            self.log.appendPlainText(str(exc))
            self._fail(str(exc), in_use=True)
            self._done(False)
            return
        torch_loader.activate(self.plan.target)
        self.progress_bar.setValue(100)
        self.log.appendPlainText(self.tr("PyTorch was installed into {0}.").format(self.plan.target))
        self._done(True)

    def _replace_folder(self, staging: str) -> None:
        """Put the complete installation in place; the old folder goes only after the new one is there."""
        target = self.plan.target
        old = f"{target}.old-{int(time.time())}"
        if os.path.isdir(target):
            os.rename(target, old)  # fails on Windows while QGIS has the old torch's DLLs loaded
        try:
            os.rename(staging, target)
        except OSError:
            if os.path.isdir(old):
                os.rename(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)

    def _fail(self, text: str, in_use: bool = False) -> None:
        failure = classify(text, self.plan.machine.python, self.plan.target, self.plan.python or "")
        if failure is None and in_use:
            failure = in_use_failure(self.plan.target)
        if failure is not None:
            self._show_problem(failure)
            self.log.appendPlainText(translated(failure.message))
        else:
            diagnostics.record_error(text.strip()[-2000:])

    def _done(self, ok: bool) -> None:
        self.process = None
        self._update_buttons()
        if ok:
            self.install_button.setEnabled(False)
        self.installed.emit(ok)

    # ----------------------------------------------------------------------------------------- remove
    def remove_installed(self, ask: bool = True) -> bool:
        """Delete the plugin-managed folder (and its constraints file) after confirmation."""
        target = self.plan.target
        if self._running() or not os.path.isdir(target):
            return False
        if ask:
            answer = QMessageBox.question(
                self, self.tr("Remove installed PyTorch"),
                self.tr("Delete {0} and everything the installer put there? QGIS's own Python is not touched.").format(target),
            )
            if answer != QMessageBox.StandardButton.Yes:
                return False
        try:
            shutil.rmtree(target)
        except OSError as exc:
            self.log.appendPlainText(str(exc))
            self._show_problem(in_use_failure(target))
            self._update_buttons()
            return False
        if self.plan.constraints and os.path.isfile(self.plan.constraints):
            os.remove(self.plan.constraints)
        while target in sys.path:
            sys.path.remove(target)
        self.log.appendPlainText(self.tr("Removed {0}. Restart QGIS if PyTorch was loaded from there.").format(target))
        self.progress_bar.setValue(0)
        self._update_buttons()
        self.removed.emit()
        return True

