"""Behaviour tests of the training dashboard, without a browser: set controls, click, inspect."""
from __future__ import annotations

import re
import threading
import time

import matplotlib

matplotlib.use("Agg")

import pytest

from bitflip_lib.ui.dashboards import CONTROLLED_FIELDS, SESSION_RUNS, TabularDashboard, TrainingDashboard, verdict

TINY = dict(num_eval_agents=64, gradient_steps=2, device="cpu")  # fixed settings that keep runs fast


def new_dashboard(**kwargs) -> TrainingDashboard:
    """A dashboard with a run list of its own, so tests do not see each other's runs."""
    return TrainingDashboard(runs=[], **{**TINY, **kwargs})


def test_unknown_or_invalid_defaults_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown TrainingDashboard setting"):
        TrainingDashboard(bits=5)
    with pytest.raises(ValueError, match="architecture"):
        TrainingDashboard(arch="transformer")
    with pytest.raises(ValueError, match="preset"):
        TrainingDashboard(preset="nope")


def test_controls_start_from_the_defaults():
    dash = new_dashboard(n=7, arch="uvfa", her="none", k=2, max_iterations=9, gamma=0.95, polyak=None,
                         clip_targets=False, seed=3)
    assert dash.values() == {"n": 7, "arch": "uvfa", "her": "none", "k": 2, "max_iterations": 9, "gamma": 0.95,
                             "polyak": None, "clip_targets": False, "seed": 3}
    assert dash.controls["polyak"].disabled and dash.controls["k"].disabled
    assert dash.controls["k"].layout.display == "none"  # k means nothing without HER: hidden
    dash.controls["her"].value = "future"
    assert not dash.controls["k"].disabled and dash.controls["k"].layout.display is None
    dash.controls["her"].value = "final"  # one goal per step: k unused again
    assert dash.controls["k"].layout.display == "none"
    assert set(dash.controls) == set(CONTROLLED_FIELDS)
    assert dash.fixed == TINY
    assert dash.config().num_eval_agents == 64


def test_click_train_trains_with_the_control_values_and_draws():
    dash = new_dashboard(background=False, redraw_seconds=0.0)
    dash.controls["n"].value = 6
    dash.controls["arch"].value = "mlp"
    dash.controls["her"].value = "final"
    dash.controls["max_iterations"].value = 3
    dash.controls["seed"].value = 5
    dash.gamma_auto.value = False
    dash.controls["gamma"].value = 0.9
    dash.use_target.value = False
    dash.controls["clip_targets"].value = False
    dash.train_button.click()
    r = dash.result
    assert r is not None and dash.error is None
    c = r.config
    assert (c.n, c.arch, c.her, c.seed, c.gamma, c.polyak, c.clip_targets) == (6, "mlp", "final", 5, 0.9, None, False)
    assert c.num_eval_agents == 64 and c.gradient_steps == 2
    assert r.iterations == 3
    assert dash.redraws >= 2  # at least one live redraw during training, plus the final one
    assert dash.image.value[:4] == b"\x89PNG"
    titles = [ax.get_title() for ax in dash.figure.axes]
    assert titles == ["Success rate (greedy, test agents)", "Distance to goal at the end", "Loss",
                      "Q-values of the online network"]
    assert "n = 6" in dash.summary.value and "no target network" in dash.summary.value
    assert "k =" not in dash.summary.value  # HER final does not use k
    assert dash.runs == [r]
    assert not dash.running and not dash.train_button.disabled and dash.stop_button.disabled


def test_run_applies_overrides_to_the_controls_and_returns_the_result():
    dash = new_dashboard(n=5, max_iterations=2)
    result = dash.run(n=6, her="none", polyak=None, max_seconds=60.0)
    assert result is dash.result
    assert dash.values()["n"] == 6 and dash.values()["her"] == "none" and dash.values()["polyak"] is None
    assert result.config.n == 6 and result.config.her == "none" and result.config.max_seconds == 60.0
    assert dash.config().max_seconds is None  # a non-control override applies to that run only
    with pytest.raises(ValueError, match="unknown configuration"):
        dash.run(bits=3)


def test_stop_button_ends_a_background_run_via_the_callback():
    dash = new_dashboard(n=6, max_iterations=100_000, redraw_seconds=0.0)
    started = threading.Event()
    original = dash._draw

    def draw_and_signal(result):
        original(result)
        started.set()

    dash._draw = draw_and_signal
    dash.train_button.click()  # background thread
    assert started.wait(60), "training did not start"
    assert dash.running
    with pytest.raises(RuntimeError, match="already"):
        dash.run()
    dash.stop_button.click()
    result = dash.wait(60)
    assert result is not None and result.stopped_by == "callback"
    assert result.iterations < 100_000
    assert not dash.running and "Stopped by you" in dash.status.value


