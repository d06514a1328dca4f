"""Keeping a long CPU run's resident memory flat: give freed heap memory back to the system.

Why this exists: a greedy evaluation drops agents from its batch as they finish, so every step
allocates and frees tensors a little smaller than the step before (for a UVFA at n = 40, 1024
agents x 40 actions x 128 floats = 21 MB at first). glibc's allocator keeps such freed blocks
on its heap, small Python objects settle between them, and the heap never shrinks: a
default-settings UVFA run at n = 40 grew to 7.5 GB resident over 3000 iterations without
holding more than a few hundred MB of live data. ``malloc_trim(0)`` hands the free pages back.

:func:`trim_after_evaluation` is what the trainer calls after each evaluation. On the CPU it calls
:func:`trim_if_grown`, which trims when the resident size has grown by more than a margin since
the last trim, so the cost (a heap walk, and page faults when the memory is reused) is paid
rarely. It works on Linux with glibc; elsewhere (macOS, Windows, musl) it does nothing.
Set ``BITFLIP_MALLOC_TRIM=0`` to switch it off, e.g. to measure the difference with
``bitflip bench --only memory``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

TRIM_ENV_VAR = "BITFLIP_MALLOC_TRIM"
TRIM_MARGIN_MB = 256.0  # growth since the last trim that triggers the next one

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 4096 / 2**20
_rss_after_trim: float | None = None


def _load_malloc_trim():
    """glibc's ``malloc_trim``, or None where there is no such function."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        function = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = [ctypes.c_size_t], ctypes.c_int
    return function


_malloc_trim = _load_malloc_trim()


def trimming_enabled() -> bool:
    """True unless ``BITFLIP_MALLOC_TRIM`` is 0/false/no/off, and only where glibc provides ``malloc_trim``."""
    if _malloc_trim is None:
        return False
    return os.environ.get(TRIM_ENV_VAR, "1").strip().lower() not in {"0", "false", "no", "off"}


def resident_memory_mb() -> float | None:
    """This process's resident memory in MB (from ``/proc/self/statm``), or None where that file is missing."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE_MB
    except (OSError, IndexError, ValueError):
        return None


def release_freed_memory() -> bool:
    """Give the allocator's free heap pages back to the system now; True if glibc did release some."""
    if not trimming_enabled():
        return False
    return bool(_malloc_trim(0))


def trim_after_evaluation(device: object) -> bool:
    """The workaround's one call site, at the end of every greedy evaluation: on the CPU,
    :func:`trim_if_grown`; on a GPU nothing (its memory is not glibc's heap). Returns whether it trimmed."""
    return str(device).split(":")[0] == "cpu" and trim_if_grown()


def trim_if_grown(margin_mb: float = TRIM_MARGIN_MB) -> bool:
    """Call :func:`release_freed_memory` if the resident size grew by more than ``margin_mb`` since the last call
    that trimmed; returns whether it trimmed. Cheap to call often (one small file read)."""
    global _rss_after_trim
    if not trimming_enabled():
        return False
    rss = resident_memory_mb()
    if rss is None:
        return False
    if _rss_after_trim is not None:
        _rss_after_trim = min(_rss_after_trim, rss)  # memory given back otherwise (a freed buffer) lowers the bar
        if rss - _rss_after_trim <= margin_mb:
            return False
    release_freed_memory()
    _rss_after_trim = resident_memory_mb()
    return True
