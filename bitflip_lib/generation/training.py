"""Training loops for chapters 8 and 9: REINFORCE, the KL-regularised objective, DPO, trajectory balance
and hindsight supervision, on the generation task of :mod:`bitflip_lib.generation.sequences`.

Each method reads top to bottom in :func:`train_generator` (one loop, one branch per loss), or
:func:`train_hindsight` for the goal-conditioned generator. One seed controls everything: the
hidden target(s), the network's initial weights, the samples and the evaluations.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from bitflip_lib.config import MAX_SEED, check_choice, check_integer, check_number, refuse
from bitflip_lib.generation.sequences import (
    BASELINES,
    MAX_EXACT_LENGTH,
    MAX_MODE_BITS,
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
from bitflip_lib.runtime.budget import MemoryEstimate, check_memory, generation_memory
from bitflip_lib.runtime.device import default_device, device_problem
from bitflip_lib.trainer import TrainingDiverged

METHODS = ("reinforce", "kl", "dpo", "gflownet", "hindsight")
EXACT_UP_TO = 10
"""Exact distances (TV, KL to the target distribution) are recorded for L up to this."""



@dataclass(frozen=True)
class GenerateConfig:
    """Settings of one generation run: documented defaults, checked once when made (a
    ``ValueError`` naming the field, the value and what is allowed), and frozen (:meth:`replace`
    makes a checked copy). ``bitflip generate``'s options are these fields (:mod:`bitflip_lib.options`).
    """

    method: str = "reinforce"
    """Learning rule: ``reinforce`` (maximise E[R]), ``kl`` (maximise E[R] - beta KL(pi || pi_ref)),
    ``dpo`` (preference pairs from pi_ref), ``gflownet`` (trajectory balance: sample in proportion
    to R), ``hindsight`` (a goal-conditioned generator trained on relabelled outputs)."""
    length: int = 8
    """Bits per string (L)."""
    reward: str = "sparse"
    """Terminal reward, the target hidden in it: ``sparse``, ``dense``, ``distance`` or ``multimodal``."""
    steps: int = 300
    """Gradient steps."""
    batch_size: int = 64
    """Strings per step (preference pairs per step for dpo)."""
    lr: float = 1e-3
    """Adam learning rate of the policy, in (0, 1]."""
    log_z_lr: float = 0.05
    """Learning rate of log Z (gflownet), in (0, 1]."""
    hidden: tuple[int, ...] = (128, 128)
    """Hidden widths of the policy's MLP."""
    baseline: str = "mean"
    """REINFORCE baseline: ``mean`` (the batch mean) or ``none``."""
    beta: float = 1.0
    """KL weight (kl, dpo): a finite number > 0."""
    epsilon: float = 0.0
    """Probability of a uniform bit while sampling for training (off-policy exploration; the
    evaluation samples on-policy)."""
    num_pairs: int = 8192
    """Preference pairs drawn once from pi_ref (dpo)."""
    sharpness: float | None = None
    """Reward sharpness (dense, multimodal; ``inf`` for exact matches, multimodal only); ``None``
    for the reward's default."""
    floor: float | None = None
    """Reward floor (sparse, multimodal), a finite number >= 0; ``None`` for the reward's default (0)."""
    num_modes: int = 4
    """Targets of the multimodal reward (at most 2^L)."""
    eval_every: int = 25
    """Steps between evaluations."""
    eval_samples: int = 1024
    """On-policy samples per evaluation."""
    seed: int = 0
    """The one seed (targets, weights, samples), an integer >= 0."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda``...: a device this machine can compute on."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field once, here, so that the training loops can trust them."""
        check_choice(self, "method", METHODS, "the learning rule")
        check_choice(self, "reward", REWARD_KINDS, "the terminal reward")
        check_choice(self, "baseline", BASELINES, "the REINFORCE baseline")
        for name in ("length", "steps", "batch_size", "eval_every", "eval_samples", "num_pairs", "num_modes"):
            check_integer(self, name, low=1)
        check_integer(self, "seed", low=0, high=MAX_SEED)
        for name in ("lr", "log_z_lr"):
            check_number(self, name, lambda x: 0 < x <= 1, "a number in (0, 1]")
        check_number(self, "beta", lambda x: 0 < x < math.inf, "a finite number > 0")
        check_number(self, "epsilon", lambda x: 0 <= x <= 1, "a number in [0, 1]")
        exact = self.reward == "multimodal"  # only bumps may be exact-match indicators (log R of dense would be NaN)
        check_number(self, "sharpness", lambda x: 0 < x < math.inf or (exact and x == math.inf),
                     "a number > 0 (inf for exact matches, multimodal only)", none="None for the reward's default")
        check_number(self, "floor", lambda x: 0 <= x < math.inf, "a finite number >= 0", none="None for 0")
        hidden = self.hidden
        if not isinstance(hidden, (tuple, list)) or not hidden or not all(
                isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden):
            refuse("hidden", hidden, "a non-empty tuple of layer widths, each an integer >= 1, e.g. (128, 128)",
                   wrong_type=not isinstance(hidden, (tuple, list)))
        problem = device_problem(self.device)
        if problem is not None:
            refuse("device", self.device, f"'auto' (CUDA when available) or a torch device such as 'cpu' that this "
                   f"machine can compute on ({problem})", wrong_type=not isinstance(self.device, (str, torch.device)))
        if self.reward == "multimodal" and self.num_modes > 2 ** min(self.length, MAX_MODE_BITS):
            refuse("num_modes", self.num_modes, f"at most 2^L = {2 ** min(self.length, MAX_MODE_BITS)} distinct "
                   f"targets at length={self.length}")
        if self.method == "dpo" and self.length > MAX_EXACT_LENGTH:
            raise ValueError(f"dpo here is checked by enumeration: length must be <= {MAX_EXACT_LENGTH}, got {self.length}")
        if self.method == "gflownet" and self.reward == "sparse" and not (self.floor or 0) > 0:
            raise ValueError("gflownet needs log R finite on every string: give the sparse reward a floor > 0 (e.g. floor=1e-3)")

    def replace(self, **changes) -> "GenerateConfig":
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def build_reward(self, device: str | torch.device | None = None) -> Reward:
        """The reward these settings describe, its hidden targets drawn from ``seed``."""
        return make_reward(self.reward, self.length, seed=self.seed, num_modes=self.num_modes,
                           sharpness=self.sharpness, floor=self.floor, device=device)


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


