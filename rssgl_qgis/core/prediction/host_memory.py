"""Keep freed host memory for reuse while torch computes on the CPU (glibc's allocator only).

Why: glibc hands allocations above its mmap threshold (128 KiB at first, rising up to 32 MiB as such
blocks are freed) straight to the kernel and returns them on free, and gives the heap's free top back
beyond a trim threshold; so many tensors of a CPU forward pass are fresh memory that the kernel must
fault in and zero page by page. RSSGL's ConvLSTM allocates gate maps step after step: in a worker
thread (where QGIS runs a QgsTask) the lean ConvLSTM of the layer-wise path took 26-28 us per pixel of
a tile, 17-21 us with freed memory reused (the plain forward 34 and 19-23; in the main thread, whose
heap glibc grows more readily, 10-15 either way: ``benchmarks/cpu_allocator.py``, docs/PERFORMANCE.md).
Inside ``reuse_freed_memory()`` blocks up to 32 MiB (the most glibc allows; larger ones always come
from mmap, and a worker thread's heap cannot hold them either, so the layer-wise ConvLSTM tiles keep
their step maps below it) come from the heap and freed ones stay there for the next tensor. On leaving,
glibc's initial settings are restored and the heap is trimmed, so QGIS gets the memory back.
Elsewhere (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
import threading
from collections.abc import Iterator

__all__ = ["reuse_freed_memory", "HEAP_BLOCK_LIMIT"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: The largest mmap threshold glibc accepts on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX).
HEAP_BLOCK_LIMIT = 32 << 20
#: glibc's initial values, restored on leaving (M_MMAP_THRESHOLD and M_TRIM_THRESHOLD 128 KiB).
_DEFAULT_MMAP = 128 * 1024
_DEFAULT_TRIM = 128 * 1024
_KEEP = 2**31 - 1  # the largest trim threshold mallopt takes (a C int)

_lock = threading.Lock()
_depth = 0
_libc: ctypes.CDLL | None | bool = False  # False: not looked up yet


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is False:
        _libc = None
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL("libc.so.6")
                if not hasattr(libc, "gnu_get_libc_version"):  # glibc only (musl has no such function)
                    raise AttributeError("not glibc")
                libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                libc.malloc_trim.argtypes = [ctypes.c_size_t]
                _libc = libc
            except (OSError, AttributeError):
                _libc = None
    return _libc


@contextlib.contextmanager
def reuse_freed_memory() -> Iterator[bool]:
    """Within the block, serve allocations up to HEAP_BLOCK_LIMIT from the heap and keep freed memory
    (yields whether it could: glibc only). Nested and concurrent uses share one setting; the last to leave restores it."""
    global _depth
    libc = _glibc()
    if libc is None:
        yield False
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            libc.mallopt(_M_MMAP_THRESHOLD, HEAP_BLOCK_LIMIT)
            libc.mallopt(_M_TRIM_THRESHOLD, _KEEP)
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_MMAP)
                libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM)
                libc.malloc_trim(0)
