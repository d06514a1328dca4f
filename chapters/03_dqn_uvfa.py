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
# # Chapter 3. Deep Q-networks and universal value function approximators
#
# Chapter 2 stored one number per (state, goal, action) triple. That table has $n \cdot 4^n$
# entries: about 50,000 at $n = 6$, about 10^7 at $n = 10$, and more than there are atoms in
# the universe long before $n = 100$. This chapter replaces it with a neural network that takes the
# state and the goal as inputs, and trains it with deep Q-learning (DQN). Then it runs the
# result against a growing number of bits and watches it stop working, and explains why.
#
# **Learning goals.** After this chapter you can
# 1. write down the goal-conditioned Q-network of the write-up (a UVFA, Schaul et al. 2015) and
#    count its parameters;
# 2. explain the three ingredients DQN adds to Q-learning: a replay buffer, a TD target computed
#    with a slowly moving target network, and a decaying exploration rate;
# 3. read the training loop of `bitflip_lib.trainer.train` (16 training agents, 1024 test
#    agents, "solved" = greedy success >= 0.99 five evaluations in a row);
# 4. show that vanilla DQN learns small n and fails from n = 15 on, and explain the failure by
#    counting rewards: the expected number of rewarded transitions against $2^n$.
#
# **Run time.** Quick mode (CI, `BITFLIP_QUICK=1`): about 2 minutes on a 2-core CPU (3.6 minutes
# measured on a 2-core machine shared with several other jobs). Full mode: 21 minutes measured
# on this 2-core CPU (one torch thread, the other core busy; the write-up's network is expensive:
# up to 1 s per iteration at n = 20); a GPU is used automatically when there is one.

# %%
import math

import torch

from bitflip_lib import BitFlipEnv, default_device, quick_mode
from bitflip_lib.config import make_config
from bitflip_lib.dqn import EpsilonSchedule, epsilon_greedy, td_target
from bitflip_lib.networks import UVFA
from bitflip_lib.plots import new_figure, plot_metric, plot_training
from bitflip_lib.replay import EpisodeBatch, ReplayBuffer
from bitflip_lib.theory import expected_rewarded_transitions, random_success_probability
from bitflip_lib.trainer import train

QUICK = quick_mode()
DEVICE = default_device(announce=True)
print("mode:", "QUICK (small budgets, for CI)" if QUICK else "FULL")
SHOW_PROGRESS = not QUICK  # progress bars for long full-mode runs; CI logs need none

# %% [markdown]
# ## 1. From a table to a goal-conditioned network
#
# A Q-network for this task maps a state $s \in \{0,1\}^n$ and a goal $g \in \{0,1\}^n$ to $n$
# numbers, one per action (flip bit $a$): $Q_\theta(s, g, \cdot) \in \mathbb{R}^n$. Acting greedily
# costs one forward pass and an argmax over $n$ outputs.
#
# A *universal value function approximator* (UVFA, Schaul et al. 2015) embeds the state and the
# goal separately and combines the two embeddings. The write-up (Chau, seeds/000, appendix 4.2)
# maps each of them through one linear layer and a GELU into $\mathbb{R}^{128}$, and combines
# them with a bilinear form, one matrix $W_a$ per action:
#
# $$\phi(s) = \mathrm{GELU}(A s + b), \qquad \psi(g) = \mathrm{GELU}(C g + c), \qquad
#   Q_\theta(s, g, a) = \phi(s)^\top W_a\, \psi(g) + w_a .$$
#
# Schaul et al. suggest a dot product of the two embeddings; putting a linear map in front of a
# dot product gives exactly a bilinear form, which is why the write-up uses one. The price is the
# $128 \times 128 \times n$ weights of the $W_a$. Let us count.

# %%
def uvfa_parameter_count(n: int, embed: int = 128) -> int:
    """Two encoders (weights and biases), n bilinear matrices, n output biases."""
    return 2 * (n * embed + embed) + n * embed * embed + n


