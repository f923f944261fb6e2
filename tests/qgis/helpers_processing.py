"""Shared pieces of the Processing tests: a tiny synthetic scene, a trained model, qgis_process runner.

Training is the slow part (seconds per iteration on 2 CPU cores), so one model is trained per test
session (``trained_model``) and reused by the classify, accuracy and style tests; the qgis_process
and modeler tests train their own (they check those paths run end to end).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from tests.qgis.conftest import REPO_ROOT

QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"
#: A scene small enough for CPU tests, big enough for the network's 16-pixel padding and 4 classes.
SCENE_KWARGS = dict(height=48, width=48, bands=40, n_classes=4, polygons_per_class=2, field_size=16.0)
#: Training iterations in tests: enough for two epochs (the report plots a line), far from convergence.
TEST_ITERATIONS = 20

_CACHE: dict[str, object] = {}


@dataclass
class Scene:
    """Paths of the synthetic scene files."""

    cube: str
    labels: str
    polygons: str
    folder: str


def synthetic_scene(folder: str) -> Scene:
    """Write (once per session) the synthetic scene into ``folder``."""
    if "scene" not in _CACHE:
        from rssgl_qgis.io.scene import write_synthetic_scene

        paths = write_synthetic_scene(folder, seed=0, **SCENE_KWARGS)
        _CACHE["scene"] = Scene(paths["cube"], paths["labels"], paths["polygons"], folder)
    return _CACHE["scene"]  # type: ignore[return-value]


class RecordingFeedback:
    """Factory for a QgsProcessingFeedback that keeps every message (tests check what users see)."""

    @staticmethod
    def create():
        from qgis.core import QgsProcessingFeedback

        class _Recording(QgsProcessingFeedback):
            def __init__(self) -> None:
                super().__init__()
                self.infos: list[str] = []
                self.warnings: list[str] = []
                self.errors: list[str] = []
                self.progress_values: list[float] = []
                self.progressChanged.connect(self.progress_values.append)

            def pushInfo(self, info: str) -> None:  # noqa: N802 (QGIS API name)
                self.infos.append(info)
                super().pushInfo(info)

            def pushWarning(self, warning: str) -> None:  # noqa: N802
                self.warnings.append(warning)
                super().pushWarning(warning)

            def reportError(self, error: str, fatalError: bool = False) -> None:  # noqa: N802, N803
                self.errors.append(error)
                super().reportError(error, fatalError)

        return _Recording()


def run_algorithm(algorithm_id: str, parameters: dict, context=None, feedback=None) -> tuple[dict, object]:
    """Run through processing.run; returns (results, feedback)."""
    import processing

    feedback = feedback or RecordingFeedback.create()
    results = processing.run(algorithm_id, parameters, context=context, feedback=feedback)
    return results, feedback


def train_parameters(scene: Scene, out: str, **overrides) -> dict:
    """Train RSSGL parameters for the test scene, writing into folder ``out``.

    RSSGL_STAGE is "Always": the tests of this model check RSSGL's epochs, validation and tiled maps, and the
    default ("Automatic") gives the spectral model's map only (stage one) on the CPU (issue 29)."""
    from rssgl_qgis.workflows.stages import RSSGL_STAGES

    parameters = {
        "INPUT": scene.cube, "SAMPLES": scene.polygons, "CLASS_FIELD": "class_id",
        "VALIDATION_SHARE": 0.2, "ITERATIONS": TEST_ITERATIONS, "DEVICE": 2, "SEED": 1, "CROSS_VALIDATION": 0,
        "RSSGL_STAGE": RSSGL_STAGES.index("always"),
        "OUTPUT_MODEL": os.path.join(out, "model.rssgl"),
        "OUTPUT_CLASSIFICATION": os.path.join(out, "train_classes.tif"),
        "OUTPUT_CONFIDENCE": os.path.join(out, "train_confidence.tif"),
        "OUTPUT_REPORT": os.path.join(out, "training.html"),
    }
    parameters.update(overrides)
    return parameters


def trained_model(folder: str) -> tuple[dict, object, Scene]:
    """Train once per session through processing.run; returns (results, feedback, scene)."""
    if "trained" not in _CACHE:
        scene = synthetic_scene(os.path.join(folder, "scene"))
        out = os.path.join(folder, "train")
        os.makedirs(out, exist_ok=True)
        results, feedback = run_algorithm("rssgl:train", train_parameters(scene, out))
        _CACHE["trained"] = (results, feedback, scene)
    return _CACHE["trained"]  # type: ignore[return-value]


def venv_site_packages() -> list[str]:
    return [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)]


def qgis_process_env(home: str) -> dict:
    """Environment for qgis_process with the repository's plugin enabled in a throw-away profile.

    QGIS_PLUGINPATH points to a folder holding rssgl_qgis/, made of symlinks to the repository's
    package files plus metadata.txt, resources/ and i18n/ (the layout of the installed zip), so
    the tests run the working tree's code; PYTHONPATH lets Debian's python see the venv's torch.
    """
    plugins = os.path.join(home, "plugins")
    folder = os.path.join(plugins, "rssgl_qgis")
    os.makedirs(folder, exist_ok=True)
    package = os.path.join(REPO_ROOT, "rssgl_qgis")
    links = {name: os.path.join(package, name) for name in os.listdir(package) if name != "__pycache__"}
    links.update({name: os.path.join(REPO_ROOT, name) for name in ("metadata.txt", "resources", "i18n")})
    for name, target in links.items():
        if os.path.exists(target) and not os.path.lexists(os.path.join(folder, name)):
            os.symlink(target, os.path.join(folder, name))
    env = dict(os.environ)
    env.update(HOME=home, QT_QPA_PLATFORM="offscreen", QGIS_PLUGINPATH=plugins)
    env["PYTHONPATH"] = os.pathsep.join([*venv_site_packages(), REPO_ROOT])
    enabled = subprocess.run([QGIS_PROCESS, "plugins", "enable", "rssgl_qgis"], env=env, capture_output=True,
                             text=True, timeout=180)
    if enabled.returncode != 0:
        raise RuntimeError(f"qgis_process could not enable the plugin: {enabled.stdout}\n{enabled.stderr}")
    return env


def qgis_process_run(env: dict, algorithm_id: str, parameters: dict, timeout: int = 600) -> dict:
    """``qgis_process --json run ALG -- KEY=VALUE ...``; returns the parsed JSON (raises with the logs)."""
    args = [QGIS_PROCESS, "--json", "run", algorithm_id, "--"]
    args += [f"{key}={value}" for key, value in parameters.items()]
    completed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    if completed.returncode != 0:
        raise AssertionError(f"qgis_process failed ({completed.returncode}):\n{completed.stdout[-3000:]}\n"
                             f"{completed.stderr[-3000:]}")
    return json.loads(completed.stdout[completed.stdout.index("{"):])
