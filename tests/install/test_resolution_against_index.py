"""Slow: every row of the installer's target table resolves against the real package index.

Runs benchmarks/torch_resolution.py (pip --dry-run per row: metadata only, nothing installed; about
a minute on this machine). Skipped when PyPI cannot be reached; rows whose index
(download.pytorch.org) cannot be reached are resolved on PyPI and marked as stand-ins in the output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pypi_reachable() -> bool:
    try:
        urllib.request.urlopen(urllib.request.Request("https://pypi.org/simple/torch/", method="HEAD"), timeout=15)
        return True
    except (urllib.error.URLError, OSError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("RSSGL_OFFLINE") == "1", reason="RSSGL_OFFLINE=1: no package index")
@pytest.mark.skipif(
    bool(os.environ.get("RSSGL_QGIS_ROOT")),
    reason="the index is checked once per CI run, by the host's suite (the table does not depend on QGIS)",
)
def test_every_target_row_resolves_a_torch_wheel_or_says_why_not():
    if not _pypi_reachable():
        pytest.skip("pypi.org is not reachable from this machine")
    script = os.path.join(REPO_ROOT, "benchmarks", "torch_resolution.py")
    out = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    from benchmarks.torch_resolution import TARGETS

    table = [line for line in out.stdout.splitlines() if line.startswith("| ") and not line.startswith("| target")]
    assert len(table) == len(TARGETS)
    for line in table:
        assert "`torch-" in line or "| none: " in line, line
    assert "win_amd64.whl" in out.stdout and "macosx_14_0_arm64.whl" in out.stdout
    assert "torch-2.2.2-cp312-none-macosx_10_9_x86_64.whl" in out.stdout  # the last Intel Mac build
