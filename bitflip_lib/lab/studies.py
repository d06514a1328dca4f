"""Studies past the write-up: two changes to what the DQN learner regresses on (appendix 7b).

Both are off in every preset and live here, outside the core, as a subclass of the settings
(:class:`StudyConfig`) and of the learner (:class:`StudyLearner`):

* the *hindsight bound* (``hindsight_bound``): each TD target is raised to at least
  ``gamma ** (steps - 1)`` where the episode's own path reached the transition's goal in
  ``steps`` steps. In a deterministic task no value can be below what a path really achieved,
  so the bound is never wrong; it hands far states their value at once instead of one
  bootstrapped step per round (the lower bound of He et al., 2017, "Learning to Play in a Day:
  Faster Deep Reinforcement Learning by Optimality Tightening", used here as a floor on the
  target rather than as their penalty);
* *advantage learning* (``action_gap``, alpha in [0, 1); Bellemare et al., 2016, "Increasing
  the Action Gap: New Operators for Reinforcement Learning"): subtract
  ``alpha * (max_b Q_target(s, g, b) - Q_target(s, g, a))`` from each target. The best action's
  value is unchanged and every worse action settles ``1 / (1 - alpha)`` times further below it,
  so a small error in the network no longer flips the greedy choice.

The bound needs, for every stored transition, how many steps the path took from it to its goal:
:class:`PathTransitions` carry that count and :class:`PathReplayBuffer` keeps it.
:func:`make_run_config` builds a :class:`StudyConfig` only when a study setting is used, so
every other run is a plain :class:`~bitflip_lib.config.TrainConfig` and is named, stored and
trained exactly as before.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch

from bitflip_lib.config import TrainConfig, make_config
from bitflip_lib.dqn import DQNLearner
from bitflip_lib.env import goal_reached
from bitflip_lib.her import hindsight_goal_steps
from bitflip_lib.replay import EpisodeBatch, EpisodeSteps, ReplayBuffer, Transitions

__all__ = ["PathReplayBuffer", "PathSteps", "PathTransitions", "StudyConfig", "StudyLearner", "make_run_config",
           "path_transitions", "STUDY_FIELDS"]


@dataclass
class PathTransitions(Transitions):
    """:class:`~bitflip_lib.replay.Transitions` that know how far their goal lay along the path.

    steps_to_goal: ``[B]`` int64: how many steps the path the episode actually took needed from
    ``state`` to ``goal`` (this step included); 0 where it never got there.
    """

    steps_to_goal: torch.Tensor = dataclasses.field(default=None)  # type: ignore[assignment]


class PathSteps(EpisodeSteps):
    """:class:`~bitflip_lib.replay.EpisodeSteps` (a view of the episode) that know ``steps_to_goal``
    and copy out :class:`PathTransitions`."""

    materialised = PathTransitions

    def __init__(self, episode: EpisodeBatch, t: torch.Tensor, b: torch.Tensor, goal_t: torch.Tensor | None,
                 steps_to_goal: torch.Tensor) -> None:
        super().__init__(episode, t, b, goal_t)
        self.steps_to_goal = steps_to_goal

    def _extra(self, index: slice | torch.Tensor) -> dict[str, torch.Tensor]:
        return {"steps_to_goal": self.steps_to_goal[index]}


def path_transitions(episode: EpisodeBatch, her: str, k: int, generator: torch.Generator) -> tuple[PathSteps, PathSteps]:
    """The episode's transitions as played and their HER relabellings, with ``steps_to_goal``.

    Played transitions of an agent that reached its goal took ``L - t`` steps from step t; those
    of an agent that did not are 0 (not known). A relabelled goal taken after step ``goal_t``
    lies ``goal_t - t + 1`` steps along the path (0 for a goal from before the step).
    """
    t, b = episode.step_index()
    lengths = episode.lengths
    agents = torch.arange(lengths.shape[0], device=lengths.device)
    succeeded = goal_reached(episode.states[lengths, agents], episode.goal)
    played = PathSteps(episode, t, b, None, steps_to_goal=torch.where(succeeded[b], lengths[b] - t, torch.zeros_like(t)))
    t, b, goal_t = hindsight_goal_steps(episode, her, k, generator)
    relabelled = PathSteps(episode, t, b, goal_t, steps_to_goal=(goal_t - t + 1).clamp_min(0))
    return played, relabelled


class PathReplayBuffer(ReplayBuffer):
    """A :class:`~bitflip_lib.replay.ReplayBuffer` that also keeps each transition's ``steps_to_goal``."""

    def __init__(self, n: int, capacity: int = 2**15, device: str | torch.device = "cpu") -> None:
        super().__init__(n, capacity, device)
        self.steps_to_goal = torch.zeros(self.capacity, dtype=torch.int32, device=self.device)

    def _write(self, slots: torch.Tensor, batch: PathTransitions) -> None:
        super()._write(slots, batch)
        self.steps_to_goal[slots] = batch.steps_to_goal.to(self.device, torch.int32)

    def _read(self, idx: torch.Tensor) -> PathTransitions:
        plain = super()._read(idx)
        return PathTransitions(**{f.name: getattr(plain, f.name) for f in dataclasses.fields(Transitions)},
                               steps_to_goal=self.steps_to_goal[idx].long())


