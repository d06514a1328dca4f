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
# # Chapter 2: Values and tabular Q-learning on tiny n
#
# Before any neural network we define what an agent should learn, the value of a state or an
# action, derive the equations values obey, and solve bit flipping with a table holding one number
# per state, goal and action: for a few bits we can compute the optimal answer exactly and watch
# Q-learning converge to it. The table's size shows why it cannot be the answer for long strings.
#
# **Learning goals.** After this chapter you can
# 1. define the return, $V^\pi$, $Q^\pi$ and $Q^*$, and derive the Bellman equations;
# 2. solve the optimality equation for a Q table by value iteration, derive the closed form
#    $Q^* = \gamma^{d-1}$ or $\gamma^{d+1}$, and find the discount that best separates good flips;
# 3. run Q-learning with $\varepsilon$-greedy exploration, and explain why a good greedy policy
#    does not mean an accurate table, and why tables do not scale.
#
# **Study time.** About 75 minutes of reading and trying things.
# **Run time.** Under half a minute on a laptop CPU.
# Terms in bold are defined where they first appear and in the [glossary](glossary.md).

# %%
# The course library. Outside the course folder (Colab, a downloaded notebook), install it with
#   %pip install bitflip-course==0.1.0
try:
    import bitflip_lib
except ModuleNotFoundError:
    raise ModuleNotFoundError(
        "bitflip_lib is missing: run `%pip install bitflip-course==0.1.0`, then rerun this cell"
    ) from None

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from bitflip_lib import BitFlipEnv, quick_mode, tabular, theory
from bitflip_lib.dqn import EpsilonSchedule

QUICK = quick_mode()
print(f"Running in {'quick' if QUICK else 'full'} mode")
CHAPTER_START = time.time()
# Tables for a few bits are tiny: the CPU handles them faster than a GPU would (no transfers),
# and it makes every number below reproducible on any computer.
DEVICE = "cpu"

# %% [markdown]
# ## 1. Values and the Bellman equations
#
# The goal stays fixed during an episode, so in this section we fold it into the state: $s$ stands
# for the pair (state, goal). A **policy** $\pi(a \mid s)$ gives the probability of each action.
# From step $t$ on, the **return** is the discounted sum of the rewards still to come (all 0 after
# the goal), and it satisfies a one-step recursion:
# $$G_t = r_{t+1} + \gamma r_{t+2} + \gamma^2 r_{t+3} + \dots = r_{t+1} + \gamma\, G_{t+1}.$$
# **Values** are expected returns. The **state value** of $\pi$ is $V^\pi(s) = \mathbb{E}_\pi[G_t
# \mid s_t = s]$, and its **action value** $Q^\pi(s, a) = \mathbb{E}_\pi[G_t \mid s_t = s,
# a_t = a]$: take $a$ first, follow $\pi$ afterwards. Averaging over the first action,
# $V^\pi(s) = \sum_a \pi(a \mid s)\, Q^\pi(s, a)$.
#
# **Bellman expectation equation.** Put the recursion into the definition of $Q^\pi$. After
# $(s, a)$ the environment draws the next state $s'$ with probability $p(s' \mid s, a)$ and pays
# $r(s, a, s')$, and by the Markov property what happens afterwards depends only on $s'$, so the
# expected $G_{t+1}$ given $s_{t+1} = s'$ is $V^\pi(s')$:
# $$Q^\pi(s, a) = \mathbb{E}[r_{t+1} + \gamma G_{t+1} \mid s, a]
#   = \sum_{s'} p(s' \mid s, a)\,\big[r(s, a, s') + \gamma\, V^\pi(s')\big],$$
# with $V^\pi = 0$ at the goal, where the episode ends. Bit flipping is deterministic,
# $s' = s \oplus e_a$, with reward $r = \mathbb{1}[s' = g]$, so
# $Q^\pi(s, g, a) = r + \gamma (1 - r) \sum_{a'} \pi(a' \mid s', g)\, Q^\pi(s', g, a')$.
#
# **Optimal values.** $Q^*(s, a) = \max_\pi Q^\pi(s, a)$ and $V^*(s) = \max_\pi V^\pi(s)$. In the
# equation above the policy acts on the future only through $V^\pi(s')$, which is at most
# $V^*(s')$; and one policy reaches $V^*$ from every state at once (the greedy policy below;
# Sutton and Barto 2018, section 3.6), so the bound is attained, and $V^*(s') = \max_{a'} Q^*(s',
# a')$. This gives the **Bellman optimality equation**
# $$Q^*(s, a) = \sum_{s'} p(s' \mid s, a)\,\big[r(s, a, s') + \gamma \max_{a'} Q^*(s', a')\big],$$
# which for bit flipping reads
# $$Q^*(s, g, a) = r + \gamma (1 - r) \max_{a'} Q^*(s', g, a').$$
# The **greedy policy** $\pi^*(s) = \arg\max_a Q^*(s, a)$ is optimal: knowing $Q^*$ means knowing
# how to act.
#
# The expectation equation is linear in $V^\pi$, so a small one can be solved. For the uniformly
# random policy at $n = 4$ only the distance $d$ matters (it moves down with probability $d/n$, as
# in chapter 1): $n + 1$ unknowns. We solve, and compare with the mean discounted return of random
# agents in `BitFlipEnv` (episodes of 300 steps, after which $\gamma^{300}$ is negligible).

