"""Training and evaluation: the whole algorithm reads top to bottom in :func:`train`.

One *iteration* = ``num_train_agents`` (16) agents play one episode in parallel with an
epsilon-greedy policy; its transitions (and their HER relabellings) go into the replay buffer;
then ``gradient_steps`` DQN updates; then a greedy evaluation on ``num_eval_agents`` (1024)
fresh agents. The task counts as *solved* once the evaluated success rate stays at or above
``solved_threshold`` for ``solved_window`` evaluations in a row; ``solved_at`` is the iteration
at which that run of evaluations began, ``confirmed_at`` the one that completed it.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from bitflip_lib._version import __version__
from bitflip_lib.config import TrainConfig, make_config
from bitflip_lib.dqn import EpsilonSchedule, epsilon_greedy
from bitflip_lib.env import BitFlipEnv, distance_change, evaluation_seed, flip_bits_
from bitflip_lib.her import K_STRATEGIES
from bitflip_lib.networks import HIDDEN_LAYER_ARCHITECTURES, make_network
from bitflip_lib.replay import EpisodeBatch, newest
from bitflip_lib.runtime.budget import MemoryEstimate, check_memory, training_memory
from bitflip_lib.runtime.device import default_device, describe_device
from bitflip_lib.runtime.memory import trim_after_evaluation
from bitflip_lib.runtime.switches import progress_bars_enabled

__all__ = [
    "best_success", "build_network", "Callback", "evaluate", "memory_estimate", "play_episode", "train",
    "TrainingDiverged", "TrainingRun", "TrainResult",
]

Callback = Callable[[dict], "bool | None"]


@torch.no_grad()
def evaluate(
    network: nn.Module,
    n: int,
    num_agents: int = 1024,
    max_steps: int | None = None,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Greedy success of ``network`` on ``num_agents`` fresh random (start, goal) pairs.

    Agents that reach their goal stop. Agents that can no longer make it (distance larger than
    the steps left) stop too and count as failures, which saves most of the work when a policy
    is poor; their final distance is the one they had when stopped.

    Returns ``success_rate``, ``mean_distance`` (final Hamming distance, all agents),
    ``mean_steps`` (steps taken by the agents that succeeded, 0 if none) and
    ``mean_start_distance``.
    """
    device = default_device(device) if generator is None else generator.device
    env = BitFlipEnv(n, num_agents, max_steps, device=device, seed=seed, generator=generator)
    state, goal = env.reset()
    start_distance = env.distance.clone()
    final_distance = start_distance.clone()
    steps_taken = torch.zeros(num_agents, dtype=torch.long, device=device)
    running = torch.arange(num_agents, device=device)  # indices of agents still playing
    distance = start_distance.clone()
    was_training = network.training
    network.eval()
    # Goals stay fixed for the whole episode: a network that can precompute its goal side (UVFA)
    # does so once here instead of once per step.
    projected = network.project_goal(goal) if hasattr(network, "project_goal") else None
    for t in range(env.max_steps):
        alive = (distance > 0) & (distance <= env.max_steps - t)
        if not bool(alive.all()):
            final_distance[running] = distance
            running, state, goal, distance = running[alive], state[alive], goal[alive], distance[alive]
            projected = projected[alive] if projected is not None else None
            if running.numel() == 0:
                break
        q = network(state, goal) if projected is None else network.q_with_projected_goal(state, projected)
        action = q.max(1).indices
        distance = distance + distance_change(state, goal, action)
        flip_bits_(state, action)  # in place: evaluation owns these tensors
        steps_taken[running] += 1
    final_distance[running] = distance
    network.train(was_training)
    trim_after_evaluation(device)  # the shrinking batches above fragment glibc's heap: see bitflip_lib.runtime.memory
    success = final_distance == 0
    solved = int(success.sum())
    return {
        "success_rate": solved / num_agents,
        "mean_distance": float(final_distance.float().mean()),
        "mean_steps": float(steps_taken[success].float().mean()) if solved else 0.0,
        "mean_start_distance": float(start_distance.float().mean()),
    }


