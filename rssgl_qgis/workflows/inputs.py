"""Train RSSGL's inputs (workflows/train.py ``_read_inputs``): the raster's header, the usable bands, the samples
on the raster grid and the pixels (or a window reader), with the checks that refuse a run before it trains.

On a 20000 x 20000 raster this is the phase between the band check and the training (issue 29): the samples
stay in the smallest integer type that holds their classes, and every count and check after the burn works on
the sparse list of labelled pixels (io.samples.SampleLabels.labelled), each step with its message, progress
and cancel.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import RssglError
from ..io.outputs import checkpoint

__all__ = ["MIN_CLASS_PIXELS"]

#: A class needs at least this many labelled (valid) pixels to be learnt: the paper's minimum per class.
MIN_CLASS_PIXELS = 5


def _read_samples(info, samples_vector, samples_layer, class_field, samples_raster, progress=None, should_stop=None):
    """Labels on the raster grid from exactly one of the two sample sources (``progress``: the share of the
    burn windows or label-raster rows done; ``should_stop`` asked before each)."""
    from ..io import samples as io_samples

    if (samples_vector is None) == (samples_raster is None):
        raise RssglError(
            "Give the training samples either as a vector layer with a class field or as a label raster "
            f"(got {'both' if samples_vector else 'neither'})."
        )
    if samples_vector is not None:
        if not class_field:
            raise RssglError("The training samples are a vector layer but no class field was chosen; pick the "
                             "field that holds the class values or names.")
        return io_samples.labels_from_vector(samples_vector, samples_layer or None, class_field, info,
                                             progress=progress, should_stop=should_stop)
    return io_samples.labels_from_raster(samples_raster, info, progress=progress, should_stop=should_stop)


def _check_class_sizes(count_of: dict[int, int], class_values, class_names) -> None:
    """At least two classes, each with MIN_CLASS_PIXELS labelled valid pixels; errors name the classes.

    ``count_of``: labelled valid pixels per class value. Every class the samples declare is counted, also one
    whose pixels all fell on nodata or outside the raster (0 pixels): it must be named, not silently dropped
    from the model.
    """
    if not count_of:
        raise RssglError("No training sample falls on a valid pixel of the raster; check that the samples "
                         "overlap the raster and are not on nodata pixels.")
    declared = [int(v) for v in class_values] if class_values is not None else []
    values = sorted(set(declared) | set(count_of))
    names = dict(zip(declared, class_names, strict=False))
    small = [(v, count_of.get(v, 0)) for v in values if count_of.get(v, 0) < MIN_CLASS_PIXELS]
    if small:
        listed = ", ".join(f"'{names.get(v, v)}' (value {v}: {n} pixel{'s' if n != 1 else ''})" for v, n in small)
        raise RssglError(
            f"Each class needs at least {MIN_CLASS_PIXELS} training pixels; too few for {listed}. Draw larger "
            "or more samples for these classes, or remove them from the samples."
        )
    if len(values) < 2:
        only = values[0]
        raise RssglError(f"Training needs at least 2 classes but the samples hold only '{names.get(only, only)}' "
                         f"(value {only}); add samples of other classes.")


def _usable_bands(raster_path: str, info, log, band_selection: str | None = None,
                  drop_water_vapour: bool = False, progress=None, should_stop=None) -> list[int]:
    """The 1-based bands to train on: the user's selection, less the bands the file flags bad or that hold
    no usable value (io.bands.unusable_bands, which logs its first message at once and honours cancel),
    named in one warning with the reason."""
    from ..core.data.band_selection import select_bands
    from ..io.bands import describe_bands, unusable_bands

    selection = select_bands(band_selection, info.bands, info.wavelengths, drop_water_vapour)  # bad text: fail first
    problems = unusable_bands(raster_path, info, progress=progress, should_stop=should_stop, log=log)
    if problems:
        groups: dict[tuple[str, ...], list[int]] = {}
        for band, reasons in problems.items():
            groups.setdefault(tuple(reasons), []).append(band)
        listed = "; ".join(f"{describe_bands(info, bands)} ({', '.join(reasons)})" for reasons, bands in groups.items())
        log("warning", f"{len(problems)} of {info.bands} band(s) are left out: {listed}. A band flagged bad in the "
                       "file's bad-band list (bbl), or with no data (nodata or NaN everywhere) or one constant value, "
                       "cannot be trained on; the model file records the bands it uses.")
    dropped = [b for b in selection.dropped if b not in problems]
    if dropped:
        log("info", f"Band selection ({selection.description}) leaves out {len(dropped)} more band(s): "
                    f"{describe_bands(info, dropped)}.")
    used = [b for b in selection.kept if b not in problems]
    if not used:
        if selection.dropped:
            raise RssglError(f"The band selection ({selection.description}) keeps only bands that are flagged bad or "
                             f"hold no data in the raster '{os.path.basename(raster_path)}'; select other bands.")
        raise RssglError(f"No band of the raster '{os.path.basename(raster_path)}' holds a usable value (every band is "
                         "flagged bad, or nodata, NaN or one constant value everywhere); check the raster's nodata "
                         "setting and its bad-band list.")
    if len(used) < info.bands:
        log("info", f"Training on {len(used)} of the raster's {info.bands} bands.")
    return used


def _trains_on_windows(mode: str, bands: int, info, device, check_training_fits, log) -> bool:
    """Whether training reads the raster window by window (TrainingParams.training_input; "auto": when the
    whole scene does not fit the device). "whole" on a raster that does not fit is refused now, with the
    size to clip it to, not after reading it and failing deep inside training."""
    if mode == "windows":
        return True
    try:
        check_training_fits(bands, info.height, info.width, device)
    except RssglError:
        if mode == "whole":
            raise
        log("info", f"The whole {info.width} x {info.height}-pixel raster does not fit the "
                    f"{'GPU' if device.type == 'cuda' else 'computer'}'s memory for training at once: training on "
                    "windows around the samples instead (the report says which input was used).")
        return True
    return False


@dataclass
class _TrainingRun:
    """What :func:`_read_inputs` learnt from the files, passed on so that no step reads them again."""

    info: Any  # io.raster.RasterInfo: the raster's header, read once
    used: list[int]  # 1-based bands trained on
    cube: Any  # (B, H, W) float32 array, or a core.training.windowed_scene.WindowedScene
    valid: np.ndarray
    labels: np.ndarray
    samples: Any  # io.samples' result: labels, groups, classes, warnings, dropped_outside
    present: list[int]  # class values with pixels, ascending (the engine's order)
    pixel_counts: list[int]  # labelled valid pixels of each class in ``present``
    names: list[str]
    colors: list
    params: Any  # TrainingParams, a copy with the training input decided
    device: Any  # torch.device

    def band_info(self) -> dict[str, Any]:
        """The model file's band information of the bands trained on (names, wavelengths, numbers, widths)."""
        info, used = self.info, self.used
        return {"names": [info.band_names[b - 1] for b in used] if info.band_names else None,
                "wavelengths": [info.wavelengths[b - 1] for b in used] if info.wavelengths else None,
                "indices": used, "fwhm": [info.fwhm[b - 1] for b in used] if info.fwhm else None}