# %%
n, gamma = 4, 0.9
# Rows d = 0..n of (I - gamma P) V = r; row 0 says V(0) = 0 at the goal.
A, b = np.eye(n + 1), np.zeros(n + 1)
b[1] = 1 / n  # from d = 1 the right flip (probability 1/n) pays 1, and nothing follows it
for d in range(2, n + 1):
    A[d, d - 1] -= gamma * d / n  # flip a differing bit: distance d - 1
for d in range(1, n):
    A[d, d + 1] -= gamma * (n - d) / n  # flip a matching bit: distance d + 1
v_random = np.linalg.solve(A, b)

env = BitFlipEnv(n, num_agents=2**14, device=DEVICE, seed=3, max_steps=300)
env.reset()
start_distance = env.distance.clone()
returns = torch.zeros(env.num_agents, dtype=torch.float64)
flips = torch.Generator().manual_seed(4)
while not env.episode_over:
    step = env.step(torch.randint(0, n, (env.num_agents,), generator=flips))
    returns += gamma ** (env.t - 1) * step.reward.double()  # a reward on step k counts gamma^(k-1)
for d in range(1, n + 1):
    sample = returns[start_distance == d]
    mean, se = float(sample.mean()), float(sample.std() / len(sample) ** 0.5)
    print(f"d = {d}: V_random = {v_random[d]:.4f} (linear solve), "
          f"{mean:.4f} +- {se:.4f} (simulated), V* = {theory.optimal_value(d, gamma):.4f}")
    assert abs(mean - v_random[d]) < 4 * se + 1e-9
    assert v_random[d] < 0.6 * theory.optimal_value(d, gamma)  # far below the best policy

# %% [markdown]
# Solve and simulation agree within 4 standard errors at every distance; the random policy earns
# less than 60% of $V^*$, which the rest of the chapter computes.
#
# ## 2. A goal-conditioned Q table
#
# Read an $n$-bit string as a binary number (bit $i$ has weight $2^i$) and it becomes an index in
# $\{0, \dots, 2^n - 1\}$; flipping bit $a$ of $s$ is the XOR $s \oplus 2^a$, and $Q$ fits in a
# tensor $Q[s, g, a]$ of shape $[2^n, 2^n, n]$. Rows with $s = g$ are never used and stay at zero.

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
# ## 3. The exact answer: value iteration
#
# **Value iteration** turns the Bellman optimality equation of section 1,
# $Q^*(s, g, a) = r + \gamma (1 - r) \max_{a'} Q^*(s', g, a')$, into an update: start from
# $Q_0 = 0$ and apply the right-hand side to every entry at once, $Q_{k+1} = \mathcal{T} Q_k$.
# $\mathcal{T}$ is the **Bellman optimality operator**: it takes a whole table and returns the
# backed-up table. Why should repeating it ever settle, and on $Q^*$?
#
# **Why it converges: a contraction.** Write $\|Q - Q'\|_\infty$ for the largest difference between
# two tables, over all entries. Back up both tables: for any one entry the reward cancels, and
# only the bootstrapped part differs,
# $$\big|(\mathcal{T}Q)(s, g, a) - (\mathcal{T}Q')(s, g, a)\big|
#   = \gamma\,(1 - r)\,\big|\max_{a'} Q(s', g, a') - \max_{a'} Q'(s', g, a')\big| ,$$
# and since two maxima differ by at most the largest difference of what they maximise over (and
# $1 - r \le 1$), this is at most
# $$\gamma \max_{a'} \big|Q(s', g, a') - Q'(s', g, a')\big| \le \gamma\,\|Q - Q'\|_\infty .$$
# So one backup brings *any* two tables at least a factor $\gamma$ closer together: for
# $\gamma < 1$, $\mathcal{T}$ is a **contraction**. Two consequences. Take $Q' = Q^*$, which the
# backup leaves unchanged: $\|Q_k - Q^*\|_\infty \le \gamma^k \|Q_0 - Q^*\|_\infty$, so value
# iteration converges to $Q^*$ *from any start*, at least as fast as $\gamma^k$. And if $Q$ and
# $Q'$ were two solutions, $\|Q - Q'\|_\infty \le \gamma \|Q - Q'\|_\infty$ would force $Q = Q'$:
# the optimality equation has exactly one solution (this is Banach's fixed-point theorem).
#
# **At $\gamma = 1$** the same inequality only says that a backup does not push tables apart; it
# no longer pulls them together. Returns stay finite here (the only reward ends the episode, so
# every return is at most 1; with a reward on every step and no end, they would not be), but
# the solution is no longer unique: a table with 1 on every winning flip and any constant
# $c \ge 1$ on every other flip satisfies the equation too (the cell below checks $c = 2$). $Q^*$
# is the *least* solution, the one value iteration reaches from $Q_0 = 0$; from a start above it,
# value iteration need not reach $Q^*$ at all (a cell below shows such a start).
#
# From $Q_0 = 0$ convergence is even exact in a few sweeps here: the environment is deterministic,
# and after sweep $k$ every entry whose best plan reaches the goal within $k$ flips (its own
# included) is exact. The longest such plan, a wrong flip at distance $n - 1$ then $n$ right ones,
# makes every value exact after $n + 1$ sweeps (one more confirms that nothing changes).
#
# **The closed form.** The distance $d = d(s, g)$ decides everything. The best plan from $d \ge 1$
# flips a differing bit every step and is rewarded after $d$ steps, so $V^*(d) = \gamma^{d-1}$.
# An action moves the distance by one:
# $$Q^*(s, g, a) =
# \begin{cases}
# \gamma^{d-1} & \text{if bit } a \text{ differs from the goal } (d \to d-1),\\
# \gamma \cdot V^*(d+1) = \gamma^{d+1}
#   & \text{if bit } a \text{ already matches } (d \to d+1).
# \end{cases}$$
# (At $d = 1$ the right flip reaches the goal: $Q^* = \gamma^0 = 1$.) Let us compute $Q^*$ both ways
# and compare entry by entry.

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
        if n >= 2:  # n + 1 sweeps to get every value right, one more to see nothing change
            assert sweeps == n + 2
        if gamma == 1.0:  # no discount: every action of every state s != g is worth exactly 1
            assert bool((q_vi[tabular.distance_table(n, DEVICE) > 0] == 1).all())
