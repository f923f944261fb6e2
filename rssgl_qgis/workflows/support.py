"""What the workflows (training, accuracy assessment) share: the callables they take from Processing and
the dock (no qgis import). Their outputs follow io.outputs (checked first, written to temporary files,
replaced together at the end), so a failed run has nothing to remove.

- ``progress(percent, message)``, ``should_stop() -> bool`` as the engine takes them;
- ``log(level, message)`` with level "info" or "warning" (pushInfo / pushWarning, the dock's log).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

__all__ = ["ProgressFn", "StopFn", "LogFn", "no_log", "collecting_log"]

logger = logging.getLogger("rssgl_qgis.workflows.train")

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]
LogFn = Callable[[str, str], None]


def no_log(level: str, message: str) -> None:
    """The log of a caller that gave none: Python's logging."""
    getattr(logger, "warning" if level == "warning" else "info")(message)


def collecting_log(log: LogFn | None) -> tuple[LogFn, list[str]]:
    """A log that passes every message to ``log`` (Python's logging without one) and also collects each
    distinct warning, in order, into the returned list: the result and the report list them, not only the log."""
    user_log = log or no_log
    warnings: list[str] = []

    def collect(level: str, message: str) -> None:
        if level == "warning" and message not in warnings:
            warnings.append(message)
        user_log(level, message)

    return collect, warnings
