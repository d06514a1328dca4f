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
# # Chapter 5. Stabilising DQN: Polyak averaging and target clipping
#
# Chapters 3 and 4 trained goal-conditioned Q-networks with two tricks switched on that we
# never looked at: a slowly moving *target network* (Polyak averaging) and *clipped TD
# targets*. The write-up this course is built on (Chau, appendices 4.3 and 4.4; see the
# references) found both the hard way: first the loss was noisy and blew up now and then, then,
# with a discount close to 1, the loss kept growing, and more so with Hindsight Experience Replay.
# This chapter switches the tricks off one at a time and watches what breaks.
#
# **Learning goals.** After this chapter you can
# 1. write the Polyak update of a target network and say what its fraction tau controls;
# 2. prove that, with reward 1 at the goal and 0 elsewhere, every optimal Q-value lies in
#    [0, 1], and explain why clipping targets to that interval can only help;
# 3. explain why bootstrapped Q-values drift upwards (the max over noisy estimates), why a
#    *relative* over-estimate $c$ makes them diverge once $\gamma(1 + c) > 1$, and why a buffer
#    full of rewards (HER) makes the drift worse;
# 4. run an ablation on the same seeds, read its curves, and say honestly which effects show;
# 5. write the Double DQN target, and say why it removes the bias of the max's pick but not a
#    runaway of all values together.
#
# **Study time.** About 60 minutes of reading and trying things.
# **Run time.** About 5 minutes on a laptop CPU.
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

import matplotlib.pyplot as plt
import torch

from bitflip_lib import default_device, quick_mode
from bitflip_lib.config import make_config
from bitflip_lib.diagnosis.analysis import (
    max_metric,
    metric_matrix,
    rewarded_fraction,
    run_ablation,
)
from bitflip_lib.dqn import polyak_update, td_target
from bitflip_lib.theory import optimal_q

QUICK = quick_mode()
print(f"Running in {'quick' if QUICK else 'full'} mode")
# Also sets the library's one CPU thread: as fast for these tiny networks.
default_device(announce=True)
torch.manual_seed(0);

# %% [markdown]
# ## 1. The target moves while you chase it
#
# One DQN step fits $Q_\theta(s, g, a)$ to the one-step target
#
# $$ y = r + \gamma\,(1 - \text{done})\,\max_{a'} Q_{\text{target}}(s', g, a'). $$
#
# If $Q_{\text{target}}$ is the online network $Q_\theta$ itself, every gradient step on
# $\theta$ also changes the targets of every other state-goal pair, including the ones the
# next batch will be fitted to. Regression towards a target that moves because of the
# regression can oscillate or run away. Combined with off-policy data and function
# approximation, bootstrapping is one leg of what Sutton and Barto call the **deadly triad**.
#
# A **target network** is a second copy of the parameters, $\bar\theta$, used only to compute
# $y$. DQN as published (Mnih et al. 2015) kept it frozen and copied the online parameters into it
# every $C = 10{,}000$ steps, and standard DQN code still does so by default (Stable-Baselines3's
# DQN: `tau=1.0`, `target_update_interval=10000`). The write-up instead moves it a small step
# towards the online parameters after every gradient step, **Polyak averaging**, the convention of
# DDPG (Lillicrap et al. 2016) and of its successors TD3 (Fujimoto et al. 2018) and SAC (Haarnoja
# et al. 2018), and of the HER paper's code:
#
# $$ \bar\theta \leftarrow (1 - \tau)\,\bar\theta + \tau\,\theta . $$
#
# The write-up used $\tau = 0.01$; this course's default is 0.05. Unrolled, $\bar\theta$ is an
# exponential moving average of past online parameters: the online parameters of $k$ steps ago
# carry weight $\tau (1-\tau)^k$, so the target lags by about $1/\tau$ gradient steps (100
# for the write-up, 20 here). `bitflip_lib.dqn.polyak_update` does it in place; a two-parameter
# check:

# %%
online, target = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
with torch.no_grad():
    online.weight.fill_(1.0)
    target.weight.fill_(0.0)
tau, weights = 0.05, []
for _ in range(100):
    polyak_update(target, online, tau)
    weights.append(float(target.weight.detach()))  # a weight that requires grad: detach first
# After k updates towards a fixed online weight 1 the target has covered 1 - (1 - tau)^k of the way.
assert all(math.isclose(w, 1 - (1 - tau) ** (k + 1), rel_tol=1e-5) for k, w in enumerate(weights))
print(f"after 1/tau = {1 / tau:.0f} updates the target has covered {weights[19]:.3f} of the way "
      f"(1 - 1/e = {1 - 1 / math.e:.3f})")

