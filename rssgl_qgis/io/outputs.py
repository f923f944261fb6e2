"""The one rule for outputs, shared by Train, Classify, Assess and the dock's task (no qgis import).

1. **Check every output path before any work**: its extension (what the next step will read), its
   folder (exists, writable), collisions between outputs (a classification's ``.qml`` style included)
   and with the inputs. A model named ``model.txt`` or a map named ``cls.img`` is refused before the
   training, not after it (issue 31).
2. **Write everything to temporary files beside the targets** (``OutputTransaction.path``), never
   to the names the user gave.
3. **Replace the targets together, only at the very end** (``OutputTransaction.commit``, one
   io.atomic transaction). A failure or cancel at any moment before leaves every earlier file byte
   for byte and removes the temporary files; permissions follow the replaced file, or the umask.
4. **A killed run is cleaned up by the next one**: opening a transaction removes the temporary files
   of dead processes in the output folders and undoes a half-done commit (io.atomic).

``checkpoint(phase, should_stop)`` marks the boundaries between the phases of a run (reading,
training, cross-validation, saving the model, classifying, writing the report, committing): a
cancel is honoured there, and the fault-injection tests hook in there
(tests/reliability/test_fault_injection.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NoReturn

from ..core.errors import Cancelled, RssglError
from .atomic import (
    check_folder,
    clean_stale_temporaries,
    commit_temporaries,
    discard_temporary,
    temporary_path_for,
)
from .raster_write import qml_path_for

__all__ = ["KINDS", "Output", "OutputTransaction", "check_outputs", "checkpoint", "checkpoint_hook"]

#: Output kind -> (accepted extensions, what to tell the user, with the example name's stem filled in).
KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "model": ((".rssgl",), "must end in .rssgl, the extension 'Classify with RSSGL' reads; choose a name such as "
                           "'{stem}.rssgl'"),
    "geotiff": ((".tif", ".tiff"), "must be a GeoTIFF file (.tif or .tiff); choose a name such as '{stem}.tif'"),
    "html": ((".html", ".htm"), "must be an HTML file (.html or .htm); choose a name such as '{stem}.html'"),
    "csv": ((".csv", ".txt"), "must be a CSV file (.csv or .txt); choose a name such as '{stem}.csv'"),
    "gpkg": ((".gpkg",), "must be a GeoPackage (.gpkg); choose a name such as '{stem}.gpkg'"),
}


@dataclass(frozen=True)
class Output:
    """One output of a run: its label in the user's terms ("classification output"), path and kind.

    A ``geotiff`` output with ``styled=True`` also writes a ``.qml`` style beside it (class maps).
    """

    label: str
    path: str | None
    kind: str
    styled: bool = False

    def companions(self) -> list[str]:
        """The files this output writes beside itself under names of their own (the .qml style)."""
        return [qml_path_for(self.path)] if self.styled and self.path else []


def _same(a: str, b: str) -> bool:
    """Whether two paths name the same file (existing or not; symlinks and case-insensitive disks too)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs: Iterable[Output], inputs: Mapping[str, str | None] | None = None) -> None:
    """Refuse, with one sentence, output paths the run could not write or would regret writing.

    ``inputs`` maps the user's name of each input ("raster", "training samples") to its path. Checked:
    the extension of each output's kind, that its folder exists and is writable and the path is not a
    folder, that no two outputs (or an output and another's .qml) share a file, and that no output
    would overwrite an input. Raises RssglError.
    """
    outputs = [o for o in outputs if o.path]
    seen: list[tuple[str, str]] = []  # (path, label); collisions first: they are the mistake to name
    for output in outputs:
        path = os.fspath(output.path)
        for name, source in (inputs or {}).items():
            if source and _same(path, os.fspath(source)):
                raise RssglError(f"The {output.label} would overwrite the input {name} '{source}'; choose another "
                                 "path.")
        for file, label in [(path, output.label)] + [(c, f"{output.label}'s style file") for c in output.companions()]:
            for other, other_label in seen:
                if _same(file, other):
                    raise RssglError(f"The {other_label} and the {label} both point to '{file}'; give each its own "
                                     "file.")
            seen.append((file, label))
    for output in outputs:
        path = os.fspath(output.path)
        extensions, advice = KINDS[output.kind]
        if not path.lower().endswith(extensions):
            stem = os.path.splitext(os.path.basename(path))[0] or "output"
            raise RssglError(f"The {output.label} '{path}' {advice.format(stem=stem)}.")
        try:
            check_folder(path)
        except ValueError as error:
            raise RssglError(str(error)) from error


