"""`make demo` with the product's RSSGL stage ("auto") against the path before issue 29 ("always"), in one run.

Each variant is ``scripts/demo.py`` (synthetic 48 x 48 x 60 scene -> Train RSSGL -> Classify with RSSGL -> Assess
accuracy, each a qgis_process call) in its own process group, started from a fresh output folder (a fresh QGIS
profile) and stopped after ``--limit`` seconds. Printed per variant: wall time, the CPU time of the demo and its
qgis_process calls, their peak RSS (the largest process's ru_maxrss), the demo's own lines (stage, OA), and the
load average. On a shared 2-core machine the wall times are upper bounds.

    python benchmarks/bench_demo.py --out /tmp/bench_demo --json /tmp/bench_demo.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_demo(stage: str, out: Path, limit: float) -> dict:
    """One ``scripts/demo.py --rssgl-stage stage`` with `make demo`'s environment, stopped after ``limit`` s."""
    shutil.rmtree(out, ignore_errors=True)
    site = next(str(p) for p in (ROOT / ".venv" / "lib").glob("python3*/site-packages"))
    env = dict(os.environ, PYTHONPATH=f"{site}:{ROOT}", QT_QPA_PLATFORM="offscreen")
    command = [sys.executable, str(ROOT / "scripts" / "demo.py"), "--out", str(out), "--rssgl-stage", stage]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=limit)
        finished = process.returncode == 0
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the demo and its qgis_process call
        output, _ = process.communicate()
        finished = False
    seconds = time.perf_counter() - started
    return {"finished": finished, "returncode": process.returncode, "seconds": seconds,
            "lines": [line for line in output.splitlines() if line.strip()][-12:]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/bench_demo")
    ap.add_argument("--stages", default="auto,always", help="RSSGL stages to run, in order")
    ap.add_argument("--limit", type=float, default=600.0, help="seconds one demo may run")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start; limit {args.limit:.0f} s")
    results = {}
    for stage in [s for s in args.stages.split(",") if s]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = results[stage] = run_demo(stage, Path(args.out) / stage, args.limit)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        r["cpu_seconds"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        r["peak_rss_gib"] = after.ru_maxrss / 2**20  # the largest child so far (the runs go from small to large)
        r["load_average"] = os.getloadavg()[0]
        state = "done" if r["finished"] else (f"stopped at the {args.limit:.0f} s limit" if r["returncode"] in
                                              (-9, None) else f"failed ({r['returncode']})")
        print(f"{stage:>7}: {state}, wall {r['seconds']:.1f} s, CPU {r['cpu_seconds']:.1f} s, peak RSS "
              f"{r['peak_rss_gib']:.2f} GiB, load average {r['load_average']:.2f}")
        for line in r["lines"]:
            print(f"         {line}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
