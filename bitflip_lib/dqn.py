"""The DQN learner: TD targets (clipped), Polyak-averaged target network, epsilon-greedy acting.

One gradient step, top to bottom (:meth:`DQNLearner.update`):

1. ``Q(s, g, a)`` from the online network for the sampled actions.
2. The target ``y = r + gamma * (1 - done) * max_a' Q_target(s', g, a')``, clipped to [0, 1]
   (:meth:`DQNLearner.targets`):
   with reward 1 on reaching the goal and 0 otherwise, every true Q-value lies in [0, 1]
   (the write-up's induction argument), so clipping only removes estimation error.
3. A mean squared error (or Huber) step with Adam.
4. ``target <- (1 - tau) * target + tau * online`` (Polyak averaging).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from bitflip_lib.her import her_relabel
from bitflip_lib.networks import taken_action_values
from bitflip_lib.replay import EpisodeBatch, ReplayBuffer, Transitions

if TYPE_CHECKING:
    from bitflip_lib.config import TrainConfig

__all__ = [
    "DQNLearner", "EPS_SCHEDULES", "epsilon_greedy", "EpsilonSchedule", "LOSSES",
    "polyak_update", "td_target",
]

LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"mse": F.mse_loss, "huber": F.smooth_l1_loss}
"""TD losses by name (the configuration checks ``loss`` against these names)."""
EPS_SCHEDULES = ("exponential", "linear", "constant")


def td_target(
    reward: torch.Tensor,
    done: torch.Tensor,
    next_q: torch.Tensor,
    gamma: float,
    clip: bool = True,
    next_action: torch.Tensor | None = None,
) -> torch.Tensor:
    """The one-step TD target ``r + gamma * (1 - done) * Q_next``, optionally clipped to [0, 1].

    ``next_q`` is ``[B, n]`` from the target network. ``Q_next`` is its maximum over actions, or
    its value at ``next_action`` (double DQN: the online network picks, the target evaluates).
    """
    if next_action is None:
        bootstrap = next_q.max(dim=1).values
    else:
        bootstrap = next_q.gather(1, next_action.unsqueeze(1)).squeeze(1)
    target = reward + gamma * (1.0 - done.float()) * bootstrap
    return target.clamp(0.0, 1.0) if clip else target


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``target <- (1 - tau) * target + tau * online``, parameter by parameter, in place."""
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"the Polyak fraction tau must be in [0, 1], got {tau}")
    for p_target, p_online in zip(target.parameters(), online.parameters()):
        p_target.lerp_(p_online, tau)


