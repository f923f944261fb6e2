"""PyTorch discovery and installation: torch_loader, the status probe, the installer dialog.

pip itself is replaced by a small script that prints and exits (no network in tests); the dialog,
its QProcess handling, the plan (CPU/CUDA index, --target folder) and the sys.path activation are
the real code.
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

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def wait_for(condition, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        QgsApplication.processEvents()
        if condition():
            return True
        time.sleep(0.01)
    return condition()


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
    from rssgl_qgis.gui.installer import CPU_INDEX_URL, plan_install

    cpu = plan_install(str(tmp_path), cuda_version=None)
    assert cpu.build == "cpu" and cpu.index_url == CPU_INDEX_URL
    assert plan_install(str(tmp_path), cuda_version=(12, 8)).index_url.endswith("/cu128")
    assert plan_install(str(tmp_path), cuda_version=(13, 2)).index_url.endswith("/cu130")
    old_driver = plan_install(str(tmp_path), cuda_version=(11, 8))
    assert old_driver.build == "cpu" and "Update the NVIDIA driver" in old_driver.reason
    args = cpu.arguments()
    assert args[:3] == ["-m", "pip", "install"]
    assert args[args.index("--target") + 1] == str(tmp_path)
    assert "--user" not in args
    assert any(a.startswith("torch>=") for a in args)
    line = cpu.command_line()
    assert line.startswith(cpu.python) and "--target" in line
    # pip must run on the Python QGIS runs on, or the wheels would not load.
    probe = subprocess.run(
        [cpu.python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, timeout=60
    )
    assert probe.stdout.strip() == str(sys.version_info[:2])


def test_cuda_driver_version_is_read_from_nvidia_smi(tmp_path):
    from rssgl_qgis.gui.installer import cuda_driver_version

    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho '| NVIDIA-SMI 570.86   Driver Version: 570.86   CUDA Version: 12.8 |'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    assert cuda_driver_version(str(smi)) == (12, 8)
    assert cuda_driver_version(str(tmp_path / "absent")) is None


def _fake_pip(tmp_path, exit_code: int):
    script = tmp_path / f"python_exit{exit_code}"
    script.write_text(f"#!/bin/sh\necho \"Collecting torch (fake pip: $*)\"\necho 'done' >&2\nexit {exit_code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.parametrize("exit_code", [0, 1])
def test_installer_dialog_runs_pip_off_the_gui_thread(qgis_app, tmp_path, clean_sys_path, exit_code):
    from rssgl_qgis.gui.installer import InstallPlan, TorchInstallerDialog

    target = tmp_path / "rssgl_deps"
    plan = InstallPlan(_fake_pip(tmp_path, exit_code), str(target), "https://example.invalid/cpu", "cpu", "test")
    dialog = TorchInstallerDialog("PyTorch is not installed.", plan)
    results = []
    dialog.installed.connect(results.append)
    dialog.copy_command()
    assert QGuiApplication.clipboard().text() == plan.command_line()
    dialog.start_install()
    assert dialog.process is not None  # asynchronous: the call returned while pip runs
    assert wait_for(lambda: results, 30)
    log = dialog.log.toPlainText()
    assert "Collecting torch (fake pip: -m pip install" in log and "--target " + str(target) in log
    assert results == [exit_code == 0]
    if exit_code == 0:
        assert str(target) in sys.path and "installed" in log
        assert not dialog.install_button.isEnabled()
    else:
        assert "pip failed (exit code 1)" in log and dialog.install_button.isEnabled()
    dialog.deleteLater()


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
