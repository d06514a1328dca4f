"""Behaviour of the batched bit-flipping environment."""
import re

import pytest
import torch

from bitflip_lib import BitFlipEnv, goal_reached, hamming_distance, optimal_steps


def test_reset_draws_bits_and_never_starts_at_goal():
    env = BitFlipEnv(1, num_agents=512, seed=3)  # n = 1: half of the raw draws would start at the goal
    state, goal = env.reset()
    assert state.shape == goal.shape == (512, 1)
    assert state.dtype == torch.float32
    assert bool(((state == 0) | (state == 1)).all())
    assert not bool(goal_reached(state, goal).any())
    assert not bool(env.done.any())


def test_step_flips_one_bit_and_rewards_only_on_reaching_goal():
    env = BitFlipEnv(4, num_agents=2)
    env.reset(state=torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1.0]]), goal=torch.tensor([[1, 0, 0, 0], [0, 0, 1, 1.0]]))
    out = env.step(torch.tensor([0, 0]))
    assert out.state.tolist() == [[1, 0, 0, 0], [0, 1, 1, 1]]
    assert out.reward.tolist() == [1.0, 0.0]
    assert out.done.tolist() == [True, False]
    assert out.active.tolist() == [True, True]
    assert env.distance.tolist() == [0, 1]


def test_done_agents_are_masked_afterwards():
    env = BitFlipEnv(3, num_agents=2)
    env.reset(state=torch.zeros(2, 3), goal=torch.tensor([[1, 0, 0], [1, 1, 0.0]]))
    env.step(torch.tensor([0, 0]))  # agent 0 reaches its goal
    before = env.state.clone()
    out = env.step(torch.tensor([2, 1]))  # agent 1 reaches its goal; agent 0's flip is masked
    assert out.active.tolist() == [False, True]
    assert out.state[0].tolist() == before[0].tolist()
    assert out.reward.tolist() == [0.0, 1.0]  # no second reward for agent 0
    assert env.steps.tolist() == [1, 2]
    assert env.episode_over


def test_explicit_start_equal_to_goal_is_done_without_reward():
    env = BitFlipEnv(3, num_agents=1)
    env.reset(state=torch.ones(1, 3), goal=torch.ones(1, 3))
    assert env.done.tolist() == [True]
    out = env.step(torch.tensor([1]))
    assert out.reward.tolist() == [0.0] and out.active.tolist() == [False]
    assert env.state.tolist() == [[1, 1, 1]]


def test_episode_ends_after_n_steps():
    env = BitFlipEnv(5, num_agents=4, seed=1)
    env.reset()
    for _ in range(5):
        env.step(torch.zeros(4, dtype=torch.long))  # flipping bit 0 back and forth never finishes a distance >= 2
    assert env.t == 5 and env.episode_over
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(4, dtype=torch.long))


def test_incremental_distance_matches_recount():
    env = BitFlipEnv(16, num_agents=64, seed=7)
    env.reset()
    g = torch.Generator().manual_seed(0)
    for _ in range(16):
        env.step(torch.randint(0, 16, (64,), generator=g))
        assert torch.equal(env.distance, hamming_distance(env.state, env.goal))


def test_same_seed_same_episodes_and_large_n():
    a, b = BitFlipEnv(1024, 8, seed=5), BitFlipEnv(1024, 8, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a.reset(), b.reset()))
    assert not torch.equal(a.reset()[0], BitFlipEnv(1024, 8, seed=6).reset()[0])


def test_helpers():
    s = torch.tensor([[0, 1, 1, 0.0]])
    g = torch.tensor([[1, 1, 0, 0.0]])
    assert hamming_distance(s, g).tolist() == [2]
    assert optimal_steps(s, g).tolist() == [2]
    assert goal_reached(s, s).tolist() == [True]
    with pytest.raises(ValueError, match="same shape"):
        hamming_distance(s, g[:, :3])


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_bad_n_is_refused(n):
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        BitFlipEnv(n)


