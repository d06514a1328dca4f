"""bitflip_lib.diagnosis.failures: trajectories, cycles, action rules, margins and effective rank."""
import pytest
import torch
from torch import nn

from bitflip_lib.diagnosis.failures import (
    compare_rules,
    describe_trajectories,
    effective_rank,
    hidden_features,
    pairs_at_distance,
    play_greedy,
    probe_batch,
    right_move_rate,
    right_move_rate_by_bit,
    wrong_move_margins,
)
from bitflip_lib.networks import make_network


class Oracle(nn.Module):
    """Q = 1 on the bits that differ from the goal, 0 elsewhere: always a right flip."""

    def forward(self, state, goal):
        return (state != goal).float()


class AlwaysBitZero(nn.Module):
    """Prefers bit 0 whatever the state: a flip and its undo, forever."""

    def forward(self, state, goal):
        q = torch.zeros_like(state)
        q[:, 0] = 1.0
        return q


class Flat(nn.Module):
    def forward(self, state, goal):
        return torch.zeros_like(state)


def test_oracle_succeeds_everywhere_without_cycles():
    played = play_greedy(Oracle(), 12, 256, seed=3)
    report = describe_trajectories(played)
    assert report["success_rate"] == 1.0 and report["failures"] == 0 and report["cycling"] == 0
    assert wrong_move_margins(Oracle(), played, 0.9)["wrong_moves"] == 0
    # Distances fall by one per step until the goal and then stay at 0.
    d = played["distance"]
    assert bool(((d[:-1] - d[1:]) == (d[:-1] > 0).long()).all())


def test_a_policy_that_undoes_its_flip_cycles_with_length_two():
    n = 8
    played = play_greedy(AlwaysBitZero(), n, 64, seed=0)
    report = describe_trajectories(played)
    start = played["distance"][0]
    # Only agents one flip of bit 0 away from their goal succeed.
    one_away = (start == 1) & (played["states"][0][:, 0] != played["goal"][:, 0])
    assert report["failures"] == int((~one_away).sum())
    assert report["cycling"] == report["failures"]
    assert report["cycle_length_mean"] == 2.0
    # Half the failing agents' moves lead away from the goal.
    assert report["wrong_flip_fraction_failing"] == pytest.approx(0.5, abs=0.02)


def test_tie_break_and_epsilon_break_the_loop_argmax_keeps():
    n, agents = 6, 256
    argmax = describe_trajectories(play_greedy(Flat(), n, agents, seed=1))
    ties = describe_trajectories(play_greedy(Flat(), n, agents, seed=1, rule="tie_break", tolerance=0.0))
    assert argmax["cycle_length_mean"] == 2.0  # every row ties, argmax always takes bit 0
    assert ties["success_rate"] > argmax["success_rate"]  # a random walk reaches some goals
    report = compare_rules(Flat(), n, agents, seed=1, tolerances=(0.0,), epsilons=(0.5,))
    assert set(report) == {"argmax", "tie_break 0", "epsilon 0.5"}
    assert report["argmax"] == argmax


def test_same_seed_same_agents_for_every_network():
    a = play_greedy(Oracle(), 10, 32, seed=5)
    b = play_greedy(Flat(), 10, 32, seed=5)
    assert torch.equal(a["states"][0], b["states"][0]) and torch.equal(a["goal"], b["goal"])


def test_margins_measure_a_clear_misranking():
    n = 10
    played = play_greedy(AlwaysBitZero(), n, 64, seed=2)
    margins = wrong_move_margins(AlwaysBitZero(), played, 0.9)
    assert margins["wrong_moves"] > 0
    assert margins["margin_mean"] == pytest.approx(1.0)  # Q(bit 0) = 1 against 0 for every right flip


def test_effective_rank():
    assert effective_rank(torch.eye(100)) == 99  # 99 of 100 equal singular values carry 99%
    low = torch.randn(500, 3) @ torch.randn(3, 64)
    assert effective_rank(low) <= 3
    assert effective_rank(torch.zeros(10, 4)) == 0
    with pytest.raises(ValueError, match="batch, width"):
        effective_rank(torch.ones(3))


def test_hidden_features_of_an_mlp_and_refusals():
    torch.manual_seed(0)
    mlp = make_network("mlp", 7)
    state, goal = probe_batch(7, size=32)
    assert hidden_features(mlp, state, goal).shape == (32, 256)
    with pytest.raises(TypeError, match="MLP"):
        hidden_features(make_network("har", 7), state, goal)
    with pytest.raises(ValueError, match="rule must be one of"):
        play_greedy(mlp, 7, 4, rule="softmax")


def test_pairs_at_distance_and_right_move_rates():
    g = torch.Generator().manual_seed(0)
    state, goal = pairs_at_distance(9, 3, 200, g, must_differ=4)
    assert bool(((state != goal).sum(1) == 3).all()) and bool((state[:, 4] != goal[:, 4]).all())
    assert right_move_rate(Oracle(), 9, [1, 5, 9]) == {1: 1.0, 5: 1.0, 9: 1.0}
    # Always flipping bit 0 is right exactly when bit 0 differs: d/n of the pairs at distance d.
    rates = right_move_rate(AlwaysBitZero(), 10, [1, 5, 10], count=4000)
    assert rates[10] == 1.0 and rates[1] == pytest.approx(0.1, abs=0.02) and rates[5] == pytest.approx(0.5, abs=0.03)
    by_bit = right_move_rate_by_bit(AlwaysBitZero(), 6, distance=1, count=16)
    assert by_bit == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # the one bit this policy sees
    with pytest.raises(ValueError, match="distance must be in"):
        pairs_at_distance(5, 0, 3, g)
