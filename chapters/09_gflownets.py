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
# # Chapter 9. GFlowNets and hindsight for sequences
#
# Chapter 8 trained a writer of bit strings to *maximise* its reward, and met two limits. With
# several good strings, reward maximisation keeps one and drops the rest. And with one hidden
# target and no partial credit, nothing is learned at all. This chapter takes three steps past
# them. GFlowNets learn to *sample* strings in proportion to their reward, so every good string
# keeps its share: the motivation of the write-up this course follows. Hindsight relabelling
# turns every string the writer produces into a correct training example, provided the target
# is an input. And the soft Q-values of the generation tree show that both GFlowNets and chapter
# 8's KL-regularised objective are Q-learning with a soft maximum, which links the chapter back
# to the DQN of chapters 3 to 5.
#
# **Learning goals.** After this chapter you can
# 1. define the forward and backward policies $P_F$ and $P_B$ of a GFlowNet, and derive the
#    trajectory-balance loss from them;
# 2. train a GFlowNet and compare it with reward maximisation on a reward with several modes;
# 3. say why sparse rewards hurt GFlowNets too, and what off-policy exploration or a reward
#    floor do about it;
# 4. apply hindsight relabelling to a goal-conditioned generator, say how it differs from HER,
#    and say what the other ways past a sparse reward (exploration bonuses, curricula,
#    Go-Explore) need;
# 5. compute soft values on the generation tree, show that on a tree a GFlowNet is
#    entropy-regularised RL (path consistency), and train one with soft Q-learning.
#
# **Study time.** About 60 minutes of reading, predicting and trying things. **Run time.** Under a
# minute on a laptop CPU. Chapter 8 comes first. Terms in bold are defined where they first appear
# and in the [glossary](glossary.md).

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
import torch

from bitflip_lib import default_device, quick_mode
from bitflip_lib.generation.sequences import (
    all_strings,
    conditional_log_probs,
    exact_log_probs,
    policy_from_soft_q,
    random_strings,
    reward_distribution,
    soft_values,
    total_variation,
)
from bitflip_lib.generation.training import (
    GenerateConfig,
    mode_probabilities,
    parameters_vector,
    seeded_policy,
    train_generator,
    train_hindsight,
)
from bitflip_lib.ui import diagrams

QUICK = quick_mode()
DEVICE = default_device(announce=True)
print(f"Running in {'quick' if QUICK else 'full'} mode")
CPU = torch.device("cpu")  # the small networks of this chapter run fastest on the CPU
CHAPTER_START = time.time()

# %% [markdown]
# ## 1. Sampling in proportion to the reward
#
# A reward maximiser wants the best string. Often we want *many* good ones: several candidate
# molecules for a laboratory to test, several different correct answers, or, below, four hidden
# targets of equal worth. A **GFlowNet** (generative flow network; Bengio et al. 2021) learns a
# sampler that draws each finished object $x$ with probability
# $$P(x) = \frac{R(x)}{Z}, \qquad Z = \sum_x R(x),$$
# for a reward $R(x) > 0$: a string twice as good is written twice as often, and every string
# with some reward keeps some probability. For a language model, sampling texts in proportion to
# a reward is how Hu et al. (2024) use GFlowNets to fine-tune one, the motivation of the
# write-up this course follows.
#
# Like the writer of chapter 8, a GFlowNet builds $x$ step by step, from a start state $s_0$
# through states $s_1, s_2, \dots$ to $s_L = x$. Two policies describe the steps:
#
# * the **forward policy** $P_F(s_{t+1} \mid s_t)$, the probability of each next state: the
#   sampler itself (for us, the writer $\pi_\theta$ choosing the next bit);
# * the **backward policy** $P_B(s_t \mid s_{t+1})$, the probability of each *parent* of a state,
#   that is, of each way to undo the last step. It is a tool for training, never used to sample.
#
# Why a backward policy? The probability that the sampler ends at $x$ is the sum over every
# sequence of steps that builds $x$. If objects can be built in several orders, that sum is
# hard, and $P_B$ lets us state the goal one trajectory at a time (section 2). Writing left to
# right, each state has exactly one parent, so the backward step is certain: $P_B = 1$. Had the
# bits been set in any order, a finished string would have several parents and $P_B$ would have
# to share the probability among them:

# %%
diagrams.tree_and_dag()

