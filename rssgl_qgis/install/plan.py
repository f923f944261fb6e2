"""Which PyTorch build a QGIS installation can take, and the pip command that installs it.

A machine is described by what QGIS's Python runs on (operating system, CPU architecture, Python
version, Rosetta, macOS version, NumPy) and what the NVIDIA driver supports (the CUDA version that
``nvidia-smi`` prints, the GPU's compute capability). From that alone, without network or QGIS, the
planner picks the wheel index and the version range of torch, or says why nothing can be installed.

The rules come from what PyTorch publishes (checked on PyPI on 2026-12-07, docs/INSTALL.md):

- Windows x86-64: PyPI's torch is the CPU build; CUDA builds come from download.pytorch.org/whl/cuXXX.
- Linux: PyPI's x86-64 torch is a CUDA build with several GB of nvidia-* wheels, so the CPU build comes
  from download.pytorch.org/whl/cpu and the CUDA build from the index matched to the driver.
- macOS arm64: PyPI (the build includes the Apple GPU backend, MPS); torch 2.12 and newer need
  macOS 14, 2.11 was the last for macOS 11-13.
- macOS x86-64: the last Intel build is torch 2.2.2 (Python 3.8-3.12, built against NumPy 1.x).
- A driver runs every CUDA toolkit up to the version it reports; a Blackwell GPU (compute capability
  10.x or 12.x) needs CUDA 12.8 or newer.

The command never touches QGIS's site-packages: ``--target`` is a folder the plugin owns, and a
constraints file pins the packages QGIS's Python already has (NumPy above all) to their installed
versions, so pip can never replace them.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .text import QT_TRANSLATE_NOOP, Message

__all__ = [
    "CUDA_BUILDS",
    "MIN_TORCH",
    "PYTORCH_INDEX",
    "TORCH_HELPERS",
    "Machine",
    "TorchPlan",
    "constraints_text",
    "dry_run_arguments",
    "pip_arguments",
    "plan_torch",
    "command_line",
]

#: Oldest torch the engine runs with (torch_loader.MIN_TORCH_VERSION says why).
MIN_TORCH = "2.2"
PYTORCH_INDEX = "https://download.pytorch.org/whl/"
#: (oldest driver CUDA version, build): newest first. A driver runs every toolkit up to its version.
CUDA_BUILDS: tuple[tuple[tuple[int, int], str], ...] = (((13, 0), "cu130"), ((12, 8), "cu128"), ((12, 6), "cu126"))
#: Pure-Python packages torch requires in versions newer than an old QGIS Python may have: they go
#: into the plugin folder with torch instead of being pinned (a pin would make the install impossible).
TORCH_HELPERS = frozenset({
    "torch", "triton", "sympy", "mpmath", "networkx", "filelock", "fsspec", "jinja2", "markupsafe",
    "typing-extensions", "setuptools", "pip", "wheel",
})

_ARCH = {"amd64": "x86_64", "x86_64": "x86_64", "x64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}


@dataclass(frozen=True)
class Machine:
    """What decides the torch build: QGIS's Python and the NVIDIA driver, never the user's wishes."""

    system: str  # platform.system(): "Windows", "Darwin", "Linux"
    machine: str  # platform.machine() of QGIS's Python: "AMD64", "x86_64", "arm64", "aarch64"
    python: tuple[int, int]
    cuda: tuple[int, int] | None = None  # the driver's CUDA version (nvidia-smi); None: no NVIDIA driver
    compute_capability: tuple[int, int] | None = None  # of the first NVIDIA GPU, when nvidia-smi says it
    rosetta: bool = False  # an x86-64 QGIS translated by Rosetta on an Apple Silicon Mac
    macos: tuple[int, int] | None = None  # macOS version (platform.mac_ver())
    numpy: tuple[int, int] | None = None  # NumPy of QGIS's Python

    @property
    def arch(self) -> str:
        """x86_64 or arm64 (or the raw name of anything else)."""
        return _ARCH.get(self.machine.lower(), self.machine.lower())

    def describe(self) -> str:
        """'Windows x86_64, Python 3.12, NVIDIA driver CUDA 12.8' (for logs and tables)."""
        parts = [f"{self.system} {self.arch}", "Python {}.{}".format(*self.python)]
        if self.macos:
            parts.append("macOS {}.{}".format(*self.macos))
        if self.rosetta:
            parts.append("Rosetta")
        parts.append("NVIDIA driver CUDA {}.{}".format(*self.cuda) if self.cuda else "no NVIDIA driver")
        return ", ".join(parts)


@dataclass(frozen=True)
class TorchPlan:
    """The torch build for one machine: where pip looks, what it may take, and the sentence that says why.

    ``blocked`` plans install nothing: their reason tells the user what to do instead.
    """

    build: str  # "cpu", "cu126", "cu128", "cu130", "mps" (macOS arm64), "none" (blocked)
    index_url: str | None  # None: pip's configured index (PyPI unless the user set a mirror)
    requirement: str  # pip requirement, e.g. "torch>=2.2" or "torch>=2.2,<2.3"
    reason: Message
    platforms: tuple[str, ...] = ()  # wheel platform tags, for the dry run on another machine
    blocked: bool = False
    notes: tuple[Message, ...] = field(default_factory=tuple)

    @property
    def index_name(self) -> str:
        """'PyPI' or the PyTorch index's last part ('cpu', 'cu128') for tables."""
        return "PyPI" if self.index_url is None else "download.pytorch.org/whl/" + self.index_url.rstrip("/").rsplit("/", 1)[-1]


