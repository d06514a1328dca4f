"""Figures fit a notebook: JupyterLab shows a notebook's outputs about 930 px wide on a laptop
screen and scales a wider image down, text and all, so a figure is at most 9 inches wide (900 px
at 100 dpi; the inline backend's tight bounding box adds 0.2 inches)."""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest

from bitflip_lib.config import make_config
from bitflip_lib.trainer import TrainResult
from bitflip_lib.ui.plots import plot_training

RUN = TrainResult(config=make_config(n=5, device="cpu"), iterations=2, history=[
    {"iteration": i, "success_rate": 0.5, "mean_distance": 1.0, "loss": 0.1, "mean_q": 0.5} for i in (1, 2)])


@pytest.mark.parametrize("metrics", [("success_rate",), ("success_rate", "mean_distance"),
                                     ("success_rate", "mean_distance", "loss"),
                                     ("success_rate", "mean_distance", "loss", "mean_q")])
def test_plot_training_is_at_most_the_notebook_width(metrics):
    fig = plot_training(RUN, metrics=metrics)
    width, height = fig.get_size_inches()
    assert width <= 9.0 and fig.dpi == 100
    assert len([ax for ax in fig.axes if ax.get_visible()]) == len(metrics)
    if len(metrics) == 4:  # two rows of two, not four panels of 2.3 inches in a row
        assert height > 6


CHAPTERS = sorted((Path(__file__).resolve().parents[1] / "chapters").glob("0[1-7]*.py"))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_figures_are_at_most_the_notebook_width(chapter):
    sizes = [(float(w), float(h)) for w, h in re.findall(r"figsize=\(\s*([\d.]+)\s*,\s*([\d.]+)\s*\)", chapter.read_text())]
    too_wide = [w for w, _ in sizes if w > 9.0]
    assert not too_wide, f"{chapter.name}: figures {too_wide} inches wide are shown scaled down (text 5-8 px): use <= 9.0"


def test_the_width_check_sees_a_wide_figure(tmp_path):
    wide = tmp_path / "01_x.py"
    wide.write_text("fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))\n")
    with pytest.raises(AssertionError, match="16.0"):
        test_chapter_figures_are_at_most_the_notebook_width(wide)
