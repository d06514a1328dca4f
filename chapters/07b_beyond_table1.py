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
# # Chapter 7b (appendix). Past Table 1: HAR at n = 1024, a generic network at n = 50 and 100
#
# The write-up (Chau Yu Hei, HKUST) stops at n = 50. This appendix asks three questions past it, with
# runs stored in `results/beyond/` (too long to run here):
#
# * **How far does HAR's inductive bias carry?** Chapter 6 argued that HAR makes n nearly
#   irrelevant. Does a HAR trained at n = 20 work at n = 1024, and can one be trained there from
#   scratch?
# * **What does a generic network need?** The HER paper (Andrychowicz et al. 2017) solved n = 50
#   with one hidden layer of 256 units, the network we call `mlp`. In our Table 1 (chapter 7) it
#   solves up to n = 40 with HER and fails at n = 50. What does it take to get it moving there,
#   and does the same recipe carry to n = 100?
# * **What if a network is given the symmetry but not the distance?** A DeepSets network
#   (section 4) has to learn what HAR is told; how far does it get?
#
# Glossary: [glossary.md](glossary.md). All numbers, and the command that made each run, are in
# the lab notebook [`results/README.md`](../results/README.md) ("Beyond the write-up").
#
# **Learning objectives.** After this appendix you can
# 1. explain why a network whose inputs do not depend on n transfers to any n, and why UVFA and
#    the MLP cannot even be asked to;
# 2. size a replay buffer against what one iteration stores, and say what goes wrong when it is
#    too small;
# 3. read a screening of one-setting-at-a-time runs, and say what it can and cannot conclude;
# 4. say what a permutation-equivariant network is given and what it must learn, and check
#    both numerically;
# 5. tell a policy that cycles from one that wanders, and say why a near-tie traps a greedy agent.
#
# **Study time.** About 25 minutes of reading; running it takes under a minute on a laptop CPU.

# %%
from pathlib import Path

import torch
from IPython.display import Markdown, display

from bitflip_lib import quick_mode
from bitflip_lib.config import make_config
from bitflip_lib.lab.runs import describe_overrides, load_runs
from bitflip_lib.ui.plots import new_figure, plot_metric, plot_training

QUICK = quick_mode()
print("QUICK mode (small budgets)" if QUICK else "FULL mode")


