"""Guided drawing as a benchmark (issue 28, deliverable 4): does "where to draw next" beat drawing at random?

    python benchmarks/guided_drawing.py                       # EnMAP, Salinas-A, synthetic; seeds 0-9; 10 rounds
    python benchmarks/guided_drawing.py --quick               # smoke test: Salinas-A, 2 seeds, 3 rounds
    python benchmarks/guided_drawing.py --guides base,all     # only these rankings (names in GUIDES)
    python benchmarks/guided_drawing.py --guides random-px    # the control: random drawing in proportion to pixels
    python benchmarks/guided_drawing.py --cost                # the ranking's CPU cost on a 2000 x 2000 px map

Protocol, per scene and seed:

* The reference polygons are the scene's label patches (8-connected, benchmarks/accuracy_suite.polygon_units),
  cut by an 8 px grid on every scene (GRID): one drawn polygon is at most 8 x 8 px, as an analyst draws one (whole
  patches would let one polygon hold most of a class: EnMAP's largest holds 1146 of class 3's 1694 px). Each class's polygons are split at random in two halves: the analyst may draw those of one
  half, the other half is the test set of every round and every analyst (so no analyst takes hard pixels out of
  its own test set). A class with one polygon is drawable and has no test pixels.
* Round 0: one drawable polygon per class at random (the same for every analyst). Each round fits the plugin's
  spectral model (core/spectral/spectral_model.fit_spectral on the band-standardised spectra, each training pixel's
  8-connected patch as its samples, as Train RSSGL passes them (since e8a290b); without self-training and with a 300-pixel hyper-parameter search, to stay light on 2 shared CPU cores),
  maps the scene, scores the test half, and the analyst adds one polygon:
  - random: a drawable polygon not yet drawn, uniformly at random;
  - random-px (a control, on request): a random drawable pixel's polygon, so a polygon's chance is in proportion
    to its pixels (the guided oracle draws larger polygons than uniform random drawing: it prefers the largest
    overlap with a large region);
  - guided (oracle): ranks the regions with io/uncertainty.find_uncertain_regions (the dock's defaults: lowest
    10 % of the confidence, at most 10 regions) and goes down that list as an analyst who draws where they can
    name the land cover: the first ranked region with a drawable reference polygon under it, that polygon (the
    largest overlap); only when none of the listed regions has one, the drawable polygon nearest to region 1
    (counted as "nearest_fallbacks"; until 2026-12-07 the oracle always took region 1, under it or nearest).
    The ranking gets the pixels drawn so far and the training pixels per class, as the dock has them.
* OA on the test half after 0..ROUNDS added polygons; mean +- std over the seeds; guided vs random.

Each guided variant (GUIDES) switches on one weight of io.uncertainty.Guide, or all; "dock" is the plugin's
default (io.uncertainty.DEFAULT_GUIDE). The CPU seconds of the ranking itself are recorded per call.
Results: benchmarks/results/guided_drawing.json, a table on stdout, a PNG of the learning curves.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy_suite import load_scene, polygon_units, unlabelled_pool  # noqa: E402

from rssgl_qgis.io.uncertainty import DEFAULT_GUIDE, Guide, find_uncertain_regions  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCENES = ("enmap_potsdam", "salinas_a", "synthetic")
#: Every scene's reference polygons are cut by this grid (px; --grid, 0: whole patches), so that one drawn polygon
#: is at most GRID x GRID px, as an analyst draws it. Until 2026-12-07 EnMAP's patches were whole: its five largest
#: held 57 % of its labelled pixels (one of 1146 px held two thirds of a class), and the guided oracle, sent to the
#: largest uncertain regions, drew them (a class swamping the next fit).
GRID = 8
GUIDES = {
    "base": Guide(),
    "density": Guide(density=True),
    "balance": Guide(balance=True),
    "away": Guide(away=True),
    "diverse": Guide(diverse=True),
    "balance+away": Guide(balance=True, away=True),
    "density+diverse": Guide(density=True, diverse=True),
    "all": Guide(density=True, balance=True, away=True, diverse=True),
    "dock": DEFAULT_GUIDE,
}
SEARCH_CAP = 300  # the spectral model's hyper-parameter search on at most this many pixels (the plugin: 1200)
#: Self-train the spectral model on the unlabelled pool as Train RSSGL does (--self-train; off: the lighter model).
SELF_TRAIN = False


def prepare(name: str, seed: int) -> dict:
    """The scene as flat standardised spectra, its polygons, and the seed's drawable / test halves."""
    from rssgl_qgis.core.data.normalization import band_statistics, normalize_cube

    scene = load_scene(name, ROOT / ".data" / "suite", seed)
    cube, valid, labels = scene["cube"], scene["valid"].astype(bool), scene["labels"]
    mean, std = band_statistics(cube, valid)
    flat = normalize_cube(cube, mean, std, valid).reshape(cube.shape[0], -1).T.astype(np.float32)
    units = polygon_units(labels, GRID or None)
    rs = np.random.RandomState(seed)
    drawable, test_units, first = [], [], []
    for value in np.unique(labels[labels > 0]):
        ids = rs.permutation(np.unique(units[labels == value]))
        half = max(1, (ids.size + 1) // 2)
        drawable.extend(ids[:half].tolist())
        test_units.extend(ids[half:].tolist())
        first.append(int(ids[0]))
    test = np.isin(units, test_units) & (labels > 0)
    return {"flat": flat, "valid": valid, "labels": labels, "units": units, "classes": np.unique(labels[labels > 0]),
            "drawable": np.asarray(drawable), "test": test.ravel(), "first": first}


def fit_and_map(d: dict, drawn: list[int], seed: int) -> tuple[np.ndarray, float]:
    """(K, H, W) probabilities of the spectral model trained on the drawn polygons (0 outside the valid pixels,
    classes without a sample at 0), and the OA (%) on the test half."""
    import torch

    from rssgl_qgis.core.data.sampling import pixel_patches
    from rssgl_qgis.core.spectral import spectral_model

    spectral_model.SEARCH_CAP = SEARCH_CAP
    labels = d["labels"].ravel()
    tr = np.flatnonzero(np.isin(d["units"].ravel(), drawn) & (labels > 0))
    trained = np.unique(labels[tr])
    unlabelled = None
    if SELF_TRAIN:  # Train RSSGL's pool: valid pixels the drawn polygons do not label, at most UNLABELLED_CAP
        unlabelled = d["flat"][unlabelled_pool({"valid": d["valid"], "tr": tr}, seed)]
    # As Train RSSGL: each training pixel's 8-connected patch, for the settings search's folds (spectral_model
    # .search_groups: whole samples where the median class has few, else pixels)
    groups = pixel_patches(*np.divmod(tr, d["labels"].shape[1]), labels[tr])
    model = spectral_model.fit_spectral(d["flat"][tr], np.searchsorted(trained, labels[tr]), groups=groups,
                                        seed=seed, unlabelled=unlabelled)
    ok = d["valid"].ravel()
    proba = np.zeros((d["classes"].size, ok.size), np.float32)
    with torch.no_grad():
        p = model.probabilities(torch.from_numpy(d["flat"][ok])).numpy()
    proba[np.ix_(np.searchsorted(d["classes"], trained), np.flatnonzero(ok))] = p.T
    pred = d["classes"][proba.argmax(0)]
    oa = float(100.0 * (pred[d["test"]] == labels[d["test"]]).mean())
    return proba.reshape(-1, *d["labels"].shape), oa


def oracle_pick(d: dict, proba: np.ndarray, drawn: list[int], guide: Guide) -> tuple[int | None, bool, float]:
    """(the polygon the oracle analyst draws, whether it fell back to the nearest one, the ranking's CPU seconds).

    The analyst goes down the suggestion list (the dock's at most 10 regions, in rank order) and draws where they
    can name the land cover: the first region with a drawable reference polygon under it, that polygon (the
    largest overlap with the region). Only when no listed region has one under it, the drawable polygon nearest
    to region 1 (a fallback, counted). None when the ranking found no region or nothing is left to draw.
    """
    from scipy import ndimage

    labels, units = d["labels"], d["units"]
    drawn_mask = np.isin(units, drawn) & (labels > 0)
    samples = np.array([(labels[drawn_mask] == v).sum() for v in d["classes"]], dtype=np.float64)
    conf = np.where(d["valid"], proba.max(0), np.nan)
    t0 = time.process_time()
    search = find_uncertain_regions(conf, proba, d["classes"].tolist(), valid=d["valid"], drawn=drawn_mask,
                                    class_samples=samples, guide=guide)
    cpu = time.process_time() - t0
    left = np.setdiff1d(d["drawable"], drawn)
    if not search.regions or left.size == 0:
        return None, False, cpu
    candidate = np.isin(units, left) & (labels > 0)
    under = search.components[candidate]  # rank of the region over each drawable pixel (0: none)
    ranks = np.unique(under[under > 0])
    if ranks.size:
        in_first = candidate & (search.components == ranks[0])
        ids, counts = np.unique(units[in_first], return_counts=True)
        return int(ids[np.argmax(counts)]), False, cpu
    distance = ndimage.distance_transform_edt(search.components != 1)
    where = np.flatnonzero(candidate.ravel())
    return int(units.ravel()[where[np.argmin(distance.ravel()[where])]]), True, cpu


def run_analyst(d: dict, seed: int, rounds: int, guide: Guide | None, by_size: bool = False) -> dict:
    """One learning curve: OA after 0..rounds added polygons (guide None: random drawing; ``by_size``: a polygon's
    chance is in proportion to its pixels, the "random-px" control: a random drawable pixel, then its polygon)."""
    rs = np.random.RandomState(1000 + seed)
    drawn = list(d["first"])
    curve, pixels, cpu, fallbacks, nearest = [], [], [], 0, 0
    for step in range(rounds + 1):
        proba, oa = fit_and_map(d, drawn, seed)
        curve.append(oa)
        pixels.append(int((np.isin(d["units"], drawn) & (d["labels"] > 0)).sum()))
        if step == rounds:
            break
        left = np.setdiff1d(d["drawable"], drawn)
        if left.size == 0:
            curve.extend([oa] * (rounds - step))
            pixels.extend([pixels[-1]] * (rounds - step))
            break
        pick = None
        if guide is not None:
            pick, far, seconds = oracle_pick(d, proba, drawn, guide)
            nearest += far
            cpu.append(seconds)
        if pick is None:
            fallbacks += guide is not None
            size = np.bincount(d["units"][d["labels"] > 0], minlength=int(left.max()) + 1)[left].astype(np.float64)
            pick = int(rs.choice(left, p=size / size.sum())) if by_size else int(rs.choice(left))
        drawn.append(pick)
    return {"oa": curve, "training_pixels": pixels, "ranking_cpu_s": cpu, "random_fallbacks": fallbacks, "nearest_fallbacks": nearest}


def summarise(results: dict, arms: list[str], rounds: int) -> str:
    lines = []
    for scene, by_arm in results.items():
        lines.append(f"\n{scene}: OA (%) on the test half after k added polygons, mean +- std over "
                     f"{len(next(iter(by_arm.values())))} seeds")
        lines.append("| analyst | " + " | ".join(str(k) for k in range(rounds + 1)) + " |")
        lines.append("|---" * (rounds + 2) + "|")
        for arm in arms:
            curves = np.array([r["oa"] for r in by_arm[arm]])
            cells = [f"{m:.1f} +- {s:.1f}" for m, s in zip(curves.mean(0), curves.std(0), strict=True)]
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
        if all("training_pixels" in r for arm in arms for r in by_arm[arm]):
            lines.append("training pixels after 0 / 4 / 8 / 10 added polygons (mean over seeds): " + "; ".join(
                f"{arm} " + " / ".join(f"{np.mean([r['training_pixels'][k] for r in by_arm[arm]]):.0f}"
                                       for k in (0, 4, 8, rounds) if k <= rounds) for arm in arms))
        rnd = np.array([r["oa"] for r in by_arm["random"]]).mean(0)
        for arm in arms:
            if arm == "random":
                continue
            g = np.array([r["oa"] for r in by_arm[arm]]).mean(0)
            cpu = [s for r in by_arm[arm] for s in r["ranking_cpu_s"]]
            at = f"; guided at 4 {g[4]:.1f} vs random at 8 {rnd[8]:.1f}" if rounds >= 8 else ""
            nearest = sum(r.get("nearest_fallbacks", 0) for r in by_arm[arm])
            lines.append(f"  {arm}: rounds with guided >= random {int((g >= rnd - 1e-9)[1:].sum())}/{rounds}, "
                         f"mean gain {float((g - rnd)[1:].mean()):+.2f}{at}; ranking CPU "
                         f"{1000 * float(np.mean(cpu)) if cpu else 0:.0f} ms per call; nearest-polygon fallbacks "
                         f"{nearest}/{len(cpu)} picks")
    return "\n".join(lines)


def plot(results: dict, arms: list[str], rounds: int, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return False
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), squeeze=False)
    x = np.arange(rounds + 1)
    for ax, (scene, by_arm) in zip(axes[0], results.items(), strict=True):
        for arm in arms:
            curves = np.array([r["oa"] for r in by_arm[arm]])
            m, s = curves.mean(0), curves.std(0)
            dock = arm == "dock" or GUIDES.get(arm) == DEFAULT_GUIDE
            main_arm = dock or arm == "random"
            (line,) = ax.plot(x, m, marker="o", ms=3, label=f"{arm} (dock)" if dock and arm != "dock" else arm,
                              lw=2 if main_arm else 1, ls="--" if arm == "random-px" else "-")
            if main_arm:
                ax.fill_between(x, m - s, m + s, alpha=0.15, color=line.get_color())
        ax.set_title(f"{scene} ({len(next(iter(by_arm.values())))} seeds)")
        ax.set_xlabel("polygons added")
        ax.set_ylabel("OA on the test half (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return True


def ranking_cost(size: int = 2000, classes: int = 10, repeats: int = 3) -> str:
    """CPU seconds of one ranking on a ``size`` x ``size`` map of ``classes`` classes (smooth random probabilities,
    a 60 px polygon every 100 px drawn), for each guide: what the dock adds after a run, beyond reading the rasters."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    logits = ndimage.gaussian_filter(rng.normal(size=(classes, size // 4, size // 4)), (0, 3, 3)) * 20
    logits = np.repeat(np.repeat(logits, 4, axis=1), 4, axis=2)
    proba = np.exp(logits - logits.max(0))
    proba = (proba / proba.sum(0)).astype(np.float32)
    conf = proba.max(0)
    drawn = np.zeros((size, size), bool)
    drawn[::100, ::100] = True
    drawn = ndimage.binary_dilation(drawn, iterations=4)
    samples = np.full(classes, 500.0)
    lines = [f"ranking cost on a {size} x {size} map of {classes} classes (CPU seconds, best of {repeats}):"]
    for name in ("base", "density", "balance", "away", "diverse", "all", "dock"):
        best = float("inf")
        for _ in range(repeats):
            t0 = time.process_time()
            find_uncertain_regions(conf, proba, list(range(1, classes + 1)), drawn=drawn, class_samples=samples,
                                   guide=GUIDES[name])
            best = min(best, time.process_time() - t0)
        lines.append(f"  {name}: {best:.2f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    global SELF_TRAIN, GRID
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", default=",".join(SCENES))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--guides", default="base,density,balance,away,balance+away,all")
    ap.add_argument("--merge", default="", help="comma-separated result files of earlier runs: summarise and plot "
                                                "(files of one scene with other seeds add up)")
    ap.add_argument("--quick", action="store_true", help="smoke test: Salinas-A, 2 seeds, 3 rounds, base and dock")
    ap.add_argument("--cost", action="store_true", help="only time the ranking on a 2000 x 2000 px map")
    ap.add_argument("--grid", type=int, default=GRID, help="cut every scene's polygons by this grid (px); 0: whole "
                                                           "label patches (EnMAP's protocol until 2026-12-07)")
    ap.add_argument("--self-train", action="store_true", help="the spectral model self-trains on the unlabelled "
                                                               "pool, as Train RSSGL does (both arms)")
    ap.add_argument("--spectral", default="", help="spectral_model module settings for both arms, NAME=VALUE "
                                                   "comma-separated (e.g. POLYGON_WEIGHTS=classes)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "guided_drawing.json"))
    ap.add_argument("--plot", default=str(ROOT / "docs" / "guided_drawing.png"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    SELF_TRAIN, GRID = args.self_train, args.grid
    settings = dict(kv.split("=", 1) for kv in args.spectral.split(",") if kv)
    if settings:
        from rssgl_qgis.core.spectral import spectral_model

        for name, value in settings.items():
            if not hasattr(spectral_model, name):
                ap.error(f"--spectral: spectral_model has no setting {name}")
            setattr(spectral_model, name, type(getattr(spectral_model, name))(value))
    scenes, seeds, rounds, guides = args.scenes.split(","), args.seeds, args.rounds, args.guides.split(",")
    if args.quick:
        scenes, seeds, rounds, guides = ["salinas_a"], 2, 3, ["base", "dock"]
    if args.cost:
        print(ranking_cost())
        return 0
    if args.merge:  # one file per scene, run side by side: one table and one plot
        runs = [json.loads(Path(f).read_text()) for f in args.merge.split(",")]
        results: dict = {}
        seen, arms = set(), []
        for run in runs:  # a scene's seeds may come from several files (seed ranges run side by side)
            arms += [a for a in run["arms"] if a not in arms]
            for scene, by_arm in run["results"].items():
                for arm, curves in by_arm.items():
                    key = (scene, arm, run.get("first_seed"), run.get("seeds"))
                    if run.get("first_seed") is not None and key in seen:
                        continue  # the random arm again, in a file run for another arm on the same seeds
                    seen.add(key)
                    results.setdefault(scene, {}).setdefault(arm, []).extend(curves)
        rounds = runs[0]["rounds"]
        print(summarise(results, arms, rounds))
        if plot(results, arms, rounds, Path(args.plot)):
            print(f"plot: {args.plot}")
        return 0
    unknown = [g for g in guides if g not in GUIDES and g != "random-px"]
    if unknown:
        ap.error(f"unknown guide(s) {', '.join(unknown)}: choose from {', '.join(GUIDES)} or random-px")
    arms = ["random", *guides]
    results: dict = {}
    t0 = time.perf_counter()
    for scene in scenes:
        results[scene] = {arm: [] for arm in arms}
        for seed in range(args.first_seed, args.first_seed + seeds):
            d = prepare(scene, seed)
            for arm in arms:
                results[scene][arm].append(run_analyst(d, seed, rounds, GUIDES.get(arm), by_size=arm == "random-px"))
            print(f"{scene} seed {seed}: " + ", ".join(f"{a} {results[scene][a][-1]['oa'][-1]:.1f}" for a in arms)
                  + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps({"rounds": rounds, "arms": arms, "search_cap": SEARCH_CAP,
                                                  "self_train": SELF_TRAIN, "grid": GRID, "spectral": settings,
                                                  "first_seed": args.first_seed, "seeds": seeds,
                                                  "guides": {g: vars(GUIDES[g]) for g in guides if g in GUIDES},
                                                  "results": results}, indent=1))
    print(summarise(results, arms, rounds))
    if not args.quick and plot(results, arms, rounds, Path(args.plot)):
        print(f"plot: {args.plot}")
    print(f"wall {time.perf_counter() - t0:.0f} s (2 CPU cores shared with other jobs: an upper bound)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
