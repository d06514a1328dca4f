"""Example inputs for the exercises' own experiments (public: ``from bitflip_lib.grading import ...``).

The graders use the same helpers, so a student's experiment sees the inputs the checks use.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

from bitflip_lib.replay import Transitions

N = 8
"""Bits per numbered transition: numbers up to 2^N - 1."""


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(seed)


def example_batch(n: int = 6, batch: int = 32, seed: int = 0, device="cpu", done_fraction: float = 0.25) -> Transitions:
    """Random transitions with a share of rewarded, terminal ones (reward and done agree)."""
    g = generator(seed, device)
    state = torch.randint(0, 2, (batch, n), generator=g, device=device).float()
    goal = torch.randint(0, 2, (batch, n), generator=g, device=device).float()
    action = torch.randint(0, n, (batch,), generator=g, device=device)
    next_state = state.clone()
    rows = torch.arange(batch, device=device)
    next_state[rows, action] = 1.0 - next_state[rows, action]
    reached = torch.rand(batch, generator=g, device=device) < done_fraction
    goal[reached] = next_state[reached]  # these transitions reach their goal
    return Transitions.with_goals(state, goal, action, next_state)


def numbered_transitions(ids: Iterable[int], n: int = N, device="cpu") -> Transitions:
    """Transition number i has the bits of i as state and ``i mod n`` as action (numbers from 1:
    a slot of a buffer that was never written holds zeros, which no numbered transition is)."""
    ids = torch.as_tensor(list(ids), dtype=torch.long, device=device)
    if bool((ids >= 2**n).any()) or bool((ids < 0).any()):
        raise ValueError(f"transition numbers must lie in [0, {2**n}) for n = {n}")
    state = ((ids[:, None] >> torch.arange(n, device=device)) & 1).float()
    action = ids % n
    next_state = state.clone()
    rows = torch.arange(len(ids), device=device)
    next_state[rows, action] = 1.0 - next_state[rows, action]
    goal = torch.where(ids[:, None] % 3 == 0, next_state, 1.0 - state)  # every third one reaches its goal
    return Transitions.with_goals(state, goal, action, next_state)


def numbers_of(batch: Transitions, n: int = N) -> torch.Tensor:
    """The numbers of sampled transitions, checking each one is intact (fields from one transition).

    Raises AssertionError naming the problem: slots never written (all zeros) were sampled, or a
    field was taken at other indices than the state.
    """
    state = batch.state.detach().to("cpu", torch.float32)
    ids = (state.round().long() * 2 ** torch.arange(n)).sum(1)
    blank = ids == 0
    for name in ("goal", "next_state", "action", "reward", "done"):
        blank &= getattr(batch, name).detach().to("cpu", torch.float32).reshape(len(ids), -1).eq(0).all(1)
    if bool(blank.any()):
        raise AssertionError(f"{int(blank.sum())} of {len(ids)} sampled transitions are all zeros: slots not yet written "
                             "were sampled. Draw indices from the filled slots only, 0 ... len(buffer) - 1, not from the "
                             "whole capacity")
    want = numbered_transitions(ids.tolist(), n)
    for name in ("action", "goal", "next_state", "reward", "done"):
        got = getattr(batch, name).detach().to("cpu", getattr(want, name).dtype)
        if not torch.equal(got, getattr(want, name)):
            raise AssertionError(f"sampled {name} does not belong with the sampled state and action: take every field "
                                 "at the same indices")
    return ids


__all__ = ["example_batch", "numbered_transitions", "numbers_of"]
