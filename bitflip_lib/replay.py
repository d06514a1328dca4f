"""Transitions, whole episodes, and a replay buffer that lives on the training device."""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from bitflip_lib.env import goal_reached


@dataclass
class Transitions:
    """A batch of transitions ``(s, g, a, r, s', done)``; every field has the batch as first dimension.

    state, goal, next_state: ``[B, n]``; action: ``[B]`` int64; reward: ``[B]`` float32 (1/0);
    done: ``[B]`` float32, 1.0 where ``next_state`` equals ``goal`` (no bootstrapping past it).
    steps_to_goal: ``[B]`` int64 or ``None``: how many steps the path the episode actually took
    needed from ``state`` to ``goal`` (this step included), 0 where it never got there or it is
    not known. Only the hindsight bound (:attr:`~bitflip_lib.config.TrainConfig.hindsight_bound`)
    reads it.
    """

    state: torch.Tensor
    goal: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_state: torch.Tensor
    done: torch.Tensor
    steps_to_goal: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.action.shape[0]

    @classmethod
    def with_goals(cls, state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor, goal: torch.Tensor,
                   steps_to_goal: torch.Tensor | None = None) -> "Transitions":
        """Transitions for the given goals, with reward and done from the environment's own rule."""
        reached = goal_reached(next_state, goal).float()
        return cls(state, goal, action, reached, next_state, reached.clone(), steps_to_goal)

    def steps_or_zeros(self) -> torch.Tensor:
        """``steps_to_goal``, or zeros (not known) when these transitions do not carry it."""
        if self.steps_to_goal is None:
            return torch.zeros(len(self), dtype=torch.long, device=self.action.device)
        return self.steps_to_goal

    @classmethod
    def cat(cls, parts: list["Transitions"]) -> "Transitions":
        """One batch of several; ``steps_to_goal`` is kept if any part has it (zeros for the rest)."""
        names = [f.name for f in fields(cls) if f.name != "steps_to_goal"]
        joined = [torch.cat([getattr(p, name) for p in parts]) for name in names]
        steps = None
        if any(p.steps_to_goal is not None for p in parts):
            steps = torch.cat([p.steps_or_zeros() for p in parts])
        return cls(*joined, steps)