# %% [markdown]
# ## 2. Why every optimal Q-value lies in [0, 1]
#
# The reward is 1 on the step that reaches the goal (the episode then ends) and 0 otherwise.
#
# **Claim.** For every state $s \neq g$, goal $g$ and action $a$: $0 \le Q^*(s, g, a) \le 1$.
#
# **Proof (induction over value iteration).** Start from $Q_0 \equiv 0$ and apply the Bellman
# optimality operator,
# $Q_{k+1}(s, g, a) = r(s, a, g) + \gamma\,[s' \neq g]\,\max_{a'} Q_k(s', g, a')$,
# where $s'$ is $s$ with bit $a$ flipped.
# *Base:* $Q_0 = 0 \in [0, 1]$.
# *Step:* suppose every entry of $Q_k$ is in $[0, 1]$. If the flip reaches the goal, the
# episode ends there: $Q_{k+1} = 1 + 0 = 1$. If it does not, the reward is 0 and
# $Q_{k+1} = \gamma \max_{a'} Q_k(s', g, a') \in [0, \gamma] \subset [0, 1]$. Either way
# $Q_{k+1}$ is in $[0, 1]$.
# For $\gamma < 1$ the Bellman operator is a contraction, so $Q_k \to Q^*$; the limit of a
# sequence inside the closed interval $[0, 1]$ stays inside it. $\square$
#
# (Chapter 2 found the exact values, $Q^* = \gamma^{d-1}$ for flipping a wrong bit at distance
# $d$ and $\gamma^{d+1}$ for flipping a right one: inside $[0, 1]$, as promised.)
#
# **Why clipping a target can only help here.** Clipping is the projection onto $[0, 1]$, and
# projecting onto an interval that contains the true value never moves you away from it:
# $|\text{clip}(y) - Q^*| \le |y - Q^*|$ for every $y$. That is a statement about *one* target.
# A regression fits the *mean* of the targets it sees for an input, and if those were noisy,
# clipping would bias the mean: for $y$ equal to $Q^* = 0.98$ plus Gaussian noise of standard
# deviation 0.3, $\mathbb{E}[y] = 0.98$ but $\mathbb{E}[\text{clip}(y)] = 0.87$ (the noise above
# 1 is cut off, the noise below is kept). In bit flipping this cannot happen: the environment is
# deterministic, so a given $(s, g, a)$ always has the same reward and next state, and its target
# is one number given the target network. Clipping it only removes estimation error, so
# `td_target(..., clip=True)` cannot add any.

# %%
gamma = 0.99
true_q = torch.tensor([optimal_q(d, differs, gamma) for d in range(1, 11) for differs in (0, 1)])
assert bool(((0 <= true_q) & (true_q <= 1)).all())
noisy_targets = true_q + 0.5 * torch.randn(10_000, true_q.numel())
clipped = noisy_targets.clamp(0, 1)
assert bool(((clipped - true_q).abs() <= (noisy_targets - true_q).abs() + 1e-7).all())
error_before = float((noisy_targets - true_q).abs().mean())
error_after = float((clipped - true_q).abs().mean())
print(f"all {true_q.numel()} exact Q* values for n = 10 lie in "
      f"[{float(true_q.min()):.3f}, {float(true_q.max()):.3f}]; clipping cut the mean absolute "
      f"target error from {error_before:.3f} to {error_after:.3f}")

# One noisy input: regression would fit E[clip(y)], which clipping pulls away from Q* = 0.98.
mu, sigma = 0.98, 0.3
cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # the standard normal's
pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
lo, hi = (0 - mu) / sigma, (1 - mu) / sigma
mean_clipped = mu * (cdf(hi) - cdf(lo)) + sigma * (pdf(lo) - pdf(hi)) + (1 - cdf(hi))  # exact
sampled = float((mu + sigma * torch.randn(10**6, dtype=torch.float64)).clamp(0, 1).mean())
print(f"y = 0.98 + noise (sd 0.3): E[clip(y)] = {mean_clipped:.4f} exactly, {sampled:.4f} sampled")
assert round(mean_clipped, 2) == 0.87 and abs(sampled - mean_clipped) < 0.002

# And the library's TD target does exactly this:
y = td_target(torch.tensor([0.0, 1.0]), torch.tensor([False, True]),
              torch.tensor([[3.0, 2.0], [5.0, 0.0]]), gamma)
assert y.tolist() == [1.0, 1.0]