# %% [markdown]
# ## 2. Trajectory balance, derived
#
# Write a complete trajectory $\tau = (s_0 \to s_1 \to \dots \to s_L = x)$. The forward policy
# gives it probability $P_F(\tau) = \prod_t P_F(s_{t+1} \mid s_t)$, and the sampler ends at $x$
# with probability $P_F(x) = \sum_{\tau \to x} P_F(\tau)$, the sum over the trajectories that
# end at $x$. The backward policy, run from $x$, gives each of those trajectories a probability
# $P_B(\tau \mid x) = \prod_t P_B(s_t \mid s_{t+1})$, and these add up to 1 over $\tau \to x$.
# Now ask, for every trajectory,
# $$Z \prod_t P_F(s_{t+1} \mid s_t) = R(x) \prod_t P_B(s_t \mid s_{t+1}). \qquad
#   \text{(trajectory balance)}$$
# Sum both sides over the trajectories that end at $x$: the left gives $Z\, P_F(x)$, the right
# $R(x) \cdot 1$. So if every trajectory is balanced, $P_F(x) = R(x)/Z$ for every $x$: exactly
# the sampler we want. The condition is about one trajectory at a time, so it can be checked on
# sampled trajectories. **Trajectory balance** (Malkin et al. 2022) turns it into a loss, the
# squared log-ratio of the two sides,
# $$\mathcal{L}_{TB}(\tau) = \Big(\log Z_\theta + \sum_t \log P_F(s_{t+1} \mid s_t) - \log R(x)
#   -\sum_t \log P_B(s_t \mid s_{t+1})\Big)^2,$$
# where $\log Z_\theta$ is one more learned number. On our tree $P_B = 1$ and $P_F = \pi_\theta$,
# so for a string $y$
# $$\mathcal{L}_{TB}(y) = \big(\log Z_\theta + \log \pi_\theta(y) - \log R(y)\big)^2,$$
# which is zero for every $y$ exactly when $\pi_\theta(y) = R(y)/Z_\theta$; summing over $y$ then
# gives $Z_\theta = \sum_y R(y)$. Two properties matter below. The loss is a condition on each
# trajectory, so it holds whichever policy sampled the trajectories it is trained on (it is
# *off-policy*). And it needs $\log R$, so $R$ must be positive on every string.
#
# ## 3. Sampling against maximising
#
# The reward has four hidden targets (modes) $m_1, \dots, m_4$ at $L = 8$:
# $R(y) = \sum_{k=1}^4 e^{-2\,d(y, m_k)}$, with $d$ the Hamming distance, so each target scores
# about 1, a string one bit from a target about $e^{-2} \approx 0.14$, two bits away about 0.02.
# We train a GFlowNet and reward-maximising REINFORCE (chapter 8) on it, with the same network,
# budget and seed, and measure each sampler's distance to $R/Z$ exactly, over all 256 strings, in
# total variation (TV, chapter 8).
#
# **Check your understanding 1 (predict before you run the next cell).** After training, how much
# probability will each put on the four targets?
#
# - (a) Both about a quarter on each: the four are equally good.
# - (b) REINFORCE almost all of it on one target; the GFlowNet under a tenth on each, the rest on
#   their neighbours.
# - (c) REINFORCE a quarter on each; the GFlowNet the same amount on every one of the 256 strings.
# - (d) Both almost all on one target.
#
# <details><summary>Answer</summary>(b). The next cell computes $R/Z$ exactly: each target gets
# about 0.09, because the many near misses together carry most of the reward. The GFlowNet
# matches that for all four targets and learns $\log Z$ to within 0.1 (the cell prints both).
# REINFORCE's optimum is any policy that puts everything on a best string, so it settles on one
# target and forgets the others: from the point of view of $\mathbb{E}[R]$, that is
# success.</details>

# %%
GFN_STEPS = 400 if QUICK else 800
mm_config = GenerateConfig(length=8, reward="multimodal", steps=GFN_STEPS, batch_size=64, lr=1e-3,
                           eval_every=25, eval_samples=256)
gfn_run = train_generator(mm_config.replace(method="gflownet"))
rl_run = train_generator(mm_config.replace(method="reinforce"))
strings8 = all_strings(8)
target = reward_distribution(gfn_run.reward)  # R / Z over all 256 strings
true_log_Z = math.log(float(gfn_run.reward(strings8).sum()))
is_mode = gfn_run.reward.is_success(strings8)
modes_target = target[is_mode].tolist()
gfn_modes = mode_probabilities(gfn_run.policy, gfn_run.reward)
rl_modes = mode_probabilities(rl_run.policy, gfn_run.reward)
rl_tv = total_variation(exact_log_probs(rl_run.policy).exp(), target)
print(f"R / Z of each target:  {[round(m, 3) for m in modes_target]}")
print(f"GFlowNet, each target: {[round(m, 3) for m in gfn_modes]}; TV to R/Z "
      f"{gfn_run.final['tv']:.3f}; log Z {float(gfn_run.log_Z):.3f} (true {true_log_Z:.3f})")