print(f"value iteration equals the closed form for n in {list(VI_NS)} and gamma in {GAMMAS}")

# At gamma = 1 the optimality equation has other solutions: 1 on winning flips, c >= 1 elsewhere.
n = 4
nxt, goals = tabular.next_states(n, DEVICE), torch.arange(2**n)
winning = (nxt[:, None, :] == goals[None, :, None]).double()  # [s, g, a]: 1 on a winning flip
off_goal = (tabular.distance_table(n, DEVICE) > 0)[:, :, None].expand(-1, -1, n)


def backup(q: torch.Tensor, gamma: float) -> torch.Tensor:
    """One Bellman optimality backup of the whole table, on the entries with s != g."""
    v = q.amax(2) * (tabular.distance_table(n, DEVICE) > 0)  # no value once the goal is reached
    return winning + gamma * (1 - winning) * v[nxt].permute(0, 2, 1)


q_two = torch.where(winning == 1, 1.0, 2.0).double()
assert torch.equal(backup(q_two, 1.0)[off_goal], q_two[off_goal])  # another fixed point, gamma 1
assert not torch.equal(backup(q_two, 0.9)[off_goal], q_two[off_goal])  # not at gamma < 1
q_least, _ = tabular.value_iteration(n, 1.0, device=DEVICE)
assert bool((q_least[off_goal] <= q_two[off_goal]).all())  # value iteration from 0 finds the least
print("gamma = 1: the table with 1 on winning flips and 2 elsewhere is a fixed point as well")

# %% [markdown]
# Value iteration and the closed form agree to $10^{-12}$ for every $n$ and $\gamma$ tried. So
# *$Q^*$ only depends on two numbers*, $d$ and whether bit $a$ differs (chapter 6 builds on this).
#
# **Check your understanding 1 (predict before you run).** The next cell starts value iteration
# at $n = 4$ from a *random* table, every entry drawn between 0 and 2, instead of from zero, and
# records the largest error $\|Q_k - Q^*\|_\infty$ after each sweep. What happens at
# $\gamma = 0.9$, and at $\gamma = 1$?
#
# * (a) Both reach $Q^*$ after $n + 1 = 5$ sweeps, as from zero.
# * (b) At 0.9 the error shrinks by a factor 0.9 or more per sweep until it reaches 0; at 1 it
#   never approaches 0.
# * (c) Both reach $Q^*$; $\gamma = 1$ just takes longer.
# * (d) At 0.9 the values blow up, since the start is above every true value.
#
# <details><summary>Answer</summary>
#
# (b), and the cell asserts each part. At $\gamma = 0.9$ every sweep shrinks the error by at least
# the factor 0.9 that the contraction promises (from 1.34 to 0 in 11 sweeps: more than the 5
# from zero, because the random start's excess fades only like $0.9^k \cdot 2$ until the true
# path values take over). At $\gamma = 1$ the error stays near 1 for good: the random start's
# largest values are passed on undiminished, and the table ends up alternating between two
# tables (a flip changes the parity of the distance, so even and odd path lengths carry
# different start values), with 1.75 to 2 on every non-winning flip where $Q^*$ has 1. (a) holds
# only from zero, where no wrong value has to be forgotten. (c) is what one might expect from
# "slower convergence", but at $\gamma = 1$ there is no pull towards $Q^*$ at all. (d): a
# contraction cannot blow up; the backup multiplies the old values by $\gamma < 1$.
# </details>

