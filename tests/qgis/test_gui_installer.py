"""PyTorch discovery and installation: torch_loader, the status probe, the installer dialog, diagnostics.

pip itself is replaced by a small script that prints like pip, writes torch/ into --target (or fails
with a captured message) and exits (no network in tests); the dialog, its QProcess handling, the staging
folder, cancel and remove, the plan (CPU/CUDA index, --target folder, constraints) and the sys.path
activation are the real code.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest

pytest.importorskip("qgis.gui")

from qgis.core import QgsApplication  # noqa: E402
from qgis.PyQt.QtGui import QGuiApplication  # noqa: E402

from tests.qgis.helpers_gui import wait_for  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def clean_sys_path():
    before = list(sys.path)
    yield
    sys.path[:] = before


def test_activate_puts_a_torch_folder_first_and_others_last(tmp_path, clean_sys_path):
    from rssgl_qgis import torch_loader

    assert torch_loader.activate(str(tmp_path / "missing")) is None
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    assert torch_loader.activate(str(helpers)) == str(helpers)
    assert sys.path[-1] == str(helpers)
    with_torch = tmp_path / "deps"
    (with_torch / "torch").mkdir(parents=True)
    torch_loader.activate(str(with_torch))
    torch_loader.activate(str(with_torch))  # twice: still one entry
    assert sys.path[0] == str(with_torch) and sys.path.count(str(with_torch)) == 1


def test_activate_removes_what_an_interrupted_install_left(tmp_path, clean_sys_path):
    from rssgl_qgis import torch_loader

    deps = tmp_path / "rssgl_deps"
    (deps / "torch").mkdir(parents=True)
    for leftover in ("rssgl_deps.partial", "rssgl_deps.old-1765084800"):
        (tmp_path / leftover / "torch").mkdir(parents=True)
    (tmp_path / "rssgl_deps-constraints.txt").write_text("numpy==1.24.2\n")
    (tmp_path / "other_plugin_deps.old-1").mkdir()
    torch_loader.activate(str(deps))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other_plugin_deps.old-1", "rssgl_deps",
                                                          "rssgl_deps-constraints.txt"]


def test_class_factory_activates_the_plugin_managed_folder(tmp_path, monkeypatch, clean_sys_path, qgis_app):
    import rssgl_qgis

    deps = tmp_path / "rssgl_deps"
    (deps / "torch").mkdir(parents=True)
    monkeypatch.setenv("RSSGL_DEPS_DIR", str(deps))
    rssgl_qgis.classFactory(None)
    assert sys.path[0] == str(deps)


def test_deps_folder_is_inside_the_qgis_profile(monkeypatch, qgis_app):
    from rssgl_qgis import torch_loader

    monkeypatch.delenv("RSSGL_DEPS_DIR", raising=False)
    folder = torch_loader.deps_folder()
    assert folder.startswith(QgsApplication.qgisSettingsDirPath().rstrip("/"))
    assert folder.endswith(os.path.join("python", "rssgl_deps"))
    monkeypatch.setenv("RSSGL_DEPS_DIR", "/opt/shared/rssgl")
    assert torch_loader.deps_folder() == "/opt/shared/rssgl"


def test_versions():
    from rssgl_qgis import torch_loader

    assert torch_loader.parse_version("2.13.0+cpu") == (2, 13, 0)
    assert torch_loader.parse_version("2.11.0a0+git123") == (2, 11, 0)
    assert torch_loader.version_is_supported("2.11.0") and torch_loader.version_is_supported("2.13.0+cu128")
    assert not torch_loader.version_is_supported("1.13.1")


def test_old_plugin_managed_torch_is_reported_as_too_old(tmp_path):
    """A torch found through the plugin folder but too old: the probe says so, without importing it."""
    fake = tmp_path / "deps"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise ImportError('the probe must not import an old torch')\n")
    info = fake / "torch-1.13.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 1.13.1\n")
    code = (
        "from rssgl_qgis import torch_loader; torch_loader.activate();"
        "from rssgl_qgis.gui.status import probe_torch; s = probe_torch();"
        "print(torch_loader.installed_torch_version(), s.problem, s.usable)"
    )
    env = dict(os.environ, RSSGL_DEPS_DIR=str(fake), PYTHONPATH=REPO_ROOT, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1.13.1", "too_old", "False"]


def test_install_plan_follows_the_machine(tmp_path):
    from rssgl_qgis.gui.installer import plan_install
    from rssgl_qgis.install.plan import Machine

    linux = Machine("Linux", "x86_64", sys.version_info[:2])
    cpu = plan_install(str(tmp_path / "deps"), machine=linux)
    assert cpu.build == "cpu" and cpu.index_url.endswith("/whl/cpu")
    assert plan_install(str(tmp_path), machine=Machine("Linux", "x86_64", (3, 12), cuda=(12, 8))).index_url.endswith("/cu128")
    assert plan_install(str(tmp_path), machine=Machine("Linux", "x86_64", (3, 12), cuda=(13, 2))).index_url.endswith("/cu130")
    old_driver = plan_install(str(tmp_path), machine=Machine("Linux", "x86_64", (3, 12), cuda=(11, 8)))
    assert old_driver.build == "cpu" and "Update the NVIDIA driver" in old_driver.reason
    args = cpu.arguments()
    assert args[:3] == ["-m", "pip", "install"]
    assert args[args.index("--target") + 1] == str(tmp_path / "deps")
    assert args[args.index("--constraint") + 1] == str(tmp_path / "deps-constraints.txt")
    assert "--user" not in args
    assert args[-1].startswith("torch>=")
    line = cpu.command_line()
    assert line.startswith(cpu.python) and "--target" in line
    # pip must run on the Python QGIS runs on, or the wheels would not load.
    probe = subprocess.run(
        [cpu.python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, timeout=60
    )
    assert probe.stdout.strip() == str(sys.version_info[:2])
    # the constraints pin QGIS's own NumPy at the version it has, and leave torch free
    cpu.write_constraints()
    import numpy

    pins = (tmp_path / "deps-constraints.txt").read_text()
    assert f"numpy=={numpy.__version__}" in pins.splitlines()
    assert not any(line.startswith("torch==") for line in pins.splitlines())


def test_cuda_driver_version_is_read_from_nvidia_smi(tmp_path):
    from rssgl_qgis.gui.installer import cuda_driver_version
    from rssgl_qgis.install.machine import gpu_compute_capability

    smi = tmp_path / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\nif [ \"$1\" = --query-gpu=compute_cap ]; then echo 12.0; exit 0; fi\n"
        "echo '| NVIDIA-SMI 570.86   Driver Version: 570.86   CUDA Version: 12.8 |'\n"
    )
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    assert cuda_driver_version(str(smi)) == (12, 8)
    assert gpu_compute_capability(str(smi)) == (12, 0)
    assert cuda_driver_version(str(tmp_path / "absent")) is None


def test_proxy_from_qgis_settings_is_handed_to_pip():
    from rssgl_qgis.gui.installer import proxy_url

    assert proxy_url("proxy.example.org", 3128) == "http://proxy.example.org:3128"
    assert proxy_url("proxy", "8080", "dom\\me", "p@ss:w") == "http://dom%5Cme:p%40ss%3Aw@proxy:8080"
    assert proxy_url("", 3128) is None


def _fake_pip(tmp_path, exit_code: int, output: str = "", sleep: float = 0):
    """A stand-in for QGIS's Python: prints like pip and, on success, writes torch/ into --target."""
    script = tmp_path / f"python_exit{exit_code}"
    write = 'mkdir -p "$T/torch" && echo new > "$T/torch/__init__.py"' if exit_code == 0 else ""
    script.write_text(
        "#!/bin/sh\n"
        'echo "Collecting torch (fake pip: $*)"\n'
        f"sleep {sleep}\n"
        'while [ $# -gt 0 ]; do if [ "$1" = --target ]; then shift; T="$1"; fi; shift; done\n'
        f"{write}\n"
        f"cat <<'EOF'\n{output}\nEOF\n"
        f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def _plan(tmp_path, python, machine=None):
    from rssgl_qgis.gui.installer import plan_install
    from rssgl_qgis.install.plan import Machine

    return plan_install(str(tmp_path / "rssgl_deps"), machine=machine or Machine("Linux", "x86_64", (3, 11)),
                        python=python)


@pytest.mark.parametrize("exit_code", [0, 1])
def test_installer_dialog_runs_pip_off_the_gui_thread(qgis_app, tmp_path, clean_sys_path, exit_code):
    from rssgl_qgis.gui.installer import TorchInstallerDialog

    tls = ("WARNING: Retrying after connection broken by 'SSLError(SSLCertVerificationError(1, '[SSL: "
           "CERTIFICATE_VERIFY_FAILED] certificate verify failed'))': /simple/torch/")
    plan = _plan(tmp_path, _fake_pip(tmp_path, exit_code, "Successfully installed torch-2.15.0" if exit_code == 0 else tls))
    target = tmp_path / "rssgl_deps"
    (target / "torch").mkdir(parents=True)
    (target / "torch" / "__init__.py").write_text("old\n")  # an earlier installation
    dialog = TorchInstallerDialog("PyTorch is not installed.", plan)
    results = []
    dialog.installed.connect(results.append)
    dialog.copy_command()
    assert QGuiApplication.clipboard().text() == plan.command_line()
    assert (tmp_path / "rssgl_deps-constraints.txt").is_file()
    dialog.start_install()
    assert dialog.process is not None  # asynchronous: the call returned while pip runs
    assert dialog.cancel_button.isEnabled() and not dialog.install_button.isEnabled()
    assert wait_for(lambda: results, 30)
    log = dialog.log.toPlainText()
    assert "Collecting torch (fake pip: -m pip install" in log and "--target " + str(target) + ".partial" in log
    assert results == [exit_code == 0]
    assert not (tmp_path / "rssgl_deps.partial").exists()
    if exit_code == 0:
        assert (target / "torch" / "__init__.py").read_text() == "new\n"
        assert str(target) in sys.path and "installed" in log and dialog.progress_bar.value() == 100
        assert not dialog.install_button.isEnabled()
    else:
        assert (target / "torch" / "__init__.py").read_text() == "old\n"  # a failed run changes nothing
        assert "pip failed (exit code 1)" in log and dialog.install_button.isEnabled()
        assert dialog.failure.code == "tls" and "PIP_CERT" in dialog.problem_label.text()
        assert dialog.problem_label.isVisibleTo(dialog)
    dialog.deleteLater()


def test_cancel_stops_pip_and_keeps_the_installed_state(qgis_app, tmp_path, clean_sys_path):
    from rssgl_qgis.gui.installer import TorchInstallerDialog

    plan = _plan(tmp_path, _fake_pip(tmp_path, 0, sleep=30))
    target = tmp_path / "rssgl_deps"
    (target / "torch").mkdir(parents=True)
    dialog = TorchInstallerDialog("PyTorch is too old.", plan)
    results = []
    dialog.installed.connect(results.append)
    dialog.start_install()
    assert wait_for(lambda: "Collecting torch" in dialog.log.toPlainText(), 20)
    assert dialog.progress_bar.value() == 5
    started = time.monotonic()
    dialog.cancel_install()
    assert wait_for(lambda: results, 10) and time.monotonic() - started < 10
    assert results == [False] and "canceled" in dialog.log.toPlainText()
    assert (target / "torch").is_dir() and not (tmp_path / "rssgl_deps.partial").exists()
    assert dialog.install_button.isEnabled() and not dialog.cancel_button.isEnabled()
    dialog.deleteLater()


def test_remove_deletes_the_plugin_folder_only(qgis_app, tmp_path, clean_sys_path):
    from rssgl_qgis.gui.installer import TorchInstallerDialog

    plan = _plan(tmp_path, _fake_pip(tmp_path, 0))
    target = tmp_path / "rssgl_deps"
    (target / "torch").mkdir(parents=True)
    sys.path.insert(0, str(target))
    dialog = TorchInstallerDialog("", plan)
    removed = []
    dialog.removed.connect(lambda: removed.append(True))
    assert dialog.remove_button.isEnabled()
    assert dialog.remove_installed(ask=False)
    assert not target.exists() and not (tmp_path / "rssgl_deps-constraints.txt").exists()
    assert removed == [True] and str(target) not in sys.path
    assert tmp_path.is_dir() and not dialog.remove_button.isEnabled()
    assert not dialog.remove_installed(ask=False)  # nothing left to remove
    dialog.deleteLater()


def test_offline_folder_installs_with_no_index(qgis_app, tmp_path, clean_sys_path):
    from rssgl_qgis.gui.installer import TorchInstallerDialog

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    dialog = TorchInstallerDialog("", _plan(tmp_path, _fake_pip(tmp_path, 0)))
    results = []
    dialog.installed.connect(results.append)
    dialog.choose_wheel_folder(str(wheels))
    assert wait_for(lambda: results, 30) and results == [True]
    assert f"--no-index --find-links {wheels}" in dialog.command_edit.text()
    assert "--index-url" not in dialog.log.toPlainText()
    dialog.deleteLater()


def test_blocked_plan_and_missing_interpreter_explain_instead_of_installing(qgis_app, tmp_path):
    from rssgl_qgis.gui.installer import TorchInstallerDialog
    from rssgl_qgis.install.plan import Machine

    rosetta = Machine("Darwin", "x86_64", (3, 12), macos=(15, 0), rosetta=True)
    dialog = TorchInstallerDialog("", _plan(tmp_path, "/usr/bin/python3", rosetta))
    assert not dialog.install_button.isEnabled() and not dialog.folder_button.isEnabled()
    assert "Apple Silicon (arm64) build of QGIS" in dialog.problem_label.text()
    dialog.deleteLater()
    plan = _plan(tmp_path, None)
    plan.python = None  # QGIS runs as qgis-bin.exe and no python.exe lies beside it
    no_python = TorchInstallerDialog("", plan)
    assert not no_python.install_button.isEnabled()
    assert "not a Python interpreter" in no_python.problem_label.text()
    no_python.deleteLater()


def test_an_interpreter_that_cannot_start_is_explained(qgis_app, tmp_path, clean_sys_path):
    from rssgl_qgis.gui.installer import TorchInstallerDialog

    dialog = TorchInstallerDialog("", _plan(tmp_path, str(tmp_path / "bin" / "qgis-bin.exe")))
    results = []
    dialog.installed.connect(results.append)
    dialog.start_install()
    assert wait_for(lambda: results, 20) and results == [False]
    assert "Could not start" in dialog.log.toPlainText()
    assert dialog.failure.code == "not_python" and "OSGeo4W Shell" in dialog.problem_label.text()
    assert not (tmp_path / "rssgl_deps.partial").exists() and dialog.install_button.isEnabled()
    dialog.deleteLater()


def test_a_torch_that_fails_to_load_gets_its_cause_explained(qgis_app, tmp_path):
    """The dock hands the probe's line ("fails to load: OSError: [WinError 1114] ... c10.dll") to the dialog."""
    from rssgl_qgis.gui.installer import TorchInstallerDialog
    from rssgl_qgis.gui.status import TorchStatus

    detail = ('OSError: [WinError 1114] A dynamic link library (DLL) initialization routine failed. Error loading '
              '"C:\\Users\\me\\rssgl_deps\\torch\\lib\\c10.dll" or one of its dependencies.')
    line = TorchStatus("2.15.0", "", False, "broken", detail).line()
    dialog = TorchInstallerDialog(line, _plan(tmp_path, "/usr/bin/python3"))
    assert dialog.failure.code == "msvc_runtime"
    assert "vc_redist.x64.exe" in dialog.problem_label.text() and dialog.install_button.isEnabled()
    dialog.deleteLater()


def test_every_installer_sentence_reaches_the_translators():
    """pylupdate5 skips a QT_TRANSLATE_NOOP it cannot parse: every sentence must be in both .ts files."""
    import ast
    import xml.etree.ElementTree as ET

    sources = []
    for name in ("plan.py", "failures.py"):
        tree = ast.parse(open(os.path.join(REPO_ROOT, "rssgl_qgis", "install", name), encoding="utf-8").read())
        sources += [node.args[1].value for node in ast.walk(tree) if isinstance(node, ast.Call)
                    and getattr(node.func, "id", "") == "QT_TRANSLATE_NOOP"]
    assert len(sources) >= 24
    for lang in ("de", "zh"):
        root = ET.parse(os.path.join(REPO_ROOT, "i18n", f"rssgl_qgis_{lang}.ts")).getroot()
        translated = {m.findtext("source") for c in root.iter("context") if c.findtext("name") == "TorchInstaller"
                      for m in c.iter("message") if (m.find("translation").text or "").strip()}
        missing = [s[:60] for s in sources if s not in translated]
        assert not missing, f"{lang}: " + "; ".join(missing)


def test_dock_offers_the_installer_when_torch_is_missing(qgis_app, monkeypatch):
    from rssgl_qgis.gui import installer
    from rssgl_qgis.gui.dock import RssglDockWidget
    from rssgl_qgis.gui.status import TorchStatus

    monkeypatch.setattr(installer, "cuda_driver_version", lambda *a: None)
    dock = RssglDockWidget(None)
    dock.status_probe.wait(120)
    QgsApplication.processEvents()
    dock._show_torch_status(TorchStatus(None, "", False, "missing"))
    assert "not installed" in dock.status_label.text()
    assert dock.install_button.isVisibleTo(dock) and not dock.train_button.isEnabled()
    assert dock.start_training() is None
    dialog = dock._installer
    assert dialog.isVisible() and "--target" in dialog.command_edit.text()
    dialog.close()
    dock.deleteLater()


def test_dock_copies_diagnostics(qgis_app):
    from rssgl_qgis.gui.dock import RssglDockWidget
    from rssgl_qgis.install import diagnostics

    dock = RssglDockWidget(None)
    dock.status_probe.wait(120)
    QgsApplication.processEvents()
    diagnostics.record_error("Training failed: simulated")
    assert dock.diagnostics_button.isVisibleTo(dock) or not dock.isVisible()
    dock.diagnostics_button.click()
    text = QGuiApplication.clipboard().text()
    for name in ("QGIS:", "Qt:", "Python:", "numpy:", "GDAL:", "torch:", "NVIDIA driver CUDA:", "NVIDIA GPU:",
                 "Plugin folder:", "PyTorch folder:", "Dock status:"):
        assert name in text, name
    from qgis.core import Qgis

    assert Qgis.QGIS_VERSION in text and "    Training failed: simulated" in text
    dock.deleteLater()