print(f"REINFORCE, each target: {[round(m, 3) for m in rl_modes]}; TV to R/Z {rl_tv:.3f}")
assert all(m < 0.1 for m in modes_target)
assert gfn_run.final["tv"] < 0.05 and abs(float(gfn_run.log_Z) - true_log_Z) < 0.1
assert all(abs(m - t) < 0.3 * t for m, t in zip(gfn_modes, modes_target))  # each within 30%
assert max(rl_modes) > 0.9 and sorted(rl_modes)[-2] < 0.01 and rl_tv > 0.6  # one target only

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.3), sharey=True, layout="constrained")
panels = ((axes[0], rl_run, "REINFORCE (maximise E[R])"),
          (axes[1], gfn_run, "GFlowNet (trajectory balance)"))
for ax, run, name in panels:
    ax.fill_between(range(256), target.numpy(), step="mid", color="0.8", label="R / Z")
    ax.plot(exact_log_probs(run.policy).exp().numpy(), lw=1, label="learned sampler")
    ax.plot(torch.nonzero(is_mode).flatten(), [1.2] * 4, "v", color="k", label="targets")
    ax.set(title=name, xlabel="string (binary order)", yscale="log", ylim=(1e-5, 2))
axes[0].set_ylabel("probability")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False)
plt.show()

# %% [markdown]
# Reward maximisation found one target and put everything on it. The GFlowNet spreads its
# samples over all four targets and their neighbourhoods in proportion to $R$, and its $\log Z$
# converges to $\log\sum_y R(y)$: diversity is part of its objective, not an accident of
# exploration.
#
# ## 4. Sparse rewards hit GFlowNets too
#
# Make the reward exact, $R(y) = \varepsilon + \sum_k \mathbb{1}[y = m_k]$ at $L = 10$: four
# strings out of 1024 score about 1, and a floor $\varepsilon$ keeps $\log R$ finite elsewhere.
# Trajectory balance still has the right optimum, $R/Z$. But an on-policy GFlowNet only learns
# about the strings it happens to write.
#
# **Check your understanding 2 (predict before you run the next cell).** On-policy, with the floor
# $\varepsilon = 10^{-5}$, how many of the four targets will the trained GFlowNet write with
# probability at least 1%?
#
# - (a) All four: the loss's optimum covers every mode.
# - (b) Fewer than four, at least for some seeds.
# - (c) None: with a sparse reward it learns nothing, like REINFORCE in chapter 8.
#
# <details><summary>Answer</summary>(b). Random writing finds a given target with probability
# $2^{-10}$ per string, so early batches do find some targets, and the sampler moves its mass
# onto those. A target it has not yet written then gets probability near $\varepsilon$, is
# almost never sampled, and the loss, which only sees sampled strings, cannot miss it. The next
# cell shows targets lost on-policy (seed 1 keeps two of four; in full mode seed 0 keeps
# three), and two remedies: *off-policy exploration* (train on strings where each bit is
# uniform with probability 0.15; allowed because trajectory balance holds for any sampler that
# can write every string), or a *larger floor* $\varepsilon = 10^{-3}$, which makes the target
# itself less peaked. Both find all four.</details>

# %%
SPARSE_SEEDS = [1] if QUICK else [0, 1]
sparse_gfn = {}
for seed in SPARSE_SEEDS:
    for floor, epsilon in ((1e-5, 0.0), (1e-5, 0.15), (1e-3, 0.0)):
        c = GenerateConfig(method="gflownet", length=10, reward="multimodal", sharpness=math.inf,
                           floor=floor, epsilon=epsilon, steps=450 if QUICK else 600,
                           batch_size=64, eval_every=50, eval_samples=128, seed=seed)
        r = sparse_gfn[seed, floor, epsilon] = train_generator(c)
        print(f"seed {seed}, floor {floor:g}, exploration {epsilon}: targets kept "
              f"{r.final['modes_covered']} of 4, mass on each "
              f"{[round(m, 2) for m in r.final['mode_mass']]}, TV to R/Z {r.final['tv']:.3f}")
for seed in SPARSE_SEEDS:
    assert sparse_gfn[seed, 1e-5, 0.0].final["modes_covered"] < 4  # on-policy loses targets
    assert sparse_gfn[seed, 1e-5, 0.15].final["modes_covered"] == 4  # exploration finds them all
    assert sparse_gfn[seed, 1e-5, 0.15].final["tv"] < 0.1  # ... and samples close to R/Z
    assert sparse_gfn[seed, 1e-3, 0.0].final["modes_covered"] == 4  # so does a larger floor
assert sparse_gfn[1, 1e-5, 0.0].final["modes_covered"] == 2
if not QUICK:
    assert sparse_gfn[0, 1e-5, 0.0].final["modes_covered"] == 3

# %% [markdown]
# ## 5. Hindsight for sequences
#
# Now give the writer an *instruction*: a goal-conditioned policy $\pi(y \mid g)$ for the task
# "write $g$" (a copy task that makes the point plainly; the instruction could as well be a
# property of the output, such as its number of ones). The sparse reward $\mathbb{1}[y = g]$ is
# as hopeless as before at $L = 50$. But every string $y$ the policy writes is a *correct* answer
# to the instruction "write $y$". Relabel the instruction, and the failed sample becomes a
# supervised example: maximise $\log \pi(y \mid g{=}y)$. Here is one, from the untrained policy
# at $L = 12$:

