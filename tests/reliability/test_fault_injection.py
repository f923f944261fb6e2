"""Fault injection over the whole pipeline (issue 31): fail, cancel or kill at every phase boundary.

Every run here re-runs into a folder that holds the outputs of an earlier, good run. Whatever goes
wrong, and wherever, those files must stay byte for byte and no temporary file may remain: a fault
is injected at each ``io.outputs.checkpoint`` (reading, cross-validation, training, saving the
model, classifying, writing the report, committing) and in the middle of the commit's renames.
Kills (SIGTERM, SIGKILL) run the workflow in a subprocess; the "restart" is the next run opening its
outputs (io.outputs.OutputTransaction), which must undo a half-done commit and remove the killed
run's temporary files. The Processing algorithms and the dock task get the same treatment in
tests/qgis/test_fault_injection_processing.py. No qgis import; 24 x 24 px, 4 bands, tiny network.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rssgl_qgis.core.errors import Cancelled
from rssgl_qgis.core.training.classifier import TrainingParams
from rssgl_qgis.io.outputs import OutputTransaction, checkpoint_hook
from rssgl_qgis.workflows.assess import assess_accuracy
from rssgl_qgis.workflows.train import train_from_files, train_inputs, train_outputs

from .helpers import (
    WAVELENGTHS,
    block_labels,
    class_features,
    scene_cube,
    snapshot,
    train_tiny_classifier,
    write_raster,
    write_samples,
)

REPO = Path(__file__).resolve().parents[2]

#: Train's phase boundaries in run order, with what the run needs to reach each.
TRAIN_PHASES = [
    ("reading", {}),
    ("cross-validation", {"cv_folds": 2}),
    ("training", {}),
    ("saving the model", {}),
    ("classifying", {}),
    ("writing the report", {}),
    ("committing", {}),
]
ASSESS_PHASES = ["reading", "writing the report", "committing"]


@pytest.fixture(scope="module")
def old_model_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("old") / "model.rssgl"
    train_tiny_classifier(wavelengths=WAVELENGTHS).save(path)
    return path.read_bytes()


@pytest.fixture
def scene(tmp_path) -> dict[str, Path]:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    return {"raster": write_raster(inputs / "scene.tif", scene_cube(), wavelengths=WAVELENGTHS),
            "samples": write_samples(inputs / "samples.gpkg", class_features()), "folder": inputs}


def _old_outputs(out: Path, model_bytes: bytes) -> dict[str, str]:
    """The files of an earlier good run (Train's and Assess's); returns the folder's snapshot."""
    out.mkdir(exist_ok=True)
    (out / "model.rssgl").write_bytes(model_bytes)
    for name in ("training.html", "classes.tif", "classes.qml", "classes.tif.aux.xml", "confidence.tif",
                 "accuracy.html", "accuracy.csv"):
        (out / name).write_bytes(f"{name} of the last good run\n".encode())
    os.chmod(out / "model.rssgl", 0o644)
    return snapshot(out)


def _train_arguments(scene, out: Path, **overrides) -> dict:
    arguments = dict(samples_vector=str(scene["samples"]), class_field="class_id",
                     params=TrainingParams(iterations=1, device="cpu"), model_out=str(out / "model.rssgl"),
                     report_out=str(out / "training.html"), classification_out=str(out / "classes.tif"),
                     confidence_out=str(out / "confidence.tif"))
    arguments.update(overrides)
    return arguments


def _injector(phase: str, action: str, seen: list[str]):
    def hook(current: str) -> None:
        seen.append(current)
        if current == phase:
            if action == "cancel":
                raise Cancelled(f"Canceled before {phase}.")
            raise RuntimeError(f"injected failure before {phase}")

    return hook


# ------------------------------------------------------------------------------------------------ Train
@pytest.mark.parametrize("action", ["fail", "cancel"])
@pytest.mark.parametrize(("phase", "needs"), TRAIN_PHASES, ids=[p for p, _ in TRAIN_PHASES])
def test_train_fault_at_every_phase_keeps_the_last_good_run(scene, tmp_path, old_model_bytes, phase, needs, action):
    out = tmp_path / "out"
    before = _old_outputs(out, old_model_bytes)
    inputs = snapshot(scene["folder"])
    seen: list[str] = []
    with checkpoint_hook(_injector(phase, action, seen)), pytest.raises(Cancelled if action == "cancel" else
                                                                        RuntimeError, match=phase):
        train_from_files(str(scene["raster"]), **_train_arguments(scene, out, **needs))
    assert seen[-1] == phase, f"the run never reached '{phase}' (phases seen: {seen})"
    assert snapshot(out) == before, "an earlier output changed, or a temporary file was left"
    assert snapshot(scene["folder"]) == inputs


