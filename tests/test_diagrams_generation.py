"""The diagrams of chapters 8 and 9 build headless, show what they claim, and reject bad input."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import pytest
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from bitflip_lib.ui import diagrams


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]


def _renders(fig: Figure) -> bool:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()[:4] == b"\x89PNG"


@pytest.mark.parametrize("make", [lambda: diagrams.generation_tree("101"), lambda: diagrams.generation_tree("0"),
                                  diagrams.rlhf_pipeline, diagrams.tree_and_dag])
def test_every_generation_diagram_is_a_closed_figure_that_renders(make):
    open_before = set(plt.get_fignums())
    fig = make()
    assert isinstance(fig, Figure)
    assert set(plt.get_fignums()) == open_before, "a returned figure is closed in pyplot (shown once in a notebook)"
    assert _renders(fig)


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
