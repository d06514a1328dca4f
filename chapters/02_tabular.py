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
# # Chapter 2: Tabular Q-learning on tiny n
#
# Before any neural network, let us solve bit flipping the old-fashioned way: with a table that
# holds one number for every state, goal and action. For a handful of bits this is perfectly
# feasible, we can compute the optimal answer exactly and watch Q-learning converge to it. The
# table also shows, in its size, why it cannot be the answer for long strings.
#
# **Learning goals.** After this chapter you can
# 1. store a goal-conditioned action-value function $Q(s, g, a)$ as a table indexed by integers;
# 2. write the Bellman optimality equation for bit flipping and solve it by value iteration;
# 3. derive the closed form $Q^*(s, g, a) = \gamma^{d-1}$ or $\gamma^{d+1}$ in the Hamming
#    distance $d$, and check that value iteration agrees with it exactly;
# 4. run Q-learning with $\varepsilon$-greedy exploration and measure how fast the table
#    approaches $Q^*$, and why a good greedy policy does not mean an accurate table;
# 5. compute how fast the table grows with $n$, and see where it stops fitting in memory.
#
# **Run time.** Full mode: about 1.5 minutes on a laptop CPU; quick mode: about 30 seconds.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from bitflip_lib import quick_mode, tabular, theory
from bitflip_lib.dqn import EpsilonSchedule

QUICK = quick_mode()
print(f"Running in {'QUICK (CI-sized budgets)' if QUICK else 'FULL'} mode")
CHAPTER_START = time.time()
# Tables for a few bits are tiny: the CPU handles them faster than a GPU would (no transfers),
# and it makes every number below reproducible on any machine.
DEVICE = "cpu"

# %% [markdown]
# ## 1. A goal-conditioned Q table
#
# A state or a goal is an $n$-bit string; read it as a binary number and it becomes an index in
# $\{0, \dots, 2^n - 1\}$ (bit $i$ has weight $2^i$). Then flipping bit $a$ of state $s$ is the
# integer operation $s \oplus 2^a$ (XOR), and the action-value function fits in a tensor
#
# $$
# Q[s, g, a], \qquad \text{shape } [2^n,\ 2^n,\ n].
# $$
#
# Rows with $s = g$ are never used (the episode is over), and stay at zero.

# %%
bits = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
codes = tabular.encode(bits)
print("bit strings:", bits.int().tolist(), "-> codes", codes.tolist())
assert codes.tolist() == [5, 6] and torch.equal(tabular.decode(codes, 3), bits)

n = 3
print("next_states[s, a] = s XOR 2^a for n = 3:\n", tabular.next_states(n, DEVICE))
size = tabular.table_size(n)
print(f"n = {n}: the table has {size.entries} entries ({size.bytes} bytes as float32)")
assert size.entries == 2**n * 2**n * n

# %% [markdown]
# ## 2. The exact answer: value iteration
#
# With reward $r = \mathbb{1}[s' = g]$ for the step to $s' = s \oplus e_a$, and the episode ending
# at the goal, the optimal action values satisfy the **Bellman optimality equation**
#
# $$
# Q^*(s, g, a) = r + \gamma\,(1 - r) \max_{a'} Q^*(s', g, a').
# $$
#
# Value iteration turns the equation into an update: start from $Q_0 = 0$ and apply the right-hand
# side to every entry at once, $Q_{k+1} = \mathcal{T} Q_k$. The operator $\mathcal{T}$ is a
# $\gamma$-contraction in the max norm, so the iterates converge to the unique fixed point $Q^*$.
# Here it is even better: the environment is deterministic, and after sweep $k$ every entry whose
# best continuation reaches the goal within $k$ flips (counting its own action) is exact. The
# longest such plan is a wrong flip at distance $n - 1$ followed by $n$ right ones, so after
# $n + 1$ sweeps every value is exact (one more sweep confirms that nothing changes).
#
# ### The closed form
#
# The distance $d = d(s, g)$ decides everything. The best plan from $d \ge 1$ flips a differing
# bit every step and is rewarded after $d$ steps, so $V^*(d) = \gamma^{d-1}$. An action moves the
# distance by one:
#
# $$
# Q^*(s, g, a) =
# \begin{cases}
# \gamma^{d-1} & \text{if bit } a \text{ differs from the goal (}d \to d-1\text{; } Q^* = 1 \text{ when } d = 1\text{)},\\
# \gamma \cdot V^*(d+1) = \gamma^{d+1} & \text{if bit } a \text{ already matches (}d \to d+1\text{)}.
# \end{cases}
# $$
#
# Let us compute $Q^*$ both ways and compare entry by entry.