@runtime_checkable
class TrainingRun(Protocol):
    """A finished training run, just trained (:class:`TrainResult`) or read from disk
    (:class:`~bitflip_lib.lab.runs.StoredRun`): what plots, tables and checks may read of either.

    Its settings are :meth:`settings` (a dict, as :meth:`TrainConfig.to_dict` gives them) or
    :meth:`train_config`; its summary is :meth:`summary` (what ``bitflip train`` prints). The
    ``config`` attribute is each type's own: the :class:`TrainConfig` of a result, the stored dict
    of a stored run.
    """

    @property
    def solved_at(self) -> int | None:
        """The first iteration of the first streak of evaluations that solved the task (None: never)."""

    @property
    def confirmed_at(self) -> int | None:
        """The iteration at which that streak was complete (None: never solved)."""

    @property
    def solved(self) -> bool: ...

    @property
    def iterations(self) -> int:
        """How many iterations the run trained for."""

    @property
    def best_success(self) -> float | None:
        """The best greedy success of any evaluation (None: no evaluation)."""

    @property
    def success_rate(self) -> float | None:
        """The greedy success of the last evaluation."""

    @property
    def mean_distance(self) -> float | None:
        """How far, in bits, the greedy agents ended from their goals at the last evaluation."""

    @property
    def metrics(self) -> frozenset[str]:
        """The metrics :meth:`curve` can return."""

    def curve(self, key: str) -> tuple[list[int], list[float]]:
        """``(iterations, values)`` of one metric."""

    def summary(self) -> dict[str, Any]:
        """The flat, JSON-ready summary (n, arch, her, seed, iterations, solved_at, final success...)."""

    def settings(self) -> dict[str, Any]:
        """Every setting of the run by field name."""

    def train_config(self, **changes: Any) -> TrainConfig:
        """The run's :class:`TrainConfig`, with ``changes`` applied."""


def best_success(run: TrainingRun | Iterable[float | None]) -> float | None:
    """The best greedy success among evaluations (``None`` if there was none): the one rule.

    ``run`` is a finished :class:`TrainingRun` (its ``best_success``) or the success values
    themselves (``None`` where an iteration was not evaluated).
    """
    if isinstance(run, TrainingRun):
        return run.best_success
    evaluated = [float(v) for v in run if v is not None]
    return max(evaluated) if evaluated else None


