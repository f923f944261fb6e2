"""Where a CPU forward of RSSGL spends its time, module by module (issue 15).

One 192 x 192 x 200 window (the CPU default read window), 16 classes, kernel 3x5x5, random weights,
2 threads, no gradients; the second of two runs is printed (seconds per module).

    python benchmarks/profile_cpu_forward.py
"""
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rssgl_qgis.core.network.model import RSSGL, RssglConfig  # noqa: E402


def main() -> int:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    net = RSSGL(RssglConfig(in_bands=200, num_classes=16, kernel=(3, 5, 5))).eval()
    x = torch.randn(1, 200, 192, 192)
    times: dict[str, float] = {}

    def timed(name, f, *a):
        t = time.perf_counter()
        r = f(*a)
        times[name] = times.get(name, 0.0) + time.perf_counter() - t
        return r

    with torch.no_grad():
        for _ in range(2):
            times.clear()
            y = timed("stem", net.stem, x)
            skips = []
            for i, stage in enumerate(net.stages):
                if i:
                    y = timed(f"down{i}", net.downs[i - 1], y)
                n, c, h, w = y.shape
                lstm = timed(f"convlstm{i + 1}", stage.lstm, y.reshape(n, 8, c // 8, h, w)).reshape(n, -1, h, w)
                y = timed(f"block{i + 1}", lambda t, s=stage: F.relu(s.norm(s.block(t))), lstm)
                skips.append(y)
            out = None
            for i, (lateral, skip) in enumerate(zip(net.laterals, reversed(skips), strict=True)):
                inner = timed("decoder", lateral, skip)
                if out is not None:
                    inner = inner + F.interpolate(out, scale_factor=2.0, mode="nearest")
                out = timed("decoder", net.fuse[i], inner)
            timed("classifier", net.classifier, out)
    total = sum(times.values())
    for k, v in times.items():
        print(f"{k:12s} {v:7.3f} s  {100 * v / total:5.1f} %")
    print(f"{'total':12s} {total:7.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
