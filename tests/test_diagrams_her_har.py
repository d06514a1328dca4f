"""The HER relabelling and HAR diagrams (chapters 4 and 6) build headless, say what they claim,
and reject episodes they cannot draw."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import pytest
from matplotlib import pyplot as plt

from bitflip_lib.networks import HAR
from bitflip_lib.ui import diagrams

EPISODE = ["00110", "10110", "10100", "11100", "11101"]


def _texts(fig) -> str:
    return " ".join([t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes])


def _renders(fig) -> bool:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()[:4] == b"\x89PNG"


def test_her_relabelling_draws_every_state_and_the_goal():
    before = set(plt.get_fignums())
    fig = diagrams.her_relabelling(EPISODE, "01011", t=1)
    assert set(plt.get_fignums()) == before and _renders(fig)
    text = _texts(fig)
    assert all(s in text for s in EPISODE) and "01011" in text
    assert "flip 0" in text and "flip 3" in text  # the bit each step flipped
    assert "final" in text and "future" in text and "episode" in text


@pytest.mark.parametrize("states, goal, t, problem", [
    (["000"], "111", 0, "at least one step"),
    (["000", "011"], "111", 0, "exactly one bit"),
    (["000", "001"], "001", 0, "reaches its goal"),
    (["000", "001"], "11", 0, "bit string of length 3"),
    (["000", "001"], "111", 1, "t must name a step"),
])
def test_her_relabelling_rejects_what_it_cannot_draw(states, goal, t, problem):
    with pytest.raises(ValueError, match=problem):
        diagrams.her_relabelling(states, goal, t)


def test_har_architecture_counts_the_library_parameters():
    fig = diagrams.har_architecture()
    assert _renders(fig)
    count = sum(p.numel() for p in HAR(10).parameters())
    assert f"{count:,} parameters" in _texts(fig)
    assert f"{sum(p.numel() for p in HAR(3, hidden=(8,)).parameters()):,} parameters" in _texts(diagrams.har_architecture(3, hidden=(8,)))
    with pytest.raises(ValueError, match="hidden"):
        diagrams.har_architecture(hidden=())
