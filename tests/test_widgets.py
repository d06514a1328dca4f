"""Behaviour tests of the training dashboard, without a browser: set controls, click, inspect."""
from __future__ import annotations

import threading

import matplotlib

matplotlib.use("Agg")

import pytest

from bitflip_lib.widgets import CONTROLLED_FIELDS, TrainingDashboard

TINY = dict(num_eval_agents=64, gradient_steps=2, device="cpu")  # fixed settings that keep runs fast


def test_unknown_or_invalid_defaults_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown TrainingDashboard setting"):
        TrainingDashboard(bits=5)
    with pytest.raises(ValueError, match="architecture"):
        TrainingDashboard(arch="transformer")
    with pytest.raises(ValueError, match="preset"):
        TrainingDashboard(preset="nope")


def test_controls_start_from_the_defaults():
    dash = TrainingDashboard(n=7, arch="uvfa", her="none", k=2, max_iterations=9, gamma=0.95, polyak=None,
                             clip_targets=False, seed=3, **TINY)
    assert dash.values() == {"n": 7, "arch": "uvfa", "her": "none", "k": 2, "max_iterations": 9, "gamma": 0.95,
                             "polyak": None, "clip_targets": False, "seed": 3}
    assert dash.controls["polyak"].disabled and dash.controls["k"].disabled
    assert set(dash.controls) == set(CONTROLLED_FIELDS)
    assert dash.fixed == TINY
    assert dash.config().num_eval_agents == 64


def test_click_train_trains_with_the_control_values_and_draws():
    dash = TrainingDashboard(background=False, redraw_seconds=0.0, **TINY)
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
    assert titles == ["Success rate", "Distance to goal", "Loss"]
    assert "n" in dash.summary.value and "iterations" in dash.summary.value
    assert not dash.running and not dash.train_button.disabled and dash.stop_button.disabled


def test_run_applies_overrides_to_the_controls_and_returns_the_result():
    dash = TrainingDashboard(n=5, max_iterations=2, **TINY)
    result = dash.run(n=6, her="none", polyak=None, max_seconds=60.0)
    assert result is dash.result
    assert dash.values()["n"] == 6 and dash.values()["her"] == "none" and dash.values()["polyak"] is None
    assert result.config.n == 6 and result.config.her == "none" and result.config.max_seconds == 60.0
    assert dash.config().max_seconds is None  # a non-control override applies to that run only
    with pytest.raises(ValueError, match="unknown configuration"):
        dash.run(bits=3)


def test_stop_button_ends_a_background_run_via_the_callback():
    dash = TrainingDashboard(n=6, max_iterations=100_000, redraw_seconds=0.0, **TINY)
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
    assert not dash.running and "stopped" in dash.status.value


def test_training_error_is_shown_not_swallowed_silently(monkeypatch):
    import bitflip_lib.widgets as w

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(w, "train", broken)
    dash = TrainingDashboard(background=False, n=5, **TINY)
    dash.train_button.click()
    assert isinstance(dash.error, RuntimeError) and "boom" in dash.status.value
    with pytest.raises(RuntimeError, match="boom"):
        dash.run()
    assert not dash.running
