"""The concept widgets, driven without a browser: move a control, the figure and the text follow."""
from __future__ import annotations

import math
from pathlib import Path

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


# ----- figure size, argument checks, and chapter 7's browser of stored runs ---------------------------
def png_width(data: bytes) -> int:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big")


def test_concept_figures_are_drawn_at_the_notebook_width_with_readable_text():
    from bitflip_lib.ui.live import FIGURE_DPI

    for w in (RandomReachExplorer(n=6, agents=256), FlipGapExplorer()):
        assert png_width(w.image.value) == 880 and w.image.layout.max_width == "880px"
        sizes = [t.get_fontsize() for ax in w.figure.axes
                 for t in (ax.title, ax.xaxis.label, *ax.get_xticklabels(), *ax.get_legend().get_texts())]
        assert min(sizes) * FIGURE_DPI / 72 >= 12  # at least 12 px


@pytest.mark.parametrize("make, message", [
    (lambda: FlipGapExplorer(gamma="abc"), r"gamma must be a number from 0.5 to 0.999, got 'abc' \(a str\)"),
    (lambda: FlipGapExplorer(gamma=1.5), r"gamma must be a number from 0.5 to 0.999, got 1.5"),
    (lambda: RandomReachExplorer(seed=-1), r"seed must be an integer >= 0, got -1"),
    (lambda: RandomReachExplorer(n=2.5), r"n must be an integer from 1 to 30, got 2.5 \(a float\)"),
    (lambda: HERStepper(seed=10**7), r"seed must be an integer from 0 to 1000000, got 10000000"),
    (lambda: HERStepper(k=9), r"k must be an integer from 1 to 8, got 9"),
    (lambda: PhiExplorer(HAR(20), gamma=0), r"gamma must be a number in \(0, 1\], got 0"),
])
def test_explorers_refuse_arguments_their_controls_cannot_show(make, message):
    with pytest.raises(ValueError, match=message):
        make()


class FakeRun:
    """A stored run as the browser reads it: seed, verdict fields and a success curve."""

    def __init__(self, seed, solved_at, length):
        self.seed, self.solved_at, self.iterations, self.best_success = seed, solved_at, length, 1.0 if solved_at else 0.2
        self._x = list(range(1, length + 1))

    def curve(self, metric):
        return self._x, [1.0 if self.solved_at and i >= self.solved_at else 0.0 for i in self._x]


class FakeCell:
    def __init__(self, runs):
        self.runs = tuple(runs)
        self.n_runs, self.n_solved = len(runs), sum(r.solved_at is not None for r in runs)


def test_stored_run_browser_shows_runs_solved_at_iteration_1_and_marks_solving_in_the_legend():
    from bitflip_lib.ui.explorers import STORED_METRICS, StoredRunBrowser

    quick = FakeCell([FakeRun(0, 1, 5), FakeRun(1, 200, 204), FakeRun(2, None, 3000)])
    short = FakeCell([FakeRun(0, 1, 5), FakeRun(1, 3, 7), FakeRun(2, 2, 6)])
    w = StoredRunBrowser({"default": {("HER-HAR", 5): quick, ("HER-HAR", 10): short}}, method="HER-HAR", n=5)
    ax = w.figure.axes[0]
    # 5 against 3000 iterations: a log axis, on which the run solved at iteration 1 spans a fifth.
    assert ax.get_xscale() == "log" and "log scale" in ax.get_xlabel()
    low, high = ax.get_xlim()
    assert low < 1 and high >= 3000
    legend = [t.get_text() for t in w.figure.legends[0].get_texts()]
    assert legend == ["seed 0: solved at 1", "seed 1: solved at 200", "seed 2: not solved in 3000 (best success 0.20)",
                      "where a seed was solved (its run of good evaluations began)"]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--" and len(line.get_xdata()) == 2]
    assert sorted(line.get_xdata()[0] for line in dashed) == [1, 200]
    assert "seed 0 at iteration 1, seed 1 at iteration 200" in w.text.value
    w.controls["n"].value = 10  # runs of similar length: a linear axis
    assert w.figure.axes[0].get_xscale() == "linear"
    # The metric dropdown shows readable names and passes the stored column's key.
    assert w.controls["metric"].options == tuple((label, key) for key, label in STORED_METRICS.items())
    assert [label for label, _ in w.controls["metric"].options] == ["greedy success rate",
                                                                    "distance to the goal at the end (bits)"]
    with pytest.raises(ValueError, match="method must be one of HER-HAR, got 'MLP'"):
        StoredRunBrowser({"default": {("HER-HAR", 5): quick}}, method="MLP", n=5)


def test_stored_run_browser_reads_the_stored_default_grid():
    from bitflip_lib.lab.table1 import load_grid, table_cells
    from bitflip_lib.ui.explorers import StoredRunBrowser

    cells = {"default": table_cells(load_grid(Path(__file__).resolve().parents[1] / "results", "default"))}
    w = StoredRunBrowser(cells, method="Vanilla-HAR", n=40)
    cell = cells["default"]["Vanilla-HAR", 40]
    assert f"{cell.n_solved} of {cell.n_runs} seeds solved" in w.text.value
    before = w.image.value
    w.controls["metric"].value = "mean_distance"
    assert w.image.value != before and w.figure.axes[0].get_ylabel() == "distance to the goal at the end (bits)"
