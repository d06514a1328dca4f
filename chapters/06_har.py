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
# # Chapter 6. Inductive bias: the handcrafted architecture
#
# A generic network (the MLP of the HER paper, the write-up's UVFA) has to *discover* that bit
# 17 is no different from bit 3. The write-up (Chau, seeds/000, appendix 4.2) instead builds
# that knowledge in: its handcrafted architecture (HAR) computes
#
# $$ Q(s, g, a) = \phi\big(\lVert s - g \rVert_1,\ |s_a - g_a|\big), $$
#
# one tiny network $\phi: \mathbb{R}^2 \to \mathbb{R}$ shared by every bit. This chapter asks
# what that buys and what it costs.
#
# **Learning goals.** After this chapter you can
# 1. state the symmetry of bit flipping, count the quotient space it leaves (about 2n values
#    instead of $n \cdot 4^n$), and check that HAR respects the symmetry while an MLP does not;
# 2. train HER-HAR far beyond the write-up's n = 50, and use a HAR trained at small n
#    unchanged at n = 1024;
# 3. explain, with the gap between the optimal values of a good and a bad flip, why the
#    discount must approach 1 as n grows;
# 4. explain why a freshly initialised HAR is often already optimal, and why vanilla HAR can
#    even "solve" the task without seeing a single reward: what a strong inductive bias does.
#
# **Run time.** Quick mode (CI): about 1 minute on a 2-core CPU. Full mode: about 7 minutes
# (HER-HAR up to n = 500, a discount experiment at n = 500, three seeds of the full
# vanilla-HAR experiment); longer when other jobs share the CPU.

# %%
import math
from collections import defaultdict

import matplotlib.pyplot as plt
import torch

from bitflip_lib import default_device, quick_mode
from bitflip_lib.analysis import (har_greedy_is_optimal, har_greedy_margin, har_phi, optimal_q_gap, quotient_size,
                                  run_ablation, transfer_success)
from bitflip_lib.config import make_config
from bitflip_lib.networks import HAR, MLP, UVFA
from bitflip_lib.tabular import value_iteration
from bitflip_lib.trainer import build_network, evaluate, train

QUICK = quick_mode()
print("QUICK mode (CI budgets)" if QUICK else "FULL mode")
DEVICE = default_device(announce=True)
if DEVICE.type == "cpu":
    torch.set_num_threads(1)  # small networks: one thread is as fast, and steadier on a busy machine
torch.manual_seed(0);

# %% [markdown]
# ## 1. The symmetry, and the quotient space it leaves
#
# Two kinds of relabelling leave the bit-flipping task unchanged:
#
# * **permuting the bit positions** with a permutation $\sigma$ (apply it to state, goal and
#   action alike): flipping bit $a$ and then permuting is the same as permuting and then
#   flipping bit $\sigma(a)$, and two strings are equal exactly when their permuted versions are;
# * **XOR-ing state and goal with the same mask** $m$: which bits differ from the goal does
#   not change, $s \oplus m$ and $g \oplus m$ differ exactly where $s$ and $g$ do.
#
# Transitions and rewards commute with both, so the optimal values do too:
# $Q^*(s, g, a) = Q^*(\sigma(s \oplus m), \sigma(g \oplus m), \sigma(a))$. Every triple can be
# moved to a canonical one: XOR with $m = g$ sends the goal to all zeros, then a permutation
# moves the $d = \lVert s - g \rVert_1$ differing bits to the front. What is left is
# $d$ and whether bit $a$ is one of the differing bits. So $Q^*$ factors through the **quotient
# space** of pairs (distance, bit differs), and HAR's $\phi$ is a function on exactly that
# space. With the goal not yet reached, a differing bit needs $1 \le d \le n$ and a matching
# one $1 \le d \le n - 1$: $2n - 1$ pairs, against $2^n \cdot 2^n \cdot n$ table entries.

# %%
for n in (4, 10, 20, 50, 1024):
    sizes = quotient_size(n)
    print(f"n = {n:5d}: Q table 10^{math.log10(sizes['table']):7.1f} entries, quotient space {sizes['quotient']:5d} pairs")