for n in (5, 10, 15, 20, 50):
    network = UVFA(n)
    counted = sum(p.numel() for p in network.parameters())
    assert counted == uvfa_parameter_count(n)
    print(f"n = {n:2d}: UVFA has {counted:>9,} parameters; a Q table would have n * 4^n = {n * 4**n:.2e} entries")

# %% [markdown]
# The network grows linearly in $n$, the table exponentially. At $n = 5$ the network is *larger*
# than the table (5,120 entries); from $n = 10$ on it is smaller by orders of magnitude, and it can
# generalise: two goals that share most bits get similar embeddings. Whether it *does* generalise
# from what it sees is the question of this chapter.
#
# The network's output on a batch of 4 random (state, goal) pairs at $n = 5$:

# %%
env = BitFlipEnv(5, num_agents=4, device="cpu", seed=0)
state, goal = env.reset()
q = UVFA(5)(state, goal)
print("Q-values, one row per agent, one column per bit:\n", q.detach().numpy().round(3))
assert q.shape == (4, 5)

# %% [markdown]
# ## 2. The TD target
#
# Q-learning moves $Q(s, g, a)$ towards the *TD target*, the reward plus the discounted value of
# the best next action:
#
# $$y = r + \gamma\,(1 - \mathrm{done})\,\max_{a'} Q_{\bar\theta}(s', g, a'),
#   \qquad \mathcal{L}(\theta) = \mathbb{E}\big[(Q_\theta(s, g, a) - y)^2\big].$$
#
# Here $r = 1$ exactly when $s' = g$ (then the episode is done and nothing is bootstrapped) and
# $r = 0$ otherwise. Two details matter for stability and come back in chapter 5:
#
# * $Q_{\bar\theta}$ is a **target network**, a copy of the online network that follows it slowly
#   (Polyak averaging, $\bar\theta \leftarrow (1 - \tau)\bar\theta + \tau\theta$ after each gradient
#   step), so the target does not move with every step it is chasing;
# * with rewards in $\{0, 1\}$ every true Q-value lies in $[0, 1]$, so the target is **clipped** to
#   $[0, 1]$ (the write-up's appendix 4.4).
#
# `bitflip_lib.dqn.td_target` computes it for a batch (exercise ex03 asks you to write it):

# %%
reward = torch.tensor([1.0, 0.0, 0.0])
done = torch.tensor([1.0, 0.0, 0.0])
next_q = torch.tensor([[0.3, 0.9, 0.1],   # done: ignored
                       [0.2, 0.5, 0.4],   # bootstraps from max = 0.5
                       [1.4, 0.0, 0.2]])  # an over-estimate: 0.98 * 1.4 = 1.372 is clipped to 1
y = td_target(reward, done, next_q, gamma=0.98)
print("targets:", y.tolist())
assert torch.allclose(y, torch.tensor([1.0, 0.98 * 0.5, 1.0]))
assert torch.allclose(td_target(reward, done, next_q, gamma=0.98, clip=False)[2], torch.tensor(0.98 * 1.4))

# %% [markdown]
# ## 3. The replay buffer
#
# Consecutive transitions of one episode are strongly correlated, and a transition that carries
# a reward is rare and precious. DQN therefore stores every transition $(s, g, a, r, s', \mathrm{done})$
# in a **replay buffer** and learns from random mini-batches drawn from it, so each transition is
# reused many times and a batch mixes many episodes. The write-up's buffer holds $2^{15}$
# transitions; when it is full the oldest are overwritten.
#
# One iteration of training plays one episode with each of 16 agents in parallel. Here is one
# such episode at $n = 5$ with random actions, stored in a buffer:

# %%
n = 5
env = BitFlipEnv(n, num_agents=16, device="cpu", seed=1)
generator = torch.Generator().manual_seed(1)
state, goal = env.reset()
states, actions, active = [state.to(torch.uint8)], [], []
while not env.episode_over:
    action = epsilon_greedy(torch.zeros(16, n), epsilon=1.0, generator=generator)  # epsilon = 1: random
    step = env.step(action)
    states.append(step.state.to(torch.uint8))
    actions.append(action)
    active.append(step.active)