# %%
writer = seeded_policy(12, (64,), seed=0, device=CPU, condition_length=12)
instruction = random_strings(1, 12, torch.Generator().manual_seed(3))
written = writer.sample(1, torch.Generator().manual_seed(4), condition=instruction)
as_text = lambda bits: "".join(str(int(b)) for b in bits[0])  # noqa: E731
print(f"instruction {as_text(instruction)} -> wrote {as_text(written)}: reward "
      f"{int(torch.equal(written, instruction))}")
print(f"relabelled: instruction {as_text(written)} -> wrote {as_text(written)}: reward 1, "
      f"a correct example to imitate")
assert not torch.equal(written, instruction)

# %% [markdown]
# The relabelling is HER's idea (Andrychowicz et al. 2017, chapter 4), but what learns from it
# differs. HER hands relabelled transitions to an off-policy TD learner (DQN), which still learns
# values by bootstrapping. Here the relabelled samples are imitated directly, by maximum
# likelihood: no reward, no value function, no bootstrapping. That is **goal-conditioned
# supervised learning** (GCSL; Ghosh et al. 2021), which relabels and imitates, iteration after
# iteration; for language models and their instructions, hindsight instruction relabelling
# (Zhang et al. 2023). Imitating is only safe when the relabelled behaviour is a good way to
# reach the relabelled goal: here it is the *only* way (one string, one sequence of bits), so
# every relabelled example is optimal.
#
# **Check your understanding 3 (predict before you run the next cell).** At $L = 50$, we train the
# copy task twice on instructions drawn at random: with sparse REINFORCE, and with hindsight, and
# test both on 512 instructions neither has seen.
#
# - (a) Both fail: $2^{-50}$ is $2^{-50}$.
# - (b) REINFORCE fails; hindsight copies more than 90% of the new instructions exactly.
# - (c) Both succeed: the target is an input now, no longer hidden.
# - (d) Hindsight copies the instructions it trained on, but not new ones.
#
# <details><summary>Answer</summary>(b). REINFORCE sees no success in its batches (a random
# string matches its instruction with probability $2^{-50}$), so, as in chapter 8, its weights
# never move: an input alone does not make a reward less sparse. Hindsight never sees a reward
# either, but every sample is a supervised example, and the writer learns the rule "copy bit
# $t$ of the instruction", which works for instructions it has never seen (it never sees the
# same random instruction twice anyway).</details>

# %%
HL = 50
h_config = GenerateConfig(method="hindsight", length=HL, steps=300, batch_size=128, lr=3e-3,
                          hidden=(256,), eval_every=50, eval_samples=512)
hindsight = train_hindsight(h_config)
plain = train_hindsight(h_config.replace(steps=60), relabel=False)
plain_start = parameters_vector(seeded_policy(HL, h_config.hidden, 0, CPU, condition_length=HL))
print(f"L = {HL}, new instructions, copied exactly: hindsight {hindsight.final['success']:.3f} "
      f"(bits right {hindsight.final['bit_accuracy']:.4f}); sparse REINFORCE "
      f"{plain.final['success']:.3f}, successes seen {plain.rewards_seen}, weights unchanged "
      f"{torch.equal(parameters_vector(plain.policy), plain_start)}")
assert hindsight.final["success"] > 0.9
assert plain.rewards_seen == 0 and torch.equal(parameters_vector(plain.policy), plain_start)

# %% [markdown]
# What hindsight needs is the catch: *the target must be an input* of the policy, and the reward
# must be a known function of output and instruction, so that any output can be relabelled. The
# task as the write-up's first draft states it (pick one target string in advance; reward 1 for
# generating exactly it, 0 for anything else) hides $y^*$ in a black-box reward and gives
# neither: there, only exploration or a denser reward helps.
#
# ## 6. Other ways past a sparse reward
#
# Hindsight is one way past a sparse reward; chapter 8 met another, a denser reward. Here are the
# main others, and what each needs.
#
# * *Exploration bonuses* pay for novelty: a bonus that shrinks with the number of visits to a
#   state (count-based exploration; Bellemare et al. 2016 extend counts to state spaces too
#   large to count), or with how well a network predicts a fixed random network's output on the
#   state (random network distillation, RND; Burda et al. 2019).
# * *Curricula over goals* start with goals the agent can already reach and move outwards;
#   Florensa et al. (2018) generate goals of intermediate difficulty. HER is a curriculum of this
#   kind, built automatically from the goals that were reached.
# * *Go-Explore* (Ecoffet et al. 2021) remembers the states it has reached, returns to promising
#   ones and explores from there; it solved Atari games that had defeated every earlier method.
#
# None of them helps much with the task as the write-up's first draft states it: one string
# hidden in a reward that says only "exactly right" or "wrong". With nothing to tell a near miss
# from a far one, the best any strategy can do is never to write the same string twice (a
# perfect novelty bonus). That takes on average $(2^L + 1)/2$ strings to find the target, against
# $2^L$ for random writing: a factor of 2, and no more. The next cell checks both numbers at
# $L = 8$, over 2000 hidden targets. Bonuses and Go-Explore pay off where new states lead
# somewhere, as in a maze; curricula need easier versions of the task whose rewards say
# something ("get the first $k$ bits right" would do, but rewarding it is chapter 8's dense reward
# under another name). Each method buys its progress with information or structure: hindsight
# needs the target as an input and a known reward function, shaping and curricula a measure of
# progress, bonuses and Go-Explore states worth returning to.

