"""Training configuration: one dataclass with documented defaults, and named presets.

* ``default``: the best settings this project has found (HER ``future`` k = 4, 32 gradient
  steps of batch 256 per iteration, Polyak 0.05, gamma ``max(0.98, 1 - 1/n)``).
* ``writeup``: the settings of the code that made the write-up's Table 1 (Chau's public
  repository, louis845/BitSeqRLToyProblem): gamma 0.9, Adam with AMSGrad lr 1e-3, Polyak 0.01,
  5 gradient steps of batch 2048 drawn without replacement per iteration, epsilon x0.999 per
  gradient step, its 30% HER variant (``writeup30``), hidden layers 128 x 128 with GELU for HAR's
  phi and the MLP, raw Hamming distance into HAR, solved = 100 evaluations in a row at 1.00.
* ``writeup_v1``: the course's first reading of the write-up, kept because its whole grid was
  run with it: the same as ``writeup`` except batch 256 drawn with replacement, HAR's phi
  2 -> 64 -> 64 -> 1 with ReLU, the MLP 256 wide, and HER relabelling every transition of a
  picked trajectory (``writeup30-whole``).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Real
from typing import ClassVar

import torch

from bitflip_lib.dqn import EPS_SCHEDULES, LOSSES, DQNLearner
from bitflip_lib.env import MAX_SEED
from bitflip_lib.her import HER_STRATEGIES
from bitflip_lib.networks import ACTIVATIONS, ARCHITECTURES
from bitflip_lib.runtime.device import device_problem

__all__ = [
    "check_choice", "check_integer", "check_number", "default_gamma", "make_config", "MAX_SEED", "PRESETS",
    "refuse", "TrainConfig",
]



def default_gamma(n: int) -> float:
    """The discount used when none is given: ``max(0.98, 1 - 1/n)``, so that gamma^n, the value of
    a goal n flips away, does not vanish as n grows (chapter 6)."""
    return max(0.98, 1.0 - 1.0 / n)


def refuse(name: str, value: object, allowed: str, wrong_type: bool = False) -> None:
    """Raise the settings' one ``ValueError``: ``{name} must be {allowed}, got {value!r}`` (and its
    type, when that is what is wrong). :func:`~bitflip_lib.options.refusal` rewrites it into the
    command line's words."""
    kind = type(value).__name__
    kind = f" (a{'n' if kind[0] in 'aeiou' else ''} {kind})" if wrong_type else ""
    raise ValueError(f"{name} must be {allowed}, got {value!r}{kind}")


def check_integer(settings: object, name: str, low: int, high: int | None = None, none: str | None = None) -> None:
    """Field ``name`` of ``settings`` is an integer in [low, high] (or None, when ``none`` says what None means)."""
    value = getattr(settings, name)
    if value is None and none is not None:
        return
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not is_int or value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" + ("" if high is None else f" and below 2**{high.bit_length()}")
        refuse(name, value, f"{allowed} or {none}" if none else allowed, wrong_type=not is_int)


def check_number(settings: object, name: str, ok: Callable[[float], bool], allowed: str, none: str | None = None) -> None:
    """Field ``name`` of ``settings`` is a real number for which ``ok`` holds (NaN never does)."""
    value = getattr(settings, name)
    if value is None and none is not None:
        return
    is_number = isinstance(value, Real) and not isinstance(value, bool)
    if not is_number or not ok(value):  # NaN fails every comparison
        refuse(name, value, f"{allowed} or {none}" if none else allowed, wrong_type=not is_number)


