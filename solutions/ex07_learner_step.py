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
# # Exercise 7: the DQN learner step
#
# **Goes with:** chapters 3 and 5 (DQN, the target network, target clipping). **Time:** about 30 minutes.
# **Run time:** about 1 minute on a laptop CPU.
#
# **Recap.** One gradient step of DQN takes a batch of transitions $(s, g, a, r, s', \text{done})$
# sampled from the replay buffer and does five things, in this order:
#
# 1. **gather** the online network's value of the action actually taken, $Q_\theta(s, g, a)$
#    (the network returns all n values; keep one per row);
# 2. compute the **TD target** from the *target* network, with no gradient through it and no
#    bootstrapping past the goal, clipped to $[0, 1]$ (every true Q-value lies there, chapter 5):
#    $$y = \operatorname{clip}_{[0, 1]}\Big(r + \gamma\,(1 - \text{done})\,\max_{a'} Q_{\bar\theta}(s', g, a')\Big);$$
# 3. the **loss**, the mean squared error $\frac1B \sum_i \big(Q_\theta(s_i, g_i, a_i) - y_i\big)^2$;
# 4. the **optimiser step**: clear the old gradients, back-propagate, step;
# 5. the **Polyak update** of the target network, *after* the step, so that the target moves
#    towards the new online weights: $\bar\theta \leftarrow (1 - \tau)\,\bar\theta + \tau\,\theta$.
#
# This is what `bitflip_lib.dqn.DQNLearner.update` does (read it after you have written yours).
#
# **Your task.** Write `dqn_update(online, target, optimizer, batch, gamma, tau)`: one step as above,
# returning the loss as a 0-d tensor detached from the graph. You may call
# `bitflip_lib.dqn.polyak_update` (exercise 4) for step 5.

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
from torch.nn import functional as F

from bitflip_lib import quick_mode
from bitflip_lib.dqn import polyak_update
from bitflip_lib.replay import Transitions

# %%
QUICK = quick_mode()
print(f"Running in {'quick' if QUICK else 'full'} mode")


# %% tags=["graded"]
def dqn_update(online: nn.Module, target: nn.Module, optimizer: torch.optim.Optimizer, batch: Transitions,
               gamma: float, tau: float) -> torch.Tensor:
    """One DQN gradient step on ``batch``; returns the loss (a detached 0-d tensor).

    Args:
        online: the network being trained, ``(state, goal) -> [B, n]`` Q-values.
        target: the target network (same architecture); only the Polyak update changes it.
        optimizer: the optimiser of ``online``'s parameters.
        batch: transitions with ``state, goal, next_state`` ``[B, n]`` float, ``action`` ``[B]``
            int64, ``reward`` and ``done`` ``[B]`` float.
        gamma: the discount. tau: the Polyak fraction.
    """
    ### BEGIN SOLUTION HINT: the five steps of the recap, in that order; only the online network gets gradients
    # RECIPE: 1. `q = online(batch.state, batch.goal).gather(1, batch.action.unsqueeze(1)).squeeze(1)`.
    # RECIPE: 2. Under `torch.no_grad()`: `best = target(batch.next_state, batch.goal).max(dim=1).values`; `y = (batch.reward + gamma * (1 - batch.done) * best).clamp(0, 1)`.
    # RECIPE: 3. `loss = F.mse_loss(q, y)`.
    # RECIPE: 4. `optimizer.zero_grad()`, `loss.backward()`, `optimizer.step()`.
    # RECIPE: 5. `polyak_update(target, online, tau)`, then `return loss.detach()`.
    q = online(batch.state, batch.goal).gather(1, batch.action.unsqueeze(1)).squeeze(1)
    with torch.no_grad():  # the target is a fixed regression label: no gradient flows into it
        best_next = target(batch.next_state, batch.goal).max(dim=1).values
        y = (batch.reward + gamma * (1.0 - batch.done) * best_next).clamp(0.0, 1.0)
    loss = F.mse_loss(q, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    polyak_update(target, online, tau)  # after the step: the target follows the new weights
    return loss.detach()
    ### END SOLUTION


# %% [markdown]
# ## Check your function
#
# The checks compare your step with the library's on small networks (the loss, the online weights
# after the Adam step, the target weights after the Polyak update), then try the classic mistakes'
# situations one by one. The last check trains HER + HAR with your step inside the library's trainer.

# %%
from bitflip_lib.grading import check

check("ex07_learner_step", dqn_update)

# %% [markdown]
# ## Experiment: one batch, many steps
#
# Fit one fixed batch again and again, and watch two things: the loss, and the mean TD target $y$ the
# step regresses on. With the target network frozen ($\tau = 0$) the targets never move: this is
# ordinary regression, and the loss falls towards 0. With $\tau > 0$ every step also moves the target
# network, so the labels themselves drift while the network chases them.

# %%
from bitflip_lib.dqn import td_target
from bitflip_lib.grading import example_batch
from bitflip_lib.networks import MLP

steps, gamma = 300, 0.98
losses, mean_targets = {}, {}
for tau in (0.0, 0.05, 0.5):
    torch.manual_seed(0)
    online, target = MLP(8, hidden=(64,)), MLP(8, hidden=(64,))
    target.load_state_dict(online.state_dict())
    optimizer = torch.optim.Adam(online.parameters(), lr=1e-3)
    batch = example_batch(n=8, batch=64, seed=1)
    losses[tau], mean_targets[tau] = [], []
    for _ in range(steps):
        with torch.no_grad():
            y = td_target(batch.reward, batch.done, target(batch.next_state, batch.goal), gamma)
        mean_targets[tau].append(float(y.mean()))
        losses[tau].append(float(dqn_update(online, target, optimizer, batch, gamma, tau)))
    print(f"tau = {tau}: loss {losses[tau][0]:.3f} -> {losses[tau][-1]:.1e}; "
          f"mean target {mean_targets[tau][0]:.3f} -> {mean_targets[tau][-1]:.3f}")

# %% [markdown]
# With a frozen target the mean target does not move at all and the loss falls by orders of magnitude.
# With $\tau > 0$ the labels climb, here from about 0.44 to nearly the clip bound 1 (asserted below): the
# max over the network's own values in one step's target feeds the next step's, and nothing in this
# batch ever contradicts it. Chapter 5 studies that upward drift, and why clipping stops it at 1.

# %%
drift = {tau: abs(m[-1] - m[0]) for tau, m in mean_targets.items()}
assert drift[0.0] == 0.0 and losses[0.0][-1] < 0.01 * losses[0.0][0]
assert all(drift[tau] > 0.3 and mean_targets[tau][-1] > 0.9 for tau in (0.05, 0.5)), drift

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for tau in losses:
    axes[0].plot(losses[tau], label=f"tau = {tau}")
    axes[1].plot(mean_targets[tau], label=f"tau = {tau}")
axes[0].set(yscale="log", xlabel="gradient step on the same batch", ylabel="TD loss", title="The loss")
axes[1].set(xlabel="gradient step on the same batch", ylabel="mean TD target y", title="The labels it chases")
axes[0].legend()
plt.show()

# %% [markdown]
# **Summary.** The learner step is gather, clipped target from the target network (no gradient), loss,
# zero-grad / backward / step, and only then the Polyak update. Each step in the wrong place is a bug
# that still runs: the checks above show which. Next: exercise 8 (the replay buffer).
