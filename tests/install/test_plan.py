"""The torch build the installer plans for each platform, and the pip command it runs (no QGIS, no network)."""

from __future__ import annotations

import pytest

from rssgl_qgis.install.plan import (
    Machine,
    command_line,
    constraints_text,
    dry_run_arguments,
    pip_arguments,
    plan_torch,
)

WIN = dict(system="Windows", machine="AMD64", python=(3, 12))
LINUX = dict(system="Linux", machine="x86_64", python=(3, 11))
MAC_ARM = dict(system="Darwin", machine="arm64", python=(3, 12), macos=(15, 0))
MAC_INTEL = dict(system="Darwin", machine="x86_64", python=(3, 12), macos=(13, 0))


@pytest.mark.parametrize(
    "machine, build, index, requirement",
    [
        (Machine(**WIN), "cpu", None, "torch>=2.2"),  # PyPI's Windows wheel is the CPU build
        (Machine(**WIN, cuda=(12, 6)), "cu126", "https://download.pytorch.org/whl/cu126", "torch>=2.2"),
        (Machine(**WIN, cuda=(12, 9)), "cu128", "https://download.pytorch.org/whl/cu128", "torch>=2.2"),
        (Machine(**WIN, cuda=(13, 2)), "cu130", "https://download.pytorch.org/whl/cu130", "torch>=2.2"),
        (Machine(**WIN, cuda=(11, 8)), "cpu", None, "torch>=2.2"),
        (Machine(**LINUX), "cpu", "https://download.pytorch.org/whl/cpu", "torch>=2.2"),  # PyPI's is CUDA
        (Machine(**LINUX, cuda=(12, 8)), "cu128", "https://download.pytorch.org/whl/cu128", "torch>=2.2"),
        (Machine("Linux", "aarch64", (3, 12)), "cpu", "https://download.pytorch.org/whl/cpu", "torch>=2.2"),
        (Machine(**MAC_ARM), "mps", None, "torch>=2.2"),
        (Machine("Darwin", "arm64", (3, 12), macos=(13, 6)), "mps", None, "torch>=2.2,<2.12"),
        (Machine(**MAC_INTEL, numpy=(1, 26)), "cpu", None, "torch>=2.2,<2.3"),
    ],
)
def test_each_platform_gets_a_build_that_exists_for_it(machine, build, index, requirement):
    plan = plan_torch(machine)
    assert (plan.build, plan.index_url, plan.requirement, plan.blocked) == (build, index, requirement, False)
    assert plan.reason.text()


def test_old_driver_and_blackwell_fall_back_to_the_cpu_build_and_say_update_the_driver():
    old = plan_torch(Machine(**LINUX, cuda=(11, 8)))
    assert old.build == "cpu" and "Update the NVIDIA driver" in old.reason.text() and "11.8" in old.reason.text()
    blackwell = plan_torch(Machine(**LINUX, cuda=(12, 6), compute_capability=(12, 0)))
    assert blackwell.build == "cpu" and "12.8 or newer" in blackwell.reason.text()
    # the same card with a current driver gets cu128, never cu126
    assert plan_torch(Machine(**LINUX, cuda=(12, 8), compute_capability=(12, 0))).build == "cu128"
    # an older card with the same old driver still gets cu126
    assert plan_torch(Machine(**LINUX, cuda=(12, 6), compute_capability=(8, 6))).build == "cu126"


@pytest.mark.parametrize(
    "machine, words",
    [
        (Machine(**MAC_INTEL, rosetta=True), "install the Apple Silicon (arm64) build of QGIS"),
        (Machine("Darwin", "x86_64", (3, 13), macos=(14, 0)), "only for Python 3.8 to 3.12"),
        (Machine(**MAC_INTEL, numpy=(2, 2)), "NumPy 2.2"),
        (Machine("Windows", "ARM64", (3, 12)), "no build for arm64 on Windows"),
        (Machine("FreeBSD", "amd64", (3, 11)), "no build for amd64 on FreeBSD"),
    ],
)
def test_impossible_targets_are_blocked_with_a_reason(machine, words):
    plan = plan_torch(machine)
    assert plan.blocked and plan.build == "none"
    assert words in plan.reason.text()


def test_pip_command_installs_into_the_plugin_folder_with_pins_and_never_the_site_packages():
    plan = plan_torch(Machine(**WIN, cuda=(12, 8)))
    args = pip_arguments(plan, r"C:\Users\me\AppData\QGIS\python\rssgl_deps", r"C:\pins.txt")
    assert args[:3] == ["-m", "pip", "install"]
    assert args[args.index("--target") + 1].endswith("rssgl_deps")
    assert args[args.index("--constraint") + 1] == r"C:\pins.txt"
    assert "--only-binary=:all:" in args and "--user" not in args
    assert args[args.index("--index-url") + 1] == "https://download.pytorch.org/whl/cu128"
    assert args[-1] == "torch>=2.2"
    offline = pip_arguments(plan, "/deps", None, find_links="/media/usb/wheels")
    assert "--no-index" in offline and offline[offline.index("--find-links") + 1] == "/media/usb/wheels"
    assert "--index-url" not in offline
    line = command_line(r"C:\Program Files\QGIS 3.44\apps\Python312\python.exe", args, windows=True)
    assert line.startswith('"C:\\Program Files\\QGIS 3.44\\apps\\Python312\\python.exe" -m pip install')
    assert '"torch>=2.2"' in line
    assert command_line("/usr/bin/python3", ["-m", "pip", "torch>=2.2"], windows=False).endswith("'torch>=2.2'")


def test_dry_run_adds_the_target_platform_and_python_and_keeps_the_requirement_last():
    machine = Machine(**MAC_ARM)
    args = dry_run_arguments(plan_torch(machine), machine, "/tmp/t", "/tmp/c.txt")
    assert {"--dry-run", "--ignore-installed", "--no-deps"} <= set(args)
    assert args[args.index("--platform") + 1] == "macosx_15_0_arm64"
    assert args[args.index("--python-version") + 1] == "3.12"
    assert args[-1] == "torch>=2.2"


def test_constraints_pin_qgis_packages_and_leave_torch_and_its_helpers_free():
    text = constraints_text({"numpy": "1.24.2", "GDAL": "3.6.2", "sympy": "1.11.1", "typing_extensions": "4.4.0",
                             "torch": "2.13.0+cpu", "broken": "0.0.0-unknown garbage", "PyQt5": "5.15.9",
                             "nvidia-cudnn-cu12": "9.1.0.70", "cuda-bindings": "13.0.3"})
    pins = [line for line in text.splitlines() if not line.startswith("#")]
    assert pins == ["gdal==3.6.2", "numpy==1.24.2", "pyqt5==5.15.9"]
