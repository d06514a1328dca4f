"""Checks for exercise 3: the clipped TD target and epsilon-greedy action selection.

The student writes ``td_target(reward, done, next_q, gamma)`` (clipped to [0, 1]) and
``epsilon_greedy(q, epsilon, generator=None)``. References: :func:`bitflip_lib.dqn.td_target`
and the definition of epsilon-greedy (checked statistically, with 5-standard-error margins).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch

from bitflip_lib import dqn
from bitflip_lib.config import make_config
from bitflip_lib.grading.helpers import devices, expect, expect_close, expect_equal, expect_tensor, generator
from bitflip_lib.grading.plugged import train_with
from bitflip_lib.grading.model import Check, Exercise
from bitflip_lib.lab.runs import best_success


def _td_case(batch: int, n: int, seed: int, device, low: float = -0.5, high: float = 1.6):
    g = generator(seed, device)
    reward = (torch.rand(batch, generator=g, device=device) < 0.3).float()
    done = reward.clone()  # reaching the goal ends the episode
    next_q = low + (high - low) * torch.rand(batch, n, generator=g, device=device)
    return reward, done, next_q


def _call_td(ns: Mapping, reward, done, next_q, gamma):
    inputs = [x.clone() for x in (reward, done, next_q)]
    out = ns["td_target"](reward, done, next_q, gamma)
    for name, before, now in zip(("reward", "done", "next_q"), inputs, (reward, done, next_q)):
        expect(torch.equal(before, now), f"td_target changed its input '{name}' in place")
    return expect_tensor(out, "td_target(...)", shape=reward.shape, device=reward.device)


def check_td_matches(ns: Mapping) -> str:
    for device in devices():
        for gamma, seed in ((0.9, 1), (0.98, 2), (1.0, 3)):
            reward, done, next_q = _td_case(300, 7, seed, device)
            expected = dqn.td_target(reward, done, next_q, gamma, clip=True)
            got = _call_td(ns, reward, done, next_q, gamma)
            expect(got.dtype.is_floating_point, f"td_target should return floats, got {got.dtype}")
            expect_close(got, expected, f"td_target(gamma={gamma}) on random inputs")
    return "matches r + gamma (1 - done) max Q', clipped"


def check_td_done(ns: Mapping) -> str:
    reward = torch.tensor([1.0, 1.0, 0.0, 0.0])
    done = torch.tensor([1.0, 1.0, 0.0, 0.0])
    next_q = torch.tensor([[0.9, 0.5], [-0.3, 0.2], [0.5, 0.8], [0.1, 0.0]])
    got = _call_td(ns, reward, done, next_q, 0.5)
    expect_close(got, torch.tensor([1.0, 1.0, 0.4, 0.05]), "td_target with done = [1, 1, 0, 0], gamma = 0.5 (no bootstrap where done)")
    # done given as bool, as the environment returns it
    got = _call_td(ns, reward, done.bool(), next_q, 0.5)
    expect_close(got, torch.tensor([1.0, 1.0, 0.4, 0.05]), "td_target with a bool done tensor")
    return "done stops bootstrapping"


def check_td_clip(ns: Mapping) -> str:
    reward = torch.zeros(4)
    done = torch.zeros(4)
    next_q = torch.tensor([[3.0, 2.0], [-2.0, -1.0], [0.5, 0.2], [1.2, -5.0]])
    got = _call_td(ns, reward, done, next_q, 0.99)
    expect_close(got, torch.tensor([1.0, 0.0, 0.495, 1.0]), "td_target with next Q outside [0, 1] (targets must be clipped to [0, 1])")
    return "targets clipped to [0, 1]"


def check_td_max(ns: Mapping) -> str:
    reward = torch.zeros(3)
    done = torch.zeros(3)
    next_q = torch.tensor([[0.1, 0.2, 0.9], [0.8, 0.0, 0.0], [0.3, 0.6, 0.5]])
    got = _call_td(ns, reward, done, next_q, 1.0)
    expect_close(got, torch.tensor([0.9, 0.8, 0.6]), "td_target with gamma = 1 (the bootstrap is the max over next actions, per row)")
    return "bootstraps from the best next action"


def _call_eps(ns: Mapping, q, epsilon, gen):
    before = q.clone()
    out = ns["epsilon_greedy"](q, epsilon, gen)
    expect(torch.equal(before, q), "epsilon_greedy changed q in place")
    out = expect_tensor(out, f"epsilon_greedy(q, {epsilon})", shape=(q.shape[0],), dtype=torch.int64, device=q.device)
    expect(bool(((out >= 0) & (out < q.shape[1])).all()), f"epsilon_greedy returned actions outside [0, {q.shape[1] - 1}]")
    return out


def check_greedy(ns: Mapping) -> str:
    for device in devices():
        q = torch.randn(500, 9, generator=generator(4, device), device=device)
        got = _call_eps(ns, q, 0.0, generator(5, device))
        expect_equal(got, q.argmax(1), "epsilon_greedy with epsilon = 0 (always the argmax action)")
    return "epsilon = 0 is greedy"


def check_uniform(ns: Mapping) -> str:
    n, batch = 5, 20_000
    q = torch.zeros(batch, n)
    q[:, 2] = 1.0  # a clear greedy action, which epsilon = 1 must ignore
    got = _call_eps(ns, q, 1.0, generator(6))
    counts = torch.bincount(got, minlength=n).double()
    p = 1.0 / n
    sd = math.sqrt(batch * p * (1 - p))
    worst = (counts - batch * p).abs().max().item()
    expect(worst <= 5 * sd, f"epsilon = 1 should pick each of the {n} actions about {batch * p:.0f} times out of {batch}; "
           f"got counts {counts.long().tolist()}")
    return "epsilon = 1 is uniform"


def check_explore_rate(ns: Mapping) -> str:
    n, batch, eps = 4, 40_000, 0.3
    q = torch.randn(batch, n, generator=generator(7))
    got = _call_eps(ns, q, eps, generator(8))
    off = (got != q.argmax(1)).double().mean().item()
    expected = eps * (n - 1) / n  # a random action can be the greedy one
    sd = math.sqrt(expected * (1 - expected) / batch)
    expect(abs(off - expected) <= 5 * sd, f"with epsilon = {eps} and {n} actions the fraction of non-greedy actions should be "
           f"epsilon (n - 1) / n = {expected:.3f}; got {off:.3f}")
    # Decide per agent: one coin for the whole batch gives 0% or ~75% non-greedy in one call.
    fractions = []
    for seed in range(5):
        qs = torch.randn(400, n, generator=generator(20 + seed))
        fractions.append((_call_eps(ns, qs, 0.5, generator(30 + seed)) != qs.argmax(1)).double().mean().item())
    expect(all(0.2 < f < 0.55 for f in fractions), "each agent (row) must explore independently: with epsilon = 0.5, "
           f"fractions of non-greedy actions per call should be near 0.375, got {[round(f, 3) for f in fractions]}")
    return "explores with probability epsilon, per agent"


def check_generator(ns: Mapping) -> str:
    for device in devices():
        q = torch.randn(1000, 6, generator=generator(11, device), device=device)
        a = _call_eps(ns, q, 0.5, generator(12, device))
        b = _call_eps(ns, q, 0.5, generator(12, device))
        c = _call_eps(ns, q, 0.5, generator(13, device))
        expect(torch.equal(a, b), "epsilon_greedy must draw its randomness from the generator passed in: the same seed should give the same actions")
        expect(not torch.equal(a, c), "different generator seeds gave identical actions: is the generator used for the random choices?")
    return "reproducible with a generator"


_library_td_target = dqn.td_target  # the library's, whatever training patches in for the run


def checked_td_target(student: Callable) -> Callable:
    """The student's td_target during training, each target compared with the library's on the same inputs."""
    step = 0

    def td_target(reward, done, next_q, gamma):
        nonlocal step
        step += 1
        got = expect_tensor(student(reward, done, next_q, gamma), f"td_target during training (gradient step {step})",
                            shape=reward.shape, device=reward.device)
        expect_close(got, _library_td_target(reward, done, next_q, gamma, clip=True),
                     f"td_target during training (gradient step {step}): r + gamma (1 - done) max Q', clipped")
        return got

    return td_target


def checked_epsilon_greedy(student: Callable) -> Callable:
    """The student's epsilon_greedy during training, each answer checked for shape, type and range."""

    def epsilon_greedy(q, epsilon, generator=None):
        got = expect_tensor(student(q, epsilon, generator), "epsilon_greedy during training", shape=(q.shape[0],),
                            dtype=torch.int64, device=q.device)
        expect(bool(((got >= 0) & (got < q.shape[1])).all()), "epsilon_greedy during training returned actions outside "
               f"[0, {q.shape[1] - 1}]")
        if epsilon == 0.0:
            expect(torch.equal(got, q.argmax(1)) or bool((q.gather(1, got[:, None]).squeeze(1) == q.max(1).values).all()),
                   "epsilon_greedy with epsilon = 0 during training did not pick a greedy action")
        return got

    return epsilon_greedy


