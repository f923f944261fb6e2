"""RSSGL combined with the per-pixel spectral model, the combination chosen by cross-validation.

Why: RSSGL wins where spatial context carries over from the samples to the map (the paper's
scenes, 99 % on Salinas-A) and loses by 12-17 points to a per-pixel SVM where it does not (a real
EnMAP scene with a few samples per class, fields without samples: issue 13). The plugin must never
be the worse choice, so every training fits both and pools their class probabilities log-linearly:

    p(c) ~ p_rssgl(c) ** w * p_spectral(c) ** (1 - w)

with ``w`` from BLEND_CANDIDATES. Which ``w`` wins is decided by cross-validation over whole
samples (the folds of core.data.sampling.group_folds: a polygon is never split), the estimate Train
RSSGL already offers: each fold's RSSGL and spectral model are trained without the fold's samples
and every candidate is scored on them. Without cross-validation ``DEFAULT_BLEND`` is used (chosen on
the accuracy suite, docs/RESULTS.md). The choice is by cross-validated log-loss, after both models'
probabilities are calibrated by temperatures fitted on the same held-out pixels (each T >= 1: only
flattened), and it is
conservative: a pool with RSSGL is chosen only when it beats the spectral model alone by more than
SIGNIFICANCE standard errors of the log-loss difference (over the held-out samples, pixels of one
sample counted together). The log-loss and its gain weigh every held-out class, and within a class every
held-out sample (polygon), the same (``held_out_weights``): weighed by pixels, one polygon of 839 px among
samples of 1-14 px gave RSSGL alone 16.2 standard errors, and it cost 17.7 points on the test pixels (EnMAP,
2 patches per class, seed 7; docs/RESULTS.md, tenth round). With 30-60 held-out pixels the estimates are noisy, and an RSSGL-heavy pool
picked by chance cost up to 6 points on a real EnMAP scene, where RSSGL alone is 10-20 points under
the spectral model; where RSSGL helps (Salinas-A) its gain is many standard errors wide. Heavier pools
need more evidence, and without evidence RSSGL gets no vote: the spectral model alone is used (``_choose``;
the light pool used before cost 2 points on whole polygons, issue 28); where every candidate is right on every
held-out pixel the folds cannot rank them and DEFAULT_BLEND is used, as without cross-validation. The report
shows every candidate's estimate. Where the first fold already rules RSSGL out, its other folds are not
trained (``rssgl_cannot_win``, core/training/spectral_folds.py): the spectral model's folds cost a fraction of RSSGL's.

Both models are calibrated on the held-out pixels, not only RSSGL: the spectral model's own temperature
comes from its cross-validation on the training pixels, and where it is overconfident on unseen samples a
pool with a flattened RSSGL won the log-loss for calibration rather than ranking (EnMAP, 5 pixels per
class: a heavy pool chosen at 2.4 standard errors lost 11 points). On the suite's exploration seeds
100-103 the symmetric calibration raised 9 of 11 cells' mean OA, left one as it was and lowered one
by 0.01 point (mean over the cells +0.27; docs/RESULTS.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.sampling import group_folds
from ..errors import Cancelled
from ..metrics import accuracy_summary, confusion_matrix
from ..spectral.pool import DEFAULT_BLEND, PoolSettings, blend_label, combine
from ..spectral.pool import EPS as _EPS
from ..spectral.spectral_model import sample_weights

__all__ = ["BLEND_CANDIDATES", "DEFAULT_BLEND", "combine", "blend_label", "PoolSettings", "CandidateEstimate",
           "BlendSelection", "cross_validate_blend", "held_out_weights", "rssgl_cannot_win", "score_candidates"]

#: Weights of RSSGL in the pooled probabilities tried by cross-validation (1 = RSSGL alone,
#: 0 = the spectral model alone).
BLEND_CANDIDATES = (1.0, 0.75, 0.5, 0.25, 0.0)
#: How many standard errors of the cross-validated log-loss difference a pool with RSSGL must gain
#: over the spectral model alone to be chosen (chosen on the accuracy suite's exploration seeds,
#: docs/RESULTS.md).
SIGNIFICANCE = 1.0
#: Pools with at least this RSSGL weight need STRONG_SIGNIFICANCE standard errors. First chosen at 0.75 on the
#: exploration seeds 100-105 of the accuracy suite (``benchmarks/blend_rule.py``, docs/RESULTS.md): the worst cell
#: against the spectral model alone went from -1.48 to -0.27 OA points, the mean from +0.28 to +0.57. Since the
#: fourteenth round half pools count as heavy too (``blend_rule.py --thresholds`` on the recorded exploration runs,
#: 33 cells of six runs: mean +0.34 instead of +0.26 over the spectral model, cells under -0.3 one instead of five;
#: half pools picked on 1-2 standard errors had cost up to 8.6 points on a split with 2 polygons a class).
HEAVY = 0.5
STRONG_SIGNIFICANCE = 2.0
#: RSSGL's weight when no pool has the evidence it needs: none, the spectral model alone (issue 28: the light
#: pool, 0.25, used until then, cost 2.1-2.2 points on whole polygons, where the folds found no evidence in 19
#: of 20 splits; docs/RESULTS.md, ninth round).
FALLBACK = 0.0
#: How many cross-validation folds train RSSGL (``cross_validate_blend``): "adaptive" stops after the first
#: fold where ``rssgl_cannot_win``; "all"; "none".
RSSGL_FOLDS = "adaptive"
#: RSSGL's other folds are trained only where some pool's log-loss gain over the spectral model alone on the
#: first fold's held-out samples exceeds this many standard errors (``rssgl_cannot_win``): a pool well behind
#: on one fold rarely clears SIGNIFICANCE over all. Chosen on the ninth round's runs (seeds 0-9 polygons, 0-5
#: random pixels; ``blend_rule.py --rescore --early``): at -1.5 no cell's mean OA changed and up to 20 % of the
#: polygon splits skipped two of RSSGL's three folds; at -1 Salinas-A 1 % lost 0.31, at 0 Salinas-A 5 px/class
#: lost 0.59 (one split stopped wrongly) while 60-70 % of EnMAP's polygon splits skipped.
EARLY_STOP_SE = -1.5
#: How the held-out pixels weigh in the cross-validated log-loss and its gain (``held_out_weights``): "samples",
#: every class the same and within a class every held-out sample (polygon) the same; "pixels", every pixel the
#: same, so one large polygon decided a fold (the rule until the tenth round: on EnMAP with 2 and 4 patches per
#: class, pools chosen at 1.8-17.9 standard errors on one patch of 51-839 px lost 20-24 points; docs/RESULTS.md).
HELD_OUT_WEIGHTS = "samples"
#: Pools with at least this RSSGL weight must also get as many held-out pixels right as the spectral model alone
#: (their cross-validated OA), else FALLBACK (``_choose``). Every pool since the fifteenth round (0.25; half pools
#: and heavier before): pooling a flattened RSSGL lowers the log-loss for calibration alone, and light pools chosen
#: so lost on EnMAP 1 % (up to 2.5 points on one split). Re-scored on the recorded exploration runs
#: (``blend_rule.py --thresholds --oa-check``, 33 cells): worst cell -1.23 instead of -1.50 against the spectral model
#: alone, mean +0.28 instead of +0.34 (docs/RESULTS.md, fifteenth round).
OA_CHECK_FROM = 0.25


@dataclass
class CandidateEstimate:
    """One candidate combination's cross-validated accuracy (pooled over the folds)."""

    weight: float
    label: str
    summary: dict[str, Any]
    confusion: np.ndarray
    log_loss: float = float("nan")
    #: The log-loss gain over the spectral model alone in standard errors (nan for the spectral model).
    gain_se: float = float("nan")


