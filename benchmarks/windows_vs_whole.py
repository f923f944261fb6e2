"""Table: the suite's default (and RSSGL alone) trained on whole scenes against windows, cell by cell.

    python benchmarks/windows_vs_whole.py benchmarks/results/suite_h200_windows_baseline_whole.json \\
        benchmarks/results/suite_h200_windows.json,benchmarks/results/suite_h200_windows_b.json,...

Only the (scene, protocol, seed) rows present in both are compared; a later windows file's row replaces an
earlier one's.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def main(argv: list[str]) -> int:
    whole_file, windows_files = argv[0], argv[1].split(",")

    def key(r):
        return r["scene"], r["protocol"], r["seed"]

    whole = {key(r): r for r in json.load(open(whole_file))["rows"]}
    windows = {}
    for f in windows_files:
        windows.update({key(r): r for r in json.load(open(f))["rows"]})
    cells: dict = {}
    for k, r in windows.items():
        if k in whole:
            a, b = whole[k]["results"], r["results"]
            cells.setdefault(k[:2], []).append((a["default"]["oa"], b["default"]["oa"], a["rssgl"]["oa"], b["rssgl"]["oa"]))
    print("| scene | protocol | seeds | default, whole | default, windows | diff | RSSGL alone, whole | RSSGL alone, windows | diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for k, v in sorted(cells.items()):
        a = np.array(v)
        m = a.mean(axis=0)
        print(f"| {k[0]} | {k[1]} | {len(v)} | {m[0]:.2f} | {m[1]:.2f} | {m[1] - m[0]:+.2f} | {m[2]:.2f} | {m[3]:.2f} "
              f"| {m[3] - m[2]:+.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
