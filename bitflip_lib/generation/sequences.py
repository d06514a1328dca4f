"""Left-to-right generation of bit strings under sparse rewards (chapters 8 and 9).

Bit flipping (chapters 1-7) gives the agent its goal as an input. Generating text is different:
a model writes a string token by token and only the finished string is scored, by a reward whose
"target" the model never sees. This module is that setting with a vocabulary of two tokens:

* rewards: :class:`SparseReward` (1 for the one hidden target string), :class:`DenseReward` (a
  stand-in for a reward model, ``exp(-sharpness * Hamming distance)``) and
  :class:`MultiModalReward` (several targets);
* :class:`GenerationEnv`: a batch of episodes on any torch device; the state is the prefix,
  action ``a`` appends bit ``a``, the reward comes once, at the end;
* :class:`AutoregressivePolicy`: a small network that reads the prefix (and, for hindsight, an
  instruction), as a language model reads its context;
* the learning rules, each in one place: :func:`reinforce_loss`, :func:`kl_regularised_reward`,
  :func:`dpo_loss`, :func:`trajectory_balance_loss`, :func:`hindsight_loss`;
* exact enumeration of all ``2^L`` strings for small L (:func:`all_strings`,
  :func:`exact_log_probs`, :func:`kl_optimum`, :func:`soft_values`), so that a learned
  distribution can be compared with its target exactly (:func:`total_variation`,
  :func:`kl_divergence`).

The training loops live in :mod:`bitflip_lib.generation.training`. Strings are float32 tensors of
zeros and ones, ``[batch, L]``; string index ``i`` of :func:`all_strings` is ``i`` written in
binary with the first bit most significant, so the prefixes of length ``t`` are ``i >> (L - t)``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from bitflip_lib.runtime.device import default_device

__all__ = [
    "all_strings", "AutoregressivePolicy", "BASELINES", "conditional_log_probs", "DenseReward",
    "DistanceScore", "dpo_loss", "empirical_distribution", "exact_log_probs", "GenerationEnv",
    "GenerationStep", "hindsight_loss", "kl_divergence", "kl_optimum", "kl_regularised_reward",
    "make_reward", "MAX_EXACT_LENGTH", "MAX_MODE_BITS", "MultiModalReward", "policy_from_soft_q",
    "random_strings", "random_success_probability", "reinforce_loss", "Reward",
    "reward_distribution", "REWARD_KINDS", "rollout", "soft_values", "SparseReward",
    "string_index", "total_variation", "trajectory_balance_loss",
]

MAX_EXACT_LENGTH = 16
"""Longest L that :func:`all_strings` enumerates (2^16 strings); the chapter uses L <= 10."""
MAX_MODE_BITS = 20
"""A multimodal reward has at most ``2^min(L, MAX_MODE_BITS)`` distinct targets."""


def _check_length(length: int, name: str = "length") -> int:
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"{name} must be an integer >= 1 (the number of bits to generate), got {length!r}")
    return length


def _check_strings(y: torch.Tensor, length: int, name: str = "y") -> torch.Tensor:
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor of shape [batch, {length}]")
    if y.dim() != 2 or y.shape[1] != length:
        raise ValueError(f"{name} must have shape [batch, {length}] (strings of {length} bits), got {tuple(y.shape)}")
    return y


def random_strings(count: int, length: int, generator: torch.Generator | None = None,
                   device: str | torch.device | None = None) -> torch.Tensor:
    """``count`` uniform random strings, ``[count, length]`` float32 (targets, instructions)."""
    _check_length(length)
    device = generator.device if generator is not None else default_device(device)
    return torch.randint(0, 2, (count, length), generator=generator, device=device).float()


# --- rewards: the target is hidden inside ------------------------------------------------------


class Reward:
    """A terminal reward ``R(y)`` of finished strings ``[B, L] -> [B]`` (``>= 0`` except :class:`DistanceScore`).

    The target(s) are private: a learner only calls the reward. :meth:`is_success` (the string
    is a target) is for *evaluating* a learner, which is how the chapter measures success.
    """

    length: int
    name: str = "reward"

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def is_success(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_reward(self, y: torch.Tensor) -> torch.Tensor:
        """``log R(y)``, what trajectory balance needs (-inf where R = 0: add a floor)."""
        return torch.log(self(y))


def _as_targets(targets: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor of zeros and ones")
    targets = targets.float()
    if targets.dim() == 1:
        targets = targets[None]
    if targets.dim() != 2 or targets.shape[1] < 1 or targets.shape[0] < 1:
        raise ValueError(f"{name} must have shape [L] or [modes, L], got {tuple(targets.shape)}")
    if not bool(((targets == 0) | (targets == 1)).all()):
        raise ValueError(f"{name} must contain only zeros and ones")
    return targets


def _distances(y: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Hamming distance of every string to every target, ``[B, modes]``."""
    _check_strings(y, targets.shape[1])
    return (y[:, None, :] != targets.to(y.device)[None]).sum(-1).float()


