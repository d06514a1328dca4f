"""The library's training loop with a student's own functions plugged in.

:func:`train_with_parts` is :func:`bitflip_lib.trainer.train` with the TD target, the
epsilon-greedy choice, the Polyak update or the HER relabelling replaced, so that exercises can
show a student's function doing real work. It returns a :class:`~bitflip_lib.trainer.TrainResult`.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from bitflip_lib.config import TrainConfig, make_config
from bitflip_lib.replay import EpisodeBatch, Transitions
from bitflip_lib.trainer import TrainResult, train

Relabel = Callable[[EpisodeBatch, int, "torch.Generator | None"], Transitions]


def LoopConfig(**fields) -> TrainConfig:  # noqa: N802 - reads like a class at call sites
    """A default-preset :class:`~bitflip_lib.config.TrainConfig` with some fields changed."""
    return make_config("default", **fields)


def best_success(result: TrainResult) -> float:
    """Highest evaluated success rate of a run (0.0 if it never evaluated)."""
    rates = [h["success_rate"] for h in result.history if "success_rate" in h]
    return max(rates, default=0.0)


def train_with_parts(
    config: TrainConfig,
    td_target: Callable | None = None,
    epsilon_greedy: Callable | None = None,
    polyak_update: Callable | None = None,
    relabel: Relabel | None = None,
    network: nn.Module | None = None,
) -> TrainResult:
    """Train like :func:`~bitflip_lib.trainer.train`, with any of four parts replaced.

    Args:
        config: the run's settings (``config.her`` and ``config.k`` are used unless ``relabel``
            is given; ``config.clip_targets`` only applies to the library's TD target).
        td_target: ``(reward, done, next_q, gamma) -> target`` (clipping included).
        epsilon_greedy: ``(q, epsilon, generator) -> actions``.
        polyak_update: ``(target_net, online_net, tau) -> None`` (in place).
        relabel: ``(episode, k, generator) -> Transitions``, used instead of the configured
            HER strategy (not used when ``config.her`` is ``none``).
        network: start from this network instead of a fresh one (trained in place).
    """
    return train(config, progress=False, network=network, relabel=relabel, td_target=td_target,
                 epsilon_greedy=epsilon_greedy, polyak_update=polyak_update)