@dataclass
class EpisodeBatch:
    """One episode of B agents played in parallel, time-major.

    states:  ``[T + 1, B, n]``: ``states[t]`` is the state before step t, ``states[t + 1]`` after it.
    goal:    ``[B, n]``.
    actions: ``[T, B]`` int64.
    active:  ``[T, B]`` bool: the step counted (the agent was not done before it). Active steps
             of an agent form a prefix of length ``lengths[b]``.
    """

    states: torch.Tensor
    goal: torch.Tensor
    actions: torch.Tensor
    active: torch.Tensor

    @property
    def lengths(self) -> torch.Tensor:
        """Number of counted steps per agent, ``[B]``."""
        return self.active.sum(0)

    def step_index(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(t, b)`` indices of all counted steps, in time-major order."""
        t, b = self.active.nonzero(as_tuple=True)
        return t, b

    def transitions(self) -> Transitions:
        """The transitions as played, with the episode's own goals.

        ``steps_to_goal`` counts the steps from each transition to the end of its agent's
        episode where that episode reached its goal, and is 0 where it did not.
        """
        t, b = self.step_index()
        lengths = self.lengths
        agents = torch.arange(lengths.shape[0], device=lengths.device)
        succeeded = goal_reached(self.states[lengths, agents], self.goal)
        steps = torch.where(succeeded[b], lengths[b] - t, torch.zeros_like(t))
        return Transitions.with_goals(self.states[t, b], self.actions[t, b], self.states[t + 1, b], self.goal[b], steps)


class ReplayBuffer:
    """A fixed-capacity ring buffer of transitions on one device, sampled uniformly.

    Bits are stored as uint8 (a quarter of float32), so n = 1024 with the default capacity
    2^15 needs about 100 MB.
    """

    def __init__(self, n: int, capacity: int = 2**15, device: str | torch.device = "cpu") -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1 (the number of bits), got {n!r}")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an integer >= 1 (transitions kept), got {capacity!r}")
        self.n, self.capacity, self.device = n, capacity, torch.device(device)
        bits = lambda: torch.zeros(capacity, n, dtype=torch.uint8, device=self.device)  # noqa: E731
        self.state, self.goal, self.next_state = bits(), bits(), bits()
        self.action = torch.zeros(capacity, dtype=torch.long, device=self.device)
        self.reward = torch.zeros(capacity, device=self.device)
        self.done = torch.zeros(capacity, device=self.device)
        self.steps_to_goal = torch.zeros(capacity, dtype=torch.int32, device=self.device)
        self.position = 0  # next slot to write
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, batch: Transitions) -> None:
        """Append a batch; the oldest transitions are overwritten once the buffer is full."""
        if not isinstance(batch, Transitions):
            raise TypeError(f"add() takes a Transitions batch, got {type(batch).__name__}")
        if batch.action.dim() != 1:
            raise ValueError(f"transitions' action must have shape [count] (one per transition), got {tuple(batch.action.shape)}")
        count = len(batch)
        # Shapes only (no pass over the data): add runs once per training iteration.
        for name in ("state", "goal", "next_state"):
            shape = tuple(getattr(batch, name).shape)
            if shape != (count, self.n):
                raise ValueError(f"buffer holds n = {self.n} bits: transitions' {name} must have shape [{count}, {self.n}], got {shape}")
        for name in ("action", "reward", "done"):
            shape = tuple(getattr(batch, name).shape)
            if shape != (count,):
                raise ValueError(f"transitions' {name} must have shape [{count}] (one per transition), got {shape}")
        if batch.action.dtype.is_floating_point or batch.action.dtype == torch.bool or batch.action.is_complex():
            raise TypeError(f"transitions' action must have an integer dtype (bit indices), got {batch.action.dtype}")
        if count == 0:
            return
        steps = batch.steps_or_zeros()
        if count > self.capacity:  # only the newest ones would survive anyway
            batch = Transitions(*(getattr(batch, f.name)[-self.capacity :] for f in fields(Transitions) if f.name != "steps_to_goal"))
            steps, count = steps[-self.capacity :], self.capacity
        slots = (self.position + torch.arange(count, device=self.device)) % self.capacity
        self.state[slots] = batch.state.to(self.device, torch.uint8)
        self.goal[slots] = batch.goal.to(self.device, torch.uint8)
        self.next_state[slots] = batch.next_state.to(self.device, torch.uint8)
        self.action[slots] = batch.action.to(self.device)
        self.reward[slots] = batch.reward.to(self.device, torch.float32)
        self.done[slots] = batch.done.to(self.device, torch.float32)
        self.steps_to_goal[slots] = steps.to(self.device, torch.int32)
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator | None = None, replace: bool = True) -> Transitions:
        """``batch_size`` transitions drawn uniformly, bits as float32.

        With ``replace=False`` (the write-up's code) a batch holds no transition twice; a batch
        larger than the buffer holds every stored transition as many whole times as fit, and the
        rest drawn without replacement.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer: add transitions first")
        if replace:
            idx = torch.randint(0, self.size, (batch_size,), generator=generator, device=self.device)
        else:
            whole, rest = divmod(batch_size, self.size)
            drawn = torch.randperm(self.size, generator=generator, device=self.device)[:rest]
            idx = torch.cat([torch.arange(self.size, device=self.device).repeat(whole), drawn])
        return Transitions(
            self.state[idx].float(),
            self.goal[idx].float(),
            self.action[idx],
            self.reward[idx],
            self.next_state[idx].float(),
            self.done[idx],
            self.steps_to_goal[idx].long(),
        )
