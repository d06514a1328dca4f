"""Behaviour tests of the plotting helpers (non-interactive Agg backend)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from bitflip_lib.config import make_config
from bitflip_lib.plots import default_labels, plot_metric, plot_seed_bands, plot_success_vs_n, plot_training
from bitflip_lib.trainer import TrainResult, train


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def fake_result(her: str = "future", solved_at: int | None = 3, iterations: int = 6, seed: int = 0) -> TrainResult:
    """A TrainResult with a hand-made history (no training), for fast plotting tests."""
    history = []
    for i in range(1, iterations + 1):
        history.append({
            "iteration": i, "loss": 0.1 / i, "mean_q": 0.1 * i, "success_rate": min(1.0, 0.2 * i),
            "mean_distance": max(0.0, 3.0 - i), "rewards_seen": 2 * i, "wall_seconds": 0.1 * i,
        })
    return TrainResult(config=make_config(n=5, her=her, seed=seed), history=history, solved_at=solved_at, iterations=iterations)


@pytest.fixture(scope="module")
def real_result() -> TrainResult:
    return train(make_config(n=6, arch="har", max_iterations=3, num_eval_agents=64, gradient_steps=2, device="cpu"), progress=False)


def test_plot_training_one_subplot_per_metric_with_labels(real_result):
    fig = plot_training(real_result, title="tiny run")
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["Success rate", "Distance to goal", "Loss", "Mean Q-value"]
    for ax in axes:
        assert ax.get_xlabel().startswith("iteration")
        assert ax.get_ylabel()
        assert len(ax.lines) >= 1
        assert ax.get_legend() is not None
    assert fig._suptitle.get_text() == "tiny run"


def test_solved_at_is_marked_by_a_vertical_line():
    ax = plot_metric(fake_result(solved_at=3), "success_rate")
    xs = [tuple(line.get_xdata()) for line in ax.lines]
    assert (3, 3) in xs  # the dashed axvline at solved_at
    ax2 = plot_metric(fake_result(solved_at=None), "success_rate")
    assert len(ax2.lines) == 1


def test_several_results_get_labels_from_what_differs():
    results = [fake_result("none"), fake_result("future")]
    assert default_labels(results) == ["her=none", "her=future"]
    ax = plot_metric(results, "mean_distance")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["her=none", "her=future"]


def test_custom_axes_and_labels_are_used():
    fig, axes = plt.subplots(1, 2)
    out = plot_training([fake_result()], metrics=("loss", "rewards_seen"), labels=["mine"], axes=axes)
    assert out is fig
    assert axes[0].get_yscale() == "log"  # positive losses are drawn on a log scale
    assert axes[1].get_legend().get_texts()[0].get_text() == "mine"


def test_wall_seconds_axis():
    ax = plot_metric(fake_result(solved_at=2), "success_rate", x="wall_seconds")
    assert ax.get_xlabel() == "wall-clock seconds"
    assert (0.2, 0.2) in [tuple(line.get_xdata()) for line in ax.lines]


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="labels"):
        plot_training([fake_result(), fake_result()], labels=["only one"])
    with pytest.raises(ValueError, match="unknown metric"):
        plot_metric(fake_result(), "no_such_metric")
    with pytest.raises(ValueError, match="empty"):
        plot_training([])
    with pytest.raises(ValueError, match="TrainResult"):
        plot_training([{"n": 5}])
    with pytest.raises(ValueError, match="x must be"):
        plot_metric(fake_result(), "loss", x="epoch")


def test_seed_bands_hold_early_stopped_runs_at_their_last_value():
    groups = {"future": [fake_result(seed=0, iterations=4), fake_result(seed=1, iterations=6)],
              "none": [fake_result("none", solved_at=None, seed=0)]}
    ax = plot_seed_bands(groups, "success_rate")
    mean_line = ax.lines[0]
    assert len(mean_line.get_xdata()) == 6
    assert mean_line.get_ydata()[-1] == pytest.approx(0.9)  # run 0 stopped at 4 and is held at 0.8; run 1 reached 1.0
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["future (2/2 solved)", "none (0/1 solved)"]


def test_success_vs_n_marks_unsolved_runs():
    rows = [{"n": 5, "label": "vanilla", "success_rate": 1.0, "solved": True},
            {"n": 10, "label": "vanilla", "success_rate": 0.3, "solved": False},
            {"n": 5, "label": "HER", "success_rate": 1.0, "solved": True},
            {"n": 10, "label": "HER", "success_rate": 1.0, "solved": True}]
    ax = plot_success_vs_n(rows)
    assert ax.get_xlabel() == "number of bits n"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["vanilla", "HER"]
    hollow = [line for line in ax.lines if line.get_markerfacecolor() == "white"]
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [10]
    ax2 = plot_success_vs_n([{"n": 5, "label": "a", "solved_at": 40}, {"n": 10, "label": "a", "solved_at": None}], metric="solved_at")
    assert any(line.get_marker() == "x" for line in ax2.lines)
    with pytest.raises(ValueError, match="label"):
        plot_success_vs_n([{"n": 5, "success_rate": 1.0}])
