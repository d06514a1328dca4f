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
# # Chapter 1: Sparse rewards in a world of bits
#
# Picture a program that must type one particular string of $n$ bits. It may change one bit at a
# time, and it hears "well done" only at the instant the whole string is right; otherwise nothing
# at all. How is it supposed to learn? This course answers that question step by step, on the
# smallest problem that has it, **bit flipping**. This chapter builds the world and measures,
# exactly, how hopeless it is to stumble on the reward by chance.
#
# **Learning goals.** After this chapter you can
# 1. state the goal-conditioned bit-flipping task as a Markov decision process (states, goals,
#    actions, reward, termination, horizon) and compute the discounted return of an episode;
# 2. run the batched environment of `bitflip_lib` on a CPU or a GPU, and explain how agents that
#    have finished are masked;
# 3. derive the exact probability that a random agent ever sees a reward (a random walk on the
#    Hamming distance), check it against simulation, and show that it collapses like $n\,2^{-n}$;
# 4. connect this toy problem to generating long text when only the finished text is scored.
#
# **Study time.** About 45 minutes of reading and trying things.
# **Run time.** About half a minute on a laptop CPU.
# New to reinforcement learning? Terms in bold are defined where they first appear and in the
# [glossary](glossary.md).

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

from bitflip_lib import (
    BitFlipEnv,
    default_device,
    describe_device,
    hamming_distance,
    quick_mode,
    theory,
)
from bitflip_lib.ui import diagrams

QUICK = quick_mode()
print(f"Running in {'quick' if QUICK else 'full'} mode")
CHAPTER_START = time.time()

# %% [markdown]
# ## 1. The task as a Markov decision process
#
# Reinforcement learning talks about an **agent** that acts in an **environment**. At each step
# the agent sees a **state**, picks an **action**, and the environment answers with a next state
# and a number, the **reward**. A **Markov decision process** (MDP) is this loop when the next
# state and reward depend only on the current state and action. The rule the agent acts by is its
# **policy** $\pi$, and one run from a start state to the end is an **episode**.
#
# Fix a number of bits $n$. The write-up this course is built on (Chau, *Documentation of Bit
# Sequence mini RL project*; see the references) and the Hindsight Experience Replay paper
# (Andrychowicz et al. 2017) use the same task, up to the reward convention (the HER paper pays
# $-1$ per step until the goal and $0$ there, which leads to the same best behaviour: reach the
# goal in as few flips as possible):
#
# * **States and goals.** $s, g \in \mathcal{S}_n = \{0,1\}^n$. A goal is drawn uniformly at the
#   start of each episode, and so is the start state; a start that happens to equal its goal is
#   redrawn, so there is always something to do.
# * **Actions.** $a \in \mathcal{A}_n = \{0, \dots, n-1\}$: flip bit $a$. Writing $e_a$ for the
#   $a$-th unit vector, $s' = s \oplus e_a$ (addition modulo 2). Only $n$ actions, rather than
#   the $2^n$ "jump anywhere" actions, which would make taking a maximum over actions impossible
#   for large $n$ (the write-up's reason for this choice).
# * **Reward.** A **sparse reward**: $r(s, a, g) = \mathbb{1}[s \oplus e_a = g]$, a one on the
#   step that completes the goal, zero otherwise.
# * **Termination and horizon.** Reaching the goal ends the episode; otherwise it is cut off after
#   $T = n$ steps (enough for an agent that never makes a mistake).
# * **Return and discount.** The agent's aim is a large **return**, the discounted sum of the
#   rewards it collects, $G_0 = r_1 + \gamma r_2 + \gamma^2 r_3 + \dots$ ($r_k$ is the reward of
#   step $k$), with a **discount factor** $\gamma \in (0, 1]$. Here the only reward comes on the
#   step $k$ that reaches the goal, so $G_0 = \gamma^{k-1}$, or $0$ if the goal is never reached:
#   with $\gamma < 1$, finishing sooner is worth more.
#
# Because the goal changes from episode to episode, a policy must take it as an input:
# $\pi(s, g) \in \mathcal{A}_n$; it is **goal-conditioned**. Chapter 2 defines the number that
# all the learning methods of this course estimate, the action value $Q(s, g, a)$: the return to
# expect after flipping bit $a$ in state $s$ while heading for goal $g$.
#
# One quantity controls everything: the **Hamming distance** $d(s, g) = \|s - g\|_1$, the number of
# bits that still differ. The optimal agent flips a differing bit each step and needs exactly
# $d(s, g)$ steps. For two uniform strings $d \sim \mathrm{Binomial}(n, 1/2)$; a start equal to its
# goal is redrawn, so the start distance is that binomial conditioned on $d \ge 1$, with mean
# $\frac{n/2}{1 - 2^{-n}}$: a typical episode starts about $n/2$ flips away from its goal.