# %%
start = 2 * torch.rand(2**n, 2**n, n, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(0))  # entries between 0 and 2
SWEEPS = 30
errors, exact_after = {}, {}
for gamma in (0.5, 0.9, 1.0):
    q_exact, q = tabular.optimal_q_table(n, gamma, device=DEVICE).double(), start.clone()
    errors[gamma] = []
    for _ in range(SWEEPS + 1):
        errors[gamma].append(float((q - q_exact)[off_goal].abs().max()))
        q = backup(q, gamma)
    exact_after[gamma] = next((k for k, e in enumerate(errors[gamma]) if e < 1e-12), None)
    exact = exact_after[gamma]
    print(f"gamma = {gamma}: error {errors[gamma][0]:.2f} at the start, "
          f"{errors[gamma][5]:.2f} after 5 sweeps, "
          + (f"exact (to 1e-12) after {exact} sweeps" if exact is not None
             else f"still {errors[gamma][-1]:.2f} after {SWEEPS} sweeps"))
    # The contraction: every sweep shrinks the error by at least a factor gamma.
    assert all(b <= gamma * a + 1e-12 for a, b in zip(errors[gamma], errors[gamma][1:]))
# Question 1: gamma = 0.9 reaches Q* (in 11 sweeps); gamma = 1 never approaches it, and ends up
# alternating between two tables (a period of 2 sweeps), neither of them Q*.
assert exact_after[0.9] == 11 and round(errors[0.9][0], 2) == 1.34 and exact_after[1.0] is None
assert min(errors[1.0]) > 0.99
assert torch.equal(backup(backup(q, 1.0), 1.0)[off_goal], q[off_goal])
assert not torch.equal(backup(q, 1.0)[off_goal], q[off_goal])
stuck = q[off_goal & (winning == 0)]
print(f"gamma = 1: alternates between two tables, with values {float(stuck.min()):.2f} to "
      f"{float(stuck.max()):.2f} on the non-winning flips (Q* has 1 there)")
assert 1.75 < float(stuck.min()) and float(stuck.max()) < 2

fig, ax = plt.subplots(figsize=(7, 3.6))
for gamma, color in ((0.5, "C0"), (0.9, "C1"), (1.0, "C3")):
    ax.plot(errors[gamma], "o-", ms=3, color=color, label=f"$\\gamma$ = {gamma}")
    bound = [gamma**k * errors[gamma][0] for k in range(SWEEPS + 1)]
    ax.plot(bound, ":", color=color, label=f"$\\gamma^k \\times$ start error, $\\gamma$ = {gamma}")
ax.set(xlabel="sweep $k$", ylabel="$\\|Q_k - Q^*\\|_\\infty$",
       title="Value iteration from a random table: the error shrinks like $\\gamma^k$ or faster")
ax.legend(fontsize=8, ncol=2)
ax.grid(True, alpha=0.3)
plt.show()

# %% [markdown]
# **Check your understanding 2 (predict).** At $\gamma = 1$, value iteration from zero does find
# $Q^*$. Now act greedily on it (ties broken at random, as everywhere in this course), with the
# usual $n = 4$ flips per episode. What share of episodes reach their goal?
#
# * (a) All of them: the greedy policy of $Q^*$ is optimal.
# * (b) About 21%, as many as purely random flips reach (chapter 1).
# * (c) None: it flips matching bits.
#
# <details><summary>Answer</summary>
#
# (b): the next cell measures 0.21 at $\gamma = 1$ against 1.00 at $\gamma = 0.9$, and asserts that
# the $\gamma = 1$ figure is chapter 1's $p(4) = 0.2104$ within 4 standard errors. Without a
# discount every flip of every state is worth exactly 1 (the goal can always be reached later),
# so all actions tie and the greedy policy *is* the random policy. It is optimal for the
# undiscounted objective, which does not care when the goal is reached, and useless within a
# time limit. (a) forgets that "optimal" is relative to the objective; (c) would need matching
# flips to look *better*, and they look exactly as good.
# </details>

# %%
GREEDY_AGENTS = 2**14
greedy_success = {}
for gamma in (0.9, 1.0):
    q_exact, _ = tabular.value_iteration(n, gamma, device=DEVICE)
    greedy_success[gamma] = tabular.greedy_policy_success(q_exact, n, GREEDY_AGENTS, seed=1)
p_random = theory.random_success_probability(n)
se = math.sqrt(p_random * (1 - p_random) / GREEDY_AGENTS)
print(f"n = {n}, greedy on Q*: success {greedy_success[0.9]:.2f} at gamma = 0.9, "
      f"{greedy_success[1.0]:.2f} at gamma = 1; random flips: p({n}) = {p_random:.4f}")
assert greedy_success[0.9] == 1.0 and abs(greedy_success[1.0] - p_random) < 4 * se  # question 2

