"""Training with a student's part plugged in, without the core knowing.

The library's :func:`~bitflip_lib.trainer.train` looks its parts up by name at run time: the
TD target (:func:`bitflip_lib.dqn.td_target`), the Polyak update (:func:`bitflip_lib.dqn.polyak_update`),
HER (``bitflip_lib.dqn.her_relabel``, what :meth:`DQNLearner.experience` calls), the replay
buffer (``bitflip_lib.dqn.ReplayBuffer``), epsilon-greedy acting (``bitflip_lib.trainer.epsilon_greedy``)
and the learner (``TrainConfig.learner_class``). :func:`train_with` swaps the student's versions in
for one run and puts the library's back afterwards. A student's function does less than the
library's (no ``clip`` switch, only the ``future`` strategy...): a setting it cannot honour is a
``ValueError`` here, never silently ignored.

The training loop runs in the grader; the parts passed in are stand-ins for the student's code
(:mod:`bitflip_lib.grading.remote`), so each call of one is a request to the student's process
(tensors in, tensors out) and the training's outcome is measured here.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from unittest import mock

from bitflip_lib import dqn, trainer
from bitflip_lib.config import TrainConfig
from bitflip_lib.trainer import TrainResult


def train_with(config: TrainConfig, *, td_target: Callable | None = None, epsilon_greedy: Callable | None = None,
               polyak_update: Callable | None = None, relabel_future: Callable | None = None,
               learner_class: type | None = None, buffer_class: type | None = None) -> TrainResult:
    """``train(config)`` with the given student parts in place of the library's.

    Args:
        td_target: ``(reward, done, next_q, gamma) -> target``, clipping to [0, 1] included.
        epsilon_greedy: ``(q, epsilon, generator) -> actions``.
        polyak_update: ``(target, online, tau) -> None``.
        relabel_future: ``(episode, k, generator) -> Transitions``, the ``future`` strategy.
        learner_class: a :class:`~bitflip_lib.dqn.DQNLearner` subclass.
        buffer_class: a replay buffer class (or a stand-in for one) with ``(n, capacity, device)``,
            ``len``, ``add``, ``sample(batch_size, generator)``.
    """
    with contextlib.ExitStack() as stack:
        if td_target is not None:
            if not config.clip_targets or config.double_dqn:
                raise ValueError("the student's td_target clips and takes the max: train it with clip_targets=True "
                                 "and double_dqn=False")

            def library_signature(reward, done, next_q, gamma, clip=True, next_action=None):
                return td_target(reward, done, next_q, gamma)

            stack.enter_context(mock.patch.object(dqn, "td_target", library_signature))
        if epsilon_greedy is not None:
            stack.enter_context(mock.patch.object(trainer, "epsilon_greedy", epsilon_greedy))
        if polyak_update is not None:
            stack.enter_context(mock.patch.object(dqn, "polyak_update", polyak_update))
        if relabel_future is not None:
            if config.her != "future":
                raise ValueError(f"the student's relabelling is the future strategy: train it with her='future', "
                                 f"not {config.her!r}")

            def library_relabel(episode, strategy, k, generator):
                return relabel_future(episode, k, generator)

            stack.enter_context(mock.patch.object(dqn, "her_relabel", library_relabel))
        if buffer_class is not None:
            if config.batch_without_replacement:
                raise ValueError("the student's replay buffer draws with replacement: train it with "
                                 "batch_without_replacement=False")

            class StudentBuffer:
                """The library's buffer interface around the student's (which has no ``replace``)."""

                def __init__(self, n, capacity=2**15, device="cpu"):
                    self.inner = buffer_class(n, capacity, device)

                def __len__(self):
                    return len(self.inner)

                def add(self, batch):
                    self.inner.add(batch)

                def sample(self, batch_size, generator=None, replace=True):
                    return self.inner.sample(batch_size, generator)

            stack.enter_context(mock.patch.object(dqn, "ReplayBuffer", StudentBuffer))
        if learner_class is not None:
            stack.enter_context(mock.patch.object(type(config), "learner_class", learner_class))
        return trainer.train(config, progress=False)
