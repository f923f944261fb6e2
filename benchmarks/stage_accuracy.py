"""The default's accuracy before and after the map in two stages (issue 29), from the accuracy suite's own runs.

Since issue 29, Train RSSGL's default (RSSGL stage "Automatic") trains RSSGL where it is fast (a CUDA GPU) and
maps with stage one, the spectral model alone, on a CPU; the dock shows stage one first everywhere and replaces
it with RSSGL's map when stage two finishes and its cross-validation gives RSSGL a vote. Stage one's model is
exactly the spectral model the suite records as ``spectral`` (the same fit_spectral on the same training pixels,
seed and unlabelled pool: core/training/stage_one.py and RssglClassifier.fit), so no new training is needed to
score it: this script reads suite JSON files and prints, per scene x protocol, the default as the suite ran it
(both stages: what a GPU, or a CPU user who asks for RSSGL, gets), stage one (what a default CPU run now maps),
their paired difference, and the best of the suite's baselines where the file has them.

    python benchmarks/stage_accuracy.py benchmarks/results/suite_h100_random_n.json \
        benchmarks/results/suite_h100_polygons_n.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

BASELINES = ("svm", "rf", "enmapbox")


def table(rows: list[dict]) -> str:
    cells = sorted({(r["scene"], r["protocol"]) for r in rows})
    out = ["| scene | protocol | seeds | default, both stages (as run) | stage one (spectral model) | stage one - default "
           "(min .. max) | best baseline |", "|---|---|---|---|---|---|---|"]
    for scene, protocol in cells:
        sub = [r["results"] for r in rows if (r["scene"], r["protocol"]) == (scene, protocol)]
        both = np.array([s["default"]["oa"] for s in sub])
        one = np.array([s["spectral"]["oa"] for s in sub])
        diff = one - both
        base = ""
        present = [b for b in BASELINES if all(b in s for s in sub)]
        if present:
            means = {b: np.mean([s[b]["oa"] for s in sub]) for b in present}
            best = max(means, key=means.get)
            base = f"{best} {means[best]:.2f}"
        out.append(f"| {scene} | {protocol} | {len(sub)} | {both.mean():.2f} +- {both.std():.2f} | "
                   f"{one.mean():.2f} +- {one.std():.2f} | {diff.mean():+.2f} ({diff.min():+.2f} .. {diff.max():+.2f}) "
                   f"| {base} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json", nargs="+", type=Path, help="accuracy_suite.py --json files")
    args = ap.parse_args(argv)
    rows = [r for f in args.json for r in json.loads(f.read_text())["rows"]
            if "default" in r["results"] and "spectral" in r["results"]]
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
