"""Checks for exercise 7: one DQN learner step.

The student writes ``dqn_update(online, target, optimizer, batch, gamma, tau) -> loss``: the
online values of the taken actions, the clipped TD target from the target network (no
gradient), the MSE loss, zero_grad / backward / step, then the Polyak update of the target.
Reference: :meth:`bitflip_lib.dqn.DQNLearner.update`, which every check compares against.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from bitflip_lib import dqn
from bitflip_lib.config import TrainConfig, make_config
from bitflip_lib.grading.examples import example_batch
from bitflip_lib.grading.helpers import devices, expect, expect_close
from bitflip_lib.grading.plugged import train_with
from bitflip_lib.grading.model import Check, Exercise
from bitflip_lib.grading.remote import kind
from bitflip_lib.lab.runs import best_success
from bitflip_lib.networks import HAR, MLP, har_greedy_is_optimal
from bitflip_lib.replay import Transitions
from bitflip_lib.trainer import TrainResult, build_network

LR, GAMMA, TAU = 1e-2, 0.9, 0.3  # a large step and fraction, so that every mistake shows


def _networks(make: Callable[[], nn.Module], seed: int, device) -> tuple[nn.Module, nn.Module]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        online, target = make().to(device), make().to(device)  # different weights: a target that lags
    return online, target


def _reference(online: nn.Module, target: nn.Module, batch: Transitions, gamma: float, tau: float,
               optimizer: torch.optim.Optimizer | None = None):
    """The library's step on copies: (online after, target after, loss). With ``optimizer``, the
    step continues from a copy of that optimiser's state (its rates and Adam's moments)."""
    learner = dqn.DQNLearner(copy.deepcopy(online), gamma=gamma, lr=LR, amsgrad=True, polyak=tau, clip_targets=True)
    learner.target.load_state_dict(target.state_dict())
    if optimizer is not None:
        learner.optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # not the tensors training uses
    stats = learner.update(batch)
    return learner.online, learner.target, float(stats["loss"])


def _student(ns: Mapping, online: nn.Module, target: nn.Module, batch: Transitions, gamma: float = GAMMA,
             tau: float = TAU, stale_gradients: bool = False):
    """Run the student's step on copies (the target's parameters require grad, as a deepcopy's do)."""
    online, target = copy.deepcopy(online), copy.deepcopy(target)
    target.requires_grad_(True)
    optimizer = torch.optim.Adam(online.parameters(), lr=LR, amsgrad=True)
    if stale_gradients:  # what an earlier backward() would have left behind
        for p in online.parameters():
            p.grad = torch.full_like(p, 5.0)
    loss = ns["dqn_update"](online, target, optimizer, batch, gamma, tau)
    return online, target, loss


def _loss_with(q_net: nn.Module, y_net: nn.Module, batch: Transitions, gamma: float, clip: bool = True) -> float:
    with torch.no_grad():
        q = q_net(batch.state, batch.goal).gather(1, batch.action.unsqueeze(1)).squeeze(1)
        y = dqn.td_target(batch.reward, batch.done, y_net(batch.next_state, batch.goal), gamma, clip=clip)
        return float(F.mse_loss(q, y))


def _same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.allclose(p.detach().cpu(), q.detach().cpu(), atol=1e-6, rtol=1e-5) for p, q in zip(a.parameters(), b.parameters()))


def _loss_value(loss) -> float:
    expect(isinstance(loss, torch.Tensor) and loss.dim() == 0,
           f"dqn_update should return the loss as a 0-d tensor, got {kind(loss)}"
           + (f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else ""))
    return float(loss)


def check_loss(ns: Mapping) -> str:
    for device in devices():
        online, target = _networks(lambda: MLP(6, hidden=(16,)), 1, device)
        batch = example_batch(seed=2, device=device)
        _, _, want = _reference(online, target, batch, GAMMA, TAU)
        _, _, loss = _student(ns, online, target, batch)
        got = _loss_value(loss)
        expect(abs(got - want) <= 1e-5 * max(1.0, abs(want)),
               f"the returned loss is {got:.6g}, expected {want:.6g}: mean of (Q(s, g, a) - y)^2 over the batch, "
               "computed before the optimiser step")
        expect(loss.grad_fn is None and not loss.requires_grad, "return loss.detach(): the returned loss still holds the autograd graph")
    return "the MSE of Q(s, g, a) against the clipped target, detached"


