"""Checks for exercise 9: the REINFORCE estimator with a baseline (chapter 8).

The student writes ``reinforce_surrogate(step_log_probs, rewards, baseline="mean")``: from the
per-step log-probabilities ``[B, L]`` of sampled strings and their rewards ``[B]``, the scalar
``-mean_i (R_i - b) * sum_t log pi(y_it | y_i,<t)`` whose gradient is the REINFORCE estimate of
``-grad E[R]``. ``baseline``: ``"none"``, ``"mean"`` (batch mean), a number or a ``[B]`` tensor;
ValueError for an unknown name or mismatched shapes. Reference:
:func:`bitflip_lib.generation.sequences.reinforce_loss` applied to ``step_log_probs.sum(1)``.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from bitflip_lib.generation.sequences import SparseReward, reinforce_loss
from bitflip_lib.generation.training import seeded_policy
from bitflip_lib.grading.helpers import expect, expect_close, expect_tensor, generator
from bitflip_lib.grading.model import Check, Exercise


def _inputs(seed: int, B: int = 12, L: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = generator(seed)
    step_log_probs = -torch.rand(B, L, generator=g) * 2 - 0.05
    rewards = (torch.rand(B, generator=g) < 0.4).float() * torch.rand(B, generator=g) * 3
    return step_log_probs, rewards


def _value_and_grad(fn, step_log_probs: torch.Tensor, rewards: torch.Tensor, baseline) -> tuple[torch.Tensor, torch.Tensor]:
    x = step_log_probs.clone().requires_grad_(True)
    out = fn(x, rewards.clone(), baseline)
    expect_tensor(out, f"reinforce_surrogate(..., baseline={baseline!r})", shape=())
    expect(out.requires_grad, "no gradient reaches step_log_probs: the surrogate must be computed from them (do not detach them)")
    out.backward()
    expect(x.grad is not None, "no gradient reaches step_log_probs: the surrogate must be computed from them (do not detach them)")
    return out.detach(), x.grad


def _reference(step_log_probs: torch.Tensor, rewards: torch.Tensor, baseline) -> torch.Tensor:
    return reinforce_loss(step_log_probs.sum(1), rewards, baseline)


def check_matches(ns: Mapping) -> str:
    for seed, baseline in ((1, "none"), (2, "mean"), (3, 0.7)):
        lp, r = _inputs(seed)
        got, grad = _value_and_grad(ns["reinforce_surrogate"], lp, r, baseline)
        want, want_grad = _value_and_grad(_reference, lp, r, baseline)
        expect_close(got, want, f"value with baseline={baseline!r}", atol=1e-5)
        expect_close(grad, want_grad, f"gradient with baseline={baseline!r}", atol=1e-6)
    return "value and gradient, baselines none / mean / 0.7"


def check_summed(ns: Mapping) -> str:
    lp, r = _inputs(4, B=6, L=7)
    _, grad = _value_and_grad(ns["reinforce_surrogate"], lp, r, "none")
    per_step = -r / len(r)
    for t in range(lp.shape[1]):
        expect_close(grad[:, t], per_step, f"d surrogate / d log pi(y_t | y_<t) at step t = {t} (every step of a string gets its "
                     "string's whole reward: sum the log-probabilities over the trajectory)", atol=1e-6)
    return "every step's log-probability gets the whole trajectory's reward"


def check_baseline_subtracted(ns: Mapping) -> str:
    lp, _ = _inputs(5)
    same = torch.full((lp.shape[0],), 2.5)
    _, grad = _value_and_grad(ns["reinforce_surrogate"], lp, same, "mean")
    expect(bool((grad == 0).all()), "with equal rewards for all samples, the batch-mean baseline makes every R_i - b zero, "
           f"so the gradient must be exactly 0; got max |grad| = {float(grad.abs().max()):.3g} (is the baseline subtracted?)")
    lp, r = _inputs(6)
    b = torch.linspace(0.0, 1.0, len(r))
    got, grad = _value_and_grad(ns["reinforce_surrogate"], lp, r, b)
    want, want_grad = _value_and_grad(_reference, lp, r, b)
    expect_close(grad, want_grad, "gradient with a per-sample baseline tensor", atol=1e-6)
    return "R - b, with b the batch mean, a number or a tensor"


def check_zero_rewards(ns: Mapping) -> str:
    lp, _ = _inputs(7)
    zeros = torch.zeros(lp.shape[0])
    for baseline in ("none", "mean"):
        _, grad = _value_and_grad(ns["reinforce_surrogate"], lp, zeros, baseline)
        expect(bool((grad == 0).all()), f"all rewards 0 with baseline={baseline!r}: the estimate must be exactly zero")
    _, grad = _value_and_grad(ns["reinforce_surrogate"], lp, zeros, 1.0)
    expect(float(grad.abs().max()) > 0, "all rewards 0 with baseline 1.0: R - b = -1, so the gradient is not zero")
    return "all-zero rewards: exactly zero for none and mean"


def check_sign(ns: Mapping) -> str:
    lp, _ = _inputs(8, B=4, L=3)
    r = torch.tensor([1.0, 0.0, 0.0, 0.0])
    _, grad = _value_and_grad(ns["reinforce_surrogate"], lp, r, "none")
    expect(float(grad[0].sum()) < 0, "a gradient-descent step on the surrogate must raise the log-probability of the "
           "rewarded string: the surrogate is MINUS the mean of (R - b) log pi")
    return "descent raises the rewarded string's probability"


def check_bad_inputs(ns: Mapping) -> str:
    lp, r = _inputs(9)
    for args, what in (((lp, r, "median"), "an unknown baseline name"), ((lp, r[:-1], "mean"), "rewards of another batch size")):
        try:
            ns["reinforce_surrogate"](*args)
        except ValueError:
            continue
        raise AssertionError(f"reinforce_surrogate should raise ValueError for {what}")
    return "ValueError for a bad baseline or shapes"


def _checked_gradient(fn, step_log_probs: torch.Tensor, rewards: torch.Tensor, step: int) -> torch.Tensor:
    got, grad = _value_and_grad(fn, step_log_probs, rewards, "mean")
    want, want_grad = _value_and_grad(_reference, step_log_probs, rewards, "mean")
    expect_close(got, want, f"during training (step {step}), the surrogate's value", atol=1e-5)
    expect_close(grad, want_grad, f"during training (step {step}), the surrogate's gradient", atol=1e-6)
    return grad


def check_training(ns: Mapping) -> str:
    L = 6
    target = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    reward = SparseReward(target)
    policy = seeded_policy(L, (64,), 0, torch.device("cpu"))
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    g = generator(0)
    for step in range(150):
        y = policy.sample(64, g)
        step_log_probs, rewards = policy.step_log_probs(y), reward(y)
        # The student's gradient passes a check before it reaches the policy: the library's, on the same inputs.
        grad = _checked_gradient(ns["reinforce_surrogate"], step_log_probs.detach(), rewards, step)
        optimizer.zero_grad()
        step_log_probs.backward(grad)
        optimizer.step()
    success = float(reward(policy.sample(512, g)).mean())
    expect(success > 0.8, f"REINFORCE with your estimator should learn a 6-bit target in 150 steps; success {success:.3f}")
    return f"learns a 6-bit target (success {success:.2f})"


EXERCISE = Exercise(
    name="ex09_reinforce",
    title="The REINFORCE estimator with a baseline",
    required=("reinforce_surrogate",),
    references=("bitflip_lib.generation.sequences:reinforce_loss",),
    checks=(
        Check("matches the library", check_matches),
        Check("log-probabilities summed over the trajectory", check_summed),
        Check("baseline subtracted", check_baseline_subtracted),
        Check("all-zero rewards give zero", check_zero_rewards),
        Check("sign: descent raises rewarded strings", check_sign),
        Check("rejects bad inputs", check_bad_inputs),
        Check("REINFORCE with it learns (end to end)", check_training, timeout=240.0, slow=True),
    ),
)