def test_training_error_is_shown_not_swallowed_silently(monkeypatch):
    import bitflip_lib.ui.dashboards as w

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(w, "train", broken)
    dash = new_dashboard(background=False, n=5)
    dash.train_button.click()
    assert isinstance(dash.error, RuntimeError) and "boom" in dash.status.value
    with pytest.raises(RuntimeError, match="boom"):
        dash.run()
    assert not dash.running


def test_runs_are_kept_and_overlaid_with_a_legend_per_run_and_clear_forgets_them():
    dash = new_dashboard(n=5, max_iterations=2, arch="uvfa")
    dash.run(her="none")
    dash.run(her="none")  # the same settings again: a second curve, not a silent redraw
    dash.run(her="future")
    assert len(dash.runs) == 3
    legend = [t.get_text() for t in dash.figure.axes[0].get_legend().get_texts()]
    assert legend == ["#1 her=none", "#2 her=none", "#3 her=future k=4"]
    assert len(dash.figure.axes[0].get_lines()) == 3
    assert "Run #3" in dash.status.value
    dash.clear_button.click()
    assert dash.runs == [] and dash.figure.axes[0].get_legend() is None
    dash.run()
    assert [t.get_text() for t in dash.figure.axes[0].get_legend().get_texts()] == ["#1 n=5 uvfa her=future k=4"]


def test_dashboards_of_one_notebook_share_their_runs_by_default():
    SESSION_RUNS.clear()
    try:
        first = TrainingDashboard(n=5, max_iterations=1, **TINY)
        first.run()
        second = TrainingDashboard(n=5, max_iterations=1, **TINY)  # e.g. the cell was run again
        assert second.runs is SESSION_RUNS and len(second.runs) == 1
        assert second.figure is not None  # it shows the earlier run at once
    finally:
        SESSION_RUNS.clear()


def test_q_panel_plots_mean_and_max_q_against_the_bound_one():
    dash = new_dashboard(n=5, max_iterations=3)
    result = dash.run(clip_targets=False)
    for record in result.history:
        assert record["max_q"] >= record["mean_q"] - 1e-6  # the max over every action bounds the mean of the taken ones
    q_axes = dash.figure.axes[3]
    ys = [list(line.get_ydata()) for line in q_axes.get_lines()]
    assert [record["mean_q"] for record in result.history] in ys and [record["max_q"] for record in result.history] in ys
    assert [1.0, 1.0] in ys  # the bound clipping enforces
    assert any("bound 1" in t.get_text() for t in q_axes.get_legend().get_texts())


def test_status_explains_why_a_run_is_not_solved_and_rounds_numbers():
    dash = new_dashboard(n=5, max_iterations=4, eval_every=1)
    result = dash.run()
    text = verdict(result)
    assert not result.solved  # 4 evaluations cannot make a run of 5
    assert "Not solved" in text and "solved needs 5 evaluations in a row at &ge; 0.99" in text
    assert "in a row" in text and "Budget used up" in text
    assert "0.0498046875" not in text
    assert not re.search(r"\d\.\d{4,}", text), text  # numbers rounded
    assert dash.status.value == "Run #1: " + text
    assert "thread)" in dash.summary.value or "threads)" in dash.summary.value or "cuda" in dash.summary.value


def test_tabular_dashboard_converges_to_q_star_live():
    dash = TabularDashboard(n=3, iterations=80, eval_every=10, background=False)
    result = dash.run()
    first, last = result.history[0], result.history[-1]
    assert last["max_error"] < first["max_error"] and last["mean_error"] < 0.1
    assert dash.redraws == len(result.history)  # one redraw per evaluation
    assert dash.image.value[:4] == b"\x89PNG"
    assert "Done after 80 iterations" in dash.status.value
    assert [ax.get_title() for ax in dash.figure.axes] == ["Error of the table", "Greedy policy: success",
                                                            "Every entry: learned against exact"]
    with pytest.raises(ValueError, match="n must be an integer from 2 to 8"):
        TabularDashboard(n=12)


def test_tabular_dashboard_stop_ends_a_background_run():
    dash = TabularDashboard(n=4, iterations=100_000, eval_every=5)
    dash.train_button.click()
    deadline = time.time() + 60
    while dash.redraws < 2 and time.time() < deadline:
        time.sleep(0.05)
    dash.stop_button.click()
    result = dash.wait(60)
    assert result is not None and result.final["iteration"] < 100_000
    assert "stopped by you" in dash.status.value and not dash.running