# %% [markdown]
# ## 3. Why Q-values drift upwards, and when they blow up
#
# The target takes a *maximum over noisy estimates*. Even if every estimate is unbiased,
# $\mathbb{E}[\max_a \hat Q_a] \ge \max_a \mathbb{E}[\hat Q_a]$: the max picks whichever
# estimate happens to be too high, and with n actions there are n chances to be too high
# (**over-estimation**). Each update bakes that excess into $Q$, and the next target bootstraps
# on it. How bad can it get? Two models of one backup $q_{k+1} = \gamma \max_{a'} \hat Q$ far
# from the goal (reward 0) give two different answers.
#
# * **Additive bias**, $\max_{a'} \hat Q = q_k + b$: then $q_{k+1} = \gamma (q_k + b)$ settles
#   at the fixed point $q = \gamma b / (1 - \gamma)$, which is $49\,b$ at $\gamma = 0.98$:
#   *bounded*, and large only if $b$ is. An excess of a few hundredths per backup settles near 1;
#   values near 100 would take an excess of about 2 at every backup ($b = 3$ gives 147), more
#   than the values a network starts from.
# * **Multiplicative over-estimation**, $\max_{a'} \hat Q = (1 + c)\,q_k$: a network that
#   generalises tends to over-estimate in proportion to the values it has learned. Then
#   $q_{k+1} = \gamma (1 + c)\, q_k$ grows geometrically whenever $\gamma (1 + c) > 1$, that is
#   $c > 1/\gamma - 1$: *2% at $\gamma = 0.98$*, 1% at 0.99, but 11% at $\gamma = 0.9$.
#
# This is the write-up's own argument (its appendix 4.4): the max makes each target a little
# larger than the values it came from, and if that increase outweighs the shrinking by $\gamma$,
# "the Q-values explode to infinity". A 3% over-estimate is harmless at $\gamma = 0.9$ and fatal
# at $\gamma = 0.98$. Both are *models*: neither $b$ nor $c$ is measured here, and the
# multiplicative one is a hypothesis that fits what section 4 shows. It is not the only account
# of diverging values. The textbook one is the deadly triad of section 1: off-policy updates,
# bootstrapping and function approximation together can diverge without any max over noisy
# estimates (Baird 1995 gives a small example with a linear function; Tsitsiklis and Van Roy 1997
# prove that on-policy linear TD learning converges, and show how off-policy sampling or a
# nonlinear approximator can make it diverge). The two accounts do not exclude each other. The
# cell below iterates both models from $q_0 = 1$.

# %%
def iterate(model: str, gamma: float, excess: float, backups: int = 500, q0: float = 1.0) -> float:
    q = q0
    for _ in range(backups):
        q = gamma * (q + excess) if model == "additive" else gamma * (1 + excess) * q
    return q


print("500 backups from q = 1, with an excess of 0.03 per backup:")
print(f"{'gamma':>6s} {'additive b':>11s} {'its fixed point':>16s} {'multiplicative c':>17s} "
      f"{'c diverges above':>17s}")
for g in (0.9, 0.98, 0.99):
    print(f"{g:6.2f} {iterate('additive', g, 0.03):11.3f} {g * 0.03 / (1 - g):16.3f} "
          f"{iterate('multiplicative', g, 0.03):17.3g} {1 / g - 1:17.2%}")
# Additive: bounded, it settles at gamma b / (1 - gamma); b = 3 gives 147.
assert abs(iterate("additive", 0.98, 0.03) - 0.98 * 0.03 / 0.02) < 1e-3
assert round(0.98 * 3 / 0.02) == 147 and abs(iterate("additive", 0.98, 3.0) - 147) < 0.01
# Multiplicative: diverges at 0.98 only, with the threshold 1/0.98 - 1 = 2.04%.
assert iterate("multiplicative", 0.98, 0.03) > 10 > 1 > iterate("multiplicative", 0.9, 0.03)
assert iterate("multiplicative", 0.98, 0.019) < 1 < iterate("multiplicative", 0.98, 0.021)
assert math.isclose(1 / 0.98 - 1, 0.0204, abs_tol=1e-4)

# %% [markdown]
# Why would HER make the drift worse? Not because values stay at 0 without rewards: they drift up
# without them too (chapter 3 watched vanilla DQN's mean Q at $n = 15$ climb to 0.997 by
# iteration 16 with hardly a reward seen, and section 4 finds unclipped values above 1 without
# HER). What HER adds is targets *pinned at exactly 1*: a rewarded transition ends its episode, so
# its target is $r = 1$ with no bootstrapping, and with HER a large share of the buffer is such
# transitions (the next cell counts them). Without rewards nothing holds the values up: the only
# fixed point of $q = \gamma \max q$ with no reward is 0, and chapter 3's full mode saw the mean Q
# sink back to 0.23. With HER the values near the goal are held at 1, and a relative excess on top
# of them has a floor to grow from. This is a hypothesis that fits the ablation below; the
# ablation does not prove it.
#
# How much of the buffer carries a reward, with random play at n = 10?

