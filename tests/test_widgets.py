"""Behaviour tests of the training dashboards, without a browser: set controls, click, inspect."""
from __future__ import annotations

import re
import struct
import threading
import time
import warnings

import matplotlib

matplotlib.use("Agg")

import pytest

from bitflip_lib.config import make_config
from bitflip_lib.trainer import TrainResult
from bitflip_lib.ui.dashboards import (
    CONTROLLED_FIELDS,
    TabularDashboard,
    TrainingDashboard,
    run_labels,
    summary_text,
    verdict,
)
from bitflip_lib.ui.live import FIGURE_DPI, FIGURE_WIDTH

TINY = dict(num_eval_agents=64, gradient_steps=2, device="cpu")  # fixed settings that keep runs fast


def new_dashboard(**kwargs) -> TrainingDashboard:
    return TrainingDashboard(**{**TINY, **kwargs})


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def legend_texts(fig) -> list[str]:
    """Every legend entry of a figure: the figure's own legend (under the panels) and any on its axes."""
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def test_unknown_or_invalid_defaults_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown TrainingDashboard setting"):
        TrainingDashboard(bits=5)
    with pytest.raises(ValueError, match="architecture"):
        TrainingDashboard(arch="transformer")
    with pytest.raises(ValueError, match="preset"):
        TrainingDashboard(preset="nope")


# Every argument a control cannot show, and every argument of the wrong kind, is refused with a
# message naming it and what is allowed; none is clamped to the nearest value a control shows.
TRAINING_REFUSED = [
    (dict(n=5000), r"n must be an integer from 1 to 4096, got 5000: that is the range of the dashboard's control"),
    (dict(k=100), r"k must be an integer from 1 to 64, got 100"),
    (dict(seed=2**40), r"seed must be an integer from 0 to 2147483647, got 1099511627776"),
    (dict(gamma=0.005), r"gamma must be a number from 0.01 to 1, got 0.005"),
    (dict(polyak=0.0001), r"polyak must be a number from 0.001 to 1, got 0.0001"),
    (dict(max_iterations=2_000_000), r"max_iterations must be an integer from 1 to 1000000, got 2000000"),
    (dict(redraw_seconds="fast"), r"redraw_seconds must be a number >= 0, got 'fast' \(a str\)"),
    (dict(redraw_seconds=-1), r"redraw_seconds must be a number >= 0, got -1"),
    (dict(background="no"), r"background must be True or False, got 'no'"),
    (dict(runs=5), r"runs must be a list of finished runs \(TrainResult\)"),
    (dict(runs=[1, 2]), r"runs must be a list of finished runs"),
]


@pytest.mark.parametrize("kwargs, message", TRAINING_REFUSED, ids=[next(iter(k)) + "=" + repr(v)[:12]
                                                                    for k, _ in TRAINING_REFUSED for v in k.values()])
