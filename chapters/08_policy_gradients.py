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
# # Chapter 8. Policy gradients and preference learning
#
# Chapters 1 to 7 handed the agent its goal as an input. The write-up's first draft (Chau Yu
# Hei, *Documentation of Bit Sequence mini RL project*, first draft) posed the problem
# differently: *generate* a target string picked in advance, with reward 1 for that string and 0
# for every other. That is how a language model meets a sparse reward: it writes a text token by
# token, and only the finished text is scored, by a judge whose standard the model never sees.
# This chapter moves the course from flipping bits to writing them, and learns to write with the
# tools used to fine-tune language models: policy gradients, the KL-regularised objective of RL
# from human feedback (RLHF), and direct preference optimisation (DPO). Chapter 9 continues with
# GFlowNets, hindsight for sequences and the link back to Q-learning.
#
# **Learning goals.** After this chapter you can
# 1. write left-to-right generation as an MDP whose target is hidden in the reward, and compute
#    the chance $2^{-L}$ that random writing succeeds;
# 2. derive the REINFORCE estimator, prove that $\mathbb{E}[\nabla \log \pi] = 0$, and say why a
#    batch without reward teaches nothing and what the batch-mean and leave-one-out baselines do;
# 3. tell a dense reward from reward shaping, and say why potential-based shaping cannot rescue
#    REINFORCE from a sparse reward;
# 4. derive the optimum $\pi^* \propto \pi_{\mathrm{ref}} e^{R/\beta}$ of the KL-regularised
#    objective, and DPO's loss from the Bradley-Terry model of preferences;
# 5. place the reward model, PPO, RLOO and GRPO, and reward over-optimisation in the RLHF
#    pipeline.
#
# **Study time.** About 65 minutes of reading, predicting and trying things. **Run time.** Under a
# minute on a laptop CPU. Terms in bold are defined where they first appear and in the
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
import torch

from bitflip_lib import default_device, quick_mode
from bitflip_lib.generation.sequences import (
    GenerationEnv,
    all_strings,
    exact_log_probs,
    kl_divergence,
    kl_optimum,
    make_reward,
    reinforce_loss,
)
from bitflip_lib.generation.training import (
    GenerateConfig,
    parameters_vector,
    seeded_policy,
    train_generator,
)
from bitflip_lib.ui import diagrams

QUICK = quick_mode()
DEVICE = default_device(announce=True)
print(f"Running in {'quick' if QUICK else 'full'} mode")
CPU = torch.device("cpu")  # the small networks of this chapter run fastest on the CPU
CHAPTER_START = time.time()

# %% [markdown]
# ## 1. Generation as an MDP
#
# Write an $L$-bit string $y = (y_1, \dots, y_L)$ from left to right. The **state** is the prefix
# written so far, $s_t = y_{<t} = (y_1, \dots, y_{t-1})$; the **action** $a_t \in \{0, 1\}$
# appends one bit; the transition is deterministic; and the episode ends after $L$ steps with a
# *terminal reward*, here $R(y) = \mathbb{1}[y = y^*]$ for a target $y^*$. A **policy**
# $\pi(a_t \mid s_t)$ gives the probability of each next bit, and so a probability for every
# whole string, $\pi(y) = \prod_{t=1}^{L} \pi(y_t \mid y_{<t})$, exactly as a language model
# gives one to every text.
#
# Two differences from bit flipping matter. The target $y^*$ is *not an input*: it is hidden
# inside the reward, which the learner can only call. And each string is written by exactly one
# sequence of actions, so every state has one parent and the states form a *tree*:

# %%
diagrams.generation_tree("101")

# %% [markdown]
# A writer that picks each bit at random reaches the one rewarded leaf with probability
# $2^{-L}$: one in 256 at $L = 8$, about one in a million at $L = 20$. The next cell plays the
# MDP with four random writers and checks both facts: no reward before the last bit, and the
# success rate of random writing.

# %%
L = 8
reward = make_reward("sparse", L, seed=0)
env = GenerationEnv(reward, num_agents=4, device=DEVICE)
env.reset()
bits = torch.randint(0, 2, (L, 4), generator=torch.Generator().manual_seed(0)).to(DEVICE)
steps = [env.step(bits[t]) for t in range(L)]
print("rewards of the first two steps:", [s.reward.tolist() for s in steps[:2]],
      "... of the last step:", steps[-1].reward.tolist())
assert all(float(s.reward.abs().sum()) == 0 for s in steps[:-1])  # nothing before the end
assert steps[-1].done

uniform = (torch.rand(2**18, L, generator=torch.Generator().manual_seed(0)) < 0.5).float()
rate = float(reward(uniform).mean())
print(f"{len(uniform):,} random strings of L = {L} bits: success {rate:.5f}, 2^-L = {2**-L:.5f}")
assert abs(rate - 2**-L) < 4 * math.sqrt(2**-L / len(uniform))