# %%
N = 10
fractions = {her: rewarded_fraction(N, her, k=4, episodes=20)
             for her in ("none", "final", "future")}
for her, f in fractions.items():
    print(f"HER {her:>6s}: {f['stored']:7.2%} of stored transitions are rewarded "
          f"(played {f['played']:.2%}, relabelled {f['relabelled']:.2%})")
assert fractions["future"]["stored"] > 20 * fractions["none"]["stored"]
assert fractions["future"]["stored"] > fractions["final"]["stored"] > fractions["none"]["stored"]

# %% [markdown]
# With random play almost nothing a vanilla agent stores is rewarded; with HER `future` (k = 4)
# about a quarter of the buffer is.
#
# ## 4. The ablation
#
# **What the write-up did with $\gamma$.** Its appendix 4.4 says it "picked a relatively large
# $\gamma$ close to 1", since otherwise a reward many steps away is worth too little at n = 50;
# the text gives no value, and its public code uses $\gamma = 0.9$, at which a reward 49 flips
# away is worth $0.9^{49} \approx 0.006$. This course's default is $\max(0.98, 1 - 1/n)$
# (chapter 2 derives why, chapter 6 applies it).
#
# We now train the same generic network, the HER paper's MLP with one hidden layer of 256
# units, on n = 10 bits with the default $\gamma = 0.98$, and switch the two tricks off one at a
# time. One more variant uses the write-up's code value $\gamma = 0.9$ without clipping, to see
# whether the drift needs $\gamma$ near 1. Every variant runs on the same seeds, so the variants
# start from the same initial network. We keep going after the task is solved
# (`early_stop=False`) to see whether training stays stable.
#
# | variant | target network | clipped targets | HER | gamma |
# |---|---|---|---|---|
# | `plain` | no (bootstrap on itself) | no | future | 0.98 |
# | `polyak only` | tau = 0.05 | no | future | 0.98 |
# | `clip only` | no | yes | future | 0.98 |
# | `polyak + clip` | tau = 0.05 | yes | future | 0.98 |
# | `polyak only, no HER` | tau = 0.05 | no | none | 0.98 |
# | `polyak + clip, no HER` | tau = 0.05 | yes | none | 0.98 |
# | `polyak only, gamma 0.9` | tau = 0.05 | no | future | 0.9 |
#
# **Check your understanding 1 (predict before you run).** Which runs will blow up, with a peak
# mean Q above 10?
#
# * (a) Only `plain`: a target network is enough to keep the values bounded.
# * (b) `plain` and `polyak only`, the two unclipped runs with HER at $\gamma = 0.98$.
# * (c) Every unclipped run, with or without HER, at either discount.
# * (d) None: a couple of hundred iterations are too few for anything to blow up.
#
# <details><summary>Answer</summary>
#
# (b), asserted after the plots: both unclipped HER runs at $\gamma = 0.98$ go above 10, `plain`
# the highest. (a) overrates the target network: it slows the feedback loop down but does not
# bound the values. (c) misses the two conditions section 3 named: without HER few targets are
# pinned at 1, and at $\gamma = 0.9$ a relative excess needs more than 11% to grow. (d)
# underrates a geometric growth: a factor $\gamma(1 + c)$ slightly above 1 per backup compounds
# over thousands of gradient steps (quick mode sees it within 100 iterations).
# </details>
#
# **Check your understanding 2 (predict).** And `polyak only, no HER`, unclipped but with almost
# no rewards in its buffer: its peak mean Q will be (a) as high as the HER run's, (b) above 1 but
# more than ten times lower than the HER run's, (c) inside $[0, 1]$: without rewards there is
# nothing to over-estimate.
#
# <details><summary>Answer</summary>
#
# (b), asserted below. The values do drift up without rewards (chapter 3 saw it too), so (c) is
# wrong: the max over noisy estimates needs no reward to be optimistic. But with few rewards
# almost no target is pinned at 1, so a relative excess has no floor to grow from (section 3),
# and (a) does not happen either.
# </details>

# %%
SEEDS = (0,) if QUICK else (0, 1, 2)
ITERATIONS = 100 if QUICK else 200
base = make_config(n=N, arch="mlp", her="future", gamma=0.98, max_iterations=ITERATIONS,
                   early_stop=False, num_eval_agents=256, eval_every=5)
