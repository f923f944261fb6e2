"""Fault injection through Processing and the dock's task (issue 31), the engine-level twin of
tests/reliability/test_fault_injection.py.

At each phase boundary (io.outputs.checkpoint) of Classify with RSSGL, Train RSSGL, Assess accuracy
and the dock's RssglTrainTask, the run fails (an exception) or is cancelled (the user's Cancel: the
feedback / the task is cancelled there). Every case checks that the files of an earlier good run at
the same paths stay byte for byte, that no temporary file is left, and that a cancelled Processing run
ends as a failure ("Canceled: ..."), so qgis_process exits non-zero and a model stops. A last test sends
Ctrl+C (SIGINT) to a real qgis_process during the training.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from rssgl_qgis.workflows.stages import RSSGL_STAGES
from tests.qgis.helpers_processing import QGIS_PROCESS, RecordingFeedback, qgis_process_env, run_algorithm
from tests.reliability.helpers import (
    WAVELENGTHS,
    block_labels,
    class_features,
    scene_cube,
    snapshot,
    train_tiny_classifier,
    use_tiny_network,
    write_raster,
    write_samples,
)

CLASSIFY_PHASES = ["loading the model", "classifying", "committing"]
TRAIN_PHASES = ["reading", "training", "saving the model", "classifying", "writing the report", "committing"]
ASSESS_PHASES = ["reading", "writing the report", "committing"]
TASK_PHASES = ["reading", "training", "saving the model", "classifying", "finding where to draw next", "committing"]


@pytest.fixture(autouse=True)
def tiny_network(monkeypatch, rssgl_provider):
    use_tiny_network(monkeypatch)


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("model") / "tiny.rssgl"
    train_tiny_classifier(wavelengths=WAVELENGTHS).save(path)
    return path.read_bytes()


@pytest.fixture
def scene(tmp_path, model_bytes) -> dict[str, Path]:
    from rssgl_qgis.io.raster import raster_info
    from rssgl_qgis.io.raster_write import write_classification

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    raster = write_raster(inputs / "scene.tif", scene_cube(), wavelengths=WAVELENGTHS)
    (inputs / "model.rssgl").write_bytes(model_bytes)
    write_classification(inputs / "classified.tif", block_labels(), raster_info(raster), [1, 2, 3, 4],
                         ["water", "forest", "soil", "urban"], [(0, 0, 255), (0, 128, 0), (150, 100, 50), (90, 90, 90)])
    return {"raster": raster, "samples": write_samples(inputs / "samples.gpkg", class_features()),
            "model": inputs / "model.rssgl", "classified": inputs / "classified.tif"}


@pytest.fixture
def out(tmp_path, model_bytes) -> Path:
    """A folder with the outputs of an earlier good run at every path the re-runs use."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "model.rssgl").write_bytes(model_bytes)
    for name in ("training.html", "classes.tif", "classes.qml", "confidence.tif", "accuracy.html", "accuracy.csv"):
        (folder / name).write_bytes(f"{name} of the last good run\n".encode())
    return folder


def _inject(phase: str, action: str, cancel, seen: list[str]):
    """A checkpoint hook: at ``phase``, raise (fail) or press Cancel (``cancel()``) as the user would."""
    def hook(current: str) -> None:
        seen.append(current)
        if current == phase:
            if action == "cancel":
                cancel()
            else:
                raise RuntimeError(f"injected failure before {phase}")

    return hook


def _run_with_fault(algorithm: str, parameters: dict, phase: str, action: str) -> str:
    """Run ``algorithm`` with the fault; return the QgsProcessingException's text."""
    from qgis.core import QgsProcessingException

    from rssgl_qgis.io.outputs import checkpoint_hook

    feedback = RecordingFeedback.create()
    seen: list[str] = []
    with checkpoint_hook(_inject(phase, action, feedback.cancel, seen)), pytest.raises(QgsProcessingException) as info:
        run_algorithm(algorithm, parameters, feedback=feedback)
    assert phase in seen, f"the run never reached '{phase}' (phases seen: {seen})"
    return str(info.value)


def _expected(action: str, phase: str) -> str:
    return "Canceled: no output was written." if action == "cancel" else f"injected failure before {phase}"


@pytest.mark.parametrize("action", ["fail", "cancel"])
@pytest.mark.parametrize("phase", CLASSIFY_PHASES)
def test_classify_fault_at_every_phase(scene, out, phase, action):
    before = snapshot(out)
    message = _run_with_fault("rssgl:classify", {
        "INPUT": str(scene["raster"]), "MODEL": str(scene["model"]), "OUTPUT": str(out / "classes.tif"),
        "OUTPUT_CONFIDENCE": str(out / "confidence.tif")}, phase, action)
    assert message == _expected(action, phase)
    assert snapshot(out) == before


