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
# *Student version, generated from `solutions/ex01_env_step.py` by `python -m bitflip_lib.grading generate`.*
# *Fill in every part that raises `NotImplementedError`, run the check cells, and grade from a
# terminal with `bitflip grade ex01_env_step`. Write each part yourself: while grading, the library's own
# version of what you write is switched off (a function that calls it fails).*

# %% [markdown]
# # Exercise 1: one step of the bit-flipping world
#
# **Goes with:** chapter 1 (sparse rewards in a world of bits). **Time:** about 20 minutes.
# **Run time** (laptop CPU): under half a minute in quick mode, about 10 s in full mode.
#
# **Recap.** Every agent holds an n-bit state $s$ and an n-bit goal $g$. Action $a \in \{0, \dots, n-1\}$
# flips bit $a$. The reward is the write-up's sparse rule (Chau Yu Hei, HKUST): $r = 1$ on the step whose
# new state equals the goal, $r = 0$ otherwise. An agent that has reached its goal is *done*: later steps
# leave it where it is, pay nothing and do not count. The library plays many agents at once, so
# everything below works on a batch: `state` and `goal` are float tensors `[B, n]` of zeros and ones,
# `done` is a bool tensor `[B]`, `action` an int64 tensor `[B]`.
#
# **Your task.** Write `goal_reward` (the reward rule) and `env_step` (one masked step for the whole
# batch) as pure functions: they return new tensors and leave their inputs alone. No Python loop over
# agents is needed; `torch.where` and indexing with `(rows, action)` do the work.
#
# Cells tagged `graded` (this notebook's imports and the cell with your functions) are the only cells
# the grader runs. Check your work with the cell right after yours, or from a terminal with
# `bitflip grade ex01`.

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

from bitflip_lib import BitFlipEnv, quick_mode

# %%
QUICK = quick_mode()
print(f"Running in {'quick' if QUICK else 'full'} mode")


# %% tags=["graded"]
def goal_reward(next_state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """The sparse reward: 1.0 for rows whose ``next_state`` equals ``goal`` in every bit, else 0.0.

    Args:
        next_state, goal: ``[B, n]`` tensors of zeros and ones.
    Returns:
        ``[B]`` float32 tensor.
    """
    raise NotImplementedError("a row earns 1.0 exactly when every one of its bits equals the goal's (stuck? open the recipe below this cell)")


def env_step(state: torch.Tensor, goal: torch.Tensor, done: torch.Tensor, action: torch.Tensor):
    """One step for a batch of agents: flip bit ``action[i]`` of agent ``i`` unless it is done.

    Args:
        state, goal: ``[B, n]`` float tensors of zeros and ones.
        done: ``[B]`` bool, agents that reached their goal earlier (they must not move).
        action: ``[B]`` int64 bit indices.
    Returns:
        ``(next_state, reward, done, active)``: ``next_state`` ``[B, n]`` float32 (a new tensor);
        ``reward`` ``[B]`` float32 (1.0 only for active agents that reach their goal now);
        ``done`` ``[B]`` bool (done before, or reaching the goal now); ``active`` ``[B]`` bool
        (the agents whose step counted: those not done before it).
    """
    raise NotImplementedError("only agents that are not done yet move, and only they can earn a reward (stuck? open the recipe below this cell)")


# %% [markdown]
# <details><summary>Recipe for <code>goal_reward</code> (open it only if the hint was not enough)</summary>
#
# 1. `next_state == goal` compares bit by bit (`[B, n]` booleans).
# 2. `.all(dim=1)` asks whether every bit of a row matches (`[B]`).
# 3. `.float()` turns True/False into 1.0/0.0.
#
# </details>
# <details><summary>Recipe for <code>env_step</code> (open it only if the hint was not enough)</summary>
#
# 1. `active = ~done`; `rows = torch.arange(B)`.
# 2. Copy the state; in the copy, flip bit `action[i]` of row `i` (`1 - bit`) only where `active`.
# 3. The reward is `goal_reward(next_state, goal)` for active agents, 0 for the others.
# 4. An agent is done afterwards if it was done or has just earned the reward.
#
# </details>

# %% [markdown]
# ## Check your functions

# %%
from bitflip_lib.grading import check

check("ex01_env_step", goal_reward, env_step)

# %% [markdown]
# ## Experiment: random agents with your environment step
#
# Chapter 1 computes exactly how rarely a purely random agent reaches its goal within n steps. Here
# your `env_step` plays those random agents. Many agents run in parallel; each episode lasts n steps
# (the write-up's limit), and done agents freeze thanks to your masking. The success rate you measure
# should match the exact probability from `bitflip_lib.theory` within sampling error.

# %%
from bitflip_lib.theory import random_success_probability


def random_episode_success(n: int, agents: int, seed: int = 0) -> float:
    """Fraction of random agents that reach their goal within n flips, played with env_step."""
    env = BitFlipEnv(n, num_agents=agents, device="cpu", seed=seed)  # only used to draw start and goal
    state, goal = env.reset()
    done = torch.zeros(agents, dtype=torch.bool)
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        action = torch.randint(0, n, (agents,), generator=g)
        state, reward, done, active = env_step(state, goal, done, action)
    return float(done.float().mean())


agents = 20_000 if QUICK else 200_000
sizes = list(range(1, 11))
measured = [random_episode_success(n, agents, seed=n) for n in sizes]
exact = [random_success_probability(n) for n in sizes]
for n, m, e in zip(sizes, measured, exact):
    print(f"n = {n:2d}: simulated {m:.4f}, exact {e:.4f}")

# %% [markdown]
# The simulated and exact values agree to within 5 standard errors of a proportion,
# $5\sqrt{p(1-p)/\text{agents}}$, at every n (the cell below asserts it), and both fall quickly with n:
# this is the sparse-reward problem the rest of the course is about.

# %%
for n, m, e in zip(sizes, measured, exact):
    tolerance = 5 * (e * (1 - e) / agents) ** 0.5 + 1e-12
    assert abs(m - e) <= tolerance, (n, m, e, tolerance)
assert all(b < a for a, b in zip(exact[1:], exact[2:])), "the exact probability should fall with n from n = 2 on"

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogy(sizes, exact, "-", label="exact (random walk on the distance)")
ax.semilogy(sizes, measured, "o", label="simulated with your env_step")
ax.set_xlabel("number of bits n")
ax.set_ylabel("P(random agent reaches its goal in n steps)")
ax.set_title("Random exploration rarely earns the reward")
ax.legend()
plt.show()

# %% [markdown]
# **Summary.** A bit-flipping step is a flip, a comparison and a mask. The mask matters: without it an
# agent that reached its goal could walk away again and earn a second reward, which no real episode does.
# Next: exercise 2 (tabular Q-learning).