class SparseReward(Reward):
    """``R(y) = 1[y = y*] + floor``: the task of the write-up's first draft, one hidden target, nothing for near misses.

    ``floor > 0`` keeps ``log R`` finite for trajectory balance (every string keeps a little flow).
    """

    name = "sparse"

    def __init__(self, target: torch.Tensor, floor: float = 0.0) -> None:
        self._target = _as_targets(target, "target")
        if self._target.shape[0] != 1:
            raise ValueError("SparseReward takes one target of shape [L]; use MultiModalReward for several")
        if not floor >= 0.0:
            raise ValueError(f"floor must be >= 0, got {floor}")
        self.length, self.floor = self._target.shape[1], float(floor)

    def is_success(self, y: torch.Tensor) -> torch.Tensor:
        return _distances(y, self._target)[:, 0] == 0

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        return self.is_success(y).float() + self.floor


class DenseReward(Reward):
    """``R(y) = exp(-sharpness * d(y, y*))``: a reward model that scores near misses.

    It says how far from the target a string is, which the sparse reward hides: reward shaping
    adds information the task did not give (the chapter says so plainly).
    """

    name = "dense"

    def __init__(self, target: torch.Tensor, sharpness: float = 0.2) -> None:
        self._target = _as_targets(target, "target")
        if self._target.shape[0] != 1:
            raise ValueError("DenseReward takes one target of shape [L]")
        if not sharpness > 0.0:
            raise ValueError(f"sharpness must be > 0, got {sharpness}")
        self.length, self.sharpness = self._target.shape[1], float(sharpness)

    def distance(self, y: torch.Tensor) -> torch.Tensor:
        return _distances(y, self._target)[:, 0]

    def is_success(self, y: torch.Tensor) -> torch.Tensor:
        return self.distance(y) == 0

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.sharpness * self.distance(y))

    def log_reward(self, y: torch.Tensor) -> torch.Tensor:
        return -self.sharpness * self.distance(y)


class DistanceScore(Reward):
    """``R(y) = -d(y, y*)``: minus the number of wrong bits, a reward model's score (it can be
    negative, so it is for the KL-regularised objective and DPO, not for GFlowNets).

    With this score and ``beta = 1`` the optimum ``pi_ref exp(R / beta) / Z`` makes each bit right
    with probability ``e / (1 + e) = 0.73`` when pi_ref is uniform, and a Bradley-Terry annotator
    prefers a string one bit closer with that same probability.
    """

    name = "distance"

    def __init__(self, target: torch.Tensor) -> None:
        self._target = _as_targets(target, "target")
        if self._target.shape[0] != 1:
            raise ValueError("DistanceScore takes one target of shape [L]")
        self.length = self._target.shape[1]

    def is_success(self, y: torch.Tensor) -> torch.Tensor:
        return _distances(y, self._target)[:, 0] == 0

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        return -_distances(y, self._target)[:, 0]

    def log_reward(self, y: torch.Tensor) -> torch.Tensor:
        raise ValueError("DistanceScore can be negative and has no logarithm: use DenseReward for a GFlowNet")


