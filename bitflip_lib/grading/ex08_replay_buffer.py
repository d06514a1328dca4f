"""Checks for exercise 8: the replay buffer.

The student writes ``class ReplayBuffer`` with ``__init__(n, capacity, device)``, ``__len__``,
``add(transitions)`` (circular: the newest ``capacity`` transitions are kept) and
``sample(batch_size, generator) -> Transitions`` (uniform with replacement over the filled
slots, drawn with the given generator on the buffer's device). Reference:
:class:`bitflip_lib.replay.ReplayBuffer`.

Every stored transition carries its own number (its state's bits; its action is the number
modulo n), so a check can tell exactly which transitions a sample came from.
"""
from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping

import torch

from bitflip_lib.config import TrainConfig, make_config
from bitflip_lib.grading.examples import N, numbered_transitions, numbers_of
from bitflip_lib.grading.helpers import devices, expect, expect_tensor, generator
from bitflip_lib.grading.plugged import train_with
from bitflip_lib.grading.model import Check, Exercise
from bitflip_lib.lab.runs import best_success
from bitflip_lib.trainer import TrainResult

def _buffer(ns: Mapping, capacity: int, device="cpu", n: int = N):
    buffer = ns["ReplayBuffer"](n, capacity, device)
    expect(len(buffer) == 0, f"a new buffer should have len() 0, got {len(buffer)}")
    return buffer


def _draw(buffer, count: int, seed: int = 0, device="cpu") -> torch.Tensor:
    return numbers_of(buffer.sample(count, generator(seed, device)))


def check_empty(ns: Mapping) -> str:
    buffer = _buffer(ns, 8)
    try:
        buffer.sample(4, generator(0))
    except (RuntimeError, ValueError):
        return "empty at the start; sampling it raises a clear error"
    raise AssertionError("sampling an empty buffer should raise RuntimeError (or ValueError) saying it is empty")


def check_stores(ns: Mapping) -> str:
    buffer = _buffer(ns, 16)
    buffer.add(numbered_transitions(range(1, 6)))
    expect(len(buffer) == 5, f"after adding 5 transitions, len(buffer) should be 5, got {len(buffer)}")
    batch = buffer.sample(64, generator(1))
    for name, shape, dtype in (("state", (64, N), torch.float32), ("goal", (64, N), torch.float32),
                               ("next_state", (64, N), torch.float32), ("action", (64,), torch.long),
                               ("reward", (64,), torch.float32), ("done", (64,), torch.float32)):
        expect_tensor(getattr(batch, name), f"sample(64).{name}", shape=shape, dtype=dtype)
    ids = numbers_of(batch)
    expect(set(ids.tolist()) <= set(range(1, 6)),
           f"sampled transitions that were never added (numbers {sorted(set(ids.tolist()) - set(range(1, 6)))}): "
           "sample only the filled slots, indices 0 ... size - 1")
    return "returns only what was added, as float bits and long actions"


def check_wraps(ns: Mapping) -> str:
    buffer = _buffer(ns, 8)
    buffer.add(numbered_transitions(range(1, 6)))
    buffer.add(numbered_transitions(range(6, 12)))  # 11 transitions into 8 slots
    expect(len(buffer) == 8, f"a buffer of capacity 8 holding 11 transitions should have len() 8, got {len(buffer)}")
    seen = set(_draw(buffer, 4000, seed=2).tolist())
    newest = set(range(4, 12))
    expect(not seen & {1, 2, 3}, f"the oldest transitions {sorted(seen & {1, 2, 3})} are still sampled: once full, each new "
           "transition overwrites the oldest (slot (position + k) % capacity)")
    expect(seen == newest, f"after 11 transitions into 8 slots the buffer should hold numbers 4 ... 11, but samples came from "
           f"{sorted(seen)}")
    return "once full, the newest overwrite the oldest"


def check_big_batch(ns: Mapping) -> str:
    buffer = _buffer(ns, 4)
    buffer.add(numbered_transitions(range(1, 11)))  # more than the capacity in one call
    expect(len(buffer) == 4, f"adding 10 transitions to a buffer of capacity 4 should leave len() 4, got {len(buffer)}")
    seen = set(_draw(buffer, 2000, seed=3).tolist())
    expect(seen == {7, 8, 9, 10}, f"adding 10 transitions at once to 4 slots should keep the newest 4 (numbers 7 ... 10), got {sorted(seen)}")
    return "a batch larger than the buffer keeps its newest part"


def _uniform(ids: torch.Tensor, support: list[int], what: str) -> None:
    counts = torch.bincount(ids, minlength=max(support) + 1).float()
    expected = len(ids) / len(support)
    off = [i for i in support if abs(float(counts[i]) - expected) > 0.15 * expected]
    expect(not off, f"{what}: each of the {len(support)} stored transitions should be drawn about {expected:.0f} times in "
           f"{len(ids)}, but {off} were drawn {[int(counts[i]) for i in off]} times")


def check_uniform(ns: Mapping) -> str:
    buffer = _buffer(ns, 16)
    buffer.add(numbered_transitions(range(1, 11)))  # 10 of 16 slots filled
    _uniform(_draw(buffer, 20_000, seed=4), list(range(1, 11)), "a buffer with 10 of 16 slots filled")
    wrapped = _buffer(ns, 8)
    wrapped.add(numbered_transitions(range(1, 12)))  # full, write position in the middle
    wrapped.add(numbered_transitions(range(12, 15)))
    _uniform(_draw(wrapped, 20_000, seed=5), list(range(7, 15)),
             "a full buffer whose write position has wrapped around (sample all size slots, not 0 ... position - 1)")
    return "uniform over exactly the filled slots, before and after wrapping"


