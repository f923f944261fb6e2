"""Engine exceptions shared by every layer of the plugin.

`Cancelled` is not a failure: the caller asked the engine to stop (``should_stop()`` returned True),
so the GUI and Processing layers report "canceled" instead of an error. `RssglError` marks errors the
user can fix (bad inputs, bad model files); it is a ValueError so generic handlers still catch it.
"""

from __future__ import annotations

__all__ = ["Cancelled", "RssglError"]


class Cancelled(Exception):
    """Raised when the caller's ``should_stop()`` callback asked the engine to stop."""


class RssglError(ValueError):
    """An input problem the user can fix; the message says what was expected, found and what to do."""