def test_train_disk_full_half_way_through_the_commit_restores_every_file(scene, tmp_path, old_model_bytes,
                                                                         monkeypatch):
    """Model, report and class map already replaced when the confidence cannot be: all three come back."""
    out = tmp_path / "out"
    before = _old_outputs(out, old_model_bytes)
    real_replace = os.replace
    replaced: list[str] = []

    def replace(src, dst, *args, **kwargs):
        if os.path.dirname(os.path.abspath(dst)) == str(out) and not os.path.basename(dst).startswith("."):
            if os.path.basename(dst) == "confidence.tif":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(dst))
            replaced.append(os.path.basename(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ValueError, match=f"Cannot write '{out / 'confidence.tif'}': No space left on device"):
        train_from_files(str(scene["raster"]), **_train_arguments(scene, out))
    assert {"model.rssgl", "training.html", "classes.tif"} <= set(replaced), replaced
    assert snapshot(out) == before


def test_a_successful_rerun_replaces_everything_with_the_old_permissions(scene, tmp_path, old_model_bytes):
    out = tmp_path / "out"
    before = _old_outputs(out, old_model_bytes)
    result = train_from_files(str(scene["raster"]), **_train_arguments(scene, out))
    after = snapshot(out)
    for name in ("model.rssgl", "training.html", "classes.tif", "classes.qml", "confidence.tif"):
        assert after[name] != before[name], f"{name} was not replaced"
    assert after["accuracy.html"] == before["accuracy.html"]
    assert not [n for n in after if n.startswith(".")], "a temporary file was left"
    assert os.stat(result.model_path).st_mode & 0o777 == 0o644


# ------------------------------------------------------------------------------------------------ Assess
@pytest.fixture
def classification(tmp_path) -> Path:
    from rssgl_qgis.io.raster import raster_info
    from rssgl_qgis.io.raster_write import write_classification

    raster = write_raster(tmp_path / "grid.tif", scene_cube(), wavelengths=WAVELENGTHS)
    path = tmp_path / "classified.tif"
    write_classification(path, block_labels(), raster_info(raster), [1, 2, 3, 4], ["water", "forest", "soil", "urban"],
                         [(0, 0, 255), (0, 128, 0), (150, 100, 50), (90, 90, 90)])
    return path


@pytest.mark.parametrize("action", ["fail", "cancel"])
@pytest.mark.parametrize("phase", ASSESS_PHASES)
def test_assess_fault_at_every_phase_keeps_the_last_reports(scene, tmp_path, old_model_bytes, classification, phase,
                                                            action):
    out = tmp_path / "out"
    before = _old_outputs(out, old_model_bytes)
    seen: list[str] = []
    with checkpoint_hook(_injector(phase, action, seen)), pytest.raises(Cancelled if action == "cancel" else
                                                                        RuntimeError, match=phase):
        assess_accuracy(str(classification), reference_vector=str(scene["samples"]), reference_field="class_id",
                        html_out=str(out / "accuracy.html"), csv_out=str(out / "accuracy.csv"))
    assert seen[-1] == phase
    assert snapshot(out) == before


def test_assess_disk_full_on_the_csv_keeps_the_old_html(scene, tmp_path, old_model_bytes, classification, monkeypatch):
    out = tmp_path / "out"
    before = _old_outputs(out, old_model_bytes)
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if os.path.abspath(dst) == str(out / "accuracy.csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ValueError, match="No space left on device"):
        assess_accuracy(str(classification), reference_vector=str(scene["samples"]), reference_field="class_id",
                        html_out=str(out / "accuracy.html"), csv_out=str(out / "accuracy.csv"))
    assert snapshot(out) == before


# ------------------------------------------------------------------------------------------------ kills
_KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    from rssgl_qgis.core.training.classifier import RssglClassifier, TrainingParams
    from rssgl_qgis.io.outputs import checkpoint_hook
    from rssgl_qgis.workflows.train import train_from_files
    from tests.reliability.helpers import TINY_ARCHITECTURE

    real_init = RssglClassifier.__init__
    RssglClassifier.__init__ = lambda self, config_overrides=None, params=None: real_init(
        self, config_overrides={{**TINY_ARCHITECTURE, **(config_overrides or {{}})}}, params=params)
    phase, sig, out = {phase!r}, {sig}, {out!r}

    def die(current=None):
        sys.stdout.flush()
        os.kill(os.getpid(), sig)

    if phase == "mid-commit":  # after the first output was renamed onto its name, before the others
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            real_replace(src, dst, *args, **kwargs)
            if os.path.dirname(os.path.abspath(dst)) == out and not os.path.basename(dst).startswith("."):
                die()

        os.replace = replace
    with checkpoint_hook(lambda current: die() if current == phase else None):
        train_from_files(**{arguments!r}, params=TrainingParams(iterations=1, device="cpu"))
    print("finished without being killed")
""")


@pytest.mark.parametrize(("phase", "sig"), [
    ("training", signal.SIGTERM),
    ("classifying", signal.SIGKILL),
    ("writing the report", signal.SIGTERM),
    ("mid-commit", signal.SIGKILL),
], ids=["training-SIGTERM", "classifying-SIGKILL", "report-SIGTERM", "mid-commit-SIGKILL"])
@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_a_killed_train_leaves_the_last_good_run_after_a_restart(scene, tmp_path, old_model_bytes, phase, sig):
    out = tmp_path / "out"
    before = _old_outputs(out, old_model_bytes)
    arguments = _train_arguments(scene, out)
    arguments.pop("params")
    arguments["raster_path"] = str(scene["raster"])
    script = _KILLED_RUN.format(repo=str(REPO), phase=phase, sig=int(sig), out=str(out), arguments=arguments)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == -sig, done.stdout + done.stderr
    left = set(snapshot(out)) - set(before)
    assert all(name.startswith(".") for name in left), f"the killed run left {sorted(left)} under visible names"
    if phase == "mid-commit":
        assert snapshot(out) != before, "the kill came before the commit had replaced anything"

    # The restart: the next run opens its outputs, which cleans what the killed process left.
    with OutputTransaction(train_outputs(arguments["model_out"], arguments["report_out"],
                                         arguments["classification_out"], arguments["confidence_out"]),
                           train_inputs(arguments["raster_path"], arguments["samples_vector"])):
        pass
    assert snapshot(out) == before, "the killed run's files were not cleaned up, or an old output changed"
