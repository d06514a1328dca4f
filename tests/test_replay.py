"""Replay buffer: ring-buffer overwrite, uniform sampling, errors."""
import pytest
import torch

from bitflip_lib.replay import ReplayBuffer, Transitions


def make(count, n=3, offset=0):
    s = torch.zeros(count, n)
    a = (torch.arange(count) + offset) % n
    s2 = s.clone()
    s2[torch.arange(count), a] = 1
    return Transitions.with_goals(s, a, s2, torch.ones(count, n))


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


def test_errors():
    with pytest.raises(RuntimeError, match="empty"):
        ReplayBuffer(3).sample(2)
    with pytest.raises(ValueError, match="n = 3"):
        ReplayBuffer(3).add(make(2, n=4))
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(3, capacity=0)