def check_online_step(ns: Mapping) -> str:
    for device in devices():
        for make, label in ((lambda: MLP(6, hidden=(16,)), "an MLP"), (lambda: HAR(6, hidden=(8, 8)), "a HAR")):
            online, target = _networks(make, 3, device)
            batch = example_batch(seed=4, device=device)
            want_online, _, _ = _reference(online, target, batch, GAMMA, TAU)
            got_online, _, _ = _student(ns, online, target, batch)
            expect(not _same(got_online, online), f"the online network ({label}) did not change: call optimizer.step() after loss.backward()")
            for (name, p), q in zip(got_online.named_parameters(), want_online.parameters()):
                expect_close(p, q, f"online parameter '{name}' of {label} after one Adam step (is Q gathered at the taken "
                             "action, and the target from the target network?)", atol=1e-6)
    return "one Adam step on the online network"


def check_polyak_after_step(ns: Mapping) -> str:
    online, target = _networks(lambda: MLP(6, hidden=(16,)), 5, "cpu")
    batch = example_batch(seed=6)
    _, want_target, _ = _reference(online, target, batch, GAMMA, TAU)
    _, got_target, _ = _student(ns, online, target, batch)
    early = copy.deepcopy(target)
    dqn.polyak_update(early, online, TAU)  # towards the weights from before the step
    expect(not _same(got_target, target), "the target network did not move: finish with the Polyak update (exercise 4)")
    expect(not _same(got_target, early) or _same(early, want_target),
           "the target moved towards the online weights from BEFORE the optimiser step: do the Polyak update after optimizer.step()")
    for (name, p), q in zip(got_target.named_parameters(), want_target.parameters()):
        expect_close(p, q, f"target parameter '{name}' after the step: (1 - tau) target + tau online (with tau = {TAU})", atol=1e-6)
    return "the target moves after the optimiser step, by tau"


def check_clipping(ns: Mapping) -> str:
    online, target = _networks(lambda: MLP(6, hidden=(16,)), 7, "cpu")
    with torch.no_grad():
        target.body[-1].bias.add_(torch.linspace(-3.0, 3.0, 6))  # target values far outside [0, 1]
    batch = example_batch(seed=8, done_fraction=0.0)
    want, unclipped = _loss_with(online, target, batch, GAMMA), _loss_with(online, target, batch, GAMMA, clip=False)
    got = _loss_value(_student(ns, online, target, batch)[2])
    expect(abs(got - unclipped) > 1e-4 * max(1.0, unclipped) or abs(want - unclipped) < 1e-6,
           f"the loss {got:.4g} is the one with UNclipped targets: clamp y to [0, 1] (the clipped loss is {want:.4g})")
    expect(abs(got - want) <= 1e-5 * max(1.0, want), f"with target values outside [0, 1], the loss should be {want:.6g} (targets clipped), got {got:.6g}")
    return "targets clipped to [0, 1]"


def check_target_network(ns: Mapping) -> str:
    online, target = _networks(lambda: MLP(6, hidden=(16,)), 9, "cpu")
    with torch.no_grad():
        target.body[-1].bias.fill_(0.5)  # a target network that disagrees with the online one
        online.body[-1].bias.fill_(-0.3)
    batch = example_batch(seed=10, done_fraction=0.0)
    want, from_online = _loss_with(online, target, batch, GAMMA), _loss_with(online, online, batch, GAMMA)
    got = _loss_value(_student(ns, online, target, batch)[2])
    expect(abs(got - from_online) > 1e-5 or abs(want - from_online) < 1e-6,
           f"the loss {got:.4g} bootstraps from the ONLINE network: compute max_a' Q(s', g, a') with the target network")
    expect(abs(got - want) <= 1e-5 * max(1.0, want), f"the loss should be {want:.6g} (target from the target network), got {got:.6g}")
    return "bootstraps from the target network"


def check_terminal(ns: Mapping) -> str:
    online, target = _networks(lambda: MLP(6, hidden=(16,)), 11, "cpu")
    with torch.no_grad():
        target.body[-1].bias.fill_(-0.7)  # would pull the target below 1 if it bootstrapped (clipping cannot hide that)
    batch = example_batch(seed=12, done_fraction=1.0)
    expect(bool(batch.done.all()), "grader bug: the terminal batch is not all done")
    with torch.no_grad():
        q = online(batch.state, batch.goal).gather(1, batch.action.unsqueeze(1)).squeeze(1)
    want = float(((q - 1.0) ** 2).mean())
    got = _loss_value(_student(ns, online, target, batch)[2])
    expect(abs(got - want) <= 1e-5 * max(1.0, want),
           f"on transitions that reach the goal the target is exactly r = 1 (no bootstrap): loss {want:.6g}, got {got:.6g}")
    return "no bootstrapping past the goal"