def check_generator(ns: Mapping) -> str:
    buffer = _buffer(ns, 32)
    buffer.add(numbered_transitions(range(1, 33)))
    state_before = torch.random.get_rng_state()
    first, again = _draw(buffer, 256, seed=6), _draw(buffer, 256, seed=6)
    other = _draw(buffer, 256, seed=7)
    expect(torch.equal(torch.random.get_rng_state(), state_before),
           "sample() used torch's global random generator: draw the indices with the generator passed in")
    expect(torch.equal(first, again), "two samples with generators seeded alike differ: draw with the generator you are given")
    expect(not torch.equal(first, other), "samples with differently seeded generators are identical: draw with the generator you are given")
    return "draws with the given generator only (reproducible)"


def check_device(ns: Mapping) -> str:
    for device in devices():
        buffer = _buffer(ns, 16, device)
        buffer.add(numbered_transitions(range(1, 9), device=device))
        buffer.add(numbered_transitions(range(9, 13)))  # transitions from the CPU are moved to the buffer's device
        batch = buffer.sample(32, generator(8, device))
        for name in ("state", "goal", "action", "reward", "next_state", "done"):
            expect_tensor(getattr(batch, name), f"sample(32).{name} from a buffer on {device}", device=device)
        expect(set(numbers_of(batch).tolist()) <= set(range(1, 13)), f"on {device}: sampled transitions that were never added")
    return "storage and sampling on " + ", ".join(d.type for d in devices())


def _row_keys(batch) -> list[bytes]:  # noqa: ANN001
    """One key per transition: its bits, action, reward and done."""
    bits = torch.cat([batch.state, batch.goal, batch.next_state], dim=1).detach().to("cpu").round().to(torch.uint8)
    rest = torch.stack([batch.action.detach().to("cpu", torch.float64), batch.reward.detach().to("cpu", torch.float64),
                        batch.done.detach().to("cpu", torch.float64)], dim=1)
    return [b.tobytes() + r.tobytes() for b, r in zip(bits.numpy(), rest.numpy())]


class CheckedBuffer:
    """The student's buffer during training, beside a record of what was stored: every sampled
    transition must be one of the newest ``capacity`` transitions added."""

    def __init__(self, student_class, n: int, capacity: int, device) -> None:  # noqa: ANN001
        self.inner = student_class(n, capacity, device)
        self.capacity, self.n = capacity, n
        self.stored: Counter = Counter()
        self.order: deque = deque()
        self.samples = 0

    def __len__(self) -> int:
        return len(self.inner)

    def add(self, batch) -> None:  # noqa: ANN001
        self.inner.add(batch)
        for key in _row_keys(batch)[-self.capacity:]:
            self.order.append(key)
            self.stored[key] += 1
            if len(self.order) > self.capacity:
                old = self.order.popleft()
                self.stored[old] -= 1

    def sample(self, batch_size: int, generator=None):  # noqa: ANN001, ANN201
        self.samples += 1
        batch = self.inner.sample(batch_size, generator)
        when = f"during training (sample {self.samples})"
        for name, width in (("state", self.n), ("goal", self.n), ("next_state", self.n), ("action", None),
                            ("reward", None), ("done", None)):
            value = getattr(batch, name, None)
            expect_tensor(value, f"{when}: sample({batch_size}).{name}", shape=(batch_size, width) if width else (batch_size,))
        unknown = sum(self.stored[key] <= 0 for key in _row_keys(batch))
        expect(not unknown, f"{when}: {unknown} of {batch_size} sampled transitions are not among those stored in the buffer")
        return batch


def train_with_buffer(config: TrainConfig, buffer_class: type) -> TrainResult:
    """The library's :func:`~bitflip_lib.trainer.train` with ``buffer_class`` as its replay buffer."""
    return train_with(config, buffer_class=buffer_class)


def check_training(ns: Mapping) -> str:
    config = make_config(n=20, arch="har", her="future", max_iterations=40, seed=0)
    result = train_with_buffer(config, lambda n, capacity, device: CheckedBuffer(ns["ReplayBuffer"], n, capacity, device))
    expect(result.solved_at is not None, f"HER + HAR with your replay buffer should solve n = 20 within {config.max_iterations} "
           f"iterations; best success rate {best_success(result):.3f}")
    return f"HAR with it solves n = 20 at iteration {result.solved_at}"


EXERCISE = Exercise(
    name="ex08_replay_buffer",
    title="The replay buffer",
    required=("ReplayBuffer",),
    references=("bitflip_lib.replay:ReplayBuffer",),
    checks=(
        Check("empty at the start", check_empty),
        Check("stores what was added", check_stores),
        Check("wraps around when full", check_wraps),
        Check("a batch larger than the buffer", check_big_batch),
        Check("uniform over the filled slots", check_uniform),
        Check("uses the generator it is given", check_generator),
        Check("lives on the device", check_device),
        Check("DQN with it learns (end to end)", check_training, timeout=240.0, slow=True),
    ),
)