# %%
L_SEARCH, TRIALS = 8, 2000
rng = torch.Generator().manual_seed(0)
hidden = torch.randint(0, 2**L_SEARCH, (TRIALS,), generator=rng)  # one hidden target per trial
# Random writing: each string is a fresh uniform draw (16 x 2^L of them per trial, in int16).
draws = torch.randint(0, 2**L_SEARCH, (TRIALS, 16 * 2**L_SEARCH), generator=rng, dtype=torch.int16)
hits = draws == hidden[:, None]
assert bool(hits.any(1).all())  # every trial found its target (a miss has chance e^-16 each)
random_first = hits.float().argmax(1) + 1
# Never twice (a perfect novelty bonus): the strings in a random order, each written once.
orders = torch.argsort(torch.rand(TRIALS, 2**L_SEARCH, generator=rng), dim=1)
novel_first = (orders == hidden[:, None]).float().argmax(1) + 1
for name, first, exact in (("random writing", random_first, 2**L_SEARCH),
                           ("never the same string twice", novel_first, (2**L_SEARCH + 1) / 2)):
    mean, se = float(first.float().mean()), float(first.float().std()) / math.sqrt(TRIALS)
    print(f"{name}: {mean:.1f} strings on average to find the target (exact {exact:g})")
    assert abs(mean - exact) < 4 * se

# %% [markdown]
# ## 7. Soft Q-values: GFlowNets are entropy-regularised RL on a tree
#
# Chapters 2 to 5 learned $Q$-values with the Bellman optimality equation, whose backup takes a
# maximum. Replace the maximum by a *soft* maximum and you get the RL behind both chapter 8's
# KL-regularised objective and GFlowNets. On the generation tree, define **soft values** by
# backward induction from the leaves, for a reference policy $\pi_{\mathrm{ref}}$ and a weight
# $\beta > 0$:
# $$V(y) = r(y) \text{ at a finished string}, \qquad Q(s, a) = V(s a),$$
# $$V(s) = \beta \log \sum_a \pi_{\mathrm{ref}}(a \mid s)\, e^{Q(s, a)/\beta},$$
# where $s a$ is the prefix $s$ with bit $a$ appended (a deterministic step that pays nothing on the
# way). As $\beta \to 0$ the soft maximum becomes $\max_a Q(s, a)$, the backup of chapter 2.
# Unrolling the recursion gives $V(\text{start}) = \beta \log \sum_y \pi_{\mathrm{ref}}(y)
# e^{r(y)/\beta} = \beta \log Z$, and the policy $\pi^*(a \mid s) = \pi_{\mathrm{ref}}(a \mid s)\,
# e^{(Q(s, a) - V(s))/\beta}$ multiplies out, along a string, to chapter 8's optimum
# $\pi_{\mathrm{ref}}(y) e^{r(y)/\beta} / Z$. With a uniform $\pi_{\mathrm{ref}}$, the KL divergence
# is $\mathrm{KL}(\pi \,\|\, \pi_{\mathrm{ref}}) = L \log 2 - H(\pi)$, with $H$ the entropy, so
# chapter 8's objective is $\mathbb{E}[r] + \beta H(\pi)$ up to a constant: *entropy-regularised*
# (maximum-entropy) RL.
#
# Now take $\beta = 1$, a uniform $\pi_{\mathrm{ref}}$ and the reward $r(y) = \log R(y)$. The
# optimum is $\pi^*(y) \propto 2^{-L} e^{\log R(y)} \propto R(y)$: the GFlowNet's target. Along
# one string the soft-optimal policy satisfies $\log \pi^*(a_t \mid s_t) = \log\frac12 +
# Q(s_t, a_t) - V(s_t)$, and since $Q(s_t, a_t) = V(s_{t+1})$, summing over the string gives
# $V(\text{start}) = \log R(y) - \log \pi^*(y) - L \log 2$ for *every* string $y$. With
# $V(\text{start}) = \log Z - L \log 2$ this is $\log Z + \log \pi^*(y) - \log R(y) = 0$:
# trajectory balance. Such a relation between the values at the two ends of a path and the
# log-probabilities along it is **path consistency**, which Nachum et al. (2017) made into a
# loss (path consistency learning). On a tree a GFlowNet *is* entropy-regularised RL with reward
# $\log R$. Tiapkin et al. (2024) extend this to any directed acyclic graph, with the reward
# corrected by $\log P_B$ (zero on a tree), and Deleu et al. (2024) show that several GFlowNet
# losses equal known entropy-regularised RL algorithms, path consistency among them.
#
# The next cell checks this on section 3's reward: exactly, by backward induction, and on the
# trained GFlowNet, whose learned $\log Z$ should be $V(\text{start}) + L \log 2$ and whose
# strings should be nearly path-consistent where it samples.