# ------------------------------------------------------------------------------------------------ sentences
_NO_GPU = QT_TRANSLATE_NOOP("TorchInstaller", "No NVIDIA GPU found: installing the CPU build.")
_CUDA = QT_TRANSLATE_NOOP("TorchInstaller", "NVIDIA driver with CUDA {0}.{1} found: installing the CUDA build.")
_OLD_DRIVER = QT_TRANSLATE_NOOP("TorchInstaller", "NVIDIA driver found, but its CUDA {0}.{1} is older than the CUDA builds of PyTorch need (12.6); installing the CPU build. Update the NVIDIA driver to train on the GPU.")  # fmt: skip
_BLACKWELL_OLD_DRIVER = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "This NVIDIA GPU (compute capability {0}.{1}) needs a driver with CUDA 12.8 or newer, but the driver "
    "reports CUDA {2}.{3}; installing the CPU build. Update the NVIDIA driver to train on the GPU."
)
_ARM_LINUX = QT_TRANSLATE_NOOP("TorchInstaller", "Linux on ARM: installing the CPU build.")
_APPLE_SILICON = QT_TRANSLATE_NOOP(
    "TorchInstaller", "Apple Silicon Mac: installing the standard build, which can train on the Apple GPU (MPS)."
)
_OLD_MACOS = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "macOS {0}.{1}: PyTorch 2.12 and newer need macOS 14, so the last PyTorch for your macOS (2.11) is "
    "installed. Update macOS to get current versions."
)
_INTEL_MAC = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "Intel Mac: PyTorch stopped publishing builds for Intel Macs after version 2.2; installing PyTorch 2.2, "
    "which trains on the CPU."
)
_INTEL_MAC_PYTHON = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "Intel Mac with Python {0}.{1}: the last PyTorch for Intel Macs (2.2) exists only for Python 3.8 to 3.12, "
    "so it cannot be installed into this QGIS. Train on a Windows or Linux computer, or use a QGIS whose "
    "Python is 3.12 or older."
)
_INTEL_MAC_NUMPY = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "Intel Mac: the last PyTorch for Intel Macs (2.2) was built for NumPy 1.x and cannot exchange data with "
    "the NumPy {0}.{1} of this QGIS. Train on a Windows or Linux computer, or on an Apple Silicon Mac."
)
ROSETTA = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "This QGIS is the Intel (x86-64) build running under Rosetta on an Apple Silicon Mac. PyTorch has no "
    "current build for it and cannot use the Apple GPU from it: install the Apple Silicon (arm64) build of "
    "QGIS from qgis.org, then install PyTorch again."
)
_UNSUPPORTED = QT_TRANSLATE_NOOP(
    "TorchInstaller",
    "PyTorch publishes no build for {0} on {1}. Train on a Windows, Linux or macOS computer with an x86-64 "
    "or ARM processor."
)


