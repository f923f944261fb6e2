"""The ``.rssgl`` model file: one safetensors file, JSON metadata in its header.

Layout (safetensors): 8-byte little-endian header length N, N bytes of JSON header (tensor
dtypes/shapes/offsets plus ``__metadata__``), then raw tensor bytes. Our metadata lives in
``__metadata__["rssgl"]`` as a JSON string. Nothing is ever unpickled: a torch ``.pt``/``.pth``
file (zip or raw pickle) is rejected by its magic bytes before any library reads it, so a crafted
pickle cannot run code.

Writes are atomic: a temporary file in the destination folder, fsync, then ``os.replace``. A
failed write (disk full, permission denied) removes the temporary file, keeps any previous model at
the path and raises ValueError "Cannot save the model to '<path>': <reason>. Check free disk space ...".
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import uuid
from pathlib import Path
from typing import Any

import torch

from .file_mode import apply_mode_for

__all__ = ["FORMAT_VERSION", "MAGIC_KEY", "save_model", "load_model", "read_metadata"]

FORMAT_VERSION = 1
MAGIC_KEY = "rssgl"
_MAX_HEADER = 100 * 2**20  # safetensors' own limit


def save_model(path, state_dict: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Atomically write ``state_dict`` and ``metadata`` (JSON-serialisable) to ``path``."""
    from safetensors.torch import save_file

    path = Path(path)
    meta = dict(metadata)
    meta["format_version"] = FORMAT_VERSION
    try:
        text = json.dumps(meta, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"The model metadata is not JSON-serialisable: {exc}.") from exc
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"Cannot save the model: the folder '{folder}' does not exist; choose an existing folder.")
    try:
        # ".tmp-<pid>-<12 hex>": the name io.atomic recognises, so a killed run's file is cleaned up later
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}.",
                                   suffix=".tmp", dir=folder)
    except OSError as exc:
        raise _cannot_save(path, exc) from exc
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={MAGIC_KEY: text})
        apply_mode_for(tmp, path)  # mkstemp makes 0600: keep the replaced file's bits, else the umask's
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):  # disk full, permission denied, file locked by another program
            raise _cannot_save(path, exc) from exc
        raise


def _cannot_save(path, exc: OSError) -> ValueError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return ValueError(
        f"Cannot save the model to '{path}': {reason}. Check free disk space and that you can write to the folder."
    )


def _not_a_model(path, what: str) -> ValueError:
    return ValueError(
        f"'{path}' is not an RSSGL model file ({what}). Choose a .rssgl file written by this plugin's "
        "'Train RSSGL' algorithm; PyTorch .pt/.pth checkpoints are refused because loading them can run code."
    )


def _read_header(path) -> tuple[dict[str, Any], int, int]:
    """Parse and check the safetensors header without touching tensor data. Returns (header, N, size)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"The model file '{path}' does not exist; check the path.")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else None
        plausible = n is not None and 2 <= n <= _MAX_HEADER and 8 + n <= size
        raw = fh.read(n) if plausible else fh.read(1)  # else the first header byte, if any: '{' in a cut file
    # Sniff foreign formats only when the bytes are no plausible safetensors header, and tell a cut-off
    # file first: the first byte of a safetensors file is the low byte of its header length and may well
    # be 0x80 (a pickle's first byte), but a cut header still starts with '{' right after the length.
    if not (plausible and raw[:1] == b"{"):
        if len(head) < 8:
            raise ValueError(f"The model file '{path}' is truncated ({size} bytes); save or copy it again.")
        if n is not None and 2 <= n <= _MAX_HEADER and 8 + n > size and raw[:1] in (b"{", b""):
            raise ValueError(f"The model file '{path}' is truncated (header cut off); save or copy it again.")
        if head[:2] == b"PK":
            raise _not_a_model(path, "it is a zip archive, e.g. a torch.save checkpoint")
        if head[:1] == b"\x80":
            raise _not_a_model(path, "it is a Python pickle")
        raise _not_a_model(path, "no safetensors header")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _not_a_model(path, "unreadable header") from exc
    if not isinstance(header, dict):
        raise _not_a_model(path, "unreadable header")
    return header, n, size


def read_metadata(path) -> dict[str, Any]:
    """The RSSGL metadata of a model file, validated (format version, magic key), without loading weights."""
    header, n, size = _read_header(path)
    meta_block = header.get("__metadata__") or {}
    if not isinstance(meta_block, dict) or MAGIC_KEY not in meta_block:
        raise _not_a_model(path, "a safetensors file without RSSGL metadata")
    try:
        meta = json.loads(meta_block[MAGIC_KEY])
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"The metadata in '{path}' is damaged ({exc}); retrain or use another file.") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"The metadata in '{path}' is damaged (not a JSON object); retrain or use another file.")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise ValueError(f"The model file '{path}' has no valid format_version; it is damaged.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"The model file '{path}' has format version {version}, newer than this plugin supports "
            f"({FORMAT_VERSION}); update the RSSGL plugin."
        )
    data_end = 0
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            data_end = max(data_end, int(info["data_offsets"][1]))  # type: ignore[index]
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise ValueError(f"The model file '{path}' has a damaged tensor table ({key}).") from exc
    if 8 + n + data_end > size:
        raise ValueError(
            f"The model file '{path}' is truncated ({size} bytes, {8 + n + data_end} expected); save or copy it again."
        )
    return meta


def load_model(path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return (state_dict on CPU, metadata). Raises ValueError for anything that is not a valid model."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = read_metadata(path)
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"The model file '{path}' could not be read ({exc}); it is damaged.") from exc
    return state, meta