# %%
log_R = gfn_run.reward.log_reward(strings8).double()
uniform = [torch.full((2**t, 2), math.log(0.5), dtype=torch.float64) for t in range(8)]
V, Q = soft_values(log_R, uniform, beta=1.0)
soft_policy = policy_from_soft_q(V, Q, uniform, beta=1.0)
tv_soft = total_variation(soft_policy, target)
start_value = float(V[0][0])
residual = float(gfn_run.log_Z) + exact_log_probs(gfn_run.policy) - log_R  # TB, every string
print(f"soft-Q policy against R/Z: TV {tv_soft:.1e}; V(start) + L log 2 = "
      f"{start_value + 8 * math.log(2):.4f}, log Z = {true_log_Z:.4f}, the GFlowNet's log Z = "
      f"{float(gfn_run.log_Z):.4f}")
print(f"trained GFlowNet: mean |log Z + log pi(y) - log R(y)| under R/Z "
      f"{float(target @ residual.abs()):.3f}")
V_hard = soft_values(log_R, uniform, beta=0.001)[0]
print(f"beta = 0.001: V(start) = {float(V_hard[0][0]):.4f}, max log R = {float(log_R.max()):.4f}")
assert tv_soft < 1e-6 and abs(start_value + 8 * math.log(2) - true_log_Z) < 1e-6
assert abs(float(gfn_run.log_Z) - (start_value + 8 * math.log(2))) < 0.1
assert float(target @ residual.abs()) < 0.1
assert abs(float(V_hard[0][0]) - float(log_R.max())) < 0.01  # soft max -> max: Q-learning's backup

# %% [markdown]
# The last line is the link back to chapters 2 to 5: shrink $\beta$ and the soft backup becomes
# the hard one. The other direction works too. Q-learning with the soft backup, trained on
# sampled strings, learns the GFlowNet's sampler: start from a table $Q = 0$ over the 255
# prefixes and 2 bits, write 64 strings per iteration with $\pi(a \mid s) \propto \frac12
# e^{Q(s, a)}$, and move each visited $Q(s, a)$ halfway towards its target, $\log R(y)$ at the
# last bit and $\log \sum_{a'} \frac12 e^{Q(s a, a')}$ otherwise: chapter 2's tabular update with
# a soft maximum. (Tiapkin et al. 2024 train GFlowNets this way with deep networks, soft DQN and
# its Munchausen variant.)

# %%
SOFT_Q_ITERATIONS = 300
table = [torch.zeros(2**t, 2, dtype=torch.float64) for t in range(8)]  # Q(prefix, bit)
rng = torch.Generator().manual_seed(0)
for iteration in range(SOFT_Q_ITERATIONS):
    prefix, path = torch.zeros(64, dtype=torch.long), []
    for t in range(8):  # write 64 strings with pi(a | s) proportional to 1/2 exp(Q(s, a))
        probs = torch.softmax(table[t][prefix], dim=1)
        bit = torch.multinomial(probs, 1, generator=rng).squeeze(1)
        path.append((prefix, bit))
        prefix = 2 * prefix + bit  # the child's index at depth t + 1
    for t, (prefix, bit) in enumerate(path):  # the soft Bellman backup, then a half step
        child = 2 * prefix + bit
        if t == 7:
            backup = log_R[child]
        else:
            backup = torch.logsumexp(math.log(0.5) + table[t + 1][child], dim=1)
        entry = 2 * prefix + bit  # (prefix, bit) in the flattened [2^t * 2] table
        error = torch.zeros(2 ** (t + 1), dtype=torch.float64).index_add_(
            0, entry, backup - table[t].view(-1)[entry])
        visits = torch.zeros(2 ** (t + 1), dtype=torch.float64).index_add_(
            0, entry, torch.ones_like(backup))
        table[t].view(-1).add_(0.5 * error / visits.clamp_min(1))  # the mean error of each entry
values = [torch.logsumexp(math.log(0.5) + q, dim=1) for q in table] + [log_R]
soft_q_tv = total_variation(policy_from_soft_q(values, table, uniform, beta=1.0), target)
print(f"tabular soft Q-learning, {SOFT_Q_ITERATIONS} iterations of 64 strings: TV to R/Z "
      f"{soft_q_tv:.4f}; V(start) {float(values[0][0]):.3f} (exact {start_value:.3f})")