@dataclass
class TrainResult:
    """What :func:`train` returns: the configuration, per-iteration history and the trained network."""

    config: TrainConfig
    history: list[dict] = field(default_factory=list)
    solved_at: int | None = None
    """The first iteration of the first streak of ``solved_window`` evaluations at or above the threshold."""
    confirmed_at: int | None = None
    """The iteration at which that streak was complete, when the task was declared solved (and an
    early-stopping run stopped): ``solved_at + solved_window - 1`` when every iteration is
    evaluated. The write-up's "early stopping at episode N" is this moment (N counts from 0)."""
    iterations: int = 0
    wall_seconds: float = 0.0
    device: str = "cpu"
    network: nn.Module | None = None
    target_network: nn.Module | None = None
    """The Polyak-averaged target network at the end (``None`` when the run had none)."""
    stopped_by: str = "max_iterations"

    @property
    def solved(self) -> bool:
        return self.solved_at is not None

    @property
    def final(self) -> dict:
        """The last evaluation record (empty before any evaluation)."""
        evaluated = [h for h in self.history if "success_rate" in h]
        return evaluated[-1] if evaluated else {}

    @property
    def best_success(self) -> float | None:
        """The best greedy success of any evaluation (``None`` before any)."""
        return best_success(h.get("success_rate") for h in self.history)

    @property
    def success_rate(self) -> float | None:
        """The greedy success of the last evaluation."""
        return self.final.get("success_rate")

    @property
    def mean_distance(self) -> float | None:
        """How far, in bits, the greedy agents ended from their goals at the last evaluation."""
        return self.final.get("mean_distance")

    @property
    def metrics(self) -> frozenset[str]:
        """The metrics recorded in :attr:`history` (what :meth:`curve` can return)."""
        return frozenset(key for record in self.history for key in record) - {"iteration"}

    def curve(self, key: str) -> tuple[list[int], list[float]]:
        """``(iterations, values)`` of one metric, e.g. ``result.curve('success_rate')``."""
        points = [(h["iteration"], h[key]) for h in self.history if h.get(key) is not None]
        return [p[0] for p in points], [p[1] for p in points]

    def settings(self) -> dict[str, Any]:
        """Every setting of the run by field name (``config.to_dict()``)."""
        return self.config.to_dict()

    def train_config(self, **changes: Any) -> TrainConfig:
        """The run's configuration, with ``changes`` applied (checked again)."""
        return self.config.replace(**changes) if changes else self.config

    def summary(self) -> dict:
        """A flat, JSON-ready summary (what the command line prints)."""
        c = self.config
        final = self.final
        return {
            "n": c.n,
            "arch": c.arch,
            "her": c.her,
            "k": c.k,
            "seed": c.seed,
            "preset": c.preset,
            "iterations": self.iterations,
            "solved_at": self.solved_at,
            "confirmed_at": self.confirmed_at,
            "success_rate": final.get("success_rate"),
            "mean_distance": final.get("mean_distance"),
            "wall_seconds": round(self.wall_seconds, 3),
            "device": self.device,
            "stopped_by": self.stopped_by,
            "version": __version__,
        }

    def to_dict(self) -> dict:
        """Summary, full configuration and history, for saving as JSON."""
        return {**self.summary(), "config": self.config.to_dict(), "history": self.history}

    def assert_solved(self, within: int | None = None) -> None:
        """Fail loudly unless training solved the task (within ``within`` iterations, if given)."""
        s = self.summary()
        if not self.solved:
            raise AssertionError(f"not solved: n={s['n']} {s['arch']} her={s['her']} reached success {s['success_rate']} "
                                 f"after {s['iterations']} iterations")
        if within is not None and self.solved_at > within:
            raise AssertionError(f"solved at iteration {self.solved_at}, later than the expected {within}")

    def assert_not_solved(self) -> None:
        """Fail loudly if training solved the task (for claims that a method fails)."""
        if self.solved:
            raise AssertionError(f"expected a failure, but n={self.config.n} {self.config.arch} her={self.config.her} "
                                 f"was solved at iteration {self.solved_at}")


def _mean(values: list[torch.Tensor]) -> float | None:
    return float(torch.stack(values).mean()) if values else None


class TrainingDiverged(FloatingPointError):
    """A run stopped because its loss was no longer a finite number: nothing it learns after that
    means anything. The message names the step and the setting most likely to blame."""


def _divergence(config: TrainConfig, losses: list[torch.Tensor], iteration: int, gradient_step: int) -> TrainingDiverged:
    """The error for an iteration whose losses include a non-finite one (``gradient_step``: the steps done)."""
    values = torch.stack(losses)
    first = int((~torch.isfinite(values)).nonzero()[0])
    preset = make_config(config.preset, n=config.n)
    advice = f"lower lr={config.lr:g}" + (f" (the preset's is {preset.lr:g})" if config.lr > preset.lr else "")
    if not config.clip_targets or config.polyak is None:
        advice += ", or train with target clipping and a target network (chapter 5)"
    return TrainingDiverged(f"the TD loss became {float(values[first])} at iteration {iteration} (gradient step "
                            f"{gradient_step - len(losses) + first + 1}): training diverged; {advice}")