# %% [markdown]
# ## 2. The batched environment
#
# `BitFlipEnv` plays many agents at once as rows of one tensor, so the same code uses a GPU when
# there is one (`default_device` picks CUDA if available, else the CPU). States and goals are
# `float32` tensors of shape `[num_agents, n]`, ready to feed to a network.

# %%
device = default_device(announce=True)
print("device:", describe_device(device))

env = BitFlipEnv(n=6, num_agents=4, device=device, seed=0)
state, goal = env.reset()
print("states:\n", state.int().cpu())
print("goals:\n", goal.int().cpu())
print("Hamming distances:", env.distance.tolist())
assert torch.equal(env.distance, hamming_distance(state, goal))
assert bool((env.distance >= 1).all()), "a start equal to its goal is redrawn"
# The start distance is Binomial(n, 1/2) conditioned on d >= 1: its mean is (n / 2) / (1 - 2^-n).
many = BitFlipEnv(n=3, num_agents=2**16, device=device, seed=1)
many.reset()
mean_start = float(many.distance.float().mean())
print(f"n = 3: mean start distance {mean_start:.4f}, (n/2) / (1 - 2^-n) = {1.5 / (1 - 2**-3):.4f}")
assert abs(mean_start - 1.5 / (1 - 2**-3)) < 0.02 and abs(mean_start - 1.5) > 0.15

# %% [markdown]
# Each agent gets one action per step: the index of the bit to flip. A step returns the new
# states, the rewards, which agents are done, and which agents were *active* (their step
# counted). Let us take three random steps.

# %%
gen = torch.Generator(device=device).manual_seed(1)
for t in range(3):
    actions = torch.randint(0, env.n, (env.num_agents,), generator=gen, device=device)
    before = env.distance.clone()
    result = env.step(actions)
    print(f"step {t}: actions {actions.tolist()}, rewards {result.reward.tolist()}, "
          f"distances {env.distance.tolist()}")
    # A flip moves the distance by exactly one, up or down; agents already done do not move.
    assert torch.equal((env.distance - before).abs(), result.active.long())
assert env.t == 3

# %% [markdown]
# **Masking after done.** An agent that reaches its goal stops: later steps do not change its
# state, pay no reward and are not counted. To see it, place agent 0 one flip away from its goal
# and agent 1 two flips away, then flip bit 0 for everyone twice.

# %%
start = torch.zeros(4, 6, device=device)
target = torch.zeros(4, 6, device=device)
target[0, 0] = 1                  # agent 0: only bit 0 differs
target[1, :2] = 1                 # agent 1: bits 0 and 1 differ
target[2:, 3] = 1                 # agents 2, 3: only bit 3 differs
env.reset(state=start, goal=target)
flip_bit_0 = torch.zeros(4, dtype=torch.long, device=device)

first = env.step(flip_bit_0)
second = env.step(flip_bit_0)
for name, result in (("step 1", first), ("step 2", second)):
    print(f"{name}: reward {result.reward.tolist()}, done {result.done.tolist()}, "
          f"active {result.active.tolist()}")
print("steps counted per agent:", env.steps.tolist())

assert first.reward.tolist() == [1.0, 0.0, 0.0, 0.0]          # agent 0 completed its goal
assert second.active.tolist() == [False, True, True, True]    # ...and sat out the next step
assert second.reward[0] == 0.0 and torch.equal(second.state[0], target[0])
assert env.steps.tolist() == [1, 2, 2, 2]

