# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# *Student version, generated from `solutions/ex09_reinforce.py` by `python -m bitflip_lib.grading generate`.*
# *Fill in every part that raises `NotImplementedError`, run the check cells, and grade from a
# terminal with `bitflip grade ex09_reinforce`. Write each part yourself: while grading, the library's own
# version of what you write is switched off (a function that calls it fails).*

# %% [markdown]
# # Exercise 9: the REINFORCE estimator with a baseline
#
# **Goes with:** chapter 8 (policy gradients and preference learning). **Time:** about 20 minutes.
# **Run time** (laptop CPU): under a minute in quick mode, about a minute in full mode.
#
# **Recap.** A policy writes a string $y$ bit by bit, $\log\pi(y) = \sum_t \log\pi(y_t \mid
# y_{<t})$, and the finished string earns $R(y)$. REINFORCE (Williams 1992) estimates
# $\nabla_\theta\, \mathbb{E}[R]$ from a batch of $B$ samples by $\frac1B\sum_i (R_i -
# b_i)\,\nabla_\theta \log\pi(y_i)$. A baseline $b_i$ that does not depend on sample $i$ (a
# constant, or the mean of the *other* $B - 1$ rewards: the leave-one-out baseline) leaves the
# expectation unchanged, since $\mathbb{E}[\nabla\log\pi] = 0$, and a good one lowers the variance.
# The batch mean $\bar R$, the usual choice and this exercise's default, contains $R_i / B$ and so
# depends on sample $i$ a little: its expected estimate is $(B - 1)/B$ times the true gradient, the
# right direction, slightly shortened (chapter 8, section 3, computes this exactly). In code we
# write a **surrogate**, a scalar whose gradient is minus that estimate, and let autograd do the
# rest.
#
# **Your task.** Write `reinforce_surrogate(step_log_probs, rewards, baseline="mean")`:
# `step_log_probs` is `[B, L]` (entry $(i, t)$ is $\log\pi(y_{i,t} \mid y_{i,<t})$, with gradients), `rewards` is `[B]`.
# Return $-\frac1B\sum_i (R_i - b)\sum_t \log\pi(y_{i,t}\mid y_{i,<t})$ with $b = 0$ for `"none"`, the batch mean of the
# rewards for `"mean"`, or the number or `[B]` tensor given. Rewards and baseline are constants (no gradient).
# Raise `ValueError` for another baseline name or for rewards that do not have one entry per string.

# %%
# The course library. Outside the course folder (Colab, a downloaded notebook), install it with
#   %pip install bitflip-course==0.1.0
try:
    import bitflip_lib
except ModuleNotFoundError:
    raise ModuleNotFoundError(
        "bitflip_lib is missing: run `%pip install bitflip-course==0.1.0`, then rerun this cell"
    ) from None

# %% tags=["graded"]
import torch

from bitflip_lib import quick_mode

# %%
QUICK = quick_mode()
print(f"Running in {'quick' if QUICK else 'full'} mode")


# %% tags=["graded"]
def reinforce_surrogate(step_log_probs: torch.Tensor, rewards: torch.Tensor, baseline="mean") -> torch.Tensor:
    """Scalar whose gradient is the REINFORCE estimate of -grad E[R] (see the task above)."""
    raise NotImplementedError("a string's log-probability is the sum of its steps' log-probabilities; weight it by (reward - baseline), which carries no gradient (stuck? open the recipe below this cell)")


# %% [markdown]
# <details><summary>Recipe for <code>reinforce_surrogate</code> (open it only if the hint was not enough)</summary>
#
# 1. Check the shapes ([B, L] and [B]) and the baseline ('none', 'mean', a number or a [B] tensor): ValueError otherwise.
# 2. `b = 0.0` for 'none', `rewards.mean()` for 'mean', else `torch.as_tensor(baseline, dtype=rewards.dtype)`.
# 3. `log_pi = step_log_probs.sum(1)`: the whole trajectory's log-probability.
# 4. `return -((rewards - b).detach() * log_pi).mean()`: the minus sign turns ascent on E[R] into descent.
#
# </details>

# %% [markdown]
# ## Check your function

# %%
from bitflip_lib.grading import check

check("ex09_reinforce", reinforce_surrogate)

# %% [markdown]
# ## Experiment: what the baseline does to the noise
#
# At $L = 6$ with a dense reward, we estimate the gradient on many batches of 16 strings from one fixed policy, with
# and without the batch-mean baseline, and compare how much the estimates scatter around their average.

# %%
from bitflip_lib.generation.sequences import make_reward
from bitflip_lib.generation.training import seeded_policy

policy = seeded_policy(6, (64,), 0, torch.device("cpu"))
reward = make_reward("dense", 6, seed=0, sharpness=0.5)
generator = torch.Generator().manual_seed(0)
spread = {}
for baseline in ("none", "mean"):
    grads = []
    for _ in range(60 if QUICK else 300):
        y = policy.sample(16, generator)
        policy.zero_grad()
        reinforce_surrogate(policy.step_log_probs(y), reward(y), baseline).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in policy.parameters()]))
    grads = torch.stack(grads)
    spread[baseline] = float((grads - grads.mean(0)).norm(dim=1).mean())
    print(f"baseline {baseline!r}: mean distance of an estimate from the average estimate {spread[baseline]:.4f}")
assert spread["mean"] < spread["none"]

# The leave-one-out baseline (a [B] tensor) gives exactly B / (B - 1) times the batch-mean estimate.
y = policy.sample(16, generator)
rewards, grads = reward(y), {}
for name, b in (("mean", "mean"), ("leave-one-out", (rewards.sum() - rewards) / 15)):
    policy.zero_grad()
    reinforce_surrogate(policy.step_log_probs(y), rewards, b).backward()
    grads[name] = torch.cat([p.grad.reshape(-1) for p in policy.parameters()])
ratio = float(grads["leave-one-out"] @ grads["mean"] / grads["mean"].norm() ** 2)
print(f"leave-one-out / batch mean: {ratio:.4f} (B / (B - 1) = {16 / 15:.4f})")
assert torch.allclose(grads["leave-one-out"], 16 / 15 * grads["mean"], atol=1e-6)

# %% [markdown]
# The rewards here are all positive, so without a baseline every sampled string is pushed up and
# only the sizes of the pushes differ; subtracting the batch mean pushes the better half up and the
# worse half down, and the estimates scatter less (asserted above). The leave-one-out baseline gives
# the same direction, $B/(B - 1)$ times longer: the length the batch mean loses. **Summary.**
# REINFORCE is a weighted log-likelihood: sum the log-probabilities over the trajectory, weight each
# string by $R - b$, and flip the sign for gradient descent. Next: exercise 10.
