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
# # Chapter 8. From bits to tokens: sparse rewards in sequence generation
#
# The write-up's first draft (Chau Yu Hei, *Documentation of Bit Sequence mini RL project*, first
# draft) posed the problem differently from bit flipping: *generate* a pre-chosen target string,
# with reward 1 for that string and 0 for every other. That is how a language model meets a sparse
# reward: it writes a text token by token and only the finished text is scored. This chapter takes
# the library from bit flipping to generation and meets the methods used there: policy gradients,
# the KL-regularised objective of RLHF and DPO, GFlowNets, and hindsight relabelling once more.
#
# **Learning goals.** After this chapter you can
# 1. write left-to-right generation as an MDP whose target is hidden in the reward, and say why random success is $2^{-L}$;
# 2. derive REINFORCE with a baseline, and show why a batch with no reward teaches it nothing;
# 3. derive the optimum $\pi^* \propto \pi_{\mathrm{ref}} e^{R/\beta}$ of the KL-regularised objective, and reach it with RL and with DPO;
# 4. train a GFlowNet with trajectory balance and compare it with reward maximisation on a multi-modal reward;
# 5. apply hindsight relabelling to a goal-conditioned generator, and link the KL-regularised optimum to soft Q-learning.
#
# **Study time.** Reading: about 60 minutes. Running: about 3 minutes on a laptop CPU.
# Terms in bold are defined where they first appear and in the [glossary](glossary.md).

# %%
import copy
import math

import matplotlib.pyplot as plt
import torch

