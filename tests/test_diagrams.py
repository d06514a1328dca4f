"""The chapters' diagrams (1-9) build headless (Agg), show what they claim, and reject bad input."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import pytest
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from bitflip_lib.networks import MLP, UVFA
from bitflip_lib.ui import diagrams


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]


def _renders(fig: Figure) -> bool:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()[:4] == b"\x89PNG"


@pytest.mark.parametrize("make", [lambda: diagrams.hypercube_walk(3), lambda: diagrams.uvfa_architecture(),
                                  lambda: diagrams.uvfa_architecture(10), lambda: diagrams.mlp_architecture(),
                                  lambda: diagrams.mlp_architecture(7, hidden=(64, 32)),
                                  lambda: diagrams.generation_tree("101"), lambda: diagrams.generation_tree("0"),
                                  diagrams.rlhf_pipeline, diagrams.tree_and_dag])
def test_every_diagram_is_a_closed_figure_that_renders(make):
    open_before = set(plt.get_fignums())
    fig = make()
    assert isinstance(fig, Figure)
    assert set(plt.get_fignums()) == open_before, "a returned figure is closed in pyplot (shown once in a notebook)"
    assert _renders(fig)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_hypercube_has_every_string_and_every_single_flip_edge(n):
    fig = diagrams.hypercube_walk(n, seed=1)
    cube = fig.axes[0]
    strings = [t.get_text() for t in cube.texts if (t.get_gid() or "").startswith("string:")]
    assert sorted(strings) == sorted(format(i, f"0{n}b") for i in range(2**n))
    edges = [line for line in cube.lines if line.get_gid() == "edge"]
    assert len(edges) == n * 2 ** (n - 1)
    goal = [t.get_text() for t in cube.texts if t.get_gid() == "string:goal"]
    assert goal == ["0" * n]
    # The chain panel has the n + 1 distances 0..n.
    chain_states = [t.get_text() for t in fig.axes[1].texts if t.get_gid() == "state"]
    assert chain_states == [str(d) for d in range(n + 1)]


def test_hypercube_columns_are_hamming_distances_to_the_goal():
    goal = "1010"
    fig = diagrams.hypercube_walk(4, goal=goal, seed=0)
    for t in fig.axes[0].texts:
        if (t.get_gid() or "").startswith("string:"):
            x, _ = t.get_position()
            assert x == sum(a != b for a, b in zip(t.get_text(), goal))


@pytest.mark.parametrize("seed", range(20))
def test_random_walk_path_is_one_episode_of_single_flips(seed):
    n, goal = 4, "0110"
    path = diagrams.random_walk_path(n, goal, seed=seed)
    assert path[0] != goal
    assert 2 <= len(path) <= n + 1  # at least one flip, at most n
    for s, t in zip(path, path[1:]):
        assert sum(a != b for a, b in zip(s, t)) == 1
    assert goal not in path[:-1], "the walk stops at the goal"
    if len(path) < n + 1:
        assert path[-1] == goal, "a walk shorter than n flips ended because it reached the goal"
    assert diagrams.random_walk_path(n, goal, seed=seed) == path  # one seed, one walk


def test_random_walk_path_from_a_given_start():
    assert diagrams.random_walk_path(3, "000", seed=0, start="100")[0] == "100"
    with pytest.raises(ValueError, match="differ from the goal"):
        diagrams.random_walk_path(3, "000", start="000")


@pytest.mark.parametrize("n", [0, 6, 2.0, True, "3"])
def test_hypercube_rejects_a_bad_n(n):
    with pytest.raises(ValueError, match="n must be an integer from 1 to 5"):
        diagrams.hypercube_walk(n)


@pytest.mark.parametrize("goal", ["01", "0120", 101])
def test_hypercube_rejects_a_bad_goal(goal):
    with pytest.raises(ValueError, match="goal must be a string of 3"):
        diagrams.hypercube_walk(3, goal=goal)


@pytest.mark.parametrize("n", [5, 20])
def test_uvfa_diagram_counts_the_parameters_of_the_real_network(n):
    fig = diagrams.uvfa_architecture(n)
    count = sum(p.numel() for p in UVFA(n).parameters())
    assert any(f"{count:,} parameters" in text for text in _texts(fig))
    joined = " ".join(_texts(fig))
    assert f"Linear({n} → 128)" in joined and "GELU" in joined and "W_a" in joined


@pytest.mark.parametrize("n, hidden", [(5, (256,)), (12, (64, 32))])
def test_mlp_diagram_has_one_box_per_layer_and_the_real_parameter_count(n, hidden):
    fig = diagrams.mlp_architecture(n, hidden=hidden)
    count = sum(p.numel() for p in MLP(n, hidden=hidden).parameters())
    assert any(f"{count:,} parameters" in text for text in _texts(fig))
    layers = [t for t in _texts(fig) if t.startswith("Linear(")]
    assert len(layers) == len(hidden) + 1
    assert layers[0].startswith(f"Linear({2 * n} → {hidden[0]})") and layers[-1] == f"Linear({hidden[-1]} → {n})"
    assert sum("ReLU" in t for t in layers) == len(hidden)


def test_symbolic_diagrams_show_n():
    assert "Linear(n → 128)" in " ".join(_texts(diagrams.uvfa_architecture()))
    assert "Linear(2n → 256)" in " ".join(_texts(diagrams.mlp_architecture()))


@pytest.mark.parametrize("call, field", [(lambda: diagrams.uvfa_architecture(0), "n"),
                                         (lambda: diagrams.uvfa_architecture(5, embed=0), "embed"),
                                         (lambda: diagrams.mlp_architecture(5, hidden=()), "hidden"),
                                         (lambda: diagrams.mlp_architecture(5, hidden=(0,)), "hidden width")])
def test_architecture_diagrams_reject_bad_sizes(call, field):
    with pytest.raises(ValueError, match=field):
        call()


# --- chapters 8 and 9 ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["1", "01", "101", "0110"])
def test_generation_tree_has_every_prefix_and_rewards_only_the_target(target):
    texts = _texts(diagrams.generation_tree(target))
    L = len(target)
    for depth in range(1, L + 1):
        for index in range(2**depth):
            assert format(index, f"0{depth}b") in texts  # every prefix is a state
    assert "start" in texts
    assert texts.count("R = 1") == 1 and texts.count("R = 0") == 2**L - 1  # one rewarded leaf


@pytest.mark.parametrize("target", ["", "10101", "12", 101])
def test_generation_tree_rejects_what_it_cannot_draw(target):
    with pytest.raises(ValueError, match="target"):
        diagrams.generation_tree(target)


def test_rlhf_pipeline_names_its_pieces():
    text = " ".join(_texts(diagrams.rlhf_pipeline()))
    for piece in ("reward model", "Bradley-Terry", "PPO", "RLOO / GRPO", "DPO", "over-optimisation"):
        assert piece in text


def test_tree_and_dag_shows_one_parent_against_two():
    fig = diagrams.tree_and_dag()
    left, right = fig.axes
    assert "P_B = 1" in left.get_title() and "1/2" in right.get_title()
    assert {"0_", "_1", "01"} <= {t.get_text() for t in right.texts}
    assert "_1" not in {t.get_text() for t in left.texts}
