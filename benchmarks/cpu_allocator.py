"""The CPU ConvLSTM of layer-wise classification (issue 15): per-pixel time of ``forward`` and ``forward_lean``,
with and without ``host_memory.reuse_freed_memory``, in the main thread and in a worker thread (where QGIS
runs a QgsTask), and each variant's peak memory per tile pixel (measured in a fresh child process).

    python benchmarks/cpu_allocator.py --tiles 208,256

Stage-1 ConvLSTM of the default network (96 channels: 8 steps x depth 12), random input, 2 threads.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _lstm():
    import torch

    from rssgl_qgis.core.network.model import RSSGL, RssglConfig

    torch.manual_seed(0)
    return RSSGL(RssglConfig(in_bands=200, num_classes=16)).eval().stages[0].lstm


def _time(lstm, side: int, lean: bool, reuse: bool) -> float:
    import torch

    from rssgl_qgis.core.prediction.host_memory import reuse_freed_memory

    x = torch.randn(1, 8, 12, side, side)
    f = lstm.forward_lean if lean else lstm
    with torch.no_grad(), (reuse_freed_memory() if reuse else _null()):
        f(x)  # warm-up
        t0 = time.perf_counter()
        for _ in range(2):
            f(x)
        return (time.perf_counter() - t0) / 2 / side**2 * 1e6


class _null:
    def __enter__(self):
        return False

    def __exit__(self, *a):
        return False


def _memory_child(side: int, lean: bool) -> None:
    import torch

    lstm = _lstm()
    x = torch.randn(1, 8, 12, side, side)
    base = _resident_kib()
    Path("/proc/self/clear_refs").write_text("5")  # restart the peak (VmHWM) from here
    with torch.no_grad():
        (lstm.forward_lean if lean else lstm)(x)
    print(json.dumps((_peak_kib() - base) * 1024 / side**2))


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


def _resident_kib() -> int:
    return _status_kib("VmRSS")


def _peak_kib() -> int:
    return _status_kib("VmHWM")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", default="208,256", help="tile sides in pixels (the ConvLSTM's input crops)")
    ap.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    if args.memory_child:
        _memory_child(int(args.memory_child[0]), args.memory_child[1] == "lean")
        return 0
    lstm = _lstm()
    print("| tile | ConvLSTM | thread | freed memory reused | us per pixel |")
    print("|---:|---|---|---|---:|")
    for side in (int(v) for v in args.tiles.split(",")):
        for lean in (False, True):
            for where in ("main", "worker"):
                for reuse in (False, True):
                    out = []
                    if where == "main":
                        out.append(_time(lstm, side, lean, reuse))
                    else:
                        t = threading.Thread(target=lambda o=out, s=side, le=lean, r=reuse: o.append(_time(lstm, s, le, r)))
                        t.start()
                        t.join()
                    print(f"| {side} | {'forward_lean' if lean else 'forward'} | {where} | {'yes' if reuse else 'no'} | "
                          f"{out[0]:.2f} |", flush=True)
    print("\n| tile | ConvLSTM | peak memory per tile pixel (fresh process) |")
    print("|---:|---|---:|")
    for side in (int(v) for v in args.tiles.split(",")):
        for kind in ("forward", "lean"):
            res = subprocess.run([sys.executable, __file__, "--memory-child", str(side), kind], capture_output=True,
                                 text=True, check=True)
            print(f"| {side} | {'forward_lean' if kind == 'lean' else 'forward'} | "
                  f"{float(res.stdout.strip()) / 1024:.1f} KB |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
