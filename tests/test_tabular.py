"""Behaviour tests for bitflip_lib.tabular: table sizes, value iteration, the Q-learning update."""
from __future__ import annotations

import pytest
import torch

from bitflip_lib.dqn import EpsilonSchedule
from bitflip_lib.tabular import (
    MAX_TABLE_ENTRIES,
    decode,
    distance_table,
    encode,
    greedy_actions,
    greedy_policy_success,
    new_table,
    next_states,
    optimal_q_table,
    q_error,
    q_learning,
    q_learning_update,
    table_size,
    value_iteration,
)


def test_table_size_counts_entries_and_bytes():
    size = table_size(3)
    assert size.entries == 8 * 8 * 3 and size.bytes == 4 * size.entries
    assert table_size(3, torch.float64).bytes == 8 * size.entries
    assert table_size(20).entries == 2**40 * 20
    assert table_size(20).gigabytes > 80_000  # about 88 TB


def test_new_table_shape_and_the_clear_error_for_large_n():
    q = new_table(3, device="cpu")
    assert q.shape == (8, 8, 3) and float(q.abs().sum()) == 0.0
    assert table_size(11).entries <= MAX_TABLE_ENTRIES < table_size(12).entries
    with pytest.raises(ValueError, match="network"):
        new_table(20)
    with pytest.raises(ValueError, match="entries"):
        new_table(12)


def test_encode_decode_round_trip_and_bit_order():
    bits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    codes = encode(bits)
    assert codes.tolist() == [1, 6]
    torch.testing.assert_close(decode(codes, 3), bits)
    all_codes = torch.arange(32)
    assert torch.equal(encode(decode(all_codes, 5)), all_codes)
    with pytest.raises(ValueError):
        decode(torch.tensor([8]), 3)


def test_next_states_flip_one_bit_and_distance_table():
    nxt = next_states(3, "cpu")
    assert nxt.shape == (8, 3)
    assert nxt[0].tolist() == [1, 2, 4] and nxt[5].tolist() == [4, 7, 1]
    dist = distance_table(3, "cpu")
    assert dist[0, 7] == 3 and dist[5, 5] == 0 and dist[1, 2] == 2


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.98, 1.0])
def test_value_iteration_equals_the_closed_form(n, gamma):
    q, sweeps = value_iteration(n, gamma, device="cpu")
    assert sweeps <= n + 2
    torch.testing.assert_close(q, optimal_q_table(n, gamma, device="cpu"), atol=1e-12, rtol=0)


def test_value_iteration_satisfies_the_bellman_optimality_equation_entry_by_entry():
    n, gamma = 3, 0.8
    q, _ = value_iteration(n, gamma, device="cpu")
    for s in range(8):
        for g in range(8):
            for a in range(n):
                if s == g:
                    assert q[s, g, a] == 0.0
                    continue
                s2 = s ^ (1 << a)
                expected = 1.0 if s2 == g else gamma * float(q[s2, g].max())
                assert float(q[s, g, a]) == pytest.approx(expected, abs=1e-12)


def test_q_learning_update_textbook_step():
    q = torch.zeros(4, 4, 2, dtype=torch.float64)
    q[3, 2] = torch.tensor([0.5, 0.25])
    s, g, a = torch.tensor([1, 0]), torch.tensor([2, 0]), torch.tensor([1, 0])
    # transition 1: state 1 --flip bit 1--> 3, goal 2, no reward; transition 2: 0 --bit 0--> 1, goal 0.
    td = q_learning_update(q, s, g, a, torch.tensor([0.0, 0.0]), torch.tensor([3, 1]), torch.tensor([False, False]), 0.5, 0.9)
    assert td.tolist() == pytest.approx([0.45, 0.0])
    assert float(q[1, 2, 1]) == pytest.approx(0.225)


def test_q_learning_update_does_not_bootstrap_from_the_goal():
    q = torch.ones(4, 4, 2, dtype=torch.float64)
    q_learning_update(q, torch.tensor([1]), torch.tensor([0]), torch.tensor([0]), torch.tensor([1.0]), torch.tensor([0]), torch.tensor([True]), 1.0, 0.9)
    assert float(q[1, 0, 0]) == pytest.approx(1.0)
    q_learning_update(q, torch.tensor([2]), torch.tensor([1]), torch.tensor([1]), torch.tensor([0.0]), torch.tensor([0]), torch.tensor([True]), 1.0, 0.9)
    assert float(q[2, 1, 1]) == pytest.approx(0.0)


