"""Faults during training: cancel, an output folder that cannot be written, a full disk, GPU out of memory.

What the user must see: a sentence that says what happened and what to do; what they must keep:
their input files byte for byte and any previous result at the output paths (a failed re-run must
not destroy the model that worked yesterday); what must not appear: partial or temporary files.
The runs use a 24 x 24 x 4 raster and at most one real training iteration.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
import torch

from rssgl_qgis.core.errors import Cancelled
from rssgl_qgis.core.modelfile import load_model, save_model
from rssgl_qgis.core.network.model import RSSGL
from rssgl_qgis.core.prediction.memory_model import estimate_training_bytes
from rssgl_qgis.core.training.classifier import TrainingParams
from rssgl_qgis.workflows.train import train_from_files

from .helpers import (
    WAVELENGTHS,
    class_features,
    disk_full,
    running_as_root,
    scene_cube,
    sha256,
    snapshot,
    train_tiny_classifier,
    unwritable_folder,
    write_raster,
    write_samples,
)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    raster = write_raster(folder / "scene.tif", scene_cube(), wavelengths=WAVELENGTHS)
    samples = write_samples(folder / "samples.gpkg", class_features())
    return raster, samples


@pytest.fixture(scope="module")
def old_model(tmp_path_factory) -> Path:
    """A model file from an earlier, successful run."""
    path = tmp_path_factory.mktemp("old") / "model.rssgl"
    train_tiny_classifier().save(path)
    return path


class Stopper:
    """should_stop() that answers True from its ``after``-th call on (counts the calls).

    Not ``armed``, it answers False without counting: the calls before the training (the phase
    checkpoints of io.outputs, the band check) are not the ones a test about the training counts.
    """

    def __init__(self, after: int, armed: bool = True):
        self.after, self.calls, self.armed = after, 0, armed

    def __call__(self) -> bool:
        if not self.armed:
            return False
        self.calls += 1
        return self.calls > self.after


def _train(inputs, out: Path, *, model_name="model.rssgl", should_stop=None, iterations=1, report=True, **kw):
    raster, samples = inputs
    logs: list[tuple[str, str]] = []
    result = train_from_files(
        str(raster), samples_vector=str(samples), class_field="class_id",
        params=TrainingParams(iterations=iterations, device="cpu", **kw),
        model_out=str(out / model_name), report_out=str(out / "report.html") if report else None,
        should_stop=should_stop, log=lambda level, message: logs.append((level, message)),
    )
    return result, logs


def _inputs_unchanged(inputs, before: dict[Path, str]) -> None:
    for path in inputs:
        assert sha256(path) == before[path], f"the input {path.name} was modified"


# ------------------------------------------------------------------------------------- cancel
def test_cancel_during_training_leaves_no_output(inputs, tmp_path, monkeypatch):
    from rssgl_qgis.core.training.classifier import RssglClassifier

    before = {p: sha256(p) for p in inputs}
    stop = Stopper(after=1, armed=False)  # one real iteration, then cancel
    real_fit = RssglClassifier.fit

    def fit(self, *args, **kwargs):
        stop.armed = True  # count from the training's own checks on
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(RssglClassifier, "fit", fit)
    with pytest.raises(Cancelled, match="Training was cancelled."):
        _train(inputs, tmp_path, should_stop=stop, iterations=5)
    assert stop.calls == 2
    assert snapshot(tmp_path) == {}
    _inputs_unchanged(inputs, before)


def test_cancelling_a_rerun_keeps_the_previous_model_and_report(inputs, tmp_path, old_model):
    shutil.copy(old_model, tmp_path / "model.rssgl")
    (tmp_path / "report.html").write_text("<html>yesterday's report</html>")
    before = snapshot(tmp_path)
    with pytest.raises(Cancelled):
        _train(inputs, tmp_path, should_stop=Stopper(after=0))
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------------------- not writable
def test_unwritable_output_folder_is_a_clear_error_and_writes_nothing(inputs, tmp_path):
    out = unwritable_folder(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError) as info:
        _train(inputs, out, report=False)
    message = str(info.value)
    if running_as_root():  # the "folder" is a path below a regular file
        assert message == (f"Cannot write '{out / 'model.rssgl'}': the folder '{out}' does not exist. Create it or "
                           "choose another output path.")
    else:
        assert str(out) in message and "writ" in message
    assert snapshot(tmp_path) == before


def test_unwritable_output_is_reported_before_training_starts(inputs, tmp_path):
    stop = Stopper(after=0)
    with pytest.raises(ValueError, match="Cannot write"):
        _train(inputs, unwritable_folder(tmp_path), should_stop=stop, report=False)
    assert stop.calls == 0, "the user waited for training before hearing the output cannot be written"


# ------------------------------------------------------------------------------------- disk full
def test_disk_full_while_saving_a_model_removes_the_temp_and_keeps_the_old_file(tmp_path, old_model, monkeypatch):
    target = tmp_path / "model.rssgl"
    shutil.copy(old_model, target)
    before = snapshot(tmp_path)
    state, meta = load_model(old_model)
    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(ValueError) as info:
        save_model(target, {k: v + 1 for k, v in state.items()}, meta)
    assert info.value.__cause__.errno == errno.ENOSPC
    assert snapshot(tmp_path) == before, "the temporary file or a half-written model was left behind"


def test_disk_full_while_saving_a_model_says_so_in_the_users_terms(tmp_path, old_model, monkeypatch):
    target = tmp_path / "model.rssgl"
    state, meta = load_model(old_model)
    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(ValueError) as info:
        save_model(target, state, meta)
    assert str(info.value) == (f"Cannot save the model to '{target}': No space left on device. Check free disk "
                               "space and that you can write to the folder.")
    assert snapshot(tmp_path) == {}


def test_disk_full_while_writing_the_report_leaves_nothing(inputs, tmp_path, monkeypatch):
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith(".html"):
            disk_full()
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ValueError) as info:
        _train(inputs, tmp_path)
    assert str(info.value) == (
        f"Cannot write '{tmp_path / 'report.html'}': No space left on device. Check that the file is not open in "
        "another program and that the disk has free space."
    )
    assert snapshot(tmp_path) == {}, "the model written before the report failed, or a temp file, was left"


# ------------------------------------------------------------------------------------- GPU out of memory
def _oom(*args, **kwargs):
    raise torch.cuda.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 9.50 GiB. GPU 0 has a total capacity of 7.79 GiB of which 1.2 GiB is "
        "free."
    )


def test_gpu_out_of_memory_in_training_suggests_the_cpu_or_a_smaller_raster(inputs, tmp_path, monkeypatch):
    monkeypatch.setattr(RSSGL, "forward", _oom)
    with pytest.raises((ValueError, RuntimeError)) as info:
        _train(inputs, tmp_path)
    assert not isinstance(info.value, torch.cuda.OutOfMemoryError), "torch's own message reached the user"
    assert str(info.value) == (
        "The GPU ran out of memory training on this 24 x 24 x 4 raster (RSSGL sees the whole scene at once). Train "
        "on the CPU (device 'CPU'), or on a smaller raster or a spatial subset around the samples."
    )
    assert snapshot(tmp_path) == {}


def test_gpu_out_of_memory_in_training_leaves_no_output(inputs, tmp_path, monkeypatch):
    monkeypatch.setattr(RSSGL, "forward", _oom)
    with pytest.raises(RuntimeError):
        _train(inputs, tmp_path)
    assert snapshot(tmp_path) == {}


def test_host_out_of_memory_in_training_says_what_to_do(inputs, tmp_path, monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(RSSGL, "forward", no_memory)
    with pytest.raises((ValueError, RuntimeError)) as info:
        _train(inputs, tmp_path)
    need = estimate_training_bytes(4, 24, 24, "cpu") / 2**30
    assert str(info.value) == (
        "There is not enough memory to train on this 24 x 24 x 4 raster on the CPU (RSSGL sees the whole scene at "
        f"once; about {need:.1f} GiB needed). Close other programs, or train on a smaller raster or a spatial "
        "subset around the samples."
    )
    assert snapshot(tmp_path) == {}


def test_a_raster_too_large_for_the_memory_is_refused_before_reading_or_training(inputs, tmp_path, monkeypatch):
    """With "the whole raster" asked, check_training_fits runs before the raster is read: the user hears at once
    what size to clip to (Auto trains on windows instead: the next test)."""
    from rssgl_qgis.core.prediction import memory_model
    from rssgl_qgis.core.training.classifier import RssglClassifier
    from rssgl_qgis.io import raster as io_raster

    available = 2**20  # 1 MiB "available": far below the estimate even for the 24 x 24 x 4 test raster
    monkeypatch.setattr(memory_model, "_available_bytes", lambda device: available)

    def must_not_run(*args, **kwargs):
        raise AssertionError("the raster was read or training started although it cannot fit in memory")

    monkeypatch.setattr(RssglClassifier, "fit", must_not_run)
    monkeypatch.setattr(io_raster, "read_cube", must_not_run)
    with pytest.raises(ValueError) as info:
        _train(inputs, tmp_path, training_input="whole")
    need = memory_model.estimate_training_bytes(4, 24, 24, "cpu")
    assert str(info.value).startswith(
        f"Training RSSGL on the whole 24x24-pixel, 4-band raster needs about {need / 2**30:.1f} GiB of memory, but "
        "the computer has about 0.0 GiB available. RSSGL learns from the whole scene at once, so clip the raster "
        "to the area around your training samples"
    )
    assert snapshot(tmp_path) == {}


def test_a_raster_too_large_for_the_memory_trains_on_windows_without_reading_it_whole(inputs, tmp_path, monkeypatch):
    """Auto (the default): the same raster is not refused; it trains on windows, never read whole, and says so."""
    from rssgl_qgis.core.prediction import memory_model
    from rssgl_qgis.io import raster as io_raster

    monkeypatch.setattr(memory_model, "_available_bytes", lambda device: 2**20)
    monkeypatch.setattr(io_raster, "read_cube", lambda *a, **k: pytest.fail("the raster was read whole"))
    result, logs = _train(inputs, tmp_path, iterations=2, window_core=16, window_halo=4)
    assert result.classifier.training_input_.startswith("windows of")
    assert any("does not fit" in m and "training on windows" in m for _, m in logs)
    assert "training input" in (tmp_path / "report.html").read_text(encoding="utf-8")
