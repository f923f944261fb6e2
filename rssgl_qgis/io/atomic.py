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

Every temporary name carries the writing process's id, so a file left by a killed run is found and
removed by the next one (:func:`clean_stale_temporaries`); new files get the permission bits of the
file they replace, or the umask's (core.file_mode), never mkstemp's private 0600.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator

from ..core.file_mode import apply_mode_for

__all__ = [
    "GDAL_SIDECARS",
    "atomic_output",
    "atomic_write_text",
    "check_folder",
    "clean_stale_temporaries",
    "commit_temporaries",
    "commit_temporary",
    "discard_temporary",
    "temporary_path_for",
]

log = logging.getLogger(__name__)

GDAL_SIDECARS: tuple[str, ...] = (".aux.xml", ".ovr", ".msk", "-wal", "-shm", "-journal")


def check_folder(path: str) -> str:
    """The folder ``path`` will be written in; ValueError (with what to do) when it cannot be."""
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


def _token() -> str:
    """``<pid>-<12 hex>``: unique, and says which process wrote the file (see clean_stale_temporaries)."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


def temporary_path_for(path: str | os.PathLike) -> str:
    """A unique, hidden temporary path in the same folder as ``path``, with the same extension.

    The name is ``.<stem>.tmp-<pid>-<12 hex><ext>``, so a later run can tell a file left by a killed
    process from one a running process is still writing. Raises ValueError (with what to do) when the
    folder does not exist or is not writable.
    """
    path = os.fspath(path)
    folder = check_folder(path)
    name = os.path.basename(path)
    # Keep compound extensions GDAL cares about (".aux.xml" is not one of them, ".tif" is).
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.tmp-{_token()}{ext}")


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
    if not os.path.lexists(path):
        return None
    folder, name = os.path.split(path)
    backup = os.path.join(folder, f".{name}.bak-{_token()}")
    try:
        os.link(path, backup)
    except OSError:
        return None
    return backup


def _identity(path: str) -> list[int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return [status.st_dev, status.st_ino]


def _undo(target: str, backup: str | None, new: list[int] | None) -> None:
    """Put ``target`` back as it was before a commit: from its backup, or removed when the commit created it.

    Only a file this commit put there (same inode as the temporary file it renamed) is removed or
    replaced; a file someone wrote since is left alone, and the backup is dropped.
    """
    current = _identity(target)
    if backup is not None and os.path.lexists(backup):
        if current is not None and current == _identity(backup):
            _remove_quietly(backup)  # never replaced (rename onto a hard link of itself would do nothing)
        elif current is None or current == new:
            os.replace(backup, target)
        else:
            _remove_quietly(backup)
    elif backup is None and new is not None and current == new:
        _remove_quietly(target)


def _write_journal(folder: str, entries: list[dict]) -> str | None:
    """Record a commit's steps (target, backup, new file's inode) so a run killed half-way through the
    renames can be undone by the next run (:func:`clean_stale_temporaries`). None if it cannot be written
    (the commit then goes on without it: the renames are still undone on any error in this process)."""
    journal = os.path.join(folder, f".rssgl-commit-{_token()}.json")
    try:
        with open(journal, "w", encoding="utf-8") as handle:
            json.dump({"pid": os.getpid(), "steps": entries}, handle)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        _remove_quietly(journal)
        return None
    return journal


def commit_temporaries(pairs: list[tuple[str, str | os.PathLike]], sidecars: tuple[str, ...] = GDAL_SIDECARS) -> None:
    """Move several finished temporary outputs onto their targets as one transaction.

    ``pairs`` are (temporary path, target path); each target's GDAL sidecars follow it (stale ones of an
    older output are removed). Each new file gets the permission bits of the file it replaces, or the
    umask's (core.file_mode). Every existing target is first kept as a hard link (backup) and the steps
    are written to a journal; then the targets are replaced in order, main files before their sidecars.
    If any step fails, the targets already replaced get their previous content back, new files are
    removed, all temporary files are deleted, and a ValueError names the file that could not be
    written. So a raster, its .aux.xml and its .qml change together or not at all. A process killed
    during the renames leaves the journal, and the next run undoes the half-done commit.
    """
    steps: list[tuple[str | None, str]] = []  # (source or None = delete the target, target)
    for tmp, path in pairs:
        path = os.path.abspath(os.fspath(path))
        if not os.path.exists(tmp):
            for other, _ in pairs:
                discard_temporary(other, sidecars)
            raise RuntimeError(f"Cannot finish '{path}': its temporary file '{tmp}' was not written.")
        steps.append((tmp, path))
        for suffix in sidecars:
            if os.path.exists(tmp + suffix):
                steps.append((tmp + suffix, path + suffix))
            elif os.path.exists(path + suffix):
                steps.append((None, path + suffix))
    entries: list[dict] = []
    for source, target in steps:
        if source is not None:
            apply_mode_for(source, target)
        backup = _backup_link(target)
        if backup is None and os.path.lexists(target):
            log.warning("No backup of '%s' could be kept; it cannot be restored if a later step fails.", target)
        entries.append({"target": target, "backup": backup, "new": _identity(source) if source else None})
    journal = _write_journal(os.path.dirname(steps[0][1]), entries) if steps else None
    done = 0
    try:
        for source, target in steps:
            if source is None:
                os.remove(target)
            else:
                os.replace(source, target)
            done += 1
    except OSError as exc:
        failed = steps[done][1]
        for entry in reversed(entries):
            try:
                _undo(entry["target"], entry["backup"], entry["new"])
            except OSError:
                log.error("Could not restore '%s' (its previous content is in '%s').", entry["target"], entry["backup"])
        for tmp, _ in pairs:
            discard_temporary(tmp, sidecars)
        if journal:
            _remove_quietly(journal)
        raise ValueError(
            f"Cannot write '{failed}': {exc.strerror or exc}. Check that the file is not open in another "
            "program and that the disk has free space."
        ) from exc
    for entry in entries:
        if entry["backup"] is not None:
            _remove_quietly(entry["backup"])
    if journal:
        _remove_quietly(journal)


#: A temporary or backup name written by this module (or core.modelfile): the pid that wrote it is group 1.
_STALE_NAME = re.compile(r"\.(?:tmp|bak)-(\d+)-[0-9a-f]{12}")
_JOURNAL_NAME = re.compile(r"^\.rssgl-commit-(\d+)-[0-9a-f]{12}\.json$")


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (True when that cannot be told: its files are then kept)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        try:
            import ctypes

            kernel = ctypes.windll.kernel32  # type: ignore[attr-defined]
            handle = kernel.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
            if not handle:
                return kernel.GetLastError() != 87  # ERROR_INVALID_PARAMETER: no such process
            code = ctypes.c_ulong()
            kernel.GetExitCodeProcess(handle, ctypes.byref(code))
            kernel.CloseHandle(handle)
            return code.value == 259  # STILL_ACTIVE
        except Exception:  # noqa: BLE001 (anything unexpected: keep the files)
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: another user's live process
        return True
    return True


def clean_stale_temporaries(folder: str | os.PathLike) -> list[str]:
    """Finish what a killed run left in ``folder``: undo a half-done commit, delete its temporary files.

    A run killed with SIGKILL (or a power cut) cannot clean up after itself. Its files carry its pid
    (``.<name>.tmp-<pid>-<hex>...``, ``.<name>.bak-<pid>-<hex>``, ``.rssgl-commit-<pid>-<hex>.json``);
    where that process no longer runs, a commit journal is undone first (the outputs it had replaced
    get their backups back), then its temporary and backup files are deleted. Files of live processes,
    and hidden files of other programs, are left alone. Returns the names removed.
    """
    folder = os.fspath(folder)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    removed: list[str] = []
    for name in names:
        match = _JOURNAL_NAME.match(name)
        if not match or _process_alive(int(match.group(1))):
            continue
        journal = os.path.join(folder, name)
        try:
            with open(journal, encoding="utf-8") as handle:
                entries = json.load(handle)["steps"]
            for entry in reversed(entries):
                _undo(entry["target"], entry.get("backup"), entry.get("new"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("Could not undo the interrupted commit recorded in '%s': %s", journal, exc)
            continue
        _remove_quietly(journal)
        removed.append(name)
        log.info("Undid an interrupted commit of a killed run (%s).", name)
    for name in os.listdir(folder):
        match = _STALE_NAME.search(name) if name.startswith(".") else None
        if match and not _process_alive(int(match.group(1))):
            _remove_quietly(os.path.join(folder, name))
            removed.append(name)
    return removed


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