assert soft_q_tv < 0.01 and abs(float(values[0][0]) - start_value) < 0.05

# %% [markdown]
# A Q-table with a soft maximum samples in proportion to the reward, within a TV under 0.01,
# closer than the GFlowNet network of section 3 came. The forward policy of a GFlowNet is a
# soft-Q policy, and its $\log Z$ is a soft value plus $L \log 2$.
#
# The same holds for chapter 8's KL-regularised writer: its per-bit log-ratio
# $\beta \log \frac{\pi^*(a \mid s)}{\pi_{\mathrm{ref}}(a \mid s)} = Q(s, a) - V(s)$ is a soft
# advantage, which is why Rafailov et al. (2024) say that a language model trained with such an
# objective "is secretly a Q-function". The last cell of this section retrains chapter 8's
# writer (chapter 8, section 6: $L = 8$, $R = -d(y, y^*)$, $\beta = 1$, $\pi_{\mathrm{ref}}$ the
# initial network) and compares its log-ratios at every prefix with the soft values computed
# from its own $\pi_{\mathrm{ref}}$.

# %%
kl_run = train_generator(GenerateConfig(method="kl", length=8, reward="distance", beta=1.0,
                                        steps=300 if QUICK else 600, batch_size=128, lr=1e-3,
                                        eval_every=100, eval_samples=256))
ref_conditionals = conditional_log_probs(kl_run.reference)
V_kl, Q_kl = soft_values(kl_run.reward(strings8).double(), ref_conditionals, beta=1.0)
learned = conditional_log_probs(kl_run.policy)
ratio_error = max(float(((lp - ref) - (q - v[:, None])).abs().max())
                  for lp, ref, q, v in zip(learned, ref_conditionals, Q_kl, V_kl))
print(f"chapter 8's writer: TV to pi* {kl_run.final['tv']:.4f}; largest |log pi/pi_ref - (Q - V)| "
      f"over all 255 prefixes and both bits {ratio_error:.3f}")
assert ratio_error < 0.25

# %% [markdown]
# ## 8. Try it yourself
#
# The playground trains two samplers side by side from the same network: on the left chapter
# 8's REINFORCE on $\mathbb{E}[R] - \beta\,\mathrm{KL}(\pi\|\pi_{\mathrm{ref}})$, whose target is
# $\pi_{\mathrm{ref}} e^{R/\beta}/Z$; on the right the GFlowNet, whose target is $R/Z$ (grey).
# The triangles mark the hidden targets. Things to try: the multi-modal reward at $\beta = 1$,
# then $\beta = 0.05$: the left panel's target collapses onto one mode, the right one's does
# not. The sparse reward at $L = 10$ (it gets the floor $10^{-3}$): which panel finds the target?
# The cell after the playground runs it for a few steps, to check it works.

# %%
from bitflip_lib.ui.playground import GenerationPlayground

play = GenerationPlayground(methods=("kl", "gflownet"), length=6, reward="multimodal", beta=0.5,
                            steps=300)
play

# %%
demo = play.run(steps=20)  # tiny: press Train for real runs
assert set(demo) == {"kl", "gflownet"} and play.outcome == "finished" and play.error is None
assert all(result.final["step"] == 20 for result in demo.values())

