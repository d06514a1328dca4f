"""Exercises 7 (the DQN learner step) and 8 (the replay buffer): the graders catch the classic
mistakes, and tiered hints keep the recipe out of the first error message.

tests/test_graders.py already proves that every check passes on the solutions and fails on the
stubs; here each wrong implementation must make the check that names its mistake FAIL.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from bitflip_lib.dqn import polyak_update
from bitflip_lib.grading import EXERCISES
from bitflip_lib.grading.notebook import load_graded
from bitflip_lib.grading.report import run_exercise
from bitflip_lib.grading.stubs import RECIPE_POINTER, exercise_text, make_stub
from bitflip_lib.replay import ReplayBuffer as LibraryBuffer
from bitflip_lib.replay import Transitions

ROOT = Path(__file__).resolve().parents[1]


def _failed(name: str, **names) -> dict[str, str]:
    report = run_exercise(EXERCISES[name], names, include_slow=False)
    return {r.check: r.message for r in report.results if not r.passed}


# --- ex07: the learner step --------------------------------------------------------------------


def _q(online, batch):
    return online(batch.state, batch.goal).gather(1, batch.action.unsqueeze(1)).squeeze(1)


def _y(net, batch, gamma, clip=True):
    with torch.no_grad():
        y = batch.reward + gamma * (1 - batch.done) * net(batch.next_state, batch.goal).max(1).values
    return y.clamp(0, 1) if clip else y


def _step(optimizer, loss):
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def polyak_first(online, target, optimizer, batch, gamma, tau):
    loss = F.mse_loss(_q(online, batch), _y(target, batch, gamma))
    polyak_update(target, online, tau)  # too early: towards the weights from before the step
    _step(optimizer, loss)
    return loss.detach()


def no_clipping(online, target, optimizer, batch, gamma, tau):
    loss = F.mse_loss(_q(online, batch), _y(target, batch, gamma, clip=False))
    _step(optimizer, loss)
    polyak_update(target, online, tau)
    return loss.detach()


def target_from_online(online, target, optimizer, batch, gamma, tau):
    loss = F.mse_loss(_q(online, batch), _y(online, batch, gamma))
    _step(optimizer, loss)
    polyak_update(target, online, tau)
    return loss.detach()


def no_zero_grad(online, target, optimizer, batch, gamma, tau):
    loss = F.mse_loss(_q(online, batch), _y(target, batch, gamma))
    loss.backward()  # adds to whatever gradients were left over
    optimizer.step()
    polyak_update(target, online, tau)
    return loss.detach()


def no_detach(online, target, optimizer, batch, gamma, tau):
    best = target(batch.next_state, batch.goal).max(1).values  # outside no_grad: the graph reaches the target
    y = (batch.reward + gamma * (1 - batch.done) * best).clamp(0, 1)
    loss = F.mse_loss(_q(online, batch), y)
    _step(optimizer, loss)
    polyak_update(target, online, tau)
    return loss.detach()


def no_done_mask(online, target, optimizer, batch, gamma, tau):
    with torch.no_grad():
        y = (batch.reward + gamma * target(batch.next_state, batch.goal).max(1).values).clamp(0, 1)
    loss = F.mse_loss(_q(online, batch), y)
    _step(optimizer, loss)
    polyak_update(target, online, tau)
    return loss.detach()


def max_instead_of_gather(online, target, optimizer, batch, gamma, tau):
    loss = F.mse_loss(online(batch.state, batch.goal).max(1).values, _y(target, batch, gamma))
    _step(optimizer, loss)
    polyak_update(target, online, tau)
    return loss.detach()


@pytest.mark.parametrize("wrong, check", [
    (polyak_first, "Polyak update after the step"),
    (no_clipping, "targets clipped to [0, 1]"),
    (target_from_online, "target from the target network"),
    (no_zero_grad, "gradients cleared first"),
    (no_detach, "no gradient into the target"),
    (no_done_mask, "no bootstrap past the goal"),
    (max_instead_of_gather, "one optimiser step"),
])
def test_ex07_catches(wrong, check):
    failed = _failed("ex07_learner_step", dqn_update=wrong)
    assert check in failed, f"{wrong.__name__} passed '{check}'; failures: {failed}"


def test_ex07_messages_name_the_mistake():
    assert "after optimizer.step()" in _failed("ex07_learner_step", dqn_update=polyak_first)["Polyak update after the step"]
    assert "UNclipped" in _failed("ex07_learner_step", dqn_update=no_clipping)["targets clipped to [0, 1]"]
    assert "ONLINE" in _failed("ex07_learner_step", dqn_update=target_from_online)["target from the target network"]
    assert "zero_grad" in _failed("ex07_learner_step", dqn_update=no_zero_grad)["gradients cleared first"]
    assert "no_grad" in _failed("ex07_learner_step", dqn_update=no_detach)["no gradient into the target"]


def test_ex07_end_to_end_fails_without_learning():
    """The training check needs real learning: a step that never moves the online network fails it."""
    from bitflip_lib.grading.ex07_learner_step import check_training

    def frozen(online, target, optimizer, batch, gamma, tau):
        return F.mse_loss(_q(online, batch), _y(target, batch, gamma)).detach()

    with pytest.raises(AssertionError, match="should solve n = 20"):
        check_training({"dqn_update": frozen})


# --- ex08: the replay buffer ---------------------------------------------------------------------


class NoWrap(LibraryBuffer):
    """Stops storing once full (keeps the oldest)."""

    def add(self, batch: Transitions) -> None:
        room = self.capacity - self.size
        if room > 0:
            super().add(Transitions(*(getattr(batch, f)[:room] for f in ("state", "goal", "action", "reward", "next_state", "done"))))


class SamplesWholeCapacity(LibraryBuffer):
    """Draws from every slot, filled or not."""

    def sample(self, batch_size, generator=None):
        idx = torch.randint(0, self.capacity, (batch_size,), generator=generator, device=self.device)
        return Transitions(self.state[idx].float(), self.goal[idx].float(), self.action[idx], self.reward[idx],
                           self.next_state[idx].float(), self.done[idx])


class SamplesUpToPosition(LibraryBuffer):
    """Draws below the write position: right until the buffer wraps, wrong afterwards."""

    def sample(self, batch_size, generator=None):
        high = self.position if self.position > 0 else self.size
        idx = torch.randint(0, high, (batch_size,), generator=generator, device=self.device)
        return Transitions(self.state[idx].float(), self.goal[idx].float(), self.action[idx], self.reward[idx],
                           self.next_state[idx].float(), self.done[idx])


class OwnCpuGenerator(LibraryBuffer):
    """Ignores the generator it is given and makes its own on the CPU."""

    def sample(self, batch_size, generator=None):
        return super().sample(batch_size, torch.Generator().manual_seed(0))


class GlobalRng(LibraryBuffer):
    """Draws with torch's global generator."""

    def sample(self, batch_size, generator=None):
        return super().sample(batch_size, None)


