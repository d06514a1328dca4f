"""Training loop: smoke runs that must solve and must fail, determinism, callbacks, evaluation."""
import math

import pytest
import torch
from torch import nn

from bitflip_lib.config import make_config
from bitflip_lib.networks import make_network
from bitflip_lib.trainer import build_network, evaluate, train


class FlipFirstDifferingBit(nn.Module):
    """An optimal policy: Q is 1 on differing bits, 0 elsewhere."""

    def forward(self, state, goal):
        return (state != goal).float()


class AlwaysBitZero(nn.Module):
    def forward(self, state, goal):
        q = torch.zeros_like(state)
        q[:, 0] = 1
        return q


def test_evaluate_an_optimal_and_a_useless_policy():
    good = evaluate(FlipFirstDifferingBit(), 20, num_agents=256)
    assert good["success_rate"] == 1.0 and good["mean_distance"] == 0.0
    assert good["mean_steps"] == pytest.approx(good["mean_start_distance"])
    bad = evaluate(AlwaysBitZero(), 20, num_agents=256)
    assert bad["success_rate"] < 0.01  # only start-goal pairs differing in bit 0 alone succeed
    assert bad["mean_distance"] > 5


class PlainForward(nn.Module):
    """Wraps a network and hides its speed-up methods, so only ``forward`` is used."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, state, goal):
        return self.network(state, goal)


def test_uvfa_shortcuts_change_neither_evaluation_nor_a_training_run():
    torch.manual_seed(0)
    uvfa = make_network("uvfa", 8)
    assert evaluate(uvfa, 8, num_agents=512, seed=3) == pytest.approx(evaluate(PlainForward(uvfa), 8, num_agents=512, seed=3))
    config = make_config("writeup", n=8, arch="uvfa", her="writeup30", max_iterations=3, gradient_steps=4,
                         num_eval_agents=128, device="cpu")
    cpu = torch.device("cpu")
    fast = train(config, progress=False, network=build_network(config, cpu))
    plain = train(config, progress=False, network=PlainForward(build_network(config, cpu)))
    for a, b in zip(fast.history, plain.history, strict=True):
        assert a["success_rate"] == b["success_rate"] and a["mean_distance"] == b["mean_distance"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4) and a["mean_q"] == pytest.approx(b["mean_q"], rel=1e-4)


def test_learning_rate_schedule_falls_along_a_cosine_to_lr_end():
    config = make_config(n=5, arch="mlp", max_iterations=8, lr=1e-3, lr_end=1e-4, gradient_steps=2,
                         num_eval_agents=32, early_stop=False, device="cpu")
    lrs = [record["lr"] for record in train(config, progress=False).history]
    assert len(lrs) == 8 and all(a > b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] == pytest.approx(1e-4)
    assert lrs[3] == pytest.approx(1e-4 + 0.9e-3 * (1 + math.cos(math.pi * 4 / 8)) / 2)  # halfway: the mean
    constant = train(config.replace(lr_end=None), progress=False)
    assert "lr" not in constant.history[0]


@pytest.mark.slow
def test_her_har_solves_n10():
    result = train(make_config(n=10, arch="har", her="future", max_iterations=60), progress=False)
    result.assert_solved(within=60)
    assert result.final["success_rate"] >= 0.99
    assert result.stopped_by == "solved"


@pytest.mark.slow
def test_vanilla_uvfa_fails_n15_in_a_small_budget():
    config = make_config("writeup", n=15, arch="uvfa", her="none", max_iterations=40)
    result = train(config, progress=False)
    result.assert_not_solved()
    assert result.final["success_rate"] < 0.05
    assert result.history[-1]["rewards_seen"] < 40 * 16  # rewards are rare without HER


def test_same_seed_same_history_on_cpu():
    config = make_config(n=6, arch="mlp", her="future", max_iterations=4, gradient_steps=4, batch_size=32,
                         num_eval_agents=64, device="cpu")
    strip = lambda h: [{k: v for k, v in r.items() if k != "wall_seconds"} for r in h]  # noqa: E731
    a, b = train(config, progress=False), train(config, progress=False)
    assert strip(a.history) == strip(b.history)
    c = train(config.replace(seed=1), progress=False)
    assert strip(c.history) != strip(a.history)


def test_callback_sees_records_and_can_stop():
    seen = []

    def stop_at_three(record):
        seen.append(record)
        return record["iteration"] == 3

    result = train(make_config(n=5, arch="har", max_iterations=50, early_stop=False, gradient_steps=2,
                               num_eval_agents=32), callbacks=[stop_at_three], progress=False)
    assert result.iterations == 3 and result.stopped_by == "callback"
    assert [r["iteration"] for r in seen] == [1, 2, 3]
    assert {"success_rate", "loss", "mean_q", "epsilon", "rewards_seen"} <= set(seen[0])


def test_summary_is_json_ready():
    import json

    result = train(make_config(n=4, max_iterations=2, gradient_steps=1, num_eval_agents=16), progress=False)
    summary = json.loads(json.dumps(result.summary()))
    for key in ("n", "arch", "her", "seed", "iterations", "solved_at", "success_rate", "mean_distance",
                "wall_seconds", "device"):
        assert key in summary
    json.dumps(result.to_dict())


def test_solved_at_is_start_of_the_window():
    config = make_config(n=5, arch="har", max_iterations=30, solved_window=3, num_eval_agents=256)
    result = train(config, progress=False)
    result.assert_solved()
    rates = [h["success_rate"] for h in result.history]
    start = result.solved_at - 1
    assert all(r >= 0.99 for r in rates[start : start + 3])
    assert start == 0 or rates[start - 1] < 0.99


@pytest.mark.parametrize("eval_every", [1, 2])
def test_confirmed_at_is_the_iteration_that_completes_the_window(eval_every):
    # The write-up prints this moment ("early stopping at episode N", N from 0): its streak's last evaluation.
    config = make_config(n=5, arch="har", max_iterations=40, solved_window=4, num_eval_agents=256, eval_every=eval_every)
    result = train(config, progress=False)
    result.assert_solved()
    assert result.confirmed_at == result.solved_at + 3 * eval_every == result.iterations
    assert result.summary()["confirmed_at"] == result.confirmed_at
    evaluated = [h["iteration"] for h in result.history if "success_rate" in h]
    assert evaluated[-4] == result.solved_at and evaluated[-1] == result.confirmed_at


def test_unsolved_run_has_no_confirmed_at():
    result = train(make_config(n=12, arch="uvfa", her="none", max_iterations=2, gradient_steps=1,
                               num_eval_agents=16), progress=False)
    assert result.solved_at is None and result.confirmed_at is None


@pytest.mark.gpu
def test_training_on_cuda():
    result = train(make_config(n=8, arch="har", max_iterations=20, device="cuda"), progress=False)
    assert result.device.startswith("cuda")
    result.assert_solved()


def test_progress_bars_can_be_switched_off(monkeypatch, capsys):
    monkeypatch.setenv("BITFLIP_PROGRESS", "0")
    train(make_config(n=4, max_iterations=2, gradient_steps=1, num_eval_agents=16), progress=True)
    assert "it/s" not in capsys.readouterr().err
    monkeypatch.setenv("BITFLIP_PROGRESS", "1")
    train(make_config(n=4, max_iterations=2, gradient_steps=1, num_eval_agents=16, early_stop=False), progress=True)
    assert "n=4 har" in capsys.readouterr().err


def test_result_keeps_the_target_network_when_there_is_one():
    config = make_config(n=5, arch="mlp", max_iterations=3, early_stop=False, gradient_steps=2, num_eval_agents=16)
    result = train(config, progress=False)
    target = result.target_network
    assert target is not None and target is not result.network
    assert not any(p.requires_grad for p in target.parameters())
    # Polyak-averaged: close to the online weights but not equal after a few steps.
    online_w, target_w = result.network.body[0].weight, target.body[0].weight
    assert not torch.equal(online_w, target_w)
    assert train(make_config(n=5, arch="mlp", max_iterations=2, polyak=None, gradient_steps=1,
                             num_eval_agents=16), progress=False).target_network is None
