"""How far pip has got, from the lines it prints (pip shows no byte counts when its output is a pipe).

The stages are coarse but honest: resolving, downloading (torch is by far the largest file, so its
download start marks most of the wait), installing, done. The dialog's bar moves with them.
"""

from __future__ import annotations

import re

__all__ = ["pip_progress"]

_STAGES: tuple[tuple[str, int], ...] = (
    (r"^Successfully installed", 100),
    (r"^Installing collected packages", 85),
    (r"^\s*(Downloading|Using cached|Processing).*\btorch-", 20),
    (r"^\s*(Downloading|Using cached|Processing)", 10),
    (r"^(Collecting|Looking in indexes|Looking in links)", 5),
)


def pip_progress(line: str, current: int = 0) -> int:
    """Percent after pip printed ``line``: never goes back (a later small download keeps the bar)."""
    for pattern, percent in _STAGES:
        if re.search(pattern, line):
            return max(current, percent)
    return current