# %%
q_star, sweeps = tabular.value_iteration(4, gamma=0.9, device=DEVICE)
print(f"n = 4, gamma = 0.9: value iteration converged after {sweeps} sweeps")
s, g = 0b0000, 0b0111  # start 0000, goal with bits 0, 1, 2 set: distance 3
print(f"Q*(s={s:04b}, g={g:04b}, a) for a = 0..3:", [round(v, 4) for v in q_star[s, g].tolist()])
print("closed form: differing bits gamma^2 =", 0.9**2, ", matching bit gamma^4 =", round(0.9**4, 4))
assert sweeps <= 4 + 2

VI_NS = range(1, 7) if QUICK else range(1, 9)
GAMMAS = (0.5, 0.9, 0.98, 1.0)
for n in VI_NS:
    for gamma in GAMMAS:
        q_vi, sweeps = tabular.value_iteration(n, gamma, device=DEVICE)
        q_cf = tabular.optimal_q_table(n, gamma, device=DEVICE)
        assert torch.allclose(q_vi, q_cf, atol=1e-12, rtol=0), (n, gamma)
        assert sweeps <= n + 2
print(f"value iteration equals the closed form for n in {list(VI_NS)} and gamma in {GAMMAS}")

# %% [markdown]
# Value iteration and the closed form agree to $10^{-12}$ for every $n$ and $\gamma$ we tried.
#
# Two consequences matter for the rest of the course.
#
# * **Q\* only depends on two numbers**, the distance $d$ and whether bit $a$ differs, not on
#   which of the $n \cdot 4^n$ entries we look at. Chapter 6 builds a network around this fact.
# * **The gap between the best and the worst action shrinks geometrically**:
#   $\gamma^{d-1} - \gamma^{d+1} = \gamma^{d-1}(1 - \gamma^2)$. At distance 50 with
#   $\gamma = 0.9$ it is below $10^{-2}$; an approximate Q-function must resolve it to act
#   right. This is why $\gamma$ must approach 1 as $n$ grows (chapters 3 and 6).

# %%
n = 5
q5 = tabular.optimal_q_table(n, 0.9, device=DEVICE)
dist = tabular.distance_table(n, DEVICE)
state_bits = tabular.decode(torch.arange(2**n), n)
differs = state_bits[:, None, :] != state_bits[None, :, :]  # [s, g, a]
cases = 0
for d in range(1, n + 1):
    for diff in (True, False):
        mask = (dist[:, :, None] == d) & (differs == diff)
        if mask.any():
            values = q5[mask]
            assert values.max() == values.min()  # one value per (distance, differs) case
            cases += 1
print(f"n = {n}: {tabular.table_size(n).entries} table entries, but only {cases} distinct cases (d, differs)")
assert cases == 2 * n - 1  # a matching bit needs d < n

ds = np.arange(1, 61)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
for gamma, style in ((0.9, "-"), (0.98, "--")):
    ax1.semilogy(ds, theory.optimal_q(ds, True, gamma), style, color="C0", label=f"flip a differing bit, $\\gamma$={gamma}")
    ax1.semilogy(ds, theory.optimal_q(ds, False, gamma), style, color="C3", label=f"flip a matching bit, $\\gamma$={gamma}")
    gap = theory.optimal_q(ds, True, gamma) - theory.optimal_q(ds, False, gamma)
    assert np.allclose(gap, gamma ** (ds - 1) * (1 - gamma**2))
    ax2.semilogy(ds, gap, style, color="k", label=f"$\\gamma$={gamma}")
ax1.set_xlabel("Hamming distance $d$ to the goal")
ax1.set_ylabel("$Q^*(s, g, a)$")
ax1.set_title("Optimal action values depend only on $d$")
ax1.legend(fontsize=8)
ax2.set_xlabel("Hamming distance $d$ to the goal")
ax2.set_ylabel("$Q^*$(good flip) $-$ $Q^*$(bad flip)")
ax2.set_title("The action gap $\\gamma^{d-1}(1-\\gamma^2)$ vanishes with $d$")
ax2.legend()
for ax in (ax1, ax2):
    ax.grid(True, alpha=0.3)