def _platform_tags(machine: Machine) -> tuple[str, ...]:
    arch = machine.arch
    if machine.system == "Windows":
        return ("win_amd64",) if arch == "x86_64" else ("win_arm64",)
    if machine.system == "Darwin":
        major = machine.macos[0] if machine.macos else 14
        # pip expands a macOS tag to every older release itself.
        return (f"macosx_{major}_0_{arch}",)
    linux_arch = "aarch64" if arch == "arm64" else arch
    return tuple(f"{tag}_{linux_arch}" for tag in ("manylinux_2_28", "manylinux_2_17", "manylinux2014"))


def _cuda_plan(machine: Machine, requirement: str, tags: tuple[str, ...]) -> TorchPlan | None:
    """The CUDA build for the driver, the CPU plan when the driver is too old, None without a driver."""
    if machine.cuda is None:
        return None
    cc = machine.compute_capability
    if cc is not None and cc[0] >= 10 and machine.cuda < (12, 8):
        return TorchPlan("cpu", _cpu_index(machine), requirement, Message(_BLACKWELL_OLD_DRIVER, (*cc, *machine.cuda)), tags)
    for minimum, build in CUDA_BUILDS:
        if machine.cuda >= minimum:
            return TorchPlan(build, PYTORCH_INDEX + build, requirement, Message(_CUDA, machine.cuda), tags)
    return TorchPlan("cpu", _cpu_index(machine), requirement, Message(_OLD_DRIVER, machine.cuda), tags)


def _cpu_index(machine: Machine) -> str | None:
    # PyPI's Windows wheels are the CPU build; PyPI's Linux wheels carry CUDA (GBs of nvidia-* wheels).
    return None if machine.system == "Windows" else PYTORCH_INDEX + "cpu"


def plan_torch(machine: Machine) -> TorchPlan:
    """The torch build for ``machine`` (see the module docstring for the rules and their sources)."""
    requirement = f"torch>={MIN_TORCH}"
    tags = _platform_tags(machine)
    arch = machine.arch
    if machine.system == "Darwin":
        if machine.rosetta:
            return TorchPlan("none", None, requirement, Message(ROSETTA), tags, blocked=True)
        if arch == "arm64":
            if machine.macos is not None and machine.macos < (14, 0):
                return TorchPlan("mps", None, f"{requirement},<2.12", Message(_OLD_MACOS, machine.macos), tags)
            return TorchPlan("mps", None, requirement, Message(_APPLE_SILICON), tags)
        if arch == "x86_64":
            if machine.python > (3, 12):
                return TorchPlan("none", None, requirement, Message(_INTEL_MAC_PYTHON, machine.python), tags, True)
            if machine.numpy is not None and machine.numpy >= (2, 0):
                return TorchPlan("none", None, requirement, Message(_INTEL_MAC_NUMPY, machine.numpy), tags, True)
            return TorchPlan("cpu", None, f"{requirement},<2.3", Message(_INTEL_MAC), tags)
    elif machine.system in ("Windows", "Linux") and arch in ("x86_64", "arm64"):
        if machine.system == "Windows" and arch != "x86_64":
            return TorchPlan("none", None, requirement, Message(_UNSUPPORTED, (f"{arch}", machine.system)), tags, True)
        if arch == "arm64":
            return TorchPlan("cpu", PYTORCH_INDEX + "cpu", requirement, Message(_ARM_LINUX), tags)
        cuda = _cuda_plan(machine, requirement, tags)
        if cuda is not None:
            return cuda
        return TorchPlan("cpu", _cpu_index(machine), requirement, Message(_NO_GPU), tags)
    return TorchPlan("none", None, requirement, Message(_UNSUPPORTED, (machine.machine, machine.system)), tags, True)


