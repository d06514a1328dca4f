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
# # Exercise 4: the Polyak target update
#
# **Goes with:** chapter 5 (stabilising DQN). **Time:** about 20 minutes.
# **Run time** (laptop CPU): under half a minute in quick mode, about 25 s in full mode.
#
# **Recap.** Bootstrapping from the network being trained chases a moving target. The write-up (Chau
# Yu Hei, *Documentation of Bit Sequence mini RL project*, appendix 4.3) found its loss unstable
# until it kept a second, slowly moving copy of the network for the targets: after every gradient
# step of the online weights $\theta$, the target weights $\bar\theta$ (the write-up calls them
# $\phi$; the chapters keep $\phi$ for HAR's small network) move a fraction $\tau$ of the way
# towards them,
# $$\bar\theta \leftarrow (1 - \tau)\,\bar\theta + \tau\,\theta,$$
# with $\tau = 0.01$ in the write-up. After $m$ steps with $\theta$ held fixed,
# $\bar\theta_m - \theta = (1 - \tau)^m (\bar\theta_0 - \theta)$: the target forgets its past
# geometrically, over about $1/\tau$ steps.
#
# **Your task.** Write `polyak_update` for any `torch.nn.Module`: every parameter, in place (the learner
# keeps using the same target network object), outside autograd (it is bookkeeping, not part of the
# loss), and a clear `ValueError` for a `tau` outside $[0, 1]$.

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
from torch import nn

from bitflip_lib import quick_mode

# %%
QUICK = quick_mode()
print(f"Running in {'quick' if QUICK else 'full'} mode")


# %% tags=["graded"]
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """In place: ``target <- (1 - tau) * target + tau * online`` for every pair of parameters.

    Args:
        target: the target network (same architecture as ``online``); modified in place.
        online: the network being trained; not modified.
        tau: the fraction in [0, 1] to move; ValueError otherwise.
    """
    ### BEGIN SOLUTION HINT: check tau, then move every target parameter a fraction tau towards its online twin, in place and outside autograd
    # RECIPE: 1. Raise `ValueError` unless `0 <= tau <= 1`.
    # RECIPE: 2. Under `torch.no_grad()`, loop over `zip(target.parameters(), online.parameters())`.
    # RECIPE: 3. Update each target tensor in place: `p.mul_(1 - tau).add_(q, alpha=tau)` or `p.lerp_(q, tau)`.
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must lie in [0, 1], got {tau}")
    with torch.no_grad():
        for p_target, p_online in zip(target.parameters(), online.parameters()):
            p_target.mul_(1.0 - tau).add_(p_online, alpha=tau)
    ### END SOLUTION


# %% [markdown]
# ## Check your function
#
# The last check trains HER + HAR with your update in place of the library's.

# %%
from bitflip_lib.grading import check

check("ex04_polyak", polyak_update)

# %% [markdown]
# ## Experiment: how fast should the target follow?
#
# We train the handcrafted network (HAR, chapter 6) with HER on n = 30 bits, with your update at three
# fractions: the write-up's 0.01, this library's default 0.05, and 0.2, on the same seeds (one in quick
# mode, two in full mode). Iterations
# to solve (greedy success at least 0.99 on 1024 fresh agents, five evaluations in a row) are printed
# per seed.

# %%
from bitflip_lib.config import make_config
from bitflip_lib.grading import train_with
from bitflip_lib.lab.runs import best_success

taus = [0.01, 0.05, 0.2]
seeds = [0] if QUICK else [0, 1]
budget = 60 if QUICK else 150
runs = {}
for tau in taus:
    for seed in seeds:
        config = make_config(n=30, arch="har", her="future", polyak=tau, max_iterations=budget, seed=seed)
        runs[tau, seed] = train_with(config, polyak_update=polyak_update)
        r = runs[tau, seed]
        print(f"tau = {tau:<5} seed {seed}: solved at {r.solved_at} (best success {best_success(r):.3f}, {r.wall_seconds:.1f} s)")

# %% [markdown]
# Every run solved within the budget, and the write-up's slow fraction 0.01 needed more iterations
# than 0.05 on every seed (both asserted below): the target lags about $1/\tau = 100$ gradient steps
# behind, about three iterations of 32 steps, so the values it bootstraps from catch up more slowly.
# Chapter 5 shows the other side: without a target network *and* without clipped targets the
# Q-values run away, but once the targets are clipped, training without a target network did not
# blow up there.

# %%
for (tau, seed), r in runs.items():
    assert r.solved_at is not None, (tau, seed, best_success(r))
for seed in seeds:
    assert runs[0.01, seed].solved_at > runs[0.05, seed].solved_at, (seed, runs[0.01, seed].solved_at, runs[0.05, seed].solved_at)

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3.5))
for tau in taus:
    for seed in seeds:
        x, y = runs[tau, seed].curve("success_rate")
        ax.plot(x, y, color={0.01: "tab:red", 0.05: "tab:blue", 0.2: "tab:green"}[tau],
                alpha=0.8, label=f"tau = {tau}" if seed == seeds[0] else None)
ax.set_xlabel("iteration")
ax.set_ylabel("greedy success rate (1024 agents)")
ax.set_title("HER + HAR, n = 30, with your Polyak update")
ax.legend()
plt.show()

# %% [markdown]
# **Summary.** The Polyak update is a per-parameter interpolation done in place and outside autograd;
# its one knob, $\tau$, trades stability against how quickly values propagate. Next: exercise 5
# (hindsight relabelling).