fig.tight_layout()
plt.show()
assert theory.optimal_q(50, True, 0.9) - theory.optimal_q(50, False, 0.9) < 1e-2

# %% [markdown]
# ## 3. Learning without a model: Q-learning
#
# Value iteration needs the whole model: it sweeps every state and knows where every flip leads.
# Q-learning (Watkins, 1989) only needs experience. After each transition $(s, g, a, r, s',
# \text{done})$ it moves one entry towards a one-sample estimate of the Bellman right-hand side:
#
# $$
# Q[s, g, a] \leftarrow Q[s, g, a] + \alpha \Big( \underbrace{r + \gamma\,(1 - \text{done}) \max_{a'} Q[s', g, a']}_{\text{TD target}} - Q[s, g, a] \Big).
# $$
#
# Behaviour is **$\varepsilon$-greedy**: with probability $\varepsilon$ flip a random bit, otherwise
# the bit with the largest $Q[s, g, \cdot]$ (ties broken at random, or a fresh all-zero table
# would always flip bit 0). Q-learning is *off-policy*: it learns $Q^*$ whatever the behaviour,
# as long as every $(s, g, a)$ keeps being tried. Two details match the deep version later on:
# a step that reaches the goal does not bootstrap (done), and a step cut off by the time limit
# does (the time limit is not part of the state, so it is not a real end).
#
# `tabular.q_learning` plays 16 agents in parallel in `BitFlipEnv`, updates the table after every
# step with `tabular.q_learning_update`, and every few iterations measures
# $\max |Q - Q^*|$ over the entries that matter ($s \ne g$) and the greedy policy's success rate on
# 1024 fresh episodes. We take $\alpha = 0.5$, $\gamma = 0.9$ and, first, $\varepsilon = 1$: purely
# random behaviour.

