"""Hindsight Experience Replay (Andrychowicz et al., 2017): relabel goals with states actually reached.

An episode that missed its goal g still shows how to reach every state it passed through.
Relabelling a transition with such an achieved state as the goal turns a reward-free episode
into rewarded examples. Strategies (for a counted step t of an agent whose episode has L steps):

* ``none``:    no relabelling.
* ``final``:   one new goal per transition: the state at the end of the episode.
* ``future``:  k new goals per transition, each the state reached after a step t' drawn
               uniformly from [t, L - 1] (the same episode, at or after the step).
* ``episode``: k new goals per transition, each the state reached after any step of the episode.
* ``writeup30``: the write-up's variant, as its code does it: 30% of the trajectories are
               picked, each gets one goal, a state its episode reached (drawn uniformly), and the
               picked trajectory is relabelled from its start up to the step that first reaches
               that goal; a trajectory that starts at the goal adds nothing.
* ``writeup30-whole``: the course's first reading of that variant: the same picks and goals,
               but every transition of the picked trajectory is relabelled, including those after
               the goal was reached (kept to rerun the runs stored with it).

Rewards and done flags of relabelled transitions are recomputed with the environment's rule
(:func:`bitflip_lib.env.goal_reached`). Everything is vectorised over agents and steps.
:func:`her_relabel` is the one entry point; :func:`hindsight_goal_steps` is its first half, the
random choice of which achieved state becomes each new goal, for code that needs to know it.
"""
from __future__ import annotations

import torch

from bitflip_lib.replay import EpisodeBatch, EpisodeSteps, Transitions

__all__ = [
    "her_relabel", "HER_STRATEGIES", "hindsight_goal_steps", "K_STRATEGIES",
    "WRITEUP30_FRACTION",
]

HER_STRATEGIES = ("none", "final", "future", "episode", "writeup30", "writeup30-whole")
K_STRATEGIES = ("future", "episode")
"""The strategies that draw ``k`` new goals per transition (the others ignore ``k``)."""
WRITEUP30_FRACTION = 0.3
"""Share of the trajectories the write-up's variant relabels (its code draws each with probability 0.3)."""


def _uniform_int(low: torch.Tensor, high: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Integers drawn uniformly from [low, high) elementwise (requires high > low)."""
    u = torch.rand(low.shape, generator=generator, device=low.device)
    return low + (u * (high - low)).long().clamp_max(high - low - 1)


def her_relabel(episode: EpisodeBatch, strategy: str = "future", k: int = 4, generator: torch.Generator | None = None) -> Transitions:
    """Relabelled copies of an episode's transitions (the originals are not included), as a view of
    the episode (:class:`~bitflip_lib.replay.EpisodeSteps`): transition i is step ``t`` of agent
    ``b`` with the goal that agent reached after its step ``goal_t`` (:func:`hindsight_goal_steps`).

    Args:
        episode: the played episode (see :class:`~bitflip_lib.replay.EpisodeBatch`).
        strategy: one of :data:`HER_STRATEGIES`.
        k: new goals per transition for ``future`` and ``episode``.
        generator: random generator on the episode's device, for reproducibility.
    """
    t, b, goal_t = hindsight_goal_steps(episode, strategy, k, generator)
    # The new goal of step t is the state the agent reached after its step goal_t. The transitions
    # are a view of the episode (EpisodeSteps): k per step played, they are copied out only as far
    # as they are read, e.g. the newest ones a replay buffer keeps.
    return EpisodeSteps(episode, t, b, goal_t)


def hindsight_goal_steps(episode: EpisodeBatch, strategy: str = "future", k: int = 4,
                         generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which transitions :func:`her_relabel` relabels, and with which goals: ``(t, b, goal_t)``.

    Relabelled transition i is step ``t[i]`` of agent ``b[i]``, and its new goal is the state that
    agent reached after its step ``goal_t[i]``. Arguments as for :func:`her_relabel`, which checks
    them (chapters and exercises call it directly).
    """
    if strategy not in HER_STRATEGIES:
        raise ValueError(f"unknown HER strategy {strategy!r}: choose one of {', '.join(HER_STRATEGIES)}")
    if strategy in K_STRATEGIES and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        raise ValueError(f"k (new goals per transition) must be an integer >= 1 for '{strategy}', got {k!r}")
    t, b = episode.step_index()
    lengths = episode.lengths
    if strategy == "none" or t.numel() == 0:
        return t[:0], b[:0], t[:0]
    if strategy in ("writeup30", "writeup30-whole"):
        agents = lengths.shape[0]
        picked = (torch.rand(agents, generator=generator, device=lengths.device) < WRITEUP30_FRACTION) & (lengths > 0)
        goal_step = _uniform_int(torch.zeros_like(lengths), lengths.clamp_min(1), generator)  # one per agent
        keep = picked[b]
        if strategy == "writeup30":
            # Keep step t only while the path has not yet stood on the new goal: up to the step that
            # first reaches it (the goal may have been passed before goal_step), none after it.
            goal = episode.states[goal_step + 1, torch.arange(agents, device=lengths.device)]  # [B, n]
            on_goal = (episode.states == goal.unsqueeze(0)).all(-1)  # [T + 1, B]
            first_reach = on_goal.float().argmax(0)  # first t' with states[t'] == goal
            keep &= t < first_reach[b]
            goal_step = first_reach - 1  # the step whose next state first equals the goal
        t, b = t[keep], b[keep]
        return t, b, goal_step[b]
    copies = 1 if strategy == "final" else k
    t, b = t.repeat(copies), b.repeat(copies)
    if strategy == "final":
        goal_t = lengths[b] - 1
    elif strategy == "future":
        goal_t = _uniform_int(t, lengths[b], generator)
    else:  # episode
        goal_t = _uniform_int(torch.zeros_like(t), lengths[b], generator)
    return t, b, goal_t