def test_bad_actions_are_refused_with_clear_messages():
    env = BitFlipEnv(4, num_agents=2)
    env.reset()
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        env.step(torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="shape"):
        env.step(torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="integer dtype"):
        env.step(torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="tensor"):
        env.step([0, 1])
    with pytest.raises(ValueError, match="zeros and ones"):
        env.reset(state=torch.full((2, 4), 2.0))


@pytest.mark.parametrize("kwargs, message", [
    ({"max_steps": True}, "max_steps must be an integer >= 1 or None (meaning n)"),  # was taken as 1 step
    ({"max_steps": 0}, "max_steps must be an integer >= 1 or None (meaning n)"),
    ({"max_steps": 2.5}, "max_steps must be an integer >= 1 or None (meaning n)"),
    ({"num_agents": 0}, "num_agents must be an integer >= 1"),
    ({"num_agents": True}, "num_agents must be an integer >= 1"),
    ({"num_agents": 4.0}, "num_agents must be an integer >= 1"),
    ({"seed": 1.5}, "seed must be an integer >= 0 and below 2**63 or None"),  # was a torch error
    ({"seed": -1}, "seed must be an integer >= 0 and below 2**63 or None"),
    ({"seed": False}, "seed must be an integer >= 0 and below 2**63 or None"),
    ({"seed": 2**64}, "seed must be an integer >= 0 and below 2**63 or None"),  # was "Overflow when unpacking long long"
])
def test_bad_constructor_arguments_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}, got {re.escape(repr(next(iter(kwargs.values()))))}$"):
        BitFlipEnv(5, **kwargs)


def test_a_generator_that_is_not_one_is_refused():
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got int"):
        BitFlipEnv(5, generator=0)


def test_reset_returns_copies_that_steps_do_not_change():
    env = BitFlipEnv(6, num_agents=8, seed=2)
    s, g = env.reset()
    start, goal = s.clone(), g.clone()
    out = env.step(torch.zeros(8, dtype=torch.long))
    assert torch.equal(s, start) and torch.equal(g, goal)  # the start is still the start
    assert not torch.equal(out.state, start)
    s[:] = 1 - s  # and writing into them does not change the environment
    g[:] = 0
    assert torch.equal(env.state, out.state) and torch.equal(env.goal, goal)
    assert torch.equal(env.distance, hamming_distance(env.state, env.goal))


def test_bad_starts_and_goals_are_refused_with_clear_messages():
    env = BitFlipEnv(4, num_agents=2)
    with pytest.raises(ValueError, match=re.escape("state must have shape [2, 4] (agents, bits), got (2, 3)")):
        env.reset(state=torch.zeros(2, 3))
    with pytest.raises(ValueError, match=re.escape("goal must have shape [2, 4] (agents, bits), got (4,)")):
        env.reset(goal=torch.zeros(4))
    with pytest.raises(TypeError, match=re.escape("state must be a torch tensor of shape [2, 4], got list")):
        env.reset(state=[[0, 0, 0, 0], [1, 1, 1, 1]])
    with pytest.raises(TypeError, match="goal must hold real zeros and ones"):
        env.reset(goal=torch.zeros(2, 4, dtype=torch.complex64))
    with pytest.raises(ValueError, match="state must contain only zeros and ones"):
        env.reset(state=torch.full((2, 4), float("nan")))
    state, goal = env.reset(state=torch.zeros(2, 4, dtype=torch.bool), goal=torch.ones(2, 4, dtype=torch.int64))
    assert state.dtype == goal.dtype == torch.float32 and env.distance.tolist() == [4, 4]
    with pytest.raises(ValueError, match=re.escape("actions must have shape [2] (one bit index per agent), got (2, 1)")):
        env.step(torch.zeros(2, 1, dtype=torch.long))
    with pytest.raises(TypeError, match="actions must have an integer dtype .*, got torch.bool"):
        env.step(torch.zeros(2, dtype=torch.bool))


@pytest.mark.gpu
def test_runs_on_cuda():
    env = BitFlipEnv(8, num_agents=4, device="cuda")
    state, goal = env.reset()
    assert state.is_cuda
    out = env.step(torch.zeros(4, dtype=torch.long, device="cuda"))
    assert out.reward.is_cuda