# %% [markdown]
# Agent 0 earned its reward on the first step and then froze; the others flipped bit 0 back and
# forth. Rewards, done flags and the `active` mask come out of `step` for the whole batch at once.
#
# ## 3. Why random exploration almost never sees a reward
#
# A learning agent starts out knowing nothing, so it flips bits to find out what they do:
# **exploration**, as opposed to *exploitation*, acting on what it already knows. At first it
# flips at random (later chapters call this exploration rate $\varepsilon = 1$). How often does
# a purely random agent reach its goal within an episode? With a sparse reward this is *all the
# learning signal it gets*.
#
# ### A random walk on the distance
#
# A random flip picks one of the $d$ differing bits with probability $d/n$ (the distance drops by
# one) and one of the $n - d$ matching bits otherwise (the distance grows by one):
#
# $$P(d \to d - 1) = \frac{d}{n}, \qquad P(d \to d + 1) = \frac{n - d}{n}.$$
#
# So the distance performs a birth-death random walk on $\{0, \dots, n\}$, pushed back towards
# $n/2$ from either side, and absorbed at $0$. The picture: on the left the $2^4$ strings of 4
# bits, one column per distance to the goal, linked when one flip apart, with one random episode
# in red; on the right the chain that the distance follows.

# %%
diagrams.hypercube_walk(n=4, seed=2)

# %% [markdown]
# Let $h_t(d)$ be the probability of hitting $0$ within $t$ steps from distance $d$. Conditioning
# on the first flip gives the recursion
#
# $$h_0(d) = \mathbb{1}[d = 0], \qquad h_t(0) = 1,$$
# $$h_t(d) = \frac{d}{n}\, h_{t-1}(d - 1) + \frac{n - d}{n}\, h_{t-1}(d + 1) \quad (d \ge 1),$$
#
# and averaging over the start distance gives the success probability of a random episode:
#
# $$p(n) = \sum_{d=1}^{n} \frac{\binom{n}{d}}{2^n - 1}\, h_n(d).$$
#
# The $2^n - 1$ is there because a start equal to its goal is redrawn. `bitflip_lib.theory`
# computes this exactly, in log space, so that it keeps working from about $n = 1090$ on, where
# $p(n)$ is below the smallest positive double ($2^{-1074}$) and a plain float reads 0.
#
# **Check your understanding 1 (predict before you run).** At $n = 2$ an episode has at most two
# random flips. What fraction of random episodes reach their goal?
# (a) $1/4$, (b) $3/8$, (c) $1/2$, (d) $3/4$.
#
# <details><summary>Answer</summary>
#
# (c) $1/2$: the next cell prints $p(2) = 0.5$ and asserts it. A start equal to its goal is
# redrawn, so 2 of the 3 possible starts are at distance 1 and 1 at distance 2. From distance 1
# the first flip is right with probability $1/2$; a wrong one leaves distance 2 with one flip to
# go, too far. From distance 2 the first flip surely helps and the second is right with
# probability $1/2$. In total $\frac23 \cdot \frac12 + \frac13 \cdot \frac12 = \frac12$.
# (a) is the chance that a random string *is* the goal; the walk gets two tries, and they are
# not independent draws. (b) is what you get by counting a start equal to its goal as a failed
# episode instead of redrawing it (the simulation below tells the two apart). (d) would treat two
# flips as two independent chances of $1/2$ each, but a wrong first flip moves away from the goal.
# </details>

# %%
for n in (1, 2, 3, 5, 10, 20, 50):
    p = theory.random_success_probability(n)
    print(f"n = {n:3d}: P(random episode reaches its goal) = {p:.3e}")
print(f"n = 1024: log2 p = {theory.log_random_success_probability(1024) / math.log(2):.1f}")
# A plain float underflows to 0 between n = 1080 and 1090; the logarithm does not.
assert theory.random_success_probability(1090) == 0.0 < theory.random_success_probability(1080)
assert math.isfinite(theory.log_random_success_probability(1090))

# Small cases we can check by hand.
assert theory.random_success_probability(1) == 1.0            # the only flip is the right one
# d = 1 (2 of 3 starts): right flip 1/2; d = 2: the second flip is right with probability 1/2.
assert math.isclose(theory.random_success_probability(2), 0.5)  # question 1
assert math.isclose(theory.success_probability_from_distance(10, 3, 3), 3 / 10 * 2 / 10 * 1 / 10)

# %% [markdown]
# ### Checking the formula against simulation
#
# Theory is only as good as its assumptions, so let random agents loose in the real environment
# and count how many reach their goal. With $N$ agents the observed fraction $\hat p$ has standard
# error $\sqrt{p(1-p)/N}$. We ask every estimate to lie within *4 standard errors* of the exact
# value: if the formula is right, one such deviation has probability about $6 \cdot 10^{-5}$, so
# across a dozen values of $n$ a false alarm is rarer than 1 in 1000. A plausible mistake in the
# formula is caught: forget that a start equal to its goal is redrawn, divide by $2^n$ instead of
# $2^n - 1$ (as if a start on its goal were a failed episode), and the formula gives
# $p(2) = 0.375$; the environment redraws, so the simulation still gives $0.5$, dozens of standard
# errors away (the cell after the simulation checks this).