def memory_estimate(config: GenerateConfig) -> MemoryEstimate:
    """The memory a run of ``config`` holds at its peak, from its settings alone (see
    :func:`bitflip_lib.runtime.budget.generation_memory`)."""
    settings = {"length": config.length, "batch_size": config.batch_size, "eval_samples": config.eval_samples,
                "hidden": tuple(config.hidden), "num_pairs": config.num_pairs}
    return generation_memory(length=config.length, condition_length=config.length if config.method == "hindsight" else 0,
                             hidden=config.hidden, batch_size=config.batch_size, eval_samples=config.eval_samples,
                             exact=config.length <= EXACT_UP_TO, num_pairs=config.num_pairs if config.method == "dpo" else 0,
                             settings=settings)


def check_finite(loss: torch.Tensor, step: int, config: GenerateConfig) -> None:
    """Stop the run (:class:`~bitflip_lib.trainer.TrainingDiverged`) if the loss of ``step`` is not a
    finite number, naming the settings that most likely made it so."""
    if bool(torch.isfinite(loss)):
        return
    default = GenerateConfig()
    suspects = ["lr"] + {"gflownet": ["log_z_lr", "sharpness"], "kl": ["beta"], "dpo": ["beta"]}.get(config.method, [])
    # The suspects set above their defaults (a sharpness given at all), else the learning rate.
    raised = [name for name in suspects if getattr(config, name) is not None
              and (getattr(default, name) is None or getattr(config, name) > getattr(default, name))]
    advice = " or ".join(f"lower {name}={getattr(config, name):g}" for name in raised or ["lr"])
    raise TrainingDiverged(f"the {config.method} loss became {float(loss.detach())} at step {step}: training diverged; {advice}")


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
    called after each evaluation; returning True stops the run. A loss that is not a finite number
    stops it with :class:`~bitflip_lib.trainer.TrainingDiverged`.
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
        check_memory(memory_estimate(config), device)  # a run past the machine is refused before anything is built
        if reward is None:
            reward = config.build_reward(device)
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
            check_finite(loss, step, self.config)
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
    check_memory(memory_estimate(config), device)
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
        check_finite(loss, step, config)
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
    "check_finite",
    "EXACT_UP_TO",
    "METHODS",
    "GenerateConfig",
    "GenerationResult",
    "GeneratorTraining",
    "evaluate_generator",
    "memory_estimate",
    "mode_probabilities",
    "parameters_vector",
    "preference_pairs",
    "seeded_policy",
    "target_distribution",
    "train_generator",
    "train_hindsight",
]