@pytest.mark.parametrize("action", ["fail", "cancel"])
@pytest.mark.parametrize("phase", TRAIN_PHASES)
def test_train_fault_at_every_phase(scene, out, phase, action):
    before = snapshot(out)
    message = _run_with_fault("rssgl:train", {
        "INPUT": str(scene["raster"]), "SAMPLES": str(scene["samples"]), "CLASS_FIELD": "class_id",
        "ITERATIONS": 1, "DEVICE": 2, "CROSS_VALIDATION": 0, "OUTPUT_MODEL": str(out / "model.rssgl"),
        "OUTPUT_CLASSIFICATION": str(out / "classes.tif"), "OUTPUT_CONFIDENCE": str(out / "confidence.tif"),
        "OUTPUT_REPORT": str(out / "training.html")}, phase, action)
    assert message == _expected(action, phase)
    assert snapshot(out) == before


@pytest.mark.parametrize("action", ["fail", "cancel"])
@pytest.mark.parametrize("phase", ASSESS_PHASES)
def test_assess_fault_at_every_phase(scene, out, phase, action):
    before = snapshot(out)
    message = _run_with_fault("rssgl:accuracy", {
        "INPUT": str(scene["classified"]), "REFERENCE": str(scene["samples"]), "REFERENCE_FIELD": "class_id",
        "OUTPUT_HTML": str(out / "accuracy.html"), "OUTPUT_CSV": str(out / "accuracy.csv")}, phase, action)
    assert message == _expected(action, phase)
    assert snapshot(out) == before


# ------------------------------------------------------------------------------------------------ the dock's task
@pytest.mark.parametrize("action", ["fail", "cancel"])
@pytest.mark.parametrize("phase", TASK_PHASES)
def test_dock_task_fault_at_every_phase(scene, tmp_path, phase, action):
    """The dock's run folder holds the samples it wrote; after a failed or cancelled run it holds only them."""
    from rssgl_qgis.gui.tasks import RssglTrainTask, TrainRequest
    from rssgl_qgis.io.outputs import checkpoint_hook

    run_folder = tmp_path / "run"
    run_folder.mkdir()
    samples = shutil.copy(scene["samples"], run_folder / "training_polygons.gpkg")
    before = snapshot(run_folder)
    task = RssglTrainTask(TrainRequest(raster_path=str(scene["raster"]), samples_path=str(samples),
                                       samples_layer="samples", class_field="class_id", run_folder=str(run_folder),
                                       iterations=1, device="cpu", cv_folds=0))
    seen: list[str] = []
    with checkpoint_hook(_inject(phase, action, task.cancel, seen)):
        assert task.run() is False
    assert phase in seen, f"the task never reached '{phase}' (phases seen: {seen})"
    task.finished(False)
    if action == "cancel":
        assert task.outcome.status == "canceled" and task.outcome.message == "Training was canceled."
    else:
        assert task.outcome.status == "failed" and task.outcome.message == f"injected failure before {phase}"
    assert snapshot(run_folder) == before


# ------------------------------------------------------------------------------------------------ qgis_process
@pytest.mark.skipif(not os.path.exists(QGIS_PROCESS), reason="qgis_process is not installed")
def test_ctrl_c_in_qgis_process_exits_non_zero_and_keeps_the_last_run(scene, out, tmp_path):
    """The tester's case: Ctrl+C during a re-run printed "Canceled" and exited 0, after deleting the model."""
    env = qgis_process_env(str(tmp_path / "home"))
    before = snapshot(out)
    arguments = [f"--{k}={v}" for k, v in {
        "INPUT": scene["raster"], "SAMPLES": scene["samples"], "CLASS_FIELD": "class_id", "ITERATIONS": 100000,
        "DEVICE": 2, "CROSS_VALIDATION": 0, "OUTPUT_MODEL": out / "model.rssgl",
        "RSSGL_STAGE": RSSGL_STAGES.index("always"),  # RSSGL's epochs on the CPU (the default: stage one, seconds)
        "OUTPUT_CLASSIFICATION": out / "classes.tif", "OUTPUT_REPORT": out / "training.html"}.items()]
    unbuffered = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []  # qgis_process's stdout is a pipe here
    process = subprocess.Popen([*unbuffered, QGIS_PROCESS, "run", "rssgl:train", *arguments], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 240
    for line in process.stdout:  # wait until the training runs
        lines.append(line)
        if line.lower().startswith("epoch ") or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGINT)
    try:
        rest, _ = process.communicate(timeout=240)
    finally:
        process.kill()
    output = "".join(lines) + (rest or "")
    assert any(line.lower().startswith("epoch ") for line in lines), output
    assert process.returncode != 0, output
    assert "Canceled: no output was written." in output
    assert snapshot(out) == before