# Check on the exact Q* of n = 4 (value iteration, chapter 2): it takes one value per (distance, differs) pair.
n, gamma = 4, 0.9
q_star, _ = value_iteration(n, gamma)
codes = torch.arange(2**n)
bits = (codes[:, None] >> torch.arange(n)) & 1
values_by_pair = defaultdict(set)
for s in range(2**n):
    for g in range(2**n):
        if s == g:
            continue
        d = int((bits[s] != bits[g]).sum())
        for a in range(n):
            values_by_pair[(d, bool(bits[s, a] != bits[g, a]))].add(round(float(q_star[s, g, a]), 12))
assert len(values_by_pair) == quotient_size(n)["quotient"] == 2 * n - 1
assert all(len(v) == 1 for v in values_by_pair.values())
print(f"n = {n}: {2**n * (2**n - 1) * n} (s, g, a) triples with s != g, {len(values_by_pair)} distinct optimal values")

# %% [markdown]
# A network *respects* the symmetry when permuting the input bits permutes its n outputs the
# same way (equivariance) and XOR-ing state and goal with one mask changes nothing. HAR does
# by construction, whatever its weights. A generic MLP does not; it would have to learn it from
# data, separately for each of the $n!\,2^n$ relabellings.

# %%
def symmetry_errors(network: torch.nn.Module, n: int, batch: int = 64) -> tuple[float, float]:
    """Largest change of Q under a random permutation of the bits, and under a random XOR mask."""
    state, goal = torch.randint(0, 2, (2, batch, n)).float()
    perm, mask = torch.randperm(n), torch.randint(0, 2, (1, n)).float()
    with torch.no_grad():
        q = network(state, goal)
        permuted = network(state[:, perm], goal[:, perm])
        masked = network((state + mask) % 2, (goal + mask) % 2)
    return float((permuted - q[:, perm]).abs().max()), float((masked - q).abs().max())


n = 20
har_errors = symmetry_errors(HAR(n), n)
mlp_errors = symmetry_errors(MLP(n), n)
print(f"HAR: permutation error {har_errors[0]:.2g}, mask error {har_errors[1]:.2g}")
print(f"MLP: permutation error {mlp_errors[0]:.2g}, mask error {mlp_errors[1]:.2g}")
assert max(har_errors) < 1e-5 < min(mlp_errors)

# %% [markdown]
# The symmetry also makes HAR tiny and independent of n: its parameters are those of $\phi$
# (two inputs, two hidden layers of 64, one output). Library detail: within one (state, goal)
# row only two inputs to $\phi$ occur, so `HAR` evaluates $\phi$ twice per row and spreads the
# two values over the bits. It feeds $\phi$ the *normalised* distance $d / n$ by default; the
# write-up fed the raw count $d$ (`har_normalize_distance=False`), a difference that matters
# in section 5.

