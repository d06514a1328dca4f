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
# 17 is no different from bit 3. The write-up (Chau, appendix 4.2; see the references) instead
# builds that knowledge in: its handcrafted architecture (HAR) computes
#
# $$ Q(s, g, a) = \phi\big(\lVert s - g \rVert_1,\ |s_a - g_a|\big), $$
#
# one tiny network $\phi: \mathbb{R}^2 \to \mathbb{R}$ shared by every bit. What does that buy?
#
# **Learning goals.** After this chapter you can
# 1. state the symmetry of bit flipping, count the quotient space it leaves ($2n - 1$ values),
#    and check that HAR respects the symmetry while an MLP does not;
# 2. train HER-HAR far beyond the write-up's n = 50, use a HAR trained at n = 20 unchanged at
#    n = 1024, and say where that use is extrapolation;
# 3. choose the discount for n bits from the action gap (chapter 2): near $1 - 1/n$, not 1;
# 4. explain why a freshly initialised HAR is often already optimal, and why vanilla HAR can
#    even "solve" the task without seeing a single reward: what a strong inductive bias does.
#
# **Study time.** About 75 minutes of reading and trying things. **Run time.** About 5 minutes on
# a laptop CPU.
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
from collections import defaultdict

import matplotlib.pyplot as plt
import torch

from bitflip_lib import default_device, quick_mode
from bitflip_lib.config import make_config
from bitflip_lib.diagnosis.analysis import (
    optimal_q_gap,
    quotient_size,
    run_ablation,
    transfer_success,
)
from bitflip_lib.networks import HAR, MLP, UVFA, har_greedy_is_optimal, har_greedy_margin, har_phi
from bitflip_lib.tabular import value_iteration
from bitflip_lib.trainer import build_network, evaluate, train
from bitflip_lib.ui import diagrams
from bitflip_lib.ui.plots import plot_training

QUICK = quick_mode()
print(f"Running in {'quick' if QUICK else 'full'} mode")
DEVICE = default_device(announce=True)
torch.manual_seed(0);
diagrams.har_architecture()

# %% [markdown]
# ## 1. The symmetry, and the quotient space it leaves
#
# Two kinds of relabelling leave the bit-flipping task unchanged:
#
# * **permuting the bit positions** by $\sigma$ (state, goal and action alike): flipping bit $a$
#   then permuting equals permuting then flipping bit $\sigma(a)$;
# * **XOR-ing state and goal with one mask** $m$: $s \oplus m$ and $g \oplus m$ differ where $s$
#   and $g$ do.
#
# Transitions and rewards commute with both, so the optimal values do too:
# $Q^*(s, g, a) = Q^*(\sigma(s \oplus m), \sigma(g \oplus m), \sigma(a))$. XOR with $m = g$
# sends the goal to all zeros, and a permutation moves the $d = \lVert s - g \rVert_1$ differing
# bits to the front: what is left is $d$ and whether bit $a$ differs. So $Q^*$ factors through
# the **quotient space** of pairs (distance, bit differs), exactly the inputs of HAR's $\phi$
# (drawn above): $2n - 1$ pairs with the goal not reached, against $2^n \cdot 2^n \cdot n$
# table entries.

# %%
for n, sizes in ((n, quotient_size(n)) for n in (4, 10, 20, 50, 1024)):
    print(f"n = {n:5d}: Q table 10^{math.log10(sizes['table']):7.1f} entries, "
          f"quotient space {sizes['quotient']:5d} pairs")

# Check on the exact Q* of n = 4 (value iteration, chapter 2): it takes one value per
# (distance, differs) pair.
n, gamma = 4, 0.9
q_star, _ = value_iteration(n, gamma)
bits = (torch.arange(2**n)[:, None] >> torch.arange(n)) & 1
values_by_pair = defaultdict(set)
for s, g in ((s, g) for s in range(2**n) for g in range(2**n) if s != g):
    d = int((bits[s] != bits[g]).sum())
    for a in range(n):
        values_by_pair[(d, bool(bits[s, a] != bits[g, a]))].add(round(float(q_star[s, g, a]), 12))
assert len(values_by_pair) == quotient_size(n)["quotient"] == 2 * n - 1
assert all(len(v) == 1 for v in values_by_pair.values())
print(f"n = {n}: {2**n * (2**n - 1) * n} (s, g, a) triples with s != g, "
      f"{len(values_by_pair)} distinct optimal values")

