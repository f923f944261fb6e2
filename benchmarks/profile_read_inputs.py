"""Where Train RSSGL's time and memory go between the band check and stage one's band statistics (issue 29).

Runs workflows.train.train_from_files (ITERATIONS=1, no cross-validation, RSSGL stage "never", CPU) on
bench_band_scan.py's 20000 x 20000 x 204 VRT with its 60 points, under cProfile, until the spectral fit's band
statistics begin (``WindowedScene.band_statistics`` is replaced by a stop there), for this checkout and, with
``--baseline ROOT``, for another one (e.g. ``git worktree add /tmp/base HEAD`` before a change), each in its own
process, in the same run. Per tree: each message with its time, the seconds the run was silent at most, the
peak RSS (ru_maxrss) and the Python stack at the sampled peak (RSS read every 20 ms), and the functions with the
most cumulative time. ``--stub-statistics`` returns zeros/ones from the band statistics instead and profiles
the rest of stage one (the windows around the samples, the spectral model's fit).

    python benchmarks/bench_band_scan.py --work /tmp/bandscan/bench --cases ""   # builds the VRT and points
    python benchmarks/profile_read_inputs.py --work /tmp/bandscan/bench --baseline /tmp/base_read
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class _Reached(Exception):
    """Raised where the band statistics begin: the end of the profiled span."""


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(root: str, work: str, stub: bool, top: int) -> None:
    import cProfile
    import io
    import pstats

    import numpy as np

    sys.path.insert(0, root)
    from rssgl_qgis.core.training.classifier import TrainingParams
    from rssgl_qgis.core.training.windowed_scene import WindowedScene
    from rssgl_qgis.workflows.train import train_from_files

    events: list[tuple[float, str]] = []
    started = time.perf_counter()

    def note(text: str) -> None:
        events.append((time.perf_counter() - started, text))

    def reached(self, *args, **kwargs):
        note("(band statistics begin: profile stops)")
        raise _Reached()

    def stubbed(self, *args, **kwargs):
        note("(band statistics stubbed)")
        return np.zeros(self.bands), np.ones(self.bands), self.pixels

    WindowedScene.band_statistics = stubbed if stub else reached
    peak = {"rss": 0, "stack": []}
    main = threading.main_thread().ident
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            rss = _rss_bytes()
            if rss > peak["rss"]:
                frame = sys._current_frames().get(main)
                peak.update(rss=rss, stack=traceback.format_stack(frame)[-4:] if frame else [])
            time.sleep(0.02)

    threading.Thread(target=poll, daemon=True).start()
    profile = cProfile.Profile()
    out = tempfile.mkdtemp(prefix="profile_read_")
    started = time.perf_counter()
    profile.enable()
    try:
        train_from_files(str(Path(work) / "salinas_a_20000_empty.vrt"), samples_vector=str(Path(work) / "points.gpkg"),
                         class_field="class_id", params=TrainingParams(iterations=1, device="cpu", seed=0),
                         cv_folds=0, rssgl_stage="never", model_out=os.path.join(out, "m.rssgl"),
                         progress=lambda percent, message: note(f"progress {percent:.1f}: {message}"),
                         log=lambda level, message: note(f"{level}: {message}"))
    except _Reached:
        pass
    finally:
        profile.disable()
        done.set()
    stats = io.StringIO()
    pstats.Stats(profile, stream=stats).sort_stats("cumulative").print_stats(top)
    times = [t for t, _ in events]
    print(json.dumps({"seconds": time.perf_counter() - started,
                      "longest_silence": max((b - a for a, b in zip([0.0, *times], times, strict=False)), default=0.0),
                      "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                      "peak_stack": "".join(peak["stack"]), "events": [f"{t:7.2f} s  {m[:130]}" for t, m in events],
                      "profile": stats.getvalue(), "load_average": os.getloadavg()[0]}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/bench_band_scan", help="bench_band_scan.py's folder (VRT, points)")
    parser.add_argument("--baseline", help="also profile the rssgl_qgis of this checkout")
    parser.add_argument("--stub-statistics", action="store_true", help="profile stage one past its band statistics")
    parser.add_argument("--top", type=int, default=25, help="functions listed per tree")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.work, args.stub_statistics, args.top)
        sys.stdout.flush()
        os._exit(0)  # torch's threads can abort the interpreter's teardown after a stage-one fit
    print(f"load average {os.getloadavg()[0]:.2f} at the start, {os.cpu_count()} CPUs")
    for name, root in (("ours", str(ROOT)), ("baseline", args.baseline)):
        if root is None:
            continue
        command = [sys.executable, __file__, "--child", str(Path(root).resolve()), "--work", args.work,
                   "--top", str(args.top)] + (["--stub-statistics"] if args.stub_statistics else [])
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{name}: failed (exit status {done.returncode})\n{done.stderr[-3000:]}")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"\n== {name} ({root}): {result['seconds']:.1f} s, longest silence {result['longest_silence']:.2f} s, "
              f"peak RSS {result['peak_rss_gib']:.2f} GiB, load average {result['load_average']:.2f}")
        print("\n".join(e for e in result["events"] if "checking the bands" not in e))
        print(f"-- the sampled RSS peak was at:\n{result['peak_stack']}")
        print(result["profile"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