# %% [markdown]
# ## 2. REINFORCE, derived
#
# The policy here is a small network $\pi_\theta$ that reads the prefix (which bits are written,
# and where the writer is) and outputs the probabilities of the next bit: a tiny language model.
# We want the weights $\theta$ that maximise the expected reward
# $J(\theta) = \mathbb{E}_{y \sim \pi_\theta}[R(y)] = \sum_y \pi_\theta(y) R(y)$. The sum runs
# over all $2^L$ strings, so we cannot compute its gradient; we can only sample strings. The
# *log-derivative trick*, $\nabla_\theta \pi_\theta(y) = \pi_\theta(y) \nabla_\theta \log
# \pi_\theta(y)$, turns the gradient back into an expectation that samples can estimate:
# $$\nabla_\theta J = \sum_y R(y) \nabla_\theta \pi_\theta(y) = \sum_y \pi_\theta(y)\, R(y)\,
#   \nabla_\theta \log \pi_\theta(y),$$
# that is,
# $$\nabla_\theta J
#   = \mathbb{E}_{y \sim \pi_\theta}\big[R(y)\, \nabla_\theta \log \pi_\theta(y)\big],$$
# and $\log \pi_\theta(y) = \sum_{t=1}^L \log \pi_\theta(y_t \mid y_{<t})$, which the network
# computes. With a batch of $B$ sampled strings this gives the **REINFORCE** estimator
# (Williams 1992),
# $$\hat g = \frac1B \sum_{i=1}^B \big(R(y_i) - b\big)\, \nabla_\theta \sum_{t=1}^L
#   \log \pi_\theta(y_{i,t} \mid y_{i,<t}),$$
# where $b$ is a **baseline**: a number subtracted from every reward. Why may we subtract it?
# Because the score $\nabla \log \pi$ has mean zero:
# $$\mathbb{E}_{y \sim \pi}[\nabla_\theta \log \pi_\theta(y)] = \sum_y \pi_\theta(y)
#   \frac{\nabla_\theta \pi_\theta(y)}{\pi_\theta(y)} = \nabla_\theta \sum_y \pi_\theta(y) =
#   \nabla_\theta 1 = 0.$$
# So a $b$ that does not depend on the sample it multiplies adds $-b \cdot
# \mathbb{E}[\nabla \log \pi] = 0$ on average: it leaves the expected estimate alone, and a good
# choice makes single estimates less noisy. (C. Lee's lecture notes make the same argument one
# step at a time, for a baseline $b(s)$ that depends on the state but not on the action; with a
# learned $b(s) = V(s)$ the weight $R - b$ becomes an advantage, the idea behind actor-critic
# methods and PPO's critic in section 8.) In code, REINFORCE is a *surrogate loss*,
# $-\frac1B\sum_i (R_i - b)\log\pi_\theta(y_i)$ with $R_i - b$ held constant, whose gradient is
# $-\hat g$ (`reinforce_loss`).
#
# Now the sparse reward. Take a batch of 32 strings that all score 0, and three baselines:
# none ($b = 0$), the batch mean $\bar R$ (the usual choice), and the constant $b = 1$.
#
# **Check your understanding 1 (predict before you run the next cell).** Which of the three
# baselines change the weights?
#
# - (a) None: without a reward there is nothing to learn from.
# - (b) Only $b = 1$: it gives every failed string a negative weight, a real signal that pushes the
#   network away from failures and so towards the target.
# - (c) Only $b = 1$, but what it does is noise.
# - (d) All three: a gradient step always changes something.
#
# <details><summary>Answer</summary>(c). With $b = 0$ and with the batch mean (which is 0 here)
# every weight $R_i - b$ is exactly 0, so the gradient is exactly zero. With $b = 1$ every
# sampled string is pushed down: a nonzero estimate, but its expectation is $-1 \cdot
# \mathbb{E}[\nabla\log\pi] = 0$. The next cell computes that expectation exactly over all 64
# strings of $L = 6$ (zero, up to rounding) and averages 200 batches: the average is far
# shorter than a single estimate and shrinks like $1/\sqrt{\text{batches}}$. Pushing down the
# strings you happened to write says nothing about where the target is.</details>

# %%
policy = seeded_policy(6, (64,), seed=0, device=CPU)
batch = policy.sample(32, torch.Generator().manual_seed(1))


def gradient(loss: torch.Tensor) -> torch.Tensor:
    policy.zero_grad()
    loss.backward()
    return torch.cat([p.grad.reshape(-1) for p in policy.parameters()])


zeros = torch.zeros(32)
for b in ("none", "mean", 1.0):
    g = gradient(reinforce_loss(policy.log_prob(batch), zeros, b))
    print(f"all rewards 0, baseline {b!r}: gradient norm {float(g.norm()):.4f}")
    assert (float(g.abs().max()) == 0.0) == (b != 1.0)  # exactly zero unless b = 1

# The b = 1 estimate exactly, as an expectation over all 64 strings: sum_y pi(y) grad log pi(y).
probs = exact_log_probs(policy).exp().float()
exact_mean = gradient(-(probs * policy.log_prob(all_strings(6))).sum())
noise = torch.stack([gradient(reinforce_loss(policy.log_prob(policy.sample(32, g)), zeros, 1.0))
                     for g in [torch.Generator().manual_seed(100 + i) for i in range(200)]])
z = noise.mean(0) / (noise.std(0) / math.sqrt(len(noise))).clamp_min(1e-12)
print(f"baseline 1: exact expectation {float(exact_mean.abs().max()):.1e} (largest entry); "
      f"average of 200 batches has norm {float(noise.mean(0).norm()):.4f}, "
      f"one batch {float(noise.norm(dim=1).mean()):.4f}")
assert float(exact_mean.abs().max()) < 1e-5  # zero up to float32 rounding
assert float(z.abs().max()) < 5 and abs(float(z.mean())) < 0.3  # the 200-batch mean is noise
assert float(noise.mean(0).norm()) < 0.2 * float(noise.norm(dim=1).mean())

