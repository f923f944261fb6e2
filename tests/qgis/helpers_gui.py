"""Helpers the GUI tests share (imported after their ``pytest.importorskip("qgis.gui")``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from qgis.core import QgsApplication


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Spin the event loop until ``condition()`` or the timeout; True when the condition was met."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        QgsApplication.processEvents()
        if condition():
            return True
        time.sleep(0.01)
    return condition()