# %% [markdown]
# **Which discount? The action gap.** Acting greedily only needs the best flip to look better than
# a bad one. Their difference, the **action gap** $\Delta(\gamma) = \gamma^{d-1} - \gamma^{d+1} =
# \gamma^{d-1}(1 - \gamma^2)$, must survive a learned Q-function's errors: at distance 50 with
# $\gamma = 0.9$ it is below $10^{-2}$. So $\gamma$ must approach 1 as $n$ grows, but not reach it:
# at $\gamma = 1$ every action has $Q^* = 1$ (arriving eventually is as good as arriving soon), and
# the gap vanishes again. In between, for $d \ge 2$,
# $$\frac{d\Delta}{d\gamma} = \gamma^{d-2}\big[(d-1)(1-\gamma^2) - 2\gamma^2\big] = 0
#   \iff \gamma^2 = \frac{d-1}{d+1},$$
# so the best discount at distance $d$ is
# $$\gamma^*(d) = \sqrt{1 - \tfrac{2}{d+1}} \approx 1 - \tfrac{1}{d}.$$
# The gap there is $\Delta^* = \gamma^{*\,d-1} \cdot \frac{2}{d+1} \approx \frac{2}{e\,d}$ for large
# $d$ (as $(1 - \frac{2}{d+1})^{(d-1)/2} \to e^{-1}$): the best gap shrinks like $1/d$, while any
# fixed $\gamma$ gives one that shrinks exponentially in $d$. The hardest starts are $d \approx n$,
# hence the course's default $\gamma = \max(0.98, 1 - 1/n)$: $1 - 1/n$ from $n = 50$ on, and 0.98
# below, a little far-sighted there (at $n = d = 20$ the gap is 0.027 against the best 0.037).

# %%
n = 5
q5, dist = tabular.optimal_q_table(n, 0.9, device=DEVICE), tabular.distance_table(n, DEVICE)
state_bits = tabular.decode(torch.arange(2**n), n)
differs = state_bits[:, None, :] != state_bits[None, :, :]  # [s, g, a]
used = (dist > 0)[:, :, None].expand(-1, -1, n)
distances = dist[:, :, None].expand(-1, -1, n)
cases = torch.stack([distances[used].double(), differs[used].double(), q5[used].double()], 1)
# One Q* value per (distance, differs) case: as many distinct triples as distinct pairs,
# 2n - 1 of them.
assert len(torch.unique(cases, dim=0)) == len(torch.unique(cases[:, :2], dim=0)) == 2 * n - 1
print(f"n = {n}: {tabular.table_size(n).entries} table entries, "
      f"but only {2 * n - 1} distinct cases (d, differs)")


def action_gap(gamma, d):
    return gamma ** (d - 1) * (1 - gamma**2)


ds, gammas = np.arange(1, 61), np.linspace(0.0, 1.0, 100_001)
fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(8.5, 10))  # stacked: fits a notebook's width
for gamma, style in ((0.9, "-"), (0.98, "--")):
    for differs, color, name in ((True, "C0", "differing"), (False, "C3", "matching")):
        ax1.semilogy(ds, theory.optimal_q(ds, differs, gamma), style, color=color,
                     label=f"{name} bit, $\\gamma$={gamma}")
    gap = theory.optimal_q(ds, True, gamma) - theory.optimal_q(ds, False, gamma)
    assert np.allclose(gap, action_gap(gamma, ds))
    ax2.semilogy(ds, gap, style, color="k", label=f"$\\gamma$={gamma}")
for d in (2, 5, 10, 20, 50):
    gaps, best = action_gap(gammas, d), math.sqrt((d - 1) / (d + 1))
    assert abs(gammas[gaps.argmax()] - best) <= 1e-5  # the zero of the derivative is the maximum
    ax3.plot(gammas, gaps / gaps.max(),
             label=f"d = {d}: best gap {gaps.max():.3f} at $\\gamma$ = {best:.3f}")
    ax3.axvline(1 - 1 / d, color=ax3.lines[-1].get_color(), ls=":", lw=1)
ax1.set(xlabel="Hamming distance $d$ to the goal", ylabel="$Q^*(s, g, a)$",
        title="Optimal action values depend only on $d$")
ax2.set(xlabel="Hamming distance $d$ to the goal", ylabel="$Q^*$(good flip) $-$ $Q^*$(bad flip)",
        title="The action gap $\\gamma^{d-1}(1-\\gamma^2)$ vanishes with $d$")
ax3.set(xlabel="discount $\\gamma$", ylabel="gap / best gap", xlim=(0.5, 1),
        title="Best $\\gamma^* = \\sqrt{(d-1)/(d+1)}$ (dotted: $1 - 1/d$)")
for ax in (ax1, ax2, ax3):
    ax.grid(True, alpha=0.3)
# Fixed places (searching 100,001 points for the best one is slow); the curves of the last panel
# fill it, so its legend goes under it.
for ax in (ax1, ax2):
    ax.legend(fontsize=8.5, loc="lower left")
ax3.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
fig.tight_layout()
plt.show()

D = np.arange(2, 1025)
best = np.sqrt((D - 1) / (D + 1))
assert np.all(np.abs(best - (1 - 1 / D)) < 1 / D**2)  # gamma* = 1 - 1/d up to 1/d^2
# The best gap is about 2 / (e d):
assert abs(action_gap(best[-1], D[-1]) * D[-1] / (2 / math.e) - 1) < 0.01
assert action_gap(0.9, 50) < 1e-2 and action_gap(1.0, 20) == 0.0
assert round(action_gap(max(0.98, 1 - 1 / 20), 20), 3) == 0.027
assert round(action_gap(math.sqrt(19 / 21), 20), 3) == 0.037