# %% [markdown]
# A batch without a single success teaches REINFORCE nothing: with $b = 0$ or the batch mean
# the update is exactly zero, and with any other constant baseline it is noise. Keep this in
# mind for section 4.
#
# ## 3. Which baseline? The batch mean against leave-one-out
#
# The batch mean $\bar R = \frac1B \sum_j R_j$ is the most common baseline, but it is not quite
# one of the harmless kind: it contains the sample's own reward, $R_i / B$. Split it as
# $\bar R = \frac{R_i}{B} + \frac1B\sum_{j \ne i} R_j$. The other samples are independent of
# $y_i$, so their part drops out of the expectation as before, and what is left is
# $$\mathbb{E}\big[(R_i - \bar R)\, \nabla \log \pi(y_i)\big] = \Big(1 - \frac1B\Big)\,
#   \mathbb{E}\big[R\, \nabla \log \pi(y)\big] = \frac{B - 1}{B}\, \nabla J.$$
# The batch-mean estimate points the right way but is $(B - 1)/B$ times too short: 1.6% at
# $B = 64$, a third at $B = 3$. The *leave-one-out* baseline, the mean of the *other* $B - 1$
# rewards, $b_i = \frac{1}{B - 1}\sum_{j \ne i} R_j$, does not depend on $y_i$ and is exactly
# unbiased (RLOO, the REINFORCE leave-one-out estimator; Kool et al. 2019). Since
# $R_i - b_i = \frac{B}{B - 1}(R_i - \bar R)$, its estimate is the batch-mean one times
# $B/(B - 1)$. A constant factor is harmless for training (it rescales the step size), so the
# batch mean is fine in practice; but "unbiased" is a claim we can check. The next cell does it
# exactly: for 4-bit strings and $B = 3$ it sums over all $16^3 = 4096$ possible batches,
# weighted by their probabilities.

# %%
small = seeded_policy(4, (16,), seed=0, device=CPU)
log_pi = small.log_prob(all_strings(4)).double()  # all 16 strings, with gradients
pi, B = log_pi.exp().detach(), 3
R = torch.arange(16, dtype=torch.float64) / 15  # any reward will do
batches = torch.cartesian_prod(*[torch.arange(16)] * B)  # [16^B, B]: every possible batch
weight, r = pi[batches].prod(1, keepdim=True), R[batches]  # its probability, its rewards


def expected_gradient(surrogate: torch.Tensor) -> torch.Tensor:
    small.zero_grad()
    surrogate.backward(retain_graph=True)
    return torch.cat([p.grad.reshape(-1) for p in small.parameters()])


true_gradient = expected_gradient((pi * R * log_pi).sum())  # sum_y pi R grad log pi
with_mean = expected_gradient((weight * (r - r.mean(1, keepdim=True)) * log_pi[batches]).sum() / B)
leave_one_out = (r.sum(1, keepdim=True) - r) / (B - 1)
with_loo = expected_gradient((weight * (r - leave_one_out) * log_pi[batches]).sum() / B)


def share(g: torch.Tensor) -> float:  # the length of g along the true gradient, as a fraction
    return float(g @ true_gradient / true_gradient.norm() ** 2)


print(f"expected estimate / true gradient: batch mean {share(with_mean):.4f} "
      f"((B - 1)/B = {(B - 1) / B:.4f}), leave-one-out {share(with_loo):.4f}")
assert torch.allclose(with_mean, (B - 1) / B * true_gradient, atol=1e-6)  # scaled by (B - 1)/B
assert torch.allclose(with_loo, true_gradient, atol=1e-6)  # unbiased
assert (with_mean - true_gradient).abs().max() > 0.01  # the scaling is not rounding

# %% [markdown]
# ## 4. REINFORCE under a sparse reward
#
# Section 2 showed that REINFORCE learns only from batches that hold a success. Here it is at
# work: 64 strings per step, the batch-mean baseline, Adam, on the sparse reward for several
# lengths $L$, the same network shape and seed for each.
#
# **Check your understanding 2 (predict before you run the next cell).** The budget is 400 steps
# (200 in quick mode), so 25,600 strings at most. For which lengths will REINFORCE find its target?
#
# - (a) All of them: a network can learn any string.
# - (b) Up to $L = 8$ or so; at $L = 20$ it fails but gets closer.
# - (c) Up to about $L = 12$; at $L = 16$ and $20$ its weights do not change at all.
# - (d) None: REINFORCE needs a dense reward.
#
# <details><summary>Answer</summary>(c). The next cell shows $L \le 12$ solved (quick mode
# runs $L = 4$, 8 and 20). At $L = 16$ and $20$ not one success is seen: 25,600 random strings
# expect $25{,}600 \cdot 2^{-16} \approx 0.4$ successes at $L = 16$ and $0.02$ at $L = 20$. So
# every update was exactly zero (section 2), and the weights are bit for bit the initial ones:
# there is no "closer".</details>

# %%
LENGTHS = [4, 8, 20] if QUICK else [4, 8, 12, 16, 20]
BUDGET = 200 if QUICK else 400
sparse_runs, unchanged = {}, {}
for L in LENGTHS:
    config = GenerateConfig(method="reinforce", length=L, reward="sparse", steps=BUDGET,
                            batch_size=64, lr=2e-3, eval_every=25, eval_samples=256)
    start = parameters_vector(seeded_policy(L, config.hidden, config.seed, CPU))
    run = sparse_runs[L] = train_generator(config)
    unchanged[L] = torch.equal(parameters_vector(run.policy), start)
    print(f"L = {L:2d}: success {run.final['success']:.3f}, successes seen in training "
          f"{run.rewards_seen:,}, weights unchanged: {unchanged[L]}")
for L in LENGTHS:
    if L <= 12:
        assert sparse_runs[L].final["success"] > 0.9
    else:  # L = 16 and 20: no success ever sampled, so no update ever happened
        assert sparse_runs[L].rewards_seen == 0 and unchanged[L]
        assert sparse_runs[L].final["success"] == 0.0

# %% [markdown]
# ## 5. A dense reward, and reward shaping
#
# A *dense* stand-in for a reward model changes the picture: $R(y) = e^{-0.2\, d(y, y^*)}$, with
# $d$ the Hamming distance (the number of wrong bits), scores near misses, so every batch
# carries signal. Same learner, $L = 50$ (and $L = 20$ in full mode):

