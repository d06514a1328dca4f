"""The course's run-time switches, read from the environment: quick mode and progress bars.

``BITFLIP_QUICK=1`` shrinks every notebook's budgets (the test command sets it; ``CI=true`` does
too); ``BITFLIP_PROGRESS=0`` turns progress bars off. The thread policy and device choice are in
:mod:`bitflip_lib.runtime.device`.
"""
from __future__ import annotations

import os

__all__ = [
    "progress_bars_enabled", "PROGRESS_ENV_VAR", "QUICK_ENV_VAR", "quick_mode",
]

QUICK_ENV_VAR = "BITFLIP_QUICK"
PROGRESS_ENV_VAR = "BITFLIP_PROGRESS"


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
