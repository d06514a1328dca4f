"""The memory a run needs, and whether this machine has it: checked before anything is built.

Sizes past the machine (n = 10^9, a buffer of 10^12 transitions, 10^9 evaluation agents, hidden
layers 200,000 wide) used to end in an allocator's traceback, some only after minutes of training.
The estimates here add up the big tensors each kind of run holds at its peak, from its settings
alone; :func:`check_memory` refuses a run that needs more than the memory available, with the
estimate, what is available and the setting to lower. They are rough, within a factor of about
two: meant to refuse what cannot fit, not to plan what can. Every estimate of the course is here:
the DQN training loop (:func:`training_memory`, used by ``train``, sweeps and ``bitflip train``),
chapter 8's generators (:func:`generation_memory`) and the Gymnasium vector environment
(:func:`vector_env_memory`); the callers only translate their settings into these arguments.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = [
    "available_memory", "check_memory", "forward_floats", "format_bytes", "generation_memory",
    "MemoryEstimate", "NotEnoughMemory", "Part", "training_memory", "vector_env_memory",
]

FLOAT = 4  # bytes of a float32
INDEX = 8  # bytes of an int64


@dataclass(frozen=True)
class Part:
    """One big piece of a run's memory: what it is, its size, and the setting that sizes it most
    (``field=value``, e.g. ``buffer_capacity=32768``), the one to lower if it does not fit."""

    what: str
    bytes: int
    setting: str


@dataclass(frozen=True)
class MemoryEstimate:
    """The big tensors of a run at its peak, part by part."""

    what: str
    """What needs the memory, e.g. ``'this run'``."""
    parts: tuple[Part, ...]

    @property
    def total(self) -> int:
        return sum(part.bytes for part in self.parts)

    @property
    def largest(self) -> Part:
        return max(self.parts, key=lambda part: part.bytes)

    def describe(self) -> str:
        """``'2.3 GB: replay buffer 0.5 GB, episode 0.8 GB, ...'``, largest part first."""
        parts = sorted(self.parts, key=lambda part: -part.bytes)
        return f"{format_bytes(self.total)}: " + ", ".join(f"{p.what} {format_bytes(p.bytes)}" for p in parts)


class NotEnoughMemory(ValueError):
    """A run that needs more memory than this machine has available (the message says how much of
    each, and which settings to lower)."""


def format_bytes(count: float) -> str:
    """``'512 MB'``, ``'2.3 GB'``, ``'98.3 TB'``, ``'2,910 TB'``, ``'2.9e+07 TB'``."""
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20)):
        if count >= size:
            value = count / size
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}" if value < 1e6 else f"{value:.2g} {unit}"
    return f"{math.ceil(count / 2**20)} MB"


def available_memory(device: torch.device) -> tuple[int | None, str]:
    """``(bytes, where)``: the memory a new run can take on ``device`` now, and where that figure
    comes from. On a GPU the free device memory (``torch.cuda.mem_get_info``); on the CPU
    ``MemAvailable`` of ``/proc/meminfo`` (Linux), else the free pages ``os.sysconf`` reports.
    ``(None, ...)`` where the figure is unknown (then nothing is refused)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free, f"free on {device}"
    if device.type != "cpu":
        return None, f"unknown on {device}"
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available in RAM"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free in RAM"
    except (AttributeError, OSError, ValueError):
        return None, "unknown"


def check_memory(estimate: MemoryEstimate, device: torch.device) -> None:
    """Raise :class:`NotEnoughMemory` if ``estimate`` exceeds the memory available on ``device``."""
    available, where = available_memory(device)
    if available is None or estimate.total <= available:
        return
    largest = estimate.largest
    raise NotEnoughMemory(
        f"{estimate.what} needs about {format_bytes(estimate.total)} of memory, most of it the {largest.what} "
        f"({format_bytes(largest.bytes)}), but about {format_bytes(available)} is {where}: lower {largest.setting}")


