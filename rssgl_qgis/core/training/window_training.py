"""Training RSSGL on windows around the samples: memory and time per iteration set by a budget, not the raster.

Whole-scene training (core/training/classifier.py) runs the network over the whole padded raster at every
iteration, so its memory grows with the raster (25 KB per pixel on a GPU) and a 1000 x 1000 scene
does not fit an 8 GiB GPU. Here the raster is cut exactly like tiled classification cuts it
(``plan_tiles``: cores of ``core`` pixels, read windows of core + 2 x halo, rounded to 16); only the
tiles whose core holds training pixels are trained on, ``batch`` windows per iteration, and the loss
covers the training pixels of each core only, so every training pixel sees at least ``halo`` pixels
of context, as it will when classified.

What keeps a window-trained network close to a whole-scene one is the normalisation. RSSGL's
GroupNorm layers and channel attention use statistics of their whole input; a window's own
statistics are not the scene's (that is what made tiled maps disagree, docs/PERFORMANCE.md). So in
training every layer normalises the iteration's windows with the statistics of all their cores
pooled (core/prediction/scene_stats.py, ``pooled``), with gradients, as whole-scene training does over the
scene: when the windows cover the scene, these are the whole scene's statistics. Frozen scene
statistics (refreshed once per epoch, like a batch norm's running statistics) were tried first and
diverged within a few epochs (the weights move faster than the statistics follow). Each epoch's
evaluation, like tiled classification, uses whole-scene statistics gathered by one statistics pass
over a spread sample of the raster's tiles, started from the previous epoch's.

The selection rules are those of whole-scene training: each epoch (``epoch_iterations``) scores
the weights on the pixels of the selection mode ("fit": the training pixels; "validation";
"paper": the test pixels; "loss": the epoch's mean training loss) over their tiles, at most
``EVAL_TILES`` of them, and the best epoch's weights are kept.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.sampling import HBMinibatchSampler
from ..errors import Cancelled
from ..network.model import PAD_MULTIPLE
from ..prediction.memory_model import TRAIN_BYTES, TRAIN_OVERHEAD_BYTES
from ..prediction.scene_stats import SceneStatistics
from ..prediction.statistics_passes import stats_region
from ..prediction.tiling import DEFAULT_HALO as TILED_HALO
from ..prediction.tiling import plan_tiles
from .windowed_scene import WindowedScene

__all__ = ["WindowPlan", "plan_windows", "WindowTrainer", "DEFAULT_CORE", "DEFAULT_HALO"]

log = logging.getLogger(__name__)

#: Core and halo of a training window (pixels): 64 + 2 x 32 = 128 x 128 windows. The halo is the
#: context tiled classification gives every core (tiling.DEFAULT_HALO).
DEFAULT_CORE = 64
DEFAULT_HALO = TILED_HALO
#: Windows per iteration at most (more are drawn only if the memory budget allows).
MAX_BATCH = 8
#: Tiles one statistics pass looks at (spread over the raster; all of them on smaller rasters).
STAT_TILES = 16
#: Tiles an epoch's evaluation looks at, at most (a fixed spread subset of the evaluation pixels' tiles).
EVAL_TILES = 64
#: Host memory for the normalised windows kept between iterations (the rest are read again).
CACHE_BYTES = 1 << 30
#: Device memory for training windows when the device does not say (and a cap for large GPUs): fits 8 GiB.
DEFAULT_DEVICE_BUDGET = 6 << 30


@dataclass(frozen=True)
class WindowPlan:
    """Geometry and batch of window training."""

    core: int
    halo: int
    batch: int

    @property
    def window(self) -> int:
        return int(math.ceil((self.core + 2 * self.halo) / PAD_MULTIPLE) * PAD_MULTIPLE)

    def describe(self) -> str:
        return (f"windows of {self.window} x {self.window} pixels ({self.core}-pixel cores with a {self.halo}-pixel "
                f"halo), {self.batch} per iteration")


def plan_windows(bands: int, device: torch.device, *, core: int = 0, halo: int = DEFAULT_HALO, batch: int = 0,
                 budget_bytes: int | None = None) -> WindowPlan:
    """Window geometry and batch for ``device``: ``batch`` windows must fit the budget (free memory, at most 6 GiB).

    The per-pixel cost is the training memory model of whole-scene training (inference.TRAIN_BYTES),
    which counts forward, backward and optimizer per padded pixel; 0 means automatic.
    """
    core = int(core) or DEFAULT_CORE
    if core < 16 or halo < 0:
        raise ValueError(f"Training windows need a core of at least 16 pixels and a halo >= 0; got {core} and {halo}.")
    plan = WindowPlan(core, int(halo), 1)
    per_px, per_band = TRAIN_BYTES["cuda" if device.type == "cuda" else "cpu"]
    per_window = plan.window**2 * (per_px + per_band * bands)
    if budget_bytes is None:
        budget_bytes = DEFAULT_DEVICE_BUDGET
        if device.type == "cuda" and torch.cuda.is_available():
            free, _ = torch.cuda.mem_get_info(device)
            budget_bytes = min(budget_bytes, int(free * 0.8))
        elif device.type == "cpu":
            budget_bytes = 2 << 30
    fits = max(1, (int(budget_bytes) - TRAIN_OVERHEAD_BYTES) // per_window)
    return WindowPlan(core, int(halo), int(batch) if batch else int(min(MAX_BATCH, fits)))


def _spread(indices: np.ndarray, grid: tuple[int, int], count: int, shift: int) -> np.ndarray:
    """About ``count`` of the tile ``indices`` (row-major on ``grid``) spread over it: a lattice, shifted."""
    if indices.size <= count:
        return indices
    rows, cols = np.divmod(indices, grid[1])
    step = max(1, int(round(math.sqrt(indices.size / count))))
    pick = ((rows + shift) % step == 0) & ((cols + shift // step + shift) % step == 0)
    chosen = indices[pick]
    if chosen.size < max(1, count // 2):  # a sparse set of tiles: take evenly spaced ones instead
        chosen = indices[np.linspace(0, indices.size - 1, count).round().astype(int)]
    return np.unique(chosen)


class WindowTrainer:
    """One training run on windows (built by RssglClassifier.fit; see the module docstring).

    ``points``: a dict of pixel sets, each (rows, cols, class indices) int64 arrays: "train" always,
    "val" / "eval" when the selection needs them.
    """

    def __init__(self, scene: WindowedScene, mean: np.ndarray, std: np.ndarray, plan: WindowPlan,
                 points: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], device: torch.device, *,
                 seed: int, amp: bool) -> None:
        self.scene, self.plan, self.device, self.amp = scene, plan, device, amp
        self.mean = torch.as_tensor(mean, dtype=torch.float32)[:, None, None]
        self.inv_std = (1.0 / torch.as_tensor(std, dtype=torch.float32))[:, None, None]
        self.tiles = plan_tiles(scene.height, scene.width, plan.core, plan.halo)
        self.read_shape = (self.tiles[0].read.height, self.tiles[0].read.width)  # one shape for every tile
        self.grid = (math.ceil(scene.height / plan.core), math.ceil(scene.width / plan.core))
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self.stats = SceneStatistics()
        self._cache: dict[int, tuple[Tensor, Tensor]] = {}
        self._cache_bytes = 0
        self.points = {k: self._by_tile(*v) for k, v in points.items()}
        # float32 windows when every training window fits the cache (exactly the whole-scene input), else float16
        window_values = scene.bands * self.read_shape[0] * self.read_shape[1]
        self.cache_dtype = torch.float32 if len(self.points["train"]) * window_values * 4 <= CACHE_BYTES \
            else torch.float16

    # ------------------------------------------------------------------ geometry
    def _tile_of(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return (rows // self.plan.core) * self.grid[1] + cols // self.plan.core

    def _by_tile(self, rows: np.ndarray, cols: np.ndarray, classes: np.ndarray) -> dict[int, tuple]:
        """Pixels grouped by the tile whose core holds them: tile -> (rows, cols, class indices) inside its window."""
        tiles = self._tile_of(rows, cols)
        out: dict[int, tuple] = {}
        order = np.argsort(tiles, kind="stable")
        bounds = np.flatnonzero(np.diff(tiles[order])) + 1
        for part in np.split(order, bounds):
            if part.size:
                t = int(tiles[part[0]])
                read = self.tiles[t].read
                out[t] = (rows[part] - read.row, cols[part] - read.col, classes[part])
        return out

    def tile_indices(self, name: str) -> np.ndarray:
        return np.asarray(sorted(self.points[name]), dtype=np.int64)

    # ------------------------------------------------------------------ data
    def window(self, t: int) -> tuple[Tensor, Tensor]:
        """The normalised window of tile ``t`` (B, h, w) float32 on the device and its valid mask (h, w)."""
        hit = self._cache.get(t)
        if hit is not None:
            return hit[0].to(self.device, torch.float32, non_blocking=True), hit[1].to(self.device)
        raw, valid = self.scene.read(self.tiles[t].read)
        x = (torch.from_numpy(raw) - self.mean) * self.inv_std
        v = torch.from_numpy(valid)
        x = torch.where(v[None], x, torch.zeros(()))
        size = x.numel() * self.cache_dtype.itemsize + v.numel()
        if self._cache_bytes + size <= CACHE_BYTES:
            self._cache[t] = (x.to(self.cache_dtype), v)
            self._cache_bytes += size
        return x.to(self.device), v.to(self.device)

    def batch(self, tiles: list[int]) -> tuple[Tensor, list[Tensor]]:
        xs, vs = zip(*(self.window(t) for t in tiles), strict=True)
        return torch.stack(xs), list(vs)

    def batches(self, tiles: Iterable[int], should_stop: Callable[[], bool] | None
                ) -> Iterator[tuple[list[int], Tensor, list[Tensor]]]:
        """(tiles, windows, valid masks) of ``tiles`` in batches of the plan's size; Cancelled before each batch."""
        tiles = [int(t) for t in tiles]
        for i in range(0, len(tiles), self.plan.batch):
            if should_stop is not None and should_stop():
                raise Cancelled("Training was cancelled.")
            part = tiles[i : i + self.plan.batch]
            yield (part, *self.batch(part))

    def targets(self, tiles: list[int], valids: list[Tensor], name: str) -> Tensor:
        """(N, h, w) class-index map of the ``name`` pixels in each tile's core, -1 elsewhere (and on invalid pixels)."""
        out = torch.full((len(tiles), *self.read_shape), -1, dtype=torch.long)
        for i, t in enumerate(tiles):
            r, c, k = self.points[name].get(t, (np.empty(0, int),) * 3)
            out[i, torch.as_tensor(r), torch.as_tensor(c)] = torch.as_tensor(k, dtype=torch.long)
        out = out.to(self.device)
        return torch.where(torch.stack(valids), out, torch.full((), -1, device=self.device))

    def spectra_at(self, name: str = "train") -> tuple[Tensor, np.ndarray, np.ndarray, np.ndarray]:
        """The normalised spectra (n, B) of the ``name`` pixels on valid pixels, with their classes and each pixel's
        raster row and column: the windows list their pixels tile by tile, so a caller that knows something else
        of each pixel (its sample polygon) finds it by position."""
        spectra, classes, rows, cols = [], [], [], []
        for t, (r, c, k) in sorted(self.points[name].items()):
            x, v = self.window(t)
            keep = v[torch.as_tensor(r), torch.as_tensor(c)].cpu().numpy()
            spectra.append(x[:, torch.as_tensor(r[keep]), torch.as_tensor(c[keep])].t())
            classes.append(k[keep])
            read = self.tiles[t].read
            rows.append(r[keep] + read.row)
            cols.append(c[keep] + read.col)
        return torch.cat(spectra), np.concatenate(classes), np.concatenate(rows), np.concatenate(cols)

    def unlabelled_spectra(self) -> Tensor:
        """Normalised spectra (m, B) of the valid unlabelled pixels in the cores of a spread sample of the
        raster's tiles (the spectral model's self-training, core/spectral/spectral_model.py, which draws at most
        UNLABELLED_CAP of them)."""
        chosen = [int(t) for t in _spread(np.arange(len(self.tiles)), self.grid, STAT_TILES, 0)]
        parts = []
        for t in chosen:
            x, v = self.window(t)
            core = self.tiles[t].core_in_read
            free = v.clone()
            for name in ("train", "val"):
                r, c, _ = self.points.get(name, {}).get(t, (np.empty(0, int),) * 3)
                free[torch.as_tensor(r, dtype=torch.long), torch.as_tensor(c, dtype=torch.long)] = False
            mask = torch.zeros_like(free)
            mask[core] = free[core]
            parts.append(x[:, mask].t())
        return torch.cat(parts) if parts else torch.zeros((0, self.scene.bands), device=self.device)

    # ------------------------------------------------------------------ statistics
    def regions(self, tiles: list[int]) -> list[tuple[int, int, int, int]]:
        return [stats_region(self.tiles[t], self.scene.height, self.scene.width) for t in tiles]

    def refresh_statistics(self, model: torch.nn.Module, refresh: int,
                           should_stop: Callable[[], bool] | None = None) -> int:
        """One statistics pass of the current weights over a spread sample of the raster's tiles (no gradients)."""
        all_tiles = np.arange(len(self.tiles))
        chosen = [int(t) for t in _spread(all_tiles, self.grid, STAT_TILES, refresh)]
        self.stats.start_pass()
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            for part, x, _ in self.batches(chosen, should_stop):
                self.stats.set_regions(self.regions(part), x.shape[-2:])
                model(x)
        self.stats.end_pass()
        return len(chosen)

    # ------------------------------------------------------------------ iterations
    def draw_tiles(self, weights: np.ndarray, tiles: np.ndarray) -> list[int]:
        """The windows of one iteration: all sample tiles if they fit the batch, else a class-balanced draw."""
        if tiles.size <= self.plan.batch:
            return [int(t) for t in tiles]
        return [int(t) for t in self.rng.choice(tiles, size=self.plan.batch, replace=False, p=weights)]

    def tile_weights(self, tiles: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Draw probability of each tile: the sum of 1 / (its class's pixel count) over its training pixels."""
        inv = 1.0 / np.maximum(counts, 1)
        w = np.array([inv[self.points["train"][int(t)][2]].sum() for t in tiles], dtype=np.float64)
        return w / w.sum()

    def evaluate(self, model: torch.nn.Module, name: str, tiles: np.ndarray,
                 should_stop: Callable[[], bool] | None = None) -> tuple[float, float]:
        """(OA, mean cross-entropy) of the ``name`` pixels of ``tiles`` with the current weights and statistics."""
        correct, total, ce = 0.0, 0.0, 0.0
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            for part, x, valids in self.batches(tiles, should_stop):
                target = self.targets(part, valids, name)
                logits = model(x)[0].float()
                keep = target >= 0
                if not keep.any():
                    continue
                lg = logits.permute(0, 2, 3, 1)[keep]
                tg = target[keep]
                correct += float((lg.argmax(1) == tg).sum())
                total += float(tg.numel())
                ce += float(torch.nn.functional.cross_entropy(lg, tg, reduction="sum"))
        return (correct / total, ce / total) if total else (0.0, float("inf"))

    def _train_step(self, model: torch.nn.Module, criterion: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, params: Any, lr_at: Callable[[int], float], it: int,
                    weights: np.ndarray, train_tiles: np.ndarray) -> Tensor:
        """One iteration: draw windows and a class-balanced pixel minibatch, one SGD step with every layer
        normalised by the windows' pooled core statistics; returns the (detached) loss."""
        p = params
        tiles = self.draw_tiles(weights, train_tiles)
        x, valids = self.batch(tiles)
        target = self.targets(tiles, valids, "train")
        n, h, w = target.shape
        sampler = HBMinibatchSampler(target.reshape(n * h, w), p.per_class_batch, self.generator)
        mask = sampler.draw().reshape(n, h, w)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(it)
        model.train()
        self.stats.set_regions(self.regions(tiles), x.shape[-2:])
        self.stats.pooled = True
        try:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits, z = model(x)
        finally:
            self.stats.pooled = False
        loss = criterion(logits.float(), z.float(), target.clamp_min(0), mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    def _epoch_entry(self, model: torch.nn.Module, refresh: int, it: int, mean_loss: float,
                     lr_at: Callable[[int], float], selection: str, eval_name: str | None,
                     eval_tiles: np.ndarray | None, should_stop: Callable[[], bool] | None
                     ) -> tuple[dict[str, Any], tuple[float, float]]:
        """(history entry, selection score) of the epoch just ended: statistics of the weights just reached,
        then the selection mode's pixels scored (or the mean training loss)."""
        self.refresh_statistics(model, refresh, should_stop)  # the statistics of the weights just reached
        entry: dict[str, Any] = {"epoch": refresh, "iteration": it + 1, "loss": mean_loss,
                                 "lr": lr_at(it), "seconds": 0.0}
        if eval_tiles is not None:
            oa, ce = self.evaluate(model, eval_name, eval_tiles, should_stop)
            key = "test_oa" if selection == "paper" else "val_oa"
            entry[key] = oa
            if selection != "paper":
                entry["val_loss"] = ce
            score = (oa, 0.0) if selection == "fit" else (oa, -ce)
        else:
            score = (-mean_loss, 0.0)
        return entry, score

    @staticmethod
    def _epoch_message(entry: dict[str, Any], refresh: int, mean_loss: float, selection: str) -> str:
        """The epoch's log and progress line: loss and the accuracy the selection watches."""
        msg = f"epoch {refresh}: loss {mean_loss:.4f}"
        if "val_oa" in entry:
            what = "training-pixel OA" if selection == "fit" else "validation OA"
            msg += f", {what} {100 * entry['val_oa']:.2f}%"
        if "test_oa" in entry:
            msg += f", test OA {100 * entry['test_oa']:.2f}%"
        return msg

    def train(self, model: torch.nn.Module, criterion: torch.nn.Module, params: Any, selection: str,
              lr_at: Callable[[int], float], num_classes: int, progress: Callable[[float, str], None] | None,
              should_stop: Callable[[], bool] | None) -> tuple[list[dict[str, Any]], int, bool]:
        """Train ``model`` in place; returns (history, best epoch, stopped early) like whole-scene training."""
        p = params
        train_tiles = self.tile_indices("train")
        counts = np.bincount(np.concatenate([v[2] for v in self.points["train"].values()]), minlength=num_classes)
        weights = self.tile_weights(train_tiles, counts)
        eval_name = {"fit": "train", "validation": "val", "paper": "eval"}.get(selection)
        eval_tiles = None
        if eval_name is not None:
            eval_tiles = _spread(self.tile_indices(eval_name), self.grid, EVAL_TILES, 0)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr_at(0), momentum=p.momentum, weight_decay=p.weight_decay)
        history: list[dict[str, Any]] = []
        best_epoch, best_key, best_state, since_best = 0, None, None, 0
        stopped = False
        patience = p.fit_patience_epochs if selection == "fit" else p.patience_epochs
        losses: list[Tensor] = []
        t_epoch = time.perf_counter()
        with self.stats.attached(model):
            self.refresh_statistics(model, 0, should_stop)
            for it in range(p.iterations):
                if should_stop is not None and should_stop():
                    raise Cancelled("Training was cancelled.")
                loss = self._train_step(model, criterion, optimizer, p, lr_at, it, weights, train_tiles)
                losses.append(loss)
                if progress is not None:
                    progress(100.0 * (it + 1) / p.iterations, f"iteration {it + 1}/{p.iterations}")
                if (it + 1) % p.epoch_iterations and it + 1 < p.iterations:
                    continue
                model.eval()
                mean_loss = float(torch.stack(losses).mean())
                losses = []
                if not math.isfinite(mean_loss):
                    raise RuntimeError(
                        f"Training diverged by iteration {it} (loss {mean_loss}); lower the learning rate or the "
                        "statistical-loss weight, or check the raster for extreme values.")
                refresh = len(history) + 1
                entry, score = self._epoch_entry(model, refresh, it, mean_loss, lr_at, selection, eval_name,
                                                 eval_tiles, should_stop)
                # "fit" keeps the latest weights of the best share but counts patience from when it last grew
                better = best_key is None or score > best_key
                tie = selection == "fit" and not better and score == best_key
                if better or tie:
                    best_key, best_epoch = score, refresh
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                since_best = 0 if better else since_best + 1
                better = better or tie
                entry["selected"] = better
                now = time.perf_counter()
                entry["seconds"], t_epoch = now - t_epoch, now
                history.append(entry)
                msg = self._epoch_message(entry, refresh, mean_loss, selection)
                log.info(msg)
                if progress is not None:
                    progress(100.0 * (it + 1) / p.iterations, msg)
                if since_best >= patience:
                    stopped = True
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        return history, best_epoch, stopped


def pixel_probabilities(classifier: Any, scene: WindowedScene, rows: np.ndarray, cols: np.ndarray, *,
                        passes: int = 3, should_stop: Callable[[], bool] | None = None
                        ) -> tuple[np.ndarray, np.ndarray | None]:
    """RSSGL's and the spectral model's probabilities (K, n) at pixels ``rows``, ``cols`` of a windowed raster.

    What cross-validation needs from a raster too large to classify whole for every fold: only the
    tiles holding those pixels are classified, with whole-scene statistics gathered by ``passes``
    statistics passes (as tiled classification does). Invalid pixels get 0.
    """
    model = classifier.model_
    device = next(model.parameters()).device
    amp = device.type == "cuda" and getattr(classifier.params_, "amp", "auto") == "auto"
    p = classifier.params_
    plan = plan_windows(scene.bands, device, core=p.window_core, halo=p.window_halo, batch=p.window_batch)
    order = np.arange(rows.size)
    trainer = WindowTrainer(scene, classifier.band_mean_, classifier.band_std_, plan,
                            {"train": (np.asarray(rows), np.asarray(cols), order)}, device, seed=0, amp=amp)
    k = int(classifier.classes_.size)
    rssgl = np.zeros((k, rows.size), dtype=np.float32)
    spectral = np.zeros((k, rows.size), dtype=np.float32) if classifier.spectral_ is not None else None
    model.eval()
    with trainer.stats.attached(model):
        for i in range(max(1, passes)):
            trainer.refresh_statistics(model, i, should_stop)
        with torch.no_grad():
            for part, x, valids in trainer.batches(trainer.tile_indices("train"), should_stop):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    logits = model(x)[0]
                proba = torch.softmax(logits.float(), dim=1)
                for j, t in enumerate(part):
                    r, c, idx = trainer.points["train"][t]
                    rr, cc = torch.as_tensor(r), torch.as_tensor(c)
                    ok = valids[j][rr, cc].cpu().numpy()
                    rssgl[:, idx] = proba[j][:, rr, cc].cpu().numpy() * ok
                    if spectral is not None:
                        spectral[:, idx] = classifier.spectral_.probabilities(x[j][:, rr, cc].t()).t().cpu().numpy() * ok
    return rssgl, spectral