def find_beyond() -> Path:
    """results/beyond, whether the notebook runs from chapters/ or the course folder."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "results" / "beyond").is_dir():
            return folder / "results" / "beyond"
    raise FileNotFoundError("results/beyond not found: open this notebook inside the course folder")


BEYOND = find_beyond()
study = {folder.name: load_runs(folder) for folder in sorted(BEYOND.iterdir()) if folder.is_dir() and folder.name != "tail"}
for name, runs in study.items():
    print(f"{name:18s} {len(runs):2d} stored runs")


def table(rows: list[list], header: list[str]) -> Markdown:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return Markdown("\n".join(lines + ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]))


# %% [markdown]
# ## 1. A HAR trained at n = 20, used at n = 1024
#
# HAR computes Q(s, g, a) = phi(|s - g|_1 / n, |s_a - g_a|) with one small network phi shared
# by every bit. Its input is a pair of numbers whatever n is, so a HAR trained at one n can be
# *evaluated* at any other. The stored run trained HER-HAR at n = 20 with the default settings and
# then, without further training, evaluated it on 1024 fresh agents at larger n.

# %%
(transfer,) = study["har_n20_transfer"]
display(table([[n, f"{ev['success_rate']:.3f}", f"{ev['mean_steps']:.1f}", f"{ev['mean_start_distance']:.1f}"]
               for n, ev in sorted(transfer.evaluated_at.items())], ["n", "success", "mean steps", "mean start distance"]))
assert all(ev["success_rate"] == 1.0 for ev in transfer.evaluated_at.values())
seen = {d / 20 for d in range(1, 21)}  # the distance features a HAR trained at n = 20 meets
assert [d for d in range(1, 1024) if d / 1024 < min(seen)] == list(range(1, 52))  # extrapolated

# %% [markdown]
# Every agent reaches its goal, and in the fewest possible flips: the mean number of steps
# equals the mean start distance. A HAR whose phi ranks "this bit differs" above "this bit
# matches" at every distance feature in (0, 1] is optimal at *every* n. Training at n = 20 only
# shows it the 20 features 1/20, 2/20, ..., 1: at n = 1024 the features between them are
# interpolation, and those below 1/20 (distances 1 to 51, the last 51 steps of every episode) are
# extrapolation (chapter 6, section 3). That this phi kept the right order there is what the
# table shows; nothing in training forced it. UVFA and the MLP cannot be asked: their first layer
# has an input of size n (or 2n), fixed when they are built.
#
# **Check your understanding 1.** Would the transfer still work if HAR were fed the raw distance
# d (as in the write-up's settings) instead of d / n?
#
# <details><summary>Answer</summary>
#
# Not necessarily. Trained at n = 20, phi has only seen distances 1-20; at n = 1024 it is asked
# about distances up to 1024, far outside what it was fitted on, and nothing makes its ranking
# of the two bit types hold there. With d / n the features at n = 1024 lie between 0 and 1 like
# the ones seen in training: most of them between two seen features, only those of d <= 51
# below the smallest. (Chapter 6 shows this feature choice, and where it extrapolates.)
# </details>
#
# ## 2. Training HAR from scratch at n = 1024
#
# With the default settings, HER-HAR trained at n = 1024 gets its greedy agents from 512 bits to
# a few hundred within ten iterations and stalls there; changing Polyak, batch size, gradient
# steps, learning rate or the HER strategy did not help (those runs are not stored). The culprit
# is the replay buffer, as the next cell counts: with `future` relabelling, as this course
# stores it, every played transition is stored once as played and k more times relabelled.
# (The HER paper's reference implementation instead stores each episode once and relabels when
# it samples a batch, chapter 4, section 5: the same buffer would hold k + 1 = 5 times as many
# played transitions, two whole iterations at n = 1024. That weakens the explanation below: part
# of the stall may be the cost of storing copies, and no run here tests relabelling at sampling
# time.)

# %%
config = make_config("default", n=1024, arch="har", her="future")
per_iteration = config.num_train_agents * config.n * (1 + config.k)  # n steps per episode at most
print(f"one iteration at n = 1024 stores up to {per_iteration:,} transitions; "
      f"the default buffer holds {config.buffer_capacity:,} ({config.buffer_capacity / per_iteration:.2f} iterations), "
      f"a 2^20 buffer {2**20:,} ({2**20 / per_iteration:.0f} iterations)")
assert config.buffer_capacity < per_iteration < 2**20 / 10
assert config.buffer_capacity / (config.num_train_agents * config.n) == 2  # episodes only: 2 its

# %% [markdown]
# The default buffer holds less than half of the last iteration, so every update sees only the
# latest stretch of the agents' walk. The stored runs give the buffer 2^20 transitions (about 13
# iterations; several GiB of bits at n = 1024): one with a constant learning rate, and three
# seeds with the rate falling along a cosine from 1e-3 to 1e-5 over a 200-iteration budget.

# %%
har1024 = sorted(study["har_n1024"], key=lambda r: ("lr_end" in r.overrides, r.seed))
display(table([[r.seed, describe_overrides(r.overrides), r.solved_at or "not solved", f"{r.best_success:.2f}",
                f"{r.wall_seconds / 60:.0f} min"] for r in har1024],
              ["seed", "changed from the default preset", "solved at", "best success", "wall time"]))
# One panel per run: four runs that jump between 0 and 700 bits at every evaluation are a tangle
# on one axes. A mean final distance of 0 means every test agent reached its goal.
fig = new_figure(figsize=(9.0, 6.4))
axes = fig.subplots(len(har1024), 1, sharex=True, sharey=True)
for ax, r in zip(axes, har1024):
    rate = "cosine learning rate" if "lr_end" in r.overrides else "constant learning rate"
    verdict = f"solved at {r.solved_at}" if r.solved else f"not solved in {r.iterations} iterations"
    plot_metric(r, "mean_distance", labels=[""], ax=ax, title="")
    ax.set_title(f"seed {r.seed}, {rate}: {verdict}", loc="left", fontsize="medium")
    ax.set(xlabel="", ylabel="bits")
axes[-1].set_xlabel("iteration (16 training episodes each)")
fig.suptitle("HER-HAR from scratch at n = 1024, buffer 2^20: the greedy agents' mean final\n"
             "distance to the goal (0: every agent reaches it; dashed: where the run was solved)")
fig

# %% [markdown]
# With the big buffer alone the greedy policy is perfect at times but keeps falling back to
# hundreds of bits in between: at gamma = 1 - 1/1024 the values of a good and a bad flip differ
# by about 1e-3 here (chapter 6's gap gamma^(d-1)(1 - gamma^2)), and that is within the noise of
# the updates. With the learning rate decaying as well, every seed strings five perfect
# evaluations together and is solved. How much of that is the decay and how much the timing,
# three seeds cannot say: the constant-rate run also had a shorter budget. The next cell
# computes the rate each seed used when it was solved, with torch's own cosine schedule.

# %%
def rate_when_solved(run) -> float:
    """The learning rate at the run's solving iteration, as a fraction of its starting rate."""
    c = run.train_config()
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=c.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, c.max_iterations, c.lr_end)
    for _ in range(run.solved_at - 1):
        optimizer.step()
        schedule.step()
    return optimizer.param_groups[0]["lr"] / c.lr