class _CountOutputs(TorchDispatchMode):
    """Counts the elements of every new tensor the operations under it create (views excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            self.elements += sum(t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor))
        return out


def forward_floats(network: nn.Module, n: int) -> int:
    """The numbers one row's forward pass through ``network`` creates at n bits (its activations),
    counted on the ``meta`` device: nothing is computed or allocated, whatever n is. ``network``
    must be on the meta device too (build it under ``with torch.device('meta')``)."""
    state = torch.zeros(1, n, device="meta")
    counter = _CountOutputs()
    with torch.no_grad(), counter:
        network(state, state)
    return counter.elements


def _namer(settings: dict[str, object]):
    """``named('batch_size', 'n')``: ``'batch_size=256'``: of the settings a part grows with (those
    given a value in ``settings``), the largest, the one most likely set past the machine."""
    def size(value: object) -> float:
        return sum(value) if isinstance(value, tuple) else float(value)

    def named(*keys: str) -> str:
        key = max((key for key in keys if key in settings), key=lambda key: size(settings[key]))
        value = settings[key]
        return f"{key}=({', '.join(map(str, value))})" if isinstance(value, tuple) else f"{key}={value}"
    return named


def _parameters(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


def training_memory(*, n: int, steps: int, agents: int, relabel_copies: int, capacity: int, batch_size: int,
                    eval_agents: int, network: nn.Module, target_network: bool, evaluate_at: Sequence[int] = (),
                    settings: dict[str, object]) -> MemoryEstimate:
    """What a DQN training run holds at its peak (:func:`bitflip_lib.trainer.train`).

    Args:
        n, steps, agents: bits, episode length and training agents (one episode each per iteration).
        relabel_copies: transitions HER adds per step played (k, 1 or 0).
        capacity, batch_size, eval_agents: the replay buffer's transitions, a gradient step's batch,
            the agents of each greedy evaluation.
        network: the Q-network, built on the meta device.
        target_network: whether a Polyak target network is kept beside it.
        evaluate_at: other numbers of bits the trained network is evaluated at afterwards.
        settings: the value of each setting named in the parts (``{"buffer_capacity": 32768, ...}``).
    """
    named = _namer(settings)
    played = agents * steps
    named_transitions = played * (1 + relabel_copies)
    per_row = forward_floats(network, n) * FLOAT
    parameters = _parameters(network)
    parts = [
        # uint8 bits of state, goal and next state; action int64; reward, done float32; a study's step count
        Part("replay buffer", capacity * (3 * n + INDEX + 3 * FLOAT), named("buffer_capacity", "n")),
        # the played states as uint8, listed and then stacked; the environment's float32 state and goal
        Part("episode", 2 * (steps + 1) * agents * n + 4 * agents * n * FLOAT, named("num_train_agents", "n")),
        # HER's named transitions (indices and draws), then the newest the buffer keeps, copied out
        Part("relabelled transitions", named_transitions * 8 * INDEX
             + min(named_transitions, capacity) * (4 * n + INDEX + 2 * FLOAT),
             named("k", "num_train_agents", "n")),
        # a sampled batch as float32 bits, and the activations of the forward, backward and target passes
        Part("training batch", batch_size * (3 * n * FLOAT + 3 * per_row), named("batch_size", "n")),
        # the evaluation agents' states, goals and copies, and one greedy forward pass over all of them
        Part("evaluation", eval_agents * (6 * n * FLOAT + per_row), named("num_eval_agents", "n")),
        # weights, gradients and Adam's (AMSGrad's) three moments, and the target network's copy
        Part("network", parameters * FLOAT * (5 + int(target_network)), named("hidden", "n")),
    ]
    for other in sorted(set(evaluate_at) - {n}):
        parts.append(Part(f"evaluation at n = {other}", eval_agents * (6 * other * FLOAT + forward_floats(network, other)
                                                                        * FLOAT), f"evaluate_at={other}"))
    return MemoryEstimate("this run", tuple(parts))


def generation_memory(*, length: int, condition_length: int, hidden: Sequence[int], batch_size: int,
                      eval_samples: int, exact: bool, num_pairs: int, settings: dict[str, object]) -> MemoryEstimate:
    """What a chapter 8 generator's training holds at its peak (:mod:`bitflip_lib.generation.training`).

    Args:
        length, condition_length, hidden: the autoregressive policy's L, instruction bits and widths.
        batch_size, eval_samples: strings per step and per evaluation.
        exact: whether every one of the 2^L strings is enumerated at each evaluation.
        num_pairs: preference pairs kept (dpo; 0 otherwise).
        settings: the value of each setting named in the parts.
    """
    named = _namer(settings)
    width = 3 * length + condition_length
    per_position = (width + sum(hidden) + 2) * FLOAT  # one position's input, hidden layers and logits
    widths = [width, *hidden, 2]
    parameters = sum(a * b + b for a, b in zip(widths, widths[1:]))
    parts = [
        # every position of every string at once (teacher forcing), kept for the backward pass
        Part("training batch", 3 * batch_size * length * per_position * (2 if num_pairs else 1),
             named("batch_size", "length")),
        Part("evaluation", eval_samples * (per_position + length * FLOAT)
             + (2**length * length * per_position if exact else 0), named("eval_samples", "length")),
        # the policy, its frozen reference copy, gradients and Adam's two moments
        Part("policy", parameters * FLOAT * 5, named("hidden", "length")),
    ]
    if num_pairs:
        parts.append(Part("preference pairs", num_pairs * length * (2 * FLOAT + per_position), named("num_pairs", "length")))
    return MemoryEstimate("this run", tuple(parts))


def vector_env_memory(num_envs: int, n: int) -> MemoryEstimate:
    """What :class:`bitflip_lib.lab.gym_env.BitFlipVectorEnv` holds: float32 states, goals and a
    flipped copy, the int8 observations handed out, the batched spaces' bounds, per-agent counters."""
    return MemoryEstimate("the vector environment", (
        Part("agents' bits", num_envs * n * (4 * FLOAT + 3 + 6), f"num_envs={num_envs}"),
        Part("agents' counters", num_envs * 4 * INDEX, f"num_envs={num_envs}"),
    ))
