"""bitflip_lib: goal-conditioned deep Q-learning on the bit-flipping task.

The library behind the course "Learning from sparse rewards, one bit at a time". Everything
runs on a CPU; a CUDA GPU is used when present (see :func:`default_device`).

The folders show the layers. At the top, imported as ``bitflip_lib.<module>``: the algorithm
(:mod:`~bitflip_lib.env`, :mod:`~bitflip_lib.replay`, :mod:`~bitflip_lib.her`,
:mod:`~bitflip_lib.networks`, :mod:`~bitflip_lib.dqn`, :mod:`~bitflip_lib.config`,
:mod:`~bitflip_lib.trainer`) and the maths of chapters 1 and 2 (:mod:`~bitflip_lib.theory`,
:mod:`~bitflip_lib.tabular`). Below them, a folder each: :mod:`bitflip_lib.generation` (chapter
8), :mod:`bitflip_lib.lab` (stored runs, sweeps, Table 1, benchmarks, studies),
:mod:`bitflip_lib.ui` (figures and widgets), :mod:`bitflip_lib.diagnosis`,
:mod:`bitflip_lib.grading` and :mod:`bitflip_lib.runtime` (device, quick mode). The names below
are the public API of the algorithm, importable from the package itself.
"""
from __future__ import annotations

from bitflip_lib._version import __version__

from bitflip_lib.config import TrainConfig, make_config  # noqa: E402
from bitflip_lib.dqn import DQNLearner  # noqa: E402
from bitflip_lib.env import BitFlipEnv, StepResult, goal_reached, hamming_distance, optimal_steps  # noqa: E402
from bitflip_lib.her import her_relabel  # noqa: E402
from bitflip_lib.networks import HAR, MLP, UVFA, make_network  # noqa: E402
from bitflip_lib.replay import EpisodeBatch, ReplayBuffer, Transitions  # noqa: E402
from bitflip_lib.runtime.device import default_device, describe_device  # noqa: E402
from bitflip_lib.runtime.switches import quick_mode  # noqa: E402
from bitflip_lib.trainer import TrainResult, evaluate, play_episode, train  # noqa: E402

__all__ = [
    "BitFlipEnv", "DQNLearner", "EpisodeBatch", "HAR", "MLP", "ReplayBuffer", "StepResult", "TrainConfig",
    "TrainResult", "Transitions", "UVFA", "__version__", "default_device", "describe_device", "evaluate",
    "goal_reached", "hamming_distance", "her_relabel", "make_config", "make_network", "optimal_steps",
    "play_episode", "quick_mode", "train",
]
