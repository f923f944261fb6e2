"""Keeping the device busy during a tiled prediction: reading ahead, page-locked buffers, async copies.

* ``BatchReader`` reads the windows of a batch of tiles straight into one batch buffer (on CUDA a
  page-locked one from a ``PinnedPool``, read as horizontal strips by several threads) and moves it
  to the device in the raster's own dtype;
* a ``Prefetcher`` thread reads the next batches (``read_window`` releases the GIL in GDAL) while the
  current one runs, through a bounded queue, so host memory stays bounded (``SyncReader``: no
  overlap, the baseline of the benchmarks);
* on CUDA the results come back through ``to_host_async`` copies that a ``Pending`` batch waits for
  only when the next batch is already queued on the GPU.

None of this changes a single predicted value; it is kept apart from the engine (core/prediction/inference.py),
which decides what is computed, because it is all about when bytes move.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .tiling import Tile, Window

__all__ = ["READ_THREADS", "BatchReader", "Prefetcher", "SyncReader", "PinnedBatch", "PinnedPool", "Pending",
           "to_host_async"]

log = logging.getLogger(__name__)

#: Threads reading the strips of a batch's windows at once on CUDA (``read_window`` must be thread-safe).
READ_THREADS = 4

_DONE = object()


class Prefetcher:
    """Reads batches of tiles in a background thread into a bounded queue (overlaps I/O with compute).

    Exceptions raised by the reader are handed to the consumer and re-raised there; ``close()``
    stops the thread promptly (it never blocks forever on a full queue).
    """

    def __init__(self, batches: list[list[Tile]], read: Callable[[list[Tile]], Any], depth: int):
        self._batches = batches
        self._read = read
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self.read_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="rssgl-tile-reader", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for batch in self._batches:
                if self._stop.is_set():
                    return
                t0 = time.perf_counter()
                item = (batch, self._read(batch))
                self.read_seconds += time.perf_counter() - t0
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            self._put(exc)

    def __iter__(self) -> Iterator[tuple[list[Tile], Any]]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock a reader waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=30)


class SyncReader:
    """Reads each batch in the calling thread (``prefetch=0``): the naive baseline of the benchmarks."""

    def __init__(self, batches: list[list[Tile]], read: Callable[[list[Tile]], Any]):
        self._batches, self._read = batches, read
        self.read_seconds = 0.0

    def __iter__(self) -> Iterator[tuple[list[Tile], Any]]:
        for batch in self._batches:
            t0 = time.perf_counter()
            item = self._read(batch)
            self.read_seconds += time.perf_counter() - t0
            yield batch, item

    def close(self) -> None:
        pass


class PinnedBatch:
    """A raw batch or mask (N, ...) in page-locked host memory from a ``PinnedPool``.

    ``recycle``: this is the whole pool buffer (a slice is never handed back on its own).
    """

    __slots__ = ("array", "recycle")

    def __init__(self, array: np.ndarray, recycle: bool = True):
        self.array = array
        self.recycle = recycle

    def __getitem__(self, index: Any) -> PinnedBatch:
        return PinnedBatch(self.array[index], False)


class PinnedPool:
    """Page-locked host buffers (numpy arrays registered with CUDA), reused batch after batch.

    Copies from page-locked memory to the GPU run asynchronously; pageable memory would be staged
    by the main thread. torch's own page-locked allocator rounds blocks up to a power of two (up to
    twice a batch's host memory); these buffers have the exact size. Thread-safe: the reader thread
    takes, the main thread gives back once the batch's copy to the GPU has certainly run.
    """

    #: dtypes the device copy handles from a buffer (uint16 travels as int16 bits, see BatchReader.to_device)
    DTYPES = frozenset(np.dtype(t) for t in (np.bool_, np.uint8, np.int8, np.int16, np.uint16, np.int32,
                                             np.int64, np.float16, np.float32, np.float64))

    def __init__(self, device: torch.device):
        self.device = device
        self.enabled = True
        self._lock = threading.Lock()
        self._free: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
        self._registered: list[np.ndarray] = []

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
        """A page-locked (shape, dtype) array (contents undefined), or None: use pageable memory."""
        dtype = np.dtype(dtype)
        if dtype not in self.DTYPES:
            return None
        with self._lock:
            free = self._free.get((tuple(shape), dtype.str))
            if free:
                return free.pop()
            if not self.enabled:
                return None
        array = np.empty(shape, dtype=dtype)
        try:
            with torch.cuda.device(self.device):
                # flag 1 = cudaHostRegisterPortable: page-locked for every CUDA context
                err = int(torch.cuda.cudart().cudaHostRegister(array.ctypes.data, max(1, array.nbytes), 1))
        except Exception as exc:  # noqa: BLE001 - an optimisation: fall back to pageable memory
            err, why = -1, str(exc)
        else:
            why = f"cudaError {err}"
        if err != 0:
            log.info("Page-locked host memory unavailable (%s); copying through pageable memory.", why)
            self.enabled = False
            return None
        with self._lock:
            self._registered.append(array)
        return array

    def give(self, array: np.ndarray) -> None:
        with self._lock:
            free = self._free.setdefault((array.shape, array.dtype.str), [])
            if not any(a is array for a in free):
                free.append(array)

    def close(self) -> None:
        """Unregister every buffer (after the device has finished any copy that reads one)."""
        with self._lock:
            arrays, self._registered, self._free = self._registered, [], {}
        if not arrays:
            return
        torch.cuda.synchronize(self.device)
        for array in arrays:
            try:
                torch.cuda.cudart().cudaHostUnregister(array.ctypes.data)
            except Exception:  # noqa: BLE001 - the memory is freed with the array anyway
                pass


@dataclass
class Pending:
    """One forward pass whose results may still be on their way to the host (CUDA: until ``event``)."""

    tiles: list[Tile]
    labels: Tensor
    confidence: Tensor
    valid: Tensor
    probabilities: Tensor | None
    event: Any = None  # torch.cuda.Event recorded after the device-to-host copies
    release: list[Any] = field(default_factory=list)  # page-locked input buffers to recycle once done


class BatchReader:
    """Reads the windows of a batch of tiles into one buffer and moves it to the device.

    On CUDA (``pin``) the buffers are page-locked, from ``pool``, so the copy to the GPU is
    asynchronous, and ``read_pool`` (set by ``predict_tiled``) reads ``read_threads`` strips at once.
    """

    def __init__(self, read_window: Callable[[Window], np.ndarray],
                 valid_fn: Callable[[Window, np.ndarray], np.ndarray] | None,
                 height: int, width: int, bands: int, device: torch.device):
        self.read_window = read_window
        self.valid_fn = valid_fn
        self.height, self.width = height, width
        self.bands = bands
        self.device = device
        self.pin = device.type == "cuda" and torch.cuda.is_available()
        self.pool = PinnedPool(device) if self.pin else None
        self.raw_dtype: np.dtype | None = None
        self.read_threads = READ_THREADS
        self.read_pool: ThreadPoolExecutor | None = None  # set by predict_tiled on CUDA

    def read(self, tiles: list[Tile]) -> tuple[np.ndarray | PinnedBatch, np.ndarray | PinnedBatch | None]:
        """Raw data (N, B, h, w) in the raster's dtype and a valid mask (N, h, w) or None.

        Only the part of a read window inside the raster is read; the rest (the bottom/right zero
        padding) is filled with zeros and marked invalid, so it becomes 0 after normalisation.
        The windows are copied straight into one batch buffer; on CUDA that buffer is page-locked
        (a ``PinnedBatch`` from the reader's pool), so the transfer to the GPU is asynchronous, and
        the windows are read as horizontal strips by ``read_threads`` threads at once (one thread
        reading 200-band windows is slower than the GPU classifies them).
        """
        n = len(tiles)
        rh, rw = tiles[0].read.height, tiles[0].read.width
        need_mask = self.valid_fn is not None or any(
            t.read.row + t.read.height > self.height or t.read.col + t.read.width > self.width for t in tiles
        )
        jobs: list[tuple[int, Window]] = []
        insides = []
        for i, t in enumerate(tiles):
            if (t.read.height, t.read.width) != (rh, rw):
                raise RuntimeError("Tiles of one batch must share the read shape; please report this bug.")
            inside = Window(
                t.read.row,
                t.read.col,
                min(t.read.height, self.height - t.read.row),
                min(t.read.width, self.width - t.read.col),
            )
            insides.append(inside)
            strips = 1
            if self.read_pool is not None:
                strips = max(1, min(-(-self.read_threads // n), inside.height // 64))
            bounds = np.linspace(0, inside.height, strips + 1).round().astype(int)
            for r0, r1 in zip(bounds[:-1], bounds[1:], strict=True):
                jobs.append((i, Window(inside.row + int(r0), inside.col, int(r1 - r0), inside.width)))

        def fetch(window: Window) -> np.ndarray:
            raw = np.asarray(self.read_window(window))
            if raw.ndim == 2:
                raw = raw[None]
            if raw.shape != (self.bands, window.height, window.width):
                raise ValueError(
                    f"read_window returned shape {raw.shape} for window {tuple(window)}; expected "
                    f"({self.bands}, {window.height}, {window.width})."
                )
            return raw

        first = None
        if self.raw_dtype is None:  # the first block tells the raster's dtype
            first = fetch(jobs[0][1])
            self.raw_dtype = first.dtype
        batch, out = self._buffer((n, self.bands, rh, rw), self.raw_dtype)
        mask_batch, masks = self._buffer((n, rh, rw), np.dtype(bool)) if need_mask else (None, None)
        if masks is not None:
            masks[...] = True
        for i, (t, inside) in enumerate(zip(tiles, insides, strict=True)):
            if inside != t.read:
                out[i] = 0
                masks[i, inside.height :, :] = False
                masks[i, :, inside.width :] = False

        def place(i: int, window: Window, raw: np.ndarray) -> None:
            if raw.dtype != out.dtype and not np.can_cast(raw.dtype, out.dtype, "safe"):
                raise ValueError(
                    f"read_window returned {raw.dtype} data after {out.dtype} blocks; a raster has one data type."
                )
            r0, c0 = window.row - tiles[i].read.row, window.col - tiles[i].read.col
            out[i, :, r0 : r0 + window.height, c0 : c0 + window.width] = raw
            if self.valid_fn is not None:
                masks[i, r0 : r0 + window.height, c0 : c0 + window.width] = np.asarray(
                    self.valid_fn(window, raw), dtype=bool
                )

        rest = jobs
        if first is not None:
            place(*jobs[0], first)
            rest = jobs[1:]
        if self.read_pool is not None and len(rest) > 1:
            futures = [self.read_pool.submit(lambda j: place(j[0], j[1], fetch(j[1])), job) for job in rest]
            for future in futures:
                future.result()  # re-raises a reader's error here
        else:
            for i, window in rest:
                place(i, window, fetch(window))
        return batch, mask_batch

    def _buffer(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray | PinnedBatch, np.ndarray]:
        """(batch, writable array): page-locked from the pool on CUDA when possible, else plain numpy."""
        array = self.pool.take(shape, dtype) if self.pool is not None else None
        if array is not None:
            return PinnedBatch(array), array
        array = np.empty(shape, dtype=dtype)
        return array, array

    def to_device(
        self, raw: np.ndarray | PinnedBatch, mask: np.ndarray | PinnedBatch | None
    ) -> tuple[Tensor, Tensor | None]:
        """Move the raw batch to the device in its own dtype (half the bytes of float32 for int16).

        Page-locked batches are copied asynchronously: the caller keeps them (``Pending.release``)
        until an event recorded later on the stream has completed.
        """
        return self._tensor(raw), None if mask is None else self._tensor(mask)

    def _tensor(self, a: np.ndarray | PinnedBatch) -> Tensor:
        dev = self.device
        non_blocking = isinstance(a, PinnedBatch)
        arr = a.array if non_blocking else np.ascontiguousarray(a)
        if arr.dtype == np.uint16:  # torch lacks uint16 arithmetic on older versions: reinterpret, widen there
            return torch.from_numpy(arr.view(np.int16)).to(dev, non_blocking=non_blocking).to(torch.int32) & 0xFFFF
        if arr.dtype == np.uint32:
            return torch.from_numpy(arr.astype(np.int64)).to(dev)
        return torch.from_numpy(arr).to(dev, non_blocking=non_blocking)


def to_host_async(t: Tensor) -> Tensor:
    """Start copying a CUDA tensor into a new page-locked host tensor; valid once the stream gets there."""
    host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    host.copy_(t, non_blocking=True)
    return host
