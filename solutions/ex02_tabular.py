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
# # Exercise 2: a goal-conditioned Q table
#
# **Goes with:** chapter 2 (tabular Q-learning on tiny n). **Time:** about 30 minutes.
# **Run time** (laptop CPU): under half a minute in quick mode, about 10 s in full mode.
#
# **Recap.** For tiny n we can store one number per (state, goal, action). A state or goal is encoded as
# the integer whose bit $i$ is bit $i$ of the string, so flipping bit $a$ of $s$ gives `s ^ (1 << a)`,
# and the table `Q[s, g, a]` has shape `[2^n, 2^n, n]`. With the write-up's reward (1 on reaching the
# goal, else 0; Chau Yu Hei, HKUST):
#
# * **Q-learning** moves one entry towards a one-step target,
#   $Q(s,g,a) \leftarrow Q(s,g,a) + \alpha\,[\,r + \gamma (1 - \text{done}) \max_{a'} Q(s', g, a') - Q(s,g,a)\,]$,
#   where done means $s' = g$: reaching the goal ends the episode, so nothing is bootstrapped from there.
# * **Value iteration** applies the Bellman optimality backup to *every* entry at once, starting from
#   zeros, until nothing changes. Because the world is deterministic and every goal is at most n flips
#   away, it settles after about n + 1 sweeps, at the closed form of chapter 2:
#   $Q^*(s,g,a) = \gamma^{d-1}$ if bit $a$ differs from the goal and $\gamma^{d+1}$ otherwise, with
#   $d$ the Hamming distance. Rows with $s = g$ are never acted in; keep them at 0.
#
# **Your task.** Write both, vectorised over the batch (the update) and over the whole table (value
# iteration). The library has its own versions in `bitflip_lib.tabular`; do not call them here.

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

from bitflip_lib import BitFlipEnv, quick_mode, tabular

# %%
QUICK = quick_mode()
print(f"Running in {'quick' if QUICK else 'full'} mode")


# %% tags=["graded"]
def q_learning_update(Q, s, g, a, r, s2, done, alpha: float, gamma: float) -> torch.Tensor:
    """One batched Q-learning step, in place on ``Q``; returns the TD errors ``target - Q[s, g, a]``.

    Args:
        Q: float table ``[2^n, 2^n, n]``, modified in place.
        s, g, a, s2: int64 ``[B]``: state codes, goal codes, actions (bit indices), next-state codes.
        r: float ``[B]`` rewards. done: bool ``[B]``, True where ``s2 == g``.
        alpha: learning rate. gamma: discount.
    You may assume that no (s, g, a) triple appears twice in one batch. Compute every target from
    the table as it was before this update.
    """
    ### BEGIN SOLUTION HINT: move Q[s, g, a] a fraction alpha towards r + gamma max_a' Q[s', g, a'], with no bootstrap where done
    # RECIPE: 1. `Q[s2, g]` is `[B, n]`: its `.max(dim=1).values` is the best next value per row.
    # RECIPE: 2. Multiply it by `(1 - done.float())`, so terminal transitions do not bootstrap.
    # RECIPE: 3. `td_error = r + gamma * best_next - Q[s, g, a]`; then `Q[s, g, a] += alpha * td_error`; return `td_error`.
    bootstrap = Q[s2, g].max(dim=1).values
    target = r.to(Q.dtype) + gamma * (~done.bool()).to(Q.dtype) * bootstrap
    td_error = target - Q[s, g, a]
    Q[s, g, a] += alpha * td_error
    return td_error
    ### END SOLUTION


