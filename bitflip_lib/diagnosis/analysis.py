"""Analysis helpers for the chapters on stabilisation (5) and inductive bias (6).

* :func:`run_ablation`: train several variants of one configuration on the same seeds.
* :func:`metric_matrix`, :func:`max_metric`: read curves back out of a list of results.
* :func:`rewarded_fraction`: how much of what goes into the replay buffer carries a reward,
  with and without hindsight relabelling.
(The probes of a :class:`~bitflip_lib.networks.HAR`'s ``phi`` live beside the network, in
:mod:`bitflip_lib.networks`.)
* :func:`optimal_q_gap`, :func:`quotient_size`: the numbers behind chapter 6's arguments.
* :func:`transfer_success`: one trained network evaluated unchanged at other sizes n.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch

from bitflip_lib.config import TrainConfig
from bitflip_lib.dqn import epsilon_greedy
from bitflip_lib.env import BitFlipEnv
from bitflip_lib.her import HER_STRATEGIES, her_relabel
from bitflip_lib.trainer import TrainResult, evaluate, play_episode, train

__all__ = [
    "max_metric", "metric_matrix", "optimal_q_gap", "quotient_size", "rewarded_fraction",
    "run_ablation", "transfer_success",
]


def run_ablation(
    base: TrainConfig,
    variants: Mapping[str, Mapping],
    seeds: Sequence[int] = (0,),
    progress: bool = False,
    verbose: bool = True,
) -> dict[str, list[TrainResult]]:
    """Train every variant of ``base`` on every seed: ``{variant name: [result per seed]}``.

    Args:
        base: the configuration shared by all variants.
        variants: ``{name: {field: value}}``, the fields each variant changes in ``base``
            (an empty dict is ``base`` itself).
        seeds: the same seeds are used for every variant, so differences come from the settings.
        progress: show a progress bar per run.
        verbose: print one line per finished run.
    """
    if not variants:
        raise ValueError("variants is empty: pass at least one {name: overrides} entry")
    if not seeds:
        raise ValueError("seeds is empty: pass at least one seed, e.g. seeds=(0,)")
    results: dict[str, list[TrainResult]] = {}
    for name, overrides in variants.items():
        results[name] = []
        for seed in seeds:
            result = train(base.replace(seed=seed, **dict(overrides)), progress=progress)
            results[name].append(result)
            if verbose:
                final = result.final.get("success_rate")
                shown = "n/a" if final is None else f"{final:.3f}"
                print(f"{name:>28s}  seed {seed}: {result.iterations:4d} iterations, "
                      f"solved at {result.solved_at}, final success {shown}, {result.wall_seconds:.1f} s")
    return results


def metric_matrix(results: Sequence[TrainResult], key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(iterations [T], values [runs, T])`` of one metric across runs, on their common iterations.

    Runs that stopped early are cut to the shortest one; iterations where a run has no value
    (e.g. no evaluation) are NaN.
    """
    if not results:
        raise ValueError("results is empty")
    length = min(len(r.history) for r in results)
    iterations = torch.tensor([h["iteration"] for h in results[0].history[:length]])
    values = torch.full((len(results), length), float("nan"), dtype=torch.float64)
    for row, result in enumerate(results):
        for col, record in enumerate(result.history[:length]):
            value = record.get(key)
            if value is not None:
                values[row, col] = float(value)
    return iterations, values


def max_metric(results: TrainResult | Iterable[TrainResult], key: str) -> float:
    """The largest value a metric took in any iteration of any of the runs (NaN if never recorded), e.g.
    the peak ``mean_q``. (A run's best greedy success has its one rule: :func:`bitflip_lib.lab.runs.best_success`.)"""
    runs = [results] if isinstance(results, TrainResult) else list(results)
    values = [float(h[key]) for r in runs for h in r.history if h.get(key) is not None]
    return max(values) if values else float("nan")


@torch.no_grad()
def rewarded_fraction(
    n: int,
    her: str = "future",
    k: int = 4,
    episodes: int = 20,
    num_agents: int = 16,
    epsilon: float = 1.0,
    network: torch.nn.Module | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Fraction of stored transitions that carry reward 1, as the trainer would store them.

    Plays ``episodes`` batches of ``num_agents`` episodes, with uniformly random actions
    (``epsilon = 1``, the start of training) or epsilon-greedy on ``network``, relabels them
    with the HER strategy ``her`` and counts rewards.

    Returns ``played`` (fraction among the transitions actually played), ``relabelled``
    (among the relabelled copies; NaN for ``none``) and ``stored`` (among everything stored).
    """
    if her not in HER_STRATEGIES:
        raise ValueError(f"unknown HER strategy {her!r}: choose one of {', '.join(HER_STRATEGIES)}")
    if network is None and epsilon < 1.0:
        raise ValueError("epsilon < 1 needs a network to act greedily with; pass network=... or epsilon=1.0")
    generator = torch.Generator().manual_seed(seed)
    env = BitFlipEnv(n, num_agents, generator=generator)
    counts = {"played": [0, 0], "relabelled": [0, 0]}
    @torch.no_grad()
    def act(state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        if network is None:
            return torch.randint(0, n, (num_agents,), generator=generator)
        return epsilon_greedy(network(state, goal), epsilon, generator)

    for _ in range(episodes):
        episode = play_episode(env, act)
        played = episode.transitions()
        relabelled = her_relabel(episode, her, k, generator)
        counts["played"][0] += int(played.reward.sum())
        counts["played"][1] += played.reward.numel()
        counts["relabelled"][0] += int(relabelled.reward.sum())
        counts["relabelled"][1] += relabelled.reward.numel()
    rewards = counts["played"][0] + counts["relabelled"][0]
    total = counts["played"][1] + counts["relabelled"][1]
    fraction = {name: (r / t if t else float("nan")) for name, (r, t) in counts.items()}
    return {**fraction, "stored": rewards / total if total else float("nan")}


def optimal_q_gap(distance: int | float | torch.Tensor, gamma: float) -> torch.Tensor:
    """``Q*(good flip) - Q*(bad flip) = gamma^(d-1) - gamma^(d+1) = gamma^(d-1) (1 - gamma^2)``
    at Hamming distance d >= 1, with reward 1 on reaching the goal and 0 otherwise."""
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    d = torch.as_tensor(distance, dtype=torch.float64)
    if bool((d < 1).any()):
        raise ValueError("distance must be >= 1 (at distance 0 the episode is over)")
    return gamma ** (d - 1) * (1.0 - gamma**2)


def quotient_size(n: int) -> dict[str, int]:
    """How many Q-values a table needs for n bits, against how many distinct ones the symmetry leaves.

    ``table``: 2^n states x 2^n goals x n actions (an exact Python integer: use ``math.log10``
    to print it, it overflows floats from n = 508 on).
    ``quotient``: distinct (distance, bit differs) pairs with the goal not yet reached:
    a differing bit needs 1 <= d <= n, a matching bit 1 <= d <= n - 1, so 2n - 1 pairs.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    return {"table": n * 4**n, "quotient": 2 * n - 1}


def transfer_success(
    network: torch.nn.Module,
    sizes: Iterable[int],
    num_agents: int = 1024,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> dict[int, dict[str, float]]:
    """Evaluate one network, unchanged, at several numbers of bits: ``{n: evaluate(...)}``.

    Only size-agnostic networks (HAR) accept other n; others raise a ValueError from the network.
    """
    if device is None:
        device = next(network.parameters()).device
    return {int(n): evaluate(network, int(n), num_agents, seed=seed, device=device) for n in sizes}