episode = EpisodeBatch(torch.stack(states), goal.to(torch.uint8), torch.stack(actions), torch.stack(active))
played = episode.transitions()

buffer = ReplayBuffer(n, capacity=2**15, device="cpu")
buffer.add(played)
batch = buffer.sample(8, generator)
print(f"episode lengths per agent: {episode.lengths.tolist()}")
print(f"{len(played)} transitions stored, {int(played.reward.sum())} of them rewarded; "
      f"a sampled batch has {len(batch)} transitions")
assert len(buffer) == len(played) == int(episode.lengths.sum())
assert int(played.reward.sum()) == int(env.done.sum())  # one reward per agent that reached its goal

# %% [markdown]
# An agent that reaches its goal stops; the others flip $n$ bits. At $n = 5$ a good share of
# random agents stumble on their goal. Hold on to that observation.
#
# ## 4. Exploration: epsilon decays with every gradient step
#
# The training agents act $\epsilon$-greedily: a random bit with probability $\epsilon$, the
# network's best bit otherwise. Following the write-up, $\epsilon$ starts at 1, is multiplied by
# 0.999 after every gradient step, and stops at 0.1. With 32 gradient steps per iteration it
# reaches 0.1 after $\ln 0.1 / \ln 0.999 \approx 2301$ steps, that is after about 72 iterations.

# %%
schedule = EpsilonSchedule(start=1.0, end=0.1, decay=0.999)
steps_to_floor = math.ceil(math.log(0.1) / math.log(0.999))
iterations = list(range(0, 151))
fig = new_figure(figsize=(6, 3.2))
ax = fig.add_subplot()
ax.plot(iterations, [schedule.value(32 * i) for i in iterations], label="32 gradient steps per iteration (this course)")
ax.plot(iterations, [schedule.value(5 * i) for i in iterations], label="5 gradient steps per iteration (the write-up)")
ax.set(xlabel="iteration", ylabel="epsilon", title="Exploration rate: x0.999 per gradient step, floor 0.1")
ax.legend(fontsize="small")
ax.grid(alpha=0.3)
assert schedule.value(steps_to_floor) == 0.1 and schedule.value(steps_to_floor - 1) > 0.1
print(f"epsilon reaches 0.1 after {steps_to_floor} gradient steps = {steps_to_floor / 32:.0f} iterations of 32 steps")
fig

# %% [markdown]
# ## 5. The training loop
#
# `bitflip_lib.trainer.train` reads top to bottom like the algorithm. Per iteration:
#
# 1. 16 training agents each play one $\epsilon$-greedy episode of at most $n$ steps (new random
#    starts and goals every time);
# 2. their transitions go into the replay buffer (chapter 4 adds relabelled ones);
# 3. 32 gradient steps on batches of 256 transitions, each followed by a Polyak update;
# 4. the greedy policy is evaluated on 1024 fresh test agents; the run counts as **solved** once
#    the test success rate stays at or above 0.99 for 5 evaluations in a row, and `solved_at` is
#    the first iteration of that streak.
#
# The settings are the course's `default` preset with HER switched off (`her="none"`): Adam with
# AMSGrad and learning rate $10^{-3}$, buffer $2^{15}$, Polyak fraction 0.05, targets clipped to
# $[0, 1]$, $\gamma = \max(0.98, 1 - 1/n)$, the MSE loss. They follow the write-up except for 32
# gradient steps per iteration instead of its 5 and a larger Polyak fraction (0.05 against 0.01),
# which learn faster per iteration (see `/work/shared/CALIBRATION.md` for the measurements behind
# them).

# %%
base = make_config(arch="uvfa", her="none", seed=0)
print({k: base.to_dict()[k] for k in ("arch", "her", "gradient_steps", "batch_size", "buffer_capacity", "polyak",
                                      "clip_targets", "lr", "num_train_agents", "num_eval_agents", "solved_window")})

