"""Permission bits for a file that replaces another one (no qgis, no GDAL).

Outputs are written to temporary files and renamed onto their names. ``tempfile.mkstemp`` creates
files 0600, so a model written that way was private even where the user's umask (or the file it
replaced) said 0644, and a colleague could no longer read a model that used to be shared. The rule:
a file that replaces another keeps that file's permission bits; a new file gets what ``open()``
would give it (0666 less the umask). The model file (core) and every other output (io.atomic)
use this one rule.
"""

from __future__ import annotations

import os
import stat
import threading

__all__ = ["apply_mode_for", "mode_for", "umask"]

_umask_lock = threading.Lock()


def umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:  # elsewhere: set and restore it at once (os.umask has no read-only form)
        current = os.umask(0o022)
        os.umask(current)
    return current


def mode_for(target: str | os.PathLike) -> int:
    """The permission bits a file written at ``target`` should get: those of the file it replaces, else
    0666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~umask()


def apply_mode_for(path: str | os.PathLike, target: str | os.PathLike) -> None:
    """Give the finished temporary file ``path`` the permissions :func:`mode_for` ``target`` says.

    File systems without POSIX permissions (FAT, some shares) refuse chmod: the file keeps what it has.
    """
    if os.name != "posix":
        return
    try:
        os.chmod(path, mode_for(target))
    except OSError:
        pass
