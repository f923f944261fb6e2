"""The epoch loop of whole-scene training: run the compiled step, read its history once per epoch, stop early.

Why apart from core/training/classifier.py: the loop is the part of training that talks to the user (progress,
log lines, cancellation) and decides when to stop, and it is the same for every selection mode;
``RssglClassifier.fit`` only builds the step (core/network/accel.py) and hands it here.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from ..errors import Cancelled
from ..network.accel import HISTORY_COLUMNS, TrainStep
from .params import TrainingParams

__all__ = ["run_epochs", "ProgressFn", "StopFn"]

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]


def run_epochs(step: TrainStep, p: TrainingParams, progress: ProgressFn | None, should_stop: StopFn | None,
               t0: float) -> tuple[list[dict[str, Any]], int, bool]:
    """Run ``step`` for all iterations; read its history once per epoch (the only host sync).

    Returns (history, best epoch, stopped early). Each evaluation scores the weights after
    the epoch's last update, from the next iteration's forward pass (see accel.TrainStep).
    """
    history: list[dict[str, Any]] = []
    best_epoch = 0
    t_epoch = t0
    for it in range(p.iterations + 1):  # the extra run only scores the final weights
        if should_stop is not None and should_stop():
            raise Cancelled("Training was cancelled.")
        step.run()
        if progress is not None and it < p.iterations:
            progress(100.0 * (it + 1) / p.iterations, f"iteration {it + 1}/{p.iterations}")
        if not step.is_evaluation(it):
            continue
        row = dict(zip(HISTORY_COLUMNS, step.history[len(history)].tolist(), strict=True))
        now = time.perf_counter()
        entry: dict[str, Any] = {
            "epoch": len(history) + 1,
            "iteration": it,
            "loss": row["loss"],
            "lr": row["lr"],
            "seconds": now - t_epoch,
        }
        t_epoch = now
        if step.val_pixels is not None:
            entry["val_oa"] = row["val_oa"]
            entry["val_loss"] = row["val_loss"]
        if step.eval_pixels is not None:
            entry["test_oa"] = row["test_oa"]
        if not math.isfinite(row["loss"]):
            raise RuntimeError(
                f"Training diverged by iteration {it} (loss {row['loss']}); lower the learning rate or "
                "the statistical-loss weight, or check the raster for extreme values."
            )
        entry["selected"] = bool(row["selected"])
        history.append(entry)
        if entry["selected"]:
            best_epoch = entry["epoch"]
        msg = f"epoch {entry['epoch']}: loss {entry['loss']:.4f}"
        if "val_oa" in entry:
            what = "training-pixel OA" if step.selection == "fit" else "validation OA"
            msg += f", {what} {100 * entry['val_oa']:.2f}%"
        if "test_oa" in entry:
            msg += f", test OA {100 * entry['test_oa']:.2f}%"
        log.info(msg)
        if progress is not None:
            progress(100.0 * min(it, p.iterations) / p.iterations, msg)
        if row["since_best"] >= (p.fit_patience_epochs if step.selection == "fit" else p.patience_epochs):
            return history, best_epoch, True
    return history, best_epoch, False