fractions = {r.seed: rate_when_solved(r) for r in har1024 if r.solved}
print({seed: round(f, 3) for seed, f in fractions.items()})
assert all(0 < f < 1 for f in fractions.values()) and len(fractions) == 3

# %% [markdown]
# ## 3. A generic network with HER at n = 30, 50 and 100
#
# The runs below start from the default preset (HER `future` k = 4, 32 gradient steps of batch
# 256 per iteration, Polyak 0.05, buffer 2^15) and add changes one or two at a time, each step
# keeping what helped before, seed 0 only: a screening, not a verdict; differences of a few
# percent mean nothing. So the recipes climb a ladder, and the one that finally solves n = 50
# (the end of this section) differs from the default in seven settings. One of them has no
# experiment behind it: every n = 50 run that learned anything uses gamma 0.95 instead of the
# default 0.98. It came from n = 30, where with the big buffer it solved about as fast as 0.98
# (901 against 956 iterations, one seed each); at n = 50 it was never compared with 0.98 in a run
# that got anywhere, so whether the shorter horizon helps there is open (checked below).

# %%
default_mlp = {n: load_runs(BEYOND.parent / "default", arch="mlp", her="future", seed=0, n=n)[0] for n in (30, 50)}
ablation = {n: sorted([r for r in study[f"mlp_n{n}"] if r.seed == 0] + [default_mlp[n]],
                      key=lambda r: (r.solved_at or 10**9, -r.best_success)) for n in (30, 50)}
display(table([[n, describe_overrides(r.overrides), r.max_iterations, r.solved_at or "not solved", f"{r.best_success:.2f}"]
               for n, found in ablation.items() for r in found],
              ["n", "changed from the default preset", "budget", "solved at", "best success"]))
n30 = {describe_overrides(r.overrides): r.solved_at for r in study["mlp_n30"]}
assert (n30["buffer 2^20, gamma 0.95"], n30["buffer 2^20"]) == (901, 956)  # where 0.95 came from
assert all(r.overrides.get("gamma") == 0.95 for r in study["mlp_n50"] if r.best_success > 0)

# %% [markdown]
# **At n = 30** two things help. *Keep more history*: an iteration stores about
# 2400 transitions at n = 30, so the default buffer holds only the last 14 iterations, and a
# 2^20 buffer solves sooner (relabelled goals of old episodes are still good data). *Spend more
# computation per iteration*: four times the gradient steps, or four times the batch, solves
# sooner still. A much shorter horizon (gamma 0.9) stalls short of solving; double DQN and a
# wider layer make no real difference.
#
# **At n = 50 the defaults get nowhere, and computation per iteration is what moves it.** With
# the big buffer alone success stays at zero; with 128 gradient steps, then a batch of 1024, the
# MLP starts to succeed, and a learning rate falling along a cosine takes it furthest. The plot
# shows the steps of that ladder (seed 0).

# %%
ladder = [r for r in ablation[50] if not r.overrides.get("hidden") and not r.overrides.get("double_dqn")
          and r.overrides.get("max_iterations") != 2000 and r.overrides.get("polyak") is None
          and r.overrides.get("lr") is None and r.overrides.get("gradient_steps") != 256]
fig = new_figure(figsize=(9.0, 5.6))
ax = plot_metric(ladder, "success_rate", labels=[describe_overrides(r.overrides) for r in ladder],
                 ax=fig.add_subplot(), title="HER-MLP at n = 50 (seed 0)")
ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(0, -0.14))  # under the axes, off the curves
display(fig)
assert max(r.best_success for r in ladder) > 0.9 and not any(r.solved for r in ladder)

