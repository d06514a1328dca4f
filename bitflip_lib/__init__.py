"""bitflip_lib: goal-conditioned deep Q-learning on the bit-flipping task.

The library behind the course "Learning from sparse rewards, one bit at a time".
Everything runs on a CPU; a CUDA GPU is used when present (see :func:`default_device`).
"""
from __future__ import annotations

from bitflip_lib.env import BitFlipEnv, StepResult, goal_reached, hamming_distance, optimal_steps
from bitflip_lib.runtime.device import default_device, describe_device
from bitflip_lib.runtime.switches import quick_mode

__version__ = "0.1.0"

__all__ = [
    "BitFlipEnv",
    "StepResult",
    "__version__",
    "default_device",
    "describe_device",
    "goal_reached",
    "hamming_distance",
    "optimal_steps",
    "quick_mode",
]