class MultiModalReward(Reward):
    """``R(y) = floor + sum_k exp(-sharpness * d(y, m_k))`` over hidden modes ``m_k``.

    ``sharpness=math.inf`` makes each bump an exact-match indicator (a sparse multi-modal reward).
    """

    name = "multimodal"

    def __init__(self, modes: torch.Tensor, sharpness: float = 2.0, floor: float = 0.0) -> None:
        self._modes = _as_targets(modes, "modes")
        if not sharpness > 0.0:
            raise ValueError(f"sharpness must be > 0 (math.inf for exact matches), got {sharpness}")
        if not floor >= 0.0:
            raise ValueError(f"floor must be >= 0, got {floor}")
        self.length, self.sharpness, self.floor = self._modes.shape[1], float(sharpness), float(floor)

    @property
    def num_modes(self) -> int:
        return self._modes.shape[0]

    def mode_index(self, y: torch.Tensor) -> torch.Tensor:
        """Which mode each string is (``-1`` for none): for evaluation only."""
        hit = _distances(y, self._modes) == 0
        return torch.where(hit.any(1), hit.float().argmax(1), torch.full_like(hit[:, 0], -1, dtype=torch.long))

    def is_success(self, y: torch.Tensor) -> torch.Tensor:
        return self.mode_index(y) >= 0

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        d = _distances(y, self._modes)
        bumps = (d == 0).float() if math.isinf(self.sharpness) else torch.exp(-self.sharpness * d)
        return self.floor + bumps.sum(1)


REWARD_KINDS = ("sparse", "dense", "distance", "multimodal")


def make_reward(kind: str, length: int, seed: int = 0, num_modes: int = 4, sharpness: float | None = None,
                floor: float | None = None, device: str | torch.device | None = None) -> Reward:
    """A reward with random hidden target(s) drawn from ``seed`` (what the CLI and widget use).

    Defaults: sparse floor 0; dense sharpness 0.2; multimodal sharpness 2 and floor 0;
    ``distance`` is :class:`DistanceScore` (for kl and dpo).
    """
    _check_length(length)
    if kind not in REWARD_KINDS:
        raise ValueError(f"reward must be one of {', '.join(REWARD_KINDS)}, got {kind!r}")
    generator = torch.Generator(device=default_device(device)).manual_seed(seed + 1000)
    if kind == "sparse":
        return SparseReward(random_strings(1, length, generator)[0], floor=0.0 if floor is None else floor)
    if kind == "distance":
        return DistanceScore(random_strings(1, length, generator)[0])
    if kind == "dense":
        return DenseReward(random_strings(1, length, generator)[0], sharpness=0.2 if sharpness is None else sharpness)
    if isinstance(num_modes, bool) or not isinstance(num_modes, int) or not 1 <= num_modes <= 2**min(length, MAX_MODE_BITS):
        raise ValueError(f"num_modes must be an integer between 1 and 2^L, got {num_modes!r}")
    modes = random_strings(1, length, generator)
    while modes.shape[0] < num_modes:  # distinct modes
        candidate = random_strings(1, length, generator)
        if not bool((modes == candidate).all(1).any()):
            modes = torch.cat([modes, candidate])
    return MultiModalReward(modes, sharpness=2.0 if sharpness is None else sharpness, floor=0.0 if floor is None else floor)


# --- the environment ----------------------------------------------------------------------------


class GenerationStep(NamedTuple):
    """What :meth:`GenerationEnv.step` returns: the prefix so far, the reward (0 until the last
    step), and whether the strings are finished (all agents write in lockstep)."""

    tokens: torch.Tensor
    reward: torch.Tensor
    done: bool