variants = {
    "plain": dict(polyak=None, clip_targets=False),
    "polyak only": dict(polyak=0.05, clip_targets=False),
    "clip only": dict(polyak=None, clip_targets=True),
    "polyak + clip": dict(polyak=0.05, clip_targets=True),
    "polyak only, no HER": dict(polyak=0.05, clip_targets=False, her="none"),
    "polyak + clip, no HER": dict(polyak=0.05, clip_targets=True, her="none"),
    "polyak only, gamma 0.9": dict(polyak=0.05, clip_targets=False, gamma=0.9),
}
results = run_ablation(base, variants, seeds=SEEDS)

# %%
palette = ["tab:red", "tab:orange", "tab:purple", "tab:green", "tab:brown", "tab:olive", "tab:blue"]
colors = dict(zip(variants, palette))
fig, axes = plt.subplots(1, 3, figsize=(9.0, 4.6), layout="constrained")
for name, runs in results.items():
    for metric, ax in zip(("mean_q", "loss", "success_rate"), axes):
        iterations, values = metric_matrix(runs, metric)
        keep = ~torch.isnan(values[0])
        for row, seed_values in enumerate(values):
            style = "--" if "no HER" in name else ":" if "0.9" in name else "-"
            ax.plot(iterations[keep], seed_values[keep], color=colors[name], alpha=0.85,
                    label=name if row == 0 else None, ls=style)
axes[0].axhline(1.0, color="k", lw=0.8, ls=":")
axes[0].set(yscale="symlog", ylabel="mean Q on the sampled batch",
            title="Q-values (symlog scale; dotted: 1)")
axes[1].set(yscale="log", ylabel="TD loss (MSE)", title="Loss")
axes[2].set(ylim=(-0.03, 1.03), ylabel="greedy success rate (256 agents)", title="Success")
for ax in axes:
    ax.set_xlabel("iteration")
    ax.grid(alpha=0.3)
fig.legend(*axes[2].get_legend_handles_labels(), loc="outside lower center", ncol=3,
           fontsize="small")
fig.suptitle(f"Stabilisation ablation: MLP, n = {N}, gamma = 0.98 unless named, "
             f"seeds {list(SEEDS)}")
plt.show()

# %%
peak_q = {name: max_metric(runs, "mean_q") for name, runs in results.items()}
late_loss = {name: max(float(metric_matrix([r], "loss")[1][:, -20:].nanmean()) for r in runs)
             for name, runs in results.items()}
final_success = {name: min(r.final["success_rate"] for r in runs) for name, runs in results.items()}
print(f"{'variant':24s} {'peak mean Q':>11s} {'late loss':>10s} {'final success':>14s}")
for name in variants:
    print(f"{name:24s} {peak_q[name]:11.3g} {late_loss[name]:10.3g} {final_success[name]:14.3f}")
print("late loss: the largest over seeds of the mean TD loss of the last 20 iterations; "
      "final success: the worst seed's")

# %% [markdown]
# What the curves say (the cell below checks each statement on the runs above):
#
# * **Without clipping, Q-values leave [0, 1] at gamma = 0.98.** With HER, both unclipped
#   variants blow up by orders of magnitude (peaks above 10), with or without a target network;
#   the loss grows with them and the greedy policy is useless. An additive excess would have to
#   exceed 0.2 at every backup to settle above 10 (it settles at $49\,b$); a relative excess of a
#   few percent, above the 2% threshold of section 3, is enough. That fits the multiplicative
#   model; it does not prove it (section 3).
# * **Without a target network the unclipped run is the worst of all**: nothing slows the
#   feedback loop down.
# * **HER makes the drift worse.** With a target network but no clipping, the vanilla (no HER)
#   run also ends up with Q-values above 1, but only a little; the HER run goes more than ten
#   times higher.
# * **The drift needs gamma near 1.** With $\gamma = 0.9$, the same unclipped run stays inside
#   [0, 1]: it would take a relative over-estimate above 11% to diverge there, against 2% at
#   $\gamma = 0.98$.
# * **With clipping, Q stays in [0, 1]**, the loss falls and stays small, and with HER the
#   policy learns, where the unclipped HER runs learn nothing.

# %%
for name in ("plain", "polyak only", "polyak only, no HER"):
    assert peak_q[name] > 1.0, (name, peak_q[name])
for name in ("clip only", "polyak + clip", "polyak + clip, no HER", "polyak only, gamma 0.9"):
    # (the online network may overshoot a target a little)
    assert peak_q[name] <= 1.05, (name, peak_q[name])
assert peak_q["plain"] > peak_q["polyak only"] > 10.0
assert peak_q["polyak only"] > 10 * peak_q["polyak only, no HER"]
assert late_loss["polyak + clip"] < 0.01 < min(late_loss["plain"], late_loss["polyak only"])
assert final_success["polyak + clip"] > max(final_success["plain"], final_success["polyak only"])