# %%
SIM_AGENTS = 2**15 if QUICK else 2**18
SIM_NS = list(range(1, 13))


def simulate_random_agents(n: int, num_agents: int, seed: int) -> float:
    """Fraction of purely random agents that reach their goal within n flips."""
    env = BitFlipEnv(n, num_agents, device=device, seed=seed)
    env.reset()
    rng = torch.Generator(device=device).manual_seed(seed + 1)
    while not env.episode_over:
        env.step(torch.randint(0, n, (num_agents,), generator=rng, device=device))
    return float(env.done.float().mean())


sim = {}
for n in SIM_NS:
    p = theory.random_success_probability(n)
    estimate = simulate_random_agents(n, SIM_AGENTS, seed=100 + n)
    se = math.sqrt(p * (1 - p) / SIM_AGENTS)
    sim[n] = (estimate, se)
    z = (estimate - p) / se if se > 0 else 0.0
    print(f"n = {n:2d}: exact {p:.5f}, simulated {estimate:.5f} ({SIM_AGENTS} agents), "
          f"z = {z:+.2f}")
    assert abs(estimate - p) <= 4 * se + 1e-12, f"n = {n}: simulation and exact p disagree"

# The formula without the redraw (weights C(n, d) / 2^n): p(2) = 3/8, far from the environment's.
no_redraw = sum(math.comb(2, d) / 2**2 * theory.success_probability_from_distance(2, d)
                for d in (1, 2))
z_no_redraw = (sim[2][0] - no_redraw) / sim[2][1]
print(f"p(2) without the redraw: {no_redraw}; the simulation is {z_no_redraw:.0f} SE away")
assert math.isclose(no_redraw, 0.375) and z_no_redraw > 20

# %% [markdown]
# The simulation agrees with the exact formula at every $n$ we tried.
#
# ### How fast does it collapse?
#
# **Check your understanding 2 (predict).** Before reading on: around $n = 30$, adding one more
# bit (and so one more step per episode) multiplies $p(n)$ by about
# (a) 1, (b) $1/2$, (c) $1/n$, (d) $2^{-n}$.
#
# <details><summary>Answer</summary>
#
# (b): the bound below gives $p(n) \approx n\,2^{-n}$, so $p(n+1)/p(n) \approx (n+1)/(2n)
# \approx 1/2$; the cell after it prints the ratio for every $n$ from 20 to 100 (between 0.50
# and 0.53) and asserts that it stays below 0.55. (a) expects the extra step to make up for the
# extra bit: it adds one more chance, while the number of strings doubles. (c) and (d) confuse
# $p(n)$ with the chance of one particular string among many.
# </details>
#
# A neat bound explains the numbers. Let the walk keep going after it hits $0$. Starting from two
# *uniform* strings, the difference $s \oplus g$ is a uniform string, and a uniformly random flip
# keeps it uniform. So at every step the chance of sitting exactly on the goal is $2^{-n}$ (at
# most $\frac{1}{2^n-1}$ once we condition on not starting there). The chance of hitting the goal
# at least once is at most the expected number of visits, so $p(n) \le \frac{n}{2^n - 1}$.
# For large $n$ the bound is tight: after a visit the walk is pushed away and rarely returns
# within $n$ steps. In short, **$p(n) \approx n \cdot 2^{-n}$: every extra bit roughly halves the
# chance of ever seeing a reward.**

# %%
NS = np.arange(1, 1025)
log2_p = np.array([theory.log_random_success_probability(int(n)) for n in NS]) / math.log(2)
log2_bound = np.log2(NS) - (NS + np.log2(-np.expm1(-NS * math.log(2))))  # log2(n / (2^n - 1))