# %%
def parameter_count(network: torch.nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


for n in (10, 50, 1024):
    counts = {"UVFA": parameter_count(UVFA(n)), "MLP": parameter_count(MLP(n)), "HAR": parameter_count(HAR(n))}
    print(f"n = {n:5d}: " + ", ".join(f"{name} {count:,} parameters" for name, count in counts.items()))
assert parameter_count(HAR(10)) == parameter_count(HAR(1024))

# %% [markdown]
# ## 2. HER-HAR scales far beyond n = 50
#
# The write-up's Table 1 stops at n = 50, where HER-HAR needed 658 iterations. With this
# course's defaults (HER `future` with k = 4, 32 gradient steps per iteration, Polyak 0.05, the
# normalised distance and $\gamma = \max(0.98, 1 - 1/n)$), let us go further. We also check
# whether the network was *already* optimal before training (section 4 explains why that can
# happen), so that a fast result is not mistaken for learning.

# %%
SIZES = [50, 200] if QUICK else [50, 100, 200, 500]
scaling = {}
for n in SIZES:
    config = make_config(n=n, arch="har", her="future", seed=0, max_iterations=60 if QUICK else 100,
                         num_eval_agents=256)
    initially_optimal = har_greedy_is_optimal(build_network(config, DEVICE), n)
    result = train(config, progress=False)
    scaling[n] = result
    print(f"n = {n:5d} (gamma {config.effective_gamma:.4f}): solved at iteration {result.solved_at}, "
          f"{result.wall_seconds:.1f} s; optimal before training: {initially_optimal}")
    assert not initially_optimal, "pick a seed whose untrained network is not optimal"
    result.assert_solved()

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for n, result in scaling.items():
    for ax, metric in zip(axes, ("success_rate", "mean_distance")):
        ax.plot(*result.curve(metric), marker=".", label=f"n = {n}")
axes[0].set(ylabel="greedy success rate", title="HER-HAR: success")
axes[1].set(ylabel="mean final distance to goal", yscale="symlog", title="HER-HAR: distance left")
for ax in axes:
    ax.set_xlabel("iteration (16 training episodes each)")
    ax.grid(alpha=0.3)
    ax.legend()
plt.show()

# %% [markdown]
# ## 3. Trained small, used large
#
# Because $\phi$ only sees (distance / n, bit differs), nothing in a HAR depends on n. Train one
# at n = 20, then evaluate it, unchanged, on 1024-bit strings: the evaluation below also checks
# that the agents walk straight to the goal (steps taken = starting distance).

# %%
small = train(make_config(n=20, arch="har", her="future", seed=0, max_iterations=60), progress=False)
small.assert_solved()
print(f"trained at n = 20: solved at iteration {small.solved_at} ({small.wall_seconds:.1f} s)")
TRANSFER_SIZES = [20, 200, 1024] if QUICK else [20, 100, 500, 1024]
transfer = transfer_success(small.network, TRANSFER_SIZES, num_agents=256 if QUICK else 1024)
for n, stats in transfer.items():
    print(f"  evaluated at n = {n:5d}: success {stats['success_rate']:.3f}, mean steps {stats['mean_steps']:.1f} "
          f"(mean starting distance {stats['mean_start_distance']:.1f})")
    assert stats["success_rate"] == 1.0
    assert math.isclose(stats["mean_steps"], stats["mean_start_distance"])

# %% [markdown]
# The greedy policy only needs $\phi(1, x) > \phi(0, x)$ (a differing bit beats a matching
# one) for every distance feature $x$ it meets, and with the normalised feature $x = d / n$ the
# features at n = 1024 lie in the same interval (0, 1] as those seen in training. A generic
# network cannot even be *asked* this question: its input size is fixed to n.
#
# ## 4. Why gamma must approach 1 as n grows
#
# With reward 1 at the goal, the optimal values are $\gamma^{d-1}$ for flipping a differing bit
# at distance $d$ and $\gamma^{d+1}$ for flipping a matching one (chapter 2). The greedy policy
# is right as long as the network ranks these two correctly, and the margin it has to resolve
# is
#
# $$ \Delta(d) = \gamma^{d-1} - \gamma^{d+1} = \gamma^{d-1}\,(1 - \gamma^2). $$
#
# For a fixed $\gamma$ this vanishes exponentially in $d$. At $\gamma = 0.98$ and $d = 500$ it
# is about $10^{-6}$: far below the noise of a network trained by stochastic gradients. With
# $\gamma = 1 - 1/n$, the library's default for large n, $\gamma^{d} \ge \gamma^n \approx 1/e$,
# so the gap at the largest distance only shrinks like $2/(e\,n)$. (Near the goal a smaller
# $\gamma$ gives the larger gap, $1 - \gamma^2$; what matters is the far end.)

# %%
distances = torch.arange(1, 1025)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for g in (0.9, 0.98, 0.999):
    axes[0].plot(distances, optimal_q_gap(distances, g), label=f"gamma = {g}")
axes[0].set(yscale="log", ylim=(1e-12, 1), xlabel="distance to goal d", ylabel="Q*(good flip) - Q*(bad flip)",
            title="The gap vanishes like gamma^d")
ns = torch.arange(2, 2049)
auto_gap = torch.tensor([float(optimal_q_gap(int(n), max(0.98, 1 - 1 / int(n)))) for n in ns])
fixed_gap = optimal_q_gap(ns, 0.98)
axes[1].plot(ns, fixed_gap, label="gamma = 0.98")
axes[1].plot(ns, auto_gap, label="gamma = max(0.98, 1 - 1/n)")
axes[1].plot(ns, 2 / (math.e * ns), "k:", label="2 / (e n)")
axes[1].set(xscale="log", yscale="log", ylim=(1e-12, 1), xlabel="number of bits n", ylabel="gap at d = n",
            title="Gap at the largest distance")
for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend()
plt.show()
assert float(optimal_q_gap(500, 0.98)) < 2e-6 < 1e-3 < float(optimal_q_gap(500, 0.999))

# %% [markdown]
# Now the experiment. Quick mode compares the write-up's $\gamma = 0.9$ with the automatic
# $\gamma = 0.99$ at n = 100 (gap at $d = 100$: about $6 \cdot 10^{-6}$ against $7 \cdot
# 10^{-3}$); full mode adds n = 500 with $\gamma = 0.98$ against the automatic $0.998$. Same
# seed, same budget.

# %%
GAMMA_RUNS = [(100, 0.9), (100, None)] if QUICK else [(100, 0.9), (100, None), (500, 0.98), (500, None)]
GAMMA_BUDGET = 40
gamma_results = {}
for n, g in GAMMA_RUNS:
    config = make_config(n=n, arch="har", her="future", gamma=g, seed=0, max_iterations=GAMMA_BUDGET,
                         num_eval_agents=256)
    result = train(config, progress=False)
    gamma_results[(n, g)] = result
    best = max(result.curve("success_rate")[1])
    print(f"n = {n}, gamma = {config.effective_gamma:.4f}: solved at {result.solved_at}, best success {best:.3f}, "
          f"{result.wall_seconds:.1f} s")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for (n, g), result in gamma_results.items():
    ax.plot(*result.curve("success_rate"), label=f"n = {n}, gamma = {result.config.effective_gamma:.3f}")
ax.set(xlabel="iteration (16 training episodes each)", ylabel="greedy success rate", ylim=(-0.03, 1.03),
       title="HER-HAR with a fixed versus an n-dependent discount")
ax.grid(alpha=0.3)
ax.legend()
plt.show()
for n, g in GAMMA_RUNS:
    if g is None:
        gamma_results[(n, g)].assert_solved()
    else:
        gamma_results[(n, g)].assert_not_solved()

# %% [markdown]
# ## 5. Why a freshly initialised HAR is often already optimal
#
# Within one (state, goal) pair every differing bit gets the value $\phi(1, d)$ and every
# matching bit $\phi(0, d)$. So the greedy policy of a HAR can only do one of two things at
# each distance: flip *some* differing bit (optimal) or *some* matching bit. The whole policy
# is a sign pattern over $d = 1, \dots, n-1$, and it is optimal exactly when the margin
# $\phi(1, d) - \phi(0, d)$ is positive at every $d$. A randomly initialised $\phi$ is a smooth
# function of its inputs, so its margin often has one sign everywhere: a coin flip, tilted by
# how the ReLUs happen to cut the input space.

# %%
INIT_SEEDS = range(20 if QUICK else 100)
n = 50
survey = []
for seed in INIT_SEEDS:
    network = build_network(make_config(n=n, arch="har", seed=seed), DEVICE)
    optimal = har_greedy_is_optimal(network, n)
    stats = evaluate(network, n, num_agents=256, device=DEVICE)
    survey.append((seed, optimal, stats["success_rate"]))
    if optimal:  # predicted from phi alone, confirmed by playing the greedy policy
        assert stats["success_rate"] == 1.0 and stats["mean_steps"] == stats["mean_start_distance"]
count = sum(optimal for _, optimal, _ in survey)
perfect = sum(success == 1.0 for _, _, success in survey)
print(f"{count} of {len(survey)} untrained HARs at n = {n} have a positive margin at every distance (optimal);")
print(f"{perfect} of {len(survey)} reach every goal of 256 random starts")
assert 0.15 <= count / len(survey) <= 0.5  # "about a third"

generic = {arch: max(evaluate(build_network(make_config(n=n, arch=arch, seed=s), DEVICE), n, 256)["success_rate"]
                     for s in range(3)) for arch in ("mlp", "uvfa")}
print("best success of 3 untrained generic networks:", generic)
assert max(generic.values()) < 0.05

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for seed, optimal, _ in survey[:8]:
    margin = har_greedy_margin(build_network(make_config(n=n, arch="har", seed=seed), DEVICE), n)
    ax.plot(range(1, n), margin, color="tab:green" if optimal else "tab:red", alpha=0.8,
            label=("optimal" if optimal else "not optimal") + f" (seed {seed})")
ax.axhline(0, color="k", lw=0.8)
ax.set(xlabel="distance to goal d", ylabel="phi(differs, d) - phi(matches, d)",
       title=f"Untrained HARs at n = {n}: the margin decides the policy")
ax.grid(alpha=0.3)
ax.legend(fontsize="small", ncol=2)
plt.show()

# %% [markdown]
# A few networks are wrong only far from the goal (a negative margin at large d) and still
# reach every goal from random starts: the starting distance is Binomial(n, 1/2), so
# distances near n almost never occur, and a correct policy below them never walks up there.
#
# That is what a strong **inductive bias** does: the architecture shrinks the space of
# policies it can express from "any action in any of $4^n$ situations" to "a sign per
# distance", and a good share of that small space is optimal. An "iteration 1" result for HAR
# can therefore be pure luck, which is why section 2 checked the untrained network first.
#
# ## 6. Vanilla-HAR: learning without a single reward?
#
# The write-up found that HAR *without* HER solves n = 20 and fails from n = 30 (Table 1). A
# prototype of this course found the opposite (vanilla-HAR solving n = 30 ... 100 with a
# normalised distance and Polyak 0.1). Who is right? Both, for their settings, and the reason
# is the inductive bias again.
#
# Watch a vanilla-HAR run at n = 30 with this course's defaults, on a seed whose untrained
# network is *not* optimal, and count the rewards it has seen (`rewards_seen`).

# %%
n = 30
config = make_config(n=n, arch="har", her="none", seed=0, max_iterations=10, early_stop=False, num_eval_agents=256)
assert not har_greedy_is_optimal(build_network(config, DEVICE), n)
no_reward_run = train(config, progress=False)
for record in no_reward_run.history:
    print(f"iteration {record['iteration']:2d}: rewards seen so far {record['rewards_seen']}, "
          f"greedy success {record['success_rate']:.3f}")
assert no_reward_run.history[-1]["rewards_seen"] == 0
assert no_reward_run.solved  # success >= 0.99 on 5 evaluations in a row

# %% [markdown]
# Solved without a single reward. How? With no rewards, every target is
# $\gamma \max_{a'} Q(s', g, a')$. A good flip moves to distance $d - 1$, a bad one to $d + 1$.
# If the network's best value $M(d) = \max(\phi(0, d), \phi(1, d))$ happens to *decrease* with
# distance, the targets of good flips ($\gamma M(d-1)$) exceed those of bad flips
# ($\gamma M(d+1)$), and bootstrapping turns that tilt into the optimal policy. Nothing about
# the goal was learned; the architecture plus the Bellman backup did it. If $M$ happens to
# increase with distance, the same mechanism locks in the *wrong* policy, until real rewards
# (which only appear at distance 1) push back, and at n = 30 random play almost never sees one
# (chapter 3). So for vanilla-HAR "solved" or "failed" depends a lot on the seed, and on
# settings that change how strongly the initial tilt is amplified or washed out.
#
# The experiment below starts from the write-up's settings (raw distance, Polyak 0.01,
# $\gamma = 0.9$, 5 gradient steps per iteration, no HER) and this course's defaults
# (normalised distance, Polyak 0.05, $\gamma = 0.98$, 32 gradient steps), and changes one
# setting at a time, on seeds whose untrained network is not optimal.

# %%
VANILLA_BUDGET = 100 if QUICK else 200
VANILLA_SEEDS = (0,) if QUICK else (0, 3, 4)  # none of these seeds gives an optimal untrained HAR at n = 30
WRITEUP = dict(preset="writeup", solved_threshold=0.99, solved_window=5)  # the write-up's settings, our criterion
DEFAULT = dict(preset="default")
vanilla_variants = {
    "write-up settings": WRITEUP,
    "write-up + normalised distance": dict(WRITEUP, har_normalize_distance=True),
    "defaults": DEFAULT,
    "defaults + raw distance": dict(DEFAULT, har_normalize_distance=False),
}
if not QUICK:
    vanilla_variants.update({
        "write-up + Polyak 0.05": dict(WRITEUP, polyak=0.05),
        "write-up + gamma 0.98": dict(WRITEUP, gamma=None),
        "write-up + 32 gradient steps": dict(WRITEUP, gradient_steps=32),
        "defaults + Polyak 0.01": dict(DEFAULT, polyak=0.01),
        "defaults + gamma 0.9": dict(DEFAULT, gamma=0.9),
        "defaults + 5 gradient steps": dict(DEFAULT, gradient_steps=5),
    })

vanilla = {}
for name, settings in vanilla_variants.items():
    settings = dict(settings)
    preset = settings.pop("preset")
    for seed in VANILLA_SEEDS:
        config = make_config(preset, n=n, arch="har", her="none", seed=seed, max_iterations=VANILLA_BUDGET,
                             num_eval_agents=256, **settings)
        assert not har_greedy_is_optimal(build_network(config, DEVICE), n)
        vanilla[name, seed] = train(config, progress=False)

print(f"vanilla-HAR, n = {n}, at most {VANILLA_BUDGET} iterations; solved at (rewards seen by then)")
print(f"{'variant':>32s} " + " ".join(f"{'seed ' + str(seed):>18s}" for seed in VANILLA_SEEDS))
for name in vanilla_variants:
    cells = []
    for seed in VANILLA_SEEDS:
        result = vanilla[name, seed]
        if result.solved:
            seen = next(h["rewards_seen"] for h in result.history if h["iteration"] == result.solved_at)
            cells.append(f"{result.solved_at:>6d} ({seen:>4d} rew.)")
        else:
            cells.append(f"{'no':>6s} ({result.history[-1]['rewards_seen']:>4d} rew.)")
    print(f"{name:>32s} " + " ".join(f"{c:>18s}" for c in cells))

# %%
fig, ax = plt.subplots(figsize=(8, 4))
for name in ("write-up settings", "write-up + normalised distance", "defaults", "defaults + raw distance"):
    ax.plot(*vanilla[name, 0].curve("success_rate"), label=name, ls="-" if "normalised" in name or name == "defaults" else "--")
ax.set(xlabel="iteration (16 training episodes each)", ylabel="greedy success rate", ylim=(-0.03, 1.03),
       title=f"Vanilla-HAR (no HER) at n = {n}, seed 0: normalised (solid) versus raw (dashed) distance")
ax.grid(alpha=0.3)
ax.legend(fontsize="small")
plt.show()

# %% [markdown]
# On seed 0 the **distance feature** looks decisive: the write-up's settings do not solve
# n = 30 within 100 iterations, while the same settings with the distance divided by n do, well
# within that budget; and this course's defaults solve it but fail within 100 iterations once
# the raw distance is fed in. The cell below checks this. A tempting explanation: fed raw, the
# distance ranges over 1 ... n and dominates $\phi$'s first layer, drowning the small
# difference between a good and a bad flip; divided by n, both inputs live on the same scale.
#
# But one seed is one draw of the lottery from section 5, and the rewards-seen column says
# some of these runs never saw a reward. Full mode repeats the comparison on seeds 3 and 4
# and changes the other settings one at a time, which shows how much of the story survives:
# * the raw distance is not fatal in general: the defaults with the raw distance solve seed 3;
# * no single change to the write-up's settings solves all three seeds, and the write-up's
#   settings themselves solve none within 200 iterations;
# * the defaults with the write-up's *slower* Polyak fraction 0.01 solve all three, after
#   seeing rewards. Without rewards, bootstrapping amplifies whatever tilt the network starts
#   with, right or wrong; a slowly moving target slows that amplification down and leaves
#   exploration time to find the rare rewards that point the right way. (With HER, where
#   rewards are plentiful from the start, a faster target learns faster.)

# %%
def solved_within(result, iterations: int) -> bool:
    """Solved, with the whole run of successful evaluations inside the first ``iterations``."""
    return result.solved and result.solved_at + result.config.solved_window - 1 <= iterations


def rewards_when_solved(result) -> int:
    return next(h["rewards_seen"] for h in result.history if h["iteration"] == result.solved_at)


for name in ("write-up + normalised distance", "defaults"):
    assert solved_within(vanilla[name, 0], 100), name
for name in ("write-up settings", "defaults + raw distance"):
    assert not solved_within(vanilla[name, 0], 100), name
if not QUICK:
    assert vanilla["defaults + raw distance", 3].solved
    assert not any(vanilla["write-up settings", seed].solved for seed in VANILLA_SEEDS)
    for name in vanilla_variants:
        if name.startswith("write-up +"):
            assert not all(vanilla[name, seed].solved for seed in VANILLA_SEEDS), name
    slow_target = [vanilla["defaults + Polyak 0.01", seed] for seed in VANILLA_SEEDS]
    assert all(r.solved and rewards_when_solved(r) > 0 for r in slow_target)

# %% [markdown]
# So who was right about vanilla-HAR? Neither "fails from n = 30" nor "solves up to 100" is a
# property of the method alone, and a single run per cell (as in Table 1) cannot tell a
# setting's effect from luck. Without HER, random play at n = 30 brings almost no rewards, and
# what the network does depends on the tilt it starts with, on how the distance is scaled, and
# on settings (Polyak fraction, discount, gradient steps) that decide how strongly that tilt is
# amplified before any reward arrives. (Given the whole 3000-iteration budget of Table 1, even the
# write-up's settings solve n = 30 and 40 on all three seeds here, after 118-1414 iterations:
# slow, but not a failure; chapter 7 has the stored runs and checks them.) HER removes the lottery: it
# guarantees rewarded transitions from the first episode, which is why HER-HAR solved every
# size in section 2.
#
# ## 7. Try it yourself
#
# The dashboard below trains a HAR with the settings you choose: try vanilla (HER `none`)
# against `future` at n = 30 on several seeds, the write-up's gamma 0.9 at n = 100, or n = 500.
# (In CI the cell after it trains a tiny run with the same settings, so the cell is tested.)

# %%
from bitflip_lib.widgets import TrainingDashboard

dash = TrainingDashboard(n=50, arch="har", her="future", max_iterations=100, num_eval_agents=256)
dash

# %%
demo = dash.run(n=20, max_iterations=5 if QUICK else 30)
print(demo.summary())
assert demo.iterations >= 1 and demo.config.arch == "har"

# %% [markdown]
# ## Summary
#
# * Bit flipping is symmetric under permuting the bits and under XOR-ing state and goal with a
#   mask. $Q^*$ only depends on (distance, bit differs): $2n - 1$ values instead of
#   $n \cdot 4^n$. HAR, $Q = \phi(d, |s_a - g_a|)$, is a network on that quotient space: it
#   respects the symmetry for any weights, has the same few thousand parameters for every n,
#   and a HAR trained at n = 20 solved n = 1024 unchanged.
# * With HER, HAR solved every size we trained it on, up to n = 200 in quick mode and 500 in
#   full mode. Training it from scratch at n = 1024 is a different matter: the good-minus-bad
#   gap there is about 1e-3, below the noise of the fitted values, and with the default 2^15
#   replay buffer (less than half of one iteration's transitions at that n) it did not settle on
#   the optimal policy in our runs; transfer from n = 20 did. Chapter 7 shows a 2^20 buffer
#   getting there from scratch (three seeds).
# * The gap between the optimal values of a good and a bad flip is
#   $\gamma^{d-1}(1 - \gamma^2)$: for fixed $\gamma$ it vanishes exponentially with the
#   distance, so $\gamma$ must approach 1 as n grows ($\gamma = 1 - 1/n$ keeps it near
#   $2/(e n)$). The write-up's $\gamma = 0.9$ failed at n = 100 where $\gamma = 0.99$ solved.
# * A HAR's greedy policy is a sign per distance, so about a third of freshly initialised HARs
#   are already optimal, and vanilla-HAR can reach success 1.0 at n = 30 without ever seeing a
#   reward. A strong inductive bias can do most of the work, and it makes single-seed results
#   about "learning" easy to misread: check the untrained network, count the rewards, use
#   several seeds.
#
# **Exercises.** `exercises/ex06_har` builds the HAR network yourself and checks its symmetry.
# Chapter 7 puts all of this together in the write-up's Table 1, and goes past it.
