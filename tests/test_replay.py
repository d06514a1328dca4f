"""Replay buffer: ring-buffer overwrite, uniform sampling, errors."""
import dataclasses
import re

import pytest
import torch

from bitflip_lib.replay import ReplayBuffer, Transitions


def make(count, n=3, offset=0):
    s = torch.zeros(count, n)
    a = (torch.arange(count) + offset) % n
    s2 = s.clone()
    s2[torch.arange(count), a] = 1
    return Transitions.with_goals(s, torch.ones(count, n), a, s2)


def test_add_wraps_and_keeps_newest():
    buf = ReplayBuffer(3, capacity=5)
    buf.add(make(4))
    assert len(buf) == 4
    buf.add(make(3, offset=4))  # 7 added, capacity 5
    assert len(buf) == 5 and buf.position == 2
    assert buf.action.tolist() == [(5) % 3, (6) % 3, 2, 0, (4) % 3]


def test_oversized_batch_keeps_the_last_capacity_items():
    buf = ReplayBuffer(3, capacity=4)
    buf.add(make(10))
    assert sorted(buf.action.tolist()) == sorted([(i % 3) for i in range(6, 10)])


def test_sample_uniform_and_float():
    buf = ReplayBuffer(3, capacity=100)
    buf.add(make(100))
    batch = buf.sample(3000, torch.Generator().manual_seed(0))
    assert batch.state.dtype == torch.float32 and batch.state.shape == (3000, 3)
    counts = torch.bincount(batch.action, minlength=3).float() / 3000
    assert torch.allclose(counts, torch.full((3,), 1 / 3), atol=0.04)


def test_sample_without_replacement_never_repeats_and_tiles_a_small_buffer():
    buf = ReplayBuffer(3, capacity=100)
    buf.add(make(100))
    generator = torch.Generator().manual_seed(0)
    batch = buf.sample(60, generator, replace=False)
    idx = torch.randperm(100, generator=torch.Generator().manual_seed(0))[:60]  # the draw it makes: 60 distinct slots
    assert len(set(idx.tolist())) == 60 and torch.equal(batch.action, buf.action[idx])
    # A batch larger than the buffer (the write-up's first iterations: 2048 from a few hundred):
    # every stored transition twice, then 50 distinct ones.
    small = ReplayBuffer(3, capacity=100)
    small.add(make(75))
    counts = torch.bincount(small.sample(200, generator, replace=False).action, minlength=3)
    stored = torch.bincount(small.action[:75], minlength=3)
    assert int(counts.sum()) == 200 and bool((counts >= 2 * stored).all()) and bool((counts <= 3 * stored).all())


def test_errors():
    with pytest.raises(RuntimeError, match="empty"):
        ReplayBuffer(3).sample(2)
    with pytest.raises(ValueError, match="n = 3"):
        ReplayBuffer(3).add(make(2, n=4))
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(3, capacity=0)


@pytest.mark.parametrize("args, message", [
    ((0,), "n must be an integer >= 1 (the number of bits), got 0"),  # ReplayBuffer(0) was accepted
    ((True,), "n must be an integer >= 1 (the number of bits), got True"),
    ((3.0,), "n must be an integer >= 1 (the number of bits), got 3.0"),
    ((3, True), "capacity must be an integer >= 1 (transitions kept), got True"),
    ((3, 2.5), "capacity must be an integer >= 1 (transitions kept), got 2.5"),
])
def test_bad_buffer_sizes_are_refused_by_name(args, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ReplayBuffer(*args)


@pytest.mark.parametrize("size", [-1, 0, 2.0, True])
def test_bad_sample_sizes_are_refused_by_name(size):
    buf = ReplayBuffer(3)
    buf.add(make(4))
    with pytest.raises(ValueError, match=f"^batch_size must be an integer >= 1, got {re.escape(repr(size))}$"):
        buf.sample(size)  # sample(-1) was torch's 'Trying to create tensor with negative dimension'


def test_badly_shaped_transitions_are_refused_before_anything_is_written():
    buf = ReplayBuffer(3, capacity=8)
    good = make(4)
    with pytest.raises(ValueError, match=re.escape("transitions' reward must have shape [4] (one per transition), got (3,)")):
        buf.add(dataclasses.replace(good, reward=good.reward[:3]))
    with pytest.raises(ValueError, match=re.escape("transitions' goal must have shape [4, 3], got (4, 1)")):
        buf.add(dataclasses.replace(good, goal=good.goal[:, :1]))
    with pytest.raises(TypeError, match="action must have an integer dtype"):
        buf.add(dataclasses.replace(good, action=good.action.float()))
    with pytest.raises(TypeError, match="add\\(\\) takes a Transitions batch, got tuple"):
        buf.add((good.state, good.action))
    assert len(buf) == 0 and buf.position == 0
    buf.add(make(0))  # an empty batch is fine
    assert len(buf) == 0