# The union bound holds at every n (up to rounding) ...
assert np.all(log2_p <= log2_bound + 1e-9)
# ... and is tight for large n: p(n) * (2^n - 1) / n is within 1% of 1 at n = 1024.
gap_1024 = 2 ** (log2_p[-1] - log2_bound[-1])
print(f"p(1024) / bound = {gap_1024:.4f}")
assert 0.99 < gap_1024 <= 1.0 + 1e-9
# Exponential collapse: from n = 20 on, one more bit multiplies p by less than 0.55,
# and the slope of log2 p(n) against n between n = 100 and n = 1024 is -1 within 1%.
ratios = 2 ** np.diff(log2_p[19:100])
print(f"p(n+1)/p(n) for n = 20..100 lies in [{ratios.min():.3f}, {ratios.max():.3f}]")
assert ratios.max() < 0.55
slope = np.polyfit(NS[99:], log2_p[99:], 1)[0]
print(f"fitted slope of log2 p(n) for n = 100..1024: {slope:.4f}")
assert abs(slope + 1) < 0.01

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.0, 4.2))
small = NS <= 60
ax1.semilogy(NS[small], 2.0 ** log2_p[small], lw=2, label="exact $p(n)$ (random walk)")
ax1.semilogy(NS[small], 2.0 ** log2_bound[small], "--", label="bound $n / (2^n - 1)$")
ax1.semilogy(NS[small], 2.0 ** -NS[small].astype(float), ":", color="grey", label="$2^{-n}$")
est = np.array([sim[n][0] for n in SIM_NS])
err = np.array([4 * sim[n][1] for n in SIM_NS])
ax1.errorbar(SIM_NS, est, yerr=err, fmt="o", ms=4, color="k",
             label=f"simulated ({SIM_AGENTS} agents, ±4 SE)")
ax1.set(xlabel="number of bits $n$", ylabel="P(random episode reaches its goal)",
        title="Random exploration finds the goal with probability ~ $n\\,2^{-n}$")
ax1.legend()
ax1.grid(True, which="major", alpha=0.3)

ax2.plot(NS, log2_p + NS, lw=2, label="$\\log_2 p(n) + n$")
ax2.plot(NS, log2_bound + NS, "--", label="bound: $\\log_2 \\frac{n}{2^n - 1} + n$")
ax2.set(xscale="log", xlabel="number of bits $n$", ylabel="bits",
        title="What is left after removing $2^{-n}$: about $\\log_2 n$")
