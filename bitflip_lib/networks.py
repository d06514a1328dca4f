"""Goal-conditioned Q-networks: ``(state, goal) -> Q`` of shape ``[batch, n]``, one value per bit flip.

* :class:`UVFA`: the write-up's universal value function approximator: state and goal each
  through ``Linear(n, 128) + GELU``, then a learnable bilinear form to n outputs.
* :class:`MLP`: the HER paper's generic network: concatenated state and goal, hidden layers
  (one of 256 units by default), n outputs.
* :class:`HAR`: the write-up's handcrafted architecture
  ``Q(s, g, a) = phi(||s - g||_1, |s_a - g_a|)``: one small network shared by all bits. It works
  for any n, so a HAR trained at small n can be used unchanged at large n. :func:`har_phi`,
  :func:`har_greedy_margin` and :func:`har_greedy_is_optimal` probe what its ``phi`` has learned.
* :class:`DeepSets`: a permutation-equivariant network that is *not* told the distance: a
  shared per-bit encoder of ``(s_i, g_i)``, the mean of the bits' embeddings as context, and a
  shared per-bit head. It also works for any n, and must learn what HAR is given.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS", "ANY_N_ARCHITECTURES", "ARCHITECTURES", "DeepSets", "HAR",
    "har_greedy_is_optimal", "har_greedy_margin", "har_phi", "HIDDEN_LAYER_ARCHITECTURES",
    "make_network", "MLP", "mlp_layers", "taken_action_values", "UVFA",
]

ARCHITECTURES = ("uvfa", "mlp", "har", "deepsets")
HIDDEN_LAYER_ARCHITECTURES = ("mlp", "har", "deepsets")
"""The architectures with hidden layers (``hidden``, ``activation``); the UVFA has none."""
ANY_N_ARCHITECTURES = ("har", "deepsets")
"""The architectures whose parameters do not depend on n: one trained at one n runs at any other."""
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU}
"""Hidden-layer activations by name (the write-up's code uses GELU, the HER paper ReLU)."""


def mlp_layers(width: int, hidden: Sequence[int], out: int, activation: str = "relu") -> nn.Sequential:
    """``Linear -> activation`` for each hidden width, then a final ``Linear`` to ``out`` outputs."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
        width = h
    layers.append(nn.Linear(width, out))
    return nn.Sequential(*layers)


def _check_inputs(state: torch.Tensor, goal: torch.Tensor, n: int | None) -> None:
    if state.shape != goal.shape or state.dim() != 2:
        raise ValueError(
            f"expected state and goal of the same shape [batch, n], got {tuple(state.shape)} and {tuple(goal.shape)}"
        )
    if n is not None and state.shape[1] != n:
        raise ValueError(f"this network was built for n = {n} bits, got inputs with {state.shape[1]} bits")


class UVFA(nn.Module):
    """The write-up's UVFA: ``Q_a(s, g) = phi(s)^T W_a psi(g) + b_a`` with 128-d embeddings.

    The bilinear form is computed as one matrix product followed by a dot product, which is
    much faster on a CPU than ``nn.Bilinear`` and gives the same values.
    """

    def __init__(self, n: int, embed: int = 128) -> None:
        super().__init__()
        self.n, self.embed = n, embed
        self.state_encoder = nn.Sequential(nn.Linear(n, embed), nn.GELU())
        self.goal_encoder = nn.Sequential(nn.Linear(n, embed), nn.GELU())
        bound = 1.0 / embed**0.5
        self.weight = nn.Parameter(torch.empty(embed, n * embed).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n).uniform_(-bound, bound))

    def forward(self, state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        _check_inputs(state, goal, self.n)
        s = self.state_encoder(state)  # [B, E]
        g = self.goal_encoder(goal)  # [B, E]
        projected = (s @ self.weight).view(-1, self.n, self.embed)  # [B, n, E]
        return (projected * g.unsqueeze(1)).sum(-1) + self.bias

    def q_of_actions(self, state: torch.Tensor, goal: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``Q_a(s, g)`` of one action per row, ``[B]``: what a TD update needs, without the other n - 1.

        Equal to ``forward(state, goal).gather(1, action[:, None])[:, 0]``. The rows are grouped by
        action and each group meets only its own ``E x E`` block of the bilinear weight, which
        makes a training step's forward and backward pass about 4 times cheaper on a CPU at
        n = 15-50. It loops over actions, so on a GPU one big product is faster: call it through
        :func:`taken_action_values`, which picks.
        """
        _check_inputs(state, goal, self.n)
        if action.shape != (state.shape[0],):
            raise ValueError(f"action must have shape [{state.shape[0]}], got {tuple(action.shape)}")
        s, g = self.state_encoder(state), self.goal_encoder(goal)  # [B, E] each
        order = torch.argsort(action)
        s, g = s[order], g[order]
        blocks = self.weight.view(self.embed, self.n, self.embed).unbind(1)  # n blocks [E, E]; one backward op
        values, start = [], 0
        for a, count in enumerate(torch.bincount(action, minlength=self.n).tolist()):
            if count:
                rows = slice(start, start + count)
                values.append(((s[rows] @ blocks[a]) * g[rows]).sum(1))
                start += count
        q = torch.empty(state.shape[0], dtype=s.dtype, device=s.device).scatter(0, order, torch.cat(values))
        return q + self.bias[action]

    def project_goal(self, goal: torch.Tensor) -> torch.Tensor:
        """``[B, n] goals -> [B, n, E]``: ``W_a psi(g)`` for every action, to reuse while the goal is fixed.

        An evaluation episode keeps each agent's goal for up to n steps; with this computed once,
        each step costs ``n * E`` per agent (:meth:`q_with_projected_goal`) instead of
        ``n * E^2``, which makes greedy evaluation at n = 50 about n times cheaper.
        """
        _check_inputs(goal, goal, self.n)
        g = self.goal_encoder(goal)  # [B, E]
        # weight[i, a*E + j] -> W[a*E + j ... ] laid out as [E(i), n(a), E(j)]; contract over j.
        per_action = self.weight.view(self.embed, self.n, self.embed)
        return torch.einsum("iaj,bj->bai", per_action, g)

    def q_with_projected_goal(self, state: torch.Tensor, projected_goal: torch.Tensor) -> torch.Tensor:
        """Q-values ``[B, n]`` from states and :meth:`project_goal`'s output (equal to ``forward``)."""
        if projected_goal.shape != (state.shape[0], self.n, self.embed):
            raise ValueError(f"projected_goal must have shape [{state.shape[0]}, {self.n}, {self.embed}] "
                             f"(from project_goal), got {tuple(projected_goal.shape)}")
        s = self.state_encoder(state)  # [B, E]
        return torch.bmm(projected_goal, s.unsqueeze(2)).squeeze(2) + self.bias


class MLP(nn.Module):
    """The HER paper's network: ``[s, g] -> hidden layers (ReLU) -> n Q-values``.

    (The write-up's code has the same kind of network, 128 x 128 with GELU, which it did not use
    for its Table 1.)
    """

    def __init__(self, n: int, hidden: Sequence[int] = (256,), activation: str = "relu") -> None:
        super().__init__()
        self.n = n
        self.body = mlp_layers(2 * n, hidden, n, activation)

    def forward(self, state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        _check_inputs(state, goal, self.n)
        return self.body(torch.cat([state, goal], dim=1))


class HAR(nn.Module):
    """Handcrafted architecture: ``Q(s, g, a) = phi(distance feature, |s_a - g_a|)``.

    (``phi``'s first layer reads the pair as ``[bit differs, distance feature]``: the order in
    which its weights were initialised and stored; the maths writes the distance first.)

    ``phi`` is a small MLP from 2 inputs to 1 output, shared by every bit. Within one
    (state, goal) pair only two inputs occur (bit differs or not, same distance), so ``phi`` is
    evaluated twice per row and spread back to the bits: the same values as applying it to
    every bit, about n/2 times cheaper.

    Args:
        n: the number of bits it was built for (informational: it accepts any n).
        hidden: hidden layer widths of ``phi`` (the write-up's code: 128, 128).
        normalize_distance: feed ``distance / n`` (in [0, 1]) instead of the raw count.
        activation: ``relu`` or ``gelu`` (the write-up's code) between phi's layers.
    """

    def __init__(self, n: int | None = None, hidden: Sequence[int] = (64, 64), normalize_distance: bool = True,
                 activation: str = "relu") -> None:
        super().__init__()
        self.n = n
        self.normalize_distance = normalize_distance
        self.phi = mlp_layers(2, hidden, 1, activation)

    def distance_feature(self, distance: torch.Tensor, n: int) -> torch.Tensor:
        return distance / n if self.normalize_distance else distance

    def pair_values(self, distance: torch.Tensor, n: int) -> torch.Tensor:
        """``[B] distances -> [B, 2]``: phi for a bit that already matches (0) and one that differs (1)."""
        feature = self.distance_feature(distance.float(), n).unsqueeze(1)  # [B, 1]
        differs = torch.tensor([0.0, 1.0], device=feature.device).expand(feature.shape[0], 2)
        inputs = torch.stack([differs, feature.expand(-1, 2)], dim=-1)  # [B, 2, 2]
        return self.phi(inputs).squeeze(-1)

    def forward(self, state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        _check_inputs(state, goal, None)
        differs = (state - goal).abs()  # [B, n], 1.0 where the bit differs (bits are 0/1)
        values = self.pair_values(differs.sum(1), state.shape[1])  # [B, 2]
        return torch.addcmul(values[:, :1], differs, values[:, 1:] - values[:, :1])


# Probes of a HAR's phi (chapter 6): what it has learned, and whether its greedy policy is optimal.
@torch.no_grad()
def har_phi(network: HAR, n: int, distances: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
    """``[D, 2]`` values of ``phi``: column 0 for a bit that already matches its goal, column 1
    for a bit that differs, at each distance (default: every distance 1..n)."""
    if not isinstance(network, HAR):
        raise ValueError(f"expected a HAR network (arch='har'), got {type(network).__name__}")
    device = next(network.parameters()).device
    if distances is None:
        distances = torch.arange(1, n + 1)
    distances = torch.as_tensor(distances, dtype=torch.float32, device=device)
    return network.pair_values(distances, n).cpu()


def har_greedy_margin(network: HAR, n: int) -> torch.Tensor:
    """``phi(d, 1) - phi(d, 0)`` (a differing bit minus a matching one) for d = 1..n-1: where it
    is positive, the greedy policy flips a wrong bit. (At d = n every bit differs, so there is
    nothing to get wrong.)"""
    if n < 2:
        raise ValueError(f"n must be at least 2 to have a choice between good and bad flips, got {n}")
    values = har_phi(network, n, torch.arange(1, n))
    return values[:, 1] - values[:, 0]


def har_greedy_is_optimal(network: HAR, n: int) -> bool:
    """True when the greedy policy of this HAR reaches every goal in the fewest steps at size n.

    Every differing bit gets the same value and every matching bit gets another, so the
    greedy action is a good flip at distance d exactly when ``phi(d, 1) > phi(d, 0)``.
    """
    return bool((har_greedy_margin(network, n) > 0).all())


class DeepSets(nn.Module):
    """Permutation-equivariant Q-network, DeepSets style, that is not told the Hamming distance.

    ``Q(s, g, a=i) = head(e_i, mean_j e_j)`` with ``e_j = encoder(s_j, g_j)``: the encoder (two
    layers, ``embed`` wide) and the head (hidden widths ``hidden``, one output) are small MLPs
    shared by every bit. Permuting the bits of s and g permutes the Q-values the same way, and
    nothing depends on n, so it runs at any n with the same weights; the mean (not the sum)
    keeps the context in the same range at every n, which is what lets a network trained at one
    n be used at another. It sits between the MLP (no symmetry) and HAR (symmetry *and* the
    distance built in): the distance is there in the mean, ``d / n`` is the share of bits that
    differ, but the network has to learn that this is the statistic that matters, and that
    (0, 1) and (1, 0) are the same kind of bit.

    A bit is one of four kinds, ``(s_i, g_i)`` in {0, 1}^2, so the encoder and the head are
    evaluated for the four kinds only and spread back to the bits: the same values as applying
    them to every bit (:meth:`per_bit_forward`, the literal definition), about n/4 times cheaper.

    Args:
        n: the number of bits it was built for (informational: it accepts any n).
        hidden: hidden layer widths of the per-bit head.
        embed: width of each bit's embedding (and of the encoder's hidden layer).
        activation: ``relu`` or ``gelu`` between the layers of the encoder and the head.
    """

    KINDS = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    """The four kinds of bit, ``(s_i, g_i)``; kind ``2 s_i + g_i`` is row ``2 s_i + g_i``."""

    def __init__(self, n: int | None = None, hidden: Sequence[int] = (64, 64), embed: int = 64,
                 activation: str = "relu") -> None:
        super().__init__()
        self.n, self.embed = n, embed
        act = ACTIVATIONS[activation]
        self.encoder = nn.Sequential(nn.Linear(2, embed), act(), nn.Linear(embed, embed), act())
        self.head = mlp_layers(2 * embed, hidden, 1, activation)

    def per_bit_forward(self, state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """The definition, bit by bit: ``[B, n]`` Q-values (equal to :meth:`forward`, n/4 times dearer)."""
        _check_inputs(state, goal, None)
        e = self.encoder(torch.stack([state, goal], dim=-1))  # [B, n, E]
        context = e.mean(1, keepdim=True).expand_as(e)
        return self.head(torch.cat([e, context], dim=-1)).squeeze(-1)

    def forward(self, state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        _check_inputs(state, goal, None)
        kinds = self.KINDS.to(device=state.device, dtype=state.dtype)
        e = self.encoder(kinds)  # [4, E]
        kind = (2 * state + goal).long()  # [B, n], bits are 0/1
        both = (state * goal).mean(1)
        s_one, g_one = state.mean(1), goal.mean(1)
        # Share of the bits of each kind (0,0), (0,1), (1,0), (1,1): the mean embedding is their mix.
        shares = torch.stack([1 - s_one - g_one + both, g_one - both, s_one - both, both], dim=1)  # [B, 4]
        context = shares @ e  # [B, E]
        inputs = torch.cat([e.expand(state.shape[0], 4, -1), context.unsqueeze(1).expand(-1, 4, -1)], dim=-1)
        values = self.head(inputs).squeeze(-1)  # [B, 4]: Q of a bit of each kind
        return values.gather(1, kind)


def taken_action_values(network: nn.Module, state: torch.Tensor, goal: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """``Q(s, g, a)`` of one action per row, ``[B]``, as a TD update needs it.

    A network with a cheaper way to compute only those values on a CPU (``q_of_actions``: the
    UVFA) uses it there; otherwise all n values are computed and the taken one is gathered.
    """
    if hasattr(network, "q_of_actions") and state.device.type == "cpu":
        return network.q_of_actions(state, goal, action)
    return network(state, goal).gather(1, action.unsqueeze(1)).squeeze(1)


def make_network(arch: str, n: int, **kwargs) -> nn.Module:
    """Build ``'uvfa'``, ``'mlp'``, ``'har'`` or ``'deepsets'`` for n bits (extra keyword arguments go to the class)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    key = str(arch).lower()
    if key == "uvfa":
        return UVFA(n, **kwargs)
    if key == "mlp":
        return MLP(n, **kwargs)
    if key == "har":
        return HAR(n, **kwargs)
    if key == "deepsets":
        return DeepSets(n, **kwargs)
    raise ValueError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHITECTURES)}")
