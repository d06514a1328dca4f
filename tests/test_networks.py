"""The Q-networks share one interface: (state, goal) -> [batch, n]."""
import pytest
import torch

from bitflip_lib.networks import HAR, MLP, UVFA, DeepSets, make_network, taken_action_values


@pytest.mark.parametrize("arch", ["uvfa", "mlp", "har", "deepsets"])
def test_output_shape(arch):
    net = make_network(arch, 7)
    s, g = torch.randint(0, 2, (5, 7)).float(), torch.randint(0, 2, (5, 7)).float()
    assert net(s, g).shape == (5, 7)


def test_uvfa_matches_a_bilinear_form():
    torch.manual_seed(0)
    net = UVFA(5, embed=8)
    s, g = torch.rand(3, 5), torch.rand(3, 5)
    es, eg = net.state_encoder(s), net.goal_encoder(g)
    w = net.weight.view(8, 5, 8)  # [E, n, E]
    expected = torch.einsum("bi,iaj,bj->ba", es, w, eg) + net.bias
    assert torch.allclose(net(s, g), expected, atol=1e-5)


def test_har_equals_phi_applied_to_every_bit_and_works_at_any_n():
    torch.manual_seed(0)
    har = HAR(hidden=(8,))
    s, g = torch.randint(0, 2, (4, 9)).float(), torch.randint(0, 2, (4, 9)).float()
    differs = (s != g).float()
    d = differs.sum(1, keepdim=True).expand(-1, 9) / 9
    per_bit = har.phi(torch.stack([differs, d], -1)).squeeze(-1)
    assert torch.allclose(har(s, g), per_bit, atol=1e-6)
    assert har(torch.zeros(2, 300), torch.ones(2, 300)).shape == (2, 300)


def test_har_is_permutation_equivariant():
    har = HAR()
    s, g = torch.randint(0, 2, (3, 12)).float(), torch.randint(0, 2, (3, 12)).float()
    perm = torch.randperm(12)
    assert torch.allclose(har(s[:, perm], g[:, perm]), har(s, g)[:, perm])


def test_clear_errors():
    with pytest.raises(ValueError, match="unknown architecture"):
        make_network("transformer", 5)
    with pytest.raises(ValueError, match="n must be"):
        make_network("mlp", 0)
    with pytest.raises(ValueError, match="built for n = 5"):
        MLP(5)(torch.zeros(2, 6), torch.zeros(2, 6))
    with pytest.raises(ValueError, match="same shape"):
        HAR()(torch.zeros(2, 6), torch.zeros(2, 5))


def test_uvfa_shortcuts_equal_the_full_forward_pass_values_and_gradients():
    """q_of_actions (used by the TD update) and project_goal (used by evaluation) are speed-ups only."""
    torch.manual_seed(0)
    net = UVFA(6, embed=8)
    s, g = torch.randint(0, 2, (40, 6)).float(), torch.randint(0, 2, (40, 6)).float()
    action = torch.randint(0, 6, (40,))
    action[:5] = 2  # several rows per action, and (most likely) some actions with none
    full = net(s, g).gather(1, action.unsqueeze(1)).squeeze(1)
    grads_full = torch.autograd.grad(full.square().sum(), list(net.parameters()))
    taken = net.q_of_actions(s, g, action)
    grads_taken = torch.autograd.grad(taken.square().sum(), list(net.parameters()))
    assert torch.allclose(taken, full, atol=1e-6)
    for a, b in zip(grads_taken, grads_full):
        assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(net.q_with_projected_goal(s, net.project_goal(g)), net(s, g), atol=1e-5)
    assert torch.allclose(taken_action_values(net, s, g, action), full, atol=1e-6)  # what the TD update calls
    mlp = MLP(6)  # no shortcut: the generic gather
    assert torch.equal(taken_action_values(mlp, s, g, action), mlp(s, g)[torch.arange(40), action])
    with pytest.raises(ValueError, match="action must have shape"):
        net.q_of_actions(s, g, action[:3])
    with pytest.raises(ValueError, match="from project_goal"):
        net.q_with_projected_goal(s, net.project_goal(g)[:3])


# --- DeepSets: permutation-equivariant by construction, not told the distance ---------------

def _bits(batch: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 2, (batch, n), generator=gen).float(),
            torch.randint(0, 2, (batch, n), generator=gen).float())


def test_deepsets_output_shape_and_dispatch():
    net = make_network("deepsets", 11)
    assert isinstance(net, DeepSets)
    s, g = _bits(5, 11)
    assert net(s, g).shape == (5, 11)


def test_deepsets_equals_its_per_bit_definition_values_and_gradients():
    """forward evaluates the four kinds of bit only; the per-bit definition must give the same."""
    torch.manual_seed(0)
    fast, slow = DeepSets(hidden=(16,), embed=8), DeepSets(hidden=(16,), embed=8)
    slow.load_state_dict(fast.state_dict())
    s, g = _bits(6, 13)
    assert torch.allclose(fast(s, g), slow.per_bit_forward(s, g), atol=1e-6)
    action = torch.randint(0, 13, (6,))
    taken_action_values(fast, s, g, action).sum().backward()
    slow.per_bit_forward(s, g).gather(1, action[:, None]).sum().backward()
    for a, b in zip(fast.parameters(), slow.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5)


def test_deepsets_is_permutation_equivariant():
    torch.manual_seed(1)
    net = DeepSets()
    s, g = _bits(8, 17, seed=3)
    q = net(s, g)
    for seed in range(3):
        perm = torch.randperm(17, generator=torch.Generator().manual_seed(seed))
        assert torch.allclose(net(s[:, perm], g[:, perm]), q[:, perm], atol=1e-6)
    assert q.std() > 0  # an untrained network whose values differ, so the check can fail


def test_deepsets_runs_at_any_n_with_the_same_weights_and_parameter_count():
    torch.manual_seed(0)
    net = make_network("deepsets", 10)
    for n in (1, 3, 10, 50, 1024):
        s, g = _bits(4, n)
        q = net(s, g)
        assert q.shape == (4, n) and torch.isfinite(q).all()
        assert torch.allclose(q, net.per_bit_forward(s, g), atol=1e-5)
    counts = {n: sum(p.numel() for p in make_network("deepsets", n).parameters()) for n in (5, 50, 1024)}
    assert len(set(counts.values())) == 1, counts


def test_deepsets_is_not_told_the_distance():
    """Unlike HAR, the bits' kinds are not folded into 'differs': (0, 1) and (1, 0) start apart."""
    torch.manual_seed(0)
    net = DeepSets()
    s, g = torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]])
    q = net(s, g)
    assert not torch.allclose(q[0, 0], q[0, 1])


def test_deepsets_takes_its_head_widths_from_the_configuration():
    from bitflip_lib.config import make_config
    from bitflip_lib.trainer import build_network

    net = build_network(make_config(n=6, arch="deepsets", hidden=(8, 4)), torch.device("cpu"))
    widths = [layer.out_features for layer in net.head if isinstance(layer, torch.nn.Linear)]
    assert isinstance(net, DeepSets) and widths == [8, 4, 1]
