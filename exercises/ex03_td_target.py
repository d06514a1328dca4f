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
# *Student version, generated from `solutions/ex03_td_target.py` by `python -m bitflip_lib.grading generate`.*
# *Fill in every part that raises `NotImplementedError`, run the check cells, and grade from a
# terminal with `bitflip grade ex03_td_target`. Write each part yourself: while grading, the library's own
# version of what you write is switched off (a function that calls it fails).*

# %% [markdown]
# # Exercise 3: the clipped TD target and epsilon-greedy
#
# **Goes with:** chapters 3 and 5 (deep Q-networks; stabilising them). **Time:** about 30 minutes.
# **Run time** (laptop CPU): under half a minute in quick mode, about 30 s in full mode.
#
# **Recap.** A DQN regresses $Q(s, g, a)$ onto the one-step target
# $$y = r + \gamma\,(1 - \text{done})\,\max_{a'} Q_{\text{target}}(s', g, a'),$$
# computed from a batch sampled from the replay buffer; `next_q` below is $Q_{\text{target}}(s', g, \cdot)$,
# a `[B, n]` tensor. With reward 1 at the goal and 0 elsewhere every true Q-value lies in $[0, 1]$ (the
# write-up's induction argument, Chau Yu Hei, HKUST, section 4.4: a goal step is worth exactly 1, and any
# other is worth $\gamma$ times a value that is at most 1). A target outside $[0, 1]$ is therefore pure
# estimation error, and clipping it to $[0, 1]$ stops the upward drift of Q that the write-up saw with
# $\gamma$ close to 1 and with HER.
#
# To act, each agent takes the greedy action $\arg\max_a Q(s, g, a)$ with probability $1 - \epsilon$ and a
# uniformly random bit with probability $\epsilon$, every agent deciding independently.
#
# **Your task.** Write `td_target` and `epsilon_greedy`. Use the `generator` for every random draw so a
# run can be repeated exactly.

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
def td_target(reward: torch.Tensor, done: torch.Tensor, next_q: torch.Tensor, gamma: float) -> torch.Tensor:
    """The one-step TD target ``r + gamma * (1 - done) * max_a' next_q``, clipped to [0, 1].

    Args:
        reward: ``[B]`` float rewards (0 or 1).
        done: ``[B]`` float or bool, 1/True where the next state is the goal (no bootstrapping).
        next_q: ``[B, n]`` Q-values of the next state from the target network.
        gamma: discount factor.
    Returns:
        ``[B]`` float targets in [0, 1]. The inputs are not modified.
    """
    raise NotImplementedError("reward plus the discounted best next value, none where done, clipped to [0, 1] (stuck? open the recipe below this cell)")


def epsilon_greedy(q: torch.Tensor, epsilon: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """One action per row of ``q`` (``[B, n]``): uniformly random with probability epsilon, else the argmax.

    Returns an int64 tensor ``[B]`` on the device of ``q``. Each row explores independently, and
    every random draw uses ``generator``.
    """
    raise NotImplementedError("every row tosses its own coin: random action with probability epsilon, else the greedy one (stuck? open the recipe below this cell)")


# %% [markdown]
# <details><summary>Recipe for <code>td_target</code> (open it only if the hint was not enough)</summary>
#
# 1. `next_q.max(dim=1).values` is the best next value per row.
# 2. `(1 - done.float())` switches it off where the episode ended.
# 3. `reward + gamma * ...`, then `.clamp(0, 1)`.
#
# </details>
# <details><summary>Recipe for <code>epsilon_greedy</code> (open it only if the hint was not enough)</summary>
#
# 1. `greedy = q.argmax(1)`.
# 2. `explore = torch.rand(B, generator=generator, device=q.device) < epsilon`.
# 3. `random = torch.randint(0, n, (B,), generator=generator, device=q.device)`.
# 4. `torch.where(explore, random, greedy)`.
#
# </details>

# %% [markdown]
# ## Check your functions
#
# The last check trains a small DQN with your two functions in place of the library's.

# %%
from bitflip_lib.grading import check

check("ex03_td_target", td_target, epsilon_greedy)

# %% [markdown]
# ## Experiment: what clipping does to the targets
#
# `train_with` runs the library's training loop (`bitflip_lib.trainer.train`) with your parts in
# place of its own. We train twice on the same seed, with your clipped target and with the same
# target left unclipped, at $\gamma = 0.99$ with HER, and record the largest target the learner
# regressed onto in each iteration.

# %%
from bitflip_lib.config import make_config
from bitflip_lib.grading import train_with


def recording(target_fn, log):
    """Wrap a TD-target function so that it records the largest target of every batch."""
    def wrapped(reward, done, next_q, gamma):
        y = target_fn(reward, done, next_q, gamma)
        log.append(float(y.max()))
        return y
    return wrapped


def unclipped(reward, done, next_q, gamma):
    return reward + gamma * (1.0 - done.float()) * next_q.max(dim=1).values


config = make_config(n=8, arch="mlp", her="future", gamma=0.99, polyak=None, max_iterations=15 if QUICK else 60,
                    early_stop=False, seed=0)
clipped_log, raw_log = [], []
clipped_run = train_with(config, td_target=recording(td_target, clipped_log), epsilon_greedy=epsilon_greedy)
raw_run = train_with(config, td_target=recording(unclipped, raw_log), epsilon_greedy=epsilon_greedy)
print(f"largest target: clipped {max(clipped_log):.3f}, unclipped {max(raw_log):.3f}")

# %% [markdown]
# Clipped targets never leave $[0, 1]$ (asserted below). How far the unclipped ones overshoot depends on
# the run: chapter 5 measures the drift properly, across seeds and with and without a target network.

# %%
assert max(clipped_log) <= 1.0 and min(clipped_log) >= 0.0
print(f"unclipped targets above 1 in {sum(v > 1 for v in raw_log)} of {len(raw_log)} batches")

# %%
import matplotlib.pyplot as plt

steps = config.gradient_steps
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot([i / steps for i in range(len(raw_log))], raw_log, label="unclipped target")
ax.plot([i / steps for i in range(len(clipped_log))], clipped_log, label="your clipped target")
ax.axhline(1.0, color="gray", linestyle=":", label="largest true Q-value")
ax.set_xlabel("iteration")
ax.set_ylabel("largest TD target in the batch")
ax.set_title("Clipping keeps targets where Q* lives")
ax.legend()
plt.show()

# %% [markdown]
# **Summary.** The target is one line, and its clip encodes something we know about the problem: values
# live in $[0, 1]$. Epsilon-greedy must decide per agent and draw from a seeded generator. Next:
# exercise 4 (the Polyak update that chapter 5 pairs with clipping).
