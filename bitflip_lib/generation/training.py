"""Training loops for chapters 8 and 9: REINFORCE, the KL-regularised objective, DPO, trajectory balance
and hindsight supervision, on the generation task of :mod:`bitflip_lib.generation.sequences`.

Each method reads top to bottom in :func:`train_generator` (one loop, one branch per loss), or
:func:`train_hindsight` for the goal-conditioned generator. One seed controls everything: the
hidden target(s), the network's initial weights, the samples and the evaluations.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from bitflip_lib.generation.sequences import (
    BASELINES,
    MAX_EXACT_LENGTH,
    REWARD_KINDS,
    AutoregressivePolicy,
    MultiModalReward,
    Reward,
    all_strings,
    dpo_loss,
    exact_log_probs,
    hindsight_loss,
    kl_divergence,
    kl_optimum,
    kl_regularised_reward,
    make_reward,
    random_strings,
    reinforce_loss,
    reward_distribution,
    total_variation,
    trajectory_balance_loss,
)
from bitflip_lib.env import evaluation_seed
from bitflip_lib.runtime.device import default_device

METHODS = ("reinforce", "kl", "dpo", "gflownet", "hindsight")
EXACT_UP_TO = 10
"""Exact distances (TV, KL to the target distribution) are recorded for L up to this."""



@dataclass(frozen=True)
class GenerateConfig:
    """Settings of one generation run (documented defaults; validated on construction).

    method: ``reinforce`` (maximise E[R]), ``kl`` (maximise E[R] - beta KL(pi || pi_ref)),
        ``dpo`` (preference pairs from pi_ref), ``gflownet`` (trajectory balance, sample
        proportional to R), ``hindsight`` (goal-conditioned generator, relabelled outputs).
    length: L, bits per string. reward: ``sparse``, ``dense`` or ``multimodal``.
    steps: gradient steps. batch_size: strings per step (pairs per step for dpo).
    lr: Adam learning rate of the policy; log_z_lr: of log Z (trajectory balance).
    hidden: the policy MLP's widths. baseline: REINFORCE baseline, ``mean`` or ``none``.
    beta: KL weight (kl, dpo). epsilon: probability of a uniform bit while sampling for
        training (off-policy exploration; the evaluation samples on-policy).
    num_pairs: preference pairs drawn once from pi_ref (dpo).
    sharpness, floor, num_modes: reward shape (None = :func:`make_reward`'s defaults).
    eval_every, eval_samples: evaluation period (steps) and on-policy samples per evaluation.
    seed: the one seed. device: ``auto``, ``cpu``, ``cuda``...
    """

    method: str = "reinforce"
    length: int = 8
    reward: str = "sparse"
    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    log_z_lr: float = 0.05
    hidden: tuple[int, ...] = (128, 128)
    baseline: str = "mean"
    beta: float = 1.0
    epsilon: float = 0.0
    num_pairs: int = 8192
    sharpness: float | None = None
    floor: float | None = None
    num_modes: int = 4
    eval_every: int = 25
    eval_samples: int = 1024
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.reward not in REWARD_KINDS:
            raise ValueError(f"reward must be one of {', '.join(REWARD_KINDS)}, got {self.reward!r}")
        for name in ("length", "steps", "batch_size", "eval_every", "eval_samples", "num_pairs", "num_modes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("lr", "log_z_lr", "beta"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {self.epsilon!r}")
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {self.baseline!r}")
        if not self.hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ValueError(f"hidden must be a non-empty tuple of positive integers, got {self.hidden!r}")
        if self.method in ("dpo",) and self.length > MAX_EXACT_LENGTH:
            raise ValueError(f"dpo here is checked by enumeration: length must be <= {MAX_EXACT_LENGTH}")
        if self.method == "gflownet" and self.reward == "sparse" and not (self.floor or 0) > 0:
            raise ValueError("gflownet needs log R finite on every string: give the sparse reward a floor > 0 (e.g. floor=1e-3)")

    def replace(self, **changes) -> "GenerateConfig":
        return dataclasses.replace(self, **changes)


@dataclass
class GenerationResult:
    """What a training run returns: its settings, history of evaluations and the trained parts."""

    config: GenerateConfig
    history: list[dict] = field(default_factory=list)
    policy: AutoregressivePolicy | None = None
    reference: AutoregressivePolicy | None = None
    reward: Reward | None = None
    log_Z: torch.Tensor | None = None
    wall_seconds: float = 0.0
    rewards_seen: int = 0

    def curve(self, key: str) -> tuple[list[int], list[float]]:
        points = [(h["step"], h[key]) for h in self.history if h.get(key) is not None]
        return [p[0] for p in points], [p[1] for p in points]

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}

    def summary(self) -> dict:
        """Flat and JSON-ready (what ``bitflip generate`` prints)."""
        c = self.config
        out = {"method": c.method, "length": c.length, "reward": c.reward, "steps": c.steps, "batch_size": c.batch_size,
               "beta": c.beta, "epsilon": c.epsilon, "seed": c.seed, "wall_seconds": round(self.wall_seconds, 3),
               "rewards_seen": self.rewards_seen}
        for key in ("success", "mean_reward", "tv", "kl", "log_Z", "modes_covered"):
            if key in self.final:
                out[key] = self.final[key]
        return out


def seeded_policy(length: int, hidden: tuple[int, ...], seed: int, device: torch.device, condition_length: int = 0) -> AutoregressivePolicy:
    """A policy whose initial weights depend only on ``seed`` (the global RNG is left alone)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy = AutoregressivePolicy(length, hidden, condition_length)
    return policy.to(device)


def target_distribution(config: GenerateConfig, reward: Reward, reference: AutoregressivePolicy | None) -> torch.Tensor | None:
    """The exact distribution a method aims at, over all 2^L strings (None where it has none or L is large).

    kl and dpo: ``pi_ref exp(R / beta) / Z``; gflownet: ``R / Z``; reinforce: none (it
    maximises E[R], whose maximisers put all mass on the best strings).
    """
    if config.length > EXACT_UP_TO or config.method in ("reinforce", "hindsight"):
        return None
    device = next(reference.parameters()).device if reference is not None else default_device(config.device)
    if config.method == "gflownet":
        return reward_distribution(reward, device)
    rewards = reward(all_strings(config.length, device))
    return kl_optimum(exact_log_probs(reference), rewards, config.beta)


def preference_pairs(reference: AutoregressivePolicy, reward: Reward, num_pairs: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(winners, losers)``: pairs drawn from ``pi_ref``, labelled by a noisy annotator that prefers
    ``y1`` over ``y2`` with Bradley-Terry probability ``sigmoid(R(y1) - R(y2))`` (the closer string
    usually wins). DPO's optimum is then ``pi_ref exp(R / beta) / Z``."""
    y1 = reference.sample(num_pairs, generator)
    y2 = reference.sample(num_pairs, generator)
    p_first = torch.sigmoid(reward(y1) - reward(y2))
    first_wins = (torch.rand(num_pairs, generator=generator, device=y1.device) < p_first)[:, None]
    return torch.where(first_wins, y1, y2), torch.where(first_wins, y2, y1)


@torch.no_grad()
def evaluate_generator(policy: AutoregressivePolicy, reward: Reward, samples: int, generator: torch.Generator,
                       target: torch.Tensor | None = None) -> dict:
    """On-policy samples: success (a target string) and mean reward; with ``target``, exact TV and
    KL(target || pi); for a multi-modal reward, how many modes hold at least 1% probability."""
    y = policy.sample(samples, generator)
    record = {"success": float(reward.is_success(y).float().mean()), "mean_reward": float(reward(y).mean())}
    if policy.length <= EXACT_UP_TO:
        probs = exact_log_probs(policy).exp()
        if target is not None:
            record["tv"] = total_variation(probs, target)
            record["kl"] = kl_divergence(target, probs)
        if isinstance(reward, MultiModalReward):
            strings = all_strings(policy.length, probs.device)
            mode_mass = torch.zeros(reward.num_modes, dtype=torch.float64, device=probs.device)
            index = reward.mode_index(strings)
            hit = index >= 0
            mode_mass.index_add_(0, index[hit], probs[hit])
            record["mode_mass"] = [float(m) for m in mode_mass]
            record["modes_covered"] = int((mode_mass >= 0.01).sum())
    return record


def train_generator(config: GenerateConfig, reward: Reward | None = None, policy: AutoregressivePolicy | None = None,
                    reference: AutoregressivePolicy | None = None,
                    callback: Callable[[dict, AutoregressivePolicy], bool | None] | None = None) -> GenerationResult:
    """Train a generator with one of reinforce, kl, dpo or gflownet (hindsight: :func:`train_hindsight`).

    ``reward``: default :func:`make_reward` from the config and seed. ``policy``: default a fresh
    :class:`AutoregressivePolicy`. ``reference``: pi_ref for kl and dpo (default a frozen copy of
    the initial policy, as RLHF starts from its supervised model). ``callback(record, policy)`` is
    called after each evaluation; returning True stops the run.
    """
    if config.method == "hindsight":
        return train_hindsight(config, callback=callback)
    run = GeneratorTraining(config, reward, policy, reference)
    for record in run:
        if callback is not None and callback(record, run.result.policy):
            break
    return run.result


class GeneratorTraining:
    """One run of :func:`train_generator`, advanced one evaluation at a time.

    Iterating yields each evaluation record (step 0 first, then every ``eval_every`` steps and
    the last step); ``result`` is the :class:`GenerationResult`, up to date after every record.
    Stopping the iteration early stops the run there. Two runs advanced in turn train side by
    side (the generation playground does this, so that Stop leaves both at the same step).
    """

    def __init__(self, config: GenerateConfig, reward: Reward | None = None, policy: AutoregressivePolicy | None = None,
                 reference: AutoregressivePolicy | None = None) -> None:
        if config.method == "hindsight":
            raise ValueError("hindsight trains a goal-conditioned generator: use train_hindsight(config)")
        device = default_device(config.device)
        if reward is None:
            reward = make_reward(config.reward, config.length, seed=config.seed, num_modes=config.num_modes,
                                 sharpness=config.sharpness, floor=config.floor, device=device)
        if reward.length != config.length:
            raise ValueError(f"reward is for L = {reward.length} but config.length = {config.length}")
        if policy is None:
            policy = seeded_policy(config.length, config.hidden, config.seed, device)
        if reference is None:
            reference = copy.deepcopy(policy)
        reference.requires_grad_(False)
        self.config, self.device = config, device
        self.result = GenerationResult(config, policy=policy, reference=reference, reward=reward)
        self.target = target_distribution(config, reward, reference)
        self._steps = self._train()

    def __iter__(self) -> "GeneratorTraining":
        return self

    def __next__(self) -> dict:
        return next(self._steps)

    def _train(self) -> Iterator[dict]:
        config, device, result = self.config, self.device, self.result
        policy, reference, reward, target = result.policy, result.reference, result.reward, self.target
        start = time.perf_counter()
        generator = torch.Generator(device=device).manual_seed(config.seed)
        eval_generator = torch.Generator(device=device).manual_seed(evaluation_seed(config.seed))
        log_Z = torch.zeros((), device=device, requires_grad=True)
        groups = [{"params": policy.parameters(), "lr": config.lr}]
        if config.method == "gflownet":
            groups.append({"params": [log_Z], "lr": config.log_z_lr})
            result.log_Z = log_Z.detach()  # shares log_Z's storage: always the current value
        optimizer = torch.optim.Adam(groups)
        if config.method == "dpo":
            winners, losers = preference_pairs(reference, reward, config.num_pairs, generator)
            with torch.no_grad():
                ref_w, ref_l = reference.log_prob(winners), reference.log_prob(losers)

        def evaluate(step: int, loss: float | None) -> dict:
            record = {"step": step, "loss": loss,
                      **evaluate_generator(policy, reward, config.eval_samples, eval_generator, target)}
            if config.method == "gflownet":
                record["log_Z"] = float(log_Z.detach())
            record["rewards_seen"] = result.rewards_seen
            result.history.append(record)
            result.wall_seconds = time.perf_counter() - start
            return record

        yield evaluate(0, None)
        for step in range(1, config.steps + 1):
            if config.method == "dpo":
                batch = torch.randint(0, config.num_pairs, (config.batch_size,), generator=generator, device=device)
                loss = dpo_loss(policy.log_prob(winners[batch]), policy.log_prob(losers[batch]), ref_w[batch],
                                ref_l[batch], config.beta)
            else:
                y = policy.sample(config.batch_size, generator, epsilon=config.epsilon)  # the behaviour policy
                r = reward(y)
                result.rewards_seen += int(reward.is_success(y).sum())
                log_pi = policy.log_prob(y)  # sum over the trajectory of log pi(y_t | y_<t)
                if config.method == "reinforce":
                    loss = reinforce_loss(log_pi, r, config.baseline)
                elif config.method == "kl":
                    shaped = kl_regularised_reward(r, log_pi, reference.log_prob(y), config.beta)
                    loss = reinforce_loss(log_pi, shaped, config.baseline)
                else:  # gflownet: trajectory balance, valid for any behaviour policy with full support
                    loss = trajectory_balance_loss(log_Z, log_pi, reward.log_reward(y))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % config.eval_every == 0 or step == config.steps:
                yield evaluate(step, float(loss.detach()))


def train_hindsight(config: GenerateConfig, relabel: bool = True,
                    callback: Callable[[dict, AutoregressivePolicy], bool | None] | None = None) -> GenerationResult:
    """A goal-conditioned generator ``pi(y | instruction g)`` for the copy task "write g".

    ``relabel=True`` (hindsight): sample an instruction, let the policy write y, and train on
    ``(instruction = y, output = y)``, which is always a correct pair. ``relabel=False``: REINFORCE
    on the sparse reward ``1[y = g]`` with the configured baseline, for comparison. Success is
    measured greedily on fresh instructions the run never trained on.
    """
    start = time.perf_counter()
    device = default_device(config.device)
    L = config.length
    policy = seeded_policy(L, config.hidden, config.seed, device, condition_length=L)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    eval_generator = torch.Generator(device=device).manual_seed(evaluation_seed(config.seed))
    held_out = random_strings(config.eval_samples, L, eval_generator)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr)
    result = GenerationResult(config, policy=policy)

    @torch.no_grad()
    def evaluate(step: int, loss: float | None) -> bool:
        y = policy.sample(config.eval_samples, condition=held_out, greedy=True)
        record = {"step": step, "loss": loss, "success": float((y == held_out).all(1).float().mean()),
                  "bit_accuracy": float((y == held_out).float().mean()), "rewards_seen": result.rewards_seen}
        result.history.append(record)
        return bool(callback(record, policy)) if callback is not None else False

    stop = evaluate(0, None)
    for step in range(1, config.steps + 1):
        if stop:
            break
        instruction = random_strings(config.batch_size, L, generator)
        y = policy.sample(config.batch_size, generator, condition=instruction, epsilon=config.epsilon)
        hit = (y == instruction).all(1)
        result.rewards_seen += int(hit.sum())
        if relabel:
            loss = hindsight_loss(policy, y)
        else:
            loss = reinforce_loss(policy.log_prob(y, condition=instruction), hit.float(), config.baseline)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % config.eval_every == 0 or step == config.steps:
            stop = evaluate(step, float(loss.detach()))
    result.wall_seconds = time.perf_counter() - start
    return result


def parameters_vector(module: torch.nn.Module) -> torch.Tensor:
    """All parameters flattened into one vector (to check that training changed nothing, bit for bit)."""
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


def mode_probabilities(policy: AutoregressivePolicy, reward: MultiModalReward) -> list[float]:
    """Exact probability the policy gives each mode string of a multi-modal reward."""
    probs = exact_log_probs(policy).exp()
    strings = all_strings(policy.length, probs.device)
    index = reward.mode_index(strings)
    return [float(probs[index == k].sum()) for k in range(reward.num_modes)]


__all__ = [
    "EXACT_UP_TO",
    "METHODS",
    "GenerateConfig",
    "GenerationResult",
    "GeneratorTraining",
    "evaluate_generator",
    "mode_probabilities",
    "parameters_vector",
    "preference_pairs",
    "seeded_policy",
    "target_distribution",
    "train_generator",
    "train_hindsight",
]
