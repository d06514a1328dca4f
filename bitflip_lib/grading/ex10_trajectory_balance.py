"""Checks for exercise 10: the trajectory-balance loss of a GFlowNet (chapter 9).

The student writes ``trajectory_balance_loss(log_Z, step_log_probs, log_rewards)``: the mean over
the batch of ``(log Z + sum_t log P_F(y_t | y_<t) - log R(y))^2`` (backward policy 1 on the
generation tree), differentiable in both the policy's log-probabilities and the learned scalar
``log_Z``; ValueError for mismatched shapes. Reference:
:func:`bitflip_lib.generation.sequences.trajectory_balance_loss`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from bitflip_lib.generation.sequences import (
    MultiModalReward,
    all_strings,
    exact_log_probs,
    reward_distribution,
    total_variation,
)
from bitflip_lib.generation.sequences import trajectory_balance_loss as reference_loss
from bitflip_lib.generation.training import seeded_policy
from bitflip_lib.grading.helpers import expect, expect_close, expect_tensor, generator
from bitflip_lib.grading.model import Check, Exercise


def _inputs(seed: int, B: int = 10, L: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = generator(seed)
    log_Z = torch.rand((), generator=g) * 3 - 1
    step_log_probs = -torch.rand(B, L, generator=g) * 1.5 - 0.01
    log_rewards = -torch.rand(B, generator=g) * 4
    return log_Z, step_log_probs, log_rewards


def _run(ns: Mapping, log_Z, step_log_probs, log_rewards):
    z = log_Z.clone().requires_grad_(True)
    lp = step_log_probs.clone().requires_grad_(True)
    out = ns["trajectory_balance_loss"](z, lp, log_rewards.clone())
    expect_tensor(out, "trajectory_balance_loss(...)", shape=())
    expect(out.requires_grad, "no gradient reaches log_Z or the step log-probabilities: compute the loss from them "
           "(do not detach them)")
    out.backward()
    return out.detach(), z.grad, lp.grad


_MISTAKES = (  # what a loss that is not trajectory balance often computes instead, and how to say it
    (lambda z, lp, lr: (z + lp.sum(1) - lr).mean() ** 2,
     "the square of the mean residual, (mean_i r_i)^2; trajectory balance averages the squared residuals, mean_i r_i^2"),
    (lambda z, lp, lr: (z + lp.mean(1) - lr).pow(2).mean(),
     "the residuals with the MEAN of the step log-probabilities; a trajectory's log-probability is their SUM over t"),
    (lambda z, lp, lr: (z + lp.sum(1) - lr).pow(2).sum(),
     "the SUM of the squared residuals over the batch; the loss is their mean"),
    (lambda z, lp, lr: (lp.sum(1) - lr).pow(2).mean(),
     "the squared residuals without log Z; each residual is log Z + sum_t log P_F - log R"),
    (lambda z, lp, lr: (z + lp.sum(1) + lr).pow(2).mean(),
     "the residuals with + log R; each residual is log Z + sum_t log P_F - log R"),
)


def what_was_computed(value: float, log_Z: torch.Tensor, lp: torch.Tensor, lr: torch.Tensor) -> str:
    """`` : your loss is <one classic mistake>`` when ``value`` is what that mistake gives, else ''."""
    right = float((log_Z + lp.sum(1) - lr).pow(2).mean())
    for wrong, said in _MISTAKES:
        candidate = float(wrong(log_Z, lp, lr))
        if abs(candidate - right) > 1e-6 * max(1.0, abs(right)) and abs(value - candidate) <= 1e-5 * max(1.0, abs(candidate)):
            return f": your loss is {said}"
    return ""


def check_hand_computed(ns: Mapping) -> str:
    log_Z = torch.tensor(0.5)
    lp = torch.tensor([[-0.25, -0.75], [-1.0, -1.0]])
    lr = torch.tensor([-0.25, -3.0])
    expected = ((0.5 - 1.0 + 0.25) ** 2 + (0.5 - 2.0 + 3.0) ** 2) / 2
    value, _, _ = _run(ns, log_Z, lp, lr)
    expect(abs(float(value) - expected) < 1e-6, f"two trajectories by hand: expected {expected:.6f}, got {float(value):.6f}"
           + what_was_computed(float(value), log_Z, lp, lr))
    return f"by hand: {expected:.4f}"


def _reference_value_and_grads(log_Z, step_log_probs, log_rewards):  # noqa: ANN001, ANN202
    """The library's loss and its gradients with respect to log Z and the step log-probabilities."""
    z = log_Z.detach().clone().requires_grad_(True)
    x = step_log_probs.detach().clone().requires_grad_(True)
    want = reference_loss(z, x.sum(1), log_rewards)
    want.backward()
    return want.detach(), z.grad, x.grad


def check_matches(ns: Mapping) -> str:
    for seed in (1, 2, 3):
        log_Z, lp, lr = _inputs(seed)
        value, z_grad, lp_grad = _run(ns, log_Z, lp, lr)
        want, _, want_lp_grad = _reference_value_and_grads(log_Z, lp, lr)
        said = what_was_computed(float(value), log_Z, lp, lr)
        expect(not said, f"loss (seed {seed}): expected {float(want):.6g}, got {float(value):.6g}{said}")
        expect_close(value, want, f"loss (seed {seed})", atol=1e-5)
        expect_close(lp_grad, want_lp_grad, f"gradient with respect to the step log-probabilities (seed {seed})", atol=1e-5)
    return "value and gradients on random batches"


