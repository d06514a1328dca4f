"""Checks for exercise 4: the Polyak (soft) target-network update.

The student writes ``polyak_update(target, online, tau)``: in place,
``target <- (1 - tau) * target + tau * online`` for every parameter, ValueError for tau outside
[0, 1]. Reference: :func:`bitflip_lib.dqn.polyak_update`.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

from bitflip_lib import dqn
from bitflip_lib.config import make_config
from bitflip_lib.grading.helpers import devices, expect, expect_close, generator
from bitflip_lib.grading.plugged import train_with
from bitflip_lib.grading.model import Check, Exercise
from bitflip_lib.grading.remote import parameter_facts
from bitflip_lib.lab.runs import best_success
from bitflip_lib.networks import HAR, MLP, UVFA


def _pair(make, seed: int, device="cpu") -> tuple[nn.Module, nn.Module]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        online = make().to(device)
        target = make().to(device)  # different initial weights
    return target, online


def _params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


UNCHANGED = ("the target did not change: assigning to a loop variable (p = (1 - tau) * p + tau * q) only rebinds a "
             "local name; change each parameter's values in place, e.g. p.mul_(1 - tau).add_(q, alpha=tau), "
             "under torch.no_grad()")


def _unchanged(module: nn.Module, before: list[torch.Tensor]) -> bool:
    return all(torch.equal(p.detach(), b) for p, b in zip(module.parameters(), before))


def _compare(ns: Mapping, make, tau: float, seed: int, device="cpu", label: str = "") -> None:
    target, online = _pair(make, seed, device)
    expected = copy.deepcopy(target)
    dqn.polyak_update(expected, online, tau)
    online_before, target_before = _params(online), _params(target)
    ns["polyak_update"](target, online, tau)
    expect(not _unchanged(target, target_before), f"polyak_update(tau={tau}) on {label or type(target).__name__}: {UNCHANGED}")
    for (name, got), want in zip(target.named_parameters(), expected.parameters()):
        expect_close(got, want, f"target parameter '{name}' of {label or type(target).__name__} after polyak_update(tau={tau})", atol=1e-6)
    for (name, now), before in zip(online.named_parameters(), online_before):
        expect(torch.equal(now.detach(), before), f"polyak_update changed the ONLINE network's '{name}': only the target moves")


def check_matches(ns: Mapping) -> str:
    for device in devices():
        _compare(ns, lambda: MLP(6, hidden=(16, 16)), 0.05, 1, device, "an MLP")
        _compare(ns, lambda: MLP(6, hidden=(16, 16)), 0.3, 2, device, "an MLP")
    return "(1 - tau) target + tau online"


def check_all_parameters(ns: Mapping) -> str:
    _compare(ns, lambda: HAR(5, hidden=(8, 8)), 0.1, 3, label="a HAR")
    _compare(ns, lambda: UVFA(4, embed=8), 0.1, 4, label="a UVFA (nested modules and a bilinear weight)")
    return "every parameter of nested modules"


def check_extremes(ns: Mapping) -> str:
    target, online = _pair(lambda: MLP(4, hidden=(8,)), 5)
    before = _params(target)
    ns["polyak_update"](target, online, 0.0)
    for (name, p), b in zip(target.named_parameters(), before):
        expect(torch.equal(p.detach(), b), f"tau = 0 must leave the target unchanged, but '{name}' moved")
    ns["polyak_update"](target, online, 1.0)
    for (name, p), q in zip(target.named_parameters(), online.parameters()):
        expect_close(p, q.detach(), f"tau = 1 must copy the online network: target '{name}'")
    return "tau = 0 keeps, tau = 1 copies"


def check_in_place(ns: Mapping) -> str:
    target, online = _pair(lambda: MLP(4, hidden=(8,)), 6)
    before = _params(target)
    ids = {name: id(p) for name, p in target.named_parameters()}
    returned = ns["polyak_update"](target, online, 0.5)
    expect(not _unchanged(target, before), f"with tau = 0.5 every parameter should move halfway to the online network, but {UNCHANGED}")
    expect(returned is None or returned is target, "polyak_update should update the target in place (return None)")
    replaced = [name for name, facts in parameter_facts(target, ids).items() if facts.replaced]
    expect(not replaced, f"polyak_update replaced the target's Parameter objects ({', '.join(replaced)}): update their values in place")
    return "in place"


def check_autograd(ns: Mapping) -> str:
    # A target copied with copy.deepcopy still has requires_grad=True parameters.
    target, online = _pair(lambda: MLP(4, hidden=(8,)), 7)
    loss = online(torch.rand(3, 4, generator=generator(1)), torch.rand(3, 4, generator=generator(2))).sum()
    loss.backward()  # the online network has gradients, as it does during training
    before = _params(target)
    ns["polyak_update"](target, online, 0.2)
    expect(not _unchanged(target, before), f"with tau = 0.2 on a target whose parameters require grad, {UNCHANGED}")
    for name, facts in parameter_facts(target).items():
        expect(not facts.grad_fn, f"target parameter '{name}' now has a grad_fn: do the update under torch.no_grad()")
        expect(facts.is_leaf, f"target parameter '{name}' is no longer a leaf tensor: do the update under torch.no_grad()")
    return "no autograd graph"


def check_repeated(ns: Mapping) -> str:
    target, online = _pair(lambda: MLP(3, hidden=(4,)), 8)
    start = _params(target)
    tau, steps = 0.1, 30
    for _ in range(steps):
        ns["polyak_update"](target, online, tau)
    for (name, p), s, o in zip(target.named_parameters(), start, online.parameters()):
        expected = o.detach() + (1 - tau) ** steps * (s - o.detach())
        expect_close(p, expected, f"after {steps} updates with tau = {tau}, target '{name}' (should be online + 0.9^30 (start - online))", atol=1e-5)
    return "geometric approach to the online network"


def check_bad_tau(ns: Mapping) -> str:
    for tau in (-0.1, 1.5):
        target, online = _pair(lambda: MLP(3, hidden=(4,)), 9)
        try:
            ns["polyak_update"](target, online, tau)
        except ValueError:
            continue
        raise AssertionError(f"polyak_update(tau={tau}) should raise ValueError (tau must lie in [0, 1])")
    return "ValueError for tau outside [0, 1]"


_library_polyak = dqn.polyak_update  # the library's, whatever training patches in for the run


def checked_polyak(student) -> object:  # noqa: ANN001
    """The student's update during training, each result compared with the library's on a copy."""
    count = 0

    def polyak_update(target, online, tau):
        nonlocal count
        count += 1
        expected = copy.deepcopy(target)
        _library_polyak(expected, online, tau)
        student(target, online, tau)
        for (name, got), want in zip(target.named_parameters(), expected.parameters()):
            expect_close(got, want, f"during training (update {count}), target parameter '{name}' after your polyak_update",
                         atol=1e-6)

    return polyak_update


def check_training(ns: Mapping) -> str:
    config = make_config(n=20, arch="har", her="future", polyak=0.05, max_iterations=40, seed=0)
    result = train_with(config, polyak_update=checked_polyak(ns["polyak_update"]))
    expect(result.solved_at is not None, f"HER + HAR with your Polyak update should solve n = 20 within {config.max_iterations} "
           f"iterations; best success rate {best_success(result):.3f}")
    return f"HAR with it solves n = 20 at iteration {result.solved_at}"


EXERCISE = Exercise(
    name="ex04_polyak",
    title="The Polyak target update",
    required=("polyak_update",),
    references=("bitflip_lib.dqn:polyak_update",),
    checks=(
        Check("matches the library", check_matches),
        Check("updates every parameter", check_all_parameters),
        Check("tau = 0 and tau = 1", check_extremes),
        Check("updates in place", check_in_place),
        Check("outside autograd", check_autograd),
        Check("repeated updates", check_repeated),
        Check("rejects bad tau", check_bad_tau),
        Check("DQN with it learns (end to end)", check_training, timeout=240.0, slow=True),
    ),
)
