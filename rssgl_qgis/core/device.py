"""Choose and describe the torch device the engine runs on.

Users of a QGIS plugin rarely know whether their torch build sees a GPU, so the engine picks CUDA
when it is usable and otherwise the CPU, and says which in plain words (shown in the GUI status line
and written into every model file and report).
"""

from __future__ import annotations

import logging
import os

import torch

__all__ = ["choose_device", "describe_device", "set_cpu_threads", "cpu_count"]

log = logging.getLogger(__name__)


def cpu_count() -> int:
    """Number of CPU cores this process may use (respects affinity masks / containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def choose_device(preference: str = "auto") -> torch.device:
    """Return the device for ``preference`` ("auto", "cuda", "cuda:N" or "cpu").

    "auto" takes CUDA when torch reports a usable GPU and falls back to the CPU otherwise.
    Asking explicitly for CUDA on a machine without it is an error, not a silent fallback,
    because the user would otherwise wait far longer than they expect.
    """
    pref = (preference or "auto").strip().lower()
    if pref == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if pref == "cpu":
        return torch.device("cpu")
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"The device '{preference}' was requested but this torch installation sees no CUDA GPU "
                f"(torch {torch.__version__}); choose device 'auto' or 'cpu', or install a CUDA build of torch."
            )
        return torch.device(pref)
    raise ValueError(f"Unknown device '{preference}': expected 'auto', 'cuda' or 'cpu'.")


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
    return f"CPU only ({torch.get_num_threads()} threads)"