class StudyLearner(DQNLearner):
    """:class:`~bitflip_lib.dqn.DQNLearner` with the hindsight bound and advantage learning.

    Args (besides the learner's own): ``hindsight_bound`` and ``action_gap`` as in
    :class:`StudyConfig`.
    """

    def __init__(self, *args, hindsight_bound: bool = False, action_gap: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.hindsight_bound, self.action_gap = hindsight_bound, action_gap

    @classmethod
    def from_config(cls, network: torch.nn.Module, config: StudyConfig) -> StudyLearner:
        learner = super().from_config(network, config)
        learner.hindsight_bound, learner.action_gap = config.hindsight_bound, config.action_gap
        return learner

    def experience(self, episode: EpisodeBatch, her: str, k: int, generator: torch.Generator
                   ) -> tuple[PathSteps, PathSteps]:
        return path_transitions(episode, her, k, generator)

    def replay_buffer(self, n: int, capacity: int, device: torch.device) -> PathReplayBuffer:
        return PathReplayBuffer(n, capacity, device)

    def targets(self, batch: PathTransitions) -> torch.Tensor:
        target = super().targets(batch)
        if self.hindsight_bound:
            steps = batch.steps_to_goal
            achieved = torch.where(steps > 0, self.gamma ** (steps - 1).to(target.dtype), torch.zeros_like(target))
            target = torch.maximum(target, achieved)
        if self.action_gap > 0:  # widen the gap between the best flip and the rest
            evaluator = self.target if self.target is not None else self.online
            here = evaluator(batch.state, batch.goal)
            shortfall = here.max(dim=1).values - here.gather(1, batch.action.unsqueeze(1)).squeeze(1)
            target = target - self.action_gap * shortfall
            if self.clip_targets:
                target = target.clamp(0.0, 1.0)
        return target


@dataclass(frozen=True)
class StudyConfig(TrainConfig):
    """:class:`~bitflip_lib.config.TrainConfig` with the two study settings."""

    learner_class: ClassVar[type[DQNLearner]] = StudyLearner

    hindsight_bound: bool = False
    """Raise each TD target to at least what the episode's own path to the transition's goal
    achieved, ``gamma ** (steps - 1)`` (the hindsight bound)."""
    action_gap: float = 0.0
    """Advantage learning's alpha in [0, 1): lower each target by alpha times how far the taken
    action falls short of the best one, so wrong flips settle further below the right ones; 0 is
    plain DQN."""

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.hindsight_bound, bool):
            raise ValueError(f"hindsight_bound must be True or False, got {self.hindsight_bound!r}")
        value = self.action_gap
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ValueError(f"action_gap must be a number in [0, 1) (0 for plain DQN), got {value!r}")


STUDY_FIELDS: dict[str, object] = {f.name: f.default for f in dataclasses.fields(StudyConfig)
                                   if f.name not in {g.name for g in dataclasses.fields(TrainConfig)}}
"""The study settings and their 'off' values."""


def make_run_config(preset: str = "default", **values) -> TrainConfig:
    """:func:`~bitflip_lib.config.make_config`, or a :class:`StudyConfig` when a study setting is
    given a value other than off (the command line and sweeps build every run through this)."""
    study = {key: values.pop(key) for key in list(values) if key in STUDY_FIELDS}
    plain = make_config(preset, **values)
    config = StudyConfig(**{**plain.to_dict(), **study})  # checks the study values too
    return plain if all(getattr(config, key) == off for key, off in STUDY_FIELDS.items()) else config