def check_training(ns: Mapping) -> str:
    """Training with the student's two functions plugged in solves 20-bit flipping with HER + HAR.
    Training runs here; every target the student's function gives is checked against the library's."""
    config = make_config(n=20, arch="har", her="future", max_iterations=40, seed=0)
    result = train_with(config, td_target=checked_td_target(ns["td_target"]),
                        epsilon_greedy=checked_epsilon_greedy(ns["epsilon_greedy"]))
    expect(result.solved_at is not None, f"DQN + HER + HAR with your td_target and epsilon_greedy should solve n = 20 within "
           f"{config.max_iterations} iterations; best success rate {best_success(result):.3f}")
    return f"DQN with them solves n = 20 at iteration {result.solved_at}"


EXERCISE = Exercise(
    name="ex03_td_target",
    title="The clipped TD target and epsilon-greedy",
    required=("td_target", "epsilon_greedy"),
    references=("bitflip_lib.dqn:td_target", "bitflip_lib.dqn:epsilon_greedy"),
    checks=(
        Check("TD target matches the library", check_td_matches, uses=("td_target",)),
        Check("no bootstrapping where done", check_td_done, uses=("td_target",)),
        Check("targets clipped to [0, 1]", check_td_clip, uses=("td_target",)),
        Check("bootstrap from the max", check_td_max, uses=("td_target",)),
        Check("epsilon = 0 is greedy", check_greedy, uses=("epsilon_greedy",)),
        Check("epsilon = 1 is uniform", check_uniform, uses=("epsilon_greedy",)),
        Check("exploration rate, per agent", check_explore_rate, uses=("epsilon_greedy",)),
        Check("uses the generator", check_generator, uses=("epsilon_greedy",)),
        Check("DQN with them learns (end to end)", check_training, timeout=240.0, slow=True),
    ),
)