def test_q_learning_update_averages_repeated_entries():
    q = torch.zeros(4, 4, 2, dtype=torch.float64)
    ones = torch.ones(2, dtype=torch.long)
    # The same (s, g, a) twice with targets 1 and 0: it moves by alpha * mean = 0.5 * 0.5.
    q_learning_update(q, ones, 0 * ones, 0 * ones, torch.tensor([1.0, 0.0]), torch.tensor([0, 2]), torch.tensor([True, False]), 0.5, 0.9)
    assert float(q[1, 0, 0]) == pytest.approx(0.25)


def test_greedy_actions_break_ties_at_random_and_follow_the_best():
    q = torch.zeros(4, 4, 2)
    gen = torch.Generator().manual_seed(0)
    acts = greedy_actions(q, torch.zeros(200, dtype=torch.long), torch.ones(200, dtype=torch.long), gen)
    assert set(acts.tolist()) == {0, 1}
    q[0, 1, 1] = 1.0
    acts = greedy_actions(q, torch.zeros(50, dtype=torch.long), torch.ones(50, dtype=torch.long), gen)
    assert acts.tolist() == [1] * 50


def test_greedy_policy_of_q_star_always_succeeds():
    q_star, _ = value_iteration(4, 0.9, device="cpu")
    assert greedy_policy_success(q_star, num_agents=256) == 1.0
    assert greedy_policy_success(torch.zeros(16, 16, 4, dtype=torch.float64), num_agents=256) < 1.0


def test_q_learning_converges_to_q_star_at_n3():
    result = q_learning(3, iterations=300, alpha=0.5, gamma=0.9, epsilon=1.0, seed=0, eval_every=50, device="cpu")
    errors = [h["max_error"] for h in result.history]
    assert errors[0] == pytest.approx(1.0)  # a zero table is off by Q* = 1 for a winning flip
    assert errors[-1] < 1e-3
    assert result.final["success_rate"] == 1.0
    assert q_error(result.q, result.q_star)[0] == pytest.approx(errors[-1])
    iterations, _ = result.curve("max_error")
    assert iterations[0] == 0 and iterations[-1] == 300


def test_q_learning_with_a_decaying_schedule_records_epsilon():
    schedule = EpsilonSchedule(start=1.0, end=0.2, decay=0.9)
    result = q_learning(2, iterations=40, epsilon=schedule, eval_every=20, eval_agents=64, device="cpu")
    eps = [h["epsilon"] for h in result.history]
    assert eps[0] == 1.0 and eps[-1] == pytest.approx(0.2)
    assert result.final["max_error"] < 0.05


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n=0),
        dict(n=3, alpha=0.0),
        dict(n=3, alpha=1.5),
        dict(n=3, gamma=0.0),
        dict(n=3, epsilon=2.0),
        dict(n=3, num_agents=0),
        dict(n=3, iterations=-1),
        dict(n=12),
    ],
)
def test_q_learning_bad_input(kwargs):
    with pytest.raises(ValueError):
        q_learning(**{"iterations": 1, **kwargs})


def test_value_iteration_bad_input():
    with pytest.raises(ValueError):
        value_iteration(3, 1.2)
    with pytest.raises(ValueError):
        value_iteration(0, 0.9)
    with pytest.raises(ValueError):
        value_iteration(3, 0.9, tol=-1.0)
    with pytest.raises(ValueError, match="shape"):
        q_learning_update(torch.zeros(4, 4, 2), torch.tensor([0]), torch.tensor([1, 2]), torch.tensor([0]), torch.tensor([0.0]), torch.tensor([1]), torch.tensor([False]), 0.5, 0.9)


@pytest.mark.gpu
def test_q_learning_runs_on_cuda():
    result = q_learning(3, iterations=300, eval_every=100, eval_agents=256, device="cuda")
    assert result.q.device.type == "cuda"
    assert result.final["max_error"] < 1e-3 and result.final["success_rate"] == 1.0
    q_star, _ = value_iteration(3, 0.9, device="cuda")
    torch.testing.assert_close(q_star.cpu(), optimal_q_table(3, 0.9, device="cpu"))