# %% [markdown]
# ## 6. Vanilla DQN against the number of bits
#
# We train the UVFA without any relabelling for several $n$, each with a fixed budget of
# iterations. The write-up (its Table 1, 3000 iterations) solved $n = 5$ and $n = 10$ and failed
# at $n = 15$ and $n = 20$. In **full mode** we run $n = 5, 10, 15, 20$; in **quick mode** only
# $n = 5$ (which should be solved) and $n = 15$ (which should not), with a much smaller budget
# for $n = 15$; the printout says what ran.

# %%
if QUICK:
    BUDGETS = {5: 300, 15: 50}
else:
    BUDGETS = {5: 1000, 10: 1500, 15: 1000, 20: 1000}
EXPECT_SOLVED = {5: True, 10: True, 15: False, 20: False}

results = {}
for n, budget in BUDGETS.items():
    results[n] = train(base.replace(n=n, max_iterations=budget), progress=SHOW_PROGRESS)
    s = results[n].summary()
    print(f"n = {n:2d}: budget {budget:4d} iterations, solved at {s['solved_at']}, final success {s['success_rate']:.3f}, "
          f"{s['iterations']} iterations in {s['wall_seconds']:.0f} s")

# %%
plot_training(list(results.values()), labels=[f"n = {n}" for n in results],
              metrics=("success_rate", "mean_distance", "loss", "mean_q"),
              title="Vanilla DQN with the write-up's UVFA (no HER); dashed lines: solved")

# %% [markdown]
# Every claim above, checked:

# %%
for n, result in results.items():
    if EXPECT_SOLVED[n]:
        result.assert_solved(within=BUDGETS[n])
    else:
        result.assert_not_solved()
        assert max(h["success_rate"] for h in result.history) < 0.05, "a failed run should not even come close"
        mean_q = [h["mean_q"] for h in result.history]
        assert max(mean_q[:50]) > 0.9, "Q-values drift up to the clip bound even without rewards (text below)"
        if not QUICK:  # over 1000 iterations they sink back: the only fixed point without rewards is 0
            assert mean_q[-1] < 0.5 * max(mean_q), (n, max(mean_q), mean_q[-1])
        assert abs(result.final["mean_distance"] - n / 2) < 1.5, "the test agents stay about n/2 from their goals"
print("checked:", {n: ("solved" if r.solved else "not solved") for n, r in results.items()})

# %% [markdown]
# At $n = 5$ the greedy policy goes from random to perfect; at $n = 15$ the test success stays at
# zero and the mean distance to the goal stays near $n/2$, the distance of a random pair: the
# network has learned nothing useful. (In quick mode the $n = 15$ budget is small; the write-up's
# 3000 iterations and our full mode show the same failure.)
#
# Look at the mean Q-value of the failed runs, though: within the first few dozen iterations it
# climbs close to 1, the clipping bound, although the agents have hardly seen a reward. The
# targets $\gamma \max_{a'} Q$ are built from the network's own estimates, and the max picks the
# most optimistic of them, so early on nothing pulls the values down. High values are not wrong in
# themselves (with $\gamma = 0.98$ the optimal values of the best flips are $\gamma^{d-1}$: about
# 0.88 for a typical pair at $n = 15$, 0.75 at worst); what is missing is any *difference* between
# a good and a bad flip for a given goal. Chapter 5 returns to this upward drift.
#
# Full mode runs long enough to see the second act. At $n = 15$ (seed 0, 1000 iterations) the
# mean Q peaks at 0.997 at iteration 16 and then sinks steadily, to 0.75 by iteration 250 and
# 0.23 by iteration 1000. Without rewards the only fixed point of $Q = \gamma \max Q$ is
# $Q = 0$; every backup multiplies by $\gamma$, and once the optimistic noise of the max has
# been averaged away (the target network moves only 5% per step) that contraction wins. Either
# way the values carry no information about the goal: high or low, they are the same for good
# and bad flips.
#
# ## 7. Why: count the rewards
#
# With the table gone, the only thing that can teach the network where a goal is, is a transition
# that *reached* one: every other transition has $r = 0$ and a target of $\gamma \max Q$, which
# just copies the network's current guesses around. So how many rewarded transitions does an
# exploring agent collect?
#
# While $\epsilon \approx 1$ the agents move at random. Chapter 1 computed the exact probability
# $p_n$ that a random walk of $n$ flips from a random start hits a random goal
# (`theory.random_success_probability`); an iteration of 16 agents then collects $16\,p_n$
# rewards on average, and $I$ iterations $16\,I\,p_n$
# (`theory.expected_rewarded_transitions`). The write-up's own estimate was $48000\,n / 2^n$
# (3000 iterations of 16 agents of $n$ steps, each step hitting the goal with chance about
# $2^{-n}$).
#
# Compare that with the number of goals, $2^n$: the network must learn a different direction for
# each goal, and from the rewards alone it sees a goal at all only a handful of times.