# %%
DENSE_LENGTHS = [50] if QUICK else [20, 50]
dense_runs = {L: train_generator(GenerateConfig(method="reinforce", length=L, reward="dense",
                                                sharpness=0.2, steps=300, batch_size=64, lr=1e-3,
                                                eval_every=25, eval_samples=256))
              for L in DENSE_LENGTHS}
fig, ax = plt.subplots(figsize=(8.5, 3.4), layout="constrained")
for (L, run), marker in zip(sparse_runs.items(), "os^vD"):  # markers: curves at 0 overlap
    ax.plot(*run.curve("success"), marker=marker, ms=4, label=f"sparse, L = {L}")
for L, run in dense_runs.items():
    ax.plot(*run.curve("success"), "--", lw=2, label=f"dense, L = {L}")
ax.set(xlabel="gradient step (64 strings each)", ylabel="success (fraction of samples)",
       title="REINFORCE: the sparse reward against a dense one")
ax.legend(fontsize=8, ncol=2)
plt.show()
for L, run in dense_runs.items():
    print(f"dense reward, L = {L}: success {run.final['success']:.3f}")
    assert run.final["success"] > 0.9

# %% [markdown]
# Stated plainly: the dense reward did not make REINFORCE smarter, it *gave it more
# information*. A reward that counts wrong bits tells the learner, bit by bit, where the target
# is; the task with a hidden target did not.
#
# Is that **reward shaping**, the classic way of adding intermediate rewards to speed up learning?
# Ng, Harada and Russell (1999) asked which extra rewards are safe, that is, leave the optimal
# policies unchanged, and proved that *potential-based* shaping is, and that without knowing more
# about the MDP it is the only kind that is: it adds $F(s, s') = \gamma\,\Phi(s') - \Phi(s)$ on each
# step, for some function $\Phi$ of the state. On our tree $\gamma = 1$; give finished strings
# potential 0. For example, $\Phi(s_t) = -0.2 \times$ (wrong bits in the prefix) pays $-0.2$ for
# each wrong bit as it is written and refunds it all with the last bit. Along any string the extra
# rewards telescope: $\sum_t [\Phi(s_{t+1}) - \Phi(s_t)] = \Phi(y) - \Phi(\text{start}) = 0 - 0$.
# Every string's return is what it was, so REINFORCE on whole strings sees the sparse reward again.
# And a learner that credits each action with the rewards that follow it, $G_t = R(y) - \Phi(s_t)$,
# gets only a state-dependent baseline $-\Phi(s_t)$, which, like the constants of section 2, leaves
# the expected gradient unchanged. The next cell checks both claims exactly at $L = 4$, over all 16
# strings. Potential-based shaping keeps the problem the same, so it cannot supply the information a
# sparse reward withholds; the dense reward changes the problem. It was safe here only because its
# best string is still the target (asserted too).

# %%
L4 = 4
target = make_reward("sparse", L4, seed=0)
dense = make_reward("dense", L4, seed=0, sharpness=0.2)  # the same hidden target (same seed)
strings4 = all_strings(L4)
net4 = seeded_policy(L4, (16,), seed=0, device=CPU)
step_log_pi = net4.step_log_probs(strings4)  # [16, L]: log pi(y_t | y_<t), with gradients
p4 = step_log_pi.sum(1).exp().detach()  # pi(y) of each of the 16 strings
wrong = (strings4 != strings4[target(strings4).argmax()]).float()  # which bits are wrong
phi = -0.2 * torch.cat([torch.zeros(16, 1), wrong.cumsum(1)[:, :-1]], 1)  # Phi(s_t), t = 0..L-1


def expected_update(credit: torch.Tensor) -> torch.Tensor:
    """sum_y pi(y) sum_t G_t(y) grad log pi(y_t | y_<t), for the credit G_t(y) of each step."""
    net4.zero_grad()
    (p4[:, None] * credit * step_log_pi).sum().backward(retain_graph=True)
    return torch.cat([p.grad.reshape(-1) for p in net4.parameters()])


sparse_R = target(strings4)[:, None].expand(-1, L4)
shaped_return = sparse_R[:, 0] + (phi[:, 1:] - phi[:, :-1]).sum(1) + (0 - phi[:, -1])
g_sparse = expected_update(sparse_R)
g_shaped = expected_update(sparse_R - phi)  # G_t = R(y) + sum of F from step t on = R - Phi(s_t)
g_dense = expected_update(dense(strings4)[:, None].expand(-1, L4))
gap = float((shaped_return - sparse_R[:, 0]).abs().max())
print(f"shaped returns minus sparse returns: largest {gap:.1e}")
print(f"expected update: shaped vs sparse differ by {float((g_shaped - g_sparse).norm()):.1e}; "
      f"dense vs sparse by {float((g_dense - g_sparse).norm()):.3f}")
assert torch.allclose(shaped_return, sparse_R[:, 0], atol=1e-6)  # the extra rewards telescope
assert torch.allclose(g_shaped, g_sparse, atol=1e-6)  # shaping = a baseline: same expectation
assert float((g_dense - g_sparse).norm()) > 0.01  # the dense reward is another objective
assert bool(target(strings4[dense(strings4).argmax()][None]))  # ... with the same best string