# %% [markdown]
# **Try it live.** The dashboard keeps every run you make and draws them on the same axes; its
# last panel shows the online network's mean and largest Q-value against the bound 1. It starts
# with the two runs below, without and with clipping (no target network, HER, $\gamma = 0.98$).
# Switch the target network on, change Polyak's fraction or $\gamma$, press *Train*, and
# compare; *Clear runs* starts afresh.

# %%
from bitflip_lib.ui.dashboards import TrainingDashboard

DASH_BUDGET = 3 if QUICK else 100
dash = TrainingDashboard(n=N, arch="mlp", her="future", gamma=0.98, polyak=None, clip_targets=False,
                         max_iterations=DASH_BUDGET, early_stop=False, num_eval_agents=256, eval_every=5)
unclipped = dash.run()
clipped = dash.run(clip_targets=True)
assert dash.runs[-2:] == [unclipped, clipped] and all(h["max_q"] is not None for h in clipped.history)
dash

# %% [markdown]
# ## 5. What did *not* show here
#
# The write-up first met a loss that "blows up occasionally" without a target network, even
# before it clipped targets. In this ablation, *once targets are clipped, removing the target
# network does not make training blow up*: `clip only` keeps Q in [0, 1] and its loss small,
# like `polyak + clip`. Clipping bounds every target, so the self-referential loop has nowhere
# to run. Whether the target network still speeds learning up once targets are clipped is
# within seed-to-seed noise in runs this short, so we claim nothing about it. The target
# network earns its keep in the unclipped runs above, and in chapter 6, where the Polyak
# fraction turns out to change how fast HAR learns.

# %%
assert peak_q["clip only"] <= 1.05 and late_loss["clip only"] < 0.01
print(f"clip only: peak mean Q {peak_q['clip only']:.3f}, late loss {late_loss['clip only']:.2g}, "
      f"final success {final_success['clip only']:.3f} "
      f"(polyak + clip: {final_success['polyak + clip']:.3f})")

# %% [markdown]
# ## 6. Double DQN: picking and valuing with different networks
#
# Section 3 blamed the max in the TD target: it picks whichever estimate happens to be too high
# *and* reports that same estimate as the value. Double Q-learning (van Hasselt 2010) separates
# the two jobs: one estimate picks the action, an independent one values it. If their errors are
# independent, the picked action's error is as likely to be low as high, and the upward bias of
# the pick disappears. **Double DQN** (van Hasselt, Guez and Silver 2016) does this with the two
# networks DQN already has: the online network picks, the target network values,
# $$y = r + \gamma\,(1 - \text{done})\,Q_{\bar\theta}\big(s', g,
#   \arg\max_{a'} Q_{\bar\theta}(s', g, a')\big) \quad\text{(DQN: } \bar\theta
#   \text{ picks and values)},$$
# $$y^{\text{double}} = r + \gamma\,(1 - \text{done})\,Q_{\bar\theta}\big(s', g,
#   \arg\max_{a'} Q_{\theta}(s', g, a')\big) \quad\text{(Double DQN)}.$$
# (The first line is the usual $\max_{a'} Q_{\bar\theta}(s', g, a')$, written out.) The setting is
# `double_dqn=True`; chapter 7b tries it at $n = 30$ and 50. How much can it help? The cell below
# takes ten actions whose true values are all 0.5, and estimates with errors of standard deviation
# 0.1: the same estimates picking and valuing, two independent ones, and two whose errors are
# correlated 0.9, as an online network and a target network that lags it by a few dozen steps
# would be.

# %%
gen = torch.Generator().manual_seed(0)
true, sd, trials, actions = 0.5, 0.1, 200_000, 10
picker = sd * torch.randn(trials, actions, generator=gen)  # errors of the network that picks
other = sd * torch.randn(trials, actions, generator=gen)  # errors of an independent one
rho = 0.9
close = rho * picker + math.sqrt(1 - rho**2) * other  # errors correlated 0.9 with the picker's
pick = picker.argmax(1, keepdim=True)
bias = {"same estimates pick and value (DQN)": float(picker.max(1).values.mean()),
        "independent valuer (double)": float(other.gather(1, pick).mean()),
        "valuer correlated 0.9 with the picker": float(close.gather(1, pick).mean())}
for name, b in bias.items():
    print(f"{name:40s}: value of the picked action {true + b:.3f} (bias {b:+.3f})")
single, double, correlated = bias.values()
assert abs(single - 1.5388 * sd) < 0.002  # E[max of 10 standard normals] = 1.5388
assert abs(double) < 0.002 and abs(correlated / single - rho) < 0.02