# %%
ns = list(range(2, 31))
fig = new_figure(figsize=(7, 4))
ax = fig.add_subplot()
ax.semilogy(ns, [expected_rewarded_transitions(n, 3000) for n in ns], "o-", ms=3,
            label="expected rewards of random exploration in 3000 iterations")
ax.semilogy(ns, [48000 * n / 2**n for n in ns], "--", label="the write-up's estimate 48000 n / 2^n")
ax.semilogy(ns, [2.0**n for n in ns], "k-", label="number of goals 2^n")
ax.axhline(1.0, color="grey", lw=0.8)
ax.set(xlabel="number of bits n", ylabel="count (log scale)",
       title="Rewards seen by random exploration against the number of goals")
ax.legend(fontsize="small")
ax.grid(alpha=0.3)
fig

# %%
for n in (5, 10, 15, 20):
    print(f"n = {n:2d}: p_n = {random_success_probability(n):.2e}, expected rewards in 3000 iterations = "
          f"{expected_rewarded_transitions(n, 3000):8.1f}, goals = {2**n:>9,}")
assert expected_rewarded_transitions(5, 3000) > 2**5 * 100            # n = 5: hundreds of rewards per goal
assert expected_rewarded_transitions(15, 3000) < 2**15 / 1000         # n = 15: one reward per ~1600 goals
assert expected_rewarded_transitions(20, 3000) < 1                    # n = 20: probably not one reward at all
assert expected_rewarded_transitions(9, 3000) > 2**9 and expected_rewarded_transitions(10, 3000) < 2**10  # the crossing
for n in range(5, 30):  # the expectation falls by more than 1.5x with every extra bit
    assert expected_rewarded_transitions(n + 1, 3000) < expected_rewarded_transitions(n, 3000) / 1.5

# %% [markdown]
# The curves cross between $n = 9$ and $n = 10$. Below the crossing, random exploration alone
# delivers more rewards than there are goals. Just above it ($n = 10$) there are fewer, but
# still hundreds: enough for the network to start generalising, slowly (vanilla UVFA needed
# about 500 iterations at $n = 10$ in the calibration runs, 824 in one of ours, and 1003 in the
# write-up). Further up a vanishing fraction of the goals is ever reached: at $n = 15$ about one
# goal in 1600, and at $n = 20$ the expected count in 3000 iterations is below one.
#
# Now the *measured* rewards: the trainer records `rewards_seen`, the cumulative number of
# rewarded transitions the training agents actually played. The dotted lines are what purely
# random agents would have collected in the same iterations.

# %%
fig = new_figure(figsize=(7, 4))
ax = fig.add_subplot()
plot_metric(list(results.values()), "rewards_seen", labels=[f"n = {n} (measured)" for n in results], ax=ax, mark_solved=False)
for line, (n, result) in zip(list(ax.lines), results.items()):
    its = list(range(1, result.iterations + 1))
    ax.plot(its, [expected_rewarded_transitions(n, i) for i in its], ":", color=line.get_color(),
            label=f"n = {n}: random exploration (expected)")