# %% [markdown]
# What RL on language models depends on is neither trick. It also works with a binary reward
# that only checks whether a final answer is right (RL with verifiable rewards; Lambert et al.
# 2024, DeepSeek-AI 2025). REINFORCE needs successes in its batches, and what decides that is
# how often the starting policy succeeds. Ours starts uniform: a batch of 64 at $L = 20$ holds a
# success with probability about $64 \cdot 2^{-20} \approx 6 \cdot 10^{-5}$. A pretrained model
# starts as a reference policy that already solves many problems some of the time: at a success
# rate of one in ten, 99.9% of such batches hold one. The next cell computes both. Where
# successes are as rare as here, a denser reward is one way out; chapter 9 shows what hindsight
# needs instead.

# %%
def batch_has_success(p: float, batch: int = 64) -> float:
    """Probability that a batch of independent samples, each a success with probability p,
    holds at least one."""
    return 1 - (1 - p) ** batch


print(f"P(a batch of 64 holds a success): uniform writer at L = 20 "
      f"{batch_has_success(2**-20):.1e}, a policy that succeeds one time in ten "
      f"{batch_has_success(0.1):.4f}")
assert 6e-5 < batch_has_success(2**-20) < 6.2e-5 and batch_has_success(0.1) > 0.998

# %% [markdown]
# ## 6. The KL-regularised objective
#
# RL fine-tuning of a language model does not maximise the reward alone: it also keeps the
# policy close to a **reference policy** $\pi_{\mathrm{ref}}$, the supervised model it started
# from, so that it keeps writing fluent text and does not exploit the reward's blind spots.
# Closeness is measured by the **KL divergence** $\mathrm{KL}(p \,\|\, q) = \sum_y p(y) \log
# \frac{p(y)}{q(y)}$, which is $\ge 0$ and zero only when $p = q$. The objective, with a weight
# $\beta > 0$, is
# $$\max_\pi\; \mathbb{E}_{y\sim\pi}[R(y)] - \beta\, \mathrm{KL}(\pi \,\|\, \pi_{\mathrm{ref}}).$$
# Its maximiser can be found in three lines. Write $Z = \sum_y \pi_{\mathrm{ref}}(y)
# e^{R(y)/\beta}$ and $\pi^*(y) = \pi_{\mathrm{ref}}(y)\, e^{R(y)/\beta} / Z$, a probability
# distribution. Then $R(y) = \beta \log \frac{\pi^*(y)}{\pi_{\mathrm{ref}}(y)} + \beta \log Z$,
# and for any $\pi$
# $$\mathbb{E}_\pi[R] - \beta\,\mathrm{KL}(\pi\|\pi_{\mathrm{ref}}) = \mathbb{E}_\pi\Big[\beta
#   \log \frac{\pi^*(y)}{\pi_{\mathrm{ref}}(y)} + \beta \log Z - \beta \log
#   \frac{\pi(y)}{\pi_{\mathrm{ref}}(y)}\Big],$$
# and the two logarithms of ratios combine into one, $\log \frac{\pi^*(y)}{\pi(y)}$, so
# $$\mathbb{E}_\pi[R] - \beta\,\mathrm{KL}(\pi\|\pi_{\mathrm{ref}})
#   = \beta \log Z - \beta\, \mathrm{KL}(\pi \,\|\, \pi^*).$$
# The first term does not depend on $\pi$ and the second is largest, zero, exactly at
# $\pi = \pi^*$. So the unique optimum is
# $$\pi^*(y) = \frac{1}{Z}\, \pi_{\mathrm{ref}}(y)\, e^{R(y)/\beta}:$$
# the reference, tilted towards high reward. Large $\beta$ keeps $\pi_{\mathrm{ref}}$; as
# $\beta \to 0$ all the mass goes to the best strings, plain reward maximisation.
#
# The same identity gives a way to train. The gradient of the objective is the REINFORCE
# gradient of the per-sample reward $R(y) - \beta \log(\pi(y)/\pi_{\mathrm{ref}}(y))$ (the extra
# term $-\beta\,\mathbb{E}[\nabla \log \pi]$ vanishes, by section 2), which is how RLHF folds
# the KL into the reward. At small $L$ we can enumerate all $2^L$ strings and measure exactly how
# far the trained policy is from $\pi^*$, in **total variation**, $\mathrm{TV}(p, q) = \frac12
# \sum_y |p(y) - q(y)|$, the largest difference in probability the two give to any set of
# strings. Here $L = 8$, the reward model's score is $R(y) = -d(y, y^*)$, $\beta = 1$ and
# $\pi_{\mathrm{ref}}$ is the initial network.

# %%
KL_STEPS = 300 if QUICK else 600
kl_config = GenerateConfig(method="kl", length=8, reward="distance", beta=1.0, steps=KL_STEPS,
                           batch_size=128, lr=1e-3, eval_every=25, eval_samples=256)
kl_run = train_generator(kl_config)
kl_tv = kl_run.curve("tv")[1]
print(f"KL-regularised REINFORCE: TV to pi* {kl_tv[0]:.3f} at the start, "
      f"{kl_tv[-1]:.4f} after {KL_STEPS} steps")
