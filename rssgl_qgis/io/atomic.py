"""Atomic outputs: write to a temporary name in the target folder, rename on success, clean up on failure.

Why: a cancelled training, a crash or a full disk must never leave a half-written GeoTIFF, model or
report under the name the user asked for (QGIS would happily load it), nor overwrite a good earlier
result with a broken one. Writing next to the target (same folder, so the same file system) and then
``os.replace`` makes the switch atomic on POSIX and Windows. The temporary name keeps the extension,
because GDAL/OGR choose drivers and sidecar names from it.

GDAL may write sidecars next to a dataset (``.aux.xml`` for category names and statistics, ``.ovr``
overviews, ``.msk`` masks). They belong to the temporary name while writing; on success they are
renamed with the file (and stale sidecars of an older output at the target are removed), on failure
they are deleted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator

__all__ = [
    "GDAL_SIDECARS",
    "atomic_output",
    "atomic_write_text",
    "commit_temporaries",
    "commit_temporary",
    "discard_temporary",
    "temporary_path_for",
]

log = logging.getLogger(__name__)

GDAL_SIDECARS: tuple[str, ...] = (".aux.xml", ".ovr", ".msk", "-wal", "-shm", "-journal")


def _check_folder(path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(
            f"Cannot write '{path}': the folder '{folder}' does not exist. Create it or choose another output path."
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(
            f"Cannot write '{path}': the folder '{folder}' is not writable. Choose a folder you can write to."
        )
    if os.path.isdir(path):
        raise ValueError(f"Cannot write '{path}': it is a folder. Give a file name, e.g. '{path}/result.tif'.")
    return folder


def temporary_path_for(path: str | os.PathLike) -> str:
    """A unique, hidden temporary path in the same folder as ``path``, with the same extension.

    Raises ValueError (with what to do) when the folder does not exist or is not writable.
    """
    path = os.fspath(path)
    folder = _check_folder(path)
    name = os.path.basename(path)
    # Keep compound extensions GDAL cares about (".aux.xml" is not one of them, ".tif" is).
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.tmp-{uuid.uuid4().hex[:12]}{ext}")


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        os.remove(path)


def discard_temporary(tmp_path: str, sidecars: tuple[str, ...] = GDAL_SIDECARS) -> None:
    """Delete a temporary output and any GDAL sidecars written next to it (missing files are fine)."""
    _remove_quietly(tmp_path)
    for suffix in sidecars:
        _remove_quietly(tmp_path + suffix)


def _backup_link(path: str) -> str | None:
    """A second name (hard link) for an existing output, so it can be put back if a later step fails.

    Hard links copy nothing; on file systems without them (FAT, some shares) there is no backup and
    that one file's replacement is not undone.
    """
    if not os.path.exists(path):
        return None
    folder, name = os.path.split(path)
    backup = os.path.join(folder, f".{name}.bak-{uuid.uuid4().hex[:12]}")
    try:
        os.link(path, backup)
    except OSError:
        return None
    return backup


def commit_temporaries(pairs: list[tuple[str, str | os.PathLike]], sidecars: tuple[str, ...] = GDAL_SIDECARS) -> None:
    """Move several finished temporary outputs onto their targets as one transaction.

    ``pairs`` are (temporary path, target path); each target's GDAL sidecars follow it (stale ones of an
    older output are removed). Targets are replaced in order, main files before their sidecars. If any
    step fails, the targets already replaced get their previous content back (kept as hard links
    until the end), new files are removed, all temporary files are deleted, and a ValueError names the
    file that could not be written. So a raster, its .aux.xml and its .qml change together or not at all.
    """
    steps: list[tuple[str | None, str]] = []  # (source or None = delete the target, target)
    for tmp, path in pairs:
        path = os.fspath(path)
        if not os.path.exists(tmp):
            discard_all = [t for t, _ in pairs]
            for other in discard_all:
                discard_temporary(other, sidecars)
            raise RuntimeError(f"Cannot finish '{path}': its temporary file '{tmp}' was not written.")
        steps.append((tmp, path))
        for suffix in sidecars:
            if os.path.exists(tmp + suffix):
                steps.append((tmp + suffix, path + suffix))
            elif os.path.exists(path + suffix):
                steps.append((None, path + suffix))
    undo: list[tuple[str, str | None]] = []  # (target, backup or None = target did not exist)
    try:
        for source, target in steps:
            backup = _backup_link(target)
            existed = os.path.exists(target)
            if source is None:
                os.remove(target)
            else:
                os.replace(source, target)
            undo.append((target, backup if existed else None))
            if existed and backup is None:
                log.warning("No backup of '%s' could be kept; it cannot be restored if a later step fails.", target)
    except OSError as exc:
        failed = target
        if backup is not None:
            _remove_quietly(backup)
        for done_target, done_backup in reversed(undo):
            try:
                if done_backup is not None:
                    os.replace(done_backup, done_target)
                else:
                    _remove_quietly(done_target)
            except OSError:
                log.error("Could not restore '%s' (its previous content is in '%s').", done_target, done_backup)
        for tmp, _ in pairs:
            discard_temporary(tmp, sidecars)
        raise ValueError(
            f"Cannot write '{failed}': {exc.strerror or exc}. Check that the file is not open in another "
            "program and that the disk has free space."
        ) from exc
    for _, backup in undo:
        if backup is not None:
            _remove_quietly(backup)


def commit_temporary(tmp_path: str, path: str | os.PathLike, sidecars: tuple[str, ...] = GDAL_SIDECARS) -> None:
    """Move a finished temporary output (and its sidecars) onto ``path``; see :func:`commit_temporaries`."""
    commit_temporaries([(tmp_path, path)], sidecars)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, sidecars: tuple[str, ...] = GDAL_SIDECARS) -> Iterator[str]:
    """Yield a temporary path to write ``path`` to; rename it onto ``path`` only if the block succeeds.

    Close every GDAL/OGR dataset on the temporary path before the block ends (the rename happens
    then). On any exception, including ``Cancelled`` and ``KeyboardInterrupt``, the temporary file and
    its sidecars are deleted and the target is left untouched::

        with atomic_output("out/classes.tif") as tmp:
            write_geotiff(tmp, ...)
    """
    tmp = temporary_path_for(path)
    try:
        yield tmp
    except BaseException:
        discard_temporary(tmp, sidecars)
        raise
    commit_temporary(tmp, path, sidecars)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    with atomic_output(path, sidecars=()) as tmp:
        try:
            with open(tmp, "w", encoding=encoding, newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise ValueError(
                f"Cannot write '{os.fspath(path)}': {exc.strerror or exc}. Check free disk space and permissions."
            ) from exc