# %% [markdown]
# ## Check your understanding
#
# Questions 1 to 3 were predictions, in sections 3, 4 and 5: if you skipped one, go back and
# answer it before opening its answer. One more:
#
# **4.** Section 4 trained a GFlowNet on strings written with exploration: each bit uniform with
# probability 0.15. Does the trained sampler then lean towards the explorer's random bits? And
# could REINFORCE learn from the same strings, unchanged?
# <details><summary>Answer</summary>No, and no. Trajectory balance is a condition on each
# trajectory, whoever wrote it, so the explorer only decides which strings the loss looks at;
# section 4 measured the trained sampler on its own: TV to $R/Z$ under 0.1, all four targets.
# REINFORCE's gradient is an expectation under the policy being trained; strings from another
# policy estimate a different gradient, unless each is weighted by the ratio of its
# probabilities under the two policies (importance sampling).</details>
#
# > **Common pitfalls.** (1) A reward of exactly 0 somewhere: $\log R = -\infty$ breaks the
# > loss; add a floor. (2) Forgetting that $\log Z$ is learned: it needs its own, larger
# > learning rate, and a wrong $\log Z$ shows up as a loss that will not go to zero. (3) Setting
# > $P_B = 1$ where states have several parents: the balance then holds for the wrong
# > distribution. (4) Judging a GFlowNet by its best sample: its goal is the whole
# > distribution, so measure the distance to $R/Z$ (exactly, where the strings can be
# > enumerated) and the modes it keeps. (5) Hindsight where the reward is not a known function
# > of output and instruction: then a relabelled example may be wrong.
#
# ## Summary
#
# * A GFlowNet samples $x$ with probability $R(x)/Z$. It builds $x$ with a forward policy
#   $P_F$ and is trained with a backward policy $P_B$; trajectory balance, $Z \prod P_F = R(x)
#   \prod P_B$ on every trajectory, implies $P_F(x) = R(x)/Z$. On a tree $P_B = 1$.
# * On a reward with four targets, the GFlowNet matched $R/Z$ (TV under 0.05) and learned
#   $\log Z$, where REINFORCE put over 90% on one target.
# * With an exact-match reward, an on-policy GFlowNet loses targets it never samples;
#   off-policy exploration or a larger floor find them all.
# * Hindsight relabelling turns every output into a correct example when the target is an input
#   and the reward a known function: imitation (GCSL), not HER's TD learning. It copied 50-bit
#   instructions it had never seen, where sparse REINFORCE never moved.
# * Exploration bonuses, curricula and Go-Explore need structure or information too; against a
#   black-box exact-match reward, never writing a string twice only halves the search.
# * Soft values on the tree give chapter 8's KL optimum and, with reward $\log R$ and
#   $\beta = 1$, the GFlowNet: path consistency is trajectory balance, a soft-max Q-table learns
#   the same sampler, and as $\beta \to 0$ the soft backup becomes Q-learning's max.
#
# **Exercise.** `exercises/ex10_trajectory_balance`: write the trajectory-balance loss with a
# learned $\log Z$ and watch it find $\log \sum_y R(y)$ (grade it with `bitflip grade ex10`).
# This is the last chapter; the [glossary](glossary.md) collects the terms of the course.
#
# ## References
#
# * Chau Yu Hei (HKUST). *Documentation of Bit Sequence mini RL project* (the write-up this
#   course follows, and its first draft). Code: https://github.com/louis845/BitSeqRLToyProblem.
# * E. Bengio, M. Jain, M. Korablyov, D. Precup, Y. Bengio. Flow network based generative models
#   for non-iterative diverse candidate generation. *NeurIPS*, 2021.
# * N. Malkin, M. Jain, E. Bengio, C. Sun, Y. Bengio. Trajectory balance: improved credit
#   assignment in GFlowNets. *NeurIPS*, 2022.
# * M. Andrychowicz, F. Wolski, A. Ray, J. Schneider, R. Fong, P. Welinder, B. McGrew, J. Tobin,
#   P. Abbeel, W. Zaremba. Hindsight experience replay. *NeurIPS*, 2017.
# * D. Ghosh, A. Gupta, A. Reddy, J. Fu, C. Devin, B. Eysenbach, S. Levine. Learning to reach
#   goals via iterated supervised learning. *ICLR*, 2021 (GCSL).
# * T. Zhang, F. Liu, J. Wong, P. Abbeel, J. E. Gonzalez. The wisdom of hindsight makes language
#   models better instruction followers. *ICML*, 2023 (hindsight instruction relabelling).
# * M. G. Bellemare, S. Srinivasan, G. Ostrovski, T. Schaul, D. Saxton, R. Munos. Unifying
#   count-based exploration and intrinsic motivation. *NeurIPS*, 2016.
# * Y. Burda, H. Edwards, A. Storkey, O. Klimov. Exploration by random network distillation.
#   *ICLR*, 2019.
# * C. Florensa, D. Held, X. Geng, P. Abbeel. Automatic goal generation for reinforcement
#   learning agents. *ICML*, 2018.
# * A. Ecoffet, J. Huizinga, J. Lehman, K. O. Stanley, J. Clune. First return, then explore.
#   *Nature* 590, 580-586, 2021 (Go-Explore).
# * O. Nachum, M. Norouzi, K. Xu, D. Schuurmans. Bridging the gap between value and policy based
#   reinforcement learning. *NeurIPS*, 2017 (path consistency learning).
# * D. Tiapkin, N. Morozov, A. Naumov, D. Vetrov. Generative flow networks as entropy-regularized
#   RL. *AISTATS*, 2024.
# * T. Deleu, P. Nouri, N. Malkin, D. Precup, Y. Bengio. Discrete probabilistic inference as
#   control in multi-path environments. *UAI*, 2024.
# * R. Rafailov, J. Hejna, R. Park, C. Finn. From $r$ to $Q^*$: your language model is secretly
#   a Q-function. arXiv:2404.12358, 2024.
# * E. J. Hu, M. Jain, E. Elmoznino, Y. Kaddar, G. Lajoie, Y. Bengio, N. Malkin. Amortizing
#   intractable inference in large language models. *ICLR*, 2024.

# %%
print(f"Chapter 9 ran in {time.time() - CHAPTER_START:.1f} s ({'quick' if QUICK else 'full'} mode)")