# ------------------------------------------------------------------------------------------------ pip command
_VERSION = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[A-Za-z0-9.]+)?$")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints_text(installed: Mapping[str, str], keep_free: Iterable[str] = TORCH_HELPERS) -> str:
    """A pip constraints file pinning every installed package (QGIS's NumPy first of all) at its version.

    ``installed`` maps distribution names to versions (importlib.metadata of QGIS's Python). torch, the
    pure-Python helpers it needs newer than old QGIS Pythons have, and the nvidia-* / cuda-* runtime
    wheels of CUDA builds stay free (they land in the plugin folder); versions pip cannot parse are left
    out, since one bad line makes pip refuse the whole file.
    """
    free = {_normalise(n) for n in keep_free}
    lines = ["# Written by the RSSGL plugin: the packages QGIS's Python already has, at their versions,",
             "# so that installing PyTorch never replaces them (NumPy above all)."]
    pins = {}
    for name, version in installed.items():
        key = _normalise(name)
        if key in free or key.startswith(("nvidia-", "cuda-")) or not version or not _VERSION.match(version):
            continue
        pins[key] = version
    lines += [f"{name}=={version}" for name, version in sorted(pins.items())]
    return "\n".join(lines) + "\n"


def pip_arguments(plan: TorchPlan, target: str, constraints: str | None = None,
                  find_links: str | None = None) -> list[str]:
    """pip's arguments after the interpreter: ``-m pip install ... --target <target> torch...``.

    ``find_links``: a folder of wheels downloaded elsewhere (offline install: ``--no-index``).
    """
    args = ["-m", "pip", "install", "--upgrade", "--no-warn-script-location", "--disable-pip-version-check",
            "--only-binary=:all:", "--target", target]
    if constraints:
        args += ["--constraint", constraints]
    if find_links:
        args += ["--no-index", "--find-links", find_links]
    elif plan.index_url:
        args += ["--index-url", plan.index_url]
    return [*args, plan.requirement]


def dry_run_arguments(plan: TorchPlan, machine: Machine, target: str, constraints: str | None = None,
                      no_deps: bool = True) -> list[str]:
    """The same command as a resolution for ``machine`` that installs nothing (pip's JSON report on stdout).

    ``no_deps`` by default: pip evaluates dependency markers (``platform_system == "Linux"``) for the
    machine it runs on, not for ``--platform``, so another platform's dependencies cannot be resolved
    faithfully; the torch wheel itself is chosen by the platform tags and the Python version.
    """
    args = pip_arguments(plan, target, constraints)
    extra = ["--dry-run", "--ignore-installed", "--report", "-", "--quiet", "--implementation", "cp",
             "--python-version", "{}.{}".format(*machine.python), *(["--no-deps"] if no_deps else [])]
    for tag in plan.platforms:
        extra += ["--platform", tag]
    return [*args[:-1], *extra, args[-1]]


def command_line(python: str, arguments: list[str], windows: bool | None = None) -> str:
    """One copyable terminal line (cmd.exe quoting on Windows, POSIX shell quoting elsewhere)."""
    windows = os.name == "nt" if windows is None else windows
    parts = [python, *arguments]
    if windows:
        return " ".join(f'"{p}"' if (" " in p or not p or any(c in p for c in "<>|&^")) else p for p in parts)
    return " ".join(shlex.quote(p) for p in parts)