class GenerationEnv:
    """A batch of ``num_agents`` left-to-right generations of ``reward.length`` bits.

    The state is the prefix: ``tokens`` (``[B, L]``, only the first ``t`` columns written) and
    the position ``t``. Action ``a_t`` in {0, 1} appends a bit. After L steps the episode ends
    and the reward ``R(y)`` is paid, once. Every action sequence gives a different string, so the
    states form a tree: each state has exactly one parent (what makes GFlowNets simple here).
    A uniformly random writer hits one given target with probability ``2^-L``.
    """

    def __init__(self, reward: Reward, num_agents: int = 64, device: str | torch.device | None = None) -> None:
        if not isinstance(reward, Reward):
            raise TypeError("reward must be a bitflip_lib.generation.sequences.Reward (SparseReward, DenseReward, MultiModalReward)")
        if isinstance(num_agents, bool) or not isinstance(num_agents, int) or num_agents < 1:
            raise ValueError(f"num_agents must be an integer >= 1, got {num_agents!r}")
        self.reward, self.length, self.num_agents = reward, reward.length, num_agents
        self.device = default_device(device)
        self.tokens = torch.zeros(num_agents, self.length, device=self.device)
        self.t = self.length  # no episode until reset()

    def reset(self) -> torch.Tensor:
        self.tokens = torch.zeros(self.num_agents, self.length, device=self.device)
        self.t = 0
        return self.tokens

    def step(self, action: torch.Tensor) -> GenerationStep:
        if self.t >= self.length:
            raise RuntimeError("the strings are finished: call reset() before step()")
        if tuple(action.shape) != (self.num_agents,):
            raise ValueError(f"action must have shape [{self.num_agents}], got {tuple(action.shape)}")
        if not bool(((action == 0) | (action == 1)).all()):
            raise ValueError("actions must be bits (0 or 1)")
        self.tokens = self.tokens.clone()
        self.tokens[:, self.t] = action.to(self.device, torch.float32)
        self.t += 1
        done = self.t == self.length
        reward = self.reward(self.tokens) if done else torch.zeros(self.num_agents, device=self.device)
        return GenerationStep(self.tokens, reward, done)


def random_success_probability(length: int) -> float:
    """Chance that L uniformly random bits equal one given target: ``2^-L``."""
    return 2.0 ** -_check_length(length)


# --- the policy: a tiny autoregressive model ----------------------------------------------------