@dataclass
class BlendSelection:
    """What the cross-validation found: every candidate's estimate and the pool chosen (its weight, and both
    temperatures fitted on the same held-out pixels)."""

    folds: int
    class_values: list[int]
    candidates: list[CandidateEstimate]
    pool: PoolSettings
    untested: list[int] = field(default_factory=list)
    seconds: float = 0.0
    #: Folds whose RSSGL was trained (fewer than ``folds`` where the first fold ruled RSSGL out).
    rssgl_folds: int = 0

    @property
    def chosen(self) -> CandidateEstimate:
        return next(c for c in self.candidates if c.weight == self.pool.weight)


def held_out_weights(reference: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """Each held-out pixel's weight in the cross-validated log-loss and its gain (they sum to 1): per HELD_OUT_WEIGHTS,
    "samples": every class among the held-out pixels weighs the same, and within a class every held-out sample
    (polygon) the same, shared by its pixels; "pixels": every pixel the same (the rule until the tenth round)."""
    n = reference.size
    if HELD_OUT_WEIGHTS == "pixels" or n == 0:
        return np.full(n, 1.0 / max(n, 1))
    # the spectral model's fit weighs its training pixels by the same rule (mean 1 there)
    w = sample_weights(reference, sample, "samples+classes")
    return w / w.sum()


def _gain_in_se(nll: Tensor, base: Tensor, sample: np.ndarray, weights: np.ndarray | None = None) -> float:
    """How many standard errors the weighted mean per-pixel log-loss ``nll`` lies below ``base`` (``weights``,
    summing to 1, from ``held_out_weights``; None: every pixel the same): the standard error of the weighted mean
    difference counts the pixels of one sample together (they are not independent)."""
    d = (base - nll).double().numpy()
    n = d.size
    ids, inverse = np.unique(sample, return_inverse=True)
    if n < 2 or ids.size < 2:
        return 0.0
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
    mean = float((w * d).sum())
    cluster = np.bincount(inverse, weights=w * (d - mean), minlength=ids.size)
    se = float(np.sqrt((cluster ** 2).sum() * ids.size / (ids.size - 1)))
    if se <= 0.0:
        return float("inf") if mean > 0 else 0.0
    return mean / se


def _choose(candidates: list[CandidateEstimate]) -> float:
    """The pool with the lowest cross-validated log-loss (a proper score: with 30-60 held-out pixels the OA
    moves in steps of 2-3 points and picks by chance among near ties), ties to the one nearest
    DEFAULT_BLEND, if it beats the spectral model alone by the evidence its weight needs: SIGNIFICANCE
    standard errors, STRONG_SIGNIFICANCE for RSSGL weights of HEAVY and more (a heavy pool picked by chance
    is what cost up to 7 points on EnMAP; a light one costs little where RSSGL is weak). A heavy pool short
    of that, even of SIGNIFICANCE, gives way to the best light pool that clears SIGNIFICANCE (before, one
    short of SIGNIFICANCE went straight to FALLBACK even where a half pool cleared it: on Salinas-A 1 % that
    lost 0.6 points on a split whose RSSGL gain was 0.99 standard errors, 1.06 on a rerun; on the
    exploration seeds it changed 1 of 60 choices, +0.08); without any, FALLBACK: RSSGL gets no vote, the
    spectral model alone is used (until the ninth round the light pool, RSSGL x 0.25, which lost 2 points on
    whole polygons where the folds found no evidence: docs/RESULTS.md). A pool of at least OA_CHECK_FROM RSSGL
    (every pool since the fifteenth round, half pools and heavier before) must also get as many held-out pixels
    right as the spectral model alone (its cross-validated OA), else FALLBACK: first on the exploration seeds this
    took the worst cell from -0.27 to +0.06 points against the spectral model alone, the mean from +0.57 to +0.66,
    and changed no Salinas-A choice. Without the spectral model the lowest log-loss decides.

    Where every candidate got every held-out pixel right (``saturated``), the folds cannot rank them and the
    fallback is DEFAULT_BLEND, the pool used without cross-validation, instead of the light pool: the five
    such splits in the suite's recorded runs (Salinas-A, 5, 10 and 25 pixels per class and 1 %; exploration
    and report seeds, every round since the test OA of each pool was recorded) had used the light pool or
    the spectral model alone, and the half pool measured 0.25-1.30 points better on their test pixels in
    every run, never worse (``benchmarks/blend_rule.py --saturated``, docs/RESULTS.md)."""
    spectral = next((c for c in candidates if c.weight <= 0.0), None)
    ranked = sorted((c for c in candidates if c.weight > 0.0), key=lambda c: (c.log_loss, abs(c.weight - DEFAULT_BLEND)))
    if spectral is None:
        return ranked[0].weight
    if not ranked:
        return spectral.weight
    fallback = FALLBACK if any(c.weight == FALLBACK for c in ranked) else spectral.weight  # 0: the spectral model
    if saturated(candidates) and any(c.weight == DEFAULT_BLEND for c in ranked):
        fallback = DEFAULT_BLEND

    def beats(c: CandidateEstimate, z: float) -> bool:
        return c.log_loss < spectral.log_loss and c.gain_se > z

    best = ranked[0]
    chosen = best
    if best.weight >= HEAVY and not beats(best, STRONG_SIGNIFICANCE):
        light = [c for c in ranked if c.weight < HEAVY and beats(c, SIGNIFICANCE)]
        if not light:
            return fallback
        chosen = light[0]
    elif not beats(best, SIGNIFICANCE):
        return fallback
    if chosen.weight >= OA_CHECK_FROM and _oa(chosen) < _oa(spectral):
        return fallback  # a pool at least half RSSGL that got fewer held-out pixels right than the spectral model
    return chosen.weight


def saturated(candidates: list[CandidateEstimate]) -> bool:
    """Every candidate right on every held-out pixel: nothing for the cross-validation to rank them by."""
    return bool(candidates) and all(_oa(c) == 1.0 for c in candidates)


def _oa(candidate: CandidateEstimate) -> float:
    return float(candidate.summary.get("oa", float("nan"))) if candidate.summary else float("nan")


def _fit_temperature(p: Tensor, index: Tensor, lowest: float = 1.0) -> float:
    """The temperature T minimising the log-loss of softmax(log p / T) for (K, n) p, T in ``lowest``-30
    (ten steps a decade).

    Never below 1 (both models): where every held-out pixel happens to be right (Salinas-A) the log-loss
    would keep falling as T -> 0 and let a sharpened model outvote the other everywhere (RSSGL: -2.6 OA
    points on one split; the spectral model with a bound of 0.1: -2.0 on one exploration split, and its
    worst cell -0.28 instead of -0.01)."""
    logp = torch.log(p.double().clamp_min(_EPS)).t()
    start = math.log10(lowest)
    grid = torch.logspace(start, 1.5, round(10 * (1.5 - start)) + 1, dtype=torch.float64)
    losses = torch.stack([torch.nn.functional.cross_entropy(logp / t, index) for t in grid])
    return float(grid[int(torch.argmin(losses))])


def score_candidates(pr: Tensor, ps: Tensor | None, reference: np.ndarray, present: list[int], sample: np.ndarray,
                     temperature: float, spectral_temperature: float = 1.0) -> list[CandidateEstimate]:
    """Every candidate pool scored on held-out pixels: (K, n) probabilities of RSSGL ``pr`` and of the spectral
    model ``ps`` (None: RSSGL alone) in the order of the class values ``present``, the pixels' class values
    ``reference`` and samples ``sample``, RSSGL calibrated by ``temperature``, the spectral model by
    ``spectral_temperature``. The accuracy, the mean log-loss
    and the log-loss gain over the spectral model in standard errors, what ``_choose`` decides on."""
    weights = BLEND_CANDIDATES if ps is not None else (1.0,)
    values = np.asarray(present)
    index = torch.from_numpy(np.searchsorted(values, reference))
    per_pixel = {}
    confusions = {}
    for w in weights:
        pooled = combine(pr, ps, w, dim=0, temperature=temperature, spectral_temperature=spectral_temperature)
        confusions[w] = confusion_matrix(reference, values[pooled.argmax(dim=0).numpy()], present)
        per_pixel[w] = torch.nn.functional.nll_loss(torch.log(pooled.double().clamp_min(_EPS)).t(), index,
                                                    reduction="none")
    base = per_pixel.get(0.0)
    pixel_weights = held_out_weights(np.asarray(reference), np.asarray(sample))
    weight_t = torch.from_numpy(pixel_weights)
    return [CandidateEstimate(w, blend_label(w), accuracy_summary(confusions[w]), confusions[w],
                              float((per_pixel[w] * weight_t).sum()),
                              float("nan") if base is None or w <= 0.0
                              else _gain_in_se(per_pixel[w], base, sample, pixel_weights))
            for w in weights]


def _scored(pr: np.ndarray | None, ps: np.ndarray | None, reference: np.ndarray, present: list[int],
            sample: np.ndarray) -> tuple[list[CandidateEstimate], float, float]:
    """(candidates, RSSGL's temperature, the spectral model's) on held-out pixels: both temperatures fitted on
    them, then every candidate scored. ``pr`` None: the spectral model alone (scored as RSSGL-free "RSSGL"
    rows are not wanted, so its candidate is the spectral one)."""
    index = torch.from_numpy(np.searchsorted(np.asarray(present), reference))
    spectral_temperature = _fit_temperature(torch.from_numpy(ps), index) if ps is not None else 1.0
    if pr is None:
        cands = score_candidates(torch.from_numpy(ps), None, reference, present, sample, spectral_temperature)
        return [CandidateEstimate(0.0, blend_label(0.0), c.summary, c.confusion, c.log_loss) for c in cands], 1.0, \
            spectral_temperature
    temperature = _fit_temperature(torch.from_numpy(pr), index)
    return (score_candidates(torch.from_numpy(pr), None if ps is None else torch.from_numpy(ps), reference, present,
                             sample, temperature, spectral_temperature), temperature, spectral_temperature)


def rssgl_cannot_win(first_fold: list[CandidateEstimate]) -> bool:
    """Whether the first fold's held-out samples rule RSSGL out, so its other folds need not be trained: every pool
    with RSSGL is behind the spectral model alone by at least -EARLY_STOP_SE standard errors of log-loss (the
    rule needs a gain of SIGNIFICANCE over all folds), and the candidates are not saturated (all right
    everywhere: then nothing ranks them, and the rule falls back to DEFAULT_BLEND)."""
    spectral = next((c for c in first_fold if c.weight <= 0.0), None)
    pools = [c for c in first_fold if c.weight > 0.0]
    if spectral is None or not pools or saturated(first_fold):
        return False
    return all(not c.gain_se > EARLY_STOP_SE for c in pools)  # nan (no spectral model to gain over): never


def _fold_probabilities(make_classifier: Callable[[], Any], cube: Any, valid: np.ndarray, train: np.ndarray,
                        held_out: np.ndarray, with_rssgl: bool, progress: Callable[[float, str], None],
                        fit_kwargs: dict | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None,
                                                          PoolSettings | None]:
    """(the fold's class values, RSSGL's and the spectral model's (K, n) held-out probabilities, the fold model's
    pool): both models trained without the fold's samples, or the spectral model alone (RSSGL None) where
    ``with_rssgl`` is False and core.training.spectral_folds can reproduce the fold's spectral model."""
    clf = make_classifier()
    params = getattr(clf, "params", None)
    kwargs = fit_kwargs or {}
    if not with_rssgl and kwargs.get("init_from") is None:  # a fine-tuned fold keeps its base model's statistics
        from .spectral_folds import spectral_only_supported, spectral_probabilities_at

        if spectral_only_supported(params, cube):
            should_stop = kwargs.get("should_stop")
            if should_stop is not None and should_stop():
                raise Cancelled("Cross-validation cancelled.")
            progress(0.0, "the spectral model")
            classes, spectral = spectral_probabilities_at(params, cube, valid, train, held_out)
            return classes, None, spectral, None
    clf.fit(cube, train, valid=valid, progress=progress, **kwargs)
    rssgl, spectral = clf.component_probabilities_at(cube, valid, held_out)
    return clf.classes_, rssgl, spectral, clf.pool_


@dataclass
class _HeldOut:
    """What the folds gathered on their held-out pixels, one array per fold run (skipped folds add none)."""

    reference: list[np.ndarray] = field(default_factory=list)
    samples: list[np.ndarray] = field(default_factory=list)
    p_r: list[np.ndarray] = field(default_factory=list)
    p_s: list[np.ndarray] = field(default_factory=list)
    fold_of: list[np.ndarray] = field(default_factory=list)
    fold_seconds: list[float] = field(default_factory=list)
    #: Folds whose RSSGL was trained (its held-out probabilities are the first p_r columns).
    rssgl_trained: int = 0


def _add_fold_probabilities(held: _HeldOut, present: list[int], classes: np.ndarray, rssgl: np.ndarray | None,
                            spectral: np.ndarray | None, n_held_out: int, rssgl_on: bool) -> None:
    """Append the fold's (K, n) probabilities in the scene's class order (a class missing from the fold's
    training gets 0); RSSGL gets no columns once its folds are off."""
    cols = [present.index(v) for v in classes]
    for source, sink in ((rssgl, held.p_r), (spectral, held.p_s)):
        if source is None and sink is held.p_r and not rssgl_on:
            continue
        full = np.zeros((len(present), n_held_out), dtype=np.float32)
        if source is not None:
            full[cols] = source
        sink.append(full)


def _log_fold_accuracy(log: Callable[[str, str], None], fold: int, used: int, classes: np.ndarray,
                       rssgl: np.ndarray | None, spectral: np.ndarray | None, pool: PoolSettings | None,
                       reference: np.ndarray, held_out: np.ndarray, groups: np.ndarray) -> None:
    """Log the share of the fold's held-out pixels its own model (with its pool) got right."""
    pooled = (pool or PoolSettings(weight=0.0)).pooled(
        torch.from_numpy(rssgl) if rssgl is not None else torch.from_numpy(spectral),
        None if spectral is None else torch.from_numpy(spectral), dim=0)
    hit = classes[pooled.argmax(dim=0).numpy()] == reference
    log("info", f"Cross-validation fold {fold} of {used}: {int(held_out.sum())} pixels of "
                f"{len(np.unique(groups[held_out]))} held-out samples, {100.0 * float(hit.mean()):.2f} % correct"
                + ("" if rssgl is not None else " (the spectral model alone)") + ".")


def _run_folds(make_classifier: Callable[[], Any], cube: np.ndarray, valid: np.ndarray, labels: np.ndarray,
               groups: np.ndarray, fold_map: np.ndarray, used: int, present: list[int], rssgl_folds: str,
               fit_kwargs: dict | None, progress: Callable[[float, str], None],
               log: Callable[[str, str], None]) -> _HeldOut:
    """Train and score every fold in turn; with "adaptive", RSSGL's later folds are dropped where the first
    fold shows ``rssgl_cannot_win``."""
    held = _HeldOut()
    rssgl_on = rssgl_folds != "none"
    for fold in range(1, used + 1):
        held_out = fold_map == fold
        train = np.where(held_out, 0, labels)
        kept = [int(v) for v in np.unique(train[train > 0])]
        if len(kept) < 2:
            log("warning", f"Cross-validation fold {fold} of {used} skipped: without its samples fewer than 2 "
                           "classes are left to train on.")
            continue

        def fold_progress(percent: float, message: str, fold=fold) -> None:
            progress(100.0 * (fold - 1 + percent / 100.0) / used, f"cross-validation fold {fold} of {used}: {message}")

        t_fold = time.perf_counter()
        classes, rssgl, spectral, pool = _fold_probabilities(make_classifier, cube, valid, train, held_out, rssgl_on,
                                                             fold_progress, fit_kwargs)
        _add_fold_probabilities(held, present, classes, rssgl, spectral, int(held_out.sum()), rssgl_on)
        held.reference.append(labels[held_out])
        held.samples.append(groups[held_out])
        held.fold_of.append(np.full(int(held_out.sum()), fold, dtype=np.int32))
        held.fold_seconds.append(time.perf_counter() - t_fold)
        _log_fold_accuracy(log, fold, used, classes, rssgl, spectral, pool, held.reference[-1], held_out,
                           groups)
        if rssgl is not None:
            held.rssgl_trained += 1
        if rssgl_folds == "adaptive" and held.rssgl_trained == 1 and spectral is not None and fold < used:
            first = _scored(held.p_r[0], held.p_s[0], held.reference[0], present, held.samples[0])[0]
            if rssgl_cannot_win(first):
                rssgl_on = False
                log("info", f"RSSGL is not trained on the other {used - fold} cross-validation fold(s): on the first "
                            "fold's held-out samples no combination with RSSGL came close to the spectral model alone "
                            "(log-loss), so the spectral model alone is cross-validated and used for the map.")
    return held


def _log_choice(log: Callable[[str, str], None], candidates: list[CandidateEstimate], chosen: float,
                ps: np.ndarray | None, calibrated_on_all: bool, temperature: float,
                spectral_temperature: float) -> None:
    """Log why the choice was made: saturation, the temperatures and every candidate's estimate."""
    if ps is not None and len(candidates) > 1 and saturated(candidates):
        log("info", "Every candidate classified every held-out pixel correctly, so their accuracies cannot rank "
                    "them: a combination needs clear log-loss evidence, and without it the default combination "
                    f"({blend_label(DEFAULT_BLEND)}) is used.")
    if ps is not None and calibrated_on_all:
        log("info", f"Calibrated on the held-out pixels: RSSGL's temperature {temperature:.2f}, the spectral model's "
                    f"{spectral_temperature:.2f} (1 = as trained; higher = less confident).")
    for c in candidates:
        log("info", f"Cross-validated OA of {c.label}: {100 * c.summary['oa']:.2f} % "
                    f"(+- {100 * c.summary['oa_ci95']:.2f}), log-loss {c.log_loss:.3f}"
                    + ("" if np.isnan(c.gain_se) else f", gain over the spectral model {c.gain_se:.1f} standard errors")
                    + f"{' <- chosen' if c.weight == chosen else ''}.")


def cross_validate_blend(
    make_classifier: Callable[[], Any],
    cube: np.ndarray,
    valid: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    folds: int,
    *,
    seed: int = 0,
    fit_kwargs: dict | None = None,
    progress: Callable[[float, str], None] | None = None,
    log: Callable[[str, str], None] | None = None,
    keep_pixels: dict | None = None,
    rssgl_folds: str | None = None,
) -> BlendSelection | None:
    """Train one classifier per fold without that fold's samples; score every blend on the fold.

    ``make_classifier()`` returns an unfitted RssglClassifier (it fits RSSGL and the spectral model).
    Returns None when no class has two separate samples (nothing can be tested on unseen samples).
    ``keep_pixels``, a dict, receives the held-out pixels' classes, samples and both models' probabilities
    with the class values of their rows (for the accuracy suite's study of the choice rule).
    ``rssgl_folds`` (default RSSGL_FOLDS): "all" trains RSSGL on every fold; "adaptive" stops after the first
    fold where ``rssgl_cannot_win``, then only the spectral model is cross-validated, and used; "none" never
    trains RSSGL in the folds (the spectral model alone is used).
    """
    rssgl_folds = rssgl_folds or RSSGL_FOLDS
    if rssgl_folds not in ("all", "adaptive", "none"):
        raise ValueError(f"rssgl_folds must be 'all', 'adaptive' or 'none', not {rssgl_folds!r}.")
    log = log or (lambda level, message: None)
    progress = progress or (lambda percent, message: None)
    started = time.perf_counter()
    fold_map = group_folds(labels, groups, folds, seed=seed)
    used = int(fold_map.max())
    present = [int(v) for v in np.unique(labels[labels > 0])]
    untested = [v for v in present if not ((labels == v) & (fold_map > 0)).any()]
    if used < 2:
        return None
    held = _run_folds(make_classifier, cube, valid, labels, groups, fold_map, used, present, rssgl_folds,
                      fit_kwargs, progress, log)
    reference, samples, p_r, p_s = held.reference, held.samples, held.p_r, held.p_s
    rssgl_trained = held.rssgl_trained
    if not reference:
        return None
    ref = np.concatenate(reference)
    sample = np.concatenate(samples)
    has_spectral = len(p_s) == len(reference) and all(p.any() for p in p_s)
    ps_all = np.concatenate(p_s, axis=1) if has_spectral else None
    if len(p_r) == len(reference):  # RSSGL held out on every fold: every candidate pool is scored
        candidates, temperature, spectral_temperature = _scored(np.concatenate(p_r, axis=1), ps_all, ref, present,
                                                                sample)
    elif has_spectral:  # RSSGL's folds skipped: the spectral model alone is estimated, and used
        candidates, _, spectral_temperature = _scored(None, ps_all, ref, present, sample)
        temperature = 1.0
    else:
        return None
    if keep_pixels is not None:
        keep_pixels.update(reference=ref, sample=sample, rssgl=np.concatenate(p_r, axis=1) if p_r else None,
                           spectral=ps_all, temperature=temperature, spectral_temperature=spectral_temperature,
                           classes=np.asarray(present), fold=np.concatenate(held.fold_of),
                           fold_seconds=np.asarray(held.fold_seconds), rssgl_folds=rssgl_trained)
    ps = ps_all
    chosen = _choose(candidates)
    result = BlendSelection(folds=used, class_values=present, candidates=candidates,
                            pool=PoolSettings(chosen, temperature, spectral_temperature), untested=untested,
                            seconds=time.perf_counter() - started, rssgl_folds=rssgl_trained)
    _log_choice(log, candidates, chosen, ps, rssgl_trained == len(reference), temperature,
                spectral_temperature)
    return result
