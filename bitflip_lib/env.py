"""The goal-conditioned bit-flipping environment, batched over agents, on any torch device.

Each of ``num_agents`` agents holds an n-bit state and an n-bit goal, both drawn uniformly at
random. Action ``i`` flips bit ``i``. The reward is 1 on the step whose new state equals the
goal and 0 otherwise (the write-up's sparse reward). An agent is *done* once it has reached its
goal; an episode lasts at most ``max_steps`` (default n) steps. Steps of agents that are already
done are masked: their state does not change, they earn nothing and the step is not counted.

States and goals are float32 tensors of zeros and ones with shape ``[num_agents, n]``, ready to
be fed to a network.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from bitflip_lib.runtime.device import default_device

__all__ = [
    "BitFlipEnv", "check_seed", "distance_change", "EVAL_SEED_OFFSET", "evaluation_seed", "flip_bits",
    "flip_bits_", "goal_reached", "hamming_distance", "MAX_SEED", "optimal_steps", "random_bits",
    "random_goals", "StepResult",
]


def _check_pair(state: torch.Tensor, goal: torch.Tensor) -> None:
    if not isinstance(state, torch.Tensor) or not isinstance(goal, torch.Tensor):
        raise TypeError("state and goal must be torch tensors")
    if state.shape != goal.shape:
        raise ValueError(f"state and goal must have the same shape, got {tuple(state.shape)} and {tuple(goal.shape)}")
    if state.dim() < 1 or state.shape[-1] < 1:
        raise ValueError(f"expected bit strings with a last dimension n >= 1, got shape {tuple(state.shape)}")


def hamming_distance(state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """Number of differing bits along the last dimension (int64), e.g. ``[B, n] -> [B]``."""
    _check_pair(state, goal)
    return (state != goal).sum(dim=-1)


def goal_reached(state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """The environment's reward rule: True where ``state`` equals ``goal`` (all bits)."""
    _check_pair(state, goal)
    return (state == goal).all(dim=-1)  # several times faster than counting differing bits


