"""Goal-conditioned tabular Q-learning and exact value iteration, for tiny n.

A state and a goal are n-bit strings; :func:`encode` turns bits into the integer whose bit ``i``
is bit ``i`` of the string, so flipping bit ``a`` of state ``s`` gives ``s ^ (1 << a)``. The
table ``Q[s, g, a]`` has shape ``[2^n, 2^n, n]``: one row of n action values for every
(state, goal) pair. That is ``n * 4^n`` numbers, which is why tables stop at about n = 11 and
networks take over (see :func:`table_size`).

Conventions (shared by :func:`value_iteration`, :func:`optimal_q_table` and
:func:`q_learning`): reward 1 for the step whose new state equals the goal and 0 otherwise;
reaching the goal ends the episode (no bootstrapping from there); hitting the step limit does
not (the values ignore the time limit, as DQN's do). Rows with ``s == g`` are never acted in,
so they are 0 in every table and are left out of error measures.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from bitflip_lib.dqn import EpsilonSchedule
from bitflip_lib.env import BitFlipEnv, evaluation_seed
from bitflip_lib.runtime.device import default_device
from bitflip_lib.theory import optimal_q

MAX_TABLE_ENTRIES = 2**27  # 134M float32 numbers = 512 MiB: more than a laptop should spend here


class TableSize(NamedTuple):
    """How big a goal-conditioned Q table is: ``entries = n * 4^n`` numbers of ``bytes_per_entry``."""

    n: int
    entries: int
    bytes: int

    @property
    def gigabytes(self) -> float:
        return self.bytes / 1e9


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1 (the number of bits), got {n!r}")


def _check_gamma(gamma: float) -> None:
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be a number in (0, 1], got {gamma!r}")


def table_size(n: int, dtype: torch.dtype = torch.float32) -> TableSize:
    """Entries (``2^n * 2^n * n``) and bytes of a Q table for n bits, without building it."""
    _check_n(n)
    entries = (2**n) * (2**n) * n
    bytes_per_entry = torch.empty((), dtype=dtype).element_size()
    return TableSize(n=n, entries=entries, bytes=entries * bytes_per_entry)


def check_table_size(n: int, dtype: torch.dtype = torch.float32, max_entries: int = MAX_TABLE_ENTRIES) -> TableSize:
    """Raise ValueError when a Q table for n bits would exceed ``max_entries`` numbers."""
    size = table_size(n, dtype)
    if size.entries > max_entries:
        raise ValueError(
            f"a Q table for n = {n} bits needs 2^{n} x 2^{n} x {n} = {size.entries:,} entries "
            f"({size.gigabytes:,.1f} GB as {dtype}), more than the limit of {max_entries:,}: "
            f"use a smaller n (tables fit up to about n = 11) or a Q-network instead (chapter 3)"
        )
    return size


def new_table(n: int, dtype: torch.dtype = torch.float32, device: str | torch.device | None = None) -> torch.Tensor:
    """A zero Q table of shape ``[2^n, 2^n, n]``; ValueError if it would be too big (see :func:`check_table_size`)."""
    check_table_size(n, dtype)
    return torch.zeros(2**n, 2**n, n, dtype=dtype, device=default_device(device))


def encode(bits: torch.Tensor) -> torch.Tensor:
    """Bit strings ``[..., n]`` (zeros and ones) to integers ``[...]`` (int64); bit i has weight 2^i."""
    if not isinstance(bits, torch.Tensor) or bits.dim() < 1:
        raise ValueError("bits must be a torch tensor of shape [..., n]")
    n = bits.shape[-1]
    if n > 62:
        raise ValueError(f"cannot encode {n} bits into an int64: tables only make sense for tiny n")
    weights = 2 ** torch.arange(n, device=bits.device, dtype=torch.int64)
    return (bits.to(torch.int64) * weights).sum(-1)


def decode(codes: torch.Tensor | int, n: int) -> torch.Tensor:
    """Integers ``[...]`` to float32 bit strings ``[..., n]``, the inverse of :func:`encode`."""
    _check_n(n)
    codes = torch.as_tensor(codes, dtype=torch.int64)
    if bool(((codes < 0) | (codes >= 2**n)).any()):
        raise ValueError(f"codes must lie in [0, 2^{n} - 1]")
    shifts = torch.arange(n, device=codes.device, dtype=torch.int64)
    return ((codes.unsqueeze(-1) >> shifts) & 1).to(torch.float32)


def next_states(n: int, device: str | torch.device | None = None) -> torch.Tensor:
    """``[2^n, n]`` int64 table: entry ``[s, a]`` is ``s`` with bit ``a`` flipped."""
    _check_n(n)
    device = default_device(device)
    states = torch.arange(2**n, device=device, dtype=torch.int64)
    masks = 2 ** torch.arange(n, device=device, dtype=torch.int64)
    return states[:, None] ^ masks[None, :]


def distance_table(n: int, device: str | torch.device | None = None) -> torch.Tensor:
    """``[2^n, 2^n]`` int64 table of Hamming distances between state ``s`` and goal ``g``."""
    bits = decode(torch.arange(2**n, device=default_device(device)), n)
    return (bits[:, None, :] != bits[None, :, :]).sum(-1)


def optimal_q_table(n: int, gamma: float, dtype: torch.dtype = torch.float64, device: str | torch.device | None = None) -> torch.Tensor:
    """The closed-form Q* as a table ``[2^n, 2^n, n]`` (rows with ``s == g`` are 0)."""
    _check_gamma(gamma)
    check_table_size(n, dtype)
    device = default_device(device)
    bits = decode(torch.arange(2**n, device=device), n)
    differs = bits[:, None, :] != bits[None, :, :]  # [s, g, a]: does bit a of s differ from the goal?
    distance = differs.sum(-1, keepdim=True).expand_as(differs)
    q = optimal_q(distance.clamp(min=1).to(dtype), differs, gamma)
    return torch.where(distance > 0, q, torch.zeros_like(q)).to(dtype)


def value_iteration(
    n: int,
    gamma: float,
    tol: float = 1e-12,
    max_iterations: int = 10_000,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, int]:
    """Exact Q* by repeated Bellman optimality backups, for every (state, goal, action) at once.

    ``Q(s, g, a) <- r + gamma * (1 - r) * max_a' Q(s', g, a')`` with ``s' = s ^ (1 << a)`` and
    ``r = [s' == g]``, starting from zeros, until the largest change is at most ``tol``.

    Returns ``(Q, iterations)``: the table ``[2^n, 2^n, n]`` and the number of sweeps made.
    The environment is deterministic and every value is reached after at most n + 1 sweeps,
    so with the default ``tol`` this stops right after the values stop changing.
    """
    _check_n(n)
    _check_gamma(gamma)
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
        raise ValueError(f"max_iterations must be an integer >= 1, got {max_iterations!r}")
    check_table_size(n, dtype)
    device = default_device(device)
    size = 2**n
    nxt = next_states(n, device)  # [s, a]
    goals = torch.arange(size, device=device)
    reward = (nxt[:, None, :] == goals[None, :, None]).to(dtype)  # [s, g, a]
    at_goal = (torch.arange(size, device=device)[:, None] == goals[None, :])  # [s, g]
    q = torch.zeros(size, size, n, dtype=dtype, device=device)
    for iteration in range(1, max_iterations + 1):
        v = q.amax(dim=2)  # [s, g]
        v_next = v[nxt].permute(0, 2, 1)  # v[s', g] arranged as [s, g, a]
        new_q = reward + gamma * (1.0 - reward) * v_next
        new_q[at_goal] = 0.0  # no action is taken once the goal is reached
        change = (new_q - q).abs().max().item()
        q = new_q
        if change <= tol:
            return q, iteration
    raise RuntimeError(f"value iteration did not converge to tol={tol} within {max_iterations} sweeps")


def q_learning_update(
    q: torch.Tensor,
    s: torch.Tensor,
    g: torch.Tensor,
    a: torch.Tensor,
    r: torch.Tensor,
    s2: torch.Tensor,
    done: torch.Tensor,
    alpha: float,
    gamma: float,
) -> torch.Tensor:
    """One batched tabular Q-learning step, in place on ``q``; returns the TD errors ``[B]``.

    For each transition ``(s, g, a, r, s2, done)``::

        target = r + gamma * (1 - done) * max_a' Q[s2, g, a']
        Q[s, g, a] += alpha * (target - Q[s, g, a])

    All targets are computed from the table before the step. If the same ``(s, g, a)`` appears
    several times in the batch, that entry moves once, by ``alpha`` times the mean of its TD
    errors (with no repeats this is exactly the textbook update above).

    Args:
        q: the table ``[2^n, 2^n, n]`` (float).
        s, g, a, s2: int64 ``[B]`` state codes, goal codes, actions (bit indices), next-state codes.
        r: float ``[B]`` rewards. done: bool ``[B]``, True where ``s2`` is the goal (terminal).
        alpha: learning rate in (0, 1]. gamma: discount in (0, 1].
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    _check_gamma(gamma)
    if q.dim() != 3 or q.shape[0] != q.shape[1]:
        raise ValueError(f"q must be a table of shape [2^n, 2^n, n], got {tuple(q.shape)}")
    batch = s.shape[0]
    for name, t in (("g", g), ("a", a), ("r", r), ("s2", s2), ("done", done)):
        if t.shape != (batch,):
            raise ValueError(f"{name} must have shape [{batch}] like s, got {tuple(t.shape)}")
    n = q.shape[2]
    with torch.no_grad():
        target = r.to(q.dtype) + gamma * (~done.bool()).to(q.dtype) * q[s2, g].amax(dim=1)
        td_error = target - q[s, g, a]
        flat = (s * q.shape[1] + g) * n + a
        _, inverse, counts = torch.unique(flat, return_inverse=True, return_counts=True)
        q.view(-1).index_add_(0, flat, alpha * td_error / counts[inverse].to(q.dtype))
    return td_error


