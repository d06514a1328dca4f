"""Training configuration: one dataclass with documented defaults, and named presets.

* ``default``: the best settings this project has found (HER ``future`` k = 4, 32 gradient
  steps of batch 256 per iteration, Polyak 0.05, gamma ``max(0.98, 1 - 1/n)``).
* ``writeup``: the write-up's set-up (gamma 0.9, Adam with AMSGrad lr 1e-3, Polyak 0.01,
  5 gradient steps per iteration, its 30% HER variant, early stop after 100 evaluations at 1.00,
  raw Hamming distance into HAR). The write-up does not state its batch size; 256 is used.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from bitflip_lib.her import HER_STRATEGIES
from bitflip_lib.networks import ARCHITECTURES


@dataclass
class TrainConfig:
    """Everything that defines one training run. One ``seed`` controls environment, exploration,
    network initialisation and replay sampling."""

    n: int = 10
    """Number of bits."""
    arch: str = "har"
    """Q-network: ``uvfa`` (write-up), ``mlp`` (HER paper), ``har`` (handcrafted)."""
    her: str = "future"
    """HER strategy: ``none`` (vanilla DQN), ``final``, ``future``, ``episode``, ``seed30``."""
    k: int = 4
    """New goals per transition for ``future`` and ``episode``."""
    seed: int = 0
    gamma: float | None = None
    """Discount; ``None`` picks ``max(0.98, 1 - 1/n)`` so that gamma^n does not vanish at large n."""
    lr: float = 1e-3
    """Adam learning rate."""
    lr_end: float | None = None
    """If set, the learning rate falls from ``lr`` to ``lr_end`` along a cosine over the
    ``max_iterations`` budget (updated once per iteration); ``None`` keeps it constant."""
    amsgrad: bool = True
    polyak: float | None = 0.05
    """Fraction tau of the Polyak target update; ``None`` disables the target network."""
    clip_targets: bool = True
    """Clip TD targets to [0, 1]."""
    loss: str = "mse"
    """``mse`` or ``huber``."""
    double_dqn: bool = False
    batch_size: int = 256
    gradient_steps: int = 32
    """Gradient steps per iteration (K)."""
    buffer_capacity: int = 2**15
    num_train_agents: int = 16
    """Agents playing one training episode each per iteration."""
    num_eval_agents: int = 1024
    """Fresh agents for the greedy evaluation after each iteration."""
    max_steps: int | None = None
    """Episode length limit; ``None`` means n."""
    max_iterations: int = 3000
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
    eps_end: float = 0.1
    eps_decay: float = 0.999
    """Multiplicative decay of epsilon per gradient step (the write-up's schedule)."""
    eps_schedule: str = "exponential"
    """``exponential``, ``linear`` (over ``eps_decay_steps``) or ``constant``."""
    eps_decay_steps: int = 10_000
    hidden: tuple[int, ...] | None = None
    """Hidden widths: MLP default (256,), HAR default (64, 64); UVFA uses its 128-d embedding."""
    har_normalize_distance: bool = True
    """HAR sees distance / n (True) or the raw distance (False)."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``..."""
    preset: str = field(default="default", compare=False)
    """Name of the preset this configuration came from (informational)."""

    def __post_init__(self) -> None:
        self.validate()

    @property
    def effective_gamma(self) -> float:
        return self.gamma if self.gamma is not None else max(0.98, 1.0 - 1.0 / self.n)

    def validate(self) -> None:
        """Raise ``ValueError`` with a clear message on any impossible setting."""
        def integer(name: str, low: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")

        integer("n", 1)
        for name in ("k", "batch_size", "buffer_capacity", "num_train_agents", "num_eval_agents", "eval_every", "solved_window"):
            integer(name, 1)
        integer("gradient_steps", 0)
        integer("max_iterations", 0)
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}: choose one of {', '.join(ARCHITECTURES)}")
        if self.her not in HER_STRATEGIES:
            raise ValueError(f"unknown HER strategy {self.her!r}: choose one of {', '.join(HER_STRATEGIES)}")
        if self.gamma is not None and not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1] (or None for automatic), got {self.gamma}")
        if self.polyak is not None and not 0.0 < self.polyak <= 1.0:
            raise ValueError(f"polyak must be in (0, 1] (or None for no target network), got {self.polyak}")
        if not 0.0 <= self.solved_threshold <= 1.0:
            raise ValueError(f"solved_threshold must be in [0, 1], got {self.solved_threshold}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.lr_end is not None and not 0 < self.lr_end <= self.lr:
            raise ValueError(f"lr_end must be in (0, lr = {self.lr}] (or None for a constant rate), got {self.lr_end}")
        if self.loss not in ("mse", "huber"):
            raise ValueError(f"unknown loss {self.loss!r}: use 'mse' or 'huber'")

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict] = {
    "default": {},
    "writeup": {
        "her": "seed30",
        "gamma": 0.9,
        "lr": 1e-3,
        "amsgrad": True,
        "polyak": 0.01,
        "clip_targets": True,
        "loss": "mse",
        "batch_size": 256,
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
        "har_normalize_distance": False,
    },
}


def make_config(preset: str = "default", **overrides) -> TrainConfig:
    """A :class:`TrainConfig` from a named preset (``default`` or ``writeup``), with fields overridden."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown configuration field(s): {', '.join(sorted(unknown))}")
    values = {**PRESETS[preset], **overrides, "preset": preset}
    return TrainConfig(**values)