def check_choice(settings: object, name: str, options: tuple[str, ...], what: str) -> None:
    """Field ``name`` of ``settings`` is one of ``options`` (``what``: what the field chooses)."""
    value = getattr(settings, name)
    if not isinstance(value, str) or value not in options:
        refuse(name, value, f"one of {', '.join(options)} ({what})", wrong_type=not isinstance(value, str))


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run. One ``seed`` controls environment, exploration,
    network initialisation and replay sampling.

    Checked once, when made (``ValueError`` naming the field, the value and what is allowed), and
    frozen: :meth:`replace` makes a checked copy with some fields changed.
    """

    learner_class: ClassVar[type[DQNLearner]] = DQNLearner
    """The learner :func:`~bitflip_lib.trainer.train` builds (a study's settings, a subclass of
    this class, may name a subclass of it: see :mod:`bitflip_lib.lab.studies`)."""

    n: int = 10
    """Number of bits."""
    arch: str = "har"
    """Q-network: ``uvfa`` (write-up), ``mlp`` (HER paper), ``har`` (handcrafted), ``deepsets``
    (permutation-equivariant, not told the distance)."""
    her: str = "future"
    """HER strategy: ``none`` (vanilla DQN), ``final``, ``future``, ``episode``, or the write-up's
    30% variant ``writeup30`` (``writeup30-whole``: the course's first reading of it); see
    :mod:`bitflip_lib.her`."""
    k: int = 4
    """New goals per transition for ``future`` and ``episode``."""
    seed: int = 0
    """Seed of every random draw of the run (an integer >= 0)."""
    gamma: float | None = None
    """Discount; ``None`` picks ``max(0.98, 1 - 1/n)`` so that gamma^n does not vanish at large n."""
    lr: float = 1e-3
    """Adam learning rate, in (0, 1] (Adam moves each weight by about lr per step)."""
    lr_end: float | None = None
    """If set, the learning rate falls from ``lr`` to ``lr_end`` along a cosine over the
    ``max_iterations`` budget (updated once per iteration); ``None`` keeps it constant."""
    amsgrad: bool = True
    """Use the AMSGrad variant of Adam (the write-up did)."""
    polyak: float | None = 0.05
    """Fraction tau of the Polyak target update; ``None`` disables the target network."""
    clip_targets: bool = True
    """Clip TD targets to [0, 1]."""
    loss: str = "mse"
    """``mse`` or ``huber`` (:data:`bitflip_lib.dqn.LOSSES`)."""
    double_dqn: bool = False
    """Double DQN targets: the online network picks the next action, the target network values it."""
    batch_size: int = 256
    """Transitions per gradient step, drawn from the replay buffer."""
    batch_without_replacement: bool = False
    """Draw each batch's transitions without replacement (the write-up's code; a batch larger than
    the buffer then holds every stored transition as often as it fits, and the rest drawn
    without replacement); False draws with replacement."""
    gradient_steps: int = 32
    """Gradient steps per iteration (K); 0 plays and stores without learning."""
    buffer_capacity: int = 2**15
    """Transitions the replay buffer keeps (the oldest are overwritten)."""
    num_train_agents: int = 16
    """Agents playing one training episode each per iteration."""
    num_eval_agents: int = 1024
    """Fresh agents for the greedy evaluation after each iteration."""
    max_steps: int | None = None
    """Episode length limit; ``None`` means n."""
    max_iterations: int = 3000
    """Iteration budget: training stops after this many iterations if not before."""
    max_seconds: float | None = None
    """Wall-clock budget; training stops after the iteration that exceeds it."""
    eval_every: int = 1
    """Evaluate after every this many iterations."""
    solved_threshold: float = 0.99
    """Greedy success rate that counts as solved."""
    solved_window: int = 5
    """Consecutive evaluations at or above the threshold needed to call the task solved."""
    early_stop: bool = True
    """Stop as soon as the task is solved."""
    eps_start: float = 1.0
    """Exploration rate epsilon at the first iteration."""
    eps_end: float = 0.1
    """The floor epsilon decays to."""
    eps_decay: float = 0.999
    """Multiplicative decay of epsilon per gradient step (the write-up's schedule)."""
    eps_schedule: str = "exponential"
    """``exponential``, ``linear`` (over ``eps_decay_steps``) or ``constant``."""
    eps_decay_steps: int = 10_000
    """Gradient steps over which the ``linear`` schedule goes from ``eps_start`` to ``eps_end``."""
    hidden: tuple[int, ...] | None = None
    """Hidden widths: MLP default (256,), HAR's phi and DeepSets' per-bit head default (64, 64);
    UVFA uses its 128-d embedding."""
    activation: str = "relu"
    """Activation of the hidden layers of the MLP, HAR's phi and DeepSets: ``relu`` or ``gelu``
    (the write-up's code); the UVFA's encoders always use GELU, as the write-up's."""
    har_normalize_distance: bool = True
    """HAR sees distance / n (True) or the raw distance (False)."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``...: a device this machine can
    compute on (``meta``, or ``cuda`` without a GPU, is refused)."""
    preset: str = field(default="default", compare=False)
    """Name of the preset this configuration came from (informational)."""

    def __post_init__(self) -> None:
        self.validate()

    @property
    def effective_gamma(self) -> float:
        """The discount the run uses: ``gamma``, or :func:`default_gamma` of n when it is None."""
        return self.gamma if self.gamma is not None else default_gamma(self.n)

    def validate(self) -> None:
        """Check every field once, here, so that the layers below can trust them.

        Raises ``ValueError`` naming the field, the value it got and what is allowed.
        """
        for name in ("n", "k", "batch_size", "buffer_capacity", "num_train_agents", "num_eval_agents",
                     "max_iterations", "eval_every", "solved_window", "eps_decay_steps"):
            check_integer(self, name, low=1)
        check_integer(self, "gradient_steps", low=0)  # 0: no learning at all, a baseline
        check_integer(self, "seed", low=0, high=MAX_SEED)
        check_integer(self, "max_steps", low=1, none="None for n")
        check_choice(self, "arch", ARCHITECTURES, "the Q-network architecture")
        check_choice(self, "her", HER_STRATEGIES, "the HER strategy")
        check_choice(self, "loss", LOSSES, "the TD loss")
        check_choice(self, "activation", ACTIVATIONS, "the hidden layers' activation")
        check_choice(self, "eps_schedule", EPS_SCHEDULES, "the epsilon schedule")
        check_choice(self, "preset", tuple(PRESETS), "the preset")
        check_number(self, "gamma", lambda x: 0 < x <= 1, "a number in (0, 1]", none="None for max(0.98, 1 - 1/n)")
        check_number(self, "lr", lambda x: 0 < x <= 1, "a number in (0, 1] (Adam moves each weight by about lr a step)")
        check_number(self, "lr_end", lambda x: 0 < x <= self.lr, f"a number in (0, lr = {self.lr}]", none="None for a constant rate")
        check_number(self, "polyak", lambda x: 0 < x <= 1, "a number in (0, 1]", none="None for no target network")
        check_number(self, "max_seconds", lambda x: 0 < x < math.inf, "a finite number > 0", none="None for no time limit")
        check_number(self, "solved_threshold", lambda x: 0 <= x <= 1, "a number in [0, 1]")
        for name in ("eps_start", "eps_end"):
            check_number(self, name, lambda x: 0 <= x <= 1, "a number in [0, 1]")
        check_number(self, "eps_decay", lambda x: 0 < x <= 1, "a number in (0, 1] (the factor applied per gradient step)")
        for name in ("amsgrad", "clip_targets", "double_dqn", "early_stop", "har_normalize_distance",
                     "batch_without_replacement"):
            if not isinstance(getattr(self, name), bool):
                refuse(name, getattr(self, name), "True or False", wrong_type=True)
        if self.double_dqn and self.polyak is None:
            raise ValueError("double_dqn=True needs a target network to value the online network's choice, and "
                             "polyak=None has none (it would be plain DQN): keep the target network or drop double DQN")
        hidden = self.hidden
        if hidden is not None and (not isinstance(hidden, (tuple, list))
                                   or not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden)):
            refuse("hidden", hidden, "a tuple of layer widths, each an integer >= 1, e.g. (256,), or None for the "
                    "architecture's default", wrong_type=not isinstance(hidden, (tuple, list)))
        problem = device_problem(self.device)
        if problem is not None:
            refuse("device", self.device, f"'auto' (CUDA when available) or a torch device such as 'cpu' that this "
                    f"machine can compute on ({problem})", wrong_type=not isinstance(self.device, (str, torch.device)))

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# The write-up's code (louis845/BitSeqRLToyProblem at 925dc9f), which made the numbers of its
# Table 1; tests/test_config.py pins each value with the file and line it comes from.
_WRITEUP_CODE = {
    "her": "writeup30",
    "gamma": 0.9,
    "lr": 1e-3,
    "amsgrad": True,
    "polyak": 0.01,
    "clip_targets": True,
    "loss": "mse",
    "batch_size": 2048,
    "batch_without_replacement": True,
    "gradient_steps": 5,
    "buffer_capacity": 2**15,
    "num_train_agents": 16,
    "num_eval_agents": 1024,
    "max_iterations": 3000,
    "solved_threshold": 1.0,
    "solved_window": 100,
    "eps_start": 1.0,
    "eps_end": 0.1,
    "eps_decay": 0.999,
    "hidden": (128, 128),
    "activation": "gelu",
    "har_normalize_distance": False,
}

PRESETS: dict[str, dict] = {
    "default": {},
    "writeup": _WRITEUP_CODE,
    "writeup_v1": {**_WRITEUP_CODE, "her": "writeup30-whole", "batch_size": 256, "batch_without_replacement": False,
                   "hidden": None, "activation": "relu"},
}
"""Named settings (see the module docstring); :func:`make_config` starts from one of them."""


def make_config(preset: str = "default", **overrides) -> TrainConfig:
    """A :class:`TrainConfig` from a named preset (a key of :data:`PRESETS`), with fields overridden.

    ``her="preset"`` asks for the preset's own HER strategy.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown configuration field(s): {', '.join(sorted(unknown))}")
    values = {**PRESETS[preset], **overrides, "preset": preset}
    if values.get("her") == "preset":
        values["her"] = PRESETS[preset].get("her", TrainConfig.her)
    return TrainConfig(**values)
