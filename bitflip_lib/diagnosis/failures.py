"""Why the last agents fail: whole greedy trajectories, their cycles, other ways to act on the
same Q-values, and the rank of the network's representation.

:func:`~bitflip_lib.trainer.evaluate` says *how many* agents reach their goals. This module
says *how the others fail*, for a trained network:

* :func:`play_greedy` plays every agent for the whole episode (no agent is stopped early) and
  keeps every state, so that :func:`describe_trajectories` can tell an agent that *cycles*
  (comes back to a state it has already been in: a deterministic greedy policy then repeats
  the loop until time runs out) from one that wanders without repeating itself.
* The action rule can be the plain argmax (what evaluation does), a *tie-break* (uniform among
  the actions within ``tolerance`` of the best value) or a small epsilon. If the failures are
  cycles through near-ties, the last two rescue them; if the network ranks a wrong flip first
  by a clear margin, they do not.
* :func:`effective_rank` is the ``srank`` of Kumar et al. (2021, "Implicit
  Under-Parameterization Inhibits Data-Efficient Deep Reinforcement Learning"): how many
  singular directions carry 99% of a batch of features. The representation-rank work in the
  course's reading list (BEER, ICLR 2024) studies the same quantity; a collapse would show as a
  rank far below the layer's width.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from bitflip_lib.env import BitFlipEnv, flip_bits, hamming_distance

__all__ = [
    "compare_rules", "describe_trajectories", "effective_rank", "hidden_features",
    "pairs_at_distance", "play_greedy", "probe_batch", "right_move_rate",
    "right_move_rate_by_bit", "RULES", "wrong_move_margins",
]

RULES = ("argmax", "tie_break", "epsilon")


def _actions(q: torch.Tensor, rule: str, tolerance: float, epsilon: float, generator: torch.Generator) -> torch.Tensor:
    if rule == "argmax":
        return q.max(1).indices
    if rule == "tie_break":
        near_best = q >= q.max(1, keepdim=True).values - tolerance
        scores = torch.rand(q.shape, generator=generator, device=q.device) * near_best  # 0 outside the ties
        return scores.max(1).indices
    explore = torch.rand(q.shape[0], generator=generator, device=q.device) < epsilon
    random_actions = torch.randint(0, q.shape[1], (q.shape[0],), generator=generator, device=q.device)
    return torch.where(explore, random_actions, q.max(1).indices)


@torch.no_grad()
def play_greedy(
    network: nn.Module,
    n: int,
    num_agents: int = 1024,
    seed: int = 0,
    rule: str = "argmax",
    tolerance: float = 1e-3,
    epsilon: float = 0.05,
    max_steps: int | None = None,
) -> dict[str, torch.Tensor]:
    """Play ``num_agents`` fresh (start, goal) pairs for a whole episode with ``network``.

    Agents stop only when they reach their goal. ``seed`` draws the pairs (the same seed gives
    the same pairs for every network and rule) and the rule's random choices.

    Returns ``states`` (``[T + 1, num_agents, n]``, the state after each step; a finished agent
    keeps its last state), ``goal``, ``distance`` (``[T + 1, num_agents]``) and ``actions``
    (``[T, num_agents]``, -1 once an agent has finished).
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    env = BitFlipEnv(n, num_agents, max_steps, device="cpu", seed=seed)
    state, goal = env.reset()
    generator = torch.Generator().manual_seed(seed + 1)
    states, distances, actions = [state.clone()], [env.distance.clone()], []
    was_training = network.training
    network.eval()
    distance = env.distance.clone()
    for _ in range(env.max_steps):
        playing = distance > 0
        action = _actions(network(state, goal), rule, tolerance, epsilon, generator)
        state = flip_bits(state, action, playing)  # finished agents stay where they are
        distance = hamming_distance(state, goal)
        states.append(state)
        distances.append(distance)
        actions.append(torch.where(playing, action, torch.full_like(action, -1)))
    network.train(was_training)
    return {"states": torch.stack(states), "goal": goal, "distance": torch.stack(distances),
            "actions": torch.stack(actions)}