ax2.legend()
ax2.grid(True, alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Check your understanding 3 (predict).** Give every episode at $n = 20$ twice as many flips,
# 40 instead of 20. The chance that a random episode reaches its goal becomes
# (a) about the same, (b) about twice as large, (c) about its square root, (d) close to 1.
#
# <details><summary>Answer</summary>
#
# (b): the next cell computes the ratio exactly, 2.00 (asserted between 1.9 and 2.1). The bound
# above counts expected visits to the goal, and each step of a walk that has forgotten its start
# adds about $2^{-n}$, so $T$ steps give about $T\,2^{-n}$ while that is small. Time helps only
# linearly against an exponential wall: a reward becomes likely only after about $2^{20}$, a
# million, flips (61% then, also computed below). (a) would hold if the walk were stuck near
# $n/2$ for good; it keeps moving, but the goal is one string among a million. (c) and (d) need
# far longer episodes.
# </details>

# %%
p20 = theory.random_success_probability(20)
longer = theory.random_success_probability(20, steps=40) / p20
million = theory.random_success_probability(20, steps=2**20)
print(f"n = 20: p = {p20:.3g} with 20 flips; 40 flips multiply it by {longer:.2f}; "
      f"2^20 flips give {million:.2f}")
assert 1.9 < longer < 2.1 and 0.6 < million < 0.62

# %% [markdown]
# **Try it.** Move the sliders to change $n$ and the episode length: the curves are the exact
# probability, the black dot is a fresh simulation of 4096 random agents (with a bar of two
# standard errors). How many flips would it take at $n = 20$ to make a reward likely?

# %%
from bitflip_lib.ui.explorers import RandomReachExplorer

reach = RandomReachExplorer(n=10)
assert f"exact <b>{theory.random_success_probability(10):.3g}</b>" in reach.text.value
reach

# %% [markdown]
# ### What that means for a learner
#
# The write-up trains for at most 3000 iterations of 16 parallel episodes: 48,000 episodes.
#
# **Check your understanding 4 (predict).** With the table of $p(n)$ above in mind: how many of
# those 48,000 episodes does a random explorer expect to end on its goal at $n = 20$?
# (a) thousands, (b) about 50, (c) about one, (d) certainly none.
#
# <details><summary>Answer</summary>
#
# (c): $48000 \cdot p(20) \approx 48000 \cdot 1.8 \cdot 10^{-5} \approx 0.87$, printed by the next
# cell: less than one reward in the whole budget, on average. (a) and (b) forget how small
# $p(20)$ is. (d) is too strong: the chance of at least one reward is about
# $1 - e^{-0.87} \approx 58\%$, but one reward for $2^{20}$ possible goals teaches nothing.
# </details>
#
# While it explores at random, the write-up's learner expects $3000 \cdot 16 \cdot p(n)$
# rewarded transitions (an episode ends at its first reward). Its own estimate,
# $16 \cdot n \cdot 3000 = 48000\,n$ states visited against $|\mathcal{S}_n| = 2^n$, is exactly
# our bound. Chapter 3 returns to this table.

# %%
print(f"{'n':>4} {'p(n)':>11} {'expected rewards in 3000 x 16 episodes':>40} {'48000 n / 2^n':>15}")
expected = {}
for n in (5, 10, 15, 20, 30, 40, 50):
    expected[n] = theory.expected_rewarded_transitions(n, iterations=3000, agents=16)
    p = theory.random_success_probability(n)
    print(f"{n:4d} {p:11.3e} {expected[n]:40.3g} {48000 * n / 2**n:15.3g}")
    assert expected[n] <= 48000 * n / (2**n - 1) + 1e-12

# About 419 rewards at n = 10, about twenty at n = 15, fewer than one from n = 20 on.
assert 418 < expected[10] < 419 and 20 < expected[15] < 21 and 2e-9 < expected[50] < 3e-9
assert round(expected[20], 2) == 0.87  # question 4
assert round(1 - math.exp(-expected[20]), 2) == 0.58
assert 1 < theory.expected_rewarded_transitions(15, iterations=200) < 2  # question 5 below

# %% [markdown]
# At $n = 10$ a random explorer collects about 419 rewards; at $n = 15$ about twenty; from
# $n = 20$ on, on average less than one in the whole budget, and at $n = 50$ about $2 \cdot
# 10^{-9}$. No amount of clever function fitting helps when the data contain no reward at all.
# Two remedies come later: manufacture rewards from the failures (Hindsight Experience Replay,
# chapter 4) and build in the structure of the problem (chapter 6).
#
# ## 4. From bits to text
#
# Why care about bit strings? The write-up's motivation is language models. **GFlowNets** (Bengio
# et al. 2021) learn a policy that builds an object step by step so that finished objects are
# sampled in proportion to a reward; Hu et al. (2024) used them to fine-tune language models, on
# short sequences. A text of $L$ tokens from a vocabulary of $V$ is one of $V^L$ strings; when
# only finished text is scored and good texts are rare, a generator that explores at random
# almost never sees a high reward, exactly as here. An earlier draft of the write-up states the
# toy version directly: generate one pre-chosen bit string, rewarded only when exact. Bit flipping
# is that problem with $V = 2$, edits instead of left-to-right writing, and the target given as
# an input so that one policy serves every goal. The numbers are merciless: $L$ random bits
# written left to right hit a target with probability $2^{-L}$, $n$ random edits about $n\,2^{-n}$.

# %%
for L in (10, 50, 100):
    print(f"{L:4d} bits: random left-to-right 2^-L = {2.0**-L:.2e}, random editing p(L) = "
          f"2^{theory.log_random_success_probability(L) / math.log(2):.1f}")

# %% [markdown]
# ## 5. Try it: vanilla DQN on a few bits
#
# A preview of what is coming: a live dashboard that trains plain ("vanilla") deep Q-learning on
# 5 bits and plots the success rate on 1024 test agents, the distance to the goal and the loss.
# Chapters 3 to 6 explain every knob, so for now change only $n$ and the budget and press
# *Train*: try $n = 5$, then $n = 15$, and compare with the table of expected rewards.

# %%
from bitflip_lib.ui.dashboards import TrainingDashboard, summary_text

DASH_BUDGET = 3 if QUICK else 200
dash = TrainingDashboard(n=5, arch="uvfa", her="none", max_iterations=DASH_BUDGET, seed=0)
dash

# %% [markdown]
# The next cell does what pressing *Train* does, so that the notebook also runs unattended (in
# quick mode with only a few iterations: too few to learn), and counts the rewarded transitions
# played. With the full budget of 200 iterations, plain DQN solves 5 bits: tested without any
# random flips, always taking the flip its network rates best (chapter 2 calls this the *greedy*
# policy), it reaches the goal from at least 0.99 of 1024 test starts, five evaluations in a row.
# The write-up's run trained 210 iterations, but under a stricter rule (100 evaluations in a row
# at exactly 1.00), so the two counts are not the same quantity; chapter 7 compares like with
# like.

# %%
run = dash.run()
last = run.history[-1]
print(summary_text(run))
print(f"rewarded transitions played in {run.iterations} iterations: {last['rewards_seen']}")
assert run.iterations == len(run.history) and 1 <= run.iterations <= DASH_BUDGET
assert 0.0 <= last["success_rate"] <= 1.0
# At n = 5 rewards are not rare: some of the agents' own episodes already reached their goal.
assert last["rewards_seen"] > 0
if not QUICK:
    run.assert_solved(within=DASH_BUDGET)
    print(f"solved: success held from iteration {run.solved_at} on")

# %% [markdown]
# ## Check your understanding
#
# Questions 1 to 4 are above, each before the cell that answers it. One more, to try on the
# dashboard:
#
# **5. Predict before you run.** Train the dashboard at $n = 15$ for 200 iterations. What greedy
# success rate do you expect at the end: (a) about 1, as at $n = 5$; (b) about 0.5; (c) about 0?
# <details><summary>Answer</summary>(c), about zero: 200 iterations of 16 random episodes expect
# between 1 and 2 rewarded transitions (asserted in section 3), for $2^{15}$ goals. The network
# has nothing to learn from; chapter 3 shows it.</details>
#
# > **Common pitfalls.** (1) Letting finished agents keep stepping: without the `active` mask
# > they wander off their goal, collect a second reward and count extra steps. (2) Forgetting in
# > the formula that a start equal to its goal is redrawn: it then gives $p(2) = 0.375$, while the
# > environment still gives 0.5. (3) Tiny probabilities as plain floats read 0 from
# > $n \approx 1090$: work with logarithms.
#
# ## Summary
#
# * Bit flipping is a goal-conditioned MDP: states and goals in $\{0,1\}^n$, $n$ flip actions,
#   reward 1 only on completing the goal, episodes of $n$ steps, return $\gamma^{k-1}$ for a goal
#   reached on step $k$. What matters is the Hamming distance $d(s, g)$.
# * `BitFlipEnv` runs thousands of agents as one tensor on CPU or GPU; finished agents are masked.
# * Under random flips the distance is a birth-death random walk, whose recursion gives the exact
#   chance $p(n)$ that an episode is rewarded; simulation agrees, and $p(n) \le n/(2^n - 1)$,
#   tight for large $n$: the signal halves with every extra bit.
# * In the write-up's budget of 3000 x 16 episodes, random exploration expects about 419 rewards
#   at $n = 10$ and less than one from $n = 20$ on: a wall for any long sequence scored at the end.
#
# **Exercise.** `exercises/ex01_env_step`: write the reward rule and the masked, batched
# environment step yourself (grade it with `bitflip grade ex01`). **Next:** chapter 2 defines
# values and solves tiny instances exactly with a table of Q-values.
#
# ## References
#
# * Chau Yu Hei (HKUST). *Documentation of Bit Sequence mini RL project*: the write-up this course
#   follows. Code and notebooks: https://github.com/louis845/BitSeqRLToyProblem
# * M. Andrychowicz, F. Wolski, A. Ray, J. Schneider, R. Fong, P. Welinder, B. McGrew, J. Tobin,
#   P. Abbeel, W. Zaremba. Hindsight Experience Replay. *NeurIPS* 30, 2017.
# * E. Bengio, M. Jain, M. Korablyov, D. Precup, Y. Bengio. Flow Network based Generative Models
#   for Non-Iterative Diverse Candidate Generation. *NeurIPS* 34, 2021.
# * E. J. Hu, M. Jain, E. Elmoznino, Y. Kaddar, G. Lajoie, Y. Bengio, N. Malkin. Amortizing
#   Intractable Inference in Large Language Models. *ICLR*, 2024.
# * R. S. Sutton, A. G. Barto. *Reinforcement Learning: An Introduction*, 2nd ed. MIT Press, 2018
#   (chapter 3: MDPs, returns, discounting).

# %%
print(f"Chapter 1 ran in {time.time() - CHAPTER_START:.1f} s ({'quick' if QUICK else 'full'} mode)")