# %% [markdown]
# A network *respects* the symmetry when permuting the input bits permutes its n outputs the same
# way (**permutation equivariance**) and XOR-ing state and goal with one mask changes nothing
# (**invariance**). HAR does by construction, whatever its weights; a generic MLP would have to
# learn it (chapter 7b, section 4: a network with the permutations built in learns the rest,
# distance too).

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


har_errors, mlp_errors = symmetry_errors(HAR(20), 20), symmetry_errors(MLP(20), 20)
print(f"permutation and mask errors: HAR {har_errors[0]:.2g}, {har_errors[1]:.2g}; "
      f"MLP {mlp_errors[0]:.2g}, {mlp_errors[1]:.2g}")
assert max(har_errors) < 1e-5 < min(mlp_errors)

# %% [markdown]
# HAR is also tiny and independent of n: its parameters are those of $\phi$. It feeds $\phi$ the
# *normalised* distance $d / n$ by default; the write-up fed the raw count $d$
# (`har_normalize_distance=False`), a difference that matters in section 6.

# %%
def parameter_count(network: torch.nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


for n in (10, 50, 1024):
    counts = ", ".join(f"{net.__name__} {parameter_count(net(n)):,}" for net in (UVFA, MLP, HAR))
    print(f"n = {n:5d}: {counts} parameters")
assert parameter_count(HAR(10)) == parameter_count(HAR(1024)) == 4417

# %% [markdown]
# ## 2. HER-HAR scales far beyond n = 50
#
# The write-up's Table 1 stops at n = 50 (HER-HAR: 659 iterations until 100 evaluations in a row
# at 1.00). With this course's defaults
# we go further, checking first that the untrained network is not *already* optimal (section 5
# explains why it can be), so that a fast result is not mistaken for learning.

# %%
SIZES = [50, 200] if QUICK else [50, 100, 200, 500]
scaling = {}
for n in SIZES:
    config = make_config(n=n, arch="har", her="future", seed=0, max_iterations=60 if QUICK else 100,
                         num_eval_agents=256)
    initially_optimal = har_greedy_is_optimal(build_network(config, DEVICE), n)
    result = train(config, progress=False)
    scaling[n] = result
    print(f"n = {n:5d} (gamma {config.effective_gamma:.4f}): solved at iteration "
          f"{result.solved_at}, {result.wall_seconds:.1f} s; "
          f"optimal before training: {initially_optimal}")
    assert not initially_optimal, "pick a seed whose untrained network is not optimal"
    result.assert_solved()

# %%
display(plot_training(list(scaling.values()), labels=[f"n = {n}" for n in scaling],
                      metrics=("success_rate", "mean_distance"),
                      title="HER-HAR with the default settings"))

# %% [markdown]
# ## 3. Trained small, used large
#
# Nothing in a HAR depends on n (a generic network's input size is fixed to n). Train one at
# n = 20 and evaluate it unchanged on up to 1024 bits, checking that agents walk straight to
# the goal (steps taken = starting distance).

# %%
small = train(make_config(n=20, arch="har", her="future", seed=0, max_iterations=60),
              progress=False)
small.assert_solved()
print(f"trained at n = 20: solved at iteration {small.solved_at} ({small.wall_seconds:.1f} s)")
TRANSFER_SIZES = [20, 200, 1024] if QUICK else [20, 100, 500, 1024]
transfer = transfer_success(small.network, TRANSFER_SIZES, num_agents=256 if QUICK else 1024)
for n, stats in transfer.items():
    print(f"  evaluated at n = {n:5d}: success {stats['success_rate']:.3f}, "
          f"mean steps {stats['mean_steps']:.1f} "
          f"(mean starting distance {stats['mean_start_distance']:.1f})")
    assert stats["success_rate"] == 1.0
    assert math.isclose(stats["mean_steps"], stats["mean_start_distance"])

# %% [markdown]
# **Where this is extrapolation.** The greedy policy needs $\phi(x, 1) > \phi(x, 0)$ at every
# feature $x = d / n$ it meets. Trained at n = 20, the network has seen only $x \ge 1/20 = 0.05$.
# At n = 1024 every episode ends with $d = 51, \dots, 1$, where $x < 0.05$: its last 51 steps ask
# $\phi$ about inputs it never saw. Transfer worked because this $\phi$ keeps the right sign there;
# nothing in training forced it to. Below: the margin over every $x$ that n = 1024 uses.

# %%
big, seen_min = 1024, 1 / 20
unseen = [d for d in range(1, big) if d / big < seen_min]
margin = har_greedy_margin(small.network, big)  # phi(d/n, 1) - phi(d/n, 0) for d = 1 .. n - 1
x = torch.arange(1, big) / big
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(x, margin, label="trained at n = 20, used at n = 1024")
ax.axvspan(0, seen_min, color="tab:red", alpha=0.15, label="d / n < 1/20: never seen in training")
ax.set(xlabel="distance feature x = d / n", ylabel="phi(x, 1) - phi(x, 0)",
       title="The margin, and where it is extrapolated")
ax.legend(fontsize="small")
plt.show()
print(f"{len(unseen)} distances at n = {big} lie below the smallest feature seen in training; "
      f"smallest margin there {float(margin[: len(unseen)].min()):.3g}, "
      f"elsewhere {float(margin[len(unseen):].min()):.3g}")
assert unseen == list(range(1, 52))  # the last 51 steps of every episode
assert bool((margin[: len(unseen)] > 0).all())  # this network extrapolates with the right sign

# %% [markdown]
# **Look inside phi yourself.** Pick a network (trained at n = 20, or untrained), the size n and a
# distance d: left, phi for a differing and a matching bit against the exact $\gamma^{d-1}$ and
# $\gamma^{d+1}$; right, the margin the greedy policy acts on (red where its sign is wrong).

# %%
from bitflip_lib.ui.explorers import PhiExplorer

phi_view = PhiExplorer({"trained at n = 20": small.network, "before training (same seed)": build_network(small.config, DEVICE)},
                       gamma=small.config.effective_gamma, n=20)
assert ("optimal at this n" in phi_view.text.value) == har_greedy_is_optimal(small.network, 20)
phi_view

# %% [markdown]
# ## 4. Which discount for n bits?
#
# Chapter 2 derived the **action gap** between a good and a bad flip at distance $d$,
# $\gamma^{d-1} - \gamma^{d+1} = \gamma^{d-1}(1 - \gamma^2)$. It vanishes for a fixed $\gamma < 1$
# like $\gamma^d$ (about $10^{-6}$ at $\gamma = 0.98$, $d = 500$: below the noise of stochastic
# gradients), and at $\gamma = 1$ entirely (arriving later is then as good as arriving now). It
# is largest at $\gamma^* = \sqrt{(d - 1)/(d + 1)} \approx 1 - 1/d$, about $2/(e\,d)$: $\gamma$
# should approach 1 *at the rate* $1 - 1/d$. At $d = n$, where the gap is smallest, that is the
# default $\max(0.98, 1 - 1/n)$ (below n = 50 the floor keeps 73% of the best gap at n = 20).

# %%
gammas = torch.linspace(0.9, 1.0, 100_001, dtype=torch.float64)
fig, ax = plt.subplots(figsize=(7, 4))
for d in (20, 100, 500):
    gaps = gammas ** (d - 1) * (1 - gammas**2)  # optimal_q_gap for a whole grid of gammas
    best, default = math.sqrt((d - 1) / (d + 1)), max(0.98, 1 - 1 / d)
    ax.plot(gammas, gaps / gaps.max(),
            label=f"d = {d}: best gamma {best:.4f}, 1 - 1/d = {1 - 1 / d:.4f}")
    assert abs(float(gammas[gaps.argmax()]) - best) < 1e-4 and abs(best - (1 - 1 / d)) < 1 / d**2
    share = float(optimal_q_gap(d, default)) / float(gaps.max())
    print(f"d = n = {d}: default gamma {default:.3f} keeps {share:.1%} "
          f"of the largest gap {float(gaps.max()):.3g}")
    # Below n = 50 the floor 0.98 gives some of the gap up.
    assert share > 0.99 if default == 1 - 1 / d else 0.7 < share < 0.8
assert float(optimal_q_gap(100, 1.0)) == 0.0  # at gamma = 1 a good and a bad flip look alike
ax.set(xlabel="discount gamma", ylabel="gap / its largest value",
       title="The action gap at distance d against gamma")
ax.grid(alpha=0.3); ax.legend(fontsize="small")
plt.show()
assert float(optimal_q_gap(500, 0.98)) < 2e-6 < 1e-3 < float(optimal_q_gap(500, 0.999))

# %% [markdown]
# The experiment: $\gamma = 0.9$ against the default 0.99 at n = 100 (gaps at $d = 100$:
# $6 \cdot 10^{-6}$ and $7 \cdot 10^{-3}$), 40 iterations of HER-HAR each.
#
# **Check your understanding 1 (predict before you run).** (a) Both solve $n = 100$: HAR makes $n$
# nearly irrelevant. (b) $\gamma = 0.99$ solves it and $\gamma = 0.9$ does not. (c) $\gamma = 0.9$
# solves it faster: a shorter horizon means less bootstrapping error. (d) Neither does, in 40
# iterations.
#
# <details><summary>Answer</summary>
#
# (b), asserted by the next cell. HAR removes $n$ from the *network*, not from the *values*: at
# $\gamma = 0.9$ the gap between a good and a bad flip at distance 100 is about $6 \cdot 10^{-6}$,
# far below the noise of the updates, so the greedy policy cannot tell them apart where the
# episodes start. (c) is a real trade-off at small $n$, but here the vanishing gap dominates.
# </details>

# %%
GAMMA_RUNS = [(100, 0.9), (100, None)]
if not QUICK:
    GAMMA_RUNS += [(500, 0.98), (500, None)]
gamma_results = {}
for n, g in GAMMA_RUNS:
    config = make_config(n=n, arch="har", her="future", gamma=g, seed=0, max_iterations=40,
                         num_eval_agents=256)
    gamma_results[n, g] = train(config, progress=False)
for (n, g), result in gamma_results.items():
    print(f"n = {n}, gamma = {result.config.effective_gamma:.4f}: solved at {result.solved_at}, "
          f"best success {max(result.curve('success_rate')[1]):.3f}")
    result.assert_solved() if g is None else result.assert_not_solved()  # question 1: (b)
labels = [f"n = {n}, gamma = {r.config.effective_gamma:.3f}" for (n, _), r in gamma_results.items()]
display(plot_training(list(gamma_results.values()), metrics=("success_rate",), labels=labels,
                      title="HER-HAR with a fixed versus an n-dependent discount"))

# %% [markdown]
# ## 5. Why a freshly initialised HAR is often already optimal
#
# **Check your understanding 2 (predict before you run).** Build 100 HARs at $n = 50$ (20 in quick
# mode) from different seeds and train none of them. What share of them already act optimally,
# reaching every goal in the fewest flips?
#
# * (a) None: an untrained network acts at random.
# * (b) About a third.
# * (c) All of them: HAR is built for this task.
# * (d) About $2^{-49}$: one sign pattern out of $2^{49}$.
#
# <details><summary>Answer</summary>
#
# (b): the next cell counts them (and asserts a share between 0.15 and 0.5, against below 0.05 for
# the generic networks). The paragraph below says why: a HAR's greedy policy is a sign per
# distance, and a random smooth $\phi$ often has one sign everywhere. (a) holds for the MLP and
# the UVFA. (c) forgets that $\phi$'s weights are random: the structure makes optimality easy to
# hit, not certain. (d) would hold if the 49 signs were independent coin flips; a smooth function
# of the distance changes sign rarely.
# </details>
#
# In one (state, goal) pair every differing bit gets $\phi(d, 1)$ and every matching bit
# $\phi(d, 0)$, so a HAR's greedy policy is a sign pattern over $d = 1, \dots, n-1$, optimal when
# the margin $\phi(d, 1) - \phi(d, 0)$ is positive at every $d$. A random smooth $\phi$ often has
# one sign everywhere: a coin flip, tilted by how the ReLUs cut the input space.

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
count, perfect = sum(o for _, o, _ in survey), sum(success == 1.0 for _, _, success in survey)
print(f"of {len(survey)} untrained HARs at n = {n}: {count} optimal (positive margin at every d), "
      f"{perfect} reach every goal")
assert 0.15 <= count / len(survey) <= 0.5  # "about a third" (question 2)

generic = {}
for arch in ("mlp", "uvfa"):
    untrained = [build_network(make_config(n=n, arch=arch, seed=s), DEVICE) for s in range(3)]
    generic[arch] = max(evaluate(net, n, 256)["success_rate"] for net in untrained)
print("best success of 3 untrained generic networks:",
      ", ".join(f"{arch} {value:.3f}" for arch, value in generic.items()))
assert max(generic.values()) < 0.05

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for seed, optimal, _ in survey[:8]:
    margin = har_greedy_margin(build_network(make_config(n=n, arch="har", seed=seed), DEVICE), n)
    ax.plot(range(1, n), margin, color="tab:green" if optimal else "tab:red", alpha=0.8,
            label=("optimal" if optimal else "not optimal") + f" (seed {seed})")
ax.axhline(0, color="k", lw=0.8)
ax.set(xlabel="distance to goal d", ylabel="phi(d, 1) - phi(d, 0)",
       title=f"Untrained HARs at n = {n}: the margin decides")
ax.legend(fontsize="small", ncol=2)
plt.show()

# %% [markdown]
# (Some are wrong only far from the goal, at distances a random start, Binomial(n, 1/2), almost
# never has.) That is what a strong **inductive bias** does: from "any action in any of $4^n$
# situations" to "a sign per distance", and a good share of that small space is optimal.
#
# ## 6. Vanilla-HAR: learning without a single reward?
#
# The write-up found that HAR *without* HER solves n = 20 and fails from n = 30 (Table 1).
# Watch a vanilla-HAR run at n = 30 with this course's defaults, on a seed whose untrained
# network is *not* optimal, and count the rewards it has seen (`rewards_seen`).
#
# **Check your understanding 3 (predict).** Ten iterations at $n = 30$, where random episodes are
# rewarded with probability about $3 \cdot 10^{-8}$. (a) The success stays at 0: no reward, nothing
# to learn. (b) It is solved (0.99 or more in five evaluations in a row) without having seen a
# single reward. (c) It succeeds only after its first reward arrives.
#
# <details><summary>Answer</summary>
#
# (b), and the next cell asserts both halves: zero rewards seen, and solved. Bootstrapping
# without rewards can still *turn a tilt into a policy*: the paragraph after the cell explains
# how, and why on other seeds the same mechanism locks in the wrong policy. (a) is what a generic
# network does (chapter 3); (c) is the textbook story, which this strong an inductive bias does
# not need.
# </details>

# %%
n = 30
config = make_config(n=n, arch="har", her="none", seed=0, max_iterations=10, early_stop=False,
                     num_eval_agents=256)
assert not har_greedy_is_optimal(build_network(config, DEVICE), n)
no_reward_run = train(config, progress=False)
print("per iteration, (rewards seen so far, greedy success):",
      [(h["rewards_seen"], round(h["success_rate"], 3)) for h in no_reward_run.history])
assert no_reward_run.history[-1]["rewards_seen"] == 0
assert no_reward_run.solved  # success >= 0.99 on 5 evaluations in a row

# %% [markdown]
# Solved without a single reward. With no rewards every target is $\gamma \max_{a'} Q(s', g, a')$,
# and a good flip leads to distance $d - 1$, a bad one to $d + 1$. If the best value
# $M(d) = \max(\phi(d, 0), \phi(d, 1))$ happens to *decrease* with $d$, good flips get larger
# targets and bootstrapping turns that tilt into the optimal policy; if $M$ increases, it locks in
# the *wrong* policy until rare rewards push back.
#
# Below, two sets of settings and the steps between them, changing one setting at a time: the
# defaults (normalised distance, Polyak 0.05, $\gamma = 0.98$, 32 gradient steps) and the
# write-up's (raw distance, Polyak 0.01, $\gamma = 0.9$, 5 gradient steps). For the write-up's we
# take the `writeup_v1` preset, this course's first reading of the write-up's code: it differs
# from the defaults in exactly those four settings (and the rule for "solved", which we set to
# ours), and shares their $\phi$ network (two hidden layers of 64 ReLU units) and batches of 256.
# The write-up's code itself (the `writeup` preset) also gives $\phi$ two layers of 128 GELU units
# and draws batches of 2048 without replacement, so a one-setting change from it would change the
# network as well, and a different $\phi$ is a different draw of section 5's lottery. Full mode
# runs it too, on seed 0, with the raw and with the normalised distance.

# %%
def solved_within(result, iterations: int) -> bool:
    """Solved, with the whole run of successful evaluations inside the first ``iterations``."""
    return result.solved and result.solved_at + result.config.solved_window - 1 <= iterations


def rewards_when_solved(result) -> int:
    return next(h["rewards_seen"] for h in result.history if h["iteration"] == result.solved_at)


VANILLA_BUDGET = 100 if QUICK else 200
VANILLA_SEEDS = (0,) if QUICK else (0, 3, 4)  # no seed here is optimal untrained at n = 30
# The write-up's settings as first read (writeup_v1), with this course's rule for "solved".
WRITEUP = dict(preset="writeup_v1", solved_threshold=0.99, solved_window=5)
DEFAULT = dict(preset="default")
vanilla_variants = {
    "write-up settings": WRITEUP,
    "write-up + normalised distance": dict(WRITEUP, har_normalize_distance=True),
    "defaults": DEFAULT,
    "defaults + raw distance": dict(DEFAULT, har_normalize_distance=False),
}
seeds_of = dict.fromkeys(vanilla_variants, VANILLA_SEEDS)
if not QUICK:
    vanilla_variants.update({
        "write-up + Polyak 0.05": dict(WRITEUP, polyak=0.05),
        "write-up + gamma 0.98": dict(WRITEUP, gamma=None),
        "write-up + 32 gradient steps": dict(WRITEUP, gradient_steps=32),
        "defaults + Polyak 0.01": dict(DEFAULT, polyak=0.01),
        "defaults + gamma 0.9": dict(DEFAULT, gamma=0.9),
        "defaults + 5 gradient steps": dict(DEFAULT, gradient_steps=5)})
    seeds_of.update(dict.fromkeys(list(vanilla_variants)[4:], VANILLA_SEEDS))
    # The write-up's code itself (phi 2-128-128-1 with GELU, batches of 2048), seed 0 only.
    CODE = dict(preset="writeup", solved_threshold=0.99, solved_window=5)
    vanilla_variants.update({"write-up code": CODE,
                             "write-up code + normalised distance":
                                 dict(CODE, har_normalize_distance=True)})
    seeds_of.update({"write-up code": (0,), "write-up code + normalised distance": (0,)})
vanilla = {}
for name, settings in vanilla_variants.items():
    preset = settings["preset"]
    settings = {key: value for key, value in settings.items() if key != "preset"}
    for seed in seeds_of[name]:
        config = make_config(preset, n=n, arch="har", her="none", seed=seed,
                             max_iterations=VANILLA_BUDGET, num_eval_agents=256, **settings)
        assert not har_greedy_is_optimal(build_network(config, DEVICE), n)
        vanilla[name, seed] = train(config, progress=False)


def verdict(r) -> str:
    if r.solved:
        return f"{r.solved_at} ({rewards_when_solved(r)} rew.)"
    return f"no ({r.history[-1]['rewards_seen']} rew.)"


print(f"vanilla-HAR, n = {n}, at most {VANILLA_BUDGET} iterations: "
      "solved at (rewards seen by then, or by the end)")
for name in vanilla_variants:
    print(f"{name:>35s}: " + "; ".join(f"seed {seed}: {verdict(vanilla[name, seed])}"
                                        for seed in seeds_of[name]))
shown = list(vanilla_variants)[:4]  # the distance feature, in both sets of settings
display(plot_training([vanilla[name, 0] for name in shown], labels=shown,
                      metrics=("success_rate",),
                      title=f"Vanilla-HAR (no HER) at n = {n}, seed 0: the distance feature"))
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
    # The write-up's code, seed 0: solved within 100 iterations neither way.
    for name in ("write-up code", "write-up code + normalised distance"):
        assert not solved_within(vanilla[name, 0], 100), name

# %% [markdown]
# On seed 0 the *distance feature* looks decisive (checked above): the write-up's settings do not
# solve n = 30 within 100 iterations, the same settings with the distance divided by n do, and the
# defaults fail once the raw distance is fed in. But one seed is one draw of section 5's lottery.
# Full mode adds seeds 3 and 4 and the other one-setting changes: the raw distance is not fatal in
# general (the defaults with it solve seed 3); no single change to the write-up's settings solves
# all three seeds; the defaults with the write-up's *slower* Polyak fraction 0.01 solve all three,
# after seeing rewards (a slowly moving target slows down bootstrapping's amplification of the
# initial tilt and leaves exploration time to find the rare rewards). With the write-up's code
# itself (the wider GELU $\phi$, batches of 2048), the normalised distance does not rescue seed 0
# within 100 iterations: which settings win depends on the network's draw as well. So neither
# "fails from n = 30" nor "solves n = 30" is a property of vanilla-HAR alone, and one run per cell
# (as in Table 1) cannot tell a setting's effect from luck; chapter 7 has the stored runs. HER
# removes the lottery: it guarantees rewarded transitions from the first episode (section 2).
#
# ## 7. Try it yourself
#
# Train a HAR as you choose: vanilla against `future` at n = 30 on several seeds, gamma 0.9 at
# n = 100, or n = 500. The dashboard starts at n = 20 with HER `future` and a budget of 30
# iterations, and the cell after it trains once with exactly the settings the controls show.

# %%
from bitflip_lib.ui.dashboards import TrainingDashboard, summary_text

DASH_BUDGET = 5 if QUICK else 30
dash = TrainingDashboard(n=20, arch="har", her="future", max_iterations=DASH_BUDGET,
                         num_eval_agents=256)
dash

# %%
demo = dash.run()  # what pressing Train does, with the settings the controls show
print(summary_text(demo))
assert demo.iterations >= 1 and demo.config.arch == "har" and dash.values()["n"] == 20

# %% [markdown]
# ## Check your understanding
#
# Questions 1 to 3 are above, each before the cell that answers it. One more, to work out:
#
# **4.** A HAR trained at n = 20 is used at n = 1000. At which distances is it extrapolating, and
# how many steps of a typical episode is that?
# <details><summary>Answer</summary>At $d / 1000 < 1/20$, i.e. $d \le 49$: the last 49 steps of
# every episode, since it was trained on features $d / 20 \ge 0.05$ only (section 3 draws the
# same at n = 1024, where it is the last 51 steps).</details>
#
# > **Common pitfalls** (a strong inductive bias makes "learning" easy to misread). (1) *Check the
# > untrained network*: a third of fresh HARs are already optimal (`har_greedy_is_optimal`).
# > (2) *Count the rewards*: "solved" with `rewards_seen == 0` learned nothing about goals.
# > (3) *Use several seeds*: one run per setting is one draw of the lottery.
#
# ## Summary
#
# * $Q^*$ depends only on (distance, bit differs): $2n - 1$ values. HAR lives on that quotient
#   space: it respects the symmetry for any weights and has the same 4,417 parameters for every n.
# * With HER, HAR solved every size trained (up to 200 in quick mode, 500 in full mode). Trained
#   at n = 20, it solved n = 1024 unchanged, although the last 51 steps of every episode there are
#   extrapolation ($d / n < 0.05$): this network's margin kept its sign; nothing guaranteed it.
#   Trained from scratch at n = 1024 (chapter 7b, section 2, from stored runs), the default
#   $2^{15}$ buffer did not get there, nor did a $2^{20}$ buffer alone in 120 iterations; with the
#   $2^{20}$ buffer *and* a decaying learning rate, three seeds out of three did.
# * The action gap $\gamma^{d-1}(1 - \gamma^2)$ vanishes for fixed $\gamma$ and at $\gamma = 1$,
#   and peaks at $\sqrt{(d-1)/(d+1)} \approx 1 - 1/d$: at $d = n$, the default
#   $\max(0.98, 1 - 1/n)$. $\gamma = 0.9$ failed at n = 100 where 0.99 solved.
# * A HAR's greedy policy is a sign per distance: about a third of fresh HARs are optimal, and
#   vanilla-HAR can reach success 1.0 at n = 30 without a single reward.
#
# **Exercise.** `exercises/ex06_har`: build the HAR yourself (`bitflip grade ex06`). **Next:**
# chapter 7 puts all of this together in the write-up's Table 1, and goes past it.
#
# ## References
#
# * Chau Yu Hei (HKUST). *Documentation of Bit Sequence mini RL project* (appendix 4.2: UVFA and
#   the handcrafted architecture; Table 1). Code: https://github.com/louis845/BitSeqRLToyProblem
# * M. Andrychowicz et al. Hindsight experience replay. *NeurIPS* 30, 2017.
# * T. Schaul, D. Horgan, K. Gregor, D. Silver. Universal value function approximators. *ICML*,
#   PMLR 37: 1312-1320, 2015.
# * M. Zaheer et al. Deep sets. *NeurIPS* 30, 2017 (permutation-invariant and -equivariant
#   networks).
# * M. M. Bronstein, J. Bruna, T. Cohen, P. Velickovic. Geometric deep learning: grids, groups,
#   graphs, geodesics, and gauges. arXiv:2104.13478, 2021 (symmetry as inductive bias).
