"""`make package` builds an installable zip: it holds no tests or caches and qgis_process lists our provider from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.qgis.conftest import REPO_ROOT

QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"


def build_zip(tmp_path) -> str:
    out = tmp_path / "rssgl_qgis.zip"
    subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "package.py"), "--out", str(out)],
                   check=True, capture_output=True, text=True)
    return str(out)


def qgis_process_env(home) -> dict:
    """An environment whose default QGIS profile lives under ``home`` (a throw-away profile)."""
    env = dict(os.environ)
    env.update(HOME=str(home), QT_QPA_PLATFORM="offscreen")
    env.pop("QGIS_PLUGINPATH", None)
    # qgis_process runs Debian's python3: let it see the venv's packages (torch, safetensors).
    site = [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)]
    env["PYTHONPATH"] = os.pathsep.join(site)
    return env


def test_zip_contents(tmp_path):
    names = zipfile.ZipFile(build_zip(tmp_path)).namelist()
    assert "rssgl_qgis/__init__.py" in names
    assert "rssgl_qgis/metadata.txt" in names
    assert "rssgl_qgis/resources/icon.svg" in names
    assert all(name.startswith("rssgl_qgis/") for name in names)
    forbidden = ("__pycache__", ".pyc", "/tests/", ".venv", "benchmarks/")
    assert not [n for n in names if any(f in n for f in forbidden)]


@pytest.mark.skipif(not os.path.exists(QGIS_PROCESS), reason="qgis_process is not installed")
def test_qgis_process_lists_provider_from_zip(tmp_path):
    home = tmp_path / "home"
    plugins = home / ".local/share/QGIS/QGIS3/profiles/default/python/plugins"
    plugins.mkdir(parents=True)
    zipfile.ZipFile(build_zip(tmp_path)).extractall(plugins)
    env = qgis_process_env(home)
    enabled = subprocess.run([QGIS_PROCESS, "plugins", "enable", "rssgl_qgis"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert enabled.returncode == 0, enabled.stderr
    listed = subprocess.run([QGIS_PROCESS, "list"], env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "RSSGL" in listed.stdout.splitlines()
    # once the algorithms exist they are listed by id
    for algorithm_id in ("rssgl:train", "rssgl:classify", "rssgl:accuracy"):
        module = algorithm_id.split(":")[1]
        if os.path.exists(os.path.join(REPO_ROOT, "rssgl_qgis", "processing", f"{module}.py")):
            assert algorithm_id in listed.stdout