# %% [markdown]
# The best recipes come close but none is "solved" (0.99 on five evaluations in a row) within
# 1000 iterations: after reaching 0.9 they *creep* through the last few percent, and the agents
# that still fail end far from their goals (the lab notebook tabulates how far). A second seed of
# the best recipe tells the same story. Why the last few percent come so slowly is taken apart
# below, after the screening.
#
# **Check your understanding 2.** A 500-iteration screening at n = 50 (below) changes one thing
# at a time on top of the big buffer. Only a four times wider layer and a four times larger
# batch end clearly closer to the goals. Yet on top of 128 steps of batch 1024, the wider layer
# was far *behind* the narrow one (table above). Does the screening mislead?
#
# <details><summary>Answer</summary>
#
# It answers a narrower question than it seems to: which change helps *at 32 steps of batch 256
# and 500 iterations*. Both winners add computation per iteration, which is what the network is
# short of there. Once the updates are many and large, a wider layer has more weights to fit with
# the same data and starts slower. A screening ranks changes under its own conditions; it does
# not say how they combine.
# </details>

# %%
screen = sorted(study["mlp_n50_screen"], key=lambda r: r.mean_distance)
display(table([[describe_overrides({k: v for k, v in r.overrides.items() if k not in ("buffer_capacity", "gamma")})
                + ("" if r.k == 4 else f", k = {r.k}"), f"{r.mean_distance:.1f}"] for r in screen],
              ["change (on top of buffer 2^20, gamma 0.95)", "mean final distance after 500 iterations"]))

# %% [markdown]
# **Why the last few percent?** We reran the best seed-0 run (its curve matched the stored one
# point for point) and took its final network apart (`bitflip_lib.diagnosis.failures`): 1024 fresh agents
# play the whole episode, and we look at how each failing agent fails.

# %%
import json

tail = json.loads((BEYOND / "tail" / "default_n50_mlp_future-k4_s0_33a56e9a.json").read_text())
rules = tail["networks"]["online"]["rules"]
display(table([[rule, f"{r['success_rate']:.3f}", r["failures"], r["cycling"], r["cycle_length_mean"] or "-"]
               for rule, r in rules.items()], ["action rule", "success", "failing", "of them cycling", "cycle length"]))
print("median margin of a wrong flip over the best right one, as a share of the optimal gap:",
      round(tail["networks"]["online"]["margins"]["margin_over_gap_median"], 3))
print("effective rank of the hidden layer (of 256):", [r["srank"] for r in tail["rank"]][::5])
assert rules["argmax"]["cycling"] == rules["argmax"]["failures"] > 0 and rules["argmax"]["cycle_length_mean"] == 2.0
assert rules["tie_break 0.01"]["failures"] <= rules["argmax"]["failures"] / 3  # a tie-break rescues most
assert tail["networks"]["online"]["margins"]["margin_over_gap_median"] < 0.1  # near-ties
assert min(r["srank"] for r in tail["rank"]) >= 170  # no collapse
target_rules = tail["networks"]["target"]["rules"]
assert abs(target_rules["argmax"]["success_rate"] - rules["argmax"]["success_rate"]) <= 0.01  # target: no better

# %% [markdown]
# Every failing agent is stuck in a **2-cycle**: it flips a wrong bit, flips it back, and repeats
# until time runs out, about 10 bits from its goal. The wrong flip wins by a hair (a few percent
# of the gap the optimal Q-values have), so choosing at random among actions within 0.01 of the
# best rescues most of these agents. A deterministic argmax turns a near-tie into a loop it never
# leaves. The representation has not collapsed (its effective rank stays near 190 of 256). The
# target network does no better than the online one.
#
# One cure keeps the task and the network and changes the target. In a deterministic task no
# value can be below what a real path achieved. So if the episode's own path got from a state to
# a (relabelled) goal in `steps` steps, the TD target may be raised to `gamma**(steps - 1)`: the
# **hindsight bound** (`--hindsight-bound`). The idea is He et al.'s (2017), who derive lower
# bounds (and upper bounds) from the rewards seen along a trajectory and enforce them with
# penalty terms added to the loss; here the lower bound is applied directly, as the larger of the
# target and the bound. On three seeds it shortens the creep: best successes are 0.98-0.99,
# against 0.98 without it. Still none is solved within 1000 iterations.