def check_summed(ns: Mapping) -> str:
    log_Z, lp, lr = _inputs(4, B=3, L=5)
    value, _, grad = _run(ns, log_Z, lp, lr)
    said = what_was_computed(float(value), log_Z, lp, lr)
    expect(not said, f"the gradient with respect to the step log-probabilities is not 2 r_i / B{said}")
    residual = log_Z + lp.sum(1) - lr
    for t in range(lp.shape[1]):
        expect_close(grad[:, t], 2 * residual / 3, f"d loss / d log P_F(y_t | y_<t) at step t = {t} (the log-probabilities "
                     "of a trajectory enter through their SUM over t)", atol=1e-5)
    return "the trajectory's log-probability is the sum over its steps"


def check_log_Z_learned(ns: Mapping) -> str:
    log_Z, lp, lr = _inputs(5)
    _, z_grad, _ = _run(ns, log_Z, lp, lr)
    expect(z_grad is not None, "no gradient reaches log_Z: it is a learned parameter (do not detach it or replace it by a constant)")
    residual = log_Z + lp.sum(1) - lr
    expect_close(z_grad, 2 * residual.mean(), "d loss / d log Z (= 2 * mean residual)", atol=1e-5)
    value_low, _, _ = _run(ns, log_Z - 1.0, lp, lr)
    value_high, _, _ = _run(ns, log_Z + 1.0, lp, lr)
    expect(not torch.equal(value_low, value_high), "the loss does not change with log_Z: use the log_Z argument")
    return "log Z enters and receives its gradient"


def check_zero_at_balance(ns: Mapping) -> str:
    L = 4
    reward = MultiModalReward(torch.tensor([[1.0, 0, 0, 1], [0, 1, 1, 0]]), sharpness=1.0, floor=0.01)
    strings = all_strings(L)
    target = reward_distribution(reward).float()
    per_step = (target.log() / L)[:, None].expand(-1, L)  # any split of log P_F(y) over the steps
    log_Z = torch.log(reward(strings).sum())
    value, _, _ = _run(ns, log_Z, per_step, reward.log_reward(strings))
    expect(float(value) < 1e-8, f"a sampler with P_F(y) = R(y) / Z and log Z = log sum R balances every trajectory: loss "
           f"should be 0, got {float(value):.3g}")
    return "zero where P_F = R / Z"


def check_bad_shapes(ns: Mapping) -> str:
    log_Z, lp, lr = _inputs(6)
    try:
        ns["trajectory_balance_loss"](log_Z, lp, lr[:-1])
    except ValueError:
        return "ValueError for mismatched shapes"
    raise AssertionError("trajectory_balance_loss should raise ValueError when log_rewards does not have one entry per trajectory")


def _checked_gradients(ns: Mapping, log_Z, step_log_probs, log_rewards, step: int):  # noqa: ANN001, ANN202
    value, z_grad, lp_grad = _run(ns, log_Z, step_log_probs, log_rewards)
    want, want_z_grad, want_lp_grad = _reference_value_and_grads(log_Z, step_log_probs, log_rewards)
    expect_close(value, want, f"during training (step {step}), the loss", atol=1e-5)
    expect(z_grad is not None, f"during training (step {step}), no gradient reached log_Z")
    expect_close(z_grad, want_z_grad, f"during training (step {step}), the gradient with respect to log Z", atol=1e-5)
    expect_close(lp_grad, want_lp_grad, f"during training (step {step}), the gradient with respect to the step log-probabilities",
                 atol=1e-5)
    return z_grad, lp_grad


def check_training(ns: Mapping) -> str:
    L = 5
    reward = MultiModalReward(torch.tensor([[1.0, 1, 0, 0, 1], [0, 0, 1, 1, 0]]), sharpness=2.0, floor=0.0)
    policy = seeded_policy(L, (64,), 0, torch.device("cpu"))
    log_Z = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.Adam([{"params": policy.parameters(), "lr": 3e-3}, {"params": [log_Z], "lr": 0.1}])
    g = generator(0)
    for step in range(300):
        y = policy.sample(64, g)
        step_log_probs, log_rewards = policy.step_log_probs(y), reward.log_reward(y)
        # The student's gradients pass a check before they reach the policy and log Z: the library's, on the same inputs.
        z_grad, lp_grad = _checked_gradients(ns, log_Z.detach(), step_log_probs.detach(), log_rewards, step)
        optimizer.zero_grad()
        step_log_probs.backward(lp_grad)
        log_Z.grad = z_grad
        optimizer.step()
    tv = total_variation(exact_log_probs(policy).exp(), reward_distribution(reward))
    learned = float(log_Z.detach())
    true_log_Z = math.log(float(reward(all_strings(L)).sum()))
    expect(tv < 0.1, f"a GFlowNet trained with your loss should sample R / Z closely: total variation {tv:.3f} (want < 0.1)")
    expect(abs(learned - true_log_Z) < 0.2, f"learned log Z {learned:.3f}, true log sum R = {true_log_Z:.3f}")
    return f"samples R / Z (TV {tv:.3f}), log Z {learned:.2f} vs {true_log_Z:.2f}"


EXERCISE = Exercise(
    name="ex10_trajectory_balance",
    title="The trajectory-balance loss",
    required=("trajectory_balance_loss",),
    references=("bitflip_lib.generation.sequences:trajectory_balance_loss",),
    checks=(
        Check("by hand", check_hand_computed),
        Check("matches the library", check_matches),
        Check("log-probabilities summed over the trajectory", check_summed),
        Check("log Z is learned", check_log_Z_learned),
        Check("zero at balance", check_zero_at_balance),
        Check("rejects bad shapes", check_bad_shapes),
        Check("a GFlowNet with it learns (end to end)", check_training, timeout=240.0, slow=True),
    ),
)