# %%
ITERATIONS = {3: 300, 4: 800} if QUICK else {3: 300, 4: 800, 5: 3000}
runs = {}
for n, iterations in ITERATIONS.items():
    start = time.time()
    runs[n] = tabular.q_learning(n, iterations=iterations, alpha=0.5, gamma=0.9, epsilon=1.0,
                                 num_agents=16, seed=0, eval_every=max(iterations // 30, 1), device=DEVICE)
    final = runs[n].final
    print(f"n = {n}: {iterations} iterations ({final['transitions']} updates) in {time.time() - start:.1f} s: "
          f"max |Q - Q*| = {final['max_error']:.2e}, mean = {final['mean_error']:.2e}, "
          f"greedy success = {final['success_rate']:.3f}")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
for n, run in runs.items():
    its, max_err = run.curve("max_error")
    _, mean_err = run.curve("mean_error")
    ax1.semilogy(its, np.maximum(max_err, 1e-16), label=f"n = {n}: max")
    ax1.semilogy(its, np.maximum(mean_err, 1e-16), ":", color=ax1.lines[-1].get_color(), label=f"n = {n}: mean")
    ax2.plot(*run.curve("success_rate"), label=f"n = {n}")
ax1.set_xlabel("iteration (16 episodes each)")
ax1.set_ylabel("$|Q - Q^*|$ over entries with $s \\ne g$")
ax1.set_title("Q-learning ($\\varepsilon = 1$) converges to $Q^*$")
ax1.legend()
ax2.set_xlabel("iteration (16 episodes each)")
ax2.set_ylabel("greedy success rate (1024 episodes)")
ax2.set_title("The greedy policy is right long before the table is")
ax2.legend()
for ax in (ax1, ax2):
    ax.grid(True, alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# The error starts at 1 (a zero table misses $Q^* = 1$ for a winning flip), stays there for a
# while (a value can only be right once the values downstream of it are), then falls
# geometrically: the environment is deterministic, so the only thing left to average out is the
# table's own initial ignorance.
#
# The largest error **never goes up**, and there is a short argument for it. Start from
# $Q = 0 \le Q^*$. If every entry is at most $Q^*$, every TD target is too (the Bellman operator
# is monotone and $Q^*$ is its fixed point), so an update, a weighted average of the old entry and
# a target, stays at most $Q^*$. And entries only grow: an entry is an average of earlier
# targets, each built from a table that has only grown since, so the new target is at least the
# entry. So $0 \le Q \le Q^*$ throughout, every entry creeps up towards $Q^*$, and
# $\max |Q - Q^*|$ can only shrink.
#
# The greedy policy becomes perfect long before the table is accurate, because acting well only
# needs the *order* of the values in each row.

# %%
for n, run in runs.items():
    its, errors = run.curve("max_error")
    _, success = run.curve("success_rate")
    assert errors[0] == 1.0
    assert errors[-1] < 1e-3, f"n = {n}: Q-learning did not get within 1e-3 of Q*"
    assert all(b <= a + 1e-12 for a, b in zip(errors, errors[1:])), "the max error went up"
    assert bool((run.q <= run.q_star + 1e-12).all()) and bool((run.q >= 0).all())  # 0 <= Q <= Q*
    assert success[-1] == 1.0
    first_perfect = its[success.index(1.0)]
    first_accurate = its[next(i for i, e in enumerate(errors) if e < 1e-3)]
    print(f"n = {n}: greedy success first 1.0 at iteration {first_perfect}, max error first < 1e-3 at {first_accurate}")
    assert first_perfect < first_accurate

# %% [markdown]
# ### Exploring less: a decaying $\varepsilon$
#
# Deep Q-learning (chapter 3) decays $\varepsilon$ from 1 towards 0.1 so that the agent spends
# more time on promising moves. What does that do to the table? Below, $\varepsilon$ is
# multiplied by 0.99 after every iteration, down to 0.1, and compared with $\varepsilon = 1$ at
# $n = 4$ on the same seed.

# %%
n = 4
decaying = tabular.q_learning(n, iterations=ITERATIONS[n], alpha=0.5, gamma=0.9,
                              epsilon=EpsilonSchedule(start=1.0, end=0.1, decay=0.99),
                              num_agents=16, seed=0, eval_every=max(ITERATIONS[n] // 30, 1), device=DEVICE)
for name, run in (("epsilon = 1", runs[n]), ("epsilon 1 -> 0.1", decaying)):
    f = run.final
    print(f"{name:>17}: max |Q - Q*| = {f['max_error']:.2e}, mean = {f['mean_error']:.2e}, "
          f"greedy success = {f['success_rate']:.4f}")

fig, ax = plt.subplots(figsize=(6.5, 4))
for name, run in (("$\\varepsilon = 1$", runs[n]), ("$\\varepsilon$: 1 $\\to$ 0.1 (x0.99 per iteration)", decaying)):
    its, mean_err = run.curve("mean_error")
    ax.semilogy(its, np.maximum(mean_err, 1e-16), label=f"{name}: mean")
    ax.semilogy(its, np.maximum(run.curve("max_error")[1], 1e-16), ":", color=ax.lines[-1].get_color(), label=f"{name}: max")
ax.set_xlabel("iteration (16 episodes each)")
ax.set_ylabel("$|Q - Q^*|$ over entries with $s \\ne g$")
ax.set_title(f"n = {n}: less exploration, less accurate table")
ax.legend(fontsize=8)
ax.grid(True, alpha=0.3)
fig.tight_layout()
plt.show()

off_goal = tabular.distance_table(n, DEVICE)[:, :, None].expand(-1, -1, n) > 0
wrong = {name: int(((run.q_star - run.q).abs() > 1e-3)[off_goal].sum()) for name, run in (("random", runs[n]), ("decaying", decaying))}
print(f"entries more than 1e-3 away from Q* (of {int(off_goal.sum())}): epsilon = 1: {wrong['random']}, decaying: {wrong['decaying']}")
assert wrong["random"] == 0 and wrong["decaying"] > 0.5 * int(off_goal.sum())
assert decaying.final["mean_error"] > 100 * runs[n].final["mean_error"]
assert decaying.final["max_error"] > 0.5
assert decaying.final["success_rate"] >= 0.95

# %% [markdown]
# With less exploration the greedy policy is still good (it succeeds in at least 95% of the
# episodes), but more than half of the table is still more than $10^{-3}$ away from $Q^*$ and the
# largest error stays above 0.5. A near-greedy agent repeats the moves it already likes, and an
# entry is only corrected when its action is tried in its state for its goal, and when the
# entries it bootstraps from are already right. Q-learning only learns about what it tries. With a table this costs accuracy on
# entries nobody needs; with a sparse reward and many bits, chapter 3 shows that it can cost
# everything.

# %% [markdown]
# ## 4. How big is the table?
#
# The table has $n \cdot 4^n$ entries. That is fine for a few bits and absurd soon after: each
# extra bit multiplies the size by more than 4. The library refuses to build a table of more than
# $2^{27}$ entries (512 MiB of float32) and says why.

# %%
NS = np.arange(1, 41)
gigabytes = np.array([tabular.table_size(int(n)).gigabytes for n in NS])
fig, ax = plt.subplots(figsize=(7, 4))
ax.semilogy(NS, gigabytes, "o-", ms=3, label="$n \\cdot 4^n$ float32 entries")
ax.axhline(16, color="C2", ls="--", label="a 16 GB laptop")
ax.axhline(tabular.MAX_TABLE_ENTRIES * 4 / 1e9, color="C3", ls=":", label="bitflip_lib's limit ($2^{27}$ entries)")
ax.set_xlabel("number of bits $n$")
ax.set_ylabel("table size (GB)")
ax.set_title("A goal-conditioned Q table grows like $n \\cdot 4^n$")
ax.legend()
ax.grid(True, alpha=0.3)
fig.tight_layout()
plt.show()

largest = max(int(n) for n in NS if tabular.table_size(int(n)).entries <= tabular.MAX_TABLE_ENTRIES)
first_too_big_for_laptop = min(int(n) for n, gb in zip(NS, gigabytes) if gb > 16)
print(f"largest n the library builds a table for: {largest}; first n over 16 GB: {first_too_big_for_laptop}")
print(f"n = 20 would need {tabular.table_size(20).gigabytes:,.0f} GB; n = 50 about {tabular.table_size(50).gigabytes:.1e} GB")
assert largest == 11 and first_too_big_for_laptop == 15
assert 80_000 < tabular.table_size(20).gigabytes < 90_000 and 2e23 < tabular.table_size(50).gigabytes < 3e23

try:
    tabular.new_table(20)
except ValueError as err:
    print("ValueError:", err)
    assert "network" in str(err)
else:
    raise AssertionError("building a table for n = 20 should fail")

# %% [markdown]
# At $n = 20$ the table would need about 88 terabytes, at $n = 50$ about $2.5 \cdot 10^{23}$
# gigabytes. Even where memory allowed it, a table learns every
# entry separately: nothing learned about one goal carries over to another, although $Q^*$ has
# only $2n - 1$ distinct cases. Function approximation (chapter 3) shares what it learns across
# entries; the right architecture (chapter 6) shares it exactly along the problem's symmetry.

# %% [markdown]
# ## Summary
#
# * A goal-conditioned Q table $Q[s, g, a]$ of shape $[2^n, 2^n, n]$, indexed by bit strings read
#   as integers; flipping bit $a$ is $s \oplus 2^a$.
# * Value iteration solves the Bellman optimality equation in at most $n + 1$ sweeps and agrees
#   exactly with the closed form $Q^* = \gamma^{d-1}$ for a differing bit and $\gamma^{d+1}$ for a
#   matching one; the action gap $\gamma^{d-1}(1 - \gamma^2)$ vanishes as $d$ grows.
# * Q-learning with random behaviour converges to $Q^*$ at $n = 3$ and $4$ (and $5$ in full mode):
#   max error below $10^{-3}$. The greedy policy is perfect long before the table is accurate.
#   With $\varepsilon$ decaying to 0.1, the policy stays good but entries it rarely tries stay
#   wrong.
# * The table grows like $n \cdot 4^n$: about 88 TB at $n = 20$. Beyond $n \approx 11$ we need a
#   network, which is where chapter 3 begins.
#
# **Exercise.** `exercises/ex02_tabular` asks you to write the tabular Q-learning update and
# value iteration yourself and checks them against $Q^*$ (grade it with `bitflip grade ex02`).

# %%
print(f"Chapter 2 ran in {time.time() - CHAPTER_START:.1f} s ({'quick' if QUICK else 'full'} mode)")