class AutoregressivePolicy(nn.Module):
    """``pi(a_t | y_<t [, c])``: an MLP that reads the written prefix, the position and an optional
    instruction ``c`` (``condition_length`` bits), and returns logits for the next bit.

    Input at position t: for every position j, "wrote 1" and "wrote 0" indicators (both 0 where
    j >= t, so unwritten bits are visibly unwritten), a one-hot of t, then the instruction.
    :meth:`step_logits` (for sampling) and :meth:`all_logits` (every position at once, for
    log-probabilities of given strings) build exactly the same inputs.
    """

    def __init__(self, length: int, hidden: tuple[int, ...] = (128, 128), condition_length: int = 0) -> None:
        super().__init__()
        self.length = _check_length(length)
        if condition_length < 0:
            raise ValueError(f"condition_length must be >= 0, got {condition_length}")
        if not hidden or any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden must be a non-empty tuple of positive widths, got {hidden!r}")
        self.condition_length = condition_length
        layers: list[nn.Module] = []
        width = 3 * length + condition_length
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            width = int(h)
        layers.append(nn.Linear(width, 2))
        self.net = nn.Sequential(*layers)

    def _inputs(self, tokens: torch.Tensor, written: torch.Tensor, position: torch.Tensor,
                condition: torch.Tensor | None) -> torch.Tensor:
        parts = [tokens * written, (1.0 - tokens) * written, position]
        if self.condition_length:
            if condition is None:
                raise ValueError(f"this policy reads an instruction of {self.condition_length} bits: pass condition=")
            parts.append(condition.to(tokens.dtype).expand(*tokens.shape[:-1], self.condition_length))
        elif condition is not None:
            raise ValueError("this policy takes no instruction (condition_length=0): pass condition=None")
        return torch.cat(parts, -1)

    def step_logits(self, tokens: torch.Tensor, t: int, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, 2]`` of bit t given the prefix ``tokens[:, :t]``."""
        L = self.length
        written = (torch.arange(L, device=tokens.device) < t).float().expand_as(tokens)
        position = F.one_hot(torch.tensor(t, device=tokens.device), L).float().expand_as(tokens)
        return self.net(self._inputs(tokens, written, position, condition))

    def all_logits(self, y: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, L, 2]`` of every bit of ``y`` given its own prefix (teacher forcing)."""
        L = self.length
        _check_strings(y, L)
        eye = torch.eye(L, device=y.device)
        written = torch.tril(torch.ones(L, L, device=y.device), diagonal=-1)  # [t, j]: j < t
        tokens = y[:, None, :].expand(-1, L, -1)
        cond = None if condition is None else condition[:, None, :]
        return self.net(self._inputs(tokens, written.expand_as(tokens), eye.expand_as(tokens), cond))

    def step_log_probs(self, y: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """``log pi(y_t | y_<t)`` for every t, ``[B, L]``."""
        logp = torch.log_softmax(self.all_logits(y, condition), -1)
        return logp.gather(-1, y.long()[..., None]).squeeze(-1)

    def log_prob(self, y: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """``log pi(y) = sum_t log pi(y_t | y_<t)``, ``[B]``: the whole trajectory's log-probability."""
        return self.step_log_probs(y, condition).sum(-1)

    @torch.no_grad()
    def sample(self, num: int, generator: torch.Generator | None = None, condition: torch.Tensor | None = None,
               epsilon: float = 0.0, temperature: float = 1.0, greedy: bool = False) -> torch.Tensor:
        """Write ``num`` strings left to right, ``[num, L]``.

        ``epsilon``: each bit is uniform with this probability (off-policy exploration);
        ``temperature`` > 1 flattens the policy; ``greedy`` takes the likelier bit every time.
        """
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
        if not temperature > 0.0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        device = next(self.parameters()).device
        tokens = torch.zeros(num, self.length, device=device)
        for t in range(self.length):
            logits = self.step_logits(tokens, t, condition)
            if greedy:
                bit = logits.argmax(-1).float()
            else:
                p_one = torch.softmax(logits / temperature, -1)[:, 1]
                p_one = (1.0 - epsilon) * p_one + epsilon * 0.5
                bit = (torch.rand(num, generator=generator, device=device) < p_one).float()
            tokens[:, t] = bit
        return tokens


def rollout(env: GenerationEnv, policy: AutoregressivePolicy, generator: torch.Generator | None = None,
            condition: torch.Tensor | None = None, epsilon: float = 0.0, greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Play one batch of episodes of ``env`` with ``policy``; returns ``(strings, rewards)``.

    The loop is the MDP of the chapter: read the prefix, choose a bit, append it; the reward
    arrives with the last bit. (:meth:`AutoregressivePolicy.sample` writes the same strings
    without an environment; the chapter checks that they agree.)
    """
    tokens = env.reset()
    with torch.no_grad():
        while True:
            logits = policy.step_logits(tokens, env.t, condition)
            if greedy:
                bit = logits.argmax(-1)
            else:
                p_one = (1.0 - epsilon) * torch.softmax(logits, -1)[:, 1] + epsilon * 0.5
                bit = (torch.rand(env.num_agents, generator=generator, device=env.device) < p_one).long()
            step = env.step(bit)
            tokens = step.tokens
            if step.done:
                return step.tokens, step.reward


# --- learning rules -----------------------------------------------------------------------------

BASELINES = ("none", "mean")


def reinforce_loss(log_probs: torch.Tensor, rewards: torch.Tensor, baseline: str | float | torch.Tensor = "mean") -> torch.Tensor:
    """The REINFORCE surrogate ``-mean_i (R_i - b) log pi(y_i)`` (Williams 1992).

    Its gradient is the score-function estimate of ``-grad E[R]``. ``baseline``: ``"none"``
    (b = 0), ``"mean"`` (b = the batch's mean reward), a number, or a ``[B]`` tensor. Any b that
    does not depend on the sample it multiplies (a constant; the leave-one-out mean of the other
    rewards, as a ``[B]`` tensor) leaves the expectation unchanged, because
    ``E[grad log pi(y)] = grad sum_y pi(y) = 0``. The batch mean contains the sample's own reward:
    its expected estimate is ``(B - 1) / B`` times the gradient (the right direction, shortened).
    With all rewards zero, "none" and "mean" give exactly zero; a nonzero constant gives a
    zero-mean but nonzero estimate: pure noise.
    """
    if log_probs.shape != rewards.shape or log_probs.dim() != 1:
        raise ValueError(f"log_probs and rewards must both have shape [B], got {tuple(log_probs.shape)} and {tuple(rewards.shape)}")
    rewards = rewards.detach()
    if isinstance(baseline, str):
        if baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, a number or a [B] tensor, got {baseline!r}")
        b = rewards.mean() if baseline == "mean" else torch.zeros((), device=rewards.device)
    else:
        b = torch.as_tensor(baseline, dtype=rewards.dtype, device=rewards.device).detach()
    return -((rewards - b) * log_probs).mean()


def kl_regularised_reward(rewards: torch.Tensor, log_probs: torch.Tensor, ref_log_probs: torch.Tensor, beta: float) -> torch.Tensor:
    """``R(y) - beta (log pi(y) - log pi_ref(y))``, detached: the per-sample reward whose REINFORCE
    gradient is that of ``E_pi[R] - beta KL(pi || pi_ref)`` (the extra ``-beta E[grad log pi]``
    term is zero). Its maximiser is :func:`kl_optimum`."""
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    return (rewards - beta * (log_probs - ref_log_probs)).detach()


def dpo_loss(log_probs_w: torch.Tensor, log_probs_l: torch.Tensor, ref_log_probs_w: torch.Tensor,
             ref_log_probs_l: torch.Tensor, beta: float) -> torch.Tensor:
    """Direct preference optimisation (Rafailov et al. 2023) on pairs where ``w`` beat ``l``:
    ``-mean log sigmoid(beta [(log pi(w) - log pi_ref(w)) - (log pi(l) - log pi_ref(l))])``.

    ``beta log(pi / pi_ref)`` plays the reward in a Bradley-Terry model, so the minimiser (with
    enough pairs) is ``pi_ref exp(r / beta) / Z`` for the reward r that generated the preferences.
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    margin = beta * ((log_probs_w - ref_log_probs_w.detach()) - (log_probs_l - ref_log_probs_l.detach()))
    return -F.logsigmoid(margin).mean()


def trajectory_balance_loss(log_Z: torch.Tensor, log_pf: torch.Tensor, log_reward: torch.Tensor,
                            log_pb: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Trajectory balance (Malkin et al. 2022): ``mean (log Z + sum_t log P_F - log R - sum_t log P_B)^2``.

    ``log_pf``: ``[B]``, the forward log-probabilities summed over each trajectory. On a tree
    (left-to-right writing) every state has one parent, so ``P_B = 1`` and ``log_pb = 0``.
    ``log_Z`` is a learned scalar; at the optimum ``Z = sum_y R(y)`` and ``P_F(y) = R(y) / Z``.
    """
    if log_pf.dim() != 1 or log_pf.shape != log_reward.shape:
        raise ValueError(f"log_pf and log_reward must both have shape [B], got {tuple(log_pf.shape)} and {tuple(log_reward.shape)}")
    return (log_Z + log_pf - log_reward.detach() - log_pb).pow(2).mean()


def hindsight_loss(policy: AutoregressivePolicy, outputs: torch.Tensor) -> torch.Tensor:
    """Hindsight supervision for a goal-conditioned generator: whatever ``y`` the policy wrote is a
    correct answer to the instruction "write y", so relabel the instruction to ``y`` and maximise
    ``log pi(y | instruction = y)`` (cross-entropy, every bit of every sample is supervised)."""
    return -policy.log_prob(outputs, condition=outputs).mean()


# --- exact enumeration at small L ----------------------------------------------------------------


def all_strings(length: int, device: str | torch.device | None = None) -> torch.Tensor:
    """Every L-bit string, ``[2^L, L]`` float32; row i is i in binary, first bit most significant."""
    _check_length(length)
    if length > MAX_EXACT_LENGTH:
        raise ValueError(f"exact enumeration needs length <= {MAX_EXACT_LENGTH} (2^L strings), got {length}")
    index = torch.arange(2**length, device=default_device(device))
    shifts = torch.arange(length - 1, -1, -1, device=index.device)
    return ((index[:, None] >> shifts) & 1).float()


def string_index(y: torch.Tensor) -> torch.Tensor:
    """Row of each string in :func:`all_strings` (``[B, L] -> [B]`` int64)."""
    L = y.shape[-1]
    weights = 2 ** torch.arange(L - 1, -1, -1, device=y.device)
    return (y.long() * weights).sum(-1)


@torch.no_grad()
def exact_log_probs(policy: AutoregressivePolicy, condition: torch.Tensor | None = None) -> torch.Tensor:
    """``log pi(y)`` of every string (``[2^L]``, float64): the policy's whole distribution."""
    strings = all_strings(policy.length, next(policy.parameters()).device)
    cond = None if condition is None else condition.expand(strings.shape[0], -1)
    return policy.log_prob(strings, cond).double()


def empirical_distribution(y: torch.Tensor) -> torch.Tensor:
    """Fraction of the samples equal to each string, ``[2^L]`` float64."""
    counts = torch.bincount(string_index(y), minlength=2 ** y.shape[-1]).double()
    return counts / counts.sum()


def reward_distribution(reward: Reward, device: str | torch.device | None = None) -> torch.Tensor:
    """``R(y) / Z`` over every string (float64): what a GFlowNet should sample."""
    r = reward(all_strings(reward.length, device)).double()
    if not bool((r > 0).any()):
        raise ValueError("the reward is zero on every string: R / Z is undefined")
    return r / r.sum()


def kl_optimum(ref_log_probs: torch.Tensor, rewards: torch.Tensor, beta: float) -> torch.Tensor:
    """``pi*(y) = pi_ref(y) exp(R(y) / beta) / Z``: the maximiser of ``E_pi[R] - beta KL(pi || pi_ref)``."""
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    return torch.softmax(ref_log_probs.double() + rewards.double() / beta, 0)


def total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    """``(1/2) sum |p - q|``: the largest difference in probability the two give any set of strings."""
    if p.shape != q.shape:
        raise ValueError(f"distributions must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}")
    return 0.5 * float((p.double() - q.double()).abs().sum())


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """``KL(p || q) = sum_y p log(p / q)`` (terms with p = 0 are 0; inf where q = 0 < p)."""
    if p.shape != q.shape:
        raise ValueError(f"distributions must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}")
    p, q = p.double(), q.double()
    support = p > 0
    if bool((q[support] == 0).any()):
        return math.inf
    return float((p[support] * (p[support].log() - q[support].log())).sum())


@torch.no_grad()
def conditional_log_probs(policy: AutoregressivePolicy) -> list[torch.Tensor]:
    """``log pi(a | prefix)`` at every node of the generation tree: entry t is ``[2^t, 2]``, row p
    the prefix p of length t (in :func:`all_strings` order)."""
    L = policy.length
    logp = torch.log_softmax(policy.all_logits(all_strings(L, next(policy.parameters()).device)), -1).double()
    return [logp[torch.arange(2**t, device=logp.device) << (L - t), t] for t in range(L)]


def soft_values(rewards: torch.Tensor, ref_conditionals: list[torch.Tensor], beta: float) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Soft (KL-regularised) values on the generation tree, by backward induction.

    ``V(y) = R(y)`` at the leaves; ``Q(s, a) = V(s + a)`` (the transition is deterministic and
    pays nothing on the way); ``V(s) = beta log sum_a pi_ref(a|s) exp(Q(s, a) / beta)``. The
    soft-max replaces the max of the Bellman optimality equation; as ``beta -> 0`` it becomes the
    max. Returns ``(V, Q)``: ``V[t]`` is ``[2^t]`` (t = 0..L), ``Q[t]`` is ``[2^t, 2]`` (t < L).
    The optimal policy is ``pi_ref(a|s) exp((Q(s,a) - V(s)) / beta)`` and ``V[0] = beta log Z``.
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    L = len(ref_conditionals)
    if rewards.shape != (2**L,):
        raise ValueError(f"rewards must have shape [2^L] = [{2**L}], got {tuple(rewards.shape)}")
    V: list[torch.Tensor] = [torch.empty(0)] * (L + 1)
    Q: list[torch.Tensor] = [torch.empty(0)] * L
    V[L] = rewards.double()
    for t in range(L - 1, -1, -1):
        Q[t] = V[t + 1].view(2**t, 2)  # children of prefix p are 2p (append 0) and 2p + 1 (append 1)
        V[t] = beta * torch.logsumexp(ref_conditionals[t] + Q[t] / beta, dim=1)
    return V, Q


def policy_from_soft_q(V: list[torch.Tensor], Q: list[torch.Tensor], ref_conditionals: list[torch.Tensor], beta: float) -> torch.Tensor:
    """The distribution over strings of ``pi(a|s) = pi_ref(a|s) exp((Q(s,a) - V(s)) / beta)``, ``[2^L]``."""
    log_p = torch.zeros(1, dtype=torch.float64, device=V[0].device)
    for t, (q, ref) in enumerate(zip(Q, ref_conditionals)):
        step = ref + (q - V[t][:, None]) / beta  # [2^t, 2]
        log_p = (log_p[:, None] + step).reshape(-1)
    return log_p.exp()
