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
# *Student version, generated from `solutions/ex06_har.py` by `python -m bitflip_lib.grading generate`.*
# *Fill in every part that raises `NotImplementedError`, run the check cells, and grade from a
# terminal with `bitflip grade ex06_har`. Write each part yourself: while grading, the library's own
# version of what you write is switched off (a function that calls it fails).*

# %% [markdown]
# # Exercise 6: the handcrafted architecture (HAR)
#
# **Goes with:** chapter 6 (inductive bias). **Time:** about 30 minutes.
# **Run time:** about 2 minutes on a laptop CPU.
#
# **Recap.** Whether flipping bit $a$ is a good idea depends only on two numbers: how far the state is
# from the goal, $\|s - g\|_1$, and whether bit $a$ differs from the goal, $|s_a - g_a|$. The write-up
# (Chau, appendix 4.2; full reference in chapter 6) builds this in:
# $$Q(s, g, a) = \phi_\theta\big(\|s - g\|_1,\ |s_a - g_a|\big),$$
# one small network $\phi_\theta : \mathbb{R}^2 \to \mathbb{R}$ shared by every bit. The optimal $Q^*$
# has exactly this form ($\gamma^{d-1}$ for a differing bit, $\gamma^{d+1}$ for a matching one), so
# nothing is lost, and the network is the same for every n: it can be trained on small n and used on
# large n. Feeding the distance as the fraction $\|s - g\|_1 / n$ keeps the input in $[0, 1]$ for
# every n (the library's default; chapter 6 compares it with the raw count).
#
# **Your task.** Write `HARNetwork`, a `torch.nn.Module`:
# * `__init__(hidden=(64, 64), normalize_distance=True)` builds `self.phi` as
#   `nn.Sequential(Linear(2, 64), ReLU(), Linear(64, 64), ReLU(), Linear(64, 1))` for the default
#   `hidden`, taking its two inputs in the order of the formula: (distance feature, bit differs);
# * `forward(state, goal)` takes `[B, n]` float bit tensors and returns `[B, n]` Q-values, for any n.

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
from collections.abc import Sequence

import torch
from torch import nn

from bitflip_lib import quick_mode

# %%
QUICK = quick_mode()
print(f"Running in {'quick' if QUICK else 'full'} mode")


# %% tags=["graded"]
class HARNetwork(nn.Module):
    """``Q(s, g, a) = phi(distance feature, |s_a - g_a|)`` with one MLP ``phi`` shared by all bits."""

    def __init__(self, hidden: Sequence[int] = (64, 64), normalize_distance: bool = True) -> None:
        super().__init__()
        raise NotImplementedError("phi is a small MLP from 2 inputs to 1 output, with a ReLU after each hidden layer (stuck? open the recipe below this cell)")

    def forward(self, state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """``[B, n]`` states and goals -> ``[B, n]`` Q-values, one per bit flip."""
        raise NotImplementedError("give phi, for every bit, the pair (distance feature of the row, whether this bit differs) (stuck? open the recipe below this cell)")


# %% [markdown]
# <details><summary>Recipe for <code>HARNetwork.__init__</code> (open it only if the hint was not enough)</summary>
#
# 1. Store `normalize_distance` on `self`.
# 2. Build a list of layers from width 2: for each `h` in `hidden`, add `nn.Linear(width, h)` and `nn.ReLU()`, then `width = h`.
# 3. End with `nn.Linear(width, 1)`; `self.phi = nn.Sequential(*layers)`.
#
# </details>
# <details><summary>Recipe for <code>HARNetwork.forward</code> (open it only if the hint was not enough)</summary>
#
# 1. `differs = (state != goal).float()` is `[B, n]`.
# 2. The distance is its row sum (`keepdim=True`), divided by n if normalising.
# 3. Stack `[distance.expand_as(differs), differs]` on a last dimension: `[B, n, 2]`.
# 4. Apply `self.phi` and drop the last dimension.
#
# </details>

# %% [markdown]
# ## Check your network
#
# The last check trains your network with the library's `train(config, network=...)` on n = 20 and
# evaluates it unchanged on n = 50.

# %%
from bitflip_lib.grading import check

check("ex06_har", HARNetwork)

# %% [markdown]
# ## Experiment: train small, use large
#
# We train one `HARNetwork` on n = 20 bits with HER, then evaluate the very same weights on much longer
# strings. With the normalised distance feature the network sees inputs in the same range at every n.

# %%
from bitflip_lib.config import make_config
from bitflip_lib.trainer import evaluate, train

torch.manual_seed(0)
net = HARNetwork()
result = train(make_config(n=20, arch="har", her="future", max_iterations=100, seed=0), network=net, progress=False)
print(f"n = 20: solved at iteration {result.solved_at}")
sizes = [20, 50, 100, 200] if QUICK else [20, 50, 100, 200, 500]
transfer = {n: evaluate(net, n, num_agents=512, seed=1)["success_rate"] for n in sizes}
for n, rate in transfer.items():
    print(f"evaluated on n = {n:3d} without retraining: success {rate:.3f}")

# %% [markdown]
# Training on 20 bits solves 20 bits, and the same weights solve every larger size tried here (asserted
# below: success at least 0.99). What transfers is the learned *preference*: at every distance the value
# of flipping a differing bit exceeds that of flipping a matching one, which is all a greedy policy needs.

# %%
assert result.solved_at is not None
for n, rate in transfer.items():
    assert rate >= 0.99, (n, rate)

# %% [markdown]
# The learned $\phi$ against the optimal values at the training discount $\gamma = 0.98$: the network
# only has to rank the two curves correctly, not match them exactly.

# %%
import matplotlib.pyplot as plt

from bitflip_lib.theory import optimal_q

n_train, gamma = 20, result.config.effective_gamma
d = torch.arange(1, n_train + 1)
device = next(net.parameters()).device  # train() moved the network to the GPU if there is one
with torch.no_grad():
    feature = d.float().to(device) / n_train
    phi_differs = net.phi(torch.stack([feature, torch.ones_like(feature)], dim=1)).squeeze(1).cpu()
    phi_matches = net.phi(torch.stack([feature, torch.zeros_like(feature)], dim=1)).squeeze(1).cpu()
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(d, phi_differs, "o-", label="phi(d/n, 1): flip a differing bit")
ax.plot(d, phi_matches, "s-", label="phi(d/n, 0): flip a matching bit")
ax.plot(d, optimal_q(d.double(), torch.ones_like(d, dtype=torch.bool), gamma), "k--", label="Q*: differing bit")
ax.plot(d, optimal_q(d.double(), torch.zeros_like(d, dtype=torch.bool), gamma), "k:", label="Q*: matching bit")
ax.set_xlabel("Hamming distance to the goal")
ax.set_ylabel("Q-value")
ax.set_title(f"Your HAR after training on n = {n_train}")
ax.legend()
plt.show()

# %% [markdown]
# **Summary.** Building the symmetry of the problem into the network (every bit treated alike, only
# the distance and the bit's own mismatch mattering) shrinks the function to learn from one over
# $2^n \times 2^n \times n$ inputs to one over two numbers. That is why HAR scales where generic
# networks stall. Next: exercise 7 (the whole DQN learner step); run `bitflip grade` to see all your
# results at once.