def describe_trajectories(played: dict[str, torch.Tensor]) -> dict[str, float | int | None]:
    """What the failing agents of :func:`play_greedy` did.

    ``success_rate``; ``failures``; ``cycling`` (failing agents that came back to a state they
    had been in); ``cycle_length_mean`` (steps between the two visits, 2 = a flip and its
    undo); ``cycle_distance_mean`` (distance to the goal where the loop closes);
    ``start_distance_all`` and ``start_distance_failing`` (mean start distance of all agents
    and of the failing ones); ``closest_failing`` (mean of the nearest each failing agent came);
    ``wrong_flip_fraction_failing`` (of the failing agents' moves, the fraction that moved away
    from the goal).
    """
    states, distance, actions = played["states"], played["distance"], played["actions"]
    steps, agents = actions.shape
    failed = distance[-1] > 0
    result: dict[str, float | int | None] = {
        "agents": agents,
        "success_rate": float((~failed).float().mean()),
        "failures": int(failed.sum()),
        "start_distance_all": float(distance[0].float().mean()),
    }
    if not bool(failed.any()):
        return {**result, "cycling": 0, "cycle_length_mean": None, "cycle_distance_mean": None,
                "start_distance_failing": None, "closest_failing": None, "wrong_flip_fraction_failing": None}
    path = states[:, failed]  # [T + 1, F, n]
    failed_distance = distance[:, failed]
    earlier = torch.tril(torch.ones(steps + 1, steps + 1, dtype=torch.bool), diagonal=-1)  # u < t
    cycling, lengths, cycle_distances = 0, [], []
    for start in range(0, path.shape[1], 64):  # 64 agents at a time bounds the [T+1, T+1, 64, n] comparison
        chunk = path[:, start:start + 64]
        revisit = (chunk.unsqueeze(0) == chunk.unsqueeze(1)).all(-1) & earlier.unsqueeze(-1)  # [t, u, agent]
        closes = revisit.any(1)  # [T + 1, agents]: the state at t was seen before
        for agent in torch.nonzero(closes.any(0)).flatten().tolist():
            t = int(torch.nonzero(closes[:, agent]).flatten()[0])  # the first step that closes a loop
            u = int(torch.nonzero(revisit[t, :, agent]).flatten()[0])
            cycling += 1
            lengths.append(t - u)
            cycle_distances.append(int(failed_distance[t, start + agent]))
    moves = actions[:, failed] >= 0
    away = (failed_distance[1:] > failed_distance[:-1]) & moves
    return {**result,
            "cycling": cycling,
            "cycle_length_mean": sum(lengths) / len(lengths) if lengths else None,
            "cycle_distance_mean": sum(cycle_distances) / len(cycle_distances) if cycle_distances else None,
            "start_distance_failing": float(failed_distance[0].float().mean()),
            "closest_failing": float(failed_distance.min(0).values.float().mean()),
            "wrong_flip_fraction_failing": float(away.sum() / moves.sum())}


