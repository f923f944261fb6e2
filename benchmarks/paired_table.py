"""The default next to its pieces and the baselines, each cell on the seeds every column has (paired).

Why: the suite's GPU runs of a round cover the default on one seed list, while the baselines of the same splits were
measured in earlier runs, some on fewer seeds (the suite's SVM ran with the GPU runs; the random forest and EnMAP-Box
SVC also ran on the CPU for seeds 0-11 in spectral_fold_rules.py). ``accuracy_suite.py --summarise`` averages each
column over its own seeds; this table restricts every cell to the seeds all its columns share, and says how many.

    python benchmarks/paired_table.py --suite OLD.json,NEW.json --cpu-baselines benchmarks/results/spectral_fold_rules_report_0-11_final.json
    python benchmarks/paired_table.py ... --without svm        # drop a column, so that more seeds qualify

Suite files merge as in ``accuracy_suite.py --summarise`` (a later file's methods replace an earlier one's); a CPU
baseline file adds "rf" and "enmapbox" where a suite row lacks them (the same splits, the same random forest seed:
the two agree to the digit where both ran).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy_suite import merge_rows  # noqa: E402

COLUMNS = ("default", "rssgl", "spectral", "svm", "rf", "enmapbox")
BASELINES = ("svm", "rf", "enmapbox")


def cells(suite: list[str], cpu: list[str], without: set[str]) -> dict[tuple[str, str], dict[int, dict[str, float]]]:
    """(scene, protocol) -> seed -> column -> OA %."""
    out: dict[tuple[str, str], dict[int, dict[str, float]]] = {}
    for r in merge_rows([json.loads(Path(f).read_text())["rows"] for f in suite]):
        oa = {k: float(v["oa"]) for k, v in r["results"].items() if k in COLUMNS and isinstance(v, dict) and "oa" in v}
        out.setdefault((r["scene"], r["protocol"]), {})[int(r["seed"])] = oa
    for f in cpu:
        for r in json.loads(Path(f).read_text())["rows"]:
            row = out.get((r["scene"], r["protocol"]), {}).get(int(r["seed"]))
            if row is None:
                continue
            for k in ("rf", "enmapbox"):
                if k not in row and r.get(k) is not None:
                    row[k] = float(r[k])
    for rows in out.values():
        for row in rows.values():
            for k in without:
                row.pop(k, None)
    return out


def table(data: dict[tuple[str, str], dict[int, dict[str, float]]], columns: list[str]) -> str:
    lines = ["| scene | protocol | seeds | " + " | ".join(columns) + " | default - spectral | default - best baseline |",
             "|---|---|---|" + "---|" * (len(columns) + 2)]
    for (scene, protocol), rows in sorted(data.items()):
        seeds = sorted(s for s, row in rows.items() if all(c in row for c in columns))
        if not seeds:
            continue
        m = {c: float(np.mean([rows[s][c] for s in seeds])) for c in columns}
        bases = [c for c in columns if c in BASELINES]
        best = max(bases, key=lambda c: m[c]) if bases else None
        gap = f"{m['default'] - m[best]:+.2f} ({best})" if best else "-"
        span = f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else ",".join(map(str, seeds))
        lines.append(f"| {scene} | {protocol} | {span} ({len(seeds)}) | " + " | ".join(f"{m[c]:.2f}" for c in columns)
                     + f" | {m['default'] - m['spectral']:+.2f} | {gap} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", required=True, help="accuracy_suite --json files, comma-separated, later ones win")
    ap.add_argument("--cpu-baselines", default="", help="spectral_fold_rules --json files (rf, enmapbox)")
    ap.add_argument("--without", default="", help="columns to leave out, comma-separated")
    args = ap.parse_args(argv)
    without = set(filter(None, args.without.split(",")))
    data = cells(args.suite.split(","), list(filter(None, args.cpu_baselines.split(","))), without)
    print(table(data, [c for c in COLUMNS if c not in without]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