# %% [markdown]
# The max over ten noisy estimates overvalues by 0.154, 1.54 standard deviations; an independent
# valuer removes the bias entirely; a valuer whose errors are correlated 0.9 with the picker's
# removes only a tenth of it. With Polyak averaging at $\tau = 0.05$ the target network *is* such
# a valuer: it lags the online network by about 20 gradient steps, so their errors are largely
# the same.
#
# **Check your understanding 3 (predict before you run).** Rerun section 4's two runs with a
# target network, unclipped and clipped, on the same seeds, with `double_dqn=True`. For the
# unclipped HER run, which blew up:
#
# * (a) Double DQN keeps its values inside $[0, 1]$: it removes the over-estimation that drives the
#   drift.
# * (b) It lowers the peak by a factor of ten or more, but the values still leave $[0, 1]$.
# * (c) It changes the peak by less than a fifth either way: the run still blows up.
# * (d) It makes the blow-up much worse.
#
# <details><summary>Answer</summary>
#
# (c), asserted below on every seed. Two reasons. The cell above: with a target network this close
# to the online one, the pick is hardly independent of the valuation. And section 3: once a
# relative excess compounds, *all* values are too high together, and Double DQN values the picked
# action with a target network whose values are just as inflated; it removes the bias of
# choosing, not the feedback loop. Clipping stops the loop, with or without Double DQN. (a)
# treats the max as the whole story; (b) and (d) overrate what a change of the picked action can
# do when every action is overvalued.
# </details>

# %%
double_variants = {
    "polyak only, double DQN": dict(polyak=0.05, clip_targets=False, double_dqn=True),
    "polyak + clip, double DQN": dict(polyak=0.05, clip_targets=True, double_dqn=True),
}
double_results = run_ablation(base, double_variants, seeds=SEEDS)
print(f"{'variant':26s} {'seed':>4s} {'peak mean Q':>11s} {'late loss':>10s} "
      f"{'final success':>14s}")
for name, runs in {**{k: results[k] for k in ("polyak only", "polyak + clip")},
                   **double_results}.items():
    for seed, run in zip(SEEDS, runs):
        late = float(metric_matrix([run], "loss")[1][:, -20:].nanmean())
        print(f"{name:26s} {seed:4d} {max_metric(run, 'mean_q'):11.3g} {late:10.3g} "
              f"{run.final['success_rate']:14.3f}")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for name, runs, color in (("polyak only", results["polyak only"], "tab:orange"),
                          ("polyak only, double DQN", double_results["polyak only, double DQN"],
                           "tab:blue")):
    for row, run in enumerate(runs):
        iterations, values = metric_matrix([run], "mean_q")
        ax.plot(iterations, values[0], color=color, alpha=0.85, label=name if row == 0 else None)
ax.set(yscale="symlog", xlabel="iteration", ylabel="mean Q on the sampled batch",
       title="Unclipped, with HER: Double DQN does not stop the blow-up")
ax.grid(alpha=0.3)
ax.legend(fontsize="small")
plt.show()

for plain_run, double_run in zip(results["polyak only"], double_results["polyak only, double DQN"]):
    plain_peak, double_peak = max_metric(plain_run, "mean_q"), max_metric(double_run, "mean_q")
    assert double_peak > 10 and 0.8 < double_peak / plain_peak < 1.25, (plain_peak, double_peak)
clipped_double = double_results["polyak + clip, double DQN"]
assert max_metric(clipped_double, "mean_q") <= 1.05
assert max(float(metric_matrix([r], "loss")[1][:, -20:].nanmean()) for r in clipped_double) < 0.01
assert min(r.final["success_rate"] for r in clipped_double) > max(
    r.final["success_rate"] for r in double_results["polyak only, double DQN"])

