"""Device choice and the course-wide quick-mode switch."""
from __future__ import annotations

import os

import torch

QUICK_ENV_VAR = "BITFLIP_QUICK"
PROGRESS_ENV_VAR = "BITFLIP_PROGRESS"
_announced = False


def quick_mode() -> bool:
    """True when budgets should shrink so the whole course runs in CI on 2 CPU cores.

    Set ``BITFLIP_QUICK=1`` to switch it on (``BITFLIP_QUICK=0`` forces it off).
    When the variable is unset, quick mode follows ``CI=true``, which CI services set.
    """
    value = os.environ.get(QUICK_ENV_VAR)
    if value is not None and value.strip() != "":
        return value.strip().lower() not in {"0", "false", "no", "off"}
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def progress_bars_enabled() -> bool:
    """False when ``BITFLIP_PROGRESS=0``: the test command sets it, because nbval gives up on a
    cell whose kernel keeps sending progress-bar widget messages after the cell has finished."""
    return os.environ.get(PROGRESS_ENV_VAR, "1").strip().lower() not in {"0", "false", "no", "off"}


def default_device(device: str | torch.device | None = None, announce: bool = False) -> torch.device:
    """Resolve a device: the one asked for, else CUDA when available, else CPU.

    ``announce=True`` prints the choice once per process, so a notebook says where it runs.
    """
    global _announced
    if device is None or str(device) == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"unknown device {device!r}: use 'cpu', 'cuda', 'cuda:0' or 'auto'") from err
        if resolved.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but CUDA is not available here: use 'cpu' or 'auto'")
    if announce and not _announced:
        print(f"bitflip_lib: using {describe_device(resolved)}")
        _announced = True
    return resolved


def describe_device(device: torch.device | str) -> str:
    """A human-readable name, e.g. ``'cpu (2 threads)'`` or ``'cuda:0 (NVIDIA H100)'``."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({torch.get_num_threads()} threads)"
