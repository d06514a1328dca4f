"""Transitions, whole episodes, and a replay buffer that lives on the training device."""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch

from bitflip_lib.env import goal_reached

__all__ = [
    "EpisodeBatch", "EpisodeSteps", "newest", "ReplayBuffer", "Transitions",
]

CHUNK_BITS = 2**24
"""Bits compared at once when :class:`EpisodeSteps` computes rewards (16 MB of comparisons)."""


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

    def transitions(self) -> EpisodeSteps:
        """The transitions as played, with the episode's own goals (a view: see :class:`EpisodeSteps`)."""
        t, b = self.step_index()
        return EpisodeSteps(self, t, b)


class EpisodeSteps(Transitions):
    """Transitions of one played episode named by index, copied out of it only when read.

    Transition i is step ``t[i]`` of agent ``b[i]``; its goal is the state that agent reached after
    its step ``goal_t[i]`` (a HER relabelling), or the episode's own goal where ``goal_t`` is None.

    Why a view: relabelling k goals per step names k transitions per step played, each of 3 n
    bits. Copied out at once they take 3 k times the memory of the episode itself (at n = 5000
    with k = 4, 4.8 GB of bits for a 0.4 GB episode), although a replay buffer keeps only its
    newest ``capacity`` of them. Named by index they take a few bytes each: :attr:`reward` and
    :attr:`done` compare goals a slice at a time, :meth:`select` copies out only the rows asked
    for, and reading ``state``, ``goal``, ``action`` or ``next_state`` copies them all (once).
    It is a :class:`Transitions` in every other way.
    """

    materialised: ClassVar[type[Transitions]] = Transitions
    """The class :meth:`select` returns."""

    def __init__(self, episode: EpisodeBatch, t: torch.Tensor, b: torch.Tensor, goal_t: torch.Tensor | None = None) -> None:
        self.episode, self.t, self.b, self.goal_t = episode, t, b, goal_t

    def __len__(self) -> int:
        return self.t.shape[0]

    def _goals(self, index: slice | torch.Tensor) -> torch.Tensor:
        b = self.b[index]
        return self.episode.goal[b] if self.goal_t is None else self.episode.states[self.goal_t[index] + 1, b]

    def _extra(self, index: slice | torch.Tensor) -> dict[str, Any]:
        """More fields of :attr:`materialised` for the rows at ``index`` (none here; a subclass adds its own)."""
        return {}

    def select(self, index: torch.Tensor | slice) -> Transitions:
        """The transitions at ``index`` copied out of the episode, rewards from the environment's rule."""
        t, b = self.t[index], self.b[index]
        return self.materialised.with_goals(self.episode.states[t, b], self._goals(index), self.episode.actions[t, b],
                                            self.episode.states[t + 1, b], **self._extra(index))

    @classmethod
    def cat(cls, parts: Sequence[Transitions]) -> Transitions:
        return cls.materialised.cat(parts)

    @functools.cached_property
    def _copied(self) -> Transitions:
        """Every transition copied out, once (what reading a field of bits needs)."""
        return self.select(slice(None))

    @property
    def state(self) -> torch.Tensor:
        return self._copied.state

    @property
    def goal(self) -> torch.Tensor:
        return self._copied.goal

    @property
    def action(self) -> torch.Tensor:
        return self.episode.actions[self.t, self.b]

    @property
    def next_state(self) -> torch.Tensor:
        return self._copied.next_state

    @functools.cached_property
    def reward(self) -> torch.Tensor:
        """1.0 where the next state is the goal, else 0.0 (``[count]`` float32), a slice at a time."""
        n = self.episode.states.shape[-1]
        rows = max(1, CHUNK_BITS // n)
        parts = [goal_reached(self.episode.states[self.t[i:i + rows] + 1, self.b[i:i + rows]],
                              self._goals(slice(i, i + rows))).float() for i in range(0, len(self), rows)]
        return torch.cat(parts) if parts else torch.zeros(0, device=self.t.device)

    @property
    def done(self) -> torch.Tensor:
        """1.0 where the next state is the goal (no bootstrapping past it): the reward's copy."""
        return self.reward.clone()


def newest(parts: Sequence[Transitions], count: int) -> Transitions:
    """The last ``count`` transitions of ``parts`` taken one after the other, copied out: what a
    replay buffer of capacity ``count`` keeps of ``cat(parts)``, without copying the rest (the
    parts may be :class:`EpisodeSteps`, which copy out only the rows selected)."""
    kept, remaining = [], count
    for part in reversed(parts):
        take = min(len(part), remaining)
        kept.append(part.select(slice(len(part) - take, len(part))))
        remaining -= take
    return type(kept[-1]).cat(kept[::-1])


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