def _read_inputs(raster_path, samples_vector, samples_layer, class_field, samples_raster, params, band_selection,
                 drop_water_vapour, progress, should_stop, log) -> _TrainingRun:
    """The raster's header, the usable bands, the samples on the raster grid and the pixels (or a window
    reader), with the checks that refuse a run before it trains (progress 0-3 %: the band check 0-2 %, the
    samples 2-3 %).

    The samples stay in the smallest integer type that holds their classes, and every count and check after
    the burn works on the sparse list of labelled pixels (SampleLabels.labelled), never on whole-raster
    temporaries: on a 20000 x 20000 raster they took 16 s and 3.2 GB of int64 without a word (issue 29)."""
    from ..core.network.device import choose_device
    from ..core.prediction.memory_model import check_training_fits
    from ..core.training.windowed_scene import WindowedScene
    from ..io.blocks import GdalWindowReader
    from ..io.raster import raster_info, read_cube

    checkpoint("reading", should_stop)
    progress(0.0, "reading the raster")
    info = raster_info(raster_path)
    log("info", f"Raster: {info.bands} bands, {info.height} rows x {info.width} columns ({raster_path}).")
    # RSSGL trains on the whole scene at once: a raster too large for the device is refused now,
    # with the size to clip it to, not after reading it and failing deep inside training.
    device = choose_device(params.device)
    # Bands without data (EnMAP L2A leaves its water-vapour bands nodata everywhere) would make every pixel
    # invalid: they are left out and named (issue 14); the model file records the bands it uses.
    used = _usable_bands(raster_path, info, log, band_selection, drop_water_vapour,
                         lambda percent, message: progress(2.0 * percent / 100.0, message), should_stop)
    windows = _trains_on_windows(params.training_input, len(used), info, device, check_training_fits, log)
    log("info", f"Reading the training samples onto the raster's {info.width} x {info.height} grid...")
    samples = _read_samples(info, samples_vector, samples_layer, class_field, samples_raster,
                            lambda percent, message: progress(2.0 + 0.9 * percent / 100.0, message), should_stop)
    for warning in samples.warnings:
        log("warning", warning)
    checkpoint("reading", should_stop)
    if windows:  # read window by window by the engine (core/training/window_training.py), never whole
        reader = GdalWindowReader(raster_path, info, bands=used)
        cube = WindowedScene(reader, len(used), info.height, info.width, nodata=reader.nodata)
        valid = np.ones((info.height, info.width), dtype=bool)  # nodata pixels are found as windows are read
    else:
        cube, valid = read_cube(raster_path, bands=used, info=info)
    # decided here, before the raster was read: the engine must not decide again with it in memory
    params = dataclasses.replace(params, training_input="windows" if windows else "whole")
    labels, present, counts = _labels_on_valid_pixels(samples, valid, None if windows else len(used), log)
    names, colors = _class_names_and_colors(samples, present)
    log("info", "Classes: " + ", ".join(f"{v} {n} ({c} px)" for v, n, c in zip(present, names, counts, strict=True)))
    progress(3.0, "samples read")

    params = dataclasses.replace(params)  # never change the caller's object
    # The engine carves the validation pixels from the labels itself, so that when too few remain for
    # validation it can give them back to training (it never trains on validation pixels handed to it).
    if params.selection == "validation" and params.validation_share <= 0:
        params.selection = "loss"
    return _TrainingRun(info=info, used=used, cube=cube, valid=valid, labels=labels, samples=samples,
                        present=present, pixel_counts=counts, names=names, colors=colors, params=params,
                        device=device)