def check_zero_grad(ns: Mapping) -> str:
    online, target = _networks(lambda: MLP(6, hidden=(16,)), 13, "cpu")
    batch = example_batch(seed=14)
    want_online, _, _ = _reference(online, target, batch, GAMMA, TAU)
    got_online, _, _ = _student(ns, online, target, batch, stale_gradients=True)
    expect(_same(got_online, want_online),
           "with gradients left over from an earlier backward(), your step moved the online network differently: "
           "call optimizer.zero_grad() before loss.backward()")
    return "old gradients are cleared first"


def check_no_gradient_into_target(ns: Mapping) -> str:
    online, target = _networks(lambda: MLP(6, hidden=(16,)), 15, "cpu")
    batch = example_batch(seed=16)
    _, got_target, _ = _student(ns, online, target, batch)
    touched = [name for name, p in got_target.named_parameters() if p.grad is not None and bool(p.grad.abs().sum() > 0)]
    expect(not touched, f"gradients reached the target network ({', '.join(touched)}): compute the target under torch.no_grad() "
           "(or .detach() it); it is a label, not something to train")
    return "no gradient flows into the target"


def train_with_learner_step(config: TrainConfig, dqn_update: Callable) -> TrainResult:
    """The library's :func:`~bitflip_lib.trainer.train` with ``dqn_update`` as every gradient step."""
    if config.polyak is None:
        raise ValueError("train_with_learner_step needs a target network: set polyak to a fraction in (0, 1]")

    class StudentLearner(dqn.DQNLearner):
        def update(self, batch: Transitions) -> dict[str, torch.Tensor]:
            loss = dqn_update(self.online, self.target, self.optimizer, batch, self.gamma, self.polyak)
            nan = torch.full((), float("nan"))
            return {"loss": torch.as_tensor(loss).detach().float().cpu(), "mean_q": nan, "mean_target": nan}

    return train_with(config, learner_class=StudentLearner)


def checked_step(student: Callable) -> Callable:
    """The student's step during training, each result (online and target weights, loss) compared
    with the library's step from the same state: training cannot be fed weights from elsewhere."""
    count = 0

    def dqn_update(online, target, optimizer, batch, gamma, tau):
        nonlocal count
        count += 1
        want_online, want_target, want_loss = _reference(online, target, batch, gamma, tau, optimizer)
        loss = student(online, target, optimizer, batch, gamma, tau)
        got = _loss_value(loss)
        expect(abs(got - want_loss) <= 1e-5 * max(1.0, abs(want_loss)),
               f"during training (gradient step {count}) your step returned the loss {got:.6g}, the library's {want_loss:.6g}")
        for which, net, want in (("online", online, want_online), ("target", target, want_target)):
            for (name, p), q in zip(net.named_parameters(), want.parameters()):
                expect_close(p, q, f"during training (gradient step {count}), {which} parameter '{name}' after your step",
                             atol=1e-5, rtol=1e-4)
        return loss

    return dqn_update


def check_training(ns: Mapping) -> str:
    config = make_config(n=20, arch="har", her="future", max_iterations=40, seed=0)
    # This seed's untrained HAR is not optimal (chapter 6): solving it takes learning.
    expect(not har_greedy_is_optimal(build_network(config, "cpu"), config.n), "grader bug: the untrained network is already optimal")
    result = train_with_learner_step(config, checked_step(ns["dqn_update"]))
    expect(result.solved_at is not None, f"HER + HAR with your learner step should solve n = 20 within {config.max_iterations} "
           f"iterations; best success rate {best_success(result):.3f}")
    return f"HAR with it solves n = 20 at iteration {result.solved_at}"


EXERCISE = Exercise(
    name="ex07_learner_step",
    title="The DQN learner step",
    required=("dqn_update",),
    references=("bitflip_lib.dqn:DQNLearner.update", "bitflip_lib.dqn:DQNLearner.targets"),
    budget=120.0,  # end-to-end: the student's code runs in its own process, and every step of it is checked
    checks=(
        Check("the loss it returns", check_loss),
        Check("one optimiser step", check_online_step),
        Check("Polyak update after the step", check_polyak_after_step),
        Check("targets clipped to [0, 1]", check_clipping),
        Check("target from the target network", check_target_network),
        Check("no bootstrap past the goal", check_terminal),
        Check("gradients cleared first", check_zero_grad),
        Check("no gradient into the target", check_no_gradient_into_target),
        Check("DQN with it learns (end to end)", check_training, timeout=240.0, slow=True),
    ),
)