def greedy_actions(q: torch.Tensor, s: torch.Tensor, g: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Greedy actions from the table for codes ``s``, ``g`` ``[B]``; ties broken uniformly at random.

    Breaking ties at random matters for a fresh all-zero table: ``argmax`` alone would always
    flip bit 0.
    """
    values = q[s, g]  # [B, n]
    best = values == values.amax(dim=1, keepdim=True)
    noise = torch.rand(values.shape, generator=generator, device=values.device)
    return torch.where(best, noise, torch.full_like(noise, -1.0)).argmax(dim=1)


@torch.no_grad()
def greedy_policy_success(
    q: torch.Tensor,
    n: int | None = None,
    num_agents: int = 1024,
    max_steps: int | None = None,
    seed: int = 0,
) -> float:
    """Success rate of the greedy policy of table ``q`` on ``num_agents`` random (start, goal) pairs.

    Each agent flips ``argmax_a Q[s, g, a]`` (ties broken at random) for at most ``max_steps``
    (default n) steps, in a fresh :class:`~bitflip_lib.env.BitFlipEnv` seeded with ``seed``.
    """
    if q.dim() != 3:
        raise ValueError(f"q must be a table of shape [2^n, 2^n, n], got {tuple(q.shape)}")
    n = q.shape[2] if n is None else n
    if q.shape != (2**n, 2**n, n):
        raise ValueError(f"q must have shape [2^{n}, 2^{n}, {n}], got {tuple(q.shape)}")
    env = BitFlipEnv(n, num_agents, max_steps, device=q.device, seed=seed)
    state, goal = env.reset()
    g = encode(goal)
    while not env.episode_over:
        action = greedy_actions(q, encode(state), g, env.generator)
        state = env.step(action).state
    return float(env.done.float().mean())


def q_error(q: torch.Tensor, q_star: torch.Tensor) -> tuple[float, float]:
    """``(max, mean)`` of ``|Q - Q*|`` over the entries with ``s != g`` (the ones ever acted in)."""
    if q.shape != q_star.shape:
        raise ValueError(f"tables differ in shape: {tuple(q.shape)} vs {tuple(q_star.shape)}")
    size = q.shape[0]
    off_goal = ~torch.eye(size, dtype=torch.bool, device=q.device)
    err = (q.to(torch.float64) - q_star.to(q.device, torch.float64)).abs()[off_goal]
    return float(err.max()), float(err.mean())


@dataclass
class TabularResult:
    """What :func:`q_learning` returns.

    q: the learned table. q_star: the exact optimal table it was compared with.
    history: one dict per evaluation: ``iteration`` (batches of episodes played), ``episodes``,
    ``transitions`` (updates made so far), ``epsilon``, ``max_error`` and ``mean_error``
    (of ``|Q - Q*|`` over entries with s != g), ``success_rate`` (greedy policy, 1024 agents).
    """

    q: torch.Tensor
    q_star: torch.Tensor
    history: list[dict] = field(default_factory=list)

    def curve(self, key: str) -> tuple[list[int], list[float]]:
        """``(iterations, values)`` of one history key, ready to plot."""
        if self.history and key not in self.history[0]:
            raise KeyError(f"unknown history key {key!r}: choose from {sorted(self.history[0])}")
        return [h["iteration"] for h in self.history], [h[key] for h in self.history]

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


def q_learning(
    n: int,
    iterations: int = 500,
    alpha: float = 0.5,
    gamma: float = 0.9,
    epsilon: float | EpsilonSchedule = 1.0,
    num_agents: int = 16,
    max_steps: int | None = None,
    seed: int = 0,
    eval_every: int = 10,
    eval_agents: int = 1024,
    device: str | torch.device | None = None,
    callback: Callable[[dict, torch.Tensor], bool | None] | None = None,
) -> TabularResult:
    """Goal-conditioned tabular Q-learning with epsilon-greedy exploration.

    Each iteration, ``num_agents`` agents play one episode in parallel in a
    :class:`~bitflip_lib.env.BitFlipEnv` (random start and goal, at most ``max_steps`` = n
    flips), acting epsilon-greedily on the table; after every step of the batch, their
    transitions update the table with :func:`q_learning_update`. Every ``eval_every`` iterations
    (and before the first and after the last) the table is compared with the exact Q* from
    :func:`value_iteration` and its greedy policy is evaluated.

    Args:
        epsilon: a constant exploration rate, or an :class:`~bitflip_lib.dqn.EpsilonSchedule`
            evaluated at the iteration number.
        callback: called after every evaluation with its history record and the table (for live
            plots, e.g. :class:`~bitflip_lib.ui.dashboards.TabularDashboard`); returning True stops.
        Other arguments as in :func:`q_learning_update` and :class:`~bitflip_lib.env.BitFlipEnv`.

    Q-learning is off-policy, so even epsilon = 1 (purely random behaviour) learns Q*, as long
    as every (state, goal, action) keeps being tried.
    """
    _check_n(n)
    _check_gamma(gamma)
    for name, value, low in (("iterations", iterations, 0), ("num_agents", num_agents, 1), ("eval_every", eval_every, 1), ("eval_agents", eval_agents, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    schedule = epsilon if isinstance(epsilon, EpsilonSchedule) else EpsilonSchedule(start=float(epsilon), kind="constant")
    if not isinstance(epsilon, EpsilonSchedule) and not 0.0 <= float(epsilon) <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1] or an EpsilonSchedule, got {epsilon!r}")

    device = default_device(device)
    q = new_table(n, torch.float64, device)
    q_star, _ = value_iteration(n, gamma, device=device)
    env = BitFlipEnv(n, num_agents, max_steps, device=device, seed=seed)
    rng = env.generator
    result = TabularResult(q=q, q_star=q_star)
    transitions = 0

    def record(iteration: int, eps: float) -> bool:
        max_err, mean_err = q_error(q, q_star)
        result.history.append({
            "iteration": iteration,
            "episodes": iteration * num_agents,
            "transitions": transitions,
            "epsilon": eps,
            "max_error": max_err,
            "mean_error": mean_err,
            "success_rate": greedy_policy_success(q, n, eval_agents, max_steps, seed=evaluation_seed(seed)),
        })
        return bool(callback(result.history[-1], q)) if callback is not None else False

    record(0, schedule.value(0))
    for iteration in range(1, iterations + 1):
        eps = schedule.value(iteration - 1)
        state, goal = env.reset()
        g = encode(goal)
        while not env.episode_over:
            s = encode(state)
            greedy = greedy_actions(q, s, g, rng)
            explore = torch.rand(num_agents, generator=rng, device=device) < eps
            random_action = torch.randint(0, n, (num_agents,), generator=rng, device=device)
            action = torch.where(explore, random_action, greedy)
            step = env.step(action)
            active = step.active  # agents done before this step did not act
            q_learning_update(
                q, s[active], g[active], action[active], step.reward[active],
                encode(step.state[active]), step.done[active], alpha, gamma,
            )
            transitions += int(active.sum())
            state = step.state
        if (iteration % eval_every == 0 or iteration == iterations) and record(iteration, eps):
            break
    return result


__all__ = [
    "MAX_TABLE_ENTRIES",
    "TableSize",
    "TabularResult",
    "check_table_size",
    "decode",
    "distance_table",
    "encode",
    "greedy_actions",
    "greedy_policy_success",
    "new_table",
    "next_states",
    "optimal_q_table",
    "q_error",
    "q_learning",
    "q_learning_update",
    "table_size",
    "value_iteration",
]