def epsilon_greedy(q: torch.Tensor, epsilon: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per row of ``q`` (``[B, n]``): a uniformly random action with probability epsilon, else argmax."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    greedy = q.max(dim=1).indices  # max() is much faster than argmax() on rows with ties (HAR)
    if epsilon == 0.0:
        return greedy
    explore = torch.rand(q.shape[0], generator=generator, device=q.device) < epsilon
    random_actions = torch.randint(0, q.shape[1], (q.shape[0],), generator=generator, device=q.device)
    return torch.where(explore, random_actions, greedy)


@dataclass
class EpsilonSchedule:
    """Exploration rate per gradient step.

    kind: ``exponential`` (the write-up: multiply by ``decay`` each step, floor at ``end``),
    ``linear`` (from ``start`` to ``end`` over ``steps``), or ``constant`` (always ``start``).
    """

    start: float = 1.0
    end: float = 0.1
    decay: float = 0.999
    kind: str = "exponential"
    steps: int = 10_000

    def __post_init__(self) -> None:
        # Chapters and the tabular learner build schedules directly, so this is a boundary of its own.
        if self.kind not in EPS_SCHEDULES:
            raise ValueError(f"unknown epsilon schedule {self.kind!r}: use {', '.join(EPS_SCHEDULES)}")
        if not (0.0 <= self.end <= 1.0 and 0.0 <= self.start <= 1.0):
            raise ValueError("epsilon start and end must lie in [0, 1]")

    def value(self, step: int) -> float:
        """Epsilon after ``step`` gradient steps."""
        if self.kind == "constant":
            return self.start
        if self.kind == "linear":
            frac = min(step / max(self.steps, 1), 1.0)
            return self.start + frac * (self.end - self.start)
        return max(self.end, self.start * math.pow(self.decay, step))


class DQNLearner:
    """Online and target Q-networks with their optimiser, and the gradient step.

    The arguments are trusted: :class:`~bitflip_lib.config.TrainConfig` checks them (gamma in
    (0, 1], a known loss, ...) before :func:`~bitflip_lib.trainer.train` builds a learner with
    :meth:`from_config`.

    Args:
        network: the online Q-network ``(state, goal) -> [B, n]``.
        gamma: discount factor.
        lr: Adam learning rate.
        amsgrad: use the AMSGrad variant of Adam (the write-up did).
        polyak: the Polyak fraction tau of the target network's update; ``None`` means no target
            network (targets come from the online network itself, as in chapter 5's ablation).
        clip_targets: clip TD targets to [0, 1].
        loss: a name in :data:`LOSSES`, ``mse`` or ``huber``.
        double_dqn: pick the next action with the online network, evaluate it with the target.

    A study that changes what is learned from (the hindsight bound and advantage learning of
    :mod:`bitflip_lib.lab.studies`) subclasses this class: :meth:`experience` says what one
    played episode adds to replay, :meth:`replay_buffer` where it is kept, :meth:`targets` what
    each transition is regressed on.
    """

    def __init__(
        self,
        network: nn.Module,
        gamma: float = 0.98,
        lr: float = 1e-3,
        amsgrad: bool = True,
        polyak: float | None = 0.05,
        clip_targets: bool = True,
        loss: str = "mse",
        double_dqn: bool = False,
    ) -> None:
        self.online = network
        self.target = copy.deepcopy(network) if polyak is not None else None
        if self.target is not None:
            self.target.requires_grad_(False)
        self.optimizer = torch.optim.Adam(network.parameters(), lr=lr, amsgrad=amsgrad)
        self.gamma, self.polyak, self.clip_targets = gamma, polyak, clip_targets
        self.loss_name, self.loss_fn, self.double_dqn = loss, LOSSES[loss], double_dqn

    @classmethod
    def from_config(cls, network: nn.Module, config: TrainConfig) -> DQNLearner:
        """The learner ``config`` describes, around ``network``."""
        return cls(network, config.effective_gamma, config.lr, config.amsgrad, config.polyak, config.clip_targets,
                   config.loss, config.double_dqn)

    def experience(self, episode: EpisodeBatch, her: str, k: int, generator: torch.Generator
                   ) -> tuple[Transitions, Transitions]:
        """What one played episode adds to replay: its transitions as played, and their HER
        relabellings (``her`` and ``k`` as in :func:`~bitflip_lib.her.her_relabel`), both views of
        the episode (:class:`~bitflip_lib.replay.EpisodeSteps`) that the trainer copies out only as
        far as the buffer keeps them."""
        return episode.transitions(), her_relabel(episode, her, k, generator)

    def replay_buffer(self, n: int, capacity: int, device: torch.device) -> ReplayBuffer:
        """An empty replay buffer for what :meth:`experience` produces."""
        return ReplayBuffer(n, capacity, device)

    def update(self, batch: Transitions) -> dict[str, torch.Tensor]:
        """One gradient step on a batch; returns loss, mean Q and mean target as 0-d tensors.

        Tensors, not floats, so a loop of updates never waits for the device; call ``float()`` to read.
        """
        q = taken_action_values(self.online, batch.state, batch.goal, batch.action)
        with torch.no_grad():
            target = self.targets(batch)
        loss = self.loss_fn(q, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.target is not None:
            polyak_update(self.target, self.online, self.polyak)
        return {"loss": loss.detach(), "mean_q": q.detach().mean(), "mean_target": target.mean()}

    def targets(self, batch: Transitions) -> torch.Tensor:
        """The TD targets of a batch: the target network (or, without one, the online network)
        values the next state; with double DQN the online network picks the action it values."""
        evaluator = self.target if self.target is not None else self.online
        next_q = evaluator(batch.next_state, batch.goal)
        next_action = self.online(batch.next_state, batch.goal).argmax(1) if self.double_dqn else None
        return td_target(batch.reward, batch.done, next_q, self.gamma, self.clip_targets, next_action)
