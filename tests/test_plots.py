"""Behaviour tests of the plotting helpers (non-interactive Agg backend)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from bitflip_lib.config import make_config
from bitflip_lib.lab.runs import StoredRun
from bitflip_lib.lab.table1 import table_cells
from bitflip_lib.trainer import TrainResult, train
from bitflip_lib.ui.plots import default_labels, plot_iterations_vs_n, plot_metric, plot_seed_bands, plot_training


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


def stored(result: TrainResult) -> StoredRun:
    return StoredRun.from_result(result)


def test_a_stored_run_is_drawn_like_the_result_it_was_made_from():
    result = fake_result(solved_at=3)
    ax_result = plot_metric(result, "mean_distance")
    ax_stored = plot_metric(stored(result), "mean_distance")
    assert list(ax_stored.lines[0].get_xdata()) == list(ax_result.lines[0].get_xdata()) == [1, 2, 3, 4, 5, 6]
    assert list(ax_stored.lines[0].get_ydata()) == list(ax_result.lines[0].get_ydata())
    assert (3, 3) in [tuple(line.get_xdata()) for line in ax_stored.lines]  # solved_at is marked for both
    fig = plot_training([stored(fake_result("none")), stored(fake_result("future"))], metrics=("success_rate", "loss"))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["her=none", "her=future"]
    with pytest.raises(ValueError, match="wall-clock"):
        plot_metric(stored(result), "success_rate", x="wall_seconds")
    with pytest.raises(ValueError, match="unknown metric 'rewards_seen'"):
        plot_metric(stored(result), "rewards_seen")  # a stored curve keeps success, distance and loss only


def test_seed_bands_accept_stored_runs():
    ax = plot_seed_bands({"stored": [stored(fake_result(seed=0, iterations=4)), stored(fake_result(seed=1))]})
    assert ax.lines[0].get_ydata()[-1] == pytest.approx(0.9)


def _stored_run(method_her: str, n: int, seed: int, solved_at: int | None) -> StoredRun:
    result = TrainResult(config=make_config(n=n, arch="har", her=method_her, seed=seed),
                         history=[{"iteration": 1, "success_rate": 1.0 if solved_at else 0.0}],
                         solved_at=solved_at, confirmed_at=None if solved_at is None else solved_at + 4,
                         iterations=1)
    return StoredRun.from_result(result)


def test_iterations_vs_n_draws_solved_mixed_and_failed_cells_beside_the_write_up():
    runs = [_stored_run("future", 20, s, at) for s, at in enumerate([10, 30, 20])]
    runs += [_stored_run("future", 30, 0, 50), _stored_run("future", 30, 1, None)]
    runs += [_stored_run("none", 20, s, None) for s in range(2)]
    ax = plot_iterations_vs_n(table_cells(runs))
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "number of bits n"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["HER-HAR (here)", "HER-HAR (write-up)", "Vanilla-HAR (here)", "Vanilla-HAR (write-up)"]
    ours = ax.lines[0]
    # The same moment on both sides: where the seeds' streaks completed (solved_at + 4 here), and
    # the write-up's printed N + 1.
    assert list(ours.get_xdata()) == [20, 30] and list(ours.get_ydata()) == [24, 54]
    hollow = [line for line in ax.lines if line.get_markerfacecolor() == "white"]
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [30]  # n = 30: one seed of two
    crosses = [line for line in ax.lines if line.get_marker() == "x" and len(line.get_xdata())]
    assert [20] in [list(line.get_xdata()) for line in crosses]  # vanilla HAR at n = 20 fails here
    assert [30, 40, 50] in [list(line.get_xdata()) for line in crosses]  # ... and from n = 30 in the write-up
    theirs = [line for line in ax.lines if line.get_label() == "HER-HAR (write-up)"][0]
    assert list(theirs.get_ydata()) == [374, 614, 637, 659]
    with pytest.raises(ValueError, match="cells is empty"):
        plot_iterations_vs_n({})
    with pytest.raises(ValueError, match="no cells for HER-UVFA"):
        plot_iterations_vs_n(table_cells(runs), methods=["HER-UVFA"])