# %% [markdown]
# **Try it.** Move the sliders: how fast does the gap shrink with the distance for the write-up's
# $\gamma = 0.9$, and which $\gamma$ keeps it largest at $d = 20$?

# %%
from bitflip_lib.ui.explorers import FlipGapExplorer

FlipGapExplorer(gamma=0.9, d=5)

# %% [markdown]
# ## 4. Learning without a model: Q-learning
#
# Value iteration needs the whole model: it sweeps every state and knows where every flip leads.
# **Q-learning** (Watkins 1989) only needs experience. After each **transition** $(s, g, a, r,
# s', \text{done})$ it moves one entry, with a step size $\alpha$, towards a one-sample estimate of
# the optimality equation's right-hand side, the **TD target** (temporal difference):
# $$Q[s, g, a] \leftarrow Q[s, g, a] + \alpha \Big(
#   \underbrace{r + \gamma\,(1 - \text{done}) \max_{a'} Q[s', g, a']}_{\text{TD target}} -
#   Q[s, g, a] \Big).$$
# The target is built from the table's own current estimates: that is **bootstrapping**.
# Behaviour is **$\varepsilon$-greedy**: with probability $\varepsilon$ flip a random bit, otherwise
# the bit with the largest $Q[s, g, \cdot]$ (ties broken at random, or a fresh all-zero table
# would always flip bit 0). Q-learning is **off-policy**: it learns $Q^*$, the values of the greedy
# policy, whatever the behaviour, as long as every $(s, g, a)$ keeps being tried. A step that
# reaches the goal does not bootstrap (done); a step cut off by the time limit does (the time
# limit is not part of the state, so it is not a real end).
#
# `tabular.q_learning` plays 16 agents in `BitFlipEnv`, updates after every step, and measures
# $\max |Q - Q^*|$ over the entries with $s \ne g$ and the greedy success on 1024 fresh episodes.
# We take $\alpha = 0.5$, $\gamma = 0.9$, $\varepsilon = 1$ (purely random); then at $n = 4$ an
# $\varepsilon$ that decays by $\times 0.99$ per iteration, down to 0.1. (Chapter 3's networks decay
# theirs by $\times 0.999$ per gradient step, which at 32 gradient steps per iteration is
# $0.999^{32} \approx \times 0.968$ per iteration.)
#
# **Check your understanding 3 (predict before you run).** At $n = 4$, compare $\varepsilon = 1$
# (every flip random) with $\varepsilon$ decaying to 0.1 (mostly greedy later on), both for 800
# iterations. Which statement will the cells below bear out?
#
# * (a) The decaying run ends with the more accurate table: it spends its updates where they
#   matter.
# * (b) $\varepsilon = 1$ ends with the more accurate table, and the decaying run's greedy policy
#   still works.
# * (c) $\varepsilon = 1$ ends with the more accurate table, and the decaying run's greedy policy
#   fails.
#
# <details><summary>Answer</summary>
#
# (b): $\varepsilon = 1$ gets every entry within $10^{-3}$ of $Q^*$; the decaying run leaves more
# than half of the entries off by more than that, and its largest error above 0.5, yet its greedy
# policy succeeds in at least 95% of the episodes (the cell after the plots asserts all three).
# An entry is only corrected when its action is tried in its state for its goal; a mostly greedy
# agent keeps trying the same good flips, which is all a policy needs (a policy needs the *order*
# of the values in each row, not the values) and not enough for the table. (a) confuses a good
# policy with an accurate table; (c) confuses an inaccurate table with a bad policy.
# </details>

