"""The map in two stages (issue 29) in the training workflow: which stage a run trains, and stage one.

Stage one fits the normalisation and the spectral model only (core/training/stage_one.py): the map in
seconds on a CPU. Stage two trains RSSGL too, and the cross-validation decides RSSGL's vote in the map
(core/training/cross_validation.py). workflows/train.py ``train_from_files(rssgl_stage=...)`` runs one or
the other; the dock runs stage one, then stage two on the same inputs, and replaces stage one's map only
where ``TrainResult.replaces_stage_one``.
"""

from __future__ import annotations

from ..core.errors import RssglError
from ..io.outputs import checkpoint

__all__ = ["RSSGL_STAGES", "STAGE_ONE", "check_stage", "fit_stage_one", "trains_rssgl"]

#: The RSSGL stage (Processing enum order): "auto" trains RSSGL where the device is a CUDA GPU, else maps with the
#: spectral model only (stage one, seconds); "always" trains RSSGL (minutes on a CPU); "never": stage one only.
RSSGL_STAGES = ("auto", "always", "never")
#: The map's source when RSSGL was not trained (TrainResult.map_source, the report and the log).
STAGE_ONE = "spectral model (stage one)"


def check_stage(rssgl_stage: str, init_from) -> None:
    """Refuse an unknown RSSGL stage, fine-tuning without RSSGL and fine-tuning a stage-one model, in words,
    before anything is read."""
    if rssgl_stage not in RSSGL_STAGES:
        raise RssglError(f"Unknown RSSGL stage '{rssgl_stage}'; expected one of {', '.join(RSSGL_STAGES)}.")
    if init_from is None:
        return
    if rssgl_stage == "never":
        raise RssglError("Fine-tuning trains RSSGL, but the RSSGL stage is 'never' (spectral model only); set the "
                         "RSSGL stage to 'always', or give no model to fine-tune.")
    if getattr(init_from, "spectral_only", False):
        raise RssglError("The model to fine-tune holds the spectral model only (stage one) and no RSSGL network; "
                         "train RSSGL without a model to fine-tune (RSSGL stage 'always').")


def trains_rssgl(rssgl_stage: str, init_from, device) -> bool:
    """Whether this run trains RSSGL (stage two): "always", fine-tuning, or "auto" on a CUDA GPU."""
    return rssgl_stage == "always" or init_from is not None or (rssgl_stage == "auto" and device.type == "cuda")


def fit_stage_one(run, rssgl_stage: str, cv_folds: int, progress, should_stop, log):
    """Stage one: the normalisation and the spectral model only (core.training.stage_one), no cross-validation
    (progress 3 % to 90 %: the band statistics, a whole read of a raster trained on windows, report the rows
    read). Returns (classifier, None). Drops ``run.cube``."""
    from ..core.training.classifier import RssglClassifier

    why = "no CUDA GPU: RSSGL stage 'auto'" if rssgl_stage == "auto" else "RSSGL stage 'never'"
    log("info", f"Stage one ({why}): the map comes from the spectral model alone, fitted in seconds; RSSGL is not "
                "trained. Set the RSSGL stage to 'always' to train RSSGL (minutes on a CPU).")
    if cv_folds:
        log("info", "Cross-validation is skipped in stage one: it decides RSSGL's vote, and RSSGL is not trained.")
    progress(3.0, "fitting the spectral model (stage one)")
    checkpoint("training", should_stop)
    clf = RssglClassifier(params=run.params).fit_spectral_only(
        run.cube, run.labels, valid=run.valid, class_names=run.names, class_colors=run.colors,
        band_info=run.band_info(), progress=lambda percent, message: progress(3.0 + 0.87 * percent, message),
        should_stop=should_stop)
    run.cube = None  # the engine's last message, "spectral model fitted", came at 90 %
    log("info", f"Spectral model fitted on {clf.device_description_} in {clf.train_seconds_:.1f} s "
                f"(input: {clf.training_input_}).")
    return clf, None