class ShuffledFields(LibraryBuffer):
    """Takes the actions at other indices than the states."""

    def sample(self, batch_size, generator=None):
        batch = super().sample(batch_size, generator)
        batch.action = batch.action.roll(1)
        return batch


@pytest.mark.parametrize("wrong, check", [
    (NoWrap, "wraps around when full"),
    (NoWrap, "a batch larger than the buffer"),
    (SamplesWholeCapacity, "stores what was added"),
    (SamplesWholeCapacity, "uniform over the filled slots"),
    (SamplesUpToPosition, "uniform over the filled slots"),
    (OwnCpuGenerator, "uses the generator it is given"),
    (GlobalRng, "uses the generator it is given"),
    (ShuffledFields, "stores what was added"),
])
def test_ex08_catches(wrong, check):
    failed = _failed("ex08_replay_buffer", ReplayBuffer=wrong)
    assert check in failed, f"{wrong.__name__} passed '{check}'; failures: {failed}"


def test_ex08_passes_on_the_library_buffer():
    assert _failed("ex08_replay_buffer", ReplayBuffer=LibraryBuffer) == {}


# --- tiered hints --------------------------------------------------------------------------------


def test_recipe_stays_out_of_the_first_hint_and_sits_in_a_collapsed_cell():
    source = (
        "# %%\n"
        "def f(x):\n"
        "    ### BEGIN SOLUTION HINT: add one\n"
        "    # RECIPE: 1. write `x + 1`\n"
        "    return x + 1\n"
        "    ### END SOLUTION\n"
        "\n"
        "# %%\n"
        "y = 2\n"
    )
    stub = make_stub(source)
    assert f'raise NotImplementedError("add one{RECIPE_POINTER}")' in stub
    code, recipe, rest = stub.split("# %%")[1:]
    assert "x + 1" not in code
    assert recipe.startswith(" [markdown]") and "<details>" in recipe and "1. write `x + 1`" in recipe
    assert "y = 2" in rest
    namespace: dict = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError) as err:
        namespace["f"](1)
    assert "x + 1" not in str(err.value)


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_every_exercise_has_tiered_hints(name):
    """Every stub gives a nudge in its error and keeps a recipe, collapsed, in the notebook."""
    text = exercise_text(ROOT / "solutions" / f"{name}.py")
    stubs = text.count("raise NotImplementedError(")
    assert text.count(RECIPE_POINTER) == stubs
    assert text.count("<details><summary>Recipe") == stubs


def test_solutions_load_with_recipe_comments():
    ns = load_graded(ROOT / "solutions" / "ex07_learner_step.py")
    assert callable(ns["dqn_update"])