assert kl_tv[0] > 0.3 and kl_tv[-1] < 0.02 and max(kl_tv[len(kl_tv) // 2:]) < kl_tv[0] / 5

# %% [markdown]
# ## 7. DPO, from the Bradley-Terry model
#
# Where does $R$ come from? For a language model nobody can write down a score for every text,
# but people can compare two answers and say which is better. The **Bradley-Terry model**
# (Bradley and Terry 1952) turns comparisons into scores: it assumes each item $y$ has a score
# $R(y)$ and that $y_1$ is preferred to $y_2$ with probability
# $$P(y_1 \succ y_2) = \sigma\big(R(y_1) - R(y_2)\big), \qquad \sigma(x) = \frac{1}{1 + e^{-x}}.$$
# Equal scores give a coin flip; a score one higher wins with probability $\sigma(1) = 0.73$.
# Fitting a **reward model** $R_\phi$ to comparisons means maximising the likelihood of the
# preferences seen, that is, minimising $-\log \sigma(R_\phi(y_w) - R_\phi(y_l))$ over the pairs
# where $y_w$ was preferred to $y_l$. RLHF then maximises the KL-regularised objective of
# section 6 with this $R_\phi$.
#
# **DPO** (direct preference optimisation; Rafailov et al. 2023) skips the reward model. Section
# 6 showed that at the optimum the reward can be read off the policy:
# $R(y) = \beta \log \frac{\pi^*(y)}{\pi_{\mathrm{ref}}(y)} + \beta \log Z$. In a difference
# $R(y_w) - R(y_l)$ the unknown $\beta \log Z$ cancels. So put $\beta \log(\pi/\pi_{\mathrm{ref}})$
# in place of $R$ in the Bradley-Terry loss and train the policy directly:
#
# $$\mathcal{L}_{\mathrm{DPO}} = -\log\sigma\Big(\beta\log\frac{\pi(y_w)}{\pi_{\mathrm{ref}}(y_w)}
#   -\beta\log\frac{\pi(y_l)}{\pi_{\mathrm{ref}}(y_l)}\Big).$$
#
# Its minimiser, given enough pairs, is the same $\pi^*$, with no reward model and no sampling
# during training. We draw 32,768 pairs from $\pi_{\mathrm{ref}}$ and let a simulated annotator
# prefer one string of each pair with Bradley-Terry probability for $R = -d(y, y^*)$ (so it
# picks the string with fewer wrong bits 73% of the time when they differ by one). No reward is
# ever given to the learner.

# %%
dpo_run = train_generator(kl_config.replace(method="dpo", steps=200 if QUICK else 400,
                                            batch_size=256, lr=3e-3, num_pairs=32768))
dpo_tv = dpo_run.curve("tv")[1]
print(f"DPO from {dpo_run.config.num_pairs:,} preference pairs: TV to pi* {dpo_tv[0]:.3f} -> "
      f"{dpo_tv[-1]:.3f} (KL-regularised REINFORCE: {kl_tv[-1]:.4f})")
assert dpo_tv[-1] < 0.1 and dpo_tv[-1] < dpo_tv[0] / 4 and dpo_tv[-1] > kl_tv[-1]
if not QUICK:
    assert dpo_tv[-1] < 0.06
fig, ax = plt.subplots(figsize=(8.5, 3.4), layout="constrained")
ax.plot(*kl_run.curve("tv"), label="KL-regularised REINFORCE (the exact reward)")
ax.plot(*dpo_run.curve("tv"), label="DPO (preference pairs only)")
ax.set(xlabel="gradient step", ylabel=r"TV$(\pi, \pi^*)$", yscale="log",
       title=r"Both approach $\pi^* = \pi_{\mathrm{ref}}\, e^{R/\beta} / Z$ ($L = 8$, $\beta = 1$)")
ax.legend()
plt.show()

# %% [markdown]
# DPO stops at a TV under 0.1 (about 0.05 in full mode): it estimates the rewards of 256 strings
# from noisy comparisons, and each error in a reward difference reaches $\log \pi$ divided by
# $\beta$; more pairs would bring it closer. RL with the reward reaches $\pi^*$ almost exactly,
# because here the reward is exact.
#
# ## 8. The RLHF pipeline
#
# The pieces of this chapter are the pieces of RLHF (Christiano et al. 2017; Ziegler et al.
# 2019; Ouyang et al. 2022):

# %%
diagrams.rlhf_pipeline()

# %% [markdown]
# * **Reward model.** Christiano et al. (2017) fitted a reward model to people's comparisons of
#   pairs of behaviours with the Bradley-Terry loss of section 7, and trained RL agents on it.
#   Ziegler et al. (2019) did the same for a language model, with a KL penalty to the
#   pretrained model in the reward (section 6); Ouyang et al. (2022) scaled this to instruction
#   following: supervised fine-tuning, a reward model from rankings, then RL.
# * **PPO.** The RL step of those works is PPO (proximal policy optimisation; Schulman et al.
#   2017), a policy-gradient method with two additions: a learned value function (a critic) as
#   the baseline, and a clipped probability ratio that lets several gradient steps reuse one
#   batch of samples.
# * **RLOO and GRPO.** The critic is a second network, often as large as the policy. Ahmadian et al.
#   (2024) drop it and return to REINFORCE with the leave-one-out baseline of section 3 over $k$
#   answers to the same prompt (RLOO), and find it competitive with PPO. GRPO (Shao et al. 2024)
#   also samples a group of answers per prompt; its baseline is the group mean, which includes
#   the sample itself (section 3's batch mean), and it divides by the group's standard deviation.
#   In both, a group whose answers all earn the same reward contributes nothing: section 2's
#   zero-reward batch, one prompt at a time.
# * **Reward over-optimisation.** The reward model is only a proxy for what people want. Optimised
#   hard enough, the policy finds where the proxy is wrong. Gao et al. (2023) measured this: as the
#   policy moves away from $\pi_{\mathrm{ref}}$ (in KL), a "gold" reward first rises and then falls
#   while the proxy keeps rising. Reward models have systematic errors, too: those studied by
#   Singhal et al. (2024) favour longer answers.
#
# The exact optimum of section 6 lets us watch this without training. Suppose the reward model
# learnt the true score $-d(y, y^*)$ plus a habit: it credits every 1 in the string with $1.5$
# (as a length bias credits every extra word). For each $\beta$ from 10 down to 0.01 we compute
# $\pi^* \propto \pi_{\mathrm{ref}} e^{R_\phi/\beta}$ exactly, its KL from $\pi_{\mathrm{ref}}$,
# and its expected proxy and true scores.
#
# **Check your understanding 3 (predict before you run the next cell).** As $\beta$ falls and
# $\pi^*$ optimises the proxy harder, what happens to its true score?
#
# - (a) It rises all the way: the proxy is right about every bit's position and wrong only by a
#   bias.
# - (b) It rises, then falls.
# - (c) It falls from the start: any bias is exploited at once.
#
# <details><summary>Answer</summary>(b). With a large $\beta$ the policy moves a little, towards
# strings both scores like: mostly closer to the target. Pushed further, it finds that writing
# 1s where the target has 0s gains 1.5 in the proxy for a loss of 1 in truth, and ends on the
# all-ones string. The next cell finds the true score at its best for a $\beta$ in the middle,
# clearly above both ends, while the proxy rises all the way: the shape Gao et al. report. The
# KL penalty is what stops the policy before the fall.</details>

# %%
ref_log_probs = exact_log_probs(kl_run.reference)
strings8 = all_strings(8, ref_log_probs.device)
true_score = kl_run.reward(strings8).double()  # -d(y, y*), the reward of sections 6 and 7
proxy = true_score + 1.5 * strings8.sum(1).double()  # the reward model: a bias for every 1
betas = torch.logspace(1, -2, 31, dtype=torch.float64)  # 10 down to 0.01
curve = []
for beta in betas:
    tilted = kl_optimum(ref_log_probs, proxy, float(beta))
    curve.append((kl_divergence(tilted, ref_log_probs.exp()), float(tilted @ proxy),
                  float(tilted @ true_score)))
kls, proxy_means, true_means = map(torch.tensor, zip(*curve))
best = int(true_means.argmax())
print(f"true score: {true_means[0]:.2f} at beta 10, best {true_means[best]:.2f} at beta "
      f"{float(betas[best]):.2f} (KL {kls[best]:.2f}), {true_means[-1]:.2f} at beta 0.01 "
      f"(KL {kls[-1]:.2f}); the all-ones string scores {float(true_score[-1]):.0f}")
fig, ax = plt.subplots(figsize=(8.5, 3.4), layout="constrained")
ax.plot(kls, proxy_means - proxy_means[0], "o-", ms=3, label="proxy (reward model)")
ax.plot(kls, true_means - true_means[0], "o-", ms=3, label="true score")
ax.axvline(kls[best], color="0.5", ls=":", lw=1)
ax.set(xlabel=r"$\mathrm{KL}(\pi^* \| \pi_{\mathrm{ref}})$ in nats (smaller $\beta$ to the right)",
       ylabel=r"expected score minus that of $\pi_{\mathrm{ref}}$",
       title=r"Reward over-optimisation, computed exactly ($L = 8$)")
ax.legend()
plt.show()
assert bool((proxy_means[1:] >= proxy_means[:-1] - 1e-9).all())  # the proxy rises all the way
assert 0 < best < len(betas) - 1  # the true score peaks in the middle ...
assert true_means[best] > true_means[0] + 1 and true_means[best] > true_means[-1] + 0.5

# %% [markdown]
# ## 9. Try it yourself
#
# The playground trains two samplers side by side on one reward, from the same initial network:
# on the left REINFORCE maximising $\mathbb{E}[R]$, on the right REINFORCE on $\mathbb{E}[R] -
# \beta\,\mathrm{KL}(\pi\|\pi_{\mathrm{ref}})$ against its target $\pi_{\mathrm{ref}}
# e^{R/\beta}/Z$ (grey). Each panel shows the exact probability of every one of the $2^L$
# strings; the triangles mark the hidden targets. Things to try: the multi-modal reward (four
# targets) with $\beta = 1$, then $\beta = 0.05$: how many targets does each sampler keep? The
# sparse reward at $L = 10$: does either panel move? Change the seed. The cell after the
# playground runs it for a few steps, to check it works.

# %%
from bitflip_lib.ui.playground import GenerationPlayground

play = GenerationPlayground(methods=("reinforce", "kl"), length=6, reward="multimodal", beta=0.5,
                            steps=300)
play

# %%
demo = play.run(steps=20)  # tiny: press Train for real runs
assert set(demo) == {"reinforce", "kl"} and play.outcome == "finished" and play.error is None
assert all(result.final["step"] == 20 for result in demo.values())

# %% [markdown]
# ## Check your understanding
#
# Questions 1 to 3 were predictions, in sections 2, 4 and 8: if you skipped one, go back and
# answer it before opening its answer. One more:
#
# **4.** A GRPO run samples 8 answers to each maths problem and rewards a correct final answer
# with 1. For one hard problem all 8 answers are wrong. What does this problem contribute to the
# update, and what would you change so that hard problems teach something?
# <details><summary>Answer</summary>Nothing: every reward equals the group mean, so every
# advantage is 0 (section 2's zero-reward batch). Useful changes raise the chance that a group
# holds a success: more answers per hard problem, a stronger starting policy (supervised
# fine-tuning first, section 5's point about pretrained models), a curriculum from easier
# problems, or a denser reward that credits partial progress, with its risks (sections 5 and
# 8).</details>
#
# > **Common pitfalls.** (1) Letting gradients flow through the reward weight: $R_i - b$ is a
# > constant in the surrogate loss; a baseline computed with gradients changes the estimator.
# > (2) Summing $\log\pi$ over the wrong axis: $\log \pi(y)$ is the sum over the $L$ steps of
# > one string, and the batch is averaged afterwards. (3) Reading a flat success curve as "almost
# > learning": with a sparse reward and no success in the batch, REINFORCE did not move at all.
# > (4) A KL penalty with the wrong sign or direction: the objective penalises
# > $\mathrm{KL}(\pi\,\|\,\pi_{\mathrm{ref}})$, estimated on samples from $\pi$ as
# > $\log\pi(y) - \log\pi_{\mathrm{ref}}(y)$. (5) Trusting the proxy: a rising reward-model
# > score says nothing about over-optimisation; watch the KL and check samples by another
# > measure.
#
# ## Summary
#
# * Generation is an MDP on a tree: state = prefix, action = next token, reward at the end;
#   random success is $2^{-L}$.
# * REINFORCE follows $\mathbb{E}[(R - b)\nabla\log\pi]$; since $\mathbb{E}[\nabla\log\pi] = 0$,
#   a baseline that does not depend on the sample (a constant, the leave-one-out mean) leaves it
#   unbiased, while the batch mean scales it by $(B - 1)/B$ (computed exactly). A batch without
#   reward gives a zero (or pure-noise) update: REINFORCE learned $L \le 12$ and, at $L = 16$ and
#   20, never moved a weight.
# * A dense reward learns $L = 50$ because it tells the learner where the target is.
#   Potential-based shaping (Ng et al. 1999) keeps every string's return, so for REINFORCE it is
#   only a baseline. RL on language models works with binary rewards because a pretrained policy
#   succeeds often enough.
# * $\mathbb{E}[R] - \beta\mathrm{KL}(\pi\|\pi_{\mathrm{ref}})$ is maximised by
#   $\pi_{\mathrm{ref}} e^{R/\beta}/Z$; KL-regularised REINFORCE and DPO (from Bradley-Terry
#   preferences, with no reward) both approach it, measured exactly in total variation.
# * RLHF: comparisons, a Bradley-Terry reward model, RL with a KL penalty (PPO with a critic;
#   RLOO and GRPO with group baselines), and a proxy that, optimised too hard, is exploited.
#
# **Exercise.** `exercises/ex09_reinforce`: write the REINFORCE estimator with a baseline and
# measure what the baseline does to the noise (grade it with `bitflip grade ex09`). **Next:**
# chapter 9 samples in proportion to the reward instead of maximising it (GFlowNets), turns
# every output into a training example when the target is an input (hindsight), and links the
# KL-regularised optimum back to Q-learning.
#
# ## References
#
# * Chau Yu Hei (HKUST). *Documentation of Bit Sequence mini RL project* (the write-up this
#   course follows, and its first draft). Code: https://github.com/louis845/BitSeqRLToyProblem.
# * R. J. Williams. Simple statistical gradient-following algorithms for connectionist
#   reinforcement learning. *Machine Learning* 8, 229-256, 1992.
# * W. Kool, H. van Hoof, M. Welling. Buy 4 REINFORCE samples, get a baseline for free! *ICLR
#   workshop on deep reinforcement learning meets structured prediction*, 2019 (leave-one-out).
# * A. Y. Ng, D. Harada, S. Russell. Policy invariance under reward transformations: theory and
#   application to reward shaping. *ICML*, 1999.
# * N. Lambert, J. Morrison, V. Pyatkin, S. Huang, H. Ivison, F. Brahman, et al. Tülu 3: pushing
#   frontiers in open language model post-training. arXiv:2411.15124, 2024 (verifiable rewards).
# * DeepSeek-AI. DeepSeek-R1: incentivizing reasoning capability in LLMs via reinforcement
#   learning. arXiv:2501.12948, 2025.
# * R. A. Bradley, M. E. Terry. Rank analysis of incomplete block designs: I. The method of paired
#   comparisons. *Biometrika* 39(3/4), 324-345, 1952.
# * P. Christiano, J. Leike, T. B. Brown, M. Martic, S. Legg, D. Amodei. Deep reinforcement
#   learning from human preferences. *NeurIPS*, 2017.
# * D. M. Ziegler, N. Stiennon, J. Wu, T. B. Brown, A. Radford, D. Amodei, P. Christiano,
#   G. Irving. Fine-tuning language models from human preferences. arXiv:1909.08593, 2019.
# * L. Ouyang, J. Wu, X. Jiang, D. Almeida, C. L. Wainwright, P. Mishkin, et al. Training
#   language models to follow instructions with human feedback. *NeurIPS*, 2022.
# * R. Rafailov, A. Sharma, E. Mitchell, S. Ermon, C. D. Manning, C. Finn. Direct preference
#   optimization: your language model is secretly a reward model. *NeurIPS*, 2023.
# * J. Schulman, F. Wolski, P. Dhariwal, A. Radford, O. Klimov. Proximal policy optimization
#   algorithms. arXiv:1707.06347, 2017.
# * A. Ahmadian, C. Cremer, M. Gallé, M. Fadaee, J. Kreutzer, O. Pietquin, A. Üstün, S. Hooker.
#   Back to basics: revisiting REINFORCE-style optimization for learning from human feedback in
#   LLMs. *ACL*, 2024 (RLOO).
# * Z. Shao, P. Wang, Q. Zhu, R. Xu, J. Song, X. Bi, et al. DeepSeekMath: pushing the limits of
#   mathematical reasoning in open language models. arXiv:2402.03300, 2024 (GRPO).
# * L. Gao, J. Schulman, J. Hilton. Scaling laws for reward model overoptimization. *ICML*, 2023.
# * P. Singhal, T. Goyal, J. Xu, G. Durrett. A long way to go: investigating length correlations
#   in RLHF. *COLM*, 2024 (arXiv:2310.03716, 2023).
# * C. Lee. *Reinforcement Learning*, lecture notes (policy gradients and baselines, RLHF, the
#   Bradley-Terry model, DPO). Department of Artificial Intelligence, 2024.

# %%
print(f"Chapter 8 ran in {time.time() - CHAPTER_START:.1f} s ({'quick' if QUICK else 'full'} mode)")
