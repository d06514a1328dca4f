"""Advantage learning (``action_gap``): the best action's target unchanged, every other one lowered
by alpha times its shortfall, and the fixed point's gap widened by 1 / (1 - alpha)."""
import json

import pytest
import torch

from bitflip_lib.cli import main as cli_main
from bitflip_lib.config import make_config
from bitflip_lib.dqn import DQNLearner, td_target
from bitflip_lib.lab.runs import describe_overrides
from bitflip_lib.lab.studies import StudyLearner, make_run_config
from bitflip_lib.networks import MLP, taken_action_values
from bitflip_lib.replay import Transitions
from bitflip_lib.trainer import train


def random_batch(n=6, size=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    state = torch.randint(0, 2, (size, n), generator=g).float()
    goal = torch.randint(0, 2, (size, n), generator=g).float()
    action = torch.randint(0, n, (size,), generator=g)
    next_state = state.clone()
    next_state[torch.arange(size), action] = 1 - next_state[torch.arange(size), action]
    done = (next_state == goal).all(1)
    return Transitions(state, goal, action, done.float(), next_state, done)


def test_target_is_plain_minus_alpha_times_the_shortfall_and_the_best_action_keeps_its_target():
    torch.manual_seed(0)
    batch, gamma, alpha = random_batch(), 0.9, 0.6
    plain = DQNLearner(MLP(6, hidden=(16,)), gamma=gamma)
    widened = StudyLearner(MLP(6, hidden=(16,)), gamma=gamma, action_gap=alpha)
    widened.online.load_state_dict(plain.online.state_dict())
    widened.target.load_state_dict(plain.target.state_dict())
    with torch.no_grad():
        base = td_target(batch.reward, batch.done, plain.target(batch.next_state, batch.goal), gamma, True, None)
        here = plain.target(batch.state, batch.goal)
        shortfall = here.max(1).values - taken_action_values(plain.target, batch.state, batch.goal, batch.action)
    expected = (base - alpha * shortfall).clamp(0, 1)
    assert float(plain.update(batch)["mean_target"]) == pytest.approx(float(base.mean()), rel=1e-6)
    assert float(widened.update(batch)["mean_target"]) == pytest.approx(float(expected.mean()), rel=1e-6)
    best = shortfall == 0  # the taken action is the target network's own choice: target unchanged
    assert 0 < int(best.sum()) < len(batch)
    assert torch.equal(expected[best], base[best])
    lowered = ~best & (base > 0)  # (a target already at 0 stays at the clip's floor)
    assert int(lowered.sum()) > 100 and bool((expected[lowered] < base[lowered]).all())


def test_zero_alpha_is_plain_dqn_step_for_step():
    batch = random_batch(seed=1)
    torch.manual_seed(1)
    a = DQNLearner(MLP(6, hidden=(16,)), gamma=0.9)
    torch.manual_seed(1)
    b = StudyLearner(MLP(6, hidden=(16,)), gamma=0.9, action_gap=0.0)
    for _ in range(3):
        assert float(a.update(batch)["loss"]) == float(b.update(batch)["loss"])


def bellman_fixed_point(n, gamma, alpha, sweeps=2000):
    """Iterate the advantage-learning operator on the exact bit-flip values, indexed by distance:
    ``right[d]`` for a flip of a wrong bit (to d - 1), ``wrong[d]`` for a flip of a right bit (to d + 1)."""
    right, wrong = torch.zeros(n + 1, dtype=torch.float64), torch.zeros(n + 1, dtype=torch.float64)
    for _ in range(sweeps):
        v = torch.maximum(right, wrong)
        v[0] = 0.0  # the goal is terminal
        new_right, new_wrong = torch.zeros_like(right), torch.zeros_like(wrong)
        for d in range(1, n + 1):
            new_right[d] = (1.0 if d == 1 else gamma * v[d - 1]) - alpha * (v[d] - right[d])
            if d < n:
                new_wrong[d] = gamma * v[d + 1] - alpha * (v[d] - wrong[d])
        right, wrong = new_right, new_wrong
    return right, wrong


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.75])
def test_fixed_point_keeps_the_optimal_values_and_widens_the_gap_by_one_over_one_minus_alpha(alpha):
    n, gamma = 8, 0.9
    right, wrong = bellman_fixed_point(n, gamma, alpha)
    d = torch.arange(1, n, dtype=torch.float64)
    assert torch.allclose(right[1:n], gamma ** (d - 1))  # V* unchanged: the greedy policy stays optimal
    true_gap = gamma ** (d - 1) - gamma ** (d + 1)
    assert torch.allclose(right[1:n] - wrong[1:n], true_gap / (1 - alpha))


def test_training_is_seeded_differs_from_plain_and_is_named(capsys):
    config = make_config(n=8, arch="mlp", max_iterations=6, early_stop=False, gradient_steps=4, num_eval_agents=64)
    a = train(make_run_config(**{**config.to_dict(), "action_gap": 0.5}), progress=False)
    b = train(make_run_config(**{**config.to_dict(), "action_gap": 0.5}), progress=False)
    c = train(config, progress=False)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert [h["mean_target"] for h in a.history] != [h["mean_target"] for h in c.history]
    assert describe_overrides({"action_gap": 0.5}) == "advantage learning alpha 0.5"


def test_cli_flag_reaches_the_configuration_and_refuses_alpha_one(tmp_path, capsys):
    out = tmp_path / "run.json"
    code = cli_main(["train", "--n", "5", "--arch", "mlp", "--max-iterations", "2", "--action-gap", "0.5", "--quiet",
                     "--save", str(out)])
    assert code in (0, None)
    record = json.loads(out.read_text())
    assert record["config"]["action_gap"] == 0.5 and record["overrides"]["action_gap"] == 0.5
    assert cli_main(["train", "--n", "5", "--action-gap", "1"]) == 2
    assert "--action-gap must be a number in [0, 1)" in capsys.readouterr().err
