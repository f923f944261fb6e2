"""How the pool of RSSGL and the spectral model is chosen (core/training/cross_validation.py), studied on the pixels the
cross-validation held out, as `accuracy_suite.py --dump DIR` saves them with every candidate's test OA:

    python benchmarks/accuracy_suite.py --seeds 100,101,102 --methods default --dump out/blend_dump ...
    python benchmarks/blend_rule.py out/blend_dump
    python benchmarks/blend_rule.py benchmarks/results/explore2_h200_seeds100-102.json

A suite JSON file works too: its rows hold each candidate's cross-validated log-loss and gain, and
(since the rule was studied) each candidate's test OA; where a row lacks a candidate's test OA the
cell says nan.

For each scene x protocol: the mean test OA of the spectral model alone, of RSSGL alone, of the light
pool (RSSGL x 0.25) always, of the lowest cross-validated log-loss (the first rule), of the rule before
(a pool only when it beats the spectral model alone by SIGNIFICANCE standard errors, else the spectral
model), of the rule now without its accuracy check (a pool at least half RSSGL must get as many held-out
pixels right as the spectral model; a candidate without a recorded OA skips the check), of the rule now
(``cross_validation._choose``: heavy pools need STRONG_SIGNIFICANCE, the fallback is the light pool), and of the
rule now with SIGNIFICANCE set to z. The last two rows: the worst and the mean
difference to the spectral model alone over the cells.

Three more views (each option's help says what it prints):

    python benchmarks/blend_rule.py --rescore SUITE_JSON,...   # the rule now on recorded runs (exact)
    python benchmarks/blend_rule.py --pools SUITE_JSON,...     # each pool's test OA, the per-seed best pool
    python benchmarks/blend_rule.py --calibrate DUMP_FOLDER    # the spectral model calibrated on the held-out pixels too
    python benchmarks/blend_rule.py --saturated SUITE_JSON,... # rows whose every candidate was right on every held-out pixel
    python benchmarks/blend_rule.py --held-out-weights DUMP_FOLDER   # every pixel weighed the same, or every sample and class
    python benchmarks/blend_rule.py --fewest-samples .data/suite     # samples per class of the random-pixel splits
    python benchmarks/blend_rule.py --thresholds SUITE_JSON,...      # the rule's evidence thresholds, re-scored
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

Z_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
#: The light pool (RSSGL x 0.25): the rule's fallback until the ninth round.
LIGHT = 0.25


def choice_row(cands: list, test: dict[float, float]) -> list[float]:
    """Test OA of the spectral model alone, RSSGL alone, the lowest log-loss and the rule at each z (nan where
    the run did not record the chosen candidate's test OA)."""
    from rssgl_qgis.core.training import cross_validation

    lowest = min(cands, key=lambda c: (c.log_loss, abs(c.weight - cross_validation.DEFAULT_BLEND))).weight
    no_oa = [cross_validation.CandidateEstimate(c.weight, c.label, {}, c.confusion, c.log_loss, c.gain_se) for c in cands]
    row = [test.get(0.0, np.nan), test.get(1.0, np.nan), test.get(LIGHT, np.nan), test.get(lowest, np.nan),
           test.get(_choose_before(cands), np.nan), test.get(cross_validation._choose(no_oa), np.nan),
           test.get(cross_validation._choose(cands), np.nan)]
    kept = cross_validation.SIGNIFICANCE
    try:
        for z in Z_VALUES:
            cross_validation.SIGNIFICANCE = z
            row.append(test.get(cross_validation._choose(cands), np.nan))
    finally:
        cross_validation.SIGNIFICANCE = kept
    return row


def _choose_before(cands: list) -> float:
    """The rule before the light-pool fallback: the lowest log-loss pool if it beats the spectral model alone
    by SIGNIFICANCE standard errors, else the spectral model."""
    from rssgl_qgis.core.training import cross_validation

    spectral = [c for c in cands if c.weight <= 0.0]
    pools = [c for c in cands if c.weight > 0.0] if spectral else cands
    chosen = min(pools, key=lambda c: (c.log_loss, abs(c.weight - cross_validation.DEFAULT_BLEND)))
    if spectral and not (chosen.log_loss < spectral[0].log_loss and chosen.gain_se > cross_validation.SIGNIFICANCE):
        return spectral[0].weight
    return chosen.weight


def print_table(cells: dict[str, list[list[float]]]) -> None:
    print("| cell | seeds | spectral | RSSGL | light pool | lowest log-loss | before | now without the OA check | **now** | "
          + " | ".join(f"now, z = {z:g}" for z in Z_VALUES) + " |")
    print("|---|---|---|---|---|---|---|---|---|" + "---|" * len(Z_VALUES))
    means = []
    for name, rows in sorted(cells.items()):
        m = np.mean(rows, axis=0)
        means.append(m)
        print(f"| {name} | {len(rows)} | " + " | ".join(f"{v:.2f}" for v in m) + " |")
    diff = np.asarray(means) - np.asarray(means)[:, :1]
    print("| worst - spectral | | " + " | ".join(f"{v:+.2f}" for v in np.nanmin(diff, axis=0)) + " |")
    print("| mean - spectral | | " + " | ".join(f"{v:+.2f}" for v in np.nanmean(diff, axis=0)) + " |")


def main(argv: list[str] | None = None) -> int:
    import torch

    from rssgl_qgis.core.training import cross_validation

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dump", help="the folder accuracy_suite.py --dump wrote, or a suite JSON file")
    ap.add_argument("--rescore", action="store_true",
                    help="the dump is comma-separated suite JSON files: the default's OA per cell as run and under "
                         "the rule now, against the baselines of the same runs")
    ap.add_argument("--pools", action="store_true",
                    help="the dump is comma-separated suite JSON files: each pool's mean test OA per cell, the "
                         "per-seed best pool (chosen after seeing the test pixels) and the better baseline")
    ap.add_argument("--calibrate", action="store_true",
                    help="the dump is a folder of --dump files with test-pixel probabilities: the choice and the map "
                         "with the spectral model's temperature fitted on the held-out pixels too, as RSSGL's is")
    ap.add_argument("--saturated", action="store_true",
                    help="the dump is comma-separated suite JSON files: every row whose candidates were all right on "
                         "every held-out pixel, the pool it used and its test OA next to the half pool's")
    ap.add_argument("--held-out-weights", action="store_true",
                    help="the dump is a folder of --dump files: the choice and its test OA with the held-out pixels "
                         "weighed as before (every pixel the same) and now (every class, and within it every sample, "
                         "the same: cross_validation.HELD_OUT_WEIGHTS), the adaptive cross-validation included")
    ap.add_argument("--fewest-samples", action="store_true",
                    help="the dump is the suite's data folder (.data/suite): the fewest samples of a class per split "
                         "of the random-pixel protocols, seeds 0-11")
    ap.add_argument("--thresholds", action="store_true",
                    help="the dump is comma-separated suite JSON files: the rule now re-scored with other SIGNIFICANCE "
                         "/ STRONG_SIGNIFICANCE / HEAVY, the mean test OA minus the spectral model's per cell, and "
                         "the mean and worst cell (each file's cells apart: runs of different code)")
    ap.add_argument("--oa-check", default="",
                    help="with --thresholds: comma-separated cross_validation.OA_CHECK_FROM values to cross the grid "
                         "with (the RSSGL weight from which a pool must also match the spectral model's "
                         "cross-validated OA; 0.25: every pool)")
    ap.add_argument("--early", default="", help="with --rescore: thresholds (standard errors, comma-separated) of the "
                                                "adaptive cross-validation to score (cross_validation.EARLY_STOP_SE)")
    ap.add_argument("--spectral-lowest", type=float, default=1.0,
                    help="with --calibrate: the lowest spectral temperature tried (the engine's: 1)")
    args = ap.parse_args(argv)
    if args.calibrate:
        return calibrate(Path(args.dump), args.spectral_lowest)
    if args.held_out_weights:
        return held_out_weights(Path(args.dump))
    if args.fewest_samples:
        return fewest_samples(Path(args.dump))
    if args.pools:
        return pools([Path(p) for p in args.dump.split(",") if p])
    if args.rescore:
        return rescore([Path(p) for p in args.dump.split(",") if p],
                       [float(z) for z in args.early.split(",") if z] if args.early else None)
    if args.thresholds:
        return thresholds([Path(p) for p in args.dump.split(",") if p],
                          [float(v) for v in args.oa_check.split(",") if v] if args.oa_check else None)
    if args.saturated:
        return saturated_rows([Path(p) for p in args.dump.split(",") if p])
    if args.dump.endswith(".json"):
        return from_json(Path(args.dump))
    cells: dict[str, list[list[float]]] = {}
    for f in sorted(Path(args.dump).glob("*.npz")):
        d = dict(np.load(f))
        weights = [float(w) for w in d["weights"]]
        cands = cross_validation.score_candidates(torch.from_numpy(d["rssgl"]), torch.from_numpy(d["spectral"]), d["reference"],
                                          _row_classes(d), d["sample"], float(d["temperature"]),
                                          float(d.get("spectral_temperature", 1.0)))
        test = dict(zip(weights, (float(v) for v in d["test_oa"]), strict=True))
        cells.setdefault(f.stem.rsplit("_", 1)[0], []).append(choice_row(cands, test))
    print_table(cells)
    return 0


def recorded_candidates(default: dict) -> list:
    """The CandidateEstimates a suite row's "default" result recorded (cross-validated log-loss, gain in standard
    errors and accuracy per weight): what ``cross_validation._choose`` decided on in the run."""
    from rssgl_qgis.core.training import cross_validation

    return [cross_validation.CandidateEstimate(float(w), "", {"oa": default.get("cv", {}).get(w, np.nan) / 100.0},
                                       np.zeros(0), float(ll), float(default["cv_gain_se"][w]))
            for w, ll in default["cv_log_loss"].items()]


def rule_now_and_before(default: dict) -> tuple[float, float]:
    """The weights ``cross_validation._choose`` gives a suite row's recorded candidates now (no evidence: the spectral model
    alone, ``FALLBACK`` 0) and with the light pool as the fallback (the rule before the ninth round)."""
    from rssgl_qgis.core.training import cross_validation

    cands = recorded_candidates(default)
    now = cross_validation._choose(cands)
    kept = cross_validation.FALLBACK
    try:
        cross_validation.FALLBACK = LIGHT
        before = cross_validation._choose(cands)
    finally:
        cross_validation.FALLBACK = kept
    return now, before


def adaptive_weight(default: dict, now: float, z: float) -> tuple[float, bool] | None:
    """The weight the adaptive cross-validation (RSSGL's other folds skipped where the first fold rules it out,
    ``cross_validation.rssgl_cannot_win`` at ``z`` standard errors) gives a row recorded with RSSGL on every fold, and
    whether it stops: the spectral model (0) where it stops, else the rule's choice over all folds ``now``. None
    without the first fold's record."""
    from rssgl_qgis.core.training import cross_validation

    if "fold1_cv_log_loss" not in default:
        return None
    first = [cross_validation.CandidateEstimate(float(w), "", {"oa": default["fold1_cv"][w] / 100.0}, np.zeros(0), float(ll),
                                        float(default["fold1_cv_gain_se"][w]))
             for w, ll in default["fold1_cv_log_loss"].items()]
    kept = cross_validation.EARLY_STOP_SE
    try:
        cross_validation.EARLY_STOP_SE = z
        stops = cross_validation.rssgl_cannot_win(first)
        return (0.0 if stops else now), stops
    finally:
        cross_validation.EARLY_STOP_SE = kept


def rescore(paths: list[Path], early: list[float] | None = None) -> int:
    """The default's test OA under the rule now (``cross_validation._choose`` on each row's recorded cross-validated
    log-losses, gains and accuracies, the chosen weight's recorded test OA) and under the rule before (the light
    pool where no pool has the evidence it needs), next to the default as it ran, the spectral model alone and
    the baselines of the same runs (rows of several files merged as accuracy_suite --summarise merges them):
    exact where the rule changed after the runs, as the pool of every weight was scored on the test pixels with
    the temperature of the run. With ``early`` (thresholds in standard errors): the adaptive cross-validation at
    each, from rows that trained RSSGL on every fold and recorded the first fold's candidates, with the share of
    RSSGL's fold trainings it skips."""
    import json

    from accuracy_suite import merge_rows

    early = early or []
    rows = merge_rows([json.loads(p.read_text())["rows"] for p in paths])
    cells: dict[str, list[tuple[float, ...]]] = {}
    for r in rows:
        res, d = r["results"], r["results"].get("default", {})
        test = {float(k): v for k, v in d.get("test_by_weight", {}).items()}
        if "cv_gain_se" not in d or not test:
            continue
        now, before = rule_now_and_before(d)
        adaptive = [adaptive_weight(d, now, z) for z in early]
        base = [res.get(m, {}).get("oa", np.nan) for m in ("svm", "rf", "enmapbox")]
        cells.setdefault(f"{r['scene']} | {r['protocol']}", []).append(
            (d["oa"], test[before], test[now], test[0.0], *base, float(now != before),
             *[np.nan if a is None else test[a[0]] for a in adaptive],
             *[np.nan if a is None else float(a[1]) for a in adaptive]))
    heads = ["as run", "rule before (light pool)", "**rule now (no vote)**", "spectral", "svm", "rf", "enmapbox"]
    print("| scene | protocol | seeds | " + " | ".join(heads) + " | now - before | now - best baseline | now - spectral "
          "| choices changed | " + " | ".join(f"adaptive, z = {z:g} (RSSGL folds skipped)" for z in early) + " |")
    print("|---|---|---|" + "---|" * (len(heads) + 4 + len(early)))
    k = len(early)
    for name, rs in sorted(cells.items()):
        a = np.asarray(rs, dtype=float)
        m, sd = np.nanmean(a, axis=0), np.nanstd(a, axis=0)
        best = np.nanmax(m[4:7]) if np.isfinite(m[4:7]).any() else np.nan
        ad = [f"{m[8 + i]:.2f} ({100 * m[8 + k + i]:.0f} %)" for i in range(k)]
        print(f"| {name} | {len(a)} | " + " | ".join(f"{m[i]:.2f} +- {sd[i]:.2f}" for i in range(7))
              + f" | {m[2] - m[1]:+.2f} | {m[2] - best:+.2f} | {m[2] - m[3]:+.2f} | {int(a[:, 7].sum())} | "
              + " | ".join(ad) + " |")
    return 0


def saturated_rows(paths: list[Path]) -> int:
    """Rows whose candidates all classified every held-out pixel correctly (``cross_validation.saturated``): the pool
    the run used and its test OA, next to the test OA of DEFAULT_BLEND, the pool used without cross-validation
    (recorded per weight, so exact for that run)."""
    import json

    from rssgl_qgis.core.training import cross_validation

    half = f"{cross_validation.DEFAULT_BLEND:g}"
    print("| file | scene | protocol | seed | pool used | its test OA | half pool's test OA | difference |")
    print("|---|---|---|---|---|---|---|---|")
    for path in paths:
        for r in json.loads(path.read_text()).get("rows", []):  # other result files hold no suite rows
            d = r["results"].get("default", {})
            test = d.get("test_by_weight", {})
            if "cv_gain_se" not in d or half not in test or not cross_validation.saturated(recorded_candidates(d)):
                continue
            used = test[f"{float(d['weight']):g}"]
            print(f"| {path.name} | {r['scene']} | {r['protocol']} | {r['seed']} | {float(d['weight']):g} | "
                  f"{used:.2f} | {test[half]:.2f} | {test[half] - used:+.2f} |")
    return 0


def _row_classes(dump: dict) -> list[int]:
    """The class values of the probability rows of a --dump file: recorded since the calibration study; older
    dumps held every class among their held-out pixels (no class was left untested)."""
    return [int(v) for v in (dump["classes"] if "classes" in dump else np.unique(dump["reference"]))]


def calibrate(folder: Path, lowest: float = 1.0) -> int:
    """RSSGL's temperature was fitted on the cross-validation's held-out pixels, the spectral model's on its own
    training folds only: where the spectral model is overconfident on unseen samples, pools with RSSGL won the
    held-out log-loss for its calibration, not its ranking. From --dump files with both models' test-pixel
    probabilities this scores, exactly and without training again, the choice and the map with RSSGL alone
    calibrated on the held-out pixels (the rule before) and with the spectral model's temperature fitted on the
    same pixels too (grid ``lowest``-30; the engine uses 1-30, as for RSSGL): per cell the test OA of both and how
    many choices changed."""
    import torch

    from rssgl_qgis.core.training import cross_validation

    cells: dict[str, list[tuple[float, float, float, float]]] = {}
    for f in sorted(folder.glob("*.npz")):
        d = dict(np.load(f))
        if "test_rssgl" not in d:
            continue
        classes = _row_classes(d)
        index = torch.from_numpy(np.searchsorted(classes, d["reference"]))
        t_s = cross_validation._fit_temperature(torch.from_numpy(d["spectral"]), index, lowest=lowest)
        (before, oa_before), (both, oa_both) = (_choice_and_test_oa(d, classes, 1.0),
                                                _choice_and_test_oa(d, classes, t_s))
        cells.setdefault(f.stem.rsplit("_", 1)[0], []).append((oa_before, oa_both, float(before != both), t_s))
    print("| cell | runs | RSSGL calibrated on the held-out pixels | both models calibrated on them | difference "
          "(min .. max) | choices changed | spectral temperature (mean) |")
    print("|---|---|---|---|---|---|---|")
    means = []
    for name, rows in sorted(cells.items()):
        a = np.asarray(rows)
        diff = a[:, 1] - a[:, 0]
        means.append(diff.mean())
        print(f"| {name} | {len(a)} | {a[:, 0].mean():.2f} | {a[:, 1].mean():.2f} | {diff.mean():+.2f} "
              f"({diff.min():+.2f} .. {diff.max():+.2f}) | {int(a[:, 2].sum())} | {a[:, 3].mean():.2f} |")
    if means:
        print(f"| worst cell / mean | | | | {min(means):+.2f} / {np.mean(means):+.2f} | | |")
    return 0


def _choice_and_test_oa(d: dict, classes: list[int], spectral_t: float) -> tuple[float, float]:
    """The rule's choice on a dump's held-out pixels with the spectral model calibrated by ``spectral_t`` (RSSGL by
    the dump's temperature), and that pool's OA on the dump's test pixels."""
    import torch

    from rssgl_qgis.core.training import cross_validation

    t_r = float(d["temperature"])
    chosen = cross_validation._choose(cross_validation.score_candidates(torch.from_numpy(d["rssgl"]), torch.from_numpy(d["spectral"]),
                                                        d["reference"], classes, d["sample"], t_r, spectral_t))
    pooled = cross_validation.combine(torch.from_numpy(d["test_rssgl"]), torch.from_numpy(d["test_spectral"]), chosen, dim=0,
                              temperature=t_r, spectral_temperature=spectral_t)
    hit = np.asarray(classes)[pooled.argmax(dim=0).numpy()] == d["test_reference"]
    return chosen, 100.0 * float(hit.mean())


#: The variant "at least m held-out samples in every class, else the spectral model alone" (--held-out-weights).
MIN_SAMPLES = (3, 4, 5)


def _choice_under(d: dict, mode: str, variants: bool = False) -> tuple[float, ...]:
    """(the rule's weight over all folds, the adaptive cross-validation's) on a dump's held-out pixels with
    ``cross_validation.HELD_OUT_WEIGHTS`` = ``mode``, both temperatures as the run fitted them (the weighting does not
    change them); the adaptive choice is the spectral model (0) where the first fold rules RSSGL out. With
    ``variants``, then: the choice where every class has at least m held-out samples (m in MIN_SAMPLES), else the
    spectral model, and the choice where the chosen pool also gains on every fold alone, else the spectral model."""
    import torch

    from rssgl_qgis.core.training import cross_validation

    kept = cross_validation.HELD_OUT_WEIGHTS
    try:
        cross_validation.HELD_OUT_WEIGHTS = mode
        classes = _row_classes(d)
        t_r, t_s = float(d["temperature"]), float(d.get("spectral_temperature", 1.0))

        def scored(m: np.ndarray) -> list:
            return cross_validation.score_candidates(torch.from_numpy(d["rssgl"][:, m]),
                                                     torch.from_numpy(d["spectral"][:, m]), d["reference"][m],
                                                     classes, d["sample"][m], t_r, t_s)

        every = np.ones(d["reference"].size, dtype=bool)
        chosen = cross_validation._choose(scored(every))
        first = d["fold"] == d["fold"].min() if "fold" in d else every
        adaptive = 0.0 if first.sum() < every.sum() and cross_validation.rssgl_cannot_win(scored(first)) else chosen
        if not variants:
            return chosen, adaptive
        fewest = min(np.unique(d["sample"][d["reference"] == v]).size for v in np.unique(d["reference"]))
        every_fold = chosen
        for fold in (np.unique(d["fold"]) if chosen > 0.0 and "fold" in d else []):
            if not next(c for c in scored(d["fold"] == fold) if c.weight == chosen).gain_se > 0.0:
                every_fold = 0.0
        return chosen, adaptive, *[chosen if fewest >= m else 0.0 for m in MIN_SAMPLES], every_fold
    finally:
        cross_validation.HELD_OUT_WEIGHTS = kept


def held_out_weights(folder: Path) -> int:
    """The rule on --dump files (RSSGL trained on every fold) with the held-out pixels weighed as before (every pixel
    the same: one large polygon decided a fold) and now (``cross_validation.held_out_weights``: every class, and
    within a class every held-out sample, the same): per cell the test OA of the choice over all folds and of the
    adaptive cross-validation, against the spectral model alone, and how many choices changed. Exact: every
    candidate's test OA was recorded by the run."""
    cells: dict[str, list[tuple[float, ...]]] = {}
    for f in sorted(folder.glob("*.npz")):
        d = dict(np.load(f))
        if "test_oa" not in d or "rssgl" not in d:
            continue
        test = dict(zip((float(w) for w in d["weights"]), (float(v) for v in d["test_oa"]), strict=True))
        (pix, pix_ad), (smp, smp_ad, *tried) = _choice_under(d, "pixels"), _choice_under(d, "samples", True)
        cells.setdefault(f.stem.rsplit("_", 1)[0], []).append(
            (test[0.0], test[pix], test[smp], test[pix_ad], test[smp_ad], float(pix != smp), *[test[w] for w in tried]))
    print("| cell | seeds | spectral alone | pixels weighed the same (before) | samples and classes weighed the same "
          "(now) | now - spectral | now - before | adaptive before | **adaptive now** | adaptive now - spectral | "
          "choices changed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, rows in sorted(cells.items()):
        a = np.asarray(rows)
        m, sd = a.mean(axis=0), a.std(axis=0)
        print(f"| {name} | {len(a)} | " + " | ".join(f"{m[i]:.2f} +- {sd[i]:.2f}" for i in range(3))
              + f" | {m[2] - m[0]:+.2f} | {m[2] - m[1]:+.2f} | {m[3]:.2f} +- {sd[3]:.2f} | {m[4]:.2f} +- {sd[4]:.2f} "
                f"| {m[4] - m[0]:+.2f} | {int(a[:, 5].sum())} |")
    print("\nTried, against the spectral model alone (sample weights): at least m held-out samples in every class, "
          "else the spectral model; the pool must also gain on every fold alone")
    print("| cell | " + " | ".join(f"m = {m}" for m in MIN_SAMPLES) + " | every fold |")
    print("|---|" + "---|" * (len(MIN_SAMPLES) + 1))
    for name, rows in sorted(cells.items()):
        a = np.asarray(rows)
        print(f"| {name} | " + " | ".join(f"{a[:, i].mean() - a[:, 0].mean():+.2f}" for i in range(6, a.shape[1])) + " |")
    return 0


def fewest_samples(data: Path, seeds: int = 12) -> int:
    """The fewest training samples of any class (8-connected patches of its pixels, as the cross-validation's folds
    hold them out) per split of the random-pixel protocols: random pixels that touch make one sample."""
    from accuracy_suite import load_scene, split

    print("| scene | protocol | fewest samples of a class, seeds 0-" + f"{seeds - 1} | splits with fewer than 5 |")
    print("|---|---|---|---|")
    for name in ("salinas_a", "enmap_potsdam"):
        scene = load_scene(name, data, 0)
        for protocol in ("p1", "n5", "n10"):
            fewest = []
            for seed in range(seeds):
                train, _, groups = split(scene, protocol, seed)
                fewest.append(min(np.unique(groups[train == v]).size for v in np.unique(train[train > 0])))
            print(f"| {name} | {protocol} | {', '.join(map(str, fewest))} | {sum(f < 5 for f in fewest)} |")
    return 0


def pools(paths: list[Path]) -> int:
    """What each pool of RSSGL and the spectral model measured on the test pixels of the recorded runs (mean +-
    std over the seeds), the mean of the per-seed best pool (a bound no rule can pass: it looks at the test
    pixels) and the better of the SVM and the random forest of the same runs."""
    import json

    cells: dict[str, list[tuple[dict[float, float], float, float]]] = {}
    for path in paths:
        for r in json.loads(path.read_text())["rows"]:
            res, d = r["results"], r["results"]["default"]
            test = {float(k): v for k, v in d.get("test_by_weight", {}).items()}
            if test:
                cells.setdefault(f"{r['scene']} | {r['protocol']}", []).append(
                    (test, res.get("svm", {}).get("oa", np.nan), res.get("rf", {}).get("oa", np.nan)))
    weights = sorted({w for rows in cells.values() for t, _, _ in rows for w in t}, reverse=True)
    print("| scene | protocol | seeds | " + " | ".join(_pool_name(w) for w in weights)
          + " | best pool per seed | better baseline |")
    print("|---|---|---|" + "---|" * (len(weights) + 2))
    for name, rows in sorted(cells.items()):
        a = np.asarray([[t.get(w, np.nan) for w in weights] for t, _, _ in rows], dtype=float)
        base = np.asarray([(s, f) for _, s, f in rows], dtype=float)
        b = base[:, int(np.argmax(base.mean(axis=0)))]
        print(f"| {name} | {len(rows)} | " + " | ".join(f"{m:.2f} +- {sd:.2f}" for m, sd in
                                                      zip(np.nanmean(a, axis=0), np.nanstd(a, axis=0), strict=True))
              + f" | {np.nanmean(np.nanmax(a, axis=1)):.2f} | {b.mean():.2f} +- {b.std():.2f} |")
    return 0


def _pool_name(weight: float) -> str:
    return "RSSGL" if weight >= 1.0 else "spectral" if weight <= 0.0 else f"x {weight:g}"


def from_json(path: Path) -> int:
    """The same table from a suite JSON file's recorded log-losses and gains."""
    import json


    cells: dict[str, list[list[float]]] = {}
    for r in json.loads(path.read_text())["rows"]:
        res, d = r["results"], r["results"]["default"]
        if "cv_gain_se" not in d:
            continue
        test = {float(k): v for k, v in d.get("test_by_weight", {}).items()}
        # the spectral model and RSSGL alone do not depend on RSSGL's temperature ("blend" does: not used)
        test.setdefault(float(d["weight"]), d["oa"])
        test.setdefault(0.0, res["spectral"]["oa"])
        test.setdefault(1.0, res["rssgl"]["oa"])
        cands = recorded_candidates(d)
        cells.setdefault(f"{r['scene']}_{r['protocol']}", []).append(choice_row(cands, test))
    print_table(cells)
    return 0



#: (SIGNIFICANCE, STRONG_SIGNIFICANCE, HEAVY) settings --thresholds re-scores, after the engine's own.
THRESHOLD_GRID = ((1.0, 2.0, 0.75), (1.0, 2.0, 0.5), (1.0, 3.0, 0.75), (1.0, 3.0, 0.5), (1.5, 2.0, 0.75),
                  (1.5, 3.0, 0.75), (1.5, 3.0, 0.5), (2.0, 2.0, 0.75), (2.0, 3.0, 0.75), (2.0, 3.0, 0.5))


def thresholds(paths: list[Path], oa_checks: list[float] | None = None) -> int:
    """The rule now (``cross_validation._choose`` on each row's recorded candidates) with each THRESHOLD_GRID setting,
    crossed with each ``oa_checks`` value of OA_CHECK_FROM (None: the engine's only): per file and cell the mean test
    OA of the chosen pool minus the spectral model's (exact: every pool's test OA was recorded). A file is one run of
    one code, so cells of different files are not merged."""
    import json

    from rssgl_qgis.core.training import cross_validation as cv

    kept = (cv.SIGNIFICANCE, cv.STRONG_SIGNIFICANCE, cv.HEAVY, cv.OA_CHECK_FROM)
    checks = oa_checks or [kept[3]]
    grid = [kept] + [(*g, c) for c in checks for g in THRESHOLD_GRID if (*g, c) != kept]
    cells: dict[str, dict[tuple, list[float]]] = {}
    try:
        for path in paths:
            for r in json.loads(path.read_text())["rows"]:
                d = r["results"].get("default", {})
                test = {float(k): v for k, v in d.get("test_by_weight", {}).items()}
                if "cv_gain_se" not in d or 0.0 not in test:
                    continue
                cands = recorded_candidates(d)
                cell = cells.setdefault(f"{path.stem} | {r['scene']} | {r['protocol']}", {})
                for g in grid:
                    cv.SIGNIFICANCE, cv.STRONG_SIGNIFICANCE, cv.HEAVY, cv.OA_CHECK_FROM = g
                    cell.setdefault(g, []).append(test[cv._choose(cands)] - test[0.0])
    finally:
        cv.SIGNIFICANCE, cv.STRONG_SIGNIFICANCE, cv.HEAVY, cv.OA_CHECK_FROM = kept
    heads = [f"{a:g} / {b:g} / {c:g}" + (f" / {o:g}" if oa_checks else "") for a, b, c, o in grid]
    print("| file | scene | protocol | splits | " + " | ".join(heads) + " |")
    print("|---|---|---|---|" + "---|" * len(heads))
    means: dict[tuple, list[float]] = {g: [] for g in grid}
    for name, cell in sorted(cells.items()):
        n = len(next(iter(cell.values())))
        print(f"| {name} | {n} | " + " | ".join(f"{np.mean(cell[g]):+.2f}" for g in grid) + " |")
        for g in grid:
            means[g].append(float(np.mean(cell[g])))
    print("| mean over the cells | | | | " + " | ".join(f"{np.mean(means[g]):+.2f}" for g in grid) + " |")
    print("| worst cell | | | | " + " | ".join(f"{np.min(means[g]):+.2f}" for g in grid) + " |")
    print("| cells under -0.3 | | | | " + " | ".join(f"{sum(m < -0.3 for m in means[g])}" for g in grid) + " |")
    print("\n(columns: SIGNIFICANCE / STRONG_SIGNIFICANCE / HEAVY" + (" / OA_CHECK_FROM" if oa_checks else "")
          + "; the first is the engine's; each cell the mean test OA of the chosen pool minus the spectral model "
          "alone, points)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
