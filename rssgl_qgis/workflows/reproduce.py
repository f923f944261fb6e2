"""Reproduce the RSSGL benchmark protocol on the standard scenes.

    python -m rssgl_qgis.workflows.reproduce --scene salinas_a --data DIR --percent 1 \
        --seeds 2333,1,2,3,4 --selection validation --out results.json

For each seed: split the ground truth with ``percent_split(seed=seed)`` (the authors' split seed is
2333), train with torch seeded by the same seed (model initialisation and minibatch draws), classify
the whole scene, and score the test pixels (all labelled pixels not used for training). Selection
"paper" is the authors' protocol (early stopping on TEST accuracy) and is labelled as such in every
output; "validation" selects on a validation split carved from the training pixels. GPU runs are
not bit-reproducible (cuDNN picks non-deterministic kernels), CPU runs are.

Prints a results table to stdout (progress goes to stderr) and writes everything to --out as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.data.datasets import SCENES, load_scene
from ..core.data.sampling import class_counts, percent_split
from ..core.metrics import accuracy_summary, confusion_matrix
from ..core.training.classifier import PAPER_LABEL, RssglClassifier, TrainingParams

__all__ = ["main", "run_seed", "summarise", "DEFAULT_PERCENT"]

DEFAULT_PERCENT = {"indian_pines": 5.0, "salinas": 1.0, "pavia_university": 1.0, "salinas_a": 1.0}


class _ProgressBar:
    """A one-line text progress bar on stderr (no dependency)."""

    def __init__(self, prefix: str, stream=sys.stderr, width: int = 30):
        self.prefix, self.stream, self.width = prefix, stream, width
        self.last = ""

    def __call__(self, percent: float, message: str) -> None:
        if message.startswith("epoch"):
            self.last = message
        filled = int(self.width * percent / 100)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.prefix} [{bar}] {percent:5.1f}% {self.last[:70]:70s}")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def run_seed(scene, seed: int, percent: float, params: TrainingParams, config_overrides: dict, quiet=False) -> dict:
    """Train and evaluate one split; returns the run's record (metrics as percentages)."""
    train, test = percent_split(scene.labels, percent, seed=seed)
    params = TrainingParams(**{**params.to_dict(), "seed": seed})
    bar = None if quiet else _ProgressBar(f"seed {seed:>5}")
    t0 = time.perf_counter()
    clf = RssglClassifier(config_overrides=config_overrides, params=params).fit(
        scene.cube, train, eval_labels=test, class_names=scene.class_names, class_colors=scene.class_colors,
        progress=bar,
    )
    fit_seconds = time.perf_counter() - t0
    pred = clf.predict(scene.cube)
    total_seconds = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    cm = confusion_matrix(test[test > 0], pred[test > 0], scene.class_values)
    s = accuracy_summary(cm)
    return {
        "seed": seed,
        "train_counts": list(class_counts(train).values()),
        "test_pixels": int((test > 0).sum()),
        "oa": 100 * s["oa"],
        "aa": 100 * s["aa"],
        "kappa": 100 * s["kappa"],
        "per_class": [100 * v for v in s["producers"]],
        "selection": clf.selection_,
        "selection_note": clf.selection_note_,
        "best_epoch": clf.best_epoch_,
        "epochs": len(clf.history_),
        "iterations_run": clf.history_[-1]["iteration"] if clf.history_ else 0,
        "stopped_early": clf.stopped_early_,
        "train_seconds": clf.train_seconds_,
        "fit_seconds": fit_seconds,
        "total_seconds": total_seconds,
        "seconds_per_iteration": clf.train_seconds_ / max(1, clf.history_[-1]["iteration"]),
        "confusion_matrix": cm.tolist(),
        "history": clf.history_,
        "device": clf.device_description_,
    }


def summarise(runs: list[dict]) -> dict[str, Any]:
    """Mean and (population, ddof=0) standard deviation over runs."""
    out: dict[str, Any] = {}
    for key in ("oa", "aa", "kappa", "train_seconds", "seconds_per_iteration"):
        vals = np.array([r[key] for r in runs], dtype=np.float64)
        out[f"{key}_mean"] = float(vals.mean())
        out[f"{key}_std"] = float(vals.std())
    per_class = np.array([r["per_class"] for r in runs], dtype=np.float64)
    out["per_class_mean"] = per_class.mean(axis=0).tolist()
    out["per_class_std"] = per_class.std(axis=0).tolist()
    return out


