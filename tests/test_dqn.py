"""TD targets, clipping, Polyak averaging, epsilon-greedy and the learner's gradient step."""
import pytest
import torch
from torch import nn

from bitflip_lib.dqn import LOSSES, DQNLearner, EpsilonSchedule, epsilon_greedy, polyak_update, td_target
from bitflip_lib.networks import MLP
from bitflip_lib.replay import Transitions


def test_td_target_arithmetic_and_clipping():
    reward = torch.tensor([0.0, 1.0, 0.0, 0.0])
    done = torch.tensor([0.0, 1.0, 0.0, 0.0])
    next_q = torch.tensor([[0.5, 0.2], [9.0, 9.0], [3.0, 2.0], [-4.0, -5.0]])
    unclipped = td_target(reward, done, next_q, gamma=0.9, clip=False)
    assert torch.allclose(unclipped, torch.tensor([0.45, 1.0, 2.7, -3.6]))
    clipped = td_target(reward, done, next_q, gamma=0.9, clip=True)
    assert torch.allclose(clipped, torch.tensor([0.45, 1.0, 1.0, 0.0]))


def test_td_target_double_dqn_uses_the_given_action():
    next_q = torch.tensor([[0.1, 0.8], [0.6, 0.3]])
    y = td_target(torch.zeros(2), torch.zeros(2), next_q, 0.5, next_action=torch.tensor([0, 0]))
    assert torch.allclose(y, torch.tensor([0.05, 0.3]))


def test_polyak_update_moves_target_by_tau():
    online, target = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.clone() for p in target.parameters()]
    polyak_update(target, online, 0.1)
    for old, new, src in zip(before, target.parameters(), online.parameters()):
        assert torch.allclose(new, 0.9 * old + 0.1 * src)
    polyak_update(target, online, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), online.parameters()))
    with pytest.raises(ValueError, match="tau"):
        polyak_update(target, online, 1.5)


def test_epsilon_greedy_extremes_and_rate():
    q = torch.tensor([[0.0, 1.0, 0.5]]).repeat(4000, 1)
    assert epsilon_greedy(q, 0.0).eq(1).all()
    g = torch.Generator().manual_seed(0)
    random = epsilon_greedy(q, 1.0, g)
    assert set(random.tolist()) == {0, 1, 2}
    greedy_share = epsilon_greedy(q, 0.3, g).eq(1).float().mean().item()
    assert abs(greedy_share - (0.7 + 0.3 / 3)) < 0.03
    with pytest.raises(ValueError):
        epsilon_greedy(q, 1.2)


def test_epsilon_schedules():
    exp = EpsilonSchedule()  # the write-up: x0.999 per gradient step down to 0.1
    assert exp.value(0) == 1.0
    assert abs(exp.value(1000) - 0.999**1000) < 1e-12
    assert exp.value(10**6) == 0.1
    lin = EpsilonSchedule(kind="linear", steps=100)
    assert lin.value(50) == pytest.approx(0.55) and lin.value(500) == pytest.approx(0.1)
    assert EpsilonSchedule(start=0.2, kind="constant").value(999) == 0.2
    with pytest.raises(ValueError):
        EpsilonSchedule(kind="cosine")


def _batch(n=4, size=8):
    g = torch.Generator().manual_seed(0)
    s = torch.randint(0, 2, (size, n), generator=g).float()
    a = torch.randint(0, n, (size,), generator=g)
    s2 = s.clone()
    s2[torch.arange(size), a] = 1 - s2[torch.arange(size), a]
    return Transitions.with_goals(s, s2.clone(), a, s2)  # every transition reaches its goal: target 1


def test_learner_step_reduces_loss_and_updates_target_slowly():
    torch.manual_seed(0)
    learner = DQNLearner(MLP(4, hidden=(16,)), gamma=0.9, lr=1e-2, polyak=0.1)
    batch = _batch()
    first = float(learner.update(batch)["loss"])
    for _ in range(50):
        last = float(learner.update(batch)["loss"])
    assert last < first
    online = torch.cat([p.flatten() for p in learner.online.parameters()])
    target = torch.cat([p.flatten() for p in learner.target.parameters()])
    assert not torch.equal(online, target)


def test_learner_without_target_network():
    learner = DQNLearner(MLP(4, hidden=(8,)), polyak=None)
    assert learner.target is None
    stats = learner.update(_batch())
    assert set(stats) == {"loss", "mean_q", "mean_target"}


def test_the_loss_comes_from_the_one_table_the_configuration_checks_against():
    from bitflip_lib.config import make_config

    assert set(LOSSES) == {"mse", "huber"}
    for name, loss in LOSSES.items():
        torch.manual_seed(0)
        network = MLP(4, hidden=(8,))
        learner = DQNLearner(network, polyak=None, loss=name)
        batch = _batch()
        q = network(batch.state, batch.goal).gather(1, batch.action[:, None])[:, 0]
        expected = loss(q, torch.ones_like(q))  # every sampled transition reaches its goal: target 1
        assert torch.allclose(learner.update(batch)["loss"], expected)
    with pytest.raises(ValueError, match="^loss must be one of mse, huber"):
        make_config(loss="l1")  # the boundary: a learner trusts the name it gets
