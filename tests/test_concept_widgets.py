"""The concept widgets, driven without a browser: move a control, the figure and the text follow."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from bitflip_lib import theory
from bitflip_lib.networks import HAR
from bitflip_lib.ui.explorers import FlipGapExplorer, HERStepper, PhiExplorer, RandomReachExplorer


def test_random_reach_explorer_shows_the_exact_chance_and_a_simulation_that_agrees():
    w = RandomReachExplorer(n=6, agents=8192)
    before, text = w.image.value, w.text.value
    assert f"exact <b>{theory.random_success_probability(6):.3g}</b>" in text
    w.controls["steps"].value = 30  # a longer episode: more chances
    assert w.image.value != before and w.text.value != text and w.redraws == 2
    exact = theory.random_success_probability(6, 30)
    simulated = w.simulate(6, 30)
    assert abs(simulated - exact) <= 4 * math.sqrt(exact * (1 - exact) / 8192)
    assert [ax.get_xlabel() for ax in w.figure.axes] == ["number of bits n", "episode length (flips)"]
    with pytest.raises(ValueError, match="n must be an integer from 1 to 30"):
        RandomReachExplorer(n=40)


def test_flip_gap_explorer_gives_the_closed_form_gap_and_the_best_gamma():
    w = FlipGapExplorer(gamma=0.9, d=5)
    assert f"gap <b>{0.9 ** 4 - 0.9 ** 6:.3g}</b>" in w.text.value
    before = w.image.value
    w.controls["d"].value = 20
    assert w.image.value != before
    assert f"needs gamma = {math.sqrt(19 / 21):.3f}" in w.text.value
    with pytest.raises(ValueError, match="gamma"):
        FlipGapExplorer(gamma=1.5)


def test_her_stepper_shows_what_each_strategy_adds_at_each_step():
    w = HERStepper(n=5, seed=3, k=2)
    assert w.length == 5  # five random flips at n = 5 rarely hit the goal; this seed does not
    for t in range(w.length):
        w.controls["step"].value = t
        future = w.goals_at("future", t)
        assert len(future) == 2  # k = 2 goals for this transition
        reached_later = {tuple(w.episode.states[u + 1, 0].tolist()) for u in range(t, w.length)}
        assert all(tuple(g.tolist()) in reached_later for g, _ in future)  # future goals come from later states
        final = w.goals_at("final", t)
        assert [tuple(g.tolist()) for g, _ in final] == [tuple(w.episode.states[w.length, 0].tolist())]
        for g, r in future + final:  # the reward is recomputed for the new goal
            assert r == float(bool((w.episode.states[t + 1, 0] == g).all()))
    text = w.text.value
    w.controls["k"].value = 4
    assert len(w.goals_at("episode", 0)) == 4 and w.text.value != text
    assert "background:#fff3c4" in w.episode_html.value  # the chosen step is highlighted
    w.controls["seed"].value = 4  # a new episode
    assert w.controls["step"].max == w.length - 1


def test_phi_explorer_reads_phi_and_says_whether_the_greedy_policy_is_optimal():
    torch.manual_seed(0)
    har = HAR(20)
    with torch.no_grad():  # make phi exactly right in sign: differs beats matches everywhere
        last = har.phi[-1]
        last.weight.zero_()
        last.bias.zero_()
        har.phi[0].weight.zero_()
        har.phi[0].bias.fill_(1.0)
        har.phi[0].weight[:, 0] = 1.0  # the first input is "bit differs"
        last.weight.fill_(0.01)
    w = PhiExplorer({"constructed": har, "untrained": HAR(20)}, gamma=0.98, n=20)
    assert "optimal at this n" in w.text.value
    before = w.image.value
    w.controls["n"].value = 1024
    assert w.controls["d"].max == 1024 and w.image.value != before and "n = 1024" in w.text.value
    w.controls["network"].value = "untrained"
    assert "untrained" in w.text.value
    with pytest.raises(ValueError, match="HAR"):
        PhiExplorer({"mlp": torch.nn.Linear(2, 1)})