def test_training_dashboard_refuses_what_its_controls_cannot_show(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainingDashboard(**kwargs)


TABULAR_REFUSED = [
    (dict(iterations=0), r"iterations must be an integer from 1 to 100000, got 0"),
    (dict(iterations=2.5), r"iterations must be an integer from 1 to 100000, got 2.5 \(a float\)"),
    (dict(seed=-1), r"seed must be an integer from 0 to 2147483647, got -1"),
    (dict(alpha="abc"), r"alpha must be a number from 0.01 to 1, got 'abc' \(a str\)"),
    (dict(alpha=0.001), r"alpha must be a number from 0.01 to 1, got 0.001"),
    (dict(gamma=0.0), r"gamma must be a number from 0.01 to 1, got 0"),
    (dict(epsilon=1.5), r"epsilon must be a number from 0 to 1, got 1.5"),
    (dict(n=12), r"n must be an integer from 2 to 8, got 12"),
    (dict(n=True), r"n must be an integer from 2 to 8, got True"),
    (dict(eval_every=0), r"eval_every must be an integer >= 1, got 0"),
    (dict(background="no"), r"background must be True or False, got 'no'"),
]


@pytest.mark.parametrize("kwargs, message", TABULAR_REFUSED, ids=[next(iter(k)) + "=" + repr(v)[:12]
                                                                   for k, _ in TABULAR_REFUSED for v in k.values()])
def test_tabular_dashboard_refuses_what_its_controls_cannot_show(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TabularDashboard(**kwargs)


def test_set_and_run_refuse_values_outside_a_control_and_change_nothing():
    dash = new_dashboard(n=7, k=4, her="future")
    before = dash.values()
    for bad in (dict(n=5000), dict(k=100), dict(seed=2**40), dict(gamma=0.005)):
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be"):
            dash.set(**bad)
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be"):
            dash.run(**bad)
    assert dash.values() == before and dash.runs == []
    tab = TabularDashboard(n=3)
    with pytest.raises(ValueError, match="iterations must be an integer from 1 to 100000, got 0"):
        tab.run(iterations=0)
    assert tab.values()["iterations"] == 300 and tab.runs == []


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
    # The largest values the controls show are accepted as they are.
    edge = TrainingDashboard(n=4096, k=64, seed=2**31 - 1, gamma=0.01, polyak=0.001, max_iterations=1_000_000)
    assert (edge.values()["n"], edge.values()["k"], edge.values()["seed"]) == (4096, 64, 2**31 - 1)
    assert (edge.values()["gamma"], edge.values()["polyak"], edge.values()["max_iterations"]) == (0.01, 0.001, 1_000_000)


def test_nothing_is_drawn_before_the_first_run():
    dash = new_dashboard()
    assert dash.figure is None and dash.image.layout.display == "none" and dash.image.value == b""
    assert "press <b>Train</b>" in dash.status.value


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
    assert dash.image.layout.display is None
    titles = [ax.get_title() for ax in dash.figure.axes]
    assert titles == ["Success rate (greedy, test agents)", "Distance to goal at the end", "Loss",
                      "Q-values of the online network"]
    assert "n = 6" in dash.summary.value and "no target network" in dash.summary.value
    assert "k =" not in dash.summary.value  # HER final does not use k
    assert dash.runs == [r]
    assert not dash.running and not dash.train_button.disabled and dash.stop_button.disabled


def test_figures_are_drawn_at_the_notebook_width_and_text_is_readable():
    dash = new_dashboard(n=5, max_iterations=2)
    dash.run()
    width, height = png_size(dash.image.value)
    assert width == round(FIGURE_WIDTH * FIGURE_DPI) == 880 and 450 < height < 700
    assert dash.image.layout.max_width == "880px"  # shown at its own size, not scaled down
    sizes = [t.get_fontsize() for ax in dash.figure.axes for t in (ax.title, *ax.get_xticklabels(), *ax.get_yticklabels())]
    sizes += [t.get_fontsize() for legend in dash.figure.legends for t in legend.get_texts()]
    assert min(sizes) * FIGURE_DPI / 72 >= 12  # every label at least 12 px high
    tab = TabularDashboard(n=3, iterations=20, eval_every=10, background=False)
    tab.run()
    assert png_size(tab.image.value)[0] == 880


def test_run_applies_overrides_to_the_controls_and_returns_the_result():
    dash = new_dashboard(n=5, max_iterations=2)
    result = dash.run(n=6, her="none", polyak=None, max_seconds=60.0)
    assert result is dash.result
    assert dash.values()["n"] == 6 and dash.values()["her"] == "none" and dash.values()["polyak"] is None
    assert result.config.n == 6 and result.config.her == "none" and result.config.max_seconds == 60.0
    assert dash.config().max_seconds is None  # a non-control override applies to that run only
    with pytest.raises(ValueError, match="unknown configuration"):
        dash.run(bits=3)


def test_stop_button_ends_a_background_run_and_the_label_says_where():
    dash = new_dashboard(n=6, max_iterations=100_000, redraw_seconds=0.0)
    started = threading.Event()
    original = dash._draw

    def draw_and_signal(result):
        original(result)
        started.set()

    dash._draw = draw_and_signal
    dash.train_button.click()  # background thread
    assert started.wait(60), "training did not start"
    assert dash.running and dash.clear_button.disabled
    with pytest.raises(RuntimeError, match="already"):
        dash.run()
    with pytest.raises(RuntimeError, match="press Stop"):
        dash.clear()
    dash.stop_button.click()
    result = dash.wait(60)
    assert result is not None and result.stopped_by == "callback"
    assert result.iterations < 100_000
    assert not dash.running and f"Stopped by you at iteration {result.iterations}" in dash.status.value
    # The legend says where the run stopped, not its budget of 100000 iterations.
    assert legend_texts(dash.figure)[0] == f"#1 n=6 har her=future k=4 (stopped at {result.iterations})"
    assert not any("100000" in t for t in legend_texts(dash.figure))


def test_a_second_click_while_training_starts_no_second_run():
    dash = new_dashboard(n=5, max_iterations=100_000, redraw_seconds=0.0)
    dash.train_button.click()
    first = dash._thread
    deadline = time.time() + 60
    while "iteration" not in dash.status.value and time.time() < deadline:
        time.sleep(0.05)
    dash._on_train()  # the button is disabled in the browser; a second call is refused by the claim
    assert "already going on" in dash.status.value and dash._thread is first
    dash.stop()
    dash.wait(60)
    assert len(dash.runs) == 1 and not dash.running and not first.is_alive()


def test_training_error_is_shown_not_swallowed_silently(monkeypatch):
    import bitflip_lib.ui.dashboards as w

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(w, "train", broken)
    dash = new_dashboard(background=False, n=5)
    dash.train_button.click()
    assert isinstance(dash.error, RuntimeError) and "RuntimeError: boom" in dash.status.value
    with pytest.raises(RuntimeError, match="boom"):
        dash.run()
    assert not dash.running and not dash.train_button.disabled


def test_runs_are_kept_and_overlaid_with_a_legend_per_run_and_clear_forgets_them():
    dash = new_dashboard(n=5, max_iterations=2, arch="uvfa")
    dash.run(her="none")
    dash.run(her="none")  # the same settings again: a second curve, said to repeat the first
    dash.run(her="future")
    assert len(dash.runs) == 3
    legend = legend_texts(dash.figure)
    assert legend[:3] == ["#1 her=none", "#2 = #1's settings (same curve)", "#3 her=future k=4"]
    success = dash.figure.axes[0].get_lines()
    assert len(success) == 3
    assert success[0].get_linewidth() < success[2].get_linewidth()  # older runs thinner, on top of the newest
    assert success[0].get_zorder() > success[2].get_zorder()
    assert "Run #3" in dash.status.value and "Run #3" in dash.summary.value
    dash.clear_button.click()
    # Nothing stale: no runs, no figure (no empty axes), no settings line of the last run.
    assert dash.runs == [] and dash.figure is None and dash.image.layout.display == "none"
    assert dash.summary.value == "" and dash.status.value.startswith("Runs cleared")
    dash.run()
    assert legend_texts(dash.figure)[0] == "#1 n=5 uvfa her=future k=4"  # numbering restarts


def test_a_new_dashboard_starts_empty_so_a_second_run_all_starts_from_run_1():
    first = new_dashboard(n=5, max_iterations=1)
    first.run()
    second = new_dashboard(n=5, max_iterations=1)  # the cell run again, e.g. by a second Run All
    assert second.runs == [] and second.figure is None
    second.run()
    assert "Run #1" in second.status.value and len(first.runs) == 1
    shared = new_dashboard(n=5, max_iterations=1, runs=first.runs)  # sharing is asked for explicitly
    assert shared.runs is first.runs and shared.figure is not None


def test_a_live_run_before_its_first_evaluation_draws_without_warnings_or_empty_ranges():
    dash = new_dashboard(n=5, max_iterations=3, eval_every=5, redraw_seconds=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. matplotlib's "No artists with labels found to put in legend"
        dash.run()
    success = dash.figure.axes[0]
    assert [t.get_text() for t in success.texts] == []  # the last iteration was evaluated
    dash.figure.canvas.draw()  # one evaluation, at iteration 3, on the iteration axis 1..3 of the loss
    assert success.get_xlim() == (0.5, 3.5) and all(float(t).is_integer() for t in success.get_xticks())
    live = TrainResult(config=make_config(n=5, **TINY), history=[{"iteration": 1, "loss": 0.1, "mean_q": 0.2,
                                                                    "max_q": 0.3}], iterations=1)
    fresh = new_dashboard(n=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh._draw(live)
    axes = fresh.figure.axes
    assert [t.get_text() for t in axes[0].texts] == ["no evaluation yet"] and list(axes[0].get_yticks()) == []
    assert list(axes[2].get_xticks()) != []  # the loss panel that shares the x-axis keeps its ticks
    assert legend_texts(fresh.figure)[0] == "#1 n=5 har her=future k=4 (running)"


def test_q_panel_plots_mean_and_max_q_against_the_bound_one():
    dash = new_dashboard(n=5, max_iterations=3)
    result = dash.run(clip_targets=False)
    for record in result.history:
        assert record["max_q"] >= record["mean_q"] - 1e-6  # the max over every action bounds the mean of the taken ones
    q_axes = dash.figure.axes[3]
    ys = [list(line.get_ydata()) for line in q_axes.get_lines()]
    assert [record["mean_q"] for record in result.history] in ys and [record["max_q"] for record in result.history] in ys
    assert [1.0, 1.0] in ys  # the bound clipping enforces
    assert any("bound 1" in t for t in legend_texts(dash.figure))


def test_loss_axis_is_logarithmic_only_over_more_than_a_decade_and_never_labels_minor_ticks():
    dash = new_dashboard(n=5, max_iterations=2)
    config = make_config(n=5, **TINY)
    narrow = TrainResult(config=config, history=[{"iteration": i, "loss": v} for i, v in ((1, 0.3), (2, 0.2))],
                         iterations=2)
    wide = TrainResult(config=config, history=[{"iteration": i, "loss": v} for i, v in ((1, 1.0), (2, 1e-3))],
                       iterations=2)
    dash.runs[:] = [narrow]
    dash._draw(None)
    assert dash.figure.axes[2].get_yscale() == "linear"
    dash.runs[:] = [wide]
    dash._draw(None)
    loss = dash.figure.axes[2]
    assert loss.get_yscale() == "log"
    dash.figure.canvas.draw()
    assert all(t.get_text() == "" for t in loss.yaxis.get_minorticklabels())


def test_run_labels_show_what_differs_where_runs_stopped_and_the_running_one():
    config = make_config(n=5, **TINY)

    def run(**changes) -> TrainResult:
        stopped_by = changes.pop("stopped_by", "max_iterations")
        iterations = changes.pop("iterations", 10)
        return TrainResult(config=config.replace(**changes), iterations=iterations, stopped_by=stopped_by)

    a, b = run(max_iterations=3000, stopped_by="callback", iterations=37), run(max_iterations=3000)
    assert run_labels([(1, a), (2, b)]) == ["#1 (stopped at 37)", "#2 budget 3000"]
    c = run(gamma=0.9)
    assert run_labels([(1, b), (2, c)], live=c) == ["#1 γ=0.98", "#2 γ=0.9 (running)"]
    assert run_labels([(4, b)]) == ["#4 n=5 har her=future k=4"]


def test_status_explains_why_a_run_is_not_solved_and_rounds_numbers():
    dash = new_dashboard(n=5, max_iterations=4, eval_every=1)
    result = dash.run()
    text = verdict(result)
    assert not result.solved  # 4 evaluations cannot make a run of 5
    assert "Not solved" in text and "solved needs 5 evaluations in a row at ≥ 0.99" in text
    assert "a budget of 4 iterations holds only 4 (one every iteration)" in text and "Budget used up" in text
    assert not re.search(r"\d\.\d{4,}", text), text  # numbers rounded
    assert dash.status.value == "Run #1: " + text
    assert "thread)" in dash.summary.value or "threads)" in dash.summary.value or "cuda" in dash.summary.value


def test_a_perfect_last_evaluation_that_is_not_solved_says_which_rule_it_misses():
    config = make_config(n=20, arch="har", max_iterations=5, **TINY)
    history = [{"iteration": i, "success_rate": s, "mean_distance": 0.0} for i, s in
               enumerate((0.49000000953674316, 0.98, 1.0, 1.0, 1.0), start=1)]
    result = TrainResult(config=config, history=history, iterations=5, wall_seconds=2.0689655172413794)
    text = summary_text(result)
    assert text.startswith("Not solved after 5 iterations: success 1.00 on the last evaluation, but solved needs "
                           "5 evaluations in a row at ≥ 0.99, and this run ended with 3 in a row. Budget used up, "
                           "2.07 s.")
    assert "0.49000000953674316" not in text and "2.0689655172413794" not in text


def test_tabular_dashboard_converges_overlays_runs_and_clears():
    dash = TabularDashboard(n=3, iterations=80, eval_every=10, background=False)
    assert dash.figure is None and dash.image.layout.display == "none"
    result = dash.run()
    first, last = result.history[0], result.history[-1]
    assert last["max_error"] < first["max_error"] and last["mean_error"] < 0.1
    assert dash.redraws == len(result.history) + 1  # one redraw per evaluation, and the finished run
    assert "Run #1: done after 80 iterations" in dash.status.value
    assert [ax.get_title() for ax in dash.figure.axes] == ["Error of the table", "Greedy policy: success",
                                                            "Run #1: learned against exact"]
    dash.run(alpha=0.2)
    assert [r.settings["alpha"] for r in dash.runs] == [0.5, 0.2]
    assert legend_texts(dash.figure)[:2] == ["#1 α=0.5", "#2 α=0.2"]
    assert len(dash.figure.axes[1].get_lines()) == 2  # both runs' greedy success
    error = dash.figure.axes[0]
    if error.get_yscale() == "log":  # no crowded minor labels (2x10^-2, 3x10^-2, ...)
        dash.figure.canvas.draw()
        assert all(t.get_text() == "" for t in error.yaxis.get_minorticklabels())
    dash.clear()
    assert dash.runs == [] and dash.figure is None and dash.image.layout.display == "none"
    dash.run(iterations=20)
    assert "Run #1" in dash.status.value


def test_tabular_dashboard_stop_ends_a_background_run_and_says_where():
    dash = TabularDashboard(n=4, iterations=100_000, eval_every=5)
    dash.train_button.click()
    deadline = time.time() + 60
    while dash.redraws < 2 and time.time() < deadline:
        time.sleep(0.05)
    dash.stop_button.click()
    result = dash.wait(60)
    assert result is not None and result.final["iteration"] < 100_000
    stopped_at = result.final["iteration"]
    assert f"stopped by you at iteration {stopped_at}" in dash.status.value and not dash.running
    assert legend_texts(dash.figure)[0] == f"#1 n=4 α=0.5 γ=0.9 ε=1 (stopped at {stopped_at})"