def hidden_features(network: nn.Module, state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """The last hidden layer's activations of an :class:`~bitflip_lib.networks.MLP` (``[B, width]``)."""
    body = getattr(network, "body", None)
    if not isinstance(body, nn.Sequential) or len(body) < 3:
        raise TypeError("hidden_features reads an MLP's last hidden layer: give it an MLP (arch 'mlp')")
    with torch.no_grad():
        return body[:-1](torch.cat([state, goal], dim=1))


def effective_rank(features: torch.Tensor, delta: float = 0.01) -> int:
    """``srank``: the fewest singular values of ``features`` (``[B, d]``) that sum to 1 - delta of all."""
    if features.dim() != 2:
        raise ValueError(f"features must be a [batch, width] matrix, got shape {tuple(features.shape)}")
    singular = torch.linalg.svdvals(features.double())
    if float(singular.sum()) == 0.0:
        return 0
    share = singular.cumsum(0) / singular.sum()
    return int((share < 1.0 - delta).sum()) + 1


def probe_batch(n: int, size: int = 2048, seed: int = 12345) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch of random (state, goal) pairs to measure a representation on."""
    env = BitFlipEnv(n, size, device="cpu", seed=seed)
    return env.reset()


def compare_rules(network: nn.Module, n: int, num_agents: int = 1024, seed: int = 0,
                  tolerances: Sequence[float] = (1e-3, 1e-2), epsilons: Sequence[float] = (0.02, 0.05),
                  ) -> dict[str, dict]:
    """:func:`describe_trajectories` for the plain argmax, tie-breaks and small epsilons, on the same agents."""
    report = {"argmax": describe_trajectories(play_greedy(network, n, num_agents, seed))}
    for tolerance in tolerances:
        report[f"tie_break {tolerance:g}"] = describe_trajectories(
            play_greedy(network, n, num_agents, seed, rule="tie_break", tolerance=tolerance))
    for epsilon in epsilons:
        report[f"epsilon {epsilon:g}"] = describe_trajectories(
            play_greedy(network, n, num_agents, seed, rule="epsilon", epsilon=epsilon))
    return report


@torch.no_grad()
def wrong_move_margins(network: nn.Module, played: dict[str, torch.Tensor], gamma: float) -> dict[str, float | None]:
    """How clearly the network prefers a wrong flip where a failing agent made one.

    For every state of a failing agent at which the argmax moved away from the goal: the best
    wrong flip's value minus the best right flip's value, and that margin divided by the optimal
    gap ``gamma**(d - 1) - gamma**(d + 1)`` between a right and a wrong flip at that distance d
    (the gap the network should show the other way round). A ratio near 0 means near-ties; near
    1 or above, a clear mis-ranking.
    """
    states, goal, distance, actions = played["states"], played["goal"], played["distance"], played["actions"]
    failed = distance[-1] > 0
    t_index, agent_index = torch.nonzero((distance[1:] > distance[:-1]) & failed.unsqueeze(0), as_tuple=True)
    if t_index.numel() == 0:
        return {"wrong_moves": 0, "margin_mean": None, "margin_over_gap_median": None}
    state, goal_rows = states[t_index, agent_index], goal[agent_index]
    d = distance[t_index, agent_index].double()
    q = network(state, goal_rows).double()
    right = state != goal_rows
    best_right = torch.where(right, q, torch.full_like(q, -torch.inf)).max(1).values
    best_wrong = torch.where(~right, q, torch.full_like(q, -torch.inf)).max(1).values
    margin = best_wrong - best_right
    gap = gamma ** (d - 1) - gamma ** (d + 1)
    return {"wrong_moves": int(t_index.numel()), "margin_mean": float(margin.mean()),
            "margin_over_gap_median": float((margin / gap).median()),
            "distance_of_wrong_moves_mean": float(d.mean())}


def pairs_at_distance(n: int, distance: int, count: int, generator: torch.Generator,
                      must_differ: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random (state, goal) pairs exactly ``distance`` bits apart (bit ``must_differ`` among them)."""
    if not 1 <= distance <= n:
        raise ValueError(f"distance must be in [1, {n}], got {distance}")
    state = torch.randint(0, 2, (count, n), generator=generator).float()
    scores = torch.rand(count, n, generator=generator)
    if must_differ is not None:
        scores[:, must_differ] = 2.0  # always among the top `distance`
    differ = torch.zeros(count, n, dtype=torch.bool)
    differ.scatter_(1, scores.topk(distance, dim=1).indices, True)
    return state, torch.where(differ, 1.0 - state, state)


def _flips_a_differing_bit(network: nn.Module, state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """Per row: does the argmax flip one of the bits where ``state`` and ``goal`` differ?"""
    action = network(state, goal).max(1).indices
    rows = torch.arange(state.shape[0])
    return state[rows, action] != goal[rows, action]


@torch.no_grad()
def right_move_rate(network: nn.Module, n: int, distances: Sequence[int], count: int = 1024, seed: int = 0) -> dict[int, float]:
    """For random pairs exactly d bits apart: how often the argmax flips one of the d differing bits."""
    generator = torch.Generator().manual_seed(seed)
    rates = {}
    for d in distances:
        rates[int(d)] = float(_flips_a_differing_bit(network, *pairs_at_distance(n, d, count, generator)).float().mean())
    return rates


@torch.no_grad()
def right_move_rate_by_bit(network: nn.Module, n: int, distance: int = 1, count: int = 64, seed: int = 0) -> list[float]:
    """For each bit i: pairs ``distance`` apart with bit i among the differing bits; how often the
    argmax flips a differing bit. At distance 1 that is "does the network see that bit i is the one left"."""
    generator = torch.Generator().manual_seed(seed)
    rates = []
    for bit in range(n):
        pairs = pairs_at_distance(n, distance, count, generator, must_differ=bit)
        rates.append(float(_flips_a_differing_bit(network, *pairs).float().mean()))
    return rates