# %%
bound = sorted(study["mlp_n50_bound"], key=lambda r: r.seed)
display(table([[r.seed, r.first_at(0.5), r.first_at(0.9) or "-", f"{r.best_success:.3f}", r.solved_at or "not solved"]
               for r in bound], ["seed", "success 0.5 at", "0.9 at", "best", "solved at"]))
assert len(bound) == 3 and not any(r.solved for r in bound) and min(r.best_success for r in bound) >= 0.97
without = [r for r in ablation[50] if r.overrides.get("batch_size") == 2048 and r.overrides.get("lr_end") == 0.0001]
assert min(r.best_success for r in bound) >= max(r.best_success for r in without)  # the bound shortens the creep

# %% [markdown]
# A second cure goes after the near-ties themselves. **Advantage learning** (`--action-gap 0.75`,
# Bellemare et al. 2016) lowers each target by alpha = 0.75 times how far the taken flip falls
# short of the best flip. The best flip keeps its value; every other flip settles
# 1 / (1 - alpha) = 4 times further below it, so a small error no longer turns the argmax.
# Added to the bound:

# %%
gap = sorted(study["mlp_n50_gap"], key=lambda r: r.seed)
display(table([[r.seed, r.first_at(0.5), r.first_at(0.9) or "-", f"{r.best_success:.3f}", r.solved_at or "not solved"]
               for r in gap], ["seed", "success 0.5 at", "0.9 at", "best", "solved at"]))
by_seed = {r.seed: r for r in bound}
assert all(r.first_at(0.9) < by_seed[r.seed].first_at(0.9) for r in gap)  # faster on every seed
assert len(gap) == 3 and all(r.solved and r.solved_at <= 1000 for r in gap)  # solved, by the plain argmax
recipe = [k for k in gap[0].overrides if k != "max_iterations"]
print(f"the solving recipe changes {len(recipe)} settings: {describe_overrides(gap[0].overrides)}")
assert len(recipe) == 7 and all(r.overrides == gap[0].overrides for r in gap)  # seven changes
earlier = [r for folder in ("mlp_n50", "mlp_n50_screen", "mlp_n50_bound") for r in study[folder]]
assert not any(r.solved for r in earlier)  # the first generic network here to solve n = 50

# %% [markdown]
# All three seeds are solved within 1000 iterations (at 762, 929 and 943), the first generic
# network in this course to solve n = 50. What the diagnosis found decided the cure: the loops
# were near-ties, so widening the gap between right and wrong flips is what ends them.

# %% [markdown]
# **n = 100.** We know of no result for a generic network at n = 100. One run scales the best
# n = 50 recipe without the two cures (gamma 0.98, since a random goal is now 50 bits away) and
# gives it 2000 iterations; a second adds the bound and the widened gap (batch 2048, 1000
# iterations or 90 minutes). The plot puts them beside the n = 50 run of the first recipe.

# %%
(run100,) = study["mlp_n100"]
(gap100,) = study["mlp_n100_gap"]
cosine50 = next(r for r in ablation[50] if r.overrides.get("lr_end") == 0.0001 and r.overrides.get("batch_size") == 1024)
plot_training([cosine50, run100, gap100], metrics=("success_rate", "mean_distance"),
              labels=["n = 50", "n = 100", "n = 100, bound + gap"],
              title="HER-MLP, 128 gradient steps, cosine learning rate (seed 0)")

# %% [markdown]
# At n = 100 the first recipe gets nowhere: no greedy agent reaches its goal, and the mean final
# distance stays at the 50 bits it starts from, where at n = 50 the same recipe has the
# distance falling from about iteration 100 on. With the bound and the gap the distance starts
# falling at about iteration 300 and is down to 41 bits when the 90 minutes run out, still
# without a single agent at its goal: it starts to learn, and the budget ends first. HER's
# relabelled goals still carry rewards at n = 100 (a `future` goal is a state the agent did
# reach); what fails is turning them into a policy that moves towards far goals. More updates,
# a longer run, a curriculum over n, or a network with some of HAR's structure might: one seed
# and one budget show where this recipe stops, not that nothing can work.