# %% [markdown]
# Double DQN leaves the blow-up where it was (within a fifth of the peak, on every seed), and with
# clipped targets it is as stable as `polyak + clip`. Whether it learns faster or slower once
# clipped is within the noise of three seeds here; chapter 7b found it made no real difference at
# $n = 30$ and $50$ either. It helps where the max's pick is the problem and the two networks
# disagree enough to tell: van Hasselt et al. showed that DQN's values on several Atari games were
# far too high, and that Double DQN brought them down. Here the values that matter are pinned by
# clipping instead.
#
# ## Check your understanding
#
# Questions 1 to 3 are above, each before the cell that answers it. One more, to reason out:
#
# **4.** Take the HER paper's reward convention instead (chapter 1): $-1$ on every step that does
# not reach the goal, 0 on the step that does. Can you still clip TD targets to $[0, 1]$?
# <details><summary>Answer</summary>No. Every return is now between $-1/(1 - \gamma)$ and 0 (a
# long run of $-1$s, discounted), so clipping to $[0, 1]$ would cut every correct target. The
# argument of section 2 carries over with the new bounds: clip to the interval the true values
# provably lie in, here $[-1/(1 - \gamma), 0]$, which is what the HER paper's code does.</details>
#
# > **Common pitfalls.** (1) Reading "solved once" as stable: keep training past the first
# > success (`early_stop=False`), as the ablation does. (2) Clipping the *network's output*
# > instead of the target: that kills the gradient outside $[0, 1]$ rather than correcting the
# > label. (3) Concluding from one seed: full mode runs three seeds per variant; look at each
# > seed's curve before believing a difference.
#
# ## Summary
#
# * A **target network** updated by Polyak averaging, $\bar\theta \leftarrow (1-\tau)\bar\theta
#   + \tau\theta$, lags the online network by about $1/\tau$ gradient steps and slows the
#   bootstrapping feedback loop down.
# * With reward 1 at the goal and 0 elsewhere, *every optimal Q-value lies in [0, 1]* (by
#   induction over value iteration), and clipping a target to [0, 1] can only bring it closer
#   to the truth. (A regression on noisy targets would be biased by clipping; here each target
#   is deterministic.)
# * The max in the TD target over-estimates. An additive bias would stay bounded
#   ($\gamma b / (1 - \gamma)$); a relative one, $1 + c$, diverges once $\gamma (1 + c) > 1$,
#   i.e. $c > 2\%$ at $\gamma = 0.98$ but $c > 11\%$ at $\gamma = 0.9$. HER pins many targets at
#   exactly 1, giving that growth a floor. Both are hypotheses, beside the deadly triad's own
#   divergence. Measured here: at $\gamma = 0.98$ without clipping, Q-values left [0, 1] in every
#   run, most with HER and without a target network; at $\gamma = 0.9$ they did not; with
#   clipping, training was stable.
# * **Double DQN** lets the online network pick the next action and the target network value it.
#   That removes the bias of picking with the same noisy estimates that value, but a target
#   network that lags by a few dozen steps is not an independent valuer, and it does nothing
#   against values that are all too high together: unclipped, the HER run blew up just the same
#   (within a fifth of the peak). Clipping is what kept the values in place.
#
# **Exercises.** `exercises/ex03_td_target` (the clipped TD target and epsilon-greedy),
# `exercises/ex04_polyak` (the Polyak update) and `exercises/ex07_learner_step` (the whole DQN
# learner step, in the right order). Grade them with `bitflip grade ex03` (and so on).
# **Next:** chapter 6 asks what a network that *knows* the symmetry of the task can do.
#
# ## References
#
# * Chau Yu Hei (HKUST). *Documentation of Bit Sequence mini RL project* (appendices 4.3,
#   Polyak averaging, and 4.4, target clipping). Code:
#   https://github.com/louis845/BitSeqRLToyProblem
# * V. Mnih et al. Human-level control through deep reinforcement learning. *Nature* 518:
#   529-533, 2015 (DQN with a target network).
# * T. P. Lillicrap et al. Continuous control with deep reinforcement learning. *ICLR*, 2016
#   (soft, Polyak-averaged target updates).
# * S. Fujimoto, H. van Hoof, D. Meger. Addressing function approximation error in actor-critic
#   methods. *ICML*, 2018 (TD3). T. Haarnoja, A. Zhou, P. Abbeel, S. Levine. Soft actor-critic.
#   *ICML*, 2018 (SAC).
# * A. Raffin, A. Hill, A. Gleave, A. Kanervisto, M. Ernestus, N. Dormann. Stable-Baselines3:
#   reliable reinforcement learning implementations. *JMLR* 22(268): 1-8, 2021.
# * L. Baird. Residual algorithms: reinforcement learning with function approximation.
#   *ICML*, 1995.
# * J. N. Tsitsiklis, B. Van Roy. An analysis of temporal-difference learning with function
#   approximation. *IEEE Transactions on Automatic Control* 42(5): 674-690, 1997.
# * S. Thrun, A. Schwartz. Issues in using function approximation for reinforcement learning.
#   *Proceedings of the 1993 Connectionist Models Summer School*, 1993 (over-estimation from the
#   max over noisy estimates).
# * H. van Hasselt. Double Q-learning. *NeurIPS* 23, 2010; H. van Hasselt, A. Guez, D. Silver.
#   Deep reinforcement learning with double Q-learning. *AAAI*, 2016.
# * R. S. Sutton, A. G. Barto. *Reinforcement Learning: An Introduction*, 2nd ed. MIT Press,
#   2018 (section 11.3, the deadly triad).
# * M. Andrychowicz et al. Hindsight experience replay. *NeurIPS* 30, 2017.
