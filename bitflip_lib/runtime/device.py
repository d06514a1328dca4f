"""Device choice and the torch thread policy (the quick-mode and progress switches are in :mod:`bitflip_lib.runtime.switches`).

**Threads.** The course's networks are small (a few layers of at most a few hundred units, batches
of 256): on a CPU one torch thread runs them about as fast as several, and several threads per
process slow a laptop down once anything else runs. So the library uses **one CPU thread** unless
told otherwise, and every chapter gets the same policy from its first :func:`default_device`
call (see :func:`configure_threads`). Ask for more with ``BITFLIP_THREADS=4`` (or
``OMP_NUM_THREADS``, or ``torch.set_num_threads`` before the first call).
"""
from __future__ import annotations

import os

import torch

__all__ = [
    "configure_threads", "default_device", "DEFAULT_THREADS", "describe_device", "device_problem",
    "THREADS_ENV_VAR",
]

THREADS_ENV_VAR = "BITFLIP_THREADS"
DEFAULT_THREADS = 1
_announced = False
_threads_configured = False
_STARTUP_THREADS = torch.get_num_threads()  # torch's own choice, before anyone changed it


def configure_threads(threads: int | None = None) -> int:
    """Apply the course's torch thread policy (once per process); return the thread count in use.

    In order: ``threads`` if given; else ``BITFLIP_THREADS`` if set; else, when neither
    ``OMP_NUM_THREADS`` is set nor ``torch.set_num_threads`` was called since the library was
    imported, :data:`DEFAULT_THREADS` (1); otherwise what was chosen is kept.
    :func:`default_device` calls it, so chapters, the trainer and the command line all agree.

    Raises:
        ValueError: when ``threads`` or ``BITFLIP_THREADS`` is not an integer >= 1.
    """
    global _threads_configured
    if threads is None and _threads_configured:
        return torch.get_num_threads()
    if threads is None:
        text = os.environ.get(THREADS_ENV_VAR, "").strip()
        if text:
            try:
                threads = int(text)
            except ValueError:
                threads = 0
            if threads < 1:
                raise ValueError(f"{THREADS_ENV_VAR}={text!r}: set it to a whole number of CPU threads >= 1, e.g. 1")
        elif not os.environ.get("OMP_NUM_THREADS", "").strip() and torch.get_num_threads() == _STARTUP_THREADS:
            threads = DEFAULT_THREADS
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
        torch.set_num_threads(threads)
    _threads_configured = True
    return torch.get_num_threads()


def device_problem(device: object) -> str | None:
    """Why ``device`` cannot run the course's tensors on this machine, or ``None`` if it can: the one
    rule of which devices settings accept (``'auto'``, the CPU, an available CUDA or MPS device).

    A device that parses but cannot compute (``'meta'``: tensors without data; ``'cuda'`` on a
    machine without CUDA) is refused here, before anything is built on it.
    """
    if isinstance(device, str) and device == "auto":
        return None
    if not isinstance(device, (str, torch.device)):
        return "not a device name"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        return "not a torch device"
    if resolved.type == "cpu":
        return None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            return "CUDA is not available on this machine"
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            return f"this machine has {count} CUDA device{'' if count == 1 else 's'}, cuda:0 to cuda:{count - 1}"
        return None
    if resolved.type == "mps":
        return None if torch.backends.mps.is_available() else "MPS is not available on this machine"
    if resolved.type == "meta":
        return "meta tensors hold no data, so nothing can be computed on them"
    return f"the course computes on cpu, cuda or mps, not {resolved.type}"


def default_device(device: str | torch.device | None = None, announce: bool = False) -> torch.device:
    """Resolve a device: the one asked for, else CUDA when available, else CPU.

    The first call also applies the thread policy (:func:`configure_threads`). A device that
    cannot compute here (:func:`device_problem`) is a ``ValueError``.
    ``announce=True`` prints the choice once per process, so a notebook says where it runs.
    """
    global _announced
    configure_threads()
    if device is None or str(device) == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        problem = device_problem(device)
        if problem is not None:
            raise ValueError(f"device {device!r} cannot be used here ({problem}): use 'cpu' or 'auto'")
        resolved = torch.device(device)
    if announce and not _announced:
        print(f"bitflip_lib: using {describe_device(resolved)}")
        _announced = True
    return resolved


def describe_device(device: torch.device | str) -> str:
    """A human-readable name, e.g. ``'cpu (1 thread)'``, ``'cpu (4 threads)'`` or ``'cuda:0 (NVIDIA H100)'``."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'' if threads == 1 else 's'})"