ax.set_yscale("symlog", linthresh=1)
ax.legend(fontsize="small")
ax.set_title("Rewarded transitions played: measured against random exploration")
fig

# %%
for n, result in results.items():
    seen = result.history[-1]["rewards_seen"]
    expected = expected_rewarded_transitions(n, result.iterations)
    print(f"n = {n:2d}: {seen:6d} rewards seen in {result.iterations} iterations; random agents: {expected:8.1f} expected; "
          f"{2**n:,} goals")
    if result.solved:
        # Once the policy improves, the agents earn far more rewards than random ones would: a snowball.
        assert seen > 2 * expected
    else:
        # No snowball: about what random agents collect (Poisson margin of 5 standard deviations)...
        assert seen <= expected + 5 * math.sqrt(expected) + 5
        # ...which is next to nothing against the number of goals.
        assert seen < 2**n / 100

# %% [markdown]
# This is the whole story of vanilla DQN on bit flipping:
#
# * where random exploration finds rewards often enough ($n = 5$, $n = 10$), the network learns a
#   little, the greedy part of the $\epsilon$-greedy policy starts reaching goals, the agents
#   collect far more rewards than random ones, and learning snowballs;
# * where it does not ($n \ge 15$), the buffer is almost all zeros; the targets $\gamma \max Q$ are
#   the network's own guesses; nothing ties any output to any goal, and more gradient steps on
#   the same data do not fix that. The problem is the *data*, and how much of it a network
#   needs before it generalises (chapter 6 shows a network built around the task's symmetry
#   needs far less).
#
# The cure in chapter 4 does not explore better: it reads the same failed episodes differently.
#
# ## 8. Try it yourself
#
# The dashboard trains with the settings you choose and plots success rate, distance to goal and
# loss while it runs. Ideas: find the largest $n$ that vanilla UVFA solves in 500 iterations; try
# `mlp` instead of `uvfa`; switch off the target network. Pressing **Train** trains in the
# background (the notebook stays usable and **Stop** works); the cell after it runs a short
# blocking run with the same settings, which is how CI checks that the dashboard works.

# %%
from bitflip_lib.widgets import TrainingDashboard

dash = TrainingDashboard(n=5, arch="uvfa", her="none", max_iterations=300)
dash

# %%
demo = dash.run(max_iterations=3)  # a tiny budget, only to check the dashboard; press Train for real runs
dash.set(max_iterations=300)       # restore the budget shown in the controls
assert demo.config.arch == "uvfa" and demo.config.her == "none" and demo.iterations == 3
assert dash.result is demo and dash.image.value[:4] == b"\x89PNG"

# %% [markdown]
# ## Summary
#
# * A goal-conditioned Q-network replaces the $n \cdot 4^n$ table; the write-up's UVFA embeds
#   state and goal and combines them with a bilinear form ($\approx 16{,}400\,n$ parameters).
# * DQN = Q-learning + replay buffer + target network (Polyak averaging) + clipped TD targets +
#   $\epsilon$-greedy exploration with a decaying $\epsilon$.
# * Vanilla DQN solves $n = 5$ (and $n = 10$ in full mode) and fails from $n = 15$ on, as in the
#   write-up.
# * The reason is the data: random exploration collects about $16\,I\,p_n \approx 16\,I\,n\,2^{-n}$
#   rewards in $I$ iterations, fewer than one per thousand goals at $n = 15$. Without rewards the
#   TD targets carry no information about goals.
#
# **Exercise.** `exercises/ex03_td_target`: write the clipped TD target and $\epsilon$-greedy
# action selection yourself; the grader checks them against the cases above and more.
#
# **Next:** chapter 4, Hindsight Experience Replay: every failed episode is a successful one for
# some other goal.