def value_iteration(n: int, gamma: float, tol: float = 1e-10, max_iterations: int = 1000) -> torch.Tensor:
    """Exact Q* ``[2^n, 2^n, n]`` (float64) by Bellman optimality backups from an all-zero table.

    Stop when the largest change of a sweep is at most ``tol``. Entries with ``s == g`` stay 0.
    """
    ### BEGIN SOLUTION HINT: apply the Bellman optimality operator to the whole table at once, sweep after sweep, until it stops changing
    # RECIPE: 1. Once: `next[s, a] = s ^ (1 << a)` and `reward[s, g, a] = (next[s, a] == g)`.
    # RECIPE: 2. Each sweep: `V = Q.max(2).values`; `Q_new = reward + gamma * (1 - reward) * V[next[s, a], g]`.
    # RECIPE: 3. Keep the entries with `s == g` at 0; stop when the largest change of a sweep is at most `tol`.
    size = 2**n
    states = torch.arange(size)
    nxt = states[:, None] ^ (1 << torch.arange(n))[None, :]  # [s, a]
    reward = (nxt[:, None, :] == states[None, :, None]).double()  # [s, g, a]
    at_goal = states[:, None] == states[None, :]  # [s, g]
    Q = torch.zeros(size, size, n, dtype=torch.float64)
    for _ in range(max_iterations):
        V = Q.max(dim=2).values  # [s, g]
        new_Q = reward + gamma * (1.0 - reward) * V[nxt].permute(0, 2, 1)  # V[s', g] laid out as [s, g, a]
        new_Q[at_goal] = 0.0
        change = (new_Q - Q).abs().max().item()
        Q = new_Q
        if change <= tol:
            break
    return Q
    ### END SOLUTION


# %% [markdown]
# ## Check your functions

# %%
from bitflip_lib.grading import check

check("ex02_tabular", q_learning_update, value_iteration)

# %% [markdown]
# ## Experiment: Q-learning from experience, measured against your Q*
#
# Sixty-four agents play epsilon-greedy episodes of n = 3 bits in `BitFlipEnv`; after every step your
# update learns from the batch of transitions. Exploration decays from 1 to 0.1. We track the largest
# error $\max |Q - Q^*|$ over the entries that matter ($s \ne g$) and the greedy policy's success.

# %%
n, gamma = 3, 0.9
Q_star = value_iteration(n, gamma)
Q = torch.zeros_like(Q_star)
agents = 64
iterations = 300 if QUICK else 1000
env = BitFlipEnv(n, num_agents=agents, device="cpu", seed=0)  # tables live on the CPU
rng = torch.Generator().manual_seed(0)
acting = tabular.distance_table(n) > 0
errors = []
for it in range(iterations):
    epsilon = max(0.1, 0.99**it)
    state, goal = env.reset()
    g = tabular.encode(goal)
    while not env.episode_over:
        s = tabular.encode(state)
        greedy = tabular.greedy_actions(Q, s, g, rng)
        explore = torch.rand(agents, generator=rng) < epsilon
        action = torch.where(explore, torch.randint(0, n, (agents,), generator=rng), greedy)
        step = env.step(action)
        s2 = tabular.encode(step.state)
        live = step.active  # learn only from steps that counted
        q_learning_update(Q, s[live], g[live], action[live], step.reward[live], s2[live], step.done[live], 0.5, gamma)
        state = step.state
    errors.append((Q - Q_star).abs()[acting].max().item())
success = tabular.greedy_policy_success(Q.float(), n, num_agents=1024, seed=1)
print(f"after {iterations} iterations: max |Q - Q*| = {errors[-1]:.4f}, greedy success {success:.3f}")

# %% [markdown]
# The error shrinks by orders of magnitude and the greedy policy solves every start and goal. The
# cell below asserts what was measured: the final error is under 0.05, at most a tenth of the error
# after 10 iterations, and the greedy success is 1.

# %%
assert errors[-1] < 0.05, errors[-1]
assert errors[-1] <= 0.1 * errors[9], (errors[9], errors[-1])
assert success == 1.0, success

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogy(range(1, iterations + 1), errors)
ax.set_xlabel("iteration (64 episodes each)")
ax.set_ylabel("max |Q - Q*| over s != g")
ax.set_title(f"Q-learning with your update converges to Q* (n = {n})")
plt.show()

# %% [markdown]
# **Summary.** The tabular update is one line of indexing; value iteration is the same backup applied
# everywhere at once. Both stop being possible beyond about n = 11, where the table would hold
# $n \cdot 4^n$ numbers: that is why chapter 3 replaces it with a network. Next: exercise 3.
