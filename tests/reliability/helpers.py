"""Shared helpers for the reliability tests: tiny trained models, folder snapshots, input hashes,
and stand-ins for faults (disk full, a path that cannot be written).

Nothing here imports qgis, so both tests/reliability (engine + I/O level) and
tests/qgis/test_reliability_*.py (Processing level) can use it.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import numpy as np

#: The smallest RSSGL that keeps the real architecture (every stage width a multiple of 16).
TINY_ARCHITECTURE = {"block_channels": (16, 16, 16, 16), "inner_dim": 16}


def tiny_cube(bands: int = 4, height: int = 16, width: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A (B, H, W) float32 cube with two separable classes (left / right half) and its label map."""
    rng = np.random.default_rng(seed)
    cube = rng.normal(0.0, 0.1, size=(bands, height, width)).astype(np.float32)
    cube[:, :, width // 2 :] += 1.0
    labels = np.zeros((height, width), dtype=np.int32)
    labels[2:-2, 1:3] = 1
    labels[2:-2, -3:-1] = 2
    return cube, labels


def train_tiny_classifier(bands: int = 4, iterations: int = 2):
    """A genuinely trained (few iterations, CPU) RssglClassifier on ``tiny_cube``: seconds, not minutes."""
    from rssgl_qgis.core.training import RssglClassifier, TrainingParams

    cube, labels = tiny_cube(bands)
    params = TrainingParams(iterations=iterations, epoch_iterations=1, device="cpu", selection="loss")
    clf = RssglClassifier(config_overrides=dict(TINY_ARCHITECTURE), params=params)
    return clf.fit(cube, labels, class_names=["left", "right"], class_colors=[(255, 0, 0), (0, 0, 255)])


def snapshot(folder) -> dict[str, str]:
    """{relative path: sha256} of every file under ``folder``: compare before/after a failed run."""
    folder = Path(folder)
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder the test process cannot create files in.

    As a normal user: a chmod 0555 folder. As root (CI containers), chmod does not stop writes, so
    the "folder" is a path under a regular file, which no user can create files in (ENOTDIR).
    """
    if running_as_root():
        blocker = tmp_path / "not_a_folder"
        blocker.write_text("a regular file standing where the output folder should be\n")
        return blocker / "out"
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def disk_full(*args, **kwargs):
    """Drop-in for os.replace / a writer that fails the way a full disk does."""
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