# ------------------------------------------------------------------------------------------ phase boundaries
_hooks: list[Callable[[str], None]] = []


def checkpoint(phase: str, should_stop: Callable[[], bool] | None = None) -> None:
    """A boundary between two phases of a run: honour a cancel here (raise Cancelled) before ``phase``.

    Hooks registered with :func:`checkpoint_hook` run first (the fault-injection tests raise, cancel or
    kill the process there); without hooks this only asks ``should_stop``.
    """
    for hook in list(_hooks):
        hook(phase)
    if should_stop is not None and should_stop():
        raise Cancelled(f"Canceled before {phase}.")


@contextlib.contextmanager
def checkpoint_hook(hook: Callable[[str], None]) -> Iterator[None]:
    """Call ``hook(phase)`` at every :func:`checkpoint` inside the block (tests only)."""
    _hooks.append(hook)
    try:
        yield
    finally:
        _hooks.remove(hook)


# ------------------------------------------------------------------------------------------ the transaction
class OutputTransaction:
    """The outputs of one run: checked up front, written to temporary files, committed together.

    ::

        with OutputTransaction([Output("model file", model, "model")], {"raster": raster}) as outputs:
            classifier.save(outputs.path(model))      # a temporary file beside the model
            checkpoint("committing", should_stop)
            outputs.commit()                           # every output replaced at once
        # leaving the block without commit (error, cancel) deletes every temporary file

    Creating it checks the paths (:func:`check_outputs`) and cleans what killed runs left in the output
    folders. Every declared output must have been written when :meth:`commit` runs.
    """

    def __init__(self, outputs: Iterable[Output], inputs: Mapping[str, str | None] | None = None) -> None:
        self.outputs = [o for o in outputs if o.path]
        check_outputs(self.outputs, inputs)
        self._by_target = {os.path.abspath(os.fspath(o.path)): o for o in self.outputs}
        self._temporary: dict[str, str] = {}
        self.committed = False
        for folder in sorted({os.path.dirname(target) for target in self._by_target}):
            clean_stale_temporaries(folder)

    def path(self, target: str | os.PathLike) -> str:
        """The temporary file to write ``target`` to (the same one on every call)."""
        key = os.path.abspath(os.fspath(target))
        if key not in self._by_target:
            raise ValueError(f"'{target}' is not one of this run's declared outputs.")
        if self.committed:
            raise RuntimeError(f"The outputs were already committed; '{target}' can no longer be written.")
        if key not in self._temporary:
            self._temporary[key] = temporary_path_for(key)
        return self._temporary[key]

    def raise_in_user_terms(self, error: BaseException) -> NoReturn:
        """Raise ``error`` with each temporary name in its message replaced by the output path the user gave.

        Writers name the file they were given ("Cannot save the model to '.model.tmp-...rssgl'"); the
        user should read their own path. ``error`` itself is raised when its message names no temporary
        file, else a new exception of the same type (RssglError where that type cannot be rebuilt from a
        message) from it. Call it in an ``except`` block.
        """
        text = changed = str(error)
        for key, tmp in self._temporary.items():
            changed = changed.replace(tmp, os.fspath(self._by_target[key].path))
        if changed == text:
            raise error
        try:
            translated = type(error)(changed)
        except Exception:  # noqa: BLE001 (exception types with other constructors)
            translated = RssglError(changed)
        raise translated from error

    def _pairs(self) -> list[tuple[str, str]]:
        pairs = []
        for key, output in self._by_target.items():
            tmp = self._temporary.get(key)
            if tmp is None or not os.path.exists(tmp):
                raise RuntimeError(f"The {output.label} '{output.path}' was not written.")
            pairs.append((tmp, key))
            for companion in Output(output.label, tmp, output.kind, output.styled).companions():
                if os.path.exists(companion):
                    pairs.append((companion, qml_path_for(key)))
        return pairs

    def commit(self) -> None:
        """Replace every target with its temporary file, all or none (io.atomic.commit_temporaries)."""
        try:
            pairs = self._pairs()
        except BaseException:
            self.discard()
            raise
        commit_temporaries(pairs)
        self.committed = True

    def discard(self) -> None:
        """Delete every temporary file (and GDAL sidecars, .qml) of this run; the targets are untouched."""
        if self.committed:
            return
        for key, tmp in self._temporary.items():
            discard_temporary(tmp)
            if self._by_target[key].styled:
                discard_temporary(qml_path_for(tmp), ())

    def __enter__(self) -> OutputTransaction:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.discard()