# %%
ITERATIONS = {3: 300, 4: 800} if QUICK else {3: 300, 4: 800, 5: 3000}
runs = {}
for n, iterations in ITERATIONS.items():
    start = time.time()
    runs[n] = tabular.q_learning(n, iterations=iterations, alpha=0.5, gamma=0.9, epsilon=1.0,
                                 num_agents=16, seed=0, eval_every=max(iterations // 30, 1),
                                 device=DEVICE)
    final = runs[n].final
    print(f"n = {n}: {iterations} iterations ({final['transitions']} updates) in "
          f"{time.time() - start:.1f} s: max |Q - Q*| = {final['max_error']:.2e}, "
          f"mean = {final['mean_error']:.2e}, greedy success = {final['success_rate']:.3f}")
decaying = tabular.q_learning(4, iterations=ITERATIONS[4], alpha=0.5, gamma=0.9,
                              epsilon=EpsilonSchedule(start=1.0, end=0.1, decay=0.99),
                              num_agents=16, seed=0, eval_every=max(ITERATIONS[4] // 30, 1),
                              device=DEVICE)
assert round(0.999**32, 3) == 0.968  # chapter 3's per-step decay, per iteration of 32 steps
print(f"n = 4, epsilon 1 -> 0.1: max |Q - Q*| = {decaying.final['max_error']:.2e}, "
      f"mean = {decaying.final['mean_error']:.2e}, "
      f"greedy success = {decaying.final['success_rate']:.4f}")

# %%
fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(8.5, 10))  # stacked: fits a notebook's width
for n, run in runs.items():
    its, max_err = run.curve("max_error")
    ax1.semilogy(its, np.maximum(max_err, 1e-16), label=f"n = {n}: max")
    ax1.semilogy(its, np.maximum(run.curve("mean_error")[1], 1e-16), ":",
                 color=ax1.lines[-1].get_color(), label=f"n = {n}: mean")
    ax2.plot(*run.curve("success_rate"), label=f"n = {n}")
for name, run in (("$\\varepsilon = 1$", runs[4]), ("$\\varepsilon$: 1 $\\to$ 0.1", decaying)):
    its, mean_err = run.curve("mean_error")
    ax3.semilogy(its, np.maximum(mean_err, 1e-16), label=f"{name}: mean")
    ax3.semilogy(its, np.maximum(run.curve("max_error")[1], 1e-16), ":",
                 color=ax3.lines[-1].get_color(), label=f"{name}: max")
ax1.set(ylabel="$|Q - Q^*|$ over entries with $s \\ne g$",
        title="Q-learning ($\\varepsilon = 1$) converges to $Q^*$")
ax2.set(ylabel="greedy success rate (1024 episodes)",
        title="The greedy policy is right long before the table is")
ax3.set(ylabel="$|Q - Q^*|$", title="n = 4: less exploration, less accurate table")
for ax in (ax1, ax2, ax3):
    ax.set_xlabel("iteration (16 episodes each)")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# The error starts at 1 (a zero table misses $Q^* = 1$ for a winning flip), stays there while the
# values downstream are still wrong, then falls geometrically. It *never goes up*, and here is why.
# Start from $Q = 0 \le Q^*$. If every entry is at most $Q^*$, so is every TD target (the Bellman
# operator is monotone and $Q^*$ is its fixed point), and so is an update, a weighted average of
# the old entry and a target. And entries only grow: an entry is an average of earlier targets,
# each built from a table that has only grown since. So $0 \le Q \le Q^*$ throughout, every entry
# creeps up towards $Q^*$, and $\max |Q - Q^*|$ can only shrink. The greedy policy is perfect long
# before the table is accurate: acting well only needs the *order* of the values in each row.

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
    print(f"n = {n}: greedy success first 1.0 at iteration {first_perfect}, "
          f"max error first < 1e-3 at {first_accurate}")
    assert first_perfect < first_accurate

n = 4
off_goal = tabular.distance_table(n, DEVICE)[:, :, None].expand(-1, -1, n) > 0
wrong = {name: int(((run.q_star - run.q).abs() > 1e-3)[off_goal].sum())
         for name, run in (("random", runs[n]), ("decaying", decaying))}
print(f"entries more than 1e-3 away from Q* (of {int(off_goal.sum())}): "
      f"epsilon = 1: {wrong['random']}, decaying: {wrong['decaying']}")
assert wrong["random"] == 0 and wrong["decaying"] > 0.5 * int(off_goal.sum())
assert decaying.final["mean_error"] > 100 * runs[n].final["mean_error"]
assert decaying.final["max_error"] > 0.5
assert decaying.final["success_rate"] >= 0.95

# %% [markdown]
# With less exploration (right panel) the greedy policy is still good (at least 95% success), but
# more than half of the table is more than $10^{-3}$ away from $Q^*$ and the largest error stays
# above 0.5: an entry is only corrected when its action is tried in its state for its goal, after
# the entries it bootstraps from are right. Q-learning only learns about what it tries; with a
# table this costs accuracy on entries nobody needs, with a sparse reward and many bits it can
# cost everything (chapter 3).

# %% [markdown]
# **Try it live.** The dashboard below runs the same Q-learning and redraws as it learns: the
# error of the table, the greedy success, and every entry of the table against its exact value
# (they end on the diagonal). Change $\varepsilon$, $\alpha$ or $\gamma$ and press *Train*: each new
# run is drawn over the earlier ones, in its own colour, until *Clear runs*.

# %%
from bitflip_lib.ui.dashboards import TabularDashboard

live = TabularDashboard(n=3 if QUICK else 4, iterations=60 if QUICK else 400, eval_every=20 if QUICK else 40)
live.run()
assert live.result.final["max_error"] < live.result.history[0]["max_error"]
live

# %% [markdown]
# ## 5. How big is the table?
#
# The table has $n \cdot 4^n$ entries: fine for a few bits, absurd soon after (each extra bit
# multiplies it by more than 4). The library refuses to build more than $2^{27}$ entries (512 MiB).

# %%
NS = np.arange(1, 41)
gigabytes = np.array([tabular.table_size(int(n)).gigabytes for n in NS])
fig, ax = plt.subplots(figsize=(7, 4))
ax.semilogy(NS, gigabytes, "o-", ms=3, label="$n \\cdot 4^n$ float32 entries")
ax.axhline(16, color="C2", ls="--", label="a 16 GB laptop")
ax.axhline(tabular.MAX_TABLE_ENTRIES * 4 / 1e9, color="C3", ls=":",
           label="bitflip_lib's limit ($2^{27}$ entries)")
ax.set(xlabel="number of bits $n$", ylabel="table size (GB)",
       title="A goal-conditioned Q table grows like $n \\cdot 4^n$")
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()

largest = max(int(n) for n in NS if tabular.table_size(int(n)).entries <= tabular.MAX_TABLE_ENTRIES)
first_too_big_for_laptop = min(int(n) for n, gb in zip(NS, gigabytes) if gb > 16)
gb20, gb50 = tabular.table_size(20).gigabytes, tabular.table_size(50).gigabytes
print(f"largest n the library builds a table for: {largest}; "
      f"first n over 16 GB: {first_too_big_for_laptop}")
print(f"n = 20 would need {gb20:,.0f} GB; n = 50 about {gb50:.1e} GB")
assert largest == 11 and first_too_big_for_laptop == 15
assert 80_000 < gb20 < 90_000 and 2e23 < gb50 < 3e23

try:
    tabular.new_table(20)
    raise AssertionError("building a table for n = 20 should fail")
except ValueError as err:
    print("ValueError:", err)
    assert "network" in str(err)

# %% [markdown]
# At $n = 20$ the table would need about 88 terabytes, at $n = 50$ about $2.5 \cdot 10^{23}$
# gigabytes. Even where memory allowed it, a table learns every entry separately: nothing learned
# about one goal carries over to another, although $Q^*$ has only $2n - 1$ distinct cases. Networks
# (chapter 3) share what they learn; the right one (chapter 6) shares it along the symmetry.
#
# ## Check your understanding
#
# Questions 1 to 3 are above, each before the cell that answers it. One more:
#
# **4. Predict.** Value iteration at $n = 6$, $\gamma = 0.9$, started from zero: how many sweeps
# until nothing changes? (a) about 6, (b) about $2^6 = 64$, (c) about
# $\log(10^{-12}) / \log 0.9 \approx 260$, as the contraction bound suggests.
# <details><summary>Answer</summary>(a): every value is exact after $n + 1 = 7$ sweeps and the
# eighth confirms it (the cell of section 3 asserts at most $n + 2$ sweeps for every $n$ it
# tries). The contraction bound $\gamma^k$ holds from any start; from zero, in a deterministic
# task, each sweep makes the values of one more distance exact, which is much faster. (b)
# confuses sweeps with states.</details>
#
# > **Common pitfalls.** (1) Bootstrapping through the goal: a step that reaches it has target $r$
# > alone, which is what $(1 - \text{done})$ is for. (2) Treating the time limit as an end: a
# > cut-off step still bootstraps. (3) Breaking ties towards bit 0: a fresh zero table then always
# > flips bit 0. (4) Judging the table by the policy: a perfect policy can sit on a wrong table.
#
# ## Summary
#
# * Values are expected returns ($V^\pi$, $Q^\pi$, $Q^* = \max_\pi Q^\pi$).
#   $G_t = r_{t+1} + \gamma G_{t+1}$ gives the Bellman expectation equation, a max the optimality
#   one; greedy on $Q^*$ is optimal.
# * Value iteration solves the optimality equation for a $[2^n, 2^n, n]$ table in at most $n + 1$
#   sweeps, matching $Q^* = \gamma^{d-1}$ (differing bit) and $\gamma^{d+1}$ (matching bit). Their
#   gap vanishes at $\gamma = 1$ as for small $\gamma$; it peaks at
#   $\sqrt{(d-1)/(d+1)} \approx 1 - 1/d$.
# * Q-learning with random behaviour converges to $Q^*$; its greedy policy is perfect long before
#   the table is; with $\varepsilon$ decaying to 0.1, rarely tried entries stay wrong. The table
#   grows like $n \cdot 4^n$ (88 TB at $n = 20$): beyond $n \approx 11$ we need a network.
#
# **Exercise.** `exercises/ex02_tabular`: write the tabular Q-learning update and value iteration
# yourself (grade it with `bitflip grade ex02`). **Next:** chapter 3 replaces the table by a
# network.
#
# ## References
#
# * R. S. Sutton, A. G. Barto. *Reinforcement Learning: An Introduction*, 2nd ed. MIT Press, 2018
#   (chapters 3, 4 and 6.5). R. Bellman. *Dynamic Programming*. Princeton University Press, 1957.
# * C. J. C. H. Watkins. *Learning from Delayed Rewards*. PhD thesis, University of Cambridge,
#   1989; C. J. C. H. Watkins, P. Dayan. Q-learning. *Machine Learning* 8: 279-292, 1992.
# * C. Lee. *Reinforcement Learning*, lecture notes (MDPs, Bellman equations, dynamic programming,
#   TD learning). Department of Artificial Intelligence, 2024.
# * Chau Yu Hei (HKUST). *Documentation of Bit Sequence mini RL project*.
#   https://github.com/louis845/BitSeqRLToyProblem

# %%
print(f"Chapter 2 ran in {time.time() - CHAPTER_START:.1f} s ({'quick' if QUICK else 'full'} mode)")
