"""Transitions, whole episodes, and a replay buffer that lives on the training device."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch

from bitflip_lib.env import goal_reached

__all__ = [
    "EpisodeBatch", "ReplayBuffer", "Transitions",
]


@dataclass
class Transitions:
    """A batch of transitions ``(s, g, a, r, s', done)``; every field has the batch as first dimension.

    state, goal, next_state: ``[B, n]``; action: ``[B]`` int64; reward: ``[B]`` float32 (1/0);
    done: ``[B]`` float32, 1.0 where ``next_state`` equals ``goal`` (no bootstrapping past it).
    A subclass may add fields (one more tensor per transition); :meth:`cat`, :meth:`select` and
    :class:`ReplayBuffer` carry every field.
    """

    state: torch.Tensor
    goal: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_state: torch.Tensor
    done: torch.Tensor

    def __len__(self) -> int:
        return self.action.shape[0]

    @classmethod
    def with_goals(cls, state: torch.Tensor, goal: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor,
                   **extra: torch.Tensor) -> Transitions:
        """Transitions for the given goals, with reward and done from the environment's own rule."""
        reached = goal_reached(next_state, goal).float()
        return cls(state=state, goal=goal, action=action, reward=reached, next_state=next_state, done=reached.clone(),
                   **extra)

    @classmethod
    def cat(cls, parts: Sequence[Transitions]) -> Transitions:
        """One batch of several (all of this class)."""
        return cls(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def select(self, index: torch.Tensor | slice) -> Transitions:
        """The transitions at ``index`` (a slice, or a tensor of positions or a mask)."""
        return type(self)(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


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
        """The transitions as played, with the episode's own goals."""
        t, b = self.step_index()
        return Transitions.with_goals(self.states[t, b], self.goal[b], self.actions[t, b], self.states[t + 1, b])


class ReplayBuffer:
    """A fixed-capacity ring buffer of transitions on one device, sampled uniformly.

    Bits are stored as uint8 (a quarter of float32), so n = 1024 with the default capacity
    2^15 needs about 100 MB. A subclass that stores a :class:`Transitions` subclass with more
    fields extends :meth:`_write` and :meth:`_read`.
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
        if count > self.capacity:  # only the newest ones would survive anyway
            batch, count = batch.select(slice(-self.capacity, None)), self.capacity
        slots = (self.position + torch.arange(count, device=self.device)) % self.capacity
        self._write(slots, batch)
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def _write(self, slots: torch.Tensor, batch: Transitions) -> None:
        """Store ``batch`` at ``slots``, field by field."""
        self.state[slots] = batch.state.to(self.device, torch.uint8)
        self.goal[slots] = batch.goal.to(self.device, torch.uint8)
        self.next_state[slots] = batch.next_state.to(self.device, torch.uint8)
        self.action[slots] = batch.action.to(self.device)
        self.reward[slots] = batch.reward.to(self.device, torch.float32)
        self.done[slots] = batch.done.to(self.device, torch.float32)

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
        return self._read(idx)

    def _read(self, idx: torch.Tensor) -> Transitions:
        """The transitions at slots ``idx``, bits as float32."""
        return Transitions(self.state[idx].float(), self.goal[idx].float(), self.action[idx], self.reward[idx],
                           self.next_state[idx].float(), self.done[idx])
