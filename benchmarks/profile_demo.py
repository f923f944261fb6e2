"""Where `make demo`'s training time goes: its Train RSSGL step, in-process, under cProfile (issue 29).

`make demo` (scripts/demo.py) runs Train RSSGL through qgis_process on a 48 x 48 x 60 synthetic scene with 40
iterations and 3-fold cross-validation. This runs the same training (same scene, seed and parameters, through
workflow.train_from_files as the Processing algorithm does) without QGIS, and prints:

* each log and progress message with the seconds since the start (the phases: band check, samples, each
  cross-validation fold, the final fit, saving);
* the functions with the most cumulative CPU time (cProfile with a CPU-time clock, so other jobs on a shared
  machine inflate it less than wall time; torch's threads are counted by the process clock).

    python benchmarks/profile_demo.py --out /tmp/profile_demo [--cv-folds 3] [--iterations 40] [--top 30]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/profile_demo")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--cv-folds", type=int, default=3)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)

    from rssgl_qgis.core.training.classifier import TrainingParams
    from rssgl_qgis.io.scene import write_synthetic_scene
    from rssgl_qgis.workflows.train import train_from_files

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scene = write_synthetic_scene(out / "scene", seed=0, height=48, width=48, bands=60, n_classes=6)
    # what Train RSSGL's processAlgorithm builds from demo.py's parameters (VALIDATION_SHARE=0: "fit" selection)
    params = TrainingParams(selection="fit", iterations=args.iterations, validation_share=0.0, device="auto")
    events: list[tuple[float, str]] = []
    started = time.perf_counter()

    def note(text: str) -> None:
        if not events or events[-1][1] != text:
            events.append((time.perf_counter() - started, text))
            print(f"  {events[-1][0]:7.1f} s  {text}", file=sys.stderr, flush=True)  # live, on a slow machine

    profiler = cProfile.Profile(time.process_time)
    cpu = time.process_time()
    profiler.enable()
    train_from_files(scene["cube"], samples_vector=scene["polygons"], class_field="class_id", params=params,
                     cv_folds=args.cv_folds, model_out=str(out / "model.rssgl"),
                     report_out=str(out / "training.html"),
                     progress=lambda percent, message: note(f"{percent:5.1f} % {message}"),
                     log=lambda level, message: note(f"{level}: {message[:150]}"))
    profiler.disable()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"Train RSSGL as in make demo ({args.iterations} iterations, {args.cv_folds} folds): wall {wall:.1f} s, "
          f"CPU {cpu:.1f} s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB, "
          f"load average {os.getloadavg()[0]:.2f}")
    for t, text in events:
        print(f"  {t:7.1f} s  {text}")
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(args.top)
    print(stream.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