from bitflip_lib import default_device, quick_mode
from bitflip_lib.generation.sequences import (
    GenerationEnv,
    SparseReward,
    all_strings,
    conditional_log_probs,
    empirical_distribution,
    exact_log_probs,
    kl_optimum,
    make_reward,
    policy_from_soft_q,
    random_strings,
    reinforce_loss,
    reward_distribution,
    rollout,
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

QUICK = quick_mode()
DEVICE = default_device(announce=True)
print("mode:", "QUICK (small budgets)" if QUICK else "FULL")
CPU = torch.device("cpu")  # the small networks of this chapter run fastest on the CPU

# %% [markdown]
# ## 1. Generation as an MDP
#
# Write an $L$-bit string $y = (y_1, \dots, y_L)$ from left to right. The **state** is the prefix
# $s_t = y_{<t}$, the **action** $a_t \in \{0, 1\}$ appends a bit, the transition is deterministic,
# and the episode ends after $L$ steps with the *terminal reward* $R(y) = \mathbb{1}[y = y^*]$. A
# policy $\pi(a_t \mid s_t)$ defines a distribution over whole strings, $\pi(y) = \prod_{t=1}^{L}
# \pi(y_t \mid y_{<t})$, exactly as a language model does over texts.
#
# Two differences from bit flipping matter. The target $y^*$ is *not an input*: it is hidden inside
# the reward, which the learner can only call. And each string is reached by exactly one action
# sequence, so the states form a *tree*. A writer that picks bits at random hits $y^*$ with
# probability $2^{-L}$: one in 256 at $L = 8$, one in a million at $L = 20$.

# %%
L = 8
reward = make_reward("sparse", L, seed=0)
env = GenerationEnv(reward, num_agents=4, device=DEVICE)
env.reset()
bits = torch.randint(0, 2, (L, 4), generator=torch.Generator().manual_seed(0)).to(DEVICE)
steps = [env.step(bits[t]) for t in range(L)]
print("rewards paid along the way:", [s.reward.tolist() for s in steps[:-1]][:2], "... at the end:", steps[-1].reward.tolist())
assert all(float(s.reward.abs().sum()) == 0 for s in steps[:-1]) and steps[-1].done  # only the finished string is scored

uniform = (torch.rand(2**18, L, generator=torch.Generator().manual_seed(0)) < 0.5).float()
rate = float(reward(uniform).mean())
print(f"uniform random writer at L = {L}: success {rate:.5f}, exactly 2^-L = {2**-L:.5f}")
assert abs(rate - 2**-L) < 4 * math.sqrt(2**-L / len(uniform))

# %% [markdown]
# ## 2. Policy gradients under a sparse reward
#
# Our policy is a small network that reads the prefix (which bits are written, and where we are) and outputs
# $\pi_\theta(a_t \mid y_{<t})$: a tiny language model. To maximise $J(\theta) = \mathbb{E}_{y \sim \pi_\theta}[R(y)]$,
# use $\nabla_\theta \pi = \pi \nabla_\theta \log \pi$:
# $$\nabla_\theta J = \sum_y \pi_\theta(y) R(y) \nabla_\theta \log \pi_\theta(y) \approx \frac1B \sum_{i=1}^B (R(y_i) - b)\, \nabla_\theta \sum_{t=1}^L \log \pi_\theta(y_{i,t} \mid y_{i,<t}),$$
# the REINFORCE estimator (Williams 1992). A **baseline** $b$ is a number subtracted from every
# reward. One that does not depend on the sample $y_i$ it multiplies changes nothing on average,
# because $\mathbb{E}_\pi[\nabla \log \pi(y)] = \sum_y \pi(y) \nabla \log \pi(y) = \nabla \sum_y
# \pi(y) = \nabla 1 = 0$ (Lee's lecture notes derive the same for one step of an MDP), but it
# changes the variance. The usual batch mean $b = \bar R$ is not quite such a baseline: it
# contains $R_i / B$. The other samples are independent of $y_i$, so only that part survives the
# expectation, $\mathbb{E}[(R_i - \bar R) \nabla \log \pi(y_i)] = (1 - \frac1B)\,
# \mathbb{E}[R\, \nabla \log \pi(y)]$: the batch-mean estimate points the right way but is
# $(B - 1)/B$ times too short (1.6% at $B = 64$). The *leave-one-out* baseline, the mean of the
# other $B - 1$ rewards (RLOO; Kool et al. 2019), is independent of $y_i$ and exactly unbiased;
# its estimate is the batch-mean one times $B/(B - 1)$. Now the sparse-reward fact: *if every
# reward in the batch is 0*, the estimate is exactly zero with $b = 0$ and with the batch mean
# $b = \bar R = 0$; any other constant baseline gives $-b \cdot \frac1B\sum_i \nabla \log
# \pi(y_i)$, which is pure noise with mean zero. Nothing can be learnt.

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
    print(f"all-zero rewards, baseline {b!r}: gradient norm {float(g.norm()):.4f}")
    assert (float(g.abs().max()) == 0.0) == (b != 1.0)  # exactly zero for none and mean; nonzero noise for b = 1

strings = all_strings(6)
probs = exact_log_probs(policy).exp().float()
exact_mean = gradient(-(probs * policy.log_prob(strings)).sum())  # E[-b grad log pi] with b = 1, summed over all 64 strings
noise = torch.stack([gradient(reinforce_loss(policy.log_prob(policy.sample(32, g)), zeros, 1.0))
                     for g in [torch.Generator().manual_seed(100 + i) for i in range(200)]])
z = noise.mean(0) / (noise.std(0) / math.sqrt(len(noise))).clamp_min(1e-12)
print(f"constant baseline: exact mean {float(exact_mean.abs().max()):.1e} (max over weights); average of 200 batches is "
      f"{float(noise.mean(0).norm()):.4f} against a single batch's {float(noise.norm(dim=1).mean()):.4f}")
assert float(exact_mean.abs().max()) < 1e-5 and float(z.abs().max()) < 5 and abs(float(z.mean())) < 0.3

# %%
# The batch-mean baseline, exactly: the estimate averaged over every batch of 3 strings of 4 bits.
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


true_gradient = expected_gradient((pi * R * log_pi).sum())  # grad E[R] = sum_y pi R grad log pi
with_mean = expected_gradient((weight * (r - r.mean(1, keepdim=True)) * log_pi[batches]).sum() / B)
leave_one_out = (r.sum(1, keepdim=True) - r) / (B - 1)
with_loo = expected_gradient((weight * (r - leave_one_out) * log_pi[batches]).sum() / B)
share = lambda g: float(g @ true_gradient / true_gradient.norm() ** 2)  # along the true gradient
print(f"E[estimate] / true gradient: batch mean {share(with_mean):.4f} "
      f"((B - 1)/B = {(B - 1) / B:.4f}), leave-one-out {share(with_loo):.4f}")
assert torch.allclose(with_mean, (B - 1) / B * true_gradient, atol=1e-6)  # scaled by (B - 1)/B
assert torch.allclose(with_loo, true_gradient, atol=1e-6)  # unbiased
assert (with_mean - true_gradient).abs().max() > 0.01  # the scaling is not rounding

# %% [markdown]
# So REINFORCE learns only once a batch contains a success. We train it with the batch-mean baseline
# (64 strings per step, Adam) on the sparse reward for several lengths. Prediction first: at which $L$ will it stop learning?

# %%
LENGTHS = [4, 8, 20] if QUICK else [4, 8, 12, 16, 20]
BUDGET = 200 if QUICK else 400
sparse_runs = {}
for L in LENGTHS:
    config = GenerateConfig(method="reinforce", length=L, reward="sparse", steps=BUDGET, batch_size=64, lr=2e-3,
                            eval_every=25, eval_samples=256)
    start = parameters_vector(seeded_policy(L, config.hidden, config.seed, CPU))
    run = sparse_runs[L] = train_generator(config)
    unchanged = torch.equal(parameters_vector(run.policy), start)
    print(f"L = {L:2d}: success {run.final['success']:.3f}, successes seen in training {run.rewards_seen}, "
          f"weights unchanged: {unchanged}")
for L in LENGTHS:
    if L <= 8:
        assert sparse_runs[L].final["success"] > 0.9
start20 = parameters_vector(seeded_policy(20, (128, 128), 0, CPU))
assert sparse_runs[20].rewards_seen == 0 and torch.equal(parameters_vector(sparse_runs[20].policy), start20)
assert sparse_runs[20].final["success"] == 0.0

# %% [markdown]
# Up to $L = 8$ REINFORCE solves the task within the budget; at $L = 20$, in $64 \times$ budget
# samples, not one success is seen (each has probability $2^{-20} \approx 10^{-6}$), so every
# gradient was exactly zero and the weights are *bit for bit* the initial ones. A *dense* stand-in
# for a reward model changes this: $R(y) = e^{-0.2\, d(y, y^*)}$, with $d$ the Hamming distance,
# scores near misses, so every batch carries signal. Same learner, $L = 50$:

# %%
DENSE_LENGTHS = [50] if QUICK else [20, 50]
dense_runs = {L: train_generator(GenerateConfig(method="reinforce", length=L, reward="dense", sharpness=0.2, steps=300,
                                                batch_size=64, lr=1e-3, eval_every=25, eval_samples=256))
              for L in DENSE_LENGTHS}
fig, ax = plt.subplots(figsize=(7, 3.2))
for L, run in {**sparse_runs, **{f"{k}, dense": v for k, v in dense_runs.items()}}.items():
    ax.plot(*run.curve("success"), label=f"L = {L}")
ax.set(xlabel="gradient step", ylabel="success (on-policy samples)", title="REINFORCE: sparse reward against a dense one")
ax.legend(fontsize=8)
plt.show()
for L, run in dense_runs.items():
    print(f"dense reward, L = {L}: success {run.final['success']:.3f}")
    assert run.final["success"] > 0.9

# %% [markdown]
# Honestly stated: the dense reward did not make REINFORCE smarter, it *gave it more information*. A
# reward that counts wrong bits tells the learner, bit by bit, where the target is. That is not
# what RL on language models depends on, though: it also works with a binary reward that only
# checks whether a final answer is right (reinforcement learning with verifiable rewards; Lambert
# et al. 2024, DeepSeek-AI 2025). What REINFORCE needs is successes in its batches, and what
# decides that is how often the starting policy succeeds. Ours starts uniform: a batch of 64 at
# $L = 20$ holds a success with probability about $64 \cdot 2^{-20} \approx 6 \cdot 10^{-5}$. A
# pretrained model starts as a reference policy that already solves many problems some of the
# time: at a success rate of one in ten, 99.9% of such batches hold one (the next cell computes
# both). Where successes are as rare as here, a denser reward is one way out, and section 5 shows
# what hindsight needs instead.

# %%
def batch_has_success(p: float, batch: int = 64) -> float:
    """Probability that a batch of independent samples, each a success with probability p,
    holds one."""
    return 1 - (1 - p) ** batch


print(f"P(a batch of 64 holds a success): uniform writer at L = 20 "
      f"{batch_has_success(2**-20):.1e}, a policy that succeeds one time in ten "
      f"{batch_has_success(0.1):.4f}")
assert 6e-5 < batch_has_success(2**-20) < 6.2e-5 and batch_has_success(0.1) > 0.998

# %% [markdown]
# ## 3. The KL-regularised objective (RLHF) and DPO
#
# RL fine-tuning of language models maximises the reward while staying close to a reference model
# $\pi_{\mathrm{ref}}$ (Lee's lecture notes present it with DPO): $\max_\pi
# \mathbb{E}_{y\sim\pi}[R(y)] - \beta\, \mathrm{KL}(\pi \,\|\, \pi_{\mathrm{ref}})$, where the **KL
# divergence** $\mathrm{KL}(p \,\|\, q) = \sum_y p(y) \log \frac{p(y)}{q(y)} \ge 0$ is zero only
# when $p = q$. Write $Z = \sum_y \pi_{\mathrm{ref}}(y) e^{R(y)/\beta}$ and $\pi^*(y) =
# \pi_{\mathrm{ref}}(y) e^{R(y)/\beta} / Z$. Then
# $$\mathbb{E}_\pi[R] - \beta\,\mathrm{KL}(\pi\|\pi_{\mathrm{ref}}) = -\beta\, \mathbb{E}_\pi\Big[\log \frac{\pi(y)}{\pi_{\mathrm{ref}}(y) e^{R(y)/\beta}}\Big] = \beta \log Z - \beta\, \mathrm{KL}(\pi \,\|\, \pi^*),$$
# so the unique maximiser is $\pi^*$. At small $L$ we can enumerate all $2^L$ strings and measure how far a
# trained policy is from $\pi^*$ in **total variation**, $\mathrm{TV}(p, q) = \frac12\sum_y |p(y) - q(y)|$. Here
# $L = 8$, the reward model's score is $R(y) = -d(y, y^*)$, $\beta = 1$, and $\pi_{\mathrm{ref}}$ is the initial network.
# REINFORCE on the per-sample reward $R(y) - \beta \log(\pi(y)/\pi_{\mathrm{ref}}(y))$ follows the gradient of this objective.

# %%
KL_STEPS = 300 if QUICK else 600
kl_config = GenerateConfig(method="kl", length=8, reward="distance", beta=1.0, steps=KL_STEPS, batch_size=128, lr=1e-3,
                           eval_every=25, eval_samples=256)
kl_run = train_generator(kl_config)
kl_tv = kl_run.curve("tv")[1]
print(f"KL-regularised REINFORCE: TV to pi* {kl_tv[0]:.3f} at the start -> {kl_tv[-1]:.4f} after {KL_STEPS} steps")
assert kl_tv[0] > 0.3 and kl_tv[-1] < 0.02 and max(kl_tv[len(kl_tv) // 2:]) < kl_tv[0] / 5

# %% [markdown]
# **DPO** (direct preference optimisation, Rafailov et al. 2023) skips the reward model. In RLHF
# the reward model is fitted to comparisons. The **Bradley-Terry model** (Bradley and Terry 1952)
# says that an annotator shown $y_1$ and $y_2$ prefers $y_1$ with probability
# $\sigma(R(y_1) - R(y_2))$, $\sigma$ the logistic function; the reward model maximises the
# likelihood of the preferences seen, that is, it minimises $-\log\sigma(R(y_w) - R(y_l))$ over
# pairs where $y_w$ was preferred to $y_l$. Taking logarithms in $\pi^* = \pi_{\mathrm{ref}}
# e^{R/\beta} / Z$ gives $R(y) = \beta\log\frac{\pi^*(y)}{\pi_{\mathrm{ref}}(y)} + \beta\log Z$:
# at the optimum the reward can be read off the policy, and $\beta \log Z$ cancels in
# $R(y_w) - R(y_l)$. So DPO puts $\beta\log(\pi/\pi_{\mathrm{ref}})$ in place of $R$ in the
# Bradley-Terry loss and trains the policy directly:
# $$-\log\sigma\Big(\beta\log\frac{\pi(y_w)}{\pi_{\mathrm{ref}}(y_w)} -
#   \beta\log\frac{\pi(y_l)}{\pi_{\mathrm{ref}}(y_l)}\Big).$$
# We draw pairs from $\pi_{\mathrm{ref}}$ and let a simulated annotator prefer one string of each
# pair with Bradley-Terry probability $\sigma(R(y_1) - R(y_2))$, for the $R = -d(y, y^*)$ above. No
# reward is ever given to the learner, yet it should approach the same $\pi^*$:

# %%
dpo_run = train_generator(kl_config.replace(method="dpo", steps=200 if QUICK else 400, batch_size=256, lr=3e-3,
                                            num_pairs=32768))
dpo_tv = dpo_run.curve("tv")[1]
print(f"DPO from {dpo_run.config.num_pairs} preference pairs: TV to pi* {dpo_tv[0]:.3f} -> {dpo_tv[-1]:.3f}")
assert dpo_tv[-1] < 0.1 and dpo_tv[-1] < dpo_tv[0] / 4
fig, ax = plt.subplots(figsize=(6.5, 3.0))
ax.plot(*kl_run.curve("tv"), label="KL-regularised REINFORCE")
ax.plot(*dpo_run.curve("tv"), label="DPO (preference pairs only)")
ax.set(xlabel="gradient step", ylabel="TV(pi, pi*)", yscale="log", title="Both approach pi* = pi_ref exp(R/beta) / Z (L = 8)")
ax.legend()
plt.show()

# %% [markdown]
# DPO stops at a TV of a few hundredths: it estimates 256 rewards from noisy comparisons, and every
# error in a reward is divided by $\beta$ in $\log\pi$; more pairs bring it closer. RL with the reward model
# reaches $\pi^*$ almost exactly, because here the reward model is exact.
#
# ## 4. GFlowNets: sampling in proportion to the reward
#
# A GFlowNet (Bengio et al. 2021) learns to sample $y$ with probability $R(y)/Z$, not to maximise
# it. It builds $y$ step by step with a **forward policy** $P_F(s_{t+1} \mid s_t)$, the
# probability of each next state (here: of each next bit), and it is trained together with a
# **backward policy** $P_B(s_t \mid s_{t+1})$, the probability of each parent of a state, that is,
# of each way of undoing the last step. **Trajectory balance** (Malkin et al. 2022) asks, for every
# trajectory, that $Z \prod_t P_F(s_{t+1}\mid s_t) = R(y) \prod_t P_B(s_t \mid s_{t+1})$. On our
# tree every state has one parent, so $P_B = 1$, $P_F$ is the policy $\pi_\theta$, and the loss
# on sampled strings is
# $$\mathcal{L}_{TB} = \Big(\log Z_\theta + \sum_{t=1}^L \log \pi_\theta(y_t \mid y_{<t}) - \log R(y)\Big)^2,$$
# with $\log Z_\theta$ one more learned number. (This is the $\beta = 1$, uniform-$\pi_{\mathrm{ref}}$ case of section 3 with
# reward $\log R$.) The reward has four hidden targets, $R(y) = \sum_{k=1}^4 e^{-2\,d(y, m_k)}$, at $L = 8$. We train
# a GFlowNet and reward-maximising REINFORCE on it, with the same network, budget and seed:

# %%
GFN_STEPS = 400 if QUICK else 800
mm_config = GenerateConfig(length=8, reward="multimodal", steps=GFN_STEPS, batch_size=64, lr=1e-3, eval_every=25, eval_samples=256)
gfn_run = train_generator(mm_config.replace(method="gflownet"))
rl_run = train_generator(mm_config.replace(method="reinforce"))
target = reward_distribution(gfn_run.reward)
true_log_Z = math.log(float(gfn_run.reward(all_strings(8)).sum()))
modes_target = [float(target[i]) for i in range(256) if gfn_run.reward.is_success(all_strings(8)[i:i + 1])]
gfn_modes, rl_modes = mode_probabilities(gfn_run.policy, gfn_run.reward), mode_probabilities(rl_run.policy, gfn_run.reward)
rl_tv = total_variation(exact_log_probs(rl_run.policy).exp(), target)
print(f"target probability of each mode: {[round(m, 3) for m in modes_target]}")
print(f"GFlowNet : modes {[round(m, 3) for m in gfn_modes]}, TV to R/Z {gfn_run.final['tv']:.3f}, "
      f"log Z {float(gfn_run.log_Z):.3f} (true {true_log_Z:.3f})")
print(f"REINFORCE: modes {[round(m, 3) for m in rl_modes]}, TV to R/Z {rl_tv:.3f}")
assert gfn_run.final["tv"] < 0.05 and abs(float(gfn_run.log_Z) - true_log_Z) < 0.1
assert all(abs(m - t) < 0.3 * t for m, t in zip(gfn_modes, modes_target))  # every mode within 30% of R/Z
assert max(rl_modes) > 0.9 and sorted(rl_modes)[-2] < 0.01 and rl_tv > 0.6  # RL piles onto one mode

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.0), sharey=True)
for ax, run, name in ((axes[0], rl_run, "REINFORCE (maximise E[R])"), (axes[1], gfn_run, "GFlowNet (trajectory balance)")):
    ax.fill_between(range(256), target.numpy(), step="mid", color="0.8", label="R / Z")
    ax.plot(exact_log_probs(run.policy).exp().numpy(), lw=1, label="learned")
    ax.set(title=name, xlabel="string (binary order)", yscale="log", ylim=(1e-5, 1.5))
axes[0].set_ylabel("probability")
axes[0].legend()
plt.show()

# %% [markdown]
# Reward maximisation found one mode and put everything on it: from the RL point of view that is the
# optimum. The GFlowNet spreads its samples over all four modes and their neighbourhoods in proportion to $R$,
# and its $\log Z$ converges to $\log\sum_y R(y)$: diversity is part of the objective.
#
# **Sparse rewards hit GFlowNets too.** Make the reward exact, $R(y) = \varepsilon + \sum_k \mathbb{1}[y = m_k]$, at
# $L = 10$: a floor $\varepsilon$ keeps $\log R$ finite. On-policy, the sampler only learns about modes it happens to
# write; once it concentrates on the modes found so far, a missing mode is written with probability near
# $\varepsilon$, is never found, and the loss cannot tell. Two remedies: *off-policy exploration*
# (train on samples where each bit is uniform with probability 0.15; trajectory balance is valid for
# any sampler that can write every string) or a *larger floor*, which tempers the target itself.

# %%
SPARSE_SEEDS = [1] if QUICK else [0, 1]
sparse_gfn = {}
for seed in SPARSE_SEEDS:
    for floor, epsilon in ((1e-5, 0.0), (1e-5, 0.15), (1e-3, 0.0)):
        c = GenerateConfig(method="gflownet", length=10, reward="multimodal", sharpness=math.inf, floor=floor,
                           epsilon=epsilon, steps=450 if QUICK else 600, batch_size=64, eval_every=50, eval_samples=128, seed=seed)
        r = sparse_gfn[seed, floor, epsilon] = train_generator(c)
        print(f"seed {seed}, floor {floor:g}, exploration {epsilon}: modes covered {r.final['modes_covered']} / 4, "
              f"mass per mode {[round(m, 2) for m in r.final['mode_mass']]}, TV {r.final['tv']:.3f}")
for seed in SPARSE_SEEDS:
    assert sparse_gfn[seed, 1e-5, 0.0].final["modes_covered"] < 4  # on-policy loses modes
    assert sparse_gfn[seed, 1e-5, 0.15].final["modes_covered"] == 4  # exploration finds them all
    assert sparse_gfn[seed, 1e-3, 0.0].final["modes_covered"] == 4  # so does a larger floor

# %% [markdown]
# ## 5. Hindsight for sequences
#
# Give the generator an *instruction*: $\pi(y \mid g)$, "write $g$" (a copy task that makes the
# point plainly; the instruction could also be a property of the output, such as its number of
# ones). The sparse reward $\mathbb{1}[y = g]$ is as hopeless as before at $L = 50$. But every
# string $y$ the policy writes is a *correct* answer to the instruction "write $y$". Relabel the
# instruction and the sample becomes supervised data: maximise $\log\pi(y \mid g{=}y)$. The
# relabelling is HER's idea (Andrychowicz et al. 2017, chapter 4), but what learns from it differs.
# HER hands relabelled transitions to an off-policy TD learner (DQN), which still learns values by
# bootstrapping; here the relabelled samples are imitated directly, by maximum likelihood. That is
# **goal-conditioned supervised learning** (GCSL, Ghosh et al. 2021); for language models and their
# instructions, hindsight instruction relabelling (Zhang et al. 2023).

# %%
HL = 50
h_config = GenerateConfig(method="hindsight", length=HL, steps=300 if QUICK else 400, batch_size=128, lr=3e-3,
                          hidden=(256,) if QUICK else (256, 256), eval_every=50, eval_samples=512)
hindsight = train_hindsight(h_config)
plain = train_hindsight(h_config.replace(steps=60), relabel=False)
plain_start = parameters_vector(seeded_policy(HL, h_config.hidden, 0, CPU, condition_length=HL))
print(f"L = {HL}, held-out instructions: hindsight success {hindsight.final['success']:.3f} "
      f"(bits right {hindsight.final['bit_accuracy']:.4f}); sparse REINFORCE success {plain.final['success']:.3f}, "
      f"rewards seen {plain.rewards_seen}, weights unchanged {torch.equal(parameters_vector(plain.policy), plain_start)}")
assert hindsight.final["success"] > 0.9
assert plain.rewards_seen == 0 and torch.equal(parameters_vector(plain.policy), plain_start)

# %% [markdown]
# What hindsight needs is the catch: *the target must be an input* of the policy, and the reward
# must be a known function of output and instruction, so that any output can be relabelled. The
# task as the write-up's first draft states it (pre-pick one target string; reward 1 for
# generating exactly it, 0 for anything else) hides $y^*$ in a black-box reward and gives
# neither: there, only exploration (or a denser reward) helps.
#
# ## 6. Back to Q-learning: the soft Q-function
#
# On a deterministic token tree, define **soft values** by backward induction: $V(y) = R(y)$ at the
# leaves, $Q(s, a) = V(s a)$ (appending $a$ is deterministic and pays nothing), and $V(s) = \beta
# \log \sum_a \pi_{\mathrm{ref}}(a\mid s)\, e^{Q(s,a)/\beta}$. The soft-max replaces the max of the
# Bellman optimality equation of chapters 2-6, and becomes it as $\beta \to 0$. Then $V(\text{root})
# = \beta\log Z$ and $\pi^*(a\mid s) = \pi_{\mathrm{ref}}(a\mid s)\, e^{(Q(s,a) - V(s))/\beta}$: the
# optimal policy's per-token log-ratio $\beta\log\frac{\pi^*}{\pi_{\mathrm{ref}}}$ *is* a soft
# advantage, which is why Rafailov et al. (2024) say a language model trained this way "is secretly
# a Q-function". We check this exactly on section 3's problem:

# %%
reference = kl_run.reference
ref_cond = conditional_log_probs(reference)
rewards8 = kl_run.reward(all_strings(8)).double()
V, Q = soft_values(rewards8, ref_cond, beta=1.0)
pi_star = kl_optimum(exact_log_probs(reference), rewards8, beta=1.0)
tv_soft_q = total_variation(policy_from_soft_q(V, Q, ref_cond, 1.0), pi_star)
log_Z = float(torch.logsumexp(exact_log_probs(reference) + rewards8, 0))
learned = conditional_log_probs(kl_run.policy)
ratio_error = max(float(((lp - ref) - (q - v[:, None])).abs().max()) for lp, ref, q, v in zip(learned, ref_cond, Q, V))
print(f"soft-Q policy vs pi*: TV {tv_soft_q:.1e}; V(root) = {float(V[0][0]):.4f}, beta log Z = {log_Z:.4f}")
print(f"trained KL policy: largest |log pi/pi_ref - (Q - V)| over all 255 prefixes and both bits: {ratio_error:.3f}")
V_small = soft_values(rewards8, ref_cond, beta=0.001)[0]  # within beta log(1 / pi_ref(y*)) of max R
assert tv_soft_q < 1e-6 and abs(float(V[0][0]) - log_Z) < 1e-6 and ratio_error < 0.25  # 1e-6: float32 rounding
assert abs(float(V_small[0][0]) - float(rewards8.max())) < 0.01  # soft max -> max: Q-learning's backup

# %% [markdown]
# So the trained KL-regularised policy carries, in its log-probabilities, the soft Q-values of the tree: a DQN-style
# learner with a log-sum-exp backup would have found the same thing from the other side.
#
# ## 7. Try it yourself
#
# Choose $L$, the reward and $\beta$; press *Train*. Left: REINFORCE on $\mathbb{E}[R] -
# \beta\,\mathrm{KL}$ against its target $\pi_{\mathrm{ref}} e^{R/\beta}/Z$; right: the GFlowNet
# against $R/Z$. Try a small $\beta$ on the multi-modal reward and watch the left panel collapse
# onto one mode; try the sparse reward at $L = 10$. The cell after it runs a tiny blocking run.

# %%
from bitflip_lib.ui.playground import GenerationPlayground

play = GenerationPlayground(length=6, reward="multimodal", beta=0.5, steps=300)
play

# %%
demo = play.run(steps=20)  # tiny, only to check the playground; press Train for real runs
assert set(demo) == {"REINFORCE + KL", "GFlowNet (TB)"} and play.redraws >= 2 and play.error is None

# %% [markdown]
# ## Check your understanding
#
# 1. A batch of 64 strings at $L = 30$ all score 0. What does REINFORCE with the batch-mean baseline do to the weights?
# <details><summary>Answer</summary>Nothing at all: every $R_i - \bar R$ is 0, so the gradient is exactly zero (section 2
# asserts this bit for bit). A constant baseline $b \neq 0$ would move them, at random.</details>
#
# 2. As $\beta \to \infty$, what does $\pi^* \propto \pi_{\mathrm{ref}} e^{R/\beta}$ become? And as $\beta \to 0$?
# <details><summary>Answer</summary>$\pi_{\mathrm{ref}}$ itself; and, as $\beta \to 0$, $\pi_{\mathrm{ref}}$ restricted to the
# strings of maximal reward: plain reward maximisation, which is what collapsed onto one mode in section 4.</details>
#
# 3. Why is $P_B = 1$ in trajectory balance here, and when would it not be?
# <details><summary>Answer</summary>Writing left to right, each prefix has exactly one parent, so the backward step is
# certain. If bits could be set in any order, a string would have many construction orders and $P_B$ would have to
# spread over its $L$ possible last bits.</details>
#
# 4. Hindsight solved $L = 50$. Why can it not be used on the task as the write-up's first draft
# states it (one pre-picked target string, reward 1 only for generating it)?
# <details><summary>Answer</summary>There the target is hidden in a black-box reward: the policy does not take it as an
# input, and we cannot compute the reward for a relabelled target.</details>
#
# ## Summary
#
# * Generation is an MDP on a tree: state = prefix, action = next token, reward at the end; random success is $2^{-L}$.
# * REINFORCE with a baseline that does not depend on the sample it weights (a constant, or the
#   leave-one-out mean) is unbiased; the batch mean scales it by $(B - 1)/B$. A batch with no
#   reward gives a zero (or pure-noise) gradient: it learned $L \le 8$ and, at $L = 20$, never
#   moved a weight. A dense reward learns $L = 50$ because it leaks the target; RL on language
#   models works with binary rewards because a pretrained policy succeeds often enough.
# * $\mathbb{E}[R] - \beta\mathrm{KL}(\pi\|\pi_{\mathrm{ref}})$ is maximised by $\pi_{\mathrm{ref}} e^{R/\beta}/Z$; RL and DPO both approach it (TV measured exactly).
# * Trajectory balance samples in proportion to $R$ and covers all modes where RL collapses onto one; with
#   sparse rewards it needs exploration or a floor.
# * Hindsight turns every output into a supervised example when the target is an input
#   (goal-conditioned supervised learning, not HER's TD learning); the KL optimum's log-ratio is a
#   soft Q-function, the bridge back to DQN.
#
# **Exercises.** `exercises/ex09_reinforce`: the REINFORCE estimator with a baseline. `exercises/ex10_trajectory_balance`:
# the trajectory-balance loss with a learned $\log Z$. Grade them with `bitflip grade ex09` and `bitflip grade ex10`.
#
# ## References
#
# * R. J. Williams. Simple statistical gradient-following algorithms for connectionist reinforcement learning. *Machine Learning* 8, 229-256, 1992.
# * R. Rafailov, A. Sharma, E. Mitchell, S. Ermon, C. D. Manning, C. Finn. Direct preference optimization: your language model is secretly a reward model. *NeurIPS* 2023.
# * E. Bengio, M. Jain, M. Korablyov, D. Precup, Y. Bengio. Flow network based generative models for non-iterative diverse candidate generation. *NeurIPS* 2021.
# * N. Malkin, M. Jain, E. Bengio, C. Sun, Y. Bengio. Trajectory balance: improved credit assignment in GFlowNets. *NeurIPS* 2022.
# * M. Andrychowicz, F. Wolski, A. Ray, J. Schneider, R. Fong, P. Welinder, B. McGrew, J. Tobin, P. Abbeel, W. Zaremba. Hindsight experience replay. *NeurIPS* 2017.
# * R. Rafailov, J. Hejna, R. Park, C. Finn. From $r$ to $Q^*$: your language model is secretly a Q-function. arXiv:2404.12358, 2024.
# * E. J. Hu, M. Jain, E. Elmoznino, Y. Kaddar, G. Lajoie, Y. Bengio, N. Malkin. Amortizing intractable inference in large language models. *ICLR* 2024.
# * Chau Yu Hei (HKUST). *Documentation of Bit Sequence mini RL project* (the write-up this course
#   follows, and its first draft). Code: https://github.com/louis845/BitSeqRLToyProblem.
# * C. Lee. *Reinforcement Learning*, lecture notes (policy gradients and baselines, RLHF, the
#   Bradley-Terry model, DPO). Department of Artificial Intelligence, 2024.
# * W. Kool, H. van Hoof, M. Welling. Buy 4 REINFORCE samples, get a baseline for free! *ICLR
#   workshop on deep reinforcement learning meets structured prediction*, 2019 (leave-one-out).
# * R. A. Bradley, M. E. Terry. Rank analysis of incomplete block designs: I. The method of paired
#   comparisons. *Biometrika* 39(3/4): 324-345, 1952.
# * D. Ghosh, A. Gupta, A. Reddy, J. Fu, C. Devin, B. Eysenbach, S. Levine. Learning to reach goals
#   via iterated supervised learning. *ICLR*, 2021 (GCSL).
# * T. Zhang, F. Liu, J. Wong, P. Abbeel, J. E. Gonzalez. The wisdom of hindsight makes language
#   models better instruction followers. *ICML*, 2023 (hindsight instruction relabelling).
# * N. Lambert, J. Morrison, V. Pyatkin, S. Huang, H. Ivison, F. Brahman, et al. Tülu 3: pushing
#   frontiers in open language model post-training. arXiv:2411.15124, 2024 (verifiable rewards).
# * DeepSeek-AI. DeepSeek-R1: incentivizing reasoning capability in LLMs via reinforcement
#   learning. arXiv:2501.12948, 2025.
