"""Prove the installer's torch choice against the real package index, for every platform it plans for.

For each target (operating system, architecture, QGIS's Python, NVIDIA driver) this prints the command
the installer would run there and the torch wheel pip resolves for it, using

    pip install --dry-run --only-binary=:all: --platform ... --python-version ... --implementation cp
        --target <tmp> --report - ...

which downloads metadata only and installs nothing. The constraints file is built the way the installer
builds it, from the packages of the Python running this script (on the project's machines: Debian 12's
QGIS Python). Rows whose index is download.pytorch.org are resolved against it when it answers; when it
does not, the row is resolved against PyPI instead and marked as a stand-in (same version rules and
platform tags, but PyPI's build flavour: CPU on Windows, CUDA on Linux), so the table says plainly
which index each row was checked on.

Usage: .venv/bin/python benchmarks/torch_resolution.py [--rows N] [--jobs 4]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rssgl_qgis.install.machine import installed_versions  # noqa: E402
from rssgl_qgis.install.plan import (  # noqa: E402
    Machine,
    TorchPlan,
    command_line,
    constraints_text,
    dry_run_arguments,
    pip_arguments,
    plan_torch,
)

#: (label, machine). Python versions: OSGeo4W / the standalone Windows installer ship 3.12 (OSGeo4W moved to it
#: in 2024-04, OSGeo/grass#3603; QGIS 3.34-3.40 reported on the qgis-developer list, 2025-04; assumed for 3.44
#: and 4.x); the macOS installer of 3.44
#: bundles python3.12 (qgis/QGIS#64195); older macOS packages bundled 3.9 (QGIS-Mac-Packager#179);
#: Debian 12 / 13 and Ubuntu 24.04 ship 3.11 / 3.13 / 3.12.
TARGETS: tuple[tuple[str, Machine], ...] = (
    ("Windows, QGIS 3.44/4.x, no GPU", Machine("Windows", "AMD64", (3, 12))),
    ("Windows, QGIS 3.44/4.x, driver CUDA 12.6", Machine("Windows", "AMD64", (3, 12), cuda=(12, 6))),
    ("Windows, QGIS 3.44/4.x, RTX 50 driver CUDA 12.8", Machine("Windows", "AMD64", (3, 12), cuda=(12, 8),
                                                                compute_capability=(12, 0))),
    ("Windows, QGIS 3.44/4.x, driver CUDA 13.0", Machine("Windows", "AMD64", (3, 12), cuda=(13, 0))),
    ("Windows, driver CUDA 11.8 (too old)", Machine("Windows", "AMD64", (3, 12), cuda=(11, 8))),
    ("Windows, Python 3.13 (if OSGeo4W moves on)", Machine("Windows", "AMD64", (3, 13))),
    ("macOS arm64, QGIS 3.44 (macOS 15)", Machine("Darwin", "arm64", (3, 12), macos=(15, 0))),
    ("macOS arm64, QGIS 3.44 (macOS 13)", Machine("Darwin", "arm64", (3, 12), macos=(13, 0))),
    ("macOS arm64, Python 3.9", Machine("Darwin", "arm64", (3, 9), macos=(14, 0))),
    ("macOS x86-64, QGIS 3.44 (NumPy 1.26)", Machine("Darwin", "x86_64", (3, 12), macos=(13, 0), numpy=(1, 26))),
    ("macOS x86-64, QGIS 3.44 (NumPy 2.x)", Machine("Darwin", "x86_64", (3, 12), macos=(13, 0), numpy=(2, 2))),
    ("macOS x86-64, old QGIS package (Python 3.9)", Machine("Darwin", "x86_64", (3, 9), macos=(12, 0), numpy=(1, 23))),
    ("macOS x86-64, Python 3.13", Machine("Darwin", "x86_64", (3, 13), macos=(14, 0))),
    ("macOS x86-64 QGIS under Rosetta", Machine("Darwin", "x86_64", (3, 12), macos=(15, 0), rosetta=True)),
    ("Linux, Python 3.11, no GPU", Machine("Linux", "x86_64", (3, 11))),
    ("Linux, Python 3.12, no GPU", Machine("Linux", "x86_64", (3, 12))),
    ("Linux, Python 3.13, no GPU", Machine("Linux", "x86_64", (3, 13))),
    ("Linux, Python 3.11, driver CUDA 12.6", Machine("Linux", "x86_64", (3, 11), cuda=(12, 6))),
    ("Linux, Python 3.12, driver CUDA 12.8", Machine("Linux", "x86_64", (3, 12), cuda=(12, 8))),
    ("Linux, Python 3.13, driver CUDA 13.0", Machine("Linux", "x86_64", (3, 13), cuda=(13, 0))),
    ("Linux arm64, Python 3.12", Machine("Linux", "aarch64", (3, 12))),
)


@dataclass
class Row:
    label: str
    machine: Machine
    plan: TorchPlan
    checked_on: str = ""
    wheel: str = ""
    error: str = ""
    seconds: float = 0.0


def reachable(url: str, timeout: float = 15.0) -> bool:
    """True when the index answers at all (an HTTP error status still means it is reachable)."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
        return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def pip_environment() -> dict[str, str]:
    """The environment with this machine's pip configuration (local wheel folders, mirrors) switched off,
    so pip asks only the index on the command line; certificate settings stay."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def resolve(row: Row, pip: list[str], constraints: str, reachable_indexes: dict[str, bool], timeout: float) -> None:
    plan = row.plan
    if plan.index_url and not reachable_indexes[plan.index_url]:
        plan = replace(plan, index_url=None)
        row.checked_on = f"PyPI (stand-in: {row.plan.index_name} unreachable from here)"
    else:
        row.checked_on = plan.index_name
    with tempfile.TemporaryDirectory() as target:
        args = dry_run_arguments(plan, row.machine, target, constraints)
        start = time.perf_counter()
        try:
            out = subprocess.run([*pip, *args[2:]], capture_output=True, text=True, timeout=timeout,
                                 env=pip_environment())
        except subprocess.TimeoutExpired:
            row.error = f"timed out after {timeout:.0f} s"
            return
        row.seconds = time.perf_counter() - start
    if out.returncode != 0:
        lines = [ln for ln in (out.stderr or out.stdout).splitlines() if ln.startswith("ERROR")]
        row.error = (lines[-1] if lines else (out.stderr or out.stdout).strip()[-300:]).strip()
        return
    report = json.loads(out.stdout)
    for item in report.get("install", []):
        if item.get("metadata", {}).get("name", "").lower() == "torch":
            row.wheel = item["download_info"]["url"].rsplit("/", 1)[-1].split("#")[0]
            return
    row.error = "the report lists no torch"


def current_pip(cache: str) -> list[str]:
    """A current pip, run from its wheel (downloaded once into ``cache``): pips older than 23 fetch the
    whole torch wheel (GBs) to read its metadata, where current ones read PyPI's metadata files."""
    os.makedirs(cache, exist_ok=True)
    wheels = sorted(name for name in os.listdir(cache) if name.startswith("pip-") and name.endswith(".whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", cache,
                        "pip>=25"], check=True, capture_output=True, env=pip_environment(), timeout=300)
        wheels = sorted(name for name in os.listdir(cache) if name.startswith("pip-") and name.endswith(".whl"))
    return [sys.executable, os.path.join(cache, wheels[-1], "pip")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=0, help="only the first N rows (0: all)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per resolution")
    parser.add_argument("--jobs", type=int, default=4, help="resolutions at once")
    parser.add_argument("--pip-cache", default=os.path.join(os.path.expanduser("~"), ".cache", "rssgl-qgis", "pip"),
                        help="folder holding the pip wheel the resolutions run with")
    args = parser.parse_args(argv)

    targets = TARGETS[: args.rows] if args.rows else TARGETS
    pip = current_pip(args.pip_cache)
    pip_version = subprocess.run([*pip, "--version"], capture_output=True, text=True).stdout
    print(f"# torch resolution, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
          f"{pip_version.split(' from ')[0]}, Python {sys.version.split()[0]}")
    reachable_indexes: dict[str, bool] = {}
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        constraints = os.path.join(tmp, "constraints.txt")
        with open(constraints, "w", encoding="utf-8") as handle:
            handle.write(constraints_text(installed_versions()))
        rows = [Row(label, machine, plan_torch(machine)) for label, machine in targets]
        for url in sorted({row.plan.index_url for row in rows if row.plan.index_url}):
            reachable_indexes[url] = reachable(url + "/torch/")
        # pip waits on the network most of the time: a few resolutions at once
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(lambda row: row.plan.blocked or resolve(row, pip, constraints, reachable_indexes,
                                                                  args.timeout), rows))
        for row in rows:
            verdict = "blocked (says why)" if row.plan.blocked else (row.wheel or "FAILED: " + row.error)
            print(f"  {row.label}: {verdict} ({row.seconds:.1f} s)", file=sys.stderr, flush=True)
            failures += bool(not row.plan.blocked and not row.wheel)

    print("\n| target | build | index | resolved on | torch wheel pip picks |")
    print("|---|---|---|---|---|")
    for row in rows:
        if row.plan.blocked:
            result, checked = "none: " + row.plan.reason.text(), "-"
        else:
            result, checked = (f"`{row.wheel}`" if row.wheel else "FAILED: " + row.error), row.checked_on
        print(f"| {row.label} | {row.plan.build} | {row.plan.index_name} | {checked} | {result} |")
    print("\nCommands the installer would run (python = QGIS's Python, <deps> = the plugin's folder):\n")
    for row in rows:
        if not row.plan.blocked:
            line = command_line("python", pip_arguments(row.plan, "<deps>", "<deps>-constraints.txt"),
                                windows=row.machine.system == "Windows")
            print(f"- {row.label}: `{line}`")
    print(f"\n{len(rows) - failures} of {len(rows)} rows resolved or blocked with a reason; {failures} failed.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
