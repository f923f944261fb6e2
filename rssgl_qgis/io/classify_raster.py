"""Classify a raster file of any size with a trained RSSGL model: raster in, styled GeoTIFFs out.

Shared by the Processing algorithm "Classify with RSSGL", the dock and the training workflow (no qgis
import). The raster is read window by window with GDAL (io.blocks), classified tile by tile
(core.prediction.inference: halo, batching, reader thread, OOM fallback, bounded memory) and written block by
block to temporary GeoTIFFs that are renamed onto the requested paths only when everything
succeeded: a cancelled or failed run leaves no output file, and older outputs at the same paths are
kept intact, all of them or none replaced (``_commit_all``).

Outputs (all on the input raster's grid):
* classification: the model's original class values, 0 = nodata, smallest unsigned type, colour
  table and class names in the file plus a ``.qml`` sidecar (io.raster_write.classification_writer);
* confidence: float32 maximum softmax probability, -1 = nodata;
* probabilities: float32, one band per class (named after the class), -1 = nodata.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import RssglError
from ..core.prediction.inference import TiledReport, TileResult, predict_tiled
from ..core.prediction.statistics_passes import DEFAULT_SCENE_PASSES
from .atomic import GDAL_SIDECARS
from .band_checks import (
    by_number_warning,
    empty_bands,
    empty_map_message,
    sample_statistics,
    statistics_mismatch,
    statistics_warning,
)
from .bands import WAVELENGTH_TOLERANCE_NM, check_model_bands, model_band_numbers
from .blocks import GdalWindowReader, mask_valid_fn
from .raster import RasterInfo, raster_info
from .raster_write import BlockWriter, classification_writer, qml_path_for

__all__ = ["ClassifyOutputs", "ClassifyReport", "check_model_bands", "classify_raster", "WAVELENGTH_TOLERANCE_NM",
           "model_band_numbers"]

_log = logging.getLogger(__name__)

#: Value written where the confidence / probabilities are undefined (nodata input pixels).
FLOAT_NODATA = -1.0


@dataclass
class ClassifyOutputs:
    """Where to write each output (None = do not produce it). GeoTIFF paths (.tif)."""

    classification: str | None
    confidence: str | None = None
    probabilities: str | None = None

    def paths(self) -> dict[str, str]:
        return {k: os.fspath(v) for k, v in vars(self).items() if v}


@dataclass
class ClassifyReport:
    """What a run produced and how: for the Processing log, the dock and reports."""

    outputs: dict[str, str]
    width: int
    height: int
    bands: int
    tiles: int
    tile: int
    halo: int
    batch: int
    device: str
    seconds: float
    valid_pixels: int
    class_pixels: dict[int, int]
    oom_retries: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def mpixels_per_minute(self) -> float:
        return self.width * self.height / 1e6 / max(self.seconds, 1e-9) * 60.0

    def class_areas(self, info: RasterInfo) -> dict[int, float]:
        """Mapped area of each class in squared map units."""
        px, py = info.pixel_size
        return {k: v * px * py for k, v in self.class_pixels.items()}


def _check_outputs(outputs: ClassifyOutputs, raster_path: str) -> dict[str, str]:
    paths = outputs.paths()
    if not paths:
        raise RssglError("No output requested: give at least a classification, confidence or probabilities path.")
    seen: dict[str, str] = {}
    for kind, path in paths.items():
        if not path.lower().endswith((".tif", ".tiff")):
            raise RssglError(f"The {kind} output '{path}' must be a GeoTIFF (.tif).")
        real = os.path.realpath(path)
        if real == os.path.realpath(raster_path):
            raise RssglError(f"The {kind} output would overwrite the input raster '{raster_path}'; choose another path.")
        if real in seen:
            raise RssglError(f"The {seen[real]} and {kind} outputs both point to '{path}'; give each its own file.")
        seen[real] = kind
    return paths


def _related_files(path: str) -> list[str]:
    """An output and the files GDAL/QGIS keep beside it (sidecars, .qml style)."""
    return [path, *(path + suffix for suffix in GDAL_SIDECARS), qml_path_for(path)]


def _backup_name(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.bak-{uuid.uuid4().hex[:12]}")


def _commit_all(writers: list[BlockWriter]) -> None:
    """Rename every finished output onto its path, all or nothing.

    Each BlockWriter commits atomically on its own, but a run writes up to three rasters plus
    sidecars: if the second rename fails (disk full, file locked in QGIS), the first output must
    not stay new while the second stays old. Existing files at the targets are hard-linked to
    backup names first (copied where the file system has no hard links), so a failure restores
    exactly what was there; backups are removed afterwards.
    """
    backups: dict[str, str] = {}
    existed: set[str] = set()
    try:
        for w in writers:
            for f in _related_files(w.path):
                if os.path.lexists(f):
                    existed.add(f)
                    backup = _backup_name(f)
                    try:
                        os.link(f, backup)
                    except OSError:
                        shutil.copy2(f, backup)
                    backups[f] = backup
    except OSError as exc:
        for backup in backups.values():
            _remove(backup)
        for w in writers:
            w.abort()
        raise RssglError(
            f"Cannot replace the existing outputs next to '{writers[0].path}': {exc.strerror or exc}. Check free disk "
            "space and that the folder is writable."
        ) from exc
    done: list[BlockWriter] = []
    try:
        for w in writers:
            done.append(w)
            w.commit()
    except BaseException:
        for w in writers[len(done):]:
            w.abort()
        for w in writers:
            for f in _related_files(w.path):
                backup = backups.get(f)
                if backup is None:
                    if w in done and f not in existed:
                        _remove(f)  # a file this run added
                elif os.path.lexists(f) and os.path.samefile(f, backup):
                    _remove(backup)  # never replaced (hard link to the same file)
                else:
                    with contextlib.suppress(OSError):
                        os.replace(backup, f)
                        continue
                    _log_restore_failure(f, backup)
        raise
    for backup in backups.values():
        _remove(backup)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _log_restore_failure(path: str, backup: str) -> None:
    """A failed restore leaves the old file under its backup name: say where, never delete it."""
    _log.error("Could not restore '%s'; the previous version is kept as '%s'.", path, backup)


def _check_bands_taken_by_number(classifier: Any, info: RasterInfo, band_numbers: list[int],
                                 reader: GdalWindowReader, warnings: list[str]) -> bool:
    """Whether the model's bands were taken by number (not matched by wavelength); add warnings where the
    raster's band count differs from the model's, or its band statistics clearly differ from the training
    raster's (a few sample blocks against the model file's ``band_mean`` / ``band_std``; io.band_checks)."""
    band_info = getattr(classifier, "band_info_", None) or {}
    model_has_wavelengths = bool(band_info.get("wavelengths"))
    if model_has_wavelengths and info.wavelengths:
        return False  # matched (or refused) by wavelength in model_band_numbers
    n_model = len(band_numbers)
    if info.bands != n_model:
        warnings.append(by_number_warning(info, band_numbers, n_model, model_has_wavelengths=model_has_wavelengths))
    mean, std = getattr(classifier, "band_mean_", None), getattr(classifier, "band_std_", None)
    if mean is not None and std is not None and len(mean) == n_model:
        sampled = sample_statistics(reader, info.height, info.width)
        if sampled is not None:
            mismatch = statistics_mismatch(mean, std, sampled[0], sampled[1])
            if mismatch is not None:
                warnings.append(statistics_warning(info, band_numbers, np.asarray(mean), np.asarray(std), *sampled[:2],
                                                   mismatch, model_has_wavelengths=model_has_wavelengths))
    return True


def classify_raster(
    classifier: Any,
    raster_path: str | os.PathLike,
    outputs: ClassifyOutputs,
    *,
    mask_path: str | os.PathLike | None = None,
    tile: int | None = None,
    halo: int | None = None,
    batch: int | None = None,
    memory_limit_bytes: int = 2 << 30,
    progress: Callable[[float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    log: Callable[[str, str], None] | None = None,
    scene_passes: int = DEFAULT_SCENE_PASSES,
) -> ClassifyReport:
    """Classify ``raster_path`` with a fitted RssglClassifier and write the requested outputs atomically.

    ``scene_passes``: passes gathering whole-scene statistics when the raster spans several tiles
    (``core.prediction.inference.predict_tiled``; 0 = each tile its own statistics, faster, with tile seams).

    Raises RssglError for input problems (band mismatch, bad mask, bad output paths), Cancelled when
    ``should_stop()`` turns True; in every failure case no output file is left behind.
    """
    raster_path = os.fspath(raster_path)
    say = log or (lambda level, message: getattr(_log, level if level in ("info", "warning") else "info")(message))
    paths = _check_outputs(outputs, raster_path)
    info = raster_info(raster_path)
    band_numbers, warnings = model_band_numbers(classifier, info)
    reader = GdalWindowReader(raster_path, info, bands=band_numbers)
    by_number = _check_bands_taken_by_number(classifier, info, band_numbers, reader, warnings)
    for w in warnings:
        say("warning", w)
    valid_fn = mask_valid_fn(mask_path, info) if mask_path else None
    classes = np.asarray(classifier.classes_)
    names, colors = _class_legend(classifier, classes)
    say(
        "info",
        f"Classifying {info.width}x{info.height} pixels, {len(band_numbers)} of {info.bands} bands ({info.dtype}) into "
        f"{len(classes)} classes on {getattr(classifier, 'device_', 'cpu')}.",
    )
    counts = np.zeros(int(classes.max()) + 1, dtype=np.int64)
    t0 = time.perf_counter()
    writers: dict[str, BlockWriter] = {}
    try:
        _open_writers(writers, paths, info, classes, names, colors)
        write = _window_writer(writers, counts)
        try:
            report = predict_tiled(
                classifier,
                reader,
                info.height,
                info.width,
                write_window=write,
                tile=tile,
                halo=halo,
                batch=batch,
                valid_fn=valid_fn,
                nodata=reader.nodata,
                itemsize=reader.itemsize,
                memory_limit_bytes=memory_limit_bytes,
                with_probabilities="probabilities" in writers,
                progress=progress,
                should_stop=should_stop,
                scene_passes=scene_passes,
            )
        finally:
            reader.close()
        if report.valid_pixels == 0:  # an all-nodata map is no result: say why instead of writing it
            raise _empty_map_error(raster_path, info, band_numbers, by_number=by_number,
                                   masked=mask_path is not None)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    _commit_all(list(writers.values()))
    seconds = time.perf_counter() - t0
    return _classify_report(paths, info, band_numbers, classes, counts, report, seconds, warnings, say)


def _class_legend(classifier: Any, classes: np.ndarray) -> tuple[list, list]:
    """Class names and colours for the classification's colour table: the model's own, else defaults
    (colours from the plugin's palette when the model has none for every class)."""
    names = list(getattr(classifier, "class_names_", None) or [f"class {int(c)}" for c in classes])
    colors = list(getattr(classifier, "class_colors_", None) or [])
    if len(colors) != len(classes):
        from ..core.palette import default_colors

        colors = default_colors(len(classes))
    return names, colors


def _open_writers(writers: dict[str, BlockWriter], paths: dict[str, str], info: RasterInfo,
                  classes: np.ndarray, names: list, colors: list) -> None:
    """Open a temporary block writer for each requested output, into ``writers`` as each is opened, so the
    caller can abort those already open when a later one fails."""
    if "classification" in paths:
        writers["classification"] = classification_writer(paths["classification"], info, classes.tolist(),
                                                          names, colors)
    if "confidence" in paths:
        writers["confidence"] = BlockWriter(paths["confidence"], info, bands=1, dtype="Float32",
                                            nodata=FLOAT_NODATA, band_names=["Confidence (max probability)"])
    if "probabilities" in paths:
        writers["probabilities"] = BlockWriter(paths["probabilities"], info, bands=len(classes), dtype="Float32",
                                               nodata=FLOAT_NODATA, band_names=[f"P({n})" for n in names])


def _window_writer(writers: dict[str, BlockWriter], counts: np.ndarray) -> Callable[[TileResult], None]:
    """predict_tiled's ``write_window``: each core into every open output, its labels added to ``counts``."""

    def write(result: TileResult) -> None:
        x, y = result.window.col, result.window.row
        if "classification" in writers:
            writers["classification"].write(result.labels, xoff=x, yoff=y)
        if "confidence" in writers:
            writers["confidence"].write(result.confidence, xoff=x, yoff=y)
        if "probabilities" in writers:
            writers["probabilities"].write(result.probabilities, xoff=x, yoff=y)
        counts[:] += np.bincount(result.labels.ravel(), minlength=counts.size)[: counts.size]

    return write


def _empty_map_error(raster_path: str, info: RasterInfo, band_numbers: list[int], *, by_number: bool,
                     masked: bool) -> RssglError:
    """Why a run found no valid pixel (an all-nodata map is no result): the raster's empty bands are
    scanned again to say which (io.band_checks)."""
    with GdalWindowReader(raster_path, info, bands=band_numbers) as scan:
        empty = empty_bands(scan, info.height, info.width)
    return RssglError(empty_map_message(info, band_numbers, empty, by_number=by_number, masked=masked))


def _classify_report(paths: dict[str, str], info: RasterInfo, band_numbers: list[int], classes: np.ndarray,
                     counts: np.ndarray, report: TiledReport, seconds: float, warnings: list[str],
                     say: Callable[[str, str], None]) -> ClassifyReport:
    """The report of a committed run, and its summary in the log (out-of-memory retries as a warning; how
    the tiles were made to agree with whole-scene prediction)."""
    if report.oom_retries:
        msg = (f"The device ran out of memory {report.oom_retries} time(s); continued with {report.final_tile}-pixel "
               f"tiles in batches of {report.final_batch}.")
        warnings.append(msg)
        say("warning", msg)
    result = ClassifyReport(
        outputs=paths,
        width=info.width,
        height=info.height,
        bands=len(band_numbers),
        tiles=report.tiles,
        tile=report.tile,
        halo=report.halo,
        batch=report.batch,
        device=report.device,
        seconds=seconds,
        valid_pixels=report.valid_pixels,
        class_pixels={int(c): int(counts[c]) for c in classes},
        oom_retries=report.oom_retries,
        warnings=warnings,
    )
    say("info", f"Classified {report.tiles} tiles of {report.tile} px (+{report.halo} halo) in {seconds:.1f} s "
                f"({result.mpixels_per_minute:.1f} Mpixel/min); {report.valid_pixels} valid pixels.")
    if report.layerwise:
        say("info", "Computed layer by layer over the whole raster on the CPU: the map is whole-scene prediction's "
                    "(no tile seams, no statistics passes).")
    elif report.scene_passes:
        seen = "" if report.scene_pass_tiles >= report.tiles else f", each over {report.scene_pass_tiles} of the tiles"
        say("info", f"Whole-scene statistics gathered over the tiles in {report.scene_passes} extra passes{seen}, so "
                    "tiles are normalised like the whole raster (no tile seams).")
    return result