def _labels_on_valid_pixels(samples, valid: np.ndarray, bands_read: int | None, log
                            ) -> tuple[np.ndarray, list[int], list[int]]:
    """(labels without the pixels on nodata, the class values with pixels ascending, their pixel counts), from
    the sparse list of labelled pixels; the classes' sizes checked (_check_class_sizes). ``bands_read``: the
    bands of a cube read whole, whose ``valid`` mask found nodata pixels (None: training on windows, where
    ``valid`` is all True and nodata pixels are found as windows are read)."""
    labels = samples.labels
    rows, cols, values = samples.labelled()
    if bands_read is not None:
        invalid = int(valid.size - np.count_nonzero(valid))
        if invalid:
            log("info", f"{invalid} of {valid.size} pixels are nodata (or NaN) in at least one of the {bands_read} "
                        "bands used; they are not trained on and stay nodata in the map.")
        off = ~valid[rows, cols]
        if off.any():
            log("warning", f"{int(off.sum())} training pixel(s) lie on nodata/NaN pixels of the raster and were "
                           "ignored.")
            labels = labels.copy()
            labels[rows[off], cols[off]] = 0
            values = values[~off]
    found, counts = np.unique(values, return_counts=True)
    _check_class_sizes({int(v): int(n) for v, n in zip(found, counts, strict=True)},
                       [int(v) for v in samples.class_values], list(samples.class_names))
    return labels, [int(v) for v in found], [int(n) for n in counts]


def _class_names_and_colors(samples, present: list[int]) -> tuple[list[str], list]:
    """The names of the classes with pixels (``present``, ascending: the engine's order) and their colours,
    by value: class 1 keeps its colour across runs."""
    from ..core.palette import default_colors

    name_of = dict(zip([int(v) for v in samples.class_values], samples.class_names, strict=False))
    names = [str(name_of.get(v, f"class {v}")) for v in present]
    palette = default_colors(max(present))
    return names, [palette[v - 1] for v in present]
