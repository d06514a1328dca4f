"""Behaviour tests for bitflip_lib.diagnosis.analysis (chapters 5 and 6)."""
from __future__ import annotations

import math

import pytest
import torch

from bitflip_lib.config import make_config
from bitflip_lib.diagnosis import analysis
from bitflip_lib.diagnosis.analysis import (
    max_metric,
    metric_matrix,
    optimal_q_gap,
    quotient_size,
    rewarded_fraction,
    run_ablation,
    transfer_success,
)
from bitflip_lib.networks import HAR, MLP, har_greedy_is_optimal, har_greedy_margin, har_phi


class ConstantPhi(torch.nn.Module):
    """phi(differs, d) = differs * sign: a HAR whose greedy policy is perfect (sign > 0) or hopeless."""

    def __init__(self, sign: float) -> None:
        super().__init__()
        self.sign = torch.nn.Parameter(torch.tensor(sign))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., :1] * self.sign


def har_with_sign(sign: float) -> HAR:
    har = HAR(8)
    har.phi = ConstantPhi(sign)
    return har


def test_quotient_size_counts_distinct_pairs():
    assert quotient_size(1) == {"table": 4, "quotient": 1}
    assert quotient_size(1024)["table"] == 1024 * 2**2048  # exact, far beyond float range
    sizes = quotient_size(10)
    assert sizes["table"] == 2**10 * 2**10 * 10
    assert sizes["quotient"] == 19
    with pytest.raises(ValueError):
        quotient_size(0)


def test_optimal_q_gap_matches_closed_form():
    gamma = 0.9
    gap = optimal_q_gap(torch.tensor([1, 2, 5]), gamma)
    expected = torch.tensor([gamma**0 - gamma**2, gamma**1 - gamma**3, gamma**4 - gamma**6], dtype=torch.float64)
    assert torch.allclose(gap, expected)
    # far from the goal a gamma close to 1 keeps a much larger gap; near it, a smaller gamma does
    assert float(optimal_q_gap(500, 0.98)) < 0.01 * float(optimal_q_gap(500, 0.999))
    assert float(optimal_q_gap(2, 0.98)) > float(optimal_q_gap(2, 0.999))
    with pytest.raises(ValueError):
        optimal_q_gap(0, 0.9)
    with pytest.raises(ValueError):
        optimal_q_gap(3, 1.5)


def test_har_probes_read_phi_and_decide_optimality():
    good, bad = har_with_sign(1.0), har_with_sign(-1.0)
    values = har_phi(good, 8)
    assert values.shape == (8, 2)
    assert torch.all(values[:, 0] == 0) and torch.all(values[:, 1] == 1)
    assert har_greedy_margin(good, 8).shape == (7,)
    assert har_greedy_is_optimal(good, 8) and not har_greedy_is_optimal(bad, 8)
    with pytest.raises(ValueError):
        har_phi(MLP(4), 4)
    # They live beside the network, in one place (not re-exported by the diagnosis helpers).
    assert not hasattr(analysis, "har_phi")


def test_optimal_har_reaches_every_goal_at_any_size():
    results = transfer_success(har_with_sign(1.0), [5, 40], num_agents=64)
    assert set(results) == {5, 40}
    for stats in results.values():
        assert stats["success_rate"] == 1.0
        assert stats["mean_steps"] == pytest.approx(stats["mean_start_distance"])
    assert transfer_success(har_with_sign(-1.0), [6], num_agents=64)[6]["success_rate"] == 0.0


def test_rewarded_fraction_grows_with_hindsight():
    none = rewarded_fraction(12, "none", episodes=5, seed=1)
    future = rewarded_fraction(12, "future", episodes=5, seed=1)
    assert math.isnan(none["relabelled"]) and none["stored"] == none["played"]
    assert future["played"] == none["played"]  # same seed, same random play
    assert future["stored"] > 0.05 > none["stored"]
    assert 0.0 <= future["relabelled"] <= 1.0
    with pytest.raises(ValueError):
        rewarded_fraction(5, "bogus")
    with pytest.raises(ValueError):
        rewarded_fraction(5, "future", epsilon=0.5)


def test_run_ablation_uses_same_seeds_and_curves_line_up():
    base = make_config(n=4, arch="har", max_iterations=3, gradient_steps=2, batch_size=16,
                       num_eval_agents=16, early_stop=False, device="cpu")
    results = run_ablation(base, {"clip": {}, "no clip": {"clip_targets": False}}, seeds=(0, 1), verbose=False)
    assert list(results) == ["clip", "no clip"]
    assert [r.config.seed for r in results["no clip"]] == [0, 1]
    assert not results["no clip"][0].config.clip_targets
    iterations, values = metric_matrix(results["clip"], "mean_q")
    assert iterations.tolist() == [1, 2, 3] and values.shape == (2, 3)
    assert max_metric(results["clip"], "mean_q") == pytest.approx(float(values.max()))
    assert math.isnan(max_metric(results["clip"][0], "no_such_metric"))
    with pytest.raises(ValueError):
        run_ablation(base, {}, seeds=(0,))
