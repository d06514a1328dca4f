"""The three Q-networks share one interface: (state, goal) -> [batch, n]."""
import pytest
import torch

from bitflip_lib.networks import HAR, MLP, UVFA, make_network, taken_action_values


@pytest.mark.parametrize("arch", ["uvfa", "mlp", "har"])
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
