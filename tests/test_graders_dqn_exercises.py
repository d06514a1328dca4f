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
from bitflip_lib.grading.runner import run_exercise
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


def polyak_first_without_no_grad(online, target, optimizer, batch, gamma, tau):
    best = target(batch.next_state, batch.goal).max(1).values  # outside no_grad: the graph reaches the target
    y = (batch.reward + gamma * (1 - batch.done) * best).clamp(0, 1)
    loss = F.mse_loss(_q(online, batch), y)
    polyak_update(target, online, tau)  # too early, and it changes tensors the loss still needs
    _step(optimizer, loss)
    return loss.detach()


def test_ex07_two_mistakes_together_give_one_readable_line_per_check():
    """Issue 30, item 2: Polyak before the step plus no no_grad gave eight raw autograd tracebacks."""
    failed = _failed("ex07_learner_step", dqn_update=polyak_first_without_no_grad)
    assert len(failed) == 8
    for message in failed.values():
        assert "\n" not in message and len(message) < 600
        assert "backward() needs a tensor that was changed in place after the loss was computed" in message
        assert "compute targets under torch.no_grad()" in message
        assert "Hint: enable anomaly detection" not in message


def test_ex07_messages_name_the_mistake():
    assert "after optimizer.step()" in _failed("ex07_learner_step", dqn_update=polyak_first)["Polyak update after the step"]
    assert "UNclipped" in _failed("ex07_learner_step", dqn_update=no_clipping)["targets clipped to [0, 1]"]
    assert "ONLINE" in _failed("ex07_learner_step", dqn_update=target_from_online)["target from the target network"]
    assert "zero_grad" in _failed("ex07_learner_step", dqn_update=no_zero_grad)["gradients cleared first"]
    assert "no_grad" in _failed("ex07_learner_step", dqn_update=no_detach)["no gradient into the target"]


def test_ex07_end_to_end_fails_without_learning():
    """The training check needs real learning: a step that never moves the online network fails it
    (at its first step now: every step in training is compared with the library's)."""
    from bitflip_lib.grading.ex07_learner_step import check_training

    def frozen(online, target, optimizer, batch, gamma, tau):
        return F.mse_loss(_q(online, batch), _y(target, batch, gamma)).detach()

    with pytest.raises(AssertionError, match=r"during training \(gradient step 1\), online parameter"):
        check_training({"dqn_update": frozen})


def test_ex07_end_to_end_fails_a_step_that_is_right_only_where_the_fast_checks_look():
    """A step that behaves in the fast checks and writes other weights during training (say, weights
    trained elsewhere) is caught at the first step where it differs from the library's."""
    from bitflip_lib.grading.ex07_learner_step import check_training

    calls = {"n": 0}

    def sly(online, target, optimizer, batch, gamma, tau):
        calls["n"] += 1
        loss = F.mse_loss(_q(online, batch), _y(target, batch, gamma))
        _step(optimizer, loss)
        polyak_update(target, online, tau)
        if calls["n"] > 3:  # from then on, nudge the weights its own way
            with torch.no_grad():
                for p in online.parameters():
                    p.add_(1e-3)
        return loss.detach()

    with pytest.raises(AssertionError, match=r"during training \(gradient step 4\), online parameter"):
        check_training({"dqn_update": sly})


# --- ex08: the replay buffer ---------------------------------------------------------------------


OwnBuffer = load_graded(ROOT / "solutions" / "ex08_replay_buffer.py")["ReplayBuffer"]
"""A correct buffer as a student writes it: the exercise's solution (the library's own is off
limits: see test_ex08_reports_the_library_buffer). The wrong buffers below change one method."""


class NoWrap(OwnBuffer):
    """Stops storing once full (keeps the oldest)."""

    def add(self, batch: Transitions) -> None:
        room = self.capacity - self.size
        if room > 0:
            super().add(Transitions(*(getattr(batch, f)[:room] for f in ("state", "goal", "action", "reward", "next_state", "done"))))


class SamplesWholeCapacity(OwnBuffer):
    """Draws from every slot, filled or not."""

    def sample(self, batch_size, generator=None):
        idx = torch.randint(0, self.capacity, (batch_size,), generator=generator, device=self.device)
        return Transitions(self.state[idx].float(), self.goal[idx].float(), self.action[idx], self.reward[idx],
                           self.next_state[idx].float(), self.done[idx])


class SamplesUpToPosition(OwnBuffer):
    """Draws below the write position: right until the buffer wraps, wrong afterwards."""

    def sample(self, batch_size, generator=None):
        high = self.position if self.position > 0 else self.size
        idx = torch.randint(0, high, (batch_size,), generator=generator, device=self.device)
        return Transitions(self.state[idx].float(), self.goal[idx].float(), self.action[idx], self.reward[idx],
                           self.next_state[idx].float(), self.done[idx])


class OwnCpuGenerator(OwnBuffer):
    """Ignores the generator it is given and makes its own on the CPU."""

    def sample(self, batch_size, generator=None):
        return super().sample(batch_size, torch.Generator().manual_seed(0))


class GlobalRng(OwnBuffer):
    """Draws with torch's global generator."""

    def sample(self, batch_size, generator=None):
        return super().sample(batch_size, None)


class ShuffledFields(OwnBuffer):
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


def test_ex08_passes_on_a_buffer_written_as_a_student_would():
    assert _failed("ex08_replay_buffer", ReplayBuffer=OwnBuffer) == {}


def test_ex08_reports_the_library_buffer():
    """The library's own buffer is the answer to the exercise: every check fails, saying so."""
    failed = _failed("ex08_replay_buffer", ReplayBuffer=LibraryBuffer)
    assert len(failed) == 7
    assert all(m.startswith("ReplayBuffer uses bitflip_lib.replay.ReplayBuffer, the library's own implementation")
               for m in failed.values()), failed


def test_ex08_says_that_unwritten_slots_were_sampled():
    """Issue 30, item 2: sampling the whole capacity was reported as fields from different indices."""
    failed = _failed("ex08_replay_buffer", ReplayBuffer=SamplesWholeCapacity)
    assert "slots not yet written were sampled" in failed["stores what was added"]
    assert "0 ... len(buffer) - 1, not from the whole capacity" in failed["stores what was added"]
    assert "does not belong with" not in failed["stores what was added"]


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