# %%
assert not run100.solved and run100.best_success == 0.0  # the narrative check of this section
assert min(run100.columns["mean_distance"]) > 47.5 and gap100.best_success == 0.0
gap_distances = dict(zip(*gap100.curve("mean_distance")))
assert gap_distances[gap100.iterations] < 41.5  # down to 41 bits at the end
assert min(d for i, d in gap_distances.items() if i < 300) > 49  # not falling before about 300

# %% [markdown]
# **Check your understanding 3.** Why is "keep more history" so much more important at n = 1024
# (section 2) than at n = 30?
#
# <details><summary>Answer</summary>
#
# Because what one iteration stores grows with n (16 agents x n steps x (1 + k) copies) while the
# default buffer does not. At n = 30 the default buffer still holds over a dozen iterations; at
# n = 1024 it holds less than half of one, so each update sees a thin, highly correlated slice of
# the latest episodes.
# </details>

# %% [markdown]
# ## 4. Symmetry learned instead of built in: a DeepSets network
#
# HAR is told two things: that the bits are interchangeable (one $\phi$ for every bit) and what
# about the others matters (the distance). The `deepsets` network (Zaheer et al. 2017) is told
# only the first. One shared encoder maps each bit's pair $(s_i, g_i)$ to an embedding $e_i$; the
# mean $\bar e$ of all embeddings is the context; one shared head maps $(e_i, \bar e)$ to
# $Q(s, g, a = i)$. Permuting the bits permutes the outputs, whatever the weights, and no size
# depends on n (a mean, unlike a sum, has the same range at every n). The distance is in
# $\bar e$ (the share of bits that differ), but nothing says that it is what counts, nor that
# $(0, 1)$ and $(1, 0)$ are the same kind of bit: chapter 6's XOR symmetry is not built in.
# Below, the symmetries of an untrained network, then one trained with HER at a small n and used
# unchanged at n = 1024.

# %%
from bitflip_lib import default_device
from bitflip_lib.trainer import build_network, evaluate, train

DEVICE = default_device()
small_n = 10 if QUICK else 20
ds_config = make_config(n=small_n, arch="deepsets", her="future", seed=0, max_iterations=50, num_eval_agents=256)
untrained = build_network(ds_config, DEVICE)
gen = torch.Generator().manual_seed(0)
state, goal = torch.randint(0, 2, (2, 64, small_n), generator=gen).float().to(DEVICE)
perm, mask = torch.randperm(small_n, generator=gen), torch.randint(0, 2, (1, small_n), generator=gen).float().to(DEVICE)
with torch.no_grad():
    q = untrained(state, goal)
    perm_error = float((untrained(state[:, perm], goal[:, perm]) - q[:, perm]).abs().max())
    mask_error = float((untrained((state + mask) % 2, (goal + mask) % 2) - q).abs().max())
before = evaluate(untrained, small_n, 256, device=DEVICE)["success_rate"]
print(f"untrained: permutation error {perm_error:.2g}, XOR-mask error {mask_error:.2g}, greedy success {before:.2f}")
assert perm_error < 1e-5 < mask_error  # permutations are built in, the XOR mask is not
assert before < 0.5  # not already optimal, as a third of fresh HARs are (chapter 6)

deep = train(ds_config, progress=False)
deep.assert_solved()
print(f"HER-DeepSets at n = {small_n}: solved at iteration {deep.solved_at} ({deep.wall_seconds:.1f} s)")
for big_n, stats in ((m, evaluate(deep.network, m, 256, device=DEVICE)) for m in (100, 1024)):
    print(f"  used unchanged at n = {big_n}: success {stats['success_rate']:.3f}, mean steps {stats['mean_steps']:.1f} "
          f"(mean starting distance {stats['mean_start_distance']:.1f})")
    assert stats["success_rate"] == 1.0 and stats["mean_steps"] == stats["mean_start_distance"]