def play_episode(env: BitFlipEnv, act: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> EpisodeBatch:
    """Play one episode of every agent in ``env`` with ``act(state, goal) -> actions`` (bits kept as uint8)."""
    state, goal = env.reset()
    states, actions, active = [state.to(torch.uint8)], [], []
    while not env.episode_over:
        action = act(state, goal)
        step = env.step(action)
        state = step.state
        states.append(state.to(torch.uint8))
        actions.append(action)
        active.append(step.active)
    return EpisodeBatch(torch.stack(states), goal.to(torch.uint8), torch.stack(actions), torch.stack(active))


def _network_options(config: TrainConfig) -> dict:
    kwargs: dict = {}
    if config.arch == "har":
        kwargs["normalize_distance"] = config.har_normalize_distance
    if config.arch in HIDDEN_LAYER_ARCHITECTURES:
        kwargs["activation"] = config.activation
        if config.hidden is not None:
            kwargs["hidden"] = tuple(config.hidden)
    return kwargs


def build_network(config: TrainConfig, device: torch.device) -> nn.Module:
    """The configured Q-network, initialised from ``config.seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        network = make_network(config.arch, config.n, **_network_options(config))
    return network.to(device)


def memory_estimate(config: TrainConfig, evaluate_at: Sequence[int] = ()) -> MemoryEstimate:
    """The memory a run of ``config`` holds at its peak, from its settings alone (nothing is built:
    the network is made on the meta device); ``evaluate_at``: other numbers of bits the trained
    network is evaluated at afterwards. See :mod:`bitflip_lib.runtime.budget`."""
    with torch.device("meta"), torch.random.fork_rng(devices=[]):
        network = make_network(config.arch, config.n, **_network_options(config))
    settings = {"n": config.n, "buffer_capacity": config.buffer_capacity, "num_train_agents": config.num_train_agents,
                "batch_size": config.batch_size, "num_eval_agents": config.num_eval_agents}
    if config.her in K_STRATEGIES:
        settings["k"] = config.k
    if config.hidden is not None and config.arch in HIDDEN_LAYER_ARCHITECTURES:
        settings["hidden"] = tuple(config.hidden)
    copies = config.k if config.her in K_STRATEGIES else 0 if config.her == "none" else 1
    return training_memory(n=config.n, steps=config.max_steps or config.n, agents=config.num_train_agents,
                           relabel_copies=copies, capacity=config.buffer_capacity, batch_size=config.batch_size,
                           eval_agents=config.num_eval_agents, network=network, target_network=config.polyak is not None,
                           evaluate_at=evaluate_at, settings=settings)


def train(
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    network: nn.Module | None = None,
) -> TrainResult:
    """Train a goal-conditioned DQN on n-bit flipping as ``config`` says.

    Args:
        config: the run's settings (see :class:`~bitflip_lib.config.TrainConfig`), checked when
            it was made.
        callbacks: called after every iteration with that iteration's record (a dict); a
            callback that returns True stops training (the dashboards' Stop button does this).
        progress: show a progress bar (terminal or notebook).
        network: start from this network instead of a fresh one (it is trained in place).

    Raises :class:`~bitflip_lib.runtime.budget.NotEnoughMemory` (a ``ValueError``) before anything
    is built if the run needs more memory than is available (:func:`memory_estimate`), and
    :class:`TrainingDiverged` as soon as the TD loss is not a finite number.

    The learner is ``config.learner_class`` (:class:`~bitflip_lib.dqn.DQNLearner` unless a study's
    settings name another); everything else is this function.
    """
    device = default_device(config.device)
    check_memory(memory_estimate(config), device)  # a run past the machine is refused before anything is built
    n = config.n
    generator = torch.Generator(device=device).manual_seed(config.seed)
    eval_generator = torch.Generator(device=device).manual_seed(evaluation_seed(config.seed))

    network = build_network(config, device) if network is None else network.to(device)
    learner = config.learner_class.from_config(network, config)
    lr_schedule = None
    if config.lr_end is not None:  # a cosine from lr to lr_end over the whole budget, stepped per iteration
        lr_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(learner.optimizer, config.max_iterations, config.lr_end)
    schedule = EpsilonSchedule(config.eps_start, config.eps_end, config.eps_decay, config.eps_schedule, config.eps_decay_steps)
    buffer = learner.replay_buffer(n, config.buffer_capacity, device)
    env = BitFlipEnv(n, config.num_train_agents, config.max_steps, device=device, generator=generator)
    replace = not config.batch_without_replacement

    result = TrainResult(config=config, device=describe_device(device), network=network, target_network=learner.target)
    bar = None
    if progress and progress_bars_enabled():
        from tqdm.auto import tqdm

        bar = tqdm(total=config.max_iterations, desc=f"n={n} {config.arch} her={config.her}", leave=False)
    gradient_step, streak, rewards_seen = 0, 0, 0
    start = time.perf_counter()
    for iteration in range(1, config.max_iterations + 1):
        # 1. Play one epsilon-greedy episode with every training agent.
        epsilon = schedule.value(gradient_step)

        @torch.no_grad()
        def act(state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
            return epsilon_greedy(network(state, goal), epsilon, generator)

        episode = play_episode(env, act)

        # 2. Store what happened, plus hindsight relabellings: views of the episode, copied out only
        #    as far as the buffer keeps them (its newest buffer_capacity transitions).
        played, relabelled = learner.experience(episode, config.her, config.k, generator)
        buffer.add(newest([played, relabelled], config.buffer_capacity))
        rewards_seen += int(played.reward.sum())

        # 3. Learn.
        losses, qs, targets = [], [], []
        for _ in range(config.gradient_steps):
            batch = buffer.sample(config.batch_size, generator, replace=replace)
            stats = learner.update(batch)
            losses.append(stats["loss"])
            qs.append(stats["mean_q"])
            targets.append(stats["mean_target"])
            gradient_step += 1
        loss = _mean(losses)
        if loss is not None and not math.isfinite(loss):
            if bar is not None:
                bar.close()
            raise _divergence(config, losses, iteration, gradient_step)
        if lr_schedule is not None:
            lr_schedule.step()
        # The largest value the online network now gives any action on the last batch: the one
        # over-estimation (chapter 5) pushes past the bound 1 first. One forward pass per iteration.
        with torch.no_grad():
            max_q = float(network(batch.state, batch.goal).max()) if config.gradient_steps else None

        record = {
            "iteration": iteration,
            "epsilon": epsilon,
            "loss": loss,
            "mean_q": _mean(qs),
            "max_q": max_q,
            "mean_target": _mean(targets),
            "train_success": float(env.done.float().mean()),
            "rewards_seen": rewards_seen,
            "relabelled_rewards": int(relabelled.reward.sum()),
            "buffer_size": len(buffer),
        }
        if lr_schedule is not None:
            record["lr"] = learner.optimizer.param_groups[0]["lr"]  # the rate the next iteration uses
        # 4. Evaluate the greedy policy on fresh agents.
        if iteration % config.eval_every == 0 or iteration == config.max_iterations:
            record.update(evaluate(network, n, config.num_eval_agents, config.max_steps, eval_generator))
            solved_now = record["success_rate"] >= config.solved_threshold
            streak = streak + 1 if solved_now else 0
            if streak == 1:
                first_in_streak = iteration
            if streak >= config.solved_window and result.solved_at is None:
                result.solved_at, result.confirmed_at = first_in_streak, iteration
        record["wall_seconds"] = time.perf_counter() - start
        result.history.append(record)
        result.iterations = iteration
        if bar is not None:
            bar.update(1)
            if "success_rate" in record:
                bar.set_postfix(success=f"{record['success_rate']:.3f}", dist=f"{record['mean_distance']:.2f}")
        stop_requested = any([bool(cb(record)) for cb in callbacks])  # every callback sees every record
        if stop_requested:
            result.stopped_by = "callback"
            break
        if result.solved and config.early_stop:
            result.stopped_by = "solved"
            break
        if config.max_seconds is not None and record["wall_seconds"] >= config.max_seconds:
            result.stopped_by = "max_seconds"
            break
    if bar is not None:
        bar.close()
    result.wall_seconds = time.perf_counter() - start
    return result
