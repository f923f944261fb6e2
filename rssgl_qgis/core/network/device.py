"""Choose and describe the torch device the engine runs on.

Users of a QGIS plugin rarely know whether their torch build sees a GPU, so the engine picks CUDA
when it is usable, else the Apple GPU (MPS) when it runs our network, else the CPU, and says which in
plain words (shown in the GUI status line and written into every model file and report).

MPS lacks some operations in some torch releases (``NotImplementedError: The operator ... is not
currently implemented for the MPS device``) and has no float64. Before choosing it, the engine runs a
small RSSGL forward and backward pass there once per session, plus the float64 reduction the scene
statistics use; when something is missing it trains on the CPU and says why (a warning in the log,
and the device line of every report names what is missing). Not run on a real Mac here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import torch

__all__ = ["choose_device", "describe_device", "mps_available", "mps_fallback_reason", "set_cpu_threads",
           "cpu_count"]

log = logging.getLogger(__name__)

#: Why MPS is not used in this session (the first line of the error), None when it runs or was never tried.
_MPS_CHECK: dict[str, str | None] = {}


def cpu_count() -> int:
    """Number of CPU cores this process may use (respects affinity masks / containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def choose_device(preference: str = "auto") -> torch.device:
    """Return the device for ``preference`` ("auto", "cuda", "cuda:N", "mps" or "cpu").

    "auto" takes CUDA when torch reports a usable GPU, else MPS when our network runs there (see
    ``mps_fallback_reason``), and falls back to the CPU otherwise.
    Asking explicitly for CUDA on a machine without it is an error, not a silent fallback,
    because the user would otherwise wait far longer than they expect.
    """
    pref = (preference or "auto").strip().lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available() and mps_fallback_reason() is None:
            return torch.device("mps")
        return torch.device("cpu")
    if pref == "mps":
        if not mps_available():
            raise RuntimeError(
                f"The device 'mps' was requested but this torch installation sees no Apple GPU "
                f"(torch {torch.__version__}); choose device 'auto' or 'cpu'."
            )
        return torch.device("mps")
    if pref == "cpu":
        return torch.device("cpu")
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"The device '{preference}' was requested but this torch installation sees no CUDA GPU "
                f"(torch {torch.__version__}); choose device 'auto' or 'cpu', or install a CUDA build of torch."
            )
        return torch.device(pref)
    raise ValueError(f"Unknown device '{preference}': expected 'auto', 'cuda', 'mps' or 'cpu'.")


def mps_available() -> bool:
    """True when this torch build has the Apple GPU backend and macOS lets it run."""
    mps = getattr(torch.backends, "mps", None)
    try:
        return bool(mps is not None and mps.is_available())
    except Exception:  # an old torch or a broken Metal driver: no MPS
        return False


def _network_on(device: torch.device) -> None:
    """One forward and backward pass of a small RSSGL on ``device``: the operations training uses."""
    from .model import RSSGL, RssglConfig

    model = RSSGL(RssglConfig(in_bands=8, num_classes=2, kernel=(3, 3, 3), block_channels=(16, 16, 16, 16),
                              inner_dim=8, gn_groups=4)).to(device)
    logits, _features = model(torch.rand(1, 8, 16, 16, device=device))
    logits.float().logsumexp(dim=1).mean().backward()
    # Window training and tiled classification accumulate whole-scene statistics in float64 on the
    # device (core/prediction/scene_stats.py); MPS has no float64 (torch <= 2.15), and then the CPU must take over.
    torch.ones(8, device=device).double().sum().item()


def mps_fallback_reason(check: Callable[[torch.device], None] | None = None) -> str | None:
    """None when our network runs on MPS, else why not (checked once per session; ``check`` for tests).

    Only a missing or failing MPS operation counts; the CPU takes over with a warning in the log.
    """
    if check is None and "result" in _MPS_CHECK:
        return _MPS_CHECK["result"]
    try:
        (check or _network_on)(torch.device("mps"))
        reason = None
    except (NotImplementedError, RuntimeError, TypeError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.warning("The Apple GPU (MPS) cannot run RSSGL with torch %s (%s); training on the CPU instead.",
                    torch.__version__, reason)
    if check is None:
        _MPS_CHECK["result"] = reason
    return reason


def set_cpu_threads(threads: int | None = None) -> int:
    """Use all available cores for CPU work (torch's default can be lower inside containers)."""
    n = threads or cpu_count()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def describe_device(device: torch.device | str) -> str:
    """Where the work ran or runs, for the user: "CUDA: <name>, <mem> GiB" or "CPU only (N threads)". It is
    used in past-tense lines too ("Trained on ... in 12.5 s"): the CPU warning is the caller's."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"CUDA: {props.name}, {props.total_memory / 2**30:.0f} GiB"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    missing = _MPS_CHECK.get("result")
    if missing:
        return f"CPU only ({torch.get_num_threads()} threads; the Apple GPU (MPS) cannot run RSSGL: {missing})"
    return f"CPU only ({torch.get_num_threads()} threads)"