def _table(result: dict) -> str:
    lines = [f"RSSGL on {result['scene']} ({result['percent']:g}% per class), selection: {result['selection_label']}"]
    lines.append(f"device: {result['device']}")
    lines.append(f"{'seed':>6} {'OA':>7} {'AA':>7} {'kappa':>7} {'best ep':>8} {'iters':>6} {'seconds':>8}")
    for r in result["runs"]:
        lines.append(
            f"{r['seed']:>6} {r['oa']:7.2f} {r['aa']:7.2f} {r['kappa']:7.2f} {r['best_epoch']:>8} "
            f"{r['iterations_run']:>6} {r['train_seconds']:8.1f}"
        )
    s = result["summary"]
    lines.append(
        f"{'mean':>6} {s['oa_mean']:7.2f} {s['aa_mean']:7.2f} {s['kappa_mean']:7.2f} {'':>8} {'':>6} "
        f"{s['train_seconds_mean']:8.1f}"
    )
    lines.append(f"{'std':>6} {s['oa_std']:7.2f} {s['aa_std']:7.2f} {s['kappa_std']:7.2f}")
    lines.append("per-class accuracy (mean +- std over seeds):")
    for name, value, m, sd in zip(
        result["class_names"], result["class_values"], s["per_class_mean"], s["per_class_std"], strict=True
    ):
        lines.append(f"  {value:>3} {name:<28} {m:7.2f} +- {sd:.2f}")
    return "\n".join(lines)


def _parse_kernel(text: str) -> tuple[int, int, int]:
    try:
        k = tuple(int(v) for v in text.lower().replace(",", "x").split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"kernel must look like 3x5x5, got '{text}'") from exc
    if len(k) != 3:
        raise argparse.ArgumentTypeError(f"kernel must have three sizes like 3x5x5, got '{text}'")
    return k


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m rssgl_qgis.workflows.reproduce", description=__doc__.split("\n\n")[0])
    ap.add_argument("--scene", required=True, choices=sorted(SCENES))
    ap.add_argument("--data", required=True, help="folder with the scene's .mat files (or a <scene>/ subfolder)")
    ap.add_argument("--percent", type=float, default=None, help="training pixels per class, in %% (default: paper's)")
    ap.add_argument("--seeds", default="2333", help="comma-separated split seeds (torch is seeded with the same)")
    ap.add_argument("--selection", choices=("validation", "paper", "loss"), default="validation")
    ap.add_argument("--iterations", type=int, default=None, help="default: the paper's for the scene")
    ap.add_argument("--patience", type=int, default=None, help="early-stopping patience in epochs")
    ap.add_argument("--lambda", dest="stat_weight", type=float, default=None, help="statistical-loss weight")
    ap.add_argument("--kernel", type=_parse_kernel, default=None, help="ConvLSTM kernel, e.g. 3x5x5")
    ap.add_argument("--validation-share", type=float, default=0.2)
    ap.add_argument("--device", default="auto", help="auto | cuda | cpu")
    ap.add_argument("--amp", choices=("auto", "off"), default="auto", help="bf16 autocast on CUDA (auto) or off")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--random-cube", action="store_true", help="random cube of the scene's shape (smoke test)")
    ap.add_argument("--block-channels", default=None, help="smaller network for smoke tests, e.g. 16,16,16,16")
    ap.add_argument("--inner-dim", type=int, default=None, help="FPN width (default 128)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    spec = SCENES[args.scene]
    percent = args.percent if args.percent is not None else DEFAULT_PERCENT[args.scene]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not seeds:
        print("error: --seeds lists no seed", file=sys.stderr)
        return 2
    params = TrainingParams(
        iterations=args.iterations or spec.iterations,
        patience_epochs=args.patience or spec.patience_epochs,
        stat_loss_weight=spec.stat_loss_weight if args.stat_weight is None else args.stat_weight,
        selection=args.selection,
        validation_share=args.validation_share,
        device=args.device,
        amp=args.amp,
    )
    overrides: dict[str, Any] = {"kernel": args.kernel or spec.kernel}
    if args.block_channels:
        overrides["block_channels"] = tuple(int(v) for v in args.block_channels.split(","))
    if args.inner_dim:
        overrides["inner_dim"] = args.inner_dim
    try:
        scene = load_scene(args.scene, args.data, random_cube=args.random_cube)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    runs: list[dict] = []
    for seed in seeds:
        runs.append(run_seed(scene, seed, percent, params, overrides, quiet=args.quiet))
        result = _result(args, percent, params, overrides, scene, runs)
        if args.out:  # after every seed, so an interrupted run keeps what it finished
            Path(args.out).write_text(json.dumps(result, indent=1))
    print(_table(result))
    return 0


def _result(args, percent, params, overrides, scene, runs) -> dict[str, Any]:
    return {
        "scene": args.scene,
        "percent": percent,
        "random_cube": bool(args.random_cube),
        "selection": args.selection,
        "selection_label": PAPER_LABEL if args.selection == "paper" else f"{args.selection} (no test pixels)",
        "command": "python -m rssgl_qgis.workflows.reproduce " + " ".join(args.argv),
        "params": params.to_dict(),
        "config_overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
        "class_values": [int(v) for v in scene.class_values],
        "class_names": scene.class_names,
        "device": runs[0]["device"] if runs else "",
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "runs": runs,
        "summary": summarise(runs),
    }


if __name__ == "__main__":
    sys.exit(main())