# %% [markdown]
# It learns in a few iterations what HAR is given, and what it learns holds far beyond the n it
# saw. The stored runs (`deepsets` in the lab notebook [`results/README.md`](../results/README.md),
# with their commands) go further. With the default settings and HER it is solved on every seed
# at n = 15, 20, 50, 100 and, from scratch with the default replay buffer, 1024, each within a
# few iterations and under a minute per run. The MLP (section 3) needed four times the gradient
# steps, larger batches and a widened action gap to solve n = 50 and reached no goal at
# n = 100; HAR at n = 1024 (section 2) needed a $2^{20}$ buffer and a decaying learning rate.
# Trained at n = 50, it reaches every goal at n = 1024 in the fewest flips. Without HER it is
# chapter 6's lottery again: some seeds are solved, others not within the budget. So what the
# generic networks lacked is the symmetry; with it, the distance is easy to learn from the mean.
# (Why the small buffer suffices at n = 1024 here and not for HAR, these runs do not say.)
#
# ## Summary
#
# * HAR's inductive bias makes n almost irrelevant: trained at n = 20 it is optimal unchanged at
#   n = 1024, and trained from scratch at n = 1024 it is solved once the replay buffer holds many
#   iterations and the learning rate decays.
# * Size the replay buffer against what one iteration stores: agents x n x (1 + k) when the
#   relabelled copies are stored, as here (agents x n when relabelling happens at sampling time).
# * A generic network with HER needs much more computation per iteration as n grows: at n = 50
#   that alone comes close within 1000 iterations, at n = 100 it makes no progress (with the
#   two cures below it starts to, and reaches no goal in 90 minutes).
# * Its last failures at n = 50 are 2-cycles through near-ties, not a collapsed representation;
#   a bound from the paths really taken (the hindsight bound) shortens the creep, and widening
#   the action gap (advantage learning) on top of it solves n = 50 on three seeds within 1000
#   iterations.
# * One-setting-at-a-time screenings on one seed rank changes under their own conditions; treat
#   them as leads, not verdicts.
# * Built-in permutation symmetry without the distance (DeepSets) is enough: it learns the rest
#   within a few iterations, at any n from 15 to 1024, and transfers from n = 50 to 1024.
#
# ## Exercises
#
# 1. **Transfer the other way.** Train HER-HAR at n = 200 for a few iterations and evaluate it at
#    n = 10 with `transfer_success` from `bitflip_lib.diagnosis.analysis`. Does it work, and why?
# 2. **The buffer at n = 256.** Compute what one iteration stores at n = 256 and how many
#    iterations the default buffer holds, then train HER-HAR there with the default settings
#    (`bitflip train --n 256 --arch har`). Does it need the bigger buffer?
# 3. **Extend the screening.** Pick one change the screening did not try (for example
#    `--polyak 0.1` or `--k 2`) and run it with the screening's command from the lab notebook into
#    a folder of your own; where does it land in the table?
#
# ## References
#
# * Chau, Y. H. *Documentation of Bit Sequence mini RL project.* HKUST. Code: https://github.com/louis845/BitSeqRLToyProblem.
#   HAR, Table 1 and the settings the `writeup` preset follows.
# * Andrychowicz, M., Wolski, F., Ray, A., Schneider, J., Fong, R., Welinder, P., McGrew, B.,
#   Tobin, J., Abbeel, P., and Zaremba, W. (2017). Hindsight Experience Replay. *Advances in
#   Neural Information Processing Systems 30* (NeurIPS 2017).
# * Schaul, T., Horgan, D., Gregor, K., and Silver, D. (2015). Universal Value Function
#   Approximators. *Proceedings of the 32nd International Conference on Machine Learning*
#   (ICML 2015), PMLR 37, 1312-1320.
# * Loshchilov, I., and Hutter, F. (2017). SGDR: Stochastic Gradient Descent with Warm Restarts.
#   *International Conference on Learning Representations* (ICLR 2017): the cosine schedule.
# * van Hasselt, H., Guez, A., and Silver, D. (2016). Deep Reinforcement Learning with Double
#   Q-learning. *Proceedings of the AAAI Conference on Artificial Intelligence* 30.
# * He, F. S., Liu, Y., Schwing, A. G., and Peng, J. (2017). Learning to Play in a Day: Faster
#   Deep Reinforcement Learning by Optimality Tightening. *ICLR 2017*: the hindsight bound.
# * Bellemare, M. G., Ostrovski, G., Guez, A., Thomas, P. S., and Munos, R. (2016). Increasing
#   the Action Gap: New Operators for Reinforcement Learning. *AAAI 2016*: advantage learning.
# * Zaheer, M., Kottur, S., Ravanbakhsh, S., Poczos, B., Salakhutdinov, R., and Smola, A. (2017).
#   Deep Sets. *Advances in Neural Information Processing Systems 30* (NeurIPS 2017).