def optimal_steps(state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """Fewest flips from ``state`` to ``goal``: each flip fixes at most one bit, so the Hamming distance."""
    return hamming_distance(state, goal)


def random_bits(rows: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """``rows`` uniformly random n-bit strings (float32 zeros and ones) on the generator's device."""
    return torch.randint(0, 2, (rows, n), generator=generator, device=generator.device).float()


def random_goals(state: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Uniformly random goals for ``state`` (``[B, n]``), redrawn where a goal equals its start.

    Every episode then needs at least one flip: an agent never starts with a free reward.
    """
    goal = random_bits(state.shape[0], state.shape[1], generator)
    same = goal_reached(state, goal)
    while bool(same.any()):
        goal = torch.where(same[:, None], random_bits(state.shape[0], state.shape[1], generator), goal)
        same = goal_reached(state, goal)
    return goal


def flip_bits(state: torch.Tensor, actions: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """The flip rule: a copy of ``state`` with bit ``actions[i]`` of row ``i`` flipped where ``active[i]``.

    The one implementation of the task's dynamics (with :func:`flip_bits_`, its in-place form):
    the environment, its Gymnasium versions, evaluation and the exercise graders all step
    through it.
    """
    return flip_bits_(state.clone(), actions, active)


def flip_bits_(state: torch.Tensor, actions: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`flip_bits` in place: flip bit ``actions[i]`` of row ``i`` of ``state`` where
    ``active[i]`` (every row when ``active`` is None); returns ``state``."""
    rows = torch.arange(state.shape[0], device=state.device)
    old_bits = state[rows, actions]
    flipped = 1.0 - old_bits if active is None else old_bits + active.float() * (1.0 - 2.0 * old_bits)
    state[rows, actions] = flipped
    return state


def distance_change(state: torch.Tensor, goal: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """How flipping bit ``actions[i]`` changes row i's Hamming distance to its goal: -1 where the
    bit differed from the goal (the flip fixes it), +1 where it matched (the flip breaks it)."""
    rows = torch.arange(state.shape[0], device=state.device)
    return torch.where(state[rows, actions] != goal[rows, actions], -1, 1)


EVAL_SEED_OFFSET = 1_000_003
MAX_SEED = 2**63 - 1
"""Largest seed: torch generators take seeds below 2^64, and evaluation draws from
:func:`evaluation_seed` (``seed + 1_000_003``)."""


def check_seed(seed: object, none: bool = True) -> None:
    """A ``ValueError`` unless ``seed`` is an integer in [0, :data:`MAX_SEED`] (or None, when allowed):
    the seeds every generator of the course accepts."""
    if seed is None and none:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer >= 0 and below 2**63{' or None' if none else ''}, got {seed!r}")


def evaluation_seed(seed: int) -> int:
    """The seed evaluation agents are drawn from for a run seeded ``seed``: a stream of their own,
    so that evaluating more or less often never changes what training draws."""
    return seed + EVAL_SEED_OFFSET


class StepResult(NamedTuple):
    """What :meth:`BitFlipEnv.step` returns, one entry per agent.

    state:  the new states, ``[B, n]`` float32.
    reward: 1.0 where this step reached the goal, else 0.0 (``[B]`` float32).
    done:   True for agents that have reached their goal, on this step or earlier (``[B]`` bool).
    active: True for agents whose step counted (they were not done before it) (``[B]`` bool).
    """

    state: torch.Tensor
    reward: torch.Tensor
    done: torch.Tensor
    active: torch.Tensor


class BitFlipEnv:
    """A batch of ``num_agents`` independent bit-flipping episodes of n bits.

    Args:
        n: number of bits (n >= 1).
        num_agents: agents played in parallel.
        max_steps: episode length limit (default n, as in the write-up).
        device: torch device (default: CUDA when available, else CPU).
        seed: seed of the environment's own random generator, used when ``generator`` is None.
        generator: a ``torch.Generator`` on ``device`` to draw starts and goals from.

    A start equal to its goal is redrawn, so every episode needs at least one flip (no free
    reward). A start equal to its goal given explicitly to :meth:`reset` begins already done.
    """

    def __init__(
        self,
        n: int,
        num_agents: int = 16,
        max_steps: int | None = None,
        device: str | torch.device | None = None,
        seed: int | None = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1 (the number of bits), got {n!r}")
        if isinstance(num_agents, bool) or not isinstance(num_agents, int) or num_agents < 1:
            raise ValueError(f"num_agents must be an integer >= 1, got {num_agents!r}")
        if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
            raise ValueError(f"max_steps must be an integer >= 1 or None (meaning n), got {max_steps!r}")
        check_seed(seed)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        self.n = n
        self.num_agents = num_agents
        self.max_steps = n if max_steps is None else max_steps
        self.device = default_device(device)
        if generator is None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(0 if seed is None else seed)
        elif generator.device.type != self.device.type:
            raise ValueError(f"generator is on {generator.device}, environment on {self.device}: create it on the same device")
        self.generator = generator
        self.state = torch.zeros(num_agents, n, device=self.device)
        self.goal = torch.zeros(num_agents, n, device=self.device)
        self.distance = torch.zeros(num_agents, dtype=torch.long, device=self.device)
        self.done = torch.ones(num_agents, dtype=torch.bool, device=self.device)
        self.steps = torch.zeros(num_agents, dtype=torch.long, device=self.device)
        self.t = self.max_steps  # no episode running until reset()
        self.started = False

    def reset(self, state: torch.Tensor | None = None, goal: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Start a new episode for every agent and return ``(state, goal)``.

        Random starts and goals are drawn when not given; given ones must be ``[num_agents, n]``
        tensors of zeros and ones (any real or bool dtype; they are copied as float32).

        The returned tensors are copies: later steps do not change them, and changing them does
        not change the environment. Each :meth:`step` returns the new states (``env.state`` is
        the environment's own current state).
        """
        if state is None:
            state = random_bits(self.num_agents, self.n, self.generator)
        else:
            state = self._validate_bits(state, "state")
        if goal is None:
            goal = random_goals(state, self.generator)
        else:
            goal = self._validate_bits(goal, "goal")
        self.state = state.clone()
        self.goal = goal.clone()
        self.distance = hamming_distance(self.state, self.goal)
        self.done = self.distance == 0
        self.steps = torch.zeros(self.num_agents, dtype=torch.long, device=self.device)
        self.t = 0
        self.started = True
        return self.state.clone(), self.goal.clone()

    def _validate_bits(self, bits: torch.Tensor, name: str) -> torch.Tensor:
        if not isinstance(bits, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor of shape [{self.num_agents}, {self.n}], got {type(bits).__name__}")
        if tuple(bits.shape) != (self.num_agents, self.n):
            raise ValueError(f"{name} must have shape [{self.num_agents}, {self.n}] (agents, bits), got {tuple(bits.shape)}")
        if bits.is_complex():
            raise TypeError(f"{name} must hold real zeros and ones (float, integer or bool dtype), got {bits.dtype}")
        bits = bits.to(self.device, torch.float32)
        if not bool(((bits == 0) | (bits == 1)).all()):
            raise ValueError(f"{name} must contain only zeros and ones")
        return bits

    @property
    def episode_over(self) -> bool:
        """True when every agent is done or the step limit is reached."""
        return self.t >= self.max_steps or bool(self.done.all())

    def step(self, actions: torch.Tensor) -> StepResult:
        """Flip bit ``actions[i]`` of agent ``i`` for every agent that is not done yet."""
        if not self.started:
            raise RuntimeError("no episode has started: call reset() before step()")
        if self.t >= self.max_steps:
            raise RuntimeError(f"the episode is over (step limit {self.max_steps} reached): call reset() first")
        if not isinstance(actions, torch.Tensor):
            raise TypeError(f"actions must be a torch tensor of shape [{self.num_agents}] with integer dtype, got {type(actions).__name__}")
        if tuple(actions.shape) != (self.num_agents,):
            raise ValueError(f"actions must have shape [{self.num_agents}] (one bit index per agent), got {tuple(actions.shape)}")
        if actions.dtype.is_floating_point or actions.dtype == torch.bool or actions.is_complex():
            raise TypeError(f"actions must have an integer dtype (bit indices), got {actions.dtype}")
        actions = actions.to(self.device, torch.long)
        if bool(((actions < 0) | (actions >= self.n)).any()):
            bad = actions[(actions < 0) | (actions >= self.n)][0].item()
            raise ValueError(f"actions must be bit indices in [0, {self.n - 1}], got {bad}")

        active = ~self.done
        self.distance = self.distance + active.long() * distance_change(self.state, self.goal, actions)
        self.state = flip_bits(self.state, actions, active)
        reached = active & (self.distance == 0)
        self.done = self.done | reached
        self.steps = self.steps + active.long()
        self.t += 1
        return StepResult(self.state.clone(), reached.float(), self.done.clone(), active)
