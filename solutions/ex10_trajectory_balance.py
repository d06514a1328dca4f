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
# # Exercise 10: the trajectory-balance loss
#
# **Goes with:** chapter 9 (GFlowNets and hindsight for sequences). **Time:** about 20 minutes.
# **Run time** (laptop CPU): under a minute in quick mode and in full mode.
#
# **Recap.** A GFlowNet learns to sample $y$ with probability $R(y)/Z$. It builds $y$ with a forward
# policy $P_F(s_{t+1}\mid s_t)$, the probability of each next state, and is trained with a backward
# policy $P_B(s_t\mid s_{t+1})$, the probability of each parent of a state (each way of undoing the
# last step). Trajectory balance (Malkin et al. 2022) asks every trajectory to satisfy $Z\prod_t
# P_F(s_{t+1}\mid s_t) = R(y)\prod_t P_B(s_t\mid s_{t+1})$. Writing a string left to right, each
# prefix has one parent, so $P_B = 1$, $P_F$ is the policy, and the loss on a batch of sampled
# strings is
# $$\mathcal{L} = \frac1B\sum_i \Big(\log Z + \sum_t \log P_F(y_{i,t}\mid y_{i,<t}) - \log R(y_i)\Big)^2,$$
# where $\log Z$ is one learned number, trained together with the policy.
#
# **Your task.** Write `trajectory_balance_loss(log_Z, step_log_probs, log_rewards)`: `log_Z` a scalar tensor with
# gradients, `step_log_probs` `[B, L]`, `log_rewards` `[B]`. Return the loss above (a scalar), with gradients flowing
# to both `log_Z` and `step_log_probs`. Raise `ValueError` when `log_rewards` does not have one entry per string.

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
def trajectory_balance_loss(log_Z: torch.Tensor, step_log_probs: torch.Tensor, log_rewards: torch.Tensor) -> torch.Tensor:
    """Mean squared trajectory-balance residual (see the task above)."""
    ### BEGIN SOLUTION HINT: on a tree the backward policy is 1, so the residual is log Z plus the whole trajectory's log-probability minus log R
    # RECIPE: 1. Check the shapes ([B, L] and [B]): ValueError otherwise.
    # RECIPE: 2. `residual = log_Z + step_log_probs.sum(1) - log_rewards` (log Z keeps its gradient: it is learned).
    # RECIPE: 3. `return residual.pow(2).mean()`.
    if step_log_probs.dim() != 2 or log_rewards.shape != step_log_probs.shape[:1]:
        raise ValueError(f"expected step_log_probs [B, L] and log_rewards [B], got {tuple(step_log_probs.shape)} and {tuple(log_rewards.shape)}")
    residual = log_Z + step_log_probs.sum(1) - log_rewards  # P_B = 1 on the generation tree
    return residual.pow(2).mean()
    ### END SOLUTION


# %% [markdown]
# ## Check your function
#
# The last check trains a GFlowNet with your loss and compares what it samples with $R/Z$ exactly.

# %%
from bitflip_lib.grading import check

check("ex10_trajectory_balance", trajectory_balance_loss)

# %% [markdown]
# ## Experiment: log Z is the partition function
#
# We train with your loss on a reward with three modes at $L = 6$ and watch the learned $\log Z$ approach
# $\log\sum_y R(y)$, computed by enumerating all 64 strings.

# %%
import math

from bitflip_lib.generation.sequences import (
    all_strings,
    exact_log_probs,
    make_reward,
    reward_distribution,
    total_variation,
)
from bitflip_lib.generation.training import seeded_policy

L = 6
reward = make_reward("multimodal", L, seed=0, num_modes=3)
policy = seeded_policy(L, (64,), 0, torch.device("cpu"))
log_Z = torch.zeros((), requires_grad=True)
optimizer = torch.optim.Adam([{"params": policy.parameters(), "lr": 3e-3}, {"params": [log_Z], "lr": 0.1}])
generator = torch.Generator().manual_seed(0)
for step in range(1, (300 if QUICK else 600) + 1):
    y = policy.sample(64, generator)
    loss = trajectory_balance_loss(log_Z, policy.step_log_probs(y), reward.log_reward(y))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 100 == 0:
        tv = total_variation(exact_log_probs(policy).exp(), reward_distribution(reward))
        print(f"step {step}: loss {float(loss):.4f}, log Z {float(log_Z):.3f}, TV to R/Z {tv:.3f}")
true_log_Z = math.log(float(reward(all_strings(L)).sum()))
print(f"log sum R = {true_log_Z:.3f}")
assert abs(float(log_Z) - true_log_Z) < 0.2 and tv < 0.1

# %% [markdown]
# **Summary.** Trajectory balance is a squared log-ratio per trajectory: the policy's
# log-probabilities summed over the steps, plus a learned $\log Z$, minus $\log R$. At its minimum
# the sampler draws $R/Z$ and $\log Z$ is the log partition function. This was the last exercise:
# run `bitflip grade` to see all your results at once.
