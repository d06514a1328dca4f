"""Behaviour tests for bitflip_lib.theory: exact random-walk probabilities and the closed-form Q*."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from bitflip_lib.env import BitFlipEnv
from bitflip_lib.theory import (
    distance_distribution,
    expected_rewarded_transitions,
    log_random_success_probability,
    log_success_probability_from_distance,
    optimal_q,
    optimal_value,
    random_success_probability,
    success_probability_from_distance,
)


def brute_force_success(n: int, steps: int) -> tuple[float, dict[int, float]]:
    """Enumerate every (start, goal) pair with start != goal and every sequence of random flips."""
    total, per_distance, count = 0.0, {}, {}
    sequences = list(itertools.product(range(n), repeat=steps))
    for s in range(2**n):
        for g in range(2**n):
            if s == g:
                continue
            hits = 0
            for seq in sequences:
                state = s
                for a in seq:
                    state ^= 1 << a
                    if state == g:
                        hits += 1
                        break
            p = hits / len(sequences)
            total += p
            d = bin(s ^ g).count("1")
            per_distance[d] = per_distance.get(d, 0.0) + p
            count[d] = count.get(d, 0) + 1
    pairs = 2**n * (2**n - 1)
    return total / pairs, {d: per_distance[d] / count[d] for d in per_distance}


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 30])
def test_distance_distribution_is_binomial_conditioned_on_a_nonzero_distance(n):
    p = distance_distribution(n)
    assert p.shape == (n + 1,)
    assert p[0] == 0.0
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    expected = np.array([math.comb(n, d) for d in range(n + 1)], dtype=np.float64)
    expected[0] = 0.0
    np.testing.assert_allclose(p, expected / expected.sum(), rtol=1e-10)


@pytest.mark.parametrize("n,steps", [(1, 1), (2, 2), (3, 3), (3, 5), (4, 4), (4, 2)])
def test_random_success_matches_brute_force_enumeration(n, steps):
    overall, per_distance = brute_force_success(n, steps)
    assert random_success_probability(n, steps) == pytest.approx(overall, rel=1e-10)
    for d, p in per_distance.items():
        assert success_probability_from_distance(n, d, steps) == pytest.approx(p, rel=1e-10, abs=1e-15)


def test_default_steps_is_n_and_small_cases_by_hand():
    assert random_success_probability(3) == random_success_probability(3, 3)
    assert random_success_probability(1) == pytest.approx(1.0)  # the only flip reaches the goal
    assert random_success_probability(2) == pytest.approx(0.5)
    # n = 2 from distance 1: the right flip first (1/2); a wrong flip leads to distance 2, from where
    # the next flip surely returns to 1 and the one after succeeds with 1/2 (needs 3 steps).
    assert success_probability_from_distance(2, 1, 2) == pytest.approx(0.5)
    assert success_probability_from_distance(2, 1, 3) == pytest.approx(0.5 + 0.5 * 1.0 * 0.5)


def test_boundary_cases_of_the_random_walk():
    assert success_probability_from_distance(10, 0, 0) == 1.0
    assert success_probability_from_distance(10, 3, 0) == 0.0
    assert success_probability_from_distance(10, 3, 2) == 0.0  # needs at least 3 flips
    assert success_probability_from_distance(10, 3, 3) == pytest.approx(3 / 10 * 2 / 10 * 1 / 10)
    assert random_success_probability(5, 0) == 0.0


def test_vectorised_distances_match_scalar_calls():
    ds = np.arange(0, 9)
    vec = success_probability_from_distance(8, ds, 12)
    assert isinstance(vec, np.ndarray) and vec.shape == (9,)
    for d in ds:
        assert vec[d] == pytest.approx(success_probability_from_distance(8, int(d), 12))
    torch_vec = success_probability_from_distance(8, torch.arange(9), 12)
    np.testing.assert_allclose(torch_vec, vec)


def test_monotone_in_steps_and_decreasing_in_distance():
    n = 12
    ds = np.arange(n + 1)
    previous = np.zeros(n + 1)
    for steps in range(0, 3 * n):
        current = success_probability_from_distance(n, ds, steps)
        assert np.all(current >= previous - 1e-15)
        previous = current
    at_n = success_probability_from_distance(n, ds, n)
    assert np.all(np.diff(at_n) <= 1e-15)


def test_success_probability_collapses_exponentially_with_n():
    ps = [random_success_probability(n) for n in range(1, 41)]
    assert all(b < a for a, b in zip(ps, ps[1:]))
    ratios = [b / a for a, b in zip(ps[19:], ps[20:])]  # n = 20..40
    assert max(ratios) < 0.6  # at least a constant factor lost per extra bit


def test_log_versions_stay_finite_to_n_1024():
    lp = log_random_success_probability(1024)
    assert math.isfinite(lp) and lp < -1000 * math.log(2) * 0.9
    assert random_success_probability(1024) == pytest.approx(math.exp(lp), rel=1e-6, abs=0.0)
    ld = log_success_probability_from_distance(1024, np.array([1, 512, 1024]))
    assert np.all(np.isfinite(ld)) and np.all(np.diff(ld) < 0)
    assert math.exp(log_random_success_probability(20)) == pytest.approx(random_success_probability(20))


def test_agrees_with_simulating_random_agents_in_the_environment():
    n, agents = 4, 20_000
    env = BitFlipEnv(n, agents, seed=123, device="cpu")
    env.reset()
    gen = torch.Generator().manual_seed(7)
    while not env.episode_over:
        env.step(torch.randint(0, n, (agents,), generator=gen))
    estimate = float(env.done.float().mean())
    p = random_success_probability(n)
    assert abs(estimate - p) < 4 * math.sqrt(p * (1 - p) / agents)


def test_expected_rewarded_transitions():
    p = random_success_probability(10)
    assert expected_rewarded_transitions(10, 3000) == pytest.approx(3000 * 16 * p)
    assert expected_rewarded_transitions(10, 100, agents=4, steps=20) == pytest.approx(400 * random_success_probability(10, 20))
    assert expected_rewarded_transitions(10, 0) == 0.0
    assert expected_rewarded_transitions(50, 3000) < 1e-6 < expected_rewarded_transitions(10, 3000)
    with pytest.raises(ValueError):
        expected_rewarded_transitions(10, -1)


def test_optimal_q_closed_form():
    assert optimal_q(1, True, 0.9) == pytest.approx(1.0)
    assert optimal_q(1, False, 0.9) == pytest.approx(0.81)
    assert optimal_q(4, True, 0.9) == pytest.approx(0.9**3)
    assert optimal_q(4, False, 0.9) == pytest.approx(0.9**5)
    arr = optimal_q(np.array([1, 2, 3]), np.array([True, False, True]), 0.5)
    np.testing.assert_allclose(arr, [1.0, 0.125, 0.25])
    t = optimal_q(torch.tensor([2, 3]), torch.tensor([True, False]), 0.5)
    assert isinstance(t, torch.Tensor)
    torch.testing.assert_close(t, torch.tensor([0.5, 0.0625], dtype=torch.float64))
    # The best action is always to flip a differing bit, by a margin that shrinks like gamma^d.
    for d in range(1, 20):
        assert optimal_q(d, True, 0.98) > optimal_q(d, False, 0.98)


def test_optimal_value():
    assert optimal_value(0, 0.9) == 0.0
    assert optimal_value(1, 0.9) == pytest.approx(1.0)
    assert optimal_value(5, 0.9) == pytest.approx(0.9**4)
    np.testing.assert_allclose(optimal_value(np.array([0, 1, 2]), 0.5), [0.0, 1.0, 0.5])
    torch.testing.assert_close(optimal_value(torch.tensor([0, 3]), 0.5), torch.tensor([0.0, 0.25], dtype=torch.float64))
    # V*(d) = max over actions of Q*(d, a)
    for d in range(1, 10):
        assert optimal_value(d, 0.7) == pytest.approx(max(optimal_q(d, True, 0.7), optimal_q(d, False, 0.7)))


@pytest.mark.parametrize(
    "call",
    [
        lambda: random_success_probability(0),
        lambda: random_success_probability(2.5),
        lambda: random_success_probability(5, steps=-1),
        lambda: distance_distribution(0),
        lambda: success_probability_from_distance(5, 6),
        lambda: success_probability_from_distance(5, -1),
        lambda: success_probability_from_distance(5, 1.5),
        lambda: optimal_q(0, True, 0.9),
        lambda: optimal_q(torch.tensor([0, 1]), torch.tensor([True, True]), 0.9),
        lambda: optimal_q(2, True, 0.0),
        lambda: optimal_q(2, True, 1.5),
        lambda: optimal_value(-1, 0.9),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()
