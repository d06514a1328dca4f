"""A small DQN training loop whose parts can be swapped for a student's own functions.

It is the library's :func:`bitflip_lib.trainer.train` in miniature (same environment, replay
buffer, evaluation, epsilon schedule and solved rule), written so that the TD target, the
epsilon-greedy choice, the Polyak update and the HER relabelling can each be replaced. Exercises
use it to show a student's function doing real work. It returns a
:class:`~bitflip_lib.trainer.TrainResult`, so the plotting helpers accept it.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from bitflip_lib import dqn
from bitflip_lib.config import TrainConfig, make_config
from bitflip_lib.device import default_device, describe_device
from bitflip_lib.env import BitFlipEnv
from bitflip_lib.her import her_relabel
from bitflip_lib.replay import EpisodeBatch, ReplayBuffer, Transitions
from bitflip_lib.trainer import EVAL_SEED_OFFSET, TrainResult, build_network, evaluate

Relabel = Callable[[EpisodeBatch, int, "torch.Generator | None"], Transitions]


def LoopConfig(**fields) -> TrainConfig:  # noqa: N802 - reads like a class at call sites
    """A default-preset :class:`~bitflip_lib.config.TrainConfig` with some fields changed."""
    return make_config("default", **fields)


def best_success(result: TrainResult) -> float:
    """Highest evaluated success rate of a run (0.0 if it never evaluated)."""
    rates = [h["success_rate"] for h in result.history if "success_rate" in h]
    return max(rates, default=0.0)


def train_with_parts(
    config: TrainConfig,
    td_target: Callable | None = None,
    epsilon_greedy: Callable | None = None,
    polyak_update: Callable | None = None,
    relabel: Relabel | None = None,
    network: nn.Module | None = None,
) -> TrainResult:
    """Train like :func:`~bitflip_lib.trainer.train`, with any of four parts replaced.

    Args:
        config: the run's settings (``config.her`` and ``config.k`` are used unless ``relabel``
            is given; ``config.clip_targets`` only applies to the library's TD target).
        td_target: ``(reward, done, next_q, gamma) -> target`` (clipping included).
        epsilon_greedy: ``(q, epsilon, generator) -> actions``.
        polyak_update: ``(target_net, online_net, tau) -> None`` (in place).
        relabel: ``(episode, k, generator) -> Transitions``, used instead of the configured
            HER strategy.
        network: start from this network instead of a fresh one (trained in place).
    """
    config.validate()
    device = default_device(config.device)
    gamma = config.effective_gamma
    generator = torch.Generator(device=device).manual_seed(config.seed)
    eval_generator = torch.Generator(device=device).manual_seed(config.seed + EVAL_SEED_OFFSET)
    if td_target is None:
        def td_target(reward, done, next_q, gamma):  # noqa: ANN001 - the library's, with the configured clipping
            return dqn.td_target(reward, done, next_q, gamma, clip=config.clip_targets)
    epsilon_greedy = epsilon_greedy or dqn.epsilon_greedy
    polyak_update = polyak_update or dqn.polyak_update
    if relabel is None:
        def relabel(episode, k, gen):  # noqa: ANN001 - the configured library strategy
            return her_relabel(episode, config.her, k, gen)

    online = build_network(config, device) if network is None else network.to(device)
    target = copy.deepcopy(online).requires_grad_(False) if config.polyak is not None else online
    optimizer = torch.optim.Adam(online.parameters(), lr=config.lr, amsgrad=config.amsgrad)
    schedule = dqn.EpsilonSchedule(config.eps_start, config.eps_end, config.eps_decay, config.eps_schedule, config.eps_decay_steps)
    buffer = ReplayBuffer(config.n, config.buffer_capacity, device)
    env = BitFlipEnv(config.n, config.num_train_agents, config.max_steps, device=device, generator=generator)
    result = TrainResult(config=config, device=describe_device(device), network=online)
    gradient_step, streak, first_in_streak = 0, 0, 0
    start = time.perf_counter()
    for iteration in range(1, config.max_iterations + 1):
        # 1. Play one episode with every training agent.
        epsilon = schedule.value(gradient_step)
        state, goal = env.reset()
        states, actions, active = [state], [], []
        while not env.episode_over:
            with torch.no_grad():
                action = epsilon_greedy(online(state, goal), epsilon, generator)
            step = env.step(action)
            state = step.state
            states.append(state)
            actions.append(action)
            active.append(step.active)
        episode = EpisodeBatch(torch.stack(states), goal, torch.stack(actions), torch.stack(active))

        # 2. Store it with its hindsight relabellings.
        relabelled = relabel(episode, config.k, generator) if config.her != "none" else None
        parts = [episode.transitions()] + ([relabelled] if relabelled is not None and len(relabelled) else [])
        buffer.add(Transitions.cat(parts))

        # 3. Gradient steps: Q(s, g, a) towards the TD target from the target network.
        losses = []
        for _ in range(config.gradient_steps):
            batch = buffer.sample(config.batch_size, generator)
            q = online(batch.state, batch.goal).gather(1, batch.action.unsqueeze(1)).squeeze(1)
            with torch.no_grad():
                y = td_target(batch.reward, batch.done, target(batch.next_state, batch.goal), gamma)
            loss = F.mse_loss(q, y.to(q.dtype))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if config.polyak is not None:
                polyak_update(target, online, config.polyak)
            losses.append(loss.detach())
            gradient_step += 1

        # 4. Greedy evaluation on fresh agents.
        record = {"iteration": iteration, "epsilon": epsilon,
                  "loss": float(torch.stack(losses).mean()) if losses else None}
        if iteration % config.eval_every == 0 or iteration == config.max_iterations:
            record.update(evaluate(online, config.n, config.num_eval_agents, config.max_steps, eval_generator))
            streak = streak + 1 if record["success_rate"] >= config.solved_threshold else 0
            if streak == 1:
                first_in_streak = iteration
            if streak >= config.solved_window and result.solved_at is None:
                result.solved_at = first_in_streak
        record["wall_seconds"] = time.perf_counter() - start
        result.history.append(record)
        result.iterations = iteration
        if result.solved_at is not None and config.early_stop:
            result.stopped_by = "solved"
            break
        if config.max_seconds is not None and record["wall_seconds"] >= config.max_seconds:
            result.stopped_by = "max_seconds"
            break
    result.wall_seconds = time.perf_counter() - start
    return result
