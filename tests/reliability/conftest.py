"""Fixtures for the reliability tests (no qgis import)."""

from __future__ import annotations

import pytest

from .helpers import use_tiny_network


@pytest.fixture(autouse=True)
def tiny_network(monkeypatch):
    """Build every RssglClassifier with the smallest real architecture (stage widths 16).

    These tests are about what happens around the network (checks, cancellation, files, messages),
    not about its accuracy; the full-width network makes each training iteration ~10x slower on a
    2-core CPU. Explicit overrides (e.g. the kernel chosen by the workflow) still apply on top.
    """
    use_tiny_network(monkeypatch)
